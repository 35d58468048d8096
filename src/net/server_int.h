/* server_int: the server's structure, shared by server.c and blocked.c only
 * (as btreeInt.h is to sqlite's btree). Nothing outside net/ includes it. */
#ifndef COHORT_SERVER_INT_H
#define COHORT_SERVER_INT_H

#include "server.h"

struct server {
    uv_loop_t *loop;
    const config_t *cfg;
    server_hooks_t hooks;
    server_stats_t stats;
    uv_tcp_t tcp;
    uv_pipe_t unix_sock;
    int tcp_open, unix_open;
    uv_timer_t idle_timer;
    int idle_open;
    client_t *clients;   /* doubly linked list of open clients */
    size_t nclients;
    client_t *wlist;     /* clients with replies to write this turn */
    client_t *rpaused;   /* clients that filled a read this turn (fairness) */
    client_t *blocked;   /* clients whose replies are held (bprev/bnext), */
    client_t *blocked_tail; /* in token order: see blocked.c */
    size_t nblocked;
    uint64_t next_id;
    int stopping;
};

/* Forgets c's hold (it is closing). */
void blocked_forget(server_t *s, client_t *c);

/* Runs every complete command in c->in through the execute hook (the read
 * callback's work; busy.c calls it too). May close c. */
void server_process_input(client_t *c);
/* Makes a client of a connection accepted outside libuv (busy.c): fd is a
 * non-blocking socket the caller gives up. Returns 0, or a negative libuv
 * error with fd closed. */
int server_adopt_fd(server_t *s, uv_os_sock_t fd, int is_unix);

#endif
