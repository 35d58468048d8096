/* tracking: client-side caching (CLIENT TRACKING) with redis-server 7's
 * semantics and push bytes.
 *
 * Owns: the tracking table (for each key read by a tracking connection in
 * default mode, the ids of the connections that read it, bounded by
 * max_keys), the BCAST prefixes and their connections, every connection's
 * tracking state (hanging off client_t.tracking: mode flags, redirection,
 * prefixes, the invalidations pending for it this loop turn), the
 * invalidation pushes (RESP3 `>2 invalidate [keys]`, RESP2 `message
 * __redis__:invalidate [keys]` on a redirect target in subscribe mode, the
 * null invalidation after a flush of everything, `tracking-redir-broken`),
 * and the memory all this takes.
 * Never: reads the cache, parses a command (cmd/cmd_client.c does), or writes
 * a socket: pushes are appended to client_t.out and the owner's wake function
 * marks the connection for the end-of-turn write.
 *
 * When: a change of a key (tracking_key_changed, fed by the cache's change
 * signal) moves the key's readers to their pending lists at once (so a read
 * later in the same turn is tracked again); BCAST keys are collected for the
 * turn; tracking_flush() (an end-of-turn hook registered before the cluster's
 * acknowledgements and the client writes) turns every pending list into one
 * push per connection.
 *
 * Invariants (tests in tests/unit/test_tracking.c unless named otherwise):
 *  1. A key read in default mode by a tracking connection is invalidated to
 *     it exactly once by the next change, then forgotten (test_default_once).
 *  2. NOLOOP: a change made by the connection itself is not sent to it, a
 *     change by another is (test_noloop).
 *  3. OPTIN tracks only the command after CLIENT CACHING YES; OPTOUT tracks
 *     every command but the one after CLIENT CACHING NO (test_optin_optout).
 *  4. BCAST sends every changed key under one of the connection's prefixes,
 *     once per turn, whether it read it or not (test_bcast_prefixes).
 *  5. A flush of everything sends the null invalidation to every tracking
 *     connection and empties the table (test_flush_all_null).
 *  6. The table never holds more than max_keys keys after a read returns;
 *     the keys it drops are invalidated to their readers (test_table_limit).
 *  7. A redirect target that closed makes the source's next invalidation a
 *     `tracking-redir-broken` push (RESP3) and sets its broken flag
 *     (test_broken_redirect); RESP2 redirection reaches a subscribed target
 *     as a pub/sub message (test_redirect_resp2).
 *  8. After tracking_client_closed() nothing refers to the client, and
 *     tracking_memory() returns to its start when every client is gone
 *     (test_close_releases; ASan).
 *  9. While degraded, nothing a tracking connection reads stays valid in its
 *     cache past the turn (test_degraded; tests/integration/test_tracking.py
 *     test_cluster_lease_lost_drops_client_caches).
 */
#ifndef COHORT_TRACKING_H
#define COHORT_TRACKING_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"

/* Options of CLIENT TRACKING and the state CLIENT TRACKINGINFO shows. */
enum tracking_flags {
    TRACKING_ON = 1 << 0,
    TRACKING_BCAST = 1 << 1,
    TRACKING_OPTIN = 1 << 2,
    TRACKING_OPTOUT = 1 << 3,
    TRACKING_NOLOOP = 1 << 4,
    TRACKING_CACHING = 1 << 5,      /* CLIENT CACHING given for the next command */
    TRACKING_BROKEN_REDIR = 1 << 6  /* the redirect target closed */
};

typedef struct tracking tracking_t;
/* Hands c's output to the kernel (server_write_now); may close c, which
 * then calls tracking_client_closed. */
typedef void (*tracking_wake_fn)(client_t *c);

typedef struct tracking_stats {
    size_t clients;  /* connections with tracking on */
    size_t keys;     /* keys in the tracking table */
    size_t items;    /* (key, connection) pairs in the table */
    size_t prefixes; /* BCAST prefixes with at least one connection */
    uint64_t invalidations; /* keys sent in invalidation pushes (nulls count one) */
    uint64_t evicted_keys;  /* keys dropped at max_keys */
} tracking_stats_t;

/* A new, empty state; max_keys 0 is no limit. Free with tracking_free (after
 * every client closed). */
tracking_t *tracking_new(size_t max_keys, tracking_wake_fn wake);
void tracking_free(tracking_t *t);
void tracking_set_max_keys(tracking_t *t, size_t max_keys);

/* CLIENT TRACKING ON with opts (TRACKING_BCAST / OPTIN / OPTOUT / NOLOOP),
 * redirected to redir (NULL: none; redir_id is its id) and n prefixes
 * (copied). Checks the options against each other and against c's state with
 * redis-server's rules. Returns 0, or -1 with redis-server's error text in
 * err (without the leading "ERR "); then nothing changed. */
int tracking_on(tracking_t *t, client_t *c, int opts, client_t *redir, uint64_t redir_id,
                const char *const *prefixes, const size_t *plens, size_t n, char *err,
                size_t errlen);
/* CLIENT TRACKING OFF (also RESET): pending invalidations are dropped. */
void tracking_off(tracking_t *t, client_t *c);
/* CLIENT CACHING YES (yes=1) / NO (yes=0). Returns 0 or -1 with the error. */
int tracking_caching(tracking_t *t, client_t *c, int yes, char *err, size_t errlen);
/* After every command of c: CLIENT CACHING holds for one command only
 * (client_cmd: the command was CLIENT, which keeps it, as redis-server). */
void tracking_command_done(tracking_t *t, client_t *c, int client_cmd);

/* c read key in a read-only command: remembered when c tracks in default
 * mode (and OPTIN/OPTOUT allow it). */
void tracking_read(tracking_t *t, client_t *c, const char *key, size_t klen);
/* The client whose command is running (for NOLOOP); returns the previous
 * one, to be restored after a nested command. NULL: a member or the cron. */
client_t *tracking_set_current(tracking_t *t, client_t *c);
/* The cache's change signal. */
void tracking_key_changed(tracking_t *t, const char *key, size_t klen);
void tracking_all_changed(tracking_t *t);
/* Every key under prefix changed (a prefix flush swept later): the tracked
 * keys under it are invalidated now; with BCAST connections, whose
 * messages name each key, every connection is told to drop everything. */
void tracking_prefix_changed(tracking_t *t, const char *prefix, size_t plen);
/* The node's coherence lease is about to run out, or has (degraded 1), or
 * holds again (0). Going degraded sends every tracking connection the null
 * invalidation (what they cached may be removed by a flush this node will
 * not hear of in time) and empties the table; while degraded, a read by a
 * tracking connection, in any mode, is followed by the null invalidation
 * instead of being remembered (test_degraded). */
void tracking_set_degraded(tracking_t *t, int degraded);
/* End of turn: one push per connection with what is pending. */
void tracking_flush(tracking_t *t);
/* 1 when invalidations wait for tracking_flush (changes of this turn). */
int tracking_pending(const tracking_t *t);
/* c is closing: its state goes; connections redirecting to it see a broken
 * redirect at their next invalidation. */
void tracking_client_closed(tracking_t *t, client_t *c);

/* CLIENT TRACKINGINFO / GETREDIR / LIST. flags: 0 when off. redirect: the
 * id given, 0 when none. prefixes: sorted, valid until c's state changes. */
int tracking_client_flags(const client_t *c);
uint64_t tracking_client_redirect(const client_t *c);
size_t tracking_client_prefixes(const client_t *c, const char *const **p, const size_t **plens);

void tracking_stats(const tracking_t *t, tracking_stats_t *out);
size_t tracking_memory(const tracking_t *t);

#endif
