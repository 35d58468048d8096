/* cmd: helpers shared by the command implementations (cmd_*.c).
 *
 * Owns: argument parsing with redis-server's rules and error texts, the
 * hooks every flush goes through (flushmark for SETL, counters, the cluster
 * broadcast), and the one function every stored value goes through
 * (cmd_write_value), which sends it to the members as the key's keyspace
 * says (node/keyspace.h: replicate, invalidate or local).
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
#define ERR_WRONGTYPE "WRONGTYPE Operation against a key holding the wrong kind of value"

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
 * member whatever the key's keyspace; the client's reply waits for them. */
void cmd_seed_value(client_t *c, const char *key, size_t klen, const char *val, size_t vlen,
                    int64_t expire_at);
/* Suspended commands (cmd_wait.c). A command whose key has a write in
 * flight waits for it; a command that proposed writes of replicated keys
 * replies once they are committed, or runs again if one was refused. */
/* During a command: it proposed the write with flush number seq. */
void cmd_wait_add_proposal(client_t *c, uint64_t seq);
/* Before a command runs: 1 (and c suspended) when one of its keys (stored
 * form) has a write in flight. */
int cmd_wait_for_keys(client_t *c, int argc, const char **argv, const size_t *argl, int first,
                      int last, int step);
/* After a command ran: when it proposed writes, takes its reply (written
 * from out_before on) aside and suspends c until they are decided. */
void cmd_wait_after(client_t *c, size_t out_before);
/* A command runs again after a suspension: 1 when its writes committed (its
 * reply is back in c->out: the command is done), else 0 (run it). */
int cmd_wait_resumed(client_t *c);
/* Resumes the suspended commands whose wait is over (end of each turn). */
void cmd_wait_recheck(node_t *n);
/* c is closing: forgets its wait. */
void cmd_wait_client_closed(client_t *c);
/* WAIT: the members in contact (alive or suspect) that acknowledged c's
 * newest write or flush sent to them (all of them in contact when c sent
 * none); 0 when alone. */
size_t cmd_wait_acked(client_t *c);
/* WAIT: suspends c until want members acknowledged (cmd_wait_acked) or
 * timeout_ms (> 0; 0: no limit) passed; the count then is its reply. */
void cmd_wait_replicas(client_t *c, long long want, long long timeout_ms);
/* FLUSHPREFIX and DBSIZE: suspends c until the cache swept prefix flush id;
 * the reply is then that flush's count, or (dbsize) the keys of c's
 * database. */
void cmd_wait_sweep(client_t *c, uint64_t id, int dbsize);
/* The write mode of key (enum keyspace_mode); KS_LOCAL when alone. */
int cmd_write_mode(client_t *c, const char *key, size_t klen);
/* After a command changed e's expire time (EXPIRE, PERSIST, GETEX): the
 * members follow as the key's mode says (replicate: the value with its new
 * time to live; invalidate: they drop theirs). */
void cmd_wrote_ttl(client_t *c, cache_entry_t *e);
/* Sets e's expire time to expire_at (0: none) and sends the change as
 * cmd_wrote_ttl does; a replicated key's change is a proposal that keeps
 * the value with its old time for an abort (node_propose_ttl). */
void cmd_set_ttl(client_t *c, cache_entry_t *e, int64_t expire_at);

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

/* Every command that stores a value goes through here: the key is replaced
 * here (its expire time is expire_at, 0: none; enc is an enum cache_enc),
 * sent to the members as its mode says (replicate: applied everywhere before
 * the reply; invalidate: other values dropped before the reply; local: a
 * fill of this node), then eviction down to maxmemory. Copies key and value
 * (which may not point into the cache if an eviction could free it first:
 * it is copied before any eviction). */
void cmd_write_value(client_t *c, const char *key, size_t klen, const char *val, size_t vlen,
                     int64_t expire_at, int enc);
/* cmd_write_value(.., CACHE_ENC_AUTO) of e, key's live string entry read by
 * this command (no change to the cache since): its bytes are replaced in
 * place when they fit (one lookup of the key less: INCR), else as
 * cmd_write_value. */
void cmd_rewrite_value(client_t *c, cache_entry_t *e, const char *key, size_t klen,
                       const char *val, size_t vlen, int64_t expire_at);
/* A write that does not depend on what it overwrites (SET without NX, XX,
 * GET or KEEPTTL; MSET; SETEX): a replicated key's write then needs no
 * proposal (nothing it read can be stale), goes out as a SEED two version
 * steps above anything this node has seen (so it wins over a concurrent
 * read-modify-write of the value it replaces: cluster/WRITES.md), and its
 * reply is held like a flush's, so a pipeline of them costs one round of
 * acknowledgements, not one per write. */
void cmd_write_blind(client_t *c, const char *key, size_t klen, const char *val, size_t vlen,
                     int64_t expire_at);
/* cmd_write_value for any type (enum cache_type; enc applies to strings).
 * Hashes and sets (cmd_hash.c, cmd_set.c) store coll.h's bytes through
 * here: the whole value is rewritten on every write, O(size). */
void cmd_write_typed(client_t *c, const char *key, size_t klen, const char *val, size_t vlen,
                     int64_t expire_at, int type, int enc);

/* Shared by INCRBYFLOAT and HINCRBYFLOAT (cmd_counters.c): redis-server's
 * string2ld (0 or -1) and ld2string(LD_STR_HUMAN) (the length written). */
#define CMD_LD_CHARS (5 * 1024)
int cmd_parse_ld(const char *s, size_t len, long double *out);
size_t cmd_format_ld(char *buf, size_t len, long double v);
/* value + incr as INCRBYFLOAT and HINCRBYFLOAT write it: returns the text
 * (xmalloc'd, the caller frees it) with its length in *n, or NULL after
 * replying the NaN-or-Infinity error. */
char *cmd_ld_add_or_reply(client_t *c, long double value, long double incr, size_t *n);

/* SCAN, HSCAN, SSCAN's options from argv[first]: COUNT (checked, stored in
 * *count), MATCH (*pat, *plen; NULL for '*'), and TYPE when type is not
 * NULL. Returns 0, or -1 after the error reply. */
typedef struct scan_opts {
    long long count;
    const char *pat;
    size_t plen;
    const char *type; /* NULL: none given */
    size_t tlen;
} scan_opts_t;
int cmd_scan_opts(client_t *c, int argc, const char **argv, const size_t *argl, int first,
                  int allow_type, scan_opts_t *o);

/* Hashes and sets (cmd_coll.c). A collection is loaded from its entry into
 * a coll_t (views into the entry's bytes), edited, and stored back whole
 * through cmd_write_typed (or removed, a flush, when it is empty). */
typedef struct coll coll_t;
/* The entry of key for a read (write: for a read-modify-write). Returns 0
 * with *e (NULL when absent), or -1 after WRONGTYPE. */
int cmd_coll_lookup(client_t *c, const char *key, size_t klen, int type, int write,
                    cache_entry_t **e);
/* Decodes e's value into out (an empty collection of type when e is NULL).
 * out points into e until the next change to the cache. */
void cmd_coll_load(const cache_entry_t *e, int type, coll_t *out);
/* Stores coll under key with expire time at (or removes key when coll is
 * empty). Returns 0, or -1 after an error reply when the value would be
 * larger than max_bulk_len (nothing is changed then). */
int cmd_coll_store(client_t *c, const char *key, size_t klen, const coll_t *coll, int64_t at);
/* The write of one field (f = v) or one member (f) into e, an existing hash
 * or a set that is not an intset, without decoding it (coll_put_bytes):
 * returns 0 once stored (*added: 1 when f was absent), 1 when it does not
 * apply (the caller takes the general path; nothing changed), -1 after an
 * error reply (the value would be larger than max_bulk_len). */
int cmd_coll_put_one(client_t *c, const char *key, size_t klen, const cache_entry_t *e,
                     const char *f, size_t flen, const char *v, size_t vlen, int *added);
/* HSCAN / SSCAN: cursor, then key, then options, as redis-server; replies
 * every element in one step (cursor 0). */
void cmd_coll_scan(client_t *c, int argc, const char **argv, const size_t *argl, int type);
/* redis-server 7.0's encoding limits, as CONFIG SET hash-max-listpack-entries,
 * hash-max-listpack-value and set-max-intset-entries (and their ziplist
 * aliases) change them on this node (process-wide; not sent to the members:
 * a collection's encoding travels with its value). Defaults are redis-server's
 * compiled-in ones (its sample redis.conf says 128 fields; without a config
 * file it is 512): a hash is a "listpack" up to 512 fields of at most 64
 * bytes (fields and values), a set an "intset" up to 512 integers; past them
 * "hashtable" for good. */
typedef struct cmd_coll_limits {
    size_t hash_max_listpack_entries;
    size_t hash_max_listpack_value;
    size_t set_max_intset_entries;
} cmd_coll_limits_t;
/* The limits in force (owned by cmd_coll.c; read-only to callers). */
const cmd_coll_limits_t *cmd_coll_limits(void);
/* CONFIG SET: new limits; collections change encoding at their next write,
 * as in redis-server. */
void cmd_coll_set_limits(const cmd_coll_limits_t *l);
#define CMD_HASH_MAX_LISTPACK_ENTRIES (cmd_coll_limits()->hash_max_listpack_entries)
#define CMD_HASH_MAX_LISTPACK_VALUE (cmd_coll_limits()->hash_max_listpack_value)
#define CMD_SET_MAX_INTSET_ENTRIES (cmd_coll_limits()->set_max_intset_entries)
/* The encoding a collection gets when it is loaded whole (RESTORE), as
 * redis-server re-encodes what it loads. */
void cmd_coll_reencode(coll_t *coll);
/* OBJECT ENCODING's name for a hash or a set entry. */
const char *cmd_coll_encoding(const cache_entry_t *e);

/* HRANDFIELD / SRANDMEMBER with a count (l != 0 as parsed; h decoded, not
 * empty): distinct entries for l > 0, repeats for l < 0, at most
 * CMD_RANDOM_REPEAT_MAX of them (redis-server has no such bound: it stops
 * at the client's output limit; cohort refuses with an error instead). */
#define CMD_RANDOM_REPEAT_MAX (1 << 20)
void cmd_reply_random(client_t *c, const coll_t *h, long long l, int withvalues);
/* A random index below n. */
size_t cmd_random_below(size_t n);
/* redis-server's getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX). */
int cmd_count_or_reply(client_t *c, const char *s, size_t len, long long *out);

/* WRONGTYPE: 0 when e is NULL or of the type, else -1 after the error. */
int cmd_check_type(client_t *c, const cache_entry_t *e, int type);
void cmd_reply_wrongtype(client_t *c);
/* TYPE's name of the entry's type: "string", "hash" or "set". */
const char *cmd_type_name(const cache_entry_t *e);

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
    CMDC_READONLY_CMD = 1 << 5, /* the running command is read-only: its reads are tracked */
    CMDC_ATOMIC = 1 << 6, /* inside EXEC or a script: its commands cannot wait (cmd_wait.c) */
    CMDC_TOO_BIG = 1 << 7 /* the running command's write was refused: its key or value is
                             larger than FRAME_VALUE_MAX (cmd_util.c; commands.c replies) */
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

/* Databases (cmd_db.c): a key of database n is stored as the byte n then
 * the client's key; dispatch adds the byte to key arguments. */
int cmd_db_count(const client_t *c); /* [cache] databases */
/* Parses a database index as redis-server (an int, then "DB index is out of
 * range"). Returns 0, or -1 after the error reply. */
int cmd_db_arg(client_t *c, const char *s, size_t len, int *db);
/* FLUSHALL / FLUSHDB's [ASYNC|SYNC]. Returns 0, or -1 after the reply. */
int cmd_db_parse_flush_mode(client_t *c, int argc, const char **argv, const size_t *argl);

/* Transactions (cmd_multi.c). */
int multi_active(const client_t *c); /* between MULTI and EXEC / DISCARD */
long multi_count(const client_t *c);  /* commands queued; -1 outside MULTI */
/* Queues a checked command and replies +QUEUED (or refuses it when the
 * queue would pass query_buffer_limit). Copies the arguments. */
void multi_queue(client_t *c, int argc, const char **argv, const size_t *argl);
/* A command was refused inside MULTI (its error reply written after
 * out_before): EXEC will abort; an EXEC refused aborts at once. */
void multi_refused(client_t *c, int is_exec, size_t out_before);
/* RESET and the client's end: the transaction dropped, keys unwatched. */
void multi_reset(client_t *c);
void multi_client_closed(client_t *c);

/* Scripts (cmd_script.c). 1 while a script runs past lua-time-limit. */
int cmd_script_busy(const node_t *n);
/* While a script is busy, refuses a command of another client with -BUSY
 * (appended to c->out) and returns 1; returns 0 for the commands redis-server
 * 7.0 allows then (SCRIPT KILL, SHUTDOWN, AUTH, HELLO, QUIT, RESET, MULTI,
 * DISCARD, WATCH, UNWATCH), for the script's own commands, and when no
 * script is busy. */
int cmd_script_refuse_busy(client_t *c, const command_t *cmd, int argc, const char **argv,
                           const size_t *argl);
/* Stops the running script, even one that wrote (SHUTDOWN NOSAVE). */
void cmd_script_abort(node_t *n);
/* lua-time-limit / busy-reply-threshold in milliseconds (0: never busy). */
void cmd_script_set_busy_ms(node_t *n, long long ms);
long long cmd_script_busy_ms(void);

/* Handlers, by file. */
CMD_HANDLER(cmd_multi);
CMD_HANDLER(cmd_exec);
CMD_HANDLER(cmd_discard);
CMD_HANDLER(cmd_swapdb);
CMD_HANDLER(cmd_move);
CMD_HANDLER(cmd_flushdb);
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
CMD_HANDLER(cmd_shutdown);

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

CMD_HANDLER(cmd_hset);
CMD_HANDLER(cmd_hsetnx);
CMD_HANDLER(cmd_hmset);
CMD_HANDLER(cmd_hget);
CMD_HANDLER(cmd_hmget);
CMD_HANDLER(cmd_hdel);
CMD_HANDLER(cmd_hlen);
CMD_HANDLER(cmd_hstrlen);
CMD_HANDLER(cmd_hexists);
CMD_HANDLER(cmd_hkeys);
CMD_HANDLER(cmd_hvals);
CMD_HANDLER(cmd_hgetall);
CMD_HANDLER(cmd_hincrby);
CMD_HANDLER(cmd_hincrbyfloat);
CMD_HANDLER(cmd_hrandfield);
CMD_HANDLER(cmd_hscan);

CMD_HANDLER(cmd_sadd);
CMD_HANDLER(cmd_srem);
CMD_HANDLER(cmd_sismember);
CMD_HANDLER(cmd_smismember);
CMD_HANDLER(cmd_smembers);
CMD_HANDLER(cmd_scard);
CMD_HANDLER(cmd_spop);
CMD_HANDLER(cmd_srandmember);
CMD_HANDLER(cmd_sinter);
CMD_HANDLER(cmd_sintercard);
CMD_HANDLER(cmd_sunion);
CMD_HANDLER(cmd_sdiff);
CMD_HANDLER(cmd_sinterstore);
CMD_HANDLER(cmd_sunionstore);
CMD_HANDLER(cmd_sdiffstore);
CMD_HANDLER(cmd_smove);
CMD_HANDLER(cmd_sscan);

CMD_HANDLER(cmd_flushprefix);
CMD_HANDLER(cmd_seed);
CMD_HANDLER(cmd_getl);
CMD_HANDLER(cmd_setl);
CMD_HANDLER(cmd_cohort_status);
CMD_HANDLER(cmd_cohort_members);
CMD_HANDLER(cmd_cohort_keyspace);

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
CMD_HANDLER(cmd_presence_join);
CMD_HANDLER(cmd_presence_leave);
CMD_HANDLER(cmd_presence_list);
CMD_HANDLER(cmd_presence_count);

#endif
