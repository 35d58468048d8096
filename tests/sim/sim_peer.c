/* sim_peer: the peer layer of the simulator, linked in place of peer.c.
 *
 * Owns: simulated connections between simulated nodes: an ordered byte
 * pipe per direction (chunks with an arrival time; a cut link holds them
 * until it heals, as TCP retransmits; an end that closes or a process that
 * dies sends EOF after its data), connection attempts (refused when nothing
 * listens, never answered across a cut or to a stopped process, so the
 * handshake deadline fires), knocks, and every peer_* function of
 * cluster_int.h with the same effects on membership and coherence as
 * peer.c.
 * Never: runs the handshake's cryptography (two ends of a connection become
 * ready together, after the round trips a handshake takes; frames carry a
 * fixed simulation key), or frees a link while a caller may still hold it
 * (closed links wait for sim_peer_collect).
 *
 * Frames are real: encoded, MACed and decoded by proto/frame.c and handed
 * to cluster_on_frame, as peer.c does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"
#include "sim.h"

#define HANDSHAKE_MS 2000
#define KNOCK_MS 1000
#define NEVER INT64_MAX

typedef struct chunk {
    struct chunk *next;
    int64_t at; /* arrival time; NEVER while held by a cut */
    int eof;    /* the sender closed: the receiver sees the end */
    size_t len;
    char data[];
} chunk_t;

typedef struct conn {
    struct conn *next;
    link_t *end[2]; /* [0] the initiator's link, [1] the acceptor's; NULL once gone */
    int node[2];
    chunk_t *head[2], *tail[2]; /* [d]: bytes from end[d] to end[1 - d] */
} conn_t;

struct knock {
    struct knock *next;
    member_t *member;
    int cancelled;
};

static conn_t *conns;      /* connections with an end still open */
static conn_t *dead_conns; /* both ends gone: kept (events may name them) until reset */
static link_t *graveyard;
static struct knock *knocks;
static frame_key_t sim_key;

void sim_peer_init(void)
{
    uint8_t k[FRAME_KEY_SIZE];
    memset(k, 0x5a, sizeof(k));
    if (!sim_key.ctx)
        frame_key_init(&sim_key, k);
}

static conn_t *conn_of(const link_t *l)
{
    return l->tcp.data;
}

static int side_of(const link_t *l)
{
    return l->initiator ? 0 : 1;
}

/* ---- pipes ----------------------------------------------------------------- */

/* Appends bytes (or EOF) to the pipe from side d of c. */
static void pipe_push(conn_t *c, int d, const char *p, size_t len, int eof)
{
    chunk_t *ch = xmalloc(sizeof(*ch) + len);
    ch->next = NULL;
    ch->eof = eof;
    ch->len = len;
    if (len)
        memcpy(ch->data, p, len);
    int to = c->node[1 - d];
    int64_t at = NEVER;
    if (to >= 0 && !sim_cut(c->node[d], to)) {
        at = sim_now() + sim_latency();
        if (c->tail[d] && c->tail[d]->at != NEVER && c->tail[d]->at > at)
            at = c->tail[d]->at; /* in order */
        if (c->tail[d] && c->tail[d]->at == NEVER)
            at = NEVER; /* behind held bytes */
    }
    ch->at = at;
    if (c->tail[d])
        c->tail[d]->next = ch;
    else
        c->head[d] = ch;
    c->tail[d] = ch;
    if (at != NEVER)
        sim_at(at, NULL, NULL, to); /* wake the receiver then */
}

static void pipe_free(conn_t *c, int d)
{
    while (c->head[d]) {
        chunk_t *ch = c->head[d];
        c->head[d] = ch->next;
        free(ch);
    }
    c->tail[d] = NULL;
}

/* ---- links ------------------------------------------------------------------ */

static link_t *new_link(cluster_t *cl, int initiator, conn_t *c)
{
    link_t *l = xcalloc(1, sizeof(*l));
    l->cl = cl;
    l->initiator = initiator;
    buf_init(&l->in);
    buf_init(&l->out);
    l->tcp.data = c;
    l->deadline = sim_now() + HANDSHAKE_MS;
    l->next = cl->links;
    cl->links = l;
    c->end[initiator ? 0 : 1] = l;
    return l;
}

static void unlist(link_t **head, link_t *l, int wlist)
{
    for (link_t **p = head; *p; p = wlist ? &(*p)->wnext : &(*p)->next) {
        if (*p == l) {
            *p = wlist ? l->wnext : l->next;
            return;
        }
    }
}

void peer_close(link_t *l, const char *why)
{
    (void)why;
    if (l->state == LINK_CLOSING)
        return;
    int was_ready = l->state == LINK_READY;
    l->state = LINK_CLOSING;
    cluster_t *cl = l->cl;
    unlist(&cl->links, l, 0);
    if (l->in_wlist)
        unlist(&cl->wlist, l, 1);
    l->in_wlist = 0;
    cluster_link_closed(l, was_ready);
    conn_t *c = conn_of(l);
    int d = side_of(l);
    if (c->node[1 - d] >= 0 && c->end[1 - d])
        pipe_push(c, d, NULL, 0, 1);
    c->end[d] = NULL;
    l->next = graveyard;
    graveyard = l;
}

void peer_refuse(link_t *l, const char *why)
{
    l->cl->counters.links_refused++;
    peer_close(l, why);
}

size_t peer_frame_begin(link_t *l, uint8_t type)
{
    interest_end_batch(l);
    return frame_begin(&l->out, type, l->state == LINK_READY ? &l->send_seq : NULL);
}

void peer_frame_end(link_t *l, size_t start)
{
    frame_end(&l->out, start, &sim_key);
    if (l->in_wlist || l->state == LINK_CLOSING)
        return;
    l->in_wlist = 1;
    l->wnext = l->cl->wlist;
    l->cl->wlist = l;
}

void peer_flush_writes(cluster_t *cl)
{
    while (cl->wlist) {
        link_t *l = cl->wlist;
        cl->wlist = l->wnext;
        l->in_wlist = 0;
        interest_end_batch(l);
        if (l->state == LINK_CLOSING || buf_len(&l->out) == 0)
            continue;
        conn_t *c = conn_of(l);
        pipe_push(c, side_of(l), buf_head(&l->out), buf_len(&l->out), 0);
        buf_clear(&l->out);
    }
}

int peer_listen(cluster_t *cl, char *err, size_t errlen)
{
    (void)cl, (void)err, (void)errlen;
    return 0;
}

/* ---- connecting ----------------------------------------------------------------- */

static void take_bytes(link_t *l);

/* Both ends prove themselves (the handshake's round trips are over). */
static void on_handshaken(void *arg, int64_t unused)
{
    (void)unused;
    conn_t *c = arg;
    link_t *a = c->end[0], *b = c->end[1];
    if (!a || !b)
        return; /* one end gave up: it sent EOF, the other will see it */
    if (sim_cut(c->node[0], c->node[1]) || sim_cut(c->node[1], c->node[0]) ||
        sim_paused(c->node[0]) || sim_paused(c->node[1]))
        return; /* stuck: the handshake deadline closes the ends */
    cluster_t *ca = a->cl, *cb = b->cl;
    snprintf(a->peer_name, sizeof(a->peer_name), "%s", cb->cfg->name);
    a->peer_inc = cb->incarnation;
    snprintf(b->peer_name, sizeof(b->peer_name), "%s", ca->cfg->name);
    b->peer_inc = ca->incarnation;
    frame_key_init(&a->key_in, sim_key.bytes);
    frame_key_init(&a->key_out, sim_key.bytes);
    frame_key_init(&b->key_in, sim_key.bytes);
    frame_key_init(&b->key_out, sim_key.bytes);
    cluster_link_ready(a);
    if (b->state != LINK_CLOSING && b->cl == cb)
        cluster_link_ready(b);
}

static void on_connect_arrives(void *arg, int64_t unused)
{
    (void)unused;
    conn_t *c = arg;
    link_t *l = c->end[0];
    if (!l || l->state == LINK_CLOSING)
        return;
    int t = c->node[1];
    cluster_t *target = t >= 0 ? sim_cluster(t) : NULL;
    if (!target) { /* nothing listens: refused, as on_connected reports it */
        member_t *m = l->member;
        m->pending = NULL;
        l->member = NULL;
        peer_close(l, "connection refused");
        member_connect_failed(m, 1);
        return;
    }
    if (sim_cut(c->node[0], t) || sim_cut(t, c->node[0]) || sim_paused(t))
        return; /* no answer: the handshake deadline fires */
    member_t *m2 = NULL;
    for (size_t i = 0; i < target->nmembers && !m2; i++)
        if (strcmp(target->members[i].id, l->cl->self_id) == 0)
            m2 = &target->members[i];
    if (!m2) {
        peer_refuse(l, "not a configured peer");
        return;
    }
    link_t *b = new_link(target, 0, c);
    b->member = m2;
    b->state = LINK_HANDSHAKE;
    sim_at(sim_now() + 2 * sim_latency(), on_handshaken, c, 0);
}

void peer_connect(cluster_t *cl, member_t *m)
{
    conn_t *c = xcalloc(1, sizeof(*c));
    c->next = conns;
    conns = c;
    c->node[0] = sim_node_of(cl);
    c->node[1] = sim_node_by_id(m->id);
    link_t *l = new_link(cl, 1, c);
    l->member = m;
    l->state = LINK_CONNECTING;
    snprintf(l->addr, sizeof(l->addr), "%s", m->id);
    m->pending = l;
    sim_at(sim_now() + sim_latency(), on_connect_arrives, c, 0);
}

/* ---- knocking ------------------------------------------------------------------- */

static void on_knock_answer(void *arg, int64_t unused)
{
    (void)unused;
    struct knock *k = arg;
    if (k->cancelled)
        return;
    member_t *m = k->member;
    k->cancelled = 1;
    m->knock = NULL;
    int t = sim_node_by_id(m->id);
    member_knock_result(m, t < 0 || !sim_cluster(t));
}

void peer_knock(cluster_t *cl, member_t *m)
{
    if (m->knock)
        return;
    struct knock *k = xcalloc(1, sizeof(*k));
    k->member = m;
    k->next = knocks;
    knocks = k;
    m->knock = k;
    m->knock_deadline = sim_now() + KNOCK_MS;
    int t = sim_node_by_id(m->id);
    int me = sim_node_of(cl);
    if (t < 0 || (!sim_cut(me, t) && !sim_cut(t, me)))
        sim_at(sim_now() + 2 * sim_latency(), on_knock_answer, k, 0);
}

void peer_knock_cancel(member_t *m)
{
    if (!m->knock)
        return;
    m->knock->cancelled = 1;
    m->knock = NULL;
}

/* ---- delivering ------------------------------------------------------------------ */

/* Hands every whole frame in l->in to the cluster, as peer.c does. */
static void take_bytes(link_t *l)
{
    while (l->state == LINK_READY) {
        frame_hdr_t h;
        long n = frame_decode((const uint8_t *)buf_head(&l->in), buf_len(&l->in), UINT32_MAX,
                              &l->key_in, &l->recv_seq, &h);
        if (n == 0)
            break;
        if (n < 0) {
            peer_refuse(l, frame_strerror((int)n));
            return;
        }
        cluster_on_frame(l, &h);
        if (l->state == LINK_CLOSING)
            return;
        buf_consume(&l->in, (size_t)n);
    }
}

void sim_peer_deliver(int i)
{
    int64_t now = sim_now();
    for (conn_t *c = conns; c; c = c->next) {
        for (int d = 0; d < 2; d++) {
            if (c->node[1 - d] != i)
                continue;
            while (c->head[d] && c->head[d]->at <= now) {
                chunk_t *ch = c->head[d];
                c->head[d] = ch->next;
                if (!c->head[d])
                    c->tail[d] = NULL;
                link_t *l = c->end[1 - d];
                if (l && l->state != LINK_CLOSING) {
                    if (ch->eof) {
                        peer_close(l, "connection closed");
                    } else if (l->state == LINK_READY) {
                        buf_append(&l->in, ch->data, ch->len);
                        take_bytes(l);
                    }
                }
                free(ch);
            }
        }
    }
}

void sim_peer_heal(int a, int b)
{
    for (conn_t *c = conns; c; c = c->next) {
        for (int d = 0; d < 2; d++) {
            if (c->node[d] != a || c->node[1 - d] != b)
                continue;
            int64_t at = sim_now();
            for (chunk_t *ch = c->head[d]; ch; ch = ch->next) {
                if (ch->at == NEVER)
                    ch->at = at + sim_latency();
                if (ch->at < at)
                    ch->at = at;
                at = ch->at;
            }
            if (c->head[d])
                sim_at(at, NULL, NULL, b);
        }
    }
}

void sim_peer_crash(int i)
{
    cluster_t *cl = sim_cluster(i);
    for (size_t m = 0; cl && m < cl->nmembers; m++)
        peer_knock_cancel(&cl->members[m]);
    for (conn_t *c = conns; c; c = c->next) {
        for (int d = 0; d < 2; d++) {
            if (c->node[d] != i)
                continue;
            link_t *l = c->end[d];
            pipe_free(c, 1 - d); /* bytes towards the dead process are gone */
            if (!l)
                continue;
            if (c->end[1 - d])
                pipe_push(c, d, NULL, 0, 1); /* the kernel closes its sockets */
            c->end[d] = NULL;
            l->state = LINK_CLOSING;
            l->next = graveyard;
            graveyard = l;
        }
    }
    if (cl) {
        cl->links = NULL;
        cl->wlist = NULL;
    }
}

static void free_link(link_t *l)
{
    buf_free(&l->in);
    buf_free(&l->out);
    frame_key_free(&l->key_in);
    frame_key_free(&l->key_out);
    free(l);
}

void sim_peer_collect(void)
{
    while (graveyard) {
        link_t *l = graveyard;
        graveyard = l->next;
        free_link(l);
    }
    conn_t **p = &conns;
    while (*p) {
        conn_t *c = *p;
        if (!c->end[0] && !c->end[1]) {
            *p = c->next;
            pipe_free(c, 0);
            pipe_free(c, 1);
            c->next = dead_conns;
            dead_conns = c;
        } else {
            p = &c->next;
        }
    }
}

/* Connections are freed only here, at the end of a run: events scheduled
 * for one may still come after both its ends are gone. */
void sim_peer_reset(void)
{
    for (conn_t *c = conns; c; c = c->next)
        for (int d = 0; d < 2; d++)
            if (c->end[d]) {
                c->end[d]->next = graveyard;
                graveyard = c->end[d];
                c->end[d] = NULL;
            }
    sim_peer_collect();
    while (dead_conns) {
        conn_t *c = dead_conns;
        dead_conns = c->next;
        free(c);
    }
    while (knocks) {
        struct knock *k = knocks;
        knocks = k->next;
        free(k);
    }
}
