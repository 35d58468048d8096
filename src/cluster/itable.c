/* itable: interest tables (names with subscriber counts); see itable.h.
 *
 * Each kind has a chained hash table (XXH3 of the name, doubled when the
 * entries outnumber the buckets) and a list in order of arrival, which
 * itable_foreach and the pattern scan of itable_receivers walk. */
#include "itable.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "glob.h"
#include "mem.h"

typedef struct ientry {
    struct ientry *hnext;             /* bucket chain */
    struct ientry *prev, *next;       /* order of arrival */
    uint64_t hash;
    uint32_t count;
    size_t len;
    char name[];
} ientry_t;

typedef struct ikind {
    ientry_t **buckets;
    size_t nbuckets; /* a power of two */
    size_t n;
    ientry_t *first, *last;
} ikind_t;

struct itable {
    ikind_t k[ITABLE_KINDS];
};

itable_t *itable_new(void)
{
    return xcalloc(1, sizeof(itable_t));
}

void itable_clear(itable_t *t)
{
    for (int i = 0; i < ITABLE_KINDS; i++) {
        ikind_t *k = &t->k[i];
        ientry_t *e = k->first;
        while (e) {
            ientry_t *next = e->next;
            free(e);
            e = next;
        }
        free(k->buckets);
        memset(k, 0, sizeof(*k));
    }
}

void itable_free(itable_t *t)
{
    if (!t)
        return;
    itable_clear(t);
    free(t);
}

static ientry_t **find_slot(const ikind_t *k, const char *name, size_t len, uint64_t h)
{
    if (!k->nbuckets)
        return NULL;
    ientry_t **p = &k->buckets[h & (k->nbuckets - 1)];
    while (*p && !((*p)->hash == h && (*p)->len == len && memcmp((*p)->name, name, len) == 0))
        p = &(*p)->hnext;
    return p;
}

static void grow(ikind_t *k)
{
    size_t nb = k->nbuckets ? k->nbuckets * 2 : 16;
    ientry_t **b = xcalloc(nb, sizeof(*b));
    for (ientry_t *e = k->first; e; e = e->next) {
        size_t i = e->hash & (nb - 1);
        e->hnext = b[i];
        b[i] = e;
    }
    free(k->buckets);
    k->buckets = b;
    k->nbuckets = nb;
}

static void add(ikind_t *k, const char *name, size_t len, uint64_t h, uint32_t count)
{
    if (k->n + 1 > k->nbuckets)
        grow(k);
    ientry_t *e = xmalloc(sizeof(*e) + len + 1);
    e->hash = h;
    e->count = count;
    e->len = len;
    memcpy(e->name, name, len);
    e->name[len] = '\0';
    size_t i = h & (k->nbuckets - 1);
    e->hnext = k->buckets[i];
    k->buckets[i] = e;
    e->next = NULL;
    e->prev = k->last;
    if (k->last)
        k->last->next = e;
    else
        k->first = e;
    k->last = e;
    k->n++;
}

static void unlink_entry(ikind_t *k, ientry_t **slot)
{
    ientry_t *e = *slot;
    *slot = e->hnext;
    if (e->prev)
        e->prev->next = e->next;
    else
        k->first = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        k->last = e->prev;
    k->n--;
    free(e);
}

uint32_t itable_set(itable_t *t, int kind, const char *name, size_t len, uint32_t count)
{
    assert(kind >= 0 && kind < ITABLE_KINDS);
    ikind_t *k = &t->k[kind];
    uint64_t h = XXH3_64bits(name, len);
    ientry_t **slot = find_slot(k, name, len, h);
    uint32_t old = slot && *slot ? (*slot)->count : 0;
    if (slot && *slot) {
        if (count)
            (*slot)->count = count;
        else
            unlink_entry(k, slot);
    } else if (count) {
        add(k, name, len, h, count);
    }
    return old;
}

uint32_t itable_get(const itable_t *t, int kind, const char *name, size_t len)
{
    assert(kind >= 0 && kind < ITABLE_KINDS);
    ientry_t **slot = find_slot(&t->k[kind], name, len, XXH3_64bits(name, len));
    return slot && *slot ? (*slot)->count : 0;
}

uint64_t itable_receivers(const itable_t *t, const char *ch, size_t chlen, int shard)
{
    if (shard)
        return itable_get(t, 2, ch, chlen);
    uint64_t n = itable_get(t, 0, ch, chlen);
    for (const ientry_t *e = t->k[1].first; e; e = e->next)
        if (glob_match(e->name, e->len, ch, chlen))
            n += e->count;
    return n;
}

size_t itable_topics(const itable_t *t, int kind)
{
    assert(kind >= 0 && kind < ITABLE_KINDS);
    return t->k[kind].n;
}

void itable_foreach(const itable_t *t, int kind, itable_visit_fn fn, void *ud)
{
    assert(kind >= 0 && kind < ITABLE_KINDS);
    for (const ientry_t *e = t->k[kind].first; e; e = e->next)
        fn(ud, kind, e->name, e->len, e->count);
}
