"""Write modes per keyspace on real 3-node clusters (README "Write modes").

replicate: a write applies on every member before it replies, so a value
written through one node is read through any other right after the reply;
invalidate: other members drop a different value before the reply and keep
identical bytes; local: a fill of one node. A node that starts, restarts or
dropped its cache receives the replicated keyspaces from a live member before
it serves (cluster/catchup.c), and a kill -9 of one node costs the others
nothing (coherence.c: ended_current)."""

import os
import subprocess
import time

import pytest
import redis

import helpers
from cluster_harness import cluster_factory, requires_cohort, CommandError  # noqa: F401
from conftest import COHORTD, scaled

pytestmark = [requires_cohort, pytest.mark.cohort_only]

KEYSPACES = {
    "keyspace sessions": {"prefix": ["sess:", "session:"], "writes": "replicate"},
    "keyspace pages": {"prefix": "page:", "writes": "invalidate"},
    "keyspace scratch": {"prefix": ["tmp:", "page:tmp:"], "writes": "local"},
}


def rp(node):
    return redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=scaled(10))


def test_replicated_writes_are_read_everywhere_after_the_reply(cluster_factory):
    cl = cluster_factory(3, writes="replicate")
    clients = [rp(n) for n in cl]
    for i in range(60):
        w = clients[i % 3]
        assert w.set("k%d" % i, "v%d" % i) is True
        for r in clients:
            assert r.get("k%d" % i) == b"v%d" % i, (i, r)
    # SET over an existing value, MSET, APPEND, SETRANGE, GETSET, COPY, RENAME
    assert clients[0].mset({"a": "1", "b": "2"}) is True
    assert clients[1].append("a", "xy") == 3
    assert clients[2].setrange("b", 1, "zz") == 3
    assert clients[0].getset("a", "new") == b"1xy"
    assert clients[1].copy("a", "c") is True
    assert clients[2].rename("b", "d") is True
    for r in clients:
        assert r.mget("a", "b", "c", "d") == [b"new", None, b"new", b"2zz"]


def test_counters_and_locks_through_different_nodes(cluster_factory):
    cl = cluster_factory(3, writes="replicate")
    clients = [rp(n) for n in cl]
    for i in range(30):
        assert clients[i % 3].incr("hits") == i + 1
    assert clients[0].incrby("hits", 10) == 40
    assert clients[1].decr("hits") == 39
    assert [r.get("hits") for r in clients] == [b"39"] * 3
    # A lock taken through one node stops the others.
    assert clients[0].set("lock:job", "owner-a", nx=True, px=20000) is True
    assert clients[1].set("lock:job", "owner-b", nx=True, px=20000) is None
    assert clients[2].setnx("lock:job", "owner-c") is False
    assert clients[2].get("lock:job") == b"owner-a"
    assert clients[1].delete("lock:job") == 1
    assert clients[2].set("lock:job", "owner-c", nx=True, px=20000) is True
    assert clients[0].get("lock:job") == b"owner-c"


def test_ttl_changes_and_pattern_deletes_reach_every_node(cluster_factory):
    cl = cluster_factory(3, writes="replicate")
    a, b, c = (rp(n) for n in cl)
    a.set("t", "v")
    assert b.expire("t", 100) is True
    assert 90 <= c.ttl("t") <= 100
    assert c.persist("t") is True
    assert a.ttl("t") == -1
    assert a.getex("t", px=50000) == b"v"
    assert 40000 < b.pttl("t") <= 50000
    # "delete everything matching dp:*" through one node reaches every node.
    for i in range(40):
        (a, b, c)[i % 3].set("dp:%d" % i, "x")
    found = sorted(b.scan_iter(match="dp:*", count=1000))
    assert len(found) == 40
    assert b.delete(*found) == 40
    for r in (a, b, c):
        assert list(r.scan_iter(match="dp:*")) == []


def test_invalidate_keeps_identical_bytes_and_drops_others(cluster_factory):
    cl = cluster_factory(3, writes="local", sections=KEYSPACES)
    a, b, c = (rp(n) for n in cl)
    a.set("page:1", "rendered")
    c.set("page:1", "rendered")
    b.set("page:1", "rendered")  # the same row filled by three nodes
    assert [r.get("page:1") for r in (a, b, c)] == [b"rendered"] * 3
    b.set("page:1", "changed")
    assert a.get("page:1") is None and c.get("page:1") is None
    assert b.get("page:1") == b"changed"
    # A TTL change elsewhere makes the others drop theirs too.
    a.set("page:2", "x")
    c.set("page:2", "x")
    assert c.expire("page:2", 500) is True
    assert a.get("page:2") is None and c.ttl("page:2") > 0


def test_local_mode_is_a_fill_and_longest_prefix_wins(cluster_factory):
    cl = cluster_factory(3, writes="replicate", sections=KEYSPACES)
    a, b, _ = (rp(n) for n in cl)
    a.set("tmp:1", "x")
    a.set("page:tmp:1", "y")  # page:tmp: is local, though page: invalidates
    a.set("other", "z")       # no keyspace: [cache] writes = replicate
    assert b.get("tmp:1") is None and b.get("page:tmp:1") is None
    assert b.get("other") == b"z"
    assert a.execute_command("COHORT.KEYSPACE", "page:tmp:9") == [b"scratch", b"local",
                                                                  b"page:tmp:"]
    assert a.execute_command("COHORT.KEYSPACE", "page:9") == [b"pages", b"invalidate", b"page:"]
    assert a.execute_command("COHORT.KEYSPACE", "session:1") == [b"sessions", b"replicate",
                                                                 b"session:"]
    assert a.execute_command("COHORT.KEYSPACE", "x") == [None, b"replicate", None]


@pytest.mark.parametrize("sections,message", [
    ({"keyspace a": {"prefix": "", "writes": "replicate"}}, "prefix: empty"),
    ({"keyspace a": {"prefix": "x:", "writes": "replicate"},
      "keyspace b": {"prefix": "x:", "writes": "local"}}, "'x:' is already in [keyspace a]"),
    ({"keyspace a": {"prefix": "x:", "writes": "everywhere"}},
     "writes: 'everywhere' is not one of replicate, invalidate, local"),
    ({"keyspace a": {"writes": "local"}}, "needs at least one prefix"),
    ({"keyspace a": {"prefix": "x:"}}, "needs a writes = ... line"),
    ({"keyspace a": {"prefix": "x:", "writes": "local", "ttl": "5"}}, "ttl: unknown key"),
    ({"cache": {"writes": "sometimes"}}, "writes"),
])
def test_bad_keyspace_config_is_refused_at_start(tmp_path, sections, message):
    lines = ["[client]", "port = %d" % helpers.free_port(), "[node]",
             "data_dir = %s" % tmp_path]
    for name, kv in sections.items():
        lines.append("[%s]" % name)
        for k, v in kv.items():
            lines.append("%s = %s" % (k, v))
    path = os.path.join(str(tmp_path), "bad.ini")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = subprocess.run([COHORTD, "--config", path], capture_output=True, timeout=30)
    assert p.returncode == 2, p.stderr
    assert message.encode() in p.stderr, p.stderr


def _sessions(n):
    return {"sess:%04d" % i: ("data-%d-" % i) * 5 for i in range(n)}


def _write_sessions(cl, sessions):
    clients = [rp(n) for n in cl]
    for i, (k, v) in enumerate(sessions.items()):
        assert clients[i % len(clients)].set(k, v, ex=3600) is True


def _assert_sessions(node, sessions):
    r = rp(node)
    keys = list(sessions)
    got = r.mget(keys)
    missing = [k for k, v in zip(keys, got) if v is None]
    assert not missing, "%s misses %d sessions, e.g. %s" % (node.name, len(missing), missing[:3])
    assert [v.decode() for v in got] == [sessions[k] for k in keys]
    assert 3000 < r.ttl(keys[0]) <= 3600


def test_sessions_survive_kill9_and_restart_of_any_node(cluster_factory):
    cl = cluster_factory(3, writes="replicate")
    sessions = _sessions(600)
    _write_sessions(cl, sessions)
    a, b, c = cl[0], cl[1], cl[2]
    c.kill9()
    cl.wait_state([a, b], "n3", "dead", scaled(10))
    for n in (a, b):
        _assert_sessions(n, sessions)  # the others keep theirs: nothing to drop
    c.start()
    cl.wait_converged(timeout=20)
    for n in cl:
        _assert_sessions(n, sessions)
    assert a.counter("cache_drops") == 0 and b.counter("cache_drops") == 0
    assert "caught up with the replicated keyspaces" in c.log_text()


def test_sessions_survive_the_restart_of_all_but_one(cluster_factory):
    cl = cluster_factory(3, writes="replicate")
    sessions = _sessions(300)
    _write_sessions(cl, sessions)
    cl[1].kill9()
    cl[2].kill9()
    cl.wait_state([cl[0]], "n2", "dead", scaled(10))
    cl.wait_state([cl[0]], "n3", "dead", scaled(10))
    cl[1].start()
    cl[2].start()
    cl.wait_converged(timeout=20)
    for n in cl:
        _assert_sessions(n, sessions)


def test_a_node_out_of_contact_refuses_writes_of_replicated_keys(cluster_factory):
    cl = cluster_factory(2, writes="replicate", sections=KEYSPACES)
    a, b = cl[0], cl[1]
    b.sigstop()
    try:
        deadline = time.monotonic() + scaled(10)
        while a.serving() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not a.serving()
        with pytest.raises(CommandError) as e:
            a.call("SET", "sess:1", "v")
        assert "TRYAGAIN" in str(e.value)
        assert a.call("SET", "tmp:1", "v") == b"OK"  # local keys are still written
    finally:
        b.sigcont()
    cl.wait_converged(timeout=20)
    assert a.call("SET", "sess:1", "v") == b"OK"
    assert b.call("GET", "sess:1") == b"v"


def test_hashes_and_sets_replicate_with_their_type(cluster_factory):
    cl = cluster_factory(3, writes="replicate")
    a, b, c = (rp(n) for n in cl)
    assert a.hset("session:h", mapping={"user": "42", "cart": "3"}) == 2
    assert b.hincrby("session:h", "cart", 2) == 5
    assert c.hgetall("session:h") == {b"user": b"42", b"cart": b"5"}
    assert c.type("session:h") == b"hash"
    assert a.sadd("online", "u1", "u2") == 2
    assert b.srem("online", "u1") == 1
    assert c.smembers("online") == {b"u2"}
    assert a.object("encoding", "online") == c.object("encoding", "online")
    # A restarted node gets them back with their type too.
    cl[2].kill9()
    cl.wait_state([cl[0], cl[1]], "n3", "dead", scaled(10))
    cl[2].start()
    cl.wait_converged(timeout=20)
    c = rp(cl[2])
    assert c.type("session:h") == b"hash" and c.hget("session:h", "cart") == b"5"
    assert c.type("online") == b"set" and c.sismember("online", "u2")


def test_keyspaces_match_in_every_database(cluster_factory):
    cl = cluster_factory(3, writes="local", sections=KEYSPACES)
    a1 = redis.Redis(host="127.0.0.1", port=cl[0].port, db=1, socket_timeout=scaled(10))
    b1 = redis.Redis(host="127.0.0.1", port=cl[1].port, db=1, socket_timeout=scaled(10))
    assert a1.set("sess:x", "in-db-1") is True  # replicate, in database 1
    assert a1.set("tmp:x", "local") is True
    assert b1.get("sess:x") == b"in-db-1" and b1.get("tmp:x") is None
    assert rp(cl[1]).get("sess:x") is None  # database 0 holds nothing of it
    assert a1.execute_command("COHORT.KEYSPACE", "sess:x") == [b"sessions", b"replicate",
                                                               b"sess:"]


def _race(cl, fn, rounds):
    """Runs fn(client, node_index, round) on every node at once, round after
    round (a barrier per round); returns {round: [result per node]}."""
    import threading
    barrier = threading.Barrier(len(cl.nodes))
    out = {r: [None] * len(cl.nodes) for r in range(rounds)}
    errors = []

    def worker(i):
        r_ = rp(cl[i])
        try:
            for r in range(rounds):
                barrier.wait(timeout=scaled(30))
                out[r][i] = fn(r_, i, r)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(repr(e))
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(cl.nodes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=scaled(120))
    assert not errors, errors
    return out


def test_concurrent_counters_lose_no_increment(cluster_factory):
    """INCR of one key through three nodes at the same instant, 150 times:
    every reply distinct, none lost (a refused proposal runs again on the
    newer value)."""
    cl = cluster_factory(3, writes="replicate")
    out = _race(cl, lambda r, i, n: r.incr("counter"), 150)
    got = [v for row in out.values() for v in row]
    assert sorted(got) == list(range(1, 451)), "duplicates or gaps: %r" % sorted(got)[:20]
    assert [rp(n).get("counter") for n in cl] == [b"450"] * 3


def test_concurrent_set_nx_has_one_winner(cluster_factory):
    cl = cluster_factory(3, writes="replicate")
    out = _race(cl, lambda r, i, n: r.set("lock:%d" % n, "owner%d" % i, nx=True, px=60000), 60)
    for n, row in out.items():
        winners = [i for i, ok in enumerate(row) if ok]
        assert len(winners) == 1, "round %d: %r" % (n, row)
        owner = b"owner%d" % winners[0]
        assert [rp(x).get("lock:%d" % n) for x in cl] == [owner] * 3


def test_concurrent_hash_fields_through_different_nodes_all_land(cluster_factory):
    cl = cluster_factory(3, writes="replicate")
    _race(cl, lambda r, i, n: r.hset("session:big", "n%d-r%d" % (i, n), n), 40)
    for x in cl:
        assert rp(x).hlen("session:big") == 120


def test_five_nodes_counters_locks_and_a_restart(cluster_factory):
    """Five nodes: concurrent INCRs through all five lose nothing, each SET NX
    round has one winner, and sessions survive the kill -9 and restart of a
    node."""
    cl = cluster_factory(5, writes="replicate")
    out = _race(cl, lambda r, i, n: r.incr("counter5"), 40)
    got = sorted(v for row in out.values() for v in row)
    assert got == list(range(1, 201)), "duplicates or gaps: %r" % got[:20]
    out = _race(cl, lambda r, i, n: r.set("lock5:%d" % n, i, nx=True, px=60000), 20)
    for n, row in out.items():
        assert sum(1 for ok in row if ok) == 1, "round %d: %r" % (n, row)
    sessions = _sessions(200)
    _write_sessions(cl, sessions)
    cl[4].kill9()
    cl.wait_state(cl.nodes[:4], "n5", "dead", scaled(10))
    cl[4].start()
    cl.wait_converged(timeout=30)
    for n in cl:
        _assert_sessions(n, sessions)
        assert rp(n).get("counter5") == b"200"


def _mixed_worker(node, wid, stop, res):
    """One client of node: INCR, SET NX of a lock per step, HINCRBY and HSET
    of a hash, until stop(). Records what replied, and how many commands got
    no reply (their node was killed, or the reply timed out): those may or
    may not have taken effect. TRYAGAIN (the node did not serve) is not a
    write: the step is tried again."""
    r = rp(node)
    i = 0
    while not stop():
        token = "%s:%d:%d" % (node.name, wid, i)
        steps = [("incr", lambda: r.incr("c5")),
                 ("lock", lambda: r.set("lk5:%d" % i, token, nx=True, px=600000)),
                 ("hincr", lambda: r.hincrby("h5", "n", 1)),
                 ("hset", lambda: r.hset("h5", "f:" + token, token))]
        for what, call in steps:
            while True:
                try:
                    v = call()
                except redis.exceptions.ResponseError as e:
                    if str(e).startswith("TRYAGAIN") and not stop():
                        time.sleep(0.01)
                        continue
                    raise
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                    res["unknown"][what] += 1
                    return
                break
            res[what].append((i, token, v))
        i += 1


def test_five_nodes_concurrent_counters_locks_and_hashes_with_a_kill9(cluster_factory):
    """Five nodes, two clients each, INCR / SET NX / HINCRBY / HSET at once for
    a few seconds; n5 is killed with SIGKILL a third of the way in. Every
    INCR and HINCRBY reply is distinct and the totals count every replied one
    (and at most the few left without a reply); each lock has at most one
    winner, held everywhere; every replied HSET field is on every node; n5,
    restarted, catches up with all of it."""
    import collections
    import threading
    cl = cluster_factory(5, writes="replicate")
    done = threading.Event()
    results = []
    threads = []
    for n in cl:
        for wid in range(2):
            res = {"incr": [], "lock": [], "hincr": [], "hset": [],
                   "unknown": collections.Counter()}
            results.append(res)
            threads.append(threading.Thread(target=_mixed_worker,
                                            args=(n, wid, done.is_set, res), daemon=True))
    errors = []

    def run(t):
        try:
            t._target(*t._args)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(repr(e))
    runners = [threading.Thread(target=run, args=(t,)) for t in threads]
    for t in runners:
        t.start()
    time.sleep(scaled(2.0))
    cl[4].kill9()
    time.sleep(scaled(4.0))
    done.set()
    for t in runners:
        t.join(timeout=scaled(60))
    assert not any(t.is_alive() for t in runners), "a client never got its reply"
    assert not errors, errors
    live = cl.nodes[:4]
    for n in live:
        assert helpers.wait_for(n.serving, scaled(10)), n.log_tail()

    def totals(what):
        replies = [v for res in results for (_, _, v) in res[what]]
        unknown = sum(res["unknown"][what] for res in results)
        return replies, unknown

    for what, key, read in (("incr", "c5", lambda r: int(r.get("c5") or 0)),
                            ("hincr", "h5", lambda r: int(r.hget("h5", "n") or 0))):
        replies, unknown = totals(what)
        assert len(replies) > 50, (what, len(replies))
        assert len(set(replies)) == len(replies), "%s: a value replied twice" % what
        finals = {n.name: read(rp(n)) for n in live}
        assert len(set(finals.values())) == 1, (what, finals)
        final = finals["n1"]
        assert len(replies) <= final <= len(replies) + unknown, (what, final, len(replies), unknown)
        assert max(replies) <= final
    winners = collections.defaultdict(list)
    for res in results:
        for (i, token, v) in res["lock"]:
            if v:
                winners[i].append(token)
    assert winners and all(len(w) == 1 for w in winners.values()), \
        [w for w in winners.values() if len(w) > 1][:3]
    fields = {token for res in results for (_, token, v) in res["hset"]}
    for n in live:
        r = rp(n)
        for i, (token,) in winners.items():
            assert r.get("lk5:%d" % i) == token.encode(), (n.name, i)
        held = {k.decode()[2:] for k in r.hkeys("h5") if k != b"n"}
        assert fields <= held, (n.name, sorted(fields - held)[:3])
    cl[4].start()
    cl.wait_converged(timeout=30)
    assert helpers.wait_for(cl[4].serving, scaled(10))
    r5, r1 = rp(cl[4]), rp(cl[0])
    assert r5.get("c5") == r1.get("c5")
    assert r5.hgetall("h5") == r1.hgetall("h5")
    assert r5.mget(["lk5:%d" % i for i in winners]) == r1.mget(["lk5:%d" % i for i in winners])
