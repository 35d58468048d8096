/* resp: RESP request parsing and reply encoding; see resp.h.
 *
 * Owns: the byte-level grammar of client requests (multibulk and inline, with
 * redis-server 7's limits, quirks and error texts) and of every reply type.
 * Never: allocates per argument on the multibulk path, reads a byte at or past
 * `len`, keeps a pointer into the caller's buffer across calls (only offsets),
 * or touches the network.
 *
 * Parser states (p->kind, p->nargs, p->bulklen) and the function that leaves
 * each of them:
 *
 *   IDLE       kind 0             first byte '*' -> MB_COUNT, else INLINE
 *                                 (resp_parse)
 *   MB_COUNT   kind '*', nargs<0  "*N\r?" line -> MB_HEAD, or OK when N <= 0
 *                                 (parse_multibulk)
 *   MB_HEAD    nargs>=0, bulklen<0  "$L\r?" line -> MB_BODY (parse_multibulk)
 *   MB_BODY    bulklen>=0         L+2 bytes -> MB_HEAD, or OK after the last
 *                                 argument (parse_multibulk)
 *   INLINE     kind 'i'           a line up to '\n' -> OK (parse_inline)
 *   FAILED     kind 'e'           sticky until resp_parser_reset()
 *
 * OK returns to IDLE by itself; any error goes to FAILED.
 *
 * Invariants between calls:
 *   1. pos is an offset from the first byte of the command, and every byte
 *      before pos has been checked; a later call never looks at them again.
 *   2. pos <= scan, or scan == SCAN_BLOCKED; bytes in [pos, scan) hold no
 *      line terminator, so a line arriving a byte at a time is scanned once.
 *   3. argc <= nargs and argc <= cap; offs[i], lens[i] (i < argc) describe the
 *      arguments read so far as offsets, never as pointers.
 *
 * Compatibility notes (each checked against redis-server 7.0):
 *   - redis looks for line ends with strchr(), so a NUL byte before the end of
 *     a count line or an inline line hides the end for good; the request then
 *     waits until the 64KB limit fails it. We do the same (SCAN_BLOCKED).
 *   - a count line ends at '\r' and the byte after it is skipped unchecked;
 *     the two bytes after a bulk's data are skipped unchecked too.
 *   - "*0" and any negative count ("*-1", "*-5") are empty commands.
 *   - numbers follow redis's string2ll: no sign '+', no leading zeros, no
 *     spaces, at most 20 characters.
 *   - an error text shows '\r' and '\n' as spaces, as addReplyErrorFormat.
 */
#include "resp.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

enum {
    KIND_NONE = 0,
    KIND_MULTIBULK = '*',
    KIND_INLINE = 'i',
    KIND_FAILED = 'e',
};

#define SCAN_BLOCKED     SIZE_MAX                    /* a NUL hides the line end (see above) */
#define LONG_STR_SIZE    21                          /* redis: numbers have at most 20 characters */
#define ARGS_FIRST       16                          /* first argument slots of an inline command */
#define ARGS_PREALLOC    1024                        /* most slots reserved on a count's say-so */
#define ARGS_KEEP        1024                        /* slots kept between commands */
#define SCRATCH_KEEP     4096                        /* scratch bytes kept between commands */
#define DEFAULT_MAX_BULK ((size_t)512 * 1024 * 1024) /* redis proto-max-bulk-len */

/* ---------------------------------------------------------------- parsing */

void resp_parser_init(resp_parser_t *p, const resp_limits_t *limits)
{
    memset(p, 0, sizeof(*p));
    if (limits)
        p->limits = *limits;
    else {
        p->limits.max_bulk_len = DEFAULT_MAX_BULK;
        p->limits.max_multibulk = INT_MAX;
    }
    /* argc is an int; bulklen + 2 must not overflow. */
    if (p->limits.max_multibulk > INT_MAX)
        p->limits.max_multibulk = INT_MAX;
    if (p->limits.max_bulk_len > (size_t)LLONG_MAX / 2)
        p->limits.max_bulk_len = (size_t)LLONG_MAX / 2;
    resp_parser_reset(p);
}

static void release_args(resp_parser_t *p)
{
    free(p->offs);
    free(p->lens);
    free(p->argv);
    p->offs = NULL;
    p->lens = NULL;
    p->argv = NULL;
    p->argl = NULL;
    p->cap = 0;
}

void resp_parser_free(resp_parser_t *p)
{
    release_args(p);
    free(p->scratch);
    p->scratch = NULL;
    p->scratch_cap = 0;
    p->argc = 0;
}

void resp_parser_reset(resp_parser_t *p)
{
    p->kind = KIND_NONE;
    p->pos = 0;
    p->scan = 0;
    p->nargs = -1;
    p->bulklen = -1;
    p->want_bytes = 0;
    p->error[0] = '\0';
}

size_t resp_parser_mem(const resp_parser_t *p)
{
    return mem_usable(p->offs) + mem_usable(p->lens) + mem_usable(p->argv) + mem_usable(p->scratch);
}

/* Makes room for at least `need` arguments, growing by doubling but never
 * past `most` (the announced count, when known). */
static void reserve_args(resp_parser_t *p, size_t need, size_t most)
{
    if (need <= p->cap)
        return;
    size_t cap = p->cap ? p->cap * 2 : ARGS_FIRST;
    if (cap > most)
        cap = most;
    if (cap < need)
        cap = need;
    p->offs = xrealloc(p->offs, cap * sizeof(*p->offs));
    p->lens = xrealloc(p->lens, cap * sizeof(*p->lens));
    p->argv = xrealloc(p->argv, cap * sizeof(*p->argv));
    p->cap = cap;
}

/* Enters FAILED with the text redis would send after "-ERR ". Returns
 * RESP_ERROR. */
static int fail(resp_parser_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(resp_parser_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->error, sizeof(p->error), fmt, ap);
    va_end(ap);
    for (char *c = p->error; *c; c++)
        if (*c == '\r' || *c == '\n')
            *c = ' ';
    p->kind = KIND_FAILED;
    p->want_bytes = 0;
    return RESP_ERROR;
}

/* Looks for the end of the line starting at p->pos: the first `term` byte,
 * unless a NUL comes first. Returns 1 with its offset in *at, or 0 when the
 * line is not complete (yet, or ever: SCAN_BLOCKED). Scans each byte once. */
static int find_line_end(resp_parser_t *p, const char *data, size_t len, char term, size_t *at)
{
    if (p->scan == SCAN_BLOCKED)
        return 0;
    size_t from = p->scan > p->pos ? p->scan : p->pos;
    if (from >= len)
        return 0;
    const char *t = memchr(data + from, term, len - from);
    size_t end = t ? (size_t)(t - data) : len;
    if (memchr(data + from, '\0', end - from)) {
        p->scan = SCAN_BLOCKED;
        return 0;
    }
    p->scan = end;
    if (!t)
        return 0;
    *at = end;
    return 1;
}

/* redis's string2ll: an optional '-', then "0" alone or a digit 1-9 followed
 * by digits, within long long, in fewer than LONG_STR_SIZE characters.
 * Returns 1 with the value in *out, or 0. */
static int parse_ll(const char *s, size_t n, long long *out)
{
    size_t i = 0;
    int neg = 0;
    unsigned long long v;

    if (n == 0 || n >= LONG_STR_SIZE)
        return 0;
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return 1;
    }
    if (s[0] == '-') {
        neg = 1;
        if (++i == n)
            return 0;
    }
    if (s[i] < '1' || s[i] > '9')
        return 0;
    v = (unsigned long long)(s[i++] - '0');
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return 0;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX)
            return 0;
        *out = (long long)v;
    }
    return 1;
}

/* Publishes the command's arguments (offsets made pointers into base) and
 * returns the parser to IDLE. Returns RESP_OK. */
static int finish(resp_parser_t *p, const char *base, int argc, size_t *consumed)
{
    for (int i = 0; i < argc; i++)
        p->argv[i] = base + p->offs[i];
    p->argc = argc;
    p->argl = p->lens;
    *consumed = p->pos;
    resp_parser_reset(p);
    return RESP_OK;
}

static int parse_multibulk(resp_parser_t *p, const char *data, size_t len, size_t *consumed)
{
    size_t at;
    long long ll;

    if (p->nargs < 0) {
        if (!find_line_end(p, data, len, '\r', &at)) {
            if (len - p->pos > RESP_INLINE_MAX)
                return fail(p, "Protocol error: too big mbulk count string");
            return RESP_MORE;
        }
        if (at + 1 >= len) /* the byte after '\r' is skipped, not checked */
            return RESP_MORE;
        assert(data[p->pos] == '*');
        if (!parse_ll(data + p->pos + 1, at - p->pos - 1, &ll) ||
            (ll > 0 && (unsigned long long)ll > p->limits.max_multibulk))
            return fail(p, "Protocol error: invalid multibulk length");
        if (p->unauthenticated && ll > RESP_UNAUTH_MULTIBULK)
            return fail(p, "Protocol error: unauthenticated multibulk length");
        p->pos = p->scan = at + 2;
        if (ll <= 0)
            return finish(p, data, 0, consumed);
        p->nargs = ll;
        p->argc = 0;
        reserve_args(p, ll < ARGS_PREALLOC ? (size_t)ll : ARGS_PREALLOC, (size_t)ll);
    }

    while (p->argc < p->nargs) {
        if (p->bulklen < 0) {
            if (!find_line_end(p, data, len, '\r', &at)) {
                if (len - p->pos > RESP_INLINE_MAX)
                    return fail(p, "Protocol error: too big bulk count string");
                return RESP_MORE;
            }
            if (at + 1 >= len)
                return RESP_MORE;
            if (data[p->pos] != '$')
                return fail(p, "Protocol error: expected '$', got '%c'", data[p->pos]);
            if (!parse_ll(data + p->pos + 1, at - p->pos - 1, &ll) || ll < 0 ||
                (unsigned long long)ll > p->limits.max_bulk_len)
                return fail(p, "Protocol error: invalid bulk length");
            if (p->unauthenticated && ll > RESP_UNAUTH_BULK)
                return fail(p, "Protocol error: unauthenticated bulk length");
            p->pos = p->scan = at + 2;
            p->bulklen = ll;
        }
        size_t need = (size_t)p->bulklen + 2; /* the data, then two unchecked bytes */
        if (len - p->pos < need) {
            p->want_bytes = need - (len - p->pos);
            return RESP_MORE;
        }
        reserve_args(p, (size_t)p->argc + 1, (size_t)p->nargs);
        p->offs[p->argc] = p->pos;
        p->lens[p->argc] = (size_t)p->bulklen;
        p->argc++;
        p->pos = p->scan = p->pos + need;
        p->bulklen = -1;
    }
    return finish(p, data, p->argc, consumed);
}

static int is_space(unsigned char c) /* isspace() in the C locale */
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int hex_val(unsigned char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* Splits line[0, n) (which holds no NUL) into arguments exactly as redis's
 * sdssplitargs() does, writing unescaped bytes into p->scratch and their
 * offsets into p->offs/p->lens. Returns the argument count, or -1 on
 * unbalanced quotes. */
static int split_args(resp_parser_t *p, const unsigned char *line, size_t n)
{
/* The byte at i, or 0 past the end (sdssplitargs reads a C string). */
#define AT(i) ((i) < n ? line[i] : 0)
    size_t i = 0, w = 0;
    int argc = 0;

    for (;;) {
        while (i < n && is_space(line[i]))
            i++;
        if (i >= n)
            return argc;
        size_t start = w;
        int inq = 0, insq = 0, done = 0;
        while (!done) {
            unsigned char c = AT(i);
            if (inq) {
                if (c == '\\' && AT(i + 1) == 'x' && is_hex(AT(i + 2)) && is_hex(AT(i + 3))) {
                    p->scratch[w++] = (char)(hex_val(AT(i + 2)) * 16 + hex_val(AT(i + 3)));
                    i += 3;
                } else if (c == '\\' && AT(i + 1)) {
                    static const char esc[256] = {
                        ['n'] = '\n', ['r'] = '\r', ['t'] = '\t', ['b'] = '\b', ['a'] = '\a'};
                    i++;
                    p->scratch[w++] = esc[line[i]] ? esc[line[i]] : (char)line[i];
                } else if (c == '"') {
                    if (AT(i + 1) && !is_space(AT(i + 1)))
                        return -1; /* a closing quote must end the argument */
                    done = 1;
                } else if (!c) {
                    return -1;
                } else {
                    p->scratch[w++] = (char)c;
                }
            } else if (insq) {
                if (c == '\\' && AT(i + 1) == '\'') {
                    i++;
                    p->scratch[w++] = '\'';
                } else if (c == '\'') {
                    if (AT(i + 1) && !is_space(AT(i + 1)))
                        return -1;
                    done = 1;
                } else if (!c) {
                    return -1;
                } else {
                    p->scratch[w++] = (char)c;
                }
            } else {
                switch (c) {
                case ' ':
                case '\n':
                case '\r':
                case '\t':
                case '\0':
                    done = 1;
                    break;
                case '"':
                    inq = 1;
                    break;
                case '\'':
                    insq = 1;
                    break;
                default:
                    p->scratch[w++] = (char)c;
                    break;
                }
            }
            if (i < n)
                i++;
        }
        reserve_args(p, (size_t)argc + 1, SIZE_MAX);
        p->offs[argc] = start;
        p->lens[argc] = w - start;
        argc++;
    }
#undef AT
}

static int parse_inline(resp_parser_t *p, const char *data, size_t len, size_t *consumed)
{
    size_t at;

    if (!find_line_end(p, data, len, '\n', &at)) {
        if (len > RESP_INLINE_MAX)
            return fail(p, "Protocol error: too big inline request");
        return RESP_MORE;
    }
    size_t n = at;
    if (n > 0 && data[n - 1] == '\r')
        n--;
    if (p->scratch_cap < n) {
        free(p->scratch);
        p->scratch = xmalloc(n);
        p->scratch_cap = n;
    }
    int argc = split_args(p, (const unsigned char *)data, n);
    if (argc < 0)
        return fail(p, "Protocol error: unbalanced quotes in request");
    p->pos = at + 1;
    return finish(p, p->scratch, argc, consumed);
}

int resp_parse(resp_parser_t *p, const char *data, size_t len, size_t *consumed)
{
    *consumed = 0;
    p->want_bytes = 0;
    if (p->kind == KIND_FAILED)
        return RESP_ERROR;
    if (p->kind == KIND_NONE) {
        if (len == 0)
            return RESP_MORE;
        /* The previous command's argv is no longer promised: drop what a
         * huge one left behind. */
        if (p->cap > ARGS_KEEP)
            release_args(p);
        if (p->scratch_cap > SCRATCH_KEEP) {
            free(p->scratch);
            p->scratch = NULL;
            p->scratch_cap = 0;
        }
        p->argc = 0;
        p->kind = data[0] == '*' ? KIND_MULTIBULK : KIND_INLINE;
    }
    assert(p->pos <= len);
    if (p->pos > len) /* the caller lost bytes it had shown us */
        return fail(p, "Protocol error: request buffer shrank");
    if (p->kind == KIND_MULTIBULK)
        return parse_multibulk(p, data, len, consumed);
    return parse_inline(p, data, len, consumed);
}

/* --------------------------------------------------------------- replies */

static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

static unsigned digits10(unsigned long long v)
{
    unsigned n = 1;
    for (;;) {
        if (v < 10)
            return n;
        if (v < 100)
            return n + 1;
        if (v < 1000)
            return n + 2;
        if (v < 10000)
            return n + 3;
        v /= 10000;
        n += 4;
    }
}

/* Writes v in decimal at dst (at most 20 bytes), two digits a step from the
 * end. Returns the end. */
static char *put_u64(char *dst, unsigned long long v)
{
    char *end = dst + digits10(v);
    char *w = end;
    while (v >= 100) {
        unsigned i = (unsigned)(v % 100) * 2;
        v /= 100;
        *--w = digit_pairs[i + 1];
        *--w = digit_pairs[i];
    }
    if (v >= 10) {
        *--w = digit_pairs[v * 2 + 1];
        *--w = digit_pairs[v * 2];
    } else {
        *--w = (char)('0' + v);
    }
    return end;
}

/* Writes v in decimal at dst (at most 20 bytes). Returns the end. */
static char *put_ll(char *dst, long long v)
{
    if (v < 0) {
        *dst++ = '-';
        return put_u64(dst, 0ULL - (unsigned long long)v);
    }
    return put_u64(dst, (unsigned long long)v);
}

size_t resp_format_ll(char *dst, long long v)
{
    return (size_t)(put_ll(dst, v) - dst);
}

/* Appends "<prefix><v>\r\n". */
static void add_header(buf_t *b, char prefix, long long v)
{
    char *d = buf_reserve(b, 24);
    char *w = d;
    *w++ = prefix;
    w = put_ll(w, v);
    *w++ = '\r';
    *w++ = '\n';
    buf_commit(b, (size_t)(w - d));
}

/* Appends "<prefix><s>\r\n". */
static void add_line(buf_t *b, char prefix, const char *s, size_t n)
{
    char *d = buf_reserve(b, n + 3);
    d[0] = prefix;
    memcpy(d + 1, s, n);
    d[n + 1] = '\r';
    d[n + 2] = '\n';
    buf_commit(b, n + 3);
}

void resp_add_simple(buf_t *b, const char *s)
{
    add_line(b, '+', s, strlen(s));
}

void resp_add_ok(buf_t *b)
{
    buf_append(b, "+OK\r\n", 5);
}

/* Appends "-<s>\r\n", with trailing CR/LF dropped and inner ones shown as
 * spaces (as redis does) so the reply stays one line. */
static void add_error(buf_t *b, const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    char *d = buf_reserve(b, n + 3);
    d[0] = '-';
    for (size_t i = 0; i < n; i++)
        d[i + 1] = (s[i] == '\r' || s[i] == '\n') ? ' ' : s[i];
    d[n + 1] = '\r';
    d[n + 2] = '\n';
    buf_commit(b, n + 3);
}

void resp_add_error(buf_t *b, const char *s)
{
    add_error(b, s, strlen(s));
}

void resp_add_errorf(buf_t *b, const char *fmt, ...)
{
    char small[256];
    char *s = small;
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        add_error(b, "ERR", 3);
        return;
    }
    if ((size_t)n >= sizeof(small)) {
        s = xmalloc((size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    add_error(b, s, (size_t)n);
    if (s != small)
        free(s);
}

void resp_add_int(buf_t *b, long long v)
{
    add_header(b, ':', v);
}

void resp_add_bulk(buf_t *b, const void *p, size_t n)
{
    char *d = buf_reserve(b, n + 25); /* '$', 20 digits, two CRLFs */
    char *w = d;
    *w++ = '$';
    w = put_u64(w, n);
    *w++ = '\r';
    *w++ = '\n';
    if (n)
        memcpy(w, p, n);
    w += n;
    *w++ = '\r';
    *w++ = '\n';
    buf_commit(b, (size_t)(w - d));
}

void resp_add_bulk_str(buf_t *b, const char *s)
{
    resp_add_bulk(b, s, strlen(s));
}

void resp_add_bulk_ll(buf_t *b, long long v)
{
    char num[21];
    size_t n = (size_t)(put_ll(num, v) - num);
    resp_add_bulk(b, num, n);
}

void resp_add_null(buf_t *b, int proto)
{
    if (proto >= 3)
        buf_append(b, "_\r\n", 3);
    else
        buf_append(b, "$-1\r\n", 5);
}

void resp_add_null_array(buf_t *b, int proto)
{
    if (proto >= 3)
        buf_append(b, "_\r\n", 3);
    else
        buf_append(b, "*-1\r\n", 5);
}

void resp_add_array(buf_t *b, size_t n)
{
    add_header(b, '*', (long long)n);
}

void resp_add_map(buf_t *b, int proto, size_t pairs)
{
    if (proto >= 3)
        add_header(b, '%', (long long)pairs);
    else
        add_header(b, '*', (long long)pairs * 2);
}

void resp_add_set(buf_t *b, int proto, size_t n)
{
    add_header(b, proto >= 3 ? '~' : '*', (long long)n);
}

void resp_add_double(buf_t *b, int proto, double v)
{
    char num[64];
    int n;

    if (isinf(v))
        n = snprintf(num, sizeof(num), "%s", v > 0 ? "inf" : "-inf");
    else if (isnan(v))
        n = snprintf(num, sizeof(num), "nan");
    else
        n = snprintf(num, sizeof(num), "%.17g", v);
    if (proto >= 3)
        add_line(b, ',', num, (size_t)n);
    else
        resp_add_bulk(b, num, (size_t)n);
}

void resp_add_bool(buf_t *b, int proto, int v)
{
    if (proto >= 3)
        buf_append(b, v ? "#t\r\n" : "#f\r\n", 4);
    else
        buf_append(b, v ? ":1\r\n" : ":0\r\n", 4);
}

void resp_add_verbatim(buf_t *b, int proto, const char *p, size_t n)
{
    if (proto < 3) {
        resp_add_bulk(b, p, n);
        return;
    }
    char *d = buf_reserve(b, n + 33); /* '=', 20 digits, CRLF, "txt:", CRLF */
    char *w = d;
    *w++ = '=';
    w = put_u64(w, (unsigned long long)n + 4);
    memcpy(w, "\r\ntxt:", 6);
    w += 6;
    if (n)
        memcpy(w, p, n);
    w += n;
    *w++ = '\r';
    *w++ = '\n';
    buf_commit(b, (size_t)(w - d));
}
