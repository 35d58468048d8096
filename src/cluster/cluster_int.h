/* cluster_int: the structures shared by cluster.c, peer.c, membership.c,
 * coherence.c and the other files of src/cluster (flushlog.c, storeid.c,
 * ...), as btreeInt.h is to sqlite's btree. Nothing outside the folder
 * includes it (but the simulator, tests/sim).
 *
 * Clocks: every time here is this process's monotonic clock in milliseconds
 * (clock_mono_ms, read at the moment of each decision, never the time the
 * loop turn started) unless the name ends in _wall.
 *
 * Invariants:
 *   1. A member has at most one READY link (m->link). Links are initiated
 *      only by the node whose id ("ip:port" of its peer listener) is the
 *      smaller one, so a pair never has two.
 *   2. m->stream_ready implies m->link is READY and the member's SYNC was
 *      answered: new flushes go to it directly; before that, it will get
 *      them by replay.
 *   3. Our flush numbers are 1, 2, 3, ... within this incarnation; the replay
 *      log holds a contiguous range [log_first, flush_seq].
 *   4. m->in_applied counts the member's flushes applied here, for the
 *      member's incarnation m->in_inc.
 */
#ifndef COHORT_CLUSTER_INT_H
#define COHORT_CLUSTER_INT_H

#include <netinet/in.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "cluster.h"
#include "config.h"
#include "frame.h"

#define NAME_MAX_LEN 64
#define PING_RING 8 /* PINGs whose PONG is still accepted */

enum member_state {
    MEMBER_UNKNOWN = 0, /* not reached since this node started */
    MEMBER_ALIVE,
    MEMBER_SUSPECT,     /* missed heartbeats; others asked to probe it */
    MEMBER_UNREACHABLE, /* nobody reaches it */
    MEMBER_DEAD         /* with a store: its row expired, it left, or its lock is
                           free; without: refused, or unreachable too long */
};
const char *member_state_name(int state);

enum link_state { LINK_CONNECTING, LINK_HANDSHAKE, LINK_READY, LINK_CLOSING };

typedef struct member member_t;
typedef struct cluster cluster_t;

typedef struct link {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    cluster_t *cl;
    member_t *member; /* NULL until the acceptor learns who it is */
    int initiator;
    int state;
    char addr[80]; /* remote ip:port */
    buf_t in;
    buf_t out;
    size_t out_inflight;
    uint8_t nonce_i[FRAME_NONCE_SIZE];
    uint8_t nonce_a[FRAME_NONCE_SIZE];
    frame_key_t key_out; /* MAC key of frames we send, once READY */
    frame_key_t key_in;  /* MAC key of frames we receive, once READY */
    uint64_t send_seq;
    uint64_t recv_seq;
    int64_t deadline; /* handshake must finish by */
    char peer_name[NAME_MAX_LEN]; /* claimed in the handshake; trusted once READY */
    uint64_t peer_inc;
    int in_wlist;
    struct link *wnext;
    struct link *next; /* cluster's list of links */
    int msg_open;  /* a MESSAGE frame is open at the end of out (interest.c) */
    size_t msg_at; /* its offset, from peer_frame_begin */
} link_t;

struct member {
    cluster_t *cl;
    char name[NAME_MAX_LEN]; /* learned in the handshake; "" before */
    char addr[80];           /* "host:port" as configured */
    char id[80];             /* "ip:port", compared to pick the initiator */
    struct sockaddr_storage sa;
    int we_initiate;
    int state;
    int64_t since;      /* monotonic ms of the last state change */
    int64_t since_wall; /* wall clock ms of the same */
    link_t *link;       /* the READY link, or NULL */
    link_t *pending;    /* our connection attempt in progress */
    int backoff_ms;
    int64_t next_connect;
    uint64_t incarnation; /* of the member, from its handshake */
    /* liveness */
    int64_t last_heard;     /* any valid frame */
    int64_t lease_until;    /* our lease on it: send time of a PINGed PONG + T */
    int64_t lapsed_at;      /* the end of its last lapse (renewed, or voided) */
    int64_t last_pong_sent; /* its possible lease on us ends by this + T */
    int64_t last_ping_sent;
    uint64_t ping_id;     /* the last PING sent */
    uint64_t pong_id;     /* the last PING whose PONG was accepted */
    int64_t ping_sent[PING_RING]; /* send time of PING id, at [id % PING_RING] */
    uint64_t ping_hrtime; /* uv_hrtime() when PING ping_id went out: for rtt_ms */
    double rtt_ms;
    int refused; /* the last connection attempt was refused */
    int64_t refused_at; /* monotonic ms of the last refused attempt, 0: none */
    int64_t recheck_at; /* catch-up knocks again at it if held dead unconfirmed */
    struct knock *knock;   /* a knock in progress */
    int64_t knock_deadline;
    /* probes */
    uint64_t probe_id;
    int64_t probe_deadline; /* 0: no probe in progress */
    int probe_yes;
    int vouched; /* a probe round since the last state change said yes */
    /* the member's flushes, applied here */
    uint64_t in_inc;
    uint64_t in_applied;
    uint64_t start_version; /* its incarnation's first possible version (its SYNC) */
    int unknown_past;       /* the first incarnation of it we meet: check its SYNC */
    uint64_t ack_due; /* send an ACK for in_applied at the end of the turn
                       * (set by ack_needed: it is then on cl->acks_due) */
    /* its PROPOSEs refused here that it has not resolved yet (no ABORT or
     * COMMIT of them seen): their NACKs go again on every new link, after
     * a SYNC that acknowledges nothing from the first of them on (a NACK
     * lost with a link must not let the ACK that followed it commit the
     * refused write: found by sim --writes) */
    uint64_t nacked[16];
    size_t nnacked;
    /* [i]: nacked[i] was refused after an ACK or SYNC that covered it (a
     * drop, rule 21; a member's proposal taken over it, rule 47): the
     * writer may have committed on that acknowledgement, so the refusal is
     * never reported as voiding it (orphans.c; WRITES.md rule 48) */
    unsigned char nacked_late[16];
    uint64_t in_acked; /* the most of in_applied an ACK or SYNC told it */
    /* its writes in flight once it died, settled before their replay
     * (orphans.c) */
    int orph_pending;         /* their replay waits for the members' reports */
    int64_t orph_until;       /* ...until then at most */
    unsigned char *orph_wait; /* ...[i]: members[i]'s report awaited (owned) */
    uint64_t *orph_heard;     /* [i]: its incarnation members[i] reported on (owned) */
    uint64_t voided[16];      /* its proposals reported voided (oldest dropped) */
    size_t nvoided;
    uint64_t voided_inc;      /* ...of this incarnation of it */
    int clean_bye;    /* its last incarnation said BYE after its last flush */
    int ended_current; /* its last incarnation died while our lease on it held:
                          every flush it replied, we had applied */
    int64_t inc_ended_at; /* when its last incarnation said BYE or was seen gone */
    uint64_t linked_row_inc; /* its row's incarnation, read while linked with it
                                (0: never): whose session lock we know is its */
    uint64_t ended_inc;      /* the incarnation of its process linked with us
                                whose row then said it left or exited: its
                                proposals still on their way are refused */
    /* our flushes, sent to it */
    int stream_ready;
    uint64_t acked;
    uint64_t sent_upto; /* highest of our flush numbers sent to it */
    uint64_t commit_sent; /* the COMMIT last sent to it (0 after each SYNC) */
    int64_t unacked_since; /* 0 when it has acknowledged everything sent */
    int ack_timeout_logged;
    uint64_t flushes_sent;
    uint64_t flushes_received;
    /* catch-up (catchup.c) */
    int snap_busy;          /* its answer to our request: SNAP_BUSY_* or 0 */
    uint64_t snap_holder;   /* its incarnation, while that one said it holds data */
    uint64_t snap_asking;   /* its incarnation, that asked us for a snapshot during
                               our catch-up (it is catching up too: rule 39) */
    uint64_t snap_serving;  /* the id of its request we are answering, 0: none */
    uint8_t snap_partial;   /* ...with what we hold while catching up (SNAP_PARTIAL) */
    uint64_t snap_cursor;   /* where our answer continues (host.snapshot) */
    uint64_t snap_sent;     /* entries of our answer sent so far */
    int recon;              /* reconciling with it: RECON_* (catchup.c) */
    uint64_t recon_id;      /* ...the id of our request, once asked */
    int64_t recon_at;       /* ...asked again from then on */
    int snap_scanned;       /* ...every entry visited; the waits remain */
    int64_t snap_wait_until; /* (monotonic ms) then the waits give up */
    struct snap_wait *snap_waits; /* keys whose write was undecided (owned) */
    size_t snap_nwaits, snap_waits_cap;
    /* pub/sub (interest.c) */
    uint64_t link_gen;     /* links that became READY: one number per link */
    uint64_t interest_gen; /* link_gen of the link its full set came on */
    struct itable *interest; /* what it last announced (kept while it is away) */
    /* presence (presync.c) */
    int presence_lost; /* its entries were dropped (DEAD) while its link stayed up */
    /* the flush log through the store (flushlog.c) */
    int64_t knows_us_at; /* when its first SYNC to this incarnation came (0: not yet):
                            it applies our log entries submitted after that */
    uint64_t log_upto;   /* our flushes up to this went to the log for it */
    int64_t log_pos;     /* its cursor in the store's log, as last read */
    int64_t log_from;    /* reader: start of the last poll that left none of its
                            entries unapplied (its log lease: + T - margin) */
    int log_stalled;     /* reader: this poll left one of its entries for the link */
    char store_id[96];   /* its shared store, "backend:id" (storeid.c); "" unknown */
    int64_t log_stall_since;
    int row_live;        /* its row was live at the last read of the rows */
    uint64_t row_inc_seen; /* its row's incarnation at the last read (0: none yet) */
    int64_t row_seen_at;   /* monotonic ms of that read */
    int live_at_join;      /* its row was live when ours joined (rule 41) */
};
enum { SNAP_BUSY_FRESH = 1, SNAP_BUSY_NOT_SERVING = 2 };

/* One entry of the replay log / of a batch. */
typedef struct flush_entry {
    uint64_t seq;
    uint64_t version; /* orders it against other writes and flushes of its keys */
    uint8_t kind;     /* enum flush_kind */
    uint8_t enc;      /* FLUSH_SEED, FLUSH_PROPOSE: the value's form (cache.h) */
    uint8_t aborted;  /* FLUSH_PROPOSE refused by a member: ABORT follows it */
    uint8_t unit_next; /* the next entry is of the same unit (a transaction or a
                          script): both go in one frame (coherence.c, U1) */
    uint32_t klen;
    uint32_t vlen;
    int64_t expire_at;
    int64_t at; /* cluster_mono when it was made (the log's age bound) */
    char *data; /* key then value, owned */
} flush_entry_t;

/* One append of our flushes [first, last] to the store's log (flushlog.c). */
typedef struct fl_rec {
    uint64_t first, last;
    int64_t id;        /* its log id */
    int64_t submitted; /* cluster_mono when the append was sent */
    int64_t committed; /* cluster_mono when its success came back */
} fl_rec_t;
#define FL_RECS 256 /* appends remembered (a ring) */

struct cluster {
    const config_t *cfg;
    cluster_host_t host; /* how the cluster reaches the cache and held replies */
    uv_loop_t *loop;
    frame_key_t key; /* derived from the key file: the handshake frames' MAC key */
    char self_id[80];
    uint64_t incarnation;
    uint64_t rng; /* cluster_random's state, never 0 */
    uint16_t tag; /* this node's version tag (cluster_version_tag) */
    uint64_t log_dropped_version; /* largest version of the entries dropped from the log */
    int64_t (*clock)(void *ud); /* the monotonic clock in ms; NULL: clock_mono_ms */
    void *clock_ud;
    uv_tcp_t listener;
    int listener_open;
    uv_timer_t tick; /* heartbeats, probes, reconnects, timeouts */
    int tick_open;
    member_t *members;
    size_t nmembers;
    link_t *links;     /* every open link */
    link_t *wlist;     /* links with output to write */
    struct authorized_net *authorized;
    size_t nauthorized;
    /* our flushes */
    uint64_t flush_seq;
    uint64_t unit_from; /* cluster_unit_begin: the unit's first flush number */
    int unit_depth;     /* open units (a script inside EXEC is one with it) */
    flush_entry_t *log; /* ring of our last flushes (see coherence.c) */
    size_t log_cap;     /* entries the ring has room for */
    size_t log_keep;    /* replay_log: entries kept once sent */
    size_t log_len;
    size_t log_bytes;
    size_t log_max_bytes;
    uint64_t batch_first; /* first flush number not yet sent to ready members */
    /* the turn's batch, encoded once for every member (coherence.c
     * send_batch): the FLUSH payloads in enc, one chunk per frame */
    buf_t batch_enc;
    struct batch_chunk {
        uint64_t from, last;
        size_t off, len;
    } *chunks;
    size_t nchunks, capchunks;
    member_t **acks_due; /* members with ack_due set, each once (nmembers room) */
    size_t nacks_due;
    uint64_t committed;   /* our writes up to this are committed (host.committed) */
    struct undecided {
        uint64_t seq;
        int64_t at; /* monotonic ms it was made */
    } *undecided; /* our proposals above committed not aborted, ascending */
    size_t nundecided, capundecided;
    struct batch_index *batch; /* dedupe of this turn's flushes */
    /* counters */
    cluster_counters_t counters;
    /* pub/sub (interest.c) */
    struct itable *local_interest; /* what this node announces */
    buf_t interest_pending;        /* changes this turn, as INTEREST entries */
    uint32_t interest_pending_n;
    /* presence (presync.c) */
    cluster_presence_host_t phost; /* how presync reaches the node's presence table */
    buf_t presence_pending; /* this turn's changes of our own entries */
    uint32_t presence_pending_n;
    int stopping;
    int64_t last_cut_off; /* last tick at which this node was cut off */
    /* catch-up (catchup.c) */
    int need_snapshot;    /* the cache started empty or was dropped */
    int64_t snap_since;   /* monotonic ms: when need_snapshot was set */
    member_t *snap_from;  /* the member asked, or NULL */
    uint64_t snap_id;     /* of our last request */
    uint64_t snap_entries;
    size_t snap_next;     /* the member to ask next (round robin) */
    int64_t snap_retry_at;
    int snap_ever;        /* a catch-up was needed before (the start's) */
    int snap_after_drop;  /* this one follows a drop of the cache */
    int orph_held;        /* gone writers' writes wait for the catch-up (orphans.c) */
    /* the store as arbiter (membership.c) */
    int arbiter;            /* only member rows declare a member dead */
    int64_t own_row_until;  /* serve cached values only before this (arbiter) */
    /* cluster_serving's cache (coherence.c, S1): serve before serving_until,
     * a bound no higher than the leases'; recomputed once reached, and at
     * once after serving_lowered() */
    int64_t serving_until;
    int serving_stale;
    int own_row_lapsed;     /* own_row_until passed: others may call us dead */
    int row_joined;         /* our row was renewed once (membership.c note_row_joined) */
    int join_clean;         /* ...holding nothing, no snapshot asked before */
    int join_noted;         /* the rows read with it were noted (live_at_join) */
    unsigned row_lapses;    /* times our row lapsed since it joined */
    int64_t row_lapsed_at;  /* when it last did: a PONG older than this proves
                               no lease on us (coherence.c, holds) */
    /* the flush log through the store (flushlog.c) */
    int flushlog;          /* on: the node feeds and follows the store's log */
    fl_rec_t *fl_recs;     /* ring of our committed appends */
    size_t fl_len, fl_next;
    int fl_inflight;       /* an append is on its way */
    uint64_t fl_first, fl_last;
    int64_t fl_submitted;
    int64_t fl_retry_at;   /* after a failed append */
    int64_t fl_newest_id;  /* of our newest committed append */
    uint64_t fl_max_last;  /* the highest flush number any committed append holds */
    uint64_t fl_commit_sent; /* the COMMIT last appended (an entry with seq 0) */
    /* the store identity (storeid.c) */
    char store_id[96];     /* this node's shared store, "backend:id"; "" unknown */
    char no_arbiter[320];  /* why membership has no arbiter after all; "" none */
    int fl_inflight_commit;  /* the append in flight is a COMMIT */
};

/* cluster.c: the parts a simulator drives without sockets or timers */
/* Makes a cluster of cfg's members (no listener, no timer, no key: see
 * cluster_start for those) with the given incarnation (not 0) and random
 * seed. Returns it, or NULL with a message in err. */
cluster_t *cluster_create(uv_loop_t *loop, const config_t *cfg, const cluster_host_t *host,
                          uint64_t incarnation, uint64_t seed, char *err, size_t errlen);
/* Frees a cluster whose links and handles are gone. */
void cluster_free(cluster_t *cl);
/* The periodic work: heartbeats, probes, state changes, timeouts. */
void cluster_tick(cluster_t *cl);
/* A ready link's peer proved its name and incarnation: replaces any older
 * link to that member and tells membership and coherence. */
void cluster_link_ready(link_t *l);
/* A link is closing (was_ready: it had finished its handshake): tells
 * membership what that means for its member. */
void cluster_link_closed(link_t *l, int was_ready);
/* Hands an authenticated frame of a ready link to membership or coherence. */
void cluster_on_frame(link_t *l, const frame_hdr_t *h);

/* peer.c: links (a simulator links its own implementation of these) */
int peer_listen(cluster_t *cl, char *err, size_t errlen);
void peer_connect(cluster_t *cl, member_t *m);
size_t peer_frame_begin(link_t *l, uint8_t type);
void peer_frame_end(link_t *l, size_t start);
void peer_close(link_t *l, const char *why);
/* Closes l for breaking the protocol: counted in links_refused and logged
 * with why (once a minute per address and reason). */
void peer_refuse(link_t *l, const char *why);
/* The largest key or value this node decodes in a member's entry: its own
 * max_bulk_len, and never less than FRAME_VALUE_MAX, which every member
 * accepts (frame.h). */
static inline size_t peer_entry_max(const cluster_t *cl)
{
    size_t own = cl->cfg->max_bulk_len;
    return own > FRAME_VALUE_MAX ? own : FRAME_VALUE_MAX;
}
void peer_flush_writes(cluster_t *cl);
/* Checks whether m's peer port takes connections at all (then closes);
 * reports to member_knock_result. */
void peer_knock(cluster_t *cl, member_t *m);
void peer_knock_cancel(member_t *m);

/* membership.c: states, heartbeats, probes */
void member_set_state(member_t *m, int state, const char *why);
void member_link_ready(member_t *m, link_t *l);
void member_link_lost(member_t *m, link_t *l);
/* Our connection attempt (or its handshake) failed; refused: nothing listens. */
void member_connect_failed(member_t *m, int refused);
void member_heard(member_t *m);
void member_knock_result(member_t *m, int refused);
void member_tick(cluster_t *cl, int64_t now);
/* With an arbiter: once this node's row may have expired, forgets every
 * member's lease on it (see membership.c). Cheap; call before judging. */
void member_row_lapse(cluster_t *cl, int64_t now);
void member_on_ping(member_t *m, frame_reader_t *r);
void member_on_pong(member_t *m, frame_reader_t *r);
void member_on_probe(member_t *m, frame_reader_t *r);
void member_on_probed(member_t *m, frame_reader_t *r);
member_t *member_by_name(cluster_t *cl, const char *name, size_t len);

/* coherence.c: flush numbering, batching, replay, acks, the lease */
int coherence_init(cluster_t *cl);
void coherence_free(cluster_t *cl);
/* The tick's part: trims the replay log to its age bound. */
void coherence_tick(cluster_t *cl);
void coherence_on_stream_start(member_t *m); /* link READY: send SYNC */
void coherence_on_frame(member_t *m, const frame_hdr_t *h);
void coherence_send_batches(cluster_t *cl);
void coherence_send_acks(cluster_t *cl);
/* Sends COMMIT to the members that have not heard the latest. */
void coherence_send_commits(cluster_t *cl);
/* Stopping: our undecided proposals abort, and members are told (no reply
 * goes to their clients). */
void coherence_stop(cluster_t *cl);
/* Tells the host that held replies may be releasable now. */
void coherence_progress(cluster_t *cl);
void coherence_member_gone(member_t *m);
/* m, held dead here, had a process this node never met, begun and ended
 * while this node's row lapsed: it may have replied flushes without us
 * (WRITES.md rule 38). */
void coherence_unmet_process_ended(member_t *m);
/* 1 when, with the store, no process of m can have replied a write without
 * this node since its row joined (WRITES.md rule 41, membership.c). */
int member_unseen_since_join(const member_t *m);
void coherence_new_incarnation(member_t *m, uint64_t incarnation);
/* 1 while m's lease on us (PINGs we answered) may hold. */
int coherence_link_may_serve(const member_t *m, int64_t now);
/* 1 while m may not know this incarnation (never answered, or our row lapsed
 * since): it may serve without any lease on us. */
int coherence_may_not_know_us(const member_t *m, int64_t now);
/* The first of our flushes in [from, to] that is a proposal (a write that a
 * member may refuse), or to + 1 when there is none; from itself when the
 * replay log no longer holds it (it cannot tell). */
uint64_t coherence_first_proposal(cluster_t *cl, uint64_t from, uint64_t to);
/* Writes one FLUSH payload of our flushes [from, to] (in the log) to b. */
void coherence_encode(cluster_t *cl, buf_t *b, uint64_t from, uint64_t to);
/* The oldest of our flushes the replay log still holds. */
uint64_t coherence_log_first(const cluster_t *cl);
/* Slots of the turn's de-duplication index (tests). */
size_t coherence_batch_slots(const cluster_t *cl);
/* Something cluster_serving's bound reads may have moved down (a member's
 * state, a lease voided, our row lost, the store's arbitration, a catch-up
 * needed): the cached bound is recomputed at the next read (S1). A lease
 * extended needs no call. */
static inline void serving_lowered(cluster_t *cl)
{
    cl->serving_stale = 1;
}
/* 1 when the cached bound, still ahead of the clock, is above what the
 * leases allow now (S1 broken: a lowering change without serving_lowered);
 * the simulator checks it. */
int cluster_serving_cache_broken(cluster_t *cl);
/* The last flush from 'from' on (at most to) of the frame that starts at it
 * (units whole: coherence.c, U1). */
uint64_t coherence_frame_end(cluster_t *cl, uint64_t from, uint64_t to);
/* 1 when flush seq (in the log) is followed by one of the same unit. */
int coherence_unit_next(cluster_t *cl, uint64_t seq);
/* Applies a FLUSH payload of m's (from its link, or from the store's log
 * when from_log: no NACK without a link). Returns 0, -1 when the header is
 * malformed, -2 when an entry is. */
int coherence_apply_flush(member_t *m, frame_reader_t *r, int from_log);
/* m's writes up to upto (at most what we applied of them) are committed. */
void coherence_committed(member_t *m, uint64_t upto);

/* flushlog.c: our flushes through the store's log, and the members' to us */
/* 1 while m could serve what our flush seq removed (with the log on; m has
 * not acknowledged seq and counts). */
int flushlog_holds(member_t *m, uint64_t seq, int64_t now);
/* The highest of our flush numbers m applied or cannot serve around: its
 * acknowledgement, or what the log covers for it (as flushlog_holds says). */
uint64_t flushlog_covered(member_t *m, int64_t now);
/* Until when this node may serve on the strength of following m's flushes
 * through the log (0: it may not). */
int64_t flushlog_lease_until(const member_t *m);
void flushlog_free(cluster_t *cl);

/* storeid.c: the store identity exchanged with members */
/* m's link is READY: tells it our store identity, if known. */
void storeid_on_link_ready(member_t *m);
void storeid_on_frame(member_t *m, const frame_hdr_t *h);

/* catchup.c: the replicated keyspaces for a cache that starts empty */
/* The cache is empty or was dropped: ask a member before serving. */
void catchup_needed(cluster_t *cl);
void catchup_tick(cluster_t *cl, int64_t now);
/* While a catch-up has every member gone, the time at which the first
 * refusal that makes one gone goes stale (INT64_MAX: none; catchup.c). */
int64_t catchup_gone_until(const cluster_t *cl, int64_t now);
/* Sends the next chunk of each answer in progress (end of turn). */
void catchup_send(cluster_t *cl);
void catchup_on_frame(member_t *m, const frame_hdr_t *h);
void catchup_member_lost(member_t *m);
/* orphans.c: a dead writer's writes in flight (WRITES.md rule 34) */
/* w was declared dead; current: our lease on it held to now (or it said
 * goodbye): its proposals we refused cannot have committed. */
void orphans_member_dead(member_t *w, int current);
void orphans_on_frame(member_t *from, const frame_hdr_t *h);
void orphans_tick(cluster_t *cl, int64_t now);
void orphans_member_lost(member_t *m);
/* w's process ended: the host replays its writes in flight (rule 4), or,
 * while this node catches up, holds them until it caught up (rule 37). */
void orphans_replay(member_t *w);
/* The catch-up ended (caught up, or serving as is): what orphans_replay
 * held is decided now. */
void orphans_caught_up(cluster_t *cl);
/* 1 when w's PROPOSE seq (of the incarnation we follow) was reported voided. */
int orphans_voided(const member_t *w, uint64_t seq);
void orphans_free(cluster_t *cl);
void catchup_member_dead(member_t *m);
/* Frees what the answers in progress hold. */
void catchup_free(cluster_t *cl);
/* interest.c: cluster-wide pub/sub */
void interest_init(cluster_t *cl);
void interest_free(cluster_t *cl);
/* m's link is READY: sends this node's full set on it. */
void interest_on_link_ready(member_t *m);
/* An INTEREST or MESSAGE frame from m on l. */
void interest_on_frame(member_t *m, link_t *l, const frame_hdr_t *h);
/* Sends this turn's interest changes to every member with a READY link. */
void interest_send_pending(cluster_t *cl);
/* Ends l's open MESSAGE frame, if any (the messages of this turn so far).
 * peer_frame_begin and peer_flush_writes call it first, so frames keep their
 * order and no half-written frame is sent. */
void interest_end_batch(link_t *l);

/* presync.c: presence entries copied to every member */
void presync_init(cluster_t *cl);
void presync_free(cluster_t *cl);
/* m's link is READY: sends the pending changes, then our full set on it. */
void presync_on_link_ready(member_t *m);
/* A PRESENCE frame from m on l. */
void presync_on_frame(member_t *m, link_t *l, const frame_hdr_t *h);
/* Sends this turn's changes to every member with a READY link. */
void presync_send_pending(cluster_t *cl);

int64_t cluster_mono(const cluster_t *cl);
/* A pseudo-random number from the cluster's generator (xorshift64*, seeded
 * from OpenSSL's RAND_bytes at start, so nodes draw different jitter). */
uint64_t cluster_random(cluster_t *cl);
int cluster_lease_ms(const cluster_t *cl);

#endif
