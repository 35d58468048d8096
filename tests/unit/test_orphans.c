/* Unit tests of orphans.c (a dead writer's writes in flight, WRITES.md rule
 * 34) on a cluster made with cluster_create (no sockets, no timers): the
 * receiving side of a member's VOIDED report (O1 at the receiver), the late
 * copy of a voided proposal (O3), and a replay that waits for nobody when no
 * member streams (O2's trivial case). The waiting on real links is
 * tests/integration/test_cluster_orphans.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "cluster_int.h"
#include "config.h"

static int64_t now_ms;
static int applied, gone_origin, aborted_origin;
static uint64_t aborted_seq;

static int64_t fake_clock(void *ud)
{
    (void)ud;
    return now_ms;
}

static int h_apply(void *ud, int kind, const char *key, size_t klen, const char *val, size_t vlen,
                   int64_t expire_at, int enc, uint64_t version, int origin, uint64_t seq)
{
    (void)ud, (void)kind, (void)key, (void)klen, (void)val, (void)vlen, (void)expire_at;
    (void)enc, (void)version, (void)origin, (void)seq;
    applied++;
    return 1;
}
static size_t h_drop_all(void *ud)
{
    (void)ud;
    return 0;
}
static void h_skipped(void *ud, uint64_t v)
{
    (void)ud, (void)v;
}
static void h_progress(void *ud)
{
    (void)ud;
}
static void h_observe(void *ud, uint64_t v)
{
    (void)ud, (void)v;
}
static void h_aborted(void *ud, int origin, uint64_t seq)
{
    (void)ud;
    aborted_origin = origin;
    aborted_seq = seq;
}
static void h_origin_gone(void *ud, int origin)
{
    (void)ud;
    gone_origin = origin;
}

typedef struct fixture {
    config_t cfg;
    cluster_t *cl;
    member_t *w, *r; /* the writer (n1) and another member (n2) */
} fixture_t;

static int setup(void **state)
{
    static fixture_t f;
    memset(&f, 0, sizeof(f));
    char err[256];
    config_defaults(&f.cfg);
    const char *set[][3] = {
        {"node", "name", "n0"},          {"cluster", "bind", "127.0.0.1"},
        {"cluster", "port", "7000"},     {"cluster", "peer", "127.0.0.1:7000"},
        {"cluster", "peer", "127.0.0.1:7001"}, {"cluster", "peer", "127.0.0.1:7002"},
    };
    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
        assert_int_equal(config_set(&f.cfg, set[i][0], set[i][1], set[i][2], err, sizeof(err)), 0);
    now_ms = 100000;
    applied = 0;
    gone_origin = aborted_origin = -1;
    aborted_seq = 0;
    cluster_host_t host = {NULL, h_apply, h_drop_all, h_skipped, h_progress, h_observe, 0, NULL,
                           NULL, NULL, NULL, h_aborted, h_origin_gone, NULL, NULL};
    f.cl = cluster_create(NULL, &f.cfg, &host, 42, 7, err, sizeof(err));
    assert_non_null(f.cl);
    f.cl->clock = fake_clock;
    f.w = &f.cl->members[0];
    f.r = &f.cl->members[1];
    for (size_t i = 0; i < 2; i++) {
        f.cl->members[i].we_initiate = 0;
        f.cl->members[i].next_connect = INT64_MAX;
    }
    snprintf(f.w->name, sizeof(f.w->name), "n1");
    snprintf(f.r->name, sizeof(f.r->name), "n2");
    f.w->in_inc = 5;
    f.w->in_applied = 8;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    cluster_free(f->cl);
    config_free(&f->cfg);
    return 0;
}

/* A VOIDED report from r about writer "n1" of incarnation inc: seq. */
static void report(fixture_t *f, uint64_t inc, uint64_t seq)
{
    buf_t b;
    buf_init(&b);
    frame_put_bytes(&b, "n1", 2);
    frame_put_u64(&b, inc);
    frame_put_u32(&b, 1);
    frame_put_u64(&b, seq);
    frame_hdr_t h = {FRAME_VOIDED, (uint32_t)buf_len(&b), 1, (const uint8_t *)buf_head(&b)};
    orphans_on_frame(f->r, &h);
    buf_free(&b);
}

/* The writer's FLUSH of one PROPOSE, flush number seq, applied here. */
static void propose(fixture_t *f, uint64_t seq)
{
    buf_t b;
    buf_init(&b);
    frame_put_u64(&b, 5);
    frame_put_u64(&b, seq);
    frame_put_u32(&b, 1);
    frame_put_u8(&b, FLUSH_PROPOSE);
    frame_put_u64(&b, 1ull << 40);
    frame_put_bytes(&b, "k", 1);
    frame_put_u64(&b, 0);
    frame_put_bytes(&b, "v", 1);
    frame_put_u8(&b, 0);
    frame_hdr_t h = {FRAME_FLUSH, (uint32_t)buf_len(&b), 1, (const uint8_t *)buf_head(&b)};
    frame_reader_t r;
    frame_reader_init(&r, &h);
    assert_int_equal(coherence_apply_flush(f->w, &r, 0), 0);
    buf_free(&b);
}

/* O1 at the receiver: a report aborts the writer's proposal here, as its own
 * ABORT would. */
static void test_a_report_aborts_the_voided_proposal(void **state)
{
    fixture_t *f = *state;
    report(f, 5, 9);
    assert_int_equal(aborted_origin, 0);
    assert_int_equal(aborted_seq, 9);
    assert_true(orphans_voided(f->w, 9));
    assert_false(orphans_voided(f->w, 10));
}

/* A report on another process of the writer says nothing of this one. */
static void test_a_report_on_another_incarnation_is_ignored(void **state)
{
    fixture_t *f = *state;
    report(f, 4, 9);
    assert_int_equal(aborted_origin, -1);
    assert_false(orphans_voided(f->w, 9));
}

/* O3: a voided proposal's late copy is refused (a NACK kept for its
 * writer), never applied; the next one is applied. */
static void test_a_late_voided_proposal_is_refused(void **state)
{
    fixture_t *f = *state;
    report(f, 5, 9);
    propose(f, 9);
    assert_int_equal(applied, 0);
    assert_int_equal(f->w->nnacked, 1);
    assert_int_equal(f->w->nacked[0], 9);
    propose(f, 10);
    assert_int_equal(applied, 1);
}

/* With no member streaming to wait for, the writer's writes in flight are
 * replayed at its death; its proposals we refused are aborted first. */
static void test_with_nobody_to_hear_the_replay_is_at_once(void **state)
{
    fixture_t *f = *state;
    f->w->nacked[0] = 7;
    f->w->nnacked = 1;
    orphans_member_dead(f->w, 1);
    assert_int_equal(aborted_seq, 7);
    assert_int_equal(gone_origin, 0);
    assert_false(f->w->orph_pending);
}

/* Our lease on the writer had lapsed: what we refused says nothing. */
static void test_a_lapsed_lease_voids_nothing(void **state)
{
    fixture_t *f = *state;
    f->w->nacked[0] = 7;
    f->w->nnacked = 1;
    orphans_member_dead(f->w, 0);
    assert_int_equal(aborted_origin, -1);
    assert_false(orphans_voided(f->w, 7));
    assert_int_equal(gone_origin, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_report_aborts_the_voided_proposal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_report_on_another_incarnation_is_ignored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_late_voided_proposal_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_with_nobody_to_hear_the_replay_is_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_lapsed_lease_voids_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
