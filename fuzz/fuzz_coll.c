/* fuzz_coll: libFuzzer target for the byte form of hashes and sets
 * (src/cache/coll.c), which RESTORE (and later a peer's SEED) hands in.
 *
 * The input is checked from an exact-size allocation (a read past `len` is
 * caught by ASan). Whatever coll_validate says, the in-place readers
 * (coll_hdr, coll_iter_*, coll_find_raw) must stay inside the bytes. When it
 * accepts: decoding succeeds, the in-place iteration yields exactly the
 * header's count of entries, every entry is found by coll_find_raw and by
 * coll_find, re-encoding gives bytes that validate again with the same
 * count, coll_put_bytes of a key (an existing one and a new one) gives the
 * bytes of decode + put + encode, and removing every entry leaves an empty
 * collection. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coll.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char *b = malloc(len ? len : 1);
    memcpy(b, data, len);
    char err[128];
    int ok = coll_validate(b, len, err, sizeof(err)) == 0;

    coll_iter_t it;
    coll_str_t s, v;
    size_t items = 0;
    if (coll_iter_init(&it, b, len) == 0)
        while (coll_iter_next(&it, &s) == 1)
            items++;
    coll_find_raw(b, len, "a", 1, &v);

    if (ok) {
        coll_hdr_t h;
        assert(coll_hdr(b, len, &h) == 0);
        size_t w = h.type == COLL_HASH ? 2 : 1;
        assert(items == h.count * w);
        coll_t c;
        assert(coll_decode(&c, b, len) == 0);
        assert(c.count == h.count);
        for (size_t i = 0; i < c.slots; i++) {
            const coll_str_t *k = &c.items[i * w];
            assert(coll_find_raw(b, len, k->p, k->len, &v) == 1);
            assert(coll_find(&c, k->p, k->len) == (long)i);
        }
        size_t len2;
        char *b2 = coll_encode(&c, &len2);
        coll_hdr_t h2;
        assert(coll_validate(b2, len2, err, sizeof(err)) == 0);
        assert(coll_hdr(b2, len2, &h2) == 0 && h2.count == h.count);
        if (!(h.flags & COLL_F_INTSET)) {
            const coll_str_t *keys[2] = {&c.items[0], &(coll_str_t){"fuzz-new-key", 12}};
            for (int j = 0; j < 2; j++) {
                size_t got_len, want_len;
                int added;
                char *got = coll_put_bytes(b, len, keys[j]->p, keys[j]->len, "v", 1, h.flags,
                                           &got_len, &added);
                assert(got);
                coll_t d;
                assert(coll_decode(&d, b, len) == 0);
                assert(coll_put(&d, keys[j]->p, keys[j]->len, "v", 1) == added);
                char *want = coll_encode(&d, &want_len);
                assert(got_len == want_len && memcmp(got, want, got_len) == 0);
                coll_free(&d);
                free(got);
                free(want);
            }
        }
        for (size_t i = 0; i < c.slots; i++) {
            const coll_str_t *k = &c.items[i * w];
            if (k->p)
                assert(coll_remove(&c, k->p, k->len) == 1);
        }
        assert(c.count == 0);
        free(b2);
        coll_free(&c);
    }
    free(b);
    return 0;
}
