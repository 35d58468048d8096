/* cluster: this node's membership in a cohort cluster, as the rest of the
 * daemon sees it.
 *
 * Owns: nothing the commands touch directly; it is the facade over the member
 * table (membership.c), the peer links (peer.c) and coherent flushes
 * (coherence.c).
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

#include "config.h"

typedef struct cluster cluster_t;

/* What the cluster needs from the node it runs in, handed over at start. */
typedef struct cluster_host {
    void *ud;
    /* Applies a member's flush to this node's cache: kind is an enum
     * flush_kind (frame.h); val, vlen and expire_at are for FLUSH_SEED;
     * version orders it against every other write and flush of the key
     * (cache/versioned.h). */
    void (*apply)(void *ud, int kind, const char *key, size_t klen, const char *val, size_t vlen,
                  int64_t expire_at, uint64_t version);
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
} cluster_host_t;

/* Starts the peer listener and links with the settings of cfg (which must
 * outlive the cluster). Returns 0 and sets *out (NULL when no key_file is
 * configured: the node runs alone), or -1 with a message in err. */
int cluster_start(uv_loop_t *loop, const config_t *cfg, const cluster_host_t *host,
                  cluster_t **out, char *err, size_t errlen);
/* Says goodbye to the peers and closes every handle; run the loop after. */
void cluster_stop(cluster_t *cl);

/* Flushes made here (already applied to this node's cache with that
 * version), to be applied on every member. Each returns the flush number to
 * wait for (0 when alone). */
uint64_t cluster_flush_key(cluster_t *cl, const char *key, size_t klen, uint64_t version);
uint64_t cluster_flush_prefix(cluster_t *cl, const char *prefix, size_t plen, uint64_t version);
uint64_t cluster_flush_all(cluster_t *cl, uint64_t version);
uint64_t cluster_seed(cluster_t *cl, const char *key, size_t klen, const char *val, size_t vlen,
                      int64_t expire_at, uint64_t version);
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
/* 1 when this node cannot reach a majority of the other members. */
int cluster_cut_off(cluster_t *cl);
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
    uint64_t links_refused;        /* handshake or frame rejected */
    uint64_t state_changes;
} cluster_counters_t;
const cluster_counters_t *cluster_counters(const cluster_t *cl);
/* Counts a read that missed because the node is not serving. */
void cluster_count_bypass(cluster_t *cl);

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

#endif
