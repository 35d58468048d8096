/* Unit tests for svc/presence.c: the invariants listed in presence.h, the
 * event and change callbacks a node and its cluster rely on, the limits, and
 * the JSON event format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "presence.h"

typedef struct log_s {
    int joins, updates, leaves;
    int reasons[4];
    int changes[4]; /* by op */
    char last[256]; /* the last event's JSON */
} log_t;

static void on_event(void *ud, const presence_event_t *ev)
{
    log_t *l = ud;
    if (ev->kind == PRESENCE_EV_JOIN)
        l->joins++;
    else if (ev->kind == PRESENCE_EV_UPDATE)
        l->updates++;
    else {
        l->leaves++;
        l->reasons[ev->reason]++;
    }
    buf_t b;
    buf_init(&b);
    presence_event_json(ev, ev->origin == PRESENCE_SELF ? "me" : "other", &b);
    size_t n = buf_len(&b) < sizeof(l->last) - 1 ? buf_len(&b) : sizeof(l->last) - 1;
    memcpy(l->last, buf_head(&b), n);
    l->last[n] = 0;
    buf_free(&b);
}

static void on_change(void *ud, int op, const char *ch, size_t chlen, const char *member,
                      size_t mlen, const char *meta, size_t metalen)
{
    log_t *l = ud;
    (void)ch, (void)chlen, (void)member, (void)mlen, (void)meta, (void)metalen;
    l->changes[op]++;
}

static presence_t *new_table(log_t *l, size_t max)
{
    memset(l, 0, sizeof(*l));
    presence_t *p = presence_new(max);
    presence_set_hooks(p, on_event, on_change, l);
    return p;
}

static int join(presence_t *p, const char *ch, const char *m, const char *meta, int64_t ttl,
                int64_t now)
{
    char err[128];
    return presence_join(p, ch, strlen(ch), m, strlen(m), meta, strlen(meta), ttl, now, err,
                         sizeof(err));
}

static void test_join_leave_count(void **state)
{
    (void)state;
    log_t l;
    presence_t *p = new_table(&l, 0);
    assert_int_equal(join(p, "room", "alice", "{}", 0, 0), 1);
    assert_int_equal(join(p, "room", "bob", "", 0, 0), 1);
    assert_int_equal(join(p, "hall", "alice", "x", 0, 0), 1);
    assert_int_equal(presence_count(p, "room", 4), 2);
    assert_int_equal(presence_count(p, "hall", 4), 1);
    assert_int_equal(presence_count(p, "none", 4), 0);
    assert_int_equal(presence_channels(p), 2);
    assert_int_equal(l.joins, 3);
    assert_int_equal(l.changes[PRESENCE_OP_JOIN], 3);
    assert_int_equal(presence_leave(p, "room", 4, "alice", 5), 1);
    assert_int_equal(presence_leave(p, "room", 4, "alice", 5), 0);
    assert_int_equal(presence_count(p, "room", 4), 1);
    assert_int_equal(l.leaves, 1);
    assert_int_equal(l.reasons[PRESENCE_LEFT], 1);
    assert_int_equal(l.changes[PRESENCE_OP_LEAVE], 1);
    assert_int_equal(presence_leave(p, "hall", 4, "alice", 5), 1);
    assert_int_equal(presence_channels(p), 1); /* hall is gone with its last entry */
    assert_int_equal(presence_entries(p), 1);
    presence_free(p);
}

static void test_rejoin(void **state)
{
    (void)state;
    log_t l;
    presence_t *p = new_table(&l, 0);
    assert_int_equal(join(p, "room", "alice", "a", 1000, 0), 1);
    assert_int_equal(join(p, "room", "alice", "a", 1000, 500), 0);
    assert_int_equal(l.joins, 1);
    assert_int_equal(l.updates, 0);
    assert_int_equal(l.changes[PRESENCE_OP_JOIN], 1); /* a refresh tells nobody */
    assert_int_equal(join(p, "room", "alice", "b", 1000, 600), 0);
    assert_int_equal(l.updates, 1);
    assert_int_equal(l.changes[PRESENCE_OP_JOIN], 2);
    assert_int_equal(presence_count(p, "room", 4), 1);
    /* the refresh at 600 moved the expiry to 1600 */
    assert_int_equal(presence_expire(p, 1500, 100), 0);
    assert_int_equal(presence_expire(p, 1600, 100), 1);
    presence_free(p);
}

static void test_expire(void **state)
{
    (void)state;
    log_t l;
    presence_t *p = new_table(&l, 0);
    char name[32];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "m%d", i);
        join(p, "room", name, "", (i % 10 + 1) * 100, 0);
    }
    join(p, "room", "forever", "", 0, 0);
    assert_int_equal(presence_expire(p, 99, 1000), 0);
    assert_int_equal(presence_expire(p, 100, 1000), 10);
    assert_int_equal(presence_expire(p, 550, 5), 5); /* the budget holds */
    assert_int_equal(presence_expire(p, 550, 1000), 35);
    assert_int_equal(presence_expire(p, 100000, 1000), 50);
    assert_int_equal(presence_count(p, "room", 4), 1);
    assert_int_equal(l.reasons[PRESENCE_EXPIRED], 100);
    assert_int_equal(l.changes[PRESENCE_OP_EXPIRE], 100);
    /* a TTL dropped by a join without one */
    join(p, "room", "x", "", 10, 0);
    join(p, "room", "x", "", 0, 0);
    assert_int_equal(presence_expire(p, 100000, 1000), 0);
    presence_free(p);
}

static void test_sync_replaces(void **state)
{
    (void)state;
    log_t l;
    presence_t *p = new_table(&l, 0);
    assert_int_equal(presence_apply(p, 2, PRESENCE_OP_JOIN, "room", 4, "a", 1, "", 0), 0);
    assert_int_equal(presence_apply(p, 2, PRESENCE_OP_JOIN, "room", 4, "b", 1, "", 0), 0);
    assert_int_equal(presence_apply(p, 3, PRESENCE_OP_JOIN, "room", 4, "a", 1, "", 0), 0);
    assert_int_equal(presence_count(p, "room", 4), 3);
    assert_int_equal(l.changes[PRESENCE_OP_JOIN], 0); /* members' entries are not ours */
    presence_sync_begin(p, 2);
    presence_apply(p, 2, PRESENCE_OP_JOIN, "room", 4, "b", 1, "", 0);
    presence_apply(p, 2, PRESENCE_OP_JOIN, "room", 4, "c", 1, "", 0);
    assert_int_equal(presence_sync_end(p, 2), 1); /* a: gone while apart */
    assert_int_equal(l.reasons[PRESENCE_RESYNC], 1);
    assert_int_equal(presence_count(p, "room", 4), 3); /* b, c of 2; a of 3 */
    /* an empty full set removes everything of 2 */
    presence_sync_begin(p, 2);
    assert_int_equal(presence_sync_end(p, 2), 2);
    assert_int_equal(presence_count(p, "room", 4), 1);
    presence_free(p);
}

static void test_drop_origin(void **state)
{
    (void)state;
    log_t l;
    presence_t *p = new_table(&l, 0);
    join(p, "room", "mine", "", 0, 0);
    char name[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "u%d", i);
        presence_apply(p, 0, PRESENCE_OP_JOIN, "room", 4, name, strlen(name), "m", 1);
        presence_apply(p, 1, PRESENCE_OP_JOIN, i % 2 ? "room" : "hall", 4, name, strlen(name),
                       "", 0);
    }
    assert_int_equal(presence_entries(p), 2001);
    assert_int_equal(presence_drop_origin(p, 1), 1000);
    assert_int_equal(l.reasons[PRESENCE_NODE_GONE], 1000);
    assert_int_equal(presence_entries(p), 1001);
    assert_int_equal(presence_count(p, "hall", 4), 0);
    assert_int_equal(presence_channels(p), 1);
    assert_int_equal(presence_owned(p), 1);
    assert_int_equal(presence_drop_origin(p, 1), 0);
    presence_free(p);
}

static void test_limits(void **state)
{
    (void)state;
    log_t l;
    presence_t *p = new_table(&l, 3);
    char err[128];
    char big[PRESENCE_MAX_META + 2];
    memset(big, 'x', sizeof(big));
    assert_int_equal(presence_join(p, big, PRESENCE_MAX_CHANNEL + 1, "m", 1, "", 0, 0, 0, err,
                                   sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "channel name longer"));
    assert_int_equal(presence_join(p, "c", 1, big, PRESENCE_MAX_MEMBER + 1, "", 0, 0, 0, err,
                                   sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "member name longer"));
    assert_int_equal(presence_join(p, "c", 1, "m", 1, big, PRESENCE_MAX_META + 1, 0, 0, err,
                                   sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "metadata longer"));
    assert_int_equal(presence_join(p, "", 0, "m", 1, "", 0, 0, 0, err, sizeof(err)), -1);
    assert_int_equal(presence_join(p, "c", 1, "", 0, "", 0, 0, 0, err, sizeof(err)), -1);
    assert_int_equal(presence_join(p, "c", 1, big, PRESENCE_MAX_MEMBER, big, PRESENCE_MAX_META,
                                   0, 0, err, sizeof(err)),
                     1);
    assert_int_equal(join(p, "c", "a", "", 0, 0), 1);
    assert_int_equal(join(p, "c", "b", "", 0, 0), 1);
    assert_int_equal(presence_join(p, "c", 1, "d", 1, "", 0, 0, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "presence_max_entries 3"));
    assert_int_equal(join(p, "c", "a", "new", 0, 0), 0); /* refreshing one is fine */
    assert_int_equal(presence_owned(p), 3);
    /* members' entries are checked too, and do not count as owned */
    assert_int_equal(presence_apply(p, 0, PRESENCE_OP_JOIN, "c", 1, big, PRESENCE_MAX_MEMBER + 1,
                                    "", 0),
                     -1);
    assert_int_equal(presence_apply(p, 0, 9, "c", 1, "z", 1, "", 0), -1);
    assert_int_equal(presence_apply(p, -5, PRESENCE_OP_JOIN, "c", 1, "z", 1, "", 0), -1);
    assert_int_equal(presence_apply(p, 0, PRESENCE_OP_JOIN, "c", 1, "z", 1, "", 0), 0);
    assert_int_equal(presence_owned(p), 3);
    assert_int_equal(presence_entries(p), 4);
    presence_free(p);
}

static void test_memory_returns(void **state)
{
    (void)state;
    log_t l;
    presence_t *p = new_table(&l, 0);
    size_t start = presence_memory(p);
    char name[32], ch[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(name, sizeof(name), "user:%d", i);
        snprintf(ch, sizeof(ch), "room:%d", i % 37);
        join(p, ch, name, "{\"n\":1}", i % 3 ? 1000 : 0, 0);
    }
    assert_int_equal(presence_entries(p), 20000);
    assert_true(presence_memory(p) > start + 20000 * 32);
    assert_true(presence_memory(p) < start + 20000 * 120);
    for (int i = 0; i < 20000; i += 2) {
        snprintf(name, sizeof(name), "user:%d", i);
        snprintf(ch, sizeof(ch), "room:%d", i % 37);
        assert_int_equal(presence_leave(p, ch, strlen(ch), name, strlen(name)), 1);
    }
    presence_expire(p, 5000, 100000);
    for (int i = 1; i < 20000; i += 2) {
        snprintf(name, sizeof(name), "user:%d", i);
        snprintf(ch, sizeof(ch), "room:%d", i % 37);
        presence_leave(p, ch, strlen(ch), name, strlen(name));
    }
    assert_int_equal(presence_entries(p), 0);
    assert_int_equal(presence_channels(p), 0);
    /* the channel table and the heap keep their size; nothing else remains */
    assert_true(presence_memory(p) - start < 64 * 1024);
    presence_free(p);
}

typedef struct listed {
    int n;
    int self, other;
} listed_t;

static void visit(void *ud, const char *ch, size_t chlen, const char *member, size_t mlen,
                  const char *meta, size_t metalen, int origin)
{
    listed_t *l = ud;
    (void)ch, (void)chlen, (void)member, (void)mlen, (void)meta, (void)metalen;
    l->n++;
    if (origin == PRESENCE_SELF)
        l->self++;
    else
        l->other++;
}

static void test_list_and_owned(void **state)
{
    (void)state;
    log_t l;
    presence_t *p = new_table(&l, 0);
    join(p, "room", "alice", "1", 0, 0);
    presence_apply(p, 4, PRESENCE_OP_JOIN, "room", 4, "alice", 5, "2", 1);
    presence_apply(p, 4, PRESENCE_OP_JOIN, "room", 4, "bob", 3, "3", 1);
    listed_t r = {0};
    assert_int_equal(presence_list(p, "room", 4, visit, &r), 3);
    assert_int_equal(r.self, 1);
    assert_int_equal(r.other, 2);
    listed_t o = {0};
    presence_foreach_owned(p, visit, &o);
    assert_int_equal(o.n, 1);
    /* LEAVE leaves only this node's entry of a member */
    assert_int_equal(presence_leave(p, "room", 4, "bob", 3), 0);
    assert_int_equal(presence_count(p, "room", 4), 3);
    presence_free(p);
}

static void test_event_json(void **state)
{
    (void)state;
    log_t l;
    presence_t *p = new_table(&l, 0);
    presence_join(p, "room", 4, "a\"b", 3, "{\"x\":\n1}", 8, 0, 0, NULL, 0);
    assert_string_equal(l.last, "{\"event\":\"join\",\"channel\":\"room\",\"member\":\"a\\\"b\","
                                "\"node\":\"me\",\"meta\":\"{\\\"x\\\":\\u000a1}\"}");
    presence_apply(p, 0, PRESENCE_OP_JOIN, "room", 4, "z", 1, "", 0);
    presence_apply(p, 0, PRESENCE_OP_EXPIRE, "room", 4, "z", 1, NULL, 0);
    assert_string_equal(l.last, "{\"event\":\"leave\",\"channel\":\"room\",\"member\":\"z\","
                                "\"node\":\"other\",\"reason\":\"expired\"}");
    presence_free(p);
}

/* Many entries in one channel: the table grows and deletes with backward
 * shifts; every entry stays findable. */
static void test_many_in_one_channel(void **state)
{
    (void)state;
    log_t l;
    presence_t *p = new_table(&l, 0);
    presence_set_hooks(p, NULL, NULL, NULL);
    char name[32];
    for (int i = 0; i < 50000; i++) {
        snprintf(name, sizeof(name), "%d", i);
        assert_int_equal(join(p, "big", name, "", 0, 0), 1);
    }
    for (int i = 0; i < 50000; i += 3) {
        snprintf(name, sizeof(name), "%d", i);
        assert_int_equal(presence_leave(p, "big", 3, name, strlen(name)), 1);
    }
    for (int i = 0; i < 50000; i++) {
        snprintf(name, sizeof(name), "%d", i);
        assert_int_equal(join(p, "big", name, "", 0, 0), i % 3 == 0 ? 1 : 0);
    }
    assert_int_equal(presence_count(p, "big", 3), 50000);
    presence_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_leave_count), cmocka_unit_test(test_rejoin),
        cmocka_unit_test(test_expire),           cmocka_unit_test(test_sync_replaces),
        cmocka_unit_test(test_drop_origin),      cmocka_unit_test(test_limits),
        cmocka_unit_test(test_memory_returns),   cmocka_unit_test(test_list_and_owned),
        cmocka_unit_test(test_event_json),       cmocka_unit_test(test_many_in_one_channel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
