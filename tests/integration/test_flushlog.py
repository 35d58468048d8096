"""The flush log through the shared store (src/cluster/flushlog.c): three
nodes whose peer links all go through proxies, with one shared store, first
SQLite (a file on this host), then a real PostgreSQL server that
tests/pg/pg-harness.sh starts for this module and removes afterwards.

The peer links are cut (the proxies drop every frame; the connections stay
open) while every node reaches the store. Checked, with each store:
  - nobody is declared dead, however long the cut lasts;
  - a DEL and a SET through n1 reply, and the cut-off n2 and n3 never serve
    the old value after the reply (a reader thread on n2 checks every read
    it started after the reply);
  - once the nodes follow the log they serve cached values and their bypass
    counters stop growing (reads hit, none misses for the lease);
  - the entries came through the log (cohort_flushlog_entries_applied grows).
After the cut the links are restored and a coherence round passes.

Against the binary before the flush log, the cut-off nodes stop serving and
bypass every read: test_cut_links_flushes_go_through_the_store fails there
(checked with COHORTD=build-old/cohortd).

Every process and file is removed at teardown (cluster_factory, tmp_path,
the PostgreSQL harness)."""

import os
import threading
import time

import pytest

import helpers
from cluster_harness import cluster_factory, requires_cohort  # noqa: F401
from conftest import scaled
from pg_server import pg_server
from peer_proxy import ordered_proxies

pytestmark = [requires_cohort, pytest.mark.cohort_only]

REPLICATED = {"keyspace r": {"prefix": "r:", "writes": "replicate"}}
FAST = {"lease": "1s", "heartbeat": "50ms", "suspect_after": "300ms",
        "probe_timeout": "200ms", "flush_timeout": "500ms", "dead_after": "1s"}


@pytest.fixture(scope="module")
def pg_url():
    with pg_server() as (url, _):
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return "sqlite://%s" % os.path.join(str(tmp_path), "shared.db")
    url = request.getfixturevalue("pg_url")
    return url + ("&" if "?" in url else "?") + "connect_timeout=2"


def _cluster(cluster_factory, store_url):
    """Three nodes on one store, every peer link through a proxy."""
    probe = cluster_factory(3, start=False, options=FAST)  # for the ports only
    peers, proxies = ordered_proxies(probe)
    cl = cluster_factory(3, start=False, options=FAST, sections=REPLICATED)
    for n, p in zip(cl, probe):
        n.cluster_port, n.port, n.http_port = p.cluster_port, p.port, p.http_port
    for n in cl:
        n.config = cl.node_config(n, peers=peers[n.name])
        n.config["store"] = {"url": store_url, "member_lease": "3s"}
    return cl, proxies


def _no_dead(cl):
    for n in cl:
        for name, m in n.members().items():
            assert m["state"] != "dead", "%s declared %s dead while both reach the store\n%s" % (
                n.name, name, n.log_tail(20))


class Reader(threading.Thread):
    """Reads key on node in a loop; keeps (start, end, value) of each read."""

    def __init__(self, node, key):
        super().__init__(daemon=True)
        self.node, self.key = node, key
        self.reads = []
        self.stop = threading.Event()
        self.error = None

    def run(self):
        try:
            with self.node.conn() as c:
                while not self.stop.is_set():
                    t0 = time.monotonic()
                    v = c.call("GET", self.key)
                    self.reads.append((t0, time.monotonic(), v))
        except Exception as e:  # reported by the test
            self.error = e

    def stale_after(self, t, old):
        return [r for r in self.reads if r[0] >= t and r[2] == old]


def test_cut_links_flushes_go_through_the_store(cluster_factory, store_url):
    cl, proxies = _cluster(cluster_factory, store_url)
    try:
        cl.start(timeout=15)
        n1, n2, n3 = cl
        cl.fill([("k", "old")])
        assert n1.call("SET", "r:s", "old") == b"OK"  # a replicated key: a SEED to every member
        assert all(n.call("GET", "k") == b"old" and n.call("GET", "r:s") == b"old" for n in cl)
        time.sleep(scaled(1.0))  # every node has polled the log and recorded a position
        for p in proxies:
            p.mode = "drop"
        # The link leases lapse within the lease (1 s); by then every node
        # follows the log. Wait past the lease and the suspicion.
        time.sleep(scaled(2.0))
        _no_dead(cl)
        seen = {m["state"] for n in cl for m in n.members().values()}
        assert seen & {"suspect", "unreachable"}, seen  # the cut was seen
        for n in cl:
            assert n.serving(), "%s does not serve while it follows the log: %s\n%s" % (
                n.name, n.info("cohort").get("cohort_why_not_serving"), n.log_tail(20))

        # DEL through n1 while n2 reads the key in a loop.
        reader = Reader(n2, "k")
        reader.start()
        time.sleep(0.2)
        assert n1.call("DEL", "k", timeout=scaled(15)) == 1
        replied = time.monotonic()
        for n in (n2, n3):
            assert n.call("GET", "k") is None, "%s serves a value n1 deleted" % n.name
        time.sleep(0.3)
        reader.stop.set()
        reader.join(10)
        assert reader.error is None, reader.error
        stale = reader.stale_after(replied, b"old")
        assert not stale, "n2 served the old value %d times after n1's DEL replied" % len(stale)
        assert any(r[0] >= replied for r in reader.reads)

        # SET of a replicated key through n1: the others read the new value
        # right after the reply (the SEED and its COMMIT came through the log).
        assert n1.call("SET", "r:s", "new", timeout=scaled(15)) == b"OK"
        for n in (n2, n3):
            assert n.call("GET", "r:s", timeout=scaled(15)) == b"new", \
                "%s serves %r\n%s" % (n.name, n.call("GET", "r:s"), n.log_tail(30))

        # Following the log, nobody bypasses its cache any more.
        before = {n.name: n.counter("cache_bypasses") for n in cl}
        for _ in range(20):
            for n in cl:
                n.call("GET", "r:s")
            time.sleep(0.05)
        after = {n.name: n.counter("cache_bypasses") for n in cl}
        assert after == before, "bypasses grew while the nodes follow the log: %r -> %r" % (
            before, after)
        applied = sum(n.counter("flushlog_entries_applied") for n in (n2, n3))
        assert applied >= 2, applied  # the DEL and the SET, at n2 and n3
        assert n1.counter("flushlog_appends") >= 1
        _no_dead(cl)

        for p in proxies:
            p.mode = "forward"
        cl.wait_converged(timeout=30)
        assert all(n.call("GET", "k") is None for n in cl)
        cl.coherence_round(nkeys=10)
    finally:
        for p in proxies:
            p.close()


def test_separate_sqlite_files_mean_no_arbiter(cluster_factory, tmp_path):
    """Each node on its own SQLite file (as on hosts that do not share a
    database): they learn it from the store identity exchanged after the
    handshake, say once that membership has no arbiter, report it in INFO and
    /v1/status, turn the flush log off, and decide who is dead alone (a
    stopped member is dead at once: its port refuses connections)."""
    import json
    cl = cluster_factory(2, start=False, options=FAST)
    for i, n in enumerate(cl):
        n.config["store"] = {"url": "sqlite://%s" % os.path.join(str(tmp_path), "own%d.db" % i),
                             "member_lease": "3s"}
    cl.start(timeout=15)
    n1, n2 = cl

    def no_arbiter():
        return all(n.info("cohort").get("membership_arbiter", "").startswith("none: ")
                   for n in cl)
    assert helpers.wait_for(no_arbiter, scaled(10)), [n.info("cohort") for n in cl]
    for n in cl:
        assert n.counter("flushlog_on") == 0
        lines = [l for l in n.log_text().splitlines() if "membership has no arbiter" in l]
        assert len(lines) == 1, lines
        assert "uses another store" in lines[0]
        status, _, body = helpers.http_get(n.http_port, "/v1/status")
        assert status == 200
        assert json.loads(body)["arbiter"].startswith("none: "), body
    # Dead by a guess again: a refused connection makes n2 dead at once.
    assert n2.terminate() == 0
    cl.wait_state([n1], "n2", "dead", timeout=scaled(10))


def _log_rows(path):
    """Entries in the flush log of the SQLite store at path (None while the
    file is busy)."""
    import sqlite3
    try:
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=1)
        try:
            return db.execute("SELECT count(*) FROM cohort_flushlog").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return None


def test_mismatch_keeps_pruning_the_log(cluster_factory, tmp_path):
    """n1 and n2 share a SQLite file, n3 has its own: n1 and n2 meet n3's
    store identity and lose their arbiter (storeid.c S1), yet keep following
    their store's log (node_flushlog.c N1). With the n1-n2 link cut, DELs
    through n1 go to the log for n2; n2 applies them from the log and records
    its position, so the log is pruned empty. Before N1 both stopped polling
    at the mismatch: n2 applied nothing and the entries stayed until the
    nodes restarted."""
    opts = dict(FAST, dead_after="60s")  # nobody is dead by a guess meanwhile
    probe = cluster_factory(3, start=False, options=opts)  # for the ports only
    peers, proxies = ordered_proxies(probe)
    cl = cluster_factory(3, start=False, options=opts)
    shared = os.path.join(str(tmp_path), "shared.db")
    for n, p in zip(cl, probe):
        n.cluster_port, n.port, n.http_port = p.cluster_port, p.port, p.http_port
    for i, n in enumerate(cl):
        n.config = cl.node_config(n, peers=peers[n.name])
        path = shared if i < 2 else os.path.join(str(tmp_path), "own.db")
        n.config["store"] = {"url": "sqlite://%s" % path, "member_lease": "3s"}
    try:
        cl.start(timeout=15)
        n1, n2, n3 = cl

        def no_arbiter():
            return all(n.info("cohort").get("membership_arbiter", "").startswith("none: ")
                       for n in (n1, n2))
        assert helpers.wait_for(no_arbiter, scaled(10)), [n.info("cohort") for n in cl]
        keys = ["k%d" % i for i in range(5)]
        cl.fill([(k, "old") for k in keys])
        cut = [p for p in proxies if set(p.pair) == {"n1", "n2"}]
        assert len(cut) == 1, [p.pair for p in proxies]
        cut[0].mode = "drop"
        for k in keys:  # each replies once n2's lease on n1 lapsed (1 s)
            assert n1.call("DEL", k, timeout=scaled(15)) == 1
        assert n1.counter("flushlog_appends") >= 1  # the DELs went to the log for n2
        assert helpers.wait_for(lambda: n2.counter("flushlog_entries_applied") >= 1,
                                scaled(10)), "n2 stopped following its store's log"
        # Pruned every 10 s once a position moved: both cursors pass every entry.
        assert helpers.wait_for(lambda: _log_rows(shared) == 0, scaled(30), interval=0.5), (
            "the log of n1 and n2's store is not pruned: %r entries" % _log_rows(shared))
    finally:
        for p in proxies:
            p.close()


def test_shared_store_is_the_arbiter(cluster_factory, store_url):
    """The same store everywhere: INFO and /v1/status say so."""
    cl = cluster_factory(2, start=False, options=FAST)
    for n in cl:
        n.config["store"] = {"url": store_url, "member_lease": "3s"}
    cl.start(timeout=15)
    time.sleep(scaled(1.0))  # the identities went round
    for n in cl:
        assert n.info("cohort").get("membership_arbiter") == "store"
        assert n.counter("flushlog_on") == 1
