/* cmd_db: databases: SELECT, SWAPDB, MOVE, FLUSHDB, DBSIZE, RANDOMKEY, and
 * the helpers KEYS, SCAN and COPY use to see one database.
 *
 * How a key of database n is stored: as the byte n followed by the client's
 * key, in the one cache of the node ([cache] databases, 1..256, default 16).
 * Dispatch adds the byte to every key argument (commands.c), so handlers,
 * flushes (DEL, EXPIRE in the past, RENAME's source, FLUSHPREFIX) and SEEDs
 * carry their database to every member with no change to the cluster
 * protocol. FLUSHDB is a prefix flush of the one byte n, here and on every
 * member. What shows keys back to a client (KEYS, SCAN, RANDOMKEY) strips
 * the byte; DBSIZE and INFO keyspace read the cache's count of keys by first
 * byte (O(1)).
 *
 * SWAPDB moves every key of both databases (O(keys of the two), on this
 * node). In a cluster it is refused: the members' caches hold different
 * subsets of each database and a swap cannot be applied to them as one
 * coherent step; FLUSHDB on both is the cluster's way.
 *
 * Never: lets a handler see a database index out of range, or shows a
 * stored key (with its byte) to a client. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cmd.h"
#include "mem.h"

int cmd_db_count(const client_t *c)
{
    return cmd_node(c)->cfg->databases;
}

/* redis-server's getIntFromObjectOrReply: an integer that fits an int, else
 * msg (NULL: its two standard texts). Returns 0 or -1 after the reply. */
static int int_or_reply(client_t *c, const char *s, size_t len, const char *msg, int *out)
{
    long long v;
    if (cmd_parse_ll(s, len, &v) < 0) {
        resp_add_error(&c->out, msg ? msg : ERR_NOT_INT);
        return -1;
    }
    if (v < INT_MIN || v > INT_MAX) {
        resp_add_error(&c->out, msg ? msg
                                    : "ERR value is out of range, value must between "
                                      "-2147483648 and 2147483647");
        return -1;
    }
    *out = (int)v;
    return 0;
}

int cmd_db_arg(client_t *c, const char *s, size_t len, int *db)
{
    if (int_or_reply(c, s, len, NULL, db) < 0)
        return -1;
    if (*db < 0 || *db >= cmd_db_count(c)) {
        resp_add_error(&c->out, "ERR DB index is out of range");
        return -1;
    }
    return 0;
}

CMD_HANDLER(cmd_select)
{
    (void)argc;
    int db;
    if (cmd_db_arg(c, argv[1], argl[1], &db) < 0)
        return;
    c->db = db;
    resp_add_ok(&c->out);
}

/* DBSIZE: exact, so while prefix flushes that may cover this database are
 * being swept (their keys gone but still counted: cache_flush_prefix_start)
 * it waits for the sweeps of those pending now, and replies the count then
 * (inside MULTI or a script it sweeps them at once). A flush of this
 * database made while it waits (not waited for: under a steady stream of
 * flushes that could be forever) is still pending then, some of its keys
 * removed and some not: the reply adds back those it removed
 * (cache_flush_unlinked_first_byte), so it is the count before that flush,
 * never one half way through it (test_prefix_flush_lazy.py,
 * test_dbsize_is_exact_when_a_flush_lands_during_its_wait). */
CMD_HANDLER(cmd_dbsize)
{
    (void)argc, (void)argv, (void)argl;
    cache_t *cache = cmd_node(c)->cache;
    char db = (char)c->db;
    uint64_t newest = cache_flush_newest_under(cache, &db, 1);
    if (newest && !(c->cmd_flags & CMDC_ATOMIC)) {
        cmd_wait_sweep(c, newest, 1);
        return;
    }
    while (cache_sweep(cache, clock_now_ms(), 1000000))
        ;
    resp_add_int(&c->out, (long long)cache_count_first_byte(cache, (unsigned char)c->db, NULL));
}

int cmd_db_parse_flush_mode(client_t *c, int argc, const char **argv, const size_t *argl)
{
    if (argc > 2 || (argc == 2 && !cmd_is(argv[1], argl[1], "sync") &&
                     !cmd_is(argv[1], argl[1], "async"))) {
        resp_add_error(&c->out, ERR_SYNTAX);
        return -1;
    }
    return 0;
}

/* FLUSHDB [ASYNC|SYNC]: a prefix flush of the database's byte, here and on
 * every member (a database that holds every key here is dropped at once). */
CMD_HANDLER(cmd_flushdb)
{
    if (cmd_db_parse_flush_mode(c, argc, argv, argl) < 0)
        return;
    node_t *n = cmd_node(c);
    char b = (char)c->db;
    if (cache_count_first_byte(n->cache, (unsigned char)b, NULL) == cache_count(n->cache)) {
        cache_flush_all(n->cache);
    } else {
        size_t removed; /* the rest is gone now and swept in later turns */
        cache_flush_prefix_start(n->cache, &b, 1, clock_now_ms(), UINT64_MAX, &removed);
    }
    cmd_flushed_prefix(c, &b, 1);
    resp_add_ok(&c->out);
}

typedef struct pick {
    cache_entry_t *e; /* the last entry visited */
} pick_t;

static void pick_visit(void *ud, cache_entry_t *e)
{
    ((pick_t *)ud)->e = e;
}

/* One entry of the current database at random (NULL: none): a few draws
 * from the whole cache, then a walk to a random position of the database
 * (also when the draws met only keys a pending prefix flush covers). */
static cache_entry_t *db_random(client_t *c)
{
    node_t *n = cmd_node(c);
    unsigned char b = (unsigned char)c->db;
    int64_t now = clock_now_ms();
    for (int tries = 0; tries < 16; tries++) {
        size_t in_db = cache_count_first_byte(n->cache, b, NULL);
        if (in_db == 0)
            return NULL;
        cache_entry_t *e = cache_random(n->cache, now);
        if (!e) /* its draws met only flushed or expired keys: walk */
            break;
        size_t klen;
        const char *k = cache_entry_key(e, &klen);
        if (klen && (unsigned char)k[0] == b)
            return e;
    }
    pick_t p = {NULL};
    size_t skip = (size_t)rand() % cache_count_first_byte(n->cache, b, NULL);
    char prefix = (char)b;
    cache_foreach_prefix(n->cache, &prefix, 1, now, skip + 1, pick_visit, &p);
    return p.e; /* at position skip, or the last live one */
}

CMD_HANDLER(cmd_randomkey)
{
    (void)argc, (void)argv, (void)argl;
    cache_entry_t *e = cmd_serving(c) ? db_random(c) : NULL;
    if (!e) {
        resp_add_null(&c->out, c->proto);
        return;
    }
    size_t klen;
    const char *k = cache_entry_key(e, &klen);
    resp_add_bulk(&c->out, k + 1, klen - 1);
}

/* MOVE key db: a fill of the key in db here, a flush of it in the current
 * database here and on every member. */
CMD_HANDLER(cmd_move)
{
    (void)argc;
    node_t *n = cmd_node(c);
    int db;
    if (int_or_reply(c, argv[2], argl[2], NULL, &db) < 0)
        return;
    if (db < 0 || db >= cmd_db_count(c)) {
        resp_add_error(&c->out, "ERR DB index is out of range");
        return;
    }
    if (db == c->db) {
        resp_add_error(&c->out, "ERR source and destination objects are the same");
        return;
    }
    cache_entry_t *e = cmd_lookup_write(c, argv[1], argl[1]);
    if (!e) {
        resp_add_int(&c->out, 0);
        return;
    }
    char *dst = xmemdup(argv[1], argl[1]);
    dst[0] = (char)db;
    int64_t now = clock_now_ms();
    if (cache_lookup(n->cache, dst, argl[1], now, CACHE_NOTOUCH)) {
        free(dst);
        resp_add_int(&c->out, 0);
        return;
    }
    e = cache_lookup(n->cache, argv[1], argl[1], now, CACHE_NOTOUCH);
    size_t vlen;
    const char *v = cache_entry_value(e, &vlen);
    char *copy = xmemdup(v, vlen);
    int64_t at = cache_entry_expire(e);
    int enc = cache_entry_enc(e);
    cache_delete(n->cache, argv[1], argl[1], now);
    cmd_write_value(c, dst, argl[1], copy, vlen, at, enc);
    cmd_flushed_key(c, argv[1], argl[1]);
    free(copy);
    free(dst);
    resp_add_int(&c->out, 1);
}

/* ---- SWAPDB --------------------------------------------------------------- */

typedef struct swap_collect {
    buf_t recs; /* per entry: klen, vlen, expire, enc, then key and value bytes */
    size_t n;
} swap_collect_t;

typedef struct swap_rec {
    size_t klen, vlen;
    int64_t expire;
    int form; /* type and encoding (cache_entry_form) */
} swap_rec_t;

static void swap_visit(void *ud, cache_entry_t *e)
{
    swap_collect_t *s = ud;
    swap_rec_t r;
    const char *k = cache_entry_key(e, &r.klen);
    const char *v = cache_entry_value(e, &r.vlen);
    r.expire = cache_entry_expire(e);
    r.form = cache_entry_form(e);
    buf_append(&s->recs, (const char *)&r, sizeof(r));
    buf_append(&s->recs, k, r.klen);
    buf_append(&s->recs, v, r.vlen);
    s->n++;
}

/* Copies out every live key of database b, then removes them. */
static void swap_take(cache_t *cache, unsigned char b, int64_t now, swap_collect_t *s)
{
    char prefix = (char)b;
    cache_foreach_prefix(cache, &prefix, 1, now, SIZE_MAX, swap_visit, s);
    cache_flush_prefix(cache, &prefix, 1, now);
}

/* Puts the taken keys back with their first byte set to b. */
static void swap_put(cache_t *cache, unsigned char b, swap_collect_t *s)
{
    const char *p = buf_head(&s->recs);
    for (size_t i = 0; i < s->n; i++) {
        swap_rec_t r;
        memcpy(&r, p, sizeof(r));
        p += sizeof(r);
        char *key = xmemdup(p, r.klen);
        key[0] = (char)b;
        cache_entry_t *e = cache_set(cache, key, r.klen, p + r.klen, r.vlen, r.expire);
        cache_entry_set_form(e, r.form); /* a hash or a set stays one */
        free(key);
        p += r.klen + r.vlen;
    }
    buf_free(&s->recs);
}

/* 1 when n has members, or is configured to (SWAPDB is refused there). */
static int in_cluster(const node_t *n)
{
    return n->cfg->peers.n > 0 || (n->cluster && cluster_member_count(n->cluster) > 0);
}

CMD_HANDLER(cmd_swapdb)
{
    (void)argc;
    node_t *n = cmd_node(c);
    int a, b;
    if (int_or_reply(c, argv[1], argl[1], "ERR invalid first DB index", &a) < 0 ||
        int_or_reply(c, argv[2], argl[2], "ERR invalid second DB index", &b) < 0)
        return;
    if (a < 0 || a >= cmd_db_count(c) || b < 0 || b >= cmd_db_count(c)) {
        resp_add_error(&c->out, "ERR DB index is out of range");
        return;
    }
    if (in_cluster(n)) {
        resp_add_error(&c->out, "ERR SWAPDB is not supported in a cluster: the members' caches "
                                "cannot swap as one step (FLUSHDB both databases instead)");
        return;
    }
    if (a != b) {
        int64_t now = clock_now_ms();
        swap_collect_t sa = {.n = 0}, sb = {.n = 0};
        buf_init(&sa.recs);
        buf_init(&sb.recs);
        swap_take(n->cache, (unsigned char)a, now, &sa);
        swap_take(n->cache, (unsigned char)b, now, &sb);
        swap_put(n->cache, (unsigned char)b, &sa);
        swap_put(n->cache, (unsigned char)a, &sb);
        char pa = (char)a, pb = (char)b;
        flushmark_prefix(n->flushmark, &pa, 1); /* a GETL token of either fails SETL */
        flushmark_prefix(n->flushmark, &pb, 1);
        cmd_after_write(c);
    }
    resp_add_ok(&c->out);
}
