/* glob: binary-safe glob matching with redis-server's rules; see glob.h.
 *
 * Owns: the matching rules of KEYS and SCAN MATCH, byte for byte the same as
 * redis-server's stringmatchlen() (case-sensitive), corner cases included:
 *
 *   - '*' matches any run of bytes, but only a non-empty subject: like
 *     redis-server, glob_match("*", "") is 0. Callers that want "match all"
 *     (KEYS *, SCAN without MATCH) test for the pattern "*" themselves, as
 *     redis-server does, so that the empty key is listed.
 *   - Consecutive '*' count as one. A '*' followed by more pattern tries the
 *     rest at every later position; once the rest failed from every position,
 *     no earlier '*' retries a longer run (it could only fail again), which
 *     keeps "a*a*a*a*b" polynomial. Nested '*' deeper than GLOB_MAX_NESTING
 *     fail to match, the bound redis-server puts on its recursion.
 *   - '?' matches one byte.
 *   - '[...]' matches one byte from the set; '[^...]' one byte not in it.
 *     Inside, '\x' is the byte x, 'a-z' a range (either order: 'z-a' is the
 *     same range), anything else itself. Range ends compare as signed char,
 *     as redis-server does on x86-64: '[a-\xff]' is the range -1..97. A set
 *     may hold ']' only escaped. '[a-]' is the range 'a'..']' (the '-' makes
 *     the closing ']' the range's end) and then runs off the end of the
 *     pattern. A set that runs off the end ('[abc') ends there: it still
 *     matches one byte. '[' at the very end never matches.
 *   - '\x' matches x; a '\' that ends the pattern matches a '\'.
 *   - Any other byte, NUL included, matches itself.
 *
 * Never: allocates, reads outside the pattern or subject (redis-server relies
 * on a NUL after the pattern; this code checks lengths instead), or recurses
 * deeper than GLOB_MAX_NESTING.
 */
#include "glob.h"

/* redis-server's bound on '*' recursion ("protection against abusive
 * patterns"): deeper levels report no match. */
#define GLOB_MAX_NESTING 1000

/* A pattern byte as redis-server's 'char' sees it on x86-64 (signed). */
static int sbyte(unsigned char b)
{
    return b < 128 ? (int)b : (int)b - 256;
}

/* Matches the set that starts at (*pp)[0] == '[' against the byte c. On
 * return *pp and *plen point at the last byte of the set (its ']', or the
 * pattern's last byte when the set is unterminated), so the caller's usual
 * one-byte step moves past it. Returns 1 on a match. */
static int match_set(const unsigned char **pp, size_t *plen, unsigned char c)
{
    const unsigned char *p = *pp + 1;
    size_t n = *plen - 1;
    int negate = n > 0 && p[0] == '^';
    int match = 0;

    if (negate) {
        p++;
        n--;
    }
    for (;;) {
        if (n >= 2 && p[0] == '\\') {
            p++;
            n--;
            if (p[0] == c)
                match = 1;
        } else if (n > 0 && p[0] == ']') {
            break;
        } else if (n == 0) {
            p--; /* unterminated: stop on the last byte */
            n++;
            break;
        } else if (n >= 3 && p[1] == '-') {
            int lo = sbyte(p[0]), hi = sbyte(p[2]), v = sbyte(c);
            if (lo > hi) {
                int t = lo;
                lo = hi;
                hi = t;
            }
            p += 2;
            n -= 2;
            if (v >= lo && v <= hi)
                match = 1;
        } else if (p[0] == c) {
            match = 1;
        }
        p++;
        n--;
    }
    *pp = p;
    *plen = n;
    return negate ? !match : match;
}

/* The matcher proper. *skip_longer is set once the part of the pattern after
 * some '*' failed to match from every position of the rest of the subject:
 * then no earlier '*' needs to try a longer run. */
static int match(const unsigned char *p, size_t plen, const unsigned char *s, size_t slen,
                 int *skip_longer, int nesting)
{
    if (nesting > GLOB_MAX_NESTING)
        return 0;

    while (plen > 0 && slen > 0) {
        switch (p[0]) {
        case '*':
            while (plen >= 2 && p[1] == '*') {
                p++;
                plen--;
            }
            if (plen == 1)
                return 1; /* a trailing '*' takes the rest */
            for (; slen > 0; s++, slen--) {
                if (match(p + 1, plen - 1, s, slen, skip_longer, nesting + 1))
                    return 1;
                if (*skip_longer)
                    return 0;
            }
            *skip_longer = 1;
            return 0;
        case '?':
            break;
        case '[':
            if (!match_set(&p, &plen, s[0]))
                return 0;
            break;
        case '\\':
            if (plen >= 2) {
                p++;
                plen--;
            }
            /* fall through */
        default:
            if (p[0] != s[0])
                return 0;
            break;
        }
        p++;
        plen--;
        s++;
        slen--;
        if (slen == 0) {
            while (plen > 0 && p[0] == '*') {
                p++;
                plen--;
            }
            break;
        }
    }
    return plen == 0 && slen == 0;
}

int glob_match(const char *pattern, size_t plen, const char *s, size_t slen)
{
    int skip_longer = 0;
    return match((const unsigned char *)pattern, plen, (const unsigned char *)s, slen, &skip_longer,
                 0);
}
