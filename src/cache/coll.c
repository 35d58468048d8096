/* coll: the byte form of hashes and sets; see coll.h for the format, its
 * invariants and costs.
 * Never: reads outside the bytes it was given, trusts a length before
 * checking it against what is left, or allocates on the in-place paths. */
#include "coll.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "errmsg.h"
#include "mem.h"

enum {
    HDR_FIXED = 3,          /* version, type, flags */
    VARINT_MAX = 10,        /* bytes of the longest varint */
    LINEAR_MAX = 8,         /* entries always searched without an index */
    LINEAR_SCANS = 4,       /* lookups by scanning before an index is built */
    IDX_MIN = 16            /* first index capacity */
};
#define LEN_MAX ((uint64_t)1 << 62)

/* ------------------------------------------------------------- varints */

/* Reads a varint at p (n bytes available). Returns the bytes it took, or 0
 * when it is cut short, too long or >= LEN_MAX. */
static size_t varint_get(const unsigned char *p, size_t n, uint64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < n && i < VARINT_MAX; i++) {
        x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            if (x >= LEN_MAX || (i > 0 && p[i] == 0))
                return 0; /* too big, or not the shortest form */
            *v = x;
            return i + 1;
        }
    }
    return 0;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t varint_put(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

/* ------------------------------------------------------------ in place */

int coll_is_int(const char *s, size_t len, long long *v)
{
    if (len == 0 || len > 20)
        return 0;
    size_t i = 0;
    int neg = s[0] == '-';
    if (len == 1 && s[0] == '0') {
        *v = 0;
        return 1;
    }
    i = (size_t)neg;
    if (i >= len || s[i] < '1' || s[i] > '9')
        return 0;
    unsigned long long x = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        unsigned d = (unsigned)(s[i] - '0');
        if (x > (ULLONG_MAX - d) / 10)
            return 0;
        x = x * 10 + d;
    }
    if (neg) {
        if (x > (unsigned long long)LLONG_MAX + 1)
            return 0;
        *v = x == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)x;
    } else {
        if (x > (unsigned long long)LLONG_MAX)
            return 0;
        *v = (long long)x;
    }
    return 1;
}

int coll_hdr(const char *bytes, size_t len, coll_hdr_t *out)
{
    const unsigned char *p = (const unsigned char *)bytes;
    if (len < HDR_FIXED + 1 || p[0] != COLL_VERSION)
        return -1;
    int type = p[1], flags = p[2];
    if (type != COLL_HASH && type != COLL_SET)
        return -1;
    if (flags & ~(COLL_F_BIG | COLL_F_INTSET))
        return -1;
    if ((flags & COLL_F_INTSET) && (type != COLL_SET || (flags & COLL_F_BIG)))
        return -1;
    uint64_t count;
    size_t n = varint_get(p + HDR_FIXED, len - HDR_FIXED, &count);
    if (n == 0)
        return -1;
    /* Every entry takes at least one byte per item. */
    uint64_t width = type == COLL_HASH ? 2 : 1;
    if (count > (len - HDR_FIXED - n) / width)
        return -1;
    out->type = type;
    out->flags = flags;
    out->count = (size_t)count;
    out->body = HDR_FIXED + n;
    return 0;
}

int coll_iter_init(coll_iter_t *it, const char *bytes, size_t len)
{
    coll_hdr_t h;
    if (coll_hdr(bytes, len, &h) < 0)
        return -1;
    it->p = bytes + h.body;
    it->left = len - h.body;
    it->items = h.count * (h.type == COLL_HASH ? 2 : 1);
    return 0;
}

int coll_iter_next(coll_iter_t *it, coll_str_t *out)
{
    if (it->items == 0)
        return 0;
    uint64_t l;
    size_t n = varint_get((const unsigned char *)it->p, it->left, &l);
    if (n == 0 || l > it->left - n)
        return -1;
    out->p = it->p + n;
    out->len = (size_t)l;
    it->p += n + l;
    it->left -= n + l;
    it->items--;
    return 1;
}

static int str_eq(const coll_str_t *s, const char *key, size_t klen)
{
    return s->len == klen && (klen == 0 || memcmp(s->p, key, klen) == 0);
}

int coll_find_raw(const char *bytes, size_t len, const char *key, size_t klen, coll_str_t *val)
{
    coll_hdr_t h;
    coll_iter_t it;
    if (coll_hdr(bytes, len, &h) < 0 || coll_iter_init(&it, bytes, len) < 0)
        return -1;
    coll_str_t s, v;
    int r;
    while ((r = coll_iter_next(&it, &s)) == 1) {
        if (h.type == COLL_HASH && coll_iter_next(&it, &v) != 1)
            return -1;
        if (str_eq(&s, key, klen)) {
            if (h.type == COLL_HASH && val)
                *val = v;
            return 1;
        }
    }
    return r;
}

/* ------------------------------------------------------------ editable */

void coll_init(coll_t *c, int type)
{
    assert(type == COLL_HASH || type == COLL_SET);
    memset(c, 0, sizeof(*c));
    c->type = type;
}

void coll_free(coll_t *c)
{
    for (size_t i = 0; i < c->nkept; i++)
        free(c->kept[i]);
    free(c->kept);
    free(c->items);
    free(c->idx);
    memset(c, 0, sizeof(*c));
}

static uint64_t hash_str(const char *p, size_t len)
{
    return XXH3_64bits(p, len);
}

static void idx_insert(coll_t *c, size_t slot)
{
    const coll_str_t *k = &c->items[slot * coll_width(c)];
    size_t mask = c->idx_cap - 1;
    size_t i = (size_t)hash_str(k->p, k->len) & mask;
    while (c->idx[i])
        i = (i + 1) & mask;
    c->idx[i] = (uint32_t)(slot + 1);
}

/* (Re)builds the index with room for at least 'need' slots at half load. */
static void idx_build(coll_t *c, size_t need)
{
    size_t cap = IDX_MIN;
    while (cap < need * 2)
        cap *= 2;
    free(c->idx);
    c->idx = xcalloc(cap, sizeof(*c->idx));
    c->idx_cap = cap;
    size_t w = coll_width(c);
    for (size_t s = 0; s < c->slots; s++)
        if (c->items[s * w].p)
            idx_insert(c, s);
}

long coll_find(coll_t *c, const char *key, size_t klen)
{
    size_t w = coll_width(c);
    if (!c->idx && (c->slots <= LINEAR_MAX || c->scans < LINEAR_SCANS)) {
        c->scans++;
        for (size_t s = 0; s < c->slots; s++)
            if (c->items[s * w].p && str_eq(&c->items[s * w], key, klen))
                return (long)s;
        return -1;
    }
    if (!c->idx)
        idx_build(c, c->slots + 1);
    size_t mask = c->idx_cap - 1;
    for (size_t i = (size_t)hash_str(key, klen) & mask; c->idx[i]; i = (i + 1) & mask) {
        size_t s = c->idx[i] - 1;
        if (c->items[s * w].p && str_eq(&c->items[s * w], key, klen))
            return (long)s;
    }
    return -1;
}

/* Appends an entry known to be absent. */
static void append(coll_t *c, const char *key, size_t klen, const char *val, size_t vlen)
{
    size_t w = coll_width(c);
    assert(c->slots < UINT32_MAX - 1);
    if (c->slots == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 8;
        c->items = xrealloc(c->items, c->cap * w * sizeof(*c->items));
    }
    size_t s = c->slots++;
    c->items[s * w] = (coll_str_t){key ? key : "", klen};
    c->bytes += klen;
    if (w == 2) {
        c->items[s * w + 1] = (coll_str_t){val ? val : "", vlen};
        c->bytes += vlen;
    }
    c->count++;
    if (c->idx) {
        if (c->slots * 2 > c->idx_cap)
            idx_build(c, c->slots);
        else
            idx_insert(c, s);
    }
}

int coll_put(coll_t *c, const char *key, size_t klen, const char *val, size_t vlen)
{
    long s = coll_find(c, key, klen);
    if (s < 0) {
        append(c, key, klen, val, vlen);
        return 1;
    }
    if (c->type == COLL_HASH) {
        coll_str_t *v = &c->items[(size_t)s * 2 + 1];
        c->bytes = c->bytes - v->len + vlen;
        *v = (coll_str_t){val ? val : "", vlen};
    }
    return 0;
}

int coll_remove(coll_t *c, const char *key, size_t klen)
{
    long s = coll_find(c, key, klen);
    if (s < 0)
        return 0;
    size_t w = coll_width(c);
    for (size_t i = 0; i < w; i++)
        c->bytes -= c->items[(size_t)s * w + i].len;
    c->items[(size_t)s * w].p = NULL; /* a hole; the index still leads here */
    c->count--;
    return 1;
}

const char *coll_keep(coll_t *c, const char *s, size_t len)
{
    if (c->nkept == c->kept_cap) {
        c->kept_cap = c->kept_cap ? c->kept_cap * 2 : 4;
        c->kept = xrealloc(c->kept, c->kept_cap * sizeof(*c->kept));
    }
    char *copy = xmalloc(len + 1);
    memcpy(copy, s, len);
    copy[len] = '\0';
    c->kept[c->nkept++] = copy;
    return copy;
}

int coll_decode(coll_t *c, const char *bytes, size_t len)
{
    coll_hdr_t h;
    coll_iter_t it;
    if (coll_hdr(bytes, len, &h) < 0 || coll_iter_init(&it, bytes, len) < 0)
        return -1;
    coll_init(c, h.type);
    c->flags = h.flags;
    size_t w = coll_width(c);
    c->cap = h.count ? h.count : 1;
    c->items = xmalloc(c->cap * w * sizeof(*c->items));
    for (size_t s = 0; s < h.count; s++) {
        for (size_t i = 0; i < w; i++) {
            if (coll_iter_next(&it, &c->items[s * w + i]) != 1) {
                coll_free(c);
                return -1;
            }
            c->bytes += c->items[s * w + i].len;
        }
        c->slots++;
        c->count++;
    }
    return 0;
}

/* --------------------------------------------------------------- encode */

size_t coll_encoded_len(const coll_t *c)
{
    size_t w = coll_width(c), n = HDR_FIXED + varint_len(c->count);
    for (size_t s = 0; s < c->slots; s++) {
        if (!c->items[s * w].p)
            continue;
        for (size_t i = 0; i < w; i++)
            n += varint_len(c->items[s * w + i].len) + c->items[s * w + i].len;
    }
    return n;
}

typedef struct int_member {
    long long v;
    const coll_str_t *s;
} int_member_t;

static int int_member_cmp(const void *a, const void *b)
{
    long long x = ((const int_member_t *)a)->v, y = ((const int_member_t *)b)->v;
    return (x > y) - (x < y);
}

static size_t put_str(unsigned char *p, const coll_str_t *s)
{
    size_t n = varint_put(p, s->len);
    if (s->len)
        memcpy(p + n, s->p, s->len);
    return n + s->len;
}

char *coll_encode(const coll_t *c, size_t *len)
{
    size_t total = coll_encoded_len(c), w = coll_width(c), o = 0;
    unsigned char *p = xmalloc(total ? total : 1);
    p[o++] = COLL_VERSION;
    p[o++] = (unsigned char)c->type;
    p[o++] = (unsigned char)c->flags;
    o += varint_put(p + o, c->count);
    if (c->flags & COLL_F_INTSET) {
        int_member_t *m = xmalloc((c->count ? c->count : 1) * sizeof(*m));
        size_t k = 0;
        for (size_t s = 0; s < c->slots; s++) {
            if (!c->items[s].p)
                continue;
            int ok = coll_is_int(c->items[s].p, c->items[s].len, &m[k].v);
            assert(ok); /* the command layer sets INTSET only over integers */
            (void)ok;
            m[k++].s = &c->items[s];
        }
        qsort(m, k, sizeof(*m), int_member_cmp);
        for (size_t i = 0; i < k; i++)
            o += put_str(p + o, m[i].s);
        free(m);
    } else {
        for (size_t s = 0; s < c->slots; s++) {
            if (!c->items[s * w].p)
                continue;
            for (size_t i = 0; i < w; i++)
                o += put_str(p + o, &c->items[s * w + i]);
        }
    }
    assert(o == total);
    *len = total;
    return (char *)p;
}

/* ------------------------------------------------------ one-entry write */

char *coll_put_bytes(const char *bytes, size_t len, const char *key, size_t klen,
                     const char *val, size_t vlen, int flags, size_t *outlen, int *added)
{
    coll_hdr_t h;
    coll_iter_t it;
    if (coll_hdr(bytes, len, &h) < 0 || (h.flags & COLL_F_INTSET) || (flags & COLL_F_INTSET) ||
        coll_iter_init(&it, bytes, len) < 0)
        return NULL;
    int hash = h.type == COLL_HASH;
    /* Where the old value's item starts and ends, when key is a field. */
    const char *vstart = NULL, *vend = NULL;
    coll_str_t s, v;
    int r;
    for (;;) {
        const char *item = it.p;
        if ((r = coll_iter_next(&it, &s)) != 1)
            break;
        const char *vitem = it.p;
        if (hash && coll_iter_next(&it, &v) != 1)
            return NULL;
        if (str_eq(&s, key, klen)) {
            vstart = hash ? vitem : item;
            vend = it.p;
            break;
        }
    }
    if (r < 0)
        return NULL;
    const char *body = bytes + h.body, *end = bytes + len;
    size_t count = h.count + (vstart == NULL);
    size_t total = HDR_FIXED + varint_len(count) + (size_t)(end - body);
    if (vstart && hash)
        total = total - (size_t)(vend - vstart) + varint_len(vlen) + vlen;
    else if (!vstart)
        total += varint_len(klen) + klen + (hash ? varint_len(vlen) + vlen : 0);
    unsigned char *p = xmalloc(total), *o = p;
    *o++ = COLL_VERSION;
    *o++ = (unsigned char)h.type;
    *o++ = (unsigned char)flags;
    o += varint_put(o, count);
    coll_str_t k = {key ? key : "", klen}, nv = {val ? val : "", vlen};
    if (vstart && hash) {
        memcpy(o, body, (size_t)(vstart - body));
        o += vstart - body;
        o += put_str(o, &nv);
        memcpy(o, vend, (size_t)(end - vend));
        o += end - vend;
    } else {
        memcpy(o, body, (size_t)(end - body));
        o += end - body;
        if (!vstart) {
            o += put_str(o, &k);
            if (hash)
                o += put_str(o, &nv);
        }
    }
    assert((size_t)(o - p) == total);
    *outlen = total;
    *added = vstart == NULL;
    return (char *)p;
}

void coll_set_flags(char *bytes, int flags)
{
    bytes[2] = (char)flags;
}

/* ------------------------------------------------------------- validate */

int coll_validate(const char *bytes, size_t len, char *err, size_t errlen)
{
    coll_hdr_t h;
    if (coll_hdr(bytes, len, &h) < 0) {
        errmsg(err, errlen, "bad collection header");
        return -1;
    }
    if (h.count == 0) {
        errmsg(err, errlen, "empty collection");
        return -1;
    }
    coll_t c;
    if (coll_decode(&c, bytes, len) < 0) {
        errmsg(err, errlen, "collection item runs past the end");
        return -1;
    }
    int rc = 0;
    size_t w = coll_width(&c);
    const coll_str_t *last = &c.items[(c.slots - 1) * w + w - 1];
    if (last->p + last->len != bytes + len) {
        errmsg(err, errlen, "bytes after the last item");
        rc = -1;
    }
    long long prev = 0;
    for (size_t s = 0; rc == 0 && s < c.slots; s++) {
        const coll_str_t *k = &c.items[s * w];
        if (h.flags & COLL_F_INTSET) {
            long long v;
            if (!coll_is_int(k->p, k->len, &v) || (s > 0 && v <= prev)) {
                errmsg(err, errlen, "intset member not an ascending integer");
                rc = -1;
            }
            prev = v;
        }
    }
    /* Duplicates: hash each key into a fresh index. */
    if (rc == 0) {
        coll_t d;
        coll_init(&d, c.type);
        for (size_t s = 0; s < c.slots && rc == 0; s++) {
            const coll_str_t *k = &c.items[s * w];
            if (coll_find(&d, k->p, k->len) >= 0) {
                errmsg(err, errlen, "duplicate %s", c.type == COLL_HASH ? "field" : "member");
                rc = -1;
            } else {
                append(&d, k->p, k->len, "", 0);
            }
        }
        coll_free(&d);
    }
    coll_free(&c);
    return rc;
}
