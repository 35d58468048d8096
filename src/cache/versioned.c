/* versioned: ordered flushes and SEEDs; see versioned.h for the rules. */
#include "versioned.h"

static size_t apply_seed(cache_t *c, flushmark_t *floor, const char *key, size_t klen,
                         const char *val, size_t vlen, int64_t expire_at, uint64_t version,
                         int64_t now)
{
    if (version <= flushmark_floor(floor, key, klen))
        return 0;
    cache_entry_t *e = cache_lookup(c, key, klen, now, CACHE_NOTOUCH);
    if (e && cache_entry_version(e) >= version)
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
    case VOP_PREFIX:
        flushmark_prefix_at(floor, key, klen, version);
        return cache_flush_prefix_below(c, key, klen, now, version);
    case VOP_ALL:
        flushmark_all_at(floor, version);
        return cache_flush_all_below(c, version);
    case VOP_SEED:
        return apply_seed(c, floor, key, klen, val, vlen, expire_at, version, now);
    }
    return 0;
}
