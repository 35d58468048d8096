/* info: the INFO command's text, section by section, in redis-server's
 * "# Section\r\nkey:value\r\n" format so existing tools can read it.
 * Sections are a table of data: name, whether INFO with no argument shows it,
 * and the function that writes it. */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cluster.h"
#include "cmd.h"
#include "server.h"

static void human_bytes(char *out, size_t len, size_t n)
{
    const char *units = "BKMGT";
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, len, "%zuB", n);
    else
        snprintf(out, len, "%.2f%c", v, units[u]);
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

static void info_server(node_t *n, buf_t *b)
{
    struct utsname u;
    uname(&u);
    int64_t up = (node_now(n) - n->start_ms) / 1000;
    buf_printf(b,
               "redis_version:%s\r\ncohort_version:%s\r\nredis_mode:standalone\r\n"
               "os:%s %s %s\r\narch_bits:%d\r\nprocess_id:%ld\r\nrun_id:%s\r\n"
               "tcp_port:%d\r\nuptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\n"
               "node_name:%s\r\nnode_role:%s\r\nconfig_file:%s\r\n",
               COHORT_REDIS_COMPAT_VERSION, COHORT_VERSION, u.sysname, u.release, u.machine,
               (int)(sizeof(void *) * 8), (long)getpid(), n->run_id, n->cfg->port, (long long)up,
               (long long)up / 86400, n->cfg->name, n->cfg->role,
               n->cfg->path ? n->cfg->path : "");
}

static void info_clients(node_t *n, buf_t *b)
{
    buf_printf(b, "connected_clients:%zu\r\nmaxclients:%zu\r\nclients_memory:%zu\r\n",
               server_client_count(n->server), n->cfg->maxclients,
               server_clients_memory(n->server));
}

static void info_memory(node_t *n, buf_t *b)
{
    char used_h[32], max_h[32], rss_h[32];
    size_t used = cache_used_memory(n->cache);
    size_t max = cache_maxmemory(n->cache);
    size_t rss = rss_bytes();
    human_bytes(used_h, sizeof(used_h), used);
    human_bytes(max_h, sizeof(max_h), max);
    human_bytes(rss_h, sizeof(rss_h), rss);
    buf_printf(b,
               "used_memory:%zu\r\nused_memory_human:%s\r\nused_memory_rss:%zu\r\n"
               "used_memory_rss_human:%s\r\nmaxmemory:%zu\r\nmaxmemory_human:%s\r\n"
               "maxmemory_policy:allkeys-lru\r\nmem_clients_normal:%zu\r\n",
               used, used_h, rss, rss_h, max, max_h, server_clients_memory(n->server));
}

static void info_stats(node_t *n, buf_t *b)
{
    const cache_stats_t *cs = cache_stats(n->cache);
    const node_stats_t *s = &n->stats;
    buf_printf(b,
               "total_connections_received:%llu\r\ntotal_commands_processed:%llu\r\n"
               "total_net_input_bytes:%llu\r\ntotal_net_output_bytes:%llu\r\n"
               "rejected_connections:%llu\r\nexpired_keys:%llu\r\nevicted_keys:%llu\r\n"
               "keyspace_hits:%llu\r\nkeyspace_misses:%llu\r\ntotal_error_replies:0\r\n"
               "protocol_errors:%llu\r\nclient_output_limit_disconnects:%llu\r\n"
               "client_query_limit_disconnects:%llu\r\nsetl_refused:%llu\r\n",
               (unsigned long long)s->connections_received,
               (unsigned long long)s->commands_processed, (unsigned long long)s->net_input_bytes,
               (unsigned long long)s->net_output_bytes,
               (unsigned long long)s->rejected_connections, (unsigned long long)cs->expired,
               (unsigned long long)cs->evicted, (unsigned long long)cs->hits,
               (unsigned long long)cs->misses, (unsigned long long)s->protocol_errors,
               (unsigned long long)s->output_limit_closes,
               (unsigned long long)s->query_limit_closes, (unsigned long long)s->setl_refused);
}

static void info_keyspace(node_t *n, buf_t *b)
{
    size_t keys = cache_count(n->cache);
    if (keys)
        buf_printf(b, "db0:keys=%zu,expires=%zu,avg_ttl=0\r\n", keys,
                   cache_expires_count(n->cache));
}

static void info_commandstats(node_t *n, buf_t *b)
{
    size_t count;
    const command_t *t = commands_table(&count);
    for (size_t i = 0; i < count; i++) {
        if (!t[i].calls && !t[i].rejected)
            continue;
        double per = t[i].calls ? (double)t[i].usec / (double)t[i].calls : 0;
        buf_printf(b,
                   "cmdstat_%s:calls=%llu,usec=%llu,usec_per_call=%.2f,rejected_calls=%llu,"
                   "failed_calls=0\r\n",
                   t[i].name, (unsigned long long)t[i].calls, (unsigned long long)t[i].usec, per,
                   (unsigned long long)t[i].rejected);
    }
}

static void info_cluster(node_t *n, buf_t *b)
{
    cluster_t *cl = n->cluster;
    const cluster_counters_t *k = cluster_counters(cl);
    buf_printf(b,
               "cohort_cluster:%d\r\ncohort_members:%zu\r\ncohort_serving_cache:%d\r\n"
               "cohort_cut_off:%d\r\nflush_entries_sent:%llu\r\nflush_entries_received:%llu\r\n"
               "flush_ack_timeouts:%llu\r\ncache_bypasses:%llu\r\ncache_drops:%llu\r\n",
               cl != NULL, cluster_member_count(cl), cluster_serving(cl), cluster_cut_off(cl),
               (unsigned long long)k->flushes_sent, (unsigned long long)k->flushes_received,
               (unsigned long long)k->ack_timeouts, (unsigned long long)k->bypasses,
               (unsigned long long)k->cache_drops);
    for (size_t i = 0; i < cluster_member_count(cl); i++) {
        member_info_t mi;
        cluster_member_info(cl, i, &mi);
        buf_printf(b, "member%zu:name=%s,address=%s,state=%s,rtt_ms=%.3f\r\n", i, mi.name,
                   mi.addr, mi.state, mi.rtt_ms);
    }
}

typedef struct info_section {
    const char *name;
    int in_default;
    void (*write)(node_t *n, buf_t *b);
} info_section_t;

static const info_section_t sections[] = {
    {"server", 1, info_server},     {"clients", 1, info_clients},
    {"memory", 1, info_memory},     {"stats", 1, info_stats},
    {"cohort", 1, info_cluster},   {"commandstats", 0, info_commandstats},
    {"keyspace", 1, info_keyspace},
};
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

static int section_wanted(const info_section_t *s, int argc, const char **argv,
                          const size_t *argl)
{
    if (argc == 1)
        return s->in_default;
    for (int i = 1; i < argc; i++) {
        if (cmd_is(argv[i], argl[i], "all") || cmd_is(argv[i], argl[i], "everything"))
            return 1;
        if (cmd_is(argv[i], argl[i], "default") && s->in_default)
            return 1;
        if (cmd_is(argv[i], argl[i], s->name))
            return 1;
    }
    return 0;
}

CMD_HANDLER(cmd_info)
{
    buf_t text;
    buf_init(&text);
    for (size_t i = 0; i < NSECTIONS; i++) {
        if (!section_wanted(&sections[i], argc, argv, argl))
            continue;
        if (buf_len(&text))
            buf_append(&text, "\r\n", 2);
        char title[32];
        snprintf(title, sizeof(title), "# %s\r\n", sections[i].name);
        title[2] = (char)(title[2] - 32); /* "Server", "Clients", ... */
        buf_append_str(&text, title);
        sections[i].write(c->node, &text);
    }
    resp_add_verbatim(&c->out, c->proto, buf_head(&text), buf_len(&text));
    buf_free(&text);
}
