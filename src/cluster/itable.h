/* itable: a table of pub/sub interest: channels, patterns and shard channels,
 * each with a subscriber count. The cluster keeps one for this node (what it
 * announces) and one per member (what the member last announced).
 *
 * Owns: the names and counts it was given, their lookup by name and their
 * order of arrival.
 * Never: touches links, frames or libuv; knows who the subscribers are.
 *
 * Invariants (tests/unit/test_itable.c):
 *  1. A name is present exactly while its count is not 0; setting 0 removes
 *     it (test_set_get_remove).
 *  2. itable_receivers(ch) equals the count of ch as a channel plus, for each
 *     pattern matching ch (base/glob), the pattern's count; for a shard
 *     message only the shard channel's count (test_receivers).
 *  3. itable_foreach visits each present name of a kind once, in the order
 *     the names appeared (test_foreach_order).
 *  4. itable_clear leaves an empty table that can be filled again; every
 *     allocation is freed by itable_free (test_clear_refill; ASan).
 */
#ifndef COHORT_ITABLE_H
#define COHORT_ITABLE_H

#include <stddef.h>
#include <stdint.h>

/* The kinds are frame.h's enum interest_kind (channel 0, pattern 1, shard 2). */
#define ITABLE_KINDS 3

typedef struct itable itable_t;
typedef void (*itable_visit_fn)(void *ud, int kind, const char *name, size_t len,
                                uint32_t count);

/* A new empty table; free with itable_free (NULL is fine there). */
itable_t *itable_new(void);
void itable_free(itable_t *t);
/* Removes every name. */
void itable_clear(itable_t *t);
/* Sets kind/name's count (0 removes it). Returns the count it had. */
uint32_t itable_set(itable_t *t, int kind, const char *name, size_t len, uint32_t count);
/* kind/name's count, 0 when absent. */
uint32_t itable_get(const itable_t *t, int kind, const char *name, size_t len);
/* The subscribers a message on ch reaches by this table (invariant 2). */
uint64_t itable_receivers(const itable_t *t, const char *ch, size_t chlen, int shard);
/* Names of kind present. */
size_t itable_topics(const itable_t *t, int kind);
/* Calls fn for each name of kind, in order of arrival; fn must not change t. */
void itable_foreach(const itable_t *t, int kind, itable_visit_fn fn, void *ud);

#endif
