/* cmd_hash: the hash commands (HSET HSETNX HMSET HGET HMGET HDEL HLEN
 * HSTRLEN HEXISTS HKEYS HVALS HGETALL HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN)
 * with redis-server 7.0's replies, errors and encodings ("listpack" while a
 * hash holds at most 512 fields and no field or value longer than 64 bytes,
 * then "hashtable" for good; a listpack keeps insertion order, as here).
 * A hash is a cache entry of type CACHE_TYPE_HASH whose value is coll.h's
 * bytes; every write rebuilds the value (O(size)) and stores it through
 * cmd_coll_store, a fill of this node like SET.
 * Never: keeps a pointer into the cache across a write. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "coll.h"
#include "mem.h"


/* redis-server's conversion rules after a field was set. */
static void note_set(coll_t *h, size_t flen, size_t vlen)
{
    if (flen > CMD_HASH_MAX_LISTPACK_VALUE || vlen > CMD_HASH_MAX_LISTPACK_VALUE ||
        h->count > CMD_HASH_MAX_LISTPACK_ENTRIES)
        h->flags |= COLL_F_BIG;
}

static int64_t expire_of(const cache_entry_t *e)
{
    return e ? cache_entry_expire(e) : 0;
}

/* HSET key field value [field value ...]; HMSET replies OK. */
static void hset_generic(client_t *c, int argc, const char **argv, const size_t *argl, int hmset)
{
    if (argc % 2 == 1) {
        cmd_reply_arity(c, hmset ? "hmset" : "hset");
        return;
    }
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_HASH, 1, &e) < 0)
        return;
    int added, r = 1;
    if (e && argc == 4)
        r = cmd_coll_put_one(c, argv[1], argl[1], e, argv[2], argl[2], argv[3], argl[3], &added);
    if (r == 0) {
        if (hmset)
            resp_add_ok(&c->out);
        else
            resp_add_int(&c->out, added);
    }
    if (r <= 0)
        return;
    coll_t h;
    cmd_coll_load(e, CACHE_TYPE_HASH, &h);
    long long created = 0;
    for (int i = 2; i < argc; i += 2) {
        created += coll_put(&h, argv[i], argl[i], argv[i + 1], argl[i + 1]);
        note_set(&h, argl[i], argl[i + 1]);
    }
    if (cmd_coll_store(c, argv[1], argl[1], &h, expire_of(e)) == 0) {
        if (hmset)
            resp_add_ok(&c->out);
        else
            resp_add_int(&c->out, created);
    }
    coll_free(&h);
}

CMD_HANDLER(cmd_hset)
{
    hset_generic(c, argc, argv, argl, 0);
}

CMD_HANDLER(cmd_hmset)
{
    hset_generic(c, argc, argv, argl, 1);
}

CMD_HANDLER(cmd_hsetnx)
{
    (void)argc;
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_HASH, 1, &e) < 0)
        return;
    coll_t h;
    cmd_coll_load(e, CACHE_TYPE_HASH, &h);
    if (coll_find(&h, argv[2], argl[2]) >= 0) {
        resp_add_int(&c->out, 0);
    } else {
        coll_put(&h, argv[2], argl[2], argv[3], argl[3]);
        note_set(&h, argl[2], argl[3]);
        if (cmd_coll_store(c, argv[1], argl[1], &h, expire_of(e)) == 0)
            resp_add_int(&c->out, 1);
    }
    coll_free(&h);
}

/* The value of field in e's bytes: 1 found, 0 not. */
static int field_of(const cache_entry_t *e, const char *f, size_t flen, coll_str_t *val)
{
    if (!e)
        return 0;
    size_t vlen;
    const char *v = cache_entry_value(e, &vlen);
    return coll_find_raw(v, vlen, f, flen, val) == 1;
}

CMD_HANDLER(cmd_hget)
{
    (void)argc;
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_HASH, 0, &e) < 0)
        return;
    coll_str_t v;
    if (field_of(e, argv[2], argl[2], &v))
        resp_add_bulk(&c->out, v.p, v.len);
    else
        resp_add_null(&c->out, c->proto);
}

CMD_HANDLER(cmd_hmget)
{
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_HASH, 0, &e) < 0)
        return;
    resp_add_array(&c->out, (size_t)(argc - 2));
    for (int i = 2; i < argc; i++) {
        coll_str_t v;
        if (field_of(e, argv[i], argl[i], &v))
            resp_add_bulk(&c->out, v.p, v.len);
        else
            resp_add_null(&c->out, c->proto);
    }
}

CMD_HANDLER(cmd_hdel)
{
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_HASH, 1, &e) < 0)
        return;
    if (!e) {
        resp_add_int(&c->out, 0);
        return;
    }
    coll_t h;
    cmd_coll_load(e, CACHE_TYPE_HASH, &h);
    long long deleted = 0;
    for (int i = 2; i < argc && h.count > 0; i++)
        deleted += coll_remove(&h, argv[i], argl[i]);
    if (deleted == 0 || cmd_coll_store(c, argv[1], argl[1], &h, expire_of(e)) == 0)
        resp_add_int(&c->out, deleted);
    coll_free(&h);
}

CMD_HANDLER(cmd_hlen)
{
    (void)argc;
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_HASH, 0, &e) < 0)
        return;
    coll_hdr_t hdr = {0};
    if (e) {
        size_t vlen;
        const char *v = cache_entry_value(e, &vlen);
        coll_hdr(v, vlen, &hdr);
    }
    resp_add_int(&c->out, (long long)hdr.count);
}

CMD_HANDLER(cmd_hstrlen)
{
    (void)argc;
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_HASH, 0, &e) < 0)
        return;
    coll_str_t v = {"", 0};
    field_of(e, argv[2], argl[2], &v);
    resp_add_int(&c->out, (long long)v.len);
}

CMD_HANDLER(cmd_hexists)
{
    (void)argc;
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_HASH, 0, &e) < 0)
        return;
    coll_str_t v;
    resp_add_int(&c->out, field_of(e, argv[2], argl[2], &v));
}

enum { WANT_KEYS = 1, WANT_VALS = 2 };

static void getall_generic(client_t *c, const char **argv, const size_t *argl, int want)
{
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_HASH, 0, &e) < 0)
        return;
    int both = want == (WANT_KEYS | WANT_VALS);
    if (!e) {
        if (both)
            resp_add_map(&c->out, c->proto, 0);
        else
            resp_add_array(&c->out, 0);
        return;
    }
    size_t vlen;
    const char *v = cache_entry_value(e, &vlen);
    coll_hdr_t hdr;
    coll_iter_t it;
    if (coll_hdr(v, vlen, &hdr) < 0 || coll_iter_init(&it, v, vlen) < 0) {
        resp_add_array(&c->out, 0);
        return;
    }
    if (both)
        resp_add_map(&c->out, c->proto, hdr.count);
    else
        resp_add_array(&c->out, hdr.count);
    coll_str_t f, val;
    while (coll_iter_next(&it, &f) == 1 && coll_iter_next(&it, &val) == 1) {
        if (want & WANT_KEYS)
            resp_add_bulk(&c->out, f.p, f.len);
        if (want & WANT_VALS)
            resp_add_bulk(&c->out, val.p, val.len);
    }
}

CMD_HANDLER(cmd_hkeys)
{
    (void)argc;
    getall_generic(c, argv, argl, WANT_KEYS);
}

CMD_HANDLER(cmd_hvals)
{
    (void)argc;
    getall_generic(c, argv, argl, WANT_VALS);
}

CMD_HANDLER(cmd_hgetall)
{
    (void)argc;
    getall_generic(c, argv, argl, WANT_KEYS | WANT_VALS);
}

CMD_HANDLER(cmd_hincrby)
{
    (void)argc;
    long long incr, value = 0;
    if (cmd_ll_or_reply(c, argv[3], argl[3], &incr) < 0)
        return;
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_HASH, 1, &e) < 0)
        return;
    coll_str_t cur;
    if (field_of(e, argv[2], argl[2], &cur) && cmd_parse_ll(cur.p, cur.len, &value) < 0) {
        resp_add_error(&c->out, "ERR hash value is not an integer");
        return;
    }
    if ((incr < 0 && value < 0 && incr < LLONG_MIN - value) ||
        (incr > 0 && value > 0 && incr > LLONG_MAX - value)) {
        resp_add_error(&c->out, "ERR increment or decrement would overflow");
        return;
    }
    value += incr;
    char text[32];
    int n = snprintf(text, sizeof(text), "%lld", value);
    int added, r = e ? cmd_coll_put_one(c, argv[1], argl[1], e, argv[2], argl[2], text, (size_t)n,
                                        &added)
                     : 1;
    if (r == 0)
        resp_add_int(&c->out, value);
    if (r <= 0)
        return;
    coll_t h;
    cmd_coll_load(e, CACHE_TYPE_HASH, &h);
    coll_put(&h, argv[2], argl[2], text, (size_t)n);
    note_set(&h, argl[2], (size_t)n);
    if (cmd_coll_store(c, argv[1], argl[1], &h, expire_of(e)) == 0)
        resp_add_int(&c->out, value);
    coll_free(&h);
}

CMD_HANDLER(cmd_hincrbyfloat)
{
    (void)argc;
    long double incr, value = 0;
    if (cmd_parse_ld(argv[3], argl[3], &incr) < 0) {
        resp_add_error(&c->out, "ERR value is not a valid float");
        return;
    }
    if (isnan(incr) || isinf(incr)) {
        resp_add_error(&c->out, "ERR value is NaN or Infinity");
        return;
    }
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_HASH, 1, &e) < 0)
        return;
    coll_str_t cur;
    if (field_of(e, argv[2], argl[2], &cur) && cmd_parse_ld(cur.p, cur.len, &value) < 0) {
        resp_add_error(&c->out, "ERR hash value is not a float");
        return;
    }
    size_t n;
    char *text = cmd_ld_add_or_reply(c, value, incr, &n);
    if (!text)
        return;
    int added, r = e ? cmd_coll_put_one(c, argv[1], argl[1], e, argv[2], argl[2], text, n, &added)
                     : 1;
    if (r == 0)
        resp_add_bulk(&c->out, text, n);
    if (r <= 0) {
        free(text);
        return;
    }
    coll_t h;
    cmd_coll_load(e, CACHE_TYPE_HASH, &h);
    coll_put(&h, argv[2], argl[2], text, n);
    note_set(&h, argl[2], n);
    if (cmd_coll_store(c, argv[1], argl[1], &h, expire_of(e)) == 0)
        resp_add_bulk(&c->out, text, n);
    coll_free(&h);
    free(text);
}

/* HRANDFIELD key [count [WITHVALUES]]: as redis-server, a positive count
 * gives distinct fields (all of them when count >= size, in order), a
 * negative one may repeat. */
CMD_HANDLER(cmd_hrandfield)
{
    long long l = 0;
    int withvalues = 0;
    if (argc >= 3) {
        if (cmd_count_or_reply(c, argv[2], argl[2], &l) < 0)
            return;
        if (argc > 4 || (argc == 4 && !cmd_is(argv[3], argl[3], "withvalues"))) {
            resp_add_error(&c->out, ERR_SYNTAX);
            return;
        }
        if (argc == 4) {
            withvalues = 1;
            if (l < -LLONG_MAX / 2 || l > LLONG_MAX / 2) {
                resp_add_error(&c->out, "ERR value is out of range");
                return;
            }
        }
    }
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_HASH, 0, &e) < 0)
        return;
    if (!e) {
        if (argc >= 3)
            resp_add_array(&c->out, 0);
        else
            resp_add_null(&c->out, c->proto);
        return;
    }
    coll_t h;
    cmd_coll_load(e, CACHE_TYPE_HASH, &h);
    if (argc == 2) {
        coll_str_t *f = &h.items[cmd_random_below(h.slots) * 2];
        resp_add_bulk(&c->out, f->p, f->len);
    } else {
        cmd_reply_random(c, &h, l, withvalues);
    }
    coll_free(&h);
}

CMD_HANDLER(cmd_hscan)
{
    cmd_coll_scan(c, argc, argv, argl, CACHE_TYPE_HASH);
}
