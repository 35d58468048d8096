/* frame: the peer-link wire format, and the handshake's cryptography.
 *
 * Owns: encoding and decoding of every frame two cohortd nodes exchange, the
 * per-frame authentication (HMAC-SHA256 with a per-link key, and a per
 * direction sequence number so that an injected, altered, reordered or
 * replayed frame is rejected), and the handshake proofs (HMAC over fresh
 * nonces from both sides with the cluster key).
 * Never: touches sockets or timers, trusts a length before checking it
 * against the limit and the bytes present, or allocates while decoding (a
 * decoded frame points into the caller's buffer).
 *
 * Frame layout (all integers big-endian):
 *
 *   offset  size  field
 *   0       4     magic "CHRT"
 *   4       1     version (FRAME_VERSION)
 *   5       1     type (enum frame_type)
 *   6       2     reserved, must be 0
 *   8       4     payload length N (<= the receiver's limit)
 *   12      8     sequence number: 1, 2, 3, ... per link and direction;
 *                 0 on the handshake frames HELLO, WELCOME and PROOF
 *   20      N     payload (layout per type below)
 *   20+N    32    HMAC-SHA256 over bytes [0, 20+N), keyed with the link key of
 *                 the frame's direction (frame_link_keys); on HELLO, WELCOME
 *                 and PROOF keyed with the cluster key (frame_cluster_key)
 *
 * Payload fields are encoded as: u8, u16, u32, u64 (big-endian), and
 * "bytes" = u32 length + that many bytes. The payload of each type:
 *
 *   HELLO    (initiator -> acceptor)  u8 proto, bytes cluster, bytes node name,
 *            u64 incarnation, u16 listen port, bytes nonce (32)
 *   WELCOME  (acceptor -> initiator)  u8 proto, bytes cluster, bytes node name,
 *            u64 incarnation, bytes nonce (32), bytes proof (32)
 *   PROOF    (initiator -> acceptor)  bytes proof (32)
 *   (from here on, frames carry the link key's HMAC and sequence numbers)
 *   PING     u64 id, u64 sender's monotonic time in ms
 *   PONG     u64 id (echoed), u64 echoed time
 *   FLUSH    u64 incarnation of the origin, u64 first flush number, u32 count,
 *            then count entries: u8 kind (enum flush_kind), u64 version (hlc.h:
 *            orders it against every write and flush of its keys), bytes key,
 *            and for FLUSH_SEED (a value written: SEED, or any write of a
 *            replicated key): u64 time to live in ms when sent (0: none; a
 *            time left, not an instant: the members' wall clocks need not
 *            agree), bytes value, u8 form (type << 4 | encoding,
 *            cache.h cache_entry_form);
 *            FLUSH_PROPOSE (a write of a replicated key, cluster/WRITES.md)
 *            carries the same as FLUSH_SEED;
 *            for FLUSH_INVAL (a write of an invalidate-mode key): u64
 *            XXH3-64 digest of the value written (members holding other
 *            bytes drop theirs). A frame holds the flushes of about
 *            FRAME_BATCH_SOFT, and a unit (one EXEC's, one script's) whole
 *            up to FRAME_UNIT_MAX; the receiver applies a frame in one go.
 *   ACK      u64 incarnation of the origin, u64 highest flush number applied
 *   SYNC     u64 incarnation of the peer as last known (0: none), u64 highest
 *            flush number applied from it, u64 the sender incarnation's start
 *            version (flushes older than it cannot matter to its cache)
 *   RESET    u64 incarnation, u64 flush number from which the stream restarts,
 *            u8 flags: without RESET_SKIP the receiver must drop its whole
 *            cache first; with it, the flushes it did not get were older than
 *            its incarnation and it keeps its cache; u64 the version of the
 *            last flush skipped (nothing older may be applied afterwards)
 *   PROBE    u64 id, bytes target node name (ask: can you reach it?)
 *   PROBED   u64 id, bytes target node name, u8 reachable (1/0)
 *   BYE      (empty: the sender is shutting down cleanly)
 *   INTEREST u8 flags (INTEREST_FULL: the receiver forgets everything it knew
 *            of the sender's interest before applying the entries; any other
 *            bit set is malformed), u32 count, then count entries:
 *            u8 kind (enum interest_kind), u32 the sender's local subscribers
 *            of it (absolute, not a change; 0: none any more), bytes name.
 *            Sent: a full set (the first frame FULL, more frames if it is
 *            large) as soon as a link is READY, then the changes once per
 *            loop turn.
 *   MESSAGE  one or more messages back to back (none, or bytes left after
 *            the last, is malformed), each: u8 flags (MESSAGE_SHARD:
 *            published with SPUBLISH; any other bit set is malformed), bytes
 *            channel, bytes payload. The receiver checks the whole payload,
 *            then matches each message, in order, against its own channels
 *            and patterns. Sent: the messages published during one loop turn
 *            that a member may want, in publication order, in one frame (a
 *            new one past about FRAME_BATCH_SOFT, or when another frame goes
 *            to that member in between, so frames keep their order), so one
 *            MAC covers many messages. Never logged or replayed: at most
 *            once, in order per link.
 *   NACK     u64 incarnation of the origin, u64 flush number: its PROPOSE
 *            was refused here (this node holds a newer version of the key)
 *   ABORT    u64 incarnation, u64 flush number: the sender's PROPOSE was
 *            refused by a member; it will not commit
 *   COMMIT   u64 incarnation, u64 flush number: the sender's writes up to it
 *            (but those it aborted) are applied by every member that could
 *            serve them
 *   PRESENCE u8 flags (PRESENCE_FULL_BEGIN: the sender's full set of presence
 *            entries starts here, PRESENCE_FULL_END: it ends with this frame,
 *            PRESENCE_FULL_REQUEST: send me your full set, I dropped your
 *            entries while this link stayed up; any other bit set is
 *            malformed), u32 count, then count entries:
 *            u8 op (1 JOIN, 2 LEAVE, 3 EXPIRE: enum presence_op), bytes
 *            channel, bytes member, and for JOIN bytes metadata. Only the
 *            sender's own entries. Sent: a full set (JOINs only, in frames of
 *            about FRAME_BATCH_SOFT) as soon as a link is READY, then the
 *            changes in order once per loop turn (cluster/presync.c).
 *   STOREID  bytes "backend:id": the sender's shared store, sent when a link
 *            is READY and when the store first answers (cluster/storeid.c)
 *   VOIDED   bytes the name of a member this node just saw dead (the
 *            writer), u64 its incarnation, u32 count (at most
 *            VOIDED_MAX), then count u64 flush numbers: its PROPOSEs this
 *            node refused and never saw resolved, while its lease on the
 *            writer held to the writer's death (count 0 otherwise). Sent to
 *            every member on the death; a member replays the writer's
 *            writes in flight only after each member it streams with
 *            reported (cluster/orphans.c)
 *   SNAPREQ  u64 request id (not 0): send me your replicated keyspaces
 *   SNAPSHOT u64 request id, u8 flags (SNAP_*), u32 count, then count
 *            entries: u64 version, bytes key, u64 time to live in ms (0:
 *            none), bytes value, u8 form (as SEED's, | SNAP_FORM_RMW when a
 *            read-modify-write made it; cluster/catchup.c)
 *
 * The keys: one per direction, HKDF-SHA256 (RFC 5869) with the cluster key as
 * input key material, nonce_i | nonce_a as salt, and the info "cohort link
 * initiator to acceptor" or "cohort link acceptor to initiator"; a frame is
 * accepted only under the key of the direction it travels, so a node's own
 * frames reflected back to it fail their MAC. Each direction has its own
 * sequence numbers too.
 * The proofs:
 * acceptor proof = HMAC(cluster key, "cohort acceptor" | nonce_i | nonce_a |
 * names); initiator proof = HMAC(cluster key, "cohort initiator" | nonce_i |
 * nonce_a | names). Both nonces are fresh random bytes, so a recorded
 * handshake cannot be replayed. Labels are their bytes without a NUL; names
 * = u32 length | initiator's name | u32 length | acceptor's name (so "ab"+"c"
 * and "a"+"bc" differ); nonces are 32 bytes each.
 */
#ifndef COHORT_FRAME_H
#define COHORT_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define FRAME_MAGIC "CHRT"
#define FRAME_VERSION 6 /* 5: versions count 1/1024 ms (base/hlc.h); 6: VOIDED */
#define FRAME_HEADER_SIZE 20
#define FRAME_MAC_SIZE 32
#define FRAME_NONCE_SIZE 32
#define FRAME_KEY_SIZE 32
#define FRAME_MAX_DEFAULT (16u << 20) /* payload limit unless configured */
#define FRAME_HANDSHAKE_MAX 4096u     /* payload limit before a link is authenticated */
#define FRAME_BATCH_SOFT (1u << 20)   /* a FLUSH frame starts a new one past this */
/* ...but not inside a unit (a transaction's or a script's flushes) while the
 * frame stays under this: every node accepts it (peer.c's max_payload is
 * FRAME_BATCH_SOFT + 2 * at least FRAME_VALUE_MAX + 64 KiB). */
#define FRAME_UNIT_MAX (FRAME_BATCH_SOFT + 2 * (size_t)FRAME_VALUE_MAX)
/* The largest key or value one member sends another (a SEED, PROPOSE or
 * snapshot entry), the same on every member whatever its max_bulk_len:
 * every member decodes entries up to it, and a write whose key or value is
 * larger is refused on the command before anything is applied
 * (cmd_util.c), so no member ever refuses one and tears its link down. */
#define FRAME_VALUE_MAX (64u << 20)

enum frame_type {
    FRAME_HELLO = 1,
    FRAME_WELCOME = 2,
    FRAME_PROOF = 3,
    FRAME_PING = 4,
    FRAME_PONG = 5,
    FRAME_FLUSH = 6,
    FRAME_ACK = 7,
    FRAME_SYNC = 8,
    FRAME_RESET = 9,
    FRAME_PROBE = 10,
    FRAME_PROBED = 11,
    FRAME_BYE = 12,
    FRAME_INTEREST = 13,
    FRAME_MESSAGE = 14,
    FRAME_SNAPREQ = 15,
    FRAME_SNAPSHOT = 16,
    FRAME_NACK = 17,
    FRAME_ABORT = 18,
    FRAME_COMMIT = 19,
    FRAME_PRESENCE = 20,
    FRAME_STOREID = 21, /* the sender's shared store: "backend:id" (cluster/storeid.c) */
    FRAME_VOIDED = 22,  /* a dead writer's proposals that cannot have committed */
    FRAME_TYPE_MAX = 22
};

/* The kinds of an INTEREST entry (svc/pubsub.h's enum pubsub_kind has the
 * same values; node.c checks). */
enum interest_kind { INTEREST_CHANNEL = 0, INTEREST_PATTERN = 1, INTEREST_SHARD = 2 };
#define INTEREST_KINDS 3
#define INTEREST_FULL 1 /* INTEREST's flag: this frame starts a full set */
#define MESSAGE_SHARD 1 /* MESSAGE's flag: a shard channel's message */
#define PRESENCE_FULL_BEGIN 1 /* PRESENCE's flags: a full set starts */
#define PRESENCE_FULL_END 2   /* ... and is complete */
#define PRESENCE_FULL_REQUEST 4 /* ... is asked for */
#define PRESENCE_FLAGS 7
enum presence_frame_op { PRESENCE_JOIN = 1, PRESENCE_LEAVE = 2, PRESENCE_EXPIRE = 3 };

enum flush_kind {
    FLUSH_KEY = 1,
    FLUSH_PREFIX = 2,
    FLUSH_ALL = 3,
    FLUSH_SEED = 4,
    FLUSH_INVAL = 5,
    FLUSH_PROPOSE = 6
};
#define RESET_SKIP 1 /* RESET's flag: nothing to drop */
/* SNAPSHOT's flags */
#define SNAP_DONE 1        /* the last frame of the answer */
#define SNAP_FRESH 2       /* no answer: the sender is catching up itself */
#define SNAP_NOT_SERVING 4 /* no answer: the sender is not serving; ask later */
#define SNAP_WAITING 8     /* no answer: catching up itself from a member that holds data */
#define SNAP_PARTIAL 16    /* the sender is catching up too: what it holds so far */
/* A SNAPSHOT entry's form byte: a SEED's form, with this bit when a
 * read-modify-write made the value (cluster/WRITES.md rule 36). */
#define SNAP_FORM_RMW 0x80

/* A length-prefixed byte string inside a decoded payload (not owned). */
typedef struct frame_bytes {
    const uint8_t *p;
    uint32_t len;
} frame_bytes_t;

typedef struct frame_hdr {
    uint8_t type;
    uint32_t len; /* payload length */
    uint64_t seq;
    const uint8_t *payload; /* points into the caller's buffer */
} frame_hdr_t;

/* Errors of frame_decode / frame_read_* (negative). */
enum frame_err {
    FRAME_EMAGIC = -1,   /* not a frame: wrong magic */
    FRAME_EVERSION = -2, /* unsupported version */
    FRAME_ETYPE = -3,    /* unknown type or reserved bits set */
    FRAME_ETOOBIG = -4,  /* payload length over the limit */
    FRAME_EMAC = -5,     /* authentication failed */
    FRAME_ESEQ = -6,     /* sequence number not the expected one (replay, loss) */
    FRAME_EMALFORMED = -7 /* payload does not parse */
};
const char *frame_strerror(int err);

/* Splits one frame off the front of data. Returns the frame's total size
 * (> 0) when a whole frame is present and its header is valid, 0 when more
 * bytes are needed, or a negative frame_err. Checks magic, version, type,
 * reserved bits and max_payload before waiting for the rest (each as soon as
 * its bytes are present); then the MAC (with key; NULL fails with
 * FRAME_EMAC) and the sequence number: 0 on HELLO, WELCOME and
 * PROOF, and when expect_seq is not NULL, equal to *expect_seq (which starts
 * at 1 and is then incremented). *out and *expect_seq change only when a
 * frame is returned. */
/* A MAC key and its keyed HMAC context (one per link and direction). */
typedef struct frame_key {
    uint8_t bytes[FRAME_KEY_SIZE];
    void *ctx; /* OpenSSL's EVP_MAC_CTX, owned; NULL until frame_key_init */
} frame_key_t;

/* Sets k (zeroed, or initialised before) to bytes and keys its context. */
void frame_key_init(frame_key_t *k, const uint8_t bytes[FRAME_KEY_SIZE]);
/* Frees k's context and wipes its bytes. */
void frame_key_free(frame_key_t *k);

long frame_decode(const uint8_t *data, size_t len, uint32_t max_payload, const frame_key_t *key,
                  uint64_t *expect_seq, frame_hdr_t *out);

/* Encoding: frame_begin writes a header with a zero length, the caller
 * appends payload with the frame_put_* calls, and frame_end patches the
 * length and appends the MAC. *seq_counter (when not NULL) is incremented and
 * its new value written as the sequence number. frame_begin returns the
 * frame's offset from buf_head(b), for frame_end; nothing may be consumed
 * from b in between. */
size_t frame_begin(buf_t *b, uint8_t type, uint64_t *seq_counter);
void frame_put_u8(buf_t *b, uint8_t v);
void frame_put_u16(buf_t *b, uint16_t v);
void frame_put_u32(buf_t *b, uint32_t v);
void frame_put_u64(buf_t *b, uint64_t v);
void frame_put_bytes(buf_t *b, const void *p, size_t len);
void frame_end(buf_t *b, size_t start, const frame_key_t *key);

/* Payload reader: a cursor that never reads past the end. Each call returns 0,
 * or FRAME_EMALFORMED once the payload is exhausted (and stays failed). */
typedef struct frame_reader {
    const uint8_t *p;
    size_t left;
    int failed;
} frame_reader_t;
void frame_reader_init(frame_reader_t *r, const frame_hdr_t *h);
int frame_get_u8(frame_reader_t *r, uint8_t *v);
int frame_get_u16(frame_reader_t *r, uint16_t *v);
int frame_get_u32(frame_reader_t *r, uint32_t *v);
int frame_get_u64(frame_reader_t *r, uint64_t *v);
int frame_get_bytes(frame_reader_t *r, frame_bytes_t *v, uint32_t max_len);
/* 0 when every byte was consumed and nothing failed. */
int frame_reader_done(const frame_reader_t *r);

/* INTEREST and MESSAGE payloads (written between frame_begin and
 * frame_end). INTEREST's head, then count entries: */
void frame_put_interest_head(buf_t *b, uint8_t flags, uint32_t count);
void frame_put_interest(buf_t *b, uint8_t kind, uint32_t subscribers, const void *name,
                        size_t len);
/* One message of a MESSAGE payload (a payload holds one or more, back to
 * back). */
void frame_put_message(buf_t *b, uint8_t flags, const void *ch, size_t chlen, const void *msg,
                       size_t mlen);

typedef struct frame_interest {
    uint8_t kind; /* enum interest_kind */
    uint32_t subscribers;
    frame_bytes_t name;
} frame_interest_t;
typedef struct frame_message {
    uint8_t flags;
    frame_bytes_t channel;
    frame_bytes_t payload;
} frame_message_t;

/* Reads INTEREST's flags and entry count. Returns 0, or FRAME_EMALFORMED
 * (short, unknown flag bits). */
int frame_get_interest_head(frame_reader_t *r, uint8_t *flags, uint32_t *count);
/* Reads the next INTEREST entry (names up to max_name bytes). Returns 0 with
 * *e set (pointing into the payload), or FRAME_EMALFORMED (short entry,
 * unknown kind, name too long). */
int frame_get_interest(frame_reader_t *r, frame_interest_t *e, uint32_t max_name);
/* Reads the next message of a MESSAGE payload (channel and payload up to
 * max_len bytes each). Returns 0 with *m pointing into the payload, or
 * FRAME_EMALFORMED (unknown flags, short entry, too long). The payload is
 * done when r->left is 0. */
int frame_get_message(frame_reader_t *r, frame_message_t *m, uint32_t max_len);
/* Checks a whole MESSAGE payload: one or more messages, nothing left over.
 * Returns the number of messages (> 0), or FRAME_EMALFORMED. */
long frame_count_messages(const frame_hdr_t *h, uint32_t max_len);

/* PRESENCE payloads: the head, then count entries (meta only for
 * PRESENCE_JOIN). */
void frame_put_presence_head(buf_t *b, uint8_t flags, uint32_t count);
void frame_put_presence(buf_t *b, uint8_t op, const void *ch, size_t chlen, const void *member,
                        size_t mlen, const void *meta, size_t metalen);
typedef struct frame_presence {
    uint8_t op; /* enum presence_frame_op */
    frame_bytes_t channel;
    frame_bytes_t member;
    frame_bytes_t meta; /* empty unless PRESENCE_JOIN */
} frame_presence_t;
/* Reads PRESENCE's flags and count. Returns 0, or FRAME_EMALFORMED. */
int frame_get_presence_head(frame_reader_t *r, uint8_t *flags, uint32_t *count);
/* Reads the next PRESENCE entry (each byte string up to max_len). Returns 0
 * with *e pointing into the payload, or FRAME_EMALFORMED (short, unknown
 * op, too long). */
int frame_get_presence(frame_reader_t *r, frame_presence_t *e, uint32_t max_len);

/* Handshake cryptography. role is "initiator" or "acceptor". names is the
 * initiator's node name followed by the acceptor's. Returns 0 or -1. */
int frame_nonce(uint8_t nonce[FRAME_NONCE_SIZE]);
/* The two link keys of a handshake over nonces nonce_i and nonce_a: i2a for
 * frames from the initiator to the acceptor, a2i for the other way. */
void frame_link_keys(const uint8_t *cluster_key, size_t klen, const uint8_t *nonce_i,
                     const uint8_t *nonce_a, uint8_t i2a[FRAME_KEY_SIZE],
                     uint8_t a2i[FRAME_KEY_SIZE]);
void frame_proof(const uint8_t *cluster_key, size_t klen, const char *role, const uint8_t *nonce_i,
                 const uint8_t *nonce_a, const char *name_i, const char *name_a,
                 uint8_t out[FRAME_MAC_SIZE]);
/* Constant-time comparison of two MACs; 1 when equal. */
int frame_mac_equal(const uint8_t *a, const uint8_t *b, size_t len);

/* Derives the 32-byte key used to MAC HELLO/WELCOME from the cluster key file
 * contents (HMAC(secret, "cohort cluster key")). */
void frame_cluster_key(const uint8_t *secret, size_t len, uint8_t out[FRAME_KEY_SIZE]);

#endif
