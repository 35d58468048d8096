/* Unit tests for svc/pubsub.c: the invariants listed in pubsub.h, the reply
 * bytes of confirmations and messages (RESP2 and RESP3, as redis-server 7.0
 * writes them), the interest callback a cluster layer will use, and the
 * output and subscription limits. Clients are bare client_t structures with
 * no socket; "closing" one is a stub that records it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "mem.h"
#include "pubsub.h"

static pubsub_t *g_ps; /* for the close stub */
static int g_closed;

static void close_stub(client_t *c, const char *why)
{
    g_closed++;
    c->flags |= CLIENT_CLOSING;
    pubsub_client_closed(g_ps, c);
}

static client_t *new_client(int proto)
{
    client_t *c = xcalloc(1, sizeof(*c));
    buf_init(&c->out);
    c->proto = proto;
    c->id = 1;
    return c;
}

static void free_client(client_t *c)
{
    buf_free(&c->out);
    free(c);
}

static pubsub_t *new_ps(size_t max_subs, size_t hard, size_t soft, int64_t soft_ms)
{
    pubsub_limits_t lim = {max_subs, hard, soft, soft_ms};
    g_ps = pubsub_new(&lim);
    g_closed = 0;
    pubsub_set_close_fn(g_ps, close_stub);
    return g_ps;
}

/* c->out equals the literal, then is emptied. */
#define ASSERT_OUT(c, lit)                                                                         \
    do {                                                                                           \
        assert_int_equal(buf_len(&(c)->out), sizeof(lit) - 1);                                     \
        assert_memory_equal(buf_head(&(c)->out), lit, sizeof(lit) - 1);                            \
        buf_clear(&(c)->out);                                                                      \
    } while (0)

static void sub1(pubsub_t *ps, client_t *c, int kind, const char *name)
{
    size_t len = strlen(name);
    assert_int_equal(pubsub_subscribe(ps, c, kind, 1, &name, &len), 0);
}

static void unsub1(pubsub_t *ps, client_t *c, int kind, const char *name)
{
    size_t len = strlen(name);
    pubsub_unsubscribe(ps, c, kind, 1, &name, &len);
}

static void test_counts(void **state)
{
    pubsub_t *ps = new_ps(0, 0, 0, 0);
    client_t *a = new_client(2), *b = new_client(2);
    const char *names[] = {"c1", "c2"};
    size_t lens[] = {2, 2};
    assert_int_equal(pubsub_subscribe(ps, a, PUBSUB_CHANNEL, 2, names, lens), 0);
    ASSERT_OUT(a, "*3\r\n$9\r\nsubscribe\r\n$2\r\nc1\r\n:1\r\n"
                  "*3\r\n$9\r\nsubscribe\r\n$2\r\nc2\r\n:2\r\n");
    sub1(ps, b, PUBSUB_CHANNEL, "c1");
    sub1(ps, b, PUBSUB_PATTERN, "c*");
    ASSERT_OUT(b, "*3\r\n$9\r\nsubscribe\r\n$2\r\nc1\r\n:1\r\n"
                  "*3\r\n$10\r\npsubscribe\r\n$2\r\nc*\r\n:2\r\n");
    sub1(ps, b, PUBSUB_SHARD, "s");
    ASSERT_OUT(b, "*3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:1\r\n"); /* shard counts alone */
    assert_int_equal(pubsub_numsub(ps, PUBSUB_CHANNEL, "c1", 2), 2);
    assert_int_equal(pubsub_numsub(ps, PUBSUB_CHANNEL, "c2", 2), 1);
    assert_int_equal(pubsub_numsub(ps, PUBSUB_CHANNEL, "c*", 2), 0); /* patterns not counted */
    assert_int_equal(pubsub_numsub(ps, PUBSUB_SHARD, "s", 1), 1);
    assert_int_equal(pubsub_topics(ps, PUBSUB_CHANNEL), 2);
    assert_int_equal(pubsub_topics(ps, PUBSUB_PATTERN), 1);
    assert_int_equal(pubsub_topics(ps, PUBSUB_SHARD), 1);
    unsub1(ps, a, PUBSUB_CHANNEL, "c1");
    ASSERT_OUT(a, "*3\r\n$11\r\nunsubscribe\r\n$2\r\nc1\r\n:1\r\n");
    assert_int_equal(pubsub_numsub(ps, PUBSUB_CHANNEL, "c1", 2), 1);
    unsub1(ps, a, PUBSUB_CHANNEL, "nope"); /* not subscribed: still confirmed */
    ASSERT_OUT(a, "*3\r\n$11\r\nunsubscribe\r\n$4\r\nnope\r\n:1\r\n");
    pubsub_client_closed(ps, a);
    pubsub_client_closed(ps, b);
    assert_int_equal(pubsub_topics(ps, PUBSUB_CHANNEL), 0);
    assert_int_equal(pubsub_topics(ps, PUBSUB_PATTERN), 0);
    pubsub_free(ps);
    free_client(a);
    free_client(b);
}

static void test_duplicate_subscribe(void **state)
{
    pubsub_t *ps = new_ps(0, 0, 0, 0);
    client_t *a = new_client(2);
    const char *names[] = {"c", "c", "c"};
    size_t lens[] = {1, 1, 1};
    pubsub_subscribe(ps, a, PUBSUB_CHANNEL, 3, names, lens);
    ASSERT_OUT(a, "*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"
                  "*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"
                  "*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n");
    assert_int_equal(pubsub_numsub(ps, PUBSUB_CHANNEL, "c", 1), 1);
    assert_int_equal(pubsub_publish_local(ps, "c", 1, "m", 1, 0), 1);
    pubsub_client_closed(ps, a);
    pubsub_free(ps);
    free_client(a);
}

static void test_flag(void **state)
{
    pubsub_t *ps = new_ps(0, 0, 0, 0);
    client_t *a = new_client(2);
    assert_false(a->flags & CLIENT_PUBSUB);
    sub1(ps, a, PUBSUB_SHARD, "s");
    assert_true(a->flags & CLIENT_PUBSUB);
    sub1(ps, a, PUBSUB_CHANNEL, "c");
    pubsub_unsubscribe(ps, a, PUBSUB_CHANNEL, 0, NULL, NULL);
    assert_true(a->flags & CLIENT_PUBSUB); /* the shard subscription holds it */
    pubsub_unsubscribe(ps, a, PUBSUB_SHARD, 0, NULL, NULL);
    assert_false(a->flags & CLIENT_PUBSUB);
    assert_null(a->pubsub);
    sub1(ps, a, PUBSUB_PATTERN, "p*");
    assert_true(a->flags & CLIENT_PUBSUB);
    pubsub_reset_client(ps, a);
    assert_false(a->flags & CLIENT_PUBSUB);
    pubsub_free(ps);
    free_client(a);
}

static void test_unsubscribe_all(void **state)
{
    pubsub_t *ps = new_ps(0, 0, 0, 0);
    client_t *a = new_client(2), *b = new_client(3);
    pubsub_unsubscribe(ps, a, PUBSUB_CHANNEL, 0, NULL, NULL);
    ASSERT_OUT(a, "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
    pubsub_unsubscribe(ps, b, PUBSUB_PATTERN, 0, NULL, NULL);
    ASSERT_OUT(b, ">3\r\n$12\r\npunsubscribe\r\n_\r\n:0\r\n");
    const char *names[] = {"x", "y"};
    size_t lens[] = {1, 1};
    pubsub_subscribe(ps, b, PUBSUB_SHARD, 2, names, lens);
    ASSERT_OUT(b, ">3\r\n$10\r\nssubscribe\r\n$1\r\nx\r\n:1\r\n"
                  ">3\r\n$10\r\nssubscribe\r\n$1\r\ny\r\n:2\r\n");
    pubsub_unsubscribe(ps, b, PUBSUB_SHARD, 0, NULL, NULL);
    ASSERT_OUT(b, ">3\r\n$12\r\nsunsubscribe\r\n$1\r\nx\r\n:1\r\n"
                  ">3\r\n$12\r\nsunsubscribe\r\n$1\r\ny\r\n:0\r\n");
    assert_int_equal(pubsub_topics(ps, PUBSUB_SHARD), 0);
    pubsub_free(ps);
    free_client(a);
    free_client(b);
}

typedef struct event {
    int kind, present;
    char name[16];
} event_t;
static event_t events[16];
static int nevents;

static void on_interest(void *ud, int kind, const char *name, size_t len, int present)
{
    assert_true(nevents < 16 && len < 16);
    events[nevents].kind = kind;
    events[nevents].present = present;
    memcpy(events[nevents].name, name, len);
    events[nevents].name[len] = '\0';
    nevents++;
}

typedef struct count_event {
    int kind;
    size_t subscribers;
    char name[16];
    int interest_events; /* nevents when it was called */
} count_event_t;
static count_event_t counts[16];
static int ncounts;

static void on_count(void *ud, int kind, const char *name, size_t len, size_t subscribers)
{
    assert_true(ncounts < 16 && len < 16);
    counts[ncounts].kind = kind;
    counts[ncounts].subscribers = subscribers;
    memcpy(counts[ncounts].name, name, len);
    counts[ncounts].name[len] = '\0';
    counts[ncounts].interest_events = nevents;
    ncounts++;
}

static void test_count_callback(void **state)
{
    pubsub_t *ps = new_ps(0, 0, 0, 0);
    nevents = 0;
    ncounts = 0;
    pubsub_set_interest_cb(ps, on_interest, NULL);
    pubsub_set_count_cb(ps, on_count, NULL);
    client_t *a = new_client(2), *b = new_client(2);
    sub1(ps, a, PUBSUB_SHARD, "s");
    sub1(ps, b, PUBSUB_SHARD, "s");
    sub1(ps, b, PUBSUB_SHARD, "s"); /* already subscribed: no change, no call */
    assert_int_equal(ncounts, 2);
    assert_int_equal(counts[0].subscribers, 1);
    assert_int_equal(counts[1].subscribers, 2);
    assert_int_equal(counts[1].kind, PUBSUB_SHARD);
    assert_string_equal(counts[1].name, "s");
    unsub1(ps, a, PUBSUB_SHARD, "s");
    assert_int_equal(ncounts, 3);
    assert_int_equal(counts[2].subscribers, 1);
    pubsub_client_closed(ps, b);
    assert_int_equal(ncounts, 4);
    assert_int_equal(counts[3].subscribers, 0);
    assert_int_equal(counts[3].interest_events, 1); /* before the "gone" */
    assert_int_equal(nevents, 2);
    assert_int_equal(events[1].present, 0);
    assert_int_equal(pubsub_numsub(ps, PUBSUB_SHARD, "s", 1), 0);
    pubsub_free(ps);
    free_client(a);
    free_client(b);
}

static void test_interest_callback(void **state)
{
    pubsub_t *ps = new_ps(0, 0, 0, 0);
    nevents = 0;
    pubsub_set_interest_cb(ps, on_interest, NULL);
    client_t *a = new_client(2), *b = new_client(2);
    sub1(ps, a, PUBSUB_CHANNEL, "c");
    sub1(ps, b, PUBSUB_CHANNEL, "c"); /* no change: c already had a subscriber */
    sub1(ps, b, PUBSUB_PATTERN, "p*");
    assert_int_equal(nevents, 2);
    assert_true(pubsub_has_interest(ps, "c", 1, 0));
    assert_true(pubsub_has_interest(ps, "pq", 2, 0));
    assert_false(pubsub_has_interest(ps, "pq", 2, 1)); /* patterns do not see shard channels */
    assert_false(pubsub_has_interest(ps, "q", 1, 0));
    unsub1(ps, a, PUBSUB_CHANNEL, "c");
    assert_int_equal(nevents, 2);
    pubsub_client_closed(ps, b);
    assert_int_equal(nevents, 4);
    assert_int_equal(events[0].kind, PUBSUB_CHANNEL);
    assert_string_equal(events[0].name, "c");
    assert_int_equal(events[0].present, 1);
    assert_int_equal(events[1].kind, PUBSUB_PATTERN);
    assert_string_equal(events[1].name, "p*");
    assert_int_equal(events[2].present + events[3].present, 0);
    assert_false(pubsub_has_interest(ps, "c", 1, 0));
    pubsub_free(ps);
    free_client(a);
    free_client(b);
}

static void test_publish_counts(void **state)
{
    pubsub_t *ps = new_ps(0, 0, 0, 0);
    client_t *a = new_client(2), *b = new_client(3);
    sub1(ps, a, PUBSUB_CHANNEL, "news");
    sub1(ps, a, PUBSUB_PATTERN, "n*");
    sub1(ps, b, PUBSUB_PATTERN, "*s");
    sub1(ps, b, PUBSUB_SHARD, "news");
    buf_clear(&a->out);
    buf_clear(&b->out);
    assert_int_equal(pubsub_publish_local(ps, "news", 4, "hi", 2, 0), 3);
    ASSERT_OUT(a, "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
                  "*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
    ASSERT_OUT(b, ">4\r\n$8\r\npmessage\r\n$2\r\n*s\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
    assert_int_equal(pubsub_publish_local(ps, "news", 4, "x", 1, 1), 1);
    ASSERT_OUT(b, ">3\r\n$8\r\nsmessage\r\n$4\r\nnews\r\n$1\r\nx\r\n");
    assert_int_equal(buf_len(&a->out), 0);
    assert_int_equal(pubsub_publish_local(ps, "", 0, "x", 1, 0), 0); /* '*' needs a byte */
    assert_int_equal(pubsub_publish_local(ps, "nope", 4, "x", 1, 0), 1);
    assert_int_equal(pubsub_stats(ps)->messages, 4);
    pubsub_client_closed(ps, a);
    pubsub_client_closed(ps, b);
    pubsub_free(ps);
    free_client(a);
    free_client(b);
}

static void test_close_drops_everything(void **state)
{
    pubsub_t *ps = new_ps(0, 0, 0, 0);
    client_t *a = new_client(2);
    for (int i = 0; i < 1000; i++) {
        char name[16];
        snprintf(name, sizeof(name), "ch%d", i);
        sub1(ps, a, i % 3, name);
    }
    assert_int_equal(pubsub_client_subscriptions(a, PUBSUB_CHANNEL), 334);
    pubsub_client_closed(ps, a);
    assert_null(a->pubsub);
    for (int k = 0; k < PUBSUB_KINDS; k++)
        assert_int_equal(pubsub_topics(ps, k), 0);
    assert_int_equal(pubsub_publish_local(ps, "ch0", 3, "m", 1, 0), 0);
    pubsub_free(ps);
    free_client(a);
}

static void test_memory_returns(void **state)
{
    pubsub_t *ps = new_ps(0, 0, 0, 0);
    size_t base = pubsub_memory(ps);
    client_t *a = new_client(2), *b = new_client(2);
    for (int i = 0; i < 5000; i++) {
        char name[24];
        snprintf(name, sizeof(name), "pattern:%d:*", i);
        sub1(ps, a, PUBSUB_PATTERN, name);
        sub1(ps, b, PUBSUB_CHANNEL, name);
    }
    size_t full = pubsub_memory(ps);
    assert_true(full > base + 5000 * 2 * 40);
    pubsub_unsubscribe(ps, b, PUBSUB_CHANNEL, 0, NULL, NULL);
    pubsub_reset_client(ps, a);
    assert_int_equal(pubsub_memory(ps), base);
    pubsub_free(ps);
    free_client(a);
    free_client(b);
}

static void test_output_limit_hard(void **state)
{
    pubsub_t *ps = new_ps(0, 400, 0, 0);
    client_t *slow = new_client(2), *fast = new_client(2);
    sub1(ps, slow, PUBSUB_CHANNEL, "c");
    sub1(ps, fast, PUBSUB_CHANNEL, "c");
    char msg[64];
    memset(msg, 'x', sizeof(msg));
    size_t sent = 0;
    for (int i = 0; i < 20; i++) {
        buf_clear(&fast->out); /* fast reads everything */
        size_t n = pubsub_publish_local(ps, "c", 1, msg, sizeof(msg), 0);
        assert_true(buf_len(&fast->out) > sizeof(msg)); /* fast always gets it */
        if (n == 1)
            break;
        assert_int_equal(n, 2);
        sent++;
    }
    assert_int_equal(g_closed, 1);
    assert_true(slow->flags & CLIENT_CLOSING);
    assert_null(slow->pubsub);
    assert_true(sent >= 3 && sent < 20);
    assert_int_equal(pubsub_stats(ps)->output_limit_disconnects, 1);
    assert_int_equal(pubsub_numsub(ps, PUBSUB_CHANNEL, "c", 1), 1);
    pubsub_client_closed(ps, fast);
    pubsub_free(ps);
    free_client(slow);
    free_client(fast);
}

static void test_output_limit_soft(void **state)
{
    pubsub_t *ps = new_ps(0, 0, 100, 1000);
    client_t *slow = new_client(2);
    sub1(ps, slow, PUBSUB_CHANNEL, "c");
    char msg[200];
    memset(msg, 'y', sizeof(msg));
    clock_tick();
    int64_t now = clock_now_ms();
    pubsub_publish_local(ps, "c", 1, msg, sizeof(msg), 0); /* over soft: the clock starts */
    assert_int_equal(g_closed, 0);
    pubsub_cron(ps, now + 500);
    assert_int_equal(g_closed, 0);
    pubsub_cron(ps, now + 5000);
    assert_int_equal(g_closed, 1);
    pubsub_free(ps);
    free_client(slow);

    /* Back under the soft limit before the time is up: the clock stops. */
    ps = new_ps(0, 0, 100, 1000);
    slow = new_client(2);
    sub1(ps, slow, PUBSUB_CHANNEL, "c");
    pubsub_publish_local(ps, "c", 1, msg, sizeof(msg), 0);
    buf_clear(&slow->out);
    pubsub_cron(ps, now + 5000);
    assert_int_equal(g_closed, 0);
    pubsub_client_closed(ps, slow);
    pubsub_free(ps);
    free_client(slow);
}

static void test_subscription_limit(void **state)
{
    pubsub_t *ps = new_ps(3, 0, 0, 0);
    client_t *a = new_client(2);
    const char *names[] = {"a", "b", "c", "d"};
    size_t lens[] = {1, 1, 1, 1};
    assert_int_equal(pubsub_subscribe(ps, a, PUBSUB_CHANNEL, 4, names, lens), -1);
    assert_int_equal(pubsub_topics(ps, PUBSUB_CHANNEL), 0);
    assert_memory_equal(buf_head(&a->out), "-ERR subscription limit", 23);
    buf_clear(&a->out);
    assert_int_equal(pubsub_subscribe(ps, a, PUBSUB_CHANNEL, 3, names, lens), 0);
    /* already subscribed: resubscribing fits */
    assert_int_equal(pubsub_subscribe(ps, a, PUBSUB_CHANNEL, 3, names, lens), 0);
    assert_int_equal(pubsub_subscribe(ps, a, PUBSUB_PATTERN, 1, names, lens), -1);
    assert_int_equal(pubsub_stats(ps)->subscription_limit_refusals, 2);
    pubsub_client_closed(ps, a);
    pubsub_free(ps);
    free_client(a);
}

static void collect(void *ud, const char *name, size_t len, size_t subs)
{
    buf_t *b = ud;
    buf_printf(b, "%.*s=%zu ", (int)len, name, subs);
}

static void test_foreach(void **state)
{
    pubsub_t *ps = new_ps(0, 0, 0, 0);
    client_t *a = new_client(2), *b = new_client(2);
    sub1(ps, a, PUBSUB_CHANNEL, "news.1");
    sub1(ps, a, PUBSUB_CHANNEL, "sport");
    sub1(ps, b, PUBSUB_CHANNEL, "news.2");
    sub1(ps, b, PUBSUB_CHANNEL, "news.1");
    buf_t out;
    buf_init(&out);
    pubsub_foreach(ps, PUBSUB_CHANNEL, "news.*", 6, collect, &out);
    buf_append(&out, "", 1);
    assert_string_equal(buf_head(&out), "news.1=2 news.2=1 ");
    buf_clear(&out);
    pubsub_foreach(ps, PUBSUB_CHANNEL, NULL, 0, collect, &out);
    buf_append(&out, "", 1);
    assert_string_equal(buf_head(&out), "news.1=2 sport=1 news.2=1 ");
    buf_free(&out);
    pubsub_client_closed(ps, a);
    pubsub_client_closed(ps, b);
    pubsub_free(ps);
    free_client(a);
    free_client(b);
}

/* Enough topics and subscriptions to go through several incremental
 * rehashes, with deletes in the middle of them: every lookup stays right. */
static void test_many_topics_rehash(void **state)
{
    pubsub_t *ps = new_ps(0, 0, 0, 0);
    client_t *a = new_client(2), *b = new_client(2);
    enum { N = 20000 };
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        sub1(ps, a, PUBSUB_CHANNEL, name);
        if (i % 3 == 0)
            sub1(ps, b, PUBSUB_CHANNEL, name);
        if (i % 2 == 1) { /* drop an earlier one while the tables grow */
            snprintf(name, sizeof(name), "t%d", i / 2);
            unsub1(ps, a, PUBSUB_CHANNEL, name);
        }
        buf_clear(&a->out);
        buf_clear(&b->out);
    }
    size_t topics = 0;
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        size_t want = (size_t)(i >= N / 2) + (size_t)(i % 3 == 0);
        assert_int_equal(pubsub_numsub(ps, PUBSUB_CHANNEL, name, strlen(name)), want);
        topics += want > 0;
    }
    assert_int_equal(pubsub_topics(ps, PUBSUB_CHANNEL), topics);
    assert_int_equal(pubsub_client_subscriptions(a, PUBSUB_CHANNEL), N / 2);
    assert_int_equal(pubsub_publish_local(ps, "t0", 2, "m", 1, 0), 1);
    assert_int_equal(pubsub_publish_local(ps, "t19998", 6, "m", 1, 0), 2);
    pubsub_client_closed(ps, a);
    pubsub_client_closed(ps, b);
    assert_int_equal(pubsub_topics(ps, PUBSUB_CHANNEL), 0);
    pubsub_free(ps);
    free_client(a);
    free_client(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_duplicate_subscribe),
        cmocka_unit_test(test_flag),
        cmocka_unit_test(test_unsubscribe_all),
        cmocka_unit_test(test_interest_callback),
        cmocka_unit_test(test_count_callback),
        cmocka_unit_test(test_publish_counts),
        cmocka_unit_test(test_close_drops_everything),
        cmocka_unit_test(test_memory_returns),
        cmocka_unit_test(test_output_limit_hard),
        cmocka_unit_test(test_output_limit_soft),
        cmocka_unit_test(test_subscription_limit),
        cmocka_unit_test(test_foreach),
        cmocka_unit_test(test_many_topics_rehash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
