/* mode: the node's mode, one state machine that the commands, /health,
 * INFO and the status renderers all consult.
 *
 * Owns: deciding the mode from the facts (shutting down; the cluster's view:
 * cut off from the majority, or out of contact with a member for longer than
 * the coherence lease), what each mode means (may cached values be served,
 * the HTTP status a load balancer sees), and logging each change.
 * Never: changes the facts it reads; renders anything.
 *
 *   mode            cache served   /health   means
 *   serving         yes            200       normal
 *   bypassing       no (reads miss) 200      out of contact with a member
 *                                            beyond the lease; the app still
 *                                            answers, from its database
 *   cut_off         no             503       reaches only a strict minority
 *   shutting_down   no             503       stopping
 *
 * Later modes (draining, maintenance, read-only) are added here. */
#ifndef COHORT_MODE_H
#define COHORT_MODE_H

typedef enum node_mode {
    NODE_SERVING = 0,
    NODE_BYPASSING,
    NODE_CUT_OFF,
    NODE_SHUTTING_DOWN
} node_mode_t;

/* The last cache-serving state seen, to log changes (node_mode_watch). */
typedef struct node_mode_watch {
    int serving_cache;
} node_mode_watch_t;

struct node;

/* The node's mode now. */
node_mode_t node_mode(struct node *n);
/* "serving", "bypassing", "cut_off", "shutting_down". */
const char *node_mode_name(node_mode_t m);
/* The /health status code of a mode: 200 or 503. */
int node_mode_http_status(node_mode_t m);
/* 1 while cached values may be served: the coherence lease holds for every
 * live member. Judged now (not cached), so a read after a long batch is not
 * judged by the time the batch started. */
int node_serves_cache(struct node *n);
/* One line saying why cached values are not served, or NULL. */
const char *node_why_not_serving(struct node *n);
/* Logs a change of the cache-serving state since the last call (call
 * periodically). */
void node_mode_watch(struct node *n);

#endif
