/* Unit tests for glob.c: a table of (pattern, subject, expected) cases whose
 * expected answers are redis-server 7's (KEYS pattern against a single key),
 * the recursion bounds, and reads that must stay inside the buffers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "guard_page.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "glob.h"

/* Binary-safe strings: S("a\0b") keeps the NUL. */
#define S(lit) lit, sizeof(lit) - 1

typedef struct glob_case {
    const char *pat;
    size_t plen;
    const char *s;
    size_t slen;
    int want;
} glob_case_t;

static const glob_case_t cases[] = {
    /* plain bytes */
    {S(""), S(""), 1},
    {S(""), S("a"), 0},
    {S("a"), S(""), 0},
    {S("hello"), S("hello"), 1},
    {S("hello"), S("hell"), 0},
    {S("hell"), S("hello"), 0},
    {S("Hello"), S("hello"), 0}, /* case-sensitive */
    /* '?' */
    {S("?"), S(""), 0},
    {S("?"), S("x"), 1},
    {S("h?llo"), S("hello"), 1},
    {S("h?llo"), S("hllo"), 0},
    {S("??"), S("a"), 0},
    /* '*' */
    {S("*"), S("anything"), 1},
    {S("*"), S(""), 0}, /* as stringmatchlen: callers shortcut "*" themselves */
    {S("**"), S(""), 0},
    {S("a*"), S("a"), 1},
    {S("*a"), S("a"), 1},
    {S("a**"), S("a"), 1},
    {S("h*llo"), S("hllo"), 1},
    {S("h*llo"), S("heeeello"), 1},
    {S("*?"), S("a"), 1},
    {S("*??"), S("a"), 0},
    {S("a*b*c"), S("abc"), 1},
    {S("a*b*c"), S("aXbYc"), 1},
    {S("a*b*c"), S("acb"), 0},
    {S("*a*a*a*b"), S("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 0},
    {S("user:*:name"), S("user:42:name"), 1},
    {S("user:*:name"), S("user:42:mail"), 0},
    /* sets */
    {S("h[ae]llo"), S("hello"), 1},
    {S("h[ae]llo"), S("hallo"), 1},
    {S("h[ae]llo"), S("hillo"), 0},
    {S("h[^e]llo"), S("hello"), 0},
    {S("h[^e]llo"), S("hallo"), 1},
    {S("h[a-b]llo"), S("hbllo"), 1},
    {S("h[a-b]llo"), S("hcllo"), 0},
    {S("[z-a]"), S("m"), 1}, /* a range given backwards is the same range */
    {S("[^a-z]"), S("m"), 0},
    {S("[^a-z]"), S("M"), 1},
    {S("[a-c][^a-c]*"), S("bz"), 1},
    {S("[-a]"), S("-"), 1},
    {S("[ab-]"), S("-"), 0}, /* "b-]" is the range ']'..'b' */
    {S("[ab-]"), S("b"), 1},
    {S("[a-b-c]"), S("-"), 1},
    {S("[a-b-c]"), S("c"), 1},
    {S("[\\]]"), S("]"), 1}, /* ']' only escaped */
    {S("[]]"), S("]"), 0},
    {S("[]]"), S("]]"), 0},
    {S("[]"), S("]"), 0},
    {S("[]a]"), S("a"), 0},
    {S("[\\-]"), S("-"), 1},
    {S("[\\^]"), S("^"), 1},
    {S("[^\\^]"), S("^"), 0},
    /* '[a-]': the '-' makes the closing ']' the end of a range ']'..'a' */
    {S("[a-]"), S("a"), 1},
    {S("[a-]"), S("]"), 1},
    {S("[a-]"), S("^"), 1},
    {S("[a-]"), S("-"), 0},
    {S("[a-]"), S("b"), 0},
    {S("[a-]x"), S("ax"), 0},
    /* unterminated sets */
    {S("["), S("["), 0},
    {S("["), S("a"), 0},
    {S("a["), S("a["), 0},
    {S("*["), S("ab"), 0},
    {S("[^"), S("x"), 1},
    {S("[^"), S("^"), 1},
    {S("[^]"), S("x"), 1},
    {S("[^]"), S("]"), 1},
    {S("[abc"), S("b"), 1},
    {S("[abc"), S("d"), 0},
    {S("[abc"), S("bx"), 0},
    {S("[\\"), S("\\"), 1},
    {S("[\\"), S("a"), 0},
    /* escapes */
    {S("\\*"), S("*"), 1},
    {S("\\*"), S("a"), 0},
    {S("\\?"), S("?"), 1},
    {S("\\?"), S("a"), 0},
    {S("\\a"), S("a"), 1},
    {S("\\\\"), S("\\"), 1},
    {S("\\"), S("\\"), 1}, /* a '\' at the end matches itself */
    {S("a\\"), S("a\\"), 1},
    {S("a\\"), S("a"), 0},
    {S("*\\"), S("a\\"), 1},
    {S("\\[a]"), S("[a]"), 1},
    /* bytes above 0x7f: range ends compare as signed char */
    {S("[a-\xff]"), S("b"), 0},
    {S("[a-\xff]"), S("0"), 1},
    {S("[a-\xff]"), S("\xff"), 1},
    {S("[a-\xff]"), S("\x80"), 0},
    {S("[\x80-\xff]"), S("\x90"), 1},
    {S("[\x80-\xff]"), S("a"), 0},
    {S("\xe9t\xe9"), S("\xe9t\xe9"), 1},
    /* NUL bytes are ordinary bytes, in patterns and subjects */
    {S("a\0b"), S("a\0b"), 1},
    {S("a\0b"), S("a\0c"), 0},
    {S("a\0"), S("a"), 0},
    {S("a"), S("a\0"), 0},
    {S("a?b"), S("a\0b"), 1},
    {S("a*"), S("a\0\0"), 1},
    {S("*\0"), S("xyz\0"), 1},
    {S("[\0]"), S("\0"), 1},
    {S("[^\0]"), S("\0"), 0},
    {S("\0"), S(""), 0},
};

static void test_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const glob_case_t *t = &cases[i];
        int got = glob_match(t->pat, t->plen, t->s, t->slen);
        if (got != t->want) {
            print_error("case %zu: pattern \"%.*s\" subject \"%.*s\": got %d want %d\n", i,
                        (int)t->plen, t->pat, (int)t->slen, t->s, got, t->want);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* Builds n copies of unit into a malloc'd buffer. */
static char *repeat(const char *unit, size_t n, size_t *len)
{
    size_t u = strlen(unit);
    char *p = malloc(u * n + 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        memcpy(p + i * u, unit, u);
    *len = u * n;
    p[*len] = '\0';
    return p;
}

/* redis-server gives up below 1000 nested '*' (checked against
 * redis-server 7.0.15: "*a" x 1000 matches, x 1001 does not). */
static void test_nesting_bound(void **state)
{
    (void)state;
    static const struct {
        const char *unit;
        size_t reps, slen;
        int want;
    } t[] = {
        {"*a", 1000, 1005, 1}, {"*a", 1001, 1006, 0}, {"*a", 1002, 1007, 0},
        {"a*", 999, 1000, 1},  {"a*", 1100, 1100, 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t plen, slen;
        char *pat = repeat(t[i].unit, t[i].reps, &plen);
        char *s = repeat("a", t[i].slen, &slen);
        assert_int_equal(glob_match(pat, plen, s, slen), t[i].want);
        free(pat);
        free(s);
    }
}

/* Patterns that are exponential for a naive matcher finish at once. */
static void test_pathological_fast(void **state)
{
    (void)state;
    alarm(20); /* a matcher without the early stop would run for years: die instead */
    size_t slen, plen;
    char *s = repeat("a", 5000, &slen);
    char *pat = repeat("a*", 40, &plen);
    pat[plen - 1] = 'b'; /* "a*a*...a*b": never matches */
    assert_int_equal(glob_match(pat, plen, s, slen), 0);
    pat[plen - 1] = '*';
    assert_int_equal(glob_match(pat, plen, s, slen), 1);
    alarm(0);
    free(pat);
    free(s);
}


/* Every case again with pattern and subject against guard pages: redis-server
 * reads the NUL after its pattern; this matcher must not read past plen. */
static void test_no_overread(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const glob_case_t *t = &cases[i];
        guard_t gp, gs;
        guard_init(&gp, t->plen);
        guard_init(&gs, t->slen);
        const char *p = guard_place(&gp, t->pat, t->plen);
        const char *s = guard_place(&gs, t->s, t->slen);
        assert_int_equal(glob_match(p, t->plen, s, t->slen), t->want);
        guard_free(&gp);
        guard_free(&gs);
    }
}

/* A pattern is only its first plen bytes; the rest of the buffer is ignored. */
static void test_lengths_respected(void **state)
{
    (void)state;
    assert_int_equal(glob_match("abc*", 3, "abc", 3), 1);
    assert_int_equal(glob_match("abc*", 3, "abcd", 4), 0);
    assert_int_equal(glob_match("a*", 2, "abc", 1), 1);
    assert_int_equal(glob_match("[ab]", 3, "a", 1), 1); /* "[ab" unterminated */
    assert_int_equal(glob_match(NULL, 0, NULL, 0), 1);
    assert_int_equal(glob_match(NULL, 0, "a", 1), 0);
    assert_int_equal(glob_match("*", 1, NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_nesting_bound),
        cmocka_unit_test(test_pathological_fast),
        cmocka_unit_test(test_no_overread),
        cmocka_unit_test(test_lengths_respected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
