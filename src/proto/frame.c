/* frame: the peer-link wire format and the handshake's cryptography; see
 * frame.h for the byte table, the payload of every type and the proofs.
 *
 * Owns: the header's byte layout (frozen below with static_assert), the
 * checks a frame passes before anything in it is believed, and every byte
 * string that goes into an HMAC.
 * Never: reads past the length it is given, believes a length before it is
 * checked against the limit and the bytes present, allocates per frame (a
 * decoded frame points into the caller's buffer; the few HMAC contexts are
 * made once per key, see frame_key_init), or compares a MAC with anything but a
 * constant-time comparison.
 *
 * Decoding order (frame_decode), each step only once its bytes are present:
 *   1. magic, version, type, reserved, length <= limit: from the first byte
 *      that arrives, so a wrong or oversized frame is refused at once and
 *      nothing waits for a length the peer made up;
 *   2. the whole frame present (else 0: need more);
 *   3. the MAC over header and payload, compared in constant time;
 *   4. the sequence number (after the MAC, so an attacker cannot probe it).
 * Only then are *out and *expect_seq written. */
#include "frame.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

/* ------------------------------------------------------------ layout */

/* The header as bytes on the wire: every field a byte array, so the struct
 * has no padding and no alignment, and offsetof gives the wire offset. */
struct frame_wire_hdr {
    uint8_t magic[4];    /* "CHRT" */
    uint8_t version;     /* FRAME_VERSION */
    uint8_t type;        /* enum frame_type */
    uint8_t reserved[2]; /* 0 */
    uint8_t len[4];      /* payload length, big-endian */
    uint8_t seq[8];      /* sequence number, big-endian */
};

#define WIRE_OFF(f)  offsetof(struct frame_wire_hdr, f)
#define WIRE_SIZE(f) sizeof(((struct frame_wire_hdr *)0)->f)

static_assert(WIRE_OFF(magic) == 0 && WIRE_SIZE(magic) == 4, "frame magic at 0, 4 bytes");
static_assert(WIRE_OFF(version) == 4 && WIRE_SIZE(version) == 1, "frame version at 4");
static_assert(WIRE_OFF(type) == 5 && WIRE_SIZE(type) == 1, "frame type at 5");
static_assert(WIRE_OFF(reserved) == 6 && WIRE_SIZE(reserved) == 2, "frame reserved at 6");
static_assert(WIRE_OFF(len) == 8 && WIRE_SIZE(len) == 4, "frame length at 8, 4 bytes");
static_assert(WIRE_OFF(seq) == 12 && WIRE_SIZE(seq) == 8, "frame seq at 12, 8 bytes");
static_assert(sizeof(struct frame_wire_hdr) == FRAME_HEADER_SIZE, "frame header is 20 bytes");
static_assert(sizeof(FRAME_MAGIC) - 1 == WIRE_SIZE(magic), "magic fills its field");
static_assert(FRAME_MAC_SIZE == 32 && FRAME_KEY_SIZE == 32, "HMAC-SHA256 sizes");
static_assert(FRAME_TYPE_MAX < 256, "type fits its byte");

/* ------------------------------------------------------------ big-endian */

static inline uint64_t get_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static inline void put_be(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = n; i-- > 0; v >>= 8)
        p[i] = (uint8_t)v;
}

/* ------------------------------------------------------------ HMAC */

/* One piece of a MAC's input. */
struct mac_part {
    const void *p;
    size_t len;
};

static void crypto_fail(const char *what)
{
    fprintf(stderr, "cohortd: OpenSSL failed in %s\n", what);
    abort();
}

/* A new HMAC-SHA256 context, not yet keyed. */
static EVP_MAC_CTX *mac_ctx_new(void)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!mac)
        crypto_fail("EVP_MAC_fetch");
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac); /* the context keeps its own reference */
    if (!ctx)
        crypto_fail("EVP_MAC_CTX_new");
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (!EVP_MAC_CTX_set_params(ctx, params))
        crypto_fail("EVP_MAC_CTX_set_params");
    return ctx;
}

static void mac_run(EVP_MAC_CTX *ctx, const struct mac_part *parts, size_t n,
                    uint8_t out[FRAME_MAC_SIZE])
{
    size_t outl = 0;
    for (size_t i = 0; i < n; i++)
        if (parts[i].len && !EVP_MAC_update(ctx, parts[i].p, parts[i].len))
            crypto_fail("EVP_MAC_update");
    if (!EVP_MAC_final(ctx, out, &outl, FRAME_MAC_SIZE) || outl != FRAME_MAC_SIZE)
        crypto_fail("EVP_MAC_final");
}

/* Writes HMAC-SHA256(key, parts[0] | parts[1] | ...) to out, for keys of any
 * length (the handshake's derivations). OpenSSL fails here only when it
 * cannot allocate: that aborts, as mem.h does. */
static _Thread_local EVP_MAC_CTX *any_key_ctx;

static void mac_parts(const uint8_t *key, size_t klen, const struct mac_part *parts, size_t n,
                      uint8_t out[FRAME_MAC_SIZE])
{
    static const uint8_t nokey[1]; /* HMAC allows an empty key; OpenSSL wants a pointer */
    if (!any_key_ctx)
        any_key_ctx = mac_ctx_new();
    if (!EVP_MAC_init(any_key_ctx, klen ? key : nokey, klen, NULL))
        crypto_fail("EVP_MAC_init");
    mac_run(any_key_ctx, parts, n, out);
}

/* Frame MACs run on the path of every cache flush. Fetching HMAC and making a
 * context costs several times the MAC of a small frame, and keying a context
 * costs almost as much as rerunning it with its key kept, so every frame key
 * (one per link and direction, and the cluster key) keeps its own keyed
 * context, made by frame_key_init. */
void frame_key_init(frame_key_t *k, const uint8_t bytes[FRAME_KEY_SIZE])
{
    memcpy(k->bytes, bytes, FRAME_KEY_SIZE);
    EVP_MAC_CTX *ctx = k->ctx ? k->ctx : mac_ctx_new();
    if (!EVP_MAC_init(ctx, k->bytes, FRAME_KEY_SIZE, NULL))
        crypto_fail("EVP_MAC_init");
    k->ctx = ctx;
}

void frame_key_free(frame_key_t *k)
{
    EVP_MAC_CTX_free(k->ctx);
    k->ctx = NULL;
    OPENSSL_cleanse(k->bytes, sizeof(k->bytes));
}

static void mac_frame(const frame_key_t *key, const uint8_t *frame, size_t len,
                      uint8_t out[FRAME_MAC_SIZE])
{
    struct mac_part part = {frame, len};
    if (!EVP_MAC_init(key->ctx, NULL, 0, NULL)) /* run again with the key it holds */
        crypto_fail("EVP_MAC_init");
    mac_run(key->ctx, &part, 1, out);
}

int frame_mac_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

/* ------------------------------------------------------------ errors */

static const char *const frame_errors[] = {
    [0] = "ok",
    [-FRAME_EMAGIC] = "not a cohort frame (bad magic)",
    [-FRAME_EVERSION] = "unsupported frame version",
    [-FRAME_ETYPE] = "unknown frame type or reserved bits set",
    [-FRAME_ETOOBIG] = "frame payload over the limit",
    [-FRAME_EMAC] = "frame authentication failed",
    [-FRAME_ESEQ] = "unexpected frame sequence number",
    [-FRAME_EMALFORMED] = "malformed frame payload",
};

const char *frame_strerror(int err)
{
    size_t i = err <= 0 ? (size_t)(-(long)err) : SIZE_MAX;
    if (i < sizeof(frame_errors) / sizeof(frame_errors[0]) && frame_errors[i])
        return frame_errors[i];
    return "unknown frame error";
}

/* ------------------------------------------------------------ decoding */

static int is_handshake(uint8_t type)
{
    return type == FRAME_HELLO || type == FRAME_WELCOME || type == FRAME_PROOF;
}

/* Checks the header fields whose bytes are among the first len: 0 when they
 * are valid so far, else the error. Called before the header is complete, so
 * a stream that is not ours is refused on its first wrong byte. */
static int check_header_prefix(const uint8_t *d, size_t len, uint32_t max_payload)
{
    size_t m = len < WIRE_SIZE(magic) ? len : WIRE_SIZE(magic);
    if (memcmp(d + WIRE_OFF(magic), FRAME_MAGIC, m) != 0)
        return FRAME_EMAGIC;
    if (len > WIRE_OFF(version) && d[WIRE_OFF(version)] != FRAME_VERSION)
        return FRAME_EVERSION;
    if (len > WIRE_OFF(type)) {
        uint8_t t = d[WIRE_OFF(type)];
        if (t < FRAME_HELLO || t > FRAME_TYPE_MAX)
            return FRAME_ETYPE;
    }
    for (size_t i = WIRE_OFF(reserved); i < WIRE_OFF(reserved) + WIRE_SIZE(reserved); i++)
        if (len > i && d[i] != 0)
            return FRAME_ETYPE;
    if (len >= WIRE_OFF(len) + WIRE_SIZE(len) &&
        get_be(d + WIRE_OFF(len), WIRE_SIZE(len)) > max_payload)
        return FRAME_ETOOBIG;
    return 0;
}

long frame_decode(const uint8_t *data, size_t len, uint32_t max_payload, const frame_key_t *key,
                  uint64_t *expect_seq, frame_hdr_t *out)
{
    if (len == 0)
        return 0;
    int rc = check_header_prefix(data, len, max_payload);
    if (rc < 0)
        return rc;
    if (len < FRAME_HEADER_SIZE)
        return 0;

    uint32_t n = (uint32_t)get_be(data + WIRE_OFF(len), WIRE_SIZE(len));
    uint64_t total = (uint64_t)FRAME_HEADER_SIZE + n + FRAME_MAC_SIZE;
    if (total > LONG_MAX || total > SIZE_MAX) /* only with a 32-bit long */
        return FRAME_ETOOBIG;
    if (len < total)
        return 0;

    if (!key || !key->ctx)
        return FRAME_EMAC;
    uint8_t mac[FRAME_MAC_SIZE];
    mac_frame(key, data, FRAME_HEADER_SIZE + (size_t)n, mac);
    if (!frame_mac_equal(mac, data + FRAME_HEADER_SIZE + n, FRAME_MAC_SIZE))
        return FRAME_EMAC;

    uint8_t type = data[WIRE_OFF(type)];
    uint64_t seq = get_be(data + WIRE_OFF(seq), WIRE_SIZE(seq));
    if (is_handshake(type) && seq != 0)
        return FRAME_ESEQ;
    if (expect_seq) {
        if (seq != *expect_seq)
            return FRAME_ESEQ;
        (*expect_seq)++;
    }
    out->type = type;
    out->len = n;
    out->seq = seq;
    out->payload = data + FRAME_HEADER_SIZE;
    return (long)total;
}

/* ------------------------------------------------------------ encoding */

static inline void put_uint(buf_t *b, uint64_t v, size_t n)
{
    put_be((uint8_t *)buf_reserve(b, n), v, n);
    buf_commit(b, n);
}

size_t frame_begin(buf_t *b, uint8_t type, uint64_t *seq_counter)
{
    assert(type >= FRAME_HELLO && type <= FRAME_TYPE_MAX);
    size_t start = buf_len(b);
    struct frame_wire_hdr h;
    memcpy(h.magic, FRAME_MAGIC, sizeof(h.magic));
    h.version = FRAME_VERSION;
    h.type = type;
    memset(h.reserved, 0, sizeof(h.reserved));
    memset(h.len, 0, sizeof(h.len)); /* patched by frame_end */
    put_be(h.seq, seq_counter ? ++*seq_counter : 0, sizeof(h.seq));
    buf_append(b, &h, sizeof(h));
    return start;
}

void frame_put_u8(buf_t *b, uint8_t v)
{
    put_uint(b, v, 1);
}

void frame_put_u16(buf_t *b, uint16_t v)
{
    put_uint(b, v, 2);
}

void frame_put_u32(buf_t *b, uint32_t v)
{
    put_uint(b, v, 4);
}

void frame_put_u64(buf_t *b, uint64_t v)
{
    put_uint(b, v, 8);
}

void frame_put_bytes(buf_t *b, const void *p, size_t len)
{
    if (len > UINT32_MAX) {
        fprintf(stderr, "cohortd: frame field of %zu bytes cannot be encoded\n", len);
        abort();
    }
    uint8_t *d = (uint8_t *)buf_reserve(b, 4 + len);
    put_be(d, len, 4);
    if (len)
        memcpy(d + 4, p, len);
    buf_commit(b, 4 + len);
}

void frame_end(buf_t *b, size_t start, const frame_key_t *key)
{
    assert(key && start + FRAME_HEADER_SIZE <= buf_len(b));
    size_t n = buf_len(b) - start - FRAME_HEADER_SIZE;
    if (n > UINT32_MAX) {
        fprintf(stderr, "cohortd: frame payload of %zu bytes cannot be encoded\n", n);
        abort();
    }
    uint8_t *mac = (uint8_t *)buf_reserve(b, FRAME_MAC_SIZE); /* may move the data */
    uint8_t *frame = (uint8_t *)buf_head(b) + start;
    put_be(frame + WIRE_OFF(len), n, WIRE_SIZE(len));
    mac_frame(key, frame, FRAME_HEADER_SIZE + n, mac);
    buf_commit(b, FRAME_MAC_SIZE);
}

/* ------------------------------------------------------------ payload reader */

void frame_reader_init(frame_reader_t *r, const frame_hdr_t *h)
{
    r->p = h->payload;
    r->left = h->len;
    r->failed = 0;
}

/* Takes n bytes off the front: returns them, or NULL (and the reader fails
 * for good) when fewer are left. */
static const uint8_t *take(frame_reader_t *r, size_t n)
{
    if (r->failed || n > r->left) {
        r->failed = 1;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static int get_uint(frame_reader_t *r, size_t n, uint64_t *v)
{
    const uint8_t *p = take(r, n);
    *v = p ? get_be(p, n) : 0;
    return p ? 0 : FRAME_EMALFORMED;
}

int frame_get_u8(frame_reader_t *r, uint8_t *v)
{
    uint64_t x;
    int rc = get_uint(r, 1, &x);
    *v = (uint8_t)x;
    return rc;
}

int frame_get_u16(frame_reader_t *r, uint16_t *v)
{
    uint64_t x;
    int rc = get_uint(r, 2, &x);
    *v = (uint16_t)x;
    return rc;
}

int frame_get_u32(frame_reader_t *r, uint32_t *v)
{
    uint64_t x;
    int rc = get_uint(r, 4, &x);
    *v = (uint32_t)x;
    return rc;
}

int frame_get_u64(frame_reader_t *r, uint64_t *v)
{
    return get_uint(r, 8, v);
}

int frame_get_bytes(frame_reader_t *r, frame_bytes_t *v, uint32_t max_len)
{
    uint32_t n;
    v->p = NULL;
    v->len = 0;
    if (frame_get_u32(r, &n) < 0)
        return FRAME_EMALFORMED;
    if (n > max_len) {
        r->failed = 1;
        return FRAME_EMALFORMED;
    }
    const uint8_t *p = take(r, n);
    if (!p)
        return FRAME_EMALFORMED;
    v->p = p;
    v->len = n;
    return 0;
}

int frame_reader_done(const frame_reader_t *r)
{
    return r->failed || r->left ? FRAME_EMALFORMED : 0;
}

/* ---- INTEREST and MESSAGE ------------------------------------------------ */

void frame_put_interest_head(buf_t *b, uint8_t flags, uint32_t count)
{
    assert((flags & ~INTEREST_FULL) == 0);
    frame_put_u8(b, flags);
    frame_put_u32(b, count);
}

void frame_put_interest(buf_t *b, uint8_t kind, uint32_t subscribers, const void *name,
                        size_t len)
{
    assert(kind < INTEREST_KINDS);
    frame_put_u8(b, kind);
    frame_put_u32(b, subscribers);
    frame_put_bytes(b, name, len);
}

void frame_put_message(buf_t *b, uint8_t flags, const void *ch, size_t chlen, const void *msg,
                       size_t mlen)
{
    frame_put_u8(b, flags);
    frame_put_bytes(b, ch, chlen);
    frame_put_bytes(b, msg, mlen);
}

static int fail_reader(frame_reader_t *r)
{
    r->failed = 1;
    return FRAME_EMALFORMED;
}

int frame_get_interest_head(frame_reader_t *r, uint8_t *flags, uint32_t *count)
{
    if (frame_get_u8(r, flags) < 0 || frame_get_u32(r, count) < 0)
        return FRAME_EMALFORMED;
    return (*flags & ~INTEREST_FULL) ? fail_reader(r) : 0;
}

int frame_get_interest(frame_reader_t *r, frame_interest_t *e, uint32_t max_name)
{
    memset(e, 0, sizeof(*e));
    if (frame_get_u8(r, &e->kind) < 0 || frame_get_u32(r, &e->subscribers) < 0 ||
        frame_get_bytes(r, &e->name, max_name) < 0)
        return FRAME_EMALFORMED;
    return e->kind < INTEREST_KINDS ? 0 : fail_reader(r);
}

int frame_get_message(frame_reader_t *r, frame_message_t *m, uint32_t max_len)
{
    memset(m, 0, sizeof(*m));
    if (frame_get_u8(r, &m->flags) < 0 || frame_get_bytes(r, &m->channel, max_len) < 0 ||
        frame_get_bytes(r, &m->payload, max_len) < 0)
        return FRAME_EMALFORMED;
    return (m->flags & ~MESSAGE_SHARD) ? fail_reader(r) : 0;
}

long frame_count_messages(const frame_hdr_t *h, uint32_t max_len)
{
    frame_reader_t r;
    frame_reader_init(&r, h);
    long n = 0;
    do {
        frame_message_t m;
        if (frame_get_message(&r, &m, max_len) < 0)
            return FRAME_EMALFORMED;
        n++;
    } while (r.left);
    return n;
}

/* ---- PRESENCE -------------------------------------------------------------- */

void frame_put_presence_head(buf_t *b, uint8_t flags, uint32_t count)
{
    assert((flags & ~PRESENCE_FLAGS) == 0);
    frame_put_u8(b, flags);
    frame_put_u32(b, count);
}

void frame_put_presence(buf_t *b, uint8_t op, const void *ch, size_t chlen, const void *member,
                        size_t mlen, const void *meta, size_t metalen)
{
    assert(op >= PRESENCE_JOIN && op <= PRESENCE_EXPIRE);
    frame_put_u8(b, op);
    frame_put_bytes(b, ch, chlen);
    frame_put_bytes(b, member, mlen);
    if (op == PRESENCE_JOIN)
        frame_put_bytes(b, meta, metalen);
}

int frame_get_presence_head(frame_reader_t *r, uint8_t *flags, uint32_t *count)
{
    if (frame_get_u8(r, flags) < 0 || frame_get_u32(r, count) < 0)
        return FRAME_EMALFORMED;
    return (*flags & ~PRESENCE_FLAGS) ? fail_reader(r) : 0;
}

int frame_get_presence(frame_reader_t *r, frame_presence_t *e, uint32_t max_len)
{
    memset(e, 0, sizeof(*e));
    if (frame_get_u8(r, &e->op) < 0)
        return FRAME_EMALFORMED;
    if (e->op < PRESENCE_JOIN || e->op > PRESENCE_EXPIRE)
        return fail_reader(r);
    if (frame_get_bytes(r, &e->channel, max_len) < 0 ||
        frame_get_bytes(r, &e->member, max_len) < 0)
        return FRAME_EMALFORMED;
    if (e->op == PRESENCE_JOIN && frame_get_bytes(r, &e->meta, max_len) < 0)
        return FRAME_EMALFORMED;
    return 0;
}

/* ------------------------------------------------------------ handshake */

int frame_nonce(uint8_t nonce[FRAME_NONCE_SIZE])
{
    return RAND_bytes(nonce, FRAME_NONCE_SIZE) == 1 ? 0 : -1;
}

/* The labels below are written without their NUL and none is a prefix of
 * another ("cohort l", "cohort a", "cohort i", "cohort c"), and every frame
 * starts with "CHRT": no two uses of one key ever MAC the same bytes. */
#define LABEL(s) s, sizeof(s) - 1

/* Input bytes: "cohort link" (11 bytes) | nonce_i (32) | nonce_a (32). */
/* HKDF-SHA256 (RFC 5869) of the cluster key, salted with both nonces, one
 * output per direction: a frame sent one way does not authenticate the
 * other way, so a man in the middle cannot reflect a node's own frames back
 * to it. */
static void hkdf(const uint8_t *ikm, size_t ikmlen, const uint8_t *salt, size_t saltlen,
                 const char *info, uint8_t out[FRAME_KEY_SIZE])
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (!ctx)
        crypto_fail("EVP_KDF_CTX_new(HKDF)");
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikmlen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info)),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_KDF_derive(ctx, out, FRAME_KEY_SIZE, params) != 1)
        crypto_fail("EVP_KDF_derive(HKDF)");
    EVP_KDF_CTX_free(ctx);
}

void frame_link_keys(const uint8_t *cluster_key, size_t klen, const uint8_t *nonce_i,
                     const uint8_t *nonce_a, uint8_t i2a[FRAME_KEY_SIZE],
                     uint8_t a2i[FRAME_KEY_SIZE])
{
    uint8_t salt[2 * FRAME_NONCE_SIZE];
    memcpy(salt, nonce_i, FRAME_NONCE_SIZE);
    memcpy(salt + FRAME_NONCE_SIZE, nonce_a, FRAME_NONCE_SIZE);
    hkdf(cluster_key, klen, salt, sizeof(salt), "cohort link initiator to acceptor", i2a);
    hkdf(cluster_key, klen, salt, sizeof(salt), "cohort link acceptor to initiator", a2i);
}

/* The roles a proof can be made for, with their labels. */
static const struct {
    const char *role;
    const char *label;
    size_t label_len;
} proof_roles[] = {
    {"acceptor", LABEL("cohort acceptor")},
    {"initiator", LABEL("cohort initiator")},
};

/* Input bytes: label ("cohort acceptor", 15 bytes, or "cohort initiator", 16)
 * | nonce_i (32) | nonce_a (32) | u32 big-endian length of name_i | name_i |
 * u32 big-endian length of name_a | name_a. The lengths keep the names apart:
 * "ab" + "c" and "a" + "bc" give different proofs. */
void frame_proof(const uint8_t *cluster_key, size_t klen, const char *role, const uint8_t *nonce_i,
                 const uint8_t *nonce_a, const char *name_i, const char *name_a,
                 uint8_t out[FRAME_MAC_SIZE])
{
    size_t r = 0;
    while (r < sizeof(proof_roles) / sizeof(proof_roles[0]) && strcmp(proof_roles[r].role, role))
        r++;
    if (r == sizeof(proof_roles) / sizeof(proof_roles[0])) {
        fprintf(stderr, "cohortd: frame_proof: unknown role \"%s\"\n", role);
        abort();
    }
    size_t li = strlen(name_i), la = strlen(name_a);
    if (li > UINT32_MAX || la > UINT32_MAX) {
        fprintf(stderr, "cohortd: frame_proof: node name too long\n");
        abort();
    }
    uint8_t len_i[4], len_a[4];
    put_be(len_i, li, 4);
    put_be(len_a, la, 4);
    const struct mac_part parts[] = {
        {proof_roles[r].label, proof_roles[r].label_len},
        {nonce_i, FRAME_NONCE_SIZE},
        {nonce_a, FRAME_NONCE_SIZE},
        {len_i, 4},
        {name_i, li},
        {len_a, 4},
        {name_a, la},
    };
    mac_parts(cluster_key, klen, parts, sizeof(parts) / sizeof(parts[0]), out);
}

/* Input bytes: "cohort cluster key" (18 bytes), keyed with the key file's
 * contents as read. */
void frame_cluster_key(const uint8_t *secret, size_t len, uint8_t out[FRAME_KEY_SIZE])
{
    const struct mac_part part = {LABEL("cohort cluster key")};
    mac_parts(secret, len, &part, 1, out);
}
