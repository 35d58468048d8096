/* hooks: the end-of-turn hook registry; see hooks.h. */
#include "hooks.h"

#include <stdlib.h>

#include "mem.h"

void node_hooks_init(node_hooks_t *h)
{
    h->items = NULL;
    h->n = h->cap = 0;
}

void node_hooks_free(node_hooks_t *h)
{
    free(h->items);
    node_hooks_init(h);
}

void node_hooks_add(node_hooks_t *h, const char *name, node_hook_fn fn, void *ud)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 8;
        h->items = xrealloc(h->items, h->cap * sizeof(node_hook_t));
    }
    h->items[h->n++] = (node_hook_t){name, fn, ud};
}

void node_hooks_run(const node_hooks_t *h)
{
    size_t n = h->n; /* hooks added while running wait for the next turn */
    for (size_t i = 0; i < n; i++)
        h->items[i].fn(h->items[i].ud);
}
