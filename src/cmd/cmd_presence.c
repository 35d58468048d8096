/* cmd_presence: PRESENCE.JOIN, PRESENCE.LEAVE, PRESENCE.LIST and
 * PRESENCE.COUNT. The table, its limits, expiry and events are
 * svc/presence.c's; copying entries to the members is cluster/presync.c's.
 * This file parses arguments and renders replies.
 * Never: keeps state of its own, or changes a member's entry (a node joins
 * and leaves only its own). */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "cmd.h"
#include "presence.h"

static presence_t *pr_of(const client_t *c)
{
    return cmd_node(c)->presence;
}

/* Replies an error and returns -1 when a channel name is out of bounds (the
 * reads take the same names the joins do). */
static int check_channel(client_t *c, size_t len)
{
    if (len == 0) {
        resp_add_error(&c->out, "ERR presence channel name is empty");
        return -1;
    }
    if (len > PRESENCE_MAX_CHANNEL) {
        resp_add_error(&c->out, "ERR presence channel name longer than 1024 bytes");
        return -1;
    }
    return 0;
}

/* PRESENCE.JOIN channel member [meta] [TTL seconds]: 1 when the entry is new,
 * 0 when it was there (its TTL and metadata are refreshed). Without TTL the
 * entry stays until PRESENCE.LEAVE or its node's death. */
CMD_HANDLER(cmd_presence_join)
{
    const char *meta = "";
    size_t metalen = 0;
    int ttl_at = 0; /* argument index of the TTL value, 0: none */
    if (argc == 4) {
        meta = argv[3];
        metalen = argl[3];
    } else if (argc == 5 && cmd_is(argv[3], argl[3], "ttl")) {
        ttl_at = 4;
    } else if (argc == 6 && cmd_is(argv[4], argl[4], "ttl")) {
        meta = argv[3];
        metalen = argl[3];
        ttl_at = 5;
    } else if (argc != 3) {
        resp_add_error(&c->out, ERR_SYNTAX);
        return;
    }
    long long ttl_s = 0;
    if (ttl_at) {
        if (cmd_ll_or_reply(c, argv[ttl_at], argl[ttl_at], &ttl_s) < 0)
            return;
        if (ttl_s < 1 || ttl_s > PRESENCE_MAX_TTL_S) {
            resp_add_errorf(&c->out, "ERR invalid TTL in 'presence.join' command (1 to %lld "
                            "seconds)", PRESENCE_MAX_TTL_S);
            return;
        }
    }
    char err[160];
    int r = presence_join(pr_of(c), argv[1], argl[1], argv[2], argl[2], meta, metalen,
                          ttl_s * 1000, clock_mono_ms(), err, sizeof(err));
    if (r < 0)
        resp_add_error(&c->out, err);
    else
        resp_add_int(&c->out, r);
}

/* PRESENCE.LEAVE channel member: 1 when this node's entry was removed, 0 when
 * this node held none (an entry joined on another node is left there). */
CMD_HANDLER(cmd_presence_leave)
{
    (void)argc;
    if (check_channel(c, argl[1]) < 0)
        return;
    resp_add_int(&c->out, presence_leave(pr_of(c), argv[1], argl[1], argv[2], argl[2]));
}

typedef struct list_walk {
    client_t *c;
    int origin;       /* of the last entry, whose node name is cached */
    const char *name; /* NULL: none yet */
    size_t nlen;
} list_walk_t;

static void list_one(void *ud, const char *ch, size_t chlen, const char *member, size_t mlen,
                     const char *meta, size_t metalen, int origin)
{
    list_walk_t *w = ud;
    (void)ch, (void)chlen;
    if (!w->name || origin != w->origin) {
        w->origin = origin;
        w->name = node_presence_node(cmd_node(w->c), origin);
        w->nlen = strlen(w->name);
    }
    resp_add_array(&w->c->out, 3);
    resp_add_bulk(&w->c->out, member, mlen);
    resp_add_bulk(&w->c->out, meta, metalen);
    resp_add_bulk(&w->c->out, w->name, w->nlen);
}

/* PRESENCE.LIST channel: every entry as [member, meta, node], in no
 * particular order (a member joined on two nodes is listed for each). */
CMD_HANDLER(cmd_presence_list)
{
    (void)argc;
    if (check_channel(c, argl[1]) < 0)
        return;
    resp_add_array(&c->out, presence_count(pr_of(c), argv[1], argl[1]));
    list_walk_t w = {c, 0, NULL, 0};
    presence_list(pr_of(c), argv[1], argl[1], list_one, &w);
}

/* PRESENCE.COUNT channel: the entries of the channel on every node. */
CMD_HANDLER(cmd_presence_count)
{
    (void)argc;
    if (check_channel(c, argl[1]) < 0)
        return;
    resp_add_int(&c->out, (long long)presence_count(pr_of(c), argv[1], argl[1]));
}
