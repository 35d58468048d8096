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
 *   any but ALIVE --its peer port refuses connections--> DEAD (its cohortd is
 *                   not running, so it can flush nothing)  member_knock_result
 *   UNREACHABLE --for dead_after--> DEAD                      member_tick
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
    m->since = cluster_mono(cl);
    m->since_wall = clock_now_ms();
    m->probe_deadline = 0;
    cl->counters.state_changes++;
    if (state == MEMBER_DEAD)
        coherence_member_gone(m);
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
    if (refused && m->state != MEMBER_DEAD && !m->link)
        member_set_state(m, MEMBER_DEAD, "connection refused: its cohortd is not running");
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
    if (until > m->lease_until)
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

static void start_probe(member_t *target, int64_t now)
{
    cluster_t *cl = target->cl;
    target->probe_id++;
    target->probe_yes = 0;
    target->probe_deadline = now + cl->cfg->probe_ms;
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *o = &cl->members[i];
        if (o == target || !reaches(o, now) || !target->name[0])
            continue;
        link_t *l = o->link;
        size_t s = peer_frame_begin(l, FRAME_PROBE);
        frame_put_u64(&l->out, target->probe_id);
        frame_put_bytes(&l->out, target->name, strlen(target->name));
        peer_frame_end(l, s);
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
    member_t *t = member_by_name(m->cl, (const char *)name.p, name.len);
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
    member_t *t = member_by_name(m->cl, (const char *)name.p, name.len);
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

static void tick_member(member_t *m, int64_t now)
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
        if (m->probe_yes) {
            log_info("member", "%s is reachable by other members; keeping it suspect", label(m));
            start_probe(m, now);
        } else {
            member_set_state(m, MEMBER_UNREACHABLE, "no member reaches it");
        }
    } else if ((m->state == MEMBER_UNREACHABLE || m->state == MEMBER_UNKNOWN) &&
               now - unreachable_since(m) > cfg->dead_after_ms && !cluster_cut_off(cl)) {
        member_set_state(m, MEMBER_DEAD, "unreachable for longer than dead_after");
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

void member_tick(cluster_t *cl, int64_t now)
{
    for (size_t i = 0; i < cl->nmembers; i++)
        tick_member(&cl->members[i], now);
}
