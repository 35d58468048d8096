/* metrics: the registry of figures; see metrics.h. */
#include "metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "mem.h"

struct metrics {
    metric_t *rows;
    size_t n, cap;
};

metrics_t *metrics_new(void)
{
    return xcalloc(1, sizeof(metrics_t));
}

void metrics_free(metrics_t *r)
{
    if (!r)
        return;
    free(r->rows);
    free(r);
}

void metrics_add(metrics_t *r, const metric_t *m)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->rows = xrealloc(r->rows, r->cap * sizeof(metric_t));
    }
    r->rows[r->n++] = *m;
}

size_t metrics_count(const metrics_t *r)
{
    return r ? r->n : 0;
}

const metric_t *metrics_at(const metrics_t *r, size_t i)
{
    return i < r->n ? &r->rows[i] : NULL;
}

uint64_t metric_value(const metric_t *m)
{
    if (m->u64)
        return *m->u64;
    if (m->get)
        return m->get(m->ud);
    return 0;
}

const char *metric_text(const metric_t *m, char *buf, size_t len)
{
    if (m->type == METRIC_TEXT)
        return m->text ? m->text(m->ud, buf, len) : NULL;
    snprintf(buf, len, "%" PRIu64, metric_value(m));
    return buf;
}
