/* commands: the command table and dispatch; see commands.h.
 *
 * The table is data: name, arity, flags, handler, summary. Lookup goes
 * through a small open-addressing index built once, keyed by the lower-case
 * name, so dispatch costs one hash of the command name.
 *
 * Databases: a key of database n is stored in the cache as the byte n
 * followed by the client's key. Dispatch is the one place that adds the byte:
 * it rewrites the key arguments (key_specs below, by position, as COMMAND
 * INFO declares them; a command not listed has its key at argument 1) before
 * the handler runs, so handlers, flushes, SEEDs and everything that travels
 * between members see the stored key and carry its database without knowing
 * of it. Only what shows keys back to a client (KEYS, SCAN, RANDOMKEY) strips
 * the byte (cmd_db.c). Invariant: every command whose arguments hold
 * anything but keys at the default position is in key_specs (a script body,
 * a channel, a lease name must never get the byte); checked against
 * redis-server by tests/integration/corpus/databases.txt (keys of one
 * database unseen from another, scripts in the caller's database) and
 * scripting.txt (script bodies and channels untouched).
 *
 * Transactions: while a client is in MULTI, a command that passes the checks
 * is queued (cmd_multi.c) instead of run; a refused one marks the
 * transaction so that EXEC aborts, as redis-server's rejectCommand. */
#include "commands.h"
#include "keyspace.h"

#include <assert.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

#include "clock.h"
#include "cmd.h"
#include "frame.h"
#include "log.h"
#include "mem.h"

#define R CMD_READONLY
#define W CMD_WRITE
#define F (CMD_WRITE | CMD_FLUSH)
#define A CMD_NOAUTH
#define X CMD_COHORT
#define P CMD_PUBSUB
#define K CMD_CONTAINER
#define N CMD_NOSCRIPT
#define M CMD_MULTI_PASS

static command_t table[] = {
    /* connection and server */
    {"ping", -1, R | P, cmd_ping, "Returns PONG, or the message given.", 0, 0, 0},
    {"echo", 2, R, cmd_echo, "Returns the message given.", 0, 0, 0},
    {"quit", -1, A | P | N | M, cmd_quit, "Closes the connection after replying OK.", 0, 0, 0},
    {"hello", -1, A | N, cmd_hello, "Handshake: protocol version, AUTH, SETNAME.", 0, 0, 0},
    {"auth", -2, A | N, cmd_auth, "Authenticates the connection.", 0, 0, 0},
    {"select", 2, R, cmd_select, "Selects the connection's database (0 .. databases-1).", 0, 0,
     0},
    {"client", -2, R | K, cmd_client,
     "CLIENT ID GETNAME SETNAME LIST INFO KILL REPLY SETINFO NO-EVICT NO-TOUCH UNPAUSE TRACKING "
     "CACHING GETREDIR TRACKINGINFO.",
     0, 0, 0},
    {"command", -1, R | K, cmd_command, "Describes the commands (COUNT, INFO, DOCS, LIST).", 0, 0,
     0},
    {"config", -2, R | K, cmd_config,
     "CONFIG GET; SET of maxmemory, maxmemory-policy, timeout, slowlog-*, lua-time-limit, the "
     "encoding limits; RESETSTAT.", 0, 0, 0},
    {"info", -1, R, cmd_info, "Server, clients, memory, stats and keyspace sections.", 0, 0, 0},
    {"dbsize", 1, R, cmd_dbsize, "Number of keys of the current database in this node's cache.",
     0, 0, 0},
    {"time", 1, R, cmd_time, "The server's time: unix seconds and microseconds.", 0, 0, 0},
    {"role", 1, R, cmd_role, "Replication role: a master with no replicas.", 0, 0, 0},
    {"lastsave", 1, R, cmd_lastsave, "Unix time of the start (cohort does not save).", 0, 0, 0},
    {"wait", 3, R | N, cmd_wait,
     "Members that acknowledged this connection's newest write, waiting up to the timeout "
     "for numreplicas of them.", 0, 0, 0},
    {"slowlog", -2, R, cmd_slowlog, "SLOWLOG GET | LEN | RESET | HELP.", 0, 0, 0},
    {"latency", -2, R, cmd_latency, "LATENCY LATEST (empty) | RESET | HELP.", 0, 0, 0},
    {"shutdown", -1, N | M, cmd_shutdown,
     "Stops the node as SIGTERM does; SHUTDOWN NOSAVE also stops a busy script.", 0, 0, 0},
    {"reset", 1, A | P | N | M, cmd_reset,
     "Resets the connection: subscriptions, protocol, name, authentication.", 0, 0, 0},
    /* transactions (cmd_multi.c) */
    {"multi", 1, N | M, cmd_multi, "Starts a transaction: later commands are queued.", 0, 0, 0},
    {"exec", 1, N | M, cmd_exec,
     "Runs the queued commands at once; replies when their flushes are applied everywhere.", 0,
     0, 0},
    {"discard", 1, N | M, cmd_discard, "Drops the queued commands.", 0, 0, 0},
    /* databases (cmd_db.c) */
    {"swapdb", 3, W, cmd_swapdb, "Swaps two databases (on a node outside a cluster only).", 0,
     0, 0},
    {"move", 3, F, cmd_move,
     "Moves a key to another database: a fill there, a flush here and on every member.", 0, 0,
     0},
    /* scripting (script/): a script's writes and flushes are the caller's */
    {"eval", -3, N, cmd_eval, "Runs a Lua script (KEYS, ARGV, redis.call).", 0, 0, 0},
    {"evalsha", -3, N, cmd_eval, "Runs a cached script by its SHA1.", 0, 0, 0},
    {"eval_ro", -3, N, cmd_eval, "Runs a Lua script that may not write.", 0, 0, 0},
    {"evalsha_ro", -3, N, cmd_eval, "Runs a cached script that may not write.", 0, 0, 0},
    {"script", -2, K | N, cmd_script, "SCRIPT LOAD | EXISTS | FLUSH | KILL | HELP.", 0, 0, 0},
    /* pub/sub (node-local) */
    {"publish", 3, 0, cmd_publish,
     "Posts a message to a channel; replies the subscribers reached on this node.", 0, 0, 0},
    {"spublish", 3, 0, cmd_spublish, "Posts a message to a shard channel.", 0, 0, 0},
    {"subscribe", -2, P | N, cmd_subscribe, "Listens for messages on channels.", 0, 0, 0},
    {"psubscribe", -2, P | N, cmd_psubscribe, "Listens for messages on channels matching patterns.",
     0, 0, 0},
    {"ssubscribe", -2, P | N, cmd_ssubscribe, "Listens for messages on shard channels.", 0, 0, 0},
    {"unsubscribe", -1, P | N, cmd_unsubscribe, "Stops listening to channels (all without names).",
     0, 0, 0},
    {"punsubscribe", -1, P | N, cmd_punsubscribe,
     "Stops listening to patterns (all without patterns).", 0, 0, 0},
    {"sunsubscribe", -1, P | N, cmd_sunsubscribe,
     "Stops listening to shard channels (all without names).", 0, 0, 0},
    {"pubsub", -2, K, cmd_pubsub,
     "CHANNELS | NUMSUB | NUMPAT | SHARDCHANNELS | SHARDNUMSUB | HELP.", 0, 0, 0},
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
    {"msetnx", -3, W, cmd_msetnx, "Fills several keys on this node if none exists.", 0, 0, 0},
    {"getset", 3, W, cmd_getset, "Fills a key and returns its old value.", 0, 0, 0},
    {"incr", 2, W, cmd_incr, "Adds 1 to a counter (a fill of this node).", 0, 0, 0},
    {"decr", 2, W, cmd_decr, "Subtracts 1 from a counter (a fill of this node).", 0, 0, 0},
    {"incrby", 3, W, cmd_incrby, "Adds to a counter (a fill of this node).", 0, 0, 0},
    {"decrby", 3, W, cmd_decrby, "Subtracts from a counter (a fill of this node).", 0, 0, 0},
    {"incrbyfloat", 3, W, cmd_incrbyfloat, "Adds a float (a fill of this node).", 0, 0, 0},
    {"append", 3, W, cmd_append, "Appends to a value (a fill of this node).", 0, 0, 0},
    {"strlen", 2, R, cmd_strlen, "Length of a value.", 0, 0, 0},
    {"getrange", 4, R, cmd_getrange, "A substring of a value.", 0, 0, 0},
    {"substr", 4, R, cmd_getrange, "A substring of a value (old name of GETRANGE).", 0, 0, 0},
    {"setrange", 4, W, cmd_setrange, "Overwrites part of a value (a fill of this node).", 0, 0,
     0},
    {"lcs", -3, R, cmd_lcs, "Longest common subsequence of two values (LEN IDX ...).", 0, 0,
     0},
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
    {"type", 2, R, cmd_type, "The type of a key (string, hash, set or none).", 0, 0, 0},
    {"scan", -2, R, cmd_scan, "Iterates the keys (MATCH COUNT TYPE).", 0, 0, 0},
    {"keys", 2, R, cmd_keys, "Every key matching a glob pattern.", 0, 0, 0},
    {"flushall", -1, F, cmd_flushall, "Flushes every key on every member.", 0, 0, 0},
    {"watch", -2, N, cmd_watch,
     "Watches keys for EXEC: any change of one here (a write, a member's flush, expiry) fails it.",
     0, 0, 0},
    {"unwatch", 1, N, cmd_unwatch, "Forgets the watched keys.", 0, 0, 0},
    {"flushdb", -1, F, cmd_flushdb, "Flushes the current database's keys on every member.", 0,
     0, 0},
    {"expireat", -3, W, cmd_expireat, "Sets a unix expire time in seconds (past: a flush).", 0,
     0, 0},
    {"pexpireat", -3, W, cmd_pexpireat,
     "Sets a unix expire time in milliseconds (past: a flush).", 0, 0, 0},
    {"expiretime", 2, R, cmd_expiretime, "Unix expire time in seconds.", 0, 0, 0},
    {"pexpiretime", 2, R, cmd_pexpiretime, "Unix expire time in milliseconds.", 0, 0, 0},
    {"touch", -2, R, cmd_touch, "Counts the keys that exist and marks them used.", 0, 0, 0},
    {"rename", 3, F, cmd_rename,
     "Flushes the source key on every member, fills the destination here.", 0, 0, 0},
    {"renamenx", 3, F, cmd_renamenx, "RENAME if the destination does not exist.", 0, 0, 0},
    {"copy", -3, W, cmd_copy,
     "Writes the source's value to the destination (DB n: in database n).", 0, 0, 0},
    {"randomkey", 1, R, cmd_randomkey, "A key of this node's cache at random.", 0, 0, 0},
    {"object", -2, R, cmd_object, "OBJECT ENCODING | FREQ | IDLETIME | REFCOUNT | HELP.", 0, 0,
     0},
    {"memory", -2, R, cmd_memory, "MEMORY USAGE key: bytes the entry takes here.", 0, 0, 0},
    {"dump", 2, R, cmd_dump, "A value in cohort's own versioned, checksummed format.", 0, 0, 0},
    {"restore", -4, W, cmd_restore,
     "Fills a key from a DUMP payload made by cohort (REPLACE ABSTTL IDLETIME FREQ).", 0, 0, 0},
    /* hashes (cmd_hash.c): a write rebuilds the value, O(fields), a fill here */
    {"hset", -4, W, cmd_hset, "Sets fields of a hash; replies the fields added.", 0, 0, 0},
    {"hsetnx", 4, W, cmd_hsetnx, "Sets a field of a hash if it is absent.", 0, 0, 0},
    {"hmset", -4, W, cmd_hmset, "Sets fields of a hash; replies OK.", 0, 0, 0},
    {"hget", 3, R, cmd_hget, "The value of a field of a hash.", 0, 0, 0},
    {"hmget", -3, R, cmd_hmget, "The values of fields of a hash.", 0, 0, 0},
    {"hdel", -3, F, cmd_hdel, "Removes fields of a hash (the last one flushes the key).", 0, 0,
     0},
    {"hlen", 2, R, cmd_hlen, "The number of fields of a hash.", 0, 0, 0},
    {"hstrlen", 3, R, cmd_hstrlen, "The length of a field's value.", 0, 0, 0},
    {"hexists", 3, R, cmd_hexists, "Whether a hash has a field.", 0, 0, 0},
    {"hkeys", 2, R, cmd_hkeys, "The fields of a hash.", 0, 0, 0},
    {"hvals", 2, R, cmd_hvals, "The values of a hash.", 0, 0, 0},
    {"hgetall", 2, R, cmd_hgetall, "The fields and values of a hash.", 0, 0, 0},
    {"hincrby", 4, W, cmd_hincrby, "Adds an integer to a field of a hash.", 0, 0, 0},
    {"hincrbyfloat", 4, W, cmd_hincrbyfloat, "Adds a float to a field of a hash.", 0, 0, 0},
    {"hrandfield", -2, R, cmd_hrandfield, "Fields of a hash at random (count, WITHVALUES).", 0,
     0, 0},
    {"hscan", -3, R, cmd_hscan, "Iterates a hash (MATCH COUNT): all of it in one step.", 0, 0,
     0},
    /* sets (cmd_set.c): a write rebuilds the value, O(members), a fill here */
    {"sadd", -3, W, cmd_sadd, "Adds members to a set; replies the members added.", 0, 0, 0},
    {"srem", -3, F, cmd_srem, "Removes members of a set (the last one flushes the key).", 0, 0,
     0},
    {"sismember", 3, R, cmd_sismember, "Whether a set has a member.", 0, 0, 0},
    {"smismember", -3, R, cmd_smismember, "Whether a set has each member.", 0, 0, 0},
    {"smembers", 2, R, cmd_smembers, "The members of a set.", 0, 0, 0},
    {"scard", 2, R, cmd_scard, "The number of members of a set.", 0, 0, 0},
    {"spop", -2, F, cmd_spop, "Removes and returns members at random.", 0, 0, 0},
    {"srandmember", -2, R, cmd_srandmember, "Members of a set at random.", 0, 0, 0},
    {"sinter", -2, R, cmd_sinter, "The intersection of sets.", 0, 0, 0},
    {"sintercard", -3, R, cmd_sintercard, "The size of the intersection of sets (LIMIT).", 0, 0,
     0},
    {"sunion", -2, R, cmd_sunion, "The union of sets.", 0, 0, 0},
    {"sdiff", -2, R, cmd_sdiff, "The members of the first set not in the others.", 0, 0, 0},
    {"sinterstore", -3, W, cmd_sinterstore, "Stores the intersection of sets.", 0, 0, 0},
    {"sunionstore", -3, W, cmd_sunionstore, "Stores the union of sets.", 0, 0, 0},
    {"sdiffstore", -3, W, cmd_sdiffstore, "Stores the difference of sets.", 0, 0, 0},
    {"smove", 4, W, cmd_smove, "Moves a member from one set to another.", 0, 0, 0},
    {"sscan", -3, R, cmd_sscan, "Iterates a set (MATCH COUNT): all of it in one step.", 0, 0, 0},
    /* cohort */
    {"flushprefix", -2, F | X, cmd_flushprefix,
     "Flushes every key with a prefix on every member; replies the count removed here (ASYNC: "
     "OK, without waiting for this node's sweep).", 0, 0, 0},
    {"seed", -3, W | X, cmd_seed, "Sets a value on every member (EX s | PX ms).", 0, 0, 0},
    {"getl", 2, R | X, cmd_getl, "Returns [value, token] for a later SETL.", 0, 0, 0},
    {"setl", -4, W | X, cmd_setl,
     "Fills a key only if it was not flushed since GETL issued the token.", 0, 0, 0},
    {"cohort.status", 1, R | X, cmd_cohort_status, "This node's state.", 0, 0, 0},
    {"cohort.keyspace", 2, R | X, cmd_cohort_keyspace,
     "The keyspace a key falls in: [name, write mode, matching prefix] (nil: none).", 0, 0, 0},
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
    /* presence (svc/presence.c, cmd_presence.c) */
    {"presence.join", -3, X, cmd_presence_join,
     "Joins member to a presence channel from this node: channel member [meta] [TTL seconds]; "
     "1 new, 0 refreshed. Published on __presence__:<channel>.", 0, 0, 0},
    {"presence.leave", 3, X, cmd_presence_leave,
     "Removes this node's entry of member from a presence channel: 1 removed, 0 none.", 0, 0, 0},
    {"presence.list", 2, R | X, cmd_presence_list,
     "A presence channel's entries on every node: [member, meta, node] each.", 0, 0, 0},
    {"presence.count", 2, R | X, cmd_presence_count,
     "The number of entries of a presence channel on every node.", 0, 0, 0},
};

#define NCOMMANDS (sizeof(table) / sizeof(table[0]))
#define INDEX_SLOTS 512 /* power of two, > 2 * NCOMMANDS */
_Static_assert(NCOMMANDS * 2 < INDEX_SLOTS, "grow INDEX_SLOTS");
#define MAX_NAME 32

static command_t *index_slots[INDEX_SLOTS];
static int index_built;

/* Where a command's keys are, as redis-server's COMMAND INFO declares them
 * (first, last, step; 0 0 0: no keys; last -1: to the end). A command not
 * listed has one key, argument 1. 'scoped' is where dispatch adds the
 * database byte when it differs (OBJECT and MEMORY name their key after a
 * subcommand, FLUSHPREFIX's prefix is scoped to the database, shard channels
 * are not keys of a database). */
typedef struct key_spec {
    const char *name;
    signed char first, last, step;      /* COMMAND INFO */
    signed char sfirst, slast, sstep;   /* scoped by dispatch */
} key_spec_t;

#define NUMKEYS 0x7f /* sstep: the keys are sfirst .. sfirst + argv[slast] - 1 */
#define NOKEYS(name) {name, 0, 0, 0, 0, 0, 0}
#define KEYS(name, f, l, s) {name, f, l, s, f, l, s}
static const key_spec_t key_specs[] = {
    NOKEYS("ping"), NOKEYS("echo"), NOKEYS("quit"), NOKEYS("hello"), NOKEYS("auth"),
    NOKEYS("select"), NOKEYS("client"), NOKEYS("command"), NOKEYS("config"), NOKEYS("info"),
    NOKEYS("dbsize"), NOKEYS("time"), NOKEYS("role"), NOKEYS("lastsave"), NOKEYS("wait"),
    NOKEYS("slowlog"), NOKEYS("latency"), NOKEYS("keys"), NOKEYS("scan"), NOKEYS("flushall"),
    NOKEYS("flushdb"), NOKEYS("randomkey"), NOKEYS("cohort.status"), NOKEYS("cohort.members"),
    NOKEYS("reset"), NOKEYS("multi"), NOKEYS("exec"), NOKEYS("discard"), NOKEYS("unwatch"),
    NOKEYS("swapdb"), NOKEYS("eval"), NOKEYS("evalsha"), NOKEYS("eval_ro"),
    NOKEYS("evalsha_ro"), NOKEYS("script"), NOKEYS("publish"), NOKEYS("subscribe"),
    NOKEYS("psubscribe"), NOKEYS("unsubscribe"), NOKEYS("punsubscribe"), NOKEYS("pubsub"),
    NOKEYS("leader"), NOKEYS("leader.acquire"), NOKEYS("leader.release"), NOKEYS("jobs"),
    NOKEYS("job.run"), NOKEYS("job.history"), NOKEYS("presence.join"),
    NOKEYS("presence.leave"), NOKEYS("presence.list"), NOKEYS("presence.count"),
    NOKEYS("shutdown"),
    {"spublish", 1, 1, 1, 0, 0, 0}, {"ssubscribe", 1, -1, 1, 0, 0, 0},
    {"sunsubscribe", 1, -1, 1, 0, 0, 0},
    {"object", 0, 0, 0, 2, 2, 1}, {"memory", 0, 0, 0, 2, 2, 1},
    {"flushprefix", 0, 0, 0, 1, 1, 1},
    KEYS("del", 1, -1, 1), KEYS("unlink", 1, -1, 1), KEYS("exists", 1, -1, 1),
    KEYS("touch", 1, -1, 1), KEYS("mget", 1, -1, 1), KEYS("mset", 1, -1, 2),
    KEYS("msetnx", 1, -1, 2), KEYS("rename", 1, 2, 1), KEYS("renamenx", 1, 2, 1),
    KEYS("copy", 1, 2, 1), KEYS("lcs", 1, 2, 1), KEYS("watch", 1, -1, 1),
    KEYS("sinter", 1, -1, 1), KEYS("sunion", 1, -1, 1), KEYS("sdiff", 1, -1, 1),
    KEYS("sinterstore", 1, -1, 1), KEYS("sunionstore", 1, -1, 1),
    KEYS("sdiffstore", 1, -1, 1), KEYS("smove", 1, 2, 1),
    /* numkeys, then that many keys, then options: step NUMKEYS says so */
    {"sintercard", 0, 0, 0, 2, 1, NUMKEYS},
};
#undef NOKEYS
#undef KEYS

/* The scoped key positions of each table entry, by index (built with the
 * lookup index). */
static struct {
    signed char first, last, step;
} scoped[NCOMMANDS];

static const key_spec_t *find_key_spec(const char *name)
{
    for (size_t i = 0; i < sizeof(key_specs) / sizeof(key_specs[0]); i++)
        if (strcmp(name, key_specs[i].name) == 0)
            return &key_specs[i];
    return NULL;
}

void commands_key_positions(const command_t *cmd, int *first, int *last, int *step)
{
    const key_spec_t *ks = find_key_spec(cmd->name);
    *first = ks ? ks->first : 1;
    *last = ks ? ks->last : 1;
    *step = ks ? ks->step : 1;
}

static uint64_t name_hash(const char *lower, size_t len)
{
    return XXH3_64bits(lower, len);
}

static void build_index(void)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const key_spec_t *ks = find_key_spec(table[i].name);
        scoped[i].first = ks ? ks->sfirst : 1;
        scoped[i].last = ks ? ks->slast : 1;
        scoped[i].step = ks ? ks->sstep : 1;
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

/* Writes redis-server 7.0 runs over maxmemory (no "denyoom" flag): they only
 * remove or re-time what is there; and cohort's that touch no cache memory. */
static int runs_over_maxmemory(const command_t *cmd)
{
    static const char *const names[] = {"swapdb",         "getex",          "expire",    "pexpire",
                                        "persist",        "expireat",       "pexpireat", "smove",
                                        "leader.acquire", "leader.release", "job.run"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(cmd->name, names[i]) == 0)
            return 1;
    return 0;
}

/* 1 when a write must get -OOM: its arguments alone exceed maxmemory, or
 * (a write that adds memory) the cache is over maxmemory and its policy
 * cannot evict enough (noeviction; a volatile-* policy with no key that has
 * an expire time), as redis-server's performEvictions before a command. */
static int refuse_oom(node_t *n, const command_t *cmd, int argc, const size_t *argl)
{
    size_t max = cache_maxmemory(n->cache);
    if (!max)
        return 0;
    if (over_maxmemory(n, argc, argl))
        return 1;
    if (cache_used_memory(n->cache) <= max || runs_over_maxmemory(cmd))
        return 0;
    cache_evict(n->cache);
    return cache_used_memory(n->cache) > max;
}

/* The subcommands redis-server 7.0 knows for each container command cohort
 * has: in subscribe mode it names a known one in its refusal and answers an
 * unknown one as unknown, whether or not cohort implements it. */
static const struct {
    const char *name;
    const char *subs; /* space-separated, lower case */
} redis_subcommands[] = {
    {"client", " caching getname getredir help id info kill list no-evict pause reply setname "
               "tracking trackinginfo unblock unpause "},
    {"command", " count docs getkeys getkeysandflags help info list "},
    {"config", " get help resetstat rewrite set "},
    {"pubsub", " channels help numpat numsub shardchannels shardnumsub "},
};

/* 1 when sub (any case) is a subcommand redis-server has for cmd. */
static int known_subcommand(const command_t *cmd, const char *sub, size_t len)
{
    char word[MAX_NAME + 2]; /* " sub " */
    if (len == 0 || len >= MAX_NAME)
        return 0;
    word[0] = ' ';
    for (size_t i = 0; i < len; i++)
        word[i + 1] = (char)tolower((unsigned char)sub[i]);
    word[len + 1] = ' ';
    for (size_t i = 0; i < sizeof(redis_subcommands) / sizeof(redis_subcommands[0]); i++)
        if (strcmp(redis_subcommands[i].name, cmd->name) == 0)
            return memmem(redis_subcommands[i].subs, strlen(redis_subcommands[i].subs), word,
                          len + 2) != NULL;
    return 1;
}

/* RESP2 subscribe mode refuses every command but a few, naming the command
 * as redis-server does ("client|list" for a subcommand; an unknown
 * subcommand is answered as unknown first). */
static void reply_subscribe_mode(client_t *c, const command_t *cmd, int argc, const char **argv,
                                 const size_t *argl)
{
    if ((cmd->flags & CMD_CONTAINER) && argc >= 2 && !known_subcommand(cmd, argv[1], argl[1])) {
        char upper[MAX_NAME];
        size_t n = strlen(cmd->name);
        for (size_t i = 0; i <= n; i++)
            upper[i] = (char)toupper((unsigned char)cmd->name[i]);
        int slen = argl[1] > 128 ? 128 : (int)argl[1];
        resp_add_errorf(&c->out, "ERR unknown subcommand '%.*s'. Try %s HELP.", slen, argv[1],
                        upper);
        return;
    }
    char full[MAX_NAME * 2 + 2];
    size_t n = strlen(cmd->name);
    memcpy(full, cmd->name, n);
    if ((cmd->flags & CMD_CONTAINER) && argc >= 2 && argl[1] < MAX_NAME) {
        full[n++] = '|';
        for (size_t i = 0; i < argl[1]; i++)
            full[n++] = (char)tolower((unsigned char)argv[1][i]);
    }
    full[n] = '\0';
    resp_add_errorf(&c->out,
                    "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
                    "QUIT / RESET are allowed in this context",
                    full);
}

/* A write of a key that is not local-only, while this node does not serve
 * (out of contact, catching up): it would read-modify-write from nothing
 * and send the result everywhere. Replies TRYAGAIN and returns 1. */
static int refuse_unserved_write(node_t *n, client_t *c, const command_t *cmd, int argc,
                                 const char **argv, const size_t *argl)
{
    if (!n->cluster || !(cmd->flags & CMD_WRITE) || (cmd->flags & (CMD_FLUSH | CMD_COHORT)) ||
        argc < 2 || node_serves_cache(n) ||
        keyspaces_mode(n->keyspaces, argv[1], argl[1]) == KS_LOCAL) /* the client's key */
        return 0;
    const char *why = cluster_why_not_serving(n->cluster);
    resp_add_errorf(&c->out, "TRYAGAIN this node is not serving (%s); write again later or "
                    "through another node", why ? why : "not in contact");
    return 1;
}

/* Runs the handler with the database byte in front of each key argument
 * (see the top of this file). The copies live on the stack for commands of
 * up to SCOPE_ARGS arguments and SCOPE_BYTES key bytes, else on the heap;
 * every copy is NUL-terminated as the client's arguments are. */
#define SCOPE_ARGS 16
#define SCOPE_BYTES 512
static void run_scoped(client_t *c, command_t *cmd, int argc, const char **argv,
                       const size_t *argl)
{
    size_t idx = (size_t)(cmd - table);
    int first = scoped[idx].first, last = scoped[idx].last, step = scoped[idx].step;
    if (first == 0 || first >= argc) {
        cmd->fn(c, argc, argv, argl);
        return;
    }
    if (step == NUMKEYS) {
        long long nk;
        if (cmd_parse_ll(argv[last], argl[last], &nk) < 0 || nk < 1 || nk > argc - first) {
            cmd->fn(c, argc, argv, argl); /* the handler replies the error */
            return;
        }
        last = first + (int)nk - 1;
        step = 1;
    }
    last = last < 0 ? argc + last : last;
    if (last >= argc)
        last = argc - 1;
    size_t total = 0;
    for (int i = first; i <= last; i += step)
        total += argl[i] + 2;
    const char *sv[SCOPE_ARGS];
    size_t sl[SCOPE_ARGS];
    char sb[SCOPE_BYTES];
    int small = argc <= SCOPE_ARGS;
    const char **v = small ? sv : xmalloc((size_t)argc * sizeof(*v));
    size_t *l = small ? sl : xmalloc((size_t)argc * sizeof(*l));
    char *b = total <= SCOPE_BYTES ? sb : xmalloc(total);
    memcpy(v, argv, (size_t)argc * sizeof(*v));
    memcpy(l, argl, (size_t)argc * sizeof(*l));
    assert(c->db >= 0 && c->db < 256);
    size_t o = 0;
    for (int i = first; i <= last; i += step) {
        b[o] = (char)c->db;
        memcpy(b + o + 1, argv[i], argl[i]);
        b[o + 1 + argl[i]] = '\0';
        v[i] = b + o;
        l[i] = argl[i] + 1;
        o += argl[i] + 2;
    }
    if (!cmd_wait_for_keys(c, argc, v, l, first, last, step))
        cmd->fn(c, argc, v, l);
    if (!small) {
        free(v);
        free(l);
    }
    if (b != sb)
        free(b);
}

/* Runs cmd's handler (in c's database), counting its time and calls. */
static void run_command(client_t *c, command_t *cmd, int argc, const char **argv,
                        const size_t *argl)
{
    if (refuse_unserved_write(cmd_node(c), c, cmd, argc, argv, argl))
        return;
    uint64_t t0 = uv_hrtime();
    size_t out_before = buf_len(&c->out);
    client_t *prev = tracking_set_current(cmd_node(c)->tracking, c);
    int reading = c->cmd_flags & CMDC_READONLY_CMD;
    if (cmd->flags & CMD_READONLY)
        c->cmd_flags |= CMDC_READONLY_CMD;
    else
        c->cmd_flags &= ~CMDC_READONLY_CMD;
    run_scoped(c, cmd, argc, argv, argl);
    if (c->cmd_flags & CMDC_TOO_BIG) { /* its write was refused (cmd_util.c): nothing written */
        c->cmd_flags &= ~CMDC_TOO_BIG;
        c->out.end = c->out.start + out_before;
        resp_add_errorf(&c->out, "ERR value too large to replicate: a key or value sent to the "
                        "cluster's members may be at most %u bytes; nothing was written",
                        FRAME_VALUE_MAX);
    }
    c->cmd_flags = (c->cmd_flags & ~CMDC_READONLY_CMD) | reading;
    tracking_set_current(cmd_node(c)->tracking, prev);
    if (c->tracking)
        tracking_command_done(cmd_node(c)->tracking, c, cmd->fn == cmd_client);
    uint64_t usec = (uv_hrtime() - t0) / 1000;
    cmd->usec += usec;
    cmd->calls++;
    c->last_cmd = cmd->name;
    if (!(cmd->flags & CMD_NOAUTH))
        slowlog_maybe_add(c, argc, argv, argl, usec);
}

void commands_exec_queued(client_t *c, int argc, const char **argv, const size_t *argl)
{
    command_t *cmd = commands_lookup(argv[0], argl[0]);
    assert(cmd); /* checked when it was queued */
    run_command(c, cmd, argc, argv, argl);
}

/* Runs the command's checks (in redis-server's order) and handler; the
 * reply goes to c->out. Returns 1 when a check refused the command. */
static int check_and_run(node_t *n, client_t *c, int argc, const char **argv, const size_t *argl)
{
    if (multi_active(c) && cmd_is(argv[0], argl[0], "watch") && argc >= 2) {
        resp_add_error(&c->out, "ERR WATCH inside MULTI is not allowed");
        return 0;
    }
    command_t *cmd = commands_lookup(argv[0], argl[0]);
    if (!cmd) {
        reply_unknown(c, argc, argv, argl);
        return 1;
    }
    if ((cmd->arity > 0 && argc != cmd->arity) || argc < -cmd->arity) {
        cmd->rejected++;
        cmd_reply_arity(c, cmd->name);
        return 1;
    }
    if (!c->authenticated && !(cmd->flags & CMD_NOAUTH)) {
        cmd->rejected++;
        resp_add_error(&c->out, "NOAUTH Authentication required.");
        return 1;
    }
    if ((c->flags & CLIENT_PUBSUB) && c->proto == 2 && !(cmd->flags & CMD_PUBSUB)) {
        cmd->rejected++;
        reply_subscribe_mode(c, cmd, argc, argv, argl);
        return 1;
    }
    if (cmd_script_refuse_busy(c, cmd, argc, argv, argl)) { /* no OOM check while busy */
        cmd->rejected++;
        return 1;
    }
    if ((cmd->flags & CMD_WRITE) && !(cmd->flags & CMD_FLUSH) && refuse_oom(n, cmd, argc, argl)) {
        resp_add_error(&c->out, "OOM command not allowed when used memory > 'maxmemory'.");
        return 1;
    }
    if (multi_active(c) && !(cmd->flags & CMD_MULTI_PASS)) {
        multi_queue(c, argc, argv, argl);
        return 0;
    }
    run_command(c, cmd, argc, argv, argl);
    return 0;
}

/* As check_and_run; a refusal inside MULTI makes EXEC abort, and an EXEC
 * refused itself replies EXECABORT naming why, in MULTI or not (as
 * redis-server's rejectCommand). */
static void dispatch(node_t *n, client_t *c, int argc, const char **argv, const size_t *argl)
{
    size_t out_before = buf_len(&c->out);
    if (!check_and_run(n, c, argc, argv, argl))
        return;
    int is_exec = cmd_is(argv[0], argl[0], "exec");
    if (is_exec || multi_active(c))
        multi_refused(c, is_exec, out_before);
}

/* CLIENT REPLY: drops what the command replied when replies are off or
 * skipped, then moves a pending SKIP on to the next command (as
 * redis-server's resetClient). */
static void apply_reply_mode(client_t *c, size_t out_before)
{
    if ((c->cmd_flags & (CMDC_REPLY_OFF | CMDC_REPLY_SKIP)) && buf_len(&c->out) > out_before)
        c->out.end = c->out.start + out_before; /* drop this command's reply */
    c->cmd_flags &= ~CMDC_REPLY_SKIP;
    if (c->cmd_flags & CMDC_REPLY_SKIP_NEXT) {
        c->cmd_flags |= CMDC_REPLY_SKIP;
        c->cmd_flags &= ~CMDC_REPLY_SKIP_NEXT;
    }
}

void commands_client_closed(client_t *c)
{
    multi_client_closed(c);
}

void commands_execute(void *ud, client_t *c, int argc, const char **argv, const size_t *argl)
{
    node_t *n = ud;
    n->stats.commands_processed++;
    node_metrics_sample(n, clock_now_ms());
    size_t out_before = buf_len(&c->out);
    if (!cmd_wait_resumed(c)) {
        dispatch(n, c, argc, argv, argl);
        cmd_wait_after(c, out_before);
        if (c->flags & CLIENT_SUSPENDED)
            return; /* runs again, or its reply comes back, when resumed */
    }
    if (c->cmd_flags & (CMDC_REPLY_OFF | CMDC_REPLY_SKIP | CMDC_REPLY_SKIP_NEXT))
        apply_reply_mode(c, out_before);
    if (c->flags & CLIENT_PUBSUB) /* a subscriber's replies count in its limits */
        pubsub_after_reply(n->pubsub, c);
}
