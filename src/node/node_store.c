/* node_store: the node's shared store and the services on it (membership
 * rows, leader leases, the job scheduler): opening, the store's events, the
 * stop order.
 *
 * Owns: choosing the store URL (the [store] url, or the embedded SQLite file
 * under [node] data_dir), logging the store's state changes, this node's
 * membership row (renewed every member_lease/3, or every 500 ms while some
 * member is neither alive nor dead, so a crash is seen soon; one round trip
 * renews the row and reads every row), handing the rows to the cluster, and
 * stopping in order: scheduler (runs cancelled and recorded), leases
 * (released, so another node takes over at once), the row (marked left),
 * then the store.
 * Never: blocks the loop (the store's own threads and polls do the I/O), or
 * makes an unreachable store fatal: the cache serves without it (but with a
 * configured [store] url and a cluster, it serves cached values only while
 * its row is renewed: cluster_own_row). Rows are fed only when [store] url
 * is set: the embedded default file is no arbiter (one per host). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "mem.h"
#include "node.h"
#include "node_flushlog.h"

#define ROWS_UNSETTLED_MS 500 /* renewal interval while some member is unsettled,
                                 or after a failure; also how often we look */
#define ROWS_WAIT_MS 50       /* while the cluster is not started yet */

/* This node's membership row (one node per process, like stop_done below). */
static struct {
    node_t *n;
    bool on;         /* [store] url and a cluster key: rows are the arbiter */
    uv_timer_t timer;
    bool timer_open;
    bool inflight;   /* a renewal is pending */
    bool stopping;
    bool joined;     /* a renewal succeeded: mark the row left at stop */
    int64_t sent;    /* cluster_now when the pending renewal was sent */
    uint64_t incarnation;
    int last_rc;     /* of the last renewal, to log a change once */
} rows;

/* mkdir -p dir (mode 0750 for what it creates). Returns 0 or -1 (errno set). */
static int make_dirs(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(path, 0750) != 0 && errno != EEXIST)
                return -1;
            *p = c;
            if (c == '\0')
                break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static void on_store_event(void *ud, enum store_event ev, const char *msg)
{
    node_t *n = ud;
    switch (ev) {
    case STORE_EV_UP:
        log_info("store", "store up%s%s", msg && *msg ? ": " : "", msg ? msg : "");
        break;
    case STORE_EV_DOWN:
        log_warn("store", "store down: %s (retrying; the cache keeps serving)", msg ? msg : "");
        /* A PostgreSQL session lock ends with the connection: the others may
         * see it free and (after T) call this node dead. Stop serving now. */
        if (rows.on && n->store && n->cluster) {
            store_health_t h;
            store_health(n->store, &h);
            if (strcmp(h.backend, "postgresql") == 0) {
                log_warn("member", "store session lost: its lock with it; serving nothing cached "
                         "until the row is renewed");
                cluster_own_row_lost(n->cluster);
            }
        }
        break;
    case STORE_EV_FAILED:
        log_error("store", "store failed: %s (leases and jobs stop; the cache keeps serving)",
                  msg ? msg : "");
        break;
    }
}

int node_open_store(node_t *n, char *err, size_t errlen)
{
    config_t *cfg = n->cfg;
    char url[4200];
    if (cfg->store_url) {
        snprintf(url, sizeof(url), "%s", cfg->store_url);
    } else {
        const char *dir = cfg->data_dir ? cfg->data_dir : "/var/lib/cohort";
        if (dir[0] != '/') {
            snprintf(err, errlen, "node.data_dir: must be an absolute path: '%s'", dir);
            return -1;
        }
        if (make_dirs(dir) < 0) {
            snprintf(err, errlen, "node.data_dir: cannot create %s: %s", dir, strerror(errno));
            return -1;
        }
        snprintf(url, sizeof(url), "sqlite://%s/cohort.db", dir);
    }
    /* A node of a cluster with a configured store takes its session lock. */
    rows.on = cfg->store_url && cfg->key_file && cfg->key_file[0] && cfg->name;
    if (!cfg->store_url && cfg->key_file && cfg->key_file[0])
        log_warn("member", "no [store] url: membership has no arbiter (a member unreachable "
                 "for dead_after is declared dead on a guess; see README, Membership)");
    store_opts_t o = {
        .url = url,
        .node_name = rows.on ? cfg->name : NULL,
        .on_event = on_store_event,
        .on_flushlog_notify = node_flushlog_notified,
        .ud = n,
    };
    char why[512];
    if (store_open(n->loop, &o, &n->store, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "store.url: %s", why);
        return -1;
    }
    return 0;
}

/* ---- membership rows ---------------------------------------------------- */

static void on_rows_timer(uv_timer_t *t);

/* Arms the next look at the row: every ROWS_UNSETTLED_MS (or ROWS_WAIT_MS
 * until the cluster is started); on_rows_timer decides whether a renewal is
 * due, so a member becoming unsettled is asked about within 500 ms while an
 * idle cluster costs one round trip per member_lease/3. */
static void rows_schedule(void)
{
    if (rows.stopping)
        return;
    uv_timer_start(&rows.timer, on_rows_timer, rows.n->cluster ? ROWS_UNSETTLED_MS : ROWS_WAIT_MS,
                   0);
}

/* Why a row counts as gone (or its lock as free), or NULL if it is live. */
static const char *gone_why(const store_member_t *m)
{
    if (m->left)
        return "it left cleanly";
    if (m->expires_in_ms <= 0)
        return "its row expired by the database's clock";
    if (!m->lock_held)
        return "its session lock is free";
    return NULL;
}

static void rows_stopped(void);

static void on_renewed(void *ud, int rc, const char *err, int64_t db_now_ms,
                       const store_member_t *members, size_t n)
{
    (void)ud;
    (void)db_now_ms;
    rows.inflight = false;
    cluster_t *cl = rows.n->cluster;
    const char *me = rows.n->cfg->name;
    if (rows.stopping) {
        if (rc == 0)
            rows.joined = true;
        rows_stopped();
        return;
    }
    if (rc < 0) {
        if (rows.last_rc == 0)
            log_warn("member", "cannot renew this node's membership row: %s (it stops serving "
                     "cached values once the row could expire)", err ? err : store_strerror(rc));
        rows.last_rc = rc;
        rows_schedule();
        return;
    }
    if (rows.last_rc != 0)
        log_info("member", "membership row renewed again");
    rows.last_rc = 0;
    rows.joined = true;
    if (cl) {
        cluster_row_t *cr = xcalloc(n ? n : 1, sizeof(*cr));
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            const store_member_t *m = &members[i];
            if (strcmp(m->name, me) == 0) {
                if (m->incarnation == rows.incarnation && !m->left && m->expires_in_ms > 0 &&
                    m->lock_held)
                    cluster_own_row(cl, rows.sent, rows.n->cfg->member_lease_ms);
                continue;
            }
            const char *why = gone_why(m);
            cr[k++] = (cluster_row_t){m->name,
                                      m->addr,
                                      m->incarnation,
                                      m->left || m->expires_in_ms <= 0,
                                      !m->lock_held,
                                      why,
                                      !m->lock_held && m->lock_free_is_exit,
                                      m->left};
        }
        cluster_member_rows(cl, rows.sent, cr, k);
        free(cr);
    }
    rows_schedule();
}

static void on_rows_timer(uv_timer_t *t)
{
    (void)t;
    node_t *n = rows.n;
    cluster_t *cl = n->cluster;
    if (rows.inflight || rows.stopping || !n->store)
        return;
    if (!cl) {
        rows_schedule();
        return;
    }
    int64_t now = cluster_now(cl);
    bool due = rows.sent == 0 || rows.last_rc != 0 || !cluster_members_settled(cl) ||
               now - rows.sent >= n->cfg->member_lease_ms / 3;
    if (!due) {
        rows_schedule();
        return;
    }
    rows.sent = now;
    int rc = store_member_renew(n->store, n->cfg->name, rows.incarnation, cluster_self_addr(cl),
                                n->cfg->member_lease_ms, on_renewed, NULL);
    if (rc < 0) {
        if (rows.last_rc == 0)
            log_warn("member", "cannot renew this node's membership row: %s",
                     store_strerror(rc));
        rows.last_rc = rc;
        rows_schedule();
        return;
    }
    rows.inflight = true;
}

static void rows_start(node_t *n)
{
    rows.n = n;
    /* The row's incarnation must grow with every start of this node (the
     * store keeps the row of the newest one): its start time in microseconds
     * on this host's wall clock, which only labels the row and judges no
     * expiry. The cluster's incarnation is random and does not grow. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rows.incarnation = ((uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u) &
                       (uint64_t)INT64_MAX;
    if (!rows.on || !n->store)
        return;
    uv_timer_init(n->loop, &rows.timer);
    rows.timer_open = true;
    uv_timer_start(&rows.timer, on_rows_timer, 0, 0);
}

void node_start_services(node_t *n, jobspec_t *specs, size_t nspecs)
{
    rows_start(n);
    node_flushlog_start(n);
    config_t *cfg = n->cfg;
    int warm = cfg->role && strcmp(cfg->role, "warm") == 0;
    n->leases = lease_mgr_new(n->loop, n->store, cfg->name, cfg->lease_ttl_ms, warm);
    n->scheduler = scheduler_new(n->loop, n->store, n->leases, cfg->name, specs, nspecs,
                                 (int64_t)cfg->retention_s * 1000);
}

static void (*stop_done)(node_t *n);

static void store_closed(void *ud)
{
    node_t *n = ud;
    log_info("store", "store closed");
    if (stop_done)
        stop_done(n);
}

static void close_store(node_t *n)
{
    if (n->store) {
        store_t *s = n->store;
        n->store = NULL;
        store_close(s, store_closed, n);
    } else if (stop_done) {
        stop_done(n);
    }
}

static void on_left(void *ud, int rc, const char *err)
{
    if (rc < 0)
        log_warn("member", "could not mark this node's row left: %s (it expires by itself)",
                 err ? err : store_strerror(rc));
    else
        log_info("member", "membership row marked left");
    close_store(ud);
}

static void on_rows_timer_closed(uv_handle_t *h)
{
    (void)h;
    rows.timer_open = false;
    rows_stopped();
}

/* Once the timer is closed and no renewal is pending: marks the row left
 * (this node serves nothing cached from here on), then closes the store. */
static void rows_stopped(void)
{
    node_t *n = rows.n;
    if (rows.inflight || rows.timer_open)
        return;
    if (!rows.joined || !n->store) {
        close_store(n);
        return;
    }
    rows.joined = false;
    cluster_own_row_lost(n->cluster);
    if (store_member_leave(n->store, n->cfg->name, rows.incarnation, on_left, n) < 0)
        close_store(n);
}

static void leases_stopped(void *ud)
{
    node_t *n = ud;
    n->leases = NULL;
    rows.n = n;
    rows.stopping = true;
    if (rows.timer_open) {
        if (!uv_is_closing((uv_handle_t *)&rows.timer))
            uv_close((uv_handle_t *)&rows.timer, on_rows_timer_closed);
        return;
    }
    rows_stopped();
}

static void scheduler_stopped(void *ud)
{
    node_t *n = ud;
    n->scheduler = NULL;
    if (n->leases)
        lease_mgr_stop(n->leases, leases_stopped, n);
    else
        leases_stopped(n);
}

void node_stop_services(node_t *n, void (*done)(node_t *n))
{
    stop_done = done;
    node_flushlog_stop(n);
    if (n->scheduler)
        scheduler_stop(n->scheduler, scheduler_stopped, n);
    else
        scheduler_stopped(n);
}
