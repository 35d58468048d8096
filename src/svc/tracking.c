/* tracking: client-side caching; see tracking.h for what it owns, what it
 * never does and its invariants. */
#include "tracking.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "mem.h"
#include "resp.h"

/* A key with the ids of the connections to tell (the tracking table), or a
 * key changed this turn with the id of the connection that changed it (the
 * BCAST set: ids[0], 0 when several did). */
typedef struct tkey {
    struct tkey *hnext;
    struct tkey *prev, *next; /* insertion order: the oldest goes first at the limit */
    uint64_t hash;
    uint64_t *ids;
    uint32_t nids, cap;
    uint32_t klen;
    char key[];
} tkey_t;

typedef struct ktab {
    tkey_t **b;
    size_t size, count;
    tkey_t *head, *tail;
} ktab_t;

typedef struct tclient tclient_t;

typedef struct tprefix {
    struct tprefix *next;
    char *p;
    size_t plen;
    tclient_t **clients;
    size_t n, cap;
} tprefix_t;

struct tclient {
    client_t *c;
    int flags;
    uint64_t redir_id;
    client_t *redir;          /* NULL once the target closed */
    size_t targeted_by;       /* connections redirecting here */
    char **prefixes;          /* BCAST, sorted */
    size_t *plens;
    size_t nprefixes;
    buf_t pending;            /* bulk strings of the keys to send */
    size_t npending;
    int pending_null;         /* a flush of everything: the null invalidation */
    int dirty;                /* in t->dirty */
    tclient_t *dnext;
    tclient_t *prev, *next;   /* t->clients: tracking is on */
    tclient_t *idnext;        /* t->byid bucket chain */
};

struct tracking {
    size_t max_keys;
    tracking_wake_fn wake;
    ktab_t table;     /* default mode */
    ktab_t changed;   /* BCAST: keys changed this turn */
    tprefix_t *prefixes;
    size_t nprefixes;
    tclient_t *clients;
    tclient_t *dirty;
    tclient_t **byid;
    size_t byid_size;
    client_t *current;
    int degraded;  /* tracking_set_degraded */
    size_t memory; /* bytes held, besides the structure itself */
    tracking_stats_t stats;
};

static const uint64_t HASH_SEED = 0x9e3779b97f4a7c15ull;

/* ---- the key table -------------------------------------------------------- */

static void ktab_resize(tracking_t *t, ktab_t *k, size_t size)
{
    tkey_t **nb = xcalloc(size, sizeof(*nb));
    for (size_t i = 0; i < k->size; i++) {
        tkey_t *e = k->b[i];
        while (e) {
            tkey_t *nx = e->hnext;
            size_t j = e->hash & (size - 1);
            e->hnext = nb[j];
            nb[j] = e;
            e = nx;
        }
    }
    t->memory -= k->size * sizeof(*k->b);
    t->memory += size * sizeof(*nb);
    free(k->b);
    k->b = nb;
    k->size = size;
}

static tkey_t **ktab_link(const ktab_t *k, const char *key, size_t klen, uint64_t h)
{
    if (!k->size)
        return NULL;
    tkey_t **l = &k->b[h & (k->size - 1)];
    for (; *l; l = &(*l)->hnext)
        if ((*l)->hash == h && (*l)->klen == klen && memcmp((*l)->key, key, klen) == 0)
            return l;
    return NULL;
}

/* The entry of key, made if missing. Returns it (owned by the table). */
static tkey_t *ktab_get(tracking_t *t, ktab_t *k, const char *key, size_t klen)
{
    uint64_t h = XXH3_64bits_withSeed(key, klen, HASH_SEED);
    tkey_t **l = ktab_link(k, key, klen, h);
    if (l)
        return *l;
    if (k->count >= k->size)
        ktab_resize(t, k, k->size ? k->size * 2 : 16);
    tkey_t *e = xcalloc(1, sizeof(*e) + klen);
    memcpy(e->key, key, klen);
    e->klen = (uint32_t)klen;
    e->hash = h;
    size_t i = h & (k->size - 1);
    e->hnext = k->b[i];
    k->b[i] = e;
    e->prev = k->tail;
    if (k->tail)
        k->tail->next = e;
    else
        k->head = e;
    k->tail = e;
    k->count++;
    t->memory += sizeof(*e) + klen;
    return e;
}

static void ktab_del(tracking_t *t, ktab_t *k, tkey_t *e)
{
    tkey_t **l = &k->b[e->hash & (k->size - 1)];
    while (*l != e)
        l = &(*l)->hnext;
    *l = e->hnext;
    if (e->prev)
        e->prev->next = e->next;
    else
        k->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        k->tail = e->prev;
    k->count--;
    t->memory -= sizeof(*e) + e->klen + e->cap * sizeof(uint64_t);
    free(e->ids);
    free(e);
}

static void ktab_clear(tracking_t *t, ktab_t *k)
{
    while (k->head)
        ktab_del(t, k, k->head);
}

static void ktab_free(tracking_t *t, ktab_t *k)
{
    ktab_clear(t, k);
    t->memory -= k->size * sizeof(*k->b);
    free(k->b);
    memset(k, 0, sizeof(*k));
}

/* Adds id to e unless present. Returns 1 when added. */
static int tkey_add_id(tracking_t *t, tkey_t *e, uint64_t id)
{
    for (uint32_t i = 0; i < e->nids; i++)
        if (e->ids[i] == id)
            return 0;
    if (e->nids == e->cap) {
        uint32_t cap = e->cap ? e->cap * 2 : 2;
        e->ids = xrealloc(e->ids, cap * sizeof(uint64_t));
        t->memory += (cap - e->cap) * sizeof(uint64_t);
        e->cap = cap;
    }
    e->ids[e->nids++] = id;
    return 1;
}

/* ---- clients by id ---------------------------------------------------------- */

static size_t id_slot(const tracking_t *t, uint64_t id)
{
    return (size_t)(id * 0x9e3779b97f4a7c15ull >> 20) & (t->byid_size - 1);
}

static void byid_add(tracking_t *t, tclient_t *tc)
{
    if (t->stats.clients + 1 > t->byid_size) {
        size_t size = t->byid_size ? t->byid_size * 2 : 16;
        tclient_t **nb = xcalloc(size, sizeof(*nb));
        size_t old = t->byid_size;
        tclient_t **ob = t->byid;
        t->byid = nb;
        t->byid_size = size;
        for (size_t i = 0; i < old; i++) {
            tclient_t *x = ob[i];
            while (x) {
                tclient_t *nx = x->idnext;
                size_t j = id_slot(t, x->c->id);
                x->idnext = nb[j];
                nb[j] = x;
                x = nx;
            }
        }
        t->memory += (size - old) * sizeof(*nb);
        free(ob);
    }
    size_t j = id_slot(t, tc->c->id);
    tc->idnext = t->byid[j];
    t->byid[j] = tc;
}

static void byid_del(tracking_t *t, tclient_t *tc)
{
    tclient_t **l = &t->byid[id_slot(t, tc->c->id)];
    while (*l != tc)
        l = &(*l)->idnext;
    *l = tc->idnext;
}

static tclient_t *byid_find(const tracking_t *t, uint64_t id)
{
    if (!t->byid_size)
        return NULL;
    for (tclient_t *x = t->byid[id_slot(t, id)]; x; x = x->idnext)
        if (x->c->id == id)
            return x;
    return NULL;
}

/* ---- per-client state ---------------------------------------------------- */

static tclient_t *state_of(tracking_t *t, client_t *c)
{
    if (!c->tracking) {
        tclient_t *tc = xcalloc(1, sizeof(*tc));
        tc->c = c;
        buf_init(&tc->pending);
        c->tracking = tc;
        t->memory += sizeof(*tc);
    }
    return c->tracking;
}

static void drop_pending(tracking_t *t, tclient_t *tc)
{
    t->memory -= buf_alloc_size(&tc->pending);
    buf_free(&tc->pending);
    buf_init(&tc->pending);
    tc->npending = 0;
    tc->pending_null = 0;
}

/* Frees c's state once it neither tracks nor is a redirect target. */
static void maybe_release(tracking_t *t, client_t *c)
{
    tclient_t *tc = c->tracking;
    if (!tc || (tc->flags & TRACKING_ON) || tc->targeted_by || tc->dirty)
        return;
    drop_pending(t, tc);
    t->memory -= sizeof(*tc);
    free(tc);
    c->tracking = NULL;
}

static void mark_dirty(tracking_t *t, tclient_t *tc)
{
    if (tc->dirty)
        return;
    tc->dirty = 1;
    tc->dnext = t->dirty;
    t->dirty = tc;
}

static void add_pending(tracking_t *t, tclient_t *tc, const char *key, size_t klen)
{
    size_t before = buf_alloc_size(&tc->pending);
    resp_add_bulk(&tc->pending, key, klen);
    t->memory += buf_alloc_size(&tc->pending) - before;
    tc->npending++;
    mark_dirty(t, tc);
}

/* ---- prefixes ------------------------------------------------------------ */

static tprefix_t *prefix_find(const tracking_t *t, const char *p, size_t plen)
{
    for (tprefix_t *x = t->prefixes; x; x = x->next)
        if (x->plen == plen && memcmp(x->p, p, plen) == 0)
            return x;
    return NULL;
}

static void prefix_join(tracking_t *t, tclient_t *tc, const char *p, size_t plen)
{
    tprefix_t *x = prefix_find(t, p, plen);
    if (!x) {
        x = xcalloc(1, sizeof(*x));
        x->p = xmalloc(plen ? plen : 1);
        memcpy(x->p, p, plen);
        x->plen = plen;
        x->next = t->prefixes;
        t->prefixes = x;
        t->nprefixes++;
        t->memory += sizeof(*x) + plen;
    }
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 4;
        x->clients = xrealloc(x->clients, cap * sizeof(*x->clients));
        t->memory += (cap - x->cap) * sizeof(*x->clients);
        x->cap = cap;
    }
    x->clients[x->n++] = tc;
}

static void prefix_leave(tracking_t *t, tclient_t *tc, const char *p, size_t plen)
{
    tprefix_t **l = &t->prefixes;
    while (*l && !((*l)->plen == plen && memcmp((*l)->p, p, plen) == 0))
        l = &(*l)->next;
    if (!*l)
        return;
    tprefix_t *x = *l;
    for (size_t i = 0; i < x->n; i++)
        if (x->clients[i] == tc) {
            x->clients[i] = x->clients[--x->n];
            break;
        }
    if (x->n)
        return;
    *l = x->next;
    t->nprefixes--;
    t->memory -= sizeof(*x) + x->plen + x->cap * sizeof(*x->clients);
    free(x->clients);
    free(x->p);
    free(x);
}

/* 1 when a and b overlap: one is a prefix of the other. */
static int overlaps(const char *a, size_t alen, const char *b, size_t blen)
{
    return memcmp(a, b, alen < blen ? alen : blen) == 0;
}

static int prefix_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int r = memcmp(a, b, alen < blen ? alen : blen);
    return r ? r : (alen > blen) - (alen < blen);
}

/* Adds a prefix to the client's sorted list (no duplicates). */
static void client_add_prefix(tracking_t *t, tclient_t *tc, const char *p, size_t plen)
{
    size_t i = 0;
    while (i < tc->nprefixes && prefix_cmp(tc->prefixes[i], tc->plens[i], p, plen) < 0)
        i++;
    if (i < tc->nprefixes && prefix_cmp(tc->prefixes[i], tc->plens[i], p, plen) == 0)
        return;
    tc->prefixes = xrealloc(tc->prefixes, (tc->nprefixes + 1) * sizeof(*tc->prefixes));
    tc->plens = xrealloc(tc->plens, (tc->nprefixes + 1) * sizeof(*tc->plens));
    memmove(tc->prefixes + i + 1, tc->prefixes + i, (tc->nprefixes - i) * sizeof(*tc->prefixes));
    memmove(tc->plens + i + 1, tc->plens + i, (tc->nprefixes - i) * sizeof(*tc->plens));
    tc->prefixes[i] = xmalloc(plen ? plen : 1);
    memcpy(tc->prefixes[i], p, plen);
    tc->plens[i] = plen;
    tc->nprefixes++;
    t->memory += plen + sizeof(char *) + sizeof(size_t);
    prefix_join(t, tc, p, plen);
}

static void client_drop_prefixes(tracking_t *t, tclient_t *tc)
{
    for (size_t i = 0; i < tc->nprefixes; i++) {
        prefix_leave(t, tc, tc->prefixes[i], tc->plens[i]);
        t->memory -= tc->plens[i] + sizeof(char *) + sizeof(size_t);
        free(tc->prefixes[i]);
    }
    free(tc->prefixes);
    free(tc->plens);
    tc->prefixes = NULL;
    tc->plens = NULL;
    tc->nprefixes = 0;
}

/* ---- public API ---------------------------------------------------------- */

tracking_t *tracking_new(size_t max_keys, tracking_wake_fn wake)
{
    tracking_t *t = xcalloc(1, sizeof(*t));
    t->max_keys = max_keys;
    t->wake = wake;
    return t;
}

void tracking_free(tracking_t *t)
{
    if (!t)
        return;
    ktab_free(t, &t->table);
    ktab_free(t, &t->changed);
    free(t->byid);
    free(t);
}

void tracking_set_max_keys(tracking_t *t, size_t max_keys)
{
    t->max_keys = max_keys;
}

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return -1;
}

/* redis-server's checks of CLIENT TRACKING ON's options (networking.c). */
static int check_on(const tclient_t *tc, int opts, const char *const *prefixes,
                    const size_t *plens, size_t n, char *err, size_t errlen)
{
    int cur = tc ? tc->flags : 0;
    if (!(opts & TRACKING_BCAST) && n)
        return fail(err, errlen, "PREFIX option requires BCAST mode to be enabled");
    if ((cur & TRACKING_ON) && !!(cur & TRACKING_BCAST) != !!(opts & TRACKING_BCAST))
        return fail(err, errlen,
                    "You can't switch BCAST mode on/off before disabling tracking for this "
                    "client, and then re-enabling it with a different mode.");
    if ((opts & TRACKING_BCAST) && (opts & (TRACKING_OPTIN | TRACKING_OPTOUT)))
        return fail(err, errlen, "OPTIN and OPTOUT are not compatible with BCAST");
    if ((opts & TRACKING_OPTIN) && (opts & TRACKING_OPTOUT))
        return fail(err, errlen, "You can't specify both OPTIN mode and OPTOUT mode");
    if (((opts & TRACKING_OPTIN) && (cur & TRACKING_OPTOUT)) ||
        ((opts & TRACKING_OPTOUT) && (cur & TRACKING_OPTIN)))
        return fail(err, errlen,
                    "You can't switch OPTIN/OPTOUT mode before disabling tracking for this "
                    "client, and then re-enabling it with a different mode.");
    if (!(opts & TRACKING_BCAST))
        return 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; tc && j < tc->nprefixes; j++)
            if (overlaps(tc->prefixes[j], tc->plens[j], prefixes[i], plens[i])) {
                snprintf(err, errlen,
                         "Prefix '%.*s' overlaps with an existing prefix '%.*s'. Prefixes for "
                         "a single client must not overlap.",
                         (int)(plens[i] > 200 ? 200 : plens[i]), prefixes[i],
                         (int)(tc->plens[j] > 200 ? 200 : tc->plens[j]), tc->prefixes[j]);
                return -1;
            }
        for (size_t j = i + 1; j < n; j++)
            if (overlaps(prefixes[i], plens[i], prefixes[j], plens[j])) {
                snprintf(err, errlen,
                         "Prefix '%.*s' overlaps with another provided prefix '%.*s'. "
                         "Prefixes for a single client must not overlap.",
                         (int)(plens[i] > 200 ? 200 : plens[i]), prefixes[i],
                         (int)(plens[j] > 200 ? 200 : plens[j]), prefixes[j]);
                return -1;
            }
    }
    return 0;
}

static void set_redirect(tracking_t *t, tclient_t *tc, client_t *redir, uint64_t redir_id)
{
    if (tc->redir && tc->redir != redir) {
        tclient_t *old = tc->redir->tracking;
        old->targeted_by--;
        tc->redir = NULL;
        maybe_release(t, old->c);
    }
    if (redir && tc->redir != redir) {
        state_of(t, redir)->targeted_by++;
        tc->redir = redir;
    }
    tc->redir_id = redir ? redir_id : 0;
}

int tracking_on(tracking_t *t, client_t *c, int opts, client_t *redir, uint64_t redir_id,
                const char *const *prefixes, const size_t *plens, size_t n, char *err,
                size_t errlen)
{
    if (check_on(c->tracking, opts, prefixes, plens, n, err, errlen) < 0)
        return -1;
    tclient_t *tc = state_of(t, c);
    if (!(tc->flags & TRACKING_ON)) {
        tc->next = t->clients;
        if (t->clients)
            t->clients->prev = tc;
        t->clients = tc;
        tc->prev = NULL;
        t->stats.clients++;
        byid_add(t, tc);
    }
    tc->flags &= ~(TRACKING_BROKEN_REDIR | TRACKING_BCAST | TRACKING_OPTIN | TRACKING_OPTOUT |
                   TRACKING_NOLOOP);
    tc->flags |= TRACKING_ON | (opts & (TRACKING_BCAST | TRACKING_OPTIN | TRACKING_OPTOUT |
                                        TRACKING_NOLOOP));
    set_redirect(t, tc, redir, redir_id);
    if (opts & TRACKING_BCAST) {
        if (n == 0)
            client_add_prefix(t, tc, "", 0);
        for (size_t i = 0; i < n; i++)
            client_add_prefix(t, tc, prefixes[i], plens[i]);
    }
    return 0;
}

void tracking_off(tracking_t *t, client_t *c)
{
    tclient_t *tc = c->tracking;
    if (!tc || !(tc->flags & TRACKING_ON))
        return;
    client_drop_prefixes(t, tc);
    set_redirect(t, tc, NULL, 0);
    if (tc->prev)
        tc->prev->next = tc->next;
    else
        t->clients = tc->next;
    if (tc->next)
        tc->next->prev = tc->prev;
    tc->prev = tc->next = NULL;
    byid_del(t, tc);
    t->stats.clients--;
    tc->flags = 0;
    drop_pending(t, tc);
    maybe_release(t, c);
}

int tracking_caching(tracking_t *t, client_t *c, int yes, char *err, size_t errlen)
{
    (void)t;
    tclient_t *tc = c->tracking;
    if (!tc || !(tc->flags & TRACKING_ON))
        return fail(err, errlen,
                    "CLIENT CACHING can be called only when the client is in tracking mode "
                    "with OPTIN or OPTOUT mode enabled");
    if (yes && !(tc->flags & TRACKING_OPTIN))
        return fail(err, errlen,
                    "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.");
    if (!yes && !(tc->flags & TRACKING_OPTOUT))
        return fail(err, errlen,
                    "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.");
    tc->flags |= TRACKING_CACHING;
    return 0;
}

void tracking_command_done(tracking_t *t, client_t *c, int client_cmd)
{
    (void)t;
    tclient_t *tc = c->tracking;
    if (tc && !client_cmd)
        tc->flags &= ~TRACKING_CACHING;
}

/* Drops key e from the table, telling every tracking reader but the one
 * NOLOOP excludes. */
static void invalidate_entry(tracking_t *t, tkey_t *e, const client_t *by)
{
    for (uint32_t i = 0; i < e->nids; i++) {
        tclient_t *tc = byid_find(t, e->ids[i]);
        if (!tc || (tc->flags & TRACKING_BCAST))
            continue;
        if ((tc->flags & TRACKING_NOLOOP) && by && tc->c == by)
            continue;
        add_pending(t, tc, e->key, e->klen);
    }
    t->stats.items -= e->nids;
    ktab_del(t, &t->table, e);
}

void tracking_read(tracking_t *t, client_t *c, const char *key, size_t klen)
{
    tclient_t *tc = c->tracking;
    if (!tc || !(tc->flags & TRACKING_ON))
        return;
    if (t->degraded) { /* cannot vouch for what it read: drop it at once */
        drop_pending(t, tc);
        tc->pending_null = 1;
        mark_dirty(t, tc);
        return;
    }
    if (tc->flags & TRACKING_BCAST)
        return;
    int caching = tc->flags & TRACKING_CACHING;
    if (((tc->flags & TRACKING_OPTIN) && !caching) || ((tc->flags & TRACKING_OPTOUT) && caching))
        return;
    tkey_t *e = ktab_get(t, &t->table, key, klen);
    if (tkey_add_id(t, e, c->id))
        t->stats.items++;
    while (t->max_keys && t->table.count > t->max_keys) {
        t->stats.evicted_keys++;
        invalidate_entry(t, t->table.head, NULL);
    }
}

client_t *tracking_set_current(tracking_t *t, client_t *c)
{
    client_t *prev = t->current;
    t->current = c;
    return prev;
}

void tracking_key_changed(tracking_t *t, const char *key, size_t klen)
{
    if (!t->stats.clients)
        return;
    if (t->table.count) {
        tkey_t **l = ktab_link(&t->table, key, klen, XXH3_64bits_withSeed(key, klen, HASH_SEED));
        if (l)
            invalidate_entry(t, *l, t->current);
    }
    if (!t->nprefixes)
        return;
    for (tprefix_t *x = t->prefixes; x; x = x->next) {
        if (x->plen > klen || memcmp(x->p, key, x->plen) != 0)
            continue;
        tkey_t *e = ktab_get(t, &t->changed, key, klen);
        uint64_t by = t->current ? t->current->id : 0;
        if (e->nids == 0)
            tkey_add_id(t, e, by);
        else if (e->ids[0] != by)
            e->ids[0] = 0;
        return;
    }
}

void tracking_set_degraded(tracking_t *t, int degraded)
{
    if (degraded && !t->degraded)
        tracking_all_changed(t);
    t->degraded = degraded;
}

void tracking_all_changed(tracking_t *t)
{
    for (tclient_t *tc = t->clients; tc; tc = tc->next) {
        drop_pending(t, tc);
        tc->pending_null = 1;
        mark_dirty(t, tc);
    }
    ktab_clear(t, &t->table);
    ktab_clear(t, &t->changed);
    t->stats.items = 0;
}

void tracking_prefix_changed(tracking_t *t, const char *prefix, size_t plen)
{
    if (!t->stats.clients)
        return;
    if (t->nprefixes) {
        tracking_all_changed(t);
        return;
    }
    for (tkey_t *e = t->table.head, *next; e; e = next) {
        next = e->next;
        if (e->klen >= plen && memcmp(e->key, prefix, plen) == 0)
            invalidate_entry(t, e, t->current);
    }
}

/* Moves this turn's BCAST keys to the pending lists of the connections
 * whose prefix they are under. */
static void spread_bcast(tracking_t *t)
{
    for (tkey_t *e = t->changed.head; e; e = e->next) {
        for (tprefix_t *x = t->prefixes; x; x = x->next) {
            if (x->plen > e->klen || memcmp(x->p, e->key, x->plen) != 0)
                continue;
            for (size_t i = 0; i < x->n; i++) {
                tclient_t *tc = x->clients[i];
                if ((tc->flags & TRACKING_NOLOOP) && e->ids[0] == tc->c->id)
                    continue;
                add_pending(t, tc, e->key, e->klen);
            }
        }
    }
    ktab_clear(t, &t->changed);
}

/* The push header for tc's invalidations, written to the connection that
 * gets them. Returns that connection, or NULL when nothing can be sent. */
static client_t *push_target(tclient_t *tc)
{
    client_t *to = tc->c;
    int redirected = 0;
    if (tc->redir_id) {
        if (!tc->redir) {
            tc->flags |= TRACKING_BROKEN_REDIR;
            if (tc->c->proto > 2)
                buf_printf(&tc->c->out, ">2\r\n$21\r\ntracking-redir-broken\r\n:%llu\r\n",
                           (unsigned long long)tc->redir_id);
            return NULL;
        }
        to = tc->redir;
        redirected = 1;
    }
    if (to->flags & CLIENT_CLOSING)
        return NULL;
    return (to->proto > 2 || (redirected && (to->flags & CLIENT_PUBSUB))) ? to : NULL;
}

static void push_header(client_t *to)
{
    if (to->proto > 2)
        buf_append_str(&to->out, ">2\r\n$10\r\ninvalidate\r\n");
    else
        buf_append_str(&to->out, "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n");
}

/* Writes tc's pending invalidations; returns the connection written to. */
static client_t *send_pending(tracking_t *t, tclient_t *tc)
{
    client_t *to = push_target(tc);
    if (tc->redir_id && !tc->redir)
        to = tc->c; /* the broken-redirect notice, if any, went there */
    else if (to) {
        if (tc->pending_null) {
            push_header(to);
            resp_add_null(&to->out, tc->c->proto);
            t->stats.invalidations++;
        }
        if (tc->npending) {
            push_header(to);
            resp_add_array(&to->out, tc->npending);
            buf_append(&to->out, buf_head(&tc->pending), buf_len(&tc->pending));
            t->stats.invalidations += tc->npending;
        }
    }
    drop_pending(t, tc);
    return to;
}

void tracking_flush(tracking_t *t)
{
    if (t->changed.count)
        spread_bcast(t);
    while (t->dirty) {
        tclient_t *tc = t->dirty;
        t->dirty = tc->dnext;
        tc->dirty = 0;
        tc->dnext = NULL;
        client_t *src = tc->c;
        client_t *to = send_pending(t, tc);
        maybe_release(t, src); /* before the wake: it may close a client */
        if (to && t->wake)
            t->wake(to);
    }
}

int tracking_pending(const tracking_t *t)
{
    return t->dirty != NULL || t->changed.count > 0;
}

void tracking_client_closed(tracking_t *t, client_t *c)
{
    tclient_t *tc = c->tracking;
    if (!tc)
        return;
    if (tc->dirty) { /* out of the dirty list first */
        tclient_t **l = &t->dirty;
        while (*l != tc)
            l = &(*l)->dnext;
        *l = tc->dnext;
        tc->dirty = 0;
    }
    if (t->current == c)
        t->current = NULL;
    if (tc->targeted_by) { /* redirections to c break (c itself may be one) */
        for (tclient_t *x = t->clients; x; x = x->next)
            if (x->redir == c) {
                x->redir = NULL;
                tc->targeted_by--;
            }
    }
    tc->targeted_by = 0;
    tracking_off(t, c); /* releases the state */
    maybe_release(t, c);
}

int tracking_client_flags(const client_t *c)
{
    const tclient_t *tc = c->tracking;
    return tc ? tc->flags : 0;
}

uint64_t tracking_client_redirect(const client_t *c)
{
    const tclient_t *tc = c->tracking;
    return tc ? tc->redir_id : 0;
}

size_t tracking_client_prefixes(const client_t *c, const char *const **p, const size_t **plens)
{
    const tclient_t *tc = c->tracking;
    if (!tc || !tc->nprefixes) {
        *p = NULL;
        *plens = NULL;
        return 0;
    }
    *p = (const char *const *)tc->prefixes;
    *plens = tc->plens;
    return tc->nprefixes;
}

void tracking_stats(const tracking_t *t, tracking_stats_t *out)
{
    *out = t->stats;
    out->keys = t->table.count;
    out->prefixes = t->nprefixes;
}

size_t tracking_memory(const tracking_t *t)
{
    return t->memory;
}
