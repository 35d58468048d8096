/* presync: presence entries copied to every member over the peer links.
 *
 * Owns: the PRESENCE frames: this node's changes of its own entries
 * (cluster_presence_change, batched per loop turn and sent in order to every
 * member with a READY link) and the full set of its own entries that every
 * new link starts with (read through cluster_presence_host_t.presence_owned, sent in
 * frames of about FRAME_BATCH_SOFT, all in the turn the link comes up);
 * and, on the receiving side, handing a member's frames to the host
 * (presence_apply, presence_full).
 * Never: keeps presence entries itself, decides when a member's entries go
 * (the host drops them on origin_gone: its node is dead or restarted), or
 * sends anything on a link that is not READY.
 *
 * Invariants (and what checks them):
 *  1. Every new link carries, before any later change, the sender's full set
 *     (PRESENCE_FULL_BEGIN ... PRESENCE_FULL_END); the receiver replaces what
 *     it held of the sender with it, so after a partition heals or a node
 *     restarts every node holds the owners' state
 *     (tests/integration/test_presence_cluster.py
 *     test_partition_heals_to_owners_state,
 *     test_kill9_users_leave_everywhere_and_restart_gets_state).
 *  2. Changes made before the full set was taken went out on the other links
 *     first (pending is sent before the full set), so no link sees a change
 *     twice or out of order; after it, changes go out in the order they were
 *     made, on one link per member (TCP keeps them in order)
 *     (test_chat_room_three_nodes, test_many_entries_identical_on_every_node;
 *     tests/unit/test_frame.c for the frame's bytes).
 *  3. A member declared dead while its link stays up (the store decides:
 *     its row expired) has its entries dropped by the host; its frames are
 *     ignored while it is DEAD, and once it is not, it is asked for its full
 *     set again (PRESENCE_FULL_REQUEST), so its entries come back only as a
 *     whole (test_presence_cluster.py
 *     test_declared_dead_by_the_store_then_back).
 *  4. A malformed PRESENCE frame closes the link (peer_refuse); an entry out
 *     of the host's bounds is dropped and counted (presence_refused)
 *     (tests/unit/test_frame.c test_presence_malformed; tests/unit/
 *     test_presence.c test_limits for the bounds).
 */
#include "cluster_int.h"
#include "log.h"

void presync_init(cluster_t *cl)
{
    buf_init(&cl->presence_pending);
    cl->presence_pending_n = 0;
}

void cluster_set_presence_host(cluster_t *cl, const cluster_presence_host_t *h)
{
    if (cl)
        cl->phost = *h;
}

void presync_free(cluster_t *cl)
{
    buf_free(&cl->presence_pending);
}

/* Writes one PRESENCE frame to l: the head, then count entries already
 * encoded in entries. */
static void emit_frame(link_t *l, uint8_t flags, uint32_t count, const buf_t *entries)
{
    size_t s = peer_frame_begin(l, FRAME_PRESENCE);
    frame_put_presence_head(&l->out, flags, count);
    buf_append(&l->out, buf_head(entries), buf_len(entries));
    peer_frame_end(l, s);
    l->cl->counters.presence_frames_sent++;
}

/* Marks the members declared dead while linked (the host dropped their
 * entries), and asks those that are back for their full set. */
static void check_lost(cluster_t *cl)
{
    static const buf_t none;
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *m = &cl->members[i];
        if (!m->link || m->link->state != LINK_READY)
            continue;
        if (m->state == MEMBER_DEAD) {
            m->presence_lost = 1;
        } else if (m->presence_lost) {
            m->presence_lost = 0;
            emit_frame(m->link, PRESENCE_FULL_REQUEST, 0, &none);
            log_info("presence", "asking %s for its entries again (dropped while it was dead)",
                     m->name);
        }
    }
}

void presync_send_pending(cluster_t *cl)
{
    if (cl->phost.presence_apply)
        check_lost(cl);
    if (cl->presence_pending_n == 0)
        return;
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *m = &cl->members[i];
        if (m->link && m->link->state == LINK_READY)
            emit_frame(m->link, 0, cl->presence_pending_n, &cl->presence_pending);
    }
    buf_clear(&cl->presence_pending);
    cl->presence_pending_n = 0;
}

void cluster_presence_change(cluster_t *cl, int op, const char *ch, size_t chlen,
                             const char *member, size_t mlen, const char *meta, size_t metalen)
{
    if (!cl || cl->stopping)
        return;
    frame_put_presence(&cl->presence_pending, (uint8_t)op, ch, chlen, member, mlen, meta,
                       metalen);
    cl->presence_pending_n++;
    if (buf_len(&cl->presence_pending) >= FRAME_BATCH_SOFT)
        presync_send_pending(cl);
}

typedef struct full_set {
    link_t *l;
    buf_t entries;
    uint32_t count;
    int first;
} full_set_t;

static void full_flush(full_set_t *f, int last)
{
    uint8_t flags = (uint8_t)((f->first ? PRESENCE_FULL_BEGIN : 0) | (last ? PRESENCE_FULL_END : 0));
    emit_frame(f->l, flags, f->count, &f->entries);
    f->first = 0;
    f->count = 0;
    buf_clear(&f->entries);
}

static void full_add(void *ud, const char *ch, size_t chlen, const char *member, size_t mlen,
                     const char *meta, size_t metalen)
{
    full_set_t *f = ud;
    frame_put_presence(&f->entries, PRESENCE_JOIN, ch, chlen, member, mlen, meta, metalen);
    f->count++;
    if (buf_len(&f->entries) >= FRAME_BATCH_SOFT)
        full_flush(f, 0);
}

/* Sends this node's full set on l (after the pending changes). */
static void send_full(cluster_t *cl, link_t *l)
{
    presync_send_pending(cl); /* what the full set already holds goes out first */
    full_set_t f = {.l = l, .first = 1};
    buf_init(&f.entries);
    cl->phost.presence_owned(cl->phost.ud, full_add, &f);
    full_flush(&f, 1); /* an empty full set still says "nothing" */
    buf_free(&f.entries);
}

void presync_on_link_ready(member_t *m)
{
    cluster_t *cl = m->cl;
    link_t *l = m->link;
    m->presence_lost = 0; /* its full set comes on this link */
    if (!l || l->state != LINK_READY || !cl->phost.presence_owned)
        return;
    send_full(cl, l);
}

void presync_on_frame(member_t *m, link_t *l, const frame_hdr_t *h)
{
    cluster_t *cl = m->cl;
    frame_reader_t r;
    frame_reader_init(&r, h);
    uint8_t flags;
    uint32_t count;
    if (frame_get_presence_head(&r, &flags, &count) < 0) {
        peer_refuse(l, "malformed PRESENCE");
        return;
    }
    if ((flags & PRESENCE_FULL_REQUEST) && cl->phost.presence_owned)
        send_full(cl, l);
    if (m->state == MEMBER_DEAD) { /* its entries are gone here: nothing of it now */
        m->presence_lost = 1;
        return;
    }
    int origin = (int)(m - cl->members);
    if ((flags & PRESENCE_FULL_BEGIN) && cl->phost.presence_full)
        cl->phost.presence_full(cl->phost.ud, origin, 1);
    for (uint32_t i = 0; i < count; i++) {
        frame_presence_t e;
        if (frame_get_presence(&r, &e, UINT32_MAX) < 0)
            break;
        if (!cl->phost.presence_apply)
            continue;
        if (cl->phost.presence_apply(cl->phost.ud, origin, e.op, (const char *)e.channel.p,
                                    e.channel.len, (const char *)e.member.p, e.member.len,
                                    (const char *)e.meta.p, e.meta.len) < 0)
            cl->counters.presence_refused++;
    }
    if (frame_reader_done(&r) != 0) {
        peer_refuse(l, "malformed PRESENCE");
        return;
    }
    if ((flags & PRESENCE_FULL_END) && cl->phost.presence_full)
        cl->phost.presence_full(cl->phost.ud, origin, 0);
}
