/* watch: WATCH / UNWATCH state; see watch.h. */
#include "watch.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"

typedef struct wclient {
    client_t *c;
    struct wclient *prev, *next; /* w->clients */
    char **keys;
    size_t *klens;
    size_t n;
    int dirty;
} wclient_t;

struct watch {
    wclient_t *clients;
    size_t nclients;
};

watch_t *watch_new(void)
{
    return xcalloc(1, sizeof(watch_t));
}

void watch_free(watch_t *w)
{
    free(w);
}

static int has_key(const wclient_t *wc, const char *key, size_t klen)
{
    for (size_t i = 0; i < wc->n; i++)
        if (wc->klens[i] == klen && memcmp(wc->keys[i], key, klen) == 0)
            return 1;
    return 0;
}

void watch_keys(watch_t *w, client_t *c, size_t n, const char *const *keys, const size_t *klens)
{
    wclient_t *wc = c->watch;
    if (!wc) {
        wc = xcalloc(1, sizeof(*wc));
        wc->c = c;
        wc->next = w->clients;
        if (w->clients)
            w->clients->prev = wc;
        w->clients = wc;
        w->nclients++;
        c->watch = wc;
    }
    for (size_t i = 0; i < n; i++) {
        if (has_key(wc, keys[i], klens[i]))
            continue;
        wc->keys = xrealloc(wc->keys, (wc->n + 1) * sizeof(*wc->keys));
        wc->klens = xrealloc(wc->klens, (wc->n + 1) * sizeof(*wc->klens));
        wc->keys[wc->n] = xmalloc(klens[i] ? klens[i] : 1);
        memcpy(wc->keys[wc->n], keys[i], klens[i]);
        wc->klens[wc->n++] = klens[i];
    }
}

void watch_unwatch(watch_t *w, client_t *c)
{
    wclient_t *wc = c->watch;
    if (!wc)
        return;
    if (wc->prev)
        wc->prev->next = wc->next;
    else
        w->clients = wc->next;
    if (wc->next)
        wc->next->prev = wc->prev;
    w->nclients--;
    for (size_t i = 0; i < wc->n; i++)
        free(wc->keys[i]);
    free(wc->keys);
    free(wc->klens);
    free(wc);
    c->watch = NULL;
}

int watch_is_dirty(const client_t *c)
{
    const wclient_t *wc = c->watch;
    return wc && wc->dirty;
}

size_t watch_count(const client_t *c)
{
    const wclient_t *wc = c->watch;
    return wc ? wc->n : 0;
}

size_t watch_keys_of(const client_t *c, const char *const **keys, const size_t **klens)
{
    const wclient_t *wc = c->watch;
    *keys = wc ? (const char *const *)wc->keys : NULL;
    *klens = wc ? wc->klens : NULL;
    return wc ? wc->n : 0;
}

void watch_key_changed(watch_t *w, const char *key, size_t klen)
{
    for (wclient_t *wc = w->clients; wc; wc = wc->next)
        if (!wc->dirty && has_key(wc, key, klen))
            wc->dirty = 1;
}

void watch_prefix_changed(watch_t *w, const char *prefix, size_t plen)
{
    for (wclient_t *wc = w->clients; wc; wc = wc->next)
        for (size_t i = 0; i < wc->n && !wc->dirty; i++)
            if (wc->klens[i] >= plen && memcmp(wc->keys[i], prefix, plen) == 0)
                wc->dirty = 1;
}

void watch_all_changed(watch_t *w)
{
    for (wclient_t *wc = w->clients; wc; wc = wc->next)
        wc->dirty = 1;
}

size_t watch_clients(const watch_t *w)
{
    return w->nclients;
}
