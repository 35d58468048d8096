/* Unit tests for keyspace: the write mode of a key (node/keyspace.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "keyspace.h"

#define K(s) s, strlen(s)

static keyspaces_t *load(const char *ini, char *err, size_t errlen)
{
    config_t cfg;
    config_defaults(&cfg);
    char path[] = "/tmp/test_keyspace_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, ini, strlen(ini)), (ssize_t)strlen(ini));
    close(fd);
    keyspaces_t *ks = NULL;
    if (config_load_file(&cfg, path, err, errlen) == 0)
        ks = keyspaces_new(&cfg, err, errlen);
    unlink(path);
    config_free(&cfg);
    return ks;
}

static void test_longest_prefix_wins(void **state)
{
    (void)state;
    char err[256] = "";
    keyspaces_t *ks = load("[cache]\nwrites = invalidate\n"
                           "[keyspace s]\nprefix = sess:\nprefix = session:\nwrites = replicate\n"
                           "[keyspace t]\nprefix = sess:tmp:\nwrites = local\n",
                           err, sizeof(err));
    assert_non_null(ks);
    assert_int_equal(keyspaces_mode(ks, K("sess:1")), KS_REPLICATE);
    assert_int_equal(keyspaces_mode(ks, K("session:1")), KS_REPLICATE);
    assert_int_equal(keyspaces_mode(ks, K("sess:tmp:1")), KS_LOCAL);
    assert_int_equal(keyspaces_mode(ks, K("sess")), KS_INVALIDATE); /* shorter than the prefix */
    assert_int_equal(keyspaces_mode(ks, K("other")), KS_INVALIDATE);
    keyspace_match_t m;
    keyspaces_match(ks, K("sess:tmp:x"), &m);
    assert_string_equal(m.name, "t");
    assert_string_equal(m.prefix, "sess:tmp:");
    keyspaces_match(ks, K("zzz"), &m);
    assert_string_equal(m.name, "");
    assert_int_equal(m.mode, KS_INVALIDATE);
    assert_int_equal(keyspaces_any_replicated(ks), 1);
    keyspaces_free(ks);
}

static void test_default_replicates(void **state)
{
    (void)state;
    char err[256] = "";
    keyspaces_t *ks = load("[node]\nname = x\n", err, sizeof(err));
    assert_non_null(ks);
    assert_int_equal(keyspaces_mode(ks, K("anything")), KS_REPLICATE);
    keyspaces_free(ks);
    assert_int_equal(keyspaces_mode(NULL, K("anything")), KS_REPLICATE);
}

static void test_only_local_and_invalidate_replicate_nothing(void **state)
{
    (void)state;
    char err[256] = "";
    keyspaces_t *ks = load("[cache]\nwrites = local\n[keyspace p]\nprefix = p:\n"
                           "writes = invalidate\n", err, sizeof(err));
    assert_non_null(ks);
    assert_int_equal(keyspaces_any_replicated(ks), 0);
    keyspaces_free(ks);
}

static void expect_error(const char *ini, const char *what)
{
    char err[256] = "";
    keyspaces_t *ks = load(ini, err, sizeof(err));
    assert_null(ks);
    if (!strstr(err, what))
        fail_msg("'%s' not in '%s'", what, err);
}

static void test_bad_tables_are_refused(void **state)
{
    (void)state;
    expect_error("[keyspace a]\nprefix =\nwrites = local\n", "prefix: empty");
    expect_error("[keyspace a]\nprefix = x\nwrites = local\n[keyspace b]\nprefix = x\n"
                 "writes = local\n", "'x' is already in [keyspace a]");
    expect_error("[keyspace a]\nprefix = x\nwrites = often\n", "'often' is not one of");
    expect_error("[keyspace a]\nwrites = local\n", "needs at least one prefix");
    expect_error("[keyspace a]\nprefix = x\n", "needs a writes");
    expect_error("[keyspace a]\nprefix = x\nwrites = local\nwrites = local\n", "set twice");
    expect_error("[keyspace a]\nprefix = x\nwrites = local\nttl = 3\n", "ttl: unknown key");
    expect_error("[keyspace]\nprefix = x\n", "needs a name");
    expect_error("[keyspace a]\nprefix = x\nwrites = local\n[keyspace a]\n", "repeated");
    expect_error("[cache]\nwrites = sometimes\n", "writes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_longest_prefix_wins),
        cmocka_unit_test(test_default_replicates),
        cmocka_unit_test(test_only_local_and_invalidate_replicate_nothing),
        cmocka_unit_test(test_bad_tables_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
