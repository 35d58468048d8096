"""Coherence of a healthy cluster: once a flush (DEL, UNLINK, GETDEL,
PEXPIRE <= 0, FLUSHPREFIX, FLUSHALL) has replied, no node serves the old
value; SEED is readable everywhere when it replies; SETL refuses a fill that
raced a flush made on any node."""

import random
import time

import pytest

from cluster_harness import cluster_factory, requires_cohort  # noqa: F401 (fixture)
from conftest import scaled

pytestmark = [requires_cohort, pytest.mark.cohort_only]

FLUSHES = ("DEL", "UNLINK", "GETDEL", "PEXPIRE")


def _flush(conn, how, key):
    """Flushes key with the command named how; returns the reply."""
    if how == "PEXPIRE":
        return conn.call("PEXPIRE", key, -1)
    return conn.call(how, key)


@pytest.mark.slow
@pytest.mark.parametrize("count,nkeys", [(3, 3000), (5, 2000)])
def test_random_keys_never_stale_after_flush(cluster_factory, count, nkeys):
    """Fill random keys on every node, flush each through a random node with
    a random flush command, and read it on every node right after the reply:
    never the old value."""
    cl = cluster_factory(count)
    rng = random.Random(count * 7919)
    keys = sorted({"k:%x:%d" % (rng.getrandbits(48), i) for i in range(nkeys)})
    pairs = [(k, "old:" + k) for k in keys]
    cl.fill(pairs)
    conns = [n.conn() for n in cl]
    stale = []
    served = 0
    hows = dict.fromkeys(FLUSHES, 0)
    try:
        for k, v in pairs:
            # The fill is visible everywhere (so a nil after the flush means
            # something): every node serves it.
            for n, c in zip(cl, conns):
                got = c.call("GET", k)
                assert got == v.encode(), "%s: GET %s before the flush = %r" % (n.name, k, got)
                served += 1
            o = rng.randrange(count)
            how = rng.choice(FLUSHES)
            hows[how] += 1
            r = _flush(conns[o], how, k)
            assert r in (1, v.encode()), "%s %s on %s replied %r" % (how, k, cl[o].name, r)
            for n, c in zip(cl, conns):
                got = c.call("GET", k)
                if got is not None:
                    stale.append((k, how, cl[o].name, n.name, got))
    finally:
        for c in conns:
            c.close()
    print("%d nodes: %d keys flushed (%r), %d reads served before, %d stale after" % (
        count, len(pairs), hows, served, len(stale)))
    assert not stale, "old values read after the flush replied (key, cmd, origin, reader, value): %r" % (
        stale[:20],)
    for n in cl:
        assert n.call("DBSIZE") == 0, "%s still holds keys" % n.name
    cl.coherence_round(20)


SECTIONS = 11
PAGES = 10
LEAVES = 1000  # 11 * 10 * 1000 = 110,000 keys


def _sitemap_key(a, b, c):
    return "sn:/a%d/b%d/c%04d" % (a, b, c)


def _dbsize(n):
    return n.call("DBSIZE")


@pytest.mark.slow
def test_sitemap_flushprefix_subtree(cluster_factory):
    """110,000 site map keys on 3 nodes; FLUSHPREFIX of a 1,000-key subtree
    on one node removes exactly that subtree on every node by its reply."""
    cl = cluster_factory(3)
    pairs = [(_sitemap_key(a, b, c), "page %d/%d/%d" % (a, b, c))
             for a in range(SECTIONS) for b in range(PAGES) for c in range(LEAVES)]
    assert len(pairs) == 110000
    for n in cl:
        with n.conn(timeout=60) as c:
            replies = c.pipeline([("SET", k, v) for k, v in pairs])
        assert replies.count(b"OK") == len(pairs), n.name
    before = {n.name: _dbsize(n) for n in cl}
    assert before == {n.name: 110000 for n in cl}, before

    # The subtree sn:/a3/b7/ (1,000 keys); sn:/a3/b70... does not exist, and
    # the neighbours sn:/a3/b6/, sn:/a3/b8/, sn:/a4/b7/ must survive.
    subtree = "sn:/a3/b7/"
    t0 = time.monotonic()
    removed = cl[1].call("FLUSHPREFIX", subtree)
    took = time.monotonic() - t0
    assert removed == LEAVES, "FLUSHPREFIX replied %r" % removed
    after = {n.name: _dbsize(n) for n in cl}
    assert after == {n.name: 110000 - LEAVES for n in cl}, (
        "DBSIZE right after FLUSHPREFIX replied (%.3fs): %r" % (took, after))
    flushed = [_sitemap_key(3, 7, c) for c in range(LEAVES)]
    kept = ([_sitemap_key(3, 6, c) for c in range(0, LEAVES, 7)] +
            [_sitemap_key(3, 8, c) for c in range(0, LEAVES, 7)] +
            [_sitemap_key(4, 7, c) for c in range(0, LEAVES, 7)] +
            [_sitemap_key(a, b, 999) for a in range(SECTIONS) for b in range(PAGES)
             if (a, b) != (3, 7)])
    for n in cl:
        with n.conn(timeout=60) as c:
            gone = c.pipeline([("EXISTS", k) for k in flushed])
            there = c.pipeline([("GET", k) for k in kept])
        assert sum(gone) == 0, "%s still has %d flushed keys" % (n.name, sum(gone))
        missing = [k for k, v in zip(kept, there) if v is None]
        assert not missing, "%s lost keys outside the subtree: %r" % (n.name, missing[:10])
    print("FLUSHPREFIX of 1,000 of 110,000 keys replied in %.1f ms" % (took * 1000))
    # A second flush of the same subtree removes nothing anywhere.
    assert cl[2].call("FLUSHPREFIX", subtree) == 0
    assert {n.name: _dbsize(n) for n in cl} == after


def test_seed_readable_everywhere_at_reply(cluster_factory):
    cl = cluster_factory(3)
    conns = [n.conn() for n in cl]
    try:
        for i in range(300):
            o = i % 3
            key = "seed:%d" % (i // 2)  # every key seeded twice, from two nodes
            val = "v%d" % i
            assert conns[o].call("SEED", key, val) == b"OK"
            for n, c in zip(cl, conns):
                got = c.call("GET", key)
                assert got == val.encode(), "%s: GET %s after SEED %s on %s = %r" % (
                    n.name, key, val, cl[o].name, got)
        # A seed replaces a local fill everywhere.
        cl.fill([("seed:filled", "local")])
        assert conns[0].call("SEED", "seed:filled", "seeded", "PX", 60000) == b"OK"
        for n, c in zip(cl, conns):
            assert c.call("GET", "seed:filled") == b"seeded", n.name
            assert 0 < c.call("PTTL", "seed:filled") <= 60000, n.name
        # A flush from another node removes a seed everywhere.
        assert conns[2].call("DEL", "seed:filled") == 1
        for n, c in zip(cl, conns):
            assert c.call("GET", "seed:filled") is None, n.name
    finally:
        for c in conns:
            c.close()


def test_setl_refused_after_remote_flush(cluster_factory):
    cl = cluster_factory(3)
    a, b, c = (n.conn() for n in cl)
    try:
        # Nothing flushed it: accepted.
        v, token = a.call("GETL", "user:1")
        assert v is None
        assert a.call("SETL", "user:1", token, "fresh") == b"OK"
        assert a.call("GET", "user:1") == b"fresh"

        # A DEL of that key on another node between GETL and SETL: refused.
        v, token = a.call("GETL", "user:2")
        assert v is None
        assert b.call("DEL", "user:2") == 0
        assert a.call("SETL", "user:2", token, "stale") is None
        assert a.call("GET", "user:2") is None

        # A flush of another key does not refuse it.
        v, token = a.call("GETL", "user:3")
        assert c.call("DEL", "user:999") == 0
        assert a.call("SETL", "user:3", token, "ok") == b"OK"

        # A FLUSHPREFIX covering the key, from a third node: refused.
        v, token = a.call("GETL", "user:4")
        assert c.call("FLUSHPREFIX", "user:") >= 0
        assert a.call("SETL", "user:4", token, "stale") is None

        # UNLINK, GETDEL and PEXPIRE -1 elsewhere are flushes too.
        for i, how in enumerate(("UNLINK", "GETDEL", "PEXPIRE")):
            key = "user:%d" % (10 + i)
            v, token = a.call("GETL", key)
            _flush(b, how, key)
            assert a.call("SETL", key, token, "stale") is None, how

        # FLUSHALL on another node: refused; a new GETL after it: accepted.
        v, token = a.call("GETL", "user:5")
        assert b.call("FLUSHALL") == b"OK"
        assert a.call("SETL", "user:5", token, "stale") is None
        v, token = a.call("GETL", "user:5")
        assert a.call("SETL", "user:5", token, "fresh") == b"OK"
        assert a.call("GET", "user:5") == b"fresh"
        # A SEED from another node counts as a flush of that key for racing fills.
        v, token = a.call("GETL", "user:6")
        assert c.call("SEED", "user:6", "seeded") == b"OK"
        assert a.call("SETL", "user:6", token, "stale") is None
        assert a.call("GET", "user:6") == b"seeded"
    finally:
        for x in (a, b, c):
            x.close()


def test_pipelined_dels_apply_everywhere(cluster_factory):
    cl = cluster_factory(3)
    keys = ["pd:%d" % i for i in range(1000)]
    others = ["keep:%d" % i for i in range(100)]
    cl.fill([(k, "x" + k) for k in keys + others])
    assert [n.call("DBSIZE") for n in cl] == [1100] * 3
    with cl[0].conn() as c:
        t0 = time.monotonic()
        replies = c.pipeline([("DEL", k) for k in keys])
        took = time.monotonic() - t0
    assert replies == [1] * len(keys)
    for n in cl:
        with n.conn() as c:
            assert sum(c.pipeline([("EXISTS", k) for k in keys])) == 0, n.name
            assert c.pipeline([("GET", k) for k in others]) == [("x" + k).encode() for k in others]
        assert n.call("DBSIZE") == 100, n.name
    print("1,000 pipelined DELs replied in %.1f ms" % (took * 1000))
    # Pipelined DELs from every node at once, of the same and distinct keys.
    cl.fill([(k, "y") for k in keys])
    import threading
    errors = []

    def run(node, part):
        try:
            with node.conn() as c:
                c.pipeline([("DEL", k) for k in part])
        except Exception as e:  # reported below
            errors.append((node.name, repr(e)))

    ts = [threading.Thread(target=run, args=(n, keys[i::2] + keys[:100])) for i, n in enumerate(cl)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=scaled(60))
    assert not any(t.is_alive() for t in ts), "a DEL pipeline did not finish"
    assert not errors, errors
    for n in cl:
        with n.conn() as c:
            assert sum(c.pipeline([("EXISTS", k) for k in keys])) == 0, n.name


def test_flushall_and_flushdb_everywhere(cluster_factory):
    cl = cluster_factory(3)
    cl.fill([("fa:%d" % i, "v") for i in range(500)])
    assert cl[2].call("FLUSHALL") == b"OK"
    assert [n.call("DBSIZE") for n in cl] == [0, 0, 0]
    cl.fill([("fd:%d" % i, "v") for i in range(500)])
    assert cl[1].call("FLUSHDB") == b"OK"
    assert [n.call("DBSIZE") for n in cl] == [0, 0, 0]
    # Member counters agree with what went over the links.
    for n in cl:
        ms = n.members()
        assert set(ms) == {o.name for o in cl.others(n)}
        for m in ms.values():
            assert m["state"] == "alive", ms
    # Round-trip times come from the heartbeats, measured below the millisecond.
    rtts = [float(m["rtt_ms"]) for n in cl for m in n.members().values()]
    assert all(0 <= r < scaled(500) for r in rtts), rtts
    assert any(r != int(r) for r in rtts), "rtt_ms has whole milliseconds only: %r" % rtts
