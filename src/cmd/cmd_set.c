/* cmd_set: the set commands (SADD SREM SISMEMBER SMISMEMBER SMEMBERS SCARD
 * SPOP SRANDMEMBER SINTER SINTERCARD SUNION SDIFF SINTERSTORE SUNIONSTORE
 * SDIFFSTORE SMOVE SSCAN) with redis-server 7.0's replies, errors and
 * encodings ("intset" while every member is an integer and there are at
 * most 512, kept in ascending order as redis-server does; "hashtable" for
 * good after that; redis-server 7.0 has no listpack sets).
 * A set is a cache entry of type CACHE_TYPE_SET whose value is coll.h's
 * bytes; every write rebuilds the value (O(size)) and stores it through
 * cmd_coll_store, a fill of this node like SET.
 * Never: keeps a pointer into the cache across a write (SMOVE encodes the
 * destination before it writes the source). */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cmd.h"
#include "coll.h"
#include "mem.h"


/* redis-server's setTypeCreate: the first member decides the encoding. */
static void set_create(coll_t *s, const char *first, size_t len)
{
    long long v;
    s->flags = coll_is_int(first, len, &v) ? COLL_F_INTSET : COLL_F_BIG;
}

/* Adds m, converting an intset as setTypeAdd does. Returns 1 when added. */
static int set_add(coll_t *s, const char *m, size_t len)
{
    long long v;
    int added = coll_put(s, m, len, NULL, 0);
    if ((s->flags & COLL_F_INTSET) &&
        (!coll_is_int(m, len, &v) || s->count > CMD_SET_MAX_INTSET_ENTRIES))
        s->flags = COLL_F_BIG;
    return added;
}

static int64_t expire_of(const cache_entry_t *e)
{
    return e ? cache_entry_expire(e) : 0;
}

static size_t count_of(const cache_entry_t *e)
{
    coll_hdr_t h = {0};
    if (e) {
        size_t vlen;
        const char *v = cache_entry_value(e, &vlen);
        coll_hdr(v, vlen, &h);
    }
    return h.count;
}

static int is_member(const cache_entry_t *e, const char *m, size_t len)
{
    if (!e)
        return 0;
    size_t vlen;
    const char *v = cache_entry_value(e, &vlen);
    return coll_find_raw(v, vlen, m, len, NULL) == 1;
}

CMD_HANDLER(cmd_sadd)
{
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_SET, 1, &e) < 0)
        return;
    int one, r = e && argc == 3 ? cmd_coll_put_one(c, argv[1], argl[1], e, argv[2], argl[2], NULL,
                                                   0, &one)
                                : 1;
    if (r == 0)
        resp_add_int(&c->out, one);
    if (r <= 0)
        return;
    coll_t s;
    cmd_coll_load(e, CACHE_TYPE_SET, &s);
    if (!e)
        set_create(&s, argv[2], argl[2]);
    long long added = 0;
    for (int i = 2; i < argc; i++)
        added += set_add(&s, argv[i], argl[i]);
    if (added == 0 || cmd_coll_store(c, argv[1], argl[1], &s, expire_of(e)) == 0)
        resp_add_int(&c->out, added);
    coll_free(&s);
}

CMD_HANDLER(cmd_srem)
{
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_SET, 1, &e) < 0)
        return;
    if (!e) {
        resp_add_int(&c->out, 0);
        return;
    }
    coll_t s;
    cmd_coll_load(e, CACHE_TYPE_SET, &s);
    long long removed = 0;
    for (int i = 2; i < argc && s.count > 0; i++)
        removed += coll_remove(&s, argv[i], argl[i]);
    if (removed == 0 || cmd_coll_store(c, argv[1], argl[1], &s, expire_of(e)) == 0)
        resp_add_int(&c->out, removed);
    coll_free(&s);
}

CMD_HANDLER(cmd_sismember)
{
    (void)argc;
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_SET, 0, &e) < 0)
        return;
    resp_add_int(&c->out, is_member(e, argv[2], argl[2]));
}

CMD_HANDLER(cmd_smismember)
{
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_SET, 0, &e) < 0)
        return;
    resp_add_array(&c->out, (size_t)(argc - 2));
    for (int i = 2; i < argc; i++)
        resp_add_int(&c->out, is_member(e, argv[i], argl[i]));
}

CMD_HANDLER(cmd_scard)
{
    (void)argc;
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_SET, 0, &e) < 0)
        return;
    resp_add_int(&c->out, (long long)count_of(e));
}

/* Replies every member of s as a set, in its stored order (an intset's is
 * ascending, as redis-server's). */
static void reply_members(client_t *c, const coll_t *s)
{
    size_t len;
    char *bytes = coll_encode(s, &len); /* orders an intset */
    coll_iter_t it;
    coll_str_t m;
    resp_add_set(&c->out, c->proto, s->count);
    if (coll_iter_init(&it, bytes, len) == 0)
        while (coll_iter_next(&it, &m) == 1)
            resp_add_bulk(&c->out, m.p, m.len);
    free(bytes);
}

/* ---- SINTER SINTERCARD SINTERSTORE SUNION SDIFF (and STORE) --------- */

/* Loads the sets of keys[0..n) into sets (absent: count 0). Returns 0, or -1
 * after WRONGTYPE (sets freed). */
static int load_sets(client_t *c, const char **keys, const size_t *klen, int n, coll_t *sets)
{
    for (int i = 0; i < n; i++) {
        cache_entry_t *e;
        if (cmd_coll_lookup(c, keys[i], klen[i], CACHE_TYPE_SET, 0, &e) < 0) {
            for (int j = 0; j < i; j++)
                coll_free(&sets[j]);
            return -1;
        }
        cmd_coll_load(e, CACHE_TYPE_SET, &sets[i]);
    }
    return 0;
}

static void free_sets(coll_t *sets, int n)
{
    for (int i = 0; i < n; i++)
        coll_free(&sets[i]);
    free(sets);
}

/* The result of a STORE form: stored under dst, or dst removed when empty;
 * replies the cardinality. */
static void store_result(client_t *c, const char *dst, size_t dlen, const coll_t *r)
{
    if (r->count == 0) {
        node_t *n = cmd_node(c);
        if (cache_lookup(n->cache, dst, dlen, clock_now_ms(), CACHE_NOTOUCH)) {
            cache_delete(n->cache, dst, dlen, clock_now_ms());
            cmd_flushed_key(c, dst, dlen);
        }
        resp_add_int(&c->out, 0);
        return;
    }
    if (cmd_coll_store(c, dst, dlen, r, 0) == 0)
        resp_add_int(&c->out, (long long)r->count);
}

static int by_count(const void *a, const void *b)
{
    size_t x = ((const coll_t *)a)->count, y = ((const coll_t *)b)->count;
    return (x > y) - (x < y);
}

enum { INTER_REPLY, INTER_CARD, INTER_STORE };

static void inter_generic(client_t *c, const char **keys, const size_t *klen, int n, int mode,
                          const char *dst, size_t dlen, unsigned long long limit)
{
    coll_t *sets = xcalloc((size_t)n, sizeof(*sets));
    if (load_sets(c, keys, klen, n, sets) < 0) {
        free(sets);
        return;
    }
    coll_t r;
    coll_init(&r, COLL_SET);
    r.flags = COLL_F_INTSET;
    int empty = 0;
    for (int i = 0; i < n; i++)
        empty |= sets[i].count == 0;
    /* Smallest first, as redis-server (equal sizes in either order: only
     * the order of the reply changes). */
    if (!empty)
        qsort(sets, (size_t)n, sizeof(*sets), by_count);
    unsigned long long card = 0;
    for (size_t s = 0; !empty && s < sets[0].slots; s++) {
        const coll_str_t *m = &sets[0].items[s];
        int j;
        for (j = 1; j < n; j++)
            if (coll_find(&sets[j], m->p, m->len) < 0)
                break;
        if (j < n)
            continue;
        card++;
        if (mode != INTER_CARD)
            set_add(&r, m->p, m->len);
        if (mode == INTER_CARD && limit && card >= limit)
            break;
    }
    if (mode == INTER_CARD) {
        resp_add_int(&c->out, (long long)card);
    } else if (mode == INTER_STORE) {
        store_result(c, dst, dlen, &r);
    } else {
        /* In the smallest set's order (ascending for an intset), as
         * redis-server iterates it. */
        resp_add_set(&c->out, c->proto, r.count);
        for (size_t s = 0; s < r.slots; s++)
            resp_add_bulk(&c->out, r.items[s].p, r.items[s].len);
    }
    coll_free(&r);
    free_sets(sets, n);
}

enum { OP_UNION, OP_DIFF };

static void union_diff_generic(client_t *c, const char **keys, const size_t *klen, int n, int op,
                               const char *dst, size_t dlen)
{
    coll_t *sets = xcalloc((size_t)n, sizeof(*sets));
    if (load_sets(c, keys, klen, n, sets) < 0) {
        free(sets);
        return;
    }
    coll_t r;
    coll_init(&r, COLL_SET);
    r.flags = COLL_F_INTSET;
    int sameset = 0;
    for (int j = 1; op == OP_DIFF && j < n; j++)
        sameset |= klen[j] == klen[0] && memcmp(keys[j], keys[0], klen[0]) == 0;
    if (op == OP_UNION) {
        for (int j = 0; j < n; j++)
            for (size_t s = 0; s < sets[j].slots; s++)
                set_add(&r, sets[j].items[s].p, sets[j].items[s].len);
    } else if (!sameset) {
        for (size_t s = 0; s < sets[0].slots; s++) {
            const coll_str_t *m = &sets[0].items[s];
            int j;
            for (j = 1; j < n; j++)
                if (coll_find(&sets[j], m->p, m->len) >= 0)
                    break;
            if (j == n)
                set_add(&r, m->p, m->len);
        }
    }
    if (dst)
        store_result(c, dst, dlen, &r);
    else
        reply_members(c, &r);
    coll_free(&r);
    free_sets(sets, n);
}

/* SMEMBERS: the members read in place, in their stored order. */
CMD_HANDLER(cmd_smembers)
{
    (void)argc;
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_SET, 0, &e) < 0)
        return;
    size_t vlen = 0;
    const char *v = e ? cache_entry_value(e, &vlen) : NULL;
    coll_iter_t it;
    coll_str_t m;
    if (!e || coll_iter_init(&it, v, vlen) < 0) {
        resp_add_set(&c->out, c->proto, 0);
        return;
    }
    resp_add_set(&c->out, c->proto, count_of(e));
    while (coll_iter_next(&it, &m) == 1)
        resp_add_bulk(&c->out, m.p, m.len);
}

CMD_HANDLER(cmd_sinter)
{
    inter_generic(c, argv + 1, argl + 1, argc - 1, INTER_REPLY, NULL, 0, 0);
}

CMD_HANDLER(cmd_sinterstore)
{
    inter_generic(c, argv + 2, argl + 2, argc - 2, INTER_STORE, argv[1], argl[1], 0);
}

CMD_HANDLER(cmd_sintercard)
{
    long long numkeys, limit = 0;
    if (cmd_parse_ll(argv[1], argl[1], &numkeys) < 0 || numkeys < 1) {
        resp_add_error(&c->out, "ERR numkeys should be greater than 0");
        return;
    }
    if (numkeys > argc - 2) {
        resp_add_error(&c->out, "ERR Number of keys can't be greater than number of args");
        return;
    }
    for (long long j = 2 + numkeys; j < argc; j++) {
        int more = (argc - 1) - (int)j;
        if (cmd_is(argv[j], argl[j], "limit") && more) {
            j++;
            if (cmd_parse_ll(argv[j], argl[j], &limit) < 0 || limit < 0) {
                resp_add_error(&c->out, "ERR LIMIT can't be negative");
                return;
            }
        } else {
            resp_add_error(&c->out, ERR_SYNTAX);
            return;
        }
    }
    inter_generic(c, argv + 2, argl + 2, (int)numkeys, INTER_CARD, NULL, 0,
                  (unsigned long long)limit);
}

CMD_HANDLER(cmd_sunion)
{
    union_diff_generic(c, argv + 1, argl + 1, argc - 1, OP_UNION, NULL, 0);
}

CMD_HANDLER(cmd_sunionstore)
{
    union_diff_generic(c, argv + 2, argl + 2, argc - 2, OP_UNION, argv[1], argl[1]);
}

CMD_HANDLER(cmd_sdiff)
{
    union_diff_generic(c, argv + 1, argl + 1, argc - 1, OP_DIFF, NULL, 0);
}

CMD_HANDLER(cmd_sdiffstore)
{
    union_diff_generic(c, argv + 2, argl + 2, argc - 2, OP_DIFF, argv[1], argl[1]);
}

/* ---- SMOVE SPOP SRANDMEMBER SSCAN ------------------------------------ */

CMD_HANDLER(cmd_smove)
{
    (void)argc;
    cache_entry_t *src = cmd_lookup_write(c, argv[1], argl[1]);
    cache_entry_t *dst = cmd_lookup_write(c, argv[2], argl[2]);
    if (!src) {
        resp_add_int(&c->out, 0);
        return;
    }
    if (cmd_check_type(c, src, CACHE_TYPE_SET) < 0 || cmd_check_type(c, dst, CACHE_TYPE_SET) < 0)
        return;
    if (argl[1] == argl[2] && memcmp(argv[1], argv[2], argl[1]) == 0) {
        resp_add_int(&c->out, is_member(src, argv[3], argl[3]));
        return;
    }
    coll_t s, d;
    cmd_coll_load(src, CACHE_TYPE_SET, &s);
    if (!coll_remove(&s, argv[3], argl[3])) {
        coll_free(&s);
        resp_add_int(&c->out, 0);
        return;
    }
    cmd_coll_load(dst, CACHE_TYPE_SET, &d);
    if (!dst)
        set_create(&d, argv[3], argl[3]);
    int64_t src_at = expire_of(src), dst_at = expire_of(dst);
    if (set_add(&d, argv[3], argl[3]) && coll_encoded_len(&d) > cmd_node(c)->cfg->max_bulk_len) {
        resp_add_errorf(&c->out, "ERR the value would be larger than max_bulk_len (%zu bytes)",
                        cmd_node(c)->cfg->max_bulk_len);
        coll_free(&s);
        coll_free(&d);
        return;
    }
    /* The destination's bytes, owned here, before any write can move it. */
    size_t dlen;
    char *dbytes = coll_encode(&d, &dlen);
    coll_free(&d);
    cmd_coll_store(c, argv[1], argl[1], &s, src_at); /* smaller: cannot fail */
    coll_free(&s);
    cmd_write_typed(c, argv[2], argl[2], dbytes, dlen, dst_at, CACHE_TYPE_SET, CACHE_ENC_AUTO);
    free(dbytes);
    resp_add_int(&c->out, 1);
}

/* SPOP key count: count distinct members, removed. */
static void spop_count(client_t *c, const char **argv, const size_t *argl)
{
    long long count;
    if (cmd_parse_ll(argv[2], argl[2], &count) < 0 || count < 0) {
        resp_add_error(&c->out, "ERR value is out of range, must be positive");
        return;
    }
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_SET, 1, &e) < 0)
        return;
    if (!e || count == 0) {
        resp_add_set(&c->out, c->proto, 0);
        return;
    }
    coll_t s;
    cmd_coll_load(e, CACHE_TYPE_SET, &s);
    if ((unsigned long long)count >= s.count) {
        reply_members(c, &s);
        s.count = 0;
    } else {
        /* Reply first (the members point into the entry), then store. */
        resp_add_set(&c->out, c->proto, (size_t)count);
        for (long long i = 0; i < count; i++) {
            size_t k;
            do
                k = cmd_random_below(s.slots);
            while (!s.items[k].p);
            resp_add_bulk(&c->out, s.items[k].p, s.items[k].len);
            coll_remove(&s, s.items[k].p, s.items[k].len);
        }
    }
    cmd_coll_store(c, argv[1], argl[1], &s, expire_of(e)); /* smaller: cannot fail */
    coll_free(&s);
}

CMD_HANDLER(cmd_spop)
{
    if (argc == 3) {
        spop_count(c, argv, argl);
        return;
    }
    if (argc > 3) {
        resp_add_error(&c->out, ERR_SYNTAX);
        return;
    }
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_SET, 1, &e) < 0)
        return;
    if (!e) {
        resp_add_null(&c->out, c->proto);
        return;
    }
    coll_t s;
    cmd_coll_load(e, CACHE_TYPE_SET, &s);
    coll_str_t m = s.items[cmd_random_below(s.slots)];
    resp_add_bulk(&c->out, m.p, m.len);
    coll_remove(&s, m.p, m.len);
    cmd_coll_store(c, argv[1], argl[1], &s, expire_of(e)); /* smaller: cannot fail */
    coll_free(&s);
}

CMD_HANDLER(cmd_srandmember)
{
    long long l = 0;
    if (argc == 3 && cmd_count_or_reply(c, argv[2], argl[2], &l) < 0)
        return;
    if (argc > 3) {
        resp_add_error(&c->out, ERR_SYNTAX);
        return;
    }
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], CACHE_TYPE_SET, 0, &e) < 0)
        return;
    if (!e) {
        if (argc == 3)
            resp_add_array(&c->out, 0);
        else
            resp_add_null(&c->out, c->proto);
        return;
    }
    coll_t s;
    cmd_coll_load(e, CACHE_TYPE_SET, &s);
    if (argc == 2) {
        const coll_str_t *m = &s.items[cmd_random_below(s.slots)];
        resp_add_bulk(&c->out, m->p, m->len);
    } else {
        cmd_reply_random(c, &s, l, 0);
    }
    coll_free(&s);
}

CMD_HANDLER(cmd_sscan)
{
    cmd_coll_scan(c, argc, argv, argl, CACHE_TYPE_SET);
}
