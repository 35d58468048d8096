/* cmd_script: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT, on the node's
 * script engine (script/script.h), and what other clients get while a script
 * is busy.
 *
 * Owns: the engine's host side: the client a script's commands run as (one
 * per node, never connected), running them through the command table, which
 * commands a script may call, and moving the waits of its writes to the
 * calling client, so EVAL replies once its flushes are acknowledged like any
 * write; the busy period: once a script has run past lua-time-limit, its
 * busy callback serves the other clients (net/busy.c) and the command checks
 * (commands.c) answer every command but a few with -BUSY, as redis-server
 * 7.0 does: SCRIPT KILL stops a script that has not written (-UNKILLABLE once
 * it wrote), SHUTDOWN NOSAVE stops the script and the node (cmd_shutdown).
 * The node never kills a script by itself: a client can now send SCRIPT KILL.
 * Never: runs a scripting command from a script, reads the calling client's
 * next commands while its script runs (they wait for it), or serves peer
 * links or HTTP during a script (they wait for the loop). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "busy.h"
#include "cmd.h"
#include "log.h"
#include "mem.h"
#include "script.h"

/* What the engine's callbacks need while a script runs. */
typedef struct script_ctx {
    node_t *node;
    client_t *caller; /* the client running EVAL (its protocol, its waits) */
} script_ctx_t;

static script_ctx_t ctx; /* one engine per process, one script at a time */
static long long busy_ms = SCRIPT_DEFAULT_BUSY_MS; /* lua-time-limit (CONFIG SET) */

/* The commands redis-server 7.0 runs while a script is busy (its
 * CMD_ALLOW_BUSY flag), SCRIPT KILL aside. */
static const char *const busy_allowed[] = {"auth",    "hello", "quit",    "reset",   "multi",
                                           "discard", "watch", "unwatch", "shutdown"};

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

/* Past lua-time-limit, about every 10 ms: the other clients are served (each
 * command refused with -BUSY but SCRIPT KILL, SHUTDOWN NOSAVE and a few
 * others: cmd_script_refuse_busy); the caller's next commands wait. While
 * client tracking has invalidations for the end of the turn, replies made
 * before the busy period wait for them (busy.h). */
static void host_busy(void *ud)
{
    script_ctx_t *x = ud;
    node_t *n = x->node;
    busy_serve(n->server, x->caller, n->tracking && tracking_pending(n->tracking));
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
    script_limits_t lim = {busy_ms, SCRIPT_DEFAULT_MAX_MEMORY, SCRIPT_DEFAULT_MAX_SCRIPT_LEN,
                           "7.0.15"};
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
    if (script_running(e)) { /* SCRIPT KILL from another client, while busy */
        script_command(e, argc, argv, argl, c->proto, &c->out);
        return;
    }
    ctx.node = cmd_node(c);
    ctx.caller = c;
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

int cmd_script_busy(const node_t *n)
{
    return n->script && script_busy(n->script);
}

int cmd_script_refuse_busy(client_t *c, const command_t *cmd, int argc, const char **argv,
                           const size_t *argl)
{
    node_t *n = cmd_node(c);
    if (!cmd_script_busy(n) || c == n->script_client)
        return 0;
    if (strcmp(cmd->name, "script") == 0 && argc >= 2 && cmd_is(argv[1], argl[1], "kill"))
        return 0;
    for (size_t i = 0; i < sizeof(busy_allowed) / sizeof(busy_allowed[0]); i++)
        if (strcmp(cmd->name, busy_allowed[i]) == 0)
            return 0;
    buf_append_str(&c->out, SCRIPT_BUSY_ERROR);
    return 1;
}

void cmd_script_abort(node_t *n)
{
    if (n->script && script_running(n->script)) {
        log_warn("script", "stopping the running script: SHUTDOWN NOSAVE");
        script_abort(n->script);
    }
}

void cmd_script_set_busy_ms(node_t *n, long long ms)
{
    busy_ms = ms;
    if (!n->script)
        return;
    script_limits_t lim = {busy_ms, SCRIPT_DEFAULT_MAX_MEMORY, SCRIPT_DEFAULT_MAX_SCRIPT_LEN,
                           "7.0.15"};
    script_set_limits(n->script, &lim);
}

long long cmd_script_busy_ms(void)
{
    return busy_ms;
}
