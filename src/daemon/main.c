/* main: cohortd start-up and shutdown.
 *
 * Owns: the order in which subsystems start and stop, wiring the layers
 * together (the server's execute hook is the command table, its close hook
 * drops the client's subscriptions, the cluster's host is the node, the HTTP
 * routes are admin's), signal handling, the periodic cron timer (cache
 * expiry, pub/sub soft output limits, the shutdown a SHUTDOWN command asked
 * for), and running the node's end-of-turn
 * hooks from the loop's check and prepare phases.
 * Never: implements a subsystem itself. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "clock.h"
#include "cmd.h"
#include "commands.h"
#include "cron.h"
#include "log.h"
#include "keyspace.h"
#include "node.h"
#include "status.h"

#define CRON_INTERVAL_MS 10 /* how often background work runs */
#define PRESENCE_EXPIRE_BUDGET 10000 /* presence entries expired per cron run, at most */
#define CRON_BUDGET_US 1000 /* at most this much of it per run */

typedef struct daemon_handles {
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t cron;
    uv_check_t after_io;     /* writes replies and peer frames after I/O... */
    uv_prepare_t before_poll; /* ...and what timers queued, before the loop sleeps */
    uv_timer_t sweep;         /* runs while the cache sweeps a prefix flush */
    uint64_t turn_ns;         /* uv_hrtime() at the end of the last turn */
    uint64_t turn_idle_ns;    /* uv_metrics_idle_time() then */
} daemon_handles_t;

/* A step of a prefix flush's sweep, between two polls of the loop: no client
 * waits longer than this for it (see cache_flush_prefix_start). Half of the
 * cron's budget: the two can run in one turn. */
#define SWEEP_BUDGET_US 500
#define SWEEP_PAUSE_MS 1
/* The first step waits this long: the flush's round trip to the members
 * (and their acknowledgements, and the reply) goes first. */
#define SWEEP_START_MS 2

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
    uv_close((uv_handle_t *)&d->sweep, NULL);
    node_stop_services(n, NULL); /* scheduler, then leases released, then the store */
    cluster_stop(n->cluster);
    n->cluster = NULL;
    server_stop(n->server);
    n->server = NULL;
    if (n->http)
        http_stop(n->http);
    n->http = NULL;
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
    if (n->shutdown_asked) { /* SHUTDOWN, after the command (and its script) ended */
        shutdown_node(n, "SHUTDOWN command");
        return;
    }
    clock_tick();
    cache_cron(n->cache, clock_now_ms(), CRON_BUDGET_US);
    pubsub_cron(n->pubsub, clock_now_ms());
    presence_expire(n->presence, clock_mono_ms(), PRESENCE_EXPIRE_BUDGET);
    node_tracking_lease(n);
    node_mode_watch(n);
    /* An aborted write whose newer write has not come within what every
     * write may take gives back the value it replaced (cluster/WRITES.md). */
    int64_t bound = n->cfg->flush_timeout_ms + 2 * (int64_t)n->cfg->lease_ms;
    node_sweep_inflight(n, clock_mono_ms() - bound);
}

/* Sends what this part of the loop turn queued: peer frames (flush batches,
 * acks, heartbeats) and client replies. Runs after I/O (uv_check) and again
 * before the loop sleeps (uv_prepare): libuv runs timers before it polls, so
 * a heartbeat or a held reply released by a timer would otherwise wait for
 * the poll to return, up to one timer period later. */
static void end_of_turn(node_t *n)
{
    node_hooks_run(&n->end_of_turn);
}

static void cluster_turn(void *ud)
{
    cluster_end_of_turn(ud);
}

/* Client tracking's invalidations of this turn go into the connections'
 * buffers before the cluster acknowledges the members' flushes applied this
 * turn and before the replies of this turn are written (see README,
 * client-side caching). */
static void tracking_turn(void *ud)
{
    node_t *n = ud;
    node_tracking_lease(n);
    tracking_flush(n->tracking);
}

static void server_turn(void *ud)
{
    server_flush_writes(ud);
}

static void waits_turn(void *ud)
{
    cmd_wait_recheck(ud);
}

/* A client is closing: its subscriptions and transaction go (the server's
 * on_close hook). */
static void client_closing(void *ud, client_t *c)
{
    node_t *n = ud;
    pubsub_client_closed(n->pubsub, c);
    commands_client_closed(c);
    tracking_client_closed(n->tracking, c);
    watch_unwatch(n->watch, c);
    cmd_wait_client_closed(c);
}

static void on_after_io(uv_check_t *h)
{
    end_of_turn(h->data);
}

/* While a sweep is pending: one bounded step (SWEEP_BUDGET_US), then a
 * poll that may sleep SWEEP_PAUSE_MS, so a sweep takes at most about a
 * third of a core from the application beside the node, and I/O is served
 * between the steps. */
static void on_sweep(uv_timer_t *h)
{
    node_t *n = h->data;
    clock_tick();
    if (!cache_sweep(n->cache, clock_now_ms(), SWEEP_BUDGET_US))
        uv_timer_stop(h);
}

static void sweep_turn(void *ud)
{
    node_t *n = ud;
    daemon_handles_t *d = n->loop->data;
    uv_handle_t *h = (uv_handle_t *)&d->sweep;
    if (cache_sweeping(n->cache) && !n->shutting_down && !uv_is_active(h) && !uv_is_closing(h))
        uv_timer_start(&d->sweep, on_sweep, SWEEP_START_MS, SWEEP_PAUSE_MS);
}

/* A turn runs from one poll to the next: its wall time less the time it
 * waited in the poll is how long the loop was busy (node_stats_t). */
static void note_turn(node_t *n, daemon_handles_t *d)
{
    uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(n->loop);
    if (d->turn_ns) {
        uint64_t busy_us = ((now - d->turn_ns) - (idle - d->turn_idle_ns)) / 1000;
        if (busy_us > n->stats.loop_busy_max_us)
            n->stats.loop_busy_max_us = busy_us;
    }
    d->turn_ns = now;
    d->turn_idle_ns = idle;
}

static void on_before_poll(uv_prepare_t *h)
{
    node_t *n = h->data;
    end_of_turn(n);
    note_turn(n, n->loop->data);
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
    uv_timer_init(n->loop, &d->sweep);
    d->sweep.data = n;
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

/* Starts the listeners, the cluster and HTTP, and registers what each does
 * at the end of a loop turn (the cluster's frames go out before the replies
 * they may release). Returns 0, or -1 with a message in err. */
static int start_subsystems(node_t *n, char *err, size_t errlen)
{
    server_hooks_t hooks = {n, commands_execute, client_closing};
    n->server = server_start(n->loop, n->cfg, &hooks, err, errlen);
    if (!n->server)
        return -1;
    cluster_host_t host = node_cluster_host(n);
    if (cluster_start(n->loop, n->cfg, &host, &n->cluster, err, errlen) < 0)
        return -1;
    n->hlc.tag = cluster_version_tag(n->cluster);
    node_presence_attach(n);
    if (start_http(n) < 0)
        return -1;
    node_hooks_add(&n->end_of_turn, "tracking", tracking_turn, n);
    if (n->cluster) {
        /* the cluster's commits resume waiting commands, whose writes go
         * out at once */
        node_hooks_add(&n->end_of_turn, "cluster", cluster_turn, n->cluster);
        node_hooks_add(&n->end_of_turn, "waits", waits_turn, n);
        node_hooks_add(&n->end_of_turn, "cluster again", cluster_turn, n->cluster);
    } else {
        node_hooks_add(&n->end_of_turn, "waits", waits_turn, n);
    }
    node_hooks_add(&n->end_of_turn, "sweep", sweep_turn, n);
    node_hooks_add(&n->end_of_turn, "server", server_turn, n->server);
    node_register_metrics(n);
    n->mode.serving_cache = node_serves_cache(n);
    return 0;
}

int main(int argc, char **argv)
{
#ifdef __GLIBC__
    /* No fastbins: a sweep or a FLUSHALL frees a large cache's entries a
     * batch at a time, and glibc would keep them unmerged in fastbins until
     * the next large allocation (a table resize, a big reply) merges them
     * all at once: 100 ms on the loop for 500,000 keys. Merged as they are
     * freed, the cost stays with each batch. */
    mallopt(M_MXFAST, 0);
#endif
    config_t cfg;
    char err[512] = "";
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
    jobspec_t *specs = NULL;
    size_t nspecs = 0;
    char why[400];
    if (cron_set_timezone(cfg.timezone, why, sizeof(why)) < 0)
        snprintf(err, sizeof(err), "scheduler.timezone: %s", why);
    else if (scheduler_parse(&cfg, &specs, &nspecs, err, sizeof(err)) == 0)
        err[0] = '\0';
    keyspaces_t *keyspaces = err[0] ? NULL : keyspaces_new(&cfg, err, sizeof(err));
    if (err[0]) {
        fprintf(stderr, "cohortd: %s\n", err);
        for (size_t i = 0; i < nspecs; i++)
            jobspec_free(&specs[i]);
        free(specs);
        log_close();
        config_free(&cfg);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    fit_file_limit(&cfg);

    node_t node;
    memset(&node, 0, sizeof(node));
    uv_loop_configure(uv_default_loop(), UV_METRICS_IDLE_TIME); /* note_turn */
    node_init(&node, uv_default_loop(), &cfg);
    node.keyspaces = keyspaces;
    if (node_open_store(&node, err, sizeof(err)) < 0) {
        fprintf(stderr, "cohortd: %s\n", err);
        for (size_t i = 0; i < nspecs; i++)
            jobspec_free(&specs[i]);
        free(specs);
        uv_loop_close(node.loop);
        node_free(&node);
        log_close();
        config_free(&cfg);
        return 2;
    }
    node_start_services(&node, specs, nspecs);

    daemon_handles_t handles;
    err[0] = '\0';
    start_handles(&node, &handles);
    if (start_subsystems(&node, err, sizeof(err)) < 0) {
        log_error("main", "%s", err);
        shutdown_node(&node, "start-up failed");
        uv_run(node.loop, UV_RUN_DEFAULT);
        uv_loop_close(node.loop);
        node_free(&node);
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
    node_free(&node);
    log_info("main", "stopped");
    log_close();
    config_free(&cfg);
    return 0;
}
