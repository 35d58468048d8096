/* hooks: the end-of-turn hook registry (as redis-server's beforeSleep calls
 * each subsystem's hook).
 *
 * Owns: an ordered list of (name, function, argument). Subsystems register
 * what they must do once per loop turn (send the frames batched this turn,
 * write the replies); the loop runs them in registration order.
 * Never: knows what a hook does, or runs a hook registered during its run in
 * that same run. */
#ifndef COHORT_HOOKS_H
#define COHORT_HOOKS_H

#include <stddef.h>

typedef void (*node_hook_fn)(void *ud);

typedef struct node_hook {
    const char *name; /* for logs and tests */
    node_hook_fn fn;
    void *ud;
} node_hook_t;

typedef struct node_hooks {
    node_hook_t *items;
    size_t n, cap;
} node_hooks_t;

void node_hooks_init(node_hooks_t *h);
void node_hooks_free(node_hooks_t *h);
/* Appends a hook; it runs after those added before it. */
void node_hooks_add(node_hooks_t *h, const char *name, node_hook_fn fn, void *ud);
/* Runs every hook once, in order. */
void node_hooks_run(const node_hooks_t *h);

#endif
