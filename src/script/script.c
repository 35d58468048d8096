/* script: cohort's scripting commands (EVAL, EVALSHA, EVAL_RO, EVALSHA_RO,
 * SCRIPT LOAD|EXISTS|FLUSH|KILL|HELP) and the script cache, with
 * redis-server 7.0's replies and error texts.
 *
 * Owns: the engine object, the cache (SHA1 -> body, flags) and the
 * bookkeeping of the running script (dirty, killed, busy).
 * Never: runs Lua itself (script_lua.c does), knows what a command does (the
 * host's callbacks say), or keeps a script's state across runs.
 *
 * Invariants (tests/unit/test_script.c):
 *  1. The cache survives a Lua state reset: bodies stay here and are
 *     recompiled on their next run (memory_limit).
 *  2. A killed script fails with redis-server's text; once it wrote, SCRIPT
 *     KILL answers -UNKILLABLE and the script runs on (kill_*).
 *  3. Every call appends exactly one reply (redis_recorded_replies). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "mem.h"
#include "script_int.h"

#define SHEBANG_MAX_PARTS 32

/* ---- cache ------------------------------------------------------------ */

static size_t slot_of(const script_engine_t *e, const char *sha)
{
    uint64_t h = 0;
    for (int i = 0; i < 16; i++) {
        char c = sha[i];
        h = h * 16 + (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return (size_t)(h & (e->nslots - 1));
}

static size_t entry_mem(const sentry_t *s)
{
    return mem_usable(s) + mem_usable(s->body);
}

static sentry_t *cache_find(const script_engine_t *e, const char *sha)
{
    for (sentry_t *s = e->slots[slot_of(e, sha)]; s; s = s->next)
        if (memcmp(s->sha, sha, 40) == 0)
            return s;
    return NULL;
}

static void cache_grow(script_engine_t *e)
{
    size_t old = e->nslots;
    sentry_t **slots = e->slots;
    e->nslots = old * 2;
    e->slots = xcalloc(e->nslots, sizeof(*e->slots));
    for (size_t i = 0; i < old; i++) {
        while (slots[i]) {
            sentry_t *s = slots[i];
            slots[i] = s->next;
            size_t k = slot_of(e, s->sha);
            s->next = e->slots[k];
            e->slots[k] = s;
        }
    }
    free(slots);
}

static void cache_add(script_engine_t *e, sentry_t *s)
{
    if (e->nscripts >= e->nslots)
        cache_grow(e);
    size_t k = slot_of(e, s->sha);
    s->next = e->slots[k];
    e->slots[k] = s;
    e->nscripts++;
    e->cache_mem += entry_mem(s);
}

static void cache_clear(script_engine_t *e)
{
    for (size_t i = 0; i < e->nslots; i++) {
        while (e->slots[i]) {
            sentry_t *s = e->slots[i];
            e->slots[i] = s->next;
            free(s->body);
            free(s);
        }
    }
    e->nscripts = 0;
    e->cache_mem = 0;
}

static void cache_uncompile(script_engine_t *e)
{
    for (size_t i = 0; i < e->nslots; i++)
        for (sentry_t *s = e->slots[i]; s; s = s->next)
            s->compiled = 0;
}

/* Lowercases a 40-character SHA1 into out; returns -1 if sha is not 40
 * characters long. */
static int norm_sha(char out[41], const char *sha, size_t len)
{
    if (len != 40)
        return -1;
    for (int i = 0; i < 40; i++)
        out[i] = (char)tolower((unsigned char)sha[i]);
    out[40] = '\0';
    return 0;
}

/* ---- shebang ------------------------------------------------------------ */

static int flag_bit(const char *f, size_t n)
{
    static const struct {
        const char *name;
        int bit;
    } flags[] = {{"no-writes", SFLAG_NO_WRITES},
                 {"allow-oom", SFLAG_ALLOW_OOM},
                 {"allow-stale", SFLAG_ALLOW_STALE},
                 {"no-cluster", SFLAG_NO_CLUSTER},
                 {"allow-cross-slot-keys", SFLAG_ALLOW_CROSS_SLOT}};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (strlen(flags[i].name) == n && memcmp(flags[i].name, f, n) == 0)
            return flags[i].bit;
    return 0;
}

/* Parses "flags=a,b" into *flags; returns 0, or -1 with the error reply. */
static int shebang_flags(const char *v, size_t n, unsigned *flags, buf_t *out)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && v[j] != ',')
            j++;
        int bit = flag_bit(v + i, j - i);
        if (!bit) {
            sconv_add_errorf(out, "Unexpected flag in script shebang: %.*s", (int)(j - i), v + i);
            return -1;
        }
        *flags |= (unsigned)bit;
        i = j + 1;
    }
    return 0;
}

/* redis-server's evalExtractShebangFlags. Returns 0 and sets *flags and
 * *shebang_len, or -1 with the error reply appended to out. */
static int parse_shebang(const char *body, size_t len, unsigned *flags, size_t *shebang_len,
                         buf_t *out)
{
    *flags = SFLAG_EVAL_COMPAT;
    *shebang_len = 0;
    if (len < 2 || body[0] != '#' || body[1] != '!')
        return 0;
    const char *nl = memchr(body, '\n', len);
    if (!nl) {
        sconv_add_error(out, "Invalid script shebang", 22);
        return -1;
    }
    *shebang_len = (size_t)(nl - body);
    *flags = 0;
    int part = 0;
    for (const char *p = body; p < nl;) {
        while (p < nl && isspace((unsigned char)*p))
            p++;
        const char *q = p;
        while (q < nl && !isspace((unsigned char)*q))
            q++;
        if (q == p)
            break;
        size_t n = (size_t)(q - p);
        if (part++ == 0) {
            if (n != 5 || memcmp(p, "#!lua", 5) != 0) {
                sconv_add_errorf(out, "Unexpected engine in script shebang: %.*s", (int)n, p);
                return -1;
            }
        } else if (n >= 6 && memcmp(p, "flags=", 6) == 0) {
            if (shebang_flags(p + 6, n - 6, flags, out) < 0)
                return -1;
        } else {
            sconv_add_errorf(out, "Unknown lua shebang option: %.*s", (int)n, p);
            return -1;
        }
        p = q;
    }
    return 0;
}

/* ---- engine ------------------------------------------------------------- */

static void apply_limits(script_engine_t *e, const script_limits_t *lim)
{
    if (lim) {
        e->lim = *lim;
    } else {
        e->lim.busy_ms = SCRIPT_DEFAULT_BUSY_MS;
        e->lim.max_memory = SCRIPT_DEFAULT_MAX_MEMORY;
        e->lim.max_script_len = SCRIPT_DEFAULT_MAX_SCRIPT_LEN;
        e->lim.redis_version = NULL;
    }
    snprintf(e->version, sizeof(e->version), "%s",
             e->lim.redis_version ? e->lim.redis_version : "7.0.15");
    e->lim.redis_version = NULL;
}

script_engine_t *script_new(const script_host_t *host, const script_limits_t *limits, char *err,
                            size_t errlen)
{
    script_engine_t *e = xcalloc(1, sizeof(*e));
    e->host = *host;
    apply_limits(e, limits);
    e->nslots = 64;
    e->slots = xcalloc(e->nslots, sizeof(*e->slots));
    e->rand48 = 0x1234ABCD330EULL; /* lrand48's initial state, as redis-server */
    buf_init(&e->reply);
    buf_init(&e->nums);
    if (slua_open(e, err, errlen) < 0) {
        script_free(e);
        return NULL;
    }
    return e;
}

void script_free(script_engine_t *e)
{
    if (!e)
        return;
    slua_close(e);
    cache_clear(e);
    free(e->slots);
    buf_free(&e->reply);
    buf_free(&e->nums);
    free(e->argv);
    free(e->argl);
    free(e->numoff);
    free(e);
}

void script_set_limits(script_engine_t *e, const script_limits_t *limits)
{
    apply_limits(e, limits);
}

/* Replaces the Lua state by a fresh one; cached scripts are recompiled on
 * their next run. Returns 0 or -1. */
static int reset_state(script_engine_t *e)
{
    char err[128];
    slua_close(e);
    cache_uncompile(e);
    if (slua_open(e, err, sizeof(err)) < 0) {
        log_error("script", "%s", err);
        return -1;
    }
    return 0;
}

/* Compiles s; if that fails because the Lua heap is at its limit (compiled
 * scripts fill it), starts a fresh state and tries once more. Returns 0, or
 * -1 with the error reply appended to out. */
static int compile(script_engine_t *e, sentry_t *s, buf_t *out)
{
    buf_t first;
    buf_init(&first);
    e->hit_limit = 0;
    int rc = slua_compile(e, s, &first);
    if (rc < 0 && e->hit_limit && reset_state(e) == 0) {
        log_warn("script", "Lua heap full while compiling: started a fresh Lua state; cached "
                           "scripts are recompiled on their next run");
        buf_clear(&first);
        rc = slua_compile(e, s, &first);
    }
    if (rc < 0)
        buf_append(out, buf_head(&first), buf_len(&first));
    buf_free(&first);
    return rc;
}

/* Finds or creates the cache entry for body. Returns it, or NULL with the
 * error reply appended to out. */
static sentry_t *create_entry(script_engine_t *e, const char *body, size_t len, buf_t *out)
{
    char sha[41];
    slua_sha1hex(sha, body, len);
    sentry_t *s = cache_find(e, sha);
    if (s)
        return s;
    if (e->lim.max_script_len && len > e->lim.max_script_len) {
        sconv_add_errorf(out,
                         "Error compiling script (new function): the script is %zu bytes, "
                         "more than the limit of %zu",
                         len, e->lim.max_script_len);
        return NULL;
    }
    unsigned flags;
    size_t shebang_len;
    if (parse_shebang(body, len, &flags, &shebang_len, out) < 0)
        return NULL;
    if (!e->L && reset_state(e) < 0) {
        sconv_add_error(out, "Error compiling script (new function): no Lua state", 52);
        return NULL;
    }
    s = xcalloc(1, sizeof(*s));
    memcpy(s->sha, sha, 41);
    s->body = xmemdup(body, len);
    s->len = len;
    s->shebang_len = shebang_len;
    s->flags = flags;
    if (compile(e, s, out) < 0) {
        free(s->body);
        free(s);
        return NULL;
    }
    cache_add(e, s);
    return s;
}

/* After a run: if the heap is near the limit, collect; if it stays there
 * (compiled scripts fill it), start a fresh state so the next script has
 * room. */
static void after_run(script_engine_t *e)
{
    size_t high = e->lim.max_memory / 4 * 3;
    if (!e->lim.max_memory || e->heap <= high)
        return;
    lua_gc(e->L, LUA_GCCOLLECT, 0);
    if (e->heap <= high)
        return;
    log_warn("script",
             "Lua heap at %zu bytes after a collection (limit %zu): starting a fresh "
             "Lua state; cached scripts are recompiled on their next run",
             e->heap, e->lim.max_memory);
    reset_state(e);
}

void script_eval(script_engine_t *e, const char *body, size_t len, int evalsha, int ro, int nkeys,
                 const char **keys, const size_t *keyl, int nargs, const char **args,
                 const size_t *argl, int resp, buf_t *reply)
{
    sentry_t *s;
    if (e->running) {
        buf_append_str(reply, SCRIPT_BUSY_ERROR);
        return;
    }
    if (evalsha) {
        char sha[41];
        s = norm_sha(sha, body, len) < 0 ? NULL : cache_find(e, sha);
        if (!s) {
            buf_append_str(reply, "-NOSCRIPT No matching script. Please use EVAL.\r\n");
            return;
        }
    } else {
        s = create_entry(e, body, len, reply);
        if (!s)
            return;
    }
    if (!e->L && reset_state(e) < 0) {
        sconv_add_error(reply, "no Lua state", 12);
        return;
    }
    if (!s->compiled && compile(e, s, reply) < 0)
        return;
    if (ro && !(s->flags & SFLAG_EVAL_COMPAT) && !(s->flags & SFLAG_NO_WRITES)) {
        sconv_add_errorf(reply, "Can not execute a script with write flag using *_ro command.");
        return;
    }
    e->running = 1;
    e->dirty = e->killed = e->timedout = 0;
    e->read_only = ro || (!(s->flags & SFLAG_EVAL_COMPAT) && (s->flags & SFLAG_NO_WRITES));
    e->script_resp = 2;
    e->sha = s->sha;
    e->start_ns = slua_now_ns();
    e->last_busy_ns = 0;
    slua_run(e, s, nkeys, keys, keyl, nargs, args, argl, resp, reply);
    e->running = 0;
    e->sha = NULL;
    buf_clear(&e->reply);
    buf_trim(&e->reply, 64 * 1024);
    buf_clear(&e->nums);
    buf_trim(&e->nums, 64 * 1024);
    after_run(e);
}

int script_load(script_engine_t *e, const char *body, size_t len, char sha[41], buf_t *reply)
{
    if (e->running) {
        buf_append_str(reply, SCRIPT_BUSY_ERROR);
        return -1;
    }
    sentry_t *s = create_entry(e, body, len, reply);
    if (!s)
        return -1;
    memcpy(sha, s->sha, 41);
    return 0;
}

int script_exists(script_engine_t *e, const char *sha, size_t len)
{
    char norm[41];
    return norm_sha(norm, sha, len) == 0 && cache_find(e, norm) != NULL;
}

int script_flush(script_engine_t *e)
{
    if (e->running)
        return -1;
    cache_clear(e);
    return reset_state(e);
}

void script_kill(script_engine_t *e, buf_t *reply)
{
    if (!e->running) {
        buf_append_str(reply, "-NOTBUSY No scripts in execution right now.\r\n");
    } else if (e->dirty) {
        buf_append_str(reply, "-UNKILLABLE Sorry the script already executed write commands "
                              "against the dataset. You can either wait the script termination "
                              "or kill the server in a hard way using the SHUTDOWN NOSAVE "
                              "command.\r\n");
    } else {
        e->killed = 1;
        buf_append_str(reply, "+OK\r\n");
    }
}

void script_abort(script_engine_t *e)
{
    if (e->running)
        e->killed = 1;
}

int script_running(const script_engine_t *e)
{
    return e->running;
}

int script_busy(const script_engine_t *e)
{
    return e->running && e->timedout;
}

size_t script_memory(const script_engine_t *e)
{
    return e->cache_mem + e->nslots * sizeof(*e->slots);
}

size_t script_vm_memory(const script_engine_t *e)
{
    return e->heap;
}

size_t script_count(const script_engine_t *e)
{
    return e->nscripts;
}

/* ---- commands ------------------------------------------------------------ */

static int is(const char *a, size_t al, const char *b)
{
    return al == strlen(b) && strncasecmp(a, b, al) == 0;
}

/* string2ll: a strict signed decimal. Returns 0 or -1. */
static int parse_ll(const char *s, size_t n, long long *out)
{
    char tmp[24];
    char *end;
    if (n == 0 || n >= sizeof(tmp) || (n > 1 && s[0] == '0') || s[0] == '+' ||
        isspace((unsigned char)s[0]))
        return -1;
    if (n > 1 && s[0] == '-' && s[1] == '0')
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno || end != tmp + n)
        return -1;
    *out = v;
    return 0;
}

static void arity_error(buf_t *reply, const char *name)
{
    sconv_add_errorf(reply, "wrong number of arguments for '%s' command", name);
}

static void eval_command(script_engine_t *e, int argc, const char **argv, const size_t *argl,
                         int evalsha, int ro, const char *name, int resp, buf_t *reply)
{
    long long nkeys;
    if (argc < 3) {
        arity_error(reply, name);
        return;
    }
    if (evalsha && argl[1] != 40) {
        buf_append_str(reply, "-NOSCRIPT No matching script. Please use EVAL.\r\n");
        return;
    }
    if (parse_ll(argv[2], argl[2], &nkeys) < 0) {
        sconv_add_error(reply, "value is not an integer or out of range", 39);
        return;
    }
    if (nkeys > argc - 3) {
        sconv_add_errorf(reply, "Number of keys can't be greater than number of args");
        return;
    }
    if (nkeys < 0) {
        sconv_add_errorf(reply, "Number of keys can't be negative");
        return;
    }
    int nk = (int)nkeys;
    script_eval(e, argv[1], argl[1], evalsha, ro, nk, argv + 3, argl + 3, argc - 3 - nk,
                argv + 3 + nk, argl + 3 + nk, resp, reply);
}

static const char *const script_help[] = {
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
};

static void script_flush_cmd(script_engine_t *e, int argc, const char **argv, const size_t *argl,
                             buf_t *reply)
{
    if (argc > 3 ||
        (argc == 3 && !is(argv[2], argl[2], "sync") && !is(argv[2], argl[2], "async"))) {
        sconv_add_errorf(reply, "SCRIPT FLUSH only support SYNC|ASYNC option");
        return;
    }
    if (e->running)
        buf_append_str(reply, SCRIPT_BUSY_ERROR);
    else if (script_flush(e) < 0)
        sconv_add_errorf(reply, "SCRIPT FLUSH failed: cannot create a Lua state");
    else
        buf_append_str(reply, "+OK\r\n");
}

/* Returns 0 if the subcommand is known and its arity right; else appends
 * redis-server's error. */
static int subcommand_check(int argc, const char **argv, const size_t *argl, buf_t *reply)
{
    static const struct {
        const char *name;
        int arity; /* as in redis-server's command table: < 0 means at least */
    } subs[] = {{"load", 3}, {"exists", -3}, {"flush", -2}, {"kill", 2}, {"help", 2}, {"debug", 3}};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (!is(argv[1], argl[1], subs[i].name))
            continue;
        int a = subs[i].arity;
        if ((a > 0 && argc != a) || (a < 0 && argc < -a)) {
            sconv_add_errorf(reply, "wrong number of arguments for 'script|%s' command",
                             subs[i].name);
            return -1;
        }
        return 0;
    }
    int len = argl[1] > 128 ? 128 : (int)argl[1]; /* arguments are not NUL-terminated */
    sconv_add_errorf(reply, "unknown subcommand '%.*s'. Try SCRIPT HELP.", len, argv[1]);
    return -1;
}

static void script_cmd(script_engine_t *e, int argc, const char **argv, const size_t *argl,
                       buf_t *reply)
{
    if (argc < 2) {
        arity_error(reply, "script");
        return;
    }
    if (subcommand_check(argc, argv, argl, reply) < 0)
        return;
    if (is(argv[1], argl[1], "load")) {
        char sha[41];
        if (script_load(e, argv[2], argl[2], sha, reply) == 0)
            buf_printf(reply, "$40\r\n%s\r\n", sha);
    } else if (is(argv[1], argl[1], "exists")) {
        buf_printf(reply, "*%d\r\n", argc - 2);
        for (int j = 2; j < argc; j++)
            buf_append_str(reply, script_exists(e, argv[j], argl[j]) ? ":1\r\n" : ":0\r\n");
    } else if (is(argv[1], argl[1], "flush")) {
        script_flush_cmd(e, argc, argv, argl, reply);
    } else if (is(argv[1], argl[1], "kill")) {
        script_kill(e, reply);
    } else if (is(argv[1], argl[1], "help")) {
        size_t n = sizeof(script_help) / sizeof(script_help[0]);
        buf_printf(reply, "*%zu\r\n", n);
        for (size_t i = 0; i < n; i++)
            buf_printf(reply, "+%s\r\n", script_help[i]);
    } else if (is(argv[2], argl[2], "no")) { /* debug */
        buf_append_str(reply, "+OK\r\n");
    } else if (is(argv[2], argl[2], "yes") || is(argv[2], argl[2], "sync")) {
        sconv_add_errorf(reply, "SCRIPT DEBUG is not supported by cohort");
    } else {
        sconv_add_errorf(reply, "Use SCRIPT DEBUG YES/SYNC/NO");
    }
}

int script_command(script_engine_t *e, int argc, const char **argv, const size_t *argl, int resp,
                   buf_t *reply)
{
    if (argc < 1)
        return -1;
    const char *c = argv[0];
    size_t n = argl[0];
    if (is(c, n, "eval"))
        eval_command(e, argc, argv, argl, 0, 0, "eval", resp, reply);
    else if (is(c, n, "evalsha"))
        eval_command(e, argc, argv, argl, 1, 0, "evalsha", resp, reply);
    else if (is(c, n, "eval_ro"))
        eval_command(e, argc, argv, argl, 0, 1, "eval_ro", resp, reply);
    else if (is(c, n, "evalsha_ro"))
        eval_command(e, argc, argv, argl, 1, 1, "evalsha_ro", resp, reply);
    else if (is(c, n, "script"))
        script_cmd(e, argc, argv, argl, reply);
    else
        return -1;
    return 0;
}
