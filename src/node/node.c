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
#include "script.h"
#include "versioned.h"

_Static_assert((int)VOP_KEY == (int)FLUSH_KEY && (int)VOP_PREFIX == (int)FLUSH_PREFIX &&
                   (int)VOP_ALL == (int)FLUSH_ALL && (int)VOP_SEED == (int)FLUSH_SEED,
               "the cache's versioned operations are the peer frames' flush kinds");



#define FLUSHMARK_SLOTS (1 << 16)
#define FLUSHMARK_PREFIXES 1024

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

/* The cache's one change signal (cache_on_change): every change of a key,
 * whatever made it (a command, a member's flush or SEED, expiry, eviction,
 * a script's command, a dropped cache), reaches client tracking and WATCH
 * here, as redis-server's signalModifiedKey feeds trackingInvalidateKey and
 * touchWatchedKey. */
static void on_cache_change(void *ud, int kind, const char *key, size_t klen)
{
    node_t *n = ud;
    if (kind == CACHE_CHANGE_ALL) {
        tracking_all_changed(n->tracking);
        watch_all_changed(n->watch);
        return;
    }
    tracking_key_changed(n->tracking, key, klen);
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
    /* Tokens of this incarnation start above any earlier one's (clock-based). */
    n->flushmark =
        flushmark_new(FLUSHMARK_SLOTS, FLUSHMARK_PREFIXES, (uint64_t)n->start_ms << 16);
    n->floor = flushmark_new(FLUSHMARK_SLOTS, FLUSHMARK_PREFIXES, 0);
    /* A cache that starts empty takes no write made before it started: a
     * member may replay an old SEED whose key a later write or flush (seen
     * by a previous incarnation of this node) has overwritten. */
    flushmark_all_at(n->floor, hlc_at(n->start_ms));
    n->metrics = metrics_new();
    pubsub_limits_t lim = {cfg->pubsub_max_subscriptions, cfg->pubsub_output_limit_hard,
                           cfg->pubsub_output_limit_soft, (int64_t)cfg->pubsub_output_soft_s * 1000};
    n->pubsub = pubsub_new(&lim);
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
    metrics_free(n->metrics);
    pubsub_free(n->pubsub); /* empty by now: closing every client dropped its subscriptions */
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

void node_flushed(node_t *n, int op, const char *key, size_t klen, uint64_t version)
{
    if (op == VOP_PREFIX)
        flushmark_prefix_at(n->floor, key, klen, version);
    else if (op == VOP_ALL)
        flushmark_all_at(n->floor, version);
    else if (op == VOP_KEY)
        flushmark_key_at(n->floor, key, klen, version);
}

/* ---- the cluster's host interface ------------------------------------------ */

static void host_apply(void *ud, int kind, const char *k, size_t klen, const char *val,
                       size_t vlen, int64_t expire_at, uint64_t version)
{
    node_t *n = ud;
    hlc_observe(&n->hlc, version);
    mark_for_setl(n, kind, k, klen);
    versioned_apply(n->cache, n->floor, kind, k, klen, val, vlen, expire_at, version,
                    clock_now_ms());
    if (kind == VOP_SEED)
        cache_evict(n->cache);
}

static size_t host_drop_all(void *ud)
{
    node_t *n = ud;
    size_t keys = cache_flush_all(n->cache);
    flushmark_all(n->flushmark);
    return keys;
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

cluster_host_t node_cluster_host(node_t *n)
{
    return (cluster_host_t){n,           host_apply,  host_drop_all,         host_skipped_upto,
                            host_progress, host_observe, hlc_at(n->start_ms)};
}
