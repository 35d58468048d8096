/* cmd_tracking: CLIENT TRACKING, CLIENT CACHING, CLIENT GETREDIR, CLIENT
 * TRACKINGINFO (called from cmd_client.c), WATCH and UNWATCH, and the check
 * EXEC makes (cmd_watch_exec_check), with redis-server 7's arguments,
 * replies and error texts (networking.c clientCommand, multi.c).
 * The state is svc/tracking.c's and svc/watch.c's; both are fed by the
 * cache's change signal (node.c on_cache_change), so every command, a
 * member's flush, expiry and eviction reach them without this file.
 * Never: changes the cache. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cmd.h"
#include "mem.h"

typedef struct find_id {
    uint64_t id;
    client_t *found;
} find_id_t;

static void match_id(void *ud, client_t *other)
{
    find_id_t *f = ud;
    if (other->id == f->id && !(other->flags & CLIENT_CLOSING))
        f->found = other;
}

/* The open client with that id, or NULL. */
static client_t *client_by_id(client_t *c, uint64_t id)
{
    find_id_t f = {id, NULL};
    server_foreach_client(cmd_node(c)->server, match_id, &f);
    return f.found;
}

typedef struct track_args {
    int opts;
    long long redir;
    client_t *target;
    const char **prefixes;
    size_t *plens;
    size_t n;
} track_args_t;

/* Parses the options after ON|OFF. Returns 0, or -1 after the error reply. */
static int parse_tracking(client_t *c, int argc, const char **argv, const size_t *argl,
                          track_args_t *a)
{
    for (int j = 3; j < argc; j++) {
        int more = argc - 1 - j;
        if (cmd_is(argv[j], argl[j], "redirect") && more) {
            j++;
            if (a->redir != 0) {
                resp_add_error(&c->out, "ERR A client can only redirect to a single other client");
                return -1;
            }
            if (cmd_ll_or_reply(c, argv[j], argl[j], &a->redir) < 0)
                return -1;
            a->target = a->redir > 0 ? client_by_id(c, (uint64_t)a->redir) : NULL;
            if (!a->target) {
                resp_add_error(&c->out, "ERR The client ID you want redirect to does not exist");
                return -1;
            }
        } else if (cmd_is(argv[j], argl[j], "bcast")) {
            a->opts |= TRACKING_BCAST;
        } else if (cmd_is(argv[j], argl[j], "optin")) {
            a->opts |= TRACKING_OPTIN;
        } else if (cmd_is(argv[j], argl[j], "optout")) {
            a->opts |= TRACKING_OPTOUT;
        } else if (cmd_is(argv[j], argl[j], "noloop")) {
            a->opts |= TRACKING_NOLOOP;
        } else if (cmd_is(argv[j], argl[j], "prefix") && more) {
            j++;
            a->prefixes[a->n] = argv[j];
            a->plens[a->n++] = argl[j];
        } else {
            resp_add_error(&c->out, ERR_SYNTAX);
            return -1;
        }
    }
    return 0;
}

/* redis-server refuses CLIENT in scripts; here only the subcommands that
 * would give the script's own client a tracking state. Returns 1 after the
 * error reply. */
static int refused_in_script(client_t *c)
{
    if (c != cmd_node(c)->script_client)
        return 0;
    resp_add_error(&c->out, "ERR This Redis command is not allowed from script");
    return 1;
}

void cmd_client_tracking(client_t *c, int argc, const char **argv, const size_t *argl)
{
    node_t *n = cmd_node(c);
    if (refused_in_script(c))
        return;
    track_args_t a = {0, 0, NULL, xmalloc((size_t)argc * sizeof(char *)),
                      xmalloc((size_t)argc * sizeof(size_t)), 0};
    if (parse_tracking(c, argc, argv, argl, &a) == 0) {
        if (cmd_is(argv[2], argl[2], "on")) {
            char err[512];
            if (tracking_on(n->tracking, c, a.opts, a.target, (uint64_t)a.redir, a.prefixes,
                            a.plens, a.n, err, sizeof(err)) < 0)
                resp_add_errorf(&c->out, "ERR %s", err);
            else
                resp_add_ok(&c->out);
        } else if (cmd_is(argv[2], argl[2], "off")) {
            tracking_off(n->tracking, c);
            resp_add_ok(&c->out);
        } else {
            resp_add_error(&c->out, ERR_SYNTAX);
        }
    }
    free(a.prefixes);
    free(a.plens);
}

void cmd_client_caching(client_t *c, const char *v, size_t vl)
{
    node_t *n = cmd_node(c);
    if (refused_in_script(c))
        return;
    int flags = tracking_client_flags(c);
    int yes = cmd_is(v, vl, "yes");
    char err[256];
    if (!(flags & TRACKING_ON) || yes || cmd_is(v, vl, "no")) {
        if (tracking_caching(n->tracking, c, yes, err, sizeof(err)) < 0)
            resp_add_errorf(&c->out, "ERR %s", err);
        else
            resp_add_ok(&c->out);
        return;
    }
    resp_add_error(&c->out, ERR_SYNTAX);
}

void cmd_client_getredir(client_t *c)
{
    if (tracking_client_flags(c) & TRACKING_ON)
        resp_add_int(&c->out, (long long)tracking_client_redirect(c));
    else
        resp_add_int(&c->out, -1);
}

void cmd_client_trackinginfo(client_t *c)
{
    int f = tracking_client_flags(c);
    const char *names[8];
    size_t nf = 0;
    names[nf++] = f & TRACKING_ON ? "on" : "off";
    if (f & TRACKING_BCAST)
        names[nf++] = "bcast";
    if (f & TRACKING_OPTIN) {
        names[nf++] = "optin";
        if (f & TRACKING_CACHING)
            names[nf++] = "caching-yes";
    }
    if (f & TRACKING_OPTOUT) {
        names[nf++] = "optout";
        if (f & TRACKING_CACHING)
            names[nf++] = "caching-no";
    }
    if (f & TRACKING_NOLOOP)
        names[nf++] = "noloop";
    if (f & TRACKING_BROKEN_REDIR)
        names[nf++] = "broken_redirect";
    resp_add_map(&c->out, c->proto, 3);
    resp_add_bulk_str(&c->out, "flags");
    resp_add_set(&c->out, c->proto, nf);
    for (size_t i = 0; i < nf; i++)
        resp_add_bulk_str(&c->out, names[i]);
    resp_add_bulk_str(&c->out, "redirect");
    resp_add_int(&c->out, f & TRACKING_ON ? (long long)tracking_client_redirect(c) : -1);
    resp_add_bulk_str(&c->out, "prefixes");
    const char *const *p;
    const size_t *pl;
    size_t np = tracking_client_prefixes(c, &p, &pl);
    resp_add_array(&c->out, np);
    for (size_t i = 0; i < np; i++)
        resp_add_bulk(&c->out, p[i], pl[i]);
}

/* ---- WATCH / UNWATCH ------------------------------------------------------ */

/* Looks each key up without touching it, so that a key whose time has
 * passed is removed now (the cache's change signal then marks it). */
static void reap_expired(client_t *c, size_t n, const char *const *keys, const size_t *klens)
{
    node_t *nd = cmd_node(c);
    for (size_t i = 0; i < n; i++)
        cache_lookup(nd->cache, keys[i], klens[i], clock_now_ms(), CACHE_NOTOUCH);
}

CMD_HANDLER(cmd_watch)
{
    /* a key already expired is removed before it is watched: not a change */
    reap_expired(c, (size_t)argc - 1, argv + 1, argl + 1);
    watch_keys(cmd_node(c)->watch, c, (size_t)argc - 1, argv + 1, argl + 1);
    resp_add_ok(&c->out);
}

CMD_HANDLER(cmd_unwatch)
{
    (void)argc;
    (void)argv;
    (void)argl;
    cmd_unwatch_all(c);
    resp_add_ok(&c->out);
}

void cmd_unwatch_all(client_t *c)
{
    watch_unwatch(cmd_node(c)->watch, c);
}

int cmd_watch_exec_check(client_t *c)
{
    /* a watched key whose time passed since WATCH but that nothing removed
     * yet is a change too (redis-server's isWatchedKeyExpired) */
    const char *const *keys;
    const size_t *klens;
    size_t n = watch_keys_of(c, &keys, &klens);
    reap_expired(c, n, keys, klens);
    int dirty = watch_is_dirty(c);
    cmd_unwatch_all(c);
    return dirty;
}
