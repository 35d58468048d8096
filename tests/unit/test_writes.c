/* Unit tests for writes: the node's side of the write protocol
 * (node/writes.h), alone (no cluster: cluster calls are no-ops on NULL).
 * Covers P7, a cache drop forgets no version, and hlc_seen (base/hlc.h)
 * that it rests on; and P8, what a snapshot says an undecided write
 * replaced. The simulator checks the rest under faults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cache.h"
#include "cache_value.h"
#include "flushmark.h"
#include "frame.h"
#include "hlc.h"
#include "inflight.h"
#include "versioned.h"
#include "writes.h"

#define K(s) s, strlen(s)
#define WALL 1000000 /* ms: the wall clock of every version made here */
#define SELF_TAG 1
#define MEMBER_TAG 2

typedef struct world {
    cache_t *cache;
    flushmark_t *floor, *recent;
    inflight_t *inflight;
    hlc_t hlc;
    writes_t w;
} world_t;

static int setup(void **state)
{
    world_t *x = test_calloc(1, sizeof(*x));
    x->cache = cache_new(1, 0);
    x->floor = flushmark_new(1 << 10, 16, 0);
    flushmark_all_at(x->floor, hlc_at(WALL - 5000)); /* as a start, 5 s ago */
    x->recent = flushmark_new_exact(1 << 10, 16); /* as node.c: exact */
    x->inflight = inflight_new();
    x->hlc = (hlc_t){0, SELF_TAG};
    x->w = (writes_t){x->cache, x->floor, x->recent, x->inflight, &x->hlc, NULL,
                      WALL,     WALL,     NULL};
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    world_t *x = *state;
    cache_free(x->cache);
    flushmark_free(x->floor);
    flushmark_free(x->recent);
    inflight_free(x->inflight);
    test_free(x);
    return 0;
}

/* A member's version made at wall ms. */
static uint64_t member_version(int64_t wall)
{
    return hlc_at(wall) | MEMBER_TAG;
}

/* A member's SEED k=v @version, applied here. */
static void member_seed(world_t *x, const char *k, const char *v, uint64_t version)
{
    assert_int_equal(writes_apply(&x->w, VOP_SEED, K(k), K(v), 0, 0, version, 0, 1), 1);
}

/* A SEED made here (as cmd_seed: stored, then sent): returns its version. */
static uint64_t own_seed(world_t *x, const char *k, const char *v)
{
    uint64_t version = hlc_next(&x->hlc, WALL);
    cache_entry_t *e = cache_set(x->cache, K(k), K(v), 0);
    assert_non_null(e);
    writes_seed(&x->w, e, K(k), version);
    return version;
}

/* The value of k as a string (a copy), or NULL when absent. */
static const char *value(world_t *x, const char *k)
{
    return cache_value_str(x->cache, k, WALL);
}

static void test_hlc_seen_bounds_what_was_made_and_observed(void **state)
{
    (void)state;
    hlc_t h = {0, SELF_TAG};
    uint64_t mine = hlc_next(&h, WALL);
    assert_true(mine <= hlc_seen(&h));
    uint64_t theirs = member_version(WALL + 40); /* a member's clock runs ahead */
    hlc_observe(&h, theirs);
    assert_true(theirs <= hlc_seen(&h));
    uint64_t next = hlc_next(&h, WALL);
    assert_true(next > theirs);
    assert_true(next <= hlc_seen(&h));
}

/* The simulator's seeds 1016 and 2240 (sim --store): this node made a SEED;
 * a member's older SEED of the key, replied without this node, came after a
 * cache drop and must not take its place. */
static void test_drop_keeps_own_newer_seed_from_losing(void **state)
{
    world_t *x = *state;
    uint64_t older = member_version(WALL - 44); /* made before ours, replied already */
    uint64_t mine = own_seed(x, "a:2", "703");
    assert_true(older < mine);
    assert_int_equal(writes_drop_all(&x->w), 1);
    assert_null(value(x, "a:2"));
    member_seed(x, "a:2", "696", older); /* by replay, after the drop */
    assert_null(value(x, "a:2"));         /* a miss, never the older value */
    member_seed(x, "a:2", "710", member_version(WALL + 10)); /* newer: taken */
    assert_string_equal(value(x, "a:2"), "710");
}

/* The same for a version this node only observed (a member's SEED it held
 * when it dropped), and for every key: the dropped versions are gone. */
static void test_drop_keeps_observed_versions(void **state)
{
    world_t *x = *state;
    member_seed(x, "k", "new", member_version(WALL + 30)); /* its clock runs ahead */
    assert_string_equal(value(x, "k"), "new");
    writes_drop_all(&x->w);
    member_seed(x, "k", "old", member_version(WALL + 20));
    assert_null(value(x, "k"));
    member_seed(x, "other", "old", member_version(WALL + 29)); /* another key, as old */
    assert_null(value(x, "other"));
    /* What this node makes next is newer than the floor: it takes effect. */
    own_seed(x, "k", "mine");
    assert_string_equal(value(x, "k"), "mine");
    member_seed(x, "k", "later", member_version(WALL + 100));
    assert_string_equal(value(x, "k"), "later");
}

/* A member's PROPOSE k=v @version (origin 1, flush number seq), applied. */
static void member_propose(world_t *x, const char *k, const char *v, uint64_t version,
                           uint64_t seq)
{
    assert_int_equal(writes_apply(&x->w, FLUSH_PROPOSE, K(k), K(v), 0, 0, version, 1, seq), 1);
}

/* Member 0's proposal of the lock (253, flush 7), then member 1's from the
 * same empty value (259, flush 9): one counter, two tags, the higher one
 * last. */
static void two_locks_from_one_value(world_t *x)
{
    uint64_t base = hlc_at(WALL - 40);
    assert_int_equal(
        writes_apply(&x->w, FLUSH_PROPOSE, K("lock"), K("253"), 0, 0, base | 2, 0, 7), 1);
    assert_int_equal(
        writes_apply(&x->w, FLUSH_PROPOSE, K("lock"), K("259"), 0, 0, base | 3, 1, 9), 1);
}

/* The value key's write in flight would give back: version and bytes. */
/* ctr = was, committed; then member 2's INCR of it (flush seq2, version
 * *lower) and member 1's from the same value (flush seq1, *higher: the
 * higher tag), both taken here, in that order. */
static void two_members_from_one_value(world_t *x, const char *was, const char *val,
                                       uint64_t seq2, uint64_t seq1, uint64_t *lower,
                                       uint64_t *higher)
{
    uint64_t base = member_version(WALL - 60);
    member_seed(x, "ctr", was, base);
    writes_committed(&x->w, 0, 1);
    *lower = base + (1 << HLC_TAG_BITS);
    *higher = *lower + 1;
    assert_int_equal(
        writes_apply(&x->w, FLUSH_PROPOSE, K("ctr"), K(val), 0, 0, *lower, 2, seq2), 1);
    member_propose(x, "ctr", val, *higher, seq1);
}

static void assert_gives_back(world_t *x, const char *key, uint64_t version, const char *val)
{
    inflight_prior_t p;
    assert_true(inflight_prior(x->inflight, key, strlen(key), &p));
    assert_int_equal(p.version, version);
    assert_int_equal(p.vlen, strlen(val));
    assert_memory_equal(p.val, val, p.vlen);
}

/* sim --writes seed 113 of --faults crash,stop,pause,cut (with WRITES.md
 * rule 17): a node noted a writer's proposals from that writer's replay
 * alone, so the chain of what they replaced misses the other writers'
 * increments between (232-235 here); a catch-up snapshot then said 235 was
 * what the undecided 236 replaced. When 236 aborted and its writer went,
 * the node gave back 231 (an INCR then replied 232 a second time): the
 * snapshot's value must take its place in the chain (P8). */
static void test_snapshot_prior_replaces_older_chain(void **state)
{
    world_t *x = *state;
    member_propose(x, "ctr", "231", member_version(WALL - 100), 23);
    member_propose(x, "ctr", "233", member_version(WALL - 90), 26);
    writes_aborted(&x->w, 1, 26);
    member_propose(x, "ctr", "236", member_version(WALL - 70), 33);
    /* A member's snapshot: what 236 replaced there, then 236. */
    uint64_t v235 = hlc_at(WALL - 80) | 3;
    writes_apply_snapshot(&x->w, K("ctr"), K("235"), 0, 0, v235);
    writes_apply_snapshot(&x->w, K("ctr"), K("236"), 0, 0, member_version(WALL - 70));
    assert_string_equal(value(x, "ctr"), "236");
    writes_aborted(&x->w, 1, 33);
    writes_origin_gone(&x->w, 1);
    assert_string_equal(value(x, "ctr"), "235");
}

/* sim --store seed 194 of crash,stop,pause,cut (20 s, W1): a node held
 * n0's aborted INCR (117) over its committed 114 when a catch-up snapshot
 * brought a newer committed 117 from another writer. n2's INCR (118) from
 * that value was then taken, and noted as replacing the aborted entry's
 * chain, not the snapshot's value: when 118 aborted too, the node gave back
 * 114, and an INCR replied 115 a second time. What a write replaces is the
 * value here when that is newer than the entry (P8). */
static void test_write_over_a_snapshot_value_newer_than_an_aborted_entry_replaces_it(
    void **state)
{
    world_t *x = *state;
    member_propose(x, "ctr", "114", member_version(WALL - 100), 8);
    writes_committed(&x->w, 1, 8);
    member_propose(x, "ctr", "117", member_version(WALL - 90), 21);
    writes_aborted(&x->w, 1, 21);
    uint64_t v117 = hlc_at(WALL - 80) | 3; /* another writer's, committed */
    writes_apply_snapshot(&x->w, K("ctr"), K("117"), 0, SNAP_FORM_RMW, v117);
    assert_string_equal(value(x, "ctr"), "117");
    uint64_t v118 = hlc_at(WALL - 70) | 4;
    assert_int_equal(writes_apply(&x->w, FLUSH_PROPOSE, K("ctr"), K("118"), 0, 0, v118, 2, 133),
                     1);
    assert_gives_back(x, "ctr", v117, "117");
    writes_aborted(&x->w, 2, 133);
    writes_origin_gone(&x->w, 2);
    assert_string_equal(value(x, "ctr"), "117");
}

/* A writer whose proposal was aborted proposes again from the same base:
 * the same version, another flush number. That is a new write, not a replay
 * of the aborted one: taken as a replay, the new lock was never stored, and
 * the sweep of the aborted entry later emptied the key (sim --writes seed
 * 104 of --faults crash,stop). */
static void test_retry_with_the_aborted_version_is_a_new_write(void **state)
{
    world_t *x = *state;
    uint64_t v = member_version(WALL - 50);
    member_propose(x, "lock", "828", v, 256);
    writes_aborted(&x->w, 1, 256);
    member_propose(x, "lock", "832", v, 293);
    assert_string_equal(value(x, "lock"), "832");
    assert_false(inflight_aborted(x->inflight, K("lock")));
    writes_committed(&x->w, 1, 293);
    assert_int_equal(inflight_version(x->inflight, K("lock")), 0);
    assert_string_equal(value(x, "lock"), "832");
    /* A replay of the aborted write (a reconnect) changes nothing. */
    member_propose(x, "lock", "828", v, 256);
    assert_string_equal(value(x, "lock"), "832");
}

/* WRITES.md rule 29 (sim seed 143 of crash,stop): a writer's replay brings
 * its aborted proposal, the retry at the same version and only then the
 * ABORT. The retry is a new write all the same (its maker retries only after
 * an abort): its value is stored, and the late ABORT of the first does not
 * touch it. */
static void test_own_retry_before_its_abort_is_a_new_write(void **state)
{
    world_t *x = *state;
    uint64_t v = member_version(WALL - 50);
    member_propose(x, "lock", "115", v, 31);
    member_propose(x, "lock", "116", v, 56);
    assert_string_equal(value(x, "lock"), "116");
    writes_aborted(&x->w, 1, 31);
    assert_false(inflight_aborted(x->inflight, K("lock")));
    writes_committed(&x->w, 1, 56);
    assert_int_equal(inflight_version(x->inflight, K("lock")), 0);
    assert_string_equal(value(x, "lock"), "116");
}

typedef struct undecided {
    int origin[4];
    uint64_t seq[4];
    int n;
} undecided_t;

static void note_undecided(void *ud, int origin, uint64_t seq)
{
    undecided_t *u = ud;
    assert_true(u->n < 4);
    u->origin[u->n] = origin;
    u->seq[u->n++] = seq;
}

/* Before a drop of the whole cache, the cluster refuses every member's write
 * in flight here that its maker has not aborted (WRITES.md rule 21): the
 * list is those, not this node's own, not an aborted one, not a committed
 * one. */
static void test_undecided_lists_members_writes_in_flight(void **state)
{
    world_t *x = *state;
    member_propose(x, "a", "1", member_version(WALL - 50), 5);
    member_propose(x, "b", "1", member_version(WALL - 49), 6);
    member_propose(x, "c", "1", member_version(WALL - 48), 7);
    own_seed(x, "d", "1");
    writes_aborted(&x->w, 1, 6);
    undecided_t u = {.n = 0};
    writes_each_undecided(&x->w, note_undecided, &u);
    assert_int_equal(u.n, 2);
    assert_int_equal(u.origin[0], 1);
    assert_int_equal(u.origin[1], 1);
    assert_true((u.seq[0] == 5 && u.seq[1] == 7) || (u.seq[0] == 7 && u.seq[1] == 5));
    writes_committed(&x->w, 1, 7);
    u.n = 0;
    writes_each_undecided(&x->w, note_undecided, &u);
    assert_int_equal(u.n, 0);
}

/* ctr = "198" committed (a member's SEED at *base), then this node's write
 * of "199" from it in flight (flush 9), a read-modify-write when rmw.
 * Returns its version. */
static uint64_t own_write_over_198(world_t *x, uint64_t *base, int rmw)
{
    *base = member_version(WALL - 60);
    member_seed(x, "ctr", "198", *base);
    writes_committed(&x->w, 0, 1);
    uint64_t mine = hlc_after(&x->hlc, *base);
    inflight_prior_t was = {"198", 3, 0, 0, *base, 0};
    cache_entry_t *e = cache_set(x->cache, K("ctr"), K("199"), 0);
    cache_entry_set_version(x->cache, e, mine);
    inflight_note(x->inflight, K("ctr"), mine, INFLIGHT_SELF, 9, WALL, &was);
    if (rmw) { /* as writes_propose */
        cache_entry_set_rmw(e);
        inflight_mark_rmw(x->inflight, K("ctr"), INFLIGHT_SELF, 9);
    }
    return mine;
}

/* WRITES.md rule 22, the node's side: a member's proposal refused for our
 * read-modify-write from the same value (not for a SEED of ours) is kept
 * below ours, in flight: if ours aborts, the member's value comes back once
 * its maker commits it, and the value both read if its maker aborts it. */
static void test_refused_proposal_is_kept_below_own_rmw(void **state)
{
    world_t *x = *state;
    uint64_t base, seq;
    uint64_t theirs = own_write_over_198(x, &base, 0) - SELF_TAG; /* tag 0 < ours */
    assert_false(inflight_own_rmw(x->inflight, K("ctr"), &seq)); /* a SEED of ours */
    inflight_mark_rmw(x->inflight, K("ctr"), INFLIGHT_SELF, 9);
    assert_true(inflight_own_rmw(x->inflight, K("ctr"), &seq));
    assert_int_equal(seq, 9);
    assert_int_equal(
        writes_apply(&x->w, FLUSH_PROPOSE, K("ctr"), K("199"), 0, 0, theirs, 1, 179), 0);
    writes_aborted(&x->w, INFLIGHT_SELF, 9);
    inflight_prior_t p;
    assert_true(inflight_prior(x->inflight, K("ctr"), &p));
    assert_int_equal(p.version, theirs); /* in flight: its maker decides */
    writes_committed(&x->w, 1, 179);
    assert_true(inflight_prior(x->inflight, K("ctr"), &p));
    assert_int_equal(p.version, theirs);
    assert_memory_equal(p.val, "199", 3);
}

/* The same, when the member's proposal aborts too: the value both read. */
static void test_refused_proposal_that_aborts_gives_back_the_base(void **state)
{
    world_t *x = *state;
    uint64_t base;
    uint64_t theirs = own_write_over_198(x, &base, 1) - SELF_TAG;
    writes_apply(&x->w, FLUSH_PROPOSE, K("ctr"), K("199"), 0, 0, theirs, 1, 179);
    writes_aborted(&x->w, INFLIGHT_SELF, 9);
    writes_aborted(&x->w, 1, 179);
    assert_gives_back(x, "ctr", base, "198");
}

/* The same for a member's write in flight (sim --writes seed 286 of
 * crash,stop,pause,cut): n1 refused n3's committed INCR for n0's newer one
 * in flight, which n0 then aborted; n1 gave back the value before both. */
static void test_refused_proposal_is_kept_below_members_write(void **state)
{
    world_t *x = *state;
    uint64_t base = member_version(WALL - 60);
    member_seed(x, "ctr", "81", base);
    writes_committed(&x->w, 0, 1);
    uint64_t committed = base + (2 << HLC_TAG_BITS), newer = base + (3 << HLC_TAG_BITS);
    member_propose(x, "ctr", "83", newer, 80);
    assert_int_equal(
        writes_apply(&x->w, FLUSH_PROPOSE, K("ctr"), K("82"), 0, 0, committed, 3, 241), 0);
    writes_committed(&x->w, 3, 241);
    writes_aborted(&x->w, 1, 80);
    assert_gives_back(x, "ctr", committed, "82");
}

/* The sweep of an aborted write waits while the value it would give back
 * is a member's write still undecided (sim --writes seed 98 of
 * crash,stop,pause,cut: the sweep gave back a refused proposal as final,
 * whose ABORT came next; the counter skipped 150). */
static void test_sweep_waits_for_an_undecided_value_below(void **state)
{
    world_t *x = *state;
    uint64_t base = member_version(WALL - 60);
    member_seed(x, "ctr", "149", base);
    writes_committed(&x->w, 0, 1);
    uint64_t refused = base + (1 << HLC_TAG_BITS), aborted = refused + 1;
    member_propose(x, "ctr", "150", aborted, 78);
    writes_aborted(&x->w, 1, 78);
    writes_apply(&x->w, FLUSH_PROPOSE, K("ctr"), K("150"), 0, 0, refused, 2, 102);
    writes_sweep(&x->w, WALL + 1);
    assert_int_equal(inflight_version(x->inflight, K("ctr")), aborted); /* waits */
    writes_aborted(&x->w, 2, 102);
    writes_sweep(&x->w, WALL + 1);
    assert_int_equal(inflight_version(x->inflight, K("ctr")), 0);
    assert_string_equal(value(x, "ctr"), "149");
}

/* A member's retry at the version of its aborted proposal, refused for a
 * newer aborted write, stands below that write undecided (WRITES.md rule
 * 46; sim --writes seed 2990 of crash,stop,pause,cut): member 2's INCR
 * (flush 69) lost to member 1's from the same 127, both aborted; member 2
 * ran it again at the same version (flush 103), refused here for member
 * 1's aborted entry. The chain held flush 69's aborted copy at that
 * version and kept it in place of the retry, so the sweep gave back 127
 * while member 2 committed 128 without waiting for this node. */
static void test_retry_refused_for_an_aborted_write_stands_below_it(void **state)
{
    world_t *x = *state;
    uint64_t lower, higher;
    two_members_from_one_value(x, "127", "128", 69, 59, &lower, &higher);
    writes_aborted(&x->w, 2, 69);
    writes_aborted(&x->w, 1, 59);
    assert_int_equal(
        writes_apply(&x->w, FLUSH_PROPOSE, K("ctr"), K("128"), 0, 0, lower, 2, 103), 0);
    writes_sweep(&x->w, WALL + 1);
    assert_int_equal(inflight_version(x->inflight, K("ctr")), higher); /* waits */
    writes_committed(&x->w, 2, 103);
    assert_gives_back(x, "ctr", lower, "128");
    writes_sweep(&x->w, WALL + 1);
    assert_int_equal(inflight_version(x->inflight, K("ctr")), 0);
    assert_string_equal(value(x, "ctr"), "128");
}

/* Rule 28 after the commit (WRITES.md rule 36, sim seed 443's kind): our
 * INCR from 198 committed and left the in-flight table; a member's PROPOSE
 * from the same 198 (same counter, a higher tag) arrives late and its writer
 * is gone: it cannot have committed, and is not replayed; ours stays. */
static void test_gone_writers_late_proposal_over_our_committed_one_yields(void **state)
{
    world_t *x = *state;
    uint64_t base;
    uint64_t mine = own_write_over_198(x, &base, 1);
    writes_committed(&x->w, INFLIGHT_SELF, 9);
    assert_int_equal(inflight_version(x->inflight, K("ctr")), 0);
    uint64_t theirs = mine + 1; /* the same counter, tag 2 */
    assert_int_equal(writes_apply(&x->w, FLUSH_PROPOSE, K("ctr"), K("199"), 0, 0, theirs, 1, 179),
                     1);
    writes_origin_gone(&x->w, 1);
    cache_entry_t *e = cache_lookup(x->cache, K("ctr"), WALL, CACHE_NOTOUCH);
    assert_non_null(e);
    assert_true(cache_entry_version(e) == mine);
    assert_true(cache_entry_rmw(e));
}

/* WRITES.md rule 37 (sim seed 443 of crash,stop,pause,cut): after a drop,
 * a gone writer's late PROPOSE of a lock (279) was taken over nothing;
 * another's (274, the same counter) had won meanwhile. Held until the
 * snapshot brings 274, rule 28 judges 279 lost; the writer's next process
 * (same origin, flush numbers from 1 again) decides none of it. */
static void test_gone_writers_proposal_taken_while_catching_up_waits_for_the_snapshot(
    void **state)
{
    world_t *x = *state;
    writes_drop_all(&x->w);
    uint64_t base = hlc_at(WALL - 40);
    uint64_t won = base | 2, late = base | 3; /* one counter, two tags */
    member_propose(x, "lock", "279", late, 83);
    writes_origin_hold(&x->w, 1);
    writes_committed(&x->w, 1, 100); /* its next process commits its own */
    writes_aborted(&x->w, 1, 83);
    assert_int_equal(inflight_version(x->inflight, K("lock")), late); /* held */
    writes_apply_snapshot(&x->w, K("lock"), K("274"), 0, SNAP_FORM_RMW, won);
    writes_replay_held(&x->w);
    assert_int_equal(inflight_version(x->inflight, K("lock")), 0);
    assert_string_equal(value(x, "lock"), "274");
    cache_entry_t *e = cache_lookup(x->cache, K("lock"), WALL, CACHE_NOTOUCH);
    assert_true(cache_entry_version(e) == won);
}

/* WRITES.md rule 35 (sim seed 407 of crash,stop,pause,cut): a gone
 * writer's aborted proposal whose value to give back is another member's
 * proposal, undecided, stays in flight until that one is decided, and the
 * sweep gives back what stands then. Given back at once, member 2's value
 * counted as committed, and an INCR its maker aborted took effect. */
static void test_gone_writers_aborted_proposal_waits_for_the_value_below(void **state)
{
    world_t *x = *state;
    uint64_t below, over;
    two_members_from_one_value(x, "149", "150", 102, 78, &below, &over);
    writes_aborted(&x->w, 1, 78);
    writes_origin_gone(&x->w, 1);
    assert_int_equal(inflight_version(x->inflight, K("ctr")), over); /* waits */
    writes_aborted(&x->w, 2, 102);
    writes_sweep(&x->w, WALL + 1);
    assert_int_equal(inflight_version(x->inflight, K("ctr")), 0);
    assert_string_equal(value(x, "ctr"), "149");
}

/* A member's newer PROPOSE from the same value replaces our undecided
 * read-modify-write here (the cluster aborts ours: rule 22). */
static void test_newer_member_proposal_overtakes_own_rmw(void **state)
{
    world_t *x = *state;
    uint64_t base, seq;
    uint64_t mine = own_write_over_198(x, &base, 1);
    member_propose(x, "ctr", "199", mine + 1, 138); /* tag 2 > ours */
    assert_string_equal(value(x, "ctr"), "199");
    assert_int_equal(inflight_version(x->inflight, K("ctr")), mine + 1);
    assert_false(inflight_own_rmw(x->inflight, K("ctr"), &seq));
}

typedef struct emitted {
    char val[8][16];
    uint64_t version[8];
    int n;
    char deferred[16];
} emitted_t;

static void collect(void *eud, const char *key, size_t klen, const char *val, size_t vlen,
                    int64_t expire_at, int enc, uint64_t version)
{
    (void)key, (void)klen, (void)expire_at, (void)enc;
    emitted_t *out = eud;
    assert_true(out->n < 8 && vlen < 16);
    memcpy(out->val[out->n], val, vlen);
    out->val[out->n][vlen] = '\0';
    out->version[out->n++] = version;
}

static int keep_all(void *kud, const char *key, size_t klen)
{
    (void)kud, (void)key, (void)klen;
    return 1;
}

/* The sender's waiting list: full (0), or takes the key (1). */
static int defer_none(void *eud, const char *key, size_t klen)
{
    (void)eud, (void)key, (void)klen;
    return 0;
}

static int defer_one(void *eud, const char *key, size_t klen)
{
    emitted_t *out = eud;
    assert_true(klen < 16);
    memcpy(out->deferred, key, klen);
    out->deferred[klen] = '\0';
    return 1;
}

/* WRITES.md rule 28 (sim --writes seed 299 of crash,stop,pause,cut: a
 * lock won twice): member 0 and member 1 each propose the lock from the
 * same (empty) value; 0's arrives first, then 1's (a higher tag) over it.
 * Member 0 commits its own (member 1 was gone before it could refuse it).
 * When member 1's process is gone, its proposal is not replayed as if it
 * might have committed: member 0's lock comes back. */
static void test_gone_writers_proposal_over_a_committed_same_base_one_yields(void **state)
{
    world_t *x = *state;
    two_locks_from_one_value(x);
    writes_committed(&x->w, 0, 7);
    writes_origin_gone(&x->w, 1);
    assert_string_equal(value(x, "lock"), "253");
    assert_int_equal(inflight_version(x->inflight, K("lock")), 0);
}

/* The same when member 0's proposal is still undecided as member 1 goes:
 * member 1's is replayed (member 0 may yet be refused; nothing says 1's
 * did not commit). */
static void test_gone_writers_proposal_over_an_undecided_one_is_replayed(void **state)
{
    world_t *x = *state;
    two_locks_from_one_value(x);
    writes_origin_gone(&x->w, 1);
    assert_string_equal(value(x, "lock"), "259");
}

/* A member's committed ctr 5 (flush 1), then its proposal of 6 (flush 2),
 * undecided. */
static void six_over_five(world_t *x, uint64_t *v5, uint64_t *v6)
{
    *v5 = member_version(WALL - 50);
    *v6 = member_version(WALL - 40);
    member_seed(x, "ctr", "5", *v5);
    writes_committed(&x->w, 0, 1);
    member_propose(x, "ctr", "6", *v6, 2);
}

/* The sender's side of P8: an undecided write that cannot wait goes after
 * the value it replaced; an aborted one's does not go at all (rule 15). */
static void test_snapshot_sends_what_undecided_write_replaced(void **state)
{
    world_t *x = *state;
    uint64_t v5, v6;
    six_over_five(x, &v5, &v6);
    emitted_t out = {.n = 0};
    cluster_snap_out_t to = {collect, defer_none, &out};
    assert_int_equal(writes_snapshot(&x->w, 0, 1 << 20, keep_all, NULL, &to), 0);
    assert_int_equal(out.n, 2);
    assert_string_equal(out.val[0], "5");
    assert_true(out.version[0] == v5);
    assert_string_equal(out.val[1], "6");
    assert_true(out.version[1] == v6);
    writes_aborted(&x->w, 1, 2);
    out.n = 0;
    writes_snapshot(&x->w, 0, 1 << 20, keep_all, NULL, &to);
    assert_int_equal(out.n, 1);
    assert_string_equal(out.val[0], "5");
}

/* P10: a snapshot waits for an undecided write's decision: nothing of the
 * key goes until then; an abort sends the value it replaced, a commit the
 * write (sim --writes seed 248 of crash,stop,pause,cut: the requester took
 * an aborted INCR as committed). */
static void test_snapshot_waits_for_undecided_write(void **state)
{
    world_t *x = *state;
    uint64_t v5, v6, v7 = member_version(WALL - 30);
    six_over_five(x, &v5, &v6);
    emitted_t out = {.n = 0};
    cluster_snap_out_t to = {collect, defer_one, &out};
    assert_int_equal(writes_snapshot(&x->w, 0, 1 << 20, keep_all, NULL, &to), 0);
    assert_int_equal(out.n, 0);
    assert_string_equal(out.deferred, "ctr");
    assert_int_equal(writes_snapshot_key(&x->w, "ctr", 3, NULL), 1);
    assert_int_equal(writes_snapshot_key(&x->w, "ctr", 3, &to), 1);
    assert_int_equal(out.n, 0);
    writes_aborted(&x->w, 1, 2);
    assert_int_equal(writes_snapshot_key(&x->w, "ctr", 3, NULL), 0);
    assert_int_equal(out.n, 0);
    assert_int_equal(writes_snapshot_key(&x->w, "ctr", 3, &to), 0);
    assert_int_equal(out.n, 1);
    assert_string_equal(out.val[0], "5");
    /* A commit: the write itself goes. */
    member_propose(x, "ctr", "7", v7, 3);
    out.n = 0;
    out.deferred[0] = '\0';
    writes_snapshot(&x->w, 0, 1 << 20, keep_all, NULL, &to);
    assert_int_equal(out.n, 0);
    assert_string_equal(out.deferred, "ctr");
    writes_committed(&x->w, 1, 3);
    assert_int_equal(writes_snapshot_key(&x->w, "ctr", 3, &to), 0);
    assert_int_equal(out.n, 1);
    assert_string_equal(out.val[0], "7");
    assert_true(out.version[0] == v7);
}

/* WRITES.md rule 30 (sim --writes --store seed 130 of crash,stop,pause,cut):
 * a deferred key overtaken by a newer proposal still waits, for that one;
 * its sender had sent the overtaken proposal as a committed value. */
static void test_snapshot_waits_for_the_proposal_that_overtook_the_deferred_one(void **state)
{
    world_t *x = *state;
    uint64_t v5, v6;
    six_over_five(x, &v5, &v6);
    emitted_t out = {.n = 0};
    cluster_snap_out_t to = {collect, defer_one, &out};
    writes_snapshot(&x->w, 0, 1 << 20, keep_all, NULL, &to);
    assert_string_equal(out.deferred, "ctr");
    uint64_t newer = v6 + 1; /* member 0's, from the same 5 */
    assert_int_equal(writes_apply(&x->w, FLUSH_PROPOSE, K("ctr"), K("6"), 0, 0, newer, 0, 4), 1);
    assert_int_equal(writes_snapshot_key(&x->w, "ctr", 3, &to), 1);
    assert_int_equal(out.n, 0);
    writes_committed(&x->w, 0, 4);
    assert_int_equal(writes_snapshot_key(&x->w, "ctr", 3, &to), 0);
    assert_int_equal(out.n, 1);
    assert_true(out.version[0] == newer);
}

/* The same below: this node's own proposal aborted, over a member's it
 * refused for it: the key waits for that member's decision, then sends
 * the value both read once it aborts too. */
static void test_snapshot_waits_for_a_refused_proposal_below_an_aborted_one(void **state)
{
    world_t *x = *state;
    uint64_t base;
    uint64_t theirs = own_write_over_198(x, &base, 1) - SELF_TAG;
    writes_apply(&x->w, FLUSH_PROPOSE, K("ctr"), K("199"), 0, 0, theirs, 1, 179);
    emitted_t out = {.n = 0};
    cluster_snap_out_t to = {collect, defer_one, &out};
    writes_snapshot(&x->w, 0, 1 << 20, keep_all, NULL, &to);
    assert_string_equal(out.deferred, "ctr");
    writes_aborted(&x->w, INFLIGHT_SELF, 9);
    assert_int_equal(writes_snapshot_key(&x->w, "ctr", 3, &to), 1);
    assert_int_equal(out.n, 0);
    writes_aborted(&x->w, 1, 179);
    assert_int_equal(writes_snapshot_key(&x->w, "ctr", 3, &to), 0);
    assert_int_equal(out.n, 1);
    assert_string_equal(out.val[0], "198");
    assert_true(out.version[0] == base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hlc_seen_bounds_what_was_made_and_observed),
        cmocka_unit_test_setup_teardown(test_drop_keeps_own_newer_seed_from_losing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_drop_keeps_observed_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_write_over_a_snapshot_value_newer_than_an_aborted_entry_replaces_it, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_prior_replaces_older_chain, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_waits_for_undecided_write, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_snapshot_waits_for_the_proposal_that_overtook_the_deferred_one, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_snapshot_waits_for_a_refused_proposal_below_an_aborted_one, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_gone_writers_proposal_over_a_committed_same_base_one_yields, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_gone_writers_proposal_over_an_undecided_one_is_replayed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_sends_what_undecided_write_replaced,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_with_the_aborted_version_is_a_new_write,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_retry_before_its_abort_is_a_new_write, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refused_proposal_is_kept_below_own_rmw, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refused_proposal_that_aborts_gives_back_the_base,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_proposal_is_kept_below_members_write,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_refused_for_an_aborted_write_stands_below_it,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_waits_for_an_undecided_value_below, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_gone_writers_aborted_proposal_waits_for_the_value_below, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_gone_writers_late_proposal_over_our_committed_one_yields, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_gone_writers_proposal_taken_while_catching_up_waits_for_the_snapshot, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_newer_member_proposal_overtakes_own_rmw, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_undecided_lists_members_writes_in_flight, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
