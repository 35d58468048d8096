"""Hashes and sets beyond what the differential corpus compares: DUMP /
RESTORE round trips of both types (and a string's payload does not turn into
a hash), a collection bounded by max_bulk_len with the value unchanged after
the refusal, a large HSET / SADD in one command with other clients served,
random replies that only hold as sets, MEMORY USAGE and eviction under
maxmemory counting collections.

Runs against redis-server too ($COHORTD=redis-server), except what is
cohort's own (marked cohort_only)."""

import pytest

import helpers
from conftest import FLAVOR

cohort_only = pytest.mark.skipif(FLAVOR != "cohort", reason="cohort's own behaviour")


def _d(raw):
    return helpers.decode1(raw)


def test_dump_restore_hash_and_set(cohortd):
    d = cohortd()
    with d.raw() as c:
        c.cmd("HSET", "h", "f1", "v1", "f2", "x" * 100)
        c.cmd("SADD", "i", "3", "1", "2")
        c.cmd("SADD", "s", "a", "b", "c")
        c.cmd("HSET", "small", "a", "1")
        for k in ("h", "i", "s", "small"):
            payload = _d(c.cmd("DUMP", k))
            assert c.cmd("RESTORE", "copy:" + k, "0", payload) == b"+OK\r\n"
            assert c.cmd("TYPE", "copy:" + k) == c.cmd("TYPE", k)
            assert c.cmd("OBJECT", "ENCODING", "copy:" + k) == \
                c.cmd("OBJECT", "ENCODING", k), k
        assert _d(c.cmd("HGETALL", "copy:h")) == _d(c.cmd("HGETALL", "h"))
        assert c.cmd("SMEMBERS", "copy:i") == c.cmd("SMEMBERS", "i")
        assert sorted(_d(c.cmd("SMEMBERS", "copy:s"))) == [b"a", b"b", b"c"]
        assert c.cmd("TYPE", "copy:s") == b"+set\r\n"
        # TTL carried by RESTORE.
        payload = _d(c.cmd("DUMP", "s"))
        assert c.cmd("RESTORE", "ttl:s", "100000", payload) == b"+OK\r\n"
        assert 0 < _d(c.cmd("PTTL", "ttl:s")) <= 100000
        assert c.cmd("HGET", "copy:s", "a").startswith(b"-WRONGTYPE")


@cohort_only
def test_restore_refuses_a_payload_typed_wrong(cohortd):
    """A payload is the value, a type/encoding byte, the format version and
    a checksum: with the checksum intact, a string's bytes cannot be made a
    set (the type byte is covered by the checksum, so any edit is refused)."""
    d = cohortd()
    with d.raw() as c:
        c.cmd("SET", "str", "\x01\x02\x00\x01\x01a")  # looks like a set's bytes
        payload = bytearray(_d(c.cmd("DUMP", "str")))
        payload[-11] = 0x20  # the type nibble: set
        assert c.cmd("RESTORE", "x", "0", bytes(payload)) == \
            b"-ERR DUMP payload version or checksum are wrong\r\n"
        good = _d(c.cmd("DUMP", "str"))
        assert c.cmd("RESTORE", "y", "0", good) == b"+OK\r\n"
        assert c.cmd("TYPE", "y") == b"+string\r\n"


@cohort_only
def test_collection_bounded_by_max_bulk_len(cohortd):
    d = cohortd(config={"client": {"max_bulk_len": "4kb"}})
    with d.raw() as c:
        n = 0
        while True:
            raw = c.cmd("HSET", "h", "field%05d" % n, "v" * 200)
            if raw.startswith(b"-"):
                break
            assert raw == b":1\r\n"
            n += 1
            assert n < 100, "the hash was never refused"
        assert raw == b"-ERR the value would be larger than max_bulk_len (4096 bytes)\r\n"
        assert _d(c.cmd("HLEN", "h")) == n  # unchanged by the refused write
        assert c.cmd("HGET", "h", "field%05d" % n) == b"$-1\r\n"
        for i in range(400):
            raw = c.cmd("SADD", "s", "member-%05d" % i)
            if raw.startswith(b"-"):
                break
        assert raw.startswith(b"-ERR the value would be larger than max_bulk_len")
        card = _d(c.cmd("SCARD", "s"))
        assert 0 < card < 400
        # Removals are never refused.
        assert c.cmd("SREM", "s", "member-00000") == b":1\r\n"


def test_large_hset_and_sadd_in_one_command(cohortd):
    d = cohortd()
    n = 100000
    args = ["HSET", "big"]
    for i in range(n):
        args += ["f%d" % i, "v%d" % i]
    with d.raw(timeout=60) as c, d.raw() as other:
        assert c.cmd(*args) == b":%d\r\n" % n
        assert other.cmd("PING") == b"+PONG\r\n"
        assert _d(c.cmd("HLEN", "big")) == n
        assert c.cmd("HGET", "big", "f%d" % (n - 1)) == b"$%d\r\n%s\r\n" % (
            len("v%d" % (n - 1)), b"v%d" % (n - 1))
        assert c.cmd("OBJECT", "ENCODING", "big") == b"$9\r\nhashtable\r\n"
        assert c.cmd(*args) == b":0\r\n"  # every field already there
        assert c.cmd("HDEL", "big", "f0", "f1", "nope") == b":2\r\n"
        assert _d(c.cmd("HLEN", "big")) == n - 2
        members = ["SADD", "bigset"] + [str(i) for i in range(n)]
        assert c.cmd(*members) == b":%d\r\n" % n
        assert _d(c.cmd("SCARD", "bigset")) == n
        assert c.cmd("SISMEMBER", "bigset", str(n - 1)) == b":1\r\n"
        assert _d(c.cmd("SINTERCARD", "1", "bigset", "LIMIT", "10")) == 10
        assert c.cmd("DEL", "big", "bigset") == b":2\r\n"


def test_random_replies_are_subsets(cohortd):
    d = cohortd()
    with d.raw() as c:
        fields = {b"f%d" % i: b"v%d" % i for i in range(20)}
        c.cmd("HSET", "h", *[x for kv in fields.items() for x in kv])
        c.cmd("SADD", "s", *[b"m%d" % i for i in range(20)])
        for _ in range(20):
            assert _d(c.cmd("HRANDFIELD", "h")) in fields
            got = _d(c.cmd("HRANDFIELD", "h", "5"))
            assert len(got) == 5 and len(set(got)) == 5 and set(got) <= set(fields)
            got = _d(c.cmd("HRANDFIELD", "h", "-30", "WITHVALUES"))
            assert len(got) == 60
            for k, v in zip(got[0::2], got[1::2]):
                assert fields[k] == v
            got = _d(c.cmd("SRANDMEMBER", "s", "7"))
            assert len(set(got)) == 7
            assert len(_d(c.cmd("SRANDMEMBER", "s", "-25"))) == 25
        popped = set()
        while _d(c.cmd("SCARD", "s")):
            got = _d(c.cmd("SPOP", "s", "3"))
            assert got and not (set(got) & popped)
            popped |= set(got)
        assert popped == {b"m%d" % i for i in range(20)}
        assert c.cmd("EXISTS", "s") == b":0\r\n"


@cohort_only
def test_memory_usage_and_eviction_count_collections(cohortd):
    d = cohortd(config={"cache": {"maxmemory": "2mb"}})
    with d.raw() as c:
        c.cmd("HSET", "h", "f", "v" * 1000)
        small = _d(c.cmd("MEMORY", "USAGE", "h"))
        c.cmd("HSET", "h", "g", "v" * 10000)
        assert _d(c.cmd("MEMORY", "USAGE", "h")) >= small + 10000
        for i in range(200):
            c.cmd("SADD", "set:%d" % i, *["member-%d-%d" % (i, j) for j in range(1000)])
        info = _d(c.cmd("INFO", "memory")).decode()
        used = int([l for l in info.split("\r\n") if l.startswith("used_memory:")][0][12:])
        assert used <= 2 * 1024 * 1024 * 1.1
        assert _d(c.cmd("DBSIZE")) < 201  # some sets were evicted
