/* cmd_pubsub: PUBLISH, SPUBLISH, (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBSUB and
 * RESET, with redis-server 7.0's replies. The tables, deliveries and limits
 * are svc/pubsub.c's; this file only parses arguments and renders the PUBSUB
 * introspection replies. Pub/sub is cluster-wide (node_publish,
 * cluster/interest.c): PUBLISH returns the receivers on this node plus those
 * the members in contact announced, and NUMSUB, SHARDNUMSUB, CHANNELS,
 * SHARDCHANNELS and NUMPAT count the members in contact too (a member out of
 * contact counts nothing).
 * Never: keeps state of its own. */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "pubsub.h"

static pubsub_t *ps_of(const client_t *c)
{
    return cmd_node(c)->pubsub;
}

CMD_HANDLER(cmd_publish)
{
    size_t n = node_publish(cmd_node(c), argv[1], argl[1], argv[2], argl[2], 0);
    resp_add_int(&c->out, (long long)n);
}

CMD_HANDLER(cmd_spublish)
{
    size_t n = node_publish(cmd_node(c), argv[1], argl[1], argv[2], argl[2], 1);
    resp_add_int(&c->out, (long long)n);
}

CMD_HANDLER(cmd_subscribe)
{
    pubsub_subscribe(ps_of(c), c, PUBSUB_CHANNEL, argc - 1, argv + 1, argl + 1);
}

CMD_HANDLER(cmd_psubscribe)
{
    pubsub_subscribe(ps_of(c), c, PUBSUB_PATTERN, argc - 1, argv + 1, argl + 1);
}

CMD_HANDLER(cmd_ssubscribe)
{
    pubsub_subscribe(ps_of(c), c, PUBSUB_SHARD, argc - 1, argv + 1, argl + 1);
}

CMD_HANDLER(cmd_unsubscribe)
{
    pubsub_unsubscribe(ps_of(c), c, PUBSUB_CHANNEL, argc - 1, argv + 1, argl + 1);
}

CMD_HANDLER(cmd_punsubscribe)
{
    pubsub_unsubscribe(ps_of(c), c, PUBSUB_PATTERN, argc - 1, argv + 1, argl + 1);
}

CMD_HANDLER(cmd_sunsubscribe)
{
    pubsub_unsubscribe(ps_of(c), c, PUBSUB_SHARD, argc - 1, argv + 1, argl + 1);
}

/* RESET, as redis-server 7.0's clearClientConnectionState for what cohort
 * has: the transaction discarded and keys unwatched, every subscription
 * dropped (no confirmations), tracking off, RESP2, the name cleared, the AUTH
 * state back to a new connection's (authenticated only when no password is
 * set), database 0. */
CMD_HANDLER(cmd_reset)
{
    multi_reset(c);
    c->db = 0;
    pubsub_reset_client(ps_of(c), c);
    tracking_off(cmd_node(c)->tracking, c); /* as redis-server: tracking off, */
    cmd_unwatch_all(c);                     /* nothing watched */
    c->proto = 2;
    const char *pass = cmd_node(c)->cfg->requirepass;
    c->authenticated = !(pass && pass[0]);
    free(c->name);
    c->name = NULL;
    resp_add_simple(&c->out, "RESET");
}

/* ---- PUBSUB ------------------------------------------------------------- */

static const char *pubsub_help[] = {
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
};

static void count_topic(void *ud, const char *name, size_t len, size_t subs)
{
    (*(size_t *)ud)++;
}

static void add_topic(void *ud, const char *name, size_t len, size_t subs)
{
    resp_add_bulk(ud, name, len);
}

typedef struct remote_walk {
    const pubsub_t *ps;
    int kind;
    buf_t *out; /* NULL: count only */
    size_t n;
} remote_walk_t;

/* A member's topic that this node does not list itself. */
static void remote_topic(void *ud, const char *name, size_t len, size_t subs)
{
    remote_walk_t *w = ud;
    if (pubsub_numsub(w->ps, w->kind, name, len))
        return;
    w->n++;
    if (w->out)
        resp_add_bulk(w->out, name, len);
}

/* PUBSUB CHANNELS / SHARDCHANNELS [pattern]: this node's names, in the order
 * they got their first subscriber, then the other names of the members in
 * contact, each once. */
static void reply_channels(client_t *c, int kind, int argc, const char **argv, const size_t *argl)
{
    const char *pat = argc == 3 ? argv[2] : NULL;
    size_t plen = argc == 3 ? argl[2] : 0;
    const cluster_t *cl = cmd_node(c)->cluster;
    size_t n = 0;
    pubsub_foreach(ps_of(c), kind, pat, plen, count_topic, &n);
    remote_walk_t w = {ps_of(c), kind, NULL, 0};
    cluster_foreach_topic(cl, kind, pat, plen, remote_topic, &w);
    resp_add_array(&c->out, n + w.n);
    pubsub_foreach(ps_of(c), kind, pat, plen, add_topic, &c->out);
    w.out = &c->out;
    cluster_foreach_topic(cl, kind, pat, plen, remote_topic, &w);
}

static void reply_numsub(client_t *c, int kind, int argc, const char **argv, const size_t *argl)
{
    resp_add_array(&c->out, (size_t)(argc - 2) * 2);
    for (int i = 2; i < argc; i++) {
        resp_add_bulk(&c->out, argv[i], argl[i]);
        size_t n = pubsub_numsub(ps_of(c), kind, argv[i], argl[i]) +
                   cluster_numsub(cmd_node(c)->cluster, kind, argv[i], argl[i]);
        resp_add_int(&c->out, (long long)n);
    }
}

static void reply_subcommand_syntax(client_t *c, const char *sub, size_t len)
{
    int n = len > 128 ? 128 : (int)len;
    resp_add_errorf(&c->out,
                    "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try PUBSUB "
                    "HELP.",
                    n, sub);
}

CMD_HANDLER(cmd_pubsub)
{
    const char *sub = argv[1];
    size_t slen = argl[1];
    if (cmd_is(sub, slen, "help")) {
        if (argc != 2) {
            cmd_reply_arity(c, "pubsub|help");
            return;
        }
        resp_add_array(&c->out, sizeof(pubsub_help) / sizeof(pubsub_help[0]));
        for (size_t i = 0; i < sizeof(pubsub_help) / sizeof(pubsub_help[0]); i++)
            resp_add_simple(&c->out, pubsub_help[i]);
    } else if (cmd_is(sub, slen, "channels") || cmd_is(sub, slen, "shardchannels")) {
        if (argc > 3) {
            reply_subcommand_syntax(c, sub, slen);
            return;
        }
        reply_channels(c, cmd_is(sub, slen, "channels") ? PUBSUB_CHANNEL : PUBSUB_SHARD, argc, argv,
                       argl);
    } else if (cmd_is(sub, slen, "numsub")) {
        reply_numsub(c, PUBSUB_CHANNEL, argc, argv, argl);
    } else if (cmd_is(sub, slen, "shardnumsub")) {
        reply_numsub(c, PUBSUB_SHARD, argc, argv, argl);
    } else if (cmd_is(sub, slen, "numpat")) {
        if (argc != 2) {
            cmd_reply_arity(c, "pubsub|numpat");
            return;
        }
        /* patterns of this node plus each member's (one subscribed on two
         * nodes counts twice) */
        resp_add_int(&c->out, (long long)(pubsub_topics(ps_of(c), PUBSUB_PATTERN) +
                                          cluster_topics(cmd_node(c)->cluster, PUBSUB_PATTERN)));
    } else {
        int n = slen > 128 ? 128 : (int)slen;
        resp_add_errorf(&c->out, "ERR unknown subcommand '%.*s'. Try PUBSUB HELP.", n, sub);
    }
}
