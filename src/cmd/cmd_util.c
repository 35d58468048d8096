/* cmd_util: argument parsing and flush hooks shared by the commands; see cmd.h. */
#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "cmd.h"
#include "mem.h"
#include "keyspace.h"
#include "frame.h"
#include "versioned.h"

int cmd_parse_ll(const char *s, size_t len, long long *out)
{
    if (len == 0 || len > 20)
        return -1;
    size_t i = 0;
    int neg = 0;
    if (len == 1 && s[0] == '0') {
        *out = 0;
        return 0;
    }
    if (s[0] == '-') {
        neg = 1;
        i = 1;
        if (len == 1)
            return -1;
    }
    if (s[i] < '1' || s[i] > '9')
        return -1;
    unsigned long long v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return -1;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX)
            return -1;
        *out = (long long)v;
    }
    return 0;
}

int cmd_ll_or_reply(client_t *c, const char *s, size_t len, long long *out)
{
    if (cmd_parse_ll(s, len, out) == 0)
        return 0;
    resp_add_error(&c->out, ERR_NOT_INT);
    return -1;
}

int cmd_is(const char *arg, size_t len, const char *lit)
{
    return strlen(lit) == len && strncasecmp(arg, lit, len) == 0;
}

void cmd_reply_arity(client_t *c, const char *fullname)
{
    resp_add_errorf(&c->out, "ERR wrong number of arguments for '%s' command", fullname);
}

void cmd_reply_invalid_expire(client_t *c, const char *cmd)
{
    resp_add_errorf(&c->out, "ERR invalid expire time in '%s' command", cmd);
}

int cmd_expire_at(long long v, long long unit_ms, int absolute, long long now_ms, long long *out)
{
    long long ms;
    if (__builtin_mul_overflow(v, unit_ms, &ms))
        return -1;
    if (!absolute && __builtin_add_overflow(ms, now_ms, &ms))
        return -1;
    *out = ms;
    return 0;
}

/* A write or flush of c's sent to the members with flush number seq (0:
 * none sent): WAIT counts the members that acknowledged it. */
static void note_sent(client_t *c, uint64_t seq)
{
    if (seq > c->write_seq)
        c->write_seq = seq;
}

/* Holds c's replies until the members applied flush number seq (0: none). */
static void hold(client_t *c, uint64_t seq)
{
    note_sent(c, seq);
    client_block(c, seq);
}

/* Every flush: remember it for SETL, send it to the members, and hold the
 * client's replies until they have applied it. */
void cmd_flushed_key(client_t *c, const char *key, size_t klen)
{
    node_t *n = cmd_node(c);
    n->stats.flushes_local++;
    flushmark_key(n->flushmark, key, klen);
    uint64_t v = node_next_version(n);
    node_flushed(n, VOP_KEY, key, klen, v);
    hold(c, cluster_flush_key(n->cluster, key, klen, v));
}

void cmd_flushed_prefix(client_t *c, const char *prefix, size_t plen)
{
    node_t *n = cmd_node(c);
    n->stats.flushes_local++;
    flushmark_prefix(n->flushmark, prefix, plen);
    uint64_t v = node_next_version(n);
    node_flushed(n, VOP_PREFIX, prefix, plen, v);
    hold(c, cluster_flush_prefix(n->cluster, prefix, plen, v));
}

void cmd_flushed_all(client_t *c)
{
    node_t *n = cmd_node(c);
    n->stats.flushes_local++;
    flushmark_all(n->flushmark);
    uint64_t v = node_next_version(n);
    node_flushed(n, VOP_ALL, "", 0, v);
    hold(c, cluster_flush_all(n->cluster, v));
}

int cmd_write_mode(client_t *c, const char *key, size_t klen)
{
    return node_write_mode(cmd_node(c), key, klen);
}

/* Sends a write made here (e, key's entry, already stored; prior: what it
 * replaced, or NULL) to the members as mode says, with a new version; the
 * client's reply waits for them. */
static void send_write(client_t *c, cache_entry_t *e, const char *key, size_t klen, int mode,
                       int blind, const writes_prior_t *prior)
{
    node_t *n = cmd_node(c);
    if (mode == KS_LOCAL)
        return; /* a fill: GETL tokens stay good (only flushes and writes elsewhere count) */
    flushmark_key(n->flushmark, key, klen); /* a GETL token read before it loses */
    if (mode == KS_INVALIDATE) {
        size_t vlen;
        const char *val = cache_entry_value(e, &vlen);
        uint64_t v = node_next_version(n);
        cache_entry_set_version(n->cache, e, v);
        hold(c, cluster_invalidate(n->cluster, key, klen, versioned_digest(val, vlen), v));
        return;
    }
    if (blind || (c->cmd_flags & CMDC_ATOMIC)) { /* SEED; or inside EXEC or a script */
        hold(c, node_seed(n, e, key, klen));
        return;
    }
    /* A proposal one step above the newest version of the key known here:
     * refused by a member that has seen a newer one (node/writes.h). */
    uint64_t seq = node_propose(n, e, key, klen, prior);
    note_sent(c, seq);
    cmd_wait_add_proposal(c, seq);
}

/* 1 (and the command is marked refused: commands.c replaces its reply with
 * an error) when a write of key in mode would send the members a key or
 * value larger than every member accepts (frame.h FRAME_VALUE_MAX): nothing
 * is then written, here or anywhere. */
static int too_big(client_t *c, int mode, size_t klen, size_t vlen)
{
    if (mode == KS_LOCAL || (klen <= FRAME_VALUE_MAX &&
                             (mode != KS_REPLICATE || vlen <= FRAME_VALUE_MAX)))
        return 0;
    c->cmd_flags |= CMDC_TOO_BIG;
    return 1;
}

void cmd_seed_value(client_t *c, const char *key, size_t klen, const char *val, size_t vlen,
                    int64_t expire_at)
{
    node_t *n = cmd_node(c);
    int mode = n->cluster ? KS_REPLICATE : KS_LOCAL;
    if (too_big(c, mode, klen, vlen))
        return;
    cache_entry_t *e = cache_set(n->cache, key, klen, val, vlen, expire_at);
    send_write(c, e, key, klen, mode, 1, NULL);
}

void cmd_wrote_ttl(client_t *c, cache_entry_t *e)
{
    size_t klen;
    const char *key = cache_entry_key(e, &klen);
    int mode = cmd_write_mode(c, key, klen);
    if (mode != KS_INVALIDATE) {
        send_write(c, e, key, klen, mode, 0, NULL);
        return;
    }
    /* The others drop theirs: identical bytes with another TTL are not the same. */
    node_t *n = cmd_node(c);
    flushmark_key(n->flushmark, key, klen);
    uint64_t v = node_next_version(n);
    cache_entry_set_version(n->cache, e, v);
    hold(c, cluster_flush_key(n->cluster, key, klen, v));
}

void cmd_set_ttl(client_t *c, cache_entry_t *e, int64_t expire_at)
{
    node_t *n = cmd_node(c);
    size_t klen;
    const char *key = cache_entry_key(e, &klen);
    if (cmd_write_mode(c, key, klen) != KS_REPLICATE || (c->cmd_flags & CMDC_ATOMIC)) {
        cache_set_expire(n->cache, e, expire_at);
        cmd_wrote_ttl(c, e);
        return;
    }
    flushmark_key(n->flushmark, key, klen); /* a GETL token read before it loses */
    uint64_t seq = node_propose_ttl(n, e, expire_at);
    note_sent(c, seq);
    cmd_wait_add_proposal(c, seq);
}

int cmd_serving(client_t *c)
{
    node_t *n = cmd_node(c);
    if (node_serves_cache(n))
        return 1;
    cluster_count_bypass(n->cluster);
    return 0;
}

cache_entry_t *cmd_lookup(client_t *c, const char *key, size_t klen, int flags)
{
    if (c->tracking && (c->cmd_flags & CMDC_READONLY_CMD)) {
        node_tracking_lease(cmd_node(c));
        if (klen) /* tracking speaks of the client's key, without its database byte */
            tracking_read(cmd_node(c)->tracking, c, key + 1, klen - 1);
    }
    if (!cmd_serving(c))
        return NULL;
    return cache_lookup(cmd_node(c)->cache, key, klen, clock_now_ms(), flags);
}

cache_entry_t *cmd_read(client_t *c, const char *key, size_t klen)
{
    return cmd_lookup(c, key, klen,
                      CACHE_READ | (c->cmd_flags & CMDC_NO_TOUCH ? CACHE_NOTOUCH : 0));
}

/* The entry a write reads first (INCR, APPEND...): as a read, but counting
 * neither a hit nor a bypass. */
cache_entry_t *cmd_lookup_write(client_t *c, const char *key, size_t klen)
{
    node_t *n = cmd_node(c);
    if (!node_serves_cache(n))
        return NULL;
    return cache_lookup(n->cache, key, klen, clock_now_ms(), 0);
}

void cmd_after_write(client_t *c)
{
    node_t *n = cmd_node(c);
    cache_t *cache = n->cache;
    if (cache_maxmemory(cache) && cache_used_memory(cache) > cache_maxmemory(cache))
        cache_evict(cache);
    node_note_memory(n);
}

/* The one place a command stores a value: here, then on the members as the
 * key's keyspace says (send_write). The value bytes and the type describe
 * the value fully (a hash's or a set's bytes are coll.h's). */
void cmd_write_typed(client_t *c, const char *key, size_t klen, const char *val, size_t vlen,
                     int64_t expire_at, int type, int enc)
{
    node_t *n = cmd_node(c);
    int mode = cmd_write_mode(c, key, klen);
    if (too_big(c, mode, klen, vlen))
        return;
    writes_prior_t prior = {NULL, 0, 0, 0, 0, 0};
    if (mode == KS_REPLICATE && !(c->cmd_flags & CMDC_ATOMIC)) /* a proposal: see send_write */
        node_prior_take(n, key, klen, &prior);
    cache_entry_t *e = cache_set(n->cache, key, klen, val, vlen, expire_at);
    if (type != CACHE_TYPE_STRING)
        cache_entry_set_type(e, type);
    else if (enc != CACHE_ENC_AUTO)
        cache_entry_set_enc(e, enc);
    send_write(c, e, key, klen, mode, 0, &prior);
    writes_prior_free(&prior);
    cmd_after_write(c);
}

void cmd_write_value(client_t *c, const char *key, size_t klen, const char *val, size_t vlen,
                     int64_t expire_at, int enc)
{
    cmd_write_typed(c, key, klen, val, vlen, expire_at, CACHE_TYPE_STRING, enc);
}

void cmd_rewrite_value(client_t *c, cache_entry_t *e, const char *key, size_t klen, const char *val,
                       size_t vlen, int64_t expire_at)
{
    assert(e && cache_entry_type(e) == CACHE_TYPE_STRING);
    int mode = cmd_write_mode(c, key, klen);
    /* A proposal keeps the value it replaces, for an abort (node_prior_take):
     * never in place. */
    int proposal = mode == KS_REPLICATE && !(c->cmd_flags & CMDC_ATOMIC);
    if (proposal || !cache_set_in_place(cmd_node(c)->cache, e, val, vlen, expire_at)) {
        cmd_write_value(c, key, klen, val, vlen, expire_at, CACHE_ENC_AUTO);
        return;
    }
    send_write(c, e, key, klen, mode, 0, NULL);
    cmd_after_write(c);
}

void cmd_write_blind(client_t *c, const char *key, size_t klen, const char *val, size_t vlen,
                     int64_t expire_at)
{
    int mode = cmd_write_mode(c, key, klen);
    if (too_big(c, mode, klen, vlen))
        return;
    cache_entry_t *e = cache_set(cmd_node(c)->cache, key, klen, val, vlen, expire_at);
    send_write(c, e, key, klen, mode, 1, NULL);
    cmd_after_write(c);
}

const char *cmd_type_name(const cache_entry_t *e)
{
    switch (cache_entry_type(e)) {
    case CACHE_TYPE_HASH:
        return "hash";
    case CACHE_TYPE_SET:
        return "set";
    default:
        return "string";
    }
}

void cmd_reply_wrongtype(client_t *c)
{
    resp_add_error(&c->out, ERR_WRONGTYPE);
}

int cmd_check_type(client_t *c, const cache_entry_t *e, int type)
{
    if (!e || cache_entry_type(e) == type)
        return 0;
    cmd_reply_wrongtype(c);
    return -1;
}

char *cmd_ld_add_or_reply(client_t *c, long double value, long double incr, size_t *n)
{
    value += incr;
    if (isnan(value) || isinf(value)) {
        resp_add_error(&c->out, "ERR increment would produce NaN or Infinity");
        return NULL;
    }
    char *text = xmalloc(CMD_LD_CHARS);
    *n = cmd_format_ld(text, CMD_LD_CHARS, value);
    return text;
}

int cmd_scan_opts(client_t *c, int argc, const char **argv, const size_t *argl, int first,
                  int allow_type, scan_opts_t *o)
{
    *o = (scan_opts_t){10, NULL, 0, NULL, 0};
    for (int i = first; i < argc; i += 2) {
        int has_value = i + 1 < argc;
        if (has_value && cmd_is(argv[i], argl[i], "count")) {
            if (cmd_ll_or_reply(c, argv[i + 1], argl[i + 1], &o->count) < 0)
                return -1;
            if (o->count < 1) {
                resp_add_error(&c->out, ERR_SYNTAX);
                return -1;
            }
        } else if (has_value && cmd_is(argv[i], argl[i], "match")) {
            int all = argl[i + 1] == 1 && argv[i + 1][0] == '*';
            o->pat = all ? NULL : argv[i + 1];
            o->plen = argl[i + 1];
        } else if (has_value && allow_type && cmd_is(argv[i], argl[i], "type")) {
            o->type = argv[i + 1];
            o->tlen = argl[i + 1];
        } else {
            resp_add_error(&c->out, ERR_SYNTAX);
            return -1;
        }
    }
    return 0;
}

void cmd_reply_value(client_t *c, const cache_entry_t *e)
{
    if (!e) {
        resp_add_null(&c->out, c->proto);
        return;
    }
    size_t vlen;
    const char *v = cache_entry_value(e, &vlen);
    resp_add_bulk(&c->out, v, vlen);
}

void cmd_reply_unknown_subcommand(client_t *c, const char *sub, size_t len, const char *cmd)
{
    int n = len > 128 ? 128 : (int)len;
    resp_add_errorf(&c->out, "ERR unknown subcommand '%.*s'. Try %s HELP.", n, sub, cmd);
}

void cmd_reply_sub_arity(client_t *c, const char *cmd, const char *sub, size_t slen)
{
    char full[64];
    snprintf(full, sizeof(full), "%s|%.*s", cmd, (int)(slen > 32 ? 32 : slen), sub);
    for (char *p = full; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    cmd_reply_arity(c, full);
}

void cmd_reply_help(client_t *c, const char *const *lines, size_t n)
{
    resp_add_array(&c->out, n);
    for (size_t i = 0; i < n; i++)
        resp_add_simple(&c->out, lines[i]);
}
