/* node: the state of one running cohortd, owned by its event loop.
 *
 * Owns: pointers to every subsystem of this process, the node's own counters,
 * its metrics registry and its end-of-turn hooks, and the glue by which the
 * lower layers reach each other without knowing each other (the cluster's
 * host interface: members' flushes into the cache, acknowledgements releasing
 * held replies).
 * Never: is touched from another thread (every field belongs to the loop), or
 * executes commands (cmd/ does, above this layer).
 *
 * Layer: above base, proto, cache, net, cluster, store and svc; below cmd,
 * admin and the daemon. */
#ifndef COHORT_NODE_H
#define COHORT_NODE_H

#include <stdint.h>
#include <uv.h>

#include "cache.h"
#include "cluster.h"
#include "config.h"
#include "flushmark.h"
#include "hlc.h"
#include "hooks.h"
#include "http.h"
#include "inflight.h"
#include "keyspace.h"
#include "lease.h"
#include "metrics.h"
#include "mode.h"
#include "presence.h"
#include "pubsub.h"
#include "scheduler.h"
#include "server.h"
#include "store.h"
#include "tracking.h"
#include "watch.h"
#include "writes.h"
#include "version.h"

/* The redis_version cohortd announces (HELLO, INFO): clients use it to decide
 * which commands they may send; cohortd speaks the protocol of Redis 7. */
#define COHORT_REDIS_COMPAT_VERSION "7.0.0"

#define NODE_OPS_SAMPLES 16 /* instantaneous_ops_per_sec: the mean of this many */

typedef struct node_stats {
    uint64_t commands_processed;
    uint64_t flushes_local; /* flush commands executed here */
    uint64_t setl_refused;  /* SETL refused because the key was flushed */
    uint64_t used_memory_peak; /* highest used memory seen (node_note_memory) */
    /* ops per second sampled every 100 ms (node_metrics_sample), as redis-server's
     * trackInstantaneousMetric */
    int64_t ops_sample_ms;
    uint64_t ops_sample_count;
    uint64_t ops_samples[NODE_OPS_SAMPLES];
    unsigned ops_idx;
    /* The longest loop turn's busy time (its wall time less the time it
     * waited in the poll), µs, since start or CONFIG RESETSTAT: the
     * longest any client waited for this node's loop (daemon/main.c). */
    uint64_t loop_busy_max_us;
} node_stats_t;

typedef struct node {
    uv_loop_t *loop;
    config_t *cfg;
    cache_t *cache;
    server_t *server;       /* client listeners and connections */
    flushmark_t *flushmark; /* flush history for GETL/SETL */
    flushmark_t *floor;     /* versions of the flushes applied before the last drop
                               (node/writes.h) */
    flushmark_t *recent;    /* every flush since the cache was last empty, exact:
                               what a member's write must not undo (node.c) */
    hlc_t hlc;              /* versions of this node's writes and flushes */
    http_server_t *http;
    cluster_t *cluster; /* NULL when running alone */
    pubsub_t *pubsub;   /* this node's channels, patterns and subscribers */
    presence_t *presence; /* PRESENCE.*: this node's entries and the members' copies */
    keyspaces_t *keyspaces; /* write modes by key prefix; NULL: every key replicates */
    tracking_t *tracking; /* CLIENT TRACKING: fed by the cache's change signal */
    watch_t *watch;       /* WATCHed keys: fed by the same signal */
    inflight_t *inflight;   /* writes of replicated keys applied here, not committed yet */
    uint64_t committed_self; /* this node's writes up to this flush number are committed */
    uint64_t *aborts;        /* this node's proposals refused since the last recheck */
    size_t naborts;
    int waits_dirty;         /* something a suspended command waits for changed */
    void *waits;             /* the suspended commands (cmd/cmd_wait.c owns them) */
    struct script_engine *script; /* EVAL's engine, made on first use (cmd_script.c) */
    client_t *script_client;      /* the client a script's commands run as */
    store_t *store;         /* the shared store; NULL before start and after close */
    lease_mgr_t *leases;    /* leader leases; NULL when the store is not open */
    scheduler_t *scheduler; /* [job NAME] sections; NULL when the store is not open */
    node_stats_t stats;
    metrics_t *metrics;       /* every figure INFO, /metrics, /v1/status show */
    node_hooks_t end_of_turn; /* run after I/O and before the loop sleeps */
    node_mode_watch_t mode;   /* last mode seen, for logging its changes */
    char run_id[41];          /* random hex, new at every start */
    int64_t start_ms;         /* wall clock at start */
    int shutting_down;
    int shutdown_asked; /* SHUTDOWN (cmd_server.c): the daemon's cron shuts the node down */
} node_t;

/* Prepares n (zeroed by the caller) for loop and cfg: the cache, the flush
 * marks, the run id, the metrics registry. Returns 0. */
int node_init(node_t *n, uv_loop_t *loop, config_t *cfg);
/* Frees what node_init and the subsystems left (call after the loop ended). */
void node_free(node_t *n);

/* The host interface the cluster gets (cluster_start). */
cluster_host_t node_cluster_host(node_t *n);
/* Releases held replies whose flushes are acknowledged (the cluster's
 * progress callback does this too). */
void node_release_replies(node_t *n);
/* Opens the shared store: [store] url, or sqlite:///<data_dir>/cohort.db
 * (data_dir created if missing). Returns 0, or -1 with the reason in err (a
 * bad URL, a data_dir that cannot be made): the caller exits 2. An
 * unreachable database is not an error: the store retries by itself. */
int node_open_store(node_t *n, char *err, size_t errlen);
/* Starts the leases and the scheduler on the open store; takes specs (n of
 * them, from scheduler_parse). */
void node_start_services(node_t *n, jobspec_t *specs, size_t nspecs);
/* Stops the scheduler, then releases the leases, then closes the store;
 * done(n) runs when all of it finished. */
void node_stop_services(node_t *n, void (*done)(node_t *n));
/* Registers the metrics of every subsystem (call once they exist). */
void node_register_metrics(node_t *n);
/* Takes the samples of instantaneous_ops_per_sec due since the last call
 * (one per 100 ms; node_metrics.c). Cheap: call it for every command. */
void node_metrics_sample(node_t *n, int64_t now_ms);
/* Updates used_memory_peak from the cache's used memory (node_metrics.c). */
void node_note_memory(node_t *n);
/* Forgets the peak and the samples (CONFIG RESETSTAT; node_metrics.c). */
void node_metrics_reset(node_t *n);
/* Milliseconds since start. */
int64_t node_uptime_ms(const node_t *n);
/* The write mode (keyspace.h) of a stored key (its database byte first,
 * cmd/commands.c): keyspaces match the client's key, in every database.
 * KS_LOCAL when running alone. */
int node_write_mode(const node_t *n, const char *stored_key, size_t klen);
/* The newest version this node knows of key: its entry's, a flush's of it,
 * or a write's in flight. */
uint64_t node_key_version(node_t *n, const char *key, size_t klen);
/* A write of a replicated key made here (e: its entry, stored): proposed,
 * or sent as a SEED with a new version (writes.h). Each returns the flush
 * number to wait for (0 when alone). */
uint64_t node_propose(node_t *n, cache_entry_t *e, const char *key, size_t klen,
                      const writes_prior_t *prior);
/* What key holds now, copied (writes_prior_take), before a write replaces it. */
void node_prior_take(node_t *n, const char *key, size_t klen, writes_prior_t *out);
uint64_t node_seed(node_t *n, cache_entry_t *e, const char *key, size_t klen);
/* A TTL change of a replicated key made here: e's expire time becomes
 * expire_at, proposed (writes_propose_ttl). Returns the flush number. */
uint64_t node_propose_ttl(node_t *n, cache_entry_t *e, int64_t expire_at);
/* Undoes the aborted writes in flight noted before older_than_mono whose
 * newer write never came (the value they replaced comes back: WRITES.md
 * rules 10, 11). */
void node_sweep_inflight(node_t *n, int64_t older_than_mono);
/* One of this node's proposals (flush number seq) was refused. */
void node_note_abort(node_t *n, uint64_t seq);
/* The version of a write or flush made here now (hlc.h). */
uint64_t node_next_version(node_t *n);
/* Client tracking vouches for clients' caches only while this node's
 * coherence lease has more than a margin left (min(50 ms, lease / 4)): at
 * the cron, at every tracking connection's read and at the end of the turn,
 * this tells tracking whether it is degraded (tracking_set_degraded). */
void node_tracking_lease(node_t *n);
/* Records a flush made here with that version, so that an older SEED from
 * a member cannot bring the key back (the cache itself was already changed
 * by the command): op is a versioned_op. */
void node_flushed(node_t *n, int op, const char *key, size_t klen, uint64_t version);
/* PUBLISH / SPUBLISH (shard): delivers to this node's subscribers and sends
 * to the members whose interest matches. Returns the receivers here plus
 * those the members in contact announced (cluster_publish). */
size_t node_publish(node_t *n, const char *ch, size_t chlen, const char *msg, size_t mlen,
                    int shard);
/* The name of a presence entry's node (origin: PRESENCE_SELF or a member
 * index). Owned by the node or the cluster; "" when unknown. */
const char *node_presence_node(const node_t *n, int origin);
/* After cluster_start: the cluster copies presence entries through this
 * node's table (cluster_set_presence_host). */
void node_presence_attach(node_t *n);

#endif
