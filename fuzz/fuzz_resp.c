/* fuzz_resp: libFuzzer target for the RESP request parser.
 *
 * The input is a client's byte stream. It is parsed twice: whole, and in
 * pieces whose sizes are derived from the input itself, each call seeing the
 * pending bytes in a fresh exact-size allocation (so a read past `len` or a
 * pointer kept across calls is caught by ASan). Both runs must agree on every
 * command, on where the stream stops, and on the error text. Every command is
 * re-encoded as a multibulk request, which must parse back to itself.
 *
 * Invariants checked on every call: consumed <= len; consumed > 0 and argc >=
 * 0 on RESP_OK, consumed == 0 otherwise; every argument lies inside the
 * caller's bytes or the parser's scratch buffer; RESP_ERROR comes with a
 * non-empty "Protocol error: ..." text. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "resp.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_resp: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);    \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct outcome {
    buf_t cmds;    /* every command, re-encoded as a multibulk request */
    size_t parsed; /* bytes consumed by whole commands */
    int last;      /* RESP_MORE or RESP_ERROR */
    char error[128];
} outcome_t;

/* xorshift64*, seeded from the input so that a crash reproduces. */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static uint64_t hash(const uint8_t *d, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ d[i]) * 1099511628211ULL;
    return h ? h : 1;
}

static int inside(const char *p, size_t n, const char *base, size_t len)
{
    return base && p >= base && n <= len && (size_t)(p - base) <= len - n;
}

/* One resp_parse() call with its invariants checked; a command is appended
 * to out->cmds. */
static int parse_checked(resp_parser_t *p, const char *data, size_t len, size_t *used,
                         outcome_t *out)
{
    *used = (size_t)-1;
    int rc = resp_parse(p, data, len, used);
    CHECK(rc == RESP_OK || rc == RESP_MORE || rc == RESP_ERROR);
    CHECK(*used <= len);
    if (rc == RESP_OK) {
        CHECK(*used > 0);
        CHECK(p->argc >= 0);
        CHECK(p->want_bytes == 0);
        resp_add_array(&out->cmds, (size_t)p->argc);
        for (int i = 0; i < p->argc; i++) {
            CHECK(inside(p->argv[i], p->argl[i], data, *used) ||
                  inside(p->argv[i], p->argl[i], p->scratch, p->scratch_cap));
            resp_add_bulk(&out->cmds, p->argv[i], p->argl[i]);
        }
        out->parsed += *used;
    } else {
        CHECK(*used == 0);
    }
    if (rc == RESP_MORE)
        CHECK(p->want_bytes <= p->limits.max_bulk_len + 2);
    if (rc == RESP_ERROR) {
        CHECK(p->error[0] != '\0');
        CHECK(strncmp(p->error, "Protocol error: ", 16) == 0);
        CHECK(strchr(p->error, '\r') == NULL && strchr(p->error, '\n') == NULL);
        CHECK(p->want_bytes == 0);
        memcpy(out->error, p->error, sizeof(out->error));
    }
    return rc;
}

/* The whole stream in one buffer. */
static void run_whole(const char *data, size_t len, const resp_limits_t *lim, outcome_t *out)
{
    resp_parser_t p;
    size_t off = 0, used;
    int rc;
    resp_parser_init(&p, lim);
    char *copy = malloc(len ? len : 1);
    if (len)
        memcpy(copy, data, len);
    while ((rc = parse_checked(&p, copy + off, len - off, &used, out)) == RESP_OK)
        off += used;
    out->last = rc;
    free(copy);
    resp_parser_free(&p);
}

/* The stream in pieces, as a client's query buffer fills. */
static void run_split(const char *data, size_t len, const resp_limits_t *lim, uint64_t seed,
                      outcome_t *out)
{
    resp_parser_t p;
    buf_t q;
    size_t fed = 0, used;
    int rc = RESP_MORE;
    resp_parser_init(&p, lim);
    buf_init(&q);
    while (rc != RESP_ERROR && fed < len) {
        uint64_t r = next_rand(&seed);
        size_t piece = (r & 3) == 0 ? 1 : 1 + (size_t)(r >> 8) % ((r & 4) ? 8 : 300);
        if (piece > len - fed)
            piece = len - fed;
        buf_append(&q, data + fed, piece);
        fed += piece;
        for (;;) {
            size_t n = buf_len(&q);
            char *exact = malloc(n ? n : 1);
            if (n)
                memcpy(exact, buf_head(&q), n);
            rc = parse_checked(&p, exact, n, &used, out);
            free(exact);
            if (rc != RESP_OK)
                break;
            buf_consume(&q, used);
        }
    }
    out->last = rc;
    buf_free(&q);
    resp_parser_free(&p);
}

/* Parses re-encoded commands back; they must come out identical. */
static void check_roundtrip(const outcome_t *o)
{
    outcome_t again;
    memset(&again, 0, sizeof(again));
    buf_init(&again.cmds);
    run_whole(buf_head(&o->cmds), buf_len(&o->cmds), NULL, &again);
    CHECK(again.last == RESP_MORE);
    CHECK(again.parsed == buf_len(&o->cmds));
    CHECK(buf_len(&again.cmds) == buf_len(&o->cmds));
    CHECK(buf_len(&o->cmds) == 0 ||
          memcmp(buf_head(&again.cmds), buf_head(&o->cmds), buf_len(&o->cmds)) == 0);
    buf_free(&again.cmds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    uint64_t seed = hash(data, size);

    /* Some runs use tiny limits so that the limit checks are reached. */
    resp_limits_t small = {.max_bulk_len = seed % 64, .max_multibulk = (seed >> 8) % 16};
    const resp_limits_t *lim = (seed >> 16) % 4 == 0 ? &small : NULL;

    outcome_t whole, split;
    memset(&whole, 0, sizeof(whole));
    memset(&split, 0, sizeof(split));
    buf_init(&whole.cmds);
    buf_init(&split.cmds);

    run_whole(in, size, lim, &whole);
    run_split(in, size, lim, seed, &split);

    CHECK(whole.last == split.last);
    CHECK(whole.parsed == split.parsed);
    CHECK(buf_len(&whole.cmds) == buf_len(&split.cmds));
    CHECK(buf_len(&whole.cmds) == 0 ||
          memcmp(buf_head(&whole.cmds), buf_head(&split.cmds), buf_len(&whole.cmds)) == 0);
    if (whole.last == RESP_ERROR)
        CHECK(strcmp(whole.error, split.error) == 0);
    check_roundtrip(&whole);

    buf_free(&whole.cmds);
    buf_free(&split.cmds);
    return 0;
}
