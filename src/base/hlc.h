/* hlc: versions for ordering writes and flushes of one key across nodes.
 *
 * Owns: a hybrid logical clock: a counter that is at least the wall clock,
 * in steps of 1/1024 ms, grows by one step for every version issued, and
 * jumps to any larger counter seen in a version from elsewhere (a Lamport
 * clock kept close to real time). A version is (counter << 10) | tag, the
 * tag telling the nodes apart (1..1023; 0 means no node), so versions of one
 * cluster are unique and totally ordered. 54 bits of counter last until the
 * year 2527.
 * Never: goes backwards, or reads a clock itself (the caller passes the wall
 * time, so a simulator can drive it).
 *
 * A read-modify-write of a key replicated with version b is proposed as
 * hlc_after(b): one counter step above b, so that every write or flush
 * made by a node that has seen b (two steps above it, hlc_observe) is newer
 * than the proposal (cluster/WRITES.md).
 *
 * Ordering by version respects real time as long as the nodes' wall clocks
 * agree better than the gap between two operations: an operation issued
 * after another replied everywhere gets a larger version, because every node
 * that applied the first has seen its counter. An operation on a node that
 * has not seen the first (a local fill elsewhere; a node just restarted)
 * relies on the counters staying close to the wall clock: they run ahead of
 * it only while the cluster issues more than a million versions a second.
 * With the counter in whole ms (as it once was), 700 flushes a second ran
 * the cluster's counters seconds ahead of a restarted node's, whose flushes
 * then lost to fills made before them
 * (tests/integration/test_cluster_regressions.py
 * test_flush_from_a_restarted_node_beats_fills_made_before_it). */
#ifndef COHORT_HLC_H
#define COHORT_HLC_H

#include <stdint.h>

#define HLC_TAG_BITS 10
#define HLC_MAX_TAG ((1u << HLC_TAG_BITS) - 1) /* so at most 1023 nodes */
#define HLC_STEP_BITS 10                       /* 1024 counter steps to the ms */

typedef struct hlc {
    uint64_t counter; /* the last counter issued or seen */
    uint16_t tag;     /* this node's tag */
} hlc_t;

/* The next version, for an operation made here now. */
uint64_t hlc_next(hlc_t *h, int64_t wall_ms);
/* The version one counter step above base, with this node's tag. */
uint64_t hlc_after(const hlc_t *h, uint64_t base);
/* Takes note of a version made elsewhere. */
void hlc_observe(hlc_t *h, uint64_t version);
/* The newest version this clock made or observed, or above it: every
 * version hlc_next, hlc_after (once observed) or hlc_observe saw here is at
 * most this, and the next one made here is above it. */
uint64_t hlc_seen(const hlc_t *h);
/* The version an operation made at wall_ms (ms) would have at least, from
 * any node: (wall_ms << 20). */
uint64_t hlc_at(int64_t wall_ms);
/* How far, in ms, the counter is ahead of wall_ms (0 if not): INFO shows it. */
int64_t hlc_ahead_ms(const hlc_t *h, int64_t wall_ms);

#endif
