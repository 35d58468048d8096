/* server: the client listeners (TCP and unix socket) and the connections.
 *
 * Owns: accepting and limiting connections (maxclients), reading into each
 * client's query buffer, running every complete command in it, and writing
 * replies once per loop turn (a direct write first, a queued write for what
 * the kernel did not take), the output-buffer and query-buffer limits and the
 * idle timeout.
 * Never: parses RESP (resp.c) or implements commands (commands.c). */
#ifndef COHORT_SERVER_H
#define COHORT_SERVER_H

#include <stddef.h>

#include "client.h"
#include "node.h"

typedef struct server server_t;

/* Starts the listeners of n->cfg. Returns the server, or NULL with a message. */
server_t *server_start(node_t *n, char *err, size_t errlen);
/* Stops accepting and closes every client; run the loop to finish. */
void server_stop(server_t *s);

size_t server_client_count(const server_t *s);
size_t server_clients_memory(const server_t *s);
/* Calls fn for every open client (CLIENT LIST). */
void server_foreach_client(server_t *s, void (*fn)(void *ud, client_t *c), void *ud);
/* Marks c as having replies to write at the end of this loop turn. */
void server_want_write(server_t *s, client_t *c);
/* Sends every pending reply (called once per loop turn, and at shutdown). */
void server_flush_writes(server_t *s);

#endif
