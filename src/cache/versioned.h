/* versioned: the rule by which every node orders the flushes and SEEDs of
 * one key, whatever their sender, batching, replay or restart.
 *
 * Owns: nothing; it applies one operation with its version (hlc.h) to a
 * cache and to a floor record (a flushmark kept with versions, see
 * flushmark_floor).
 * Never: looks at who sent an operation or when it arrived: two nodes that
 * applied the same operations, in any order, hold the same ordered values.
 *
 * The rules (checked by tests/unit/test_versioned.c and the simulator):
 *   DEL k @v          removes k if its entry's version < v; floor(k) >= v.
 *   FLUSHPREFIX p @v  removes the entries under p whose version < v;
 *                     floor(under p) >= v.
 *   FLUSHALL @v       removes the entries whose version < v; floor >= v.
 *   SEED k=x @v       ignored if k's entry has a version >= v (something
 *                     newer was applied), or if k has no entry (or one of
 *                     version 0: a fill) and v <= floor(k); else k = x @v.
 *                     (An entry with a version is newer than every flush of
 *                     k applied here: a newer one would have removed it.)
 *   INVAL k=#d @v     (a write of k elsewhere, d the digest of its value)
 *                     ignored if k's entry has a version >= v; an entry
 *                     whose value has digest d is kept as it is (two nodes
 *                     filling the same row do not evict each other); else
 *                     as DEL k @v.
 * A fill (a node-local SET) keeps the version of the value it replaces, so
 * an older SEED cannot overwrite it; a newer flush removes it. Floors are a
 * bounded record: where it forgets, it errs towards ignoring a SEED (a
 * miss), never towards keeping a flushed value. */
#ifndef COHORT_VERSIONED_H
#define COHORT_VERSIONED_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "flushmark.h"

/* The same numbers as the peer frames' flush kinds. */
enum versioned_op { VOP_KEY = 1, VOP_PREFIX = 2, VOP_ALL = 3, VOP_SEED = 4, VOP_INVAL = 5 };

/* The digest an INVAL carries: XXH3-64 of the value's bytes. */
uint64_t versioned_digest(const char *val, size_t vlen);

/* Applies one operation. For a flush, returns the live entries it removed;
 * for a SEED, 1 if it was applied and 0 if it was older than what the cache
 * has seen. val, vlen and expire_at are a SEED's; an INVAL's val is its
 * digest, 8 bytes big-endian. */
size_t versioned_apply(cache_t *c, flushmark_t *floor, int op, const char *key, size_t klen,
                       const char *val, size_t vlen, int64_t expire_at, uint64_t version,
                       int64_t now);

#endif
