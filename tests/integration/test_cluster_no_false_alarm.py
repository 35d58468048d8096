"""Failure detection raises no false alarm: on an idle cluster and on a busy
one (every node flushing and filling through pipelines), no member leaves
the alive state and no node stops serving its cache."""

import threading
import time

import pytest

from cluster_harness import cluster_factory, requires_cohort  # noqa: F401
from conftest import TIME_SCALE, scaled

pytestmark = [requires_cohort, pytest.mark.cohort_only]


def _state_changes(node):
    return node.metrics().get("cohort_member_state_changes_total", 0)


def _assert_all_alive(cl):
    for n in cl:
        states = {k: v["state"] for k, v in n.members().items()}
        assert states == {o.name: "alive" for o in cl.others(n)}, (n.name, states)
        assert n.serving(), "%s stopped serving its cache" % n.name


def test_idle_and_busy_cluster_raise_no_alarm(cluster_factory):
    # Twice the default timings, times the build's slowness (a sanitizer
    # build runs several times slower): the test is about false alarms
    # caused by the nodes' own load, and a shared 2-core machine can stall
    # a process for as long as the default 500 ms on its own.
    scale = 2 * TIME_SCALE
    options = {"suspect_after": int(500 * scale), "probe_timeout": int(400 * scale)}
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
