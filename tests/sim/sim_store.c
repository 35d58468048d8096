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
 * With --flushlog (sim_store_flushlog) the store also holds the flush log
 * (src/cluster/flushlog.c) and each node runs the driver of
 * src/node/node_flushlog.c against it: polls every cluster_flushlog_poll_ms
 * (a read reaches the database after one hop, takes its snapshot there, and
 * comes back after another; the poll's start is the send time), appends what
 * cluster_flushlog_take hands over at the end of each turn (one in flight),
 * records its position after each complete poll, and reads every cursor
 * while cluster_flushlog_wants_cursors. Outages fail these like renewals.
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
    /* the flush log driver (as node_flushlog.c) */
    int fl_reading, fl_appending, fl_cursoring, fl_marking;
    int fl_stalled;      /* an entry of this poll was left */
    int64_t fl_pos;      /* every entry up to here is done with */
    int64_t fl_chain;    /* where the next read of this poll continues */
    int64_t fl_started;  /* cluster clock when the current read was sent */
    int64_t fl_marked;
    int64_t fl_last_cursors;
} snode_t;

/* One entry of the fake flush log. */
typedef struct lentry {
    int64_t id;
    int origin;
    uint64_t inc, seq;
    uint8_t *data;
    size_t len;
} lentry_t;

/* A flush log operation on its way (read, append, cursors, mark). */
typedef struct lop {
    struct lop *prev, *next; /* every operation alive (freed at a new run) */
    int kind; /* LOP_* */
    int node;
    uint64_t gen;
    int ok;
    int64_t after;   /* read: after this id; mark: the position */
    lentry_t *rows;  /* read: copies of the rows (data owned) */
    size_t n;
    uint64_t inc, seq; /* append */
    uint8_t *data;
    size_t len;
    int64_t id;      /* append: the id given */
    int64_t cursors[SIM_MAX_NODES];
} lop_t;
enum { LOP_READ, LOP_APPEND, LOP_CURSORS, LOP_MARK };
#define FL_READ_LIMIT 256

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
    int exited[SIM_MAX_NODES]; /* not running: its lock is free for good (SQLite's kind) */
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
    int flushlog;
    lentry_t *log;
    size_t nlog, caplog;
    int64_t next_id;
    int64_t cursors[SIM_MAX_NODES]; /* 0: none recorded */
} S;
static uint64_t log_appends, log_reads; /* over every run */
static lop_t *lops; /* operations in flight: a run's end drops their events */

static lop_t *lop_new(void)
{
    lop_t *op = calloc(1, sizeof(*op));
    op->next = lops;
    if (lops)
        lops->prev = op;
    lops = op;
    return op;
}
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
                                  r->left || expired, !a->lock_held[j], why,
                                  a->exited[j], r->left};
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
        for (int j = 0; j < S.nnodes; j++)
            a->exited[j] = !S.nodes[j].running;
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

/* ---- the flush log --------------------------------------------------------------- */

static void fl_poll(void *arg, int64_t id);

static void fl_schedule(int i, int64_t ms)
{
    sim_at(sim_now() + (ms < 0 ? 50 : ms), fl_poll, NULL, id_of(i, S.nodes[i].gen));
}

static void lop_free(lop_t *op)
{
    if (op->prev)
        op->prev->next = op->next;
    else
        lops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    for (size_t k = 0; k < op->n; k++)
        free(op->rows[k].data);
    free(op->rows);
    free(op->data);
    free(op);
}

static void fl_answer(void *arg, int64_t id);

/* The operation reaches the database. */
static void fl_db(void *arg, int64_t id)
{
    lop_t *op = arg;
    (void)id;
    if (down(op->node)) {
        op->ok = 0;
        sim_at(sim_now() + hop(), fl_answer, op, 0);
        return;
    }
    op->ok = 1;
    switch (op->kind) {
    case LOP_READ:
        log_reads++;
        op->rows = calloc(FL_READ_LIMIT, sizeof(lentry_t));
        for (size_t k = 0; k < S.nlog && op->n < FL_READ_LIMIT; k++) {
            if (S.log[k].id <= op->after)
                continue;
            lentry_t *r = &op->rows[op->n++];
            *r = S.log[k];
            r->data = malloc(r->len ? r->len : 1);
            memcpy(r->data, S.log[k].data, r->len);
        }
        break;
    case LOP_APPEND:
        if (S.nlog == S.caplog) {
            S.caplog = S.caplog ? S.caplog * 2 : 64;
            S.log = realloc(S.log, S.caplog * sizeof(lentry_t));
        }
        op->id = ++S.next_id;
        S.log[S.nlog++] = (lentry_t){op->id, op->node, op->inc, op->seq, op->data, op->len};
        op->data = NULL; /* the log owns it */
        log_appends++;
        break;
    case LOP_CURSORS:
        memcpy(op->cursors, S.cursors, sizeof(S.cursors));
        break;
    case LOP_MARK:
        if (op->after > S.cursors[op->node])
            S.cursors[op->node] = op->after;
        break;
    }
    sim_at(sim_now() + hop(), fl_answer, op, 0);
}

static void fl_send(int i, int kind, lop_t *op)
{
    op->kind = kind;
    op->node = i;
    op->gen = S.nodes[i].gen;
    if (down(i) && rnd(2)) { /* refused at once */
        op->ok = 0;
        sim_at(sim_now() + 1, fl_answer, op, 0);
        return;
    }
    sim_at(sim_now() + hop(), fl_db, op, 0);
}

static void fl_read_next(int i)
{
    snode_t *sn = &S.nodes[i];
    lop_t *op = lop_new();
    op->after = sn->fl_chain;
    sn->fl_started = cluster_now(sim_cluster(i));
    sn->fl_reading = 1;
    fl_send(i, LOP_READ, op);
}

/* After a complete poll: records the position, as node_flushlog.c. */
static void fl_after_poll(int i)
{
    snode_t *sn = &S.nodes[i];
    if (sn->fl_pos > sn->fl_marked && !sn->fl_marking) {
        lop_t *op = lop_new();
        op->after = sn->fl_pos;
        sn->fl_marking = 1;
        fl_send(i, LOP_MARK, op);
    }
}

static void fl_handle(lop_t *op)
{
    int i = op->node;
    snode_t *sn = &S.nodes[i];
    cluster_t *cl = sim_cluster(i);
    char name[16];
    switch (op->kind) {
    case LOP_READ:
        sn->fl_reading = 0;
        if (!op->ok) {
            fl_schedule(i, cluster_flushlog_poll_ms(cl));
            return;
        }
        for (size_t k = 0; k < op->n; k++) {
            lentry_t *r = &op->rows[k];
            snprintf(name, sizeof(name), "n%d", r->origin);
            sn->fl_chain = r->id;
            if (!cluster_flushlog_apply(cl, name, r->inc, r->seq, r->data, r->len))
                sn->fl_stalled = 1;
            else if (!sn->fl_stalled && r->id > sn->fl_pos)
                sn->fl_pos = r->id;
        }
        if (op->n == FL_READ_LIMIT) {
            fl_read_next(i);
            return;
        }
        cluster_flushlog_poll_end(cl, sn->fl_started);
        fl_after_poll(i);
        fl_schedule(i, cluster_flushlog_poll_ms(cl));
        return;
    case LOP_APPEND:
        sn->fl_appending = 0;
        cluster_flushlog_appended(cl, op->ok, op->id);
        return;
    case LOP_CURSORS: {
        sn->fl_cursoring = 0;
        int moved = 0;
        for (int j = 0; op->ok && j < S.nnodes; j++) {
            snprintf(name, sizeof(name), "n%d", j);
            if (op->cursors[j])
                moved |= cluster_flushlog_cursor(cl, name, op->cursors[j]);
        }
        if (moved)
            cluster_flushlog_progress(cl);
        return;
    }
    case LOP_MARK:
        sn->fl_marking = 0;
        if (op->ok && op->after > sn->fl_marked)
            sn->fl_marked = op->after;
        return;
    }
}

/* The answer reaches the node (a paused one handles it once it runs). */
static void fl_answer(void *arg, int64_t id)
{
    lop_t *op = arg;
    (void)id;
    snode_t *sn = &S.nodes[op->node];
    if (op->gen != sn->gen || !sn->running || !sim_cluster(op->node)) {
        lop_free(op); /* its process ended */
        return;
    }
    if (sim_paused(op->node)) {
        sim_at(sim_now() + 10, fl_answer, op, 0);
        return;
    }
    sim_log_as(op->node);
    fl_handle(op);
    lop_free(op);
}

static void fl_poll(void *arg, int64_t id)
{
    (void)arg;
    int i = (int)(id % SIM_MAX_NODES);
    uint64_t gen = (uint64_t)id / SIM_MAX_NODES;
    snode_t *sn = &S.nodes[i];
    cluster_t *cl = sim_cluster(i);
    if (gen != sn->gen || !sn->running || !cl)
        return;
    if (sim_paused(i) || sn->fl_reading) {
        fl_schedule(i, 10);
        return;
    }
    cluster_flushlog_poll_begin(cl);
    sn->fl_chain = sn->fl_pos;
    sn->fl_stalled = 0;
    fl_read_next(i);
}

void sim_store_turn(int i)
{
    snode_t *sn = &S.nodes[i];
    cluster_t *cl = sim_cluster(i);
    if (!S.on || !S.flushlog || !cl || !sn->running)
        return;
    if (!sn->fl_appending && cluster_flushlog_due(cl)) {
        buf_t b;
        buf_init(&b);
        uint64_t inc, first;
        if (cluster_flushlog_take(cl, &b, &inc, &first) == 0) {
            lop_t *op = lop_new();
            op->inc = inc;
            op->seq = first;
            op->len = buf_len(&b);
            op->data = malloc(op->len ? op->len : 1);
            memcpy(op->data, buf_head(&b), op->len);
            sn->fl_appending = 1;
            fl_send(i, LOP_APPEND, op);
        }
        buf_free(&b);
    }
    int64_t now = cluster_now(cl);
    if (!sn->fl_cursoring && now - sn->fl_last_cursors >= 50 &&
        cluster_flushlog_wants_cursors(cl)) {
        sn->fl_cursoring = 1;
        sn->fl_last_cursors = now;
        fl_send(i, LOP_CURSORS, lop_new());
    }
}

void sim_store_flushlog(int on)
{
    S.flushlog = on;
}

int sim_store_down(void)
{
    if (!S.on)
        return 0;
    if (sim_now() < S.all_down_until || sim_now() < S.slow_until)
        return 1;
    for (int i = 0; i < S.nnodes; i++)
        if (sim_now() < S.nodes[i].down_until)
            return 1;
    return 0;
}

int sim_store_row_lapsed(int i)
{
    const row_t *r = &S.rows[i];
    return S.on && (!r->exists || r->incarnation != S.nodes[i].incarnation || r->left ||
                    r->expires_at <= sim_now() || !S.nodes[i].lock);
}

void sim_store_stats_log(uint64_t *appends, uint64_t *reads)
{
    *appends = log_appends;
    *reads = log_reads;
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
    int on = S.on, flushlog = S.flushlog;
    while (lops)
        lop_free(lops);
    for (size_t k = 0; k < S.nlog; k++)
        free(S.log[k].data);
    free(S.log);
    memset(&S, 0, sizeof(S));
    S.on = on;
    S.flushlog = flushlog;
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
    if (S.flushlog) {
        sn->fl_reading = sn->fl_appending = sn->fl_cursoring = sn->fl_marking = 0;
        sn->fl_pos = sn->fl_marked = sn->fl_last_cursors = 0;
        cluster_flushlog_enable(cl, 1);
        fl_schedule(i, 0);
    }
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
