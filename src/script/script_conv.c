/* script_conv: the conversions between RESP and Lua values for the script
 * engine, with redis-server 7.0's rules (src/script_lua.c there): command
 * replies into Lua values for redis.call, a script's return value into the
 * caller's RESP2 or RESP3, and error replies in redis-server's shapes.
 *
 * Owns: nothing beyond the values it pushes or the bytes it appends.
 * Never: reads a reply that script_reply has not checked, recurses without
 * lua_checkstack (a table nested deeper than the Lua stack allows ends in
 * "reached lua stack limit", as in redis-server), or converts a double to an
 * integer with undefined behaviour.
 *
 * Invariants (tests/unit/test_script.c): reply bytes equal redis-server
 * 7.0.15's (redis_recorded_replies, resp3_*); deep tables never overflow the
 * C stack (deep_reply). */
#include <lauxlib.h>
#include <lua.h>

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "script_int.h"
#include "script_reply.h"

/* ---- errors ---------------------------------------------------------- */

void sconv_add_error(buf_t *b, const char *text, size_t n)
{
    while (n && (*text == '\r' || *text == '\n')) {
        text++;
        n--;
    }
    while (n && (text[n - 1] == '\r' || text[n - 1] == '\n'))
        n--;
    if (!n || text[0] != '-')
        buf_append(b, "-ERR ", 5);
    char *d = buf_reserve(b, n + 2);
    for (size_t i = 0; i < n; i++)
        d[i] = (text[i] == '\r' || text[i] == '\n') ? ' ' : text[i];
    d[n] = '\r';
    d[n + 1] = '\n';
    buf_commit(b, n + 2);
}

void sconv_add_errorf(buf_t *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n < sizeof(small)) {
        sconv_add_error(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        sconv_add_error(b, small, sizeof(small) - 1);
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sconv_add_error(b, big, (size_t)n);
    free(big);
}

/* Pushes redis-server's error table {err = "CODE message"} for err, which is
 * either "-CODE message" or a bare message (code ERR). */
void sconv_push_error(lua_State *L, const char *err)
{
    const char *code = "ERR", *msg = err;
    size_t codelen = 3;
    if (err[0] == '-') {
        const char *sp = strchr(err, ' ');
        if (!sp) {
            msg = err + 1;
        } else {
            code = err + 1;
            codelen = (size_t)(sp - err - 1);
            msg = sp + 1;
        }
    }
    size_t mlen = strlen(msg);
    while (mlen && (*msg == '\r' || *msg == '\n')) {
        msg++;
        mlen--;
    }
    while (mlen && (msg[mlen - 1] == '\r' || msg[mlen - 1] == '\n'))
        mlen--;
    lua_newtable(L);
    lua_pushstring(L, "err");
    luaL_Buffer lb;
    luaL_buffinit(L, &lb);
    luaL_addlstring(&lb, code, codelen);
    luaL_addchar(&lb, ' ');
    luaL_addlstring(&lb, msg, mlen);
    luaL_pushresult(&lb);
    lua_settable(L, -3);
}

/* ---- RESP reply -> Lua ------------------------------------------------ */

static void r_status(void *ctx, const char *s, size_t n)
{
    lua_State *L = ctx;
    luaL_checkstack(L, 3, "reply too deep");
    lua_newtable(L);
    lua_pushstring(L, "ok");
    lua_pushlstring(L, s, n);
    lua_settable(L, -3);
}

static void r_error(void *ctx, const char *s, size_t n)
{
    lua_State *L = ctx;
    luaL_checkstack(L, 4, "reply too deep");
    lua_pushlstring(L, s, n); /* to a C string: stops at a NUL, as sds does */
    lua_pushfstring(L, "-%s", lua_tostring(L, -1));
    sconv_push_error(L, lua_tostring(L, -1));
    lua_replace(L, -3);
    lua_pop(L, 1);
}

static void r_integer(void *ctx, long long v)
{
    lua_State *L = ctx;
    luaL_checkstack(L, 1, "reply too deep");
    lua_pushnumber(L, (lua_Number)v);
}

static void r_bulk(void *ctx, const char *s, size_t n)
{
    lua_State *L = ctx;
    luaL_checkstack(L, 1, "reply too deep");
    lua_pushlstring(L, s, n);
}

static void r_false(void *ctx)
{
    lua_State *L = ctx;
    luaL_checkstack(L, 1, "reply too deep");
    lua_pushboolean(L, 0);
}

static void r_null(void *ctx)
{
    lua_State *L = ctx;
    luaL_checkstack(L, 1, "reply too deep");
    lua_pushnil(L);
}

static void r_bool(void *ctx, int v)
{
    lua_State *L = ctx;
    luaL_checkstack(L, 1, "reply too deep");
    lua_pushboolean(L, v);
}

static void r_double(void *ctx, double v)
{
    lua_State *L = ctx;
    luaL_checkstack(L, 3, "reply too deep");
    lua_newtable(L);
    lua_pushstring(L, "double");
    lua_pushnumber(L, v);
    lua_settable(L, -3);
}

static void r_bignum(void *ctx, const char *s, size_t n)
{
    lua_State *L = ctx;
    luaL_checkstack(L, 3, "reply too deep");
    lua_newtable(L);
    lua_pushstring(L, "big_number");
    lua_pushlstring(L, s, n);
    lua_settable(L, -3);
}

static void r_verbatim(void *ctx, const char *fmt, const char *s, size_t n)
{
    lua_State *L = ctx;
    luaL_checkstack(L, 5, "reply too deep");
    lua_newtable(L);
    lua_pushstring(L, "verbatim_string");
    lua_newtable(L);
    lua_pushstring(L, "string");
    lua_pushlstring(L, s, n);
    lua_settable(L, -3);
    lua_pushstring(L, "format");
    lua_pushlstring(L, fmt, 3);
    lua_settable(L, -3);
    lua_settable(L, -3);
}

static void r_array(sreply_parser_t *p, void *ctx, size_t n)
{
    lua_State *L = ctx;
    luaL_checkstack(L, 3, "reply too deep");
    lua_newtable(L);
    for (size_t j = 0; j < n; j++) {
        lua_pushnumber(L, (lua_Number)(j + 1));
        sreply_next(p, L);
        lua_settable(L, -3);
    }
}

static void r_map(sreply_parser_t *p, void *ctx, size_t n)
{
    lua_State *L = ctx;
    luaL_checkstack(L, 4, "reply too deep");
    lua_newtable(L);
    lua_pushstring(L, "map");
    lua_newtable(L);
    for (size_t j = 0; j < n; j++) {
        sreply_next(p, L);
        sreply_next(p, L);
        lua_settable(L, -3);
    }
    lua_settable(L, -3);
}

static void r_set(sreply_parser_t *p, void *ctx, size_t n)
{
    lua_State *L = ctx;
    luaL_checkstack(L, 4, "reply too deep");
    lua_newtable(L);
    lua_pushstring(L, "set");
    lua_newtable(L);
    for (size_t j = 0; j < n; j++) {
        sreply_next(p, L);
        luaL_checkstack(L, 1, "reply too deep");
        lua_pushboolean(L, 1);
        lua_settable(L, -3);
    }
    lua_settable(L, -3);
}

const sreply_cb_t sconv_to_lua = {
    .status = r_status,
    .error = r_error,
    .integer = r_integer,
    .bulk = r_bulk,
    .null_bulk = r_false,
    .null_array = r_false,
    .null = r_null,
    .boolean = r_bool,
    .dbl = r_double,
    .bignum = r_bignum,
    .verbatim = r_verbatim,
    .array = r_array,
    .set = r_set,
    .map = r_map,
};

/* ---- Lua value -> RESP ------------------------------------------------ */

static void add_line(buf_t *b, char type, long long v)
{
    buf_printf(b, "%c%lld\r\n", type, v);
}

static void add_bulk(buf_t *b, const char *s, size_t n)
{
    add_line(b, '$', (long long)n);
    buf_append(b, s, n);
    buf_append(b, "\r\n", 2);
}

static void add_null(buf_t *b, int resp)
{
    if (resp == 2)
        buf_append(b, "$-1\r\n", 5);
    else
        buf_append(b, "_\r\n", 3);
}

/* (long long)d as x86-64 computes it, without the undefined behaviour. */
static long long d2ll(double d)
{
    if (d >= -9223372036854775808.0 && d < 9223372036854775808.0)
        return (long long)d;
    return LLONG_MIN;
}

static void add_double(buf_t *b, int resp, double d)
{
    char num[64];
    if (isinf(d)) {
        if (resp == 2)
            add_bulk(b, d > 0 ? "inf" : "-inf", d > 0 ? 3 : 4);
        else
            buf_append_str(b, d > 0 ? ",inf\r\n" : ",-inf\r\n");
        return;
    }
    int n = snprintf(num, sizeof(num), "%.17g", d);
    if (resp == 2) {
        add_bulk(b, num, (size_t)n);
    } else {
        buf_append(b, ",", 1);
        buf_append(b, num, (size_t)n);
        buf_append(b, "\r\n", 2);
    }
}

/* Appends s with CR and LF turned into spaces (sdsmapchars). */
static void append_mapped(buf_t *b, const char *s, size_t n)
{
    char *d = buf_reserve(b, n);
    for (size_t i = 0; i < n; i++)
        d[i] = (s[i] == '\r' || s[i] == '\n') ? ' ' : s[i];
    buf_commit(b, n);
}

void sconv_to_resp(script_engine_t *e, lua_State *L, buf_t *b, int resp);

/* Looks up field name of the table on top; leaves it pushed; returns its type. */
static int field(lua_State *L, int idx, const char *name)
{
    lua_pushstring(L, name);
    lua_rawget(L, idx < 0 ? idx - 1 : idx);
    return lua_type(L, -1);
}

static int table_special(lua_State *L, buf_t *b, int resp)
{
    if (field(L, -1, "err") == LUA_TSTRING) {
        const char *m = lua_tostring(L, -1);
        buf_t tmp;
        buf_init(&tmp);
        buf_printf(&tmp, "-%s", m);
        sconv_add_error(b, buf_head(&tmp), buf_len(&tmp));
        buf_free(&tmp);
        lua_pop(L, 1);
        return 1;
    }
    lua_pop(L, 1);
    if (field(L, -1, "ok") == LUA_TSTRING) {
        const char *m = lua_tostring(L, -1);
        buf_append(b, "+", 1);
        append_mapped(b, m, strlen(m));
        buf_append(b, "\r\n", 2);
        lua_pop(L, 1);
        return 1;
    }
    lua_pop(L, 1);
    if (field(L, -1, "double") == LUA_TNUMBER) {
        add_double(b, resp, lua_tonumber(L, -1));
        lua_pop(L, 1);
        return 1;
    }
    lua_pop(L, 1);
    if (field(L, -1, "big_number") == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        if (resp == 2) {
            add_line(b, '$', (long long)n);
        } else {
            buf_append(b, "(", 1);
        }
        append_mapped(b, s, n);
        buf_append(b, "\r\n", 2);
        lua_pop(L, 1);
        return 1;
    }
    lua_pop(L, 1);
    return 0;
}

static int table_verbatim(lua_State *L, buf_t *b, int resp)
{
    int done = 0;
    if (field(L, -1, "verbatim_string") == LUA_TTABLE) {
        if (field(L, -1, "format") == LUA_TSTRING) {
            const char *fmt = lua_tostring(L, -1);
            if (field(L, -2, "string") == LUA_TSTRING) {
                size_t n;
                const char *s = lua_tolstring(L, -1, &n);
                if (resp == 2) {
                    add_bulk(b, s, n);
                } else {
                    char ext[3];
                    for (int i = 0; i < 3; i++)
                        ext[i] = *fmt ? *fmt++ : ' ';
                    add_line(b, '=', (long long)n + 4);
                    buf_append(b, ext, 3);
                    buf_append(b, ":", 1);
                    buf_append(b, s, n);
                    buf_append(b, "\r\n", 2);
                }
                done = 1;
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return done;
}

/* Map (pairs) or set (keys) of the table on top, iterated as redis-server
 * does with lua_next. */
static int table_map_or_set(script_engine_t *e, lua_State *L, buf_t *b, int resp, int is_map)
{
    if (field(L, -1, is_map ? "map" : "set") != LUA_TTABLE) {
        lua_pop(L, 1);
        return 0;
    }
    long long n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pop(L, 1);
        n++;
    }
    if (is_map)
        add_line(b, resp == 2 ? '*' : '%', resp == 2 ? n * 2 : n);
    else
        add_line(b, resp == 2 ? '*' : '~', n);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (!is_map)
            lua_pop(L, 1);
        lua_pushvalue(L, -1 - is_map);
        sconv_to_resp(e, L, b, resp);
        if (is_map)
            sconv_to_resp(e, L, b, resp);
    }
    lua_pop(L, 1);
    return 1;
}

static void table_array(script_engine_t *e, lua_State *L, buf_t *b, int resp)
{
    long long n = 0;
    for (;;) {
        lua_pushnumber(L, (lua_Number)(n + 1));
        lua_rawget(L, -2);
        int t = lua_type(L, -1);
        lua_pop(L, 1);
        if (t == LUA_TNIL)
            break;
        n++;
    }
    add_line(b, '*', n);
    for (long long j = 1; j <= n; j++) {
        lua_pushnumber(L, (lua_Number)j);
        lua_rawget(L, -2);
        sconv_to_resp(e, L, b, resp);
    }
}

/* Converts the value on top of the stack into RESP (protocol resp) in b and
 * pops it; redis-server's luaReplyToRedisReply. */
void sconv_to_resp(script_engine_t *e, lua_State *L, buf_t *b, int resp)
{
    if (!lua_checkstack(L, 4)) {
        sconv_add_error(b, "reached lua stack limit", 23);
        lua_pop(L, 1);
        return;
    }
    switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        add_bulk(b, s, n);
        break;
    }
    case LUA_TBOOLEAN:
        if (e->script_resp == 2) {
            if (lua_toboolean(L, -1))
                buf_append(b, ":1\r\n", 4);
            else
                add_null(b, resp);
        } else if (resp == 2) {
            buf_append_str(b, lua_toboolean(L, -1) ? ":1\r\n" : ":0\r\n");
        } else {
            buf_append_str(b, lua_toboolean(L, -1) ? "#t\r\n" : "#f\r\n");
        }
        break;
    case LUA_TNUMBER:
        add_line(b, ':', d2ll(lua_tonumber(L, -1)));
        break;
    case LUA_TTABLE:
        if (!table_special(L, b, resp) && !table_verbatim(L, b, resp) &&
            !table_map_or_set(e, L, b, resp, 1) && !table_map_or_set(e, L, b, resp, 0))
            table_array(e, L, b, resp);
        break;
    default:
        add_null(b, resp);
    }
    lua_pop(L, 1);
}
