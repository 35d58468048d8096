/* presence: who is online, per channel, as this node sees the cluster.
 *
 * Owns: the presence table (channels, interned once, each with its entries
 * keyed by member and owning node), this node's own entries with their
 * time-to-live (an expiry heap), the members' entries as copied to this node
 * (no time-to-live: their owner expires them and says so), the per-member
 * generations that let a member's full set replace what was held from it,
 * and the memory all this takes.
 * Never: talks to peers or clients. Changes of this node's own entries go out
 * through the change callback (the node hands them to the cluster), and every
 * change of any entry (own or copied) through the event callback (the node
 * publishes it on __presence__:<channel> to this node's subscribers).
 *
 * An entry is (channel, member, origin): a member joined on two nodes is
 * listed once per node. origin is PRESENCE_SELF for this node's own entries,
 * else the member's index in the cluster's member table.
 *
 * Event message format (presence_event_json), one JSON object per change:
 *   {"event":"join","channel":"c","member":"m","node":"n","meta":"..."}
 *   {"event":"update","channel":"c","member":"m","node":"n","meta":"..."}
 *   {"event":"leave","channel":"c","member":"m","node":"n","reason":"left"}
 * reason: "left" (PRESENCE.LEAVE), "expired" (its TTL ran out), "node_gone"
 * (its node is dead or restarted), "resync" (its node's full set, after a
 * partition, no longer holds it). Strings are JSON-escaped; bytes >= 0x80 pass
 * through unchanged.
 *
 * Invariants (tests/unit/test_presence.c unless named otherwise):
 *  1. A channel exists exactly while it holds an entry; presence_count is
 *     the number of its entries (test_join_leave_count).
 *  2. Joining an entry again refreshes its TTL and metadata: one entry, no
 *     join event, an update event only when the metadata changed, a change
 *     callback only when it is new or its metadata changed (test_rejoin).
 *  3. An owned entry with a TTL is removed by presence_expire once its time
 *     passed unrefreshed, with a leave event "expired" (test_expire).
 *  4. After presence_sync_begin(o) ... presence_sync_end(o), origin o holds
 *     exactly the entries applied in between (test_sync_replaces).
 *  5. presence_drop_origin(o) removes every entry of o with a "node_gone"
 *     leave event, and nothing else (test_drop_origin).
 *  6. Limits are checked before anything changes (test_limits); the owned
 *     entries never pass max_owned.
 *  7. presence_memory returns to its start when every entry is gone
 *     (test_memory_returns; ASan for leaks).
 */
#ifndef COHORT_PRESENCE_H
#define COHORT_PRESENCE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Documented limits (README "Presence"). */
#define PRESENCE_MAX_CHANNEL 1024 /* bytes of a channel name */
#define PRESENCE_MAX_MEMBER 512   /* bytes of a member name */
#define PRESENCE_MAX_META 4096    /* bytes of an entry's metadata */
#define PRESENCE_MAX_TTL_S (30LL * 86400) /* longest TTL */
#define PRESENCE_SELF (-1)        /* origin of this node's own entries */
#define PRESENCE_MAX_ORIGINS 4096 /* member indexes accepted */

/* Changes of an owned entry as the members learn them (the values are the
 * PRESENCE frame's ops, proto/frame.h; node.c checks). */
enum presence_op { PRESENCE_OP_JOIN = 1, PRESENCE_OP_LEAVE = 2, PRESENCE_OP_EXPIRE = 3 };

enum presence_event_kind { PRESENCE_EV_JOIN = 0, PRESENCE_EV_UPDATE = 1, PRESENCE_EV_LEAVE = 2 };
enum presence_reason {
    PRESENCE_LEFT = 0,
    PRESENCE_EXPIRED = 1,
    PRESENCE_NODE_GONE = 2,
    PRESENCE_RESYNC = 3
};

typedef struct presence_event {
    int kind;   /* enum presence_event_kind */
    int reason; /* enum presence_reason (leave only) */
    int origin; /* PRESENCE_SELF or a member index */
    const char *ch;
    size_t chlen;
    const char *member;
    size_t mlen;
    const char *meta; /* join and update only */
    size_t metalen;
} presence_event_t;

typedef struct presence presence_t;

/* Every change of an entry (valid during the call only). Must not call back
 * into the table. */
typedef void (*presence_event_fn)(void *ud, const presence_event_t *ev);
/* A change of an owned entry for the members: op is an enum presence_op
 * (meta only for JOIN). Must not call back into the table. */
typedef void (*presence_change_fn)(void *ud, int op, const char *ch, size_t chlen,
                                   const char *member, size_t mlen, const char *meta,
                                   size_t metalen);
/* One entry of a list or a walk. */
typedef void (*presence_visit_fn)(void *ud, const char *ch, size_t chlen, const char *member,
                                  size_t mlen, const char *meta, size_t metalen, int origin);

/* A new, empty table whose owned entries never pass max_owned (0: no
 * limit). Free with presence_free. */
presence_t *presence_new(size_t max_owned);
/* Frees the table and every entry (no events). NULL is fine. */
void presence_free(presence_t *p);
/* Sets the callbacks (NULL: none). */
void presence_set_hooks(presence_t *p, presence_event_fn ev, presence_change_fn change, void *ud);

/* PRESENCE.JOIN: this node's entry (ch, member) with meta, expiring ttl_ms
 * after now_ms (0: never) unless joined again. Returns 1 when the entry is
 * new, 0 when it was refreshed, or -1 with a message in err (a limit; nothing
 * changed). */
int presence_join(presence_t *p, const char *ch, size_t chlen, const char *member, size_t mlen,
                  const char *meta, size_t metalen, int64_t ttl_ms, int64_t now_ms, char *err,
                  size_t errlen);
/* PRESENCE.LEAVE: removes this node's entry. Returns 1, or 0 when it held
 * none. */
int presence_leave(presence_t *p, const char *ch, size_t chlen, const char *member, size_t mlen);
/* Entries of ch, on every node as known here. */
size_t presence_count(const presence_t *p, const char *ch, size_t chlen);
/* Calls fn for every entry of ch (in no particular order); returns how many. */
size_t presence_list(const presence_t *p, const char *ch, size_t chlen, presence_visit_fn fn,
                     void *ud);
/* Removes up to max owned entries whose TTL passed by now_ms. Returns how
 * many were removed. */
size_t presence_expire(presence_t *p, int64_t now_ms, size_t max);

/* A member's change of its own entry (op an enum presence_op). Returns 0,
 * or -1 when a length or op is out of bounds (nothing changed). */
int presence_apply(presence_t *p, int origin, int op, const char *ch, size_t chlen,
                   const char *member, size_t mlen, const char *meta, size_t metalen);
/* origin's full set starts: entries it holds from now on are marked, and
 * presence_sync_end removes those that were not (returns how many). */
void presence_sync_begin(presence_t *p, int origin);
size_t presence_sync_end(presence_t *p, int origin);
/* origin is dead or restarted: removes its entries; returns how many. */
size_t presence_drop_origin(presence_t *p, int origin);
/* Calls fn for every entry this node owns. */
void presence_foreach_owned(const presence_t *p, presence_visit_fn fn, void *ud);

/* Entries held (all origins), owned entries, channels, and bytes used. */
size_t presence_entries(const presence_t *p);
size_t presence_owned(const presence_t *p);
size_t presence_channels(const presence_t *p);
size_t presence_memory(const presence_t *p);

/* Appends ev as its JSON message (format above) to out; node is the name of
 * the entry's node. */
void presence_event_json(const presence_event_t *ev, const char *node, buf_t *out);

#endif
