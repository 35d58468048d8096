/* sim_store: the simulator's fake shared store, for membership decided by
 * the store (sim --store).
 *
 * Owns: a table of member rows (name = node index, incarnation, expires_at,
 * left) judged by the simulator's clock as the database's clock, each
 * node's session lock (held from its start until its process ends, or
 * until its store session drops in an outage, as a PostgreSQL session lock
 * does), each node's renewal loop as src/node/node_store.c runs it (one
 * round trip renews the row and reads every row; every member_lease/3, and
 * every 500 ms while some member is neither alive nor dead or after a
 * failure), and the store's faults: outages (for one node or for all, the
 * answers fail; the node's session, and with it its lock, drops) and slow
 * answers (up to a whole member_lease).
 * Never: reads the real clock or draws a random number from anywhere but
 * the run's seed; decides anything itself: the cluster code decides, fed
 * with cluster_member_rows and cluster_own_row as the node layer feeds it.
 *
 * A renewal sent at t reaches the database at t + d1 (where the row's
 * expiry is set from the database's clock) and its answer comes back at
 * t + d1 + d2; a paused node handles the answer when it resumes, a node
 * whose process ended never does. SIM_STORE_DEBUG=1 in the environment
 * prints every answer as it is handled (with --verbose, for one seed). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define ROWS_LOOK_MS    500
#define MEMBER_LEASE_MS 1000
#define MAX_ANSWERS     64 /* at most one renewal in flight per node process */

typedef struct row {
    int exists;
    uint64_t incarnation;
    int64_t expires_at;
    int left;
} row_t;

typedef struct snode {
    uint64_t gen; /* process generation: answers for an older one are dropped */
    int running;  /* its process runs (paused or not) */
    int lock;     /* it holds its session lock */
    int inflight;
    int failed;   /* the last renewal failed */
    int64_t sent; /* cluster clock of the pending / last renewal */
    uint64_t incarnation;
    int64_t down_until; /* its store session is down until */
} snode_t;

/* An answer on its way back to a node. */
typedef struct answer {
    int used;
    int node;
    uint64_t gen;
    int ok;
    int64_t sent;
    int n;
    row_t rows[SIM_MAX_NODES];
    int lock_held[SIM_MAX_NODES];
    int64_t db_now;
} answer_t;

static struct {
    int on;
    int nnodes;
    row_t rows[SIM_MAX_NODES];
    snode_t nodes[SIM_MAX_NODES];
    int64_t all_down_until;
    int64_t slow_until;
    int slow_max;
    answer_t answers[MAX_ANSWERS]; /* in flight; all free again at a new run */
} S;
static uint64_t renewals, failures; /* over every run */

static answer_t *answer_new(void)
{
    for (int i = 0; i < MAX_ANSWERS; i++) {
        if (!S.answers[i].used) {
            memset(&S.answers[i], 0, sizeof(S.answers[i]));
            S.answers[i].used = 1;
            return &S.answers[i];
        }
    }
    fprintf(stderr, "sim: more than %d store answers in flight\n", MAX_ANSWERS);
    exit(1);
}

static void answer_free(answer_t *a)
{
    a->used = 0;
}

static int rnd(int n)
{
    return n > 0 ? (int)(sim_rand() % (uint64_t)n) : 0;
}

static int64_t id_of(int i, uint64_t gen)
{
    return (int64_t)(gen * SIM_MAX_NODES + (uint64_t)i);
}

static int hop(void)
{
    int d = 1 + rnd(5);
    if (sim_now() < S.slow_until)
        d += rnd(S.slow_max);
    return d;
}

static int down(int i)
{
    return sim_now() < S.all_down_until || sim_now() < S.nodes[i].down_until;
}

static int settled(cluster_t *cl)
{
    return cluster_members_settled(cl);
}

static void on_look(void *arg, int64_t id);

static void schedule_look(int i)
{
    sim_at(sim_now() + ROWS_LOOK_MS, on_look, NULL, id_of(i, S.nodes[i].gen));
}

/* The answer reaches node a->node: hand it to the cluster as node_store.c. */
static void deliver(answer_t *a)
{
    snode_t *sn = &S.nodes[a->node];
    cluster_t *cl = sim_cluster(a->node);
    sn->inflight = 0;
    if (!a->ok) {
        sn->failed = 1;
        failures++;
        return;
    }
    sn->failed = 0;
    renewals++;
    cluster_row_t cr[SIM_MAX_NODES];
    char names[SIM_MAX_NODES][16], addrs[SIM_MAX_NODES][32];
    size_t k = 0;
    for (int j = 0; j < a->n; j++) {
        const row_t *r = &a->rows[j];
        if (!r->exists)
            continue;
        int expired = r->expires_at <= a->db_now;
        if (j == a->node) {
            if (r->incarnation == sn->incarnation && !r->left && !expired && a->lock_held[j])
                cluster_own_row(cl, a->sent, MEMBER_LEASE_MS);
            continue;
        }
        snprintf(names[j], sizeof(names[j]), "n%d", j);
        snprintf(addrs[j], sizeof(addrs[j]), "127.0.0.1:%d", 7000 + j);
        const char *why = r->left            ? "it left cleanly"
                          : expired          ? "its row expired"
                          : !a->lock_held[j] ? "its session lock is free"
                                             : NULL;
        cr[k++] = (cluster_row_t){names[j],           addrs[j],         r->incarnation,
                                  r->left || expired, !a->lock_held[j], why};
    }
    cluster_member_rows(cl, a->sent, cr, k);
}

static void on_answer(void *arg, int64_t id)
{
    answer_t *a = arg;
    (void)id;
    snode_t *sn = &S.nodes[a->node];
    if (a->gen != sn->gen || !sn->running || !sim_cluster(a->node)) {
        answer_free(a); /* its process ended */
        return;
    }
    if (sim_paused(a->node)) { /* handled once it runs again */
        sim_at(sim_now() + 10, on_answer, a, 0);
        return;
    }
    sim_log_as(a->node);
    if (getenv("SIM_STORE_DEBUG"))
        fprintf(stderr, "[%lld] store answer to n%d: %s\n", (long long)sim_now(), a->node,
                a->ok ? "ok" : "failed");
    deliver(a);
    answer_free(a);
}

/* The renewal reaches the database. */
static void on_db(void *arg, int64_t id)
{
    answer_t *a = arg;
    (void)id;
    int i = a->node;
    snode_t *sn = &S.nodes[i];
    if (down(i)) {
        a->ok = 0;
    } else {
        int64_t now = sim_now(); /* the database's clock */
        row_t *r = &S.rows[i];
        if (!r->exists || sn->incarnation >= r->incarnation) {
            *r = (row_t){1, sn->incarnation, now + MEMBER_LEASE_MS, 0};
        }
        if (sn->running && a->gen == sn->gen && !sn->lock)
            sn->lock = 1; /* the session is back: it takes its lock again */
        a->ok = 1;
        a->db_now = now;
        a->n = S.nnodes;
        memcpy(a->rows, S.rows, sizeof(S.rows));
        for (int j = 0; j < S.nnodes; j++)
            a->lock_held[j] = S.nodes[j].running && S.nodes[j].lock;
    }
    sim_at(sim_now() + hop(), on_answer, a, 0);
}

static void on_look(void *arg, int64_t id)
{
    (void)arg;
    int i = (int)(id % SIM_MAX_NODES);
    uint64_t gen = (uint64_t)id / SIM_MAX_NODES;
    snode_t *sn = &S.nodes[i];
    cluster_t *cl = sim_cluster(i);
    if (gen != sn->gen || !sn->running || !cl)
        return;
    if (!sim_paused(i) && !sn->inflight) {
        int64_t now = cluster_now(cl);
        int due =
            sn->sent == 0 || sn->failed || !settled(cl) || now - sn->sent >= MEMBER_LEASE_MS / 3;
        if (due) {
            sn->sent = now;
            sn->inflight = 1;
            answer_t *a = answer_new();
            a->node = i;
            a->gen = gen;
            a->sent = now;
            if (down(i) && rnd(2)) /* refused at once, or lost on the way */
                sim_at(sim_now() + 1, on_answer, a, 0);
            else
                sim_at(sim_now() + hop(), on_db, a, 0);
        }
    }
    schedule_look(i);
}

void sim_store_init(int on)
{
    S.on = on;
}

int sim_store_on(void)
{
    return S.on;
}

void sim_store_reset(int nnodes)
{
    int on = S.on;
    memset(&S, 0, sizeof(S));
    S.on = on;
    S.nnodes = nnodes;
}

void sim_store_started(int i)
{
    if (!S.on)
        return;
    cluster_t *cl = sim_cluster(i);
    snode_t *sn = &S.nodes[i];
    sn->gen++;
    sn->running = 1;
    sn->lock = 1; /* taken when its store opens */
    sn->inflight = 0;
    sn->failed = 0;
    sn->sent = 0;
    sn->incarnation = (uint64_t)sim_now() * 16 + sn->gen % 16; /* grows with every start */
    cluster_set_arbiter(cl);
    sim_at(sim_now(), on_look, NULL, id_of(i, sn->gen));
}

void sim_store_crashed(int i)
{
    if (!S.on)
        return;
    S.nodes[i].running = 0; /* the kernel drops its lock; the row stays */
    S.nodes[i].lock = 0;
}

void sim_store_stopped(int i)
{
    if (!S.on)
        return;
    snode_t *sn = &S.nodes[i];
    sn->running = 0;
    sn->lock = 0;
    row_t *r = &S.rows[i];
    /* node_store.c marks the row left after the cluster stopped (unless
     * its store is down: then the row expires by itself). */
    if (!down(i) && r->exists && r->incarnation == sn->incarnation) {
        r->left = 1;
        if (r->expires_at > sim_now())
            r->expires_at = sim_now();
    }
}

/* Node id's store session dropped a moment ago: it notices (the daemon:
 * STORE_EV_DOWN on PostgreSQL) and stops serving until its row is renewed. */
static void on_session_lost(void *arg, int64_t id)
{
    (void)arg;
    int i = (int)(id % SIM_MAX_NODES);
    snode_t *sn = &S.nodes[i];
    if ((uint64_t)id / SIM_MAX_NODES != sn->gen || !sn->running || !sim_cluster(i))
        return;
    if (sim_paused(i)) {
        sim_at(sim_now() + 10, on_session_lost, NULL, id);
        return;
    }
    sim_log_as(i);
    cluster_own_row_lost(sim_cluster(i));
}

static void drop_session(int i)
{
    snode_t *sn = &S.nodes[i];
    sn->lock = 0;
    if (sn->running)
        sim_at(sim_now() + 1 + rnd(20), on_session_lost, NULL, id_of(i, sn->gen));
}

int sim_store_fault(void)
{
    if (!S.on)
        return 0;
    int what = rnd(3);
    int ms = 100 + rnd(3 * MEMBER_LEASE_MS);
    if (what == 0) {
        int i = rnd(S.nnodes);
        S.nodes[i].down_until = sim_now() + ms;
        drop_session(i); /* its session dropped, and its lock with it */
        return 1;
    }
    if (what == 1) {
        S.all_down_until = sim_now() + ms;
        for (int i = 0; i < S.nnodes; i++)
            drop_session(i);
        return 1;
    }
    S.slow_until = sim_now() + ms;
    S.slow_max = 1 + rnd(MEMBER_LEASE_MS);
    return 1;
}

void sim_store_quiet(void)
{
    S.all_down_until = 0;
    S.slow_until = 0;
    for (int i = 0; i < S.nnodes; i++)
        S.nodes[i].down_until = 0;
}

void sim_store_stats(uint64_t *ok, uint64_t *failed)
{
    *ok = renewals;
    *failed = failures;
}
