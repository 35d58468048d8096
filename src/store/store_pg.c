/* store_pg: the PostgreSQL backend of the store (postgresql://...).
 *
 * Owns: one libpq connection driven without blocking from the libuv loop
 * (PQconnectStartParams/PQconnectPoll, then PQsendQueryParams, PQflush,
 * PQconsumeInput and PQgetResult, all under one uv_poll on PQsocket; a host
 * name is looked up first with uv_getaddrinfo, since libpq's own lookup in
 * PQconnectStartParams would block); its
 * session (statement_timeout, LISTEN cohort_flushlog, this node's session
 * advisory lock); the schema migrations; reconnection with exponential
 * backoff and jitter; one timer that bounds whatever is in progress (connect
 * and setup, or the running statement, or the wait before a retry).
 * Never: calls a blocking libpq function (PQexec, PQconnectdb, PQgetResult
 * while PQisBusy); reads this host's clock for a stored time (the SQL uses
 * cohort_now_ms(), the database's now() in ms); touches the connection after
 * calling out to user code (on_event, on_flushlog_notify) without checking
 * that the store was not closed meanwhile.
 *
 * States (phase):
 *   CONNECTING --PQconnectPoll OK--> SETUP --3 statements--> READY
 *   CONNECTING/SETUP/READY --error, timeout, server gone--> DOWN (lost())
 *   DOWN --retry timer--> CONNECTING
 *   SETUP --schema newer than known--> FAILED (no retry)
 *   any --store_close--> CLOSED
 * Operations wait in a FIFO while CONNECTING/SETUP, run one at a time in
 * READY, and fail at once with STORE_EDOWN in DOWN (STORE_EFATAL in FAILED).
 *
 * Invariants (tests/unit/test_store.c, PostgreSQL suite):
 *   1. a lost connection fails the running and queued operations with
 *      STORE_EDOWN, reports DOWN with since, and reconnects by itself
 *      (test_pg_restart);
 *   2. a statement past statement_timeout fails with STORE_ETIMEDOUT and is
 *      counted; the connection stays usable (test_statement_timeout);
 *   3. flush log ids increase in commit order: appends are serialized by a
 *      transaction advisory lock inside cohort_flushlog_append(), so a
 *      reader following by last id misses nothing (test_flushlog_follow). */
#include "store_int.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "log.h"
#include "mem.h"

#define OID_BOOL  16
#define OID_BYTEA 17
#define OID_INT8  20
#define OID_TEXT  25

/* Transaction advisory lock keys (arbitrary constants, "cohort" + n). */
#define KEY_MIGRATE "6868946285244530"

enum phase { CONNECTING, SETUP, READY, DOWN, FAILED, CLOSED };

typedef struct pg {
    store_t *s;
    const store_opts_t *o;
    const char *url;
    PGconn *conn; /* NULL in DOWN, FAILED, CLOSED */
    enum phase phase;
    int setup_step;  /* SETUP: which statement is running */
    uv_poll_t *poll; /* on PQsocket; NULL when not connected */
    int poll_fd;
    uv_timer_t timer;        /* connect/setup deadline, op deadline, retry */
    int open_handles;        /* timer + poll handles not yet closed */
    store_op_t *head, *tail; /* waiting */
    store_op_t *cur;         /* running (READY) */
    bool busy;               /* a statement was sent, results pending */
    PGresult *res;           /* result kept for the running statement */
    bool ever_up;
    bool have_lock;
    int64_t retry_ms;
    uint64_t rng;                /* xorshift state for jitter */
    char *dns_host;              /* the URL's host name to look up first, or NULL */
    uint64_t attempt;            /* connection attempts; drops a late DNS answer */
    uv_getaddrinfo_t *resolving; /* the running lookup, if any */
    int64_t notified;            /* highest flush log id notified this turn */
} pg_t;

/* ------------------------------------------------------------ migrations */

static const char *const migrations[] = {
    /* 1: members, flush log, leases, job runs; SQL helpers */
    "CREATE FUNCTION cohort_now_ms() RETURNS bigint LANGUAGE sql STABLE AS"
    " $f$ SELECT (extract(epoch FROM now()) * 1000)::bigint $f$;"
    "CREATE FUNCTION cohort_member_key(text) RETURNS bigint LANGUAGE sql IMMUTABLE AS"
    " $f$ SELECT hashtextextended('cohort:member:' || $1, 0) $f$;"
    "CREATE TABLE cohort_members ("
    " name text PRIMARY KEY, incarnation bigint NOT NULL, addr text NOT NULL,"
    " expires_at bigint NOT NULL, left_clean boolean NOT NULL DEFAULT false);"
    "CREATE TABLE cohort_flushlog ("
    " id bigserial PRIMARY KEY, origin text NOT NULL, incarnation bigint NOT NULL,"
    " seq bigint NOT NULL, blob bytea NOT NULL, created_at bigint NOT NULL);"
    "CREATE TABLE cohort_flushlog_cursors (reader text PRIMARY KEY, last_id bigint NOT NULL);"
    "CREATE TABLE cohort_leases ("
    " name text PRIMARY KEY, holder text NOT NULL, epoch bigint NOT NULL,"
    " expires_at bigint NOT NULL);"
    "CREATE TABLE cohort_job_runs ("
    " job text NOT NULL, slot_ms bigint NOT NULL, node text NOT NULL, epoch bigint NOT NULL,"
    " claimed_at bigint NOT NULL, status text, code bigint, output bytea,"
    " started_ms bigint, ended_ms bigint, PRIMARY KEY (job, slot_ms));"
    /* Appends entries (blobs concatenated, with their lengths) in one
     * statement; the advisory lock makes ids increase in commit order. */
    "CREATE FUNCTION cohort_flushlog_append(p_origin text, p_inc bigint, p_seqs bigint[],"
    " p_lens integer[], p_blobs bytea) RETURNS SETOF bigint LANGUAGE plpgsql AS $f$\n"
    "DECLARE off integer := 1; nid bigint;\n"
    "BEGIN\n"
    "  PERFORM pg_advisory_xact_lock(6868946285244531);\n"
    "  FOR i IN 1 .. coalesce(array_length(p_seqs, 1), 0) LOOP\n"
    "    INSERT INTO cohort_flushlog(origin, incarnation, seq, blob, created_at)\n"
    "      VALUES (p_origin, p_inc, p_seqs[i], substring(p_blobs FROM off FOR p_lens[i]),\n"
    "              cohort_now_ms()) RETURNING id INTO nid;\n"
    "    off := off + p_lens[i];\n"
    "    RETURN NEXT nid;\n"
    "  END LOOP;\n"
    "  PERFORM pg_notify('cohort_flushlog', nid::text);\n"
    "END $f$;",
    /* 2: a slot's row is claimed, then started (started_at, the database's
     * clock), then finished; version 1 ran a slot as soon as it was claimed,
     * so its rows count as started. claim inserts or takes over a
     * claimed-only row of a lower epoch (ON CONFLICT DO UPDATE locks the row
     * even when its WHERE is false), then reads the row in a new snapshot;
     * start is fenced by the lease row, locked FOR SHARE so a concurrent
     * takeover of the lease is ordered before or after it. */
    "ALTER TABLE cohort_job_runs ADD COLUMN started_at bigint;"
    "UPDATE cohort_job_runs SET started_at = claimed_at;"
    "CREATE FUNCTION cohort_job_slot(p_job text, p_slot bigint,"
    " OUT o_state integer, OUT o_node text, OUT o_epoch bigint) LANGUAGE sql STABLE AS $f$"
    " SELECT CASE WHEN j.status IS NOT NULL THEN 3 WHEN j.started_at IS NOT NULL THEN 2"
    " ELSE 1 END, j.node, j.epoch FROM cohort_job_runs j"
    " WHERE j.job = p_job AND j.slot_ms = p_slot $f$;"
    "CREATE FUNCTION cohort_job_claim(p_job text, p_slot bigint, p_node text, p_epoch bigint,"
    " OUT o_state integer, OUT o_node text, OUT o_epoch bigint) LANGUAGE plpgsql AS $f$\n"
    "BEGIN\n"
    "  INSERT INTO cohort_job_runs AS j (job, slot_ms, node, epoch, claimed_at)\n"
    "    VALUES (p_job, p_slot, p_node, p_epoch, cohort_now_ms())\n"
    "    ON CONFLICT (job, slot_ms) DO UPDATE SET node = EXCLUDED.node,\n"
    "      epoch = EXCLUDED.epoch, claimed_at = EXCLUDED.claimed_at\n"
    "    WHERE j.started_at IS NULL AND j.status IS NULL AND j.epoch < EXCLUDED.epoch;\n"
    "  SELECT s.o_state, s.o_node, s.o_epoch INTO o_state, o_node, o_epoch\n"
    "    FROM cohort_job_slot(p_job, p_slot) s;\n"
    "END $f$;"
    "CREATE FUNCTION cohort_job_start(p_job text, p_slot bigint, p_node text, p_epoch bigint,"
    " p_lease text, OUT o_state integer, OUT o_node text, OUT o_epoch bigint)"
    " LANGUAGE plpgsql AS $f$\n"
    "BEGIN\n"
    "  UPDATE cohort_job_runs j SET started_at = cohort_now_ms()\n"
    "    WHERE j.job = p_job AND j.slot_ms = p_slot AND j.node = p_node\n"
    "      AND j.epoch = p_epoch AND j.started_at IS NULL AND j.status IS NULL\n"
    "      AND (p_lease IS NULL OR EXISTS (SELECT 1 FROM cohort_leases l\n"
    "        WHERE l.name = p_lease AND l.holder = p_node AND l.epoch = p_epoch\n"
    "          AND l.expires_at > cohort_now_ms() FOR SHARE));\n"
    "  SELECT s.o_state, s.o_node, s.o_epoch INTO o_state, o_node, o_epoch\n"
    "    FROM cohort_job_slot(p_job, p_slot) s;\n"
    "END $f$;"
    "CREATE FUNCTION cohort_job_unstart(p_job text, p_slot bigint, p_node text, p_epoch bigint,"
    " p_lease text, OUT o_state integer, OUT o_node text, OUT o_epoch bigint)"
    " LANGUAGE plpgsql AS $f$\n"
    "BEGIN\n"
    "  UPDATE cohort_job_runs j SET started_at = NULL\n"
    "    WHERE j.job = p_job AND j.slot_ms = p_slot AND j.node = p_node\n"
    "      AND j.epoch = p_epoch AND j.started_at IS NOT NULL AND j.status IS NULL\n"
    "      AND (p_lease IS NULL OR EXISTS (SELECT 1 FROM cohort_leases l\n"
    "        WHERE l.name = p_lease AND l.holder = p_node AND l.epoch = p_epoch\n"
    "          AND l.expires_at > cohort_now_ms() FOR SHARE));\n"
    "  SELECT s.o_state, s.o_node, s.o_epoch INTO o_state, o_node, o_epoch\n"
    "    FROM cohort_job_slot(p_job, p_slot) s;\n"
    "END $f$;",
    /* 3: the store's identity (compared by nodes in the peer handshake) */
    "CREATE TABLE cohort_meta (key text PRIMARY KEY, value text NOT NULL);"
    "INSERT INTO cohort_meta(key, value) VALUES ('store_id',"
    " md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text))",
    /* 4: member renewals serialized: a transaction lock first, then the
     * renewal and the read of every row in a snapshot taken after it, so
     * of two nodes renewing at once the later sees the earlier's row (a
     * node that starts relies on it: WRITES.md rule 41). Times are the
     * transaction's start (cohort_now_ms), before the wait, as before: a row
     * read as live a little longer is the safe side. */
    "CREATE FUNCTION cohort_member_renew(p_name text, p_inc bigint, p_addr text, p_ttl bigint,"
    " p_have boolean, p_other boolean, OUT o_now bigint, OUT o_mine boolean, OUT o_name text,"
    " OUT o_inc bigint, OUT o_addr text, OUT o_expires_in bigint, OUT o_left boolean,"
    " OUT o_locked boolean) RETURNS SETOF record LANGUAGE plpgsql AS $f$\n"
    "BEGIN\n"
    "  PERFORM pg_advisory_xact_lock(6868946285244532);\n"
    "  RETURN QUERY WITH me AS (\n"
    "    INSERT INTO cohort_members AS m (name, incarnation, addr, expires_at, left_clean)\n"
    "    VALUES (p_name, p_inc, p_addr, cohort_now_ms() + p_ttl, false)\n"
    "    ON CONFLICT (name) DO UPDATE SET incarnation = EXCLUDED.incarnation,\n"
    "      addr = EXCLUDED.addr, expires_at = EXCLUDED.expires_at, left_clean = false\n"
    "    WHERE m.incarnation <= EXCLUDED.incarnation\n"
    "    RETURNING m.name, m.incarnation, m.addr, m.expires_at, m.left_clean),\n"
    "  lk AS (SELECT CASE WHEN p_have OR p_other THEN p_have\n"
    "    ELSE pg_try_advisory_lock(cohort_member_key(p_name)) END AS mine),\n"
    "  held AS (SELECT (l.classid::bigint << 32) | l.objid::bigint AS k FROM pg_locks l\n"
    "    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1\n"
    "    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())),\n"
    "  r AS (SELECT * FROM me UNION ALL SELECT c.name, c.incarnation, c.addr, c.expires_at,\n"
    "    c.left_clean FROM cohort_members c WHERE c.name NOT IN (SELECT me.name FROM me))\n"
    "  SELECT cohort_now_ms(), (SELECT mine FROM lk), r.name, r.incarnation, r.addr,\n"
    "    r.expires_at - cohort_now_ms(), r.left_clean,\n"
    "    cohort_member_key(r.name) IN (SELECT k FROM held)\n"
    "  FROM r ORDER BY r.name;\n"
    "END $f$;",
};
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == STORE_SCHEMA_VERSION,
               "one PostgreSQL migration per schema version");

/* ------------------------------------------------------------- parameters */

typedef struct params {
    int n;
    Oid types[8];
    const char *vals[8];
    int lens[8];
    int fmts[8];
    char num[8][24];
} params_t;

static void p_text(params_t *q, const char *v)
{
    q->types[q->n] = OID_TEXT;
    q->vals[q->n] = v;
    q->n++;
}

static void p_int(params_t *q, int64_t v)
{
    snprintf(q->num[q->n], sizeof(q->num[0]), "%lld", (long long)v);
    q->types[q->n] = OID_INT8;
    q->vals[q->n] = q->num[q->n];
    q->n++;
}

static void p_bool(params_t *q, bool v)
{
    q->types[q->n] = OID_BOOL;
    q->vals[q->n] = v ? "t" : "f";
    q->n++;
}

static void p_bytes(params_t *q, const void *data, size_t len)
{
    q->types[q->n] = OID_BYTEA;
    q->vals[q->n] = len ? data : "";
    q->lens[q->n] = (int)len;
    q->fmts[q->n] = 1; /* binary: the bytes as they are */
    q->n++;
}

/* Text params for the flush log append: "{1,2}" arrays; returned string is
 * malloc'ed, caller frees. */
static char *int_array(const store_op_t *op, bool lens)
{
    size_t cap = op->n_in * 22 + 3, n = 0;
    char *a = xmalloc(cap);
    a[n++] = '{';
    for (size_t i = 0; i < op->n_in; i++)
        n += (size_t)snprintf(a + n, cap - n, "%s%lld", i ? "," : "",
                              (long long)(lens ? op->entries[i].len : op->entries[i].seq));
    a[n++] = '}';
    a[n] = '\0';
    return a;
}

/* ------------------------------------------------------------- statements */

/* The renewal and the read of every row, serialized with the other nodes'
 * renewals (migration 4). */
static const char *const SQL_RENEW = "SELECT * FROM cohort_member_renew($1, $2, $3, $4, $5, $6)";

static const char *const SQL_LEAVE =
    "UPDATE cohort_members SET left_clean = true,"
    " expires_at = least(expires_at, cohort_now_ms()) WHERE name = $1 AND incarnation = $2";

static const char *const SQL_APPEND =
    "SELECT * FROM cohort_flushlog_append($1, $2, $3::bigint[], $4::integer[], $5)";

static const char *const SQL_READ =
    "SELECT id, origin, incarnation, seq, blob FROM cohort_flushlog WHERE id > $1 "
    "ORDER BY id LIMIT $2";

static const char *const SQL_MARK =
    "INSERT INTO cohort_flushlog_cursors(reader, last_id) VALUES ($1, $2) "
    "ON CONFLICT (reader) DO UPDATE SET "
    "last_id = greatest(cohort_flushlog_cursors.last_id, EXCLUDED.last_id)";

static const char *const SQL_PRUNE = "WITH d AS (DELETE FROM cohort_flushlog WHERE id <= coalesce("
                                     " (SELECT min(coalesce(c.last_id, 0)) FROM cohort_members m"
                                     "  LEFT JOIN cohort_flushlog_cursors c ON c.reader = m.name"
                                     "  WHERE NOT m.left_clean AND m.expires_at > cohort_now_ms()),"
                                     " (SELECT max(id) FROM cohort_flushlog)) RETURNING 1) "
                                     "SELECT count(*) FROM d";

static const char *const SQL_CURSORS =
    "SELECT reader, last_id FROM cohort_flushlog_cursors ORDER BY reader";

static const char *const SQL_IDENTITY = "SELECT value FROM cohort_meta WHERE key = 'store_id'";

static const char *const SQL_ACQUIRE =
    "INSERT INTO cohort_leases AS l (name, holder, epoch, expires_at)"
    " VALUES ($1, $2, 1, cohort_now_ms() + $3) "
    "ON CONFLICT (name) DO UPDATE SET"
    " epoch = CASE WHEN l.holder = $2 AND l.expires_at > cohort_now_ms() THEN l.epoch"
    "              WHEN l.expires_at <= cohort_now_ms() THEN l.epoch + 1 ELSE l.epoch END,"
    " holder = CASE WHEN l.holder = $2 OR l.expires_at <= cohort_now_ms() THEN $2"
    "               ELSE l.holder END,"
    " expires_at = CASE WHEN l.holder = $2 OR l.expires_at <= cohort_now_ms()"
    "                   THEN cohort_now_ms() + $3 ELSE l.expires_at END "
    "RETURNING l.holder = $2, l.holder, l.epoch, l.expires_at - cohort_now_ms()";

static const char *const SQL_RELEASE =
    "UPDATE cohort_leases SET expires_at = cohort_now_ms() "
    "WHERE name = $1 AND holder = $2 AND expires_at > cohort_now_ms()";

static const char *const SQL_GET =
    "SELECT false, holder, epoch, expires_at - cohort_now_ms() FROM cohort_leases "
    "WHERE name = $1";

static const char *const SQL_CLAIM =
    "SELECT coalesce(o_state, 0), coalesce(o_node, ''), coalesce(o_epoch, 0)"
    " FROM cohort_job_claim($1, $2, $3, $4)";

static const char *const SQL_START =
    "SELECT coalesce(o_state, 0), coalesce(o_node, ''), coalesce(o_epoch, 0)"
    " FROM cohort_job_start($1, $2, $3, $4, $5)";

static const char *const SQL_UNSTART =
    "SELECT coalesce(o_state, 0), coalesce(o_node, ''), coalesce(o_epoch, 0)"
    " FROM cohort_job_unstart($1, $2, $3, $4, $5)";

static const char *const SQL_FINISH =
    "UPDATE cohort_job_runs SET status = $3, code = $4, output = $5, started_ms = $6,"
    " ended_ms = $7 WHERE job = $1 AND slot_ms = $2";

static const char *const SQL_HISTORY =
    "SELECT job, slot_ms, node, epoch, coalesce(status, ''), coalesce(code, 0),"
    " coalesce(output, ''::bytea), coalesce(started_ms, 0), coalesce(ended_ms, 0),"
    " started_at IS NOT NULL OR status IS NOT NULL "
    "FROM cohort_job_runs WHERE job = $1"
    " AND (NOT $3 OR started_at IS NOT NULL OR status IS NOT NULL) "
    "ORDER BY slot_ms DESC LIMIT $2";

static const char *const SQL_JOB_PRUNE = "DELETE FROM cohort_job_runs WHERE slot_ms < $1";

static const char *const SQL_SLEEP = "SELECT pg_sleep($1 / 1000.0)";

/* Builds the statement and parameters of op. *arrays receives malloc'ed
 * strings the caller frees after sending (flush log append only). */
static const char *build(const pg_t *p, store_op_t *op, params_t *q, char **arrays)
{
    switch (op->kind) {
    case OP_MEMBER_RENEW: {
        bool mine = p->o->node_name && strcmp(op->name, p->o->node_name) == 0;
        p_text(q, op->name);
        p_int(q, op->a);
        p_text(q, op->addr);
        p_int(q, op->b);
        p_bool(q, mine && p->have_lock);
        p_bool(q, !mine);
        return SQL_RENEW;
    }
    case OP_MEMBER_LEAVE:
        p_text(q, op->name);
        p_int(q, op->a);
        return SQL_LEAVE;
    case OP_FLUSH_APPEND: {
        size_t total = 0;
        for (size_t i = 0; i < op->n_in; i++)
            total += op->entries[i].len;
        uint8_t *cat = store__alloc(op, total);
        for (size_t i = 0, off = 0; i < op->n_in; off += op->entries[i].len, i++)
            if (op->entries[i].len)
                memcpy(cat + off, op->entries[i].data, op->entries[i].len);
        arrays[0] = int_array(op, false);
        arrays[1] = int_array(op, true);
        p_text(q, op->name);
        p_int(q, op->a);
        p_text(q, arrays[0]);
        p_text(q, arrays[1]);
        p_bytes(q, cat, total);
        return SQL_APPEND;
    }
    case OP_FLUSH_READ:
        p_int(q, op->a);
        p_int(q, op->b);
        return SQL_READ;
    case OP_FLUSH_MARK:
        p_text(q, op->name);
        p_int(q, op->a);
        return SQL_MARK;
    case OP_FLUSH_PRUNE:
        return SQL_PRUNE;
    case OP_FLUSH_CURSORS:
        return SQL_CURSORS;
    case OP_IDENTITY:
        return SQL_IDENTITY;
    case OP_LEASE_ACQUIRE:
        p_text(q, op->name);
        p_text(q, op->holder);
        p_int(q, op->a);
        return SQL_ACQUIRE;
    case OP_LEASE_RELEASE:
        p_text(q, op->name);
        p_text(q, op->holder);
        return SQL_RELEASE;
    case OP_LEASE_GET:
        p_text(q, op->name);
        return SQL_GET;
    case OP_JOB_CLAIM:
        p_text(q, op->name);
        p_int(q, op->a);
        p_text(q, op->holder);
        p_int(q, op->b);
        return SQL_CLAIM;
    case OP_JOB_START:
    case OP_JOB_UNSTART:
        p_text(q, op->name);
        p_int(q, op->a);
        p_text(q, op->holder);
        p_int(q, op->b);
        p_text(q, op->addr); /* NULL: no lease */
        return op->kind == OP_JOB_START ? SQL_START : SQL_UNSTART;
    case OP_JOB_FINISH:
        p_text(q, op->name);
        p_int(q, op->a);
        p_text(q, op->holder);
        p_int(q, op->b);
        p_bytes(q, op->bytes, op->nbytes);
        p_int(q, op->c);
        p_int(q, op->d);
        return SQL_FINISH;
    case OP_JOB_HISTORY:
        p_text(q, op->name);
        p_int(q, op->a);
        p_bool(q, op->last_only);
        return SQL_HISTORY;
    case OP_JOB_PRUNE:
        p_int(q, op->a);
        return SQL_JOB_PRUNE;
    case OP_TEST_SLEEP:
        p_int(q, op->a);
        return SQL_SLEEP;
    }
    return NULL;
}

/* ----------------------------------------------------------------- results */

static int64_t v_int(const PGresult *r, int row, int col)
{
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static bool v_bool(const PGresult *r, int row, int col)
{
    return PQgetvalue(r, row, col)[0] == 't';
}

static const char *v_text(store_op_t *op, const PGresult *r, int row, int col)
{
    return store__keep(op, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

/* A bytea column (text format, hex) decoded into memory owned by op. */
static const void *v_bytes(store_op_t *op, const PGresult *r, int row, int col, size_t *len)
{
    size_t n = 0;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &n);
    if (!raw) {
        *len = 0;
        return store__alloc(op, 0);
    }
    const void *kept = store__keep(op, raw, n);
    PQfreemem(raw);
    *len = n;
    return kept;
}

static int64_t affected(const PGresult *r)
{
    return strtoll(PQcmdTuples((PGresult *)r), NULL, 10);
}

/* Fills op's results from a successful result. */
static void parse(pg_t *p, store_op_t *op, const PGresult *r)
{
    int n = PQntuples(r);
    switch (op->kind) {
    case OP_MEMBER_RENEW:
        op->members = store__alloc(op, (size_t)n * sizeof(*op->members));
        for (int i = 0; i < n; i++) {
            store_member_t *m = &op->members[i];
            if (i == 0) {
                op->now_ms = v_int(r, 0, 0);
                bool mine = p->o->node_name && strcmp(op->name, p->o->node_name) == 0;
                if (mine && v_bool(r, 0, 1) != p->have_lock) {
                    p->have_lock = v_bool(r, 0, 1);
                    store__set_session_lock(p->s, p->have_lock);
                }
            }
            m->name = v_text(op, r, i, 2);
            m->incarnation = (uint64_t)v_int(r, i, 3);
            m->addr = v_text(op, r, i, 4);
            m->expires_in_ms = v_int(r, i, 5);
            m->left = v_bool(r, i, 6);
            m->lock_held = v_bool(r, i, 7);
            m->lock_free_is_exit = false;
        }
        op->n_out = (size_t)n;
        break;
    case OP_FLUSH_APPEND:
        op->ids = store__alloc(op, (size_t)n * sizeof(*op->ids));
        for (int i = 0; i < n; i++)
            op->ids[i] = v_int(r, i, 0);
        op->n_out = (size_t)n;
        break;
    case OP_FLUSH_READ:
        op->rows = store__alloc(op, (size_t)n * sizeof(*op->rows));
        for (int i = 0; i < n; i++) {
            store_flush_row_t *row = &op->rows[i];
            row->id = v_int(r, i, 0);
            row->origin = v_text(op, r, i, 1);
            row->incarnation = (uint64_t)v_int(r, i, 2);
            row->seq = (uint64_t)v_int(r, i, 3);
            row->data = v_bytes(op, r, i, 4, &row->len);
        }
        op->n_out = (size_t)n;
        break;
    case OP_FLUSH_PRUNE:
        op->count = n ? v_int(r, 0, 0) : 0;
        break;
    case OP_FLUSH_CURSORS:
        op->cursors = store__alloc(op, (size_t)n * sizeof(*op->cursors));
        for (int i = 0; i < n; i++) {
            op->cursors[i].reader = v_text(op, r, i, 0);
            op->cursors[i].last_id = v_int(r, i, 1);
        }
        op->n_out = (size_t)n;
        break;
    case OP_IDENTITY:
        if (n)
            op->text = v_text(op, r, 0, 0);
        else
            store__fail(op, STORE_ENOENT, "the store has no identity row");
        break;
    case OP_LEASE_ACQUIRE:
    case OP_LEASE_GET:
        if (n) {
            op->lease.acquired = v_bool(r, 0, 0);
            op->lease.holder = v_text(op, r, 0, 1);
            op->lease.epoch = v_int(r, 0, 2);
            op->lease.expires_in_ms = v_int(r, 0, 3);
        }
        break;
    case OP_JOB_CLAIM:
    case OP_JOB_START:
    case OP_JOB_UNSTART:
        op->slot.state = n ? (enum store_slot_state)v_int(r, 0, 0) : STORE_SLOT_NONE;
        op->slot.node = n ? v_text(op, r, 0, 1) : "";
        op->slot.epoch = n ? v_int(r, 0, 2) : 0;
        op->flag = op->slot.state == STORE_SLOT_CLAIMED && strcmp(op->slot.node, op->holder) == 0 &&
                   op->slot.epoch == op->b;
        break;
    case OP_JOB_HISTORY:
        op->runs = store__alloc(op, (size_t)n * sizeof(*op->runs));
        for (int i = 0; i < n; i++) {
            store_run_t *run = &op->runs[i];
            run->job = v_text(op, r, i, 0);
            run->slot_ms = v_int(r, i, 1);
            run->node = v_text(op, r, i, 2);
            run->epoch = v_int(r, i, 3);
            run->status = v_text(op, r, i, 4);
            run->code = v_int(r, i, 5);
            run->output = v_bytes(op, r, i, 6, &run->output_len);
            run->started_ms = v_int(r, i, 7);
            run->ended_ms = v_int(r, i, 8);
            run->started = v_bool(r, i, 9);
        }
        op->n_out = (size_t)n;
        break;
    case OP_JOB_PRUNE:
        op->count = affected(r);
        break;
    case OP_MEMBER_LEAVE:
        if (affected(r) == 0)
            store__fail(op, STORE_ENOENT, "member %s incarnation %lld not found", op->name,
                        (long long)op->a);
        break;
    case OP_JOB_FINISH:
        if (affected(r) == 0)
            store__fail(op, STORE_ENOENT, "job %s slot %lld was never claimed", op->name,
                        (long long)op->a);
        break;
    case OP_FLUSH_MARK:
    case OP_LEASE_RELEASE:
    case OP_TEST_SLEEP:
        break;
    }
}

/* The first line of libpq's message for r (or the connection). */
static void first_line(char *out, size_t n, const char *msg)
{
    snprintf(out, n, "%s", msg && *msg ? msg : "unknown error");
    out[strcspn(out, "\n")] = '\0';
}

/* Whether an error means the connection (not the statement) failed. */
static bool conn_error(const pg_t *p, const PGresult *r)
{
    if (!p->conn || PQstatus(p->conn) == CONNECTION_BAD)
        return true;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (!state) /* libpq's own message: the connection failed */
        return true;
    return strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
           strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0;
}

/* ------------------------------------------------------------- connection */

static void lost(pg_t *p, const char *why);
static void connect_begin(pg_t *p);
static void start_next(pg_t *p);
static void on_poll(uv_poll_t *h, int status, int events);

static void maybe_closed(pg_t *p)
{
    if (p->phase == CLOSED && p->open_handles == 0) {
        store_t *s = p->s;
        free(p->dns_host);
        free(p);
        store__backend_closed(s);
    }
}

static void on_handle_close(uv_handle_t *h)
{
    pg_t *p = h->data;
    if (h != (uv_handle_t *)&p->timer)
        free(h);
    p->open_handles--;
    maybe_closed(p);
}

static void poll_stop(pg_t *p)
{
    if (p->poll) {
        uv_close((uv_handle_t *)p->poll, on_handle_close);
        p->poll = NULL;
        p->poll_fd = -1;
    }
}

/* Watches PQsocket for events (a new socket gets a new handle). */
static void poll_want(pg_t *p, int events)
{
    int fd = PQsocket(p->conn);
    if (p->poll && p->poll_fd != fd)
        poll_stop(p);
    if (fd < 0)
        return;
    if (!p->poll) {
        p->poll = xcalloc(1, sizeof(*p->poll));
        if (uv_poll_init(store__loop(p->s), p->poll, fd) != 0) {
            free(p->poll);
            p->poll = NULL;
            return;
        }
        p->poll->data = p;
        p->poll_fd = fd;
        p->open_handles++;
    }
    uv_poll_start(p->poll, events, on_poll);
}

/* Drops the connection (poll handle first: it must not watch a closed fd). */
static void drop_conn(pg_t *p)
{
    poll_stop(p);
    if (p->res)
        PQclear(p->res);
    p->res = NULL;
    if (p->conn)
        PQfinish(p->conn);
    p->conn = NULL;
    p->busy = false;
    if (p->have_lock) {
        p->have_lock = false;
        store__set_session_lock(p->s, false);
    }
}

static void fail_queue(pg_t *p, int rc, const char *msg)
{
    while (p->head) {
        store_op_t *op = p->head;
        p->head = op->next;
        op->unavailable = rc == STORE_EDOWN;
        store__fail(op, rc, "%s", msg);
        store__finish(p->s, op);
    }
    p->tail = NULL;
}

static uint64_t next_rand(pg_t *p)
{
    p->rng ^= p->rng << 13;
    p->rng ^= p->rng >> 7;
    p->rng ^= p->rng << 17;
    return p->rng;
}

static void on_timer(uv_timer_t *t)
{
    pg_t *p = t->data;
    char msg[200];
    switch (p->phase) {
    case DOWN:
        connect_begin(p);
        break;
    case CONNECTING:
    case SETUP:
        snprintf(msg, sizeof(msg), "postgresql: no connection within %lld ms",
                 (long long)(p->o->connect_timeout_ms + p->o->statement_timeout_ms));
        lost(p, msg);
        break;
    case READY:
        if (p->cur) {
            store_op_t *op = p->cur;
            p->cur = NULL;
            snprintf(msg, sizeof(msg), "postgresql: no answer within %lld ms",
                     (long long)(p->o->statement_timeout_ms + p->o->connect_timeout_ms));
            store__fail(op, STORE_ETIMEDOUT, "%s", msg);
            op->reached_db = true;
            store__finish(p->s, op);
            lost(p, msg);
        }
        break;
    case FAILED:
    case CLOSED:
        break;
    }
}

/* Connection lost (or never made): fails what is running and waiting,
 * reports DOWN and schedules a retry with backoff and jitter. */
static void lost(pg_t *p, const char *why)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", why);
    drop_conn(p);
    if (p->cur) {
        store_op_t *op = p->cur;
        p->cur = NULL;
        op->unavailable = true;
        op->reached_db = true;
        store__fail(op, STORE_EDOWN, "%s", msg);
        store__finish(p->s, op);
    }
    fail_queue(p, STORE_EDOWN, msg);
    p->phase = DOWN;
    int64_t min = p->o->retry_min_ms, max = p->o->retry_max_ms;
    p->retry_ms = p->retry_ms ? (p->retry_ms * 2 > max ? max : p->retry_ms * 2) : min;
    int64_t half = p->retry_ms / 2;
    int64_t delay = half + (int64_t)(next_rand(p) % (uint64_t)(p->retry_ms - half + 1));
    uv_timer_start(&p->timer, on_timer, (uint64_t)delay, 0);
    store__set_state(p->s, STORE_DOWN, msg); /* may call out: keep last */
}

/* Fails for good: no retry, every op fails with STORE_EFATAL. */
static void fail_for_good(pg_t *p, const char *why)
{
    drop_conn(p);
    uv_timer_stop(&p->timer);
    p->phase = FAILED;
    fail_queue(p, STORE_EFATAL, why);
    store__set_state(p->s, STORE_FAILED, why);
}

static void notice(void *arg, const char *msg)
{
    char line[256];
    first_line(line, sizeof(line), msg);
    log_debug("store", "postgresql: %s", line);
}

/* Starts libpq on the URL; hosts/addrs (NULL: libpq's own) override its
 * host with addresses already looked up, so PQconnectStartParams makes no
 * DNS query (it would block the loop); host stays for TLS and .pgpass. */
static void start_libpq(pg_t *p, const char *hosts, const char *addrs)
{
    /* Entries before dbname are defaults the URL may override (TCP
     * keepalives notice a vanished server while idle within about 11 s);
     * entries after it override the URL. */
    const char *keys[8] = {"keepalives_idle", "keepalives_interval", "keepalives_count", "dbname",
                           "fallback_application_name"};
    const char *vals[8] = {"5", "2", "3", p->url, "cohortd"};
    int n = 5;
    if (hosts) {
        keys[n] = "host";
        vals[n++] = hosts;
        keys[n] = "hostaddr";
        vals[n++] = addrs;
    }
    keys[n] = vals[n] = NULL;
    p->conn = PQconnectStartParams(keys, vals, 1);
    if (!p->conn || PQstatus(p->conn) == CONNECTION_BAD) {
        char msg[256];
        first_line(msg, sizeof(msg), p->conn ? PQerrorMessage(p->conn) : "out of memory");
        lost(p, msg);
        return;
    }
    PQsetNoticeProcessor(p->conn, notice, p);
    poll_want(p, UV_WRITABLE); /* as if PQconnectPoll said POLLING_WRITING */
}

typedef struct resolve {
    uv_getaddrinfo_t req;
    pg_t *p;
    uint64_t attempt; /* p->attempt when the lookup started */
} resolve_t;

/* Joins up to 8 addresses of res as "a1,a2" into addrs and repeats host as
 * many times into hosts (libpq pairs them one to one). */
static void address_lists(const char *host, const struct addrinfo *res, char *hosts, size_t hlen,
                          char *addrs, size_t alen)
{
    size_t hn = 0, an = 0;
    hosts[0] = addrs[0] = '\0';
    int count = 0;
    for (const struct addrinfo *ai = res; ai && count < 8; ai = ai->ai_next) {
        char ip[INET6_ADDRSTRLEN];
        if (ai->ai_family == AF_INET)
            uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, ip, sizeof(ip));
        else if (ai->ai_family == AF_INET6)
            uv_ip6_name((const struct sockaddr_in6 *)ai->ai_addr, ip, sizeof(ip));
        else
            continue;
        int a = snprintf(addrs + an, alen - an, "%s%s", count ? "," : "", ip);
        int h = snprintf(hosts + hn, hlen - hn, "%s%s", count ? "," : "", host);
        if (a < 0 || h < 0 || (size_t)a >= alen - an || (size_t)h >= hlen - hn)
            break;
        an += (size_t)a;
        hn += (size_t)h;
        count++;
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    resolve_t *r = req->data;
    pg_t *p = r->p;
    bool current = r->attempt == p->attempt && p->phase == CONNECTING && !p->conn;
    char hosts[2048], addrs[512];
    if (current && status == 0)
        address_lists(p->dns_host, res, hosts, sizeof(hosts), addrs, sizeof(addrs));
    uv_freeaddrinfo(res);
    if (p->resolving == req)
        p->resolving = NULL;
    free(r);
    p->open_handles--;
    if (!current) {
        maybe_closed(p);
        return;
    }
    if (status != 0 || !addrs[0]) {
        char msg[256];
        snprintf(msg, sizeof(msg), "postgresql: cannot resolve %.120s: %s", p->dns_host,
                 status ? uv_strerror(status) : "no address");
        lost(p, msg);
        return;
    }
    start_libpq(p, hosts, addrs);
}

/* Starts a connection attempt: a DNS lookup on the thread pool first when
 * the URL names a host, then libpq. */
static void connect_begin(pg_t *p)
{
    p->phase = CONNECTING;
    p->attempt++;
    uv_timer_start(&p->timer, on_timer,
                   (uint64_t)(p->o->connect_timeout_ms + p->o->statement_timeout_ms), 0);
    if (!p->dns_host) {
        start_libpq(p, NULL, NULL);
        return;
    }
    resolve_t *r = xcalloc(1, sizeof(*r));
    r->p = p;
    r->attempt = p->attempt;
    r->req.data = r;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(store__loop(p->s), &r->req, on_resolved, p->dns_host, NULL, &hints);
    if (rc != 0) {
        free(r);
        char msg[256];
        snprintf(msg, sizeof(msg), "postgresql: cannot resolve %.120s: %s", p->dns_host,
                 uv_strerror(rc));
        lost(p, msg);
        return;
    }
    p->resolving = &r->req;
    p->open_handles++;
}

/* The URL's host when libpq would look it up itself (one name, not an
 * address, not a socket directory, no hostaddr); else NULL. Several hosts
 * are left to libpq. Returns a malloc'ed copy. */
static char *host_to_resolve(const char *url)
{
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    if (!opts)
        return NULL;
    const char *host = NULL, *hostaddr = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o->val;
    }
    char *out = NULL;
    unsigned char buf[sizeof(struct in6_addr)];
    if (host && *host && !(hostaddr && *hostaddr) && !strchr(host, ',') && host[0] != '/' &&
        host[0] != '@' && inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1)
        out = xstrdup(host);
    PQconninfoFree(opts);
    return out;
}

/* Sends a statement (params NULL: simple protocol, may hold several). */
static bool send_sql(pg_t *p, const char *sql, const params_t *q)
{
    int ok = q ? PQsendQueryParams(p->conn, sql, q->n, q->types, q->vals, q->lens, q->fmts, 0)
               : PQsendQuery(p->conn, sql);
    if (!ok)
        return false;
    p->busy = true;
    int f = PQflush(p->conn);
    if (f < 0)
        return false;
    poll_want(p, f ? UV_READABLE | UV_WRITABLE : UV_READABLE);
    return true;
}

static void conn_failed(pg_t *p, const char *prefix)
{
    char line[200], msg[256];
    first_line(line, sizeof(line), PQerrorMessage(p->conn));
    snprintf(msg, sizeof(msg), "%s%s", prefix, line);
    lost(p, msg);
}

/* -------------------------------------------------------------- setup */

static void setup_step(pg_t *p)
{
    char sql[512];
    bool ok = true;
    switch (p->setup_step) {
    case 0:
        snprintf(sql, sizeof(sql),
                 "SET statement_timeout = %lld; LISTEN cohort_flushlog; BEGIN;"
                 " SELECT pg_advisory_xact_lock(" KEY_MIGRATE ");"
                 " CREATE TABLE IF NOT EXISTS cohort_schema_version (version integer PRIMARY KEY,"
                 " applied_at timestamptz NOT NULL DEFAULT now());"
                 " SELECT coalesce(max(version), 0) FROM cohort_schema_version",
                 (long long)p->o->statement_timeout_ms);
        ok = send_sql(p, sql, NULL);
        break;
    case 2: {
        params_t q = {0};
        p_text(&q, p->o->node_name);
        ok = send_sql(p, "SELECT pg_try_advisory_lock(cohort_member_key($1))", &q);
        break;
    }
    }
    if (!ok)
        conn_failed(p, "postgresql setup: ");
}

/* Sends migrations from version `from` (0-based count done) and COMMIT. */
static void send_migrations(pg_t *p, int from)
{
    size_t cap = 64, n = 0;
    for (int i = from; i < STORE_SCHEMA_VERSION; i++)
        cap += strlen(migrations[i]) + 128;
    char *sql = xmalloc(cap);
    for (int i = from; i < STORE_SCHEMA_VERSION; i++)
        n += (size_t)snprintf(sql + n, cap - n,
                              "%s; INSERT INTO cohort_schema_version(version) VALUES (%d);",
                              migrations[i], i + 1);
    snprintf(sql + n, cap - n, "COMMIT");
    bool ok = send_sql(p, sql, NULL);
    free(sql);
    if (!ok)
        conn_failed(p, "postgresql setup: ");
}

static void ready(pg_t *p)
{
    p->phase = READY;
    p->retry_ms = 0;
    uv_timer_stop(&p->timer);
    if (p->ever_up)
        store__count_reconnect(p->s);
    p->ever_up = true;
    store__set_state(p->s, STORE_UP, NULL);
    if (p->phase == READY) /* on_event may have closed the store */
        start_next(p);
}

/* Handles the result of setup statement p->setup_step. */
static void setup_result(pg_t *p, PGresult *r)
{
    char msg[300], line[200];
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        first_line(line, sizeof(line), PQresultErrorMessage(r));
        snprintf(msg, sizeof(msg), "postgresql setup: %s", line);
        lost(p, msg);
        return;
    }
    if (p->setup_step == 0) {
        int v = atoi(PQgetvalue(r, 0, 0));
        if (v > STORE_SCHEMA_VERSION) {
            snprintf(msg, sizeof(msg),
                     "store schema version %d is newer than this cohortd knows (%d)", v,
                     STORE_SCHEMA_VERSION);
            fail_for_good(p, msg);
            return;
        }
        if (v < STORE_SCHEMA_VERSION)
            log_info("store", "postgresql schema version %d, migrating to %d", v,
                     STORE_SCHEMA_VERSION);
        store__set_schema(p->s, STORE_SCHEMA_VERSION);
        p->setup_step = 1;
        send_migrations(p, v);
        return;
    }
    if (p->setup_step == 1 && p->o->node_name) {
        p->setup_step = 2;
        setup_step(p);
        return;
    }
    if (p->setup_step == 2) {
        p->have_lock = v_bool(r, 0, 0);
        if (!p->have_lock)
            log_warn("store",
                     "session lock of %s is held by another session; retrying at "
                     "each renew",
                     p->o->node_name);
        store__set_session_lock(p->s, p->have_lock);
    }
    ready(p);
}

/* ------------------------------------------------------------ operations */

static void start_next(pg_t *p)
{
    if (p->phase != READY || p->cur || !p->head)
        return;
    store_op_t *op = p->head;
    p->head = op->next;
    if (!p->head)
        p->tail = NULL;
    p->cur = op;
    params_t q = {0};
    char *arrays[2] = {NULL, NULL};
    const char *sql = build(p, op, &q, arrays);
    bool ok = send_sql(p, sql, &q);
    free(arrays[0]);
    free(arrays[1]);
    if (!ok) {
        conn_failed(p, "postgresql: ");
        return;
    }
    uv_timer_start(&p->timer, on_timer,
                   (uint64_t)(p->o->statement_timeout_ms + p->o->connect_timeout_ms), 0);
}

static void op_result(pg_t *p, PGresult *r)
{
    store_op_t *op = p->cur;
    p->cur = NULL;
    uv_timer_stop(&p->timer);
    op->reached_db = true;
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        parse(p, op, r);
        store__finish(p->s, op);
        start_next(p);
        return;
    }
    char line[200];
    first_line(line, sizeof(line), PQresultErrorMessage(r));
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (conn_error(p, r)) {
        op->unavailable = true;
        store__fail(op, STORE_EDOWN, "postgresql: %s", line);
        store__finish(p->s, op);
        lost(p, op->err);
        return;
    }
    if (state && strcmp(state, "57014") == 0)
        store__fail(op, STORE_ETIMEDOUT, "postgresql: %s (statement_timeout %lld ms)", line,
                    (long long)p->o->statement_timeout_ms);
    else
        store__fail(op, STORE_EDB, "postgresql: %s", line);
    store__finish(p->s, op);
    start_next(p);
}

/* ------------------------------------------------------------- the poll */

static void on_connect_poll(pg_t *p)
{
    PostgresPollingStatusType r = PQconnectPoll(p->conn);
    /* libpq may have closed the socket and opened another (next address)
     * with the same number, which epoll forgot: watch it afresh. */
    poll_stop(p);
    switch (r) {
    case PGRES_POLLING_READING:
        poll_want(p, UV_READABLE);
        break;
    case PGRES_POLLING_WRITING:
        poll_want(p, UV_WRITABLE);
        break;
    case PGRES_POLLING_OK:
        PQsetnonblocking(p->conn, 1);
        p->phase = SETUP;
        p->setup_step = 0;
        setup_step(p);
        break;
    default:
        conn_failed(p, "postgresql: ");
        break;
    }
}

/* Collects results until the statement is complete; keeps the first error
 * or else the last result. Returns the complete result, or NULL if more
 * input is needed (or the connection was lost: p->conn is then NULL). */
static PGresult *collect(pg_t *p)
{
    while (!PQisBusy(p->conn)) {
        PGresult *r = PQgetResult(p->conn);
        if (!r) {
            PGresult *done = p->res;
            p->res = NULL;
            p->busy = false;
            return done;
        }
        ExecStatusType st = PQresultStatus(r);
        bool keep_old = p->res && PQresultStatus(p->res) == PGRES_FATAL_ERROR;
        if (keep_old || st == PGRES_EMPTY_QUERY) {
            PQclear(r);
        } else {
            if (p->res)
                PQclear(p->res);
            p->res = r;
        }
    }
    return NULL;
}

static void deliver_notifies(pg_t *p)
{
    PGnotify *n;
    while ((n = PQnotifies(p->conn))) {
        int64_t id = strtoll(n->extra, NULL, 10);
        if (id > p->notified)
            p->notified = id;
        PQfreemem(n);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    pg_t *p = h->data;
    if (status < 0 && p->phase != CONNECTING) {
        /* libuv reports POLLERR as UV_EBADF; libpq knows the real reason */
        PQconsumeInput(p->conn);
        char msg[256];
        first_line(msg, sizeof(msg), PQerrorMessage(p->conn));
        lost(p, msg[0] ? msg : uv_strerror(status));
        return;
    }
    if (p->phase == CONNECTING) { /* also on POLLERR: PQconnectPoll reads it */
        on_connect_poll(p);
        return;
    }
    if (events & UV_WRITABLE) {
        int f = PQflush(p->conn);
        if (f < 0) {
            conn_failed(p, "postgresql: ");
            return;
        }
        if (f == 0)
            poll_want(p, UV_READABLE);
    }
    if (!(events & UV_READABLE))
        return;
    if (!PQconsumeInput(p->conn) || PQstatus(p->conn) == CONNECTION_BAD) {
        PGresult *r = p->busy ? collect(p) : NULL;
        if (r && p->phase == READY && p->cur) {
            op_result(p, r); /* reports the server's own message */
            PQclear(r);
            if (p->conn)
                conn_failed(p, "postgresql: ");
            return;
        }
        if (r)
            PQclear(r);
        conn_failed(p, "postgresql: ");
        return;
    }
    int64_t before = p->notified;
    deliver_notifies(p);
    PGresult *r = p->busy ? collect(p) : NULL;
    if (r) {
        if (p->phase == SETUP)
            setup_result(p, r);
        else if (p->phase == READY && p->cur)
            op_result(p, r);
        PQclear(r);
    }
    if (p->notified > before && p->o->on_flushlog_notify && p->phase != CLOSED)
        p->o->on_flushlog_notify(p->o->ud, p->notified); /* last: may close */
}

/* ------------------------------------------------------------ the backend */

int store__pg_check_url(const char *url, char *err, size_t errlen)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &msg);
    if (!opts) {
        char line[200];
        first_line(line, sizeof(line), msg ? msg : "cannot parse");
        snprintf(err, errlen, "store url: %s", line);
        if (msg)
            PQfreemem(msg);
        return -1;
    }
    PQconninfoFree(opts);
    return 0;
}

static void *pg_start(store_t *s, const store_opts_t *o, const char *url)
{
    pg_t *p = xcalloc(1, sizeof(*p));
    p->s = s;
    p->o = o;
    p->url = url;
    p->poll_fd = -1;
    p->rng = (uint64_t)uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)p;
    if (!p->rng)
        p->rng = 1;
    p->dns_host = host_to_resolve(url);
    uv_timer_init(store__loop(s), &p->timer);
    p->timer.data = p;
    p->open_handles = 1;
    connect_begin(p);
    return p;
}

static void pg_submit(void *impl, store_op_t *op)
{
    pg_t *p = impl;
    op->next = NULL;
    if (p->phase == DOWN || p->phase == FAILED) {
        bool down = p->phase == DOWN;
        op->unavailable = down;
        store_health_t h;
        store_health(p->s, &h);
        store__fail(op, down ? STORE_EDOWN : STORE_EFATAL, "%s",
                    h.last_error[0] ? h.last_error : "postgresql store down");
        store__finish(p->s, op);
        return;
    }
    if (p->tail)
        p->tail->next = op;
    else
        p->head = op;
    p->tail = op;
    start_next(p);
}

static void pg_close(void *impl)
{
    pg_t *p = impl;
    drop_conn(p);
    if (p->cur) {
        store__fail(p->cur, STORE_ECANCELED, "store closed");
        store__finish(p->s, p->cur);
        p->cur = NULL;
    }
    fail_queue(p, STORE_ECANCELED, "store closed");
    p->phase = CLOSED;
    if (p->resolving)
        uv_cancel((uv_req_t *)p->resolving); /* its callback still runs */
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_handle_close);
}

const store_backend_t store__pg = {"postgresql", pg_start, pg_submit, pg_close};
