/* glob: binary-safe glob matching with redis-server's rules.
 *
 * Owns: matching a pattern against a string for KEYS and SCAN MATCH:
 * '*', '?', '[abc]', '[^a]', '[a-z]', and '\' escapes, case-sensitive.
 * Never: allocates, or recurses without bound (nested '*' are bounded the way
 * redis-server bounds them).
 *
 * fnmatch(3) is not used because keys may contain NUL bytes and because
 * redis-server's semantics differ in corner cases ('[^' negation, ranges given
 * backwards, an unterminated '[').
 */
#ifndef COHORT_GLOB_H
#define COHORT_GLOB_H

#include <stddef.h>

/* Returns 1 when s matches pattern, 0 otherwise. */
int glob_match(const char *pattern, size_t plen, const char *s, size_t slen);

#endif
