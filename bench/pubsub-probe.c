/* pubsub-probe: the client side of bench/pubsub-presence (hiredis, one
 * thread per subscriber connection).
 *
 *   lat  -p PUB_PORT -s SUB_PORT[,SUB_PORT...] -n N [-c CHANNEL]
 *       One subscriber per SUB_PORT; the publisher on PUB_PORT sends N
 *       messages one at a time, each carrying its send time, and waits until
 *       every subscriber got it before the next. Prints the publish-to-receive
 *       latency over all deliveries: "lat p50_us p99_us max_us count".
 *   thru -p PUB_PORT -s SUB_PORT[,SUB_PORT...] -n N [-b BYTES] [-c CHANNEL]
 *       One subscriber per SUB_PORT; the publisher pipelines N messages of
 *       BYTES bytes (default 64). Prints "thru msgs_per_s deliveries_per_s
 *       seconds": from the first publish until every subscriber got all N.
 *   join -p PORT -n N [-o OFFSET] [-m CHANNELS] [-k PREFIX]
 *       PRESENCE.JOIN of N entries, pipelined: member "user:<i>" (i from
 *       OFFSET), channel "<PREFIX><i % CHANNELS>" (default "room:" and 1000),
 *       meta "{\"n\":\"u<i>\"}". Prints "join N seconds"; every reply must be 1.
 *   list -p PORT -c CHANNEL -n ROUNDS [-C COMMAND]
 *       PRESENCE.LIST CHANNEL (or COMMAND CHANNEL, e.g. HGETALL on a
 *       redis-server for comparison) ROUNDS times. Prints "list p50_ms p99_ms
 *       elements".
 *
 * Exit status: 0; 1 on a usage or connection error, a wrong reply or a
 * timeout (60 s without progress). */
#include <stdarg.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SUBS 16

static const char *host = "127.0.0.1";
static int pub_port, sub_ports[MAX_SUBS], nsubs;
static long n = 10000;
static long offset;
static int bytes = 64, channels = 1000;
static const char *channel = "bench:chan";
static const char *prefix = "room:";
static const char *list_cmd = "PRESENCE.LIST";

static atomic_long received[MAX_SUBS];
static long *lat_ns; /* [sub * n + i] */
static atomic_int ready;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "pubsub-probe: %s\n", what);
    exit(1);
}

static redisContext *connect_to(int port)
{
    struct timeval tv = {60, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err)
        die("cannot connect");
    redisSetTimeout(c, tv);
    return c;
}

static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r)
        die("connection lost");
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "pubsub-probe: error reply: %s\n", r->str);
        exit(1);
    }
    return r;
}

typedef struct sub_arg {
    int idx;
    int latency; /* messages carry a send time */
} sub_arg_t;

static void *subscriber(void *p)
{
    sub_arg_t *a = p;
    redisContext *c = connect_to(sub_ports[a->idx]);
    freeReplyObject(cmd(c, "SUBSCRIBE %s", channel));
    atomic_fetch_add(&ready, 1);
    for (long i = 0; i < n; i++) {
        redisReply *r;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r)
            die("subscriber lost its connection or timed out");
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 3)
            die("unexpected push");
        if (a->latency)
            lat_ns[(long)a->idx * n + i] = now_ns() - strtoll(r->element[2]->str, NULL, 10);
        freeReplyObject(r);
        atomic_fetch_add(&received[a->idx], 1);
    }
    redisFree(c);
    return NULL;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Starts the subscribers and waits until the publisher's node counts all of
 * them (PUBSUB NUMSUB: the members learned the subscriptions). */
static void start_subscribers(pthread_t *t, sub_arg_t *args, int latency, redisContext *pub)
{
    for (int i = 0; i < nsubs; i++) {
        args[i] = (sub_arg_t){i, latency};
        pthread_create(&t[i], NULL, subscriber, &args[i]);
    }
    for (int tries = 0;; tries++) {
        redisReply *r = cmd(pub, "PUBSUB NUMSUB %s", channel);
        long long got = r->elements == 2 ? r->element[1]->integer : 0;
        freeReplyObject(r);
        if (atomic_load(&ready) == nsubs && got == nsubs)
            break;
        if (tries > 6000)
            die("the subscribers were never counted");
        usleep(10000);
    }
}

static void wait_all(long want)
{
    int64_t last = now_ns();
    long seen = -1;
    for (;;) {
        long total = 0, least = want;
        for (int i = 0; i < nsubs; i++) {
            long r = atomic_load(&received[i]);
            total += r;
            if (r < least)
                least = r;
        }
        if (least >= want)
            return;
        if (total != seen) {
            seen = total;
            last = now_ns();
        } else if (now_ns() - last > 60LL * 1000000000) {
            die("timed out waiting for deliveries");
        }
    }
}

static void mode_lat(void)
{
    redisContext *pub = connect_to(pub_port);
    pthread_t t[MAX_SUBS];
    sub_arg_t args[MAX_SUBS];
    lat_ns = calloc((size_t)nsubs * (size_t)n, sizeof(long));
    start_subscribers(t, args, 1, pub);
    char msg[32];
    for (long i = 0; i < n; i++) {
        snprintf(msg, sizeof(msg), "%lld", (long long)now_ns());
        freeReplyObject(cmd(pub, "PUBLISH %s %s", channel, msg));
        wait_all(i + 1);
    }
    for (int i = 0; i < nsubs; i++)
        pthread_join(t[i], NULL);
    long total = (long)nsubs * n;
    qsort(lat_ns, (size_t)total, sizeof(long), cmp_long);
    printf("lat %.1f %.1f %.1f %ld\n", lat_ns[total / 2] / 1e3, lat_ns[total * 99 / 100] / 1e3,
           lat_ns[total - 1] / 1e3, total);
    redisFree(pub);
}

static void mode_thru(void)
{
    redisContext *pub = connect_to(pub_port);
    pthread_t t[MAX_SUBS];
    sub_arg_t args[MAX_SUBS];
    start_subscribers(t, args, 0, pub);
    char *payload = malloc((size_t)bytes + 1);
    memset(payload, 'x', (size_t)bytes);
    payload[bytes] = 0;
    int64_t t0 = now_ns();
    long sent = 0, answered = 0;
    while (answered < n) {
        while (sent < n && sent - answered < 1000) {
            redisAppendCommand(pub, "PUBLISH %s %b", channel, payload, (size_t)bytes);
            sent++;
        }
        redisReply *r;
        if (redisGetReply(pub, (void **)&r) != REDIS_OK || !r)
            die("publisher lost its connection");
        freeReplyObject(r);
        answered++;
    }
    wait_all(n);
    double secs = (now_ns() - t0) / 1e9;
    for (int i = 0; i < nsubs; i++)
        pthread_join(t[i], NULL);
    printf("thru %.0f %.0f %.3f\n", n / secs, n * nsubs / secs, secs);
    free(payload);
    redisFree(pub);
}

static void mode_join(void)
{
    redisContext *c = connect_to(pub_port);
    int64_t t0 = now_ns();
    long sent = 0, answered = 0;
    char member[32], ch[64], meta[48];
    while (answered < n) {
        while (sent < n && sent - answered < 2000) {
            long i = offset + sent;
            snprintf(member, sizeof(member), "user:%ld", i);
            snprintf(ch, sizeof(ch), "%s%ld", prefix, i % channels);
            snprintf(meta, sizeof(meta), "{\"n\":\"u%ld\"}", i);
            redisAppendCommand(c, "PRESENCE.JOIN %s %s %s", ch, member, meta);
            sent++;
        }
        redisReply *r;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r)
            die("lost the connection");
        if (r->type != REDIS_REPLY_INTEGER || r->integer != 1) {
            fprintf(stderr, "pubsub-probe: PRESENCE.JOIN replied %s\n",
                    r->type == REDIS_REPLY_ERROR ? r->str : "not 1");
            exit(1);
        }
        freeReplyObject(r);
        answered++;
    }
    printf("join %ld %.3f\n", n, (now_ns() - t0) / 1e9);
    redisFree(c);
}

static void mode_list(void)
{
    redisContext *c = connect_to(pub_port);
    double *ms = calloc((size_t)n, sizeof(double));
    size_t entries = 0;
    for (long i = 0; i < n; i++) {
        int64_t t0 = now_ns();
        redisReply *r = cmd(c, "%s %s", list_cmd, channel);
        ms[i] = (now_ns() - t0) / 1e6;
        entries = r->elements;
        freeReplyObject(r);
    }
    qsort(ms, (size_t)n, sizeof(double), cmp_double);
    printf("list %.3f %.3f %zu\n", ms[n / 2], ms[n * 99 / 100], entries);
    free(ms);
    redisFree(c);
}

static void parse_ports(char *s)
{
    for (char *tok = strtok(s, ","); tok && nsubs < MAX_SUBS; tok = strtok(NULL, ","))
        sub_ports[nsubs++] = atoi(tok);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        die("usage: pubsub-probe lat|thru|join|list [options] (see the source)");
    const char *mode = argv[1];
    int opt;
    optind = 2;
    while ((opt = getopt(argc, argv, "p:s:n:b:c:o:m:k:C:")) != -1) {
        switch (opt) {
        case 'p': pub_port = atoi(optarg); break;
        case 's': parse_ports(optarg); break;
        case 'n': n = atol(optarg); break;
        case 'b': bytes = atoi(optarg); break;
        case 'c': channel = optarg; break;
        case 'o': offset = atol(optarg); break;
        case 'm': channels = atoi(optarg); break;
        case 'k': prefix = optarg; break;
        case 'C': list_cmd = optarg; break;
        default: die("unknown option");
        }
    }
    if (!pub_port || n <= 0)
        die("-p and a positive -n are needed");
    if (!strcmp(mode, "lat") || !strcmp(mode, "thru")) {
        if (!nsubs)
            die("-s is needed");
        if (!strcmp(mode, "lat"))
            mode_lat();
        else
            mode_thru();
    } else if (!strcmp(mode, "join")) {
        mode_join();
    } else if (!strcmp(mode, "list")) {
        mode_list();
    } else {
        die("unknown mode");
    }
    return 0;
}
