/* hlc: versions for ordering writes and flushes of one key across nodes.
 *
 * Owns: a hybrid logical clock: a counter that is at least the wall clock in
 * ms, grows by one for every version issued, and jumps to any larger counter
 * seen in a version from elsewhere (a Lamport clock kept close to real
 * time). A version is (counter << 16) | tag, the tag telling the nodes apart
 * (1..65535; 0 means no node), so versions of one cluster are unique and
 * totally ordered.
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
 * that applied the first has seen its counter. */
#ifndef COHORT_HLC_H
#define COHORT_HLC_H

#include <stdint.h>

#define HLC_TAG_BITS 16

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
 * any node: (wall_ms << 16). */
uint64_t hlc_at(int64_t wall_ms);

#endif
