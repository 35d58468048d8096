/* node_metrics: the rows of the node's metrics registry (metrics.h): every
 * figure INFO, /metrics, /v1/status and COHORT.STATUS show, each with every
 * place it is shown. Reading a row reads the subsystem at that moment; a
 * subsystem the node lacks (running alone, starting, stopping) reads as zero.
 * Also the two figures that need sampling, kept in node_stats_t: the memory
 * peak (node_note_memory) and instantaneous_ops_per_sec (node_metrics_sample,
 * a sample every 100 ms, the mean of the last 16 as redis-server does).
 * Never: keeps a value of its own outside node_t. */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "clock.h"
#include "node.h"

/* ---- values ----------------------------------------------------------------- */

#define GETTER(fname, expr)                                                                      \
    static uint64_t fname(void *ud)                                                              \
    {                                                                                            \
        node_t *n = ud;                                                                          \
        (void)n;                                                                                 \
        return (uint64_t)(expr);                                                                 \
    }

static const cache_stats_t *cstats(node_t *n)
{
    static const cache_stats_t none;
    return n->cache ? cache_stats(n->cache) : &none;
}

static size_t rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}

#define OPS_SAMPLE_MS 100

void node_metrics_sample(node_t *n, int64_t now_ms)
{
    node_stats_t *st = &n->stats;
    int64_t elapsed = now_ms - st->ops_sample_ms;
    if (st->ops_sample_ms == 0 || elapsed < 0) {
        st->ops_sample_ms = now_ms;
        st->ops_sample_count = st->commands_processed;
        return;
    }
    if (elapsed < OPS_SAMPLE_MS)
        return;
    uint64_t ops = st->commands_processed - st->ops_sample_count;
    uint64_t rate = ops * 1000 / (uint64_t)elapsed;
    /* One sample per 100 ms that passed (a quiet gap counts at its mean rate). */
    int64_t due = elapsed / OPS_SAMPLE_MS;
    for (int64_t i = 0; i < due && i < NODE_OPS_SAMPLES; i++) {
        st->ops_samples[st->ops_idx] = rate;
        st->ops_idx = (st->ops_idx + 1) % NODE_OPS_SAMPLES;
    }
    st->ops_sample_ms = now_ms;
    st->ops_sample_count = st->commands_processed;
}

void node_note_memory(node_t *n)
{
    size_t used = n->cache ? cache_used_memory(n->cache) : 0;
    if (used > n->stats.used_memory_peak)
        n->stats.used_memory_peak = used;
}

void node_metrics_reset(node_t *n)
{
    node_stats_t *st = &n->stats;
    st->used_memory_peak = 0;
    st->loop_busy_max_us = 0;
    memset(st->ops_samples, 0, sizeof(st->ops_samples));
    st->ops_sample_ms = 0;
    node_note_memory(n);
}

static uint64_t used_peak(node_t *n)
{
    node_note_memory(n);
    return n->stats.used_memory_peak;
}

static uint64_t ops_per_sec(node_t *n)
{
    node_metrics_sample(n, clock_now_ms());
    uint64_t sum = 0;
    for (int i = 0; i < NODE_OPS_SAMPLES; i++)
        sum += n->stats.ops_samples[i];
    return sum / NODE_OPS_SAMPLES;
}

GETTER(get_arch_bits, sizeof(void *) * 8)
GETTER(get_pid, getpid())
GETTER(get_tcp_port, n->cfg->port)
GETTER(get_uptime_ms, node_uptime_ms(n))
GETTER(get_uptime_s, node_uptime_ms(n) / 1000)
GETTER(get_uptime_days, node_uptime_ms(n) / 1000 / 86400)
GETTER(get_clients, server_client_count(n->server))
GETTER(get_maxclients, n->cfg->maxclients)
GETTER(get_clients_memory, server_clients_memory(n->server))
GETTER(get_used_memory, n->cache ? cache_used_memory(n->cache) : 0)
GETTER(get_rss, rss_bytes())
GETTER(get_maxmemory, n->cache ? cache_maxmemory(n->cache) : n->cfg->maxmemory)
GETTER(get_keys, n->cache ? cache_count(n->cache) : 0)
GETTER(get_expiring, n->cache ? cache_expires_count(n->cache) : 0)
GETTER(get_hits, cstats(n)->hits)
GETTER(get_misses, cstats(n)->misses)
GETTER(get_evicted, cstats(n)->evicted)
GETTER(get_expired, cstats(n)->expired)
GETTER(get_conn_received, server_stats(n->server)->connections_received)
GETTER(get_conn_rejected, server_stats(n->server)->rejected_connections)
GETTER(get_protocol_errors, server_stats(n->server)->protocol_errors)
GETTER(get_output_closes, server_stats(n->server)->output_limit_closes)
GETTER(get_query_closes, server_stats(n->server)->query_limit_closes)
GETTER(get_net_in, server_stats(n->server)->net_input_bytes)
GETTER(get_net_out, server_stats(n->server)->net_output_bytes)
GETTER(get_waits, server_stats(n->server)->blocked_releases)
GETTER(get_wait_usec, server_stats(n->server)->blocked_usec)
GETTER(get_zero, 0)
static tracking_stats_t tracking_now(const node_t *n)
{
    tracking_stats_t s = {0};
    if (n->tracking)
        tracking_stats(n->tracking, &s);
    return s;
}
GETTER(get_tr_clients, tracking_now(n).clients)
GETTER(get_tr_keys, tracking_now(n).keys)
GETTER(get_tr_items, tracking_now(n).items)
GETTER(get_tr_prefixes, tracking_now(n).prefixes)
GETTER(get_tr_invalidations, tracking_now(n).invalidations)
GETTER(get_tr_evicted, tracking_now(n).evicted_keys)
GETTER(get_tr_memory, n->tracking ? tracking_memory(n->tracking) : 0)
GETTER(get_ps_channels, n->pubsub ? pubsub_topics(n->pubsub, PUBSUB_CHANNEL) : 0)
GETTER(get_ps_patterns, n->pubsub ? pubsub_topics(n->pubsub, PUBSUB_PATTERN) : 0)
GETTER(get_ps_shard, n->pubsub ? pubsub_topics(n->pubsub, PUBSUB_SHARD) : 0)
GETTER(get_ps_memory, n->pubsub ? pubsub_memory(n->pubsub) : 0)
GETTER(get_ps_messages, n->pubsub ? pubsub_stats(n->pubsub)->messages : 0)
GETTER(get_ps_deliveries, n->pubsub ? pubsub_stats(n->pubsub)->deliveries : 0)
GETTER(get_ps_limit_closes, n->pubsub ? pubsub_stats(n->pubsub)->output_limit_disconnects : 0)
GETTER(get_ps_refusals, n->pubsub ? pubsub_stats(n->pubsub)->subscription_limit_refusals : 0)
GETTER(get_pr_entries, n->presence ? presence_entries(n->presence) : 0)
GETTER(get_pr_owned, n->presence ? presence_owned(n->presence) : 0)
GETTER(get_pr_channels, n->presence ? presence_channels(n->presence) : 0)
GETTER(get_pr_memory, n->presence ? presence_memory(n->presence) : 0)
GETTER(get_pr_frames, cluster_counters(n->cluster)->presence_frames_sent)
GETTER(get_pr_refused, cluster_counters(n->cluster)->presence_refused)
GETTER(get_commands, n->stats.commands_processed)
GETTER(get_used_peak, used_peak(n))
GETTER(get_ops_per_sec, ops_per_sec(n))
GETTER(get_loop_busy_max, n->stats.loop_busy_max_us)
GETTER(get_sweeping, n->cache ? cache_sweeping(n->cache) : 0)
GETTER(get_start_s, n->start_ms / 1000)
GETTER(get_setl_refused, n->stats.setl_refused)
GETTER(get_flushes_local, n->stats.flushes_local)
GETTER(get_http_requests, n->http ? http_counters(n->http)->requests : 0)
GETTER(get_http_bad, n->http ? http_counters(n->http)->bad_requests : 0)
GETTER(get_in_cluster, n->cluster != NULL)
GETTER(get_members, cluster_member_count(n->cluster))
GETTER(get_serving_cache, node_serves_cache(n))
GETTER(get_cut_off, cluster_cut_off(n->cluster))
GETTER(get_incarnation, cluster_incarnation(n->cluster))
GETTER(get_flushes_sent, cluster_counters(n->cluster)->flushes_sent)
GETTER(get_flushes_received, cluster_counters(n->cluster)->flushes_received)
GETTER(get_flush_frames, cluster_counters(n->cluster)->flush_frames_sent)
GETTER(get_ack_timeouts, cluster_counters(n->cluster)->ack_timeouts)
GETTER(get_bypasses, cluster_counters(n->cluster)->bypasses)
GETTER(get_cache_drops, cluster_counters(n->cluster)->cache_drops)
GETTER(get_replayed, cluster_counters(n->cluster)->replayed)
GETTER(get_writes_yielded, cluster_counters(n->cluster)->writes_yielded)
GETTER(get_log_appends, cluster_counters(n->cluster)->log_appends)
GETTER(get_log_applied, cluster_counters(n->cluster)->log_applied)
GETTER(get_flushlog_on, cluster_flushlog_on(n->cluster))
GETTER(get_version_clock_ahead, hlc_ahead_ms(&n->hlc, clock_wall_ms()))
GETTER(get_links_refused, cluster_counters(n->cluster)->links_refused)
GETTER(get_state_changes, cluster_counters(n->cluster)->state_changes)
GETTER(get_ps_sent, cluster_counters(n->cluster)->pubsub_sent)
GETTER(get_ps_received, cluster_counters(n->cluster)->pubsub_received)
GETTER(get_ps_lost, cluster_counters(n->cluster)->pubsub_lost)
GETTER(get_interest_frames, cluster_counters(n->cluster)->interest_frames_sent)
GETTER(get_ps_frames, cluster_counters(n->cluster)->pubsub_frames_sent)

/* The store's health now (all zero, state "none", before it is open). */
static store_health_t shealth(node_t *n)
{
    store_health_t h;
    memset(&h, 0, sizeof(h));
    if (n->store)
        store_health(n->store, &h);
    return h;
}

static const char *store_state_name(node_t *n)
{
    if (!n->store)
        return "none";
    switch (shealth(n).state) {
    case STORE_STARTING:
        return "starting";
    case STORE_UP:
        return "up";
    case STORE_DOWN:
        return "down";
    default:
        return "failed";
    }
}

GETTER(get_store_up, n->store && shealth(n).state == STORE_UP)
GETTER(get_store_since, shealth(n).since_ms)
GETTER(get_store_round_trips, shealth(n).round_trips)
GETTER(get_store_errors, shealth(n).errors)
GETTER(get_store_timeouts, shealth(n).timeouts)
GETTER(get_store_reconnects, shealth(n).reconnects)
GETTER(get_store_rejected, shealth(n).rejected)
GETTER(get_store_pending, shealth(n).pending)
GETTER(get_store_schema, shealth(n).schema_version)
GETTER(get_leases_held, n->leases ? lease_held_count(n->leases) : 0)
GETTER(get_leader, n->leases && lease_held(n->leases, "canonical", NULL))
GETTER(get_leases_acquired, lease_acquired_count(n->leases))
GETTER(get_leases_lost, lease_lost_count(n->leases))
GETTER(get_jobs, scheduler_count(n->scheduler))
GETTER(get_job_runs, scheduler_stats(n->scheduler)->runs_started)
GETTER(get_job_ok, scheduler_stats(n->scheduler)->runs_ok)
GETTER(get_job_failed, scheduler_stats(n->scheduler)->runs_failed)
GETTER(get_job_taken, scheduler_stats(n->scheduler)->slots_taken)
GETTER(get_job_skipped, scheduler_stats(n->scheduler)->slots_skipped)
GETTER(get_job_abandoned, scheduler_stats(n->scheduler)->slots_abandoned)

static void human_bytes(char *out, size_t len, uint64_t n)
{
    const char *units = "BKMGT";
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, len, "%lluB", (unsigned long long)n);
    else
        snprintf(out, len, "%.2f%c", v, units[u]);
}

#define TEXT(fname, expr)                                                                        \
    static const char *fname(void *ud, char *buf, size_t len)                                    \
    {                                                                                            \
        node_t *n = ud;                                                                          \
        (void)n, (void)buf, (void)len;                                                           \
        return (expr);                                                                           \
    }

static const char *os_name(char *buf, size_t len)
{
    struct utsname u;
    uname(&u);
    snprintf(buf, len, "%s %s %s", u.sysname, u.release, u.machine);
    return buf;
}

/* rss / used memory, as redis-server's mem_fragmentation_ratio. */
static const char *frag_ratio(node_t *n, char *buf, size_t len)
{
    uint64_t used = n->cache ? cache_used_memory(n->cache) : 0;
    snprintf(buf, len, "%.2f", used ? (double)rss_bytes() / (double)used : 0.0);
    return buf;
}

static const char *human(char *buf, size_t len, uint64_t v)
{
    human_bytes(buf, len, v);
    return buf;
}

TEXT(text_redis_version, COHORT_REDIS_COMPAT_VERSION)
TEXT(text_version, COHORT_VERSION)
TEXT(text_standalone, "standalone")
TEXT(text_os, os_name(buf, len))
TEXT(text_run_id, n->run_id)
TEXT(text_name, n->cfg->name)
TEXT(text_role, n->cfg->role)
TEXT(text_config_file, n->cfg->path ? n->cfg->path : "")
TEXT(text_state, node_mode_name(node_mode(n)))
TEXT(text_used_human, human(buf, len, get_used_memory(n)))
TEXT(text_rss_human, human(buf, len, get_rss(n)))
TEXT(text_peak_human, human(buf, len, get_used_peak(n)))
TEXT(text_frag_ratio, frag_ratio(n, buf, len))
TEXT(text_master, "master")
TEXT(text_max_human, human(buf, len, get_maxmemory(n)))
TEXT(text_policy, n->cache ? cache_policy_name(cache_policy(n->cache)) : "allkeys-lru")
TEXT(text_why_not_serving, node_why_not_serving(n))

/* Who decides that a member is dead: "store", "none" (no [store] url, or
 * alone), or "none: <why>" when members turned out to use other stores. */
static const char *text_arbiter(void *ud, char *buf, size_t len)
{
    node_t *n = ud;
    const char *why = cluster_no_arbiter(n->cluster);
    if (why) {
        snprintf(buf, len, "none: %s", why);
        return buf;
    }
    return cluster_has_arbiter(n->cluster) ? "store" : "none";
}
TEXT(text_store_state, store_state_name(n))
TEXT(text_store_backend, n->store ? shealth(n).backend : "none")

static const char *text_store_error(void *ud, char *buf, size_t len)
{
    node_t *n = ud;
    snprintf(buf, len, "%s", shealth(n).last_error);
    return buf;
}

/* ---- the rows ----------------------------------------------------------------- */

/* One row: type, Prometheus name and help (NULL: not in /metrics), divisor,
 * INFO "section:field", /v1/status path, COHORT.STATUS key, and the value. */
#define ROW(type, prom, help, div, info, json, status, get)                                      \
    {type, prom, help, div, info, json, status, 0, NULL, get, NULL, NULL}
#define TROW(info, json, status, text)                                                           \
    {METRIC_TEXT, NULL, NULL, 0, info, json, status, 0, NULL, NULL, text, NULL}
#define C METRIC_COUNTER
#define G METRIC_GAUGE
#define B METRIC_BOOL

static const metric_t rows[] = {
    /* server */
    TROW("server:redis_version", NULL, NULL, text_redis_version),
    TROW("server:cohort_version", "version", "version", text_version),
    TROW("server:redis_mode", NULL, NULL, text_standalone),
    TROW("server:os", NULL, NULL, text_os),
    ROW(G, NULL, NULL, 0, "server:arch_bits", NULL, NULL, get_arch_bits),
    ROW(G, NULL, NULL, 0, "server:process_id", NULL, NULL, get_pid),
    TROW("server:run_id", "run_id", "run_id", text_run_id),
    ROW(G, NULL, NULL, 0, "server:tcp_port", NULL, NULL, get_tcp_port),
    ROW(G, "cohort_uptime_seconds", "Seconds since this node started.", 1000, NULL, "uptime_ms",
        "uptime_ms", get_uptime_ms),
    ROW(G, NULL, NULL, 0, "server:uptime_in_seconds", NULL, NULL, get_uptime_s),
    ROW(G, NULL, NULL, 0, "server:uptime_in_days", NULL, NULL, get_uptime_days),
    TROW("server:node_name", "node", "node", text_name),
    TROW("server:node_role", "role", "role", text_role),
    TROW("server:config_file", NULL, NULL, text_config_file),
    TROW(NULL, "state", "state", text_state),
    /* clients */
    ROW(G, "cohort_connected_clients", "Open client connections.", 0,
        "clients:connected_clients", "clients", "clients", get_clients),
    ROW(G, NULL, NULL, 0, "clients:maxclients", NULL, NULL, get_maxclients),
    ROW(G, NULL, NULL, 0, "clients:clients_memory", NULL, NULL, get_clients_memory),
    /* memory */
    ROW(G, "cohort_used_memory_bytes", "Bytes used by the cache, as counted against maxmemory.",
        0, "memory:used_memory", "cache.used_memory", "used_memory", get_used_memory),
    TROW("memory:used_memory_human", NULL, NULL, text_used_human),
    ROW(G, NULL, NULL, 0, "memory:used_memory_rss", NULL, NULL, get_rss),
    TROW("memory:used_memory_rss_human", NULL, NULL, text_rss_human),
    ROW(G, NULL, NULL, 0, "memory:used_memory_peak", NULL, NULL, get_used_peak),
    TROW("memory:used_memory_peak_human", NULL, NULL, text_peak_human),
    ROW(G, "cohort_maxmemory_bytes", "Cache memory limit in bytes (0: none).", 0,
        "memory:maxmemory", "cache.maxmemory", "maxmemory", get_maxmemory),
    TROW("memory:maxmemory_human", NULL, NULL, text_max_human),
    TROW("memory:maxmemory_policy", NULL, NULL, text_policy),
    ROW(G, NULL, NULL, 0, "memory:mem_clients_normal", NULL, NULL, get_clients_memory),
    TROW("memory:mem_fragmentation_ratio", NULL, NULL, text_frag_ratio),
    /* persistence: none (a cache), told as redis-server tells it */
    ROW(B, NULL, NULL, 0, "persistence:loading", NULL, NULL, get_zero),
    ROW(G, NULL, NULL, 0, "persistence:rdb_changes_since_last_save", NULL, NULL, get_zero),
    ROW(B, NULL, NULL, 0, "persistence:rdb_bgsave_in_progress", NULL, NULL, get_zero),
    ROW(G, NULL, NULL, 0, "persistence:rdb_last_save_time", NULL, NULL, get_start_s),
    ROW(B, NULL, NULL, 0, "persistence:aof_enabled", NULL, NULL, get_zero),
    /* stats */
    ROW(C, "cohort_connections_total", "Client connections accepted.", 0,
        "stats:total_connections_received", NULL, NULL, get_conn_received),
    ROW(C, NULL, NULL, 0, "stats:total_commands_processed", "commands_processed", NULL,
        get_commands),
    ROW(G, NULL, NULL, 0, "stats:instantaneous_ops_per_sec", NULL, NULL, get_ops_per_sec),
    ROW(G, "cohort_eventloop_busy_max_microseconds",
        "Longest loop turn (less its wait for I/O) since start or CONFIG RESETSTAT.", 0,
        "stats:eventloop_busy_max_usec", "eventloop_busy_max_us", NULL, get_loop_busy_max),
    ROW(G, "cohort_prefix_flushes_sweeping", "Large prefix flushes whose keys are being removed.",
        0, "stats:prefix_flushes_sweeping", "cache.sweeping", NULL, get_sweeping),
    ROW(C, "cohort_net_input_bytes_total", "Bytes read from clients.", 0,
        "stats:total_net_input_bytes", NULL, NULL, get_net_in),
    ROW(C, "cohort_net_output_bytes_total", "Bytes written to clients.", 0,
        "stats:total_net_output_bytes", NULL, NULL, get_net_out),
    ROW(C, "cohort_rejected_connections_total", "Client connections refused (maxclients).", 0,
        "stats:rejected_connections", NULL, NULL, get_conn_rejected),
    ROW(C, "cohort_cache_expirations_total", "Keys removed because their time passed.", 0,
        "stats:expired_keys", "cache.expirations", NULL, get_expired),
    ROW(C, "cohort_cache_evictions_total", "Keys evicted to stay under maxmemory.", 0,
        "stats:evicted_keys", "cache.evictions", NULL, get_evicted),
    ROW(C, "cohort_cache_hits_total", "Cache reads that found a live key.", 0,
        "stats:keyspace_hits", "cache.hits", NULL, get_hits),
    ROW(C, "cohort_cache_misses_total", "Cache reads that found no key.", 0,
        "stats:keyspace_misses", "cache.misses", NULL, get_misses),
    ROW(G, "cohort_tracking_clients", "Connections with CLIENT TRACKING on.", 0,
        "clients:tracking_clients", "tracking.clients", NULL, get_tr_clients),
    ROW(G, "cohort_tracking_keys", "Keys in the tracking table (read by tracking connections).",
        0, "stats:tracking_total_keys", "tracking.keys", NULL, get_tr_keys),
    ROW(G, "cohort_tracking_items", "(key, connection) pairs in the tracking table.", 0,
        "stats:tracking_total_items", "tracking.items", NULL, get_tr_items),
    ROW(G, "cohort_tracking_prefixes", "BCAST prefixes with at least one connection.", 0,
        "stats:tracking_total_prefixes", "tracking.prefixes", NULL, get_tr_prefixes),
    ROW(C, "cohort_tracking_invalidations_total",
        "Keys sent in invalidation pushes (a null invalidation counts one).", 0,
        "stats:tracking_invalidations", "tracking.invalidations", NULL, get_tr_invalidations),
    ROW(C, "cohort_tracking_evicted_keys_total",
        "Keys dropped from the tracking table at tracking_table_max_keys (invalidated).", 0,
        "stats:tracking_evicted_keys", "tracking.evicted_keys", NULL, get_tr_evicted),
    ROW(G, "cohort_tracking_memory_bytes", "Bytes held by the tracking table and pending pushes.",
        0, "memory:mem_tracking", "tracking.memory", NULL, get_tr_memory),
    ROW(G, "cohort_pubsub_channels", "Channels with at least one subscriber on this node.", 0,
        "stats:pubsub_channels", "pubsub.channels", NULL, get_ps_channels),
    ROW(G, "cohort_pubsub_patterns", "Patterns with at least one subscriber on this node.", 0,
        "stats:pubsub_patterns", "pubsub.patterns", NULL, get_ps_patterns),
    ROW(G, "cohort_pubsub_shard_channels",
        "Shard channels with at least one subscriber on this node.", 0,
        "stats:pubsubshard_channels", "pubsub.shard_channels", NULL, get_ps_shard),
    ROW(C, NULL, NULL, 0, "stats:total_error_replies", NULL, NULL, get_zero),
    ROW(C, "cohort_protocol_errors_total", "Client connections closed for malformed RESP.", 0,
        "stats:protocol_errors", NULL, NULL, get_protocol_errors),
    ROW(C, "cohort_client_output_limit_disconnects_total",
        "Client connections closed for exceeding the output buffer limit.", 0,
        "stats:client_output_limit_disconnects", NULL, NULL, get_output_closes),
    ROW(C, NULL, NULL, 0, "stats:client_query_limit_disconnects", NULL, NULL, get_query_closes),
    ROW(C, "cohort_pubsub_output_limit_disconnects_total",
        "Subscribers closed for exceeding the pub/sub output buffer limits.", 0,
        "stats:pubsub_output_limit_disconnects", "pubsub.output_limit_disconnects", NULL,
        get_ps_limit_closes),
    ROW(C, "cohort_pubsub_messages_total", "Messages published on this node.", 0, NULL,
        "pubsub.messages", NULL, get_ps_messages),
    ROW(C, "cohort_pubsub_deliveries_total", "Messages written to subscribers on this node.", 0,
        NULL, NULL, NULL, get_ps_deliveries),
    ROW(C, "cohort_pubsub_subscription_limit_refusals_total",
        "Subscribe commands refused at pubsub_max_subscriptions.", 0, NULL, NULL, NULL,
        get_ps_refusals),
    ROW(G, "cohort_pubsub_memory_bytes", "Bytes held by the pub/sub tables.", 0,
        "memory:mem_pubsub", "pubsub.memory", NULL, get_ps_memory),
    ROW(G, "cohort_presence_entries", "Presence entries held here (every node's).", 0,
        "stats:presence_entries", "presence.entries", NULL, get_pr_entries),
    ROW(G, "cohort_presence_owned_entries", "Presence entries joined on this node.", 0,
        "stats:presence_owned_entries", "presence.owned", NULL, get_pr_owned),
    ROW(G, "cohort_presence_channels", "Presence channels with at least one entry.", 0,
        "stats:presence_channels", NULL, NULL, get_pr_channels),
    ROW(G, "cohort_presence_memory_bytes", "Bytes held by the presence table.", 0,
        "memory:mem_presence", "presence.memory", NULL, get_pr_memory),
    ROW(C, "cohort_presence_frames_sent_total", "PRESENCE frames sent to members.", 0,
        "cohort:presence_frames_sent", NULL, NULL, get_pr_frames),
    ROW(C, "cohort_presence_refused_total",
        "Members' presence entries dropped for being out of bounds.", 0,
        "cohort:presence_refused", NULL, NULL, get_pr_refused),
    ROW(C, "cohort_setl_refused_total", "SETL fills refused because the key was flushed.", 0,
        "stats:setl_refused", NULL, NULL, get_setl_refused),
    /* replication: a master with no replicas; cluster: not a Redis Cluster */
    TROW("replication:role", NULL, NULL, text_master),
    ROW(G, NULL, NULL, 0, "replication:connected_slaves", NULL, NULL, get_zero),
    ROW(G, NULL, NULL, 0, "replication:master_repl_offset", NULL, NULL, get_zero),
    ROW(B, NULL, NULL, 0, "cluster:cluster_enabled", NULL, NULL, get_zero),
    /* cache (not in INFO) */
    ROW(G, "cohort_cache_keys", "Keys in the cache.", 0, NULL, "cache.keys", "keys", get_keys),
    ROW(G, "cohort_cache_expiring_keys", "Keys in the cache with an expire time.", 0, NULL,
        "cache.expiring_keys", NULL, get_expiring),
    ROW(C, "cohort_flushes_total", "Flush commands executed on this node.", 0, NULL, NULL, NULL,
        get_flushes_local),
    ROW(C, "cohort_http_requests_total", "HTTP requests answered, bad ones included.", 0, NULL,
        NULL, NULL, get_http_requests),
    ROW(C, "cohort_http_bad_requests_total",
        "HTTP requests refused as malformed, too large or unsupported.", 0, NULL, NULL, NULL,
        get_http_bad),
    /* cohort */
    ROW(B, NULL, NULL, 0, "cohort:cohort_cluster", NULL, NULL, get_in_cluster),
    ROW(G, "cohort_cluster_members", "Other members configured.", 0, "cohort:cohort_members",
        NULL, "members", get_members),
    {G, NULL, NULL, 0, NULL, "incarnation", "incarnation", METRIC_JSON_HEX, NULL,
     get_incarnation, NULL, NULL},
    ROW(B, NULL, NULL, 0, "cohort:cohort_serving_cache", "serving_cache", NULL,
        get_serving_cache),
    TROW(NULL, "why_not_serving", NULL, text_why_not_serving),
    TROW("cohort:membership_arbiter", "arbiter", "arbiter", text_arbiter),
    ROW(B, NULL, NULL, 0, "cohort:cohort_cut_off", NULL, NULL, get_cut_off),
    ROW(C, "cohort_flush_entries_sent_total", "Flush entries sent to members.", 0,
        "cohort:flush_entries_sent", NULL, NULL, get_flushes_sent),
    ROW(C, "cohort_flush_entries_received_total", "Flush entries applied from members.", 0,
        "cohort:flush_entries_received", NULL, NULL, get_flushes_received),
    ROW(C, "cohort_flush_frames_sent_total", "FLUSH frames sent (batches).", 0, NULL, NULL, NULL,
        get_flush_frames),
    ROW(C, "cohort_flush_ack_timeouts_total",
        "Times a member did not acknowledge a flush within flush_timeout.", 0,
        "cohort:flush_ack_timeouts", NULL, NULL, get_ack_timeouts),
    ROW(C, "cohort_flush_wait_seconds_total", "Total time flush replies waited for "
        "acknowledgements.", 1000000, NULL, NULL, NULL, get_wait_usec),
    ROW(C, "cohort_flush_waits_total", "Flush replies that waited for acknowledgements.", 0,
        NULL, NULL, NULL, get_waits),
    ROW(C, "cohort_cache_bypasses_total",
        "Reads that missed because the coherence lease did not hold.", 0,
        "cohort:cache_bypasses", NULL, NULL, get_bypasses),
    ROW(C, "cohort_cache_drops_total",
        "Whole-cache drops because flushes from a member may have been lost.", 0,
        "cohort:cache_drops", NULL, NULL, get_cache_drops),
    ROW(C, "cohort_writes_yielded_total",
        "Read-modify-writes of this node that gave way to a member's after a lapse of contact "
        "(run again).", 0, "cohort:writes_yielded", NULL, NULL, get_writes_yielded),
    ROW(C, "cohort_flush_entries_replayed_total",
        "Flush entries replayed to members that reconnected.", 0, NULL, NULL, NULL,
        get_replayed),
    ROW(G, "cohort_flushlog_on", "1 while flushes reach members out of contact through the "
        "store's flush log.", 0, "cohort:flushlog_on", NULL, NULL, get_flushlog_on),
    ROW(G, "cohort_version_clock_ahead_ms",
        "How far this node's version clock runs ahead of its wall clock, in ms.", 0,
        "cohort:version_clock_ahead_ms", NULL, NULL, get_version_clock_ahead),
    ROW(C, "cohort_flushlog_appends_total",
        "Appends of this node's flushes to the store's flush log.", 0,
        "cohort:flushlog_appends", NULL, NULL, get_log_appends),
    ROW(C, "cohort_flushlog_entries_applied_total",
        "Members' flush entries applied from the store's flush log.", 0,
        "cohort:flushlog_entries_applied", NULL, NULL, get_log_applied),
    ROW(C, "cohort_peer_links_refused_total",
        "Peer links refused or closed: bad key, address, version or frame.", 0, NULL, NULL,
        NULL, get_links_refused),
    ROW(C, "cohort_member_state_changes_total", "Member state changes.", 0, NULL, NULL, NULL,
        get_state_changes),
    ROW(C, "cohort_pubsub_peer_messages_sent_total",
        "Published messages sent to members whose interest matched (one per member).", 0,
        "cohort:pubsub_peer_messages_sent", "pubsub.peer_messages_sent", NULL, get_ps_sent),
    ROW(C, "cohort_pubsub_peer_messages_received_total",
        "Published messages received from members.", 0, "cohort:pubsub_peer_messages_received",
        "pubsub.peer_messages_received", NULL, get_ps_received),
    ROW(C, "cohort_pubsub_peer_messages_lost_total",
        "Published messages a member's interest wanted while its link was down (not sent).", 0,
        "cohort:pubsub_peer_messages_lost", "pubsub.peer_messages_lost", NULL, get_ps_lost),
    ROW(C, "cohort_pubsub_peer_message_frames_sent_total",
        "MESSAGE frames sent to members (a loop turn's messages to a member share one).", 0,
        "cohort:pubsub_peer_message_frames_sent", "pubsub.peer_message_frames_sent", NULL,
        get_ps_frames),
    ROW(C, "cohort_pubsub_interest_frames_sent_total",
        "Interest announcements sent to members.", 0, NULL, NULL, NULL, get_interest_frames),
    /* store */
    TROW("store:store_backend", "store.backend", NULL, text_store_backend),
    TROW("store:store_state", "store.state", "store", text_store_state),
    ROW(B, "cohort_store_up", "1 while the last contact with the shared store worked.", 0,
        "store:store_up", "store.up", NULL, get_store_up),
    ROW(G, NULL, NULL, 0, "store:store_since_ms", "store.since_ms", NULL, get_store_since),
    TROW("store:store_last_error", "store.last_error", NULL, text_store_error),
    ROW(C, "cohort_store_round_trips_total", "Store operations that reached the database.", 0,
        "store:store_round_trips", "store.round_trips", NULL, get_store_round_trips),
    ROW(C, "cohort_store_errors_total", "Store operations that failed.", 0,
        "store:store_errors", "store.errors", NULL, get_store_errors),
    ROW(C, "cohort_store_timeouts_total", "Store operations that timed out.", 0,
        "store:store_timeouts", "store.timeouts", NULL, get_store_timeouts),
    ROW(C, "cohort_store_reconnects_total", "Connections to the store re-established.", 0,
        "store:store_reconnects", "store.reconnects", NULL, get_store_reconnects),
    ROW(C, "cohort_store_rejected_total", "Store operations refused: too many pending.", 0,
        "store:store_rejected", NULL, NULL, get_store_rejected),
    ROW(G, "cohort_store_pending", "Store operations queued or running.", 0,
        "store:store_pending", "store.pending", NULL, get_store_pending),
    ROW(G, NULL, NULL, 0, "store:store_schema_version", "store.schema_version", NULL,
        get_store_schema),
    /* leases and jobs */
    ROW(B, "cohort_leader", "1 while this node holds the canonical lease.", 0,
        "leases:leader", "leases.leader", "leader", get_leader),
    ROW(G, "cohort_leases_held", "Leases this node holds now.", 0, "leases:leases_held",
        "leases.held", NULL, get_leases_held),
    ROW(C, "cohort_leases_acquired_total", "Times this node gained a lease.", 0,
        "leases:leases_acquired", NULL, NULL, get_leases_acquired),
    ROW(C, "cohort_leases_lost_total", "Times this node stopped trusting a lease it held.", 0,
        "leases:leases_lost", NULL, NULL, get_leases_lost),
    ROW(G, "cohort_jobs", "Jobs configured.", 0, "leases:jobs", "jobs.count", NULL, get_jobs),
    ROW(C, "cohort_job_runs_total", "Job runs started on this node.", 0, "leases:job_runs",
        "jobs.runs", NULL, get_job_runs),
    ROW(C, "cohort_job_runs_ok_total", "Job runs on this node that succeeded.", 0,
        "leases:job_runs_ok", NULL, NULL, get_job_ok),
    ROW(C, "cohort_job_runs_failed_total", "Job runs on this node that failed or timed out.", 0,
        "leases:job_runs_failed", "jobs.failed", NULL, get_job_failed),
    ROW(C, "cohort_job_slots_taken_total", "Slots another node had claimed first.", 0, NULL,
        NULL, NULL, get_job_taken),
    ROW(C, "cohort_job_slots_skipped_total", "Slots dropped by overlap = skip.", 0, NULL, NULL,
        NULL, get_job_skipped),
    ROW(C, "cohort_job_slots_abandoned_total",
        "Slots started here whose lease was lost before the run (not run, never re-run).", 0,
        NULL, NULL, NULL, get_job_abandoned),
};

#undef C
#undef G
#undef B

void node_register_metrics(node_t *n)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        metric_t m = rows[i];
        m.ud = n;
        metrics_add(n->metrics, &m);
    }
}
