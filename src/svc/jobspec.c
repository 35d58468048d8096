/* jobspec: [job NAME] settings (a table of keys) and slot arithmetic.
 *
 * Owns: the key table, the defaults, and the due-slot computation.
 * Never: reads the clock, allocates in the slot functions, or keeps a
 * half-applied value (a key's parser works on locals and assigns last).
 *
 * Invariants (and the tests in tests/unit/test_jobspec.c that check them):
 * 1. jobspec_due never returns a slot <= last or > now, returns slots in
 *    increasing order, and at most cap of them (test_due_*, test_due_clock_*).
 * 2. Interval slots are multiples of the interval since the epoch
 *    (test_slots_aligned).
 * 3. A key's error leaves the job unchanged (test_set_errors_change_nothing).
 */
#include "jobspec.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "errmsg.h"
#include "jobrun.h"
#include "mem.h"

#define MIN_EVERY_MS   100LL
#define MAX_EVERY_MS   (8784LL * 3600 * 1000) /* 366 days */
#define MIN_TIMEOUT_MS 100LL
#define MAX_TIMEOUT_MS (24LL * 3600 * 1000)
#define DEF_TIMEOUT_MS (10LL * 60 * 1000)
#define MAX_SPAN_MS    (1000LL * 366 * 24 * 3600 * 1000) /* how far back 'last' is looked at */
#define FIRST_WINDOW   (3600LL * 1000)                   /* cron look-back, grown x4 */


static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Returns 1 if s is a usable job or lease name. */
static int good_name(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!isalnum((unsigned char)s[n]) && !strchr("_-.", s[n]))
            return 0;
    return n > 0 && n <= JOBSPEC_MAX_NAME;
}

/* ---- the keys ----------------------------------------------------------------------- */

/* Each parser sets its field of j from value, or returns -1 with "what is
 * wrong" (without the key) in err, leaving j unchanged. */
typedef int (*key_parser_fn)(jobspec_t *j, const char *value, char *err, size_t errlen);

int jobspec_parse_every(const char *s, int64_t *out_ms, char *err, size_t errlen)
{
    long long ms;
    size_t digits = strspn(s, "0123456789");
    if (digits > 0 && s[digits] == '\0') {
        errmsg(err, errlen, "needs a unit (ms, s, m, h): '%s'", s);
        return -1;
    }
    if (config_parse_duration_ms(s, 1000, &ms) < 0) {
        errmsg(err, errlen, "not a duration: '%.64s'", s);
        return -1;
    }
    if (ms < MIN_EVERY_MS || ms > MAX_EVERY_MS) {
        errmsg(err, errlen, "must be between 100ms and 8784h, not '%.64s'", s);
        return -1;
    }
    *out_ms = ms;
    return 0;
}

static int set_every(jobspec_t *j, const char *v, char *err, size_t errlen)
{
    return jobspec_parse_every(v, &j->every_ms, err, errlen);
}

static int set_cron(jobspec_t *j, const char *v, char *err, size_t errlen)
{
    cron_expr_t e;
    char why[256];
    if (cron_parse(&e, v, why, sizeof(why)) < 0) {
        /* cron's messages begin with "cron: "; the caller adds the key */
        errmsg(err, errlen, "%s", strncmp(why, "cron: ", 6) == 0 ? why + 6 : why);
        return -1;
    }
    j->cron = e;
    j->cron_text = xstrdup(v);
    return 0;
}

static int set_run(jobspec_t *j, const char *v, char *err, size_t errlen)
{
    if (jobrun_check_url(v, err, errlen) < 0)
        return -1;
    j->url = xstrdup(v);
    return 0;
}

static int set_command(jobspec_t *j, const char *v, char *err, size_t errlen)
{
    const char *p = v;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p) {
        errmsg(err, errlen, "empty command");
        return -1;
    }
    j->command = xstrdup(v);
    return 0;
}

/* Looks v up in names (case-insensitive). Returns its index, or -1 with the
 * choices in err. */
static int pick(const char *v, const char *const *names, int n, char *err, size_t errlen)
{
    for (int i = 0; i < n; i++)
        if (strcasecmp(v, names[i]) == 0)
            return i;
    if (n == 2)
        errmsg(err, errlen, "must be %s or %s, not '%.32s'", names[0], names[1], v);
    else
        errmsg(err, errlen, "must be %s, %s or %s, not '%.32s'", names[0], names[1], names[2], v);
    return -1;
}

static const char *const method_names[] = {"GET", "POST"};
static const char *const catchup_names[] = {"none", "latest", "all"};
static const char *const overlap_names[] = {"skip", "queue"};
static const char *const where_names[] = {"leader", "every"};

static int set_method(jobspec_t *j, const char *v, char *err, size_t errlen)
{
    int i = pick(v, method_names, 2, err, errlen);
    return i < 0 ? -1 : (j->method = i == 1 ? JOBRUN_POST : JOBRUN_GET, 0);
}

static int set_catchup(jobspec_t *j, const char *v, char *err, size_t errlen)
{
    int i = pick(v, catchup_names, 3, err, errlen);
    return i < 0 ? -1 : (j->catchup = i, 0);
}

static int set_overlap(jobspec_t *j, const char *v, char *err, size_t errlen)
{
    int i = pick(v, overlap_names, 2, err, errlen);
    return i < 0 ? -1 : (j->overlap = i, 0);
}

static int set_where(jobspec_t *j, const char *v, char *err, size_t errlen)
{
    int i = pick(v, where_names, 2, err, errlen);
    return i < 0 ? -1 : (j->where = i, 0);
}

static int set_timeout(jobspec_t *j, const char *v, char *err, size_t errlen)
{
    long long ms;
    if (config_parse_duration_ms(v, 1000, &ms) < 0) {
        errmsg(err, errlen, "not a duration: '%.64s'", v);
        return -1;
    }
    if (ms < MIN_TIMEOUT_MS || ms > MAX_TIMEOUT_MS) {
        errmsg(err, errlen, "must be between 100ms and 24h, not '%.64s'", v);
        return -1;
    }
    j->timeout_ms = ms;
    return 0;
}

static int set_lease(jobspec_t *j, const char *v, char *err, size_t errlen)
{
    if (!good_name(v)) {
        errmsg(err, errlen, "'%.64s' is not a lease name (letters, digits, '_', '-', '.'; 1-%d bytes)",
            v, JOBSPEC_MAX_NAME);
        return -1;
    }
    free(j->lease);
    j->lease = xstrdup(v);
    return 0;
}

enum {
    K_EVERY,
    K_CRON,
    K_RUN,
    K_COMMAND,
    K_METHOD,
    K_TIMEOUT,
    K_CATCHUP,
    K_OVERLAP,
    K_WHERE,
    K_LEASE,
    K_COUNT
};

static const struct job_key {
    const char *name;
    key_parser_fn parse;
} keys[K_COUNT] = {
    [K_EVERY] = {"every", set_every},
    [K_CRON] = {"cron", set_cron},
    [K_RUN] = {"run", set_run},
    [K_COMMAND] = {"command", set_command},
    [K_METHOD] = {"method", set_method},
    [K_TIMEOUT] = {"timeout", set_timeout},
    [K_CATCHUP] = {"catchup", set_catchup},
    [K_OVERLAP] = {"overlap", set_overlap},
    [K_WHERE] = {"where", set_where},
    [K_LEASE] = {"lease", set_lease},
};

int jobspec_init(jobspec_t *j, const char *name, char *err, size_t errlen)
{
    memset(j, 0, sizeof(*j));
    j->name = xstrdup(name ? name : "");
    j->method = JOBRUN_GET;
    j->timeout_ms = DEF_TIMEOUT_MS;
    j->catchup = JOBSPEC_CATCHUP_LATEST;
    j->overlap = JOBSPEC_OVERLAP_SKIP;
    j->where = JOBSPEC_WHERE_LEADER;
    j->lease = xstrdup("canonical");
    if (!good_name(j->name)) {
        errmsg(err, errlen, "job %.64s: the name must be 1-%d letters, digits, '_', '-' or '.'",
            j->name, JOBSPEC_MAX_NAME);
        return -1;
    }
    return 0;
}

/* Returns 1 if s holds a control character other than tab. */
static int has_control(const char *s)
{
    for (; *s; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
            return 1;
    return 0;
}

int jobspec_set(jobspec_t *j, const char *key, const char *value, char *err, size_t errlen)
{
    char why[256] = "";
    if (has_control(key)) {
        errmsg(err, errlen, "(a key with control characters): unknown key");
        return -1;
    }
    for (int k = 0; k < K_COUNT; k++) {
        if (strcmp(key, keys[k].name) != 0)
            continue;
        if (j->seen & (1u << k)) {
            errmsg(err, errlen, "%s: given twice", key);
            return -1;
        }
        if (value && has_control(value)) {
            errmsg(err, errlen, "%s: control character in the value", key);
            return -1;
        }
        if (keys[k].parse(j, value ? value : "", why, sizeof(why)) < 0) {
            errmsg(err, errlen, "%s: %s", key, why);
            return -1;
        }
        j->seen |= 1u << k;
        return 0;
    }
    errmsg(err, errlen,
        "%.64s: unknown key (known: every cron run command method timeout catchup overlap where "
        "lease)",
        key);
    return -1;
}

int jobspec_check(const jobspec_t *j, char *err, size_t errlen)
{
    int every = !!(j->seen & (1u << K_EVERY)), cron = !!(j->seen & (1u << K_CRON));
    int run = !!(j->seen & (1u << K_RUN)), command = !!(j->seen & (1u << K_COMMAND));
    if (every == cron) {
        errmsg(err, errlen,
            every ? "every: give either every or cron, not both"
                  : "every: a job needs every or cron");
        return -1;
    }
    if (run == command) {
        errmsg(err, errlen,
            run ? "run: give either run or command, not both"
                : "run: a job needs run (a URL) or command");
        return -1;
    }
    if ((j->seen & (1u << K_METHOD)) && !run) {
        errmsg(err, errlen, "method: only for run = URL");
        return -1;
    }
    if ((j->seen & (1u << K_LEASE)) && j->where != JOBSPEC_WHERE_LEADER) {
        errmsg(err, errlen, "lease: only for where = leader");
        return -1;
    }
    return 0;
}

void jobspec_free(jobspec_t *j)
{
    free(j->name);
    free(j->cron_text);
    free(j->url);
    free(j->command);
    free(j->lease);
    memset(j, 0, sizeof(*j));
}

const char *jobspec_catchup_name(int catchup)
{
    return catchup >= 0 && catchup <= JOBSPEC_CATCHUP_ALL ? catchup_names[catchup] : "?";
}

/* ---- slots ------------------------------------------------------------------------- */

int64_t jobspec_next_slot(const jobspec_t *j, int64_t after_ms)
{
    if (j->every_ms > 0)
        return (floor_div(after_ms, j->every_ms) + 1) * j->every_ms;
    return cron_next(&j->cron, after_ms);
}

static void reverse(int64_t *a, size_t n)
{
    for (size_t i = 0; i < n / 2; i++) {
        int64_t t = a[i];
        a[i] = a[n - 1 - i];
        a[n - 1 - i] = t;
    }
}

/* Interval jobs: writes the latest min(cap, count) slots of (lo, hi] to out,
 * oldest first; *more says whether older ones were left out. */
static size_t interval_slots(int64_t every, int64_t lo, int64_t hi, int64_t *out, size_t cap,
                             int *more)
{
    int64_t latest = floor_div(hi, every) * every;
    int64_t first = (floor_div(lo, every) + 1) * every;
    *more = 0;
    if (latest < first)
        return 0;
    uint64_t count = (uint64_t)((latest - first) / every) + 1;
    size_t n = count > cap ? cap : (size_t)count;
    *more = count > cap;
    for (size_t i = 0; i < n; i++)
        out[i] = latest - (int64_t)(n - 1 - i) * every;
    return n;
}

/* Cron jobs: the same as interval_slots. Looks back from hi through windows
 * growing fourfold until one holds cap slots or reaches lo, so the work
 * follows the answer's size, not hi - lo. */
static size_t cron_slots(const cron_expr_t *e, int64_t lo, int64_t hi, int64_t *out, size_t cap,
                         int *more)
{
    int64_t window = FIRST_WINDOW;
    for (;;) {
        int64_t start = hi - lo > window ? hi - window : lo;
        size_t n = 0; /* slots seen in (start, hi]; out is a ring of the last cap */
        for (int64_t t = cron_next(e, start); t >= 0 && t <= hi; t = cron_next(e, t))
            out[n++ % cap] = t;
        if (n < cap && start > lo) {
            window = window > INT64_MAX / 4 ? INT64_MAX : window * 4;
            continue;
        }
        size_t kept = n < cap ? n : cap;
        if (n > cap) { /* rotate the ring so the oldest comes first */
            size_t head = n % cap;
            reverse(out, head);
            reverse(out + head, cap - head);
            reverse(out, cap);
        }
        if (n > cap)
            *more = 1;
        else if (start > lo) {
            int64_t older = cron_next(e, lo);
            *more = older >= 0 && older <= start;
        } else
            *more = 0;
        return kept;
    }
}

/* The latest up to cap slots in (lo, hi], oldest first. */
static size_t slots_between(const jobspec_t *j, int64_t lo, int64_t hi, int64_t *out, size_t cap,
                            int *more)
{
    *more = 0;
    if (hi <= lo || cap == 0)
        return 0;
    if (hi - MAX_SPAN_MS > lo)
        lo = hi - MAX_SPAN_MS;
    if (j->every_ms > 0)
        return interval_slots(j->every_ms, lo, hi, out, cap, more);
    return cron_slots(&j->cron, lo, hi, out, cap, more);
}

size_t jobspec_due(const jobspec_t *j, int64_t last_ms, int64_t now_ms, int64_t *out, size_t cap,
                   int *truncated)
{
    int more = 0;
    size_t n;
    int64_t on_time_lo = now_ms - JOBSPEC_ON_TIME_MS - 1; /* slots > this are on time */
    if (truncated)
        *truncated = 0;
    if (cap == 0)
        return 0;
    if (last_ms == JOBSPEC_NO_SLOT || j->catchup == JOBSPEC_CATCHUP_NONE) {
        int64_t lo = last_ms == JOBSPEC_NO_SLOT || last_ms < on_time_lo ? on_time_lo : last_ms;
        return slots_between(j, lo, now_ms, out, 1, &more);
    }
    if (j->catchup == JOBSPEC_CATCHUP_LATEST)
        return slots_between(j, last_ms, now_ms, out, 1, &more);
    n = slots_between(j, last_ms, now_ms, out, cap, &more);
    if (truncated)
        *truncated = more;
    return n;
}
