/* blocked: clients whose replies are held until an event they wait for.
 *
 * Owns: the list of held clients and each one's wait (token, since). A
 * command that must not reply before something happens elsewhere (a flush
 * acknowledged by every member) holds its client with client_block; the
 * owner of that event says when it is done through server_release_blocked,
 * whose ready function decides per token (as redis-server's blocked.c parks
 * clients for WAIT and the replication layer only reports offsets).
 * Never: decides readiness itself, or lets a held client's replies out:
 * server_flush_writes skips it until it is released.
 *
 * Invariant: c->block_token != 0 exactly when c is on s->blocked. */
#include <stddef.h>

#include "clock.h"
#include "server_int.h"

void client_block(client_t *c, uint64_t token)
{
    server_t *s = c->server;
    if (token == 0 || (c->flags & CLIENT_CLOSING))
        return;
    if (c->block_token == 0) {
        c->bprev = NULL;
        c->bnext = s->blocked;
        if (s->blocked)
            s->blocked->bprev = c;
        s->blocked = c;
        s->nblocked++;
    }
    if (token > c->block_token) {
        c->block_token = token;
        c->block_since = clock_mono_ms();
    }
}

void blocked_forget(server_t *s, client_t *c)
{
    if (c->block_token == 0)
        return;
    if (c->bprev)
        c->bprev->bnext = c->bnext;
    else
        s->blocked = c->bnext;
    if (c->bnext)
        c->bnext->bprev = c->bprev;
    c->bprev = c->bnext = NULL;
    c->block_token = 0;
    s->nblocked--;
}

uint64_t client_unblock_take(client_t *c)
{
    uint64_t token = c->block_token;
    blocked_forget(c->server, c);
    return token;
}

size_t server_release_blocked(server_t *s, blocked_ready_fn ready, void *ud)
{
    size_t released = 0;
    if (!s)
        return 0;
    int64_t now = clock_mono_ms();
    client_t *c = s->blocked;
    while (c) {
        client_t *next = c->bnext;
        if (ready(ud, c->block_token, c->block_since)) {
            s->stats.blocked_releases++;
            s->stats.blocked_usec += (uint64_t)(now - c->block_since) * 1000;
            blocked_forget(s, c);
            server_want_write(s, c);
            released++;
        }
        c = next;
    }
    return released;
}

size_t server_blocked_count(const server_t *s)
{
    return s ? s->nblocked : 0;
}
