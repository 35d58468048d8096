"""Membership decided by the shared store: three nodes whose [store] url is
one SQLite file on this host (test_membership_store_pg.py runs the same
tests against a PostgreSQL server of tests/pg/pg-harness.sh).

Checked:
  - kill -9 of a node: the others see it dead through its session lock, well
    before its row could expire (member_lease is long here), and say why;
    on SQLite inside their lease on it, so they drop nothing;
  - SIGSTOP of a node past member_lease: its row expires by the database's
    clock, the others declare it dead and serve again, a DEL on n1 replies;
    after SIGCONT it serves nothing it held before, and rejoins;
  - peer links cut (a proxy that drops every frame) while every node reaches
    the store: nobody is declared dead, however long the cut lasts (longer
    than dead_after, which without a store would declare the member dead);
  - a clean stop marks the row left, and the others say so;
  - a node started alone keeps what it wrote when the others start (their
    first processes, started after it, cost it no cache: rule 41).
dead_after is short (1s) in every test, so a member declared dead by a
guess would show; the logs must name the store as the reason.

Every process and file is removed at teardown (cluster_factory, tmp_path)."""

import os
import subprocess
import time

import pytest

import helpers
from cluster_harness import cluster_factory, requires_cohort  # noqa: F401
from conftest import scaled
from peer_proxy import ordered_proxies

pytestmark = [requires_cohort, pytest.mark.cohort_only]

FAST = {"lease": "1s", "heartbeat": "50ms", "suspect_after": "300ms",
        "probe_timeout": "200ms", "flush_timeout": "500ms", "dead_after": "1s"}


@pytest.fixture
def store_url(tmp_path):
    """The shared store of the test's nodes: one SQLite file on this host
    (test_membership_store_pg.py overrides this with PostgreSQL)."""
    return "sqlite://%s" % os.path.join(str(tmp_path), "shared.db")


def make(cluster_factory, store_url, member_lease):
    cl = cluster_factory(3, start=False, options=FAST)
    for n in cl:
        n.config["store"] = {"url": store_url, "member_lease": member_lease}
    return cl


def dead_reason(node, member):
    """The reason node's log gives for member's last change to dead, or None."""
    lines = [l for l in node.log_text().splitlines()
             if " %s (" % member in l and "-> dead" in l]
    return lines[-1] if lines else None


def test_kill9_is_seen_at_once_through_the_session_lock(cluster_factory, store_url):
    cl = make(cluster_factory, store_url, "60s")
    cl.start(timeout=15)
    n1, n2, n3 = cl
    # A free lock counts only for a process a node has linked with and read
    # the row of while linked (renewals every 500 ms until then).
    time.sleep(scaled(1.5))
    n3.kill9()
    # The row lives 60 s more; only the free lock can make it dead sooner.
    cl.wait_state([n1, n2], "n3", "dead", timeout=scaled(15))
    for o in (n1, n2):
        why = dead_reason(o, "n3")
        assert why and "session lock is free" in why, why
    assert helpers.wait_for(lambda: n1.serving() and n2.serving(), scaled(10))
    cl.coherence_round(nkeys=10, nodes=[n1, n2])


def test_kill9_on_sqlite_is_decided_inside_the_lease_and_nobody_drops_its_cache(
        cluster_factory, store_url):
    """SQLite's session lock is a kernel file lock that only the process's
    end frees: a free one, of the process a node linked with, proves that
    process ended, and the node does not wait out the lease the member may
    hold on it (membership.c, G1). n3's death is then decided inside n1's
    and n2's leases on n3, so nothing n3 replied can be missing there: they
    keep their caches and go on serving the replicated keys. Before, the
    decision came a lease after the kill, each survivor dropped its cache
    and caught up, and requests failed meanwhile (bench/vs-shared-redis)."""
    cl = cluster_factory(3, start=False, options=dict(FAST, lease="3s"), writes="replicate")
    for n in cl:
        n.config["store"] = {"url": store_url, "member_lease": "60s"}
    cl.start(timeout=15)
    n1, n2, n3 = cl
    time.sleep(scaled(1.5))  # rows read while linked (G3)
    c1, c2 = n1.conn(), n2.conn()
    try:
        for i in range(20):
            assert c1.call("SET", "s:%d" % i, "v%d" % i) == b"OK"
        assert c2.call("GET", "s:19") == b"v19"
        logs_before = {o.name: len(o.log_text()) for o in (n1, n2)}
        n3.kill9()
        cl.wait_state([n1, n2], "n3", "dead", timeout=scaled(15))
        for o in (n1, n2):
            new = o.log_text()[logs_before[o.name]:]
            assert "session lock is free" in (dead_reason(o, "n3") or ""), new
            assert "dropped the whole cache" not in new, new
            assert "catching up" not in new, new
        assert c1.call("SET", "s:after", "x") == b"OK"
        for c in (c1, c2):
            assert c.call("GET", "s:after") == b"x"
            for i in range(20):
                assert c.call("GET", "s:%d" % i) == b"v%d" % i
    finally:
        c1.close()
        c2.close()


def forget_rows(store_url):
    """Removes the member rows earlier tests left in a shared PostgreSQL
    database (a killed node's row stays live until it expires); a SQLite
    store is a new file for each test."""
    if store_url.startswith("postgresql"):
        sql = ("DO $$ BEGIN IF to_regclass('cohort_members') IS NOT NULL THEN"
               " DELETE FROM cohort_members; END IF; END $$")
        subprocess.run(["psql", "-q", "-c", sql, store_url],
                       check=True, capture_output=True, timeout=30)


def test_a_node_started_alone_keeps_its_writes_when_the_others_start(cluster_factory,
                                                                     store_url):
    """WRITES.md rule 41: n1 starts alone (n2 and n3 have no row: they never
    joined), serves and takes sessions no other node holds. Then n2 and n3
    start: processes n1 never met, started after it. Without a store, an
    earlier process of theirs might have lived unseen beside n1 and written
    without it, and n1 drops its cache; with the store, every process reads
    n1's row before its first write, so none did while n1's row never
    lapsed, and the sessions, held by n1 alone, must survive. Before the
    rule n1 dropped them, and n2 and n3 caught up with nothing."""
    forget_rows(store_url)
    cl = cluster_factory(3, start=False, options=FAST, writes="replicate")
    for n in cl:
        n.config["store"] = {"url": store_url, "member_lease": "2s"}
    n1, n2, n3 = cl
    n1.start(timeout=15)
    assert helpers.wait_for(n1.serving, scaled(10)), n1.log_tail()
    with n1.conn() as c:
        for i in range(20):
            assert c.call("SET", "sess:%d" % i, "user%d" % i) == b"OK"
    n2.start(timeout=15)
    n3.start(timeout=15)
    cl.wait_converged(timeout=30)
    assert "dropped the whole cache" not in n1.log_text(), n1.log_tail()
    for n in cl:
        for i in range(20):
            assert n.call("GET", "sess:%d" % i) == b"user%d" % i, (n.name, n.log_tail())


def test_stopped_node_row_expires_and_it_serves_nothing_stale(cluster_factory, store_url):
    cl = make(cluster_factory, store_url, "2s")
    cl.start(timeout=15)
    n1, n2, n3 = cl
    cl.fill([("k", "old")])
    assert n3.call("GET", "k") == b"old"
    n3.sigstop()
    try:
        cl.wait_state([n1, n2], "n3", "dead", timeout=scaled(20))
        for o in (n1, n2):
            why = dead_reason(o, "n3")
            assert why and "expired" in why, why
        # It replies (0 when n1 dropped its cache: n3 died before n1 had
        # caught up with it, so n1 could not know what n3 had flushed).
        assert n1.call("DEL", "k", timeout=scaled(10)) in (0, 1)
        assert helpers.wait_for(lambda: n1.serving() and n2.serving(), scaled(10))
        assert n2.call("GET", "k") is None
    finally:
        n3.sigcont()
    # Resumed: whatever it answers first, it is never the flushed value.
    for _ in range(50):
        assert n3.call("GET", "k") is None, "n3 served a value flushed while it was stopped"
    cl.wait_converged(timeout=20)
    assert n3.call("GET", "k") is None
    cl.coherence_round(nkeys=10)


def test_cut_peer_links_declare_nobody_dead(cluster_factory, store_url):
    probe = cluster_factory(3, start=False, options=FAST)  # for the ports only
    peers, proxies = ordered_proxies(probe)
    try:
        cl = make(cluster_factory, store_url, "2s")
        for n, p in zip(cl, probe):
            n.cluster_port, n.port, n.http_port = p.cluster_port, p.port, p.http_port
        for n in cl:
            n.config = cl.node_config(n, peers=peers[n.name])
            n.config["store"] = {"url": store_url, "member_lease": "2s"}
        cl.start(timeout=15)
        for p in proxies:
            p.mode = "drop"
        # Cut for five times dead_after and twice member_lease.
        deadline = time.monotonic() + 5.0
        seen = set()
        while time.monotonic() < deadline:
            for n in cl:
                for name, m in n.members().items():
                    seen.add(m["state"])
                    assert m["state"] != "dead", "%s declared %s dead while both reach the " \
                        "store\n%s" % (n.name, name, n.log_tail(20))
            time.sleep(0.1)
        assert seen & {"suspect", "unreachable"}, seen  # the cut was seen
        for p in proxies:
            p.mode = "forward"
        cl.wait_converged(timeout=30)
        cl.coherence_round(nkeys=10)
    finally:
        for p in proxies:
            p.close()


def test_clean_stop_marks_the_row_left(cluster_factory, store_url):
    cl = make(cluster_factory, store_url, "60s")
    cl.start(timeout=15)
    n1, n2, n3 = cl
    assert n3.terminate() == 0
    cl.wait_state([n1, n2], "n3", "dead", timeout=scaled(15))
    for o in (n1, n2):
        why = dead_reason(o, "n3")
        assert why and ("left cleanly" in why or "session lock is free" in why), why
    assert "membership row marked left" in n3.log_text()
