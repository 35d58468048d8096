/* clock: cached and immediate wall-clock readings; see clock.h. */
#include "clock.h"

#include <time.h>

static int64_t cached_ms;

int64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
