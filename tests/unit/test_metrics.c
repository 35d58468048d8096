/* Unit tests for metrics.c: rows are copied, values come from the counter a
 * row points at or from its getter at the moment of reading, texts may be
 * absent, and the registry grows past its first allocation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "metrics.h"

static uint64_t twice(void *ud)
{
    return 2 * *(uint64_t *)ud;
}

static const char *maybe(void *ud, char *buf, size_t len)
{
    int *on = ud;
    if (!*on)
        return NULL;
    snprintf(buf, len, "on");
    return buf;
}

static void test_values_are_read_when_asked(void **state)
{
    (void)state;
    metrics_t *r = metrics_new();
    uint64_t counter = 5;
    int on = 0;
    metric_t a = {.type = METRIC_COUNTER, .prom = "a_total", .u64 = &counter};
    metric_t b = {.type = METRIC_GAUGE, .info = "stats:b", .get = twice, .ud = &counter};
    metric_t t = {.type = METRIC_TEXT, .json = "t", .text = maybe, .ud = &on};
    metrics_add(r, &a);
    metrics_add(r, &b);
    metrics_add(r, &t);
    a.prom = "changed after adding"; /* the registry holds a copy */
    assert_int_equal(metrics_count(r), 3);
    assert_string_equal(metrics_at(r, 0)->prom, "a_total");
    counter = 21;
    assert_int_equal(metric_value(metrics_at(r, 0)), 21);
    assert_int_equal(metric_value(metrics_at(r, 1)), 42);
    char buf[32];
    assert_string_equal(metric_text(metrics_at(r, 1), buf, sizeof(buf)), "42");
    assert_null(metric_text(metrics_at(r, 2), buf, sizeof(buf)));
    on = 1;
    assert_string_equal(metric_text(metrics_at(r, 2), buf, sizeof(buf)), "on");
    assert_int_equal(metric_value(metrics_at(r, 2)), 0);
    assert_null(metrics_at(r, 3));
    metrics_free(r);
}

static void test_grows(void **state)
{
    (void)state;
    metrics_t *r = metrics_new();
    uint64_t v[1000];
    for (size_t i = 0; i < 1000; i++) {
        v[i] = i;
        metric_t m = {.type = METRIC_GAUGE, .u64 = &v[i]};
        metrics_add(r, &m);
    }
    assert_int_equal(metrics_count(r), 1000);
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(metric_value(metrics_at(r, i)), i);
    metrics_free(r);
    metrics_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_are_read_when_asked),
        cmocka_unit_test(test_grows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
