/* script_reply: a bounded parser for one RESP2/RESP3 reply (see
 * script_reply.h for the invariants and the tests that check them).
 * Never reads outside [data, data + len) and never recurses past max_depth. */
#include "script_reply.h"

#include <stdlib.h>
#include <string.h>

/* Finds the CRLF ending the line that starts at p->p; returns a pointer to
 * its '\r', or NULL (and marks the parser failed) when there is none. */
static const char *line_end(sreply_parser_t *p)
{
    const char *s = p->p;
    while (s + 1 < p->end) {
        const char *cr = memchr(s, '\r', (size_t)(p->end - s - 1));
        if (!cr)
            break;
        if (cr[1] == '\n')
            return cr;
        s = cr + 1;
    }
    p->failed = 1;
    return NULL;
}

/* Parses a signed decimal without overflow; returns 0, or -1 if [s, e) is
 * not one. */
static int parse_ll(const char *s, const char *e, long long *out)
{
    int neg = 0;
    unsigned long long v = 0;
    if (s < e && *s == '-') {
        neg = 1;
        s++;
    }
    if (s == e || e - s > 19)
        return -1;
    for (; s < e; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (unsigned long long)(*s - '0');
    }
    if (v > (unsigned long long)9223372036854775807LL + (unsigned long long)neg)
        return -1;
    *out = neg ? (long long)(0 - v) : (long long)v;
    return 0;
}

/* Reads the header line of the current value (type byte already at p->p);
 * sets *s and *e to the text after the type byte and moves past the CRLF.
 * Returns 0 or -1. */
static int header(sreply_parser_t *p, const char **s, const char **e)
{
    const char *cr = line_end(p);
    if (!cr)
        return -1;
    *s = p->p + 1;
    *e = cr;
    p->p = cr + 2;
    return 0;
}

/* Reads n payload bytes and their CRLF; returns a pointer to them or NULL. */
static const char *payload(sreply_parser_t *p, long long n)
{
    if (n < 0 || (unsigned long long)n > (size_t)(p->end - p->p) ||
        (size_t)(p->end - p->p) - (size_t)n < 2) {
        p->failed = 1;
        return NULL;
    }
    const char *d = p->p;
    if (d[n] != '\r' || d[n + 1] != '\n') {
        p->failed = 1;
        return NULL;
    }
    p->p = d + n + 2;
    return d;
}

static int count(sreply_parser_t *p, const char *s, const char *e, long long *n)
{
    if (parse_ll(s, e, n) < 0 || *n < -1) {
        p->failed = 1;
        return -1;
    }
    return 0;
}

static void container(sreply_parser_t *p, void *ctx, char type, long long n)
{
    if (n > (p->end - p->p) / 3) { /* each element needs at least 3 bytes */
        p->failed = 1;
        return;
    }
    if (++p->depth > p->max_depth) {
        p->failed = 1;
        return;
    }
    size_t un = (size_t)n;
    int call = p->cb && ctx;
    if (call && type == '*')
        p->cb->array(p, ctx, un);
    else if (call && type == '~')
        p->cb->set(p, ctx, un);
    else if (call && type == '%')
        p->cb->map(p, ctx, un);
    else {
        size_t items = type == '%' ? un * 2 : un;
        for (size_t i = 0; i < items && !p->failed; i++)
            sreply_next(p, NULL);
    }
    p->depth--;
}

static void attribute(sreply_parser_t *p, void *ctx, long long n)
{
    if (n < 0 || n > (p->end - p->p) / 6 || ++p->depth > p->max_depth) {
        p->failed = 1;
        return;
    }
    for (long long i = 0; i < n * 2 && !p->failed; i++)
        sreply_next(p, NULL);
    p->depth--;
    if (!p->failed)
        sreply_next(p, ctx);
}

static void scalar_line(sreply_parser_t *p, void *ctx, char type, const char *s, const char *e)
{
    const sreply_cb_t *cb = ctx ? p->cb : NULL;
    long long v;
    size_t n = (size_t)(e - s);

    switch (type) {
    case '+':
        if (cb)
            cb->status(ctx, s, n);
        return;
    case '-':
        if (cb)
            cb->error(ctx, s, n);
        return;
    case ':':
        if (parse_ll(s, e, &v) < 0) {
            p->failed = 1;
            return;
        }
        if (cb)
            cb->integer(ctx, v);
        return;
    case '_':
        if (n != 0) {
            p->failed = 1;
            return;
        }
        if (cb)
            cb->null(ctx);
        return;
    case '#':
        if (n != 1 || (*s != 't' && *s != 'f')) {
            p->failed = 1;
            return;
        }
        if (cb)
            cb->boolean(ctx, *s == 't');
        return;
    case '(':
        if (cb)
            cb->bignum(ctx, s, n);
        return;
    case ',': {
        char tmp[64];
        char *endp;
        if (n == 0 || n >= sizeof(tmp)) {
            p->failed = 1;
            return;
        }
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        double d = strtod(tmp, &endp);
        if (endp != tmp + n) {
            p->failed = 1;
            return;
        }
        if (cb)
            cb->dbl(ctx, d);
        return;
    }
    default:
        p->failed = 1;
    }
}

static void bulkish(sreply_parser_t *p, void *ctx, char type, long long n)
{
    const sreply_cb_t *cb = ctx ? p->cb : NULL;
    if (n == -1 && type == '$') {
        if (cb)
            cb->null_bulk(ctx);
        return;
    }
    const char *d = payload(p, n);
    if (!d)
        return;
    if (type == '$') {
        if (cb)
            cb->bulk(ctx, d, (size_t)n);
    } else if (type == '!') {
        if (cb)
            cb->error(ctx, d, (size_t)n);
    } else { /* '=' */
        if (n < 4 || d[3] != ':') {
            p->failed = 1;
            return;
        }
        if (cb)
            cb->verbatim(ctx, d, d + 4, (size_t)n - 4);
    }
}

void sreply_next(sreply_parser_t *p, void *ctx)
{
    const char *s, *e;
    long long n;

    if (p->failed)
        return;
    if (p->p >= p->end) {
        p->failed = 1;
        return;
    }
    char type = *p->p;
    if (!strchr("+-:$*_,#(=~%|!", type) || type == '\0') {
        p->failed = 1;
        return;
    }
    if (header(p, &s, &e) < 0)
        return;
    switch (type) {
    case '$':
    case '=':
    case '!':
        if (count(p, s, e, &n) == 0)
            bulkish(p, ctx, type, n);
        return;
    case '*':
    case '~':
    case '%':
        if (count(p, s, e, &n) < 0)
            return;
        if (n == -1) {
            if (type != '*') {
                p->failed = 1;
                return;
            }
            if (ctx && p->cb)
                p->cb->null_array(ctx);
            return;
        }
        container(p, ctx, type, n);
        return;
    case '|':
        if (count(p, s, e, &n) == 0)
            attribute(p, ctx, n);
        return;
    default:
        scalar_line(p, ctx, type, s, e);
    }
}

long sreply_check(const char *data, size_t len, int max_depth)
{
    return sreply_parse(data, len, max_depth, NULL, NULL);
}

long sreply_parse(const char *data, size_t len, int max_depth, const sreply_cb_t *cb, void *ctx)
{
    if (!data || len == 0)
        return -1;
    sreply_parser_t p = {data, data + len, 0, max_depth, cb, 0};
    sreply_next(&p, ctx);
    return p.failed ? -1 : (long)(p.p - data);
}
