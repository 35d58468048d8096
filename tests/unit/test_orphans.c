/* Unit tests of orphans.c (a dead writer's writes in flight, WRITES.md rule
 * 34) on a cluster made with cluster_create (no sockets, no timers): the
 * receiving side of a member's VOIDED report (O1 at the receiver), the late
 * copy of a voided proposal (O3), a replay that waits for nobody when no
 * member streams (O2's trivial case), and what a refusal after our
 * acknowledgement reports (rule 48). The waiting on real links is
 * tests/integration/test_cluster_orphans.py. */
#include "buf.h"
#include "cluster_fixture.h"

/* n1 is the writer: its incarnation 5 followed here up to flush 8. */
static int setup(void **state)
{
    static fixture_t f;
    fixture_start(&f, NULL, 0, 1);
    f.n1->in_inc = 5;
    f.n1->in_applied = 8;
    *state = &f;
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
    orphans_on_frame(f->n2, &h);
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
    assert_int_equal(coherence_apply_flush(f->n1, &r, 0), 0);
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
    assert_true(orphans_voided(f->n1, 9));
    assert_false(orphans_voided(f->n1, 10));
}

/* A report on another process of the writer says nothing of this one. */
static void test_a_report_on_another_incarnation_is_ignored(void **state)
{
    fixture_t *f = *state;
    report(f, 4, 9);
    assert_int_equal(aborted_origin, -1);
    assert_false(orphans_voided(f->n1, 9));
}

/* O3: a voided proposal's late copy is refused (a NACK kept for its
 * writer), never applied; the next one is applied. */
static void test_a_late_voided_proposal_is_refused(void **state)
{
    fixture_t *f = *state;
    report(f, 5, 9);
    propose(f, 9);
    assert_int_equal(applied, 0);
    assert_int_equal(f->n1->nnacked, 1);
    assert_int_equal(f->n1->nacked[0], 9);
    propose(f, 10);
    assert_int_equal(applied, 1);
}

/* With no member streaming to wait for, the writer's writes in flight are
 * replayed at its death; its proposals we refused are aborted first. */
static void test_with_nobody_to_hear_the_replay_is_at_once(void **state)
{
    fixture_t *f = *state;
    f->n1->nacked[0] = 7;
    f->n1->nnacked = 1;
    orphans_member_dead(f->n1, 1);
    assert_int_equal(aborted_seq, 7);
    assert_int_equal(gone_origin, 0);
    assert_false(f->n1->orph_pending);
}

/* Our lease on the writer had lapsed: what we refused says nothing. */
static void test_a_lapsed_lease_voids_nothing(void **state)
{
    fixture_t *f = *state;
    f->n1->nacked[0] = 7;
    f->n1->nnacked = 1;
    orphans_member_dead(f->n1, 0);
    assert_int_equal(aborted_origin, -1);
    assert_false(orphans_voided(f->n1, 7));
    assert_int_equal(gone_origin, 0);
}

/* Rule 48: a proposal we acknowledged and refused afterwards (our cache
 * dropped, rule 21) may have committed on that acknowledgement: reported
 * voided, every survivor would give back what it replaced though its
 * writer replied it (sim --store seed 1337 of crash,stop,pause,cut
 * --writes: two INCRs replied 13). */
static void test_a_refusal_after_our_acknowledgement_voids_nothing(void **state)
{
    fixture_t *f = *state;
    propose(f, 9);
    f->n1->in_acked = 9; /* as our ACK of it went out */
    cluster_refuse_write(f->cl, 0, 9);
    assert_int_equal(f->n1->nnacked, 1);
    assert_true(f->n1->nacked_late[0]);
    orphans_member_dead(f->n1, 1);
    assert_int_equal(aborted_origin, -1);
    assert_false(orphans_voided(f->n1, 9));
    assert_int_equal(gone_origin, 0);
}

/* Refused before any acknowledgement of it went out (the NACK goes first on
 * the link): it cannot have committed, and is voided. */
static void test_a_refusal_before_our_acknowledgement_voids_it(void **state)
{
    fixture_t *f = *state;
    propose(f, 9);
    cluster_refuse_write(f->cl, 0, 9);
    assert_false(f->n1->nacked_late[0]);
    orphans_member_dead(f->n1, 1);
    assert_int_equal(aborted_seq, 9);
    assert_true(orphans_voided(f->n1, 9));
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
        cmocka_unit_test_setup_teardown(test_a_refusal_after_our_acknowledgement_voids_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_refusal_before_our_acknowledgement_voids_it, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
