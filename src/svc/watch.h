/* watch: WATCH / UNWATCH state, marked dirty by the cache's change signal
 * (the same one that feeds client tracking, as redis-server's
 * signalModifiedKey feeds both touchWatchedKey and trackingInvalidateKey).
 *
 * Owns: every connection's watched keys and its dirty flag (hanging off
 * client_t.watch), and the list of connections that watch something.
 * Never: parses commands or replies (cmd/cmd_watch.c does), or reads the
 * cache.
 *
 * Cost: a change of a key visits the connections that watch something (none
 * usually: then one test) and compares the key with theirs; a connection
 * already dirty is skipped. WATCH is meant for a few keys held for the time
 * of one transaction.
 *
 * Invariants (tests in tests/unit/test_watch.c):
 *  1. A change of a watched key, or a flush of everything, marks every
 *     connection watching it dirty, including the one that made it
 *     (test_key_marks_dirty, test_all_marks_dirty).
 *  2. A change of another key leaves it clean (test_other_key_clean).
 *  3. watch_unwatch forgets the keys and the flag; after it and after
 *     watch_client_closed nothing refers to the client (test_unwatch; ASan).
 */
#ifndef COHORT_WATCH_H
#define COHORT_WATCH_H

#include <stddef.h>

#include "client.h"

typedef struct watch watch_t;

watch_t *watch_new(void);
void watch_free(watch_t *w); /* after every client unwatched */

/* Adds n keys (copied) to c's watched keys; a key already watched is kept
 * once. */
void watch_keys(watch_t *w, client_t *c, size_t n, const char *const *keys, const size_t *klens);
/* Forgets c's keys and dirty flag (UNWATCH, EXEC, DISCARD, RESET, close). */
void watch_unwatch(watch_t *w, client_t *c);
/* 1 when a key c watches changed since it was watched. */
int watch_is_dirty(const client_t *c);
/* How many keys c watches; *keys and *klens (may be NULL) get them, valid
 * until c's watched keys change. */
size_t watch_count(const client_t *c);
size_t watch_keys_of(const client_t *c, const char *const **keys, const size_t **klens);

/* The cache's change signal. */
void watch_key_changed(watch_t *w, const char *key, size_t klen);
void watch_all_changed(watch_t *w);
void watch_prefix_changed(watch_t *w, const char *prefix, size_t plen); /* keys under it */

size_t watch_clients(const watch_t *w); /* connections watching something */

#endif
