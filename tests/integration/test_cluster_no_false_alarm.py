"""Failure detection raises no false alarm: on an idle cluster and on a busy
one (every node flushing and filling through pipelines), no member leaves
the alive state and no node stops serving its cache."""

import threading
import time

import pytest

from cluster_harness import cluster_factory, requires_cohort  # noqa: F401
from conftest import SANITIZED, TIME_SCALE, scaled

pytestmark = [requires_cohort, pytest.mark.cohort_only]


def _state_changes(node):
    return node.metrics().get("cohort_member_state_changes_total", 0)


def _assert_all_alive(cl):
    for n in cl:
        states = {k: v["state"] for k, v in n.members().items()}
        assert states == {o.name: "alive" for o in cl.others(n)}, (n.name, states)
        assert n.serving(), "%s stopped serving its cache" % n.name


def test_idle_and_busy_cluster_raise_no_alarm(cluster_factory):
    # The default timings in a release build. A sanitizer build runs several
    # times slower, so there the detector gets the same head room: the test
    # is about false alarms caused by load, not about raw speed.
    options = {} if not SANITIZED else {"suspect_after": int(500 * TIME_SCALE),
                                        "probe_timeout": int(400 * TIME_SCALE)}
    cl = cluster_factory(3, options=options)
    cl.wait_converged(timeout=5.0)
    before = {n.name: _state_changes(n) for n in cl}

    time.sleep(3.0)  # idle: heartbeats only
    _assert_all_alive(cl)

    stop = threading.Event()
    errors = []

    def load(node, tag):
        i = 0
        try:
            with node.conn() as c:
                while not stop.is_set() and i < 200:
                    keys = ["busy:%s:%d:%d" % (tag, i, j) for j in range(200)]
                    c.pipeline([("SET", k, "v" * 100) for k in keys])
                    c.pipeline([("DEL", k) for k in keys])
                    i += 1
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append("%s: %r" % (node.name, e))

    threads = [threading.Thread(target=load, args=(n, n.name)) for n in cl]
    for t in threads:
        t.start()
    time.sleep(scaled(3.0))
    stop.set()
    for t in threads:
        t.join(timeout=scaled(30))
    assert not errors, errors
    _assert_all_alive(cl)
    after = {n.name: _state_changes(n) for n in cl}
    assert after == before, "member states changed on a healthy cluster: %r -> %r" % (
        before, after)
