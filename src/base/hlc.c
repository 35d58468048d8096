/* hlc: a hybrid logical clock for versions; see hlc.h. */
#include "hlc.h"

/* The wall clock in counter steps (HLC_STEPS_PER_MS to the ms). */
static uint64_t steps_at(int64_t wall_ms)
{
    return wall_ms > 0 ? (uint64_t)wall_ms << HLC_STEP_BITS : 0;
}

uint64_t hlc_at(int64_t wall_ms)
{
    return steps_at(wall_ms) << HLC_TAG_BITS;
}

uint64_t hlc_next(hlc_t *h, int64_t wall_ms)
{
    uint64_t wall = steps_at(wall_ms);
    h->counter = h->counter + 1 > wall ? h->counter + 1 : wall;
    return h->counter << HLC_TAG_BITS | h->tag;
}

uint64_t hlc_after(const hlc_t *h, uint64_t base)
{
    return ((base >> HLC_TAG_BITS) + 1) << HLC_TAG_BITS | h->tag;
}

uint64_t hlc_seen(const hlc_t *h)
{
    /* Versions observed have a counter below h->counter (hlc_observe keeps
     * it one above); versions made here have at most h->counter and our tag. */
    return h->counter << HLC_TAG_BITS | h->tag;
}

void hlc_observe(hlc_t *h, uint64_t version)
{
    /* One more than the counter seen: the next version made here is two
     * above it, above any read-modify-write proposed on it (one above). */
    uint64_t counter = (version >> HLC_TAG_BITS) + 1;
    if (counter > h->counter)
        h->counter = counter;
}

int64_t hlc_ahead_ms(const hlc_t *h, int64_t wall_ms)
{
    uint64_t wall = steps_at(wall_ms);
    return h->counter > wall ? (int64_t)((h->counter - wall) >> HLC_STEP_BITS) : 0;
}
