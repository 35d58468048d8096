"""Regressions of the coherence core, each a way a member could serve a value
after a flush replied (or lose what it should keep) that a review found on
real processes. Every test here failed on the binary before its fix.

- a SEED between two flushes of one key in one loop turn (the second flush
  was folded into the first, and the members kept the SEED's value);
- more flushes in one turn than the replay log holds (unsent entries were
  evicted, and every member dropped its whole cache);
- a GETL token of the node's previous incarnation accepted by SETL;
- a read judged by the clock of the start of a long batch (the lease had
  run out during the batch);
- EXISTS, TTL, TYPE, KEYS and SCAN answering from the cache while the lease
  does not hold;
- a man in the middle without the cluster key reflecting a node's own frames
  back to it (one key for both directions: the node answered its own PINGs
  and extended its own lease);
- a write larger than maxmemory replying OK and storing nothing;
- a SEED's expire time sent as a wall-clock instant (a member whose clock is
  ahead expired it at once);
- versions counted in whole ms: a burst of flushes ran a node's version
  clock seconds ahead of the wall clock, and a node restarted in that time
  made flushes older than the values they were meant to remove;
- a node just started, with a shared store, declaring dead every member it
  dials at an address no row shows (a proxy, NAT, a host name), and
  replying its first flushes without them.
"""

import os
import threading
import time

import pytest

import helpers
from cluster_harness import CommandError, cluster_factory, requires_cohort  # noqa: F401
from conftest import scaled
from peer_proxy import PeerProxy
from test_cluster_hostile import low_free_port

pytestmark = [requires_cohort, pytest.mark.cohort_only]

# Short timings, so that a lease runs out quickly; nobody is declared dead.
FAST = {"lease": "400ms", "heartbeat": "50ms", "suspect_after": "200ms",
        "probe_timeout": "100ms", "flush_timeout": "300ms", "dead_after": "60s"}


def _info_field(node, section, field):
    return int(node.info(section)[field])


# --- ordering within one loop turn ---------------------------------------------

SEED_BETWEEN = [
    ("DEL", [("DEL", "k"), ("SEED", "k", "v"), ("DEL", "k")]),
    ("UNLINK", [("UNLINK", "k"), ("SEED", "k", "v"), ("UNLINK", "k")]),
    ("GETDEL", [("GETDEL", "k"), ("SEED", "k", "v"), ("GETDEL", "k")]),
    ("PEXPIRE", [("PEXPIRE", "k", "-1"), ("SEED", "k", "v"), ("PEXPIRE", "k", "-1")]),
    ("FLUSHPREFIX", [("FLUSHPREFIX", "k"), ("SEED", "k", "v"), ("FLUSHPREFIX", "k")]),
    ("FLUSHALL", [("FLUSHALL",), ("SEED", "k", "v"), ("FLUSHALL",)]),
]


@pytest.mark.parametrize("name,commands", SEED_BETWEEN, ids=[n for n, _ in SEED_BETWEEN])
def test_flush_after_seed_in_one_turn_reaches_members(cluster_factory, name, commands):
    cl = cluster_factory(2)
    n1, n2 = cl
    with n1.conn() as c:
        replies = c.pipeline(commands)  # one write: one loop turn on n1
    assert replies[1] == b"OK", replies
    with n2.conn() as c:
        assert c.call("GET", "k") is None, "n2 kept the SEED's value after %s replied" % name
    with n1.conn() as c:
        assert c.call("GET", "k") is None


def test_turn_with_more_flushes_than_the_replay_log(cluster_factory):
    """70,000 flushes in one command, with a replay log of 65,536: nothing the
    members were not sent may be evicted, so no member drops its cache."""
    cl = cluster_factory(2)
    n1, n2 = cl
    keep = [("keep:%d" % i, "v%d" % i) for i in range(1000)]
    with n2.conn() as c:
        c.pipeline([("SET", k, v) for k, v in keep])
    with n1.conn() as c:
        assert c.call("DEL", *["gone:%d" % i for i in range(70000)], timeout=60) == 0
    assert _info_field(n2, "cohort", "cache_drops") == 0, n2.log_tail()
    with n2.conn() as c:
        got = c.pipeline([("GET", k) for k, _ in keep])
    assert got == [v.encode() for _, v in keep]


# --- incarnations and clocks ------------------------------------------------------

def test_setl_refuses_token_of_previous_incarnation(cluster_factory):
    cl = cluster_factory(1)
    (n1,) = cl
    with n1.conn() as c:
        c.call("SET", "k", "old")
        value, token = c.call("GETL", "k")
        assert value == b"old"
        c.call("DEL", "k")
    assert n1.terminate() == 0
    n1.start()
    with n1.conn() as c:
        assert c.call("SETL", "k", token, "stale read") is None
        assert c.call("GET", "k") is None


def _stop_and_wait_not_serving(cl, stopped, observer, timeout=10.0):
    stopped.sigstop()
    deadline = time.monotonic() + scaled(timeout)
    while observer.serving():
        assert time.monotonic() < deadline, "%s kept serving" % observer.name
        time.sleep(0.02)


def test_read_after_long_batch_is_judged_by_the_clock_of_the_read(cluster_factory):
    """A GET pipelined behind slow KEYS, sent while the lease on a stopped
    member still held, must not serve: the lease ran out during the batch."""
    cl = cluster_factory(2, options=FAST)
    n1, n2 = cl
    nkeys = 300000
    with n1.conn() as c:
        c.pipeline([("MSET",) + tuple(x for i in range(j, j + 1000)
                                      for x in ("f:%d" % i, "x")) for j in range(0, nkeys, 1000)],
                   chunk=50)
        c.call("SET", "k", "v")
        assert c.call("GET", "k") == b"v"
        n2.sigstop()
        # Each KEYS walks every key: far longer together than the 400 ms lease.
        replies = c.pipeline([("KEYS", "*[z]*")] * 60 + [("GET", "k")], chunk=100)
    n2.sigcont()
    assert replies[-1] is None, "GET after a long batch served a value while out of contact"


def test_existence_queries_follow_the_lease(cluster_factory):
    cl = cluster_factory(2, options=FAST)
    n1, n2 = cl
    with n1.conn() as c:
        c.call("SET", "k", "v", "EX", "100")
    _stop_and_wait_not_serving(cl, n2, n1)
    try:
        with n1.conn() as c:
            assert c.call("GET", "k") is None
            assert c.call("EXISTS", "k") == 0
            assert c.call("TTL", "k") == -2
            assert c.call("PTTL", "k") == -2
            assert c.call("TYPE", "k") == b"none"
            assert c.call("KEYS", "*") == []
            assert c.call("SCAN", "0") == [b"0", []]
    finally:
        n2.sigcont()
    cl.wait_converged()
    with n1.conn() as c:
        assert c.call("EXISTS", "k") == 1


# --- the peer link --------------------------------------------------------------

def _two_nodes_through_a_proxy(cl, store=False):
    """Starts cl's two nodes with n1's link to n2 through a PeerProxy (n1
    opens it: the smaller id), sharing a SQLite store when store is true.
    Returns (n1, n2, proxy); the caller closes the proxy."""
    n1, n2 = cl
    n1.cluster_port = low_free_port()
    proxy = PeerProxy(n2.cluster_port, helpers.free_port())
    try:
        n1.config = cl.node_config(n1, peers=[n1.peer_address, "127.0.0.1:%d" % proxy.port])
        n2.config = cl.node_config(n2, peers=[n1.peer_address, n2.peer_address])
        if store:
            for n in (n1, n2):
                n.config["store"] = {"url": "sqlite://%s" % os.path.join(cl.workdir, "shared.db")}
        n1.start()
        n2.start()
        cl.wait_converged()
    except BaseException:
        proxy.close()
        raise
    return n1, n2, proxy


def test_reflected_frames_do_not_extend_the_lease(cluster_factory):
    """A proxy between n1 and n2 lets the handshake through, then sends n1's
    own frames back to it and drops n2's. Once n2's DEL has replied, n1 must
    not serve the key."""
    n1, n2, proxy = _two_nodes_through_a_proxy(cluster_factory(2, start=False, options=FAST))
    try:
        with n1.conn() as c:
            c.call("SET", "k", "v")
            assert c.call("GET", "k") == b"v"
        proxy.mode = "reflect"
        with n2.conn() as c:
            assert c.call("DEL", "k", timeout=scaled(10)) == 0
        with n1.conn() as c:
            assert c.call("GET", "k") is None, "n1 served k after n2's DEL replied"
        # and it keeps not serving while the link only reflects
        time.sleep(scaled(1.0))
        with n1.conn() as c:
            assert c.call("GET", "k") is None
    finally:
        proxy.close()


# --- limits and time --------------------------------------------------------------

def test_write_larger_than_maxmemory_is_refused(cluster_factory):
    cl = cluster_factory(1, start=False)
    (n1,) = cl
    n1.config["cache"] = {"maxmemory": "1mb"}
    n1.start()
    with n1.conn() as c:
        with pytest.raises(CommandError, match="^OOM command not allowed when used memory"):
            c.call("SET", "big", "x" * (2 << 20))
        assert c.call("GET", "big") is None
        assert c.call("SET", "small", "x" * 1000) == b"OK"


def test_seed_ttl_survives_a_member_clock_ten_minutes_ahead(cluster_factory):
    cl = cluster_factory(2, start=False)
    n1, n2 = cl
    # n2's wall clock runs 10 minutes ahead; its monotonic clock is real.
    n2.env = {"COHORT_CLOCK_OFFSET_MS": "600000"}
    cl.start()
    with n1.conn() as c:
        assert c.call("SEED", "k", "v", "EX", "100") == b"OK"
    with n2.conn() as c:
        assert c.call("GET", "k") == b"v"
        ttl = c.call("TTL", "k")
    assert 90 <= ttl <= 100, "a member whose clock is 10 minutes ahead has TTL %r" % ttl


# --- versions and real time ---------------------------------------------------------

def test_flush_from_a_restarted_node_beats_fills_made_before_it(cluster_factory):
    """n1 issues 20,000 versions in one command (a DEL of 20,000 keys), then
    SEEDs k and fills it (SET: the fill keeps the SEED's version). n2
    restarts, and before it has heard from n1 (the link is refused) takes a
    DEL of k, whose version comes from its wall clock. Once that DEL replied,
    n1 must not serve k. With the version clock in whole ms, n1's clock ran
    20 s ahead and n2's DEL lost to the fill."""
    n1, n2, proxy = _two_nodes_through_a_proxy(cluster_factory(2, start=False))
    try:
        with n1.conn() as c:
            assert c.call("DEL", *["burst:%d" % i for i in range(20000)], timeout=scaled(20)) == 0
            assert c.call("SEED", "k", "seeded") == b"OK"
            assert c.call("SET", "k", "filled") == b"OK"
        n2.terminate()  # its goodbye reaches n1: n1 keeps its cache
        proxy.refusing = True
        n2.start()
        threading.Timer(0.5, setattr, (proxy, "refusing", False)).start()
        with n2.conn() as c:
            assert c.call("DEL", "k", timeout=scaled(20)) == 0
        with n1.conn() as c:
            assert c.call("GET", "k") is None, "n1 served k after n2's DEL replied"
        assert int(n1.info("cohort").get("version_clock_ahead_ms", 0)) < 1000
    finally:
        proxy.close()


def test_a_member_dialled_at_another_address_is_not_dead_for_want_of_a_row(cluster_factory):
    """n1 dials n2 through a proxy, so n2's row (its own address) matches no
    peer address n1 knows before the link tells it n2's name. n2 fills k;
    n1 restarts with the link refused and takes a DEL of k. The DEL must
    wait for n2 (it replied at once: n1 held n2 dead, "it has no row"), and
    once it replied n2 must not serve k."""
    n1, n2, proxy = _two_nodes_through_a_proxy(cluster_factory(2, start=False), store=True)
    try:
        with n2.conn() as c:
            assert c.call("SET", "k", "v") == b"OK"
        n1.terminate()  # its goodbye reaches n2: n2 keeps serving
        proxy.refusing = True
        n1.start()
        time.sleep(0.3)  # n1 reads the store's rows
        threading.Timer(0.5, setattr, (proxy, "refusing", False)).start()
        with n1.conn() as c:
            assert c.call("DEL", "k", timeout=scaled(20)) == 0
        with n2.conn() as c:
            assert c.call("GET", "k") is None, "n2 served k after n1's DEL replied"
        assert "it has no row" not in n1.log_text().split("=== start n1")[-1]
    finally:
        proxy.close()
