/* coll: the byte form of a hash or a set, the value bytes of a cache entry
 * whose type (cache_entry_type) is CACHE_TYPE_HASH or CACHE_TYPE_SET.
 *
 * Owns: the versioned serialization (encode, validate, read in place) and an
 * editable view of one collection (coll_t) that points into the bytes it was
 * decoded from and into the caller's arguments.
 * Never: allocates while reading in place (coll_hdr, coll_iter_*,
 * coll_find_raw), keeps a pointer after the call that returned it, or
 * decides encodings by policy (the command layer sets COLL_F_BIG and
 * COLL_F_INTSET by redis-server's rules; this module only checks that an
 * INTSET collection holds what its flag says).
 *
 * Format, version 1 (all lengths LEB128 varints, at most 10 bytes, < 2^62):
 *
 *   u8  version (1)
 *   u8  type    (1 hash, 2 set)
 *   u8  flags   (COLL_F_BIG: redis-server's "hashtable"; COLL_F_INTSET: a
 *                set whose members are canonical decimal integers in
 *                strictly ascending order, "intset"; no other bits)
 *   varint count (entries: pairs of a hash, members of a set)
 *   count x (varint len, bytes) for a set; count x (field, value) for a hash
 *   nothing after the last item.
 *
 * Invariants of valid bytes (coll_validate checks each; tests/unit/test_coll.c
 * test_malformed_rejected refuses a violation of each, test_truncations_and_
 * flips every prefix; fuzz/fuzz_coll.c checks that accepted bytes decode,
 * iterate, find every entry and re-encode to valid bytes):
 *   1. version, type and flags as above (INTSET only on a set, not with BIG);
 *   2. every length fits in the bytes left, count matches, no trailing bytes;
 *   3. no two fields of a hash, no two members of a set are equal;
 *   4. an INTSET set's members parse as redis-server's string2ll and ascend;
 *   5. count > 0 (an empty collection is no key).
 *
 * Cost: a write rebuilds the whole value (O(size) per write, as the cluster
 * ships the whole value after a write); a lookup in place is a linear scan
 * (O(size)), a lookup in a decoded coll_t is O(1) on average. */
#ifndef COHORT_COLL_H
#define COHORT_COLL_H

#include <stddef.h>
#include <stdint.h>

#define COLL_VERSION 1
enum coll_type { COLL_HASH = 1, COLL_SET = 2 };
enum coll_flags { COLL_F_BIG = 1, COLL_F_INTSET = 2 };

/* A string inside the bytes or the caller's memory (not NUL-terminated). */
typedef struct coll_str {
    const char *p;
    size_t len;
} coll_str_t;

/* The header of valid-looking bytes. */
typedef struct coll_hdr {
    int type;
    int flags;
    size_t count;
    size_t body; /* offset of the first item */
} coll_hdr_t;

/* Reads the header (O(1); checks only the header). Returns 0 or -1. */
int coll_hdr(const char *bytes, size_t len, coll_hdr_t *out);

/* Full check of invariants 1-5. Returns 0, or -1 with a reason in err. O(n). */
int coll_validate(const char *bytes, size_t len, char *err, size_t errlen);

/* In-place iteration: each call yields the next item (a hash yields field,
 * value, field, ...). Returns 1 with *out set, 0 at the end, -1 on bytes that
 * do not parse (never reads outside [bytes, bytes+len)). */
typedef struct coll_iter {
    const char *p;
    size_t left;  /* bytes left after p */
    size_t items; /* items left */
} coll_iter_t;
int coll_iter_init(coll_iter_t *it, const char *bytes, size_t len);
int coll_iter_next(coll_iter_t *it, coll_str_t *out);

/* Linear search in place: 1 when key is a field (hash: *val is its value) or
 * a member (set: *val untouched; may be NULL), 0 when absent, -1 on bad bytes. */
int coll_find_raw(const char *bytes, size_t len, const char *key, size_t klen, coll_str_t *val);

/* An editable collection. Items point into memory the caller keeps alive
 * until coll_encode (the old value's bytes, command arguments, or strings
 * the caller gives to coll_keep). Removed items stay as holes until encode. */
typedef struct coll {
    int type;
    int flags;
    coll_str_t *items; /* hash: 2 per entry; a removed entry has p == NULL */
    size_t slots;      /* entries in items, holes included */
    size_t count;      /* live entries */
    size_t cap;        /* entries allocated */
    uint32_t *idx;     /* open addressing: slot + 1, 0 empty; NULL until needed */
    size_t scans;      /* lookups answered by a linear scan (before an index) */
    size_t idx_cap;    /* power of two */
    char **kept;       /* strings owned by the collection (coll_keep) */
    size_t nkept, kept_cap;
    size_t bytes;      /* sum of the live items' lengths */
} coll_t;

/* An empty collection of the type. */
void coll_init(coll_t *c, int type);
/* Decodes valid bytes (call coll_validate first for bytes from outside).
 * The items point into bytes. Returns 0, or -1 when the header is bad. */
int coll_decode(coll_t *c, const char *bytes, size_t len);
void coll_free(coll_t *c);

/* Entry slot of key, or -1. The first few lookups scan the entries (a write
 * of one field costs no index); later ones build and use a hash index. */
long coll_find(coll_t *c, const char *key, size_t klen);
/* Hash: sets field to value (in place when present). Set: adds the member
 * (val ignored). Returns 1 when added, 0 when it was there. */
int coll_put(coll_t *c, const char *key, size_t klen, const char *val, size_t vlen);
/* Removes key. Returns 1 when it was there. */
int coll_remove(coll_t *c, const char *key, size_t klen);
/* Copies s into memory the collection owns, for an item built on the fly
 * (HINCRBY's value). Returns the copy. */
const char *coll_keep(coll_t *c, const char *s, size_t len);

/* Items per entry: 2 for a hash (field, value), 1 for a set. Entry i is
 * items[i * width]; it is live when its p is not NULL. */
static inline size_t coll_width(const coll_t *c)
{
    return c->type == COLL_HASH ? 2 : 1;
}

/* Size of the encoded bytes. */
size_t coll_encoded_len(const coll_t *c);
/* Encodes into a new allocation (caller frees); *len its length. An INTSET
 * set is written in ascending order. */
char *coll_encode(const coll_t *c, size_t *len);

/* One entry written without decoding (HSET of one field, SADD of one
 * member): valid bytes of a hash or a set without COLL_F_INTSET, with key
 * set to val (a hash: replaced in place or appended; a set: appended when
 * absent, val ignored) and the flags byte set to flags. The same bytes as
 * coll_decode + coll_put + coll_encode. Returns a new allocation (caller
 * frees) with *outlen and *added (1 when key was absent), or NULL when the
 * bytes do not parse or are an intset. O(size): one scan, one copy. */
char *coll_put_bytes(const char *bytes, size_t len, const char *key, size_t klen,
                     const char *val, size_t vlen, int flags, size_t *outlen, int *added);

/* Sets the flags byte of bytes made by this module (at least a header). */
void coll_set_flags(char *bytes, int flags);

/* redis-server's string2ll test: 1 when s is a canonical long long. */
int coll_is_int(const char *s, size_t len, long long *v);

#endif
