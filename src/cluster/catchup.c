/* catchup: a node whose cache starts empty (a start, a restart, a dropped
 * cache) receives the replicated keyspaces from a live member before it
 * serves.
 *
 * Owns: the request (SNAPREQ) to one member at a time, the streamed answer
 * (SNAPSHOT frames of about CHUNK_BYTES, one per member per loop turn while
 * the link's output is below LINK_LOW_WATER, so neither side holds more than
 * a chunk or two), and the rule for when a node counts as caught up.
 * Never: answers with a whole snapshot while this node is not serving (its
 * cache may miss flushes it has not heard of yet: the requester asks again
 * later; a node catching up answers with what it holds marked partial, which
 * never makes the requester count as caught up), or lets a snapshot entry
 * override a newer write or flush (entries carry their versions and are
 * applied by the host's snapshot rule, cache/versioned.h).
 *
 * Invariants (tests/integration/test_keyspaces.py; the simulator, ctest
 * sim_writes_seed15_catchup and sim_writes_seed96_partial):
 *   1. A node needing a snapshot does not serve (cluster_serving) while any
 *      member is not gone, until a SNAPSHOT with SNAP_DONE arrived from the
 *      member it asked, or every member not gone answered that it is
 *      catching up too (a cold start of the whole cluster, or every holder
 *      gone: nobody has all the data). Without the store, a member held
 *      DEAD is gone only while a connection to it refused since the
 *      catch-up began is fresh (REFUSAL_FRESH_MS), or once nothing was
 *      heard from it for dead_after within it (WRITES.md rules 25 and 44;
 *      ctest sim_writes_seed231_recheck, sim_writes_seed382_stale_refusal).
 *   2. A node catching up itself answers a request with SNAP_WAITING (ask
 *      again later) while a member it does not know dead said it holds data
 *      (answered not serving, or sent a whole snapshot): the requester may
 *      hold that member dead when it is not (a refused connection from a
 *      process that restarted behind a cut), and would otherwise count
 *      nobody as holding data and serve an empty cache (sim seed 15). A
 *      waiting node never counts as holding, so two of them cannot keep each
 *      other waiting once the holder is dead.
 *   3. Otherwise a node catching up answers with what it holds so far
 *      (SNAP_PARTIAL on every frame: what members' replays and the stream
 *      brought it), and the requester takes the entries and counts it as
 *      catching up too. So when nobody holds all the data, every node that
 *      serves as is holds what any of them held: a committed write that only
 *      a replay brought to one of them is not lost on the others (sim seed
 *      96: n0 kept a lock n1 and n2 had dropped with their caches).
 *   4. Writes made while a snapshot streams reach the requester through the
 *      ordinary flush stream (its SYNC came first on the link), so the
 *      snapshot never needs to be a consistent cut: each entry is the
 *      sender's value at the time it was sent, and the newest version wins.
 *   5. A key whose newest write is a proposal undecided at the sender is
 *      sent only once its maker decided it (the committed value, or what it
 *      replaced), and SNAP_DONE only after the last such key; a wait longer
 *      than two leases, or the sender no longer serving, ends the answer
 *      unfinished and the requester asks again (WRITES.md rule 24; ctest
 *      sim_writes_seed248_snapshot_waits, tests/unit/test_writes.c).
 *   6. A node that served as is, or caught up after a drop of its cache,
 *      asks every member not gone once more for a whole snapshot as soon as
 *      that member serves, until each answered one (WRITES.md rule 26;
 *      test_cluster_fake_peer_writes.py
 *      test_a_node_that_served_as_is_asks_again_and_takes_what_it_lacked).
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cluster_int.h"
#include "log.h"
#include "mem.h"

#define CHUNK_BYTES (256u << 10)
#define LINK_LOW_WATER (1u << 20)
#define RETRY_MS 100
#define SNAP_WAITS_MAX 4096 /* keys waiting for a decision, per answer */

enum { RECON_NONE, RECON_ASK, RECON_ASKED }; /* member_t.recon */

/* How long a refusal proves a member gone for a catch-up. The tick decides
 * every TICK_MS (10 ms), so only a stall of this node (a pause, a long
 * batch) lets a refusal age past it; a member may have started again
 * meanwhile, so it is knocked at once more (WRITES.md rule 44). */
#define REFUSAL_FRESH_MS (3 * RETRY_MS)

/* 1 when m is gone by silence alone (no refusal needed): the store says it
 * is dead, or nothing was heard from it for dead_after within the
 * catch-up. */
static int gone_silent(const cluster_t *cl, const member_t *m, int64_t now)
{
    if (cl->arbiter)
        return 1;
    int64_t heard = m->last_heard > cl->snap_since ? m->last_heard : cl->snap_since;
    return now - heard >= cl->cfg->dead_after_ms;
}

/* 1 when m counts as gone for a catch-up (WRITES.md rules 25 and 44). With
 * the store as arbiter, DEAD is the store's word. Without it, DEAD came
 * from a refused connection, a goodbye or dead_after, and a member held
 * dead since before this catch-up began may have started again behind a
 * cut and hold what was written since: it counts while a connection to it
 * refused since the catch-up began is fresh, or once nothing was heard
 * from it for dead_after within the catch-up. */
static int gone(const cluster_t *cl, const member_t *m, int64_t now)
{
    if (m->state != MEMBER_DEAD)
        return 0;
    if (m->refused_at >= cl->snap_since && now - m->refused_at < REFUSAL_FRESH_MS)
        return 1;
    return gone_silent(cl, m, now);
}

int64_t catchup_gone_until(const cluster_t *cl, int64_t now)
{
    int64_t until = INT64_MAX;
    if (!cl->need_snapshot)
        return until;
    for (size_t i = 0; i < cl->nmembers; i++) {
        const member_t *m = &cl->members[i];
        if (m->state != MEMBER_DEAD || m->refused_at < cl->snap_since || gone_silent(cl, m, now))
            continue;
        if (m->refused_at + REFUSAL_FRESH_MS < until)
            until = m->refused_at + REFUSAL_FRESH_MS;
    }
    return until;
}

int cluster_catching_up(const cluster_t *cl)
{
    if (!cl || !cl->need_snapshot)
        return 0;
    int64_t now = cluster_mono(cl);
    for (size_t i = 0; i < cl->nmembers; i++)
        if (!gone(cl, &cl->members[i], now))
            return 1;
    return 0;
}

/* Knocks at the members held dead that do not count as gone yet (at most
 * every RETRY_MS each): a refusal confirms them; a member that answers
 * comes back by its link. */
static void knock_unconfirmed(cluster_t *cl, int64_t now)
{
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *m = &cl->members[i];
        if (m->state != MEMBER_DEAD || gone(cl, m, now) || m->link || m->knock ||
            now < m->recheck_at)
            continue;
        m->recheck_at = now + RETRY_MS;
        peer_knock(cl, m);
    }
}

static void give_up(member_t *m, const char *why);

void catchup_needed(cluster_t *cl)
{
    if (!cl->host.snapshot)
        return;
    /* Our full answers in progress described a cache that is gone: each
     * ends without SNAP_DONE, and its requester asks again. Ended with it,
     * a key deferred for a write in flight went out missing, and the
     * requester served without it (WRITES.md rule 40; sim --store seed 29
     * of crash,stop,pause,cut). An answer "catching up too" stays true. */
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *m = &cl->members[i];
        if (m->snap_serving && !m->snap_partial && m->link)
            give_up(m, "this node dropped its cache");
    }
    cl->need_snapshot = 1;
    cl->snap_since = cluster_mono(cl);
    cl->snap_after_drop = cl->snap_ever;
    cl->snap_ever = 1;
    for (size_t i = 0; i < cl->nmembers; i++)
        cl->members[i].recon = RECON_NONE; /* again after this catch-up */
    serving_lowered(cl);
    cl->snap_from = NULL;
    for (size_t i = 0; i < cl->nmembers; i++) {
        cl->members[i].snap_busy = 0;
        cl->members[i].snap_asking = 0;
    }
}

static void ask(cluster_t *cl, member_t *m)
{
    link_t *l = m->link;
    cl->snap_from = m;
    cl->snap_id++;
    cl->snap_entries = 0;
    size_t s = peer_frame_begin(l, FRAME_SNAPREQ);
    frame_put_u64(&l->out, cl->snap_id);
    peer_frame_end(l, s);
    log_info("catchup", "asking %s for the replicated keyspaces", m->name);
}

/* Every member not gone said it is catching up too: nobody holds data. */
static int all_fresh(const cluster_t *cl, int64_t now)
{
    for (size_t i = 0; i < cl->nmembers; i++) {
        const member_t *m = &cl->members[i];
        if (!gone(cl, m, now) && m->snap_busy != SNAP_BUSY_FRESH)
            return 0;
    }
    return 1;
}

/* ---- reconciling (WRITES.md rule 26) ------------------------------------------ */

/* After serving as is, or catching up after a drop of the cache, this node
 * asks every member once for its whole replicated keyspaces, as it serves:
 * copies that every holder dropped at about the same time, or that a replay
 * brought to some members only, come back together (entries are taken by
 * their versions, as a catch-up's are). */
static void recon_start(cluster_t *cl)
{
    for (size_t i = 0; i < cl->nmembers; i++) {
        cl->members[i].recon = RECON_ASK;
        cl->members[i].recon_at = 0;
    }
}

static void recon_tick(cluster_t *cl, int64_t now)
{
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *m = &cl->members[i];
        /* A member held dead is asked once it links again (WRITES.md rule
         * 31): the store can call a paused process dead, and it comes back
         * with what it held; a process this node never linked with may
         * hold what it never saw. A new process that starts empty catches
         * up first, and its answer costs one snapshot. */
        if (m->recon != RECON_ASK || m->state == MEMBER_DEAD || !m->link || !m->stream_ready ||
            now < m->recon_at)
            continue;
        m->recon = RECON_ASKED;
        m->recon_id = ++cl->snap_id;
        link_t *l = m->link;
        size_t s = peer_frame_begin(l, FRAME_SNAPREQ);
        frame_put_u64(&l->out, m->recon_id);
        peer_frame_end(l, s);
        log_info("catchup", "asking %s for the replicated keyspaces, to reconcile", m->name);
    }
}

/* m's answer to our reconciling request: done with a whole snapshot, else
 * asked again later. */
static void recon_answer(member_t *m, uint8_t flags)
{
    if ((flags & (SNAP_DONE | SNAP_PARTIAL)) == SNAP_DONE) {
        m->recon = RECON_NONE;
        log_info("catchup", "reconciled with %s", m->name);
    } else if (flags & (SNAP_DONE | SNAP_FRESH | SNAP_NOT_SERVING | SNAP_WAITING)) {
        m->recon = RECON_ASK;
        m->recon_at = cluster_mono(m->cl) + RETRY_MS;
    }
}

void catchup_tick(cluster_t *cl, int64_t now)
{
    if (!cl->need_snapshot) {
        recon_tick(cl, now);
        return;
    }
    knock_unconfirmed(cl, now);
    if (!cluster_catching_up(cl) || all_fresh(cl, now)) {
        cl->need_snapshot = 0;
        log_info("catchup", "no member holds data to catch up with: serving as is");
        orphans_caught_up(cl);
        recon_start(cl);
        return;
    }
    if (cl->snap_from && cl->snap_from->link && cl->snap_from->stream_ready)
        return; /* streaming */
    cl->snap_from = NULL;
    if (now < cl->snap_retry_at)
        return;
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *m = &cl->members[(cl->snap_next + i) % cl->nmembers];
        if (m->link && m->stream_ready && m->state != MEMBER_DEAD && !m->snap_busy) {
            cl->snap_next = (size_t)(m - cl->members) + 1;
            ask(cl, m);
            return;
        }
    }
    /* Everyone linked said busy: ask them again after a while. */
    for (size_t i = 0; i < cl->nmembers; i++)
        if (cl->members[i].snap_busy == SNAP_BUSY_NOT_SERVING)
            cl->members[i].snap_busy = 0;
    cl->snap_retry_at = now + RETRY_MS;
}

/* ---- the sender -------------------------------------------------------------- */

typedef struct chunk {
    member_t *m;
    uint32_t count;
} chunk_t;

/* A key whose value was an undecided proposal when the scan reached it. */
typedef struct snap_wait {
    char *key;
    size_t klen;
} snap_wait_t;

static void emit(void *ud, const char *key, size_t klen, const char *val, size_t vlen,
                 int64_t expire_at, int enc, uint64_t version)
{
    chunk_t *ch = ud;
    link_t *l = ch->m->link;
    int64_t left = expire_at ? expire_at - clock_wall_ms() : 0;
    frame_put_u64(&l->out, version);
    frame_put_bytes(&l->out, key, klen);
    frame_put_u64(&l->out, expire_at ? (uint64_t)(left > 0 ? left : 1) : 0);
    frame_put_bytes(&l->out, val, vlen);
    frame_put_u8(&l->out, (uint8_t)enc);
    ch->count++;
}

static int defer(void *ud, const char *key, size_t klen)
{
    member_t *m = ((chunk_t *)ud)->m;
    if (m->snap_nwaits == SNAP_WAITS_MAX)
        return 0;
    if (m->snap_nwaits == m->snap_waits_cap) {
        m->snap_waits_cap = m->snap_waits_cap ? 2 * m->snap_waits_cap : 16;
        m->snap_waits = xrealloc(m->snap_waits, m->snap_waits_cap * sizeof *m->snap_waits);
    }
    snap_wait_t *w = &m->snap_waits[m->snap_nwaits++];
    w->key = xmemdup(key, klen);
    w->klen = klen;
    return 1;
}

static void waits_clear(member_t *m)
{
    for (size_t i = 0; i < m->snap_nwaits; i++)
        free(m->snap_waits[i].key);
    m->snap_nwaits = 0;
}

/* 1 when some waiting key's write was decided (or its wait is over). */
static int waits_ready(const member_t *m)
{
    const cluster_t *cl = m->cl;
    for (size_t i = 0; i < m->snap_nwaits; i++) {
        const snap_wait_t *w = &m->snap_waits[i];
        if (!cl->host.snapshot_key(cl->host.ud, w->key, w->klen, NULL))
            return 1;
    }
    return 0;
}

/* Emits the waiting keys whose write was decided, and keeps the rest. */
static void send_decided(member_t *m, const cluster_snap_out_t *out)
{
    const cluster_t *cl = m->cl;
    size_t kept = 0;
    for (size_t i = 0; i < m->snap_nwaits; i++) {
        snap_wait_t *w = &m->snap_waits[i];
        if (cl->host.snapshot_key(cl->host.ud, w->key, w->klen, out))
            m->snap_waits[kept++] = *w;
        else
            free(w->key);
    }
    m->snap_nwaits = kept;
}

static void send_busy(member_t *m, uint64_t id, uint8_t why)
{
    link_t *l = m->link;
    size_t s = peer_frame_begin(l, FRAME_SNAPSHOT);
    frame_put_u64(&l->out, id);
    frame_put_u8(&l->out, why);
    frame_put_u32(&l->out, 0);
    peer_frame_end(l, s);
}

/* The answer ends without SNAP_DONE: the requester asks again later. */
static void give_up(member_t *m, const char *why)
{
    log_info("catchup", "stopped sending %s the replicated keyspaces: %s", m->name, why);
    send_busy(m, m->snap_serving, m->snap_partial ? SNAP_WAITING : SNAP_NOT_SERVING);
    m->snap_serving = 0;
    waits_clear(m);
}

/* One SNAPSHOT frame: flags, then the count patched in after the entries.
 * Once the scan is over, only the waiting keys remain: a frame goes when
 * one of them was decided. */
static void send_chunk(member_t *m)
{
    cluster_t *cl = m->cl;
    link_t *l = m->link;
    if (m->snap_scanned && !waits_ready(m)) {
        if (cluster_mono(cl) >= m->snap_wait_until)
            give_up(m, "a write in flight stayed undecided");
        else if (!m->snap_partial && !cluster_serving(cl))
            give_up(m, "this node stopped serving");
        return;
    }
    size_t s = peer_frame_begin(l, FRAME_SNAPSHOT);
    frame_put_u64(&l->out, m->snap_serving);
    size_t flags_at = buf_len(&l->out);
    frame_put_u8(&l->out, m->snap_partial);
    size_t count_at = buf_len(&l->out);
    frame_put_u32(&l->out, 0);
    chunk_t ch = {m, 0};
    cluster_snap_out_t out = {emit, defer, &ch};
    if (!m->snap_scanned) {
        m->snap_cursor = cl->host.snapshot(cl->host.ud, m->snap_cursor, CHUNK_BYTES, &out);
        if (m->snap_cursor == 0) {
            m->snap_scanned = 1;
            m->snap_wait_until = cluster_mono(cl) + 2 * (int64_t)cluster_lease_ms(cl);
        }
    }
    if (m->snap_scanned)
        send_decided(m, &out);
    int done = m->snap_scanned && m->snap_nwaits == 0;
    uint8_t *p = (uint8_t *)buf_head(&l->out);
    if (done) {
        p[flags_at] |= SNAP_DONE;
        m->snap_serving = 0;
    }
    for (int i = 0; i < 4; i++)
        p[count_at + (size_t)i] = (uint8_t)(ch.count >> (24 - 8 * i));
    peer_frame_end(l, s);
    m->snap_sent += ch.count;
    if (done)
        log_info("catchup", "sent %s the replicated keyspaces (%llu entries)", m->name,
                 (unsigned long long)m->snap_sent);
}

void catchup_send(cluster_t *cl)
{
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *m = &cl->members[i];
        if (m->snap_serving && m->link && buf_len(&m->link->out) < LINK_LOW_WATER)
            send_chunk(m);
    }
}

/* 1 when a member other than m, not dead, said it holds data (its current
 * process). */
static int holder_besides(const cluster_t *cl, const member_t *m)
{
    for (size_t i = 0; i < cl->nmembers; i++) {
        const member_t *o = &cl->members[i];
        if (o != m && o->state != MEMBER_DEAD && o->snap_holder &&
            o->snap_holder == o->incarnation)
            return 1;
    }
    return 0;
}

/* 1 when every member other than m, not dead, is known to be catching up
 * too: its current process asked us for a snapshot, or answered ours
 * "catching up too", since our catch-up began. A member not heard from yet
 * may hold data that we would otherwise deny: n1, just restarted, answered
 * n2 "catching up too" before it asked n0, which held a lock; n1 then caught
 * up from n0, but n2 counted n1's answer and n0's (n0 had dropped its
 * cache) and served without the lock (WRITES.md rule 39; sim --store seed
 * 300 of crash,stop,pause,cut, W3). Members that all catch up still answer
 * each other, once each has asked every other. */
static int others_catching_up(const cluster_t *cl, const member_t *m)
{
    for (size_t i = 0; i < cl->nmembers; i++) {
        const member_t *o = &cl->members[i];
        if (o != m && o->state != MEMBER_DEAD && o->snap_busy != SNAP_BUSY_FRESH &&
            !(o->snap_asking && o->snap_asking == o->incarnation))
            return 0;
    }
    return 1;
}

/* Starts the answer to request id (a new request replaces the last). */
static void answer(member_t *m, uint64_t id, uint8_t partial)
{
    m->snap_serving = id;
    m->snap_partial = partial;
    m->snap_cursor = 0;
    m->snap_sent = 0;
    m->snap_scanned = 0;
    waits_clear(m);
}

static void on_snapreq(member_t *m, frame_reader_t *r)
{
    cluster_t *cl = m->cl;
    uint64_t id;
    frame_get_u64(r, &id);
    if (frame_reader_done(r) != 0 || id == 0) {
        peer_refuse(m->link, "malformed SNAPREQ");
        return;
    }
    if (!cl->host.snapshot) {
        send_busy(m, id, SNAP_FRESH);
        return;
    }
    if (cl->need_snapshot)
        m->snap_asking = m->incarnation;
    if (cl->need_snapshot && (holder_besides(cl, m) || !others_catching_up(cl, m))) {
        send_busy(m, id, SNAP_WAITING);
        return;
    }
    if (cl->need_snapshot) { /* catching up too: what replays and the stream brought */
        answer(m, id, SNAP_PARTIAL);
        return;
    }
    if (!cluster_serving(cl)) {
        send_busy(m, id, SNAP_NOT_SERVING);
        return;
    }
    answer(m, id, 0);
}

/* ---- the receiver ------------------------------------------------------------ */

static void on_snapshot(member_t *m, frame_reader_t *r)
{
    cluster_t *cl = m->cl;
    uint64_t id;
    uint8_t flags;
    uint32_t count;
    frame_get_u64(r, &id);
    frame_get_u8(r, &flags);
    frame_get_u32(r, &count);
    if (r->failed ||
        (flags & ~(SNAP_DONE | SNAP_FRESH | SNAP_NOT_SERVING | SNAP_WAITING | SNAP_PARTIAL))) {
        peer_refuse(m->link, "malformed SNAPSHOT");
        return;
    }
    size_t max = peer_entry_max(cl);
    for (uint32_t i = 0; i < count; i++) {
        uint64_t version, ttl;
        frame_bytes_t key, val;
        uint8_t enc;
        frame_get_u64(r, &version);
        frame_get_bytes(r, &key, (uint32_t)max);
        frame_get_u64(r, &ttl);
        frame_get_bytes(r, &val, (uint32_t)max);
        frame_get_u8(r, &enc);
        if (r->failed) {
            peer_refuse(m->link, "malformed SNAPSHOT entry");
            return;
        }
        if (ttl > (uint64_t)INT64_MAX / 2)
            ttl = (uint64_t)INT64_MAX / 2;
        if (!cl->host.apply_snapshot)
            continue; /* no keyspace replicates here: a snapshot nobody asked for */
        cl->host.apply_snapshot(cl->host.ud, (const char *)key.p, key.len, (const char *)val.p,
                                val.len, ttl ? clock_wall_ms() + (int64_t)ttl : 0, enc, version);
    }
    if (frame_reader_done(r) != 0) {
        peer_refuse(m->link, "malformed SNAPSHOT");
        return;
    }
    /* What it said of its data: none (catching up, waiting or not), or some
     * (not serving, or entries). */
    m->snap_holder = flags & (SNAP_FRESH | SNAP_WAITING | SNAP_PARTIAL) ? 0 : m->incarnation;
    if (m->recon == RECON_ASKED && id == m->recon_id)
        recon_answer(m, flags);
    if (!cl->need_snapshot || cl->snap_from != m || id != cl->snap_id)
        return; /* entries of an earlier request: applied by their versions all the same */
    cl->snap_entries += count;
    if (flags & (SNAP_FRESH | SNAP_NOT_SERVING | SNAP_WAITING)) {
        m->snap_busy = flags & SNAP_FRESH ? SNAP_BUSY_FRESH : SNAP_BUSY_NOT_SERVING;
        cl->snap_from = NULL;
        return;
    }
    if ((flags & (SNAP_DONE | SNAP_PARTIAL)) == (SNAP_DONE | SNAP_PARTIAL)) {
        /* All it holds, while it catches up too: taken, and it counts as
         * catching up (every copy some member holds ends up on each). */
        m->snap_busy = SNAP_BUSY_FRESH;
        cl->snap_from = NULL;
        return;
    }
    if (flags & SNAP_DONE) {
        cl->need_snapshot = 0;
        cl->snap_from = NULL;
        log_info("catchup", "caught up with the replicated keyspaces from %s (%llu entries)",
                 m->name, (unsigned long long)cl->snap_entries);
        orphans_caught_up(cl);
        if (cl->snap_after_drop)
            recon_start(cl);
        coherence_progress(cl);
    }
}

void catchup_on_frame(member_t *m, const frame_hdr_t *h)
{
    frame_reader_t r;
    frame_reader_init(&r, h);
    if (h->type == FRAME_SNAPREQ)
        on_snapreq(m, &r);
    else
        on_snapshot(m, &r);
}

/* A member's death voids the other members' "catching up too" answers
 * (WRITES.md rule 32): one of them may have caught up from it since, and
 * hold what only it held (sim --writes --store seed 133 of
 * crash,stop,pause,cut: n0 served as is after n1 left, while n3, fresh
 * when it answered, had caught up from n1). They are asked again. */
void catchup_member_dead(member_t *m)
{
    cluster_t *cl = m->cl;
    for (size_t i = 0; i < cl->nmembers; i++)
        if (cl->members[i].snap_busy == SNAP_BUSY_FRESH)
            cl->members[i].snap_busy = 0;
}

void catchup_member_lost(member_t *m)
{
    if (m->recon == RECON_ASKED)
        m->recon = RECON_ASK;
    m->snap_serving = 0;
    waits_clear(m);
    if (m->cl->snap_from == m)
        m->cl->snap_from = NULL;
}

void catchup_free(cluster_t *cl)
{
    for (size_t i = 0; i < cl->nmembers; i++) {
        waits_clear(&cl->members[i]);
        free(cl->members[i].snap_waits);
        cl->members[i].snap_waits = NULL;
    }
}
