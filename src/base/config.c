/* config: cohortd's settings, as one table of data, read from an INI file
 * (through inih) and from command-line flags; see config.h.
 *
 * Owns: settings[] (section, key, type, field, bounds, default, help): every
 * setting is one row, and defaults, parsing, copying, freeing and --help are
 * all driven from it. Also the flag table flags[].
 * Never: keeps a half-applied config. A file or a command line is applied to a
 * copy; the caller's config_t changes only when everything was valid.
 *
 * How a file is read: the whole file is loaded into memory and handed to
 * ini_parse_stream() one line at a time by our own reader, which counts lines
 * (Debian's inih does not pass line numbers to the handler), strips leading
 * whitespace (so inih never treats an indented line as the continuation of
 * the previous value), refuses NUL bytes and over-long lines, and checks
 * [section] headers as it hands them over. The first error by line wins and
 * stops the parse; inih's own syntax errors (it returns their line) are
 * described from the line's text.
 *
 * Value syntax follows inih as Debian builds it: ';' or '#' at the start of a
 * line is a comment; ';' after whitespace ends a value (an inline comment);
 * '#' inside a value is kept; a line is at most LINE_MAX_CHARS characters.
 */
#include "config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "mem.h"
#include "version.h"

#define FILE_MAX_BYTES (1024 * 1024) /* a config file larger than this is a mistake */
#define NAME_MAX_CHARS 63            /* node and cluster names (the peer link carries 63) */
#define SUN_PATH_MAX   107           /* sizeof(sockaddr_un.sun_path) - 1 */
#define LOG_PATH_MAX   4095          /* log.c keeps the path in a 4096-byte buffer */
#define SIZE_BIG       (1ULL << 50)  /* "no practical limit" for sizes */
#define KB             1024LL
#define MB             (1024LL * KB)
#define GB             (1024LL * MB)
#define SEC            1000LL
#define MIN            (60 * SEC)
#define HOUR           (60 * MIN)
#define DAY            (24 * HOUR)

/* ---- types ---------------------------------------------------------------- */

enum stype {
    T_STRING,   /* char *: any text, "" stores NULL; max: longest length (0: any) */
    T_IDENT,    /* char *: letters, digits, '.', '_', '-'; 1..max characters */
    T_ADDR,     /* char *: a numeric IPv4 or IPv6 address */
    T_ENUM,     /* char *: one of choices (case-insensitive, stored lower-case) */
    T_INT,      /* int: a decimal integer in min..max */
    T_COUNT,    /* size_t: a decimal integer in min..max */
    T_SIZE,     /* size_t: bytes, with an optional unit, in min..max */
    T_DURATION, /* int: a duration stored in units of 'unit' ms; bounds in that unit */
    T_BOOL,     /* int: 0 or 1 from yes/no/true/false/on/off/1/0 */
    T_OCTAL,    /* int: octal permission bits in min..max */
    T_PEERS,    /* strlist_t: host:port entries, one per repeated key */
    T_CIDRS,    /* strlist_t: addr/len entries (a bare address is stored as /32 or /128) */
    T_ADDRS,    /* strlist_t: numeric addresses */
};

enum store { ST_STR, ST_INT, ST_SIZE, ST_LIST };

typedef struct setting {
    const char *section;
    const char *key;
    enum stype type;
    size_t offset;              /* of the field in config_t */
    long long min, max;         /* numeric bounds (T_STRING, T_IDENT: length) */
    long long unit;             /* T_DURATION: ms per stored unit and per bare number */
    const char *const *choices; /* T_ENUM: NULL-terminated */
    const char *def;            /* default, written as in the file; NULL: none */
    const char *help;           /* one line for --help and etc/cohort.ini */
} setting_t;

/* A parsed value before it is stored: a number, or an owned string. */
typedef struct value {
    long long num;
    char *str;
} value_t;

typedef int (*parse_fn)(const setting_t *s, const char *text, value_t *out, char *why,
                        size_t whylen);

static int parse_string(const setting_t *, const char *, value_t *, char *, size_t);
static int parse_ident(const setting_t *, const char *, value_t *, char *, size_t);
static int parse_addr(const setting_t *, const char *, value_t *, char *, size_t);
static int parse_enum(const setting_t *, const char *, value_t *, char *, size_t);
static int parse_int(const setting_t *, const char *, value_t *, char *, size_t);
static int parse_size(const setting_t *, const char *, value_t *, char *, size_t);
static int parse_duration(const setting_t *, const char *, value_t *, char *, size_t);
static int parse_bool(const setting_t *, const char *, value_t *, char *, size_t);
static int parse_octal(const setting_t *, const char *, value_t *, char *, size_t);
static int parse_peer(const setting_t *, const char *, value_t *, char *, size_t);
static int parse_cidr(const setting_t *, const char *, value_t *, char *, size_t);

/* What each type is called in --help, how it parses, and how it is stored. */
static const struct type_info {
    const char *what;
    parse_fn parse;
    enum store store;
} types[] = {
    [T_STRING] = {"text", parse_string, ST_STR},
    [T_IDENT] = {"name", parse_ident, ST_STR},
    [T_ADDR] = {"address", parse_addr, ST_STR},
    [T_ENUM] = {"choice", parse_enum, ST_STR},
    [T_INT] = {"integer", parse_int, ST_INT},
    [T_COUNT] = {"integer", parse_int, ST_SIZE},
    [T_SIZE] = {"size", parse_size, ST_SIZE},
    [T_DURATION] = {"duration", parse_duration, ST_INT},
    [T_BOOL] = {"yes/no", parse_bool, ST_INT},
    [T_OCTAL] = {"octal", parse_octal, ST_INT},
    [T_PEERS] = {"host:port, repeatable", parse_peer, ST_LIST},
    [T_CIDRS] = {"CIDR, repeatable", parse_cidr, ST_LIST},
    [T_ADDRS] = {"address, repeatable", parse_addr, ST_LIST},
};

/* ---- the settings --------------------------------------------------------- */

static const char *const roles[] = {"hot", "warm", NULL};
static const char *const write_modes[] = {"replicate", "invalidate", "local", NULL};
static const char *const levels[] = {"debug", "info", "warning", "error", NULL};
static const char *const policies[] = {"allkeys-lru",  "allkeys-lfu",  "allkeys-random",
                                       "volatile-lru", "volatile-lfu", "volatile-random",
                                       "volatile-ttl", "noeviction",   NULL};

/* clang-format off */
#define SET(sec, key, type, field, min, max, unit, choices, def, help)                           \
    {sec, key, type, offsetof(config_t, field), min, max, unit, choices, def, help}
/* clang-format on */

static const setting_t settings[] = {
    SET("node", "name", T_IDENT, name, 1, NAME_MAX_CHARS, 0, NULL, NULL,
        "unique name of this node in the cluster (default: the hostname)"),
    SET("node", "role", T_ENUM, role, 0, 0, 0, roles, "hot",
        "hot or warm; a warm node never holds a lease, so it never runs leader jobs"),
    SET("node", "data_dir", T_STRING, data_dir, 1, 3900, 0, NULL, "/var/lib/cohort",
        "directory for the embedded store (cohort.db), created if missing"),
    SET("node", "log_file", T_STRING, log_file, 0, LOG_PATH_MAX, 0, NULL, NULL,
        "log file, opened for append and reopened on SIGHUP (default: stderr)"),
    SET("node", "log_level", T_ENUM, log_level, 0, 0, 0, levels, "info",
        "debug, info, warning or error"),

    SET("client", "bind", T_ADDR, bind, 0, 0, 0, NULL, "127.0.0.1",
        "IP address the Redis protocol listener binds to"),
    SET("client", "port", T_INT, port, 0, 65535, 0, NULL, "7379",
        "TCP port for Redis clients; 0 disables TCP"),
    SET("client", "unixsocket", T_STRING, unixsocket, 0, SUN_PATH_MAX, 0, NULL, NULL,
        "path of a unix socket for Redis clients (default: none)"),
    SET("client", "unixsocketperm", T_OCTAL, unixsocketperm, 0, 0777, 0, NULL, "0700",
        "permissions of the unix socket, in octal"),
    SET("client", "requirepass", T_STRING, requirepass, 0, 0, 0, NULL, NULL,
        "password clients must AUTH with (default: none)"),
    SET("client", "maxclients", T_COUNT, maxclients, 1, 1000000, 0, NULL, "10000",
        "most clients connected at once"),
    SET("client", "max_bulk_len", T_SIZE, max_bulk_len, 1, 1ULL << 30, 0, NULL, "64mb",
        "longest single argument a client may send"),
    SET("client", "max_multibulk", T_COUNT, max_multibulk, 1, INT_MAX, 0, NULL, "1048576",
        "most arguments in one command"),
    SET("client", "query_buffer_limit", T_SIZE, query_buffer_limit, 1, SIZE_BIG, 0, NULL, "128mb",
        "most unprocessed request bytes held for one client"),
    SET("client", "output_buffer_limit", T_SIZE, output_buffer_limit, 1, SIZE_BIG, 0, NULL, "64mb",
        "most unsent reply bytes held for one client before it is dropped"),
    SET("client", "pubsub_output_limit_hard", T_SIZE, pubsub_output_limit_hard, 0, SIZE_BIG, 0,
        NULL, "32mb", "a subscriber holding this many unsent bytes is dropped; 0 no limit"),
    SET("client", "pubsub_output_limit_soft", T_SIZE, pubsub_output_limit_soft, 0, SIZE_BIG, 0,
        NULL, "8mb", "a subscriber over this for pubsub_output_soft_seconds is dropped; 0 none"),
    SET("client", "pubsub_output_soft_seconds", T_DURATION, pubsub_output_soft_s, 0, 86400, SEC,
        NULL, "60", "how long a subscriber may stay over the soft limit (bare number: seconds)"),
    SET("client", "pubsub_max_subscriptions", T_COUNT, pubsub_max_subscriptions, 0, 100000000, 0,
        NULL, "1000000", "most channels + patterns + shard channels one client may hold; 0 none"),
    SET("client", "tracking_table_max_keys", T_COUNT, tracking_table_max_keys, 0, SIZE_BIG, 0,
        NULL, "1000000",
        "keys remembered for client-side caching (CLIENT TRACKING); beyond, the oldest are "
        "invalidated; 0 no limit"),
    SET("client", "presence_max_entries", T_COUNT, presence_max_entries, 0, 100000000, 0, NULL,
        "2000000", "most PRESENCE.JOIN entries this node holds at once (its own); 0 no limit"),
    SET("client", "timeout", T_DURATION, timeout_s, 0, 365 * 86400, SEC, NULL, "0",
        "close a client idle this long (bare number: seconds); 0 never"),
    SET("client", "tcp_backlog", T_INT, tcp_backlog, 1, 65535, 0, NULL, "511",
        "listen() backlog of the client port"),

    SET("http", "bind", T_ADDR, http_bind, 0, 0, 0, NULL, "127.0.0.1",
        "IP address of the HTTP endpoint (/health, /metrics, /v1/status)"),
    SET("http", "port", T_INT, http_port, 0, 65535, 0, NULL, "7380",
        "TCP port of the HTTP endpoint; 0 disables it"),
    SET("http", "max_request", T_SIZE, http_max_request, 256, 16 * MB, 0, NULL, "8kb",
        "largest HTTP request head accepted"),

    SET("cluster", "name", T_IDENT, cluster_name, 1, NAME_MAX_CHARS, 0, NULL, "cohort",
        "name of the cluster; every member must use the same"),
    SET("cluster", "port", T_INT, cluster_port, 1, 65535, 0, NULL, "7381",
        "TCP port of the peer link"),
    SET("cluster", "bind", T_ADDR, cluster_bind, 0, 0, 0, NULL, "0.0.0.0",
        "IP address the peer link binds to"),
    SET("cluster", "key_file", T_STRING, key_file, 0, 0, 0, NULL, NULL,
        "file holding the shared cluster key; without it the node stays single"),
    SET("cluster", "peer", T_PEERS, peers, 0, 0, 0, NULL, NULL,
        "a member as host:port ([v6addr]:port); one line per member, this node may be listed"),
    SET("cluster", "authorized", T_CIDRS, authorized, 0, 0, 0, NULL, NULL,
        "addresses (CIDR) that may open a peer link (default: the peers)"),
    SET("cluster", "local_address", T_ADDRS, local_address, 0, 0, 0, NULL, NULL,
        "another IP address of this machine, so it recognises itself among the peers"),
    SET("cluster", "lease", T_DURATION, lease_ms, 10, 10 * MIN, 1, NULL, "2000",
        "coherence lease T: serve cached values only if current within T (bare number: ms)"),
    SET("cluster", "heartbeat", T_DURATION, heartbeat_ms, 10, MIN, 1, NULL, "100",
        "interval between heartbeats on a peer link (bare number: ms)"),
    SET("cluster", "suspect_after", T_DURATION, suspect_ms, 10, 10 * MIN, 1, NULL, "500",
        "silence after which a peer is suspect (bare number: ms)"),
    SET("cluster", "probe_timeout", T_DURATION, probe_ms, 10, MIN, 1, NULL, "400",
        "how long others get to probe a suspect peer (bare number: ms)"),
    SET("cluster", "dead_after", T_DURATION, dead_after_ms, 10, DAY, 1, NULL, "10000",
        "unreachable this long (seen from the majority side) before a peer is dead (bare: ms)"),
    SET("cluster", "flush_timeout", T_DURATION, flush_timeout_ms, 10, 10 * MIN, 1, NULL, "1000",
        "longest a flush waits for acknowledgements (bare number: ms)"),
    SET("cluster", "replay_log", T_COUNT, replay_log, 1, 16777216, 0, NULL, "65536",
        "flushes kept to replay to a peer that reconnects"),

    SET("cache", "maxmemory", T_SIZE, maxmemory, 0, SIZE_BIG, 0, NULL, "0",
        "evict entries beyond this (see maxmemory_policy); 0 no limit"),
    SET("cache", "maxmemory_policy", T_ENUM, maxmemory_policy, 0, 0, 0, policies, "allkeys-lru",
        "what to evict at maxmemory, as redis-server's maxmemory-policy"),
    SET("cache", "writes", T_ENUM, writes, 0, 0, 0, write_modes, "replicate",
        "how writes of keys in no [keyspace] travel: replicate, invalidate or local"),
    SET("cache", "databases", T_INT, databases, 1, 256, 0, NULL, "16",
        "number of databases (SELECT 0 .. databases-1)"),

    SET("store", "url", T_STRING, store_url, 0, 0, 0, NULL, NULL,
        "shared database: sqlite:///path or postgresql://... (default: sqlite in data_dir)"),
    SET("store", "member_lease", T_DURATION, member_lease_ms, 1000, 10 * MIN, 1, NULL, "10s",
        "membership row lease, judged by the database's clock; renewed every third (bare: ms)"),

    SET("leases", "ttl", T_DURATION, lease_ttl_ms, 300, 10 * MIN, 1, NULL, "2s",
        "leader lease time to live; renewed every ttl/3 (bare number: ms)"),

    SET("scheduler", "timezone", T_STRING, timezone, 0, 200, 0, NULL, "UTC",
        "IANA time zone of cron expressions, e.g. Europe/Berlin"),
    SET("scheduler", "retention", T_DURATION, retention_s, 60, 3650 * 86400, SEC, NULL, "168h",
        "job run history kept this long, e.g. 168h (7 days; bare number: seconds)"),
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* Flags that are shorthands for one setting; --set reaches every setting. */
static const struct flag {
    const char *name;
    const char *section;
    const char *key;
    const char *arg;
} flags[] = {
    {"bind", "client", "bind", "ADDR"},
    {"port", "client", "port", "N"},
    {"unixsocket", "client", "unixsocket", "PATH"},
    {"name", "node", "name", "NAME"},
    {"log-file", "node", "log_file", "PATH"},
    {"http-port", "http", "port", "N"},
    {"maxmemory", "cache", "maxmemory", "SIZE"},
};

#define NFLAGS    (sizeof(flags) / sizeof(flags[0]))
#define FLAG_BASE 256 /* getopt value of flags[i] is FLAG_BASE + i */
#define OPT_SET   (FLAG_BASE - 1)

/* ---- small helpers -------------------------------------------------------- */


static void *field(config_t *cfg, const setting_t *s)
{
    return (char *)cfg + s->offset;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Compares a (alen bytes, surrounding whitespace ignored) with b, ignoring
 * case. Returns 1 if equal. */
static int name_eq(const char *a, size_t alen, const char *b)
{
    while (alen && is_space(*a))
        a++, alen--;
    while (alen && is_space(a[alen - 1]))
        alen--;
    return strlen(b) == alen && strncasecmp(a, b, alen) == 0;
}

static int section_known(const char *name, size_t len)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (name_eq(name, len, settings[i].section))
            return 1;
    return 0;
}

static const setting_t *find_setting(const char *section, const char *key)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (name_eq(section, strlen(section), settings[i].section) &&
            name_eq(key, strlen(key), settings[i].key))
            return &settings[i];
    return NULL;
}

/* Parses a whole decimal number ("0".."9" only, no sign, no spaces) of n
 * bytes. Returns 0, or -1 if it is not one or exceeds max. */
static int parse_digits(const char *s, size_t n, unsigned long long max, unsigned long long *out)
{
    unsigned long long v = 0;
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Splits s into leading digits and a unit (blanks allowed before a unit).
 * Returns 0 with the number in *num and the unit in *unit, or -1. */
static int number_and_unit(const char *s, unsigned long long *num, const char **unit)
{
    size_t n = 0;
    while (is_digit(s[n]))
        n++;
    if (parse_digits(s, n, ULLONG_MAX, num) < 0)
        return -1;
    const char *u = s + n;
    while (*u == ' ' || *u == '\t')
        u++;
    if (u > s + n && *u == '\0')
        return -1; /* trailing blanks without a unit */
    *unit = u;
    return 0;
}

/* Writes bytes as the shortest exact "64mb"-style text. */
static const char *fmt_size(unsigned long long v, char *buf, size_t len)
{
    static const struct {
        const char *name;
        unsigned long long mult;
    } u[] = {{"gb", GB}, {"mb", MB}, {"kb", KB}};
    for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++)
        if (v && v % u[i].mult == 0) {
            snprintf(buf, len, "%llu%s", v / u[i].mult, u[i].name);
            return buf;
        }
    snprintf(buf, len, "%llu", v);
    return buf;
}

/* Writes ms as the shortest exact "10s"-style text. */
static const char *fmt_duration(long long ms, char *buf, size_t len)
{
    static const struct {
        const char *name;
        long long mult;
    } u[] = {{"h", HOUR}, {"m", MIN}, {"s", SEC}};
    for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++)
        if (ms && ms % u[i].mult == 0) {
            snprintf(buf, len, "%lld%s", ms / u[i].mult, u[i].name);
            return buf;
        }
    snprintf(buf, len, ms ? "%lldms" : "%lld", ms);
    return buf;
}

/* ---- public value helpers ------------------------------------------------- */

int config_parse_size(const char *s, size_t *out)
{
    static const struct {
        const char *name;
        unsigned long long mult;
    } units[] = {{"", 1},   {"b", 1},   {"k", KB}, {"kb", KB},
                 {"m", MB}, {"mb", MB}, {"g", GB}, {"gb", GB}};
    unsigned long long v;
    const char *unit;
    if (!s || number_and_unit(s, &v, &unit) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(unit, units[i].name) != 0)
            continue;
        if (v > SIZE_MAX / units[i].mult)
            return -1;
        *out = (size_t)(v * units[i].mult);
        return 0;
    }
    return -1;
}

int config_parse_duration_ms(const char *s, int default_unit_ms, long long *out)
{
    static const struct {
        const char *name;
        long long mult;
    } units[] = {{"ms", 1}, {"s", SEC}, {"m", MIN}, {"h", HOUR}};
    unsigned long long v;
    const char *unit;
    long long mult = 0;
    if (!s || default_unit_ms <= 0 || number_and_unit(s, &v, &unit) < 0)
        return -1;
    if (*unit == '\0')
        mult = default_unit_ms;
    for (size_t i = 0; !mult && i < sizeof(units) / sizeof(units[0]); i++)
        if (strcasecmp(unit, units[i].name) == 0)
            mult = units[i].mult;
    if (!mult || v > (unsigned long long)(LLONG_MAX / mult))
        return -1;
    *out = (long long)v * mult;
    return 0;
}

int config_parse_bool(const char *s, int *out)
{
    static const struct {
        const char *name;
        int value;
    } words[] = {{"yes", 1}, {"true", 1},  {"on", 1},  {"1", 1},
                 {"no", 0},  {"false", 0}, {"off", 0}, {"0", 0}};
    for (size_t i = 0; s && i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasecmp(s, words[i].name) == 0) {
            *out = words[i].value;
            return 0;
        }
    return -1;
}

/* ---- parsers, one per type ------------------------------------------------ */
/* Each returns 0 with the value in *out (a string owned by the caller), or
 * -1 with what is wrong in why. */

static int parse_string(const setting_t *s, const char *text, value_t *out, char *why,
                        size_t whylen)
{
    size_t n = strlen(text);
    if (s->max && n > (size_t)s->max) {
        errmsg(why, whylen, "longer than %lld characters", s->max);
        return -1;
    }
    out->str = n ? xstrdup(text) : NULL;
    return 0;
}

static int parse_ident(const setting_t *s, const char *text, value_t *out, char *why, size_t whylen)
{
    size_t n = strlen(text);
    if (n == 0) {
        errmsg(why, whylen, "must not be empty");
        return -1;
    }
    if (n > (size_t)s->max) {
        errmsg(why, whylen, "longer than %lld characters", s->max);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (!(is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
              c == '_' || c == '-')) {
            errmsg(why, whylen, "not a valid name (letters, digits, '.', '_', '-'): '%s'", text);
            return -1;
        }
    }
    out->str = xstrdup(text);
    return 0;
}

/* Returns AF_INET or AF_INET6 if text is a numeric address, else 0. */
static int addr_family(const char *text)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, text, buf) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, text, buf) == 1)
        return AF_INET6;
    return 0;
}

static int parse_addr(const setting_t *s, const char *text, value_t *out, char *why, size_t whylen)
{
    if (!addr_family(text)) {
        errmsg(why, whylen, "not an IP address: '%s'", text);
        return -1;
    }
    out->str = xstrdup(text);
    return 0;
}

static int parse_enum(const setting_t *s, const char *text, value_t *out, char *why, size_t whylen)
{
    char list[128] = "";
    size_t used = 0;
    for (size_t i = 0; s->choices[i]; i++) {
        if (strcasecmp(text, s->choices[i]) == 0) {
            out->str = xstrdup(s->choices[i]);
            return 0;
        }
        int n = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", s->choices[i]);
        if (n > 0 && (size_t)n < sizeof(list) - used)
            used += (size_t)n;
    }
    errmsg(why, whylen, "must be one of %s: '%s'", list, text);
    return -1;
}

static int parse_int(const setting_t *s, const char *text, value_t *out, char *why, size_t whylen)
{
    const char *p = text;
    int neg = *p == '-';
    unsigned long long v;
    if (*p == '-' || *p == '+')
        p++;
    if (parse_digits(p, strlen(p), ULLONG_MAX, &v) < 0) {
        errmsg(why, whylen, "not an integer: '%s'", text);
        return -1;
    }
    if ((neg && v != 0) || v > (unsigned long long)s->max || (long long)v < s->min) {
        errmsg(why, whylen, "must be between %lld and %lld", s->min, s->max);
        return -1;
    }
    out->num = (long long)v;
    return 0;
}

static int parse_size(const setting_t *s, const char *text, value_t *out, char *why, size_t whylen)
{
    size_t v;
    char lo[32], hi[32];
    if (config_parse_size(text, &v) < 0) {
        errmsg(why, whylen, "not a size: '%s'", text);
        return -1;
    }
    if ((unsigned long long)v < (unsigned long long)s->min ||
        (unsigned long long)v > (unsigned long long)s->max) {
        errmsg(why, whylen, "must be between %s and %s", fmt_size((unsigned long long)s->min, lo, 32),
            fmt_size((unsigned long long)s->max, hi, 32));
        return -1;
    }
    out->num = (long long)v;
    return 0;
}

static int parse_duration(const setting_t *s, const char *text, value_t *out, char *why,
                          size_t whylen)
{
    long long ms;
    char lo[32], hi[32];
    if (config_parse_duration_ms(text, (int)s->unit, &ms) < 0) {
        errmsg(why, whylen, "not a duration: '%s'", text);
        return -1;
    }
    if (ms % s->unit != 0) {
        errmsg(why, whylen, "not a whole number of seconds: '%s'", text);
        return -1;
    }
    if (ms / s->unit < s->min || ms / s->unit > s->max) {
        errmsg(why, whylen, "must be between %s and %s", fmt_duration(s->min * s->unit, lo, 32),
            fmt_duration(s->max * s->unit, hi, 32));
        return -1;
    }
    out->num = ms / s->unit;
    return 0;
}

static int parse_bool(const setting_t *s, const char *text, value_t *out, char *why, size_t whylen)
{
    int b;
    if (config_parse_bool(text, &b) < 0) {
        errmsg(why, whylen, "must be yes or no: '%s'", text);
        return -1;
    }
    out->num = b;
    return 0;
}

static int parse_octal(const setting_t *s, const char *text, value_t *out, char *why, size_t whylen)
{
    long long v = 0;
    size_t n = strlen(text);
    if (n == 0 || n > 12) {
        errmsg(why, whylen, "not an octal mode: '%s'", text);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '7') {
            errmsg(why, whylen, "not an octal mode: '%s'", text);
            return -1;
        }
        v = v * 8 + (text[i] - '0');
    }
    if (v < s->min || v > s->max) {
        errmsg(why, whylen, "must be between %#llo and %#llo", (unsigned long long)s->min,
            (unsigned long long)s->max);
        return -1;
    }
    out->num = v;
    return 0;
}

/* host:port, or [v6addr]:port. The host is a name or an address. */
static int parse_peer(const setting_t *s, const char *text, value_t *out, char *why, size_t whylen)
{
    const char *host = text, *host_end, *port;
    unsigned long long p;
    if (*text == '[') {
        char v6[INET6_ADDRSTRLEN + 1];
        unsigned char bin[sizeof(struct in6_addr)];
        host = text + 1;
        host_end = strchr(host, ']');
        if (!host_end || host_end[1] != ':') {
            errmsg(why, whylen, "not [address]:port: '%s'", text);
            return -1;
        }
        size_t n = (size_t)(host_end - host);
        if (n < sizeof(v6)) {
            memcpy(v6, host, n);
            v6[n] = '\0';
        }
        if (n == 0 || n >= sizeof(v6) || inet_pton(AF_INET6, v6, bin) != 1) {
            errmsg(why, whylen, "not an IPv6 address in brackets: '%s'", text);
            return -1;
        }
        port = host_end + 2;
    } else {
        host_end = strrchr(text, ':');
        if (!host_end) {
            errmsg(why, whylen, "not host:port: '%s'", text);
            return -1;
        }
        if (memchr(text, ':', (size_t)(host_end - text))) {
            errmsg(why, whylen, "an IPv6 address needs brackets, [addr]:port: '%s'", text);
            return -1;
        }
        if (host_end == host) {
            errmsg(why, whylen, "host is empty: '%s'", text);
            return -1;
        }
        for (const char *c = host; c < host_end; c++)
            if (!(is_digit(*c) || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  *c == '.' || *c == '-' || *c == '_')) {
                errmsg(why, whylen, "not a host name: '%s'", text);
                return -1;
            }
        port = host_end + 1;
    }
    if (parse_digits(port, strlen(port), 65535, &p) < 0 || p == 0) {
        errmsg(why, whylen, "port must be between 1 and 65535: '%s'", text);
        return -1;
    }
    out->str = xstrdup(text);
    return 0;
}

/* addr/len, or a bare address (stored as addr/32 or addr/128). */
static int parse_cidr(const setting_t *s, const char *text, value_t *out, char *why, size_t whylen)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    int family = 0;
    if (n < sizeof(addr)) {
        memcpy(addr, text, n);
        addr[n] = '\0';
        family = addr_family(addr);
    }
    if (!family) {
        errmsg(why, whylen, "not an address or CIDR: '%s'", text);
        return -1;
    }
    unsigned long long bits = family == AF_INET ? 32 : 128, len = bits;
    if (slash && parse_digits(slash + 1, strlen(slash + 1), bits, &len) < 0) {
        errmsg(why, whylen, "prefix length must be between 0 and %llu: '%s'", bits, text);
        return -1;
    }
    char norm[sizeof(addr) + 8];
    snprintf(norm, sizeof(norm), "%s/%llu", addr, len);
    out->str = xstrdup(norm);
    return 0;
}

/* ---- storing, copying, freeing -------------------------------------------- */

static void list_push(strlist_t *l, char *item)
{
    l->items = xrealloc(l->items, (l->n + 1) * sizeof(char *));
    l->items[l->n++] = item;
}

static void list_free(strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* Parses text as setting s and stores it in cfg (a list appends).
 * Returns 0, or -1 with what is wrong in why and cfg unchanged. */
static int apply(config_t *cfg, const setting_t *s, const char *text, char *why, size_t whylen)
{
    value_t v = {0, NULL};
    if (types[s->type].parse(s, text, &v, why, whylen) < 0)
        return -1;
    void *f = field(cfg, s);
    switch (types[s->type].store) {
    case ST_STR:
        free(*(char **)f);
        *(char **)f = v.str;
        break;
    case ST_INT:
        *(int *)f = (int)v.num;
        break;
    case ST_SIZE:
        *(size_t *)f = (size_t)v.num;
        break;
    case ST_LIST:
        list_push(f, v.str);
        break;
    }
    return 0;
}

/* ---- named sections: [job NAME], [keyspace NAME] ------------------------------ */

/* The kinds of named section, each kept raw in its own array of cfg. */
static const char *const named_kinds[] = {"job", "keyspace"};
#define NKINDS (sizeof(named_kinds) / sizeof(named_kinds[0]))

static config_job_t **kind_array(config_t *cfg, int kind, size_t **n)
{
    *n = kind == 0 ? &cfg->njobs : &cfg->nkeyspaces;
    return kind == 0 ? &cfg->jobs : &cfg->keyspaces;
}

/* If the header text (between '[' and ']') names a named section, returns
 * its kind (index in named_kinds) and its NAME (whitespace trimmed) in
 * *name / *nlen; else -1. */
static int named_section(const char *p, size_t len, const char **name, size_t *nlen)
{
    while (len && is_space(*p))
        p++, len--;
    while (len && is_space(p[len - 1]))
        len--;
    for (size_t k = 0; k < NKINDS; k++) {
        size_t kl = strlen(named_kinds[k]);
        if (len < kl || strncasecmp(p, named_kinds[k], kl) != 0 ||
            (len > kl && !is_space(p[kl])))
            continue;
        p += kl, len -= kl;
        while (len && is_space(*p))
            p++, len--;
        *name = p;
        *nlen = len;
        return (int)k;
    }
    return -1;
}

static config_job_t *named_find(config_t *cfg, int kind, const char *name, size_t nlen)
{
    size_t *n;
    config_job_t *arr = *kind_array(cfg, kind, &n);
    for (size_t i = *n; i-- > 0;)
        if (strlen(arr[i].name) == nlen && memcmp(arr[i].name, name, nlen) == 0)
            return &arr[i];
    return NULL;
}

static config_job_t *named_add(config_t *cfg, int kind, const char *name, size_t nlen, int line)
{
    size_t *n;
    config_job_t **arr = kind_array(cfg, kind, &n);
    *arr = xrealloc(*arr, (*n + 1) * sizeof(**arr));
    config_job_t *j = &(*arr)[(*n)++];
    memset(j, 0, sizeof(*j));
    j->name = xmemdup(name, nlen);
    j->line = line;
    return j;
}

static void named_add_pair(config_job_t *j, const char *key, const char *value, int line)
{
    j->pairs = xrealloc(j->pairs, (j->npairs + 1) * sizeof(*j->pairs));
    config_pair_t *p = &j->pairs[j->npairs++];
    p->key = xstrdup(key);
    p->value = xstrdup(value);
    p->line = line;
}

static void named_copy(config_t *dst, const config_t *src)
{
    for (int k = 0; k < (int)NKINDS; k++) {
        size_t *dn, *sn;
        config_job_t **darr = kind_array(dst, k, &dn);
        const config_job_t *sarr = *kind_array((config_t *)src, k, &sn);
        *darr = NULL;
        *dn = 0;
        for (size_t i = 0; i < *sn; i++) {
            const config_job_t *from = &sarr[i];
            config_job_t *j = named_add(dst, k, from->name, strlen(from->name), from->line);
            for (size_t p = 0; p < from->npairs; p++)
                named_add_pair(j, from->pairs[p].key, from->pairs[p].value, from->pairs[p].line);
        }
    }
}

static void named_free(config_t *cfg)
{
    for (int k = 0; k < (int)NKINDS; k++) {
        size_t *n;
        config_job_t **arr = kind_array(cfg, k, &n);
        for (size_t i = 0; i < *n; i++) {
            for (size_t p = 0; p < (*arr)[i].npairs; p++) {
                free((*arr)[i].pairs[p].key);
                free((*arr)[i].pairs[p].value);
            }
            free((*arr)[i].pairs);
            free((*arr)[i].name);
        }
        free(*arr);
        *arr = NULL;
        *n = 0;
    }
}

/* Makes dst a deep copy of src; the caller frees it with config_free. */
static void config_copy(config_t *dst, const config_t *src)
{
    *dst = *src;
    dst->path = src->path ? xstrdup(src->path) : NULL;
    named_copy(dst, src);
    for (size_t i = 0; i < NSETTINGS; i++) {
        void *f = field(dst, &settings[i]);
        if (types[settings[i].type].store == ST_STR) {
            char **p = f;
            if (*p)
                *p = xstrdup(*p);
        } else if (types[settings[i].type].store == ST_LIST) {
            strlist_t *l = f, from = *l;
            l->items = NULL;
            l->n = 0;
            for (size_t j = 0; j < from.n; j++)
                list_push(l, xstrdup(from.items[j]));
        }
    }
}

void config_free(config_t *cfg)
{
    free(cfg->path);
    named_free(cfg);
    for (size_t i = 0; i < NSETTINGS; i++) {
        void *f = field(cfg, &settings[i]);
        if (types[settings[i].type].store == ST_STR)
            free(*(char **)f);
        else if (types[settings[i].type].store == ST_LIST)
            list_free(f);
    }
    memset(cfg, 0, sizeof(*cfg));
}

/* The hostname if it is a valid node name, else "cohort". Owned by caller. */
static char *default_name(void)
{
    char host[256];
    value_t v = {0, NULL};
    char why[128];
    if (gethostname(host, sizeof(host)) == 0) {
        host[sizeof(host) - 1] = '\0';
        if (parse_ident(&settings[0], host, &v, why, sizeof(why)) == 0)
            return v.str;
    }
    return xstrdup("cohort");
}

void config_defaults(config_t *cfg)
{
    char why[256];
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (!settings[i].def)
            continue;
        int rc = apply(cfg, &settings[i], settings[i].def, why, sizeof(why));
        assert(rc == 0 && "a default in settings[] does not parse");
        (void)rc;
    }
    assert(offsetof(config_t, name) == settings[0].offset);
    cfg->name = default_name();
}

/* On error why holds "key: what is wrong", or "[section]: unknown section"
 * when the section itself is unknown. cfg is unchanged on error. */
int config_set(config_t *cfg, const char *section, const char *key, const char *value, char *why,
               size_t whylen)
{
    char what[256];
    const setting_t *s = find_setting(section, key);
    if (!s) {
        if (!section_known(section, strlen(section)))
            errmsg(why, whylen, "[%s]: unknown section", section);
        else
            errmsg(why, whylen, "%s: unknown key in [%s]", key, section);
        return -1;
    }
    if (apply(cfg, s, value, what, sizeof(what)) < 0) {
        errmsg(why, whylen, "%s: %s", key, what);
        return -1;
    }
    return 0;
}

/* ---- reading a file ------------------------------------------------------- */

typedef struct load {
    config_t *cfg;        /* the copy being filled */
    const char *text;     /* the whole file */
    size_t len, pos;      /* its length, and where the reader is */
    int line;             /* lines handed to inih so far */
    int err_line;         /* line of the first error we found; 0: none */
    char err[384];        /* "key: what is wrong" for err_line */
    int first[NSETTINGS]; /* line each setting was first set on; 0: not yet */
} load_t;

static void load_fail(load_t *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void load_fail(load_t *ld, const char *fmt, ...)
{
    if (ld->err_line)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->err, sizeof(ld->err), fmt, ap);
    va_end(ap);
    ld->err_line = ld->line;
}

/* Names a line in a message: its key if it has one, else its first
 * characters in quotes. */
static const char *line_label(const char *p, size_t n, char *buf, size_t len)
{
    const char *eq = memchr(p, '=', n);
    if (eq && eq > p && *p != '[') {
        size_t k = (size_t)(eq - p);
        while (k && is_space(p[k - 1]))
            k--;
        if (k && k <= 40 && !memchr(p, '\0', k)) {
            snprintf(buf, len, "%.*s", (int)k, p);
            return buf;
        }
    }
    while (n && is_space(p[n - 1]))
        n--;
    size_t show = n > 40 ? 40 : n;
    const char *nul = memchr(p, '\0', show);
    if (nul)
        show = (size_t)(nul - p);
    snprintf(buf, len, "'%.*s%s'", (int)show, p, show < n ? "..." : "");
    return buf;
}

/* inih's reader: copies the next line into str (num bytes), leading
 * whitespace removed. Returns str, or NULL at the end or after an error. */
static char *read_line(char *str, int num, void *stream)
{
    load_t *ld = stream;
    char label[64];
    if (ld->err_line || ld->pos >= ld->len)
        return NULL;
    const char *p = ld->text + ld->pos;
    const char *nl = memchr(p, '\n', ld->len - ld->pos);
    size_t n = nl ? (size_t)(nl - p) : ld->len - ld->pos;
    ld->pos += n + (nl != NULL);
    ld->line++;
    if (ld->line == 1 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3, n -= 3; /* a UTF-8 byte order mark */
    while (n && is_space(*p))
        p++, n--;
    if (memchr(p, '\0', n)) {
        load_fail(ld, "%s: line contains a NUL byte", line_label(p, n, label, sizeof(label)));
        return NULL;
    }
    if (num < 3 || n > (size_t)num - 2) {
        load_fail(ld, "%s: line longer than %d characters", line_label(p, n, label, sizeof(label)),
                  num - 2);
        return NULL;
    }
    const char *jname;
    size_t jlen;
    if (n && *p == '[') {
        const char *close = memchr(p, ']', n);
        int kind = close ? named_section(p + 1, (size_t)(close - p - 1), &jname, &jlen) : -1;
        if (kind >= 0) {
            const config_job_t *same = named_find(ld->cfg, kind, jname, jlen);
            if (same) {
                load_fail(ld, "[%s %.*s]: section repeated, first on line %d", named_kinds[kind],
                          (int)jlen, jname, same->line);
                return NULL;
            }
            if (jlen == 0) {
                load_fail(ld, "[%s]: a %s section needs a name: [%s NAME]", named_kinds[kind],
                          named_kinds[kind], named_kinds[kind]);
                return NULL;
            }
            named_add(ld->cfg, kind, jname, jlen, ld->line);
        } else if (close && !section_known(p + 1, (size_t)(close - p - 1))) {
            load_fail(ld, "[%.*s]: unknown section", (int)(close - p - 1), p + 1);
            return NULL;
        }
    }
    memcpy(str, p, n);
    str[n] = '\n';
    str[n + 1] = '\0';
    return str;
}

/* inih's handler: one key = value. Returns 1, or 0 after recording an error. */
static int on_pair(void *user, const char *section, const char *key, const char *value)
{
    load_t *ld = user;
    char what[256];
    if (ld->err_line)
        return 0;
    if (!value)
        value = "";
    if (*key == '\0') {
        load_fail(ld, "'= %.40s': no key before '='", value);
        return 0;
    }
    if (*section == '\0') {
        load_fail(ld, "%s: not in a [section]", key);
        return 0;
    }
    const char *jname;
    size_t jlen;
    int kind = named_section(section, strlen(section), &jname, &jlen);
    if (kind >= 0) {
        /* read_line added the section at its header; a header it did not
         * see as one (odd line breaks, say) is an error, not a section */
        config_job_t *j = named_find(ld->cfg, kind, jname, jlen);
        if (j) {
            named_add_pair(j, key, value, ld->line);
            return 1;
        }
        load_fail(ld, "[%.64s]: a %s section's header must stand on a line of its own", section,
                  named_kinds[kind]);
        return 0;
    }
    const setting_t *s = find_setting(section, key);
    if (!s) {
        if (!section_known(section, strlen(section)))
            load_fail(ld, "[%s]: unknown section", section);
        else
            load_fail(ld, "%s: unknown key in [%s]", key, section);
        return 0;
    }
    size_t i = (size_t)(s - settings);
    if (types[s->type].store != ST_LIST && ld->first[i]) {
        load_fail(ld, "%s: set twice, first on line %d", key, ld->first[i]);
        return 0;
    }
    if (apply(ld->cfg, s, value, what, sizeof(what)) < 0) {
        load_fail(ld, "%s: %s", key, what);
        return 0;
    }
    if (!ld->first[i])
        ld->first[i] = ld->line;
    return 1;
}

/* Describes a line inih refused (its number is lineno). */
static void describe_syntax_error(const load_t *ld, int lineno, char *why, size_t whylen)
{
    const char *p = ld->text, *end = ld->text + ld->len;
    char label[64];
    for (int l = 1; l < lineno && p < end; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    while (n && is_space(*p))
        p++, n--;
    line_label(p, n, label, sizeof(label));
    if (n && *p == '[')
        errmsg(why, whylen, "%s: section header without ']'", label);
    else
        errmsg(why, whylen, "%s: not a [section], key = value or comment", label);
}

/* Reads the whole of path into *text (owned by the caller, NUL-terminated).
 * Returns 0, or -1 with "path: what is wrong" in err. */
static int slurp(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    size_t cap = 4096, n = 0;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        errmsg(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        errmsg(err, errlen, "%s: %s", path, strerror(EISDIR));
        goto bad;
    }
    buf = xmalloc(cap);
    for (;;) {
        if (n == cap - 1) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            errmsg(err, errlen, "%s: %s", path, strerror(errno));
            goto bad;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > FILE_MAX_BYTES) {
            errmsg(err, errlen, "%s: larger than %d bytes", path, FILE_MAX_BYTES);
            goto bad;
        }
    }
    close(fd);
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
bad:
    free(buf);
    close(fd);
    return -1;
}

int config_load_file(config_t *cfg, const char *path, char *err, size_t errlen)
{
    char *text;
    size_t len;
    if (!path || !*path) {
        errmsg(err, errlen, "config file name is empty");
        return -1;
    }
    if (slurp(path, &text, &len, err, errlen) < 0)
        return -1;

    config_t work;
    config_copy(&work, cfg);
    load_t *ld = xcalloc(1, sizeof(*ld));
    ld->cfg = &work;
    ld->text = text;
    ld->len = len;

    int rc = ini_parse_stream(read_line, ld, on_pair, ld);
    int ok = 0;
    if (rc > 0 && (ld->err_line == 0 || rc < ld->err_line)) {
        char why[256];
        describe_syntax_error(ld, rc, why, sizeof(why));
        errmsg(err, errlen, "%s:%d: %s", path, rc, why);
    } else if (ld->err_line) {
        errmsg(err, errlen, "%s:%d: %s", path, ld->err_line, ld->err);
    } else if (rc < 0) {
        errmsg(err, errlen, "%s: cannot parse (inih error %d)", path, rc);
    } else {
        ok = 1;
    }
    free(ld);
    free(text);
    if (!ok) {
        config_free(&work);
        return -1;
    }
    free(work.path);
    work.path = xstrdup(path);
    config_free(cfg);
    *cfg = work;
    return 0;
}

/* ---- settings that must agree ---------------------------------------------- */

/* The rules order two [cluster] timings; the wrong order would make a
 * member suspect between two heartbeats, lose its lease between two
 * heartbeats, or be declared dead before it was ever suspect. */
/* Fails with "cluster.A (x) must be shorter than cluster.B (y)" unless a < b. */
static int shorter(const char *a, int a_ms, const char *b, int b_ms, char *err, size_t errlen)
{
    char x[32], y[32];
    if (a_ms < b_ms)
        return 0;
    errmsg(err, errlen, "cluster.%s (%s) must be shorter than cluster.%s (%s)", a,
        fmt_duration(a_ms, x, sizeof(x)), b, fmt_duration(b_ms, y, sizeof(y)));
    return -1;
}

int config_check(const config_t *cfg, char *err, size_t errlen)
{
    char a[32], b[32];
    if (shorter("heartbeat", cfg->heartbeat_ms, "suspect_after", cfg->suspect_ms, err, errlen))
        return -1;
    if ((long long)cfg->heartbeat_ms * 2 > cfg->lease_ms) {
        errmsg(err, errlen,
            "cluster.lease (%s) must be at least two heartbeats (cluster.heartbeat %s)",
            fmt_duration(cfg->lease_ms, a, sizeof(a)),
            fmt_duration(cfg->heartbeat_ms, b, sizeof(b)));
        return -1;
    }
    return shorter("suspect_after", cfg->suspect_ms, "dead_after", cfg->dead_after_ms, err, errlen);
}

/* ---- command line --------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out, "Usage: cohortd [--config FILE] [options]\n"
                 "\n"
                 "  -c, --config FILE           read settings from an INI file\n");
    for (size_t i = 0; i < NFLAGS; i++) {
        char opt[48];
        snprintf(opt, sizeof(opt), "--%s %s", flags[i].name, flags[i].arg);
        fprintf(out, "      %-23s same as %s.%s\n", opt, flags[i].section, flags[i].key);
    }
    fprintf(out, "      --set SECTION.KEY=VALUE any setting below; repeatable\n"
                 "  -h, --help                  print this help and exit\n"
                 "  -v, --version               print the version and exit\n"
                 "\n"
                 "Flags override the file, whatever their order. A list setting given\n"
                 "with --set is added to the file's list.\n"
                 "Sizes take b, kb, mb, gb; durations take ms, s, m, h.\n"
                 "\n"
                 "Settings (section.key, type, default):\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting_t *s = &settings[i];
        char name[48];
        snprintf(name, sizeof(name), "%s.%s", s->section, s->key);
        fprintf(out, "  %-27s %s%s%s\n      %s\n", name, types[s->type].what,
                s->def ? ", default " : "", s->def ? s->def : "", s->help);
    }
}

int config_from_args(config_t *cfg, int argc, char **argv, char *err, size_t errlen)
{
    struct option opts[NFLAGS + 5];
    size_t no = 0;
    opts[no++] = (struct option){"config", required_argument, NULL, 'c'};
    opts[no++] = (struct option){"set", required_argument, NULL, OPT_SET};
    opts[no++] = (struct option){"help", no_argument, NULL, 'h'};
    opts[no++] = (struct option){"version", no_argument, NULL, 'v'};
    for (size_t i = 0; i < NFLAGS; i++)
        opts[no++] = (struct option){flags[i].name, required_argument, NULL, FLAG_BASE + (int)i};
    opts[no] = (struct option){NULL, 0, NULL, 0};

    /* First pass: collect. Flags are applied after the file is read. */
    struct pending {
        int opt;
        const char *arg;
    } *todo = xcalloc((size_t)(argc > 0 ? argc : 1), sizeof(*todo));
    size_t ntodo = 0;
    const char *path = NULL;
    int rc = -1, c;
    config_t work;
    int have_work = 0;

    optind = 0; /* glibc: a full reset, so this can run more than once */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:c:hv", opts, NULL)) != -1) {
        const char *word = argv[optind - 1];
        switch (c) {
        case 'c':
            if (path) {
                errmsg(err, errlen, "--config: given twice");
                goto done;
            }
            path = optarg;
            break;
        case 'h':
            usage(stdout);
            rc = 1;
            goto done;
        case 'v':
            printf("cohortd %s\n", COHORT_VERSION);
            rc = 1;
            goto done;
        case ':':
            errmsg(err, errlen, "%s: needs a value", word);
            goto done;
        case '?':
            if (optopt && optopt < OPT_SET && !(word[0] == '-' && word[1] == '-'))
                errmsg(err, errlen, "-%c: unknown option (see --help)", optopt);
            else if (optopt)
                errmsg(err, errlen, "%s: takes no value", word);
            else
                errmsg(err, errlen, "%s: unknown option (see --help)", word);
            goto done;
        default:
            todo[ntodo].opt = c;
            todo[ntodo].arg = optarg;
            ntodo++;
            break;
        }
    }
    if (optind < argc) {
        errmsg(err, errlen, "'%s': unexpected argument (a config file needs --config)", argv[optind]);
        goto done;
    }

    config_copy(&work, cfg);
    have_work = 1;
    if (path && config_load_file(&work, path, err, errlen) < 0)
        goto done;
    for (size_t i = 0; i < ntodo; i++) {
        char why[384];
        if (todo[i].opt == OPT_SET) {
            const char *arg = todo[i].arg, *dot = strchr(arg, '.'), *eq = strchr(arg, '=');
            if (!dot || !eq || dot > eq || dot == arg || eq == dot + 1) {
                errmsg(err, errlen, "--set: expected section.key=value: '%s'", arg);
                goto done;
            }
            char *section = xmemdup(arg, (size_t)(dot - arg));
            char *key = xmemdup(dot + 1, (size_t)(eq - dot - 1));
            int r = config_set(&work, section, key, eq + 1, why, sizeof(why));
            free(section);
            free(key);
            if (r < 0) {
                errmsg(err, errlen, "--set: %s", why);
                goto done;
            }
        } else {
            const struct flag *f = &flags[todo[i].opt - FLAG_BASE];
            const setting_t *s = find_setting(f->section, f->key);
            assert(s && "flags[] names a setting that does not exist");
            if (apply(&work, s, todo[i].arg, why, sizeof(why)) < 0) {
                errmsg(err, errlen, "--%s: %s", f->name, why);
                goto done;
            }
        }
    }
    if (config_check(&work, err, errlen) < 0)
        goto done;
    config_free(cfg);
    *cfg = work;
    have_work = 0;
    rc = 0;
done:
    if (have_work)
        config_free(&work);
    free(todo);
    return rc;
}
