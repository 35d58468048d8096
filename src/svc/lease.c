/* lease: named leader leases held in the shared store; see lease.h.
 *
 * Owns: one entry per tracked name (its timer, the store operation in flight,
 * the view last answered, how long a renewal is trusted).
 * Never: frees an entry while a store callback or a timer close for it is
 * pending (the manager counts them and frees everything after the last), or
 * trusts a renewal past sent + ttl - ttl/10 on the monotonic clock (svctime:
 * uv_hrtime, or the clock lease_mgr_new_clock injects; the lease simulator,
 * tests/sim/lease_sim.c, checks this promise under faults). */
#include "lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"

#define NAME_MAX_LEN 64

typedef struct lease_ent {
    struct lease_mgr *m;
    char name[NAME_MAX_LEN + 1];
    int64_t ttl_ms;
    bool want;     /* acquire and renew */
    bool inflight; /* a store operation is pending */
    svctime_timer_t timer;
    int64_t sent_mono;   /* when the pending operation was sent */
    int64_t valid_until; /* monotonic ms until which this node trusts it holds it; 0 none */
    int64_t epoch;       /* epoch while held */
    bool trusted;        /* lease_held said yes last time it was asked */
    int last_rc;         /* of the last answer, to log a failure once */
    /* the view */
    bool known;
    char holder[NAME_MAX_LEN + 1];
    int64_t view_epoch;
    int64_t expires_in;
    int64_t seen_mono;
    int64_t ended; /* every epoch <= ended is over for good, by the store's answers */
} lease_ent_t;

struct lease_mgr {
    uv_loop_t *loop;
    const svctime_ops_t *clock; /* NULL: libuv timers, uv_hrtime */
    store_t *store;
    char *node;
    int64_t ttl_ms;
    bool warm;
    lease_ent_t *ents[LEASE_MAX];
    size_t n;
    bool stopping;
    size_t pending; /* store callbacks and handle closes still to come */
    void (*done)(void *ud);
    void *done_ud;
    uint64_t acquired, lost;
};

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

static int64_t poll_ms(const lease_ent_t *e)
{
    int64_t third = e->ttl_ms / 3;
    return third < LEASE_POLL_MS ? third : LEASE_POLL_MS;
}

/* Notes the moment this node stops trusting a lease it held. */
static void check_lost(lease_ent_t *e, int64_t now)
{
    bool held = e->valid_until > now;
    if (e->trusted && !held) {
        e->m->lost++;
        log_warn("lease", "no longer holds lease %s (epoch %lld): not renewed in time", e->name,
                 (long long)e->epoch);
    }
    e->trusted = held;
}

static void on_timer(svctime_timer_t *t);

static void arm(lease_ent_t *e, int64_t ms)
{
    if (e->m->stopping)
        return;
    if (ms < 1)
        ms = 1;
    svctime_timer_start(&e->timer, ms, 0);
}

static void finish_if_done(lease_mgr_t *m)
{
    if (!m->stopping || m->pending)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->ents[i]);
    void (*done)(void *) = m->done;
    void *ud = m->done_ud;
    free(m->node);
    free(m);
    if (done)
        done(ud);
}

static void on_answer(void *ud, int rc, const char *err, const store_lease_t *l)
{
    lease_ent_t *e = ud;
    lease_mgr_t *m = e->m;
    int64_t now = svctime_mono_ms(m->clock);
    e->inflight = false;
    m->pending--;
    if (m->stopping) {
        finish_if_done(m);
        return;
    }
    if (rc < 0) {
        if (e->last_rc == 0)
            log_warn("lease", "lease %s: store: %s", e->name, err ? err : store_strerror(rc));
        e->last_rc = rc;
        check_lost(e, now);
        arm(e, poll_ms(e));
        return;
    }
    if (e->last_rc != 0)
        log_info("lease", "lease %s: store answers again", e->name);
    e->last_rc = 0;
    e->known = true;
    snprintf(e->holder, sizeof(e->holder), "%s", l->holder);
    e->view_epoch = l->epoch;
    e->expires_in = l->expires_in_ms;
    e->seen_mono = now;
    int64_t ended = l->expires_in_ms <= 0 ? l->epoch : l->epoch - 1;
    if (ended > e->ended)
        e->ended = ended;
    if (l->acquired && e->want) {
        int64_t margin = e->ttl_ms / 10;
        e->valid_until = e->sent_mono + e->ttl_ms - margin;
        if (!e->trusted || e->epoch != l->epoch) {
            m->acquired += !e->trusted;
            log_info("lease", "holds lease %s, epoch %lld", e->name, (long long)l->epoch);
        }
        e->epoch = l->epoch;
        check_lost(e, now);
        arm(e, e->ttl_ms / 3);
        return;
    }
    e->valid_until = 0;
    check_lost(e, now);
    int64_t next = poll_ms(e);
    if (e->want && l->expires_in_ms + 5 < next)
        next = l->expires_in_ms + 5;
    arm(e, next);
}

static void send_one(lease_ent_t *e)
{
    lease_mgr_t *m = e->m;
    if (e->inflight || m->stopping)
        return;
    e->sent_mono = svctime_mono_ms(m->clock);
    int rc;
    if (e->want)
        rc = store_lease_acquire(m->store, e->name, m->node, e->ttl_ms, on_answer, e);
    else
        rc = store_lease_get(m->store, e->name, on_answer, e);
    if (rc < 0) {
        check_lost(e, e->sent_mono);
        arm(e, poll_ms(e));
        return;
    }
    e->inflight = true;
    m->pending++;
}

static void on_timer(svctime_timer_t *t)
{
    send_one(t->data);
}

static lease_ent_t *find(lease_mgr_t *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->ents[i]->name, name) == 0)
            return m->ents[i];
    return NULL;
}

/* Returns the entry for name, tracking it if new; NULL if invalid or full. */
static lease_ent_t *track(lease_mgr_t *m, const char *name, char *err, size_t errlen)
{
    lease_ent_t *e = find(m, name);
    if (e)
        return e;
    if (!valid_name(name)) {
        snprintf(err, errlen, "invalid lease name (1..64 of A-Z a-z 0-9 . _ : -)");
        return NULL;
    }
    if (m->n == LEASE_MAX || m->stopping) {
        snprintf(err, errlen, "too many leases tracked (at most %d)", LEASE_MAX);
        return NULL;
    }
    e = xcalloc(1, sizeof(*e));
    e->m = m;
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->ttl_ms = m->ttl_ms;
    svctime_timer_init(&e->timer, m->loop, m->clock, on_timer, e);
    m->ents[m->n++] = e;
    arm(e, 1);
    return e;
}

lease_mgr_t *lease_mgr_new(uv_loop_t *loop, store_t *store, const char *node,
                           int64_t default_ttl_ms, bool warm)
{
    return lease_mgr_new_clock(loop, store, node, default_ttl_ms, warm, NULL);
}

lease_mgr_t *lease_mgr_new_clock(uv_loop_t *loop, store_t *store, const char *node,
                                 int64_t default_ttl_ms, bool warm, const svctime_ops_t *clock)
{
    lease_mgr_t *m = xcalloc(1, sizeof(*m));
    char err[128];
    m->loop = loop;
    m->clock = clock;
    m->store = store;
    m->node = xstrdup(node);
    m->ttl_ms = default_ttl_ms;
    m->warm = warm;
    lease_ent_t *e = track(m, "canonical", err, sizeof(err));
    e->want = !warm;
    return m;
}

int lease_acquire(lease_mgr_t *m, const char *name, int64_t ttl_ms, char *err, size_t errlen)
{
    if (m->warm) {
        snprintf(err, errlen, "this node is warm ([node] role = warm): it never holds a lease");
        return -1;
    }
    lease_ent_t *e = track(m, name, err, errlen);
    if (!e)
        return -1;
    if (ttl_ms > 0)
        e->ttl_ms = ttl_ms;
    if (!e->want) {
        e->want = true;
        if (!e->inflight)
            arm(e, 1);
    }
    return 0;
}

static void on_released(void *ud, int rc, const char *err)
{
    lease_mgr_t *m = ud;
    if (rc < 0)
        log_warn("lease", "release: %s (the lease expires by itself)", err ? err : "");
    m->pending--;
    finish_if_done(m);
}

static void release_in_store(lease_ent_t *e)
{
    lease_mgr_t *m = e->m;
    if (store_lease_release(m->store, e->name, m->node, on_released, m) == 0)
        m->pending++;
}

int lease_release(lease_mgr_t *m, const char *name, char *err, size_t errlen)
{
    lease_ent_t *e = find(m, name);
    if (!e || !e->want) {
        snprintf(err, errlen, "this node did not acquire lease %s", name);
        return -1;
    }
    if (strcmp(name, "canonical") == 0) {
        snprintf(err, errlen, "lease canonical is held by every hot node's choice: not released");
        return -1;
    }
    e->want = false;
    e->valid_until = 0;
    e->trusted = false;
    log_info("lease", "releasing lease %s (epoch %lld)", e->name, (long long)e->epoch);
    release_in_store(e);
    return 0;
}

int lease_held(lease_mgr_t *m, const char *name, int64_t *epoch)
{
    lease_ent_t *e = find(m, name);
    if (!e || m->stopping)
        return 0;
    check_lost(e, svctime_mono_ms(m->clock));
    if (!e->trusted)
        return 0;
    if (epoch)
        *epoch = e->epoch;
    return 1;
}

int lease_held_ahead(lease_mgr_t *m, const char *name, int64_t *epoch)
{
    lease_ent_t *e = find(m, name);
    if (!lease_held(m, name, epoch))
        return 0;
    return e->valid_until - svctime_mono_ms(m->clock) >= e->ttl_ms / LEASE_AHEAD_DIV;
}

int lease_epoch_over(lease_mgr_t *m, const char *name, int64_t epoch)
{
    lease_ent_t *e = find(m, name);
    return e && e->ended >= epoch;
}

int lease_view(lease_mgr_t *m, const char *name, lease_view_t *v)
{
    char err[128];
    memset(v, 0, sizeof(*v));
    v->holder = "";
    lease_ent_t *e = track(m, name, err, sizeof(err));
    if (!e)
        return -1;
    int64_t now = svctime_mono_ms(m->clock);
    v->known = e->known;
    v->holder = e->holder;
    v->epoch = e->view_epoch;
    v->ms_left = e->expires_in - (now - e->seen_mono);
    if (v->ms_left <= 0) {
        v->ms_left = 0;
        v->holder = "";
    }
    v->is_me = lease_held(m, name, NULL) != 0;
    return 0;
}

uint64_t lease_acquired_count(const lease_mgr_t *m)
{
    return m ? m->acquired : 0;
}

uint64_t lease_lost_count(const lease_mgr_t *m)
{
    return m ? m->lost : 0;
}

size_t lease_held_count(lease_mgr_t *m)
{
    size_t held = 0;
    for (size_t i = 0; m && i < m->n; i++)
        held += lease_held(m, m->ents[i]->name, NULL);
    return held;
}

static void on_timer_closed(svctime_timer_t *t)
{
    lease_ent_t *e = t->data;
    lease_mgr_t *m = e->m;
    m->pending--;
    finish_if_done(m);
}

void lease_mgr_stop(lease_mgr_t *m, void (*done)(void *ud), void *ud)
{
    int64_t now = svctime_mono_ms(m->clock);
    m->done = done;
    m->done_ud = ud;
    /* Every lease this node wants, held or not: an acquire still in flight
     * may have taken it, and the release runs after it (one connection, in
     * order). Releasing a lease held by another node changes nothing. */
    for (size_t i = 0; i < m->n; i++) {
        lease_ent_t *e = m->ents[i];
        if (!e->want)
            continue;
        if (e->valid_until > now)
            log_info("lease", "releasing lease %s (epoch %lld)", e->name, (long long)e->epoch);
        release_in_store(e);
    }
    m->stopping = true;
    for (size_t i = 0; i < m->n; i++) {
        m->pending++;
        svctime_timer_close(&m->ents[i]->timer, on_timer_closed);
    }
    finish_if_done(m); /* only if nothing is pending; otherwise the last callback does */
}
