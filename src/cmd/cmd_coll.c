/* cmd_coll: what the hash and set commands share: the type-checked lookup,
 * loading a collection from its entry, storing it back through the one write
 * path (cmd_write_typed), HSCAN/SSCAN, counts and randomness.
 * Never: calls cache_set() itself, or stores bytes that coll_validate would
 * refuse: every value goes through coll_encode. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cmd.h"
#include "coll.h"
#include "glob.h"
#include "mem.h"

int cmd_coll_lookup(client_t *c, const char *key, size_t klen, int type, int write,
                    cache_entry_t **e)
{
    *e = write ? cmd_lookup_write(c, key, klen) : cmd_read(c, key, klen);
    return cmd_check_type(c, *e, type);
}

void cmd_coll_load(const cache_entry_t *e, int type, coll_t *out)
{
    if (!e) {
        coll_init(out, type == CACHE_TYPE_HASH ? COLL_HASH : COLL_SET);
        return;
    }
    size_t vlen;
    const char *v = cache_entry_value(e, &vlen);
    int rc = coll_decode(out, v, vlen);
    assert(rc == 0); /* only coll_encode's or validated bytes are stored */
    (void)rc;
}

int cmd_coll_store(client_t *c, const char *key, size_t klen, const coll_t *coll, int64_t at)
{
    node_t *n = cmd_node(c);
    if (coll->count == 0) {
        cache_delete(n->cache, key, klen, clock_now_ms());
        cmd_flushed_key(c, key, klen);
        return 0;
    }
    size_t len;
    char *bytes = coll_encode(coll, &len);
    if (len > n->cfg->max_bulk_len) {
        free(bytes);
        resp_add_errorf(&c->out, "ERR the value would be larger than max_bulk_len (%zu bytes)",
                        n->cfg->max_bulk_len);
        return -1;
    }
    cmd_write_typed(c, key, klen, bytes, len, at,
                    coll->type == COLL_HASH ? CACHE_TYPE_HASH : CACHE_TYPE_SET, CACHE_ENC_AUTO);
    free(bytes);
    return 0;
}

int cmd_coll_put_one(client_t *c, const char *key, size_t klen, const cache_entry_t *e,
                     const char *f, size_t flen, const char *v, size_t vlen, int *added)
{
    node_t *n = cmd_node(c);
    size_t len;
    const char *old = cache_entry_value(e, &len);
    coll_hdr_t h;
    if (coll_hdr(old, len, &h) < 0 || (h.flags & COLL_F_INTSET))
        return 1;
    int flags = h.flags;
    if (h.type == COLL_HASH &&
        (flen > CMD_HASH_MAX_LISTPACK_VALUE || vlen > CMD_HASH_MAX_LISTPACK_VALUE))
        flags |= COLL_F_BIG;
    size_t outlen;
    char *bytes = coll_put_bytes(old, len, f, flen, v, vlen, flags, &outlen, added);
    if (!bytes)
        return 1;
    if (*added && h.count + 1 > CMD_HASH_MAX_LISTPACK_ENTRIES)
        coll_set_flags(bytes, flags | COLL_F_BIG);
    if (outlen > n->cfg->max_bulk_len) {
        free(bytes);
        resp_add_errorf(&c->out, "ERR the value would be larger than max_bulk_len (%zu bytes)",
                        n->cfg->max_bulk_len);
        return -1;
    }
    cmd_write_typed(c, key, klen, bytes, outlen, cache_entry_expire(e),
                    h.type == COLL_HASH ? CACHE_TYPE_HASH : CACHE_TYPE_SET, CACHE_ENC_AUTO);
    free(bytes);
    return 0;
}

size_t cmd_random_below(size_t n)
{
    assert(n > 0);
    uint64_t r = ((uint64_t)random() << 31) ^ (uint64_t)random();
    return (size_t)(r % n);
}

int cmd_count_or_reply(client_t *c, const char *s, size_t len, long long *out)
{
    if (cmd_ll_or_reply(c, s, len, out) < 0)
        return -1;
    if (*out < -LLONG_MAX) {
        resp_add_error(&c->out, "ERR value is out of range, value must between "
                                "-9223372036854775807 and 9223372036854775807");
        return -1;
    }
    return 0;
}

/* A scan cursor as redis-server's parseScanCursorOrReply (strtoul). */
static int parse_cursor(const char *s, size_t len)
{
    char buf[64];
    if (len >= sizeof(buf) || memchr(s, '\0', len) || (len && isspace((unsigned char)s[0])))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    (void)strtoull(buf, &end, 10);
    return *end != '\0' || errno == ERANGE ? -1 : 0;
}

void cmd_coll_scan(client_t *c, int argc, const char **argv, const size_t *argl, int type)
{
    if (parse_cursor(argv[2], argl[2]) < 0) {
        resp_add_error(&c->out, "ERR invalid cursor");
        return;
    }
    cache_entry_t *e;
    if (cmd_coll_lookup(c, argv[1], argl[1], type, 0, &e) < 0)
        return;
    if (!e) {
        resp_add_array(&c->out, 2);
        resp_add_bulk(&c->out, "0", 1);
        resp_add_array(&c->out, 0);
        return;
    }
    scan_opts_t o;
    if (cmd_scan_opts(c, argc, argv, argl, 3, 0, &o) < 0)
        return;
    const char *pat = o.pat;
    size_t plen = o.plen;
    /* The whole collection in one step: a cursor over bytes that every
     * write rewrites could not keep SCAN's guarantee. */
    size_t vlen;
    const char *v = cache_entry_value(e, &vlen);
    coll_iter_t it;
    coll_str_t k, val = {"", 0};
    buf_t items;
    buf_init(&items);
    size_t n = 0;
    int hash = type == CACHE_TYPE_HASH;
    if (coll_iter_init(&it, v, vlen) == 0) {
        while (coll_iter_next(&it, &k) == 1) {
            if (hash && coll_iter_next(&it, &val) != 1)
                break;
            if (pat && !glob_match(pat, plen, k.p, k.len))
                continue;
            resp_add_bulk(&items, k.p, k.len);
            n++;
            if (hash) {
                resp_add_bulk(&items, val.p, val.len);
                n++;
            }
        }
    }
    resp_add_array(&c->out, 2);
    resp_add_bulk(&c->out, "0", 1);
    resp_add_array(&c->out, n);
    buf_append(&c->out, buf_head(&items), buf_len(&items));
    buf_free(&items);
}

/* One entry of a random reply: a field (with its value), or a member. */
static void reply_entry(client_t *c, const coll_t *h, size_t s, int withvalues)
{
    size_t w = coll_width(h);
    if (withvalues && c->proto > 2)
        resp_add_array(&c->out, 2);
    resp_add_bulk(&c->out, h->items[s * w].p, h->items[s * w].len);
    if (withvalues)
        resp_add_bulk(&c->out, h->items[s * w + 1].p, h->items[s * w + 1].len);
}

void cmd_reply_random(client_t *c, const coll_t *h, long long l, int withvalues)
{
    size_t size = h->count;
    assert(size > 0 && size == h->slots); /* freshly decoded: no holes */
    if (l == 0) {
        resp_add_array(&c->out, 0);
        return;
    }
    unsigned long long count = l < 0 ? (unsigned long long)-l : (unsigned long long)l;
    if (l < 0 || count == 1) {
        if (count > CMD_RANDOM_REPEAT_MAX) {
            resp_add_errorf(&c->out, "ERR count is too large (at most %d repeated elements)",
                            CMD_RANDOM_REPEAT_MAX);
            return;
        }
        resp_add_array(&c->out, withvalues && c->proto == 2 ? count * 2 : count);
        while (count--)
            reply_entry(c, h, cmd_random_below(size), withvalues);
        return;
    }
    size_t n = count < size ? (size_t)count : size;
    resp_add_array(&c->out, withvalues && c->proto == 2 ? n * 2 : n);
    if (n == size) {
        for (size_t s = 0; s < size; s++)
            reply_entry(c, h, s, withvalues);
        return;
    }
    /* n distinct entries: a partial Fisher-Yates shuffle of the slots. */
    size_t *order = xmalloc(size * sizeof(*order));
    for (size_t i = 0; i < size; i++)
        order[i] = i;
    for (size_t i = 0; i < n; i++) {
        size_t j = i + cmd_random_below(size - i);
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
        reply_entry(c, h, order[i], withvalues);
    }
    free(order);
}

static cmd_coll_limits_t limits = {512, 64, 512};

const cmd_coll_limits_t *cmd_coll_limits(void)
{
    return &limits;
}

void cmd_coll_set_limits(const cmd_coll_limits_t *l)
{
    limits = *l;
}

void cmd_coll_reencode(coll_t *coll)
{
    size_t w = coll_width(coll);
    if (coll->type == COLL_HASH) {
        coll->flags = coll->count > CMD_HASH_MAX_LISTPACK_ENTRIES ? COLL_F_BIG : 0;
        for (size_t i = 0; i < coll->slots * w && !coll->flags; i++)
            if (coll->items[i].p && coll->items[i].len > CMD_HASH_MAX_LISTPACK_VALUE)
                coll->flags = COLL_F_BIG;
        return;
    }
    coll->flags = coll->count > CMD_SET_MAX_INTSET_ENTRIES ? COLL_F_BIG : COLL_F_INTSET;
    for (size_t i = 0; i < coll->slots && coll->flags == COLL_F_INTSET; i++) {
        long long v;
        if (coll->items[i].p && !coll_is_int(coll->items[i].p, coll->items[i].len, &v))
            coll->flags = COLL_F_BIG;
    }
}

const char *cmd_coll_encoding(const cache_entry_t *e)
{
    size_t vlen;
    const char *v = cache_entry_value(e, &vlen);
    coll_hdr_t h;
    if (coll_hdr(v, vlen, &h) < 0)
        return "unknown";
    if (h.flags & COLL_F_INTSET)
        return "intset";
    if (h.flags & COLL_F_BIG)
        return "hashtable";
    return "listpack";
}
