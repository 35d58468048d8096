/* cluster_fixture: what the cluster layer's unit tests share: a cluster
 * made with cluster_create (no sockets, no timers, no store) for node n0 at
 * 127.0.0.1:7000 with members n1 (:7001) and n2 (:7002) that never dial, a
 * fake clock (now_ms), and host hooks that count what they are told
 * (applied, drops; aborted_origin/aborted_seq and gone_origin keep the last
 * call, -1/0 when none). Included once by each test file. */
#ifndef COHORT_TEST_CLUSTER_FIXTURE_H
#define COHORT_TEST_CLUSTER_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cluster_int.h"
#include "config.h"

static int64_t now_ms;
static int applied, drops, aborted_origin, gone_origin, gone_held;
static uint64_t aborted_seq;

static size_t held_keys; /* what h_held says the cache holds */
static size_t h_held(void *ud)
{
    (void)ud;
    return held_keys;
}

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
    drops++;
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
static void h_origin_gone(void *ud, int origin, int hold)
{
    (void)ud;
    gone_origin = origin;
    gone_held = hold;
}

typedef struct fixture {
    config_t cfg;
    cluster_t *cl;
    member_t *n1, *n2; /* at 127.0.0.1:7001 and :7002 */
} fixture_t;

/* Makes f's cluster with settings set (section, key, value) on top of the
 * node's own; with_writes: the host's aborted and origin_gone hooks too. */
static void fixture_start(fixture_t *f, const char *const (*set)[3], size_t nset, int with_writes)
{
    memset(f, 0, sizeof(*f));
    char err[256];
    config_defaults(&f->cfg);
    const char *const base[][3] = {
        {"node", "name", "n0"},
        {"cluster", "bind", "127.0.0.1"},
        {"cluster", "port", "7000"},
        {"cluster", "peer", "127.0.0.1:7000"},
        {"cluster", "peer", "127.0.0.1:7001"},
        {"cluster", "peer", "127.0.0.1:7002"},
    };
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
        assert_int_equal(
            config_set(&f->cfg, base[i][0], base[i][1], base[i][2], err, sizeof(err)), 0);
    for (size_t i = 0; i < nset; i++)
        assert_int_equal(config_set(&f->cfg, set[i][0], set[i][1], set[i][2], err, sizeof(err)),
                         0);
    now_ms = 100000;
    applied = drops = 0;
    aborted_origin = gone_origin = -1;
    gone_held = 0;
    held_keys = 0;
    aborted_seq = 0;
    cluster_host_t host = {NULL, h_apply, h_drop_all, h_skipped, h_progress, h_observe, 0,
                           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, h_held};
    if (with_writes) {
        host.aborted = h_aborted;
        host.origin_gone = h_origin_gone;
    }
    f->cl = cluster_create(NULL, &f->cfg, &host, 42, 7, err, sizeof(err));
    assert_non_null(f->cl);
    f->cl->clock = fake_clock;
    assert_int_equal(f->cl->nmembers, 2);
    f->n1 = &f->cl->members[0];
    f->n2 = &f->cl->members[1];
    for (size_t i = 0; i < 2; i++) { /* no connection attempts from member_tick */
        f->cl->members[i].we_initiate = 0;
        f->cl->members[i].next_connect = INT64_MAX;
    }
    snprintf(f->n1->name, sizeof(f->n1->name), "n1");
    snprintf(f->n2->name, sizeof(f->n2->name), "n2");
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    cluster_free(f->cl);
    config_free(&f->cfg);
    return 0;
}

#endif
