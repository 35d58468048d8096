/* cmd: helpers shared by the command implementations (cmd_*.c).
 *
 * Owns: argument parsing with redis-server's rules and error texts, and the
 * hooks every flush goes through (flushmark for SETL, counters; the cluster
 * broadcast joins here).
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
/* SEED: the value goes to every member. */
void cmd_seeded(client_t *c, const char *key, size_t klen, const char *val, size_t vlen,
                int64_t expire_at);

/* 1 while cached values may be served; 0 (and a bypass counted) while the
 * coherence lease does not hold. Every command that tells a client anything
 * about the cache's content asks this first. */
int cmd_serving(client_t *c);
/* A read that serves a cached value (cache_lookup with flags): misses while
 * not serving (cmd_serving). */
cache_entry_t *cmd_lookup(client_t *c, const char *key, size_t klen, int flags);
/* cmd_lookup counting a hit or a miss. */
cache_entry_t *cmd_read(client_t *c, const char *key, size_t klen);

/* After a write: evict down to maxmemory. */
void cmd_after_write(client_t *c);

/* Handlers, by file. */
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

CMD_HANDLER(cmd_get);
CMD_HANDLER(cmd_set);
CMD_HANDLER(cmd_setex);
CMD_HANDLER(cmd_psetex);
CMD_HANDLER(cmd_setnx);
CMD_HANDLER(cmd_getdel);
CMD_HANDLER(cmd_getex);
CMD_HANDLER(cmd_mget);
CMD_HANDLER(cmd_mset);

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

CMD_HANDLER(cmd_flushprefix);
CMD_HANDLER(cmd_seed);
CMD_HANDLER(cmd_getl);
CMD_HANDLER(cmd_setl);
CMD_HANDLER(cmd_cohort_status);
CMD_HANDLER(cmd_cohort_members);

CMD_HANDLER(cmd_leader);
CMD_HANDLER(cmd_leader_acquire);
CMD_HANDLER(cmd_leader_release);
CMD_HANDLER(cmd_jobs);
CMD_HANDLER(cmd_job_run);
CMD_HANDLER(cmd_job_history);

#endif
