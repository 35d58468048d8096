/* inflight: the writes of replicated keys that this node has applied but
 * that are not committed yet (cluster/WRITES.md).
 *
 * Owns: one entry per key: the version of the newest write in flight, who
 * made it (a member's index, or INFLIGHT_SELF) with its flush number, and
 * whether its maker aborted it (a refused read-modify-write whose value
 * waits to be superseded by the newer write that refused it).
 * Never: touches the cache or a client; the node reads it to decide that a
 * command must wait (a read of a key in flight returns nothing older than
 * the write, nor a value that may yet be aborted).
 *
 * The table holds only writes awaiting acknowledgements (about one round
 * trip's worth), so commits and flushes scan it whole. */
#ifndef COHORT_INFLIGHT_H
#define COHORT_INFLIGHT_H

#include <stddef.h>
#include <stdint.h>

#define INFLIGHT_SELF (-1)
/* The maker of writes whose maker's process ended while this node caught
 * up: held apart from its next process's writes until the node caught up
 * (inflight_hold_origin; WRITES.md rule 37). */
#define INFLIGHT_HELD (-2)

typedef struct inflight inflight_t;

inflight_t *inflight_new(void);
void inflight_free(inflight_t *t);
size_t inflight_count(const inflight_t *t);

/* The version of key's write in flight, 0 when none. */
uint64_t inflight_version(const inflight_t *t, const char *key, size_t klen);
/* 1 when key's write in flight was aborted by its maker. */
int inflight_aborted(const inflight_t *t, const char *key, size_t klen);

/* An entry's prior value (not owned: valid until the entry changes or goes). */
typedef struct inflight_prior {
    const char *val;
    size_t vlen;
    int64_t expire_at;
    int form;
    uint64_t version;
    int rmw; /* a read-modify-write made it (cache_entry_rmw) */
} inflight_prior_t;

/* Records that key's write of version (from origin, its flush number seq)
 * is in flight, unless an entry with a newer version is. replaced (NULL:
 * none) is what key held before this write (copied): if this write aborts
 * and the newer write that refused it never arrives, that value comes back
 * (writes.c); if it was itself a write in flight here, its own commit or
 * abort still decides, and over an aborted one what that replaced counts. */
void inflight_note(inflight_t *t, const char *key, size_t klen, uint64_t version, int origin,
                   uint64_t seq, int64_t now_ms, const inflight_prior_t *replaced);

/* 1 when key's write in flight has this version, was aborted, and is not
 * (origin, seq): a new write its maker made from the same base after the
 * abort, which takes the aborted one's place (sim --writes seed 104 of
 * --faults crash,stop: taken as a replay of the aborted one, the new lock
 * was never stored, and the sweep of the aborted entry emptied the key). */
int inflight_retried(const inflight_t *t, const char *key, size_t klen, uint64_t version,
                     int origin, uint64_t seq);

/* Marks key's write (origin, seq), just noted, a read-modify-write (a
 * PROPOSE, not a SEED): only those may abort, and only this node's own
 * yield. */
void inflight_mark_rmw(inflight_t *t, const char *key, size_t klen, int origin, uint64_t seq);
/* 1 when key's value in flight is a read-modify-write's not decided yet (a
 * SEED in flight always commits): its newest write's, or, that one aborted,
 * the value standing below it. */
int inflight_undecided_rmw(const inflight_t *t, const char *key, size_t klen);
/* 1 when key's write in flight is a read-modify-write, not aborted:
 * *origin is its writer (INFLIGHT_SELF or a member), *seq its flush number. */
int inflight_rmw(const inflight_t *t, const char *key, size_t klen, int *origin, uint64_t *seq);
/* inflight_rmw, for this node's own only. */
int inflight_own_rmw(const inflight_t *t, const char *key, size_t klen, uint64_t *seq);
/* A member's proposal v (origin, seq) of key, refused here for key's newer
 * write in flight: kept in the chain of what that one replaced, in flight
 * until its maker's COMMIT or ABORT. Its maker may commit it without our
 * refusal (our lease on it lapsed); if the newer one aborts, this value
 * comes back, not an older one (WRITES.md rule 22). */
void inflight_prior_refused(inflight_t *t, const char *key, size_t klen,
                            const inflight_prior_t *v, int origin, uint64_t seq);

/* A flush applied with version: op is VOP_KEY, VOP_PREFIX or VOP_ALL
 * (cache/versioned.h); entries older than it are superseded and go.
 * Returns how many went. */
size_t inflight_flush(inflight_t *t, int op, const char *key, size_t klen, uint64_t version);

/* The value key's write in flight replaced, newest not aborted: 1 and *out
 * (its bytes owned by the table), or 0 when none was kept. */
int inflight_prior(const inflight_t *t, const char *key, size_t klen, inflight_prior_t *out);

/* A committed value of key older than its write in flight, learnt after
 * the write (a catch-up snapshot): it takes its place in the chain of
 * replaced values by version and ends it (what is older no longer counts),
 * so an abort gives it back, not an older value or an empty key. */
void inflight_prior_fill(inflight_t *t, const char *key, size_t klen, const inflight_prior_t *v);

/* origin's writes up to flush number upto are committed (those it aborted
 * stay until superseded). Returns how many went. */
size_t inflight_commit(inflight_t *t, int origin, uint64_t upto);
/* origin aborted its write seq. */
void inflight_abort(inflight_t *t, int origin, uint64_t seq);

/* Visits origin's entries (for a member that died: the node replays what it
 * holds of them, or drops a value that was aborted) and removes them; its
 * values kept below other writes count as written from then on. A proposal
 * of origin standing over another writer's committed proposal from the
 * same value is visited as aborted (at most one of them committed:
 * WRITES.md rule 28). Visits with an entry's standing prior value (NULL:
 * none kept). */
typedef void (*inflight_visit_fn)(void *ud, const char *key, size_t klen, uint64_t version,
                                  int aborted, const inflight_prior_t *prior);
size_t inflight_take_origin(inflight_t *t, int origin, inflight_visit_fn fn, void *ud);
/* origin's process ended while this node catches up: its entries (and its
 * values kept below others' writes) become INFLIGHT_HELD's, decided by
 * inflight_take_origin(t, INFLIGHT_HELD, ...) once the node caught up, and
 * no longer matched by origin's next process's commits, aborts and flush
 * numbers. */
void inflight_hold_origin(inflight_t *t, int origin);
/* Calls fn with the maker and flush number of every member's write in
 * flight here that its maker did not abort (entries stay). */
void inflight_each_undecided(const inflight_t *t, void (*fn)(void *ud, int origin, uint64_t seq),
                             void *ud);
/* Visits and removes the aborted entries noted before older_than (ms): a
 * bound on how long a read waits for an aborted write's newer one. An entry
 * whose value to give back is a member's write still undecided stays until
 * its maker decides it (or is gone). */
size_t inflight_take_older(inflight_t *t, int64_t older_than, inflight_visit_fn fn, void *ud);

#endif
