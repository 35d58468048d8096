/* scheduler: the [job NAME] sections of the config, fired at their slots.
 *
 * Owns: the jobs (their jobspec_t), which slot each fires next, the run in
 * progress per job, the copy of each job's recent history that JOBS and
 * JOB.HISTORY answer from, and pruning old history.
 * Never: runs a slot it did not start in the store itself (store_job_claim,
 * then store_job_start: the (job, slot) row is unique and is started at most
 * once, so a slot runs at most once cluster-wide even if two nodes briefly
 * both believe they lead); fires a where = leader job while lease_held()
 * says no (checked after the claim, and again when the start's answer
 * arrives, just before the run); blocks the loop (jobrun spawns and talks
 * HTTP on it). The rule of a slot's life is in scheduler.c's top comment.
 *
 * where = every jobs run on every node: their slots are claimed under the key
 * "NAME:NODE", one per node. A new leader reads the newest slot STARTED for
 * a job (store_job_last: a slot only claimed counts as not run) and runs what
 * was missed per catchup (jobspec.h).
 * Runs of one job never overlap: overlap = queue runs the slots that fell due
 * meanwhile afterwards, overlap = skip drops the slots that fell due while a
 * run was in progress (they are not claimed). Every run gets the lease's
 * epoch (COHORT_EPOCH / Cohort-Epoch); where = every jobs get epoch 0.
 */
#ifndef COHORT_SCHEDULER_H
#define COHORT_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "jobspec.h"
#include "lease.h"
#include "store.h"
#include "svctime.h"

#define SCHEDULER_TICK_MS 100 /* how often due slots are looked for */
#define SCHEDULER_HISTORY 100 /* runs kept in each job's copy */

typedef struct scheduler scheduler_t;

/* Parses cfg's [job NAME] sections into *out (n in *n; the caller frees each
 * with jobspec_free and the array with free). Returns 0, or -1 with
 * "FILE:LINE: key: what is wrong" in err. */
int scheduler_parse(const config_t *cfg, jobspec_t **out, size_t *n, char *err, size_t errlen);

/* Starts the scheduler; it takes ownership of specs (n of them). store and
 * leases must outlive it. retention_ms: history older than this is pruned. */
scheduler_t *scheduler_new(uv_loop_t *loop, store_t *store, lease_mgr_t *leases, const char *node,
                           jobspec_t *specs, size_t n, int64_t retention_ms);

/* The same on an injected clock and timers (svctime.h; NULL: the default):
 * slots are computed from clock->wall_ms. For the lease simulator; clock
 * must outlive the scheduler. */
scheduler_t *scheduler_new_clock(uv_loop_t *loop, store_t *store, lease_mgr_t *leases,
                                 const char *node, jobspec_t *specs, size_t n,
                                 int64_t retention_ms, const svctime_ops_t *clock);

/* Stops: cancels runs in progress (recorded as "error"), waits for the
 * store's answers, calls done(ud) on the loop and frees s. */
void scheduler_stop(scheduler_t *s, void (*done)(void *ud), void *ud);

size_t scheduler_count(const scheduler_t *s);
const jobspec_t *scheduler_spec(const scheduler_t *s, size_t i);

typedef struct scheduler_job_info {
    const char *last_status; /* "" if no run is known; "running" while one runs here */
    int64_t last_slot_ms;    /* 0 if none */
    int64_t next_slot_ms;    /* -1 if none */
} scheduler_job_info_t;

/* Fills *info for job i. Returns 0. */
int scheduler_job_info(scheduler_t *s, size_t i, scheduler_job_info_t *info);

/* Fires job name now, once cluster-wide: claims the slot "now" (epoch ms)
 * and runs it on this node, with the lease's epoch. A where = leader job
 * fires only on the node that holds its lease (a warm spare never runs it).
 * Returns 0, or -1 with a message in err (unknown job, one already waiting to
 * be fired, this node does not hold the job's lease: err names the holder). */
int scheduler_run_now(scheduler_t *s, const char *name, char *err, size_t errlen);

/* This node's copy of name's history, newest slot first (refreshed from the
 * store after each run here and when asked, at most every 200 ms: a reply may
 * be that old). Returns the number of runs (<= SCHEDULER_HISTORY) with
 * *runs pointing at storage of the scheduler's (valid until the next call or
 * the next loop turn, whichever comes first), or -1 for an unknown job. */
long scheduler_history(scheduler_t *s, const char *name, const store_run_t **runs);

/* Counters for metrics. */
typedef struct scheduler_stats {
    uint64_t runs_started, runs_ok, runs_failed; /* failed: failed, timeout, error */
    uint64_t slots_taken;   /* slots another node had claimed already */
    uint64_t slots_skipped; /* dropped by overlap = skip */
    uint64_t slots_abandoned; /* started here, lease lost before the run: not run */
} scheduler_stats_t;
const scheduler_stats_t *scheduler_stats(const scheduler_t *s);

#endif
