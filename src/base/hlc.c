/* hlc: a hybrid logical clock for versions; see hlc.h. */
#include "hlc.h"

uint64_t hlc_at(int64_t wall_ms)
{
    return wall_ms > 0 ? (uint64_t)wall_ms << HLC_TAG_BITS : 0;
}

uint64_t hlc_next(hlc_t *h, int64_t wall_ms)
{
    uint64_t wall = wall_ms > 0 ? (uint64_t)wall_ms : 0;
    h->counter = h->counter + 1 > wall ? h->counter + 1 : wall;
    return h->counter << HLC_TAG_BITS | h->tag;
}

void hlc_observe(hlc_t *h, uint64_t version)
{
    uint64_t counter = version >> HLC_TAG_BITS;
    if (counter > h->counter)
        h->counter = counter;
}
