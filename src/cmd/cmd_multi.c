/* cmd_multi: MULTI, EXEC, DISCARD: transactions with redis-server 7's
 * semantics and reply bytes (src/multi.c there).
 *
 * Owns: each client's queue of commands between MULTI and EXEC (c->multi:
 * copies of the arguments, a "refused while queueing" mark, the bytes held),
 * and running the queue at EXEC.
 * Never: runs a queued command before EXEC, lets another client's command in
 * between two of a transaction's (the loop is this node's only thread and
 * EXEC runs the whole queue in one call), or lets EXEC's reply out before
 * every flush the transaction made is applied by every member: each queued
 * command's flush holds the client (client_block, net/blocked.c) with its
 * token, the largest token wins, and members acknowledge flushes in order,
 * so the EXEC array, written after the last command ran, goes out only once
 * the last flush is applied everywhere.
 *
 * Invariants (tests/integration/corpus/multi.txt against redis-server;
 * tests/integration/test_databases.py for the cluster):
 *  - c->multi != NULL exactly between a MULTI and its EXEC / DISCARD / RESET
 *    or the client's end (multi_client_closed frees it).
 *  - a command refused while queued (unknown, arity, auth, OOM) marks the
 *    transaction; EXEC then replies EXECABORT and runs nothing.
 *  - the bytes a queue holds are bounded by [client] query_buffer_limit: past
 *    it the command is refused (the transaction then aborts at EXEC) and the
 *    queue is freed.
 *  - WATCH: EXEC asks exec_watch_aborted() before running anything; DISCARD,
 *    EXEC, RESET and the client's end call multi_unwatch(). */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "mem.h"

/* One queued command: argl, argv and the argument bytes in one allocation. */
typedef struct queued {
    int argc;
    const char **argv;
    size_t *argl;
} queued_t;

typedef struct multi_state {
    queued_t *cmds;
    size_t n, cap;
    size_t bytes; /* held by the queue, counted against query_buffer_limit */
    int dirty;    /* a command was refused while queueing: EXEC aborts */
} multi_state_t;

/* Bytes a queued command costs beyond its argument bytes. */
#define QUEUED_OVERHEAD 64

int multi_active(const client_t *c)
{
    return c->multi != NULL;
}

long multi_count(const client_t *c)
{
    const multi_state_t *m = c->multi;
    return m ? (long)m->n : -1;
}

static void free_queue(multi_state_t *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->cmds[i].argl); /* the one allocation of the command */
    free(m->cmds);
    m->cmds = NULL;
    m->n = m->cap = 0;
    m->bytes = 0;
}

/* Ends c's transaction, if any: the queue freed, c out of MULTI. */
static void multi_end(client_t *c)
{
    multi_state_t *m = c->multi;
    if (!m)
        return;
    free_queue(m);
    free(m);
    c->multi = NULL;
}

/* WATCH (cmd_tracking.c) keeps the keys a client watches: it forgets them
 * here. */
static void multi_unwatch(client_t *c)
{
    cmd_unwatch_all(c);
}

/* 1 when a key the client WATCHes changed since WATCH (EXEC then replies a
 * null array and runs nothing); unwatches either way. */
static int exec_watch_aborted(client_t *c)
{
    return cmd_watch_exec_check(c);
}

void multi_queue(client_t *c, int argc, const char **argv, const size_t *argl)
{
    multi_state_t *m = c->multi;
    resp_add_simple(&c->out, "QUEUED");
    if (m->dirty) /* EXEC will abort: no sense keeping it (as redis-server) */
        return;
    size_t bytes = QUEUED_OVERHEAD + (size_t)argc * (sizeof(char *) + sizeof(size_t) + 1);
    for (int i = 0; i < argc; i++)
        bytes += argl[i];
    size_t limit = cmd_node(c)->cfg->query_buffer_limit;
    if (limit && m->bytes + bytes > limit) {
        c->out.end -= strlen("+QUEUED\r\n"); /* refused, not queued */
        resp_add_errorf(&c->out,
                        "ERR transaction too large: its queued commands exceed "
                        "query_buffer_limit (%zu bytes)",
                        limit);
        free_queue(m);
        m->dirty = 1;
        return;
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 4;
        m->cmds = xrealloc(m->cmds, m->cap * sizeof(*m->cmds));
    }
    size_t vec = (size_t)argc * (sizeof(size_t) + sizeof(char *));
    char *mem = xmalloc(vec + bytes);
    queued_t *q = &m->cmds[m->n++];
    q->argc = argc;
    q->argl = (size_t *)mem;
    q->argv = (const char **)(mem + (size_t)argc * sizeof(size_t));
    char *p = mem + vec;
    for (int i = 0; i < argc; i++) {
        q->argl[i] = argl[i];
        memcpy(p, argv[i], argl[i]);
        p[argl[i]] = '\0';
        q->argv[i] = p;
        p += argl[i] + 1;
    }
    m->bytes += bytes;
}

void multi_refused(client_t *c, int is_exec, size_t out_before)
{
    multi_state_t *m = c->multi;
    if (!is_exec) {
        if (m)
            m->dirty = 1;
        return;
    }
    /* EXEC refused itself: redis-server's execCommandAbort, the error's text
     * (without its "-" and "ERR ") after "because of: ". */
    size_t len = buf_len(&c->out) - out_before;
    char *why = xmalloc(len + 1);
    memcpy(why, buf_head(&c->out) + out_before, len);
    why[len] = '\0';
    c->out.end = c->out.start + out_before;
    const char *text = why + (why[0] == '-');
    if (strncmp(text, "ERR ", 4) == 0)
        text += 4;
    size_t tlen = strcspn(text, "\r\n");
    resp_add_errorf(&c->out, "EXECABORT Transaction discarded because of: %.*s", (int)tlen,
                    text);
    free(why);
    multi_end(c);
    multi_unwatch(c);
}

void multi_reset(client_t *c)
{
    multi_end(c);
    multi_unwatch(c);
}

void multi_client_closed(client_t *c)
{
    multi_reset(c);
}

CMD_HANDLER(cmd_multi)
{
    (void)argc, (void)argv, (void)argl;
    if (c->multi) {
        resp_add_error(&c->out, "ERR MULTI calls can not be nested");
        return;
    }
    c->multi = xcalloc(1, sizeof(multi_state_t));
    resp_add_ok(&c->out);
}

CMD_HANDLER(cmd_discard)
{
    (void)argc, (void)argv, (void)argl;
    if (!c->multi) {
        resp_add_error(&c->out, "ERR DISCARD without MULTI");
        return;
    }
    multi_reset(c);
    resp_add_ok(&c->out);
}

/* Runs the queue: one array of the commands' replies, each command in the
 * client's database at that point (a queued SELECT moves the rest). */
CMD_HANDLER(cmd_exec)
{
    (void)argc, (void)argv, (void)argl;
    multi_state_t *m = c->multi;
    if (!m) {
        resp_add_error(&c->out, "ERR EXEC without MULTI");
        return;
    }
    c->multi = NULL; /* the queued commands run, they are not queued again */
    if (m->dirty) {
        resp_add_error(&c->out, "EXECABORT Transaction discarded because of previous errors.");
    } else if (exec_watch_aborted(c)) {
        resp_add_null_array(&c->out, c->proto);
    } else {
        multi_unwatch(c);
        resp_add_array(&c->out, m->n);
        c->cmd_flags |= CMDC_ATOMIC; /* nothing in between: its commands cannot wait */
        cluster_unit_begin(cmd_node(c)->cluster); /* the members apply it in one go */
        for (size_t i = 0; i < m->n; i++)
            commands_exec_queued(c, m->cmds[i].argc, m->cmds[i].argv, m->cmds[i].argl);
        cluster_unit_end(cmd_node(c)->cluster);
        c->cmd_flags &= ~CMDC_ATOMIC;
    }
    free_queue(m);
    free(m);
    multi_unwatch(c);
}
