/* jobrun: one job action (shell command or HTTP request) run on the loop.
 *
 * Owns: per run, two timers (timeout; kill grace or output drain), and
 * either the child process plus its output pipe or the resolver request plus
 * the TCP connection and the response parser; the output tail ring.
 * Never: blocks the loop, keeps more than JOBRUN_TAIL bytes of output, or
 * calls back twice.
 *
 * States of a run (the callback comes only from deliver()):
 *
 *   running --(outcome: exit+EOF, response, timeout, error, cancel)--> finishing
 *   finishing --(every handle closed, every request back, process reaped)-->
 *   deliver(): callback, free
 *
 * Invariants (and the tests in tests/unit/test_jobrun.c that check them):
 * 1. The first outcome wins; later ones are ignored (finish() checks
 *    res_set); the callback runs once (test_cancel_*, test_cmd_timeout).
 * 2. The process handle is closed only after its exit callback, so libuv
 *    reaps the shell; on exit the group gets SIGKILL
 *    (test_cmd_children_killed).
 * 3. Output memory is JOBRUN_TAIL bytes of ring plus one read buffer,
 *    whatever the job prints (test_cmd_output_bounded).
 */
#include "jobrun.h"

#include <errno.h>
#include <http_parser.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errmsg.h"
#include "mem.h"

#define READ_BUF (64 * 1024) /* one read's buffer */
#define DRAIN_MS 500         /* after the shell exits, wait this long for EOF */
#define MAX_URL  2048
#define MAX_HOST 256

extern char **environ;

enum run_kind { KIND_CMD, KIND_HTTP };

/* Bits of jobrun.closing: handles uv_close() was called on. */
enum { H_TIMER = 1, H_GRACE = 2, H_PROC = 4, H_PIPE = 8, H_TCP = 16 };

struct jobrun {
    uv_loop_t *loop;
    jobrun_cb cb;
    void *arg;
    int kind;            /* enum run_kind */
    int64_t timeout_ms;  /* as given */
    int64_t grace_ms;    /* SIGTERM -> SIGKILL */
    uint64_t start_ns;   /* uv_hrtime() at start */
    int handles;         /* handles initialised and not yet closed */
    int reqs;            /* requests in flight */
    unsigned opened;     /* H_* handles initialised */
    unsigned closing;    /* H_* handles being closed */
    int finishing;       /* an outcome is set; tearing down */
    int res_set;         /* res holds the outcome */
    jobrun_result_t res; /* the outcome */
    uv_timer_t timer;    /* the timeout */
    uv_timer_t grace;    /* kill grace (finishing) or output drain (after exit) */

    /* command */
    uv_process_t proc;   /* the shell */
    uv_pipe_t out;       /* read end of stdout+stderr */
    int proc_live;       /* spawned and not yet reaped */
    int pid;             /* the shell's pid = its process group */
    int exited;          /* exit callback ran */
    int eof;             /* output pipe reached its end */
    int64_t exit_status; /* from the exit callback */
    int exit_signal;     /* from the exit callback */

    /* http */
    uv_getaddrinfo_t gai;    /* name resolution */
    int gai_pending;         /* gai in flight */
    uv_tcp_t tcp;            /* the connection */
    uv_connect_t conn;       /* connect request */
    uv_write_t wreq;         /* the request's write */
    http_parser parser;      /* response parser */
    http_parser_settings ps; /* its callbacks */
    int complete;            /* the response ended */
    char host[MAX_HOST];     /* from the URL */
    char port[8];            /* from the URL, "80" by default */
    char *request;           /* the request bytes */
    size_t request_len;

    /* output */
    char *rbuf;                 /* READ_BUF bytes */
    char ring[JOBRUN_TAIL];     /* last output bytes, circular */
    size_t ring_len;            /* bytes held, <= JOBRUN_TAIL */
    size_t ring_pos;            /* next write position */
    uint64_t total;             /* bytes seen */
    char tail[JOBRUN_TAIL + 1]; /* linearised for the callback */
};

static void teardown(jobrun_t *r);

/* ---- small helpers ---------------------------------------------------------------- */


const char *jobrun_status_name(int status)
{
    static const char *const names[] = {"ok", "failed", "timeout", "error"};
    return status >= 0 && status <= JOBRUN_ERROR ? names[status] : "?";
}

static void tail_append(jobrun_t *r, const char *p, size_t n)
{
    r->total += n;
    if (n >= JOBRUN_TAIL) {
        memcpy(r->ring, p + n - JOBRUN_TAIL, JOBRUN_TAIL);
        r->ring_pos = 0;
        r->ring_len = JOBRUN_TAIL;
        return;
    }
    size_t first = JOBRUN_TAIL - r->ring_pos;
    if (first > n)
        first = n;
    memcpy(r->ring + r->ring_pos, p, first);
    memcpy(r->ring, p + first, n - first);
    r->ring_pos = (r->ring_pos + n) % JOBRUN_TAIL;
    r->ring_len = r->ring_len + n > JOBRUN_TAIL ? JOBRUN_TAIL : r->ring_len + n;
}

/* Copies the ring, oldest byte first, into r->tail. */
static void tail_linearise(jobrun_t *r)
{
    size_t start = (r->ring_pos + JOBRUN_TAIL - r->ring_len) % JOBRUN_TAIL;
    size_t first = JOBRUN_TAIL - start;
    if (first > r->ring_len)
        first = r->ring_len;
    memcpy(r->tail, r->ring + start, first);
    memcpy(r->tail + first, r->ring, r->ring_len - first);
    r->tail[r->ring_len] = '\0';
}

static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

static void kill_group(jobrun_t *r, int sig)
{
    if (r->pid > 0)
        kill(-r->pid, sig); /* ESRCH: the group is already empty */
}

/* ---- outcome and teardown ---------------------------------------------------------- */

/* Calls back and frees the run once nothing of it is left on the loop. */
static void maybe_deliver(jobrun_t *r)
{
    if (!r->finishing || r->handles > 0 || r->reqs > 0 || r->proc_live)
        return;
    tail_linearise(r);
    r->res.output = r->tail;
    r->res.output_len = r->ring_len;
    r->res.output_total = r->total;
    r->cb(&r->res, r->arg);
    free(r->request);
    free(r->rbuf);
    free(r);
}

static void on_close(uv_handle_t *h)
{
    jobrun_t *r = h->data;
    r->handles--;
    maybe_deliver(r);
}

static void close_handle(jobrun_t *r, uv_handle_t *h, unsigned bit)
{
    if (!(r->opened & bit) || (r->closing & bit))
        return;
    r->closing |= bit;
    uv_close(h, on_close);
}

/* Records the outcome (the first one wins) and starts tearing down. */
static void finish(jobrun_t *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void finish(jobrun_t *r, int status, const char *fmt, ...)
{
    if (r->res_set)
        return;
    va_list ap;
    r->res_set = 1;
    r->finishing = 1;
    r->res.status = status;
    r->res.duration_ms = (int64_t)((uv_hrtime() - r->start_ns) / 1000000);
    va_start(ap, fmt);
    vsnprintf(r->res.message, sizeof(r->res.message), fmt, ap);
    va_end(ap);
    teardown(r);
}

/* Closes what can be closed now. A live process keeps the run open: it is
 * signalled by whoever ended the run, and its exit callback calls here again. */
static void teardown(jobrun_t *r)
{
    close_handle(r, (uv_handle_t *)&r->out, H_PIPE);
    close_handle(r, (uv_handle_t *)&r->tcp, H_TCP);
    close_handle(r, (uv_handle_t *)&r->timer, H_TIMER);
    if (r->gai_pending)
        uv_cancel((uv_req_t *)&r->gai); /* if it already runs, its callback comes anyway */
    if (r->proc_live)
        return;
    close_handle(r, (uv_handle_t *)&r->grace, H_GRACE);
    close_handle(r, (uv_handle_t *)&r->proc, H_PROC);
    maybe_deliver(r);
}

static void cmd_conclude(jobrun_t *r);

static void on_grace(uv_timer_t *t)
{
    jobrun_t *r = t->data;
    if (r->finishing) { /* the kill grace after a timeout is over */
        size_t len = strlen(r->res.message);
        snprintf(r->res.message + len, sizeof(r->res.message) - len,
                 "; still running %" PRId64 " ms after SIGTERM: SIGKILL", r->grace_ms);
        kill_group(r, SIGKILL);
        return;
    }
    r->eof = 1; /* the output drain after the shell exited is over */
    cmd_conclude(r);
}

/* Both the shell's exit and the end of its output are in: the outcome. */
static void cmd_conclude(jobrun_t *r)
{
    if (!r->exited || !r->eof)
        return;
    uv_timer_stop(&r->grace);
    if (r->exit_signal)
        finish(r, JOBRUN_FAILED, "killed by signal %d (%s)", r->exit_signal,
               strsignal(r->exit_signal));
    else if (r->exit_status)
        finish(r, JOBRUN_FAILED, "exit status %d", (int)r->exit_status);
    else
        finish(r, JOBRUN_OK, "%s", "");
}

static void on_timeout(uv_timer_t *t)
{
    jobrun_t *r = t->data;
    if (r->kind == KIND_CMD && r->proc_live) {
        kill_group(r, SIGTERM);
        uv_timer_start(&r->grace, on_grace, (uint64_t)r->grace_ms, 0);
    }
    finish(r, JOBRUN_TIMEOUT, "timed out after %" PRId64 " ms", r->timeout_ms);
}

void jobrun_cancel(jobrun_t *r)
{
    if (r->res_set)
        return;
    if (r->kind == KIND_CMD && r->proc_live)
        kill_group(r, SIGKILL);
    finish(r, JOBRUN_ERROR, "cancelled");
}

/* ---- command ---------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    jobrun_t *r = h->data;
    *buf = uv_buf_init(r->rbuf, READ_BUF);
}

static void on_cmd_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    jobrun_t *r = s->data;
    if (nread > 0) {
        tail_append(r, buf->base, (size_t)nread);
        return;
    }
    if (nread == 0)
        return;
    uv_read_stop(s); /* EOF or a read error: the output has ended either way */
    r->eof = 1;
    cmd_conclude(r);
}

static void on_exit_cb(uv_process_t *p, int64_t exit_status, int term_signal)
{
    jobrun_t *r = p->data;
    r->proc_live = 0;
    r->exited = 1;
    r->exit_status = exit_status;
    r->exit_signal = term_signal;
    r->res.exit_code = term_signal ? -1 : (int)exit_status;
    r->res.term_signal = term_signal;
    kill_group(r, SIGKILL); /* whatever the shell left behind */
    if (r->finishing) {
        teardown(r);
        return;
    }
    if (r->eof) {
        cmd_conclude(r);
        return;
    }
    /* The group is dead, so EOF is on its way, unless a process that left
     * the group holds the pipe: do not wait for it forever. */
    uv_timer_start(&r->grace, on_grace, DRAIN_MS, 0);
}

/* Returns a NULL-terminated copy of environ without COHORT_* job variables,
 * plus the four of this run; free it with free_env(). */
static char **build_env(const jobrun_spec_t *spec)
{
    static const char *const ours[] = {
        "COHORT_JOB=", "COHORT_SLOT=", "COHORT_EPOCH=", "COHORT_NODE="};
    size_t n = 0, k = 0;
    while (environ && environ[n])
        n++;
    char **env = xcalloc(n + 5, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        int skip = 0;
        for (size_t j = 0; j < 4 && !skip; j++)
            skip = strncmp(environ[i], ours[j], strlen(ours[j])) == 0;
        if (!skip)
            env[k++] = xstrdup(environ[i]);
    }
    char tmp[64];
    size_t len = strlen(spec->job) + strlen(spec->node) + 32;
    env[k] = xmalloc(len);
    snprintf(env[k++], len, "COHORT_JOB=%s", spec->job);
    snprintf(tmp, sizeof(tmp), "COHORT_SLOT=%" PRId64, spec->slot_ms);
    env[k++] = xstrdup(tmp);
    snprintf(tmp, sizeof(tmp), "COHORT_EPOCH=%" PRIu64, spec->epoch);
    env[k++] = xstrdup(tmp);
    env[k] = xmalloc(len);
    snprintf(env[k++], len, "COHORT_NODE=%s", spec->node);
    env[k] = NULL;
    return env;
}

static void free_env(char **env)
{
    for (size_t i = 0; env[i]; i++)
        free(env[i]);
    free(env);
}

static void start_command(jobrun_t *r, const jobrun_spec_t *spec)
{
    uv_file fds[2];
    int rc = uv_pipe(fds, 0, 0);
    if (rc < 0) {
        finish(r, JOBRUN_ERROR, "pipe: %s", uv_strerror(rc));
        return;
    }
    uv_pipe_init(r->loop, &r->out, 0);
    r->out.data = r;
    r->opened |= H_PIPE;
    r->handles++;
    rc = uv_pipe_open(&r->out, fds[0]);
    if (rc < 0) {
        close(fds[0]);
        close(fds[1]);
        finish(r, JOBRUN_ERROR, "pipe: %s", uv_strerror(rc));
        return;
    }

    char *args[] = {"sh", "-c", (char *)spec->command, NULL};
    char **env = build_env(spec);
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = fds[1];
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = fds[1];
    uv_process_options_t opt = {0};
    opt.exit_cb = on_exit_cb;
    opt.file = "/bin/sh";
    opt.args = args;
    opt.env = env;
    opt.flags = UV_PROCESS_DETACHED; /* setsid: its own session and process group */
    opt.stdio_count = 3;
    opt.stdio = stdio;
    r->proc.data = r;
    rc = uv_spawn(r->loop, &r->proc, &opt);
    r->opened |= H_PROC; /* initialised even when uv_spawn fails */
    r->handles++;
    close(fds[1]);
    free_env(env);
    if (rc < 0) {
        finish(r, JOBRUN_ERROR, "spawn /bin/sh: %s", uv_strerror(rc));
        return;
    }
    r->proc_live = 1;
    r->pid = r->proc.pid;
    uv_read_start((uv_stream_t *)&r->out, on_alloc, on_cmd_read);
}

/* ---- http ------------------------------------------------------------------------- */

/* Splits url into host, port and the request target. Returns 0, or -1 with
 * the reason in err. */
static int split_url(const char *url, char *host, size_t hostlen, char *port, size_t portlen,
                     const char **target, char *err, size_t errlen)
{
    struct http_parser_url u;
    size_t len = strlen(url);
    if (len == 0 || len > MAX_URL) {
        errmsg(err, errlen, "%s", len ? "URL too long" : "empty URL");
        return -1;
    }
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, len, 0, &u) != 0) {
        errmsg(err, errlen, "not a URL: '%.100s'", url);
        return -1;
    }
    if (!(u.field_set & (1 << UF_SCHEMA)) || u.field_data[UF_SCHEMA].len != 4 ||
        strncasecmp(url + u.field_data[UF_SCHEMA].off, "http", 4) != 0) {
        errmsg(err, errlen, "only http:// URLs are supported: '%.100s'", url);
        return -1;
    }
    if (u.field_set & (1 << UF_USERINFO)) {
        errmsg(err, errlen, "user info in the URL is not supported");
        return -1;
    }
    if (!(u.field_set & (1 << UF_HOST)) || u.field_data[UF_HOST].len >= hostlen) {
        errmsg(err, errlen, "no host in '%.100s'", url);
        return -1;
    }
    if (u.field_set & (1 << UF_FRAGMENT)) {
        errmsg(err, errlen, "a URL with a #fragment is not supported");
        return -1;
    }
    memcpy(host, url + u.field_data[UF_HOST].off, u.field_data[UF_HOST].len);
    host[u.field_data[UF_HOST].len] = '\0';
    if (u.field_set & (1 << UF_PORT)) {
        if (u.port == 0) {
            errmsg(err, errlen, "port 0 in '%.100s'", url);
            return -1;
        }
        snprintf(port, portlen, "%u", u.port);
    } else {
        snprintf(port, portlen, "80");
    }
    *target = u.field_set & (1 << UF_PATH) ? url + u.field_data[UF_PATH].off : NULL;
    return 0;
}

int jobrun_check_url(const char *url, char *err, size_t errlen)
{
    char host[MAX_HOST], port[8];
    const char *target;
    if (!url) {
        errmsg(err, errlen, "empty URL");
        return -1;
    }
    if (has_control(url) || strchr(url, ' ')) {
        errmsg(err, errlen, "spaces or control characters in the URL");
        return -1;
    }
    return split_url(url, host, sizeof(host), port, sizeof(port), &target, err, errlen);
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    tail_append(p->data, at, len);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    jobrun_t *r = p->data;
    r->complete = 1;
    return 1; /* stop parsing: the one response is in */
}

static void http_conclude(jobrun_t *r)
{
    int st = (int)r->parser.status_code;
    r->res.http_status = st;
    if (st >= 200 && st < 300)
        finish(r, JOBRUN_OK, "%s", "");
    else
        finish(r, JOBRUN_FAILED, "HTTP %d", st);
}

static void on_http_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    jobrun_t *r = s->data;
    if (nread == 0 || r->finishing)
        return;
    if (nread > 0) {
        size_t used = http_parser_execute(&r->parser, &r->ps, buf->base, (size_t)nread);
        if (r->complete) {
            http_conclude(r);
        } else if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK || used != (size_t)nread) {
            finish(r, JOBRUN_ERROR, "bad HTTP response: %s",
                   http_errno_description(HTTP_PARSER_ERRNO(&r->parser)));
        }
        return;
    }
    if (nread == UV_EOF) {
        http_parser_execute(&r->parser, &r->ps, NULL, 0); /* a body ended by close */
        if (r->complete) {
            http_conclude(r);
            return;
        }
    }
    finish(r, JOBRUN_ERROR, "connection to %s:%s closed before the response ended%s%s", r->host,
           r->port, nread == UV_EOF ? "" : ": ", nread == UV_EOF ? "" : uv_strerror((int)nread));
}

static void on_write(uv_write_t *w, int status)
{
    jobrun_t *r = w->data;
    r->reqs--;
    if (status < 0 && status != UV_ECANCELED)
        finish(r, JOBRUN_ERROR, "sending the request to %s:%s: %s", r->host, r->port,
               uv_strerror(status));
    maybe_deliver(r);
}

static void on_connect(uv_connect_t *c, int status)
{
    jobrun_t *r = c->data;
    r->reqs--;
    if (r->finishing) {
        maybe_deliver(r);
        return;
    }
    if (status < 0) {
        finish(r, JOBRUN_ERROR, "connect to %s:%s: %s", r->host, r->port, uv_strerror(status));
        return;
    }
    uv_buf_t b = uv_buf_init(r->request, (unsigned)r->request_len);
    r->wreq.data = r;
    int rc = uv_write(&r->wreq, (uv_stream_t *)&r->tcp, &b, 1, on_write);
    if (rc < 0) {
        finish(r, JOBRUN_ERROR, "sending the request to %s:%s: %s", r->host, r->port,
               uv_strerror(rc));
        return;
    }
    r->reqs++;
    uv_read_start((uv_stream_t *)&r->tcp, on_alloc, on_http_read);
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    jobrun_t *r = g->data;
    r->reqs--;
    r->gai_pending = 0;
    if (r->finishing || status < 0) {
        if (!r->finishing)
            finish(r, JOBRUN_ERROR, "resolve %s: %s", r->host, uv_strerror(status));
        uv_freeaddrinfo(res);
        maybe_deliver(r);
        return;
    }
    struct addrinfo *ai = res;
    for (struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            ai = a;
            break;
        }
    uv_tcp_init(r->loop, &r->tcp);
    r->tcp.data = r;
    r->opened |= H_TCP;
    r->handles++;
    r->conn.data = r;
    int rc = uv_tcp_connect(&r->conn, &r->tcp, ai->ai_addr, on_connect);
    uv_freeaddrinfo(res);
    if (rc < 0) {
        finish(r, JOBRUN_ERROR, "connect to %s:%s: %s", r->host, r->port, uv_strerror(rc));
        return;
    }
    r->reqs++;
}

/* Builds the request bytes into r->request. */
static void build_request(jobrun_t *r, const jobrun_spec_t *spec, const char *target)
{
    const char *method = spec->method == JOBRUN_POST ? "POST" : "GET";
    int v6 = strchr(r->host, ':') != NULL;
    const char *fmt = "%s %s HTTP/1.1\r\n"
                      "Host: %s%s%s%s%s\r\n"
                      "User-Agent: cohort\r\n"
                      "Cohort-Job: %s\r\n"
                      "Cohort-Slot: %" PRId64 "\r\n"
                      "Cohort-Epoch: %" PRIu64 "\r\n"
                      "Cohort-Node: %s\r\n"
                      "%s"
                      "Connection: close\r\n"
                      "\r\n";
    const char *port_sep = strcmp(r->port, "80") ? ":" : "";
    const char *port = strcmp(r->port, "80") ? r->port : "";
    const char *cl = spec->method == JOBRUN_POST ? "Content-Length: 0\r\n" : "";
    target = target ? target : "/";
    int n = snprintf(NULL, 0, fmt, method, target, v6 ? "[" : "", r->host, v6 ? "]" : "", port_sep,
                     port, spec->job, spec->slot_ms, spec->epoch, spec->node, cl);
    r->request = xmalloc((size_t)n + 1);
    snprintf(r->request, (size_t)n + 1, fmt, method, target, v6 ? "[" : "", r->host, v6 ? "]" : "",
             port_sep, port, spec->job, spec->slot_ms, spec->epoch, spec->node, cl);
    r->request_len = (size_t)n;
}

static void start_http(jobrun_t *r, const jobrun_spec_t *spec, const char *target)
{
    build_request(r, spec, target);
    http_parser_init(&r->parser, HTTP_RESPONSE);
    r->parser.data = r;
    http_parser_settings_init(&r->ps);
    r->ps.on_body = on_body;
    r->ps.on_message_complete = on_message_complete;
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    r->gai.data = r;
    int rc = uv_getaddrinfo(r->loop, &r->gai, on_resolved, r->host, r->port, &hints);
    if (rc < 0) {
        finish(r, JOBRUN_ERROR, "resolve %s: %s", r->host, uv_strerror(rc));
        return;
    }
    r->gai_pending = 1;
    r->reqs++;
}

/* ---- start ------------------------------------------------------------------------ */

int jobrun_start(uv_loop_t *loop, const jobrun_spec_t *spec, jobrun_cb cb, void *arg,
                 jobrun_t **out, char *err, size_t errlen)
{
    char host[MAX_HOST], port[8];
    const char *target = NULL;
    if (!!spec->command == !!spec->url) {
        errmsg(err, errlen, "a job runs either a command or a URL");
        return -1;
    }
    if (spec->timeout_ms <= 0 || spec->kill_grace_ms < 0) {
        errmsg(err, errlen, "the timeout must be positive");
        return -1;
    }
    if (!spec->job || !spec->node || has_control(spec->job) || has_control(spec->node)) {
        errmsg(err, errlen, "job and node names must be given, without control characters");
        return -1;
    }
    if (spec->command && !*spec->command) {
        errmsg(err, errlen, "empty command");
        return -1;
    }
    if (spec->url &&
        (jobrun_check_url(spec->url, err, errlen) < 0 ||
         split_url(spec->url, host, sizeof(host), port, sizeof(port), &target, err, errlen) < 0))
        return -1;

    jobrun_t *r = xcalloc(1, sizeof(*r));
    r->loop = loop;
    r->cb = cb;
    r->arg = arg;
    r->kind = spec->command ? KIND_CMD : KIND_HTTP;
    r->timeout_ms = spec->timeout_ms;
    r->grace_ms = spec->kill_grace_ms ? spec->kill_grace_ms : JOBRUN_KILL_GRACE_MS;
    r->start_ns = uv_hrtime();
    r->rbuf = xmalloc(READ_BUF);
    r->res.exit_code = -1;
    uv_timer_init(loop, &r->timer);
    uv_timer_init(loop, &r->grace);
    r->timer.data = r->grace.data = r;
    r->opened |= H_TIMER | H_GRACE;
    r->handles += 2;
    uv_timer_start(&r->timer, on_timeout, (uint64_t)spec->timeout_ms, 0);
    if (out)
        *out = r;
    if (r->kind == KIND_CMD) {
        start_command(r, spec);
    } else {
        snprintf(r->host, sizeof(r->host), "%s", host);
        snprintf(r->port, sizeof(r->port), "%s", port);
        start_http(r, spec, target);
    }
    return 0;
}
