/* Unit tests for lease: leader leases on a real SQLite store in a temporary
 * directory, with two or three managers (nodes) on one loop, each with its
 * own store handle on the same file. Waits are bounded generously; no test
 * asserts a duration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lease.h"
#include "log.h"
#include "store.h"

#define WAIT_MS 10000
#define TTL_MS 600

static uv_loop_t loop;
static char dir[256], url[512];

static void tick(uv_timer_t *t)
{
    (void)t;
}

typedef int (*pred_fn)(void *ud);

/* Runs the loop until pred(ud) or ms pass; returns pred(ud). */
static int run_until(pred_fn pred, void *ud, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, tick, 5, 5);
    uv_update_time(&loop);
    uint64_t end = uv_now(&loop) + ms;
    while (!(pred && pred(ud)) && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return pred ? pred(ud) : 0;
}

typedef struct nodes {
    store_t *store[3];
    lease_mgr_t *m[3];
    int n;
} nodes_t;

static int holders(nodes_t *ns, int *who)
{
    int count = 0;
    for (int i = 0; i < ns->n; i++)
        if (ns->m[i] && lease_held(ns->m[i], "canonical", NULL)) {
            count++;
            *who = i;
        }
    return count;
}

static int one_holder(void *ud)
{
    int who;
    return holders(ud, &who) == 1;
}

static void open_nodes(nodes_t *ns, int n, int warm_last)
{
    char err[256];
    memset(ns, 0, sizeof(*ns));
    ns->n = n;
    for (int i = 0; i < n; i++) {
        store_opts_t o = {.url = url};
        assert_int_equal(store_open(&loop, &o, &ns->store[i], err, sizeof(err)), 0);
        char name[16];
        snprintf(name, sizeof(name), "n%d", i + 1);
        ns->m[i] = lease_mgr_new(&loop, ns->store[i], name, TTL_MS, warm_last && i == n - 1);
    }
}

static void on_done(void *ud)
{
    *(int *)ud = 1;
}

static int flag_set(void *ud)
{
    return *(int *)ud;
}

static void stop_node(nodes_t *ns, int i)
{
    int done = 0, closed = 0;
    lease_mgr_stop(ns->m[i], on_done, &done);
    assert_true(run_until(flag_set, &done, WAIT_MS));
    ns->m[i] = NULL;
    store_close(ns->store[i], on_done, &closed);
    assert_true(run_until(flag_set, &closed, WAIT_MS));
    ns->store[i] = NULL;
}

static void close_nodes(nodes_t *ns)
{
    for (int i = 0; i < ns->n; i++)
        if (ns->m[i])
            stop_node(ns, i);
}

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/cohort-test-lease-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(url, sizeof(url), "sqlite://%s/cohort.db", dir);
    uv_loop_init(&loop);
    return 0;
}

static int teardown(void **state)
{
    assert_int_equal(uv_loop_close(&loop), 0);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static lease_mgr_t *ahead_of, *over_at;
static int64_t epoch_of;

static int held_ahead(void *ud)
{
    (void)ud;
    return lease_held_ahead(ahead_of, "canonical", NULL);
}

static int epoch_over(void *ud)
{
    (void)ud;
    return lease_epoch_over(over_at, "canonical", epoch_of);
}

/* One holder of three; a clean stop releases, so another holds it with a
 * higher epoch; the views agree on the holder; the old epoch is reported
 * over (lease_epoch_over) by every manager once the store said so. */
static void test_one_holder_and_handover(void **state)
{
    nodes_t ns;
    open_nodes(&ns, 3, 0);
    assert_true(run_until(one_holder, &ns, WAIT_MS));
    int first = -1, second = -1;
    int64_t e1, e2;
    holders(&ns, &first);
    assert_true(lease_held(ns.m[first], "canonical", &e1));
    assert_true(e1 >= 1);
    lease_view_t v;
    int other = (first + 1) % 3;
    run_until(NULL, NULL, 300);
    assert_int_equal(lease_view(ns.m[other], "canonical", &v), 0);
    char want[16];
    snprintf(want, sizeof(want), "n%d", first + 1);
    assert_string_equal(v.holder, want);
    assert_false(v.is_me);
    assert_true(v.ms_left > 0 && v.ms_left <= TTL_MS);

    assert_false(lease_epoch_over(ns.m[first], "canonical", e1));
    assert_false(lease_epoch_over(ns.m[other], "canonical", e1));
    assert_true(lease_epoch_over(ns.m[other], "canonical", e1 - 1));
    ahead_of = ns.m[first];
    assert_true(run_until(held_ahead, NULL, WAIT_MS));

    stop_node(&ns, first);
    assert_true(run_until(one_holder, &ns, WAIT_MS));
    holders(&ns, &second);
    assert_int_not_equal(second, first);
    assert_true(lease_held(ns.m[second], "canonical", &e2));
    assert_true(e2 > e1);
    /* e1 is over for good, by every manager's answers; e2 is not */
    for (int i = 0; i < 3; i++)
        if (ns.m[i]) {
            epoch_of = e1;
            over_at = ns.m[i];
            assert_true(run_until(epoch_over, NULL, WAIT_MS));
            assert_false(lease_epoch_over(ns.m[i], "canonical", e2));
        }
    close_nodes(&ns);
}

/* A warm manager never holds a lease, even alone, and refuses to acquire. */
static void test_warm_never(void **state)
{
    nodes_t ns;
    char err[128];
    open_nodes(&ns, 1, 1);
    run_until(NULL, NULL, 3 * TTL_MS);
    assert_false(lease_held(ns.m[0], "canonical", NULL));
    assert_int_equal(lease_acquire(ns.m[0], "app", 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "warm"));
    close_nodes(&ns);
}

static int app_held_by(void *ud)
{
    return lease_held(ud, "app", NULL);
}

/* Application leases: acquire, release, taken over by the other node with a
 * higher epoch; bad names refused. */
static void test_application_lease(void **state)
{
    nodes_t ns;
    char err[128];
    int64_t e1, e2;
    open_nodes(&ns, 2, 0);
    assert_int_equal(lease_acquire(ns.m[0], "app", 0, err, sizeof(err)), 0);
    assert_true(run_until(app_held_by, ns.m[0], WAIT_MS));
    assert_int_equal(lease_acquire(ns.m[1], "app", 0, err, sizeof(err)), 0);
    run_until(NULL, NULL, 2 * TTL_MS);
    assert_false(lease_held(ns.m[1], "app", NULL));
    assert_true(lease_held(ns.m[0], "app", &e1));
    assert_int_equal(lease_release(ns.m[0], "app", err, sizeof(err)), 0);
    assert_true(run_until(app_held_by, ns.m[1], WAIT_MS));
    assert_true(lease_held(ns.m[1], "app", &e2));
    assert_int_equal(e2, e1 + 1);
    assert_int_equal(lease_release(ns.m[0], "never", err, sizeof(err)), -1);
    assert_int_equal(lease_release(ns.m[0], "canonical", err, sizeof(err)), -1);
    assert_int_equal(lease_acquire(ns.m[0], "bad name", 0, err, sizeof(err)), -1);
    close_nodes(&ns);
}

int main(void)
{
    log_open("test", NULL, LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_holder_and_handover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_warm_never, setup, teardown),
        cmocka_unit_test_setup_teardown(test_application_lease, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
