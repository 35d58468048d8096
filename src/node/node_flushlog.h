/* node_flushlog: moves the cluster's flushes between the cluster and the
 * shared store's flush log (src/cluster/flushlog.c has the rules). */
#ifndef COHORT_NODE_FLUSHLOG_H
#define COHORT_NODE_FLUSHLOG_H

#include <stdint.h>

struct node;

/* Starts following and feeding the log once the cluster is up (with a
 * configured [store] url and a cluster; otherwise does nothing). */
void node_flushlog_start(struct node *n);
/* Stops: no new store operation; the ones in flight are ignored. */
void node_flushlog_stop(struct node *n);
/* The store's on_flushlog_notify (PostgreSQL): someone appended; poll now. */
void node_flushlog_notified(void *ud, int64_t last_id);

#endif
