/* Unit tests for svc/tracking.c: the invariants listed in tracking.h, with
 * the push bytes redis-server 7 writes (RESP3 invalidate pushes, the RESP2
 * __redis__:invalidate message, the null invalidation, tracking-redir-
 * broken). Clients are bare client_t structures with no socket; the wake
 * function only counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "tracking.h"

static int g_woken;

static void wake_stub(client_t *c)
{
    (void)c;
    g_woken++;
}

static uint64_t g_next_id = 1;

static client_t *new_client(int proto)
{
    client_t *c = xcalloc(1, sizeof(*c));
    buf_init(&c->out);
    c->proto = proto;
    c->id = g_next_id++;
    return c;
}

static void free_client(tracking_t *t, client_t *c)
{
    tracking_client_closed(t, c);
    assert_null(c->tracking);
    buf_free(&c->out);
    free(c);
}

#define ASSERT_OUT(c, lit)                                                                         \
    do {                                                                                           \
        assert_int_equal(buf_len(&(c)->out), sizeof(lit) - 1);                                     \
        assert_memory_equal(buf_head(&(c)->out), lit, sizeof(lit) - 1);                            \
        buf_clear(&(c)->out);                                                                      \
    } while (0)

static void on(tracking_t *t, client_t *c, int opts)
{
    char err[256];
    assert_int_equal(tracking_on(t, c, opts, NULL, 0, NULL, NULL, 0, err, sizeof(err)), 0);
}

static void read_key(tracking_t *t, client_t *c, const char *k)
{
    tracking_read(t, c, k, strlen(k));
}

static void change(tracking_t *t, client_t *by, const char *k)
{
    client_t *prev = tracking_set_current(t, by);
    tracking_key_changed(t, k, strlen(k));
    tracking_set_current(t, prev);
}

static void test_default_once(void **state)
{
    (void)state;
    tracking_t *t = tracking_new(0, wake_stub);
    client_t *a = new_client(3), *b = new_client(3);
    on(t, a, 0);
    read_key(t, a, "k");
    read_key(t, a, "k"); /* twice: one entry */
    tracking_stats_t s;
    tracking_stats(t, &s);
    assert_int_equal(s.keys, 1);
    assert_int_equal(s.items, 1);
    change(t, b, "other");
    change(t, b, "k");
    tracking_flush(t);
    ASSERT_OUT(a, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n");
    assert_int_equal(buf_len(&b->out), 0); /* b does not track */
    change(t, b, "k"); /* forgotten: no second push */
    tracking_flush(t);
    assert_int_equal(buf_len(&a->out), 0);
    tracking_stats(t, &s);
    assert_int_equal(s.keys, 0);
    assert_int_equal(s.items, 0);
    /* several keys of one turn: one push */
    read_key(t, a, "x");
    read_key(t, a, "y");
    change(t, NULL, "x");
    change(t, NULL, "y");
    tracking_flush(t);
    ASSERT_OUT(a, ">2\r\n$10\r\ninvalidate\r\n*2\r\n$1\r\nx\r\n$1\r\ny\r\n");
    free_client(t, a);
    free_client(t, b);
    tracking_free(t);
}

/* A key read again after its change in the same turn is tracked again. */
static void test_read_after_change_same_turn(void **state)
{
    (void)state;
    tracking_t *t = tracking_new(0, wake_stub);
    client_t *a = new_client(3);
    on(t, a, 0);
    read_key(t, a, "k");
    change(t, NULL, "k");
    read_key(t, a, "k");
    tracking_flush(t);
    ASSERT_OUT(a, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n");
    change(t, NULL, "k");
    tracking_flush(t);
    ASSERT_OUT(a, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n");
    free_client(t, a);
    tracking_free(t);
}

static void test_noloop(void **state)
{
    (void)state;
    tracking_t *t = tracking_new(0, wake_stub);
    client_t *a = new_client(3), *b = new_client(3);
    on(t, a, TRACKING_NOLOOP);
    read_key(t, a, "k");
    change(t, a, "k");
    tracking_flush(t);
    assert_int_equal(buf_len(&a->out), 0);
    read_key(t, a, "k");
    change(t, b, "k");
    tracking_flush(t);
    ASSERT_OUT(a, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n");
    free_client(t, a);
    free_client(t, b);
    tracking_free(t);
}

static void test_optin_optout(void **state)
{
    (void)state;
    tracking_t *t = tracking_new(0, wake_stub);
    client_t *in = new_client(3), *out = new_client(3);
    char err[256];
    on(t, in, TRACKING_OPTIN);
    on(t, out, TRACKING_OPTOUT);
    assert_int_equal(tracking_caching(t, in, 0, err, sizeof(err)), -1);
    assert_string_equal(err,
                        "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.");
    read_key(t, in, "a"); /* not after CACHING YES: not tracked */
    assert_int_equal(tracking_caching(t, in, 1, err, sizeof(err)), 0);
    assert_true(tracking_client_flags(in) & TRACKING_CACHING);
    tracking_command_done(t, in, 1); /* the CLIENT CACHING command itself */
    read_key(t, in, "b");
    tracking_command_done(t, in, 0);
    read_key(t, in, "c"); /* the command after the next: not tracked */
    read_key(t, out, "d");
    assert_int_equal(tracking_caching(t, out, 0, err, sizeof(err)), 0);
    tracking_command_done(t, out, 1);
    read_key(t, out, "e"); /* after CACHING NO: not tracked */
    tracking_command_done(t, out, 0);
    const char *keys[] = {"a", "b", "c", "d", "e"};
    for (size_t i = 0; i < 5; i++)
        change(t, NULL, keys[i]);
    tracking_flush(t);
    ASSERT_OUT(in, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nb\r\n");
    ASSERT_OUT(out, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nd\r\n");
    free_client(t, in);
    free_client(t, out);
    tracking_free(t);
}

static void test_bcast_prefixes(void **state)
{
    (void)state;
    tracking_t *t = tracking_new(0, wake_stub);
    client_t *a = new_client(3), *all = new_client(3), *nl = new_client(3);
    char err[256];
    const char *p[] = {"user:", "item:"};
    size_t pl[] = {5, 5};
    assert_int_equal(tracking_on(t, a, TRACKING_BCAST, NULL, 0, p, pl, 2, err, sizeof(err)), 0);
    on(t, all, TRACKING_BCAST);
    on(t, nl, TRACKING_BCAST | TRACKING_NOLOOP);
    tracking_stats_t s;
    tracking_stats(t, &s);
    assert_int_equal(s.prefixes, 3); /* user:, item: and "" */
    const char *const *cp;
    const size_t *cl;
    assert_int_equal(tracking_client_prefixes(a, &cp, &cl), 2);
    assert_memory_equal(cp[0], "item:", 5); /* sorted */
    change(t, nl, "user:1");
    change(t, nl, "user:1"); /* twice in a turn: once */
    change(t, nl, "other");
    tracking_flush(t);
    ASSERT_OUT(a, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$6\r\nuser:1\r\n");
    ASSERT_OUT(all, ">2\r\n$10\r\ninvalidate\r\n*2\r\n$6\r\nuser:1\r\n$5\r\nother\r\n");
    assert_int_equal(buf_len(&nl->out), 0); /* NOLOOP: its own changes */
    change(t, a, "item:9");
    tracking_flush(t);
    ASSERT_OUT(nl, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$6\r\nitem:9\r\n");
    buf_clear(&a->out);
    buf_clear(&all->out);
    /* overlapping prefixes are refused, with redis-server's text */
    const char *q[] = {"us"};
    size_t ql[] = {2};
    assert_int_equal(tracking_on(t, a, TRACKING_BCAST, NULL, 0, q, ql, 1, err, sizeof(err)), -1);
    assert_string_equal(err, "Prefix 'us' overlaps with an existing prefix 'user:'. Prefixes for "
                             "a single client must not overlap.");
    free_client(t, a);
    free_client(t, all);
    free_client(t, nl);
    tracking_stats(t, &s);
    assert_int_equal(s.prefixes, 0);
    tracking_free(t);
}

static void test_option_errors(void **state)
{
    (void)state;
    tracking_t *t = tracking_new(0, wake_stub);
    client_t *a = new_client(3);
    char err[256];
    const char *p[] = {"x"};
    size_t pl[] = {1};
    assert_int_equal(tracking_on(t, a, 0, NULL, 0, p, pl, 1, err, sizeof(err)), -1);
    assert_string_equal(err, "PREFIX option requires BCAST mode to be enabled");
    assert_int_equal(tracking_on(t, a, TRACKING_BCAST | TRACKING_OPTIN, NULL, 0, NULL, NULL, 0,
                                 err, sizeof(err)),
                     -1);
    assert_string_equal(err, "OPTIN and OPTOUT are not compatible with BCAST");
    assert_int_equal(tracking_on(t, a, TRACKING_OPTIN | TRACKING_OPTOUT, NULL, 0, NULL, NULL, 0,
                                 err, sizeof(err)),
                     -1);
    assert_string_equal(err, "You can't specify both OPTIN mode and OPTOUT mode");
    on(t, a, TRACKING_OPTIN);
    assert_int_equal(tracking_on(t, a, TRACKING_OPTOUT, NULL, 0, NULL, NULL, 0, err, sizeof(err)),
                     -1);
    client_t *off = new_client(3);
    assert_int_equal(tracking_caching(t, off, 1, err, sizeof(err)), -1);
    assert_string_equal(err, "CLIENT CACHING can be called only when the client is in tracking "
                             "mode with OPTIN or OPTOUT mode enabled");
    free_client(t, off);
    free_client(t, a);
    tracking_free(t);
}

static void test_flush_all_null(void **state)
{
    (void)state;
    tracking_t *t = tracking_new(0, wake_stub);
    client_t *a = new_client(3), *b = new_client(2), *r = new_client(2);
    on(t, a, 0);
    char err[256];
    r->flags |= CLIENT_PUBSUB; /* subscribed to __redis__:invalidate */
    assert_int_equal(tracking_on(t, b, 0, r, r->id, NULL, NULL, 0, err, sizeof(err)), 0);
    read_key(t, a, "k");
    read_key(t, b, "k");
    tracking_all_changed(t);
    change(t, NULL, "k"); /* forgotten by the flush */
    tracking_flush(t);
    ASSERT_OUT(a, ">2\r\n$10\r\ninvalidate\r\n_\r\n");
    ASSERT_OUT(r, "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n");
    assert_int_equal(buf_len(&b->out), 0);
    tracking_stats_t s;
    tracking_stats(t, &s);
    assert_int_equal(s.keys, 0);
    free_client(t, a);
    free_client(t, b);
    free_client(t, r);
    tracking_free(t);
}

static void test_redirect_resp2(void **state)
{
    (void)state;
    tracking_t *t = tracking_new(0, wake_stub);
    client_t *src = new_client(2), *r = new_client(2), *plain = new_client(2);
    char err[256];
    assert_int_equal(tracking_on(t, src, 0, r, r->id, NULL, NULL, 0, err, sizeof(err)), 0);
    assert_int_equal(tracking_client_redirect(src), r->id);
    read_key(t, src, "k");
    change(t, NULL, "k");
    tracking_flush(t);
    assert_int_equal(buf_len(&r->out), 0); /* not subscribed: nothing in RESP2 */
    r->flags |= CLIENT_PUBSUB;
    read_key(t, src, "k");
    change(t, NULL, "k");
    tracking_flush(t);
    ASSERT_OUT(r, "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\nk\r\n");
    assert_int_equal(buf_len(&src->out), 0);
    /* a RESP2 connection without redirect gets nothing (no push in RESP2) */
    on(t, plain, 0);
    read_key(t, plain, "k");
    change(t, NULL, "k");
    tracking_flush(t);
    assert_int_equal(buf_len(&plain->out), 0);
    free_client(t, src);
    free_client(t, r);
    free_client(t, plain);
    tracking_free(t);
}

static void test_broken_redirect(void **state)
{
    (void)state;
    tracking_t *t = tracking_new(0, wake_stub);
    client_t *src = new_client(3), *r = new_client(3);
    char err[256];
    assert_int_equal(tracking_on(t, src, 0, r, r->id, NULL, NULL, 0, err, sizeof(err)), 0);
    uint64_t rid = r->id;
    read_key(t, src, "k");
    free_client(t, r);
    change(t, NULL, "k");
    tracking_flush(t);
    char want[128];
    int n = snprintf(want, sizeof(want), ">2\r\n$21\r\ntracking-redir-broken\r\n:%llu\r\n",
                     (unsigned long long)rid);
    assert_int_equal(buf_len(&src->out), (size_t)n);
    assert_memory_equal(buf_head(&src->out), want, (size_t)n);
    assert_true(tracking_client_flags(src) & TRACKING_BROKEN_REDIR);
    free_client(t, src);
    tracking_free(t);
}

static void test_table_limit(void **state)
{
    (void)state;
    tracking_t *t = tracking_new(100, wake_stub);
    client_t *a = new_client(3);
    on(t, a, 0);
    char k[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof(k), "key:%d", i);
        read_key(t, a, k);
        tracking_stats_t s;
        tracking_stats(t, &s);
        assert_true(s.keys <= 100);
    }
    tracking_stats_t s;
    tracking_stats(t, &s);
    assert_int_equal(s.keys, 100);
    assert_int_equal(s.evicted_keys, 900);
    tracking_flush(t);
    /* the 900 oldest were invalidated, in one push */
    assert_memory_equal(buf_head(&a->out), ">2\r\n$10\r\ninvalidate\r\n*900\r\n$5\r\nkey:0\r\n",
                        sizeof(">2\r\n$10\r\ninvalidate\r\n*900\r\n$5\r\nkey:0\r\n") - 1);
    buf_clear(&a->out);
    change(t, NULL, "key:5"); /* evicted: nothing more */
    change(t, NULL, "key:999");
    tracking_flush(t);
    ASSERT_OUT(a, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$7\r\nkey:999\r\n");
    tracking_set_max_keys(t, 10);
    read_key(t, a, "new");
    tracking_stats(t, &s);
    assert_int_equal(s.keys, 10);
    free_client(t, a);
    tracking_free(t);
}

static void test_degraded(void **state)
{
    (void)state;
    tracking_t *t = tracking_new(0, wake_stub);
    client_t *a = new_client(3), *b = new_client(3);
    on(t, a, 0);
    on(t, b, TRACKING_BCAST);
    read_key(t, a, "k");
    tracking_set_degraded(t, 1); /* everyone drops everything */
    tracking_flush(t);
    ASSERT_OUT(a, ">2\r\n$10\r\ninvalidate\r\n_\r\n");
    ASSERT_OUT(b, ">2\r\n$10\r\ninvalidate\r\n_\r\n");
    tracking_set_degraded(t, 1); /* still degraded: nothing new */
    tracking_flush(t);
    assert_int_equal(buf_len(&a->out), 0);
    read_key(t, a, "k"); /* a read while degraded is dropped after its turn */
    read_key(t, b, "x");
    tracking_flush(t);
    ASSERT_OUT(a, ">2\r\n$10\r\ninvalidate\r\n_\r\n");
    ASSERT_OUT(b, ">2\r\n$10\r\ninvalidate\r\n_\r\n");
    tracking_stats_t s;
    tracking_stats(t, &s);
    assert_int_equal(s.keys, 0);
    tracking_set_degraded(t, 0); /* the lease holds again: reads are tracked */
    read_key(t, a, "k");
    change(t, NULL, "k");
    tracking_flush(t);
    ASSERT_OUT(a, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n");
    free_client(t, a);
    free_client(t, b);
    tracking_free(t);
}

/* Tracking clients in every mode come and go; returns with all closed and
 * the table flushed. */
static void cycle(tracking_t *t)
{
    client_t *a = new_client(3), *b = new_client(3), *r = new_client(2);
    char err[256];
    const char *p[] = {"p"};
    size_t pl[] = {1};
    on(t, a, 0);
    assert_int_equal(tracking_on(t, b, TRACKING_BCAST, r, r->id, p, pl, 1, err, sizeof(err)), 0);
    char k[32];
    for (int i = 0; i < 500; i++) {
        snprintf(k, sizeof(k), "p%d", i);
        read_key(t, a, k);
        if (i % 2)
            change(t, NULL, k);
    }
    free_client(t, a); /* pending pushes go with it */
    free_client(t, r); /* b's redirect target */
    free_client(t, b);
    tracking_all_changed(t); /* the table keeps keys of closed readers until then */
    tracking_flush(t);
}

static void test_close_releases(void **state)
{
    (void)state;
    tracking_t *t = tracking_new(0, wake_stub);
    cycle(t); /* the hash tables keep their buckets: measure after one round */
    size_t m1 = tracking_memory(t);
    cycle(t);
    assert_int_equal(tracking_memory(t), m1);
    tracking_stats_t s;
    tracking_stats(t, &s);
    assert_int_equal(s.clients, 0);
    assert_int_equal(s.keys, 0);
    assert_int_equal(s.items, 0);
    assert_int_equal(s.prefixes, 0);
    tracking_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_once),   cmocka_unit_test(test_read_after_change_same_turn),
        cmocka_unit_test(test_noloop),         cmocka_unit_test(test_optin_optout),
        cmocka_unit_test(test_bcast_prefixes), cmocka_unit_test(test_option_errors),
        cmocka_unit_test(test_flush_all_null), cmocka_unit_test(test_redirect_resp2),
        cmocka_unit_test(test_broken_redirect), cmocka_unit_test(test_table_limit),
        cmocka_unit_test(test_close_releases), cmocka_unit_test(test_degraded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
