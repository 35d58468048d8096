"""The string and key commands in a 3-node cluster: what removes a key is a
flush applied on every member before the reply (RENAME's source, EXPIREAT /
PEXPIREAT to a time already past, RESTORE REPLACE with a past time); what
stores a value is a fill of the node that ran it (RENAME's destination,
COPY, INCR, GETSET, APPEND, SETRANGE, MSETNX, RESTORE)."""

import time

import pytest

from cluster_harness import cluster_factory, requires_cohort  # noqa: F401 (fixture)

pytestmark = [requires_cohort, pytest.mark.cohort_only]


def test_rename_flushes_source_everywhere(cluster_factory):
    cl = cluster_factory(3)
    a, b, c = cl[0], cl[1], cl[2]
    assert len(a.members()) == 2 and a.serving()
    cl.fill([("src", "v"), ("dst", "old"), ("nx", "v")])
    assert a.call("RENAME", "src", "dst") == b"OK"
    # The reply came after every member applied the flush of the source.
    assert cl.get_all("src") == {n.name: None for n in cl}
    assert a.call("GET", "dst") == b"v"
    # The destination is a fill of a only: the others keep what they had.
    assert b.call("GET", "dst") == b"old" and c.call("GET", "dst") == b"old"
    assert b.call("RENAMENX", "nx", "fresh") == 1
    assert cl.get_all("nx") == {n.name: None for n in cl}
    assert b.call("GET", "fresh") == b"v"
    assert a.call("EXISTS", "fresh") == 0 and c.call("EXISTS", "fresh") == 0


def test_expireat_in_the_past_flushes_everywhere(cluster_factory):
    cl = cluster_factory(3)
    cl.fill([("k1", "v"), ("k2", "v"), ("k3", "v")])
    future = int(time.time()) + 3600
    assert cl[0].call("EXPIREAT", "k1", future) == 1
    assert cl[1].call("TTL", "k1") == -1  # a future time is local
    assert cl[0].call("EXPIREAT", "k1", 1) == 1
    assert cl.get_all("k1") == {n.name: None for n in cl}
    assert cl[1].call("PEXPIREAT", "k2", 1) == 1
    assert cl.get_all("k2") == {n.name: None for n in cl}
    # RESTORE REPLACE with a time already past removes the key everywhere.
    payload = cl[2].call("DUMP", "k3")
    assert cl[2].call("RESTORE", "k3", 1, payload, "ABSTTL", "REPLACE") == b"OK"
    assert cl.get_all("k3") == {n.name: None for n in cl}


def test_value_writes_are_fills(cluster_factory):
    cl = cluster_factory(3)
    a, b = cl[0], cl[1]
    cl.fill([("n", "10"), ("s", "abc"), ("g", "old")])
    assert a.call("INCR", "n") == 11
    assert a.call("INCRBYFLOAT", "n", "0.5") == b"11.5"
    assert a.call("APPEND", "s", "def") == 6
    assert a.call("SETRANGE", "s", 0, "X") == 6
    assert a.call("GETSET", "g", "new") == b"old"
    assert a.call("COPY", "g", "g2") == 1
    assert a.call("MSETNX", "m1", "1", "m2", "2") == 1
    payload = a.call("DUMP", "s")
    assert b.call("RESTORE", "r", 0, payload) == b"OK"
    for n in cl.others(a):
        assert n.call("GET", "n") == b"10", n.name
        assert n.call("GET", "s") == b"abc", n.name
        assert n.call("GET", "g") == b"old", n.name
        assert n.call("EXISTS", "g2", "m1", "m2") == 0, n.name
    assert b.call("GET", "r") == b"Xbcdef"
    assert a.call("EXISTS", "r") == 0


def test_hash_and_set_writes_are_fills_and_removals_flush(cluster_factory):
    """A hash or set write is a fill of the node that ran it (its whole value
    stored there); removing the last field or member, DEL and SPOP of the
    whole set are flushes applied on every member before the reply."""
    cl = cluster_factory(3)
    a, b, c = cl[0], cl[1], cl[2]
    assert a.call("HSET", "h", "f", "1", "g", "2") == 2
    assert b.call("HSET", "h", "f", "other") == 1
    assert a.call("SADD", "s", "x") == 1
    assert c.call("SADD", "s", "x", "y") == 2
    # Fills: each node has its own value.
    assert a.call("HGET", "h", "f") == b"1" and b.call("HGET", "h", "f") == b"other"
    assert c.call("EXISTS", "h") == 0
    assert a.call("HDEL", "h", "g") == 1  # not the last field: a fill
    assert b.call("HLEN", "h") == 1
    # The last field removed on a: h is flushed on b too.
    assert a.call("HDEL", "h", "f") == 1
    assert [n.call("EXISTS", "h") for n in cl] == [0, 0, 0]
    # SPOP of the whole set on a flushes c's copy.
    assert a.call("SPOP", "s", "5") == [b"x"]
    assert [n.call("EXISTS", "s") for n in cl] == [0, 0, 0]
    c.call("SADD", "t", "m")
    assert a.call("SADD", "t", "n") == 1
    assert b.call("DEL", "t") == 0
    assert [n.call("EXISTS", "t") for n in cl] == [0, 0, 0]
