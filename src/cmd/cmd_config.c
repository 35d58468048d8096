/* cmd_config: CONFIG GET, SET and RESETSTAT with redis-server 7's replies
 * and error texts.
 *
 * GET answers the parameters clients and their libraries read (a table:
 * name and how to render its value); the ones cohortd has no use for answer
 * what an unconfigured redis-server answers. SET changes what can change
 * safely at run time: maxmemory (evicts at once), maxmemory-policy (every
 * policy of redis-server: cache.h), timeout, slowlog-log-slower-
 * than, slowlog-max-len, and the encoding limits of hashes and sets
 * (hash-max-listpack-entries/-value, set-max-intset-entries, and the ziplist
 * aliases: redis-server 7.0 has no set-max-listpack-*), and lua-time-limit
 * (alias busy-reply-threshold: when a script turns busy); every pair is
 * checked before any is applied (as redis-server does). The INI file is not
 * rewritten.
 * Never: changes a setting another subsystem reads without telling it
 * (timeout: server_timeout_changed). */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "glob.h"

/* ---- GET ------------------------------------------------------------------ */

typedef struct config_item {
    const char *name;
    void (*value)(node_t *n, char *out, size_t len);
    const char *fixed; /* the value when value is NULL */
} config_item_t;

static void v_maxmemory(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%zu", cache_maxmemory(n->cache));
}
static void v_policy(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%s", cache_policy_name(cache_policy(n->cache)));
}
static void v_maxclients(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%zu", n->cfg->maxclients);
}
static void v_databases(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%d", n->cfg->databases);
}
static void v_timeout(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%d", n->cfg->timeout_s);
}
static void v_port(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%d", n->cfg->port);
}
static void v_bind(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%s", n->cfg->bind);
}
static void v_bulk(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%zu", n->cfg->max_bulk_len);
}
static void v_backlog(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%d", n->cfg->tcp_backlog);
}
static void v_slower(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%lld", slowlog_threshold_us());
}
static void v_slowlen(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%lld", slowlog_max_len());
}

static void v_tracking_max(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%zu", n->cfg->tracking_table_max_keys);
}

static void v_hash_entries(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%zu", cmd_coll_limits()->hash_max_listpack_entries);
}

static void v_hash_value(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%zu", cmd_coll_limits()->hash_max_listpack_value);
}

static void v_intset_entries(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%zu", cmd_coll_limits()->set_max_intset_entries);
}

static void v_busy_ms(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%lld", cmd_script_busy_ms());
}

static const config_item_t config_items[] = {
    {"tracking-table-max-keys", v_tracking_max, NULL},
    {"maxmemory", v_maxmemory, NULL},
    {"maxmemory-policy", v_policy, NULL},
    {"maxmemory-samples", NULL, "5"},
    {"maxclients", v_maxclients, NULL},
    {"timeout", v_timeout, NULL},
    {"port", v_port, NULL},
    {"bind", v_bind, NULL},
    {"tcp-backlog", v_backlog, NULL},
    {"tcp-keepalive", NULL, "300"},
    {"databases", v_databases, NULL},
    {"proto-max-bulk-len", v_bulk, NULL},
    {"save", NULL, ""},
    {"appendonly", NULL, "no"},
    {"appendfsync", NULL, "everysec"},
    {"dbfilename", NULL, "dump.rdb"},
    {"notify-keyspace-events", NULL, ""},
    {"hz", NULL, "10"},
    {"lua-time-limit", v_busy_ms, NULL},
    {"busy-reply-threshold", v_busy_ms, NULL},
    {"slowlog-max-len", v_slowlen, NULL},
    {"slowlog-log-slower-than", v_slower, NULL},
    {"cluster-enabled", NULL, "no"},
    {"replica-read-only", NULL, "yes"},
    {"slave-read-only", NULL, "yes"},
    {"lazyfree-lazy-user-del", NULL, "no"},
    {"stop-writes-on-bgsave-error", NULL, "no"},
    {"activedefrag", NULL, "no"},
    {"hash-max-listpack-entries", v_hash_entries, NULL},
    {"hash-max-ziplist-entries", v_hash_entries, NULL},
    {"hash-max-listpack-value", v_hash_value, NULL},
    {"hash-max-ziplist-value", v_hash_value, NULL},
    {"set-max-intset-entries", v_intset_entries, NULL},
};
#define NITEMS (sizeof(config_items) / sizeof(config_items[0]))

static void config_get_cmd(client_t *c, int argc, const char **argv, const size_t *argl)
{
    int match[NITEMS] = {0};
    size_t count = 0;
    for (size_t i = 0; i < NITEMS; i++) {
        for (int j = 2; j < argc && !match[i]; j++)
            match[i] = glob_match(argv[j], argl[j], config_items[i].name,
                                  strlen(config_items[i].name));
        count += (size_t)match[i];
    }
    resp_add_map(&c->out, c->proto, count);
    for (size_t i = 0; i < NITEMS; i++) {
        if (!match[i])
            continue;
        char value[64];
        if (config_items[i].value)
            config_items[i].value(cmd_node(c), value, sizeof(value));
        else
            snprintf(value, sizeof(value), "%s", config_items[i].fixed);
        resp_add_bulk_str(&c->out, config_items[i].name);
        resp_add_bulk_str(&c->out, value);
    }
}

/* ---- SET ------------------------------------------------------------------ */

/* A checked new value, applied once every pair is valid. */
typedef struct config_change {
    const struct settable *what;
    long long v;
} config_change_t;

typedef struct settable {
    const char *name;
    /* Checks the value: 0 with *v, or -1 with the reason in err. */
    int (*parse)(const char *s, size_t len, long long *v, const char **err);
    void (*apply)(node_t *n, long long v);
} settable_t;

/* redis-server's memtoull: digits and an optional unit (b, k, kb, m, mb, g,
 * gb; k = 1000, kb = 1024). */
static int parse_memory(const char *s, size_t len, long long *v, const char **err)
{
    static const struct {
        const char *unit;
        unsigned long long mul;
    } units[] = {{"", 1},           {"b", 1},       {"k", 1000},         {"kb", 1024},
                 {"m", 1000000},    {"mb", 1 << 20}, {"g", 1000000000ull}, {"gb", 1ull << 30}};
    *err = "argument must be a memory value";
    size_t digits = 0;
    while (digits < len && isdigit((unsigned char)s[digits]))
        digits++;
    if (digits == 0 || digits > 19)
        return -1;
    unsigned long long n = 0;
    for (size_t i = 0; i < digits; i++)
        n = n * 10 + (unsigned long long)(s[i] - '0');
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        if (!cmd_is(s + digits, len - digits, units[u].unit))
            continue;
        if (n > (unsigned long long)LLONG_MAX / units[u].mul)
            return -1;
        *v = (long long)(n * units[u].mul);
        return 0;
    }
    return -1;
}

static int parse_policy(const char *s, size_t len, long long *v, const char **err)
{
    *v = cache_policy_parse(s, len);
    if (*v >= 0)
        return 0;
    *err = "argument(s) must be one of the following: volatile-lru, volatile-lfu, "
           "volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction";
    return -1;
}

static void apply_policy(node_t *n, long long v)
{
    cache_set_policy(n->cache, (int)v);
}

static int parse_range(const char *s, size_t len, long long lo, long long hi, long long *v,
                       const char **err)
{
    if (cmd_parse_ll(s, len, v) < 0) {
        *err = "argument couldn't be parsed into an integer";
        return -1;
    }
    if (*v < lo || *v > hi) {
        static char msg[96];
        snprintf(msg, sizeof(msg), "argument must be between %lld and %lld inclusive", lo, hi);
        *err = msg;
        return -1;
    }
    return 0;
}

static int parse_timeout(const char *s, size_t len, long long *v, const char **err)
{
    return parse_range(s, len, 0, INT_MAX, v, err);
}

static int parse_slower(const char *s, size_t len, long long *v, const char **err)
{
    return parse_range(s, len, -1, LLONG_MAX, v, err);
}

static int parse_slowlen(const char *s, size_t len, long long *v, const char **err)
{
    return parse_range(s, len, 0, LLONG_MAX, v, err);
}

static void apply_maxmemory(node_t *n, long long v)
{
    n->cfg->maxmemory = (size_t)v;
    cache_set_maxmemory(n->cache, (size_t)v);
    if (v && cache_used_memory(n->cache) > (size_t)v)
        cache_evict(n->cache);
}

static void apply_timeout(node_t *n, long long v)
{
    n->cfg->timeout_s = (int)v;
    server_timeout_changed(n->server);
}

static void apply_slower(node_t *n, long long v)
{
    slowlog_set_threshold_us(v);
}

static void apply_slowlen(node_t *n, long long v)
{
    slowlog_set_max_len(v);
}

static int parse_tracking_max(const char *s, size_t len, long long *v, const char **err)
{
    return parse_range(s, len, 0, LLONG_MAX, v, err);
}

static void apply_tracking_max(node_t *n, long long v)
{
    n->cfg->tracking_table_max_keys = (size_t)v;
    tracking_set_max_keys(n->tracking, (size_t)v);
}

/* The encoding limits (cmd_coll.c): 0 .. LONG_MAX as in redis-server 7.0,
 * entries as integers, the value length as a memory value (64, 1kb). */
static int parse_entries(const char *s, size_t len, long long *v, const char **err)
{
    return parse_range(s, len, 0, LLONG_MAX, v, err);
}

static void apply_hash_entries(node_t *n, long long v)
{
    cmd_coll_limits_t l = *cmd_coll_limits();
    l.hash_max_listpack_entries = (size_t)v;
    cmd_coll_set_limits(&l);
}

static void apply_hash_value(node_t *n, long long v)
{
    cmd_coll_limits_t l = *cmd_coll_limits();
    l.hash_max_listpack_value = (size_t)v;
    cmd_coll_set_limits(&l);
}

static void apply_intset_entries(node_t *n, long long v)
{
    cmd_coll_limits_t l = *cmd_coll_limits();
    l.set_max_intset_entries = (size_t)v;
    cmd_coll_set_limits(&l);
}

/* lua-time-limit / busy-reply-threshold: milliseconds, 0 .. LONG_MAX as in
 * redis-server 7.0 (0: a script is never busy). */
static int parse_busy_ms(const char *s, size_t len, long long *v, const char **err)
{
    return parse_range(s, len, 0, LLONG_MAX, v, err);
}

static void apply_busy_ms(node_t *n, long long v)
{
    cmd_script_set_busy_ms(n, v);
}

static const settable_t settables[] = {
    {"tracking-table-max-keys", parse_tracking_max, apply_tracking_max},
    {"maxmemory", parse_memory, apply_maxmemory},
    {"maxmemory-policy", parse_policy, apply_policy},
    {"timeout", parse_timeout, apply_timeout},
    {"slowlog-log-slower-than", parse_slower, apply_slower},
    {"slowlog-max-len", parse_slowlen, apply_slowlen},
    /* An alias is its own entry, as in redis-server 7.0: setting a name and
     * its alias in one CONFIG SET is no duplicate (the last one wins). */
    {"hash-max-listpack-entries", parse_entries, apply_hash_entries},
    {"hash-max-ziplist-entries", parse_entries, apply_hash_entries},
    {"hash-max-listpack-value", parse_memory, apply_hash_value},
    {"hash-max-ziplist-value", parse_memory, apply_hash_value},
    {"set-max-intset-entries", parse_entries, apply_intset_entries},
    {"lua-time-limit", parse_busy_ms, apply_busy_ms},
    {"busy-reply-threshold", parse_busy_ms, apply_busy_ms},
};
#define NSETTABLE (sizeof(settables) / sizeof(settables[0]))

static const settable_t *find_settable(const char *name, size_t len)
{
    for (size_t i = 0; i < NSETTABLE; i++)
        if (cmd_is(name, len, settables[i].name))
            return &settables[i];
    return NULL;
}

static void config_set_cmd(client_t *c, int argc, const char **argv, const size_t *argl)
{
    if (argc < 4 || argc % 2 != 0) {
        if (argc < 4)
            cmd_reply_sub_arity(c, "config", argv[1], argl[1]);
        else
            resp_add_error(&c->out, ERR_SYNTAX);
        return;
    }
    config_change_t changes[NSETTABLE];
    size_t n = 0;
    for (int j = 2; j < argc; j += 2) {
        const settable_t *s = find_settable(argv[j], argl[j]);
        const char *err = NULL;
        if (!s) {
            resp_add_errorf(&c->out, "ERR Unknown option or number of arguments for CONFIG SET - "
                                     "'%.*s'", (int)(argl[j] > 128 ? 128 : argl[j]), argv[j]);
            return;
        }
        for (size_t k = 0; k < n; k++)
            if (changes[k].what == s)
                err = "duplicate parameter";
        if (!err && s->parse(argv[j + 1], argl[j + 1], &changes[n].v, &err) == 0) {
            changes[n++].what = s;
            continue;
        }
        resp_add_errorf(&c->out, "ERR CONFIG SET failed (possibly related to argument '%s') - %s",
                        s->name, err);
        return;
    }
    for (size_t k = 0; k < n; k++)
        changes[k].what->apply(cmd_node(c), changes[k].v);
    resp_add_ok(&c->out);
}

/* ---- RESETSTAT --------------------------------------------------------------- */

/* Resets what redis-server's CONFIG RESETSTAT resets and cohortd counts:
 * command statistics, keyspace hits and misses, evicted and expired keys,
 * commands processed, the memory peak and the ops samples. Counters that
 * /metrics exports start again from 0 (a counter reset to Prometheus). */
static void config_resetstat(client_t *c)
{
    node_t *n = cmd_node(c);
    size_t count;
    command_t *t = commands_table(&count);
    for (size_t i = 0; i < count; i++)
        t[i].calls = t[i].usec = t[i].rejected = 0;
    cache_reset_stats(n->cache);
    n->stats.commands_processed = 0;
    node_metrics_reset(n);
    resp_add_ok(&c->out);
}

CMD_HANDLER(cmd_config)
{
    const char *sub = argv[1];
    size_t slen = argl[1];
    if (cmd_is(sub, slen, "get")) {
        if (argc < 3)
            cmd_reply_sub_arity(c, "config", sub, slen);
        else
            config_get_cmd(c, argc, argv, argl);
    } else if (cmd_is(sub, slen, "set")) {
        config_set_cmd(c, argc, argv, argl);
    } else if (cmd_is(sub, slen, "resetstat")) {
        if (argc != 2)
            cmd_reply_sub_arity(c, "config", sub, slen);
        else
            config_resetstat(c);
    } else if (cmd_is(sub, slen, "rewrite")) {
        resp_add_error(&c->out, "ERR CONFIG REWRITE is not supported: cohortd is configured by "
                                "its INI file");
    } else {
        cmd_reply_unknown_subcommand(c, sub, slen, "CONFIG");
    }
}
