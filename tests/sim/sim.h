/* sim: the deterministic simulator of a cohort cluster.
 *
 * Owns: a simulated world in one process: a fake clock, N nodes each running
 * the real cluster code (cluster.c, membership.c, coherence.c) against a
 * simulated peer layer (sim_peer.c, linked in place of peer.c), simulated
 * TCP connections between them (ordered byte pipes per direction, with
 * latency, cuts and resets), a tiny cache per node, client operations, faults,
 * and a checker of the guarantees after every event.
 * Never: opens a socket, sleeps, reads the real clock for a decision, or
 * draws a random number from anywhere but the run's seed: one seed
 * reproduces one run exactly.
 *
 * This header is shared by sim.c (the world, the workload, the checker) and
 * sim_peer.c (links). */
#ifndef COHORT_SIM_H
#define COHORT_SIM_H

#include <stdint.h>

#include "cluster_int.h"

#define SIM_MAX_NODES 8

/* The world, as the peer layer needs it. */
int64_t sim_now(void);
/* A random number from the run's generator. */
uint64_t sim_rand(void);
/* Latency of one hop in ms (the current one, drawn per chunk). */
int sim_latency(void);
/* The node a cluster belongs to, and the node listening at an "ip:port" id
 * (-1 when none). */
int sim_node_of(const cluster_t *cl);
int sim_node_by_id(const char *id);
/* The cluster of node i, or NULL when its process is not running. */
cluster_t *sim_cluster(int i);
/* 1 when node i's process is stopped (SIGSTOP): it handles nothing. */
int sim_paused(int i);
/* 1 when bytes from node a to node b are held back (a cut link). */
int sim_cut(int a, int b);

/* Events the peer layer schedules. */
typedef void (*sim_fn)(void *arg, int64_t id);
void sim_at(int64_t when, sim_fn fn, void *arg, int64_t id);

/* sim_peer.c */
void sim_peer_init(void);
/* Delivers what is due on every pipe towards node i (called by the world
 * when it runs node i). */
void sim_peer_deliver(int i);
/* Node i's process ends: its connections are reset (the peers see EOF) and
 * its links freed. Call before cluster_free. */
void sim_peer_crash(int i);
/* A cut between two nodes healed: held bytes go out again. */
void sim_peer_heal(int a, int b);
/* Frees links closed during the last event. */
void sim_peer_collect(void);
/* Frees everything (end of a run). */
void sim_peer_reset(void);

/* Names node i in the log lines that follow (with --verbose). */
void sim_log_as(int i);

/* sim_store.c: the fake shared store (sim --store) */
void sim_store_init(int on);
int sim_store_on(void);
/* A new run with nnodes nodes: an empty table, no faults. */
void sim_store_reset(int nnodes);
/* Node i's process started (its cluster exists), crashed, or stopped cleanly
 * (after cluster_stop). */
void sim_store_started(int i);
void sim_store_crashed(int i);
void sim_store_stopped(int i);
/* Draws one store fault (an outage of one node's session or of the whole
 * store, or slow answers); returns 1 if one was made. */
int sim_store_fault(void);
/* Every store fault ends. */
void sim_store_quiet(void);
/* With the flush log (sim --flushlog): the log's driver runs at the end of
 * each turn of node i; sim_store_down says whether any store fault is on. */
void sim_store_flushlog(int on);
void sim_store_turn(int i);
int sim_store_down(void);
void sim_store_stats_log(uint64_t *appends, uint64_t *reads);
/* 1 when the store holds no current row of node i's process (none yet, it
 * expired or it left) or its session lock is free: any member may declare
 * it dead. */
int sim_store_row_lapsed(int i);
/* Renewals answered and failed, over every run. */
void sim_store_stats(uint64_t *ok, uint64_t *failed);

#endif
