/* flushlog: our flushes through the shared store's flush log, for members
 * out of link contact, and the members' flushes to us through it.
 *
 * Owns: when an append of our flushes is due and what it holds, the appends
 * made (a ring of FL_RECS), the members' log cursors as last read, applying
 * log entries, and the log lease (how long a node may serve because it
 * follows a member's flushes through the log).
 * Never: reaches the store (the node moves bytes between these calls and
 * the store: src/node/node_flushlog.c), or judges time by the database's
 * clock (only this process's monotonic clock, with margins).
 *
 * An entry of the log is one FLUSH payload of ours (incarnation, first flush
 * number, entries: exactly what goes on a link), with the origin's name and
 * incarnation; its log id orders it (ids increase in commit order, store.h).
 * T is the coherence lease ([cluster] lease), margin = cluster_row_margin(T)
 * (T/10, at least 100 ms: the clocks' rate difference and the moment between
 * a decision and its effect).
 *
 * Rules (writer P, reader M) and the tests that check each (each is also
 * checked alone by tests/unit/test_flushlog.c: test_l1_*, test_l2_*,
 * test_reader_rules for L3-L5, test_l8_*):
 *   L1 P appends for M only once M knows this incarnation (its first SYNC
 *      came: knows_us_at) and is not DEAD, when M is behind: no stream to it
 *      (link down, or SYNC not answered yet), or a flush unacknowledged for
 *      flush_timeout. The append starts at the lowest max(ack, what went to
 *      the log for it) + 1 over every member that syncs with us, behind or
 *      not, so each member's entries in the log run without a gap from what
 *      it acknowledged (a member cut off a moment later than another finds
 *      no gap: L4 would cost it its log lease); later batches go to the log
 *      at once while M stays behind (test_flushlog.py: a cut-off member sees
 *      the flush; sim --no-bypass).
 *   L2 a held reply for seq may go, for a member M that has not
 *      acknowledged it and may know us (coherence_may_not_know_us is 0),
 *      when an append covering seq, submitted after knows_us_at, is
 *      committed and either M's cursor is at or past its id (M applied it:
 *      M records its cursor only past entries it applied or that are not
 *      its business), or M's link lease on us has lapsed and T + margin has
 *      passed since the append came back committed (any poll M started
 *      after the commit saw it; M serves on a poll for at most T - margin).
 *      Otherwise the reply waits, whatever M's link lease says: M may serve
 *      through its log lease (test_flushlog.py: n2 never serves the old
 *      value after n1's reply; ctest sim_flushlog: I1, no stale read after
 *      a reply, checked after every event under every fault).
 *      A member that may not know us needs its acknowledgement, as before.
 *   L3 M applies an entry of origin P only when it is of the incarnation of
 *      P that M linked with (in_inc), through the same code as a FLUSH from
 *      the link: flush numbers already applied are skipped, so the link's
 *      replay (SYNC reports the applied position) never applies twice.
 *      Entries of another incarnation, or of unknown members, are skipped
 *      (P relies on M's cursor only after M's SYNC, L2) (test_flushlog.py:
 *      the coherence round after the links are back; ctest sim_flushlog).
 *   L4 an entry starting beyond what M applied (flushes before it are still
 *      on the link, or in a later append) is left: M records no cursor past
 *      it and its poll gives no log lease on P. After flush_timeout + 2T
 *      M applies it anyway, dropping its cache for the gap as a jumped FLUSH
 *      does (P's replay log forgot what M missed: a link would RESET it)
 *      (ctest sim_flushlog, whose replay log holds 64 flushes).
 *   L5 M's log lease on P: start of M's last poll that read the log to its
 *      end with none of P's entries left + T - margin, only while P's row
 *      was live at M's last read of the rows, M linked with P's incarnation,
 *      and P answered a PING of M's since M's own row last lapsed (P may hold
 *      M dead until then, and append nothing for it). M serves while, for
 *      every member not DEAD, the link lease or the log lease holds, so a
 *      link cut between two nodes that both reach the store costs no
 *      bypassed reads (test_flushlog.py: bypass counters stop growing;
 *      ctest sim_flushlog_no_bypass: I4, every node serves at every event
 *      while only links fail and the store is up).
 *   L6 the node polls the log every cluster_flushlog_poll_ms: 50 ms while a
 *      member's link lease has less than T/2 left or an entry is stalled,
 *      else every T/3 (at most 1 s): a few round trips per second per node
 *      at idle, and the log lease stays current before a link cut is even
 *      noticed. PostgreSQL's NOTIFY wakes a poll at once (bench/flushlog
 *      measures the round trips; no test asserts a rate).
 *   L7 not carried by the log: NACKs of proposals refused by a member that
 *      reads them from the log (there is no link to send one on), and ABORT
 *      (it follows when the link is back; the node's in-flight sweep settles
 *      what never comes; not tested).
 *   L8 P's writes commit (coherence.c, commit_upto) once every member that
 *      counts acknowledged them or the log settles them for it as in L2; a
 *      member behind the log hears of the commit through a COMMIT entry (an
 *      entry with seq 0: incarnation, flush number), appended when P's
 *      commits moved past the last one appended, so its readers of a key
 *      written through the log do not wait for the link (test_flushlog.py:
 *      the SET of a replicated key through n1 is read at n2).
 *   L9 a proposal (a read-modify-write of a replicated key, cluster/WRITES.md)
 *      is settled for M only by M's acknowledgement on the link, never by
 *      the log: M may have refused it (it holds a newer write), and a
 *      refusal cannot travel through the log (L7), so settling it by M's
 *      cursor or by time would let two conflicting writes both commit (two
 *      INCRs replying the same value). Everything after it in our numbering
 *      waits with it (the acknowledged watermark is one number per member).
 *      So while M is out of link contact, our read-modify-writes of
 *      replicated keys wait until the link is back or M is dead
 *      (test_flushlog.c: test_l9_proposal_needs_the_link).
 * A node that reaches neither its members nor the store holds its flush
 * replies until one of them is back (L2 needs a committed append). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_int.h"
#include "log.h"
#include "mem.h"

#define POLL_FAST_MS 50
#define POLL_IDLE_MAX_MS 1000
#define APPEND_MAX_BYTES (256u << 10) /* one log entry; a larger backlog takes several */
#define APPEND_RETRY_MS 100

static int64_t margin(const cluster_t *cl)
{
    return cluster_row_margin(cluster_lease_ms(cl));
}

void cluster_flushlog_enable(cluster_t *cl, int on)
{
    if (!cl || cl->flushlog == !!on)
        return;
    cl->flushlog = !!on;
    serving_lowered(cl);
    if (on && !cl->fl_recs)
        cl->fl_recs = xcalloc(FL_RECS, sizeof(fl_rec_t));
    log_info("cluster", "flush log through the store %s", on ? "on" : "off");
    coherence_progress(cl);
}

int cluster_flushlog_on(const cluster_t *cl)
{
    return cl && cl->flushlog && !cl->no_arbiter[0]; /* this node serves on the log */
}

void flushlog_free(cluster_t *cl)
{
    free(cl->fl_recs);
    cl->fl_recs = NULL;
}

/* ---- writer ---------------------------------------------------------------- */

/* The highest of our flushes sent out (the open batch goes at end of turn). */
static uint64_t sent_upto(const cluster_t *cl)
{
    return cl->batch_first - 1;
}

/* L1: 1 when m needs our flushes through the log. */
static int behind(const member_t *m, int64_t now)
{
    const cluster_t *cl = m->cl;
    if (!m->knows_us_at || m->state == MEMBER_DEAD || m->acked >= sent_upto(cl))
        return 0;
    if (!m->link || !m->stream_ready)
        return 1;
    return m->unacked_since && now - m->unacked_since > cl->cfg->flush_timeout_ms;
}

/* 1 when m would apply our entries from the log (it synced with us). */
static int reads_us(const member_t *m)
{
    return m->knows_us_at && m->state != MEMBER_DEAD;
}

static uint64_t need_from(const member_t *m)
{
    return (m->acked > m->log_upto ? m->acked : m->log_upto) + 1;
}

/* L8: a COMMIT entry is due when our commits moved past the last one
 * appended and a member that gets our flushes through the log has not
 * acknowledged them (it hears of the commit no other way while cut off). */
static int commit_due(const cluster_t *cl, int64_t now)
{
    if (cl->committed <= cl->fl_commit_sent)
        return 0;
    for (size_t i = 0; i < cl->nmembers; i++) {
        const member_t *m = &cl->members[i];
        if (m->knows_us_at && m->state != MEMBER_DEAD && m->log_upto > m->acked &&
            (!m->link || !m->stream_ready ||
             (m->unacked_since && now - m->unacked_since > cl->cfg->flush_timeout_ms)))
            return 1;
    }
    return 0;
}

int cluster_flushlog_due(cluster_t *cl)
{
    if (!cl || !cl->flushlog || cl->fl_inflight || cl->stopping)
        return 0;
    int64_t now = cluster_mono(cl);
    if (now < cl->fl_retry_at)
        return 0;
    for (size_t i = 0; i < cl->nmembers; i++) {
        const member_t *m = &cl->members[i];
        if (behind(m, now) && need_from(m) <= sent_upto(cl))
            return 1;
    }
    return commit_due(cl, now);
}

int cluster_flushlog_take(cluster_t *cl, buf_t *out, uint64_t *inc, uint64_t *first)
{
    if (!cluster_flushlog_due(cl))
        return -1;
    int64_t now = cluster_mono(cl);
    uint64_t upto = sent_upto(cl), from = UINT64_MAX;
    int any = 0;
    for (size_t i = 0; i < cl->nmembers; i++) /* a flush is due: whose range? */
        any |= behind(&cl->members[i], now) && need_from(&cl->members[i]) <= upto;
    for (size_t i = 0; any && i < cl->nmembers; i++) {
        const member_t *m = &cl->members[i];
        if (reads_us(m) && need_from(m) <= upto && need_from(m) < from)
            from = need_from(m);
    }
    if (from == UINT64_MAX) { /* only a COMMIT is due */
        frame_put_u64(out, cl->incarnation);
        frame_put_u64(out, cl->committed);
        cl->fl_inflight = 1;
        cl->fl_inflight_commit = 1;
        cl->fl_first = cl->fl_last = cl->committed;
        cl->fl_submitted = now;
        *inc = cl->incarnation;
        *first = 0;
        return 0;
    }
    if (from < coherence_log_first(cl))
        from = coherence_log_first(cl); /* the ring forgot some: readers see a gap (L4) */
    if (from > upto)
        return -1;
    /* One entry of at most about APPEND_MAX_BYTES (at least one flush). */
    uint64_t to = from;
    size_t bytes = 0;
    buf_t probe;
    buf_init(&probe);
    while (to < upto) {
        buf_clear(&probe);
        coherence_encode(cl, &probe, to + 1, to + 1);
        size_t grown = bytes + buf_len(&probe);
        int in_unit = coherence_unit_next(cl, to) && grown <= FRAME_UNIT_MAX; /* U1 */
        if (grown > APPEND_MAX_BYTES && !in_unit)
            break;
        bytes += buf_len(&probe);
        to++;
    }
    buf_free(&probe);
    coherence_encode(cl, out, from, to);
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *m = &cl->members[i];
        if (reads_us(m) && need_from(m) <= to && to > m->log_upto)
            m->log_upto = to; /* below from only where the ring forgot: a gap either way */
    }
    cl->fl_inflight = 1;
    cl->fl_inflight_commit = 0;
    cl->fl_first = from;
    cl->fl_last = to;
    cl->fl_submitted = now;
    *inc = cl->incarnation;
    *first = from;
    return 0;
}

void cluster_flushlog_appended(cluster_t *cl, int ok, int64_t id)
{
    if (!cl || !cl->fl_inflight)
        return;
    cl->fl_inflight = 0;
    int64_t now = cluster_mono(cl);
    if (cl->fl_inflight_commit) {
        if (ok && cl->fl_last > cl->fl_commit_sent)
            cl->fl_commit_sent = cl->fl_last;
        if (!ok)
            cl->fl_retry_at = now + APPEND_RETRY_MS;
        return;
    }
    if (!ok) {
        for (size_t i = 0; i < cl->nmembers; i++) {
            member_t *m = &cl->members[i];
            if (m->log_upto >= cl->fl_first)
                m->log_upto = cl->fl_first - 1; /* due again */
        }
        cl->fl_retry_at = now + APPEND_RETRY_MS;
        return;
    }
    fl_rec_t *r = &cl->fl_recs[cl->fl_next];
    *r = (fl_rec_t){cl->fl_first, cl->fl_last, id, cl->fl_submitted, now};
    cl->fl_next = (cl->fl_next + 1) % FL_RECS;
    if (cl->fl_len < FL_RECS)
        cl->fl_len++;
    if (id > cl->fl_newest_id)
        cl->fl_newest_id = id;
    if (cl->fl_last > cl->fl_max_last)
        cl->fl_max_last = cl->fl_last;
    cl->counters.log_appends++;
    coherence_progress(cl);
}

/* 1 when append r settles seq for m (L2). */
static int settles(const member_t *m, const fl_rec_t *r, int link, int64_t now)
{
    const cluster_t *cl = m->cl;
    if (!m->knows_us_at || r->submitted < m->knows_us_at)
        return 0;
    return m->log_pos >= r->id ||
           (!link && now >= r->committed + cluster_lease_ms(cl) + margin(cl));
}

uint64_t flushlog_covered(member_t *m, int64_t now)
{
    cluster_t *cl = m->cl;
    if (coherence_may_not_know_us(m, now))
        return m->acked; /* L2: its acknowledgement, as without the log */
    uint64_t c = m->acked;
    if (cl->fl_max_last <= c)
        return c; /* no append holds anything it has not acknowledged (the usual case) */
    int link = coherence_link_may_serve(m, now);
    int moved = 1;
    while (moved) { /* appends may overlap and come in any order */
        moved = 0;
        for (size_t i = 0; i < cl->fl_len; i++) {
            const fl_rec_t *r = &cl->fl_recs[i];
            if (r->first <= c + 1 && r->last > c && settles(m, r, link, now)) {
                c = r->last;
                moved = 1;
            }
        }
    }
    /* L9: not past a proposal m has not acknowledged on the link. */
    uint64_t p = coherence_first_proposal(cl, m->acked + 1, c);
    return p <= c ? p - 1 : c;
}

int flushlog_holds(member_t *m, uint64_t seq, int64_t now)
{
    if (seq > m->cl->fl_max_last)
        return 1; /* in no append yet */
    if (flushlog_covered(m, now) >= seq) {
        m->cl->counters.log_released++;
        return 0;
    }
    return 1;
}

int cluster_flushlog_wants_cursors(cluster_t *cl)
{
    if (!cl || !cl->flushlog || !cl->fl_len)
        return 0;
    for (size_t i = 0; i < cl->nmembers; i++) {
        const member_t *m = &cl->members[i];
        if (m->state != MEMBER_DEAD && m->knows_us_at && m->acked < m->log_upto &&
            m->log_pos < cl->fl_newest_id)
            return 1;
    }
    return 0;
}

int cluster_flushlog_cursor(cluster_t *cl, const char *reader, int64_t last_id)
{
    if (!cl || !reader)
        return 0;
    member_t *m = member_by_name(cl, reader, strlen(reader));
    if (!m || last_id <= m->log_pos)
        return 0;
    m->log_pos = last_id;
    return 1;
}

void cluster_flushlog_progress(cluster_t *cl)
{
    if (cl)
        coherence_progress(cl);
}

/* ---- reader ---------------------------------------------------------------- */

void cluster_flushlog_poll_begin(cluster_t *cl)
{
    if (!cl)
        return;
    for (size_t i = 0; i < cl->nmembers; i++)
        cl->members[i].log_stalled = 0;
}

int cluster_flushlog_apply(cluster_t *cl, const char *origin, uint64_t inc, uint64_t seq,
                           const void *data, size_t len)
{
    if (!cl || !cl->flushlog || cl->stopping || strcmp(origin, cl->cfg->name) == 0)
        return 1;
    member_t *m = member_by_name(cl, origin, strlen(origin));
    if (!m || !m->in_inc || inc != m->in_inc)
        return 1; /* L3 */
    frame_reader_t r = {data, len, 0};
    if (seq == 0) { /* L8: a COMMIT */
        uint64_t cinc, upto;
        frame_get_u64(&r, &cinc);
        frame_get_u64(&r, &upto);
        if (frame_reader_done(&r) == 0 && cinc == inc)
            coherence_committed(m, upto);
        return 1;
    }
    uint64_t finc, first;
    uint32_t count;
    frame_get_u64(&r, &finc);
    frame_get_u64(&r, &first);
    frame_get_u32(&r, &count);
    if (r.failed || finc != inc || first == 0 || count == 0) {
        log_warn("cluster", "flush log: malformed entry of %s skipped", origin);
        return 1;
    }
    if (first + count - 1 <= m->in_applied)
        return 1; /* came by the link already */
    int64_t now = cluster_mono(cl);
    if (first > m->in_applied + 1) { /* L4 */
        int64_t limit = cl->cfg->flush_timeout_ms + 2 * (int64_t)cluster_lease_ms(cl);
        if (!m->log_stall_since)
            m->log_stall_since = now;
        if (now - m->log_stall_since < limit) {
            m->log_stalled = 1;
            return 0;
        }
    }
    m->log_stall_since = 0;
    frame_reader_t all = {data, len, 0};
    if (coherence_apply_flush(m, &all, 1) < 0)
        log_warn("cluster", "flush log: malformed entry of %s skipped", origin);
    return 1;
}

void cluster_flushlog_poll_end(cluster_t *cl, int64_t started)
{
    if (!cl)
        return;
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *m = &cl->members[i];
        if (!m->log_stalled && started > m->log_from)
            m->log_from = started;
    }
}

int64_t flushlog_lease_until(const member_t *m)
{
    /* L5: lease_until is 0 after our own row's lapse until P answers again */
    if (!m->in_inc || !m->row_live || !m->log_from || !m->lease_until)
        return 0;
    return m->log_from + cluster_lease_ms(m->cl) - margin(m->cl);
}

int64_t cluster_flushlog_poll_ms(cluster_t *cl)
{
    if (!cl || !cl->flushlog)
        return -1;
    int64_t T = cluster_lease_ms(cl), now = cluster_mono(cl);
    for (size_t i = 0; i < cl->nmembers; i++) {
        const member_t *m = &cl->members[i];
        if (m->state != MEMBER_DEAD && m->in_inc &&
            (m->lease_until - now < T / 2 || m->log_stalled))
            return POLL_FAST_MS;
    }
    int64_t idle = T / 3;
    return idle < POLL_FAST_MS ? POLL_FAST_MS : idle > POLL_IDLE_MAX_MS ? POLL_IDLE_MAX_MS : idle;
}
