/* client: one application connection speaking RESP.
 *
 * Owns: the connection's handle, its query buffer and parser, its reply
 * buffer, its session state (protocol version, AUTH, name), and whether its
 * replies are held (blocked.c).
 * Never: executes a command itself (the server's owner does, through
 * server_hooks_t), looks inside ctx, or lets its buffers grow past the
 * configured limits: a client over a limit is disconnected.
 *
 * States: OPEN -> (CLOSE_AFTER_REPLY) -> CLOSING -> freed in the close
 * callback. A client is freed only by libuv's close callback. */
#ifndef COHORT_CLIENT_H
#define COHORT_CLIENT_H

#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "resp.h"

enum client_flags {
    CLIENT_CLOSE_AFTER_REPLY = 1 << 0, /* QUIT, protocol error */
    CLIENT_CLOSING = 1 << 1,           /* uv_close called */
    CLIENT_UNIX = 1 << 2,              /* unix socket connection */
    CLIENT_IN_LIST = 1 << 3,
    CLIENT_PUBSUB = 1 << 4, /* holds a subscription (svc/pubsub.c sets it); no idle timeout */
    CLIENT_SUSPENDED = 1 << 5 /* its current command runs again at server_resume_client */
};

typedef struct client {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h;
    struct server *server;
    void *ctx; /* the server owner's context (server_hooks_t.ud); net never reads it */
    uint64_t id;
    int flags;
    int proto;         /* 2 or 3 (HELLO) */
    int authenticated; /* 1 when no password is set */
    char *name;        /* CLIENT SETNAME, or NULL */
    char addr[64];     /* peer "ip:port", or the socket path */
    char laddr[64];
    int64_t created_ms;
    int64_t last_ms; /* last command */
    const char *last_cmd;
    int cmd_flags;     /* the command layer's per-connection flags; net never reads them */
    buf_t in;          /* unparsed request bytes */
    resp_parser_t parser;
    buf_t out;         /* reply bytes not yet handed to the kernel */
    size_t out_inflight; /* bytes in uv_write requests */
    struct client *prev, *next; /* server's list */
    struct client *wnext;       /* server's pending-write list */
    int in_wlist;
    size_t read_offer;          /* room given to the last read */
    struct client *rnext;       /* server's list of reads paused this turn */
    uint64_t block_token; /* replies held until this token is ready (0: not held) */
    int64_t block_since;  /* clock_mono_ms() when the newest token was set */
    struct client *bprev, *bnext; /* the server's list of held clients */
    void *pubsub;         /* its subscriptions (svc/pubsub.c); net never reads it */
    void *wait;           /* the command layer's state of a suspended command; net never
                             reads it */
    int db;               /* the command layer's current database (SELECT); net never reads it */
    void *multi;          /* the command layer's MULTI state (cmd_multi.c); net never reads it */
    void *tracking;       /* CLIENT TRACKING state (svc/tracking.c); net never reads it */
    void *watch;          /* WATCHed keys (svc/watch.c); net never reads it */
    uint64_t write_seq;   /* the command layer's: flush number of this connection's newest
                             write or flush sent to the members (WAIT); net never reads it */
} client_t;

/* Total bytes this client holds (buffers, parser, pending writes). */
size_t client_memory(const client_t *c);
/* Starts closing: no more reads or replies. Safe to call twice. */
void client_close(client_t *c, const char *why);

/* Takes c out of the held clients and returns the token it waited for (0:
 * it was not held): its waits move to another client (a script's). */
uint64_t client_unblock_take(client_t *c);

/* Suspends c's current command: called by the command executing it, it
 * leaves the command in the query buffer (not consumed) and stops c's
 * commands there; server_resume_client runs it again from the start (the
 * executor must have taken back whatever reply it wrote). Input that arrives
 * meanwhile waits in the query buffer, under its limit. */
void client_suspend(client_t *c);
/* Runs a suspended client's command again, and those after it. Not from
 * inside that client's own command. */
void server_resume_client(client_t *c);

/* Holds c's replies (those written so far and later ones) until token is
 * ready (see server_release_blocked). A client already held keeps its place;
 * a larger token replaces its token and restarts its clock, so a pipelined
 * wait gets its whole time too. token 0 does nothing. */
void client_block(client_t *c, uint64_t token);

#endif
