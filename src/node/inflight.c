/* inflight: writes applied here and not committed yet; see inflight.h. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "inflight.h"
#include "mem.h"
#include "versioned.h"

typedef struct entry {
    struct entry *next;
    uint64_t version;
    uint64_t seq;
    int origin;
    int aborted;
    int64_t noted_ms;
    char *prior; /* the value this write replaced (NULL: none kept) */
    size_t prior_len;
    int64_t prior_expire;
    int prior_form;
    uint64_t prior_version;
    int prior_kept; /* the prior came from an aborted write this one replaced */
    size_t klen;
    char key[]; /* klen bytes */
} entry_t;

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
            free(e->prior);
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

void inflight_note(inflight_t *t, const char *key, size_t klen, uint64_t version, int origin,
                   uint64_t seq, int64_t now_ms)
{
    entry_t **p = find(t, key, klen);
    entry_t *e = *p;
    if (e && e->version > version)
        return;
    if (!e) {
        if (t->n + 1 > t->cap) {
            grow(t);
            p = find(t, key, klen);
        }
        e = xmalloc(sizeof(*e) + klen);
        e->next = NULL;
        e->prior = NULL;
        e->aborted = 0;
        e->version = 0;
        e->klen = klen;
        memcpy(e->key, key, klen);
        *p = e;
        t->n++;
    }
    /* Over an aborted write, what came before it is still what this
     * write's abort gives back; else the caller sets it (inflight_set_prior). */
    int keep = e->version && e->version != version && e->aborted;
    if (!keep) {
        free(e->prior);
        e->prior = NULL;
    }
    e->prior_kept = keep;
    e->version = version;
    e->origin = origin;
    e->seq = seq;
    e->aborted = 0;
    e->noted_ms = now_ms;
}

void inflight_set_prior(inflight_t *t, const char *key, size_t klen, const char *val,
                        size_t vlen, int64_t expire_at, int form, uint64_t version)
{
    entry_t *e = *find(t, key, klen);
    if (!e || e->prior_kept)
        return;
    free(e->prior);
    e->prior = val ? xmemdup(val, vlen) : NULL;
    e->prior_len = vlen;
    e->prior_expire = expire_at;
    e->prior_form = form;
    e->prior_version = version;
}

int inflight_prior(const inflight_t *t, const char *key, size_t klen, const char **val,
                   size_t *vlen, int64_t *expire_at, int *form, uint64_t *version)
{
    entry_t *e = t->n ? *find(t, key, klen) : NULL;
    if (!e || !e->prior)
        return 0;
    *val = e->prior;
    *vlen = e->prior_len;
    *expire_at = e->prior_expire;
    *form = e->prior_form;
    *version = e->prior_version;
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
                inflight_prior_t pr = {e->prior, e->prior_len, e->prior_expire, e->prior_form,
                                       e->prior_version};
                fn(ud, e->key, e->klen, e->version, e->aborted, e->prior ? &pr : NULL);
            }
            free(e->prior);
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
        free(e->prior);
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
    commit_arg_t c = {origin, upto};
    return remove_if(t, committed, &c, NULL, NULL);
}

void inflight_abort(inflight_t *t, int origin, uint64_t seq)
{
    for (size_t i = 0; t->n && i < t->cap; i++)
        for (entry_t *e = t->slots[i]; e; e = e->next)
            if (e->origin == origin && e->seq == seq)
                e->aborted = 1;
}

static int of_origin(const entry_t *e, const void *arg)
{
    return e->origin == *(const int *)arg;
}

size_t inflight_take_origin(inflight_t *t, int origin, inflight_visit_fn fn, void *ud)
{
    return remove_if(t, of_origin, &origin, fn, ud);
}

static int older(const entry_t *e, const void *arg)
{
    return e->aborted && e->noted_ms < *(const int64_t *)arg;
}

size_t inflight_take_older(inflight_t *t, int64_t older_than, inflight_visit_fn fn, void *ud)
{
    return remove_if(t, older, &older_than, fn, ud);
}
