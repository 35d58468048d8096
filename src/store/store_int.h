/* store_int: what store.c shares with its two backends (store_sqlite.c,
 * store_pg.c). Not part of the public interface.
 *
 * Owns: the operation record (inputs copied at submit, results filled by a
 * backend) and the backend table.
 * Never: included outside src/store/ (except by the lease simulator's fake
 * backend, tests/sim/lease_sim.c).
 *
 * Life of an operation: store.c allocates and fills it (store_X), hands it to
 * be->submit; the backend runs it (on its worker thread, or on the loop for
 * PostgreSQL), fills rc/err and results, and calls store__finish (any
 * thread); store.c delivers the callback on the loop thread in a later loop
 * iteration and frees the op. */
#ifndef COHORT_STORE_INT_H
#define COHORT_STORE_INT_H

#include "store.h"

enum store_op_kind {
    OP_MEMBER_RENEW,
    OP_MEMBER_LEAVE,
    OP_FLUSH_APPEND,
    OP_FLUSH_READ,
    OP_FLUSH_MARK,
    OP_FLUSH_PRUNE,
    OP_FLUSH_CURSORS,
    OP_IDENTITY,
    OP_LEASE_ACQUIRE,
    OP_LEASE_RELEASE,
    OP_LEASE_GET,
    OP_JOB_CLAIM,
    OP_JOB_START,
    OP_JOB_UNSTART,
    OP_JOB_FINISH,
    OP_JOB_HISTORY,
    OP_JOB_PRUNE,
    OP_TEST_SLEEP,
};

struct store_blob { /* allocations owned by an op, freed with it */
    struct store_blob *next;
    char data[];
};

typedef struct store_op {
    struct store_op *next; /* in whichever queue holds it */
    enum store_op_kind kind;
    void *cb; /* the typed callback, cast back by store.c */
    void *ud;

    /* inputs (strings and bytes are copies owned by the op) */
    char *name;   /* member / lease / job name, origin, reader */
    char *holder; /* lease holder, job node, member addr, status */
    char *addr;   /* member addr; OP_JOB_START: the lease name, NULL for none */
    int64_t a, b, c, d, e;        /* numbers; meaning per kind (see store.c) */
    store_flush_entry_t *entries; /* OP_FLUSH_APPEND: n_in entries */
    size_t n_in;
    uint8_t *bytes; /* job output */
    size_t nbytes;
    bool last_only; /* OP_JOB_HISTORY from store_job_last */

    /* results */
    int rc;
    bool reached_db;  /* counts as a round trip */
    bool unavailable; /* failed because the database is unreachable */
    char err[256];
    int64_t now_ms;
    store_member_t *members;
    store_flush_row_t *rows;
    store_cursor_t *cursors; /* OP_FLUSH_CURSORS */
    const char *text;        /* OP_IDENTITY */
    store_run_t *runs;
    int64_t *ids;
    size_t n_out;
    store_lease_t lease;
    bool flag; /* claimed */
    store_slot_t slot; /* OP_JOB_START */
    int64_t count;
    struct store_blob *blobs;
} store_op_t;

typedef struct store_backend {
    const char *name;
    /* Starts the backend; returns an impl pointer. May fail only on input
     * already checked, so it does not report errors itself. */
    void *(*start)(store_t *s, const store_opts_t *o, const char *url);
    /* Takes ownership of op; runs it or finishes it with an error. */
    void (*submit)(void *impl, store_op_t *op);
    /* Finishes every op with STORE_ECANCELED, drops the connection, then
     * calls store__backend_closed(s) on the loop thread. */
    void (*close)(void *impl);
} store_backend_t;

extern const store_backend_t store__sqlite;
extern const store_backend_t store__pg;
/* A backend a test program sets before store_open (the lease simulator's
 * in-memory store, tests/sim/lease_sim.c): URLs "test:..." pick it.
 * NULL in the daemon, where such a URL is refused as an unknown scheme. */
extern const store_backend_t *store__test_backend;

/* Hands a completed op back (thread-safe). */
void store__finish(store_t *s, store_op_t *op);
/* Loop thread: the backend is connected and ready (EV_UP), lost the
 * database (EV_DOWN), or failed for good (EV_FAILED). */
void store__set_state(store_t *s, enum store_state st, const char *msg);
void store__set_schema(store_t *s, int version);
void store__set_session_lock(store_t *s, bool held);
void store__count_reconnect(store_t *s);
/* Loop thread: the backend has released everything. */
void store__backend_closed(store_t *s);
uv_loop_t *store__loop(store_t *s);

/* Sets op->rc and op->err ("prefix: detail"). */
void store__fail(store_op_t *op, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Copies n bytes (plus a NUL) into memory owned by op. */
char *store__keep(store_op_t *op, const void *p, size_t n);
/* Allocates n zeroed bytes owned by op. */
void *store__alloc(store_op_t *op, size_t n);

/* Current wall clock in Unix ms (for health and logs only). */
int64_t store__wall_ms(void);

#endif
