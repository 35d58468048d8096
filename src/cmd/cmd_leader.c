/* cmd_leader: the commands of leader leases and jobs.
 *
 *   LEADER name                  [holder, epoch, ms-left, is-me]; holder nil if none
 *   LEADER.ACQUIRE name [ttl_ms] this node tries to hold name and keeps renewing it;
 *                                replies like LEADER (the attempt is asynchronous:
 *                                is-me turns 1 once the store granted it)
 *   LEADER.RELEASE name          stops renewing name and releases it; +OK
 *   JOBS                         per job: [name, schedule, where, last status,
 *                                last slot ms, next slot ms]
 *   JOB.RUN name                 fires the job once now (slot = now, claimed
 *                                once cluster-wide, run on this node); +OK; a
 *                                leader job only on its lease's holder
 *   JOB.HISTORY name [count]     newest first, per slot: [slot ms, node, epoch,
 *                                status, code, started ms, ended ms, output];
 *                                status is the outcome (ok, failed, timeout,
 *                                error, abandoned), or "running" (started, no
 *                                outcome yet), or "claimed" (claimed, never
 *                                started: the next holder takes it over)
 *
 * Owns: argument checks and the replies.
 * Never: waits for the store: replies come from the lease manager's and the
 * scheduler's views, which the store refreshes (see lease.h, scheduler.h). */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

#define NAME_BUF 80

/* Copies argument i into buf as a C string. Returns 0, or -1 (and an error
 * reply) when it is too long or holds a NUL. */
static int arg_name(client_t *c, const char *arg, size_t len, char *buf)
{
    if (len == 0 || len >= NAME_BUF || memchr(arg, '\0', len)) {
        resp_add_error(&c->out, "ERR invalid name");
        return -1;
    }
    memcpy(buf, arg, len);
    buf[len] = '\0';
    return 0;
}

/* -1 (and an error reply) when the node has no store, so no leases. */
static int need_services(client_t *c)
{
    node_t *n = cmd_node(c);
    if (n->leases && n->scheduler)
        return 0;
    resp_add_error(&c->out, "ERR leases and jobs are not running on this node");
    return -1;
}

static void reply_lease(client_t *c, const char *name)
{
    lease_view_t v;
    if (lease_view(cmd_node(c)->leases, name, &v) < 0) {
        resp_add_error(&c->out, "ERR invalid lease name or too many leases tracked");
        return;
    }
    resp_add_array(&c->out, 4);
    if (v.holder[0])
        resp_add_bulk_str(&c->out, v.holder);
    else
        resp_add_null(&c->out, c->proto);
    resp_add_int(&c->out, v.epoch);
    resp_add_int(&c->out, v.ms_left);
    resp_add_int(&c->out, v.is_me);
}

CMD_HANDLER(cmd_leader)
{
    char name[NAME_BUF];
    if (need_services(c) < 0 || arg_name(c, argv[1], argl[1], name) < 0)
        return;
    reply_lease(c, name);
}

CMD_HANDLER(cmd_leader_acquire)
{
    char name[NAME_BUF], err[160];
    long long ttl = 0;
    if (need_services(c) < 0 || arg_name(c, argv[1], argl[1], name) < 0)
        return;
    if (argc > 3) {
        resp_add_error(&c->out, ERR_SYNTAX);
        return;
    }
    if (argc == 3) {
        if (cmd_ll_or_reply(c, argv[2], argl[2], &ttl) < 0)
            return;
        if (ttl < 300 || ttl > 600000) {
            resp_add_error(&c->out, "ERR ttl must be between 300 and 600000 ms");
            return;
        }
    }
    if (lease_acquire(cmd_node(c)->leases, name, ttl, err, sizeof(err)) < 0) {
        resp_add_errorf(&c->out, "ERR %s", err);
        return;
    }
    reply_lease(c, name);
}

CMD_HANDLER(cmd_leader_release)
{
    char name[NAME_BUF], err[160];
    if (need_services(c) < 0 || arg_name(c, argv[1], argl[1], name) < 0)
        return;
    if (lease_release(cmd_node(c)->leases, name, err, sizeof(err)) < 0) {
        resp_add_errorf(&c->out, "ERR %s", err);
        return;
    }
    resp_add_ok(&c->out);
}

static void add_ms_or_nil(client_t *c, int64_t ms)
{
    if (ms > 0)
        resp_add_int(&c->out, ms);
    else
        resp_add_null(&c->out, c->proto);
}

CMD_HANDLER(cmd_jobs)
{
    if (need_services(c) < 0)
        return;
    scheduler_t *s = cmd_node(c)->scheduler;
    size_t n = scheduler_count(s);
    resp_add_array(&c->out, n);
    for (size_t i = 0; i < n; i++) {
        const jobspec_t *j = scheduler_spec(s, i);
        scheduler_job_info_t info;
        char sched[128];
        scheduler_job_info(s, i, &info);
        if (j->cron_text)
            snprintf(sched, sizeof(sched), "cron %s", j->cron_text);
        else
            snprintf(sched, sizeof(sched), "every %lldms", (long long)j->every_ms);
        resp_add_array(&c->out, 6);
        resp_add_bulk_str(&c->out, j->name);
        resp_add_bulk_str(&c->out, sched);
        resp_add_bulk_str(&c->out, j->where == JOBSPEC_WHERE_EVERY ? "every" : "leader");
        if (info.last_status[0])
            resp_add_bulk_str(&c->out, info.last_status);
        else
            resp_add_null(&c->out, c->proto);
        add_ms_or_nil(c, info.last_slot_ms);
        add_ms_or_nil(c, info.next_slot_ms);
    }
}

CMD_HANDLER(cmd_job_run)
{
    char name[NAME_BUF], err[160];
    if (need_services(c) < 0 || arg_name(c, argv[1], argl[1], name) < 0)
        return;
    if (scheduler_run_now(cmd_node(c)->scheduler, name, err, sizeof(err)) < 0) {
        resp_add_errorf(&c->out, "ERR %s", err);
        return;
    }
    resp_add_ok(&c->out);
}

CMD_HANDLER(cmd_job_history)
{
    char name[NAME_BUF];
    long long count = 10;
    if (need_services(c) < 0 || arg_name(c, argv[1], argl[1], name) < 0)
        return;
    if (argc > 3) {
        resp_add_error(&c->out, ERR_SYNTAX);
        return;
    }
    if (argc == 3 && cmd_ll_or_reply(c, argv[2], argl[2], &count) < 0)
        return;
    if (count < 1 || count > SCHEDULER_HISTORY) {
        resp_add_errorf(&c->out, "ERR count must be between 1 and %d", SCHEDULER_HISTORY);
        return;
    }
    const store_run_t *runs;
    long n = scheduler_history(cmd_node(c)->scheduler, name, &runs);
    if (n < 0) {
        resp_add_errorf(&c->out, "ERR no such job '%s'", name);
        return;
    }
    if (n > count)
        n = (long)count;
    resp_add_array(&c->out, (size_t)n);
    for (long i = 0; i < n; i++) {
        const store_run_t *r = &runs[i];
        resp_add_array(&c->out, 8);
        resp_add_int(&c->out, r->slot_ms);
        resp_add_bulk_str(&c->out, r->node);
        resp_add_int(&c->out, r->epoch);
        resp_add_bulk_str(&c->out, r->status[0] ? r->status : r->started ? "running" : "claimed");
        resp_add_int(&c->out, r->code);
        resp_add_int(&c->out, r->started_ms);
        resp_add_int(&c->out, r->ended_ms);
        resp_add_bulk(&c->out, r->output, r->output_len);
    }
}
