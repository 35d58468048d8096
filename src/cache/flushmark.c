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
 * The exact form (flushmark_new_exact, struct exact below):
 *   5. a recorded key's or prefix's number is the highest it was given since
 *      it was recorded; a key or prefix given a number and no longer
 *      recorded was forgotten, and the forgotten floor is >= its number. So
 *      flushmark_floor never answers lower than the truth, and
 *      flushmark_floor_known answers it exactly for what is recorded.
 *   6. at most max_keys keys and max_prefixes prefixes are recorded; the
 *      key forgotten first is the one updated longest ago.
 *   Tests: tests/unit/test_flushmark.c (exact_*).
 */
#include "flushmark.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "mem.h"

typedef struct prefix_mark {
    uint64_t seq;
    size_t len;
    char *prefix; /* owned */
} prefix_mark_t;

/* One key of the exact form: in a hash chain and in update order. */
typedef struct rec {
    struct rec *next;          /* the same bucket */
    struct rec *older, *newer; /* update order: the oldest is forgotten first */
    uint64_t hash;
    uint64_t version;
    size_t klen;
    char key[];
} rec_t;

typedef struct exact {
    rec_t **buckets;
    size_t nbuckets; /* a power of two, grown with count */
    size_t count, max_keys;
    rec_t *oldest, *newest;
    prefix_mark_t *prefixes; /* distinct prefixes, any order */
    size_t nprefixes, max_prefixes;
    uint64_t forgotten; /* >= every number forgotten */
    int64_t stamp, forgotten_stamp;
    uint64_t nforgotten;
} exact_t;

struct flushmark {
    exact_t *exact; /* NULL: the hashed form */
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

static void exact_free_all(exact_t *x);

void flushmark_free(flushmark_t *f)
{
    if (!f)
        return;
    if (f->exact) {
        exact_free_all(f->exact);
        free(f->exact->buckets);
        free(f->exact->prefixes);
        free(f->exact);
    }
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
    assert(!f->exact); /* tokens are the hashed form's */
    f->key_seq[slot_of(f, key, klen)] = ++f->seq;
}

void flushmark_prefix(flushmark_t *f, const char *prefix, size_t plen)
{
    assert(!f->exact);
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

static void exact_key(exact_t *x, const char *key, size_t klen, uint64_t seq);
static void exact_prefix(exact_t *x, const char *prefix, size_t plen, uint64_t seq);
static uint64_t exact_known(const exact_t *x, const char *key, size_t klen);

void flushmark_key_at(flushmark_t *f, const char *key, size_t klen, uint64_t seq)
{
    if (f->exact) {
        exact_key(f->exact, key, klen, seq);
        return;
    }
    uint64_t *slot = &f->key_seq[slot_of(f, key, klen)];
    if (seq > *slot)
        *slot = seq;
}

void flushmark_prefix_at(flushmark_t *f, const char *prefix, size_t plen, uint64_t seq)
{
    if (f->exact) {
        exact_prefix(f->exact, prefix, plen, seq);
        return;
    }
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
    if (f->exact) {
        uint64_t known = flushmark_floor_known(f, key, klen);
        return f->exact->forgotten > known ? f->exact->forgotten : known;
    }
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
    assert(!f->exact);
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
    const exact_t *x = f->exact;
    if (x) {
        n += mem_usable(x) + mem_usable(x->buckets) + mem_usable(x->prefixes);
        for (const rec_t *r = x->oldest; r; r = r->newer)
            n += mem_usable(r);
        for (size_t i = 0; i < x->nprefixes; i++)
            n += mem_usable(x->prefixes[i].prefix);
    }
    return n;
}

/* ---- the exact form ---------------------------------------------------------- */

flushmark_t *flushmark_new_exact(size_t max_keys, size_t max_prefixes)
{
    flushmark_t *f = xcalloc(1, sizeof(*f));
    exact_t *x = xcalloc(1, sizeof(*x));
    x->max_keys = max_keys ? max_keys : 1;
    x->max_prefixes = max_prefixes ? max_prefixes : 1;
    x->nbuckets = 64;
    x->buckets = xcalloc(x->nbuckets, sizeof(rec_t *));
    x->prefixes = xcalloc(x->max_prefixes, sizeof(prefix_mark_t));
    f->exact = x;
    return f;
}

static void exact_free_all(exact_t *x)
{
    for (rec_t *r = x->oldest, *next; r; r = next) {
        next = r->newer;
        free(r);
    }
    x->oldest = x->newest = NULL;
    x->count = 0;
    memset(x->buckets, 0, x->nbuckets * sizeof(rec_t *));
    for (size_t i = 0; i < x->nprefixes; i++)
        free(x->prefixes[i].prefix);
    x->nprefixes = 0;
}

void flushmark_clear(flushmark_t *f)
{
    assert(f->exact);
    exact_free_all(f->exact);
    f->exact->forgotten = 0;
    f->exact->forgotten_stamp = 0;
    f->all_seq = 0;
}

void flushmark_fold(flushmark_t *dst, const flushmark_t *src)
{
    const exact_t *x = src->exact;
    assert(x);
    for (const rec_t *r = x->oldest; r; r = r->newer)
        flushmark_key_at(dst, r->key, r->klen, r->version);
    for (size_t i = 0; i < x->nprefixes; i++)
        flushmark_prefix_at(dst, x->prefixes[i].prefix, x->prefixes[i].len, x->prefixes[i].seq);
    flushmark_all_at(dst, src->all_seq);
    flushmark_all_at(dst, x->forgotten);
}

void flushmark_set_stamp(flushmark_t *f, int64_t stamp)
{
    if (f->exact)
        f->exact->stamp = stamp;
}

uint64_t flushmark_forgotten(const flushmark_t *f, int64_t *stamp)
{
    *stamp = f->exact ? f->exact->forgotten_stamp : 0;
    return f->exact ? f->exact->forgotten : 0;
}

size_t flushmark_keys(const flushmark_t *f)
{
    return f->exact ? f->exact->count : 0;
}

uint64_t flushmark_forgotten_count(const flushmark_t *f)
{
    return f->exact ? f->exact->nforgotten : 0;
}

uint64_t flushmark_floor_known(const flushmark_t *f, const char *key, size_t klen)
{
    if (!f->exact)
        return flushmark_floor(f, key, klen);
    uint64_t known = exact_known(f->exact, key, klen);
    return f->all_seq > known ? f->all_seq : known;
}

static void forget(exact_t *x, uint64_t seq)
{
    if (seq > x->forgotten)
        x->forgotten = seq;
    x->forgotten_stamp = x->stamp;
    x->nforgotten++;
}

static rec_t **chain_of(const exact_t *x, uint64_t hash)
{
    return &x->buckets[hash & (x->nbuckets - 1)];
}

static void order_unlink(exact_t *x, rec_t *r)
{
    if (r->older)
        r->older->newer = r->newer;
    else
        x->oldest = r->newer;
    if (r->newer)
        r->newer->older = r->older;
    else
        x->newest = r->older;
}

static void order_append(exact_t *x, rec_t *r)
{
    r->newer = NULL;
    r->older = x->newest;
    if (x->newest)
        x->newest->newer = r;
    else
        x->oldest = r;
    x->newest = r;
}

/* Forgets the key updated longest ago (the record is full); returns its
 * record, unlinked, for the caller to reuse or free. */
static rec_t *forget_oldest(exact_t *x)
{
    rec_t *r = x->oldest;
    rec_t **p = chain_of(x, r->hash);
    while (*p != r)
        p = &(*p)->next;
    *p = r->next;
    order_unlink(x, r);
    forget(x, r->version);
    x->count--;
    return r;
}

static void grow(exact_t *x)
{
    size_t n = x->nbuckets * 2;
    rec_t **b = xcalloc(n, sizeof(rec_t *));
    for (size_t i = 0; i < x->nbuckets; i++)
        for (rec_t *r = x->buckets[i], *next; r; r = next) {
            next = r->next;
            r->next = b[r->hash & (n - 1)];
            b[r->hash & (n - 1)] = r;
        }
    free(x->buckets);
    x->buckets = b;
    x->nbuckets = n;
}

static rec_t *find(const exact_t *x, const char *key, size_t klen, uint64_t hash)
{
    for (rec_t *r = *chain_of(x, hash); r; r = r->next)
        if (r->hash == hash && r->klen == klen && memcmp(r->key, key, klen) == 0)
            return r;
    return NULL;
}

static void exact_key(exact_t *x, const char *key, size_t klen, uint64_t seq)
{
    uint64_t hash = XXH3_64bits(key, klen);
    rec_t *r = find(x, key, klen, hash);
    if (r) {
        if (seq > r->version) {
            r->version = seq;
            order_unlink(x, r);
            order_append(x, r);
        }
        return;
    }
    if (x->count == x->max_keys) { /* the oldest goes; its memory serves again if it fits */
        rec_t *old = forget_oldest(x);
        r = mem_usable(old) >= sizeof(*r) + klen ? old : NULL;
        if (!r)
            free(old);
    }
    if (!r)
        r = xmalloc(sizeof(*r) + klen);
    memcpy(r->key, key, klen);
    r->klen = klen;
    r->hash = hash;
    r->version = seq;
    rec_t **chain = chain_of(x, hash);
    r->next = *chain;
    *chain = r;
    order_append(x, r);
    if (++x->count > x->nbuckets)
        grow(x);
}

static void exact_prefix(exact_t *x, const char *prefix, size_t plen, uint64_t seq)
{
    prefix_mark_t *m = NULL;
    for (size_t i = 0; i < x->nprefixes && !m; i++)
        if (x->prefixes[i].len == plen && memcmp(x->prefixes[i].prefix, prefix, plen) == 0)
            m = &x->prefixes[i];
    if (m) {
        if (seq > m->seq)
            m->seq = seq;
        return;
    }
    if (x->nprefixes == x->max_prefixes) { /* full: the oldest number goes */
        m = &x->prefixes[0];
        for (size_t i = 1; i < x->nprefixes; i++)
            if (x->prefixes[i].seq < m->seq)
                m = &x->prefixes[i];
        forget(x, m->seq);
        free(m->prefix);
    } else {
        m = &x->prefixes[x->nprefixes++];
    }
    m->prefix = xmemdup(prefix, plen);
    m->len = plen;
    m->seq = seq;
}

static uint64_t exact_known(const exact_t *x, const char *key, size_t klen)
{
    const rec_t *r = find(x, key, klen, XXH3_64bits(key, klen));
    uint64_t known = r ? r->version : 0;
    for (size_t i = 0; i < x->nprefixes; i++) {
        const prefix_mark_t *m = &x->prefixes[i];
        if (m->seq > known && m->len <= klen && memcmp(m->prefix, key, m->len) == 0)
            known = m->seq;
    }
    return known;
}
