"""Leader leases through the shared store (SQLite, one file shared by every
node on this host): one holder of canonical, failover on kill -9 and on
SIGTERM, warm nodes that never lead, application leases, and a store that is
unreachable or misnamed at start."""

import os
import time

import pytest

import helpers
from conftest import run_cohortd, scaled
from jobs_harness import call, check_slots, holders, lease, node_config, runs, start_nodes

pytestmark = pytest.mark.cohort_only

TICK = {"every": "1s", "command": "echo $COHORT_EPOCH", "catchup": "all"}


def wait_one_holder(nodes, timeout):
    got = helpers.wait_for(lambda: len(holders(nodes)) == 1 and holders(nodes), scaled(timeout))
    assert got, "no single holder of canonical: %r" % holders(nodes)
    return got[0]


def test_failover_kill_sigterm_and_warm(cohortd, tmp_path):
    nodes = start_nodes(cohortd, tmp_path, warm=("w",), jobs={"tick": TICK})
    first = wait_one_holder(nodes, 5)
    assert first != "w"
    # Every node sees the same holder and epoch.
    assert helpers.wait_for(lambda: all(lease(d)[0] == first for d in nodes.values()),
                            scaled(3)), [lease(d) for d in nodes.values()]
    epoch1 = lease(nodes[first])[1]
    assert epoch1 >= 1

    # kill -9 the holder: another hot node takes over, with a higher epoch,
    # and the job runs there within 3 s.
    helpers.wait_for(lambda: any(r["node"] == first for r in runs(tmp_path, "tick")), scaled(3))
    nodes[first].expect_clean_exit = False
    t0 = time.time()
    nodes[first].kill()
    second = wait_one_holder(nodes, 3)
    assert second not in (first, "w")

    def ran_on_second():
        return [r for r in runs(tmp_path, "tick")
                if r["node"] == second and r["ended_ms"] and r["started_ms"] >= t0 * 1000]
    assert helpers.wait_for(ran_on_second, scaled(3)), "no run on %s within 3 s" % second
    epoch2 = lease(nodes[second])[1]
    assert epoch2 > epoch1
    assert all(r["epoch"] == epoch2 and r["output"].strip() == str(epoch2).encode()
               for r in ran_on_second())

    # SIGTERM the holder: it releases, the last hot node takes over at once.
    t1 = time.monotonic()
    assert nodes[second].stop() == 0
    third = wait_one_holder(nodes, 0.5)
    assert time.monotonic() - t1 < scaled(0.5) + 0.25, "takeover after SIGTERM too slow"
    assert third not in (first, second, "w")
    assert lease(nodes[third])[1] > epoch2

    # Only the warm node left: it never leads.
    nodes[third].expect_clean_exit = False
    nodes[third].kill()
    time.sleep(scaled(2.5))  # more than the lease's ttl (1s) and several polls
    h, _, left, me = lease(nodes["w"])
    assert me == 0 and h is None and left == 0
    err = call(nodes["w"], "LEADER.ACQUIRE", "mine")
    assert isinstance(err, helpers.RespError) and b"warm" in err.msg

    rows = runs(tmp_path, "tick")
    assert not [r for r in rows if r["node"] == "w"]
    check_slots(rows)


def test_application_lease(cohortd, tmp_path):
    nodes = start_nodes(cohortd, tmp_path, hot=("a", "b"))
    a, b = nodes["a"], nodes["b"]
    assert call(a, "LEADER.ACQUIRE", "reindex", "1000")[3] in (0, 1)
    assert helpers.wait_for(lambda: lease(a, "reindex")[3] == 1, scaled(3))
    assert call(b, "LEADER.ACQUIRE", "reindex", "1000")[3] == 0
    time.sleep(0.5)
    assert lease(b, "reindex")[0] == "a" and lease(b, "reindex")[3] == 0
    epoch = lease(a, "reindex")[1]
    assert call(a, "LEADER.RELEASE", "reindex") == b"OK"
    assert helpers.wait_for(lambda: lease(b, "reindex")[3] == 1, scaled(2))
    assert lease(b, "reindex")[1] == epoch + 1
    assert lease(a, "reindex")[3] == 0
    # Errors: a lease not acquired here, a bad name, a bad ttl, canonical.
    assert isinstance(call(a, "LEADER.RELEASE", "other"), helpers.RespError)
    assert isinstance(call(a, "LEADER", "bad name"), helpers.RespError)
    assert isinstance(call(a, "LEADER.ACQUIRE", "x", "5"), helpers.RespError)
    assert isinstance(call(a, "LEADER.RELEASE", "canonical"), helpers.RespError)
    docs = call(a, "COMMAND", "DOCS", "leader", "leader.acquire", "leader.release", "jobs",
                "job.run", "job.history")
    assert len(docs) == 12, docs


def test_store_unreachable_at_start(cohortd, tmp_path):
    port = helpers.free_port()  # nothing listens there
    d = cohortd(config={"node": {"name": "lonely"},
                        "store": {"url": "postgresql://cohort@127.0.0.1:%d/cohort"
                                         "?connect_timeout=1" % port}})
    assert call(d, "SET", "k", "v") == b"OK"
    assert call(d, "GET", "k") == b"v"

    def down():
        status, _, body = helpers.http_get(d.http_port, "/health")
        return status == 200 and b"store: down" in body and body
    assert helpers.wait_for(down, scaled(5)), helpers.http_get(d.http_port, "/health")
    info = helpers.info_dict(helpers.RawConn(d.port).cmd("INFO", "store"))
    assert info["store_state"] == "down" and info["store_up"] == "0"
    _, _, metrics = helpers.http_get(d.http_port, "/metrics")
    assert b"cohort_store_up 0" in metrics
    assert lease(d)[3] == 0


def test_bad_store_url_exits_2(tmp_path):
    p = run_cohortd(["--set", "store.url=mysql://db/x", "--port", "0", "--http-port", "0"])
    assert p.returncode == 2
    assert b"store.url" in p.stderr


def test_data_dir_created(cohortd, tmp_path):
    where = os.path.join(str(tmp_path), "deep", "data")
    d = cohortd(config={"node": {"data_dir": where}})
    assert helpers.wait_for(lambda: lease(d)[3] == 1, scaled(3))
    assert os.path.exists(os.path.join(where, "cohort.db"))
