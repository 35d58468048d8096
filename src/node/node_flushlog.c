/* node_flushlog: the node's half of the flush log through the shared store:
 * it moves bytes between the cluster (src/cluster/flushlog.c, which owns the
 * rules: when to append, what an entry holds, when a held reply may go, the
 * log lease) and the store (store_flushlog_*).
 *
 * Owns: the poll timer (cluster_flushlog_poll_ms: 50 ms while a member's
 * link lease runs low, else every T/3 up to 1 s; PostgreSQL's NOTIFY wakes
 * it at once), this node's position in the log (every entry up to it was
 * applied or is not this node's business) and recording it
 * (store_flushlog_mark_read, only when it moved), appending what the cluster
 * hands over (one append in flight), reading the members' cursors while
 * held replies wait for them (every 50 ms at most), and pruning (every 10 s
 * at most, after this node's position moved).
 * Never: blocks the loop; decides anything about coherence (the cluster
 * does); runs without a configured [store] url (the embedded default file is
 * one per host: no log between hosts).
 *
 * Round trips at idle: one read per poll (T/3, so 1.5 per second with the
 * default lease of 2 s), nothing else unless an entry arrived.
 *
 * Rule N1: once on, the poll never stops while the node runs, a store
 * identity mismatch included (storeid.c S1 turns off only the log lease,
 * which the cluster decides, cluster_flushlog_on): the store prunes only the
 * entries that every member with a live row has read past, and this node's
 * row stays live on its store, so a node that stopped reading (and
 * recording its position) stalled pruning of that store's log for every
 * member until it restarted. Reading on is safe: entries apply through the
 * link's code (flushlog.c L3), and a cursor past an entry means it was
 * applied or is not ours (L2). Test: test_flushlog.py,
 * test_mismatch_keeps_pruning_the_log. */
#include "node_flushlog.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "node.h"

#define READ_LIMIT 256
#define CURSORS_EVERY_MS 50
#define PRUNE_EVERY_MS 10000
#define WAIT_CLUSTER_MS 50

static struct {
    node_t *n;
    bool on;
    bool enabled; /* cluster_flushlog_enable done, end-of-turn hook added */
    bool stopping;
    uv_timer_t timer;
    bool timer_open;
    bool reading, appending, marking, cursoring, pruning;
    int64_t pos;        /* position: every entry up to here is done with */
    int64_t chain_after; /* where the next read of this poll continues */
    bool chain_stalled;  /* an entry of this poll was left */
    int64_t started;     /* cluster_now when the current read was sent */
    int64_t marked;      /* the position recorded in the store */
    int64_t last_cursors;
    int64_t last_prune;
    int64_t pruned_pos;
    int last_rc;         /* of the last failed operation, to log a change once */
    bool id_known, id_asking; /* the store identity, told to the cluster (storeid.c) */
} fl;

static bool alive(void)
{
    return fl.on && !fl.stopping && fl.n->store && fl.n->cluster;
}

/* Logs a failed store operation once per change of error. */
static void note_rc(const char *what, int rc, const char *err)
{
    if (rc == 0) {
        if (fl.last_rc != 0)
            log_info("cluster", "flush log: the store answers again");
        fl.last_rc = 0;
        return;
    }
    if (rc != fl.last_rc && rc != STORE_ECANCELED)
        log_warn("cluster", "flush log: %s failed: %s", what, err ? err : store_strerror(rc));
    fl.last_rc = rc;
}

static void schedule(int64_t ms);
static void read_next(void);

/* ---- the poll ----------------------------------------------------------- */

static void on_marked(void *ud, int rc, const char *err)
{
    int64_t pos = (int64_t)(intptr_t)ud;
    fl.marking = false;
    if (!alive())
        return;
    note_rc("recording the position", rc, err);
    if (rc == 0 && pos > fl.marked)
        fl.marked = pos;
}

static void on_pruned(void *ud, int rc, const char *err, int64_t count)
{
    (void)ud;
    fl.pruning = false;
    if (!alive())
        return;
    note_rc("pruning", rc, err);
    if (rc == 0 && count > 0)
        log_debug("cluster", "flush log: pruned %lld entries", (long long)count);
}

/* After a poll: records the position if it moved, prunes now and then. */
static void after_poll(void)
{
    node_t *n = fl.n;
    if (fl.pos > fl.marked && !fl.marking &&
        store_flushlog_mark_read(n->store, n->cfg->name, fl.pos, on_marked,
                                 (void *)(intptr_t)fl.pos) == 0)
        fl.marking = true;
    int64_t now = cluster_now(n->cluster);
    if (fl.pos > fl.pruned_pos && now - fl.last_prune >= PRUNE_EVERY_MS && !fl.pruning &&
        store_flushlog_prune(n->store, on_pruned, NULL) == 0) {
        fl.pruning = true;
        fl.last_prune = now;
        fl.pruned_pos = fl.pos;
    }
}

static void on_rows(void *ud, int rc, const char *err, const store_flush_row_t *rows, size_t n)
{
    (void)ud;
    fl.reading = false;
    if (!alive())
        return;
    note_rc("reading", rc, err);
    cluster_t *cl = fl.n->cluster;
    if (rc < 0) {
        schedule(cluster_flushlog_poll_ms(cl));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const store_flush_row_t *r = &rows[i];
        fl.chain_after = r->id;
        if (!cluster_flushlog_apply(cl, r->origin, r->incarnation, r->seq, r->data, r->len))
            fl.chain_stalled = true;
        else if (!fl.chain_stalled && r->id > fl.pos)
            fl.pos = r->id;
    }
    if (n == READ_LIMIT) { /* more: the poll goes on */
        read_next();
        return;
    }
    cluster_flushlog_poll_end(cl, fl.started);
    after_poll();
    schedule(cluster_flushlog_poll_ms(cl));
}

/* Sends the next read of the current poll. */
static void read_next(void)
{
    node_t *n = fl.n;
    fl.started = cluster_now(n->cluster);
    if (store_flushlog_read(n->store, fl.chain_after, READ_LIMIT, on_rows, NULL) == 0) {
        fl.reading = true;
        return;
    }
    schedule(cluster_flushlog_poll_ms(n->cluster));
}

static void poll_start(void)
{
    if (fl.reading)
        return;
    cluster_flushlog_poll_begin(fl.n->cluster);
    fl.chain_after = fl.pos;
    fl.chain_stalled = false;
    read_next();
}

static void on_timer(uv_timer_t *t);

static void schedule(int64_t ms)
{
    if (fl.stopping || !fl.timer_open)
        return;
    uv_timer_start(&fl.timer, on_timer, ms < 0 ? WAIT_CLUSTER_MS : (uint64_t)ms, 0);
}

/* ---- appends and cursors (end of every loop turn) ------------------------- */

static void on_appended(void *ud, int rc, const char *err, const int64_t *ids, size_t n)
{
    (void)ud;
    fl.appending = false;
    if (!alive())
        return;
    note_rc("appending", rc, err);
    cluster_flushlog_appended(fl.n->cluster, rc == 0 && n == 1, rc == 0 && n ? ids[0] : 0);
}

static void on_cursors(void *ud, int rc, const char *err, const store_cursor_t *c, size_t n)
{
    (void)ud;
    fl.cursoring = false;
    if (!alive())
        return;
    note_rc("reading the cursors", rc, err);
    int moved = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        moved |= cluster_flushlog_cursor(fl.n->cluster, c[i].reader, c[i].last_id);
    if (moved)
        cluster_flushlog_progress(fl.n->cluster);
}

static void flushlog_turn(void *ud)
{
    (void)ud;
    if (!alive())
        return;
    node_t *n = fl.n;
    cluster_t *cl = n->cluster;
    if (!fl.appending && cluster_flushlog_due(cl)) {
        buf_t b;
        buf_init(&b);
        uint64_t inc, first;
        if (cluster_flushlog_take(cl, &b, &inc, &first) == 0) {
            store_flush_entry_t e = {first, buf_head(&b), buf_len(&b)};
            int rc = store_flushlog_append(n->store, n->cfg->name, inc, &e, 1, on_appended, NULL);
            if (rc == 0) {
                fl.appending = true;
            } else {
                note_rc("appending", rc, NULL);
                cluster_flushlog_appended(cl, 0, 0);
            }
        }
        buf_free(&b);
    }
    int64_t now = cluster_now(cl);
    if (!fl.cursoring && now - fl.last_cursors >= CURSORS_EVERY_MS &&
        cluster_flushlog_wants_cursors(cl) &&
        store_flushlog_cursors(n->store, on_cursors, NULL) == 0) {
        fl.cursoring = true;
        fl.last_cursors = now;
    }
}

/* ---- start and stop --------------------------------------------------------- */

static void on_identity(void *ud, int rc, const char *err, const char *text)
{
    (void)ud;
    fl.id_asking = false;
    if (!alive())
        return;
    note_rc("reading the store identity", rc, err);
    if (rc < 0)
        return; /* asked again at the next poll */
    store_health_t h;
    store_health(fl.n->store, &h);
    cluster_set_store_identity(fl.n->cluster, h.backend, text);
    fl.id_known = true;
}

static void on_timer(uv_timer_t *t)
{
    (void)t;
    if (!alive()) {
        if (!fl.stopping && fl.on)
            schedule(-1); /* the cluster is not started yet */
        return;
    }
    node_t *n = fl.n;
    if (!fl.id_known && !fl.id_asking &&
        store_identity(n->store, on_identity, NULL) == 0)
        fl.id_asking = true;
    if (!fl.enabled) {
        if (!cluster_has_arbiter(n->cluster))
            return; /* no arbiter, no log */
        fl.enabled = true;
        cluster_flushlog_enable(n->cluster, 1);
        node_hooks_add(&n->end_of_turn, "flush log", flushlog_turn, NULL);
    }
    poll_start();
    if (!fl.reading)
        schedule(cluster_flushlog_poll_ms(n->cluster));
}

void node_flushlog_start(node_t *n)
{
    config_t *cfg = n->cfg;
    fl.n = n;
    fl.on = cfg->store_url && cfg->store_url[0] && cfg->key_file && cfg->key_file[0] && cfg->name;
    if (!fl.on || !n->store)
        return;
    uv_timer_init(n->loop, &fl.timer);
    fl.timer_open = true;
    uv_timer_start(&fl.timer, on_timer, 0, 0);
}

static void on_timer_closed(uv_handle_t *h)
{
    (void)h;
    fl.timer_open = false;
}

void node_flushlog_stop(node_t *n)
{
    (void)n;
    fl.stopping = true;
    if (fl.timer_open && !uv_is_closing((uv_handle_t *)&fl.timer))
        uv_close((uv_handle_t *)&fl.timer, on_timer_closed);
}

void node_flushlog_notified(void *ud, int64_t last_id)
{
    (void)ud;
    if (alive() && fl.enabled && last_id > fl.pos && !fl.reading)
        schedule(0);
}
