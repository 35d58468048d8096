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
    uv_buf_t b = uv_buf_init(buf_head(out), (unsigned)len);
    int direct = *inflight ? UV_EAGAIN : uv_try_write(s, &b, 1);
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
    b = uv_buf_init(w->data, (unsigned)rest);
    int rc = uv_write(&w->req, s, &b, 1, on_written);
    if (rc < 0) {
        free(w->data);
        free(w);
        return rc;
    }
    *inflight += rest;
    return (long)len;
}
