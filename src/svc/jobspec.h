/* jobspec: one [job NAME] section's settings, and the arithmetic of its slots.
 *
 * Owns: the table of job keys (name, parser), their validation and defaults,
 * the final consistency check, and the pure functions that say when a job's
 * slots fall and which of them are due.
 * Never: reads the clock, touches the store, or runs anything: every function
 * takes the times it works from, so a fake clock drives it in tests.
 *
 * Keys (each at most once; defaults in brackets):
 *   every    = 30s | 5m | 1h | 1500ms  interval, 100ms to 8784h; a unit is required
 *   cron     = five-field expression or @daily etc. (see cron.h)
 *   run      = http://host[:port]/path (see jobrun.h)
 *   command  = shell command, run with /bin/sh -c
 *   method   = GET | POST                          [GET]   (run only)
 *   timeout  = duration, 100ms to 24h, a bare number is seconds      [10m]
 *   catchup  = none | latest | all                 [latest]
 *   overlap  = skip | queue                        [skip]
 *   where    = leader | every                      [leader]
 *   lease    = lease name                          [canonical] (where = leader only)
 * Exactly one of every / cron and exactly one of run / command.
 *
 * Slots. A slot is a scheduled time (UTC epoch ms). Interval slots are the
 * multiples of the interval since the Unix epoch (every = 5m fires at :00,
 * :05, ... UTC), so every node computes the same slots whatever its start
 * time. Cron slots are cron_next()'s answers in the process's time zone.
 *
 * Due slots (jobspec_due), given the last slot fired (or JOBSPEC_NO_SLOT)
 * and now. Candidates are the slots s with last < s <= now; with no last
 * slot, only the latest slot <= now, and only if it is on time (no more than
 * JOBSPEC_ON_TIME_MS old): a new job never catches up on its own past.
 *   none:   the latest candidate if it is on time, else nothing;
 *   latest: the latest candidate, however late (one run for many missed);
 *   all:    every candidate, oldest first; when there are more than cap, only
 *           the latest cap (*truncated is set).
 * A clock stepped backwards (now < last) gives nothing, so no slot fires
 * twice; stepped forwards, the jump is treated as missed slots, per catchup.
 * Work is bounded by the answer's size, not by how far the clock moved.
 */
#ifndef COHORT_JOBSPEC_H
#define COHORT_JOBSPEC_H

#include <stddef.h>
#include <stdint.h>

#include "cron.h"

#define JOBSPEC_NO_SLOT     INT64_MIN /* "never fired" for jobspec_due */
#define JOBSPEC_ON_TIME_MS  60000     /* a slot this late still counts as on time */
#define JOBSPEC_MAX_NAME    64        /* job and lease names */
#define JOBSPEC_DEFAULT_CAP 1000      /* a sensible cap for catchup = all */

enum jobspec_catchup { JOBSPEC_CATCHUP_NONE = 0, JOBSPEC_CATCHUP_LATEST, JOBSPEC_CATCHUP_ALL };
enum jobspec_overlap { JOBSPEC_OVERLAP_SKIP = 0, JOBSPEC_OVERLAP_QUEUE };
enum jobspec_where { JOBSPEC_WHERE_LEADER = 0, JOBSPEC_WHERE_EVERY };

typedef struct jobspec {
    char *name;         /* the section's NAME */
    int64_t every_ms;   /* interval, or 0 for a cron job */
    char *cron_text;    /* as written, or NULL */
    cron_expr_t cron;   /* parsed cron_text */
    char *url;          /* run = URL, or NULL */
    char *command;      /* command = ..., or NULL */
    int method;         /* enum jobrun_method: JOBRUN_GET or JOBRUN_POST */
    int64_t timeout_ms; /* 10 minutes */
    int catchup;        /* enum jobspec_catchup */
    int overlap;        /* enum jobspec_overlap */
    int where;          /* enum jobspec_where */
    char *lease;        /* "canonical" */
    unsigned seen;      /* bit per key given, to refuse repeats */
} jobspec_t;

/* Initialises j with the defaults for job name. Returns 0, or -1 with
 * "job NAME: ..." in err when the name is unusable (letters, digits, '_',
 * '-', '.'; at most JOBSPEC_MAX_NAME bytes); j needs jobspec_free() either way. */
int jobspec_init(jobspec_t *j, const char *name, char *err, size_t errlen);

/* Sets one key from its text. Returns 0, or -1 with "key: what is wrong" in
 * err (unknown key, bad value, key given twice); j is unchanged then. */
int jobspec_set(jobspec_t *j, const char *key, const char *value, char *err, size_t errlen);

/* Checks the keys agree (exactly one of every/cron and of run/command;
 * method only with run; lease only with where = leader). Returns 0, or -1
 * with "key: what is wrong" in err. */
int jobspec_check(const jobspec_t *j, char *err, size_t errlen);

/* Frees what j owns (not j itself). */
void jobspec_free(jobspec_t *j);

/* Returns the first slot strictly after after_ms, or -1 if there is none
 * (a cron expression with no match in 30 years). */
int64_t jobspec_next_slot(const jobspec_t *j, int64_t after_ms);

/* Writes the due slots (see the header comment), oldest first, into out
 * (room for cap >= 1) and returns how many. *truncated (may be NULL) is set
 * to 1 when due slots were left out because of cap, else 0. Slots that were
 * missed and are not returned under none/latest do not count as truncated:
 * the policy drops them. */
size_t jobspec_due(const jobspec_t *j, int64_t last_ms, int64_t now_ms, int64_t *out, size_t cap,
                   int *truncated);

/* Parses an interval ("30s", "5m", "1h", "1500ms"). Returns 0, or -1 with
 * "what is wrong" in err. */
int jobspec_parse_every(const char *s, int64_t *out_ms, char *err, size_t errlen);

const char *jobspec_catchup_name(int catchup);

#endif
