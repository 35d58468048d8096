"""Helpers for the lease and job tests: nodes that share one SQLite store
(the embedded store: several cohortds on one host share the file), calls, and
reading the store's run table directly with python's sqlite3."""

import os
import sqlite3

import helpers


def call(d, *args, timeout=5.0):
    """Runs one command on daemon d; returns the decoded reply."""
    with helpers.RawConn(d.port, timeout=timeout) as c:
        return helpers.decode1(c.cmd(*args))


def shared_url(tmp_path):
    return "sqlite://%s" % os.path.join(str(tmp_path), "shared.db")


def node_config(tmp_path, name, role="hot", ttl="1s", jobs=None, extra=None):
    cfg = {"node": {"name": name, "role": role},
           "store": {"url": shared_url(tmp_path)},
           "leases": {"ttl": ttl}}
    for job, keys in (jobs or {}).items():
        cfg["job %s" % job] = dict(keys)
    for s, kv in (extra or {}).items():
        cfg.setdefault(s, {}).update(kv)
    return cfg


def start_nodes(cohortd, tmp_path, hot=("n1", "n2", "n3"), warm=(), **kw):
    nodes = {}
    for name in hot:
        nodes[name] = cohortd(config=node_config(tmp_path, name, **kw), name=name)
    for name in warm:
        nodes[name] = cohortd(config=node_config(tmp_path, name, role="warm", **kw), name=name)
    return nodes


def lease(d, name="canonical"):
    """[holder, epoch, ms_left, is_me] with the holder decoded (None if none)."""
    h, epoch, left, me = call(d, "LEADER", name)
    return (h.decode() if h is not None else None), epoch, left, me


def holders(nodes, name="canonical"):
    """Names of the running nodes that say they hold name."""
    return sorted(n for n, d in nodes.items() if d.alive() and lease(d, name)[3] == 1)


def runs(tmp_path, job):
    """Every row of job in the shared store, by slot: dicts."""
    db = sqlite3.connect(os.path.join(str(tmp_path), "shared.db"), timeout=10)
    try:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT job, slot_ms, node, epoch, status, code, output, started_ms,"
                          " ended_ms, started_at FROM cohort_job_runs WHERE job = ?"
                          " ORDER BY slot_ms", (job,)).fetchall()
        return [dict(r) for r in rows]
    except sqlite3.OperationalError:
        return []  # not created yet
    finally:
        db.close()


def check_slots(rows, step_ms=1000):
    """Every slot between the first and the last started was started exactly
    once (the table's key makes twice impossible; this checks none is
    missing or left only claimed), and the epochs only grow with the slot and
    with the start time. Rows after the last started one may still be
    claimed only (in flight)."""
    rows = [r for r in rows if r["started_at"] is not None or r["status"]]
    slots = [r["slot_ms"] for r in rows]
    assert slots, "no runs"
    assert len(set(slots)) == len(slots)
    want = list(range(slots[0], slots[-1] + 1, step_ms))
    missing = sorted(set(want) - set(slots))
    assert not missing, "slots never started: %r" % missing
    epochs = [r["epoch"] for r in rows]
    assert epochs == sorted(epochs), "epochs went down along the slots: %r" % epochs
    started = sorted((r for r in rows if r["started_ms"]), key=lambda r: r["started_ms"])
    by_start = [r["epoch"] for r in started]
    assert by_start == sorted(by_start), "a run started with an older epoch: %r" % by_start
