/* flushmark: a bounded memory of recent flushes for GETL/SETL; see
 * flushmark.h.
 *
 * Invariants:
 *   1. seq only grows; every recorded flush takes a new seq value.
 *   2. key_seq[slot] >= the seq of every key flush that hashed to slot.
 *   3. ring holds the last 'ring_cap' prefix flushes; ring_floor is the
 *      largest seq of a prefix flush that fell out of the ring, so a token
 *      older than ring_floor cannot be proven safe and is refused.
 *   4. all_seq is the seq of the last flush of everything.
 */
#include "flushmark.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "mem.h"

typedef struct prefix_mark {
    uint64_t seq;
    size_t len;
    char *prefix; /* owned */
} prefix_mark_t;

struct flushmark {
    uint64_t seq;
    uint64_t first_seq; /* the first token this incarnation issued */
    uint64_t *key_seq; /* slot -> seq of the newest key flush there */
    size_t slot_mask;
    prefix_mark_t *ring;
    size_t ring_cap;
    size_t ring_next; /* next slot to overwrite */
    uint64_t ring_floor;
    uint64_t all_seq;
};

flushmark_t *flushmark_new(size_t slots, size_t ring, uint64_t first_seq)
{
    size_t n = 1;
    while (n < slots)
        n <<= 1;
    flushmark_t *f = xcalloc(1, sizeof(*f));
    f->seq = first_seq;
    f->first_seq = first_seq;
    f->key_seq = xcalloc(n, sizeof(uint64_t));
    f->slot_mask = n - 1;
    f->ring_cap = ring ? ring : 1;
    f->ring = xcalloc(f->ring_cap, sizeof(prefix_mark_t));
    return f;
}

void flushmark_free(flushmark_t *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->ring_cap; i++)
        free(f->ring[i].prefix);
    free(f->ring);
    free(f->key_seq);
    free(f);
}

uint64_t flushmark_token(const flushmark_t *f)
{
    return f->seq;
}

static size_t slot_of(const flushmark_t *f, const char *key, size_t klen)
{
    return (size_t)XXH3_64bits(key, klen) & f->slot_mask;
}

void flushmark_key(flushmark_t *f, const char *key, size_t klen)
{
    f->key_seq[slot_of(f, key, klen)] = ++f->seq;
}

void flushmark_prefix(flushmark_t *f, const char *prefix, size_t plen)
{
    prefix_mark_t *m = &f->ring[f->ring_next];
    if (m->prefix && m->seq > f->ring_floor)
        f->ring_floor = m->seq;
    free(m->prefix);
    m->prefix = xmemdup(prefix, plen);
    m->len = plen;
    m->seq = ++f->seq;
    f->ring_next = (f->ring_next + 1) % f->ring_cap;
}

void flushmark_all(flushmark_t *f)
{
    f->all_seq = ++f->seq;
}

void flushmark_key_at(flushmark_t *f, const char *key, size_t klen, uint64_t seq)
{
    uint64_t *slot = &f->key_seq[slot_of(f, key, klen)];
    if (seq > *slot)
        *slot = seq;
}

void flushmark_prefix_at(flushmark_t *f, const char *prefix, size_t plen, uint64_t seq)
{
    prefix_mark_t *m = &f->ring[f->ring_next];
    if (m->prefix && m->seq > f->ring_floor)
        f->ring_floor = m->seq;
    free(m->prefix);
    m->prefix = xmemdup(prefix, plen);
    m->len = plen;
    m->seq = seq;
    f->ring_next = (f->ring_next + 1) % f->ring_cap;
}

void flushmark_all_at(flushmark_t *f, uint64_t seq)
{
    if (seq > f->all_seq)
        f->all_seq = seq;
}

uint64_t flushmark_floor(const flushmark_t *f, const char *key, size_t klen)
{
    uint64_t floor = f->all_seq > f->ring_floor ? f->all_seq : f->ring_floor;
    uint64_t slot = f->key_seq[slot_of(f, key, klen)];
    if (slot > floor)
        floor = slot;
    for (size_t i = 0; i < f->ring_cap; i++) { /* numbers in any order: every mark */
        const prefix_mark_t *m = &f->ring[i];
        if (m->prefix && m->seq > floor && m->len <= klen && memcmp(m->prefix, key, m->len) == 0)
            floor = m->seq;
    }
    return floor;
}

int flushmark_flushed_since(const flushmark_t *f, const char *key, size_t klen, uint64_t token)
{
    if (token > f->seq || token < f->first_seq)
        return 1; /* not a token this incarnation issued (an earlier one's, say) */
    if (f->all_seq > token || f->ring_floor > token)
        return 1;
    if (f->key_seq[slot_of(f, key, klen)] > token)
        return 1;
    /* Newest first; the ring is in seq order, so stop at the first old mark. */
    for (size_t n = 0; n < f->ring_cap; n++) {
        size_t i = (f->ring_next + f->ring_cap - 1 - n) % f->ring_cap;
        const prefix_mark_t *m = &f->ring[i];
        if (!m->prefix || m->seq <= token)
            break;
        if (m->len <= klen && memcmp(m->prefix, key, m->len) == 0)
            return 1;
    }
    return 0;
}

size_t flushmark_memory(const flushmark_t *f)
{
    size_t n = mem_usable(f) + mem_usable(f->key_seq) + mem_usable(f->ring);
    for (size_t i = 0; i < f->ring_cap; i++)
        n += mem_usable(f->ring[i].prefix);
    return n;
}
