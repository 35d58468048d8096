/* cron: five-field cron expressions and their next fire time in one time zone.
 *
 * Owns: parsing "minute hour day-of-month month day-of-week" (Vixie cron
 * syntax) into bit sets, the scheduler's time zone, and the search for the
 * next fire time with the daylight-saving rules below.
 * Never: reads the clock (every function takes the time it works from), keeps
 * state between calls other than the process-wide time zone, or blocks on
 * anything but reading the zone file once in cron_set_timezone().
 *
 * Syntax, per field: '*', a number, a range 'a-b', a step '*' '/n' or 'a-b/n'
 * (also 'a/n', meaning a up to the field's maximum, every n), and lists of
 * these separated by ','. Months accept jan..dec and days sun..sat, in any
 * case, also inside ranges ('mon-fri'). Day-of-week 7 is Sunday, like 0.
 * Ranges must not run backwards ('5-3' is an error). Shortcuts: @yearly
 * (@annually), @monthly, @weekly, @daily (@midnight), @hourly.
 * Field ranges: minute 0-59, hour 0-23, day-of-month 1-31, month 1-12,
 * day-of-week 0-7.
 *
 * Day rule (Vixie/cronie): when day-of-month and day-of-week are both
 * restricted, a day matches if EITHER matches ('0 0 13 * 5': the 13th and
 * every Friday). A field counts as unrestricted when its text begins with
 * '*', so '*' '/2' in day-of-month with 'mon' in day-of-week means odd days
 * that are Mondays (both must match), exactly as cron does.
 * A day-of-month that can never occur in the given months ('30 2', '31 4,6')
 * is rejected at parse time rather than never firing.
 *
 * Time zone: ONE zone for the whole process. cron_set_timezone() sets TZ in
 * the environment and calls tzset(); cron_next() then evaluates local times
 * with localtime_r(). That changes local time for every module of the process
 * (cohortd logs in UTC, so nothing else depends on it). Call it once at
 * start, before any other thread exists (setenv is not thread-safe). Without
 * a call the process's inherited TZ applies.
 *
 * Daylight saving (tested in tests/unit/test_cron.c for America/New_York and
 * Europe/Berlin):
 * - a local time skipped by a spring-forward gap fires once, at the first
 *   instant after the gap (02:30 on the night clocks go 02:00 -> 03:00 fires
 *   at 03:00 new time); several skipped times collapse into that one firing,
 *   which is also the firing of 03:00 itself if the expression has it;
 * - a local time repeated by a fall-back fires once, at its first occurrence
 *   (01:30 on the night clocks go 02:00 -> 01:00 fires at 01:30 summer time
 *   only), so '*' '/30 * * * *' does not fire during the repeated hour.
 * Fire times are whole minutes of local time; a zone whose offset is not a
 * whole number of minutes still works (its gap ends are to the second).
 */
#ifndef COHORT_CRON_H
#define COHORT_CRON_H

#include <stddef.h>
#include <stdint.h>

#define CRON_MDAY_STAR 0x1 /* day-of-month began with '*' */
#define CRON_WDAY_STAR 0x2 /* day-of-week began with '*' */

typedef struct cron_expr {
    uint64_t minutes; /* bit m: minute m, 0-59 */
    uint32_t hours;   /* bit h: hour h, 0-23 */
    uint32_t mdays;   /* bit d: day d of the month, 1-31 */
    uint16_t months;  /* bit m: month m, 1-12 */
    uint8_t wdays;    /* bit w: weekday w, 0 = Sunday .. 6 = Saturday */
    uint8_t flags;    /* CRON_MDAY_STAR | CRON_WDAY_STAR */
} cron_expr_t;

/* Parses text into *out. Returns 0, or -1 with a one-line message in err such
 * as "cron: field 2 (hour): 25 is out of range 0-23" (*out is then
 * unspecified). */
int cron_parse(cron_expr_t *out, const char *text, char *err, size_t errlen);

/* Returns the first fire time strictly after after_ms (UTC epoch
 * milliseconds), in UTC epoch milliseconds (always a whole second), or -1 if
 * the expression matches nothing in the 30 years that follow. */
int64_t cron_next(const cron_expr_t *e, int64_t after_ms);

/* Sets the process-wide time zone cron_next() uses: an IANA zone name such
 * as "Europe/Berlin" (looked up in $TZDIR or /usr/share/zoneinfo), or "UTC".
 * NULL or "" means UTC. Returns 0, or -1 with a message in err when the zone
 * is unknown (the time zone is then unchanged). See the header comment. */
int cron_set_timezone(const char *tz, char *err, size_t errlen);

#endif
