/* scheduler: fires the configured jobs at their slots; see scheduler.h.
 *
 * Owns: one sjob per [job NAME] (its spec, the slot it fired last, the run in
 * progress, a copy of its recent history), the tick timer, the prune timer.
 * Never: frees a job while a store callback or a run for it is pending (the
 * scheduler counts them and frees everything after the last); spawns a slot
 * it did not start itself, or one it started while it no longer trusts the
 * lease with the epoch it started it under.
 *
 * The rule of a slot (store.h, Jobs): claimed -> started -> finished.
 *   1. claim (job, slot) with this node and the lease's epoch. A claim is
 *      idempotent (a repeat after a lost answer reports "mine" again) and
 *      re-claimable: a higher epoch takes over a row that is only claimed.
 *      A claim decides nothing for good; a node whose lease lapses between
 *      claim and start leaves the slot to the next holder.
 *   2. start: one statement moves claimed -> started if the row is claimed by
 *      (this node, epoch) and the lease row still names this node with that
 *      epoch, unexpired by the database's clock. Started is final: nobody
 *      else ever starts that slot.
 *   3. spawn only when the start's answer says "started by this node with
 *      this epoch" and lease_held() still trusts that epoch. A start is sent
 *      only while the lease is trusted for a while yet (lease_held_ahead),
 *      so its answer normally arrives in time. A lost answer (rc < 0) is
 *      resolved by repeating the start while the lease is trusted with that
 *      epoch (the answer is the row). While the lease is not trusted and
 *      its epoch may still be live, the start is handed back (unstart:
 *      started -> claimed under the same fence, which passes only while no
 *      other node can have led since); once the store reports the epoch
 *      over (lease_epoch_over), the start statement only reads the row back
 *      (the fence cannot pass): started by this node => it cannot run:
 *      recorded "abandoned", never re-run. A node stopping (SIGTERM) hands
 *      back a start it will not spawn. (resolve_start)
 *   4. a new holder's catch-up (store_job_last) counts only started slots as
 *      run: claimed-only slots fall due again, and their claims are taken
 *      over by the higher epoch.
 * So: every slot is started at most once and runs at most once. It runs
 * exactly once unless the node that started it cannot spawn it and can
 * neither learn nor undo the start before its epoch ends (it crashed, or was
 * paused, or lost the database, past its lease); then it is recorded as
 * started (or abandoned) and not re-run. A run in progress when its node
 * dies or stops is not re-run either. The lease simulator checks both
 * (tests/sim/lease_sim.c, L6 and L7). */
#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobrun.h"
#include "log.h"
#include "mem.h"

#define KEY_MAX 160
#define STORE_NAME_MAX 64 /* store.h: names are 1..64 bytes */
#define PRUNE_EVERY_MS (10 * 60 * 1000)
#define HISTORY_MIN_AGE_MS 200

typedef struct hrun {
    char job[KEY_MAX];
    char node[72];
    char status[16];
    store_run_t run; /* strings point at the fields above and output */
    char *output;
} hrun_t;

typedef struct sjob {
    struct scheduler *s;
    jobspec_t spec;
    char key[KEY_MAX];   /* the store's job name: NAME, or NAME:NODE for where = every */
    int64_t last_ms;     /* newest slot fired or known fired */
    bool last_known;
    bool busy;           /* a store operation or a run is pending */
    bool unsure;         /* run_slot is claimed by this node and not run: resolve_start */
    bool start_sent;     /* ... and a start of it was sent (it may have been made) */
    jobrun_t *run;
    int64_t run_slot, run_epoch, run_started;
    bool run_manual;
    int64_t manual_slot; /* JOB.RUN waiting; 0: none */
    int64_t skip_from, skip_to;
    char last_status[16];
    int64_t last_slot;
    hrun_t *hist;
    size_t nhist;
    bool hist_loading;
    int64_t hist_at; /* monotonic ms of the last refresh */
} sjob_t;

struct scheduler {
    uv_loop_t *loop;
    store_t *store;
    lease_mgr_t *leases;
    char *node;
    sjob_t *jobs;
    size_t n;
    int64_t retention_ms;
    svctime_timer_t tick, prune;
    const svctime_ops_t *clock; /* NULL: libuv timers, clock.h */
    bool stopping;
    size_t pending;
    void (*done)(void *ud);
    void *done_ud;
    scheduler_stats_t stats;
};


/* ---- config ------------------------------------------------------------------ */

int scheduler_parse(const config_t *cfg, jobspec_t **out, size_t *n, char *err, size_t errlen)
{
    const char *file = cfg->path ? cfg->path : "(config)";
    jobspec_t *specs = xcalloc(cfg->njobs ? cfg->njobs : 1, sizeof(*specs));
    size_t done = 0;
    char why[256];
    for (size_t i = 0; i < cfg->njobs; i++) {
        const config_job_t *cj = &cfg->jobs[i];
        jobspec_t *j = &specs[done++];
        if (jobspec_init(j, cj->name, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "%s:%d: %s", file, cj->line, why);
            goto bad;
        }
        for (size_t k = 0; k < cj->npairs; k++) {
            if (jobspec_set(j, cj->pairs[k].key, cj->pairs[k].value, why, sizeof(why)) < 0) {
                snprintf(err, errlen, "%s:%d: %s", file, cj->pairs[k].line, why);
                goto bad;
            }
        }
        if (jobspec_check(j, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "%s:%d: [job %s]: %s", file, cj->line, cj->name, why);
            goto bad;
        }
        if (j->where == JOBSPEC_WHERE_EVERY && cfg->name &&
            strlen(j->name) + 1 + strlen(cfg->name) > STORE_NAME_MAX) {
            snprintf(err, errlen,
                     "%s:%d: [job %s]: where: a where = every job is stored as NAME:NODE, "
                     "and '%s:%s' is longer than %d bytes",
                     file, cj->line, cj->name, j->name, cfg->name, STORE_NAME_MAX);
            goto bad;
        }
    }
    *out = specs;
    *n = done;
    return 0;
bad:
    for (size_t i = 0; i < done; i++)
        jobspec_free(&specs[i]);
    free(specs);
    return -1;
}

/* ---- history copy ------------------------------------------------------------- */

static void hist_free(sjob_t *j)
{
    for (size_t i = 0; i < j->nhist; i++)
        free(j->hist[i].output);
    free(j->hist);
    j->hist = NULL;
    j->nhist = 0;
}

static void finish_if_done(struct scheduler *s);

/* A store answer for job j arrived (flag was set while it was awaited):
 * returns 1 when the scheduler is stopping and the answer must be dropped. */
static int answer_arrived(sjob_t *j, bool *flag)
{
    struct scheduler *s = j->s;
    s->pending--;
    *flag = false;
    if (!s->stopping)
        return 0;
    finish_if_done(s);
    return 1;
}

static void on_history(void *ud, int rc, const char *err, const store_run_t *runs, size_t n)
{
    sjob_t *j = ud;
    struct scheduler *s = j->s;
    if (answer_arrived(j, &j->hist_loading))
        return;
    if (rc < 0)
        return;
    hist_free(j);
    j->hist = xcalloc(n ? n : 1, sizeof(*j->hist));
    for (size_t i = 0; i < n; i++) {
        hrun_t *h = &j->hist[i];
        snprintf(h->job, sizeof(h->job), "%s", runs[i].job);
        snprintf(h->node, sizeof(h->node), "%s", runs[i].node);
        snprintf(h->status, sizeof(h->status), "%s", runs[i].status);
        h->output = xmemdup(runs[i].output ? runs[i].output : "", runs[i].output_len);
        h->run = runs[i];
        h->run.job = h->job;
        h->run.node = h->node;
        h->run.status = h->status;
        h->run.output = h->output;
    }
    j->nhist = n;
    j->hist_at = svctime_mono_ms(s->clock);
    if (n && !j->run) {
        snprintf(j->last_status, sizeof(j->last_status), "%s",
                 runs[0].status[0] ? runs[0].status : runs[0].started ? "running" : "claimed");
        j->last_slot = runs[0].slot_ms;
    }
}

static void hist_refresh(sjob_t *j)
{
    struct scheduler *s = j->s;
    if (j->hist_loading || s->stopping)
        return;
    if (store_job_history(s->store, j->key, SCHEDULER_HISTORY, on_history, j) == 0) {
        j->hist_loading = true;
        s->pending++;
    }
}

/* ---- runs ------------------------------------------------------------------- */

static void on_finished(void *ud, int rc, const char *err)
{
    sjob_t *j = ud;
    struct scheduler *s = j->s;
    s->pending--;
    j->busy = false;
    if (rc < 0)
        log_warn("jobs", "job %s: recording the run of slot %lld failed: %s", j->spec.name,
                 (long long)j->run_slot, err ? err : store_strerror(rc));
    if (s->stopping) {
        finish_if_done(s);
        return;
    }
    hist_refresh(j);
}

static void record(sjob_t *j, const char *status, int64_t code, const char *out, size_t len,
                   int64_t started, int64_t ended)
{
    struct scheduler *s = j->s;
    snprintf(j->last_status, sizeof(j->last_status), "%s", status);
    j->last_slot = j->run_slot;
    if (store_job_finish(s->store, j->key, j->run_slot, status, code, out, len, started, ended,
                         on_finished, j) == 0) {
        s->pending++;
        return;
    }
    log_warn("jobs", "job %s: cannot record the run of slot %lld", j->spec.name,
             (long long)j->run_slot);
    j->busy = false;
}

static void on_run_done(const jobrun_result_t *res, void *arg)
{
    sjob_t *j = arg;
    struct scheduler *s = j->s;
    int64_t ended = svctime_wall_ms(s->clock);
    s->pending--;
    j->run = NULL;
    if (res->status == JOBRUN_OK)
        s->stats.runs_ok++;
    else
        s->stats.runs_failed++;
    int64_t code = j->spec.url ? res->http_status : res->exit_code;
    log_info("jobs", "job %s slot %lld epoch %lld: %s%s%s", j->spec.name, (long long)j->run_slot,
             (long long)j->run_epoch, jobrun_status_name(res->status), res->message[0] ? ": " : "",
             res->message);
    if (j->spec.overlap == JOBSPEC_OVERLAP_SKIP && !j->run_manual) {
        j->skip_from = j->run_started;
        j->skip_to = ended;
    }
    record(j, jobrun_status_name(res->status), code, res->output, res->output_len, j->run_started,
           ended);
}

static void start_run(sjob_t *j)
{
    struct scheduler *s = j->s;
    char err[256];
    jobrun_spec_t spec = {
        .command = j->spec.command,
        .url = j->spec.url,
        .method = j->spec.method,
        .timeout_ms = j->spec.timeout_ms,
        .job = j->spec.name,
        .slot_ms = j->run_slot,
        .epoch = (uint64_t)j->run_epoch,
        .node = s->node,
    };
    j->run_started = svctime_wall_ms(s->clock);
    snprintf(j->last_status, sizeof(j->last_status), "running");
    j->last_slot = j->run_slot;
    if (jobrun_start(s->loop, &spec, on_run_done, j, &j->run, err, sizeof(err)) < 0) {
        log_warn("jobs", "job %s: %s", j->spec.name, err);
        record(j, "error", -1, err, strlen(err), j->run_started, svctime_wall_ms(s->clock));
        return;
    }
    s->stats.runs_started++;
    s->pending++;
}

/* 1 when j may run now (leader jobs: the lease is trusted), with the epoch. */
static int may_run(sjob_t *j, int64_t *epoch)
{
    *epoch = 0;
    if (j->spec.where == JOBSPEC_WHERE_EVERY)
        return 1;
    return lease_held(j->s->leases, j->spec.lease, epoch);
}

/* 1 when j may spawn a slot it started under epoch: still trusted with it. */
static int may_spawn(sjob_t *j, int64_t epoch)
{
    int64_t now_epoch;
    return may_run(j, &now_epoch) && now_epoch == epoch;
}

/* 1 when no node can act on j's run_epoch any more (a where = every job's
 * epoch never ends). */
static int epoch_over(sjob_t *j)
{
    return j->spec.where == JOBSPEC_WHERE_LEADER &&
           lease_epoch_over(j->s->leases, j->spec.lease, j->run_epoch);
}

static void on_stop_unstart(void *ud, int rc, const char *err, const store_slot_t *slot)
{
    sjob_t *j = ud;
    struct scheduler *s = j->s;
    s->pending--;
    if (rc < 0)
        log_warn("jobs", "job %s: handing slot %lld back: %s", j->spec.name,
                 (long long)j->run_slot, err ? err : store_strerror(rc));
    else if (slot->state == STORE_SLOT_CLAIMED && strcmp(slot->node, s->node) == 0)
        log_info("jobs", "job %s: slot %lld handed back to the next holder (stopping)",
                 j->spec.name, (long long)j->run_slot);
    finish_if_done(s);
}

/* Stopping with a start of run_slot that was (or may have been) made and
 * will not be spawned: undo it under the same fence, so the next holder
 * runs the slot (store_job_unstart). */
static void stop_unstart(sjob_t *j)
{
    struct scheduler *s = j->s;
    const char *lease = j->spec.where == JOBSPEC_WHERE_LEADER ? j->spec.lease : NULL;
    j->unsure = false;
    if (store_job_unstart(s->store, j->key, j->run_slot, s->node, j->run_epoch, lease,
                          on_stop_unstart, j) == 0)
        s->pending++;
}

/* The row of run_slot says it is started by this node under run_epoch, and
 * this node never spawned it: spawn it if the lease is still trusted with
 * that epoch; wait if the epoch may yet be renewed; else record it. */
static void started_mine(sjob_t *j)
{
    struct scheduler *s = j->s;
    if (may_spawn(j, j->run_epoch)) {
        j->unsure = false;
        j->busy = true; /* until the run is recorded */
        start_run(j);
        return;
    }
    if (!epoch_over(j)) {
        j->unsure = true; /* handed back or spawned at a later tick (resolve_start) */
        return;
    }
    /* Started in the store, but this node stopped trusting the lease before
     * it could run it, and the epoch ended before it could hand it back:
     * never run, never re-run (at most once). */
    j->unsure = false;
    j->start_sent = false;
    const char *why = "started, but the lease was lost before the run: not run";
    log_warn("jobs", "job %s slot %lld epoch %lld: %s", j->spec.name, (long long)j->run_slot,
             (long long)j->run_epoch, why);
    s->stats.slots_abandoned++;
    int64_t now = svctime_wall_ms(s->clock);
    j->busy = true;
    record(j, "abandoned", -1, why, strlen(why), now, now);
}

/* The answer to a start or an unstart of run_slot: the row as it is. */
static void on_start(void *ud, int rc, const char *err, const store_slot_t *slot)
{
    sjob_t *j = ud;
    struct scheduler *s = j->s;
    bool mine = rc == 0 && strcmp(slot->node, s->node) == 0 && slot->epoch == j->run_epoch;
    if (s->stopping && (rc < 0 || (mine && slot->state == STORE_SLOT_STARTED)))
        stop_unstart(j); /* before answer_arrived: it keeps the scheduler alive */
    if (answer_arrived(j, &j->busy))
        return;
    if (rc < 0) {
        /* It may have taken effect: resolve_start finds out at a later tick. */
        log_warn("jobs", "job %s: starting slot %lld: %s", j->spec.name, (long long)j->run_slot,
                 err ? err : store_strerror(rc));
        j->unsure = true;
        return;
    }
    if (mine && slot->state == STORE_SLOT_STARTED) {
        started_mine(j);
        return;
    }
    /* Not started by this node under this epoch: the fence refused (the
     * lease is gone or changed), or it was handed back, or another holder
     * took the claim over, or it is someone else's. The slot stays with
     * whoever leads: read where the job stands again before firing. */
    j->unsure = false;
    j->start_sent = false;
    j->last_known = false;
    if (mine && slot->state == STORE_SLOT_CLAIMED)
        log_info("jobs", "job %s slot %lld: not started now (lease not held); left claimed",
                 j->spec.name, (long long)j->run_slot);
}

/* Sends the start (unstart: false) or the unstart of (run_slot, run_epoch),
 * fenced by the lease for leader jobs. Repeating either is safe: the answer
 * is the row. */
static void send_start(sjob_t *j, bool start)
{
    struct scheduler *s = j->s;
    const char *lease = j->spec.where == JOBSPEC_WHERE_LEADER ? j->spec.lease : NULL;
    int rc = start ? store_job_start(s->store, j->key, j->run_slot, s->node, j->run_epoch, lease,
                                     on_start, j)
                   : store_job_unstart(s->store, j->key, j->run_slot, s->node, j->run_epoch,
                                       lease, on_start, j);
    j->unsure = true; /* until an answer settles it */
    if (rc == 0) {
        j->start_sent |= start;
        j->busy = true;
        s->pending++;
    }
}

/* A slot claimed by this node and not known to be run (the claim just
 * answered "mine", or a start's outcome is unknown, or it took effect while
 * the lease was not trusted). At each tick, one of:
 *   - the lease is trusted with its epoch for a while yet (lease_held_ahead,
 *     so the answer normally arrives in time): send the start; its answer
 *     is the row (started by me: spawn);
 *   - the epoch is over: send the start too; the fence cannot pass, so it
 *     only reads the row back (started by me: abandoned; else dropped);
 *   - neither, and a start may have been made: hand it back (unstart, under
 *     the same fence: it passes only while no other node can have led since)
 *     so that the slot is not lost if the epoch ends before this node learns
 *     the start's outcome;
 *   - else wait. */
static void resolve_start(sjob_t *j)
{
    int64_t epoch = 0;
    bool trusted = j->spec.where == JOBSPEC_WHERE_EVERY ||
                   (lease_held_ahead(j->s->leases, j->spec.lease, &epoch) &&
                    epoch == j->run_epoch);
    j->unsure = true;
    if (trusted || epoch_over(j))
        send_start(j, true);
    else if (j->start_sent)
        send_start(j, false);
}

static void on_claim(void *ud, int rc, const char *err, bool claimed)
{
    sjob_t *j = ud;
    struct scheduler *s = j->s;
    if (answer_arrived(j, &j->busy))
        return;
    if (rc < 0) {
        log_warn("jobs", "job %s: claiming slot %lld: %s", j->spec.name, (long long)j->run_slot,
                 err ? err : store_strerror(rc));
        return; /* claimed again at the next tick: a repeat of a claim is safe */
    }
    if (j->run_manual)
        j->manual_slot = 0;
    else if (j->run_slot > j->last_ms || j->last_ms == JOBSPEC_NO_SLOT)
        j->last_ms = j->run_slot;
    if (!claimed) {
        s->stats.slots_taken++;
        return;
    }
    /* If the lease went between the claim's sending and its answer, the
     * start waits for it, or for its epoch to end: then the slot stays
     * claimed, and whoever holds the lease next takes the claim over (a
     * higher epoch) and runs it. */
    resolve_start(j);
}

static void claim(sjob_t *j, int64_t slot, int64_t epoch, bool manual)
{
    struct scheduler *s = j->s;
    j->start_sent = false;
    j->run_slot = slot;
    j->run_epoch = epoch;
    j->run_manual = manual;
    if (store_job_claim(s->store, j->key, slot, s->node, epoch, on_claim, j) == 0) {
        j->busy = true;
        s->pending++;
    }
}

static void tick_job(sjob_t *j, int64_t now);

static void on_last(void *ud, int rc, const char *err, const store_run_t *runs, size_t n)
{
    sjob_t *j = ud;
    struct scheduler *s = j->s;
    if (answer_arrived(j, &j->busy))
        return;
    if (rc < 0)
        return;
    j->last_ms = n ? runs[0].slot_ms : JOBSPEC_NO_SLOT;
    j->last_known = true;
    svctime_wall_tick(s->clock);
    tick_job(j, svctime_wall_ms(s->clock)); /* a new leader runs what is due now, not a tick later */
}

static void tick_job(sjob_t *j, int64_t now)
{
    struct scheduler *s = j->s;
    int64_t epoch;
    if (j->busy)
        return;
    if (j->unsure) {
        resolve_start(j);
        return;
    }
    if (j->manual_slot) {
        if (!may_run(j, &epoch)) {
            log_warn("jobs", "job %s: JOB.RUN dropped: the lease went before it started",
                     j->spec.name);
            j->manual_slot = 0;
            return;
        }
        claim(j, j->manual_slot, epoch, true);
        return;
    }
    if (!may_run(j, &epoch)) {
        j->last_known = false; /* whoever leads may fire slots meanwhile */
        return;
    }
    if (!j->last_known) {
        if (store_job_last(s->store, j->key, on_last, j) == 0) {
            j->busy = true;
            s->pending++;
        }
        return;
    }
    int64_t due[64];
    int trunc = 0;
    size_t nd = jobspec_due(&j->spec, j->last_ms, now, due, 64, &trunc);
    for (size_t i = 0; i < nd; i++) {
        if (due[i] > j->skip_from && due[i] <= j->skip_to) {
            s->stats.slots_skipped++;
            log_info("jobs", "job %s: slot %lld skipped (overlap = skip)", j->spec.name,
                     (long long)due[i]);
            j->last_ms = due[i];
            continue;
        }
        claim(j, due[i], epoch, false);
        return;
    }
}

static void on_tick(svctime_timer_t *t)
{
    struct scheduler *s = t->data;
    svctime_wall_tick(s->clock);
    int64_t now = svctime_wall_ms(s->clock);
    for (size_t i = 0; i < s->n; i++)
        tick_job(&s->jobs[i], now);
}

static void on_pruned(void *ud, int rc, const char *err, int64_t count)
{
    struct scheduler *s = ud;
    s->pending--;
    if (rc == 0 && count > 0)
        log_info("jobs", "pruned %lld runs older than the retention", (long long)count);
    finish_if_done(s);
}

static void on_prune(svctime_timer_t *t)
{
    struct scheduler *s = t->data;
    if (s->stopping)
        return;
    if (store_job_prune(s->store, svctime_wall_ms(s->clock) - s->retention_ms, on_pruned, s) == 0)
        s->pending++;
}

scheduler_t *scheduler_new(uv_loop_t *loop, store_t *store, lease_mgr_t *leases, const char *node,
                           jobspec_t *specs, size_t n, int64_t retention_ms)
{
    return scheduler_new_clock(loop, store, leases, node, specs, n, retention_ms, NULL);
}

scheduler_t *scheduler_new_clock(uv_loop_t *loop, store_t *store, lease_mgr_t *leases,
                                 const char *node, jobspec_t *specs, size_t n,
                                 int64_t retention_ms, const svctime_ops_t *clock)
{
    struct scheduler *s = xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->clock = clock;
    s->store = store;
    s->leases = leases;
    s->node = xstrdup(node);
    s->retention_ms = retention_ms;
    s->n = n;
    s->jobs = xcalloc(n ? n : 1, sizeof(*s->jobs));
    for (size_t i = 0; i < n; i++) {
        sjob_t *j = &s->jobs[i];
        j->s = s;
        j->spec = specs[i];
        j->last_ms = JOBSPEC_NO_SLOT;
        j->skip_from = j->skip_to = INT64_MIN;
        if (j->spec.where == JOBSPEC_WHERE_EVERY)
            snprintf(j->key, sizeof(j->key), "%s:%s", j->spec.name, node);
        else
            snprintf(j->key, sizeof(j->key), "%s", j->spec.name);
        if (j->spec.where == JOBSPEC_WHERE_LEADER && strcmp(j->spec.lease, "canonical") != 0) {
            char err[128];
            if (lease_acquire(leases, j->spec.lease, 0, err, sizeof(err)) < 0 &&
                !strstr(err, "warm"))
                log_warn("jobs", "job %s: lease %s: %s", j->spec.name, j->spec.lease, err);
        }
        hist_refresh(j);
    }
    free(specs);
    svctime_timer_init(&s->tick, loop, s->clock, on_tick, s);
    svctime_timer_start(&s->tick, SCHEDULER_TICK_MS, SCHEDULER_TICK_MS);
    svctime_timer_init(&s->prune, loop, s->clock, on_prune, s);
    svctime_timer_start(&s->prune, 1000, PRUNE_EVERY_MS);
    return s;
}

static void finish_if_done(struct scheduler *s)
{
    if (!s->stopping || s->pending)
        return;
    for (size_t i = 0; i < s->n; i++) {
        hist_free(&s->jobs[i]);
        jobspec_free(&s->jobs[i].spec);
    }
    free(s->jobs);
    free(s->node);
    void (*done)(void *) = s->done;
    void *ud = s->done_ud;
    free(s);
    if (done)
        done(ud);
}

static void on_closed(svctime_timer_t *t)
{
    struct scheduler *s = t->data;
    s->pending--;
    finish_if_done(s);
}

void scheduler_stop(scheduler_t *s, void (*done)(void *ud), void *ud)
{
    s->done = done;
    s->done_ud = ud;
    for (size_t i = 0; i < s->n; i++) {
        sjob_t *j = &s->jobs[i];
        if (j->run)
            jobrun_cancel(j->run);
        else if (j->unsure && j->start_sent && !j->busy)
            stop_unstart(j); /* a start that may have been made, not spawned */
    }
    s->pending += 2;
    svctime_timer_close(&s->tick, on_closed);
    svctime_timer_close(&s->prune, on_closed);
    s->stopping = true;
}

size_t scheduler_count(const scheduler_t *s)
{
    return s ? s->n : 0;
}

const jobspec_t *scheduler_spec(const scheduler_t *s, size_t i)
{
    return &s->jobs[i].spec;
}

int scheduler_job_info(scheduler_t *s, size_t i, scheduler_job_info_t *info)
{
    sjob_t *j = &s->jobs[i];
    info->last_status = j->last_status;
    info->last_slot_ms = j->last_slot;
    info->next_slot_ms = jobspec_next_slot(&j->spec, svctime_wall_ms(s->clock));
    if (svctime_mono_ms(s->clock) - j->hist_at > HISTORY_MIN_AGE_MS && !j->run)
        hist_refresh(j);
    return 0;
}

static sjob_t *find(scheduler_t *s, const char *name)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (strcmp(s->jobs[i].spec.name, name) == 0)
            return &s->jobs[i];
    return NULL;
}

int scheduler_run_now(scheduler_t *s, const char *name, char *err, size_t errlen)
{
    sjob_t *j = find(s, name);
    if (!j) {
        snprintf(err, errlen, "no such job '%s'", name);
        return -1;
    }
    if (j->manual_slot) {
        snprintf(err, errlen, "job %s already has a run waiting to start", name);
        return -1;
    }
    if (j->spec.where == JOBSPEC_WHERE_LEADER && !lease_held(s->leases, j->spec.lease, NULL)) {
        lease_view_t v;
        if (lease_view(s->leases, j->spec.lease, &v) == 0 && v.holder[0])
            snprintf(err, errlen, "job %s runs on the holder of lease %s, node %s: send it there",
                     name, j->spec.lease, v.holder);
        else
            snprintf(err, errlen, "job %s runs on the holder of lease %s, and nobody holds it now",
                     name, j->spec.lease);
        return -1;
    }
    svctime_wall_tick(s->clock);
    j->manual_slot = svctime_wall_ms(s->clock);
    return 0;
}

long scheduler_history(scheduler_t *s, const char *name, const store_run_t **runs)
{
    sjob_t *j = find(s, name);
    if (!j)
        return -1;
    if (svctime_mono_ms(s->clock) - j->hist_at > HISTORY_MIN_AGE_MS)
        hist_refresh(j);
    static store_run_t view[SCHEDULER_HISTORY];
    for (size_t i = 0; i < j->nhist && i < SCHEDULER_HISTORY; i++)
        view[i] = j->hist[i].run;
    *runs = view;
    return (long)j->nhist;
}

const scheduler_stats_t *scheduler_stats(const scheduler_t *s)
{
    static const scheduler_stats_t none;
    return s ? &s->stats : &none;
}
