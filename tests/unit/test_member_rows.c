/* Unit tests of membership decided by the store (cluster_member_rows,
 * cluster_own_row and the guesses the arbiter turns off), on a cluster made
 * with cluster_create (no sockets, no timers) and a fake clock. */
#include "cluster_fixture.h"

static int setup(void **state)
{
    static fixture_t f;
    static const char *const set[][3] = {{"cluster", "lease", "400ms"},
                                         {"cluster", "dead_after", "1s"}};
    fixture_start(&f, set, sizeof(set) / sizeof(set[0]), 0);
    assert_string_equal(cluster_self_addr(f.cl), "127.0.0.1:7000");
    assert_string_equal(f.n1->id, "127.0.0.1:7001");
    *state = &f;
    return 0;
}

static cluster_row_t row(const char *name, const char *addr, int gone)
{
    return (cluster_row_t){name, addr, 1, gone, 0, gone ? "expired" : NULL, 0, 0};
}

static void test_without_arbiter_rows_change_nothing(void **state)
{
    fixture_t *f = *state;
    cluster_row_t r[] = {row("n1", "127.0.0.1:7001", 1)};
    cluster_member_rows(f->cl, now_ms, r, 1);
    assert_int_equal(f->n1->state, MEMBER_UNKNOWN);
    assert_int_equal(f->n2->state, MEMBER_UNKNOWN);
    assert_int_equal(cluster_has_arbiter(f->cl), 0);
    /* and the old guess stays: a refused connection is death */
    member_knock_result(f->n1, 1);
    assert_int_equal(f->n1->state, MEMBER_DEAD);
}

static void test_gone_row_kills_live_row_does_not(void **state)
{
    fixture_t *f = *state;
    cluster_set_arbiter(f->cl);
    now_ms += 10;
    cluster_row_t r[] = {row("n1", "127.0.0.1:7001", 1), row("n2", "127.0.0.1:7002", 0)};
    cluster_member_rows(f->cl, now_ms, r, 2);
    assert_int_equal(f->n1->state, MEMBER_DEAD);
    assert_int_equal(f->n2->state, MEMBER_UNKNOWN);
    assert_int_equal(cluster_members_settled(f->cl), 0);
}

static void test_refused_and_dead_after_are_no_death_with_arbiter(void **state)
{
    fixture_t *f = *state;
    cluster_set_arbiter(f->cl);
    member_knock_result(f->n1, 1);
    assert_int_equal(f->n1->state, MEMBER_UNREACHABLE);
    for (int i = 0; i < 100; i++) { /* 10 s, ten times dead_after */
        now_ms += 100;
        member_tick(f->cl, now_ms);
    }
    assert_int_equal(f->n1->state, MEMBER_UNREACHABLE);
    assert_int_equal(f->n2->state, MEMBER_UNKNOWN);
}

static void test_g1_member_holding_a_lease_on_us_stays(void **state)
{
    fixture_t *f = *state;
    cluster_set_arbiter(f->cl);
    f->n1->state = MEMBER_UNREACHABLE;
    f->n1->last_pong_sent = now_ms - 100; /* it may serve on our PONG until +400 */
    now_ms += 10;
    cluster_row_t r[] = {row("n1", "127.0.0.1:7001", 1), row("n2", "127.0.0.1:7002", 0)};
    cluster_member_rows(f->cl, now_ms, r, 2);
    assert_int_equal(f->n1->state, MEMBER_UNREACHABLE);
    now_ms = f->n1->last_pong_sent + 400;
    cluster_member_rows(f->cl, now_ms, r, 2);
    assert_int_equal(f->n1->state, MEMBER_DEAD);
}

/* A free SQLite lock of the process we linked with proves it ended: G1
 * does not wait (a PostgreSQL one, above, may be a broken session). */
static void test_g1_skipped_for_a_process_known_to_have_ended(void **state)
{
    fixture_t *f = *state;
    cluster_set_arbiter(f->cl);
    f->n1->state = MEMBER_UNREACHABLE;
    f->n1->last_pong_sent = now_ms - 100;
    f->n1->linked_row_inc = 1;
    now_ms += 10;
    cluster_row_t pg[] = {{"n1", "127.0.0.1:7001", 1, 0, 1, "lock free", 0, 0}};
    cluster_member_rows(f->cl, now_ms, pg, 1);
    assert_int_equal(f->n1->state, MEMBER_UNREACHABLE);
    cluster_row_t other[] = {{"n1", "127.0.0.1:7001", 2, 0, 1, "lock free", 1, 0}};
    cluster_member_rows(f->cl, now_ms, other, 1); /* not the process we linked with */
    assert_int_equal(f->n1->state, MEMBER_UNREACHABLE);
    cluster_row_t sqlite[] = {{"n1", "127.0.0.1:7001", 1, 0, 1, "lock free", 1, 0}};
    cluster_member_rows(f->cl, now_ms, sqlite, 1);
    assert_int_equal(f->n1->state, MEMBER_DEAD);
}

/* WRITES.md rule 33 (sim --writes --store seed 366): the goodbye this node
 * heard was from the member's earlier process; the row that ends now is a
 * later one's, never linked with us, which may have written without us:
 * its end is not a clean one here. The same process's row keeps it. */
static void test_goodbye_of_an_earlier_process_does_not_make_a_later_end_clean(void **state)
{
    fixture_t *f = *state;
    cluster_set_arbiter(f->cl);
    f->n1->state = MEMBER_UNREACHABLE;
    f->n1->linked_row_inc = 1;
    f->n1->clean_bye = 1;
    now_ms += 10;
    cluster_row_t same[] = {{"n1", "127.0.0.1:7001", 1, 1, 0, "left", 0, 1}};
    cluster_member_rows(f->cl, now_ms, same, 1);
    assert_int_equal(f->n1->state, MEMBER_DEAD);
    assert_int_equal(f->n1->clean_bye, 1);
    f->n1->state = MEMBER_UNREACHABLE;
    cluster_row_t later[] = {{"n1", "127.0.0.1:7001", 2, 1, 0, "left", 0, 1}};
    cluster_member_rows(f->cl, now_ms, later, 1);
    assert_int_equal(f->n1->state, MEMBER_DEAD);
    assert_int_equal(f->n1->clean_bye, 0);
}

static void test_g2_answer_older_than_the_link_is_ignored(void **state)
{
    fixture_t *f = *state;
    cluster_set_arbiter(f->cl);
    int64_t sent = now_ms;
    now_ms += 50;
    member_set_state(f->n1, MEMBER_ALIVE, "link up (test)");
    now_ms += 50;
    cluster_row_t r[] = {row("n1", "127.0.0.1:7001", 1), row("n2", "127.0.0.1:7002", 0)};
    cluster_member_rows(f->cl, sent, r, 2);
    assert_int_equal(f->n1->state, MEMBER_ALIVE);
    cluster_member_rows(f->cl, now_ms, r, 2); /* asked after it came up */
    assert_int_equal(f->n1->state, MEMBER_DEAD);
}

static void test_no_row_is_gone_found_by_address_before_a_name(void **state)
{
    fixture_t *f = *state;
    cluster_set_arbiter(f->cl);
    f->n2->name[0] = '\0'; /* never linked: known only by its address */
    now_ms += 10;
    cluster_row_t live[] = {row("n1", "127.0.0.1:7001", 0), row("nX", "127.0.0.1:7002", 0)};
    cluster_member_rows(f->cl, now_ms, live, 2);
    assert_int_equal(f->n2->state, MEMBER_UNKNOWN);
    /* nY's live row is nobody's we can name: n2, known only by the address
     * we dial (a proxy, NAT, a host name), may be nY: not dead. */
    cluster_row_t other[] = {row("n1", "127.0.0.1:7001", 0), row("nY", "127.0.0.1:7999", 0)};
    cluster_member_rows(f->cl, now_ms, other, 2);
    assert_int_equal(f->n2->state, MEMBER_UNKNOWN);
    /* Every live row is someone's (ours, n0, counts as ours): none is n2's. */
    cluster_row_t named[] = {row("n0", "127.0.0.1:7000", 0), row("n1", "127.0.0.1:7001", 0),
                             row("nY", "127.0.0.1:7999", 1)};
    cluster_member_rows(f->cl, now_ms, named, 3);
    assert_int_equal(f->n2->state, MEMBER_DEAD);
    assert_int_equal(f->n1->state, MEMBER_UNKNOWN);
    cluster_member_rows(f->cl, now_ms, NULL, 0); /* n1 has no row any more */
    assert_int_equal(f->n1->state, MEMBER_DEAD);
    assert_int_equal(cluster_members_settled(f->cl), 1);
}

static void test_serves_only_while_own_row_is_renewed(void **state)
{
    fixture_t *f = *state;
    cluster_set_arbiter(f->cl);
    f->n1->state = MEMBER_DEAD;
    f->n2->state = MEMBER_DEAD;
    assert_int_equal(cluster_serving(f->cl), 0); /* never renewed */
    assert_non_null(cluster_why_not_serving(f->cl));
    int64_t sent = now_ms;
    now_ms += 30; /* the answer comes back */
    cluster_own_row(f->cl, sent, 1000);
    assert_int_equal(cluster_row_margin(1000), 100);
    assert_int_equal(cluster_serving(f->cl), 1);
    now_ms = sent + 1000 - 100 - 1;
    assert_int_equal(cluster_serving(f->cl), 1);
    now_ms = sent + 1000 - 100;
    assert_int_equal(cluster_serving(f->cl), 0);
    cluster_own_row(f->cl, sent - 500, 1000); /* an older answer never shortens... */
    assert_int_equal(cluster_serving(f->cl), 0);
    cluster_own_row(f->cl, now_ms, 10000); /* ...a newer one extends */
    assert_int_equal(cluster_serving(f->cl), 1);
    assert_int_equal(cluster_row_margin(10000), 1000);
    cluster_own_row_lost(f->cl);
    assert_int_equal(cluster_serving(f->cl), 0);
}

static void test_g3_free_lock_counts_only_for_a_member_linked_with(void **state)
{
    fixture_t *f = *state;
    cluster_set_arbiter(f->cl);
    now_ms += 10;
    cluster_row_t r[] = {{"n1", "127.0.0.1:7001", 1, 0, 1, "lock free", 0, 0},
                         {"n2", "127.0.0.1:7002", 1, 0, 1, "lock free", 0, 0}};
    f->n1->linked_row_inc = 1; /* we linked with n1's process 1; never with n2 */
    f->n1->state = MEMBER_UNREACHABLE;
    f->n2->state = MEMBER_UNREACHABLE;
    cluster_member_rows(f->cl, now_ms, r, 2);
    assert_int_equal(f->n1->state, MEMBER_DEAD);
    assert_int_equal(f->n2->state, MEMBER_UNREACHABLE);
    /* a free lock with a live row does not revive */
    cluster_member_rows(f->cl, now_ms, r, 2);
    assert_int_equal(f->n1->state, MEMBER_DEAD);
}

static void test_live_row_revives_a_dead_member_before_any_death(void **state)
{
    fixture_t *f = *state;
    cluster_set_arbiter(f->cl);
    now_ms += 10;
    cluster_row_t gone[] = {row("n1", "127.0.0.1:7001", 1), row("n2", "127.0.0.1:7002", 1)};
    cluster_member_rows(f->cl, now_ms, gone, 2);
    assert_int_equal(f->n1->state, MEMBER_DEAD);
    assert_int_equal(f->n2->state, MEMBER_DEAD);
    /* n1 dies again (no-op), n2 restarted: its live row brings it back */
    cluster_row_t mixed[] = {row("n1", "127.0.0.1:7001", 1), row("n2", "127.0.0.1:7002", 0)};
    cluster_member_rows(f->cl, now_ms, mixed, 2);
    assert_int_equal(f->n1->state, MEMBER_DEAD);
    assert_int_equal(f->n2->state, MEMBER_UNREACHABLE);
}

static void test_lapsed_row_holds_flushes_for_every_member(void **state)
{
    fixture_t *f = *state;
    cluster_set_arbiter(f->cl);
    f->n1->state = MEMBER_DEAD;  /* seen dead */
    f->n2->state = MEMBER_ALIVE; /* answered recently */
    f->n2->last_pong_sent = now_ms;
    int64_t sent = now_ms;
    cluster_own_row(f->cl, sent, 1000);
    uint64_t seq = cluster_flush_key(f->cl, "k", 1, 1);
    f->n2->acked = seq;
    assert_int_equal(cluster_reply_ready(f->cl, seq, now_ms), 1); /* n1 is dead */
    now_ms = sent + 900; /* the row may expire: n1 may be a new process */
    assert_int_equal(cluster_reply_ready(f->cl, seq, now_ms), 0);
    f->n1->acked = seq;
    assert_int_equal(cluster_reply_ready(f->cl, seq, now_ms), 1);
    /* renewed again: PONGs sent during the lapse prove nothing */
    uint64_t seq2 = cluster_flush_key(f->cl, "k2", 2, 2);
    f->n1->acked = seq2;
    f->n2->last_pong_sent = now_ms; /* during the lapse */
    now_ms += 10;
    cluster_own_row(f->cl, now_ms, 1000);
    assert_int_equal(cluster_reply_ready(f->cl, seq2, now_ms), 0);
    now_ms += 1;
    f->n2->last_pong_sent = now_ms;                                /* answered after the renewal */
    assert_int_equal(cluster_reply_ready(f->cl, seq2, now_ms), 0); /* lease on us: wait */
    now_ms += 400;                                                 /* its lease on us ran out */
    assert_int_equal(cluster_reply_ready(f->cl, seq2, now_ms), 1);
}

/* WRITES.md rule 38 (sim --store seed 243 of crash,stop,pause,cut): n1,
 * held dead here, shows another ended process. Read with no lapse of our
 * row between, that process waited for our acknowledgements: nothing. Read
 * after a lapse, it may have held us dead and flushed without us, and no
 * next process of n1 may come to meet: the cache goes. */
static void test_unmet_process_ended_during_our_lapse_drops_the_cache(void **state)
{
    fixture_t *f = *state;
    cluster_set_arbiter(f->cl);
    cluster_own_row(f->cl, now_ms, 1000);
    now_ms += 10;
    cluster_row_t first[] = {{"n1", "127.0.0.1:7001", 1, 1, 0, "left", 0, 1},
                             row("n2", "127.0.0.1:7002", 0)};
    cluster_member_rows(f->cl, now_ms, first, 2);
    assert_int_equal(f->n1->state, MEMBER_DEAD);
    int before = drops;
    now_ms += 10;
    cluster_row_t second[] = {{"n1", "127.0.0.1:7001", 2, 1, 0, "left", 0, 1},
                              row("n2", "127.0.0.1:7002", 0)};
    cluster_member_rows(f->cl, now_ms, second, 2);
    assert_int_equal(drops, before); /* no lapse between: it waited for us */
    now_ms += 1000;
    member_row_lapse(f->cl, now_ms); /* paused past our row */
    now_ms += 10;
    cluster_own_row(f->cl, now_ms, 1000);
    cluster_row_t third[] = {{"n1", "127.0.0.1:7001", 3, 1, 0, "left", 0, 1},
                             row("n2", "127.0.0.1:7002", 0)};
    cluster_member_rows(f->cl, now_ms, third, 2);
    assert_int_equal(drops, before + 1);
    cluster_member_rows(f->cl, now_ms + 10, third, 2); /* the same row again: once */
    assert_int_equal(drops, before + 1);
}

/* WRITES.md rule 41: the rows read with our first renewal say which
 * members had a process that may hold us dead (a live row); with the cache
 * empty and no snapshot asked then, and our row never lapsed since, a
 * member whose row was not live has had no process that replied a write
 * without us, and its first process we meet costs no drop. */
static void test_first_renewal_notes_who_may_have_written_without_us(void **state)
{
    fixture_t *f = *state;
    cluster_set_arbiter(f->cl);
    cluster_row_t before[] = {row("n1", "127.0.0.1:7001", 0), row("n2", "127.0.0.1:7002", 0)};
    cluster_member_rows(f->cl, now_ms, before, 2); /* read before our row joined: no answer */
    assert_false(member_unseen_since_join(f->n1));
    cluster_own_row(f->cl, now_ms, 1000);
    cluster_row_t joined[] = {{"n1", "127.0.0.1:7001", 1, 1, 0, "left", 0, 1},
                              row("n2", "127.0.0.1:7002", 0)};
    cluster_member_rows(f->cl, now_ms, joined, 2);
    assert_true(member_unseen_since_join(f->n1));
    assert_false(member_unseen_since_join(f->n2)); /* live: it may hold us dead */
    now_ms += 10;
    cluster_row_t later[] = {{"n1", "127.0.0.1:7001", 2, 0, 0, NULL, 0, 0},
                             row("n2", "127.0.0.1:7002", 0)};
    cluster_member_rows(f->cl, now_ms, later, 2); /* a later process read our row */
    assert_true(member_unseen_since_join(f->n1));
    now_ms += 1000;
    member_row_lapse(f->cl, now_ms); /* anyone may have held us dead since */
    cluster_own_row(f->cl, now_ms, 1000);
    assert_false(member_unseen_since_join(f->n1));
}

/* A process that exited (a free lock that proves it) counts as not live;
 * anything held, or a snapshot asked, before our row joined keeps the drop
 * (what was replied then without us may be missing here). */
static void test_first_renewal_over_a_filled_cache_keeps_the_drop(void **state)
{
    fixture_t *f = *state;
    cluster_set_arbiter(f->cl);
    held_keys = 3;
    cluster_own_row(f->cl, now_ms, 1000);
    cluster_row_t joined[] = {{"n1", "127.0.0.1:7001", 1, 0, 1, "lock free", 1, 0},
                              {"n2", "127.0.0.1:7002", 1, 0, 1, "lock free", 0, 0}};
    cluster_member_rows(f->cl, now_ms, joined, 2);
    assert_false(f->n1->live_at_join);
    assert_true(f->n2->live_at_join); /* PostgreSQL's free lock: it may still run */
    assert_false(member_unseen_since_join(f->n1));
}

static void test_first_renewal_after_a_snapshot_asked_keeps_the_drop(void **state)
{
    fixture_t *f = *state;
    cluster_set_arbiter(f->cl);
    f->cl->snap_id = 1; /* asked a member for its keyspaces before joining */
    cluster_own_row(f->cl, now_ms, 1000);
    cluster_row_t joined[] = {row("n1", "127.0.0.1:7001", 1), row("n2", "127.0.0.1:7002", 1)};
    cluster_member_rows(f->cl, now_ms, joined, 2);
    assert_false(member_unseen_since_join(f->n1));
}

/* WRITES.md rule 42: the row of the process we linked with says it left
 * (or exited, where the lock proves it): that process has ended for good,
 * and its proposals still on their way are refused. An expired row (a
 * paused process may still run) or another process's row says nothing of
 * it. */
static void test_row_that_left_ends_the_linked_process_for_good(void **state)
{
    fixture_t *f = *state;
    cluster_set_arbiter(f->cl);
    f->n1->incarnation = 77; /* the process we linked with (its handshake) */
    f->n1->linked_row_inc = 5;
    cluster_row_t expired[] = {row("n1", "127.0.0.1:7001", 1)};
    expired[0].incarnation = 5;
    cluster_member_rows(f->cl, now_ms, expired, 1);
    assert_int_equal(f->n1->ended_inc, 0);
    cluster_row_t other[] = {{"n1", "127.0.0.1:7001", 6, 1, 0, "left", 0, 1}};
    cluster_member_rows(f->cl, now_ms, other, 1);
    assert_int_equal(f->n1->ended_inc, 0);
    cluster_row_t left[] = {{"n1", "127.0.0.1:7001", 5, 1, 0, "left", 0, 1}};
    cluster_member_rows(f->cl, now_ms, left, 1);
    assert_int_equal(f->n1->ended_inc, 77);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_without_arbiter_rows_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gone_row_kills_live_row_does_not, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_and_dead_after_are_no_death_with_arbiter,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_g1_member_holding_a_lease_on_us_stays, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_g1_skipped_for_a_process_known_to_have_ended,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_goodbye_of_an_earlier_process_does_not_make_a_later_end_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_g2_answer_older_than_the_link_is_ignored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_row_is_gone_found_by_address_before_a_name, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_serves_only_while_own_row_is_renewed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_g3_free_lock_counts_only_for_a_member_linked_with,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_row_revives_a_dead_member_before_any_death, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lapsed_row_holds_flushes_for_every_member, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unmet_process_ended_during_our_lapse_drops_the_cache,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_renewal_notes_who_may_have_written_without_us,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_renewal_over_a_filled_cache_keeps_the_drop,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_renewal_after_a_snapshot_asked_keeps_the_drop,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_row_that_left_ends_the_linked_process_for_good,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
