/* cmd_cohort: cohort's own cache commands: FLUSHPREFIX, SEED, GETL, SETL and
 * COHORT.STATUS, COHORT.KEYSPACE. Their replies follow redis-server's conventions (integers,
 * +OK, nil) so any client library can use them through its generic
 * "execute command" call. */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "cmd.h"
#include "keyspace.h"

/* FLUSHPREFIX prefix [ASYNC]: the keys under prefix are gone here at once,
 * and from the members before the reply. This node removes them by a sweep
 * of its whole table (cache_flush_prefix_start), at once when that takes
 * under 1 ms, else in bounded steps between which it serves its clients.
 * The reply, the number of keys removed here, waits for the sweep's end
 * (inside MULTI or a script it is swept at once); with ASYNC the reply is
 * +OK and does not wait for it. */
CMD_HANDLER(cmd_flushprefix)
{
    node_t *n = cmd_node(c);
    int async = argc == 3 && cmd_is(argv[2], argl[2], "async");
    if (argc > 3 || (argc == 3 && !async)) {
        resp_add_error(&c->out, ERR_SYNTAX);
        return;
    }
    size_t removed;
    uint64_t sweep = cache_flush_prefix_start(n->cache, argv[1], argl[1], clock_now_ms(),
                                              UINT64_MAX, &removed);
    cmd_flushed_prefix(c, argv[1], argl[1]);
    if (async) {
        resp_add_ok(&c->out);
        return;
    }
    if (sweep && !(c->cmd_flags & CMDC_ATOMIC)) {
        cmd_wait_sweep(c, sweep, 0);
        return;
    }
    while (sweep && !cache_flush_result(n->cache, sweep, &removed))
        cache_sweep(n->cache, clock_now_ms(), 1000000);
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
    if (v <= 0 || cmd_expire_at(v, ex ? 1000 : 1, 0, clock_now_ms(), at) < 0) {
        cmd_reply_invalid_expire(c, cmdname);
        return -1;
    }
    return 0;
}

CMD_HANDLER(cmd_seed)
{
    long long at;
    if (parse_expire_option(c, argc, argv, argl, 3, "seed", &at) < 0)
        return;
    /* A seed replaces the value everywhere: fills racing it must lose. */
    cmd_seed_value(c, argv[1], argl[1], argv[2], argl[2], at);
    cmd_after_write(c);
    resp_add_ok(&c->out);
}

CMD_HANDLER(cmd_getl)
{
    node_t *n = cmd_node(c);
    cache_entry_t *e = cmd_read(c, argv[1], argl[1]);
    if (cmd_check_type(c, e, CACHE_TYPE_STRING) < 0)
        return;
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
    node_t *n = cmd_node(c);
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
    cmd_write_value(c, argv[1], argl[1], argv[3], argl[3], at, CACHE_ENC_AUTO);
    resp_add_ok(&c->out);
}

/* COHORT.MEMBERS: one map per other member (name, address, state, since,
 * rtt_ms, flushes_sent, flushes_received, last_acked). Empty when alone. */
CMD_HANDLER(cmd_cohort_members)
{
    cluster_t *cl = cmd_node(c)->cluster;
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

/* COHORT.STATUS: a map of the node's metrics registry rows that have a
 * COHORT.STATUS key, in registry order. */
CMD_HANDLER(cmd_cohort_status)
{
    metrics_t *r = cmd_node(c)->metrics;
    buf_t *o = &c->out;
    size_t count = 0;
    for (size_t i = 0; i < metrics_count(r); i++)
        count += metrics_at(r, i)->status != NULL;
    resp_add_map(o, c->proto, count);
    char text[256];
    for (size_t i = 0; i < metrics_count(r); i++) {
        const metric_t *m = metrics_at(r, i);
        if (!m->status)
            continue;
        resp_add_bulk_str(o, m->status);
        if (m->type == METRIC_TEXT) {
            const char *v = metric_text(m, text, sizeof(text));
            resp_add_bulk_str(o, v ? v : "");
        } else {
            resp_add_int(o, (long long)metric_value(m));
        }
    }
}

CMD_HANDLER(cmd_cohort_keyspace)
{
    (void)argc;
    keyspace_match_t m; /* argv[1] is the stored key: the database byte first */
    keyspaces_match(cmd_node(c)->keyspaces, argv[1] + 1, argl[1] - 1, &m);
    resp_add_array(&c->out, 3);
    if (m.name[0])
        resp_add_bulk(&c->out, m.name, strlen(m.name));
    else
        resp_add_null(&c->out, c->proto);
    const char *mode = keyspace_mode_name(m.mode);
    resp_add_bulk(&c->out, mode, strlen(mode));
    if (m.prefix[0])
        resp_add_bulk(&c->out, m.prefix, strlen(m.prefix));
    else
        resp_add_null(&c->out, c->proto);
}
