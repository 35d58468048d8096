/* node: the state of one running cohortd, owned by its event loop.
 *
 * Owns: pointers to every subsystem of this process and the counters that
 * INFO, /metrics and /v1/status report.
 * Never: is touched from another thread; every field belongs to the loop. */
#ifndef COHORT_NODE_H
#define COHORT_NODE_H

#include <stdint.h>
#include <uv.h>

#include "cache.h"
#include "config.h"
#include "version.h"

/* The redis_version cohortd announces (HELLO, INFO): clients use it to decide
 * which commands they may send; cohortd speaks the protocol of Redis 7. */
#define COHORT_REDIS_COMPAT_VERSION "7.0.0"

typedef struct node_stats {
    uint64_t connections_received; /* accepted client connections */
    uint64_t rejected_connections; /* refused: maxclients */
    uint64_t commands_processed;
    uint64_t protocol_errors;     /* connections closed for malformed RESP */
    uint64_t output_limit_closes; /* connections closed: output buffer limit */
    uint64_t query_limit_closes;  /* connections closed: query buffer limit */
    uint64_t idle_timeouts;
    uint64_t net_input_bytes;
    uint64_t net_output_bytes;
    uint64_t http_requests;
    uint64_t http_bad_requests;
    uint64_t flushes_local; /* flush commands executed here */
    uint64_t setl_refused;  /* SETL refused because the key was flushed */
} node_stats_t;

struct server;
struct flushmark;
struct cluster;

typedef struct node {
    uv_loop_t *loop;
    config_t *cfg;
    cache_t *cache;
    struct server *server;       /* client listeners and connections */
    struct flushmark *flushmark; /* flush history for GETL/SETL */
    struct http_server *http;
    struct cluster *cluster; /* NULL when running alone */
    node_stats_t stats;
    char run_id[41];    /* random hex, new at every start */
    int64_t start_ms;   /* wall clock at start */
    int64_t now_ms;     /* wall clock, read once per loop turn */
    int shutting_down;
} node_t;

/* Wall-clock milliseconds, cached for this loop turn. */
int64_t node_now(node_t *n);
/* Refreshes the cached clock (call at the start of each loop turn). */
void node_tick(node_t *n);

#endif
