/* node: the running node's context and the glue between its layers; see
 * node.h. The figures it registers are listed in register_*() below, one row
 * per figure, with every place it is shown (INFO field, Prometheus name, JSON
 * path, COHORT.STATUS key). */
#include "node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <openssl/rand.h>

#include "clock.h"
#include "frame.h"
#include "log.h"
#include "mem.h"
#include "script.h"
#include "versioned.h"
#include "writes.h"

_Static_assert((int)PUBSUB_CHANNEL == (int)INTEREST_CHANNEL &&
                   (int)PUBSUB_PATTERN == (int)INTEREST_PATTERN &&
                   (int)PUBSUB_SHARD == (int)INTEREST_SHARD && PUBSUB_KINDS == INTEREST_KINDS,
               "pub/sub kinds are the INTEREST frames' kinds");
_Static_assert((int)PRESENCE_OP_JOIN == (int)PRESENCE_JOIN &&
                   (int)PRESENCE_OP_LEAVE == (int)PRESENCE_LEAVE &&
                   (int)PRESENCE_OP_EXPIRE == (int)PRESENCE_EXPIRE,
               "presence ops are the PRESENCE frames' ops");
_Static_assert((int)VOP_KEY == (int)FLUSH_KEY && (int)VOP_PREFIX == (int)FLUSH_PREFIX &&
                   (int)VOP_ALL == (int)FLUSH_ALL && (int)VOP_SEED == (int)FLUSH_SEED &&
                       (int)VOP_INVAL == (int)FLUSH_INVAL,
               "the cache's versioned operations are the peer frames' flush kinds");



#define FLUSHMARK_SLOTS (1 << 16)
#define FLUSHMARK_PREFIXES 1024
/* n->recent: exact, from an empty cache on (node/writes.h P5); about 100
 * bytes a key at most, so a few MiB when full. */
#define RECENT_KEYS (1 << 16)
#define RECENT_PREFIXES 1024

static uint64_t random_u64(void)
{
    uint64_t v = 0;
    if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
        v = (uint64_t)time(NULL) * 2654435761u;
    return v;
}

static void make_run_id(char out[41])
{
    unsigned char raw[20];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        for (size_t i = 0; i < sizeof(raw); i++)
            raw[i] = (unsigned char)random_u64();
    }
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

/* pub/sub's count callback: the members learn this node's subscriber counts
 * (n->cluster is read at each call: NULL while alone or not started). */
static void announce_count(void *ud, int kind, const char *name, size_t len, size_t subscribers)
{
    node_t *n = ud;
    cluster_set_interest(n->cluster, kind, name, len,
                         subscribers > UINT32_MAX ? UINT32_MAX : (uint32_t)subscribers);
}

size_t node_publish(node_t *n, const char *ch, size_t chlen, const char *msg, size_t mlen,
                    int shard)
{
    size_t here = pubsub_publish_local(n->pubsub, ch, chlen, msg, mlen, shard);
    return here + cluster_publish(n->cluster, ch, chlen, msg, mlen, shard);
}

/* The cache's one change signal (cache_on_change): every change of a key,
 * whatever made it (a command, a member's flush or SEED, expiry, eviction,
 * a script's command, a dropped cache), reaches client tracking and WATCH
 * here, as redis-server's signalModifiedKey feeds trackingInvalidateKey and
 * touchWatchedKey. */
static void on_cache_change(void *ud, int kind, const char *key, size_t klen)
{
    node_t *n = ud;
    if (kind == CACHE_CHANGE_ALL || (kind == CACHE_CHANGE_PREFIX && klen == 0)) {
        tracking_all_changed(n->tracking);
        watch_all_changed(n->watch);
        return;
    }
    if (kind == CACHE_CHANGE_PREFIX) { /* its database byte first, as a key's */
        tracking_prefix_changed(n->tracking, key + 1, klen - 1);
        watch_prefix_changed(n->watch, key, klen);
        return;
    }
    if (klen) /* a stored key: its database byte first (cmd/commands.c) */
        tracking_key_changed(n->tracking, key + 1, klen - 1);
    watch_key_changed(n->watch, key, klen);
}

/* Invalidation pushes go to the kernel at once: tracking_flush runs as the
 * first end-of-turn hook, so they are in the sockets before the cluster's
 * acknowledgements of the flushes that caused them (main.c). */
void node_tracking_lease(node_t *n)
{
    if (!n->cluster)
        return;
    int64_t margin = n->cfg->lease_ms / 4 < 50 ? n->cfg->lease_ms / 4 : 50;
    tracking_set_degraded(n->tracking, cluster_serving_left_ms(n->cluster) <= margin);
}

/* ---- presence --------------------------------------------------------------- */

#define PRESENCE_PREFIX "__presence__:"

const char *node_presence_node(const node_t *n, int origin)
{
    if (origin == PRESENCE_SELF || !n->cluster)
        return n->cfg->name ? n->cfg->name : "";
    if ((size_t)origin >= cluster_member_count(n->cluster))
        return "";
    member_info_t mi;
    cluster_member_info(n->cluster, (size_t)origin, &mi);
    return mi.name ? mi.name : "";
}

/* Every change of a presence entry (this node's or a member's copy) goes to
 * this node's subscribers of __presence__:<channel>: each node publishes the
 * changes it sees, so every subscriber gets each change once, from its own
 * node. Formatted only when someone listens. */
static void presence_event(void *ud, const presence_event_t *ev)
{
    node_t *n = ud;
    char ch[sizeof(PRESENCE_PREFIX) + PRESENCE_MAX_CHANNEL];
    size_t plen = sizeof(PRESENCE_PREFIX) - 1;
    if (ev->chlen > PRESENCE_MAX_CHANNEL) /* the table never holds one */
        return;
    memcpy(ch, PRESENCE_PREFIX, plen);
    memcpy(ch + plen, ev->ch, ev->chlen);
    if (!pubsub_has_interest(n->pubsub, ch, plen + ev->chlen, 0))
        return;
    buf_t msg;
    buf_init(&msg);
    presence_event_json(ev, node_presence_node(n, ev->origin), &msg);
    pubsub_publish_local(n->pubsub, ch, plen + ev->chlen, buf_head(&msg), buf_len(&msg), 0);
    buf_free(&msg);
}

/* A change of this node's own entry: the members learn it (in order, on
 * each link). */
static void presence_change(void *ud, int op, const char *ch, size_t chlen, const char *member,
                            size_t mlen, const char *meta, size_t metalen)
{
    node_t *n = ud;
    cluster_presence_change(n->cluster, op, ch, chlen, member, mlen, meta, metalen);
}

static void wake_for_tracking(client_t *c)
{
    server_write_now(c->server, c);
}

int node_init(node_t *n, uv_loop_t *loop, config_t *cfg)
{
    n->loop = loop;
    n->cfg = cfg;
    clock_tick();
    n->start_ms = clock_now_ms();
    make_run_id(n->run_id);
    n->cache = cache_new(random_u64(), cfg->maxmemory);
    int policy = cfg->maxmemory_policy
                     ? cache_policy_parse(cfg->maxmemory_policy, strlen(cfg->maxmemory_policy))
                     : -1;
    if (policy >= 0) /* config checked the name */
        cache_set_policy(n->cache, policy);
    /* Tokens of this incarnation start above any earlier one's (clock-based). */
    n->flushmark =
        flushmark_new(FLUSHMARK_SLOTS, FLUSHMARK_PREFIXES, (uint64_t)n->start_ms << 16);
    n->floor = flushmark_new(FLUSHMARK_SLOTS, FLUSHMARK_PREFIXES, 0);
    n->recent = flushmark_new_exact(RECENT_KEYS, RECENT_PREFIXES);
    n->inflight = inflight_new();
    /* A cache that starts empty takes no write made before it started: a
     * member may replay an old SEED whose key a later write or flush (seen
     * by a previous incarnation of this node) has overwritten. */
    flushmark_all_at(n->floor, hlc_at(n->start_ms));
    n->metrics = metrics_new();
    pubsub_limits_t lim = {cfg->pubsub_max_subscriptions, cfg->pubsub_output_limit_hard,
                           cfg->pubsub_output_limit_soft, (int64_t)cfg->pubsub_output_soft_s * 1000};
    n->pubsub = pubsub_new(&lim);
    pubsub_set_count_cb(n->pubsub, announce_count, n);
    n->presence = presence_new(cfg->presence_max_entries);
    presence_set_hooks(n->presence, presence_event, presence_change, n);
    n->tracking = tracking_new(cfg->tracking_table_max_keys, wake_for_tracking);
    n->watch = watch_new();
    cache_on_change(n->cache, on_cache_change, n);
    node_hooks_init(&n->end_of_turn);
    return 0;
}

void node_free(node_t *n)
{
    cache_free(n->cache);
    flushmark_free(n->flushmark);
    flushmark_free(n->floor);
    flushmark_free(n->recent);
    inflight_free(n->inflight);
    free(n->aborts);
    metrics_free(n->metrics);
    keyspaces_free(n->keyspaces);
    pubsub_free(n->pubsub); /* empty by now: closing every client dropped its subscriptions */
    presence_free(n->presence);
    tracking_free(n->tracking);
    watch_free(n->watch);
    script_free(n->script);
    if (n->script_client) { /* never connected: only its buffers to free */
        buf_free(&n->script_client->in);
        buf_free(&n->script_client->out);
        free(n->script_client);
    }
    node_hooks_free(&n->end_of_turn);
}

int64_t node_uptime_ms(const node_t *n)
{
    int64_t up = clock_now_ms() - n->start_ms;
    return up > 0 ? up : 0;
}

int node_write_mode(const node_t *n, const char *stored_key, size_t klen)
{
    if (!n->cluster)
        return KS_LOCAL;
    return klen ? keyspaces_mode(n->keyspaces, stored_key + 1, klen - 1)
                : keyspaces_mode(n->keyspaces, stored_key, klen);
}

uint64_t node_next_version(node_t *n)
{
    return hlc_next(&n->hlc, clock_wall_ms());
}

/* Remembers a flush for SETL: any fill read before it must lose. */
static void mark_for_setl(node_t *n, int op, const char *key, size_t klen)
{
    if (op == VOP_PREFIX)
        flushmark_prefix(n->flushmark, key, klen);
    else if (op == VOP_ALL)
        flushmark_all(n->flushmark);
    else
        flushmark_key(n->flushmark, key, klen);
}

/* The write protocol's view of this node's state (writes.h). */
static writes_t writes_of(node_t *n)
{
    return (writes_t){n->cache, n->floor,        n->recent,      n->inflight,        &n->hlc,
                      n->cluster, clock_now_ms(), clock_mono_ms(), &n->waits_dirty};
}

void node_flushed(node_t *n, int op, const char *key, size_t klen, uint64_t version)
{
    if (!n->cluster)
        return; /* alone: no member's write or snapshot for the record to judge */
    writes_t w = writes_of(n);
    writes_flushed(&w, op, key, klen, version);
}

uint64_t node_key_version(node_t *n, const char *key, size_t klen)
{
    writes_t w = writes_of(n);
    return writes_key_version(&w, key, klen);
}

uint64_t node_propose(node_t *n, cache_entry_t *e, const char *key, size_t klen,
                      const writes_prior_t *prior)
{
    writes_t w = writes_of(n);
    return writes_propose(&w, e, key, klen, prior);
}

void node_prior_take(node_t *n, const char *key, size_t klen, writes_prior_t *out)
{
    writes_t w = writes_of(n);
    writes_prior_take(&w, key, klen, out);
}

uint64_t node_propose_ttl(node_t *n, cache_entry_t *e, int64_t expire_at)
{
    writes_t w = writes_of(n);
    return writes_propose_ttl(&w, e, expire_at);
}

uint64_t node_seed(node_t *n, cache_entry_t *e, const char *key, size_t klen)
{
    writes_t w = writes_of(n);
    return writes_seed(&w, e, key, klen, node_next_version(n));
}

/* ---- the cluster's host interface ------------------------------------------ */

static int host_apply(void *ud, int kind, const char *k, size_t klen, const char *val,
                      size_t vlen, int64_t expire_at, int enc, uint64_t version, int origin,
                      uint64_t seq)
{
    node_t *n = ud;
    hlc_observe(&n->hlc, version);
    int valued = kind == VOP_SEED || kind == FLUSH_PROPOSE;
    if (valued && !cache_form_valid(enc)) {
        log_warn("node", "a member sent a value of an unknown type (%d): ignored", enc);
        return 1;
    }
    writes_t w = writes_of(n);
    if (!writes_apply(&w, kind, k, klen, val, vlen, expire_at, enc, version, origin, seq))
        return 0;
    mark_for_setl(n, kind == FLUSH_PROPOSE ? VOP_KEY : kind, k, klen);
    return 1;
}

static size_t host_held(void *ud)
{
    return cache_count(((node_t *)ud)->cache);
}

static size_t host_drop_all(void *ud)
{
    node_t *n = ud;
    writes_t w = writes_of(n);
    size_t keys = writes_drop_all(&w); /* keeps the versions it drops (writes.h, P7) */
    flushmark_all(n->flushmark);
    return keys;
}

static void host_committed(void *ud, int origin, uint64_t upto)
{
    node_t *n = ud;
    if (origin == CLUSTER_SELF)
        n->committed_self = upto;
    writes_t w = writes_of(n);
    writes_committed(&w, origin, upto);
}

static void host_aborted(void *ud, int origin, uint64_t seq)
{
    node_t *n = ud;
    writes_t w = writes_of(n);
    writes_aborted(&w, origin, seq);
    if (origin == CLUSTER_SELF)
        node_note_abort(n, seq);
}

static void host_replay_held(void *ud)
{
    node_t *n = ud;
    writes_t w = writes_of(n);
    writes_replay_held(&w);
}

static void host_each_undecided(void *ud, void (*fn)(void *fud, int origin, uint64_t seq),
                                void *fud)
{
    node_t *n = ud;
    writes_t w = writes_of(n);
    writes_each_undecided(&w, fn, fud);
}

static void host_origin_gone(void *ud, int origin, int hold)
{
    node_t *n = ud;
    writes_t w = writes_of(n);
    if (hold)
        writes_origin_hold(&w, origin);
    else
        writes_origin_gone(&w, origin);
    size_t gone = presence_drop_origin(n->presence, origin); /* leave events "node_gone" */
    if (gone)
        log_info("presence", "%zu entries of %s left with their node", gone,
                 node_presence_node(n, origin));
}

void node_sweep_inflight(node_t *n, int64_t older_than_mono)
{
    writes_t w = writes_of(n);
    writes_sweep(&w, older_than_mono);
}

void node_note_abort(node_t *n, uint64_t seq)
{
    n->aborts = xrealloc(n->aborts, (n->naborts + 1) * sizeof(uint64_t));
    n->aborts[n->naborts++] = seq;
}


static void host_observe(void *ud, uint64_t version)
{
    node_t *n = ud;
    hlc_observe(&n->hlc, version);
}

static void host_skipped_upto(void *ud, uint64_t version)
{
    node_t *n = ud;
    flushmark_all_at(n->floor, version);
}

static int reply_ready(void *ud, uint64_t seq, int64_t since)
{
    return cluster_reply_ready(ud, seq, since);
}

void node_release_replies(node_t *n)
{
    if (n->cluster)
        server_release_blocked(n->server, reply_ready, n->cluster);
}

static void host_progress(void *ud)
{
    node_release_replies(ud);
}

/* ---- catch-up: the replicated keyspaces, to and from members ----------------- */

static int snap_keep(void *kud, const char *key, size_t klen)
{
    return node_write_mode(kud, key, klen) == KS_REPLICATE;
}

static uint64_t host_snapshot(void *ud, uint64_t cursor, size_t budget,
                              const cluster_snap_out_t *out)
{
    writes_t w = writes_of(ud);
    return writes_snapshot(&w, cursor, budget, snap_keep, ud, out);
}

static int host_snapshot_key(void *ud, const char *key, size_t klen,
                             const cluster_snap_out_t *out)
{
    writes_t w = writes_of(ud);
    return writes_snapshot_key(&w, key, klen, out);
}

/* A snapshot entry is a SEED judged only by what changed here since the
 * cache was last empty (n->recent): the floor of the whole cache at its
 * start, and the hashed key slots of older flushes, would refuse most of a
 * member's values, which are older than this cache but current. */
static void host_apply_snapshot(void *ud, const char *k, size_t klen, const char *val,
                                size_t vlen, int64_t expire_at, int enc, uint64_t version)
{
    node_t *n = ud;
    if (!cache_form_valid(enc & ~SNAP_FORM_RMW)) {
        log_warn("node", "a member's snapshot holds a value of an unknown type (%d): ignored",
                 enc);
        return;
    }
    writes_t w = writes_of(n);
    writes_apply_snapshot(&w, k, klen, val, vlen, expire_at, enc, version);
}

/* A member's message: to this node's subscribers only. */
static void host_deliver(void *ud, const char *ch, size_t chlen, const char *msg, size_t mlen,
                         int shard)
{
    node_t *n = ud;
    pubsub_publish_local(n->pubsub, ch, chlen, msg, mlen, shard);
}

/* ---- presence: this node's entries to the members, theirs to this node ------ */

typedef struct owned_walk {
    void (*emit)(void *eud, const char *ch, size_t chlen, const char *member, size_t mlen,
                 const char *meta, size_t metalen);
    void *eud;
} owned_walk_t;

static void owned_visit(void *ud, const char *ch, size_t chlen, const char *member, size_t mlen,
                        const char *meta, size_t metalen, int origin)
{
    owned_walk_t *w = ud;
    (void)origin;
    w->emit(w->eud, ch, chlen, member, mlen, meta, metalen);
}

static void host_presence_owned(void *ud,
                                void (*emit)(void *eud, const char *ch, size_t chlen,
                                             const char *member, size_t mlen, const char *meta,
                                             size_t metalen),
                                void *eud)
{
    node_t *n = ud;
    owned_walk_t w = {emit, eud};
    presence_foreach_owned(n->presence, owned_visit, &w);
}

static int host_presence_apply(void *ud, int origin, int op, const char *ch, size_t chlen,
                               const char *member, size_t mlen, const char *meta,
                               size_t metalen)
{
    node_t *n = ud;
    return presence_apply(n->presence, origin, op, ch, chlen, member, mlen, meta, metalen);
}

static void host_presence_full(void *ud, int origin, int begin)
{
    node_t *n = ud;
    if (begin) {
        presence_sync_begin(n->presence, origin);
        return;
    }
    size_t gone = presence_sync_end(n->presence, origin);
    if (gone)
        log_info("presence", "%zu entries of %s were gone from its full set", gone,
                 node_presence_node(n, origin));
}

void node_presence_attach(node_t *n)
{
    cluster_presence_host_t h = {n, host_presence_owned, host_presence_apply, host_presence_full};
    cluster_set_presence_host(n->cluster, &h);
}

cluster_host_t node_cluster_host(node_t *n)
{
    int replicated = keyspaces_any_replicated(n->keyspaces);
    cluster_host_t h = {n,
                        host_apply,
                        host_drop_all,
                        host_skipped_upto,
                        host_progress,
                        host_observe,
                        hlc_at(n->start_ms),
                        replicated ? host_snapshot : NULL,
                        replicated ? host_apply_snapshot : NULL,
                        host_deliver,
                        host_committed,
                        host_aborted,
                        host_origin_gone,
                        host_replay_held,
                        replicated ? host_each_undecided : NULL,
                        replicated ? host_snapshot_key : NULL,
                        host_held};
    return h;
}
