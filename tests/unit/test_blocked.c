/* Unit tests for net/blocked.c: held clients kept in token order, released
 * from the head while ready, with the cost of a release independent of how
 * many clients are held. Works on a zeroed server and zeroed clients: only
 * the held list and the pending-write list are touched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "client.h"
#include "server_int.h"

enum { N = 8 };

typedef struct fixture {
    server_t s;
    client_t c[N];
} fixture_t;

static fixture_t fx;

static void setup(void)
{
    memset(&fx, 0, sizeof(fx));
    for (int i = 0; i < N; i++) {
        fx.c[i].server = &fx.s;
        fx.c[i].id = (uint64_t)i;
    }
}

/* The ready function: tokens up to *ud are ready; counts its calls. */
static int calls;
static int ready_upto(void *ud, uint64_t token, int64_t since)
{
    (void)since;
    calls++;
    return token <= *(uint64_t *)ud;
}

/* Invariants 1 and 2: the list holds exactly the clients with a token, in
 * token order, and its back links agree with its forward links. */
static void check_list(void)
{
    size_t n = 0;
    uint64_t last = 0;
    client_t *prev = NULL;
    for (client_t *c = fx.s.blocked; c; c = c->bnext) {
        assert_ptr_equal(c->bprev, prev);
        assert_true(c->block_token != 0);
        assert_true(c->block_token >= last);
        last = c->block_token;
        prev = c;
        n++;
    }
    assert_ptr_equal(fx.s.blocked_tail, prev);
    assert_int_equal(n, fx.s.nblocked);
    size_t held = 0;
    for (int i = 0; i < N; i++)
        held += fx.c[i].block_token != 0;
    assert_int_equal(held, n);
}

static void test_held_in_token_order(void **state)
{
    (void)state;
    setup();
    client_block(&fx.c[0], 5);
    client_block(&fx.c[1], 7);
    client_block(&fx.c[2], 3); /* handed over late: steps back past 5 and 7 */
    client_block(&fx.c[3], 7); /* a tie goes after the earlier one */
    check_list();
    assert_ptr_equal(fx.s.blocked, &fx.c[2]);
    assert_ptr_equal(fx.s.blocked->bnext, &fx.c[0]);
    assert_ptr_equal(fx.s.blocked_tail, &fx.c[3]);

    client_block(&fx.c[2], 9); /* a larger token moves it to its new place */
    check_list();
    assert_ptr_equal(fx.s.blocked_tail, &fx.c[2]);
    client_block(&fx.c[2], 4); /* a smaller one changes nothing */
    assert_int_equal(fx.c[2].block_token, 9);
    client_block(&fx.c[4], 0); /* token 0 holds nothing */
    assert_int_equal(fx.c[4].block_token, 0);
    check_list();
}

static void test_release_stops_at_first_not_ready(void **state)
{
    (void)state;
    setup();
    for (int i = 0; i < N; i++)
        client_block(&fx.c[i], (uint64_t)(i + 1) * 10);
    uint64_t upto = 35;
    calls = 0;
    assert_int_equal(server_release_blocked(&fx.s, ready_upto, &upto), 3);
    assert_int_equal(calls, 4); /* 10, 20, 30 ready; 40 not: the rest untouched */
    check_list();
    assert_int_equal(fx.s.nblocked, N - 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fx.c[i].block_token, 0);
        assert_int_equal(fx.c[i].in_wlist, 1); /* its replies go out this turn */
    }
    calls = 0;
    assert_int_equal(server_release_blocked(&fx.s, ready_upto, &upto), 0);
    assert_int_equal(calls, 1);
    upto = UINT64_MAX;
    assert_int_equal(server_release_blocked(&fx.s, ready_upto, &upto), N - 3);
    assert_null(fx.s.blocked);
    assert_null(fx.s.blocked_tail);
    assert_int_equal(fx.s.stats.blocked_releases, N);
}

static void test_forget_and_take_keep_the_list(void **state)
{
    (void)state;
    setup();
    for (int i = 0; i < 5; i++)
        client_block(&fx.c[i], (uint64_t)i + 1);
    blocked_forget(&fx.s, &fx.c[2]); /* middle */
    check_list();
    assert_int_equal(client_unblock_take(&fx.c[4]), 5); /* tail */
    check_list();
    assert_ptr_equal(fx.s.blocked_tail, &fx.c[3]);
    assert_int_equal(client_unblock_take(&fx.c[0]), 1); /* head */
    check_list();
    assert_ptr_equal(fx.s.blocked, &fx.c[1]);
    blocked_forget(&fx.s, &fx.c[0]); /* not held: nothing */
    check_list();
    assert_int_equal(fx.s.nblocked, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_held_in_token_order),
        cmocka_unit_test(test_release_stops_at_first_not_ready),
        cmocka_unit_test(test_forget_and_take_keep_the_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
