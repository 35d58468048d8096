/* svctime: libuv timers and clocks, or an injected clock; see svctime.h.
 *
 * Owns: nothing beyond the timer it is handed.
 * Never: mixes the two implementations for one timer. */
#include "svctime.h"

#include "clock.h"

static void on_uv_timer(uv_timer_t *u)
{
    svctime_timer_t *t = u->data;
    t->cb(t);
}

static void on_uv_closed(uv_handle_t *h)
{
    svctime_timer_t *t = h->data;
    t->closed(t);
}

void svctime_timer_init(svctime_timer_t *t, uv_loop_t *loop, const svctime_ops_t *ops,
                        svctime_cb cb, void *data)
{
    t->ops = ops;
    t->cb = cb;
    t->data = data;
    t->closed = NULL;
    t->impl = NULL;
    if (!ops) {
        uv_timer_init(loop, &t->uv);
        t->uv.data = t;
    }
}

void svctime_timer_start(svctime_timer_t *t, int64_t ms, int64_t repeat_ms)
{
    if (t->ops) {
        t->ops->start(t->ops->ud, t, ms, repeat_ms);
        return;
    }
    uv_timer_start(&t->uv, on_uv_timer, (uint64_t)ms, repeat_ms > 0 ? (uint64_t)repeat_ms : 0);
}

void svctime_timer_close(svctime_timer_t *t, void (*closed)(svctime_timer_t *t))
{
    t->closed = closed;
    if (t->ops) {
        t->ops->close(t->ops->ud, t);
        return;
    }
    uv_close((uv_handle_t *)&t->uv, on_uv_closed);
}

int64_t svctime_mono_ms(const svctime_ops_t *ops)
{
    return ops ? ops->mono_ms(ops->ud) : (int64_t)(uv_hrtime() / 1000000);
}

int64_t svctime_wall_ms(const svctime_ops_t *ops)
{
    return ops ? ops->wall_ms(ops->ud) : clock_now_ms();
}

void svctime_wall_tick(const svctime_ops_t *ops)
{
    if (!ops)
        clock_tick();
}
