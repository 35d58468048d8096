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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
