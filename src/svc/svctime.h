/* svctime: the clock and timers that lease.c and scheduler.c run on.
 *
 * Owns: one timer abstraction with two implementations: the default (a libuv
 * timer on the loop, uv_hrtime for monotonic time, clock.h's cached wall
 * clock), and one a caller injects (svctime_ops_t), so that the lease
 * simulator (tests/sim/lease_sim.c) can run the real lease and scheduler code
 * on a simulated clock and fire their timers itself, deterministically.
 * Never: changes anything in the daemon: a NULL ops pointer is the default
 * and behaves exactly as the libuv timers and clocks the modules used before.
 */
#ifndef COHORT_SVCTIME_H
#define COHORT_SVCTIME_H

#include <stdint.h>
#include <uv.h>

typedef struct svctime_timer svctime_timer_t;
typedef struct svctime_ops svctime_ops_t;
typedef void (*svctime_cb)(svctime_timer_t *t);

/* An injected clock. Each function gets ops->ud. */
struct svctime_ops {
    int64_t (*mono_ms)(void *ud); /* monotonic ms */
    int64_t (*wall_ms)(void *ud); /* wall-clock Unix ms */
    /* Fires t->cb after ms (local) milliseconds, then every repeat_ms if > 0;
     * replaces an earlier start of t. */
    void (*start)(void *ud, svctime_timer_t *t, int64_t ms, int64_t repeat_ms);
    /* Stops t for good; calls t->closed(t) later, never from inside. */
    void (*close)(void *ud, svctime_timer_t *t);
    void *ud;
};

struct svctime_timer {
    uv_timer_t uv; /* the default implementation's timer */
    const svctime_ops_t *ops;
    svctime_cb cb;
    void (*closed)(svctime_timer_t *t);
    void *data; /* the owner's */
    void *impl; /* the injected implementation's */
};

/* Prepares t on loop (default) or on ops (may be NULL: the default). */
void svctime_timer_init(svctime_timer_t *t, uv_loop_t *loop, const svctime_ops_t *ops,
                        svctime_cb cb, void *data);
/* Starts t: fires after ms, then every repeat_ms if > 0. */
void svctime_timer_start(svctime_timer_t *t, int64_t ms, int64_t repeat_ms);
/* Closes t; closed(t) runs later on the loop, after which t may be freed. */
void svctime_timer_close(svctime_timer_t *t, void (*closed)(svctime_timer_t *t));

/* Monotonic milliseconds now (default: uv_hrtime). */
int64_t svctime_mono_ms(const svctime_ops_t *ops);
/* Wall-clock ms as of the last svctime_wall_tick (default: clock_now_ms). */
int64_t svctime_wall_ms(const svctime_ops_t *ops);
/* Re-reads the wall clock (default: clock_tick; injected: always current). */
void svctime_wall_tick(const svctime_ops_t *ops);

#endif
