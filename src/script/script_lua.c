/* script_lua: the Lua 5.1 state behind cohort's script engine — its sandbox,
 * the redis.* API, compiling and running a script, all as redis-server 7.0
 * (src/script_lua.c, src/eval.c) has them. The value conversions are in
 * script_conv.c.
 *
 * Owns: the lua_State of one engine, its allocator (which counts and limits
 * the heap) and its count hook (busy threshold, SCRIPT KILL).
 * Never: calls a Lua API that can raise outside a protected call while the
 * memory limit is enforced; holds C-allocated memory across a call that can
 * raise (scratch lives in the engine); lets a script change what the next
 * script sees (globals and library tables are read-only).
 *
 * Sandbox. Stock Lua 5.1 has no read-only tables (redis-server patches its
 * Lua), so each library table and the globals table are replaced by an empty
 * proxy whose metatable reads through to the real table and whose
 * __newindex raises "Attempt to modify a readonly table". rawset,
 * setmetatable, rawget, next and pairs are wrapped so proxies behave like the
 * tables they stand for. Not loaded, as in redis-server: os, io, package
 * (require), print, dofile, loadfile, getfenv, setfenv, newproxy, debug.
 * Not provided (redis-server bundles them, Debian has no package): struct,
 * cmsgpack.
 *
 * Invariants (tests/unit/test_script.c):
 *  1. Error texts, globals and library contents equal redis-server
 *     7.0.15's for the recorded cases (redis_recorded_replies).
 *  2. A script never sees another script's globals (sandbox_isolation).
 *  3. Past the memory limit a script fails and the engine keeps working;
 *     compiled scripts that fill the heap move to a fresh state
 *     (memory_limit, state_reset_keeps_cache).
 *  4. A killed script cannot hold on with pcall (kill_from_busy). */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <lua-bitop.h>
#include <lua-cjson.h>

#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "mem.h"
#include "script_int.h"
#include "script_reply.h"

#define REG_REAL_G    "cohort.globals" /* the real globals table */
#define REG_PROXIES   "cohort.proxies" /* proxy -> real table (weak keys) */
#define REG_HANDLER   "cohort.errhandler"
#define REG_SEALED    "cohort.sealed" /* an empty read-only table */
#define HOOK_COUNT    100000          /* instructions between hook calls */
#define BUSY_EVERY_NS 10000000ULL     /* busy callback period: 10 ms */
#define READONLY_MSG  "Attempt to modify a readonly table"

static script_engine_t *engine_of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

uint64_t slua_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void slua_sha1hex(char out[41], const void *p, size_t n)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";

    if (!EVP_Digest(p, n, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20) {
        log_error("script", "SHA1 digest failed");
        abort();
    }
    for (unsigned i = 0; i < 20; i++) {
        out[i * 2] = hex[md[i] >> 4];
        out[i * 2 + 1] = hex[md[i] & 15];
    }
    out[40] = '\0';
}

/* ---- allocator ------------------------------------------------------- */

/* The Lua allocator: counts the heap and, while e->enforce is set, refuses
 * growth past the limit (Lua then raises "not enough memory"). Shrinking
 * never fails. */
static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    script_engine_t *e = ud;
    if (nsize == 0) {
        free(ptr);
        e->heap -= osize;
        return NULL;
    }
    if (nsize > osize && e->enforce && e->lim.max_memory &&
        e->heap - osize + nsize > e->lim.max_memory) {
        e->hit_limit = 1;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (!p) {
        if (nsize <= osize)
            return ptr;
        return NULL;
    }
    e->heap = e->heap - osize + nsize;
    return p;
}

static int l_panic(lua_State *L)
{
    log_error("script", "unprotected Lua error: %s", lua_tostring(L, -1));
    abort();
    return 0;
}

/* ---- redis.* ------------------------------------------------------------ */

/* Converts the call's arguments into e->argv/argl (numbers as "%.17g").
 * Returns 0, or -1 if one is neither a string nor a number. */
static int args_from_lua(script_engine_t *e, lua_State *L, int argc)
{
    if ((size_t)argc > e->argcap) {
        size_t cap = (size_t)argc * 2;
        e->argv = xrealloc(e->argv, cap * sizeof(*e->argv));
        e->argl = xrealloc(e->argl, cap * sizeof(*e->argl));
        e->numoff = xrealloc(e->numoff, cap * sizeof(*e->numoff));
        e->argcap = cap;
    }
    buf_clear(&e->nums);
    for (int j = 0; j < argc; j++) {
        if (lua_type(L, j + 1) == LUA_TNUMBER) {
            size_t before = buf_len(&e->nums);
            buf_printf(&e->nums, "%.17g", (double)lua_tonumber(L, j + 1));
            e->argl[j] = buf_len(&e->nums) - before;
            buf_append(&e->nums, "", 1);
            e->numoff[j] = before;
            e->argv[j] = NULL;
            continue;
        }
        e->argv[j] = lua_tolstring(L, j + 1, &e->argl[j]);
        if (!e->argv[j])
            return -1;
    }
    for (int j = 0; j < argc; j++)
        if (!e->argv[j])
            e->argv[j] = buf_head(&e->nums) + e->numoff[j];
    return 0;
}

/* Returns redis-server's refusal text for running this command from the
 * script, or NULL; marks the script dirty on a write. */
static const char *check_command(script_engine_t *e, int argc)
{
    int f = e->host.flags(e->host.ud, argc, e->argv, e->argl);
    if (f & SCRIPT_CMD_UNKNOWN)
        return "Unknown Redis command called from script";
    if (f & SCRIPT_CMD_BADARITY)
        return "Wrong number of args calling Redis command from script";
    if (f & SCRIPT_CMD_NOSCRIPT)
        return "This Redis command is not allowed from script";
    if (e->read_only && (f & (SCRIPT_CMD_WRITE | SCRIPT_CMD_MAY_REPLICATE)))
        return "Write commands are not allowed from read-only scripts.";
    if (f & SCRIPT_CMD_WRITE)
        e->dirty = 1;
    return NULL;
}

static int fail(lua_State *L, const char *msg, int raise)
{
    sconv_push_error(L, msg);
    return raise ? lua_error(L) : 1;
}

static int call_generic(lua_State *L, int raise)
{
    script_engine_t *e = engine_of(L);
    int argc = lua_gettop(L);
    if (argc == 0)
        return fail(L, "Please specify at least one argument for this redis lib call", raise);
    if (args_from_lua(e, L, argc) < 0)
        return fail(L, "Lua redis lib command arguments must be strings or integers", raise);
    if (e->in_call)
        return fail(L, "redis.call() recursive call detected", raise);
    const char *refused = check_command(e, argc);
    if (refused)
        return fail(L, refused, raise);
    buf_clear(&e->reply);
    e->in_call = 1;
    int rc = e->host.call(e->host.ud, argc, e->argv, e->argl, e->script_resp, &e->reply);
    e->in_call = 0;
    lua_settop(L, 0);
    const char *r = buf_head(&e->reply);
    size_t rl = buf_len(&e->reply);
    if (rc < 0 || sreply_check(r, rl, SLUA_REPLY_MAX_DEPTH) < 0) {
        log_warn("script", "unreadable reply from a command a script called (%zu bytes)", rl);
        return fail(L, "The command's reply could not be read by the script engine", raise);
    }
    sreply_parse(r, rl, SLUA_REPLY_MAX_DEPTH, &sconv_to_lua, L);
    if (raise && (r[0] == '-' || r[0] == '!'))
        return lua_error(L);
    return 1;
}

static int l_call(lua_State *L)
{
    return call_generic(L, 1);
}

static int l_pcall(lua_State *L)
{
    return call_generic(L, 0);
}

static int l_acl_check_cmd(lua_State *L)
{
    script_engine_t *e = engine_of(L);
    int argc = lua_gettop(L);
    if (argc == 0)
        return fail(L, "Please specify at least one argument for this redis lib call", 1);
    if (args_from_lua(e, L, argc) < 0)
        return fail(L, "Lua redis lib command arguments must be strings or integers", 1);
    int f = e->host.flags(e->host.ud, argc, e->argv, e->argl);
    if (f & SCRIPT_CMD_UNKNOWN)
        return fail(L, "Invalid command passed to redis.acl_check_cmd()", 1);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_sha1hex(lua_State *L)
{
    char digest[41];
    size_t len = 0;
    if (lua_gettop(L) != 1)
        return fail(L, "wrong number of arguments", 1);
    const char *s = lua_tolstring(L, 1, &len);
    slua_sha1hex(digest, s ? s : "", s ? len : 0);
    lua_pushstring(L, digest);
    return 1;
}

static int l_error_reply(lua_State *L)
{
    if (lua_gettop(L) != 1 || lua_type(L, -1) != LUA_TSTRING)
        return fail(L, "wrong number or type of arguments", 0);
    const char *err = lua_tostring(L, -1);
    if (err[0] != '-') {
        lua_pushfstring(L, "-%s", err);
        err = lua_tostring(L, -1);
    }
    sconv_push_error(L, err);
    return 1;
}

static int l_status_reply(lua_State *L)
{
    if (lua_gettop(L) != 1 || lua_type(L, -1) != LUA_TSTRING)
        return fail(L, "wrong number or type of arguments", 0);
    lua_newtable(L);
    lua_pushstring(L, "ok");
    lua_pushvalue(L, -3);
    lua_settable(L, -3);
    return 1;
}

static int l_log(lua_State *L)
{
    static const int levels[] = {LOG_DEBUG, LOG_DEBUG, LOG_INFO, LOG_WARN};
    int argc = lua_gettop(L);
    if (argc < 2)
        return fail(L, "redis.log() requires two arguments or more.", 1);
    if (!lua_isnumber(L, 1))
        return fail(L, "First argument must be a number (log level).", 1);
    int level = (int)lua_tonumber(L, 1);
    if (level < 0 || level > 3)
        return fail(L, "Invalid debug level.", 1);
    luaL_Buffer lb;
    luaL_buffinit(L, &lb);
    for (int j = 2; j <= argc; j++) {
        size_t n;
        const char *s = lua_tolstring(L, j, &n);
        if (s) {
            if (j != 2)
                luaL_addchar(&lb, ' ');
            luaL_addlstring(&lb, s, n);
        }
    }
    luaL_pushresult(&lb);
    log_msg(levels[level], "script", "%s", lua_tostring(L, -1));
    return 0;
}

static int l_setresp(lua_State *L)
{
    if (lua_gettop(L) != 1)
        return fail(L, "redis.setresp() requires one argument.", 1);
    int resp = (int)lua_tonumber(L, 1);
    if (resp != 2 && resp != 3)
        return fail(L, "RESP version must be 2 or 3.", 1);
    engine_of(L)->script_resp = resp;
    return 0;
}

static int l_set_repl(lua_State *L)
{
    if (lua_gettop(L) != 1)
        return fail(L, "redis.set_repl() requires two arguments.", 1);
    int flags = (int)lua_tonumber(L, -1);
    if ((flags & ~3) != 0)
        return fail(L,
                    "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or "
                    "REPL_NONE.",
                    1);
    return 0; /* cohort replicates a script's effects, never the script */
}

static int l_true(lua_State *L)
{
    lua_pushboolean(L, 1);
    return 1;
}

static int l_false(lua_State *L)
{
    lua_pushboolean(L, 0);
    return 1;
}

static int l_nothing(lua_State *L)
{
    (void)L;
    return 0;
}

/* pcall as redis-server 7.0 replaces it: an error table becomes its 'err'
 * string, as older versions returned. */
static int l_lua_pcall(lua_State *L)
{
    int argc = lua_gettop(L);
    lua_pushboolean(L, 1);
    lua_insert(L, 1);
    if (lua_pcall(L, argc - 1, LUA_MULTRET, 0)) {
        lua_remove(L, 1);
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "err");
            if (lua_isstring(L, -1))
                lua_replace(L, -2);
            else
                lua_pop(L, 1);
        }
        lua_pushboolean(L, 0);
        lua_insert(L, 1);
    }
    return lua_gettop(L);
}

/* math.random / math.randomseed on redis-server's lrand48, so a seeded
 * sequence is the same as there. */
static int32_t lrand48_next(script_engine_t *e)
{
    e->rand48 = (0x5DEECE66DULL * e->rand48 + 0xB) & ((1ULL << 48) - 1);
    return (int32_t)(e->rand48 >> 17);
}

static int l_random(lua_State *L)
{
    script_engine_t *e = engine_of(L);
    lua_Number r = (lua_Number)(lrand48_next(e) % INT32_MAX) / (lua_Number)INT32_MAX;
    switch (lua_gettop(L)) {
    case 0:
        lua_pushnumber(L, r);
        break;
    case 1: {
        int u = luaL_checkint(L, 1);
        luaL_argcheck(L, 1 <= u, 1, "interval is empty");
        lua_pushnumber(L, floor(r * u) + 1);
        break;
    }
    case 2: {
        int l = luaL_checkint(L, 1);
        int u = luaL_checkint(L, 2);
        luaL_argcheck(L, l <= u, 2, "interval is empty");
        lua_pushnumber(L, floor(r * (u - l + 1)) + l);
        break;
    }
    default:
        return luaL_error(L, "wrong number of arguments");
    }
    return 1;
}

static int l_randomseed(lua_State *L)
{
    uint32_t seed = (uint32_t)luaL_checkint(L, 1);
    engine_of(L)->rand48 = ((uint64_t)seed << 16) | 0x330E;
    return 0;
}

/* collectgarbage as Lua has it, except that a "stop" is undone after the
 * script (the state is shared: a stopped collector would fill the heap for
 * every later script). */
static int l_collectgarbage(lua_State *L)
{
    const char *opt = lua_type(L, 1) == LUA_TSTRING ? lua_tostring(L, 1) : NULL;
    if (opt && strcmp(opt, "stop") == 0)
        engine_of(L)->gc_stopped = 1;
    int argc = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, argc, LUA_MULTRET);
    return lua_gettop(L);
}

/* ---- sandbox ------------------------------------------------------------ */

static int is_proxy(lua_State *L, int idx);

/* table.insert, refusing protected tables (it writes with rawseti, which no
 * proxy metamethod sees). */
static int l_table_insert(lua_State *L)
{
    if (is_proxy(L, 1)) {
        lua_pushstring(L, "Attempt to modify a readonly table");
        return lua_error(L);
    }
    int argc = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, argc, LUA_MULTRET);
    return lua_gettop(L);
}

static int is_proxy(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TTABLE)
        return 0;
    lua_getfield(L, LUA_REGISTRYINDEX, REG_PROXIES);
    lua_pushvalue(L, idx);
    lua_rawget(L, -2);
    int yes = !lua_isnil(L, -1);
    lua_pop(L, 2);
    return yes;
}

/* Replaces the proxy at idx (if it is one) by the table it stands for. */
static void unproxy(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TTABLE)
        return;
    lua_getfield(L, LUA_REGISTRYINDEX, REG_PROXIES);
    lua_pushvalue(L, idx);
    lua_rawget(L, -2);
    if (!lua_isnil(L, -1))
        lua_replace(L, idx);
    else
        lua_pop(L, 1);
    lua_pop(L, 1);
}

static int l_readonly(lua_State *L)
{
    return luaL_error(L, READONLY_MSG);
}

static int l_missing_global(lua_State *L)
{
    if (!lua_isstring(L, -1))
        return luaL_error(L,
                          "Second argument to luaProtectedTableError must be a string or number");
    return luaL_error(L, "Script attempted to access nonexistent global variable '%s'",
                      lua_tostring(L, -1));
}

static int l_rawset(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    luaL_checkany(L, 3);
    if (is_proxy(L, 1)) {
        lua_pushstring(L, READONLY_MSG);
        return lua_error(L);
    }
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 1;
}

static int l_rawget(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    lua_settop(L, 2);
    unproxy(L, 1);
    lua_rawget(L, 1);
    return 1;
}

static int l_setmetatable(lua_State *L)
{
    int t = lua_type(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argcheck(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table expected");
    if (is_proxy(L, 1)) {
        lua_pushstring(L, READONLY_MSG);
        return lua_error(L);
    }
    if (luaL_getmetafield(L, 1, "__metatable"))
        return luaL_error(L, "cannot change a protected metatable");
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 1;
}

/* getmetatable: protected tables show what redis-server shows, a (sealed)
 * table for _G and nothing for the library tables. */
static int l_getmetatable(lua_State *L)
{
    luaL_checkany(L, 1);
    if (is_proxy(L, 1) && !lua_rawequal(L, 1, LUA_GLOBALSINDEX)) {
        lua_pushnil(L);
        return 1;
    }
    if (!lua_getmetatable(L, 1)) {
        lua_pushnil(L);
        return 1;
    }
    luaL_getmetafield(L, 1, "__metatable");
    return 1;
}

static int l_next(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    unproxy(L, 1);
    if (lua_next(L, 1))
        return 2;
    lua_pushnil(L);
    return 1;
}

static int l_pairs(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushvalue(L, lua_upvalueindex(1)); /* our next */
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* Loads text as redis-server's Lua does: never as precompiled bytecode
 * (a leading space makes the text parser reject it with its own message). */
static int load_text(lua_State *L, const char *s, size_t n, const char *chunkname)
{
    if (n && s[0] == LUA_SIGNATURE[0]) {
        luaL_Buffer lb;
        luaL_buffinit(L, &lb);
        luaL_addchar(&lb, ' ');
        luaL_addlstring(&lb, s, n);
        luaL_pushresult(&lb);
        size_t m;
        const char *t = lua_tolstring(L, -1, &m);
        int rc = luaL_loadbuffer(L, t, m, chunkname);
        lua_remove(L, -2);
        return rc;
    }
    return luaL_loadbuffer(L, s, n, chunkname);
}

static int load_result(lua_State *L, int status)
{
    if (status == 0)
        return 1;
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
}

static int l_loadstring(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    const char *chunkname = luaL_optstring(L, 2, s);
    return load_result(L, load_text(L, s, n, chunkname));
}

/* lua_load reader for load(f): Lua 5.1's generic_reader, except that a
 * first piece starting like bytecode is preceded by a space (see load_text).
 * Errors raise inside the parser, which hands them to the running error
 * handler exactly as redis-server's Lua does. */
static const char *load_reader(lua_State *L, void *ud, size_t *size)
{
    int *stage = ud; /* 0 first piece, 1 piece held back after the space, 2 */
    if (*stage == 1) {
        *stage = 2;
        return lua_tolstring(L, 3, size);
    }
    luaL_checkstack(L, 2, "too many nested functions");
    lua_pushvalue(L, 1);
    lua_call(L, 0, 1);
    if (lua_isnil(L, -1)) {
        *size = 0;
        return NULL;
    }
    if (!lua_isstring(L, -1)) {
        luaL_error(L, "reader function must return a string");
        return NULL;
    }
    lua_replace(L, 3);
    const char *s = lua_tolstring(L, 3, size);
    if (*stage == 0) {
        *stage = 2;
        if (*size && s[0] == LUA_SIGNATURE[0]) {
            *stage = 1;
            *size = 1;
            return " ";
        }
    }
    return s;
}

static int l_load(lua_State *L)
{
    int stage = 0;
    const char *chunkname = luaL_optstring(L, 2, "=(load)");
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 3); /* function, name, and a slot for the reader */
    return load_result(L, lua_load(L, load_reader, &stage, chunkname));
}

/* Creates the empty read-only table that getmetatable() returns for every
 * protected table (redis-server returns their metatable: a table too). */
static void make_sealed(lua_State *L)
{
    lua_newtable(L);
    lua_newtable(L);
    lua_pushcfunction(L, l_readonly);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_getfield(L, LUA_REGISTRYINDEX, REG_PROXIES);
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, REG_SEALED);
}

/* Creates a proxy for the table at the top of the stack, replacing it. */
static void make_proxy(lua_State *L, lua_CFunction missing)
{
    int real = lua_gettop(L);
    lua_newtable(L); /* proxy */
    lua_newtable(L); /* its metatable */
    if (missing) {   /* globals: the real table reports misses */
        lua_newtable(L);
        lua_pushcfunction(L, missing);
        lua_setfield(L, -2, "__index");
        lua_setmetatable(L, real);
    }
    lua_pushvalue(L, real);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_readonly);
    lua_setfield(L, -2, "__newindex");
    lua_getfield(L, LUA_REGISTRYINDEX, REG_SEALED); /* what getmetatable shows */
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_getfield(L, LUA_REGISTRYINDEX, REG_PROXIES);
    lua_pushvalue(L, -2);
    lua_pushvalue(L, real);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_replace(L, real);
}

/* Makes the string metatable read-only too: getmetatable('') hands out a
 * proxy of it whose __index is the string library's proxy. */
static void protect_string_metatable(lua_State *L)
{
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_getglobal(L, "string");
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, -1);
    make_proxy(L, NULL);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
}

static void set_fn(lua_State *L, const char *name, lua_CFunction f)
{
    lua_pushcfunction(L, f);
    lua_setfield(L, -2, name);
}

static void set_num(lua_State *L, const char *name, lua_Number v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, name);
}

static void register_redis(script_engine_t *e, lua_State *L)
{
    lua_newtable(L);
    set_fn(L, "call", l_call);
    set_fn(L, "pcall", l_pcall);
    set_fn(L, "log", l_log);
    set_num(L, "LOG_DEBUG", 0);
    set_num(L, "LOG_VERBOSE", 1);
    set_num(L, "LOG_NOTICE", 2);
    set_num(L, "LOG_WARNING", 3);
    int maj = 0, min = 0, pat = 0;
    sscanf(e->version, "%d.%d.%d", &maj, &min, &pat);
    set_num(L, "REDIS_VERSION_NUM", (lua_Number)((maj << 16) | (min << 8) | pat));
    lua_pushstring(L, e->version);
    lua_setfield(L, -2, "REDIS_VERSION");
    set_fn(L, "setresp", l_setresp);
    set_fn(L, "sha1hex", l_sha1hex);
    set_fn(L, "error_reply", l_error_reply);
    set_fn(L, "status_reply", l_status_reply);
    set_fn(L, "set_repl", l_set_repl);
    set_num(L, "REPL_NONE", 0);
    set_num(L, "REPL_AOF", 1);
    set_num(L, "REPL_SLAVE", 2);
    set_num(L, "REPL_REPLICA", 2);
    set_num(L, "REPL_ALL", 3);
    set_fn(L, "acl_check_cmd", l_acl_check_cmd);
    set_fn(L, "breakpoint", l_false);
    set_fn(L, "debug", l_nothing);
    set_fn(L, "replicate_commands", l_true);
    lua_setglobal(L, "redis");
}

static void open_lib(lua_State *L, const char *name, lua_CFunction f)
{
    lua_pushcfunction(L, f);
    lua_pushstring(L, name);
    lua_call(L, 1, 0);
}

static void open_libraries(lua_State *L)
{
    static const char *const removed[] = {"print",   "dofile",   "loadfile", "getfenv",
                                          "setfenv", "newproxy", "module",   "require"};
    open_lib(L, "", luaopen_base);
    open_lib(L, LUA_TABLIBNAME, luaopen_table);
    open_lib(L, LUA_STRLIBNAME, luaopen_string);
    open_lib(L, LUA_MATHLIBNAME, luaopen_math);
    open_lib(L, LUA_DBLIBNAME, luaopen_debug);
    lua_pushcfunction(L, luaopen_cjson);
    lua_call(L, 0, 1);
    lua_setglobal(L, "cjson");
    open_lib(L, "bit", luaopen_bit);
    for (size_t i = 0; i < sizeof(removed) / sizeof(removed[0]); i++) {
        lua_pushnil(L);
        lua_setglobal(L, removed[i]);
    }
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "_LOADED"); /* no way back to the real tables */
}

static void replace_builtins(lua_State *L)
{
    lua_pushcfunction(L, l_lua_pcall);
    lua_setglobal(L, "pcall");
    lua_pushcfunction(L, l_rawset);
    lua_setglobal(L, "rawset");
    lua_pushcfunction(L, l_rawget);
    lua_setglobal(L, "rawget");
    lua_pushcfunction(L, l_setmetatable);
    lua_setglobal(L, "setmetatable");
    lua_pushcfunction(L, l_getmetatable);
    lua_setglobal(L, "getmetatable");
    lua_pushcfunction(L, l_next);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "next");
    lua_pushcclosure(L, l_pairs, 1);
    lua_setglobal(L, "pairs");
    lua_pushcfunction(L, l_loadstring);
    lua_setglobal(L, "loadstring");
    lua_getglobal(L, "collectgarbage");
    lua_pushcclosure(L, l_collectgarbage, 1);
    lua_setglobal(L, "collectgarbage");
    lua_pushcfunction(L, l_load);
    lua_setglobal(L, "load");
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "insert");
    lua_pushcclosure(L, l_table_insert, 1);
    lua_setfield(L, -2, "insert");
    lua_pop(L, 1);
    lua_getglobal(L, "math");
    set_fn(L, "random", l_random);
    set_fn(L, "randomseed", l_randomseed);
    lua_pop(L, 1);
}

/* redis-server's error handler, word for word: adds the script's source and
 * line to the error table. It keeps the debug library to itself. */
static const char err_handler_src[] = "local dbg = debug\n"
                                      "debug = nil\n"
                                      "function __redis__err__handler(err)\n"
                                      "  local i = dbg.getinfo(2,'nSl')\n"
                                      "  if i and i.what == 'C' then\n"
                                      "    i = dbg.getinfo(3,'nSl')\n"
                                      "  end\n"
                                      "  if type(err) ~= 'table' then\n"
                                      "    err = {err='ERR ' .. tostring(err)}"
                                      "  end"
                                      "  if i then\n"
                                      "    err['source'] = i.source\n"
                                      "    err['line'] = i.currentline\n"
                                      "  end"
                                      "  return err\n"
                                      "end\n";

static void protect(lua_State *L)
{
    static const char *const libs[] = {"string", "math", "table", "coroutine",
                                       "cjson",  "bit",  "redis"};
    lua_newtable(L);
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, REG_PROXIES);
    make_sealed(L);
    for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
        lua_getglobal(L, libs[i]);
        make_proxy(L, NULL);
        lua_setglobal(L, libs[i]);
    }
    protect_string_metatable(L);
    lua_getglobal(L, "__redis__err__handler");
    lua_setfield(L, LUA_REGISTRYINDEX, REG_HANDLER);
    lua_pushvalue(L, LUA_GLOBALSINDEX);
    lua_setfield(L, LUA_REGISTRYINDEX, REG_REAL_G);
    lua_pushvalue(L, LUA_GLOBALSINDEX);
    make_proxy(L, l_missing_global);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_GLOBALSINDEX, "_G");
    lua_replace(L, LUA_GLOBALSINDEX);
}

static int open_protected(lua_State *L)
{
    script_engine_t *e = lua_touserdata(L, 1);
    lua_settop(L, 0);
    open_libraries(L);
    register_redis(e, L);
    replace_builtins(L);
    if (luaL_loadbuffer(L, err_handler_src, sizeof(err_handler_src) - 1, "@err_handler_def"))
        return lua_error(L);
    lua_call(L, 0, 0);
    protect(L);
    return 0;
}

int slua_open(script_engine_t *e, char *err, size_t errlen)
{
    e->heap = 0;
    e->enforce = 0;
    e->L = lua_newstate(l_alloc, e);
    if (!e->L) {
        snprintf(err, errlen, "cannot create a Lua state");
        return -1;
    }
    lua_atpanic(e->L, l_panic);
    if (lua_cpcall(e->L, open_protected, e) != 0) {
        snprintf(err, errlen, "cannot set up the Lua state: %s", lua_tostring(e->L, -1));
        lua_close(e->L);
        e->L = NULL;
        return -1;
    }
    return 0;
}

void slua_close(script_engine_t *e)
{
    if (e->L)
        lua_close(e->L);
    e->L = NULL;
}

/* ---- compile and run ---------------------------------------------------- */

static void func_name(char out[43], const char *sha)
{
    out[0] = 'f';
    out[1] = '_';
    memcpy(out + 2, sha, 41);
}

int slua_compile(script_engine_t *e, sentry_t *s, buf_t *out)
{
    lua_State *L = e->L;
    char fname[43];
    const char *text = s->body + s->shebang_len;
    size_t n = s->len - s->shebang_len;
    char *spaced = NULL;
    if (n && text[0] == LUA_SIGNATURE[0]) { /* never bytecode: see load_text */
        spaced = xmalloc(n + 1);
        spaced[0] = ' ';
        memcpy(spaced + 1, text, n);
        text = spaced;
        n++;
    }
    e->enforce = 1;
    int rc = luaL_loadbuffer(L, text, n, "@user_script");
    e->enforce = 0;
    free(spaced);
    if (rc != 0) {
        sconv_add_errorf(out, "Error compiling script (new function): %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    func_name(fname, s->sha);
    lua_setfield(L, LUA_REGISTRYINDEX, fname);
    s->compiled = 1;
    return 0;
}

typedef struct run_ctx {
    script_engine_t *e;
    sentry_t *s;
    int nkeys, nargs, resp;
    const char **keys, **args;
    const size_t *keyl, *argl;
    buf_t *out;
    int status; /* of the script's own pcall */
} run_ctx_t;

static void set_array(lua_State *L, const char *name, int n, const char **v, const size_t *l)
{
    lua_getfield(L, LUA_REGISTRYINDEX, REG_REAL_G);
    lua_pushstring(L, name);
    lua_createtable(L, n, 0);
    for (int j = 0; j < n; j++) {
        lua_pushlstring(L, v[j], l[j]);
        lua_rawseti(L, -2, j + 1);
    }
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

/* The reply for a script that raised: the error value is on top. */
static void error_to_resp(script_engine_t *e, lua_State *L, int status, buf_t *b)
{
    if (!lua_istable(L, -1)) {
        const char *msg = lua_isstring(L, -1) ? lua_tostring(L, -1) : "execution failure";
        if (status == LUA_ERRMEM && e->hit_limit)
            sconv_add_errorf(b,
                             "Error running script %s, %.100s (the scripting memory limit of %zu "
                             "bytes was reached)",
                             e->sha, msg, e->lim.max_memory);
        else
            sconv_add_errorf(b, "Error running script %s, %.100s", e->sha, msg);
        return;
    }
    lua_getfield(L, -1, "err");
    const char *msg = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
    lua_getfield(L, -2, "source");
    const char *source = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
    lua_getfield(L, -3, "line");
    const char *line = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
    buf_t tmp;
    buf_init(&tmp);
    if (!msg)
        buf_printf(&tmp, "ERR Error running script %s, the error object has no 'err' field",
                   e->sha);
    else
        buf_printf(&tmp, "-%s", msg);
    if (msg && line && source)
        buf_printf(&tmp, " script: %s, on %s:%s.", e->sha, source, line);
    sconv_add_error(b, buf_head(&tmp), buf_len(&tmp));
    buf_free(&tmp);
    lua_pop(L, 3);
}

static int run_protected(lua_State *L)
{
    run_ctx_t *rc = lua_touserdata(L, 1);
    script_engine_t *e = rc->e;
    char fname[43];
    e->enforce = 1; /* only now: lua_cpcall's own allocation must not fail */
    lua_settop(L, 0);
    lua_getfield(L, LUA_REGISTRYINDEX, REG_HANDLER);
    func_name(fname, rc->s->sha);
    lua_getfield(L, LUA_REGISTRYINDEX, fname);
    set_array(L, "KEYS", rc->nkeys, rc->keys, rc->keyl);
    set_array(L, "ARGV", rc->nargs, rc->args, rc->argl);
    rc->status = lua_pcall(L, 0, 1, 1);
    if (rc->status)
        error_to_resp(e, L, rc->status, rc->out);
    else
        sconv_to_resp(e, L, rc->out, rc->resp);
    lua_settop(L, 0);
    return 0;
}

/* The count hook: busy threshold, busy callback and SCRIPT KILL. */
static void count_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    script_engine_t *e = engine_of(L);
    uint64_t now = slua_now_ns();
    if (e->lim.busy_ms > 0 && now - e->start_ns >= (uint64_t)e->lim.busy_ms * 1000000ULL) {
        if (!e->timedout) {
            e->timedout = 1;
            log_warn("script",
                     "Slow script detected: still in execution after %llu milliseconds. You can "
                     "try killing the script using the SCRIPT KILL command. Script name is: %s.",
                     (unsigned long long)((now - e->start_ns) / 1000000ULL), e->sha);
        }
        if (e->host.busy && (e->last_busy_ns == 0 || now - e->last_busy_ns >= BUSY_EVERY_NS)) {
            e->last_busy_ns = now;
            e->host.busy(e->host.ud);
        }
    }
    if (e->killed) {
        log_warn("script", "Lua script killed by user with SCRIPT KILL.");
        /* every line from now on raises again, so pcall cannot hold it */
        lua_sethook(L, count_hook, LUA_MASKLINE, 0);
        sconv_push_error(L, "Script killed by user with SCRIPT KILL...");
        lua_error(L);
    }
}

void slua_run(script_engine_t *e, sentry_t *s, int nkeys, const char **keys, const size_t *keyl,
              int nargs, const char **args, const size_t *argl, int resp, buf_t *out)
{
    lua_State *L = e->L;
    buf_t tmp;
    run_ctx_t rc = {e, s, nkeys, nargs, resp, keys, args, keyl, argl, &tmp, 0};
    buf_init(&tmp);
    lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_COUNT);
    e->hit_limit = 0;
    int status = lua_cpcall(L, run_protected, &rc);
    e->enforce = 0;
    lua_sethook(L, NULL, 0, 0);
    if (status != 0) { /* out of memory outside the script's own pcall */
        lua_settop(L, 0);
        buf_clear(&tmp);
        sconv_add_errorf(&tmp,
                         "Error running script %s, not enough memory (the scripting memory "
                         "limit of %zu bytes was reached)",
                         e->sha, e->lim.max_memory);
    }
    buf_append(out, buf_head(&tmp), buf_len(&tmp));
    buf_free(&tmp);
    if (e->gc_stopped) {
        lua_gc(L, LUA_GCRESTART, 0);
        e->gc_stopped = 0;
    }
    if (e->hit_limit || status != 0 || rc.status == LUA_ERRMEM)
        lua_gc(L, LUA_GCCOLLECT, 0);
    else if (++e->runs % 50 == 0)
        lua_gc(L, LUA_GCSTEP, 50);
}
