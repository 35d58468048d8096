/* Unit tests for flushmark: the flush memory behind GETL/SETL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "flushmark.h"

#define K(s) s, strlen(s)

static void test_no_flush_accepts(void **state)
{
    flushmark_t *f = flushmark_new(1024, 8, 100);
    uint64_t t = flushmark_token(f);
    assert_int_equal(flushmark_flushed_since(f, K("user:1"), t), 0);
    flushmark_free(f);
}

static void test_key_flush_refuses_only_older_tokens(void **state)
{
    flushmark_t *f = flushmark_new(1 << 16, 8, 1);
    uint64_t before = flushmark_token(f);
    flushmark_key(f, K("user:1"));
    uint64_t after = flushmark_token(f);
    assert_int_equal(flushmark_flushed_since(f, K("user:1"), before), 1);
    assert_int_equal(flushmark_flushed_since(f, K("user:1"), after), 0);
    assert_int_equal(flushmark_flushed_since(f, K("user:2"), before), 0);
    flushmark_free(f);
}

static void test_collision_is_conservative(void **state)
{
    /* One slot: every key shares it, so a flush of any key refuses all. */
    flushmark_t *f = flushmark_new(1, 8, 1);
    uint64_t t = flushmark_token(f);
    flushmark_key(f, K("a"));
    assert_int_equal(flushmark_flushed_since(f, K("b"), t), 1);
    flushmark_free(f);
}

static void test_prefix_flush(void **state)
{
    flushmark_t *f = flushmark_new(1024, 4, 1);
    uint64_t t = flushmark_token(f);
    flushmark_prefix(f, K("sn:/a/"));
    assert_int_equal(flushmark_flushed_since(f, K("sn:/a/b"), t), 1);
    assert_int_equal(flushmark_flushed_since(f, K("sn:/b/a"), t), 0);
    assert_int_equal(flushmark_flushed_since(f, K("sn:/"), t), 0); /* shorter than prefix */
    assert_int_equal(flushmark_flushed_since(f, K("sn:/a/b"), flushmark_token(f)), 0);
    flushmark_free(f);
}

static void test_prefix_ring_overflow_is_conservative(void **state)
{
    flushmark_t *f = flushmark_new(1024, 2, 1);
    uint64_t t = flushmark_token(f);
    flushmark_prefix(f, K("x:"));
    uint64_t t2 = flushmark_token(f);
    flushmark_prefix(f, K("y:"));
    flushmark_prefix(f, K("z:")); /* pushes "x:" out of the ring */
    /* "x:" is forgotten, so anything older than it cannot be proven safe. */
    assert_int_equal(flushmark_flushed_since(f, K("q"), t), 1);
    /* A token taken after "x:" is judged by the marks still held. */
    assert_int_equal(flushmark_flushed_since(f, K("q"), t2), 0);
    assert_int_equal(flushmark_flushed_since(f, K("y:1"), t2), 1);
    flushmark_free(f);
}

static void test_flush_all(void **state)
{
    flushmark_t *f = flushmark_new(1024, 4, 1);
    uint64_t t = flushmark_token(f);
    flushmark_all(f);
    assert_int_equal(flushmark_flushed_since(f, K("anything"), t), 1);
    assert_int_equal(flushmark_flushed_since(f, K("anything"), flushmark_token(f)), 0);
    flushmark_free(f);
}

static void test_foreign_token_refused(void **state)
{
    flushmark_t *f = flushmark_new(1024, 4, 50);
    assert_int_equal(flushmark_flushed_since(f, K("k"), 51), 1);
    assert_true(flushmark_memory(f) >= 1024 * sizeof(uint64_t));
    flushmark_free(f);
}

/* A token of an earlier incarnation (below this one's first token) is refused
 * even when no flush happened since this incarnation started: the earlier
 * incarnation may have flushed the key after issuing it. */
static void test_earlier_incarnation_token_refused(void **state)
{
    flushmark_t *old = flushmark_new(1024, 4, 1000);
    uint64_t t = flushmark_token(old);
    flushmark_free(old);
    flushmark_t *f = flushmark_new(1024, 4, 5000);
    assert_int_equal(flushmark_flushed_since(f, K("k"), t), 1);
    assert_int_equal(flushmark_flushed_since(f, K("k"), 4999), 1);
    assert_int_equal(flushmark_flushed_since(f, K("k"), flushmark_token(f)), 0);
    flushmark_free(f);
}

/* ---- the exact form (the write protocol's floors) ------------------------------ */

static void test_exact_keys_do_not_share(void **state)
{
    /* The hashed form's slots made one key's DEL refuse another key's value
     * (sim --writes seed 3); the exact form answers each key alone. */
    flushmark_t *f = flushmark_new_exact(1 << 10, 8);
    for (int i = 0; i < 5000; i++) {
        char k[32];
        int n = snprintf(k, sizeof(k), "del:%d", i);
        flushmark_key_at(f, k, (size_t)n, 1000 + (uint64_t)i);
    }
    /* 5000 keys in a record of 1024: the 3976 updated first were forgotten,
     * so the floor of a key never recorded is the forgotten floor. */
    assert_int_equal(flushmark_floor(f, K("w:lock:9")), 1000 + 3975);
    assert_int_equal(flushmark_floor_known(f, K("w:lock:9")), 0);
    assert_int_equal(flushmark_floor_known(f, K("del:4999")), 5999);
    assert_int_equal(flushmark_keys(f), 1 << 10);
    flushmark_free(f);
}

static void test_exact_keeps_the_highest(void **state)
{
    flushmark_t *f = flushmark_new_exact(16, 4);
    flushmark_key_at(f, K("a"), 50);
    flushmark_key_at(f, K("a"), 20); /* versions arrive in any order */
    assert_int_equal(flushmark_floor(f, K("a")), 50);
    assert_int_equal(flushmark_floor(f, K("b")), 0);
    flushmark_all_at(f, 30);
    assert_int_equal(flushmark_floor(f, K("a")), 50);
    assert_int_equal(flushmark_floor(f, K("b")), 30);
    assert_int_equal(flushmark_floor_known(f, K("b")), 30);
    flushmark_free(f);
}

static void test_exact_prefixes(void **state)
{
    flushmark_t *f = flushmark_new_exact(16, 2);
    flushmark_prefix_at(f, K("a:"), 10);
    for (uint64_t v = 11; v < 200; v++) /* one prefix flushed again and again: one record */
        flushmark_prefix_at(f, K("b:"), v);
    assert_int_equal(flushmark_floor(f, K("a:1")), 10);
    assert_int_equal(flushmark_floor(f, K("b:1")), 199);
    assert_int_equal(flushmark_floor(f, K("c:1")), 0);
    int64_t stamp;
    assert_int_equal(flushmark_forgotten(f, &stamp), 0);
    /* A third prefix: the one with the oldest number is forgotten. */
    flushmark_set_stamp(f, 77);
    flushmark_prefix_at(f, K("c:"), 300);
    assert_int_equal(flushmark_forgotten(f, &stamp), 10);
    assert_int_equal(stamp, 77);
    assert_int_equal(flushmark_floor_known(f, K("a:1")), 0);
    assert_int_equal(flushmark_floor(f, K("a:1")), 10); /* never lower than the truth */
    assert_int_equal(flushmark_floor(f, K("c:9")), 300);
    assert_int_equal(flushmark_forgotten_count(f), 1);
    flushmark_free(f);
}

static void test_exact_forgets_the_oldest_update(void **state)
{
    flushmark_t *f = flushmark_new_exact(3, 1);
    flushmark_set_stamp(f, 5);
    flushmark_key_at(f, K("a"), 1);
    flushmark_key_at(f, K("b"), 2);
    flushmark_key_at(f, K("c"), 3);
    flushmark_key_at(f, K("a"), 4); /* updated: now the newest */
    flushmark_key_at(f, K("d"), 5); /* full: b goes */
    int64_t stamp;
    assert_int_equal(flushmark_forgotten(f, &stamp), 2);
    assert_int_equal(stamp, 5);
    assert_int_equal(flushmark_floor_known(f, K("b")), 0);
    assert_int_equal(flushmark_floor(f, K("b")), 2);
    assert_int_equal(flushmark_floor_known(f, K("a")), 4);
    assert_int_equal(flushmark_floor_known(f, K("c")), 3);
    assert_int_equal(flushmark_floor_known(f, K("d")), 5);
    assert_int_equal(flushmark_keys(f), 3);
    assert_true(flushmark_memory(f) > 0);
    flushmark_clear(f);
    assert_int_equal(flushmark_keys(f), 0);
    assert_int_equal(flushmark_floor(f, K("a")), 0);
    assert_int_equal(flushmark_forgotten(f, &stamp), 0);
    flushmark_key_at(f, K("a"), 9); /* usable again */
    assert_int_equal(flushmark_floor(f, K("a")), 9);
    flushmark_free(f);
}

static void test_exact_folds_into_the_hashed_form(void **state)
{
    /* At a whole-cache drop the exact record goes into the floor (hashed),
     * which keeps answering at least as high for every key. */
    flushmark_t *x = flushmark_new_exact(2, 1);
    flushmark_key_at(x, K("a"), 10);
    flushmark_key_at(x, K("b"), 20);
    flushmark_key_at(x, K("c"), 30); /* a forgotten: 10 for every key */
    flushmark_prefix_at(x, K("p:"), 40);
    flushmark_all_at(x, 5);
    flushmark_t *h = flushmark_new(1 << 12, 8, 0);
    flushmark_fold(h, x);
    assert_true(flushmark_floor(h, K("b")) >= 20);
    assert_true(flushmark_floor(h, K("c")) >= 30);
    assert_true(flushmark_floor(h, K("p:1")) >= 40);
    assert_true(flushmark_floor(h, K("a")) >= 10);
    assert_true(flushmark_floor(h, K("zzz")) >= 10);
    flushmark_free(h);
    flushmark_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_flush_accepts),
        cmocka_unit_test(test_key_flush_refuses_only_older_tokens),
        cmocka_unit_test(test_collision_is_conservative),
        cmocka_unit_test(test_prefix_flush),
        cmocka_unit_test(test_prefix_ring_overflow_is_conservative),
        cmocka_unit_test(test_flush_all),
        cmocka_unit_test(test_foreign_token_refused),
        cmocka_unit_test(test_earlier_incarnation_token_refused),
        cmocka_unit_test(test_exact_keys_do_not_share),
        cmocka_unit_test(test_exact_keeps_the_highest),
        cmocka_unit_test(test_exact_prefixes),
        cmocka_unit_test(test_exact_forgets_the_oldest_update),
        cmocka_unit_test(test_exact_folds_into_the_hashed_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
