"""Client-side caching (CLIENT TRACKING) and WATCH end to end.

One node: default mode, BCAST with prefixes, OPTIN, OPTOUT, NOLOOP, the RESP2
form through REDIRECT to a connection subscribed to __redis__:invalidate
(with redis-py), the null invalidation of FLUSHALL, a broken redirect,
expiry and eviction, the tracking table limit, CLIENT TRACKINGINFO /
GETREDIR, INFO and CONFIG, redis-cli. A cluster: a DEL, FLUSHPREFIX,
FLUSHALL or SEED through node A invalidates a key read on node B, and the
push is in B's stream before A's reply came back (the PING sent to B after
A's reply is answered after the push). WATCH's dirty flag ('d' in CLIENT
INFO, as redis-server shows it) is set by a change through another
connection and another node.

RESP3 pushes are read from raw sockets (the Debian redis-py predates RESP3)."""

import os
import subprocess
import time

import pytest

import helpers
from cluster_harness import cluster_factory, requires_cohort  # noqa: F401 (fixture)
from conftest import scaled

pytestmark = pytest.mark.cohort_only

INVALIDATE = b">2\r\n$10\r\ninvalidate\r\n"


def resp3(d):
    """A raw RESP3 connection to daemon or node d."""
    c = helpers.RawConn(d.port, timeout=scaled(10))
    assert c.cmd("HELLO", "3").startswith(b"%")
    return c


def keys_push(*keys):
    out = INVALIDATE + b"*%d\r\n" % len(keys)
    for k in keys:
        k = k.encode() if isinstance(k, str) else k
        out += b"$%d\r\n%s\r\n" % (len(k), k)
    return out


def assert_quiet(c):
    """Nothing is pending on c: the next thing it reads is PING's reply."""
    assert c.cmd("PING") == b"+PONG\r\n"


def test_default_mode_one_invalidation_per_read(cohortd):
    d = cohortd()
    with resp3(d) as t, d.raw() as w:
        assert t.cmd("CLIENT", "TRACKING", "ON") == b"+OK\r\n"
        assert w.cmd("SET", "k", "v1") == b"+OK\r\n"
        assert t.cmd("GET", "k") == b"$2\r\nv1\r\n"
        assert t.cmd("GET", "never") == b"_\r\n"  # a miss is tracked too
        assert w.cmd("SET", "k", "v2") == b"+OK\r\n"
        # The push was written before w's reply: it comes before PONG.
        assert t.read_reply() == keys_push("k")
        assert_quiet(t)
        # Not read again: the next change is not sent.
        assert w.cmd("SET", "k", "v3") == b"+OK\r\n"
        assert_quiet(t)
        assert w.cmd("SET", "never", "x") == b"+OK\r\n"
        assert t.read_reply() == keys_push("never")
        # A DEL, an EXPIRE and a GETDEL are changes too.
        for change in (("DEL", "k"), ("EXPIRE", "k", "100"), ("GETDEL", "k")):
            w.cmd("SET", "k", "v")
            assert t.cmd("GET", "k") == b"$1\r\nv\r\n"
            w.cmd(*change)
            assert t.read_reply() == keys_push("k"), change
            assert_quiet(t)
        info = helpers.decode1(t.cmd("CLIENT", "TRACKINGINFO"))
        assert info == {b"flags": [b"on"], b"redirect": 0, b"prefixes": []}
        assert t.cmd("CLIENT", "GETREDIR") == b":0\r\n"
        assert b" flags=t " in t.cmd("CLIENT", "INFO")
        assert t.cmd("CLIENT", "TRACKING", "OFF") == b"+OK\r\n"
        assert t.cmd("CLIENT", "GETREDIR") == b":-1\r\n"


def test_own_write_and_noloop(cohortd):
    d = cohortd()
    with resp3(d) as t, resp3(d) as nl:
        t.cmd("CLIENT", "TRACKING", "ON")
        nl.cmd("CLIENT", "TRACKING", "ON", "NOLOOP")
        for c in (t, nl):
            assert c.cmd("GET", "k") == b"_\r\n"
        # Without NOLOOP a connection hears of its own write, after the reply.
        assert t.cmd("SET", "k", "1") == b"+OK\r\n"
        assert t.read_reply() == keys_push("k")
        assert nl.read_reply() == keys_push("k")
        for c in (t, nl):
            c.cmd("GET", "k")
        assert nl.cmd("SET", "k", "2") == b"+OK\r\n"
        assert_quiet(nl)  # NOLOOP: not its own change
        assert t.read_reply() == keys_push("k")


def test_bcast_prefixes(cohortd):
    d = cohortd()
    with resp3(d) as t, d.raw() as w:
        assert t.cmd("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:", "PREFIX",
                     "item:") == b"+OK\r\n"
        # One pipelined turn: both keys in one push, other keys not at all.
        w.send(helpers.encode("SET", "user:1", "a") + helpers.encode("SET", "other", "b") +
               helpers.encode("SET", "item:7", "c"))
        for _ in range(3):
            assert w.read_reply() == b"+OK\r\n"
        got = []
        while len(got) < 2:
            v = helpers.decode1(t.read_reply())
            assert v[0] == b"invalidate"
            got += v[1]
        assert sorted(got) == [b"item:7", b"user:1"]
        assert_quiet(t)
        info = helpers.decode1(t.cmd("CLIENT", "TRACKINGINFO"))
        info[b"flags"].sort()
        assert info == {b"flags": [b"bcast", b"on"], b"redirect": 0,
                        b"prefixes": [b"item:", b"user:"]}
        assert t.cmd("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "us") == (
            b"-ERR Prefix 'us' overlaps with an existing prefix 'user:'. Prefixes for a "
            b"single client must not overlap.\r\n")
        assert t.cmd("CLIENT", "TRACKING", "ON") == (
            b"-ERR You can't switch BCAST mode on/off before disabling tracking for this "
            b"client, and then re-enabling it with a different mode.\r\n")
        assert int(d.info("stats")["tracking_total_prefixes"]) == 2


def test_optin_optout(cohortd):
    d = cohortd()
    with resp3(d) as i, resp3(d) as o, d.raw() as w:
        assert i.cmd("CLIENT", "TRACKING", "ON", "OPTIN") == b"+OK\r\n"
        assert o.cmd("CLIENT", "TRACKING", "ON", "OPTOUT") == b"+OK\r\n"
        assert i.cmd("CLIENT", "CACHING", "NO") == (
            b"-ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.\r\n")
        i.cmd("GET", "a")  # not after CACHING YES: not tracked
        assert i.cmd("CLIENT", "CACHING", "YES") == b"+OK\r\n"
        info = helpers.decode1(i.cmd("CLIENT", "TRACKINGINFO"))
        assert sorted(info[b"flags"]) == [b"caching-yes", b"on", b"optin"]
        i.cmd("GET", "b")  # tracked
        i.cmd("GET", "c")  # CACHING held for one command only
        o.cmd("GET", "d")  # tracked
        assert o.cmd("CLIENT", "CACHING", "NO") == b"+OK\r\n"
        o.cmd("GET", "e")  # not tracked
        for k in "abcde":
            w.cmd("SET", k, "x")
        assert i.read_reply() == keys_push("b")
        assert o.read_reply() == keys_push("d")
        assert_quiet(i)
        assert_quiet(o)


def test_option_errors(cohortd):
    d = cohortd()
    with d.raw() as c:
        assert c.cmd("CLIENT", "TRACKING", "ON", "PREFIX", "x") == (
            b"-ERR PREFIX option requires BCAST mode to be enabled\r\n")
        assert c.cmd("CLIENT", "TRACKING", "ON", "BCAST", "OPTIN") == (
            b"-ERR OPTIN and OPTOUT are not compatible with BCAST\r\n")
        assert c.cmd("CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT") == (
            b"-ERR You can't specify both OPTIN mode and OPTOUT mode\r\n")
        assert c.cmd("CLIENT", "TRACKING", "ON", "REDIRECT", "999999") == (
            b"-ERR The client ID you want redirect to does not exist\r\n")
        assert c.cmd("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ab", "PREFIX", "a") == (
            b"-ERR Prefix 'ab' overlaps with another provided prefix 'a'. Prefixes for a "
            b"single client must not overlap.\r\n")
        assert c.cmd("CLIENT", "TRACKING", "MAYBE") == b"-ERR syntax error\r\n"
        assert c.cmd("CLIENT", "TRACKING", "ON", "NOPE") == b"-ERR syntax error\r\n"
        assert c.cmd("CLIENT", "TRACKING") == (
            b"-ERR wrong number of arguments for 'client|tracking' command\r\n")
        assert c.cmd("CLIENT", "CACHING", "YES") == (
            b"-ERR CLIENT CACHING can be called only when the client is in tracking mode with "
            b"OPTIN or OPTOUT mode enabled\r\n")
        assert c.cmd("CLIENT", "TRACKINGINFO") == (
            b"*6\r\n$5\r\nflags\r\n*1\r\n$3\r\noff\r\n$8\r\nredirect\r\n:-1\r\n"
            b"$8\r\nprefixes\r\n*0\r\n")


def test_redirect_resp2_with_redis_py(cohortd):
    d = cohortd()
    r = d.client()
    p = r.pubsub()
    p.subscribe("__redis__:invalidate")
    deadline = time.monotonic() + scaled(5)
    m = None
    while m is None and time.monotonic() < deadline:
        m = p.get_message(timeout=0.2)
    assert m["type"] == "subscribe"
    rid = p.connection.client_id if hasattr(p.connection, "client_id") else None
    if rid is None:
        # the subscriber's id: the connection in subscribe mode is the one
        # whose CLIENT LIST line says sub=1
        lines = r.execute_command("CLIENT", "LIST").decode().splitlines()
        rid = int(next(ln for ln in lines if " sub=1 " in ln).split()[0][3:])
    src = d.client(single_connection_client=True)
    assert src.execute_command("CLIENT", "TRACKING", "ON", "REDIRECT", rid) == b"OK"
    assert src.execute_command("CLIENT", "GETREDIR") == rid
    src.get("rk")
    r.set("rk", "v")
    m = None
    deadline = time.monotonic() + scaled(5)
    while m is None and time.monotonic() < deadline:
        m = p.get_message(timeout=0.2)
    assert m == {"type": "message", "pattern": None, "channel": b"__redis__:invalidate",
                 "data": [b"rk"]}
    # FLUSHALL: the null invalidation.
    src.get("rk")
    r.flushall()
    m = None
    deadline = time.monotonic() + scaled(5)
    while m is None and time.monotonic() < deadline:
        m = p.get_message(timeout=0.2)
    assert m == {"type": "message", "pattern": None, "channel": b"__redis__:invalidate",
                 "data": None}
    p.close()
    src.close()
    r.close()


def test_flushall_null_and_broken_redirect(cohortd):
    d = cohortd()
    with resp3(d) as t, resp3(d) as target, d.raw() as w:
        tid = helpers.decode1(target.cmd("CLIENT", "ID"))
        assert t.cmd("CLIENT", "TRACKING", "ON", "REDIRECT", str(tid)) == b"+OK\r\n"
        t.cmd("GET", "k")
        w.cmd("SET", "k", "v")
        assert target.read_reply() == keys_push("k")  # a RESP3 target gets the push
        assert_quiet(t)
        t.cmd("GET", "k")
        assert w.cmd("FLUSHALL") == b"+OK\r\n"
        assert target.read_reply() == INVALIDATE + b"_\r\n"
        target.close()
        assert helpers.wait_for(
            lambda: b"id=%d " % tid not in w.cmd("CLIENT", "LIST"), scaled(5))
        t.cmd("GET", "k")
        w.cmd("SET", "k", "v")
        assert t.read_reply() == b">2\r\n$21\r\ntracking-redir-broken\r\n:%d\r\n" % tid
        info = helpers.decode1(t.cmd("CLIENT", "TRACKINGINFO"))
        assert sorted(info[b"flags"]) == [b"broken_redirect", b"on"]
        assert b" flags=tR " in t.cmd("CLIENT", "INFO")


def test_expiry_and_eviction_invalidate(cohortd):
    d = cohortd(args=["--maxmemory", "2mb"])
    with resp3(d) as t, d.raw() as w:
        t.cmd("CLIENT", "TRACKING", "ON")
        w.cmd("SET", "short", "v", "PX", "300")
        assert t.cmd("GET", "short") == b"$1\r\nv\r\n"
        # active expiry (the cron) removes it and says so, unasked
        assert t.read_reply(timeout=scaled(10)) == keys_push("short")
        w.cmd("SET", "victim", "v")
        assert t.cmd("GET", "victim") == b"$1\r\nv\r\n"
        big = "x" * 100000
        for i in range(60):  # 6 MB through a 2 MB cache: the oldest go
            w.cmd("SET", "fill:%d" % i, big)
        assert t.read_reply() == keys_push("victim")
        assert int(d.info("stats")["evicted_keys"]) > 0


def test_table_limit_and_info(cohortd):
    d = cohortd()
    with resp3(d) as t, d.raw() as w:
        assert w.cmd("CONFIG", "GET", "tracking-table-max-keys") == (
            b"*2\r\n$23\r\ntracking-table-max-keys\r\n$7\r\n1000000\r\n")
        assert w.cmd("CONFIG", "SET", "tracking-table-max-keys", "100") == b"+OK\r\n"
        t.cmd("CLIENT", "TRACKING", "ON")
        t.send(b"".join(helpers.encode("GET", "key:%d" % i) for i in range(300)))
        replies = []
        got = []
        while len(replies) < 300:
            r = t.read_reply()
            if r.startswith(b">"):
                got += helpers.decode1(r)[1]
            else:
                replies.append(r)
        info = d.info("stats")
        assert int(info["tracking_total_keys"]) == 100
        assert int(info["tracking_evicted_keys"]) == 200
        # the keys dropped were invalidated (the oldest first)
        while len(got) < 200:
            got += helpers.decode1(t.read_reply())[1]
        assert got == [b"key:%d" % i for i in range(200)]
        assert int(d.info("clients")["tracking_clients"]) == 1
        assert int(d.info("memory")["mem_tracking"]) > 0
        w.cmd("SET", "key:250", "v")
        assert t.read_reply() == keys_push("key:250")


def test_100000_tracked_keys(cohortd):
    d = cohortd()
    with resp3(d) as t:
        t.cmd("CLIENT", "TRACKING", "ON")
        n = 100000
        chunk = 5000
        for s in range(0, n, chunk):
            t.send(b"".join(helpers.encode("GET", "k%d" % i) for i in range(s, s + chunk)))
            for _ in range(chunk):
                assert t.read_reply() == b"_\r\n"
        assert int(d.info("stats")["tracking_total_keys"]) == n
        with d.raw() as w:
            assert w.cmd("FLUSHALL") == b"+OK\r\n"
        assert t.read_reply() == INVALIDATE + b"_\r\n"
        assert int(d.info("stats")["tracking_total_keys"]) == 0


def test_client_that_never_reads_is_dropped(cohortd):
    d = cohortd(config={"client": {"output_buffer_limit": "1mb"}})
    with resp3(d) as t, d.raw() as w:
        t.cmd("CLIENT", "TRACKING", "ON", "BCAST")
        big_key = "k" * 10000
        for i in range(3000):  # 30 MB of invalidations that t never reads
            assert w.cmd("SET", "%s%d" % (big_key, i), "v") == b"+OK\r\n"
        assert helpers.wait_for(
            lambda: int(helpers.info_dict(w.cmd("INFO", "stats"))[
                "client_output_limit_disconnects"]) >= 1, scaled(10))
        assert int(d.info("clients")["tracking_clients"]) == 0
        assert w.cmd("PING") == b"+PONG\r\n"


def test_thousands_of_prefixes(cohortd):
    d = cohortd()
    with resp3(d) as t, d.raw() as w:
        args = []
        for i in range(5000):
            args += ["PREFIX", "p%05d:" % i]
        assert t.cmd("CLIENT", "TRACKING", "ON", "BCAST", *args) == b"+OK\r\n"
        w.cmd("SET", "p04999:x", "v")
        assert t.read_reply() == keys_push("p04999:x")
        assert int(d.info("stats")["tracking_total_prefixes"]) == 5000
        t.cmd("CLIENT", "TRACKING", "OFF")
        assert int(d.info("stats")["tracking_total_prefixes"]) == 0


def test_reconnect_starts_clean(cohortd):
    d = cohortd()
    with resp3(d) as t:
        t.cmd("CLIENT", "TRACKING", "ON")
        t.cmd("GET", "k")
    assert helpers.wait_for(lambda: int(d.info("clients")["tracking_clients"]) == 0, scaled(5))
    with resp3(d) as t, d.raw() as w:
        # a new connection tracks nothing until it asks
        w.cmd("SET", "k", "v")
        assert_quiet(t)
        t.cmd("CLIENT", "TRACKING", "ON")
        t.cmd("GET", "k")
        w.cmd("DEL", "k")
        assert t.read_reply() == keys_push("k")


def test_redis_cli_sees_pushes(cohortd):
    d = cohortd()
    cli = "/usr/bin/redis-cli"
    if not os.path.exists(cli):
        pytest.fail("redis-cli is not installed (Debian package redis-tools)")
    out = subprocess.run([cli, "-3", "-p", str(d.port), "CLIENT", "TRACKING", "ON"],
                         capture_output=True, timeout=scaled(10), text=True)
    assert out.stdout.strip() == "OK"
    out = subprocess.run([cli, "-p", str(d.port), "CLIENT", "TRACKINGINFO"],
                         capture_output=True, timeout=scaled(10), text=True)
    assert out.stdout.split() == ["flags", "off", "redirect", "-1", "prefixes"]


def test_watch_dirty_flag(cohortd):
    d = cohortd()
    with d.raw() as a, d.raw() as b:
        assert a.cmd("WATCH", "w1", "w2") == b"+OK\r\n"
        assert b" flags=N " in a.cmd("CLIENT", "INFO")
        b.cmd("SET", "other", "x")
        assert b" flags=N " in a.cmd("CLIENT", "INFO")
        b.cmd("SET", "w2", "x")
        assert b" flags=d " in a.cmd("CLIENT", "INFO")
        assert a.cmd("UNWATCH") == b"+OK\r\n"
        assert b" flags=N " in a.cmd("CLIENT", "INFO")
        a.cmd("WATCH", "w1")
        b.cmd("FLUSHALL")
        assert b" flags=d " in a.cmd("CLIENT", "INFO")
        a.cmd("UNWATCH")
        a.cmd("SET", "exp", "v", "PX", "30")
        a.cmd("WATCH", "exp")
        assert helpers.wait_for(lambda: b" flags=d " in a.cmd("CLIENT", "INFO"), scaled(5))
        assert a.cmd("WATCH") == b"-ERR wrong number of arguments for 'watch' command\r\n"


# ---- a cluster -------------------------------------------------------------------


@requires_cohort
def test_cluster_flushes_invalidate_before_the_reply(cluster_factory):
    cl = cluster_factory(3)
    a, b = cl[0], cl[1]
    with resp3(b) as t, a.conn() as w:
        assert t.cmd("CLIENT", "TRACKING", "ON") == b"+OK\r\n"
        cases = [
            ("k1", ("DEL", "k1")),
            ("p:1", ("FLUSHPREFIX", "p:")),
            ("k2", ("SEED", "k2", "fresh")),
            ("k3", ("EXPIREAT", "k3", "1")),
        ]
        for key, change in cases:
            w.call("SET", key, "v")  # a fill of a (EXPIREAT needs the key there)
            assert t.cmd("SET", key, "v") == b"+OK\r\n"  # a fill of b
            assert t.cmd("GET", key) == b"$1\r\nv\r\n"
            w.call(*change)
            # a replied after b applied the flush; b wrote the push before it
            # acknowledged: it is in t's stream before the PING's reply.
            t.send(helpers.encode("PING"))
            assert t.read_reply() == keys_push(key), change
            assert t.read_reply() == b"+PONG\r\n"
        t.cmd("GET", "k2")
        w.call("FLUSHALL")
        t.send(helpers.encode("PING"))
        assert t.read_reply() == INVALIDATE + b"_\r\n"
        assert t.read_reply() == b"+PONG\r\n"


@requires_cohort
def test_cluster_bcast_and_watch_across_nodes(cluster_factory):
    cl = cluster_factory(2)
    a, b = cl[0], cl[1]
    with resp3(b) as t, b.conn() as wb, a.conn() as w:
        watcher = wb.raw
        assert t.cmd("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "s:") == b"+OK\r\n"
        b.call("SET", "s:1", "v")
        assert t.read_reply() == keys_push("s:1")
        assert watcher.cmd("WATCH", "s:1") == b"+OK\r\n"
        w.call("DEL", "s:1", "other")
        t.send(helpers.encode("PING"))
        assert t.read_reply() == keys_push("s:1")
        assert t.read_reply() == b"+PONG\r\n"
        assert b" flags=d " in watcher.cmd("CLIENT", "INFO")
        assert watcher.cmd("UNWATCH") == b"+OK\r\n"
        assert watcher.cmd("WATCH", "absent") == b"+OK\r\n"
        w.call("FLUSHALL")  # a member's flush of everything marks every watcher
        assert b" flags=d " in watcher.cmd("CLIENT", "INFO")


@requires_cohort
def test_cluster_lease_lost_drops_client_caches(cluster_factory):
    """A node that loses contact with a member stops vouching for its clients'
    caches before its coherence lease runs out (the member could then have a
    flush replied without it): the null invalidation, and reads made while
    out of contact are dropped right after."""
    cl = cluster_factory(2, options={"lease": "600ms"})
    a, b = cl[0], cl[1]
    with resp3(b) as t:
        t.cmd("CLIENT", "TRACKING", "ON")
        t.cmd("SET", "k", "v")
        assert t.cmd("GET", "k") == b"$1\r\nv\r\n"
        a.sigstop()
        try:
            assert t.read_reply(timeout=scaled(10)) == INVALIDATE + b"_\r\n"
            assert helpers.wait_for(lambda: not b.serving(), scaled(10))
            t.send(helpers.encode("GET", "k"))
            assert t.read_reply() == b"_\r\n"  # a bypass
            assert t.read_reply() == INVALIDATE + b"_\r\n"
        finally:
            a.sigcont()
        cl.wait_converged()
        assert t.cmd("SET", "k", "v2") == b"+OK\r\n"
        assert t.cmd("GET", "k") == b"$2\r\nv2\r\n"
        a.call("DEL", "k")
        t.send(helpers.encode("PING"))
        assert t.read_reply() == keys_push("k")
        assert t.read_reply() == b"+PONG\r\n"


def test_scripts(cohortd):
    """A script's writes invalidate like any command; CLIENT TRACKING inside a
    script is refused (redis-server refuses CLIENT there)."""
    d = cohortd()
    with resp3(d) as t, d.raw() as w:
        t.cmd("CLIENT", "TRACKING", "ON")
        t.cmd("GET", "sk")
        assert w.cmd("EVAL", "return redis.call('SET', KEYS[1], 'x')", "1", "sk") == b"+OK\r\n"
        assert t.read_reply() == keys_push("sk")
        r = w.cmd("EVAL", "return redis.pcall('CLIENT', 'TRACKING', 'ON')", "0")
        assert r.startswith(b"-") and b"not allowed from script" in r
        assert_quiet(t)
