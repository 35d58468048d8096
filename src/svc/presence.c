/* presence: the presence table; see presence.h for what it owns, never does,
 * and its invariants.
 *
 * Layout, for memory (target: <= 200 bytes per entry per node at a million
 * entries; bench/pubsub_bench.py measures it):
 *  - a channel (chan_t) is allocated once with its name and holds an
 *    open-addressing table of its entries (linear probing, backward-shift
 *    deletion, load <= 3/4);
 *  - an entry (entry_t) is one allocation: a 32-byte head, then the member
 *    name and the metadata bytes;
 *  - the channels are in one open-addressing table keyed by name;
 *  - owned entries with a TTL are in a binary min-heap by expiry time (each
 *    entry knows its heap slot).
 * Nothing here walks the whole table on a command's path: join, leave and
 * count are O(1) on average, list is O(channel), expiry O(log n) per entry;
 * only a member's full set, death or restart walks every entry. */
#include "presence.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "mem.h"

typedef struct chan chan_t;

typedef struct entry {
    chan_t *chan;
    int64_t expire;  /* owned with a TTL: when (the caller's clock); 0: never */
    uint32_t hash;   /* of member and origin */
    uint32_t heap;   /* slot in the expiry heap + 1; 0: not in it */
    uint16_t origin; /* 0: this node; else member index + 1 */
    uint8_t gen;     /* the origin's generation when last set (sync) */
    uint8_t unused;
    uint16_t mlen;
    uint16_t metalen;
    char data[]; /* member, then metadata */
} entry_t;
_Static_assert(sizeof(entry_t) == 32, "entry head stays 32 bytes");

struct chan {
    uint64_t hash;
    entry_t **slots; /* cap slots, NULL: empty */
    uint32_t cap;    /* power of two (0: no table yet) */
    uint32_t n;      /* entries */
    uint32_t len;
    char name[];
};

struct presence {
    chan_t **chans; /* open addressing by name */
    size_t ccap, nchans;
    entry_t **heap; /* owned entries with a TTL, by expire */
    size_t heap_len, heap_cap;
    uint8_t gen[PRESENCE_MAX_ORIGINS + 1]; /* by stored origin */
    size_t entries, owned, max_owned;
    size_t bytes; /* allocated for entries, channels and tables */
    presence_event_fn ev;
    presence_change_fn change;
    void *ud;
};

static uint16_t stored_origin(int origin)
{
    return origin == PRESENCE_SELF ? 0 : (uint16_t)(origin + 1);
}

static int public_origin(uint16_t o)
{
    return o == 0 ? PRESENCE_SELF : (int)o - 1;
}

static uint32_t entry_hash(const char *member, size_t mlen, uint16_t origin)
{
    return (uint32_t)XXH3_64bits_withSeed(member, mlen, origin);
}

static const char *entry_meta(const entry_t *e)
{
    return e->data + e->mlen;
}

/* ---- events -------------------------------------------------------------- */

static void emit(presence_t *p, int kind, int reason, const entry_t *e)
{
    if (!p->ev)
        return;
    presence_event_t ev = {kind,           reason, public_origin(e->origin), e->chan->name,
                           e->chan->len,   e->data, e->mlen,                  entry_meta(e),
                           e->metalen};
    if (kind == PRESENCE_EV_LEAVE) {
        ev.meta = NULL;
        ev.metalen = 0;
    }
    p->ev(p->ud, &ev);
}

static void tell_members(presence_t *p, int op, const entry_t *e)
{
    if (p->change && e->origin == 0)
        p->change(p->ud, op, e->chan->name, e->chan->len, e->data, e->mlen, entry_meta(e),
                  op == PRESENCE_OP_JOIN ? e->metalen : 0);
}

/* ---- the expiry heap ------------------------------------------------------ */

static void heap_place(presence_t *p, size_t i, entry_t *e)
{
    p->heap[i] = e;
    e->heap = (uint32_t)(i + 1);
}

static void heap_up(presence_t *p, size_t i)
{
    entry_t *e = p->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (p->heap[parent]->expire <= e->expire)
            break;
        heap_place(p, i, p->heap[parent]);
        i = parent;
    }
    heap_place(p, i, e);
}

static void heap_down(presence_t *p, size_t i)
{
    entry_t *e = p->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= p->heap_len)
            break;
        if (c + 1 < p->heap_len && p->heap[c + 1]->expire < p->heap[c]->expire)
            c++;
        if (p->heap[c]->expire >= e->expire)
            break;
        heap_place(p, i, p->heap[c]);
        i = c;
    }
    heap_place(p, i, e);
}

static void heap_add(presence_t *p, entry_t *e)
{
    if (p->heap_len == p->heap_cap) {
        size_t cap = p->heap_cap ? p->heap_cap * 2 : 64;
        p->bytes += (cap - p->heap_cap) * sizeof(entry_t *);
        p->heap = xrealloc(p->heap, cap * sizeof(entry_t *));
        p->heap_cap = cap;
    }
    p->heap[p->heap_len++] = e;
    heap_up(p, p->heap_len - 1);
}

static void heap_remove(presence_t *p, entry_t *e)
{
    assert(e->heap > 0 && p->heap[e->heap - 1] == e);
    size_t i = e->heap - 1;
    e->heap = 0;
    entry_t *last = p->heap[--p->heap_len];
    if (last != e) {
        heap_place(p, i, last);
        heap_up(p, i);
        heap_down(p, last->heap - 1);
    }
    if (p->heap_cap > 64 && p->heap_len < p->heap_cap / 4) { /* give memory back */
        p->bytes -= (p->heap_cap / 2) * sizeof(entry_t *);
        p->heap_cap /= 2;
        p->heap = xrealloc(p->heap, p->heap_cap * sizeof(entry_t *));
    }
}

/* Sets e's expiry time (0: never), moving it in, out of or within the heap. */
static void heap_set(presence_t *p, entry_t *e, int64_t expire)
{
    e->expire = expire;
    if (!expire) {
        if (e->heap)
            heap_remove(p, e);
    } else if (e->heap) {
        heap_up(p, e->heap - 1);
        heap_down(p, e->heap - 1);
    } else {
        heap_add(p, e);
    }
}

/* ---- a channel's entries --------------------------------------------------- */

/* The slot of (member, origin) in c, or of the empty slot where it goes. */
static size_t chan_find(const chan_t *c, const char *member, size_t mlen, uint16_t origin,
                        uint32_t h)
{
    size_t mask = c->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const entry_t *e = c->slots[i];
        if (!e || (e->hash == h && e->origin == origin && e->mlen == mlen &&
                   memcmp(e->data, member, mlen) == 0))
            return i;
    }
}

static void chan_grow(presence_t *p, chan_t *c)
{
    uint32_t cap = c->cap ? c->cap * 2 : 4;
    entry_t **old = c->slots;
    uint32_t ocap = c->cap;
    c->slots = xcalloc(cap, sizeof(entry_t *));
    c->cap = cap;
    p->bytes += (size_t)(cap - ocap) * sizeof(entry_t *);
    for (uint32_t i = 0; i < ocap; i++) {
        entry_t *e = old[i];
        if (!e)
            continue;
        size_t j = e->hash & (cap - 1);
        while (c->slots[j])
            j = (j + 1) & (cap - 1);
        c->slots[j] = e;
    }
    free(old);
}

/* Removes slot i of c (backward-shift deletion: no tombstones). */
static void chan_delete_slot(chan_t *c, size_t i)
{
    size_t mask = c->cap - 1;
    c->slots[i] = NULL;
    c->n--;
    for (size_t j = (i + 1) & mask; c->slots[j]; j = (j + 1) & mask) {
        size_t home = c->slots[j]->hash & mask;
        /* move j into the hole i unless its home lies cyclically in (i, j] */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        c->slots[i] = c->slots[j];
        c->slots[j] = NULL;
        i = j;
    }
}

/* ---- the channels ------------------------------------------------------------ */

static size_t chans_find(const presence_t *p, const char *name, size_t len, uint64_t h)
{
    size_t mask = p->ccap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const chan_t *c = p->chans[i];
        if (!c || (c->hash == h && c->len == len && memcmp(c->name, name, len) == 0))
            return i;
    }
}

static chan_t *chan_get(const presence_t *p, const char *name, size_t len)
{
    if (!p->nchans)
        return NULL;
    return p->chans[chans_find(p, name, len, XXH3_64bits(name, len))];
}

static void chans_grow(presence_t *p)
{
    size_t cap = p->ccap * 2;
    chan_t **old = p->chans;
    size_t ocap = p->ccap;
    p->chans = xcalloc(cap, sizeof(chan_t *));
    p->ccap = cap;
    p->bytes += (cap - ocap) * sizeof(chan_t *);
    for (size_t i = 0; i < ocap; i++)
        if (old[i])
            p->chans[chans_find(p, old[i]->name, old[i]->len, old[i]->hash)] = old[i];
    free(old);
}

static chan_t *chan_make(presence_t *p, const char *name, size_t len)
{
    uint64_t h = XXH3_64bits(name, len);
    if (p->nchans) {
        chan_t *c = p->chans[chans_find(p, name, len, h)];
        if (c)
            return c;
    }
    if ((p->nchans + 1) * 4 > p->ccap * 3)
        chans_grow(p);
    chan_t *c = xcalloc(1, sizeof(chan_t) + len + 1);
    c->hash = h;
    c->len = (uint32_t)len;
    memcpy(c->name, name, len);
    p->chans[chans_find(p, name, len, h)] = c;
    p->nchans++;
    p->bytes += sizeof(chan_t) + len + 1;
    return c;
}

static void chan_drop(presence_t *p, chan_t *c)
{
    size_t mask = p->ccap - 1;
    size_t i = chans_find(p, c->name, c->len, c->hash);
    assert(p->chans[i] == c);
    p->chans[i] = NULL;
    p->nchans--;
    for (size_t j = (i + 1) & mask; p->chans[j]; j = (j + 1) & mask) {
        size_t home = p->chans[j]->hash & mask;
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        p->chans[i] = p->chans[j];
        p->chans[j] = NULL;
        i = j;
    }
    p->bytes -= sizeof(chan_t) + c->len + 1 + (size_t)c->cap * sizeof(entry_t *);
    free(c->slots);
    free(c);
}

/* ---- entries ------------------------------------------------------------------- */

static size_t entry_size(size_t mlen, size_t metalen)
{
    return sizeof(entry_t) + mlen + metalen;
}

static entry_t *entry_new(chan_t *c, const char *member, size_t mlen, const char *meta,
                          size_t metalen, uint16_t origin, uint32_t h)
{
    entry_t *e = xmalloc(entry_size(mlen, metalen));
    memset(e, 0, sizeof(*e));
    e->chan = c;
    e->hash = h;
    e->origin = origin;
    e->mlen = (uint16_t)mlen;
    e->metalen = (uint16_t)metalen;
    memcpy(e->data, member, mlen);
    if (metalen)
        memcpy(e->data + mlen, meta, metalen);
    return e;
}

/* Unlinks the entry in slot i of its channel (and the channel if it empties)
 * and frees it, after the leave event. */
static void entry_remove(presence_t *p, entry_t *e, size_t slot, int reason)
{
    chan_t *c = e->chan;
    emit(p, PRESENCE_EV_LEAVE, reason, e);
    if (e->origin == 0 && reason != PRESENCE_NODE_GONE)
        tell_members(p, reason == PRESENCE_EXPIRED ? PRESENCE_OP_EXPIRE : PRESENCE_OP_LEAVE, e);
    if (e->heap)
        heap_remove(p, e);
    if (e->origin == 0)
        p->owned--;
    p->entries--;
    p->bytes -= entry_size(e->mlen, e->metalen);
    chan_delete_slot(c, slot);
    free(e);
    if (c->n == 0)
        chan_drop(p, c);
}

typedef struct put_result {
    entry_t *e;
    int created; /* 1 new, 0 existing (meta maybe replaced) */
    int changed; /* meta differs from before (or new) */
} put_result_t;

/* Sets (ch, member, origin) to meta: creates it or replaces its metadata. */
static put_result_t entry_put(presence_t *p, const char *ch, size_t chlen, const char *member,
                              size_t mlen, const char *meta, size_t metalen, uint16_t origin)
{
    chan_t *c = chan_make(p, ch, chlen);
    if ((c->n + 1) * 4 > c->cap * 3)
        chan_grow(p, c);
    uint32_t h = entry_hash(member, mlen, origin);
    size_t i = chan_find(c, member, mlen, origin, h);
    entry_t *old = c->slots[i];
    put_result_t r = {old, 0, 0};
    if (old && old->metalen == metalen && memcmp(entry_meta(old), meta, metalen) == 0)
        return r;
    entry_t *e = entry_new(c, member, mlen, meta, metalen, origin, h);
    p->bytes += entry_size(mlen, metalen);
    c->slots[i] = e;
    if (old) {
        e->expire = old->expire;
        e->gen = old->gen;
        if (old->heap) {
            heap_place(p, old->heap - 1, e);
            old->heap = 0;
        }
        p->bytes -= entry_size(old->mlen, old->metalen);
        free(old);
    } else {
        c->n++;
        p->entries++;
        if (origin == 0)
            p->owned++;
        r.created = 1;
    }
    r.e = e;
    r.changed = 1;
    return r;
}

static int check_lengths(size_t chlen, size_t mlen, size_t metalen, char *err, size_t errlen)
{
    const char *what = NULL;
    if (chlen == 0)
        what = "ERR presence channel name is empty";
    else if (chlen > PRESENCE_MAX_CHANNEL)
        what = "ERR presence channel name longer than 1024 bytes";
    else if (mlen == 0)
        what = "ERR presence member name is empty";
    else if (mlen > PRESENCE_MAX_MEMBER)
        what = "ERR presence member name longer than 512 bytes";
    else if (metalen > PRESENCE_MAX_META)
        what = "ERR presence metadata longer than 4096 bytes";
    if (!what)
        return 0;
    if (err)
        snprintf(err, errlen, "%s", what);
    return -1;
}

/* ---- the public functions ---------------------------------------------------- */

presence_t *presence_new(size_t max_owned)
{
    presence_t *p = xcalloc(1, sizeof(*p));
    p->ccap = 16;
    p->chans = xcalloc(p->ccap, sizeof(chan_t *));
    p->max_owned = max_owned;
    p->bytes = sizeof(*p) + p->ccap * sizeof(chan_t *);
    return p;
}

void presence_free(presence_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->ccap; i++) {
        chan_t *c = p->chans[i];
        if (!c)
            continue;
        for (uint32_t j = 0; j < c->cap; j++)
            free(c->slots[j]);
        free(c->slots);
        free(c);
    }
    free(p->chans);
    free(p->heap);
    free(p);
}

void presence_set_hooks(presence_t *p, presence_event_fn ev, presence_change_fn change, void *ud)
{
    p->ev = ev;
    p->change = change;
    p->ud = ud;
}

int presence_join(presence_t *p, const char *ch, size_t chlen, const char *member, size_t mlen,
                  const char *meta, size_t metalen, int64_t ttl_ms, int64_t now_ms, char *err,
                  size_t errlen)
{
    if (check_lengths(chlen, mlen, metalen, err, errlen) < 0)
        return -1;
    if (p->max_owned && p->owned >= p->max_owned) {
        chan_t *c = chan_get(p, ch, chlen);
        uint32_t h = entry_hash(member, mlen, 0);
        if (!c || !c->slots[chan_find(c, member, mlen, 0, h)]) {
            snprintf(err, errlen,
                     "ERR this node holds the most presence entries it may "
                     "(presence_max_entries %zu)",
                     p->max_owned);
            return -1;
        }
    }
    put_result_t r = entry_put(p, ch, chlen, member, mlen, meta, metalen, 0);
    heap_set(p, r.e, ttl_ms > 0 ? now_ms + ttl_ms : 0);
    if (r.changed) {
        emit(p, r.created ? PRESENCE_EV_JOIN : PRESENCE_EV_UPDATE, 0, r.e);
        tell_members(p, PRESENCE_OP_JOIN, r.e);
    }
    return r.created;
}

/* Removes (ch, member, origin) with reason. Returns 1, or 0 when absent. */
static int remove_one(presence_t *p, const char *ch, size_t chlen, const char *member,
                      size_t mlen, uint16_t origin, int reason)
{
    chan_t *c = chan_get(p, ch, chlen);
    if (!c)
        return 0;
    size_t i = chan_find(c, member, mlen, origin, entry_hash(member, mlen, origin));
    if (!c->slots[i])
        return 0;
    entry_remove(p, c->slots[i], i, reason);
    return 1;
}

int presence_leave(presence_t *p, const char *ch, size_t chlen, const char *member, size_t mlen)
{
    return remove_one(p, ch, chlen, member, mlen, 0, PRESENCE_LEFT);
}

size_t presence_count(const presence_t *p, const char *ch, size_t chlen)
{
    const chan_t *c = chan_get(p, ch, chlen);
    return c ? c->n : 0;
}

size_t presence_list(const presence_t *p, const char *ch, size_t chlen, presence_visit_fn fn,
                     void *ud)
{
    const chan_t *c = chan_get(p, ch, chlen);
    size_t n = 0;
    for (uint32_t i = 0; c && i < c->cap; i++) {
        const entry_t *e = c->slots[i];
        if (!e)
            continue;
        fn(ud, c->name, c->len, e->data, e->mlen, entry_meta(e), e->metalen,
           public_origin(e->origin));
        n++;
    }
    return n;
}

/* Removes e wherever it sits in its channel. */
static void remove_entry(presence_t *p, entry_t *e, int reason)
{
    chan_t *c = e->chan;
    size_t i = chan_find(c, e->data, e->mlen, e->origin, e->hash);
    assert(c->slots[i] == e);
    entry_remove(p, e, i, reason);
}

size_t presence_expire(presence_t *p, int64_t now_ms, size_t max)
{
    size_t n = 0;
    while (n < max && p->heap_len && p->heap[0]->expire <= now_ms) {
        remove_entry(p, p->heap[0], PRESENCE_EXPIRED);
        n++;
    }
    return n;
}

int presence_apply(presence_t *p, int origin, int op, const char *ch, size_t chlen,
                   const char *member, size_t mlen, const char *meta, size_t metalen)
{
    if (origin < 0 || origin >= PRESENCE_MAX_ORIGINS ||
        check_lengths(chlen, mlen, metalen, NULL, 0) < 0)
        return -1;
    uint16_t o = stored_origin(origin);
    if (op == PRESENCE_OP_LEAVE || op == PRESENCE_OP_EXPIRE) {
        remove_one(p, ch, chlen, member, mlen, o,
                   op == PRESENCE_OP_EXPIRE ? PRESENCE_EXPIRED : PRESENCE_LEFT);
        return 0;
    }
    if (op != PRESENCE_OP_JOIN)
        return -1;
    put_result_t r = entry_put(p, ch, chlen, member, mlen, meta, metalen, o);
    r.e->gen = p->gen[o];
    if (r.changed)
        emit(p, r.created ? PRESENCE_EV_JOIN : PRESENCE_EV_UPDATE, 0, r.e);
    return 0;
}

typedef int (*entry_pred)(const presence_t *p, const entry_t *e, uint16_t origin);

/* Removes every entry pred selects, with reason; returns how many. The
 * entries are collected first, so events run while no table is walked. */
static size_t remove_where(presence_t *p, entry_pred pred, uint16_t origin, int reason)
{
    entry_t **doomed = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < p->ccap; i++) {
        chan_t *c = p->chans[i];
        for (uint32_t j = 0; c && j < c->cap; j++) {
            entry_t *e = c->slots[j];
            if (!e || !pred(p, e, origin))
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                doomed = xrealloc(doomed, cap * sizeof(*doomed));
            }
            doomed[n++] = e;
        }
    }
    for (size_t i = 0; i < n; i++)
        remove_entry(p, doomed[i], reason);
    free(doomed);
    return n;
}

static int of_origin(const presence_t *p, const entry_t *e, uint16_t origin)
{
    (void)p;
    return e->origin == origin;
}

static int stale(const presence_t *p, const entry_t *e, uint16_t origin)
{
    return e->origin == origin && e->gen != p->gen[origin];
}

void presence_sync_begin(presence_t *p, int origin)
{
    if (origin >= 0 && origin < PRESENCE_MAX_ORIGINS)
        p->gen[stored_origin(origin)]++;
}

size_t presence_sync_end(presence_t *p, int origin)
{
    if (origin < 0 || origin >= PRESENCE_MAX_ORIGINS)
        return 0;
    return remove_where(p, stale, stored_origin(origin), PRESENCE_RESYNC);
}

size_t presence_drop_origin(presence_t *p, int origin)
{
    if (origin < 0 || origin >= PRESENCE_MAX_ORIGINS)
        return 0;
    return remove_where(p, of_origin, stored_origin(origin), PRESENCE_NODE_GONE);
}

void presence_foreach_owned(const presence_t *p, presence_visit_fn fn, void *ud)
{
    for (size_t i = 0; i < p->ccap; i++) {
        const chan_t *c = p->chans[i];
        for (uint32_t j = 0; c && j < c->cap; j++) {
            const entry_t *e = c->slots[j];
            if (e && e->origin == 0)
                fn(ud, c->name, c->len, e->data, e->mlen, entry_meta(e), e->metalen,
                   PRESENCE_SELF);
        }
    }
}

size_t presence_entries(const presence_t *p)
{
    return p->entries;
}

size_t presence_owned(const presence_t *p)
{
    return p->owned;
}

size_t presence_channels(const presence_t *p)
{
    return p->nchans;
}

size_t presence_memory(const presence_t *p)
{
    return p->bytes;
}

static void json_str(buf_t *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    buf_append(out, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        buf_append(out, s + run, i - run);
        run = i + 1;
        if (ch == '"' || ch == '\\') {
            char esc[2] = {'\\', (char)ch};
            buf_append(out, esc, 2);
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            buf_append(out, esc, 6);
        }
    }
    buf_append(out, s + run, len - run);
    buf_append(out, "\"", 1);
}

void presence_event_json(const presence_event_t *ev, const char *node, buf_t *out)
{
    static const char *const kinds[] = {"join", "update", "leave"};
    static const char *const reasons[] = {"left", "expired", "node_gone", "resync"};
    buf_append_str(out, "{\"event\":\"");
    buf_append_str(out, kinds[ev->kind]);
    buf_append_str(out, "\",\"channel\":");
    json_str(out, ev->ch, ev->chlen);
    buf_append_str(out, ",\"member\":");
    json_str(out, ev->member, ev->mlen);
    buf_append_str(out, ",\"node\":");
    json_str(out, node, strlen(node));
    if (ev->kind == PRESENCE_EV_LEAVE) {
        buf_append_str(out, ",\"reason\":\"");
        buf_append_str(out, reasons[ev->reason]);
        buf_append_str(out, "\"}");
    } else {
        buf_append_str(out, ",\"meta\":");
        json_str(out, ev->meta, ev->metalen);
        buf_append_str(out, "}");
    }
}
