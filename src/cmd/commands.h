/* commands: the table of client commands and their dispatch.
 *
 * Owns: the command table (name, arity, flags, handler, call statistics), the
 * checks every command goes through in redis-server's order (unknown command,
 * arity, NOAUTH, RESP2 subscribe mode), and the error texts those checks reply.
 * Never: reads or writes sockets; a handler appends its reply to c->out. */
#ifndef COHORT_COMMANDS_H
#define COHORT_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "node.h"

typedef void (*command_fn)(client_t *c, int argc, const char **argv, const size_t *argl);

enum command_flags {
    CMD_NOAUTH = 1 << 0, /* allowed before AUTH (AUTH, HELLO, QUIT) */
    CMD_WRITE = 1 << 1,
    CMD_READONLY = 1 << 2,
    CMD_FLUSH = 1 << 3,  /* a flush: applies on every member */
    CMD_COHORT = 1 << 4, /* cohort's own command (not in redis-server) */
    CMD_PUBSUB = 1 << 5,   /* allowed in RESP2 subscribe mode */
    CMD_CONTAINER = 1 << 6, /* has subcommands: its full name is "name|sub" */
    CMD_NOSCRIPT = 1 << 7,  /* refused inside a script (EVAL, SUBSCRIBE, ...) */
    CMD_MULTI_PASS = 1 << 8 /* runs at once inside MULTI, not queued (EXEC, QUIT, ...) */
};

typedef struct command {
    const char *name; /* lower case */
    int arity;        /* as redis-server: >0 exact argc, <0 at least -arity */
    int flags;
    command_fn fn;
    const char *summary; /* for COMMAND DOCS */
    uint64_t calls;
    uint64_t usec;
    uint64_t rejected; /* arity / auth errors */
} command_t;

/* Runs one parsed command for c (the server's execute hook: ud is the node). */
void commands_execute(void *ud, client_t *c, int argc, const char **argv, const size_t *argl);
/* A client is closing: its transaction and watched keys go. */
void commands_client_closed(client_t *c);
/* The table, for COMMAND, INFO commandstats and /metrics. */
command_t *commands_table(size_t *n);
command_t *commands_lookup(const char *name, size_t len);
/* Where cmd's keys are for COMMAND INFO (first, last, step; 0 0 0: none;
 * last -1: to the end). */
void commands_key_positions(const command_t *cmd, int *first, int *last, int *step);
/* EXEC: runs a queued command (checked when it was queued) in c's current
 * database, without the checks of a new command (redis-server's call()). */
void commands_exec_queued(client_t *c, int argc, const char **argv, const size_t *argl);

#endif
