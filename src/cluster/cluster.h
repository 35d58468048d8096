/* cluster: this node's membership in a cohort cluster, as the rest of the
 * daemon sees it.
 *
 * Owns: nothing the commands touch directly; it is the facade over the member
 * table (membership.c), the peer links (peer.c), coherent flushes
 * (coherence.c) and cluster-wide pub/sub (interest.c: members' messages reach
 * this node's subscribers through cluster_host_t.deliver).
 * Never: blocks, touches the cache or a client. A flush is applied locally
 * by the caller at once; the caller holds its reply (net's blocked clients)
 * until cluster_reply_ready says every member that could still serve the old
 * value has applied it. Members' flushes reach this node's cache through the
 * cluster_host_t handed to cluster_start.
 *
 * A node without [cluster] key_file runs alone: every function here is then a
 * cheap no-op (the cluster is NULL and the calls accept NULL). */
#ifndef COHORT_CLUSTER_H
#define COHORT_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "config.h"

typedef struct cluster cluster_t;

/* Where a catch-up snapshot's entries go (cluster_host_t.snapshot). */
typedef struct cluster_snap_out {
    void (*emit)(void *eud, const char *key, size_t klen, const char *val, size_t vlen,
                 int64_t expire_at, int enc, uint64_t version);
    /* key's value is a proposal undecided here: sent once decided
     * (snapshot_key). Returns 0 when it cannot wait (too many wait): the
     * key is emitted at once, its undecided value after what it replaced. */
    int (*defer)(void *eud, const char *key, size_t klen);
    void *eud;
} cluster_snap_out_t;

/* What the cluster needs from the node it runs in, handed over at start. */
typedef struct cluster_host {
    void *ud;
    /* Applies a member's flush to this node's cache: kind is an enum
     * flush_kind (frame.h); val, vlen, expire_at and enc are for FLUSH_SEED
     * and FLUSH_PROPOSE (for FLUSH_INVAL, val is the 8-byte digest);
     * version orders it against every other write and flush of the key
     * (cache/versioned.h); origin (the member's index) and seq (its flush
     * number) say whose write it is, for COMMIT and ABORT. Returns 1, or 0
     * when a FLUSH_PROPOSE is refused (a newer version of the key is here:
     * the origin is sent a NACK). */
    int (*apply)(void *ud, int kind, const char *key, size_t klen, const char *val, size_t vlen,
                 int64_t expire_at, int enc, uint64_t version, int origin, uint64_t seq);
    /* Drops this node's whole cache; returns the keys dropped. */
    size_t (*drop_all)(void *ud);
    /* A member's flushes up to this version were skipped (a RESET): from
     * now on nothing older may be applied, as if a flush of everything had
     * that version (without removing anything). */
    void (*skipped_upto)(void *ud, uint64_t version);
    /* Acknowledgements arrived, time passed or a member left: held replies
     * may be ready (ask cluster_reply_ready). */
    void (*progress)(void *ud);
    /* Takes note of a version made elsewhere (hlc_observe). */
    void (*observe)(void *ud, uint64_t version);
    /* The version of this incarnation's start (hlc_at of its start time):
     * a member meeting it for the first time need not replay flushes older
     * than this (less a margin for clock skew), which cannot touch a cache
     * that started empty after them. */
    uint64_t start_version;
    /* Catch-up (NULL when no key replicates): visits this node's entries of
     * replicated keyspaces from cursor (0: the start), passing each to
     * out->emit, or the key of a write still undecided here to out->defer,
     * until about budget bytes were emitted; returns the cursor to continue
     * from, 0 when done. */
    uint64_t (*snapshot)(void *ud, uint64_t cursor, size_t budget, const cluster_snap_out_t *out);
    /* Applies a member's snapshot entry: as a SEED, except that the floor
     * this cache got at its start (or when it was dropped) does not apply. */
    void (*apply_snapshot)(void *ud, const char *key, size_t klen, const char *val, size_t vlen,
                           int64_t expire_at, int enc, uint64_t version);
    /* Delivers a message a member published to this node's subscribers
     * (channel and matching pattern subscribers, or shard channel
     * subscribers when shard). NULL: dropped. */
    void (*deliver)(void *ud, const char *ch, size_t chlen, const char *msg, size_t mlen,
                    int shard);
    /* The writes of origin (a member's index, or CLUSTER_SELF for this
     * node's own) up to flush number upto are committed, but those it
     * aborted. NULL: not told. */
    void (*committed)(void *ud, int origin, uint64_t upto);
    /* origin's PROPOSE seq was refused somewhere and will not commit. */
    void (*aborted)(void *ud, int origin, uint64_t seq);
    /* origin's incarnation is gone (dead, or restarted): its writes in
     * flight here will never be committed by it. hold: this node is
     * catching up; they wait, apart from origin's next process's, for
     * replay_held (WRITES.md rule 37). */
    void (*origin_gone)(void *ud, int origin, int hold);
    /* The node caught up: the writes origin_gone held are decided now. */
    void (*replay_held)(void *ud);
    /* Calls fn with the maker (a member's index) and flush number of every
     * member's write in flight here, not aborted, before a drop of the
     * whole cache: each is refused (NACK), for this node's acknowledgement
     * no longer holds its value. NULL: none kept. */
    void (*each_undecided)(void *ud, void (*fn)(void *fud, int origin, uint64_t seq), void *fud);
    /* Catch-up (with snapshot): a deferred key: 1 while a proposal (the one
     * deferred for, or a newer one) stands undecided on it here (nothing
     * emitted), else emits the key's entries as snapshot does now (never
     * deferring; nothing when out is NULL: a question only) and returns 0. */
    int (*snapshot_key)(void *ud, const char *key, size_t klen, const cluster_snap_out_t *out);
    /* How many keys the cache holds now. NULL: unknown (counted as some). */
    size_t (*held)(void *ud);
} cluster_host_t;

/* Starts the peer listener and links with the settings of cfg (which must
 * outlive the cluster). Returns 0 and sets *out (NULL when no key_file is
 * configured: the node runs alone), or -1 with a message in err. */
int cluster_start(uv_loop_t *loop, const config_t *cfg, const cluster_host_t *host,
                  cluster_t **out, char *err, size_t errlen);
/* Says goodbye to the peers and closes every handle; run the loop after. */
void cluster_stop(cluster_t *cl);

/* A unit: the flushes and writes recorded between begin and end (one EXEC,
 * one script) reach every member in one frame, which the member applies in
 * one go (up to FRAME_UNIT_MAX bytes; a larger one is sent in parts). Units
 * nest: the outermost counts. NULL cl: nothing. */
void cluster_unit_begin(cluster_t *cl);
void cluster_unit_end(cluster_t *cl);

/* Flushes made here (already applied to this node's cache with that
 * version), to be applied on every member. Each returns the flush number to
 * wait for (0 when alone). */
uint64_t cluster_flush_key(cluster_t *cl, const char *key, size_t klen, uint64_t version);
uint64_t cluster_flush_prefix(cluster_t *cl, const char *prefix, size_t plen, uint64_t version);
uint64_t cluster_flush_all(cluster_t *cl, uint64_t version);
uint64_t cluster_seed(cluster_t *cl, const char *key, size_t klen, const char *val, size_t vlen,
                      int64_t expire_at, int enc, uint64_t version);
/* Aborts our proposal seq if it is still undecided: a member's newer
 * proposal of its key from the same value overtook it here (WRITES.md rule
 * 22); counted in writes_yielded. */
void cluster_abort_proposal(cluster_t *cl, uint64_t seq);
/* Refuses (NACKs, until it resolves it) member origin's proposal seq,
 * though this node acknowledged it: another member's newer proposal of its
 * key took its place here before it was decided (WRITES.md rule 47). */
void cluster_refuse_write(cluster_t *cl, int origin, uint64_t seq);
/* A write of a replicated key (already applied here with version, one step
 * above the version it read: hlc_after): members holding a newer version
 * refuse it, and it aborts (host.aborted with CLUSTER_SELF). */
uint64_t cluster_propose(cluster_t *cl, const char *key, size_t klen, const char *val,
                         size_t vlen, int64_t expire_at, int enc, uint64_t version);
#define CLUSTER_SELF (-1) /* origin of this node's own writes (host.committed) */
/* A write of an invalidate-mode key (already applied here): members holding
 * a value whose digest differs from digest drop it. */
uint64_t cluster_invalidate(cluster_t *cl, const char *key, size_t klen, uint64_t digest,
                            uint64_t version);
/* This node's version tag (hlc.h): its rank among the cluster's members by
 * peer address, from 1; 0 when alone. */
uint16_t cluster_version_tag(const cluster_t *cl);

/* 1 when a reply held since 'since' (clock_mono_ms) for our flush
 * number seq may go: every member that could still serve the value it
 * removed has applied it, or cannot serve any more. Always 1 when alone. */
int cluster_reply_ready(cluster_t *cl, uint64_t seq, int64_t since);

/* 1 while cached values may be served (the coherence lease holds for every
 * live member). When 0, reads miss and count as bypasses. */
int cluster_serving(cluster_t *cl);
/* Milliseconds until cluster_serving() turns 0 unless a heartbeat is
 * answered meanwhile: the shortest lease left on a member that is not dead
 * (<= 0: not serving now; INT64_MAX when alone or with no live member).
 * Client tracking stops vouching for clients' caches a margin before. */
int64_t cluster_serving_left_ms(cluster_t *cl);
/* 1 when this node cannot reach a majority of the other members. */
int cluster_cut_off(cluster_t *cl);
/* 1 while this node waits for a member's replicated keyspaces (its cache
 * started empty or was dropped): it does not serve meanwhile. */
int cluster_catching_up(const cluster_t *cl);
/* A one-line reason when not serving, else NULL. */
const char *cluster_why_not_serving(cluster_t *cl);

/* Once per loop turn: sends the flushes batched this turn, one frame per
 * peer, and writes pending peer output. */
void cluster_end_of_turn(cluster_t *cl);

/* Reporting. */
typedef struct member_info {
    const char *name;
    const char *addr; /* host:port */
    const char *state;
    int64_t since_ms; /* wall clock of the last state change */
    double rtt_ms;
    uint64_t flushes_sent;
    uint64_t flushes_received;
    uint64_t last_acked; /* highest of our flush numbers it acknowledged */
    uint64_t incarnation;
} member_info_t;
size_t cluster_member_count(const cluster_t *cl);
void cluster_member_info(const cluster_t *cl, size_t i, member_info_t *out);

typedef struct cluster_counters {
    uint64_t flushes_sent;         /* flush entries sent (per member) */
    uint64_t flushes_received;     /* flush entries applied from members */
    uint64_t flush_frames_sent;
    uint64_t ack_timeouts;         /* a member did not acknowledge in time */
    uint64_t bypasses;             /* reads that missed because of the lease */
    uint64_t cache_drops;          /* whole cache dropped: replay gap */
    uint64_t replayed;             /* flush entries replayed to a member */
    uint64_t writes_yielded;       /* our proposals aborted for a member's (rule 22) */
    uint64_t links_refused;        /* handshake or frame rejected */
    uint64_t state_changes;
    uint64_t pubsub_sent;          /* messages sent to members (one per member) */
    uint64_t pubsub_received;      /* messages received from members */
    uint64_t pubsub_frames_sent;   /* MESSAGE frames sent (several messages each) */
    uint64_t pubsub_lost;          /* messages a member's interest wanted while its link was down */
    uint64_t interest_frames_sent; /* INTEREST frames sent */
    uint64_t presence_frames_sent; /* PRESENCE frames sent */
    uint64_t presence_refused;     /* members' presence entries out of bounds, dropped */
    uint64_t log_appends;          /* appends of our flushes to the store's flush log */
    uint64_t log_applied;          /* members' flushes applied from the store's flush log */
    uint64_t log_released;         /* held-reply checks a member's log cursor or lease satisfied */
} cluster_counters_t;
const cluster_counters_t *cluster_counters(const cluster_t *cl);
/* Counts a read that missed because the node is not serving. */
void cluster_count_bypass(cluster_t *cl);

/* Cluster-wide pub/sub (interest.c). kind is an enum interest_kind
 * (frame.h): channel 0, pattern 1, shard channel 2.
 *
 * This node's local subscribers of kind/name are now subscribers (0: none);
 * members learn it at the end of the turn, and from the full set every new
 * link starts with. */
void cluster_set_interest(cluster_t *cl, int kind, const char *name, size_t len,
                          uint32_t subscribers);
/* Sends a message published here to every member whose announced interest
 * matches (or whose interest is not known yet on a new link). Returns the
 * subscribers it reaches on the members in contact, by their announcements;
 * a member out of contact counts 0 (and the message is counted lost when its
 * last known interest matched). Nothing is kept for a later retry. */
size_t cluster_publish(cluster_t *cl, const char *ch, size_t chlen, const char *msg, size_t mlen,
                       int shard);
/* Subscribers of kind/name on the members in contact. */
size_t cluster_numsub(const cluster_t *cl, int kind, const char *name, size_t len);
/* Names of kind on the members in contact, summed over members. */
size_t cluster_topics(const cluster_t *cl, int kind);
/* Calls fn once per distinct name of kind (matching the glob pat; NULL: all)
 * announced by the members in contact, with its subscribers on them. */
typedef void (*cluster_topic_fn)(void *ud, const char *name, size_t len, size_t subscribers);
void cluster_foreach_topic(const cluster_t *cl, int kind, const char *pat, size_t plen,
                           cluster_topic_fn fn, void *ud);

/* What presence replication (presync.c) needs from the node (each NULL:
 * not copied). Kept apart from cluster_host_t: set once after
 * cluster_start, before the loop runs. */
typedef struct cluster_presence_host {
    void *ud;
    /* Visits every entry this node owns, calling emit for each. */
    void (*presence_owned)(void *ud,
                           void (*emit)(void *eud, const char *ch, size_t chlen,
                                        const char *member, size_t mlen, const char *meta,
                                        size_t metalen),
                           void *eud);
    /* A member's change of its own entry: op an enum presence_frame_op
     * (frame.h), meta only for PRESENCE_JOIN. Returns 0, or -1 when out of
     * bounds (dropped, counted in presence_refused). */
    int (*presence_apply)(void *ud, int origin, int op, const char *ch, size_t chlen,
                          const char *member, size_t mlen, const char *meta, size_t metalen);
    /* origin's full set begins (begin 1) or is complete (begin 0): what was
     * held of it and not in the set is gone. */
    void (*presence_full)(void *ud, int origin, int begin);
} cluster_presence_host_t;
void cluster_set_presence_host(cluster_t *cl, const cluster_presence_host_t *h);

/* Presence (presync.c): a change of this node's own entry (op an enum
 * presence_frame_op; meta only for PRESENCE_JOIN), sent to every member in
 * order at the end of the turn; every new link starts with the full set of
 * this node's entries (host.presence_owned). */
void cluster_presence_change(cluster_t *cl, int op, const char *ch, size_t chlen,
                             const char *member, size_t mlen, const char *meta, size_t metalen);

/* This node's incarnation (new at every start). */
uint64_t cluster_incarnation(const cluster_t *cl);

/* ---- membership decided by the shared store ----------------------------------
 * The cluster sits below the store and never reaches it: the node reads the
 * member rows (src/node/node_store.c) and hands them here. Once an arbiter is
 * set, a member becomes DEAD only through cluster_member_rows (its row expired
 * by the database's clock, it left cleanly, or its session lock is free);
 * refused connections, unanswered probes and dead_after make it at most
 * UNREACHABLE. And this node serves cached values only while its own row is
 * renewed (cluster_own_row). Without an arbiter, membership decides alone, as
 * before (no arbiter: a long-silent member is declared dead on a guess). */
typedef struct cluster_row {
    const char *name;
    const char *addr;     /* the peer address its node wrote (cluster_self_addr) */
    uint64_t incarnation; /* of the row (its node's start), for the log */
    int gone;             /* expired by the database's clock, or left cleanly */
    int lock_free;        /* its session lock is free (its process, or its
                             PostgreSQL session, is gone) */
    const char *why;      /* for the log: which of those */
    int exited;           /* lock_free, and that proves its process ended
                             (store_member_t.lock_free_is_exit) */
    int left;             /* its process marked it left (a clean stop) */
} cluster_row_t;
/* From now on the store decides who is dead (the node calls this once, before
 * the first rows, when a shared store is configured). */
void cluster_set_arbiter(cluster_t *cl);
/* 1 when the store decides who is dead. */
int cluster_has_arbiter(const cluster_t *cl);
/* The cluster's monotonic clock in ms (what cluster_own_row and
 * cluster_member_rows take as the time a query was sent). */
int64_t cluster_now(const cluster_t *cl);
/* This node's peer address as its peers list it ("ip:port"): the address to
 * write in its row. Owned by the cluster. */
const char *cluster_self_addr(const cluster_t *cl);
/* Every member row of one store answer, to a query sent at 'sent'
 * (cluster_now). A member with no row at all counts as gone (it never joined
 * under this store, or its row was removed). */
void cluster_member_rows(cluster_t *cl, int64_t sent, const cluster_row_t *rows, size_t n);
/* This node's row was renewed with ttl_ms by a query sent at 'sent': it may
 * serve cached values until sent + ttl_ms - cluster_row_margin(ttl_ms). */
void cluster_own_row(cluster_t *cl, int64_t sent, int64_t ttl_ms);
/* This node's row is about to be marked left, or its store session (and with
 * it, on PostgreSQL, its session lock) was lost: stop serving cached values
 * now, and hold flush replies for every member's acknowledgement until the
 * row is renewed. */
void cluster_own_row_lost(cluster_t *cl);
/* The margin by which this node stops serving before its row could expire. */
int64_t cluster_row_margin(int64_t ttl_ms);
/* 1 when every member is alive or dead (nothing for the store to settle),
 * and, with an arbiter, every live member's row was read while linked. */
int cluster_members_settled(const cluster_t *cl);

/* ---- the flush log through the shared store (flushlog.c) ---------------------
 * The cluster never reaches the store: the node (src/node/node_flushlog.c)
 * moves bytes between these calls and the store's flush log. See flushlog.c
 * for the rules. */
/* Turns the log on (the node calls it once the store is shared: [store] url,
 * an arbiter, and no member with another store identity) or off. */
void cluster_flushlog_enable(cluster_t *cl, int on);
int cluster_flushlog_on(const cluster_t *cl);
/* Writer. 1 when an append of our flushes is due now. */
int cluster_flushlog_due(cluster_t *cl);
/* Writes the range due as one FLUSH payload to out (caller's buffer) and
 * marks it in flight; returns 0 with *inc and *first set (first 0: a COMMIT
 * entry, payload incarnation and flush number), or -1 when none is due. One
 * append is in flight at a time; report it with ..._appended. */
int cluster_flushlog_take(cluster_t *cl, buf_t *out, uint64_t *inc, uint64_t *first);
/* The append of take committed with log id id (ok), or failed. */
void cluster_flushlog_appended(cluster_t *cl, int ok, int64_t id);
/* 1 when held replies wait for members' log cursors: read them soon. */
int cluster_flushlog_wants_cursors(cluster_t *cl);
/* A member's cursor as the store has it; returns 1 when it moved. Call
 * cluster_flushlog_progress after a batch of them. */
int cluster_flushlog_cursor(cluster_t *cl, const char *reader, int64_t last_id);
void cluster_flushlog_progress(cluster_t *cl);
/* Reader. A poll of the log reads entries in id order from where the last
 * one stopped: begin, apply each entry, then end once the log was read to
 * its end by a read sent at 'started' (cluster_now). apply returns 1 when
 * the entry is done with (applied, or not for this node), 0 when it must be
 * read again later (it leaves the link to deliver flushes before it: do
 * not record a position past it). */
void cluster_flushlog_poll_begin(cluster_t *cl);
int cluster_flushlog_apply(cluster_t *cl, const char *origin, uint64_t inc, uint64_t seq,
                           const void *data, size_t len);
void cluster_flushlog_poll_end(cluster_t *cl, int64_t started);
/* Milliseconds until the next poll (-1: the log is off). */
int64_t cluster_flushlog_poll_ms(cluster_t *cl);

/* ---- the store identity (storeid.c) ------------------------------------------
 * Each node tells its members which store it uses (backend and the id the
 * schema got: store_identity). A member on another store (each host its own
 * SQLite file) means membership has no arbiter: this node then decides who
 * is dead alone (as without [store] url) and turns the flush log off. */
void cluster_set_store_identity(cluster_t *cl, const char *backend, const char *id);
/* Why membership has no arbiter although a store is configured, or NULL. */
const char *cluster_no_arbiter(const cluster_t *cl);

#endif
