/* script_reply: a bounded parser for one RESP2/RESP3 *reply*, as the host
 * appends it after running a command for a script.
 *
 * Owns: nothing; it reads a caller's bytes and calls back per value.
 * Never: reads past data + len, trusts a length it has not checked against
 * what is left, recurses deeper than its max_depth, or allocates.
 *
 * Invariants (checked by tests/unit/test_script.c, test "reply_parser_*"):
 *  1. Every byte read is inside [data, data + len) (reply_parser_guard_page:
 *     inputs end at a PROT_NONE page).
 *  2. A truncated, unknown-type or otherwise malformed reply yields -1 and no
 *     callback is made by sreply_check (reply_parser_malformed).
 *  3. Nesting deeper than max_depth is an error, not a deeper C stack
 *     (reply_parser_depth).
 * Types accepted: + - : $ * (RESP2) and _ , # ( = ~ % | ! (RESP3; '|'
 * attributes are skipped, as redis-server's script engine does). '>' pushes
 * are refused: a script's fake client never receives them. */
#ifndef COHORT_SCRIPT_REPLY_H
#define COHORT_SCRIPT_REPLY_H

#include <stddef.h>

typedef struct sreply_parser sreply_parser_t;

/* One callback per value. Containers get the parser and must call
 * sreply_next() once per element (twice per map pair), passing their ctx. */
typedef struct sreply_cb {
    void (*status)(void *ctx, const char *s, size_t n);
    void (*error)(void *ctx, const char *s, size_t n);
    void (*integer)(void *ctx, long long v);
    void (*bulk)(void *ctx, const char *s, size_t n);
    void (*null_bulk)(void *ctx);  /* $-1 */
    void (*null_array)(void *ctx); /* *-1 */
    void (*null)(void *ctx);       /* _ */
    void (*boolean)(void *ctx, int v);
    void (*dbl)(void *ctx, double v);
    void (*bignum)(void *ctx, const char *s, size_t n);
    void (*verbatim)(void *ctx, const char *fmt3, const char *s, size_t n);
    void (*array)(sreply_parser_t *p, void *ctx, size_t n);
    void (*set)(sreply_parser_t *p, void *ctx, size_t n);
    void (*map)(sreply_parser_t *p, void *ctx, size_t n);
} sreply_cb_t;

struct sreply_parser {
    const char *p;         /* next unread byte */
    const char *end;       /* one past the last byte */
    int depth;             /* current container depth */
    int max_depth;         /* deeper is malformed */
    const sreply_cb_t *cb; /* NULL while checking or skipping */
    int failed;            /* set on the first malformed byte */
};

/* Checks that data holds at least one whole, well-formed reply nested at most
 * max_depth deep. Returns its length in bytes, or -1. Makes no callbacks. */
long sreply_check(const char *data, size_t len, int max_depth);

/* Parses the first reply of data with callbacks; call only on bytes that
 * sreply_check accepted. Returns the bytes consumed, or -1. */
long sreply_parse(const char *data, size_t len, int max_depth, const sreply_cb_t *cb, void *ctx);

/* Parses the next value inside a container callback (ctx NULL: skip it). */
void sreply_next(sreply_parser_t *p, void *ctx);

#endif
