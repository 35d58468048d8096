/* status: what a node reports about itself, for people and monitors.
 *
 * Owns: the HTTP routes of cohortd (/health, /metrics in Prometheus text
 * format, /v1/status as JSON) and their rendering from node_t.
 * Never: changes node state. */
#ifndef COHORT_STATUS_H
#define COHORT_STATUS_H

#include "buf.h"
#include "http.h"
#include "node.h"

/* The route table to pass to http_start with the node as ud. */
const http_route_t *status_routes(size_t *n);

void status_render_metrics(node_t *n, buf_t *out);
void status_render_json(node_t *n, buf_t *out);

#endif
