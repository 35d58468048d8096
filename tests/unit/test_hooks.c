/* Unit tests for hooks.c (the end-of-turn registry) and mode.c (the node's
 * mode): hooks run once each in registration order, a hook added during a run
 * waits for the next run; the mode a node without a cluster reports and the
 * HTTP status of each mode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "node.h"

typedef struct trace {
    char seen[16];
    size_t n;
    node_hooks_t *hooks;
} trace_t;

static void hook_a(void *ud)
{
    trace_t *t = ud;
    t->seen[t->n++] = 'a';
}

static void hook_b(void *ud)
{
    trace_t *t = ud;
    t->seen[t->n++] = 'b';
}

static void hook_adds_c(void *ud);

static void hook_c(void *ud)
{
    trace_t *t = ud;
    t->seen[t->n++] = 'c';
}

static void hook_adds_c(void *ud)
{
    trace_t *t = ud;
    t->seen[t->n++] = '+';
    node_hooks_add(t->hooks, "c", hook_c, t);
}

static void test_hooks_in_order(void **state)
{
    (void)state;
    node_hooks_t h;
    trace_t t = {{0}, 0, &h};
    node_hooks_init(&h);
    node_hooks_run(&h); /* empty: nothing happens */
    node_hooks_add(&h, "a", hook_a, &t);
    node_hooks_add(&h, "b", hook_b, &t);
    node_hooks_add(&h, "adds c", hook_adds_c, &t);
    node_hooks_run(&h);
    assert_string_equal(t.seen, "ab+");
    node_hooks_run(&h);
    assert_string_equal(t.seen, "ab+ab+c");
    node_hooks_free(&h);
}

static void test_mode_alone(void **state)
{
    (void)state;
    node_t n;
    memset(&n, 0, sizeof(n));
    assert_int_equal(node_mode(&n), NODE_SERVING);
    assert_true(node_serves_cache(&n));
    assert_null(node_why_not_serving(&n));
    n.shutting_down = 1;
    assert_int_equal(node_mode(&n), NODE_SHUTTING_DOWN);
    assert_string_equal(node_mode_name(node_mode(&n)), "shutting_down");
    assert_int_equal(node_mode_http_status(NODE_SERVING), 200);
    assert_int_equal(node_mode_http_status(NODE_BYPASSING), 200);
    assert_int_equal(node_mode_http_status(NODE_CUT_OFF), 503);
    assert_int_equal(node_mode_http_status(NODE_SHUTTING_DOWN), 503);
    assert_string_equal(node_mode_name(NODE_BYPASSING), "bypassing");
    assert_string_equal(node_mode_name(NODE_CUT_OFF), "cut_off");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hooks_in_order),
        cmocka_unit_test(test_mode_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
