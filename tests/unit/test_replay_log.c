/* Unit tests of the replay log's bounds (src/cluster/coherence.c, "the
 * replay log"): sent entries leave it past the count and the age limits,
 * and an entry not yet sent to the members never does; and of the turn's
 * de-duplication index over it ("the per-turn dedupe index"), which gives
 * its memory back after a large turn. A cluster made with
 * cluster_create (no sockets, no timers) and a fake clock; no member is in
 * contact, so the end of a turn (coherence_send_batches) counts as sent. */
#include "cluster_fixture.h"

#define AGE_MS (10 * 60 * 1000) /* coherence.c LOG_MAX_AGE_MS */

static int setup(void **state)
{
    static fixture_t f;
    static const char *const set[][3] = {{"cluster", "replay_log", "4"}};
    fixture_start(&f, set, sizeof(set) / sizeof(set[0]), 0);
    *state = &f;
    return 0;
}

static void flush(fixture_t *f, const char *key)
{
    cluster_flush_key(f->cl, key, strlen(key), (uint64_t)now_ms);
}

static void test_replay_log_is_bounded_by_age_but_keeps_what_is_unsent(void **state)
{
    fixture_t *f = *state;
    flush(f, "a");
    flush(f, "b");
    flush(f, "c");
    now_ms += AGE_MS + 1;
    coherence_tick(f->cl);
    assert_int_equal(f->cl->log_len, 3); /* old, but never sent */
    coherence_send_batches(f->cl);
    coherence_tick(f->cl);
    assert_int_equal(f->cl->log_len, 1); /* the newest stays: the log is never empty */
    flush(f, "d");
    flush(f, "e");
    coherence_send_batches(f->cl);
    now_ms += AGE_MS; /* d and e are exactly AGE_MS old: kept */
    coherence_tick(f->cl);
    assert_int_equal(f->cl->log_len, 2);
    assert_int_equal(coherence_log_first(f->cl), 4);
    now_ms += 1;
    coherence_tick(f->cl);
    assert_int_equal(f->cl->log_len, 1);
}

static void test_replay_log_is_bounded_by_count_once_sent(void **state)
{
    fixture_t *f = *state;
    char key[8];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        flush(f, key);
    }
    assert_int_equal(f->cl->log_len, 10); /* one turn: nothing sent yet, the ring grew */
    coherence_send_batches(f->cl);
    flush(f, "next"); /* the next append trims to replay_log (4) */
    assert_int_equal(f->cl->log_len, 4);
    assert_int_equal(coherence_log_first(f->cl), 8);
}

static void test_dedupe_index_shrinks_after_a_large_turn(void **state)
{
    fixture_t *f = *state;
    size_t min_slots = coherence_batch_slots(f->cl);
    char key[16];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        flush(f, key);
    }
    assert_true(coherence_batch_slots(f->cl) >= 40000);
    uint64_t seq = f->cl->flush_seq;
    flush(f, "k0"); /* folds into the first k0 of this turn */
    assert_int_equal(f->cl->flush_seq, seq);
    coherence_send_batches(f->cl); /* as large as the turn needed: kept */
    assert_true(coherence_batch_slots(f->cl) >= 40000);
    seq = f->cl->flush_seq;
    flush(f, "k1"); /* a new turn: not folded into the last one's k1 */
    flush(f, "k1"); /* folded into the first of this turn */
    assert_int_equal(f->cl->flush_seq, seq + 1);
    coherence_send_batches(f->cl); /* a small turn gives the memory back */
    assert_int_equal(coherence_batch_slots(f->cl), min_slots);
    flush(f, "k2");
    flush(f, "k2");
    assert_int_equal(f->cl->flush_seq, seq + 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_replay_log_is_bounded_by_age_but_keeps_what_is_unsent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_log_is_bounded_by_count_once_sent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dedupe_index_shrinks_after_a_large_turn, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
