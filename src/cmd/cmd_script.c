/* cmd_script: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT, on the node's
 * script engine (script/script.h).
 *
 * Owns: the engine's host side: the client a script's commands run as (one
 * per node, never connected), running them through the command table, which
 * commands a script may call, and moving the waits of its writes to the
 * calling client, so EVAL replies once its flushes are acknowledged like any
 * write.
 * Never: runs a scripting command from a script, or serves other clients
 * while a script runs: the loop is this node's only thread, so a script runs
 * to its end atomically. A script past lua-time-limit that has not written is
 * killed by the node itself (no other client can reach it to send SCRIPT
 * KILL); one that wrote runs on, as redis-server's does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cmd.h"
#include "mem.h"
#include "script.h"

/* What the engine's callbacks need while a script runs. */
typedef struct script_ctx {
    node_t *node;
    client_t *caller;   /* the client running EVAL (its protocol, its waits) */
    int64_t started_ms; /* clock_mono_ms() when the script started */
} script_ctx_t;

/* How many busy thresholds (lua-time-limit) a script may run before the node
 * kills it itself. */
#define KILL_AFTER_BUSY 10

static script_ctx_t ctx; /* one engine per process, one script at a time */

static int host_flags(void *ud, int argc, const char **argv, const size_t *argl)
{
    (void)ud;
    command_t *cmd = commands_lookup(argv[0], argl[0]);
    if (!cmd)
        return SCRIPT_CMD_UNKNOWN;
    if ((cmd->arity > 0 && argc != cmd->arity) || argc < -cmd->arity)
        return SCRIPT_CMD_BADARITY;
    if (cmd->flags & CMD_NOSCRIPT)
        return SCRIPT_CMD_NOSCRIPT;
    int bits = 0;
    if (cmd->flags & CMD_WRITE)
        bits |= SCRIPT_CMD_WRITE;
    if (strcmp(cmd->name, "publish") == 0 || strcmp(cmd->name, "spublish") == 0)
        bits |= SCRIPT_CMD_MAY_REPLICATE;
    return bits;
}

static int host_call(void *ud, int argc, const char **argv, const size_t *argl, int resp,
                     buf_t *reply)
{
    script_ctx_t *x = ud;
    client_t *f = x->node->script_client;
    f->proto = resp;
    buf_clear(&f->out);
    f->write_seq = 0;
    commands_execute(x->node, f, argc, argv, argl);
    buf_append(reply, buf_head(&f->out), buf_len(&f->out));
    buf_clear(&f->out);
    /* A flush the script made: its reply is the caller's to hold. */
    client_block(x->caller, client_unblock_take(f));
    if (f->write_seq > x->caller->write_seq) /* and WAIT counts its writes */
        x->caller->write_seq = f->write_seq;
    return 0;
}

/* Nobody can send SCRIPT KILL while the loop runs the script: past ten times
 * the busy threshold the node kills it itself (refused, UNKILLABLE, once the
 * script wrote: it then runs to its end). */
static void host_busy(void *ud)
{
    script_ctx_t *x = ud;
    if (clock_mono_ms() - x->started_ms < KILL_AFTER_BUSY * SCRIPT_DEFAULT_BUSY_MS)
        return;
    buf_t ignored;
    buf_init(&ignored);
    script_kill(x->node->script, &ignored); /* refused once the script wrote */
    buf_free(&ignored);
}

static client_t *new_script_client(node_t *n)
{
    client_t *f = xcalloc(1, sizeof(*f));
    f->server = n->server;
    f->ctx = n;
    f->proto = 2;
    f->authenticated = 1;
    f->cmd_flags = CMDC_ATOMIC; /* a script's commands cannot wait */
    snprintf(f->addr, sizeof(f->addr), "lua");
    buf_init(&f->in);
    buf_init(&f->out);
    return f;
}

static script_engine_t *engine(client_t *c)
{
    node_t *n = cmd_node(c);
    if (n->script)
        return n->script;
    script_host_t host = {&ctx, host_call, host_flags, host_busy};
    script_limits_t lim = {SCRIPT_DEFAULT_BUSY_MS, SCRIPT_DEFAULT_MAX_MEMORY,
                           SCRIPT_DEFAULT_MAX_SCRIPT_LEN, "7.0.15"};
    char err[256];
    n->script = script_new(&host, &lim, err, sizeof(err));
    if (!n->script) {
        resp_add_errorf(&c->out, "ERR scripting is not available: %s", err);
        return NULL;
    }
    n->script_client = new_script_client(n);
    return n->script;
}

static void run(client_t *c, int argc, const char **argv, const size_t *argl)
{
    script_engine_t *e = engine(c);
    if (!e)
        return;
    ctx.node = cmd_node(c);
    ctx.caller = c;
    ctx.started_ms = clock_mono_ms();
    cmd_node(c)->script_client->server = cmd_node(c)->server;
    cmd_node(c)->script_client->db = c->db; /* a SELECT in the script is its own */
    cluster_unit_begin(ctx.node->cluster); /* its writes reach the members as one */
    script_command(e, argc, argv, argl, c->proto, &c->out);
    cluster_unit_end(ctx.node->cluster);
    ctx.caller = NULL;
    cmd_after_write(c);
}

CMD_HANDLER(cmd_eval)
{
    run(c, argc, argv, argl);
}

CMD_HANDLER(cmd_script)
{
    run(c, argc, argv, argl);
}
