/* store: the backend-independent half of the store; see store.h.
 *
 * Owns: URL checking and backend dispatch, argument checks and copies, the
 * bound on pending operations, the completion queue (backends hand finished
 * operations back from any thread; callbacks run on the loop thread from a
 * uv_async), health and its counters, and the close sequence.
 * Never: talks to a database; calls a user callback from inside a submit.
 *
 * Invariants (checked by tests/unit/test_store.c):
 *   1. every accepted operation calls its callback exactly once, on the loop
 *      thread, after the submit returned (all tests count callbacks; the
 *      close test checks cancelled ones);
 *   2. pending counts accepted operations whose callback has not run; a
 *      submit beyond max_pending is refused (test_queue_bound);
 *   3. health counters change only on the loop thread (no locks needed
 *      around store_health). */
#include "store_int.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"

struct store {
    uv_loop_t *loop;
    const store_backend_t *be;
    void *impl;
    store_opts_t o; /* copy; o.url and o.node_name point to ours */
    char *url;
    char *node_name;
    uv_async_t wake; /* done queue has ops, or backend closed */
    uv_mutex_t mu;   /* guards done_head/done_tail */
    store_op_t *done_head, *done_tail;
    store_health_t h;    /* loop thread only */
    bool closing;        /* store_close called */
    bool backend_closed; /* the backend released everything */
    void (*close_cb)(void *ud);
    void *close_ud;
};

const char *store_strerror(int rc)
{
    switch (rc) {
    case STORE_OK:
        return "ok";
    case STORE_EINVAL:
        return "invalid argument";
    case STORE_EFULL:
        return "too many pending operations";
    case STORE_ECLOSED:
        return "store closed";
    case STORE_EDOWN:
        return "store down";
    case STORE_ETIMEDOUT:
        return "timeout";
    case STORE_EDB:
        return "database error";
    case STORE_ECANCELED:
        return "cancelled";
    case STORE_EFATAL:
        return "store failed";
    case STORE_ENOENT:
        return "not found";
    default:
        return "unknown error";
    }
}

int64_t store__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uv_loop_t *store__loop(store_t *s)
{
    return s->loop;
}

/* ------------------------------------------------------------ op memory */

void store__fail(store_op_t *op, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(op->err, sizeof(op->err), fmt, ap);
    va_end(ap);
    op->rc = rc;
}

void *store__alloc(store_op_t *op, size_t n)
{
    struct store_blob *b = xcalloc(1, sizeof(*b) + n + 1);
    b->next = op->blobs;
    op->blobs = b;
    return b->data;
}

char *store__keep(store_op_t *op, const void *p, size_t n)
{
    char *d = store__alloc(op, n);
    if (n)
        memcpy(d, p, n);
    return d;
}

/* Frees op and everything it owns. */
static void op_free(store_op_t *op)
{
    while (op->blobs) {
        struct store_blob *b = op->blobs;
        op->blobs = b->next;
        free(b);
    }
    free(op);
}

/* ---------------------------------------------------------- completions */

void store__finish(store_t *s, store_op_t *op)
{
    op->next = NULL;
    uv_mutex_lock(&s->mu);
    if (s->done_tail)
        s->done_tail->next = op;
    else
        s->done_head = op;
    s->done_tail = op;
    uv_mutex_unlock(&s->mu);
    uv_async_send(&s->wake);
}

/* Loop thread: counts op in the health, calls its callback, frees it. */
static void deliver(store_t *s, store_op_t *op)
{
    store_health_t *h = &s->h;
    if (op->reached_db)
        h->round_trips++;
    if (op->rc < 0 && op->rc != STORE_ENOENT) { /* ENOENT is an answer, not a fault */
        h->errors++;
        if (op->rc == STORE_ETIMEDOUT)
            h->timeouts++;
        snprintf(h->last_error, sizeof(h->last_error), "%s", op->err);
    }
    assert(h->pending > 0); /* invariant 2: every delivered op was counted */
    h->pending--;
    const char *err = op->rc < 0 ? op->err : NULL;
    void *ud = op->ud;
    int rc = op->rc;
    switch (op->kind) {
    case OP_MEMBER_RENEW:
        ((store_members_cb)op->cb)(ud, rc, err, op->now_ms, op->members, op->n_out);
        break;
    case OP_FLUSH_APPEND:
        ((store_ids_cb)op->cb)(ud, rc, err, op->ids, op->n_out);
        break;
    case OP_FLUSH_READ:
        ((store_rows_cb)op->cb)(ud, rc, err, op->rows, op->n_out);
        break;
    case OP_FLUSH_CURSORS:
        ((store_cursors_cb)op->cb)(ud, rc, err, op->cursors, op->n_out);
        break;
    case OP_IDENTITY:
        ((store_text_cb)op->cb)(ud, rc, err, rc == 0 && op->text ? op->text : "");
        break;
    case OP_FLUSH_PRUNE:
    case OP_JOB_PRUNE:
        ((store_count_cb)op->cb)(ud, rc, err, op->count);
        break;
    case OP_LEASE_ACQUIRE:
    case OP_LEASE_GET:
        if (!op->lease.holder)
            op->lease.holder = "";
        ((store_lease_cb)op->cb)(ud, rc, err, rc == 0 ? &op->lease : NULL);
        break;
    case OP_JOB_CLAIM:
        ((store_claim_cb)op->cb)(ud, rc, err, op->flag);
        break;
    case OP_JOB_START:
    case OP_JOB_UNSTART:
        if (!op->slot.node)
            op->slot.node = "";
        ((store_slot_cb)op->cb)(ud, rc, err, rc == 0 ? &op->slot : NULL);
        break;
    case OP_JOB_HISTORY:
        ((store_runs_cb)op->cb)(ud, rc, err, op->runs, op->n_out);
        break;
    case OP_MEMBER_LEAVE:
    case OP_FLUSH_MARK:
    case OP_LEASE_RELEASE:
    case OP_JOB_FINISH:
    case OP_TEST_SLEEP:
        ((store_done_cb)op->cb)(ud, rc, err);
        break;
    }
    op_free(op);
}

/* The last handle of the store is closed: frees it, then calls close_cb. */
static void on_async_close(uv_handle_t *h)
{
    store_t *s = h->data;
    void (*cb)(void *) = s->close_cb;
    void *ud = s->close_ud;
    uv_mutex_destroy(&s->mu);
    free(s->url);
    free(s->node_name);
    free(s);
    if (cb)
        cb(ud);
}

/* Delivers every finished op; once the backend has closed and nothing is
 * pending, closes the store's own handle. */
static void on_wake(uv_async_t *a)
{
    store_t *s = a->data;
    for (;;) {
        uv_mutex_lock(&s->mu);
        store_op_t *op = s->done_head;
        if (op) {
            s->done_head = op->next;
            if (!s->done_head)
                s->done_tail = NULL;
        }
        uv_mutex_unlock(&s->mu);
        if (!op)
            break;
        deliver(s, op);
    }
    if (s->backend_closed && s->h.pending == 0 && !uv_is_closing((uv_handle_t *)&s->wake))
        uv_close((uv_handle_t *)&s->wake, on_async_close);
}

void store__backend_closed(store_t *s)
{
    s->backend_closed = true;
    uv_async_send(&s->wake);
}

/* ---------------------------------------------------------------- state */

void store__set_state(store_t *s, enum store_state st, const char *msg)
{
    store_health_t *h = &s->h;
    if (msg && *msg)
        snprintf(h->last_error, sizeof(h->last_error), "%s", msg);
    if (h->state == st || h->state == STORE_FAILED)
        return;
    h->state = st;
    h->since_ms = store__wall_ms();
    enum store_event ev = st == STORE_UP     ? STORE_EV_UP
                          : st == STORE_DOWN ? STORE_EV_DOWN
                                             : STORE_EV_FAILED;
    if (st == STORE_UP)
        log_info("store", "%s store up", s->be->name);
    else if (st == STORE_DOWN)
        log_warn("store", "%s store down: %s", s->be->name, msg ? msg : "");
    else if (st == STORE_FAILED)
        log_error("store", "%s store failed: %s", s->be->name, msg ? msg : "");
    if (s->o.on_event && !s->closing)
        s->o.on_event(s->o.ud, ev, st == STORE_UP ? "" : (msg ? msg : ""));
}

void store__set_schema(store_t *s, int version)
{
    s->h.schema_version = version;
}

void store__set_session_lock(store_t *s, bool held)
{
    if (held != s->h.session_lock && s->node_name && !s->closing)
        log_info("store", "session lock of %s %s", s->node_name, held ? "taken" : "released");
    s->h.session_lock = held;
}

void store__count_reconnect(store_t *s)
{
    s->h.reconnects++;
}

void store_health(const store_t *s, store_health_t *out)
{
    *out = s->h;
}

/* ----------------------------------------------------------- open/close */

/* Whether n is a valid node, member, lease or job name. */
static bool name_ok(const char *n)
{
    if (!n)
        return false;
    size_t len = strlen(n);
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-' || c == ':';
        if (!ok)
            return false;
    }
    return true;
}

/* Checks an sqlite:// URL: an absolute path in a directory that exists and
 * is writable. One stat and one access() on the caller's thread, at open. */
static int check_sqlite_url(const char *url, char *err, size_t errlen)
{
    const char *path = url + strlen("sqlite://");
    if (path[0] != '/') {
        snprintf(err, errlen, "store url %s: expected sqlite:///absolute/path/file.db", url);
        return STORE_EINVAL;
    }
    size_t n = strlen(path);
    if (path[n - 1] == '/') {
        snprintf(err, errlen, "store url %s: names a directory, not a database file", url);
        return STORE_EINVAL;
    }
    char dir[4096];
    if (n >= sizeof(dir)) {
        snprintf(err, errlen, "store url: path too long");
        return STORE_EINVAL;
    }
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    if (access(dir, F_OK) != 0) {
        snprintf(err, errlen, "store url %s: directory %s: %s", url, dir, strerror(errno));
        return STORE_EINVAL;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "store url %s: directory %s is not writable: %s", url, dir,
                 strerror(errno));
        return STORE_EINVAL;
    }
    return 0;
}

const store_backend_t *store__test_backend; /* see store_int.h */

/* The backend for url's scheme, or NULL with a message in err. */
static const store_backend_t *pick_backend(const char *url, char *err, size_t errlen)
{
    if (strncmp(url, "test:", 5) == 0 && store__test_backend)
        return store__test_backend;
    if (strncmp(url, "sqlite://", 9) == 0)
        return check_sqlite_url(url, err, errlen) == 0 ? &store__sqlite : NULL;
    if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0)
        return &store__pg;
    snprintf(err, errlen,
             "store url %.200s: unknown scheme (expected sqlite:///path or postgresql://...)", url);
    return NULL;
}

/* Defined in store_pg.c: checks a PostgreSQL URL with libpq's parser. */
int store__pg_check_url(const char *url, char *err, size_t errlen);

int store_open(uv_loop_t *loop, const store_opts_t *opts, store_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!opts || !opts->url || !*opts->url) {
        snprintf(err, errlen, "store url is empty");
        return STORE_EINVAL;
    }
    if (opts->node_name && !name_ok(opts->node_name)) {
        snprintf(err, errlen, "store: node name %.80s: expected 1-64 of [A-Za-z0-9._:-]",
                 opts->node_name);
        return STORE_EINVAL;
    }
    const store_backend_t *be = pick_backend(opts->url, err, errlen);
    if (!be)
        return STORE_EINVAL;
    if (be == &store__pg && store__pg_check_url(opts->url, err, errlen) != 0)
        return STORE_EINVAL;

    store_t *s = xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->be = be;
    s->o = *opts;
    s->url = xstrdup(opts->url);
    s->node_name = opts->node_name ? xstrdup(opts->node_name) : NULL;
    s->o.url = s->url;
    s->o.node_name = s->node_name;
    if (s->o.statement_timeout_ms <= 0)
        s->o.statement_timeout_ms = 5000;
    if (s->o.connect_timeout_ms <= 0)
        s->o.connect_timeout_ms = 5000;
    if (s->o.busy_timeout_ms <= 0)
        s->o.busy_timeout_ms = 2000;
    if (s->o.retry_min_ms <= 0)
        s->o.retry_min_ms = 100;
    if (s->o.retry_max_ms < s->o.retry_min_ms)
        s->o.retry_max_ms = s->o.retry_min_ms > 5000 ? s->o.retry_min_ms : 5000;
    if (s->o.max_pending == 0)
        s->o.max_pending = 1024;
    s->h.backend = be->name;
    s->h.state = STORE_STARTING;
    s->h.since_ms = store__wall_ms();
    uv_mutex_init(&s->mu);
    uv_async_init(loop, &s->wake, on_wake);
    s->wake.data = s;
    s->impl = be->start(s, &s->o, s->url);
    *out = s;
    return 0;
}

void store_close(store_t *s, void (*close_cb)(void *ud), void *ud)
{
    if (s->closing)
        return;
    s->closing = true;
    s->close_cb = close_cb;
    s->close_ud = ud;
    s->be->close(s->impl);
}

/* ------------------------------------------------------------ submitting */

/* A new op owned by the caller until submit(), or NULL with *rc set when
 * the store refuses (closing, no callback, max_pending reached). */
static store_op_t *op_new(store_t *s, enum store_op_kind kind, void *cb, void *ud, int *rc)
{
    if (s->closing) {
        *rc = STORE_ECLOSED;
        return NULL;
    }
    if (!cb) {
        *rc = STORE_EINVAL;
        return NULL;
    }
    if (s->h.pending >= s->o.max_pending) {
        s->h.rejected++;
        *rc = STORE_EFULL;
        return NULL;
    }
    store_op_t *op = xcalloc(1, sizeof(*op));
    op->kind = kind;
    op->cb = cb;
    op->ud = ud;
    *rc = 0;
    return op;
}

/* A copy of str owned by op. */
static char *op_str(store_op_t *op, const char *str)
{
    return store__keep(op, str, strlen(str));
}

/* Hands op to the backend, which owns it until store__finish; returns 0. */
static int submit(store_t *s, store_op_t *op)
{
    s->h.pending++;
    s->be->submit(s->impl, op);
    return 0;
}

int store_member_renew(store_t *s, const char *name, uint64_t incarnation, const char *addr,
                       int64_t ttl_ms, store_members_cb cb, void *ud)
{
    if (!name_ok(name) || !addr || ttl_ms <= 0 || incarnation > INT64_MAX)
        return STORE_EINVAL;
    int rc;
    store_op_t *op = op_new(s, OP_MEMBER_RENEW, (void *)cb, ud, &rc);
    if (!op)
        return rc;
    op->name = op_str(op, name);
    op->addr = op_str(op, addr);
    op->a = (int64_t)incarnation;
    op->b = ttl_ms;
    return submit(s, op);
}

int store_member_leave(store_t *s, const char *name, uint64_t incarnation, store_done_cb cb,
                       void *ud)
{
    if (!name_ok(name) || incarnation > INT64_MAX)
        return STORE_EINVAL;
    int rc;
    store_op_t *op = op_new(s, OP_MEMBER_LEAVE, (void *)cb, ud, &rc);
    if (!op)
        return rc;
    op->name = op_str(op, name);
    op->a = (int64_t)incarnation;
    return submit(s, op);
}

int store_flushlog_append(store_t *s, const char *origin, uint64_t incarnation,
                          const store_flush_entry_t *entries, size_t n, store_ids_cb cb, void *ud)
{
    if (!name_ok(origin) || n == 0 || n > STORE_APPEND_MAX || !entries)
        return STORE_EINVAL; /* any incarnation: stored as its 64-bit pattern */
    for (size_t i = 0; i < n; i++)
        if ((entries[i].len && !entries[i].data) || entries[i].seq > INT64_MAX)
            return STORE_EINVAL;
    int rc;
    store_op_t *op = op_new(s, OP_FLUSH_APPEND, (void *)cb, ud, &rc);
    if (!op)
        return rc;
    op->name = op_str(op, origin);
    op->a = (int64_t)incarnation;
    op->entries = store__alloc(op, n * sizeof(*op->entries));
    op->n_in = n;
    for (size_t i = 0; i < n; i++) {
        op->entries[i].seq = entries[i].seq;
        op->entries[i].len = entries[i].len;
        op->entries[i].data = store__keep(op, entries[i].data, entries[i].len);
    }
    return submit(s, op);
}

int store_flushlog_read(store_t *s, int64_t after_id, size_t limit, store_rows_cb cb, void *ud)
{
    if (limit == 0 || limit > 100000 || after_id < 0)
        return STORE_EINVAL;
    int rc;
    store_op_t *op = op_new(s, OP_FLUSH_READ, (void *)cb, ud, &rc);
    if (!op)
        return rc;
    op->a = after_id;
    op->b = (int64_t)limit;
    return submit(s, op);
}

int store_flushlog_mark_read(store_t *s, const char *reader, int64_t id, store_done_cb cb, void *ud)
{
    if (!name_ok(reader) || id < 0)
        return STORE_EINVAL;
    int rc;
    store_op_t *op = op_new(s, OP_FLUSH_MARK, (void *)cb, ud, &rc);
    if (!op)
        return rc;
    op->name = op_str(op, reader);
    op->a = id;
    return submit(s, op);
}

int store_flushlog_prune(store_t *s, store_count_cb cb, void *ud)
{
    int rc;
    store_op_t *op = op_new(s, OP_FLUSH_PRUNE, (void *)cb, ud, &rc);
    if (!op)
        return rc;
    return submit(s, op);
}

int store_flushlog_cursors(store_t *s, store_cursors_cb cb, void *ud)
{
    int rc;
    store_op_t *op = op_new(s, OP_FLUSH_CURSORS, (void *)cb, ud, &rc);
    return op ? submit(s, op) : rc;
}

int store_identity(store_t *s, store_text_cb cb, void *ud)
{
    int rc;
    store_op_t *op = op_new(s, OP_IDENTITY, (void *)cb, ud, &rc);
    return op ? submit(s, op) : rc;
}

int store_lease_acquire(store_t *s, const char *name, const char *holder, int64_t ttl_ms,
                        store_lease_cb cb, void *ud)
{
    if (!name_ok(name) || !name_ok(holder) || ttl_ms <= 0)
        return STORE_EINVAL;
    int rc;
    store_op_t *op = op_new(s, OP_LEASE_ACQUIRE, (void *)cb, ud, &rc);
    if (!op)
        return rc;
    op->name = op_str(op, name);
    op->holder = op_str(op, holder);
    op->a = ttl_ms;
    return submit(s, op);
}

int store_lease_release(store_t *s, const char *name, const char *holder, store_done_cb cb,
                        void *ud)
{
    if (!name_ok(name) || !name_ok(holder))
        return STORE_EINVAL;
    int rc;
    store_op_t *op = op_new(s, OP_LEASE_RELEASE, (void *)cb, ud, &rc);
    if (!op)
        return rc;
    op->name = op_str(op, name);
    op->holder = op_str(op, holder);
    return submit(s, op);
}

int store_lease_get(store_t *s, const char *name, store_lease_cb cb, void *ud)
{
    if (!name_ok(name))
        return STORE_EINVAL;
    int rc;
    store_op_t *op = op_new(s, OP_LEASE_GET, (void *)cb, ud, &rc);
    if (!op)
        return rc;
    op->name = op_str(op, name);
    return submit(s, op);
}

int store_job_claim(store_t *s, const char *job, int64_t slot_ms, const char *node, int64_t epoch,
                    store_claim_cb cb, void *ud)
{
    if (!name_ok(job) || !name_ok(node))
        return STORE_EINVAL;
    int rc;
    store_op_t *op = op_new(s, OP_JOB_CLAIM, (void *)cb, ud, &rc);
    if (!op)
        return rc;
    op->name = op_str(op, job);
    op->holder = op_str(op, node);
    op->a = slot_ms;
    op->b = epoch;
    return submit(s, op);
}

static int job_start(store_t *s, enum store_op_kind kind, const char *job, int64_t slot_ms,
                     const char *node, int64_t epoch, const char *lease, store_slot_cb cb,
                     void *ud)
{
    if (!name_ok(job) || !name_ok(node) || (lease && !name_ok(lease)))
        return STORE_EINVAL;
    int rc;
    store_op_t *op = op_new(s, kind, (void *)cb, ud, &rc);
    if (!op)
        return rc;
    op->name = op_str(op, job);
    op->holder = op_str(op, node);
    op->addr = lease ? op_str(op, lease) : NULL;
    op->a = slot_ms;
    op->b = epoch;
    return submit(s, op);
}

int store_job_start(store_t *s, const char *job, int64_t slot_ms, const char *node, int64_t epoch,
                    const char *lease, store_slot_cb cb, void *ud)
{
    return job_start(s, OP_JOB_START, job, slot_ms, node, epoch, lease, cb, ud);
}

int store_job_unstart(store_t *s, const char *job, int64_t slot_ms, const char *node,
                      int64_t epoch, const char *lease, store_slot_cb cb, void *ud)
{
    return job_start(s, OP_JOB_UNSTART, job, slot_ms, node, epoch, lease, cb, ud);
}

int store_job_finish(store_t *s, const char *job, int64_t slot_ms, const char *status, int64_t code,
                     const void *output, size_t output_len, int64_t started_ms, int64_t ended_ms,
                     store_done_cb cb, void *ud)
{
    if (!name_ok(job) || !status || (output_len && !output))
        return STORE_EINVAL;
    int rc;
    store_op_t *op = op_new(s, OP_JOB_FINISH, (void *)cb, ud, &rc);
    if (!op)
        return rc;
    if (output_len > STORE_OUTPUT_MAX) { /* keep the tail */
        output = (const char *)output + (output_len - STORE_OUTPUT_MAX);
        output_len = STORE_OUTPUT_MAX;
    }
    op->name = op_str(op, job);
    op->holder = op_str(op, status);
    op->a = slot_ms;
    op->b = code;
    op->c = started_ms;
    op->d = ended_ms;
    op->bytes = (uint8_t *)store__keep(op, output, output_len);
    op->nbytes = output_len;
    return submit(s, op);
}

static int job_history(store_t *s, const char *job, size_t count, bool last, store_runs_cb cb,
                       void *ud)
{
    if (!name_ok(job) || count == 0 || count > 10000)
        return STORE_EINVAL;
    int rc;
    store_op_t *op = op_new(s, OP_JOB_HISTORY, (void *)cb, ud, &rc);
    if (!op)
        return rc;
    op->name = op_str(op, job);
    op->a = (int64_t)count;
    op->last_only = last;
    return submit(s, op);
}

int store_job_history(store_t *s, const char *job, size_t count, store_runs_cb cb, void *ud)
{
    return job_history(s, job, count, false, cb, ud);
}

int store_job_last(store_t *s, const char *job, store_runs_cb cb, void *ud)
{
    return job_history(s, job, 1, true, cb, ud);
}

int store_job_prune(store_t *s, int64_t before_ms, store_count_cb cb, void *ud)
{
    int rc;
    store_op_t *op = op_new(s, OP_JOB_PRUNE, (void *)cb, ud, &rc);
    if (!op)
        return rc;
    op->a = before_ms;
    return submit(s, op);
}

int store_test_sleep(store_t *s, int64_t ms, store_done_cb cb, void *ud)
{
    if (ms < 0)
        return STORE_EINVAL;
    int rc;
    store_op_t *op = op_new(s, OP_TEST_SLEEP, (void *)cb, ud, &rc);
    if (!op)
        return rc;
    op->a = ms;
    return submit(s, op);
}
