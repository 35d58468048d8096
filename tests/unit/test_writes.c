/* Unit tests for writes: the node's side of the write protocol
 * (node/writes.h), alone (no cluster: cluster calls are no-ops on NULL).
 * Covers P7, a cache drop forgets no version, and hlc_seen (base/hlc.h)
 * that it rests on. The simulator checks the rest under faults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cache.h"
#include "cache_value.h"
#include "flushmark.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hlc_seen_bounds_what_was_made_and_observed),
        cmocka_unit_test_setup_teardown(test_drop_keeps_own_newer_seed_from_losing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_drop_keeps_observed_versions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
