/* Unit tests for frame: the peer-link wire format and the handshake proofs.
 *
 * Run as `test_frame --write-corpus DIR` it writes one valid frame of every
 * type to DIR instead (the seeds of fuzz/fuzz_frame.c, MACed with the key the
 * fuzz target uses) and exits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "guard_page.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "buf.h"
#include "frame.h"

/* The key of fuzz/fuzz_frame.c; keep the two equal. */
#define FUZZ_FRAME_KEY "cohort fuzz key, 32 bytes long!!"

static const uint8_t key_a[FRAME_KEY_SIZE] = "0123456789abcdef0123456789abcdef";
static const uint8_t key_b[FRAME_KEY_SIZE] = "0123456789abcdef0123456789abcdeF";

/* The frame key (bytes and keyed context) for raw key bytes, made once per
 * distinct key and kept for the whole run; NULL stays NULL. */
static const frame_key_t *K(const uint8_t *raw)
{
    static struct {
        uint8_t raw[FRAME_KEY_SIZE];
        frame_key_t key;
    } made[64];
    static size_t nmade;
    if (!raw)
        return NULL;
    for (size_t i = 0; i < nmade; i++)
        if (memcmp(made[i].raw, raw, FRAME_KEY_SIZE) == 0)
            return &made[i].key;
    assert_true(nmade < 64);
    memcpy(made[nmade].raw, raw, FRAME_KEY_SIZE);
    frame_key_init(&made[nmade].key, raw);
    return &made[nmade++].key;
}

#define NTYPES FRAME_TYPE_MAX

/* ------------------------------------------------------------ samples */

/* Every field any frame type carries, filled with recognisable values. */
struct flush_entry {
    uint8_t kind;
    const char *key;
    size_t klen;
    uint64_t expire_at;
    const char *value;
    size_t vlen;
};

static const struct flush_entry sample_entries[] = {
    {FLUSH_KEY, "user:1", 6, 0, NULL, 0},
    {FLUSH_PREFIX, "sn:/a/", 6, 0, NULL, 0},
    {FLUSH_SEED, "k\0\r\n", 4, 1700000000123ull, "v\0x\xff", 4},
    {FLUSH_ALL, "", 0, 0, NULL, 0},
    {FLUSH_SEED, "empty", 5, 0, "", 0},
};
#define NENTRIES (sizeof(sample_entries) / sizeof(sample_entries[0]))

static uint8_t sample_nonce[FRAME_NONCE_SIZE];
static uint8_t sample_proof[FRAME_MAC_SIZE];

static void samples_init(void)
{
    for (int i = 0; i < FRAME_NONCE_SIZE; i++)
        sample_nonce[i] = (uint8_t)(0xA0 + i);
    for (int i = 0; i < FRAME_MAC_SIZE; i++)
        sample_proof[i] = (uint8_t)(0x30 ^ (i * 7));
}

/* What a payload decodes to; compared field by field with the samples. */
struct decoded {
    uint8_t proto, reachable;
    uint16_t port;
    uint32_t count;
    uint64_t a, b, c;
    frame_bytes_t cluster, name, nonce, proof;
    struct {
        uint8_t kind;
        frame_bytes_t key, value;
        uint64_t expire_at;
    } e[8];
    uint8_t flags;
    uint32_t ninterest;
    frame_interest_t interest[4];
    uint32_t nmsg;
    frame_message_t msg[2];
    uint32_t npresence;
    frame_presence_t presence[4];
};

struct interest_sample {
    uint8_t kind;
    uint32_t subscribers;
    const char *name;
    size_t len;
};
static const struct interest_sample sample_interest[] = {
    {INTEREST_CHANNEL, 3, "news", 4},
    {INTEREST_PATTERN, 1, "news.*", 6},
    {INTEREST_SHARD, 0, "s\0x", 3},
    {INTEREST_CHANNEL, 0xffffffffu, "", 0},
};
#define NINTEREST (sizeof(sample_interest) / sizeof(sample_interest[0]))

static int is_handshake(int type)
{
    return type == FRAME_HELLO || type == FRAME_WELCOME || type == FRAME_PROOF;
}

/* Appends one frame of the type with the sample values; returns its size. */
static size_t encode_sample(buf_t *b, int type, const uint8_t *key, uint64_t *seq)
{
    size_t before = buf_len(b);
    size_t at = frame_begin(b, (uint8_t)type, is_handshake(type) ? NULL : seq);
    switch (type) {
    case FRAME_HELLO:
        frame_put_u8(b, 1);
        frame_put_bytes(b, "prod", 4);
        frame_put_bytes(b, "www1", 4);
        frame_put_u64(b, 0x0102030405060708ull);
        frame_put_u16(b, 7381);
        frame_put_bytes(b, sample_nonce, FRAME_NONCE_SIZE);
        break;
    case FRAME_WELCOME:
        frame_put_u8(b, 1);
        frame_put_bytes(b, "prod", 4);
        frame_put_bytes(b, "www2", 4);
        frame_put_u64(b, 0xfffffffffffffffeull);
        frame_put_bytes(b, sample_nonce, FRAME_NONCE_SIZE);
        frame_put_bytes(b, sample_proof, FRAME_MAC_SIZE);
        break;
    case FRAME_PROOF:
        frame_put_bytes(b, sample_proof, FRAME_MAC_SIZE);
        break;
    case FRAME_PING:
    case FRAME_PONG:
    case FRAME_ACK:
    case FRAME_SYNC:
    case FRAME_RESET:
    case FRAME_NACK:
    case FRAME_ABORT:
    case FRAME_COMMIT:
        frame_put_u64(b, 1000u + (uint64_t)type);
        frame_put_u64(b, 0x8000000000000000ull | (uint64_t)type);
        break;
    case FRAME_FLUSH:
        frame_put_u64(b, 42);
        frame_put_u64(b, 9000);
        frame_put_u32(b, (uint32_t)NENTRIES);
        for (size_t i = 0; i < NENTRIES; i++) {
            const struct flush_entry *e = &sample_entries[i];
            frame_put_u8(b, e->kind);
            frame_put_bytes(b, e->key, e->klen);
            if (e->kind == FLUSH_SEED) {
                frame_put_u64(b, e->expire_at);
                frame_put_bytes(b, e->value, e->vlen);
            }
        }
        break;
    case FRAME_PROBE:
    case FRAME_PROBED:
        frame_put_u64(b, 77);
        frame_put_bytes(b, "www3", 4);
        if (type == FRAME_PROBED)
            frame_put_u8(b, 1);
        break;
    case FRAME_BYE:
        break;
    case FRAME_SNAPREQ:
        frame_put_u64(b, 1000u + (uint64_t)type);
        break;
    case FRAME_SNAPSHOT: /* one entry: version, key, time left, value, form */
        frame_put_u64(b, 1000u + (uint64_t)type);
        frame_put_u8(b, SNAP_DONE);
        frame_put_u32(b, 1);
        frame_put_u64(b, 0x8000000000000000ull | (uint64_t)type);
        frame_put_bytes(b, "sess:1", 6);
        frame_put_u64(b, 3000);
        frame_put_bytes(b, "v\0", 2);
        frame_put_u8(b, 0x10);
        break;
    case FRAME_PRESENCE: /* a join with metadata, a leave, an expiry */
        frame_put_presence_head(b, PRESENCE_FULL_BEGIN | PRESENCE_FULL_END, 3);
        frame_put_presence(b, PRESENCE_JOIN, "room", 4, "alice", 5, "{\"a\":1}", 7);
        frame_put_presence(b, PRESENCE_LEAVE, "room", 4, "bob", 3, NULL, 0);
        frame_put_presence(b, PRESENCE_EXPIRE, "r\0", 2, "c", 1, NULL, 0);
        break;
    case FRAME_INTEREST:
        frame_put_interest_head(b, INTEREST_FULL, (uint32_t)NINTEREST);
        for (size_t i = 0; i < NINTEREST; i++)
            frame_put_interest(b, sample_interest[i].kind, sample_interest[i].subscribers,
                               sample_interest[i].name, sample_interest[i].len);
        break;
    case FRAME_MESSAGE: /* two messages in one frame */
        frame_put_message(b, MESSAGE_SHARD, "chan", 4, "hello\0world", 11);
        frame_put_message(b, 0, "room", 4, "", 0);
        break;
    case FRAME_STOREID:
        frame_put_bytes(b, "sqlite:0123456789abcdef0123456789abcdef", 39);
        break;
    case FRAME_VOIDED:
        frame_put_bytes(b, "www9", 4);
        frame_put_u64(b, 0x0102030405060708ull);
        frame_put_u32(b, 2);
        frame_put_u64(b, 77);
        frame_put_u64(b, 0x8000000000000001ull);
        break;
    default:
        fail_msg("no sample for type %d", type);
    }
    frame_end(b, at, K(key));
    return buf_len(b) - before;
}

/* Reads the payload of h as its type says, with the payload readers only.
 * Returns 0, or FRAME_EMALFORMED when the payload does not parse (short,
 * too long, a field over its bound). */
static int parse_payload(const frame_hdr_t *h, struct decoded *d)
{
    frame_reader_t r;
    memset(d, 0, sizeof(*d));
    frame_reader_init(&r, h);
    int rc = 0;
    switch (h->type) {
    case FRAME_HELLO:
    case FRAME_WELCOME:
        rc |= frame_get_u8(&r, &d->proto);
        rc |= frame_get_bytes(&r, &d->cluster, 255);
        rc |= frame_get_bytes(&r, &d->name, 255);
        rc |= frame_get_u64(&r, &d->a);
        if (h->type == FRAME_HELLO)
            rc |= frame_get_u16(&r, &d->port);
        rc |= frame_get_bytes(&r, &d->nonce, FRAME_NONCE_SIZE);
        if (h->type == FRAME_WELCOME)
            rc |= frame_get_bytes(&r, &d->proof, FRAME_MAC_SIZE);
        break;
    case FRAME_PROOF:
        rc |= frame_get_bytes(&r, &d->proof, FRAME_MAC_SIZE);
        break;
    case FRAME_PING:
    case FRAME_PONG:
    case FRAME_ACK:
    case FRAME_SYNC:
    case FRAME_RESET:
    case FRAME_NACK:
    case FRAME_ABORT:
    case FRAME_COMMIT:
        rc |= frame_get_u64(&r, &d->a);
        rc |= frame_get_u64(&r, &d->b);
        break;
    case FRAME_FLUSH:
        rc |= frame_get_u64(&r, &d->a);
        rc |= frame_get_u64(&r, &d->b);
        rc |= frame_get_u32(&r, &d->count);
        for (uint32_t i = 0; rc == 0 && i < d->count; i++) {
            if (i >= 8)
                return FRAME_EMALFORMED;
            rc |= frame_get_u8(&r, &d->e[i].kind);
            rc |= frame_get_bytes(&r, &d->e[i].key, 1 << 20);
            if (d->e[i].kind == FLUSH_SEED) {
                rc |= frame_get_u64(&r, &d->e[i].expire_at);
                rc |= frame_get_bytes(&r, &d->e[i].value, 1 << 20);
            }
        }
        break;
    case FRAME_PROBE:
    case FRAME_PROBED:
        rc |= frame_get_u64(&r, &d->a);
        rc |= frame_get_bytes(&r, &d->name, 255);
        if (h->type == FRAME_PROBED)
            rc |= frame_get_u8(&r, &d->reachable);
        break;
    case FRAME_BYE:
        break;
    case FRAME_SNAPREQ:
        rc |= frame_get_u64(&r, &d->a);
        break;
    case FRAME_SNAPSHOT:
        rc |= frame_get_u64(&r, &d->a);
        rc |= frame_get_u8(&r, &d->reachable); /* the flags */
        rc |= frame_get_u32(&r, &d->count);
        for (uint32_t i = 0; rc == 0 && i < d->count; i++) {
            if (i >= 8)
                return FRAME_EMALFORMED;
            rc |= frame_get_u64(&r, &d->b);
            rc |= frame_get_bytes(&r, &d->e[i].key, 1 << 20);
            rc |= frame_get_u64(&r, &d->e[i].expire_at);
            rc |= frame_get_bytes(&r, &d->e[i].value, 1 << 20);
            rc |= frame_get_u8(&r, &d->e[i].kind); /* the form */
        }
        break;
    case FRAME_PRESENCE:
        rc |= frame_get_presence_head(&r, &d->flags, &d->npresence);
        for (uint32_t i = 0; rc == 0 && i < d->npresence; i++) {
            if (i >= 4)
                return FRAME_EMALFORMED;
            rc |= frame_get_presence(&r, &d->presence[i], 1 << 20);
        }
        break;
    case FRAME_INTEREST: {
        rc |= frame_get_interest_head(&r, &d->flags, &d->ninterest);
        for (uint32_t i = 0; rc == 0 && i < d->ninterest; i++) {
            if (i >= 4)
                return FRAME_EMALFORMED;
            rc |= frame_get_interest(&r, &d->interest[i], 1 << 20);
        }
        break;
    }
    case FRAME_MESSAGE:
        if (frame_count_messages(h, 1 << 20) != 2)
            return FRAME_EMALFORMED;
        for (d->nmsg = 0; rc == 0 && r.left; d->nmsg++) {
            if (d->nmsg >= 2)
                return FRAME_EMALFORMED;
            rc |= frame_get_message(&r, &d->msg[d->nmsg], 1 << 20);
        }
        break;
    case FRAME_STOREID:
        rc |= frame_get_bytes(&r, &d->name, 255);
        break;
    case FRAME_VOIDED:
        rc |= frame_get_bytes(&r, &d->name, 255);
        rc |= frame_get_u64(&r, &d->a);
        rc |= frame_get_u32(&r, &d->count);
        rc |= frame_get_u64(&r, &d->b);
        rc |= frame_get_u64(&r, &d->c);
        break;
    default:
        return FRAME_EMALFORMED;
    }
    if (rc != 0) {
        assert_int_equal(rc, FRAME_EMALFORMED); /* the only error a reader gives */
        assert_int_equal(frame_reader_done(&r), FRAME_EMALFORMED);
        return FRAME_EMALFORMED;
    }
    return frame_reader_done(&r);
}

static void assert_bytes(frame_bytes_t v, const void *p, size_t n)
{
    assert_int_equal(v.len, n);
    if (n)
        assert_memory_equal(v.p, p, n);
}

/* Asserts that d holds the sample values of the type. */
static void check_sample(int type, const struct decoded *d)
{
    switch (type) {
    case FRAME_HELLO:
    case FRAME_WELCOME:
        assert_int_equal(d->proto, 1);
        assert_bytes(d->cluster, "prod", 4);
        assert_bytes(d->name, type == FRAME_HELLO ? "www1" : "www2", 4);
        assert_true(d->a == (type == FRAME_HELLO ? 0x0102030405060708ull : 0xfffffffffffffffeull));
        if (type == FRAME_HELLO)
            assert_int_equal(d->port, 7381);
        assert_bytes(d->nonce, sample_nonce, FRAME_NONCE_SIZE);
        if (type == FRAME_WELCOME)
            assert_bytes(d->proof, sample_proof, FRAME_MAC_SIZE);
        break;
    case FRAME_PROOF:
        assert_bytes(d->proof, sample_proof, FRAME_MAC_SIZE);
        break;
    case FRAME_PING:
    case FRAME_PONG:
    case FRAME_ACK:
    case FRAME_SYNC:
    case FRAME_RESET:
    case FRAME_NACK:
    case FRAME_ABORT:
    case FRAME_COMMIT:
        assert_true(d->a == 1000u + (uint64_t)type);
        assert_true(d->b == (0x8000000000000000ull | (uint64_t)type));
        break;
    case FRAME_FLUSH:
        assert_true(d->a == 42 && d->b == 9000);
        assert_int_equal(d->count, NENTRIES);
        for (size_t i = 0; i < NENTRIES; i++) {
            const struct flush_entry *e = &sample_entries[i];
            assert_int_equal(d->e[i].kind, e->kind);
            assert_bytes(d->e[i].key, e->key, e->klen);
            assert_true(d->e[i].expire_at == e->expire_at);
            assert_bytes(d->e[i].value, e->value, e->vlen);
        }
        break;
    case FRAME_PROBE:
    case FRAME_PROBED:
        assert_true(d->a == 77);
        assert_bytes(d->name, "www3", 4);
        assert_int_equal(d->reachable, type == FRAME_PROBED);
        break;
    case FRAME_BYE:
        break;
    case FRAME_SNAPREQ:
        assert_true(d->a == 1000u + (uint64_t)type);
        break;
    case FRAME_SNAPSHOT:
        assert_true(d->a == 1000u + (uint64_t)type);
        assert_int_equal(d->reachable, SNAP_DONE);
        assert_int_equal(d->count, 1);
        assert_true(d->b == (0x8000000000000000ull | (uint64_t)type));
        assert_bytes(d->e[0].key, "sess:1", 6);
        assert_true(d->e[0].expire_at == 3000);
        assert_bytes(d->e[0].value, "v\0", 2);
        assert_int_equal(d->e[0].kind, 0x10);
        break;
    case FRAME_PRESENCE:
        assert_int_equal(d->flags, PRESENCE_FULL_BEGIN | PRESENCE_FULL_END);
        assert_int_equal(d->npresence, 3);
        assert_int_equal(d->presence[0].op, PRESENCE_JOIN);
        assert_bytes(d->presence[0].channel, "room", 4);
        assert_bytes(d->presence[0].member, "alice", 5);
        assert_bytes(d->presence[0].meta, "{\"a\":1}", 7);
        assert_int_equal(d->presence[1].op, PRESENCE_LEAVE);
        assert_bytes(d->presence[1].member, "bob", 3);
        assert_int_equal(d->presence[1].meta.len, 0);
        assert_int_equal(d->presence[2].op, PRESENCE_EXPIRE);
        assert_bytes(d->presence[2].channel, "r\0", 2);
        break;
    case FRAME_INTEREST:
        assert_int_equal(d->flags, INTEREST_FULL);
        assert_int_equal(d->ninterest, NINTEREST);
        for (size_t i = 0; i < NINTEREST; i++) {
            assert_int_equal(d->interest[i].kind, sample_interest[i].kind);
            assert_true(d->interest[i].subscribers == sample_interest[i].subscribers);
            assert_bytes(d->interest[i].name, sample_interest[i].name, sample_interest[i].len);
        }
        break;
    case FRAME_MESSAGE:
        assert_int_equal(d->nmsg, 2);
        assert_int_equal(d->msg[0].flags, MESSAGE_SHARD);
        assert_bytes(d->msg[0].channel, "chan", 4);
        assert_bytes(d->msg[0].payload, "hello\0world", 11);
        assert_int_equal(d->msg[1].flags, 0);
        assert_bytes(d->msg[1].channel, "room", 4);
        assert_int_equal(d->msg[1].payload.len, 0);
        break;
    case FRAME_STOREID:
        assert_bytes(d->name, "sqlite:0123456789abcdef0123456789abcdef", 39);
        break;
    case FRAME_VOIDED:
        assert_bytes(d->name, "www9", 4);
        assert_true(d->a == 0x0102030405060708ull && d->count == 2);
        assert_true(d->b == 77 && d->c == 0x8000000000000001ull);
        break;
    default:
        fail_msg("no sample for type %d", type);
    }
}

/* One sample frame in its own exact-size allocation, so that ASan sees any
 * read past its end. */
struct frame_copy {
    uint8_t *p;
    size_t len;
};

static struct frame_copy sample_frame(int type, const uint8_t *key, uint64_t seq_before)
{
    buf_t b;
    buf_init(&b);
    uint64_t seq = seq_before;
    struct frame_copy c;
    c.len = encode_sample(&b, type, key, &seq);
    assert_int_equal(c.len, buf_len(&b));
    c.p = malloc(c.len);
    assert_non_null(c.p);
    memcpy(c.p, buf_head(&b), c.len);
    buf_free(&b);
    return c;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* ------------------------------------------------------------ round trip */

/* Every type in one stream, decoded frame by frame with sequence checking. */
static void test_round_trip_every_type(void **state)
{
    buf_t b;
    buf_init(&b);
    uint64_t send_seq = 0;
    size_t sizes[NTYPES + 1];
    for (int t = FRAME_HELLO; t <= FRAME_TYPE_MAX; t++)
        sizes[t] = encode_sample(&b, t, key_a, &send_seq);
    assert_true(send_seq == NTYPES - 3); /* the handshake frames carry no number */

    const uint8_t *p = (const uint8_t *)buf_head(&b);
    size_t left = buf_len(&b);
    uint64_t expect = 1;
    for (int t = FRAME_HELLO; t <= FRAME_TYPE_MAX; t++) {
        frame_hdr_t h;
        long n =
            frame_decode(p, left, FRAME_MAX_DEFAULT, K(key_a), is_handshake(t) ? NULL : &expect, &h);
        assert_int_equal(n, (long)sizes[t]);
        assert_int_equal(h.type, t);
        assert_int_equal(h.len, sizes[t] - FRAME_HEADER_SIZE - FRAME_MAC_SIZE);
        assert_ptr_equal(h.payload, p + FRAME_HEADER_SIZE);
        assert_true(h.seq == (is_handshake(t) ? 0 : (uint64_t)t - 3));
        struct decoded d;
        assert_int_equal(parse_payload(&h, &d), 0);
        check_sample(t, &d);
        p += n;
        left -= (size_t)n;
    }
    assert_int_equal(left, 0);
    assert_true(expect == send_seq + 1);
    buf_free(&b);
}

/* The exact bytes of a frame, field by field, against the table in frame.h,
 * and its MAC against OpenSSL's one-shot HMAC over bytes [0, 20+N). */
static void test_header_layout_byte_exact(void **state)
{
    buf_t b;
    buf_init(&b);
    uint64_t seq = 0x0102030405060707ull;
    size_t at = frame_begin(&b, FRAME_PING, &seq);
    assert_int_equal(at, 0);
    assert_int_equal(buf_len(&b), FRAME_HEADER_SIZE);
    frame_put_u64(&b, 0x1112131415161718ull);
    frame_put_u32(&b, 0x21222324);
    frame_put_u16(&b, 0x3132);
    frame_put_u8(&b, 0x41);
    frame_put_bytes(&b, "xyz", 3);
    frame_end(&b, at, K(key_a));
    assert_true(seq == 0x0102030405060708ull);

    const uint8_t *f = (const uint8_t *)buf_head(&b);
    const size_t n = 8 + 4 + 2 + 1 + 4 + 3;
    assert_int_equal(buf_len(&b), 20 + n + 32);
    assert_memory_equal(f + 0, "CHRT", 4); /* magic */
    assert_int_equal(f[4], FRAME_VERSION); /* version */
    assert_int_equal(f[5], FRAME_PING);    /* type */
    assert_int_equal(f[6], 0);             /* reserved */
    assert_int_equal(f[7], 0);
    assert_memory_equal(f + 8, "\x00\x00\x00\x16", 4);                  /* length 22 */
    assert_memory_equal(f + 12, "\x01\x02\x03\x04\x05\x06\x07\x08", 8); /* seq */
    assert_true(be64(f + 12) == seq);
    static const uint8_t payload[] = {0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
                                      0x21, 0x22, 0x23, 0x24, 0x31, 0x32, 0x41, 0,
                                      0,    0,    3,    'x',  'y',  'z'};
    assert_int_equal(sizeof(payload), n);
    assert_memory_equal(f + 20, payload, n);

    uint8_t mac[32];
    unsigned int maclen = 0;
    assert_non_null(HMAC(EVP_sha256(), key_a, 32, f, 20 + n, mac, &maclen));
    assert_int_equal(maclen, 32);
    assert_memory_equal(f + 20 + n, mac, 32);

    /* handshake frames carry sequence number 0 */
    buf_clear(&b);
    at = frame_begin(&b, FRAME_BYE, NULL);
    frame_end(&b, at, K(key_a));
    assert_int_equal(buf_len(&b), 52);
    assert_memory_equal(buf_head(&b) + 8, "\0\0\0\0\0\0\0\0\0\0\0\0", 12); /* len, seq */
    buf_free(&b);
}

/* frame_begin's offset stays right when the buffer holds consumed bytes and
 * is compacted and grown while the payload is appended. */
static void test_encode_into_moving_buffer(void **state)
{
    buf_t b;
    buf_init(&b);
    char junk[100];
    memset(junk, 'j', sizeof(junk));
    buf_append(&b, junk, sizeof(junk));
    buf_consume(&b, 90); /* 10 pending, 90 consumed at the front */
    uint64_t seq = 0;
    size_t at = frame_begin(&b, FRAME_FLUSH, &seq);
    assert_int_equal(at, 10);
    frame_put_u64(&b, 1);
    frame_put_u64(&b, 2);
    frame_put_u32(&b, 1);
    frame_put_u8(&b, FLUSH_SEED);
    frame_put_bytes(&b, "big", 3);
    frame_put_u64(&b, 0);
    char *big = malloc(100000);
    assert_non_null(big);
    memset(big, 'v', 100000);
    frame_put_bytes(&b, big, 100000);
    frame_end(&b, at, K(key_a));
    assert_memory_equal(buf_head(&b), junk, 10);

    uint64_t expect = 1;
    frame_hdr_t h;
    long n = frame_decode((const uint8_t *)buf_head(&b) + 10, buf_len(&b) - 10, FRAME_MAX_DEFAULT,
                          K(key_a), &expect, &h);
    assert_int_equal(n, (long)(buf_len(&b) - 10));
    struct decoded d;
    assert_int_equal(parse_payload(&h, &d), 0);
    assert_int_equal(d.count, 1);
    assert_bytes(d.e[0].value, big, 100000);
    free(big);
    buf_free(&b);
}

/* ------------------------------------------------------------ splitting */

/* Every prefix of every frame is "need more" and changes nothing; the whole
 * frame decodes. */
static void test_split_at_every_byte(void **state)
{
    for (int t = FRAME_HELLO; t <= FRAME_TYPE_MAX; t++) {
        struct frame_copy c = sample_frame(t, key_a, 0);
        for (size_t k = 0; k < c.len; k++) {
            uint8_t *part = malloc(k ? k : 1);
            assert_non_null(part);
            memcpy(part, c.p, k);
            uint64_t expect = 1;
            frame_hdr_t h;
            memset(&h, 0xEE, sizeof(h));
            long n = frame_decode(part, k, FRAME_MAX_DEFAULT, K(key_a),
                                  is_handshake(t) ? NULL : &expect, &h);
            assert_int_equal(n, 0);
            assert_true(expect == 1);
            assert_int_equal(h.type, 0xEE);
            free(part);
        }
        uint64_t expect = 1;
        frame_hdr_t h;
        assert_int_equal(frame_decode(c.p, c.len, FRAME_MAX_DEFAULT, K(key_a),
                                      is_handshake(t) ? NULL : &expect, &h),
                         (long)c.len);
        assert_true(expect == (is_handshake(t) ? 1 : 2));
        free(c.p);
    }
}

/* Two frames and part of a third in one buffer: one frame at a time. */
static void test_back_to_back(void **state)
{
    buf_t b;
    buf_init(&b);
    uint64_t seq = 0;
    size_t s1 = encode_sample(&b, FRAME_FLUSH, key_a, &seq);
    size_t s2 = encode_sample(&b, FRAME_PING, key_a, &seq);
    size_t s3 = encode_sample(&b, FRAME_ACK, key_a, &seq);
    const uint8_t *p = (const uint8_t *)buf_head(&b);
    size_t have = s1 + s2 + s3 - 1;
    uint64_t expect = 1;
    frame_hdr_t h;
    assert_int_equal(frame_decode(p, have, FRAME_MAX_DEFAULT, K(key_a), &expect, &h), (long)s1);
    assert_int_equal(h.type, FRAME_FLUSH);
    assert_int_equal(frame_decode(p + s1, have - s1, FRAME_MAX_DEFAULT, K(key_a), &expect, &h),
                     (long)s2);
    assert_int_equal(h.type, FRAME_PING);
    assert_int_equal(
        frame_decode(p + s1 + s2, have - s1 - s2, FRAME_MAX_DEFAULT, K(key_a), &expect, &h), 0);
    assert_int_equal(
        frame_decode(p + s1 + s2, have - s1 - s2 + 1, FRAME_MAX_DEFAULT, K(key_a), &expect, &h),
        (long)s3);
    assert_int_equal(h.type, FRAME_ACK);
    assert_true(expect == 4);
    buf_free(&b);
}

/* ------------------------------------------------------------ errors */

/* Decodes a modified copy of a PING frame (seq 1) with expect_seq 1; asserts
 * that neither *out nor the expected number changed unless it succeeded. */
static long decode_modified(const uint8_t *f, size_t len, size_t have, uint32_t max)
{
    uint8_t *copy = malloc(have ? have : 1);
    assert_non_null(copy);
    memcpy(copy, f, have < len ? have : len);
    uint64_t expect = 1;
    frame_hdr_t h;
    memset(&h, 0xEE, sizeof(h));
    long n = frame_decode(copy, have, max, K(key_a), &expect, &h);
    if (n <= 0) {
        assert_true(expect == 1);
        assert_int_equal(h.type, 0xEE);
    }
    free(copy);
    return n;
}

static void test_bad_magic_version_type_reserved(void **state)
{
    struct frame_copy c = sample_frame(FRAME_PING, key_a, 0);
    uint8_t *f = c.p;
    assert_int_equal(decode_modified(f, c.len, c.len, FRAME_MAX_DEFAULT), (long)c.len);

    /* wrong magic: refused on the first wrong byte, not after 20 */
    for (size_t i = 0; i < 4; i++) {
        uint8_t save = f[i];
        f[i] ^= 0x20;
        assert_int_equal(decode_modified(f, c.len, c.len, FRAME_MAX_DEFAULT), FRAME_EMAGIC);
        assert_int_equal(decode_modified(f, c.len, i + 1, FRAME_MAX_DEFAULT), FRAME_EMAGIC);
        assert_int_equal(decode_modified(f, c.len, i, FRAME_MAX_DEFAULT), 0);
        f[i] = save;
    }
    static const char *const not_frames[] = {"PING\r\n", "GET / HTTP/1.1\r\n", "*1\r\n$4\r\n",
                                             "\x16\x03\x01", "chrt"};
    for (size_t i = 0; i < sizeof(not_frames) / sizeof(not_frames[0]); i++)
        assert_int_equal(decode_modified((const uint8_t *)not_frames[i], strlen(not_frames[i]),
                                         strlen(not_frames[i]), FRAME_MAX_DEFAULT),
                         FRAME_EMAGIC);

    /* version */
    /* 1: before per-direction keys; 2: before SEED carried its encoding and INVAL;
     * 3: before PRESENCE and STOREID; 4: versions counted whole ms; 5: before VOIDED */
    static const uint8_t versions[] = {0, 1, 2, 3, 4, 5, 7, 0x81, 0xff};
    for (size_t i = 0; i < sizeof(versions); i++) {
        f[4] = versions[i];
        assert_int_equal(decode_modified(f, c.len, c.len, FRAME_MAX_DEFAULT), FRAME_EVERSION);
        assert_int_equal(decode_modified(f, c.len, 5, FRAME_MAX_DEFAULT), FRAME_EVERSION);
    }
    f[4] = FRAME_VERSION;

    /* type: 0 and everything past the last */
    for (unsigned t = 0; t < 256; t++) {
        f[5] = (uint8_t)t;
        long n = decode_modified(f, c.len, c.len, FRAME_MAX_DEFAULT);
        if (t < FRAME_HELLO || t > FRAME_TYPE_MAX) {
            assert_int_equal(n, FRAME_ETYPE);
            assert_int_equal(decode_modified(f, c.len, 6, FRAME_MAX_DEFAULT), FRAME_ETYPE);
        } else if (t != FRAME_PING) {
            assert_int_equal(n, FRAME_EMAC); /* a known type, but not the one MACed */
        }
    }
    f[5] = FRAME_PING;

    /* each reserved bit */
    for (size_t i = 6; i < 8; i++)
        for (int bit = 0; bit < 8; bit++) {
            f[i] ^= (uint8_t)(1 << bit);
            assert_int_equal(decode_modified(f, c.len, c.len, FRAME_MAX_DEFAULT), FRAME_ETYPE);
            assert_int_equal(decode_modified(f, c.len, i + 1, FRAME_MAX_DEFAULT), FRAME_ETYPE);
            f[i] ^= (uint8_t)(1 << bit);
        }
    assert_int_equal(decode_modified(f, c.len, c.len, FRAME_MAX_DEFAULT), (long)c.len);
    free(c.p);
}

/* A length over the limit is refused with only the header present (or even
 * only the length's four bytes), before any payload is waited for. */
static void test_length_over_limit(void **state)
{
    buf_t b;
    buf_init(&b);
    size_t at = frame_begin(&b, FRAME_BYE, NULL);
    (void)at;
    uint8_t h[FRAME_HEADER_SIZE];
    memcpy(h, buf_head(&b), sizeof(h));
    buf_free(&b);

    static const uint32_t lens[] = {FRAME_MAX_DEFAULT + 1, 0x7fffffff, 0x80000000, 0xffffffff,
                                    0xffffffe0};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        h[8] = (uint8_t)(lens[i] >> 24);
        h[9] = (uint8_t)(lens[i] >> 16);
        h[10] = (uint8_t)(lens[i] >> 8);
        h[11] = (uint8_t)lens[i];
        assert_int_equal(decode_modified(h, 20, 20, FRAME_MAX_DEFAULT), FRAME_ETOOBIG);
        assert_int_equal(decode_modified(h, 20, 12, FRAME_MAX_DEFAULT), FRAME_ETOOBIG);
        assert_int_equal(decode_modified(h, 20, 11, FRAME_MAX_DEFAULT), 0);
    }
    /* the limit itself is allowed: wait for the rest */
    h[8] = 0, h[9] = 0, h[10] = 1, h[11] = 0; /* 256 */
    assert_int_equal(decode_modified(h, 20, 20, 256), 0);
    assert_int_equal(decode_modified(h, 20, 20, 255), FRAME_ETOOBIG);
    assert_int_equal(decode_modified(h, 20, 20, 0), FRAME_ETOOBIG);

    /* a real frame at exactly the limit decodes; one byte less refuses it */
    struct frame_copy c = sample_frame(FRAME_PING, key_a, 0);
    assert_int_equal(decode_modified(c.p, c.len, c.len, 16), (long)c.len);
    assert_int_equal(decode_modified(c.p, c.len, c.len, 15), FRAME_ETOOBIG);
    free(c.p);
    /* an empty payload passes a zero limit */
    c = sample_frame(FRAME_BYE, key_a, 0);
    assert_int_equal(decode_modified(c.p, c.len, c.len, 0), (long)c.len);
    free(c.p);
}

/* Every single bit flipped, in header, payload and MAC, is refused. */
static void test_every_bit_flip_refused(void **state)
{
    struct frame_copy c = sample_frame(FRAME_FLUSH, key_a, 0);
    uint8_t *f = c.p;
    const uint32_t n = be32(f + 8);
    assert_int_equal(n, c.len - 52);
    for (size_t i = 0; i < c.len; i++)
        for (int bit = 0; bit < 8; bit++) {
            f[i] ^= (uint8_t)(1 << bit);
            long rc = decode_modified(f, c.len, c.len, FRAME_MAX_DEFAULT);
            long want;
            if (i < 4)
                want = FRAME_EMAGIC;
            else if (i == 4)
                want = FRAME_EVERSION;
            else if (i == 5) /* FLUSH is 6: a flip gives another type or none */
                want = (f[5] >= 1 && f[5] <= FRAME_TYPE_MAX) ? FRAME_EMAC : FRAME_ETYPE;
            else if (i < 8)
                want = FRAME_ETYPE;
            else if (i < 12) { /* length: shorter fails the MAC, longer waits */
                uint32_t m = be32(f + 8);
                want = m < n ? FRAME_EMAC : m > FRAME_MAX_DEFAULT ? FRAME_ETOOBIG : 0;
            } else /* seq, payload, MAC */
                want = FRAME_EMAC;
            if (rc != want)
                fail_msg("byte %zu bit %d: got %ld, want %ld", i, bit, rc, want);
            f[i] ^= (uint8_t)(1 << bit);
        }
    assert_int_equal(decode_modified(f, c.len, c.len, FRAME_MAX_DEFAULT), (long)c.len);
    free(c.p);
}

static void test_wrong_or_missing_key(void **state)
{
    for (int t = FRAME_HELLO; t <= FRAME_TYPE_MAX; t++) {
        struct frame_copy c = sample_frame(t, key_a, 0);
        uint64_t expect = 1;
        frame_hdr_t h;
        uint64_t *e = is_handshake(t) ? NULL : &expect;
        assert_int_equal(frame_decode(c.p, c.len, FRAME_MAX_DEFAULT, K(key_b), e, &h), FRAME_EMAC);
        assert_int_equal(frame_decode(c.p, c.len, FRAME_MAX_DEFAULT, K(NULL), e, &h), FRAME_EMAC);
        assert_true(expect == 1);
        assert_int_equal(frame_decode(c.p, c.len, FRAME_MAX_DEFAULT, K(key_a), e, &h), (long)c.len);
        free(c.p);
    }
}

static void test_sequence_replay_and_gap(void **state)
{
    buf_t b;
    buf_init(&b);
    uint64_t seq = 0;
    size_t s1 = encode_sample(&b, FRAME_PING, key_a, &seq);
    size_t s2 = encode_sample(&b, FRAME_FLUSH, key_a, &seq);
    size_t s3 = encode_sample(&b, FRAME_PONG, key_a, &seq);
    const uint8_t *f1 = (const uint8_t *)buf_head(&b), *f2 = f1 + s1, *f3 = f2 + s2;
    uint64_t expect = 1;
    frame_hdr_t h;

    /* replay: the same frame twice */
    assert_int_equal(frame_decode(f1, s1, FRAME_MAX_DEFAULT, K(key_a), &expect, &h), (long)s1);
    assert_true(h.seq == 1 && expect == 2);
    assert_int_equal(frame_decode(f1, s1, FRAME_MAX_DEFAULT, K(key_a), &expect, &h), FRAME_ESEQ);
    assert_true(expect == 2);
    /* gap: 3 where 2 is due */
    assert_int_equal(frame_decode(f3, s3, FRAME_MAX_DEFAULT, K(key_a), &expect, &h), FRAME_ESEQ);
    assert_true(expect == 2);
    /* the right one still goes through, then the next */
    assert_int_equal(frame_decode(f2, s2, FRAME_MAX_DEFAULT, K(key_a), &expect, &h), (long)s2);
    assert_int_equal(frame_decode(f3, s3, FRAME_MAX_DEFAULT, K(key_a), &expect, &h), (long)s3);
    assert_true(h.seq == 3 && expect == 4);
    /* without expect_seq the number is not judged */
    assert_int_equal(frame_decode(f1, s1, FRAME_MAX_DEFAULT, K(key_a), NULL, &h), (long)s1);
    buf_free(&b);

    /* a sequence number on a handshake frame is refused */
    buf_init(&b);
    seq = 0;
    size_t at = frame_begin(&b, FRAME_HELLO, &seq);
    frame_put_u8(&b, 1);
    frame_end(&b, at, K(key_a));
    assert_int_equal(frame_decode((const uint8_t *)buf_head(&b), buf_len(&b), FRAME_MAX_DEFAULT,
                                  K(key_a), NULL, &h),
                     FRAME_ESEQ);
    /* and a handshake frame once numbered frames are expected */
    buf_clear(&b);
    encode_sample(&b, FRAME_PROOF, key_a, NULL);
    expect = 1;
    assert_int_equal(frame_decode((const uint8_t *)buf_head(&b), buf_len(&b), FRAME_MAX_DEFAULT,
                                  K(key_a), &expect, &h),
                     FRAME_ESEQ);
    buf_free(&b);
}

static void test_strerror(void **state)
{
    static const int errs[] = {FRAME_EMAGIC, FRAME_EVERSION, FRAME_ETYPE,     FRAME_ETOOBIG,
                               FRAME_EMAC,   FRAME_ESEQ,     FRAME_EMALFORMED};
    const char *unknown = frame_strerror(-100);
    assert_string_equal(frame_strerror(1), unknown);
    assert_string_equal(frame_strerror(FRAME_EMALFORMED - 1), unknown);
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
        assert_string_not_equal(frame_strerror(errs[i]), unknown);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(frame_strerror(errs[i]), frame_strerror(errs[j]));
    }
}

/* ------------------------------------------------------------ readers */

/* Every truncation of every sample payload fails to parse, and so does every
 * payload with one byte too many; each payload sits in an exact-size
 * allocation, so an over-read is an ASan error. */
static void test_readers_on_truncated_payloads(void **state)
{
    for (int t = FRAME_HELLO; t <= FRAME_TYPE_MAX; t++) {
        struct frame_copy c = sample_frame(t, key_a, 0);
        size_t n = c.len - FRAME_HEADER_SIZE - FRAME_MAC_SIZE;
        for (size_t k = 0; k <= n + 1; k++) {
            uint8_t *p = malloc(k ? k : 1);
            assert_non_null(p);
            memcpy(p, c.p + FRAME_HEADER_SIZE, k <= n ? k : n);
            if (k > n)
                p[n] = 0;
            frame_hdr_t h = {.type = (uint8_t)t, .len = (uint32_t)k, .seq = 0, .payload = p};
            struct decoded d;
            int rc = parse_payload(&h, &d);
            if (k == n) {
                assert_int_equal(rc, 0);
                check_sample(t, &d);
            } else {
                assert_int_equal(rc, FRAME_EMALFORMED);
            }
            free(p);
        }
        free(c.p);
    }
}

static void test_reader_stays_failed(void **state)
{
    static const uint8_t p[] = {1, 2, 3};
    frame_hdr_t h = {.type = FRAME_PING, .len = 3, .payload = p};
    frame_reader_t r;
    uint8_t u8 = 9;
    uint16_t u16 = 9;
    uint32_t u32 = 9;
    uint64_t u64 = 9;

    frame_reader_init(&r, &h);
    assert_int_equal(frame_get_u32(&r, &u32), FRAME_EMALFORMED);
    assert_int_equal(u32, 0);
    /* three bytes are left, but the reader has failed for good */
    assert_int_equal(frame_get_u8(&r, &u8), FRAME_EMALFORMED);
    assert_int_equal(u8, 0);
    assert_int_equal(frame_reader_done(&r), FRAME_EMALFORMED);

    frame_reader_init(&r, &h);
    assert_int_equal(frame_get_u16(&r, &u16), 0);
    assert_int_equal(u16, 0x0102);
    assert_int_equal(frame_reader_done(&r), FRAME_EMALFORMED); /* a byte left over */
    assert_int_equal(frame_get_u8(&r, &u8), 0);
    assert_int_equal(u8, 3);
    assert_int_equal(frame_reader_done(&r), 0);
    assert_int_equal(frame_get_u64(&r, &u64), FRAME_EMALFORMED);
    assert_true(u64 == 0);
    assert_int_equal(frame_reader_done(&r), FRAME_EMALFORMED);

    /* an empty payload */
    frame_hdr_t e = {.type = FRAME_BYE, .len = 0, .payload = NULL};
    frame_reader_init(&r, &e);
    assert_int_equal(frame_reader_done(&r), 0);
    assert_int_equal(frame_get_u8(&r, &u8), FRAME_EMALFORMED);
}

/* frame_get_bytes refuses a length over its bound or over what is left,
 * without reading it; exactly the bound and exactly what is left are fine. */
static void test_get_bytes_lengths(void **state)
{
    struct {
        uint8_t bytes[12];
        uint32_t len; /* payload bytes given to the reader */
        uint32_t max; /* bound passed to frame_get_bytes */
        int rc;
        uint32_t got; /* length read on success */
    } cases[] = {
        {{0xff, 0xff, 0xff, 0xff, 'a', 'b', 'c', 'd'}, 8, UINT32_MAX, FRAME_EMALFORMED, 0},
        {{0x80, 0, 0, 0, 'a'}, 5, UINT32_MAX, FRAME_EMALFORMED, 0},
        {{0, 0, 0, 5, 'a', 'b', 'c', 'd'}, 8, UINT32_MAX, FRAME_EMALFORMED, 0}, /* one short */
        {{0, 0, 0, 4, 'a', 'b', 'c', 'd'}, 8, UINT32_MAX, 0, 4},       /* exactly what is left */
        {{0, 0, 0, 4, 'a', 'b', 'c', 'd'}, 8, 4, 0, 4},                /* exactly the bound */
        {{0, 0, 0, 4, 'a', 'b', 'c', 'd'}, 8, 3, FRAME_EMALFORMED, 0}, /* over the bound */
        {{0, 0, 0, 0}, 4, 0, 0, 0},                                    /* empty */
        {{0, 0, 0}, 3, 10, FRAME_EMALFORMED, 0},                       /* no room for the length */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t *p = malloc(cases[i].len);
        assert_non_null(p);
        memcpy(p, cases[i].bytes, cases[i].len);
        frame_hdr_t h = {.type = FRAME_PROBE, .len = cases[i].len, .payload = p};
        frame_reader_t r;
        frame_bytes_t v = {(const uint8_t *)"x", 99};
        frame_reader_init(&r, &h);
        assert_int_equal(frame_get_bytes(&r, &v, cases[i].max), cases[i].rc);
        assert_int_equal(v.len, cases[i].got);
        if (cases[i].rc == 0) {
            assert_ptr_equal(v.p, p + 4);
            assert_int_equal(frame_reader_done(&r), 0);
        } else {
            assert_null(v.p);
            assert_int_equal(frame_reader_done(&r), FRAME_EMALFORMED);
        }
        free(p);
    }
}

/* ------------------------------------------------------------ guard page */


/* Every prefix of a frame, decoded at the guard: returns what it returns
 * from an ordinary buffer. */
static void guard_decode_prefixes(guard_t *g, const uint8_t *f, size_t len, long want_full)
{
    for (size_t k = 0; k <= len; k++) {
        frame_hdr_t h;
        const uint8_t *d = guard_place(g, f, k);
        long n = frame_decode(d, k, FRAME_MAX_DEFAULT, K(key_a), NULL, &h);
        long m = decode_modified(f, len, k, FRAME_MAX_DEFAULT);
        if (k == len)
            assert_int_equal(n, want_full);
        else if (n < 0)
            assert_int_equal(n, m); /* an early refusal is the same anywhere */
        else
            assert_int_equal(n, 0);
    }
}

static void test_guard_page(void **state)
{
    guard_t g;
    guard_init(&g, 200000);
    for (int t = FRAME_HELLO; t <= FRAME_TYPE_MAX; t++) {
        struct frame_copy c = sample_frame(t, key_a, 0);
        guard_decode_prefixes(&g, c.p, c.len, (long)c.len);

        /* damaged copies: each refused, never read past */
        c.p[0] = 'X';
        guard_decode_prefixes(&g, c.p, c.len, FRAME_EMAGIC);
        c.p[0] = 'C';
        c.p[c.len - 1] ^= 1;
        guard_decode_prefixes(&g, c.p, c.len, FRAME_EMAC);
        c.p[c.len - 1] ^= 1;
        /* a length one more than the bytes there: waits, never reads on */
        uint32_t n = be32(c.p + 8) + 1;
        c.p[8] = (uint8_t)(n >> 24), c.p[9] = (uint8_t)(n >> 16);
        c.p[10] = (uint8_t)(n >> 8), c.p[11] = (uint8_t)n;
        guard_decode_prefixes(&g, c.p, c.len, 0);

        /* the payload readers at the guard, on every truncation */
        size_t plen = c.len - FRAME_HEADER_SIZE - FRAME_MAC_SIZE;
        for (size_t k = 0; k <= plen; k++) {
            frame_hdr_t h = {.type = (uint8_t)t,
                             .len = (uint32_t)k,
                             .payload = guard_place(&g, c.p + FRAME_HEADER_SIZE, k)};
            struct decoded d;
            assert_int_equal(parse_payload(&h, &d), k == plen ? 0 : FRAME_EMALFORMED);
        }
        free(c.p);
    }

    /* a big FLUSH whose payload ends at the guard */
    buf_t b;
    buf_init(&b);
    uint64_t seq = 0;
    size_t at = frame_begin(&b, FRAME_FLUSH, &seq);
    frame_put_u64(&b, 1);
    frame_put_u64(&b, 1);
    frame_put_u32(&b, 2);
    frame_put_u8(&b, FLUSH_SEED);
    frame_put_bytes(&b, "k", 1);
    frame_put_u64(&b, 0);
    static uint8_t v[150000];
    frame_put_bytes(&b, v, sizeof(v));
    frame_put_u8(&b, FLUSH_KEY);
    frame_put_bytes(&b, "k2", 2);
    frame_end(&b, at, K(key_a));
    const uint8_t *d = guard_place(&g, (const uint8_t *)buf_head(&b), buf_len(&b));
    frame_hdr_t h;
    uint64_t expect = 1;
    assert_int_equal(frame_decode(d, buf_len(&b), FRAME_MAX_DEFAULT, K(key_a), &expect, &h),
                     (long)buf_len(&b));
    assert_int_equal(frame_decode(d + 1, buf_len(&b) - 1, FRAME_MAX_DEFAULT, K(key_a), NULL, &h),
                     FRAME_EMAGIC);
    buf_free(&b);
    guard_free(&g);
}

/* ------------------------------------------------------------ handshake */

static void hmac_ref(const void *key, size_t klen, const uint8_t *msg, size_t len, uint8_t out[32])
{
    unsigned int n = 0;
    assert_non_null(HMAC(EVP_sha256(), key, (int)klen, msg, len, out, &n));
    assert_int_equal(n, 32);
}

/* The byte-exact inputs of every derivation, against OpenSSL's HMAC over the
 * bytes the comments in frame.h and frame.c promise. */
static void test_derivations_byte_exact(void **state)
{
    uint8_t ni[32], na[32], got[32], want[32], msg[256];
    memset(ni, 'I', 32);
    memset(na, 'A', 32);
    size_t n;

    frame_cluster_key((const uint8_t *)"secret\n", 7, got);
    hmac_ref("secret\n", 7, (const uint8_t *)"cohort cluster key", 18, want);
    assert_memory_equal(got, want, 32);

    /* HKDF-SHA256 (RFC 5869), computed here from HMAC: PRK = HMAC(salt =
     * nonce_i | nonce_a, IKM = cluster key); key = HMAC(PRK, info | 0x01). */
    uint8_t i2a[32], a2i[32], prk[32], salt[64];
    frame_link_keys(key_a, 32, ni, na, i2a, a2i);
    memcpy(salt, ni, 32);
    memcpy(salt + 32, na, 32);
    hmac_ref(salt, 64, key_a, 32, prk);
    static const char *const infos[2] = {"cohort link initiator to acceptor",
                                         "cohort link acceptor to initiator"};
    for (int d = 0; d < 2; d++) {
        n = strlen(infos[d]);
        memcpy(msg, infos[d], n);
        msg[n++] = 1;
        hmac_ref(prk, 32, msg, n, want);
        assert_memory_equal(d == 0 ? i2a : a2i, want, 32);
    }
    assert_memory_not_equal(i2a, a2i, 32);

    static const struct {
        const char *role, *label;
    } roles[] = {{"acceptor", "cohort acceptor"}, {"initiator", "cohort initiator"}};
    for (size_t r = 0; r < 2; r++) {
        frame_proof(key_a, 32, roles[r].role, ni, na, "www1", "db-2", got);
        n = strlen(roles[r].label);
        memcpy(msg, roles[r].label, n);
        memcpy(msg + n, ni, 32), n += 32;
        memcpy(msg + n, na, 32), n += 32;
        memcpy(msg + n, "\0\0\0\4www1\0\0\0\4db-2", 16), n += 16;
        hmac_ref(key_a, 32, msg, n, want);
        assert_memory_equal(got, want, 32);
    }
}

/* A whole handshake over frames: HELLO, WELCOME, PROOF with the cluster key,
 * then numbered frames with the link key both sides derived. */
static void test_handshake_over_frames(void **state)
{
    static const char secret[] = "the cluster key file\n";
    uint8_t ck_i[32], ck_a[32];
    frame_cluster_key((const uint8_t *)secret, sizeof(secret) - 1, ck_i);
    frame_cluster_key((const uint8_t *)secret, sizeof(secret) - 1, ck_a);
    assert_memory_equal(ck_i, ck_a, 32);

    uint8_t ni[32], na[32];
    assert_int_equal(frame_nonce(ni), 0);
    assert_int_equal(frame_nonce(na), 0);
    assert_memory_not_equal(ni, na, 32);

    buf_t wire;
    buf_init(&wire);
    frame_hdr_t h;
    frame_reader_t r;
    frame_bytes_t name, nonce, proof;
    uint8_t u8, mine[32];
    uint16_t port;
    uint64_t inc;

    /* initiator -> acceptor: HELLO */
    size_t at = frame_begin(&wire, FRAME_HELLO, NULL);
    frame_put_u8(&wire, 1);
    frame_put_bytes(&wire, "prod", 4);
    frame_put_bytes(&wire, "www1", 4);
    frame_put_u64(&wire, 5);
    frame_put_u16(&wire, 7381);
    frame_put_bytes(&wire, ni, 32);
    frame_end(&wire, at, K(ck_i));
    long n = frame_decode((const uint8_t *)buf_head(&wire), buf_len(&wire), 4096, K(ck_a), NULL, &h);
    assert_int_equal(n, (long)buf_len(&wire));
    frame_reader_init(&r, &h);
    frame_bytes_t cluster;
    assert_int_equal(frame_get_u8(&r, &u8) | frame_get_bytes(&r, &cluster, 64) |
                         frame_get_bytes(&r, &name, 64) | frame_get_u64(&r, &inc) |
                         frame_get_u16(&r, &port) | frame_get_bytes(&r, &nonce, 32) |
                         frame_reader_done(&r),
                     0);
    assert_int_equal(nonce.len, 32);
    uint8_t ni_seen[32];
    memcpy(ni_seen, nonce.p, 32);
    buf_consume(&wire, (size_t)n);

    /* acceptor -> initiator: WELCOME with the acceptor's proof */
    uint8_t proof_a[32];
    frame_proof(ck_a, 32, "acceptor", ni_seen, na, "www1", "www2", proof_a);
    at = frame_begin(&wire, FRAME_WELCOME, NULL);
    frame_put_u8(&wire, 1);
    frame_put_bytes(&wire, "prod", 4);
    frame_put_bytes(&wire, "www2", 4);
    frame_put_u64(&wire, 6);
    frame_put_bytes(&wire, na, 32);
    frame_put_bytes(&wire, proof_a, 32);
    frame_end(&wire, at, K(ck_a));
    n = frame_decode((const uint8_t *)buf_head(&wire), buf_len(&wire), 4096, K(ck_i), NULL, &h);
    assert_int_equal(n, (long)buf_len(&wire));
    frame_reader_init(&r, &h);
    assert_int_equal(frame_get_u8(&r, &u8) | frame_get_bytes(&r, &cluster, 64) |
                         frame_get_bytes(&r, &name, 64) | frame_get_u64(&r, &inc) |
                         frame_get_bytes(&r, &nonce, 32) | frame_get_bytes(&r, &proof, 32) |
                         frame_reader_done(&r),
                     0);
    uint8_t na_seen[32];
    memcpy(na_seen, nonce.p, 32);
    frame_proof(ck_i, 32, "acceptor", ni, na_seen, "www1", "www2", mine);
    assert_true(frame_mac_equal(mine, proof.p, 32)); /* the initiator believes the acceptor */
    buf_consume(&wire, (size_t)n);

    /* initiator -> acceptor: PROOF */
    uint8_t proof_i[32];
    frame_proof(ck_i, 32, "initiator", ni, na_seen, "www1", "www2", proof_i);
    at = frame_begin(&wire, FRAME_PROOF, NULL);
    frame_put_bytes(&wire, proof_i, 32);
    frame_end(&wire, at, K(ck_i));
    n = frame_decode((const uint8_t *)buf_head(&wire), buf_len(&wire), 4096, K(ck_a), NULL, &h);
    assert_int_equal(n, (long)buf_len(&wire));
    frame_reader_init(&r, &h);
    assert_int_equal(frame_get_bytes(&r, &proof, 32) | frame_reader_done(&r), 0);
    frame_proof(ck_a, 32, "initiator", ni_seen, na, "www1", "www2", mine);
    assert_true(frame_mac_equal(mine, proof.p, 32)); /* the acceptor believes the initiator */
    /* the acceptor's own proof is not the initiator's */
    assert_false(frame_mac_equal(proof_a, proof.p, 32));
    buf_consume(&wire, (size_t)n);

    /* both derive the same two link keys, and numbered frames flow with
     * them, each only in its own direction */
    uint8_t i2a_i[32], a2i_i[32], i2a_a[32], a2i_a[32];
    frame_link_keys(ck_i, 32, ni, na_seen, i2a_i, a2i_i);
    frame_link_keys(ck_a, 32, ni_seen, na, i2a_a, a2i_a);
    assert_memory_equal(i2a_i, i2a_a, 32);
    assert_memory_equal(a2i_i, a2i_a, 32);
    assert_memory_not_equal(i2a_i, ck_i, 32);
    uint64_t send = 0, expect = 1;
    encode_sample(&wire, FRAME_FLUSH, i2a_i, &send);
    n = frame_decode((const uint8_t *)buf_head(&wire), buf_len(&wire), 4096, K(i2a_a), &expect, &h);
    assert_int_equal(n, (long)buf_len(&wire));
    /* a frame the acceptor receives from the initiator does not pass as one
     * the initiator receives (a reflected frame) */
    expect = 1;
    assert_int_equal(
        frame_decode((const uint8_t *)buf_head(&wire), buf_len(&wire), 4096, K(a2i_i), &expect, &h),
        FRAME_EMAC);
    /* and not with the cluster key */
    expect = 1;
    assert_int_equal(
        frame_decode((const uint8_t *)buf_head(&wire), buf_len(&wire), 4096, K(ck_a), &expect, &h),
        FRAME_EMAC);
    buf_free(&wire);
}

static void test_link_key_depends_on_both_nonces(void **state)
{
    uint8_t ni[32], na[32], ni2[32], k1[32], k2[32], o1[32], o2[32];
    memset(ni, 1, 32);
    memset(na, 2, 32);
    frame_link_keys(key_a, 32, ni, na, k1, o1);
    frame_link_keys(key_a, 32, ni, na, k2, o2);
    assert_memory_equal(k1, k2, 32);
    assert_memory_equal(o1, o2, 32);
    assert_memory_not_equal(k1, o1, 32); /* one key per direction */
    for (int i = 0; i < 32; i++) { /* one bit of either nonce changes both keys */
        memcpy(ni2, ni, 32);
        ni2[i] ^= 0x80;
        frame_link_keys(key_a, 32, ni2, na, k2, o2);
        assert_memory_not_equal(k1, k2, 32);
        assert_memory_not_equal(o1, o2, 32);
        frame_link_keys(key_a, 32, ni, ni2, k2, o2);
        assert_memory_not_equal(k1, k2, 32);
        assert_memory_not_equal(o1, o2, 32);
    }
    frame_link_keys(key_a, 32, na, ni, k2, o2); /* nonce order matters */
    assert_memory_not_equal(k1, k2, 32);
    frame_link_keys(key_b, 32, ni, na, k2, o2); /* and the cluster key */
    assert_memory_not_equal(k1, k2, 32);

    /* fresh nonces give fresh link keys */
    uint8_t r1[32], r2[32];
    assert_int_equal(frame_nonce(r1), 0);
    assert_int_equal(frame_nonce(r2), 0);
    frame_link_keys(key_a, 32, r1, na, k1, o1);
    frame_link_keys(key_a, 32, r2, na, k2, o2);
    assert_memory_not_equal(k1, k2, 32);
}

static void test_proofs_refuse_impostors(void **state)
{
    uint8_t ni[32], na[32], good[32], p[32];
    assert_int_equal(frame_nonce(ni), 0);
    assert_int_equal(frame_nonce(na), 0);
    frame_proof(key_a, 32, "acceptor", ni, na, "www1", "www2", good);

    frame_proof(key_b, 32, "acceptor", ni, na, "www1", "www2", p); /* another cluster key */
    assert_false(frame_mac_equal(good, p, 32));
    frame_proof(key_a, 31, "acceptor", ni, na, "www1", "www2", p); /* a key cut short */
    assert_false(frame_mac_equal(good, p, 32));
    frame_proof(key_a, 32, "initiator", ni, na, "www1", "www2", p); /* roles swapped */
    assert_false(frame_mac_equal(good, p, 32));
    frame_proof(key_a, 32, "acceptor", na, ni, "www1", "www2", p); /* nonces swapped */
    assert_false(frame_mac_equal(good, p, 32));
    frame_proof(key_a, 32, "acceptor", ni, na, "www2", "www1", p); /* names swapped */
    assert_false(frame_mac_equal(good, p, 32));
    frame_proof(key_a, 32, "initiator", na, ni, "www2", "www1", p); /* all swapped: reflection */
    assert_false(frame_mac_equal(good, p, 32));
    frame_proof(key_a, 32, "acceptor", ni, na, "www1", "www2", p);
    assert_true(frame_mac_equal(good, p, 32));

    /* names are length-prefixed: the split between them counts */
    uint8_t q[32];
    frame_proof(key_a, 32, "acceptor", ni, na, "ab", "c", p);
    frame_proof(key_a, 32, "acceptor", ni, na, "a", "bc", q);
    assert_false(frame_mac_equal(p, q, 32));
    frame_proof(key_a, 32, "acceptor", ni, na, "", "abc", q);
    assert_false(frame_mac_equal(p, q, 32));

    /* a different cluster secret gives a different cluster key */
    uint8_t c1[32], c2[32];
    frame_cluster_key((const uint8_t *)"s1", 2, c1);
    frame_cluster_key((const uint8_t *)"s2", 2, c2);
    assert_memory_not_equal(c1, c2, 32);
    frame_cluster_key((const uint8_t *)"", 0, c2); /* an empty secret still derives */
    assert_memory_not_equal(c1, c2, 32);
}

static void test_mac_equal(void **state)
{
    uint8_t a[32], b[32];
    memset(a, 0x5a, 32);
    memcpy(b, a, 32);
    assert_true(frame_mac_equal(a, b, 32));
    for (int i = 0; i < 32; i++) {
        b[i] ^= 1;
        assert_false(frame_mac_equal(a, b, 32));
        b[i] ^= 1;
    }
    assert_true(frame_mac_equal(a, b, 0));
}

/* Frames MACed with many keys in turn (more keys than any cache of keyed
 * contexts could hold, revisited in different orders) each carry the MAC
 * OpenSSL's one-shot HMAC gives for their key, and decode only with it. */
static void test_many_keys_interleaved(void **state)
{
    enum { NKEYS = 20 };
    uint8_t keys[NKEYS][FRAME_KEY_SIZE];
    for (int k = 0; k < NKEYS; k++)
        for (int i = 0; i < FRAME_KEY_SIZE; i++)
            keys[k][i] = (uint8_t)(k * 31 + i);
    static const int strides[] = {1, 3, 7, 19};
    buf_t b;
    buf_init(&b);
    for (size_t s = 0; s < sizeof(strides) / sizeof(strides[0]); s++)
        for (int j = 0; j < 3 * NKEYS; j++) {
            int k = (j * strides[s]) % NKEYS;
            buf_clear(&b);
            size_t len = encode_sample(&b, FRAME_PING, keys[k], NULL);
            const uint8_t *f = (const uint8_t *)buf_head(&b);
            uint8_t want[32];
            hmac_ref(keys[k], FRAME_KEY_SIZE, f, len - FRAME_MAC_SIZE, want);
            assert_memory_equal(f + len - FRAME_MAC_SIZE, want, 32);
            frame_hdr_t h;
            assert_int_equal(frame_decode(f, len, 64, K(keys[k]), NULL, &h), (long)len);
            assert_int_equal(frame_decode(f, len, 64, K(keys[(k + 1) % NKEYS]), NULL, &h), FRAME_EMAC);
        }
    buf_free(&b);
}

/* ------------------------------------------------------------ many frames */

/* The flush path: FLUSH frames of a few keys encoded, decoded and parsed one
 * after another on one buffer, the sequence numbers following. (Its speed is
 * measured by bench/, not asserted here.) */
static void test_flush_frames_in_a_row(void **state)
{
    buf_t b;
    buf_init(&b);
    uint64_t send = 0, expect = 1;
    const int rounds = 2000;
    for (int i = 0; i < rounds; i++) {
        size_t at = frame_begin(&b, FRAME_FLUSH, &send);
        frame_put_u64(&b, 7);
        frame_put_u64(&b, (uint64_t)i * 3);
        frame_put_u32(&b, 3);
        frame_put_u8(&b, FLUSH_KEY);
        frame_put_bytes(&b, "user:1234:profile", 17);
        frame_put_u8(&b, FLUSH_KEY);
        frame_put_bytes(&b, "user:1234:friends", 17);
        frame_put_u8(&b, FLUSH_PREFIX);
        frame_put_bytes(&b, "sitemap:/blog/", 14);
        frame_end(&b, at, K(key_a));
        frame_hdr_t h;
        long n = frame_decode((const uint8_t *)buf_head(&b), buf_len(&b), FRAME_MAX_DEFAULT, K(key_a),
                              &expect, &h);
        assert_true(n > 0);
        struct decoded d;
        assert_int_equal(parse_payload(&h, &d), 0);
        assert_int_equal(d.count, 3);
        buf_consume(&b, (size_t)n);
    }
    assert_int_equal(expect, rounds + 1);
    buf_free(&b);
}

/* ------------------------------------------------------------ INTEREST, MESSAGE */

/* Decodes payload bytes p[0..n) as a frame of type would carry them. */
static frame_reader_t reader_over(uint8_t type, const void *p, size_t n, frame_hdr_t *h)
{
    h->type = type;
    h->len = (uint32_t)n;
    h->seq = 1;
    h->payload = p;
    frame_reader_t r;
    frame_reader_init(&r, h);
    return r;
}

static void test_interest_refuses_bad_entries(void **state)
{
    (void)state;
    frame_hdr_t h;
    frame_interest_t e;
    uint8_t flags;
    uint32_t count;
    /* unknown flag bits */
    frame_reader_t r = reader_over(FRAME_INTEREST, "\x02\0\0\0\0", 5, &h);
    assert_int_equal(frame_get_interest_head(&r, &flags, &count), FRAME_EMALFORMED);
    /* an empty delta is fine */
    r = reader_over(FRAME_INTEREST, "\x00\0\0\0\0", 5, &h);
    assert_int_equal(frame_get_interest_head(&r, &flags, &count), 0);
    assert_int_equal(count, 0);
    assert_int_equal(frame_reader_done(&r), 0);
    /* unknown kind 3 */
    static const uint8_t bad_kind[] = {3, 0, 0, 0, 1, 0, 0, 0, 1, 'x'};
    r = reader_over(FRAME_INTEREST, bad_kind, sizeof(bad_kind), &h);
    assert_int_equal(frame_get_interest(&r, &e, 16), FRAME_EMALFORMED);
    assert_int_equal(frame_get_interest(&r, &e, 16), FRAME_EMALFORMED); /* stays failed */
    /* a truncated entry (name says 2 bytes, 1 present) */
    static const uint8_t short_name[] = {1, 0, 0, 0, 1, 0, 0, 0, 2, 'x'};
    r = reader_over(FRAME_INTEREST, short_name, sizeof(short_name), &h);
    assert_int_equal(frame_get_interest(&r, &e, 16), FRAME_EMALFORMED);
    /* a name over the bound, then within it */
    static const uint8_t name3[] = {2, 0, 0, 0, 7, 0, 0, 0, 3, 'a', 'b', 'c'};
    r = reader_over(FRAME_INTEREST, name3, sizeof(name3), &h);
    assert_int_equal(frame_get_interest(&r, &e, 2), FRAME_EMALFORMED);
    r = reader_over(FRAME_INTEREST, name3, sizeof(name3), &h);
    assert_int_equal(frame_get_interest(&r, &e, 3), 0);
    assert_int_equal(e.kind, INTEREST_SHARD);
    assert_int_equal(e.subscribers, 7);
    assert_bytes(e.name, "abc", 3);
    assert_int_equal(frame_reader_done(&r), 0);
}

static void test_message_refuses_bad_payloads(void **state)
{
    (void)state;
    frame_hdr_t h;
    frame_message_t m;
    buf_t b;
    buf_init(&b);
    frame_put_message(&b, 0, "c", 1, "", 0);
    frame_reader_t r = reader_over(FRAME_MESSAGE, buf_head(&b), buf_len(&b), &h);
    assert_int_equal(frame_get_message(&r, &m, 16), 0);
    assert_int_equal(m.flags, 0);
    assert_bytes(m.channel, "c", 1);
    assert_int_equal(m.payload.len, 0);
    assert_int_equal(r.left, 0);
    assert_int_equal(frame_count_messages(&h, 16), 1);
    /* a byte too many: the first message reads, the rest is not a message */
    buf_append(&b, "!", 1);
    r = reader_over(FRAME_MESSAGE, buf_head(&b), buf_len(&b), &h);
    assert_int_equal(frame_get_message(&r, &m, 16), 0);
    assert_int_equal(frame_get_message(&r, &m, 16), FRAME_EMALFORMED);
    assert_int_equal(frame_count_messages(&h, 16), FRAME_EMALFORMED);
    /* every truncation, the empty payload included */
    for (size_t n = 0; n + 1 < buf_len(&b); n++) {
        r = reader_over(FRAME_MESSAGE, buf_head(&b), n, &h);
        assert_int_equal(frame_get_message(&r, &m, 16), FRAME_EMALFORMED);
        assert_int_equal(frame_count_messages(&h, 16), FRAME_EMALFORMED);
    }
    /* unknown flags */
    buf_clear(&b);
    frame_put_message(&b, 0x80, "c", 1, "m", 1);
    r = reader_over(FRAME_MESSAGE, buf_head(&b), buf_len(&b), &h);
    assert_int_equal(frame_get_message(&r, &m, 16), FRAME_EMALFORMED);
    assert_int_equal(frame_count_messages(&h, 16), FRAME_EMALFORMED);
    /* ... on a later message of the frame */
    buf_clear(&b);
    frame_put_message(&b, 0, "c", 1, "m", 1);
    frame_put_message(&b, 0x02, "c", 1, "m", 1);
    r = reader_over(FRAME_MESSAGE, buf_head(&b), buf_len(&b), &h);
    assert_int_equal(frame_count_messages(&h, 16), FRAME_EMALFORMED);
    /* a payload over the bound */
    buf_clear(&b);
    frame_put_message(&b, MESSAGE_SHARD, "c", 1, "0123456789", 10);
    r = reader_over(FRAME_MESSAGE, buf_head(&b), buf_len(&b), &h);
    assert_int_equal(frame_get_message(&r, &m, 9), FRAME_EMALFORMED);
    buf_free(&b);
}

/* Many messages in one MESSAGE frame come out in the order they went in,
 * each whole, and the frame authenticates as one. */
static void test_message_batch(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    uint64_t send = 0, expect = 1;
    size_t at = frame_begin(&b, FRAME_MESSAGE, &send);
    for (int i = 0; i < 500; i++) {
        char msg[16];
        int n = snprintf(msg, sizeof(msg), "m%d", i);
        frame_put_message(&b, i % 3 == 0 ? MESSAGE_SHARD : 0, i % 2 ? "a" : "room", i % 2 ? 1 : 4,
                          msg, (size_t)n);
    }
    frame_end(&b, at, K(key_a));
    frame_hdr_t h;
    long n = frame_decode((const uint8_t *)buf_head(&b), buf_len(&b), FRAME_MAX_DEFAULT, K(key_a),
                          &expect, &h);
    assert_true(n > 0);
    assert_int_equal((size_t)n, buf_len(&b));
    assert_int_equal(frame_count_messages(&h, 64), 500);
    frame_reader_t r;
    frame_reader_init(&r, &h);
    for (int i = 0; i < 500; i++) {
        frame_message_t m;
        assert_int_equal(frame_get_message(&r, &m, 64), 0);
        char want[16];
        int wl = snprintf(want, sizeof(want), "m%d", i);
        assert_int_equal(m.flags, i % 3 == 0 ? MESSAGE_SHARD : 0);
        if (i % 2)
            assert_bytes(m.channel, "a", 1);
        else
            assert_bytes(m.channel, "room", 4);
        assert_bytes(m.payload, want, (size_t)wl);
    }
    assert_int_equal(r.left, 0);
    assert_int_equal(frame_reader_done(&r), 0);
    /* one flipped byte in any message fails the whole frame's MAC */
    ((uint8_t *)buf_head(&b))[FRAME_HEADER_SIZE + 100] ^= 1;
    uint64_t again = 1;
    assert_int_equal(frame_decode((const uint8_t *)buf_head(&b), buf_len(&b), FRAME_MAX_DEFAULT,
                                  K(key_a), &again, &h),
                     FRAME_EMAC);
    buf_free(&b);
}

/* Messages keep their order through one link's byte stream, and a message
 * replayed under its old sequence number is refused (no duplicates). */
static void test_messages_in_order_no_replay(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    uint64_t send = 0, expect = 1;
    for (int i = 0; i < 1000; i++) {
        char msg[16];
        int n = snprintf(msg, sizeof(msg), "m%d", i);
        size_t at = frame_begin(&b, FRAME_MESSAGE, &send);
        frame_put_message(&b, 0, "room", 4, msg, (size_t)n);
        frame_end(&b, at, K(key_a));
    }
    size_t first_len = 0;
    for (int i = 0; i < 1000; i++) {
        frame_hdr_t h;
        long n = frame_decode((const uint8_t *)buf_head(&b), buf_len(&b), FRAME_MAX_DEFAULT,
                              K(key_a), &expect, &h);
        assert_true(n > 0);
        if (i == 0)
            first_len = (size_t)n;
        frame_reader_t r;
        frame_reader_init(&r, &h);
        frame_message_t m;
        assert_int_equal(frame_get_message(&r, &m, 64), 0);
        char want[16];
        int wl = snprintf(want, sizeof(want), "m%d", i);
        assert_bytes(m.payload, want, (size_t)wl);
        buf_consume(&b, (size_t)n);
    }
    assert_int_equal(buf_len(&b), 0);
    /* the first frame again: its sequence number is in the past */
    uint64_t s0 = 0;
    size_t at = frame_begin(&b, FRAME_MESSAGE, &s0);
    frame_put_message(&b, 0, "room", 4, "m0", 2);
    frame_end(&b, at, K(key_a));
    assert_int_equal(buf_len(&b), first_len);
    frame_hdr_t h;
    assert_int_equal(frame_decode((const uint8_t *)buf_head(&b), buf_len(&b), FRAME_MAX_DEFAULT,
                                  K(key_a), &expect, &h),
                     FRAME_ESEQ);
    buf_free(&b);
}

/* ------------------------------------------------------------ corpus */

/* Writes one frame of every type, MACed with the fuzz target's key, to dir.
 * Returns 0, or 1 on an I/O error. */
static int write_corpus(const char *dir)
{
    const uint8_t *key = (const uint8_t *)FUZZ_FRAME_KEY;
    static const char *const names[NTYPES + 1] = {
        NULL,     "hello",   "welcome",  "proof",    "ping",  "pong",   "flush", "ack",
        "sync",   "reset",   "probe",    "probed",   "bye",   "interest", "message", "snapreq",
        "snapshot", "nack",  "abort",    "commit",   "presence", "storeid"};
    _Static_assert(sizeof(names) / sizeof(names[0]) == NTYPES + 1, "a corpus name per frame type");
    for (int t = FRAME_HELLO; t <= FRAME_TYPE_MAX; t++) {
        buf_t b;
        buf_init(&b);
        uint64_t seq = 0;
        encode_sample(&b, t, key, &seq);
        char path[4096];
        snprintf(path, sizeof(path), "%s/%02d-%s", dir, t, names[t]);
        FILE *f = fopen(path, "wb");
        int ok = f && fwrite(buf_head(&b), 1, buf_len(&b), f) == buf_len(&b);
        if (f && fclose(f) != 0)
            ok = 0;
        buf_free(&b);
        if (!ok) {
            perror(path);
            return 1;
        }
    }
    /* a stream: the three numbered frames a flush exchange starts with */
    buf_t b;
    buf_init(&b);
    uint64_t seq = 0;
    encode_sample(&b, FRAME_SYNC, key, &seq);
    encode_sample(&b, FRAME_FLUSH, key, &seq);
    encode_sample(&b, FRAME_ACK, key, &seq);
    char path[4096];
    snprintf(path, sizeof(path), "%s/20-stream", dir);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(buf_head(&b), 1, buf_len(&b), f) == buf_len(&b);
    if (f && fclose(f) != 0)
        ok = 0;
    buf_free(&b);
    if (!ok) {
        perror(path);
        return 1;
    }
    return 0;
}

/* PRESENCE: unknown flags and ops, short entries are malformed. */
static void test_presence_malformed(void **state)
{
    (void)state;
    frame_hdr_t h;
    uint8_t flags;
    uint32_t count;
    frame_reader_t r = reader_over(FRAME_PRESENCE, "\x08\0\0\0\0", 5, &h);
    assert_int_equal(frame_get_presence_head(&r, &flags, &count), FRAME_EMALFORMED);
    r = reader_over(FRAME_PRESENCE, "\x04\0\0\0\0", 5, &h);
    assert_int_equal(frame_get_presence_head(&r, &flags, &count), 0);
    assert_int_equal(flags, PRESENCE_FULL_REQUEST);
    r = reader_over(FRAME_PRESENCE, "\x03\0\0\0\1", 5, &h);
    assert_int_equal(frame_get_presence_head(&r, &flags, &count), 0);
    assert_int_equal(count, 1);
    frame_presence_t e;
    assert_int_equal(frame_get_presence(&r, &e, 100), FRAME_EMALFORMED); /* no entry */
    static const char bad_op[] = "\x09\0\0\0\1c\0\0\0\1m";
    r = reader_over(FRAME_PRESENCE, bad_op, sizeof(bad_op) - 1, &h);
    assert_int_equal(frame_get_presence(&r, &e, 100), FRAME_EMALFORMED);
    static const char no_meta[] = "\x01\0\0\0\1c\0\0\0\1m";
    r = reader_over(FRAME_PRESENCE, no_meta, sizeof(no_meta) - 1, &h);
    assert_int_equal(frame_get_presence(&r, &e, 100), FRAME_EMALFORMED);
    static const char leave[] = "\x02\0\0\0\1c\0\0\0\1m";
    r = reader_over(FRAME_PRESENCE, leave, sizeof(leave) - 1, &h);
    assert_int_equal(frame_get_presence(&r, &e, 100), 0);
    assert_int_equal(frame_reader_done(&r), 0);
}

int main(int argc, char **argv)
{
    samples_init();
    if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0)
        return write_corpus(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_header_layout_byte_exact),
        cmocka_unit_test(test_encode_into_moving_buffer),
        cmocka_unit_test(test_split_at_every_byte),
        cmocka_unit_test(test_back_to_back),
        cmocka_unit_test(test_bad_magic_version_type_reserved),
        cmocka_unit_test(test_length_over_limit),
        cmocka_unit_test(test_every_bit_flip_refused),
        cmocka_unit_test(test_wrong_or_missing_key),
        cmocka_unit_test(test_sequence_replay_and_gap),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_readers_on_truncated_payloads),
        cmocka_unit_test(test_reader_stays_failed),
        cmocka_unit_test(test_get_bytes_lengths),
        cmocka_unit_test(test_guard_page),
        cmocka_unit_test(test_derivations_byte_exact),
        cmocka_unit_test(test_handshake_over_frames),
        cmocka_unit_test(test_link_key_depends_on_both_nonces),
        cmocka_unit_test(test_proofs_refuse_impostors),
        cmocka_unit_test(test_mac_equal),
        cmocka_unit_test(test_many_keys_interleaved),
        cmocka_unit_test(test_flush_frames_in_a_row),
        cmocka_unit_test(test_interest_refuses_bad_entries),
        cmocka_unit_test(test_message_refuses_bad_payloads),
        cmocka_unit_test(test_messages_in_order_no_replay),
        cmocka_unit_test(test_message_batch),
        cmocka_unit_test(test_presence_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
