/* store_sqlite: the SQLite backend of the store (sqlite:///path/file.db).
 *
 * Owns: one worker thread that owns the sqlite3 connection and runs every
 * operation, one after another, each in its own transaction (BEGIN IMMEDIATE
 * for writes, so concurrent writers in other processes queue on SQLite's
 * file lock, bounded by busy_timeout); the schema migrations; this node's
 * session lock file "<db>.<name>.lock".
 * Never: touches SQLite from the loop thread; reads this host's clock for any
 * stored time (the database's julianday('now') is the clock, read once per
 * transaction); keeps a statement running past the statement timeout (a
 * progress handler interrupts it).
 *
 * Session lock: an open-file-description lock (F_OFD_SETLK, exclusive, whole
 * file). Unlike flock it can be tested without being taken (F_OFD_GETLK), so
 * probing another member never makes that member's own lock attempt fail;
 * unlike classic POSIX locks it is not dropped when this process closes some
 * other descriptor of the same file. The kernel drops it when the process
 * dies, so a crashed node's lock_held turns false at once.
 *
 * Threads: the loop thread queues ops under mu and signals cv; the worker
 * hands finished ops back through store__finish and state changes through
 * the `note` async. After store_close the worker cancels what is queued,
 * closes the database and the lock file, and exits; the loop joins it. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "mem.h"

typedef struct sq {
    store_t *s;
    const store_opts_t *o;
    char *path; /* database file */
    uv_thread_t thread;
    uv_async_t note; /* worker -> loop: state changed, or exited */

    uv_mutex_t mu; /* guards the fields up to `exited` */
    uv_cond_t cv;
    store_op_t *head, *tail; /* ops waiting for the worker */
    bool stop;               /* store_close: cancel and exit */
    bool state_dirty;        /* post_state() since the last on_note */
    enum store_state state;  /* latest state the worker posted */
    char state_msg[256];
    int schema;
    bool have_lock;
    bool exited; /* the worker is done; join it */

    /* worker thread only */
    sqlite3 *db;
    int lock_fd; /* this node's lock file, -1 if none */
    bool failed; /* refused for good: ops fail with EFATAL */
    char fail_msg[256];
    uint64_t deadline_ns; /* statement timeout of the running op */
    bool timed_out;       /* the progress handler or sleep hit it */
    char msg[256];        /* first SQLite error of the running op */
    int64_t retry_ms;     /* current backoff for reopening */
} sq_t;

/* ------------------------------------------------------------ migrations */

/* Migration N is migrations[N - 1]; each runs in the open transaction. */
static const char *const migrations[] = {
    /* 1: members, flush log, leases, job runs */
    "CREATE TABLE cohort_members ("
    " name TEXT PRIMARY KEY, incarnation INTEGER NOT NULL, addr TEXT NOT NULL,"
    " expires_at INTEGER NOT NULL, left_clean INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE cohort_flushlog ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL,"
    " incarnation INTEGER NOT NULL, seq INTEGER NOT NULL, blob BLOB NOT NULL,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE cohort_flushlog_cursors ("
    " reader TEXT PRIMARY KEY, last_id INTEGER NOT NULL);"
    "CREATE TABLE cohort_leases ("
    " name TEXT PRIMARY KEY, holder TEXT NOT NULL, epoch INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL);"
    "CREATE TABLE cohort_job_runs ("
    " job TEXT NOT NULL, slot_ms INTEGER NOT NULL, node TEXT NOT NULL,"
    " epoch INTEGER NOT NULL, claimed_at INTEGER NOT NULL, status TEXT,"
    " code INTEGER, output BLOB, started_ms INTEGER, ended_ms INTEGER,"
    " PRIMARY KEY (job, slot_ms));",
    /* 2: a slot's row is claimed, then started (started_at, the database's
     * clock), then finished; version 1 ran a slot as soon as it was claimed,
     * so its rows count as started. */
    "ALTER TABLE cohort_job_runs ADD COLUMN started_at INTEGER;"
    "UPDATE cohort_job_runs SET started_at = claimed_at;",
    /* 3: the store's identity (compared by nodes in the peer handshake) */
    "CREATE TABLE cohort_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT INTO cohort_meta(key, value) VALUES ('store_id', lower(hex(randomblob(16))));",
    /* 4: PostgreSQL's member renewals are serialized by a function; here the
     * renewal's write transaction (BEGIN IMMEDIATE) already does it. */
    "SELECT 1;",
};
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == STORE_SCHEMA_VERSION,
               "one SQLite migration per schema version");

#define NOW_MS_SQL "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"

/* ---------------------------------------------------------- small helpers */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Remembers the first error message of the running op; returns rc. */
static int note_err(sq_t *w, int rc)
{
    if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE || w->msg[0])
        return rc;
    int sys = sqlite3_system_errno(w->db); /* e.g. ENOSPC behind an I/O error */
    int prim = rc & 0xff;
    if (sys && (prim == SQLITE_IOERR || prim == SQLITE_FULL || prim == SQLITE_CANTOPEN))
        snprintf(w->msg, sizeof(w->msg), "%s (%s)", sqlite3_errmsg(w->db), strerror(sys));
    else
        snprintf(w->msg, sizeof(w->msg), "%s", sqlite3_errmsg(w->db));
    return rc;
}

static int exec(sq_t *w, const char *sql)
{
    return note_err(w, sqlite3_exec(w->db, sql, NULL, NULL, NULL));
}

/* Prepares sql; returns the statement or NULL (error noted in w->msg). */
static sqlite3_stmt *prep(sq_t *w, const char *sql, int *rc)
{
    sqlite3_stmt *st = NULL;
    *rc = note_err(w, sqlite3_prepare_v2(w->db, sql, -1, &st, NULL));
    return st;
}

static int step(sq_t *w, sqlite3_stmt *st)
{
    return note_err(w, sqlite3_step(st));
}

/* Runs a prepared statement that returns no rows and finalizes it. */
static int run_done(sq_t *w, sqlite3_stmt *st)
{
    int rc = step(w, st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int db_now(sq_t *w, int64_t *now)
{
    int rc;
    sqlite3_stmt *st = prep(w, NOW_MS_SQL, &rc);
    if (!st)
        return rc;
    rc = step(w, st);
    if (rc == SQLITE_ROW) {
        *now = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static const char *col_text(store_op_t *op, sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return store__keep(op, t ? (const char *)t : "", (size_t)sqlite3_column_bytes(st, i));
}

/* Returns arr, or a copy of its n elements in a twice larger array owned
 * by op when it is full. */
static void *grow(store_op_t *op, void *arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return arr;
    void *bigger = store__alloc(op, 2 * *cap * size);
    memcpy(bigger, arr, n * size);
    *cap *= 2;
    return bigger;
}

/* ------------------------------------------------------------ lock files */

static void lock_path(const sq_t *w, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s.%s.lock", w->path, name);
}

/* Takes this node's lock if it is free; returns whether we hold it. */
static bool lock_take(sq_t *w)
{
    if (!w->o->node_name)
        return false;
    if (w->lock_fd >= 0)
        return true;
    char path[4200];
    lock_path(w, w->o->node_name, path, sizeof(path));
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        log_warn("store", "cannot open lock file %s: %s", path, strerror(errno));
        return false;
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
        log_warn("store",
                 "lock file %s is held by another live process; retrying at each "
                 "renew",
                 path);
        close(fd);
        return false;
    }
    w->lock_fd = fd;
    return true;
}

/* Whether a live process holds member name's lock (tests, never takes it). */
static bool lock_probe(const sq_t *w, const char *name)
{
    char path[4200];
    lock_path(w, name, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    bool held = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
    close(fd);
    return held;
}

/* ------------------------------------------------------- worker -> loop */

static void post_state(sq_t *w, enum store_state st, const char *msg, int schema)
{
    uv_mutex_lock(&w->mu);
    w->state = st;
    snprintf(w->state_msg, sizeof(w->state_msg), "%s", msg ? msg : "");
    if (schema)
        w->schema = schema;
    w->have_lock = w->lock_fd >= 0;
    w->state_dirty = true;
    uv_mutex_unlock(&w->mu);
    uv_async_send(&w->note);
}

static void on_note_close(uv_handle_t *h)
{
    sq_t *w = h->data;
    store_t *s = w->s;
    uv_mutex_destroy(&w->mu);
    uv_cond_destroy(&w->cv);
    free(w->path);
    free(w);
    store__backend_closed(s);
}

static void on_note(uv_async_t *a)
{
    sq_t *w = a->data;
    uv_mutex_lock(&w->mu);
    bool dirty = w->state_dirty, exited = w->exited, lock = w->have_lock;
    enum store_state st = w->state;
    char msg[256];
    memcpy(msg, w->state_msg, sizeof(msg));
    int schema = w->schema;
    w->state_dirty = false;
    uv_mutex_unlock(&w->mu);
    if (dirty) {
        store__set_schema(w->s, schema);
        store__set_session_lock(w->s, lock);
        store__set_state(w->s, st, msg);
    }
    if (exited && !uv_is_closing((uv_handle_t *)a)) {
        uv_thread_join(&w->thread);
        uv_close((uv_handle_t *)a, on_note_close);
    }
}

/* --------------------------------------------------------------- opening */

static int progress(void *arg)
{
    sq_t *w = arg;
    if (mono_ns() > w->deadline_ns) {
        w->timed_out = true;
        return 1;
    }
    return 0;
}

/* cohort_sleep(ms): sleeps in the database (tests), up to the deadline. */
static void fn_sleep(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    sq_t *w = sqlite3_user_data(ctx);
    uint64_t end = mono_ns() + (uint64_t)sqlite3_value_int64(argv[0]) * 1000000u;
    while (mono_ns() < end) {
        if (mono_ns() > w->deadline_ns) {
            w->timed_out = true;
            sqlite3_result_error(ctx, "interrupted", -1);
            return;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    sqlite3_result_int(ctx, 1);
}

/* Applies missing migrations in one IMMEDIATE transaction. Returns 0, -1
 * (transient, msg set) or -2 (schema newer than known: fail for good). */
static int migrate(sq_t *w, int *version)
{
    int rc = exec(w, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK)
        return -1;
    rc = exec(w, "CREATE TABLE IF NOT EXISTS cohort_schema_version ("
                 " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
    int v = 0;
    sqlite3_stmt *st =
        rc == SQLITE_OK
            ? prep(w, "SELECT coalesce(max(version), 0) FROM cohort_schema_version", &rc)
            : NULL;
    if (st && (rc = step(w, st)) == SQLITE_ROW) {
        v = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_OK && v > STORE_SCHEMA_VERSION) {
        snprintf(w->msg, sizeof(w->msg),
                 "store schema version %d is newer than this cohortd knows (%d)", v,
                 STORE_SCHEMA_VERSION);
        sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
        return -2;
    }
    for (int i = v; rc == SQLITE_OK && i < STORE_SCHEMA_VERSION; i++) {
        rc = exec(w, migrations[i]);
        char sql[160];
        snprintf(sql, sizeof(sql),
                 "INSERT INTO cohort_schema_version(version, applied_at) VALUES (%d, "
                 "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER))",
                 i + 1);
        if (rc == SQLITE_OK)
            rc = exec(w, sql);
        if (rc == SQLITE_OK)
            log_info("store", "sqlite schema migrated to version %d", i + 1);
    }
    if (rc == SQLITE_OK)
        rc = exec(w, "COMMIT");
    if (rc != SQLITE_OK) {
        sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    *version = STORE_SCHEMA_VERSION;
    return 0;
}

/* Opens the database, sets it up and takes the session lock. Posts UP,
 * DOWN (retry later) or FAILED. */
static void try_open(sq_t *w)
{
    w->msg[0] = '\0';
    w->deadline_ns = mono_ns() + (uint64_t)w->o->statement_timeout_ms * 10 * 1000000u;
    int rc = sqlite3_open_v2(
        w->path, &w->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    int version = 0, m = -1;
    if (rc == SQLITE_OK) {
        sqlite3_extended_result_codes(w->db, 0);
        sqlite3_busy_timeout(w->db, (int)w->o->busy_timeout_ms);
        sqlite3_progress_handler(w->db, 1000, progress, w);
        sqlite3_create_function(w->db, "cohort_sleep", 1, SQLITE_UTF8, w, fn_sleep, NULL, NULL);
        rc = exec(w, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
        if (rc == SQLITE_OK)
            m = migrate(w, &version);
    } else if (w->db) {
        note_err(w, rc);
    } else {
        snprintf(w->msg, sizeof(w->msg), "out of memory");
    }
    if (m == 0) {
        lock_take(w);
        w->retry_ms = 0;
        post_state(w, STORE_UP, NULL, version);
        return;
    }
    char msg[256];
    snprintf(msg, sizeof(msg), "sqlite %.100s: %.140s", w->path, w->msg);
    sqlite3_close(w->db);
    w->db = NULL;
    if (m == -2) {
        w->failed = true;
        snprintf(w->fail_msg, sizeof(w->fail_msg), "%s", msg);
        post_state(w, STORE_FAILED, msg, 0);
        return;
    }
    int64_t max = w->o->retry_max_ms, min = w->o->retry_min_ms;
    w->retry_ms = w->retry_ms ? (w->retry_ms * 2 > max ? max : w->retry_ms * 2) : min;
    post_state(w, STORE_DOWN, msg, 0);
}

/* -------------------------------------------------------------- operations */

static int op_renew(sq_t *w, store_op_t *op)
{
    int rc;
    sqlite3_stmt *st = prep(w,
                            "INSERT INTO cohort_members(name, incarnation, addr, expires_at, "
                            "left_clean) VALUES (?1, ?2, ?3, ?4 + ?5, 0) "
                            "ON CONFLICT(name) DO UPDATE SET incarnation = excluded.incarnation,"
                            " addr = excluded.addr, expires_at = excluded.expires_at,"
                            " left_clean = 0"
                            " WHERE excluded.incarnation >= cohort_members.incarnation",
                            &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, op->a);
    sqlite3_bind_text(st, 3, op->addr, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, op->now_ms);
    sqlite3_bind_int64(st, 5, op->b);
    if ((rc = run_done(w, st)) != SQLITE_OK)
        return rc;
    if (w->lock_fd < 0 && w->o->node_name && strcmp(op->name, w->o->node_name) == 0)
        lock_take(w);
    st = prep(w,
              "SELECT name, incarnation, addr, expires_at - ?1, left_clean "
              "FROM cohort_members ORDER BY name",
              &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, op->now_ms);
    size_t cap = 8;
    op->members = store__alloc(op, cap * sizeof(*op->members));
    while ((rc = step(w, st)) == SQLITE_ROW) {
        op->members = grow(op, op->members, &cap, op->n_out, sizeof(*op->members));
        store_member_t *m = &op->members[op->n_out++];
        m->name = col_text(op, st, 0);
        m->incarnation = (uint64_t)sqlite3_column_int64(st, 1);
        m->addr = col_text(op, st, 2);
        m->expires_in_ms = sqlite3_column_int64(st, 3);
        m->left = sqlite3_column_int(st, 4) != 0;
        bool mine = w->o->node_name && strcmp(m->name, w->o->node_name) == 0;
        m->lock_held = mine ? w->lock_fd >= 0 : lock_probe(w, m->name);
        m->lock_free_is_exit = true;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int op_leave(sq_t *w, store_op_t *op)
{
    int rc;
    sqlite3_stmt *st = prep(w,
                            "UPDATE cohort_members SET left_clean = 1, expires_at = "
                            "min(expires_at, ?3) WHERE name = ?1 AND incarnation = ?2",
                            &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, op->a);
    sqlite3_bind_int64(st, 3, op->now_ms);
    rc = run_done(w, st);
    if (rc == SQLITE_OK && sqlite3_changes(w->db) == 0)
        store__fail(op, STORE_ENOENT, "member %s incarnation %lld not found", op->name,
                    (long long)op->a);
    return rc;
}

static int op_append(sq_t *w, store_op_t *op)
{
    int rc;
    sqlite3_stmt *st = prep(w,
                            "INSERT INTO cohort_flushlog(origin, incarnation, seq, blob, "
                            "created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                            &rc);
    if (!st)
        return rc;
    op->ids = store__alloc(op, op->n_in * sizeof(*op->ids));
    sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, op->a);
    sqlite3_bind_int64(st, 5, op->now_ms);
    for (size_t i = 0; i < op->n_in && rc == SQLITE_OK; i++) {
        sqlite3_bind_int64(st, 3, (int64_t)op->entries[i].seq);
        sqlite3_bind_blob(st, 4, op->entries[i].data, (int)op->entries[i].len, SQLITE_STATIC);
        rc = step(w, st);
        if (rc == SQLITE_DONE) {
            rc = SQLITE_OK;
            op->ids[op->n_out++] = sqlite3_last_insert_rowid(w->db);
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

static int op_read(sq_t *w, store_op_t *op)
{
    int rc;
    sqlite3_stmt *st = prep(w,
                            "SELECT id, origin, incarnation, seq, blob FROM cohort_flushlog "
                            "WHERE id > ?1 ORDER BY id LIMIT ?2",
                            &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, op->a);
    sqlite3_bind_int64(st, 2, op->b);
    size_t cap = 16;
    op->rows = store__alloc(op, cap * sizeof(*op->rows));
    while ((rc = step(w, st)) == SQLITE_ROW) {
        op->rows = grow(op, op->rows, &cap, op->n_out, sizeof(*op->rows));
        store_flush_row_t *r = &op->rows[op->n_out++];
        r->id = sqlite3_column_int64(st, 0);
        r->origin = col_text(op, st, 1);
        r->incarnation = (uint64_t)sqlite3_column_int64(st, 2);
        r->seq = (uint64_t)sqlite3_column_int64(st, 3);
        r->len = (size_t)sqlite3_column_bytes(st, 4);
        r->data = store__keep(op, sqlite3_column_blob(st, 4), r->len);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int op_mark(sq_t *w, store_op_t *op)
{
    int rc;
    sqlite3_stmt *st = prep(w,
                            "INSERT INTO cohort_flushlog_cursors(reader, last_id) VALUES (?1, ?2) "
                            "ON CONFLICT(reader) DO UPDATE SET last_id = "
                            "max(last_id, excluded.last_id)",
                            &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, op->a);
    return run_done(w, st);
}

static int op_prune(sq_t *w, store_op_t *op)
{
    int rc;
    sqlite3_stmt *st = prep(w,
                            "DELETE FROM cohort_flushlog WHERE id <= coalesce("
                            " (SELECT min(coalesce(c.last_id, 0)) FROM cohort_members m"
                            "  LEFT JOIN cohort_flushlog_cursors c ON c.reader = m.name"
                            "  WHERE m.left_clean = 0 AND m.expires_at > ?1),"
                            " (SELECT max(id) FROM cohort_flushlog))",
                            &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, op->now_ms);
    rc = run_done(w, st);
    op->count = sqlite3_changes(w->db);
    return rc;
}

static int op_cursors(sq_t *w, store_op_t *op)
{
    int rc;
    sqlite3_stmt *st =
        prep(w, "SELECT reader, last_id FROM cohort_flushlog_cursors ORDER BY reader", &rc);
    if (!st)
        return rc;
    size_t cap = 8;
    op->cursors = store__alloc(op, cap * sizeof(*op->cursors));
    while ((rc = step(w, st)) == SQLITE_ROW) {
        op->cursors = grow(op, op->cursors, &cap, op->n_out, sizeof(*op->cursors));
        store_cursor_t *c = &op->cursors[op->n_out++];
        c->reader = col_text(op, st, 0);
        c->last_id = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int op_identity(sq_t *w, store_op_t *op)
{
    int rc;
    sqlite3_stmt *st = prep(w, "SELECT value FROM cohort_meta WHERE key = 'store_id'", &rc);
    if (!st)
        return rc;
    rc = step(w, st);
    if (rc == SQLITE_ROW) {
        op->text = col_text(op, st, 0);
        rc = SQLITE_DONE;
    } else if (rc == SQLITE_DONE) {
        store__fail(op, STORE_ENOENT, "the store has no identity row");
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Fills op->lease from a row (acquired, holder, epoch, expires_in). */
static int lease_row(sq_t *w, store_op_t *op, sqlite3_stmt *st)
{
    int rc = step(w, st);
    if (rc == SQLITE_ROW) {
        op->lease.acquired = sqlite3_column_int(st, 0) != 0;
        op->lease.holder = col_text(op, st, 1);
        op->lease.epoch = sqlite3_column_int64(st, 2);
        op->lease.expires_in_ms = sqlite3_column_int64(st, 3);
        rc = step(w, st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int op_acquire(sq_t *w, store_op_t *op)
{
    int rc;
    sqlite3_stmt *st = prep(
        w,
        "INSERT INTO cohort_leases(name, holder, epoch, expires_at) VALUES (?1, ?2, 1, ?4 + ?3) "
        "ON CONFLICT(name) DO UPDATE SET"
        " epoch = CASE WHEN holder = ?2 AND expires_at > ?4 THEN epoch"
        "              WHEN expires_at <= ?4 THEN epoch + 1 ELSE epoch END,"
        " holder = CASE WHEN holder = ?2 OR expires_at <= ?4 THEN ?2 ELSE holder END,"
        " expires_at = CASE WHEN holder = ?2 OR expires_at <= ?4 THEN ?4 + ?3"
        "                   ELSE expires_at END "
        "RETURNING holder = ?2, holder, epoch, expires_at - ?4",
        &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, op->holder, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, op->a);
    sqlite3_bind_int64(st, 4, op->now_ms);
    return lease_row(w, op, st);
}

static int op_release(sq_t *w, store_op_t *op)
{
    int rc;
    sqlite3_stmt *st = prep(w,
                            "UPDATE cohort_leases SET expires_at = ?3 "
                            "WHERE name = ?1 AND holder = ?2 AND expires_at > ?3",
                            &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, op->holder, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, op->now_ms);
    return run_done(w, st);
}

static int op_get(sq_t *w, store_op_t *op)
{
    int rc;
    sqlite3_stmt *st = prep(w,
                            "SELECT 0, holder, epoch, expires_at - ?2 FROM cohort_leases "
                            "WHERE name = ?1",
                            &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, op->now_ms);
    return lease_row(w, op, st);
}

/* Reads slot (op->name, op->a) into op->slot (state NONE if no row). */
static int slot_row(sq_t *w, store_op_t *op)
{
    int rc;
    sqlite3_stmt *st = prep(w,
                            "SELECT CASE WHEN status IS NOT NULL THEN 3"
                            " WHEN started_at IS NOT NULL THEN 2 ELSE 1 END, node, epoch "
                            "FROM cohort_job_runs WHERE job = ?1 AND slot_ms = ?2",
                            &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, op->a);
    op->slot.state = STORE_SLOT_NONE;
    op->slot.node = "";
    op->slot.epoch = 0;
    rc = step(w, st);
    if (rc == SQLITE_ROW) {
        op->slot.state = (enum store_slot_state)sqlite3_column_int(st, 0);
        op->slot.node = col_text(op, st, 1);
        op->slot.epoch = sqlite3_column_int64(st, 2);
        rc = step(w, st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Inserts the claim, or takes over a claimed-only row of a lower epoch;
 * claimed: the row is now claimed by (node, epoch), not started. */
static int op_claim(sq_t *w, store_op_t *op)
{
    int rc;
    sqlite3_stmt *st =
        prep(w,
             "INSERT INTO cohort_job_runs(job, slot_ms, node, epoch, claimed_at) "
             "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(job, slot_ms) DO UPDATE SET"
             " node = excluded.node, epoch = excluded.epoch, claimed_at = excluded.claimed_at"
             " WHERE cohort_job_runs.started_at IS NULL AND cohort_job_runs.status IS NULL"
             " AND cohort_job_runs.epoch < excluded.epoch",
             &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, op->a);
    sqlite3_bind_text(st, 3, op->holder, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, op->b);
    sqlite3_bind_int64(st, 5, op->now_ms);
    if ((rc = run_done(w, st)) != SQLITE_OK || (rc = slot_row(w, op)) != SQLITE_OK)
        return rc;
    op->flag = op->slot.state == STORE_SLOT_CLAIMED && strcmp(op->slot.node, op->holder) == 0 &&
               op->slot.epoch == op->b;
    return SQLITE_OK;
}

/* claimed -> started (OP_JOB_UNSTART: started -> claimed), if the row is
 * (node, epoch)'s and the lease (op->addr, if any) names node with epoch,
 * unexpired; then reads the row back. */
static int op_start(sq_t *w, store_op_t *op)
{
    int rc;
    sqlite3_stmt *st = prep(w,
                            op->kind == OP_JOB_START
                                ? "UPDATE cohort_job_runs SET started_at = ?5 "
                                  "WHERE job = ?1 AND slot_ms = ?2 AND node = ?3 AND epoch = ?4"
                                  " AND started_at IS NULL AND status IS NULL"
                                  " AND (?6 IS NULL OR EXISTS (SELECT 1 FROM cohort_leases l"
                                  "  WHERE l.name = ?6 AND l.holder = ?3 AND l.epoch = ?4"
                                  "  AND l.expires_at > ?5))"
                                : "UPDATE cohort_job_runs SET started_at = NULL "
                                  "WHERE job = ?1 AND slot_ms = ?2 AND node = ?3 AND epoch = ?4"
                                  " AND started_at IS NOT NULL AND status IS NULL"
                                  " AND (?6 IS NULL OR EXISTS (SELECT 1 FROM cohort_leases l"
                                  "  WHERE l.name = ?6 AND l.holder = ?3 AND l.epoch = ?4"
                                  "  AND l.expires_at > ?5))",
                            &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, op->a);
    sqlite3_bind_text(st, 3, op->holder, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, op->b);
    sqlite3_bind_int64(st, 5, op->now_ms);
    if (op->addr)
        sqlite3_bind_text(st, 6, op->addr, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    if ((rc = run_done(w, st)) != SQLITE_OK)
        return rc;
    return slot_row(w, op);
}

static int op_finish(sq_t *w, store_op_t *op)
{
    int rc;
    sqlite3_stmt *st = prep(w,
                            "UPDATE cohort_job_runs SET status = ?3, code = ?4, output = ?5,"
                            " started_ms = ?6, ended_ms = ?7 WHERE job = ?1 AND slot_ms = ?2",
                            &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, op->a);
    sqlite3_bind_text(st, 3, op->holder, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, op->b);
    sqlite3_bind_blob(st, 5, op->bytes, (int)op->nbytes, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, op->c);
    sqlite3_bind_int64(st, 7, op->d);
    rc = run_done(w, st);
    if (rc == SQLITE_OK && sqlite3_changes(w->db) == 0)
        store__fail(op, STORE_ENOENT, "job %s slot %lld was never claimed", op->name,
                    (long long)op->a);
    return rc;
}

static int op_history(sq_t *w, store_op_t *op)
{
    int rc;
    sqlite3_stmt *st = prep(w,
                            "SELECT job, slot_ms, node, epoch, coalesce(status, ''),"
                            " coalesce(code, 0), coalesce(output, x''), coalesce(started_ms, 0),"
                            " coalesce(ended_ms, 0), started_at IS NOT NULL OR status IS NOT NULL"
                            " FROM cohort_job_runs WHERE job = ?1"
                            " AND (?3 = 0 OR started_at IS NOT NULL OR status IS NOT NULL) "
                            "ORDER BY slot_ms DESC LIMIT ?2",
                            &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, op->a);
    sqlite3_bind_int(st, 3, op->last_only);
    op->runs = store__alloc(op, (size_t)op->a * sizeof(*op->runs));
    while ((rc = step(w, st)) == SQLITE_ROW) {
        store_run_t *r = &op->runs[op->n_out++];
        r->job = col_text(op, st, 0);
        r->slot_ms = sqlite3_column_int64(st, 1);
        r->node = col_text(op, st, 2);
        r->epoch = sqlite3_column_int64(st, 3);
        r->status = col_text(op, st, 4);
        r->code = sqlite3_column_int64(st, 5);
        r->output_len = (size_t)sqlite3_column_bytes(st, 6);
        r->output = store__keep(op, sqlite3_column_blob(st, 6), r->output_len);
        r->started_ms = sqlite3_column_int64(st, 7);
        r->ended_ms = sqlite3_column_int64(st, 8);
        r->started = sqlite3_column_int(st, 9) != 0;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int op_job_prune(sq_t *w, store_op_t *op)
{
    int rc;
    sqlite3_stmt *st = prep(w, "DELETE FROM cohort_job_runs WHERE slot_ms < ?1", &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, op->a);
    rc = run_done(w, st);
    op->count = sqlite3_changes(w->db);
    return rc;
}

static int op_sleep(sq_t *w, store_op_t *op)
{
    int rc;
    sqlite3_stmt *st = prep(w, "SELECT cohort_sleep(?1)", &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, op->a);
    rc = step(w, st);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Per kind: the function and whether it only reads. */
static const struct {
    int (*fn)(sq_t *w, store_op_t *op);
    bool reads_only;
} ops[] = {
    [OP_MEMBER_RENEW] = {op_renew, false},    [OP_MEMBER_LEAVE] = {op_leave, false},
    [OP_FLUSH_APPEND] = {op_append, false},   [OP_FLUSH_READ] = {op_read, true},
    [OP_FLUSH_MARK] = {op_mark, false},       [OP_FLUSH_PRUNE] = {op_prune, false},
    [OP_FLUSH_CURSORS] = {op_cursors, true},  [OP_IDENTITY] = {op_identity, true},
    [OP_LEASE_ACQUIRE] = {op_acquire, false}, [OP_LEASE_RELEASE] = {op_release, false},
    [OP_LEASE_GET] = {op_get, true},          [OP_JOB_CLAIM] = {op_claim, false},
    [OP_JOB_START] = {op_start, false},       [OP_JOB_UNSTART] = {op_start, false},
    [OP_JOB_FINISH] = {op_finish, false},     [OP_JOB_HISTORY] = {op_history, true},
    [OP_JOB_PRUNE] = {op_job_prune, false},   [OP_TEST_SLEEP] = {op_sleep, true},
};

/* Maps a failed SQLite result to op->rc and op->err. */
static void map_error(sq_t *w, store_op_t *op, int rc)
{
    if (w->timed_out || rc == SQLITE_INTERRUPT) {
        store__fail(op, STORE_ETIMEDOUT, "sqlite: statement timeout (%lld ms)",
                    (long long)w->o->statement_timeout_ms);
        return;
    }
    switch (rc) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        store__fail(op, STORE_ETIMEDOUT, "sqlite: %s (busy timeout %lld ms)", w->msg,
                    (long long)w->o->busy_timeout_ms);
        return;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        op->unavailable = true;
        store__fail(op, STORE_EDOWN, "sqlite %s: %s", w->path, w->msg);
        return;
    default:
        store__fail(op, STORE_EDB, "sqlite: %s", w->msg);
    }
}

/* Runs op in its own transaction. */
static void run_op(sq_t *w, store_op_t *op)
{
    if (w->failed) {
        store__fail(op, STORE_EFATAL, "%s", w->fail_msg);
        return;
    }
    if (!w->db) {
        op->unavailable = true;
        store__fail(op, STORE_EDOWN, "sqlite store %s is not open", w->path);
        return;
    }
    w->msg[0] = '\0';
    w->timed_out = false;
    w->deadline_ns = mono_ns() + (uint64_t)w->o->statement_timeout_ms * 1000000u;
    op->reached_db = true;
    int rc = exec(w, ops[op->kind].reads_only ? "BEGIN" : "BEGIN IMMEDIATE");
    if (rc == SQLITE_OK)
        rc = db_now(w, &op->now_ms);
    if (rc == SQLITE_OK)
        rc = ops[op->kind].fn(w, op);
    if (rc == SQLITE_OK)
        rc = exec(w, "COMMIT");
    if (rc != SQLITE_OK) {
        if (!sqlite3_get_autocommit(w->db))
            sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
        map_error(w, op, rc);
    }
}

/* ----------------------------------------------------------------- worker */

static void cancel_all(sq_t *w, store_op_t *list)
{
    while (list) {
        store_op_t *op = list;
        list = op->next;
        store__fail(op, STORE_ECANCELED, "store closed");
        store__finish(w->s, op);
    }
}

static void worker(void *arg)
{
    sq_t *w = arg;
    try_open(w);
    for (;;) {
        uv_mutex_lock(&w->mu);
        while (!w->head && !w->stop) {
            if (!w->db && !w->failed) {
                if (uv_cond_timedwait(&w->cv, &w->mu, (uint64_t)w->retry_ms * 1000000u) ==
                    UV_ETIMEDOUT)
                    break;
            } else {
                uv_cond_wait(&w->cv, &w->mu);
            }
        }
        if (w->stop) {
            store_op_t *rest = w->head;
            w->head = w->tail = NULL;
            uv_mutex_unlock(&w->mu);
            cancel_all(w, rest);
            break;
        }
        store_op_t *op = w->head;
        if (op) {
            w->head = op->next;
            if (!w->head)
                w->tail = NULL;
        }
        uv_mutex_unlock(&w->mu);
        if (!w->db && !w->failed)
            try_open(w);
        if (!op)
            continue;
        bool had_lock = w->lock_fd >= 0;
        run_op(w, op);
        /* The state follows what the last operation found. */
        enum store_state st = w->state;
        char msg[256] = "";
        if (op->unavailable && st == STORE_UP) {
            st = STORE_DOWN;
            snprintf(msg, sizeof(msg), "%s", op->err);
        } else if (op->rc != STORE_EDOWN && op->reached_db && st == STORE_DOWN) {
            st = STORE_UP;
        }
        bool changed = had_lock != (w->lock_fd >= 0) || st != w->state;
        store__finish(w->s, op);
        if (changed)
            post_state(w, st, msg, 0);
    }
    sqlite3_close(w->db);
    w->db = NULL;
    if (w->lock_fd >= 0)
        close(w->lock_fd);
    w->lock_fd = -1;
    uv_mutex_lock(&w->mu);
    w->exited = true;
    uv_mutex_unlock(&w->mu);
    uv_async_send(&w->note);
}

/* ------------------------------------------------------------ the backend */

static void *sq_start(store_t *s, const store_opts_t *o, const char *url)
{
    sq_t *w = xcalloc(1, sizeof(*w));
    w->s = s;
    w->o = o;
    w->path = xstrdup(url + strlen("sqlite://"));
    w->lock_fd = -1;
    uv_mutex_init(&w->mu);
    uv_cond_init(&w->cv);
    uv_async_init(store__loop(s), &w->note, on_note);
    w->note.data = w;
    if (uv_thread_create(&w->thread, worker, w) != 0) {
        log_error("store", "cannot start the sqlite worker thread");
        abort(); /* like an allocation failure: nothing sensible to do */
    }
    return w;
}

static void sq_submit(void *impl, store_op_t *op)
{
    sq_t *w = impl;
    op->next = NULL;
    uv_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = op;
    else
        w->head = op;
    w->tail = op;
    uv_cond_signal(&w->cv);
    uv_mutex_unlock(&w->mu);
}

static void sq_close(void *impl)
{
    sq_t *w = impl;
    uv_mutex_lock(&w->mu);
    w->stop = true;
    uv_cond_signal(&w->cv);
    uv_mutex_unlock(&w->mu);
}

const store_backend_t store__sqlite = {"sqlite", sq_start, sq_submit, sq_close};
