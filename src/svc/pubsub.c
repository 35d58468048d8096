/* pubsub: channels, patterns and shard channels of one node; see pubsub.h.
 *
 * Layout. A topic (a channel, a pattern or a shard channel with at least one
 * subscriber) is one allocation holding its name; it sits in its kind's hash
 * table (by name) and in its kind's list (order of appearance: PUBSUB
 * CHANNELS and the pattern walk of a publish follow it). A subscription (one
 * client to one topic) is one allocation linked into the topic's subscriber
 * list (subscription order: deliveries follow it, as redis-server's lists)
 * and into the client's list of that kind (UNSUBSCRIBE with no argument
 * follows it), and indexed by (client, topic) so a subscribe or unsubscribe
 * of one name costs O(1) whatever the fan-out.
 *
 * Counts in confirmations, as redis-server 7.0: SUBSCRIBE, PSUBSCRIBE and
 * their unsubscribes report channels + patterns; the shard commands report
 * shard channels only. A client is in subscribe mode (CLIENT_PUBSUB) while it
 * holds any subscription, shard ones included.
 *
 * Hash tables grow by doubling with an incremental rehash (a few buckets per
 * insert or delete) and are freed when empty; they do not shrink otherwise.
 *
 * Costs: SUBSCRIBE / UNSUBSCRIBE of one name O(1); PUBLISH O(subscribers of
 * the channel + patterns held on the node) (every pattern is matched, as
 * redis-server does); PUBSUB CHANNELS O(channels). Memory: under 100 bytes
 * per topic (plus its name) and per subscription, plus the hash arrays,
 * counted with the allocator's usable sizes in pubsub_memory(); bounded by
 * maxclients x pubsub_max_subscriptions, and max_bulk_len per name. */
#include "pubsub.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "clock.h"
#include "glob.h"
#include "log.h"
#include "mem.h"
#include "resp.h"
#include "server.h"

#define MIN_SLOTS 16

typedef struct hnode {
    struct hnode *next; /* hash chain */
    uint64_t hash;
} hnode_t;

/* A chained hash table that grows by doubling, moving a few buckets of the
 * old array to the new one at each insert or delete (incremental rehash, as
 * redis-server's dict): no single operation walks the whole table. While
 * slots[1] exists, a node is in slots[0] at a bucket >= rehash, or in
 * slots[1]. */
typedef struct htab {
    hnode_t **slots[2]; /* slots[1]: the larger array being filled, or NULL */
    size_t nslots[2];   /* powers of two (0 while unused) */
    size_t rehash;      /* next bucket of slots[0] to move */
    size_t count;
} htab_t;

typedef struct sub sub_t;

typedef struct topic {
    hnode_t h;                 /* in ps->topics[kind] */
    struct topic *prev, *next; /* ps->first/last[kind], order of appearance */
    sub_t *first, *last;       /* subscribers, in subscription order */
    size_t nsubs;
    int kind;
    size_t len;
    char name[]; /* len bytes, NUL after them */
} topic_t;

typedef struct ps_client ps_client_t;

struct sub {
    hnode_t h; /* in ps->subs, keyed by (client, topic) */
    topic_t *topic;
    ps_client_t *pc;
    sub_t *tprev, *tnext; /* the topic's subscribers */
    sub_t *cprev, *cnext; /* the client's subscriptions of this kind */
};

struct ps_client {
    client_t *c;
    sub_t *first[PUBSUB_KINDS], *last[PUBSUB_KINDS]; /* in subscription order */
    size_t count[PUBSUB_KINDS];
    int64_t soft_since;         /* clock_now_ms() when first seen over soft; 0 */
    ps_client_t *sprev, *snext; /* ps->soft: clients over the soft limit */
    ps_client_t *dnext;         /* the list of clients to close */
    int doomed;                 /* over a limit: closed after this delivery */
};

struct pubsub {
    pubsub_limits_t lim;
    htab_t topics[PUBSUB_KINDS];
    topic_t *first[PUBSUB_KINDS], *last[PUBSUB_KINDS];
    htab_t subs;
    ps_client_t *soft; /* clients over the soft limit */
    pubsub_interest_fn interest;
    void *interest_ud;
    pubsub_count_fn count_cb;
    void *count_ud;
    pubsub_close_fn close;
    size_t mem;
    pubsub_stats_t stats;
};

static const char *const sub_word[PUBSUB_KINDS] = {"subscribe", "psubscribe", "ssubscribe"};
static const char *const unsub_word[PUBSUB_KINDS] = {"unsubscribe", "punsubscribe", "sunsubscribe"};

/* ---- memory ------------------------------------------------------------- */

static void *ps_alloc(pubsub_t *ps, size_t n)
{
    void *p = xcalloc(1, n);
    ps->mem += mem_usable(p);
    return p;
}

static void ps_release(pubsub_t *ps, void *p)
{
    ps->mem -= mem_usable(p);
    free(p);
}

/* ---- hash tables (intrusive, chained) ------------------------------------ */

#define REHASH_STEP 4 /* buckets moved per insert or delete */

/* Moves up to REHASH_STEP buckets (visiting at most 10x as many empty ones)
 * from slots[0] to slots[1]; adopts slots[1] when slots[0] is empty. */
static void htab_step(pubsub_t *ps, htab_t *t)
{
    if (!t->slots[1])
        return;
    size_t moved = 0, visits = REHASH_STEP * 10;
    while (moved < REHASH_STEP && visits-- > 0 && t->rehash < t->nslots[0]) {
        hnode_t *n = t->slots[0][t->rehash];
        t->slots[0][t->rehash++] = NULL;
        moved += n != NULL;
        while (n) {
            hnode_t *next = n->next;
            size_t at = n->hash & (t->nslots[1] - 1);
            n->next = t->slots[1][at];
            t->slots[1][at] = n;
            n = next;
        }
    }
    if (t->rehash < t->nslots[0])
        return;
    ps_release(ps, t->slots[0]);
    t->slots[0] = t->slots[1];
    t->nslots[0] = t->nslots[1];
    t->slots[1] = NULL;
    t->nslots[1] = 0;
    t->rehash = 0;
}

static void htab_add(pubsub_t *ps, htab_t *t, hnode_t *n)
{
    if (!t->slots[0]) {
        t->nslots[0] = MIN_SLOTS;
        t->slots[0] = ps_alloc(ps, MIN_SLOTS * sizeof(hnode_t *));
    } else if (!t->slots[1] && t->count >= t->nslots[0]) {
        t->nslots[1] = t->nslots[0] * 2;
        t->slots[1] = ps_alloc(ps, t->nslots[1] * sizeof(hnode_t *));
        t->rehash = 0;
    }
    htab_step(ps, t);
    int which = t->slots[1] ? 1 : 0;
    size_t at = n->hash & (t->nslots[which] - 1);
    n->next = t->slots[which][at];
    t->slots[which][at] = n;
    t->count++;
}

/* Unlinks n from the chain of array which; returns 1 if it was there. */
static int unlink_from(htab_t *t, int which, hnode_t *n)
{
    if (!t->slots[which])
        return 0;
    hnode_t **pp = &t->slots[which][n->hash & (t->nslots[which] - 1)];
    while (*pp && *pp != n)
        pp = &(*pp)->next;
    if (!*pp)
        return 0;
    *pp = n->next;
    return 1;
}

static void htab_del(pubsub_t *ps, htab_t *t, hnode_t *n)
{
    int found = unlink_from(t, 0, n) || unlink_from(t, 1, n);
    assert(found);
    (void)found;
    if (--t->count == 0) {
        for (int i = 0; i < 2; i++)
            if (t->slots[i])
                ps_release(ps, t->slots[i]);
        memset(t, 0, sizeof(*t));
        return;
    }
    htab_step(ps, t);
}

typedef int (*htab_eq_fn)(const hnode_t *n, const void *key);

/* The node with this hash that eq() accepts, or NULL. */
static hnode_t *htab_find(const htab_t *t, uint64_t hash, htab_eq_fn eq, const void *key)
{
    for (int i = 0; i < 2; i++) {
        if (!t->slots[i])
            continue;
        for (hnode_t *n = t->slots[i][hash & (t->nslots[i] - 1)]; n; n = n->next)
            if (n->hash == hash && eq(n, key))
                return n;
    }
    return NULL;
}

/* ---- topics and subscriptions -------------------------------------------- */

static uint64_t name_hash(int kind, const char *name, size_t len)
{
    return XXH3_64bits_withSeed(name, len, (uint64_t)kind);
}

static uint64_t sub_hash(const ps_client_t *pc, const topic_t *t)
{
    const void *key[2] = {pc, t};
    return XXH3_64bits(key, sizeof(key));
}

typedef struct name_key {
    int kind;
    const char *name;
    size_t len;
} name_key_t;

static int topic_eq(const hnode_t *n, const void *key)
{
    const topic_t *t = (const topic_t *)n;
    const name_key_t *k = key;
    return t->len == k->len && memcmp(t->name, k->name, k->len) == 0;
}

static topic_t *topic_find(const pubsub_t *ps, int kind, const char *name, size_t len)
{
    name_key_t k = {kind, name, len};
    return (topic_t *)htab_find(&ps->topics[kind], name_hash(kind, name, len), topic_eq, &k);
}

static topic_t *topic_create(pubsub_t *ps, int kind, const char *name, size_t len)
{
    topic_t *t = ps_alloc(ps, sizeof(*t) + len + 1);
    t->kind = kind;
    t->len = len;
    memcpy(t->name, name, len);
    t->h.hash = name_hash(kind, name, len);
    htab_add(ps, &ps->topics[kind], &t->h);
    t->prev = ps->last[kind];
    if (t->prev)
        t->prev->next = t;
    else
        ps->first[kind] = t;
    ps->last[kind] = t;
    if (ps->interest)
        ps->interest(ps->interest_ud, kind, t->name, t->len, 1);
    return t;
}

static void topic_destroy(pubsub_t *ps, topic_t *t)
{
    int kind = t->kind;
    htab_del(ps, &ps->topics[kind], &t->h);
    if (t->prev)
        t->prev->next = t->next;
    else
        ps->first[kind] = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        ps->last[kind] = t->prev;
    if (ps->interest)
        ps->interest(ps->interest_ud, kind, t->name, t->len, 0);
    ps_release(ps, t);
}

typedef struct sub_key {
    const ps_client_t *pc;
    const topic_t *topic;
} sub_key_t;

static int sub_eq(const hnode_t *n, const void *key)
{
    const sub_t *s = (const sub_t *)n;
    const sub_key_t *k = key;
    return s->pc == k->pc && s->topic == k->topic;
}

static sub_t *sub_find(const pubsub_t *ps, const ps_client_t *pc, const topic_t *t)
{
    sub_key_t k = {pc, t};
    return (sub_t *)htab_find(&ps->subs, sub_hash(pc, t), sub_eq, &k);
}

static void sub_create(pubsub_t *ps, ps_client_t *pc, topic_t *t)
{
    sub_t *s = ps_alloc(ps, sizeof(*s));
    int kind = t->kind;
    s->topic = t;
    s->pc = pc;
    s->h.hash = sub_hash(pc, t);
    htab_add(ps, &ps->subs, &s->h);
    s->tprev = t->last;
    if (s->tprev)
        s->tprev->tnext = s;
    else
        t->first = s;
    t->last = s;
    t->nsubs++;
    if (ps->count_cb)
        ps->count_cb(ps->count_ud, kind, t->name, t->len, t->nsubs);
    s->cprev = pc->last[kind];
    if (s->cprev)
        s->cprev->cnext = s;
    else
        pc->first[kind] = s;
    pc->last[kind] = s;
    pc->count[kind]++;
}

/* Removes s; destroys its topic if s was the last subscriber. */
static void sub_destroy(pubsub_t *ps, sub_t *s)
{
    topic_t *t = s->topic;
    ps_client_t *pc = s->pc;
    int kind = t->kind;
    htab_del(ps, &ps->subs, &s->h);
    if (s->tprev)
        s->tprev->tnext = s->tnext;
    else
        t->first = s->tnext;
    if (s->tnext)
        s->tnext->tprev = s->tprev;
    else
        t->last = s->tprev;
    if (s->cprev)
        s->cprev->cnext = s->cnext;
    else
        pc->first[kind] = s->cnext;
    if (s->cnext)
        s->cnext->cprev = s->cprev;
    else
        pc->last[kind] = s->cprev;
    pc->count[kind]--;
    ps_release(ps, s);
    --t->nsubs;
    if (ps->count_cb)
        ps->count_cb(ps->count_ud, kind, t->name, t->len, t->nsubs);
    if (t->nsubs == 0)
        topic_destroy(ps, t);
}

/* ---- per-client state ----------------------------------------------------- */

static ps_client_t *client_state(pubsub_t *ps, client_t *c)
{
    if (!c->pubsub) {
        ps_client_t *pc = ps_alloc(ps, sizeof(*pc));
        pc->c = c;
        c->pubsub = pc;
    }
    return c->pubsub;
}

static size_t total_subs(const ps_client_t *pc)
{
    return pc->count[PUBSUB_CHANNEL] + pc->count[PUBSUB_PATTERN] + pc->count[PUBSUB_SHARD];
}

/* The count a confirmation reports for kind (see the file comment). */
static size_t reported_count(const ps_client_t *pc, int kind)
{
    if (!pc)
        return 0;
    if (kind == PUBSUB_SHARD)
        return pc->count[PUBSUB_SHARD];
    return pc->count[PUBSUB_CHANNEL] + pc->count[PUBSUB_PATTERN];
}

static void soft_list_del(pubsub_t *ps, ps_client_t *pc)
{
    if (!pc->soft_since)
        return;
    if (pc->sprev)
        pc->sprev->snext = pc->snext;
    else
        ps->soft = pc->snext;
    if (pc->snext)
        pc->snext->sprev = pc->sprev;
    pc->sprev = pc->snext = NULL;
    pc->soft_since = 0;
}

static void soft_list_add(pubsub_t *ps, ps_client_t *pc, int64_t now)
{
    pc->soft_since = now ? now : 1;
    pc->sprev = NULL;
    pc->snext = ps->soft;
    if (ps->soft)
        ps->soft->sprev = pc;
    ps->soft = pc;
}

/* Frees c's state once it holds nothing, and keeps CLIENT_PUBSUB in step. */
static void client_settle(pubsub_t *ps, client_t *c)
{
    ps_client_t *pc = c->pubsub;
    if (pc && total_subs(pc) > 0) {
        c->flags |= CLIENT_PUBSUB;
        return;
    }
    c->flags &= ~CLIENT_PUBSUB;
    if (pc && !pc->doomed) {
        soft_list_del(ps, pc);
        ps_release(ps, pc);
        c->pubsub = NULL;
    }
}

/* ---- replies ------------------------------------------------------------ */

/* An array header in RESP2, a push header in RESP3. */
static void add_push_len(buf_t *o, int proto, size_t n)
{
    if (proto >= 3)
        buf_printf(o, ">%zu\r\n", n);
    else
        resp_add_array(o, n);
}

/* [word, name or nil, count] */
static void reply_confirm(client_t *c, const char *word, const char *name, size_t len, size_t count)
{
    add_push_len(&c->out, c->proto, 3);
    resp_add_bulk_str(&c->out, word);
    if (name)
        resp_add_bulk(&c->out, name, len);
    else
        resp_add_null(&c->out, c->proto);
    resp_add_int(&c->out, (long long)count);
}

/* ---- subscribe / unsubscribe ------------------------------------------- */

static int is_subscribed(const pubsub_t *ps, const ps_client_t *pc, int kind, const char *name,
                         size_t len)
{
    topic_t *t = pc ? topic_find(ps, kind, name, len) : NULL;
    return t && sub_find(ps, pc, t) != NULL;
}

/* Whether n more names fit under max_subscriptions. A name repeated in one
 * command is counted each time (the check is conservative). */
static int within_limit(const pubsub_t *ps, const client_t *c, int kind, int n,
                        const char *const *names, const size_t *lens)
{
    size_t max = ps->lim.max_subscriptions;
    const ps_client_t *pc = c->pubsub;
    size_t have = pc ? total_subs(pc) : 0;
    if (!max || have + (size_t)n <= max)
        return 1;
    size_t add = 0;
    for (int i = 0; i < n; i++)
        add += !is_subscribed(ps, pc, kind, names[i], lens[i]);
    return have + add <= max;
}

int pubsub_subscribe(pubsub_t *ps, client_t *c, int kind, int n, const char *const *names,
                     const size_t *lens)
{
    if (!within_limit(ps, c, kind, n, names, lens)) {
        ps->stats.subscription_limit_refusals++;
        resp_add_errorf(&c->out,
                        "ERR subscription limit reached: at most %zu subscriptions per client "
                        "(pubsub_max_subscriptions)",
                        ps->lim.max_subscriptions);
        return -1;
    }
    ps_client_t *pc = client_state(ps, c);
    for (int i = 0; i < n; i++) {
        topic_t *t = topic_find(ps, kind, names[i], lens[i]);
        if (!t)
            t = topic_create(ps, kind, names[i], lens[i]);
        if (!sub_find(ps, pc, t))
            sub_create(ps, pc, t);
        reply_confirm(c, sub_word[kind], names[i], lens[i], reported_count(pc, kind));
    }
    client_settle(ps, c);
    return 0;
}

/* Drops s, replying first if notify (the count after the drop). */
static void drop_sub(pubsub_t *ps, client_t *c, sub_t *s, int notify)
{
    ps_client_t *pc = s->pc;
    int kind = s->topic->kind;
    if (notify) {
        pc->count[kind]--; /* the count reported is the one after the drop */
        reply_confirm(c, unsub_word[kind], s->topic->name, s->topic->len, reported_count(pc, kind));
        pc->count[kind]++;
    }
    sub_destroy(ps, s);
}

static void drop_all_of_kind(pubsub_t *ps, client_t *c, int kind, int notify)
{
    ps_client_t *pc = c->pubsub;
    if (!pc || !pc->first[kind]) {
        if (notify)
            reply_confirm(c, unsub_word[kind], NULL, 0, reported_count(pc, kind));
        return;
    }
    while (pc->first[kind])
        drop_sub(ps, c, pc->first[kind], notify);
}

void pubsub_unsubscribe(pubsub_t *ps, client_t *c, int kind, int n, const char *const *names,
                        const size_t *lens)
{
    if (n == 0) {
        drop_all_of_kind(ps, c, kind, 1);
    } else {
        for (int i = 0; i < n; i++) {
            ps_client_t *pc = c->pubsub;
            topic_t *t = pc ? topic_find(ps, kind, names[i], lens[i]) : NULL;
            sub_t *s = t ? sub_find(ps, pc, t) : NULL;
            if (s)
                drop_sub(ps, c, s, 1);
            else
                reply_confirm(c, unsub_word[kind], names[i], lens[i], reported_count(pc, kind));
        }
    }
    client_settle(ps, c);
}

void pubsub_reset_client(pubsub_t *ps, client_t *c)
{
    for (int k = 0; k < PUBSUB_KINDS; k++)
        drop_all_of_kind(ps, c, k, 0);
    client_settle(ps, c);
}

void pubsub_client_closed(pubsub_t *ps, client_t *c)
{
    ps_client_t *pc = c->pubsub;
    if (!pc)
        return;
    for (int k = 0; k < PUBSUB_KINDS; k++)
        drop_all_of_kind(ps, c, k, 0);
    pc->doomed = 0; /* nothing refers to it any more: free it now */
    client_settle(ps, c);
}

size_t pubsub_client_subscriptions(const client_t *c, int kind)
{
    const ps_client_t *pc = c->pubsub;
    return pc ? pc->count[kind] : 0;
}

/* ---- delivery and output limits ---------------------------------------- */

/* 1 when c is over its hard limit, or over its soft limit for too long;
 * starts or stops c's soft-limit clock. */
static int over_limits(pubsub_t *ps, ps_client_t *pc, int64_t now)
{
    const client_t *c = pc->c;
    size_t used = buf_len(&c->out) + c->out_inflight;
    if (ps->lim.out_hard && used >= ps->lim.out_hard)
        return 1;
    if (!ps->lim.out_soft || used < ps->lim.out_soft) {
        soft_list_del(ps, pc);
        return 0;
    }
    if (!pc->soft_since) {
        soft_list_add(ps, pc, now);
        return 0;
    }
    return now - pc->soft_since > ps->lim.out_soft_ms;
}

static void doom(ps_client_t *pc, ps_client_t **doomed)
{
    if (pc->doomed)
        return;
    pc->doomed = 1;
    pc->dnext = *doomed;
    *doomed = pc;
}

/* Closes the clients found over a limit (their state goes with them). */
static void close_doomed(pubsub_t *ps, ps_client_t *doomed)
{
    while (doomed) {
        ps_client_t *pc = doomed;
        doomed = pc->dnext;
        client_t *c = pc->c;
        ps->stats.output_limit_disconnects++;
        log_warn("pubsub",
                 "closing subscriber id=%llu addr=%s: %zu output bytes over the "
                 "pub/sub output buffer limit",
                 (unsigned long long)c->id, c->addr, buf_len(&c->out) + c->out_inflight);
        pc->doomed = 0;
        ps->close(c, "pubsub output buffer limit");
        if (c->pubsub == pc) /* a close function that did not drop it */
            pubsub_client_closed(ps, c);
    }
}

/* Writes one message to pc's client: [word, (pattern,) channel, msg]; now
 * is the publish's clock_now_ms() (read once per publish, not per
 * subscriber). */
static void deliver(pubsub_t *ps, ps_client_t *pc, const topic_t *pattern, const char *word,
                    const char *ch, size_t chlen, const char *msg, size_t mlen, int64_t now,
                    ps_client_t **doomed)
{
    client_t *c = pc->c;
    if (pc->doomed || (c->flags & (CLIENT_CLOSING | CLIENT_CLOSE_AFTER_REPLY)))
        return;
    buf_t *o = &c->out;
    add_push_len(o, c->proto, pattern ? 4 : 3);
    resp_add_bulk_str(o, word);
    if (pattern)
        resp_add_bulk(o, pattern->name, pattern->len);
    resp_add_bulk(o, ch, chlen);
    resp_add_bulk(o, msg, mlen);
    ps->stats.deliveries++;
    if (c->server)
        server_want_write(c->server, c);
    if (over_limits(ps, pc, now))
        doom(pc, doomed);
}

size_t pubsub_publish_local(pubsub_t *ps, const char *ch, size_t chlen, const char *msg,
                            size_t mlen, int is_shard)
{
    ps->stats.messages++;
    ps_client_t *doomed = NULL;
    size_t receivers = 0;
    int kind = is_shard ? PUBSUB_SHARD : PUBSUB_CHANNEL;
    const char *word = is_shard ? "smessage" : "message";
    topic_t *t = topic_find(ps, kind, ch, chlen);
    int64_t now = (t || (!is_shard && ps->first[PUBSUB_PATTERN])) ? clock_now_ms() : 0;
    for (sub_t *s = t ? t->first : NULL; s; s = s->tnext) {
        deliver(ps, s->pc, NULL, word, ch, chlen, msg, mlen, now, &doomed);
        receivers++;
    }
    for (topic_t *p = is_shard ? NULL : ps->first[PUBSUB_PATTERN]; p; p = p->next) {
        if (!glob_match(p->name, p->len, ch, chlen))
            continue;
        for (sub_t *s = p->first; s; s = s->tnext) {
            deliver(ps, s->pc, p, "pmessage", ch, chlen, msg, mlen, now, &doomed);
            receivers++;
        }
    }
    close_doomed(ps, doomed);
    return receivers;
}

int pubsub_after_reply(pubsub_t *ps, client_t *c)
{
    ps_client_t *pc = c->pubsub;
    if (!pc || (c->flags & CLIENT_CLOSING) || !over_limits(ps, pc, clock_now_ms()))
        return 0;
    ps_client_t *doomed = NULL;
    doom(pc, &doomed);
    close_doomed(ps, doomed);
    return 1;
}

void pubsub_cron(pubsub_t *ps, int64_t now_ms)
{
    ps_client_t *doomed = NULL;
    ps_client_t *pc = ps->soft;
    while (pc) {
        ps_client_t *next = pc->snext;
        if (over_limits(ps, pc, now_ms))
            doom(pc, &doomed);
        pc = next;
    }
    close_doomed(ps, doomed);
}

/* ---- queries ------------------------------------------------------------ */

int pubsub_has_interest(const pubsub_t *ps, const char *ch, size_t chlen, int is_shard)
{
    if (topic_find(ps, is_shard ? PUBSUB_SHARD : PUBSUB_CHANNEL, ch, chlen))
        return 1;
    for (topic_t *p = is_shard ? NULL : ps->first[PUBSUB_PATTERN]; p; p = p->next)
        if (glob_match(p->name, p->len, ch, chlen))
            return 1;
    return 0;
}

size_t pubsub_numsub(const pubsub_t *ps, int kind, const char *name, size_t len)
{
    const topic_t *t = topic_find(ps, kind, name, len);
    return t ? t->nsubs : 0;
}

size_t pubsub_topics(const pubsub_t *ps, int kind)
{
    return ps->topics[kind].count;
}

void pubsub_foreach(const pubsub_t *ps, int kind, const char *pat, size_t plen, pubsub_visit_fn fn,
                    void *ud)
{
    for (const topic_t *t = ps->first[kind]; t; t = t->next)
        if (!pat || glob_match(pat, plen, t->name, t->len))
            fn(ud, t->name, t->len, t->nsubs);
}

size_t pubsub_memory(const pubsub_t *ps)
{
    return ps->mem;
}

const pubsub_stats_t *pubsub_stats(const pubsub_t *ps)
{
    return &ps->stats;
}

/* ---- lifetime ----------------------------------------------------------- */

pubsub_t *pubsub_new(const pubsub_limits_t *limits)
{
    pubsub_t *ps = xcalloc(1, sizeof(*ps));
    ps->lim = *limits;
    ps->close = client_close;
    return ps;
}

void pubsub_set_interest_cb(pubsub_t *ps, pubsub_interest_fn fn, void *ud)
{
    ps->interest = fn;
    ps->interest_ud = ud;
}

void pubsub_set_count_cb(pubsub_t *ps, pubsub_count_fn fn, void *ud)
{
    ps->count_cb = fn;
    ps->count_ud = ud;
}

void pubsub_set_close_fn(pubsub_t *ps, pubsub_close_fn fn)
{
    ps->close = fn ? fn : client_close;
}

void pubsub_free(pubsub_t *ps)
{
    if (!ps)
        return;
    ps->interest = NULL;
    ps->count_cb = NULL;
    /* Every topic has a subscriber: dropping every subscription frees all. */
    for (int k = 0; k < PUBSUB_KINDS; k++) {
        while (ps->first[k]) {
            topic_t *t = ps->first[k];
            client_t *c = t->first->pc->c;
            pubsub_client_closed(ps, c);
        }
    }
    free(ps);
}
