/* fuzz_frame: libFuzzer target for the peer-link frame decoder and the
 * payload readers.
 *
 * The input is a peer's byte stream, decoded three ways, each from a fresh
 * exact-size allocation so that a read past `len` is caught by ASan:
 *   1. as it is: frame after frame with the fixed key below and sequence
 *      checking, until the decoder wants more or refuses;
 *   2. every prefix of the first frame: "need more" or the same early
 *      refusal, never a frame before its last byte;
 *   3. signed: the header's length is kept when the input holds that much
 *      (else set to what the input holds), the MAC is recomputed with
 *      OpenSSL's HMAC and the sequence number expected is the frame's own, so
 *      that arbitrary payloads get past the MAC and reach the readers.
 * Every decoded frame's payload is walked with the readers as its type says
 * (fields of each type in `layouts` below, FLUSH entries by their count).
 *
 * Seeds in fuzz/corpus/frame are written by `test_frame --write-corpus DIR`
 * with the same key. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "frame.h"

/* The key of `test_frame --write-corpus`; keep the two equal. */
#define FUZZ_FRAME_KEY   "cohort fuzz key, 32 bytes long!!"
#define FUZZ_MAX_PAYLOAD 4096 /* small, so that FRAME_ETOOBIG is reached */

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_frame: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const uint8_t *fuzz_key(void)
{
    return (const uint8_t *)FUZZ_FRAME_KEY;
}

/* The frame key (with its keyed context) of the fuzz key's bytes. */
static const frame_key_t *K(const uint8_t *raw)
{
    static frame_key_t k;
    if (!k.ctx)
        frame_key_init(&k, raw);
    return &k;
}

/* The payload of each type as a string of fields: '1' '2' '4' '8' an
 * integer of that many bytes, 'n' a name (bytes, <= 255), 'h' a nonce or
 * proof (bytes, <= 32), 'F' FLUSH's entries (count from the last u32), 'I'
 * INTEREST's flags and entries, 'M' a MESSAGE payload, 'S' SNAPSHOT's
 * entries (count from the last u32), 'Q' u64s (count from the last u32),
 * 'P' PRESENCE's flags and entries. Every
 * type has a layout (checked at the first input). */
static const char *const layouts[FRAME_TYPE_MAX + 1] = {
    [FRAME_HELLO] = "1nn82h",   /* proto, cluster, name, incarnation, port, nonce */
    [FRAME_WELCOME] = "1nn8hh", /* proto, cluster, name, incarnation, nonce, proof */
    [FRAME_PROOF] = "h",        /* proof */
    [FRAME_PING] = "88",        /* id, time */
    [FRAME_PONG] = "88",        /* id, time */
    [FRAME_FLUSH] = "884F",     /* incarnation, first, count, entries */
    [FRAME_ACK] = "88",         /* incarnation, highest applied */
    [FRAME_SYNC] = "888",       /* incarnation, highest applied, start version */
    [FRAME_RESET] = "8818",     /* incarnation, restart number, flags, version */
    [FRAME_PROBE] = "8n",       /* id, target */
    [FRAME_PROBED] = "8n1",     /* id, target, reachable */
    [FRAME_BYE] = "",           /* nothing */
    [FRAME_INTEREST] = "I",     /* flags, entries to the end */
    [FRAME_MESSAGE] = "M",      /* messages (flags, channel, payload) to the end */
    [FRAME_SNAPREQ] = "8",      /* request id */
    [FRAME_SNAPSHOT] = "814S",  /* request id, flags, count, entries */
    [FRAME_NACK] = "88",        /* incarnation, flush number */
    [FRAME_ABORT] = "88",       /* incarnation, flush number */
    [FRAME_COMMIT] = "88",      /* incarnation, flush number */
    [FRAME_PRESENCE] = "P",     /* flags, count, entries */
    [FRAME_STOREID] = "n",      /* backend:id */
    [FRAME_VOIDED] = "n84Q",    /* writer, its incarnation, count, flush numbers */
};

static void check_inside(const frame_hdr_t *h, const frame_bytes_t *v)
{
    CHECK(v->p >= h->payload);
    CHECK((size_t)(v->p - h->payload) + v->len <= h->len);
}

/* Walks the payload of h with the readers; checks that a reader that has
 * failed stays failed and that every byte string lies inside the payload. */
static void walk_payload(const frame_hdr_t *h)
{
    CHECK(h->type >= FRAME_HELLO && h->type <= FRAME_TYPE_MAX);
    CHECK(layouts[h->type] != NULL);
    frame_reader_t r;
    frame_reader_init(&r, h);
    int rc = 0;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32 = 0;
    uint64_t u64;
    frame_bytes_t v;
    for (const char *f = layouts[h->type]; *f && rc == 0; f++) {
        switch (*f) {
        case '1':
            rc = frame_get_u8(&r, &u8);
            break;
        case '2':
            rc = frame_get_u16(&r, &u16);
            break;
        case '4':
            rc = frame_get_u32(&r, &u32);
            break;
        case '8':
            rc = frame_get_u64(&r, &u64);
            break;
        case 'n':
        case 'h':
            rc = frame_get_bytes(&r, &v, *f == 'n' ? 255 : FRAME_MAC_SIZE);
            if (rc == 0)
                check_inside(h, &v);
            break;
        case 'F':
            for (uint32_t i = 0; i < u32 && rc == 0; i++) {
                rc = frame_get_u8(&r, &u8);
                if (rc == 0)
                    rc = frame_get_u64(&r, &u64); /* version */
                if (rc == 0)
                    rc = frame_get_bytes(&r, &v, UINT32_MAX);
                if (rc == 0) {
                    check_inside(h, &v);
                    if (u8 == FLUSH_SEED || u8 == FLUSH_PROPOSE) {
                        rc = frame_get_u64(&r, &u64);
                        if (rc == 0)
                            rc = frame_get_bytes(&r, &v, UINT32_MAX);
                        if (rc == 0) {
                            check_inside(h, &v);
                            rc = frame_get_u8(&r, &u8); /* form */
                        }
                    } else if (u8 == FLUSH_INVAL) {
                        rc = frame_get_bytes(&r, &v, 8);
                        if (rc == 0)
                            check_inside(h, &v);
                    }
                }
            }
            break;
        case 'Q':
            for (uint32_t i = 0; i < u32 && rc == 0; i++)
                rc = frame_get_u64(&r, &u64);
            break;
        case 'S':
            for (uint32_t i = 0; i < u32 && rc == 0; i++) {
                rc = frame_get_u64(&r, &u64); /* version */
                if (rc == 0)
                    rc = frame_get_bytes(&r, &v, UINT32_MAX);
                if (rc == 0)
                    rc = frame_get_u64(&r, &u64); /* time left */
                if (rc == 0)
                    rc = frame_get_bytes(&r, &v, UINT32_MAX);
                if (rc == 0) {
                    check_inside(h, &v);
                    rc = frame_get_u8(&r, &u8); /* form */
                }
            }
            break;
        case 'I': {
            rc = frame_get_interest_head(&r, &u8, &u32);
            for (uint32_t i = 0; i < u32 && rc == 0; i++) {
                frame_interest_t e;
                rc = frame_get_interest(&r, &e, UINT32_MAX);
                if (rc == 0) {
                    CHECK(e.kind < INTEREST_KINDS);
                    check_inside(h, &e.name);
                }
            }
            break;
        }
        case 'P': {
            rc = frame_get_presence_head(&r, &u8, &u32);
            if (rc == 0)
                CHECK((u8 & ~PRESENCE_FLAGS) == 0);
            for (uint32_t i = 0; i < u32 && rc == 0; i++) {
                frame_presence_t e;
                rc = frame_get_presence(&r, &e, UINT32_MAX);
                if (rc == 0) {
                    CHECK(e.op >= PRESENCE_JOIN && e.op <= PRESENCE_EXPIRE);
                    check_inside(h, &e.channel);
                    check_inside(h, &e.member);
                    if (e.op == PRESENCE_JOIN)
                        check_inside(h, &e.meta);
                }
            }
            break;
        }
        case 'M': { /* one or more messages; frame_count_messages agrees */
            long want = frame_count_messages(h, UINT32_MAX), got = 0;
            do {
                frame_message_t m;
                rc = frame_get_message(&r, &m, UINT32_MAX);
                if (rc == 0) {
                    CHECK((m.flags & ~MESSAGE_SHARD) == 0);
                    check_inside(h, &m.channel);
                    check_inside(h, &m.payload);
                    got++;
                }
            } while (rc == 0 && r.left);
            CHECK(want == (rc == 0 ? got : FRAME_EMALFORMED));
            break;
        }
        default:
            CHECK(0);
        }
    }
    if (rc != 0) {
        CHECK(rc == FRAME_EMALFORMED);
        CHECK(frame_reader_done(&r) == FRAME_EMALFORMED);
        CHECK(frame_get_u8(&r, &u8) == FRAME_EMALFORMED && u8 == 0); /* stays failed */
    } else {
        CHECK(frame_reader_done(&r) == (r.left ? FRAME_EMALFORMED : 0));
    }
    /* whatever happened, the cursor is inside the payload */
    CHECK(r.left <= h->len);
}

/* Checks what a successful decode reported against the bytes. */
static void check_frame(const uint8_t *d, size_t len, long n, const frame_hdr_t *h)
{
    CHECK((size_t)n <= len);
    CHECK((size_t)n == FRAME_HEADER_SIZE + (size_t)h->len + FRAME_MAC_SIZE);
    CHECK(h->len <= FUZZ_MAX_PAYLOAD);
    CHECK(h->payload == d + FRAME_HEADER_SIZE);
    CHECK(memcmp(d, FRAME_MAGIC, 4) == 0 && d[4] == FRAME_VERSION && d[5] == h->type);
}

static uint8_t *copy_exact(const uint8_t *data, size_t len, size_t room)
{
    uint8_t *p = malloc(room ? room : 1);
    CHECK(p);
    if (len)
        memcpy(p, data, len);
    return p;
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* 1: the stream as it is. Returns the first frame's result. */
static long decode_stream(const uint8_t *data, size_t size)
{
    uint8_t *copy = copy_exact(data, size, size);
    uint64_t expect = 1;
    size_t off = 0;
    long first = 0;
    for (int i = 0;; i++) {
        frame_hdr_t h;
        uint64_t before = expect;
        /* handshake frames carry no number; the others are counted */
        int numbered = size - off > 5 && copy[off + 5] > FRAME_PROOF;
        long n = frame_decode(copy + off, size - off, FUZZ_MAX_PAYLOAD, K(fuzz_key()),
                              numbered ? &expect : NULL, &h);
        if (i == 0)
            first = n;
        if (n <= 0) {
            CHECK(n >= FRAME_EMALFORMED && expect == before);
            CHECK(n != FRAME_EMALFORMED); /* a decoder error never says that */
            break;
        }
        check_frame(copy + off, size - off, n, &h);
        CHECK(expect == before + (numbered ? 1 : 0));
        walk_payload(&h);
        off += (size_t)n;
    }
    free(copy);
    return first;
}

/* 2: every prefix of the first frame (or of the first 64 bytes). */
static void decode_prefixes(const uint8_t *data, size_t size, long whole)
{
    size_t upto = whole > 0 ? (size_t)whole : size < 64 ? size : 64;
    for (size_t k = 0; k < upto && k < size; k++) {
        uint8_t *copy = copy_exact(data, k, k);
        frame_hdr_t h;
        long n = frame_decode(copy, k, FUZZ_MAX_PAYLOAD, K(fuzz_key()), NULL, &h);
        CHECK(n <= 0);
        /* an early refusal holds once more bytes come */
        if (n < 0)
            CHECK(whole == n);
        free(copy);
    }
}

/* 3: the input made into a frame with a valid MAC. */
static void decode_signed(const uint8_t *data, size_t size)
{
    if (size < FRAME_HEADER_SIZE)
        return;
    uint32_t n =
        (uint32_t)data[8] << 24 | (uint32_t)data[9] << 16 | (uint32_t)data[10] << 8 | data[11];
    size_t body;
    if ((uint64_t)FRAME_HEADER_SIZE + n + FRAME_MAC_SIZE <= size) {
        body = FRAME_HEADER_SIZE + (size_t)n;
    } else {
        body = size; /* the length becomes what the input holds */
        n = (uint32_t)(size - FRAME_HEADER_SIZE);
    }
    size_t total = body + FRAME_MAC_SIZE;
    uint8_t *f = copy_exact(data, body, total);
    f[8] = (uint8_t)(n >> 24), f[9] = (uint8_t)(n >> 16);
    f[10] = (uint8_t)(n >> 8), f[11] = (uint8_t)n;
    unsigned int maclen = 0;
    CHECK(HMAC(EVP_sha256(), fuzz_key(), FRAME_KEY_SIZE, f, body, f + body, &maclen));
    CHECK(maclen == FRAME_MAC_SIZE);

    uint64_t seq = be64(f + 12), expect = seq;
    int handshake = f[5] >= FRAME_HELLO && f[5] <= FRAME_PROOF;
    frame_hdr_t h;
    long r = frame_decode(f, total, FUZZ_MAX_PAYLOAD, K(fuzz_key()), handshake ? NULL : &expect, &h);
    CHECK(r != FRAME_EMAC && r != 0 && r != FRAME_EMALFORMED);
    if (r == FRAME_ESEQ)
        CHECK(handshake && seq != 0);
    if (r > 0) {
        CHECK((size_t)r == total);
        check_frame(f, total, r, &h);
        CHECK(h.seq == seq && (handshake || expect == seq + 1));
        walk_payload(&h);
        /* one bit of the MAC wrong, and it is refused */
        f[total - 1] ^= 0x01;
        CHECK(frame_decode(f, total, FUZZ_MAX_PAYLOAD, K(fuzz_key()), NULL, &h) == FRAME_EMAC);
    }
    free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long first = decode_stream(data, size);
    decode_prefixes(data, size, first);
    decode_signed(data, size);
    return 0;
}
