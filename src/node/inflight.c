/* inflight: writes applied here and not committed yet; see inflight.h. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "hlc.h"
#include "inflight.h"
#include "mem.h"
#include "versioned.h"

/* A value a write in flight replaced, and what that one replaced in turn:
 * while the write that made a value is itself in flight (seq != 0), its
 * commit or abort still decides whether the value counts. */
typedef struct prior {
    struct prior *below;
    char *val;
    size_t vlen;
    int64_t expire_at;
    int form;
    uint64_t version;
    int origin;   /* the write that made it, while in flight */
    uint64_t seq; /* 0: committed (or never in flight here) */
    int aborted;
    int rmw; /* a read-modify-write's value (known only if in flight here) */
} prior_t;

typedef struct entry {
    struct entry *next;
    uint64_t version;
    uint64_t seq;
    int origin;
    int aborted;
    int rmw; /* a read-modify-write (a PROPOSE, not a SEED): it may abort */
    int64_t noted_ms;
    prior_t *prior; /* the value this write replaced (NULL: none kept) */
    size_t klen;
    char key[]; /* klen bytes */
} entry_t;

static void free_priors(prior_t *p)
{
    while (p) {
        prior_t *below = p->below;
        free(p->val);
        free(p);
        p = below;
    }
}

/* A copy of v, in flight from (origin, seq) or committed (seq 0). */
static prior_t *prior_copy(const inflight_prior_t *v, int origin, uint64_t seq)
{
    prior_t *r = xcalloc(1, sizeof(*r));
    r->val = xmemdup(v->val, v->vlen);
    r->vlen = v->vlen;
    r->expire_at = v->expire_at;
    r->form = v->form;
    r->version = v->version;
    r->rmw = v->rmw;
    r->origin = origin;
    r->seq = seq;
    return r;
}

/* The newest value of a chain that was not aborted (NULL: none). */
static prior_t *standing(prior_t *p)
{
    while (p && p->aborted)
        p = p->below;
    return p;
}

struct inflight {
    entry_t **slots;
    size_t cap; /* power of two */
    size_t n;
};

#define MIN_SLOTS 64

inflight_t *inflight_new(void)
{
    inflight_t *t = xcalloc(1, sizeof(*t));
    t->cap = MIN_SLOTS;
    t->slots = xcalloc(t->cap, sizeof(entry_t *));
    return t;
}

void inflight_free(inflight_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->cap; i++)
        for (entry_t *e = t->slots[i], *next; e; e = next) {
            next = e->next;
            free_priors(e->prior);
            free(e);
        }
    free(t->slots);
    free(t);
}

size_t inflight_count(const inflight_t *t)
{
    return t->n;
}

static entry_t **find(const inflight_t *t, const char *key, size_t klen)
{
    entry_t **p = &t->slots[XXH3_64bits(key, klen) & (t->cap - 1)];
    while (*p && ((*p)->klen != klen || memcmp((*p)->key, key, klen) != 0))
        p = &(*p)->next;
    return p;
}

static void grow(inflight_t *t)
{
    size_t cap = t->cap * 2;
    entry_t **slots = xcalloc(cap, sizeof(entry_t *));
    for (size_t i = 0; i < t->cap; i++)
        for (entry_t *e = t->slots[i], *next; e; e = next) {
            next = e->next;
            entry_t **head = &slots[XXH3_64bits(e->key, e->klen) & (cap - 1)];
            e->next = *head;
            *head = e;
        }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
}

uint64_t inflight_version(const inflight_t *t, const char *key, size_t klen)
{
    if (t->n == 0)
        return 0;
    entry_t *e = *find(t, key, klen);
    return e ? e->version : 0;
}

int inflight_aborted(const inflight_t *t, const char *key, size_t klen)
{
    entry_t *e = t->n ? *find(t, key, klen) : NULL;
    return e && e->aborted;
}

/* 1 when a write of version (origin, seq) is a new write in e's place, not
 * a replay of e. A maker proposes again at an unchanged version (hlc_after
 * of the same newest version) only after e aborted, so a later flush of
 * e's own maker is one even before its ABORT arrives (a replay brings the
 * ABORT after both: WRITES.md rule 29, sim seed 143 of crash,stop, the
 * retry taken for a replay and committed with the aborted token). */
static int retried(const entry_t *e, uint64_t version, int origin, uint64_t seq)
{
    if (e->version != version)
        return 0;
    if (e->origin == origin)
        return seq > e->seq; /* a replay of e itself, or of an older write, is not */
    return e->aborted;
}

int inflight_retried(const inflight_t *t, const char *key, size_t klen, uint64_t version,
                     int origin, uint64_t seq)
{
    entry_t *e = t->n ? *find(t, key, klen) : NULL;
    return e && retried(e, version, origin, seq);
}

void inflight_note(inflight_t *t, const char *key, size_t klen, uint64_t version, int origin,
                   uint64_t seq, int64_t now_ms, const inflight_prior_t *replaced)
{
    entry_t **p = find(t, key, klen);
    entry_t *e = *p;
    if (e && e->version > version)
        return;
    if (e && retried(e, version, origin, seq))
        e->aborted = 1; /* what it replaced, not its value, stands below the new one */
    if (e && e->version == version && !retried(e, version, origin, seq)) {
        /* the same write noted again (a replay) */
        e->rmw = e->rmw && e->origin == origin && e->seq == seq;
        e->origin = origin;
        e->seq = seq;
        e->noted_ms = now_ms;
        return;
    }
    prior_t *below = NULL;
    if (e) {
        below = e->prior;
        e->prior = NULL;
    }
    if (!e) {
        if (t->n + 1 > t->cap) {
            grow(t);
            p = find(t, key, klen);
        }
        e = xmalloc(sizeof(*e) + klen);
        e->next = NULL;
        e->klen = klen;
        memcpy(e->key, key, klen);
        *p = e;
        t->n++;
        e->aborted = 0;
        e->version = 0;
        e->prior = NULL;
    }
    /* A value here newer than e (a catch-up's, stored over e) is what the
     * new write replaced, whatever e's fate (sim --store seed 194: the
     * chain of an aborted e gave back a value three increments old). */
    int newer = replaced && replaced->val && replaced->version > e->version;
    if (e->version && e->aborted && !newer) {
        e->prior = below; /* the aborted value does not count: what it replaced does */
    } else if (replaced && replaced->val) {
        int here = e->version && replaced->version == e->version; /* the write in flight here */
        prior_t *r = prior_copy(replaced, here ? e->origin : 0, here ? e->seq : 0);
        r->rmw = here ? e->rmw : replaced->rmw;
        if (here)
            r->below = below;
        else
            free_priors(below);
        e->prior = r;
    } else {
        free_priors(below);
    }
    e->version = version;
    e->origin = origin;
    e->seq = seq;
    e->aborted = 0;
    e->rmw = 0;
    e->noted_ms = now_ms;
}

void inflight_mark_rmw(inflight_t *t, const char *key, size_t klen, int origin, uint64_t seq)
{
    entry_t *e = t->n ? *find(t, key, klen) : NULL;
    if (e && e->origin == origin && e->seq == seq)
        e->rmw = 1;
}

int inflight_undecided_rmw(const inflight_t *t, const char *key, size_t klen)
{
    entry_t *e = t->n ? *find(t, key, klen) : NULL;
    if (!e)
        return 0;
    if (!e->aborted)
        return e->rmw;
    /* What stands once e aborted: a proposal this node refused for e, whose
     * maker has not decided it yet (WRITES.md rule 30). */
    prior_t *p = standing(e->prior);
    return p && p->seq && p->rmw;
}

int inflight_rmw(const inflight_t *t, const char *key, size_t klen, int *origin, uint64_t *seq)
{
    entry_t *e = t->n ? *find(t, key, klen) : NULL;
    if (!e || !e->rmw || e->aborted)
        return 0;
    *origin = e->origin;
    *seq = e->seq;
    return 1;
}

int inflight_own_rmw(const inflight_t *t, const char *key, size_t klen, uint64_t *seq)
{
    int origin;
    return inflight_rmw(t, key, klen, &origin, seq) && origin == INFLIGHT_SELF;
}

/* Where a value of version v goes in key's chain (newer to older): the slot
 * of the first value not newer than v, or NULL when key has no entry newer
 * than v. */
static prior_t **chain_at(inflight_t *t, const char *key, size_t klen, uint64_t v)
{
    entry_t *e = t->n ? *find(t, key, klen) : NULL;
    if (!e || v >= e->version)
        return NULL;
    prior_t **at = &e->prior;
    while (*at && (*at)->version > v)
        at = &(*at)->below;
    return at;
}

/* chain_at, or NULL when the chain holds v already. */
static prior_t **chain_slot(inflight_t *t, const char *key, size_t klen, uint64_t v)
{
    prior_t **at = chain_at(t, key, klen, v);
    return at && *at && (*at)->version == v ? NULL : at;
}

void inflight_prior_refused(inflight_t *t, const char *key, size_t klen,
                            const inflight_prior_t *v, int origin, uint64_t seq)
{
    prior_t **at = chain_at(t, key, klen, v->version);
    if (!at)
        return;
    prior_t *same = *at && (*at)->version == v->version ? *at : NULL;
    if (same) {
        /* A writer proposes again at one version only after it aborted
         * the first (rule 29): the retry takes the aborted one's place, so
         * it stands undecided below the newer write until its maker
         * decides (WRITES.md rule 46). Anything else is the same value. */
        int retry = same->seq && same->origin == origin && seq > same->seq;
        if (!retry)
            return;
        *at = same->below;
        same->below = NULL;
        free_priors(same);
    }
    prior_t *r = prior_copy(v, origin, seq); /* its maker's COMMIT or ABORT decides */
    r->rmw = 1;
    r->below = *at;
    *at = r;
}

void inflight_prior_fill(inflight_t *t, const char *key, size_t klen, const inflight_prior_t *v)
{
    /* The chain runs from newer to older: v goes above the first value
     * older than it and ends the chain there. A member held v as its
     * newest value not aborted, so what is older no longer counts: a chain
     * noted from one writer's replay alone misses the other writers'
     * values between (sim --writes seed 113 of --faults
     * crash,stop,pause,cut: an abort gave back a value three increments
     * old). */
    prior_t **at = chain_slot(t, key, klen, v->version);
    if (!at)
        return;
    free_priors(*at);
    *at = prior_copy(v, 0, 0);
}

int inflight_prior(const inflight_t *t, const char *key, size_t klen, inflight_prior_t *out)
{
    entry_t *e = t->n ? *find(t, key, klen) : NULL;
    prior_t *p = e ? standing(e->prior) : NULL;
    if (!p)
        return 0;
    *out = (inflight_prior_t){p->val, p->vlen, p->expire_at, p->form, p->version, p->rmw};
    return 1;
}

/* Removes every entry for which fn says so; returns the count. */
static size_t remove_if(inflight_t *t, int (*pred)(const entry_t *e, const void *arg),
                        const void *arg, inflight_visit_fn fn, void *ud)
{
    size_t gone = 0;
    if (t->n == 0)
        return 0;
    for (size_t i = 0; i < t->cap; i++) {
        entry_t **p = &t->slots[i];
        while (*p) {
            entry_t *e = *p;
            if (!pred(e, arg)) {
                p = &e->next;
                continue;
            }
            *p = e->next;
            if (fn) {
                prior_t *s = standing(e->prior);
                inflight_prior_t pr = {s ? s->val : NULL,       s ? s->vlen : 0,
                                       s ? s->expire_at : 0,    s ? s->form : 0,
                                       s ? s->version : 0,      s ? s->rmw : 0};
                fn(ud, e->key, e->klen, e->version, e->aborted, s ? &pr : NULL);
            }
            free_priors(e->prior);
            free(e);
            t->n--;
            gone++;
        }
    }
    return gone;
}

typedef struct flush_arg {
    int op;
    const char *key;
    size_t klen;
    uint64_t version;
} flush_arg_t;

static int superseded(const entry_t *e, const void *arg)
{
    const flush_arg_t *f = arg;
    if (e->version >= f->version)
        return 0;
    if (f->op == VOP_ALL)
        return 1;
    if (f->op == VOP_PREFIX)
        return e->klen >= f->klen && memcmp(e->key, f->key, f->klen) == 0;
    return e->klen == f->klen && memcmp(e->key, f->key, f->klen) == 0;
}

size_t inflight_flush(inflight_t *t, int op, const char *key, size_t klen, uint64_t version)
{
    if (t->n == 0)
        return 0;
    if (op != VOP_PREFIX && op != VOP_ALL) {
        entry_t **p = find(t, key, klen);
        if (!*p || (*p)->version >= version)
            return 0;
        entry_t *e = *p;
        *p = e->next;
        free_priors(e->prior);
        free(e);
        t->n--;
        return 1;
    }
    flush_arg_t f = {op, key, klen, version};
    return remove_if(t, superseded, &f, NULL, NULL);
}

typedef struct commit_arg {
    int origin;
    uint64_t upto;
} commit_arg_t;

static int committed(const entry_t *e, const void *arg)
{
    const commit_arg_t *c = arg;
    return e->origin == c->origin && e->seq <= c->upto && !e->aborted;
}

size_t inflight_commit(inflight_t *t, int origin, uint64_t upto)
{
    /* A replaced value whose write committed is final: what it replaced no
     * longer matters. */
    for (size_t i = 0; t->n && i < t->cap; i++)
        for (entry_t *e = t->slots[i]; e; e = e->next)
            for (prior_t *p = e->prior; p; p = p->below)
                if (p->seq && p->origin == origin && p->seq <= upto && !p->aborted) {
                    p->seq = 0;
                    free_priors(p->below);
                    p->below = NULL;
                    break;
                }
    commit_arg_t c = {origin, upto};
    return remove_if(t, committed, &c, NULL, NULL);
}

void inflight_abort(inflight_t *t, int origin, uint64_t seq)
{
    for (size_t i = 0; t->n && i < t->cap; i++)
        for (entry_t *e = t->slots[i]; e; e = e->next) {
            if (e->origin == origin && e->seq == seq)
                e->aborted = 1;
            for (prior_t *p = e->prior; p; p = p->below)
                if (p->seq && p->origin == origin && p->seq == seq)
                    p->aborted = 1;
        }
}

/* 1 when the value e would give back (the newest one below it not aborted)
 * is a write still in flight, not decided yet. */
static int gives_back_undecided(const entry_t *e)
{
    const prior_t *p = standing(e->prior);
    return p && p->seq;
}

/* origin's entry, but an aborted one whose value to give back is undecided
 * (another writer's proposal below it): that one stays, and the sweep gives
 * the value back once its maker decided (older). Given back now, it counted
 * as committed, and an INCR its maker aborted took effect (WRITES.md rule
 * 35; sim seed 407 of crash,stop,pause,cut). */
static int of_origin(const entry_t *e, const void *arg)
{
    return e->origin == *(const int *)arg && !(e->aborted && gives_back_undecided(e));
}

/* 1 when e, a read-modify-write, stands over a committed one made from the
 * same value (one counter step above the same base: hlc_after), which
 * another writer made: at most one of two such commits (P1), so e did not. */
static int lost_to_same_base(const entry_t *e)
{
    const prior_t *p = standing(e->prior);
    return e->rmw && !e->aborted && p && p->rmw && p->seq == 0 &&
           p->version >> HLC_TAG_BITS == e->version >> HLC_TAG_BITS;
}

size_t inflight_take_origin(inflight_t *t, int origin, inflight_visit_fn fn, void *ud)
{
    for (size_t i = 0; t->n && i < t->cap; i++)
        for (entry_t *e = t->slots[i]; e; e = e->next) {
            /* Its proposal over a committed one from the same value never
             * committed: it goes as aborted, and what it replaced comes back
             * (WRITES.md rule 28; sim seed 299: a lock won twice). */
            if (e->origin == origin && lost_to_same_base(e))
                e->aborted = 1;
            /* Its values kept below others' writes count as written, as its
             * writes in flight do (replayed by the caller): nothing else
             * would decide them. */
            for (prior_t *p = e->prior; p; p = p->below)
                if (p->seq && p->origin == origin && !p->aborted)
                    p->seq = 0;
        }
    return remove_if(t, of_origin, &origin, fn, ud);
}

void inflight_hold_origin(inflight_t *t, int origin)
{
    for (size_t i = 0; t->n && i < t->cap; i++)
        for (entry_t *e = t->slots[i]; e; e = e->next) {
            if (e->origin == origin)
                e->origin = INFLIGHT_HELD;
            for (prior_t *p = e->prior; p; p = p->below)
                if (p->seq && p->origin == origin)
                    p->origin = INFLIGHT_HELD;
        }
}

void inflight_each_undecided(const inflight_t *t, void (*fn)(void *ud, int origin, uint64_t seq),
                             void *ud)
{
    if (t->n == 0)
        return;
    for (size_t i = 0; i < t->cap; i++)
        for (const entry_t *e = t->slots[i]; e; e = e->next)
            if (e->origin >= 0 && !e->aborted) /* a member's (not ours, not held) */
                fn(ud, e->origin, e->seq);
}

/* An aborted entry noted before the bound, whose value to give back is
 * decided: an undecided one (a member's refused proposal, its maker's
 * COMMIT or ABORT on its way) would be given back as if committed. */
static int older(const entry_t *e, const void *arg)
{
    return e->aborted && e->noted_ms < *(const int64_t *)arg && !gives_back_undecided(e);
}

size_t inflight_take_older(inflight_t *t, int64_t older_than, inflight_visit_fn fn, void *ud)
{
    return remove_if(t, older, &older_than, fn, ud);
}
