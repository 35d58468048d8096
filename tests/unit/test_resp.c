/* Unit tests for resp: request parsing (whole, split at every byte, moved
 * between calls, against a guard page, at and over the limits, every protocol
 * error with its exact text) and reply encoding byte for byte.
 *
 * The expected behaviour of odd inputs was taken from redis-server 7.0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "guard_page.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "resp.h"

/* ------------------------------------------------------------ test data */

typedef struct arg {
    const char *s;
    size_t n;
} arg_t;

#define L(lit) lit, sizeof(lit) - 1
#define A(lit)                                                                                     \
    {                                                                                              \
        lit, sizeof(lit) - 1                                                                       \
    }

typedef struct valid_case {
    const char *in;
    size_t len;
    int inline_form; /* arguments live in the scratch buffer */
    int argc;
    arg_t args[6];
} valid_case_t;

/* Each input is exactly one command: no proper prefix of it is complete. */
static const valid_case_t valid_cases[] = {
    {L("*1\r\n$4\r\nPING\r\n"), 0, 1, {A("PING")}},
    {L("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n"), 0, 3, {A("SET"), A("k"), A("value")}},
    {L("*2\r\n$3\r\nGET\r\n$0\r\n\r\n"), 0, 2, {A("GET"), A("")}},
    {L("*0\r\n"), 0, 0, {{0}}},
    {L("*-1\r\n"), 0, 0, {{0}}},
    {L("*-5\r\n"), 0, 0, {{0}}},
    /* redis skips the byte after a count's '\r' and the two after a bulk */
    {L("*1\rX$4\r\nPING\r\n"), 0, 1, {A("PING")}},
    {L("*1\r\n$4\r\nPINGXY"), 0, 1, {A("PING")}},
    {L("*2\r\n$4\r\nECHO\r\n$7\r\na\0b\r\nc\n\r\n"), 0, 2, {A("ECHO"), A("a\0b\r\nc\n")}},
    {L("*1\r\n$2\r\n\r\n\r\n"), 0, 1, {A("\r\n")}},
    {L("*2\r\n$1\r\n*\r\n$1\r\n$\r\n"), 0, 2, {A("*"), A("$")}},
    {L("*1\r\n$10\r\n0123456789\r\n"), 0, 1, {A("0123456789")}},
    /* inline */
    {L("PING\r\n"), 1, 1, {A("PING")}},
    {L("PING\n"), 1, 1, {A("PING")}},
    {L("\r\n"), 1, 0, {{0}}},
    {L("\n"), 1, 0, {{0}}},
    {L("   \t \r\n"), 1, 0, {{0}}},
    {L("PING\r\r\n"), 1, 1, {A("PING")}},
    {L("  SET  k \t v  \r\n"), 1, 3, {A("SET"), A("k"), A("v")}},
    {L("\v\fPING\n"), 1, 1, {A("PING")}},
    {L("ECHO a\rb\n"), 1, 3, {A("ECHO"), A("a"), A("b")}},
    {L("ECHO a\vb\r\n"), 1, 2, {A("ECHO"), A("a\vb")}},
    {L("ECHO \xff\x80\r\n"), 1, 2, {A("ECHO"), A("\xff\x80")}},
};

/* Inline quoting, as sdssplitargs() splits it. */
static const valid_case_t quoting_cases[] = {
    {L("ECHO ab\"cd\"\r\n"), 1, 2, {A("ECHO"), A("abcd")}},
    {L("ECHO \"\\x41\\x4\\q\\n\"\r\n"), 1, 2, {A("ECHO"), A("Ax4q\n")}},
    {L("ECHO \"\\x4G\\xzz\"\r\n"), 1, 2, {A("ECHO"), A("x4Gxzz")}},
    {L("ECHO \"\\xfF\\x00\"\r\n"), 1, 2, {A("ECHO"), A("\xff\0")}},
    {L("ECHO \"\\r\\t\\b\\a\\\\\\\"\"\r\n"), 1, 2, {A("ECHO"), A("\r\t\b\a\\\"")}},
    {L("ECHO 'a\\'b\\n'\r\n"), 1, 2, {A("ECHO"), A("a'b\\n")}},
    {L("ECHO 'a\"b' \"c'd\"\r\n"), 1, 3, {A("ECHO"), A("a\"b"), A("c'd")}},
    {L("ECHO \"\" ''\r\n"), 1, 3, {A("ECHO"), A(""), A("")}},
    {L("ECHO \"a b\"\r\n"), 1, 2, {A("ECHO"), A("a b")}},
    {L("ECHO \"a\"\v\r\n"), 1, 2, {A("ECHO"), A("a")}},
    {L("ECHO \"a\"\tb\r\n"), 1, 3, {A("ECHO"), A("a"), A("b")}},
    {L("ECHO x'y z'\r\n"), 1, 2, {A("ECHO"), A("xy z")}},
    {L("SET \"k\" 'v'\n"), 1, 3, {A("SET"), A("k"), A("v")}},
};

typedef struct error_case {
    const char *in;
    size_t len;
    const char *error;
} error_case_t;

#define E_MB     "Protocol error: invalid multibulk length"
#define E_BULK   "Protocol error: invalid bulk length"
#define E_QUOTES "Protocol error: unbalanced quotes in request"

static const error_case_t error_cases[] = {
    {L("*01\r\n"), E_MB},
    {L("*+1\r\n"), E_MB},
    {L("*\r\n"), E_MB},
    {L("*a\r\n"), E_MB},
    {L("*1 \r\n"), E_MB},
    {L("* 1\r\n"), E_MB},
    {L("*-\r\n"), E_MB},
    {L("*-0\r\n"), E_MB},
    {L("*1.5\r\n"), E_MB},
    {L("*99999999999999999999\r\n"), E_MB},
    {L("*9223372036854775808\r\n"), E_MB},
    {L("*2147483648\r\n"), E_MB},
    {L("*1\r\n$04\r\n"), E_BULK},
    {L("*1\r\n$-1\r\n"), E_BULK},
    {L("*1\r\n$-0\r\n"), E_BULK},
    {L("*1\r\n$\r\n"), E_BULK},
    {L("*1\r\n$+1\r\n"), E_BULK},
    {L("*1\r\n$1 \r\n"), E_BULK},
    {L("*1\r\n$-\r\n"), E_BULK},
    {L("*1\r\n$99999999999999999999\r\n"), E_BULK},
    {L("*1\r\n$536870913\r\n"), E_BULK}, /* default limit: 512mb */
    {L("*1\r\nX\r\n"), "Protocol error: expected '$', got 'X'"},
    {L("*1\r\n\r\n"), "Protocol error: expected '$', got ' '"},
    {L("*1\r\n\n\r\n"), "Protocol error: expected '$', got ' '"},
    {L("*1\r\n\xff\r\n"), "Protocol error: expected '$', got '\xff'"},
    {L("*2\r\n$1\r\na\r\n:1\r\n"), "Protocol error: expected '$', got ':'"},
    {L("*2\r\n$1\r\naXY*1\r\n"), "Protocol error: expected '$', got '*'"},
    {L("ECHO \"a\"b\r\n"), E_QUOTES},
    {L("ECHO \"abc\r\n"), E_QUOTES},
    {L("ECHO 'abc\r\n"), E_QUOTES},
    {L("ECHO 'a'b\r\n"), E_QUOTES},
    {L("ECHO \"abc\\\"\r\n"), E_QUOTES},
    {L("ECHO \"abc\\\r\n"), E_QUOTES},
    {L("ECHO '\r\n"), E_QUOTES},
    {L("\"\n"), E_QUOTES},
};

/* --------------------------------------------------------------- helpers */

static char *dup_bytes(const char *s, size_t n)
{
    char *d = malloc(n ? n : 1);
    assert_non_null(d);
    memcpy(d, s, n);
    return d;
}

static void assert_args(const resp_parser_t *p, const valid_case_t *vc, const char *base,
                        size_t baselen)
{
    assert_int_equal(p->argc, vc->argc);
    for (int i = 0; i < vc->argc; i++) {
        assert_int_equal(p->argl[i], vc->args[i].n);
        assert_memory_equal(p->argv[i], vc->args[i].s, vc->args[i].n);
        int in_data = p->argv[i] >= base && p->argv[i] + p->argl[i] <= base + baselen;
        int in_scratch = p->scratch && p->argv[i] >= p->scratch &&
                         p->argv[i] + p->argl[i] <= p->scratch + p->scratch_cap;
        if (vc->inline_form)
            assert_true(in_scratch);
        else
            assert_true(in_data); /* no copy on the multibulk path */
    }
}

/* Feeds data[0, split) in one buffer, then the whole input in another buffer
 * (the first one freed, so a kept pointer would be a use after free). */
static void check_split(const valid_case_t *vc, size_t split)
{
    resp_parser_t p;
    size_t used = 99;
    resp_parser_init(&p, NULL);
    char *a = dup_bytes(vc->in, split);
    assert_int_equal(resp_parse(&p, a, split, &used), RESP_MORE);
    assert_int_equal(used, 0);
    free(a);
    char *b = dup_bytes(vc->in, vc->len);
    assert_int_equal(resp_parse(&p, b, vc->len, &used), RESP_OK);
    assert_int_equal(used, vc->len);
    assert_args(&p, vc, b, vc->len);
    free(b);
    resp_parser_free(&p);
}

/* Feeds the input one more byte per call, each time from a new address. */
static void check_bytewise(const valid_case_t *vc)
{
    resp_parser_t p;
    size_t used;
    char *prev = NULL;
    resp_parser_init(&p, NULL);
    for (size_t k = 0; k <= vc->len; k++) {
        char *d = dup_bytes(vc->in, k);
        free(prev);
        prev = d;
        int rc = resp_parse(&p, d, k, &used);
        if (k < vc->len) {
            assert_int_equal(rc, RESP_MORE);
            assert_int_equal(used, 0);
        } else {
            assert_int_equal(rc, RESP_OK);
            assert_int_equal(used, vc->len);
            assert_args(&p, vc, d, k);
        }
    }
    free(prev);
    resp_parser_free(&p);
}

static void check_valid(const valid_case_t *vc)
{
    for (size_t split = 0; split < vc->len; split++)
        check_split(vc, split);
    check_bytewise(vc);
}

static const size_t n_valid = sizeof(valid_cases) / sizeof(valid_cases[0]);

/* Feeds the input whole, then one byte at a time: the same error comes, and
 * stays until a reset. */
static void check_error(const error_case_t *ec, const resp_limits_t *limits)
{
    resp_parser_t p;
    size_t used;
    resp_parser_init(&p, limits);
    char *d = dup_bytes(ec->in, ec->len);
    assert_int_equal(resp_parse(&p, d, ec->len, &used), RESP_ERROR);
    assert_int_equal(used, 0);
    assert_string_equal(p.error, ec->error);
    assert_int_equal(resp_parse(&p, d, ec->len, &used), RESP_ERROR); /* sticky */
    assert_string_equal(p.error, ec->error);
    free(d);

    resp_parser_reset(&p);
    int rc = RESP_MORE;
    size_t k;
    for (k = 1; k <= ec->len && rc == RESP_MORE; k++) {
        d = dup_bytes(ec->in, k);
        rc = resp_parse(&p, d, k, &used);
        free(d);
    }
    assert_int_equal(rc, RESP_ERROR);
    assert_string_equal(p.error, ec->error);
    resp_parser_free(&p);
}

/* ----------------------------------------------------------- valid input */

static void test_valid_whole_split_bytewise(void **state)
{
    (void)state;
    for (size_t i = 0; i < n_valid; i++)
        check_valid(&valid_cases[i]);
}

static void test_inline_quoting(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(quoting_cases) / sizeof(quoting_cases[0]); i++)
        check_valid(&quoting_cases[i]);
}

static void test_pipeline(void **state)
{
    (void)state;
    static const char in[] = "*1\r\n$4\r\nPING\r\n"
                             "PING a\r\n"
                             "*0\r\n"
                             "\r\n"
                             "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
                             "*-1\r\n"
                             "*1\r\n$3\r\nfo";
    static const struct {
        int argc;
        const char *first;
    } want[] = {{1, "PING"}, {2, "PING"}, {0, NULL}, {0, NULL}, {2, "GET"}, {0, NULL}};
    resp_parser_t p;
    size_t off = 0, used, len = sizeof(in) - 1;
    resp_parser_init(&p, NULL);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(resp_parse(&p, in + off, len - off, &used), RESP_OK);
        assert_int_equal(p.argc, want[i].argc);
        if (want[i].first) {
            assert_int_equal(p.argl[0], strlen(want[i].first));
            assert_memory_equal(p.argv[0], want[i].first, p.argl[0]);
        }
        off += used;
    }
    assert_int_equal(resp_parse(&p, in + off, len - off, &used), RESP_MORE);
    assert_int_equal(used, 0);
    assert_int_equal(p.want_bytes, 3); /* "o" and CRLF still missing */
    assert_memory_equal(in + off, "*1\r\n$3\r\nfo", len - off);
    resp_parser_free(&p);
}

/* A client's query buffer: the parser sees the same bytes at new addresses as
 * the buffer is compacted and grown between reads. */
static void test_buffer_moves(void **state)
{
    (void)state;
    static const char cmd[] = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$10\r\n0123456789\r\n";
    const size_t n = sizeof(cmd) - 1;
    buf_t in;
    resp_parser_t p;
    size_t used;
    buf_init(&in);
    resp_parser_init(&p, NULL);

    /* one full command, then the first 20 bytes of the next */
    buf_append(&in, cmd, n);
    buf_append(&in, cmd, 20);
    assert_int_equal(resp_parse(&p, buf_head(&in), buf_len(&in), &used), RESP_OK);
    buf_consume(&in, used);
    assert_int_equal(resp_parse(&p, buf_head(&in), buf_len(&in), &used), RESP_MORE);
    const char *before = buf_head(&in);
    /* a big reservation moves the pending bytes to a new, larger block */
    buf_reserve(&in, 1 << 20);
    buf_append(&in, cmd + 20, 10);
    assert_int_equal(resp_parse(&p, buf_head(&in), buf_len(&in), &used), RESP_MORE);
    assert_int_equal(p.want_bytes, n - 30);
    buf_append(&in, cmd + 30, n - 30);
    assert_true(buf_head(&in) != before);
    assert_int_equal(resp_parse(&p, buf_head(&in), buf_len(&in), &used), RESP_OK);
    assert_int_equal(used, n);
    assert_int_equal(p.argc, 3);
    assert_memory_equal(p.argv[2], "0123456789", 10);
    assert_ptr_equal(p.argv[0], buf_head(&in) + 8);
    buf_consume(&in, used);
    assert_int_equal(buf_len(&in), 0);
    resp_parser_free(&p);
    buf_free(&in);
}

static void test_want_bytes(void **state)
{
    (void)state;
    resp_parser_t p;
    size_t used;
    resp_parser_init(&p, NULL);
    assert_int_equal(resp_parse(&p, L("*2\r\n$1\r\na\r\n$100\r\n"), &used), RESP_MORE);
    assert_int_equal(p.want_bytes, 102);
    assert_int_equal(resp_parse(&p, L("*2\r\n$1\r\na\r\n$100\r\nxyz"), &used), RESP_MORE);
    assert_int_equal(p.want_bytes, 99);
    /* waiting for a line, not a bulk: no hint */
    resp_parser_reset(&p);
    assert_int_equal(resp_parse(&p, L("*2\r\n$1"), &used), RESP_MORE);
    assert_int_equal(p.want_bytes, 0);
    resp_parser_reset(&p);
    assert_int_equal(resp_parse(&p, L("GET"), &used), RESP_MORE);
    assert_int_equal(p.want_bytes, 0);
    resp_parser_free(&p);
}

static void test_reset_forgets_partial(void **state)
{
    (void)state;
    resp_parser_t p;
    size_t used;
    resp_parser_init(&p, NULL);
    assert_int_equal(resp_parse(&p, L("*3\r\n$3\r\nSET\r\n"), &used), RESP_MORE);
    resp_parser_reset(&p);
    assert_int_equal(resp_parse(&p, L("PING\r\n"), &used), RESP_OK);
    assert_int_equal(p.argc, 1);
    assert_int_equal(used, 6);
    /* an error is sticky until reset */
    assert_int_equal(resp_parse(&p, L("*x\r\n"), &used), RESP_ERROR);
    assert_int_equal(resp_parse(&p, L("PING\r\n"), &used), RESP_ERROR);
    assert_string_equal(p.error, E_MB);
    resp_parser_reset(&p);
    assert_int_equal(resp_parse(&p, L("PING\r\n"), &used), RESP_OK);
    assert_int_equal(resp_parse(&p, "", 0, &used), RESP_MORE);
    assert_int_equal(resp_parse(&p, NULL, 0, &used), RESP_MORE);
    resp_parser_free(&p);
}

/* One parser, inline commands of growing and shrinking size: the scratch
 * buffer is reused, grown and given back without losing a byte. */
static void test_inline_scratch_reuse(void **state)
{
    (void)state;
    resp_parser_t p;
    size_t used;
    const size_t sizes[] = {0, 1, 5, 6, 7, 100, 150, 199, 3, 1000, 999, 70000, 10, 5000, 4097, 2};
    resp_parser_init(&p, NULL);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t k = sizes[i];
        char *line = malloc(k + 32);
        size_t n = (size_t)sprintf(line, "ECHO \"");
        for (size_t j = 0; j < k; j++)
            line[n++] = (char)('a' + (j * 7 + k) % 26);
        n += (size_t)sprintf(line + n, "\\x41\" 'b'\r\n");
        assert_int_equal(resp_parse(&p, line, n, &used), RESP_OK);
        assert_int_equal(used, n);
        assert_int_equal(p.argc, 3);
        assert_int_equal(p.argl[1], k + 1);
        for (size_t j = 0; j < k; j++)
            assert_int_equal(p.argv[1][j], (char)('a' + (j * 7 + k) % 26));
        assert_int_equal(p.argv[1][k], 'A');
        assert_int_equal(p.argl[2], 1);
        assert_int_equal(p.argv[2][0], 'b');
        free(line);
        /* a big line's scratch is given back by the next command */
        if (i > 0 && sizes[i - 1] == 70000)
            assert_true(resp_parser_mem(&p) < 16 * 1024);
    }
    resp_parser_free(&p);
}

/* --------------------------------------------------------------- errors */

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++)
        check_error(&error_cases[i], NULL);
}

/* Lines over 64KB without their end, and redis's NUL quirk: a NUL before the
 * line end hides it until the limit fails the request. */
static void test_too_big_lines(void **state)
{
    (void)state;
    static const struct {
        const char *head;
        size_t headlen;
        size_t line0; /* where the unfinished line starts: the limit counts from there */
        char fill;
        const char *error;
    } cases[] = {
        {L(""), 0, 'A', "Protocol error: too big inline request"},
        {L("PING\0\r\n"), 0, 'x', "Protocol error: too big inline request"},
        {L("*"), 0, '1', "Protocol error: too big mbulk count string"},
        {L("*1\0\r\n"), 0, 'x', "Protocol error: too big mbulk count string"},
        {L("*1\r\n$"), 4, '1', "Protocol error: too big bulk count string"},
        {L("*1\r\n$1\0\r\n"), 4, 'x', "Protocol error: too big bulk count string"},
        {L("*2\r\n$1\r\na\r\n$"), 11, '2', "Protocol error: too big bulk count string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t at_limit = cases[i].line0 + RESP_INLINE_MAX;
        char *d = malloc(at_limit + 1);
        memcpy(d, cases[i].head, cases[i].headlen);
        memset(d + cases[i].headlen, cases[i].fill, at_limit + 1 - cases[i].headlen);

        resp_parser_t p;
        size_t used;
        resp_parser_init(&p, NULL);
        assert_int_equal(resp_parse(&p, d, at_limit, &used), RESP_MORE);
        assert_int_equal(resp_parse(&p, d, at_limit + 1, &used), RESP_ERROR);
        assert_string_equal(p.error, cases[i].error);

        /* the same, one byte at a time, scanning each byte once */
        resp_parser_reset(&p);
        size_t k;
        int rc = RESP_MORE;
        for (k = 1; k <= at_limit + 1 && rc == RESP_MORE; k++)
            rc = resp_parse(&p, d, k, &used);
        assert_int_equal(rc, RESP_ERROR);
        assert_int_equal(k - 1, at_limit + 1);
        assert_string_equal(p.error, cases[i].error);
        resp_parser_free(&p);
        free(d);
    }
}

/* A NUL before the line end: the line never completes (as in redis). */
static void test_nul_hides_line_end(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
    } cases[] = {
        {L("PING\0\r\nPING\r\n")},
        {L("\0\n")},
        {L("*1\0\r\n$4\r\nPING\r\n")},
        {L("*1\r\n$4\0\r\nPING\r\n")},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        resp_parser_t p;
        size_t used;
        resp_parser_init(&p, NULL);
        assert_int_equal(resp_parse(&p, cases[i].in, cases[i].len, &used), RESP_MORE);
        assert_int_equal(resp_parse(&p, cases[i].in, cases[i].len, &used), RESP_MORE);
        resp_parser_free(&p);
    }
    /* a NUL after the line end is only data */
    resp_parser_t p;
    size_t used;
    resp_parser_init(&p, NULL);
    assert_int_equal(resp_parse(&p, L("PING\r\n\0"), &used), RESP_OK);
    assert_int_equal(used, 6);
    resp_parser_free(&p);
}

/* --------------------------------------------------------------- limits */

/* Before AUTH: at most 10 arguments of at most 16384 bytes, with
 * redis-server's texts; the same input passes once authenticated. */
static void test_unauthenticated_limits(void **state)
{
    (void)state;
    resp_parser_t p;
    size_t used;
    resp_parser_init(&p, NULL);
    p.unauthenticated = 1;
    assert_int_equal(resp_parse(&p, L("*10\r\n"), &used), RESP_MORE);
    resp_parser_reset(&p);
    assert_int_equal(resp_parse(&p, L("*11\r\n"), &used), RESP_ERROR);
    assert_string_equal(p.error, "Protocol error: unauthenticated multibulk length");
    resp_parser_reset(&p);
    assert_int_equal(resp_parse(&p, L("*1\r\n$16384\r\n"), &used), RESP_MORE);
    resp_parser_reset(&p);
    assert_int_equal(resp_parse(&p, L("*1\r\n$16385\r\n"), &used), RESP_ERROR);
    assert_string_equal(p.error, "Protocol error: unauthenticated bulk length");
    resp_parser_reset(&p);
    p.unauthenticated = 0;
    assert_int_equal(resp_parse(&p, L("*11\r\n$16385\r\n"), &used), RESP_MORE);
    resp_parser_free(&p);
}

static void test_limits(void **state)
{
    (void)state;
    const resp_limits_t lim = {.max_bulk_len = 10, .max_multibulk = 3};
    resp_parser_t p;
    size_t used;
    resp_parser_init(&p, &lim);
    assert_int_equal(resp_parse(&p, L("*1\r\n$10\r\n0123456789\r\n"), &used), RESP_OK);
    assert_int_equal(p.argl[0], 10);
    assert_int_equal(resp_parse(&p, L("*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"), &used), RESP_OK);
    assert_int_equal(p.argc, 3);
    resp_parser_free(&p);

    static const error_case_t over[] = {
        {L("*1\r\n$11\r\n"), E_BULK},
        {L("*4\r\n"), E_MB},
        {L("*2\r\n$1\r\na\r\n$11\r\n"), E_BULK},
    };
    for (size_t i = 0; i < sizeof(over) / sizeof(over[0]); i++)
        check_error(&over[i], &lim);

    /* the inline form has no count or length limits of its own, as in redis */
    resp_parser_init(&p, &lim);
    assert_int_equal(resp_parse(&p, L("a b c d e 0123456789abc\r\n"), &used), RESP_OK);
    assert_int_equal(p.argc, 6);
    resp_parser_free(&p);

    /* limits above what an int argc can count are clamped to INT_MAX */
    const resp_limits_t huge = {.max_bulk_len = SIZE_MAX, .max_multibulk = SIZE_MAX};
    resp_parser_init(&p, &huge);
    assert_int_equal(resp_parse(&p, L("*2147483647\r\n$1\r\nx\r\n"), &used), RESP_MORE);
    assert_true(resp_parser_mem(&p) < 64 * 1024); /* slots not taken on the count's word */
    resp_parser_reset(&p);
    assert_int_equal(resp_parse(&p, L("*2147483648\r\n"), &used), RESP_ERROR);
    assert_string_equal(p.error, E_MB);
    resp_parser_reset(&p);
    assert_int_equal(resp_parse(&p, L("*1\r\n$9223372036854775807\r\n"), &used), RESP_ERROR);
    assert_string_equal(p.error, E_BULK);
    resp_parser_free(&p);

    /* default limits: 512mb bulks are fine, one more byte is not */
    resp_parser_init(&p, NULL);
    assert_int_equal(resp_parse(&p, L("*1\r\n$536870912\r\n"), &used), RESP_MORE);
    assert_int_equal(p.want_bytes, 536870914);
    resp_parser_free(&p);
}

/* ----------------------------------------------- a million arguments */

static void test_million_args_in_pieces(void **state)
{
    (void)state;
    const int nargs = 1000000;
    buf_t all;
    buf_init(&all);
    buf_printf(&all, "*%d\r\n", nargs);
    for (int i = 0; i < nargs; i++) {
        char arg[16];
        int n = snprintf(arg, sizeof(arg), "%d", i % 1000);
        buf_printf(&all, "$%d\r\n%s\r\n", n, arg);
    }
    const size_t total = buf_len(&all);

    /* arriving in 1000-byte pieces into a growing query buffer */
    buf_t in;
    resp_parser_t p;
    size_t used = 0;
    int rc = RESP_MORE;
    buf_init(&in);
    resp_parser_init(&p, NULL);
    for (size_t off = 0; off < total; off += 1000) {
        size_t n = total - off < 1000 ? total - off : 1000;
        buf_append(&in, buf_head(&all) + off, n);
        rc = resp_parse(&p, buf_head(&in), buf_len(&in), &used);
        if (off + n < total)
            assert_int_equal(rc, RESP_MORE);
    }
    assert_int_equal(rc, RESP_OK);
    assert_int_equal(used, total);
    assert_int_equal(p.argc, nargs);
    for (int i = 0; i < nargs; i += 99991) {
        char arg[16];
        int n = snprintf(arg, sizeof(arg), "%d", i % 1000);
        assert_int_equal(p.argl[i], (size_t)n);
        assert_memory_equal(p.argv[i], arg, (size_t)n);
    }
    /* 7000 calls over 5MB: a parser that rescanned from the start would take
     * minutes here (its speed is measured by bench/, not asserted) */
    assert_true(resp_parser_mem(&p) >= (size_t)nargs * 3 * sizeof(size_t));

    /* the next command gives back what the huge one took */
    assert_int_equal(resp_parse(&p, L("PING\r\n"), &used), RESP_OK);
    assert_true(resp_parser_mem(&p) < 64 * 1024);
    resp_parser_free(&p);
    buf_free(&in);

    /* and a smaller one, one byte at a time */
    resp_parser_init(&p, NULL);
    const size_t some = 200000;
    for (size_t k = 1; k <= some; k++) {
        rc = resp_parse(&p, buf_head(&all), k, &used);
        assert_int_equal(rc, RESP_MORE);
    }
    assert_int_equal(resp_parse(&p, buf_head(&all), total, &used), RESP_OK);
    assert_int_equal(p.argc, nargs);
    resp_parser_free(&p);
    buf_free(&all);
}

/* ------------------------------------------------------------ guard page */


/* Every prefix of the input, each parsed by a fresh parser and by one that
 * has seen the previous prefix at another address. */
static void guard_check(guard_t *g, const char *in, size_t len)
{
    resp_parser_t fresh, cont;
    size_t used;
    resp_parser_init(&cont, NULL);
    for (size_t k = 0; k <= len; k++) {
        const char *d = guard_place(g, in, k);
        resp_parser_init(&fresh, NULL);
        int a = resp_parse(&fresh, d, k, &used);
        assert_true(used <= k);
        int b = resp_parse(&cont, d, k, &used);
        assert_int_equal(a, b);
        if (a == RESP_OK) {
            assert_int_equal(fresh.argc, cont.argc);
            for (int i = 0; i < cont.argc; i++) {
                assert_int_equal(fresh.argl[i], cont.argl[i]);
                assert_memory_equal(fresh.argv[i], cont.argv[i], cont.argl[i]);
            }
            resp_parser_free(&fresh);
            break;
        }
        if (a == RESP_ERROR)
            assert_string_equal(fresh.error, cont.error);
        resp_parser_free(&fresh);
        if (a == RESP_ERROR)
            break;
    }
    resp_parser_free(&cont);
}

static void test_guard_page(void **state)
{
    (void)state;
    guard_t g;
    guard_init(&g, 1);
    for (size_t i = 0; i < n_valid; i++)
        guard_check(&g, valid_cases[i].in, valid_cases[i].len);
    for (size_t i = 0; i < sizeof(quoting_cases) / sizeof(quoting_cases[0]); i++)
        guard_check(&g, quoting_cases[i].in, quoting_cases[i].len);
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++)
        guard_check(&g, error_cases[i].in, error_cases[i].len);
    /* inputs cut where a parser is tempted to peek ahead */
    static const struct {
        const char *in;
        size_t len;
    } cut[] = {
        {L("*1\r")},     {L("*1\r\n$4\r")},  {L("*1\r\n$4\r\nPING\r")},
        {L("PING\r")},   {L("ECHO \"\\x4")}, {L("ECHO \"\\")},
        {L("ECHO '\\")}, {L("*1\r\n$")},     {L("ECHO \"a\"")},
        {L("*")},        {L("*-")},          {L("*1\r\n$-")},
    };
    for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++)
        guard_check(&g, cut[i].in, cut[i].len);
    guard_free(&g);

    /* a line over the limit, ending at the guard */
    guard_init(&g, RESP_INLINE_MAX + 1);
    char *big = malloc(RESP_INLINE_MAX + 1);
    memset(big, 'x', RESP_INLINE_MAX + 1);
    resp_parser_t p;
    size_t used;
    resp_parser_init(&p, NULL);
    assert_int_equal(
        resp_parse(&p, guard_place(&g, big, RESP_INLINE_MAX + 1), RESP_INLINE_MAX + 1, &used),
        RESP_ERROR);
    resp_parser_free(&p);
    free(big);
    guard_free(&g);
}

/* ---------------------------------------------------------------- replies */

static void assert_buf(buf_t *b, const char *want, size_t n)
{
    if (buf_len(b) != n || memcmp(buf_head(b), want, n) != 0) {
        print_error("got %zu bytes \"%.*s\", want %zu bytes \"%.*s\"\n", buf_len(b),
                    (int)buf_len(b), buf_head(b), n, (int)n, want);
        fail();
    }
    buf_clear(b);
}
#define ASSERT_BUF(b, lit) assert_buf(b, lit, sizeof(lit) - 1)

static void test_reply_scalars(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);

    resp_add_ok(&b);
    ASSERT_BUF(&b, "+OK\r\n");
    resp_add_simple(&b, "PONG");
    ASSERT_BUF(&b, "+PONG\r\n");
    resp_add_simple(&b, "");
    ASSERT_BUF(&b, "+\r\n");
    resp_add_error(&b, "ERR unknown command");
    ASSERT_BUF(&b, "-ERR unknown command\r\n");
    resp_add_error(&b, "ERR bad\r\nthing\n");
    ASSERT_BUF(&b, "-ERR bad  thing\r\n");
    resp_add_errorf(&b, "WRONGTYPE %s %d", "x", 42);
    ASSERT_BUF(&b, "-WRONGTYPE x 42\r\n");
    char longmsg[600];
    memset(longmsg, 'e', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = '\0';
    resp_add_errorf(&b, "ERR %s\n", longmsg);
    assert_int_equal(buf_len(&b), 1 + 4 + 599 + 2);
    assert_memory_equal(buf_head(&b), "-ERR eee", 8);
    assert_memory_equal(buf_head(&b) + buf_len(&b) - 3, "e\r\n", 3);
    buf_clear(&b);

    resp_add_int(&b, 0);
    ASSERT_BUF(&b, ":0\r\n");
    resp_add_int(&b, -1);
    ASSERT_BUF(&b, ":-1\r\n");
    resp_add_int(&b, 1234567);
    ASSERT_BUF(&b, ":1234567\r\n");
    resp_add_int(&b, LLONG_MAX);
    ASSERT_BUF(&b, ":9223372036854775807\r\n");
    resp_add_int(&b, LLONG_MIN);
    ASSERT_BUF(&b, ":-9223372036854775808\r\n");

    resp_add_bulk(&b, "hello", 5);
    ASSERT_BUF(&b, "$5\r\nhello\r\n");
    resp_add_bulk(&b, "", 0);
    ASSERT_BUF(&b, "$0\r\n\r\n");
    resp_add_bulk(&b, NULL, 0);
    ASSERT_BUF(&b, "$0\r\n\r\n");
    resp_add_bulk(&b, "a\0\r\nb", 5);
    ASSERT_BUF(&b, "$5\r\na\0\r\nb\r\n");
    resp_add_bulk_str(&b, "value");
    ASSERT_BUF(&b, "$5\r\nvalue\r\n");
    resp_add_bulk_ll(&b, -42);
    ASSERT_BUF(&b, "$3\r\n-42\r\n");
    resp_add_bulk_ll(&b, LLONG_MIN);
    ASSERT_BUF(&b, "$20\r\n-9223372036854775808\r\n");

    /* big bulk: one reservation, data intact */
    size_t big = 3 << 20;
    char *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)(i * 7);
    resp_add_bulk(&b, data, big);
    assert_int_equal(buf_len(&b), 10 + big + 2);
    assert_memory_equal(buf_head(&b), "$3145728\r\n", 10);
    assert_memory_equal(buf_head(&b) + 10, data, big);
    assert_memory_equal(buf_head(&b) + 10 + big, "\r\n", 2);
    free(data);
    buf_free(&b);
}

/* Hand-formatted integers agree with printf for boundaries and a sweep. */
static void test_reply_int_sweep(void **state)
{
    (void)state;
    buf_t b;
    char want[64];
    buf_init(&b);
    for (int i = 0; i <= 63; i++) {
        long long v = i < 63 ? (long long)(1ULL << i) : LLONG_MAX;
        long long tens = i < 63 ? v / 10 * 10 + 9 : v; /* 9, 19, 99, ... */
        long long vals[] = {v, v - 1, -v, -v + 1, -v - 1, v / 10, tens, LLONG_MIN};
        for (size_t j = 0; j < sizeof(vals) / sizeof(vals[0]); j++) {
            int n = snprintf(want, sizeof(want), ":%lld\r\n", vals[j]);
            resp_add_int(&b, vals[j]);
            assert_buf(&b, want, (size_t)n);
            n = snprintf(want, sizeof(want), "%lld", vals[j]);
            char bulk[80];
            int m = snprintf(bulk, sizeof(bulk), "$%d\r\n%s\r\n", n, want);
            resp_add_bulk_ll(&b, vals[j]);
            assert_buf(&b, bulk, (size_t)m);
        }
    }
    for (long long x = -100000; x <= 100000; x += 7) {
        int n = snprintf(want, sizeof(want), ":%lld\r\n", x);
        resp_add_int(&b, x);
        assert_buf(&b, want, (size_t)n);
    }
    buf_free(&b);
}

static void test_reply_aggregates_both_protocols(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);

    resp_add_null(&b, 2);
    ASSERT_BUF(&b, "$-1\r\n");
    resp_add_null(&b, 3);
    ASSERT_BUF(&b, "_\r\n");
    resp_add_null_array(&b, 2);
    ASSERT_BUF(&b, "*-1\r\n");
    resp_add_null_array(&b, 3);
    ASSERT_BUF(&b, "_\r\n");
    resp_add_array(&b, 0);
    ASSERT_BUF(&b, "*0\r\n");
    resp_add_array(&b, 12345);
    ASSERT_BUF(&b, "*12345\r\n");
    resp_add_map(&b, 2, 3);
    ASSERT_BUF(&b, "*6\r\n");
    resp_add_map(&b, 3, 3);
    ASSERT_BUF(&b, "%3\r\n");
    resp_add_set(&b, 2, 4);
    ASSERT_BUF(&b, "*4\r\n");
    resp_add_set(&b, 3, 4);
    ASSERT_BUF(&b, "~4\r\n");
    resp_add_bool(&b, 2, 1);
    ASSERT_BUF(&b, ":1\r\n");
    resp_add_bool(&b, 2, 0);
    ASSERT_BUF(&b, ":0\r\n");
    resp_add_bool(&b, 3, 1);
    ASSERT_BUF(&b, "#t\r\n");
    resp_add_bool(&b, 3, 0);
    ASSERT_BUF(&b, "#f\r\n");
    resp_add_verbatim(&b, 2, "hello", 5);
    ASSERT_BUF(&b, "$5\r\nhello\r\n");
    resp_add_verbatim(&b, 3, "hello", 5);
    ASSERT_BUF(&b, "=9\r\ntxt:hello\r\n");
    resp_add_verbatim(&b, 3, "", 0);
    ASSERT_BUF(&b, "=4\r\ntxt:\r\n");

    /* a whole reply, written piece after piece */
    resp_add_map(&b, 3, 2);
    resp_add_bulk_str(&b, "server");
    resp_add_bulk_str(&b, "cohort");
    resp_add_bulk_str(&b, "proto");
    resp_add_int(&b, 3);
    ASSERT_BUF(&b, "%2\r\n$6\r\nserver\r\n$6\r\ncohort\r\n$5\r\nproto\r\n:3\r\n");
    buf_free(&b);
}

static void test_reply_double(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    resp_add_double(&b, 3, 1.5);
    ASSERT_BUF(&b, ",1.5\r\n");
    resp_add_double(&b, 2, 1.5);
    ASSERT_BUF(&b, "$3\r\n1.5\r\n");
    resp_add_double(&b, 3, 0.1);
    ASSERT_BUF(&b, ",0.10000000000000001\r\n");
    resp_add_double(&b, 2, 0.1);
    ASSERT_BUF(&b, "$19\r\n0.10000000000000001\r\n");
    resp_add_double(&b, 3, 3.0);
    ASSERT_BUF(&b, ",3\r\n");
    resp_add_double(&b, 3, -2.5e-300);
    ASSERT_BUF(&b, ",-2.5e-300\r\n");
    resp_add_double(&b, 3, 1e-7);
    ASSERT_BUF(&b, ",9.9999999999999995e-08\r\n");
    resp_add_double(&b, 3, 2.0 / 3.0);
    ASSERT_BUF(&b, ",0.66666666666666663\r\n");
    resp_add_double(&b, 2, 123456789012345678.0);
    ASSERT_BUF(&b, "$22\r\n1.2345678901234568e+17\r\n");
    resp_add_double(&b, 3, 1e300);
    ASSERT_BUF(&b, ",1.0000000000000001e+300\r\n");
    resp_add_double(&b, 3, INFINITY);
    ASSERT_BUF(&b, ",inf\r\n");
    resp_add_double(&b, 3, -INFINITY);
    ASSERT_BUF(&b, ",-inf\r\n");
    resp_add_double(&b, 3, NAN);
    ASSERT_BUF(&b, ",nan\r\n");
    resp_add_double(&b, 3, -NAN);
    ASSERT_BUF(&b, ",nan\r\n");
    resp_add_double(&b, 2, INFINITY);
    ASSERT_BUF(&b, "$3\r\ninf\r\n");
    resp_add_double(&b, 2, -INFINITY);
    ASSERT_BUF(&b, "$4\r\n-inf\r\n");
    resp_add_double(&b, 2, NAN);
    ASSERT_BUF(&b, "$3\r\nnan\r\n");
    resp_add_double(&b, 3, -0.0);
    ASSERT_BUF(&b, ",-0\r\n");
    buf_free(&b);
}

/* Replies are parsed back by a RESP reader: a request encoded as an array of
 * bulks is a valid multibulk request. */
static void test_reply_roundtrip(void **state)
{
    (void)state;
    buf_t b;
    resp_parser_t p;
    size_t used;
    buf_init(&b);
    resp_add_array(&b, 3);
    resp_add_bulk_str(&b, "SET");
    resp_add_bulk(&b, "k\0\r\n", 4);
    resp_add_bulk_ll(&b, -7);
    resp_parser_init(&p, NULL);
    assert_int_equal(resp_parse(&p, buf_head(&b), buf_len(&b), &used), RESP_OK);
    assert_int_equal(used, buf_len(&b));
    assert_int_equal(p.argc, 3);
    assert_memory_equal(p.argv[1], "k\0\r\n", 4);
    assert_memory_equal(p.argv[2], "-7", 2);
    resp_parser_free(&p);
    buf_free(&b);
}

/* resp_format_ll writes what printf's %lld writes, at the limits too. */
static void test_format_ll(void **state)
{
    (void)state;
    static const long long vals[] = {0,         1,         -1,           9,        10,
                                     99,        100,       -100,         12345678, 9999999999LL,
                                     LLONG_MAX, LLONG_MIN, LLONG_MIN + 1};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        char got[32], want[32];
        size_t n = resp_format_ll(got, vals[i]);
        int m = snprintf(want, sizeof(want), "%lld", vals[i]);
        assert_int_equal(n, (size_t)m);
        assert_memory_equal(got, want, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_whole_split_bytewise),
        cmocka_unit_test(test_inline_quoting),
        cmocka_unit_test(test_format_ll),
        cmocka_unit_test(test_inline_scratch_reuse),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_buffer_moves),
        cmocka_unit_test(test_want_bytes),
        cmocka_unit_test(test_reset_forgets_partial),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_too_big_lines),
        cmocka_unit_test(test_nul_hides_line_end),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_unauthenticated_limits),
        cmocka_unit_test(test_million_args_in_pieces),
        cmocka_unit_test(test_guard_page),
        cmocka_unit_test(test_reply_scalars),
        cmocka_unit_test(test_reply_int_sweep),
        cmocka_unit_test(test_reply_aggregates_both_protocols),
        cmocka_unit_test(test_reply_double),
        cmocka_unit_test(test_reply_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
