/* lease: named leader leases held in the shared store, as this node sees them.
 *
 * Owns: the leases this node wants (canonical, and names applications asked
 * for with LEADER.ACQUIRE), their renewal timers, this node's view of every
 * lease it tracks (holder, epoch, time left), and how long it trusts a
 * renewal.
 * Never: judges a lease by its own wall clock (the store's database clock
 * decides expiry; only relative times come back), acts as holder past the
 * margin below, acquires anything on a warm node, or blocks the loop.
 *
 * Timing, for a lease of ttl T (default [leases] ttl = 2s):
 *   - the holder renews every T/3;
 *   - a renewal is trusted until (the monotonic time the renewal was SENT)
 *     + T - margin, margin = T/10. The database computes expiry from its own
 *     clock when it runs the statement, which is after the send, so the row
 *     lives at least until send + T on a clock running at the same rate; the
 *     margin covers a rate difference of up to 10% and scheduling delays.
 *     lease_held() answers false from then on, so the holder stops acting as
 *     leader before the lease could have expired anywhere. A process that was
 *     stopped (SIGSTOP) finds on waking that its monotonic clock moved on.
 *   - a node that wants a lease it does not hold asks every
 *     LEASE_POLL_MS (250 ms) or T/3 if shorter, and at once after the time
 *     the holder's lease has left, so a released lease (SIGTERM: the holder
 *     releases before exiting) is taken within about LEASE_POLL_MS, and an
 *     expired one (kill -9) within about T + LEASE_POLL_MS.
 *   - taking over an expired or released lease increments its epoch (the
 *     store does it atomically); the epoch is the fencing token jobs get.
 */
#ifndef COHORT_LEASE_H
#define COHORT_LEASE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "store.h"
#include "svctime.h"

#define LEASE_POLL_MS 250 /* non-holders ask this often (or T/3 if shorter) */
#define LEASE_MAX 64      /* names tracked per node */

typedef struct lease_mgr lease_mgr_t;

typedef struct lease_view {
    bool known;       /* an answer from the store has arrived */
    const char *holder; /* "" if none (never held, or released/expired) */
    int64_t epoch;
    int64_t ms_left;  /* by the last answer, minus the time since; <= 0: free */
    bool is_me;       /* this node holds it and trusts it now (lease_held) */
} lease_view_t;

/* Creates the manager on loop for node (name copied). warm: never acquire.
 * default_ttl_ms is [leases] ttl. canonical is tracked from the start
 * (acquired unless warm). The store must outlive the manager. */
lease_mgr_t *lease_mgr_new(uv_loop_t *loop, store_t *store, const char *node,
                           int64_t default_ttl_ms, bool warm);

/* The same on an injected clock and timers (svctime.h; NULL: the default).
 * For the lease simulator: the daemon uses lease_mgr_new. clock must outlive
 * the manager. */
lease_mgr_t *lease_mgr_new_clock(uv_loop_t *loop, store_t *store, const char *node,
                                 int64_t default_ttl_ms, bool warm, const svctime_ops_t *clock);

/* This node wants to hold name (ttl_ms 0: the default) and keeps renewing
 * it. Returns 0, or -1 with a message in err (warm node, bad name, too many
 * leases). */
int lease_acquire(lease_mgr_t *m, const char *name, int64_t ttl_ms, char *err, size_t errlen);

/* This node gives name up: stops renewing and releases it in the store if
 * it holds it. Returns 0, or -1 if it was never acquired here. canonical can
 * not be given up (-1). */
int lease_release(lease_mgr_t *m, const char *name, char *err, size_t errlen);

/* 1 when this node holds name and trusts it now (see the margin above), with
 * the epoch in *epoch (may be NULL); else 0. */
int lease_held(lease_mgr_t *m, const char *name, int64_t *epoch);

/* As lease_held, but 1 only while the renewal is trusted for at least
 * ttl/8 more (LEASE_AHEAD_DIV): the scheduler starts a slot only then, so
 * the start's answer normally comes back while the lease is still trusted. */
#define LEASE_AHEAD_DIV 8
int lease_held_ahead(lease_mgr_t *m, const char *name, int64_t *epoch);

/* 1 when the store has answered that epoch of name has ended for good: it
 * reported a later epoch, or that epoch expired or released (an expired
 * lease is never renewed with the same epoch), so no node acts on epoch any
 * more; else 0 (still held, or not known yet). */
int lease_epoch_over(lease_mgr_t *m, const char *name, int64_t epoch);

/* Fills *v with this node's view of name, and starts tracking a name it did
 * not track (it reads as unknown until the store's first answer, within
 * LEASE_POLL_MS). holder points into the manager, valid until the next loop
 * turn. Returns 0, or -1 if name is invalid or too many names are tracked. */
int lease_view(lease_mgr_t *m, const char *name, lease_view_t *v);

/* Counters for metrics. */
uint64_t lease_acquired_count(const lease_mgr_t *m); /* times a lease was gained */
uint64_t lease_lost_count(const lease_mgr_t *m);     /* times a lease stopped being trusted */
size_t lease_held_count(lease_mgr_t *m);

/* Stops: every timer, then releases every lease this node holds (so another
 * node takes over at once), then calls done(ud) on the loop and frees m.
 * Safe with a store that is down (the release fails fast; the lease then
 * expires by itself). */
void lease_mgr_stop(lease_mgr_t *m, void (*done)(void *ud), void *ud);

#endif
