/* Unit tests for src/script/: the script engine against a fake host (a tiny
 * in-memory GET/SET/DEL/INCR/PING plus a RAW command that replies whatever
 * the test set), redis-server 7.0.15's recorded replies, the sandbox, busy
 * and kill, the memory limit, and the bounded RESP reply parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "guard_page.h"
#include "script.h"
#include "script_reply.h"

struct script_case {
    int resp;
    int ncmds;
    struct {
        int argc;
        const char *argv[8];
        const char *reply;
        size_t reply_len;
    } cmds[48];
};
#include "script_redis_replies.h"

/* ---- the fake host ------------------------------------------------------ */

#define DB_MAX 64

typedef struct fake {
    char *keys[DB_MAX];
    char *vals[DB_MAX];
    size_t vlen[DB_MAX];
    const char *raw; /* reply of RAW */
    size_t raw_len;
    int raw_fail; /* RAW returns -1 */
    int calls;    /* commands run */
    int busy_calls;
    script_engine_t *e; /* for kill from the busy callback */
    int kill_at_busy;   /* kill on this busy call (1-based), 0 never */
    buf_t kill_reply;
    int stop_at_busy;   /* set key "stop" on this busy call */
    int busy_seen_busy; /* script_busy() was true inside the callback */
} fake_t;

static fake_t F;

static int db_find(const char *k, size_t n)
{
    for (int i = 0; i < DB_MAX; i++)
        if (F.keys[i] && strlen(F.keys[i]) == n && memcmp(F.keys[i], k, n) == 0)
            return i;
    return -1;
}

static void db_set(const char *k, size_t kn, const char *v, size_t vn)
{
    int i = db_find(k, kn);
    if (i < 0) {
        for (i = 0; i < DB_MAX && F.keys[i]; i++)
            ;
        assert_true(i < DB_MAX);
        F.keys[i] = strndup(k, kn);
    } else {
        free(F.vals[i]);
    }
    F.vals[i] = malloc(vn + 1);
    memcpy(F.vals[i], v, vn);
    F.vals[i][vn] = '\0';
    F.vlen[i] = vn;
}

static int db_del(const char *k, size_t n)
{
    int i = db_find(k, n);
    if (i < 0)
        return 0;
    free(F.keys[i]);
    free(F.vals[i]);
    F.keys[i] = F.vals[i] = NULL;
    return 1;
}

static void db_clear(void)
{
    for (int i = 0; i < DB_MAX; i++)
        if (F.keys[i])
            db_del(F.keys[i], strlen(F.keys[i]));
}

static int name_is(const char *a, size_t n, const char *b)
{
    return n == strlen(b) && strncasecmp(a, b, n) == 0;
}

static int fake_flags(void *ud, int argc, const char **argv, const size_t *argl)
{
    (void)ud;
    static const struct {
        const char *name;
        int arity;
        int flags;
    } cmds[] = {{"get", 2, 0},
                {"set", -3, SCRIPT_CMD_WRITE},
                {"del", -2, SCRIPT_CMD_WRITE},
                {"incr", 2, SCRIPT_CMD_WRITE},
                {"ping", -1, 0},
                {"raw", 1, 0},
                {"publish", 3, SCRIPT_CMD_MAY_REPLICATE},
                {"eval", -3, SCRIPT_CMD_NOSCRIPT | SCRIPT_CMD_WRITE},
                {"script", -2, SCRIPT_CMD_NOSCRIPT}};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (!name_is(argv[0], argl[0], cmds[i].name))
            continue;
        int a = cmds[i].arity;
        if ((a > 0 && argc != a) || (a < 0 && argc < -a))
            return SCRIPT_CMD_BADARITY;
        return cmds[i].flags;
    }
    return SCRIPT_CMD_UNKNOWN;
}

static void cmd_incr(const char **argv, const size_t *argl, buf_t *r)
{
    int i = db_find(argv[1], argl[1]);
    long long v = 0;
    if (i >= 0) {
        char *end;
        v = strtoll(F.vals[i], &end, 10);
        if (F.vlen[i] == 0 || *end) {
            buf_append_str(r, "-ERR value is not an integer or out of range\r\n");
            return;
        }
    }
    v++;
    char num[32];
    int n = snprintf(num, sizeof(num), "%lld", v);
    db_set(argv[1], argl[1], num, (size_t)n);
    buf_printf(r, ":%lld\r\n", v);
}

static int fake_call(void *ud, int argc, const char **argv, const size_t *argl, int resp, buf_t *r)
{
    (void)ud;
    F.calls++;
    if (name_is(argv[0], argl[0], "get")) {
        int i = db_find(argv[1], argl[1]);
        if (i < 0)
            buf_append_str(r, resp == 3 ? "_\r\n" : "$-1\r\n");
        else
            buf_printf(r, "$%zu\r\n", F.vlen[i]), buf_append(r, F.vals[i], F.vlen[i]),
                buf_append(r, "\r\n", 2);
    } else if (name_is(argv[0], argl[0], "set")) {
        if (argc != 3) {
            buf_append_str(r, "-ERR syntax error\r\n");
            return 0;
        }
        db_set(argv[1], argl[1], argv[2], argl[2]);
        buf_append_str(r, "+OK\r\n");
    } else if (name_is(argv[0], argl[0], "del")) {
        int n = 0;
        for (int j = 1; j < argc; j++)
            n += db_del(argv[j], argl[j]);
        buf_printf(r, ":%d\r\n", n);
    } else if (name_is(argv[0], argl[0], "incr")) {
        cmd_incr(argv, argl, r);
    } else if (name_is(argv[0], argl[0], "ping")) {
        buf_append_str(r, "+PONG\r\n");
    } else if (name_is(argv[0], argl[0], "publish")) {
        buf_append_str(r, ":0\r\n");
    } else if (name_is(argv[0], argl[0], "raw")) {
        if (F.raw_fail)
            return -1;
        buf_append(r, F.raw, F.raw_len);
    } else {
        return -1;
    }
    return 0;
}

static void fake_busy(void *ud)
{
    (void)ud;
    F.busy_calls++;
    if (script_busy(F.e))
        F.busy_seen_busy = 1;
    if (F.kill_at_busy && F.busy_calls == F.kill_at_busy) {
        buf_clear(&F.kill_reply);
        script_kill(F.e, &F.kill_reply);
    }
    if (F.stop_at_busy && F.busy_calls == F.stop_at_busy)
        db_set("stop", 4, "1", 1);
    if (F.busy_calls == 1) { /* other clients' scripting commands meanwhile */
        static const char *const cmds[][3] = {
            {"EVAL", "return 1", "0"}, {"SCRIPT", "FLUSH", ""}, {"SCRIPT", "LOAD", "return 2"}};
        for (int i = 0; i < 3; i++) {
            size_t argl[3] = {strlen(cmds[i][0]), strlen(cmds[i][1]), strlen(cmds[i][2])};
            buf_t r;
            buf_init(&r);
            assert_int_equal(
                script_command(F.e, i == 1 ? 2 : 3, (const char **)cmds[i], argl, 2, &r), 0);
            buf_append(&r, "", 1);
            assert_string_equal(buf_head(&r), SCRIPT_BUSY_ERROR);
            buf_free(&r);
        }
    }
}

static script_engine_t *engine(const script_limits_t *lim)
{
    script_host_t h = {NULL, fake_call, fake_flags, fake_busy};
    char err[128];
    script_engine_t *e = script_new(&h, lim, err, sizeof(err));
    assert_non_null(e);
    return e;
}

static int setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof(F));
    buf_init(&F.kill_reply);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    db_clear();
    buf_free(&F.kill_reply);
    if (F.e)
        script_free(F.e);
    F.e = NULL;
    return 0;
}

/* Runs one command; returns the reply as a NUL-terminated string (static). */
static const char *run(script_engine_t *e, int resp, int argc, ...)
{
    static buf_t out;
    static char *last;
    const char *argv[16];
    size_t argl[16];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++) {
        argv[i] = va_arg(ap, const char *);
        argl[i] = strlen(argv[i]);
    }
    va_end(ap);
    buf_init(&out);
    assert_int_equal(script_command(e, argc, argv, argl, resp, &out), 0);
    free(last);
    last = malloc(buf_len(&out) + 1);
    memcpy(last, buf_head(&out), buf_len(&out));
    last[buf_len(&out)] = '\0';
    buf_free(&out);
    return last;
}

#define EVAL(e, script) run((e), 2, 3, "EVAL", (script), "0")

/* Checks that reply is "<prefix> script: <sha1 of body>, on @user_script:1.". */
static void expect_script_error(const char *body, const char *prefix, const char *reply)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char want[512];
    assert_true(EVP_Digest(body, strlen(body), md, &mdlen, EVP_sha1(), NULL));
    int n = snprintf(want, sizeof(want), "%s script: ", prefix);
    for (unsigned i = 0; i < mdlen; i++)
        n += snprintf(want + n, sizeof(want) - (size_t)n, "%02x", md[i]);
    snprintf(want + n, sizeof(want) - (size_t)n, ", on @user_script:1.\r\n");
    assert_string_equal(reply, want);
}

/* ---- recorded replies ---------------------------------------------------- */

static void redis_recorded_replies(void **state)
{
    (void)state;
    F.e = engine(NULL);
    size_t ncases = sizeof(script_cases) / sizeof(script_cases[0]);
    int failures = 0;
    for (size_t c = 0; c < ncases; c++) {
        const struct script_case *sc = &script_cases[c];
        db_clear();
        assert_int_equal(script_flush(F.e), 0);
        for (int k = 0; k < sc->ncmds; k++) {
            size_t argl[8];
            const char *argv[8];
            for (int a = 0; a < sc->cmds[k].argc; a++) {
                argv[a] = sc->cmds[k].argv[a];
                argl[a] = strlen(argv[a]);
            }
            buf_t out;
            buf_init(&out);
            if (script_command(F.e, sc->cmds[k].argc, argv, argl, sc->resp, &out) < 0)
                assert_int_equal(fake_call(NULL, sc->cmds[k].argc, argv, argl, sc->resp, &out), 0);
            if (buf_len(&out) != sc->cmds[k].reply_len ||
                memcmp(buf_head(&out), sc->cmds[k].reply, buf_len(&out)) != 0) {
                failures++;
                fprintf(stderr, "case %zu.%d (RESP%d) %s %.200s\n  want %.*s\n  got  %.*s\n", c, k,
                        sc->resp, sc->cmds[k].argv[0],
                        sc->cmds[k].argc > 1 ? sc->cmds[k].argv[1] : "",
                        (int)(sc->cmds[k].reply_len > 300 ? 300 : sc->cmds[k].reply_len),
                        sc->cmds[k].reply, (int)(buf_len(&out) > 300 ? 300 : buf_len(&out)),
                        buf_head(&out));
            }
            buf_free(&out);
        }
    }
    assert_int_equal(failures, 0);
}

/* ---- conversions of host replies ------------------------------------------ */

static void set_raw(const char *s)
{
    F.raw = s;
    F.raw_len = strlen(s);
}

static void resp3_host_replies(void **state)
{
    (void)state;
    F.e = engine(NULL);
    set_raw("%2\r\n+a\r\n:1\r\n$1\r\nb\r\n,2.5\r\n");
    assert_string_equal(
        EVAL(F.e, "local r = redis.call('raw') "
                  "return {r.map.b.double, type(r.map[1]) == 'nil', r.map.b.double * 2}"),
        "*3\r\n:2\r\n:1\r\n:5\r\n");
    set_raw("~2\r\n$1\r\nx\r\n$1\r\ny\r\n");
    assert_string_equal(EVAL(F.e, "local r = redis.call('raw') return {tostring(r.set.x), "
                                  "tostring(r.set.y), tostring(r.set.z)}"),
                        "*3\r\n$4\r\ntrue\r\n$4\r\ntrue\r\n$3\r\nnil\r\n");
    set_raw("*5\r\n#t\r\n#f\r\n_\r\n(12345678901234567890\r\n=8\r\ntxt:abcd\r\n");
    assert_string_equal(EVAL(F.e,
                             "local r = redis.call('raw') return {tostring(r[1]), tostring(r[2]), "
                             "tostring(r[3]), r[4].big_number, r[5].verbatim_string.format, "
                             "r[5].verbatim_string.string}"),
                        "*6\r\n$4\r\ntrue\r\n$5\r\nfalse\r\n$3\r\nnil\r\n$20\r\n"
                        "12345678901234567890\r\n$3\r\ntxt\r\n$4\r\nabcd\r\n");
    /* the RESP3 null became nil: the array reply ends there, as in redis-server */
    assert_string_equal(EVAL(F.e, "local r = redis.call('raw') return {r[1], r[3], r[4]}"),
                        "*1\r\n:1\r\n");
    assert_string_equal(EVAL(F.e, "local r = redis.call('raw') return {r[4].big_number, "
                                  "r[5].verbatim_string.format, r[5].verbatim_string.string}"),
                        "*3\r\n$20\r\n12345678901234567890\r\n$3\r\ntxt\r\n$4\r\nabcd\r\n");
    /* attributes are skipped; the value after them is the reply */
    set_raw("|1\r\n+key\r\n+val\r\n:7\r\n");
    assert_string_equal(EVAL(F.e, "return redis.call('raw')"), ":7\r\n");
    /* RESP2 null array and an error inside an array */
    set_raw("*2\r\n*-1\r\n-WRONGTYPE bad\r\n");
    assert_string_equal(EVAL(F.e, "local r = redis.call('raw') return {tostring(r[1]), r[2].err}"),
                        "*2\r\n$5\r\nfalse\r\n$13\r\nWRONGTYPE bad\r\n");
    /* a blob error is an error too */
    set_raw("!9\r\nERR oops!\r\n");
    assert_string_equal(EVAL(F.e, "return redis.pcall('raw')"), "-ERR oops!\r\n");
    /* an error without a code gets ERR, as luaPushErrorBuff does */
    set_raw("-nocode\r\n");
    assert_string_equal(EVAL(F.e, "return redis.pcall('raw')"), "-ERR nocode\r\n");
    /* the script's protocol reaches the host */
    assert_string_equal(EVAL(F.e, "redis.setresp(3) return tostring(redis.call('get', 'nokey'))"),
                        "$3\r\nnil\r\n");
}

static void resp3_script_replies(void **state)
{
    (void)state;
    F.e = engine(NULL);
    assert_string_equal(run(F.e, 3, 3, "EVAL", "return {map={x={set={y=true}}}}", "0"),
                        "%1\r\n$1\r\nx\r\n~1\r\n$1\r\ny\r\n");
    assert_string_equal(run(F.e, 3, 3, "EVAL", "return {double=-1/0}", "0"), ",-inf\r\n");
    assert_string_equal(run(F.e, 2, 3, "EVAL", "return {double=-1/0}", "0"), "$4\r\n-inf\r\n");
    assert_string_equal(
        run(F.e, 3, 3, "EVAL", "return {verbatim_string={format='', string='x'}}", "0"),
        "=5\r\n   :x\r\n");
}

/* ---- malformed replies from the host --------------------------------------- */

static void malformed_host_replies(void **state)
{
    (void)state;
    static const char *const bad[] = {"",
                                      "+",
                                      "+OK",
                                      "+OK\r",
                                      "$",
                                      "$3\r\nab\r\n",
                                      "$3\r\nabcd\r\n",
                                      "$-2\r\n",
                                      "$x\r\n",
                                      "*2\r\n:1\r\n",
                                      "*1\r\n",
                                      ":12a\r\n",
                                      ":\r\n",
                                      "#x\r\n",
                                      ",\r\n",
                                      ",1.5x\r\n",
                                      "=3\r\nabc\r\n",
                                      "=5\r\nabcde\r\n",
                                      "%1\r\n+a\r\n",
                                      "~-1\r\n",
                                      ">1\r\n+a\r\n",
                                      "?\r\n",
                                      "*99999999999999999999\r\n",
                                      "$9223372036854775807\r\n",
                                      "_x\r\n",
                                      "|1\r\n+a\r\n",
                                      "\0\r\n",
                                      "*-5\r\n",
                                      ":99999999999999999999\r\n"};
    F.e = engine(NULL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        F.raw = bad[i];
        F.raw_len = i == 26 ? 3 : strlen(bad[i]);
        assert_string_equal(EVAL(F.e, "return redis.pcall('raw')"),
                            "-ERR The command's reply could not be read by the script engine\r\n");
    }
    /* nesting deeper than the engine converts */
    char deep[1024] = "";
    for (int i = 0; i < 200; i++)
        strcat(deep, "*1\r\n");
    strcat(deep, ":1\r\n");
    set_raw(deep);
    assert_string_equal(EVAL(F.e, "return redis.pcall('raw')"),
                        "-ERR The command's reply could not be read by the script engine\r\n");
    F.raw_fail = 1;
    assert_string_equal(EVAL(F.e, "return redis.pcall('raw')"),
                        "-ERR The command's reply could not be read by the script engine\r\n");
    F.raw_fail = 0;
    /* and the engine still works */
    assert_string_equal(EVAL(F.e, "return redis.call('ping')"), "+PONG\r\n");
}

/* ---- the reply parser ------------------------------------------------------ */

static const char *const good_replies[] = {
    "+OK\r\n",
    "-ERR x\r\n",
    ":-12\r\n",
    "$0\r\n\r\n",
    "$-1\r\n",
    "*-1\r\n",
    "*0\r\n",
    "*2\r\n$1\r\na\r\n:1\r\n",
    "_\r\n",
    "#t\r\n",
    ",1.5\r\n",
    ",inf\r\n",
    "(123\r\n",
    "=4\r\ntxt:\r\n",
    "~1\r\n+a\r\n",
    "%1\r\n+a\r\n+b\r\n",
    "|1\r\n+a\r\n+b\r\n:1\r\n",
    "!3\r\nERR\r\n",
    "*3\r\n%1\r\n~1\r\n_\r\n#f\r\n,2\r\n=6\r\nmkd:ab\r\n",
};

static void reply_parser_guard_page(void **state)
{
    (void)state;
    guard_t g;
    guard_init(&g, 4096);
    for (size_t i = 0; i < sizeof(good_replies) / sizeof(good_replies[0]); i++) {
        size_t n = strlen(good_replies[i]);
        /* every prefix is incomplete, the whole is one reply; nothing reads past
         * the end (the next page faults) */
        for (size_t k = 0; k <= n; k++) {
            char *p = guard_place(&g, good_replies[i], k);
            long r = sreply_check(p, k, 16);
            if (k < n)
                assert_int_equal(r, -1);
            else
                assert_int_equal(r, (long)n);
        }
    }
    guard_free(&g);
}

static void reply_parser_malformed(void **state)
{
    (void)state;
    /* every single-byte corruption of the good replies: no crash, and either
     * -1 or a length within the input */
    guard_t g;
    guard_init(&g, 4096);
    for (size_t i = 0; i < sizeof(good_replies) / sizeof(good_replies[0]); i++) {
        size_t n = strlen(good_replies[i]);
        char tmp[256];
        for (size_t k = 0; k < n; k++) {
            for (int c = 0; c < 256; c += 7) {
                memcpy(tmp, good_replies[i], n);
                tmp[k] = (char)c;
                char *p = guard_place(&g, tmp, n);
                long r = sreply_check(p, n, 16);
                assert_true(r == -1 || (r > 0 && (size_t)r <= n));
            }
        }
    }
    guard_free(&g);
    assert_int_equal(sreply_check(NULL, 0, 4), -1);
    assert_int_equal(sreply_check("*1\r\n", 4, 4), -1);
}

static void reply_parser_depth(void **state)
{
    (void)state;
    char deep[4096] = "";
    for (int i = 0; i < 500; i++)
        strcat(deep, "*1\r\n");
    strcat(deep, "_\r\n");
    assert_int_equal(sreply_check(deep, strlen(deep), 1000), (long)strlen(deep));
    assert_int_equal(sreply_check(deep, strlen(deep), 499), -1);
}

/* ---- sandbox ----------------------------------------------------------------- */

static void sandbox_isolation(void **state)
{
    (void)state;
    F.e = engine(NULL);
    /* nothing a script tries leaks into the next one */
    EVAL(F.e, "rawset(_G, 'leak', 1)");
    EVAL(F.e, "_G.leak = 1");
    EVAL(F.e, "setmetatable(_G, nil)");
    EVAL(F.e, "getmetatable('').__index.upper = nil");
    EVAL(F.e, "string.upper = nil");
    EVAL(F.e, "table.insert(_G, 'x')");
    EVAL(F.e, "redis.call = function() return 1 end");
    EVAL(F.e, "KEYS = nil");
    assert_string_equal(EVAL(F.e, "return ('x'):upper() .. string.upper('y')"), "$2\r\nXY\r\n");
    assert_string_equal(EVAL(F.e, "return rawget(_G, 'leak')"), "$-1\r\n");
    assert_string_equal(EVAL(F.e, "return {#_G, tostring(rawget(_G, 1))}"),
                        "*2\r\n:0\r\n$3\r\nnil\r\n");
    assert_string_equal(EVAL(F.e, "return redis.call('ping')"), "+PONG\r\n");
    assert_string_equal(EVAL(F.e, "return #KEYS"), ":0\r\n");
    expect_script_error("return leak",
                        "-ERR user_script:1: Script attempted to access nonexistent global "
                        "variable 'leak'",
                        EVAL(F.e, "return leak"));
    /* no way to files, processes or bytecode */
    assert_string_equal(EVAL(F.e, "return type(loadstring(string.dump(function() end)))"),
                        "$3\r\nnil\r\n");
    assert_string_equal(EVAL(F.e, "local s, done = string.dump(function() end), false "
                                  "return type(load(function() if done then return nil end "
                                  "done = true return s end))"),
                        "$3\r\nnil\r\n");
    assert_string_equal(EVAL(F.e, "local ok = pcall(function() return os end) return tostring(ok)"),
                        "$5\r\nfalse\r\n");
}

static void cjson_and_bit(void **state)
{
    (void)state;
    F.e = engine(NULL);
    assert_string_equal(EVAL(F.e, "return cjson.encode(cjson.decode('{\"a\":[1,2,\"x\"]}'))"),
                        "$15\r\n{\"a\":[1,2,\"x\"]}\r\n");
    assert_string_equal(
        EVAL(F.e, "return {bit.bor(1, 2), bit.rshift(256, 4), bit.tobit(2^32 + 1)}"),
        "*3\r\n:3\r\n:16\r\n:1\r\n");
}

/* ---- busy and kill -------------------------------------------------------------- */

static void kill_from_busy(void **state)
{
    (void)state;
    script_limits_t lim = {20, 0, 0, NULL};
    F.e = engine(&lim);
    F.kill_at_busy = 2;
    expect_script_error("while true do end", "-ERR Script killed by user with SCRIPT KILL...",
                        EVAL(F.e, "while true do end"));
    assert_true(F.busy_calls >= 2);
    assert_true(F.busy_seen_busy);
    buf_append(&F.kill_reply, "", 1);
    assert_string_equal(buf_head(&F.kill_reply), "+OK\r\n");
    assert_false(script_running(F.e));
    /* pcall cannot hold a kill */
    F.busy_calls = 0;
    assert_int_equal(strncmp(EVAL(F.e, "while true do pcall(function() while true do end end) end"),
                             "-ERR Script killed by user with SCRIPT KILL...", 46),
                     0);
    /* and the engine goes on */
    assert_string_equal(EVAL(F.e, "return 1"), ":1\r\n");
    buf_clear(&F.kill_reply);
    script_kill(F.e, &F.kill_reply);
    buf_append(&F.kill_reply, "", 1);
    assert_string_equal(buf_head(&F.kill_reply), "-NOTBUSY No scripts in execution right now.\r\n");
}

static void unkillable_after_write(void **state)
{
    (void)state;
    script_limits_t lim = {20, 0, 0, NULL};
    F.e = engine(&lim);
    F.kill_at_busy = 1;
    F.stop_at_busy = 3;
    assert_string_equal(
        EVAL(F.e, "redis.call('set', 'k', 'v') while not redis.call('get', 'stop') do end "
                  "return 'done'"),
        "$4\r\ndone\r\n");
    buf_append(&F.kill_reply, "", 1);
    assert_string_equal(buf_head(&F.kill_reply),
                        "-UNKILLABLE Sorry the script already executed write commands against the "
                        "dataset. You can either wait the script termination or kill the server "
                        "in a hard way using the SHUTDOWN NOSAVE command.\r\n");
}

static void no_busy_below_threshold(void **state)
{
    (void)state;
    script_limits_t lim = {0, 0, 0, NULL}; /* never busy */
    F.e = engine(&lim);
    assert_string_equal(EVAL(F.e, "local n = 0 for i = 1, 3000000 do n = n + 1 end return n"),
                        ":3000000\r\n");
    assert_int_equal(F.busy_calls, 0);
}

/* ---- memory ------------------------------------------------------------------ */

static void memory_limit(void **state)
{
    (void)state;
    script_limits_t lim = {0, 8 << 20, 0, NULL};
    F.e = engine(&lim);
    char sha[41];
    buf_t out;
    buf_init(&out);
    assert_int_equal(script_load(F.e, "return 'kept'", 13, sha, &out), 0);
    const char *r =
        EVAL(F.e, "local t = {} for i = 1, 1e8 do t[i] = string.rep('x', 100) .. i end");
    assert_non_null(strstr(r, "not enough memory"));
    assert_int_equal(strncmp(r, "-ERR Error running script ", 26), 0);
    assert_true(script_vm_memory(F.e) <= (size_t)8 << 20);
    /* a script that catches the error itself keeps running, then returns */
    r = EVAL(F.e,
             "local ok, e = pcall(function() local t = {} for i = 1, 1e8 do t[i] = {i} end end) "
             "return e");
    assert_string_equal(r, "$17\r\nnot enough memory\r\n");
    /* the engine is usable and the cache survived */
    assert_string_equal(EVAL(F.e, "return 1"), ":1\r\n");
    assert_string_equal(run(F.e, 2, 3, "EVALSHA", sha, "0"), "$4\r\nkept\r\n");
    buf_free(&out);
}

/* Compiled scripts alone fill the heap: the engine starts a fresh Lua state
 * and recompiles cached scripts when they run again. */
static void state_reset_keeps_cache(void **state)
{
    (void)state;
    script_limits_t lim = {0, 1 << 20, 0, NULL};
    F.e = engine(&lim);
    char first[41], sha[41];
    char *body = malloc(8192);
    buf_t out;
    buf_init(&out);
    for (int i = 0; i < 300; i++) {
        int n = snprintf(body, 8192, "return {%d, '", i);
        memset(body + n, 'a' + i % 26, 5000);
        snprintf(body + n + 5000, 8192 - (size_t)n - 5000, "%d'}", i);
        assert_int_equal(script_load(F.e, body, strlen(body), sha, &out), 0);
        if (i == 0)
            memcpy(first, sha, 41);
    }
    buf_append(&out, "", 1);
    assert_string_equal(buf_head(&out), "");
    assert_int_equal(script_count(F.e), 300);
    assert_true(script_vm_memory(F.e) <= (size_t)1 << 20);
    assert_int_equal(strncmp(run(F.e, 2, 3, "EVALSHA", first, "0"), "*2\r\n:0\r\n$5001\r\naaa", 18),
                     0);
    const char *r = run(F.e, 2, 3, "EVALSHA", sha, "0");
    assert_int_equal(strlen(r), 17 + 5003 + 2);
    assert_string_equal(r + strlen(r) - 5, "299\r\n");
    free(body);
    buf_free(&out);
}

/* A script's collectgarbage("stop") does not outlive it: later scripts'
 * garbage is collected and they never reach the limit. */
static void gc_stop_undone(void **state)
{
    (void)state;
    script_limits_t lim = {0, 4 << 20, 0, NULL};
    F.e = engine(&lim);
    assert_string_equal(EVAL(F.e, "collectgarbage('stop') return 1"), ":1\r\n");
    size_t high = 0;
    for (int i = 0; i < 40; i++) { /* fewer runs than between two periodic GC steps */
        assert_string_equal(EVAL(F.e, "local t, u = {}, tostring({}) for i = 1, 2000 do "
                                      "t[i] = string.rep('x', 100) .. u .. i end return #t"),
                            ":2000\r\n");
        if (script_vm_memory(F.e) > high)
            high = script_vm_memory(F.e);
    }
    /* about 300 KB live per run: a running collector stays far below the
     * 3 MB where the engine would step in */
    assert_true(high < (size_t)2 << 20);
}

static void huge_scripts(void **state)
{
    (void)state;
    script_limits_t lim = {0, 64 << 20, 100000, NULL};
    F.e = engine(&lim);
    size_t n = 99990;
    char *body = malloc(n + 1);
    memcpy(body, "local t={}\n", 11);
    for (size_t i = 11; i + 10 <= n; i += 10)
        memcpy(body + i, "t[#t+1]=1\n", 10);
    memcpy(body + n - 9, "return #t", 9);
    body[n] = '\0';
    assert_string_equal(EVAL(F.e, body), ":9997\r\n");
    free(body);
    n = 200000;
    body = malloc(n + 1);
    memset(body, ' ', n);
    body[n] = '\0';
    assert_string_equal(EVAL(F.e, body),
                        "-ERR Error compiling script (new function): the script is 200000 bytes, "
                        "more than the limit of 100000\r\n");
    free(body);
}

static void deep_reply(void **state)
{
    (void)state;
    F.e = engine(NULL);
    const char *r =
        EVAL(F.e, "local t = {} local c = t for i = 1, 100000 do c[1] = {} c = c[1] end "
                  "return t");
    size_t n = strlen(r);
    assert_int_equal(strncmp(r, "*1\r\n*1\r\n", 8), 0);
    assert_string_equal(r + n - 30, "-ERR reached lua stack limit\r\n");
}

/* ---- cache -------------------------------------------------------------------- */

static void cache_accounting(void **state)
{
    (void)state;
    F.e = engine(NULL);
    size_t base = script_memory(F.e);
    assert_int_equal(script_count(F.e), 0);
    assert_string_equal(run(F.e, 2, 3, "SCRIPT", "LOAD", "return 1"),
                        "$40\r\ne0e1f9fabfc9d4800c877a703b823ac0578ff8db\r\n");
    assert_string_equal(EVAL(F.e, "return 2"), ":2\r\n");
    assert_int_equal(script_count(F.e), 2);
    assert_true(script_memory(F.e) > base);
    assert_true(script_vm_memory(F.e) > 0);
    assert_string_equal(run(F.e, 2, 2, "SCRIPT", "FLUSH"), "+OK\r\n");
    assert_int_equal(script_count(F.e), 0);
    assert_int_equal(script_memory(F.e), base);
    assert_int_equal(script_command(F.e, 1, (const char *[]){"GET"}, (size_t[]){3}, 2, NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(redis_recorded_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(resp3_host_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(resp3_script_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_host_replies, setup, teardown),
        cmocka_unit_test(reply_parser_guard_page),
        cmocka_unit_test(reply_parser_malformed),
        cmocka_unit_test(reply_parser_depth),
        cmocka_unit_test_setup_teardown(sandbox_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(cjson_and_bit, setup, teardown),
        cmocka_unit_test_setup_teardown(kill_from_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(unkillable_after_write, setup, teardown),
        cmocka_unit_test_setup_teardown(no_busy_below_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(memory_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(state_reset_keeps_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(gc_stop_undone, setup, teardown),
        cmocka_unit_test_setup_teardown(huge_scripts, setup, teardown),
        cmocka_unit_test_setup_teardown(deep_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(cache_accounting, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
