/* cmd_cohort: cohort's own cache commands: FLUSHPREFIX, SEED, GETL, SETL and
 * COHORT.STATUS. Their replies follow redis-server's conventions (integers,
 * +OK, nil) so any client library can use them through its generic
 * "execute command" call. */
#include <stdio.h>
#include <string.h>

#include "cluster.h"
#include "cmd.h"
#include "flushmark.h"
#include "server.h"

CMD_HANDLER(cmd_flushprefix)
{
    node_t *n = c->node;
    size_t removed = cache_flush_prefix(n->cache, argv[1], argl[1], node_now(n));
    cmd_flushed_prefix(c, argv[1], argl[1]);
    resp_add_int(&c->out, (long long)removed);
}

/* Parses the optional "EX seconds | PX milliseconds" of SEED and SETL from
 * argv[first]. Sets *at to the absolute expire time (0: none). Replies and
 * returns -1 on a bad option. */
static int parse_expire_option(client_t *c, int argc, const char **argv, const size_t *argl,
                               int first, const char *cmdname, long long *at)
{
    *at = 0;
    if (argc == first)
        return 0;
    int ex = cmd_is(argv[first], argl[first], "ex");
    int px = cmd_is(argv[first], argl[first], "px");
    if ((!ex && !px) || argc != first + 2) {
        resp_add_error(&c->out, ERR_SYNTAX);
        return -1;
    }
    long long v;
    if (cmd_ll_or_reply(c, argv[first + 1], argl[first + 1], &v) < 0)
        return -1;
    if (v <= 0 || cmd_expire_at(v, ex ? 1000 : 1, 0, node_now(c->node), at) < 0) {
        cmd_reply_invalid_expire(c, cmdname);
        return -1;
    }
    return 0;
}

CMD_HANDLER(cmd_seed)
{
    node_t *n = c->node;
    long long at;
    if (parse_expire_option(c, argc, argv, argl, 3, "seed", &at) < 0)
        return;
    /* A seed replaces the value everywhere: fills racing it must lose. */
    cache_set(n->cache, argv[1], argl[1], argv[2], argl[2], at);
    cmd_seeded(c, argv[1], argl[1], argv[2], argl[2], at);
    cmd_after_write(c);
    resp_add_ok(&c->out);
}

CMD_HANDLER(cmd_getl)
{
    node_t *n = c->node;
    cache_entry_t *e = cmd_read(c, argv[1], argl[1]);
    resp_add_array(&c->out, 2);
    if (e) {
        size_t vlen;
        const char *v = cache_entry_value(e, &vlen);
        resp_add_bulk(&c->out, v, vlen);
    } else {
        resp_add_null(&c->out, c->proto);
    }
    resp_add_bulk_ll(&c->out, (long long)flushmark_token(n->flushmark));
}

CMD_HANDLER(cmd_setl)
{
    node_t *n = c->node;
    long long token, at;
    if (cmd_parse_ll(argv[2], argl[2], &token) < 0 || token < 0) {
        resp_add_error(&c->out, "ERR invalid token");
        return;
    }
    if (parse_expire_option(c, argc, argv, argl, 4, "setl", &at) < 0)
        return;
    if (flushmark_flushed_since(n->flushmark, argv[1], argl[1], (uint64_t)token)) {
        n->stats.setl_refused++;
        resp_add_null(&c->out, c->proto);
        return;
    }
    cache_set(n->cache, argv[1], argl[1], argv[3], argl[3], at);
    cmd_after_write(c);
    resp_add_ok(&c->out);
}

/* COHORT.MEMBERS: one map per other member (name, address, state, since,
 * rtt_ms, flushes_sent, flushes_received, last_acked). Empty when alone. */
CMD_HANDLER(cmd_cohort_members)
{
    cluster_t *cl = c->node->cluster;
    size_t count = cluster_member_count(cl);
    buf_t *o = &c->out;
    resp_add_array(o, count);
    for (size_t i = 0; i < count; i++) {
        member_info_t mi;
        cluster_member_info(cl, i, &mi);
        resp_add_map(o, c->proto, 8);
        resp_add_bulk_str(o, "name");
        resp_add_bulk_str(o, mi.name);
        resp_add_bulk_str(o, "address");
        resp_add_bulk_str(o, mi.addr);
        resp_add_bulk_str(o, "state");
        resp_add_bulk_str(o, mi.state);
        resp_add_bulk_str(o, "since_ms");
        resp_add_int(o, mi.since_ms);
        resp_add_bulk_str(o, "rtt_ms");
        resp_add_double(o, c->proto, mi.rtt_ms);
        resp_add_bulk_str(o, "flushes_sent");
        resp_add_int(o, (long long)mi.flushes_sent);
        resp_add_bulk_str(o, "flushes_received");
        resp_add_int(o, (long long)mi.flushes_received);
        resp_add_bulk_str(o, "last_acked");
        resp_add_int(o, (long long)mi.last_acked);
    }
}

CMD_HANDLER(cmd_cohort_status)
{
    node_t *n = c->node;
    config_t *cfg = n->cfg;
    buf_t *o = &c->out;
    resp_add_map(o, c->proto, 12);
    resp_add_bulk_str(o, "node");
    resp_add_bulk_str(o, cfg->name);
    resp_add_bulk_str(o, "version");
    resp_add_bulk_str(o, COHORT_VERSION);
    resp_add_bulk_str(o, "run_id");
    resp_add_bulk_str(o, n->run_id);
    resp_add_bulk_str(o, "role");
    resp_add_bulk_str(o, cfg->role);
    resp_add_bulk_str(o, "state");
    resp_add_bulk_str(o, cluster_cut_off(n->cluster)    ? "cut_off"
                         : cluster_serving(n->cluster) ? "serving"
                                                       : "bypassing");
    resp_add_bulk_str(o, "members");
    resp_add_int(o, (long long)cluster_member_count(n->cluster));
    resp_add_bulk_str(o, "incarnation");
    resp_add_int(o, (long long)cluster_incarnation(n->cluster));
    resp_add_bulk_str(o, "uptime_ms");
    resp_add_int(o, node_now(n) - n->start_ms);
    resp_add_bulk_str(o, "keys");
    resp_add_int(o, (long long)cache_count(n->cache));
    resp_add_bulk_str(o, "used_memory");
    resp_add_int(o, (long long)cache_used_memory(n->cache));
    resp_add_bulk_str(o, "maxmemory");
    resp_add_int(o, (long long)cache_maxmemory(n->cache));
    resp_add_bulk_str(o, "clients");
    resp_add_int(o, (long long)server_client_count(n->server));
}
