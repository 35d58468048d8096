/* guard_page: test inputs placed right before an inaccessible page, as
 * picohttpparser's tests do, so that reading one byte past the end of an
 * input faults (with or without AddressSanitizer).
 *
 * Owns: one mapping per guard_t. Include after <cmocka.h>. */
#ifndef COHORT_GUARD_PAGE_H
#define COHORT_GUARD_PAGE_H

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct guard {
    char *map;
    size_t size; /* readable bytes before the PROT_NONE page */
    size_t page;
} guard_t;

/* Maps room for inputs of up to 'readable' bytes, followed by a PROT_NONE
 * page. */
static inline void guard_init(guard_t *g, size_t readable)
{
    g->page = (size_t)sysconf(_SC_PAGESIZE);
    g->size = (readable + g->page - 1) / g->page * g->page;
    if (g->size == 0)
        g->size = g->page;
    g->map = mmap(NULL, g->size + g->page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                  -1, 0);
    assert_true(g->map != MAP_FAILED);
    assert_int_equal(mprotect(g->map + g->size, g->page, PROT_NONE), 0);
}

/* Copies n bytes so that the last one is the last readable byte; returns
 * where they start. Valid until the next guard_place or guard_free. */
static inline void *guard_place(guard_t *g, const void *s, size_t n)
{
    assert_true(n <= g->size);
    char *d = g->map + g->size - n;
    if (n)
        memcpy(d, s, n);
    return d;
}

static inline void guard_free(guard_t *g)
{
    munmap(g->map, g->size + g->page);
}

#endif
