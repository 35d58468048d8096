/* store-bench: round trips of the shared store, one kind of operation at a
 * time, through the real asynchronous interface (store.h) on a libuv loop.
 *
 *   store_bench URL [ops per kind (2000)] [in flight (1)]
 *
 * Prints, per operation kind, operations per second and the latency from
 * submit to callback (p50, p99, max, in microseconds). Exits non-zero only
 * when an operation fails. Built by CMake as build/store_bench; run by
 * bench/store-roundtrip against SQLite and a throwaway PostgreSQL. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store.h"

enum kind { RENEW, LEASE, CLAIM, APPEND, READ, NKINDS };
static const char *const kind_names[NKINDS] = {"member_renew", "lease_acquire", "job_claim",
                                               "flushlog_append", "flushlog_read"};

static uv_loop_t loop;
static store_t *store;
static enum kind kind;
static long total, inflight, sent, done_count, failed;
static uint64_t *lat; /* ns per completed op */
static int64_t last_id;

typedef struct slot {
    uint64_t t0;
} slot_t;

static void submit_one(slot_t *sl);

static void completed(slot_t *sl, int rc, const char *err)
{
    if (rc != 0) {
        fprintf(stderr, "store_bench: %s: %s\n", kind_names[kind], err);
        failed++;
    }
    lat[done_count++] = uv_hrtime() - sl->t0;
    if (sent < total)
        submit_one(sl);
    else
        free(sl);
}

static void on_members(void *ud, int rc, const char *err, int64_t now, const store_member_t *m,
                       size_t n)
{
    completed(ud, rc, err);
}

static void on_lease(void *ud, int rc, const char *err, const store_lease_t *l)
{
    completed(ud, rc, err);
}

static void on_claim(void *ud, int rc, const char *err, bool claimed)
{
    completed(ud, rc == 0 && !claimed ? -1 : rc, rc == 0 && !claimed ? "not claimed" : err);
}

static void on_ids(void *ud, int rc, const char *err, const int64_t *ids, size_t n)
{
    if (rc == 0 && n)
        last_id = ids[n - 1];
    completed(ud, rc, err);
}

static void on_rows(void *ud, int rc, const char *err, const store_flush_row_t *rows, size_t n)
{
    completed(ud, rc, err);
}

static void submit_one(slot_t *sl)
{
    static const char payload[64] = "bench:key:0123456789";
    store_flush_entry_t e = {(uint64_t)sent, payload, sizeof(payload)};
    int rc = 0;
    sl->t0 = uv_hrtime();
    switch (kind) {
    case RENEW:
        rc = store_member_renew(store, "bench", 1, "127.0.0.1:7381", 10000, on_members, sl);
        break;
    case LEASE:
        rc = store_lease_acquire(store, "bench", "bench", 10000, on_lease, sl);
        break;
    case CLAIM:
        rc = store_job_claim(store, "bench", (int64_t)uv_hrtime(), "bench", 1, on_claim, sl);
        break;
    case APPEND:
        rc = store_flushlog_append(store, "bench", 1, &e, 1, on_ids, sl);
        break;
    case READ:
        rc = store_flushlog_read(store, last_id > 100 ? last_id - 100 : 0, 100, on_rows, sl);
        break;
    case NKINDS:
        break;
    }
    if (rc != 0) {
        fprintf(stderr, "store_bench: submit: %s\n", store_strerror(rc));
        exit(1);
    }
    sent++;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void run_kind(enum kind k)
{
    kind = k;
    sent = done_count = 0;
    uint64_t t0 = uv_hrtime();
    for (long i = 0; i < inflight && sent < total; i++)
        submit_one(calloc(1, sizeof(slot_t)));
    while (done_count < total)
        uv_run(&loop, UV_RUN_ONCE);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    qsort(lat, (size_t)total, sizeof(*lat), cmp_u64);
    printf("%-16s %8.0f ops/s   p50 %7.0f us   p99 %7.0f us   max %7.0f us\n", kind_names[k],
           (double)total / secs, (double)lat[total / 2] / 1e3, (double)lat[total * 99 / 100] / 1e3,
           (double)lat[total - 1] / 1e3);
}

static void on_closed(void *ud)
{
    *(bool *)ud = true;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: store_bench URL [ops per kind] [in flight]\n");
        return 2;
    }
    total = argc > 2 ? atol(argv[2]) : 2000;
    inflight = argc > 3 ? atol(argv[3]) : 1;
    if (total < 1 || inflight < 1) {
        fprintf(stderr, "store_bench: ops and in-flight must be positive\n");
        return 2;
    }
    log_open("bench", NULL, LOG_WARN);
    uv_loop_init(&loop);
    store_opts_t o = {.url = argv[1], .node_name = "bench", .max_pending = (size_t)inflight};
    char err[256];
    if (store_open(&loop, &o, &store, err, sizeof(err)) != 0) {
        fprintf(stderr, "store_bench: %s\n", err);
        return 2;
    }
    store_health_t h;
    do {
        uv_run(&loop, UV_RUN_ONCE);
        store_health(store, &h);
    } while (h.state == STORE_STARTING);
    if (h.state != STORE_UP) {
        fprintf(stderr, "store_bench: store not up: %s\n", h.last_error);
        return 1;
    }
    lat = calloc((size_t)total, sizeof(*lat));
    printf("%s, %ld ops per kind, %ld in flight\n", h.backend, total, inflight);
    for (int k = 0; k < NKINDS; k++)
        run_kind((enum kind)k);
    bool closed = false;
    store_close(store, on_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_loop_close(&loop);
    free(lat);
    return failed ? 1 : 0;
}
