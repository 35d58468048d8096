/* clock: the process's notion of "now", in milliseconds.
 *
 * Owns: the wall clock cached for the current loop turn (read once per turn,
 * as redis-server caches its unix time), and the uncached readings for
 * decisions that must not use a stale time.
 * Never: keeps per-subsystem state or touches the event loop; the loop's own
 * monotonic clock (uv_now) stays the loop's.
 *
 * One cached value per process: cohortd runs one event loop, and every
 * subsystem of a turn must see the same "now". The environment variable
 * COHORT_CLOCK_OFFSET_MS shifts the wall clock of the process (tests of a
 * node whose clock is off). */
#ifndef COHORT_CLOCK_H
#define COHORT_CLOCK_H

#include <stdint.h>

/* Wall-clock milliseconds since the epoch, as of the last clock_tick(). */
int64_t clock_now_ms(void);
/* Re-reads the wall clock into the cached value (call at the start of each
 * loop turn and after work that may have taken long). */
void clock_tick(void);
/* Wall-clock milliseconds read at this moment (not cached). */
int64_t clock_wall_ms(void);
/* Monotonic milliseconds (CLOCK_MONOTONIC) read at this moment: for leases,
 * timeouts and held replies, which must be judged by a clock read when the
 * decision is taken, never by the time a loop turn or a batch started. */
int64_t clock_mono_ms(void);

#endif
