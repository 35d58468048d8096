/* pubsub: publish/subscribe on one node, with redis-server 7.0's semantics and
 * reply bytes.
 *
 * Owns: the channels, patterns and shard channels that have subscribers
 * (each with its subscribers in subscription order), every client's
 * subscriptions (the per-client state hangs off client_t.pubsub), the
 * CLIENT_PUBSUB flag, the subscribe / unsubscribe confirmations and the
 * message / pmessage / smessage deliveries (RESP2 arrays, RESP3 pushes), the
 * pub/sub output-buffer limits (hard, and soft for a time, as redis-server's
 * "client-output-buffer-limit pubsub" class), and the memory all this takes.
 * Never: reads a socket or parses a command (cmd/cmd_pubsub.c does), closes a
 * client while walking its tables (a client over its limit is closed after
 * the delivery), or talks to peers: a cluster layer feeds it with
 * pubsub_publish_local() and reads its interest set (pubsub_has_interest,
 * pubsub_foreach, the interest callback).
 *
 * Invariants (test in tests/unit/test_pubsub.c unless named otherwise):
 *  1. A topic exists exactly while it has at least one subscriber; its
 *     subscriber count equals the clients subscribed to it (test_counts,
 *     test_unsubscribe_all).
 *  2. A client is subscribed to a topic at most once; subscribing again
 *     changes nothing but still replies (test_duplicate_subscribe).
 *  3. CLIENT_PUBSUB is set exactly while the client holds a subscription of
 *     any kind (test_flag).
 *  4. The interest callback is called once when a topic appears and once when
 *     it goes, in that order, and never for a topic that did not change
 *     (test_interest_callback).
 *  5. A publish returns the number of deliveries: channel subscribers plus,
 *     for each matching pattern, its subscribers (a client subscribed both
 *     ways counts twice) (test_publish_counts).
 *  6. After pubsub_client_closed() nothing refers to the client
 *     (test_close_drops_everything; ASan).
 *  7. pubsub_memory() returns to its starting value when every subscription
 *     is gone (test_memory_returns).
 *  8. A subscriber over the hard limit, or over the soft limit for longer
 *     than the soft time, is closed after the delivery; the others still get
 *     the message (test_output_limit_hard, tests/integration/test_pubsub.py
 *     test_slow_subscriber_disconnected).
 *  9. The count callback is called after every change of a topic's
 *     subscriber count with the new count (0 as the topic goes), before the
 *     interest callback's "gone" (test_count_callback).
 */
#ifndef COHORT_PUBSUB_H
#define COHORT_PUBSUB_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"

enum pubsub_kind {
    PUBSUB_CHANNEL = 0, /* SUBSCRIBE / PUBLISH */
    PUBSUB_PATTERN = 1, /* PSUBSCRIBE (glob, base/glob.h) */
    PUBSUB_SHARD = 2,   /* SSUBSCRIBE / SPUBLISH */
    PUBSUB_KINDS = 3
};

typedef struct pubsub_limits {
    size_t max_subscriptions; /* per client, all kinds together; 0: no limit */
    size_t out_hard;          /* output bytes at which a subscriber is closed; 0: none */
    size_t out_soft;          /* ... or over this for longer than out_soft_ms; 0: none */
    int64_t out_soft_ms;
} pubsub_limits_t;

typedef struct pubsub_stats {
    uint64_t messages;                    /* publishes handled (local and fed) */
    uint64_t deliveries;                  /* messages written to subscribers */
    uint64_t output_limit_disconnects;    /* subscribers closed at a limit */
    uint64_t subscription_limit_refusals; /* subscribe commands refused */
} pubsub_stats_t;

typedef struct pubsub pubsub_t;

/* Called when the set of topics with subscribers changes on this node:
 * present is 1 when kind/name got its first subscriber, 0 when it lost its
 * last. name is valid during the call only. */
typedef void (*pubsub_interest_fn)(void *ud, int kind, const char *name, size_t len, int present);
/* Called after a topic's subscriber count changed: subscribers is the new
 * count (0: the topic is gone). name is valid during the call only. */
typedef void (*pubsub_count_fn)(void *ud, int kind, const char *name, size_t len,
                                size_t subscribers);
/* Closes a client (client_close in the daemon; a stub in unit tests). */
typedef void (*pubsub_close_fn)(client_t *c, const char *why);
/* Visits one topic: name and its subscriber count. */
typedef void (*pubsub_visit_fn)(void *ud, const char *name, size_t len, size_t subscribers);

/* A new, empty pub/sub state with limits (copied). Free with pubsub_free. */
pubsub_t *pubsub_new(const pubsub_limits_t *limits);
/* Frees the tables. Call once every client is closed (server_stop closes
 * them, and each close drops its subscriptions); a subscription still held
 * is dropped, which writes to its client. NULL is fine. */
void pubsub_free(pubsub_t *ps);
/* Sets the interest callback (NULL: none). It runs inside subscribe,
 * unsubscribe and close calls and must not call back into ps. */
void pubsub_set_interest_cb(pubsub_t *ps, pubsub_interest_fn fn, void *ud);
/* Sets the count callback (NULL: none); the same rules as the interest
 * callback. A cluster layer announces the counts to its members. */
void pubsub_set_count_cb(pubsub_t *ps, pubsub_count_fn fn, void *ud);
/* How clients over a limit are closed (default: client_close). */
void pubsub_set_close_fn(pubsub_t *ps, pubsub_close_fn fn);

/* SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE: subscribes c to each name and writes
 * one confirmation per name to c->out. Returns 0, or -1 (nothing subscribed,
 * an error reply written) when it would pass max_subscriptions. */
int pubsub_subscribe(pubsub_t *ps, client_t *c, int kind, int n, const char *const *names,
                     const size_t *lens);
/* UNSUBSCRIBE / PUNSUBSCRIBE / SUNSUBSCRIBE: n == 0 drops every
 * subscription of that kind. One confirmation per name (or per dropped
 * subscription; [kind, nil, count] when there was none) goes to c->out. */
void pubsub_unsubscribe(pubsub_t *ps, client_t *c, int kind, int n, const char *const *names,
                        const size_t *lens);
/* Drops every subscription of c without a reply (RESET). */
void pubsub_reset_client(pubsub_t *ps, client_t *c);
/* c is closing: drops its subscriptions and state. */
void pubsub_client_closed(pubsub_t *ps, client_t *c);
/* Subscriptions c holds of kind (the counts the confirmations report use
 * channel + pattern together; see pubsub.c). */
size_t pubsub_client_subscriptions(const client_t *c, int kind);

/* Delivers a message published on this node or received from a peer to
 * every matching subscriber here: channel subscribers and matching patterns,
 * or (is_shard) shard channel subscribers. Returns the deliveries (the
 * PUBLISH reply). Subscribers over their output limit are closed before it
 * returns. */
size_t pubsub_publish_local(pubsub_t *ps, const char *ch, size_t chlen, const char *msg,
                            size_t mlen, int is_shard);
/* 1 when a message on ch would reach a subscriber here (a channel or shard
 * channel subscriber, or for !is_shard a matching pattern), else 0. */
int pubsub_has_interest(const pubsub_t *ps, const char *ch, size_t chlen, int is_shard);

/* Subscribers of one channel or shard channel (NUMSUB; patterns not
 * counted), or of one pattern for PUBSUB_PATTERN. */
size_t pubsub_numsub(const pubsub_t *ps, int kind, const char *name, size_t len);
/* Topics of kind with subscribers (INFO pubsub_channels, pubsub_patterns,
 * pubsubshard_channels; PUBSUB NUMPAT). */
size_t pubsub_topics(const pubsub_t *ps, int kind);
/* Calls fn for every topic of kind matching the glob pat (pat NULL: all), in
 * the order the topics appeared. */
void pubsub_foreach(const pubsub_t *ps, int kind, const char *pat, size_t plen, pubsub_visit_fn fn,
                    void *ud);

/* Applies the pub/sub output limits to c after a command's reply (a
 * subscriber's replies count as redis-server counts them, in its pubsub
 * class): closes c if it is over them. Does nothing for a non-subscriber.
 * Returns 1 if c was closed. */
int pubsub_after_reply(pubsub_t *ps, client_t *c);
/* Checks the soft limit of subscribers that are over it (call periodically:
 * a subscriber that gets no more messages is still closed in time). */
void pubsub_cron(pubsub_t *ps, int64_t now_ms);
/* Bytes allocated for the tables and the clients' subscription state. */
size_t pubsub_memory(const pubsub_t *ps);
const pubsub_stats_t *pubsub_stats(const pubsub_t *ps);

#endif
