/* cmd_wait: commands suspended for the write protocol (cluster/WRITES.md).
 *
 * Owns: each suspended command's state (client_t.wait): why it waits, the
 * flush numbers of the writes it proposed, and its reply, kept aside until
 * they commit; and the list of them (node_t.waits), rechecked at the end of
 * every turn in which something they wait for changed.
 * Never: lets a reply out before every write of its command committed, or
 * a read return a value whose write may still abort; suspends a command
 * inside EXEC or a script (CMDC_ATOMIC: those read and write as they find).
 *
 * A suspended command stays in its client's query buffer (net's
 * client_suspend) and runs again from the start when resumed: after a
 * refused proposal it computes again from the newer value, after a key's
 * write in flight committed it reads it; after its own writes committed it
 * is not run again, its reply is handed back (cmd_wait_resumed).
 *
 * WAIT numreplicas timeout suspends the same way (WAIT_REPLICAS), checked
 * at the end of every turn (the cron makes one at least every 10 ms): it is
 * over once numreplicas members in contact acknowledged the connection's
 * newest write or flush (client_t.write_seq), or its timeout passed; its
 * reply, the count then, is handed back as a write's is. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cmd.h"
#include "mem.h"
#include "writes.h"

enum wait_kind {
    WAIT_COLLECTING = 0, /* running: proposals are being added */
    WAIT_KEYS,           /* a key has a write in flight */
    WAIT_WRITES,         /* its proposals are not decided yet */
    WAIT_DONE,           /* they committed: hand the reply back */
    WAIT_RETRY,          /* one was refused: run it again */
    WAIT_REPLICAS,       /* WAIT: until enough members acknowledged */
    WAIT_SWEEP           /* FLUSHPREFIX: until the cache swept its flush */
};

typedef struct cmd_wait {
    client_t *c;
    struct cmd_wait *prev, *next;
    int kind;
    uint64_t *seqs;
    size_t nseqs;
    buf_t reply;
    long long want;   /* WAIT_REPLICAS: numreplicas */
    int64_t deadline; /* WAIT_REPLICAS: clock_mono_ms; 0: none */
    uint64_t sweep;   /* WAIT_SWEEP: cache_flush_prefix_start's id */
    int dbsize;       /* WAIT_SWEEP: reply DBSIZE, not the flush's count */
} cmd_wait_t;

static cmd_wait_t *wait_of(client_t *c)
{
    node_t *n = cmd_node(c);
    cmd_wait_t *w = c->wait;
    if (w)
        return w;
    w = xcalloc(1, sizeof(*w));
    w->c = c;
    buf_init(&w->reply);
    w->next = n->waits;
    if (w->next)
        w->next->prev = w;
    n->waits = w;
    c->wait = w;
    return w;
}

static void wait_free(client_t *c)
{
    cmd_wait_t *w = c->wait;
    if (!w)
        return;
    node_t *n = cmd_node(c);
    if (w->kind == WAIT_SWEEP && !w->dbsize && n->cache)
        cache_flush_release(n->cache, w->sweep);
    if (w->prev)
        w->prev->next = w->next;
    else
        n->waits = w->next;
    if (w->next)
        w->next->prev = w->prev;
    buf_free(&w->reply);
    free(w->seqs);
    free(w);
    c->wait = NULL;
}

void cmd_wait_add_proposal(client_t *c, uint64_t seq)
{
    if (!seq || (c->cmd_flags & CMDC_ATOMIC))
        return;
    cmd_wait_t *w = wait_of(c);
    w->seqs = xrealloc(w->seqs, (w->nseqs + 1) * sizeof(uint64_t));
    w->seqs[w->nseqs++] = seq;
}

int cmd_wait_for_keys(client_t *c, int argc, const char **argv, const size_t *argl, int first,
                      int last, int step)
{
    node_t *n = cmd_node(c);
    if (inflight_count(n->inflight) == 0 || (c->cmd_flags & CMDC_ATOMIC))
        return 0;
    for (int i = first; i <= last && i < argc; i += step)
        if (inflight_version(n->inflight, argv[i], argl[i])) {
            wait_of(c)->kind = WAIT_KEYS;
            client_suspend(c);
            return 1;
        }
    return 0;
}

void cmd_wait_after(client_t *c, size_t out_before)
{
    cmd_wait_t *w = c->wait;
    if (!w || w->kind != WAIT_COLLECTING || (c->flags & CLIENT_SUSPENDED))
        return;
    if (!w->nseqs) {
        wait_free(c);
        return;
    }
    size_t len = buf_len(&c->out) - out_before;
    buf_append(&w->reply, buf_head(&c->out) + out_before, len);
    c->out.end -= len;
    w->kind = WAIT_WRITES;
    client_suspend(c);
}

int cmd_wait_resumed(client_t *c)
{
    cmd_wait_t *w = c->wait;
    if (!w)
        return 0;
    int done = w->kind == WAIT_DONE;
    if (done)
        buf_append(&c->out, buf_head(&w->reply), buf_len(&w->reply));
    wait_free(c);
    return done;
}

void cmd_wait_client_closed(client_t *c)
{
    wait_free(c);
}

/* Decides a WAIT_WRITES: refused, committed, or still waiting (0). */
static int decide(node_t *n, cmd_wait_t *w)
{
    int d = writes_decide(w->seqs, w->nseqs, n->committed_self, n->aborts, n->naborts);
    if (d)
        w->kind = d < 0 ? WAIT_RETRY : WAIT_DONE;
    return d != 0;
}

size_t cmd_wait_acked(client_t *c)
{
    node_t *n = cmd_node(c);
    size_t acked = 0, members = cluster_member_count(n->cluster);
    for (size_t i = 0; i < members; i++) {
        member_info_t mi;
        cluster_member_info(n->cluster, i, &mi);
        int in_contact = strcmp(mi.state, "alive") == 0 || strcmp(mi.state, "suspect") == 0;
        if (in_contact && mi.last_acked >= c->write_seq)
            acked++;
    }
    return acked;
}

void cmd_wait_replicas(client_t *c, long long want, long long timeout_ms)
{
    cmd_wait_t *w = wait_of(c);
    w->kind = WAIT_REPLICAS;
    w->want = want;
    int64_t now = clock_mono_ms() + 1; /* the clock counts whole ms: at least timeout_ms */
    w->deadline = timeout_ms == 0 ? 0 : timeout_ms > INT64_MAX - now ? INT64_MAX : now + timeout_ms;
    client_suspend(c);
}

/* Decides a WAIT_REPLICAS: 1 (its reply, the count, set aside) once enough
 * members acknowledged or its time is up; else 0. */
static int decide_replicas(cmd_wait_t *w, int64_t now)
{
    size_t acked = cmd_wait_acked(w->c);
    if ((long long)acked < w->want && (!w->deadline || now < w->deadline))
        return 0;
    resp_add_int(&w->reply, (long long)acked);
    w->kind = WAIT_DONE;
    return 1;
}

void cmd_wait_sweep(client_t *c, uint64_t id, int dbsize)
{
    cmd_wait_t *w = wait_of(c);
    w->kind = WAIT_SWEEP;
    w->sweep = id;
    w->dbsize = dbsize;
    if (!dbsize) /* its count outlives the ring of results however long it waits */
        cache_flush_hold(cmd_node(c)->cache, id);
    client_suspend(c);
}

/* Decides a WAIT_SWEEP: 1 (its reply, the count, set aside) once the
 * cache's sweep of its flush is over; else 0. */
static int decide_sweep(node_t *n, cmd_wait_t *w)
{
    size_t removed;
    if (!cache_flush_result(n->cache, w->sweep, &removed))
        return 0;
    if (w->dbsize) { /* the count before the flushes still pending (see cmd_dbsize) */
        unsigned char db = (unsigned char)w->c->db;
        removed = cache_count_first_byte(n->cache, db, NULL) +
                  cache_flush_unlinked_first_byte(n->cache, db);
    } else {
        cache_flush_release(n->cache, w->sweep);
    }
    resp_add_int(&w->reply, (long long)removed);
    w->kind = WAIT_DONE;
    return 1;
}

/* 1 when a WAIT or a FLUSHPREFIX is among the suspended commands: they are
 * looked at every turn. */
static int waiting_polled(const node_t *n)
{
    for (const cmd_wait_t *w = n->waits; w; w = w->next)
        if (w->kind == WAIT_REPLICAS || w->kind == WAIT_SWEEP)
            return 1;
    return 0;
}

void cmd_wait_recheck(node_t *n)
{
    if (!n->waits_dirty && !n->naborts && !waiting_polled(n))
        return;
    size_t count = 0, cap = 0;
    client_t **ready = NULL;
    int64_t now = clock_mono_ms();
    for (cmd_wait_t *w = n->waits; w; w = w->next) {
        int go = w->kind == WAIT_KEYS       ? n->waits_dirty
                 : w->kind == WAIT_REPLICAS ? decide_replicas(w, now)
                 : w->kind == WAIT_SWEEP    ? decide_sweep(n, w)
                                            : w->kind == WAIT_WRITES && decide(n, w);
        if (!go)
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            ready = xrealloc(ready, cap * sizeof(*ready));
        }
        ready[count++] = w->c;
    }
    n->waits_dirty = 0;
    n->naborts = 0;
    /* Resuming runs commands, which may suspend again (and add to the list). */
    for (size_t i = 0; i < count; i++)
        server_resume_client(ready[i]);
    free(ready);
}
