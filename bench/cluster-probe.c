/* cluster-probe: timing helpers for the cluster benchmarks (bench/cluster-*).
 *
 * Owns: hiredis connections to the nodes of a cohort cluster (or to the
 * redis-servers of the do-it-yourself invalidation bus), the timing loops,
 * and the statistics, printed as "name value" lines a script can read.
 * Never: runs unbounded (every loop has a count and a time limit), or talks
 * to anything but the host given (127.0.0.1 by default).
 *
 * Modes (PORTS is a comma-separated list; the first is the origin):
 *
 *   cluster-probe fill -P PORTS -k PREFIX -n N
 *       SETs PREFIX0 .. PREFIX<N-1> on every port (pipelined).
 *   cluster-probe dellat -P PORTS -k PREFIX -n N [-t SECONDS]
 *       Fills N keys on every node, then times DEL PREFIXi on the origin,
 *       one at a time (one request in flight: each sample is a DEL's reply
 *       latency, i.e. the time until every member applied it). Every 50th
 *       key is read back on every node right after its reply: a value there
 *       is counted as "stale". Prints p50, p99, p999, max, mean (us).
 *   cluster-probe delthru -P PORTS -k PREFIX -n N [-w WINDOW] [-t SECONDS]
 *       Fills N keys on every node, then sends DEL of each on the origin,
 *       pipelined (at most WINDOW in flight), and times until the last reply;
 *       then checks that DBSIZE dropped by N on every node. Prints keys_per_s.
 *   cluster-probe subscriber -b BUS -c CACHE -C CHANNEL -A ACKS [-t SECONDS]
 *       The do-it-yourself node: SUBSCRIBEs to CHANNEL on the bus and, for
 *       each message "d KEY" or "a KEY", DELs KEY on its local cache (the
 *       messages already buffered are applied as one pipeline); after an "a"
 *       message it PUBLISHes "KEY" on ACKS. "q" ends it.
 *   cluster-probe buslat -b BUS -P CACHES -k PREFIX -n N [-t SECONDS]
 *       Fills N keys on every cache, then for each key PUBLISHes "a KEY" and
 *       waits for an ack from every subscriber: publish-to-applied-everywhere
 *       latency (acks cost one more bus hop; cohort's DEL reply includes its
 *       own). Prints p50, p99, p999, max, mean (us).
 *   cluster-probe busthru -b BUS -P CACHES -k PREFIX -n N [-w WINDOW]
 *       Fills N keys on every cache, PUBLISHes "d KEY" for each (pipelined),
 *       the last as "a KEY", and times until every subscriber acked the last
 *       (they apply in order); checks DBSIZE on every cache. Prints
 *       keys_per_s.
 *   cluster-probe sitemap -P PORTS [-r ROUNDS] [-t SECONDS]
 *       110,000 keys sn:/a<0-10>/b<0-9>/c<0000-0999> on every node. One
 *       thread per node GETs random keys without pause; each round the main
 *       thread refills the 1,000-key subtree sn:/a3/b7/ on every node and
 *       times FLUSHPREFIX sn:/a3/b7/ on node (round % nodes), then checks
 *       DBSIZE on every node. Prints the flush latency and, per node, GET
 *       p50/p99/max over the run and during the flushes.
 *   cluster-probe detect -P OBSERVERS -m MEMBER -s PID -g kill|stop [-t SECONDS]
 *       Sends SIGKILL or SIGSTOP to PID and polls COHORT.MEMBERS on every
 *       observer (about every 0.5 ms) until MEMBER is dead (kill) or
 *       unreachable (stop, then SIGCONT and wait until alive again). Prints
 *       the time of each state change seen, per observer (ms).
 *   cluster-probe writelat -P PORTS -k PREFIX -o set|del -n N [-x MODE] [-S PIDS] [-t SECONDS]
 *       Fills N keys on every node (v:I), then times SET PREFIXi w:I (or
 *       DEL PREFIXi) on the origin, one request in flight, for at most N
 *       keys or SECONDS. Every 50th key is read back on every other node
 *       right after the reply and checked against MODE, the keyspace's write
 *       mode: replicate (SET: the new value everywhere), invalidate (SET:
 *       nil elsewhere), local (SET: the old value elsewhere); DEL: nil
 *       everywhere in every mode. A mismatch is counted as "stale". With
 *       -S, the CPU time (utime + stime, /proc/PID/stat) the listed server
 *       processes used during the timed loop, per request.
 *   cluster-probe writethru -P PORTS -k PREFIX -o set|del -n N [-w WINDOW] [-S PIDS] [-t SECONDS]
 *       Fills N keys on every node, then sends SET (or DEL) of each on the
 *       origin, pipelined (at most WINDOW in flight), until N replies or
 *       SECONDS (then it stops sending and drains); prints ops_per_s and,
 *       with -S, the servers' CPU per request.
 *   cluster-probe page -P PORTS -k PREFIX -n KEYS [-G GETS] [-t SECONDS]
 *       One thread per port (an app host talking to its server): page-like
 *       requests of GETS (default 20) GETs of random keys PREFIX0 ..
 *       PREFIX<KEYS-1> then one SET, issued one after the other, no
 *       pipelining, until SECONDS. A GET that misses is a cache miss: the
 *       thread SETs the value it expected (as an app refills from its
 *       database; counted, in the request's time). A request with an error
 *       reply, a value other than the one written or a connection error is a
 *       failure (the thread reconnects
 *       after 50 ms and goes on). Prints, per host and over all: request,
 *       reads (the GETS together) and SET latency, requests, failures, the
 *       time of each host's first and last failure (s since start) and the
 *       first failure's cause.
 *   cluster-probe converged -P PORTS [-t SECONDS]
 *       Waits until every node sees every other member alive and serves.
 *
 * Exit status: 0; 1 on a usage or connection error or a timeout; 3 when a
 * reply was wrong (an error reply, a stale read, a count that does not
 * match).
 */
#include <errno.h>
#include <stdarg.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 64 /* nodes a probe talks to: bench/cluster-scale goes to 32 */
#define FILL_CHUNK 1000

typedef struct options {
    const char *mode;
    const char *host;
    int ports[MAX_PORTS];
    int nports;
    int bus;
    int cache;
    const char *channel;
    const char *acks;
    const char *prefix;
    long n;
    long window;
    long rounds;
    double seconds;
    const char *member;
    long pid;
    const char *sig;
    const char *op;     /* writelat/writethru: "set" or "del" */
    const char *expect; /* writelat: the keyspace's write mode */
    long pids[MAX_PORTS];
    int npids;
    long gets; /* page: GETs per request */
} options_t;

static int wrong; /* a wrong reply was seen: exit 3 */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "cluster-probe: %s\n", what);
    exit(1);
}

static redisContext *connect_port(const char *host, int port)
{
    struct timeval tv = {10, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err) {
        fprintf(stderr, "cluster-probe: cannot connect to %s:%d: %s\n", host, port,
                c ? c->errstr : "out of memory");
        exit(1);
    }
    redisSetTimeout(c, tv);
    return c;
}

/* Runs one command; exits on a connection error. The caller frees the reply. */
static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r) {
        fprintf(stderr, "cluster-probe: connection error: %s\n", c->errstr);
        exit(1);
    }
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "cluster-probe: error reply: %s\n", r->str);
        wrong = 1;
    }
    return r;
}

static long long cmd_int(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r) {
        fprintf(stderr, "cluster-probe: connection error: %s\n", c->errstr);
        exit(1);
    }
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r->type != REDIS_REPLY_INTEGER) {
        fprintf(stderr, "cluster-probe: expected an integer, got type %d\n", r->type);
        wrong = 1;
    }
    freeReplyObject(r);
    return v;
}

static void get_reply(redisContext *c, redisReply **out)
{
    void *r = NULL;
    if (redisGetReply(c, &r) != REDIS_OK || !r) {
        fprintf(stderr, "cluster-probe: connection error: %s\n", c->errstr);
        exit(1);
    }
    redisReply *rr = r;
    if (rr->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "cluster-probe: error reply: %s\n", rr->str);
        wrong = 1;
    }
    if (out)
        *out = rr;
    else
        freeReplyObject(rr);
}

/* SETs PREFIX0 .. PREFIX<n-1> on c, pipelined. */
static void fill(redisContext *c, const char *prefix, long n)
{
    long sent = 0, got = 0;
    while (got < n) {
        while (sent < n && sent - got < 2 * FILL_CHUNK) {
            redisAppendCommand(c, "SET %s%ld v:%ld", prefix, sent, sent);
            sent++;
        }
        for (long i = 0; i < FILL_CHUNK && got < sent; i++, got++)
            get_reply(c, NULL);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Prints p50/p99/p999/max/mean (us) of n samples (ns), sorting them. */
/* After a flush replied: GET the key on every cache; anything but nil is a
 * stale read (counted, and the run is wrong). */
static void check_gone(redisContext **cs, int n, const char *key, long *checked, long *stale)
{
    for (int j = 0; j < n; j++) {
        redisReply *r = cmd(cs[j], "GET %s", key);
        (*checked)++;
        if (r->type != REDIS_REPLY_NIL) {
            (*stale)++;
            wrong = 1;
        }
        freeReplyObject(r);
    }
}

static void print_stats(const char *name, uint64_t *s, long n)
{
    if (n == 0) {
        printf("%s_samples 0\n", name);
        return;
    }
    qsort(s, (size_t)n, sizeof(*s), cmp_u64);
    double sum = 0;
    for (long i = 0; i < n; i++)
        sum += (double)s[i];
    printf("%s_samples %ld\n", name, n);
    printf("%s_p50_us %.1f\n", name, s[n / 2] / 1e3);
    printf("%s_p99_us %.1f\n", name, s[(long)(n * 0.99)] / 1e3);
    printf("%s_p999_us %.1f\n", name, s[(long)(n * 0.999)] / 1e3);
    printf("%s_max_us %.1f\n", name, s[n - 1] / 1e3);
    printf("%s_mean_us %.1f\n", name, sum / (double)n / 1e3);
}

/* ---- cohort: DEL latency and throughput ---------------------------------- */

static void mode_fill(options_t *o)
{
    for (int i = 0; i < o->nports; i++) {
        redisContext *c = connect_port(o->host, o->ports[i]);
        fill(c, o->prefix, o->n);
        redisFree(c);
    }
}

static void mode_dellat(options_t *o)
{
    redisContext *cs[MAX_PORTS];
    for (int i = 0; i < o->nports; i++) {
        cs[i] = connect_port(o->host, o->ports[i]);
        fill(cs[i], o->prefix, o->n);
    }
    uint64_t *s = calloc((size_t)o->n, sizeof(uint64_t));
    long n = 0, stale = 0, checked = 0;
    uint64_t deadline = now_ns() + (uint64_t)(o->seconds * 1e9);
    char key[256];
    for (long i = 0; i < o->n && now_ns() < deadline; i++) {
        snprintf(key, sizeof(key), "%s%ld", o->prefix, i);
        uint64_t t0 = now_ns();
        redisReply *r = cmd(cs[0], "DEL %s", key);
        s[n++] = now_ns() - t0;
        if (r->type != REDIS_REPLY_INTEGER || r->integer != 1) {
            fprintf(stderr, "cluster-probe: DEL %s did not remove 1 key\n", key);
            wrong = 1;
        }
        freeReplyObject(r);
        if (i % 50 == 0)
            check_gone(cs, o->nports, key, &checked, &stale);
    }
    print_stats("del", s, n);
    printf("stale_reads %ld\nreads_checked %ld\n", stale, checked);
    free(s);
    for (int i = 0; i < o->nports; i++)
        redisFree(cs[i]);
}

static void mode_delthru(options_t *o)
{
    redisContext *cs[MAX_PORTS];
    long long before[MAX_PORTS];
    for (int i = 0; i < o->nports; i++) {
        cs[i] = connect_port(o->host, o->ports[i]);
        fill(cs[i], o->prefix, o->n);
        before[i] = cmd_int(cs[i], "DBSIZE");
    }
    uint64_t deadline = now_ns() + (uint64_t)(o->seconds * 1e9);
    uint64_t t0 = now_ns();
    long sent = 0, got = 0, removed = 0;
    while (got < o->n) {
        while (sent < o->n && sent - got < o->window) {
            redisAppendCommand(cs[0], "DEL %s%ld", o->prefix, sent);
            sent++;
        }
        do {
            redisReply *r;
            get_reply(cs[0], &r);
            removed += r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
            freeReplyObject(r);
            got++;
        } while (got < sent && sent - got >= o->window / 2);
        if (now_ns() > deadline)
            die("delthru: time limit reached");
    }
    double secs = (now_ns() - t0) / 1e9;
    printf("keys %ld\nseconds %.3f\nkeys_per_s %.0f\n", o->n, secs, o->n / secs);
    if (removed != o->n) {
        fprintf(stderr, "cluster-probe: DELs removed %ld keys, not %ld\n", removed, o->n);
        wrong = 1;
    }
    for (int i = 0; i < o->nports; i++) {
        long long after = cmd_int(cs[i], "DBSIZE");
        printf("node%d_dbsize_drop %lld\n", i, before[i] - after);
        if (before[i] - after != o->n)
            wrong = 1;
        redisFree(cs[i]);
    }
}

/* ---- the do-it-yourself bus --------------------------------------------- */

static void mode_subscriber(options_t *o)
{
    redisContext *sub = connect_port(o->host, o->bus);
    redisContext *pub = connect_port(o->host, o->bus);
    redisContext *cache = connect_port(o->host, o->cache);
    struct timeval tv = {1, 0};
    freeReplyObject(cmd(sub, "SUBSCRIBE %s", o->channel));
    redisSetTimeout(sub, tv);
    uint64_t deadline = now_ns() + (uint64_t)(o->seconds * 1e9);
    printf("subscribed\n");
    fflush(stdout);
    char ack_key[512];
    while (now_ns() < deadline) {
        void *rv = NULL;
        if (redisGetReply(sub, &rv) != REDIS_OK) {
            if (sub->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                sub->err = 0; /* the 1 s read timeout: check the deadline */
                continue;
            }
            die("subscriber: lost the bus");
        }
        /* This message and every one already buffered: one pipeline. */
        long dels = 0;
        int ack = 0, quit = 0;
        while (rv) {
            redisReply *r = rv;
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                r->element[2]->type == REDIS_REPLY_STRING) {
                const char *m = r->element[2]->str;
                if (m[0] == 'q') {
                    quit = 1;
                } else if ((m[0] == 'd' || m[0] == 'a') && m[1] == ' ') {
                    redisAppendCommand(cache, "DEL %s", m + 2);
                    dels++;
                    if (m[0] == 'a') {
                        ack = 1;
                        snprintf(ack_key, sizeof(ack_key), "%s", m + 2);
                    }
                }
            }
            freeReplyObject(r);
            rv = NULL;
            if (redisGetReplyFromReader(sub, &rv) != REDIS_OK)
                die("subscriber: bad reply from the bus");
        }
        for (long i = 0; i < dels; i++)
            get_reply(cache, NULL);
        if (ack)
            freeReplyObject(cmd(pub, "PUBLISH %s %s", o->acks, ack_key));
        if (quit)
            break;
    }
    redisFree(sub);
    redisFree(pub);
    redisFree(cache);
}

/* Waits for `want` acks of key on the ack subscription. */
static void wait_acks(redisContext *acks, const char *key, int want)
{
    int got = 0;
    while (got < want) {
        redisReply *r;
        get_reply(acks, &r);
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
            r->element[2]->type == REDIS_REPLY_STRING && strcmp(r->element[2]->str, key) == 0)
            got++;
        freeReplyObject(r);
    }
}

static void bus_setup(options_t *o, redisContext **pub, redisContext **acks, redisContext **cs)
{
    *pub = connect_port(o->host, o->bus);
    *acks = connect_port(o->host, o->bus);
    freeReplyObject(cmd(*acks, "SUBSCRIBE %s", o->acks));
    for (int i = 0; i < o->nports; i++) {
        cs[i] = connect_port(o->host, o->ports[i]);
        fill(cs[i], o->prefix, o->n);
    }
    /* Every subscriber is listening before the clock starts. */
    uint64_t deadline = now_ns() + 10000000000ull;
    for (;;) {
        long long subs = -1;
        redisReply *r = cmd(*pub, "PUBSUB NUMSUB %s", o->channel);
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2)
            subs = r->element[1]->integer;
        freeReplyObject(r);
        if (subs >= o->nports)
            break;
        if (now_ns() > deadline)
            die("the subscribers did not subscribe within 10 s");
        usleep(10000);
    }
}

static void mode_buslat(options_t *o)
{
    redisContext *pub, *acks, *cs[MAX_PORTS];
    bus_setup(o, &pub, &acks, cs);
    uint64_t *s = calloc((size_t)o->n, sizeof(uint64_t));
    long n = 0, stale = 0, checked = 0;
    uint64_t deadline = now_ns() + (uint64_t)(o->seconds * 1e9);
    char key[256];
    for (long i = 0; i < o->n && now_ns() < deadline; i++) {
        snprintf(key, sizeof(key), "%s%ld", o->prefix, i);
        char msg[300];
        snprintf(msg, sizeof(msg), "a %s", key);
        uint64_t t0 = now_ns();
        freeReplyObject(cmd(pub, "PUBLISH %s %s", o->channel, msg));
        wait_acks(acks, key, o->nports);
        s[n++] = now_ns() - t0;
        if (i % 50 == 0)
            check_gone(cs, o->nports, key, &checked, &stale);
    }
    print_stats("bus", s, n);
    printf("stale_reads %ld\nreads_checked %ld\n", stale, checked);
    free(s);
    redisFree(pub);
    redisFree(acks);
    for (int i = 0; i < o->nports; i++)
        redisFree(cs[i]);
}

static void mode_busthru(options_t *o)
{
    redisContext *pub, *acks, *cs[MAX_PORTS];
    bus_setup(o, &pub, &acks, cs);
    long long before[MAX_PORTS];
    for (int i = 0; i < o->nports; i++)
        before[i] = cmd_int(cs[i], "DBSIZE");
    uint64_t deadline = now_ns() + (uint64_t)(o->seconds * 1e9);
    uint64_t t0 = now_ns();
    long sent = 0, got = 0;
    char last[256];
    snprintf(last, sizeof(last), "%s%ld", o->prefix, o->n - 1);
    while (got < o->n) {
        while (sent < o->n && sent - got < o->window) {
            char msg[300];
            snprintf(msg, sizeof(msg), "%s %s%ld", sent == o->n - 1 ? "a" : "d", o->prefix,
                     sent);
            redisAppendCommand(pub, "PUBLISH %s %s", o->channel, msg);
            sent++;
        }
        do {
            get_reply(pub, NULL);
            got++;
        } while (got < sent && sent - got >= o->window / 2);
        if (now_ns() > deadline)
            die("busthru: time limit reached");
    }
    uint64_t t_published = now_ns();
    wait_acks(acks, last, o->nports);
    double secs = (now_ns() - t0) / 1e9;
    printf("keys %ld\nseconds %.3f\nkeys_per_s %.0f\npublish_seconds %.3f\n", o->n, secs,
           o->n / secs, (t_published - t0) / 1e9);
    for (int i = 0; i < o->nports; i++) {
        long long after = cmd_int(cs[i], "DBSIZE");
        printf("cache%d_dbsize_drop %lld\n", i, before[i] - after);
        if (before[i] - after != o->n)
            wrong = 1;
        redisFree(cs[i]);
    }
    redisFree(pub);
    redisFree(acks);
}

/* ---- site map -------------------------------------------------------------- */

#define SM_A 11
#define SM_B 10
#define SM_C 1000
#define SM_KEYS (SM_A * SM_B * SM_C)
#define SM_MAX_SAMPLES 4000000

typedef struct sampler {
    pthread_t thread;
    const char *host;
    int port;
    volatile int *stop;
    uint64_t *at;  /* send time of each sample */
    uint64_t *lat; /* its latency */
    long n;
    long misses;
} sampler_t;

static void *sampler_run(void *arg)
{
    sampler_t *sp = arg;
    redisContext *c = connect_port(sp->host, sp->port);
    unsigned seed = (unsigned)sp->port;
    char key[64];
    while (!*sp->stop && sp->n < SM_MAX_SAMPLES) {
        int a = rand_r(&seed) % SM_A, b = rand_r(&seed) % SM_B, k = rand_r(&seed) % SM_C;
        if (a == 3 && b == 7)
            b = 6; /* outside the flushed subtree: always a hit */
        snprintf(key, sizeof(key), "sn:/a%d/b%d/c%04d", a, b, k);
        uint64_t t0 = now_ns();
        redisReply *r = redisCommand(c, "GET %s", key);
        uint64_t t1 = now_ns();
        if (!r)
            break;
        if (r->type != REDIS_REPLY_STRING)
            sp->misses++;
        freeReplyObject(r);
        sp->at[sp->n] = t0;
        sp->lat[sp->n] = t1 - t0;
        sp->n++;
    }
    redisFree(c);
    return NULL;
}

static void sitemap_fill(redisContext *c, int only_subtree)
{
    long sent = 0;
    for (int a = 0; a < SM_A; a++)
        for (int b = 0; b < SM_B; b++) {
            if (only_subtree && !(a == 3 && b == 7))
                continue;
            for (int k = 0; k < SM_C; k++) {
                redisAppendCommand(c, "SET sn:/a%d/b%d/c%04d page:%d/%d/%d", a, b, k, a, b, k);
                if (++sent % FILL_CHUNK == 0)
                    for (int i = 0; i < FILL_CHUNK; i++)
                        get_reply(c, NULL);
            }
        }
    for (long i = 0; i < sent % FILL_CHUNK; i++)
        get_reply(c, NULL);
}

static void mode_sitemap(options_t *o)
{
    redisContext *cs[MAX_PORTS];
    for (int i = 0; i < o->nports; i++) {
        cs[i] = connect_port(o->host, o->ports[i]);
        sitemap_fill(cs[i], 0);
        if (cmd_int(cs[i], "DBSIZE") != SM_KEYS) {
            fprintf(stderr, "cluster-probe: node %d does not hold %d keys\n", i, SM_KEYS);
            wrong = 1;
        }
    }
    volatile int stop = 0;
    sampler_t sp[MAX_PORTS];
    for (int i = 0; i < o->nports; i++) {
        memset(&sp[i], 0, sizeof(sp[i]));
        sp[i].host = o->host;
        sp[i].port = o->ports[i];
        sp[i].stop = &stop;
        sp[i].at = calloc(SM_MAX_SAMPLES, sizeof(uint64_t));
        sp[i].lat = calloc(SM_MAX_SAMPLES, sizeof(uint64_t));
        if (!sp[i].at || !sp[i].lat)
            die("out of memory");
        pthread_create(&sp[i].thread, NULL, sampler_run, &sp[i]);
    }
    uint64_t *fl = calloc((size_t)o->rounds, sizeof(uint64_t));
    uint64_t *win0 = calloc((size_t)o->rounds, sizeof(uint64_t));
    uint64_t *win1 = calloc((size_t)o->rounds, sizeof(uint64_t));
    uint64_t deadline = now_ns() + (uint64_t)(o->seconds * 1e9);
    long rounds = 0;
    usleep(200000);
    for (long r = 0; r < o->rounds && now_ns() < deadline; r++) {
        for (int i = 0; i < o->nports; i++)
            sitemap_fill(cs[i], 1);
        usleep(50000);
        redisContext *c = cs[r % o->nports];
        win0[r] = now_ns();
        redisReply *fr = redisCommand(c, "FLUSHPREFIX %s ASYNC", "sn:/a3/b7/");
        win1[r] = now_ns();
        fl[r] = win1[r] - win0[r];
        if (!fr || fr->type != REDIS_REPLY_STATUS || strcmp(fr->str, "OK") != 0) {
            fprintf(stderr, "cluster-probe: FLUSHPREFIX ... ASYNC did not reply OK\n");
            wrong = 1;
        }
        if (fr)
            freeReplyObject(fr);
        for (int i = 0; i < o->nports; i++) {
            /* Gone at once on every node; DBSIZE then waits for the node's
             * sweep and counts exactly. */
            redisReply *g = redisCommand(cs[i], "GET sn:/a3/b7/c0%03d", (int)(r % SM_C));
            if (!g || g->type != REDIS_REPLY_NIL) {
                fprintf(stderr, "cluster-probe: node %d still serves a flushed key\n", i);
                wrong = 1;
            }
            if (g)
                freeReplyObject(g);
            long long keys = cmd_int(cs[i], "DBSIZE");
            if (keys != SM_KEYS - SM_C) {
                fprintf(stderr, "cluster-probe: node %d holds %lld keys right after the flush, "
                        "not %d\n", i, keys, SM_KEYS - SM_C);
                wrong = 1;
            }
        }
        rounds++;
        usleep(100000);
    }
    stop = 1;
    for (int i = 0; i < o->nports; i++)
        pthread_join(sp[i].thread, NULL);
    printf("rounds %ld\n", rounds);
    print_stats("flushprefix", fl, rounds);
    for (int i = 0; i < o->nports; i++) {
        /* The samples that overlapped a flush (sent before its reply, answered
         * after it began). */
        uint64_t *during = calloc((size_t)sp[i].n + 1, sizeof(uint64_t));
        long nd = 0;
        for (long s = 0; s < sp[i].n; s++)
            for (long r = 0; r < rounds; r++)
                if (sp[i].at[s] < win1[r] && sp[i].at[s] + sp[i].lat[s] > win0[r]) {
                    during[nd++] = sp[i].lat[s];
                    break;
                }
        char name[32];
        snprintf(name, sizeof(name), "node%d_get", i);
        print_stats(name, sp[i].lat, sp[i].n);
        snprintf(name, sizeof(name), "node%d_get_during", i);
        print_stats(name, during, nd);
        printf("node%d_get_misses %ld\n", i, sp[i].misses);
        if (sp[i].misses)
            wrong = 1;
        free(during);
        free(sp[i].at);
        free(sp[i].lat);
        redisFree(cs[i]);
    }
    free(fl);
    free(win0);
    free(win1);
}

/* ---- member states ------------------------------------------------------------ */

/* The state of member on c's node ("" when not listed). */
static void member_state(redisContext *c, const char *member, char *out, size_t outlen)
{
    redisReply *r = cmd(c, "COHORT.MEMBERS");
    out[0] = '\0';
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *m = r->element[i];
        const char *name = NULL, *state = NULL;
        for (size_t j = 0; m->type == REDIS_REPLY_ARRAY && j + 1 < m->elements; j += 2) {
            if (m->element[j]->type != REDIS_REPLY_STRING ||
                m->element[j + 1]->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(m->element[j]->str, "name") == 0)
                name = m->element[j + 1]->str;
            else if (strcmp(m->element[j]->str, "state") == 0)
                state = m->element[j + 1]->str;
        }
        if (name && state && strcmp(name, member) == 0)
            snprintf(out, outlen, "%s", state);
    }
    freeReplyObject(r);
}

/* Polls every observer until member is in state `want` on all; prints the
 * time (ms since t0) of each change seen. Returns 0, or -1 at the deadline. */
static int watch_until(options_t *o, redisContext **cs, uint64_t t0, const char *want,
                       uint64_t deadline)
{
    char last[MAX_PORTS][32];
    int done[MAX_PORTS] = {0};
    int left = o->nports;
    for (int i = 0; i < o->nports; i++)
        last[i][0] = '\0';
    while (left > 0) {
        for (int i = 0; i < o->nports; i++) {
            if (done[i])
                continue;
            char st[32];
            member_state(cs[i], o->member, st, sizeof(st));
            if (strcmp(st, last[i]) != 0) {
                printf("observer%d %s %.1f\n", i, st, (now_ns() - t0) / 1e6);
                snprintf(last[i], sizeof(last[i]), "%s", st);
            }
            if (strcmp(st, want) == 0) {
                done[i] = 1;
                left--;
            }
        }
        if (now_ns() > deadline)
            return -1;
        usleep(500);
    }
    return 0;
}

static void mode_detect(options_t *o)
{
    redisContext *cs[MAX_PORTS];
    for (int i = 0; i < o->nports; i++)
        cs[i] = connect_port(o->host, o->ports[i]);
    int stop = strcmp(o->sig, "stop") == 0;
    if (!stop && strcmp(o->sig, "kill") != 0)
        die("-g must be kill or stop");
    uint64_t deadline = now_ns() + (uint64_t)(o->seconds * 1e9);
    uint64_t t0 = now_ns();
    if (kill((pid_t)o->pid, stop ? SIGSTOP : SIGKILL) != 0)
        die("cannot signal the process");
    int rc = watch_until(o, cs, t0, stop ? "unreachable" : "dead", deadline);
    if (stop) {
        kill((pid_t)o->pid, SIGCONT);
        if (rc == 0) {
            uint64_t t1 = now_ns();
            printf("resumed %.1f\n", (t1 - t0) / 1e6);
            rc = watch_until(o, cs, t0, "alive", now_ns() + 10000000000ull);
        }
    }
    for (int i = 0; i < o->nports; i++)
        redisFree(cs[i]);
    if (rc != 0)
        die("detect: the member did not reach the state in time");
}

/* 1 when the node behind c sees every one of the others alive and serves;
 * otherwise 0, with what it lacks in why. */
static int node_converged(redisContext *c, int others, char *why, size_t whylen)
{
    redisReply *r = cmd(c, "COHORT.MEMBERS");
    int ok = r->type == REDIS_REPLY_ARRAY && (int)r->elements == others;
    if (!ok)
        snprintf(why, whylen, "COHORT.MEMBERS lists %zu members, not %d", r->elements, others);
    for (size_t j = 0; ok && j < r->elements; j++) {
        redisReply *m = r->element[j];
        const char *name = "?";
        for (size_t k = 0; m->type == REDIS_REPLY_ARRAY && k + 1 < m->elements; k += 2) {
            if (m->element[k]->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(m->element[k]->str, "name") == 0)
                name = m->element[k + 1]->str;
            if (strcmp(m->element[k]->str, "state") == 0 &&
                strcmp(m->element[k + 1]->str, "alive") != 0) {
                snprintf(why, whylen, "member %s is %s", name, m->element[k + 1]->str);
                ok = 0;
            }
        }
    }
    freeReplyObject(r);
    if (!ok)
        return 0;
    r = cmd(c, "INFO cohort");
    ok = r->type == REDIS_REPLY_STRING && strstr(r->str, "cohort_serving_cache:1");
    if (!ok)
        snprintf(why, whylen, "not serving its cache");
    freeReplyObject(r);
    return ok;
}

static void mode_converged(options_t *o)
{
    uint64_t deadline = now_ns() + (uint64_t)(o->seconds * 1e9);
    redisContext *cs[MAX_PORTS];
    for (int i = 0; i < o->nports; i++)
        cs[i] = connect_port(o->host, o->ports[i]);
    char why[256] = "";
    int lagging = 0;
    for (;;) {
        int ok = 1;
        for (int i = 0; i < o->nports && ok; i++)
            if (!node_converged(cs[i], o->nports - 1, why, sizeof(why))) {
                ok = 0;
                lagging = i;
            }
        if (ok)
            break;
        if (now_ns() > deadline) {
            fprintf(stderr, "cluster-probe: converged: not in time: the node on port %d: %s\n",
                    o->ports[lagging], why);
            exit(1);
        }
        usleep(20000);
    }
    for (int i = 0; i < o->nports; i++)
        redisFree(cs[i]);
}


/* ---- write modes: SET against DEL ---------------------------------------- */

/* CPU time (us) the listed processes used so far: utime + stime from
 * /proc/PID/stat; 0 without -S. */
static double servers_cpu_us(const options_t *o)
{
    double us = 0;
    long tck = sysconf(_SC_CLK_TCK);
    for (int i = 0; i < o->npids; i++) {
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%ld/stat", o->pids[i]);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        const char *p = strrchr(buf, ')'); /* the name may hold spaces */
        unsigned long long ut = 0, st = 0;
        /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt
         * majflt cmajflt utime stime */
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                        &ut, &st) == 2)
            us += (double)(ut + st) * 1e6 / (double)tck;
    }
    return us;
}

static void print_cpu(const options_t *o, double cpu0, long ops)
{
    if (o->npids == 0 || ops == 0)
        return;
    double used = servers_cpu_us(o) - cpu0;
    printf("server_cpu_ms %.0f\nserver_cpu_us_per_op %.2f\n", used / 1e3, used / (double)ops);
}

static int op_is_set(const options_t *o)
{
    if (strcmp(o->op, "set") == 0)
        return 1;
    if (strcmp(o->op, "del") != 0)
        die("-o must be set or del");
    return 0;
}

/* After a write of key i replied: what each other node must hold (see the
 * writelat comment); a mismatch is counted and makes the run wrong. */
static void check_write(const options_t *o, redisContext **cs, const char *key, long i,
                        int is_set, long *checked, long *stale)
{
    char fresh[64], old[64];
    snprintf(fresh, sizeof(fresh), "w:%ld", i);
    snprintf(old, sizeof(old), "v:%ld", i);
    for (int j = 0; j < o->nports; j++) {
        const char *want = NULL; /* NULL: nil */
        if (is_set && j == 0)
            want = fresh;
        else if (is_set && strcmp(o->expect, "replicate") == 0)
            want = fresh;
        else if (is_set && strcmp(o->expect, "local") == 0)
            want = old;
        redisReply *r = cmd(cs[j], "GET %s", key);
        (*checked)++;
        int ok = want ? r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0
                      : r->type == REDIS_REPLY_NIL;
        if (!ok) {
            (*stale)++;
            wrong = 1;
        }
        freeReplyObject(r);
    }
}

static void mode_writelat(options_t *o)
{
    int is_set = op_is_set(o);
    redisContext *cs[MAX_PORTS];
    for (int i = 0; i < o->nports; i++) {
        cs[i] = connect_port(o->host, o->ports[i]);
        fill(cs[i], o->prefix, o->n);
    }
    uint64_t *s = calloc((size_t)o->n, sizeof(uint64_t));
    long n = 0, stale = 0, checked = 0;
    char key[256], val[64];
    double cpu0 = servers_cpu_us(o), cpu_sum = 0;
    uint64_t deadline = now_ns() + (uint64_t)(o->seconds * 1e9);
    for (long i = 0; i < o->n && now_ns() < deadline; i++) {
        snprintf(key, sizeof(key), "%s%ld", o->prefix, i);
        snprintf(val, sizeof(val), "w:%ld", i);
        uint64_t t0 = now_ns();
        redisReply *r = is_set ? cmd(cs[0], "SET %s %s", key, val) : cmd(cs[0], "DEL %s", key);
        s[n++] = now_ns() - t0;
        int ok = is_set ? r->type == REDIS_REPLY_STATUS : r->type == REDIS_REPLY_INTEGER &&
                                                              r->integer == 1;
        if (!ok) {
            fprintf(stderr, "cluster-probe: %s %s: unexpected reply\n", o->op, key);
            wrong = 1;
        }
        freeReplyObject(r);
        if (i % 50 == 0) { /* the reads are not the servers' cost of a write */
            double c = servers_cpu_us(o);
            check_write(o, cs, key, i, is_set, &checked, &stale);
            cpu_sum += servers_cpu_us(o) - c;
        }
    }
    print_stats(o->op, s, n);
    printf("stale_reads %ld\nreads_checked %ld\n", stale, checked);
    print_cpu(o, cpu0 + cpu_sum, n);
    free(s);
    for (int i = 0; i < o->nports; i++)
        redisFree(cs[i]);
}

static void mode_writethru(options_t *o)
{
    int is_set = op_is_set(o);
    redisContext *cs[MAX_PORTS];
    for (int i = 0; i < o->nports; i++) {
        cs[i] = connect_port(o->host, o->ports[i]);
        fill(cs[i], o->prefix, o->n);
    }
    double cpu0 = servers_cpu_us(o);
    uint64_t deadline = now_ns() + (uint64_t)(o->seconds * 1e9);
    uint64_t t0 = now_ns();
    long sent = 0, got = 0, bad = 0, limit = o->n;
    while (got < limit) {
        while (sent < limit && sent - got < o->window) {
            if (is_set)
                redisAppendCommand(cs[0], "SET %s%ld w:%ld", o->prefix, sent, sent);
            else
                redisAppendCommand(cs[0], "DEL %s%ld", o->prefix, sent);
            sent++;
        }
        do {
            redisReply *r;
            get_reply(cs[0], &r);
            bad += is_set ? r->type != REDIS_REPLY_STATUS
                          : r->type != REDIS_REPLY_INTEGER || r->integer != 1;
            freeReplyObject(r);
            got++;
        } while (got < sent && sent - got >= o->window / 2);
        if (now_ns() > deadline)
            limit = sent; /* time is up: drain what is in flight */
    }
    double secs = (now_ns() - t0) / 1e9;
    printf("ops %ld\nseconds %.3f\nops_per_s %.0f\n", got, secs, got / secs);
    print_cpu(o, cpu0, got);
    if (bad) {
        fprintf(stderr, "cluster-probe: %ld unexpected replies to %s\n", bad, o->op);
        wrong = 1;
    }
    for (int i = 0; i < o->nports; i++)
        redisFree(cs[i]);
}

/* ---- page-like requests, one app host per port --------------------------- */

typedef struct page_host {
    const options_t *o;
    int idx;
    uint64_t t_start;
    uint64_t *req, *reads, *sets;
    long n, cap, failures, misses;
    double first_failure_s; /* -1: none */
    double last_failure_s;
    char first_error[160];
} page_host_t;

static redisContext *page_connect(const options_t *o, int port)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(o->host, port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

/* Notes the first failure's cause on h (once). */
static void page_error(page_host_t *h, redisContext *c, const redisReply *r, const char *what)
{
    if (h->first_error[0])
        return;
    const char *why = !r                             ? c->errstr
                      : r->type == REDIS_REPLY_ERROR ? r->str
                                                     : "a value other than the one written";
    snprintf(h->first_error, sizeof(h->first_error), "%s: %s", what, why);
    for (char *p = h->first_error; *p; p++)
        if (*p == ' ')
            *p = '_'; /* one token on the "name value" line */
}

/* One page: GETS GETs then a SET; returns 0, or -1 (the caller counts a
 * failure and reconnects). */
static int page_once(page_host_t *h, redisContext *c, unsigned *seed, long seq,
                     uint64_t *t_reads, uint64_t *t_set)
{
    const options_t *o = h->o;
    char key[256], want[64];
    uint64_t t0 = now_ns();
    for (long g = 0; g < o->gets; g++) {
        long k = (long)(rand_r(seed) % (unsigned)o->n);
        snprintf(key, sizeof(key), "%s%ld", o->prefix, k);
        snprintf(want, sizeof(want), "v:%ld", k);
        redisReply *r = redisCommand(c, "GET %s", key);
        if (r && r->type == REDIS_REPLY_NIL) { /* a miss: the app fills it again */
            freeReplyObject(r);
            h->misses++;
            r = redisCommand(c, "SET %s %s", key, want);
            int filled = r && r->type == REDIS_REPLY_STATUS;
            if (!filled)
                page_error(h, c, r, "SET after a miss");
            if (r)
                freeReplyObject(r);
            if (!filled)
                return -1;
            continue;
        }
        int ok = r && r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0;
        if (!ok)
            page_error(h, c, r, "GET");
        if (r)
            freeReplyObject(r);
        if (!ok)
            return -1;
    }
    uint64_t t1 = now_ns();
    snprintf(key, sizeof(key), "%sw:%d:%ld", o->prefix, h->idx, seq % 1000);
    redisReply *r = redisCommand(c, "SET %s %ld", key, seq);
    int ok = r && r->type == REDIS_REPLY_STATUS;
    if (!ok)
        page_error(h, c, r, "SET");
    if (r)
        freeReplyObject(r);
    *t_reads = t1 - t0;
    *t_set = now_ns() - t1;
    return ok ? 0 : -1;
}

static void *page_thread(void *arg)
{
    page_host_t *h = arg;
    const options_t *o = h->o;
    unsigned seed = 12345u + (unsigned)h->idx;
    uint64_t deadline = h->t_start + (uint64_t)(o->seconds * 1e9);
    redisContext *c = page_connect(o, o->ports[h->idx]);
    for (long seq = 0; now_ns() < deadline; seq++) {
        uint64_t tr = 0, ts = 0, t0 = now_ns();
        if (c && page_once(h, c, &seed, seq, &tr, &ts) == 0) {
            if (h->n == h->cap) {
                h->cap = h->cap ? 2 * h->cap : 4096;
                h->req = realloc(h->req, (size_t)h->cap * sizeof(uint64_t));
                h->reads = realloc(h->reads, (size_t)h->cap * sizeof(uint64_t));
                h->sets = realloc(h->sets, (size_t)h->cap * sizeof(uint64_t));
                if (!h->req || !h->reads || !h->sets)
                    die("out of memory");
            }
            h->req[h->n] = now_ns() - t0;
            h->reads[h->n] = tr;
            h->sets[h->n] = ts;
            h->n++;
            continue;
        }
        if (h->failures++ == 0)
            h->first_failure_s = (now_ns() - h->t_start) / 1e9;
        h->last_failure_s = (now_ns() - h->t_start) / 1e9;
        if (!c && !h->first_error[0])
            snprintf(h->first_error, sizeof(h->first_error), "connect_failed");
        if (c)
            redisFree(c);
        usleep(50000);
        c = page_connect(o, o->ports[h->idx]);
    }
    if (c)
        redisFree(c);
    return NULL;
}

static void mode_page(options_t *o)
{
    page_host_t hs[MAX_PORTS];
    pthread_t th[MAX_PORTS];
    uint64_t t0 = now_ns();
    for (int i = 0; i < o->nports; i++) {
        hs[i] = (page_host_t){.o = o, .idx = i, .t_start = t0, .first_failure_s = -1,
                              .last_failure_s = -1};
        if (pthread_create(&th[i], NULL, page_thread, &hs[i]) != 0)
            die("cannot start a thread");
    }
    long total = 0, failures = 0;
    for (int i = 0; i < o->nports; i++) {
        pthread_join(th[i], NULL);
        total += hs[i].n;
    }
    uint64_t *all[3];
    for (int k = 0; k < 3; k++)
        all[k] = calloc((size_t)total + 1, sizeof(uint64_t));
    long at = 0;
    char name[64];
    for (int i = 0; i < o->nports; i++) {
        page_host_t *h = &hs[i];
        memcpy(all[0] + at, h->req, (size_t)h->n * sizeof(uint64_t));
        memcpy(all[1] + at, h->reads, (size_t)h->n * sizeof(uint64_t));
        memcpy(all[2] + at, h->sets, (size_t)h->n * sizeof(uint64_t));
        at += h->n;
        snprintf(name, sizeof(name), "host%d_req", i);
        print_stats(name, h->req, h->n);
        printf("host%d_misses %ld\n", i, h->misses);
        printf("host%d_failures %ld\nhost%d_first_failure_s %.3f\nhost%d_last_failure_s %.3f\n",
               i, h->failures, i, h->first_failure_s, i, h->last_failure_s);
        if (h->first_error[0])
            printf("host%d_first_error %s\n", i, h->first_error);
        failures += h->failures;
        free(h->req);
        free(h->reads);
        free(h->sets);
    }
    print_stats("req", all[0], total);
    print_stats("reads", all[1], total);
    print_stats("set", all[2], total);
    printf("requests %ld\nfailures %ld\n", total, failures);
    for (int k = 0; k < 3; k++)
        free(all[k]);
}

/* ---- arguments ---------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: cluster-probe MODE [-h HOST] [-P PORT,PORT,...] [-k PREFIX] [-n N]\n"
            "       [-w WINDOW] [-r ROUNDS] [-t SECONDS] [-b BUS] [-c CACHE] [-C CHANNEL]\n"
            "       [-A ACKS] [-m MEMBER] [-s PID] [-g kill|stop] [-o set|del] [-x MODE]\n"
            "       [-S PID,PID,...] [-G GETS]\n"
            "modes: fill dellat delthru writelat writethru page subscriber buslat busthru\n"
            "       sitemap detect converged\n");
    exit(1);
}

static void parse_ports(options_t *o, char *s)
{
    for (char *p = strtok(s, ","); p; p = strtok(NULL, ",")) {
        if (o->nports == MAX_PORTS)
            die("too many ports");
        o->ports[o->nports++] = atoi(p);
    }
}

int main(int argc, char **argv)
{
    options_t o = {.host = "127.0.0.1", .channel = "cohort-bench-inval",
                   .acks = "cohort-bench-acks", .prefix = "bench:", .n = 10000,
                   .window = 1000, .rounds = 20, .seconds = 120, .sig = "kill",
                   .op = "set", .expect = "replicate", .gets = 20};
    if (argc < 2)
        usage();
    o.mode = argv[1];
    int ch;
    optind = 2;
    while ((ch = getopt(argc, argv, "h:P:k:n:w:r:t:b:c:C:A:m:s:g:o:x:S:G:")) != -1) {
        switch (ch) {
        case 'h': o.host = optarg; break;
        case 'P': parse_ports(&o, optarg); break;
        case 'k': o.prefix = optarg; break;
        case 'n': o.n = atol(optarg); break;
        case 'w': o.window = atol(optarg); break;
        case 'r': o.rounds = atol(optarg); break;
        case 't': o.seconds = atof(optarg); break;
        case 'b': o.bus = atoi(optarg); break;
        case 'c': o.cache = atoi(optarg); break;
        case 'C': o.channel = optarg; break;
        case 'A': o.acks = optarg; break;
        case 'm': o.member = optarg; break;
        case 's': o.pid = atol(optarg); break;
        case 'g': o.sig = optarg; break;
        case 'o': o.op = optarg; break;
        case 'x': o.expect = optarg; break;
        case 'S':
            for (char *p = strtok(optarg, ","); p; p = strtok(NULL, ","))
                if (o.npids < MAX_PORTS)
                    o.pids[o.npids++] = atol(p);
            break;
        case 'G': o.gets = atol(optarg); break;
        default: usage();
        }
    }
    if (o.n <= 0 || o.window <= 1 || o.rounds <= 0 || o.seconds <= 0 || o.gets < 0)
        usage();
    static const struct {
        const char *name;
        void (*run)(options_t *);
        int need_ports;
    } modes[] = {
        {"fill", mode_fill, 1},         {"dellat", mode_dellat, 1},
        {"delthru", mode_delthru, 1},   {"subscriber", mode_subscriber, 0},
        {"buslat", mode_buslat, 1},     {"busthru", mode_busthru, 1},
        {"sitemap", mode_sitemap, 1},   {"detect", mode_detect, 1},
        {"converged", mode_converged, 1}, {"writelat", mode_writelat, 1},
        {"writethru", mode_writethru, 1}, {"page", mode_page, 1},
    };
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (strcmp(o.mode, modes[i].name) != 0)
            continue;
        if (modes[i].need_ports && o.nports == 0)
            usage();
        if (strcmp(o.mode, "detect") == 0 && (!o.member || o.pid <= 0))
            usage();
        modes[i].run(&o);
        fflush(stdout);
        return wrong ? 3 : 0;
    }
    usage();
    return 1;
}
