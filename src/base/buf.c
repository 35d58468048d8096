/* buf: a growable byte buffer; see buf.h. */
#include "buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

void buf_init(buf_t *b)
{
    memset(b, 0, sizeof(*b));
}

void buf_free(buf_t *b)
{
    free(b->data);
    buf_init(b);
}

char *buf_reserve(buf_t *b, size_t n)
{
    if (b->cap - b->end >= n)
        return b->data + b->end;
    size_t pending = b->end - b->start;
    if (n > SIZE_MAX / 2 - pending) {
        fprintf(stderr, "cohortd: buffer of %zu + %zu bytes is too large\n", pending, n);
        abort();
    }
    /* Sliding the pending bytes to the front costs `pending`: do it alone only
     * when at least as many consumed bytes are reclaimed. Otherwise a buffer
     * consumed and appended a little at a time would move all its pending
     * bytes on every append; growing instead keeps the cost amortized. */
    if (b->start > 0 && b->start >= pending && b->cap - pending >= n) {
        memmove(b->data, b->data + b->start, pending);
        b->start = 0;
        b->end = pending;
        return b->data + b->end;
    }
    if (b->start > 0) { /* growing anyway: keep only the pending bytes */
        memmove(b->data, b->data + b->start, pending);
        b->start = 0;
        b->end = pending;
    }
    /* Grow by at least one step, even when sliding alone would have made
     * room: we only get here while cap < 2 * pending + n, so memory stays in
     * proportion to what is pending. */
    size_t want = pending + n;
    size_t cap = b->cap ? b->cap : 32;
    do
        cap = cap < (1u << 20) ? cap * 2 : cap + cap / 2; /* geometric: appends stay amortized O(1) */
    while (cap < want);
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    return b->data + b->end;
}

void buf_commit(buf_t *b, size_t n)
{
    b->end += n;
}

void buf_append(buf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    memcpy(buf_reserve(b, n), p, n);
    b->end += n;
}

void buf_append_str(buf_t *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        buf_append(b, small, (size_t)n);
        return;
    }
    char *dst = buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(dst, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->end += (size_t)n;
}

void buf_consume(buf_t *b, size_t n)
{
    b->start += n;
    if (b->start >= b->end)
        b->start = b->end = 0;
}

void buf_clear(buf_t *b)
{
    b->start = b->end = 0;
}

size_t buf_alloc_size(const buf_t *b)
{
    return mem_usable(b->data);
}

void buf_trim(buf_t *b, size_t keep)
{
    if (b->start == b->end && b->cap > keep) {
        free(b->data);
        b->data = NULL;
        b->cap = b->start = b->end = 0;
    }
}
