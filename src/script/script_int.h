/* script_int: what script.c (engine, cache, commands) and script_lua.c (the
 * Lua state, sandbox and conversions) share. Private to src/script/. */
#ifndef COHORT_SCRIPT_INT_H
#define COHORT_SCRIPT_INT_H

#include <lua.h>
#include <stdint.h>

#include "buf.h"
#include "script.h"

/* Script flags from a "#!lua flags=..." shebang, as redis-server 7.0. */
enum {
    SFLAG_NO_WRITES = 1 << 0,
    SFLAG_ALLOW_OOM = 1 << 1,
    SFLAG_ALLOW_STALE = 1 << 2,
    SFLAG_NO_CLUSTER = 1 << 3,
    SFLAG_EVAL_COMPAT = 1 << 4, /* no shebang: EVAL's backwards-compatible mode */
    SFLAG_ALLOW_CROSS_SLOT = 1 << 5,
};

/* Deepest RESP reply from the host that is converted for a script. */
#define SLUA_REPLY_MAX_DEPTH 128

typedef struct sentry {
    struct sentry *next; /* hash chain */
    char sha[41];        /* lowercase hex SHA1 of body, NUL-terminated */
    char *body;          /* owned copy of the script */
    size_t len;
    size_t shebang_len; /* bytes of "#!lua ..." before the first newline */
    unsigned flags;     /* SFLAG_* */
    int compiled;       /* its function is in the current Lua state */
} sentry_t;

struct script_engine {
    lua_State *L;
    script_host_t host;
    script_limits_t lim;
    char version[32]; /* redis.REDIS_VERSION */
    /* Lua heap accounting (the allocator's ud is the engine) */
    size_t heap;   /* bytes the Lua state holds */
    int enforce;   /* refuse growth past lim.max_memory */
    int hit_limit; /* a growth was refused since the last run began */
    /* script cache */
    sentry_t **slots;
    size_t nslots, nscripts;
    size_t cache_mem; /* bytes of entries and bodies */
    /* the running script */
    int running, dirty, killed, timedout, read_only;
    int script_resp; /* protocol the fake client speaks (redis.setresp) */
    int in_call;     /* inside host.call */
    const char *sha; /* of the running script */
    uint64_t start_ns, last_busy_ns;
    unsigned long runs; /* for the periodic GC step */
    int gc_stopped;     /* the script called collectgarbage("stop") */
    /* scratch for redis.call, owned here so a Lua error cannot leak it */
    buf_t reply;
    buf_t nums;
    const char **argv;
    size_t *argl;
    size_t *numoff;
    size_t argcap;
    uint64_t rand48; /* math.random state (redis-server's lrand48) */
};

/* script_lua.c */
int slua_open(script_engine_t *e, char *err, size_t errlen);
void slua_close(script_engine_t *e);
/* Runs the compiled function of s (in the registry) with KEYS and ARGV and
 * appends its reply, in protocol resp, to out. */
void slua_run(script_engine_t *e, sentry_t *s, int nkeys, const char **keys, const size_t *keyl,
              int nargs, const char **args, const size_t *argl, int resp, buf_t *out);
/* Compiles s into the registry; on failure appends the error reply and
 * returns -1. */
int slua_compile(script_engine_t *e, sentry_t *s, buf_t *out);
uint64_t slua_now_ns(void);
/* SHA1 of p as 40 lowercase hex digits plus NUL. */
void slua_sha1hex(char out[41], const void *p, size_t n);

/* script_conv.c */
struct sreply_cb;
/* Appends "-<text>\r\n" the way redis-server's addReplyErrorFormat does:
 * "ERR " prepended unless text starts with '-', CR/LF trimmed at the ends
 * and turned into spaces inside. */
void sconv_add_error(buf_t *b, const char *text, size_t n);
void sconv_add_errorf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Pushes redis-server's error table {err = "CODE message"} for err, which is
 * "-CODE message" or a bare message (code ERR). May raise (memory). */
void sconv_push_error(lua_State *L, const char *err);
/* Callbacks for sreply_parse that push a command's reply as one Lua value
 * (ctx is the lua_State); call only on bytes sreply_check accepted. */
extern const struct sreply_cb sconv_to_lua;
/* Converts the value on top of the stack into RESP (protocol resp) in b and
 * pops it; redis-server's luaReplyToRedisReply. May raise (memory). */
void sconv_to_resp(script_engine_t *e, lua_State *L, buf_t *b, int resp);

#endif
