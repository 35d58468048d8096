/* Unit tests for store: the shared SQL store, against a real database.
 *
 *   test_store sqlite   a fresh SQLite file in a temporary directory per test
 *   test_store pg       the PostgreSQL at $COHORT_TEST_PG_URL (fails, never
 *                       skips, when it is not set); the schema is dropped
 *                       before each test. ctest runs this through
 *                       tests/pg/pg-harness.sh run, which also provides
 *                       $COHORT_TEST_PG_HARNESS for stopping and starting
 *                       the server in test_pg_restart.
 *
 * Two store handles on one database model two nodes (n1 and n2). Every test
 * drives a real libuv loop until the callbacks fire (bounded generously; no
 * test asserts a duration) and ends with no handle left on the loop. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "log.h"
#include "store.h"

#define WAIT_MS 20000 /* upper bound for one operation; never reached when all is well */

static bool use_pg;
static const char *pg_url;
static uv_loop_t loop;
static char dir[256];
static char url[512];

/* ------------------------------------------------------------- the loop */

static void tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until *flag is true or ms pass; returns *flag. */
static bool run_until(const bool *flag, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, tick, 5, 5);
    uv_update_time(&loop);
    uint64_t end = uv_now(&loop) + ms;
    while (!*flag && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return *flag;
}

/* Runs the loop for about ms (only to let time pass in the database). */
static void run_for(uint64_t ms)
{
    bool never = false;
    run_until(&never, ms);
}

/* ----------------------------------------------------------- results */

typedef struct member_copy {
    char name[65];
    uint64_t inc;
    char addr[64];
    int64_t exp;
    bool left, lock;
} member_copy_t;

typedef struct res {
    int calls;
    bool done;
    int rc;
    char err[256];
    int64_t now;
    size_t n;
    member_copy_t m[16];
    int64_t ids[16];
    struct {
        int64_t id;
        char origin[65];
        uint64_t inc, seq;
        uint8_t data[64];
        size_t len;
    } rows[16];
    bool acquired;
    char holder[65];
    int64_t epoch, exp_in;
    bool claimed;
    int slot_state; /* store_job_start / unstart */
    char slot_node[65];
    int64_t slot_epoch;
    int64_t count;
    char text[80];
    struct {
        char reader[65];
        int64_t last_id;
    } cursors[8];
    struct {
        bool was_started;
        int64_t slot, epoch, code, started, ended;
        char status[32], node[65];
        uint8_t out[STORE_OUTPUT_MAX];
        size_t outlen;
    } runs[8];
} res_t;

static void got(res_t *r, int rc, const char *err)
{
    r->calls++;
    assert_int_equal(r->calls, 1); /* exactly one callback per operation */
    r->done = true;
    r->rc = rc;
    snprintf(r->err, sizeof(r->err), "%s", err ? err : "");
    if (rc == 0)
        assert_null(err);
    else
        assert_non_null(err);
}

static void cb_done(void *ud, int rc, const char *err)
{
    got(ud, rc, err);
}

static void cb_members(void *ud, int rc, const char *err, int64_t now, const store_member_t *m,
                       size_t n)
{
    res_t *r = ud;
    got(r, rc, err);
    r->now = now;
    r->n = n;
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++) {
        snprintf(r->m[i].name, sizeof(r->m[i].name), "%s", m[i].name);
        snprintf(r->m[i].addr, sizeof(r->m[i].addr), "%s", m[i].addr);
        r->m[i].inc = m[i].incarnation;
        r->m[i].exp = m[i].expires_in_ms;
        r->m[i].left = m[i].left;
        r->m[i].lock = m[i].lock_held;
    }
}

static void cb_ids(void *ud, int rc, const char *err, const int64_t *ids, size_t n)
{
    res_t *r = ud;
    got(r, rc, err);
    r->n = n;
    assert_true(n <= 16);
    if (n)
        memcpy(r->ids, ids, n * sizeof(*ids));
}

static void cb_rows(void *ud, int rc, const char *err, const store_flush_row_t *rows, size_t n)
{
    res_t *r = ud;
    got(r, rc, err);
    r->n = n;
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++) {
        r->rows[i].id = rows[i].id;
        snprintf(r->rows[i].origin, sizeof(r->rows[i].origin), "%s", rows[i].origin);
        r->rows[i].inc = rows[i].incarnation;
        r->rows[i].seq = rows[i].seq;
        assert_true(rows[i].len <= sizeof(r->rows[i].data));
        r->rows[i].len = rows[i].len;
        if (rows[i].len)
            memcpy(r->rows[i].data, rows[i].data, rows[i].len);
    }
}

static void cb_text(void *ud, int rc, const char *err, const char *text)
{
    res_t *r = ud;
    got(r, rc, err);
    snprintf(r->text, sizeof(r->text), "%s", text);
}

static void cb_cursors(void *ud, int rc, const char *err, const store_cursor_t *c, size_t n)
{
    res_t *r = ud;
    got(r, rc, err);
    r->n = n;
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        snprintf(r->cursors[i].reader, sizeof(r->cursors[i].reader), "%s", c[i].reader);
        r->cursors[i].last_id = c[i].last_id;
    }
}

static void cb_count(void *ud, int rc, const char *err, int64_t count)
{
    res_t *r = ud;
    got(r, rc, err);
    r->count = count;
}

static void cb_lease(void *ud, int rc, const char *err, const store_lease_t *l)
{
    res_t *r = ud;
    got(r, rc, err);
    if (rc == 0) {
        r->acquired = l->acquired;
        snprintf(r->holder, sizeof(r->holder), "%s", l->holder);
        r->epoch = l->epoch;
        r->exp_in = l->expires_in_ms;
    }
}

static void cb_claim(void *ud, int rc, const char *err, bool claimed)
{
    res_t *r = ud;
    got(r, rc, err);
    r->claimed = claimed;
}

static void cb_slot(void *ud, int rc, const char *err, const store_slot_t *slot)
{
    res_t *r = ud;
    got(r, rc, err);
    if (rc == 0) {
        assert_non_null(slot);
        r->slot_state = (int)slot->state;
        snprintf(r->slot_node, sizeof(r->slot_node), "%s", slot->node);
        r->slot_epoch = slot->epoch;
    } else {
        assert_null(slot);
    }
}

static void cb_runs(void *ud, int rc, const char *err, const store_run_t *runs, size_t n)
{
    res_t *r = ud;
    got(r, rc, err);
    r->n = n;
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        r->runs[i].was_started = runs[i].started;
        r->runs[i].slot = runs[i].slot_ms;
        r->runs[i].epoch = runs[i].epoch;
        r->runs[i].code = runs[i].code;
        r->runs[i].started = runs[i].started_ms;
        r->runs[i].ended = runs[i].ended_ms;
        snprintf(r->runs[i].status, sizeof(r->runs[i].status), "%s", runs[i].status);
        snprintf(r->runs[i].node, sizeof(r->runs[i].node), "%s", runs[i].node);
        r->runs[i].outlen = runs[i].output_len;
        if (runs[i].output_len)
            memcpy(r->runs[i].out, runs[i].output, runs[i].output_len);
    }
}

/* Waits for r's callback; fails the test if it never comes. */
static void wait_res(res_t *r)
{
    assert_true(run_until(&r->done, WAIT_MS));
}

#define RES(name) res_t *name = calloc(1, sizeof(res_t))

/* ------------------------------------------------------ store handles */

typedef struct node {
    store_t *s;
    int ups, downs, fails;
    char last_msg[256];
    int64_t notified; /* highest flush log id notified */
    bool closed;
} node_t;

static void on_event(void *ud, enum store_event ev, const char *msg)
{
    node_t *n = ud;
    if (ev == STORE_EV_UP)
        n->ups++;
    else if (ev == STORE_EV_DOWN)
        n->downs++;
    else
        n->fails++;
    snprintf(n->last_msg, sizeof(n->last_msg), "%s", msg);
}

static void on_notify(void *ud, int64_t id)
{
    node_t *n = ud;
    if (id > n->notified)
        n->notified = id;
}

static void on_closed(void *ud)
{
    ((node_t *)ud)->closed = true;
}

/* Nodes still open, so that teardown can close what a failed test left. */
static node_t *open_nodes[8];

static void track(node_t *n, bool add)
{
    for (size_t i = 0; i < 8; i++) {
        if (add && !open_nodes[i]) {
            open_nodes[i] = n;
            return;
        }
        if (!add && open_nodes[i] == n) {
            open_nodes[i] = NULL;
            return;
        }
    }
    assert_false(add);
}

static enum store_state state_of(const node_t *n)
{
    store_health_t h;
    store_health(n->s, &h);
    return h.state;
}

static bool state_is(node_t *n, enum store_state st, uint64_t ms)
{
    uv_update_time(&loop);
    uint64_t end = uv_now(&loop) + ms;
    while (state_of(n) != st && uv_now(&loop) < end)
        run_for(10);
    return state_of(n) == st;
}

/* Opens a store for node name on url with opts (NULL: defaults). */
static node_t *open_at(const char *u, const char *name, const store_opts_t *opts)
{
    node_t *n = calloc(1, sizeof(*n));
    store_opts_t o = {0};
    if (opts)
        o = *opts;
    o.url = u;
    o.node_name = name;
    o.on_event = on_event;
    o.on_flushlog_notify = on_notify;
    o.ud = n;
    char err[256] = "";
    int rc = store_open(&loop, &o, &n->s, err, sizeof(err));
    if (rc != 0) {
        free(n);
        fail_msg("store_open %s: %s", u, err);
    }
    track(n, true);
    return n;
}

/* Opens node name on the test database and waits until it is up. */
static node_t *open_node(const char *name, const store_opts_t *opts)
{
    node_t *n = open_at(url, name, opts);
    if (!state_is(n, STORE_UP, WAIT_MS))
        fail_msg("store %s not up: %s", name, n->last_msg);
    return n;
}

static void close_node(node_t *n)
{
    track(n, false);
    store_close(n->s, on_closed, n);
    assert_true(run_until(&n->closed, WAIT_MS));
    free(n);
}

/* ----------------------------------------------------- synchronous helpers */

static void renew(res_t *r, node_t *n, const char *name, uint64_t inc, int64_t ttl)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_member_renew(n->s, name, inc, "10.0.0.1:7381", ttl, cb_members, r), 0);
    wait_res(r);
}

static const member_copy_t *member(const res_t *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->m[i].name, name) == 0)
            return &r->m[i];
    fail_msg("member %s not in the renew result", name);
    return NULL;
}

static void acquire(res_t *r, node_t *n, const char *lease, const char *holder, int64_t ttl)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_lease_acquire(n->s, lease, holder, ttl, cb_lease, r), 0);
    wait_res(r);
    assert_int_equal(r->rc, 0);
}

static void lease_get(res_t *r, node_t *n, const char *lease)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_lease_get(n->s, lease, cb_lease, r), 0);
    wait_res(r);
    assert_int_equal(r->rc, 0);
}

static void done_op(res_t *r)
{
    wait_res(r);
}

/* Runs SQL directly against the test database (setup only). */
static void direct_sql(const char *sql)
{
    if (use_pg) {
        PGconn *c = PQconnectdb(pg_url);
        assert_int_equal(PQstatus(c), CONNECTION_OK);
        PQclear(PQexec(c, "SET client_min_messages = warning"));
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
            fail_msg("%s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
        PQfinish(c);
    } else {
        sqlite3 *db;
        assert_int_equal(sqlite3_open(url + strlen("sqlite://"), &db), SQLITE_OK);
        char *msg = NULL;
        if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
            fail_msg("%s: %s", sql, msg);
        sqlite3_close(db);
    }
}

/* ------------------------------------------------------ setup, teardown */

static int setup(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    if (use_pg) {
        snprintf(url, sizeof(url), "%s", pg_url);
        direct_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public");
    } else {
        snprintf(dir, sizeof(dir), "/tmp/cohort-store-XXXXXX");
        assert_non_null(mkdtemp(dir));
        snprintf(url, sizeof(url), "sqlite://%s/cohort.db", dir);
    }
    return 0;
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[768];
        snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(path);
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < 8; i++)
        if (open_nodes[i])
            close_node(open_nodes[i]);
    uv_run(&loop, UV_RUN_NOWAIT);
    if (!use_pg)
        remove_tree(dir);               /* first: a failed check below must not leave it */
    assert_false(uv_loop_alive(&loop)); /* every store closed every handle */
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

/* ------------------------------------------------------------------ tests */

/* Opening migrates to the newest schema and takes the session lock; a second
 * open of the same database (another node) finds it migrated. */
static void test_open_migrates(void **state)
{
    (void)state;
    node_t *a = open_node("n1", NULL);
    node_t *b = open_node("n2", NULL);
    store_health_t h;
    store_health(a->s, &h);
    assert_int_equal(h.schema_version, STORE_SCHEMA_VERSION);
    assert_true(h.session_lock);
    assert_int_equal(h.state, STORE_UP);
    assert_string_equal(h.backend, use_pg ? "postgresql" : "sqlite");
    assert_int_equal(a->ups, 1);
    store_health(b->s, &h);
    assert_true(h.session_lock);
    /* Both handles see the same store identity: 32 hex digits. */
    RES(r);
    assert_int_equal(store_identity(a->s, cb_text, r), 0);
    wait_res(r);
    assert_int_equal(r->rc, 0);
    char id_a[80];
    snprintf(id_a, sizeof(id_a), "%s", r->text);
    assert_int_equal(strlen(id_a), 32);
    assert_int_equal(strspn(id_a, "0123456789abcdef"), 32);
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_identity(b->s, cb_text, r), 0);
    wait_res(r);
    assert_string_equal(r->text, id_a);
    if (!use_pg) { /* another database file is another store */
        char other[600];
        snprintf(other, sizeof(other), "sqlite://%s/other.db", dir);
        node_t *c = open_at(other, "n3", NULL);
        memset(r, 0, sizeof(*r));
        assert_int_equal(store_identity(c->s, cb_text, r), 0);
        wait_res(r);
        assert_int_equal(r->rc, 0);
        assert_int_equal(strlen(r->text), 32);
        assert_string_not_equal(r->text, id_a);
        close_node(c);
    }
    free(r);
    close_node(a);
    close_node(b);
}

/* A writer outside the store holds the lock renewals take (PostgreSQL: the
 * transaction lock of cohort_member_renew; SQLite: the write transaction),
 * with a row it inserted: a renewal waits for it, and its answer shows the
 * row (WRITES.md rule 41: of two nodes renewing at once, the later sees the
 * earlier). Unserialized, the renewal answered at once without the row. */
static void test_renewals_serialized(void **state)
{
    (void)state;
    node_t *a = open_node("n1", NULL);
    RES(r);
    renew(r, a, "n1", 1, 60000); /* connected and migrated */
    const char *hold_pg = "BEGIN; SELECT pg_advisory_xact_lock(6868946285244532);"
                          " INSERT INTO cohort_members(name, incarnation, addr, expires_at)"
                          " VALUES ('held', 7, '10.0.0.9:7381', cohort_now_ms() + 60000)";
    const char *hold_sq = "BEGIN IMMEDIATE; INSERT INTO cohort_members(name, incarnation, addr,"
                          " expires_at) VALUES ('held', 7, '10.0.0.9:7381', 9000000000000)";
    PGconn *pc = NULL;
    sqlite3 *db = NULL;
    if (use_pg) {
        pc = PQconnectdb(pg_url);
        assert_int_equal(PQstatus(pc), CONNECTION_OK);
        PGresult *q = PQexec(pc, hold_pg);
        assert_int_equal(PQresultStatus(q), PGRES_COMMAND_OK);
        PQclear(q);
    } else {
        assert_int_equal(sqlite3_open(url + strlen("sqlite://"), &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, hold_sq, NULL, NULL, NULL), SQLITE_OK);
    }
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_member_renew(a->s, "n1", 1, "10.0.0.1:7381", 60000, cb_members, r), 0);
    run_for(300);
    assert_false(r->done); /* waits for the writer */
    if (use_pg) {
        PQclear(PQexec(pc, "COMMIT"));
        PQfinish(pc);
    } else {
        assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
    }
    wait_res(r);
    assert_int_equal(r->rc, 0);
    assert_int_equal(member(r, "held")->inc, 7);
    assert_true(member(r, "held")->exp > 0);
    free(r);
    close_node(a);
}

/* renew returns every member with database-clock expiries; a newer
 * incarnation wins over an older one; leave marks a member left. */
static void test_members(void **state)
{
    (void)state;
    node_t *a = open_node("n1", NULL);
    node_t *b = open_node("n2", NULL);
    RES(r);
    renew(r, a, "n1", 5, 10000);
    assert_int_equal(r->rc, 0);
    assert_true(r->now > 1700000000000LL);
    assert_int_equal(r->n, 1);
    assert_true(r->m[0].exp > 0 && r->m[0].exp <= 10000);
    assert_true(r->m[0].lock);
    assert_false(r->m[0].left);
    assert_int_equal(r->m[0].inc, 5);

    renew(r, b, "n2", 1, 10000);
    assert_int_equal(r->n, 2);
    assert_true(member(r, "n1")->lock);
    assert_true(member(r, "n2")->lock);
    assert_string_equal(member(r, "n2")->addr, "10.0.0.1:7381");

    renew(r, a, "n1", 4, 10000); /* an older incarnation changes nothing */
    assert_int_equal(member(r, "n1")->inc, 5);

    /* A member whose ttl ran out shows a negative expiry (bounded wait). */
    renew(r, b, "n3", 1, 1);
    for (int i = 0; i < 200 && member(r, "n3")->exp >= 0; i++) {
        run_for(10);
        renew(r, b, "n2", 1, 10000);
    }
    assert_true(member(r, "n3")->exp < 0);
    assert_false(member(r, "n3")->lock);

    memset(r, 0, sizeof(*r));
    assert_int_equal(store_member_leave(a->s, "n1", 5, cb_done, r), 0);
    done_op(r);
    assert_int_equal(r->rc, 0);
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_member_leave(a->s, "n1", 9, cb_done, r), 0);
    done_op(r);
    assert_int_equal(r->rc, STORE_ENOENT);
    renew(r, b, "n2", 1, 10000);
    assert_true(member(r, "n1")->left);
    assert_true(member(r, "n1")->exp <= 0);
    free(r);
    close_node(a);
    close_node(b);
}

/* A node's session lock is visible to others while its store lives and
 * gone as soon as it closes (a crash closes it the same way). */
static void test_member_lock_drops_on_close(void **state)
{
    (void)state;
    node_t *a = open_node("n1", NULL);
    node_t *b = open_node("n2", NULL);
    RES(r);
    renew(r, b, "n2", 1, 60000);
    renew(r, a, "n1", 1, 60000);
    assert_true(member(r, "n2")->lock);
    close_node(b);
    /* PostgreSQL frees the lock when the server ends the session, a moment
     * after the client hung up: poll for it, boundedly. */
    for (int i = 0; i < 500; i++) {
        renew(r, a, "n1", 1, 60000);
        if (!member(r, "n2")->lock)
            break;
        run_for(10);
    }
    assert_false(member(r, "n2")->lock);
    assert_true(member(r, "n2")->exp > 0); /* its row lives on until expiry */
    assert_true(member(r, "n1")->lock);

    /* The same name opened again takes the lock again. */
    b = open_node("n2", NULL);
    store_health_t h;
    for (int i = 0; i < 500; i++) {
        store_health(b->s, &h);
        if (h.session_lock)
            break;
        renew(r, b, "n2", 1, 60000);
        run_for(10);
    }
    assert_true(h.session_lock);
    renew(r, a, "n1", 1, 60000);
    assert_true(member(r, "n2")->lock);
    free(r);
    close_node(a);
    close_node(b);
}

static void child_renewed(void *ud, int rc, const char *err, int64_t now, const store_member_t *m,
                          size_t n)
{
    *(int *)ud = rc == 0 ? 1 : -1;
}

/* The child of test_member_crash: node n2 on its own loop; renews once,
 * says so on fd, then waits to be killed. */
static void child_node(int fd)
{
    uv_loop_t l;
    uv_loop_init(&l);
    store_opts_t o = {.url = url, .node_name = "n2"};
    store_t *s;
    char err[256];
    int done = 0;
    if (store_open(&l, &o, &s, err, sizeof(err)) != 0 ||
        store_member_renew(s, "n2", 1, "10.0.0.2:7381", 60000, child_renewed, &done) != 0)
        _exit(1);
    while (!done)
        uv_run(&l, UV_RUN_ONCE);
    if (done != 1 || write(fd, "x", 1) != 1)
        _exit(1);
    for (;;)
        pause();
}

/* A node killed with SIGKILL loses its session lock with its process: the
 * others see lock_held false while its row has not expired. */
static void test_member_crash(void **state)
{
    (void)state;
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork(); /* before this process starts any thread */
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        child_node(pfd[1]);
    }
    close(pfd[1]);
    char c;
    ssize_t got_byte = read(pfd[0], &c, 1);
    close(pfd[0]);
    if (got_byte != 1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("the child node did not start");
    }
    node_t *a = open_node("n1", NULL);
    RES(r);
    renew(r, a, "n1", 1, 60000);
    assert_true(member(r, "n2")->lock);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    renew(r, a, "n1", 1, 60000);
    /* SQLite: the kernel dropped the lock when the process died. PostgreSQL:
     * when the server saw the connection close; poll for it, boundedly. */
    for (int i = 0; use_pg && member(r, "n2")->lock && i < 500; i++) {
        run_for(10);
        renew(r, a, "n1", 1, 60000);
    }
    assert_false(member(r, "n2")->lock);
    assert_true(member(r, "n2")->exp > 0);
    assert_false(member(r, "n2")->left);
    free(r);
    close_node(a);
}

static const char blob0[] = "k\0\r\nx";
static const uint8_t blob2[] = {0xff, 0x00, 0x7f, 0x80};

/* append assigns increasing ids, read returns the bytes unchanged, prune
 * removes only what every live member has read past. */
static void test_flushlog(void **state)
{
    (void)state;
    node_t *a = open_node("n1", NULL);
    node_t *b = open_node("n2", NULL);
    RES(r);
    renew(r, a, "n1", 1, 60000);
    renew(r, b, "n2", 1, 60000);

    store_flush_entry_t e[3] = {
        {10, blob0, sizeof(blob0) - 1}, {11, "", 0}, {12, blob2, sizeof(blob2)}};
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_flushlog_append(a->s, "n1", 7, e, 3, cb_ids, r), 0);
    wait_res(r);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->n, 3);
    assert_true(r->ids[0] < r->ids[1] && r->ids[1] < r->ids[2]);
    int64_t id0 = r->ids[0], id1 = r->ids[1], id2 = r->ids[2];

    memset(r, 0, sizeof(*r));
    assert_int_equal(store_flushlog_read(b->s, 0, 10, cb_rows, r), 0);
    wait_res(r);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->n, 3);
    assert_int_equal(r->rows[0].id, id0);
    assert_string_equal(r->rows[0].origin, "n1");
    assert_int_equal(r->rows[0].inc, 7);
    assert_int_equal(r->rows[0].seq, 10);
    assert_int_equal(r->rows[0].len, sizeof(blob0) - 1);
    assert_memory_equal(r->rows[0].data, blob0, sizeof(blob0) - 1);
    assert_int_equal(r->rows[1].len, 0);
    assert_int_equal(r->rows[2].len, sizeof(blob2));
    assert_memory_equal(r->rows[2].data, blob2, sizeof(blob2));

    memset(r, 0, sizeof(*r));
    assert_int_equal(store_flushlog_read(b->s, id0, 1, cb_rows, r), 0);
    wait_res(r);
    assert_int_equal(r->n, 1);
    assert_int_equal(r->rows[0].id, id1);

    /* n1 read everything, n2 only the first: prune removes the first. */
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_flushlog_mark_read(a->s, "n1", id2, cb_done, r), 0);
    done_op(r);
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_flushlog_mark_read(b->s, "n2", id0, cb_done, r), 0);
    done_op(r);
    assert_int_equal(r->rc, 0);
    /* The cursors as recorded, by reader. */
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_flushlog_cursors(b->s, cb_cursors, r), 0);
    wait_res(r);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->n, 2);
    assert_string_equal(r->cursors[0].reader, "n1");
    assert_int_equal(r->cursors[0].last_id, id2);
    assert_string_equal(r->cursors[1].reader, "n2");
    assert_int_equal(r->cursors[1].last_id, id0);
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_flushlog_prune(a->s, cb_count, r), 0);
    wait_res(r);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->count, 1);

    /* A cursor never moves back. */
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_flushlog_mark_read(b->s, "n2", id2, cb_done, r), 0);
    done_op(r);
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_flushlog_mark_read(b->s, "n2", 0, cb_done, r), 0);
    done_op(r);
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_flushlog_prune(a->s, cb_count, r), 0);
    wait_res(r);
    assert_int_equal(r->count, 2);

    /* Ids are never reused after a prune emptied the log. */
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_flushlog_append(b->s, "n2", 1, e, 1, cb_ids, r), 0);
    wait_res(r);
    assert_int_equal(r->n, 1);
    assert_true(r->ids[0] > id2);
    int64_t id3 = r->ids[0];

    /* A member that left no longer holds the log back. */
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_member_leave(b->s, "n2", 1, cb_done, r), 0);
    done_op(r);
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_flushlog_mark_read(a->s, "n1", id3, cb_done, r), 0);
    done_op(r);
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_flushlog_prune(a->s, cb_count, r), 0);
    wait_res(r);
    assert_int_equal(r->count, 1);

    /* Any 64-bit incarnation (the cluster's are random) round-trips. */
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_flushlog_append(a->s, "n1", 0xce9f4718641bdc3dull, e, 1, cb_ids, r), 0);
    wait_res(r);
    assert_int_equal(r->rc, 0);
    int64_t id4 = r->ids[0];
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_flushlog_read(b->s, id4 - 1, 1, cb_rows, r), 0);
    wait_res(r);
    assert_int_equal(r->n, 1);
    assert_true(r->rows[0].inc == 0xce9f4718641bdc3dull);

    /* Argument checks refuse at once, without a callback. */
    assert_int_equal(store_flushlog_append(a->s, "n1", 1, e, 0, cb_ids, r), STORE_EINVAL);
    assert_int_equal(store_flushlog_append(a->s, "bad name", 1, e, 1, cb_ids, r), STORE_EINVAL);
    free(r);
    close_node(a);
    close_node(b);
}

/* Two nodes append while a third follows the log by its last id: the
 * follower sees every entry (ids increase in commit order, so none commits
 * below an id the follower already passed). */
static void test_flushlog_follow(void **state)
{
    (void)state;
    node_t *a = open_node("n1", NULL);
    node_t *b = open_node("n2", NULL);
    node_t *c = open_node("n3", NULL);
    res_t *r = calloc(3, sizeof(res_t));
    int64_t seen_max = 0, seen = 0;
    store_flush_entry_t e[2] = {{1, "a", 1}, {2, "bb", 2}};
    for (int round = 0; round < 40; round++) {
        memset(r, 0, 3 * sizeof(res_t));
        assert_int_equal(store_flushlog_append(a->s, "n1", 1, e, 2, cb_ids, &r[0]), 0);
        assert_int_equal(store_flushlog_append(b->s, "n2", 1, e, 2, cb_ids, &r[1]), 0);
        do { /* follow while the appends run */
            memset(&r[2], 0, sizeof(res_t));
            assert_int_equal(store_flushlog_read(c->s, seen_max, 16, cb_rows, &r[2]), 0);
            wait_res(&r[2]);
            assert_int_equal(r[2].rc, 0);
            for (size_t i = 0; i < r[2].n; i++) {
                assert_true(r[2].rows[i].id > seen_max);
                seen_max = r[2].rows[i].id;
                seen++;
            }
        } while (!r[0].done || !r[1].done);
        assert_int_equal(r[0].rc, 0);
        assert_int_equal(r[1].rc, 0);
    }
    for (;;) { /* the rest */
        memset(&r[2], 0, sizeof(res_t));
        assert_int_equal(store_flushlog_read(c->s, seen_max, 16, cb_rows, &r[2]), 0);
        wait_res(&r[2]);
        assert_int_equal(r[2].rc, 0);
        if (r[2].n == 0)
            break;
        seen_max = r[2].rows[r[2].n - 1].id;
        seen += (int64_t)r[2].n;
    }
    assert_int_equal(seen, 40 * 4);
    free(r);
    close_node(a);
    close_node(b);
    close_node(c);
}

/* PostgreSQL: an append by one node is notified to the others (LISTEN). */
static void test_flushlog_notify(void **state)
{
    (void)state;
    node_t *a = open_node("n1", NULL);
    node_t *b = open_node("n2", NULL);
    RES(r);
    store_flush_entry_t e = {1, "x", 1};
    assert_int_equal(store_flushlog_append(b->s, "n2", 1, &e, 1, cb_ids, r), 0);
    wait_res(r);
    assert_int_equal(r->rc, 0);
    uv_update_time(&loop);
    uint64_t end = uv_now(&loop) + WAIT_MS;
    while (a->notified < r->ids[0] && uv_now(&loop) < end)
        run_for(10);
    assert_int_equal(a->notified, r->ids[0]);
    free(r);
    close_node(a);
    close_node(b);
}

/* Leases: the holder renews with the same epoch, another node cannot take a
 * held lease, a released lease is taken over with epoch + 1. */
static void test_leases(void **state)
{
    (void)state;
    node_t *a = open_node("n1", NULL);
    node_t *b = open_node("n2", NULL);
    RES(r);
    lease_get(r, a, "canonical");
    assert_string_equal(r->holder, "");
    assert_int_equal(r->epoch, 0);

    acquire(r, a, "canonical", "n1", 10000);
    assert_true(r->acquired);
    assert_string_equal(r->holder, "n1");
    assert_int_equal(r->epoch, 1);
    assert_true(r->exp_in > 0 && r->exp_in <= 10000);

    acquire(r, b, "canonical", "n2", 10000);
    assert_false(r->acquired);
    assert_string_equal(r->holder, "n1");
    assert_int_equal(r->epoch, 1);
    assert_true(r->exp_in > 0);

    acquire(r, a, "canonical", "n1", 10000);
    assert_true(r->acquired);
    assert_int_equal(r->epoch, 1);

    memset(r, 0, sizeof(*r));
    assert_int_equal(store_lease_release(b->s, "canonical", "n2", cb_done, r), 0);
    done_op(r); /* not the holder: changes nothing */
    lease_get(r, b, "canonical");
    assert_true(r->exp_in > 0);

    memset(r, 0, sizeof(*r));
    assert_int_equal(store_lease_release(a->s, "canonical", "n1", cb_done, r), 0);
    done_op(r);
    assert_int_equal(r->rc, 0);
    lease_get(r, b, "canonical");
    assert_false(r->acquired);
    assert_true(r->exp_in <= 0);

    acquire(r, b, "canonical", "n2", 10000);
    assert_true(r->acquired);
    assert_string_equal(r->holder, "n2");
    assert_int_equal(r->epoch, 2);
    free(r);
    close_node(a);
    close_node(b);
}

/* An expired lease is taken over by another holder with epoch + 1. */
static void test_lease_expiry(void **state)
{
    (void)state;
    node_t *a = open_node("n1", NULL);
    node_t *b = open_node("n2", NULL);
    RES(r);
    acquire(r, a, "short", "n1", 1);
    assert_true(r->acquired);
    assert_int_equal(r->epoch, 1);
    for (int i = 0; i < 500; i++) {
        lease_get(r, b, "short");
        if (r->exp_in <= 0)
            break;
        run_for(10);
    }
    assert_true(r->exp_in <= 0);
    acquire(r, b, "short", "n2", 10000);
    assert_true(r->acquired);
    assert_int_equal(r->epoch, 2);
    acquire(r, a, "short", "n1", 10000);
    assert_false(r->acquired);
    assert_int_equal(r->epoch, 2);
    free(r);
    close_node(a);
    close_node(b);
}

/* Two nodes acquire the same free lease at the same moment: one wins. */
static void test_lease_race(void **state)
{
    (void)state;
    node_t *a = open_node("n1", NULL);
    node_t *b = open_node("n2", NULL);
    RES(ra);
    RES(rb);
    for (int i = 0; i < 20; i++) {
        char name[32];
        snprintf(name, sizeof(name), "race-%d", i);
        memset(ra, 0, sizeof(*ra));
        memset(rb, 0, sizeof(*rb));
        assert_int_equal(store_lease_acquire(a->s, name, "n1", 10000, cb_lease, ra), 0);
        assert_int_equal(store_lease_acquire(b->s, name, "n2", 10000, cb_lease, rb), 0);
        wait_res(ra);
        wait_res(rb);
        assert_int_equal(ra->rc, 0);
        assert_int_equal(rb->rc, 0);
        assert_true(ra->acquired != rb->acquired);
        assert_int_equal(ra->epoch, 1);
        assert_int_equal(rb->epoch, 1);
        assert_string_equal(ra->holder, rb->holder);
    }
    free(ra);
    free(rb);
    close_node(a);
    close_node(b);
}

/* Job slots are claimed once; runs are recorded, listed newest first, the
 * output keeps its tail, and pruned by slot time. */
static void test_jobs(void **state)
{
    (void)state;
    node_t *a = open_node("n1", NULL);
    node_t *b = open_node("n2", NULL);
    RES(r);
    assert_int_equal(store_job_claim(a->s, "sweep", 1000, "n1", 3, cb_claim, r), 0);
    wait_res(r);
    assert_int_equal(r->rc, 0);
    assert_true(r->claimed);
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_job_start(a->s, "sweep", 1000, "n1", 3, NULL, cb_slot, r), 0);
    wait_res(r);
    assert_int_equal(r->slot_state, STORE_SLOT_STARTED);
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_job_claim(b->s, "sweep", 1000, "n2", 4, cb_claim, r), 0);
    wait_res(r);
    assert_int_equal(r->rc, 0);
    assert_false(r->claimed);
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_job_claim(b->s, "sweep", 2000, "n2", 4, cb_claim, r), 0);
    wait_res(r);
    assert_true(r->claimed);

    size_t big = STORE_OUTPUT_MAX + 1000;
    uint8_t *out = malloc(big);
    for (size_t i = 0; i < big; i++)
        out[i] = (uint8_t)(i * 7);
    memset(r, 0, sizeof(*r));
    assert_int_equal(
        store_job_finish(a->s, "sweep", 1000, "ok", 0, out, big, 1100, 1200, cb_done, r), 0);
    done_op(r);
    assert_int_equal(r->rc, 0);
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_job_finish(a->s, "sweep", 3000, "ok", 0, NULL, 0, 1, 2, cb_done, r), 0);
    done_op(r);
    assert_int_equal(r->rc, STORE_ENOENT);

    memset(r, 0, sizeof(*r));
    assert_int_equal(store_job_history(b->s, "sweep", 10, cb_runs, r), 0);
    wait_res(r);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->n, 2);
    assert_int_equal(r->runs[0].slot, 2000);
    assert_string_equal(r->runs[0].status, "");
    assert_false(r->runs[0].was_started);
    assert_true(r->runs[1].was_started);
    assert_string_equal(r->runs[0].node, "n2");
    assert_int_equal(r->runs[1].slot, 1000);
    assert_string_equal(r->runs[1].status, "ok");
    assert_int_equal(r->runs[1].epoch, 3);
    assert_int_equal(r->runs[1].started, 1100);
    assert_int_equal(r->runs[1].ended, 1200);
    assert_int_equal(r->runs[1].outlen, STORE_OUTPUT_MAX);
    assert_memory_equal(r->runs[1].out, out + big - STORE_OUTPUT_MAX, STORE_OUTPUT_MAX);
    free(out);

    memset(r, 0, sizeof(*r)); /* 2000 is only claimed: it does not count as run */
    assert_int_equal(store_job_last(a->s, "sweep", cb_runs, r), 0);
    wait_res(r);
    assert_int_equal(r->n, 1);
    assert_int_equal(r->runs[0].slot, 1000);
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_job_last(a->s, "never", cb_runs, r), 0);
    wait_res(r);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->n, 0);

    memset(r, 0, sizeof(*r));
    assert_int_equal(store_job_prune(a->s, 1500, cb_count, r), 0);
    wait_res(r);
    assert_int_equal(r->count, 1);
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_job_history(b->s, "sweep", 10, cb_runs, r), 0);
    wait_res(r);
    assert_int_equal(r->n, 1);
    assert_int_equal(r->runs[0].slot, 2000);
    free(r);
    close_node(a);
    close_node(b);
}

static void claim(res_t *r, node_t *n, const char *job, int64_t slot, const char *node,
                  int64_t epoch)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_job_claim(n->s, job, slot, node, epoch, cb_claim, r), 0);
    wait_res(r);
    assert_int_equal(r->rc, 0);
}

static void start(res_t *r, node_t *n, bool undo, const char *job, int64_t slot, const char *node,
                  int64_t epoch, const char *lease)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(undo ? store_job_unstart(n->s, job, slot, node, epoch, lease, cb_slot, r)
                          : store_job_start(n->s, job, slot, node, epoch, lease, cb_slot, r),
                     0);
    wait_res(r);
    assert_int_equal(r->rc, 0);
}

/* A slot's life: claimed -> started -> finished. A claim is repeatable and
 * a higher epoch takes over a claim never started; start is fenced by the
 * lease and reports the row (a repeat tells a lost answer's outcome);
 * unstart undoes a start under the same fence; last counts started slots. */
static void test_job_slots(void **state)
{
    (void)state;
    node_t *a = open_node("n1", NULL);
    node_t *b = open_node("n2", NULL);
    RES(r);
    acquire(r, a, "canonical", "n1", 60000);
    int64_t e1 = r->epoch;
    claim(r, a, "tick", 1000, "n1", e1);
    assert_true(r->claimed);
    claim(r, a, "tick", 1000, "n1", e1); /* the same claim again: still mine */
    assert_true(r->claimed);
    claim(r, b, "tick", 1000, "n2", e1); /* same epoch, another node: no */
    assert_false(r->claimed);

    start(r, b, false, "tick", 1000, "n2", e1, "canonical"); /* not its claim */
    assert_int_equal(r->slot_state, STORE_SLOT_CLAIMED);
    assert_string_equal(r->slot_node, "n1");
    start(r, a, false, "tick", 1000, "n1", e1, "other-lease"); /* fence: no such lease */
    assert_int_equal(r->slot_state, STORE_SLOT_CLAIMED);
    start(r, a, false, "tick", 1000, "n1", e1, "canonical");
    assert_int_equal(r->slot_state, STORE_SLOT_STARTED);
    assert_string_equal(r->slot_node, "n1");
    assert_int_equal(r->slot_epoch, e1);
    start(r, a, false, "tick", 1000, "n1", e1, "canonical"); /* a repeat reads it back */
    assert_int_equal(r->slot_state, STORE_SLOT_STARTED);
    claim(r, b, "tick", 1000, "n2", e1 + 5); /* started: nobody takes it over */
    assert_false(r->claimed);

    /* unstart under the fence: back to claimed, then started again */
    start(r, a, true, "tick", 1000, "n1", e1, "canonical");
    assert_int_equal(r->slot_state, STORE_SLOT_CLAIMED);
    start(r, a, false, "tick", 1000, "n1", e1, "canonical");
    assert_int_equal(r->slot_state, STORE_SLOT_STARTED);

    /* slot 2000 claimed under e1, never started; the lease passes to n2 */
    claim(r, a, "tick", 2000, "n1", e1);
    assert_true(r->claimed);
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_lease_release(a->s, "canonical", "n1", cb_done, r), 0);
    wait_res(r);
    acquire(r, b, "canonical", "n2", 60000);
    assert_true(r->acquired);
    int64_t e2 = r->epoch;
    assert_true(e2 > e1);
    start(r, a, false, "tick", 2000, "n1", e1, "canonical"); /* the old holder: fenced */
    assert_int_equal(r->slot_state, STORE_SLOT_CLAIMED);
    start(r, a, true, "tick", 1000, "n1", e1, "canonical"); /* unstart: fenced too */
    assert_int_equal(r->slot_state, STORE_SLOT_STARTED);
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_job_last(b->s, "tick", cb_runs, r), 0);
    wait_res(r);
    assert_int_equal(r->n, 1);
    assert_int_equal(r->runs[0].slot, 1000); /* 2000 was never started: not run */
    claim(r, b, "tick", 2000, "n2", e2); /* the new holder takes the claim over */
    assert_true(r->claimed);
    claim(r, a, "tick", 2000, "n1", e1); /* and the old one cannot take it back */
    assert_false(r->claimed);
    start(r, b, false, "tick", 2000, "n2", e2, "canonical");
    assert_int_equal(r->slot_state, STORE_SLOT_STARTED);
    assert_string_equal(r->slot_node, "n2");
    assert_int_equal(r->slot_epoch, e2);
    memset(r, 0, sizeof(*r));
    assert_int_equal(
        store_job_finish(b->s, "tick", 2000, "ok", 0, "done", 4, 10, 20, cb_done, r), 0);
    wait_res(r);
    start(r, b, false, "tick", 2000, "n2", e2, "canonical");
    assert_int_equal(r->slot_state, STORE_SLOT_FINISHED);
    start(r, b, false, "tick", 3000, "n2", e2, "canonical"); /* no row */
    assert_int_equal(r->slot_state, STORE_SLOT_NONE);

    /* no lease (where = every): no fence */
    claim(r, b, "local:n2", 1000, "n2", 0);
    assert_true(r->claimed);
    start(r, b, false, "local:n2", 1000, "n2", 0, NULL);
    assert_int_equal(r->slot_state, STORE_SLOT_STARTED);
    free(r);
    close_node(a);
    close_node(b);
}

/* A version 1 database (a slot ran as soon as it was claimed; no store
 * identity; renewals not serialized) migrates: its rows count as started. */
static void test_job_migration(void **state)
{
    (void)state;
    node_t *a = open_node("n1", NULL);
    close_node(a);
    direct_sql(use_pg ? "DROP FUNCTION cohort_job_claim, cohort_job_start, cohort_job_unstart,"
                        " cohort_job_slot; ALTER TABLE cohort_job_runs DROP COLUMN started_at;"
                        " DROP TABLE cohort_meta; DROP FUNCTION cohort_member_renew;"
                        " DELETE FROM cohort_schema_version WHERE version > 1;"
                        " INSERT INTO cohort_job_runs(job, slot_ms, node, epoch, claimed_at)"
                        " VALUES ('old', 1000, 'n9', 7, 1)"
                      : "ALTER TABLE cohort_job_runs DROP COLUMN started_at; DROP TABLE cohort_meta;"
                        " DELETE FROM cohort_schema_version WHERE version > 1;"
                        " INSERT INTO cohort_job_runs(job, slot_ms, node, epoch, claimed_at)"
                        " VALUES ('old', 1000, 'n9', 7, 1)");
    a = open_node("n1", NULL);
    store_health_t h;
    store_health(a->s, &h);
    assert_int_equal(h.schema_version, STORE_SCHEMA_VERSION);
    RES(r);
    assert_int_equal(store_job_last(a->s, "old", cb_runs, r), 0);
    wait_res(r);
    assert_int_equal(r->n, 1);
    assert_true(r->runs[0].was_started);
    claim(r, a, "old", 1000, "n1", 8);
    assert_false(r->claimed);
    free(r);
    close_node(a);
}

/* Two nodes claim the same slot at the same moment: one gets it. */
static void test_job_race(void **state)
{
    (void)state;
    node_t *a = open_node("n1", NULL);
    node_t *b = open_node("n2", NULL);
    RES(ra);
    RES(rb);
    for (int i = 0; i < 20; i++) {
        memset(ra, 0, sizeof(*ra));
        memset(rb, 0, sizeof(*rb));
        assert_int_equal(store_job_claim(a->s, "tick", i * 1000, "n1", 1, cb_claim, ra), 0);
        assert_int_equal(store_job_claim(b->s, "tick", i * 1000, "n2", 1, cb_claim, rb), 0);
        wait_res(ra);
        wait_res(rb);
        assert_int_equal(ra->rc, 0);
        assert_int_equal(rb->rc, 0);
        assert_true(ra->claimed != rb->claimed);
    }
    free(ra);
    free(rb);
    close_node(a);
    close_node(b);
}

/* A statement past the statement timeout fails with STORE_ETIMEDOUT, is
 * counted, and the store goes on working. */
static void test_statement_timeout(void **state)
{
    (void)state;
    store_opts_t o = {.statement_timeout_ms = 300};
    node_t *a = open_node("n1", &o);
    RES(r);
    assert_int_equal(store_test_sleep(a->s, 5000, cb_done, r), 0);
    done_op(r);
    assert_int_equal(r->rc, STORE_ETIMEDOUT);
    assert_non_null(strstr(r->err, "timeout"));
    store_health_t h;
    store_health(a->s, &h);
    assert_int_equal(h.timeouts, 1);
    assert_int_equal(h.errors, 1);
    assert_int_equal(h.state, STORE_UP);
    memset(r, 0, sizeof(*r));
    assert_int_equal(store_test_sleep(a->s, 1, cb_done, r), 0);
    done_op(r);
    assert_int_equal(r->rc, 0);
    renew(r, a, "n1", 1, 1000);
    assert_int_equal(r->rc, 0);
    free(r);
    close_node(a);
}

/* Beyond max_pending a submit is refused at once; the accepted ones all
 * complete. */
static void test_queue_bound(void **state)
{
    (void)state;
    store_opts_t o = {.max_pending = 4};
    node_t *a = open_node("n1", &o);
    res_t *r = calloc(5, sizeof(res_t));
    for (int i = 0; i < 4; i++)
        assert_int_equal(store_lease_get(a->s, "x", cb_lease, &r[i]), 0);
    assert_int_equal(store_lease_get(a->s, "x", cb_lease, &r[4]), STORE_EFULL);
    store_health_t h;
    store_health(a->s, &h);
    assert_int_equal(h.pending, 4);
    assert_int_equal(h.rejected, 1);
    for (int i = 0; i < 4; i++) {
        wait_res(&r[i]);
        assert_int_equal(r[i].rc, 0);
    }
    assert_false(r[4].done);
    store_health(a->s, &h);
    assert_int_equal(h.pending, 0);
    assert_true(h.round_trips >= 4);
    free(r);
    close_node(a);
}

/* Closing with operations in flight: each still gets exactly one callback
 * (done or cancelled), then the close callback runs; later submits are
 * refused. */
static void test_close_cancels(void **state)
{
    (void)state;
    node_t *a = open_node("n1", NULL);
    res_t *r = calloc(10, sizeof(res_t));
    for (int i = 0; i < 10; i++)
        assert_int_equal(store_lease_get(a->s, "x", cb_lease, &r[i]), 0);
    track(a, false);
    store_close(a->s, on_closed, a);
    assert_int_equal(store_lease_get(a->s, "x", cb_lease, &r[0]), STORE_ECLOSED);
    assert_true(run_until(&a->closed, WAIT_MS));
    for (int i = 0; i < 10; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_true(r[i].rc == 0 || r[i].rc == STORE_ECANCELED);
    }
    free(r);
    free(a);
}

/* Bad URLs are refused at open with a clear message. */
static void test_bad_urls(void **state)
{
    (void)state;
    static const struct {
        const char *url, *words;
    } cases[] = {
        {"mysql://localhost/db", "unknown scheme"},
        {"", "empty"},
        {"sqlite://relative.db", "absolute"},
        {"sqlite:///tmp/", "directory"},
        {"sqlite:///nonexistent-cohort-dir/x/c.db", "No such file"},
        {"postgresql://localhost/db?nosuchoption=1", "nosuchoption"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        store_opts_t o = {.url = cases[i].url};
        store_t *s = (store_t *)1;
        char err[256] = "";
        assert_int_equal(store_open(&loop, &o, &s, err, sizeof(err)), STORE_EINVAL);
        assert_null(s);
        if (!strstr(err, cases[i].words))
            fail_msg("url '%s': error '%s' lacks '%s'", cases[i].url, err, cases[i].words);
    }
    store_opts_t o = {.url = url, .node_name = "no spaces"};
    store_t *s;
    char err[256];
    assert_int_equal(store_open(&loop, &o, &s, err, sizeof(err)), STORE_EINVAL);
    assert_non_null(strstr(err, "node name"));
}

/* A database whose schema is newer than this code is refused for good. */
static void test_newer_schema(void **state)
{
    (void)state;
    node_t *a = open_node("n1", NULL);
    close_node(a);
    direct_sql(use_pg ? "INSERT INTO cohort_schema_version(version) VALUES (99)"
                      : "INSERT INTO cohort_schema_version(version, applied_at) VALUES (99, 0)");
    a = open_at(url, "n1", NULL);
    assert_true(state_is(a, STORE_FAILED, WAIT_MS));
    char want[128];
    snprintf(want, sizeof(want), "store schema version 99 is newer than this cohortd knows (%d)",
             STORE_SCHEMA_VERSION);
    store_health_t h;
    store_health(a->s, &h);
    assert_non_null(strstr(h.last_error, want));
    assert_int_equal(a->fails, 1);
    assert_non_null(strstr(a->last_msg, want));
    RES(r);
    assert_int_equal(store_lease_get(a->s, "x", cb_lease, r), 0);
    wait_res(r);
    assert_int_equal(r->rc, STORE_EFATAL);
    free(r);
    close_node(a);
}

/* SQLite: a directory that is not writable is refused at open; a database
 * path that cannot be opened reports the store down with the reason. */
static void test_sqlite_unusable(void **state)
{
    (void)state;
    char sub[300], u[400];
    snprintf(sub, sizeof(sub), "%s/ro", dir);
    assert_int_equal(chmod(dir, 0755), 0); /* nobody may look, not write */
    assert_int_equal(mkdir(sub, 0555), 0);
    snprintf(u, sizeof(u), "sqlite://%s/c.db", sub);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* root may write anywhere: check as nobody */
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(3);
        store_opts_t o = {.url = u};
        store_t *s;
        char err[256] = "";
        int rc = store_open(&loop, &o, &s, err, sizeof(err));
        _exit(rc == STORE_EINVAL && strstr(err, "not writable") ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* The database path is a directory: open succeeds, the worker cannot. */
    snprintf(sub, sizeof(sub), "%s/isdir.db", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(u, sizeof(u), "sqlite://%s", sub);
    store_opts_t o = {.retry_min_ms = 50, .retry_max_ms = 100};
    node_t *a = open_at(u, "n1", &o);
    assert_true(state_is(a, STORE_DOWN, WAIT_MS));
    store_health_t h;
    store_health(a->s, &h);
    assert_non_null(strstr(h.last_error, sub));
    assert_true(h.since_ms > 0);
    RES(r);
    assert_int_equal(store_lease_get(a->s, "x", cb_lease, r), 0);
    wait_res(r);
    assert_int_equal(r->rc, STORE_EDOWN);
    free(r);
    close_node(a);
}

/* SQLite on a full disk (a file size limit stands in for it): writes fail
 * with STORE_EDOWN and the reason, the store reports down, and it comes
 * back up by itself once there is room again. */
static void test_sqlite_disk_full(void **state)
{
    (void)state;
    node_t *a = open_node("n1", NULL);
    size_t len = 60000;
    uint8_t *big = calloc(1, len);
    RES(r);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 512 * 1024;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    store_flush_entry_t e = {1, big, len};
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++) {
        memset(r, 0, sizeof(*r));
        assert_int_equal(store_flushlog_append(a->s, "n1", 1, &e, 1, cb_ids, r), 0);
        wait_res(r);
        rc = r->rc;
    }
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(rc, STORE_EDOWN);
    assert_true(strstr(r->err, "full") || strstr(r->err, "I/O"));
    assert_true(state_is(a, STORE_DOWN, WAIT_MS));
    renew(r, a, "n1", 1, 1000);
    assert_int_equal(r->rc, 0);
    assert_true(state_is(a, STORE_UP, WAIT_MS));
    assert_int_equal(a->downs, 1);
    assert_int_equal(a->ups, 2);
    free(big);
    free(r);
    close_node(a);
}

/* Runs the harness command (pause / resume the server). */
static void harness(const char *what)
{
    const char *h = getenv("COHORT_TEST_PG_HARNESS");
    if (!h)
        fail_msg("COHORT_TEST_PG_HARNESS is not set (run through tests/pg/pg-harness.sh run)");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' %s", h, what);
    assert_int_equal(system(cmd), 0);
}

/* PostgreSQL stopped under an open store: operations fail, health says
 * down (since when); started again: the store reconnects by itself. */
static void test_pg_restart(void **state)
{
    (void)state;
    store_opts_t o = {.retry_min_ms = 50, .retry_max_ms = 500, .connect_timeout_ms = 2000};
    node_t *a = open_node("n1", &o);
    RES(r);
    renew(r, a, "n1", 1, 60000);
    assert_int_equal(r->rc, 0);
    int64_t before = (int64_t)time(NULL) * 1000 - 1000;

    harness("pause");
    assert_true(state_is(a, STORE_DOWN, WAIT_MS));
    store_health_t h;
    store_health(a->s, &h);
    assert_true(h.since_ms >= before);
    assert_false(h.session_lock);
    assert_true(h.last_error[0] != '\0');
    assert_int_equal(a->downs, 1);
    renew(r, a, "n1", 1, 60000);
    assert_int_equal(r->rc, STORE_EDOWN);

    harness("resume");
    assert_true(state_is(a, STORE_UP, WAIT_MS));
    store_health(a->s, &h);
    assert_int_equal(h.reconnects, 1);
    assert_true(h.session_lock);
    assert_int_equal(a->ups, 2);
    renew(r, a, "n1", 1, 60000);
    assert_int_equal(r->rc, 0);
    assert_true(member(r, "n1")->lock);
    free(r);
    close_node(a);
}

/* A server that accepts but never answers: the running operation fails
 * with STORE_ETIMEDOUT (the caller is never blocked), the store goes down,
 * and comes back by itself once the server answers again. */
static void test_pg_frozen(void **state)
{
    (void)state;
    store_opts_t o = {.statement_timeout_ms = 500,
                      .connect_timeout_ms = 500,
                      .retry_min_ms = 50,
                      .retry_max_ms = 200};
    node_t *a = open_node("n1", &o);
    RES(r);
    harness("freeze");
    renew(r, a, "n1", 1, 60000);
    int rc1 = r->rc;
    store_health_t h;
    store_health(a->s, &h);
    enum store_state st = h.state;
    renew(r, a, "n1", 1, 60000); /* down, or waiting for a connection */
    int rc2 = r->rc;
    harness("thaw");
    assert_int_equal(rc1, STORE_ETIMEDOUT);
    assert_true(h.timeouts >= 1);
    assert_int_equal(st, STORE_DOWN);
    assert_true(rc2 == STORE_EDOWN || rc2 == STORE_ETIMEDOUT);
    assert_true(state_is(a, STORE_UP, WAIT_MS));
    renew(r, a, "n1", 1, 60000);
    assert_int_equal(r->rc, 0);
    /* The old session ends once the server runs again; then the lock is
     * taken again at a renew. */
    for (int i = 0; i < 500 && !member(r, "n1")->lock; i++) {
        run_for(10);
        renew(r, a, "n1", 1, 60000);
    }
    assert_true(member(r, "n1")->lock);
    store_health(a->s, &h);
    assert_true(h.session_lock);
    free(r);
    close_node(a);
}

/* An unreachable server at open: open succeeds, the store is down, ops fail
 * at once, and it can be closed while retrying. */
static void test_pg_unreachable(void **state)
{
    (void)state;
    store_opts_t o = {.retry_min_ms = 50, .retry_max_ms = 200, .connect_timeout_ms = 1000};
    node_t *a = open_at("postgresql://cohort@127.0.0.1:1/cohort_test", "n1", &o);
    assert_true(state_is(a, STORE_DOWN, WAIT_MS));
    RES(r);
    renew(r, a, "n1", 1, 1000);
    assert_int_equal(r->rc, STORE_EDOWN);
    free(r);
    close_node(a);
}

/* A host name in the URL is looked up off the loop; a name that does not
 * resolve leaves the store down with the reason. */
static void test_pg_host_names(void **state)
{
    (void)state;
    char u[600];
    const char *at = strstr(url, "@127.0.0.1:");
    assert_non_null(at);
    snprintf(u, sizeof(u), "%.*s@localhost:%s", (int)(at - url), url, at + strlen("@127.0.0.1:"));
    node_t *a = open_at(u, "n1", NULL);
    if (!state_is(a, STORE_UP, WAIT_MS))
        fail_msg("%s not up: %s", u, a->last_msg);
    RES(r);
    renew(r, a, "n1", 1, 1000);
    assert_int_equal(r->rc, 0);
    close_node(a);

    store_opts_t o = {.retry_min_ms = 50, .retry_max_ms = 200, .connect_timeout_ms = 1000};
    a = open_at("postgresql://cohort@no-such-host.invalid/cohort_test", "n1", &o);
    assert_true(state_is(a, STORE_DOWN, WAIT_MS));
    store_health_t h;
    store_health(a->s, &h);
    assert_true(strstr(h.last_error, "no-such-host.invalid") || strstr(h.last_error, "within"));
    renew(r, a, "n1", 1, 1000);
    assert_int_equal(r->rc, STORE_EDOWN);
    free(r);
    close_node(a);
}

/* ----------------------------------------------------------------- main */

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest common[] = {
        T(test_open_migrates), T(test_members),       T(test_member_lock_drops_on_close),
        T(test_member_crash),  T(test_flushlog),      T(test_flushlog_follow),
        T(test_leases),        T(test_lease_expiry),  T(test_lease_race),
        T(test_jobs),          T(test_job_race),      T(test_statement_timeout),
        T(test_job_slots),     T(test_job_migration), T(test_renewals_serialized),
        T(test_queue_bound),   T(test_close_cancels), T(test_bad_urls),
        T(test_newer_schema),
    };
    const struct CMUnitTest sqlite_only[] = {T(test_sqlite_unusable), T(test_sqlite_disk_full)};
    const struct CMUnitTest pg_only[] = {T(test_flushlog_notify), T(test_pg_restart),
                                         T(test_pg_frozen), T(test_pg_unreachable),
                                         T(test_pg_host_names)};

    if (argc != 2 || (strcmp(argv[1], "sqlite") && strcmp(argv[1], "pg"))) {
        fprintf(stderr, "usage: test_store sqlite|pg\n");
        return 2;
    }
    use_pg = strcmp(argv[1], "pg") == 0;
    log_open("test", NULL, LOG_WARN);
    if (use_pg) {
        pg_url = getenv("COHORT_TEST_PG_URL");
        if (!pg_url || !*pg_url) {
            fprintf(stderr, "test_store pg: COHORT_TEST_PG_URL is not set "
                            "(run through tests/pg/pg-harness.sh run)\n");
            return 1;
        }
        int rc = cmocka_run_group_tests_name("store_postgresql", common, NULL, NULL);
        return rc | cmocka_run_group_tests_name("store_postgresql_only", pg_only, NULL, NULL);
    }
    int rc = cmocka_run_group_tests_name("store_sqlite", common, NULL, NULL);
    return rc | cmocka_run_group_tests_name("store_sqlite_only", sqlite_only, NULL, NULL);
}
