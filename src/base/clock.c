/* clock: cached and immediate wall-clock readings; see clock.h. */
#include "clock.h"

#include <stdlib.h>
#include <time.h>

static int64_t cached_ms;
static int64_t offset_ms; /* COHORT_CLOCK_OFFSET_MS, read once */
static int offset_read;

/* The environment's COHORT_CLOCK_OFFSET_MS shifts this process's wall clock
 * (never its monotonic clock): a node whose clock is off, for tests of what
 * clock skew may and may not change. */
static int64_t offset(void)
{
    if (!offset_read) {
        const char *s = getenv("COHORT_CLOCK_OFFSET_MS");
        offset_ms = s ? strtoll(s, NULL, 10) : 0;
        offset_read = 1;
    }
    return offset_ms;
}

int64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + offset();
}

int64_t clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void clock_tick(void)
{
    cached_ms = clock_wall_ms();
}

int64_t clock_now_ms(void)
{
    if (cached_ms == 0)
        clock_tick();
    return cached_ms;
}
