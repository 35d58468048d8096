/* writes: the node's side of the write protocol; see writes.h. */
#include "writes.h"

#include <stdlib.h>

#include "frame.h"
#include "mem.h"
#include "versioned.h"

static void dirty(const writes_t *w)
{
    if (w->waits_dirty)
        *w->waits_dirty = 1;
}

uint64_t writes_key_version(const writes_t *w, const char *key, size_t klen)
{
    cache_entry_t *e = cache_lookup(w->cache, key, klen, w->now_ms, CACHE_NOTOUCH);
    uint64_t v = e ? cache_entry_version(e) : 0;
    /* Both floors: members judge a proposal by their floor since the cache
     * was last empty (apply_proposal), whose bounded record of prefix
     * flushes forgets sooner and then answers higher: a proposal below it
     * is refused everywhere, again at every retry. */
    uint64_t floor = flushmark_floor(w->floor, key, klen);
    uint64_t recent = flushmark_floor(w->recent, key, klen);
    uint64_t fl = inflight_version(w->inflight, key, klen);
    v = floor > v ? floor : v;
    v = recent > v ? recent : v;
    return fl > v ? fl : v;
}

/* Records a flush with its version in a floor record. */
static void floor_at(flushmark_t *f, int op, const char *key, size_t klen, uint64_t version)
{
    if (op == VOP_PREFIX)
        flushmark_prefix_at(f, key, klen, version);
    else if (op == VOP_ALL)
        flushmark_all_at(f, version);
    else if (op == VOP_KEY || op == VOP_INVAL)
        flushmark_key_at(f, key, klen, version);
}

void writes_flushed(const writes_t *w, int op, const char *key, size_t klen, uint64_t version)
{
    flushmark_set_stamp(w->recent, w->mono_ms);
    floor_at(w->recent, op, key, klen, version); /* the floor gets it at the next drop */
    if (inflight_flush(w->inflight, op, key, klen, version))
        dirty(w);
}

/* How long a key forgotten by the bounded record of flushes since the
 * cache was last empty (w->recent, full) still refuses a PROPOSE or snapshot
 * entry of it older than the forgotten floor. A proposal that a flush here
 * overtook was made before its writer applied that flush; a writer commits
 * only while it serves, so it had heard from the flush's maker within a
 * lease, and a member that serves hears from the writer within a lease: the
 * proposal arrives within a few leases and flush timeouts of the flush.
 * Past that, the forgotten floor would only refuse current writes, at every
 * retry (WRITES.md rule 14). */
#define FORGOTTEN_HOLD_MS 60000

/* 1 when the record of flushes since the cache was last empty refuses a
 * write of key at version (key has no entry here): a flush of it at least
 * as new is recorded, or may have been forgotten lately. */
static int recent_refuses(const writes_t *w, const char *key, size_t klen, uint64_t version)
{
    if (version <= flushmark_floor_known(w->recent, key, klen))
        return 1;
    int64_t stamp;
    uint64_t forgotten = flushmark_forgotten(w->recent, &stamp);
    return version <= forgotten && w->mono_ms - stamp < FORGOTTEN_HOLD_MS;
}

/* Stores a member's value of key with its version (the caller judged it). */
static cache_entry_t *store_value(const writes_t *w, const char *k, size_t klen,
                                  const char *val, size_t vlen, int64_t expire_at, int enc,
                                  uint64_t version)
{
    cache_entry_t *e = cache_set(w->cache, k, klen, val, vlen, expire_at);
    cache_entry_set_version(w->cache, e, version);
    if (enc != 0)
        cache_entry_set_form(e, enc);
    return e;
}

/* 1 when a member's write of key at version (a PROPOSE or snapshot entry)
 * is to be taken: it is newer than key's entry, or, with no entry, than
 * every flush of key since the cache was last empty (a fresh node's floor
 * of the whole cache is newer than most values it catches up with). */
static int takes(const writes_t *w, const char *k, size_t klen, uint64_t version)
{
    cache_entry_t *e = cache_lookup(w->cache, k, klen, w->now_ms, CACHE_NOTOUCH);
    uint64_t have = e ? cache_entry_version(e) : 0;
    if (have >= version)
        return 0;
    return have != 0 || !recent_refuses(w, k, klen, version);
}

/* A member's PROPOSE: refused (0) when this node holds a newer version of
 * the key (a write it has seen, in flight or not: cluster/WRITES.md) or,
 * holding none, has applied a flush of it at least as new; else applied.
 * The same version is the same write (a replay after a reconnect, or a
 * write this node already got in a snapshot): taken, never refused. */
static int apply_proposal(const writes_t *w, const char *k, size_t klen, const char *val,
                          size_t vlen, int64_t expire_at, int enc, uint64_t version, int origin,
                          uint64_t seq)
{
    cache_entry_t *e = cache_lookup(w->cache, k, klen, w->now_ms, CACHE_NOTOUCH);
    uint64_t have = e ? cache_entry_version(e) : 0;
    uint64_t fl = inflight_version(w->inflight, k, klen);
    if (have > version || fl > version)
        return 0;
    int retry = inflight_retried(w->inflight, k, klen, version, origin, seq);
    if (have == version && !retry) {
        cache_entry_set_rmw(e); /* the same write: a proposal made it */
        return 1;
    }
    if (have == 0 && fl != version && recent_refuses(w, k, klen, version))
        return 0;
    cache_entry_set_rmw(store_value(w, k, klen, val, vlen, expire_at, enc, version));
    return 1;
}

/* A member's SEED: versioned.h's rule, with two records of flushes: the
 * exact one since the cache was last empty, and the floor (this
 * incarnation's start, the gaps it skipped, and what it held and recorded
 * before each drop). Returns 1 when applied. */
static size_t apply_seed(const writes_t *w, const char *k, size_t klen, const char *val,
                         size_t vlen, int64_t expire_at, uint64_t version)
{
    cache_entry_t *e = cache_lookup(w->cache, k, klen, w->now_ms, CACHE_NOTOUCH);
    /* (a fill has version 0: it says nothing of the flushes before it) */
    if ((!e || cache_entry_version(e) == 0) && version <= flushmark_floor(w->recent, k, klen))
        return 0;
    return versioned_apply(w->cache, w->floor, VOP_SEED, k, klen, val, vlen, expire_at, version,
                           w->now_ms);
}

int writes_apply(const writes_t *w, int kind, const char *k, size_t klen, const char *val,
                 size_t vlen, int64_t expire_at, int enc, uint64_t version, int origin,
                 uint64_t seq)
{
    hlc_observe(w->hlc, version);
    int valued = kind == VOP_SEED || kind == FLUSH_PROPOSE;
    writes_prior_t prior = {NULL, 0, 0, 0, 0, 0};
    if (kind == FLUSH_PROPOSE) {
        int maker;
        uint64_t made;
        int rmw = inflight_rmw(w->inflight, k, klen, &maker, &made);
        uint64_t fl = inflight_version(w->inflight, k, klen);
        writes_prior_take(w, k, klen, &prior);
        if (!apply_proposal(w, k, klen, val, vlen, expire_at, enc, version, origin, seq)) {
            writes_prior_free(&prior);
            if (version < fl) { /* refused for a write in flight: kept below it */
                inflight_prior_t p = {val, vlen, expire_at, enc, version, 1};
                inflight_prior_refused(w->inflight, k, klen, &p, origin, seq);
            }
            return 0;
        }
        if (rmw && version > fl && maker == INFLIGHT_SELF) /* ours aborts (rule 22) */
            cluster_abort_proposal(w->cluster, made);
        else if (rmw && version > fl && maker != origin) /* theirs is refused (rule 47) */
            cluster_refuse_write(w->cluster, maker, made);
    }
    size_t done = 1;
    flushmark_set_stamp(w->recent, w->mono_ms);
    if (kind == VOP_SEED)
        done = apply_seed(w, k, klen, val, vlen, expire_at, version);
    else if (kind != FLUSH_PROPOSE) /* a flush: recorded since the cache was last empty */
        done = versioned_apply(w->cache, w->recent, kind, k, klen, val, vlen, expire_at, version,
                               w->now_ms);
    if (!valued) {
        if (inflight_flush(w->inflight, kind == VOP_INVAL ? VOP_KEY : kind, k, klen, version))
            dirty(w);
        return 1;
    }
    /* Reads of the key wait until its writer commits it (or it is superseded). */
    if (done) {
        inflight_prior_t was = {prior.val,     prior.vlen,    prior.expire_at,
                                prior.form,    prior.version, prior.rmw};
        inflight_note(w->inflight, k, klen, version, origin, seq, w->mono_ms, &was);
        if (kind == FLUSH_PROPOSE)
            inflight_mark_rmw(w->inflight, k, klen, origin, seq);
    }
    writes_prior_free(&prior);
    if (done && enc != 0) {
        cache_entry_t *e = cache_lookup(w->cache, k, klen, w->now_ms, CACHE_NOTOUCH);
        if (e)
            cache_entry_set_form(e, enc);
    }
    cache_evict(w->cache);
    return 1;
}


void writes_prior_take(const writes_t *w, const char *key, size_t klen, writes_prior_t *out)
{
    cache_entry_t *e = cache_lookup(w->cache, key, klen, w->now_ms, CACHE_NOTOUCH);
    *out = (writes_prior_t){NULL, 0, 0, 0, 0, 0};
    if (!e)
        return;
    const char *val = cache_entry_value(e, &out->vlen);
    out->val = xmemdup(val, out->vlen);
    out->expire_at = cache_entry_expire(e);
    out->form = cache_entry_form(e);
    out->version = cache_entry_version(e);
    out->rmw = cache_entry_rmw(e);
}

void writes_prior_free(writes_prior_t *p)
{
    free(p->val);
    p->val = NULL;
}

uint64_t writes_propose(const writes_t *w, cache_entry_t *e, const char *key, size_t klen,
                        const writes_prior_t *prior)
{
    /* One step above the newest version of the key known here: refused by a
     * member that has seen a newer one (cluster/WRITES.md). */
    uint64_t v = hlc_after(w->hlc, writes_key_version(w, key, klen));
    hlc_observe(w->hlc, v);
    cache_entry_set_version(w->cache, e, v);
    cache_entry_set_rmw(e);
    size_t vlen;
    const char *val = cache_entry_value(e, &vlen);
    uint64_t seq = cluster_propose(w->cluster, key, klen, val, vlen, cache_entry_expire(e),
                                   cache_entry_form(e), v);
    inflight_prior_t was = {prior ? prior->val : NULL,    prior ? prior->vlen : 0,
                            prior ? prior->expire_at : 0, prior ? prior->form : 0,
                            prior ? prior->version : 0,   prior ? prior->rmw : 0};
    inflight_note(w->inflight, key, klen, v, CLUSTER_SELF, seq, w->mono_ms, &was);
    inflight_mark_rmw(w->inflight, key, klen, INFLIGHT_SELF, seq);
    return seq;
}

uint64_t writes_propose_ttl(const writes_t *w, cache_entry_t *e, int64_t expire_at)
{
    size_t klen;
    const char *key = cache_entry_key(e, &klen);
    writes_prior_t prior;
    writes_prior_take(w, key, klen, &prior); /* the same value with its old time */
    cache_set_expire(w->cache, e, expire_at);
    uint64_t seq = writes_propose(w, e, key, klen, &prior);
    writes_prior_free(&prior);
    return seq;
}

uint64_t writes_seed(const writes_t *w, cache_entry_t *e, const char *key, size_t klen,
                     uint64_t version)
{
    cache_entry_set_version(w->cache, e, version);
    size_t vlen;
    const char *val = cache_entry_value(e, &vlen);
    uint64_t seq = cluster_seed(w->cluster, key, klen, val, vlen, cache_entry_expire(e),
                                cache_entry_form(e), version);
    inflight_note(w->inflight, key, klen, version, CLUSTER_SELF, seq, w->mono_ms, NULL);
    return seq;
}

void writes_committed(const writes_t *w, int origin, uint64_t upto)
{
    inflight_commit(w->inflight, origin, upto);
    dirty(w); /* writers waiting for their commit, readers for the key */
}

void writes_aborted(const writes_t *w, int origin, uint64_t seq)
{
    inflight_abort(w->inflight, origin, seq);
    dirty(w);
}

typedef struct orphans {
    struct orphan {
        char *key;
        size_t klen;
        uint64_t version;
        int aborted;
        char *prior; /* the value an aborted write replaced (NULL: none kept) */
        size_t prior_len;
        int64_t prior_expire;
        int prior_form;
        uint64_t prior_version;
        int prior_rmw;
    } *v;
    size_t n;
} orphans_t;

/* A write in flight whose maker is gone: replayed as this node's own (the
 * value here, with its version: members holding something newer keep it),
 * so that every member ends with it or something newer; an aborted one is a
 * value nobody committed: the value it replaced comes back (P4), with its
 * own version, so that the newer write that refused it still wins if it
 * arrives. */
static void replay_orphan(const writes_t *w, const struct orphan *o)
{
    cache_entry_t *e = cache_lookup(w->cache, o->key, o->klen, w->now_ms, CACHE_NOTOUCH);
    if (!e || cache_entry_version(e) != o->version)
        return; /* superseded here already */
    if (!o->aborted) {
        writes_seed(w, e, o->key, o->klen, o->version);
        return;
    }
    if (!o->prior) {
        cache_delete(w->cache, o->key, o->klen, w->now_ms);
        return;
    }
    e = cache_set(w->cache, o->key, o->klen, o->prior, o->prior_len, o->prior_expire);
    if (o->prior_form != 0)
        cache_entry_set_form(e, o->prior_form);
    cache_entry_set_version(w->cache, e, o->prior_version);
    if (o->prior_rmw)
        cache_entry_set_rmw(e);
}

static void collect_orphan(void *ud, const char *key, size_t klen, uint64_t version, int aborted,
                           const inflight_prior_t *prior)
{
    orphans_t *o = ud;
    o->v = xrealloc(o->v, (o->n + 1) * sizeof(*o->v));
    struct orphan *r = &o->v[o->n++];
    *r = (struct orphan){xmemdup(key, klen), klen, version, aborted, NULL, 0, 0, 0, 0, 0};
    if (prior) {
        r->prior = xmemdup(prior->val, prior->vlen);
        r->prior_len = prior->vlen;
        r->prior_expire = prior->expire_at;
        r->prior_form = prior->form;
        r->prior_version = prior->version;
        r->prior_rmw = prior->rmw;
    }
}

/* Replays what was taken out of the table into o (after the taking: a
 * replay notes a new entry). */
static void replay_orphans(const writes_t *w, orphans_t *o)
{
    for (size_t i = 0; i < o->n; i++) {
        replay_orphan(w, &o->v[i]);
        free(o->v[i].key);
        free(o->v[i].prior);
    }
    free(o->v);
    if (o->n)
        dirty(w);
}

void writes_origin_gone(const writes_t *w, int origin)
{
    orphans_t o = {NULL, 0};
    inflight_take_origin(w->inflight, origin, collect_orphan, &o);
    replay_orphans(w, &o);
}

void writes_origin_hold(const writes_t *w, int origin)
{
    inflight_hold_origin(w->inflight, origin);
}

void writes_replay_held(const writes_t *w)
{
    writes_origin_gone(w, INFLIGHT_HELD);
}

void writes_sweep(const writes_t *w, int64_t older_than_mono)
{
    orphans_t o = {NULL, 0};
    inflight_take_older(w->inflight, older_than_mono, collect_orphan, &o);
    replay_orphans(w, &o);
}

int writes_decide(const uint64_t *seqs, size_t nseqs, uint64_t committed_self,
                  const uint64_t *aborts, size_t naborts)
{
    for (size_t i = 0; i < nseqs; i++)
        for (size_t j = 0; j < naborts; j++)
            if (seqs[i] == aborts[j])
                return -1;
    for (size_t i = 0; i < nseqs; i++)
        if (seqs[i] > committed_self)
            return 0;
    return 1;
}

/* ---- catch-up ------------------------------------------------------------------ */

typedef struct snap_walk {
    const writes_t *w;
    size_t bytes;
    int (*keep)(void *kud, const char *key, size_t klen);
    void *kud;
    const cluster_snap_out_t *out;
} snap_walk_t;

/* Emits e's entries, or defers e when its write in flight here is a
 * read-modify-write not decided yet and may_defer (WRITES.md rule 24: a
 * SEED in flight always commits, and goes at once). Returns the bytes
 * emitted. */
static size_t snap_entry(const writes_t *w, cache_entry_t *e, const cluster_snap_out_t *out,
                         int may_defer)
{
    size_t klen, vlen, bytes = 0;
    const char *key = cache_entry_key(e, &klen);
    const char *val = cache_entry_value(e, &vlen);
    uint64_t version = cache_entry_version(e);
    if (version == inflight_version(w->inflight, key, klen)) {
        int aborted = inflight_aborted(w->inflight, key, klen);
        if (may_defer && inflight_undecided_rmw(w->inflight, key, klen) &&
            out->defer(out->eud, key, klen))
            return 0;
        /* An aborted value is nobody's: the requester gets the value it
         * replaced, as this node's sweep restores it, or nothing
         * (WRITES.md rule 15). A value not decided yet (a SEED, or a
         * proposal that cannot wait) goes after the value it replaced: the
         * requester's abort gives that back (writes_apply_snapshot, rule
         * 17). */
        inflight_prior_t p;
        if (inflight_prior(w->inflight, key, klen, &p) &&
            !(p.expire_at && p.expire_at <= w->now_ms)) {
            out->emit(out->eud, key, klen, p.val, p.vlen, p.expire_at,
                      p.form | (p.rmw ? SNAP_FORM_RMW : 0), p.version);
            bytes += klen + p.vlen + 32;
        }
        if (aborted)
            return bytes;
    }
    out->emit(out->eud, key, klen, val, vlen, cache_entry_expire(e),
              cache_entry_form(e) | (cache_entry_rmw(e) ? SNAP_FORM_RMW : 0), version);
    return bytes + klen + vlen + 32;
}

static void snap_visit(void *ud, cache_entry_t *e)
{
    snap_walk_t *s = ud;
    size_t klen;
    const char *key = cache_entry_key(e, &klen);
    int64_t at = cache_entry_expire(e);
    if ((at && at <= s->w->now_ms) || !s->keep(s->kud, key, klen))
        return;
    s->bytes += snap_entry(s->w, e, s->out, 1);
}

uint64_t writes_snapshot(const writes_t *w, uint64_t cursor, size_t budget,
                         int (*keep)(void *kud, const char *key, size_t klen), void *kud,
                         const cluster_snap_out_t *out)
{
    snap_walk_t s = {w, 0, keep, kud, out};
    do
        cursor = cache_scan(w->cache, cursor, 64, snap_visit, &s);
    while (cursor && s.bytes < budget);
    return cursor;
}

int writes_snapshot_key(const writes_t *w, const char *key, size_t klen,
                        const cluster_snap_out_t *out)
{
    /* Decided once no proposal stands undecided on the key: the one deferred
     * for, or a newer one that overtook it (its value is sent with the
     * deferred one below it: rule 30). */
    if (inflight_undecided_rmw(w->inflight, key, klen))
        return 1;
    if (!out)
        return 0;
    cache_entry_t *e = cache_lookup(w->cache, key, klen, w->now_ms, CACHE_NOTOUCH);
    if (e)
        snap_entry(w, e, out, 0);
    return 0;
}

void writes_apply_snapshot(const writes_t *w, const char *k, size_t klen, const char *val,
                           size_t vlen, int64_t expire_at, int enc, uint64_t version)
{
    hlc_observe(w->hlc, version);
    int rmw = (enc & SNAP_FORM_RMW) != 0;
    enc &= ~SNAP_FORM_RMW;
    int took = takes(w, k, klen, version);
    if (took) {
        cache_entry_t *e = store_value(w, k, klen, val, vlen, expire_at, enc, version);
        if (rmw)
            cache_entry_set_rmw(e);
    }
    if (took || !recent_refuses(w, k, klen, version)) {
        /* A write in flight here is newer: this is what it replaced (the
         * cache was dropped since, it arrived empty, or its chain of
         * replaced values came from one writer's replay and misses the
         * others' writes). */
        inflight_prior_t p = {val, vlen, expire_at, enc, version, rmw};
        inflight_prior_fill(w->inflight, k, klen, &p);
    }
    cache_evict(w->cache);
}

/* ---- a whole-cache drop ----------------------------------------------------------- */

void writes_each_undecided(const writes_t *w, void (*fn)(void *ud, int origin, uint64_t seq),
                           void *ud)
{
    inflight_each_undecided(w->inflight, fn, ud);
}

size_t writes_drop_all(const writes_t *w)
{
    /* What the dropped entries' versions (and the flushes recorded since the
     * cache was last empty) said about their keys, the floor now says of
     * every key: a SEED a member replied while it held this node dead
     * arrives by replay after the drop, and must not replace a newer value
     * this node made or saw, replied everywhere (P7). One floor: no walk. */
    flushmark_all_at(w->floor, hlc_seen(w->hlc));
    /* This node's own writes in flight lost their values: its proposals
     * abort (coherence.c drop_cache) and none of them may refuse a member's
     * write from here on (a refusal for a value nobody will send; P6). */
    if (inflight_take_origin(w->inflight, INFLIGHT_SELF, NULL, NULL))
        dirty(w);
    /* A catch-up follows, judged by what comes after only. */
    flushmark_clear(w->recent);
    return cache_flush_all(w->cache);
}
