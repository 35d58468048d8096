/* buf: a growable byte buffer with a read offset.
 *
 * Owns: its data array. Bytes are appended at the end and consumed from the
 * front; consumed space is reclaimed by compacting lazily.
 * Never: shrinks below what is pending, or hands out pointers that survive an
 * append (an append may move data). */
#ifndef COHORT_BUF_H
#define COHORT_BUF_H

#include <stddef.h>

typedef struct buf {
    char *data;   /* allocation, or NULL when empty and never used */
    size_t start; /* first pending byte */
    size_t end;   /* one past the last pending byte */
    size_t cap;   /* size of data */
} buf_t;

void buf_init(buf_t *b);
void buf_free(buf_t *b); /* releases data; b may be reused after buf_init */

static inline size_t buf_len(const buf_t *b)
{
    return b->end - b->start;
}
static inline char *buf_head(const buf_t *b)
{
    return b->data ? b->data + b->start : NULL; /* NULL + 0 is undefined */
}

/* Ensures room for n more bytes at the end; returns a pointer to that room. */
char *buf_reserve(buf_t *b, size_t n);
/* Marks n bytes written at the room returned by buf_reserve. */
void buf_commit(buf_t *b, size_t n);
void buf_append(buf_t *b, const void *p, size_t n);
void buf_append_str(buf_t *b, const char *s);
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops n bytes from the front. */
void buf_consume(buf_t *b, size_t n);
void buf_clear(buf_t *b);
/* Allocated bytes (for memory accounting). */
size_t buf_alloc_size(const buf_t *b);
/* Gives up excess capacity when the buffer is empty and large. */
void buf_trim(buf_t *b, size_t keep);

#endif
