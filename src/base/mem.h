/* mem: allocation wrappers that never return NULL.
 *
 * Owns: the process-wide policy on allocation failure (log and abort; a cache
 * daemon that cannot allocate a few bytes cannot keep its promises).
 * Never: hides sizes. mem_usable() reports what the allocator really handed
 * out, so memory accounting can be honest. */
#ifndef COHORT_MEM_H
#define COHORT_MEM_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xmemdup(const void *p, size_t n); /* NUL-terminated copy of n bytes */

/* Bytes the allocator reserved for p (malloc_usable_size); 0 for NULL. */
size_t mem_usable(const void *p);

#endif
