/* Unit tests of the flush log's rules (src/cluster/flushlog.c, L1-L5 and
 * L8), on a cluster made with cluster_create (no sockets, no timers, no
 * store) and a fake clock: the calls the node makes (take, appended, cursor,
 * poll_begin/apply/poll_end) are made here by hand. */
#include "cluster_fixture.h"

#define T_MS 400
#define MARGIN_MS 100 /* cluster_row_margin(400) */

static int setup(void **state)
{
    static fixture_t f;
    static const char *const set[][3] = {{"cluster", "lease", "400ms"},
                                         {"cluster", "flush_timeout", "300ms"}};
    fixture_start(&f, set, sizeof(set) / sizeof(set[0]), 0);
    for (size_t i = 0; i < 2; i++) {
        f.cl->members[i].state = MEMBER_ALIVE;
        f.cl->members[i].row_live = 1;
    }
    cluster_set_arbiter(f.cl);
    cluster_own_row(f.cl, now_ms, 600000);
    cluster_flushlog_enable(f.cl, 1);
    *state = &f;
    return 0;
}

/* n1 and n2 synced with us and hold a lease on us (we answered them now). */
static void linked(fixture_t *f)
{
    for (size_t i = 0; i < 2; i++) {
        member_t *m = &f->cl->members[i];
        m->knows_us_at = now_ms - 1;
        m->last_pong_sent = now_ms;
    }
}

/* One of our flushes, sent (the end of the turn). */
static uint64_t flush(fixture_t *f, const char *key)
{
    uint64_t seq = cluster_flush_key(f->cl, key, strlen(key), (uint64_t)now_ms);
    coherence_send_batches(f->cl);
    return seq;
}

/* Takes what is due and reports it committed with log id id; returns first. */
static uint64_t append(fixture_t *f, int64_t id)
{
    buf_t b;
    buf_init(&b);
    uint64_t inc, first;
    assert_int_equal(cluster_flushlog_take(f->cl, &b, &inc, &first), 0);
    assert_true(inc == f->cl->incarnation);
    buf_free(&b);
    cluster_flushlog_appended(f->cl, 1, id);
    return first;
}

/* L1: nothing is due while members acknowledge; a member with no stream is
 * behind at once, and the append starts at the lowest unacknowledged flush
 * of every member that syncs with us. */
static void test_l1_append_when_behind(void **state)
{
    fixture_t *f = *state;
    linked(f);
    uint64_t s1 = flush(f, "a");
    f->n1->acked = f->n2->acked = s1;
    assert_int_equal(cluster_flushlog_due(f->cl), 0);
    flush(f, "b");
    assert_int_equal(cluster_flushlog_due(f->cl), 1); /* no stream to anyone */
    f->n2->acked = 0;                                  /* n2 acknowledged nothing */
    assert_int_equal(append(f, 10), 1); /* from n2's first unacknowledged */
    assert_int_equal(cluster_flushlog_due(f->cl), 0); /* in the log for both */
    uint64_t s3 = flush(f, "c");
    assert_int_equal(cluster_flushlog_due(f->cl), 1); /* later batches at once */
    assert_true(append(f, 11) == s3);
    /* A member that never synced with us gets nothing through the log. */
    f->n1->knows_us_at = f->n2->knows_us_at = 0;
    flush(f, "d");
    assert_int_equal(cluster_flushlog_due(f->cl), 0);
}

/* L2: with the log on, a lapsed link lease is not enough; the member's
 * cursor past the entry, or T + margin after it committed, is. */
static void test_l2_reply_waits_for_the_log(void **state)
{
    fixture_t *f = *state;
    linked(f);
    f->n2->acked = UINT64_MAX / 2; /* n2 is not the point here */
    uint64_t seq = flush(f, "k");
    f->n2->acked = seq;
    assert_int_equal(cluster_reply_ready(f->cl, seq, now_ms), 0); /* n1's lease holds */
    now_ms += T_MS; /* its link lease on us ran out: without the log, the reply went */
    assert_int_equal(cluster_reply_ready(f->cl, seq, now_ms), 0);
    f->cl->flushlog = 0;
    assert_int_equal(cluster_reply_ready(f->cl, seq, now_ms), 1);
    f->cl->flushlog = 1;
    append(f, 20);
    int64_t committed = now_ms;
    assert_int_equal(cluster_reply_ready(f->cl, seq, now_ms), 0);
    assert_int_equal(cluster_flushlog_wants_cursors(f->cl), 1);
    cluster_flushlog_cursor(f->cl, "n1", 19); /* not past the entry yet */
    assert_int_equal(cluster_reply_ready(f->cl, seq, now_ms), 0);
    now_ms = committed + T_MS + MARGIN_MS - 1;
    assert_int_equal(cluster_reply_ready(f->cl, seq, now_ms), 0);
    now_ms = committed + T_MS + MARGIN_MS; /* any poll n1 started since saw it */
    assert_int_equal(cluster_reply_ready(f->cl, seq, now_ms), 1);

    /* The cursor releases at once. */
    uint64_t seq2 = flush(f, "k2");
    f->n2->acked = seq2;
    append(f, 21);
    assert_int_equal(cluster_reply_ready(f->cl, seq2, now_ms), 0);
    assert_int_equal(cluster_flushlog_cursor(f->cl, "n1", 21), 1);
    assert_int_equal(cluster_reply_ready(f->cl, seq2, now_ms), 1);
    assert_int_equal(cluster_flushlog_wants_cursors(f->cl), 0);
}

/* L2: a member that may not know us needs its acknowledgement; an append
 * submitted before its SYNC settles nothing for it. */
static void test_l2_cursor_counts_only_after_sync(void **state)
{
    fixture_t *f = *state;
    linked(f);
    uint64_t seq = flush(f, "k");
    f->n2->acked = seq;
    append(f, 30);
    f->n1->knows_us_at = now_ms + 1; /* synced after the append was sent */
    cluster_flushlog_cursor(f->cl, "n1", 30);
    now_ms += T_MS + MARGIN_MS + 1;
    assert_int_equal(cluster_reply_ready(f->cl, seq, now_ms), 0);
    f->n1->knows_us_at = now_ms - T_MS - MARGIN_MS - 2; /* before: it counts */
    assert_int_equal(cluster_reply_ready(f->cl, seq, now_ms), 1);
    f->n1->last_pong_sent = 0; /* never answered: it may not know us */
    assert_int_equal(cluster_reply_ready(f->cl, seq, now_ms), 0);
}

/* L9: a proposal is settled only by the link's acknowledgement: n1 may have
 * refused it, and a refusal does not travel through the log. What follows
 * it waits with it; once n1 acknowledges it, the log settles the rest. */
static void test_l9_proposal_needs_the_link(void **state)
{
    fixture_t *f = *state;
    linked(f);
    uint64_t s1 = flush(f, "k1");
    uint64_t p = cluster_propose(f->cl, "ctr", 3, "5", 1, 0, 0, (uint64_t)now_ms);
    coherence_send_batches(f->cl);
    uint64_t s2 = flush(f, "k2");
    f->n2->acked = s2; /* n2 is not the point here */
    append(f, 40);
    assert_int_equal(cluster_flushlog_cursor(f->cl, "n1", 40), 1);
    assert_int_equal(cluster_reply_ready(f->cl, s1, now_ms), 1); /* a flush: the cursor */
    assert_int_equal(cluster_reply_ready(f->cl, p, now_ms), 0);  /* the proposal: no */
    assert_int_equal(cluster_reply_ready(f->cl, s2, now_ms), 0); /* waits behind it */
    now_ms += 10 * (T_MS + MARGIN_MS); /* nor does time settle it */
    assert_int_equal(cluster_reply_ready(f->cl, p, now_ms), 0);
    f->n1->acked = p; /* acknowledged on the link: not refused */
    assert_int_equal(cluster_reply_ready(f->cl, p, now_ms), 1);
    assert_int_equal(cluster_reply_ready(f->cl, s2, now_ms), 1);
}

/* A FLUSH payload of n1's: incarnation, first, count KEY entries. */
static void payload(buf_t *b, uint64_t inc, uint64_t first, uint32_t count)
{
    buf_init(b);
    frame_put_u64(b, inc);
    frame_put_u64(b, first);
    frame_put_u32(b, count);
    for (uint32_t i = 0; i < count; i++) {
        frame_put_u8(b, FLUSH_KEY);
        frame_put_u64(b, 1000 + first + i);
        frame_put_bytes(b, "key", 3);
    }
}

static int apply(fixture_t *f, const char *origin, uint64_t inc, uint64_t first, uint32_t n)
{
    buf_t b;
    payload(&b, inc, first, n);
    int rc = cluster_flushlog_apply(f->cl, origin, inc, first, buf_head(&b), buf_len(&b));
    buf_free(&b);
    return rc;
}

/* L3, L4, L5: the reader applies its members' entries once, leaves a gap
 * for the link, and serves on the log lease only while it is current. */
static void test_reader_rules(void **state)
{
    fixture_t *f = *state;
    member_t *n1 = f->n1;
    n1->in_inc = 77;
    n1->lease_until = now_ms + 10; /* answered us once */
    f->n2->state = MEMBER_DEAD;    /* not in the way */
    /* L3: another incarnation, an unknown origin and our own are skipped. */
    cluster_flushlog_poll_begin(f->cl);
    assert_int_equal(apply(f, "n1", 78, 1, 2), 1);
    assert_int_equal(apply(f, "nx", 77, 1, 2), 1);
    assert_int_equal(apply(f, "n0", 77, 1, 2), 1);
    assert_int_equal(applied, 0);
    assert_int_equal(apply(f, "n1", 77, 1, 2), 1);
    assert_int_equal(applied, 2);
    assert_int_equal(apply(f, "n1", 77, 2, 2), 1); /* flush 2 again: only 3 is new */
    assert_int_equal(applied, 3);
    assert_true(n1->in_applied == 3);
    int64_t started = now_ms;
    cluster_flushlog_poll_end(f->cl, started);
    /* L5: the log lease. */
    now_ms += 50; /* the link lease ran out */
    assert_int_equal(cluster_serving(f->cl), 1);
    now_ms = started + T_MS - MARGIN_MS - 1;
    assert_int_equal(cluster_serving(f->cl), 1);
    now_ms = started + T_MS - MARGIN_MS;
    assert_int_equal(cluster_serving(f->cl), 0);
    n1->row_live = 0; /* its row is not live: no log lease */
    cluster_flushlog_poll_end(f->cl, now_ms);
    assert_int_equal(cluster_serving(f->cl), 0);
    n1->row_live = 1;
    assert_int_equal(cluster_serving(f->cl), 1);
    /* L4: a gap is left (the poll gives no lease on n1) ... */
    started = now_ms + 100;
    now_ms = started;
    cluster_flushlog_poll_begin(f->cl);
    assert_int_equal(apply(f, "n1", 77, 5, 1), 0);
    cluster_flushlog_poll_end(f->cl, started);
    now_ms = started + T_MS - MARGIN_MS - 1;
    assert_int_equal(cluster_serving(f->cl), 0); /* the previous poll's lease ended */
    assert_true(n1->in_applied == 3);
    /* ... until flush_timeout + 2T, then taken with the cache dropped. */
    now_ms = started + 300 + 2 * T_MS;
    cluster_flushlog_poll_begin(f->cl);
    assert_int_equal(apply(f, "n1", 77, 5, 1), 1);
    assert_true(n1->in_applied == 5);
    assert_int_equal(drops, 1);
}

/* L8: a COMMIT entry for a member behind the log, once commits moved. */
static void test_l8_commit_entry(void **state)
{
    fixture_t *f = *state;
    linked(f);
    uint64_t seq = flush(f, "k");
    f->n2->acked = seq;
    append(f, 40);
    f->cl->committed = seq;
    assert_int_equal(cluster_flushlog_due(f->cl), 1);
    buf_t b;
    buf_init(&b);
    uint64_t inc, first;
    assert_int_equal(cluster_flushlog_take(f->cl, &b, &inc, &first), 0);
    assert_true(first == 0); /* a COMMIT */
    assert_int_equal(buf_len(&b), 16);
    buf_free(&b);
    cluster_flushlog_appended(f->cl, 1, 41);
    assert_int_equal(cluster_flushlog_due(f->cl), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_l1_append_when_behind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_l2_reply_waits_for_the_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_l2_cursor_counts_only_after_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_l8_commit_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_l9_proposal_needs_the_link, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
