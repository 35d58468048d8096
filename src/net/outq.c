/* outq: direct-then-queued writes to a libuv stream; see outq.h. */
#include "outq.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"

typedef struct outq_req {
    uv_write_t req;
    char *data; /* owned */
    size_t len;
    size_t *inflight;
    outq_done_fn done;
    void *ud;
} outq_req_t;

/* A uv_buf_t holds at most UINT_MAX bytes; bigger output goes out as
 * several buffers of this size. */
#define OUTQ_CHUNK (1u << 30)

/* Describes the first bytes of p (up to len) as at most max buffers of up to
 * OUTQ_CHUNK bytes in b. Returns how many it used. */
static unsigned chunks(char *p, size_t len, uv_buf_t *b, unsigned max)
{
    unsigned n = 0;
    for (size_t at = 0; at < len && n < max; at += OUTQ_CHUNK, n++) {
        size_t part = len - at < OUTQ_CHUNK ? len - at : OUTQ_CHUNK;
        b[n] = uv_buf_init(p + at, (unsigned)part);
    }
    return n;
}

static void on_written(uv_write_t *req, int status)
{
    outq_req_t *w = (outq_req_t *)req;
    *w->inflight -= w->len;
    outq_done_fn done = w->done;
    void *ud = w->ud;
    free(w->data);
    free(w);
    if (done)
        done(ud, status);
}

long outq_write(uv_stream_t *s, buf_t *out, size_t *inflight, outq_done_fn done, void *ud)
{
    size_t len = buf_len(out);
    if (len == 0)
        return 0;
    uv_buf_t few[4];
    unsigned n = chunks(buf_head(out), len, few, 4); /* the rest, if any, is queued */
    int direct = *inflight ? UV_EAGAIN : uv_try_write(s, few, n);
    if (direct == UV_EAGAIN)
        direct = 0;
    if (direct < 0)
        return direct;
    buf_consume(out, (size_t)direct);
    size_t rest = len - (size_t)direct;
    if (rest == 0)
        return (long)len;
    /* Queue the rest: move it to the front and give the allocation away. */
    outq_req_t *w = xmalloc(sizeof(*w));
    if (out->start > 0)
        memmove(out->data, buf_head(out), rest);
    w->data = out->data;
    w->len = rest;
    w->inflight = inflight;
    w->done = done;
    w->ud = ud;
    buf_init(out);
    unsigned need = (unsigned)((rest + OUTQ_CHUNK - 1) / OUTQ_CHUNK);
    uv_buf_t *b = need <= 4 ? few : xmalloc(need * sizeof(*b));
    n = chunks(w->data, rest, b, need);
    int rc = uv_write(&w->req, s, b, n, on_written); /* copies the array */
    if (b != few)
        free(b);
    if (rc < 0) {
        free(w->data);
        free(w);
        return rc;
    }
    *inflight += rest;
    return (long)len;
}
