/* cmd_conn: connection and server commands (PING, ECHO, QUIT, HELLO, AUTH,
 * SELECT, CLIENT, COMMAND, CONFIG) with redis-server 7's replies. */
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

static int set_client_name(client_t *c, const char *s, size_t len)
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
    if (setname > 0 && set_client_name(c, argv[setname], argl[setname]) < 0)
        return;
    if (ver)
        c->proto = (int)ver;
    reply_hello(c);
}

CMD_HANDLER(cmd_select)
{
    long long id;
    if (cmd_ll_or_reply(c, argv[1], argl[1], &id) < 0)
        return;
    if (id < INT_MIN || id > INT_MAX) {
        resp_add_error(&c->out, "ERR value is out of range, value must between -2147483648 and "
                                "2147483647");
        return;
    }
    if (id != 0) {
        /* One cache per node: there are no other databases to select. */
        resp_add_error(&c->out, "ERR DB index is out of range");
        return;
    }
    resp_add_ok(&c->out);
}

/* ---- CLIENT ------------------------------------------------------------- */

static void reply_unknown_subcommand(client_t *c, const char *sub, size_t len, const char *cmd)
{
    int n = len > 128 ? 128 : (int)len;
    resp_add_errorf(&c->out, "ERR unknown subcommand '%.*s'. Try %s HELP.", n, sub, cmd);
}

static void append_client_line(void *ud, client_t *other)
{
    buf_t *b = ((void **)ud)[0];
    client_t *self = ((void **)ud)[1];
    int64_t now = clock_now_ms();
    buf_printf(b,
               "id=%llu addr=%s laddr=%s fd=-1 name=%s age=%lld idle=%lld flags=%s db=0 sub=%zu "
               "psub=%zu ssub=%zu multi=-1 qbuf=%zu qbuf-free=%zu argv-mem=0 multi-mem=0 obl=0 "
               "oll=0 omem=%zu tot-mem=%zu events=r cmd=%s user=default redir=-1 resp=%d\n",
               (unsigned long long)other->id, other->addr, other->laddr,
               other->name ? other->name : "", (long long)(now - other->created_ms) / 1000,
               (long long)(now - other->last_ms) / 1000, (other->flags & CLIENT_PUBSUB) ? "P" : "N",
               pubsub_client_subscriptions(other, PUBSUB_CHANNEL),
               pubsub_client_subscriptions(other, PUBSUB_PATTERN),
               pubsub_client_subscriptions(other, PUBSUB_SHARD), buf_len(&other->in),
               other->in.cap - buf_len(&other->in), buf_len(&other->out) + other->out_inflight,
               client_memory(other), other == self ? "client|list" : (other->last_cmd ? other->last_cmd : "NULL"),
               other->proto);
}

static const char *client_help[] = {
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "LIST",
    "    Return information about client connections.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "HELP",
    "    Print this help.",
};

static void reply_help(client_t *c, const char **lines, size_t n)
{
    resp_add_array(&c->out, n);
    for (size_t i = 0; i < n; i++)
        resp_add_simple(&c->out, lines[i]);
}

CMD_HANDLER(cmd_client)
{
    const char *sub = argv[1];
    size_t slen = argl[1];
    if (cmd_is(sub, slen, "id") && argc == 2) {
        resp_add_int(&c->out, (long long)c->id);
    } else if (cmd_is(sub, slen, "getname") && argc == 2) {
        if (c->name)
            resp_add_bulk_str(&c->out, c->name);
        else
            resp_add_null(&c->out, c->proto);
    } else if (cmd_is(sub, slen, "setname") && argc == 3) {
        if (set_client_name(c, argv[2], argl[2]) == 0)
            resp_add_ok(&c->out);
    } else if ((cmd_is(sub, slen, "list") && argc == 2) ||
               (cmd_is(sub, slen, "info") && argc == 2)) {
        buf_t lines;
        buf_init(&lines);
        void *ud[2] = {&lines, c};
        if (cmd_is(sub, slen, "list"))
            server_foreach_client(cmd_node(c)->server, append_client_line, ud);
        else
            append_client_line(ud, c);
        resp_add_verbatim(&c->out, c->proto, buf_head(&lines), buf_len(&lines));
        buf_free(&lines);
    } else if (cmd_is(sub, slen, "help") && argc == 2) {
        reply_help(c, client_help, sizeof(client_help) / sizeof(client_help[0]));
    } else if (cmd_is(sub, slen, "id") || cmd_is(sub, slen, "getname") ||
               cmd_is(sub, slen, "setname") || cmd_is(sub, slen, "list") ||
               cmd_is(sub, slen, "info") || cmd_is(sub, slen, "help")) {
        char full[32];
        snprintf(full, sizeof(full), "client|%.*s", (int)slen, sub);
        for (char *p = full; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        cmd_reply_arity(c, full);
    } else {
        reply_unknown_subcommand(c, sub, slen, "CLIENT");
    }
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
    int has_key = cmd->arity >= 2 || cmd->arity <= -2;
    int keyed = has_key && (cmd->flags & (CMD_WRITE | CMD_FLUSH)) && cmd->fn != cmd_flushall;
    resp_add_int(o, keyed ? 1 : 0);
    resp_add_int(o, keyed ? (cmd->arity < 0 && cmd->fn == cmd_del ? -1 : 1) : 0);
    resp_add_int(o, keyed ? 1 : 0);
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
        reply_unknown_subcommand(c, sub, slen, "COMMAND");
    }
}

/* ---- CONFIG GET ----------------------------------------------------------- */

typedef struct config_item {
    const char *name;
    void (*value)(node_t *n, char *out, size_t len);
} config_item_t;

static void v_maxmemory(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%zu", cache_maxmemory(n->cache));
}
static void v_maxclients(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%zu", n->cfg->maxclients);
}
static void v_timeout(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%d", n->cfg->timeout_s);
}
static void v_port(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%d", n->cfg->port);
}
static void v_bind(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%s", n->cfg->bind);
}
static void v_empty(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%s", "");
}
static void v_no(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%s", "no");
}
static void v_policy(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%s", "allkeys-lru");
}
static void v_databases(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%s", "1");
}
static void v_bulk(node_t *n, char *o, size_t l)
{
    snprintf(o, l, "%zu", n->cfg->max_bulk_len);
}

static const config_item_t config_items[] = {
    {"maxmemory", v_maxmemory},
    {"maxmemory-policy", v_policy},
    {"maxclients", v_maxclients},
    {"timeout", v_timeout},
    {"port", v_port},
    {"bind", v_bind},
    {"databases", v_databases},
    {"proto-max-bulk-len", v_bulk},
    {"save", v_empty},
    {"appendonly", v_no},
};

CMD_HANDLER(cmd_config)
{
    const char *sub = argv[1];
    size_t slen = argl[1];
    if (!cmd_is(sub, slen, "get")) {
        if (cmd_is(sub, slen, "set") || cmd_is(sub, slen, "resetstat") ||
            cmd_is(sub, slen, "rewrite"))
            resp_add_errorf(&c->out, "ERR CONFIG %.*s is not supported: cohortd is configured "
                                     "by its INI file", (int)slen, sub);
        else
            reply_unknown_subcommand(c, sub, slen, "CONFIG");
        return;
    }
    if (argc < 3) {
        cmd_reply_arity(c, "config|get");
        return;
    }
    const size_t nitems = sizeof(config_items) / sizeof(config_items[0]);
    int match[sizeof(config_items) / sizeof(config_items[0])] = {0};
    size_t count = 0;
    for (size_t i = 0; i < nitems; i++) {
        for (int j = 2; j < argc && !match[i]; j++)
            match[i] = glob_match(argv[j], argl[j], config_items[i].name,
                                  strlen(config_items[i].name));
        count += (size_t)match[i];
    }
    resp_add_map(&c->out, c->proto, count);
    for (size_t i = 0; i < nitems; i++) {
        if (!match[i])
            continue;
        char value[64];
        config_items[i].value(cmd_node(c), value, sizeof(value));
        resp_add_bulk_str(&c->out, config_items[i].name);
        resp_add_bulk_str(&c->out, value);
    }
}
