/* commands: the command table and dispatch; see commands.h.
 *
 * The table is data: name, arity, flags, handler, summary. Lookup goes
 * through a small open-addressing index built once, keyed by the lower-case
 * name, so dispatch costs one hash of the command name. */
#include "commands.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

#include "cmd.h"
#include "log.h"

#define R CMD_READONLY
#define W CMD_WRITE
#define F (CMD_WRITE | CMD_FLUSH)
#define A CMD_NOAUTH
#define X CMD_COHORT

static command_t table[] = {
    /* connection and server */
    {"ping", -1, R, cmd_ping, "Returns PONG, or the message given.", 0, 0, 0},
    {"echo", 2, R, cmd_echo, "Returns the message given.", 0, 0, 0},
    {"quit", -1, A, cmd_quit, "Closes the connection after replying OK.", 0, 0, 0},
    {"hello", -1, A, cmd_hello, "Handshake: protocol version, AUTH, SETNAME.", 0, 0, 0},
    {"auth", -2, A, cmd_auth, "Authenticates the connection.", 0, 0, 0},
    {"select", 2, R, cmd_select, "Selects database 0 (the only one).", 0, 0, 0},
    {"client", -2, R, cmd_client, "CLIENT ID | GETNAME | SETNAME | LIST.", 0, 0, 0},
    {"command", -1, R, cmd_command, "Describes the commands (COUNT, INFO, DOCS, LIST).", 0, 0, 0},
    {"config", -2, R, cmd_config, "CONFIG GET of the node's settings.", 0, 0, 0},
    {"info", -1, R, cmd_info, "Server, clients, memory, stats and keyspace sections.", 0, 0, 0},
    {"dbsize", 1, R, cmd_dbsize, "Number of keys in this node's cache.", 0, 0, 0},
    /* strings */
    {"get", 2, R, cmd_get, "Returns the cached value of a key.", 0, 0, 0},
    {"set", -3, W, cmd_set, "Fills a key on this node (EX PX EXAT PXAT NX XX KEEPTTL GET).", 0, 0,
     0},
    {"setex", 4, W, cmd_setex, "SET with an expire time in seconds.", 0, 0, 0},
    {"psetex", 4, W, cmd_psetex, "SET with an expire time in milliseconds.", 0, 0, 0},
    {"setnx", 3, W, cmd_setnx, "SET if the key does not exist.", 0, 0, 0},
    {"getdel", 2, F, cmd_getdel, "Returns a value and flushes the key on every member.", 0, 0, 0},
    {"getex", -2, W, cmd_getex, "Returns a value and sets its expire time.", 0, 0, 0},
    {"mget", -2, R, cmd_mget, "Returns the values of several keys.", 0, 0, 0},
    {"mset", -3, W, cmd_mset, "Fills several keys on this node.", 0, 0, 0},
    /* keys */
    {"del", -2, F, cmd_del, "Flushes keys on every member.", 0, 0, 0},
    {"unlink", -2, F, cmd_del, "Flushes keys on every member.", 0, 0, 0},
    {"exists", -2, R, cmd_exists, "Counts the keys that exist.", 0, 0, 0},
    {"expire", -3, W, cmd_expire, "Sets a time to live in seconds (<= 0 flushes).", 0, 0, 0},
    {"pexpire", -3, W, cmd_pexpire, "Sets a time to live in milliseconds (<= 0 flushes).", 0, 0,
     0},
    {"ttl", 2, R, cmd_ttl, "Time to live in seconds.", 0, 0, 0},
    {"pttl", 2, R, cmd_pttl, "Time to live in milliseconds.", 0, 0, 0},
    {"persist", 2, W, cmd_persist, "Removes the expire time of a key.", 0, 0, 0},
    {"type", 2, R, cmd_type, "The type of a key (string or none).", 0, 0, 0},
    {"scan", -2, R, cmd_scan, "Iterates the keys (MATCH COUNT TYPE).", 0, 0, 0},
    {"keys", 2, R, cmd_keys, "Every key matching a glob pattern.", 0, 0, 0},
    {"flushall", -1, F, cmd_flushall, "Flushes every key on every member.", 0, 0, 0},
    {"flushdb", -1, F, cmd_flushall, "Flushes every key on every member.", 0, 0, 0},
    /* cohort */
    {"flushprefix", 2, F | X, cmd_flushprefix,
     "Flushes every key with a prefix on every member; replies the count removed here.", 0, 0,
     0},
    {"seed", -3, W | X, cmd_seed, "Sets a value on every member (EX s | PX ms).", 0, 0, 0},
    {"getl", 2, R | X, cmd_getl, "Returns [value, token] for a later SETL.", 0, 0, 0},
    {"setl", -4, W | X, cmd_setl,
     "Fills a key only if it was not flushed since GETL issued the token.", 0, 0, 0},
    {"cohort.status", 1, R | X, cmd_cohort_status, "This node's state.", 0, 0, 0},
    {"cohort.members", 1, R | X, cmd_cohort_members,
     "The other members: name, address, state, since, rtt, flushes, last ack.", 0, 0, 0},
    /* leases and jobs */
    {"leader", 2, R | X, cmd_leader, "A lease as this node sees it: [holder, epoch, ms-left, is-me].",
     0, 0, 0},
    {"leader.acquire", -2, W | X, cmd_leader_acquire,
     "This node tries to hold a lease and keeps renewing it (name [ttl_ms]).", 0, 0, 0},
    {"leader.release", 2, W | X, cmd_leader_release,
     "This node stops renewing a lease it acquired and releases it.", 0, 0, 0},
    {"jobs", 1, R | X, cmd_jobs,
     "The jobs: name, schedule, where, last status, last slot, next slot.", 0, 0, 0},
    {"job.run", 2, W | X, cmd_job_run, "Fires a job once now, once cluster-wide, on this node.",
     0, 0, 0},
    {"job.history", -2, R | X, cmd_job_history,
     "A job's runs, newest first: slot, node, epoch, status, code, start, end, output.", 0, 0,
     0},
};

#define NCOMMANDS (sizeof(table) / sizeof(table[0]))
#define INDEX_SLOTS 128 /* power of two, > 2 * NCOMMANDS */
#define MAX_NAME 32

static command_t *index_slots[INDEX_SLOTS];
static int index_built;

static uint64_t name_hash(const char *lower, size_t len)
{
    return XXH3_64bits(lower, len);
}

static void build_index(void)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        size_t len = strlen(table[i].name);
        size_t slot = name_hash(table[i].name, len) & (INDEX_SLOTS - 1);
        while (index_slots[slot])
            slot = (slot + 1) & (INDEX_SLOTS - 1);
        index_slots[slot] = &table[i];
    }
    index_built = 1;
}

command_t *commands_lookup(const char *name, size_t len)
{
    char lower[MAX_NAME];
    if (len == 0 || len >= MAX_NAME)
        return NULL;
    if (!index_built)
        build_index();
    for (size_t i = 0; i < len; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    size_t slot = name_hash(lower, len) & (INDEX_SLOTS - 1);
    while (index_slots[slot]) {
        command_t *cmd = index_slots[slot];
        if (strlen(cmd->name) == len && memcmp(cmd->name, lower, len) == 0)
            return cmd;
        slot = (slot + 1) & (INDEX_SLOTS - 1);
    }
    return NULL;
}

command_t *commands_table(size_t *n)
{
    *n = NCOMMANDS;
    return table;
}

/* redis-server's text: "unknown command 'x', with args beginning with: 'a' 'b' "
 * (each argument quoted and followed by a space, at most about 128 bytes of
 * them), with CR and LF turned into spaces so the reply stays one line. */
static void reply_unknown(client_t *c, int argc, const char **argv, const size_t *argl)
{
    buf_t msg;
    buf_init(&msg);
    int nlen = argl[0] > 128 ? 128 : (int)argl[0];
    buf_printf(&msg, "ERR unknown command '%.*s', with args beginning with: ", nlen, argv[0]);
    size_t args_len = 0;
    for (int i = 1; i < argc && args_len < 128; i++) {
        int room = 128 - (int)args_len;
        int len = (int)argl[i] < room ? (int)argl[i] : room;
        size_t before = buf_len(&msg);
        buf_printf(&msg, "'%.*s' ", len, argv[i]);
        args_len += buf_len(&msg) - before;
    }
    char *p = buf_head(&msg);
    for (size_t i = 0; i < buf_len(&msg); i++)
        if (p[i] == '\r' || p[i] == '\n')
            p[i] = ' ';
    buf_append(&msg, "", 1);
    resp_add_error(&c->out, buf_head(&msg));
    buf_free(&msg);
}

/* 1 when a write's arguments alone exceed maxmemory: what it would store
 * cannot fit even in an empty cache (redis-server counts a command's
 * arguments in its used memory, and refuses such a write with -OOM). */
static int over_maxmemory(const node_t *n, int argc, const size_t *argl)
{
    size_t max = cache_maxmemory(n->cache), total = 0;
    if (!max)
        return 0;
    for (int i = 1; i < argc; i++)
        total += argl[i];
    return total > max;
}

void commands_execute(void *ud, client_t *c, int argc, const char **argv, const size_t *argl)
{
    node_t *n = ud;
    n->stats.commands_processed++;
    command_t *cmd = commands_lookup(argv[0], argl[0]);
    if (!cmd) {
        reply_unknown(c, argc, argv, argl);
        return;
    }
    if ((cmd->arity > 0 && argc != cmd->arity) || argc < -cmd->arity) {
        cmd->rejected++;
        cmd_reply_arity(c, cmd->name);
        return;
    }
    if (!c->authenticated && !(cmd->flags & CMD_NOAUTH)) {
        cmd->rejected++;
        resp_add_error(&c->out, "NOAUTH Authentication required.");
        return;
    }
    if ((cmd->flags & CMD_WRITE) && !(cmd->flags & CMD_FLUSH) && over_maxmemory(n, argc, argl)) {
        resp_add_error(&c->out, "OOM command not allowed when used memory > 'maxmemory'.");
        return;
    }
    uint64_t t0 = uv_hrtime();
    cmd->fn(c, argc, argv, argl);
    cmd->usec += (uv_hrtime() - t0) / 1000;
    cmd->calls++;
    c->last_cmd = cmd->name;
}
