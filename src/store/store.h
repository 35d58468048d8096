/* store: the shared SQL store of a cohort cluster, behind one asynchronous
 * interface with two backends chosen by URL.
 *
 *   sqlite:///abs/path/file.db    embedded default: one host, WAL mode; several
 *                                 cohortds on one host share the file. Every
 *                                 SQLite call runs on the store's own worker
 *                                 thread, never on the loop thread.
 *   postgresql://... postgres://...
 *                                 libpq, non-blocking on the libuv loop
 *                                 (uv_poll on PQsocket). TLS, password files
 *                                 and every other connection option are
 *                                 libpq's: the URL is handed to it unchanged.
 *
 * Owns: the database connection, the schema (versioned migrations applied at
 * open), the per-node session lock, a bounded queue of pending operations and
 * the store's health (up/down, since when, last error, counters).
 * Never: blocks the loop thread; calls a callback from inside the call that
 * submitted the operation; judges time by this host's clock (expiries, lease
 * and member times are computed by the database from its own clock, and only
 * relative times "expires in N ms" travel back).
 *
 * Contract of every operation store_X(s, ..., cb, ud):
 *   - returns 0 and later calls cb exactly once, on the loop thread, with
 *     rc == 0 and the results, or rc < 0 (a STORE_E* code) and a one-line
 *     message. Results passed to cb are owned by the store and valid only
 *     during the call: copy what you keep.
 *   - returns a negative STORE_E* code when the operation is refused at once
 *     (bad argument, STORE_EFULL when max_pending operations are already
 *     waiting, STORE_ECLOSED after store_close); cb is then never called
 *     (the libuv convention).
 *   - while the store is down (PostgreSQL unreachable and waiting to retry)
 *     operations complete at once with STORE_EDOWN; while the first connection
 *     of a session is being made they wait for it.
 *   - one operation is one round trip (one statement or one transaction).
 *   - an operation that failed with STORE_EDOWN or STORE_ETIMEDOUT after it
 *     reached the database may still have taken effect (the connection broke
 *     before the answer came back); every operation is safe to repeat.
 * The store's handles keep the loop alive until store_close completes.
 *
 * Session lock (membership): when opts.node_name is set the store holds a
 * lock that lives exactly as long as this store session: a PostgreSQL session
 * advisory lock on hashtextextended('cohort:member:' || name), or an exclusive
 * open-file-description lock on the file "<db>.<name>.lock" next to the SQLite
 * database. A crashed process loses it at once, so store_member_renew reports
 * lock_held = false for it at once.
 *
 * PostgreSQL needs a session of its own: a pooler in transaction mode in
 * between (PgBouncer pool_mode=transaction) would break the session lock and
 * LISTEN; use session mode or a direct connection.
 *
 * Names (node, member, lease, job names) are 1..64 bytes of [A-Za-z0-9._:-]. */
#ifndef COHORT_STORE_H
#define COHORT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef struct store store_t;

/* Error codes: rc < 0 in callbacks and returns. */
enum {
    STORE_OK = 0,
    STORE_EINVAL = -1,    /* bad argument (refused at submit) */
    STORE_EFULL = -2,     /* too many pending operations (refused at submit) */
    STORE_ECLOSED = -3,   /* store_close was called (refused at submit) */
    STORE_EDOWN = -4,     /* no connection to the database */
    STORE_ETIMEDOUT = -5, /* statement timeout, busy timeout, or no answer */
    STORE_EDB = -6,       /* the database refused the statement */
    STORE_ECANCELED = -7, /* the store was closed before the operation ran */
    STORE_EFATAL = -8,    /* the store failed for good (see store_health) */
    STORE_ENOENT = -9,    /* the row the operation needs does not exist */
};

/* Short name of an error code ("down", "timeout", ...). */
const char *store_strerror(int rc);

enum store_state {
    STORE_STARTING = 0, /* first connection / migration not done yet */
    STORE_UP = 1,       /* the last contact with the database worked */
    STORE_DOWN = 2,     /* unreachable or failing; retrying by itself */
    STORE_FAILED = 3,   /* refused for good (newer schema, ...); no retry */
};

/* Events reported to opts.on_event, on the loop thread. */
enum store_event {
    STORE_EV_UP = 1,     /* first connection done, or recovered */
    STORE_EV_DOWN = 2,   /* lost the database; msg says why */
    STORE_EV_FAILED = 3, /* failed for good; msg says why; caller should exit */
};

typedef struct store_opts {
    const char *url;              /* required */
    const char *node_name;        /* this node: session lock; NULL for none */
    int64_t statement_timeout_ms; /* 0: 5000 */
    int64_t connect_timeout_ms;   /* 0: 5000 (PostgreSQL) */
    int64_t busy_timeout_ms;      /* 0: 2000 (SQLite lock waits) */
    int64_t retry_min_ms;         /* 0: 100; reconnect backoff, doubled ... */
    int64_t retry_max_ms;         /* 0: 5000; ... up to this, with jitter */
    size_t max_pending;           /* 0: 1024 operations queued or running */
    void (*on_event)(void *ud, enum store_event ev, const char *msg);
    /* PostgreSQL only: another session (or this one) appended to the flush
     * log, up to id last_id. Notifications sent while the store was down are
     * lost: read the log after STORE_EV_UP. SQLite has none: poll. */
    void (*on_flushlog_notify)(void *ud, int64_t last_id);
    void *ud; /* for on_event and on_flushlog_notify */
} store_opts_t;

typedef struct store_health {
    const char *backend; /* "sqlite" or "postgresql" */
    enum store_state state;
    int64_t since_ms;     /* wall clock (Unix ms) of the last state change */
    bool session_lock;    /* this node's session lock is held */
    char last_error[256]; /* "" if none yet */
    uint64_t round_trips; /* operations that reached the database */
    uint64_t errors;      /* operations failed (rc < 0 but STORE_ENOENT) */
    uint64_t timeouts;    /* ... of which STORE_ETIMEDOUT */
    uint64_t reconnects;  /* connections re-established after a loss */
    uint64_t rejected;    /* submits refused with STORE_EFULL */
    size_t pending;       /* operations queued or running now */
    int schema_version;   /* 0 until known */
} store_health_t;

/* Newest schema version this code knows (same for both backends). */
#define STORE_SCHEMA_VERSION 4 /* 2: job slots started_at; 3: cohort_meta (the store identity);
                                  4: serialized member renewals */

/* Opens a store on loop. Checks the URL (scheme, syntax; for SQLite an
 * absolute path whose directory exists and is writable) and returns 0 with
 * *out set, or a negative STORE_E* code with a message in err (the caller
 * should exit 2). The database itself is reached in the background: an
 * unreachable server is not an error here (state STARTING, then DOWN, and
 * the store keeps retrying). A schema newer than this code knows, or a
 * database that cannot be opened at all, is reported through on_event
 * (STORE_EV_FAILED) and store_health. The caller owns *out until store_close. */
int store_open(uv_loop_t *loop, const store_opts_t *opts, store_t **out, char *err, size_t errlen);

/* Starts closing: queued operations complete with STORE_ECANCELED (one
 * already sent to PostgreSQL may still have taken effect), the connection
 * (and with it the session lock) is dropped, then close_cb (may be NULL)
 * runs on the loop and s is freed. No new operation is accepted. Callbacks
 * may call store_close. */
void store_close(store_t *s, void (*close_cb)(void *ud), void *ud);

/* Copies the current health into *out. */
void store_health(const store_t *s, store_health_t *out);

/* ---------------------------------------------------------------- results */

typedef void (*store_done_cb)(void *ud, int rc, const char *err);

typedef struct store_member {
    const char *name;
    uint64_t incarnation;
    const char *addr;
    int64_t expires_in_ms; /* by the database clock; <= 0: expired */
    bool left;             /* left cleanly (store_member_leave) */
    bool lock_held;        /* its session lock is held by a live session */
    bool lock_free_is_exit; /* a free lock proves its process ended: SQLite's
                               kernel lock, freed only by the process's end or
                               after its row was marked left (a PostgreSQL
                               session lock is freed by a broken session too) */
} store_member_t;

typedef void (*store_members_cb)(void *ud, int rc, const char *err, int64_t db_now_ms,
                                 const store_member_t *members, size_t n);

typedef struct store_flush_entry {
    uint64_t seq;     /* the caller's sequence number */
    const void *data; /* opaque bytes */
    size_t len;
} store_flush_entry_t;

typedef struct store_flush_row {
    int64_t id; /* increasing in commit order */
    const char *origin;
    uint64_t incarnation;
    uint64_t seq;
    const void *data;
    size_t len;
} store_flush_row_t;

typedef struct store_cursor {
    const char *reader; /* a member name */
    int64_t last_id;    /* it has read the flush log up to this id */
} store_cursor_t;
typedef void (*store_cursors_cb)(void *ud, int rc, const char *err, const store_cursor_t *cursors,
                                 size_t n);
/* text is "" when rc < 0. */
typedef void (*store_text_cb)(void *ud, int rc, const char *err, const char *text);

typedef void (*store_ids_cb)(void *ud, int rc, const char *err, const int64_t *ids, size_t n);
typedef void (*store_rows_cb)(void *ud, int rc, const char *err, const store_flush_row_t *rows,
                              size_t n);
typedef void (*store_count_cb)(void *ud, int rc, const char *err, int64_t count);

typedef struct store_lease {
    bool acquired;         /* the caller holds it now (acquire only) */
    const char *holder;    /* "" if the lease never existed */
    int64_t epoch;         /* fencing token; 0 if it never existed */
    int64_t expires_in_ms; /* by the database clock; <= 0: free to take */
} store_lease_t;

/* lease is NULL when rc < 0. */
typedef void (*store_lease_cb)(void *ud, int rc, const char *err, const store_lease_t *lease);

typedef void (*store_claim_cb)(void *ud, int rc, const char *err, bool claimed);

/* A job slot's row: claimed -> started -> finished (see the Jobs operations). */
enum store_slot_state {
    STORE_SLOT_NONE = 0,     /* no row */
    STORE_SLOT_CLAIMED = 1,  /* claimed, never started: another claim may take it over */
    STORE_SLOT_STARTED = 2,  /* started by node under epoch; no outcome recorded yet */
    STORE_SLOT_FINISHED = 3, /* the outcome is recorded */
};

typedef struct store_slot {
    enum store_slot_state state; /* as the row is after the statement */
    const char *node;            /* "" when state is NONE */
    int64_t epoch;
} store_slot_t;

/* slot is NULL when rc < 0. */
typedef void (*store_slot_cb)(void *ud, int rc, const char *err, const store_slot_t *slot);

typedef struct store_run {
    const char *job;
    int64_t slot_ms; /* the scheduled time (the scheduler's clock) */
    const char *node;
    int64_t epoch;
    const char *status; /* "" while the run has not finished */
    bool started;       /* the slot was started (store_job_start); false: only claimed */
    int64_t code;       /* exit code or HTTP status */
    const void *output; /* tail of the output, at most STORE_OUTPUT_MAX bytes */
    size_t output_len;
    int64_t started_ms;
    int64_t ended_ms;
} store_run_t;

#define STORE_OUTPUT_MAX 4096
#define STORE_APPEND_MAX 1000 /* entries per store_flushlog_append */

typedef void (*store_runs_cb)(void *ud, int rc, const char *err, const store_run_t *runs, size_t n);

/* ------------------------------------------------------------- operations */

/* Members. renew upserts this node's row (expires_at = database now + ttl_ms;
 * a row with a newer incarnation is left alone) and returns the database's
 * now and every member row. leave marks (name, incarnation) as left cleanly.
 *
 * Margins: the database reads its clock after the submit, so a row (or a
 * lease) renewed with ttl lives at least until the caller's own clock at
 * submit + ttl, up to the two clocks' rate difference. A caller that stops
 * acting on it at submit time + ttl - margin (a margin for rate drift, e.g.
 * 1%) never acts on an expired row or lease. */
int store_member_renew(store_t *s, const char *name, uint64_t incarnation, const char *addr,
                       int64_t ttl_ms, store_members_cb cb, void *ud);
int store_member_leave(store_t *s, const char *name, uint64_t incarnation, store_done_cb cb,
                       void *ud);

/* Flush log. append stores 1..STORE_APPEND_MAX entries (copied at submit;
 * any 64-bit incarnation, stored as its bit pattern) and returns their ids, increasing in entry order and in commit order
 * across sessions. read returns up to limit rows with id > after_id, oldest
 * first. mark_read moves reader's cursor to id (never backwards). prune
 * deletes every entry that all live members (not left, not expired) have
 * read past, and returns how many. */
int store_flushlog_append(store_t *s, const char *origin, uint64_t incarnation,
                          const store_flush_entry_t *entries, size_t n, store_ids_cb cb, void *ud);
int store_flushlog_read(store_t *s, int64_t after_id, size_t limit, store_rows_cb cb, void *ud);
int store_flushlog_mark_read(store_t *s, const char *reader, int64_t id, store_done_cb cb,
                             void *ud);
int store_flushlog_prune(store_t *s, store_count_cb cb, void *ud);
/* Every reader's cursor (what mark_read recorded), by reader name. */
int store_flushlog_cursors(store_t *s, store_cursors_cb cb, void *ud);

/* The store's identity: a random id the schema got when it was created
 * (32 hex digits), the same for every node on the same database. Nodes
 * compare it (with the backend name) to learn whether they share one
 * arbiter. */
int store_identity(store_t *s, store_text_cb cb, void *ud);

/* Leases. acquire takes the lease if it is free, expired or released, or
 * renews it if holder holds it; atomically, so of concurrent acquirers one
 * wins. Taking it over increments the epoch; the holder renewing keeps it.
 * The result always describes the lease as it is after the statement.
 * release lets the lease expire now if holder holds it. get reads it
 * (acquired is false). */
int store_lease_acquire(store_t *s, const char *name, const char *holder, int64_t ttl_ms,
                        store_lease_cb cb, void *ud);
int store_lease_release(store_t *s, const char *name, const char *holder, store_done_cb cb,
                        void *ud);
int store_lease_get(store_t *s, const char *name, store_lease_cb cb, void *ud);

/* Jobs. A slot (job, slot_ms) has at most one row, whose life is
 * claimed -> started -> finished; only started is final for who runs it.
 *
 * claim is idempotent and re-claimable: it inserts the row as claimed by
 * (node, epoch); if the row exists, is still only claimed, and carries a
 * LOWER epoch, it takes it over (a new lease holder takes the slots an old
 * one claimed but never started); a repeat of the same claim (same node and
 * epoch) changes nothing. claimed is true when the row is then claimed by
 * (node, epoch) and not started: the caller may start it.
 *
 * start moves the row from claimed to started in one statement, only if it
 * is claimed by (node, epoch) and, when lease is not NULL, the lease row
 * names node with that epoch and has not expired by the database's clock
 * (the fence). It reports the row as it is afterwards, so a repeat after a
 * lost answer tells whether the first took effect: state STARTED with this
 * node and epoch means this caller started it, now or before. A slot is
 * started at most once, ever.
 *
 * finish records the outcome of a claimed slot (STORE_ENOENT if it was
 * never claimed); output longer than STORE_OUTPUT_MAX keeps its last
 * STORE_OUTPUT_MAX bytes. history returns up to count rows, newest slot
 * first (claimed-only rows too: started tells them apart); last returns the
 * newest STARTED (or finished) row, n = 0 if none: claimed-only rows do not
 * count as run. prune deletes rows whose slot_ms < before_ms and returns how
 * many. */
int store_job_claim(store_t *s, const char *job, int64_t slot_ms, const char *node, int64_t epoch,
                    store_claim_cb cb, void *ud);
int store_job_start(store_t *s, const char *job, int64_t slot_ms, const char *node, int64_t epoch,
                    const char *lease, store_slot_cb cb, void *ud);
/* unstart undoes a start that was never acted on: started -> claimed, only
 * if started by (node, epoch), not finished, and under the same fence as
 * start. While the lease row still names node with epoch, no other node has
 * led since the start, so none has seen the slot as started: the next
 * holder takes the claim over and runs it. For a node that is stopping with
 * a start it will not spawn. Reports the row as start does. */
int store_job_unstart(store_t *s, const char *job, int64_t slot_ms, const char *node,
                      int64_t epoch, const char *lease, store_slot_cb cb, void *ud);
int store_job_finish(store_t *s, const char *job, int64_t slot_ms, const char *status, int64_t code,
                     const void *output, size_t output_len, int64_t started_ms, int64_t ended_ms,
                     store_done_cb cb, void *ud);
int store_job_history(store_t *s, const char *job, size_t count, store_runs_cb cb, void *ud);
int store_job_last(store_t *s, const char *job, store_runs_cb cb, void *ud);
int store_job_prune(store_t *s, int64_t before_ms, store_count_cb cb, void *ud);

/* Tests and benchmarks: a statement that takes ms milliseconds in the
 * database (pg_sleep; SQLite: a sleeping SQL function), subject to the
 * statement timeout like any other. */
int store_test_sleep(store_t *s, int64_t ms, store_done_cb cb, void *ud);

#endif
