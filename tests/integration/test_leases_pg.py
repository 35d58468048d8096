"""Leases and jobs against a real PostgreSQL, which tests/pg/pg-harness.sh
starts for this module (initdb in a temporary directory, loopback only) and
removes afterwards: failover on kill -9, and the store stopped and started
under a leader (the cache keeps serving, /health says the store is down, the
leader stops acting, and everything resumes by itself)."""

import time

import pytest

import helpers
from conftest import scaled
from pg_server import pg_server
from jobs_harness import call, holders, lease

pytestmark = pytest.mark.cohort_only

@pytest.fixture(scope="module")
def pg():
    with pg_server() as server:
        yield server


def start(cohortd, url, name, role="hot"):
    cfg = {"node": {"name": name, "role": role},
           "store": {"url": url + "?connect_timeout=2"},
           "leases": {"ttl": "1s"},
           "job tick": {"every": "1s", "command": "echo $COHORT_EPOCH", "catchup": "all"}}
    return cohortd(config=cfg, name=name)


def history(d):
    return call(d, "JOB.HISTORY", "tick", "100")


def test_failover_and_store_outage_pg(cohortd, pg):
    url, harness = pg
    nodes = {n: start(cohortd, url, n) for n in ("a", "b")}
    nodes["w"] = start(cohortd, url, "w", role="warm")
    assert helpers.wait_for(lambda: len(holders(nodes)) == 1, scaled(10)), holders(nodes)
    first = holders(nodes)[0]
    assert first != "w"
    e1 = lease(nodes[first])[1]

    nodes[first].expect_clean_exit = False
    nodes[first].kill()
    assert helpers.wait_for(lambda: len(holders(nodes)) == 1, scaled(4))
    second = holders(nodes)[0]
    assert second not in (first, "w")
    e2 = lease(nodes[second])[1]
    assert e2 > e1
    assert helpers.wait_for(lambda: [h for h in history(nodes[second])
                                     if h[1] == second.encode() and h[3] == b"ok"], scaled(4))

    # PostgreSQL stops: caches serve, health says so, nobody acts as leader.
    harness("pause")
    try:
        for d in (nodes[second], nodes["w"]):
            assert call(d, "SET", "k", "v") == b"OK" and call(d, "GET", "k") == b"v"

        def down():
            _, _, body = helpers.http_get(nodes[second].http_port, "/health")
            return b"store: down" in body
        assert helpers.wait_for(down, scaled(8))
        assert helpers.wait_for(lambda: holders(nodes) == [], scaled(3))
        status, _, _ = helpers.http_get(nodes[second].http_port, "/health")
        assert status == 200
    finally:
        harness("resume")
    assert helpers.wait_for(lambda: len(holders(nodes)) == 1, scaled(15)), holders(nodes)
    after = time.time() * 1000
    leader = nodes[holders(nodes)[0]]
    assert helpers.wait_for(lambda: [h for h in history(leader) if h[5] > after], scaled(5))

    runs = sorted(history(leader), key=lambda h: h[0])
    slots = [h[0] for h in runs]
    assert len(slots) == len(set(slots))
    epochs = [h[2] for h in runs]
    assert epochs == sorted(epochs), epochs
    assert "w" not in {h[1].decode() for h in runs}
