/* cmd: helpers shared by the command implementations (cmd_*.c).
 *
 * Owns: argument parsing with redis-server's rules and error texts, the
 * hooks every flush goes through (flushmark for SETL, counters; the cluster
 * broadcast joins here), and the one function every stored value goes
 * through (cmd_write_value: a fill of this node today; replicated writes
 * join there). SEED, a replicated write already, is the exception.
 * Never: used outside the command layer. */
#ifndef COHORT_CMD_H
#define COHORT_CMD_H

#include <stddef.h>

#include "commands.h"
#include "resp.h"

/* The node a client belongs to (the server hands it over as the client's ctx). */
static inline node_t *cmd_node(const client_t *c)
{
    return (node_t *)c->ctx;
}

#define CMD_HANDLER(name) void name(client_t *c, int argc, const char **argv, const size_t *argl)

/* The standard error texts of redis-server 7. */
#define ERR_SYNTAX "ERR syntax error"
#define ERR_NOT_INT "ERR value is not an integer or out of range"

/* Strict decimal parse as redis-server's string2ll (no spaces, no '+', no
 * leading zeros). Returns 0 or -1. */
int cmd_parse_ll(const char *s, size_t len, long long *out);
/* Parses or replies ERR_NOT_INT. Returns 0 or -1. */
int cmd_ll_or_reply(client_t *c, const char *s, size_t len, long long *out);
/* 1 when arg equals the lower-case literal, ignoring case. */
int cmd_is(const char *arg, size_t len, const char *lit);
void cmd_reply_arity(client_t *c, const char *fullname);
/* "ERR invalid expire time in '<cmd>' command" */
void cmd_reply_invalid_expire(client_t *c, const char *cmd);

/* Turns a relative or absolute expire argument into an absolute time in ms.
 * unit_ms is 1000 for seconds or 1 for milliseconds; absolute says whether the
 * value is a unix time. Returns 0, or -1 on overflow. */
int cmd_expire_at(long long v, long long unit_ms, int absolute, long long now_ms,
                  long long *out);

/* Flush hooks: record the flush (GETL/SETL) and count it. */
void cmd_flushed_key(client_t *c, const char *key, size_t klen);
void cmd_flushed_prefix(client_t *c, const char *prefix, size_t plen);
void cmd_flushed_all(client_t *c);
/* SEED: sets the value here, with a new version, and sends it to every
 * member; the client's reply waits for them. */
void cmd_seed_value(client_t *c, const char *key, size_t klen, const char *val, size_t vlen,
                    int64_t expire_at);

/* 1 while cached values may be served; 0 (and a bypass counted) while the
 * coherence lease does not hold. Every command that tells a client anything
 * about the cache's content asks this first. */
int cmd_serving(client_t *c);
/* A read that serves a cached value (cache_lookup with flags): misses while
 * not serving (cmd_serving). In a read-only command, the key is remembered
 * for c's client tracking (hit or miss, serving or not). */
cache_entry_t *cmd_lookup(client_t *c, const char *key, size_t klen, int flags);
/* cmd_lookup counting a hit or a miss. */
cache_entry_t *cmd_read(client_t *c, const char *key, size_t klen);

/* After a write: evict down to maxmemory, note the memory peak. */
void cmd_after_write(client_t *c);

/* The live entry of key for a read-modify-write (INCR, APPEND, ...): NULL
 * when absent or while the coherence lease does not hold (as for a read).
 * Touches the LRU; counts no hit or miss. */
cache_entry_t *cmd_lookup_write(client_t *c, const char *key, size_t klen);

/* Every command that stores a value goes through here: a fill of this node's
 * cache (the key is replaced, its expire time is expire_at, 0: none; enc is
 * an enum cache_enc), then eviction down to maxmemory. Copies key and value
 * (which may not point into the cache if an eviction could free it first:
 * it is copied before any eviction). */
void cmd_write_value(client_t *c, const char *key, size_t klen, const char *val, size_t vlen,
                     int64_t expire_at, int enc);

/* A bulk reply of the entry's value, or null for NULL. */
void cmd_reply_value(client_t *c, const cache_entry_t *e);
/* "ERR unknown subcommand 'x'. Try CMD HELP." */
void cmd_reply_unknown_subcommand(client_t *c, const char *sub, size_t len, const char *cmd);
/* Arity error of a subcommand: "... for 'cmd|sub' command". */
void cmd_reply_sub_arity(client_t *c, const char *cmd, const char *sub, size_t slen);
/* HELP replies: an array of simple strings. */
void cmd_reply_help(client_t *c, const char *const *lines, size_t n);

/* CLIENT SETNAME / HELLO SETNAME: checks and sets c's name. Returns 0, or
 * -1 after the error reply. */
int cmd_set_client_name(client_t *c, const char *s, size_t len);

/* Per-connection flags the command layer keeps in client_t.cmd_flags. */
enum cmd_client_flags {
    CMDC_REPLY_OFF = 1 << 0,       /* CLIENT REPLY OFF */
    CMDC_REPLY_SKIP_NEXT = 1 << 1, /* CLIENT REPLY SKIP: the next command */
    CMDC_REPLY_SKIP = 1 << 2,      /* this command's reply is dropped */
    CMDC_NO_EVICT = 1 << 3,        /* CLIENT NO-EVICT ON */
    CMDC_NO_TOUCH = 1 << 4,        /* CLIENT NO-TOUCH ON: reads do not touch the LRU */
    CMDC_READONLY_CMD = 1 << 5     /* the running command is read-only: its reads are tracked */
};

/* Client tracking and WATCH (cmd_tracking.c). CLIENT's subcommands: */
void cmd_client_tracking(client_t *c, int argc, const char **argv, const size_t *argl);
void cmd_client_caching(client_t *c, const char *v, size_t vl);
void cmd_client_getredir(client_t *c);
void cmd_client_trackinginfo(client_t *c);
/* For EXEC (multi.c's execCommand in redis-server): returns 1 when a key c
 * WATCHed changed since WATCH (any write, DEL, expiry, eviction, FLUSHALL or
 * a member's flush applied here; a key whose time passed since WATCH counts,
 * even if nothing removed it yet), 0 when the transaction may run. Either
 * way c's watched keys are forgotten afterwards (EXEC unwatches, as
 * redis-server). Call it before running the queued commands; when it
 * returns 1, EXEC replies a null array (resp_add_null_array) and discards
 * the queue. A client without WATCH gets 0. */
int cmd_watch_exec_check(client_t *c);
/* Forgets c's watched keys (UNWATCH, DISCARD, RESET; a closing client's go
 * with it). */
void cmd_unwatch_all(client_t *c);

/* The slow log (slowlog.c): commands that ran longer than the threshold. */
void slowlog_maybe_add(client_t *c, int argc, const char **argv, const size_t *argl,
                       uint64_t usec);
long long slowlog_threshold_us(void); /* -1: disabled */
void slowlog_set_threshold_us(long long us);
long long slowlog_max_len(void);
void slowlog_set_max_len(long long n);

/* Handlers, by file. */
CMD_HANDLER(cmd_eval);
CMD_HANDLER(cmd_script);
CMD_HANDLER(cmd_ping);
CMD_HANDLER(cmd_echo);
CMD_HANDLER(cmd_quit);
CMD_HANDLER(cmd_hello);
CMD_HANDLER(cmd_auth);
CMD_HANDLER(cmd_select);
CMD_HANDLER(cmd_client);
CMD_HANDLER(cmd_command);
CMD_HANDLER(cmd_config);
CMD_HANDLER(cmd_info);
CMD_HANDLER(cmd_time);
CMD_HANDLER(cmd_role);
CMD_HANDLER(cmd_lastsave);
CMD_HANDLER(cmd_wait);
CMD_HANDLER(cmd_slowlog);
CMD_HANDLER(cmd_latency);

CMD_HANDLER(cmd_get);
CMD_HANDLER(cmd_set);
CMD_HANDLER(cmd_setex);
CMD_HANDLER(cmd_psetex);
CMD_HANDLER(cmd_setnx);
CMD_HANDLER(cmd_getdel);
CMD_HANDLER(cmd_getex);
CMD_HANDLER(cmd_mget);
CMD_HANDLER(cmd_mset);
CMD_HANDLER(cmd_msetnx);
CMD_HANDLER(cmd_getset);
CMD_HANDLER(cmd_incr);
CMD_HANDLER(cmd_decr);
CMD_HANDLER(cmd_incrby);
CMD_HANDLER(cmd_decrby);
CMD_HANDLER(cmd_incrbyfloat);
CMD_HANDLER(cmd_append);
CMD_HANDLER(cmd_strlen);
CMD_HANDLER(cmd_getrange);
CMD_HANDLER(cmd_setrange);
CMD_HANDLER(cmd_lcs);

CMD_HANDLER(cmd_del);
CMD_HANDLER(cmd_exists);
CMD_HANDLER(cmd_expire);
CMD_HANDLER(cmd_pexpire);
CMD_HANDLER(cmd_ttl);
CMD_HANDLER(cmd_pttl);
CMD_HANDLER(cmd_persist);
CMD_HANDLER(cmd_type);
CMD_HANDLER(cmd_scan);
CMD_HANDLER(cmd_keys);
CMD_HANDLER(cmd_dbsize);
CMD_HANDLER(cmd_flushall);
CMD_HANDLER(cmd_expireat);
CMD_HANDLER(cmd_pexpireat);
CMD_HANDLER(cmd_expiretime);
CMD_HANDLER(cmd_pexpiretime);
CMD_HANDLER(cmd_touch);
CMD_HANDLER(cmd_rename);
CMD_HANDLER(cmd_renamenx);
CMD_HANDLER(cmd_copy);
CMD_HANDLER(cmd_randomkey);
CMD_HANDLER(cmd_object);
CMD_HANDLER(cmd_memory);
CMD_HANDLER(cmd_dump);
CMD_HANDLER(cmd_restore);

CMD_HANDLER(cmd_flushprefix);
CMD_HANDLER(cmd_seed);
CMD_HANDLER(cmd_getl);
CMD_HANDLER(cmd_setl);
CMD_HANDLER(cmd_cohort_status);
CMD_HANDLER(cmd_cohort_members);

CMD_HANDLER(cmd_publish);
CMD_HANDLER(cmd_spublish);
CMD_HANDLER(cmd_subscribe);
CMD_HANDLER(cmd_psubscribe);
CMD_HANDLER(cmd_ssubscribe);
CMD_HANDLER(cmd_unsubscribe);
CMD_HANDLER(cmd_punsubscribe);
CMD_HANDLER(cmd_sunsubscribe);
CMD_HANDLER(cmd_pubsub);
CMD_HANDLER(cmd_reset);
CMD_HANDLER(cmd_watch);
CMD_HANDLER(cmd_unwatch);
CMD_HANDLER(cmd_leader);
CMD_HANDLER(cmd_leader_acquire);
CMD_HANDLER(cmd_leader_release);
CMD_HANDLER(cmd_jobs);
CMD_HANDLER(cmd_job_run);
CMD_HANDLER(cmd_job_history);

#endif
