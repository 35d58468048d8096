"""Scripting end to end: redis-py's lock helper (its release is an EVALSHA of
a Lua script), and a script's flushes held like any flush: EVAL replies once
every member applied them. The replies themselves are compared byte for byte
with redis-server by corpus/scripting.txt."""

import pytest
import redis

from cluster_harness import CommandError, cluster_factory, requires_cohort  # noqa: F401

pytestmark = [requires_cohort, pytest.mark.cohort_only]


def test_redis_py_lock_helper(cluster_factory):
    cl = cluster_factory(1)
    r = redis.Redis(port=cl[0].port)
    lock = r.lock("session:lock:42", timeout=5)
    assert lock.acquire(blocking=False)
    other = r.lock("session:lock:42", timeout=5)
    assert not other.acquire(blocking=False)
    lock.release()  # EVALSHA of the release script
    assert r.get("session:lock:42") is None
    assert other.acquire(blocking=False)
    stale = r.lock("session:lock:42", timeout=5)
    stale.local.token = b"not-the-owner"
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        stale.release()  # the release script refuses another owner's lock
    assert r.get("session:lock:42") is not None
    other.release()


def test_script_flush_is_held_until_members_applied_it(cluster_factory):
    cl = cluster_factory(3)
    cl.fill([("k", "v"), ("p:1", "x"), ("p:2", "y")])
    with cl[0].conn() as c:
        assert c.call("EVAL", "return redis.call('del', KEYS[1])", "1", "k") == 1
        # FLUSHPREFIX from a script, and a SEED: both go everywhere
        assert c.call("EVAL", "return redis.call('flushprefix', ARGV[1])", "0", "p:") == 2
        assert c.call("EVAL", "return redis.call('seed', KEYS[1], ARGV[1])", "1", "s",
                      "everywhere") == b"OK"
    for n in cl.others(cl[0]):
        with n.conn() as c:
            assert c.call("GET", "k") is None, n.name
            assert c.call("GET", "p:1") is None and c.call("GET", "p:2") is None, n.name
            assert c.call("GET", "s") == b"everywhere", n.name
    # A script that fails after a flush still waits for it, and the client
    # stays usable.
    cl.fill([("k2", "v")])
    with cl[0].conn() as c:
        with pytest.raises(CommandError, match="after"):
            c.call("EVAL", "redis.call('del', KEYS[1]) error('after')", "1", "k2")
    for n in cl:
        with n.conn() as c:
            assert c.call("GET", "k2") is None, n.name
            assert c.call("PING") == b"PONG"
