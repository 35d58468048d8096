/* cmd_client: the CLIENT command (ID GETNAME SETNAME LIST INFO KILL REPLY
 * SETINFO NO-EVICT NO-TOUCH UNPAUSE HELP) with redis-server's replies and
 * errors (7.0; SETINFO and NO-TOUCH as 7.2 has them).
 * Per-connection modes live in client_t.cmd_flags (enum cmd_client_flags):
 * REPLY OFF / SKIP are applied by the dispatcher (commands.c), NO-TOUCH by
 * cmd_read(); NO-EVICT is recorded and shown (cohortd never evicts clients).
 * SETINFO values are checked and accepted but not kept.
 * Never: frees a client itself: KILL closes through client_close(), the
 * calling client after its reply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cmd.h"
#include "pubsub.h"
#include "mem.h"
#include "server.h"

static const char *client_flags_text(const client_t *c, char *buf)
{
    char *p = buf;
    if (c->flags & CLIENT_PUBSUB)
        *p++ = 'P';
    int tf = tracking_client_flags(c);
    if (tf & TRACKING_ON)
        *p++ = 't';
    if (tf & TRACKING_BROKEN_REDIR)
        *p++ = 'R';
    if (tf & TRACKING_BCAST)
        *p++ = 'B';
    if (watch_is_dirty(c))
        *p++ = 'd';
    if (c->cmd_flags & CMDC_NO_EVICT)
        *p++ = 'e';
    if (c->cmd_flags & CMDC_NO_TOUCH)
        *p++ = 'T';
    if (multi_active(c))
        *p++ = 'x';
    if (p == buf)
        *p++ = 'N';
    *p = '\0';
    return buf;
}

static void append_client_line(void *ud, client_t *other)
{
    buf_t *b = ((void **)ud)[0];
    client_t *self = ((void **)ud)[1];
    int64_t now = clock_now_ms();
    char flags[16];
    buf_printf(b,
               "id=%llu addr=%s laddr=%s fd=-1 name=%s age=%lld idle=%lld flags=%s db=%d sub=%zu "
               "psub=%zu ssub=%zu multi=%ld qbuf=%zu qbuf-free=%zu argv-mem=0 multi-mem=0 obl=0 "
               "oll=0 omem=%zu tot-mem=%zu events=r cmd=%s user=default redir=%lld resp=%d\n",
               (unsigned long long)other->id, other->addr, other->laddr,
               other->name ? other->name : "", (long long)(now - other->created_ms) / 1000,
               (long long)(now - other->last_ms) / 1000, client_flags_text(other, flags),
               other->db, pubsub_client_subscriptions(other, PUBSUB_CHANNEL),
               pubsub_client_subscriptions(other, PUBSUB_PATTERN),
               pubsub_client_subscriptions(other, PUBSUB_SHARD), multi_count(other),
               buf_len(&other->in), other->in.cap - buf_len(&other->in),
               buf_len(&other->out) + other->out_inflight, client_memory(other),
               other == self ? "client|list" : (other->last_cmd ? other->last_cmd : "NULL"),
               tracking_client_flags(other) & TRACKING_ON
                   ? (long long)tracking_client_redirect(other)
                   : -1LL,
               other->proto);
}

static const char *const client_help[] = {
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "    * ID <client-id>",
    "      Kill connections by client id.",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "    * ID <client-id> [<client-id> ...]",
    "      Return clients with the given ids.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <LIB-NAME|LIB-VER> <value>",
    "    Set client library name or version (checked, not kept).",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Will not touch LRU/LFU stats when this mode is on.",
    "HELP",
    "    Print this help.",
};

/* ---- KILL ----------------------------------------------------------------- */

typedef struct kill_filter {
    client_t *self;
    long long id;         /* 0: any */
    const char *addr;     /* NULL: any */
    size_t addr_len;
    const char *laddr;
    size_t laddr_len;
    int none;             /* TYPE / USER that no client has */
    int skipme;
    client_t **found;     /* matching clients */
    size_t nfound, cap;
} kill_filter_t;

static int str_eq(const char *a, size_t alen, const char *b)
{
    return strlen(b) == alen && memcmp(a, b, alen) == 0;
}

static void kill_match(void *ud, client_t *other)
{
    kill_filter_t *f = ud;
    if (f->none || (f->addr && !str_eq(f->addr, f->addr_len, other->addr)) ||
        (f->laddr && !str_eq(f->laddr, f->laddr_len, other->laddr)) ||
        (f->id && (long long)other->id != f->id) || (other == f->self && f->skipme))
        return;
    if (f->nfound == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 8;
        f->found = xrealloc(f->found, f->cap * sizeof(*f->found));
    }
    f->found[f->nfound++] = other;
}

/* The new form's options. Returns 0, or -1 after the error reply. */
static int kill_parse(client_t *c, int argc, const char **argv, const size_t *argl,
                      kill_filter_t *f)
{
    for (int i = 2; i < argc; i += 2) {
        const char *o = argv[i], *v = argv[i + 1 < argc ? i + 1 : i];
        size_t ol = argl[i], vl = argl[i + 1 < argc ? i + 1 : i];
        if (i + 1 >= argc) {
            resp_add_error(&c->out, ERR_SYNTAX);
            return -1;
        }
        if (cmd_is(o, ol, "id")) {
            if (cmd_parse_ll(v, vl, &f->id) < 0 || f->id < 1) {
                resp_add_error(&c->out, "ERR client-id should be greater than 0");
                return -1;
            }
        } else if (cmd_is(o, ol, "type")) {
            if (cmd_is(v, vl, "master") || cmd_is(v, vl, "replica") || cmd_is(v, vl, "slave") ||
                cmd_is(v, vl, "pubsub")) {
                f->none = 1;
            } else if (!cmd_is(v, vl, "normal")) {
                resp_add_errorf(&c->out, "ERR Unknown client type '%.*s'", (int)vl, v);
                return -1;
            }
        } else if (cmd_is(o, ol, "addr")) {
            f->addr = v;
            f->addr_len = vl;
        } else if (cmd_is(o, ol, "laddr")) {
            f->laddr = v;
            f->laddr_len = vl;
        } else if (cmd_is(o, ol, "user")) {
            if (!str_eq(v, vl, "default")) {
                resp_add_errorf(&c->out, "ERR No such user '%.*s'", (int)vl, v);
                return -1;
            }
        } else if (cmd_is(o, ol, "skipme") && (cmd_is(v, vl, "yes") || cmd_is(v, vl, "no"))) {
            f->skipme = cmd_is(v, vl, "yes");
        } else {
            resp_add_error(&c->out, ERR_SYNTAX);
            return -1;
        }
    }
    return 0;
}

static void client_kill(client_t *c, int argc, const char **argv, const size_t *argl)
{
    kill_filter_t f = {.self = c, .skipme = 1};
    if (argc == 3) {
        f.addr = argv[2];
        f.addr_len = argl[2];
        f.skipme = 0; /* the old form can kill the caller */
    } else if (kill_parse(c, argc, argv, argl, &f) < 0) {
        return;
    }
    server_foreach_client(cmd_node(c)->server, kill_match, &f);
    int close_self = 0;
    for (size_t i = 0; i < f.nfound; i++) {
        if (f.found[i] == c)
            close_self = 1;
        else
            client_close(f.found[i], "CLIENT KILL");
    }
    if (argc == 3) {
        if (f.nfound == 0)
            resp_add_error(&c->out, "ERR No such client");
        else
            resp_add_ok(&c->out);
    } else {
        resp_add_int(&c->out, (long long)f.nfound);
    }
    if (close_self)
        c->flags |= CLIENT_CLOSE_AFTER_REPLY;
    free(f.found);
}

/* ---- modes ---------------------------------------------------------------- */

static void client_reply(client_t *c, const char *v, size_t vl)
{
    if (cmd_is(v, vl, "on")) {
        c->cmd_flags &= ~(CMDC_REPLY_OFF | CMDC_REPLY_SKIP | CMDC_REPLY_SKIP_NEXT);
        resp_add_ok(&c->out);
    } else if (cmd_is(v, vl, "off")) {
        c->cmd_flags |= CMDC_REPLY_OFF;
    } else if (cmd_is(v, vl, "skip")) {
        if (!(c->cmd_flags & CMDC_REPLY_OFF))
            c->cmd_flags |= CMDC_REPLY_SKIP_NEXT;
    } else {
        resp_add_error(&c->out, ERR_SYNTAX);
    }
}

static void client_onoff(client_t *c, const char *v, size_t vl, int flag)
{
    if (cmd_is(v, vl, "on")) {
        c->cmd_flags |= flag;
        resp_add_ok(&c->out);
    } else if (cmd_is(v, vl, "off")) {
        c->cmd_flags &= ~flag;
        resp_add_ok(&c->out);
    } else {
        resp_add_error(&c->out, ERR_SYNTAX);
    }
}

/* CLIENT SETINFO LIB-NAME|LIB-VER value, as redis-server 7.2 checks it. */
static void client_setinfo(client_t *c, const char *attr, size_t al, const char *v, size_t vl)
{
    int name = cmd_is(attr, al, "lib-name");
    if (!name && !cmd_is(attr, al, "lib-ver")) {
        resp_add_errorf(&c->out, "ERR Unrecognized option '%.*s'", (int)al, attr);
        return;
    }
    for (size_t i = 0; i < vl; i++) {
        if (v[i] < '!' || v[i] > '~') {
            resp_add_errorf(&c->out, "ERR %s cannot contain spaces, newlines or special "
                                     "characters.", name ? "lib-name" : "lib-ver");
            return;
        }
    }
    resp_add_ok(&c->out);
}

/* CLIENT LIST's ID filter: the line of the client with this id, if any. */
typedef struct id_line {
    void **ud;
    long long id;
} id_line_t;

static void append_if_id(void *arg, client_t *other)
{
    id_line_t *f = arg;
    if ((long long)other->id == f->id)
        append_client_line(f->ud, other);
}

/* CLIENT LIST [TYPE type | ID id...] and CLIENT INFO (all 0). Returns 0, or
 * -1 after an error reply. */
static int collect_lines(client_t *c, int all, int argc, const char **argv, const size_t *argl,
                         void **ud)
{
    server_t *srv = cmd_node(c)->server;
    if (!all) {
        append_client_line(ud, c);
    } else if (argc == 4 && cmd_is(argv[2], argl[2], "type")) {
        const char *t = argv[3];
        size_t tl = argl[3];
        int normal = cmd_is(t, tl, "normal");
        if (!normal && !cmd_is(t, tl, "master") && !cmd_is(t, tl, "replica") &&
            !cmd_is(t, tl, "slave") && !cmd_is(t, tl, "pubsub")) {
            resp_add_errorf(&c->out, "ERR Unknown client type '%.*s'", (int)tl, t);
            return -1;
        }
        if (normal)
            server_foreach_client(srv, append_client_line, ud);
    } else if (argc > 3 && cmd_is(argv[2], argl[2], "id")) {
        for (int j = 3; j < argc; j++) {
            id_line_t f = {ud, 0};
            if (cmd_parse_ll(argv[j], argl[j], &f.id) < 0) {
                resp_add_error(&c->out, "ERR Invalid client ID");
                return -1;
            }
            server_foreach_client(srv, append_if_id, &f);
        }
    } else if (argc != 2) {
        resp_add_error(&c->out, ERR_SYNTAX);
        return -1;
    } else {
        server_foreach_client(srv, append_client_line, ud);
    }
    return 0;
}

static void client_list(client_t *c, int all, int argc, const char **argv, const size_t *argl)
{
    buf_t lines;
    buf_init(&lines);
    void *ud[2] = {&lines, c};
    if (collect_lines(c, all, argc, argv, argl, ud) == 0)
        resp_add_verbatim(&c->out, c->proto, buf_head(&lines), buf_len(&lines));
    buf_free(&lines);
}

/* Subcommands: name and argument count (>0 exact, <0 at least). */
static const struct {
    const char *name;
    int arity;
} subs[] = {{"id", 2},       {"getname", 2},  {"setname", 3},  {"list", -2},
            {"info", 2},     {"help", 2},     {"kill", -3},    {"reply", 3},
            {"setinfo", 4},  {"no-evict", 3}, {"no-touch", 3}, {"unpause", 2},
            {"tracking", -3}, {"caching", 3}, {"getredir", 2}, {"trackinginfo", 2}};

CMD_HANDLER(cmd_client)
{
    const char *sub = argv[1];
    size_t slen = argl[1];
    size_t i = 0, nsubs = sizeof(subs) / sizeof(subs[0]);
    while (i < nsubs && !cmd_is(sub, slen, subs[i].name))
        i++;
    if (i == nsubs) {
        cmd_reply_unknown_subcommand(c, sub, slen, "CLIENT");
        return;
    }
    if ((subs[i].arity > 0 && argc != subs[i].arity) || argc < -subs[i].arity) {
        cmd_reply_sub_arity(c, "client", sub, slen);
        return;
    }
    if (cmd_is(sub, slen, "id")) {
        resp_add_int(&c->out, (long long)c->id);
    } else if (cmd_is(sub, slen, "getname")) {
        if (c->name)
            resp_add_bulk_str(&c->out, c->name);
        else
            resp_add_null(&c->out, c->proto);
    } else if (cmd_is(sub, slen, "setname")) {
        if (cmd_set_client_name(c, argv[2], argl[2]) == 0)
            resp_add_ok(&c->out);
    } else if (cmd_is(sub, slen, "list") || cmd_is(sub, slen, "info")) {
        client_list(c, cmd_is(sub, slen, "list"), argc, argv, argl);
    } else if (cmd_is(sub, slen, "help")) {
        cmd_reply_help(c, client_help, sizeof(client_help) / sizeof(client_help[0]));
    } else if (cmd_is(sub, slen, "kill")) {
        client_kill(c, argc, argv, argl);
    } else if (cmd_is(sub, slen, "reply")) {
        client_reply(c, argv[2], argl[2]);
    } else if (cmd_is(sub, slen, "setinfo")) {
        client_setinfo(c, argv[2], argl[2], argv[3], argl[3]);
    } else if (cmd_is(sub, slen, "no-evict")) {
        client_onoff(c, argv[2], argl[2], CMDC_NO_EVICT);
    } else if (cmd_is(sub, slen, "no-touch")) {
        client_onoff(c, argv[2], argl[2], CMDC_NO_TOUCH);
    } else if (cmd_is(sub, slen, "tracking")) {
        cmd_client_tracking(c, argc, argv, argl);
    } else if (cmd_is(sub, slen, "caching")) {
        cmd_client_caching(c, argv[2], argl[2]);
    } else if (cmd_is(sub, slen, "getredir")) {
        cmd_client_getredir(c);
    } else if (cmd_is(sub, slen, "trackinginfo")) {
        cmd_client_trackinginfo(c);
    } else {
        resp_add_ok(&c->out); /* UNPAUSE: cohortd never pauses clients */
    }
}
