/* http: a minimal HTTP/1.1 server for health checks, metrics and status.
 *
 * Owns: the listener, every HTTP connection (a conn_t, freed only in its
 * handles' close callbacks), request parsing through Debian's http-parser
 * library, routing through the caller's table, and the limits below.
 * Never: lets a malformed, oversized or slow request reach a handler, keeps a
 * connection open after answering a bad request, blocks the loop, or lets a
 * client grow its buffers without bound.
 *
 * Limits (each one a constant or an http_start argument):
 *   - a request (request line, headers and body, plus any blank lines before
 *     it) larger than max_request is answered 431 while its head is still
 *     arriving, 413 once it is in the body (or as soon as a Content-Length
 *     says it will be too large), and the connection is closed;
 *   - a request must be complete within request_timeout_ms of the moment the
 *     connection became ready for it (accepted, or previous response queued),
 *     which also bounds idle keep-alive connections;
 *   - at most HTTP_MAX_CONNS connections; more are accepted and closed at once;
 *   - reading stops while more than HTTP_OUT_HIGH bytes of responses wait for
 *     a client that does not read them.
 *
 * Connection states (conn_t.state):
 *
 *   READING --(Connection: close, HTTP/1.0, bad request, EOF)--> DRAINING
 *   DRAINING --(all response bytes handed to the kernel)--> LINGER
 *   LINGER --(FIN sent; peer's EOF, read error or HTTP_LINGER_MS)--> CLOSING
 *   any --(read/write error, timeout, http_stop)--> CLOSING --> freed
 *
 * LINGER exists so that a client whose request we refused before reading all
 * of it still gets the response: closing a socket with unread input makes the
 * kernel send a reset, which can destroy the response before it is read.
 *
 * Pipelining: the parser is paused at the end of each request, the request is
 * answered (its response appended to conn.out) and parsing resumes with the
 * next one, so responses leave in request order, batched into one write per
 * read. */
#include "http.h"

#include <http_parser.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"

#define HTTP_MAX_CONNS           256          /* concurrent connections */
#define HTTP_DEFAULT_MAX_REQUEST 8192         /* when http_start gets 0 */
#define HTTP_REQUEST_TIMEOUT_MS  10000        /* default; see http_set_request_timeout */
#define HTTP_LINGER_MS           2000         /* waiting for the peer's FIN */
#define HTTP_OUT_HIGH            (256 * 1024) /* pending response bytes that stop reading */
#define HTTP_READ_CHUNK          (16 * 1024)  /* room offered to each read */
#define HTTP_LOG_PER_SEC         10           /* bad-request log lines per second */
#define HTTP_DEFAULT_CTYPE       "text/plain; charset=utf-8"

enum conn_state {
    CONN_READING,  /* parsing requests and answering them */
    CONN_DRAINING, /* last response queued; no more parsing; input discarded */
    CONN_LINGER,   /* FIN sent; input discarded until the peer closes */
    CONN_CLOSING   /* uv_close called on both handles */
};

typedef struct conn {
    uv_tcp_t tcp;       /* the connection; data = this conn */
    uv_timer_t timer;   /* request deadline, then linger deadline */
    uv_write_t wreq;    /* the one write in flight (wbuf) */
    uv_shutdown_t sreq; /* FIN at the start of LINGER */
    http_parser parser; /* data = this conn */
    struct http_server *srv;
    enum conn_state state;
    int handles_open;         /* handles not yet through their close callback */
    int writing;              /* wreq in flight */
    int read_stopped;         /* reading paused for HTTP_OUT_HIGH */
    int eof;                  /* the peer closed its side */
    int headers_done;         /* current request is in its body */
    int reject_status;        /* status chosen by a parser callback that failed */
    size_t req_bytes;         /* bytes of the current request fed to the parser */
    buf_t in;                 /* bytes read and not yet fed to the parser */
    buf_t url;                /* request target of the current request */
    const char *path;         /* into url, NUL-terminated, after headers_done */
    const char *query;        /* into url, "" when none */
    buf_t out;                /* responses not yet handed to uv_write */
    buf_t wbuf;               /* bytes of the write in flight */
    char addr[64];            /* peer "ip:port" for the log */
    struct conn *prev, *next; /* srv->conns, while not CLOSING */
} conn_t;

struct http_server {
    uv_tcp_t listener; /* data = this server */
    uv_loop_t *loop;
    const http_route_t *routes; /* caller's table */
    size_t nroutes;
    void *ud;            /* handed to every handler */
    size_t max_request;  /* bytes per request */
    uint64_t timeout_ms; /* request deadline */
    conn_t *conns;       /* open connections (not CLOSING) */
    size_t nconns;       /* length of conns */
    size_t live;         /* conns not yet freed */
    int stopping;        /* http_stop called */
    int listener_closed; /* listener's close callback ran */
    buf_t body;          /* scratch for handlers' bodies */
    http_counters_t counters;
    uint64_t log_window;               /* uv_now at the start of this log second */
    unsigned log_count;                /* lines logged in this second */
    unsigned long long log_suppressed; /* lines dropped in this second */
};

static void conn_close(conn_t *c);
static void conn_process(conn_t *c);
static void conn_pump(conn_t *c);
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *b);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

/* ---- logging ---------------------------------------------------------------- */

/* Logs one bad request, at most HTTP_LOG_PER_SEC lines a second; the lines
 * dropped are counted and reported with the next line that gets through. */
static void log_limited(http_server_t *h, const char *addr, const char *what)
{
    uint64_t now = uv_now(h->loop);
    if (now - h->log_window >= 1000) {
        if (h->log_suppressed > 0)
            log_warn("http", "%llu similar messages suppressed", h->log_suppressed);
        h->log_window = now;
        h->log_count = 0;
        h->log_suppressed = 0;
    }
    if (h->log_count >= HTTP_LOG_PER_SEC) {
        h->log_suppressed++;
        return;
    }
    h->log_count++;
    log_warn("http", "%s: %s", addr, what);
}

/* ---- server lifetime -------------------------------------------------------- */

/* Frees the server once the listener and every connection are closed. */
static void server_maybe_free(http_server_t *h)
{
    if (!h->stopping || !h->listener_closed || h->live > 0)
        return;
    buf_free(&h->body);
    free(h);
}

static void on_listener_closed(uv_handle_t *handle)
{
    http_server_t *h = handle->data;
    h->listener_closed = 1;
    server_maybe_free(h);
}

/* ---- connection lifetime ---------------------------------------------------- */

static void on_conn_handle_closed(uv_handle_t *handle)
{
    conn_t *c = handle->data;
    if (--c->handles_open > 0)
        return;
    http_server_t *h = c->srv;
    buf_free(&c->in);
    buf_free(&c->url);
    buf_free(&c->out);
    buf_free(&c->wbuf);
    free(c);
    h->live--;
    server_maybe_free(h);
}

/* Starts closing c: unlinks it, cancels its writes and timer. Safe to call
 * twice. c stays valid until the close callbacks run. */
static void conn_close(conn_t *c)
{
    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    http_server_t *h = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    h->nconns--;
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
}

static void on_timeout(uv_timer_t *t)
{
    conn_t *c = t->data;
    if (c->state == CONN_READING && (c->req_bytes > 0 || buf_len(&c->in) > 0))
        log_debug("http", "%s: request not complete in time, closing", c->addr);
    conn_close(c);
}

static void arm_timer(conn_t *c, uint64_t ms)
{
    uv_timer_start(&c->timer, on_timeout, ms, 0);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn_t *c = req->data;
    if (status < 0 && c->state != CONN_CLOSING)
        conn_close(c);
}

/* Resumes reading after it was stopped for HTTP_OUT_HIGH. */
static void conn_resume_reading(conn_t *c)
{
    if (!c->read_stopped || c->eof || c->state == CONN_CLOSING)
        return;
    c->read_stopped = 0;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

/* Called when DRAINING and every response byte is with the kernel: sends FIN
 * and waits (bounded) for the peer to close, discarding what it still sends. */
static void conn_linger(conn_t *c)
{
    if (c->eof) {
        conn_close(c);
        return;
    }
    c->state = CONN_LINGER;
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        conn_close(c);
        return;
    }
    arm_timer(c, HTTP_LINGER_MS);
    conn_resume_reading(c);
}

/* ---- writing ---------------------------------------------------------------- */

static size_t conn_pending_out(const conn_t *c)
{
    return buf_len(&c->out) + buf_len(&c->wbuf);
}

static void on_write(uv_write_t *req, int status)
{
    conn_t *c = req->data;
    c->writing = 0;
    buf_clear(&c->wbuf);
    buf_trim(&c->wbuf, HTTP_READ_CHUNK);
    if (c->state == CONN_CLOSING)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    conn_pump(c);
}

/* Hands c->out to the kernel: a direct write first, a queued write for what
 * the kernel did not take. Returns 1 when every response byte is with the
 * kernel, 0 while a write is in flight, -1 when the connection was closed. */
static int conn_write(conn_t *c)
{
    if (c->state == CONN_CLOSING)
        return -1;
    if (c->writing)
        return 0;
    if (buf_len(&c->out) > 0) {
        uv_buf_t b = uv_buf_init(buf_head(&c->out), (unsigned)buf_len(&c->out));
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n > 0) {
            buf_consume(&c->out, (size_t)n);
        } else if (n != UV_EAGAIN) {
            conn_close(c);
            return -1;
        }
    }
    if (buf_len(&c->out) == 0) {
        buf_trim(&c->out, HTTP_READ_CHUNK);
        return 1;
    }
    buf_t t = c->wbuf; /* empty: no write in flight */
    c->wbuf = c->out;
    c->out = t;
    uv_buf_t b = uv_buf_init(buf_head(&c->wbuf), (unsigned)buf_len(&c->wbuf));
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
        conn_close(c);
        return -1;
    }
    c->writing = 1;
    return 0;
}

/* Drives c after input arrived or a write finished: parses and answers what
 * it can, writes, and once every response is with the kernel either starts
 * lingering (DRAINING) or goes back to reading (after HTTP_OUT_HIGH). */
static void conn_pump(conn_t *c)
{
    for (;;) {
        if (c->state == CONN_READING)
            conn_process(c);
        if (conn_write(c) <= 0)
            return;
        if (c->state == CONN_DRAINING) {
            conn_linger(c);
            return;
        }
        if (c->state != CONN_READING || !c->read_stopped)
            return;
        if (buf_len(&c->in) == 0) {
            conn_resume_reading(c);
            return;
        }
    }
}

/* ---- responses -------------------------------------------------------------- */

/* Appends one response to c->out. body may be NULL when len is 0; a HEAD
 * request gets the headers only. allow, when not NULL, is the Allow value. */
static void conn_respond(conn_t *c, int status, const char *ctype, const char *allow,
                         const char *body, size_t len, int head_only, int closing)
{
    const char *reason = http_status_str((enum http_status)status);
    buf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n", status,
               reason, ctype, len);
    if (allow)
        buf_printf(&c->out, "Allow: %s\r\n", allow);
    if (closing)
        buf_append_str(&c->out, "Connection: close\r\n");
    buf_append(&c->out, "\r\n", 2);
    if (!head_only)
        buf_append(&c->out, body, len);
}

/* Answers a request that must not reach a handler and moves c to DRAINING. */
static void conn_reject(conn_t *c, int status, const char *why)
{
    http_server_t *h = c->srv;
    char line[160];
    h->counters.requests++;
    h->counters.bad_requests++;
    snprintf(line, sizeof(line), "%d %s (%s)", status, http_status_str((enum http_status)status),
             why);
    log_limited(h, c->addr, line);
    char body[64];
    int n = snprintf(body, sizeof(body), "%s\n", http_status_str((enum http_status)status));
    conn_respond(c, status, HTTP_DEFAULT_CTYPE, NULL, body, (size_t)n, 0, 1);
    c->state = CONN_DRAINING;
    arm_timer(c, h->timeout_ms);
}

/* Methods a route table allows for path, as an Allow value ("GET, HEAD"). */
static void allowed_methods(const http_server_t *h, const char *path, char *out, size_t outlen)
{
    size_t used = 0;
    int has_get = 0, has_head = 0;
    out[0] = '\0';
    for (size_t i = 0; i < h->nroutes; i++) {
        const http_route_t *r = &h->routes[i];
        if (strcmp(r->path, path) != 0)
            continue;
        has_get |= strcmp(r->method, "GET") == 0;
        has_head |= strcmp(r->method, "HEAD") == 0;
        int n = snprintf(out + used, outlen - used, "%s%s", used ? ", " : "", r->method);
        if (n < 0 || (size_t)n >= outlen - used)
            return;
        used += (size_t)n;
    }
    if (has_get && !has_head)
        snprintf(out + used, outlen - used, "%sHEAD", used ? ", " : "");
}

/* Runs the route for the request just parsed and queues its response. */
static void conn_dispatch(conn_t *c)
{
    http_server_t *h = c->srv;
    http_parser *p = &c->parser;
    int head = p->method == HTTP_HEAD;
    int keep = p->http_major == 1 && p->http_minor >= 1 && http_should_keep_alive(p) &&
               !p->upgrade && !h->stopping;
    const char *method = head ? "GET" : http_method_str((enum http_method)p->method);
    const http_route_t *route = NULL;
    int path_known = 0;

    h->counters.requests++;
    for (size_t i = 0; i < h->nroutes && !route; i++) {
        if (strcmp(h->routes[i].path, c->path) != 0)
            continue;
        path_known = 1;
        if (strcmp(h->routes[i].method, method) == 0 ||
            (head && strcmp(h->routes[i].method, "HEAD") == 0))
            route = &h->routes[i];
    }

    if (route) {
        const char *ctype = HTTP_DEFAULT_CTYPE;
        buf_clear(&h->body);
        int status = route->fn(h->ud, c->query, &h->body, &ctype);
        if (status < 100 || status > 599) {
            log_error("http", "%s %s: handler returned status %d", method, c->path, status);
            status = 500;
            buf_clear(&h->body);
            buf_append_str(&h->body, "Internal Server Error\n");
            ctype = HTTP_DEFAULT_CTYPE;
        }
        conn_respond(c, status, ctype, NULL, buf_head(&h->body), buf_len(&h->body), head, !keep);
        buf_trim(&h->body, 64 * 1024);
    } else if (path_known) {
        char allow[128];
        static const char body[] = "Method Not Allowed\n";
        allowed_methods(h, c->path, allow, sizeof(allow));
        conn_respond(c, 405, HTTP_DEFAULT_CTYPE, allow, body, sizeof(body) - 1, head, !keep);
    } else {
        static const char body[] = "Not Found\n";
        conn_respond(c, 404, HTTP_DEFAULT_CTYPE, NULL, body, sizeof(body) - 1, head, !keep);
    }

    if (!keep)
        c->state = CONN_DRAINING;
    arm_timer(c, h->timeout_ms); /* for the next request, or for draining */
}

/* ---- parser callbacks ------------------------------------------------------- */

static int on_message_begin(http_parser *p)
{
    conn_t *c = p->data;
    buf_clear(&c->url);
    c->headers_done = 0;
    c->path = c->query = NULL;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    buf_append(&c->url, at, len); /* bounded: the parser never sees more than max_request */
    return 0;
}

/* Checks the declared body size and splits the request target into a
 * NUL-terminated path and query (in place, in c->url). */
static int on_headers_complete(http_parser *p)
{
    conn_t *c = p->data;
    http_server_t *h = c->srv;
    struct http_parser_url u;

    c->headers_done = 1;
    if (p->http_major != 1) {
        c->reject_status = 505;
        return -1;
    }
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > h->max_request) {
        c->reject_status = 413;
        return -1;
    }
    size_t len = buf_len(&c->url);
    if (len > UINT16_MAX) { /* http_parser_url offsets are 16-bit */
        c->reject_status = 414;
        return -1;
    }
    buf_append(&c->url, "", 1);
    char *s = buf_head(&c->url);
    http_parser_url_init(&u);
    if (len == 0 || http_parser_parse_url(s, len, p->method == HTTP_CONNECT, &u) != 0 ||
        !(u.field_set & (1 << UF_PATH)) || s[u.field_data[UF_PATH].off] != '/') {
        c->reject_status = 400;
        return -1;
    }
    char *path = s + u.field_data[UF_PATH].off;
    char *path_end = path + u.field_data[UF_PATH].len;
    const char *query = "";
    if (u.field_set & (1 << UF_QUERY)) {
        char *q = s + u.field_data[UF_QUERY].off;
        q[u.field_data[UF_QUERY].len] = '\0';
        query = q;
    }
    *path_end = '\0'; /* '?', '#' or the terminator: after the query is cut */
    c->path = path;
    c->query = query;
    return 0;
}

/* Answers the request and pauses the parser, so that each request is
 * answered before the next one is parsed (see conn_process). */
static int on_message_complete(http_parser *p)
{
    conn_t *c = p->data;
    conn_dispatch(c);
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

/* Status for a parser error: an overflow of the parser's own header limit is
 * a header problem, everything else a malformed request. */
static int status_for_errno(enum http_errno e)
{
    return e == HPE_HEADER_OVERFLOW ? 431 : 400;
}

/* Feeds c->in to the parser, never more than the rest of max_request, and
 * answers every complete request in it (responses go to c->out). Stops at
 * the first bad request, when the connection stops taking requests, or when
 * HTTP_OUT_HIGH bytes of responses are waiting. */
static void conn_process(conn_t *c)
{
    http_server_t *h = c->srv;
    while (c->state == CONN_READING && buf_len(&c->in) > 0) {
        if (conn_pending_out(c) >= HTTP_OUT_HIGH) {
            if (!c->read_stopped) {
                uv_read_stop((uv_stream_t *)&c->tcp);
                c->read_stopped = 1;
            }
            break;
        }
        size_t room = h->max_request - c->req_bytes;
        size_t len = buf_len(&c->in) < room ? buf_len(&c->in) : room;
        size_t n = http_parser_execute(&c->parser, &parser_settings, buf_head(&c->in), len);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        buf_consume(&c->in, n);
        if (e == HPE_PAUSED) { /* one request answered */
            http_parser_pause(&c->parser, 0);
            c->req_bytes = 0;
            continue;
        }
        if (e != HPE_OK) {
            int status = c->reject_status ? c->reject_status : status_for_errno(e);
            conn_reject(c, status, c->reject_status ? "rejected" : http_errno_description(e));
            break;
        }
        c->req_bytes += n;
        if (c->req_bytes >= h->max_request) {
            conn_reject(c, c->headers_done ? 413 : 431, "request larger than the limit");
            break;
        }
    }
    if (c->state != CONN_READING)
        buf_clear(&c->in);
}

/* ---- reading ---------------------------------------------------------------- */

/* Reads go straight into c->in, so nothing is copied before parsing. */
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *b)
{
    conn_t *c = handle->data;
    if (c->state != CONN_READING)
        buf_clear(&c->in); /* input is discarded from DRAINING on */
    char *room = buf_reserve(&c->in, HTTP_READ_CHUNK);
    *b = uv_buf_init(room, HTTP_READ_CHUNK);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    conn_t *c = s->data;
    if (c->state == CONN_CLOSING)
        return;
    if (nread < 0) {
        if (nread != UV_EOF || c->state == CONN_LINGER) {
            conn_close(c);
            return;
        }
        c->eof = 1;
        if (c->state == CONN_READING) {
            /* half-closed: answer what is complete, then close */
            c->state = CONN_DRAINING;
            buf_clear(&c->in);
        }
        if (!c->writing && buf_len(&c->out) == 0)
            conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    buf_commit(&c->in, (size_t)nread);
    if (c->state != CONN_READING) {
        buf_clear(&c->in);
        return;
    }
    conn_pump(c);
}

/* ---- accepting -------------------------------------------------------------- */

static void on_rejected_closed(uv_handle_t *handle)
{
    free(handle);
}

static void format_peer(uv_tcp_t *tcp, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof(ip));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof(ip));
            port = ntohs(a->sin6_port);
        }
    }
    snprintf(out, outlen, "%s:%d", ip, port);
}

static void on_connection(uv_stream_t *listener, int status)
{
    http_server_t *h = listener->data;
    if (status < 0) {
        log_warn("http", "accept: %s", uv_strerror(status));
        return;
    }
    if (h->nconns >= HTTP_MAX_CONNS) {
        /* accepted and closed at once (not counted in counters.connections) */
        uv_tcp_t *t = xmalloc(sizeof(*t));
        uv_tcp_init(h->loop, t);
        if (uv_accept(listener, (uv_stream_t *)t) == 0) {
            char addr[64];
            format_peer(t, addr, sizeof(addr));
            log_limited(h, addr, "too many HTTP connections, closing this one");
        }
        uv_close((uv_handle_t *)t, on_rejected_closed);
        return;
    }
    conn_t *c = xcalloc(1, sizeof(*c));
    c->srv = h;
    uv_tcp_init(h->loop, &c->tcp);
    uv_timer_init(h->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles_open = 2;
    c->state = CONN_READING;
    buf_init(&c->in);
    buf_init(&c->url);
    buf_init(&c->out);
    buf_init(&c->wbuf);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    h->live++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    h->counters.connections++;
    uv_tcp_nodelay(&c->tcp, 1);
    format_peer(&c->tcp, c->addr, sizeof(c->addr));
    arm_timer(c, h->timeout_ms);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

/* ---- public ----------------------------------------------------------------- */

/* Returns the server listening on bind:port, or NULL with a message in err.
 * When the listener cannot be bound after its handle exists, the handle is
 * closed and its memory released by the loop's next run. */
http_server_t *http_start(uv_loop_t *loop, const char *bind, int port, size_t max_request,
                          const http_route_t *routes, size_t nroutes, void *ud, char *err,
                          size_t errlen)
{
    struct sockaddr_storage ss;
    int rc;

    if (port < 0 || port > 65535) {
        snprintf(err, errlen, "http: port %d out of range", port);
        return NULL;
    }
    if (uv_ip4_addr(bind, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(bind, port, (struct sockaddr_in6 *)&ss) != 0) {
        snprintf(err, errlen, "http: bind address '%s' is not an IP address", bind);
        return NULL;
    }

    http_server_t *h = xcalloc(1, sizeof(*h));
    h->loop = loop;
    h->routes = routes;
    h->nroutes = nroutes;
    h->ud = ud;
    h->max_request = max_request ? max_request : HTTP_DEFAULT_MAX_REQUEST;
    h->timeout_ms = HTTP_REQUEST_TIMEOUT_MS;
    h->log_window = uv_now(loop);
    buf_init(&h->body);
    uv_tcp_init(loop, &h->listener);
    h->listener.data = h;

    rc = uv_tcp_bind(&h->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&h->listener, 128, on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "http: cannot listen on %s:%d: %s", bind, port, uv_strerror(rc));
        h->stopping = 1;
        uv_close((uv_handle_t *)&h->listener, on_listener_closed);
        return NULL;
    }
    log_info("http", "listening on %s:%d", bind, port);
    return h;
}

/* Closes the listener and every connection (pending responses are dropped).
 * The server is freed by the close callbacks: run the loop afterwards. */
void http_stop(http_server_t *h)
{
    if (!h || h->stopping)
        return;
    h->stopping = 1;
    uv_close((uv_handle_t *)&h->listener, on_listener_closed);
    while (h->conns)
        conn_close(h->conns);
}

void http_set_request_timeout(http_server_t *h, unsigned ms)
{
    h->timeout_ms = ms ? ms : HTTP_REQUEST_TIMEOUT_MS;
}

const http_counters_t *http_counters(const http_server_t *h)
{
    return &h->counters;
}
