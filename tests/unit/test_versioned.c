/* Unit tests for versioned: the rule by which every node orders the writes
 * and flushes of one key (cache/versioned.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cache.h"
#include "cache_value.h"
#include "flushmark.h"
#include "versioned.h"

#define K(s) s, strlen(s)
#define NOW 1000

typedef struct world {
    cache_t *c;
    flushmark_t *floor;
} world_t;

static int setup(void **state)
{
    world_t *w = test_malloc(sizeof(*w));
    w->c = cache_new(1, 0);
    w->floor = flushmark_new(1 << 12, 16, 0);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world_t *w = *state;
    cache_free(w->c);
    flushmark_free(w->floor);
    test_free(w);
    return 0;
}

static size_t seed(world_t *w, const char *k, const char *v, uint64_t version)
{
    return versioned_apply(w->c, w->floor, VOP_SEED, K(k), K(v), 0, version, NOW);
}

static size_t op(world_t *w, int kind, const char *k, uint64_t version)
{
    return versioned_apply(w->c, w->floor, kind, K(k), NULL, 0, 0, version, NOW);
}

static size_t inval(world_t *w, const char *k, const char *v, uint64_t version)
{
    uint64_t d = versioned_digest(K(v));
    char be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (char)(d >> (56 - 8 * i));
    return versioned_apply(w->c, w->floor, VOP_INVAL, K(k), be, 8, 0, version, NOW);
}

/* The value of k as a string (a copy), or NULL when absent. */
static const char *value(world_t *w, const char *k)
{
    return cache_value_str(w->c, k, NOW);
}

static void test_newest_seed_wins_in_any_order(void **state)
{
    world_t *w = *state;
    assert_int_equal(seed(w, "k", "b", 20), 1);
    assert_int_equal(seed(w, "k", "a", 10), 0); /* older: ignored */
    assert_string_equal(value(w, "k"), "b");
    assert_int_equal(seed(w, "k", "c", 30), 1);
    assert_string_equal(value(w, "k"), "c");
}

static void test_del_orders_against_seeds(void **state)
{
    world_t *w = *state;
    seed(w, "k", "a", 10);
    assert_int_equal(op(w, VOP_KEY, "k", 5), 0); /* an older DEL keeps the newer value */
    assert_string_equal(value(w, "k"), "a");
    assert_int_equal(op(w, VOP_KEY, "k", 15), 1);
    assert_null(value(w, "k"));
    assert_int_equal(seed(w, "k", "late", 12), 0); /* delayed: the DEL is newer */
    assert_null(value(w, "k"));
    assert_int_equal(seed(w, "k", "new", 16), 1);
}

static void test_prefix_and_all_remove_only_older(void **state)
{
    world_t *w = *state;
    seed(w, "p:1", "a", 10);
    seed(w, "p:2", "b", 30);
    seed(w, "q:1", "c", 10);
    assert_int_equal(op(w, VOP_PREFIX, "p:", 20), 1);
    assert_null(value(w, "p:1"));
    assert_string_equal(value(w, "p:2"), "b");
    assert_int_equal(seed(w, "p:3", "x", 19), 0);
    assert_int_equal(op(w, VOP_ALL, "", 25), 1); /* q:1 only */
    assert_string_equal(value(w, "p:2"), "b");
    assert_null(value(w, "q:1"));
}

static void test_inval_keeps_identical_bytes(void **state)
{
    world_t *w = *state;
    seed(w, "row", "same", 10);
    assert_int_equal(inval(w, "row", "same", 20), 0);
    assert_string_equal(value(w, "row"), "same");
    assert_int_equal(inval(w, "row", "other", 30), 1);
    assert_null(value(w, "row"));
    assert_int_equal(seed(w, "row", "stale", 25), 0); /* the INVAL is newer */
}

static void test_inval_older_than_the_entry_is_ignored(void **state)
{
    world_t *w = *state;
    seed(w, "row", "mine", 40);
    assert_int_equal(inval(w, "row", "theirs", 30), 0);
    assert_string_equal(value(w, "row"), "mine");
}

static void test_same_ops_any_order_same_result(void **state)
{
    (void)state;
    /* Two nodes apply the same five operations in opposite orders. */
    world_t a = {cache_new(1, 0), flushmark_new(1 << 12, 16, 0)};
    world_t b = {cache_new(2, 0), flushmark_new(1 << 12, 16, 0)};
    seed(&a, "k", "1", 10);
    op(&a, VOP_KEY, "k", 20);
    seed(&a, "k", "3", 30);
    inval(&a, "k", "4", 40);
    seed(&a, "k", "5", 35);
    seed(&b, "k", "5", 35);
    inval(&b, "k", "4", 40);
    seed(&b, "k", "3", 30);
    op(&b, VOP_KEY, "k", 20);
    seed(&b, "k", "1", 10);
    assert_null(value(&a, "k"));
    assert_null(value(&b, "k"));
    cache_free(a.c);
    cache_free(b.c);
    flushmark_free(a.floor);
    flushmark_free(b.floor);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_newest_seed_wins_in_any_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_del_orders_against_seeds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix_and_all_remove_only_older, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inval_keeps_identical_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inval_older_than_the_entry_is_ignored, setup,
                                        teardown),
        cmocka_unit_test(test_same_ops_any_order_same_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
