/* coherence: cluster-wide flushes, acknowledged.
 *
 * Owns: this node's flush numbering (1, 2, 3, ... per incarnation), the
 * per-turn batch (duplicates removed, one FLUSH frame per member), the bounded
 * replay log, applying the members' flushes here (through the host
 * interface), acknowledgements, when a held reply may go, and the coherence
 * lease.
 * Never: sends a flush's reply before every member that could still serve the
 * flushed value has applied it; serves a cached value while out of contact.
 *
 * When may a held reply go? For every member M that has not acknowledged the
 * flush, M must be unable to serve the old value:
 *   - M is DEAD (its cohortd is not running: nothing to serve), or
 *   - M's lease on us has run out: M serves only within T of a PING we
 *     answered, so after last_pong_sent + T it bypasses its cache until it
 *     hears from us again, and it hears our flush first (the link is ordered);
 *   - and M must have heard from this incarnation at all: a member we never
 *     answered may have seen our previous process refuse connections,
 *     declared it dead and serve without a lease on us, so the flush waits
 *     until it links and acknowledges, or is decided dead.
 * A member that has not acknowledged within flush_timeout gets no more PONGs
 * (membership.c), so that wait is bounded by flush_timeout + T.
 * With the store's flush log on (flushlog.c), a member may also serve while
 * it follows our flushes through the log, so its lapsed lease is no longer
 * enough: the reply waits until the log settles the flush for it (its log
 * cursor past the entry, or T + margin after the entry committed with its
 * link lease lapsed; flushlog.c, L2), and the wait is bounded by the append.
 *
 * Replay: when a link comes up each side sends SYNC (the incarnation it knows
 * of the other and how far it applied its flushes). The other side replays the
 * missing flushes from its log, or, when the log no longer covers the gap,
 * sends RESET and the member drops its whole cache. A member that restarts
 * without saying BYE may have sent flushes that never arrived: the nodes that
 * knew its former incarnation drop their caches when they meet the new one,
 * unless that incarnation was seen to die (DEAD: its port refused
 * connections) while our lease on it still held: it could reply a flush
 * without our acknowledgement only after that lease ran out, and it was gone
 * by then (ended_current).
 *
 * Units (U1, tests/integration/test_transaction_unit.py): the entries
 * recorded between cluster_unit_begin and _end (one EXEC, one script) are
 * marked unit_next but the last, and send_range never ends a frame between
 * two of them while the frame stays under FRAME_UNIT_MAX: a member applies
 * the frame in one handler, so no client of it sees part of a transaction.
 * The store's flush log keeps a unit in one append the same way
 * (flushlog.c). A unit larger than that is sent in parts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "clock.h"
#include "cluster_int.h"
#include "hlc.h"
#include "log.h"
#include "mem.h"

#define LOG_MAX_BYTES (64u << 20)
#define LOG_MAX_AGE_MS (10 * 60 * 1000)
/* How far the members' wall clocks may disagree (hlc.h): a member meeting a
 * new incarnation is replayed what it flushed up to this long before that
 * incarnation started. */
#define SKIP_MARGIN_MS 1000

/* ---- the replay log ------------------------------------------------------ */

/* The log holds our flushes [log_first, flush_seq], contiguous, in a ring of
 * log_cap entries indexed by (seq - 1) % log_cap. It keeps at most
 * replay_log entries and LOG_MAX_BYTES of keys and values once they are
 * sent, and none sent more than LOG_MAX_AGE_MS ago (the tick trims it, so
 * an idle node gives the memory back; a member out of contact that long gets
 * RESET on its return instead of a replay), but never drops one that the
 * members in contact have not been sent yet (seq >= batch_first): a turn
 * with more flushes than the limit grows the ring instead, and the limit
 * applies again after the batch went out (test_replay_log.c:
 * test_replay_log_is_bounded_by_age_but_keeps_what_is_unsent). */

static uint64_t log_first(const cluster_t *cl)
{
    return cl->flush_seq - cl->log_len + 1;
}

static flush_entry_t *log_at(cluster_t *cl, uint64_t seq)
{
    return &cl->log[(seq - 1) % cl->log_cap];
}

static void log_drop_oldest(cluster_t *cl)
{
    flush_entry_t *e = log_at(cl, log_first(cl));
    if (e->version > cl->log_dropped_version)
        cl->log_dropped_version = e->version;
    cl->log_bytes -= mem_usable(e->data);
    free(e->data);
    e->data = NULL;
    cl->log_len--;
}

/* Doubles the ring, keeping every entry at its new place. */
static void log_grow(cluster_t *cl)
{
    size_t cap = cl->log_cap * 2;
    flush_entry_t *ring = xcalloc(cap, sizeof(flush_entry_t));
    for (uint64_t seq = log_first(cl); seq <= cl->flush_seq; seq++)
        ring[(seq - 1) % cap] = *log_at(cl, seq);
    free(cl->log);
    cl->log = ring;
    cl->log_cap = cap;
}

/* 1 when the oldest entry was already sent to the members in contact. */
static int oldest_sent(const cluster_t *cl)
{
    return cl->log_len > 1 && log_first(cl) < cl->batch_first;
}

/* Drops sent entries beyond the count, byte and age limits. */
static void log_trim(cluster_t *cl)
{
    int64_t old = cluster_mono(cl) - LOG_MAX_AGE_MS;
    while (oldest_sent(cl) && (cl->log_len > cl->log_keep || cl->log_bytes > cl->log_max_bytes ||
                               log_at(cl, log_first(cl))->at < old))
        log_drop_oldest(cl);
}

void coherence_tick(cluster_t *cl)
{
    log_trim(cl);
}

/* ---- the per-turn dedupe index: seq of each distinct entry --------------- */

/* An open-addressing table of flush numbers of this turn's batch, keyed by
 * (kind, key). Entries older than valid_from are stale: they are skipped by
 * lookups and overwritten by inserts, so ending a turn, or a SEED (which
 * orders later flushes of its key after it), costs O(1) instead of clearing
 * the table; the table is rebuilt, at the size its live entries need, when
 * stale and live entries together fill half of it, and given back at the
 * end of a turn far smaller than it (batch_shrink; test_replay_log.c:
 * test_dedupe_index_shrinks_after_a_large_turn). */
typedef struct batch_index {
    uint64_t *slots;     /* flush numbers, 0 = empty */
    size_t cap;          /* power of two */
    size_t occupied;     /* non-zero slots, stale ones included */
    uint64_t valid_from; /* entries below this number are stale */
} batch_index_t;

#define BATCH_MIN_SLOTS 256

static uint64_t entry_hash(uint8_t kind, const char *key, size_t klen)
{
    return XXH3_64bits_withSeed(key, klen, kind);
}

static int batch_live(const cluster_t *cl, uint64_t seq)
{
    return seq && seq >= cl->batch->valid_from && seq <= cl->flush_seq && seq >= log_first(cl);
}

/* Makes every entry recorded so far ineligible for de-duplication. */
static void batch_clear(cluster_t *cl)
{
    cl->batch->valid_from = cl->flush_seq + 1;
}

/* Returns the flush number of an identical entry already in this turn's
 * batch (and after the last SEED), or 0. */
static uint64_t batch_find(cluster_t *cl, uint8_t kind, const char *key, size_t klen)
{
    batch_index_t *b = cl->batch;
    size_t mask = b->cap - 1;
    for (size_t i = entry_hash(kind, key, klen) & mask;; i = (i + 1) & mask) {
        uint64_t seq = b->slots[i];
        if (!seq)
            return 0;
        if (!batch_live(cl, seq))
            continue;
        flush_entry_t *e = log_at(cl, seq);
        if (e->kind == kind && e->klen == klen && memcmp(e->data, key, klen) == 0)
            return seq;
    }
}

/* Puts seq in the first empty or stale slot of its chain. */
static void batch_place(cluster_t *cl, uint64_t seq)
{
    batch_index_t *b = cl->batch;
    flush_entry_t *e = log_at(cl, seq);
    size_t mask = b->cap - 1;
    size_t i = entry_hash(e->kind, e->data, e->klen) & mask;
    while (batch_live(cl, b->slots[i]))
        i = (i + 1) & mask;
    if (!b->slots[i])
        b->occupied++;
    b->slots[i] = seq;
}

/* Rebuilds the table with room for its live entries (stale ones dropped). */
static void batch_rebuild(cluster_t *cl)
{
    batch_index_t *b = cl->batch;
    uint64_t *old = b->slots;
    size_t oldcap = b->cap, live = 0;
    for (size_t i = 0; i < oldcap; i++)
        live += batch_live(cl, old[i]);
    size_t cap = BATCH_MIN_SLOTS;
    while (cap < 4 * (live + 1))
        cap *= 2;
    b->slots = xcalloc(cap, sizeof(uint64_t));
    b->cap = cap;
    b->occupied = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (batch_live(cl, old[i]))
            batch_place(cl, old[i]);
    free(old);
}

/* At the end of a turn, when the table is far larger than that turn needed
 * (a turn of a million flushes before it), gives the memory back: every
 * entry is stale by then, so a fresh minimal table loses nothing, and a
 * later large turn grows it again by doubling (amortized O(1) per flush). */
static void batch_shrink(cluster_t *cl, uint64_t turn_entries)
{
    batch_index_t *b = cl->batch;
    if (b->cap <= BATCH_MIN_SLOTS || 16 * (turn_entries + 1) >= b->cap)
        return;
    free(b->slots);
    b->slots = xcalloc(BATCH_MIN_SLOTS, sizeof(uint64_t));
    b->cap = BATCH_MIN_SLOTS;
    b->occupied = 0;
}

size_t coherence_batch_slots(const cluster_t *cl)
{
    return cl->batch->cap;
}

static void batch_add(cluster_t *cl, uint64_t seq)
{
    if ((cl->batch->occupied + 1) * 2 > cl->batch->cap)
        batch_rebuild(cl);
    batch_place(cl, seq);
}

/* ---- recording our flushes --------------------------------------------------- */

/* 1 for entries that carry a value (or its digest): the same key written
 * twice in a turn is two entries, in order. */
static int carries_value(uint8_t kind)
{
    return kind == FLUSH_SEED || kind == FLUSH_INVAL || kind == FLUSH_PROPOSE;
}

/* SEED and PROPOSE carry a value, its time left and its form. */
static int has_value(uint8_t kind)
{
    return kind == FLUSH_SEED || kind == FLUSH_PROPOSE;
}

static uint64_t record(cluster_t *cl, uint8_t kind, const char *key, size_t klen, const char *val,
                       size_t vlen, int64_t expire_at, uint64_t version)
{
    if (!carries_value(kind)) {
        uint64_t same = batch_find(cl, kind, key, klen);
        if (same) { /* not sent yet: it goes out with the newer version */
            flush_entry_t *e = log_at(cl, same);
            if (version > e->version)
                e->version = version;
            return same;
        }
    }
    if (cl->log_len == cl->log_cap) {
        if (oldest_sent(cl))
            log_drop_oldest(cl);
        else
            log_grow(cl);
    }
    uint64_t seq = ++cl->flush_seq;
    cl->log_len++;
    flush_entry_t *e = log_at(cl, seq);
    e->seq = seq;
    e->version = version;
    e->kind = kind;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    e->expire_at = expire_at;
    e->at = cluster_mono(cl);
    e->enc = 0;
    e->aborted = 0;
    e->unit_next = 0;
    e->data = xmalloc(klen + vlen + 1);
    memcpy(e->data, key, klen);
    if (vlen)
        memcpy(e->data + klen, val, vlen);
    cl->log_bytes += mem_usable(e->data);
    log_trim(cl);
    if (carries_value(kind))
        batch_clear(cl); /* a flush of this key after the write must not fold into one before */
    else
        batch_add(cl, seq);
    return seq;
}

void cluster_unit_begin(cluster_t *cl)
{
    if (cl && cl->unit_depth++ == 0)
        cl->unit_from = cl->flush_seq + 1;
}

void cluster_unit_end(cluster_t *cl)
{
    if (!cl || --cl->unit_depth > 0)
        return;
    uint64_t from = cl->unit_from > log_first(cl) ? cl->unit_from : log_first(cl);
    for (uint64_t s = from; s < cl->flush_seq; s++)
        log_at(cl, s)->unit_next = 1;
}

uint64_t cluster_flush_key(cluster_t *cl, const char *key, size_t klen, uint64_t version)
{
    return cl ? record(cl, FLUSH_KEY, key, klen, NULL, 0, 0, version) : 0;
}

uint64_t cluster_flush_prefix(cluster_t *cl, const char *prefix, size_t plen, uint64_t version)
{
    return cl ? record(cl, FLUSH_PREFIX, prefix, plen, NULL, 0, 0, version) : 0;
}

uint64_t cluster_flush_all(cluster_t *cl, uint64_t version)
{
    return cl ? record(cl, FLUSH_ALL, "", 0, NULL, 0, 0, version) : 0;
}

static uint64_t record_value(cluster_t *cl, uint8_t kind, const char *key, size_t klen,
                             const char *val, size_t vlen, int64_t expire_at, int enc,
                             uint64_t version)
{
    if (!cl)
        return 0;
    uint64_t seq = record(cl, kind, key, klen, val, vlen, expire_at, version);
    log_at(cl, seq)->enc = (uint8_t)enc;
    return seq;
}

uint64_t cluster_seed(cluster_t *cl, const char *key, size_t klen, const char *val, size_t vlen,
                      int64_t expire_at, int enc, uint64_t version)
{
    return record_value(cl, FLUSH_SEED, key, klen, val, vlen, expire_at, enc, version);
}

uint64_t cluster_propose(cluster_t *cl, const char *key, size_t klen, const char *val,
                         size_t vlen, int64_t expire_at, int enc, uint64_t version)
{
    uint64_t seq = record_value(cl, FLUSH_PROPOSE, key, klen, val, vlen, expire_at, enc, version);
    if (seq) { /* kept until decided: the log may forget it first (abort_undecided) */
        if (cl->nundecided == cl->capundecided) {
            cl->capundecided = cl->capundecided ? 2 * cl->capundecided : 16;
            cl->undecided = xrealloc(cl->undecided, cl->capundecided * sizeof(*cl->undecided));
        }
        cl->undecided[cl->nundecided++] = (struct undecided){seq, cluster_mono(cl)};
    }
    return seq;
}

/* Takes seq (0: every one up to cl->committed) out of cl->undecided. */
static void decided(cluster_t *cl, uint64_t seq)
{
    size_t j = 0;
    for (size_t i = 0; i < cl->nundecided; i++)
        if (seq ? cl->undecided[i].seq != seq : cl->undecided[i].seq > cl->committed)
            cl->undecided[j++] = cl->undecided[i];
    cl->nundecided = j;
}

uint64_t cluster_invalidate(cluster_t *cl, const char *key, size_t klen, uint64_t digest,
                            uint64_t version)
{
    uint8_t d[8];
    for (int i = 0; i < 8; i++)
        d[i] = (uint8_t)(digest >> (56 - 8 * i));
    return cl ? record(cl, FLUSH_INVAL, key, klen, (const char *)d, 8, 0, version) : 0;
}

/* ---- sending ------------------------------------------------------------------ */

static size_t entry_size(const flush_entry_t *e)
{
    return (size_t)e->klen + e->vlen + 32;
}

/* A SEED's expire time as the time left when it is sent (0: none; at least 1
 * once set, so an entry due already expires at once on the member): members
 * whose wall clocks disagree still expire it after the same time. */
static uint64_t ttl_of(int64_t expire_at)
{
    if (expire_at == 0)
        return 0;
    int64_t left = expire_at - clock_wall_ms();
    return left > 0 ? (uint64_t)left : 1;
}

static void send_abort(link_t *l, uint64_t inc, uint64_t seq)
{
    size_t s = peer_frame_begin(l, FRAME_ABORT);
    frame_put_u64(&l->out, inc);
    frame_put_u64(&l->out, seq);
    peer_frame_end(l, s);
}

/* After entries [from, last] went to m: the aborts among them, so that a
 * member replayed a refused proposal never takes it as committed. */
static void send_aborts(member_t *m, uint64_t from, uint64_t last)
{
    for (uint64_t seq = from; seq <= last; seq++)
        if (log_at(m->cl, seq)->aborted)
            send_abort(m->link, m->cl->incarnation, seq);
}

/* m's flushes applied here are to be acknowledged at the end of the turn. */
static void ack_needed(member_t *m)
{
    if (m->ack_due)
        return;
    m->ack_due = 1;
    m->cl->acks_due[m->cl->nacks_due++] = m;
}

/* Writes our flushes [from, last] (all in the log) as entries to b. */
static void put_entries(cluster_t *cl, buf_t *b, uint64_t from, uint64_t last)
{
    for (uint64_t seq = from; seq <= last; seq++) {
        flush_entry_t *e = log_at(cl, seq);
        frame_put_u8(b, e->kind);
        frame_put_u64(b, e->version);
        frame_put_bytes(b, e->data, e->klen);
        if (has_value(e->kind)) {
            frame_put_u64(b, ttl_of(e->expire_at));
            frame_put_bytes(b, e->data + e->klen, e->vlen);
            frame_put_u8(b, e->enc);
        } else if (e->kind == FLUSH_INVAL) {
            frame_put_bytes(b, e->data + e->klen, e->vlen);
        }
    }
}

void coherence_encode(cluster_t *cl, buf_t *b, uint64_t from, uint64_t to)
{
    frame_put_u64(b, cl->incarnation);
    frame_put_u64(b, from);
    frame_put_u32(b, (uint32_t)(to - from + 1));
    put_entries(cl, b, from, to);
}

uint64_t coherence_log_first(const cluster_t *cl)
{
    return log_first(cl);
}

/* The last of our flushes from 'from' on (at most to) that go in one frame:
 * about FRAME_BATCH_SOFT of them, but a unit whole while under
 * FRAME_UNIT_MAX (U1). */
uint64_t coherence_frame_end(cluster_t *cl, uint64_t from, uint64_t to)
{
    uint64_t last = from;
    size_t bytes = entry_size(log_at(cl, from));
    while (last < to) {
        size_t next = entry_size(log_at(cl, last + 1));
        int in_unit = log_at(cl, last)->unit_next && bytes + next <= FRAME_UNIT_MAX;
        if (!in_unit && bytes + next > FRAME_BATCH_SOFT)
            break;
        bytes += next;
        last++;
    }
    return last;
}

int coherence_unit_next(cluster_t *cl, uint64_t seq)
{
    return seq >= log_first(cl) && seq <= cl->flush_seq && log_at(cl, seq)->unit_next;
}

/* Counts one FLUSH frame of our flushes [from, last] sent to m, and sends
 * the ABORTs that follow it. */
static void frame_sent(member_t *m, uint64_t from, uint64_t last)
{
    cluster_t *cl = m->cl;
    send_aborts(m, from, last);
    cl->counters.flush_frames_sent++;
    cl->counters.flushes_sent += last - from + 1;
    m->flushes_sent += last - from + 1;
}

/* Notes that m was sent our flushes up to to. */
static void sent_upto(member_t *m, uint64_t to)
{
    if (to > m->sent_upto)
        m->sent_upto = to;
    if (!m->unacked_since && m->acked < m->sent_upto)
        m->unacked_since = cluster_mono(m->cl);
}

/* Sends our flushes [from, to] to m, in frames of about FRAME_BATCH_SOFT
 * (a replay: for this member alone, so encoded for it). */
static void send_range(member_t *m, uint64_t from, uint64_t to)
{
    cluster_t *cl = m->cl;
    link_t *l = m->link;
    while (from <= to) {
        uint64_t last = coherence_frame_end(cl, from, to);
        size_t s = peer_frame_begin(l, FRAME_FLUSH);
        coherence_encode(cl, &l->out, from, last);
        peer_frame_end(l, s);
        frame_sent(m, from, last);
        from = last + 1;
    }
    sent_upto(m, to);
}

/* Encodes our flushes [from, to] once into cl->batch_enc, one chunk per
 * frame (the frames send_range would make). */
static void encode_batch(cluster_t *cl, uint64_t from, uint64_t to)
{
    buf_clear(&cl->batch_enc);
    cl->nchunks = 0;
    while (from <= to) {
        uint64_t last = coherence_frame_end(cl, from, to);
        if (cl->nchunks == cl->capchunks) {
            cl->capchunks = cl->capchunks ? 2 * cl->capchunks : 8;
            cl->chunks = xrealloc(cl->chunks, cl->capchunks * sizeof(*cl->chunks));
        }
        struct batch_chunk *c = &cl->chunks[cl->nchunks++];
        c->from = from;
        c->last = last;
        c->off = buf_len(&cl->batch_enc);
        coherence_encode(cl, &cl->batch_enc, from, last);
        c->len = buf_len(&cl->batch_enc) - c->off;
        from = last + 1;
    }
}

/* The turn's new flushes [from, to] to every ready member: encoded once,
 * then each link copies the bytes into frames of its own (its header,
 * sequence number and MAC), so the encoding costs O(batch), not
 * O(batch x members). */
static void send_batch(cluster_t *cl, uint64_t from, uint64_t to)
{
    int encoded = 0;
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *m = &cl->members[i];
        if (!m->stream_ready || !m->link)
            continue;
        if (!encoded)
            encode_batch(cl, from, to);
        encoded = 1;
        for (size_t c = 0; c < cl->nchunks; c++) {
            const struct batch_chunk *k = &cl->chunks[c];
            size_t s = peer_frame_begin(m->link, FRAME_FLUSH);
            buf_append(&m->link->out, buf_head(&cl->batch_enc) + k->off, k->len);
            peer_frame_end(m->link, s);
            frame_sent(m, k->from, k->last);
        }
        sent_upto(m, to);
    }
    buf_clear(&cl->batch_enc);
    buf_trim(&cl->batch_enc, 1u << 20);
}

void coherence_send_batches(cluster_t *cl)
{
    if (cl->flush_seq < cl->batch_first) {
        batch_shrink(cl, 0);
        return;
    }
    uint64_t from = cl->batch_first;
    if (from < log_first(cl))
        from = log_first(cl);
    send_batch(cl, from, cl->flush_seq);
    uint64_t turn_entries = cl->flush_seq + 1 - cl->batch_first;
    cl->batch_first = cl->flush_seq + 1;
    batch_clear(cl);
    batch_shrink(cl, turn_entries);
    log_trim(cl);
}

static int member_order(const void *a, const void *b)
{
    const member_t *x = *(const member_t *const *)a, *y = *(const member_t *const *)b;
    return (x > y) - (x < y);
}

/* O(k log k) for the k members that need one, not O(members); sent in the
 * members' order, as a scan of them would (the order of frames across
 * links is part of what the simulator's seeds replay). */
void coherence_send_acks(cluster_t *cl)
{
    if (cl->nacks_due > 1)
        qsort(cl->acks_due, cl->nacks_due, sizeof(member_t *), member_order);
    for (size_t i = 0; i < cl->nacks_due; i++) {
        member_t *m = cl->acks_due[i];
        m->ack_due = 0;
        if (!m->link)
            continue;
        link_t *l = m->link;
        size_t s = peer_frame_begin(l, FRAME_ACK);
        frame_put_u64(&l->out, m->in_inc);
        frame_put_u64(&l->out, m->in_applied);
        peer_frame_end(l, s);
        if (m->in_applied > m->in_acked)
            m->in_acked = m->in_applied;
    }
    cl->nacks_due = 0;
}

void coherence_send_commits(cluster_t *cl)
{
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *m = &cl->members[i];
        if (!m->stream_ready || !m->link || m->commit_sent >= cl->committed)
            continue;
        link_t *l = m->link;
        size_t s = peer_frame_begin(l, FRAME_COMMIT);
        frame_put_u64(&l->out, cl->incarnation);
        frame_put_u64(&l->out, cl->committed);
        peer_frame_end(l, s);
        m->commit_sent = cl->committed;
    }
}

static void send_nack(member_t *m, uint64_t seq);

/* Our write seq will not commit: marked in the log (a proposal: anything
 * else is left alone), the members it went to are told, and so is the
 * host. */
static void abort_own(cluster_t *cl, uint64_t seq)
{
    decided(cl, seq);
    if (seq >= log_first(cl)) {
        flush_entry_t *e = log_at(cl, seq);
        if (e->kind != FLUSH_PROPOSE || e->aborted)
            return;
        e->aborted = 1;
    }
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *o = &cl->members[i];
        if (o->stream_ready && o->link && o->sent_upto >= seq)
            send_abort(o->link, cl->incarnation, seq);
    }
    if (cl->host.aborted && !cl->stopping) /* stopping: its client gets no reply */
        cl->host.aborted(cl->host.ud, CLUSTER_SELF, seq);
}

/* Aborts our proposals in [from, to] not committed: a member skipped them
 * (RESET) without judging them (WRITES.md rule 15). */
static void abort_undecided(cluster_t *cl, uint64_t from, uint64_t to)
{
    size_t n = cl->nundecided;
    if (!n)
        return;
    uint64_t *seqs = xmalloc(n * sizeof(uint64_t)); /* abort_own takes each out */
    for (size_t i = 0; i < n; i++)
        seqs[i] = cl->undecided[i].seq;
    for (size_t i = 0; i < n; i++)
        if (seqs[i] >= from && seqs[i] <= to && seqs[i] > cl->committed)
            abort_own(cl, seqs[i]);
    free(seqs);
}

void coherence_stop(cluster_t *cl)
{
    /* Our proposals not decided never will be (their clients get no reply):
     * members told so before our goodbye do not replay them as if we might
     * have committed them (WRITES.md rule 27). */
    abort_undecided(cl, 1, cl->flush_seq);
}

void coherence_on_stream_start(member_t *m)
{
    link_t *l = m->link;
    m->stream_ready = 0;
    m->commit_sent = 0;
    uint64_t applied = m->in_applied;
    for (size_t i = 0; i < m->nnacked; i++)
        if (m->nacked[i] <= applied)
            applied = m->nacked[i] - 1;
    size_t s = peer_frame_begin(l, FRAME_SYNC);
    frame_put_u64(&l->out, m->in_inc);
    frame_put_u64(&l->out, applied);
    frame_put_u64(&l->out, m->cl->host.start_version);
    peer_frame_end(l, s);
    if (applied > m->in_acked)
        m->in_acked = applied;
    for (size_t i = 0; i < m->nnacked; i++)
        send_nack(m, m->nacked[i]);
}

/* ---- receiving ------------------------------------------------------------ */

static void refuse(member_t *m, uint64_t seq);

static void refuse_undecided(void *ud, int origin, uint64_t seq)
{
    cluster_t *cl = ud;
    if (origin >= 0 && (size_t)origin < cl->nmembers)
        refuse(&cl->members[origin], seq);
}

/* Drops the whole cache. The members' writes in flight here lose their
 * value with it, though this node acknowledged them: each is refused, so
 * none commits on that acknowledgement (WRITES.md rule 21). */
static size_t drop_all(cluster_t *cl)
{
    if (cl->host.each_undecided)
        cl->host.each_undecided(cl->host.ud, refuse_undecided, cl);
    return cl->host.drop_all(cl->host.ud);
}

static void drop_cache(cluster_t *cl, member_t *m, const char *why)
{
    size_t keys = drop_all(cl);
    /* Our proposals in flight lost their value here, and what we missed may
     * have overtaken them: none of them commits (WRITES.md rule 15). */
    abort_undecided(cl, 1, cl->flush_seq);
    cl->counters.cache_drops++;
    catchup_needed(cl);
    log_warn("coherence", "dropped the whole cache (%zu keys): %s %s", keys, m->name, why);
}

/* Drops the cache when it holds anything (counted and logged only then). */
static void drop_if_any(cluster_t *cl, member_t *m, const char *why)
{
    size_t keys = drop_all(cl);
    if (!keys)
        return;
    abort_undecided(cl, 1, cl->flush_seq);
    cl->counters.cache_drops++;
    catchup_needed(cl);
    log_warn("coherence", "dropped the whole cache (%zu keys): %s %s", keys,
             m->name[0] ? m->name : m->addr, why);
}

void coherence_new_incarnation(member_t *m, uint64_t inc)
{
    if (m->incarnation != inc) { /* a new process: what it knew of us is gone */
        m->knows_us_at = 0;
        m->log_upto = 0;
        m->log_pos = 0;
    }
    m->incarnation = inc;
    if (m->in_inc == inc)
        return;
    if (m->in_inc != 0) /* its writes in flight stay so */
        orphans_replay(m);
    if (m->in_inc != 0 && !m->clean_bye && !m->ended_current)
        drop_cache(m->cl, m, "restarted without saying goodbye; flushes it sent may be lost");
    else if (m->in_inc != 0 && m->cl->arbiter && m->cl->row_lapsed_at >= m->inc_ended_at)
        /* Our row lapsed since its last incarnation ended: another may have
         * lived between, held us dead and replied writes without us (sim
         * --store seed 108: a lock won while this node was paused). */
        drop_cache(m->cl, m, "restarted while this node's row had lapsed; an incarnation "
                             "between may have written without it");
    m->ended_current = 0;
    m->unknown_past = m->in_inc == 0;
    m->in_inc = inc;
    m->log_from = 0; /* a log lease on its former incarnation says nothing of this one */
    serving_lowered(m->cl);
    m->log_stall_since = 0;
    m->in_applied = 0;
    m->in_acked = 0;
    m->nnacked = 0;
    m->clean_bye = 0;
}

/* ACK carries (incarnation, flush number). Returns 0 or -1. */
static int read_inc_seq(frame_reader_t *r, uint64_t *inc, uint64_t *seq)
{
    frame_get_u64(r, inc);
    frame_get_u64(r, seq);
    return frame_reader_done(r);
}

/* The largest version among our flushes up to upto, the dropped ones
 * included. Not the version of flush upto: a PROPOSE carries the version of
 * the write it makes, which may be older than flushes numbered before it
 * (WRITES.md rule 45). Linear in the log, like the replay that follows a
 * RESET; only a reconnect sends one. */
static uint64_t max_version_upto(cluster_t *cl, uint64_t upto)
{
    uint64_t v = cl->log_dropped_version;
    for (uint64_t seq = log_first(cl); seq <= upto && seq <= cl->flush_seq; seq++)
        if (log_at(cl, seq)->version > v)
            v = log_at(cl, seq)->version;
    return v;
}

/* Sends RESET: the member's stream of our flushes restarts after upto; with
 * skip set, what it did not get was older than its incarnation and it keeps
 * its cache, else it drops it. Either way the member's floor rises to every
 * version it did not get. */
static void send_reset(member_t *m, uint64_t upto, int skip)
{
    cluster_t *cl = m->cl;
    link_t *l = m->link;
    size_t s = peer_frame_begin(l, FRAME_RESET);
    frame_put_u64(&l->out, cl->incarnation);
    frame_put_u64(&l->out, upto);
    frame_put_u8(&l->out, skip ? RESET_SKIP : 0);
    frame_put_u64(&l->out, max_version_upto(cl, upto));
    peer_frame_end(l, s);
    m->sent_upto = upto;
    if (!m->unacked_since)
        m->unacked_since = cluster_mono(cl);
}

/* The last of our flushes, from 'from' on, that a member meeting this
 * incarnation for the first time does not need: those older than its own
 * incarnation (its cache started empty after them). */
static uint64_t older_than_member(cluster_t *cl, uint64_t from, uint64_t upto, uint64_t start)
{
    uint64_t last = from - 1;
    if (last + 1 < log_first(cl)) {
        if (cl->log_dropped_version >= start)
            return last; /* the log forgot one it may need */
        last = log_first(cl) - 1;
    }
    while (last < upto && log_at(cl, last + 1)->version < start)
        last++;
    return last;
}

static void on_sync(member_t *m, frame_reader_t *r)
{
    cluster_t *cl = m->cl;
    uint64_t inc, applied;
    frame_get_u64(r, &inc);
    frame_get_u64(r, &applied);
    frame_get_u64(r, &m->start_version);
    if (frame_reader_done(r) != 0)
        return;
    /* The first incarnation of it we meet started after this one: an earlier
     * one lived alongside us, never linked, and may have replied flushes
     * while treating us as out of contact; we cannot get them any more. */
    cl->host.observe(cl->host.ud, m->start_version); /* its clock may be ahead */
    if (m->unknown_past && m->start_version > cl->host.start_version) {
        if (member_unseen_since_join(m))
            log_info("coherence", "%s: its first process met started after this node's row "
                     "joined; the cache stays (nothing of it was replied without us)", m->name);
        else
            drop_if_any(cl, m, "restarted while this node never heard from it; flushes it "
                               "sent may be lost");
    }
    m->unknown_past = 0;
    if (!m->knows_us_at) /* it learned our incarnation in the handshake, before this */
        m->knows_us_at = cluster_mono(cl);
    uint64_t upto = cl->batch_first - 1; /* the open batch goes out at end of turn */
    int knows_us = inc == cl->incarnation;
    if (!knows_us)
        applied = 0;
    if (applied > upto)
        applied = upto; /* nobody applied what was never sent */
    uint64_t from = applied + 1;
    /* A member that comes back without having caught up keeps its clock:
     * a link that keeps reconnecting must not stretch the wait for its
     * acknowledgement past flush_timeout. */
    int64_t since = applied < m->sent_upto ? m->unacked_since : 0;
    m->acked = applied;
    m->sent_upto = applied;
    m->unacked_since = since;
    uint64_t margin = hlc_at(SKIP_MARGIN_MS);
    uint64_t before = m->start_version > margin ? m->start_version - margin : 0;
    uint64_t skip_to = knows_us ? applied : older_than_member(cl, from, upto, before);
    if (skip_to >= from) {
        send_reset(m, skip_to, 1);
        from = skip_to + 1;
    }
    if (from <= upto && from < log_first(cl)) {
        send_reset(m, upto, 0);
        abort_undecided(cl, from, upto); /* m never judges them */
        log_info("coherence", "%s missed more flushes than the replay log holds: reset",
                 m->name);
    } else if (from <= upto) {
        send_range(m, from, upto);
        cl->counters.replayed += upto - from + 1;
        log_info("coherence", "replayed %llu flushes to %s", (unsigned long long)(upto - from + 1),
                 m->name);
    }
    m->stream_ready = 1;
}

static void on_reset(member_t *m, frame_reader_t *r)
{
    uint64_t inc, upto, version;
    uint8_t flags;
    frame_get_u64(r, &inc);
    frame_get_u64(r, &upto);
    frame_get_u8(r, &flags);
    frame_get_u64(r, &version);
    if (frame_reader_done(r) != 0 || inc != m->in_inc)
        return;
    if (!(flags & RESET_SKIP))
        drop_cache(m->cl, m, "replay log no longer covers what this node missed");
    m->cl->host.skipped_upto(m->cl->host.ud, version);
    m->in_applied = upto;
    ack_needed(m);
}

static void on_ack(member_t *m, frame_reader_t *r)
{
    cluster_t *cl = m->cl;
    uint64_t inc, seq;
    if (read_inc_seq(r, &inc, &seq) != 0 || inc != cl->incarnation || seq <= m->acked)
        return;
    m->acked = seq > m->sent_upto ? m->sent_upto : seq;
    if (m->acked >= m->sent_upto) {
        m->unacked_since = 0;
        m->ack_timeout_logged = 0;
    } else {
        m->unacked_since = cluster_mono(cl); /* progress */
    }
    coherence_progress(cl);
}

/* Sends m a NACK of its flush seq (a PROPOSE refused here). */
static void send_nack(member_t *m, uint64_t seq)
{
    link_t *l = m->link;
    size_t s = peer_frame_begin(l, FRAME_NACK);
    frame_put_u64(&l->out, m->in_inc);
    frame_put_u64(&l->out, seq);
    peer_frame_end(l, s);
}

/* Refuses m's write seq: a NACK now, and again after every SYNC until m
 * resolves it. */
static void refuse(member_t *m, uint64_t seq)
{
    for (size_t i = 0; i < m->nnacked; i++)
        if (m->nacked[i] == seq)
            return;
    /* Read from the store's log without a link (flushlog.c, L7), the NACK
     * waits: kept below, it is sent again after the next SYNC. */
    if (m->link)
        send_nack(m, seq);
    size_t cap = sizeof(m->nacked) / sizeof(m->nacked[0]);
    if (m->nnacked == cap) { /* the oldest: its writer has had the longest to hear */
        --m->nnacked;
        memmove(m->nacked, m->nacked + 1, m->nnacked * sizeof(m->nacked[0]));
        memmove(m->nacked_late, m->nacked_late + 1, m->nnacked);
    }
    m->nacked_late[m->nnacked] = seq <= m->in_acked;
    m->nacked[m->nnacked++] = seq;
}

static void apply_entry(member_t *m, uint64_t seq, uint8_t kind, frame_bytes_t key,
                        int64_t expire_at, frame_bytes_t val, int enc, uint64_t version)
{
    cluster_t *cl = m->cl;
    int origin = (int)(m - cl->members);
    if (kind == FLUSH_PROPOSE && orphans_voided(m, seq)) {
        refuse(m, seq); /* a late copy of a proposal that cannot have committed */
        return;
    }
    /* A proposal of a process whose row said it left or exited, held back
     * by a cut until then: it never committed, as it waited for our
     * acknowledgement (whatever it replied without us, while our lease on it
     * had lapsed, its death made us drop and catch up with), and taken, it
     * would be replayed as a gone writer's write (WRITES.md rule 42; sim
     * --store seed 151 of crash,stop,pause,cut: an INCR told TRYAGAIN
     * counted). */
    if (kind == FLUSH_PROPOSE && m->ended_inc && m->ended_inc == m->in_inc) {
        refuse(m, seq);
        return;
    }
    if (!cl->host.apply(cl->host.ud, kind, (const char *)key.p, key.len, (const char *)val.p,
                        val.len, expire_at, enc, version, origin, seq))
        refuse(m, seq);
}

/* 1 when seq is one of our proposals neither committed nor aborted. */
static int undecided(const cluster_t *cl, uint64_t seq)
{
    for (size_t i = 0; i < cl->nundecided; i++)
        if (cl->undecided[i].seq == seq)
            return 1;
    return 0;
}

void cluster_abort_proposal(cluster_t *cl, uint64_t seq)
{
    if (cl && undecided(cl, seq)) {
        cl->counters.writes_yielded++;
        abort_own(cl, seq);
    }
}

void cluster_refuse_write(cluster_t *cl, int origin, uint64_t seq)
{
    if (cl)
        refuse_undecided(cl, origin, seq);
}

/* m resolved its write seq (aborted it), or every write up to it (commit). */
static void resolved(member_t *m, uint64_t seq, int upto)
{
    size_t j = 0;
    for (size_t i = 0; i < m->nnacked; i++)
        if (upto ? m->nacked[i] > seq : m->nacked[i] != seq) {
            m->nacked_late[j] = m->nacked_late[i];
            m->nacked[j++] = m->nacked[i];
        }
    m->nnacked = j;
}

int coherence_apply_flush(member_t *m, frame_reader_t *r, int from_log)
{
    cluster_t *cl = m->cl;
    uint64_t inc, first;
    uint32_t count;
    frame_get_u64(r, &inc);
    frame_get_u64(r, &first);
    frame_get_u32(r, &count);
    if (r->failed || inc != m->in_inc || first == 0 || first > UINT64_MAX - count)
        return -1;
    if (first > m->in_applied + 1) {
        drop_cache(cl, m, "flush numbers jumped");
        m->in_applied = first - 1;
    }
    size_t max_key = peer_entry_max(cl);
    for (uint32_t i = 0; i < count; i++) {
        uint8_t kind;
        frame_bytes_t key, val = {NULL, 0};
        uint64_t ttl = 0, version = 0;
        uint8_t enc = 0;
        frame_get_u8(r, &kind);
        frame_get_u64(r, &version);
        frame_get_bytes(r, &key, (uint32_t)max_key);
        if (has_value(kind)) {
            frame_get_u64(r, &ttl);
            frame_get_bytes(r, &val, (uint32_t)max_key);
            frame_get_u8(r, &enc);
        } else if (kind == FLUSH_INVAL) {
            frame_get_bytes(r, &val, 8);
        }
        if (r->failed || kind < FLUSH_KEY || kind > FLUSH_PROPOSE ||
            (kind == FLUSH_INVAL && val.len != 8))
            return -2;
        uint64_t seq = first + i;
        if (seq <= m->in_applied)
            continue; /* already applied (replay overlap, or link and log) */
        if (ttl > (uint64_t)INT64_MAX / 2) /* keeps now + ttl from overflowing */
            ttl = (uint64_t)INT64_MAX / 2;
        apply_entry(m, seq, kind, key, ttl ? clock_wall_ms() + (int64_t)ttl : 0, val, enc,
                    version);
        m->in_applied = seq;
        m->flushes_received++;
        cl->counters.flushes_received++;
        if (from_log)
            cl->counters.log_applied++;
    }
    ack_needed(m);
    return 0;
}

static void on_flush(member_t *m, frame_reader_t *r)
{
    int rc = coherence_apply_flush(m, r, 0);
    if (rc < 0)
        peer_refuse(m->link, rc == -2 ? "malformed FLUSH entry" : "malformed FLUSH");
}

/* NACK: a member refused our PROPOSE seq; ABORT and COMMIT: the member's
 * own writes. */
static void on_nack(member_t *m, frame_reader_t *r)
{
    cluster_t *cl = m->cl;
    uint64_t inc, seq;
    if (read_inc_seq(r, &inc, &seq) != 0) {
        peer_refuse(m->link, "malformed NACK");
        return;
    }
    if (inc != cl->incarnation)
        return; /* of an earlier incarnation of ours */
    if (seq == 0 || seq > cl->flush_seq) {
        peer_refuse(m->link, "NACK of a flush never sent");
        return;
    }
    /* Only a proposal aborts: a member dropping its cache refuses every
     * write of ours in flight there, SEEDs too (rule 21), and once the log
     * forgot a SEED, abort_own could not tell (sim --writes --blind seed 27
     * of delay,reset,oneway: a replied SET aborted everywhere, then swept).
     * A committed one is too late (a replay the member held already). */
    if (undecided(cl, seq))
        abort_own(cl, seq);
}

void coherence_committed(member_t *m, uint64_t upto)
{
    cluster_t *cl = m->cl;
    if (upto > m->in_applied)
        upto = m->in_applied; /* those up to what we applied are committed too */
    if (upto && cl->host.committed)
        cl->host.committed(cl->host.ud, (int)(m - cl->members), upto);
}

static void on_abort_or_commit(member_t *m, frame_reader_t *r, int commit)
{
    cluster_t *cl = m->cl;
    uint64_t inc, seq;
    if (read_inc_seq(r, &inc, &seq) != 0) {
        peer_refuse(m->link, commit ? "malformed COMMIT" : "malformed ABORT");
        return;
    }
    if (inc != m->in_inc || seq > m->in_applied)
        return; /* not of the incarnation we follow, or ahead of what we applied */
    int origin = (int)(m - cl->members);
    resolved(m, seq, commit);
    if (commit && cl->host.committed)
        cl->host.committed(cl->host.ud, origin, seq);
    else if (!commit && cl->host.aborted)
        cl->host.aborted(cl->host.ud, origin, seq);
}

void coherence_on_frame(member_t *m, const frame_hdr_t *h)
{
    frame_reader_t r;
    frame_reader_init(&r, h);
    switch (h->type) {
    case FRAME_SYNC:
        on_sync(m, &r);
        break;
    case FRAME_RESET:
        on_reset(m, &r);
        break;
    case FRAME_ACK:
        on_ack(m, &r);
        break;
    case FRAME_FLUSH:
        on_flush(m, &r);
        break;
    case FRAME_NACK:
        on_nack(m, &r);
        break;
    case FRAME_ABORT:
        on_abort_or_commit(m, &r, 0);
        break;
    case FRAME_COMMIT:
        on_abort_or_commit(m, &r, 1);
        break;
    }
}

/* ---- held replies and the lease --------------------------------------------- */

int coherence_link_may_serve(const member_t *m, int64_t now)
{
    return m->last_pong_sent && now < m->last_pong_sent + cluster_lease_ms(m->cl);
}

int coherence_may_not_know_us(const member_t *m, int64_t now)
{
    const cluster_t *cl = m->cl;
    int lapsed = cl->arbiter && now >= cl->own_row_until;
    /* A member this incarnation never answered holds no lease on it: it may
     * have seen our previous process refuse connections, declared us dead
     * and serve without a lease on us. Until it links (and acknowledges) or
     * is itself decided dead, it may hold the old value. The same holds for
     * every member while our row is lapsed, and for a member not answered
     * since the lapse ended (membership.c, cluster_own_row). */
    return lapsed || !m->last_pong_sent || m->last_pong_sent < cl->row_lapsed_at;
}

/* 1 while member m may serve cached values without having applied what we
 * flushed: its lease on us holds, or it may not know us. */
static int may_serve_any(const member_t *m, int64_t now)
{
    return coherence_link_may_serve(m, now) || coherence_may_not_know_us(m, now);
}

/* 1 while m's acknowledgements count: it is not dead, or our own row may
 * have expired. With the store as arbiter, a node whose own row may have
 * expired may be dead to any member (which then serves without a lease on
 * it, a PONG it got from us notwithstanding), and its own view of who is
 * dead may be stale (a member it saw die may have restarted): it waits for
 * every member's acknowledgement, the dead ones' included, until its row is
 * renewed. */
static int counts(const member_t *m, int64_t now)
{
    int lapsed = m->cl->arbiter && now >= m->cl->own_row_until;
    return m->state != MEMBER_DEAD || lapsed;
}

/* 1 while member m could still serve a value our flush 'seq' removed. */
static int holds(member_t *m, uint64_t seq, int64_t since, int64_t now)
{
    cluster_t *cl = m->cl;
    if (m->acked >= seq || !counts(m, now))
        return 0;
    int timeout = cl->cfg->flush_timeout_ms;
    /* With the store's flush log, a lapsed link lease is not enough: the
     * member may follow our flushes through the log (flushlog.c). */
    int may = cl->flushlog ? flushlog_holds(m, seq, now) : may_serve_any(m, now);
    if (may && now - since > timeout && !m->ack_timeout_logged) {
        m->ack_timeout_logged = 1;
        cl->counters.ack_timeouts++;
        log_warn("coherence", "%s has not acknowledged flush %llu within %d ms; replying once "
                 "its lease on this node has run out", m->name[0] ? m->name : m->addr,
                 (unsigned long long)seq, timeout);
    }
    return may;
}

static int releasable(cluster_t *cl, uint64_t seq, int64_t since, int64_t now)
{
    member_row_lapse(cl, now);
    for (size_t i = 0; i < cl->nmembers; i++)
        if (holds(&cl->members[i], seq, since, now))
            return 0;
    return 1;
}

int cluster_reply_ready(cluster_t *cl, uint64_t seq, int64_t since)
{
    return !cl || releasable(cl, seq, since, cluster_mono(cl));
}

uint64_t coherence_first_proposal(cluster_t *cl, uint64_t from, uint64_t to)
{
    if (from > to)
        return to + 1;
    if (cl->log_len == 0 || from < log_first(cl))
        return from;
    for (uint64_t seq = from; seq <= to && seq <= cl->flush_seq; seq++)
        if (log_at(cl, seq)->kind == FLUSH_PROPOSE)
            return seq;
    return to + 1;
}

/* The highest of our flush numbers that every member that may serve has
 * applied (what cluster_reply_ready says of each). */
static uint64_t commit_upto(cluster_t *cl, int64_t now)
{
    uint64_t upto = cl->batch_first - 1; /* the open batch has not been sent */
    member_row_lapse(cl, now);
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *m = &cl->members[i];
        if (!counts(m, now) || m->acked >= upto)
            continue;
        if (cl->flushlog) { /* what it applied through the log counts too */
            uint64_t c = flushlog_covered(m, now);
            if (c < upto)
                upto = c;
        } else if (may_serve_any(m, now)) {
            upto = m->acked;
        }
    }
    return upto;
}

/* The latest moment since which some member may have committed a write
 * without waiting for our refusal: it waits for our acknowledgement only
 * while our lease on it may hold (coherence_link_may_serve on its side), so
 * the end of our last lapse on it, or the start of one still going on. */
static int64_t last_lapse(const cluster_t *cl, int64_t now)
{
    int64_t last = cl->row_lapsed_at;
    for (size_t i = 0; i < cl->nmembers; i++) {
        const member_t *m = &cl->members[i];
        if (m->lapsed_at > last)
            last = m->lapsed_at;
        if (now >= m->lease_until && m->lease_until > last)
            last = m->lease_until;
    }
    return last;
}

/* Aborts our proposals up to upto made before the last lapse (WRITES.md
 * rule 22): a member out of contact since may have committed its own
 * read-modify-write from the same value without our refusal, though ours
 * is newer; then ours must not commit too (sim --writes seed 40 of
 * crash,stop,pause,cut: two INCRs replied 199). O(members + proposals). */
static void abort_lapsed(cluster_t *cl, uint64_t upto, int64_t now)
{
    if (!cl->nundecided || cl->undecided[0].seq > upto)
        return;
    int64_t last = last_lapse(cl, now);
    for (size_t i = cl->nundecided; i-- > 0;) /* abort_own takes [i] out: backwards */
        if (cl->undecided[i].seq <= upto && cl->undecided[i].at <= last) {
            cl->counters.writes_yielded++;
            abort_own(cl, cl->undecided[i].seq);
        }
}

void coherence_progress(cluster_t *cl)
{
    /* Commits only while this node serves (every member not dead renewed
     * its lease on us): a member whose lease on us lapsed is not waited for
     * (it cannot serve), but it may have made a proposal of its own from the
     * same base, which only its refusal of ours would have stopped; it
     * cannot commit that one either while it does not serve, and it serves
     * again only after our proposal reached it on the ordered stream
     * (WRITES.md rule 9; found by sim --writes). Where it refused ours for
     * its own, both could commit: abort_lapsed (rule 22). */
    if (cl->host.committed && cluster_serving(cl)) {
        int64_t now = cluster_mono(cl);
        uint64_t upto = commit_upto(cl, now);
        if (upto > cl->committed) {
            abort_lapsed(cl, upto, now);
            cl->committed = upto;
            decided(cl, 0);
            cl->host.committed(cl->host.ud, CLUSTER_SELF, upto);
        }
    }
    if (cl->host.progress)
        cl->host.progress(cl->host.ud);
}

void coherence_unmet_process_ended(member_t *m)
{
    drop_cache(m->cl, m, "had a process this node never met, which ended while this node's "
                         "row had lapsed; it may have written without this node");
}

void coherence_member_gone(member_t *m)
{
    cluster_t *cl = m->cl;
    /* It died while this node was not current with it (our lease on it had
     * lapsed, or we never heard from this incarnation): it may have replied
     * flushes we never got, treating us as out of contact, and we can no
     * longer catch up with them. What we hold may be what they removed. */
    m->inc_ended_at = cluster_mono(cl);
    int current = m->clean_bye || cluster_mono(cl) < m->lease_until;
    if (!current) {
        drop_if_any(cl, m, "died before this node caught up with its flushes");
        /* Holding nothing, this node may still lack what it wrote with
         * other members' acknowledgements (WRITES.md rule 33). */
        if (!cl->need_snapshot)
            catchup_needed(cl);
    } else
        m->ended_current = 1; /* its next incarnation needs no drop either */
    /* Its writes in flight: settled with the members, then replayed
     * (orphans.c, WRITES.md rule 34). */
    orphans_member_dead(m, current);
    coherence_progress(cl);
}

/* Until when this node may serve as far as m is concerned: its lease on m
 * through the link, or through following m's flushes in the store's log. */
static int64_t lease_of(const member_t *m)
{
    int64_t l = m->lease_until;
    if (m->cl->flushlog && !m->cl->no_arbiter[0]) { /* storeid.c, S1 */
        int64_t f = flushlog_lease_until(m);
        if (f > l)
            l = f;
    }
    return l;
}

/* Until when this node may serve: INT64_MIN while catching up, else the
 * earliest of our row's end (others may declare us dead after it), the
 * leases on the members not dead, and, while a catch-up counts every
 * member gone, the end of the freshness of the refusals it counts.
 * O(members). */
static int64_t serving_bound(cluster_t *cl)
{
    if (cluster_catching_up(cl))
        return INT64_MIN;
    int64_t until = catchup_gone_until(cl, cluster_mono(cl));
    if (cl->arbiter && cl->own_row_until < until)
        until = cl->own_row_until;
    for (size_t i = 0; i < cl->nmembers; i++) {
        const member_t *m = &cl->members[i];
        if (m->state != MEMBER_DEAD && lease_of(m) < until)
            until = lease_of(m);
    }
    return until;
}

/* S1 (cluster_serving_cache_broken, checked by the simulator every step):
 * the cached bound, while ahead of the clock, is never above
 * serving_bound(). It is recomputed when reached (a lease extended since
 * only raises the true bound; the end of the refusal that lets a catch-up
 * serve as is is part of the bound: catchup_gone_until) and after
 * serving_lowered(), which every change that can lower it calls. So a read
 * costs O(1) but once per lease period or state change. */
int cluster_serving(cluster_t *cl)
{
    if (!cl)
        return 1;
    int64_t now = cluster_mono(cl);
    if (cl->serving_stale || now >= cl->serving_until) {
        cl->serving_until = serving_bound(cl);
        cl->serving_stale = 0;
    }
    return now < cl->serving_until;
}

int cluster_serving_cache_broken(cluster_t *cl)
{
    /* A bound the clock has passed is recomputed before use: only one
     * still ahead must hold (a refusal's freshness ends with time). */
    return !cl->serving_stale && cl->serving_until > cluster_mono(cl) &&
           cl->serving_until > serving_bound(cl);
}

int64_t cluster_serving_left_ms(cluster_t *cl)
{
    if (!cl)
        return INT64_MAX;
    int64_t now = cluster_mono(cl), left = INT64_MAX;
    for (size_t i = 0; i < cl->nmembers; i++) {
        const member_t *m = &cl->members[i];
        if (m->state != MEMBER_DEAD && lease_of(m) - now < left)
            left = lease_of(m) - now;
    }
    return left;
}

const char *cluster_why_not_serving(cluster_t *cl)
{
    static char why[160];
    if (!cl)
        return NULL;
    if (cluster_catching_up(cl))
        return "catching up with the replicated keyspaces from a member";
    int64_t now = cluster_mono(cl);
    if (cl->arbiter && now >= cl->own_row_until)
        return "this node's membership row is not renewed in time (is the store reachable?)";
    for (size_t i = 0; i < cl->nmembers; i++) {
        const member_t *m = &cl->members[i];
        if (m->state != MEMBER_DEAD && now >= lease_of(m)) {
            snprintf(why, sizeof(why), "out of contact with %s (%s) for longer than the lease",
                     m->name[0] ? m->name : m->addr, member_state_name(m->state));
            return why;
        }
    }
    return NULL;
}

int coherence_init(cluster_t *cl)
{
    const config_t *cfg = cl->cfg;
    cl->log_keep = cfg->replay_log ? cfg->replay_log : 1;
    cl->log_cap = cl->log_keep;
    cl->log = xcalloc(cl->log_cap, sizeof(flush_entry_t));
    cl->log_max_bytes = LOG_MAX_BYTES;
    cl->batch_first = 1;
    cl->batch = xcalloc(1, sizeof(batch_index_t));
    cl->batch->cap = BATCH_MIN_SLOTS;
    cl->batch->slots = xcalloc(cl->batch->cap, sizeof(uint64_t));
    cl->batch->valid_from = 1;
    buf_init(&cl->batch_enc);
    cl->acks_due = xcalloc(cl->nmembers ? cl->nmembers : 1, sizeof(member_t *));
    return 0;
}

void coherence_free(cluster_t *cl)
{
    buf_free(&cl->batch_enc);
    free(cl->chunks);
    free(cl->acks_due);
    flushlog_free(cl);
    while (cl->log_len)
        log_drop_oldest(cl);
    free(cl->log);
    free(cl->undecided);
    if (cl->batch)
        free(cl->batch->slots);
    free(cl->batch);
}
