/* jobrun: runs one job action (a shell command or an HTTP request) on the
 * loop and reports its outcome on the loop, exactly once.
 *
 * Owns: the child process and its process group, the output pipe, the HTTP
 * connection, the timeout, and the bounded output tail.
 * Never: blocks the loop (the process is started with uv_spawn, the name is
 * resolved with uv_getaddrinfo on libuv's thread pool), keeps more than
 * JOBRUN_TAIL bytes of output whatever the job prints, leaves a process of
 * the job's process group behind, or calls back twice.
 *
 * command: run as /bin/sh -c COMMAND in a new session and process group
 * (uv_spawn with UV_PROCESS_DETACHED, i.e. setsid), stdin /dev/null, stdout
 * and stderr into one pipe. The environment is cohortd's plus COHORT_JOB,
 * COHORT_SLOT (the slot's epoch ms), COHORT_EPOCH (the lease epoch, a
 * fencing token) and COHORT_NODE. When the shell exits, the whole process
 * group gets SIGKILL, so children it left behind die with it (a child that
 * starts its own session escapes; nothing in POSIX can find it). At the
 * timeout the group gets SIGTERM and, kill_grace_ms later, SIGKILL.
 * Outcome: "ok" (exit 0), "failed" (other exit status, or killed by a signal
 * the job did not get from us), "timeout", "error" (could not start, or
 * cancelled). A command that does not exist is "failed" with exit 127 and
 * the shell's message in the output.
 *
 * url: http://HOST[:PORT][/PATH[?QUERY]] only (no https, no user info; this is
 * for the local application). HOST is a name or an IPv4/IPv6 literal
 * (resolved with uv_getaddrinfo; the first IPv4 address is used if there is
 * one, else the first address). One HTTP/1.1 request with the headers
 * Cohort-Job, Cohort-Slot, Cohort-Epoch, Cohort-Node and Connection: close
 * (POST sends an empty body); the response is parsed with http-parser. The
 * timeout covers resolving, connecting and the whole response.
 * Outcome: "ok" (2xx), "failed" (any other status), "timeout", "error"
 * (resolving or connecting failed, the connection broke, the response was
 * malformed, or cancelled). The output is the last JOBRUN_TAIL bytes of the
 * response body.
 *
 * The process must ignore SIGPIPE (cohortd does): a server may close the
 * connection while the request is being written.
 */
#ifndef COHORT_JOBRUN_H
#define COHORT_JOBRUN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define JOBRUN_TAIL          4096 /* bytes of output kept */
#define JOBRUN_KILL_GRACE_MS 2000 /* default SIGTERM -> SIGKILL delay */

enum jobrun_status { JOBRUN_OK = 0, JOBRUN_FAILED, JOBRUN_TIMEOUT, JOBRUN_ERROR };
enum jobrun_method { JOBRUN_GET = 0, JOBRUN_POST };

typedef struct jobrun_spec {
    const char *command;   /* shell command, or NULL */
    const char *url;       /* http:// URL, or NULL; exactly one of the two */
    int method;            /* JOBRUN_GET or JOBRUN_POST (url only) */
    int64_t timeout_ms;    /* > 0 */
    int64_t kill_grace_ms; /* SIGTERM -> SIGKILL at the timeout; 0: the default */
    const char *job;       /* job name (no control characters) */
    int64_t slot_ms;       /* the slot's scheduled time, epoch ms */
    uint64_t epoch;        /* lease epoch (fencing token) */
    const char *node;      /* this node's name (no control characters) */
} jobrun_spec_t;

typedef struct jobrun_result {
    int status;            /* enum jobrun_status */
    int exit_code;         /* command: exit status; -1 if it ended by a signal or never ran */
    int term_signal;       /* command: the signal that ended it, else 0 */
    int http_status;       /* url: the response status, else 0 */
    int64_t duration_ms;   /* from start to outcome */
    const char *output;    /* last output bytes, NUL-terminated; valid during the callback */
    size_t output_len;     /* <= JOBRUN_TAIL */
    uint64_t output_total; /* bytes of output seen in all */
    char message[256];     /* one line: "" when ok, else what happened */
} jobrun_result_t;

typedef struct jobrun jobrun_t;

/* Called once per run, on the loop, after every handle of the run is closed
 * and every process of its group was sent SIGKILL or was reaped. res and the
 * run are freed when it returns. */
typedef void (*jobrun_cb)(const jobrun_result_t *res, void *arg);

/* Starts spec on loop. Returns 0 and the run in *out (may be NULL), which
 * stays valid until the callback returns; or -1 with a message in err when
 * the spec itself is wrong (then the callback is never called). Failures
 * after that (cannot spawn, cannot resolve) arrive through the callback as
 * status "error". The strings in spec are copied. */
int jobrun_start(uv_loop_t *loop, const jobrun_spec_t *spec, jobrun_cb cb, void *arg,
                 jobrun_t **out, char *err, size_t errlen);

/* Stops a run (node shutting down): SIGKILL to the process group, or the
 * connection closed. The callback still comes, once, later on the loop, with
 * status "error" and message "cancelled" unless the run had already ended.
 * Must not be called once the callback has run. */
void jobrun_cancel(jobrun_t *run);

/* Returns "ok", "failed", "timeout" or "error". */
const char *jobrun_status_name(int status);

/* Checks that url is one jobrun can request. Returns 0, or -1 with the reason
 * in err ("only http:// URLs are supported"). */
int jobrun_check_url(const char *url, char *err, size_t errlen);

#endif
