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
 * Invariants (tests/unit/test_blocked.c):
 *   1. c->block_token != 0 exactly when c is on s->blocked.
 *   2. The list is in token order, smallest first (ties in the order they
 *      were held). Tokens are handed out in increasing order (flush numbers),
 *      so holding a client or raising its token appends it at the tail: a
 *      step back past larger tokens happens only for a token handed over
 *      late (a script's flushes moved to its caller).
 *   3. Readiness is monotone (server.h): server_release_blocked releases from
 *      the head and stops at the first client that is not ready, so a
 *      release costs O(released + 1) calls of ready, whatever is held. */
#include <stddef.h>

#include "clock.h"
#include "server_int.h"

static void unlink_held(server_t *s, client_t *c)
{
    if (c->bprev)
        c->bprev->bnext = c->bnext;
    else
        s->blocked = c->bnext;
    if (c->bnext)
        c->bnext->bprev = c->bprev;
    else
        s->blocked_tail = c->bprev;
    c->bprev = c->bnext = NULL;
}

/* Puts c (not on the list) after the last client whose token is <= its own. */
static void insert_held(server_t *s, client_t *c)
{
    client_t *after = s->blocked_tail;
    while (after && after->block_token > c->block_token)
        after = after->bprev;
    c->bprev = after;
    c->bnext = after ? after->bnext : s->blocked;
    if (c->bnext)
        c->bnext->bprev = c;
    else
        s->blocked_tail = c;
    if (after)
        after->bnext = c;
    else
        s->blocked = c;
}

void client_block(client_t *c, uint64_t token)
{
    server_t *s = c->server;
    if (token == 0 || (c->flags & CLIENT_CLOSING) || token <= c->block_token)
        return;
    if (c->block_token == 0)
        s->nblocked++;
    else
        unlink_held(s, c);
    c->block_token = token;
    c->block_since = clock_mono_ms();
    insert_held(s, c);
}

void blocked_forget(server_t *s, client_t *c)
{
    if (c->block_token == 0)
        return;
    unlink_held(s, c);
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
    client_t *c;
    while ((c = s->blocked) && ready(ud, c->block_token, c->block_since)) {
        s->stats.blocked_releases++;
        s->stats.blocked_usec += (uint64_t)(now - c->block_since) * 1000;
        blocked_forget(s, c);
        server_want_write(s, c);
        released++;
    }
    return released;
}

size_t server_blocked_count(const server_t *s)
{
    return s ? s->nblocked : 0;
}
