/* Tests for http.c: a real server on 127.0.0.1 driven by plain client sockets
 * in the same thread. The test pumps the loop (UV_RUN_NOWAIT) while it waits
 * for the server's answer, so every wait is bounded by a deadline and nothing
 * races. Every test ends with http_stop and asserts the loop closes cleanly. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "http.h"

#define MAX_REQUEST      1024
#define SERVER_MAX_CONNS 256  /* HTTP_MAX_CONNS in http.c */
#define WAIT_MS          3000 /* longest wait for any answer */
#define CLIENT_BUF_MAX   (4u << 20)

/* ---- the test server ------------------------------------------------------- */

typedef struct app {
    int calls;            /* handler invocations */
    char last_query[256]; /* query of the last handler call */
} app_t;

static int h_hello(void *ud, const char *query, buf_t *body, const char **ct)
{
    app_t *a = ud;
    a->calls++;
    snprintf(a->last_query, sizeof(a->last_query), "%s", query);
    buf_append_str(body, "hello\n");
    return 200;
}

static int h_query(void *ud, const char *query, buf_t *body, const char **ct)
{
    app_t *a = ud;
    a->calls++;
    buf_printf(body, "{\"q\":\"%s\"}", query);
    *ct = "application/json";
    return 200;
}

static int h_submit(void *ud, const char *query, buf_t *body, const char **ct)
{
    app_t *a = ud;
    a->calls++;
    buf_append_str(body, "created\n");
    return 201;
}

static int h_broken(void *ud, const char *query, buf_t *body, const char **ct)
{
    app_t *a = ud;
    a->calls++;
    buf_append_str(body, "never sent");
    return 42; /* not an HTTP status */
}

static int h_big(void *ud, const char *query, buf_t *body, const char **ct)
{
    app_t *a = ud;
    a->calls++;
    for (int i = 0; i < 100000; i++)
        buf_append_str(body, "0123456789");
    return 200;
}

static const http_route_t routes[] = {
    {"GET", "/hello", h_hello},   {"GET", "/query", h_query},   {"POST", "/submit", h_submit},
    {"PUT", "/submit", h_submit}, {"GET", "/broken", h_broken}, {"GET", "/big", h_big},
};

typedef struct fixture {
    uv_loop_t loop;
    http_server_t *srv;
    int port;
    app_t app;
} fixture_t;

static fixture_t *F; /* the current test's fixture, for the helpers */

/* A port that was free a moment ago. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char err[256];
    assert_int_equal(uv_loop_init(&f->loop), 0);
    for (int attempt = 0; attempt < 5 && !f->srv; attempt++) {
        f->port = free_port();
        f->srv = http_start(&f->loop, "127.0.0.1", f->port, MAX_REQUEST, routes,
                            sizeof(routes) / sizeof(routes[0]), &f->app, err, sizeof(err));
        if (!f->srv)
            uv_run(&f->loop, UV_RUN_NOWAIT); /* releases the failed listener */
    }
    assert_non_null(f->srv);
    F = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    http_stop(f->srv);
    int rc = uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(rc, 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    F = NULL;
    return 0;
}

/* ---- the client side ------------------------------------------------------- */

typedef struct client {
    int fd;
    char *buf; /* bytes received and not yet taken as a response */
    size_t len;
    size_t cap; /* grows up to CLIENT_BUF_MAX */
    int eof;    /* orderly close seen */
    int reset;  /* connection reset seen */
} client_t;

typedef struct response {
    int status;
    char head[4096]; /* status line and headers */
    char *body;      /* NUL-terminated, malloc'd */
    size_t body_len;
} response_t;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs the server's loop for a moment and takes what the client received. */
static void pump(client_t *c, int wait_ms)
{
    uv_run(&F->loop, UV_RUN_NOWAIT);
    if (!c) {
        poll(NULL, 0, wait_ms);
        uv_run(&F->loop, UV_RUN_NOWAIT);
        return;
    }
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    poll(&p, 1, wait_ms);
    uv_run(&F->loop, UV_RUN_NOWAIT);
    while (!c->eof && !c->reset) {
        if (c->len == c->cap) {
            if (c->cap >= CLIENT_BUF_MAX)
                break;
            c->cap *= 2;
            c->buf = realloc(c->buf, c->cap);
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
        if (n > 0) {
            c->len += (size_t)n;
        } else if (n == 0) {
            c->eof = 1;
        } else {
            if (errno == ECONNRESET)
                c->reset = 1;
            break;
        }
    }
}

static void pump_for(int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    while (now_ms() < end)
        pump(NULL, 5);
}

static client_t *cli_open(void)
{
    client_t *c = calloc(1, sizeof(*c));
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)F->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    c->cap = 64 * 1024;
    c->buf = malloc(c->cap);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    uv_run(&F->loop, UV_RUN_NOWAIT); /* let the server accept: the backlog is short */
    return c;
}

static void cli_close(client_t *c)
{
    close(c->fd);
    free(c->buf);
    free(c);
}

/* Sends all of data, running the server while the socket is full. Returns 0,
 * or -1 if the server closed the connection first. */
static int cli_send(client_t *c, const void *data, size_t len)
{
    const char *p = data;
    uint64_t end = now_ms() + WAIT_MS;
    while (len > 0 && now_ms() < end) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return -1;
        } else {
            pump(c, 5);
        }
    }
    return len == 0 ? 0 : -1;
}

static int cli_send_str(client_t *c, const char *s)
{
    return cli_send(c, s, strlen(s));
}

/* Value of header name in r (case-insensitive), copied to out; 0 if found. */
static int resp_header(const response_t *r, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *line = strstr(r->head, "\r\n");
    while (line && line[2] != '\0') {
        line += 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t vl = e ? (size_t)(e - v) : strlen(v);
            if (vl >= outlen)
                vl = outlen - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 0;
        }
        line = strstr(line, "\r\n");
    }
    return -1;
}

/* Takes one complete response from the bytes received (waiting for them up to
 * WAIT_MS). head_request: the response has no body whatever its
 * Content-Length says. Returns 0, or -1 if none arrived or it is malformed. */
static int cli_response(client_t *c, int head_request, response_t *r)
{
    uint64_t end = now_ms() + WAIT_MS;
    memset(r, 0, sizeof(*r));
    for (;;) {
        char *hdr_end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (hdr_end) {
            size_t hlen = (size_t)(hdr_end - c->buf) + 4;
            assert_true(hlen < sizeof(r->head));
            memcpy(r->head, c->buf, hlen);
            r->head[hlen] = '\0';
            if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1)
                return -1;
            char cl[32];
            if (resp_header(r, "Content-Length", cl, sizeof(cl)) != 0)
                return -1;
            size_t blen = head_request ? 0 : strtoul(cl, NULL, 10);
            if (c->len >= hlen + blen) {
                r->body = malloc(blen + 1);
                memcpy(r->body, c->buf + hlen, blen);
                r->body[blen] = '\0';
                r->body_len = blen;
                memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
                c->len -= hlen + blen;
                return 0;
            }
        }
        if (c->eof || c->reset || now_ms() >= end)
            return -1;
        pump(c, 5);
    }
}

static void resp_free(response_t *r)
{
    free(r->body);
    r->body = NULL;
}

/* 1 if the server closes the connection within WAIT_MS without sending
 * anything more, 0 otherwise. */
static int cli_closed(client_t *c)
{
    uint64_t end = now_ms() + WAIT_MS;
    while (!c->eof && !c->reset && now_ms() < end)
        pump(c, 5);
    return (c->eof || c->reset) && c->len == 0;
}

/* 1 if the connection is still open after running the server a while. */
static int cli_open_after(client_t *c, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    while (now_ms() < end && !c->eof && !c->reset)
        pump(c, 5);
    return !c->eof && !c->reset;
}

/* Sends request on c and expects one response with this status. */
static void expect_status(client_t *c, const char *request, int status, response_t *r)
{
    assert_int_equal(cli_send_str(c, request), 0);
    assert_int_equal(cli_response(c, strncmp(request, "HEAD ", 5) == 0, r), 0);
    assert_int_equal(r->status, status);
}

/* A fresh connection still gets a normal answer. */
static void assert_server_answers(void)
{
    client_t *c = cli_open();
    response_t r;
    expect_status(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", 200, &r);
    assert_string_equal(r.body, "hello\n");
    resp_free(&r);
    cli_close(c);
}

/* Sends a bad request and checks: the status, "Connection: close", the
 * connection closed, no handler run, one more bad request counted. */
static void expect_rejected(const void *req, size_t len, int status)
{
    int calls = F->app.calls;
    unsigned long long bad = http_counters(F->srv)->bad_requests;
    client_t *c = cli_open();
    response_t r;
    cli_send(c, req, len); /* the server may close before taking it all */
    assert_int_equal(cli_response(c, 0, &r), 0);
    assert_int_equal(r.status, status);
    char v[64];
    assert_int_equal(resp_header(&r, "Connection", v, sizeof(v)), 0);
    assert_string_equal(v, "close");
    assert_true(cli_closed(c));
    assert_int_equal(F->app.calls, calls);
    assert_int_equal(http_counters(F->srv)->bad_requests, bad + 1);
    resp_free(&r);
    cli_close(c);
}

#define REJECT(lit, status) expect_rejected(lit, sizeof(lit) - 1, status)

/* ---- tests ----------------------------------------------------------------- */

static void test_get(void **state)
{
    client_t *c = cli_open();
    response_t r;
    char v[128];
    expect_status(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", 200, &r);
    assert_true(strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_int_equal(resp_header(&r, "Content-Type", v, sizeof(v)), 0);
    assert_string_equal(v, "text/plain; charset=utf-8");
    assert_int_equal(resp_header(&r, "Content-Length", v, sizeof(v)), 0);
    assert_string_equal(v, "6");
    assert_int_not_equal(resp_header(&r, "Connection", v, sizeof(v)), 0);
    assert_string_equal(r.body, "hello\n");
    assert_string_equal(F->app.last_query, "");
    assert_int_equal(F->app.calls, 1);
    assert_true(cli_open_after(c, 50)); /* HTTP/1.1 keeps the connection */
    resp_free(&r);
    cli_close(c);
}

static void test_keep_alive(void **state)
{
    client_t *c = cli_open();
    response_t r;
    expect_status(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", 200, &r);
    resp_free(&r);
    expect_status(c, "GET /query?x=1 HTTP/1.1\r\nHost: t\r\n\r\n", 200, &r);
    assert_string_equal(r.body, "{\"q\":\"x=1\"}");
    resp_free(&r);
    const http_counters_t *k = http_counters(F->srv);
    assert_int_equal(k->connections, 1);
    assert_int_equal(k->requests, 2);
    assert_int_equal(k->bad_requests, 0);
    cli_close(c);
}

static void test_pipelined(void **state)
{
    client_t *c = cli_open();
    response_t r;
    assert_int_equal(cli_send_str(c, "GET /query?first HTTP/1.1\r\nHost: t\r\n\r\n"
                                     "GET /query?second HTTP/1.1\r\nHost: t\r\n\r\n"
                                     "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"),
                     0);
    assert_int_equal(cli_response(c, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"q\":\"first\"}");
    resp_free(&r);
    assert_int_equal(cli_response(c, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"q\":\"second\"}");
    resp_free(&r);
    assert_int_equal(cli_response(c, 0, &r), 0);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    assert_int_equal(http_counters(F->srv)->requests, 3);
    cli_close(c);
}

static void test_pipelined_then_close(void **state)
{
    /* the second request asks to close: the third is never answered */
    client_t *c = cli_open();
    response_t r;
    assert_int_equal(cli_send_str(c, "GET /hello HTTP/1.1\r\n\r\n"
                                     "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n"
                                     "GET /hello HTTP/1.1\r\n\r\n"),
                     0);
    assert_int_equal(cli_response(c, 0, &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    assert_int_equal(cli_response(c, 0, &r), 0);
    assert_int_equal(r.status, 200);
    char v[32];
    assert_int_equal(resp_header(&r, "Connection", v, sizeof(v)), 0);
    assert_string_equal(v, "close");
    resp_free(&r);
    assert_true(cli_closed(c));
    assert_int_equal(F->app.calls, 2);
    cli_close(c);
}

static void test_not_found(void **state)
{
    client_t *c = cli_open();
    response_t r;
    expect_status(c, "GET /nothing HTTP/1.1\r\n\r\n", 404, &r);
    assert_string_equal(r.body, "Not Found\n");
    resp_free(&r);
    expect_status(c, "GET /hello/ HTTP/1.1\r\n\r\n", 404, &r); /* exact match only */
    resp_free(&r);
    expect_status(c, "GET /HELLO HTTP/1.1\r\n\r\n", 404, &r);
    resp_free(&r);
    assert_true(cli_open_after(c, 20)); /* not a bad request */
    assert_int_equal(F->app.calls, 0);
    assert_int_equal(http_counters(F->srv)->bad_requests, 0);
    cli_close(c);
}

static void test_method_not_allowed(void **state)
{
    client_t *c = cli_open();
    response_t r;
    char v[64];
    expect_status(c, "POST /hello HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405, &r);
    assert_int_equal(resp_header(&r, "Allow", v, sizeof(v)), 0);
    assert_string_equal(v, "GET, HEAD");
    resp_free(&r);
    expect_status(c, "GET /submit HTTP/1.1\r\n\r\n", 405, &r);
    assert_int_equal(resp_header(&r, "Allow", v, sizeof(v)), 0);
    assert_string_equal(v, "POST, PUT");
    resp_free(&r);
    expect_status(c, "DELETE /hello HTTP/1.1\r\n\r\n", 405, &r);
    resp_free(&r);
    assert_int_equal(F->app.calls, 0);
    cli_close(c);
}

static void test_head(void **state)
{
    client_t *c = cli_open();
    response_t r;
    char v[32];
    expect_status(c, "HEAD /hello HTTP/1.1\r\n\r\n", 200, &r);
    assert_int_equal(resp_header(&r, "Content-Length", v, sizeof(v)), 0);
    assert_string_equal(v, "6");
    assert_int_equal(r.body_len, 0);
    resp_free(&r);
    /* no body bytes followed: the next response starts right away */
    expect_status(c, "GET /hello HTTP/1.1\r\n\r\n", 200, &r);
    assert_string_equal(r.body, "hello\n");
    resp_free(&r);
    expect_status(c, "HEAD /nothing HTTP/1.1\r\n\r\n", 404, &r);
    resp_free(&r);
    expect_status(c, "GET /hello HTTP/1.1\r\n\r\n", 200, &r);
    resp_free(&r);
    assert_int_equal(c->len, 0);
    cli_close(c);
}

static void test_query_and_url_forms(void **state)
{
    client_t *c = cli_open();
    response_t r;
    char v[64];
    expect_status(c, "GET /query?a=1&b=%20x HTTP/1.1\r\n\r\n", 200, &r);
    assert_string_equal(r.body, "{\"q\":\"a=1&b=%20x\"}");
    assert_int_equal(resp_header(&r, "Content-Type", v, sizeof(v)), 0);
    assert_string_equal(v, "application/json");
    resp_free(&r);
    expect_status(c, "GET /query?z=1#frag HTTP/1.1\r\n\r\n", 200, &r);
    assert_string_equal(r.body, "{\"q\":\"z=1\"}");
    resp_free(&r);
    expect_status(c, "GET /query HTTP/1.1\r\n\r\n", 200, &r);
    assert_string_equal(r.body, "{\"q\":\"\"}");
    resp_free(&r);
    /* absolute form, and blank lines before a request */
    expect_status(c, "GET http://localhost:7380/hello HTTP/1.1\r\n\r\n", 200, &r);
    resp_free(&r);
    expect_status(c, "\r\n\r\nGET /hello HTTP/1.1\r\n\r\n", 200, &r);
    resp_free(&r);
    cli_close(c);
}

static void test_request_body(void **state)
{
    client_t *c = cli_open();
    response_t r;
    expect_status(c, "POST /submit HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", 201, &r);
    assert_string_equal(r.body, "created\n");
    resp_free(&r);
    expect_status(c,
                  "PUT /submit HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\nhello\r\n0\r\n\r\n",
                  201, &r);
    resp_free(&r);
    /* the bodies were consumed exactly: the next request parses */
    expect_status(c, "GET /hello HTTP/1.1\r\n\r\n", 200, &r);
    resp_free(&r);
    cli_close(c);
}

static void test_connection_close_and_http10(void **state)
{
    client_t *c = cli_open();
    response_t r;
    char v[32];
    expect_status(c, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n", 200, &r);
    assert_int_equal(resp_header(&r, "Connection", v, sizeof(v)), 0);
    assert_string_equal(v, "close");
    assert_string_equal(r.body, "hello\n");
    resp_free(&r);
    assert_true(cli_closed(c));
    cli_close(c);

    c = cli_open();
    expect_status(c, "GET /hello HTTP/1.0\r\n\r\n", 200, &r);
    assert_int_equal(resp_header(&r, "Connection", v, sizeof(v)), 0);
    assert_string_equal(v, "close");
    resp_free(&r);
    assert_true(cli_closed(c));
    cli_close(c);

    c = cli_open(); /* an upgrade is not supported: answered, then closed */
    expect_status(c, "GET /hello HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                  200, &r);
    assert_int_equal(resp_header(&r, "Connection", v, sizeof(v)), 0);
    assert_string_equal(v, "close");
    resp_free(&r);
    assert_true(cli_closed(c));
    cli_close(c);

    c = cli_open(); /* HTTP/1.0 closes even when it asks to keep alive */
    expect_status(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200, &r);
    resp_free(&r);
    assert_true(cli_closed(c));
    cli_close(c);
    assert_int_equal(http_counters(F->srv)->bad_requests, 0);
}

static void test_garbage(void **state)
{
    static const char garbage[] = "\x01\x02\xff\xfe garbage\r\n\r\n";
    expect_rejected(garbage, sizeof(garbage) - 1, 400);
    REJECT("FOO /hello HTTP/1.1\r\n\r\n", 400);               /* bad method */
    REJECT("GET /he\x01llo HTTP/1.1\r\n\r\n", 400);           /* bad URL */
    REJECT("GET /hello HTTP/1.1\r\nBad Header\r\n\r\n", 400); /* no colon */
    REJECT("GET /hello HTTP/x.1\r\n\r\n", 400);               /* bad version */
    REJECT("GET * HTTP/1.1\r\n\r\n", 400);                    /* no path */
    REJECT("GET /hello HTTP/2.0\r\n\r\n", 505);
    REJECT("CONNECT example.com:443 HTTP/1.1\r\n\r\n", 400); /* no path */
    REJECT("POST /submit HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400);
    const http_counters_t *k = http_counters(F->srv);
    assert_int_equal(k->bad_requests, 9);
    assert_int_equal(k->requests, 9);
    assert_server_answers();
}

static void test_oversized(void **state)
{
    char req[4096];
    /* headers beyond max_request: 431 while they are still arriving */
    int n = snprintf(req, sizeof(req), "GET /hello HTTP/1.1\r\nX-Big: %0*d\r\n\r\n", 2000, 0);
    expect_rejected(req, (size_t)n, 431);
    /* a long request line is part of the head too */
    n = snprintf(req, sizeof(req), "GET /hello?%0*d HTTP/1.1\r\n\r\n", 1500, 0);
    expect_rejected(req, (size_t)n, 431);
    /* a declared body over the limit: 413 before any of it is read */
    REJECT("POST /submit HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 413);
    /* a chunked body that grows over the limit: 413 */
    n = snprintf(req, sizeof(req),
                 "POST /submit HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "7d0\r\n%0*d\r\n0\r\n\r\n",
                 2000, 0);
    expect_rejected(req, (size_t)n, 413);
    /* a request of exactly max_request bytes is fine */
    const char *fmt = "GET /hello HTTP/1.1\r\nX-Fill: %0*d\r\n\r\n";
    int base = snprintf(NULL, 0, fmt, 0, 0) - 1; /* without the one digit */
    n = snprintf(req, sizeof(req), fmt, MAX_REQUEST - base, 0);
    assert_int_equal(n, MAX_REQUEST);
    client_t *c = cli_open();
    response_t r;
    expect_status(c, req, 200, &r);
    resp_free(&r);
    cli_close(c);
    /* one byte more is not */
    n = snprintf(req, sizeof(req), fmt, MAX_REQUEST - base + 1, 0);
    expect_rejected(req, (size_t)n, 431);
    assert_server_answers();
}

static void test_oversized_stream(void **state)
{
    /* a client that keeps sending a huge head after it was refused still
     * reads the refusal: the server discards its input and waits for its
     * close instead of resetting the connection under the response */
    size_t len = 512 * 1024;
    char *req = malloc(len);
    int n = snprintf(req, len, "GET /hello HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'a', len - (size_t)n);
    expect_rejected(req, len, 431);
    free(req);
    assert_server_answers();
}

static void test_log_rate_limited(void **state)
{
    /* bad requests are all counted, but logged at most 10 a second */
    char path[] = "/tmp/test_http_log_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    /* fifteen bad requests at once: they fall in one log second */
    client_t *cs[15];
    response_t r;
    for (int i = 0; i < 15; i++)
        cs[i] = cli_open();
    for (int i = 0; i < 15; i++)
        assert_int_equal(cli_send_str(cs[i], "BAD\r\n\r\n"), 0);
    for (int i = 0; i < 15; i++) {
        assert_int_equal(cli_response(cs[i], 0, &r), 0);
        assert_int_equal(r.status, 400);
        resp_free(&r);
        cli_close(cs[i]);
    }
    pump_for(1100);
    REJECT("BAD\r\n\r\n", 400);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_int_equal(http_counters(F->srv)->bad_requests, 16);

    char text[8192];
    ssize_t got = pread(fd, text, sizeof(text) - 1, 0);
    close(fd);
    assert_true(got > 0);
    text[got] = '\0';
    int lines = 0;
    for (char *p = text; (p = strstr(p, "400 Bad Request")) != NULL; p++)
        lines++;
    assert_int_equal(lines, 11);
    assert_non_null(strstr(text, "5 similar messages suppressed"));
}

static void test_one_byte_writes(void **state)
{
    const char *req = "GET /query?slow=1 HTTP/1.1\r\nHost: t\r\nAccept: */*\r\n\r\n";
    client_t *c = cli_open();
    response_t r;
    for (const char *p = req; *p; p++) {
        assert_int_equal(cli_send(c, p, 1), 0);
        pump(c, 0);
    }
    assert_int_equal(cli_response(c, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"q\":\"slow=1\"}");
    resp_free(&r);
    /* and a byte-by-byte bad request is caught the same way */
    const char *bad = "GET /hello HTTP/1.1\r\nX: a\x01"
                      "b\r\n\r\n";
    for (const char *p = bad; *p; p++) {
        if (cli_send(c, p, 1) != 0)
            break;
        pump(c, 0);
    }
    assert_int_equal(cli_response(c, 0, &r), 0);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    assert_true(cli_closed(c));
    cli_close(c);
}

static void test_handler_bad_status(void **state)
{
    client_t *c = cli_open();
    response_t r;
    expect_status(c, "GET /broken HTTP/1.1\r\n\r\n", 500, &r);
    assert_string_equal(r.body, "Internal Server Error\n");
    resp_free(&r);
    expect_status(c, "GET /hello HTTP/1.1\r\n\r\n", 200, &r);
    resp_free(&r);
    cli_close(c);
}

static void test_large_responses_pipelined(void **state)
{
    /* 8 responses of 1 MB to a client that reads only at the end: the server
     * stops reading while they wait, and every one arrives whole and in order */
    client_t *c = cli_open();
    response_t r;
    char req[512] = "";
    for (int i = 0; i < 8; i++)
        strcat(req, "GET /big HTTP/1.1\r\n\r\n");
    strcat(req, "GET /query?last HTTP/1.1\r\n\r\n");
    assert_int_equal(cli_send_str(c, req), 0);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(cli_response(c, 0, &r), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, 1000000);
        assert_true(memcmp(r.body + 999990, "0123456789", 10) == 0);
        resp_free(&r);
    }
    assert_int_equal(cli_response(c, 0, &r), 0);
    assert_string_equal(r.body, "{\"q\":\"last\"}");
    resp_free(&r);
    cli_close(c);
}

static void test_output_backpressure(void **state)
{
    /* a client that asks for 24 MB and reads nothing: the server answers only
     * what the kernel and HTTP_OUT_HIGH hold, then stops reading; once the
     * client reads, the rest is answered */
    enum { N = 24 };
    client_t *c = cli_open();
    int small = 64 * 1024;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    char req[N * 32] = "";
    for (int i = 0; i < N; i++)
        strcat(req, "GET /big HTTP/1.1\r\n\r\n");
    assert_int_equal(send(c->fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    pump_for(300);
    unsigned long long answered = http_counters(F->srv)->requests;
    assert_true(answered >= 1);
    assert_true(answered <= 8);
    response_t r;
    for (int i = 0; i < N; i++) {
        assert_int_equal(cli_response(c, 0, &r), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, 1000000);
        resp_free(&r);
    }
    assert_int_equal(http_counters(F->srv)->requests, N);
    cli_close(c);
}

static void test_slow_client(void **state)
{
    http_set_request_timeout(F->srv, 200);
    client_t *slow = cli_open();
    client_t *idle = cli_open();
    client_t *ka = cli_open();
    response_t r;
    assert_int_equal(cli_send_str(slow, "GET /hello HTTP/1.1\r\nHost:"), 0);
    expect_status(ka, "GET /hello HTTP/1.1\r\n\r\n", 200, &r); /* then idle */
    resp_free(&r);
    uint64_t t0 = now_ms();
    assert_true(cli_closed(slow));
    assert_true(cli_closed(idle));
    assert_true(cli_closed(ka));
    assert_true(now_ms() - t0 < 2000);
    assert_int_equal(F->app.calls, 1);
    cli_close(slow);
    cli_close(idle);
    cli_close(ka);
    http_set_request_timeout(F->srv, 0);
    assert_server_answers();
}

static void test_connection_limit(void **state)
{
    client_t **cs = calloc(SERVER_MAX_CONNS, sizeof(*cs));
    for (int i = 0; i < SERVER_MAX_CONNS; i++)
        cs[i] = cli_open();
    uint64_t end = now_ms() + WAIT_MS;
    while (http_counters(F->srv)->connections < SERVER_MAX_CONNS && now_ms() < end)
        pump(NULL, 1);
    assert_int_equal(http_counters(F->srv)->connections, SERVER_MAX_CONNS);
    client_t *extra = cli_open();
    assert_true(cli_closed(extra)); /* accepted and closed at once */
    cli_close(extra);
    assert_true(cli_open_after(cs[0], 20));
    /* one leaves: there is room again */
    cli_close(cs[0]);
    pump_for(50);
    client_t *c = cli_open();
    response_t r;
    expect_status(c, "GET /hello HTTP/1.1\r\n\r\n", 200, &r);
    resp_free(&r);
    cli_close(c);
    for (int i = 1; i < SERVER_MAX_CONNS; i++)
        cli_close(cs[i]);
    free(cs);
    pump_for(50);
    assert_server_answers();
}

static void test_stop_closes_connections(void **state)
{
    client_t *a = cli_open();
    client_t *b = cli_open();
    response_t r;
    expect_status(a, "GET /hello HTTP/1.1\r\n\r\n", 200, &r);
    resp_free(&r);
    assert_int_equal(cli_send_str(b, "GET /hel"), 0);
    pump(b, 10);
    http_stop(F->srv);
    http_stop(F->srv); /* twice is harmless */
    F->srv = NULL;
    assert_int_equal(uv_run(&F->loop, UV_RUN_DEFAULT), 0);
    assert_true(cli_closed(a));
    assert_true(cli_closed(b));
    /* nothing listens any more */
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)F->port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_not_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    close(fd);
    cli_close(a);
    cli_close(b);
}

static void test_start_errors(void **state)
{
    char err[256];
    http_server_t *h =
        http_start(&F->loop, "not-an-address", 0, 0, routes, 1, NULL, err, sizeof(err));
    assert_null(h);
    assert_non_null(strstr(err, "not-an-address"));
    h = http_start(&F->loop, "127.0.0.1", 70000, 0, routes, 1, NULL, err, sizeof(err));
    assert_null(h);
    /* the port is taken by the fixture's server */
    err[0] = '\0';
    h = http_start(&F->loop, "127.0.0.1", F->port, 0, routes, 1, NULL, err, sizeof(err));
    assert_null(h);
    assert_non_null(strstr(err, "cannot listen"));
    /* the fixture still works; teardown checks the loop closes cleanly */
    assert_server_answers();
}

static void test_survives_everything(void **state)
{
    /* bad requests of every kind on one server, interleaved with good ones */
    char big[2048];
    memset(big, 'a', sizeof(big));
    for (int round = 0; round < 3; round++) {
        REJECT("\r\n\x7f\x7f\r\n\r\n", 400);
        expect_rejected(big, sizeof(big), 400); /* 'aaaa...' is not a method */
        int n = snprintf(big, sizeof(big), "GET /%0*d HTTP/1.1\r\n\r\n", 1500, 0);
        expect_rejected(big, (size_t)n, 431);
        memset(big, 'a', sizeof(big));
        client_t *c = cli_open();
        cli_send_str(c, "GET /hello HT"); /* and hang up mid-request */
        pump(c, 5);
        cli_close(c);
        assert_server_answers();
    }
    const http_counters_t *k = http_counters(F->srv);
    assert_int_equal(k->bad_requests, 9);
    pump_for(20);
    assert_server_answers();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_then_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_method_not_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_and_url_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_close_and_http10, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_rate_limited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_byte_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_bad_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_responses_pipelined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_closes_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_survives_everything, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
