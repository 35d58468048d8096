"""Presence and cluster-wide chat, end to end with three real cohortd nodes.

Checks what README.md ("Presence") promises: PRESENCE.JOIN / LEAVE / LIST /
COUNT with their replies, limits and errors; an entry joined on one node is
listed on every node (with its node's name); joins and leaves (explicit,
expired, node gone, resync) are published on __presence__:<channel> on
every node; a node killed with -9 takes its users with it everywhere, and a
restarted node gets the current state; a partition that heals converges to
the owners' state; 100,000 entries list the same on every node. Also the
chat room in redis-py (messages from every node, in order per publisher,
pattern subscriptions across nodes), hostile input, and a slow subscriber
closed at its output limit while subscribers on other nodes keep receiving.
"""

import json
import os
import socket
import threading
import time

import pytest
import redis

import helpers
from cluster_harness import cluster_factory, requires_cohort  # noqa: F401
from test_pubsub_cluster import FAST, next_message, subscribed, wait_numsub  # noqa: F401
from conftest import scaled
from peer_proxy import PeerProxy
from test_cluster_hostile import low_free_port

pytestmark = [requires_cohort, pytest.mark.cohort_only]



def client(node):
    return redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=scaled(20))


def listing(node, channel):
    """PRESENCE.LIST as a sorted list of (member, meta, node) strings."""
    v = client(node).execute_command("PRESENCE.LIST", channel)
    return sorted((m.decode(), meta.decode(), n.decode()) for m, meta, n in v)


def wait_listing(nodes, channel, want, timeout=10.0):
    want = sorted(want)
    for node in nodes:
        ok = helpers.wait_for(lambda: listing(node, channel) == want, scaled(timeout))
        assert ok, "%s lists %r, want %r" % (node.name, listing(node, channel)[:10], want[:10])


def events(p, n, timeout=10.0):
    """The next n presence events of p, decoded."""
    return [json.loads(next_message(p, timeout)["data"]) for _ in range(n)]


def rss_kb(node):
    with open("/proc/%d/status" % node.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# --- commands on one node ---------------------------------------------------------------


def test_commands_replies_and_errors(cluster_factory):
    n1, n2, n3 = cluster_factory(3)
    r = client(n1)
    assert r.execute_command("PRESENCE.JOIN", "room", "alice") == 1
    assert r.execute_command("PRESENCE.JOIN", "room", "alice", '{"a":1}') == 0
    assert r.execute_command("PRESENCE.JOIN", "room", "bob", "b", "TTL", "100") == 1
    assert r.execute_command("PRESENCE.JOIN", "room", "carol", "ttl", "5") == 1
    assert r.execute_command("PRESENCE.COUNT", "room") == 3
    assert listing(n1, "room") == [("alice", '{"a":1}', "n1"), ("bob", "b", "n1"),
                                   ("carol", "", "n1")]
    assert r.execute_command("PRESENCE.LEAVE", "room", "carol") == 1
    assert r.execute_command("PRESENCE.LEAVE", "room", "carol") == 0
    assert r.execute_command("PRESENCE.COUNT", "nobody") == 0
    assert r.execute_command("PRESENCE.LIST", "nobody") == []
    # a node leaves only its own entries
    wait_listing([n2], "room", [("alice", '{"a":1}', "n1"), ("bob", "b", "n1")])
    assert client(n2).execute_command("PRESENCE.LEAVE", "room", "alice") == 0
    assert client(n2).execute_command("PRESENCE.COUNT", "room") == 2

    def err(*args):
        with pytest.raises(redis.ResponseError) as e:
            r.execute_command(*args)
        return str(e.value)

    for cmd, n in (("PRESENCE.JOIN", 1), ("PRESENCE.LEAVE", 1), ("PRESENCE.LEAVE", 3),
                   ("PRESENCE.LIST", 0), ("PRESENCE.LIST", 2), ("PRESENCE.COUNT", 0),
                   ("PRESENCE.COUNT", 2)):
        assert "wrong number of arguments" in err(cmd, *(["x"] * n)), (cmd, n)
    assert "syntax error" in err("PRESENCE.JOIN", "c", "m", "meta", "EX", "1")
    assert "syntax error" in err("PRESENCE.JOIN", "c", "m", "meta", "TTL", "1", "x")
    assert "not an integer" in err("PRESENCE.JOIN", "c", "m", "TTL", "soon")
    assert "invalid TTL" in err("PRESENCE.JOIN", "c", "m", "TTL", "0")
    assert "invalid TTL" in err("PRESENCE.JOIN", "c", "m", "TTL", "-3")
    assert "invalid TTL" in err("PRESENCE.JOIN", "c", "m", "TTL", str(10 ** 9))
    assert "channel name longer than 1024" in err("PRESENCE.JOIN", "c" * 1025, "m")
    assert "channel name longer than 1024" in err("PRESENCE.LIST", "c" * 1025)
    assert "channel name is empty" in err("PRESENCE.COUNT", "")
    assert "member name longer than 512" in err("PRESENCE.JOIN", "c", "m" * 513)
    assert "member name is empty" in err("PRESENCE.JOIN", "c", "")
    assert "metadata longer than 4096" in err("PRESENCE.JOIN", "c", "m", "x" * 4097)
    assert r.execute_command("PRESENCE.JOIN", "c" * 1024, "m" * 512, "x" * 4096) == 1
    # COMMAND DOCS answers for each
    docs = n1.call("COMMAND", "DOCS", "presence.join", "presence.leave", "presence.list",
                   "presence.count")
    flat = docs if isinstance(docs, list) else [x for kv in docs.items() for x in kv]
    names = [flat[i] for i in range(0, len(flat), 2)]
    assert names == [b"presence.join", b"presence.leave", b"presence.list", b"presence.count"]
    for i in range(1, len(flat), 2):
        d = flat[i]
        d = d if isinstance(d, dict) else {d[j]: d[j + 1] for j in range(0, len(d), 2)}
        assert d[b"summary"] and d[b"group"] == b"cohort"


# --- a chat room across three nodes -------------------------------------------------------


def test_chat_room_three_nodes(cluster_factory):
    nodes = cluster_factory(3)
    users = {"n1": ["ann", "al"], "n2": ["bea"], "n3": ["cy", "cat", "cod"]}
    watch = client(nodes[2]).pubsub()
    watch.subscribe("__presence__:lobby")
    subscribed(watch, 1)
    for node in nodes:
        for u in users[node.name]:
            assert client(node).execute_command(
                "PRESENCE.JOIN", "lobby", u, json.dumps({"name": u.title()})) == 1
    want = [(u, json.dumps({"name": u.title()}), n) for n, us in users.items() for u in us]
    wait_listing(nodes, "lobby", want)
    for node in nodes:
        assert client(node).execute_command("PRESENCE.COUNT", "lobby") == 6
    joins = events(watch, 6)
    assert sorted((e["member"], e["node"]) for e in joins) == sorted((u, n) for u, _, n in want)
    assert all(e["event"] == "join" and e["channel"] == "lobby" for e in joins)
    assert {e["member"]: json.loads(e["meta"])["name"] for e in joins}["bea"] == "Bea"

    # every node subscribes to the room (and one by pattern); every node publishes
    subs = []
    for node in nodes:
        p = client(node).pubsub()
        p.subscribe("chat:lobby")
        subscribed(p, 1)
        subs.append(p)
    pat = client(nodes[1]).pubsub()
    pat.psubscribe("chat:*")
    subscribed(pat, 1)
    wait_numsub(nodes, "chat:lobby", 3)
    assert helpers.wait_for(
        lambda: all(client(n).execute_command("PUBSUB", "NUMPAT") == 1 for n in nodes),
        scaled(5))
    per = 300

    def publish(node):
        r = client(node)
        pipe = r.pipeline(transaction=False)
        for i in range(per):
            pipe.publish("chat:lobby", "%s:%d" % (node.name, i))
        res = pipe.execute()
        assert all(x == 4 for x in res), set(res)  # 3 channel + 1 pattern subscriber

    threads = [threading.Thread(target=publish, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in subs + [pat]:
        got = {n.name: [] for n in nodes}
        for _ in range(per * 3):
            m = next_message(p)
            assert m["channel"] == b"chat:lobby"
            who, i = m["data"].decode().split(":")
            got[who].append(int(i))
        for who, seq in got.items():
            assert seq == list(range(per)), "%s's messages out of order or missing" % who
        assert p.get_message(ignore_subscribe_messages=True, timeout=0.3) is None

    # a user leaves on n3: every node lists five, the watcher sees the leave
    assert client(nodes[2]).execute_command("PRESENCE.LEAVE", "lobby", "cod") == 1
    want = [w for w in want if w[0] != "cod"]
    wait_listing(nodes, "lobby", want)
    (e,) = events(watch, 1)
    assert (e["event"], e["member"], e["node"], e["reason"]) == ("leave", "cod", "n3", "left")
    # a watcher on n1 sees n2's join and leave too, in order
    w1 = client(nodes[0]).pubsub()
    w1.subscribe("__presence__:lobby")
    subscribed(w1, 1)
    client(nodes[1]).execute_command("PRESENCE.JOIN", "lobby", "bo", "x")
    client(nodes[1]).execute_command("PRESENCE.JOIN", "lobby", "bo", "y")  # update
    client(nodes[1]).execute_command("PRESENCE.LEAVE", "lobby", "bo")
    ev = events(w1, 3)
    assert [(e["event"], e.get("meta")) for e in ev] == [("join", "x"), ("update", "y"),
                                                         ("leave", None)]
    for p in subs + [pat, watch, w1]:
        p.close()


def test_kill9_users_leave_everywhere_and_restart_gets_state(cluster_factory):
    cl = cluster_factory(3)
    n1, n2, n3 = cl
    watchers = []
    for node in (n1, n2):
        p = client(node).pubsub()
        p.subscribe("__presence__:room")
        subscribed(p, 1)
        watchers.append(p)
    client(n1).execute_command("PRESENCE.JOIN", "room", "a1", "m")
    client(n2).execute_command("PRESENCE.JOIN", "room", "b1", "m")
    for i in range(5):
        client(n3).execute_command("PRESENCE.JOIN", "room", "c%d" % i, "m")
    client(n3).execute_command("PRESENCE.JOIN", "other", "c0", "m")
    everyone = [("a1", "m", "n1"), ("b1", "m", "n2")] + [("c%d" % i, "m", "n3")
                                                          for i in range(5)]
    wait_listing(cl, "room", everyone)
    for p in watchers:
        assert len(events(p, 7)) == 7

    n3.kill9()
    cl.wait_state([n1, n2], "n3", "dead", timeout=scaled(5))
    wait_listing([n1, n2], "room", everyone[:2])
    assert client(n1).execute_command("PRESENCE.COUNT", "other") == 0
    for p in watchers:
        left = events(p, 5)
        assert sorted(e["member"] for e in left) == ["c%d" % i for i in range(5)]
        assert all(e["event"] == "leave" and e["reason"] == "node_gone" and e["node"] == "n3"
                   for e in left)

    # meanwhile the others change; the restarted node gets their current state
    client(n1).execute_command("PRESENCE.JOIN", "room", "a2", "later")
    client(n2).execute_command("PRESENCE.LEAVE", "room", "b1")
    n3.start()
    cl.wait_converged()
    wait_listing(cl, "room", [("a1", "m", "n1"), ("a2", "later", "n1")])
    # and its own new entries reach the others
    client(n3).execute_command("PRESENCE.JOIN", "room", "c9", "new")
    wait_listing(cl, "room", [("a1", "m", "n1"), ("a2", "later", "n1"), ("c9", "new", "n3")])
    for p in watchers:
        p.close()


def test_ttl_expiry_with_leave_event(cluster_factory):
    cl = cluster_factory(3)
    n1, n2, n3 = cl
    watch = client(n3).pubsub()
    watch.subscribe("__presence__:t")
    subscribed(watch, 1)
    r = client(n1)
    assert r.execute_command("PRESENCE.JOIN", "t", "brief", "", "TTL", "1") == 1
    assert r.execute_command("PRESENCE.JOIN", "t", "kept", "", "TTL", "1") == 1
    wait_listing(cl, "t", [("brief", "", "n1"), ("kept", "", "n1")])
    # "kept" is refreshed (joined again) before its TTL runs out; "brief" is not
    end = time.monotonic() + 2.5
    while time.monotonic() < end:
        r.execute_command("PRESENCE.JOIN", "t", "kept", "", "TTL", "1")
        time.sleep(0.2)
    wait_listing(cl, "t", [("kept", "", "n1")], timeout=5)
    ev = events(watch, 3)
    assert [(e["event"], e["member"]) for e in ev[:2]] in ([("join", "brief"), ("join", "kept")],
                                                          [("join", "kept"), ("join", "brief")])
    assert (ev[2]["event"], ev[2]["member"], ev[2]["reason"]) == ("leave", "brief", "expired")
    wait_listing(cl, "t", [], timeout=10)  # no more refreshes: it expires too
    assert events(watch, 1)[0]["member"] == "kept"
    watch.close()


def test_partition_heals_to_owners_state(cluster_factory):
    """n1 reaches n2 only through a proxy; the link is cut (n2 becomes
    unreachable, not dead: its entries stay on n1), n2's users change, and
    when the link is back n1 holds exactly n2's entries, with events."""
    cl = cluster_factory(2, start=False, options=FAST)
    n1, n2 = cl
    n1.cluster_port = low_free_port()
    proxy = PeerProxy(n2.cluster_port, helpers.free_port())
    n1.config = cl.node_config(n1, peers=[n1.peer_address, "127.0.0.1:%d" % proxy.port])
    n2.config = cl.node_config(n2, peers=[n1.peer_address, n2.peer_address])
    n1.start()
    n2.start()
    try:
        cl.wait_converged()
        r2 = client(n2)
        for u in ("u1", "u2", "u3"):
            r2.execute_command("PRESENCE.JOIN", "p", u, "old")
        wait_listing([n1], "p", [(u, "old", "n2") for u in ("u1", "u2", "u3")])
        watch = client(n1).pubsub()
        watch.subscribe("__presence__:p")
        subscribed(watch, 1)
        proxy.refusing = True
        proxy.reset()
        assert helpers.wait_for(lambda: n1.state_of("n2") != "alive", scaled(5))
        r2.execute_command("PRESENCE.LEAVE", "p", "u1")
        r2.execute_command("PRESENCE.JOIN", "p", "u2", "new")
        r2.execute_command("PRESENCE.JOIN", "p", "u4", "")
        time.sleep(0.3)
        # still the old view on n1 (n2 is not dead)
        assert listing(n1, "p") == [(u, "old", "n2") for u in ("u1", "u2", "u3")]
        proxy.refusing = False
        cl.wait_converged()
        wait_listing([n1], "p", [("u2", "new", "n2"), ("u3", "old", "n2"), ("u4", "", "n2")])
        ev = {(e["event"], e["member"]) : e for e in events(watch, 3)}
        assert set(ev) == {("leave", "u1"), ("update", "u2"), ("join", "u4")}
        assert ev[("leave", "u1")]["reason"] == "resync"
        watch.close()
    finally:
        proxy.close()


def test_many_entries_identical_on_every_node(cluster_factory):
    nodes = cluster_factory(3)
    total = 100000
    for k, node in enumerate(nodes):
        pipe = client(node).pipeline(transaction=False)
        for i in range(k, total, 3):
            pipe.execute_command("PRESENCE.JOIN", "big", "user:%d" % i, "m%d" % (i % 7))
        res = pipe.execute()
        assert all(x == 1 for x in res), [x for x in res if x != 1][:3]
    want = sorted((b"user:%d" % i, b"m%d" % (i % 7), nodes[i % 3].name.encode())
                  for i in range(total))
    for node in nodes:
        r = client(node)
        assert helpers.wait_for(lambda: r.execute_command("PRESENCE.COUNT", "big") == total,
                                scaled(30))
        got = sorted(tuple(x) for x in r.execute_command("PRESENCE.LIST", "big"))
        assert got == want, "%s lists other entries" % node.name


# --- hostile input ------------------------------------------------------------------------


def test_hostile_input_bounded(cluster_factory):
    cl = cluster_factory(3, start=False)
    for n in cl:
        n.config["client"]["presence_max_entries"] = 20000
    cl.start()
    n1, n2, n3 = cl
    conn = n1.conn(timeout=scaled(60))
    try:
        # huge names and metadata: clear errors, nothing stored
        huge = "x" * (1 << 20)
        for args, text in ((("PRESENCE.JOIN", huge, "m"), b"channel name longer"),
                           (("PRESENCE.JOIN", "c", huge), b"member name longer"),
                           (("PRESENCE.JOIN", "c", "m", huge), b"metadata longer"),
                           (("PRESENCE.JOIN", "c", "m", huge, "TTL", "5"), b"metadata longer"),
                           (("PRESENCE.JOIN",), b"wrong number"),
                           (("PRESENCE.LIST", "a", "b"), b"wrong number")):
            with pytest.raises(Exception) as e:
                conn.call(*args)
            assert text.decode() in str(e.value), (args[0], str(e.value)[:100])
        assert conn.call("PRESENCE.COUNT", "c") == 0
        rss0 = rss_kb(n1)
        # a JOIN flood: 30,000 distinct entries, each with 1 KB of metadata; the node
        # holds 20,000 and refuses the rest with a clear error
        meta = "y" * 1000
        pipe = client(n1).pipeline(transaction=False)
        for i in range(30000):
            pipe.execute_command("PRESENCE.JOIN", "flood", "u%d" % i, meta)
        res = pipe.execute(raise_on_error=False)
        ok = [x for x in res if x == 1]
        errs = [x for x in res if isinstance(x, redis.ResponseError)]
        assert len(ok) == 20000 and len(errs) == 10000
        assert "presence_max_entries 20000" in str(errs[0])
        # refreshing held entries still works at the limit
        assert conn.call("PRESENCE.JOIN", "flood", "u1", "z") == 0
        grew = rss_kb(n1) - rss0
        assert grew < 200 * 1024, "RSS grew by %d KB for 20,000 entries" % grew
        for n in (n2, n3):
            assert helpers.wait_for(lambda: n.call("PRESENCE.COUNT", "flood") == 20000,
                                    scaled(20))
        # 100,000 pattern subscriptions on n2: a publish on n1 still reaches them
        sub = n2.conn(timeout=scaled(60))
        for k in range(0, 100000, 10000):
            sub.raw.send(helpers.encode("PSUBSCRIBE", *("p%d.*" % i for i in range(k, k + 10000))))
            for _ in range(10000):
                sub.raw.read_reply(scaled(30))
        assert helpers.wait_for(lambda: n1.call("PUBSUB", "NUMPAT") == 100000, scaled(30))
        assert n1.call("PUBLISH", "p99999.x", "hi") == 1
        m = helpers.decode1(sub.raw.read_reply(scaled(10)))
        assert m[0] == b"pmessage" and m[3] == b"hi"
        assert rss_kb(n2) < 1024 * 1024  # bounded: well under a GB
        sub.close()
        for n in cl:
            assert n.call("PING") == b"PONG"
    finally:
        conn.close()


def test_slow_subscriber_closed_others_keep_receiving(cluster_factory):
    cl = cluster_factory(3, start=False)
    for n in cl:
        n.config["client"]["pubsub_output_limit_hard"] = "1mb"
        n.config["client"]["pubsub_output_limit_soft"] = "0"
    cl.start()
    n1, n2, n3 = cl
    # the slow one: subscribes on n2 and never reads (a small receive buffer)
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", n2.port))
    slow.sendall(helpers.encode("SUBSCRIBE", "feed"))
    fast = []
    for n in (n2, n3):
        p = client(n).pubsub()
        p.subscribe("feed")
        subscribed(p, 1)
        fast.append(p)
    wait_numsub(cl, "feed", 3)
    count = 10000  # 10 MB: more than the slow one's limit and the kernel's buffers
    payload = "z" * 1000
    got = [[] for _ in fast]

    def read(i, p):
        while len(got[i]) < count:
            m = next_message(p, timeout=30)
            got[i].append(int(m["data"].split(b":")[0]))

    readers = [threading.Thread(target=read, args=(i, p)) for i, p in enumerate(fast)]
    for t in readers:
        t.start()
    r = client(n1)
    for i in range(0, count, 100):
        # paced by the readers (never more than ~300 KB behind, under their limit),
        # not by the slow one
        assert helpers.wait_for(lambda: min(len(g) for g in got) >= i - 200, scaled(30))
        pipe = r.pipeline(transaction=False)
        for j in range(i, i + 100):
            pipe.publish("feed", "%d:%s" % (j, payload))
        pipe.execute()
    for t in readers:
        t.join(scaled(60))
    for g in got:
        assert g == list(range(count))
    assert helpers.wait_for(
        lambda: int(n2.info("stats")["pubsub_output_limit_disconnects"]) >= 1, scaled(10))
    wait_numsub(cl, "feed", 2)
    slow.close()
    for p in fast:
        p.close()


def test_declared_dead_by_the_store_then_back(cluster_factory, tmp_path):
    """With a shared store a hung node (SIGSTOP) is declared dead when its row
    expires, perhaps while its peer links stay open: its entries go everywhere
    (node_gone); once it runs again every node lists them again, whether its
    links were replaced (a full set on each) or kept (the others ask it for
    its full set: PRESENCE_FULL_REQUEST)."""
    cl = cluster_factory(3, start=False, options=dict(FAST, dead_after="1s"))
    for n in cl:
        n.config["store"] = {"url": "sqlite://%s" % os.path.join(str(tmp_path), "shared.db"),
                             "member_lease": "2s"}
    cl.start(timeout=15)
    n1, n2, n3 = cl
    for i in range(3):
        client(n3).execute_command("PRESENCE.JOIN", "s", "c%d" % i, "m")
    client(n1).execute_command("PRESENCE.JOIN", "s", "a", "m")
    everyone = [("a", "m", "n1")] + [("c%d" % i, "m", "n3") for i in range(3)]
    wait_listing(cl, "s", everyone)
    n3.sigstop()
    try:
        cl.wait_state([n1, n2], "n3", "dead", timeout=scaled(20))
        wait_listing([n1, n2], "s", everyone[:1])
    finally:
        n3.sigcont()
    cl.wait_converged(timeout=20)
    wait_listing(cl, "s", everyone, timeout=15)
