/* flushmark: remembers when keys were last flushed, for GETL/SETL.
 *
 * Owns: a monotonically increasing flush sequence (tokens are values of it)
 * and a bounded record of recent flushes: per key (hashed into a fixed table
 * of slots, so two keys may share a slot: a collision can only refuse a fill,
 * never accept a stale one), per prefix (a ring of the most recent prefix
 * flushes) and whole-cache flushes.
 * Never: grows: its memory is fixed at creation. When it cannot prove that a
 * key was not flushed since a token was issued, it says "flushed".
 *
 * A token is the sequence number at GETL time. SETL with token t is accepted
 * only if no flush that could cover the key got a sequence number > t. */
#ifndef COHORT_FLUSHMARK_H
#define COHORT_FLUSHMARK_H

#include <stddef.h>
#include <stdint.h>

typedef struct flushmark flushmark_t;

/* slots: per-key table size (rounded up to a power of two); ring: how many
 * prefix flushes are remembered. first_seq: the first token issued (pick one
 * above any earlier incarnation's, e.g. from the clock). */
flushmark_t *flushmark_new(size_t slots, size_t ring, uint64_t first_seq);
void flushmark_free(flushmark_t *f);

uint64_t flushmark_token(const flushmark_t *f); /* current sequence */
void flushmark_key(flushmark_t *f, const char *key, size_t klen);
void flushmark_prefix(flushmark_t *f, const char *prefix, size_t plen);
void flushmark_all(flushmark_t *f);
/* 1 when key may have been flushed after token was issued (refuse the fill). */
int flushmark_flushed_since(const flushmark_t *f, const char *key, size_t klen, uint64_t token);
size_t flushmark_memory(const flushmark_t *f);

/* The same record kept with numbers the caller gives (versions of flushes,
 * which arrive in any order) instead of its own sequence: each records the
 * flush with number seq (a key's slot keeps the highest), and
 * flushmark_floor returns the highest number of a recorded flush that may
 * cover key (collisions and forgotten prefixes make it larger, never
 * smaller). Tokens and flushmark_flushed_since are not for this use. */
void flushmark_key_at(flushmark_t *f, const char *key, size_t klen, uint64_t seq);
void flushmark_prefix_at(flushmark_t *f, const char *prefix, size_t plen, uint64_t seq);
void flushmark_all_at(flushmark_t *f, uint64_t seq);
uint64_t flushmark_floor(const flushmark_t *f, const char *key, size_t klen);

/* The exact form of that record (the write protocol's floors: WRITES.md):
 * each key and each distinct prefix keeps its own highest number, up to
 * max_keys keys and max_prefixes prefixes. When full, the record updated
 * longest ago is forgotten and its number raises the forgotten floor, which
 * flushmark_floor includes for every key (higher than the truth, never
 * lower) and flushmark_floor_known leaves out (the record's exact answer:
 * the flushes it still knows of). Only the *_at functions, flushmark_floor*,
 * flushmark_forgotten, flushmark_clear and flushmark_memory apply. */
flushmark_t *flushmark_new_exact(size_t max_keys, size_t max_prefixes);
uint64_t flushmark_floor_known(const flushmark_t *f, const char *key, size_t klen);
/* The forgotten floor (0: nothing forgotten) and, in *stamp, the stamp set
 * (flushmark_set_stamp) when it last rose. */
uint64_t flushmark_forgotten(const flushmark_t *f, int64_t *stamp);
void flushmark_set_stamp(flushmark_t *f, int64_t stamp);
/* Records in dst (either form) every number src (the exact form) holds, its
 * forgotten floor as a flush of everything. */
void flushmark_fold(flushmark_t *dst, const flushmark_t *src);
/* Forgets everything (the exact form only): as new. */
void flushmark_clear(flushmark_t *f);
/* Keys recorded (the exact form), and how many were forgotten so far. */
size_t flushmark_keys(const flushmark_t *f);
uint64_t flushmark_forgotten_count(const flushmark_t *f);

#endif
