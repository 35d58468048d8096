/* Unit tests for config (INI file, flags, value syntax) and log (line format,
 * level filter, truncation, reopen). Every test writes its files into one
 * temporary directory that the group teardown removes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

static char tmpdir[64];
static int file_seq;

/* ---- helpers -------------------------------------------------------------- */

/* Writes len bytes to a new file in tmpdir; returns its path (static buffer
 * per call slot, valid until the 8th next call). */
static const char *write_file_n(const char *text, size_t len)
{
    static char paths[8][128];
    char *p = paths[file_seq % 8];
    snprintf(p, 128, "%s/c%03d.ini", tmpdir, file_seq++);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return p;
}

static const char *write_file(const char *text)
{
    return write_file_n(text, strlen(text));
}

/* Loads text over the defaults. Returns config_load_file's result; the path
 * used is left in *path when path is not NULL. */
static int load(config_t *cfg, const char *text, char *err, size_t errlen, const char **path)
{
    const char *p = write_file(text);
    if (path)
        *path = p;
    config_defaults(cfg);
    return config_load_file(cfg, p, err, errlen);
}

/* Asserts that loading text fails with exactly "PATH:LINE: rest". */
static void expect_load_error(const char *text, int line, const char *rest)
{
    config_t cfg;
    char err[512], want[512];
    const char *path;
    assert_int_equal(load(&cfg, text, err, sizeof(err), &path), -1);
    snprintf(want, sizeof(want), "%s:%d: %s", path, line, rest);
    assert_string_equal(err, want);
    config_free(&cfg);
}

/* Loads text and asserts success; the caller frees cfg. */
static void expect_load_ok(config_t *cfg, const char *text)
{
    char err[512] = "";
    int rc = load(cfg, text, err, sizeof(err), NULL);
    if (rc != 0)
        fail_msg("unexpected error: %s", err);
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int same_list(const strlist_t *a, const strlist_t *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->items[i], b->items[i]) != 0)
            return 0;
    return 1;
}

/* Asserts every setting of a equals b (path not compared). */
static void assert_same_config(const config_t *a, const config_t *b)
{
    assert_true(same_str(a->name, b->name));
    assert_true(same_str(a->role, b->role));
    assert_true(same_str(a->log_file, b->log_file));
    assert_true(same_str(a->log_level, b->log_level));
    assert_true(same_str(a->bind, b->bind));
    assert_int_equal(a->port, b->port);
    assert_true(same_str(a->unixsocket, b->unixsocket));
    assert_int_equal(a->unixsocketperm, b->unixsocketperm);
    assert_true(same_str(a->requirepass, b->requirepass));
    assert_int_equal(a->maxclients, b->maxclients);
    assert_int_equal(a->max_bulk_len, b->max_bulk_len);
    assert_int_equal(a->max_multibulk, b->max_multibulk);
    assert_int_equal(a->query_buffer_limit, b->query_buffer_limit);
    assert_int_equal(a->output_buffer_limit, b->output_buffer_limit);
    assert_int_equal(a->timeout_s, b->timeout_s);
    assert_int_equal(a->tcp_backlog, b->tcp_backlog);
    assert_true(same_str(a->http_bind, b->http_bind));
    assert_int_equal(a->http_port, b->http_port);
    assert_int_equal(a->http_max_request, b->http_max_request);
    assert_true(same_str(a->cluster_name, b->cluster_name));
    assert_int_equal(a->cluster_port, b->cluster_port);
    assert_true(same_str(a->cluster_bind, b->cluster_bind));
    assert_true(same_str(a->key_file, b->key_file));
    assert_true(same_list(&a->peers, &b->peers));
    assert_true(same_list(&a->authorized, &b->authorized));
    assert_true(same_list(&a->local_address, &b->local_address));
    assert_int_equal(a->lease_ms, b->lease_ms);
    assert_int_equal(a->heartbeat_ms, b->heartbeat_ms);
    assert_int_equal(a->suspect_ms, b->suspect_ms);
    assert_int_equal(a->probe_ms, b->probe_ms);
    assert_int_equal(a->dead_after_ms, b->dead_after_ms);
    assert_int_equal(a->flush_timeout_ms, b->flush_timeout_ms);
    assert_int_equal(a->replay_log, b->replay_log);
    assert_int_equal(a->maxmemory, b->maxmemory);
    assert_true(same_str(a->store_url, b->store_url));
    assert_true(same_str(a->data_dir, b->data_dir));
    assert_int_equal(a->lease_ttl_ms, b->lease_ttl_ms);
    assert_true(same_str(a->timezone, b->timezone));
    assert_int_equal(a->retention_s, b->retention_s);
    assert_int_equal(a->njobs, b->njobs);
}

/* Runs config_from_args on a NULL-terminated list of words (argv[0] added). */
static int run_args(config_t *cfg, char *err, size_t errlen, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    argv[argc++] = "cohortd";
    va_start(ap, errlen);
    for (char *w; (w = va_arg(ap, char *)) != NULL;)
        argv[argc++] = w;
    va_end(ap);
    argv[argc] = NULL;
    return config_from_args(cfg, argc, argv, err, errlen);
}

/* Reads a whole file into buf (NUL-terminated). Returns its length. */
static size_t slurp(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n;
}

/* Redirects fd (1 or 2) to a file while fn runs; returns what was written. */
static size_t capture_fd(int fd, void (*fn)(void *), void *arg, char *out, size_t outlen)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/capture%d", tmpdir, file_seq++);
    fflush(stdout);
    fflush(stderr);
    int saved = dup(fd);
    int f = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && f >= 0);
    dup2(f, fd);
    close(f);
    fn(arg);
    fflush(stdout);
    fflush(stderr);
    dup2(saved, fd);
    close(saved);
    return slurp(path, out, outlen);
}

static int matches(const char *re, const char *s)
{
    regex_t r;
    assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&r, s, 0, NULL, 0);
    regfree(&r);
    return rc == 0;
}

/* ---- value helpers -------------------------------------------------------- */

static void test_parse_size(void **state)
{
    static const struct {
        const char *text;
        size_t want;
    } good[] = {
        {"0", 0},
        {"1", 1},
        {"7b", 7},
        {"7B", 7},
        {"1k", 1024},
        {"1kb", 1024},
        {"1KB", 1024},
        {"1Kb", 1024},
        {"2m", 2 << 20},
        {"2mb", 2 << 20},
        {"2MB", 2 << 20},
        {"3g", 3ULL << 30},
        {"3gb", 3ULL << 30},
        {"64 mb", 64 << 20},
        {"007", 7},
    };
    static const char *const bad[] = {
        "",
        "k",
        "kb",
        "-1",
        "+1",
        "1.5k",
        "1t",
        "1kib",
        "12 apples",
        " 1",
        "1 ",
        "1 k ",
        "1,000",
        "0x10",
        "18446744073709551616",
        "17179869184g",
        "1kbb",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        size_t v = 12345;
        assert_int_equal(config_parse_size(good[i].text, &v), 0);
        assert_int_equal(v, good[i].want);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t v = 12345;
        if (config_parse_size(bad[i], &v) != -1)
            fail_msg("'%s' parsed as a size", bad[i]);
        assert_int_equal(v, 12345);
    }
    assert_int_equal(config_parse_size(NULL, &(size_t){0}), -1);
}

static void test_parse_duration(void **state)
{
    static const struct {
        const char *text;
        int unit;
        long long want;
    } good[] = {
        {"250", 1, 250}, {"250", 1000, 250000}, {"250ms", 1000, 250},  {"250MS", 1, 250},
        {"2s", 1, 2000}, {"2S", 1, 2000},       {"5m", 1, 300000},     {"1h", 1, 3600000},
        {"0", 1, 0},     {"3 s", 1, 3000},      {"1H", 1000, 3600000}
    };
    static const char *const bad[] = {"",
                                      "s",
                                      "1d",
                                      "-1",
                                      "1.5s",
                                      "1 s s",
                                      "ms",
                                      "1sec",
                                      "99999999999999999999",
                                      "9223372036854775807h"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        long long v = -7;
        assert_int_equal(config_parse_duration_ms(good[i].text, good[i].unit, &v), 0);
        assert_int_equal(v, good[i].want);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long long v = -7;
        if (config_parse_duration_ms(bad[i], 1, &v) != -1)
            fail_msg("'%s' parsed as a duration", bad[i]);
        assert_int_equal(v, -7);
    }
    long long v;
    assert_int_equal(config_parse_duration_ms("5", 0, &v), -1);
    assert_int_equal(config_parse_duration_ms(NULL, 1, &v), -1);
}

static void test_parse_bool(void **state)
{
    static const struct {
        const char *text;
        int want;
    } good[] = {{"yes", 1}, {"YES", 1}, {"true", 1},  {"On", 1},  {"1", 1},
                {"no", 0},  {"No", 0},  {"false", 0}, {"OFF", 0}, {"0", 0}};
    static const char *const bad[] = {"", "y", "n", "2", "yess", "enabled", " yes"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int v = -1;
        assert_int_equal(config_parse_bool(good[i].text, &v), 0);
        assert_int_equal(v, good[i].want);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int v = -1;
        assert_int_equal(config_parse_bool(bad[i], &v), -1);
        assert_int_equal(v, -1);
    }
    assert_int_equal(config_parse_bool(NULL, &(int){0}), -1);
}

/* ---- defaults and the example file ---------------------------------------- */

static void test_defaults(void **state)
{
    config_t c;
    char host[256] = "";
    config_defaults(&c);
    assert_null(c.path);
    gethostname(host, sizeof(host) - 1);
    assert_string_equal(c.name, host);
    assert_string_equal(c.role, "hot");
    assert_null(c.log_file);
    assert_string_equal(c.log_level, "info");
    assert_string_equal(c.bind, "127.0.0.1");
    assert_int_equal(c.port, 7379);
    assert_null(c.unixsocket);
    assert_int_equal(c.unixsocketperm, 0700);
    assert_null(c.requirepass);
    assert_int_equal(c.maxclients, 10000);
    assert_int_equal(c.max_bulk_len, 64 << 20);
    assert_int_equal(c.max_multibulk, 1048576);
    assert_int_equal(c.query_buffer_limit, 128 << 20);
    assert_int_equal(c.output_buffer_limit, 64 << 20);
    assert_int_equal(c.timeout_s, 0);
    assert_int_equal(c.tcp_backlog, 511);
    assert_string_equal(c.http_bind, "127.0.0.1");
    assert_int_equal(c.http_port, 7380);
    assert_int_equal(c.http_max_request, 8192);
    assert_string_equal(c.cluster_name, "cohort");
    assert_int_equal(c.cluster_port, 7381);
    assert_string_equal(c.cluster_bind, "0.0.0.0");
    assert_null(c.key_file);
    assert_int_equal(c.peers.n, 0);
    assert_int_equal(c.authorized.n, 0);
    assert_int_equal(c.local_address.n, 0);
    assert_int_equal(c.lease_ms, 2000);
    assert_int_equal(c.heartbeat_ms, 100);
    assert_int_equal(c.suspect_ms, 500);
    assert_int_equal(c.probe_ms, 400);
    assert_int_equal(c.dead_after_ms, 10000);
    assert_int_equal(c.flush_timeout_ms, 1000);
    assert_int_equal(c.replay_log, 65536);
    assert_int_equal(c.maxmemory, 0);
    assert_null(c.store_url);
    config_free(&c);
    assert_null(c.name); /* config_free leaves an empty config */
    config_free(&c);     /* and may be called twice */
}

static const struct {
    const char *section, *key;
} all_keys[] = {
    {"node", "name"},
    {"node", "role"},
    {"node", "log_file"},
    {"node", "log_level"},
    {"client", "bind"},
    {"client", "port"},
    {"client", "unixsocket"},
    {"client", "unixsocketperm"},
    {"client", "requirepass"},
    {"client", "maxclients"},
    {"client", "max_bulk_len"},
    {"client", "max_multibulk"},
    {"client", "query_buffer_limit"},
    {"client", "output_buffer_limit"},
    {"client", "pubsub_output_limit_hard"},
    {"client", "pubsub_output_limit_soft"},
    {"client", "pubsub_output_soft_seconds"},
    {"client", "pubsub_max_subscriptions"},
    {"client", "timeout"},
    {"client", "tcp_backlog"},
    {"http", "bind"},
    {"http", "port"},
    {"http", "max_request"},
    {"cluster", "name"},
    {"cluster", "port"},
    {"cluster", "bind"},
    {"cluster", "key_file"},
    {"cluster", "peer"},
    {"cluster", "authorized"},
    {"cluster", "local_address"},
    {"cluster", "lease"},
    {"cluster", "heartbeat"},
    {"cluster", "suspect_after"},
    {"cluster", "probe_timeout"},
    {"cluster", "dead_after"},
    {"cluster", "flush_timeout"},
    {"cluster", "replay_log"},
    {"cache", "maxmemory"},
    {"store", "url"},
    {"node", "data_dir"},
    {"leases", "ttl"},
    {"scheduler", "timezone"},
    {"scheduler", "retention"},
};

static void example_path(char *buf, size_t len)
{
    const char *here = __FILE__, *tail = strstr(here, "tests/unit/test_config.c");
    assert_non_null(tail);
    snprintf(buf, len, "%.*setc/cohort.ini", (int)(tail - here), here);
}

/* etc/cohort.ini loads, changes nothing (it spells out the defaults), and
 * mentions every key in its section, set or commented out. */
static void test_example_file(void **state)
{
    char path[PATH_MAX], err[512] = "", text[16384];
    config_t d, c;
    example_path(path, sizeof(path));
    config_defaults(&d);
    config_defaults(&c);
    if (config_load_file(&c, path, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_string_equal(c.path, path);
    assert_same_config(&c, &d);
    config_free(&c);
    config_free(&d);

    slurp(path, text, sizeof(text));
    for (size_t i = 0; i < sizeof(all_keys) / sizeof(all_keys[0]); i++) {
        char head[64], set[64], commented[64];
        snprintf(head, sizeof(head), "\n[%s]\n", all_keys[i].section);
        snprintf(set, sizeof(set), "\n%s = ", all_keys[i].key);
        snprintf(commented, sizeof(commented), "\n;%s = ", all_keys[i].key);
        const char *sec = strstr(text, head);
        assert_non_null(sec);
        const char *next = strstr(sec + 1, "\n[");
        const char *a = strstr(sec, set), *b = strstr(sec, commented);
        int in = (a && (!next || a < next)) || (b && (!next || b < next));
        if (!in)
            fail_msg("etc/cohort.ini does not show [%s] %s", all_keys[i].section, all_keys[i].key);
    }
}

/* Every key reaches its own field: set each to a non-default value. */
static void test_every_key_maps_to_its_field(void **state)
{
    config_t c;
    expect_load_ok(&c, "[node]\n"
                       "name = n1\n"
                       "role = warm\n"
                       "log_file = /var/log/x.log\n"
                       "log_level = debug\n"
                       "[client]\n"
                       "bind = 10.1.1.1\n"
                       "port = 6000\n"
                       "unixsocket = /run/c.sock\n"
                       "unixsocketperm = 0755\n"
                       "requirepass = pw\n"
                       "maxclients = 17\n"
                       "max_bulk_len = 1mb\n"
                       "max_multibulk = 99\n"
                       "query_buffer_limit = 2mb\n"
                       "output_buffer_limit = 3mb\n"
                       "timeout = 42\n"
                       "tcp_backlog = 128\n"
                       "[http]\n"
                       "bind = ::1\n"
                       "port = 6001\n"
                       "max_request = 4kb\n"
                       "[cluster]\n"
                       "name = prod\n"
                       "port = 6002\n"
                       "bind = 10.1.1.2\n"
                       "key_file = /etc/k\n"
                       "peer = a:1\n"
                       "authorized = 10.0.0.0/8\n"
                       "local_address = 10.1.1.3\n"
                       "lease = 3001\n"
                       "heartbeat = 101\n"
                       "suspect_after = 301\n"
                       "probe_timeout = 201\n"
                       "dead_after = 5001\n"
                       "flush_timeout = 701\n"
                       "replay_log = 1000\n"
                       "[cache]\n"
                       "maxmemory = 5gb\n"
                       "[store]\n"
                       "url = sqlite:///tmp/x.db\n");
    assert_string_equal(c.name, "n1");
    assert_string_equal(c.role, "warm");
    assert_string_equal(c.log_file, "/var/log/x.log");
    assert_string_equal(c.log_level, "debug");
    assert_string_equal(c.bind, "10.1.1.1");
    assert_int_equal(c.port, 6000);
    assert_string_equal(c.unixsocket, "/run/c.sock");
    assert_int_equal(c.unixsocketperm, 0755);
    assert_string_equal(c.requirepass, "pw");
    assert_int_equal(c.maxclients, 17);
    assert_int_equal(c.max_bulk_len, 1 << 20);
    assert_int_equal(c.max_multibulk, 99);
    assert_int_equal(c.query_buffer_limit, 2 << 20);
    assert_int_equal(c.output_buffer_limit, 3 << 20);
    assert_int_equal(c.timeout_s, 42);
    assert_int_equal(c.tcp_backlog, 128);
    assert_string_equal(c.http_bind, "::1");
    assert_int_equal(c.http_port, 6001);
    assert_int_equal(c.http_max_request, 4096);
    assert_string_equal(c.cluster_name, "prod");
    assert_int_equal(c.cluster_port, 6002);
    assert_string_equal(c.cluster_bind, "10.1.1.2");
    assert_string_equal(c.key_file, "/etc/k");
    assert_int_equal(c.peers.n, 1);
    assert_string_equal(c.peers.items[0], "a:1");
    assert_int_equal(c.authorized.n, 1);
    assert_string_equal(c.authorized.items[0], "10.0.0.0/8");
    assert_int_equal(c.local_address.n, 1);
    assert_string_equal(c.local_address.items[0], "10.1.1.3");
    assert_int_equal(c.lease_ms, 3001);
    assert_int_equal(c.heartbeat_ms, 101);
    assert_int_equal(c.suspect_ms, 301);
    assert_int_equal(c.probe_ms, 201);
    assert_int_equal(c.dead_after_ms, 5001);
    assert_int_equal(c.flush_timeout_ms, 701);
    assert_int_equal(c.replay_log, 1000);
    assert_int_equal(c.maxmemory, 5ULL << 30);
    assert_string_equal(c.store_url, "sqlite:///tmp/x.db");
    config_free(&c);
}

/* Sections and keys match without regard to case or spaces in brackets. */
static void test_names_case_insensitive(void **state)
{
    config_t c;
    expect_load_ok(&c, "[ Client ]\nPORT = 1234\n[HTTP]\nPort = 0\n");
    assert_int_equal(c.port, 1234);
    assert_int_equal(c.http_port, 0);
    config_free(&c);
}

/* ---- each type through the file ------------------------------------------- */

static void test_int_bounds(void **state)
{
    config_t c;
    expect_load_ok(&c, "[client]\nport = 0\n[http]\nport = 65535\n[cluster]\nport = 1\n");
    assert_int_equal(c.port, 0);
    assert_int_equal(c.http_port, 65535);
    assert_int_equal(c.cluster_port, 1);
    config_free(&c);
    expect_load_ok(&c, "[client]\nport = +80\n");
    assert_int_equal(c.port, 80);
    config_free(&c);

    expect_load_error("[client]\nport = 65536\n", 2, "port: must be between 0 and 65535");
    expect_load_error("[client]\nport = -1\n", 2, "port: must be between 0 and 65535");
    expect_load_error("[client]\nport = 99999999999999999999999\n", 2,
                      "port: not an integer: '99999999999999999999999'");
    expect_load_error("[client]\nport = 80x\n", 2, "port: not an integer: '80x'");
    expect_load_error("[client]\nport =\n", 2, "port: not an integer: ''");
    expect_load_error("[client]\nport = 0x50\n", 2, "port: not an integer: '0x50'");
    expect_load_error("\n\n[cluster]\n\n\n\n\n\nport = 0\n", 9,
                      "port: must be between 1 and 65535");
    expect_load_error("[client]\nmaxclients = 0\n", 2, "maxclients: must be between 1 and 1000000");
    expect_load_error("[client]\ntcp_backlog = 70000\n", 2,
                      "tcp_backlog: must be between 1 and 65535");
    expect_load_error("[cluster]\nreplay_log = 0\n", 2,
                      "replay_log: must be between 1 and 16777216");
}

static void test_size_values(void **state)
{
    config_t c;
    expect_load_ok(&c, "[cache]\nmaxmemory = 1G\n[client]\nmax_bulk_len = 512k\n"
                       "query_buffer_limit = 1000\n[http]\nmax_request = 256\n");
    assert_int_equal(c.maxmemory, 1ULL << 30);
    assert_int_equal(c.max_bulk_len, 512 << 10);
    assert_int_equal(c.query_buffer_limit, 1000);
    assert_int_equal(c.http_max_request, 256);
    config_free(&c);

    expect_load_error("[cache]\nmaxmemory = 12 apples\n", 2, "maxmemory: not a size: '12 apples'");
    expect_load_error("[cache]\nmaxmemory = 1.5gb\n", 2, "maxmemory: not a size: '1.5gb'");
    expect_load_error("[http]\nmax_request = 100\n", 2,
                      "max_request: must be between 256 and 16mb");
    expect_load_error("[http]\nmax_request = 17mb\n", 2,
                      "max_request: must be between 256 and 16mb");
    expect_load_error("[client]\nmax_bulk_len = 0\n", 2,
                      "max_bulk_len: must be between 1 and 1gb");
}

static void test_duration_values(void **state)
{
    config_t c;
    expect_load_ok(&c, "[cluster]\nlease = 2s\nheartbeat = 50ms\nsuspect_after = 1m\n"
                       "dead_after = 1h\nprobe_timeout = 10\n[client]\ntimeout = 5m\n");
    assert_int_equal(c.lease_ms, 2000);
    assert_int_equal(c.heartbeat_ms, 50);
    assert_int_equal(c.suspect_ms, 60000);
    assert_int_equal(c.dead_after_ms, 3600000);
    assert_int_equal(c.probe_ms, 10);
    assert_int_equal(c.timeout_s, 300); /* a duration, stored in seconds */
    config_free(&c);
    expect_load_ok(&c, "[client]\ntimeout = 30\n"); /* bare number: the key's unit, s */
    assert_int_equal(c.timeout_s, 30);
    config_free(&c);
    expect_load_ok(&c, "[client]\ntimeout = 2000ms\n");
    assert_int_equal(c.timeout_s, 2);
    config_free(&c);

    expect_load_error("[client]\ntimeout = 1500ms\n", 2,
                      "timeout: not a whole number of seconds: '1500ms'");
    expect_load_error("[cluster]\nlease = 5\n", 2, "lease: must be between 10ms and 10m");
    expect_load_error("[cluster]\nlease = 11m\n", 2, "lease: must be between 10ms and 10m");
    expect_load_error("[cluster]\ndead_after = 2d\n", 2, "dead_after: not a duration: '2d'");
    expect_load_error("[cluster]\nheartbeat = soon\n", 2, "heartbeat: not a duration: 'soon'");
    expect_load_error("[client]\ntimeout = 366d\n", 2, "timeout: not a duration: '366d'");
    expect_load_error("[client]\ntimeout = 8761h\n", 2, "timeout: must be between 0 and 8760h");
}

static void test_enum_values(void **state)
{
    config_t c;
    expect_load_ok(&c, "[node]\nrole = WARM\nlog_level = Warning\n");
    assert_string_equal(c.role, "warm");
    assert_string_equal(c.log_level, "warning");
    config_free(&c);
    expect_load_error("[node]\nrole = cold\n", 2, "role: must be one of hot, warm: 'cold'");
    expect_load_error("[node]\nlog_level = loud\n", 2,
                      "log_level: must be one of debug, info, warning, error: 'loud'");
    expect_load_error("[node]\nrole =\n", 2, "role: must be one of hot, warm: ''");
}

static void test_octal_values(void **state)
{
    config_t c;
    expect_load_ok(&c, "[client]\nunixsocketperm = 770\n");
    assert_int_equal(c.unixsocketperm, 0770);
    config_free(&c);
    expect_load_ok(&c, "[client]\nunixsocketperm = 0\n");
    assert_int_equal(c.unixsocketperm, 0);
    config_free(&c);
    expect_load_error("[client]\nunixsocketperm = 0800\n", 2,
                      "unixsocketperm: not an octal mode: '0800'");
    expect_load_error("[client]\nunixsocketperm = rw\n", 2,
                      "unixsocketperm: not an octal mode: 'rw'");
    expect_load_error("[client]\nunixsocketperm = 01777\n", 2,
                      "unixsocketperm: must be between 0 and 0777");
}

static void test_name_and_address_values(void **state)
{
    config_t c;
    expect_load_ok(&c, "[node]\nname = www-1.example_x\n[client]\nbind = ::\n"
                       "[cluster]\nbind = fe80::1\n");
    assert_string_equal(c.name, "www-1.example_x");
    assert_string_equal(c.bind, "::");
    assert_string_equal(c.cluster_bind, "fe80::1");
    config_free(&c);
    expect_load_error("[node]\nname = web one\n", 2,
                      "name: not a valid name (letters, digits, '.', '_', '-'): 'web one'");
    expect_load_error("[node]\nname =\n", 2, "name: must not be empty");
    expect_load_error("[cluster]\nname = "
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
                      2, "name: longer than 63 characters");
    expect_load_error("[client]\nbind = localhost\n", 2, "bind: not an IP address: 'localhost'");
    expect_load_error("[http]\nbind = 10.0.0.256\n", 2, "bind: not an IP address: '10.0.0.256'");
}

static void test_string_values(void **state)
{
    config_t c;
    char long_path[200];
    /* An empty optional string means "none". */
    expect_load_ok(&c, "[client]\nrequirepass =\nunixsocket =\n[node]\nlog_file =\n");
    assert_null(c.requirepass);
    assert_null(c.unixsocket);
    assert_null(c.log_file);
    config_free(&c);
    expect_load_ok(&c, "[store]\nurl = postgresql://app@db/app?sslmode=require\n");
    assert_string_equal(c.store_url, "postgresql://app@db/app?sslmode=require");
    config_free(&c);

    int n = snprintf(long_path, sizeof(long_path), "[client]\nunixsocket = /");
    memset(long_path + n, 'p', 107); /* "/" and 107 more: one too many */
    strcpy(long_path + n + 107, "\n");
    expect_load_error(long_path, 2, "unixsocket: longer than 107 characters");
    long_path[n + 106] = '\n';
    long_path[n + 107] = '\0';
    expect_load_ok(&c, long_path);
    assert_int_equal(strlen(c.unixsocket), 107);
    config_free(&c);
}

static void test_peer_list(void **state)
{
    config_t c;
    expect_load_ok(&c, "[cluster]\n"
                       "peer = 10.0.0.11:7381\n"
                       "peer = app-2.example.com:7381\n"
                       "local_address = 10.0.0.11\n"
                       "peer = [fd00::13]:65535\n"
                       "local_address = fd00::11\n");
    assert_int_equal(c.peers.n, 3);
    assert_string_equal(c.peers.items[0], "10.0.0.11:7381");
    assert_string_equal(c.peers.items[1], "app-2.example.com:7381");
    assert_string_equal(c.peers.items[2], "[fd00::13]:65535");
    assert_int_equal(c.local_address.n, 2);
    assert_string_equal(c.local_address.items[1], "fd00::11");
    config_free(&c);

    static const struct {
        const char *value, *why;
    } bad[] = {
        {"10.0.0.1", "not host:port: '10.0.0.1'"},
        {":7381", "host is empty: ':7381'"},
        {"10.0.0.1:0", "port must be between 1 and 65535: '10.0.0.1:0'"},
        {"10.0.0.1:65536", "port must be between 1 and 65535: '10.0.0.1:65536'"},
        {"10.0.0.1:", "port must be between 1 and 65535: '10.0.0.1:'"},
        {"10.0.0.1:http", "port must be between 1 and 65535: '10.0.0.1:http'"},
        {"fd00::1:7381", "an IPv6 address needs brackets, [addr]:port: 'fd00::1:7381'"},
        {"[fd00::1]", "not [address]:port: '[fd00::1]'"},
        {"[nothex]:1", "not an IPv6 address in brackets: '[nothex]:1'"},
        {"[]:1", "not an IPv6 address in brackets: '[]:1'"},
        {"a b:1", "not a host name: 'a b:1'"},
        {"", "not host:port: ''"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[128], want[160];
        snprintf(text, sizeof(text), "[cluster]\npeer = a:1\npeer = %s\n", bad[i].value);
        snprintf(want, sizeof(want), "peer: %s", bad[i].why);
        expect_load_error(text, 3, want);
    }
    expect_load_error("[cluster]\nlocal_address = www1\n", 2,
                      "local_address: not an IP address: 'www1'");
}

static void test_cidr_list(void **state)
{
    config_t c;
    expect_load_ok(&c, "[cluster]\n"
                       "authorized = 10.0.0.0/24\n"
                       "authorized = 10.0.0.5\n"
                       "authorized = fd00::/64\n"
                       "authorized = ::1\n"
                       "authorized = 0.0.0.0/0\n");
    assert_int_equal(c.authorized.n, 5);
    assert_string_equal(c.authorized.items[0], "10.0.0.0/24");
    assert_string_equal(c.authorized.items[1], "10.0.0.5/32");
    assert_string_equal(c.authorized.items[2], "fd00::/64");
    assert_string_equal(c.authorized.items[3], "::1/128");
    assert_string_equal(c.authorized.items[4], "0.0.0.0/0");
    config_free(&c);

    expect_load_error("[cluster]\nauthorized = 10.0.0.0/33\n", 2,
                      "authorized: prefix length must be between 0 and 32: '10.0.0.0/33'");
    expect_load_error("[cluster]\nauthorized = fd00::/129\n", 2,
                      "authorized: prefix length must be between 0 and 128: 'fd00::/129'");
    expect_load_error("[cluster]\nauthorized = 10.0.0.0/\n", 2,
                      "authorized: prefix length must be between 0 and 32: '10.0.0.0/'");
    expect_load_error("[cluster]\nauthorized = 10.0.0.0/-1\n", 2,
                      "authorized: prefix length must be between 0 and 32: '10.0.0.0/-1'");
    expect_load_error("[cluster]\nauthorized = net/8\n", 2,
                      "authorized: not an address or CIDR: 'net/8'");
    expect_load_error("[cluster]\nauthorized = 10.0.0/8\n", 2,
                      "authorized: not an address or CIDR: '10.0.0/8'");
    expect_load_error("[cluster]\nauthorized =\n", 2, "authorized: not an address or CIDR: ''");
}

/* ---- file structure and errors -------------------------------------------- */

static void test_repeated_key(void **state)
{
    expect_load_error("[client]\nbind = 127.0.0.1\nport = 1\nport = 2\n", 4,
                      "port: set twice, first on line 3");
    /* across two headers of the same section */
    expect_load_error("[client]\nport = 1\n[http]\nport = 2\n[client]\nport = 3\n", 6,
                      "port: set twice, first on line 2");
    /* the same key in different sections is not a repeat */
    config_t c;
    expect_load_ok(&c, "[client]\nport = 1\n[http]\nport = 2\n[cluster]\nport = 3\n");
    assert_int_equal(c.port, 1);
    assert_int_equal(c.http_port, 2);
    assert_int_equal(c.cluster_port, 3);
    config_free(&c);
}

static void test_unknown_section_and_key(void **state)
{
    expect_load_error("[node]\nname = a\n[bogus]\n", 3, "[bogus]: unknown section");
    expect_load_error("[node]\nname = a\n[bogus]\nx = 1\n", 3, "[bogus]: unknown section");
    expect_load_error("[]\n", 1, "[]: unknown section");
    expect_load_error("[jobs]\nevery = 5m\n", 1, "[jobs]: unknown section");
    expect_load_error("[jobx]\nevery = 5m\n", 1, "[jobx]: unknown section");
    expect_load_error("[node]\nname = a\nrole = hot\ncolour = red\n", 4,
                      "colour: unknown key in [node]");
    expect_load_error("[client]\nlease = 1s\n", 2, "lease: unknown key in [client]");
    expect_load_error("port = 1\n", 1, "port: not in a [section]");
}

/* [job NAME] sections are kept as text with their lines, in file order; the
 * scheduler checks them (tests/integration/test_jobs.py). */
static void test_job_sections(void **state)
{
    config_t c;
    expect_load_ok(&c, "[node]\nname = a\n[job reindex]\nevery = 5m\ncommand = true\n"
                       "[ job  sweep ]\ncron = 0 3 * * *\n[client]\nport = 7000\n");
    assert_int_equal(c.njobs, 2);
    assert_string_equal(c.jobs[0].name, "reindex");
    assert_int_equal(c.jobs[0].line, 3);
    assert_int_equal(c.jobs[0].npairs, 2);
    assert_string_equal(c.jobs[0].pairs[1].key, "command");
    assert_string_equal(c.jobs[0].pairs[1].value, "true");
    assert_int_equal(c.jobs[0].pairs[1].line, 5);
    assert_string_equal(c.jobs[1].name, "sweep");
    assert_int_equal(c.jobs[1].npairs, 1);
    assert_string_equal(c.jobs[1].pairs[0].value, "0 3 * * *");
    assert_int_equal(c.port, 7000);
    config_free(&c);
    expect_load_error("[job a]\nevery = 1s\n[job a]\n", 3,
                      "[job a]: section repeated, first on line 1");
    expect_load_error("[node]\n[job]\nevery = 1s\n", 2,
                      "[job]: a job section needs a name: [job NAME]");
}

static void test_syntax_errors(void **state)
{
    expect_load_error("[node]\nname = a\nthis is not a setting\n", 3,
                      "'this is not a setting': not a [section], key = value or comment");
    expect_load_error("[node\nname = a\n", 1, "'[node': section header without ']'");
    expect_load_error("[node]\n= value\n", 2, "'= value': no key before '='");
    /* The first error by line wins, whoever found it. */
    expect_load_error("[client]\njunk\nport = 99999\n", 2,
                      "'junk': not a [section], key = value or comment");
    expect_load_error("[client]\nport = 99999\njunk\n", 2, "port: must be between 0 and 65535");
    expect_load_error("[client]\njunk\n[bogus]\n", 2,
                      "'junk': not a [section], key = value or comment");
}

static void test_inline_comments(void **state)
{
    config_t c;
    expect_load_ok(&c, "; a comment\n"
                       "# another comment\n"
                       "[client] ; a section with a comment\n"
                       "port = 7000 ; the port\n"
                       "bind = 10.0.0.1\t; a tab before the semicolon\n"
                       "requirepass = a;b\n" /* no space before ';': part of the value */
                       "[node]\n"
                       "log_file = /tmp/a #b\n" /* '#' is never an inline comment */
                       "[store]\n"
                       "url = ; nothing but a comment\n"
                       "   ; an indented comment\n");
    assert_int_equal(c.port, 7000);
    assert_string_equal(c.bind, "10.0.0.1");
    assert_string_equal(c.requirepass, "a;b");
    assert_string_equal(c.log_file, "/tmp/a #b");
    assert_null(c.store_url);
    config_free(&c);
}

static void test_whitespace_bom_crlf(void **state)
{
    config_t c;
    /* Indented lines are ordinary lines, never continuations of a value. */
    expect_load_ok(&c, "\xEF\xBB\xBF[client]\r\n  port = 7001\r\n\tbind = 10.0.0.2  \r\n"
                       "\r\n   \r\n[cluster]\n  peer = a:1\n  peer = b:2\n");
    assert_int_equal(c.port, 7001);
    assert_string_equal(c.bind, "10.0.0.2");
    assert_int_equal(c.peers.n, 2);
    config_free(&c);
    expect_load_error("\xEF\xBB\xBF[bogus]\n", 1, "[bogus]: unknown section");
    expect_load_error("[client]\nbind = 10.0.0.1\n  10.0.0.2\n", 3,
                      "'10.0.0.2': not a [section], key = value or comment");
    /* inih accepts "key: value" too */
    expect_load_ok(&c, "[client]\nport: 7002\n");
    assert_int_equal(c.port, 7002);
    config_free(&c);
    /* An empty file changes nothing. */
    config_t d;
    expect_load_ok(&c, "");
    config_defaults(&d);
    assert_same_config(&c, &d);
    config_free(&c);
    config_free(&d);
}

static void test_long_line_and_nul(void **state)
{
    char text[512], want[128];
    config_t c;
    /* 198 characters is the longest line. */
    int n = snprintf(text, sizeof(text), "[store]\nurl = sqlite:///");
    memset(text + n, 'x', 198 - 16);
    text[n + 198 - 16] = '\0';
    assert_int_equal(strlen(text + 8), 198);
    strcat(text, "\n");
    expect_load_ok(&c, text);
    assert_int_equal(strlen(c.store_url), 198 - 6);
    config_free(&c);
    /* One more is an error naming the key. */
    text[strlen(text) - 1] = 'x';
    strcat(text, "\n");
    snprintf(want, sizeof(want), "url: line longer than 198 characters");
    expect_load_error(text, 2, want);
    /* A long line without a key is named by its first characters. */
    memset(text, 'z', 300);
    text[300] = '\0';
    expect_load_error(text, 1,
                      "'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz...': line longer than 198 "
                      "characters");

    static const char nul[] = "[client]\nport = 1\0 2\n";
    const char *path = write_file_n(nul, sizeof(nul) - 1);
    char err[256], expect[256];
    config_defaults(&c);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), -1);
    snprintf(expect, sizeof(expect), "%s:2: port: line contains a NUL byte", path);
    assert_string_equal(err, expect);
    config_free(&c);
}

static void test_unreadable_files(void **state)
{
    config_t c;
    char err[512], want[512], path[128];
    config_defaults(&c);
    snprintf(path, sizeof(path), "%s/does-not-exist.ini", tmpdir);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: No such file or directory", path);
    assert_string_equal(err, want);

    assert_int_equal(config_load_file(&c, tmpdir, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: Is a directory", tmpdir);
    assert_string_equal(err, want);

    const char *file = write_file("[node]\n");
    snprintf(path, sizeof(path), "%s/x.ini", file);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: Not a directory", path);
    assert_string_equal(err, want);

    /* A file of more than 1 MiB is refused; 1 MiB exactly is read. */
    static char big[(1 << 20) + 1];
    memset(big, '\n', sizeof(big));
    memcpy(big, "[client]\nport = 1\n", 18);
    file = write_file_n(big, sizeof(big));
    assert_int_equal(config_load_file(&c, file, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: larger than 1048576 bytes", file);
    assert_string_equal(err, want);
    config_t e;
    file = write_file_n(big, sizeof(big) - 1);
    config_defaults(&e);
    assert_int_equal(config_load_file(&e, file, err, sizeof(err)), 0);
    assert_int_equal(e.port, 1);
    config_free(&e);

    assert_int_equal(config_load_file(&c, "", err, sizeof(err)), -1);
    assert_string_equal(err, "config file name is empty");
    /* Nothing was changed by any of it. */
    config_t d;
    config_defaults(&d);
    assert_same_config(&c, &d);
    assert_null(c.path);
    config_free(&c);
    config_free(&d);
}

/* A file with an error leaves the config exactly as it was. */
static void test_error_changes_nothing(void **state)
{
    config_t c, d;
    char err[512];
    config_defaults(&c);
    config_defaults(&d);
    const char *bad = write_file("[client]\nport = 1\nrequirepass = x\n[cluster]\npeer = a:1\n"
                                 "peer = b:0\n");
    assert_int_equal(config_load_file(&c, bad, err, sizeof(err)), -1);
    assert_same_config(&c, &d);
    assert_null(c.path);
    /* A good file after it applies, and later files build on earlier ones. */
    const char *one = write_file("[client]\nport = 1\n[cluster]\npeer = a:1\n");
    const char *two = write_file("[client]\nport = 2\n[cluster]\npeer = b:2\n");
    assert_int_equal(config_load_file(&c, one, err, sizeof(err)), 0);
    assert_int_equal(config_load_file(&c, two, err, sizeof(err)), 0);
    assert_string_equal(c.path, two);
    assert_int_equal(c.port, 2);
    assert_int_equal(c.peers.n, 2);
    config_free(&c);
    config_free(&d);
}

/* Every error has the shape FILE:LINE: key: what is wrong. */
static void test_error_shape(void **state)
{
    static const char *const bad[] = {
        "[client]\nport = x\n",
        "[client]\nport = 1\nport = 1\n",
        "[bogus]\n",
        "[node]\ncolour = red\n",
        "x = 1\n",
        "[node]\njunk\n",
        "[node\n",
        "[node]\n= 1\n",
        "[cache]\nmaxmemory = 12 apples\n",
        "[cluster]\npeer = a\n",
        "[cluster]\nauthorized = a/1\n",
        "[client]\nunixsocketperm = 9\n",
        "[node]\nrole = x\n",
        "[client]\ntimeout = 1ms\n",
        "[node]\nname = a b\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        config_t c;
        char err[512], re[256];
        const char *path;
        assert_int_equal(load(&c, bad[i], err, sizeof(err), &path), -1);
        snprintf(re, sizeof(re), "^%s:[0-9]+: [^ :]([^:]*[^ :])?: [^ ].*$", path);
        if (!matches(re, err))
            fail_msg("error without the FILE:LINE: key: shape: %s", err);
        config_free(&c);
    }
}

/* ---- config_set ----------------------------------------------------------- */

static void test_config_set(void **state)
{
    config_t c;
    char err[256];
    config_defaults(&c);
    assert_int_equal(config_set(&c, "client", "port", "1234", err, sizeof(err)), 0);
    assert_int_equal(c.port, 1234);
    assert_int_equal(config_set(&c, "client", "port", "1235", err, sizeof(err)), 0);
    assert_int_equal(c.port, 1235); /* setting twice is not an error here */
    assert_int_equal(config_set(&c, "cluster", "peer", "a:1", err, sizeof(err)), 0);
    assert_int_equal(config_set(&c, "cluster", "peer", "b:1", err, sizeof(err)), 0);
    assert_int_equal(c.peers.n, 2);
    assert_int_equal(config_set(&c, "client", "port", "x", err, sizeof(err)), -1);
    assert_string_equal(err, "port: not an integer: 'x'");
    assert_int_equal(c.port, 1235);
    assert_int_equal(config_set(&c, "node", "colour", "red", err, sizeof(err)), -1);
    assert_string_equal(err, "colour: unknown key in [node]");
    assert_int_equal(config_set(&c, "bogus", "x", "1", err, sizeof(err)), -1);
    assert_string_equal(err, "[bogus]: unknown section");
    /* A NULL or tiny error buffer is fine. */
    assert_int_equal(config_set(&c, "client", "port", "x", NULL, 0), -1);
    assert_int_equal(config_set(&c, "client", "port", "x", err, 4), -1);
    assert_string_equal(err, "por");
    config_free(&c);
}

/* ---- command line --------------------------------------------------------- */

static void test_flags_override_file_either_order(void **state)
{
    const char *file =
        write_file("[client]\nport = 6000\nbind = 10.0.0.1\n[cache]\nmaxmemory = 1mb\n");
    config_t c;
    char err[512];

    config_defaults(&c);
    assert_int_equal(
        run_args(&c, err, sizeof(err), "--config", (char *)file, "--port", "6001", NULL), 0);
    assert_int_equal(c.port, 6001);
    assert_string_equal(c.bind, "10.0.0.1");
    assert_string_equal(c.path, file);
    config_free(&c);

    config_defaults(&c);
    assert_int_equal(run_args(&c, err, sizeof(err), "--port", "6002", "--maxmemory", "2mb", "-c",
                              (char *)file, NULL),
                     0);
    assert_int_equal(c.port, 6002);
    assert_int_equal(c.maxmemory, 2 << 20);
    assert_string_equal(c.bind, "10.0.0.1");
    config_free(&c);

    /* --set too, and --port=N form */
    config_defaults(&c);
    assert_int_equal(run_args(&c, err, sizeof(err), "--set", "client.bind=10.0.0.9", "--port=6003",
                              "--config", (char *)file, NULL),
                     0);
    assert_string_equal(c.bind, "10.0.0.9");
    assert_int_equal(c.port, 6003);
    config_free(&c);

    /* Later flags win over earlier ones. */
    config_defaults(&c);
    assert_int_equal(run_args(&c, err, sizeof(err), "--port", "1", "--set", "client.port=2", NULL),
                     0);
    assert_int_equal(c.port, 2);
    config_free(&c);
}

static void test_each_flag(void **state)
{
    config_t c;
    char err[512];
    config_defaults(&c);
    assert_int_equal(run_args(&c, err, sizeof(err), "--bind", "::1", "--port", "0", "--name", "w9",
                              "--http-port", "8080", "--unixsocket", "/run/x.sock", "--maxmemory",
                              "3G", "--log-file", "/var/log/w9.log", NULL),
                     0);
    assert_string_equal(c.bind, "::1");
    assert_int_equal(c.port, 0);
    assert_string_equal(c.name, "w9");
    assert_int_equal(c.http_port, 8080);
    assert_string_equal(c.unixsocket, "/run/x.sock");
    assert_int_equal(c.maxmemory, 3ULL << 30);
    assert_string_equal(c.log_file, "/var/log/w9.log");
    assert_null(c.path);
    config_free(&c);
}

static void test_set_flag(void **state)
{
    const char *file = write_file("[cluster]\npeer = a:1\n");
    config_t c;
    char err[512];
    config_defaults(&c);
    assert_int_equal(run_args(&c, err, sizeof(err), "--set", "cluster.lease=3s", "--set",
                              "cluster.peer=b:2", "--set", "node.role=warm", "--set",
                              "node.log_file=/tmp/x.log?a=b", "-c", (char *)file, NULL),
                     0);
    assert_int_equal(c.lease_ms, 3000);
    assert_string_equal(c.role, "warm");
    assert_string_equal(c.log_file, "/tmp/x.log?a=b"); /* '=' in the value is kept */
    assert_int_equal(c.peers.n, 2); /* a list flag adds to the file's list */
    assert_string_equal(c.peers.items[0], "a:1");
    assert_string_equal(c.peers.items[1], "b:2");
    config_free(&c);

    static const struct {
        const char *arg, *err;
    } bad[] = {
        {"client.port", "--set: expected section.key=value: 'client.port'"},
        {"port=1", "--set: expected section.key=value: 'port=1'"},
        {".port=1", "--set: expected section.key=value: '.port=1'"},
        {"client.=1", "--set: expected section.key=value: 'client.=1'"},
        {"a=b.c", "--set: expected section.key=value: 'a=b.c'"},
        {"client.port=70000", "--set: port: must be between 0 and 65535"},
        {"client.colour=red", "--set: colour: unknown key in [client]"},
        {"bogus.x=1", "--set: [bogus]: unknown section"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        config_defaults(&c);
        assert_int_equal(run_args(&c, err, sizeof(err), "--set", (char *)bad[i].arg, NULL), -1);
        assert_string_equal(err, bad[i].err);
        config_free(&c);
    }
}

static void test_timings_must_agree(void **state)
{
    static const struct {
        const char *a, *b, *err;
    } bad[] = {
        {"cluster.heartbeat=500ms", "cluster.suspect_after=500ms",
         "cluster.heartbeat (500ms) must be shorter than cluster.suspect_after (500ms)"},
        {"cluster.heartbeat=200ms", "cluster.lease=300ms",
         "cluster.lease (300ms) must be at least two heartbeats (cluster.heartbeat 200ms)"},
        {"cluster.suspect_after=10s", "cluster.dead_after=10s",
         "cluster.suspect_after (10s) must be shorter than cluster.dead_after (10s)"},
    };
    config_t c;
    char err[512];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        config_defaults(&c);
        assert_int_equal(run_args(&c, err, sizeof(err), "--set", (char *)bad[i].a, "--set",
                                  (char *)bad[i].b, NULL),
                         -1);
        assert_string_equal(err, bad[i].err);
        assert_int_equal(c.heartbeat_ms, 100); /* an error changes nothing */
        config_free(&c);
    }
    /* The edges that are allowed. */
    config_defaults(&c);
    assert_int_equal(run_args(&c, err, sizeof(err), "--set", "cluster.heartbeat=100ms", "--set",
                              "cluster.lease=200ms", "--set", "cluster.suspect_after=101ms",
                              "--set", "cluster.dead_after=102ms", NULL),
                     0);
    assert_int_equal(c.lease_ms, 200);
    config_free(&c);
}

static void test_bad_flags(void **state)
{
    static const struct {
        const char *a, *b, *err;
    } bad[] = {
        {"--port", "70000", "--port: must be between 0 and 65535"},
        {"--port", "x", "--port: not an integer: 'x'"},
        {"--http-port", "-5", "--http-port: must be between 0 and 65535"},
        {"--maxmemory", "lots", "--maxmemory: not a size: 'lots'"},
        {"--bind", "localhost", "--bind: not an IP address: 'localhost'"},
        {"--name", "a b", "--name: not a valid name (letters, digits, '.', '_', '-'): 'a b'"},
        {"--bogus", NULL, "--bogus: unknown option (see --help)"},
        {"-x", NULL, "-x: unknown option (see --help)"},
        {"--help=1", NULL, "--help=1: takes no value"},
        {"--version=", NULL, "--version=: takes no value"},
        {"--port", NULL, "--port: needs a value"},
        {"-c", NULL, "-c: needs a value"},
        {"stray.ini", NULL, "'stray.ini': unexpected argument (a config file needs --config)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        config_t c, d;
        char err[512] = "";
        config_defaults(&c);
        config_defaults(&d);
        assert_int_equal(run_args(&c, err, sizeof(err), (char *)bad[i].a, (char *)bad[i].b, NULL),
                         -1);
        assert_string_equal(err, bad[i].err);
        assert_same_config(&c, &d); /* unchanged */
        config_free(&c);
        config_free(&d);
    }

    /* --config twice, a missing config file, a bad config file */
    config_t c, d;
    char err[512], want[512], missing[128];
    const char *file = write_file("[client]\nport = 5\n");
    config_defaults(&c);
    config_defaults(&d);
    assert_int_equal(run_args(&c, err, sizeof(err), "-c", (char *)file, "-c", (char *)file, NULL),
                     -1);
    assert_string_equal(err, "--config: given twice");
    snprintf(missing, sizeof(missing), "%s/missing.ini", tmpdir);
    assert_int_equal(run_args(&c, err, sizeof(err), "--config", missing, NULL), -1);
    snprintf(want, sizeof(want), "%s: No such file or directory", missing);
    assert_string_equal(err, want);
    const char *broken = write_file("[client]\nport = 5\n[cache]\nmaxmemory = 12 apples\n");
    assert_int_equal(
        run_args(&c, err, sizeof(err), "--port", "9", "--config", (char *)broken, NULL), -1);
    snprintf(want, sizeof(want), "%s:4: maxmemory: not a size: '12 apples'", broken);
    assert_string_equal(err, want);
    /* A good file with a bad flag after it changes nothing either. */
    assert_int_equal(run_args(&c, err, sizeof(err), "--config", (char *)file, "--port", "x", NULL),
                     -1);
    assert_same_config(&c, &d);
    assert_null(c.path);
    config_free(&c);
    config_free(&d);
}

struct args_call {
    const char *word;
    int rc;
};

static void call_with_word(void *arg)
{
    struct args_call *a = arg;
    config_t c;
    char err[256];
    config_defaults(&c);
    a->rc = run_args(&c, err, sizeof(err), (char *)a->word, "--port", "x", NULL);
    config_free(&c);
}

static void test_help_and_version(void **state)
{
    char out[16384];
    struct args_call a = {"--version", 0};
    capture_fd(1, call_with_word, &a, out, sizeof(out));
    assert_int_equal(a.rc, 1);
    assert_string_equal(out, "cohortd 0.1.0\n");

    a = (struct args_call){"-v", 0};
    capture_fd(1, call_with_word, &a, out, sizeof(out));
    assert_int_equal(a.rc, 1);
    assert_string_equal(out, "cohortd 0.1.0\n");

    a = (struct args_call){"--help", 0};
    capture_fd(1, call_with_word, &a, out, sizeof(out));
    assert_int_equal(a.rc, 1);
    assert_true(strncmp(out, "Usage: cohortd", 14) == 0);
    /* every flag and every setting is listed */
    static const char *const words[] = {"--config",    "--bind",       "--port",      "--name",
                                        "--http-port", "--unixsocket", "--maxmemory", "--log-file",
                                        "--set",       "--help",       "--version"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        assert_non_null(strstr(out, words[i]));
    for (size_t i = 0; i < sizeof(all_keys) / sizeof(all_keys[0]); i++) {
        char k[64];
        snprintf(k, sizeof(k), "  %s.%s ", all_keys[i].section, all_keys[i].key);
        if (!strstr(out, k))
            fail_msg("--help does not list %s", k);
    }

    a = (struct args_call){"-h", 0};
    capture_fd(1, call_with_word, &a, out, sizeof(out));
    assert_int_equal(a.rc, 1);
    assert_true(strncmp(out, "Usage: cohortd", 14) == 0);
}

/* Parsing twice in one process works (getopt state is reset). */
static void test_args_twice(void **state)
{
    config_t c;
    char err[256];
    for (int i = 0; i < 2; i++) {
        config_defaults(&c);
        assert_int_equal(run_args(&c, err, sizeof(err), "--port", "1111", NULL), 0);
        assert_int_equal(c.port, 1111);
        config_free(&c);
    }
    config_defaults(&c);
    assert_int_equal(run_args(&c, err, sizeof(err), NULL), 0);
    assert_int_equal(c.port, 7379);
    config_free(&c);
}

/* ---- log ------------------------------------------------------------------ */

static const char *line_re = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z ";

static void test_log_format_and_levels(void **state)
{
    char path[128], text[8192];
    snprintf(path, sizeof(path), "%s/node.log", tmpdir);
    time_t before = time(NULL);
    assert_int_equal(log_open("www1", path, LOG_INFO), 0);
    log_debug("server", "not written");
    log_info("server", "listening on %s:%d", "127.0.0.1", 7379);
    log_warn("peer", "w");
    log_error("store", "e %d", 1);
    log_close();

    slurp(path, text, sizeof(text));
    char *l1 = text, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    char *end = strchr(l3, '\n');
    assert_non_null(end);
    assert_string_equal(end, "\n");
    char re[256];
    snprintf(re, sizeof(re), "%swww1 INFO server: listening on 127\\.0\\.0\\.1:7379\n", line_re);
    assert_true(matches(re, l1));
    snprintf(re, sizeof(re), "%swww1 WARN peer: w\n", line_re);
    assert_true(matches(re, l2));
    snprintf(re, sizeof(re), "%swww1 ERROR store: e 1\n$", line_re);
    assert_true(matches(re, l3));

    /* The time is UTC and now. */
    struct tm tm = {0};
    int ms;
    assert_int_equal(sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d.%3d", &tm.tm_year, &tm.tm_mon,
                            &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms),
                     7);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    /* time(NULL) reads a coarse clock that may lag the log's by a tick:
     * allow a second either way. */
    assert_true(t >= before - 1 && t <= time(NULL) + 1);

    /* Reopening appends; the level filter follows log_open. */
    assert_int_equal(log_open("www1", path, LOG_DEBUG), 0);
    log_debug("x", "now written");
    log_close();
    slurp(path, text, sizeof(text));
    assert_non_null(strstr(text, "www1 ERROR store: e 1\n"));
    assert_non_null(strstr(text, "www1 DEBUG x: now written\n"));

    assert_int_equal(log_open("www1", path, LOG_ERROR), 0);
    log_warn("x", "dropped");
    log_close();
    slurp(path, text, sizeof(text));
    assert_null(strstr(text, "dropped"));
}

static void test_log_truncates_and_sanitizes(void **state)
{
    char path[128], text[16384], big[10000];
    snprintf(path, sizeof(path), "%s/trunc.log", tmpdir);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(log_open("n", path, LOG_DEBUG), 0);
    log_info("t", "%s", big);
    log_info("t", "a\nb\rc\x1b[0md\te");
    log_close();
    size_t n = slurp(path, text, sizeof(text));
    char *nl = strchr(text, '\n');
    assert_int_equal(nl - text + 1, 4096); /* the whole line, newline included */
    assert_true(memcmp(nl - 3, "...", 3) == 0);
    assert_true(matches("n INFO t: a\\?b\\?c\\?\\[0md\te\n$", nl + 1));
    assert_int_equal(text[n - 1], '\n');
}

static void test_log_reopen_after_rotation(void **state)
{
    char path[128], rotated[140], text[4096];
    snprintf(path, sizeof(path), "%s/rot.log", tmpdir);
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    assert_int_equal(log_open("n", path, LOG_INFO), 0);
    log_info("t", "before");
    assert_int_equal(rename(path, rotated), 0);
    log_info("t", "still old");
    assert_int_equal(log_reopen(), 0);
    log_info("t", "after");
    log_close();
    slurp(rotated, text, sizeof(text));
    assert_non_null(strstr(text, "t: before\n"));
    assert_non_null(strstr(text, "t: still old\n"));
    assert_null(strstr(text, "after"));
    slurp(path, text, sizeof(text));
    assert_non_null(strstr(text, "t: after\n"));
    assert_null(strstr(text, "before"));
    unlink(rotated);
    /* Reopen with stderr as the destination does nothing. */
    assert_int_equal(log_reopen(), 0);
}

/* Two processes appending long lines to one file: every line stays whole. */
static void test_log_lines_do_not_interleave(void **state)
{
    enum { PROCS = 2, LINES = 400, LEN = 3000 };
    char path[128];
    snprintf(path, sizeof(path), "%s/shared.log", tmpdir);
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            char msg[LEN + 1];
            memset(msg, 'a' + p, LEN);
            msg[LEN] = '\0';
            if (log_open("n", path, LOG_INFO) != 0)
                _exit(1);
            for (int i = 0; i < LINES; i++)
                log_info("t", "%s", msg);
            _exit(0);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int st;
        assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    static char text[PROCS * LINES * (LEN + 64) + 1];
    size_t n = slurp(path, text, sizeof(text)), lines = 0;
    for (char *l = text; l < text + n; lines++) {
        char *nl = strchr(l, '\n');
        assert_non_null(nl);
        char *body = strstr(l, " n INFO t: ");
        assert_true(body && body < nl);
        body += strlen(" n INFO t: ");
        assert_int_equal(nl - body, LEN);
        for (char *c = body; c < nl; c++)
            assert_int_equal(*c, *body); /* all one child's letter */
        l = nl + 1;
    }
    assert_int_equal(lines, PROCS * LINES);
}

struct log_call {
    const char *path;
    int rc, err;
};

static void log_to_bad_path(void *arg)
{
    struct log_call *a = arg;
    errno = 0;
    a->rc = log_open("n", a->path, LOG_INFO);
    a->err = errno;
    errno = 42;
    log_info("t", "on stderr");
    assert_int_equal(errno, 42); /* logging keeps errno */
    log_close();
}

static void test_log_open_failure_uses_stderr(void **state)
{
    char out[4096], path[128];
    snprintf(path, sizeof(path), "%s/no/such/dir.log", tmpdir);
    struct log_call a = {path, 0, 0};
    capture_fd(2, log_to_bad_path, &a, out, sizeof(out));
    assert_int_equal(a.rc, -ENOENT);
    assert_int_equal(a.err, ENOENT);
    char re[128];
    snprintf(re, sizeof(re), "%sn INFO t: on stderr\n$", line_re);
    assert_true(matches(re, out));
}

static void test_log_level_parse(void **state)
{
    assert_int_equal(log_level_parse("debug"), LOG_DEBUG);
    assert_int_equal(log_level_parse("INFO"), LOG_INFO);
    assert_int_equal(log_level_parse("warning"), LOG_WARN);
    assert_int_equal(log_level_parse("warn"), LOG_WARN);
    assert_int_equal(log_level_parse("Error"), LOG_ERROR);
    assert_int_equal(log_level_parse("loud"), -1);
    assert_int_equal(log_level_parse(""), -1);
    assert_int_equal(log_level_parse(NULL), -1);
    /* every log_level the config accepts is one log understands */
    static const char *const levels[] = {"debug", "info", "warning", "error"};
    for (size_t i = 0; i < 4; i++) {
        config_t c;
        char err[128];
        config_defaults(&c);
        assert_int_equal(config_set(&c, "node", "log_level", levels[i], err, sizeof(err)), 0);
        assert_int_equal(log_level_parse(c.log_level), (int)i);
        config_free(&c);
    }
}

/* ---- main ----------------------------------------------------------------- */

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/cohort-test-config-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[PATH_MAX];
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (unlink(p) != 0 && errno == EISDIR)
            remove_tree(p);
    }
    closedir(d);
    rmdir(dir);
}

static int group_teardown(void **state)
{
    remove_tree(tmpdir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_bool),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_every_key_maps_to_its_field),
        cmocka_unit_test(test_names_case_insensitive),
        cmocka_unit_test(test_int_bounds),
        cmocka_unit_test(test_size_values),
        cmocka_unit_test(test_duration_values),
        cmocka_unit_test(test_enum_values),
        cmocka_unit_test(test_octal_values),
        cmocka_unit_test(test_name_and_address_values),
        cmocka_unit_test(test_string_values),
        cmocka_unit_test(test_peer_list),
        cmocka_unit_test(test_cidr_list),
        cmocka_unit_test(test_repeated_key),
        cmocka_unit_test(test_unknown_section_and_key),
        cmocka_unit_test(test_job_sections),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_inline_comments),
        cmocka_unit_test(test_whitespace_bom_crlf),
        cmocka_unit_test(test_long_line_and_nul),
        cmocka_unit_test(test_unreadable_files),
        cmocka_unit_test(test_error_changes_nothing),
        cmocka_unit_test(test_error_shape),
        cmocka_unit_test(test_config_set),
        cmocka_unit_test(test_flags_override_file_either_order),
        cmocka_unit_test(test_each_flag),
        cmocka_unit_test(test_set_flag),
        cmocka_unit_test(test_timings_must_agree),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_args_twice),
        cmocka_unit_test(test_log_format_and_levels),
        cmocka_unit_test(test_log_truncates_and_sanitizes),
        cmocka_unit_test(test_log_reopen_after_rotation),
        cmocka_unit_test(test_log_lines_do_not_interleave),
        cmocka_unit_test(test_log_open_failure_uses_stderr),
        cmocka_unit_test(test_log_level_parse),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
