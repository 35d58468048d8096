"""WAIT numreplicas timeout in a 3-node cluster: the reply is the number of
members in contact that acknowledged this connection's newest write or
flush, at once when there are numreplicas of them, else once there are or
when the timeout has passed (0: no limit), as redis-server counts replicas.
A hung member (SIGSTOP) acknowledges nothing, so the count drops and WAIT
returns after its timeout; once it runs again and has applied the write, it
counts again."""

import socket
import time

import pytest

import helpers
from cluster_harness import cluster_factory, requires_cohort, scaled  # noqa: F401

pytestmark = [requires_cohort, pytest.mark.cohort_only]


def test_wait_counts_the_members_that_applied_the_write(cluster_factory):
    cl = cluster_factory(3, writes="replicate")  # the default outside the tests
    n1 = cl[0]
    with n1.conn() as c:
        # No write yet: every member in contact counts.
        assert c.call("WAIT", 2, 0, timeout=scaled(10)) == 2
        assert c.call("SET", "k", "v") == b"OK"
        assert c.call("WAIT", 2, 0, timeout=scaled(10)) == 2
        assert c.call("WAIT", 5, 200, timeout=scaled(10)) == 2  # more than there are
        assert c.call("INCR", "n") == 1
        assert c.call("HSET", "h", "f", "v") == 1
        assert c.call("DEL", "k") == 1
        assert c.call("WAIT", 1, 0, timeout=scaled(10)) == 2
        # Inside MULTI it replies at once, as redis-server.
        assert c.call("MULTI") == b"OK"
        assert c.call("WAIT", 2, 0) == b"QUEUED"
        assert c.call("EXEC", timeout=scaled(10)) == [2]
    for n in cl:
        assert n.call("GET", "n") == b"1"


def test_wait_with_a_hung_member_returns_after_its_timeout(cluster_factory):
    cl = cluster_factory(3, writes="replicate")  # the default outside the tests
    n1, n3 = cl[0], cl[2]
    n3.sigstop()
    try:
        with n1.conn(timeout=scaled(30)) as c:
            # The write's reply waits for n3 until its lease on n1 runs out.
            assert c.call("SET", "k", "v", timeout=scaled(30)) == b"OK"
            t0 = time.monotonic()
            assert c.call("WAIT", 2, 500, timeout=scaled(30)) == 1
            assert time.monotonic() - t0 >= 0.5  # it waited its whole timeout
            assert c.call("WAIT", 1, 0, timeout=scaled(10)) == 1  # enough: at once
            # No timeout: it waits for as long as n3 is hung...
            c.raw.send(helpers.encode("WAIT", 2, 0))
            with pytest.raises(socket.timeout):
                c.raw.read_reply(1.0)
            # ... and replies once n3 runs again and acknowledged the write.
            n3.sigcont()
            assert helpers.decode1(c.raw.read_reply(scaled(30))) == 2
            assert c.call("PING") == b"PONG"
    finally:
        if n3.stopped:
            n3.sigcont()
    cl.wait_converged(timeout=20)
    assert n3.call("GET", "k") == b"v"


def test_wait_on_a_node_alone_replies_at_once(cohortd):
    d = cohortd()
    with d.raw() as c:
        assert c.cmd("SET", "k", "v") == b"+OK\r\n"
        assert c.cmd("WAIT", "1", "0") == b":0\r\n"
