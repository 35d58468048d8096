/* cmd_server: server commands clients send at start-up or for monitoring
 * (TIME, ROLE, LASTSAVE, WAIT, LATENCY), and SHUTDOWN, with redis-server 7's
 * replies. SHUTDOWN asks the daemon for the clean shutdown SIGTERM does (it
 * saves nothing either way: SAVE, NOSAVE, NOW and FORCE are accepted), so
 * the connection closes without a reply; while a script is busy only
 * SHUTDOWN NOSAVE is accepted, and it stops the script first.
 * cohortd is a master with no replicas and saves nothing: LASTSAVE is the
 * start time; WAIT counts the members that acknowledged the connection's
 * newest write (cmd_wait.c), and replies 0 at once on a node alone; LATENCY
 * has no monitor, so LATEST is empty.
 * Never: blocks the loop (a WAIT that must wait suspends its client). */
#include <sys/time.h>

#include "cmd.h"
#include "log.h"
#include "script.h"

CMD_HANDLER(cmd_time)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    resp_add_array(&c->out, 2);
    resp_add_bulk_ll(&c->out, (long long)tv.tv_sec);
    resp_add_bulk_ll(&c->out, (long long)tv.tv_usec);
}

CMD_HANDLER(cmd_role)
{
    resp_add_array(&c->out, 3);
    resp_add_bulk_str(&c->out, "master");
    resp_add_int(&c->out, 0);
    resp_add_array(&c->out, 0);
}

CMD_HANDLER(cmd_lastsave)
{
    resp_add_int(&c->out, (long long)(cmd_node(c)->start_ms / 1000));
}

/* WAIT numreplicas timeout: the argument checks of redis-server, then the
 * members that acknowledged this connection's newest write or flush, at once
 * when there are numreplicas of them (or inside MULTI, or alone: no member
 * can ever come), else once there are or timeout ms passed (0: no limit). */
CMD_HANDLER(cmd_wait)
{
    long long replicas, timeout;
    if (cmd_ll_or_reply(c, argv[1], argl[1], &replicas) < 0)
        return;
    if (cmd_parse_ll(argv[2], argl[2], &timeout) < 0) {
        resp_add_error(&c->out, "ERR timeout is not an integer or out of range");
        return;
    }
    if (timeout < 0) {
        resp_add_error(&c->out, "ERR timeout is negative");
        return;
    }
    node_t *n = cmd_node(c);
    size_t acked = cmd_wait_acked(c);
    if ((long long)acked >= replicas || !n->cluster || (c->cmd_flags & CMDC_ATOMIC)) {
        resp_add_int(&c->out, (long long)acked);
        return;
    }
    cmd_wait_replicas(c, replicas, timeout);
}

static const char *const latency_help[] = {
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HELP",
    "    Prints this help.",
};

CMD_HANDLER(cmd_latency)
{
    const char *sub = argv[1];
    size_t slen = argl[1];
    if (cmd_is(sub, slen, "latest") && argc == 2) {
        resp_add_array(&c->out, 0);
    } else if (cmd_is(sub, slen, "reset")) {
        resp_add_int(&c->out, 0);
    } else if (cmd_is(sub, slen, "help") && argc == 2) {
        cmd_reply_help(c, latency_help, sizeof(latency_help) / sizeof(latency_help[0]));
    } else if (cmd_is(sub, slen, "latest") || cmd_is(sub, slen, "help")) {
        cmd_reply_sub_arity(c, "latency", sub, slen);
    } else {
        cmd_reply_unknown_subcommand(c, sub, slen, "LATENCY");
    }
}

/* SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT], checked as redis-server 7.0's
 * shutdownCommand. */
CMD_HANDLER(cmd_shutdown)
{
    node_t *n = cmd_node(c);
    if (multi_active(c)) { /* not queued (CMD_MULTI_PASS): refused, and EXEC aborts */
        size_t before = buf_len(&c->out);
        resp_add_error(&c->out, "ERR Command not allowed inside a transaction");
        multi_refused(c, 0, before);
        return;
    }
    int nosave = 0, save = 0, abort_it = 0, other = 0;
    for (int i = 1; i < argc; i++) {
        if (cmd_is(argv[i], argl[i], "nosave"))
            nosave = 1;
        else if (cmd_is(argv[i], argl[i], "save"))
            save = 1;
        else if (cmd_is(argv[i], argl[i], "now") || cmd_is(argv[i], argl[i], "force"))
            other = 1;
        else if (cmd_is(argv[i], argl[i], "abort"))
            abort_it = 1;
        else {
            resp_add_error(&c->out, ERR_SYNTAX);
            return;
        }
    }
    if ((abort_it && (nosave || save || other)) || (nosave && save)) {
        resp_add_error(&c->out, ERR_SYNTAX);
        return;
    }
    if (abort_it) { /* a shutdown, once asked, is not undone */
        resp_add_error(&c->out, "ERR No shutdown in progress.");
        return;
    }
    if (!nosave && cmd_script_busy(n)) {
        buf_append_str(&c->out, SCRIPT_BUSY_ERROR);
        return;
    }
    log_warn("main", "SHUTDOWN from client id=%llu addr=%s", (unsigned long long)c->id, c->addr);
    cmd_script_abort(n);
    n->shutdown_asked = 1;
    c->flags |= CLIENT_CLOSE_AFTER_REPLY;
}
