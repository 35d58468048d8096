/* fuzz_config: feeds arbitrary bytes to config_load_file as an INI file, and
 * to the value helpers as a string.
 *
 * The file lives in a memfd and is read back through /proc/self/fd, so the
 * target touches no disk. Every load must either succeed with values inside
 * their bounds, or fail with a "PATH..." message and leave the config as it
 * was; nothing may crash or leak (run under ASan/UBSan/LSan). */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

static int memfd = -1;
static char path[64];

static void check_bounds(const config_t *c)
{
    assert(c->port >= 0 && c->port <= 65535);
    assert(c->http_port >= 0 && c->http_port <= 65535);
    assert(c->cluster_port >= 1 && c->cluster_port <= 65535);
    assert(c->unixsocketperm >= 0 && c->unixsocketperm <= 0777);
    assert(c->maxclients >= 1);
    assert(c->lease_ms >= 10 && c->heartbeat_ms >= 10);
    assert(c->name && c->name[0] && c->role && c->log_level && c->bind && c->cluster_name);
    assert(!c->requirepass || c->requirepass[0]);
    assert(strcmp(c->role, "hot") == 0 || strcmp(c->role, "warm") == 0);
    for (size_t i = 0; i < c->peers.n; i++)
        assert(c->peers.items[i] && strchr(c->peers.items[i], ':'));
    for (size_t i = 0; i < c->authorized.n; i++)
        assert(strchr(c->authorized.items[i], '/'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (memfd < 0) {
        memfd = memfd_create("fuzz_config.ini", MFD_CLOEXEC);
        assert(memfd >= 0);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
    }
    assert(ftruncate(memfd, 0) == 0);
    assert(pwrite(memfd, data, size, 0) == (ssize_t)size);

    config_t cfg;
    char err[512];
    config_defaults(&cfg);
    int port = cfg.port;
    if (config_load_file(&cfg, path, err, sizeof(err)) == 0) {
        check_bounds(&cfg);
        assert(cfg.path && strcmp(cfg.path, path) == 0);
    } else {
        assert(strncmp(err, path, strlen(path)) == 0);
        assert(cfg.path == NULL && cfg.port == port); /* unchanged */
    }
    config_free(&cfg);

    /* The same bytes as one value for the helpers and for config_set. */
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    size_t sz;
    long long ms;
    int b;
    (void)config_parse_size(s, &sz);
    (void)config_parse_duration_ms(s, 1000, &ms);
    (void)config_parse_bool(s, &b);
    config_defaults(&cfg);
    static const char *const keys[][2] = {
        {"cluster", "peer"},          {"cluster", "authorized"}, {"client", "timeout"},
        {"client", "unixsocketperm"}, {"node", "name"},          {"cache", "maxmemory"},
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        (void)config_set(&cfg, keys[i][0], keys[i][1], s, err, sizeof(err));
    check_bounds(&cfg);
    config_free(&cfg);
    free(s);
    return 0;
}
