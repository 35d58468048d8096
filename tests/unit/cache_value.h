/* cache_value: a unit tests' helper: the value of a cache key as a
 * NUL-terminated copy (cache values are not terminated).
 * Never: used outside tests; thread-safe (one static buffer). */
#ifndef COHORT_TEST_CACHE_VALUE_H
#define COHORT_TEST_CACHE_VALUE_H

#include <string.h>

#include "cache.h"

/* The value of key (a C string) at time now, or NULL when absent. The copy
 * lives until the next call. Needs cmocka.h included before. */
static inline const char *cache_value_str(cache_t *c, const char *key, int64_t now)
{
    static char copy[64];
    cache_entry_t *e = cache_lookup(c, key, strlen(key), now, CACHE_NOTOUCH);
    if (!e)
        return NULL;
    size_t n;
    const char *v = cache_entry_value(e, &n);
    assert_true(n < sizeof(copy));
    memcpy(copy, v, n);
    copy[n] = '\0';
    return copy;
}

#endif
