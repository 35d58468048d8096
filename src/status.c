/* status: what a node reports about itself, for people and monitors.
 *
 * Owns: cohortd's HTTP routes and their rendering from node_t:
 *   GET /health     200 "ok" while serving, 503 and the reason otherwise
 *                   (health_state decides; load balancers act on it);
 *   GET /metrics    Prometheus text exposition format 0.0.4;
 *   GET /v1/status  one JSON object.
 * Never: changes node state, or trusts a subsystem pointer to be set (a node
 * that is starting or stopping may have no server or no cache yet).
 *
 * The metrics are a table of data (metrics[]): one row per metric with its
 * name, type, help text and the field of a snapshot_t holding its value; a
 * snapshot is read once per request. Only metrics with labels (one series
 * per command) are written by code of their own. */
#include "cluster.h"
#include "status.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cache.h"
#include "commands.h"
#include "server.h"

/* ---- state ------------------------------------------------------------------ */

/* Decides whether this node should receive traffic. Returns the HTTP status
 * for /health (200 or 503) and sets *why to the state's name, which /health
 * and /v1/status report. Later states (draining, maintenance, cut off from
 * the cluster) are added here. */
static int health_state(node_t *n, const char **why)
{
    if (n->shutting_down) {
        *why = "shutting_down";
        return 503;
    }
    if (cluster_cut_off(n->cluster)) {
        *why = "cut_off";
        return 503;
    }
    /* Out of contact with some member: still answering (from the database),
     * but not serving cached values; a balancer need not act. */
    *why = cluster_serving(n->cluster) ? "serving" : "bypassing";
    return 200;
}

/* ---- escaping --------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (of at most len bytes), or 0 if the
 * bytes there are not one (overlong forms and surrogates included). */
static size_t utf8_seq_len(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t need;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        need = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        need = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        need = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return need;
}

/* Appends s as a JSON string, quotes included: '"', '\' and control
 * characters are escaped, and bytes that are not valid UTF-8 become U+FFFD, so
 * the output is valid JSON whatever s holds. A NULL s is written as "". */
static void json_escape(buf_t *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t len = strlen((const char *)p);
    buf_append(out, "\"", 1);
    while (len > 0) {
        unsigned char c = *p;
        size_t n = utf8_seq_len(p, len);
        if (n == 0) {
            buf_append_str(out, "\\ufffd");
            n = 1;
        } else if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            buf_append(out, e, 2);
        } else if (c == '\n') {
            buf_append_str(out, "\\n");
        } else if (c == '\r') {
            buf_append_str(out, "\\r");
        } else if (c == '\t') {
            buf_append_str(out, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_append(out, e, 6);
        } else {
            buf_append(out, p, n);
        }
        p += n;
        len -= n;
    }
    buf_append(out, "\"", 1);
}

/* Appends s as a Prometheus label value (without quotes): backslash, '"' and
 * newline are escaped, as the text format requires, and bytes that are not
 * valid UTF-8 become U+FFFD. */
static void prom_label_escape(buf_t *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t len = strlen((const char *)p);
    while (len > 0) {
        size_t n = utf8_seq_len(p, len);
        if (n == 0) {
            buf_append_str(out, "\xef\xbf\xbd");
            n = 1;
        } else if (*p == '\\') {
            buf_append_str(out, "\\\\");
        } else if (*p == '"') {
            buf_append_str(out, "\\\"");
        } else if (*p == '\n') {
            buf_append_str(out, "\\n");
        } else {
            buf_append(out, p, n);
        }
        p += n;
        len -= n;
    }
}

/* ---- values ----------------------------------------------------------------- */

/* Every figure /metrics and /v1/status report, read once per request; every
 * field is a uint64_t (metric_value reads them as such). The
 * subsystems a node may lack (starting, stopping, or a test) read as zero. */
typedef struct snapshot {
    node_stats_t stats;     /* copy of n->stats */
    cache_stats_t cache;    /* hits, misses, evicted, expired */
    uint64_t keys;          /* cache_count */
    uint64_t expiring;      /* cache_expires_count */
    uint64_t used_memory;   /* cache_used_memory */
    uint64_t maxmemory;     /* the cache's limit, else the configured one */
    uint64_t clients;       /* open client connections */
    uint64_t http_requests; /* from the HTTP listener, else n->stats */
    uint64_t http_bad_requests;
    uint64_t uptime_ms;
    cluster_counters_t cluster; /* zero when running alone */
    uint64_t members;
} snapshot_t;

static void snapshot_take(node_t *n, snapshot_t *s)
{
    memset(s, 0, sizeof(*s));
    s->stats = n->stats;
    if (n->cache) {
        s->cache = *cache_stats(n->cache);
        s->keys = cache_count(n->cache);
        s->expiring = cache_expires_count(n->cache);
        s->used_memory = cache_used_memory(n->cache);
        s->maxmemory = cache_maxmemory(n->cache);
    } else if (n->cfg) {
        s->maxmemory = n->cfg->maxmemory;
    }
    if (n->server)
        s->clients = server_client_count(n->server);
    if (n->http) {
        s->http_requests = http_counters(n->http)->requests;
        s->http_bad_requests = http_counters(n->http)->bad_requests;
    } else {
        s->http_requests = n->stats.http_requests;
        s->http_bad_requests = n->stats.http_bad_requests;
    }
    s->cluster = *cluster_counters(n->cluster);
    s->members = cluster_member_count(n->cluster);
    int64_t up = node_now(n) - n->start_ms;
    s->uptime_ms = up > 0 ? (uint64_t)up : 0;
}

/* ---- /metrics ---------------------------------------------------------------- */

/* One unlabelled metric: its value is the snapshot_t field at offset 'field',
 * divided by 'div' when that is not 1 (a value kept in ms reported in s). */
typedef struct metric {
    const char *name;
    const char *type; /* "counter" or "gauge" */
    const char *help;
    size_t field;
    unsigned div;
} metric_t;

#define F(member) offsetof(snapshot_t, member)

static const metric_t metrics[] = {
    {"cohort_cache_hits_total", "counter", "Cache reads that found a live key.", F(cache.hits), 1},
    {"cohort_cache_misses_total", "counter", "Cache reads that found no key.", F(cache.misses), 1},
    {"cohort_cache_evictions_total", "counter", "Keys evicted to stay under maxmemory.",
     F(cache.evicted), 1},
    {"cohort_cache_expirations_total", "counter", "Keys removed because their time passed.",
     F(cache.expired), 1},
    {"cohort_cache_keys", "gauge", "Keys in the cache.", F(keys), 1},
    {"cohort_cache_expiring_keys", "gauge", "Keys in the cache with an expire time.", F(expiring),
     1},
    {"cohort_used_memory_bytes", "gauge", "Bytes used by the cache, as counted against maxmemory.",
     F(used_memory), 1},
    {"cohort_maxmemory_bytes", "gauge", "Cache memory limit in bytes (0: none).", F(maxmemory), 1},
    {"cohort_connected_clients", "gauge", "Open client connections.", F(clients), 1},
    {"cohort_connections_total", "counter", "Client connections accepted.",
     F(stats.connections_received), 1},
    {"cohort_rejected_connections_total", "counter", "Client connections refused (maxclients).",
     F(stats.rejected_connections), 1},
    {"cohort_protocol_errors_total", "counter", "Client connections closed for malformed RESP.",
     F(stats.protocol_errors), 1},
    {"cohort_client_output_limit_disconnects_total", "counter",
     "Client connections closed for exceeding the output buffer limit.",
     F(stats.output_limit_closes), 1},
    {"cohort_net_input_bytes_total", "counter", "Bytes read from clients.",
     F(stats.net_input_bytes), 1},
    {"cohort_net_output_bytes_total", "counter", "Bytes written to clients.",
     F(stats.net_output_bytes), 1},
    {"cohort_flushes_total", "counter", "Flush commands executed on this node.",
     F(stats.flushes_local), 1},
    {"cohort_setl_refused_total", "counter", "SETL fills refused because the key was flushed.",
     F(stats.setl_refused), 1},
    {"cohort_http_requests_total", "counter", "HTTP requests answered, bad ones included.",
     F(http_requests), 1},
    {"cohort_http_bad_requests_total", "counter",
     "HTTP requests refused as malformed, too large or unsupported.", F(http_bad_requests), 1},
    {"cohort_uptime_seconds", "gauge", "Seconds since this node started.", F(uptime_ms), 1000},
    {"cohort_cluster_members", "gauge", "Other members configured.", F(members), 1},
    {"cohort_flush_entries_sent_total", "counter", "Flush entries sent to members.",
     F(cluster.flushes_sent), 1},
    {"cohort_flush_entries_received_total", "counter", "Flush entries applied from members.",
     F(cluster.flushes_received), 1},
    {"cohort_flush_frames_sent_total", "counter", "FLUSH frames sent (batches).",
     F(cluster.flush_frames_sent), 1},
    {"cohort_flush_ack_timeouts_total", "counter",
     "Times a member did not acknowledge a flush within flush_timeout.", F(cluster.ack_timeouts),
     1},
    {"cohort_flush_wait_seconds_total", "counter",
     "Total time flush replies waited for acknowledgements.", F(cluster.flush_wait_usec),
     1000000},
    {"cohort_flush_waits_total", "counter", "Flush replies that waited for acknowledgements.",
     F(cluster.flush_waits), 1},
    {"cohort_cache_bypasses_total", "counter",
     "Reads that missed because the coherence lease did not hold.", F(cluster.bypasses), 1},
    {"cohort_cache_drops_total", "counter",
     "Whole-cache drops because flushes from a member may have been lost.",
     F(cluster.cache_drops), 1},
    {"cohort_flush_entries_replayed_total", "counter",
     "Flush entries replayed to members that reconnected.", F(cluster.replayed), 1},
    {"cohort_peer_links_refused_total", "counter",
     "Peer links refused or closed: bad key, address, version or frame.",
     F(cluster.links_refused), 1},
    {"cohort_member_state_changes_total", "counter", "Member state changes.",
     F(cluster.state_changes), 1},
};

#undef F

static uint64_t metric_value(const snapshot_t *s, const metric_t *m)
{
    uint64_t v;
    memcpy(&v, (const char *)s + m->field, sizeof(v));
    return v;
}

static void prom_header(buf_t *out, const char *name, const char *type, const char *help);

/* cohort_member_state{member,state} 1 for the current state of each member,
 * and its heartbeat round-trip time. */
static void render_members(node_t *n, buf_t *out)
{
    size_t count = cluster_member_count(n->cluster);
    if (!count)
        return;
    prom_header(out, "cohort_member_state", "gauge", "1 for each member's current state.");
    for (size_t i = 0; i < count; i++) {
        member_info_t mi;
        cluster_member_info(n->cluster, i, &mi);
        buf_append_str(out, "cohort_member_state{member=\"");
        prom_label_escape(out, mi.name[0] ? mi.name : mi.addr);
        buf_append_str(out, "\",state=\"");
        prom_label_escape(out, mi.state);
        buf_append_str(out, "\"} 1\n");
    }
    prom_header(out, "cohort_member_rtt_seconds", "gauge", "Last heartbeat round-trip time.");
    for (size_t i = 0; i < count; i++) {
        member_info_t mi;
        cluster_member_info(n->cluster, i, &mi);
        buf_append_str(out, "cohort_member_rtt_seconds{member=\"");
        prom_label_escape(out, mi.name[0] ? mi.name : mi.addr);
        buf_printf(out, "\"} %.6f\n", mi.rtt_ms / 1000.0);
    }
}

static void prom_header(buf_t *out, const char *name, const char *type, const char *help)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Writes the per-command families: calls and time spent, one series each. */
static void render_commands(buf_t *out)
{
    size_t ncmd = 0;
    command_t *cmds = commands_table(&ncmd);

    prom_header(out, "cohort_commands_total", "counter", "Commands executed, by command.");
    for (size_t i = 0; i < ncmd; i++) {
        buf_append_str(out, "cohort_commands_total{cmd=\"");
        prom_label_escape(out, cmds[i].name);
        buf_printf(out, "\"} %llu\n", (unsigned long long)cmds[i].calls);
    }
    prom_header(out, "cohort_command_duration_seconds_total", "counter",
                "Time spent executing commands, by command.");
    for (size_t i = 0; i < ncmd; i++) {
        buf_append_str(out, "cohort_command_duration_seconds_total{cmd=\"");
        prom_label_escape(out, cmds[i].name);
        buf_printf(out, "\"} %llu.%06llu\n", (unsigned long long)(cmds[i].usec / 1000000),
                   (unsigned long long)(cmds[i].usec % 1000000));
    }
}

/* Appends every metric of n to out in the Prometheus text format 0.0.4. */
void status_render_metrics(node_t *n, buf_t *out)
{
    snapshot_t snap;
    snapshot_take(n, &snap);
    for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++) {
        const metric_t *m = &metrics[i];
        uint64_t v = metric_value(&snap, m);
        prom_header(out, m->name, m->type, m->help);
        if (m->div > 1)
            buf_printf(out, "%s %llu.%03llu\n", m->name, (unsigned long long)(v / m->div),
                       (unsigned long long)(v % m->div));
        else
            buf_printf(out, "%s %llu\n", m->name, (unsigned long long)v);
    }
    render_commands(out);
    render_members(n, out);

    prom_header(out, "cohort_info", "gauge", "Version and name of this node.");
    buf_append_str(out, "cohort_info{version=\"");
    prom_label_escape(out, COHORT_VERSION);
    buf_append_str(out, "\",node=\"");
    prom_label_escape(out, n->cfg ? n->cfg->name : "");
    buf_append_str(out, "\"} 1\n");
}

/* ---- /v1/status -------------------------------------------------------------- */

/* Appends n's status to out as one JSON object (and a newline). */
void status_render_json(node_t *n, buf_t *out)
{
    const char *state;
    snapshot_t s;
    snapshot_take(n, &s);
    health_state(n, &state);

    buf_append_str(out, "{\"node\":");
    json_escape(out, n->cfg ? n->cfg->name : NULL);
    buf_append_str(out, ",\"version\":");
    json_escape(out, COHORT_VERSION);
    buf_append_str(out, ",\"run_id\":");
    json_escape(out, n->run_id);
    buf_append_str(out, ",\"role\":");
    json_escape(out, n->cfg ? n->cfg->role : NULL);
    buf_printf(out, ",\"uptime_ms\":%llu", (unsigned long long)s.uptime_ms);
    buf_append_str(out, ",\"state\":");
    json_escape(out, state);
    buf_printf(out, ",\"clients\":%llu", (unsigned long long)s.clients);
    buf_printf(out,
               ",\"cache\":{\"keys\":%llu,\"expiring_keys\":%llu,\"used_memory\":%llu,"
               "\"maxmemory\":%llu,\"hits\":%llu,\"misses\":%llu,\"evictions\":%llu,"
               "\"expirations\":%llu}",
               (unsigned long long)s.keys, (unsigned long long)s.expiring,
               (unsigned long long)s.used_memory, (unsigned long long)s.maxmemory,
               (unsigned long long)s.cache.hits, (unsigned long long)s.cache.misses,
               (unsigned long long)s.cache.evicted, (unsigned long long)s.cache.expired);
    buf_printf(out, ",\"commands_processed\":%llu", (unsigned long long)s.stats.commands_processed);
    buf_printf(out, ",\"incarnation\":\"%016llx\"",
               (unsigned long long)cluster_incarnation(n->cluster));
    const char *why = cluster_why_not_serving(n->cluster);
    buf_append_str(out, ",\"serving_cache\":");
    buf_append_str(out, why ? "false" : "true");
    if (why) {
        buf_append_str(out, ",\"why_not_serving\":");
        json_escape(out, why);
    }
    buf_append_str(out, ",\"members\":[");
    for (size_t i = 0; i < cluster_member_count(n->cluster); i++) {
        member_info_t mi;
        cluster_member_info(n->cluster, i, &mi);
        buf_append_str(out, i ? ",{\"name\":" : "{\"name\":");
        json_escape(out, mi.name);
        buf_append_str(out, ",\"address\":");
        json_escape(out, mi.addr);
        buf_append_str(out, ",\"state\":");
        json_escape(out, mi.state);
        buf_printf(out,
                   ",\"since_ms\":%lld,\"rtt_ms\":%.3f,\"flushes_sent\":%llu,"
                   "\"flushes_received\":%llu,\"last_acked\":%llu}",
                   (long long)mi.since_ms, mi.rtt_ms, (unsigned long long)mi.flushes_sent,
                   (unsigned long long)mi.flushes_received, (unsigned long long)mi.last_acked);
    }
    buf_append_str(out, "]}\n");
}

/* ---- routes ------------------------------------------------------------------ */

static int route_health(void *ud, const char *query, buf_t *body, const char **ctype)
{
    const char *why;
    int status = health_state(ud, &why);
    if (status == 200 && strcmp(why, "serving") == 0)
        buf_append_str(body, "ok\n");
    else if (status == 200)
        buf_printf(body, "ok, cache bypassed: %s\n",
                   cluster_why_not_serving(((node_t *)ud)->cluster));
    else
        buf_printf(body, "%s\n", why);
    return status;
}

static int route_metrics(void *ud, const char *query, buf_t *body, const char **ctype)
{
    status_render_metrics(ud, body);
    *ctype = "text/plain; version=0.0.4; charset=utf-8";
    return 200;
}

static int route_status(void *ud, const char *query, buf_t *body, const char **ctype)
{
    status_render_json(ud, body);
    *ctype = "application/json";
    return 200;
}

static const http_route_t routes[] = {
    {"GET", "/health", route_health},
    {"GET", "/metrics", route_metrics},
    {"GET", "/v1/status", route_status},
};

/* Returns the static route table; *n gets its length. */
const http_route_t *status_routes(size_t *n)
{
    *n = sizeof(routes) / sizeof(routes[0]);
    return routes;
}
