/* mode: the node's mode; see mode.h. */
#include "mode.h"

#include "log.h"
#include "node.h"

static const char *const names[] = {"serving", "bypassing", "cut_off", "shutting_down"};

int node_serves_cache(node_t *n)
{
    return cluster_serving(n->cluster);
}

const char *node_why_not_serving(node_t *n)
{
    return cluster_why_not_serving(n->cluster);
}

node_mode_t node_mode(node_t *n)
{
    if (n->shutting_down)
        return NODE_SHUTTING_DOWN;
    if (cluster_cut_off(n->cluster))
        return NODE_CUT_OFF;
    return node_serves_cache(n) ? NODE_SERVING : NODE_BYPASSING;
}

const char *node_mode_name(node_mode_t m)
{
    return (unsigned)m < sizeof(names) / sizeof(names[0]) ? names[m] : "?";
}

int node_mode_http_status(node_mode_t m)
{
    return m == NODE_CUT_OFF || m == NODE_SHUTTING_DOWN ? 503 : 200;
}

void node_mode_watch(node_t *n)
{
    int serving = node_serves_cache(n);
    if (serving == n->mode.serving_cache)
        return;
    if (serving)
        log_info("coherence", "serving cached values again");
    else
        log_warn("coherence", "not serving cached values: %s", node_why_not_serving(n));
    n->mode.serving_cache = serving;
}
