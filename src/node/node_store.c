/* node_store: the node's shared store and the services on it (leader leases,
 * the job scheduler): opening, the store's events, the stop order.
 *
 * Owns: choosing the store URL (the [store] url, or the embedded SQLite file
 * under [node] data_dir), logging the store's state changes, and stopping in
 * order: scheduler (runs cancelled and recorded), leases (released, so another
 * node takes over at once), then the store.
 * Never: blocks the loop (the store's own threads and polls do the I/O), or
 * makes an unreachable store fatal: the cache serves without it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "node.h"

/* mkdir -p dir (mode 0750 for what it creates). Returns 0 or -1 (errno set). */
static int make_dirs(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(path, 0750) != 0 && errno != EEXIST)
                return -1;
            *p = c;
            if (c == '\0')
                break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static void on_store_event(void *ud, enum store_event ev, const char *msg)
{
    switch (ev) {
    case STORE_EV_UP:
        log_info("store", "store up%s%s", msg && *msg ? ": " : "", msg ? msg : "");
        break;
    case STORE_EV_DOWN:
        log_warn("store", "store down: %s (retrying; the cache keeps serving)", msg ? msg : "");
        break;
    case STORE_EV_FAILED:
        log_error("store", "store failed: %s (leases and jobs stop; the cache keeps serving)",
                  msg ? msg : "");
        break;
    }
}

int node_open_store(node_t *n, char *err, size_t errlen)
{
    config_t *cfg = n->cfg;
    char url[4200];
    if (cfg->store_url) {
        snprintf(url, sizeof(url), "%s", cfg->store_url);
    } else {
        const char *dir = cfg->data_dir ? cfg->data_dir : "/var/lib/cohort";
        if (dir[0] != '/') {
            snprintf(err, errlen, "node.data_dir: must be an absolute path: '%s'", dir);
            return -1;
        }
        if (make_dirs(dir) < 0) {
            snprintf(err, errlen, "node.data_dir: cannot create %s: %s", dir, strerror(errno));
            return -1;
        }
        snprintf(url, sizeof(url), "sqlite://%s/cohort.db", dir);
    }
    store_opts_t o = {
        .url = url,
        .node_name = NULL,
        .on_event = on_store_event,
        .ud = n,
    };
    char why[512];
    if (store_open(n->loop, &o, &n->store, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "store.url: %s", why);
        return -1;
    }
    return 0;
}

void node_start_services(node_t *n, jobspec_t *specs, size_t nspecs)
{
    config_t *cfg = n->cfg;
    int warm = cfg->role && strcmp(cfg->role, "warm") == 0;
    n->leases = lease_mgr_new(n->loop, n->store, cfg->name, cfg->lease_ttl_ms, warm);
    n->scheduler = scheduler_new(n->loop, n->store, n->leases, cfg->name, specs, nspecs,
                                 (int64_t)cfg->retention_s * 1000);
}

static void (*stop_done)(node_t *n);

static void store_closed(void *ud)
{
    node_t *n = ud;
    log_info("store", "store closed");
    if (stop_done)
        stop_done(n);
}

static void leases_stopped(void *ud)
{
    node_t *n = ud;
    n->leases = NULL;
    if (n->store) {
        store_t *s = n->store;
        n->store = NULL;
        store_close(s, store_closed, n);
    } else if (stop_done) {
        stop_done(n);
    }
}

static void scheduler_stopped(void *ud)
{
    node_t *n = ud;
    n->scheduler = NULL;
    if (n->leases)
        lease_mgr_stop(n->leases, leases_stopped, n);
    else
        leases_stopped(n);
}

void node_stop_services(node_t *n, void (*done)(node_t *n))
{
    stop_done = done;
    if (n->scheduler)
        scheduler_stop(n->scheduler, scheduler_stopped, n);
    else
        scheduler_stopped(n);
}
