"""Hostile uses of ordinary commands, end to end: a transaction of a million
commands, an HSET of a million fields (refused as a protocol error under the
default max_multibulk, done when the limit allows it), and a script that
nests tables deeper than a reply can hold (cut at redis-server's depth). Each ends in a reply or a clear
error, and another client is served right after."""

import time

import pytest

import helpers
from conftest import scaled

pytestmark = pytest.mark.cohort_only  # limits are cohort's (max_multibulk)

MILLION = 1000000


def read_exact(c, want):
    """Reads len(want) bytes (within 60 s, scaled) and checks they are want."""
    deadline = time.monotonic() + scaled(60)
    while len(c.buf) < len(want):
        c._fill(deadline)
    got = bytes(c.buf[:len(want)])
    del c.buf[:len(want)]
    assert got == want


def served(d):
    with d.raw() as other:
        assert other.cmd("PING") == b"+PONG\r\n"


@pytest.mark.slow
def test_transaction_of_a_million_commands(cohortd):
    d = cohortd()
    incr = helpers.encode("INCR", "k")
    chunk = 20000
    with d.raw(timeout=scaled(60)) as c:
        assert c.cmd("MULTI") == b"+OK\r\n"
        for _ in range(MILLION // chunk):
            c.send(incr * chunk)
            read_exact(c, b"+QUEUED\r\n" * chunk)
        served(d)  # queued commands do not hold the others up
        c.send(helpers.encode("EXEC"))
        read_exact(c, b"*%d\r\n" % MILLION +
                   b"".join(b":%d\r\n" % i for i in range(1, MILLION + 1)))
        assert c.cmd("GET", "k") == b"$7\r\n1000000\r\n"
    served(d)


def hset_million(c):
    args = ["HSET", "h"]
    for i in range(MILLION):
        args += ["f%d" % i, "v%d" % i]
    c.send(helpers.encode(*args))


def test_hset_of_a_million_fields_over_max_multibulk(cohortd):
    d = cohortd()
    with d.raw(timeout=scaled(60)) as c:
        try:
            hset_million(c)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while the rest was sent
        assert c.read_until_closed() == b"-ERR Protocol error: invalid multibulk length\r\n"
    served(d)


@pytest.mark.slow
def test_hset_of_a_million_fields(cohortd):
    d = cohortd(config={"client": {"max_multibulk": str(2 * MILLION + 2)}})
    with d.raw(timeout=scaled(60)) as c:
        hset_million(c)
        assert c.read_reply() == b":%d\r\n" % MILLION
        served(d)
        assert c.cmd("HLEN", "h") == b":%d\r\n" % MILLION
        assert c.cmd("HGET", "h", "f999999") == b"$7\r\nv999999\r\n"
        assert c.cmd("OBJECT", "ENCODING", "h") == b"$9\r\nhashtable\r\n"
        assert c.cmd("HSET", "h", "f0", "new") == b":0\r\n"
        assert c.cmd("HGET", "h", "f0") == b"$3\r\nnew\r\n"
        assert c.cmd("DEL", "h") == b":1\r\n"
    served(d)


def test_script_nesting_deeper_than_a_reply(cohortd):
    d = cohortd()
    with d.raw(timeout=scaled(30)) as c:
        c.send(helpers.encode("EVAL", "local t = {} local c = t for i = 1, 100000 do c[1] = {} "
                                      "c = c[1] end return t", "0"))
        # redis-server 7.0.15's bytes: 7,995 levels, then the error in place.
        read_exact(c, b"*1\r\n" * 7995 + b"-ERR reached lua stack limit\r\n")
        assert c.cmd("EVAL", "return 1", "0") == b":1\r\n"
    served(d)
