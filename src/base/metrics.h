/* metrics: one registry of every figure a node reports about itself.
 *
 * Owns: the list of registered metrics (a copy of each row), and reading
 * their values. INFO, /metrics, /v1/status and COHORT.STATUS are all rendered
 * from this one list, each showing the rows that name a place in it (an INFO
 * field, a Prometheus name, a JSON path, a COHORT.STATUS key).
 * Never: owns the values (a row points at a counter or names a function that
 * computes it), or renders a format itself: each renderer lives with its
 * protocol (cmd/info.c, cmd/cmd_cohort.c, admin/status.c).
 *
 * Figures with labels (one series per command or per member) are not rows
 * here; their renderers write them from their own tables. */
#ifndef COHORT_METRICS_H
#define COHORT_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum metric_type {
    METRIC_COUNTER = 1, /* only grows */
    METRIC_GAUGE,       /* goes up and down */
    METRIC_BOOL,        /* 0 or 1; JSON true/false */
    METRIC_TEXT         /* a string; never in /metrics */
};

enum metric_flags {
    METRIC_JSON_HEX = 1 << 0 /* /v1/status shows it as a 16-digit hex string */
};

typedef uint64_t (*metric_get_fn)(void *ud);
/* Returns the text (or NULL: leave the field out), possibly written into buf. */
typedef const char *(*metric_text_fn)(void *ud, char *buf, size_t len);

typedef struct metric {
    int type;            /* enum metric_type */
    const char *prom;    /* Prometheus name, or NULL */
    const char *help;    /* Prometheus help text */
    unsigned prom_div;   /* /metrics shows value / prom_div with 3 decimals (0, 1: as is) */
    const char *info;    /* INFO "section:field", or NULL */
    const char *json;    /* /v1/status path, "cache.keys", or NULL */
    const char *status;  /* COHORT.STATUS key, or NULL */
    int flags;           /* enum metric_flags */
    const uint64_t *u64; /* the value is this counter, or */
    metric_get_fn get;   /* computed by get(ud), or (METRIC_TEXT) */
    metric_text_fn text; /* text(ud, ...) */
    void *ud;
} metric_t;

typedef struct metrics metrics_t;

metrics_t *metrics_new(void);
/* Frees the registry (not the values it points at). NULL is fine. */
void metrics_free(metrics_t *r);
/* Appends a copy of *m. The strings must outlive the registry (literals). */
void metrics_add(metrics_t *r, const metric_t *m);
size_t metrics_count(const metrics_t *r);
const metric_t *metrics_at(const metrics_t *r, size_t i);

/* The row's current value (0 for METRIC_TEXT). */
uint64_t metric_value(const metric_t *m);
/* The row's text: for METRIC_TEXT its text (NULL: none), otherwise the
 * value in decimal, written into buf. */
const char *metric_text(const metric_t *m, char *buf, size_t len);

#endif
