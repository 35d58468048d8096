/* cmd_keys: key-space commands (DEL, EXISTS, EXPIRE[AT], TTL, EXPIRETIME,
 * TOUCH, RENAME, COPY, RANDOMKEY, SCAN, KEYS, FLUSHALL, ...) with
 * redis-server 7's replies and error texts.
 * DEL, UNLINK, FLUSHALL, FLUSHDB, an EXPIRE / EXPIREAT to a time already past
 * and the source of a RENAME are flushes: they go through the cmd_flushed_*
 * hooks. RENAME's destination and COPY are fills (cmd_write_value). */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "cmd.h"
#include "glob.h"
#include "mem.h"

CMD_HANDLER(cmd_del)
{
    node_t *n = cmd_node(c);
    int64_t now = clock_now_ms();
    long long removed = 0;
    for (int i = 1; i < argc; i++) {
        removed += cache_delete(n->cache, argv[i], argl[i], now);
        cmd_flushed_key(c, argv[i], argl[i]);
    }
    resp_add_int(&c->out, removed);
}

CMD_HANDLER(cmd_exists)
{
    long long found = 0;
    for (int i = 1; i < argc; i++)
        found += cmd_lookup(c, argv[i], argl[i], CACHE_NOTOUCH) != NULL;
    resp_add_int(&c->out, found);
}

enum { EXPIRE_NX = 1, EXPIRE_XX = 2, EXPIRE_GT = 4, EXPIRE_LT = 8 };

static int parse_expire_flags(client_t *c, int argc, const char **argv, const size_t *argl,
                              int *flags)
{
    static const struct {
        const char *name;
        int flag;
    } names[] = {{"nx", EXPIRE_NX}, {"xx", EXPIRE_XX}, {"gt", EXPIRE_GT}, {"lt", EXPIRE_LT}};
    *flags = 0;
    for (int j = 3; j < argc; j++) {
        int f = 0;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (cmd_is(argv[j], argl[j], names[i].name))
                f = names[i].flag;
        if (!f) {
            resp_add_errorf(&c->out, "ERR Unsupported option %.*s", (int)argl[j], argv[j]);
            return -1;
        }
        *flags |= f;
    }
    if ((*flags & EXPIRE_NX) && (*flags & (EXPIRE_XX | EXPIRE_GT | EXPIRE_LT))) {
        resp_add_error(&c->out, "ERR NX and XX, GT or LT options at the same time are not "
                                "compatible");
        return -1;
    }
    if ((*flags & EXPIRE_GT) && (*flags & EXPIRE_LT)) {
        resp_add_error(&c->out, "ERR GT and LT options at the same time are not compatible");
        return -1;
    }
    return 0;
}

/* Whether the NX / XX / GT / LT conditions let the new time 'when' replace
 * the current one (0: none). */
static int expire_allowed(int flags, long long when, long long current)
{
    if ((flags & EXPIRE_NX) && current != 0)
        return 0;
    if ((flags & EXPIRE_XX) && current == 0)
        return 0;
    if ((flags & EXPIRE_GT) && (current == 0 || when <= current))
        return 0;
    if ((flags & EXPIRE_LT) && current != 0 && when >= current)
        return 0;
    return 1;
}

/* EXPIRE and PEXPIRE. A time already past is a flush (here and, in a
 * cluster, on every member) even when this node does not hold the key. */
static void expire_generic(client_t *c, int argc, const char **argv, const size_t *argl,
                           long long unit_ms, int absolute, const char *name)
{
    node_t *n = cmd_node(c);
    int flags;
    long long v, when;
    if (parse_expire_flags(c, argc, argv, argl, &flags) < 0)
        return;
    if (cmd_ll_or_reply(c, argv[2], argl[2], &v) < 0)
        return;
    if (v > LLONG_MAX / unit_ms || v < LLONG_MIN / unit_ms ||
        cmd_expire_at(v, unit_ms, absolute, clock_now_ms(), &when) < 0) {
        cmd_reply_invalid_expire(c, name);
        return;
    }
    int64_t now = clock_now_ms();
    cache_entry_t *e = cache_lookup(n->cache, argv[1], argl[1], now, CACHE_NOTOUCH);
    if (e && !expire_allowed(flags, when, cache_entry_expire(e))) {
        resp_add_int(&c->out, 0);
        return;
    }
    if (when <= now) {
        int removed = e ? cache_delete(n->cache, argv[1], argl[1], now) : 0;
        cmd_flushed_key(c, argv[1], argl[1]);
        resp_add_int(&c->out, removed);
        return;
    }
    if (!e) {
        resp_add_int(&c->out, 0);
        return;
    }
    cmd_set_ttl(c, e, when);
    resp_add_int(&c->out, 1);
}

CMD_HANDLER(cmd_expire)
{
    expire_generic(c, argc, argv, argl, 1000, 0, "expire");
}

CMD_HANDLER(cmd_pexpire)
{
    expire_generic(c, argc, argv, argl, 1, 0, "pexpire");
}

CMD_HANDLER(cmd_expireat)
{
    expire_generic(c, argc, argv, argl, 1000, 1, "expireat");
}

CMD_HANDLER(cmd_pexpireat)
{
    expire_generic(c, argc, argv, argl, 1, 1, "pexpireat");
}

/* TTL PTTL EXPIRETIME PEXPIRETIME: -2 no key, -1 no expire time, else the
 * time left (or the unix time, absolute) in ms or rounded seconds. */
static void ttl_generic(client_t *c, const char *key, size_t klen, int in_ms, int absolute)
{
    int64_t now = clock_now_ms();
    cache_entry_t *e = cmd_lookup(c, key, klen, CACHE_READ | CACHE_NOTOUCH);
    if (!e) {
        resp_add_int(&c->out, -2);
        return;
    }
    int64_t at = cache_entry_expire(e);
    if (at == 0) {
        resp_add_int(&c->out, -1);
        return;
    }
    long long ttl = absolute ? at : at - now;
    if (ttl < 0)
        ttl = 0;
    /* (ttl + 500) / 1000 as redis-server rounds, without overflow near
     * LLONG_MAX (PEXPIREAT k 9223372036854775807, then EXPIRETIME). */
    long long rounded = ttl / 1000 + (ttl % 1000 + 500) / 1000;
    resp_add_int(&c->out, in_ms ? ttl : rounded);
}

CMD_HANDLER(cmd_ttl)
{
    ttl_generic(c, argv[1], argl[1], 0, 0);
}

CMD_HANDLER(cmd_pttl)
{
    ttl_generic(c, argv[1], argl[1], 1, 0);
}

CMD_HANDLER(cmd_expiretime)
{
    ttl_generic(c, argv[1], argl[1], 0, 1);
}

CMD_HANDLER(cmd_pexpiretime)
{
    ttl_generic(c, argv[1], argl[1], 1, 1);
}

CMD_HANDLER(cmd_persist)
{
    node_t *n = cmd_node(c);
    cache_entry_t *e = cache_lookup(n->cache, argv[1], argl[1], clock_now_ms(), CACHE_NOTOUCH);
    if (!e || cache_entry_expire(e) == 0) {
        resp_add_int(&c->out, 0);
        return;
    }
    cmd_set_ttl(c, e, 0);
    resp_add_int(&c->out, 1);
}

CMD_HANDLER(cmd_type)
{
    cache_entry_t *e = cmd_lookup(c, argv[1], argl[1], CACHE_READ | CACHE_NOTOUCH);
    resp_add_simple(&c->out, e ? cmd_type_name(e) : "none");
}

CMD_HANDLER(cmd_touch)
{
    node_t *n = cmd_node(c);
    int64_t now = clock_now_ms();
    long long found = 0;
    for (int i = 1; i < argc; i++)
        found += cache_lookup(n->cache, argv[i], argl[i], now, CACHE_READ) != NULL;
    resp_add_int(&c->out, found);
}

/* RENAME and RENAMENX: the source is flushed (here and on every member), the
 * destination filled here with the source's value, expire time and
 * encoding. */
static void rename_generic(client_t *c, const char **argv, const size_t *argl, int nx)
{
    node_t *n = cmd_node(c);
    int64_t now = clock_now_ms();
    cache_entry_t *e = cmd_lookup_write(c, argv[1], argl[1]);
    if (!e) {
        resp_add_error(&c->out, "ERR no such key");
        return;
    }
    if (argl[1] == argl[2] && memcmp(argv[1], argv[2], argl[1]) == 0) {
        if (nx)
            resp_add_int(&c->out, 0);
        else
            resp_add_ok(&c->out);
        return;
    }
    if (nx && cache_lookup(n->cache, argv[2], argl[2], now, CACHE_NOTOUCH)) {
        resp_add_int(&c->out, 0);
        return;
    }
    /* The lookup of the destination may have moved nothing, but the write
     * below can evict: copy the value out first. */
    e = cache_lookup(n->cache, argv[1], argl[1], now, CACHE_NOTOUCH);
    assert(e); /* live at the same 'now' a moment ago */
    size_t vlen;
    const char *v = cache_entry_value(e, &vlen);
    char *copy = xmemdup(v, vlen);
    int64_t at = cache_entry_expire(e);
    int enc = cache_entry_enc(e), type = cache_entry_type(e);
    cache_delete(n->cache, argv[1], argl[1], now);
    cmd_write_typed(c, argv[2], argl[2], copy, vlen, at, type, enc);
    free(copy);
    cmd_flushed_key(c, argv[1], argl[1]);
    if (nx)
        resp_add_int(&c->out, 1);
    else
        resp_add_ok(&c->out);
}

CMD_HANDLER(cmd_rename)
{
    rename_generic(c, argv, argl, 0);
}

CMD_HANDLER(cmd_renamenx)
{
    rename_generic(c, argv, argl, 1);
}

/* COPY source destination [DB n] [REPLACE]: a fill of the destination (in
 * database n) here. */
CMD_HANDLER(cmd_copy)
{
    node_t *n = cmd_node(c);
    int replace = 0, db = c->db;
    for (int j = 3; j < argc; j++) {
        int more = argc - j - 1;
        if (cmd_is(argv[j], argl[j], "replace")) {
            replace = 1;
        } else if (cmd_is(argv[j], argl[j], "db") && more) {
            if (cmd_db_arg(c, argv[j + 1], argl[j + 1], &db) < 0)
                return;
            j++;
        } else {
            resp_add_error(&c->out, ERR_SYNTAX);
            return;
        }
    }
    char *dst = xmemdup(argv[2], argl[2]);
    dst[0] = (char)db; /* the stored key in the destination database */
    if (argl[1] == argl[2] && memcmp(argv[1], dst, argl[1]) == 0) {
        free(dst);
        resp_add_error(&c->out, "ERR source and destination objects are the same");
        return;
    }
    cache_entry_t *e = cmd_read(c, argv[1], argl[1]);
    int64_t now = clock_now_ms();
    if (!e || (!replace && cache_lookup(n->cache, dst, argl[2], now, CACHE_NOTOUCH))) {
        free(dst);
        resp_add_int(&c->out, 0);
        return;
    }
    e = cache_lookup(n->cache, argv[1], argl[1], now, CACHE_NOTOUCH);
    assert(e); /* live at the same 'now' a moment ago */
    size_t vlen;
    const char *v = cache_entry_value(e, &vlen);
    char *copy = xmemdup(v, vlen);
    cmd_write_typed(c, dst, argl[2], copy, vlen, cache_entry_expire(e), cache_entry_type(e),
                    cache_entry_enc(e));
    free(copy);
    free(dst);
    resp_add_int(&c->out, 1);
}

CMD_HANDLER(cmd_flushall)
{
    if (cmd_db_parse_flush_mode(c, argc, argv, argl) < 0)
        return;
    cache_flush_all(cmd_node(c)->cache);
    cmd_flushed_all(c);
    resp_add_ok(&c->out);
}

/* ---- KEYS and SCAN ------------------------------------------------------ */

typedef struct key_collect {
    buf_t keys; /* each key as a RESP bulk string, ready to send */
    size_t count;
    const char *pattern; /* NULL: every key */
    size_t plen;
    int64_t now;
    const char *type; /* TYPE filter (any case), or NULL */
    size_t tlen;
    unsigned char db; /* only keys of this database, shown without its byte */
} key_collect_t;

static void collect_key(void *ud, cache_entry_t *e)
{
    key_collect_t *k = ud;
    size_t klen;
    const char *key = cache_entry_key(e, &klen);
    int64_t at = cache_entry_expire(e);
    if ((k->type && !cmd_is(k->type, k->tlen, cmd_type_name(e))) || (at != 0 && at <= k->now) ||
        klen == 0 || (unsigned char)key[0] != k->db)
        return;
    key++; /* the database byte */
    klen--;
    if (k->pattern && !glob_match(k->pattern, k->plen, key, klen))
        return;
    resp_add_bulk(&k->keys, key, klen);
    k->count++;
}

static void reply_keys(client_t *c, key_collect_t *k)
{
    resp_add_array(&c->out, k->count);
    buf_append(&c->out, buf_head(&k->keys), buf_len(&k->keys));
    buf_free(&k->keys);
}

CMD_HANDLER(cmd_keys)
{
    node_t *n = cmd_node(c);
    key_collect_t k = {.now = clock_now_ms(), .db = (unsigned char)c->db};
    buf_init(&k.keys);
    int all = argl[1] == 1 && argv[1][0] == '*';
    k.pattern = all ? NULL : argv[1];
    k.plen = argl[1];
    char prefix = (char)c->db;
    if (cmd_serving(c))
        cache_foreach_prefix(n->cache, &prefix, 1, k.now, SIZE_MAX, collect_key, &k);
    reply_keys(c, &k);
}

/* A SCAN cursor, read as redis-server reads it (strtoull: an empty string is
 * 0, a sign is accepted, leading space and trailing bytes are not). */
static int parse_cursor(const char *s, size_t len, unsigned long long *out)
{
    char buf[64];
    if (len >= sizeof(buf) || memchr(s, '\0', len) || (len && isspace((unsigned char)s[0])))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    *out = strtoull(buf, &end, 10);
    return *end != '\0' || errno == ERANGE ? -1 : 0;
}

CMD_HANDLER(cmd_scan)
{
    node_t *n = cmd_node(c);
    unsigned long long cursor;
    if (parse_cursor(argv[1], argl[1], &cursor) < 0) {
        resp_add_error(&c->out, "ERR invalid cursor");
        return;
    }
    scan_opts_t o;
    if (cmd_scan_opts(c, argc, argv, argl, 2, 1, &o) < 0)
        return;
    key_collect_t k = {.now = clock_now_ms(), .db = (unsigned char)c->db, .pattern = o.pat,
                       .plen = o.plen, .type = o.type, .tlen = o.tlen};
    buf_init(&k.keys);
    uint64_t next = cmd_serving(c) ? cache_scan(n->cache, cursor, (size_t)o.count, collect_key, &k)
                                   : 0; /* out of contact: nothing to show, and done */
    resp_add_array(&c->out, 2);
    resp_add_bulk_ll(&c->out, (long long)next);
    reply_keys(c, &k);
}
