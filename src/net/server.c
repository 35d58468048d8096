/* server: client listeners and connections; see server.h.
 *
 * Reply path: a command appends its reply to c->out. The client is put on the
 * pending-write list; once per loop turn (the loop's check phase) every
 * pending client gets one uv_try_write of its whole reply buffer, and what the
 * kernel did not take is handed to a queued uv_write that takes ownership of
 * the buffer's memory (no copy). The output limit counts both.
 *
 * Read path: bytes go straight into c->in; every complete command in it is
 * executed before the callback returns, so a pipeline costs one read and one
 * write. */
#include "server_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "mem.h"
#include "outq.h"

#define READ_CHUNK (16 * 1024)
#define OUT_KEEP (64 * 1024) /* an idle client keeps this much reply buffer */



static void resume_reading(server_t *s);

/* ---- client lifetime ---------------------------------------------------- */

size_t client_memory(const client_t *c)
{
    return sizeof(*c) + buf_alloc_size(&c->in) + buf_alloc_size(&c->out) + c->out_inflight +
           resp_parser_mem(&c->parser);
}

static void unlink_client(server_t *s, client_t *c)
{
    if (!(c->flags & CLIENT_IN_LIST))
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->flags &= ~CLIENT_IN_LIST;
    s->nclients--;
}

static void on_client_closed(uv_handle_t *h)
{
    client_t *c = h->data;
    buf_free(&c->in);
    buf_free(&c->out);
    resp_parser_free(&c->parser);
    free(c->name);
    free(c);
}

void client_close(client_t *c, const char *why)
{
    if (c->flags & CLIENT_CLOSING)
        return;
    c->flags |= CLIENT_CLOSING;
    server_t *s = c->server;
    if (why)
        log_debug("server", "closing client id=%llu addr=%s: %s", (unsigned long long)c->id,
                  c->addr, why);
    if (s->hooks.on_close)
        s->hooks.on_close(s->hooks.ud, c);
    unlink_client(s, c);
    blocked_forget(s, c);
    uv_read_stop(&c->h.stream);
    uv_close(&c->h.handle, on_client_closed);
}

static client_t *new_client(server_t *s, int is_unix)
{
    client_t *c = xcalloc(1, sizeof(*c));
    c->server = s;
    c->ctx = s->hooks.ud;
    c->id = ++s->next_id;
    c->proto = 2;
    c->authenticated = !(s->cfg->requirepass && s->cfg->requirepass[0]);
    c->created_ms = c->last_ms = clock_now_ms();
    c->flags = is_unix ? CLIENT_UNIX : 0;
    buf_init(&c->in);
    buf_init(&c->out);
    resp_limits_t lim = {s->cfg->max_bulk_len, s->cfg->max_multibulk};
    resp_parser_init(&c->parser, &lim);
    if (is_unix)
        uv_pipe_init(s->loop, &c->h.pipe, 0);
    else
        uv_tcp_init(s->loop, &c->h.tcp);
    c->h.handle.data = c;
    return c;
}

static void add_client(server_t *s, client_t *c)
{
    c->next = s->clients;
    if (s->clients)
        s->clients->prev = c;
    s->clients = c;
    c->flags |= CLIENT_IN_LIST;
    s->nclients++;
}

static void describe_peer(client_t *c, const char *unix_path)
{
    if (c->flags & CLIENT_UNIX) {
        snprintf(c->addr, sizeof(c->addr), "%s:0", unix_path);
        snprintf(c->laddr, sizeof(c->laddr), "%s:0", unix_path);
        return;
    }
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[64] = "?";
    if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof(ip));
            snprintf(c->addr, sizeof(c->addr), "%s:%d", ip, ntohs(a->sin6_port));
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof(ip));
            snprintf(c->addr, sizeof(c->addr), "%s:%d", ip, ntohs(a->sin_port));
        }
    }
    len = sizeof(ss);
    if (uv_tcp_getsockname(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0 &&
        ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        uv_ip4_name(a, ip, sizeof(ip));
        snprintf(c->laddr, sizeof(c->laddr), "%s:%d", ip, ntohs(a->sin_port));
    }
}

/* ---- writing ------------------------------------------------------------ */

void server_want_write(server_t *s, client_t *c)
{
    if (c->in_wlist || (c->flags & CLIENT_CLOSING))
        return;
    c->in_wlist = 1;
    c->wnext = s->wlist;
    s->wlist = c;
}

static void on_write_done(void *ud, int status)
{
    client_t *c = ud;
    if (status < 0) {
        if (status != UV_ECANCELED)
            client_close(c, uv_strerror(status));
        return;
    }
    if ((c->flags & CLIENT_CLOSE_AFTER_REPLY) && c->out_inflight == 0 && buf_len(&c->out) == 0)
        client_close(c, "close after reply");
}

static int over_output_limit(const client_t *c)
{
    size_t limit = c->server->cfg->output_buffer_limit;
    return limit && buf_len(&c->out) + c->out_inflight > limit;
}

static void close_over_output_limit(client_t *c)
{
    server_t *s = c->server;
    s->stats.output_limit_closes++;
    log_warn("server", "closing client id=%llu addr=%s: output buffer over %zu bytes",
             (unsigned long long)c->id, c->addr, s->cfg->output_buffer_limit);
    client_close(c, "output buffer limit");
}

/* Hands c->out to the kernel (see outq.h). Returns 0, or -1 if c was closed. */
static int write_client(client_t *c)
{
    if (buf_len(&c->out) == 0)
        return 0;
    if (over_output_limit(c)) {
        close_over_output_limit(c);
        return -1;
    }
    long n = outq_write(&c->h.stream, &c->out, &c->out_inflight, on_write_done, c);
    if (n < 0) {
        client_close(c, uv_strerror((int)n));
        return -1;
    }
    c->server->stats.net_output_bytes += (uint64_t)n;
    buf_trim(&c->out, OUT_KEEP);
    return 0;
}

void server_write_now(server_t *s, client_t *c)
{
    if (c->flags & CLIENT_CLOSING)
        return;
    if (c->block_token) {
        server_want_write(s, c);
        return;
    }
    write_client(c);
}

void server_flush_writes(server_t *s)
{
    if (!s)
        return;
    resume_reading(s);
    while (s->wlist) {
        client_t *c = s->wlist;
        s->wlist = c->wnext;
        c->in_wlist = 0;
        if (c->flags & CLIENT_CLOSING)
            continue;
        if (c->block_token)
            continue; /* server_release_blocked puts it back on the list */
        if (write_client(c) < 0)
            continue;
        if ((c->flags & CLIENT_CLOSE_AFTER_REPLY) && c->out_inflight == 0)
            client_close(c, "close after reply");
    }
}

/* ---- reading ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    client_t *c = h->data;
    size_t want = READ_CHUNK;
    if (c->parser.want_bytes > want)
        want = c->parser.want_bytes;
    char *p = buf_reserve(&c->in, want);
    c->read_offer = c->in.cap - c->in.end;
    *out = uv_buf_init(p, (unsigned)c->read_offer);
}

/* A read that filled all the room it was given means more is waiting; libuv
 * would read again at once, up to 32 times. Pausing the client until the end
 * of the loop turn lets every other client be served in between: a
 * pipelining client gets one buffer's worth of commands per turn, as in
 * redis-server. */
static void pause_reading(server_t *s, client_t *c)
{
    uv_read_stop(&c->h.stream);
    c->rnext = s->rpaused;
    s->rpaused = c;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b);

static void resume_reading(server_t *s)
{
    while (s->rpaused) {
        client_t *c = s->rpaused;
        s->rpaused = c->rnext;
        if (!(c->flags & (CLIENT_CLOSING | CLIENT_CLOSE_AFTER_REPLY)))
            uv_read_start(&c->h.stream, on_alloc, on_read);
    }
}

static void protocol_error(client_t *c)
{
    c->server->stats.protocol_errors++;
    log_info("server", "protocol error from client id=%llu addr=%s: %s",
             (unsigned long long)c->id, c->addr, c->parser.error);
    resp_add_errorf(&c->out, "ERR %s", c->parser.error);
    c->flags |= CLIENT_CLOSE_AFTER_REPLY;
}

void client_suspend(client_t *c)
{
    c->flags |= CLIENT_SUSPENDED;
}

/* Runs every complete command in c->in, up to one that suspends itself. */
void server_process_input(client_t *c)
{
    server_t *s = c->server;
    while (buf_len(&c->in) > 0 &&
           !(c->flags & (CLIENT_CLOSE_AFTER_REPLY | CLIENT_CLOSING | CLIENT_SUSPENDED))) {
        size_t used = 0;
        c->parser.unauthenticated = !c->authenticated;
        int rc = resp_parse(&c->parser, buf_head(&c->in), buf_len(&c->in), &used);
        if (rc == RESP_MORE)
            break;
        if (rc == RESP_ERROR) {
            protocol_error(c);
            break;
        }
        if (c->parser.argc > 0) {
            c->last_ms = clock_now_ms();
            s->hooks.execute(s->hooks.ud, c, c->parser.argc, c->parser.argv, c->parser.argl);
        }
        if (c->flags & CLIENT_SUSPENDED) {
            resp_parser_reset(&c->parser); /* parsed again from the start at resume */
            break;
        }
        buf_consume(&c->in, used);
        if (over_output_limit(c)) { /* checked per command: a pipeline stops here */
            close_over_output_limit(c);
            return;
        }
    }
    if (buf_len(&c->in) > s->cfg->query_buffer_limit) {
        s->stats.query_limit_closes++;
        log_warn("server", "closing client id=%llu addr=%s: query buffer over %zu bytes",
                 (unsigned long long)c->id, c->addr, s->cfg->query_buffer_limit);
        client_close(c, "query buffer limit");
        return;
    }
    if (buf_len(&c->in) == 0)
        buf_trim(&c->in, READ_CHUNK * 4);
    if (buf_len(&c->out) > 0)
        server_want_write(s, c);
}

void server_resume_client(client_t *c)
{
    if (!(c->flags & CLIENT_SUSPENDED) || (c->flags & CLIENT_CLOSING))
        return;
    c->flags &= ~CLIENT_SUSPENDED;
    server_process_input(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    client_t *c = stream->data;
    if (nread < 0) {
        client_close(c, nread == UV_EOF ? "EOF" : uv_strerror((int)nread));
        return;
    }
    if (nread == 0)
        return;
    clock_tick();
    c->server->stats.net_input_bytes += (uint64_t)nread;
    buf_commit(&c->in, (size_t)nread);
    server_process_input(c);
    if ((size_t)nread == c->read_offer && !(c->flags & (CLIENT_CLOSING | CLIENT_CLOSE_AFTER_REPLY)))
        pause_reading(c->server, c);
}

/* ---- accepting ---------------------------------------------------------- */

static void reject_client(server_t *s, client_t *c)
{
    s->stats.rejected_connections++;
    resp_add_error(&c->out, "ERR max number of clients reached");
    c->flags |= CLIENT_CLOSE_AFTER_REPLY;
    server_want_write(s, c);
}

/* Takes a connection c just opened on: counts it, refuses it past
 * maxclients, else lists it and starts reading. */
static void adopt_client(server_t *s, client_t *c, int is_unix)
{
    s->stats.connections_received++;
    if (!is_unix)
        uv_tcp_nodelay(&c->h.tcp, 1);
    describe_peer(c, s->cfg->unixsocket);
    if (s->nclients >= s->cfg->maxclients) {
        reject_client(s, c);
        return;
    }
    add_client(s, c);
    uv_read_start(&c->h.stream, on_alloc, on_read);
}

static void accept_on(server_t *s, uv_stream_t *listener, int is_unix)
{
    client_t *c = new_client(s, is_unix);
    if (uv_accept(listener, &c->h.stream) != 0) {
        uv_close(&c->h.handle, on_client_closed);
        return;
    }
    adopt_client(s, c, is_unix);
}

int server_adopt_fd(server_t *s, uv_os_sock_t fd, int is_unix)
{
    client_t *c = new_client(s, is_unix);
    int rc = is_unix ? uv_pipe_open(&c->h.pipe, fd) : uv_tcp_open(&c->h.tcp, fd);
    if (rc != 0) {
        close(fd);
        uv_close(&c->h.handle, on_client_closed);
        return rc;
    }
    adopt_client(s, c, is_unix);
    return 0;
}

static void on_connection(uv_stream_t *listener, int status)
{
    server_t *s = listener->data;
    if (status < 0) {
        log_warn("server", "accept: %s", uv_strerror(status));
        return;
    }
    accept_on(s, listener, listener == (uv_stream_t *)&s->unix_sock);
}

/* ---- idle timeout ------------------------------------------------------- */

static void on_idle_timer(uv_timer_t *t)
{
    server_t *s = t->data;
    clock_tick();
    int64_t limit = (int64_t)s->cfg->timeout_s * 1000;
    int64_t now = clock_now_ms();
    if (limit <= 0)
        return; /* timeout set to 0 at run time */
    client_t *c = s->clients;
    while (c) {
        client_t *next = c->next;
        /* subscribers wait for messages, not commands: as redis-server, no timeout */
        if (now - c->last_ms > limit && c->out_inflight == 0 &&
            !(c->flags & (CLIENT_PUBSUB | CLIENT_SUSPENDED))) {
            s->stats.idle_timeouts++;
            client_close(c, "idle timeout");
        }
        c = next;
    }
}

/* ---- start and stop ----------------------------------------------------- */

static int listen_tcp(server_t *s, char *err, size_t errlen)
{
    const config_t *cfg = s->cfg;
    struct sockaddr_storage addr;
    if (uv_ip4_addr(cfg->bind, cfg->port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(cfg->bind, cfg->port, (struct sockaddr_in6 *)&addr) != 0) {
        snprintf(err, errlen, "bind: not an IP address: %s", cfg->bind);
        return -1;
    }
    uv_tcp_init(s->loop, &s->tcp);
    s->tcp.data = s;
    s->tcp_open = 1;
    int rc = uv_tcp_bind(&s->tcp, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->tcp, cfg->tcp_backlog, on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", cfg->bind, cfg->port, uv_strerror(rc));
        return -1;
    }
    log_info("server", "listening on %s:%d", cfg->bind, cfg->port);
    return 0;
}

static int listen_unix(server_t *s, char *err, size_t errlen)
{
    const config_t *cfg = s->cfg;
    uv_pipe_init(s->loop, &s->unix_sock, 0);
    s->unix_sock.data = s;
    s->unix_open = 1;
    unlink(cfg->unixsocket); /* a stale socket from an earlier run */
    int rc = uv_pipe_bind(&s->unix_sock, cfg->unixsocket);
    if (rc == 0 && chmod(cfg->unixsocket, (mode_t)cfg->unixsocketperm) != 0)
        rc = -errno;
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->unix_sock, cfg->tcp_backlog, on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", cfg->unixsocket, uv_strerror(rc));
        return -1;
    }
    log_info("server", "listening on %s", cfg->unixsocket);
    return 0;
}

void server_timeout_changed(server_t *s)
{
    if (s->cfg->timeout_s > 0 && !s->idle_open && !s->stopping) {
        uv_timer_init(s->loop, &s->idle_timer);
        s->idle_timer.data = s;
        s->idle_open = 1;
        uv_timer_start(&s->idle_timer, on_idle_timer, 1000, 1000);
    }
}

server_t *server_start(uv_loop_t *loop, const config_t *cfg, const server_hooks_t *hooks,
                       char *err, size_t errlen)
{
    server_t *s = xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->cfg = cfg;
    s->hooks = *hooks;
    int rc = 0;
    if (s->cfg->port > 0)
        rc = listen_tcp(s, err, errlen);
    if (rc == 0 && s->cfg->unixsocket && s->cfg->unixsocket[0])
        rc = listen_unix(s, err, errlen);
    if (rc == 0)
        server_timeout_changed(s);
    if (rc != 0) {
        server_stop(s);
        return NULL;
    }
    return s;
}

static void on_server_closed(uv_handle_t *h)
{
    server_t *s = h->data;
    if (--s->stopping == 0)
        free(s);
}

void server_stop(server_t *s)
{
    if (!s || s->stopping)
        return;
    server_flush_writes(s);
    while (s->clients)
        client_close(s->clients, "shutdown");
    s->stopping = 1; /* one reference held until the handles below are closed */
    if (s->tcp_open) {
        s->stopping++;
        uv_close((uv_handle_t *)&s->tcp, on_server_closed);
    }
    if (s->unix_open) {
        s->stopping++;
        uv_close((uv_handle_t *)&s->unix_sock, on_server_closed);
        unlink(s->cfg->unixsocket);
    }
    if (s->idle_open) {
        s->stopping++;
        uv_close((uv_handle_t *)&s->idle_timer, on_server_closed);
    }
    if (--s->stopping == 0)
        free(s);
}

size_t server_client_count(const server_t *s)
{
    return s ? s->nclients : 0;
}

size_t server_clients_memory(const server_t *s)
{
    size_t total = 0;
    for (const client_t *c = s ? s->clients : NULL; c; c = c->next)
        total += client_memory(c);
    return total;
}

void server_foreach_client(server_t *s, void (*fn)(void *ud, client_t *c), void *ud)
{
    for (client_t *c = s ? s->clients : NULL; c; c = c->next)
        fn(ud, c);
}

const server_stats_t *server_stats(const server_t *s)
{
    static const server_stats_t none;
    return s ? &s->stats : &none;
}
