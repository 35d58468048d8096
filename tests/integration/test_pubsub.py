"""Publish/subscribe on one node, end to end: redis-py's PubSub, RESP3 pushes
interleaved with replies, subscribers that do not read (output limits), a
connection holding 100,000 patterns, channel names of max_bulk_len bytes,
RESET, the idle timeout, INFO and /metrics. Byte-exact comparisons with
redis-server are in corpus/pubsub.txt (test_differential.py); these tests
also pass with COHORTD=redis-server, except the ones marked cohort_only."""

import socket
import threading
import time

import pytest

import helpers
from conftest import FLAVOR, scaled


def wait_numsub(d, channel, n, timeout=5.0):
    def check():
        with d.raw() as c:
            v = helpers.decode1(c.cmd("PUBSUB", "NUMSUB", channel))
        return v[1] == n
    assert helpers.wait_for(check, scaled(timeout)), "NUMSUB %s != %d" % (channel, n)


def get(p, timeout=5.0):
    """The next message of a redis-py PubSub (confirmations included)."""
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        m = p.get_message(timeout=0.2)
        if m is not None:
            return m
    raise AssertionError("no pub/sub message within %.1fs" % scaled(timeout))


def test_redis_py_subscribe_publish_unsubscribe(cohortd):
    d = cohortd()
    r = d.client()
    p = r.pubsub()
    p.subscribe("room:a", "room:b")
    assert get(p) == {"type": "subscribe", "pattern": None, "channel": b"room:a", "data": 1}
    assert get(p) == {"type": "subscribe", "pattern": None, "channel": b"room:b", "data": 2}
    p.psubscribe("news.*")
    assert get(p) == {"type": "psubscribe", "pattern": None, "channel": b"news.*", "data": 3}
    assert r.publish("room:a", "hello") == 1
    assert r.publish("news.today", "extra") == 1
    assert r.publish("nobody", "x") == 0
    assert get(p) == {"type": "message", "pattern": None, "channel": b"room:a",
                      "data": b"hello"}
    assert get(p) == {"type": "pmessage", "pattern": b"news.*", "channel": b"news.today",
                      "data": b"extra"}
    assert r.pubsub_numsub("room:a", "room:b", "nobody") == [
        (b"room:a", 1), (b"room:b", 1), (b"nobody", 0)]
    assert r.pubsub_numpat() == 1
    assert sorted(r.pubsub_channels()) == [b"room:a", b"room:b"]
    assert r.pubsub_channels("room:[a]") == [b"room:a"]
    p.unsubscribe("room:a")
    assert get(p) == {"type": "unsubscribe", "pattern": None, "channel": b"room:a", "data": 2}
    p.punsubscribe()
    assert get(p) == {"type": "punsubscribe", "pattern": None, "channel": b"news.*",
                      "data": 1}
    assert r.publish("room:a", "gone") == 0
    assert r.publish("room:b", "still") == 1
    assert get(p)["data"] == b"still"
    p.close()
    wait_numsub(d, "room:b", 0)


def test_message_order_per_publisher(cohortd):
    """Messages reach each subscriber in the order they were published."""
    d = cohortd()
    r = d.client()
    subs = [r.pubsub() for _ in range(3)]
    for s in subs:
        s.subscribe("seq")
        assert get(s)["type"] == "subscribe"
    pipe = r.pipeline(transaction=False)
    for i in range(2000):
        pipe.publish("seq", str(i))
    assert pipe.execute() == [3] * 2000
    for s in subs:
        got = [int(get(s)["data"]) for _ in range(2000)]
        assert got == list(range(2000))
        s.close()


def test_shard_channels_redis_py(cohortd):
    d = cohortd()
    with d.raw() as sub, d.raw() as pub:
        assert sub.cmd("SSUBSCRIBE", "orders") == \
            b"*3\r\n$10\r\nssubscribe\r\n$6\r\norders\r\n:1\r\n"
        assert pub.cmd("SPUBLISH", "orders", "o1") == b":1\r\n"
        assert pub.cmd("PUBLISH", "orders", "not shard") == b":0\r\n"
        assert pub.cmd("PUBSUB", "SHARDNUMSUB", "orders") == b"*2\r\n$6\r\norders\r\n:1\r\n"
        assert sub.read_reply() == b"*3\r\n$8\r\nsmessage\r\n$6\r\norders\r\n$2\r\no1\r\n"


def test_resp3_pushes_interleave_with_replies(cohortd):
    d = cohortd()
    with d.raw() as sub, d.raw() as pub:
        assert sub.cmd("HELLO", "3")[:1] == b"%"
        assert sub.cmd("SUBSCRIBE", "c3") == b">3\r\n$9\r\nsubscribe\r\n$2\r\nc3\r\n:1\r\n"
        assert sub.cmd("SET", "k", "v") == b"+OK\r\n"  # any command in RESP3
        assert pub.cmd("PUBLISH", "c3", "m1") == b":1\r\n"
        sub.send(helpers.encode("GET", "k"))
        assert sub.read_reply() == b">3\r\n$7\r\nmessage\r\n$2\r\nc3\r\n$2\r\nm1\r\n"
        assert sub.read_reply() == b"$1\r\nv\r\n"
        assert sub.cmd("PING") == b"+PONG\r\n"  # not the subscribe-mode array
        # publishing to itself: the push comes before the PUBLISH reply
        sub.send(helpers.encode("PUBLISH", "c3", "self"))
        assert sub.read_reply() == b">3\r\n$7\r\nmessage\r\n$2\r\nc3\r\n$4\r\nself\r\n"
        assert sub.read_reply() == b":1\r\n"
        # HELLO 2 while subscribed: RESP2 subscribe mode from then on
        assert sub.cmd("HELLO", "2")[:1] == b"*"
        assert sub.cmd("GET", "k").startswith(b"-ERR Can't execute 'get'")
        assert sub.cmd("UNSUBSCRIBE") == b"*3\r\n$11\r\nunsubscribe\r\n$2\r\nc3\r\n:0\r\n"
        assert sub.cmd("GET", "k") == b"$1\r\nv\r\n"


def test_close_drops_subscriptions(cohortd):
    d = cohortd()
    c = d.raw()
    c.cmd("SUBSCRIBE", "gone")
    c.cmd("PSUBSCRIBE", "g*")
    c.cmd("SSUBSCRIBE", "gs")
    with d.raw() as q:
        assert q.cmd("PUBLISH", "gone", "x") == b":2\r\n"
    c.close()
    wait_numsub(d, "gone", 0)
    with d.raw() as q:
        assert q.cmd("PUBSUB", "NUMPAT") == b":0\r\n"
        assert q.cmd("PUBSUB", "SHARDNUMSUB", "gs") == b"*2\r\n$2\r\ngs\r\n:0\r\n"
        assert q.cmd("PUBLISH", "gone", "x") == b":0\r\n"


def test_info_stats(cohortd):
    d = cohortd()
    with d.raw() as c:
        c.cmd("SUBSCRIBE", "i1", "i2")
        c.cmd("PSUBSCRIBE", "i*")
        c.cmd("SSUBSCRIBE", "is")
        stats = d.info("stats")
        assert stats["pubsub_channels"] == "2"
        assert stats["pubsub_patterns"] == "1"
        assert stats["pubsubshard_channels"] == "1"
        with d.raw() as q:
            line = helpers.decode1(q.cmd("CLIENT", "LIST"))
        line = line if isinstance(line, bytes) else line.encode()
        mine = [l for l in line.split(b"\n") if b" sub=2 " in l]
        assert len(mine) == 1, line
        assert b" flags=P " in mine[0] and b" psub=1 ssub=1 " in mine[0], mine[0]


def test_reset(cohortd):
    d = cohortd(config={"client": {"requirepass": "secret"}})
    with d.raw() as c:
        assert c.cmd("AUTH", "secret") == b"+OK\r\n"
        assert c.cmd("CLIENT", "SETNAME", "me") == b"+OK\r\n"
        assert c.cmd("HELLO", "3")[:1] == b"%"
        c.cmd("SUBSCRIBE", "r1")
        c.cmd("PSUBSCRIBE", "r*")
        assert c.cmd("RESET") == b"+RESET\r\n"
        # back to a new connection's state: RESP2, no name, not authenticated
        assert c.cmd("GET", "k") == b"-NOAUTH Authentication required.\r\n"
        assert c.cmd("AUTH", "secret") == b"+OK\r\n"
        assert c.cmd("CLIENT", "GETNAME") == b"$-1\r\n"
        assert c.cmd("GET", "k") == b"$-1\r\n"  # RESP2 null, not in subscribe mode
        assert c.cmd("PUBLISH", "r1", "x") == b":0\r\n"


def test_subscriber_has_no_idle_timeout(cohortd):
    """As redis-server: the idle timeout spares subscribers."""
    d = cohortd(config={"client": {"timeout": "1"}})
    sub = d.raw(timeout=10)
    idle = d.raw(timeout=10)
    try:
        assert sub.cmd("SUBSCRIBE", "quiet") == \
            b"*3\r\n$9\r\nsubscribe\r\n$5\r\nquiet\r\n:1\r\n"
        idle.cmd("PING")
        idle.read_until_closed(timeout=scaled(10))  # socket.timeout if still open
        with d.raw() as pub:
            assert pub.cmd("PUBLISH", "quiet", "still here") == b":1\r\n"
        assert sub.read_reply() == \
            b"*3\r\n$7\r\nmessage\r\n$5\r\nquiet\r\n$10\r\nstill here\r\n"
    finally:
        sub.close()
        idle.close()


# --- output limits ----------------------------------------------------------

def slow_socket(port):
    """A connection with a small receive buffer whose owner never reads."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(scaled(10))
    s.connect((helpers.HOST, port))
    return s


def read_until_closed(s, timeout):
    deadline = time.monotonic() + timeout
    total = 0
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(1 << 20)
        except ConnectionResetError:
            return total
        except socket.timeout:
            continue
        if not chunk:
            return total
        total += len(chunk)
    raise AssertionError("connection still open after %.1fs" % timeout)


class Reader(threading.Thread):
    """Reads a subscriber connection until it has nbytes."""

    def __init__(self, sock, nbytes):
        super().__init__(daemon=True)
        self.sock = sock
        self.nbytes = nbytes
        self.data = bytearray()
        self.error = None

    def run(self):
        try:
            while len(self.data) < self.nbytes:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    self.error = "closed after %d bytes" % len(self.data)
                    return
                self.data += chunk
        except OSError as e:
            self.error = repr(e)


def test_slow_subscriber_disconnected_at_hard_limit(cohortd):
    d = cohortd(config={"client": {"pubsub_output_limit_hard": "1mb",
                                   "pubsub_output_limit_soft": "0"}})
    slow = slow_socket(d.port)
    fast = socket.create_connection((helpers.HOST, d.port), timeout=scaled(30))
    try:
        sub = helpers.encode("SUBSCRIBE", "feed")
        confirm = b"*3\r\n$9\r\nsubscribe\r\n$4\r\nfeed\r\n:1\r\n"
        slow.sendall(sub)
        fast.sendall(sub)
        n, size = 1000, 16384
        frame = lambda i: (b"*3\r\n$7\r\nmessage\r\n$4\r\nfeed\r\n$%d\r\n" % size +
                           (b"%08d" % i).ljust(size, b"x") + b"\r\n")
        reader = Reader(fast, len(confirm) + n * len(frame(0)))
        reader.start()
        wait_numsub(d, "feed", 2)
        counts = []
        with d.raw(timeout=30) as pub:
            for i in range(n):
                r = pub.cmd("PUBLISH", "feed", (b"%08d" % i).ljust(size, b"x"))
                counts.append(int(r[1:-2]))
                if i % 16 == 15:  # the fast one keeps up: at most 16 messages behind
                    have = len(confirm) + (i + 1) * len(frame(0))
                    assert helpers.wait_for(lambda: len(reader.data) >= have or reader.error,
                                            scaled(30), interval=0.002), "fast reader stuck"
        # the slow one was dropped along the way; the fast one got everything
        assert counts[0] == 2 and counts[-1] == 1
        assert counts == sorted(counts, reverse=True)
        reader.join(scaled(30))
        assert reader.error is None, reader.error
        want = confirm + b"".join(frame(i) for i in range(n))
        assert bytes(reader.data) == want
        read_until_closed(slow, scaled(10))
        if FLAVOR == "cohort":
            assert d.info("stats")["pubsub_output_limit_disconnects"] == "1"
            status, _, body = helpers.http_get(d.http_port, "/metrics")
            assert b"cohort_pubsub_output_limit_disconnects_total 1\n" in body
    finally:
        slow.close()
        fast.close()


@pytest.mark.cohort_only
def test_slow_subscriber_disconnected_at_soft_limit(cohortd):
    """Over the soft limit for longer than the soft time: dropped even though
    no more messages come (the periodic check)."""
    d = cohortd(config={"client": {"pubsub_output_limit_hard": "0",
                                   "pubsub_output_limit_soft": "256kb",
                                   "pubsub_output_soft_seconds": "1"}})
    slow = slow_socket(d.port)
    try:
        slow.sendall(helpers.encode("SUBSCRIBE", "soft"))
        wait_numsub(d, "soft", 1)
        with d.raw(timeout=30) as pub:
            for i in range(600):  # ~10 MB: more than the kernel buffers hold
                assert pub.cmd("PUBLISH", "soft", b"y" * 16384) == b":1\r\n"
        wait_numsub(d, "soft", 0, timeout=15)
        read_until_closed(slow, scaled(10))
        assert d.info("stats")["pubsub_output_limit_disconnects"] == "1"
    finally:
        slow.close()


def test_subscriber_replies_count_in_pubsub_limit(cohortd):
    """A RESP3 subscriber that asks for big replies and does not read them is
    held to the pub/sub limit, not to the general one (as redis-server's
    pubsub class)."""
    d = cohortd(config={"client": {"pubsub_output_limit_hard": "1mb",
                                   "pubsub_output_limit_soft": "0"}})
    with d.raw() as c:
        assert c.cmd("SET", "big", b"v" * 65536) == b"+OK\r\n"
    slow = slow_socket(d.port)
    try:
        slow.sendall(helpers.encode("HELLO", "3") + helpers.encode("SUBSCRIBE", "r"))
        wait_numsub(d, "r", 1)
        slow.sendall(helpers.encode("GET", "big") * 400)  # 26 MB of replies
        wait_numsub(d, "r", 0, timeout=15)
        read_until_closed(slow, scaled(10))
        if FLAVOR == "cohort":
            stats = d.info("stats")
            assert stats["pubsub_output_limit_disconnects"] == "1"
            assert stats["client_output_limit_disconnects"] == "0"
    finally:
        slow.close()


# --- hostile input ------------------------------------------------------------

@pytest.mark.cohort_only  # redis-server 7.0 searches a client's patterns linearly: minutes
def test_100k_patterns_on_one_connection(cohortd):
    d = cohortd()
    rss0 = helpers.rss_bytes(d.pid) if FLAVOR == "cohort" else 0
    c = d.raw(timeout=60)
    total = 100000
    per_cmd = 1000
    expected = 0
    for start in range(0, total, per_cmd):
        pats = [b"pat:%06d:*" % i for i in range(start, start + per_cmd)]
        c.send(helpers.encode("PSUBSCRIBE", *pats))
        for i in range(start, start + per_cmd):
            expected += len(b"*3\r\n$10\r\npsubscribe\r\n$12\r\npat:000000:*\r\n:%d\r\n" % (i + 1))
    got = bytearray()
    deadline = time.monotonic() + scaled(60)
    while len(got) < expected and time.monotonic() < deadline:
        got += c.sock.recv(1 << 20)
    assert len(got) == expected
    assert got.endswith(b"$12\r\npat:099999:*\r\n:100000\r\n")
    with d.raw(timeout=30) as q:
        assert q.cmd("PUBSUB", "NUMPAT") == b":100000\r\n"
        assert q.cmd("PUBLISH", "pat:000042:news", "m") == b":1\r\n"
        assert q.cmd("PUBLISH", "nomatch", "m") == b":0\r\n"
    if FLAVOR == "cohort":
        grown = helpers.rss_bytes(d.pid) - rss0
        assert grown < 200 * 1024 * 1024, grown
    c.close()

    def gone():
        with d.raw() as q:
            return q.cmd("PUBSUB", "NUMPAT") == b":0\r\n"
    assert helpers.wait_for(gone, scaled(15)), "patterns not dropped after the close"
    with d.raw() as q:
        assert q.cmd("PING") == b"+PONG\r\n"


@pytest.mark.cohort_only
def test_subscription_limit(cohortd):
    d = cohortd(config={"client": {"pubsub_max_subscriptions": "3"}})
    with d.raw() as c:
        r = c.cmd("SUBSCRIBE", "a", "b", "c", "d")
        assert r == (b"-ERR subscription limit reached: at most 3 subscriptions per client "
                     b"(pubsub_max_subscriptions)\r\n")
        assert c.cmd("GET", "k") == b"$-1\r\n"  # nothing subscribed: not in subscribe mode
        c.cmd("SUBSCRIBE", "a", "b")
        assert c.read_reply() == b"*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
        assert c.cmd("PSUBSCRIBE", "x*") == b"*3\r\n$10\r\npsubscribe\r\n$2\r\nx*\r\n:3\r\n"
        assert c.cmd("SSUBSCRIBE", "s").startswith(b"-ERR subscription limit reached")
        assert c.cmd("PING") == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"


def test_channel_names_up_to_max_bulk_len(cohortd):
    limit = 1 << 20
    d = cohortd(config={"client": {"max_bulk_len": "1mb"}})
    big = b"c" * limit
    with d.raw(timeout=30) as sub, d.raw(timeout=30) as pub:
        assert sub.cmd("SUBSCRIBE", big) == \
            b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (limit, big)
        assert pub.cmd("PUBLISH", big, b"m" * limit) == b":1\r\n"
        assert sub.read_reply() == (b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" %
                                    (limit, big, limit, b"m" * limit))
        assert pub.cmd("PUBSUB", "NUMSUB", big) == b"*2\r\n$%d\r\n%s\r\n:1\r\n" % (limit, big)
        assert sub.cmd("PSUBSCRIBE", b"*" * limit)[:14] == b"*3\r\n$10\r\npsubs"
        assert pub.cmd("PUBLISH", "x", "y") == b":1\r\n"  # '*...*' matches any byte
        assert sub.read_reply()[:4] == b"*4\r\n"
    with d.raw(timeout=30) as c:
        try:  # the node refuses on the length and closes: the rest may not go out
            c.send(helpers.encode("SUBSCRIBE", b"c" * (limit + 1)))
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert c.read_until_closed(timeout=scaled(10)).startswith(b"-ERR Protocol error")
    with d.raw() as q:
        assert q.cmd("PING") == b"+PONG\r\n"


def test_wrong_arities(cohortd):
    d = cohortd()
    with d.raw() as c:
        for cmd, args in (("PUBLISH", ["a"]), ("PUBLISH", ["a", "b", "c"]),
                          ("SPUBLISH", []), ("SUBSCRIBE", []), ("PSUBSCRIBE", []),
                          ("SSUBSCRIBE", []), ("PUBSUB", []), ("RESET", ["x"])):
            r = c.cmd(cmd, *args)
            assert r == b"-ERR wrong number of arguments for '%s' command\r\n" % \
                cmd.lower().encode(), (cmd, args, r)
        assert c.cmd("PUBSUB", "NUMPAT", "x") == \
            b"-ERR wrong number of arguments for 'pubsub|numpat' command\r\n"
        assert c.cmd("PING") == b"+PONG\r\n"  # not in subscribe mode after all that
