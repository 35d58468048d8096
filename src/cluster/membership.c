/* membership: the state of every other member, heartbeats and probes.
 *
 * Owns: member states and their changes (logged and counted), the PING/PONG
 * heartbeat that also carries the coherence lease, reconnecting with capped
 * exponential backoff plus jitter, and the probes that keep one bad link from
 * raising a false alarm.
 * Never: sends or applies flushes (coherence.c), or parses frames beyond the
 * heartbeat and probe payloads.
 *
 * State diagram (function that makes each change):
 *
 *   UNKNOWN/DEAD/UNREACHABLE/SUSPECT --link READY--> ALIVE   member_link_ready
 *   ALIVE --silent for suspect_after, or link lost--> SUSPECT member_tick,
 *                                                             member_link_lost
 *   SUSPECT --heard again--> ALIVE                            member_heard
 *   SUSPECT --no member reaches it within probe_timeout--> UNREACHABLE
 *                                                             member_tick
 *   UNREACHABLE/UNKNOWN --a probe round says a member reaches it--> SUSPECT
 *                   (probed every probe_timeout until it links or is dead)
 *                                                             tick_unreached
 *   any but ALIVE --its peer port refuses connections--> DEAD (its cohortd is
 *                   not running, so it can flush nothing)  member_knock_result
 *                   (a guess too: a firewall that rejects looks the same;
 *                   but a node cut off from the majority by crashes must
 *                   go on alone, and without a store nothing tells the two
 *                   apart: test_keyspaces.py, the restart of all but one)
 *   UNREACHABLE/UNKNOWN --for dead_after, while this node reaches a
 *                   majority--> DEAD                          tick_unreached
 *
 * With the store as arbiter (cluster_set_arbiter) the two guesses above are
 * gone: a refused connection makes a member UNREACHABLE at most, dead_after
 * does nothing, and the only way to DEAD is
 *   any but DEAD --its row expired, it left, or its lock is free--> DEAD
 *                                                             cluster_member_rows
 *   DEAD (by the store) --its row is live again--> UNREACHABLE cluster_member_rows
 *                   (it restarted, or it renewed after a stall or an outage:
 *                   it is not dead, and may serve once it links again; a
 *                   new process whose lock is free counts as live, G3)
 * under three guards (each keeps a live, possibly serving member alive):
 *   G1 the member cannot hold a lease on this node any more: our last PONG
 *      to it was sent at least T ago (a member that keeps answering on its
 *      link stays alive whatever a store session says: a PostgreSQL restart
 *      frees every session lock at once);
 *   G2 the answer was asked for after the member's link last came up (a
 *      stale answer, or the row its previous process left, does not kill a
 *      member that has just joined; its first PINGs then keep G1 true until
 *      its own renewal replaces the row);
 *   G3 a free session lock counts only for a process of the member this
 *      node has linked with (the row's incarnation read while linked): a
 *      PostgreSQL session lock is also freed when the member's connection
 *      to the database breaks while it lives. The member stops
 *      serving as soon as it notices (cluster_own_row_lost), and G1 gives it
 *      T to notice; a member never linked with this node may serve without a
 *      lease on it (it may have seen this node's previous process die), so
 *      for it only an expired or left row counts. On SQLite the lock is a
 *      kernel file lock that only the process's end frees (or its own
 *      store's close, after its row was marked left): there a free lock of
 *      the process we linked with skips G1 (cluster_row_t.exited), so a
 *      killed member is dead within one renewal (500 ms while a member is
 *      unsettled), inside our lease on it: nothing it replied is missing
 *      here, and no cache is dropped (bench/vs-shared-redis, the kill).
 * A member this node never linked with is found by its address; one without
 * any row (under its name or address) never joined under this store.
 * Safety rests on the other half, in the node that owns the row: it serves
 * cached values only until sent + ttl - margin of its last renewal
 * (cluster_own_row), so by the time any node reads its row as expired by the
 * database's clock it has stopped serving. And once its row may have expired
 * (own_row_until passed) others may have declared it dead and serve without
 * a lease on it, so it forgets every member's lease on it (PONGs sent before
 * row_lapsed_at, set when the lapse starts and again when it ends, count for
 * nothing): its flushes then wait for each member's acknowledgement, as for
 * a member that never linked with it, a member it saw dead included while
 * the lapse lasts (that view may be stale: coherence.c, holds), until the
 * member answers again (member_row_lapse, cluster_own_row); and its own
 * leases on the others are void until fresh heartbeats (member_on_pong).
 *
 * Invariants and the tests that check them:
 *   M1 with an arbiter, only cluster_member_rows makes a member DEAD
 *      (test_member_rows: refused / dead_after; test_membership_store.py:
 *      cut peer links declare nobody dead);
 *   M2 the guards G1-G3 (test_member_rows: test_g1_, test_g2_, test_g3_);
 *   M3 a node serves only before sent + ttl - margin of its last renewal,
 *      and after a lapse holds flushes for every member (test_member_rows:
 *      serves_only_while_own_row_is_renewed, lapsed_row_holds_flushes);
 *   M4 no stale read under every fault with the fake store (ctest sim_store).
 *
 * The lease: a PING carries our send time; the PONG echoes it, and receiving
 * it extends our lease on the member to send time + T. Frames on a link are
 * ordered, so a PONG arrives after every flush the member sent before it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cluster_int.h"
#include "log.h"
#include "mem.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000

static const char *state_names[] = {"unknown", "alive", "suspect", "unreachable", "dead"};

const char *member_state_name(int state)
{
    return state >= 0 && state <= MEMBER_DEAD ? state_names[state] : "?";
}

static const char *label(const member_t *m)
{
    return m->name[0] ? m->name : m->addr;
}

void member_set_state(member_t *m, int state, const char *why)
{
    if (m->state == state)
        return;
    cluster_t *cl = m->cl;
    log_info("member", "%s (%s): %s -> %s: %s", label(m), m->addr, member_state_name(m->state),
             member_state_name(state), why);
    m->state = state;
    serving_lowered(cl);
    m->since = cluster_mono(cl);
    m->since_wall = clock_now_ms();
    m->probe_deadline = 0;
    m->vouched = 0;
    cl->counters.state_changes++;
    if (state == MEMBER_DEAD) {
        coherence_member_gone(m);
        catchup_member_dead(m);
    }
}

member_t *member_by_name(cluster_t *cl, const char *name, size_t len)
{
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *m = &cl->members[i];
        if (strlen(m->name) == len && memcmp(m->name, name, len) == 0)
            return m;
    }
    return NULL;
}

static void schedule_reconnect(member_t *m)
{
    int64_t now = cluster_mono(m->cl);
    int jitter = m->backoff_ms / 5;
    int delay = m->backoff_ms +
                (jitter ? (int)(cluster_random(m->cl) % (uint64_t)(2 * jitter + 1)) - jitter : 0);
    m->next_connect = now + delay;
    m->backoff_ms = m->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : m->backoff_ms * 2;
}

static void send_ping(member_t *m, int64_t now)
{
    link_t *l = m->link;
    size_t s = peer_frame_begin(l, FRAME_PING);
    frame_put_u64(&l->out, ++m->ping_id);
    frame_put_u64(&l->out, (uint64_t)now);
    peer_frame_end(l, s);
    m->ping_sent[m->ping_id % PING_RING] = now;
    m->last_ping_sent = now;
    m->ping_hrtime = uv_hrtime();
}

void member_link_ready(member_t *m, link_t *l)
{
    int64_t now = cluster_mono(m->cl);
    m->link = l;
    if (m->pending == l)
        m->pending = NULL;
    m->refused = 0;
    m->linked_row_inc = 0; /* learned again from a row read while linked (G3) */
    m->backoff_ms = BACKOFF_MIN_MS;
    m->last_heard = now;
    peer_knock_cancel(m);
    member_set_state(m, MEMBER_ALIVE, "link up");
    coherence_on_stream_start(m);
    send_ping(m, now);
}

void member_link_lost(member_t *m, link_t *l)
{
    cluster_t *cl = m->cl;
    if (cl->stopping || l != m->link)
        return;
    m->link = NULL;
    m->stream_ready = 0;
    if (m->state == MEMBER_ALIVE)
        member_set_state(m, MEMBER_SUSPECT, "link lost");
    m->backoff_ms = BACKOFF_MIN_MS;
    if (m->we_initiate)
        m->next_connect = cluster_mono(cl); /* at once */
    else
        peer_knock(cl, m);
}

void member_connect_failed(member_t *m, int refused)
{
    if (m->cl->stopping)
        return;
    if (refused)
        member_knock_result(m, 1);
    schedule_reconnect(m);
}

void member_knock_result(member_t *m, int refused)
{
    m->refused = refused;
    if (refused)
        m->refused_at = cluster_mono(m->cl);
    if (!refused || m->state == MEMBER_DEAD || m->link)
        return;
    if (!m->cl->arbiter)
        member_set_state(m, MEMBER_DEAD, "connection refused: its cohortd is not running");
    else if (m->state != MEMBER_UNREACHABLE)
        member_set_state(m, MEMBER_UNREACHABLE, "connection refused (the store decides whether "
                                                "it is dead)");
}

void member_heard(member_t *m)
{
    m->last_heard = cluster_mono(m->cl);
    if (m->state != MEMBER_ALIVE && m->link)
        member_set_state(m, MEMBER_ALIVE, "heard again");
}

/* ---- heartbeats ------------------------------------------------------------ */

void member_on_ping(member_t *m, frame_reader_t *r)
{
    uint64_t id, t;
    frame_get_u64(r, &id);
    frame_get_u64(r, &t);
    if (frame_reader_done(r) != 0 || !m->link)
        return;
    cluster_t *cl = m->cl;
    int64_t now = cluster_mono(cl);
    /* A member that has not acknowledged our flushes for flush_timeout gets
     * no more PONGs: its lease on us runs out, so it stops serving. */
    if (m->unacked_since && now - m->unacked_since > cl->cfg->flush_timeout_ms)
        return;
    link_t *l = m->link;
    size_t s = peer_frame_begin(l, FRAME_PONG);
    frame_put_u64(&l->out, id);
    frame_put_u64(&l->out, t);
    peer_frame_end(l, s);
    m->last_pong_sent = now;
}

void member_on_pong(member_t *m, frame_reader_t *r)
{
    uint64_t id, t;
    frame_get_u64(r, &id);
    frame_get_u64(r, &t);
    if (frame_reader_done(r) != 0)
        return;
    cluster_t *cl = m->cl;
    /* Only a PONG for one of our last PINGs, newer than any answered, and
     * echoing the time we sent it, extends the lease. */
    if (id <= m->pong_id || id > m->ping_id || m->ping_id - id >= PING_RING ||
        m->ping_sent[id % PING_RING] != (int64_t)t)
        return;
    m->pong_id = id;
    int64_t now = cluster_mono(cl);
    int64_t sent = (int64_t)t;
    /* The loop's clock ticks in whole ms; the round trip of the latest
     * PING is measured with the high-resolution clock instead. */
    m->rtt_ms = id == m->ping_id ? (double)(uv_hrtime() - m->ping_hrtime) / 1e6
                                 : (double)(now - sent);
    int64_t until = sent + cluster_lease_ms(cl);
    if (sent < cl->row_lapsed_at)
        return; /* sent before our row was renewed after a lapse */
    if (until <= m->lease_until)
        return;
    if (now >= m->lease_until)
        m->lapsed_at = now; /* renewed after a lapse: m may have committed without us */
    m->lease_until = until;
}

/* ---- probes -------------------------------------------------------------- */

/* Whether this node reaches m right now: heard within two heartbeats (a
 * looser test would let one observer vouch for a member that is about to be
 * suspect there too). */
static int reaches(const member_t *m, int64_t now)
{
    return m->link && m->state == MEMBER_ALIVE &&
           now - m->last_heard <= 2 * (int64_t)m->cl->cfg->heartbeat_ms;
}

/* A probe names its subject by the name it gave in a handshake, or, for a
 * member never linked with here, by its configured "host:port" (the nodes of
 * one cluster list each other at the same addresses; an answerer that does
 * not know the address says no, which only keeps the asker's guess). */
static const char *probe_subject(const member_t *m)
{
    return m->name[0] ? m->name : m->addr;
}

static member_t *member_by_subject(cluster_t *cl, const char *s, size_t len)
{
    member_t *m = member_by_name(cl, s, len);
    for (size_t i = 0; !m && i < cl->nmembers; i++) {
        member_t *o = &cl->members[i];
        if (strlen(o->addr) == len && memcmp(o->addr, s, len) == 0)
            m = o;
    }
    return m;
}

static void start_probe(member_t *target, int64_t now)
{
    cluster_t *cl = target->cl;
    const char *subject = probe_subject(target);
    target->probe_id++;
    target->probe_yes = 0;
    target->probe_deadline = now + cl->cfg->probe_ms;
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *o = &cl->members[i];
        if (o == target || !reaches(o, now))
            continue;
        link_t *l = o->link;
        size_t s = peer_frame_begin(l, FRAME_PROBE);
        frame_put_u64(&l->out, target->probe_id);
        frame_put_bytes(&l->out, subject, strlen(subject));
        peer_frame_end(l, s);
    }
}

/* The end of a probe round on m (its deadline passed). A yes keeps (or
 * makes) it SUSPECT: another member reaches it. Otherwise a SUSPECT member
 * is UNREACHABLE, and an UNREACHABLE or UNKNOWN one is asked about again at
 * the next tick. */
static void probe_verdict(member_t *m, int64_t now)
{
    if (m->probe_yes) {
        if (m->state != MEMBER_SUSPECT)
            member_set_state(m, MEMBER_SUSPECT, "reachable by other members");
        else if (!m->vouched)
            log_info("member", "%s is reachable by other members; keeping it suspect",
                     label(m));
        m->vouched = 1;
        start_probe(m, now);
    } else if (m->state == MEMBER_SUSPECT) {
        member_set_state(m, MEMBER_UNREACHABLE, "no member reaches it");
    } else {
        m->probe_deadline = 0;
    }
}

void member_on_probe(member_t *m, frame_reader_t *r)
{
    uint64_t id;
    frame_bytes_t name;
    frame_get_u64(r, &id);
    frame_get_bytes(r, &name, NAME_MAX_LEN);
    if (frame_reader_done(r) != 0 || !m->link)
        return;
    member_t *t = member_by_subject(m->cl, (const char *)name.p, name.len);
    int yes = t && reaches(t, cluster_mono(m->cl));
    link_t *l = m->link;
    size_t s = peer_frame_begin(l, FRAME_PROBED);
    frame_put_u64(&l->out, id);
    frame_put_bytes(&l->out, name.p, name.len);
    frame_put_u8(&l->out, (uint8_t)yes);
    peer_frame_end(l, s);
}

void member_on_probed(member_t *m, frame_reader_t *r)
{
    uint64_t id;
    frame_bytes_t name;
    uint8_t yes;
    frame_get_u64(r, &id);
    frame_get_bytes(r, &name, NAME_MAX_LEN);
    frame_get_u8(r, &yes);
    if (frame_reader_done(r) != 0)
        return;
    member_t *t = member_by_subject(m->cl, (const char *)name.p, name.len);
    if (t && t->probe_deadline && t->probe_id == id && yes)
        t->probe_yes = 1;
}

/* ---- the periodic tick ------------------------------------------------------- */

/* Since when m counts as unreachable for dead_after. Only a node that, with
 * the members it reaches, makes at least half of the cluster may declare
 * others dead, and only after dead_after in that position: a node cut off
 * from the majority keeps needing them (and serves nothing cached), and
 * when it regains part of the cluster, the members it still misses get a
 * full dead_after to come back before they stop holding its lease. */
static int64_t unreachable_since(const member_t *m)
{
    return m->since > m->cl->last_cut_off ? m->since : m->cl->last_cut_off;
}

/* Without an arbiter, a member this node does not reach is probed round
 * after round until it links or is declared dead: one another member
 * reaches is alive (SUSPECT again, and dead_after starts over if it becomes
 * unreachable again), so neither a member never reached from here (UNKNOWN)
 * nor one a single failed round made UNREACHABLE during a short stall is
 * declared dead while the others reach it (tests/integration/
 * test_cluster_partition.py: a member another member reaches). */
static void tick_unreached(member_t *m, int64_t now, int cut_off)
{
    cluster_t *cl = m->cl;
    if (m->probe_deadline && now > m->probe_deadline) {
        probe_verdict(m, now);
        if (m->state != MEMBER_UNREACHABLE && m->state != MEMBER_UNKNOWN)
            return;
    }
    if (!m->probe_deadline)
        start_probe(m, now);
    if (now - unreachable_since(m) > cl->cfg->dead_after_ms && !cut_off)
        member_set_state(m, MEMBER_DEAD, "unreachable for longer than dead_after");
}

static void tick_member(member_t *m, int64_t now, int cut_off)
{
    cluster_t *cl = m->cl;
    const config_t *cfg = cl->cfg;
    if (m->link && now - m->last_ping_sent >= cfg->heartbeat_ms)
        send_ping(m, now);
    if (m->state == MEMBER_ALIVE && now - m->last_heard > cfg->suspect_ms) {
        member_set_state(m, MEMBER_SUSPECT, "missed heartbeats");
        start_probe(m, now);
    } else if (m->state == MEMBER_SUSPECT && !m->probe_deadline) {
        start_probe(m, now);
    } else if (m->state == MEMBER_SUSPECT && now > m->probe_deadline) {
        probe_verdict(m, now);
    } else if ((m->state == MEMBER_UNREACHABLE || m->state == MEMBER_UNKNOWN) && !cl->arbiter) {
        tick_unreached(m, now, cut_off);
    }
    if (m->knock && now > m->knock_deadline)
        peer_knock_cancel(m);
    if (m->we_initiate && !m->link && !m->pending && now >= m->next_connect)
        peer_connect(cl, m);
    if (!m->we_initiate && !m->link && !m->knock && m->state != MEMBER_DEAD &&
        m->state != MEMBER_ALIVE && now >= m->next_connect) {
        peer_knock(cl, m);
        schedule_reconnect(m);
    }
}

/* Our own row may have expired, and any member may have declared us dead
 * and serve without a lease on us: until it answers a PING of ours again, our
 * flushes wait for its acknowledgement (coherence.c: holds). */
void member_row_lapse(cluster_t *cl, int64_t now)
{
    if (!cl->arbiter || cl->own_row_lapsed || now < cl->own_row_until)
        return;
    cl->own_row_lapsed = 1;
    cl->row_lapses += cl->row_joined;
    if (cl->own_row_until)
        log_warn("member", "this node's membership row was not renewed in time: it serves "
                 "nothing cached, and its flushes wait for every member's acknowledgement");
    cl->row_lapsed_at = now;
}

/* O(members): whether this node is cut off is counted once for the tick (a
 * death within it only makes that less likely, so the count stays on the
 * safe side). */
void member_tick(cluster_t *cl, int64_t now)
{
    member_row_lapse(cl, now);
    int cut_off = cluster_cut_off(cl);
    for (size_t i = 0; i < cl->nmembers; i++)
        tick_member(&cl->members[i], now, cut_off);
}

/* ---- the store as arbiter ------------------------------------------------------ */

void cluster_set_arbiter(cluster_t *cl)
{
    if (!cl || cl->arbiter)
        return;
    cl->arbiter = 1;
    serving_lowered(cl);
    log_info("member", "membership decided by the shared store: a member is dead only when its "
             "row expired, it left, or its session lock is free");
}

int cluster_has_arbiter(const cluster_t *cl)
{
    return cl && cl->arbiter;
}

int64_t cluster_now(const cluster_t *cl)
{
    return cluster_mono(cl);
}

const char *cluster_self_addr(const cluster_t *cl)
{
    return cl->self_id;
}

int64_t cluster_row_margin(int64_t ttl_ms)
{
    /* The row expires at (database now when it runs the renewal) + ttl, and
     * it runs after we sent it, so never before sent + ttl in real time. The
     * margin covers the two clocks' rate difference (far below 1%) and the
     * moment between the decision to serve and the reply leaving: ttl/10,
     * and never less than 100 ms. */
    int64_t m = ttl_ms / 10;
    return m < 100 ? 100 : m;
}

/* Our row was renewed for the first time: from now on a process of any
 * member that reads the rows waits for our acknowledgements while our row
 * is live. Notes whether anything this node holds came before (WRITES.md
 * rule 41). */
static void note_row_joined(cluster_t *cl)
{
    cl->row_joined = 1;
    cl->join_clean = cl->snap_id == 0 && cl->host.held && cl->host.held(cl->host.ud) == 0;
}

void cluster_own_row(cluster_t *cl, int64_t sent, int64_t ttl_ms)
{
    if (!cl)
        return;
    int64_t until = sent + ttl_ms - cluster_row_margin(ttl_ms);
    if (until > cl->own_row_until && until > cluster_mono(cl)) {
        if (cl->own_row_lapsed && cl->own_row_until)
            log_info("member", "this node's membership row is renewed again");
        /* Back from a lapse: a member may still hold this node dead (it read
         * the expired row before this renewal), or be a new process that
         * never knew it; only PONGs from now on prove a lease on us. Members
         * this node holds dead are settled by the rows of this same answer
         * (read after our renewal; the caller hands them over next). */
        if (cl->own_row_lapsed) {
            /* ...and our leases on them are void: a member that held us dead
             * flushed without us (a new process of it may never have linked
             * with us). Only PINGs sent from now on give leases again. */
            cl->row_lapsed_at = cluster_mono(cl);
            for (size_t i = 0; i < cl->nmembers; i++) {
                cl->members[i].lease_until = 0;
                cl->members[i].lapsed_at = cl->row_lapsed_at;
                cl->members[i].log_from = 0; /* log leases too (flushlog.c, L5) */
            }
            serving_lowered(cl);
        }
        cl->own_row_until = until;
        cl->own_row_lapsed = 0;
        if (!cl->row_joined)
            note_row_joined(cl);
    }
}

void cluster_own_row_lost(cluster_t *cl)
{
    if (cl) {
        cl->own_row_until = 0;
        serving_lowered(cl);
    }
}

int cluster_members_settled(const cluster_t *cl)
{
    if (!cl)
        return 1;
    for (size_t i = 0; i < cl->nmembers; i++) {
        const member_t *m = &cl->members[i];
        if (m->state != MEMBER_ALIVE && m->state != MEMBER_DEAD)
            return 0;
        if (cl->arbiter && m->state == MEMBER_ALIVE && !m->linked_row_inc)
            return 0; /* linked, but its row not read since: G3 needs it */
    }
    return 1;
}

/* The row describing m in rows: by its name once a handshake told us, else by
 * its address. NULL if none. */
static const cluster_row_t *row_of(const member_t *m, const cluster_row_t *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (m->name[0] ? strcmp(rows[i].name, m->name) == 0
                       : rows[i].addr && strcmp(rows[i].addr, m->id) == 0)
            return &rows[i];
    }
    return NULL;
}

/* 1 when some live row is nobody's we can name (not ours, and no member's
 * by name or address): a member we know only by the address we dial (a
 * proxy, NAT, a host name where the row has an address) may be that one,
 * so finding no row for it says nothing. A node just started knows no
 * member's name; it declared every such member dead and replied its first
 * flushes without them (the randomized history test, through proxies). */
static int unclaimed_live_row(const cluster_t *cl, const cluster_row_t *rows, size_t n)
{
    unsigned char *claimed = xcalloc(n ? n : 1, 1);
    for (size_t j = 0; j < cl->nmembers; j++) {
        const cluster_row_t *r = row_of(&cl->members[j], rows, n);
        if (r)
            claimed[r - rows] = 1;
    }
    int any = 0;
    for (size_t i = 0; i < n && !any; i++)
        any = !claimed[i] && !rows[i].gone && strcmp(rows[i].name, cl->cfg->name) != 0;
    free(claimed);
    return any;
}

/* A row of m, held dead here, showing an ended process other than the one
 * the last read showed: it began and ended between the two reads. If this
 * node's row lapsed between them, that process may have held this node dead
 * and replied flushes without it, and no next process of m may come to
 * meet (rule 23's case): the cache goes (WRITES.md rule 38; sim --store
 * seed 243 of crash,stop,pause,cut, I1). Without a lapse it waited for our
 * acknowledgements. */
static void note_row(member_t *m, const cluster_row_t *r, int64_t now)
{
    cluster_t *cl = m->cl;
    if (m->state == MEMBER_DEAD && r->gone && m->row_inc_seen &&
        r->incarnation != m->row_inc_seen && cl->row_lapsed_at >= m->row_seen_at)
        coherence_unmet_process_ended(m);
    m->row_inc_seen = r->incarnation;
    m->row_seen_at = now;
}

/* The process of m we linked with ended for good: its row says it left (a
 * clean stop) or its session lock proves it exited. Its proposals still on
 * their way are refused when they come (coherence.c apply_entry; WRITES.md
 * rule 42). A process the store calls dead by an expired row may still run
 * (paused), and its proposals count. */
static void ended_for_good(member_t *m)
{
    m->ended_inc = m->incarnation;
}

/* Applies what the store says about m (r NULL: no row), under the guards of
 * the header comment: revivals when 'deaths' is 0, deaths when it is 1 (a
 * death releases held replies at once, so every revival of the same answer
 * must be in place before). unclaimed: a live row is nobody's we can name
 * (then no row for m, known by address only, is no answer). */
static void apply_row(member_t *m, const cluster_row_t *r, int64_t sent, int64_t now, int deaths,
                      int unclaimed)
{
    cluster_t *cl = m->cl;
    if (!deaths && r)
        note_row(m, r, now);
    if (!deaths && r && m->link && m->state == MEMBER_ALIVE && !r->gone && !r->lock_free)
        m->linked_row_inc = r->incarnation; /* the process we are linked with */
    if (!deaths && r && (r->left || r->exited) && r->incarnation == m->linked_row_inc)
        ended_for_good(m);
    if (!deaths && m->row_live != (r && !r->gone)) {
        m->row_live = r && !r->gone; /* a log lease on it needs this (flushlog.c) */
        serving_lowered(cl);
    }
    /* G3: a free lock counts only if it is the lock of a process we linked
     * with (a new process of the member, never linked with us, may have lost
     * its PostgreSQL session while it lives and serves). */
    int gone = !r || r->gone || (r->lock_free && r->incarnation == m->linked_row_inc);
    if (!gone) {
        if (!deaths && m->state == MEMBER_DEAD)
            member_set_state(m, MEMBER_UNREACHABLE, "its row is live again (the store says it "
                                                    "is not dead)");
        return;
    }
    if (!deaths || m->state == MEMBER_DEAD)
        return;
    if (!r && !m->name[0] && unclaimed)
        return; /* it may be the node of a row we cannot match yet */
    /* G1, unless the process we linked with has ended for sure (then it
     * serves nothing, whatever lease it held on us) */
    int ended = r && r->exited && r->incarnation == m->linked_row_inc;
    if (!ended && m->last_pong_sent && now < m->last_pong_sent + cluster_lease_ms(cl))
        return; /* G1: it may hold a lease on us */
    if (m->state == MEMBER_ALIVE && sent <= m->since)
        return; /* G2 */
    if (r && r->incarnation != m->linked_row_inc)
        m->clean_bye = 0; /* the goodbye we heard was an earlier process's (rule 33) */
    char why[160];
    if (r)
        snprintf(why, sizeof(why), "the store says so: %s (incarnation %016llx)",
                 r->why ? r->why : "row gone", (unsigned long long)r->incarnation);
    else
        snprintf(why, sizeof(why), "the store says so: it has no row");
    member_set_state(m, MEMBER_DEAD, why);
}

/* The rows read with our row's first renewal: for each member, whether its
 * row was live. Renewals are serialized in the store (SQLite's write
 * transaction; PostgreSQL's cohort_member_renew takes a transaction lock
 * first), so a process that read the rows before our row joined renewed its
 * own row before too, and shows here, unless it had stopped (its row left,
 * or its session lock free where that proves the end: SQLite's) or lapsed
 * (it then waits for every member until it reads the rows again).
 * A process whose first renewal comes later read our row before any write
 * (WRITES.md rule 41). */
static void note_join(cluster_t *cl, const cluster_row_t *rows, size_t n, int unclaimed)
{
    if (!cl->row_joined || cl->join_noted)
        return;
    cl->join_noted = 1;
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *m = &cl->members[i];
        const cluster_row_t *r = row_of(m, rows, n);
        m->live_at_join = (r && !r->gone && !r->exited) || (!r && !m->name[0] && unclaimed);
    }
}

/* With the store as arbiter, a process of m replies writes without us only
 * while it holds us dead: before its first read of the rows after our row
 * joined, or while our row lapsed. So none of m's processes did, if
 *  - our row never lapsed since it joined (rules 23 and 38 handle lapses),
 *  - m's row was not live in the rows read with our first renewal
 *    (note_join: a later process of m read our row before its first write),
 *  - and we held nothing and had asked for no snapshot when our row joined
 *    (what a process of m replied before that, without us, our catch-up
 *    took from the members that acknowledged it).
 * Then m's first process we meet costs no drop (coherence.c on_sync): the
 * drop lost the only copy of writes this node replied alone, every other
 * member dead (WRITES.md rule 41; sim --store seed 507 of
 * crash,stop,pause,cut, 20 s, W3). */
int member_unseen_since_join(const member_t *m)
{
    const cluster_t *cl = m->cl;
    return cl->arbiter && cl->join_clean && cl->join_noted && cl->row_lapses == 0 &&
           !cl->own_row_lapsed && !m->live_at_join;
}

void cluster_member_rows(cluster_t *cl, int64_t sent, const cluster_row_t *rows, size_t n)
{
    if (!cl || !cl->arbiter || cl->stopping)
        return;
    int64_t now = cluster_mono(cl);
    int unclaimed = unclaimed_live_row(cl, rows, n);
    for (int deaths = 0; deaths <= 1; deaths++)
        for (size_t i = 0; i < cl->nmembers; i++)
            apply_row(&cl->members[i], row_of(&cl->members[i], rows, n), sent, now, deaths,
                      unclaimed);
    note_join(cl, rows, n, unclaimed);
}
