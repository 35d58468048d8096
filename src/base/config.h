/* config: cohortd's settings, from an INI file and command-line flags.
 *
 * Owns: the table of every setting (section, key, type, bounds, default), the
 * INI reading (through inih; a repeated key appends to a list setting and is an
 * error for any other), and the command-line flags, which override the file.
 * Never: starts anything or keeps a half-applied config: on any error the
 * caller gets the message "FILE:LINE: key: what is wrong" and a non-zero result.
 *
 * Sizes accept a unit (b, kb, mb, gb; k/m/g; case-insensitive, 1kb = 1024);
 * durations accept ms, s, m, h (a bare number is in the unit the key names).
 */
#ifndef COHORT_CONFIG_H
#define COHORT_CONFIG_H

#include <stddef.h>

typedef struct strlist {
    char **items;
    size_t n;
} strlist_t;

/* One key = value line of a [job NAME] section, kept as text: the job
 * settings are parsed and checked above this layer (svc/scheduler.c), which
 * reports "FILE:LINE: key: what is wrong" from line. */
typedef struct config_pair {
    char *key;
    char *value;
    int line;
} config_pair_t;

/* A named section ([job NAME], [keyspace NAME]), in file order. */
typedef struct config_job {
    char *name; /* NAME as written (checked by jobspec_init) */
    int line;   /* of the section header */
    config_pair_t *pairs;
    size_t npairs;
} config_job_t;

typedef struct config {
    char *path; /* the file read, or NULL */

    /* [node] */
    char *name;     /* default: hostname */
    char *role;     /* "hot" or "warm" */
    char *log_file; /* NULL: stderr */
    char *log_level;
    char *data_dir; /* /var/lib/cohort: the embedded store's file */

    /* [client] */
    char *bind;                 /* 127.0.0.1 */
    int port;                   /* 7379; 0 disables TCP */
    char *unixsocket;           /* NULL: none */
    int unixsocketperm;         /* octal permissions, 0700 */
    char *requirepass;          /* NULL or "": no AUTH needed */
    size_t maxclients;          /* 10000 */
    size_t max_bulk_len;        /* 64mb: longest argument */
    size_t max_multibulk;       /* 1048576 arguments */
    size_t query_buffer_limit;  /* 128mb: pending request bytes per client */
    size_t output_buffer_limit; /* 64mb: pending reply bytes per client */
    int timeout_s;              /* idle client timeout, 0: never */
    size_t pubsub_output_limit_hard; /* 32mb: a subscriber's pending bytes; 0: none */
    size_t pubsub_output_limit_soft; /* 8mb, for longer than ... */
    int pubsub_output_soft_s;        /* ... 60 s; 0: the next check */
    size_t pubsub_max_subscriptions; /* 1000000 per client; 0: no limit */
    size_t tracking_table_max_keys;  /* 1000000 keys read by tracking clients; 0: none */
    size_t presence_max_entries;     /* 2000000 presence entries joined on this node; 0: none */
    int tcp_backlog;            /* 511 */

    /* [http] */
    char *http_bind; /* 127.0.0.1 */
    int http_port;   /* 7380; 0 disables */
    size_t http_max_request; /* 8kb */

    /* [cluster] */
    char *cluster_name;      /* "cohort" */
    int cluster_port;        /* 7381 */
    char *cluster_bind;      /* 0.0.0.0 */
    char *key_file;          /* NULL: single node */
    strlist_t peers;         /* host:port */
    strlist_t authorized;    /* CIDRs */
    strlist_t local_address; /* more addresses of this machine */
    int lease_ms;            /* coherence lease T, 2000 */
    int heartbeat_ms;        /* 100 */
    int suspect_ms;          /* 500 */
    int probe_ms;            /* 400 */
    int dead_after_ms;       /* 10000 */
    int flush_timeout_ms;    /* 1000 */
    size_t replay_log;       /* 65536 flushes kept for replay */

    /* [cache] */
    size_t maxmemory; /* 0: no limit */
    char *maxmemory_policy; /* allkeys-lru ... noeviction (cache.h's enum cache_policy) */
    char *writes;     /* replicate | invalidate | local: keys in no [keyspace] */
    int databases;    /* 16: SELECT 0 .. databases-1 (at most 256: one key byte) */

    /* [store] */
    char *store_url; /* NULL: sqlite:///<data_dir>/cohort.db */
    int member_lease_ms; /* 10000: membership row lease (only with store_url) */

    /* [leases] */
    int lease_ttl_ms; /* 3000: leader leases (canonical, applications') */

    /* [scheduler] */
    char *timezone;    /* UTC: cron expressions' zone */
    int retention_s;   /* 7d: run history kept this long */

    /* [job NAME] sections, raw (see config_job_t) */
    config_job_t *jobs;
    size_t njobs;
    /* [keyspace NAME] sections, raw (checked by node/keyspace.c) */
    config_job_t *keyspaces;
    size_t nkeyspaces;
} config_t;

/* Fills cfg with the defaults. */
void config_defaults(config_t *cfg);
/* Reads path into cfg (settings not in the file keep their values).
 * Returns 0, or -1 with a message in err. */
int config_load_file(config_t *cfg, const char *path, char *err, size_t errlen);
/* Sets one setting by section and key from a string (as a line of the file
 * would). Returns 0, or -1 with "key: what is wrong" in err. */
int config_set(config_t *cfg, const char *section, const char *key, const char *value, char *err,
               size_t errlen);

/* Command-line handling, applied over cfg (which holds config_defaults()):
 * --config FILE is read first, then every other flag, so flags override the
 * file whatever their order. Returns 0 to run, 1 when it printed --help or
 * --version and the process should exit 0, -1 on error (message in err; cfg
 * unchanged). */
int config_from_args(config_t *cfg, int argc, char **argv, char *err, size_t errlen);

/* Checks the settings that must agree with each other (for example
 * heartbeat < suspect_after). Returns 0, or -1 with the reason in err.
 * config_from_args() runs it on the final settings. */
int config_check(const config_t *cfg, char *err, size_t errlen);

void config_free(config_t *cfg);

/* Helpers shared with other parsers. Return 0 or -1. */
int config_parse_size(const char *s, size_t *out);
int config_parse_duration_ms(const char *s, int default_unit_ms, long long *out);
/* yes/no/true/false/on/off/1/0, case-insensitive; *out is 1 or 0. */
int config_parse_bool(const char *s, int *out);

#endif
