/* interest: cluster-wide pub/sub over the peer links.
 *
 * Owns: this node's announced interest (the channels, patterns and shard
 * channels its clients subscribe to, with their local subscriber counts, fed
 * by cluster_set_interest), each member's last announced interest, the
 * INTEREST frames (a full set on every new link, then the changes once per
 * loop turn) and the MESSAGE frames (cluster_publish), and the pub/sub
 * counters of cluster_counters_t.
 * Never: keeps a message once it is written to a link (no log, no replay, no
 * retry), sends a message on any link but the member's current one, or
 * reaches the subscribers other than through cluster_host_t.deliver.
 *
 * Invariants (and what checks them):
 *  1. A member's interest is "known" only after its full set arrived on the
 *     current link (m->interest_gen == m->link_gen); only then does it count
 *     in cluster_publish's result and in NUMSUB/CHANNELS/NUMPAT
 *     (tests/integration/test_pubsub_cluster.py test_numsub_across_nodes,
 *     test_restart_resends_interest).
 *  2. A message goes to a member with a ready link whose interest is known
 *     and matches, or whose interest is not known yet (conservative: the
 *     receiver matches it again); never to one whose known interest does not
 *     match (test_unsubscribe_stops_sending).
 *  3. A message is written at most once, to one link: a member gets it at
 *     most once and, per publisher, in publication order (TCP, and the frame
 *     sequence numbers); a link that breaks loses what it had not delivered,
 *     nothing is sent again (test_no_duplicates_after_link_reset;
 *     tests/unit/test_frame.c test_messages_in_order_no_replay).
 *  4. A message that matched a member's last known interest while the member
 *     had no link (and was not dead) is counted in pubsub_lost
 *     (test_lost_while_link_down).
 *  5. Each new link gets this node's full set first, so a member's view of
 *     this node is right after reconnects and restarts on both sides
 *     (test_restart_resends_interest).
 *  6. The messages of one loop turn to one member share a MESSAGE frame
 *     (one MAC for all of them), in publication order; a frame another
 *     module writes to that link in between ends it first, so every frame
 *     keeps its place in the link's order (test_pubsub_cluster.py
 *     test_pipelined_messages_batched_in_order; tests/unit/test_frame.c
 *     test_message_batch).
 */
#include <assert.h>
#include <string.h>

#include "cluster_int.h"
#include "glob.h"
#include "itable.h"
#include "log.h"
#include "mem.h"

void interest_init(cluster_t *cl)
{
    cl->local_interest = itable_new();
    buf_init(&cl->interest_pending);
    for (size_t i = 0; i < cl->nmembers; i++)
        cl->members[i].interest = itable_new();
}

void interest_free(cluster_t *cl)
{
    itable_free(cl->local_interest);
    cl->local_interest = NULL;
    buf_free(&cl->interest_pending);
    for (size_t i = 0; i < cl->nmembers; i++) {
        itable_free(cl->members[i].interest);
        cl->members[i].interest = NULL;
    }
}

/* 1 when m's interest, as announced on its current link, is known. */
static int known(const member_t *m)
{
    return m->link && m->interest_gen == m->link_gen;
}

/* Writes one INTEREST frame to l: the head, then count entries already
 * encoded in entries. */
static void emit(link_t *l, uint8_t flags, uint32_t count, const buf_t *entries)
{
    size_t s = peer_frame_begin(l, FRAME_INTEREST);
    frame_put_interest_head(&l->out, flags, count);
    buf_append(&l->out, buf_head(entries), buf_len(entries));
    peer_frame_end(l, s);
    l->cl->counters.interest_frames_sent++;
}

typedef struct full_set {
    link_t *l;
    buf_t entries;
    uint32_t count;
    int first;
} full_set_t;

static void full_set_flush(full_set_t *f)
{
    emit(f->l, f->first ? INTEREST_FULL : 0, f->count, &f->entries);
    f->first = 0;
    f->count = 0;
    buf_clear(&f->entries);
}

static void full_set_add(void *ud, int kind, const char *name, size_t len, uint32_t count)
{
    full_set_t *f = ud;
    frame_put_interest(&f->entries, (uint8_t)kind, count, name, len);
    f->count++;
    if (buf_len(&f->entries) >= FRAME_BATCH_SOFT)
        full_set_flush(f);
}

void interest_on_link_ready(member_t *m)
{
    link_t *l = m->link;
    if (!l || l->state != LINK_READY)
        return;
    full_set_t f = {.l = l, .first = 1};
    buf_init(&f.entries);
    for (int k = 0; k < INTEREST_KINDS; k++)
        itable_foreach(m->cl->local_interest, k, full_set_add, &f);
    if (f.first || f.count)
        full_set_flush(&f); /* an empty full set still says "nothing" */
    buf_free(&f.entries);
}

void interest_end_batch(link_t *l)
{
    if (!l->msg_open)
        return;
    l->msg_open = 0;
    peer_frame_end(l, l->msg_at);
    l->cl->counters.pubsub_frames_sent++;
}

void interest_send_pending(cluster_t *cl)
{
    for (size_t i = 0; i < cl->nmembers; i++)
        if (cl->members[i].link)
            interest_end_batch(cl->members[i].link);
    if (cl->interest_pending_n == 0)
        return;
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *m = &cl->members[i];
        if (m->link && m->link->state == LINK_READY)
            emit(m->link, 0, cl->interest_pending_n, &cl->interest_pending);
    }
    buf_clear(&cl->interest_pending);
    cl->interest_pending_n = 0;
}

void cluster_set_interest(cluster_t *cl, int kind, const char *name, size_t len,
                          uint32_t subscribers)
{
    if (!cl || cl->stopping)
        return;
    itable_set(cl->local_interest, kind, name, len, subscribers);
    frame_put_interest(&cl->interest_pending, (uint8_t)kind, subscribers, name, len);
    cl->interest_pending_n++;
    if (buf_len(&cl->interest_pending) >= FRAME_BATCH_SOFT)
        interest_send_pending(cl);
}

static void on_interest(member_t *m, link_t *l, const frame_hdr_t *h)
{
    frame_reader_t r;
    frame_reader_init(&r, h);
    uint8_t flags;
    uint32_t count;
    if (frame_get_interest_head(&r, &flags, &count) < 0) {
        peer_refuse(l, "malformed INTEREST");
        return;
    }
    if (flags & INTEREST_FULL) {
        itable_clear(m->interest);
        m->interest_gen = m->link_gen;
    }
    for (uint32_t i = 0; i < count; i++) {
        frame_interest_t e;
        if (frame_get_interest(&r, &e, UINT32_MAX) < 0)
            break;
        itable_set(m->interest, e.kind, (const char *)e.name.p, e.name.len, e.subscribers);
    }
    if (frame_reader_done(&r) != 0)
        peer_refuse(l, "malformed INTEREST");
}

/* A MESSAGE frame: checked whole first (a malformed one delivers nothing),
 * then each message delivered in order. */
static void on_message(member_t *m, link_t *l, const frame_hdr_t *h)
{
    cluster_t *cl = m->cl;
    long n = frame_count_messages(h, UINT32_MAX);
    if (n < 0) {
        peer_refuse(l, "malformed MESSAGE");
        return;
    }
    frame_reader_t r;
    frame_reader_init(&r, h);
    for (long i = 0; i < n; i++) {
        frame_message_t msg;
        int rc = frame_get_message(&r, &msg, UINT32_MAX);
        assert(rc == 0);
        (void)rc;
        cl->counters.pubsub_received++;
        if (cl->host.deliver)
            cl->host.deliver(cl->host.ud, (const char *)msg.channel.p, msg.channel.len,
                             (const char *)msg.payload.p, msg.payload.len,
                             (msg.flags & MESSAGE_SHARD) != 0);
    }
}

void interest_on_frame(member_t *m, link_t *l, const frame_hdr_t *h)
{
    if (h->type == FRAME_INTEREST)
        on_interest(m, l, h);
    else
        on_message(m, l, h);
}

/* Appends one message to l's open MESSAGE frame, opening one first when
 * none is open or the open one has FRAME_BATCH_SOFT of payload already. The
 * frame ends at the end of the loop turn (interest_send_pending), or when
 * another frame is written to l (peer_frame_begin). */
static void put_message(link_t *l, uint8_t flags, const char *ch, size_t chlen, const char *msg,
                        size_t mlen)
{
    if (l->msg_open && buf_len(&l->out) - l->msg_at - FRAME_HEADER_SIZE >= FRAME_BATCH_SOFT)
        interest_end_batch(l);
    if (!l->msg_open) {
        l->msg_at = peer_frame_begin(l, FRAME_MESSAGE);
        l->msg_open = 1;
    }
    frame_put_message(&l->out, flags, ch, chlen, msg, mlen);
}

size_t cluster_publish(cluster_t *cl, const char *ch, size_t chlen, const char *msg, size_t mlen,
                       int shard)
{
    if (!cl || cl->stopping)
        return 0;
    uint64_t total = 0;
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *m = &cl->members[i];
        uint64_t n = itable_receivers(m->interest, ch, chlen, shard);
        link_t *l = m->link;
        if (l && l->state == LINK_READY) {
            if (known(m) && n == 0)
                continue;
            put_message(l, shard ? MESSAGE_SHARD : 0, ch, chlen, msg, mlen);
            cl->counters.pubsub_sent++;
            if (known(m))
                total += n;
        } else if (n > 0 && m->state != MEMBER_DEAD) {
            cl->counters.pubsub_lost++;
        }
    }
    return (size_t)total;
}

size_t cluster_numsub(const cluster_t *cl, int kind, const char *name, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; cl && i < cl->nmembers; i++)
        if (known(&cl->members[i]))
            n += itable_get(cl->members[i].interest, kind, name, len);
    return n;
}

size_t cluster_topics(const cluster_t *cl, int kind)
{
    size_t n = 0;
    for (size_t i = 0; cl && i < cl->nmembers; i++)
        if (known(&cl->members[i]))
            n += itable_topics(cl->members[i].interest, kind);
    return n;
}

typedef struct topic_walk {
    const cluster_t *cl;
    size_t member; /* whose table is walked */
    const char *pat;
    size_t plen;
    cluster_topic_fn fn;
    void *ud;
} topic_walk_t;

static void visit_topic(void *ud, int kind, const char *name, size_t len, uint32_t count)
{
    topic_walk_t *w = ud;
    if (w->pat && !glob_match(w->pat, w->plen, name, len))
        return;
    for (size_t j = 0; j < w->member; j++) /* listed already by an earlier member */
        if (known(&w->cl->members[j]) && itable_get(w->cl->members[j].interest, kind, name, len))
            return;
    w->fn(w->ud, name, len, cluster_numsub(w->cl, kind, name, len));
    (void)count;
}

void cluster_foreach_topic(const cluster_t *cl, int kind, const char *pat, size_t plen,
                           cluster_topic_fn fn, void *ud)
{
    topic_walk_t w = {cl, 0, pat, plen, fn, ud};
    for (size_t i = 0; cl && i < cl->nmembers; i++) {
        if (!known(&cl->members[i]))
            continue;
        w.member = i;
        itable_foreach(cl->members[i].interest, kind, visit_topic, &w);
    }
}
