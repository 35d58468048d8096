/* cache: the node-local key/value store.
 *
 * Owns: every cached entry (key, value and metadata in one allocation), the
 * hash table that finds them (incremental rehash: no operation ever moves the
 * whole table at once), the LRU list used for eviction under maxmemory, the
 * expiry heap (lazy and active expiry), and the prefix flushes still being
 * swept (cache_flush_prefix_start). There is no ordered index of keys: a new
 * key costs a hash insert and nothing more, and a prefix flush finds its keys
 * by sweeping the table in bounded steps.
 * Never: knows about clients, protocols or peers; never returns an expired
 * entry; never blocks for longer than a bounded step (large frees are
 * deferred to cache_cron()).
 *
 * Times are absolute milliseconds (the caller's clock, read once per loop
 * turn). An expire time of 0 means "no expiry". An entry with expire time t
 * is expired once now > t (at now == t it still lives, as in redis-server).
 *
 * Memory accounting: cache_used_memory() counts the allocator's usable size of
 * every entry plus the hash table arrays, the expiry heap and entries still
 * waiting to be freed, so it tracks RSS growth closely.
 *
 * Entry pointers returned by lookups stay valid until the next call that can
 * modify the cache (set, delete, expire, evict, flush, cron).
 */
#ifndef COHORT_CACHE_H
#define COHORT_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cache cache_t;
typedef struct cache_entry cache_entry_t;

typedef struct cache_stats {
    uint64_t hits;    /* cache_lookup(.., CACHE_READ) that found a live key */
    uint64_t misses;  /* cache_lookup(.., CACHE_READ) that found nothing */
    uint64_t evicted; /* entries removed to honour maxmemory */
    uint64_t expired; /* entries removed because their time passed */
} cache_stats_t;

/* Called for every entry that leaves the cache for any reason other than an
 * explicit cache_delete / flush (that is: eviction or expiry), before it is
 * freed. May be NULL. */
typedef void (*cache_evict_fn)(void *ud, const char *key, size_t klen, int reason);
enum { CACHE_GONE_EVICTED = 1, CACHE_GONE_EXPIRED = 2 };

/* seed keys the hash function (pick it at random at start). maxmemory 0 means
 * no limit. The cache owns nothing of the caller's. */
cache_t *cache_new(uint64_t seed, size_t maxmemory);
void cache_free(cache_t *c);
void cache_set_maxmemory(cache_t *c, size_t maxmemory);
size_t cache_maxmemory(const cache_t *c);

/* Lookup flags. */
enum {
    CACHE_READ = 1,   /* counts a hit or a miss in the stats */
    CACHE_NOTOUCH = 2 /* does not move the entry to the LRU head */
};

/* Returns the live entry for key, or NULL. An expired entry found on the way
 * is removed (counted as expired) and NULL is returned. */
cache_entry_t *cache_lookup(cache_t *c, const char *key, size_t klen, int64_t now, int flags);

/* A new value for e, a live entry just looked up (no change to the cache
 * since), stored in e's own allocation when it fits there as cache_set
 * would store it, with the given expire time: saves cache_set's lookup of
 * the key (INCR). Returns e, or NULL (nothing changed) when it does not fit:
 * call cache_set then. */
cache_entry_t *cache_set_in_place(cache_t *c, cache_entry_t *e, const char *val, size_t vlen,
                                  int64_t expire_at);

/* Stores value under key, replacing any existing entry, with the given expire
 * time (0: none). Copies key and value. Returns the new entry. Does not evict:
 * call cache_evict() afterwards (the caller decides when). */
cache_entry_t *cache_set(cache_t *c, const char *key, size_t klen, const char *val, size_t vlen,
                         int64_t expire_at);

/* Removes key. Returns 1 if a live entry was removed, 0 if there was none (an
 * expired entry is removed too but reported as 0, like redis-server). */
int cache_delete(cache_t *c, const char *key, size_t klen, int64_t now);

/* Sets or clears (0) the expire time of a live entry. */
void cache_set_expire(cache_t *c, cache_entry_t *e, int64_t expire_at);

/* Removes every key that starts with prefix (an empty prefix is every key).
 * Returns the number of live entries removed. Cost: O(n), a walk of the
 * whole table at once (SWAPDB, tests; see cache_flush_prefix_start); but
 * when the prefix covers every entry (the empty prefix, or a one-byte
 * prefix that every key starts with) it is cache_flush_all: O(1) now, the
 * entries freed by later cache_cron() calls, the change signalled once as
 * CACHE_CHANGE_ALL. */
size_t cache_flush_prefix(cache_t *c, const char *prefix, size_t plen, int64_t now);

/* As cache_flush_prefix, but entries whose version is >= below stay: they
 * hold a write ordered after the flush (see cache_entry_set_version). */
size_t cache_flush_prefix_below(cache_t *c, const char *prefix, size_t plen, int64_t now,
                                uint64_t below);

/* A prefix flush with bounded work now (cache_flush_prefix_below's
 * meaning; UINT64_MAX: every version). Every entry it covers is gone at once
 * for every function of this API. The entries are removed by a sweep pass
 * over the whole table: at once when the table has at most 16,384 buckets
 * and entries (cache_set_flush_sync_max) and the pass takes at most 1 ms,
 * else by later
 * cache_sweep() (and cache_cron()) calls, a bounded step at a time, and the
 * change listener hears CACHE_CHANGE_PREFIX once now (and not again for the
 * keys it covers, whenever they are removed). Returns 0 when it is over,
 * with the number of live entries removed in *removed; else an id for
 * cache_flush_result, with those removed so far. A flush is over at the end
 * of the first pass that began after it, so its time is O(n), not O(its
 * keys). After a cache_flush_all() the pending ones still count every
 * entry they covered, as cache_cron() frees them, and are over once it has.
 * At most 64 are pending: one more finishes the oldest
 * at once (the rest of a pass). cache_count() and cache_count_first_byte()
 * include covered entries not yet removed. */
uint64_t cache_flush_prefix_start(cache_t *c, const char *prefix, size_t plen, int64_t now,
                                  uint64_t below, size_t *removed);
/* 1 when flush id is over, 0 while it is being swept; *removed: the live
 * entries it removed (so far), each counted if live at the flush's now. An
 * id over long ago (256 flushes later, not held)
 * reports 1 and 0. */
int cache_flush_result(const cache_t *c, uint64_t id, size_t *removed);
/* Keeps pending flush id's result past the ring of 256 (for a client that
 * waits for it, however many flushes finish before it looks) until
 * cache_flush_release(id); no effect when id is not pending. */
void cache_flush_hold(cache_t *c, uint64_t id);
void cache_flush_release(cache_t *c, uint64_t id);
/* The id of the newest pending prefix flush that may cover a key starting
 * with start[0..len) (its prefix and start agree on their common length);
 * 0: none. */
uint64_t cache_flush_newest_under(const cache_t *c, const char *start, size_t len);
/* The entries whose key starts with byte b that pending prefix flushes (not
 * those a cache_flush_all ended) took out of the table so far, expired ones
 * included: cache_count_first_byte(b) plus this is the count as it was
 * before those flushes (DBSIZE). A flush of the empty prefix counts in no
 * byte. */
size_t cache_flush_unlinked_first_byte(const cache_t *c, unsigned char b);
/* Sweeps pending prefix flushes for about budget_us (at least 64 visits).
 * Returns 1 while some remain. */
int cache_sweep(cache_t *c, int64_t now, int budget_us);
/* Pending prefix flushes (0: cache_sweep has nothing to do). */
size_t cache_sweeping(const cache_t *c);
/* The id of the newest pending prefix flush (0: none): once it is over, so
 * are all those pending now. */
uint64_t cache_flush_newest(const cache_t *c);
/* Buckets and entries a prefix flush visits at once before it goes on
 * lazily (tests and
 * the simulator set it low to exercise the lazy path; SIZE_MAX: never lazy,
 * whatever the time). */
void cache_set_flush_sync_max(cache_t *c, size_t n);
/* As cache_flush_all, but entries whose version is >= below stay. When some
 * entry was ever given such a version it is a prefix flush of the empty
 * prefix (cache_flush_prefix_start: the others are gone at once and swept
 * in bounded steps) and returns the entries removed at once. */
size_t cache_flush_all_below(cache_t *c, uint64_t below);

/* Removes every entry at once: the table is replaced by an empty one at once
 * and the old entries are freed by later cache_cron() calls. Returns the
 * number of entries removed. */
size_t cache_flush_all(cache_t *c);

/* Evicts entries as the eviction policy says until used memory <= maxmemory
 * or nothing more may be evicted (noeviction; a volatile-* policy with no
 * entry that has an expire time). Entries already flushed are freed first.
 * Returns the number evicted. */
size_t cache_evict(cache_t *c);

/* maxmemory-policy, with redis-server's names and meaning:
 *   allkeys-lru      the least recently used entry (exact: the LRU list's tail)
 *   allkeys-lfu      the least frequently used of 5 sampled entries
 *   allkeys-random   a random entry
 *   volatile-lru     the longest idle of 5 sampled entries with an expire time
 *                    (idle time in seconds, as redis-server's LRU clock)
 *   volatile-lfu     the least frequently used of 5 sampled entries with an
 *                    expire time
 *   volatile-random  a random entry with an expire time
 *   volatile-ttl     the entry that expires first (exact: the heap's root)
 *   noeviction       none: cache_evict evicts nothing (the caller refuses
 *                    writes that would add memory)
 * Under an LFU policy each entry's 23-bit LRU field holds redis-server's LFU
 * data instead (16 bits: the minute of the last decrement; 7 bits: a
 * logarithmic access counter, new entries at 5, lfu-log-factor 10,
 * lfu-decay-time 1 minute), so idle times are not tracked meanwhile, and
 * switching policies reinterprets the field, as in redis-server. */
enum cache_policy {
    CACHE_POLICY_ALLKEYS_LRU = 0,
    CACHE_POLICY_ALLKEYS_LFU,
    CACHE_POLICY_ALLKEYS_RANDOM,
    CACHE_POLICY_VOLATILE_LRU,
    CACHE_POLICY_VOLATILE_LFU,
    CACHE_POLICY_VOLATILE_RANDOM,
    CACHE_POLICY_VOLATILE_TTL,
    CACHE_POLICY_NOEVICTION,
    CACHE_POLICY_COUNT
};
void cache_set_policy(cache_t *c, int policy);
int cache_policy(const cache_t *c);
/* redis-server's name of a policy (static). */
const char *cache_policy_name(int policy);
/* The policy named name (any case), or -1. */
int cache_policy_parse(const char *name, size_t len);
/* 1 under allkeys-lfu and volatile-lfu. */
int cache_policy_is_lfu(int policy);
/* OBJECT FREQ: the entry's access counter after its decay (meaningful under
 * an LFU policy). */
unsigned cache_entry_freq(const cache_t *c, const cache_entry_t *e);
/* RESTORE FREQ: sets the counter (at most 127) under an LFU policy; else
 * nothing (and cache_entry_set_idle_ms does nothing under an LFU policy). */
void cache_entry_set_freq(const cache_t *c, cache_entry_t *e, unsigned freq);

/* Background work for one loop tick, bounded by budget_us microseconds:
 * active expiry, a rehash step, freeing entries left by cache_flush_all. */
void cache_cron(cache_t *c, int64_t now, int budget_us);

/* SCAN: visits the entries of some buckets and returns the next cursor
 * (0 when the scan is complete), with redis-server's guarantee: every key
 * present for the whole scan is returned at least once, across resizes.
 * count is a hint of how many entries to visit. */
typedef void (*cache_visit_fn)(void *ud, cache_entry_t *e);
uint64_t cache_scan(cache_t *c, uint64_t cursor, size_t count, cache_visit_fn fn, void *ud);

/* Visits every entry (KEYS). Expired entries are skipped, not removed. The
 * callback must not modify the cache. */
void cache_foreach(cache_t *c, int64_t now, cache_visit_fn fn, void *ud);

/* Visits up to 'limit' entries whose key starts with prefix, most recently
 * used first (SIZE_MAX: no limit): a walk of every entry, O(n). Expired entries are skipped, not removed, and not
 * counted against the limit. The callback must not modify the cache. */
void cache_foreach_prefix(cache_t *c, const char *prefix, size_t plen, int64_t now, size_t limit,
                          cache_visit_fn fn, void *ud);

size_t cache_count(const cache_t *c);        /* entries, expired-but-unreaped included */
size_t cache_expires_count(const cache_t *c); /* entries with an expire time */
/* Entries whose key starts with byte b (expired-but-unreaped included), and
 * in *expires (may be NULL) how many of them have an expire time: O(1). */
size_t cache_count_first_byte(const cache_t *c, unsigned char b, size_t *expires);
size_t cache_used_memory(const cache_t *c);
const cache_stats_t *cache_stats(const cache_t *c);
void cache_reset_stats(cache_t *c); /* CONFIG RESETSTAT: every counter back to 0 */
void cache_on_gone(cache_t *c, cache_evict_fn fn, void *ud);

/* The one signal that the cache's content changed (as redis-server's
 * signalModifiedKey feeds both client tracking and WATCH): called by every
 * function that changes a value, an expire time or removes an entry, for any
 * reason (cache_set, cache_delete, cache_set_expire, the prefix flushes one
 * key at a time, eviction, expiry), with kind CACHE_CHANGE_KEY and the key
 * (a lazy prefix flush's keys: CACHE_CHANGE_PREFIX and the prefix, once);
 * cache_flush_all calls it once with CACHE_CHANGE_ALL (key NULL, klen 0),
 * even when the cache was empty; a prefix flush that goes on lazily calls it
 * once with CACHE_CHANGE_PREFIX and the prefix (cache_flush_prefix_start). It is called before the change is made
 * (key is valid during the call only: it may point into the entry about to
 * go). The callback must not modify the cache. One listener; NULL removes it (then the cost is
 * one test per change). */
enum { CACHE_CHANGE_KEY = 1, CACHE_CHANGE_ALL = 2, CACHE_CHANGE_PREFIX = 3 };
typedef void (*cache_change_fn)(void *ud, int kind, const char *key, size_t klen);
void cache_on_change(cache_t *c, cache_change_fn fn, void *ud);
int cache_is_rehashing(const cache_t *c);

/* Shape of the hash table, for tests and introspection. Each lookup, set or
 * delete moves at most one bucket of a rehash (and looks at no more than ten
 * empty ones), so rehash_idx advances by at most 11 per call. */
typedef struct cache_table_info {
    size_t buckets;    /* buckets of the main table */
    size_t rehash_to;  /* buckets of the table being rehashed into, 0 if none */
    size_t rehash_idx; /* main-table buckets already moved (0 if none) */
} cache_table_info_t;
void cache_table_info(const cache_t *c, cache_table_info_t *out);

/* Entry accessors. */
const char *cache_entry_key(const cache_entry_t *e, size_t *klen);
const char *cache_entry_value(const cache_entry_t *e, size_t *vlen);
int64_t cache_entry_expire(const cache_entry_t *e); /* 0: none */
/* The version of the newest ordered write or flush of the entry's key (a
 * SEED's, kept when a fill replaces the value; 0 for a key only ever
 * filled). The cache only stores it; the ordering rules are versioned.c's. */
uint64_t cache_entry_version(const cache_entry_t *e);
void cache_entry_set_version(cache_t *c, cache_entry_t *e, uint64_t version);
/* Whether the write that made the entry's version was a read-modify-write
 * (a proposal: cluster/WRITES.md rule 28 needs to know it after its
 * commit). Cleared by a new value or version; set after both. */
int cache_entry_rmw(const cache_entry_t *e);
void cache_entry_set_rmw(cache_entry_t *e);

/* How the value is encoded as redis-server would report it (OBJECT
 * ENCODING): AUTO is "int" / "embstr" / "raw" by the value's content and
 * length, STR is never "int", RAW is always "raw". cache_set() resets it to
 * AUTO; the command layer sets it after a write that redis-server encodes
 * otherwise (APPEND, SETRANGE, INCRBYFLOAT). */
enum cache_enc { CACHE_ENC_AUTO = 0, CACHE_ENC_STR = 1, CACHE_ENC_RAW = 2 };
int cache_entry_enc(const cache_entry_t *e); /* AUTO for a hash or a set */
void cache_entry_set_enc(cache_entry_t *e, int enc); /* strings only */

/* The value's type. A hash's or a set's value bytes are coll.h's format and
 * describe it fully (its encoding included); cache_set() makes the entry a
 * string, cache_entry_set_type() (after the set) a hash or a set. Type and a
 * string's encoding share the header's bits: the header stays 64 bytes. */
enum cache_type { CACHE_TYPE_STRING = 0, CACHE_TYPE_HASH = 1, CACHE_TYPE_SET = 2 };
int cache_entry_type(const cache_entry_t *e);
void cache_entry_set_type(cache_entry_t *e, int type);
/* Type and encoding in one byte, as SEED and SNAPSHOT entries carry them:
 * type << 4 | encoding. set_form returns 0, or -1 (nothing changed) for a
 * byte no entry has (it may come from a peer). */
int cache_entry_form(const cache_entry_t *e);
int cache_form_valid(int form);
int cache_entry_set_form(cache_entry_t *e, int form);
/* Time since the entry was last read or written (not by CACHE_NOTOUCH
 * lookups), in ms with a resolution of one second, as redis-server's LRU
 * clock (wraps after 97 days). */
uint64_t cache_entry_idle_ms(const cache_t *c, const cache_entry_t *e);
/* Makes the entry look idle for idle_ms (RESTORE IDLETIME). */
void cache_entry_set_idle_ms(const cache_t *c, cache_entry_t *e, uint64_t idle_ms);
/* Bytes the entry takes (allocator's usable size), as counted in used memory. */
size_t cache_entry_memory(const cache_entry_t *e);
/* A live entry chosen at random, or NULL when the cache holds none. Expired
 * entries met on the way are removed (counted as expired). */
cache_entry_t *cache_random(cache_t *c, int64_t now);

/* Consistency checker for tests and debug builds: walks every structure and
 * returns 0 if all invariants hold, -1 (and prints why) otherwise. */
int cache_check(const cache_t *c);

#endif
