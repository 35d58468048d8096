/* orphans: what a dead writer left in flight, settled among the survivors
 * before any of them replays it (WRITES.md rule 34).
 *
 * Owns: the VOIDED frame, sent and received; each dead writer's wait for
 * the members' reports (member_t.orph_*), and the flush numbers of its
 * proposals reported voided (member_t.voided); the hold of a gone writer's
 * writes while this node catches up (cluster_t.orph_held, rule 37).
 * Never: replays or aborts a write itself (the host does, through
 * origin_gone and aborted); holds a replay past flush_timeout.
 *
 * A survivor replays a dead writer's writes in flight as its own (rule 4):
 * the writer may have committed them and replied, its COMMIT lost. But the
 * writer may also have aborted one because a member refused it, and lost
 * its link to this survivor before the ABORT went: replayed, an aborted
 * INCR takes effect (W1). The member that refused knows: a PROPOSE it
 * refused (no acknowledgement) and never saw resolved cannot have
 * committed if its lease on the writer held until it saw the writer dead,
 * for the writer waits for a member's acknowledgement until that member's
 * lease on it has run out (coherence.c), and the writer died before. So on
 * a death each member tells every other member it streams with which of
 * the writer's proposals it refused so (VOIDED; none if its lease had
 * lapsed), and each member aborts those as if the writer's own ABORT had
 * come, then replays the rest once every member it streams with reported
 * on that writer, or after flush_timeout.
 *
 * Invariants and the tests that check them:
 *   O1 a proposal refused by a member whose lease on its writer held to the
 *      writer's death is never replayed by a member that heard from it
 *      before its replay (tests/integration/test_cluster_orphans.py
 *      test_a_proposal_another_member_voided_is_not_replayed;
 *      tests/unit/test_orphans.c test_a_report_aborts_the_voided_proposal,
 *      test_a_lapsed_lease_voids_nothing);
 *   O2 a dead writer's writes in flight are replayed (but those voided)
 *      within flush_timeout of its death here, whatever the members report
 *      (orphans_tick; test_cluster_orphans.py
 *      test_without_a_report_the_replay_waits_flush_timeout_at_most,
 *      test_a_proposal_nobody_voided_is_replayed; test_orphans.c
 *      test_with_nobody_to_hear_the_replay_is_at_once);
 *   O3 a PROPOSE reported voided that arrives late (it was on its way on a
 *      cut link) is refused, not noted (coherence.c apply_entry;
 *      test_orphans.c test_a_late_voided_proposal_is_refused);
 *   O4 a proposal refused after an ACK or SYNC covering it went to its
 *      writer (a drop, rule 21; rule 47) is never reported voided: the
 *      writer may have committed on that acknowledgement (WRITES.md rule
 *      48; test_orphans.c
 *      test_a_refusal_after_our_acknowledgement_voids_nothing, ctest
 *      sim_writes_store_seed1337_late_refusal). */
#include <stdlib.h>
#include <string.h>

#include "cluster_int.h"
#include "log.h"
#include "mem.h"

#define VOIDED_MAX 64 /* flush numbers a VOIDED frame may carry */

static int index_of(const member_t *m)
{
    return (int)(m - m->cl->members);
}

/* m streams with us: a report can come from it, and ours can go to it. */
static int streams(const member_t *m)
{
    return m->state != MEMBER_DEAD && m->link && m->stream_ready;
}

static void send_report(member_t *to, const member_t *w, const uint64_t *seqs, size_t n)
{
    link_t *l = to->link;
    size_t s = peer_frame_begin(l, FRAME_VOIDED);
    frame_put_bytes(&l->out, w->name, strlen(w->name));
    frame_put_u64(&l->out, w->in_inc);
    frame_put_u32(&l->out, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        frame_put_u64(&l->out, seqs[i]);
    peer_frame_end(l, s);
}

/* w's proposal seq cannot have committed: aborted here, and kept so that a
 * late copy of it is refused (O3). */
static void void_seq(member_t *w, uint64_t seq)
{
    cluster_t *cl = w->cl;
    if (w->voided_inc != w->in_inc) {
        w->voided_inc = w->in_inc;
        w->nvoided = 0;
    }
    if (!orphans_voided(w, seq)) {
        size_t cap = sizeof(w->voided) / sizeof(w->voided[0]);
        if (w->nvoided == cap)
            memmove(w->voided, w->voided + 1, --w->nvoided * sizeof(w->voided[0]));
        w->voided[w->nvoided++] = seq;
    }
    if (cl->host.aborted)
        cl->host.aborted(cl->host.ud, index_of(w), seq);
}

int orphans_voided(const member_t *w, uint64_t seq)
{
    if (w->voided_inc != w->in_inc)
        return 0;
    for (size_t i = 0; i < w->nvoided; i++)
        if (w->voided[i] == seq)
            return 1;
    return 0;
}

/* The wait is over: w's writes in flight are replayed (those voided were
 * aborted already). */
static void release(member_t *w)
{
    w->orph_pending = 0;
    orphans_replay(w);
    coherence_progress(w->cl);
}

/* A node catching up (its cache dropped, or started empty) may hold a gone
 * writer's late PROPOSE with nothing under it: taken here, though another
 * writer's proposal from the same value committed while this node's cache
 * was gone, and the survivors aborted the gone one by rule 28. Replayed
 * now, it would win everywhere by its version (sim seed 443 of
 * crash,stop,pause,cut: a lock with two winners). Held until the snapshot
 * has filled what it replaced, rule 28 can judge it (WRITES.md rule 37). */
void orphans_replay(member_t *w)
{
    cluster_t *cl = w->cl;
    if (!cl->host.origin_gone)
        return;
    int hold = cl->need_snapshot && cl->host.replay_held;
    cl->host.origin_gone(cl->host.ud, index_of(w), hold);
    cl->orph_held |= hold;
}

void orphans_caught_up(cluster_t *cl)
{
    if (!cl->orph_held)
        return;
    cl->orph_held = 0;
    cl->host.replay_held(cl->host.ud);
}

static void release_if_heard(member_t *w)
{
    cluster_t *cl = w->cl;
    for (size_t i = 0; i < cl->nmembers; i++)
        if (w->orph_wait[i])
            return;
    release(w);
}

static void ensure_arrays(member_t *w)
{
    size_t n = w->cl->nmembers;
    if (!w->orph_wait)
        w->orph_wait = xcalloc(n, 1);
    if (!w->orph_heard)
        w->orph_heard = xcalloc(n, sizeof(*w->orph_heard));
}

void orphans_member_dead(member_t *w, int current)
{
    cluster_t *cl = w->cl;
    ensure_arrays(w);
    /* Our report: what we refused of it instead of acknowledging it, if
     * our lease on it held to now. A refusal after our acknowledgement
     * proves nothing: the writer may have committed on it (rule 48). */
    uint64_t seqs[sizeof(w->nacked) / sizeof(w->nacked[0])];
    size_t n = 0;
    for (size_t i = 0; current && i < w->nnacked; i++)
        if (!w->nacked_late[i])
            seqs[n++] = w->nacked[i];
    for (size_t i = 0; i < n; i++)
        void_seq(w, seqs[i]);
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *m = &cl->members[i];
        w->orph_wait[i] = 0;
        if (m == w || !streams(m) || !w->name[0])
            continue;
        send_report(m, w, seqs, n);
        w->orph_wait[i] = w->orph_heard[i] != w->in_inc;
    }
    if (!cl->host.origin_gone)
        return;
    w->orph_pending = 1;
    w->orph_until = cluster_mono(cl) + cl->cfg->flush_timeout_ms;
    release_if_heard(w);
}

void orphans_on_frame(member_t *from, const frame_hdr_t *h)
{
    cluster_t *cl = from->cl;
    frame_reader_t r;
    frame_reader_init(&r, h);
    frame_bytes_t name;
    uint64_t inc;
    uint32_t count;
    frame_get_bytes(&r, &name, sizeof(from->name) - 1);
    frame_get_u64(&r, &inc);
    frame_get_u32(&r, &count);
    if (r.failed || count > VOIDED_MAX) {
        peer_refuse(from->link, "malformed VOIDED");
        return;
    }
    uint64_t seqs[VOIDED_MAX];
    for (uint32_t i = 0; i < count; i++)
        frame_get_u64(&r, &seqs[i]);
    if (frame_reader_done(&r) != 0) {
        peer_refuse(from->link, "malformed VOIDED");
        return;
    }
    member_t *w = member_by_name(cl, (const char *)name.p, name.len);
    if (!w || w == from || !w->in_inc || w->in_inc != inc)
        return; /* a writer, or a process of it, we never followed */
    ensure_arrays(w);
    for (uint32_t i = 0; i < count; i++)
        void_seq(w, seqs[i]);
    int at = index_of(from);
    w->orph_heard[at] = inc;
    if (w->orph_pending && w->orph_wait[at]) {
        w->orph_wait[at] = 0;
        release_if_heard(w);
    }
}

void orphans_tick(cluster_t *cl, int64_t now)
{
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *w = &cl->members[i];
        if (w->orph_pending && now >= w->orph_until) {
            log_info("coherence", "replaying %s's writes in flight without every member's "
                     "report on it", w->name);
            release(w);
        }
    }
}

void orphans_member_lost(member_t *m)
{
    cluster_t *cl = m->cl;
    int at = index_of(m);
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *w = &cl->members[i];
        if (w->orph_pending && w->orph_wait[at]) {
            w->orph_wait[at] = 0;
            release_if_heard(w);
        }
    }
}

void orphans_free(cluster_t *cl)
{
    for (size_t i = 0; i < cl->nmembers; i++) {
        free(cl->members[i].orph_wait);
        free(cl->members[i].orph_heard);
    }
}
