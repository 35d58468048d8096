/* busy: serving the clients from inside a command that holds the loop.
 *
 * Owns: one pass over the listeners and the client connections, made from
 * inside a command that keeps the loop thread (a script past lua-time-limit:
 * its host calls busy_serve about every 10 ms). See busy.c.
 * Never: re-enters uv_run, or decides what a command gets (the server's
 * execute hook does: it knows the loop is busy). */
#ifndef COHORT_BUSY_H
#define COHORT_BUSY_H

#include "server.h"

/* Accepts the connections waiting on s's listeners, reads what every client
 * but `keep` sent (non-blocking), runs each complete command through the
 * execute hook and hands the replies to the kernel at once. keep (the client
 * whose command holds the loop; may be NULL) is not read: its next commands
 * wait for its current one. hold_output: the owner has notices that must be
 * in the connections' buffers before this turn's replies are written (client
 * tracking's invalidations): output a client already had when the pass
 * reaches it, and what it is answered behind it, stay for the end of the
 * turn. May close clients other than keep (EOF, limits). s may be NULL
 * (nothing to do). */
void busy_serve(server_t *s, const client_t *keep, int hold_output);

#endif
