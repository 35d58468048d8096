/* Unit tests of the replay log's bounds (src/cluster/coherence.c, "the
 * replay log"): sent entries leave it past the count and the age limits,
 * and an entry not yet sent to the members never does. A cluster made with
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_replay_log_is_bounded_by_age_but_keeps_what_is_unsent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_log_is_bounded_by_count_once_sent, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
