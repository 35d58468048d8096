/* Unit tests for jobrun.c: real shell commands (exit codes, environment,
 * output tail bounded for a job printing 100 MB, timeout with SIGTERM and
 * with SIGKILL after the grace, a missing command, children left behind are
 * killed, cancel), and HTTP requests against a tiny server this test runs on
 * the same loop on 127.0.0.1 (200, POST, 500, a close-delimited body,
 * refused, timeout, malformed and truncated responses, cancel).
 *
 * Waits are bounded by a generous guard timer; assertions are on outcomes,
 * never on durations. The test process is a child subreaper, so a process a
 * job leaves behind becomes our child and its death can be observed and
 * reaped here. Every test ends by closing its handles and asserting the loop
 * closes cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "jobrun.h"

#define GUARD_MS 30000 /* a test that waits longer than this has failed */
#define SLOT     1798761600000LL

typedef struct outcome {
    int calls;                    /* callbacks received */
    jobrun_result_t res;          /* copy of the last result */
    char output[JOBRUN_TAIL + 1]; /* copy of its output */
} outcome_t;

static uv_loop_t loop;
static uv_timer_t guard;
static int guard_fired;

static void on_guard(uv_timer_t *t)
{
    guard_fired = 1;
}

static int setup(void **state)
{
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &guard);
    guard_fired = 0;
    return 0;
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int teardown(void **state)
{
    /* Every run has called back, so no process of libuv's is left: reap the
     * orphans of jobs (we are their subreaper) so none stays a zombie. */
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop);
    if (rc != 0) { /* report, then clean up so other tests can run */
        uv_walk(&loop, on_walk_close, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
    assert_int_equal(rc, 0);
    return 0;
}

static void on_result(const jobrun_result_t *res, void *arg)
{
    outcome_t *o = arg;
    o->calls++;
    o->res = *res;
    assert_true(res->output_len <= JOBRUN_TAIL);
    assert_int_equal(strlen(res->output), res->output_len); /* NUL-terminated, no NULs in tests */
    memcpy(o->output, res->output, res->output_len + 1);
    o->res.output = o->output;
}

/* Runs the loop until o has its callback (or the guard fires: failure). */
static void wait_for(outcome_t *o)
{
    uv_timer_start(&guard, on_guard, GUARD_MS, 0);
    while (o->calls == 0 && !guard_fired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&guard);
    if (o->calls == 0)
        fail_msg("no result within %d ms", GUARD_MS);
}

static jobrun_spec_t cmd_spec(const char *command, int64_t timeout_ms)
{
    jobrun_spec_t s = {0};
    s.command = command;
    s.timeout_ms = timeout_ms;
    s.job = "reindex";
    s.slot_ms = SLOT;
    s.epoch = 42;
    s.node = "www1";
    return s;
}

static void run_cmd(const char *command, int64_t timeout_ms, outcome_t *o)
{
    jobrun_spec_t s = cmd_spec(command, timeout_ms);
    char err[256] = "";
    memset(o, 0, sizeof(*o));
    if (jobrun_start(&loop, &s, on_result, o, NULL, err, sizeof(err)) != 0)
        fail_msg("start: %s", err);
    assert_int_equal(o->calls, 0); /* never synchronously */
    wait_for(o);
}

/* ---- commands ----------------------------------------------------------------- */

static void test_cmd_exit_codes(void **state)
{
    outcome_t o;
    run_cmd("true", 10000, &o);
    assert_int_equal(o.res.status, JOBRUN_OK);
    assert_string_equal(jobrun_status_name(o.res.status), "ok");
    assert_int_equal(o.res.exit_code, 0);
    assert_int_equal(o.res.term_signal, 0);
    assert_string_equal(o.res.message, "");

    run_cmd("echo out; echo err >&2; exit 3", 10000, &o);
    assert_int_equal(o.res.status, JOBRUN_FAILED);
    assert_string_equal(jobrun_status_name(o.res.status), "failed");
    assert_int_equal(o.res.exit_code, 3);
    assert_string_equal(o.res.message, "exit status 3");
    assert_string_equal(o.output, "out\nerr\n"); /* stdout and stderr, one stream */
    assert_true(o.res.output_total == 8);
    assert_int_equal(o.calls, 1);

    run_cmd("kill -USR1 $$", 10000, &o); /* a signal that did not come from us */
    assert_int_equal(o.res.status, JOBRUN_FAILED);
    assert_int_equal(o.res.exit_code, -1);
    assert_int_equal(o.res.term_signal, SIGUSR1);

    run_cmd("cat", 10000, &o); /* stdin is /dev/null, not ours */
    assert_int_equal(o.res.status, JOBRUN_OK);
}

static void test_cmd_environment(void **state)
{
    outcome_t o;
    setenv("COHORT_JOB", "stale", 1); /* replaced, not duplicated */
    setenv("JOBRUN_TEST_INHERITED", "yes", 1);
    run_cmd("printf '%s|%s|%s|%s|%s' \"$COHORT_JOB\" \"$COHORT_SLOT\" \"$COHORT_EPOCH\" "
            "\"$COHORT_NODE\" \"$JOBRUN_TEST_INHERITED\"; env | grep -c '^COHORT_JOB='",
            10000, &o);
    unsetenv("COHORT_JOB");
    unsetenv("JOBRUN_TEST_INHERITED");
    assert_int_equal(o.res.status, JOBRUN_OK);
    assert_string_equal(o.output, "reindex|1798761600000|42|www1|yes1\n");
}

static void test_cmd_missing(void **state)
{
    outcome_t o;
    run_cmd("/no/such/command-for-cohort --flag", 10000, &o);
    assert_int_equal(o.res.status, JOBRUN_FAILED);
    assert_int_equal(o.res.exit_code, 127);
    assert_non_null(strstr(o.output, "/no/such/command-for-cohort"));
    assert_non_null(strstr(o.output, "not found"));
}

static long max_rss_kb(void)
{
    struct rusage ru;
    assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
    return ru.ru_maxrss;
}

static void test_cmd_output_bounded(void **state)
{
    outcome_t o;
    long before = max_rss_kb();
    run_cmd("head -c 100000000 /dev/zero | tr '\\0' x; printf END", 120000, &o);
    long after = max_rss_kb();
    assert_int_equal(o.res.status, JOBRUN_OK);
    assert_true(o.res.output_total == 100000003);
    assert_int_equal(o.res.output_len, JOBRUN_TAIL);
    assert_string_equal(o.output + JOBRUN_TAIL - 3, "END");
    for (size_t i = 0; i < JOBRUN_TAIL - 3; i++)
        assert_int_equal(o.output[i], 'x');
    /* 100 MB went through; keeping it would have raised the peak by 100 MB */
    if (after - before > 16 * 1024)
        fail_msg("peak RSS grew by %ld kB", after - before);
}

static void test_cmd_timeout(void **state)
{
    outcome_t o;
    run_cmd("sleep 1000", 300, &o);
    assert_int_equal(o.res.status, JOBRUN_TIMEOUT);
    assert_string_equal(jobrun_status_name(o.res.status), "timeout");
    assert_int_equal(o.res.term_signal, SIGTERM);
    assert_string_equal(o.res.message, "timed out after 300 ms");
    assert_int_equal(o.calls, 1);
}

static void test_cmd_timeout_kill(void **state)
{
    outcome_t o = {0};
    /* the shell and its sleep ignore SIGTERM: SIGKILL after the grace */
    /* (the timeout leaves the shell ample time to set its trap first) */
    jobrun_spec_t s = cmd_spec("trap '' TERM; echo started; sleep 1000; echo not reached", 2000);
    s.kill_grace_ms = 300;
    char err[256];
    assert_int_equal(jobrun_start(&loop, &s, on_result, &o, NULL, err, sizeof(err)), 0);
    wait_for(&o);
    assert_int_equal(o.res.status, JOBRUN_TIMEOUT);
    assert_int_equal(o.res.term_signal, SIGKILL);
    assert_string_equal(o.res.message,
                        "timed out after 2000 ms; still running 300 ms after SIGTERM: SIGKILL");
    assert_string_equal(o.output, "started\n");
}

/* Waits (bounded) until pid, a process the job left behind and which became
 * our child (we are a subreaper), has died; returns how it ended, or -1. */
static int reap_orphan(pid_t pid)
{
    for (int i = 0; i < GUARD_MS / 10; i++) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFSIGNALED(st) ? WTERMSIG(st) : 1000 + WEXITSTATUS(st);
        if (r < 0 && errno == ECHILD && kill(pid, 0) < 0 && errno == ESRCH)
            return 0;  /* someone else reaped it: gone all the same */
        usleep(10000); /* the test's own wait, not the loop's */
    }
    return -1;
}

static void test_cmd_children_killed(void **state)
{
    outcome_t o;
    run_cmd("sleep 1000 & echo $!", 10000, &o);
    assert_int_equal(o.res.status, JOBRUN_OK);
    pid_t child = (pid_t)atoi(o.output);
    assert_true(child > 1);
    int how = reap_orphan(child);
    if (how < 0)
        kill(child, SIGKILL);
    assert_int_equal(how, SIGKILL);
    assert_int_equal(kill(child, 0), -1);
    assert_int_equal(errno, ESRCH);
}

static void test_cancel_cmd(void **state)
{
    outcome_t o = {0};
    jobrun_t *run = NULL;
    jobrun_spec_t s = cmd_spec("sleep 1000", 60000);
    char err[256];
    assert_int_equal(jobrun_start(&loop, &s, on_result, &o, &run, err, sizeof(err)), 0);
    jobrun_cancel(run);
    jobrun_cancel(run); /* twice is harmless */
    assert_int_equal(o.calls, 0);
    wait_for(&o);
    assert_int_equal(o.res.status, JOBRUN_ERROR);
    assert_string_equal(o.res.message, "cancelled");
    assert_int_equal(o.res.term_signal, SIGKILL);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(o.calls, 1);
}

static void test_start_errors(void **state)
{
    outcome_t o = {0};
    char err[256] = "";
    jobrun_spec_t s = cmd_spec("true", 1000);
    s.url = "http://127.0.0.1/";
    assert_int_equal(jobrun_start(&loop, &s, on_result, &o, NULL, err, sizeof(err)), -1);
    assert_string_equal(err, "a job runs either a command or a URL");
    s = cmd_spec("true", 0);
    assert_int_equal(jobrun_start(&loop, &s, on_result, &o, NULL, err, sizeof(err)), -1);
    s = cmd_spec("true", 1000);
    s.node = "bad\r\nInjected: 1";
    assert_int_equal(jobrun_start(&loop, &s, on_result, &o, NULL, err, sizeof(err)), -1);
    s = cmd_spec(NULL, 1000);
    s.url = "ftp://127.0.0.1/";
    assert_int_equal(jobrun_start(&loop, &s, on_result, &o, NULL, err, sizeof(err)), -1);
    assert_string_equal(err, "only http:// URLs are supported: 'ftp://127.0.0.1/'");
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(o.calls, 0);
}

/* ---- the test HTTP server ------------------------------------------------------- */

typedef struct srv {
    uv_tcp_t listener;
    int port;
    const char *response; /* sent once the request's head is in; NULL: never answer */
    size_t response_len;
    int close_silently; /* close without answering */
    char req[4096];     /* the request received */
    size_t req_len;
    uv_tcp_t *conn; /* the one open connection */
    uv_write_t w;
} srv_t;

static void srv_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    srv_t *s = h->data;
    b->base = s->req + s->req_len;
    b->len = sizeof(s->req) - 1 - s->req_len;
}

static void srv_conn_closed(uv_handle_t *h)
{
    free(h);
}

static void srv_close_conn(srv_t *s)
{
    if (s->conn) {
        uv_close((uv_handle_t *)s->conn, srv_conn_closed);
        s->conn = NULL;
    }
}

static void srv_written(uv_write_t *w, int status)
{
    srv_close_conn(w->data);
}

static void srv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    srv_t *s = st->data;
    if (n < 0) {
        srv_close_conn(s);
        return;
    }
    s->req_len += (size_t)n;
    s->req[s->req_len] = '\0';
    if (!strstr(s->req, "\r\n\r\n"))
        return;
    uv_read_stop(st);
    if (s->close_silently) {
        srv_close_conn(s);
    } else if (s->response) {
        uv_buf_t out = uv_buf_init((char *)s->response, (unsigned)s->response_len);
        s->w.data = s;
        uv_write(&s->w, st, &out, 1, srv_written);
    }
}

static void srv_accept(uv_stream_t *l, int status)
{
    srv_t *s = l->data;
    assert_int_equal(status, 0);
    uv_tcp_t *c = malloc(sizeof(*c));
    uv_tcp_init(&loop, c);
    c->data = s;
    assert_int_equal(uv_accept(l, (uv_stream_t *)c), 0);
    assert_null(s->conn); /* one request per test */
    s->conn = c;
    uv_read_start((uv_stream_t *)c, srv_alloc, srv_read);
}

static void srv_start(srv_t *s, const char *response, size_t len)
{
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int n = sizeof(got);
    memset(s, 0, sizeof(*s));
    s->response = response;
    s->response_len = len;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&loop, &s->listener);
    s->listener.data = s;
    assert_int_equal(uv_tcp_bind(&s->listener, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 16, srv_accept), 0);
    assert_int_equal(uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &n), 0);
    s->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

static void srv_stop(srv_t *s)
{
    srv_close_conn(s);
    uv_close((uv_handle_t *)&s->listener, NULL);
    uv_run(&loop, UV_RUN_NOWAIT); /* close callbacks: s may be reused */
}

static void run_url(const char *url, int method, int64_t timeout_ms, outcome_t *o)
{
    jobrun_spec_t s = cmd_spec(NULL, timeout_ms);
    char err[256] = "";
    s.url = url;
    s.method = method;
    memset(o, 0, sizeof(*o));
    if (jobrun_start(&loop, &s, on_result, o, NULL, err, sizeof(err)) != 0)
        fail_msg("start: %s", err);
    wait_for(o);
}

#define RESP(lit) lit, sizeof(lit) - 1

/* ---- http ----------------------------------------------------------------------- */

static void test_http_200(void **state)
{
    srv_t s;
    outcome_t o;
    char url[128], host[64];
    srv_start(&s, RESP("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/admin/reindex?full=1", s.port);
    run_url(url, JOBRUN_GET, 10000, &o);
    assert_int_equal(o.res.status, JOBRUN_OK);
    assert_int_equal(o.res.http_status, 200);
    assert_string_equal(o.output, "hello");
    assert_string_equal(o.res.message, "");
    assert_non_null(strstr(s.req, "GET /admin/reindex?full=1 HTTP/1.1\r\n"));
    snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%d\r\n", s.port);
    assert_non_null(strstr(s.req, host));
    assert_non_null(strstr(s.req, "\r\nCohort-Job: reindex\r\n"));
    assert_non_null(strstr(s.req, "\r\nCohort-Slot: 1798761600000\r\n"));
    assert_non_null(strstr(s.req, "\r\nCohort-Epoch: 42\r\n"));
    assert_non_null(strstr(s.req, "\r\nCohort-Node: www1\r\n"));
    assert_non_null(strstr(s.req, "\r\nConnection: close\r\n"));
    srv_stop(&s);
}

static void test_http_post_by_name(void **state)
{
    srv_t s;
    outcome_t o;
    char url[128];
    srv_start(&s, RESP("HTTP/1.1 204 No Content\r\n\r\n"));
    snprintf(url, sizeof(url), "http://localhost:%d", s.port); /* resolved; no path: "/" */
    run_url(url, JOBRUN_POST, 10000, &o);
    assert_int_equal(o.res.status, JOBRUN_OK);
    assert_int_equal(o.res.http_status, 204);
    assert_non_null(strstr(s.req, "POST / HTTP/1.1\r\n"));
    assert_non_null(strstr(s.req, "\r\nContent-Length: 0\r\n"));
    srv_stop(&s);
}

static void test_http_500(void **state)
{
    srv_t s;
    outcome_t o;
    char url[128];
    srv_start(&s, RESP("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops"));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", s.port);
    run_url(url, JOBRUN_GET, 10000, &o);
    assert_int_equal(o.res.status, JOBRUN_FAILED);
    assert_int_equal(o.res.http_status, 500);
    assert_string_equal(o.res.message, "HTTP 500");
    assert_string_equal(o.output, "oops");
    srv_stop(&s);
}

static void test_http_body_tail(void **state)
{
    /* no Content-Length: the body ends when the server closes */
    size_t head = strlen("HTTP/1.1 200 OK\r\n\r\n"), body = 200000;
    char *resp = malloc(head + body);
    memcpy(resp, "HTTP/1.1 200 OK\r\n\r\n", head);
    for (size_t i = 0; i < body; i++)
        resp[head + i] = (char)('a' + i % 26);
    srv_t s;
    outcome_t o;
    char url[128];
    srv_start(&s, resp, head + body);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", s.port);
    run_url(url, JOBRUN_GET, 10000, &o);
    assert_int_equal(o.res.status, JOBRUN_OK);
    assert_true(o.res.output_total == body);
    assert_int_equal(o.res.output_len, JOBRUN_TAIL);
    assert_memory_equal(o.output, resp + head + body - JOBRUN_TAIL, JOBRUN_TAIL);
    srv_stop(&s);
    uv_run(&loop, UV_RUN_DEFAULT);
    free(resp);
}

static void test_http_refused(void **state)
{
    srv_t s;
    outcome_t o;
    char url[128], want[128];
    srv_start(&s, NULL, 0);
    int port = s.port;
    srv_stop(&s); /* the port is closed now */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", port);
    run_url(url, JOBRUN_GET, 10000, &o);
    assert_int_equal(o.res.status, JOBRUN_ERROR);
    snprintf(want, sizeof(want), "connect to 127.0.0.1:%d: connection refused", port);
    assert_string_equal(o.res.message, want);
}

static void test_http_timeout(void **state)
{
    srv_t s;
    outcome_t o;
    char url[128];
    srv_start(&s, NULL, 0); /* reads the request, never answers */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow", s.port);
    run_url(url, JOBRUN_GET, 300, &o);
    assert_int_equal(o.res.status, JOBRUN_TIMEOUT);
    assert_string_equal(o.res.message, "timed out after 300 ms");
    assert_int_equal(o.res.http_status, 0);
    srv_stop(&s);
}

static void test_http_bad_responses(void **state)
{
    srv_t s;
    outcome_t o;
    char url[128];
    srv_start(&s, RESP("NOT HTTP AT ALL\r\n\r\n"));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
    run_url(url, JOBRUN_GET, 10000, &o);
    assert_int_equal(o.res.status, JOBRUN_ERROR);
    assert_non_null(strstr(o.res.message, "bad HTTP response: "));
    srv_stop(&s);

    srv_start(&s, RESP("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
    run_url(url, JOBRUN_GET, 10000, &o);
    assert_int_equal(o.res.status, JOBRUN_ERROR);
    assert_non_null(strstr(o.res.message, "closed before the response ended"));
    srv_stop(&s);

    srv_start(&s, NULL, 0);
    s.close_silently = 1;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
    run_url(url, JOBRUN_GET, 10000, &o);
    assert_int_equal(o.res.status, JOBRUN_ERROR);
    assert_non_null(strstr(o.res.message, "closed before the response ended"));
    srv_stop(&s);
}

static void test_cancel_http(void **state)
{
    srv_t s;
    outcome_t o = {0};
    char url[128], err[256];
    jobrun_t *run = NULL;
    srv_start(&s, NULL, 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow", s.port);
    jobrun_spec_t spec = cmd_spec(NULL, 60000);
    spec.url = url;
    /* cancelled while resolving */
    assert_int_equal(jobrun_start(&loop, &spec, on_result, &o, &run, err, sizeof(err)), 0);
    jobrun_cancel(run);
    wait_for(&o);
    assert_int_equal(o.res.status, JOBRUN_ERROR);
    assert_string_equal(o.res.message, "cancelled");
    /* cancelled once the request is on its way */
    memset(&o, 0, sizeof(o));
    assert_int_equal(jobrun_start(&loop, &spec, on_result, &o, &run, err, sizeof(err)), 0);
    uv_timer_start(&guard, on_guard, GUARD_MS, 0);
    while (!strstr(s.req, "\r\n\r\n") && !guard_fired)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(o.calls, 0);
    jobrun_cancel(run);
    wait_for(&o);
    assert_int_equal(o.res.status, JOBRUN_ERROR);
    assert_string_equal(o.res.message, "cancelled");
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(o.calls, 1);
    srv_stop(&s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
        perror("prctl(PR_SET_CHILD_SUBREAPER)");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cmd_exit_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmd_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmd_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmd_output_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmd_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmd_timeout_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmd_children_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_cmd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_200, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_post_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_body_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_bad_responses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_http, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
