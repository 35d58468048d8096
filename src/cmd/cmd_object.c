/* cmd_object: introspection and serialization of one key (OBJECT, MEMORY
 * USAGE, DUMP, RESTORE) with redis-server 7's replies and errors.
 *
 * OBJECT ENCODING follows redis-server's rules for strings: "int" for a value
 * that string2ll reads (at most 20 bytes), "embstr" up to 44 bytes, "raw"
 * beyond, and "raw" after APPEND / SETRANGE, never "int" after INCRBYFLOAT
 * (the cache keeps that as enum cache_enc). REFCOUNT is 2147483647 for the
 * integers 0..9999 redis-server shares (when maxmemory is 0), else 1. FREQ
 * answers under an LFU maxmemory-policy and IDLETIME under the others; each
 * is refused otherwise, as redis-server refuses it.
 *
 * DUMP payload (cohort's own, not Redis's RDB format):
 *   value bytes | encoding (1 byte) | format version (2 bytes, little endian)
 *   | XXH3-64 of everything before, seeded with DUMP_SEED (8 bytes, LE)
 * The encoding byte is the type in its high nibble (enum cache_type) and a
 * string's encoding in its low one (0..2; 0 for a hash or a set, whose
 * value bytes are coll.h's, checked whole by coll_validate). As
 * redis-server re-encodes what it loads, a restored string is encoded by its
 * content, a restored hash or set by its size (cmd_coll_reencode).
 * Invariants (test_strings_keys.py::test_dump_restore_round_trip and
 * ::test_restore_refuses_foreign_and_tampered_payloads): RESTORE accepts the
 * payloads DUMP makes, with the same value; any other payload, a Redis one
 * or one with any byte changed, gets "DUMP payload version or checksum are
 * wrong".
 * Never: calls cache_set() itself (RESTORE fills through cmd_write_typed). */
#include <assert.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "clock.h"
#include "cmd.h"
#include "coll.h"
#include "mem.h"

#define DUMP_VERSION 1
#define DUMP_SEED 0x636f686f72742031ull /* "cohort 1" */
#define DUMP_FOOTER 11                  /* encoding, version, checksum */
#define SHARED_INTEGERS 10000           /* redis-server's OBJ_SHARED_INTEGERS */
#define SHARED_REFCOUNT INT_MAX         /* redis-server's OBJ_SHARED_REFCOUNT */

/* The entry of key for OBJECT / MEMORY / DUMP: a read that does not touch the
 * LRU (redis-server's LOOKUP_NOTOUCH); NULL while the lease does not hold. */
static cache_entry_t *lookup_notouch(client_t *c, const char *key, size_t klen)
{
    node_t *n = cmd_node(c);
    if (!node_serves_cache(n))
        return NULL;
    return cache_lookup(n->cache, key, klen, clock_now_ms(), CACHE_READ | CACHE_NOTOUCH);
}

/* 1 when redis-server would hold the value as an integer (OBJ_ENCODING_INT). */
static int int_encoded(const cache_entry_t *e, long long *v)
{
    size_t vlen;
    const char *val = cache_entry_value(e, &vlen);
    return cache_entry_type(e) == CACHE_TYPE_STRING && cache_entry_enc(e) == CACHE_ENC_AUTO &&
           vlen <= 20 && cmd_parse_ll(val, vlen, v) == 0;
}

static const char *encoding_name(const cache_entry_t *e)
{
    long long v;
    size_t vlen;
    cache_entry_value(e, &vlen);
    if (cache_entry_type(e) != CACHE_TYPE_STRING)
        return cmd_coll_encoding(e);
    if (cache_entry_enc(e) == CACHE_ENC_RAW)
        return "raw";
    if (int_encoded(e, &v))
        return "int";
    return vlen <= 44 ? "embstr" : "raw";
}

static const char *const object_help[] = {
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
};

static int is_object_sub(const char *s, size_t len)
{
    return cmd_is(s, len, "encoding") || cmd_is(s, len, "freq") || cmd_is(s, len, "idletime") ||
           cmd_is(s, len, "refcount");
}

CMD_HANDLER(cmd_object)
{
    const char *sub = argv[1];
    size_t slen = argl[1];
    if (cmd_is(sub, slen, "help")) {
        if (argc == 2)
            cmd_reply_help(c, object_help, sizeof(object_help) / sizeof(object_help[0]));
        else
            cmd_reply_sub_arity(c, "object", sub, slen);
        return;
    }
    if (!is_object_sub(sub, slen)) {
        cmd_reply_unknown_subcommand(c, sub, slen, "OBJECT");
        return;
    }
    if (argc != 3) {
        cmd_reply_sub_arity(c, "object", sub, slen);
        return;
    }
    cache_entry_t *e = lookup_notouch(c, argv[2], argl[2]);
    if (!e) {
        resp_add_null(&c->out, c->proto);
        return;
    }
    long long v;
    int lfu = cache_policy_is_lfu(cache_policy(cmd_node(c)->cache));
    if (cmd_is(sub, slen, "encoding")) {
        resp_add_bulk_str(&c->out, encoding_name(e));
    } else if (cmd_is(sub, slen, "refcount")) {
        int shared = int_encoded(e, &v) && v >= 0 && v < SHARED_INTEGERS &&
                     cache_maxmemory(cmd_node(c)->cache) == 0;
        resp_add_int(&c->out, shared ? SHARED_REFCOUNT : 1);
    } else if (cmd_is(sub, slen, "idletime") && lfu) {
        resp_add_error(&c->out, "ERR An LFU maxmemory policy is selected, idle time not tracked. "
                                "Please note that when switching between policies at runtime LRU "
                                "and LFU data will take some time to adjust.");
    } else if (cmd_is(sub, slen, "idletime")) {
        resp_add_int(&c->out,
                     (long long)(cache_entry_idle_ms(cmd_node(c)->cache, e) / 1000));
    } else if (lfu) {
        resp_add_int(&c->out, (long long)cache_entry_freq(cmd_node(c)->cache, e));
    } else {
        resp_add_error(&c->out, "ERR An LFU maxmemory policy is not selected, access frequency "
                                "not tracked. Please note that when switching between policies "
                                "at runtime LRU and LFU data will take some time to adjust.");
    }
}

static const char *const memory_help[] = {
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
};

/* MEMORY USAGE key [SAMPLES n]: the bytes the entry takes in this node's
 * cache (header, key and value as allocated) plus its hash table slot. */
CMD_HANDLER(cmd_memory)
{
    const char *sub = argv[1];
    size_t slen = argl[1];
    if (cmd_is(sub, slen, "help")) {
        if (argc == 2)
            cmd_reply_help(c, memory_help, sizeof(memory_help) / sizeof(memory_help[0]));
        else
            cmd_reply_sub_arity(c, "memory", sub, slen);
        return;
    }
    if (!cmd_is(sub, slen, "usage")) {
        cmd_reply_unknown_subcommand(c, sub, slen, "MEMORY");
        return;
    }
    if (argc < 3) {
        cmd_reply_sub_arity(c, "memory", sub, slen);
        return;
    }
    for (int j = 3; j < argc; j++) {
        long long samples;
        if (cmd_is(argv[j], argl[j], "samples") && j + 1 < argc) {
            if (cmd_ll_or_reply(c, argv[j + 1], argl[j + 1], &samples) < 0)
                return;
            if (samples < 0) {
                resp_add_error(&c->out, ERR_SYNTAX);
                return;
            }
            j++;
        } else {
            resp_add_error(&c->out, ERR_SYNTAX);
            return;
        }
    }
    cache_entry_t *e = lookup_notouch(c, argv[2], argl[2]);
    if (!e) {
        resp_add_null(&c->out, c->proto);
        return;
    }
    resp_add_int(&c->out, (long long)(cache_entry_memory(e) + sizeof(void *)));
}

/* ---- DUMP and RESTORE --------------------------------------------------- */

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

CMD_HANDLER(cmd_dump)
{
    cache_entry_t *e = cmd_read(c, argv[1], argl[1]);
    if (!e) {
        resp_add_null(&c->out, c->proto);
        return;
    }
    size_t vlen;
    const char *v = cache_entry_value(e, &vlen);
    unsigned char *p = xmalloc(vlen + DUMP_FOOTER);
    memcpy(p, v, vlen);
    p[vlen] = (unsigned char)(cache_entry_type(e) << 4 | cache_entry_enc(e));
    put_le(p + vlen + 1, DUMP_VERSION, 2);
    put_le(p + vlen + 3, XXH3_64bits_withSeed(p, vlen + 3, DUMP_SEED), 8);
    resp_add_bulk(&c->out, p, vlen + DUMP_FOOTER);
    free(p);
}

/* Checks a payload: 0 with the value's length and encoding, or -1. */
static int payload_verify(const char *payload, size_t len, size_t *vlen, int *enc)
{
    const unsigned char *p = (const unsigned char *)payload;
    if (len < DUMP_FOOTER)
        return -1;
    size_t body = len - 8;
    if (get_le(p + body - 2, 2) != DUMP_VERSION ||
        get_le(p + body, 8) != XXH3_64bits_withSeed(p, body, DUMP_SEED))
        return -1;
    *vlen = len - DUMP_FOOTER;
    *enc = p[*vlen];
    return 0;
}

/* 0 when the payload's value is a valid collection of the type. */
static int restore_check_coll(const char *v, size_t vlen, int type)
{
    char err[128];
    coll_hdr_t h;
    if (coll_validate(v, vlen, err, sizeof(err)) < 0 || coll_hdr(v, vlen, &h) < 0)
        return -1;
    return h.type == (type == CACHE_TYPE_HASH ? COLL_HASH : COLL_SET) ? 0 : -1;
}

typedef struct restore_opts {
    int replace, absttl;
    long long idle_s; /* -1: not given */
    long long freq;   /* -1: not given (used under an LFU policy, as IDLETIME under the others) */
} restore_opts_t;

static int restore_parse(client_t *c, int argc, const char **argv, const size_t *argl,
                         restore_opts_t *o)
{
    o->replace = o->absttl = 0;
    o->idle_s = o->freq = -1;
    for (int j = 4; j < argc; j++) {
        int more = argc - j - 1;
        if (cmd_is(argv[j], argl[j], "replace")) {
            o->replace = 1;
        } else if (cmd_is(argv[j], argl[j], "absttl")) {
            o->absttl = 1;
        } else if (cmd_is(argv[j], argl[j], "idletime") && more && o->freq == -1) {
            if (cmd_ll_or_reply(c, argv[j + 1], argl[j + 1], &o->idle_s) < 0)
                return -1;
            if (o->idle_s < 0) {
                resp_add_error(&c->out, "ERR Invalid IDLETIME value, must be >= 0");
                return -1;
            }
            j++;
        } else if (cmd_is(argv[j], argl[j], "freq") && more && o->idle_s == -1) {
            if (cmd_ll_or_reply(c, argv[j + 1], argl[j + 1], &o->freq) < 0)
                return -1;
            if (o->freq < 0 || o->freq > 255) {
                resp_add_error(&c->out, "ERR Invalid FREQ value, must be >= 0 and <= 255");
                return -1;
            }
            j++;
        } else {
            resp_add_error(&c->out, ERR_SYNTAX);
            return -1;
        }
    }
    return 0;
}

/* RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]: a fill
 * of this node; a time already past with REPLACE is a flush. */
CMD_HANDLER(cmd_restore)
{
    node_t *n = cmd_node(c);
    restore_opts_t o;
    long long ttl;
    if (restore_parse(c, argc, argv, argl, &o) < 0)
        return;
    int64_t now = clock_now_ms();
    if (!o.replace && cache_lookup(n->cache, argv[1], argl[1], now, CACHE_NOTOUCH)) {
        resp_add_error(&c->out, "BUSYKEY Target key name already exists.");
        return;
    }
    if (cmd_ll_or_reply(c, argv[2], argl[2], &ttl) < 0)
        return;
    if (ttl < 0) {
        resp_add_error(&c->out, "ERR Invalid TTL value, must be >= 0");
        return;
    }
    size_t vlen;
    int enc;
    if (payload_verify(argv[3], argl[3], &vlen, &enc) < 0) {
        resp_add_error(&c->out, "ERR DUMP payload version or checksum are wrong");
        return;
    }
    int type = enc >> 4;
    enc &= 0xf;
    if (enc > CACHE_ENC_RAW || type > CACHE_TYPE_SET || (type != CACHE_TYPE_STRING && enc) ||
        (type != CACHE_TYPE_STRING && restore_check_coll(argv[3], vlen, type) < 0)) {
        resp_add_error(&c->out, "ERR Bad data format");
        return;
    }
    if (ttl && !o.absttl && __builtin_add_overflow(ttl, now, &ttl))
        ttl = LLONG_MAX;
    if (ttl && ttl <= now) {
        if (o.replace) {
            cache_delete(n->cache, argv[1], argl[1], now);
            cmd_flushed_key(c, argv[1], argl[1]);
        }
        resp_add_ok(&c->out);
        return;
    }
    /* As redis-server re-encodes what it loads: a string by its content, a
     * collection by its size. */
    if (type == CACHE_TYPE_STRING) {
        cmd_write_value(c, argv[1], argl[1], argv[3], vlen, ttl, CACHE_ENC_AUTO);
    } else {
        coll_t coll;
        int rc = coll_decode(&coll, argv[3], vlen);
        assert(rc == 0); /* validated above */
        (void)rc;
        cmd_coll_reencode(&coll);
        size_t len;
        char *bytes = coll_encode(&coll, &len);
        coll_free(&coll);
        cmd_write_typed(c, argv[1], argl[1], bytes, len, ttl, type, CACHE_ENC_AUTO);
        free(bytes);
    }
    cache_entry_t *e = cache_lookup(n->cache, argv[1], argl[1], now, CACHE_NOTOUCH);
    if (e && o.idle_s >= 0)
        cache_entry_set_idle_ms(n->cache, e, (uint64_t)(o.idle_s > (1LL << 40) ? (1LL << 40) : o.idle_s) * 1000);
    if (e && o.freq >= 0)
        cache_entry_set_freq(n->cache, e, (unsigned)o.freq);
    resp_add_ok(&c->out);
}
