/* delay-proxy: a TCP proxy that delays every byte by a fixed time, one way,
 * to stand for a LAN hop between "hosts" on one machine (this kernel has no
 * netem). Used by bench/vs-shared-redis, for both setups alike.
 *
 * Owns: its listening sockets on 127.0.0.1, the connections it accepts and
 * the ones it opens to the target ports, one FIFO of delayed chunks, and a
 * timerfd (nanosecond deadlines; libuv's own timers count milliseconds)
 * watched by the libuv loop.
 * Never: talks to anything but 127.0.0.1, changes or reorders bytes, sleeps
 * on the loop, or runs past its time limit (-t).
 *
 * Invariants:
 *   - each chunk read on one side is written to the other side no earlier
 *     than DELAY after it was read, in the order read (the delay is the same
 *     for all, so one FIFO is ordered by deadline);
 *   - an end of stream or an error on one side closes both sides, DELAY
 *     later, after the chunks read before it were written.
 * Checked by bench/vs-shared-redis, which measures the round trip through a
 * proxy at DELAY 0 and DELAY 250 us against the direct one.
 *
 * Refusals (-r): a host whose process died refuses connections, but a
 * proxy in front of it would accept them (and then close them), which looks
 * like a host that went silent. With -r, when the target refuses, the proxy
 * stops listening on that port (so the next connect is refused too) and
 * tries the target every 50 ms, listening again once it answers. SIGUSR1
 * turns this off (a silent host: accepted, then closed) and SIGUSR2 on.
 *
 * Run:  delay-proxy -d MICROSECONDS [-r] [-t SECONDS] LISTEN:TARGET [LISTEN:TARGET ...]
 * Prints "ready" once every port listens.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define MAX_MAPS 32
#define CHUNK 65536

typedef struct pair pair_t;

typedef struct side {
    uv_tcp_t tcp;
    pair_t *pair;
    struct side *peer;
} side_t;

struct pair {
    struct map *map;
    side_t a; /* accepted from the client */
    side_t b; /* opened to the target */
    uv_connect_t connect;
    int open_handles;
    int queued; /* chunks of this pair in the FIFO */
    int closing;
};

typedef struct chunk {
    struct chunk *next;
    uint64_t due_ns;
    side_t *dst;
    char *data; /* NULL: end of stream */
    size_t len;
} chunk_t;

typedef struct map {
    uv_tcp_t listener;
    int listening;
    int listen_port;
    int target_port;
    uv_timer_t retry; /* -r: tries the target while not listening */
    uv_tcp_t probe;
    uv_connect_t probe_req;
    int probing;
} map_t;

static uv_loop_t *loop;
static uint64_t delay_ns;
static int tfd;
static uv_poll_t tpoll;
static chunk_t *head, *tail;
static map_t maps[MAX_MAPS];
static int nmaps;
static int mirror_refusals;
static uv_signal_t sig_off, sig_on;

static int map_listen(map_t *m);

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "delay-proxy: out of memory\n");
        exit(1);
    }
    return p;
}

/* Arms the timerfd for the head of the FIFO (absolute, CLOCK_MONOTONIC). */
static void arm(void)
{
    struct itimerspec its = {0};
    if (head) {
        uint64_t due = head->due_ns ? head->due_ns : 1;
        its.it_value.tv_sec = (time_t)(due / 1000000000ull);
        its.it_value.tv_nsec = (long)(due % 1000000000ull);
    }
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void pair_closed(uv_handle_t *h)
{
    side_t *s = h->data;
    pair_t *p = s->pair;
    if (--p->open_handles == 0 && p->queued == 0)
        free(p);
}

static void pair_close(pair_t *p)
{
    if (p->closing)
        return;
    p->closing = 1;
    uv_close((uv_handle_t *)&p->a.tcp, pair_closed);
    uv_close((uv_handle_t *)&p->b.tcp, pair_closed);
}

static void push(side_t *dst, char *data, size_t len)
{
    chunk_t *c = xmalloc(sizeof(*c));
    *c = (chunk_t){.due_ns = now_ns() + delay_ns, .dst = dst, .data = data, .len = len};
    dst->pair->queued++;
    if (tail)
        tail->next = c;
    else
        head = c;
    tail = c;
    if (head == c)
        arm();
}

static void write_done(uv_write_t *req, int status)
{
    (void)status; /* a failed write is the end of that pair: its read side sees it */
    free(req->data);
    free(req);
}

/* Writes (or ends) one due chunk; frees it. */
static void deliver(chunk_t *c)
{
    pair_t *p = c->dst->pair;
    p->queued--;
    if (!p->closing && c->data) {
        uv_write_t *req = xmalloc(sizeof(*req));
        req->data = c->data;
        uv_buf_t buf = uv_buf_init(c->data, (unsigned)c->len);
        if (uv_write(req, (uv_stream_t *)&c->dst->tcp, &buf, 1, write_done) != 0) {
            free(c->data);
            free(req);
            pair_close(p);
        }
    } else {
        free(c->data);
        pair_close(p);
    }
    if (p->closing && p->open_handles == 0 && p->queued == 0)
        free(p);
    free(c);
}

static void on_timer(uv_poll_t *h, int status, int events)
{
    (void)h;
    (void)status;
    (void)events;
    uint64_t expirations;
    if (read(tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
        perror("delay-proxy: timerfd");
    uint64_t now = now_ns();
    while (head && head->due_ns <= now) {
        chunk_t *c = head;
        head = c->next;
        if (!head)
            tail = NULL;
        deliver(c);
    }
    arm();
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(xmalloc(CHUNK), CHUNK);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    side_t *s = st->data;
    if (nread > 0) {
        push(s->peer, buf->base, (size_t)nread);
        return;
    }
    free(buf->base);
    if (nread < 0) { /* end of stream or error: end the pair after the delay */
        uv_read_stop(st);
        push(s->peer, NULL, 0);
    }
}

/* -r: the listener is closed; listen again once the target answers. */
static void retry_closed(uv_handle_t *h)
{
    map_t *m = h->data;
    m->probing = 0;
}

static void on_probe(uv_connect_t *req, int status)
{
    map_t *m = req->data;
    uv_close((uv_handle_t *)&m->probe, retry_closed);
    if (status == 0 && !m->listening) {
        uv_timer_stop(&m->retry);
        if (map_listen(m) != 0)
            exit(1); /* the port is lost: the run reports the failures */
    }
}

static void on_retry(uv_timer_t *t)
{
    map_t *m = t->data;
    if (m->probing || m->listening)
        return;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", m->target_port, &addr);
    uv_tcp_init(loop, &m->probe);
    m->probe.data = m;
    m->probe_req.data = m;
    m->probing = 1;
    if (uv_tcp_connect(&m->probe_req, &m->probe, (struct sockaddr *)&addr, on_probe) != 0)
        uv_close((uv_handle_t *)&m->probe, retry_closed);
}

static void listener_closed(uv_handle_t *h)
{
    map_t *m = h->data;
    uv_timer_start(&m->retry, on_retry, 50, 50);
}

static void on_target(uv_connect_t *req, int status)
{
    pair_t *p = req->data;
    if (status != 0 || p->closing) {
        map_t *m = p->map;
        if (status == UV_ECONNREFUSED && mirror_refusals && m->listening) {
            m->listening = 0;
            uv_close((uv_handle_t *)&m->listener, listener_closed);
        }
        pair_close(p);
        return;
    }
    uv_tcp_nodelay(&p->b.tcp, 1);
    uv_read_start((uv_stream_t *)&p->a.tcp, alloc_cb, on_read);
    uv_read_start((uv_stream_t *)&p->b.tcp, alloc_cb, on_read);
}

static void on_accept(uv_stream_t *server, int status)
{
    map_t *m = server->data;
    if (status != 0)
        return;
    pair_t *p = xmalloc(sizeof(*p));
    memset(p, 0, sizeof(*p));
    p->map = m;
    p->a.pair = p->b.pair = p;
    p->a.peer = &p->b;
    p->b.peer = &p->a;
    uv_tcp_init(loop, &p->a.tcp);
    uv_tcp_init(loop, &p->b.tcp);
    p->a.tcp.data = &p->a;
    p->b.tcp.data = &p->b;
    p->open_handles = 2;
    if (uv_accept(server, (uv_stream_t *)&p->a.tcp) != 0) {
        pair_close(p);
        return;
    }
    uv_tcp_nodelay(&p->a.tcp, 1);
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", m->target_port, &addr);
    p->connect.data = p;
    if (uv_tcp_connect(&p->connect, &p->b.tcp, (struct sockaddr *)&addr, on_target) != 0)
        pair_close(p);
}

static void on_limit(uv_timer_t *t)
{
    (void)t;
    fprintf(stderr, "delay-proxy: time limit reached\n");
    exit(0);
}

static void usage(void)
{
    fprintf(stderr, "usage: delay-proxy -d MICROSECONDS [-r] [-t SECONDS] LISTEN:TARGET ...\n");
    exit(1);
}

/* Binds and listens on m's port; returns 0 or a negative libuv code. */
static int map_listen(map_t *m)
{
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", m->listen_port, &addr);
    uv_tcp_init(loop, &m->listener);
    m->listener.data = m;
    int rc = uv_tcp_bind(&m->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&m->listener, 128, on_accept);
    if (rc != 0) {
        fprintf(stderr, "delay-proxy: cannot listen on %d: %s\n", m->listen_port, uv_strerror(rc));
        uv_close((uv_handle_t *)&m->listener, NULL);
        return rc;
    }
    m->listening = 1;
    return 0;
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)h;
    mirror_refusals = signum == SIGUSR2;
}

int main(int argc, char **argv)
{
    double delay_us = -1, limit_s = 600;
    int ch;
    while ((ch = getopt(argc, argv, "d:rt:")) != -1) {
        switch (ch) {
        case 'd': delay_us = atof(optarg); break;
        case 'r': mirror_refusals = 1; break;
        case 't': limit_s = atof(optarg); break;
        default: usage();
        }
    }
    if (delay_us < 0 || limit_s <= 0 || optind >= argc)
        usage();
    delay_ns = (uint64_t)(delay_us * 1e3);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* wake on the deadline, not 50 us later */
    loop = uv_default_loop();
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd < 0) {
        perror("delay-proxy: timerfd_create");
        return 1;
    }
    uv_poll_init(loop, &tpoll, tfd);
    uv_poll_start(&tpoll, UV_READABLE, on_timer);
    for (int i = optind; i < argc; i++) {
        if (nmaps == MAX_MAPS)
            usage();
        map_t *m = &maps[nmaps++];
        if (sscanf(argv[i], "%d:%d", &m->listen_port, &m->target_port) != 2)
            usage();
        uv_timer_init(loop, &m->retry);
        m->retry.data = m;
        if (map_listen(m) != 0)
            return 1;
    }
    uv_signal_init(loop, &sig_off);
    uv_signal_init(loop, &sig_on);
    uv_signal_start(&sig_off, on_signal, SIGUSR1);
    uv_signal_start(&sig_on, on_signal, SIGUSR2);
    uv_timer_t limit;
    uv_timer_init(loop, &limit);
    uv_timer_start(&limit, on_limit, (uint64_t)(limit_s * 1000), 0);
    uv_unref((uv_handle_t *)&limit);
    printf("ready\n");
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
