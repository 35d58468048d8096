/* Unit tests for cluster/itable: the interest tables of cluster-wide
 * pub/sub (names with subscriber counts, receivers by channel and pattern). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "itable.h"

enum { CH = 0, PAT = 1, SHARD = 2 };

static void test_set_get_remove(void **state)
{
    (void)state;
    itable_t *t = itable_new();
    assert_int_equal(itable_get(t, CH, "a", 1), 0);
    assert_int_equal(itable_set(t, CH, "a", 1, 3), 0);
    assert_int_equal(itable_get(t, CH, "a", 1), 3);
    assert_int_equal(itable_get(t, SHARD, "a", 1), 0); /* kinds are separate */
    assert_int_equal(itable_set(t, CH, "a", 1, 5), 3);
    assert_int_equal(itable_topics(t, CH), 1);
    assert_int_equal(itable_set(t, CH, "a", 1, 0), 5);
    assert_int_equal(itable_get(t, CH, "a", 1), 0);
    assert_int_equal(itable_topics(t, CH), 0);
    assert_int_equal(itable_set(t, CH, "gone", 4, 0), 0); /* removing the absent: nothing */
    assert_int_equal(itable_topics(t, CH), 0);
    /* binary-safe names, and the empty name */
    assert_int_equal(itable_set(t, SHARD, "x\0y", 3, 1), 0);
    assert_int_equal(itable_get(t, SHARD, "x\0z", 3), 0);
    assert_int_equal(itable_get(t, SHARD, "x\0y", 3), 1);
    itable_set(t, CH, "", 0, 9);
    assert_int_equal(itable_get(t, CH, "", 0), 9);
    itable_free(t);
}

static void test_many_names(void **state)
{
    (void)state;
    itable_t *t = itable_new();
    char name[32];
    for (int i = 0; i < 50000; i++) {
        int n = snprintf(name, sizeof(name), "room:%d", i);
        itable_set(t, CH, name, (size_t)n, (uint32_t)i + 1);
    }
    assert_int_equal(itable_topics(t, CH), 50000);
    for (int i = 0; i < 50000; i += 2) {
        int n = snprintf(name, sizeof(name), "room:%d", i);
        assert_int_equal(itable_set(t, CH, name, (size_t)n, 0), (uint32_t)i + 1);
    }
    assert_int_equal(itable_topics(t, CH), 25000);
    for (int i = 0; i < 50000; i++) {
        int n = snprintf(name, sizeof(name), "room:%d", i);
        assert_int_equal(itable_get(t, CH, name, (size_t)n), i % 2 ? (uint32_t)i + 1 : 0);
    }
    itable_free(t);
}

static void test_receivers(void **state)
{
    (void)state;
    itable_t *t = itable_new();
    itable_set(t, CH, "news.uk", 7, 2);
    itable_set(t, PAT, "news.*", 6, 3);
    itable_set(t, PAT, "*", 1, 1);
    itable_set(t, PAT, "sport.*", 7, 10);
    itable_set(t, SHARD, "news.uk", 7, 4);
    assert_int_equal(itable_receivers(t, "news.uk", 7, 0), 2 + 3 + 1);
    assert_int_equal(itable_receivers(t, "news.fr", 7, 0), 3 + 1);
    assert_int_equal(itable_receivers(t, "weather", 7, 0), 1);
    assert_int_equal(itable_receivers(t, "news.uk", 7, 1), 4); /* shard: no patterns */
    assert_int_equal(itable_receivers(t, "news.fr", 7, 1), 0);
    itable_set(t, PAT, "*", 1, 0);
    assert_int_equal(itable_receivers(t, "weather", 7, 0), 0);
    itable_free(t);
}

struct seen {
    char names[8][16];
    uint32_t counts[8];
    int n;
};

static void visit(void *ud, int kind, const char *name, size_t len, uint32_t count)
{
    struct seen *s = ud;
    assert_true(s->n < 8 && len < 16);
    assert_int_equal(kind, CH);
    memcpy(s->names[s->n], name, len);
    s->names[s->n][len] = '\0';
    s->counts[s->n++] = count;
}

static void test_foreach_order(void **state)
{
    (void)state;
    itable_t *t = itable_new();
    itable_set(t, CH, "c", 1, 1);
    itable_set(t, CH, "a", 1, 2);
    itable_set(t, CH, "b", 1, 3);
    itable_set(t, CH, "a", 1, 4); /* an update keeps its place */
    itable_set(t, CH, "c", 1, 0);
    itable_set(t, CH, "c", 1, 5); /* back: at the end */
    itable_set(t, PAT, "p", 1, 1);
    struct seen s = {0};
    itable_foreach(t, CH, visit, &s);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.names[0], "a");
    assert_int_equal(s.counts[0], 4);
    assert_string_equal(s.names[1], "b");
    assert_string_equal(s.names[2], "c");
    assert_int_equal(s.counts[2], 5);
    itable_free(t);
}

static void test_clear_refill(void **state)
{
    (void)state;
    itable_t *t = itable_new();
    for (int k = 0; k < ITABLE_KINDS; k++)
        for (int i = 0; i < 100; i++) {
            char name[8];
            int n = snprintf(name, sizeof(name), "%d", i);
            itable_set(t, k, name, (size_t)n, 1);
        }
    itable_clear(t);
    for (int k = 0; k < ITABLE_KINDS; k++)
        assert_int_equal(itable_topics(t, k), 0);
    assert_int_equal(itable_receivers(t, "1", 1, 0), 0);
    itable_set(t, PAT, "1*", 2, 2);
    assert_int_equal(itable_receivers(t, "10", 2, 0), 2);
    itable_free(t);
    itable_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_get_remove),
        cmocka_unit_test(test_many_names),
        cmocka_unit_test(test_receivers),
        cmocka_unit_test(test_foreach_order),
        cmocka_unit_test(test_clear_refill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
