/* writes: the node's side of the write protocol (cluster/WRITES.md): what a
 * member's PROPOSE, SEED, flush, COMMIT and ABORT do to this node's cache
 * and in-flight table, how a write made here gets its version and goes out,
 * how a command's proposals are decided, and the catch-up snapshot.
 *
 * Owns: nothing; it works on the state its caller hands it (writes_t: views
 * of the node's cache, floors, in-flight table, clock and cluster).
 * Never: touches a client, a socket or the real clock (times come in
 * writes_t), or decides a key's write mode (the caller does).
 *
 * The daemon (node.c's host interface, cmd/cmd_util.c, cmd/cmd_wait.c) and
 * the deterministic simulator (tests/sim/sim.c, --writes) run this same
 * code, so the simulator's faults check the protocol the daemon runs.
 *
 * Invariants (and the tests that check them):
 *   P1 of proposals based on the same version at most one commits: a member
 *      refuses a PROPOSE when it holds the key (applied or in flight) at a
 *      version >= it (writes_apply). sim --writes: no two INCR replies give
 *      the same value, at most one SET NX wins a round; test_keyspaces.py.
 *   P2 a committed proposal read the newest committed value of its key
 *      (writes_propose bases it on writes_key_version). sim --writes: no
 *      lost increment; no read older than a replied write.
 *   P3 a write whose maker died ends on every member or is superseded
 *      (writes_origin_gone replays it). sim --writes (crashes), final
 *      convergence of the counter and locks.
 *   P4 an aborted value whose newer write never arrives (its maker died
 *      before sending it) gives back the value it replaced, never leaves
 *      the key empty. sim --writes (a counter that vanished and restarted
 *      at 1 before this rule).
 *   P5 a key's value is refused only for a flush of that key (or a prefix
 *      of it, or everything) at least as new applied here: every flush goes
 *      into the exact record of flushes since the cache was last empty
 *      (w->recent: bounded; what it forgets refuses only for
 *      FORGOTTEN_HOLD_MS when judging a PROPOSE or snapshot entry), which
 *      judges PROPOSEs and snapshot entries of keys with no entry; SEEDs
 *      are judged by it and by the floor (this incarnation's start, skipped
 *      gaps, and at each drop the newest version made or observed: P7), so a SEED older than a dropped value stays out. sim
 *      --writes seed 3 (ctest sim_writes_seed3: a snapshot entry refused by
 *      a hashed slot shared with another key's DEL), seed 8 of --faults
 *      pause (sim_writes_seed8_pause), sim --flushlog seed 1033 (ctest
 *      sim_flushlog_seed1033: an older SEED back after a drop), --blind
 *      (W5: a plain SET refused by another key's DEL in the hashed floor).
 *   P6 an own proposal does not commit unjudged: a RESET that skips it
 *      (the member never judges it) or a drop of this node's cache (its
 *      value is gone here) aborts it (coherence.c abort_undecided); the
 *      drop also takes this node's own writes out of the in-flight table,
 *      so they refuse nothing. sim --writes seed 1041 (ctest
 *      sim_writes_seed1041: two INCRs replied the same value).
 *   P7 a cache drop forgets no version: after writes_drop_all no SEED at
 *      or below a version this node made or observed before the drop takes
 *      a key (the whole cache's floor rises to hlc_seen, as a new process's
 *      is its start time; such a key misses here instead). Without it a
 *      node that dropped its cache (a member restarted without goodbye, a
 *      RESET) between making a SEED and receiving a member's older one took
 *      the older value, while its own newer SEED replied and held
 *      everywhere else: the member had replied it without this node, which
 *      it held dead while this node's store row had lapsed, so it came
 *      late, by replay.
 *      sim --store, seeds 1016 and 2240 of --nodes 5 --seconds 10 (ctest
 *      sim_store_seed1016, sim_store_seed2240: stale reads before this);
 *      tests/unit/test_writes.c (test_drop_*).
 *   P8 an abort gives back the newest value its write replaced that any
 *      member's catch-up snapshot knew: a snapshot sends an undecided
 *      write's value after the value it replaced (writes_snapshot), and
 *      the receiver puts that one into the chain of replaced values by
 *      version, ending it (inflight_prior_fill). A chain noted from one
 *      writer's replay alone misses the other writers' values between: an
 *      abort then gave back a value several increments old (sim --writes
 *      seed 113 of --faults crash,stop,pause,cut with rule 17: two INCRs
 *      replied 232). tests/unit/test_writes.c (test_snapshot_*).
 *   P9 a value refused for a newer write in flight is not lost if that one
 *      aborts: it is kept below it, in flight until its maker decides
 *      (writes_apply, inflight_prior_refused), and the sweep of an aborted
 *      write waits while what it would give back is undecided; a member's
 *      newer proposal taken over this node's own undecided one aborts ours
 *      (WRITES.md rule 22; the writer's half, no commit across a lapse, is
 *      coherence.c abort_lapsed). sim --writes seeds 286, 98 and 40 of
 *      crash,stop,pause,cut (ctests sim_writes_seed286_refused_kept,
 *      sim_writes_seed98_sweep_waits, sim_writes_seed40_overtaken);
 *      tests/unit/test_writes.c (test_refused_proposal_*,
 *      test_sweep_waits_*, test_newer_member_proposal_*).
 *   P10 a catch-up snapshot never sends a proposal undecided here as a
 *      value: the key waits until its maker decides (writes_snapshot defers
 *      it, writes_snapshot_key sends it after), and an undecided SEED,
 *      which always commits, goes at once (WRITES.md rule 24). sim --writes
 *      seed 248 of crash,stop,pause,cut (ctest
 *      sim_writes_seed248_snapshot_waits: an aborted INCR took effect);
 *      tests/unit/test_writes.c (test_snapshot_waits_for_undecided_write).
 */
#ifndef COHORT_WRITES_H
#define COHORT_WRITES_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "cluster.h"
#include "flushmark.h"
#include "hlc.h"
#include "inflight.h"

typedef struct writes {
    cache_t *cache;
    flushmark_t *floor;  /* this incarnation's start, skipped gaps, and the
                            flushes and values before the last drop (hashed) */
    flushmark_t *recent; /* every flush since the cache was last empty, exact
                            (flushmark_new_exact) */
    inflight_t *inflight;
    hlc_t *hlc;
    cluster_t *cluster;
    int64_t now_ms;   /* wall clock: expiry */
    int64_t mono_ms;  /* monotonic clock: in-flight ages */
    int *waits_dirty; /* set to 1 when an in-flight entry went or changed */
} writes_t;

/* The newest version this node knows of key: its entry's, a flush's of it,
 * or a write's in flight. */
uint64_t writes_key_version(const writes_t *w, const char *key, size_t klen);

/* A member's flush, SEED, INVAL or PROPOSE (kind: flush_kind of frame.h, the
 * same numbers as versioned_op, FLUSH_PROPOSE above them), from origin (a
 * member's index) with its flush number seq. Returns 1, or 0 when a
 * PROPOSE is refused (a version of the key at least as new is here). */
int writes_apply(const writes_t *w, int kind, const char *key, size_t klen, const char *val,
                 size_t vlen, int64_t expire_at, int enc, uint64_t version, int origin,
                 uint64_t seq);

/* A flush made here with version (op: VOP_KEY, VOP_PREFIX or VOP_ALL; the
 * cache itself was changed by the caller): older SEEDs and writes in flight
 * of what it covers lose. Costs one update of the exact record. */
void writes_flushed(const writes_t *w, int op, const char *key, size_t klen, uint64_t version);

/* What key held before a write here replaces it: taken (copied) before the
 * write, handed to writes_propose, then freed. */
typedef struct writes_prior {
    char *val; /* NULL: key held nothing */
    size_t vlen;
    int64_t expire_at;
    int form;
    uint64_t version;
    int rmw; /* a read-modify-write made it */
} writes_prior_t;
void writes_prior_take(const writes_t *w, const char *key, size_t klen, writes_prior_t *out);
void writes_prior_free(writes_prior_t *p);

/* A write of a replicated key made here (e: key's entry, already stored;
 * prior: what it replaced, or NULL): proposed one step above the newest
 * version known of the key. If it aborts and the newer write that refused
 * it never arrives here, prior comes back (writes_sweep). Returns the flush
 * number to wait for (0 when alone: nothing to wait for). */
uint64_t writes_propose(const writes_t *w, cache_entry_t *e, const char *key, size_t klen,
                        const writes_prior_t *prior);
/* A TTL change of a replicated key made here (EXPIRE, PERSIST, GETEX; e:
 * its entry): e's expire time becomes expire_at, proposed like any
 * read-modify-write, with the value and its old time as what it replaced:
 * an abort whose newer write never arrives gives that back (P4), never an
 * empty key. Returns the flush number (0 when alone). */
uint64_t writes_propose_ttl(const writes_t *w, cache_entry_t *e, int64_t expire_at);
/* The same write as a SEED with version (hlc_next: newer than anything seen
 * here), for writes that read nothing. Returns the flush number. */
uint64_t writes_seed(const writes_t *w, cache_entry_t *e, const char *key, size_t klen,
                     uint64_t version);

/* origin's writes up to flush number upto committed (CLUSTER_SELF: ours). */
void writes_committed(const writes_t *w, int origin, uint64_t upto);
/* origin's write seq was refused somewhere: it will not commit. */
void writes_aborted(const writes_t *w, int origin, uint64_t seq);
/* origin's incarnation is gone: its writes in flight here are replayed as
 * this node's SEEDs (the value here, same version); its aborted ones give
 * back the value they replaced (none when none was kept). */
void writes_origin_gone(const writes_t *w, int origin);
/* origin's incarnation is gone while this node catches up (its cache was
 * dropped: what it holds is no ground to judge a gone writer's proposal
 * by): its writes in flight here wait, apart from its next process's, for
 * writes_replay_held, once the snapshot has filled what they replaced
 * (WRITES.md rule 37). */
void writes_origin_hold(const writes_t *w, int origin);
/* The node caught up: the writes writes_origin_hold kept are decided as
 * writes_origin_gone decides a gone writer's. */
void writes_replay_held(const writes_t *w);
/* The same for every aborted write in flight noted before older_than_mono
 * (writes of a live maker are decided by it: WRITES.md rule 11). */
void writes_sweep(const writes_t *w, int64_t older_than_mono);

/* A command's proposals (their flush numbers): -1 when one was refused (it
 * runs again from the start), 1 when every one committed (its reply may
 * go), 0 while undecided. */
int writes_decide(const uint64_t *seqs, size_t nseqs, uint64_t committed_self,
                  const uint64_t *aborts, size_t naborts);

/* Catch-up, as cluster_host_t.snapshot: visits the entries for which keep
 * says 1 from cursor, emitting each (or deferring a key whose newest write
 * is undecided here), until about budget bytes; returns the cursor to go on
 * from (0: done). */
uint64_t writes_snapshot(const writes_t *w, uint64_t cursor, size_t budget,
                         int (*keep)(void *kud, const char *key, size_t klen), void *kud,
                         const cluster_snap_out_t *out);
/* A deferred key, as cluster_host_t.snapshot_key: 1 while a proposal
 * stands undecided on it here, else emits what the key holds now (nothing
 * when out is NULL) and 0. */
int writes_snapshot_key(const writes_t *w, const char *key, size_t klen,
                        const cluster_snap_out_t *out);
/* A member's snapshot entry: a SEED judged by the floor since the cache was
 * last empty (w->recent). */
void writes_apply_snapshot(const writes_t *w, const char *key, size_t klen, const char *val,
                           size_t vlen, int64_t expire_at, int enc, uint64_t version);

/* The members' writes in flight here, not aborted (inflight.h), for the
 * cluster to refuse before a drop of the whole cache (cluster.h
 * each_undecided). */
void writes_each_undecided(const writes_t *w, void (*fn)(void *ud, int origin, uint64_t seq),
                           void *ud);

/* Drops every entry of the cache because a member's flushes may have been
 * lost (cluster_host_t.drop_all), keeping its versions (P7): the floor of
 * every key rises to the newest version this node made or observed
 * (hlc_seen: at least every dropped entry's version and every flush
 * recorded since the cache was last empty), so an older SEED replayed after
 * the drop is refused (a catch-up snapshot is judged without it); that
 * record (w->recent, exact) starts again, and this node's own writes leave
 * the in-flight table (P6). Returns the keys dropped. */
size_t writes_drop_all(const writes_t *w);

#endif
