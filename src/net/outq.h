/* outq: writing a buffer to a libuv stream, direct first, queued for the rest.
 *
 * Owns: the write requests it creates and, once handed over, the memory of
 * the bytes they carry.
 * Never: copies bytes (the queued write takes the buffer's allocation), or
 * reorders them (while earlier writes are queued, new bytes queue behind). */
#ifndef COHORT_OUTQ_H
#define COHORT_OUTQ_H

#include <stddef.h>
#include <uv.h>

#include "buf.h"

/* Called when a queued write completes or is cancelled (status < 0), after
 * *inflight was decreased. */
typedef void (*outq_done_fn)(void *ud, int status);

/* Hands the pending bytes of out to stream s: what the kernel takes at once is
 * written directly; the rest goes to a queued write that takes over out's
 * memory (out is left empty). *inflight counts the bytes of queued writes
 * until they complete; it must outlive them (libuv completes or cancels every
 * write before the stream's close callback). Returns the bytes written in
 * all (direct and queued), or a negative libuv error: close the stream. */
long outq_write(uv_stream_t *s, buf_t *out, size_t *inflight, outq_done_fn done, void *ud);

#endif
