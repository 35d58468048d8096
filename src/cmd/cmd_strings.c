/* cmd_strings: GET, SET and the other string commands that store or return
 * whole values (SETEX PSETEX SETNX GETDEL GETEX MGET MSET MSETNX GETSET), with
 * redis-server 7's argument rules, replies and error texts. A SET is a fill:
 * it changes this node's cache only, through cmd_write_value().
 * Never: calls cache_set() itself. */
#include <string.h>

#include "clock.h"
#include "cmd.h"

enum set_flags {
    SET_NX = 1 << 0,
    SET_XX = 1 << 1,
    SET_GET = 1 << 2,
    SET_KEEPTTL = 1 << 3,
    SET_PERSIST = 1 << 4,
    SET_EX = 1 << 5,
    SET_PX = 1 << 6,
    SET_EXAT = 1 << 7,
    SET_PXAT = 1 << 8
};
#define SET_ANY_EXPIRE (SET_EX | SET_PX | SET_EXAT | SET_PXAT)

enum { FOR_SET, FOR_GETEX };

typedef struct set_args {
    int flags;
    const char *expire; /* the time argument, or NULL */
    size_t expire_len;
} set_args_t;

/* One option of SET / GETEX: its name, the flags it sets, the flags it cannot
 * be combined with, whether a value follows, and which commands accept it. */
typedef struct set_option {
    const char *name;
    int flag;
    int excludes;
    int takes_value;
    int set_only; /* 1: SET only, -1: GETEX only, 0: both */
} set_option_t;

static const set_option_t set_options[] = {
    {"nx", SET_NX, SET_XX, 0, 1},
    {"xx", SET_XX, SET_NX, 0, 1},
    {"get", SET_GET, 0, 0, 1},
    {"keepttl", SET_KEEPTTL, SET_PERSIST | SET_ANY_EXPIRE, 0, 1},
    {"persist", SET_PERSIST, SET_ANY_EXPIRE | SET_KEEPTTL, 0, -1},
    {"ex", SET_EX, SET_KEEPTTL | SET_PERSIST | SET_PX | SET_EXAT | SET_PXAT, 1, 0},
    {"px", SET_PX, SET_KEEPTTL | SET_PERSIST | SET_EX | SET_EXAT | SET_PXAT, 1, 0},
    {"exat", SET_EXAT, SET_KEEPTTL | SET_PERSIST | SET_EX | SET_PX | SET_PXAT, 1, 0},
    {"pxat", SET_PXAT, SET_KEEPTTL | SET_PERSIST | SET_EX | SET_PX | SET_EXAT, 1, 0},
};

/* Parses options from argv[first]; replies a syntax error and returns -1 on a
 * bad one (as redis-server's parseExtendedStringArgumentsOrReply). */
static int parse_set_args(client_t *c, int argc, const char **argv, const size_t *argl,
                          int first, int kind, set_args_t *out)
{
    memset(out, 0, sizeof(*out));
    for (int j = first; j < argc; j++) {
        const set_option_t *opt = NULL;
        for (size_t i = 0; i < sizeof(set_options) / sizeof(set_options[0]); i++) {
            if (cmd_is(argv[j], argl[j], set_options[i].name)) {
                opt = &set_options[i];
                break;
            }
        }
        int allowed = opt && !(out->flags & opt->excludes) &&
                      (opt->set_only == 0 || (opt->set_only == 1) == (kind == FOR_SET)) &&
                      (!opt->takes_value || j + 1 < argc);
        if (!allowed) {
            resp_add_error(&c->out, ERR_SYNTAX);
            return -1;
        }
        out->flags |= opt->flag;
        if (opt->takes_value) {
            out->expire = argv[j + 1];
            out->expire_len = argl[j + 1];
            j++;
        }
    }
    return 0;
}

/* The absolute expire time from the parsed options, or an error reply
 * (getExpireMillisecondsOrReply). Returns 0 or -1. */
static int expire_from_args(client_t *c, const set_args_t *a, const char *cmdname,
                            long long *at)
{
    long long v;
    if (cmd_ll_or_reply(c, a->expire, a->expire_len, &v) < 0)
        return -1;
    int seconds = a->flags & (SET_EX | SET_EXAT);
    int absolute = a->flags & (SET_EXAT | SET_PXAT);
    if (v <= 0 || cmd_expire_at(v, seconds ? 1000 : 1, absolute, clock_now_ms(), at) < 0 ||
        *at <= 0) {
        cmd_reply_invalid_expire(c, cmdname);
        return -1;
    }
    return 0;
}

CMD_HANDLER(cmd_get)
{
    cache_entry_t *e = cmd_read(c, argv[1], argl[1]);
    if (cmd_check_type(c, e, CACHE_TYPE_STRING) < 0)
        return;
    cmd_reply_value(c, e);
}

/* Shared by SET, SETEX, PSETEX, SETNX: ok_int / abort_int select SETNX's
 * integer replies. */
static void set_generic(client_t *c, const char *key, size_t klen, const char *val, size_t vlen,
                        const set_args_t *a, const char *cmdname, int integer_replies)
{
    node_t *n = cmd_node(c);
    int64_t now = clock_now_ms();
    long long at = 0;
    if (a->expire && expire_from_args(c, a, cmdname, &at) < 0)
        return;
    cache_entry_t *old = cache_lookup(n->cache, key, klen, now, 0);
    if (a->flags & SET_GET) {
        cache_entry_t *shown = old && node_serves_cache(n) ? cmd_read(c, key, klen) : NULL;
        if (cmd_check_type(c, shown, CACHE_TYPE_STRING) < 0)
            return;
        cmd_reply_value(c, shown);
    }
    if ((a->flags & SET_NX && old) || (a->flags & SET_XX && !old)) {
        if (a->flags & SET_GET)
            return;
        if (integer_replies)
            resp_add_int(&c->out, 0);
        else
            resp_add_null(&c->out, c->proto);
        return;
    }
    int64_t keep = (a->flags & SET_KEEPTTL) && old ? cache_entry_expire(old) : 0;
    if (a->flags & (SET_NX | SET_XX | SET_GET | SET_KEEPTTL))
        cmd_write_value(c, key, klen, val, vlen, a->expire ? at : keep, CACHE_ENC_AUTO);
    else
        cmd_write_blind(c, key, klen, val, vlen, a->expire ? at : 0);
    if (a->flags & SET_GET)
        return;
    if (integer_replies)
        resp_add_int(&c->out, 1);
    else
        resp_add_ok(&c->out);
}

CMD_HANDLER(cmd_set)
{
    set_args_t a;
    if (parse_set_args(c, argc, argv, argl, 3, FOR_SET, &a) < 0)
        return;
    set_generic(c, argv[1], argl[1], argv[2], argl[2], &a, "set", 0);
}

CMD_HANDLER(cmd_setex)
{
    set_args_t a = {SET_EX, argv[2], argl[2]};
    set_generic(c, argv[1], argl[1], argv[3], argl[3], &a, "setex", 0);
}

CMD_HANDLER(cmd_psetex)
{
    set_args_t a = {SET_PX, argv[2], argl[2]};
    set_generic(c, argv[1], argl[1], argv[3], argl[3], &a, "psetex", 0);
}

CMD_HANDLER(cmd_setnx)
{
    set_args_t a = {SET_NX, NULL, 0};
    set_generic(c, argv[1], argl[1], argv[2], argl[2], &a, "setnx", 1);
}

CMD_HANDLER(cmd_getdel)
{
    node_t *n = cmd_node(c);
    cache_entry_t *e = cmd_read(c, argv[1], argl[1]);
    if (cmd_check_type(c, e, CACHE_TYPE_STRING) < 0)
        return;
    cmd_reply_value(c, e);
    cache_delete(n->cache, argv[1], argl[1], clock_now_ms());
    cmd_flushed_key(c, argv[1], argl[1]);
}

CMD_HANDLER(cmd_getex)
{
    node_t *n = cmd_node(c);
    set_args_t a;
    if (parse_set_args(c, argc, argv, argl, 2, FOR_GETEX, &a) < 0)
        return;
    int64_t now = clock_now_ms();
    cache_entry_t *e = cmd_read(c, argv[1], argl[1]);
    if (!e) {
        resp_add_null(&c->out, c->proto);
        return;
    }
    if (cmd_check_type(c, e, CACHE_TYPE_STRING) < 0)
        return;
    long long at = 0;
    if (a.expire && expire_from_args(c, &a, "getex", &at) < 0)
        return;
    cmd_reply_value(c, e);
    if ((a.flags & (SET_EXAT | SET_PXAT)) && at <= now) {
        cache_delete(n->cache, argv[1], argl[1], now);
        cmd_flushed_key(c, argv[1], argl[1]);
    } else if (a.expire) {
        cmd_set_ttl(c, e, at);
    } else if (a.flags & SET_PERSIST) {
        cmd_set_ttl(c, e, 0);
    }
}

CMD_HANDLER(cmd_mget)
{
    resp_add_array(&c->out, (size_t)(argc - 1));
    for (int i = 1; i < argc; i++) {
        cache_entry_t *e = cmd_read(c, argv[i], argl[i]);
        cmd_reply_value(c, e && cache_entry_type(e) == CACHE_TYPE_STRING ? e : NULL);
    }
}

CMD_HANDLER(cmd_mset)
{
    if (argc % 2 == 0) {
        cmd_reply_arity(c, "mset");
        return;
    }
    for (int i = 1; i < argc; i += 2)
        cmd_write_blind(c, argv[i], argl[i], argv[i + 1], argl[i + 1], 0);
    resp_add_ok(&c->out);
}

/* MSETNX: nothing is written if any of the keys exists here. */
CMD_HANDLER(cmd_msetnx)
{
    node_t *n = cmd_node(c);
    if (argc % 2 == 0) {
        cmd_reply_arity(c, "msetnx");
        return;
    }
    int64_t now = clock_now_ms();
    for (int i = 1; i < argc; i += 2) {
        if (cache_lookup(n->cache, argv[i], argl[i], now, 0)) {
            resp_add_int(&c->out, 0);
            return;
        }
    }
    for (int i = 1; i < argc; i += 2)
        cmd_write_value(c, argv[i], argl[i], argv[i + 1], argl[i + 1], 0, CACHE_ENC_AUTO);
    resp_add_int(&c->out, 1);
}

/* GETSET: the old value (read as GET reads it), then a fill without expire
 * time (as SET). */
CMD_HANDLER(cmd_getset)
{
    cache_entry_t *e = cmd_read(c, argv[1], argl[1]);
    if (cmd_check_type(c, e, CACHE_TYPE_STRING) < 0)
        return;
    cmd_reply_value(c, e);
    cmd_write_value(c, argv[1], argl[1], argv[2], argl[2], 0, CACHE_ENC_AUTO);
}
