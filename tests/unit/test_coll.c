/* Unit tests for coll.c (the byte form of hashes and sets): round trips in
 * order, intsets written ascending, editing with and without the index,
 * in-place reads, the rejection of every invariant's violation (coll.h's
 * list), every truncation and every single-byte change of valid bytes read
 * without a crash, the varint limits; and the cache entry's type, which
 * shares the header's bits with a string's encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "coll.h"

#define S(lit) lit, sizeof(lit) - 1

static char *encode_hash(const char *const *kv, size_t pairs, int flags, size_t *len)
{
    coll_t c;
    coll_init(&c, COLL_HASH);
    c.flags = flags;
    for (size_t i = 0; i < pairs; i++)
        coll_put(&c, kv[2 * i], strlen(kv[2 * i]), kv[2 * i + 1], strlen(kv[2 * i + 1]));
    char *b = coll_encode(&c, len);
    coll_free(&c);
    return b;
}

static void test_hash_round_trip(void **state)
{
    (void)state;
    const char *kv[] = {"f1", "v1", "", "empty-field", "f3", ""};
    size_t len;
    char *b = encode_hash(kv, 3, 0, &len);
    char err[128];
    assert_int_equal(coll_validate(b, len, err, sizeof(err)), 0);
    coll_hdr_t h;
    assert_int_equal(coll_hdr(b, len, &h), 0);
    assert_int_equal(h.type, COLL_HASH);
    assert_int_equal(h.count, 3);
    coll_iter_t it;
    coll_str_t s;
    assert_int_equal(coll_iter_init(&it, b, len), 0);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(coll_iter_next(&it, &s), 1);
        assert_int_equal(s.len, strlen(kv[i]));
        assert_memory_equal(s.p, kv[i], s.len);
    }
    assert_int_equal(coll_iter_next(&it, &s), 0);
    coll_str_t v;
    assert_int_equal(coll_find_raw(b, len, S(""), &v), 1);
    assert_int_equal(v.len, strlen("empty-field"));
    assert_int_equal(coll_find_raw(b, len, S("f3"), &v), 1);
    assert_int_equal(v.len, 0);
    assert_int_equal(coll_find_raw(b, len, S("v1"), &v), 0); /* values are not fields */
    /* Decode, edit, encode: updates keep their place, new fields go last. */
    coll_t c;
    assert_int_equal(coll_decode(&c, b, len), 0);
    assert_int_equal(coll_put(&c, S("f1"), S("new")), 0);
    assert_int_equal(coll_put(&c, S("f4"), S("v4")), 1);
    assert_int_equal(coll_remove(&c, S("")), 1);
    assert_int_equal(coll_remove(&c, S("")), 0);
    assert_int_equal(c.count, 3);
    size_t len2;
    char *b2 = coll_encode(&c, &len2);
    assert_int_equal(len2, coll_encoded_len(&c));
    coll_free(&c);
    assert_int_equal(coll_validate(b2, len2, err, sizeof(err)), 0);
    const char *want[] = {"f1", "new", "f3", "", "f4", "v4"};
    assert_int_equal(coll_iter_init(&it, b2, len2), 0);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(coll_iter_next(&it, &s), 1);
        assert_int_equal(s.len, strlen(want[i]));
        assert_memory_equal(s.p, want[i], s.len);
    }
    free(b);
    free(b2);
}

static void test_intset_is_ascending(void **state)
{
    (void)state;
    coll_t c;
    coll_init(&c, COLL_SET);
    c.flags = COLL_F_INTSET;
    const char *m[] = {"10", "-5", "9223372036854775807", "0", "-9223372036854775808", "3"};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(coll_put(&c, m[i], strlen(m[i]), NULL, 0), 1);
    assert_int_equal(coll_put(&c, S("3"), NULL, 0), 0);
    size_t len;
    char *b = coll_encode(&c, &len);
    coll_free(&c);
    char err[128];
    assert_int_equal(coll_validate(b, len, err, sizeof(err)), 0);
    const char *want[] = {"-9223372036854775808", "-5", "0", "3", "10", "9223372036854775807"};
    coll_iter_t it;
    coll_str_t s;
    assert_int_equal(coll_iter_init(&it, b, len), 0);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(coll_iter_next(&it, &s), 1);
        assert_int_equal(s.len, strlen(want[i]));
        assert_memory_equal(s.p, want[i], s.len);
    }
    assert_int_equal(coll_find_raw(b, len, S("0"), NULL), 1);
    assert_int_equal(coll_find_raw(b, len, S("00"), NULL), 0);
    free(b);
}

/* Many members: the index is built, holes are skipped, a member removed and
 * added again goes last, and every lookup agrees with a plain scan. */
static void test_index_and_holes(void **state)
{
    (void)state;
    enum { N = 5000 };
    static char names[N][16];
    coll_t c;
    coll_init(&c, COLL_SET);
    c.flags = COLL_F_BIG;
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "m%d", i);
        assert_int_equal(coll_put(&c, names[i], strlen(names[i]), NULL, 0), 1);
    }
    assert_non_null(c.idx);
    for (int i = 0; i < N; i += 2)
        assert_int_equal(coll_remove(&c, names[i], strlen(names[i])), 1);
    assert_int_equal(c.count, N / 2);
    for (int i = 0; i < N; i++)
        assert_int_equal(coll_find(&c, names[i], strlen(names[i])) >= 0, i % 2);
    assert_int_equal(coll_put(&c, names[0], strlen(names[0]), NULL, 0), 1);
    size_t len;
    char *b = coll_encode(&c, &len);
    coll_free(&c);
    char err[128];
    assert_int_equal(coll_validate(b, len, err, sizeof(err)), 0);
    coll_hdr_t h;
    assert_int_equal(coll_hdr(b, len, &h), 0);
    assert_int_equal(h.count, N / 2 + 1);
    coll_iter_t it;
    coll_str_t s;
    assert_int_equal(coll_iter_init(&it, b, len), 0);
    size_t seen = 0;
    while (coll_iter_next(&it, &s) == 1)
        seen++;
    assert_int_equal(seen, N / 2 + 1);
    assert_int_equal(s.len, 2);
    assert_memory_equal(s.p, "m0", 2); /* re-added: last */
    free(b);
}

static void test_keep_owns_copies(void **state)
{
    (void)state;
    coll_t c;
    coll_init(&c, COLL_HASH);
    char tmp[8] = "1234";
    const char *k = coll_keep(&c, tmp, 4);
    memset(tmp, 'x', sizeof(tmp));
    coll_put(&c, S("n"), k, 4);
    size_t len;
    char *b = coll_encode(&c, &len);
    coll_free(&c);
    coll_str_t v;
    assert_int_equal(coll_find_raw(b, len, S("n"), &v), 1);
    assert_memory_equal(v.p, "1234", 4);
    free(b);
}

/* Hand-made bytes, each breaking one invariant. */
typedef struct bad_case {
    const char *why;
    const char *bytes;
    size_t len;
} bad_case_t;

#define B(why, lit) {why, lit, sizeof(lit) - 1}
static const bad_case_t bad[] = {
    B("empty input", ""),
    B("header only", "\x01\x02\x00"),
    B("version 0", "\x00\x02\x00\x01\x01" "a"),
    B("version 2", "\x02\x02\x00\x01\x01" "a"),
    B("type 0", "\x01\x00\x00\x01\x01" "a"),
    B("type 3", "\x01\x03\x00\x01\x01" "a"),
    B("unknown flag", "\x01\x02\x04\x01\x01" "a"),
    B("intset on a hash", "\x01\x01\x02\x01\x01" "1\x01" "1"),
    B("intset and big", "\x01\x02\x03\x01\x01" "1"),
    B("count 0", "\x01\x02\x00\x00"),
    B("count past the bytes", "\x01\x02\x00\x05\x01" "a"),
    B("count varint cut", "\x01\x02\x00\x81"),
    B("count varint not shortest", "\x01\x02\x00\x81\x00\x01" "a"),
    B("count varint 11 bytes", "\x01\x02\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
    B("item past the end", "\x01\x02\x00\x01\x05" "ab"),
    B("item length varint cut", "\x01\x02\x00\x01\x80"),
    B("item length 2^62", "\x01\x02\x00\x01\x80\x80\x80\x80\x80\x80\x80\x80\x40"),
    B("hash missing a value", "\x01\x01\x00\x01\x01" "a"),
    B("trailing byte", "\x01\x02\x00\x01\x01" "ax"),
    B("duplicate member", "\x01\x02\x00\x02\x01" "a\x01" "a"),
    B("duplicate field", "\x01\x01\x00\x02\x01" "f\x01" "1\x01" "f\x01" "2"),
    B("intset member not an integer", "\x01\x02\x02\x01\x01" "x"),
    B("intset member not canonical", "\x01\x02\x02\x01\x02" "01"),
    B("intset member out of range", "\x01\x02\x02\x01\x13" "9223372036854775808"),
    B("intset descending", "\x01\x02\x02\x02\x01" "2\x01" "1"),
    B("intset repeated", "\x01\x02\x02\x02\x01" "1\x01" "1"),
};

static void test_malformed_rejected(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[128] = "";
        /* An exact-size copy: ASan sees any read past the end. */
        char *copy = malloc(bad[i].len ? bad[i].len : 1);
        memcpy(copy, bad[i].bytes, bad[i].len);
        if (coll_validate(copy, bad[i].len, err, sizeof(err)) != -1)
            fail_msg("accepted: %s", bad[i].why);
        assert_true(err[0] != '\0');
        free(copy);
    }
    /* The good twin of the cases above is accepted. */
    char err[128];
    assert_int_equal(coll_validate(S("\x01\x02\x02\x02\x01" "1\x01" "2"), err, sizeof(err)), 0);
    assert_int_equal(coll_validate(S("\x01\x01\x01\x01\x01" "f\x00"), err, sizeof(err)), 0);
}

/* Every prefix of valid bytes is refused; every single-byte change is read
 * (validated, iterated, searched) without reading outside the bytes. */
static void test_truncations_and_flips(void **state)
{
    (void)state;
    const char *kv[] = {"field", "value", "x", "", "long-field-name", "0123456789"};
    size_t len;
    char *b = encode_hash(kv, 3, COLL_F_BIG, &len);
    char err[128];
    for (size_t n = 0; n < len; n++) {
        char *copy = malloc(n ? n : 1);
        memcpy(copy, b, n);
        assert_int_equal(coll_validate(copy, n, err, sizeof(err)), -1);
        free(copy);
    }
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            char *copy = malloc(len);
            memcpy(copy, b, len);
            copy[i] ^= (char)(1 << bit);
            if (coll_validate(copy, len, err, sizeof(err)) == 0) {
                coll_t c;
                assert_int_equal(coll_decode(&c, copy, len), 0);
                coll_free(&c);
            }
            coll_iter_t it;
            coll_str_t s;
            if (coll_iter_init(&it, copy, len) == 0)
                while (coll_iter_next(&it, &s) == 1)
                    ;
            coll_find_raw(copy, len, S("x"), &s);
            free(copy);
        }
    }
    free(b);
}

/* Lengths whose varints take 1, 2 and 3 bytes round-trip. */
static void test_varint_lengths(void **state)
{
    (void)state;
    size_t sizes[] = {0, 127, 128, 16383, 16384, 100000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *big = malloc(sizes[i] + 1);
        memset(big, 'q', sizes[i]);
        coll_t c;
        coll_init(&c, COLL_SET);
        c.flags = COLL_F_BIG;
        coll_put(&c, big, sizes[i], NULL, 0);
        size_t len;
        char *b = coll_encode(&c, &len);
        coll_free(&c);
        char err[128];
        assert_int_equal(coll_validate(b, len, err, sizeof(err)), 0);
        assert_int_equal(coll_find_raw(b, len, big, sizes[i], NULL), 1);
        free(b);
        free(big);
    }
}

static void test_is_int(void **state)
{
    (void)state;
    long long v;
    assert_true(coll_is_int(S("0"), &v) && v == 0);
    assert_true(coll_is_int(S("-1"), &v) && v == -1);
    assert_true(coll_is_int(S("-9223372036854775808"), &v) && v == INT64_MIN);
    assert_false(coll_is_int(S("9223372036854775808"), &v));
    assert_false(coll_is_int(S("-0"), &v));
    assert_false(coll_is_int(S("01"), &v));
    assert_false(coll_is_int(S("+1"), &v));
    assert_false(coll_is_int(S(" 1"), &v));
    assert_false(coll_is_int(S(""), &v));
    assert_false(coll_is_int(S("-"), &v));
}

/* The entry's type and a string's encoding share the header's bits. */
static void test_cache_entry_type(void **state)
{
    (void)state;
    cache_t *c = cache_new(1, 0);
    cache_entry_t *e = cache_set(c, S("k"), S("v"), 0);
    assert_int_equal(cache_entry_type(e), CACHE_TYPE_STRING);
    cache_entry_set_enc(e, CACHE_ENC_RAW);
    assert_int_equal(cache_entry_enc(e), CACHE_ENC_RAW);
    cache_entry_set_type(e, CACHE_TYPE_HASH);
    assert_int_equal(cache_entry_type(e), CACHE_TYPE_HASH);
    assert_int_equal(cache_entry_enc(e), CACHE_ENC_AUTO);
    cache_entry_set_type(e, CACHE_TYPE_SET);
    assert_int_equal(cache_entry_type(e), CACHE_TYPE_SET);
    /* A new value (same allocation or not) is a string again. */
    e = cache_set(c, S("k"), S("w"), 0);
    assert_int_equal(cache_entry_type(e), CACHE_TYPE_STRING);
    cache_entry_set_type(e, CACHE_TYPE_SET);
    char big[500];
    memset(big, 'b', sizeof(big));
    e = cache_set(c, S("k"), big, sizeof(big), 0);
    assert_int_equal(cache_entry_type(e), CACHE_TYPE_STRING);
    assert_int_equal(cache_check(c), 0);
    cache_free(c);
}

/* coll_put_bytes gives the bytes of decode + put + encode, for hashes and
 * sets, present and absent keys, values growing and shrinking, flags set. */
static void test_put_bytes_matches_the_general_path(void **state)
{
    (void)state;
    srandom(7);
    for (int round = 0; round < 300; round++) {
        int type = round % 2 ? COLL_HASH : COLL_SET;
        coll_t c;
        coll_init(&c, type);
        c.flags = round % 3 ? 0 : COLL_F_BIG;
        if (type == COLL_SET && !c.flags)
            c.flags = COLL_F_BIG;
        int n = 1 + (int)(random() % 40);
        char names[40][16], vals[40][200];
        for (int i = 0; i < n; i++) {
            snprintf(names[i], sizeof(names[i]), "k%ld", random() % 60);
            size_t vl = (size_t)(random() % 150);
            memset(vals[i], 'a' + i % 26, vl);
            vals[i][vl] = '\0';
            coll_put(&c, names[i], strlen(names[i]), vals[i], vl);
        }
        size_t len;
        char *b = coll_encode(&c, &len);
        coll_free(&c);
        char key[16], val[300];
        snprintf(key, sizeof(key), "k%ld", random() % 80);
        size_t vl = (size_t)(random() % 300);
        memset(val, 'z', vl);
        int flags = round % 5 ? COLL_F_BIG : 0;
        if (type == COLL_SET)
            flags = COLL_F_BIG;
        size_t got_len;
        int added;
        char *got = coll_put_bytes(b, len, key, strlen(key), val, vl, flags, &got_len, &added);
        assert_non_null(got);
        coll_t d;
        assert_int_equal(coll_decode(&d, b, len), 0);
        assert_int_equal(coll_put(&d, key, strlen(key), val, vl), added);
        d.flags = flags;
        size_t want_len;
        char *want = coll_encode(&d, &want_len);
        coll_free(&d);
        assert_int_equal(got_len, want_len);
        assert_memory_equal(got, want, want_len);
        char err[128];
        assert_int_equal(coll_validate(got, got_len, err, sizeof(err)), 0);
        free(got);
        free(want);
        free(b);
    }
    /* An intset is refused (its members must stay in order). */
    size_t len, out;
    int added;
    assert_null(coll_put_bytes(S("\x01\x02\x02\x01\x01" "1"), S("2"), NULL, 0, COLL_F_INTSET, &out,
                               &added));
    (void)len;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_round_trip),
        cmocka_unit_test(test_intset_is_ascending),
        cmocka_unit_test(test_index_and_holes),
        cmocka_unit_test(test_keep_owns_copies),
        cmocka_unit_test(test_malformed_rejected),
        cmocka_unit_test(test_truncations_and_flips),
        cmocka_unit_test(test_varint_lengths),
        cmocka_unit_test(test_is_int),
        cmocka_unit_test(test_cache_entry_type),
        cmocka_unit_test(test_put_bytes_matches_the_general_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
