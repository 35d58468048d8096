/* storeid: the store identity, exchanged with every member right after the
 * handshake, so that nodes learn whether they share one arbiter.
 *
 * Owns: this node's store identity ("backend:id", set by the node once the
 * store answered store_identity), each member's as it said it (a STOREID
 * frame on every new link, and again on every ready link when ours becomes
 * known), and the verdict: a member on another store means membership has
 * no arbiter.
 * Never: reaches the store; turns the arbiter back on (a mismatch lasts
 * until this process restarts: it is a configuration error).
 *
 * Rules and the tests that check them:
 *   S1 a member whose identity differs from ours (both known) turns the
 *      arbiter off (membership decides alone: a member unreachable for
 *      dead_after is declared dead on a guess) and the log lease off (this
 *      node no longer serves on following the log: flushlog.c L5), logged
 *      once with both identities, and cluster_no_arbiter says why (INFO
 *      cohort:membership_arbiter, /v1/status arbiter). The writer's half of
 *      the log stays on: a member on our store that has not met the other
 *      store still follows our log and serves on it, so our replies keep
 *      waiting for the log as L2 says (a member on the other store has no
 *      row of ours there, so it never holds a log lease on us: L5)
 *      (test_flushlog.py: test_separate_sqlite_files_mean_no_arbiter). The
 *      reader's half stays on too: the node keeps following its store's log
 *      and recording its position (node_flushlog.c N1), without which that
 *      store's log was pruned no further until the node restarted
 *      (test_flushlog.py: test_mismatch_keeps_pruning_the_log);
 *   S2 a member that never says (an older cohortd, or no [store] url) is
 *      not a mismatch. */
#include <stdio.h>
#include <string.h>

#include "cluster_int.h"
#include "log.h"

static void send_id(member_t *m)
{
    cluster_t *cl = m->cl;
    if (!m->link || !cl->store_id[0])
        return;
    link_t *l = m->link;
    size_t s = peer_frame_begin(l, FRAME_STOREID);
    frame_put_bytes(&l->out, cl->store_id, strlen(cl->store_id));
    peer_frame_end(l, s);
}

/* S1: compares m's identity with ours. */
static void judge(member_t *m)
{
    cluster_t *cl = m->cl;
    if (cl->no_arbiter[0] || !cl->store_id[0] || !m->store_id[0] ||
        strcmp(cl->store_id, m->store_id) == 0)
        return;
    snprintf(cl->no_arbiter, sizeof(cl->no_arbiter), "%s uses another store (%s; this node: %s)",
             m->name[0] ? m->name : m->addr, m->store_id, cl->store_id);
    log_warn("member", "membership has no arbiter: %s. A member unreachable for dead_after is "
             "declared dead on a guess, and this node serves on no log lease (see README, "
             "The flush log)", cl->no_arbiter);
    cl->arbiter = 0; /* the writer's half of the log stays: members on our store follow it */
    serving_lowered(cl); /* no log lease from now on */
}

void storeid_on_link_ready(member_t *m)
{
    send_id(m);
}

void storeid_on_frame(member_t *m, const frame_hdr_t *h)
{
    frame_reader_t r;
    frame_bytes_t id;
    frame_reader_init(&r, h);
    frame_get_bytes(&r, &id, sizeof(m->store_id) - 1);
    if (frame_reader_done(&r) != 0 || id.len == 0) {
        peer_refuse(m->link, "malformed STOREID");
        return;
    }
    memcpy(m->store_id, id.p, id.len);
    m->store_id[id.len] = '\0';
    judge(m);
}

void cluster_set_store_identity(cluster_t *cl, const char *backend, const char *id)
{
    if (!cl || !backend || !id || !*id)
        return;
    char v[sizeof(cl->store_id)];
    snprintf(v, sizeof(v), "%s:%s", backend, id);
    if (strcmp(v, cl->store_id) == 0)
        return;
    memcpy(cl->store_id, v, sizeof(v));
    for (size_t i = 0; i < cl->nmembers; i++) {
        send_id(&cl->members[i]);
        judge(&cl->members[i]);
    }
}

const char *cluster_no_arbiter(const cluster_t *cl)
{
    return cl && cl->no_arbiter[0] ? cl->no_arbiter : NULL;
}
