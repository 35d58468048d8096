/* fuzz_script_reply: libFuzzer target for the script engine's RESP reply
 * parser (src/script/script_reply.c).
 *
 * The input is what a host could append as a command's reply. It is checked
 * from an exact-size allocation (a read past `len` is caught by ASan); when
 * the check accepts it, it is parsed again with callbacks that count values
 * and walk every container, and both passes must agree on the length. Every
 * prefix of an accepted reply must be refused. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "script_reply.h"

static size_t values;

static void v_str(void *ctx, const char *s, size_t n)
{
    (void)ctx;
    (void)s;
    (void)n;
    values++;
}
static void v_int(void *ctx, long long v)
{
    (void)ctx;
    (void)v;
    values++;
}
static void v_none(void *ctx)
{
    (void)ctx;
    values++;
}
static void v_bool(void *ctx, int v)
{
    (void)ctx;
    (void)v;
    values++;
}
static void v_dbl(void *ctx, double v)
{
    (void)ctx;
    (void)v;
    values++;
}
static void v_verb(void *ctx, const char *f, const char *s, size_t n)
{
    (void)ctx;
    if (f[3] != ':' || s != f + 4 || n > (size_t)1 << 30)
        abort();
    values++;
}
static void v_items(sreply_parser_t *p, void *ctx, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sreply_next(p, ctx);
}
static void v_pairs(sreply_parser_t *p, void *ctx, size_t n)
{
    for (size_t i = 0; i < 2 * n; i++)
        sreply_next(p, ctx);
}

static const sreply_cb_t cb = {v_str,  v_str, v_int, v_str,  v_none,  v_none,  v_none,
                               v_bool, v_dbl, v_str, v_verb, v_items, v_items, v_pairs};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (len)
        memcpy(copy, data, len);
    long n = sreply_check(copy, len, 32);
    if (n >= 0) {
        if (n == 0 || (size_t)n > len)
            abort();
        int ctx;
        if (sreply_parse(copy, len, 32, &cb, &ctx) != n)
            abort();
        for (long k = 0; k < n; k++)
            if (sreply_check(copy, (size_t)k, 32) != -1)
                abort();
    }
    free(copy);
    return 0;
}
