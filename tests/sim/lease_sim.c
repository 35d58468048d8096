/* lease_sim: the deterministic simulator of leader leases and job slots.
 *
 * Owns: a simulated world in one process: a database clock (the simulation's
 * real time), N nodes (3 to 5, the last one warm with --warm) each running
 * the REAL lease manager (src/svc/lease.c) and scheduler (src/svc/scheduler.c,
 * jobspec.c, cron.c) with the REAL store front end (src/store/store.c) on a
 * fake store backend (below: in-memory lease rows and slot rows, claimed ->
 * started -> finished, judged by the database clock, as store_sqlite.c's
 * statements judge them),
 * a fake jobrun (runs take simulated time and spawn nothing), and each node's
 * local clock (a rate and an offset) with its timers, injected through
 * svctime.h. Faults drawn from the run's seed:
 *   crash    kill -9 and restart later (statements already sent may still take
 *            effect; answers are lost; nothing is released);
 *   pause    SIGSTOP/SIGCONT: the node's timers, answers and runs wait;
 *   outage   the database is unreachable: operations fail with STORE_EDOWN;
 *   slow     one node's answers take up to 1.5 s;
 *   lost     answers lost after the operation took effect (store.h: every
 *            operation may have taken effect when it failed);
 *   stop     SIGTERM: the daemon's stop sequence (leases released), restart;
 *   step     one node's wall clock is stepped (up to 5 s, within +-3 s of
 *            true time): slots follow it, the monotonic clock does not;
 *   clock    every node's monotonic clock runs at a rate within lease.h's
 *            margin (|1 - rate| <= --rate, default 8%, lease.h covers 10%),
 *            and its wall clock (slots) is offset by up to +-2 s.
 * At the end every fault heals and the cluster runs quietly.
 *
 * Checked after every event (the invariants, as code):
 *   L1 no slot runs twice: a (job key, slot) pair starts at most once in the
 *      whole run (checked when the fake jobrun is asked to start it);
 *   L2 run epochs never go down: a leader job's run never carries an epoch
 *      lower than one a run already carried, and it starts only while its
 *      node acts as holder with that epoch;
 *   L3 a node acts as holder (lease_held() says 1) only while the database's
 *      row names it, with that epoch, unexpired by the database clock: what
 *      lease.h promises ("stops acting as leader before its lease could have
 *      expired anywhere"); so at most one node acts at any instant;
 *   L4 a warm node never holds a lease, in its own view or in the database.
 *   L7 a run starts only for a slot whose row the database shows started by
 *      that node under that epoch (checked when the run starts).
 * Checked at the end of a run:
 *   L5 liveness: after the faults heal, a hot node holds canonical and a
 *      leader job's slot ran again.
 *   L6 (with --exactly-once) every slot of job tick (every 1s, catchup = all)
 *      between its first and its last claimed ran (exactly once, with L1).
 *      Promised with outages or lost answers (not both), clean stops, clock
 *      steps and rates (ctest lease_sim_exactly_once_*). Not promised when
 *      the node that started a slot cannot spawn it and cannot learn or undo
 *      its start before its lease ends: it crashed, or was paused, or its
 *      answers were slow or lost and then the database unreachable, past its
 *      lease. Such a slot is started and never run (nor re-run).
 *   L7 (always) every such slot was started in the database (a slot claimed
 *      and never started, or never claimed, is a violation: the new holder
 *      must take such claims over), and one started but never run was
 *      started under the fence (the lease row named its starter with that
 *      epoch, unexpired) by a starter that then crashed or stopped, or whose
 *      epoch of canonical has ended. The summary line counts them.
 * A violation prints the seed, the time, what was wrong and the recent
 * history, and the run exits 1. The same seed reproduces it.
 *
 * Usage: lease_sim [--seeds N] [--first S] [--seconds T] [--nodes K]
 *                  [--faults LIST] [--rate R] [--warm] [--exactly-once]
 *                  [--mutate RULE] [--verbose]
 *   --faults: crash,pause,outage,slow,lost,stop,step (default: all). --rate R: local
 *   clock rates within 1 +- R (default 0.08); a rate off by more than lease.h's
 *   10% margin breaks L3 (ctest lease_sim_known_failures expects that).
 *   --mutate fence|takeover|last switches one rule of the fake store off
 *   (see MUTATED); ctest lease_sim_mutation_* expects the checks to fail.
 * Never: touches the network or the filesystem, or reads the host's clock. */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobrun.h"
#include "lease.h"
#include "log.h"
#include "mem.h"
#include "scheduler.h"
#include "store_int.h"
#include "svctime.h"

#define MAXN      5
#define TTL_MS    2000
#define WALL_BASE 1800000000000LL /* wall clock of every node at time 0, before its offset */
#define HEAL_MS   12000           /* quiet time at the end */
#define HIST      80              /* history lines kept */

enum { F_CRASH = 1, F_PAUSE = 2, F_OUTAGE = 4, F_SLOW = 8, F_LOST = 16, F_STOP = 32, F_STEP = 64 };
#define NFAULTS 7
#define F_ALL   127
static const char *const fault_names[NFAULTS] = {"crash", "pause", "outage", "slow",
                                                 "lost",  "stop",  "step"};

typedef struct node node_t;

typedef struct stimer { /* a node's timer on the simulated clock */
    struct stimer *next;
    svctime_timer_t *t;
    node_t *n;
    int64_t due;    /* real ms */
    int64_t repeat; /* local ms */
    bool armed, closing;
} stimer_t;

typedef struct pop { /* a store operation on its way */
    struct pop *next;
    store_op_t *op;
    node_t *n;
    int64_t at; /* when it reaches the database, or (applied) when the answer arrives */
    bool applied;
} pop_t;

struct jobrun { /* the fake jobrun's run */
    struct jobrun *next;
    node_t *n;
    jobrun_cb cb;
    void *arg;
    int64_t end;
    bool cancelled;
};

struct node {
    int id;
    char name[16];
    bool warm, up, paused;
    bool stopping; /* a clean stop (SIGTERM) is under way */
    double rate;
    int64_t mono_off, wall_off;
    int64_t slow_until, paused_until, restart_at;
    svctime_ops_t ops;
    uv_loop_t loop;
    store_t *store;
    lease_mgr_t *lm;
    scheduler_t *sch;
    bool tearing;
};

typedef struct lrow {
    char name[72], holder[72];
    int64_t epoch, expires_at;
} lrow_t;

typedef struct crow {
    char job[160], node[72], status[16];
    int64_t slot, epoch, claimed_at;
    bool started;
    bool fenced; /* started while the lease row named its starter and epoch, unexpired */
    bool starter_gone; /* its starter crashed or stopped before it could spawn */
} crow_t;

typedef struct started { /* every run started, for L1 and L2 */
    char key[160];
    int64_t slot, epoch, at;
    bool leader;
} started_t;

static struct {
    /* options */
    const char *mutate; /* --mutate: a rule of the fake store switched off */
    uint64_t seed;
    int nnodes, seconds, faults, warm, verbose, exactly_once;
    double rate;
    /* the world */
    uint64_t rng;
    int64_t now; /* real ms = the database clock */
    node_t nodes[MAXN];
    stimer_t *timers;
    pop_t *pops;
    struct jobrun *runs;
    bool db_down;
    int64_t db_down_until, lost_until;
    lrow_t leases[8];
    size_t nleases;
    crow_t *claims;
    size_t nclaims, capclaims;
    started_t *starts;
    size_t nstarts, capstarts;
    int64_t max_epoch;
    int64_t next_fault;
    uint64_t slots, unrun, unclaimed; /* of job tick (catchup = all), over all seeds */
    uint64_t unstarted, abandoned;    /* ... claimed, never started; recorded abandoned */
    char hist[HIST][200];
    size_t nhist;
} W;

/* --mutate NAME switches one rule of the fake store off, to show a check
 * catches its loss: fence (start ignores the lease), takeover (a claim never
 * takes over a lower epoch), last (catch-up counts claimed-only slots as run). */
#define MUTATED(name) (W.mutate && strcmp(W.mutate, name) == 0)

/* ---- randomness, history, failures ---------------------------------------------- */

static uint64_t rnd(void)
{
    uint64_t x = W.rng; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    W.rng = x;
    return x * 2685821657736338717ULL;
}

static int64_t rnd_in(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    char line[180];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    snprintf(W.hist[W.nhist++ % HIST], sizeof(W.hist[0]), "t=%6lldms %s", (long long)W.now, line);
    if (W.verbose)
        fprintf(stderr, "t=%6lldms %s\n", (long long)W.now, line);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
    char what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    fprintf(stderr, "lease_sim: seed %" PRIu64 ": VIOLATION at t=%lldms: %s\nhistory:\n", W.seed,
            (long long)W.now, what);
    size_t from = W.nhist > HIST ? W.nhist - HIST : 0;
    for (size_t i = from; i < W.nhist; i++)
        fprintf(stderr, "  %s\n", W.hist[i % HIST]);
    char faults[80] = "";
    for (int k = 0; k < NFAULTS; k++)
        if (W.faults & (1 << k))
            snprintf(faults + strlen(faults), sizeof(faults) - strlen(faults), "%s%s",
                     faults[0] ? "," : "", fault_names[k]);
    fprintf(stderr,
            "reproduce: lease_sim --first %" PRIu64 " --seeds 1 --nodes %d --seconds %d "
            "--rate %g --faults '%s'%s%s%s%s --verbose\n",
            W.seed, W.nnodes, W.seconds, W.rate, faults, W.warm ? " --warm" : "",
            W.exactly_once ? " --exactly-once" : "", W.mutate ? " --mutate " : "",
            W.mutate ? W.mutate : "");
    exit(1);
}

/* ---- the nodes' clocks and timers (svctime_ops_t) --------------------------------- */

static int64_t local_ms(const node_t *n)
{
    return (int64_t)floor((double)W.now * n->rate) + n->mono_off;
}

static int64_t ops_mono(void *ud)
{
    return local_ms(ud);
}

/* The wall clock is kept near true time (NTP): an offset, stepped by the
 * step fault; the rate error is the monotonic clock's, which leases use. */
static int64_t ops_wall(void *ud)
{
    const node_t *n = ud;
    return WALL_BASE + W.now + n->wall_off;
}

/* Real ms after which ms local milliseconds of n have passed. */
static int64_t real_after(const node_t *n, int64_t ms)
{
    return W.now + (int64_t)ceil((double)ms / n->rate);
}

static void ops_start(void *ud, svctime_timer_t *t, int64_t ms, int64_t repeat)
{
    stimer_t *st = t->impl;
    if (!st) {
        st = xcalloc(1, sizeof(*st));
        st->t = t;
        st->n = ud;
        st->next = W.timers;
        W.timers = st;
        t->impl = st;
    }
    st->due = real_after(st->n, ms < 1 ? 1 : ms);
    st->repeat = repeat;
    st->armed = true;
}

static void ops_close(void *ud, svctime_timer_t *t)
{
    stimer_t *st = t->impl;
    if (!st) {
        st = xcalloc(1, sizeof(*st));
        st->t = t;
        st->n = ud;
        st->next = W.timers;
        W.timers = st;
        t->impl = st;
    }
    st->armed = false;
    st->closing = true;
}

/* ---- the fake store backend: rows judged by the database clock ---------------------- */

static lrow_t *lease_row(const char *name, bool create)
{
    for (size_t i = 0; i < W.nleases; i++)
        if (strcmp(W.leases[i].name, name) == 0)
            return &W.leases[i];
    if (!create || W.nleases == 8)
        return NULL;
    lrow_t *r = &W.leases[W.nleases++];
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    return r;
}

static void fill_lease(store_op_t *op, const lrow_t *r, bool acquired)
{
    op->lease.acquired = acquired;
    op->lease.holder = r ? store__keep(op, r->holder, strlen(r->holder)) : "";
    op->lease.epoch = r ? r->epoch : 0;
    op->lease.expires_in_ms = r ? r->expires_at - W.now : 0;
}

/* As store_sqlite.c's op_acquire. */
static void db_acquire(store_op_t *op)
{
    lrow_t *r = lease_row(op->name, false);
    if (!r) {
        r = lease_row(op->name, true);
        snprintf(r->holder, sizeof(r->holder), "%s", op->holder);
        r->epoch = 1;
        r->expires_at = W.now + op->a;
    } else if (strcmp(r->holder, op->holder) == 0 && r->expires_at > W.now) {
        r->expires_at = W.now + op->a;
    } else if (r->expires_at <= W.now) {
        r->epoch++;
        snprintf(r->holder, sizeof(r->holder), "%s", op->holder);
        r->expires_at = W.now + op->a;
    }
    fill_lease(op, r, strcmp(r->holder, op->holder) == 0);
    note("db: acquire %s by %s -> holder %s epoch %lld expires %lld", op->name, op->holder,
         r->holder, (long long)r->epoch, (long long)r->expires_at);
}

static crow_t *claim_row(const char *job, int64_t slot)
{
    for (size_t i = 0; i < W.nclaims; i++)
        if (W.claims[i].slot == slot && strcmp(W.claims[i].job, job) == 0)
            return &W.claims[i];
    return NULL;
}

/* As store_sqlite.c's op_claim: insert, or take over a claimed-only row of a
 * lower epoch; claimed when the row is then claimed by (node, epoch). */
static void db_claim(store_op_t *op)
{
    crow_t *c = claim_row(op->name, op->a);
    if (!c) {
        if (W.nclaims == W.capclaims) {
            W.capclaims = W.capclaims ? 2 * W.capclaims : 256;
            W.claims = xrealloc(W.claims, W.capclaims * sizeof(*W.claims));
        }
        c = &W.claims[W.nclaims++];
        memset(c, 0, sizeof(*c));
        snprintf(c->job, sizeof(c->job), "%s", op->name);
        snprintf(c->node, sizeof(c->node), "%s", op->holder);
        c->slot = op->a;
        c->epoch = op->b;
        c->claimed_at = W.now;
        note("db: claim %s slot %lld by %s epoch %lld", op->name, (long long)op->a, op->holder,
             (long long)op->b);
    } else if (!c->started && !c->status[0] && c->epoch < op->b && !MUTATED("takeover")) {
        note("db: claim %s slot %lld by %s epoch %lld takes over from %s epoch %lld", op->name,
             (long long)op->a, op->holder, (long long)op->b, c->node, (long long)c->epoch);
        snprintf(c->node, sizeof(c->node), "%s", op->holder);
        c->epoch = op->b;
        c->claimed_at = W.now;
    }
    op->flag = !c->started && !c->status[0] && strcmp(c->node, op->holder) == 0 &&
               c->epoch == op->b;
}

/* Whether the lease row name names holder with epoch, unexpired now. */
static bool lease_names(const char *name, const char *holder, int64_t epoch)
{
    const lrow_t *r = lease_row(name, false);
    return r && strcmp(r->holder, holder) == 0 && r->epoch == epoch && r->expires_at > W.now;
}

/* As store_sqlite.c's op_start: claimed -> started, fenced by the lease. */
static void db_start(store_op_t *op)
{
    crow_t *c = claim_row(op->name, op->a);
    bool fence = !op->addr || lease_names(op->addr, op->holder, op->b) || MUTATED("fence");
    if (op->kind == OP_JOB_START && c && !c->started && !c->status[0] &&
        strcmp(c->node, op->holder) == 0 && c->epoch == op->b && fence) {
        c->started = true;
        c->fenced = !op->addr || lease_names(op->addr, op->holder, op->b);
        note("db: start %s slot %lld by %s epoch %lld", op->name, (long long)op->a, op->holder,
             (long long)op->b);
    }
    if (op->kind == OP_JOB_UNSTART && c && c->started && !c->status[0] &&
        strcmp(c->node, op->holder) == 0 && c->epoch == op->b &&
        (!op->addr || lease_names(op->addr, op->holder, op->b))) {
        c->started = false;
        c->starter_gone = false;
        note("db: unstart %s slot %lld by %s epoch %lld", op->name, (long long)op->a, op->holder,
             (long long)op->b);
    }
    op->slot.state = !c ? STORE_SLOT_NONE
                     : c->status[0] ? STORE_SLOT_FINISHED
                     : c->started   ? STORE_SLOT_STARTED
                                    : STORE_SLOT_CLAIMED;
    op->slot.node = c ? store__keep(op, c->node, strlen(c->node)) : "";
    op->slot.epoch = c ? c->epoch : 0;
}

static int cmp_slot_desc(const void *a, const void *b)
{
    const store_run_t *x = a, *y = b;
    return x->slot_ms < y->slot_ms ? 1 : x->slot_ms > y->slot_ms ? -1 : 0;
}

static void db_history(store_op_t *op)
{
    size_t n = 0;
    for (size_t i = 0; i < W.nclaims; i++)
        n += strcmp(W.claims[i].job, op->name) == 0;
    op->runs = store__alloc(op, (n ? n : 1) * sizeof(*op->runs));
    for (size_t i = 0; i < W.nclaims; i++) {
        const crow_t *c = &W.claims[i];
        if (strcmp(c->job, op->name) != 0)
            continue;
        if (op->last_only && !c->started && !c->status[0] && !MUTATED("last"))
            continue; /* store_job_last: claimed-only rows do not count as run */
        store_run_t *r = &op->runs[op->n_out++];
        r->started = c->started || c->status[0];
        r->job = store__keep(op, c->job, strlen(c->job));
        r->node = store__keep(op, c->node, strlen(c->node));
        r->status = store__keep(op, c->status, strlen(c->status));
        r->slot_ms = c->slot;
        r->epoch = c->epoch;
        r->output = "";
    }
    qsort(op->runs, op->n_out, sizeof(*op->runs), cmp_slot_desc);
    if (op->n_out > (size_t)op->a)
        op->n_out = (size_t)op->a;
}

static void db_apply(store_op_t *op)
{
    op->reached_db = true;
    lrow_t *r;
    crow_t *c;
    switch (op->kind) {
    case OP_LEASE_ACQUIRE:
        db_acquire(op);
        break;
    case OP_LEASE_GET:
        r = lease_row(op->name, false);
        fill_lease(op, r, false);
        break;
    case OP_LEASE_RELEASE:
        r = lease_row(op->name, false);
        if (r && strcmp(r->holder, op->holder) == 0 && r->expires_at > W.now) {
            r->expires_at = W.now;
            note("db: release %s by %s", op->name, op->holder);
        }
        break;
    case OP_JOB_CLAIM:
        db_claim(op);
        break;
    case OP_JOB_START:
    case OP_JOB_UNSTART:
        db_start(op);
        break;
    case OP_JOB_FINISH:
        c = claim_row(op->name, op->a);
        if (c)
            snprintf(c->status, sizeof(c->status), "%s", op->holder);
        else
            store__fail(op, STORE_ENOENT, "job %s slot %lld was never claimed", op->name,
                        (long long)op->a);
        break;
    case OP_JOB_HISTORY:
        db_history(op);
        break;
    case OP_JOB_PRUNE:
        op->count = 0;
        break; /* retention is far longer than a run */
    default:
        store__fail(op, STORE_EDB, "lease_sim: operation %d not simulated", (int)op->kind);
    }
}

static int64_t answer_delay(const node_t *n)
{
    if (n->slow_until > W.now && rnd() % 2)
        return rnd_in(200, 1500);
    return rnd_in(1, 20);
}

static void *be_start(store_t *s, const store_opts_t *o, const char *url)
{
    (void)o;
    (void)url;
    store__set_state(s, STORE_UP, NULL);
    return uv_loop_get_data(store__loop(s));
}

static void be_submit(void *impl, store_op_t *op)
{
    node_t *n = impl;
    pop_t *p = xcalloc(1, sizeof(*p));
    p->op = op;
    p->n = n;
    if (n->tearing) {
        store__fail(op, STORE_ECANCELED, "lease_sim: the process is gone");
        store__finish(n->store, op);
        free(p);
        return;
    }
    if (W.db_down) {
        store__fail(op, STORE_EDOWN, "lease_sim: database unreachable");
        p->applied = true;
        p->at = W.now;
    } else {
        p->at = W.now + answer_delay(n) / 2;
    }
    p->next = W.pops;
    W.pops = p;
}

/* Finishes every operation of n still on its way with STORE_ECANCELED; each
 * not yet applied first takes effect or not, by the seed (it was sent). */
static void cancel_pops(node_t *n, bool may_apply)
{
    for (pop_t **pp = &W.pops; *pp;) {
        pop_t *p = *pp;
        if (p->n != n) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        if (!p->applied && may_apply && !W.db_down && rnd() % 2)
            db_apply(p->op);
        p->op->rc = 0;
        store__fail(p->op, STORE_ECANCELED, "lease_sim: cancelled");
        store__finish(n->store, p->op);
        free(p);
    }
}

static void be_close(void *impl)
{
    node_t *n = impl;
    cancel_pops(n, false);
    store__backend_closed(n->store);
}

static const store_backend_t sim_backend = {"lease_sim", be_start, be_submit, be_close};

/* ---- the fake jobrun (links instead of src/svc/jobrun.c) -------------------------- */

/* L1 and L2, at the moment a run starts. */
static void check_start(node_t *n, const jobrun_spec_t *spec, bool leader)
{
    char key[160];
    snprintf(key, sizeof(key), "%s%s%s", spec->job, leader ? "" : ":", leader ? "" : n->name);
    for (size_t i = 0; i < W.nstarts; i++)
        if (W.starts[i].slot == spec->slot_ms && strcmp(W.starts[i].key, key) == 0)
            fail("L1: slot %lld of %s runs twice (on %s with epoch %lld; it started at t=%lld "
                 "with epoch %lld)",
                 (long long)spec->slot_ms, key, n->name, (long long)spec->epoch,
                 (long long)W.starts[i].at, (long long)W.starts[i].epoch);
    const crow_t *row = claim_row(key, spec->slot_ms);
    if (!row || !row->started || strcmp(row->node, n->name) != 0 ||
        row->epoch != (int64_t)spec->epoch)
        fail("L7: %s runs slot %lld of %s with epoch %lld, but the database does not say it "
             "started it (row: %s, %s epoch %lld)",
             n->name, (long long)spec->slot_ms, key, (long long)spec->epoch,
             !row ? "none" : row->started ? "started" : "claimed only", row ? row->node : "-",
             row ? (long long)row->epoch : 0);
    if (leader) {
        int64_t held_epoch = 0;
        if ((int64_t)spec->epoch < W.max_epoch)
            fail("L2: %s runs slot %lld of %s with epoch %lld, lower than epoch %lld already used",
                 n->name, (long long)spec->slot_ms, key, (long long)spec->epoch,
                 (long long)W.max_epoch);
        if (!lease_held(n->lm, "canonical", &held_epoch) || held_epoch != (int64_t)spec->epoch)
            fail("L2: %s runs slot %lld of %s with epoch %lld while not acting as holder of it",
                 n->name, (long long)spec->slot_ms, key, (long long)spec->epoch);
        W.max_epoch = (int64_t)spec->epoch;
    }
    if (W.nstarts == W.capstarts) {
        W.capstarts = W.capstarts ? 2 * W.capstarts : 256;
        W.starts = xrealloc(W.starts, W.capstarts * sizeof(*W.starts));
    }
    started_t *s = &W.starts[W.nstarts++];
    snprintf(s->key, sizeof(s->key), "%s", key);
    s->slot = spec->slot_ms;
    s->epoch = (int64_t)spec->epoch;
    s->at = W.now;
    s->leader = leader;
}

int jobrun_start(uv_loop_t *loop, const jobrun_spec_t *spec, jobrun_cb cb, void *arg,
                 jobrun_t **out, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    node_t *n = uv_loop_get_data(loop);
    bool leader = strcmp(spec->job, "local") != 0;
    note("%s: run %s slot %lld epoch %llu", n->name, spec->job, (long long)spec->slot_ms,
         (unsigned long long)spec->epoch);
    check_start(n, spec, leader);
    jobrun_t *r = xcalloc(1, sizeof(*r));
    r->n = n;
    r->cb = cb;
    r->arg = arg;
    r->end = W.now + rnd_in(5, 900);
    r->next = W.runs;
    W.runs = r;
    *out = r;
    return 0;
}

void jobrun_cancel(jobrun_t *run)
{
    run->cancelled = true;
    run->end = W.now;
}

const char *jobrun_status_name(int status)
{
    static const char *const names[] = {"ok", "failed", "timeout", "error"};
    return status >= 0 && status <= 3 ? names[status] : "error";
}

int jobrun_check_url(const char *url, char *err, size_t errlen)
{
    (void)url;
    snprintf(err, errlen, "lease_sim: no URLs");
    return -1;
}

static void end_run(jobrun_t *r)
{
    log_set_name(r->n->name);
    jobrun_result_t res;
    memset(&res, 0, sizeof(res));
    res.status = r->cancelled ? JOBRUN_ERROR : JOBRUN_OK;
    res.output = "";
    r->cb(&res, r->arg);
    free(r);
}

/* ---- nodes: start, crash ----------------------------------------------------------- */

static jobspec_t *make_jobs(size_t *n)
{
    static const char *const jobs[][4] = {
        {"tick", "1s", "all", "queue"},
        {"sweep", "1500ms", "latest", "skip"},
        {"local", "1s", "none", "skip"},
    };
    jobspec_t *specs = xcalloc(3, sizeof(*specs));
    char err[256];
    for (size_t i = 0; i < 3; i++) {
        int rc = jobspec_init(&specs[i], jobs[i][0], err, sizeof(err));
        rc |= jobspec_set(&specs[i], "every", jobs[i][1], err, sizeof(err));
        rc |= jobspec_set(&specs[i], "catchup", jobs[i][2], err, sizeof(err));
        rc |= jobspec_set(&specs[i], "overlap", jobs[i][3], err, sizeof(err));
        rc |= jobspec_set(&specs[i], "command", "true", err, sizeof(err));
        if (i == 2)
            rc |= jobspec_set(&specs[i], "where", "every", err, sizeof(err));
        rc |= jobspec_check(&specs[i], err, sizeof(err));
        if (rc) {
            fprintf(stderr, "lease_sim: job spec: %s\n", err);
            exit(2);
        }
    }
    *n = 3;
    return specs;
}

static void node_start(node_t *n)
{
    char err[256];
    uv_loop_init(&n->loop);
    uv_loop_set_data(&n->loop, n);
    n->tearing = false;
    store_opts_t o = {.url = "test:lease_sim", .node_name = n->name};
    if (store_open(&n->loop, &o, &n->store, err, sizeof(err)) != 0) {
        fprintf(stderr, "lease_sim: store_open: %s\n", err);
        exit(2);
    }
    n->lm = lease_mgr_new_clock(&n->loop, n->store, n->name, TTL_MS, n->warm, &n->ops);
    size_t nj;
    jobspec_t *specs = make_jobs(&nj);
    n->sch = scheduler_new_clock(&n->loop, n->store, n->lm, n->name, specs, nj,
                                 30LL * 24 * 3600 * 1000, &n->ops);
    n->up = true;
    n->paused = false;
    note("%s: started%s (rate %.3f, wall offset %lldms)", n->name, n->warm ? " warm" : "", n->rate,
         (long long)n->wall_off);
}

static void set_flag(void *ud)
{
    *(bool *)ud = true;
}

/* Runs n's closing timers, cancelled runs and loop until *flag. */
static void pump_until(node_t *n, bool *flag)
{
    for (int guard = 0; !*flag; guard++) {
        if (guard > 100000)
            fail("%s: teardown does not finish", n->name);
        uv_run(&n->loop, UV_RUN_NOWAIT);
        for (stimer_t **pp = &W.timers; *pp;) {
            stimer_t *st = *pp;
            if (st->n == n && st->closing) {
                *pp = st->next;
                st->t->closed(st->t);
                free(st);
            } else {
                pp = &st->next;
            }
        }
        for (jobrun_t **pp = &W.runs; *pp;) {
            jobrun_t *r = *pp;
            if (r->n == n && r->cancelled) {
                *pp = r->next;
                end_run(r);
            } else {
                pp = &r->next;
            }
        }
    }
}

/* kill -9: what was sent may still take effect; nothing else reaches the
 * database; the node's memory is freed through the real stop paths with
 * every store operation failing (so nothing is released). */
static bool spawned(const char *key, int64_t slot)
{
    for (size_t i = 0; i < W.nstarts; i++)
        if (W.starts[i].slot == slot && strcmp(W.starts[i].key, key) == 0)
            return true;
    return false;
}

/* n is going away (crash, stop): the slots it started and did not spawn
 * will never run (L7 allows that). */
static void mark_gone(node_t *n)
{
    for (size_t i = 0; i < W.nclaims; i++) {
        crow_t *c = &W.claims[i];
        if (c->started && !c->starter_gone && strcmp(c->node, n->name) == 0 &&
            !spawned(c->job, c->slot))
            c->starter_gone = true;
    }
}

static void node_crash(node_t *n)
{
    note("%s: crashed", n->name);
    cancel_pops(n, true);
    mark_gone(n);
    n->tearing = true;
    bool a = false, b = false, c = false;
    scheduler_stop(n->sch, set_flag, &a);
    pump_until(n, &a);
    lease_mgr_stop(n->lm, set_flag, &b);
    pump_until(n, &b);
    store_close(n->store, set_flag, &c);
    pump_until(n, &c);
    while (uv_run(&n->loop, UV_RUN_NOWAIT))
        ;
    uv_loop_close(&n->loop);
    for (stimer_t *st = W.timers; st; st = st->next)
        if (st->n == n)
            fail("%s: a timer outlived its node", n->name);
    n->sch = NULL;
    n->lm = NULL;
    n->store = NULL;
    n->up = false;
    n->paused = false;
}

/* SIGTERM: the daemon's order (node_store.c): scheduler, leases (released
 * in the store), store; every step on the simulated clock like any other. */
static void stop_store_done(void *ud)
{
    node_t *n = ud;
    n->store = NULL; /* the loop is closed after this turn (settle_stops) */
}

static void stop_leases_done(void *ud)
{
    node_t *n = ud;
    n->lm = NULL;
    store_close(n->store, stop_store_done, n);
}

static void stop_sched_done(void *ud)
{
    node_t *n = ud;
    n->sch = NULL;
    lease_mgr_stop(n->lm, stop_leases_done, n);
}

static void node_stop(node_t *n)
{
    note("%s: stopping (SIGTERM)", n->name);
    mark_gone(n); /* and below: what it starts while stopping, it never spawns */
    n->stopping = true;
    scheduler_stop(n->sch, stop_sched_done, n);
}

/* Delivers what stopping nodes' loops hold; a node whose store closed is down. */
static void settle_stops(void)
{
    for (int i = 0; i < W.nnodes; i++) {
        node_t *n = &W.nodes[i];
        if (!n->stopping)
            continue;
        uv_run(&n->loop, UV_RUN_NOWAIT);
        if (n->store)
            continue;
        while (uv_run(&n->loop, UV_RUN_NOWAIT))
            ;
        uv_loop_close(&n->loop);
        n->stopping = false;
        n->up = false;
        mark_gone(n);
        note("%s: stopped", n->name);
    }
}

/* ---- invariants after every event --------------------------------------------------- */

static void check_all(void)
{
    const lrow_t *r = lease_row("canonical", false);
    for (int i = 0; i < W.nnodes; i++) {
        node_t *n = &W.nodes[i];
        if (r && n->warm && strcmp(r->holder, n->name) == 0)
            fail("L4: warm node %s holds canonical in the database", n->name);
        if (!n->up || !n->lm)
            continue;
        int64_t ep = 0;
        if (!lease_held(n->lm, "canonical", &ep))
            continue;
        if (n->warm)
            fail("L4: warm node %s acts as holder of canonical", n->name);
        if (!r || strcmp(r->holder, n->name) != 0 || r->expires_at <= W.now || r->epoch != ep)
            fail("L3: %s acts as holder of canonical with epoch %lld, but the database says "
                 "holder %s epoch %lld expires at %lld",
                 n->name, (long long)ep, r ? r->holder : "(none)", r ? (long long)r->epoch : 0,
                 r ? (long long)r->expires_at : 0);
    }
}

/* ---- faults ------------------------------------------------------------------------ */

static int64_t fault_end(void)
{
    return (int64_t)W.seconds * 1000 - HEAL_MS;
}

static void inject_fault(void)
{
    int kinds[NFAULTS], nk = 0;
    for (int k = 0; k < NFAULTS; k++)
        if (W.faults & (1 << k))
            kinds[nk++] = 1 << k;
    if (nk == 0)
        return;
    int kind = kinds[rnd() % (uint64_t)nk];
    node_t *n = &W.nodes[rnd() % (uint64_t)W.nnodes];
    int64_t len = rnd_in(200, 5000), end = W.now + len;
    if (end > fault_end())
        end = fault_end();
    switch (kind) {
    case F_CRASH:
        if (n->up && !n->paused && !n->stopping) {
            node_crash(n);
            n->restart_at = end;
        }
        break;
    case F_PAUSE:
        if (n->up && !n->paused && !n->stopping) {
            n->paused = true;
            n->paused_until = end;
            note("%s: paused until %lld", n->name, (long long)end);
        }
        break;
    case F_OUTAGE:
        if (!W.db_down) {
            W.db_down = true;
            W.db_down_until = end;
            note("db: down until %lld", (long long)end);
        }
        break;
    case F_SLOW:
        n->slow_until = end;
        note("%s: slow answers until %lld", n->name, (long long)end);
        break;
    case F_LOST:
        W.lost_until = end;
        note("db: answers lost at random until %lld", (long long)end);
        break;
    case F_STOP:
        if (n->up && !n->paused && !n->stopping) {
            node_stop(n);
            n->restart_at = end;
        }
        break;
    case F_STEP: /* the wall clock is stepped; the monotonic clock is not */
        n->wall_off += rnd_in(-5000, 5000);
        n->wall_off = n->wall_off > 3000 ? 3000 : n->wall_off < -3000 ? -3000 : n->wall_off;
        note("%s: wall clock stepped to offset %lldms", n->name, (long long)n->wall_off);
        break;
    }
}

/* ---- the event loop ------------------------------------------------------------------ */

enum ev { EV_NONE, EV_TIMER, EV_POP, EV_RUN, EV_FAULT, EV_HEAL };

/* The earliest event at or after now: its kind, time and item. */
static enum ev next_event(int64_t *at, void **item)
{
    enum ev kind = EV_NONE;
    int64_t best = INT64_MAX;
#define TAKE(t, k, it)                                                                             \
    do {                                                                                           \
        if ((t) < best) {                                                                          \
            best = (t);                                                                            \
            kind = (k);                                                                            \
            *item = (it);                                                                          \
        }                                                                                          \
    } while (0)
    for (stimer_t *st = W.timers; st; st = st->next) {
        if (st->closing)
            TAKE(W.now, EV_TIMER, st);
        else if (st->armed && !st->n->paused)
            TAKE(st->due, EV_TIMER, st);
    }
    for (pop_t *p = W.pops; p; p = p->next)
        if (!p->applied || !p->n->paused)
            TAKE(p->at, EV_POP, p);
    for (jobrun_t *r = W.runs; r; r = r->next)
        if (!r->n->paused)
            TAKE(r->end, EV_RUN, r);
    TAKE(W.next_fault, EV_FAULT, NULL);
    for (int i = 0; i < W.nnodes; i++) {
        node_t *n = &W.nodes[i];
        if (n->paused)
            TAKE(n->paused_until, EV_HEAL, n);
        if (!n->up)
            TAKE(n->restart_at, EV_HEAL, n);
    }
    if (W.db_down)
        TAKE(W.db_down_until, EV_HEAL, NULL);
#undef TAKE
    *at = best < W.now ? W.now : best;
    return kind;
}

static void fire_timer(stimer_t *st)
{
    log_set_name(st->n->name);
    if (st->closing) {
        for (stimer_t **pp = &W.timers; *pp; pp = &(*pp)->next)
            if (*pp == st) {
                *pp = st->next;
                break;
            }
        st->t->closed(st->t);
        free(st);
        return;
    }
    if (st->repeat > 0)
        st->due = real_after(st->n, st->repeat);
    else
        st->armed = false;
    st->t->cb(st->t);
}

static void remove_pop(pop_t *p)
{
    for (pop_t **pp = &W.pops; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            return;
        }
}

static void step_pop(pop_t *p)
{
    node_t *n = p->n;
    if (!p->applied) {
        p->applied = true;
        if (W.db_down) {
            store__fail(p->op, STORE_EDOWN, "lease_sim: database unreachable");
        } else {
            db_apply(p->op);
            if (W.lost_until > W.now && rnd() % 3 == 0) {
                note("%s: answer to operation %d lost", n->name, (int)p->op->kind);
                store__fail(p->op, STORE_ETIMEDOUT, "lease_sim: answer lost");
            }
        }
        p->at = W.now + answer_delay(n) / 2 + 1;
        return;
    }
    remove_pop(p);
    log_set_name(n->name);
    store__finish(n->store, p->op);
    free(p);
    uv_run(&n->loop, UV_RUN_NOWAIT);
}

static void heal(void *item)
{
    node_t *n = item;
    if (!n) {
        W.db_down = false;
        note("db: up");
    } else if (n->paused && n->paused_until <= W.now) {
        n->paused = false;
        note("%s: resumed", n->name);
    } else if (!n->up && n->restart_at <= W.now) {
        node_start(n);
    }
}

static void step(void)
{
    void *item = NULL;
    int64_t at;
    enum ev kind = next_event(&at, &item);
    W.now = at;
    switch (kind) {
    case EV_TIMER:
        fire_timer(item);
        break;
    case EV_POP:
        step_pop(item);
        break;
    case EV_RUN:
        for (jobrun_t **pp = &W.runs; *pp; pp = &(*pp)->next)
            if (*pp == item) {
                *pp = ((jobrun_t *)item)->next;
                break;
            }
        end_run(item);
        break;
    case EV_FAULT:
        inject_fault();
        W.next_fault = W.now + rnd_in(300, 2500);
        if (W.next_fault >= fault_end())
            W.next_fault = INT64_MAX;
        break;
    case EV_HEAL:
        heal(item);
        break;
    case EV_NONE:
        fail("nothing left to happen");
    }
    settle_stops();
    check_all();
}

/* Counts job tick's slots from its first claimed to its last, and checks
 * L6 (--exactly-once: every one ran) and L7 (always: every one was started
 * in the database, and one started but never run was started under the
 * fence and lost its starter: the starter crashed or stopped, or its epoch
 * of canonical ended, before it could spawn it). */
static void count_slots(void)
{
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < W.nclaims; i++) /* the last 2 s may still be running */
        if (strcmp(W.claims[i].job, "tick") == 0 && W.claims[i].claimed_at < W.now - 2000) {
            lo = W.claims[i].slot < lo ? W.claims[i].slot : lo;
            hi = W.claims[i].slot > hi ? W.claims[i].slot : hi;
        }
    for (int64_t slot = lo; lo != INT64_MAX && slot <= hi; slot += 1000) {
        bool ran = spawned("tick", slot);
        const crow_t *c = claim_row("tick", slot);
        W.slots++;
        W.unrun += c && !ran;
        W.unclaimed += !c;
        W.unstarted += c && !c->started;
        W.abandoned += c && strcmp(c->status, "abandoned") == 0;
        if (ran)
            continue;
        if (W.exactly_once)
            fail("L6: slot %lld of tick (catchup = all) %s", (long long)slot,
                 !c ? "was never claimed" : c->started ? "was started but never ran"
                                                        : "was claimed but never started");
        if (!c || !c->started)
            fail("L7: slot %lld of tick (catchup = all) %s", (long long)slot,
                 c ? "was claimed but never started" : "was never claimed");
        if (!c->fenced)
            fail("L7: slot %lld of tick was started by %s epoch %lld while the lease did not "
                 "name it, and never ran",
                 (long long)slot, c->node, (long long)c->epoch);
        if (!c->starter_gone && lease_names("canonical", c->node, c->epoch))
            fail("L7: slot %lld of tick was started by %s epoch %lld, which still lives and "
                 "holds that epoch, and never ran",
                 (long long)slot, c->node, (long long)c->epoch);
    }
}

/* ---- one run ------------------------------------------------------------------------- */

static void run_seed(uint64_t seed)
{
    memset(&W.nodes, 0, sizeof(W.nodes));
    W.seed = seed;
    W.rng = seed * 0x9E3779B97F4A7C15ULL + 1;
    W.now = 0;
    W.db_down = false;
    W.db_down_until = W.lost_until = 0;
    W.nleases = W.nclaims = W.nstarts = W.nhist = 0;
    W.max_epoch = 0;
    W.next_fault = W.faults ? 1000 : INT64_MAX;
    for (int i = 0; i < W.nnodes; i++) {
        node_t *n = &W.nodes[i];
        n->id = i;
        snprintf(n->name, sizeof(n->name), "www%d", i + 1);
        n->warm = W.warm && i == W.nnodes - 1;
        n->rate = 1.0 + W.rate * ((double)rnd_in(-1000, 1000) / 1000.0);
        n->mono_off = rnd_in(0, 1000000);
        n->wall_off = rnd_in(-2000, 2000);
        n->ops = (svctime_ops_t){ops_mono, ops_wall, ops_start, ops_close, n};
        node_start(n);
    }
    int64_t end = (int64_t)W.seconds * 1000;
    bool stopping = true;
    while (W.now < end || stopping) {
        step();
        stopping = false;
        for (int i = 0; i < W.nnodes; i++)
            stopping |= W.nodes[i].stopping;
    }
    /* L5: after the faults healed, a hot node leads and leader slots run. */
    int leaders = 0;
    for (int i = 0; i < W.nnodes; i++)
        leaders += W.nodes[i].up && lease_held(W.nodes[i].lm, "canonical", NULL);
    if (leaders != 1)
        fail("L5: %d nodes hold canonical after %d ms without faults", leaders, HEAL_MS);
    bool ran = false;
    for (size_t i = 0; i < W.nstarts; i++)
        ran |= W.starts[i].leader && W.starts[i].at >= end - 3000;
    if (!ran)
        fail("L5: no leader job ran in the last 3 s of %d ms without faults", HEAL_MS);
    count_slots();
    for (int i = 0; i < W.nnodes; i++)
        if (W.nodes[i].up)
            node_crash(&W.nodes[i]);
    while (W.pops) {
        pop_t *p = W.pops;
        W.pops = p->next;
        free(p);
    }
    while (W.runs) {
        jobrun_t *r = W.runs;
        W.runs = r->next;
        free(r);
    }
}

static int parse_faults(const char *s)
{
    int mask = 0;
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int k = 0;
        while (k < NFAULTS && strcmp(tok, fault_names[k]) != 0)
            k++;
        if (k == NFAULTS) {
            fprintf(stderr,
                    "lease_sim: unknown fault %s (crash,pause,outage,slow,lost,stop,step)\n", tok);
            exit(2);
        }
        mask |= 1 << k;
    }
    return mask;
}

int main(int argc, char **argv)
{
    uint64_t first = 1, seeds = 100;
    W.nnodes = 4;
    W.seconds = 30;
    W.faults = F_ALL;
    W.rate = 0.08;
    static const struct option opts[] = {
        {"seeds", required_argument, NULL, 's'},   {"first", required_argument, NULL, 'f'},
        {"seconds", required_argument, NULL, 't'}, {"nodes", required_argument, NULL, 'n'},
        {"faults", required_argument, NULL, 'F'},  {"rate", required_argument, NULL, 'r'},
        {"warm", no_argument, NULL, 'w'},          {"verbose", no_argument, NULL, 'v'},
        {"exactly-once", no_argument, NULL, 'x'},  {"mutate", required_argument, NULL, 'm'},
        {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            seeds = strtoull(optarg, NULL, 10);
            break;
        case 'f':
            first = strtoull(optarg, NULL, 10);
            break;
        case 't':
            W.seconds = atoi(optarg);
            break;
        case 'n':
            W.nnodes = atoi(optarg);
            break;
        case 'F':
            W.faults = parse_faults(optarg);
            break;
        case 'r':
            W.rate = atof(optarg);
            break;
        case 'w':
            W.warm = 1;
            break;
        case 'v':
            W.verbose = 1;
            break;
        case 'x':
            W.exactly_once = 1;
            break;
        case 'm':
            W.mutate = optarg;
            break;
        default:
            fprintf(stderr, "usage: lease_sim [--seeds N] [--first S] [--seconds T] [--nodes K] "
                            "[--faults LIST] [--rate R] [--warm] [--exactly-once] [--mutate RULE] "
                            "[--verbose]\n");
            return 2;
        }
    }
    if (W.nnodes < 3 || W.nnodes > MAXN || W.seconds * 1000 < HEAL_MS + 2000 || W.rate < 0 ||
        W.rate >= 0.5) {
        fprintf(stderr, "lease_sim: --nodes 3..5, --seconds >= %d, --rate 0..0.5\n",
                HEAL_MS / 1000 + 2);
        return 2;
    }
    log_open("lease_sim", NULL, W.verbose ? LOG_INFO : LOG_ERROR + 1);
    store__test_backend = &sim_backend;
    for (uint64_t s = first; s < first + seeds; s++)
        run_seed(s);
    free(W.claims);
    free(W.starts);
    printf("lease_sim: %" PRIu64 " seeds passed (%d nodes%s, %d s each); job tick (catchup = "
           "all): %" PRIu64 " slots, %" PRIu64 " started but not run (%" PRIu64
           " recorded abandoned), %" PRIu64 " claimed but never started, %" PRIu64
           " never claimed\n",
           seeds, W.nnodes, W.warm ? ", one warm" : "", W.seconds, W.slots, W.unrun - W.unstarted,
           W.abandoned, W.unstarted, W.unclaimed);
    return 0;
}
