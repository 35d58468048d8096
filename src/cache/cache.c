/* cache: the node-local key/value store; see cache.h.
 *
 * Owns: every entry (one allocation: header, key bytes, value bytes), and four
 * structures that thread through the entries' headers without allocating per
 * entry:
 *
 *   hash    two chained tables of power-of-two size, ht[0] and ht[1]. ht[1]
 *           is in use only while rehashing from ht[0] into it (grow or
 *           shrink). Buckets of ht[0] below rehash_idx have been moved and
 *           are empty. The hash is XXH3-64 keyed with the seed from
 *           cache_new().
 *   lru     a doubly linked list, most recently used at lru_head; eviction
 *           takes lru_tail.
 *   heap    a binary min-heap on expire_at holding exactly the entries with
 *           an expire time; each entry knows its slot (heap_idx).
 *   pending entries dropped by cache_flush_all(), chained through 'next',
 *           freed a batch at a time by cache_cron() (or cache_evict()).
 *
 * Invariants (cache_check() verifies every one of them):
 *
 *   1. Every live entry is in exactly one bucket of exactly one table: the
 *      bucket its hash selects in that table; in ht[0] only at or above
 *      rehash_idx while rehashing. ht[0].used + ht[1].used is the number of
 *      live entries.
 *   2. The lru list and the tables hold the same set of entries. Pending
 *      entries are in neither.
 *   3. (There is no ordered index: a new key costs a hash insert and nothing
 *      more. Prefix flushes find their keys by sweeping the table, see "lazy
 *      prefix flushes".)
 *   4. heap[i]->heap_idx == i, heap[parent(i)]->expire_at <= heap[i]->expire_at,
 *      and the heap holds exactly the live entries with expire_at != 0.
 *   5. used == the allocator's usable size of every live and pending entry,
 *      both bucket arrays and the heap array.
 *   7. by_first[b] is the number of live entries whose key starts with byte
 *      b, exp_by_first[b] those of them with an expire time (keys of length
 *      0 are in neither): the command layer's per-database DBSIZE and INFO
 *      keyspace read them (cache_count_first_byte).
 *   6. No operation does unbounded work on its own: a lookup, set or delete
 *      moves at most one bucket of a rehash (looking at no more than ten
 *      empty ones). Walking the whole table at once happens only in
 *      cache_foreach() and cache_foreach_prefix() (KEYS, SWAPDB),
 *      cache_flush_prefix() (SWAPDB), cache_check() and cache_free(); a
 *      prefix flush's sweep walks it a bounded step at a time.
 *   7. Every entry's kind is a string encoding, KIND_HASH or KIND_SET
 *      (cache_check checks it as it walks the lru list).
 *
 * Entry life:
 *
 *   cache_set() ---> live ---- cache_delete(), cache_flush_prefix() -----> freed
 *                     |  \---- expiry (lazy or cache_cron()), eviction --> freed
 *                     |                                 (on_gone called first)
 *                     \------- cache_flush_all() --> pending -- cache_cron() --> freed
 *
 * Replacing a value keeps the allocation when the new value fits and does not
 * waste more than half of it; otherwise a new entry takes the old one's place
 * in the bucket chain and the heap
 * slot, and goes to the head of the lru list.
 *
 * Never: walks the table on the request path, calls back into the caller
 * except through on_gone (and the visit callbacks of the iterators), or keeps
 * a pointer to caller memory.
 */
#include "cache.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <xxhash.h>

#include "mem.h"

/* An entry: 64 bytes of header, then the key and the value. */
struct cache_entry {
    cache_entry_t *hnext; /* next entry in the same hash bucket */
    cache_entry_t *prev;  /* lru: neighbour towards the head (more recent) */
    cache_entry_t *next;  /* lru: neighbour towards the tail; pending chain */
    int64_t expire_at;    /* absolute ms; 0: none (and not in the heap) */
    uint64_t version;     /* the newest ordered write or flush of this key (0: none) */
    uint64_t wseq;        /* cache->wseq when the entry was made: a pending prefix flush
                             with a larger seq covers it (see "lazy prefix flushes") */
    uint32_t heap_idx;    /* slot in the heap while expire_at != 0 */
    uint32_t vlen;        /* value bytes, at data[klen] */
    uint32_t klen;        /* key bytes, at data[0] */
    uint32_t kind : 3;    /* enum kind: the value's type, a string's encoding */
    uint32_t rmw : 1;     /* its version was a read-modify-write's (cache_entry_rmw) */
    uint32_t lru : 23;    /* LRU clock (seconds, wrapping) of the last access */
    char data[];          /* key, then value */
};

/* The type and, for a string, the encoding share one field: a hash's or a
 * set's encoding is in its value bytes (coll.h), a string's is not. */
enum kind {
    KIND_STR_AUTO = CACHE_ENC_AUTO,
    KIND_STR_STR = CACHE_ENC_STR,
    KIND_STR_RAW = CACHE_ENC_RAW,
    KIND_HASH = 3,
    KIND_SET = 4
};

#define ENTRY_HEADER offsetof(cache_entry_t, data)
#define LRU_MASK ((1u << 23) - 1)
_Static_assert(ENTRY_HEADER == 64, "the entry header is part of every key's memory: keep it small");

/* A prefix flush still being swept (see "lazy prefix flushes"). */
typedef struct pflush {
    uint64_t id;     /* cache_flush_prefix_start's answer */
    uint64_t seq;    /* covers entries with wseq < seq... */
    uint64_t below;  /* ...and version < below... */
    char *prefix;    /* ...whose key starts with prefix (owned) */
    size_t plen;
    int64_t now;     /* ms when it was made: an entry live then counts (removed) */
    size_t removed;  /* live entries it removed so far */
    size_t unlinked; /* entries it took out of the table so far, expired ones too */
    bool signalled;  /* the change listener heard CACHE_CHANGE_PREFIX */
    bool held;       /* its result is kept until cache_flush_release */
    const cache_entry_t *marker; /* draining (cache_flush_all): over when the
                                    pending chain's head is this */
} pflush_t;

typedef struct pflush_done {
    uint64_t id;
    size_t removed;
} pflush_done_t;

enum {
    PF_MAX = 64,         /* pending prefix flushes; one more finishes the oldest at once */
    PF_DONE = 256,       /* results kept of finished ones (> PF_MAX: a sweep step
                            finishes at most PF_MAX before its caller looks) */
    PF_SYNC_MAX = 16384, /* a table with more buckets and entries than this is swept
                            lazily, at once otherwise... */
    PF_SYNC_US = 1000    /* ...or this long (checked every CRON_BATCH entries) */
};

typedef struct table {
    cache_entry_t **b; /* buckets; NULL when the table is unused */
    size_t size;       /* buckets, a power of two; 0 when unused */
    size_t used;       /* entries in this table */
} table_t;

struct cache {
    table_t ht[2];           /* ht[0] main; ht[1] rehash target or unused */
    size_t rehash_idx;       /* next ht[0] bucket to move, while rehashing */
    cache_entry_t *lru_head; /* most recently used */
    cache_entry_t *lru_tail; /* least recently used: evicted first */
    cache_entry_t **heap;    /* expiry min-heap; NULL when empty */
    size_t heap_len;         /* entries in heap */
    size_t heap_cap;         /* slots allocated */
    cache_entry_t *pending;  /* flushed entries to free, chained by next */
    size_t used;             /* bytes, see invariant 5 */
    uint64_t max_version;    /* highest version an entry was ever given */
    size_t maxmemory;        /* 0: no limit */
    uint64_t seed;           /* hash seed */
    cache_stats_t stats;     /* counters for INFO */
    cache_evict_fn on_gone;  /* told about evictions and expiries; may be NULL */
    void *on_gone_ud;        /* its argument */
    cache_change_fn on_change; /* told about every change; may be NULL */
    void *on_change_ud;        /* its argument */
    uint32_t lru_clock;      /* seconds of the last 'now' seen, & LRU_MASK */
    uint32_t lfu_minutes;    /* minutes of the last 'now' seen, & LFU_MIN_MASK */
    int policy;              /* enum cache_policy */
    int64_t now;             /* ms: the last 'now' seen (lru_clock_at) */
    uint64_t wseq;           /* the next entry's wseq */
    pflush_t pf[PF_MAX];     /* pending prefix flushes, oldest first (invariant 8) */
    size_t npf;
    size_t sweep_idx;        /* the sweep pass's next bucket of ht[0]... */
    size_t sweep_size;       /* ...while ht[0] has this size (else the pass starts again) */
    uint64_t sweep_upto;     /* the pass under way ends the pending flushes with id <= this;
                                0: no pass under way */
    uint64_t pf_last_id;
    pflush_done_t pf_done[PF_DONE]; /* the last PF_DONE finished, a ring */
    size_t pf_done_next;
    pflush_done_t *pf_held;  /* finished flushes held (cache_flush_hold), unordered */
    size_t pf_nheld;
    pflush_t *drain;         /* flushes a cache_flush_all took over, counting what
                                free_pending frees; in id order */
    size_t ndrain;
    size_t pf_sync_max;      /* PF_SYNC_MAX, or cache_set_flush_sync_max's */
    size_t by_first[256];     /* live entries by first key byte, invariant 7 */
    size_t exp_by_first[256]; /* those with an expire time */
};

enum {
    TABLE_MIN_SIZE = 4,       /* buckets of an empty table */
    TABLE_SHRINK_RATIO = 8,   /* shrink when fewer entries than buckets / this */
    REHASH_EMPTY_VISITS = 10, /* empty buckets a one-bucket step may skip */
    CRON_REHASH_BATCH = 100,  /* buckets moved between clock reads in cron */
    CRON_BATCH = 64,          /* entries expired or freed between clock reads */
    HEAP_MIN_CAP = 16,        /* first heap allocation, in slots */
    SCAN_EMPTY_FACTOR = 10,   /* buckets a scan may look at per entry asked for */
    SWEEP_PREFETCH = 16       /* buckets ahead a sweep prefetches the first entry of */
};

/* ---------------------------------------------------------------- helpers */

static uint64_t hash_key(const cache_t *c, const char *key, size_t klen)
{
    return XXH3_64bits_withSeed(key, klen, c->seed);
}

static bool key_eq(const cache_entry_t *e, const char *key, size_t klen)
{
    return e->klen == klen && (klen == 0 || memcmp(e->data, key, klen) == 0);
}

static bool has_prefix(const cache_entry_t *e, const char *prefix, size_t plen)
{
    return e->klen >= plen && (plen == 0 || memcmp(e->data, prefix, plen) == 0);
}

static bool is_expired(const cache_entry_t *e, int64_t now)
{
    return e->expire_at != 0 && now > e->expire_at;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool rehashing(const cache_t *c)
{
    return c->ht[1].b != NULL;
}

/* -------------------------------------------------------------- hash table */

static void table_alloc(cache_t *c, table_t *t, size_t size)
{
    t->b = xcalloc(size, sizeof(*t->b));
    t->size = size;
    t->used = 0;
    c->used += mem_usable(t->b);
}

static void table_release(cache_t *c, table_t *t)
{
    c->used -= mem_usable(t->b);
    free(t->b);
    memset(t, 0, sizeof(*t));
}

/* Smallest power of two >= n, at least TABLE_MIN_SIZE. */
static size_t table_size_for(size_t n)
{
    size_t s = TABLE_MIN_SIZE;
    while (s < n)
        s <<= 1;
    return s;
}

/* Starts an incremental rehash of ht[0] into a new table of 'size' buckets. */
static void rehash_start(cache_t *c, size_t size)
{
    assert(!rehashing(c));
    table_alloc(c, &c->ht[1], size);
    c->rehash_idx = 0;
}

/* Moves up to n non-empty buckets of ht[0] into ht[1], looking at no more
 * than n * REHASH_EMPTY_VISITS empty ones. When ht[0] is empty, ht[1] becomes
 * the main table. Returns true while rehashing remains to be done. */
static bool rehash(cache_t *c, size_t n)
{
    if (!rehashing(c))
        return false;
    table_t *from = &c->ht[0], *to = &c->ht[1];
    size_t empty_visits = n * REHASH_EMPTY_VISITS;
    while (n-- > 0 && from->used > 0) {
        assert(c->rehash_idx < from->size);
        while (from->b[c->rehash_idx] == NULL) {
            c->rehash_idx++;
            if (--empty_visits == 0)
                return true;
        }
        cache_entry_t *e = from->b[c->rehash_idx];
        while (e) {
            cache_entry_t *next = e->hnext;
            size_t i = hash_key(c, e->data, e->klen) & (to->size - 1);
            e->hnext = to->b[i];
            to->b[i] = e;
            from->used--;
            to->used++;
            e = next;
        }
        from->b[c->rehash_idx++] = NULL;
    }
    if (from->used > 0)
        return true;
    table_release(c, from);
    c->ht[0] = *to;
    memset(to, 0, sizeof(*to));
    c->rehash_idx = 0;
    return false;
}

/* Returns the link (bucket slot or previous entry's hnext) that points at the
 * entry for key, and its table in *tab; NULL if there is none. */
static cache_entry_t **find_link(const cache_t *c, const char *key, size_t klen, uint64_t h,
                                 int *tab)
{
    for (int t = 0; t < 2; t++) {
        const table_t *tb = &c->ht[t];
        if (tb->size == 0)
            break;
        size_t i = h & (tb->size - 1);
        if (t == 0 && rehashing(c) && i < c->rehash_idx)
            continue; /* already moved to ht[1] */
        for (cache_entry_t **l = &tb->b[i]; *l; l = &(*l)->hnext) {
            if (key_eq(*l, key, klen)) {
                *tab = t;
                return l;
            }
        }
    }
    return NULL;
}

static void maybe_grow(cache_t *c)
{
    if (!rehashing(c) && c->ht[0].used >= c->ht[0].size)
        rehash_start(c, table_size_for(c->ht[0].used + 1));
}

static void maybe_shrink(cache_t *c)
{
    if (!rehashing(c) && c->ht[0].size > TABLE_MIN_SIZE &&
        c->ht[0].used < c->ht[0].size / TABLE_SHRINK_RATIO)
        rehash_start(c, table_size_for(c->ht[0].used));
}

/* --------------------------------------------------------------- lru list */

static void lru_unlink(cache_t *c, cache_entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->lru_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

/* LFU data in an entry's lru field (cache.h, enum cache_policy): redis-server's
 * evict.c with a 7-bit counter. */
#define LFU_COUNTER_BITS  7
#define LFU_COUNTER_MAX   ((1u << LFU_COUNTER_BITS) - 1)
#define LFU_MIN_MASK      0xffffu
#define LFU_INIT_VAL      5
#define LFU_LOG_FACTOR    10
#define LFU_DECAY_MINUTES 1

static int is_lfu(const cache_t *c)
{
    return cache_policy_is_lfu(c->policy);
}

/* The counter of LFU data lru, less one per LFU_DECAY_MINUTES since its last
 * decrement (LFUDecrAndReturn). */
static unsigned lfu_decayed(const cache_t *c, uint32_t lru)
{
    unsigned counter = lru & LFU_COUNTER_MAX;
    unsigned ldt = lru >> LFU_COUNTER_BITS;
    unsigned elapsed = (c->lfu_minutes - ldt) & LFU_MIN_MASK;
    unsigned periods = elapsed / LFU_DECAY_MINUTES;
    return periods > counter ? 0 : counter - periods;
}

/* LFU data for an access: decayed, then incremented with probability
 * 1 / ((counter - LFU_INIT_VAL) * LFU_LOG_FACTOR + 1) (LFULogIncr). */
static uint32_t lfu_access(const cache_t *c, uint32_t lru)
{
    unsigned counter = lfu_decayed(c, lru);
    if (counter < LFU_COUNTER_MAX) {
        double r = (double)random() / RAND_MAX;
        double base = counter > LFU_INIT_VAL ? counter - LFU_INIT_VAL : 0;
        if (r < 1.0 / (base * LFU_LOG_FACTOR + 1))
            counter++;
    }
    return (c->lfu_minutes << LFU_COUNTER_BITS) | counter;
}

static void lru_push_head(cache_t *c, cache_entry_t *e)
{
    e->lru = is_lfu(c) ? (c->lfu_minutes << LFU_COUNTER_BITS) | LFU_INIT_VAL : c->lru_clock;
    e->prev = NULL;
    e->next = c->lru_head;
    if (c->lru_head)
        c->lru_head->prev = e;
    else
        c->lru_tail = e;
    c->lru_head = e;
}

static void lru_touch(cache_t *c, cache_entry_t *e)
{
    uint32_t lru = is_lfu(c) ? lfu_access(c, e->lru) : c->lru_clock;
    if (c->lru_head != e) {
        lru_unlink(c, e);
        lru_push_head(c, e);
    }
    e->lru = lru;
}

/* ------------------------------------------------------------- expiry heap */

static void heap_set(cache_t *c, size_t i, cache_entry_t *e)
{
    c->heap[i] = e;
    e->heap_idx = (uint32_t)i;
}

static void heap_sift_up(cache_t *c, size_t i)
{
    cache_entry_t *e = c->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (c->heap[parent]->expire_at <= e->expire_at)
            break;
        heap_set(c, i, c->heap[parent]);
        i = parent;
    }
    heap_set(c, i, e);
}

static void heap_sift_down(cache_t *c, size_t i)
{
    cache_entry_t *e = c->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= c->heap_len)
            break;
        if (child + 1 < c->heap_len && c->heap[child + 1]->expire_at < c->heap[child]->expire_at)
            child++;
        if (e->expire_at <= c->heap[child]->expire_at)
            break;
        heap_set(c, i, c->heap[child]);
        i = child;
    }
    heap_set(c, i, e);
}

static void heap_resize(cache_t *c, size_t cap)
{
    c->used -= mem_usable(c->heap);
    if (cap == 0) {
        free(c->heap);
        c->heap = NULL;
    } else {
        c->heap = xrealloc(c->heap, cap * sizeof(*c->heap));
    }
    c->heap_cap = cap;
    c->used += mem_usable(c->heap);
}

static void heap_insert(cache_t *c, cache_entry_t *e)
{
    assert(c->heap_len < UINT32_MAX);
    if (c->heap_len == c->heap_cap)
        heap_resize(c, c->heap_cap ? c->heap_cap * 2 : HEAP_MIN_CAP);
    heap_set(c, c->heap_len++, e);
    heap_sift_up(c, e->heap_idx);
    if (e->klen)
        c->exp_by_first[(unsigned char)e->data[0]]++;
}

static void heap_remove(cache_t *c, cache_entry_t *e)
{
    size_t i = e->heap_idx;
    assert(i < c->heap_len && c->heap[i] == e);
    if (e->klen)
        c->exp_by_first[(unsigned char)e->data[0]]--;
    cache_entry_t *last = c->heap[--c->heap_len];
    if (last != e) {
        heap_set(c, i, last);
        heap_sift_up(c, i);
        heap_sift_down(c, last->heap_idx);
    }
    if (c->heap_len == 0)
        heap_resize(c, 0);
    else if (c->heap_cap > HEAP_MIN_CAP && c->heap_len < c->heap_cap / 4)
        heap_resize(c, c->heap_cap / 2);
}

/* Gives e the expire time t (0: none), keeping the heap in step. */
static void entry_set_expire(cache_t *c, cache_entry_t *e, int64_t t)
{
    if (e->expire_at == t)
        return;
    if (e->expire_at == 0) {
        e->expire_at = t;
        heap_insert(c, e);
    } else if (t == 0) {
        heap_remove(c, e);
        e->expire_at = 0;
    } else {
        e->expire_at = t;
        heap_sift_up(c, e->heap_idx);
        heap_sift_down(c, e->heap_idx);
    }
}

/* ----------------------------------------------------------------- entries */

static cache_entry_t *entry_new(cache_t *c, const char *key, size_t klen, const char *val,
                                size_t vlen)
{
    cache_entry_t *e = xmalloc(ENTRY_HEADER + klen + vlen);
    e->hnext = e->prev = e->next = NULL;
    e->expire_at = 0;
    e->heap_idx = 0;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    e->version = 0;
    e->wseq = c->wseq++;
    e->kind = KIND_STR_AUTO;
    e->rmw = 0;
    e->lru = c->lru_clock;
    if (klen)
        memcpy(e->data, key, klen);
    if (vlen)
        memcpy(e->data + klen, val, vlen);
    c->used += mem_usable(e);
    return e;
}

static void entry_free(cache_t *c, cache_entry_t *e)
{
    c->used -= mem_usable(e);
    free(e);
}

/* Tells the change listener about key (see cache_on_change). */
static void changed(const cache_t *c, const char *key, size_t klen)
{
    if (c->on_change)
        c->on_change(c->on_change_ud, CACHE_CHANGE_KEY, key, klen);
}

/* Takes e out of every structure and frees it, without telling the change
 * listener (entry_remove does). link and tab locate e in the hash table;
 * pass link NULL to have them looked up. */
static void entry_unlink(cache_t *c, cache_entry_t *e, cache_entry_t **link, int tab)
{
    if (!link)
        link = find_link(c, e->data, e->klen, hash_key(c, e->data, e->klen), &tab);
    assert(link && *link == e);
    *link = e->hnext;
    c->ht[tab].used--;
    if (e->klen)
        c->by_first[(unsigned char)e->data[0]]--;
    lru_unlink(c, e);
    if (e->expire_at)
        heap_remove(c, e);
    entry_free(c, e);
}

/* entry_unlink, the change listener told first. Every removal of an entry
 * passes here but those of a lazy prefix flush the listener heard of. */
static void entry_remove(cache_t *c, cache_entry_t *e, cache_entry_t **link, int tab)
{
    changed(c, e->data, e->klen);
    entry_unlink(c, e, link, tab);
}

/* Removes e for a reason the caller is told about (eviction or expiry). */
static void entry_gone(cache_t *c, cache_entry_t *e, cache_entry_t **link, int tab, int reason)
{
    if (reason == CACHE_GONE_EXPIRED)
        c->stats.expired++;
    else
        c->stats.evicted++;
    if (c->on_gone)
        c->on_gone(c->on_gone_ud, e->data, e->klen, reason);
    entry_remove(c, e, link, tab);
}

static void pf_result(cache_t *c, const pflush_t *p);
static bool pf_covers(const pflush_t *p, const cache_entry_t *e);

/* Ends the draining flushes whose part of the pending chain is freed. */
static void drain_settle(cache_t *c)
{
    for (size_t k = 0; k < c->ndrain;) {
        if (c->drain[k].marker != c->pending) {
            k++;
            continue;
        }
        pf_result(c, &c->drain[k]);
        free(c->drain[k].prefix);
        memmove(&c->drain[k], &c->drain[k + 1], (c->ndrain - k - 1) * sizeof(pflush_t));
        c->ndrain--;
    }
}

/* Frees up to n entries left by cache_flush_all(), each counted for the
 * oldest draining flush that covers it. Returns how many. */
static size_t free_pending(cache_t *c, size_t n)
{
    size_t done = 0;
    while (c->pending && done < n) {
        cache_entry_t *e = c->pending;
        for (size_t k = 0; k < c->ndrain; k++)
            if (pf_covers(&c->drain[k], e)) {
                c->drain[k].removed += !is_expired(e, c->drain[k].now);
                break;
            }
        c->pending = e->next;
        entry_free(c, e);
        done++;
        if (c->ndrain)
            drain_settle(c);
    }
    return done;
}

/* ---------------------------------------------------- lazy prefix flushes
 *
 * A prefix flush that would remove many entries in one go stalls the loop
 * (100k of 1M keys: a quarter of a second). There is no ordered index to
 * find a prefix's keys (a new key costs a hash insert and nothing more), so
 * a prefix flush is recorded (pflush_t) and the entries it covers are dead
 * at once: every lookup, write, iterator, eviction and expiry treats a
 * covered entry as gone (and removes it when it meets it, counted for the
 * oldest flush that covers it). A sweep pass then walks the buckets of the
 * table in order, a bounded step at a time (cache_sweep), removing what any
 * pending flush covers. While the table is rehashing the sweep does rehash
 * steps instead, and a pass that finds the table's size changed starts
 * again, so a pass is a walk of one table whose buckets never move: it
 * visits every entry present for the whole pass. (In bucket order, not
 * SCAN's reverse-binary order: the walk reads the bucket array in sequence,
 * about three times faster.) A covered entry was present when its flush was
 * recorded and never comes back (a new entry of its key has a larger wseq),
 * so a pass begun after a flush was recorded leaves none of its entries: the
 * pass ends the flushes recorded before it began (ids up to sweep_upto);
 * those recorded during it wait for the next pass. When the
 * whole pass fits in the flush's own budget (pf_sync_max visits, 1 ms), it
 * is done at once. An entry made after the flush has a larger wseq and is
 * not covered; nor is one whose version the flush is below (a peer's flush
 * ordered before a write it holds).
 *
 * Invariant 8 (cache_check): pf[] is in id order and in seq order, no
 * pending flush's seq is above wseq, and a pass under way ends at least the
 * oldest pending flush (sweep_upto >= pf[0].id). */

static bool pf_covers(const pflush_t *p, const cache_entry_t *e)
{
    return e->wseq < p->seq && e->version < p->below && has_prefix(e, p->prefix, p->plen);
}

/* The oldest pending flush that covers e (its index), or -1. */
static int pf_cover(const cache_t *c, const cache_entry_t *e)
{
    for (size_t i = 0; i < c->npf; i++)
        if (pf_covers(&c->pf[i], e))
            return (int)i;
    return -1;
}

static bool pf_dead(const cache_t *c, const cache_entry_t *e)
{
    return c->npf && pf_cover(c, e) >= 0;
}

/* When a pending flush covers e, removes it (counted for that flush unless
 * its time had passed; the evict callback is not called: the flush took it)
 * and returns true. link and tab as entry_remove's. */
static bool pf_reap(cache_t *c, cache_entry_t *e, cache_entry_t **link, int tab)
{
    if (!c->npf)
        return false;
    int i = pf_cover(c, e);
    if (i < 0)
        return false;
    if (!is_expired(e, c->pf[i].now)) /* live when the flush was made */
        c->pf[i].removed++;
    c->pf[i].unlinked++;
    if (c->pf[i].signalled) /* the listener knows: CACHE_CHANGE_PREFIX */
        entry_unlink(c, e, link, tab);
    else
        entry_remove(c, e, link, tab); /* flushed: never reported as expired */
    return true;
}

/* p is over: its result goes to the ring (and, held, to pf_held). */
static void pf_result(cache_t *c, const pflush_t *p)
{
    c->pf_done[c->pf_done_next++ % PF_DONE] = (pflush_done_t){p->id, p->removed};
    if (p->held) {
        c->pf_held = xrealloc(c->pf_held, (c->pf_nheld + 1) * sizeof(*c->pf_held));
        c->pf_held[c->pf_nheld++] = (pflush_done_t){p->id, p->removed};
    }
}

/* Pending flush i is over: its result goes to the ring, it leaves pf[]. */
static void pf_finish(cache_t *c, size_t i)
{
    pflush_t *p = &c->pf[i];
    pf_result(c, p);
    free(p->prefix);
    memmove(&c->pf[i], &c->pf[i + 1], (c->npf - i - 1) * sizeof(pflush_t));
    c->npf--;
}

/* Removes what a pending flush covers in bucket i of ht[0]. Returns the
 * visits it made (the bucket and its entries). */
static size_t sweep_bucket(cache_t *c, size_t i)
{
    size_t n = 1;
    cache_entry_t **link = &c->ht[0].b[i];
    while (*link) {
        n++;
        if (!pf_reap(c, *link, link, 0)) /* a reap moves *link to the next */
            link = &(*link)->hnext;
    }
    return n;
}

/* Sweeps for at most max visits, and until deadline_us (mono_us; 0: none;
 * looked at every CRON_BATCH visits): each pass that ends ends the flushes
 * recorded before it began. Returns 1 when no flush is pending. */
static int sweep_run(cache_t *c, size_t max, int64_t deadline_us)
{
    size_t n = 0, check_at = CRON_BATCH;
    while (c->npf > 0) {
        if (n >= max)
            return 0;
        if (deadline_us && n >= check_at) {
            if (mono_us() >= deadline_us)
                return 0;
            check_at = n + CRON_BATCH;
        }
        if (rehashing(c)) { /* buckets move: finish that first */
            rehash(c, 1);
            n += REHASH_EMPTY_VISITS;
            continue;
        }
        if (c->sweep_upto == 0 || c->sweep_size != c->ht[0].size) {
            /* A new pass (or one begun again), for every flush pending now. */
            c->sweep_upto = c->pf[c->npf - 1].id;
            c->sweep_idx = 0;
            c->sweep_size = c->ht[0].size;
        }
        if (c->sweep_idx + SWEEP_PREFETCH < c->sweep_size) { /* overlap the entries' misses */
            const cache_entry_t *ahead = c->ht[0].b[c->sweep_idx + SWEEP_PREFETCH];
            if (ahead) {
                __builtin_prefetch(ahead);
                __builtin_prefetch(ahead->data); /* the key: the next cache line */
            }
        }
        n += sweep_bucket(c, c->sweep_idx++);
        if (c->sweep_idx == c->sweep_size) {
            while (c->npf > 0 && c->pf[0].id <= c->sweep_upto)
                pf_finish(c, 0);
            c->sweep_upto = 0;
        }
    }
    return 1;
}

/* Ends the oldest pending flush at once: the rest of the pass under way
 * (or a whole pass), however long it takes. */
static void pf_complete_oldest(cache_t *c)
{
    uint64_t id = c->pf[0].id;
    while (c->npf > 0 && c->pf[0].id == id)
        sweep_run(c, CRON_BATCH, 0);
}

/* -------------------------------------------------------------- public API */

cache_t *cache_new(uint64_t seed, size_t maxmemory)
{
    cache_t *c = xcalloc(1, sizeof(*c));
    c->seed = seed;
    c->maxmemory = maxmemory;
    c->pf_sync_max = PF_SYNC_MAX;
    table_alloc(c, &c->ht[0], TABLE_MIN_SIZE);
    return c;
}

void cache_free(cache_t *c)
{
    if (!c)
        return;
    cache_entry_t *e = c->lru_head;
    while (e) {
        cache_entry_t *next = e->next;
        free(e);
        e = next;
    }
    free_pending(c, SIZE_MAX);
    for (size_t i = 0; i < c->npf; i++)
        free(c->pf[i].prefix);
    free(c->pf_held);
    free(c->drain); /* free_pending ended every draining flush */
    free(c->ht[0].b);
    free(c->ht[1].b);
    free(c->heap);
    free(c);
}

void cache_set_maxmemory(cache_t *c, size_t maxmemory)
{
    c->maxmemory = maxmemory;
}

size_t cache_maxmemory(const cache_t *c)
{
    return c->maxmemory;
}

/* Advances the LRU clock to now (ms). */
static void lru_clock_at(cache_t *c, int64_t now)
{
    c->now = now;
    c->lru_clock = (uint32_t)(now / 1000) & LRU_MASK;
    c->lfu_minutes = (uint32_t)(now / 60000) & LFU_MIN_MASK;
}

cache_entry_t *cache_lookup(cache_t *c, const char *key, size_t klen, int64_t now, int flags)
{
    lru_clock_at(c, now);
    rehash(c, 1);
    int tab = 0;
    cache_entry_t **link = find_link(c, key, klen, hash_key(c, key, klen), &tab);
    cache_entry_t *e = link ? *link : NULL;
    if (e && pf_reap(c, e, link, tab)) {
        e = NULL;
    } else if (e && is_expired(e, now)) {
        entry_gone(c, e, link, tab, CACHE_GONE_EXPIRED);
        e = NULL;
    }
    if (flags & CACHE_READ) {
        if (e)
            c->stats.hits++;
        else
            c->stats.misses++;
    }
    if (e && !(flags & CACHE_NOTOUCH))
        lru_touch(c, e);
    return e;
}

/* 1 when a value of vlen bytes replaces e's in e's own allocation (the
 * same rule for cache_set and cache_set_in_place). */
static int fits_in_place(const cache_entry_t *e, size_t vlen)
{
    size_t need = ENTRY_HEADER + e->klen + vlen, have = mem_usable(e);
    return need <= have && need >= have / 2;
}

/* Stores val in e's allocation (fits_in_place said so). */
static cache_entry_t *set_in_place(cache_t *c, cache_entry_t *e, const char *val, size_t vlen,
                                   int64_t expire_at)
{
    if (vlen)
        memmove(e->data + e->klen, val, vlen);
    e->vlen = (uint32_t)vlen;
    e->kind = KIND_STR_AUTO;
    e->rmw = 0;
    entry_set_expire(c, e, expire_at);
    lru_touch(c, e);
    return e;
}

cache_entry_t *cache_set_in_place(cache_t *c, cache_entry_t *e, const char *val, size_t vlen,
                                  int64_t expire_at)
{
    assert(vlen <= UINT32_MAX);
    if (!fits_in_place(e, vlen))
        return NULL;
    changed(c, e->data, e->klen);
    return set_in_place(c, e, val, vlen, expire_at);
}

cache_entry_t *cache_set(cache_t *c, const char *key, size_t klen, const char *val, size_t vlen,
                         int64_t expire_at)
{
    assert(klen <= UINT32_MAX && vlen <= UINT32_MAX);
    changed(c, key, klen);
    rehash(c, 1);
    uint64_t h = hash_key(c, key, klen);
    int tab = 0;
    cache_entry_t **link = find_link(c, key, klen, h, &tab);
    if (link && pf_reap(c, *link, link, tab))
        link = NULL; /* a flush took the old entry: this one is new */

    if (link) {
        cache_entry_t *old = *link;
        if (fits_in_place(old, vlen))
            return set_in_place(c, old, val, vlen, expire_at);
        cache_entry_t *e = entry_new(c, key, klen, val, vlen);
        e->version = old->version; /* a new value keeps the key's place in the order */
        e->hnext = old->hnext;
        *link = e;
        lru_unlink(c, old);
        lru_push_head(c, e);
        if (is_lfu(c)) /* a new value of the key keeps its frequency, as in redis-server */
            e->lru = lfu_access(c, old->lru);
        if (old->expire_at) {
            e->expire_at = old->expire_at;
            heap_set(c, old->heap_idx, e);
        }
        entry_set_expire(c, e, expire_at);
        entry_free(c, old);
        return e;
    }

    maybe_grow(c);
    cache_entry_t *e = entry_new(c, key, klen, val, vlen);
    table_t *t = &c->ht[rehashing(c) ? 1 : 0];
    size_t i = h & (t->size - 1);
    e->hnext = t->b[i];
    t->b[i] = e;
    t->used++;
    if (klen)
        c->by_first[(unsigned char)key[0]]++;
    lru_push_head(c, e);
    entry_set_expire(c, e, expire_at);
    return e;
}

int cache_delete(cache_t *c, const char *key, size_t klen, int64_t now)
{
    c->now = now;
    rehash(c, 1);
    int tab = 0;
    cache_entry_t **link = find_link(c, key, klen, hash_key(c, key, klen), &tab);
    if (!link || pf_reap(c, *link, link, tab))
        return 0;
    if (is_expired(*link, now)) {
        entry_gone(c, *link, link, tab, CACHE_GONE_EXPIRED);
        return 0;
    }
    entry_remove(c, *link, link, tab);
    return 1;
}

void cache_set_expire(cache_t *c, cache_entry_t *e, int64_t expire_at)
{
    changed(c, e->data, e->klen);
    entry_set_expire(c, e, expire_at);
}

size_t cache_flush_prefix(cache_t *c, const char *prefix, size_t plen, int64_t now)
{
    return cache_flush_prefix_below(c, prefix, plen, now, UINT64_MAX);
}

/* Entries whose expire time is <= now (expired, not reaped yet), counted in
 * the heap without visiting a subtree whose root has not expired: O(expired). */
static size_t heap_count_expired(const cache_t *c, size_t i, int64_t now)
{
    if (i >= c->heap_len || c->heap[i]->expire_at > now)
        return 0;
    return 1 + heap_count_expired(c, 2 * i + 1, now) + heap_count_expired(c, 2 * i + 2, now);
}

/* 1 when prefix covers every entry and none holds a write newer than the
 * flush: the empty prefix, or a database's byte when every key is in that
 * database (FLUSHPREFIX "" and FLUSHDB of the only database in use). */
static int prefix_covers_all(const cache_t *c, const char *prefix, size_t plen, uint64_t below)
{
    if (c->max_version >= below)
        return 0;
    return plen == 0 || (plen == 1 && c->by_first[(unsigned char)prefix[0]] == cache_count(c));
}

/* cache_flush_prefix_start, sweeping at most sync_max visits or PF_SYNC_US
 * at once (SIZE_MAX: until every pending flush is over, however long it
 * takes). */
static uint64_t pf_start(cache_t *c, const char *prefix, size_t plen, int64_t now,
                         uint64_t below, size_t sync_max, size_t *removed)
{
    lru_clock_at(c, now);
    if (c->npf == 0 && prefix_covers_all(c, prefix, plen, below)) {
        /* As FLUSHALL: the table goes at once, cache_cron frees it. */
        *removed = cache_count(c) - heap_count_expired(c, 0, now);
        cache_flush_all(c);
        return 0;
    }
    if (c->npf == PF_MAX)
        pf_complete_oldest(c);
    pflush_t *p = &c->pf[c->npf++];
    uint64_t id = ++c->pf_last_id;
    *p = (pflush_t){.id = id, .seq = c->wseq, .below = below, .plen = plen, .now = now};
    p->prefix = xmalloc(plen ? plen : 1);
    memcpy(p->prefix, prefix, plen);
    /* At once when a whole pass fits in sync_max visits (and 1 ms); else
     * no attempt: the rest of the loop turn is the members' and clients'. */
    size_t pass = c->ht[0].size + c->ht[1].size + cache_count(c);
    if (sync_max == SIZE_MAX)
        sweep_run(c, SIZE_MAX, 0);
    else if (pass <= sync_max)
        sweep_run(c, sync_max, mono_us() + PF_SYNC_US);
    if (cache_flush_result(c, id, removed))
        return 0;
    /* The rest is dead from now on: the change listener hears it once. */
    for (size_t i = 0; i < c->npf; i++) {
        if (c->pf[i].id != id)
            continue;
        if (c->on_change)
            c->on_change(c->on_change_ud, CACHE_CHANGE_PREFIX, c->pf[i].prefix, plen);
        c->pf[i].signalled = true;
    }
    return id;
}

uint64_t cache_flush_prefix_start(cache_t *c, const char *prefix, size_t plen, int64_t now,
                                 uint64_t below, size_t *removed)
{
    return pf_start(c, prefix, plen, now, below, c->pf_sync_max, removed);
}

int cache_flush_result(const cache_t *c, uint64_t id, size_t *removed)
{
    *removed = 0;
    for (size_t i = 0; i < c->npf; i++)
        if (c->pf[i].id == id) {
            *removed = c->pf[i].removed;
            return 0;
        }
    for (size_t i = 0; i < c->ndrain; i++)
        if (c->drain[i].id == id) {
            *removed = c->drain[i].removed;
            return 0;
        }
    for (size_t k = 0; k < c->pf_nheld; k++)
        if (c->pf_held[k].id == id) {
            *removed = c->pf_held[k].removed;
            return 1;
        }
    for (size_t k = 0; k < PF_DONE; k++)
        if (c->pf_done[k].id == id)
            *removed = c->pf_done[k].removed;
    return 1;
}

/* Marks pending (or draining) flush id held or not. */
static void pf_set_held(cache_t *c, uint64_t id, bool held)
{
    for (size_t i = 0; i < c->npf; i++)
        if (c->pf[i].id == id)
            c->pf[i].held = held;
    for (size_t i = 0; i < c->ndrain; i++)
        if (c->drain[i].id == id)
            c->drain[i].held = held;
}

void cache_flush_hold(cache_t *c, uint64_t id)
{
    pf_set_held(c, id, true);
}

void cache_flush_release(cache_t *c, uint64_t id)
{
    pf_set_held(c, id, false);
    for (size_t k = 0; k < c->pf_nheld; k++)
        if (c->pf_held[k].id == id) {
            c->pf_held[k] = c->pf_held[--c->pf_nheld];
            break;
        }
}

size_t cache_flush_unlinked_first_byte(const cache_t *c, unsigned char b)
{
    size_t n = 0;
    for (size_t i = 0; i < c->npf; i++)
        if (c->pf[i].plen > 0 && (unsigned char)c->pf[i].prefix[0] == b)
            n += c->pf[i].unlinked;
    return n;
}

uint64_t cache_flush_newest_under(const cache_t *c, const char *start, size_t len)
{
    for (size_t i = c->npf; i-- > 0;) {
        const pflush_t *p = &c->pf[i];
        size_t common = p->plen < len ? p->plen : len;
        if (common == 0 || memcmp(p->prefix, start, common) == 0)
            return p->id;
    }
    return 0;
}

size_t cache_flush_prefix_below(cache_t *c, const char *prefix, size_t plen, int64_t now,
                                uint64_t below)
{
    size_t removed;
    pf_start(c, prefix, plen, now, below, SIZE_MAX, &removed);
    return removed;
}

int cache_sweep(cache_t *c, int64_t now, int budget_us)
{
    lru_clock_at(c, now);
    int64_t deadline = mono_us() + (budget_us > 0 ? budget_us : 1);
    return !sweep_run(c, SIZE_MAX, deadline);
}

size_t cache_sweeping(const cache_t *c)
{
    return c->npf;
}

uint64_t cache_flush_newest(const cache_t *c)
{
    return c->npf ? c->pf[c->npf - 1].id : 0;
}

void cache_set_flush_sync_max(cache_t *c, size_t n)
{
    c->pf_sync_max = n;
}

uint64_t cache_entry_version(const cache_entry_t *e)
{
    return e->version;
}

void cache_entry_set_version(cache_t *c, cache_entry_t *e, uint64_t version)
{
    e->version = version;
    e->rmw = 0;
    if (version > c->max_version)
        c->max_version = version;
}

int cache_entry_rmw(const cache_entry_t *e)
{
    return e->rmw;
}

void cache_entry_set_rmw(cache_entry_t *e)
{
    e->rmw = 1;
}

size_t cache_flush_all_below(cache_t *c, uint64_t below)
{
    if (c->max_version < below)
        return cache_flush_all(c);
    size_t removed; /* a prefix flush of every key: gone now, swept in bounded steps */
    pf_start(c, "", 0, c->now, below, c->pf_sync_max, &removed);
    return removed;
}

size_t cache_flush_all(cache_t *c)
{
    /* Pending prefix flushes drain: what they cover goes with everything
     * else to the pending chain, and each counts its part as free_pending
     * frees it (no walk now); one is over once its part is freed. */
    const cache_entry_t *marker = c->pending;
    if (c->npf) {
        c->drain = xrealloc(c->drain, (c->ndrain + c->npf) * sizeof(*c->drain));
        for (size_t i = 0; i < c->npf; i++) {
            c->drain[c->ndrain] = c->pf[i];
            c->drain[c->ndrain++].marker = marker;
        }
        c->npf = 0;
    }
    c->sweep_upto = 0;
    size_t n = cache_count(c);
    if (c->on_change)
        c->on_change(c->on_change_ud, CACHE_CHANGE_ALL, NULL, 0);
    if (c->lru_tail) {
        c->lru_tail->next = c->pending;
        c->pending = c->lru_head;
    }
    if (c->ndrain)
        drain_settle(c); /* nothing of theirs on the chain: over now */
    c->lru_head = c->lru_tail = NULL;
    table_release(c, &c->ht[0]);
    if (rehashing(c))
        table_release(c, &c->ht[1]);
    c->rehash_idx = 0;
    table_alloc(c, &c->ht[0], TABLE_MIN_SIZE);
    c->heap_len = 0;
    heap_resize(c, 0);
    memset(c->by_first, 0, sizeof(c->by_first));
    memset(c->exp_by_first, 0, sizeof(c->exp_by_first));
    return n;
}

/* ---------------------------------------------------------------- eviction */

static const char *const policy_names[CACHE_POLICY_COUNT] = {
    [CACHE_POLICY_ALLKEYS_LRU] = "allkeys-lru",
    [CACHE_POLICY_ALLKEYS_LFU] = "allkeys-lfu",
    [CACHE_POLICY_ALLKEYS_RANDOM] = "allkeys-random",
    [CACHE_POLICY_VOLATILE_LRU] = "volatile-lru",
    [CACHE_POLICY_VOLATILE_LFU] = "volatile-lfu",
    [CACHE_POLICY_VOLATILE_RANDOM] = "volatile-random",
    [CACHE_POLICY_VOLATILE_TTL] = "volatile-ttl",
    [CACHE_POLICY_NOEVICTION] = "noeviction",
};

enum {
    EVICT_SAMPLES = 5,         /* maxmemory-samples */
    EVICT_SWEEP_VISITS = 1024  /* sweep visits tried before each eviction while a flush is pending */
};

static cache_entry_t *random_bucket(const cache_t *c);

const char *cache_policy_name(int policy)
{
    assert(policy >= 0 && policy < CACHE_POLICY_COUNT);
    return policy_names[policy];
}

int cache_policy_parse(const char *name, size_t len)
{
    for (int p = 0; p < CACHE_POLICY_COUNT; p++)
        if (strlen(policy_names[p]) == len && strncasecmp(name, policy_names[p], len) == 0)
            return p;
    return -1;
}

int cache_policy_is_lfu(int policy)
{
    return policy == CACHE_POLICY_ALLKEYS_LFU || policy == CACHE_POLICY_VOLATILE_LFU;
}

void cache_set_policy(cache_t *c, int policy)
{
    assert(policy >= 0 && policy < CACHE_POLICY_COUNT);
    c->policy = policy;
}

int cache_policy(const cache_t *c)
{
    return c->policy;
}

unsigned cache_entry_freq(const cache_t *c, const cache_entry_t *e)
{
    return lfu_decayed(c, e->lru);
}

void cache_entry_set_freq(const cache_t *c, cache_entry_t *e, unsigned freq)
{
    if (!is_lfu(c))
        return; /* the field holds the LRU clock: RESTORE's FREQ is ignored */
    if (freq > LFU_COUNTER_MAX)
        freq = LFU_COUNTER_MAX;
    e->lru = (c->lfu_minutes << LFU_COUNTER_BITS) | freq;
}

/* Any entry, at random (a random non-empty bucket, a random entry of its
 * chain); NULL when the cache is empty. */
static cache_entry_t *sample_any(const cache_t *c)
{
    if (cache_count(c) == 0)
        return NULL;
    cache_entry_t *e = NULL;
    for (size_t b = 0; !e && b < 1000; b++)
        e = random_bucket(c);
    if (!e)
        return c->lru_tail;
    size_t chain = 0;
    for (cache_entry_t *x = e; x; x = x->hnext)
        chain++;
    for (size_t k = (size_t)random() % chain; k > 0; k--)
        e = e->hnext;
    return e;
}

/* An entry with an expire time, at random; NULL when there is none. */
static cache_entry_t *sample_volatile(const cache_t *c)
{
    return c->heap_len ? c->heap[(size_t)random() % c->heap_len] : NULL;
}

/* How much the policy wants e gone: the larger, the sooner. */
static uint64_t evict_score(const cache_t *c, const cache_entry_t *e)
{
    if (is_lfu(c))
        return LFU_COUNTER_MAX - lfu_decayed(c, e->lru);
    return (c->lru_clock - e->lru) & LRU_MASK; /* idle seconds */
}

/* The entry the policy evicts next; NULL when it evicts nothing. */
static cache_entry_t *evict_victim(const cache_t *c)
{
    switch (c->policy) {
    case CACHE_POLICY_ALLKEYS_LRU:
        return c->lru_tail;
    case CACHE_POLICY_ALLKEYS_RANDOM:
        return sample_any(c);
    case CACHE_POLICY_VOLATILE_RANDOM:
        return sample_volatile(c);
    case CACHE_POLICY_VOLATILE_TTL:
        return c->heap_len ? c->heap[0] : NULL;
    case CACHE_POLICY_NOEVICTION:
        return NULL;
    default:
        break;
    }
    int vol = c->policy != CACHE_POLICY_ALLKEYS_LFU;
    cache_entry_t *best = NULL;
    uint64_t best_score = 0;
    for (int i = 0; i < EVICT_SAMPLES; i++) {
        cache_entry_t *e = vol ? sample_volatile(c) : sample_any(c);
        if (!e)
            return NULL;
        uint64_t score = evict_score(c, e);
        if (!best || score > best_score) {
            best = e;
            best_score = score;
        }
    }
    return best;
}

size_t cache_evict(cache_t *c)
{
    size_t evicted = 0;
    if (c->maxmemory == 0)
        return 0;
    while (c->used > c->maxmemory) {
        /* Entries already flushed go first: freeing them costs the same and
         * loses nothing. */
        if (free_pending(c, 1))
            continue;
        if (c->npf) { /* a bounded sweep step first: what a flush covers goes before live keys */
            size_t before = c->used;
            sweep_run(c, EVICT_SWEEP_VISITS, 0);
            if (c->used < before)
                continue;
        }
        cache_entry_t *e = evict_victim(c);
        if (!e)
            break;
        if (pf_reap(c, e, NULL, 0))
            continue; /* flushed already: freeing it loses nothing either */
        entry_gone(c, e, NULL, 0, CACHE_GONE_EVICTED);
        evicted++;
    }
    return evicted;
}

void cache_cron(cache_t *c, int64_t now, int budget_us)
{
    int64_t deadline = mono_us() + (budget_us > 0 ? budget_us : 0);
    lru_clock_at(c, now);

    /* Each phase does at least one batch, so some progress is certain. */
    while (free_pending(c, CRON_BATCH) == CRON_BATCH && mono_us() < deadline)
        ;

    size_t n = 0;
    while (c->heap_len > 0 && is_expired(c->heap[0], now)) {
        if (!pf_reap(c, c->heap[0], NULL, 0)) /* a flushed entry does not expire */
            entry_gone(c, c->heap[0], NULL, 0, CACHE_GONE_EXPIRED);
        if (++n % CRON_BATCH == 0 && mono_us() >= deadline)
            break;
    }

    maybe_shrink(c);
    while (rehash(c, CRON_REHASH_BATCH) && mono_us() < deadline)
        ;
    if (c->npf)
        cache_sweep(c, now, (int)(deadline - mono_us()));
}

/* Reverses the bits of v. */
static uint64_t rev64(uint64_t v)
{
    v = ((v >> 1) & 0x5555555555555555ull) | ((v & 0x5555555555555555ull) << 1);
    v = ((v >> 2) & 0x3333333333333333ull) | ((v & 0x3333333333333333ull) << 2);
    v = ((v >> 4) & 0x0f0f0f0f0f0f0f0full) | ((v & 0x0f0f0f0f0f0f0f0full) << 4);
    v = ((v >> 8) & 0x00ff00ff00ff00ffull) | ((v & 0x00ff00ff00ff00ffull) << 8);
    v = ((v >> 16) & 0x0000ffff0000ffffull) | ((v & 0x0000ffff0000ffffull) << 16);
    return (v >> 32) | (v << 32);
}

typedef size_t (*bucket_fn)(cache_t *c, int tab, size_t i, void *ud);

typedef struct visit {
    cache_visit_fn fn;
    void *ud;
} visit_t;

/* cache_scan's visit of bucket i of table tab: every entry no pending flush
 * covers goes to the caller's callback. Returns the entries in the bucket. */
static size_t visit_bucket(cache_t *c, int tab, size_t i, void *ud)
{
    const visit_t *v = ud;
    size_t n = 0;
    for (cache_entry_t *e = c->ht[tab].b[i]; e; e = e->hnext, n++)
        if (!pf_dead(c, e))
            v->fn(v->ud, e);
    return n;
}

/* Adds one to the high bits of v above mask, carrying downwards: the
 * reverse-binary increment that makes a cursor survive table resizes. */
static uint64_t cursor_next(uint64_t v, uint64_t mask)
{
    v |= ~mask;
    v = rev64(v);
    v++;
    return rev64(v);
}

/* One step of redis-server's dictScan(): visits the bucket(s) for cursor v
 * with fn (which adds what it counts to *n) and returns the next cursor.
 * While rehashing, visits the bucket of the smaller table and every bucket
 * of the larger table that it expands to. fn may remove entries of the
 * bucket it visits, never move the tables. */
static uint64_t scan_step(cache_t *c, uint64_t v, bucket_fn fn, void *ud, size_t *n)
{
    if (!rehashing(c)) {
        uint64_t m0 = c->ht[0].size - 1;
        *n += fn(c, 0, v & m0, ud);
        return cursor_next(v, m0);
    }
    int small = c->ht[0].size > c->ht[1].size, big = !small;
    uint64_t m0 = c->ht[small].size - 1, m1 = c->ht[big].size - 1;
    *n += fn(c, small, v & m0, ud);
    do {
        *n += fn(c, big, v & m1, ud);
        v = cursor_next(v, m1);
    } while (v & (m0 ^ m1));
    return v;
}

uint64_t cache_scan(cache_t *c, uint64_t cursor, size_t count, cache_visit_fn fn, void *ud)
{
    if (cache_count(c) == 0)
        return 0;
    if (count == 0)
        count = 1;
    size_t visited = 0;
    size_t steps = count > SIZE_MAX / SCAN_EMPTY_FACTOR ? SIZE_MAX : count * SCAN_EMPTY_FACTOR;
    visit_t v = {fn, ud};
    do {
        cursor = scan_step(c, cursor, visit_bucket, &v, &visited);
    } while (cursor != 0 && --steps > 0 && visited < count);
    return cursor;
}

void cache_foreach(cache_t *c, int64_t now, cache_visit_fn fn, void *ud)
{
    for (cache_entry_t *e = c->lru_head; e; e = e->next)
        if (!is_expired(e, now) && !pf_dead(c, e))
            fn(ud, e);
}

void cache_foreach_prefix(cache_t *c, const char *prefix, size_t plen, int64_t now, size_t limit,
                          cache_visit_fn fn, void *ud)
{
    for (cache_entry_t *e = c->lru_head; e && limit > 0; e = e->next) {
        if (has_prefix(e, prefix, plen) && !is_expired(e, now) && !pf_dead(c, e)) {
            fn(ud, e);
            limit--;
        }
    }
}

size_t cache_count(const cache_t *c)
{
    return c->ht[0].used + c->ht[1].used;
}

size_t cache_count_first_byte(const cache_t *c, unsigned char b, size_t *expires)
{
    if (expires)
        *expires = c->exp_by_first[b];
    return c->by_first[b];
}

size_t cache_expires_count(const cache_t *c)
{
    return c->heap_len;
}

size_t cache_used_memory(const cache_t *c)
{
    return c->used;
}

const cache_stats_t *cache_stats(const cache_t *c)
{
    return &c->stats;
}

void cache_reset_stats(cache_t *c)
{
    memset(&c->stats, 0, sizeof(c->stats));
}

void cache_on_gone(cache_t *c, cache_evict_fn fn, void *ud)
{
    c->on_gone = fn;
    c->on_gone_ud = ud;
}

void cache_on_change(cache_t *c, cache_change_fn fn, void *ud)
{
    c->on_change = fn;
    c->on_change_ud = ud;
}

int cache_is_rehashing(const cache_t *c)
{
    return rehashing(c);
}

void cache_table_info(const cache_t *c, cache_table_info_t *out)
{
    out->buckets = c->ht[0].size;
    out->rehash_to = c->ht[1].size;
    out->rehash_idx = rehashing(c) ? c->rehash_idx : 0;
}

const char *cache_entry_key(const cache_entry_t *e, size_t *klen)
{
    *klen = e->klen;
    return e->data;
}

const char *cache_entry_value(const cache_entry_t *e, size_t *vlen)
{
    *vlen = e->vlen;
    return e->data + e->klen;
}

int64_t cache_entry_expire(const cache_entry_t *e)
{
    return e->expire_at;
}

int cache_entry_enc(const cache_entry_t *e)
{
    return e->kind <= KIND_STR_RAW ? (int)e->kind : CACHE_ENC_AUTO;
}

int cache_entry_type(const cache_entry_t *e)
{
    switch (e->kind) {
    case KIND_HASH:
        return CACHE_TYPE_HASH;
    case KIND_SET:
        return CACHE_TYPE_SET;
    default:
        return CACHE_TYPE_STRING;
    }
}

void cache_entry_set_type(cache_entry_t *e, int type)
{
    assert(type == CACHE_TYPE_STRING || type == CACHE_TYPE_HASH || type == CACHE_TYPE_SET);
    e->kind = type == CACHE_TYPE_HASH  ? KIND_HASH
              : type == CACHE_TYPE_SET ? KIND_SET
                                       : KIND_STR_AUTO;
}

int cache_entry_form(const cache_entry_t *e)
{
    return cache_entry_type(e) << 4 | cache_entry_enc(e);
}

int cache_form_valid(int form)
{
    int type = form >> 4, enc = form & 15;
    return form >= 0 && type <= CACHE_TYPE_SET && enc <= CACHE_ENC_RAW &&
           (type == CACHE_TYPE_STRING || enc == CACHE_ENC_AUTO);
}

int cache_entry_set_form(cache_entry_t *e, int form)
{
    int type = form >> 4, enc = form & 15;
    if (!cache_form_valid(form))
        return -1;
    if (type != CACHE_TYPE_STRING)
        cache_entry_set_type(e, type);
    else
        e->kind = (uint32_t)enc & 3u;
    return 0;
}

void cache_entry_set_enc(cache_entry_t *e, int enc)
{
    assert(enc >= CACHE_ENC_AUTO && enc <= CACHE_ENC_RAW);
    assert(e->kind <= KIND_STR_RAW); /* a string's encoding, on a string */
    e->kind = (uint32_t)enc & 3u;
}

uint64_t cache_entry_idle_ms(const cache_t *c, const cache_entry_t *e)
{
    return (uint64_t)((c->lru_clock - e->lru) & LRU_MASK) * 1000;
}

void cache_entry_set_idle_ms(const cache_t *c, cache_entry_t *e, uint64_t idle_ms)
{
    if (is_lfu(c))
        return; /* the field holds LFU data: RESTORE's IDLETIME is ignored, as in redis-server */
    uint64_t s = idle_ms / 1000;
    if (s > LRU_MASK)
        s = LRU_MASK;
    e->lru = (c->lru_clock - (uint32_t)s) & LRU_MASK;
}

size_t cache_entry_memory(const cache_entry_t *e)
{
    return mem_usable(e);
}

/* A bucket chosen at random (of either table while rehashing); NULL if it is
 * empty. */
static cache_entry_t *random_bucket(const cache_t *c)
{
    size_t n0 = c->ht[0].size, n1 = rehashing(c) ? c->ht[1].size : 0;
    if (n0 + n1 == 0)
        return NULL;
    size_t i = (size_t)random() % (n0 + n1);
    return i < n0 ? c->ht[0].b[i] : c->ht[1].b[i - n0];
}

cache_entry_t *cache_random(cache_t *c, int64_t now)
{
    lru_clock_at(c, now);
    for (int tries = 0; tries < 100 && cache_count(c) > 0; tries++) {
        cache_entry_t *e = NULL;
        for (size_t b = 0; !e && b < 1000; b++)
            e = random_bucket(c);
        if (!e)
            e = c->lru_head;
        size_t chain = 0;
        for (cache_entry_t *x = e; x; x = x->hnext)
            chain++;
        for (size_t k = (size_t)random() % chain; k > 0; k--)
            e = e->hnext;
        if (pf_reap(c, e, NULL, 0))
            continue;
        if (!is_expired(e, now))
            return e;
        entry_gone(c, e, NULL, 0, CACHE_GONE_EXPIRED);
    }
    return NULL;
}

/* ------------------------------------------------------- consistency check */

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "cache_check: " __VA_ARGS__);                                          \
            fputc('\n', stderr);                                                                   \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

int cache_check(const cache_t *c)
{
    size_t mem = 0;

    /* 1: tables. */
    CHECK(c->ht[0].size >= TABLE_MIN_SIZE && c->ht[0].b, "main table missing");
    for (int t = 0; t < 2; t++) {
        const table_t *tb = &c->ht[t];
        if (!tb->b) {
            CHECK(t == 1 && tb->size == 0 && tb->used == 0, "table %d missing", t);
            continue;
        }
        CHECK((tb->size & (tb->size - 1)) == 0, "table %d size %zu not a power of two", t,
              tb->size);
        mem += mem_usable(tb->b);
        size_t used = 0;
        for (size_t i = 0; i < tb->size; i++) {
            if (t == 0 && rehashing(c) && i < c->rehash_idx)
                CHECK(tb->b[i] == NULL, "moved bucket %zu not empty", i);
            for (const cache_entry_t *e = tb->b[i]; e; e = e->hnext, used++)
                CHECK((hash_key(c, e->data, e->klen) & (tb->size - 1)) == i,
                      "entry in the wrong bucket");
        }
        CHECK(used == tb->used, "table %d holds %zu entries, counted %zu", t, used, tb->used);
    }
    if (rehashing(c))
        CHECK(c->rehash_idx < c->ht[0].size, "rehash index past the end");
    size_t count = cache_count(c);

    /* 2: lru list against the table; heap membership. */
    size_t n = 0, with_expire = 0;
    const cache_entry_t *prev = NULL;
    for (const cache_entry_t *e = c->lru_head; e; prev = e, e = e->next, n++) {
        CHECK(n < count, "lru list longer than the table");
        CHECK(e->prev == prev, "lru back link broken");
        int tab;
        cache_entry_t **link = find_link(c, e->data, e->klen, hash_key(c, e->data, e->klen), &tab);
        CHECK(link && *link == e, "lru holds an entry the hash table does not");
        CHECK(e->kind <= KIND_SET, "entry of unknown kind %u", (unsigned)e->kind);
        if (e->expire_at) {
            with_expire++;
            CHECK(e->heap_idx < c->heap_len && c->heap[e->heap_idx] == e,
                  "entry with an expire time not in the heap");
        }
        mem += mem_usable(e);
    }
    CHECK(prev == c->lru_tail, "lru tail wrong");
    CHECK(n == count, "lru list has %zu entries, table %zu", n, count);

    /* 4: heap. */
    CHECK(c->heap_len == with_expire, "heap has %zu entries, %zu have an expire time", c->heap_len,
          with_expire);
    CHECK(c->heap_len <= c->heap_cap, "heap overfull");
    for (size_t i = 0; i < c->heap_len; i++) {
        const cache_entry_t *e = c->heap[i];
        CHECK(e->heap_idx == i, "heap slot %zu holds an entry that thinks it is at %u", i,
              e->heap_idx);
        CHECK(e->expire_at != 0, "heap holds an entry without an expire time");
        if (i > 0)
            CHECK(c->heap[(i - 1) / 2]->expire_at <= e->expire_at, "heap order broken at %zu", i);
    }
    mem += mem_usable(c->heap);

    /* 7: counts by first key byte. */
    size_t first[256] = {0}, exp_first[256] = {0};
    for (const cache_entry_t *e = c->lru_head; e; e = e->next) {
        if (!e->klen)
            continue;
        first[(unsigned char)e->data[0]]++;
        exp_first[(unsigned char)e->data[0]] += e->expire_at != 0;
    }
    for (int b = 0; b < 256; b++)
        CHECK(first[b] == c->by_first[b] && exp_first[b] == c->exp_by_first[b],
              "byte %d: %zu keys (%zu with expire), counted %zu (%zu)", b, first[b],
              exp_first[b], c->by_first[b], c->exp_by_first[b]);

    /* 8: pending prefix flushes. */
    CHECK(c->sweep_upto == 0 || (c->npf > 0 && c->sweep_upto >= c->pf[0].id),
          "a sweep pass under way for no pending flush");
    for (size_t i = 0; i < c->npf; i++) {
        CHECK(c->pf[i].seq <= c->wseq, "pending flush %zu above wseq", i);
        if (i > 0)
            CHECK(c->pf[i - 1].id < c->pf[i].id && c->pf[i - 1].seq <= c->pf[i].seq,
                  "pending flushes out of order at %zu", i);
    }

    /* 5: memory. */
    for (const cache_entry_t *e = c->pending; e; e = e->next)
        mem += mem_usable(e);
    CHECK(mem == c->used, "memory counted %zu, accounted %zu", mem, c->used);
    return 0;
}
