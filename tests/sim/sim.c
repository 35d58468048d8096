/* sim: the deterministic simulator of a cohort cluster; see sim.h.
 *
 * A run: N nodes (3 to 5) with short timings, a workload of fills and every
 * flush kind (DEL, FLUSHPREFIX, FLUSHALL, SEED) through random nodes, and
 * faults drawn from the run's seed: a process killed and restarted, stopped
 * (SIGSTOP) and resumed, stopped cleanly (goodbye) and restarted, links cut
 * both ways or one way and healed, connections reset, latency changed. At
 * the end every fault heals and the cluster runs quietly.
 *
 * Checked after every event (the invariants, as code):
 *   I1 no stale read: a node that serves cached values holds no value of a
 *      key whose write had completed before a flush of that key was issued,
 *      once that flush has replied. A fill completes when it is made; a SEED
 *      when it replies (a SEED still in flight, or concurrent with the
 *      flush, may be ordered either way). SEED counts as a flush of the
 *      values completed before it was issued.
 * With --writes, also (the write protocol's own code: node/writes.c,
 * node/inflight.c, cluster/coherence.c): clients (3 per node, one command
 * at a time) send INCR of the replicated key w:ctr and SET w:lock:R NX
 * (R: a round of 400 ms) through random nodes, run as the command layer
 * runs them (TRYAGAIN when not serving, a wait while the key has a write in
 * flight, a proposal, a wait for its commit or a run again after a
 * refusal); the keys under w: replicate (catch-up snapshots included); and
 * FLUSHALL is not drawn (it would reset the counter). Checked every step:
 *   W1 no lost increment: no two INCR replies give the same value;
 *   W2 at most one SET NX wins each round;
 *   W3 no stale read: a serving node whose key has no write in flight (a
 *      read would not wait) holds the highest replied INCR value, and the
 *      winning token of every round that has one.
 * Checked at the end of a run:
 *   I3 views converge: every node sees every other alive, and serves.
 *   W4 (--writes) nothing of w: in flight, every node holds the same counter,
 *      locks and register, and the counter is at least the INCRs replied and
 *      at most those plus the ones whose client got no reply (its node died).
 * A violation prints the seed, the time, what was wrong and the recent
 * history of the key, and the run exits 1. The same seed reproduces it.
 *
 * Usage: sim [--seeds N] [--first S] [--seconds T] [--nodes K] [--faults LIST]
 *            [--dead-after DURATION] [--store] [--writes [--blind]] [--verbose]
 *   --faults names the fault kinds to draw from: crash,pause,stop,cut,oneway,
 *   reset,delay,store (default: all of them; store needs --store).
 *   --dead-after sets [cluster] dead_after (default 3s). Without a shared
 *   store, "unreachable for dead_after" is a guess: a member stopped or cut
 *   off for longer is declared dead while it lives, and I1 breaks; a long
 *   value keeps runs clear of that known weakness.
 *   --writes adds the read-modify-writes above (runs without it draw
 *   exactly the same events as before).
 *   --store gives every node the fake shared store (sim_store.c) as the
 *   arbiter of membership, as a cohortd with [store] url: a member is dead
 *   only when its row expired, it left or its session lock is free, and a
 *   node serves only while its row is renewed. The store's faults (outages
 *   of one node's session or of the whole store, slow answers) join the
 *   others. Runs without --store draw exactly the same events as before. */
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "config.h"
#include "flushmark.h"
#include "hlc.h"
#include "log.h"
#include "mem.h"
#include "sim.h"
#include "versioned.h"
#include "writes.h"

/* ---- the world ---------------------------------------------------------------- */

#define NKEYS 6
static const char *const keys[NKEYS] = {"a:1", "a:2", "a:3", "b:1", "b:2", "c:1"};
static const char *const prefixes[] = {"a:", "b:", "c:", "a:1"};
#define NPREFIXES (sizeof(prefixes) / sizeof(prefixes[0]))
#define MAX_VALUES 200000
#define MAX_PENDING 4096
/* node.c's record of flushes since the cache was last empty (exact:
 * node/writes.h P5) */
#define RECENT_KEYS (1 << 16)
#define RECENT_PREFIXES 1024

/* A node: the real cache, floor record and clock of a cohortd, with the
 * cluster code, as node/node.c and cmd/cmd_util.c wire them. */
typedef struct node {
    config_t cfg;
    cluster_t *cl; /* NULL while its process is not running */
    int paused;
    cache_t *cache;
    flushmark_t *floor;
    hlc_t hlc;
    /* the write protocol's state (node/writes.h), as node_t's */
    flushmark_t *recent;
    inflight_t *inflight;
    uint64_t committed_self;
    int holds; /* --writes: holds the replicated keys (wop_holders) */
    int lapsed; /* --store: its row lapsed since it last caught up: what it
                 * holds is no copy (wop_holders); 2: a catch-up began
                 * since, while the row was still lapsed */
    uint64_t aborts[64]; /* own proposals refused since the last recheck */
    size_t naborts;
    int waits_dirty;
} node_t;

typedef struct pending {
    int node;
    uint64_t incarnation; /* of the node when issued */
    uint64_t seq;
    int64_t since;
    int64_t issued;
    int kind; /* FLUSH_KEY, FLUSH_PREFIX, FLUSH_ALL, FLUSH_SEED */
    int key;  /* key or prefix index */
    int64_t value; /* SEED's value id */
} pending_t;

typedef struct event {
    int64_t when;
    uint64_t order;
    sim_fn fn; /* NULL: wake node id */
    void *arg;
    int64_t id;
} event_t;

static struct {
    uint64_t seed, rng;
    int64_t now;
    int nnodes;
    node_t nodes[SIM_MAX_NODES];
    int cut[SIM_MAX_NODES][SIM_MAX_NODES];
    int latency_min, latency_max;
    uint64_t incarnations;
    event_t *heap;
    size_t nheap, capheap;
    uint64_t order;
    int64_t value_time[MAX_VALUES]; /* value id -> time its write completed (fill: made;
                                       SEED: replied; INT64_MAX until then) */
    int64_t nvalues;
    int64_t floor[NKEYS];      /* values written before this were flushed, replied */
    pending_t pending[MAX_PENDING];
    size_t npending;
    unsigned faults; /* bit per fault kind allowed */
    int verbose;
    int quiet; /* final phase: no more faults */
    char dead_after[32]; /* [cluster] dead_after of every node */
    char faults_text[128]; /* --faults as given */
    int store;             /* --store */
    int flushlog;          /* --flushlog */
    int no_bypass;         /* --no-bypass */
    int64_t started_at;    /* W.now at the run's start */
    int writes;            /* --writes */
    int blind;             /* --blind */
    int seconds;
    uint64_t stats_ops, stats_replies, stats_faults;
} W;

enum { F_CRASH = 1, F_PAUSE = 2, F_STOP = 4, F_CUT = 8, F_ONEWAY = 16, F_RESET = 32, F_DELAY = 64,
       F_STORE = 128 };
static const struct {
    const char *name;
    unsigned bit;
} fault_names[] = {{"crash", F_CRASH}, {"pause", F_PAUSE}, {"stop", F_STOP}, {"cut", F_CUT},
                   {"oneway", F_ONEWAY}, {"reset", F_RESET}, {"delay", F_DELAY},
                   {"store", F_STORE}};

int64_t sim_now(void)
{
    return W.now;
}

uint64_t sim_rand(void)
{
    uint64_t x = W.rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    W.rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static int rnd(int n)
{
    return n > 0 ? (int)(sim_rand() % (uint64_t)n) : 0;
}

int sim_latency(void)
{
    return W.latency_min + rnd(W.latency_max - W.latency_min + 1);
}

int sim_node_of(const cluster_t *cl)
{
    for (int i = 0; i < W.nnodes; i++)
        if (W.nodes[i].cl == cl)
            return i;
    return -1;
}

int sim_node_by_id(const char *id)
{
    for (int i = 0; i < W.nnodes; i++) {
        char me[80];
        snprintf(me, sizeof(me), "127.0.0.1:%d", W.nodes[i].cfg.cluster_port);
        if (strcmp(me, id) == 0)
            return i;
    }
    return -1;
}

cluster_t *sim_cluster(int i)
{
    return i >= 0 && i < W.nnodes ? W.nodes[i].cl : NULL;
}

int sim_paused(int i)
{
    return i >= 0 && i < W.nnodes && W.nodes[i].paused;
}

int sim_cut(int a, int b)
{
    return a >= 0 && b >= 0 && W.cut[a][b];
}

/* ---- events ------------------------------------------------------------------- */

static int before(const event_t *a, const event_t *b)
{
    return a->when < b->when || (a->when == b->when && a->order < b->order);
}

void sim_at(int64_t when, sim_fn fn, void *arg, int64_t id)
{
    if (W.nheap == W.capheap) {
        W.capheap = W.capheap ? 2 * W.capheap : 1024;
        W.heap = xrealloc(W.heap, W.capheap * sizeof(event_t));
    }
    size_t i = W.nheap++;
    W.heap[i] = (event_t){when < W.now ? W.now : when, W.order++, fn, arg, id};
    while (i > 0 && before(&W.heap[i], &W.heap[(i - 1) / 2])) {
        event_t t = W.heap[i];
        W.heap[i] = W.heap[(i - 1) / 2];
        W.heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static event_t pop_event(void)
{
    event_t top = W.heap[0];
    W.heap[0] = W.heap[--W.nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < W.nheap && before(&W.heap[l], &W.heap[m]))
            m = l;
        if (r < W.nheap && before(&W.heap[r], &W.heap[m]))
            m = r;
        if (m == i)
            break;
        event_t t = W.heap[i];
        W.heap[i] = W.heap[m];
        W.heap[m] = t;
        i = m;
    }
    return top;
}

/* ---- failing ------------------------------------------------------------------- */

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sim: seed %" PRIu64 ": FAILED at t=%" PRId64 " ms: ", W.seed, W.now);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    for (int i = 0; W.verbose && i < W.nnodes; i++) {
        cluster_t *cl = W.nodes[i].cl;
        if (!cl)
            continue;
        fprintf(stderr, "\nsim: n%d serving=%d views:", i, cluster_serving(cl));
        for (size_t m = 0; m < cl->nmembers; m++) {
            member_t *mb = &cl->members[m];
            fprintf(stderr, " %s=%s(link %d acked %" PRIu64 " pong %" PRId64 ")", mb->addr,
                    member_state_name(mb->state), mb->link != NULL, mb->acked,
                    mb->last_pong_sent);
        }
    }
    fprintf(stderr, "\nsim: reproduce with: sim --first %" PRIu64 " --seeds 1 --nodes %d"
            " --seconds %d --dead-after %s --faults %s%s%s%s%s --verbose\n", W.seed, W.nnodes,
            W.seconds, W.dead_after, W.faults_text, W.store ? " --store" : "",
            W.flushlog ? " --flushlog" : "", W.no_bypass ? " --no-bypass" : "",
            W.writes ? (W.blind ? " --writes --blind" : " --writes") : "");
    exit(1);
}

static void trace(const char *fmt, ...)
{
    if (!W.verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%7" PRId64 "] ", W.now);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Names the node whose code runs next in log lines, with the simulated time. */
static void log_as(int i);
void sim_log_as(int i)
{
    log_as(i);
}

static void log_as(int i)
{
    if (!W.verbose)
        return;
    char name[48];
    snprintf(name, sizeof(name), "t=%" PRId64 " n%d", W.now, i);
    log_set_name(name);
}

/* ---- each node's cache (the cluster's host) ------------------------------------- */

/* The write protocol's view of node n (node/writes.h), as node.c makes it. */
static writes_t writes_of(node_t *n)
{
    return (writes_t){n->cache, n->floor, n->recent, n->inflight, &n->hlc,
                      n->cl,    W.now,    W.now,     &n->waits_dirty};
}

/* As node.c's host_apply: the write protocol's code decides. */
static int host_apply(void *ud, int kind, const char *k, size_t klen, const char *val,
                      size_t vlen, int64_t expire_at, int enc, uint64_t version, int origin,
                      uint64_t seq)
{
    node_t *n = ud;
    writes_t w = writes_of(n);
    int rc = writes_apply(&w, kind, k, klen, val, vlen, expire_at, enc, version, origin, seq);
    if (klen > 2 && k[0] == 'w' && k[1] == ':')
        trace("n%d applies %s %.*s = %.*s @%" PRIu64 " from m%d flush %" PRIu64 ": %s",
              (int)(n - W.nodes), kind == FLUSH_PROPOSE ? "PROPOSE" : "kind", (int)klen, k,
              (int)vlen, val, version, origin, seq, rc ? "taken" : "refused");
    return rc;
}

static size_t host_held(void *ud) /* as node.c */
{
    return cache_count(((node_t *)ud)->cache);
}

static size_t host_drop_all(void *ud)
{
    node_t *n = ud;
    writes_t w = writes_of(n);
    n->holds = 0; /* until it caught up again */
    n->lapsed = 0;
    return writes_drop_all(&w); /* as node.c */
}

static void host_committed(void *ud, int origin, uint64_t upto)
{
    node_t *n = ud;
    if (origin == CLUSTER_SELF)
        n->committed_self = upto;
    writes_t w = writes_of(n);
    writes_committed(&w, origin, upto);
}

static void host_aborted(void *ud, int origin, uint64_t seq)
{
    node_t *n = ud;
    writes_t w = writes_of(n);
    writes_aborted(&w, origin, seq);
    if (origin == CLUSTER_SELF) {
        if (n->naborts == sizeof(n->aborts) / sizeof(n->aborts[0]))
            fail("n%d: more refused proposals in one turn than the simulator keeps",
                 (int)(n - W.nodes));
        n->aborts[n->naborts++] = seq;
    }
}

static void host_each_undecided(void *ud, void (*fn)(void *fud, int origin, uint64_t seq),
                                void *fud)
{
    node_t *n = ud;
    writes_t w = writes_of(n);
    writes_each_undecided(&w, fn, fud); /* as node.c */
}

static void host_origin_gone(void *ud, int origin, int hold) /* as node.c */
{
    node_t *n = ud;
    writes_t w = writes_of(n);
    if (hold)
        writes_origin_hold(&w, origin);
    else
        writes_origin_gone(&w, origin);
}

static void host_replay_held(void *ud)
{
    node_t *n = ud;
    writes_t w = writes_of(n);
    writes_replay_held(&w);
}

/* The replicated keyspace of --writes: keys under "w:" (the others are
 * local fills and flushes, as without --writes). */
static int replicated(void *kud, const char *key, size_t klen)
{
    (void)kud;
    return klen >= 2 && key[0] == 'w' && key[1] == ':';
}

static uint64_t host_snapshot(void *ud, uint64_t cursor, size_t budget,
                              const cluster_snap_out_t *out)
{
    writes_t w = writes_of(ud);
    return writes_snapshot(&w, cursor, budget, replicated, NULL, out);
}

static int host_snapshot_key(void *ud, const char *key, size_t klen,
                             const cluster_snap_out_t *out)
{
    writes_t w = writes_of(ud);
    return writes_snapshot_key(&w, key, klen, out);
}

static void host_apply_snapshot(void *ud, const char *k, size_t klen, const char *val,
                                size_t vlen, int64_t expire_at, int enc, uint64_t version)
{
    writes_t w = writes_of(ud);
    writes_apply_snapshot(&w, k, klen, val, vlen, expire_at, enc, version);
    trace("n%d snapshot entry %.*s = %.*s @%" PRIu64, (int)((node_t *)ud - W.nodes), (int)klen, k,
          (int)vlen, val, version);
}

static void host_observe(void *ud, uint64_t version)
{
    node_t *n = ud;
    hlc_observe(&n->hlc, version);
}

static void host_skipped_upto(void *ud, uint64_t version)
{
    node_t *n = ud;
    flushmark_all_at(n->floor, version);
}

/* The value id node n holds for key k, 0 when none. */
static int64_t held(node_t *n, int k)
{
    cache_entry_t *e = cache_lookup(n->cache, keys[k], strlen(keys[k]), W.now, CACHE_NOTOUCH);
    if (!e)
        return 0;
    size_t len;
    const char *v = cache_entry_value(e, &len);
    char buf[32];
    if (len == 0 || len >= sizeof(buf))
        fail("n%d holds a value for %s that no client wrote", (int)(n - W.nodes), keys[k]);
    memcpy(buf, v, len);
    buf[len] = '\0';
    return strtoll(buf, NULL, 10);
}

static void check_replies(int only_node);

static void host_progress(void *ud)
{
    check_replies((int)((node_t *)ud - W.nodes));
}

/* ---- the workload -------------------------------------------------------------- */

static int64_t new_value(int completed)
{
    if (W.nvalues + 1 >= MAX_VALUES)
        fail("too many values for one run");
    W.nvalues++;
    W.value_time[W.nvalues] = completed ? W.now : INT64_MAX;
    return W.nvalues;
}

static void add_pending(int i, int kind, int key, uint64_t seq, int64_t value)
{
    node_t *n = &W.nodes[i];
    if (seq == 0 || W.npending == MAX_PENDING)
        return; /* alone, or too many in flight: not checked */
    W.pending[W.npending++] = (pending_t){i, n->cl->incarnation, seq, cluster_mono(n->cl),
                                          W.now, kind, key, value};
}

/* One client command on node i, as the command layer runs it. */
static void client_op(int i)
{
    node_t *n = &W.nodes[i];
    int k = rnd(NKEYS);
    int what = rnd(100);
    const char *key = keys[k];
    size_t klen = strlen(key);
    W.stats_ops++;
    if (what < 45) { /* a fill: this node only */
        char buf[32];
        int64_t v = new_value(1);
        int len = snprintf(buf, sizeof(buf), "%" PRId64, v);
        cache_set(n->cache, key, klen, buf, (size_t)len, 0);
        trace("n%d fill %s = %" PRId64, i, key, v);
        return;
    }
    uint64_t version = hlc_next(&n->hlc, W.now);
    writes_t w = writes_of(n);
    if (what < 75) {
        cache_delete(n->cache, key, klen, W.now);
        writes_flushed(&w, VOP_KEY, key, klen, version);
        add_pending(i, FLUSH_KEY, k, cluster_flush_key(n->cl, key, klen, version), 0);
        trace("n%d DEL %s", i, key);
    } else if (what < 85 || (what < 88 && W.writes)) {
        /* (with --writes, no FLUSHALL: it would reset the counter) */
        int p = rnd(NPREFIXES);
        const char *pre = prefixes[p];
        size_t removed; /* lazy past one key: see sim_node_start */
        cache_flush_prefix_start(n->cache, pre, strlen(pre), W.now, UINT64_MAX, &removed);
        writes_flushed(&w, VOP_PREFIX, pre, strlen(pre), version);
        add_pending(i, FLUSH_PREFIX, p, cluster_flush_prefix(n->cl, pre, strlen(pre), version), 0);
        trace("n%d FLUSHPREFIX %s", i, pre);
    } else if (what < 88) {
        cache_flush_all(n->cache);
        writes_flushed(&w, VOP_ALL, "", 0, version);
        add_pending(i, FLUSH_ALL, 0, cluster_flush_all(n->cl, version), 0);
        trace("n%d FLUSHALL", i);
    } else {
        int64_t v = new_value(0);
        char buf[32];
        int len = snprintf(buf, sizeof(buf), "%" PRId64, v);
        cache_entry_t *e = cache_set(n->cache, key, klen, buf, (size_t)len, 0);
        add_pending(i, FLUSH_SEED, k, writes_seed(&w, e, key, klen, version), v);
        trace("n%d SEED %s = %" PRId64, i, key, v);
    }
}

static int has_prefix(int key, const char *p, size_t plen)
{
    return strlen(keys[key]) >= plen && memcmp(keys[key], p, plen) == 0;
}

/* A reply went out: what it promises from now on. */
static void on_reply(const pending_t *p)
{
    W.stats_replies++;
    if (p->kind == FLUSH_SEED)
        W.value_time[p->value] = W.now;
    for (int k = 0; k < NKEYS; k++) {
        int hit = p->kind == FLUSH_ALL || (p->kind == FLUSH_PREFIX &&
                                           has_prefix(k, prefixes[p->key], strlen(prefixes[p->key]))) ||
                  ((p->kind == FLUSH_KEY || p->kind == FLUSH_SEED) && p->key == k);
        if (hit && p->issued > W.floor[k])
            W.floor[k] = p->issued;
    }
    trace("n%d reply: %s issued at %" PRId64, p->node,
          p->kind == FLUSH_SEED ? "SEED" : p->kind == FLUSH_ALL ? "FLUSHALL" :
          p->kind == FLUSH_PREFIX ? "FLUSHPREFIX" : "DEL", p->issued);
}

static void check_replies(int only_node)
{
    size_t j = 0;
    for (size_t i = 0; i < W.npending; i++) {
        pending_t *p = &W.pending[i];
        node_t *n = &W.nodes[p->node];
        int gone = !n->cl || n->cl->incarnation != p->incarnation;
        if (!gone && (only_node < 0 || only_node == p->node) && !n->paused &&
            cluster_reply_ready(n->cl, p->seq, p->since)) {
            on_reply(p);
            continue;
        }
        if (!gone) /* a client of a process that died never got a reply */
            W.pending[j++] = *p;
    }
    W.npending = j;
}

/* ---- read-modify-writes (--writes) -------------------------------------------
 * INCR of one shared counter and SET NX of a lock per round, through random
 * nodes, run as cmd/cmd_counters.c and cmd/cmd_strings.c run them on a
 * replicated key, with cmd/cmd_wait.c's waits: a node that does not serve
 * replies TRYAGAIN (commands.c); a key with a write in flight suspends the
 * command until it leaves; otherwise it reads, computes, stores and
 * proposes (writes_propose) and waits for the commit (its reply goes) or a
 * refusal (it runs again from the start). */

#define CTR "w:ctr"
#define MAX_OPS 4096
#define MAX_ROUNDS 128
#define MAX_COUNT 100000
#define ROUND_MS 400
#define RUN_START 1000000 /* W.now at the start of a run */

static void node_turn(int i);

enum { OP_INCR, OP_SETNX, OP_SET, OP_EXPIRE };
enum { OPW_KEYS, OPW_WRITES, OPW_REPLY };
#define REG "w:reg" /* --blind: a register of plain SETs */

#define CLIENTS 3 /* per node, each waiting for its reply before its next command */

typedef struct wop {
    int node;
    int client;
    uint64_t incarnation;
    int kind;
    int round;      /* SET NX: the lock key's round */
    int64_t token;  /* SET NX: the value it sets */
    int wait;       /* OPW_KEYS or OPW_WRITES */
    uint64_t seq;   /* OPW_WRITES: the proposal's flush number */
    long long value; /* INCR: the value it proposed */
    uint64_t version; /* SET: the version it was sent with */
    int64_t since;    /* OPW_REPLY: when it was sent (cluster_reply_ready) */
    int before_loss;  /* committed, its reply not out, when every copy was lost */
} wop_t;

static struct {
    wop_t ops[MAX_OPS];
    size_t nops;
    uint64_t ok;            /* INCRs that replied a value */
    uint64_t unknown;       /* INCRs whose client got no reply (the node died) */
    long long max_ok;       /* highest value an INCR replied */
    uint64_t before;        /* after every copy was lost: the most the counter held before */
    unsigned char replied[MAX_COUNT + 1]; /* values INCRs replied */
    int64_t winner[MAX_ROUNDS]; /* round -> token that won its SET NX (0: none yet) */
    int nrounds;
    int64_t next_token;
    int64_t stop; /* no new operation from then on */
    int busy[SIM_MAX_NODES][CLIENTS]; /* a command of this client is suspended */
    uint64_t reg_version; /* --blind: the newest version of a replied SET of REG */
    /* over every run */
    uint64_t total_incr, total_unknown, total_retries, total_tryagain, total_won, total_lost;
    uint64_t total_set, total_expire;
    uint64_t runs_exact;
    uint64_t total_all_down; /* times every copy of the replicated keys was lost */
} X;

static void lock_key(int round, char *out, size_t n)
{
    snprintf(out, n, "w:lock:%d", round);
}

/* The counter's value at node n (0: no entry); -1 when n holds something
 * else. */
static long long held_number(node_t *n, const char *key)
{
    cache_entry_t *e = cache_lookup(n->cache, key, strlen(key), W.now, CACHE_NOTOUCH);
    if (!e)
        return 0;
    size_t len;
    const char *v = cache_entry_value(e, &len);
    char buf[32];
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, v, len);
    buf[len] = '\0';
    return strtoll(buf, NULL, 10);
}

static void wop_reply_incr(wop_t *o)
{
    X.ok++;
    X.total_incr++;
    if (o->value < 1 || o->value > MAX_COUNT)
        fail("W1: an INCR through n%d replied %lld", o->node, o->value);
    if (X.replied[o->value])
        fail("W1 lost increment: two INCRs replied %lld (the second through n%d)", o->value,
             o->node);
    X.replied[o->value] = 1;
    if (o->value > X.max_ok)
        X.max_ok = o->value;
    trace("n%d INCR replied %lld", o->node, o->value);
}

static void wop_reply_setnx(wop_t *o)
{
    if (X.winner[o->round])
        fail("W2 two lock holders: SET w:lock:%d NX won through n%d (token %" PRId64
             ") after token %" PRId64 " had won", o->round, o->node, o->token,
             X.winner[o->round]);
    X.winner[o->round] = o->token;
    X.total_won++;
    trace("n%d SET w:lock:%d NX won (token %" PRId64 ")", o->node, o->round, o->token);
}

static void wop_reply_set(wop_t *o)
{
    X.total_set++;
    if (o->version > X.reg_version)
        X.reg_version = o->version;
    trace("n%d SET %s replied (token %" PRId64 " @%" PRIu64 ")", o->node, REG, o->token,
          o->version);
}

/* A command's reply went out (its proposal committed, or alone). */
static void wop_reply(wop_t *o)
{
    if (o->before_loss) { /* counted at the loss (wop_all_down) */
        trace("n%d replied a write committed before every copy was lost", o->node);
        return;
    }
    if (o->kind == OP_INCR)
        wop_reply_incr(o);
    else if (o->kind == OP_SETNX)
        wop_reply_setnx(o);
    else if (o->kind == OP_SET)
        wop_reply_set(o);
    else
        X.total_expire++;
}

/* Operation k is done (replied, or its process died). */
static void wop_remove(size_t k)
{
    X.busy[X.ops[k].node][X.ops[k].client] = 0;
    X.ops[k] = X.ops[--X.nops];
}

/* Runs (or runs again) operation o on its node: 1 when it replied, 0 when
 * it is suspended. */
static int wop_run(wop_t *o)
{
    node_t *n = &W.nodes[o->node];
    if (!cluster_serving(n->cl)) {
        X.total_tryagain++;
        trace("n%d %s: TRYAGAIN", o->node, o->kind == OP_INCR ? "INCR" : "SET NX");
        return 1;
    }
    char key[32];
    if (o->kind == OP_INCR || o->kind == OP_EXPIRE)
        snprintf(key, sizeof(key), "%s", CTR);
    else if (o->kind == OP_SET)
        snprintf(key, sizeof(key), "%s", REG);
    else
        lock_key(o->round, key, sizeof(key));
    size_t klen = strlen(key);
    if (inflight_version(n->inflight, key, klen)) {
        o->wait = OPW_KEYS;
        return 0;
    }
    writes_t w = writes_of(n);
    char buf[32];
    int len;
    if (o->kind == OP_SET) { /* as cmd_write_blind: a SEED, its reply held for the acks */
        len = snprintf(buf, sizeof(buf), "%" PRId64, o->token);
        cache_entry_t *e = cache_set(n->cache, key, klen, buf, (size_t)len, 0);
        o->seq = writes_seed(&w, e, key, klen, hlc_next(&n->hlc, W.now));
        o->version = cache_entry_version(e);
        o->since = cluster_mono(n->cl);
        trace("n%d SET %s %s @%" PRIu64 " (flush %" PRIu64 ")", o->node, key, buf, o->version,
              o->seq);
        if (o->seq == 0) {
            wop_reply(o);
            return 1;
        }
        o->wait = OPW_REPLY;
        return 0;
    }
    if (o->kind == OP_EXPIRE) { /* as cmd_set_ttl: a proposal of the new time */
        cache_entry_t *e = cache_lookup(n->cache, key, klen, W.now, CACHE_NOTOUCH);
        if (!e)
            return 1; /* 0: no such key */
        o->seq = writes_propose_ttl(&w, e, o->token % 2 ? 0 : W.now + 3600 * 1000);
        trace("n%d EXPIRE %s proposes (flush %" PRIu64 ")", o->node, key, o->seq);
        if (o->seq == 0) {
            wop_reply(o);
            return 1;
        }
        o->wait = OPW_WRITES;
        return 0;
    }
    if (o->kind == OP_INCR) {
        long long v = held_number(n, key);
        if (v < 0)
            fail("n%d holds a counter that is not a number", o->node);
        o->value = v + 1;
        len = snprintf(buf, sizeof(buf), "%lld", o->value);
    } else {
        if (cache_lookup(n->cache, key, klen, W.now, CACHE_NOTOUCH)) {
            X.total_lost++;
            trace("n%d SET %s NX: taken", o->node, key);
            return 1;
        }
        len = snprintf(buf, sizeof(buf), "%" PRId64, o->token);
    }
    writes_prior_t prior; /* as cmd_write_typed */
    writes_prior_take(&w, key, klen, &prior);
    cache_entry_t *e = cache_set(n->cache, key, klen, buf, (size_t)len, 0);
    o->seq = writes_propose(&w, e, key, klen, &prior);
    writes_prior_free(&prior);
    trace("n%d %s %s proposes %s (flush %" PRIu64 ")", o->node,
          o->kind == OP_INCR ? "INCR" : "SET NX", key, buf, o->seq);
    if (o->seq == 0) { /* alone: nothing to wait for */
        wop_reply(o);
        return 1;
    }
    o->wait = OPW_WRITES;
    return 0;
}

static void on_wclient(void *arg, int64_t id)
{
    (void)arg, (void)id;
    if (W.now >= X.stop)
        return;
    int i = rnd(W.nnodes);
    node_t *n = &W.nodes[i];
    log_as(i);
    int c = rnd(CLIENTS);
    if (n->cl && !n->paused && X.nops < MAX_OPS && !X.busy[i][c]) {
        wop_t *o = &X.ops[X.nops];
        int r = (int)((W.now - RUN_START) / ROUND_MS);
        int kind = rnd(10) < 7 || r >= MAX_ROUNDS ? OP_INCR : OP_SETNX;
        if (W.blind && kind == OP_INCR) { /* (draws of runs without --blind unchanged) */
            int x = rnd(10);
            kind = x < 2 ? OP_SET : x < 3 ? OP_EXPIRE : OP_INCR;
        }
        if (kind == OP_SETNX && r >= X.nrounds)
            X.nrounds = r + 1;
        *o = (wop_t){i, c, n->cl->incarnation, kind, r, ++X.next_token, OPW_KEYS, 0, 0, 0, 0, 0};
        W.stats_ops++;
        if (!wop_run(o)) {
            X.nops++;
            X.busy[i][c] = 1;
        }
        node_turn(i);
    }
    sim_at(W.now + 2 + rnd(10), on_wclient, NULL, 0);
}

/* cmd_wait_recheck for node i: suspended operations whose key's write left
 * run again; those whose proposal was decided reply or run again. */
static void wop_recheck(int i)
{
    node_t *n = &W.nodes[i];
    if (!n->waits_dirty && !n->naborts)
        return;
    int dirty = n->waits_dirty;
    uint64_t aborts[64];
    size_t naborts = n->naborts;
    memcpy(aborts, n->aborts, naborts * sizeof(uint64_t));
    n->waits_dirty = 0;
    n->naborts = 0;
    for (size_t k = 0; k < X.nops; k++) {
        wop_t *o = &X.ops[k];
        if (o->node != i || o->incarnation != n->cl->incarnation)
            continue;
        int again = o->wait == OPW_KEYS && dirty;
        if (o->wait == OPW_WRITES) {
            int d = writes_decide(&o->seq, 1, n->committed_self, aborts, naborts);
            if (d > 0) {
                wop_reply(o);
                wop_remove(k--);
                continue;
            }
            if (d < 0) {
                X.total_retries++;
                trace("n%d proposal %" PRIu64 " refused: runs again", i, o->seq);
                again = 1;
            }
        }
        if (again && wop_run(o))
            wop_remove(k--);
    }
}

/* Every step: plain SETs whose flush every member that may serve applied
 * reply (as cmd_util.c's held replies). */
static void wop_replies(void)
{
    for (size_t k = 0; k < X.nops; k++) {
        wop_t *o = &X.ops[k];
        node_t *n = &W.nodes[o->node];
        if (o->wait != OPW_REPLY || !n->cl || n->paused || o->incarnation != n->cl->incarnation)
            continue;
        if (cluster_reply_ready(n->cl, o->seq, o->since)) {
            wop_reply(o);
            wop_remove(k--);
        }
    }
}

/* Operations of a process that died: their clients got no reply. */
static void wop_forget_gone(void)
{
    for (size_t k = 0; k < X.nops; k++) {
        wop_t *o = &X.ops[k];
        node_t *n = &W.nodes[o->node];
        if (n->cl && n->cl->incarnation == o->incarnation)
            continue;
        if (o->kind == OP_INCR) {
            X.unknown++;
            X.total_unknown++;
        }
        wop_remove(k--);
    }
}

/* Every step: a serving node whose key has no write in flight (a read
 * would not wait) holds nothing older than a replied write. */
static void wop_check(void)
{
    for (int i = 0; i < W.nnodes; i++) {
        node_t *n = &W.nodes[i];
        if (!n->cl || n->paused || !cluster_serving(n->cl))
            continue;
        if (X.max_ok && !inflight_version(n->inflight, CTR, strlen(CTR))) {
            long long v = held_number(n, CTR);
            if (v < X.max_ok)
                fail("W3 stale read: n%d serves %s = %lld after an INCR replied %lld", i, CTR,
                     v, X.max_ok);
        }
        if (X.reg_version && !inflight_version(n->inflight, REG, strlen(REG))) {
            cache_entry_t *e = cache_lookup(n->cache, REG, strlen(REG), W.now, CACHE_NOTOUCH);
            uint64_t v = e ? cache_entry_version(e) : 0;
            if (v < X.reg_version)
                fail("W5 stale read: n%d serves %s @%" PRIu64 " after a SET @%" PRIu64
                     " replied (its floor %" PRIu64 ", since empty %" PRIu64 ")", i, REG, v,
                     X.reg_version, flushmark_floor(n->floor, REG, strlen(REG)),
                     flushmark_floor(n->recent, REG, strlen(REG)));
        }
        for (int r = 0; r < X.nrounds; r++) {
            char key[32];
            if (!X.winner[r])
                continue;
            lock_key(r, key, sizeof(key));
            if (inflight_version(n->inflight, key, strlen(key)))
                continue;
            long long v = held_number(n, key);
            if (v != X.winner[r])
                fail("W3 stale read: n%d serves %s = %lld after token %" PRId64 " won it", i,
                     key, v, X.winner[r]);
        }
    }
}

/* The end of a run (every fault healed, no operation for a while): every
 * node holds the same counter and locks, nothing in flight, and the counter
 * counts every replied INCR, and no more than those whose client got no
 * reply besides. */
static void wop_final(void)
{
    long long final = held_number(&W.nodes[0], CTR);
    cache_entry_t *reg0 = cache_lookup(W.nodes[0].cache, REG, strlen(REG), W.now, CACHE_NOTOUCH);
    uint64_t reg_final = reg0 ? cache_entry_version(reg0) : 0;
    for (int i = 0; i < W.nnodes; i++) {
        node_t *n = &W.nodes[i];
        cache_entry_t *reg = cache_lookup(n->cache, REG, strlen(REG), W.now, CACHE_NOTOUCH);
        if (inflight_version(n->inflight, REG, strlen(REG)) ||
            (reg ? cache_entry_version(reg) : 0) != reg_final || reg_final < X.reg_version)
            fail("W4 no convergence: n%d holds %s @%" PRIu64 ", n0 @%" PRIu64
                 ", last replied SET @%" PRIu64, i, REG, reg ? cache_entry_version(reg) : 0,
                 reg_final, X.reg_version);
        if (inflight_version(n->inflight, CTR, strlen(CTR)))
            fail("W4: n%d still has a write of %s in flight at the end", i, CTR);
        long long v = held_number(n, CTR);
        if (v != final)
            fail("W4 no convergence: n%d holds %s = %lld, n0 %lld", i, CTR, v, final);
        for (int r = 0; r < X.nrounds; r++) {
            char key[32];
            lock_key(r, key, sizeof(key));
            if (inflight_version(n->inflight, key, strlen(key)))
                fail("W4: n%d still has a write of %s in flight at the end", i, key);
            long long l = held_number(n, key), l0 = held_number(&W.nodes[0], key);
            if (l != l0 || (X.winner[r] && l != X.winner[r]))
                fail("W4 no convergence: n%d holds %s = %lld, n0 %lld, winner %" PRId64, i, key,
                     l, l0, X.winner[r]);
        }
    }
    uint64_t unknown = X.unknown + X.nops; /* still waiting: no reply either */
    if (final < X.max_ok || (uint64_t)final < X.ok ||
        (uint64_t)final > X.before + X.ok + unknown)
        fail("W1 lost increment: the counter ends at %lld with %" PRIu64
             " INCRs replied (highest %lld) and %" PRIu64 " without a reply (%" PRIu64
             " before every copy was lost)", final, X.ok, X.max_ok, unknown, X.before);
    if ((uint64_t)final == X.ok)
        X.runs_exact++;
}

/* ---- the invariants ------------------------------------------------------------ */

/* I4 (--no-bypass): while every node runs and the store answers, every
 * node serves: link faults alone cost no bypassed read, once the cluster
 * formed (the first second) and until the faults end. */
static void check_no_bypass(void)
{
    if (!W.no_bypass || W.quiet || W.now < W.started_at + 1000 || sim_store_down())
        return;
    for (int i = 0; i < W.nnodes; i++)
        if (!W.nodes[i].cl || W.nodes[i].paused)
            return;
    for (int i = 0; i < W.nnodes; i++)
        if (!cluster_serving(W.nodes[i].cl)) {
            cluster_t *cl = W.nodes[i].cl;
            for (size_t m = 0; m < cl->nmembers; m++) {
                member_t *mb = &cl->members[m];
                fprintf(stderr, "sim: n%d's view of %s: in_inc %d row_live %d log_from %" PRId64
                        " lease_until %" PRId64 " stalled %d applied %" PRIu64 "\n", i, mb->addr,
                        mb->in_inc != 0, mb->row_live, mb->log_from, mb->lease_until,
                        mb->log_stalled, mb->in_applied);
            }
            fail("I4 bypass: n%d does not serve (%s) while every node runs and the store is up",
                 i, cluster_why_not_serving(W.nodes[i].cl));
        }
}

static void check_invariants(void)
{
    check_no_bypass();
    for (int i = 0; i < W.nnodes; i++) {
        node_t *n = &W.nodes[i];
        if (n->cl && cluster_serving_cache_broken(n->cl)) /* coherence.c, S1 */
            fail("S1 n%d's cached serving bound is above its leases", i);
        if (!n->cl || n->paused || !cluster_serving(n->cl))
            continue;
        for (int k = 0; k < NKEYS; k++) {
            int64_t v = held(n, k);
            if (v && W.value_time[v] < W.floor[k])
                fail("I1 stale read: n%d serves %s = %" PRId64 " (completed at %" PRId64
                     ") after a flush issued at %" PRId64 " replied", i, keys[k], v,
                     W.value_time[v], W.floor[k]);
        }
    }
}

/* ---- nodes -------------------------------------------------------------------- */

static void node_config(int i, config_t *cfg)
{
    char err[256], v[64];
    config_defaults(cfg);
    snprintf(v, sizeof(v), "n%d", i);
    static const char *const settings[][3] = {
        {"cluster", "bind", "127.0.0.1"},    {"cluster", "key_file", "/sim/key"},
        {"cluster", "lease", "400ms"},        {"cluster", "heartbeat", "50ms"},
        {"cluster", "suspect_after", "200ms"}, {"cluster", "probe_timeout", "150ms"},
        {"cluster", "flush_timeout", "300ms"},
    };
    int rc = config_set(cfg, "node", "name", v, err, sizeof(err));
    snprintf(v, sizeof(v), "%d", 7000 + i);
    rc |= config_set(cfg, "cluster", "port", v, err, sizeof(err));
    rc |= config_set(cfg, "cluster", "dead_after", W.dead_after, err, sizeof(err));
    for (size_t s = 0; s < sizeof(settings) / sizeof(settings[0]); s++)
        rc |= config_set(cfg, settings[s][0], settings[s][1], settings[s][2], err, sizeof(err));
    /* A small replay log exercises RESET; --no-bypass keeps a large one, as
     * the daemon does, so that a member's gap is a real loss, not the sim's. */
    rc |= config_set(cfg, "cluster", "replay_log", W.no_bypass ? "100000" : "64", err,
                     sizeof(err));
    for (int j = 0; j < W.nnodes; j++) {
        snprintf(v, sizeof(v), "127.0.0.1:%d", 7000 + j);
        rc |= config_set(cfg, "cluster", "peer", v, err, sizeof(err));
    }
    if (rc)
        fail("config: %s", err);
}

static int64_t node_clock(void *ud)
{
    (void)ud;
    return W.now;
}

static void node_start(int i)
{
    node_t *n = &W.nodes[i];
    char err[256];
    cluster_host_t host = {n,           host_apply,  host_drop_all, host_skipped_upto,
                           host_progress, host_observe, hlc_at(W.now), NULL, NULL,
                           NULL /* pub/sub: not simulated */, NULL, NULL, NULL, NULL, NULL, NULL, host_held};
    if (W.writes) { /* the write protocol's commits, refusals, replays and catch-up */
        host.snapshot = host_snapshot;
        host.snapshot_key = host_snapshot_key;
        host.apply_snapshot = host_apply_snapshot;
        host.committed = host_committed;
        host.aborted = host_aborted;
        host.origin_gone = host_origin_gone;
        host.replay_held = host_replay_held;
        host.each_undecided = host_each_undecided;
    }
    n->cl = cluster_create(NULL, &n->cfg, &host, ++W.incarnations, sim_rand(), err, sizeof(err));
    if (!n->cl)
        fail("cluster_create: %s", err);
    n->cl->clock = node_clock;
    n->paused = 0;
    n->cache = cache_new(sim_rand(), 0);
    /* A member's prefix flush of more than one key goes lazy (cache.c): the
     * invariants see covered entries through every lookup. Never swept by
     * time here (cache_sweep's budget is wall-clock): a 65th pending flush
     * finishes the oldest. */
    cache_set_flush_sync_max(n->cache, 1);
    n->floor = flushmark_new(1024, 64, 0);
    flushmark_all_at(n->floor, hlc_at(W.now)); /* as node_init */
    n->recent = flushmark_new_exact(RECENT_KEYS, RECENT_PREFIXES);
    n->inflight = inflight_new();
    n->committed_self = 0;
    n->holds = 0;
    n->lapsed = 0;
    n->naborts = 0;
    n->waits_dirty = 0;
    n->hlc = (hlc_t){0, cluster_version_tag(n->cl)};
    trace("n%d starts (incarnation %" PRIu64 ")", i, n->cl->incarnation);
    sim_store_started(i);
}

/* The process is gone, and its memory with it. */
static void node_drop(node_t *n)
{
    cache_free(n->cache);
    flushmark_free(n->floor);
    flushmark_free(n->recent);
    inflight_free(n->inflight);
    n->cache = NULL;
    n->floor = NULL;
    n->recent = NULL;
    n->inflight = NULL;
}

static void node_crash(int i)
{
    node_t *n = &W.nodes[i];
    trace("n%d killed", i);
    sim_peer_crash(i);
    cluster_free(n->cl);
    n->cl = NULL;
    n->paused = 0;
    node_drop(n);
    sim_store_crashed(i);
}

static void node_stop_cleanly(int i)
{
    node_t *n = &W.nodes[i];
    trace("n%d stops cleanly", i);
    cluster_stop(n->cl); /* goodbye on every link, the links close, the cluster is freed */
    n->cl = NULL;
    sim_peer_crash(i); /* what was left of its sockets */
    node_drop(n);
    sim_store_stopped(i); /* its row marked left */
}

/* Runs what node i's loop would run now: deliveries, then the end of the turn. */
static void node_turn(int i)
{
    node_t *n = &W.nodes[i];
    if (!n->cl || n->paused)
        return;
    sim_peer_deliver(i);
    if (n->cl)
        cluster_end_of_turn(n->cl);
    if (n->cl && W.writes) { /* as main.c's end-of-turn hooks */
        wop_recheck(i);
        cluster_end_of_turn(n->cl);
    }
    if (n->cl)
        sim_store_turn(i);
}

static void on_tick(void *arg, int64_t id)
{
    (void)arg;
    int i = (int)id;
    log_as(i);
    node_t *n = &W.nodes[i];
    if (n->cl && !n->paused) {
        cluster_tick(n->cl);
        if (W.writes) { /* main.c's cron: no wait outlives what a write may take */
            writes_t w = writes_of(n);
            writes_sweep(&w, W.now - (n->cl->cfg->flush_timeout_ms + 2 * n->cl->cfg->lease_ms));
        }
        node_turn(i);
    }
    sim_at(W.now + 10, on_tick, NULL, id);
}

static void on_client(void *arg, int64_t id)
{
    (void)arg, (void)id;
    int i = rnd(W.nnodes);
    log_as(i);
    if (W.nodes[i].cl && !W.nodes[i].paused) {
        client_op(i);
        node_turn(i);
    }
    sim_at(W.now + 1 + rnd(8), on_client, NULL, 0);
}

/* ---- faults ---------------------------------------------------------------------- */

/* No running node holds the replicated keys (--writes: every process that
 * held them died or dropped its cache before another caught up with it):
 * they lived in memory only, and every copy is gone; what was replied
 * before promises nothing from now on (the counter starts again at 1, or
 * goes on from a value a copy the model no longer counts kept; a round's
 * lock may be won again). */
static void wop_all_down(void)
{
    wop_forget_gone();
    /* A write its node committed before the loss may reply after it (the
     * node paused between the two, seed 2242 of 20 s --store
     * crash,stop,pause,cut --writes): it belongs to what was lost, and its
     * value may repeat one replied after. */
    for (size_t k = 0; k < X.nops; k++) {
        wop_t *o = &X.ops[k];
        node_t *n = &W.nodes[o->node];
        if (o->wait != OPW_WRITES || o->before_loss ||
            writes_decide(&o->seq, 1, n->committed_self, n->aborts, n->naborts) <= 0)
            continue;
        o->before_loss = 1;
        if (o->kind == OP_INCR)
            X.before++, X.total_incr++;
    }
    /* The counter goes on from 0 or from any value a copy may still hold
     * (a process the model no longer counts, its row lapsed, may keep it). */
    X.before += X.ok + X.unknown;
    X.ok = X.unknown = 0;
    X.max_ok = 0;
    memset(X.replied, 0, sizeof(X.replied));
    memset(X.winner, 0, sizeof(X.winner));
    X.reg_version = 0;
    X.total_all_down++;
    trace("no running node held the replicated keys: they are gone");
}

/* Every step (--writes): which running nodes hold the replicated keys. A
 * node that starts or drops its cache holds them once it caught up (its
 * catch-up done); if it got there with no holder running (it served as
 * is: every member dead or empty too), every copy was lost. With --store,
 * a node whose row lapsed (expired while it was paused or cut off from the
 * store) may be declared dead by any member, which then goes on without it:
 * what it holds stops counting as a copy, as a crashed node's, until it
 * caught up again (renewing its row is not enough: a member that read the
 * row expired went on without it; seed 759 of 20 s --store
 * crash,stop,pause,cut --writes); a catch-up that began while the row was
 * still lapsed counts too, once the row is renewed (seed 12 of the same:
 * every member dropped its cache, the lapsed node found nobody to catch up
 * with and served as is, and nothing else told the model every copy was
 * gone). */
static void wop_holders(void)
{
    for (int i = 0; i < W.nnodes; i++) {
        node_t *n = &W.nodes[i];
        if (!n->cl)
            continue;
        int catching_up = cluster_catching_up(n->cl);
        if (sim_store_row_lapsed(i)) {
            n->holds = 0;
            n->lapsed = catching_up || n->lapsed == 2 ? 2 : 1;
        } else if (n->lapsed && (catching_up || n->lapsed == 2)) {
            n->lapsed = 0; /* a catch-up since: a copy again once it is done */
        }
    }
    int any = 0;
    for (int i = 0; i < W.nnodes; i++)
        any |= W.nodes[i].cl && W.nodes[i].holds;
    for (int i = 0; i < W.nnodes; i++) {
        node_t *n = &W.nodes[i];
        if (!n->cl || n->holds || n->lapsed || cluster_catching_up(n->cl))
            continue;
        if (!any)
            wop_all_down();
        any = n->holds = 1;
    }
}

static void on_restart(void *arg, int64_t id)
{
    (void)arg;
    if (!W.nodes[id].cl)
        node_start((int)id);
}

static void on_resume(void *arg, int64_t id)
{
    (void)arg;
    node_t *n = &W.nodes[id];
    if (n->cl && n->paused) {
        n->paused = 0;
        trace("n%d resumed", (int)id);
        node_turn((int)id);
    }
}

static void on_heal(void *arg, int64_t id)
{
    (void)arg;
    int a = (int)(id / SIM_MAX_NODES), b = (int)(id % SIM_MAX_NODES);
    if (!W.cut[a][b])
        return;
    W.cut[a][b] = 0;
    trace("link n%d -> n%d healed", a, b);
    sim_peer_heal(a, b);
}

static void cut(int a, int b, int ms)
{
    W.cut[a][b] = 1;
    sim_at(W.now + ms, on_heal, NULL, a * SIM_MAX_NODES + b);
}

static void reset_links(int a, int b)
{
    cluster_t *cl = W.nodes[a].cl;
    if (!cl)
        return;
    for (size_t m = 0; m < cl->nmembers; m++) {
        member_t *mb = &cl->members[m];
        if (mb->link && sim_node_by_id(mb->id) == b) {
            trace("link n%d - n%d reset", a, b);
            peer_close(mb->link, "reset");
        }
    }
}

static void on_fault(void *arg, int64_t id)
{
    (void)arg, (void)id;
    if (!W.quiet && W.store && (W.faults & F_STORE) && rnd(8) == 0) {
        W.stats_faults += (uint64_t)sim_store_fault();
        trace("store fault");
    } else if (!W.quiet) {
        int kind = rnd(7), i = rnd(W.nnodes), j = rnd(W.nnodes);
        unsigned bit = fault_names[kind].bit;
        node_t *n = &W.nodes[i];
        if (!(W.faults & bit)) {
            /* not drawn in this run */
        } else if (bit == F_CRASH && n->cl) {
            node_crash(i);
            sim_at(W.now + 100 + rnd(2000), on_restart, NULL, i);
            W.stats_faults++;
        } else if (bit == F_STOP && n->cl && !n->paused) {
            node_stop_cleanly(i);
            sim_at(W.now + 100 + rnd(2000), on_restart, NULL, i);
            W.stats_faults++;
        } else if (bit == F_PAUSE && n->cl && !n->paused) {
            n->paused = 1;
            trace("n%d paused", i);
            sim_at(W.now + 50 + rnd(2000), on_resume, NULL, i);
            W.stats_faults++;
        } else if ((bit == F_CUT || bit == F_ONEWAY) && i != j && !W.cut[i][j]) {
            int ms = 50 + rnd(3000);
            trace("link n%d -> n%d cut%s for %d ms", i, j, bit == F_CUT ? " both ways" : "", ms);
            cut(i, j, ms);
            if (bit == F_CUT && !W.cut[j][i])
                cut(j, i, ms);
            W.stats_faults++;
        } else if (bit == F_RESET && i != j) {
            reset_links(i, j);
            W.stats_faults++;
        } else if (bit == F_DELAY) {
            W.latency_min = 1 + rnd(5);
            W.latency_max = W.latency_min + rnd(40);
            trace("latency now %d-%d ms", W.latency_min, W.latency_max);
        }
    }
    sim_at(W.now + 50 + rnd(400), on_fault, NULL, 0);
}

/* ---- a run ------------------------------------------------------------------------ */

static void run_events_until(int64_t end)
{
    while (W.nheap && W.heap[0].when <= end) {
        event_t e = pop_event();
        W.now = e.when;
        log_as(e.fn ? -1 : (int)e.id);
        if (e.fn)
            e.fn(e.arg, e.id);
        else
            node_turn((int)e.id);
        check_replies(-1);
        check_invariants();
        if (W.writes) {
            wop_forget_gone();
            wop_replies();
            wop_holders();
            wop_check();
        }
        sim_peer_collect();
    }
    W.now = end;
}

static void converge_check(void)
{
    for (int i = 0; i < W.nnodes; i++) {
        cluster_t *cl = W.nodes[i].cl;
        if (!cl)
            fail("I3: n%d is not running at the end", i);
        for (size_t m = 0; m < cl->nmembers; m++)
            if (cl->members[m].state != MEMBER_ALIVE)
                fail("I3 views do not converge: n%d sees %s as %s after every fault healed", i,
                     cl->members[m].addr, member_state_name(cl->members[m].state));
        if (!cluster_serving(cl))
            fail("I3: n%d does not serve after every fault healed", i);
    }
}

static void run(uint64_t seed, int nodes, int seconds)
{
    W.seconds = seconds;
    memset(&W.nodes, 0, sizeof(W.nodes));
    W.seed = seed;
    W.rng = seed * 0x9E3779B97F4A7C15ull + 1;
    W.now = RUN_START;
    W.started_at = W.now;
    W.nnodes = nodes;
    memset(W.cut, 0, sizeof(W.cut));
    W.latency_min = 1;
    W.latency_max = 3;
    W.nheap = 0;
    W.nvalues = 0;
    W.npending = 0;
    W.quiet = 0;
    memset(W.floor, 0, sizeof(W.floor));
    sim_store_reset(nodes);
    for (int i = 0; i < nodes; i++)
        node_config(i, &W.nodes[i].cfg);
    for (int i = 0; i < nodes; i++) {
        node_start(i);
        W.nodes[i].holds = 1; /* the keys are empty everywhere */
        sim_at(W.now + rnd(10), on_tick, NULL, i);
    }
    sim_at(W.now + 1000, on_client, NULL, 0);
    sim_at(W.now + 1500, on_fault, NULL, 0);
    if (W.writes) {
        uint64_t keep[] = {X.total_incr, X.total_unknown, X.total_retries, X.total_tryagain,
                           X.total_won, X.total_lost, X.runs_exact, X.total_all_down,
                           X.total_set, X.total_expire};
        memset(&X, 0, sizeof(X));
        X.total_all_down = keep[7], X.total_set = keep[8], X.total_expire = keep[9];
        X.total_incr = keep[0], X.total_unknown = keep[1], X.total_retries = keep[2];
        X.total_tryagain = keep[3], X.total_won = keep[4], X.total_lost = keep[5];
        X.runs_exact = keep[6];
        /* operations stop 4 s before the end: the last of them settle */
        X.stop = W.now + (int64_t)seconds * 1000 + 4000;
        sim_at(W.now + 1000, on_wclient, NULL, 0);
    }
    run_events_until(W.now + (int64_t)seconds * 1000);
    /* Heal everything and let it settle. */
    W.quiet = 1;
    sim_store_quiet();
    for (int a = 0; a < nodes; a++)
        for (int b = 0; b < nodes; b++)
            if (W.cut[a][b]) {
                W.cut[a][b] = 0;
                sim_peer_heal(a, b);
            }
    for (int i = 0; i < nodes; i++) {
        if (!W.nodes[i].cl)
            node_start(i);
        else if (W.nodes[i].paused)
            on_resume(NULL, i);
    }
    W.latency_min = 1;
    W.latency_max = 3;
    run_events_until(W.now + 8000);
    converge_check();
    if (W.writes) {
        wop_forget_gone();
        wop_final();
    }
    for (int i = 0; i < nodes; i++) {
        if (W.nodes[i].cl) {
            sim_peer_crash(i);
            cluster_free(W.nodes[i].cl);
            W.nodes[i].cl = NULL;
            node_drop(&W.nodes[i]);
        }
        config_free(&W.nodes[i].cfg);
    }
    sim_peer_reset();
}

static unsigned parse_faults(const char *s)
{
    unsigned bits = 0;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        size_t i = 0;
        while (i < sizeof(fault_names) / sizeof(fault_names[0]) && strcmp(t, fault_names[i].name))
            i++;
        if (i == sizeof(fault_names) / sizeof(fault_names[0])) {
            fprintf(stderr, "sim: unknown fault kind '%s'\n", t);
            exit(2);
        }
        bits |= fault_names[i].bit;
    }
    return bits;
}

int main(int argc, char **argv)
{
    uint64_t seeds = 100, first = 1;
    int seconds = 20, nodes = 0;
    W.faults = ~0u;
    snprintf(W.dead_after, sizeof(W.dead_after), "3s");
    snprintf(W.faults_text, sizeof(W.faults_text), "crash,pause,stop,cut,oneway,reset,delay,store");
    static const struct option opts[] = {
        {"seeds", required_argument, NULL, 's'},   {"first", required_argument, NULL, 'f'},
        {"seconds", required_argument, NULL, 't'}, {"nodes", required_argument, NULL, 'n'},
        {"faults", required_argument, NULL, 'F'},  {"verbose", no_argument, NULL, 'v'},
        {"dead-after", required_argument, NULL, 'd'}, {"store", no_argument, NULL, 'S'},
        {"flushlog", no_argument, NULL, 'L'},      {"no-bypass", no_argument, NULL, 'B'},
        {"writes", no_argument, NULL, 'W'},        {"blind", no_argument, NULL, 'b'},
        {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': seeds = strtoull(optarg, NULL, 10); break;
        case 'f': first = strtoull(optarg, NULL, 10); break;
        case 't': seconds = atoi(optarg); break;
        case 'n': nodes = atoi(optarg); break;
        case 'F':
            W.faults = parse_faults(optarg);
            snprintf(W.faults_text, sizeof(W.faults_text), "%s", optarg);
            break;
        case 'v': W.verbose = 1; break;
        case 'd': snprintf(W.dead_after, sizeof(W.dead_after), "%s", optarg); break;
        case 'S': W.store = 1; break;
        case 'L': W.flushlog = 1; break;
        case 'B': W.no_bypass = 1; break;
        case 'W': W.writes = 1; break;
        case 'b': W.blind = W.writes = 1; break;
        default:
            fprintf(stderr, "usage: sim [--seeds N] [--first S] [--seconds T] [--nodes K] "
                            "[--faults crash,pause,stop,cut,oneway,reset,delay,store] "
                            "[--dead-after DURATION] [--store [--flushlog [--no-bypass]]] "
                            "[--writes [--blind]] [--verbose]\n");
            return 2;
        }
    }
    if (nodes < 0 || nodes > SIM_MAX_NODES || nodes == 1) {
        fprintf(stderr, "sim: --nodes must be 2 to %d\n", SIM_MAX_NODES);
        return 2;
    }
    log_open("sim", NULL, W.verbose ? LOG_INFO : LOG_ERROR + 1);
    sim_peer_init();
    if ((W.flushlog && !W.store) || (W.no_bypass && !W.flushlog)) {
        fprintf(stderr, "sim: --flushlog needs --store, --no-bypass needs --flushlog\n");
        return 2;
    }
    sim_store_init(W.store);
    sim_store_flushlog(W.flushlog);
    for (uint64_t s = first; s < first + seeds; s++) {
        int n = nodes ? nodes : 3 + (int)(s % 3);
        run(s, n, seconds);
    }
    printf("sim: %" PRIu64 " seeds passed (%" PRIu64 " client commands, %" PRIu64
           " flush replies, %" PRIu64 " faults)\n", seeds, W.stats_ops, W.stats_replies,
           W.stats_faults);
    if (W.store) {
        uint64_t ok, failed;
        sim_store_stats(&ok, &failed);
        printf("sim: fake store: %" PRIu64 " renewals answered, %" PRIu64 " failed\n", ok, failed);
        if (W.flushlog) {
            sim_store_stats_log(&ok, &failed);
            printf("sim: flush log: %" PRIu64 " appends, %" PRIu64 " reads\n", ok, failed);
        }
    }
    if (W.writes)
        printf("sim: writes: %" PRIu64 " INCRs replied (%" PRIu64 " without a reply), %" PRIu64
               " SET NX won, %" PRIu64 " lost, %" PRIu64 " proposals refused and run again, %" PRIu64
               " TRYAGAIN; the counter ended equal to the INCRs replied in %" PRIu64
               " runs; every copy lost %" PRIu64 " times; %" PRIu64 " SETs, %" PRIu64
               " EXPIREs replied\n",
               X.total_incr, X.total_unknown, X.total_won, X.total_lost, X.total_retries,
               X.total_tryagain, X.runs_exact, X.total_all_down, X.total_set, X.total_expire);
    return 0;
}
