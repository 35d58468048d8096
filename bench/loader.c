/* loader: fills a RESP server with numbered keys by pipelined SETs.
 *
 * Owns: one hiredis connection and the loop that sends SET in batches of -P
 * commands, reading every reply of a batch before the next one is sent.
 * Never: sends anything but SET (and nothing at all to an address the caller
 * did not give); stops at the first error reply and says so.
 *
 * Keys are PREFIX followed by the key number, zero-padded to WIDTH digits
 * (WIDTH 0: no padding). The defaults ("key:" and 12 digits) give 16-byte
 * names that are exactly the keys redis-benchmark -r makes from
 * "key:__rand_int__", so a prefill with this tool makes its GETs hit.
 *
 *   loader -p PORT [-h 127.0.0.1] [-n COUNT] [-s FIRST] [-k PREFIX]
 *          [-w WIDTH] [-d VALUE_BYTES] [-P PIPELINE] [-t MAX_SECONDS] [-q]
 *
 * Prints one line: "loaded N keys in S s (R keys/s)". Exit status: 0 when all
 * COUNT keys were set, 1 on an error, 2 when MAX_SECONDS ran out first.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct options {
    const char *host;
    int port;
    unsigned long long count;
    unsigned long long first;
    const char *prefix;
    int width;
    size_t value_bytes;
    int pipeline;
    double max_seconds;
    int quiet;
} options_t;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void) {
    fprintf(stderr, "usage: loader -p PORT [-h HOST] [-n COUNT] [-s FIRST] [-k PREFIX] "
                    "[-w WIDTH] [-d VALUE_BYTES] [-P PIPELINE] [-t MAX_SECONDS] [-q]\n");
}

/* Parses argv into o. Returns 0, or -1 after printing the usage. */
static int parse_args(int argc, char **argv, options_t *o) {
    int ch;
    o->host = "127.0.0.1";
    o->port = 0;
    o->count = 100000;
    o->first = 0;
    o->prefix = "key:";
    o->width = 12;
    o->value_bytes = 100;
    o->pipeline = 256;
    o->max_seconds = 600;
    o->quiet = 0;
    while ((ch = getopt(argc, argv, "h:p:n:s:k:w:d:P:t:q")) != -1) {
        switch (ch) {
        case 'h': o->host = optarg; break;
        case 'p': o->port = atoi(optarg); break;
        case 'n': o->count = strtoull(optarg, NULL, 10); break;
        case 's': o->first = strtoull(optarg, NULL, 10); break;
        case 'k': o->prefix = optarg; break;
        case 'w': o->width = atoi(optarg); break;
        case 'd': o->value_bytes = (size_t)strtoull(optarg, NULL, 10); break;
        case 'P': o->pipeline = atoi(optarg); break;
        case 't': o->max_seconds = atof(optarg); break;
        case 'q': o->quiet = 1; break;
        default: usage(); return -1;
        }
    }
    if (o->port <= 0 || o->port > 65535 || o->pipeline <= 0 || o->width < 0 || o->width > 20 ||
        o->max_seconds <= 0 || strlen(o->prefix) > 200) {
        usage();
        return -1;
    }
    return 0;
}

/* Reads n replies. Returns 0, or -1 after printing the first error. */
static int read_replies(redisContext *ctx, int n) {
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(ctx, (void **)&r) != REDIS_OK) {
            fprintf(stderr, "loader: connection error: %s\n", ctx->errstr);
            return -1;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "loader: SET failed: %s\n", r->str);
            freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
    }
    return 0;
}

int main(int argc, char **argv) {
    options_t o;
    if (parse_args(argc, argv, &o) != 0) return 1;

    struct timeval tv = {10, 0};
    redisContext *ctx = redisConnectWithTimeout(o.host, o.port, tv);
    if (ctx == NULL || ctx->err) {
        fprintf(stderr, "loader: cannot connect to %s:%d: %s\n", o.host, o.port,
                ctx ? ctx->errstr : "out of memory");
        return 1;
    }
    redisSetTimeout(ctx, tv);

    char *value = malloc(o.value_bytes + 1);
    if (value == NULL) return 1;
    for (size_t i = 0; i < o.value_bytes; i++) value[i] = (char)('a' + i % 26);
    value[o.value_bytes] = '\0';

    char key[256];
    const char *argv_set[3] = {"SET", key, value};
    size_t argl[3] = {3, 0, o.value_bytes};
    int rc = 0;
    unsigned long long done = 0;
    double start = now_s();

    while (done < o.count) {
        int batch = 0;
        while (batch < o.pipeline && done + (unsigned long long)batch < o.count) {
            unsigned long long k = o.first + done + (unsigned long long)batch;
            int kl = snprintf(key, sizeof key, "%s%0*llu", o.prefix, o.width, k);
            argl[1] = (size_t)kl;
            if (redisAppendCommandArgv(ctx, 3, argv_set, argl) != REDIS_OK) {
                fprintf(stderr, "loader: %s\n", ctx->errstr);
                rc = 1;
                goto done;
            }
            batch++;
        }
        if (read_replies(ctx, batch) != 0) {
            rc = 1;
            goto done;
        }
        done += (unsigned long long)batch;
        if (now_s() - start > o.max_seconds) {
            fprintf(stderr, "loader: stopped after %.1f s with %llu of %llu keys\n",
                    o.max_seconds, done, o.count);
            rc = 2;
            break;
        }
    }

done:;
    double secs = now_s() - start;
    if (!o.quiet || rc != 0)
        printf("loaded %llu keys in %.3f s (%.0f keys/s)\n", done, secs,
               secs > 0 ? (double)done / secs : 0.0);
    free(value);
    redisFree(ctx);
    return rc;
}
