/* status: what a node reports about itself, for people and monitors.
 *
 * Owns: cohortd's HTTP routes and their rendering:
 *   GET /health     200 "ok" while serving, 503 and the reason otherwise
 *                   (the node's mode decides; load balancers act on it), and
 *                   a line "store: down since ..." when the shared store is
 *                   down (still 200: the cache serves without it);
 *   GET /metrics    Prometheus text exposition format 0.0.4;
 *   GET /v1/status  one JSON object.
 * Never: changes node state, decides the node's health (mode.c does), or
 * keeps figures of its own: every unlabelled figure is a row of the node's
 * metrics registry (node_metrics.c). Only series with labels (one per
 * command, one per member) are written by code here. */
#include "status.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "clock.h"
#include "commands.h"

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

/* ---- /metrics ---------------------------------------------------------------- */

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

/* Writes v / div with as many decimals as div has zeros (1000: ms as s). */
static void prom_value(buf_t *out, uint64_t v, unsigned div)
{
    if (div <= 1) {
        buf_printf(out, "%llu\n", (unsigned long long)v);
        return;
    }
    int digits = 0;
    for (unsigned d = div; d > 1; d /= 10)
        digits++;
    buf_printf(out, "%llu.%0*llu\n", (unsigned long long)(v / div), digits,
               (unsigned long long)(v % div));
}

/* Appends every metric of n to out in the Prometheus text format 0.0.4. */
void status_render_metrics(node_t *n, buf_t *out)
{
    for (size_t i = 0; i < metrics_count(n->metrics); i++) {
        const metric_t *m = metrics_at(n->metrics, i);
        if (!m->prom || m->type == METRIC_TEXT)
            continue;
        prom_header(out, m->prom, m->type == METRIC_COUNTER ? "counter" : "gauge", m->help);
        buf_printf(out, "%s ", m->prom);
        prom_value(out, metric_value(m), m->prom_div);
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

/* Appends m's value as JSON. Returns 0, or -1 (nothing written) when m is a
 * text with no value. */
static int json_value(buf_t *out, const metric_t *m)
{
    char text[256];
    if (m->type == METRIC_TEXT) {
        const char *v = metric_text(m, text, sizeof(text));
        if (!v)
            return -1;
        json_escape(out, v);
    } else if (m->type == METRIC_BOOL) {
        buf_append_str(out, metric_value(m) ? "true" : "false");
    } else if (m->flags & METRIC_JSON_HEX) {
        buf_printf(out, "\"%016llx\"", (unsigned long long)metric_value(m));
    } else {
        buf_printf(out, "%llu", (unsigned long long)metric_value(m));
    }
    return 0;
}

/* Length of the first part of a JSON path ("cache" of "cache.keys"). */
static size_t path_head(const char *path)
{
    const char *dot = strchr(path, '.');
    return dot ? (size_t)(dot - path) : strlen(path);
}

/* 1 when a row before i already opened the top-level key of row i. */
static int head_seen(const metrics_t *r, size_t i)
{
    const char *p = metrics_at(r, i)->json;
    size_t len = path_head(p);
    for (size_t j = 0; j < i; j++) {
        const char *q = metrics_at(r, j)->json;
        if (q && path_head(q) == len && strncmp(p, q, len) == 0)
            return 1;
    }
    return 0;
}

/* Writes the object of every row whose path starts with head "h.", as
 * "h":{"a":1,...}. */
static void json_object(buf_t *out, const metrics_t *r, size_t from, const char *h, size_t hlen)
{
    buf_printf(out, "\"%.*s\":{", (int)hlen, h);
    int first = 1;
    for (size_t k = from; k < metrics_count(r); k++) {
        const metric_t *m = metrics_at(r, k);
        if (!m->json || path_head(m->json) != hlen || strncmp(m->json, h, hlen) != 0)
            continue;
        size_t at = buf_len(out);
        buf_printf(out, "%s\"%s\":", first ? "" : ",", m->json + hlen + 1);
        if (json_value(out, m) < 0)
            out->end = out->start + at; /* no value: drop the key */
        else
            first = 0;
    }
    buf_append_str(out, "}");
}

static void json_members(node_t *n, buf_t *out)
{
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
    buf_append_str(out, "]");
}

/* Appends n's status to out as one JSON object (and a newline): every
 * registry row with a JSON path ("a" or "a.b"), top-level keys in the order
 * they first appear, then the members. */
void status_render_json(node_t *n, buf_t *out)
{
    const metrics_t *r = n->metrics;
    int first = 1;
    buf_append_str(out, "{");
    for (size_t i = 0; i < metrics_count(r); i++) {
        const metric_t *m = metrics_at(r, i);
        if (!m->json || head_seen(r, i))
            continue;
        size_t hlen = path_head(m->json);
        size_t at = buf_len(out);
        if (!first)
            buf_append_str(out, ",");
        if (m->json[hlen] == '.') {
            json_object(out, r, i, m->json, hlen);
        } else {
            buf_printf(out, "\"%s\":", m->json);
            if (json_value(out, m) < 0) {
                out->end = out->start + at; /* no value: leave the key out */
                continue;
            }
        }
        first = 0;
    }
    json_members(n, out);
    buf_append_str(out, "}\n");
}

/* ---- routes ------------------------------------------------------------------ */

/* A line about the shared store when it is down or failed: the cache still
 * serves (the status code does not change), leases and jobs do not. */
static void health_store(node_t *n, buf_t *body)
{
    store_health_t h;
    if (!n->store)
        return;
    store_health(n->store, &h);
    if (h.state != STORE_DOWN && h.state != STORE_FAILED)
        return;
    buf_printf(body, "store: %s since %lld ms ago: %s\n",
               h.state == STORE_DOWN ? "down" : "failed",
               (long long)(clock_now_ms() - h.since_ms), h.last_error);
}

static int route_health(void *ud, const char *query, buf_t *body, const char **ctype)
{
    node_t *n = ud;
    node_mode_t mode = node_mode(n);
    int status = node_mode_http_status(mode);
    if (mode == NODE_SERVING)
        buf_append_str(body, "ok\n");
    else if (status == 200)
        buf_printf(body, "ok, cache bypassed: %s\n", node_why_not_serving(n));
    else
        buf_printf(body, "%s\n", node_mode_name(mode));
    health_store(n, body);
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
