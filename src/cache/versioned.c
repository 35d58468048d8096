/* versioned: ordered flushes and SEEDs; see versioned.h for the rules. */
#include <xxhash.h>

#include "versioned.h"

uint64_t versioned_digest(const char *val, size_t vlen)
{
    return XXH3_64bits(val, vlen);
}

static uint64_t get_be64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | (uint8_t)p[i];
    return v;
}

/* INVAL k=#d @v: see versioned.h. */
static size_t apply_inval(cache_t *c, flushmark_t *floor, const char *key, size_t klen,
                          const char *digest, size_t dlen, uint64_t version, int64_t now)
{
    cache_entry_t *e = cache_lookup(c, key, klen, now, CACHE_NOTOUCH);
    if (e && cache_entry_version(e) >= version)
        return 0;
    if (e && dlen == 8) {
        size_t vlen;
        const char *v = cache_entry_value(e, &vlen);
        if (versioned_digest(v, vlen) == get_be64(digest))
            return 0;
    }
    flushmark_key_at(floor, key, klen, version);
    return e ? (size_t)cache_delete(c, key, klen, now) : 0;
}

static size_t apply_seed(cache_t *c, flushmark_t *floor, const char *key, size_t klen,
                         const char *val, size_t vlen, int64_t expire_at, uint64_t version,
                         int64_t now)
{
    cache_entry_t *e = cache_lookup(c, key, klen, now, CACHE_NOTOUCH);
    uint64_t have = e ? cache_entry_version(e) : 0;
    if (have >= version)
        return 0;
    /* An entry with a version says exactly what the floor only bounds:
     * every flush of the key applied here is older than it (a newer one
     * would have removed it). Without one, the floor decides. */
    if (have == 0 && version <= flushmark_floor(floor, key, klen))
        return 0;
    e = cache_set(c, key, klen, val, vlen, expire_at);
    cache_entry_set_version(c, e, version);
    return 1;
}

size_t versioned_apply(cache_t *c, flushmark_t *floor, int op, const char *key, size_t klen,
                       const char *val, size_t vlen, int64_t expire_at, uint64_t version,
                       int64_t now)
{
    switch (op) {
    case VOP_KEY: {
        flushmark_key_at(floor, key, klen, version);
        cache_entry_t *e = cache_lookup(c, key, klen, now, CACHE_NOTOUCH);
        if (!e || cache_entry_version(e) >= version)
            return 0;
        return (size_t)cache_delete(c, key, klen, now);
    }
    case VOP_PREFIX: {
        flushmark_prefix_at(floor, key, klen, version);
        size_t removed; /* so far: the rest is dead now and swept later */
        cache_flush_prefix_start(c, key, klen, now, version, &removed);
        return removed;
    }
    case VOP_ALL:
        flushmark_all_at(floor, version);
        return cache_flush_all_below(c, version);
    case VOP_SEED:
        return apply_seed(c, floor, key, klen, val, vlen, expire_at, version, now);
    case VOP_INVAL:
        return apply_inval(c, floor, key, klen, val, vlen, version, now);
    }
    return 0;
}
