/* Unit tests for svc/watch.c: the invariants listed in watch.h. Clients are
 * bare client_t structures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "watch.h"

static void watch1(watch_t *w, client_t *c, const char *k)
{
    size_t l = strlen(k);
    watch_keys(w, c, 1, &k, &l);
}

static void test_key_marks_dirty(void **state)
{
    (void)state;
    watch_t *w = watch_new();
    client_t a = {0}, b = {0}, idle = {0};
    const char *keys[] = {"x", "y", "x"};
    size_t lens[] = {1, 1, 1};
    watch_keys(w, &a, 3, keys, lens);
    assert_int_equal(watch_count(&a), 2); /* x once */
    watch1(w, &b, "y");
    assert_int_equal(watch_clients(w), 2);
    assert_false(watch_is_dirty(&a));
    watch_key_changed(w, "y", 1);
    assert_true(watch_is_dirty(&a));
    assert_true(watch_is_dirty(&b));
    assert_false(watch_is_dirty(&idle));
    watch_unwatch(w, &a);
    watch_unwatch(w, &b);
    watch_unwatch(w, &idle); /* nothing watched: no-op */
    assert_int_equal(watch_clients(w), 0);
    watch_free(w);
}

static void test_other_key_clean(void **state)
{
    (void)state;
    watch_t *w = watch_new();
    client_t a = {0};
    watch1(w, &a, "key");
    watch_key_changed(w, "ke", 2);
    watch_key_changed(w, "key2", 4);
    watch_key_changed(w, "KEY", 3);
    assert_false(watch_is_dirty(&a));
    watch_unwatch(w, &a);
    watch_free(w);
}

static void test_all_marks_dirty(void **state)
{
    (void)state;
    watch_t *w = watch_new();
    client_t a = {0};
    watch1(w, &a, "k");
    watch_all_changed(w);
    assert_true(watch_is_dirty(&a));
    watch_unwatch(w, &a);
    watch_free(w);
}

static void test_unwatch(void **state)
{
    (void)state;
    watch_t *w = watch_new();
    client_t a = {0};
    watch1(w, &a, "k");
    watch_key_changed(w, "k", 1);
    watch_unwatch(w, &a);
    assert_null(a.watch);
    assert_false(watch_is_dirty(&a));
    assert_int_equal(watch_count(&a), 0);
    watch1(w, &a, "k"); /* a new WATCH starts clean */
    assert_false(watch_is_dirty(&a));
    watch_key_changed(w, "k", 1);
    assert_true(watch_is_dirty(&a));
    watch_unwatch(w, &a);
    watch_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_marks_dirty),
        cmocka_unit_test(test_other_key_clean),
        cmocka_unit_test(test_all_marks_dirty),
        cmocka_unit_test(test_unwatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
