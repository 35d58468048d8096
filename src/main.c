/* main: cohortd start-up and shutdown.
 *
 * Owns: the order in which subsystems start and stop, signal handling, the
 * periodic cron timer and the per-turn hooks of the event loop.
 * Never: implements a subsystem itself. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <openssl/rand.h>

#include "cache.h"
#include "cluster.h"
#include "config.h"
#include "flushmark.h"
#include "http.h"
#include "log.h"
#include "mem.h"
#include "node.h"
#include "server.h"
#include "status.h"

#define CRON_INTERVAL_MS 10 /* how often background work runs */
#define CRON_BUDGET_US 1000 /* at most this much of it per run */
#define FLUSHMARK_SLOTS (1 << 16)
#define FLUSHMARK_PREFIXES 1024

typedef struct daemon_handles {
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t cron;
    uv_check_t after_io;     /* writes replies and peer frames after I/O... */
    uv_prepare_t before_poll; /* ...and what timers queued, before the loop sleeps */
} daemon_handles_t;

int64_t node_now(node_t *n)
{
    return n->now_ms;
}

void node_tick(node_t *n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    n->now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void end_of_turn(node_t *n);

static void shutdown_node(node_t *n, const char *why)
{
    if (n->shutting_down)
        return;
    n->shutting_down = 1;
    log_info("main", "shutting down (%s)", why);
    daemon_handles_t *d = n->loop->data;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
    uv_close((uv_handle_t *)&d->cron, NULL);
    end_of_turn(n);
    uv_close((uv_handle_t *)&d->after_io, NULL);
    uv_close((uv_handle_t *)&d->before_poll, NULL);
    cluster_stop(n->cluster);
    server_stop(n->server);
    if (n->http)
        http_stop(n->http);
}

static void on_signal(uv_signal_t *h, int signum)
{
    node_t *n = h->data;
    if (signum == SIGHUP) {
        log_reopen();
        log_info("main", "log file reopened");
        return;
    }
    shutdown_node(n, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_cron(uv_timer_t *t)
{
    node_t *n = t->data;
    node_tick(n);
    cache_cron(n->cache, n->now_ms, CRON_BUDGET_US);
}

/* Sends what this part of the loop turn queued: peer frames (flush batches,
 * acks, heartbeats) and client replies. Runs after I/O (uv_check) and again
 * before the loop sleeps (uv_prepare): libuv runs timers before it polls, so
 * a heartbeat or a held reply released by a timer would otherwise wait for
 * the poll to return, up to one timer period later. */
static void end_of_turn(node_t *n)
{
    cluster_end_of_turn(n->cluster);
    server_flush_writes(n->server);
}

static void on_after_io(uv_check_t *h)
{
    end_of_turn(h->data);
}

static void on_before_poll(uv_prepare_t *h)
{
    end_of_turn(h->data);
}

static void make_run_id(char out[41])
{
    unsigned char raw[20];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        for (size_t i = 0; i < sizeof(raw); i++)
            raw[i] = (unsigned char)rand();
    }
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

static uint64_t random_u64(void)
{
    uint64_t v = 0;
    if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
        v = (uint64_t)time(NULL) * 2654435761u;
    return v;
}

/* Raises the open-file limit to fit maxclients; lowers maxclients if the
 * hard limit does not allow it (as redis-server does). */
static void fit_file_limit(config_t *cfg)
{
    const rlim_t reserved = 64; /* listeners, peers, logs, store */
    rlim_t want = (rlim_t)cfg->maxclients + reserved;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rlim_t cur = want < rl.rlim_max ? want : rl.rlim_max;
    rl.rlim_cur = cur;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want) {
        size_t fit = rl.rlim_cur > reserved ? (size_t)(rl.rlim_cur - reserved) : 1;
        log_warn("main", "open file limit is %llu: maxclients lowered from %zu to %zu",
                 (unsigned long long)rl.rlim_cur, cfg->maxclients, fit);
        cfg->maxclients = fit;
    }
}

static int start_handles(node_t *n, daemon_handles_t *d)
{
    n->loop->data = d;
    uv_signal_init(n->loop, &d->sigterm);
    uv_signal_init(n->loop, &d->sigint);
    uv_signal_init(n->loop, &d->sighup);
    d->sigterm.data = d->sigint.data = d->sighup.data = n;
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    uv_signal_start(&d->sighup, on_signal, SIGHUP);
    uv_timer_init(n->loop, &d->cron);
    d->cron.data = n;
    uv_timer_start(&d->cron, on_cron, CRON_INTERVAL_MS, CRON_INTERVAL_MS);
    uv_check_init(n->loop, &d->after_io);
    d->after_io.data = n;
    uv_check_start(&d->after_io, on_after_io);
    uv_prepare_init(n->loop, &d->before_poll);
    d->before_poll.data = n;
    uv_prepare_start(&d->before_poll, on_before_poll);
    return 0;
}

static int start_http(node_t *n)
{
    config_t *cfg = n->cfg;
    if (cfg->http_port == 0)
        return 0;
    char err[256];
    size_t nroutes;
    const http_route_t *routes = status_routes(&nroutes);
    n->http = http_start(n->loop, cfg->http_bind, cfg->http_port, cfg->http_max_request, routes,
                         nroutes, n, err, sizeof(err));
    if (!n->http) {
        log_error("http", "%s", err);
        return -1;
    }
    return 0;
}

static void free_node(node_t *n)
{
    cache_free(n->cache);
    flushmark_free(n->flushmark);
}

int main(int argc, char **argv)
{
    config_t cfg;
    char err[512];
    config_defaults(&cfg);
    int rc = config_from_args(&cfg, argc, argv, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "cohortd: %s\n", err);
        config_free(&cfg);
        return rc < 0 ? 2 : 0;
    }
    int level = log_level_parse(cfg.log_level ? cfg.log_level : "info");
    if (log_open(cfg.name, cfg.log_file, level < 0 ? LOG_INFO : level) < 0) {
        fprintf(stderr, "cohortd: cannot open log file %s: %s\n", cfg.log_file, strerror(errno));
        config_free(&cfg);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    fit_file_limit(&cfg);

    node_t node;
    memset(&node, 0, sizeof(node));
    node.loop = uv_default_loop();
    node.cfg = &cfg;
    node_tick(&node);
    node.start_ms = node.now_ms;
    make_run_id(node.run_id);
    node.cache = cache_new(random_u64(), cfg.maxmemory);
    /* Tokens of this incarnation start above any earlier one's (clock-based). */
    node.flushmark = flushmark_new(FLUSHMARK_SLOTS, FLUSHMARK_PREFIXES,
                                   (uint64_t)node.now_ms << 16);

    daemon_handles_t handles;
    err[0] = '\0';
    start_handles(&node, &handles);
    node.server = server_start(&node, err, sizeof(err));
    if (!node.server || cluster_start(&node, err, sizeof(err)) < 0 || start_http(&node) < 0) {
        log_error("main", "%s", err);
        shutdown_node(&node, "start-up failed");
        uv_run(node.loop, UV_RUN_DEFAULT);
        uv_loop_close(node.loop);
        free_node(&node);
        log_close();
        config_free(&cfg);
        return 1;
    }
    log_info("main", "cohortd %s started, node %s, run id %s", COHORT_VERSION, cfg.name,
             node.run_id);

    uv_run(node.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(node.loop);
    if (rc != 0)
        log_warn("main", "event loop closed with handles open: %s", uv_strerror(rc));
    free_node(&node);
    log_info("main", "stopped");
    log_close();
    config_free(&cfg);
    return 0;
}
