/* client: one application connection speaking RESP.
 *
 * Owns: the connection's handle, its query buffer and parser, its reply
 * buffer, and its session state (protocol version, AUTH, name).
 * Never: executes a command itself (that is commands.c), or lets its buffers
 * grow past the configured limits: a client over a limit is disconnected.
 *
 * States: OPEN -> (CLOSE_AFTER_REPLY) -> CLOSING -> freed in the close
 * callback. A client is freed only by libuv's close callback. */
#ifndef COHORT_CLIENT_H
#define COHORT_CLIENT_H

#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "node.h"
#include "resp.h"

enum client_flags {
    CLIENT_CLOSE_AFTER_REPLY = 1 << 0, /* QUIT, protocol error */
    CLIENT_CLOSING = 1 << 1,           /* uv_close called */
    CLIENT_UNIX = 1 << 2,              /* unix socket connection */
    CLIENT_IN_LIST = 1 << 3
};

typedef struct client {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h;
    node_t *node;
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
    buf_t in;          /* unparsed request bytes */
    resp_parser_t parser;
    buf_t out;         /* reply bytes not yet handed to the kernel */
    size_t out_inflight; /* bytes in uv_write requests */
    struct client *prev, *next; /* server's list */
    struct client *wnext;       /* server's pending-write list */
    int in_wlist;
    size_t read_offer;          /* room given to the last read */
    struct client *rnext;       /* server's list of reads paused this turn */
    uint64_t hold_seq; /* replies wait for this flush to be acknowledged (0: none) */
    int64_t hold_since;
    struct client *hnext; /* cluster's list of held clients */
} client_t;

/* Total bytes this client holds (buffers, parser, pending writes). */
size_t client_memory(const client_t *c);
/* Starts closing: no more reads or replies. Safe to call twice. */
void client_close(client_t *c, const char *why);

#endif
