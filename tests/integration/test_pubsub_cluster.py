"""Cluster-wide publish/subscribe, end to end with real cohortd nodes.

Checks what README.md ("Cluster-wide pub/sub") promises: a message published
on any node reaches the subscribers of every node (channels, patterns, shard
channels), in publication order per publisher, at most once, also across a
link reset; a node sends a message only to members that announced a
matching subscriber (the peer message counter stays still otherwise);
PUBLISH and PUBSUB NUMSUB / SHARDNUMSUB / CHANNELS / NUMPAT count every node
in contact; interest is right after unsubscribes, disconnects and restarts;
messages a member wanted while its link was down are counted as lost.
The socket.io test runs tests/integration/socketio/adapter_check.js (three
socket.io servers on three nodes, @socket.io/redis-adapter over node-redis).
"""

import json
import os
import shutil
import subprocess
import time

import pytest
import redis

import helpers
from cluster_harness import cluster_factory, requires_cohort  # noqa: F401
from conftest import scaled
from peer_proxy import PeerProxy
from test_cluster_hostile import low_free_port

pytestmark = [requires_cohort, pytest.mark.cohort_only]

HERE = os.path.dirname(os.path.abspath(__file__))
SOCKETIO_DIR = os.path.join(HERE, "socketio")
FAST = {"lease": "400ms", "heartbeat": "50ms", "suspect_after": "200ms",
        "probe_timeout": "100ms", "flush_timeout": "300ms", "dead_after": "60s"}


def client(node):
    return redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=scaled(10))


def next_message(p, timeout=5.0):
    """The next message (not a confirmation) of a redis-py PubSub."""
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        m = p.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if m is not None:
            return m
    raise AssertionError("no pub/sub message within %.1fs" % scaled(timeout))


def no_message(p, wait=0.5):
    end = time.monotonic() + scaled(wait)
    while time.monotonic() < end:
        m = p.get_message(ignore_subscribe_messages=True, timeout=0.1)
        assert m is None, "unexpected message %r" % (m,)


def subscribed(p, n):
    """Reads n subscribe confirmations of p."""
    for _ in range(n):
        deadline = time.monotonic() + scaled(5)
        while True:
            m = p.get_message(timeout=0.2)
            if m is not None:
                assert m["type"] in ("subscribe", "psubscribe", "ssubscribe"), m
                break
            assert time.monotonic() < deadline, "no confirmation"


def numsub(node, channel, shard=False):
    r = client(node)
    try:
        if shard:
            v = r.execute_command("PUBSUB", "SHARDNUMSUB", channel)
        else:
            v = r.execute_command("PUBSUB", "NUMSUB", channel)
        return int(v[1])
    finally:
        r.close()


def wait_numsub(nodes, channel, n, shard=False, timeout=5.0):
    for node in nodes:
        ok = helpers.wait_for(lambda: numsub(node, channel, shard) == n, scaled(timeout))
        assert ok, "%s: NUMSUB %s = %d, want %d" % (node.name, channel,
                                                    numsub(node, channel, shard), n)


def peer_sent(node):
    return int(node.info("cohort")["pubsub_peer_messages_sent"])


def peer_lost(node):
    return int(node.info("cohort")["pubsub_peer_messages_lost"])


# --- delivery -----------------------------------------------------------------------


def test_publish_reaches_subscriber_on_other_node(cluster_factory):
    n1, n2 = cluster_factory(2)
    sub = client(n2).pubsub()
    sub.subscribe("room")
    subscribed(sub, 1)
    wait_numsub([n1, n2], "room", 1)
    pub = client(n1)
    assert pub.publish("room", "hello") == 1
    m = next_message(sub)
    assert m["type"] == "message" and m["channel"] == b"room" and m["data"] == b"hello"
    # redis-cli as publisher on n1 and as subscriber on n2
    out = subprocess.run(["redis-cli", "-p", str(n1.port), "PUBLISH", "room", "from-cli"],
                         capture_output=True, text=True, timeout=scaled(10))
    assert out.stdout.strip() == "1"
    assert next_message(sub)["data"] == b"from-cli"
    cli = subprocess.Popen(["redis-cli", "-p", str(n2.port), "SUBSCRIBE", "cli-room"],
                           stdout=subprocess.PIPE, text=True)
    try:
        wait_numsub([n1], "cli-room", 1)
        assert pub.publish("cli-room", "to-cli") == 1
        lines = []
        deadline = time.monotonic() + scaled(5)
        while "to-cli" not in lines and time.monotonic() < deadline:
            lines.append(cli.stdout.readline().strip())
        assert "to-cli" in lines, lines
    finally:
        cli.kill()
        cli.wait()
    sub.close()


def test_pattern_subscribers_on_two_nodes(cluster_factory):
    n1, n2, n3 = cluster_factory(3)
    subs = []
    for n in (n2, n3):
        p = client(n).pubsub()
        p.psubscribe("news.*")
        subscribed(p, 1)
        subs.append(p)
    for n in (n1, n2, n3):
        ok = helpers.wait_for(lambda: client(n).execute_command("PUBSUB", "NUMPAT") == 2,
                              scaled(5))
        assert ok, "%s: NUMPAT is not 2" % n.name
    assert client(n1).publish("news.uk", "storm") == 2
    assert client(n1).publish("sport.uk", "goal") == 0
    for p in subs:
        m = next_message(p)
        assert (m["type"], m["pattern"], m["channel"], m["data"]) == (
            "pmessage", b"news.*", b"news.uk", b"storm")
        no_message(p, 0.3)
    # the publishing node's own pattern subscriber counts and receives too
    p1 = client(n1).pubsub()
    p1.psubscribe("news.u?")
    subscribed(p1, 1)
    assert client(n1).publish("news.uk", "again") == 3
    assert next_message(p1)["data"] == b"again"
    for p in subs + [p1]:
        p.close()


def test_order_of_1000_messages_from_one_publisher(cluster_factory):
    n1, n2, n3 = cluster_factory(3)
    subs = []
    for n in (n2, n3):
        p = client(n).pubsub()
        p.subscribe("seq")
        subscribed(p, 1)
        subs.append(p)
    wait_numsub([n1], "seq", 2)
    pipe = client(n1).pipeline(transaction=False)
    for i in range(1000):
        pipe.publish("seq", str(i))
    assert pipe.execute() == [2] * 1000
    for p in subs:
        got = [int(next_message(p)["data"]) for _ in range(1000)]
        assert got == list(range(1000))
        no_message(p, 0.3)
        p.close()


def test_pipelined_messages_batched_in_order(cluster_factory):
    """A pipelined burst goes to a member in few MESSAGE frames (several
    messages each), and every subscriber kind still gets each message once, in
    publication order, with its own channel and kind."""
    n1, n2 = cluster_factory(2)
    ch = client(n2).pubsub()
    ch.subscribe("b1")
    subscribed(ch, 1)
    pat = client(n2).pubsub()
    pat.psubscribe("b*")
    subscribed(pat, 1)
    sh = helpers.RawConn(n2.port, timeout=scaled(10))  # redis-py 4.3 has no ssubscribe
    assert helpers.decode1(sh.cmd("SSUBSCRIBE", "s1")) == [b"ssubscribe", b"s1", 1]
    wait_numsub([n1], "b1", 1)
    wait_numsub([n1], "s1", 1, shard=True)
    frames0, sent0 = int(n1.info("cohort")["pubsub_peer_message_frames_sent"]), peer_sent(n1)
    pipe = client(n1).pipeline(transaction=False)
    want_ch, want_pat, want_sh = [], [], []
    for i in range(3000):
        if i % 5 == 4:
            pipe.execute_command("SPUBLISH", "s1", "s%d" % i)
            want_sh.append(b"s%d" % i)
        else:
            c = "b1" if i % 2 else "b2"
            pipe.publish(c, "m%d" % i)
            if c == "b1":
                want_ch.append(b"m%d" % i)
            want_pat.append((c.encode(), b"m%d" % i))
    pipe.execute()
    assert [next_message(ch)["data"] for _ in want_ch] == want_ch
    got = []
    for _ in want_pat:
        m = next_message(pat)
        assert m["type"] == "pmessage" and m["pattern"] == b"b*"
        got.append((m["channel"], m["data"]))
    assert got == want_pat
    for w in want_sh:
        assert helpers.decode1(sh.read_reply()) == [b"smessage", b"s1", w]
    sh.close()
    for p in (ch, pat):
        no_message(p, 0.3)
        p.close()
    sent = peer_sent(n1) - sent0
    frames = int(n1.info("cohort")["pubsub_peer_message_frames_sent"]) - frames0
    assert sent == 3000
    assert 0 < frames < sent, "%d frames for %d messages: not batched" % (frames, sent)


def test_numsub_across_nodes(cluster_factory):
    n1, n2, n3 = cluster_factory(3)
    held, shard = [], []  # redis-py 4.3 has no ssubscribe: shard subscribers are raw
    for node, count in ((n1, 2), (n2, 1), (n3, 3)):
        for _ in range(count):
            p = client(node).pubsub()
            p.subscribe("c")
            subscribed(p, 1)
            held.append(p)
            raw = helpers.RawConn(node.port, timeout=scaled(5))
            assert helpers.decode1(raw.cmd("SSUBSCRIBE", "s")) == [b"ssubscribe", b"s", 1]
            shard.append(raw)
    only_n3 = client(n3).pubsub()
    only_n3.subscribe("far")
    subscribed(only_n3, 1)
    wait_numsub([n1, n2, n3], "c", 6)
    wait_numsub([n1, n2, n3], "s", 6, shard=True)
    wait_numsub([n1, n2], "far", 1)
    r1 = client(n1)
    assert r1.execute_command("PUBSUB", "NUMSUB", "c", "far", "none") == [
        b"c", 6, b"far", 1, b"none", 0]
    assert sorted(r1.execute_command("PUBSUB", "CHANNELS")) == [b"c", b"far"]
    assert r1.execute_command("PUBSUB", "CHANNELS", "f*") == [b"far"]
    assert r1.execute_command("PUBSUB", "SHARDCHANNELS") == [b"s"]
    assert r1.publish("c", "x") == 6
    assert r1.execute_command("SPUBLISH", "s", "y") == 6
    for p in held:
        assert next_message(p)["data"] == b"x"
    for raw in shard:
        assert helpers.decode1(raw.read_reply()) == [b"smessage", b"s", b"y"]
    # disconnecting clients takes their subscriptions off every node's count
    for p in held[:3]:
        p.close()
    for raw in shard[:3]:
        raw.close()
    wait_numsub([n1, n2, n3], "c", 3)
    wait_numsub([n1, n2, n3], "s", 3, shard=True)
    for p in held[3:] + [only_n3]:
        p.close()
    for raw in shard[3:]:
        raw.close()
    wait_numsub([n1, n2, n3], "c", 0)
    wait_numsub([n1, n2, n3], "s", 0, shard=True)
    assert r1.execute_command("PUBSUB", "CHANNELS") == []


def test_unsubscribe_stops_sending(cluster_factory):
    n1, n2 = cluster_factory(2)
    p = client(n2).pubsub()
    p.subscribe("u")
    subscribed(p, 1)
    wait_numsub([n1], "u", 1)
    before = peer_sent(n1)
    assert client(n1).publish("u", "one") == 1
    assert next_message(p)["data"] == b"one"
    assert peer_sent(n1) == before + 1
    p.unsubscribe("u")
    wait_numsub([n1], "u", 0)
    sent = peer_sent(n1)
    for i in range(20):
        assert client(n1).publish("u", "nobody %d" % i) == 0
    assert peer_sent(n1) == sent, "messages went to a member without a subscriber"
    # a message nobody anywhere wants is not sent either
    assert client(n1).publish("elsewhere", "x") == 0
    assert peer_sent(n1) == sent
    p.close()


def test_restart_resends_interest(cluster_factory):
    cl = cluster_factory(2, options=FAST)
    n1, n2 = cl
    p = client(n2).pubsub()
    p.subscribe("r")
    subscribed(p, 1)
    wait_numsub([n1], "r", 1)
    # the publisher's node restarts: it learns n2's interest from the full set
    n1.terminate()
    n1.start()
    cl.wait_converged()
    wait_numsub([n1], "r", 1)
    assert client(n1).publish("r", "after n1 restart") == 1
    assert next_message(p)["data"] == b"after n1 restart"
    # the subscriber's node restarts: its subscribers are gone, and n1 knows
    p.close()
    q = client(n1).pubsub()  # n2 must learn this one again after its restart
    q.subscribe("back")
    subscribed(q, 1)
    wait_numsub([n2], "back", 1)
    n2.terminate()
    n2.start()
    cl.wait_converged()
    wait_numsub([n1], "r", 0)
    wait_numsub([n2], "back", 1)
    assert client(n2).publish("back", "to n1") == 1
    assert next_message(q)["data"] == b"to n1"
    q.close()


def test_large_interest_sets_span_frames(cluster_factory):
    """30,000 channels and 3,000 patterns (more than one INTEREST frame, both
    as changes within one turn and as the full set after a restart)."""
    cl = cluster_factory(2, options=FAST)
    n1, n2 = cl
    pad = "x" * 40
    names = ["big:%s:%d" % (pad, i) for i in range(30000)]
    raw = helpers.RawConn(n2.port, timeout=scaled(30))
    try:
        raw.send(helpers.encode("SUBSCRIBE", *names))
        for _ in names:
            raw.read_reply()
        raw.send(helpers.encode("PSUBSCRIBE", *["pat:%s:%d:*" % (pad, i) for i in range(3000)]))
        for _ in range(3000):
            raw.read_reply()

        def seen_from_n1():
            r = client(n1)
            try:
                return (len(r.execute_command("PUBSUB", "CHANNELS", "big:*")),
                        r.execute_command("PUBSUB", "NUMPAT"))
            finally:
                r.close()
        assert helpers.wait_for(lambda: seen_from_n1() == (30000, 3000), scaled(10)), \
            seen_from_n1()
        n1.terminate()
        n1.start()
        cl.wait_converged()
        assert helpers.wait_for(lambda: seen_from_n1() == (30000, 3000), scaled(10)), \
            seen_from_n1()
        assert client(n1).publish(names[-1], "m") == 1
        assert client(n1).publish("pat:%s:2999:z" % pad, "p") == 1
        got = [helpers.decode1(raw.read_reply()) for _ in range(2)]
        assert got[0] == [b"message", names[-1].encode(), b"m"]
        assert got[1][0] == b"pmessage" and got[1][3] == b"p"
    finally:
        raw.close()


def _proxied_pair(cluster_factory):
    """n1 (which opens the link) reaches n2 only through a PeerProxy."""
    cl = cluster_factory(2, start=False, options=FAST)
    n1, n2 = cl
    n1.cluster_port = low_free_port()
    proxy = PeerProxy(n2.cluster_port, helpers.free_port())
    n1.config = cl.node_config(n1, peers=[n1.peer_address, "127.0.0.1:%d" % proxy.port])
    n2.config = cl.node_config(n2, peers=[n1.peer_address, n2.peer_address])
    n1.start()
    n2.start()
    cl.wait_converged()
    return cl, n1, n2, proxy


def test_no_duplicates_after_link_reset(cluster_factory):
    cl, n1, n2, proxy = _proxied_pair(cluster_factory)
    try:
        sub = client(n2).pubsub()
        sub.subscribe("d")
        subscribed(sub, 1)
        wait_numsub([n1], "d", 1)
        pub = client(n1)
        seq = 0
        for round_ in range(5):
            pipe = pub.pipeline(transaction=False)
            for _ in range(200):
                pipe.publish("d", str(seq))
                seq += 1
            pipe.execute()
            proxy.reset()  # the link breaks after (part of) the batch went out
            cl.wait_converged()
            wait_numsub([n1], "d", 1)
        assert pub.publish("d", "last") == 1
        got = []
        while True:
            m = next_message(sub, timeout=10)
            if m["data"] == b"last":
                break
            got.append(int(m["data"]))
        assert len(got) == len(set(got)), "a message arrived twice"
        assert got == sorted(got), "messages out of publication order"
        assert all(0 <= g < seq for g in got)
        no_message(sub, 0.3)
        sub.close()
    finally:
        proxy.close()


def test_lost_while_link_down(cluster_factory):
    cl, n1, n2, proxy = _proxied_pair(cluster_factory)
    try:
        sub = client(n2).pubsub()
        sub.subscribe("l")
        subscribed(sub, 1)
        wait_numsub([n1], "l", 1)
        lost0 = peer_lost(n1)
        proxy.refusing = True
        proxy.reset()
        assert helpers.wait_for(lambda: n1.state_of("n2") != "alive", scaled(5))
        assert helpers.wait_for(lambda: numsub(n1, "l") == 0, scaled(5))
        # out of contact: not counted by PUBLISH, counted as lost, not sent
        for i in range(5):
            assert client(n1).publish("l", "gone %d" % i) == 0
        assert peer_lost(n1) == lost0 + 5
        assert client(n1).publish("unwanted", "x") == 0
        assert peer_lost(n1) == lost0 + 5
        proxy.refusing = False
        cl.wait_converged()
        wait_numsub([n1], "l", 1)
        assert client(n1).publish("l", "back") == 1
        assert next_message(sub)["data"] == b"back"  # the lost ones never arrive
        no_message(sub, 0.3)
        m = n1.metrics()
        assert m["cohort_pubsub_peer_messages_lost_total"] == lost0 + 5
        sub.close()
    finally:
        proxy.close()


# --- socket.io with @socket.io/redis-adapter ------------------------------------------


def _socketio_ready():
    return (shutil.which("node") and
            os.path.isdir(os.path.join(SOCKETIO_DIR, "node_modules", "@socket.io",
                                       "redis-adapter")))


@pytest.mark.parametrize("adapter", ["classic", "sharded"])
def test_socketio_redis_adapter_across_nodes(cluster_factory, adapter):
    """Three socket.io servers, one per node (adapter_check.js)."""
    if not _socketio_ready():
        pytest.fail("socket.io packages missing: run scripts/install-deps.sh "
                    "(npm install in tests/integration/socketio)")
    nodes = cluster_factory(3)
    out = subprocess.run(["node", os.path.join(SOCKETIO_DIR, "adapter_check.js"), adapter] +
                         [str(n.port) for n in nodes],
                         capture_output=True, text=True, timeout=scaled(90), cwd=SOCKETIO_DIR)
    assert out.returncode == 0, "adapter_check.js failed:\n%s\n%s" % (out.stdout, out.stderr)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    # the room broadcast from server 3 reached the clients of servers 1 and 2 only
    assert res["room"] == [["to room1 from server 3"], ["to room1 from server 3"], []]
    assert res["everyone"] == [["to everyone from server 2"]] * 3
    assert res["fetched"] == sorted(res["client_ids"][:2])
    assert res["acks"] == ["pong from server 1", "pong from server 2"]
    assert res["server_counts"] == [3, 3, 3]
