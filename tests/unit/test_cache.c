/* Unit tests for cache.c. Time is the caller's: every test drives its own
 * clock through the 'now' arguments. cache_check() runs after every phase. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"

#define SEED 0x5eed5eed12345678ull

/* Largest advance of the rehash index in one lookup, set or delete: one bucket
 * moved plus at most ten empty ones looked at (cache.h). */
#define REHASH_MAX_STEP 11

/* ----------------------------------------------------------------- helpers */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    /* xorshift64*: deterministic, so a failure replays. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static size_t rnd_below(size_t n)
{
    return (size_t)(rnd() % n);
}

static cache_t *mk(void)
{
    cache_t *c = cache_new(SEED, 0);
    assert_non_null(c);
    assert_int_equal(cache_check(c), 0);
    return c;
}

static size_t fmt(char *buf, size_t cap, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(buf, cap, f, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

static void set_str(cache_t *c, const char *k, const char *v, int64_t exp)
{
    assert_non_null(cache_set(c, k, strlen(k), v, strlen(v), exp));
}

/* The value stored under k (live at now, looked up without touching), or NULL
 * when there is none. Returns a pointer into the entry; *vlen its length. */
static const char *get(cache_t *c, const char *k, size_t klen, int64_t now, size_t *vlen)
{
    cache_entry_t *e = cache_lookup(c, k, klen, now, CACHE_NOTOUCH);
    return e ? cache_entry_value(e, vlen) : NULL;
}

static void assert_value(cache_t *c, const char *k, int64_t now, const char *want)
{
    size_t vlen = 0;
    const char *v = get(c, k, strlen(k), now, &vlen);
    assert_non_null(v);
    assert_int_equal(vlen, strlen(want));
    assert_memory_equal(v, want, vlen);
}

static void assert_absent(cache_t *c, const char *k, int64_t now)
{
    size_t vlen;
    assert_null(get(c, k, strlen(k), now, &vlen));
}

/* Runs cron until no rehash and no deferred frees remain. */
static void settle(cache_t *c, int64_t now)
{
    for (int i = 0; i < 100000; i++) {
        size_t before = cache_used_memory(c);
        cache_cron(c, now, 1000);
        if (!cache_is_rehashing(c) && cache_used_memory(c) == before)
            return;
    }
    fail_msg("cache did not settle");
}

/* Records what on_gone reported. */
typedef struct gone_log {
    size_t n;
    char keys[4096][32];
    int reasons[4096];
} gone_log_t;

static void gone_record(void *ud, const char *key, size_t klen, int reason)
{
    gone_log_t *g = ud;
    assert_true(g->n < 4096);
    assert_true(klen < sizeof(g->keys[0]));
    memcpy(g->keys[g->n], key, klen);
    g->keys[g->n][klen] = '\0';
    g->reasons[g->n] = reason;
    g->n++;
}

/* Collects visited keys as NUL-terminated strings (test keys have no NUL). */
typedef struct key_list {
    size_t n, cap;
    char **keys;
} key_list_t;

static void collect(void *ud, cache_entry_t *e)
{
    key_list_t *l = ud;
    size_t klen;
    const char *k = cache_entry_key(e, &klen);
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->keys = realloc(l->keys, l->cap * sizeof(*l->keys));
        assert_non_null(l->keys);
    }
    l->keys[l->n] = malloc(klen + 1);
    assert_non_null(l->keys[l->n]);
    memcpy(l->keys[l->n], k, klen);
    l->keys[l->n][klen] = '\0';
    l->n++;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Puts the collected keys in order (the cache visits them in hash order). */
static void key_list_sort(key_list_t *l)
{
    qsort(l->keys, l->n, sizeof(*l->keys), str_cmp);
}

static void key_list_free(key_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->keys[i]);
    free(l->keys);
    memset(l, 0, sizeof(*l));
}

static void count_visit(void *ud, cache_entry_t *e)
{
    (void)e;
    (*(size_t *)ud)++;
}

/* ------------------------------------------------------------------- tests */

static void test_set_get(void **state)
{
    (void)state;
    cache_t *c = mk();
    set_str(c, "k", "v", 0);
    assert_int_equal(cache_count(c), 1);
    cache_entry_t *e = cache_lookup(c, "k", 1, 0, CACHE_READ);
    assert_non_null(e);
    size_t klen, vlen;
    assert_memory_equal(cache_entry_key(e, &klen), "k", 1);
    assert_int_equal(klen, 1);
    assert_memory_equal(cache_entry_value(e, &vlen), "v", 1);
    assert_int_equal(vlen, 1);
    assert_int_equal(cache_entry_expire(e), 0);
    assert_null(cache_lookup(c, "x", 1, 0, CACHE_READ));
    assert_null(cache_lookup(c, "x", 1, 0, 0)); /* not counted */
    assert_int_equal(cache_stats(c)->hits, 1);
    assert_int_equal(cache_stats(c)->misses, 1);

    /* Lengths, not NULs, delimit keys and values. */
    assert_non_null(cache_set(c, "a\0b", 3, "x\0y", 3, 0));
    assert_non_null(cache_set(c, "a", 1, "short", 5, 0));
    assert_non_null(cache_set(c, "ab", 2, "", 0, 0));
    assert_non_null(cache_set(c, "", 0, "empty key", 9, 0));
    const char *v = get(c, "a\0b", 3, 0, &vlen);
    assert_non_null(v);
    assert_int_equal(vlen, 3);
    assert_memory_equal(v, "x\0y", 3);
    assert_value(c, "a", 0, "short");
    assert_value(c, "ab", 0, "");
    assert_value(c, "", 0, "empty key");
    assert_null(get(c, "a\0", 2, 0, &vlen));
    assert_int_equal(cache_count(c), 5);
    assert_int_equal(cache_check(c), 0);

    /* A zero length needs no pointer. */
    assert_non_null(cache_set(c, NULL, 0, NULL, 0, 0));
    assert_non_null(cache_lookup(c, NULL, 0, 0, 0));
    assert_value(c, "", 0, "");
    assert_int_equal(cache_delete(c, NULL, 0, 0), 1);
    assert_null(cache_lookup(c, NULL, 0, 0, 0));
    assert_int_equal(cache_flush_prefix(c, NULL, 0, 0), 4);
    assert_int_equal(cache_count(c), 0);
    assert_int_equal(cache_check(c), 0);
    cache_free(c);
    cache_free(NULL);
}

/* The ordered index under insert and delete orders that exercise every
 * rotation: ascending, descending, random; cache_check() verifies the AA
 * invariants and the key order as it goes. */
/* Keys inserted and deleted ascending, descending and at random: the
 * structures stay consistent and every key is found (this once also checked
 * an ordered index's balance). */
static void test_insert_delete_orders(void **state)
{
    (void)state;
    enum { N = 6000, CHECK_EVERY = 300 };
    static int order[N];
    char key[32];
    for (int pass = 0; pass < 9; pass++) {
        cache_t *c = mk();
        int ins = pass / 3, del = pass % 3; /* 0 ascending, 1 descending, 2 random */
        for (int i = 0; i < N; i++)
            order[i] = ins == 0 ? i : ins == 1 ? N - 1 - i : i;
        if (ins == 2)
            for (int i = N - 1; i > 0; i--) {
                int j = (int)rnd_below((size_t)i + 1), t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        for (int i = 0; i < N; i++) {
            size_t kl = fmt(key, sizeof(key), "t%06d", order[i]);
            cache_set(c, key, kl, "v", 1, 0);
            if (i % CHECK_EVERY == 0)
                assert_int_equal(cache_check(c), 0);
        }
        assert_int_equal(cache_check(c), 0);

        key_list_t l = {0};
        cache_foreach_prefix(c, "t", 1, 0, SIZE_MAX, collect, &l);
        assert_int_equal(l.n, N);
        key_list_sort(&l);
        for (int i = 0; i < N; i++) {
            fmt(key, sizeof(key), "t%06d", i);
            assert_string_equal(l.keys[i], key);
        }
        key_list_free(&l);

        for (int i = 0; i < N; i++)
            order[i] = del == 0 ? i : del == 1 ? N - 1 - i : i;
        if (del == 2)
            for (int i = N - 1; i > 0; i--) {
                int j = (int)rnd_below((size_t)i + 1), t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        for (int i = 0; i < N; i++) {
            size_t kl = fmt(key, sizeof(key), "t%06d", order[i]);
            assert_int_equal(cache_delete(c, key, kl, 0), 1);
            if (i % CHECK_EVERY == 0)
                assert_int_equal(cache_check(c), 0);
        }
        assert_int_equal(cache_count(c), 0);
        assert_int_equal(cache_check(c), 0);
        cache_free(c);
    }
}

/* Order of the lru list, most recent first (cache_foreach walks it). */
static void assert_lru_order(cache_t *c, const char **want, size_t n)
{
    key_list_t l = {0};
    cache_foreach(c, 0, collect, &l);
    assert_int_equal(l.n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(l.keys[i], want[i]);
    key_list_free(&l);
}

static void test_replace(void **state)
{
    (void)state;
    cache_t *c = mk();
    char big[1000], v100[100];
    memset(big, 'B', sizeof(big));
    memset(v100, 'a', sizeof(v100));

    cache_entry_t *e1 = cache_set(c, "k", 1, v100, sizeof(v100), 0);
    set_str(c, "j", "other", 0);
    size_t used = cache_used_memory(c);

    /* Same size: in place, same allocation, memory unchanged, moved to head. */
    memset(v100, 'b', sizeof(v100));
    cache_entry_t *e2 = cache_set(c, "k", 1, v100, sizeof(v100), 0);
    assert_ptr_equal(e1, e2);
    assert_int_equal(cache_used_memory(c), used);
    assert_int_equal(cache_count(c), 2);
    size_t vlen;
    const char *v = get(c, "k", 1, 0, &vlen);
    assert_int_equal(vlen, sizeof(v100));
    assert_memory_equal(v, v100, sizeof(v100));
    assert_lru_order(c, (const char *[]){"k", "j"}, 2);
    assert_int_equal(cache_check(c), 0);

    /* Larger: a new entry, memory up by at least the growth, moved to head. */
    set_str(c, "j", "other2", 0);
    assert_lru_order(c, (const char *[]){"j", "k"}, 2);
    cache_entry_t *e3 = cache_set(c, "k", 1, big, sizeof(big), 0);
    assert_ptr_not_equal(e3, e1);
    assert_true(cache_used_memory(c) >= used + sizeof(big) - 2 * sizeof(v100));
    assert_int_equal(cache_count(c), 2);
    v = get(c, "k", 1, 0, &vlen);
    assert_int_equal(vlen, sizeof(big));
    assert_memory_equal(v, big, sizeof(big));
    assert_lru_order(c, (const char *[]){"k", "j"}, 2);
    assert_int_equal(cache_check(c), 0);

    /* Much smaller: not kept in the big allocation, memory falls back. */
    size_t used_big = cache_used_memory(c);
    set_str(c, "k", "tiny", 0);
    assert_true(cache_used_memory(c) + 800 < used_big);
    assert_value(c, "k", 0, "tiny");
    assert_int_equal(cache_check(c), 0);

    /* Expire times follow replacements, in place and reallocated. */
    set_str(c, "k", "tinx", 500);
    assert_int_equal(cache_expires_count(c), 1);
    cache_entry_t *e4 = cache_set(c, "k", 1, big, sizeof(big), 700);
    assert_int_equal(cache_entry_expire(e4), 700);
    assert_int_equal(cache_expires_count(c), 1);
    assert_int_equal(cache_check(c), 0);
    cache_set(c, "k", 1, big, sizeof(big), 0);
    assert_int_equal(cache_expires_count(c), 0);
    assert_int_equal(cache_check(c), 0);

    /* Reallocating replacements deep inside the tree and the heap. */
    char key[32];
    for (int i = 0; i < 2000; i++) {
        size_t kl = fmt(key, sizeof(key), "r%05d", i);
        cache_set(c, key, kl, "x", 1, i % 3 ? 1000 + i : 0);
    }
    for (int i = 0; i < 2000; i += 7) {
        size_t kl = fmt(key, sizeof(key), "r%05d", i);
        cache_set(c, key, kl, big, 100 + (size_t)i % 900, i % 2 ? 5000 - i : 0);
    }
    assert_int_equal(cache_count(c), 2002);
    assert_int_equal(cache_check(c), 0);
    for (int i = 0; i < 2000; i++) {
        size_t kl = fmt(key, sizeof(key), "r%05d", i);
        v = get(c, key, kl, 0, &vlen);
        assert_non_null(v);
        assert_int_equal(vlen, i % 7 ? 1 : 100 + (size_t)i % 900);
    }
    cache_free(c);
}

static void test_delete(void **state)
{
    (void)state;
    cache_t *c = mk();
    assert_int_equal(cache_delete(c, "nothing", 7, 0), 0);
    set_str(c, "a", "1", 0);
    set_str(c, "ab", "2", 0);
    set_str(c, "abc", "3", 100);
    assert_int_equal(cache_delete(c, "ab", 2, 0), 1);
    assert_int_equal(cache_delete(c, "ab", 2, 0), 0);
    assert_int_equal(cache_delete(c, "abcd", 4, 0), 0);
    assert_absent(c, "ab", 0);
    assert_value(c, "a", 0, "1");
    assert_value(c, "abc", 0, "3");
    assert_int_equal(cache_check(c), 0);
    assert_int_equal(cache_delete(c, "abc", 3, 0), 1);
    assert_int_equal(cache_expires_count(c), 0);
    assert_int_equal(cache_delete(c, "a", 1, 0), 1);
    assert_int_equal(cache_count(c), 0);
    assert_int_equal(cache_check(c), 0);
    cache_free(c);
}

static void test_ttl_lazy(void **state)
{
    (void)state;
    cache_t *c = mk();
    gone_log_t *g = calloc(1, sizeof(*g));
    cache_on_gone(c, gone_record, g);

    set_str(c, "a", "1", 1000);
    set_str(c, "b", "2", 1000);
    set_str(c, "p", "3", 1000);
    assert_int_equal(cache_expires_count(c), 3);
    assert_value(c, "a", 999, "1");
    assert_value(c, "a", 1000, "1"); /* at its time a key still lives */
    assert_null(cache_lookup(c, "a", 1, 1001, CACHE_READ));
    assert_int_equal(cache_stats(c)->expired, 1);
    assert_int_equal(cache_stats(c)->misses, 1);
    assert_int_equal(cache_stats(c)->hits, 0);
    assert_int_equal(g->n, 1);
    assert_string_equal(g->keys[0], "a");
    assert_int_equal(g->reasons[0], CACHE_GONE_EXPIRED);
    assert_int_equal(cache_count(c), 2);

    /* Deleting an expired key removes it but reports nothing deleted. */
    assert_int_equal(cache_delete(c, "b", 1, 5000), 0);
    assert_int_equal(cache_stats(c)->expired, 2);
    assert_int_equal(g->n, 2);
    assert_int_equal(cache_count(c), 1);

    /* Persist, then expire again. */
    cache_entry_t *e = cache_lookup(c, "p", 1, 0, 0);
    cache_set_expire(c, e, 0);
    assert_int_equal(cache_expires_count(c), 0);
    assert_value(c, "p", INT64_MAX, "3");
    e = cache_lookup(c, "p", 1, 0, 0);
    cache_set_expire(c, e, 2000);
    cache_set_expire(c, e, 2000); /* same time: nothing changes */
    assert_int_equal(cache_expires_count(c), 1);
    assert_int_equal(cache_check(c), 0);

    /* Iterators skip expired entries without removing them. */
    size_t n = 0;
    cache_foreach(c, 3000, count_visit, &n);
    assert_int_equal(n, 0);
    cache_foreach_prefix(c, "", 0, 3000, SIZE_MAX, count_visit, &n);
    assert_int_equal(n, 0);
    assert_int_equal(cache_count(c), 1);
    cache_foreach(c, 1500, count_visit, &n);
    assert_int_equal(n, 1);

    /* A time already past (or negative) expires at once. */
    set_str(c, "neg", "x", -5);
    assert_absent(c, "neg", 0);
    assert_int_equal(cache_stats(c)->expired, 3);
    assert_int_equal(cache_check(c), 0);
    cache_free(c);
    free(g);
}

static void test_ttl_active(void **state)
{
    (void)state;
    cache_t *c = mk();
    gone_log_t *g = calloc(1, sizeof(*g));
    cache_on_gone(c, gone_record, g);
    char key[32];

    for (int i = 0; i < 1000; i++) {
        size_t kl = fmt(key, sizeof(key), "t%d", i);
        cache_set(c, key, kl, "v", 1, 1000 + (i * 7919) % 1000); /* shuffled times */
        kl = fmt(key, sizeof(key), "p%d", i);
        cache_set(c, key, kl, "v", 1, 0);
    }
    assert_int_equal(cache_expires_count(c), 1000);

    /* Before any cron, no lookup ever returns an entry past its time. */
    for (int64_t now = 990; now <= 2010; now += 17) {
        for (int i = 0; i < 1000; i += 13) {
            size_t kl = fmt(key, sizeof(key), "t%d", i);
            cache_entry_t *e = cache_lookup(c, key, kl, now, CACHE_NOTOUCH);
            int64_t at = 1000 + (i * 7919) % 1000;
            if (now > at)
                assert_null(e);
            else
                assert_non_null(e);
        }
        assert_int_equal(cache_check(c), 0);
    }

    cache_t *c2 = mk();
    for (int i = 0; i < 1000; i++) {
        size_t kl = fmt(key, sizeof(key), "t%d", i);
        cache_set(c2, key, kl, "v", 1, 1000 + i);
        kl = fmt(key, sizeof(key), "p%d", i);
        cache_set(c2, key, kl, "v", 1, 0);
    }
    cache_on_gone(c2, gone_record, g);
    g->n = 0;
    cache_cron(c2, 1500, 1000000);
    assert_int_equal(g->n, 500); /* 1000..1499 */
    for (size_t i = 0; i < g->n; i++)
        assert_int_equal(g->reasons[i], CACHE_GONE_EXPIRED);
    assert_int_equal(cache_count(c2), 1500);
    assert_int_equal(cache_expires_count(c2), 500);
    assert_int_equal(cache_stats(c2)->expired, 500);
    assert_int_equal(cache_check(c2), 0);
    for (int i = 0; i < 1000; i++) {
        size_t kl = fmt(key, sizeof(key), "t%d", i);
        size_t vlen;
        const char *v = get(c2, key, kl, 1500, &vlen);
        if (i < 500)
            assert_null(v);
        else
            assert_non_null(v);
    }

    /* With no time budget at all, cron still expires a batch per call. */
    int calls = 0;
    while (cache_expires_count(c2) > 0) {
        size_t before = cache_expires_count(c2);
        cache_cron(c2, 100000, 0);
        assert_true(cache_expires_count(c2) < before);
        assert_int_equal(cache_check(c2), 0);
        calls++;
    }
    assert_true(calls >= 2 && calls <= 500 / 64 + 1);
    assert_int_equal(cache_count(c2), 1000);
    cache_free(c2);
    cache_free(c);
    free(g);
}

static void test_lru_eviction(void **state)
{
    (void)state;
    cache_t *c = mk();
    gone_log_t *g = calloc(1, sizeof(*g));
    cache_on_gone(c, gone_record, g);
    char key[32], val[100];
    memset(val, 'v', sizeof(val));

    for (int i = 0; i < 100; i++) {
        size_t kl = fmt(key, sizeof(key), "k%d", i);
        cache_set(c, key, kl, val, sizeof(val), 0);
    }
    assert_int_equal(cache_evict(c), 0); /* no limit */
    /* k0 is touched and survives; k1 is looked at without touching; a set
     * touches k2. */
    assert_non_null(cache_lookup(c, "k0", 2, 0, CACHE_READ));
    assert_non_null(cache_lookup(c, "k1", 2, 0, CACHE_NOTOUCH));
    set_str(c, "k2", "replaced", 0);

    size_t used = cache_used_memory(c);
    size_t per = used / 100;
    cache_set_maxmemory(c, used - 10 * per);
    assert_int_equal(cache_maxmemory(c), used - 10 * per);
    size_t n = cache_evict(c);
    assert_true(n >= 10 && n <= 12);
    assert_int_equal(g->n, n);
    assert_int_equal(cache_stats(c)->evicted, n);
    assert_true(cache_used_memory(c) <= cache_maxmemory(c));
    /* Least recently used first: k1, k3, k4, ... */
    assert_string_equal(g->keys[0], "k1");
    for (size_t i = 1; i < n; i++) {
        char want[32];
        fmt(want, sizeof(want), "k%zu", i + 2);
        assert_string_equal(g->keys[i], want);
        assert_int_equal(g->reasons[i], CACHE_GONE_EVICTED);
    }
    size_t vlen;
    assert_non_null(get(c, "k0", 2, 0, &vlen));
    assert_int_equal(vlen, sizeof(val));
    assert_value(c, "k2", 0, "replaced");
    assert_int_equal(cache_check(c), 0);

    /* A limit below the empty cache evicts everything and stops. */
    cache_set_maxmemory(c, 1);
    assert_int_equal(cache_evict(c), 100 - n);
    assert_int_equal(cache_count(c), 0);
    assert_int_equal(cache_check(c), 0);
    assert_int_equal(cache_evict(c), 0);
    cache_free(c);
    free(g);
}

/* The other maxmemory-policy values (cache.h): what each may evict, in
 * which order where it is exact, and that noeviction and a volatile policy
 * with nothing volatile stop over the limit. */
static void test_eviction_policies(void **state)
{
    (void)state;
    char key[32], val[100];
    memset(val, 'v', sizeof(val));
    assert_int_equal(cache_policy_parse("VOLATILE-TTL", 12), CACHE_POLICY_VOLATILE_TTL);
    assert_int_equal(cache_policy_parse("lru", 3), -1);
    for (int p = 0; p < CACHE_POLICY_COUNT; p++) {
        const char *name = cache_policy_name(p);
        assert_int_equal(cache_policy_parse(name, strlen(name)), p);
        cache_t *c = mk();
        assert_int_equal(cache_policy(c), CACHE_POLICY_ALLKEYS_LRU);
        cache_set_policy(c, p);
        gone_log_t *g = calloc(1, sizeof(*g));
        cache_on_gone(c, gone_record, g);
        /* v0..v49 expire later the higher their number (written out of
         * order); p0..p49 have no expire time. */
        for (int i = 0; i < 50; i++) {
            int j = (i * 7) % 50;
            size_t kl = fmt(key, sizeof(key), "v%d", j);
            cache_set(c, key, kl, val, sizeof(val), 1000000 + j);
            kl = fmt(key, sizeof(key), "p%d", i);
            cache_set(c, key, kl, val, sizeof(val), 0);
        }
        size_t used = cache_used_memory(c), per = used / 100;
        cache_set_maxmemory(c, used - 10 * per);
        size_t n = cache_evict(c);
        int vol = p >= CACHE_POLICY_VOLATILE_LRU && p <= CACHE_POLICY_VOLATILE_TTL;
        if (p == CACHE_POLICY_NOEVICTION) {
            assert_int_equal(n, 0);
            assert_true(cache_used_memory(c) > cache_maxmemory(c));
        } else {
            assert_true(n >= 10 && n <= 12);
            assert_true(cache_used_memory(c) <= cache_maxmemory(c));
        }
        assert_int_equal(g->n, n);
        for (size_t i = 0; i < n; i++) {
            if (vol)
                assert_int_equal(g->keys[i][0], 'v');
            if (p == CACHE_POLICY_VOLATILE_TTL) {
                char want[32];
                fmt(want, sizeof(want), "v%zu", i);
                assert_string_equal(g->keys[i], want);
            }
        }
        assert_int_equal(cache_check(c), 0);
        /* Nothing volatile left: a volatile policy stops over the limit. */
        cache_set_maxmemory(c, 1);
        n += cache_evict(c);
        if (vol) {
            assert_int_equal(n, 50);
            assert_int_equal(cache_count(c), 50);
        } else if (p != CACHE_POLICY_NOEVICTION) {
            assert_int_equal(cache_count(c), 0);
        }
        assert_int_equal(cache_check(c), 0);
        cache_free(c);
        free(g);
    }
}

/* cache_set_in_place: a value that fits the entry's allocation replaces it
 * there (the same entry, the same memory, its new expire time); one that
 * does not changes nothing. */
static void test_set_in_place(void **state)
{
    (void)state;
    cache_t *c = mk();
    set_str(c, "k", "12", 0);
    cache_entry_t *e = cache_lookup(c, "k", 1, 0, 0);
    size_t used = cache_used_memory(c);
    assert_ptr_equal(cache_set_in_place(c, e, "13", 2, 0), e);
    assert_int_equal(cache_used_memory(c), used); /* the same allocation */
    assert_ptr_equal(cache_set_in_place(c, e, "14", 2, 5000), e);
    assert_value(c, "k", 0, "14");
    assert_int_equal(cache_entry_expire(cache_lookup(c, "k", 1, 0, 0)), 5000);
    char big[4096];
    memset(big, 'b', sizeof(big));
    e = cache_lookup(c, "k", 1, 0, 0);
    assert_null(cache_set_in_place(c, e, big, sizeof(big), 0));
    assert_value(c, "k", 0, "14");
    assert_int_equal(cache_check(c), 0);
    cache_free(c);
}

/* LFU data: a new entry counts 5, its first access 6 (then more slowly),
 * and a replaced value keeps its key's count. */
static void test_lfu_counter(void **state)
{
    (void)state;
    cache_t *c = mk();
    cache_set_policy(c, CACHE_POLICY_ALLKEYS_LFU);
    set_str(c, "k", "v", 0);
    cache_entry_t *e = cache_lookup(c, "k", 1, 0, CACHE_NOTOUCH);
    assert_int_equal(cache_entry_freq(c, e), 5);
    e = cache_lookup(c, "k", 1, 0, CACHE_READ);
    assert_int_equal(cache_entry_freq(c, e), 6);
    for (int i = 0; i < 2000; i++)
        e = cache_lookup(c, "k", 1, 0, CACHE_READ);
    unsigned f = cache_entry_freq(c, e);
    assert_true(f > 6 && f < 127);
    set_str(c, "k", "a longer value than before, so that the entry is reallocated", 0);
    e = cache_lookup(c, "k", 1, 0, CACHE_NOTOUCH);
    unsigned g = cache_entry_freq(c, e);
    assert_true(g >= f);
    /* One decay step per idle minute. */
    e = cache_lookup(c, "k", 1, 3 * 60000, CACHE_NOTOUCH);
    assert_int_equal(cache_entry_freq(c, e), g - 3);
    cache_entry_set_freq(c, e, 200);
    assert_int_equal(cache_entry_freq(c, e), 127);
    assert_int_equal(cache_check(c), 0);
    cache_free(c);
}

static void test_memory_accounting(void **state)
{
    (void)state;
    cache_t *c = mk();
    const size_t baseline = cache_used_memory(c);
    assert_true(baseline > 0); /* the empty table */
    char key[32], val[3000];
    memset(val, 'm', sizeof(val));
    enum { N = 20000 };

    size_t payload = 0;
    for (int i = 0; i < N; i++) {
        size_t kl = fmt(key, sizeof(key), "mem:%d", i);
        size_t vl = (size_t)(i * 37) % sizeof(val);
        size_t before = cache_used_memory(c);
        cache_table_info_t ti0, ti1;
        cache_table_info(c, &ti0);
        cache_set(c, key, kl, val, vl, i % 4 ? 0 : 1000000 + i);
        cache_table_info(c, &ti1);
        /* A set that finishes a rehash also frees the old bucket array. */
        size_t freed = ti0.rehash_to && !ti1.rehash_to ? ti0.buckets * sizeof(void *) + 4096 : 0;
        assert_true(cache_used_memory(c) + freed >= before + kl + vl);
        payload += kl + vl;
    }
    assert_true(cache_used_memory(c) > payload);
    assert_int_equal(cache_check(c), 0);

    for (int i = 0; i < N; i++) {
        size_t kl = fmt(key, sizeof(key), "mem:%d", i);
        size_t before = cache_used_memory(c);
        assert_int_equal(cache_delete(c, key, kl, 0), 1);
        assert_true(cache_used_memory(c) < before);
    }
    assert_int_equal(cache_count(c), 0);
    assert_int_equal(cache_expires_count(c), 0);
    settle(c, 0);
    assert_int_equal(cache_used_memory(c), baseline);
    assert_int_equal(cache_check(c), 0);
    cache_free(c);
}

/* Bytes per key for 16-byte keys and 100-byte values: the target is no more
 * than redis-server 7 (about 200 at 1M keys). The header is one cache line,
 * so this holds with room to spare even at 100k keys, where the bucket array
 * costs more per key than at 1M. */
static void test_memory_per_key(void **state)
{
    (void)state;
    cache_t *c = mk();
    char key[17], val[100];
    memset(val, 'v', sizeof(val));
    enum { N = 100000 };
    for (int i = 0; i < N; i++) {
        fmt(key, sizeof(key), "key:%012d", i);
        cache_set(c, key, 16, val, sizeof(val), 0);
    }
    settle(c, 0);
    double per = (double)cache_used_memory(c) / N;
    print_message("bytes per key (16-byte keys, 100-byte values, %d keys): %.1f\n", N, per);
    /* 69-byte header (8 of it the version ordered writes need), key and value
     * in one allocation, plus the table: redis-server takes about 208. */
    assert_true(per <= 212.0);
    cache_free(c);
}

/* Follows a cache's rehashing across calls: each call may advance the rehash
 * index by at most REHASH_MAX_STEP, so a rehash spans many calls. */
typedef struct rehash_watch {
    cache_table_info_t last; /* shape after the previous call */
    size_t calls;            /* calls made during the current rehash */
    size_t finished;         /* rehashes seen to complete */
} rehash_watch_t;

static void watch(cache_t *c, rehash_watch_t *w)
{
    cache_table_info_t now;
    cache_table_info(c, &now);
    if (w->last.rehash_to) {
        if (now.buckets == w->last.buckets && now.rehash_to == w->last.rehash_to) {
            assert_true(now.rehash_idx >= w->last.rehash_idx);
            assert_true(now.rehash_idx - w->last.rehash_idx <= REHASH_MAX_STEP);
        } else {
            /* Done: the target became the main table. The last non-empty
             * bucket is past the middle of the old table (nearly surely),
             * so the rehash took at least this many calls. */
            assert_int_equal(now.buckets, w->last.rehash_to);
            assert_true(w->calls + 1 >= w->last.buckets / (2 * REHASH_MAX_STEP));
            w->finished++;
            w->calls = 0;
        }
    }
    if (now.rehash_to)
        w->calls++;
    w->last = now;
}

static void test_incremental_rehash(void **state)
{
    (void)state;
    cache_t *c = mk();
    char key[32], old[32];
    enum { N = 200000 };
    rehash_watch_t w = {0};
    size_t full_checks = 0, during = 0;
    int full_lookup_done = 0;

    for (int i = 0; i < N; i++) {
        size_t kl = fmt(key, sizeof(key), "key:%d", i);
        cache_set(c, key, kl, key, kl, 0);
        watch(c, &w);
        if (!w.last.rehash_to)
            continue;

        /* While rehashing, the new key and an older one are found... */
        size_t vlen;
        const char *v = get(c, key, kl, 0, &vlen);
        watch(c, &w);
        assert_non_null(v);
        assert_memory_equal(v, key, kl);
        size_t ol = fmt(old, sizeof(old), "key:%zu", rnd_below((size_t)i + 1));
        v = get(c, old, ol, 0, &vlen);
        watch(c, &w);
        assert_non_null(v);
        assert_memory_equal(v, old, ol);

        /* ...and every key is in its right bucket: at every step of the
         * small rehashes, at a few points of the large ones. */
        if (w.last.buckets <= 4096 || w.calls % (w.last.buckets / 4) == 0) {
            assert_int_equal(cache_check(c), 0);
            full_checks++;
        }

        /* Once, halfway through a large rehash: every key so far, through
         * the public lookup (which itself moves the rehash on). */
        if (w.last.buckets == 65536 && w.last.rehash_idx >= 32768 && !full_lookup_done) {
            full_lookup_done = 1;
            for (int j = 0; j <= i; j++) {
                size_t jl = fmt(old, sizeof(old), "key:%d", j);
                during += cache_is_rehashing(c);
                v = get(c, old, jl, 0, &vlen);
                watch(c, &w);
                assert_non_null(v);
                assert_memory_equal(v, old, jl);
            }
        }
    }
    assert_true(w.finished >= 15); /* 4 -> 8 -> ... -> 2^18 */
    assert_true(full_checks > 1000);
    assert_true(full_lookup_done && during > 1000);

    /* Delete all but 1000: cron shrinks the table, in bounded steps, and the
     * survivors stay findable throughout. */
    for (int i = 1000; i < N; i++) {
        size_t kl = fmt(key, sizeof(key), "key:%d", i);
        assert_int_equal(cache_delete(c, key, kl, 0), 1);
    }
    cache_table_info_t ti;
    cache_table_info(c, &ti);
    assert_int_equal(ti.rehash_to, 0); /* deletes never start a resize */
    size_t big = ti.buckets;
    int crons = 0;
    do {
        cache_cron(c, 0, 0);
        crons++;
        assert_int_equal(cache_check(c), 0);
        for (int i = 0; i < 1000; i += 97) {
            size_t kl = fmt(key, sizeof(key), "key:%d", i);
            size_t vlen;
            assert_non_null(get(c, key, kl, 0, &vlen));
        }
    } while (cache_is_rehashing(c));
    cache_table_info(c, &ti);
    assert_true(ti.buckets < big);
    assert_true(ti.buckets >= 1000);
    assert_true(crons > 1);
    assert_int_equal(cache_count(c), 1000);
    cache_free(c);
}

/* A site map: sn:/s<0-11>/p<0-9>/n<0-99>, 1000 keys under each section. */
static void site_map(cache_t *c)
{
    char key[64];
    for (int s = 0; s < 12; s++)
        for (int p = 0; p < 10; p++)
            for (int n = 0; n < 100; n++) {
                size_t kl = fmt(key, sizeof(key), "sn:/s%d/p%d/n%d", s, p, n);
                cache_set(c, key, kl, "page", 4, 0);
            }
}

/* The counts by first key byte (per-database DBSIZE and INFO keyspace)
 * follow sets, expire changes, deletes, prefix flushes, expiry and
 * cache_flush_all. */
static void test_count_first_byte(void **state)
{
    (void)state;
    cache_t *c = mk();
    size_t exp;
    set_str(c, "\001a", "v", 0);
    set_str(c, "\001b", "v", 500);
    set_str(c, "\002a", "v", 0);
    set_str(c, "\001a", "replaced", 700); /* same key: counted once, now with a time */
    assert_int_equal(cache_count_first_byte(c, 1, &exp), 2);
    assert_int_equal(exp, 2);
    assert_int_equal(cache_count_first_byte(c, 2, &exp), 1);
    assert_int_equal(exp, 0);
    assert_int_equal(cache_count_first_byte(c, 0, NULL), 0);
    assert_int_equal(cache_delete(c, "\001a", 2, 0), 1);
    assert_int_equal(cache_count_first_byte(c, 1, &exp), 1);
    assert_int_equal(exp, 1);
    assert_int_equal(cache_check(c), 0);
    assert_absent(c, "\001b", 1000); /* expired: lazily removed */
    assert_int_equal(cache_count_first_byte(c, 1, &exp), 0);
    assert_int_equal(exp, 0);
    assert_int_equal(cache_flush_prefix(c, "\002", 1, 0), 1);
    assert_int_equal(cache_count_first_byte(c, 2, NULL), 0);
    set_str(c, "\003x", "v", 900);
    cache_flush_all(c);
    assert_int_equal(cache_count_first_byte(c, 3, &exp), 0);
    assert_int_equal(exp, 0);
    assert_int_equal(cache_check(c), 0);
    cache_free(c);
}

/* A prefix that covers every entry (FLUSHPREFIX "", FLUSHDB of the only
 * database in use) drops the table at once, as FLUSHALL, and still counts
 * only the live entries; one entry outside it, or newer than the flush,
 * sends it down the ordered walk. */
static int all_changes;
static void count_all_changes(void *ud, int kind, const char *key, size_t klen)
{
    (void)ud, (void)key, (void)klen;
    all_changes += kind == CACHE_CHANGE_ALL;
}

static void test_flush_prefix_covering_everything(void **state)
{
    (void)state;
    cache_t *c = mk();
    cache_on_change(c, count_all_changes, NULL);
    char key[32];
    for (int i = 0; i < 5000; i++) {
        size_t kl = fmt(key, sizeof(key), "\001k%d", i);
        assert_non_null(cache_set(c, key, kl, "v", 1, i < 3 ? 500 : (i < 10 ? 5000 : 0)));
    }
    all_changes = 0;
    /* At 1000 three entries have expired, unreaped: not counted. */
    assert_int_equal(cache_flush_prefix(c, "\001", 1, 1000), 4997);
    assert_int_equal(all_changes, 1);
    assert_int_equal(cache_count(c), 0);
    assert_int_equal(cache_count_first_byte(c, 1, NULL), 0);
    assert_int_equal(cache_check(c), 0);
    cache_cron(c, 1000, 100000); /* frees what the flush left */
    assert_int_equal(cache_check(c), 0);

    /* One key in another database: the walk, and that key stays. */
    set_str(c, "\001a", "1", 0);
    set_str(c, "\002b", "2", 0);
    all_changes = 0;
    assert_int_equal(cache_flush_prefix(c, "\001", 1, 0), 1);
    assert_int_equal(all_changes, 0);
    assert_value(c, "\002b", 0, "2");

    /* An entry newer than the flush stays, so no shortcut. */
    cache_entry_t *e = cache_set(c, "\002c", 2, "3", 1, 0);
    cache_entry_set_version(c, e, 100);
    assert_int_equal(cache_flush_prefix_below(c, "", 0, 0, 50), 1);
    assert_value(c, "\002c", 0, "3");
    assert_int_equal(cache_flush_prefix_below(c, "", 0, 0, 101), 1);
    assert_int_equal(cache_count(c), 0);
    assert_int_equal(cache_check(c), 0);
    cache_free(c);
}

static void test_flush_prefix(void **state)
{
    (void)state;
    cache_t *c = mk();
    site_map(c);
    set_str(c, "sn:/s1", "section without slash", 0);
    set_str(c, "sn:/s1/", "the section itself", 0);
    assert_int_equal(cache_count(c), 12002);

    assert_int_equal(cache_flush_prefix(c, "sn:/s1/", 7, 0), 1001);
    assert_int_equal(cache_count(c), 11001);
    assert_int_equal(cache_check(c), 0);
    char key[64];
    for (int s = 0; s < 12; s++)
        for (int p = 0; p < 10; p++)
            for (int n = 0; n < 100; n++) {
                size_t kl = fmt(key, sizeof(key), "sn:/s%d/p%d/n%d", s, p, n);
                size_t vlen;
                const char *v = get(c, key, kl, 0, &vlen);
                if (s == 1)
                    assert_null(v);
                else
                    assert_non_null(v);
            }
    assert_value(c, "sn:/s1", 0, "section without slash");
    assert_absent(c, "sn:/s1/", 0);

    /* A deeper subtree, and prefixes that match nothing. */
    assert_int_equal(cache_flush_prefix(c, "sn:/s10/p3/", 11, 0), 100);
    assert_int_equal(cache_flush_prefix(c, "sn:/s10/p3/", 11, 0), 0);
    assert_int_equal(cache_flush_prefix(c, "sn:/s99", 7, 0), 0);
    assert_int_equal(cache_flush_prefix(c, "\xff\xff", 2, 0), 0);
    assert_int_equal(cache_flush_prefix(c, "a", 1, 0), 0);
    assert_int_equal(cache_count(c), 10901);
    assert_int_equal(cache_check(c), 0);

    /* Bytes above 0x7f and NUL bytes order as unsigned bytes. */
    assert_non_null(cache_set(c, "x\xff", 2, "1", 1, 0));
    assert_non_null(cache_set(c, "x\xff\xff", 3, "2", 1, 0));
    static const char xffa[] = {'x', (char)0xff, 'a'};
    assert_non_null(cache_set(c, xffa, 3, "3", 1, 0));
    assert_non_null(cache_set(c, "x\xfe", 2, "4", 1, 0));
    assert_non_null(cache_set(c, "y", 1, "5", 1, 0));
    assert_non_null(cache_set(c, "n\0a", 3, "6", 1, 0));
    assert_non_null(cache_set(c, "n\0b", 3, "7", 1, 0));
    assert_non_null(cache_set(c, "n", 1, "8", 1, 0));
    assert_non_null(cache_set(c, "n\1", 2, "9", 1, 0));
    assert_int_equal(cache_flush_prefix(c, "x\xff", 2, 0), 3);
    assert_int_equal(cache_flush_prefix(c, "n\0", 2, 0), 2);
    assert_value(c, "x\xfe", 0, "4");
    assert_value(c, "y", 0, "5");
    assert_value(c, "n", 0, "8");
    assert_value(c, "n\1", 0, "9");
    assert_int_equal(cache_check(c), 0);

    /* Expired entries under the prefix go too, neither counted nor reported
     * as expired: the flush took them. */
    gone_log_t *g = calloc(1, sizeof(*g));
    cache_on_gone(c, gone_record, g);
    set_str(c, "ttl/a", "1", 100);
    set_str(c, "ttl/b", "2", 300);
    set_str(c, "ttl/c", "3", 0);
    assert_int_equal(cache_flush_prefix(c, "ttl/", 4, 200), 2);
    assert_int_equal(g->n, 0);
    assert_int_equal(cache_stats(c)->expired, 0);
    assert_int_equal(cache_expires_count(c), 0);
    assert_int_equal(cache_check(c), 0);

    /* The empty prefix is every key. */
    size_t all = cache_count(c);
    assert_int_equal(cache_flush_prefix(c, "", 0, 0), all);
    assert_int_equal(cache_count(c), 0);
    assert_int_equal(cache_flush_prefix(c, "", 0, 0), 0);
    assert_int_equal(cache_check(c), 0);
    cache_free(c);
    free(g);
}

static void test_foreach_prefix(void **state)
{
    (void)state;
    cache_t *c = mk();
    site_map(c);
    set_str(c, "sn:/s2/p3/n50x", "expiring", 10);

    key_list_t l = {0};
    cache_foreach_prefix(c, "sn:/s2/p3/", 10, 100, SIZE_MAX, collect, &l);
    assert_int_equal(l.n, 100); /* the expired one is skipped */
    key_list_sort(&l);
    for (size_t i = 1; i < l.n; i++)
        assert_true(strcmp(l.keys[i - 1], l.keys[i]) < 0);
    assert_string_equal(l.keys[0], "sn:/s2/p3/n0");
    assert_string_equal(l.keys[1], "sn:/s2/p3/n1");
    assert_string_equal(l.keys[2], "sn:/s2/p3/n10");
    key_list_free(&l);

    cache_foreach_prefix(c, "sn:/s2/p3/", 10, 0, SIZE_MAX, collect, &l);
    assert_int_equal(l.n, 101);
    key_list_free(&l);

    cache_foreach_prefix(c, "sn:/s2/", 7, 0, 25, collect, &l);
    assert_int_equal(l.n, 25);
    for (size_t i = 0; i < l.n; i++)
        assert_memory_equal(l.keys[i], "sn:/s2/", 7);
    key_list_free(&l);

    cache_foreach_prefix(c, "sn:/s2/", 7, 0, 0, collect, &l);
    assert_int_equal(l.n, 0);
    cache_foreach_prefix(c, "zzz", 3, 0, SIZE_MAX, collect, &l);
    assert_int_equal(l.n, 0);

    cache_foreach_prefix(c, "", 0, 100, SIZE_MAX, collect, &l);
    assert_int_equal(l.n, 12000);
    key_list_sort(&l);
    for (size_t i = 1; i < l.n; i++)
        assert_true(strcmp(l.keys[i - 1], l.keys[i]) < 0);
    key_list_free(&l);
    cache_free(c);
}

static void test_flush_all_deferred(void **state)
{
    (void)state;
    cache_t *c = mk();
    const size_t baseline = cache_used_memory(c);
    char key[32], val[200];
    memset(val, 'f', sizeof(val));
    enum { N = 5000 };
    for (int i = 0; i < N; i++) {
        size_t kl = fmt(key, sizeof(key), "f%d", i);
        cache_set(c, key, kl, val, sizeof(val), i % 2 ? 0 : 1000);
    }
    size_t full = cache_used_memory(c);

    assert_int_equal(cache_flush_all(c), N);
    assert_int_equal(cache_count(c), 0);
    assert_int_equal(cache_expires_count(c), 0);
    assert_false(cache_is_rehashing(c));
    assert_absent(c, "f1", 0);
    size_t n = 0;
    cache_foreach(c, 0, count_visit, &n);
    assert_int_equal(n, 0);
    /* The entries are still counted until cron frees them. */
    assert_true(cache_used_memory(c) > full / 2);
    assert_true(cache_used_memory(c) >= baseline + N * sizeof(val));
    assert_int_equal(cache_check(c), 0);

    /* The cache works meanwhile. */
    for (int i = 0; i < 100; i++) {
        size_t kl = fmt(key, sizeof(key), "new%d", i);
        cache_set(c, key, kl, "n", 1, 0);
    }
    assert_int_equal(cache_count(c), 100);

    /* Freed in bounded batches: a zero budget frees some, not all. */
    size_t prev = cache_used_memory(c);
    int calls = 0;
    for (;;) {
        cache_cron(c, 0, 0);
        calls++;
        assert_int_equal(cache_check(c), 0);
        size_t now_used = cache_used_memory(c);
        assert_true(now_used <= prev);
        if (now_used == prev)
            break;
        prev = now_used;
    }
    assert_true(calls > 10);

    cache_t *ref = mk();
    for (int i = 0; i < 100; i++) {
        size_t kl = fmt(key, sizeof(key), "new%d", i);
        cache_set(ref, key, kl, "n", 1, 0);
    }
    settle(c, 0);
    settle(ref, 0);
    /* Same content as ref; only the allocator's rounding of reused chunks
     * may differ a little. The 5000 flushed entries (over 1 MB) are gone. */
    assert_true(cache_used_memory(c) < cache_used_memory(ref) + 100 * 32);
    assert_true(cache_used_memory(c) + 100 * 32 > cache_used_memory(ref));
    assert_true(cache_used_memory(c) < full / 10);
    cache_free(ref);

    /* Eviction frees flushed entries before it evicts live ones. */
    for (int i = 0; i < N; i++) {
        size_t kl = fmt(key, sizeof(key), "f%d", i);
        cache_set(c, key, kl, val, sizeof(val), 0);
    }
    cache_flush_all(c);
    cache_set(c, "live", 4, "1", 1, 0);
    cache_set_maxmemory(c, baseline + 4096);
    assert_int_equal(cache_evict(c), 0);
    assert_value(c, "live", 0, "1");
    assert_true(cache_used_memory(c) <= baseline + 4096);
    assert_int_equal(cache_check(c), 0);

    /* cache_free releases entries still waiting (the leak checker sees it). */
    for (int i = 0; i < 1000; i++) {
        size_t kl = fmt(key, sizeof(key), "g%d", i);
        cache_set(c, key, kl, val, sizeof(val), 0);
    }
    cache_flush_all(c);
    cache_free(c);
}

/* Marks scanned keys of the form "s:<n>" in a bitmap. */
typedef struct scan_seen {
    unsigned char *seen;
    size_t n;
    size_t visits;
} scan_seen_t;

static void scan_mark(void *ud, cache_entry_t *e)
{
    scan_seen_t *s = ud;
    size_t klen;
    const char *k = cache_entry_key(e, &klen);
    char buf[32];
    assert_true(klen < sizeof(buf) && klen > 2);
    memcpy(buf, k, klen);
    buf[klen] = '\0';
    size_t i = strtoul(buf + 2, NULL, 10);
    assert_true(i < s->n);
    s->seen[i] = 1;
    s->visits++;
}

static void scan_key(char *buf, size_t cap, size_t i, size_t *kl)
{
    *kl = fmt(buf, cap, "s:%zu", i);
}

static void test_scan(void **state)
{
    (void)state;
    enum { BASE = 2000, MAX = 40000 };
    scan_seen_t s = {calloc(MAX, 1), MAX, 0};
    char key[32];
    size_t kl;

    /* Empty cache: done at once. */
    cache_t *c = mk();
    assert_int_equal(cache_scan(c, 0, 10, scan_mark, &s), 0);
    assert_int_equal(s.visits, 0);

    /* No resize: every key exactly once. */
    for (size_t i = 0; i < BASE; i++) {
        scan_key(key, sizeof(key), i, &kl);
        cache_set(c, key, kl, "v", 1, 0);
    }
    settle(c, 0);
    uint64_t cur = 0;
    int calls = 0;
    do {
        cur = cache_scan(c, cur, 10, scan_mark, &s);
        calls++;
    } while (cur != 0);
    assert_int_equal(s.visits, BASE);
    for (size_t i = 0; i < BASE; i++)
        assert_true(s.seen[i]);
    assert_true(calls > BASE / 20);

    /* Growing while scanning: the keys there throughout are all returned. */
    memset(s.seen, 0, MAX);
    size_t next = BASE;
    cur = 0;
    do {
        cur = cache_scan(c, cur, 5, scan_mark, &s);
        for (int j = 0; j < 40 && next < MAX; j++, next++) {
            scan_key(key, sizeof(key), next, &kl);
            cache_set(c, key, kl, "v", 1, 0);
        }
    } while (cur != 0);
    assert_true(next > 8 * BASE); /* the table grew several times */
    for (size_t i = 0; i < BASE; i++)
        assert_true(s.seen[i]);

    /* Shrinking while scanning (cron moves the buckets between calls). */
    for (size_t i = BASE; i < next; i++) {
        scan_key(key, sizeof(key), i, &kl);
        assert_int_equal(cache_delete(c, key, kl, 0), 1);
    }
    memset(s.seen, 0, MAX);
    cur = 0;
    int rehashing_seen = 0;
    do {
        cur = cache_scan(c, cur, 5, scan_mark, &s);
        cache_cron(c, 0, 0);
        rehashing_seen |= cache_is_rehashing(c);
    } while (cur != 0);
    assert_true(rehashing_seen);
    for (size_t i = 0; i < BASE; i++)
        assert_true(s.seen[i]);

    /* A scan started in the middle of a rehash, and count 0. */
    for (size_t i = BASE; i < 4 * BASE; i++) {
        scan_key(key, sizeof(key), i, &kl);
        cache_set(c, key, kl, "v", 1, 0);
        if (cache_is_rehashing(c) && i > 3 * BASE)
            break;
    }
    assert_true(cache_is_rehashing(c));
    memset(s.seen, 0, MAX);
    cur = 0;
    do {
        cur = cache_scan(c, cur, 0, scan_mark, &s);
    } while (cur != 0);
    for (size_t i = 0; i < BASE; i++)
        assert_true(s.seen[i]);

    cache_free(c);
    free(s.seen);
}

/* ------------------------------------------------- randomized model check */

enum { MODEL_KEYS = 1500 };

typedef struct model_entry {
    int present;    /* in the cache (live or expired-but-unreaped) */
    char fill;      /* value byte */
    size_t vlen;    /* value length */
    int64_t expire; /* 0: none */
    uint64_t stamp; /* last set or touching lookup */
} model_entry_t;

typedef struct model {
    model_entry_t e[MODEL_KEYS];
    int64_t now;
    uint64_t stamp;
    uint64_t evicted_max_stamp; /* largest stamp evicted in this cache_evict */
    size_t gone_expired, gone_evicted;
} model_t;

static size_t model_key(char *buf, size_t cap, size_t i)
{
    return fmt(buf, cap, "r:%zu", i);
}

static size_t model_index(const char *key, size_t klen)
{
    char buf[32];
    assert_true(klen > 2 && klen < sizeof(buf));
    memcpy(buf, key, klen);
    buf[klen] = '\0';
    size_t i = strtoul(buf + 2, NULL, 10);
    assert_true(i < MODEL_KEYS);
    return i;
}

static int model_live(const model_t *m, size_t i)
{
    const model_entry_t *e = &m->e[i];
    return e->present && !(e->expire != 0 && m->now > e->expire);
}

static void model_gone(void *ud, const char *key, size_t klen, int reason)
{
    model_t *m = ud;
    size_t i = model_index(key, klen);
    model_entry_t *e = &m->e[i];
    assert_true(e->present);
    if (reason == CACHE_GONE_EXPIRED) {
        assert_true(e->expire != 0 && m->now > e->expire);
        m->gone_expired++;
    } else {
        assert_int_equal(reason, CACHE_GONE_EVICTED);
        /* Evictions come in lru order. */
        assert_true(e->stamp >= m->evicted_max_stamp);
        m->evicted_max_stamp = e->stamp;
        m->gone_evicted++;
    }
    e->present = 0;
}

static void model_verify(cache_t *c, model_t *m)
{
    assert_int_equal(cache_check(c), 0);
    while (cache_sweep(c, m->now, 100000)) /* counts include what is not swept yet */
        ;
    assert_int_equal(cache_check(c), 0);
    size_t present = 0, expires = 0;
    for (size_t i = 0; i < MODEL_KEYS; i++) {
        present += m->e[i].present;
        expires += m->e[i].present && m->e[i].expire != 0;
    }
    assert_int_equal(cache_count(c), present);
    assert_int_equal(cache_expires_count(c), expires);
}

/* Encoding marks, idle time, entry size, random entries, stats reset (the
 * introspection OBJECT, MEMORY USAGE, RANDOMKEY and CONFIG RESETSTAT use). */
static void test_introspection(void **state)
{
    (void)state;
    cache_t *c = mk();
    int64_t t0 = 1000000000000;
    assert_null(cache_random(c, t0));
    cache_entry_t *e = cache_set(c, "k", 1, "v", 1, 0);
    assert_int_equal(cache_entry_enc(e), CACHE_ENC_AUTO);
    cache_entry_set_enc(e, CACHE_ENC_RAW);
    assert_int_equal(cache_entry_enc(e), CACHE_ENC_RAW);
    e = cache_set(c, "k", 1, "w", 1, 0); /* a new value is encoded by content again */
    assert_int_equal(cache_entry_enc(e), CACHE_ENC_AUTO);
    assert_true(cache_entry_memory(e) >= 64 + 2);

    /* Idle time: seconds since the last touch; NOTOUCH lookups leave it. */
    e = cache_lookup(c, "k", 1, t0, 0);
    assert_int_equal(cache_entry_idle_ms(c, e), 0);
    e = cache_lookup(c, "k", 1, t0 + 5400, CACHE_NOTOUCH);
    assert_int_equal(cache_entry_idle_ms(c, e), 5000);
    e = cache_lookup(c, "k", 1, t0 + 7000, 0);
    assert_int_equal(cache_entry_idle_ms(c, e), 0);
    cache_entry_set_idle_ms(c, e, 123000);
    assert_int_equal(cache_entry_idle_ms(c, e), 123000);

    /* Random: only live entries, every one of them reachable. */
    char key[16];
    for (int i = 0; i < 50; i++) {
        fmt(key, sizeof(key), "r%d", i);
        cache_set(c, key, strlen(key), "x", 1, 0);
    }
    for (int i = 0; i < 50; i++) {
        fmt(key, sizeof(key), "gone%d", i);
        cache_set(c, key, strlen(key), "x", 1, t0 + 8000);
    }
    int seen[50] = {0};
    for (int i = 0; i < 5000; i++) {
        size_t klen;
        e = cache_random(c, t0 + 9000);
        assert_non_null(e);
        const char *k = cache_entry_key(e, &klen);
        assert_true(klen >= 1 && k[0] != 'g');
        if (k[0] == 'r')
            seen[atoi(k + 1)] = 1;
    }
    for (int i = 0; i < 50; i++)
        assert_true(seen[i]);
    assert_int_equal(cache_check(c), 0);

    cache_lookup(c, "k", 1, t0, CACHE_READ);
    assert_true(cache_stats(c)->hits > 0 && cache_stats(c)->expired > 0);
    cache_reset_stats(c);
    assert_int_equal(cache_stats(c)->hits, 0);
    assert_int_equal(cache_stats(c)->expired, 0);
    cache_free(c);
}

/* Random operations against a model. sync_max: entries a prefix flush
 * removes at once; past it the rest is dead at once and swept by cron (and
 * before each model_verify), and every other operation must see it gone. */
static void run_random_ops(size_t sync_max)
{
    model_t *m = calloc(1, sizeof(*m));
    cache_t *c = mk();
    cache_set_flush_sync_max(c, sync_max);
    cache_on_gone(c, model_gone, m);
    char key[32], val[1200];
    m->now = 1000;
    enum { OPS = 100000 };

    for (int op = 0; op < OPS; op++) {
        size_t i = rnd_below(MODEL_KEYS);
        size_t kl = model_key(key, sizeof(key), i);
        model_entry_t *me = &m->e[i];
        unsigned r = (unsigned)rnd_below(1000);

        if (r < 350) { /* set */
            size_t vlen = rnd_below(8) == 0 ? rnd_below(sizeof(val)) : rnd_below(200);
            char fill = (char)('a' + rnd_below(26));
            int64_t exp = rnd_below(10) < 3 ? m->now + 1 + (int64_t)rnd_below(500) : 0;
            memset(val, fill, vlen);
            cache_entry_t *e = cache_set(c, key, kl, val, vlen, exp);
            assert_int_equal(cache_entry_expire(e), exp);
            *me = (model_entry_t){1, fill, vlen, exp, ++m->stamp};
        } else if (r < 650) { /* lookup */
            int flags = (int)rnd_below(4);
            int live = model_live(m, i);
            cache_entry_t *e = cache_lookup(c, key, kl, m->now, flags);
            if (!live) {
                assert_null(e);
                assert_false(me->present); /* an expired one was reaped */
                continue;
            }
            assert_non_null(e);
            size_t vlen;
            const char *v = cache_entry_value(e, &vlen);
            assert_int_equal(vlen, me->vlen);
            for (size_t j = 0; j < vlen; j++)
                assert_int_equal(v[j], me->fill);
            assert_int_equal(cache_entry_expire(e), me->expire);
            if (!(flags & CACHE_NOTOUCH))
                me->stamp = ++m->stamp;
        } else if (r < 750) { /* delete */
            int live = model_live(m, i);
            assert_int_equal(cache_delete(c, key, kl, m->now), live);
            if (!live)
                assert_false(me->present); /* on_gone reaped an expired one */
            me->present = 0;
        } else if (r < 800) { /* change the expire time */
            cache_entry_t *e = cache_lookup(c, key, kl, m->now, CACHE_NOTOUCH);
            if (!e)
                continue;
            int64_t exp = rnd_below(2) ? 0 : m->now + (int64_t)rnd_below(300);
            cache_set_expire(c, e, exp);
            me->expire = exp;
        } else if (r < 810) { /* flush a prefix */
            char prefix[8];
            size_t pl = fmt(prefix, sizeof(prefix), "r:%zu", 1 + rnd_below(15));
            size_t want = 0;
            for (size_t j = 0; j < MODEL_KEYS; j++) {
                char k2[32];
                size_t k2l = model_key(k2, sizeof(k2), j);
                if (k2l >= pl && memcmp(k2, prefix, pl) == 0 && m->e[j].present) {
                    want += model_live(m, j);
                    m->e[j].present = 0; /* expired ones too, not reported */
                }
            }
            size_t removed;
            uint64_t id = cache_flush_prefix_start(c, prefix, pl, m->now, UINT64_MAX, &removed);
            if (sync_max == SIZE_MAX)
                assert_int_equal(id, 0);
            if (id == 0)
                assert_int_equal(removed, want);
            else /* the rest is counted as it goes (less what expires meanwhile) */
                assert_true(removed <= want);
            for (size_t j = 0; j < MODEL_KEYS; j++) {
                char k2[32];
                size_t k2l = model_key(k2, sizeof(k2), j);
                if (k2l >= pl && memcmp(k2, prefix, pl) == 0)
                    assert_false(m->e[j].present);
            }
        } else if (r < 900) { /* time passes */
            m->now += (int64_t)rnd_below(40);
        } else if (r < 920) { /* a short sweep step, amid everything else */
            cache_sweep(c, m->now, 0);
            assert_int_equal(cache_check(c), 0);
        } else if (r < 970) {
            /* cron, with an ample budget: it stops only when done */
            cache_cron(c, m->now, 100000);
            for (size_t j = 0; j < MODEL_KEYS; j++)
                if (m->e[j].present)
                    assert_true(model_live(m, j)); /* no expired entry left */
        } else if (r < 974) {
            /* evict down to a lower limit */
            size_t used = cache_used_memory(c);
            cache_set_maxmemory(c, used - used / (5 + rnd_below(20)));
            m->evicted_max_stamp = 0;
            size_t before = m->gone_evicted;
            size_t n = cache_evict(c);
            assert_int_equal(n, m->gone_evicted - before);
            assert_true(cache_used_memory(c) <= cache_maxmemory(c) || cache_count(c) == 0);
            /* Everything evicted was older than everything kept. */
            for (size_t j = 0; j < MODEL_KEYS; j++)
                if (m->e[j].present && n > 0)
                    assert_true(m->e[j].stamp > m->evicted_max_stamp);
            cache_set_maxmemory(c, 0);
        } else if (r < 975) { /* flush everything */
            size_t present = 0;
            for (size_t j = 0; j < MODEL_KEYS; j++) {
                present += m->e[j].present;
                m->e[j].present = 0;
            }
            size_t dead = cache_count(c) - present; /* covered, not swept yet */
            assert_int_equal(cache_flush_all(c), present + dead);
            assert_int_equal(cache_sweeping(c), 0);
        } else { /* count live entries */
            size_t n = 0, live = 0;
            cache_foreach(c, m->now, count_visit, &n);
            for (size_t j = 0; j < MODEL_KEYS; j++)
                live += model_live(m, j);
            assert_int_equal(n, live);
        }
        if (op % 1000 == 0)
            model_verify(c, m);
    }
    model_verify(c, m);
    assert_true(m->gone_expired > 100);
    assert_true(m->gone_evicted > 100);
    assert_int_equal(cache_stats(c)->expired, m->gone_expired);
    assert_int_equal(cache_stats(c)->evicted, m->gone_evicted);
    cache_free(c);
    free(m);
}

static void test_random_ops(void **state)
{
    (void)state;
    run_random_ops(SIZE_MAX);
}

static void test_random_ops_lazy_flush(void **state)
{
    (void)state;
    run_random_ops(2);
}

/* The change signal (cache_on_change): every way a key can change is seen,
 * with its key, once. */
typedef struct change_log {
    char text[4096];
    size_t n;
} change_log_t;

static void change_record(void *ud, int kind, const char *key, size_t klen)
{
    change_log_t *l = ud;
    size_t room = sizeof(l->text) - strlen(l->text);
    if (kind == CACHE_CHANGE_ALL)
        snprintf(l->text + strlen(l->text), room, "ALL ");
    else if (kind == CACHE_CHANGE_PREFIX)
        snprintf(l->text + strlen(l->text), room, "PREFIX:%.*s ", (int)klen, key);
    else
        snprintf(l->text + strlen(l->text), room, "%.*s ", (int)klen, key);
    l->n++;
}

#define ASSERT_CHANGES(l, want)                                                                    \
    do {                                                                                           \
        assert_string_equal((l)->text, want);                                                      \
        (l)->text[0] = '\0';                                                                       \
    } while (0)

static void test_change_signal(void **state)
{
    (void)state;
    cache_t *c = mk();
    change_log_t log = {{0}, 0};
    cache_on_change(c, change_record, &log);
    set_str(c, "a", "1", 0);
    set_str(c, "a", "a longer value that cannot reuse the entry's room", 0);
    ASSERT_CHANGES(&log, "a a ");
    cache_set_expire(c, cache_lookup(c, "a", 1, 0, 0), 500);
    ASSERT_CHANGES(&log, "a ");
    assert_null(cache_lookup(c, "a", 1, 1000, CACHE_READ)); /* lazy expiry */
    ASSERT_CHANGES(&log, "a ");
    assert_int_equal(cache_delete(c, "a", 1, 1000), 0); /* nothing left: no change */
    ASSERT_CHANGES(&log, "");
    set_str(c, "b", "2", 0);
    assert_int_equal(cache_delete(c, "b", 1, 0), 1);
    ASSERT_CHANGES(&log, "b b ");
    set_str(c, "p:1", "x", 0);
    set_str(c, "p:2", "x", 100);
    set_str(c, "q", "x", 0);
    ASSERT_CHANGES(&log, "p:1 p:2 q ");
    assert_int_equal(cache_flush_prefix(c, "p:", 2, 0), 2);
    if (strcmp(log.text, "p:2 p:1 ") == 0) /* hash order */
        strcpy(log.text, "p:1 p:2 ");
    ASSERT_CHANGES(&log, "p:1 p:2 ");
    set_str(c, "e", "x", 10);
    cache_cron(c, 1000, 100000); /* active expiry */
    ASSERT_CHANGES(&log, "e e ");
    cache_set_maxmemory(c, 1); /* eviction */
    set_str(c, "big", "x", 0);
    assert_true(cache_evict(c) >= 1);
    ASSERT_CHANGES(&log, "big q big ");
    cache_set_maxmemory(c, 0);
    set_str(c, "z", "x", 0);
    log.text[0] = '\0';
    assert_int_equal(cache_flush_all(c), 1);
    assert_int_equal(cache_flush_all(c), 0); /* an empty cache still says so */
    ASSERT_CHANGES(&log, "ALL ALL ");
    /* A lazy prefix flush: the keys removed at once one by one, then the
     * prefix once; the covered keys removed later are not told again. */
    cache_set_flush_sync_max(c, 1);
    set_str(c, "p:1", "x", 0);
    set_str(c, "p:2", "x", 0);
    set_str(c, "p:3", "x", 0);
    set_str(c, "p:4", "x", 0);
    log.text[0] = '\0';
    log.n = 0;
    size_t removed;
    uint64_t id = cache_flush_prefix_start(c, "p:", 2, 0, UINT64_MAX, &removed);
    assert_true(id != 0);
    assert_true(removed < 4);
    assert_int_equal(log.n, removed + 1); /* each key removed at once, then the prefix */
    assert_non_null(strstr(log.text, "PREFIX:p: "));
    assert_string_equal(strstr(log.text, "PREFIX:p: "), "PREFIX:p: ");
    log.text[0] = '\0';
    for (int k = 1; k <= 4; k++)
        assert_null(cache_lookup(c, (char[]){'p', ':', (char)('0' + k)}, 3, 0, 0));
    while (cache_sweep(c, 0, 100000))
        ;
    assert_int_equal(cache_flush_result(c, id, &removed), 1);
    assert_int_equal(removed, 4);
    ASSERT_CHANGES(&log, "");
    cache_on_change(c, NULL, NULL);
    set_str(c, "quiet", "x", 0);
    ASSERT_CHANGES(&log, "");
    cache_free(c);
}

/* A lazy prefix flush counts every key live when it was made, those whose
 * TTL passes before the sweep reaches them included (they are reaped by the
 * sweep, a lookup or the expiry cycle); one expired before it does not
 * count. Its result is kept, once held, however many flushes finish after
 * it; the newest pending flush under a start is found. */
static void test_lazy_flush_counts_and_holds(void **state)
{
    (void)state;
    cache_t *c = cache_new(7, 0);
    cache_set_flush_sync_max(c, 1);
    char k[32];
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof(k), "p:%d", i);
        cache_set(c, k, strlen(k), "v", 1, i < 100 ? 1000 : 0);
    }
    cache_set(c, "p:old", 5, "v", 1, 10); /* expired before the flush */
    cache_set(c, "q", 1, "v", 1, 0);
    size_t removed;
    uint64_t id = cache_flush_prefix_start(c, "p:", 2, 500, UINT64_MAX, &removed);
    assert_true(id != 0);
    cache_flush_hold(c, id);
    assert_int_equal(cache_flush_newest_under(c, "p", 1), id);
    assert_int_equal(cache_flush_newest_under(c, "q", 1), 0);
    assert_null(cache_lookup(c, "p:7", 3, 2000, 0));  /* reaped after its TTL */
    cache_cron(c, 2000, 0);                            /* the expiry cycle meets some */
    while (cache_sweep(c, 2000, 100000))
        ;
    assert_int_equal(cache_flush_result(c, id, &removed), 1);
    assert_int_equal(removed, 200);
    for (int i = 0; i < 300; i++) { /* 300 more flushes finish: the ring turns over */
        uint64_t other = cache_flush_prefix_start(c, "z", 1, 2000, UINT64_MAX, &removed);
        while (other && !cache_flush_result(c, other, &removed))
            cache_sweep(c, 2000, 100000);
    }
    assert_int_equal(cache_flush_result(c, id, &removed), 1);
    assert_int_equal(removed, 200);
    cache_flush_release(c, id);
    assert_int_equal(cache_check(c), 0);
    cache_free(c);
}

/* A cache_flush_all() while prefix flushes are pending: each still counts
 * every key it covered (as the pending chain is freed, not what its sweep
 * had reached), and is over once that is done; a second cache_flush_all()
 * meanwhile changes nothing of that. */
static void test_flush_all_during_lazy_flush_counts(void **state)
{
    (void)state;
    cache_t *c = cache_new(9, 0);
    cache_set_flush_sync_max(c, 1);
    char k[32];
    for (int i = 0; i < 500; i++) {
        snprintf(k, sizeof(k), "%c:%d", i % 2 ? 'a' : 'b', i);
        cache_set(c, k, strlen(k), "v", 1, 0);
    }
    size_t removed;
    uint64_t a = cache_flush_prefix_start(c, "a:", 2, 0, UINT64_MAX, &removed);
    assert_true(a != 0);
    cache_flush_hold(c, a);
    cache_sweep(c, 0, 1); /* part of a pass */
    size_t before = cache_flush_all(c); /* those the step did not reach */
    assert_true(before > 250 && before <= 500);
    cache_set(c, "a:new", 5, "v", 1, 0);
    uint64_t b = cache_flush_prefix_start(c, "a:", 2, 0, UINT64_MAX, &removed);
    if (b)
        cache_flush_hold(c, b);
    assert_int_equal(cache_flush_all(c), b ? 1 : 0);
    for (int i = 0; i < 100 && (!cache_flush_result(c, a, &removed) ||
                                (b && !cache_flush_result(c, b, &removed))); i++)
        cache_cron(c, 0, 1000);
    assert_int_equal(cache_flush_result(c, a, &removed), 1);
    assert_int_equal(removed, 250);
    if (b) {
        assert_int_equal(cache_flush_result(c, b, &removed), 1);
        assert_int_equal(removed, 1);
    }
    assert_int_equal(cache_check(c), 0);
    cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_get),
        cmocka_unit_test(test_change_signal),
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_insert_delete_orders),
        cmocka_unit_test(test_ttl_lazy),
        cmocka_unit_test(test_ttl_active),
        cmocka_unit_test(test_lru_eviction),
        cmocka_unit_test(test_eviction_policies),
        cmocka_unit_test(test_lfu_counter),
        cmocka_unit_test(test_set_in_place),
        cmocka_unit_test(test_memory_accounting),
        cmocka_unit_test(test_memory_per_key),
        cmocka_unit_test(test_incremental_rehash),
        cmocka_unit_test(test_flush_prefix),
        cmocka_unit_test(test_flush_prefix_covering_everything),
        cmocka_unit_test(test_foreach_prefix),
        cmocka_unit_test(test_flush_all_deferred),
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_count_first_byte),
        cmocka_unit_test(test_introspection),
        cmocka_unit_test(test_random_ops),
        cmocka_unit_test(test_random_ops_lazy_flush),
        cmocka_unit_test(test_lazy_flush_counts_and_holds),
        cmocka_unit_test(test_flush_all_during_lazy_flush_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
