/* node: the running node's context and the glue between its layers; see
 * node.h. The figures it registers are listed in register_*() below, one row
 * per figure, with every place it is shown (INFO field, Prometheus name, JSON
 * path, COHORT.STATUS key). */
#include "node.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <openssl/rand.h>

#include "clock.h"
#include "frame.h"
#include "log.h"

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
    n->metrics = metrics_new();
    pubsub_limits_t lim = {cfg->pubsub_max_subscriptions, cfg->pubsub_output_limit_hard,
                           cfg->pubsub_output_limit_soft, (int64_t)cfg->pubsub_output_soft_s * 1000};
    n->pubsub = pubsub_new(&lim);
    node_hooks_init(&n->end_of_turn);
    return 0;
}

void node_free(node_t *n)
{
    cache_free(n->cache);
    flushmark_free(n->flushmark);
    metrics_free(n->metrics);
    pubsub_free(n->pubsub); /* empty by now: closing every client dropped its subscriptions */
    node_hooks_free(&n->end_of_turn);
}

int64_t node_uptime_ms(const node_t *n)
{
    int64_t up = clock_now_ms() - n->start_ms;
    return up > 0 ? up : 0;
}

/* ---- the cluster's host interface ------------------------------------------ */

static void host_apply(void *ud, int kind, const char *k, size_t klen, const char *val,
                       size_t vlen, int64_t expire_at)
{
    node_t *n = ud;
    switch (kind) {
    case FLUSH_KEY:
        cache_delete(n->cache, k, klen, clock_now_ms());
        flushmark_key(n->flushmark, k, klen);
        break;
    case FLUSH_PREFIX:
        cache_flush_prefix(n->cache, k, klen, clock_now_ms());
        flushmark_prefix(n->flushmark, k, klen);
        break;
    case FLUSH_ALL:
        cache_flush_all(n->cache);
        flushmark_all(n->flushmark);
        break;
    case FLUSH_SEED:
        flushmark_key(n->flushmark, k, klen);
        cache_set(n->cache, k, klen, val, vlen, expire_at);
        cache_evict(n->cache);
        break;
    }
}

static size_t host_drop_all(void *ud)
{
    node_t *n = ud;
    size_t keys = cache_flush_all(n->cache);
    flushmark_all(n->flushmark);
    return keys;
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
    return (cluster_host_t){n, host_apply, host_drop_all, host_progress};
}
