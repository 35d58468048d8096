/* Unit tests for jobspec.c: every key, its errors (one line, "key: what"),
 * the final check, interval slot alignment, and the due-slot arithmetic
 * under each catch-up policy, including a fake clock that steps backwards and
 * forwards. No clock is read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobrun.h"
#include "jobspec.h"

#define SEC    1000LL
#define MINUTE (60 * SEC)
#define HOUR   (60 * MINUTE)
#define T0     1798761600000LL /* 2027-01-01 00:00:00Z, a multiple of every interval used */

static void set_tz_utc(void)
{
    char err[128];
    assert_int_equal(cron_set_timezone("UTC", err, sizeof(err)), 0);
}

/* A job built from key/value pairs (NULL-terminated); fails the test on error. */
static void make(jobspec_t *j, const char *const *kv)
{
    char err[256] = "";
    if (jobspec_init(j, "t", err, sizeof(err)) != 0)
        fail_msg("init: %s", err);
    for (; kv[0]; kv += 2)
        if (jobspec_set(j, kv[0], kv[1], err, sizeof(err)) != 0)
            fail_msg("%s = %s: %s", kv[0], kv[1], err);
    if (jobspec_check(j, err, sizeof(err)) != 0)
        fail_msg("check: %s", err);
}

static void expect_set_error(const char *key, const char *value, const char *want)
{
    jobspec_t j;
    char err[256] = "";
    assert_int_equal(jobspec_init(&j, "t", err, sizeof(err)), 0);
    if (jobspec_set(&j, key, value, err, sizeof(err)) == 0)
        fail_msg("%s = %s accepted, want '%s'", key, value, want);
    if (strcmp(err, want) != 0)
        fail_msg("%s = %s: got '%s', want '%s'", key, value, err, want);
    jobspec_free(&j);
}

static void expect_check_error(const char *const *kv, const char *want)
{
    jobspec_t j;
    char err[256] = "";
    assert_int_equal(jobspec_init(&j, "t", err, sizeof(err)), 0);
    for (; kv[0]; kv += 2)
        if (jobspec_set(&j, kv[0], kv[1], err, sizeof(err)) != 0)
            fail_msg("%s = %s: %s", kv[0], kv[1], err);
    if (jobspec_check(&j, err, sizeof(err)) == 0)
        fail_msg("check passed, want '%s'", want);
    if (strcmp(err, want) != 0)
        fail_msg("check: got '%s', want '%s'", err, want);
    jobspec_free(&j);
}

/* ---- settings ----------------------------------------------------------------- */

static void test_defaults_and_keys(void **state)
{
    jobspec_t j;
    make(&j,
         (const char *const[]){"every", "5m", "run", "http://127.0.0.1:8000/admin/reindex", NULL});
    assert_string_equal(j.name, "t");
    assert_true(j.every_ms == 5 * MINUTE);
    assert_string_equal(j.url, "http://127.0.0.1:8000/admin/reindex");
    assert_null(j.command);
    assert_int_equal(j.method, JOBRUN_GET);
    assert_true(j.timeout_ms == 10 * MINUTE);
    assert_int_equal(j.catchup, JOBSPEC_CATCHUP_LATEST);
    assert_int_equal(j.overlap, JOBSPEC_OVERLAP_SKIP);
    assert_int_equal(j.where, JOBSPEC_WHERE_LEADER);
    assert_string_equal(j.lease, "canonical");
    jobspec_free(&j);

    make(&j, (const char *const[]){"cron", "*/5 * * * mon-fri", "command", "/usr/bin/true",
                                   "timeout", "90", "catchup", "ALL", "overlap", "queue", "lease",
                                   "mail.sweeps", NULL});
    assert_true(j.every_ms == 0);
    assert_string_equal(j.cron_text, "*/5 * * * mon-fri");
    assert_int_equal(j.cron.wdays, 0x3e);
    assert_string_equal(j.command, "/usr/bin/true");
    assert_true(j.timeout_ms == 90 * SEC); /* a bare timeout is in seconds */
    assert_int_equal(j.catchup, JOBSPEC_CATCHUP_ALL);
    assert_int_equal(j.overlap, JOBSPEC_OVERLAP_QUEUE);
    assert_string_equal(j.lease, "mail.sweeps");
    jobspec_free(&j);

    make(&j, (const char *const[]){"every", "1500ms", "run", "http://app/x?y=1", "method", "post",
                                   "where", "every", "catchup", "none", NULL});
    assert_true(j.every_ms == 1500);
    assert_int_equal(j.method, JOBRUN_POST);
    assert_int_equal(j.where, JOBSPEC_WHERE_EVERY);
    assert_int_equal(j.catchup, JOBSPEC_CATCHUP_NONE);
    jobspec_free(&j);
}

static void test_every_values(void **state)
{
    static const struct {
        const char *text;
        int64_t ms;
    } ok[] = {{"30s", 30 * SEC}, {"5m", 5 * MINUTE},     {"1h", HOUR},    {"1500ms", 1500},
              {"100ms", 100},    {"8784h", 8784 * HOUR}, {"2H", 2 * HOUR}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t ms = 0;
        char err[128] = "";
        if (jobspec_parse_every(ok[i].text, &ms, err, sizeof(err)) != 0)
            fail_msg("%s: %s", ok[i].text, err);
        assert_true(ms == ok[i].ms);
    }
}

static void test_set_errors(void **state)
{
    expect_set_error("colour", "red",
                     "colour: unknown key (known: every cron run command method timeout catchup "
                     "overlap where lease)");
    expect_set_error("every", "30", "every: needs a unit (ms, s, m, h): '30'");
    expect_set_error("every", "soon", "every: not a duration: 'soon'");
    expect_set_error("every", "", "every: not a duration: ''");
    expect_set_error("every", "5d", "every: not a duration: '5d'");
    expect_set_error("every", "99ms", "every: must be between 100ms and 8784h, not '99ms'");
    expect_set_error("every", "8785h", "every: must be between 100ms and 8784h, not '8785h'");
    expect_set_error("every", "-5m", "every: not a duration: '-5m'");
    expect_set_error("cron", "0 25 * * *", "cron: field 2 (hour): 25 is out of range 0-23");
    expect_set_error("cron", "* * *",
                     "cron: expected 5 fields (minute hour day-of-month month day-of-week), got 3");
    expect_set_error("run", "https://127.0.0.1/x",
                     "run: only http:// URLs are supported: 'https://127.0.0.1/x'");
    expect_set_error("run", "127.0.0.1:8000/x", "run: not a URL: '127.0.0.1:8000/x'");
    expect_set_error("run", "http://u:p@127.0.0.1/x", "run: user info in the URL is not supported");
    expect_set_error("run", "http://127.0.0.1:0/x", "run: port 0 in 'http://127.0.0.1:0/x'");
    expect_set_error("run", "http://127.0.0.1/a b", "run: spaces or control characters in the URL");
    expect_set_error("command", "   ", "command: empty command");
    expect_set_error("command", "echo a\necho b", "command: control character in the value");
    expect_set_error("ev\nery", "5m", "(a key with control characters): unknown key");
    expect_set_error("method", "PUT", "method: must be GET or POST, not 'PUT'");
    expect_set_error("timeout", "forever", "timeout: not a duration: 'forever'");
    expect_set_error("timeout", "25h", "timeout: must be between 100ms and 24h, not '25h'");
    expect_set_error("timeout", "50ms", "timeout: must be between 100ms and 24h, not '50ms'");
    expect_set_error("catchup", "some", "catchup: must be none, latest or all, not 'some'");
    expect_set_error("overlap", "parallel", "overlap: must be skip or queue, not 'parallel'");
    expect_set_error("where", "anywhere", "where: must be leader or every, not 'anywhere'");
    expect_set_error(
        "lease", "a b",
        "lease: 'a b' is not a lease name (letters, digits, '_', '-', '.'; 1-64 bytes)");
}

static void test_set_errors_change_nothing(void **state)
{
    jobspec_t j;
    char err[256];
    assert_int_equal(jobspec_init(&j, "t", err, sizeof(err)), 0);
    assert_int_equal(jobspec_set(&j, "timeout", "25h", err, sizeof(err)), -1);
    assert_true(j.timeout_ms == 10 * MINUTE);
    assert_int_equal(jobspec_set(&j, "catchup", "some", err, sizeof(err)), -1);
    assert_int_equal(jobspec_set(&j, "lease", "a b", err, sizeof(err)), -1);
    assert_string_equal(j.lease, "canonical");
    assert_int_equal(jobspec_set(&j, "cron", "61 * * * *", err, sizeof(err)), -1);
    assert_null(j.cron_text);
    assert_int_equal(j.catchup, JOBSPEC_CATCHUP_LATEST);
    assert_int_equal(j.seen, 0);
    /* a refused key may still be given once, correctly */
    assert_int_equal(jobspec_set(&j, "timeout", "2h", err, sizeof(err)), 0);
    assert_true(j.timeout_ms == 2 * HOUR);
    /* but a good one only once */
    assert_int_equal(jobspec_set(&j, "timeout", "3h", err, sizeof(err)), -1);
    assert_string_equal(err, "timeout: given twice");
    assert_true(j.timeout_ms == 2 * HOUR);
    jobspec_free(&j);
}

static void test_names(void **state)
{
    jobspec_t j;
    char err[256] = "";
    assert_int_equal(jobspec_init(&j, "mail-sweep_2.daily", err, sizeof(err)), 0);
    jobspec_free(&j);
    assert_int_equal(jobspec_init(&j, "two words", err, sizeof(err)), -1);
    assert_string_equal(err,
                        "job two words: the name must be 1-64 letters, digits, '_', '-' or '.'");
    jobspec_free(&j);
    assert_int_equal(jobspec_init(&j, "", err, sizeof(err)), -1);
    jobspec_free(&j);
}

static void test_check(void **state)
{
    expect_check_error((const char *const[]){"run", "http://a/", NULL},
                       "every: a job needs every or cron");
    expect_check_error(
        (const char *const[]){"every", "1m", "cron", "* * * * *", "run", "http://a/", NULL},
        "every: give either every or cron, not both");
    expect_check_error((const char *const[]){"every", "1m", NULL},
                       "run: a job needs run (a URL) or command");
    expect_check_error(
        (const char *const[]){"every", "1m", "run", "http://a/", "command", "true", NULL},
        "run: give either run or command, not both");
    expect_check_error(
        (const char *const[]){"every", "1m", "command", "true", "method", "POST", NULL},
        "method: only for run = URL");
    expect_check_error((const char *const[]){"every", "1m", "command", "true", "where", "every",
                                             "lease", "other", NULL},
                       "lease: only for where = leader");
}

/* ---- slots -------------------------------------------------------------------- */

static void test_slots_aligned(void **state)
{
    jobspec_t j;
    make(&j, (const char *const[]){"every", "5m", "command", "true", NULL});
    /* whatever 'after' is, slots are multiples of 5 minutes since the epoch */
    assert_true(jobspec_next_slot(&j, T0) == T0 + 5 * MINUTE);
    assert_true(jobspec_next_slot(&j, T0 - 1) == T0);
    assert_true(jobspec_next_slot(&j, T0 + 123456) == T0 + 5 * MINUTE);
    for (int64_t t = T0 - 7 * HOUR; t < T0 + 7 * HOUR; t += 7919) {
        int64_t s = jobspec_next_slot(&j, t);
        assert_true(s > t && s - t <= 5 * MINUTE && s % (5 * MINUTE) == 0);
    }
    jobspec_free(&j);
    make(&j, (const char *const[]){"every", "1500ms", "command", "true", NULL});
    assert_true(jobspec_next_slot(&j, 0) == 1500);
    assert_true(jobspec_next_slot(&j, 2999) == 3000);
    assert_true(jobspec_next_slot(&j, 3000) == 4500);
    assert_true(jobspec_next_slot(&j, -1) == 0);
    jobspec_free(&j);
    set_tz_utc();
    make(&j, (const char *const[]){"cron", "30 4 * * *", "command", "true", NULL});
    assert_true(jobspec_next_slot(&j, T0) == T0 + 4 * HOUR + 30 * MINUTE);
    jobspec_free(&j);
}

/* Runs jobspec_due and compares with the expected slots. */
static void expect_due(const jobspec_t *j, int64_t last, int64_t now, size_t cap,
                       const int64_t *want, size_t nwant, int want_trunc)
{
    int64_t got[2048];
    int trunc = -1;
    assert_true(cap <= 2048);
    size_t n = jobspec_due(j, last, now, got, cap, &trunc);
    if (n != nwant)
        fail_msg("due(last=%lld, now=%lld): %zu slots, want %zu", (long long)(last - T0),
                 (long long)(now - T0), n, nwant);
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("slot %zu: got T0%+lld, want T0%+lld", i, (long long)(got[i] - T0),
                     (long long)(want[i] - T0));
    assert_int_equal(trunc, want_trunc);
}

static void test_due_policies(void **state)
{
    jobspec_t all, latest, none;
    make(&all, (const char *const[]){"every", "1m", "command", "true", "catchup", "all", NULL});
    make(&latest,
         (const char *const[]){"every", "1m", "command", "true", "catchup", "latest", NULL});
    make(&none, (const char *const[]){"every", "1m", "command", "true", "catchup", "none", NULL});

    /* on time: the slot just reached, under every policy */
    int64_t on_time[] = {T0 + MINUTE};
    expect_due(&all, T0, T0 + MINUTE + 5, 10, on_time, 1, 0);
    expect_due(&latest, T0, T0 + MINUTE + 5, 10, on_time, 1, 0);
    expect_due(&none, T0, T0 + MINUTE + 5, 10, on_time, 1, 0);
    /* nothing new yet */
    expect_due(&all, T0, T0 + MINUTE - 1, 10, NULL, 0, 0);
    expect_due(&all, T0, T0, 10, NULL, 0, 0);

    /* five slots missed, now 10 s after the fifth */
    int64_t five[] = {T0 + MINUTE, T0 + 2 * MINUTE, T0 + 3 * MINUTE, T0 + 4 * MINUTE,
                      T0 + 5 * MINUTE};
    expect_due(&all, T0, T0 + 5 * MINUTE + 10 * SEC, 10, five, 5, 0);
    expect_due(&latest, T0, T0 + 5 * MINUTE + 10 * SEC, 10, five + 4, 1, 0);
    expect_due(&none, T0, T0 + 5 * MINUTE + 10 * SEC, 10, five + 4, 1, 0); /* the last is on time */
    /* a cap smaller than the backlog keeps the latest */
    expect_due(&all, T0, T0 + 5 * MINUTE + 10 * SEC, 3, five + 2, 3, 1);
    expect_due(&all, T0, T0 + 5 * MINUTE + 10 * SEC, 5, five, 5, 0);

    /* missed by more than JOBSPEC_ON_TIME_MS: none fires nothing, latest one */
    int64_t late_now = T0 + 5 * MINUTE + JOBSPEC_ON_TIME_MS + 1;
    int64_t late_latest[] = {T0 + 6 * MINUTE};
    expect_due(&latest, T0, late_now, 10, late_latest, 1, 0);
    expect_due(&none, T0, T0 + 5 * MINUTE + 59 * SEC, 10, five + 4, 1, 0);
    jobspec_t none2;
    make(&none2, (const char *const[]){"every", "1h", "command", "true", "catchup", "none", NULL});
    expect_due(&none2, T0, T0 + HOUR + JOBSPEC_ON_TIME_MS + 1, 10, NULL, 0, 0);
    int64_t hour[] = {T0 + HOUR};
    expect_due(&none2, T0, T0 + HOUR + JOBSPEC_ON_TIME_MS, 10, hour, 1, 0);

    /* never fired: only an on-time slot, whatever the policy */
    expect_due(&all, JOBSPEC_NO_SLOT, T0 + 30 * SEC, 10, (int64_t[]){T0}, 1, 0);
    expect_due(&latest, JOBSPEC_NO_SLOT, T0 + 30 * SEC, 10, (int64_t[]){T0}, 1, 0);
    expect_due(&none2, JOBSPEC_NO_SLOT, T0 + 30 * MINUTE, 10, NULL, 0, 0);
    expect_due(&all, JOBSPEC_NO_SLOT, T0 - 1, 10, (int64_t[]){T0 - MINUTE}, 1, 0);

    jobspec_free(&all);
    jobspec_free(&latest);
    jobspec_free(&none);
    jobspec_free(&none2);
}

static void test_due_cron(void **state)
{
    set_tz_utc();
    jobspec_t all;
    make(&all,
         (const char *const[]){"cron", "0 * * * *", "command", "true", "catchup", "all", NULL});
    /* a day missed: 24 hourly slots, oldest first */
    int64_t want[24];
    for (int i = 0; i < 24; i++)
        want[i] = T0 + (i + 1) * HOUR;
    expect_due(&all, T0, T0 + 24 * HOUR + 30 * SEC, 100, want, 24, 0);
    expect_due(&all, T0, T0 + 24 * HOUR + 30 * SEC, 5, want + 19, 5, 1);
    expect_due(&all, T0, T0 + 24 * HOUR + 30 * SEC, 24, want, 24, 0);
    expect_due(&all, T0, T0 + 24 * HOUR + 30 * SEC, 23, want + 1, 23, 1);
    /* ten years missed with a cap: the work follows the cap, the answer is
     * the latest slots */
    int64_t now = T0 + 3653LL * 24 * HOUR + 30 * SEC;
    int64_t got[JOBSPEC_DEFAULT_CAP];
    int trunc = 0;
    size_t n = jobspec_due(&all, T0, now, got, JOBSPEC_DEFAULT_CAP, &trunc);
    assert_int_equal(n, JOBSPEC_DEFAULT_CAP);
    assert_int_equal(trunc, 1);
    assert_true(got[n - 1] == now - 30 * SEC);
    for (size_t i = 1; i < n; i++)
        assert_true(got[i] - got[i - 1] == HOUR);
    jobspec_free(&all);

    /* a sparse expression: the window grows until it finds the slot */
    jobspec_t yearly;
    make(&yearly,
         (const char *const[]){"cron", "@yearly", "command", "true", "catchup", "latest", NULL});
    int64_t y2030 = 1893456000000LL; /* 2030-01-01 00:00Z */
    expect_due(&yearly, T0, y2030 + 5 * HOUR, 10, (int64_t[]){y2030}, 1, 0);
    jobspec_free(&yearly);
}

/* A fake clock drives a per-second job with catchup = all: slots fired must
 * strictly increase (so none fires twice), and none may be skipped unless
 * the cap dropped it. */
static void test_due_clock_steps(void **state)
{
    jobspec_t j;
    make(&j, (const char *const[]){"every", "1s", "command", "true", "catchup", "all", NULL});
    int64_t last = JOBSPEC_NO_SLOT, now = T0 + 400, fired = 0;
    int64_t got[JOBSPEC_DEFAULT_CAP];
    int trunc;
    /* the steps the clock takes: forwards, a step back of an hour, forwards
     * again, a jump of two hours, a step back of one second */
    static const int64_t steps[] = {1000,     1000,  250,  3000, -HOUR, 1000, 1000,
                                    2 * HOUR, -1000, 1000, 500,  500,   999,  1};
    size_t n = jobspec_due(&j, last, now, got, JOBSPEC_DEFAULT_CAP, &trunc);
    assert_int_equal(n, 1);
    assert_true(got[0] == T0);
    last = got[0];
    fired = 1;
    int64_t high = now; /* the latest time the clock showed */
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        now += steps[i];
        n = jobspec_due(&j, last, now, got, JOBSPEC_DEFAULT_CAP, &trunc);
        for (size_t k = 0; k < n; k++) {
            assert_true(got[k] > last); /* never twice, never out of order */
            assert_true(got[k] <= now);
            assert_true(got[k] % SEC == 0);
            if (!trunc && k == 0)
                assert_true(got[k] == last + SEC); /* nothing skipped */
            last = got[k];
            fired++;
        }
        if (now <= high)
            assert_int_equal(n, 0); /* the past, seen again, fires nothing */
        if (now > high)
            high = now;
        if (steps[i] == 2 * HOUR) {
            assert_int_equal(n, JOBSPEC_DEFAULT_CAP);
            assert_int_equal(trunc, 1);
        }
    }
    assert_true(last == (high / SEC) * SEC);
    assert_true(fired > JOBSPEC_DEFAULT_CAP);
    jobspec_free(&j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_keys),
        cmocka_unit_test(test_every_values),
        cmocka_unit_test(test_set_errors),
        cmocka_unit_test(test_set_errors_change_nothing),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_slots_aligned),
        cmocka_unit_test(test_due_policies),
        cmocka_unit_test(test_due_cron),
        cmocka_unit_test(test_due_clock_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
