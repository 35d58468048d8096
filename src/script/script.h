/* script: cohort's EVAL/EVALSHA/SCRIPT engine, on an embedded Lua 5.1 with
 * redis-server 7.0's sandbox, conversions and error texts.
 *
 * Owns: one Lua state, the script cache (SHA1 -> body), the running script's
 * limits (busy threshold, memory) and the replies it produces.
 * Never: knows about the cache, the network or the cluster. Commands a script
 * calls go through the host's callbacks; the engine only sees their RESP
 * reply bytes. It never blocks: a long script calls the host's busy callback
 * so the host can serve other clients (-BUSY) and SCRIPT KILL meanwhile.
 *
 * Threading: one engine belongs to one thread (the loop thread). Calls are not
 * re-entrant, except script_kill(), script_abort() and the read-only queries,
 * which the host may call from inside its busy or call callbacks.
 *
 * Every reply appended to a buf_t is exactly one RESP value in the protocol
 * the caller asked for (2 or 3).
 *
 * Host integration:
 *  - Route EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT to script_command()
 *    with the caller's protocol; set whatever context call() needs (the
 *    calling client, its database) in ud before, and replicate / wait for the
 *    writes call() made after it returns.
 *  - flags(): from the command table: SCRIPT_CMD_UNKNOWN, BADARITY (Redis's
 *    arity rule, subcommands included), NOSCRIPT (EVAL*, SCRIPT, MULTI, EXEC,
 *    WATCH, SUBSCRIBE..., blocking commands), WRITE (write commands),
 *    MAY_REPLICATE (PUBLISH and the like).
 *  - call(): run the command as a client of protocol `resp` in the caller's
 *    database and append its reply; a refusal (OOM, WRONGTYPE...) is just an
 *    error reply.
 *  - busy(): while script_busy(), answer other clients: SCRIPT KILL goes to
 *    script_command() (it replies +OK, -NOTBUSY or -UNKILLABLE), SHUTDOWN
 *    NOSAVE as the host decides, everything else gets SCRIPT_BUSY_ERROR.
 *  - INFO: used_memory_lua = script_vm_memory(), used_memory_scripts_eval =
 *    script_memory(), number_of_cached_scripts = script_count(). */
#ifndef COHORT_SCRIPT_H
#define COHORT_SCRIPT_H

#include <stddef.h>

#include "buf.h"

/* Bits a host's flags callback returns about a command a script calls. */
enum script_cmd_flag {
    SCRIPT_CMD_WRITE = 1 << 0,         /* writes the dataset: refused in read-only scripts,
                                          and the script can no longer be killed */
    SCRIPT_CMD_NOSCRIPT = 1 << 1,      /* not allowed from scripts (EVAL, MULTI, ...) */
    SCRIPT_CMD_UNKNOWN = 1 << 2,       /* no such command */
    SCRIPT_CMD_BADARITY = 1 << 3,      /* wrong number of arguments for it */
    SCRIPT_CMD_MAY_REPLICATE = 1 << 4, /* refused in read-only scripts (PUBLISH...) */
};

/* Runs one command for the running script as a fake client speaking RESP
 * `resp` (2 or 3) and appends its reply bytes (exactly one reply, errors
 * included) to `reply`. Returns 0, or a negative value if it could not run
 * the command at all (the script then gets an error). */
typedef int (*script_call_fn)(void *ud, int argc, const char **argv, const size_t *argl, int resp,
                              buf_t *reply);
/* Returns the SCRIPT_CMD_* bits for a command before it runs. */
typedef int (*script_flags_fn)(void *ud, int argc, const char **argv, const size_t *argl);
/* Called about every 10 ms of script time once a script has run past the busy
 * threshold: the host answers other clients (-BUSY, SCRIPT KILL) here. */
typedef void (*script_busy_fn)(void *ud);

typedef struct script_host {
    void *ud;              /* passed back to every callback */
    script_call_fn call;   /* required */
    script_flags_fn flags; /* required */
    script_busy_fn busy;   /* may be NULL */
} script_host_t;

typedef struct script_limits {
    long long busy_ms;         /* lua-time-limit / busy-reply-threshold; 0: never busy */
    size_t max_memory;         /* Lua heap limit in bytes; 0: unlimited */
    size_t max_script_len;     /* longest script body accepted; 0: unlimited */
    const char *redis_version; /* redis.REDIS_VERSION; NULL: "7.0.15" */
} script_limits_t;

#define SCRIPT_DEFAULT_BUSY_MS        5000
#define SCRIPT_DEFAULT_MAX_MEMORY     ((size_t)256 << 20)
#define SCRIPT_DEFAULT_MAX_SCRIPT_LEN ((size_t)16 << 20)

/* The reply other clients get while a script is past the busy threshold. */
#define SCRIPT_BUSY_ERROR                                                                          \
    "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"

typedef struct script_engine script_engine_t;

/* Creates an engine; limits NULL means the defaults above. Returns NULL with a
 * message in err if the Lua state cannot be built. The engine copies host and
 * limits (not the version string's storage: it copies that too). */
script_engine_t *script_new(const script_host_t *host, const script_limits_t *limits, char *err,
                            size_t errlen);
void script_free(script_engine_t *e);
/* Changes the limits for the next scripts (CONFIG SET lua-time-limit). */
void script_set_limits(script_engine_t *e, const script_limits_t *limits);

/* Runs a whole scripting command: argv[0] is EVAL, EVALSHA, EVAL_RO,
 * EVALSHA_RO or SCRIPT (any case). Appends exactly one reply in protocol
 * `resp` to `reply` and returns 0; returns -1 and appends nothing when
 * argv[0] is none of those. Argument-count errors are replied as redis-server
 * does ("wrong number of arguments for 'eval' command"). */
int script_command(script_engine_t *e, int argc, const char **argv, const size_t *argl, int resp,
                   buf_t *reply);

/* EVAL / EVALSHA (sha: evalsha != 0, body is the 40-hex SHA1) with keys and
 * args already split; ro selects the _RO flavour. Appends one reply. */
void script_eval(script_engine_t *e, const char *body, size_t len, int evalsha, int ro, int nkeys,
                 const char **keys, const size_t *keyl, int nargs, const char **args,
                 const size_t *argl, int resp, buf_t *reply);

/* SCRIPT LOAD: compiles and caches body; writes the SHA1 (40 hex + NUL) into
 * sha and returns 0, or returns -1 and appends the error reply to reply. */
int script_load(script_engine_t *e, const char *body, size_t len, char sha[41], buf_t *reply);
/* SCRIPT EXISTS for one SHA1 (any case): 1 if cached, else 0. */
int script_exists(script_engine_t *e, const char *sha, size_t len);
/* SCRIPT FLUSH: forgets every script and starts a fresh Lua state. Refused
 * (returns -1) while a script runs. */
int script_flush(script_engine_t *e);
/* SCRIPT KILL: appends +OK (the running script will fail), -NOTBUSY or
 * -UNKILLABLE (the script already wrote). Callable from the busy callback. */
void script_kill(script_engine_t *e, buf_t *reply);

/* Stops the running script at its next instruction even if it wrote (SHUTDOWN
 * NOSAVE: the node is going away); it fails as a killed script does. Does
 * nothing when no script runs. Callable from the busy callback. */
void script_abort(script_engine_t *e);

/* 1 while a script runs, else 0. */
int script_running(const script_engine_t *e);
/* 1 once the running script is past the busy threshold (others get -BUSY). */
int script_busy(const script_engine_t *e);
/* Bytes held by the script cache (used_memory_scripts_eval). */
size_t script_memory(const script_engine_t *e);
/* Bytes of the Lua heap (used_memory_lua). */
size_t script_vm_memory(const script_engine_t *e);
/* Number of cached scripts (number_of_cached_scripts). */
size_t script_count(const script_engine_t *e);

#endif
