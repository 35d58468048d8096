/* scheduler: fires the configured jobs at their slots; see scheduler.h.
 *
 * Owns: one sjob per [job NAME] (its spec, the slot it fired last, the run in
 * progress, a copy of its recent history), the tick timer, the prune timer.
 * Never: frees a job while a store callback or a run for it is pending (the
 * scheduler counts them and frees everything after the last); runs a slot
 * whose claim it did not win. */
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
        snprintf(j->last_status, sizeof(j->last_status), "%s", runs[0].status);
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

static void on_claim(void *ud, int rc, const char *err, bool claimed)
{
    sjob_t *j = ud;
    struct scheduler *s = j->s;
    if (answer_arrived(j, &j->busy))
        return;
    if (rc < 0) {
        log_warn("jobs", "job %s: claiming slot %lld: %s", j->spec.name, (long long)j->run_slot,
                 err ? err : store_strerror(rc));
        return; /* tried again at the next tick */
    }
    if (j->run_manual)
        j->manual_slot = 0;
    else if (j->run_slot > j->last_ms || j->last_ms == JOBSPEC_NO_SLOT)
        j->last_ms = j->run_slot;
    if (!claimed) {
        s->stats.slots_taken++;
        return;
    }
    int64_t epoch;
    j->busy = true;
    if (!j->run_manual && (!may_run(j, &epoch) || epoch != j->run_epoch)) {
        /* The lease went between the claim's sending and its answer. */
        const char *why = "lease lost before the run started";
        log_warn("jobs", "job %s slot %lld: %s", j->spec.name, (long long)j->run_slot, why);
        int64_t now = svctime_wall_ms(s->clock);
        record(j, "error", -1, why, strlen(why), now, now);
        return;
    }
    start_run(j);
}

static void claim(sjob_t *j, int64_t slot, int64_t epoch, bool manual)
{
    struct scheduler *s = j->s;
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
    for (size_t i = 0; i < s->n; i++)
        if (s->jobs[i].run)
            jobrun_cancel(s->jobs[i].run);
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
