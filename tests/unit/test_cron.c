/* Unit tests for cron.c: parsing (fields, names, steps, errors), the next
 * fire time against fixed instants (no clock is read), the day-of-month /
 * day-of-week OR rule, leap days, month ends, year rollover, and the
 * daylight-saving rules in America/New_York and Europe/Berlin. Expected
 * instants are written in UTC and were worked out from the zones' published
 * 2026 transitions (New York: 8 March 07:00Z, 1 November 06:00Z; Berlin:
 * 29 March 01:00Z, 25 October 01:00Z). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"

/* "YYYY-MM-DD HH:MM[:SS]" in UTC -> epoch ms. */
static int64_t utc(const char *s)
{
    struct tm tm = {0};
    int n = sscanf(s, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                   &tm.tm_min, &tm.tm_sec);
    assert_true(n >= 5);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000;
}

static void fmt(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static void set_tz(const char *tz)
{
    char err[256];
    assert_int_equal(cron_set_timezone(tz, err, sizeof(err)), 0);
}

/* Asserts that expr's next fire time after 'after' (UTC text) is 'want'. */
static void expect_next(const char *expr, const char *after, const char *want)
{
    cron_expr_t e;
    char err[256] = "";
    char got[64] = "none";
    if (cron_parse(&e, expr, err, sizeof(err)) != 0)
        fail_msg("parse '%s': %s", expr, err);
    int64_t t = cron_next(&e, utc(after));
    if (t >= 0)
        fmt(t, got, sizeof(got));
    if (strcmp(got, want) != 0)
        fail_msg("'%s' after %s: got %s, want %s", expr, after, got, want);
}

/* Asserts that expr fires exactly at the listed UTC times, in order, starting
 * after 'after'. */
static void expect_sequence(const char *expr, const char *after, const char *const *want, size_t n)
{
    cron_expr_t e;
    char err[256] = "";
    if (cron_parse(&e, expr, err, sizeof(err)) != 0)
        fail_msg("parse '%s': %s", expr, err);
    int64_t t = utc(after);
    for (size_t i = 0; i < n; i++) {
        char got[64] = "none";
        t = cron_next(&e, t);
        if (t >= 0)
            fmt(t, got, sizeof(got));
        if (strcmp(got, want[i]) != 0)
            fail_msg("'%s' firing %zu: got %s, want %s", expr, i + 1, got, want[i]);
    }
}

static void expect_error(const char *expr, const char *want)
{
    cron_expr_t e;
    char err[256] = "";
    if (cron_parse(&e, expr, err, sizeof(err)) == 0)
        fail_msg("'%s' parsed, want error '%s'", expr, want);
    if (strcmp(err, want) != 0)
        fail_msg("'%s': got '%s', want '%s'", expr, err, want);
}

static cron_expr_t parsed(const char *expr)
{
    cron_expr_t e;
    char err[256] = "";
    if (cron_parse(&e, expr, err, sizeof(err)) != 0)
        fail_msg("parse '%s': %s", expr, err);
    return e;
}

/* ---- parsing ------------------------------------------------------------------ */

static void test_parse_fields(void **state)
{
    cron_expr_t e = parsed("*/15 9-17 1,15 * mon-fri");
    assert_true(e.minutes == ((1ull << 0) | (1ull << 15) | (1ull << 30) | (1ull << 45)));
    assert_int_equal(e.hours, 0x3fe00); /* 9..17 */
    assert_int_equal(e.mdays, (1u << 1) | (1u << 15));
    assert_int_equal(e.months, 0x1ffe);
    assert_int_equal(e.wdays, 0x3e);
    assert_int_equal(e.flags, 0);
}

static void test_parse_names_and_sunday(void **state)
{
    cron_expr_t a = parsed("0 0 * JAN-Mar,dec SUN");
    cron_expr_t b = parsed("0 0 * 1-3,12 7");
    cron_expr_t c = parsed("0 0 * 1-3,12 0");
    assert_int_equal(a.months, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 12));
    assert_int_equal(a.wdays, 1);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_memory_equal(&a, &c, sizeof(a));
    assert_int_equal(parsed("0 0 * * 5-7").wdays, (1u << 5) | (1u << 6) | 1u);
    assert_int_equal(parsed("0 0 * * fri-sat").wdays, (1u << 5) | (1u << 6));
}

static void test_parse_steps(void **state)
{
    assert_true(parsed("10-30/10 * * * *").minutes == ((1ull << 10) | (1ull << 20) | (1ull << 30)));
    assert_true(parsed("50/5 * * * *").minutes == ((1ull << 50) | (1ull << 55)));
    assert_int_equal(parsed("0 */6 * * *").hours, (1u << 0) | (1u << 6) | (1u << 12) | (1u << 18));
    assert_int_equal(parsed("0 0 */10 * *").mdays,
                     (1u << 1) | (1u << 11) | (1u << 21) | (1u << 31));
    assert_int_equal(parsed("0 0 * */5 *").months, (1u << 1) | (1u << 6) | (1u << 11));
    assert_int_equal(parsed("0 0 * * */2").wdays, (1u << 0) | (1u << 2) | (1u << 4) | (1u << 6));
    assert_int_equal(parsed("0 0 * jan-dec/4 *").months, (1u << 1) | (1u << 5) | (1u << 9));
    /* the day-of-month / day-of-week star flags follow the text, as in cron */
    assert_int_equal(parsed("0 0 */2 * 1").flags, CRON_MDAY_STAR);
    assert_int_equal(parsed("0 0 1 * *").flags, CRON_WDAY_STAR);
    assert_int_equal(parsed("0 0 1 * 1").flags, 0);
}

static void test_parse_shortcuts(void **state)
{
    cron_expr_t a = parsed("@daily"), b = parsed("0 0 * * *"), c = parsed("@MIDNIGHT");
    assert_memory_equal(&a, &b, sizeof(a));
    assert_memory_equal(&a, &c, sizeof(a));
    a = parsed("  @hourly  ");
    b = parsed("0 * * * *");
    assert_memory_equal(&a, &b, sizeof(a));
    a = parsed("@weekly");
    b = parsed("0 0 * * 0");
    assert_memory_equal(&a, &b, sizeof(a));
    a = parsed("@yearly");
    b = parsed("@annually");
    assert_memory_equal(&a, &b, sizeof(a));
    a = parsed("@monthly");
    b = parsed("0 0 1 * *");
    assert_memory_equal(&a, &b, sizeof(a));
    a = parsed("\t0\t0  *  * *\t");
    b = parsed("0 0 * * *");
    assert_memory_equal(&a, &b, sizeof(a));
}

static void test_parse_errors(void **state)
{
    expect_error("0 25 * * *", "cron: field 2 (hour): 25 is out of range 0-23");
    expect_error("60 * * * *", "cron: field 1 (minute): 60 is out of range 0-59");
    expect_error("0 0 0 * *", "cron: field 3 (day-of-month): 0 is out of range 1-31");
    expect_error("0 0 * 13 *", "cron: field 4 (month): 13 is out of range 1-12");
    expect_error("0 0 * * 8", "cron: field 5 (day-of-week): 8 is out of range 0-7");
    expect_error("0 0 * * 99999999999999999999",
                 "cron: field 5 (day-of-week): 99999999999999999999 is out of range 0-7");
    expect_error("", "cron: empty expression");
    expect_error("   ", "cron: empty expression");
    expect_error("* * * *",
                 "cron: expected 5 fields (minute hour day-of-month month day-of-week), got 4");
    expect_error("* * * * * *",
                 "cron: expected 5 fields (minute hour day-of-month month day-of-week), got 6");
    expect_error("5-3 * * * *", "cron: field 1 (minute): range 5-3 runs backwards");
    expect_error("*/0 * * * *", "cron: field 1 (minute): step 0 is out of range 1-59");
    expect_error("*/ * * * *", "cron: field 1 (minute): '/' must be followed by a step");
    expect_error("0 0 * foo *", "cron: field 4 (month): 'foo' is not a number or month name");
    expect_error("0 0 * * friday",
                 "cron: field 5 (day-of-week): 'friday' is not a number or day name");
    expect_error("0 mon * * *", "cron: field 2 (hour): 'mon' is not a number");
    expect_error("1,,2 * * * *", "cron: field 1 (minute): empty list item in '1,,2'");
    expect_error("1, * * * *", "cron: field 1 (minute): empty list item in '1,'");
    expect_error("5x * * * *", "cron: field 1 (minute): unexpected 'x' in '5x'");
    expect_error("*5 * * * *", "cron: field 1 (minute): unexpected '5' in '*5'");
    expect_error("-5 * * * *", "cron: field 1 (minute): '-' is not a number");
    expect_error("0 0 30 2 *",
                 "cron: field 3 (day-of-month): no such day in the months of field 4");
    expect_error("0 0 31 4,6,9,11 *",
                 "cron: field 3 (day-of-month): no such day in the months of field 4");
    expect_error("@reboot", "cron: unknown shortcut '@reboot' (known: @yearly @annually @monthly "
                            "@weekly @daily @midnight @hourly)");
    expect_error("@daily 5", "cron: nothing may follow @daily");
    expect_error("0\n0 * * *", "cron: control character in the expression");
    /* a restricted day-of-week widens the match: 30 February or any Monday */
    parsed("0 0 30 2 mon");
    parsed("0 0 29 2 *"); /* leap days exist */
}

/* ---- next fire time, UTC ------------------------------------------------------ */

static void test_next_basic(void **state)
{
    set_tz("UTC");
    expect_next("* * * * *", "2026-05-01 12:00:00", "2026-05-01 12:01:00");
    expect_next("*/15 * * * *", "2026-05-01 12:07:00", "2026-05-01 12:15:00");
    expect_next("0 9-17 * * mon-fri", "2026-05-01 17:00:00", "2026-05-04 09:00:00"); /* Fri->Mon */
    expect_next("30 4 1 * *", "2026-05-01 04:30:00", "2026-06-01 04:30:00");
    expect_next("0 0 * * *", "2026-05-01 23:59:59", "2026-05-02 00:00:00");
}

static void test_next_strictly_after(void **state)
{
    set_tz("UTC");
    cron_expr_t e = parsed("* * * * *");
    int64_t t = utc("2026-05-01 12:00:00");
    assert_true(cron_next(&e, t) == t + 60000);
    assert_true(cron_next(&e, t - 1) == t);
    assert_true(cron_next(&e, t + 500) == t + 60000);
    assert_true(cron_next(&e, t + 59999) == t + 60000);
}

static void test_next_leap_days(void **state)
{
    set_tz("UTC");
    static const char *const want[] = {"2028-02-29 00:00:00", "2032-02-29 00:00:00"};
    expect_sequence("0 0 29 2 *", "2026-01-01 00:00", want, 2);
    expect_next("0 0 29 2 *", "2097-01-01 00:00", "2104-02-29 00:00:00"); /* 2100 is no leap year */
    expect_next("0 0 29 2 *", "2000-01-01 00:00", "2000-02-29 00:00:00"); /* 2000 is */
    expect_next("0 12 28-31 2 *", "2026-02-28 12:00", "2027-02-28 12:00:00");
    expect_next("0 12 28-31 2 *", "2028-02-28 12:00", "2028-02-29 12:00:00");
}

static void test_next_month_ends(void **state)
{
    set_tz("UTC");
    static const char *const m31[] = {"2026-05-31 00:00:00", "2026-07-31 00:00:00",
                                      "2026-08-31 00:00:00", "2026-10-31 00:00:00"};
    expect_sequence("0 0 31 * *", "2026-04-01 00:00", m31, 4);
    expect_next("0 0 30 * *", "2026-02-01 00:00", "2026-03-30 00:00:00");
    expect_next("59 23 30 * *", "2026-04-30 23:59", "2026-05-30 23:59:00");
}

static void test_next_dom_dow_or(void **state)
{
    set_tz("UTC");
    /* the 13th OR any Monday; 2026-02-08 is a Sunday, the 13th a Friday */
    static const char *const either[] = {"2026-02-09 00:00:00", "2026-02-13 00:00:00",
                                         "2026-02-16 00:00:00", "2026-02-23 00:00:00",
                                         "2026-03-02 00:00:00"};
    expect_sequence("0 0 13 * mon", "2026-02-08 00:00", either, 5);
    /* '*' '/2' day-of-month counts as unrestricted: odd days that are Mondays
     * (Mondays of February 2026: 2, 9, 16, 23; with the OR rule the 2nd and
     * the 3rd would fire too). */
    static const char *const both[] = {"2026-02-09 00:00:00", "2026-02-23 00:00:00",
                                       "2026-03-09 00:00:00"};
    expect_sequence("0 0 */2 * 1", "2026-02-01 00:00", both, 3);
    /* day-of-week '*': only the day of month counts */
    expect_next("0 0 13 * *", "2026-02-08 00:00", "2026-02-13 00:00:00");
    /* day-of-month '*': only the weekday counts */
    expect_next("0 0 * * 1", "2026-02-08 00:00", "2026-02-09 00:00:00");
    /* Sunday written as 7 */
    expect_next("0 0 * * 7", "2026-02-09 00:00", "2026-02-15 00:00:00");
}

static void test_next_year_rollover(void **state)
{
    set_tz("UTC");
    expect_next("0 0 1 1 *", "2026-12-31 23:59", "2027-01-01 00:00:00");
    expect_next("59 23 31 12 *", "2026-12-31 23:59", "2027-12-31 23:59:00");
    expect_next("* * * * *", "2026-12-31 23:59", "2027-01-01 00:00:00");
    /* day-of-month '*': Mondays of January; 1 January 2027 is a Friday */
    expect_next("0 0 * jan mon", "2026-12-15 00:00", "2027-01-04 00:00:00");
}

/* ---- daylight saving ---------------------------------------------------------- */

static void test_dst_new_york(void **state)
{
    set_tz("America/New_York");
    /* spring forward, Sunday 8 March 2026: 02:00 EST -> 03:00 EDT (07:00Z).
     * 02:30 does not exist that night: it fires once at 03:00 EDT. */
    static const char *const skipped[] = {"2026-03-07 07:30:00",  /* 02:30 EST */
                                          "2026-03-08 07:00:00",  /* gap end */
                                          "2026-03-09 06:30:00"}; /* 02:30 EDT */
    expect_sequence("30 2 * * *", "2026-03-07 00:00", skipped, 3);
    /* every half hour across the gap: 01:30 EST, then 02:00 and 02:30 collapse
     * into 03:00 EDT, then 03:30 EDT */
    static const char *const halfhours[] = {"2026-03-08 06:30:00", "2026-03-08 07:00:00",
                                            "2026-03-08 07:30:00"};
    expect_sequence("*/30 * * * *", "2026-03-08 06:00", halfhours, 3);
    /* fall back, Sunday 1 November 2026: 02:00 EDT -> 01:00 EST (06:00Z).
     * 01:30 happens twice: it fires at the first (EDT) only. */
    static const char *const repeated[] = {"2026-11-01 05:30:00",  /* 01:30 EDT */
                                           "2026-11-02 06:30:00"}; /* 01:30 EST, next day */
    expect_sequence("30 1 * * *", "2026-10-31 12:00", repeated, 2);
    /* every half hour: nothing during the repeated hour */
    static const char *const fallback[] = {"2026-11-01 05:00:00", "2026-11-01 05:30:00",
                                           "2026-11-01 07:00:00", /* 02:00 EST */
                                           "2026-11-01 07:30:00"};
    expect_sequence("*/30 * * * *", "2026-11-01 04:45", fallback, 4);
    /* 'after' inside the repeated hour's second pass: the next is 02:00 EST */
    expect_next("*/30 * * * *", "2026-11-01 06:10", "2026-11-01 07:00:00");
    /* a daily job at 09:00 local keeps its local time across both changes */
    expect_next("0 9 * * *", "2026-03-07 15:00", "2026-03-08 13:00:00");
    expect_next("0 9 * * *", "2026-10-31 15:00", "2026-11-01 14:00:00");
}

static void test_dst_berlin(void **state)
{
    set_tz("Europe/Berlin");
    /* spring forward, Sunday 29 March 2026: 02:00 CET -> 03:00 CEST (01:00Z).
     * 02:15 and 02:45 are both skipped and fire once, together, at 03:00. */
    static const char *const skipped[] = {"2026-03-28 01:15:00", "2026-03-28 01:45:00",
                                          "2026-03-29 01:00:00", "2026-03-30 00:15:00",
                                          "2026-03-30 00:45:00"};
    expect_sequence("15,45 2 * * *", "2026-03-28 00:00", skipped, 5);
    /* fall back, Sunday 25 October 2026: 03:00 CEST -> 02:00 CET (01:00Z).
     * 02:30 happens twice: the first, summer-time one fires. */
    static const char *const repeated[] = {"2026-10-25 00:30:00", "2026-10-26 01:30:00"};
    expect_sequence("30 2 * * *", "2026-10-24 12:00", repeated, 2);
    /* hourly across the fall-back: 02:00 CEST, (02:00 CET repeated: no), 03:00 CET */
    static const char *const hourly[] = {"2026-10-25 00:00:00", "2026-10-25 02:00:00"};
    expect_sequence("0 * * * *", "2026-10-24 23:30", hourly, 2);
    /* midnight in Berlin is 23:00Z the day before in winter, 22:00Z in summer */
    expect_next("@daily", "2026-03-28 12:00", "2026-03-28 23:00:00");
    expect_next("@daily", "2026-03-29 12:00", "2026-03-29 22:00:00");
}

static void test_timezone_errors(void **state)
{
    char err[256] = "";
    assert_int_equal(cron_set_timezone("Mars/Olympus_Mons", err, sizeof(err)), -1);
    assert_string_equal(
        err, "unknown time zone 'Mars/Olympus_Mons' (expected a name like Europe/Berlin)");
    assert_int_equal(cron_set_timezone("../../etc/passwd", err, sizeof(err)), -1);
    assert_int_equal(cron_set_timezone("Europe", err, sizeof(err)), -1); /* a directory */
    /* a failed call leaves the zone alone */
    set_tz("Europe/Berlin");
    assert_int_equal(cron_set_timezone("Nowhere/At_All", err, sizeof(err)), -1);
    expect_next("@daily", "2026-03-29 12:00", "2026-03-29 22:00:00");
    set_tz(NULL);
    expect_next("@daily", "2026-03-29 12:00", "2026-03-30 00:00:00");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields),        cmocka_unit_test(test_parse_names_and_sunday),
        cmocka_unit_test(test_parse_steps),         cmocka_unit_test(test_parse_shortcuts),
        cmocka_unit_test(test_parse_errors),        cmocka_unit_test(test_next_basic),
        cmocka_unit_test(test_next_strictly_after), cmocka_unit_test(test_next_leap_days),
        cmocka_unit_test(test_next_month_ends),     cmocka_unit_test(test_next_dom_dow_or),
        cmocka_unit_test(test_next_year_rollover),  cmocka_unit_test(test_dst_new_york),
        cmocka_unit_test(test_dst_berlin),          cmocka_unit_test(test_timezone_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
