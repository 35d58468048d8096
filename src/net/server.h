/* server: the client listeners (TCP and unix socket) and the connections.
 *
 * Owns: accepting and limiting connections (maxclients), reading into each
 * client's query buffer, handing every complete command in it to the owner's
 * execute hook, and writing replies once per loop turn (a direct write first,
 * a queued write for what the kernel did not take), the output-buffer and
 * query-buffer limits, the idle timeout, and the clients whose replies are
 * held (blocked.c).
 * Never: parses RESP itself (resp.c), implements commands, or decides when a
 * held reply may go (the owner's ready function does). */
#ifndef COHORT_SERVER_H
#define COHORT_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "client.h"
#include "config.h"

typedef struct server server_t;

/* What the server needs from its owner, handed over at start. */
typedef struct server_hooks {
    void *ud; /* stored in every client's ctx */
    /* Runs one parsed command for c; its reply is appended to c->out. */
    void (*execute)(void *ud, client_t *c, int argc, const char **argv, const size_t *argl);
    /* c starts closing (client_close): drop what the owner keeps about it.
     * c stays allocated until the loop's close callback. May be NULL. */
    void (*on_close)(void *ud, client_t *c);
} server_hooks_t;

typedef struct server_stats {
    uint64_t connections_received; /* accepted client connections */
    uint64_t rejected_connections; /* refused: maxclients */
    uint64_t protocol_errors;      /* connections closed for malformed RESP */
    uint64_t output_limit_closes;  /* connections closed: output buffer limit */
    uint64_t query_limit_closes;   /* connections closed: query buffer limit */
    uint64_t idle_timeouts;
    uint64_t net_input_bytes;
    uint64_t net_output_bytes;
    uint64_t blocked_releases;     /* held replies released */
    uint64_t blocked_usec;         /* total time replies were held */
} server_stats_t;

/* Starts the listeners of cfg (which must outlive the server). Returns the
 * server, or NULL with a message in err. */
server_t *server_start(uv_loop_t *loop, const config_t *cfg, const server_hooks_t *hooks,
                       char *err, size_t errlen);
/* Stops accepting and closes every client (held replies are not sent); run
 * the loop to finish. */
void server_stop(server_t *s);

/* Call after cfg->timeout_s changed (CONFIG SET timeout): starts the idle
 * check if it was not running; a timeout of 0 turns it off. */
void server_timeout_changed(server_t *s);

size_t server_client_count(const server_t *s);
size_t server_clients_memory(const server_t *s);
const server_stats_t *server_stats(const server_t *s);
/* Calls fn for every open client (CLIENT LIST). */
void server_foreach_client(server_t *s, void (*fn)(void *ud, client_t *c), void *ud);
/* Marks c as having replies to write at the end of this loop turn. */
void server_want_write(server_t *s, client_t *c);
/* Hands what c has to write to the kernel now, not at the end of the turn
 * (client tracking's invalidations, which must be in the socket before the
 * cluster's acknowledgements go out); held replies stay held (c is written
 * when released). May close c (output buffer limit). */
void server_write_now(server_t *s, client_t *c);
/* Sends every pending reply (called once per loop turn, and at shutdown). */
void server_flush_writes(server_t *s);

/* Decides whether a held reply may go: token and since as given to
 * client_block. Must be monotone: when a token is ready, so is every smaller
 * one (with its older since). */
typedef int (*blocked_ready_fn)(void *ud, uint64_t token, int64_t since);
/* Releases the held clients in token order, smallest first, while ready()
 * accepts them: their replies go out at the end of this loop turn. Stops at
 * the first that is not ready, so it costs O(released + 1), not O(held).
 * Returns how many were released. */
size_t server_release_blocked(server_t *s, blocked_ready_fn ready, void *ud);
/* Clients whose replies are held. */
size_t server_blocked_count(const server_t *s);

#endif
