/* slowlog: the slow log (SLOWLOG) and its two settings.
 *
 * Owns: the entries of commands that ran at least slowlog-log-slower-than
 * microseconds (default 10000; -1 disables, 0 logs every command), newest
 * first, at most slowlog-max-len (default 128) of them; each keeps its id,
 * unix time, duration, arguments (at most 32, the last one then saying how
 * many more there were; each at most 128 bytes, then "... (N more bytes)"),
 * and the client's address and name, as redis-server keeps them.
 * One log per process: cohortd runs one node (as redis-server has one log).
 * Never: logs AUTH or HELLO (they carry passwords; the dispatcher does not
 * pass commands flagged CMD_NOAUTH), or blocks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cmd.h"
#include "mem.h"

#define SLOWLOG_MAX_ARGC 32
#define SLOWLOG_MAX_STRING 128

typedef struct slowlog_entry {
    struct slowlog_entry *next; /* older */
    long long id;
    long long time_s;
    long long usec;
    int argc;
    char **argv;
    size_t *argl;
    char *peer;
    char *name;
} slowlog_entry_t;

static struct {
    slowlog_entry_t *head; /* newest */
    size_t len;
    long long next_id;
    long long threshold_us;
    long long max_len;
} slog = {NULL, 0, 0, 10000, 128};

static void entry_free(slowlog_entry_t *e)
{
    for (int i = 0; i < e->argc; i++)
        free(e->argv[i]);
    free(e->argv);
    free(e->argl);
    free(e->peer);
    free(e->name);
    free(e);
}

/* Drops the oldest entries beyond max_len. */
static void trim(void)
{
    slowlog_entry_t **link = &slog.head;
    long long kept = 0;
    while (*link && kept < slog.max_len) {
        link = &(*link)->next;
        kept++;
    }
    slowlog_entry_t *e = *link;
    *link = NULL;
    while (e) {
        slowlog_entry_t *next = e->next;
        entry_free(e);
        slog.len--;
        e = next;
    }
}

static void copy_arg(slowlog_entry_t *e, int j, const char *arg, size_t len)
{
    if (len <= SLOWLOG_MAX_STRING) {
        e->argv[j] = xmemdup(arg, len);
        e->argl[j] = len;
        return;
    }
    char tail[64];
    int t = snprintf(tail, sizeof(tail), "... (%zu more bytes)", len - SLOWLOG_MAX_STRING);
    e->argv[j] = xmalloc(SLOWLOG_MAX_STRING + (size_t)t + 1);
    memcpy(e->argv[j], arg, SLOWLOG_MAX_STRING);
    memcpy(e->argv[j] + SLOWLOG_MAX_STRING, tail, (size_t)t + 1);
    e->argl[j] = SLOWLOG_MAX_STRING + (size_t)t;
}

void slowlog_maybe_add(client_t *c, int argc, const char **argv, const size_t *argl,
                       uint64_t usec)
{
    if (slog.threshold_us < 0 || (long long)usec < slog.threshold_us || slog.max_len == 0)
        return;
    slowlog_entry_t *e = xcalloc(1, sizeof(*e));
    e->argc = argc > SLOWLOG_MAX_ARGC ? SLOWLOG_MAX_ARGC : argc;
    e->argv = xcalloc((size_t)e->argc, sizeof(char *));
    e->argl = xcalloc((size_t)e->argc, sizeof(size_t));
    for (int j = 0; j < e->argc; j++) {
        if (e->argc != argc && j == e->argc - 1) {
            char more[64];
            int m = snprintf(more, sizeof(more), "... (%d more arguments)", argc - e->argc + 1);
            e->argv[j] = xmemdup(more, (size_t)m);
            e->argl[j] = (size_t)m;
        } else {
            copy_arg(e, j, argv[j], argl[j]);
        }
    }
    e->id = slog.next_id++;
    e->time_s = clock_wall_ms() / 1000;
    e->usec = (long long)usec;
    e->peer = xstrdup(c->addr);
    e->name = xstrdup(c->name ? c->name : "");
    e->next = slog.head;
    slog.head = e;
    slog.len++;
    trim();
}

long long slowlog_threshold_us(void)
{
    return slog.threshold_us;
}

void slowlog_set_threshold_us(long long us)
{
    slog.threshold_us = us;
}

long long slowlog_max_len(void)
{
    return slog.max_len;
}

void slowlog_set_max_len(long long n)
{
    slog.max_len = n;
    trim();
}

static void reply_entry(client_t *c, const slowlog_entry_t *e)
{
    buf_t *o = &c->out;
    resp_add_array(o, 6);
    resp_add_int(o, e->id);
    resp_add_int(o, e->time_s);
    resp_add_int(o, e->usec);
    resp_add_array(o, (size_t)e->argc);
    for (int j = 0; j < e->argc; j++)
        resp_add_bulk(o, e->argv[j], e->argl[j]);
    resp_add_bulk_str(o, e->peer);
    resp_add_bulk_str(o, e->name);
}

static const char *const slowlog_help[] = {
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
};

static void slowlog_get(client_t *c, int argc, const char **argv, const size_t *argl)
{
    long long count = 10;
    if (argc == 3) {
        if (cmd_parse_ll(argv[2], argl[2], &count) < 0 || count < -1) {
            resp_add_error(&c->out, "ERR count should be greater than or equal to -1");
            return;
        }
        if (count == -1)
            count = (long long)slog.len;
    }
    size_t n = (size_t)count < slog.len ? (size_t)count : slog.len;
    resp_add_array(&c->out, n);
    const slowlog_entry_t *e = slog.head;
    for (size_t i = 0; i < n; i++, e = e->next)
        reply_entry(c, e);
}

CMD_HANDLER(cmd_slowlog)
{
    const char *sub = argv[1];
    size_t slen = argl[1];
    if (cmd_is(sub, slen, "get") && argc <= 3) {
        slowlog_get(c, argc, argv, argl);
    } else if (cmd_is(sub, slen, "len") && argc == 2) {
        resp_add_int(&c->out, (long long)slog.len);
    } else if (cmd_is(sub, slen, "reset") && argc == 2) {
        long long keep = slog.max_len;
        slog.max_len = 0;
        trim();
        slog.max_len = keep;
        resp_add_ok(&c->out);
    } else if (cmd_is(sub, slen, "help") && argc == 2) {
        cmd_reply_help(c, slowlog_help, sizeof(slowlog_help) / sizeof(slowlog_help[0]));
    } else if (cmd_is(sub, slen, "get")) {
        resp_add_errorf(&c->out, "ERR unknown subcommand or wrong number of arguments for "
                                 "'%.*s'. Try SLOWLOG HELP.", (int)slen, sub);
    } else if (cmd_is(sub, slen, "len") ||
               cmd_is(sub, slen, "reset") || cmd_is(sub, slen, "help")) {
        cmd_reply_sub_arity(c, "slowlog", sub, slen);
    } else {
        cmd_reply_unknown_subcommand(c, sub, slen, "SLOWLOG");
    }
}
