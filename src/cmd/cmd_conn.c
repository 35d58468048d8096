/* cmd_conn: connection commands (PING, ECHO, QUIT, HELLO, AUTH, SELECT,
 * COMMAND) with redis-server 7's replies. CLIENT is in cmd_client.c. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>

#include "clock.h"
#include "cmd.h"
#include "glob.h"
#include "mem.h"
#include "pubsub.h"
#include "server.h"

CMD_HANDLER(cmd_ping)
{
    if (argc > 2) {
        cmd_reply_arity(c, "ping");
        return;
    }
    if ((c->flags & CLIENT_PUBSUB) && c->proto == 2) { /* RESP2 subscribe mode */
        resp_add_array(&c->out, 2);
        resp_add_bulk(&c->out, "pong", 4);
        resp_add_bulk(&c->out, argc == 2 ? argv[1] : "", argc == 2 ? argl[1] : 0);
        return;
    }
    if (argc == 2)
        resp_add_bulk(&c->out, argv[1], argl[1]);
    else
        resp_add_simple(&c->out, "PONG");
}

CMD_HANDLER(cmd_echo)
{
    resp_add_bulk(&c->out, argv[1], argl[1]);
}

CMD_HANDLER(cmd_quit)
{
    resp_add_ok(&c->out);
    c->flags |= CLIENT_CLOSE_AFTER_REPLY;
}

/* Checks a password for the default user in constant time. */
static int password_ok(client_t *c, const char *user, size_t ulen, const char *pass, size_t plen)
{
    const char *want = cmd_node(c)->cfg->requirepass;
    if (!cmd_is(user, ulen, "default"))
        return 0;
    if (!want || !want[0])
        return 1; /* no password set: the default user takes any */
    size_t wlen = strlen(want);
    return wlen == plen && CRYPTO_memcmp(want, pass, plen) == 0;
}

static void reply_wrongpass(client_t *c)
{
    resp_add_error(&c->out, "WRONGPASS invalid username-password pair or user is disabled.");
}

CMD_HANDLER(cmd_auth)
{
    const char *want = cmd_node(c)->cfg->requirepass;
    if (argc > 3) {
        resp_add_error(&c->out, ERR_SYNTAX);
        return;
    }
    if (argc == 2 && (!want || !want[0])) {
        resp_add_error(&c->out, "ERR AUTH <password> called without any password configured "
                                "for the default user. Are you sure your configuration is "
                                "correct?");
        return;
    }
    int ok = argc == 2 ? password_ok(c, "default", 7, argv[1], argl[1])
                       : password_ok(c, argv[1], argl[1], argv[2], argl[2]);
    if (!ok) {
        reply_wrongpass(c);
        return;
    }
    c->authenticated = 1;
    resp_add_ok(&c->out);
}

static int valid_client_name(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < '!' || s[i] > '~')
            return 0;
    return 1;
}

int cmd_set_client_name(client_t *c, const char *s, size_t len)
{
    if (!valid_client_name(s, len)) {
        resp_add_error(&c->out,
                       "ERR Client names cannot contain spaces, newlines or special characters.");
        return -1;
    }
    free(c->name);
    c->name = len ? xmemdup(s, len) : NULL;
    return 0;
}

static void reply_hello(client_t *c)
{
    buf_t *o = &c->out;
    resp_add_map(o, c->proto, 7);
    resp_add_bulk_str(o, "server");
    resp_add_bulk_str(o, "cohort");
    resp_add_bulk_str(o, "version");
    resp_add_bulk_str(o, COHORT_REDIS_COMPAT_VERSION);
    resp_add_bulk_str(o, "proto");
    resp_add_int(o, c->proto);
    resp_add_bulk_str(o, "id");
    resp_add_int(o, (long long)c->id);
    resp_add_bulk_str(o, "mode");
    resp_add_bulk_str(o, "standalone");
    resp_add_bulk_str(o, "role");
    resp_add_bulk_str(o, "master");
    resp_add_bulk_str(o, "modules");
    resp_add_array(o, 0);
}

CMD_HANDLER(cmd_hello)
{
    long long ver = 0;
    int j = 1;
    if (argc >= 2) {
        if (cmd_parse_ll(argv[1], argl[1], &ver) < 0) {
            resp_add_error(&c->out, "ERR Protocol version is not an integer or out of range");
            return;
        }
        j = 2;
        if (ver < 2 || ver > 3) {
            resp_add_error(&c->out, "NOPROTO unsupported protocol version");
            return;
        }
    }
    int auth = -1, setname = -1;
    for (; j < argc; j++) {
        int more = argc - 1 - j;
        if (cmd_is(argv[j], argl[j], "auth") && more >= 2) {
            auth = j + 1;
            j += 2;
        } else if (cmd_is(argv[j], argl[j], "setname") && more >= 1) {
            setname = j + 1;
            j++;
        } else {
            resp_add_errorf(&c->out, "ERR Syntax error in HELLO option '%.*s'", (int)argl[j],
                            argv[j]);
            return;
        }
    }
    if (auth > 0) {
        if (!password_ok(c, argv[auth], argl[auth], argv[auth + 1], argl[auth + 1])) {
            reply_wrongpass(c);
            return;
        }
        c->authenticated = 1;
    }
    if (!c->authenticated) {
        resp_add_error(&c->out, "NOAUTH HELLO must be called with the client already "
                                "authenticated, otherwise the HELLO AUTH <user> <pass> "
                                "option can be used to authenticate the client and select the "
                                "RESP protocol version at the same time");
        return;
    }
    if (setname > 0 && cmd_set_client_name(c, argv[setname], argl[setname]) < 0)
        return;
    if (ver)
        c->proto = (int)ver;
    reply_hello(c);
}

/* ---- COMMAND ------------------------------------------------------------ */

static void reply_command_info(client_t *c, const command_t *cmd)
{
    buf_t *o = &c->out;
    resp_add_array(o, 10);
    resp_add_bulk_str(o, cmd->name);
    resp_add_int(o, cmd->arity);
    int nflags = !!(cmd->flags & CMD_WRITE) + !!(cmd->flags & CMD_READONLY) +
                 !!(cmd->flags & CMD_NOAUTH);
    resp_add_set(o, c->proto, (size_t)nflags);
    if (cmd->flags & CMD_WRITE)
        resp_add_simple(o, "write");
    if (cmd->flags & CMD_READONLY)
        resp_add_simple(o, "readonly");
    if (cmd->flags & CMD_NOAUTH)
        resp_add_simple(o, "no_auth");
    int first, last, step;
    commands_key_positions(cmd, &first, &last, &step);
    resp_add_int(o, first);
    resp_add_int(o, last);
    resp_add_int(o, step);
    resp_add_set(o, c->proto, 0);
    resp_add_set(o, c->proto, 0);
    resp_add_array(o, 0);
    resp_add_array(o, 0);
}

static void reply_command_doc(client_t *c, const command_t *cmd)
{
    resp_add_bulk_str(&c->out, cmd->name);
    resp_add_map(&c->out, c->proto, 2);
    resp_add_bulk_str(&c->out, "summary");
    resp_add_bulk_str(&c->out, cmd->summary);
    resp_add_bulk_str(&c->out, "group");
    resp_add_bulk_str(&c->out, cmd->flags & CMD_COHORT ? "cohort" : "generic");
}

CMD_HANDLER(cmd_command)
{
    size_t n;
    command_t *table = commands_table(&n);
    if (argc == 1) {
        resp_add_array(&c->out, n);
        for (size_t i = 0; i < n; i++)
            reply_command_info(c, &table[i]);
        return;
    }
    const char *sub = argv[1];
    size_t slen = argl[1];
    if (cmd_is(sub, slen, "count") && argc == 2) {
        resp_add_int(&c->out, (long long)n);
    } else if (cmd_is(sub, slen, "list") && argc == 2) {
        resp_add_array(&c->out, n);
        for (size_t i = 0; i < n; i++)
            resp_add_bulk_str(&c->out, table[i].name);
    } else if (cmd_is(sub, slen, "info")) {
        resp_add_array(&c->out, (size_t)(argc - 2));
        for (int i = 2; i < argc; i++) {
            command_t *cmd = commands_lookup(argv[i], argl[i]);
            if (cmd)
                reply_command_info(c, cmd);
            else
                resp_add_null_array(&c->out, c->proto);
        }
    } else if (cmd_is(sub, slen, "docs")) {
        size_t found = 0;
        for (int i = 2; i < argc; i++)
            found += commands_lookup(argv[i], argl[i]) != NULL;
        resp_add_map(&c->out, c->proto, argc == 2 ? n : found);
        for (size_t i = 0; argc == 2 && i < n; i++)
            reply_command_doc(c, &table[i]);
        for (int i = 2; i < argc; i++) {
            command_t *cmd = commands_lookup(argv[i], argl[i]);
            if (cmd)
                reply_command_doc(c, cmd);
        }
    } else if (cmd_is(sub, slen, "count") || cmd_is(sub, slen, "list")) {
        char full[32];
        snprintf(full, sizeof(full), "command|%s", cmd_is(sub, slen, "count") ? "count" : "list");
        cmd_reply_arity(c, full);
    } else {
        cmd_reply_unknown_subcommand(c, sub, slen, "COMMAND");
    }
}
