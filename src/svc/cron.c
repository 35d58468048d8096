/* cron: five-field cron expressions, the scheduler's time zone, next fire time.
 *
 * Owns: the field table (name, bounds, names), the parser and the search.
 * Never: reads the clock or blocks (the zone file is opened only by
 * cron_set_timezone, at start).
 *
 * Invariants (and the tests in tests/unit/test_cron.c that check them):
 * 1. cron_next(e, t) > t, and it is the smallest matching instant: no matching
 *    local minute lies between (test_next_basic, test_next_strictly_after).
 * 2. Local wall time -> instant is non-decreasing in wall time (a skipped
 *    time maps to the end of the gap, a repeated one to its first
 *    occurrence), so the search can walk wall times in order and stop at the
 *    first one past 'after' (test_dst_new_york, test_dst_berlin).
 * 3. Every parse error is one line naming the field (test_parse_errors).
 */
#include "cron.h"

#include "errmsg.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define DAY_S         86400
#define HORIZON_DAYS  (366 * 30) /* how far cron_next looks */
#define MAX_FIELD_LEN 256

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

typedef struct field {
    const char *name;
    int min, max;             /* accepted values */
    int star_max;             /* what '*' covers (day-of-week: 0-6) */
    const char *const *names; /* names[i] means min + i (day names: i) */
    int nnames;
} field_t;

static const field_t fields[5] = {
    {"minute", 0, 59, 59, NULL, 0},         {"hour", 0, 23, 23, NULL, 0},
    {"day-of-month", 1, 31, 31, NULL, 0},   {"month", 1, 12, 12, month_names, 12},
    {"day-of-week", 0, 7, 6, day_names, 7},
};

static const struct shortcut {
    const char *name;
    const char *expr;
} shortcuts[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};


/* ---- parsing ---------------------------------------------------------------- */

/* Reads a number or a name at *p into *v. Returns 0 and advances *p, or -1
 * with the message in err. */
static int parse_value(const field_t *f, int idx, const char **p, int *v, char *err, size_t errlen)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        long n = 0;
        while (isdigit((unsigned char)*s)) {
            if (n < 1000000)
                n = n * 10 + (*s - '0');
            s++;
        }
        if (n < f->min || n > f->max) {
            errmsg(err, errlen, "cron: field %d (%s): %.*s is out of range %d-%d", idx + 1, f->name,
                (int)(s - *p), *p, f->min, f->max);
            return -1;
        }
        *v = (int)n;
        *p = s;
        return 0;
    }
    while (isalpha((unsigned char)*s))
        s++;
    for (int i = 0; f->names && s - *p == 3 && i < f->nnames; i++)
        if (strncasecmp(*p, f->names[i], 3) == 0) {
            *v = f->names == day_names ? i : f->min + i;
            *p = s;
            return 0;
        }
    if (s == *p)
        s++;
    errmsg(err, errlen, "cron: field %d (%s): '%.*s' is not a number%s", idx + 1, f->name,
        (int)(s - *p), *p,
        f->names == month_names ? " or month name" : (f->names == day_names ? " or day name" : ""));
    return -1;
}

/* Parses one list item ('*', 'a', 'a-b', with an optional '/n') at *p into
 * *bits. Returns 0 and advances *p past the item, or -1 with err. */
static int parse_item(const field_t *f, int idx, const char **p, uint64_t *bits, char *err,
                      size_t errlen)
{
    const char *s = *p;
    int lo, hi, step = 1, single = 0;
    if (*s == '*') {
        lo = f->min;
        hi = f->star_max;
        s++;
    } else {
        if (parse_value(f, idx, &s, &lo, err, errlen) < 0)
            return -1;
        hi = lo;
        single = *s != '-';
        if (*s == '-') {
            s++;
            if (parse_value(f, idx, &s, &hi, err, errlen) < 0)
                return -1;
            if (hi < lo) {
                errmsg(err, errlen, "cron: field %d (%s): range %.*s runs backwards", idx + 1, f->name,
                    (int)(s - *p), *p);
                return -1;
            }
        }
    }
    if (*s == '/') {
        const char *n0 = ++s;
        long n = 0;
        while (isdigit((unsigned char)*s)) {
            if (n < 1000000)
                n = n * 10 + (*s - '0');
            s++;
        }
        if (s == n0) {
            errmsg(err, errlen, "cron: field %d (%s): '/' must be followed by a step", idx + 1,
                f->name);
            return -1;
        }
        if (n < 1 || n > f->max) {
            errmsg(err, errlen, "cron: field %d (%s): step %.*s is out of range 1-%d", idx + 1,
                f->name, (int)(s - n0), n0, f->max);
            return -1;
        }
        step = (int)n;
        if (single)
            hi = f->star_max > lo ? f->star_max : f->max; /* 'a/n': a to the maximum */
    }
    if (*s != ',' && *s != '\0') {
        errmsg(err, errlen, "cron: field %d (%s): unexpected '%c' in '%.*s'", idx + 1, f->name, *s,
            (int)(s - *p + 1), *p);
        return -1;
    }
    for (int v = lo; v <= hi; v += step)
        *bits |= 1ull << v;
    *p = s;
    return 0;
}

/* Parses one field's text into *bits. Returns 0 or -1 with err. */
static int parse_field(int idx, const char *text, uint64_t *bits, char *err, size_t errlen)
{
    const field_t *f = &fields[idx];
    const char *p = text;
    *bits = 0;
    for (;;) {
        if (*p == ',' || *p == '\0') {
            errmsg(err, errlen, "cron: field %d (%s): empty list item in '%s'", idx + 1, f->name,
                text);
            return -1;
        }
        if (parse_item(f, idx, &p, bits, err, errlen) < 0)
            return -1;
        if (*p == '\0')
            return 0;
        p++; /* ',' */
    }
}

static int is_leap(long long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(long long y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : d[m - 1];
}

/* Returns 0 if some month of e has some day of e (29 February counts), else
 * -1 with err. Only meaningful when day-of-week does not widen the match. */
static int check_days_possible(const cron_expr_t *e, char *err, size_t errlen)
{
    if ((e->flags & CRON_MDAY_STAR) || !(e->flags & CRON_WDAY_STAR))
        return 0; /* '*' day-of-month, or the OR rule: every month has matching days */
    for (int m = 1; m <= 12; m++) {
        if (!(e->months & (1u << m)))
            continue;
        int last = m == 2 ? 29 : days_in_month(2001, m);
        for (int d = 1; d <= last; d++)
            if (e->mdays & (1u << d))
                return 0;
    }
    errmsg(err, errlen, "cron: field 3 (day-of-month): no such day in the months of field 4");
    return -1;
}

/* Splits text into exactly five whitespace-separated fields. Returns 0, or
 * -1 with err. */
static int split_fields(const char *text, char out[5][MAX_FIELD_LEN], char *err, size_t errlen)
{
    int n = 0;
    const char *p = text;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        const char *q = p;
        while (*q && *q != ' ' && *q != '\t')
            q++;
        if (n < 5) {
            if (q - p >= MAX_FIELD_LEN) {
                errmsg(err, errlen, "cron: field %d (%s) is too long", n + 1, fields[n].name);
                return -1;
            }
            memcpy(out[n], p, (size_t)(q - p));
            out[n][q - p] = '\0';
        }
        n++;
        p = q;
    }
    if (n != 5) {
        if (n == 0)
            errmsg(err, errlen, "cron: empty expression");
        else
            errmsg(err, errlen,
                "cron: expected 5 fields (minute hour day-of-month month day-of-week), got %d", n);
        return -1;
    }
    return 0;
}

int cron_parse(cron_expr_t *out, const char *text, char *err, size_t errlen)
{
    char f[5][MAX_FIELD_LEN];
    uint64_t bits[5];
    while (text && (*text == ' ' || *text == '\t'))
        text++;
    if (!text || !*text) {
        errmsg(err, errlen, "cron: empty expression");
        return -1;
    }
    for (const char *c = text; *c; c++)
        if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f) {
            errmsg(err, errlen, "cron: control character in the expression");
            return -1;
        }
    if (*text == '@') {
        size_t len = strcspn(text, " \t");
        if (text[len + strspn(text + len, " \t")] != '\0') {
            errmsg(err, errlen, "cron: nothing may follow %.*s", (int)len, text);
            return -1;
        }
        for (size_t i = 0; i < sizeof(shortcuts) / sizeof(shortcuts[0]); i++)
            if (strlen(shortcuts[i].name) == len && strncasecmp(text, shortcuts[i].name, len) == 0)
                return cron_parse(out, shortcuts[i].expr, err, errlen);
        errmsg(err, errlen,
            "cron: unknown shortcut '%.*s' (known: @yearly @annually @monthly @weekly @daily "
            "@midnight @hourly)",
            (int)(len > 32 ? 32 : len), text);
        return -1;
    }
    if (split_fields(text, f, err, errlen) < 0)
        return -1;
    for (int i = 0; i < 5; i++)
        if (parse_field(i, f[i], &bits[i], err, errlen) < 0)
            return -1;
    memset(out, 0, sizeof(*out));
    out->minutes = bits[0];
    out->hours = (uint32_t)bits[1];
    out->mdays = (uint32_t)bits[2];
    out->months = (uint16_t)bits[3];
    out->wdays = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f); /* 7 is Sunday */
    out->flags =
        (uint8_t)((f[2][0] == '*' ? CRON_MDAY_STAR : 0) | (f[4][0] == '*' ? CRON_WDAY_STAR : 0));
    return check_days_possible(out, err, errlen);
}

/* ---- calendar arithmetic (proleptic Gregorian, days since 1970-01-01) ------- */

static long long floor_div(long long a, long long b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Howard Hinnant's days_from_civil / civil_from_days. */
static long long days_from_civil(long long y, int m, int d)
{
    y -= m <= 2;
    long long era = floor_div(y, 400);
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(long long z, long long *y, int *m, int *d)
{
    z += 719468;
    long long era = floor_div(z, 146097);
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* ---- local time ----------------------------------------------------------------- */

/* Returns the zone's UTC offset in seconds at instant t. */
static long long offset_at(long long t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm))
        return 0;
    return tm.tm_gmtoff;
}

/* Returns the earliest instant whose local wall time is w (seconds, read as
 * if UTC); for a w inside a spring-forward gap, the first instant after the
 * gap. Assumes at most one offset change within a day of w. */
static long long wall_to_instant(long long w)
{
    long long before = offset_at(w - DAY_S), after = offset_at(w + DAY_S);
    long long c1 = w - before, c2 = w - after;
    int ok1 = c1 + offset_at(c1) == w, ok2 = c2 + offset_at(c2) == w;
    if (ok1 && ok2)
        return c1 < c2 ? c1 : c2; /* repeated: the first occurrence */
    if (ok1 || ok2)
        return ok1 ? c1 : c2;
    if (after <= before)
        return c1; /* not a gap this function understands; stay monotonic */
    /* A gap: c2 < transition <= c1. Find the first instant with the new offset. */
    long long lo = c2, hi = c1;
    while (hi - lo > 1) {
        long long mid = lo + (hi - lo) / 2;
        if (offset_at(mid) == after)
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

static int day_matches(const cron_expr_t *e, int mday, int wday)
{
    int dom = (e->mdays >> mday) & 1, dow = (e->wdays >> wday) & 1;
    if (e->flags & (CRON_MDAY_STAR | CRON_WDAY_STAR))
        return dom && dow;
    return dom || dow;
}

/* Searches one local day (days since the epoch) for the first matching wall
 * time at or after min_wall whose instant is after after_s. Returns the
 * instant, or -1. */
static long long search_day(const cron_expr_t *e, long long day, long long min_wall,
                            long long after_s)
{
    for (int h = 0; h < 24; h++) {
        if (!((e->hours >> h) & 1) || day * DAY_S + h * 3600 + 3599 < min_wall)
            continue;
        for (int mi = 0; mi < 60; mi++) {
            long long w = day * DAY_S + h * 3600 + mi * 60;
            if (!((e->minutes >> mi) & 1) || w < min_wall)
                continue;
            long long t = wall_to_instant(w);
            if (t > after_s)
                return t;
        }
    }
    return -1;
}

int64_t cron_next(const cron_expr_t *e, int64_t after_ms)
{
    long long after_s = floor_div(after_ms, 1000);
    /* Wall times before the wall time of 'after' map to instants <= after
     * (invariant 2), so the search starts at that wall time's minute. */
    long long wall0 = after_s + offset_at(after_s);
    long long day0 = floor_div(wall0, DAY_S);
    long long min_wall = wall0 - (wall0 - day0 * DAY_S) % 60;
    for (long long day = day0; day < day0 + HORIZON_DAYS; day++) {
        long long y;
        int m, d;
        civil_from_days(day, &y, &m, &d);
        if (!((e->months >> m) & 1)) {
            day = days_from_civil(y, m, days_in_month(y, m)); /* to the month's last day */
            continue;
        }
        int wday = (int)(((day % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
        if (!day_matches(e, d, wday))
            continue;
        long long t = search_day(e, day, min_wall, after_s);
        if (t >= 0)
            return (int64_t)t * 1000;
    }
    return -1;
}

/* ---- time zone ------------------------------------------------------------------ */

/* Returns 0 if name is a zone file (it starts with "TZif"), else -1. */
static int zone_exists(const char *name)
{
    const char *dir = getenv("TZDIR");
    char path[512];
    char magic[4];
    for (const char *c = name; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("/_+-", *c))
            return -1;
    if (name[0] == '/' || strstr(name, "..") || strlen(name) > 200)
        return -1;
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, magic, sizeof(magic));
    close(fd);
    return n == 4 && memcmp(magic, "TZif", 4) == 0 ? 0 : -1;
}

int cron_set_timezone(const char *tz, char *err, size_t errlen)
{
    if (!tz || !*tz || strcmp(tz, "UTC") == 0)
        tz = "UTC";
    else if (zone_exists(tz) < 0) {
        errmsg(err, errlen, "unknown time zone '%.64s' (expected a name like Europe/Berlin)", tz);
        return -1;
    }
    if (setenv("TZ", tz, 1) < 0) {
        errmsg(err, errlen, "setenv TZ: %s", strerror(errno));
        return -1;
    }
    tzset();
    return 0;
}
