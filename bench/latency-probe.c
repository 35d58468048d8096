/* latency-probe: measures the round-trip time of single commands.
 *
 * Owns: one hiredis connection, the timing loop and the statistics printed
 * at the end (as "name value" lines a script can read).
 * Never: pipelines the measured command (one request in flight, so each
 * sample is one round trip); never runs unbounded (a time and a count limit
 * always apply).
 *
 * Two modes:
 *
 *   latency-probe get -p PORT [-h HOST] [-k PREFIX] [-n KEYS] [-i GAP_US]
 *                     [-t MAX_SECONDS] [-m MAX_SAMPLES] [-w WINDOW_MS]
 *     Sets KEYS probe keys (PREFIX0 .. PREFIX<KEYS-1>), prints "ready", then
 *     sends GET of a random probe key, one at a time, until SIGTERM or SIGINT,
 *     MAX_SECONDS or MAX_SAMPLES. A GET that does not find its key counts as
 *     a miss. Prints samples, misses, errors, max, p50, p99, p99.9, the number
 *     of samples over 1 ms and 10 ms, and the ten worst samples with the time
 *     at which each was sent. Every WINDOW_MS (default 500) it also sends
 *     DBSIZE (not timed) and prints, at the end, one "window" line per
 *     period: seconds since the start, keys in the server, samples, samples
 *     over 1 ms, and the largest sample in microseconds, so a slow stretch
 *     can be matched to the table's size.
 *
 *   latency-probe flush -p PORT [-h HOST] -k PREFIX [-n KEYS] [-r ROUNDS]
 *                       [-M flushprefix|async|del|scan] [-t MAX_SECONDS]
 *     Each round sets KEYS keys PREFIX0 .. PREFIX<KEYS-1> (pipelined, not
 *     timed), then times removing them all:
 *       flushprefix  FLUSHPREFIX PREFIX (its reply, the count, waits for the
 *                    node's sweep of its table)
 *       async        FLUSHPREFIX PREFIX ASYNC (+OK once the keys are gone;
 *                    then, not timed, EXISTS of each key must say 0)
 *       del          DEL with every key named (what a Redis user does who
 *                    keeps the list of keys)
 *       scan         SCAN ... MATCH PREFIX* COUNT 1000 to the end, then one
 *                    DEL of what was found (a Redis user without the list)
 *     and checks that the reply counts KEYS removed. The server's own time
 *     for the command comes from INFO commandstats (usec before and after);
 *     -1 when the server does not report it. Prints one line per round and
 *     the median and max of both.
 *
 * Exit status: 0, 1 on a connection or usage error, 3 when a reply was
 * wrong (an error reply, or a removal count other than KEYS).
 */
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WORST_KEPT 10

typedef struct options {
    const char *mode;
    const char *host;
    int port;
    const char *prefix;
    long keys;
    long gap_us;
    double max_seconds;
    long max_samples;
    long rounds;
    const char *method;
    long window_ms;
} options_t;

typedef struct window {
    double at_s;         /* start, seconds since the first sample */
    long long keys;      /* DBSIZE at its end, -1 if unknown */
    long samples;
    long over_1ms;
    uint64_t max_ns;
} window_t;

typedef struct worst {
    uint64_t ns;
    double at_s; /* seconds since the first sample */
} worst_t;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of n sorted values, nearest rank. */
static uint64_t quantile(const uint64_t *sorted, size_t n, double q) {
    if (n == 0) return 0;
    size_t rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

static void usage(void) {
    fprintf(stderr,
            "usage: latency-probe get -p PORT [-h HOST] [-k PREFIX] [-n KEYS] [-i GAP_US]\n"
            "                         [-t MAX_SECONDS] [-m MAX_SAMPLES] [-w WINDOW_MS]\n"
            "       latency-probe flush -p PORT [-h HOST] -k PREFIX [-n KEYS] [-r ROUNDS]\n"
            "                         [-M flushprefix|async|del|scan] [-t MAX_SECONDS]\n");
}

/* Parses argv into o. Returns 0, or -1 after printing the usage. */
static int parse_args(int argc, char **argv, options_t *o) {
    int ch;
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->prefix = "probe:";
    o->keys = 1000;
    o->max_seconds = 120;
    o->max_samples = 5000000;
    o->rounds = 20;
    o->method = "flushprefix";
    o->window_ms = 500;
    if (argc < 2) {
        usage();
        return -1;
    }
    o->mode = argv[1];
    optind = 2;
    while ((ch = getopt(argc, argv, "h:p:k:n:i:t:m:r:M:w:")) != -1) {
        switch (ch) {
        case 'h': o->host = optarg; break;
        case 'p': o->port = atoi(optarg); break;
        case 'k': o->prefix = optarg; break;
        case 'n': o->keys = atol(optarg); break;
        case 'i': o->gap_us = atol(optarg); break;
        case 't': o->max_seconds = atof(optarg); break;
        case 'm': o->max_samples = atol(optarg); break;
        case 'r': o->rounds = atol(optarg); break;
        case 'M': o->method = optarg; break;
        case 'w': o->window_ms = atol(optarg); break;
        default: usage(); return -1;
        }
    }
    if ((strcmp(o->mode, "get") != 0 && strcmp(o->mode, "flush") != 0) || o->port <= 0 ||
        o->port > 65535 || o->keys <= 0 || o->keys > 10000000 || o->gap_us < 0 ||
        o->max_seconds <= 0 || o->max_samples <= 0 || o->rounds <= 0 || o->rounds > 100000 || o->window_ms <= 0 ||
        strlen(o->prefix) > 200) {
        usage();
        return -1;
    }
    return 0;
}

static redisContext *connect_to(const options_t *o) {
    struct timeval tv = {10, 0};
    redisContext *ctx = redisConnectWithTimeout(o->host, o->port, tv);
    if (ctx == NULL || ctx->err) {
        fprintf(stderr, "latency-probe: cannot connect to %s:%d: %s\n", o->host, o->port,
                ctx ? ctx->errstr : "out of memory");
        if (ctx) redisFree(ctx);
        return NULL;
    }
    redisSetTimeout(ctx, tv);
    return ctx;
}

/* Sets PREFIX0 .. PREFIX<keys-1> to a short value, pipelined.
 * Returns 0, or -1 after printing what failed. */
static int fill_keys(redisContext *ctx, const char *prefix, long keys) {
    char key[256];
    const char *argv[3] = {"SET", key, "probe-value"};
    size_t argl[3] = {3, 0, 11};
    long sent = 0;
    while (sent < keys) {
        long batch = 0;
        for (; batch < 1000 && sent + batch < keys; batch++) {
            argl[1] = (size_t)snprintf(key, sizeof key, "%s%ld", prefix, sent + batch);
            redisAppendCommandArgv(ctx, 3, argv, argl);
        }
        for (long i = 0; i < batch; i++) {
            redisReply *r = NULL;
            if (redisGetReply(ctx, (void **)&r) != REDIS_OK) {
                fprintf(stderr, "latency-probe: fill: %s\n", ctx->errstr);
                return -1;
            }
            int bad = r->type == REDIS_REPLY_ERROR;
            if (bad) fprintf(stderr, "latency-probe: fill: %s\n", r->str);
            freeReplyObject(r);
            if (bad) return -1;
        }
        sent += batch;
    }
    return 0;
}

/* Closes window w: asks the server for DBSIZE (untimed) and appends w to
 * *list. Returns 0, or -1 when out of memory. */
static int close_window(redisContext *ctx, window_t *w, window_t **list, size_t *n, size_t *cap) {
    redisReply *r = redisCommand(ctx, "DBSIZE");
    w->keys = (r != NULL && r->type == REDIS_REPLY_INTEGER) ? r->integer : -1;
    if (r) freeReplyObject(r);
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 256;
        window_t *nl = realloc(*list, ncap * sizeof *nl);
        if (nl == NULL) return -1;
        *list = nl;
        *cap = ncap;
    }
    (*list)[(*n)++] = *w;
    return 0;
}

/* Keeps the WORST_KEPT largest samples, largest first. */
static void note_worst(worst_t *w, uint64_t ns, double at_s) {
    if (ns <= w[WORST_KEPT - 1].ns) return;
    int i = WORST_KEPT - 1;
    while (i > 0 && w[i - 1].ns < ns) {
        w[i] = w[i - 1];
        i--;
    }
    w[i].ns = ns;
    w[i].at_s = at_s;
}

static int run_get(const options_t *o) {
    redisContext *ctx = connect_to(o);
    if (ctx == NULL) return 1;
    if (fill_keys(ctx, o->prefix, o->keys) != 0) {
        redisFree(ctx);
        return 1;
    }

    /* Every probe command is formatted once, before timing starts. */
    char **cmds = calloc((size_t)o->keys, sizeof *cmds);
    int *cmdlen = calloc((size_t)o->keys, sizeof *cmdlen);
    uint64_t *samples = malloc((size_t)o->max_samples * sizeof *samples);
    if (cmds == NULL || cmdlen == NULL || samples == NULL) {
        fprintf(stderr, "latency-probe: out of memory\n");
        return 1;
    }
    for (long i = 0; i < o->keys; i++) {
        char key[256];
        snprintf(key, sizeof key, "%s%ld", o->prefix, i);
        cmdlen[i] = redisFormatCommand(&cmds[i], "GET %s", key);
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    printf("ready\n");
    fflush(stdout);

    worst_t worst[WORST_KEPT];
    memset(worst, 0, sizeof worst);
    window_t win = {0, -1, 0, 0, 0}, *windows = NULL;
    size_t nwin = 0, capwin = 0;
    uint64_t window_ns = (uint64_t)o->window_ms * 1000000ull, win_start;
    long n = 0, misses = 0, errors = 0;
    uint64_t seed = now_ns() | 1;
    uint64_t start = now_ns();
    uint64_t deadline = start + (uint64_t)(o->max_seconds * 1e9);
    win_start = start;
    int rc = 0;
    while (!stop_requested && n < o->max_samples) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        long k = (long)(seed % (uint64_t)o->keys);
        redisReply *r = NULL;
        uint64_t t0 = now_ns();
        redisAppendFormattedCommand(ctx, cmds[k], (size_t)cmdlen[k]);
        int ok = redisGetReply(ctx, (void **)&r) == REDIS_OK;
        uint64_t t1 = now_ns();
        if (!ok) {
            fprintf(stderr, "latency-probe: GET: %s\n", ctx->errstr);
            rc = 1;
            break;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            if (errors == 0) fprintf(stderr, "latency-probe: GET: %s\n", r->str);
            errors++;
        } else if (r->type != REDIS_REPLY_STRING) {
            misses++;
        }
        freeReplyObject(r);
        samples[n++] = t1 - t0;
        note_worst(worst, t1 - t0, (double)(t0 - start) / 1e9);
        win.samples++;
        if (t1 - t0 > 1000000) win.over_1ms++;
        if (t1 - t0 > win.max_ns) win.max_ns = t1 - t0;
        if (t1 - win_start >= window_ns) {
            win.at_s = (double)(win_start - start) / 1e9;
            if (close_window(ctx, &win, &windows, &nwin, &capwin) != 0) break;
            memset(&win, 0, sizeof win);
            win_start = now_ns();
        }
        if (t1 >= deadline) break;
        if (o->gap_us > 0) {
            struct timespec gap = {o->gap_us / 1000000, (o->gap_us % 1000000) * 1000};
            nanosleep(&gap, NULL);
        }
    }
    double secs = (double)(now_ns() - start) / 1e9;
    if (win.samples > 0 && !ctx->err) {
        win.at_s = (double)(win_start - start) / 1e9;
        close_window(ctx, &win, &windows, &nwin, &capwin);
    }

    qsort(samples, (size_t)n, sizeof *samples, cmp_u64);
    long over1 = 0, over10 = 0;
    for (long i = 0; i < n; i++) {
        if (samples[i] > 1000000) over1++;
        if (samples[i] > 10000000) over10++;
    }
    printf("samples %ld\n", n);
    printf("seconds %.3f\n", secs);
    printf("misses %ld\n", misses);
    printf("errors %ld\n", errors);
    printf("min_us %.1f\n", n ? (double)samples[0] / 1e3 : 0.0);
    printf("p50_us %.1f\n", (double)quantile(samples, (size_t)n, 0.50) / 1e3);
    printf("p99_us %.1f\n", (double)quantile(samples, (size_t)n, 0.99) / 1e3);
    printf("p999_us %.1f\n", (double)quantile(samples, (size_t)n, 0.999) / 1e3);
    printf("max_us %.1f\n", n ? (double)samples[n - 1] / 1e3 : 0.0);
    printf("over_1ms %ld\n", over1);
    printf("over_10ms %ld\n", over10);
    for (int i = 0; i < WORST_KEPT && worst[i].ns > 0; i++)
        printf("worst %.1f_us_at_%.3f_s\n", (double)worst[i].ns / 1e3, worst[i].at_s);

    for (size_t i = 0; i < nwin; i++)
        printf("window %.1f %lld %ld %ld %.1f\n", windows[i].at_s, windows[i].keys,
               windows[i].samples, windows[i].over_1ms, (double)windows[i].max_ns / 1e3);

    free(windows);
    for (long i = 0; i < o->keys; i++) redisFreeCommand(cmds[i]);
    free(cmds);
    free(cmdlen);
    free(samples);
    redisFree(ctx);
    if (rc == 0 && errors > 0) rc = 3;
    return rc;
}

/* Reads the server's total usec for the commands in names (a NULL-ended
 * list) from INFO commandstats and adds them up. A command the section does
 * not list counts 0 (redis-server lists only commands called once) unless
 * must_exist is set. Returns the sum, or -1 when the server reports no
 * commandstats, or must_exist is set and a command is missing. */
static long long server_usec(redisContext *ctx, const char *const *names, int must_exist) {
    redisReply *r = redisCommand(ctx, "INFO commandstats");
    long long usec = -1;
    if (r == NULL) return -1;
    if (r->type == REDIS_REPLY_STRING && strstr(r->str, "cmdstat_") != NULL) {
        usec = 0;
        for (int i = 0; names[i] != NULL; i++) {
            char field[64];
            snprintf(field, sizeof field, "cmdstat_%s:", names[i]);
            const char *p = strstr(r->str, field);
            if (p == NULL && must_exist) {
                usec = -1;
                break;
            }
            if (p == NULL) continue;
            const char *u = strstr(p, "usec=");
            const char *eol = strchr(p, '\n');
            if (u != NULL && (eol == NULL || u < eol)) usec += atoll(u + 5);
        }
    }
    freeReplyObject(r);
    return usec;
}

/* The median of n sorted values (the mean of the middle two when n is even). */
static double median(const uint64_t *sorted, size_t n) {
    if (n == 0) return 0;
    if (n % 2) return (double)sorted[n / 2];
    return ((double)sorted[n / 2 - 1] + (double)sorted[n / 2]) / 2;
}

/* Removes the prefix's keys by SCAN + DEL. Returns the DEL reply's count,
 * or -1 on an error. */
static long long scan_and_del(redisContext *ctx, const char *prefix, long keys) {
    char pattern[256], cursor[32] = "0";
    snprintf(pattern, sizeof pattern, "%s*", prefix);
    size_t cap = (size_t)keys + 16, n = 0;
    char **found = calloc(cap + 1, sizeof *found);
    size_t *foundl = calloc(cap + 1, sizeof *foundl);
    long long removed = -1;
    if (found == NULL || foundl == NULL) goto out;
    found[0] = "DEL";
    foundl[0] = 3;
    for (int guard = 0; guard < 10000000; guard++) {
        redisReply *r = redisCommand(ctx, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r) freeReplyObject(r);
            goto out;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        redisReply *ks = r->element[1];
        for (size_t i = 0; i < ks->elements && n < cap; i++) {
            found[n + 1] = strdup(ks->element[i]->str);
            foundl[n + 1] = ks->element[i]->len;
            n++;
        }
        freeReplyObject(r);
        if (strcmp(cursor, "0") == 0) break;
    }
    if (n > 0) {
        redisReply *r = redisCommandArgv(ctx, (int)n + 1, (const char **)found, foundl);
        if (r != NULL && r->type == REDIS_REPLY_INTEGER) removed = r->integer;
        if (r) freeReplyObject(r);
    } else {
        removed = 0;
    }
out:
    for (size_t i = 0; i < n; i++) free(found[i + 1]);
    free(found);
    free(foundl);
    return removed;
}

/* How many of the n keys names[1..n] exist (EXISTS, not timed). */
static long count_existing(redisContext *ctx, char **names, size_t *namel, long n) {
    names[0] = "EXISTS";
    namel[0] = 6;
    redisReply *r = redisCommandArgv(ctx, (int)n + 1, (const char **)names, namel);
    long found = r != NULL && r->type == REDIS_REPLY_INTEGER ? (long)r->integer : n;
    if (r) freeReplyObject(r);
    names[0] = "DEL";
    namel[0] = 3;
    return found;
}

static int run_flush(const options_t *o) {
    static const char *const flushprefix_stats[] = {"flushprefix", NULL};
    static const char *const del_stats[] = {"del", NULL};
    static const char *const scan_stats[] = {"scan", "del", NULL};
    const char *const *info_names;
    if (strcmp(o->method, "flushprefix") == 0 || strcmp(o->method, "async") == 0)
        info_names = flushprefix_stats;
    else if (strcmp(o->method, "del") == 0) info_names = del_stats;
    else if (strcmp(o->method, "scan") == 0) info_names = scan_stats;
    else {
        usage();
        return 1;
    }
    redisContext *ctx = connect_to(o);
    if (ctx == NULL) return 1;

    /* The DEL command with every key named, built once. */
    char **names = calloc((size_t)o->keys + 1, sizeof *names);
    size_t *namel = calloc((size_t)o->keys + 1, sizeof *namel);
    uint64_t *rtt = calloc((size_t)o->rounds, sizeof *rtt);
    long long *srv = calloc((size_t)o->rounds, sizeof *srv);
    if (names == NULL || namel == NULL || rtt == NULL || srv == NULL) return 1;
    names[0] = "DEL";
    namel[0] = 3;
    for (long i = 0; i < o->keys; i++) {
        char key[256];
        namel[i + 1] = (size_t)snprintf(key, sizeof key, "%s%ld", o->prefix, i);
        names[i + 1] = strdup(key);
    }

    int rc = 0;
    long done = 0;
    uint64_t deadline = now_ns() + (uint64_t)(o->max_seconds * 1e9);
    for (long round = 0; round < o->rounds; round++) {
        if (now_ns() > deadline) {
            fprintf(stderr, "latency-probe: time limit reached after %ld rounds\n", round);
            break;
        }
        if (fill_keys(ctx, o->prefix, o->keys) != 0) {
            rc = 1;
            break;
        }
        long long before = server_usec(ctx, info_names, 0);
        long long removed = -1;
        uint64_t t0 = now_ns();
        if (strcmp(o->method, "flushprefix") == 0) {
            redisReply *r = redisCommand(ctx, "FLUSHPREFIX %s", o->prefix);
            if (r != NULL && r->type == REDIS_REPLY_INTEGER) removed = r->integer;
            else if (r != NULL && r->type == REDIS_REPLY_ERROR)
                fprintf(stderr, "latency-probe: FLUSHPREFIX: %s\n", r->str);
            if (r) freeReplyObject(r);
        } else if (strcmp(o->method, "async") == 0) {
            redisReply *r = redisCommand(ctx, "FLUSHPREFIX %s ASYNC", o->prefix);
            int ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
            if (r) freeReplyObject(r);
            if (ok) removed = o->keys - count_existing(ctx, names, namel, o->keys);
        } else if (strcmp(o->method, "del") == 0) {
            redisReply *r =
                redisCommandArgv(ctx, (int)o->keys + 1, (const char **)names, namel);
            if (r != NULL && r->type == REDIS_REPLY_INTEGER) removed = r->integer;
            if (r) freeReplyObject(r);
        } else {
            removed = scan_and_del(ctx, o->prefix, o->keys);
        }
        uint64_t t1 = now_ns();
        if (ctx->err) {
            fprintf(stderr, "latency-probe: %s\n", ctx->errstr);
            rc = 1;
            break;
        }
        long long after = server_usec(ctx, info_names, 1);
        rtt[done] = t1 - t0;
        srv[done] = (before >= 0 && after >= 0) ? after - before : -1;
        printf("round %ld rtt_us %.1f server_us %lld removed %lld\n", round + 1,
               (double)rtt[done] / 1e3, srv[done], removed);
        fflush(stdout);
        done++;
        if (removed != o->keys) {
            fprintf(stderr, "latency-probe: %s removed %lld keys, expected %ld\n", o->method,
                    removed, o->keys);
            rc = 3;
            break;
        }
    }

    if (done > 0) {
        uint64_t *s = malloc((size_t)done * sizeof *s);
        memcpy(s, rtt, (size_t)done * sizeof *s);
        qsort(s, (size_t)done, sizeof *s, cmp_u64);
        printf("rounds %ld\n", done);
        printf("rtt_median_us %.1f\n", median(s, (size_t)done) / 1e3);
        printf("rtt_max_us %.1f\n", (double)s[done - 1] / 1e3);
        int have_srv = 1;
        for (long i = 0; i < done; i++) {
            if (srv[i] < 0) have_srv = 0;
            s[i] = srv[i] < 0 ? 0 : (uint64_t)srv[i];
        }
        qsort(s, (size_t)done, sizeof *s, cmp_u64);
        if (have_srv) {
            printf("server_median_us %.1f\n", median(s, (size_t)done));
            printf("server_max_us %llu\n", (unsigned long long)s[done - 1]);
        } else {
            printf("server_median_us n/a\n");
            printf("server_max_us n/a\n");
        }
        free(s);
    }

    for (long i = 0; i < o->keys; i++) free(names[i + 1]);
    free(names);
    free(namel);
    free(rtt);
    free(srv);
    redisFree(ctx);
    return rc;
}

int main(int argc, char **argv) {
    options_t o;
    if (parse_args(argc, argv, &o) != 0) return 1;
    if (strcmp(o.mode, "get") == 0) return run_get(&o);
    return run_flush(&o);
}
