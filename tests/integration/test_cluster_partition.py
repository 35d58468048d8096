"""A network partition: three nodes, each in its own network namespace,
joined by veth pairs to a bridge in a fourth namespace (private subnet
10.213.0.0/24, used only inside these namespaces). Bringing one node's
bridge port down cuts it off without closing any socket, like a pulled
cable.

Checked (test_partition_minority_serves_nothing_stale): flushes on the
majority side reply (once the cut-off node's lease
has run out, and at once after it is declared dead, when the majority drops
its caches: the cut-off node may have replied flushes the majority never
got); the cut-off node never
serves a value flushed after the flush replied, and serves no cached value at
all once its lease has run out (it reports cut_off); after the heal every
node converges and a new fill/flush round works. Without a store, a member
that another member reaches is never declared dead by one that does not
reach it (test_a_member_*).

Needs root (ip netns); skipped with a message otherwise. Every namespace,
link and process is removed at teardown, also on failure or interrupt."""

import atexit
import os
import subprocess
import threading
import time

import pytest

from cluster_harness import LEASE_S, cluster_factory, requires_cohort  # noqa: F401
from conftest import scaled

pytestmark = [requires_cohort, pytest.mark.cohort_only, pytest.mark.slow]

SUBNET = "10.213.0"
DEAD_AFTER_MS = 3000


def _ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=10, check=check)


class NetLab:
    """The namespaces and links of one test."""

    def __init__(self, count):
        tag = "c%d" % (os.getpid() % 100000)
        self.bridge_ns = "%sbr" % tag
        self.node_ns = ["%sn%d" % (tag, i + 1) for i in range(count)]
        self.ports = ["%sp%d" % (tag, i + 1) for i in range(count)]  # bridge side
        self.addrs = ["%s.%d" % (SUBNET, i + 1) for i in range(count)]
        self.made = []

    def setup(self):
        _ip("netns", "add", self.bridge_ns)
        self.made.append(self.bridge_ns)
        _ip("-n", self.bridge_ns, "link", "set", "lo", "up")
        _ip("-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.bridge_ns, "link", "set", "br0", "up")
        for ns, port, addr in zip(self.node_ns, self.ports, self.addrs):
            _ip("netns", "add", ns)
            self.made.append(ns)
            inside = port.replace("p", "e")
            # Made directly inside the namespaces: no name ever exists in ours.
            _ip("-n", ns, "link", "add", inside, "type", "veth", "peer", "name", port,
                "netns", self.bridge_ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", addr + "/24", "dev", inside)
            _ip("-n", ns, "link", "set", inside, "up")
            _ip("-n", self.bridge_ns, "link", "set", port, "master", "br0")
            _ip("-n", self.bridge_ns, "link", "set", port, "up")

    def cut(self, i):
        _ip("-n", self.bridge_ns, "link", "set", self.ports[i], "down")

    def heal(self, i):
        _ip("-n", self.bridge_ns, "link", "set", self.ports[i], "up")

    def block(self, i, j):
        """Nodes i and j can no longer reach each other (an unreachable
        route each way: their packets fail on the spot, nothing is
        refused); both still reach every other node."""
        _ip("-n", self.node_ns[i], "route", "add", "unreachable", self.addrs[j] + "/32")
        _ip("-n", self.node_ns[j], "route", "add", "unreachable", self.addrs[i] + "/32")

    def http_get(self, i, port, path):
        """GET inside node i's namespace; returns (status, body)."""
        code = ("import urllib.request, urllib.error, sys\n"
                "try:\n"
                "    r = urllib.request.urlopen('http://127.0.0.1:%d%s', timeout=3)\n"
                "    s, b = r.status, r.read()\n"
                "except urllib.error.HTTPError as e:\n"
                "    s, b = e.code, e.read()\n"
                "sys.stdout.write('%%d\\n' %% s); sys.stdout.flush()\n"
                "sys.stdout.buffer.write(b)\n" % (port, path))
        r = subprocess.run(["ip", "netns", "exec", self.node_ns[i], "/usr/bin/python3", "-c",
                            code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        head, _, body = r.stdout.partition(b"\n")
        return (int(head) if head.strip() else None), body

    def teardown(self):
        for ns in reversed(self.made):
            _ip("netns", "del", ns, check=False)
        self.made = []


@pytest.fixture
def netlab():
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (ip netns add); not running as root")
    lab = NetLab(3)
    atexit.register(lab.teardown)
    try:
        lab.setup()
    except (subprocess.CalledProcessError, OSError) as e:
        lab.teardown()
        err = getattr(e, "stderr", b"") or b""
        pytest.skip("cannot create network namespaces here: %s %s" % (
            e, err.decode(errors="replace").strip()))
    try:
        yield lab
    finally:
        lab.teardown()
        left = _ip("netns", "list").stdout.decode()
        assert not any(ns in left.split() for ns in lab.node_ns + [lab.bridge_ns]), left


def _reader(node, keys, out, stop):
    """GETs keys on node in turn until stop; records (start, end, key, value)."""
    try:
        with node.conn(timeout=5.0) as c:
            while not stop.is_set():
                for k in keys:
                    t0 = time.monotonic()
                    v = c.call("GET", k)
                    out.append((t0, time.monotonic(), k, v))
                time.sleep(0.005)
    except Exception as e:  # kept in the record, asserted on below
        out.append((time.monotonic(), time.monotonic(), "error", repr(e)))


@pytest.mark.parametrize("longer_than_dead_after", [False, True],
                         ids=["shorter-than-dead_after", "longer-than-dead_after"])
def test_partition_minority_serves_nothing_stale(netlab, cluster_factory, longer_than_dead_after):
    """Cut n3 off. Shorter than dead_after (10 s by default): nobody is
    declared dead, the majority's flushes reply once n3's lease ran out, and
    everybody bypasses its cache. Longer (dead_after 3 s here): the majority
    declares n3 dead and serves and flushes promptly again; n3, cut off, must
    still serve nothing (it cannot tell a dead majority from a partition)."""
    options = {"dead_after": DEAD_AFTER_MS} if longer_than_dead_after else {}
    cl = cluster_factory(3, netns=netlab.node_ns, addrs=netlab.addrs, options=options)
    n1, n2, n3 = cl
    # They met over the bridge (the factory waited until all are alive).
    assert sorted(m["address"] for m in n1.members().values()) == [
        "%s:7381" % a for a in netlab.addrs[1:]]
    pairs = [("k1", "old1"), ("k2", "old2"), ("z", "unflushed")]
    cl.fill(pairs)
    for n in cl:
        for k, v in pairs:
            assert n.call("GET", k) == v.encode(), n.name

    reads = []
    stop = threading.Event()
    reader = threading.Thread(target=_reader, args=(n3, ["k1", "k2", "z"], reads, stop))
    reader.start()
    marks = {}
    try:
        time.sleep(0.2)
        netlab.cut(2)
        # Taken once the link is down: n3 may serve until the real cut + T.
        marks["cut"] = time.monotonic()

        # A flush on the majority while n3 is merely silent: it replies once
        # n3's lease on n1 has run out.
        t0 = time.monotonic()
        assert n1.call("DEL", "k1") == 1
        marks["del1"] = time.monotonic()
        print("DEL k1 replied after %.3fs (%.3fs after the cut)" % (
            marks["del1"] - t0, marks["del1"] - marks["cut"]))
        assert marks["del1"] - marks["cut"] <= scaled(1.0 + LEASE_S + 0.5)

        # n3 cuts itself off: not serving, /health 503.
        ok = False
        deadline = time.monotonic() + scaled(LEASE_S + 1.0)
        while time.monotonic() < deadline and not ok:
            info = n3.info("cohort")
            ok = info["cohort_cut_off"] == "1" and info["cohort_serving_cache"] == "0"
            time.sleep(0.05)
        assert ok, "n3 does not report being cut off: %r" % info
        status, body = netlab.http_get(2, n3.http_port, "/health")
        assert status == 503 and b"cut_off" in body, (status, body)

        if longer_than_dead_after:
            # The majority declares n3 dead after dead_after; then flushes
            # reply at once and it serves again.
            seen = cl.wait_state([n1, n2], "n3", "dead",
                                 timeout=scaled(0.9 + DEAD_AFTER_MS / 1000.0 + 1.5),
                                 interval=0.05)
            print("n3 declared dead after %r s more" % {k: round(v, 2) for k, v in seen.items()})
        else:
            time.sleep(0.5)
        t0 = time.monotonic()
        # Declaring n3 dead, the majority dropped its caches: n3 may have
        # replied flushes of its own, once the majority's lease on it ran
        # out, that the majority never got.
        assert n2.call("DEL", "k2") == (0 if longer_than_dead_after else 1)
        marks["del2"] = time.monotonic()
        # Waiting for n3's lease would take LEASE_S (2 s); allow a busy
        # machine most of that.
        assert marks["del2"] - t0 < max(scaled(0.3), 1.5), "DEL waited %.3fs (n3's lease ran out)" % (
            marks["del2"] - t0)
        for n in (n1, n2):
            assert n.call("GET", "k1") is None and n.call("GET", "k2") is None
            if longer_than_dead_after:
                assert n.serving(), "%s does not serve with n3 dead" % n.name
                assert n.call("GET", "z") is None, "%s kept its cache" % n.name
                assert n.counter("cache_drops") >= 1, n.name
            else:
                assert not n.serving(), "%s serves although n3 (not dead) may" % n.name
                assert n.call("GET", "z") is None
        status, body = netlab.http_get(0, n1.http_port, "/health")
        assert status == 200, (status, body)
        if longer_than_dead_after:
            # n3 keeps itself cut off past dead_after too.
            time.sleep(1.0)
        marks["heal"] = time.monotonic()
        netlab.heal(2)
        cl.wait_converged(timeout=30.0)
        marks["converged"] = time.monotonic()
        print("converged %.2fs after the heal" % (marks["converged"] - marks["heal"]))
        time.sleep(0.3)
    finally:
        stop.set()
        reader.join(timeout=10)
        netlab.heal(2)

    rel = {k: round(v - marks["cut"], 3) for k, v in marks.items()}
    errors = [r for r in reads if r[2] == "error"]
    assert not errors, "reads on n3 failed: %r" % errors
    stale = []
    for t0, t1, k, v in reads:
        if k == "k1" and v is not None and t0 > marks["del1"]:
            stale.append((round(t0 - marks["cut"], 3), k, v))
        if k == "k2" and v is not None and t0 > marks["del2"]:
            stale.append((round(t0 - marks["cut"], 3), k, v))
    print("partition: %d reads on n3, marks (s after the cut) %r" % (len(reads), rel))
    assert not stale, (
        "n3 served flushed values after the flush replied (marks, s after the cut: %r); "
        "(seconds after the cut, key, value): %r\n%s" % (rel, stale[:10], n3.log_tail(25)))
    # Cut off beyond its lease, n3 served no cached value at all until the heal.
    late = [(round(t0 - marks["cut"], 3), k, v) for t0, t1, k, v in reads
            if marks["cut"] + LEASE_S + scaled(0.25) < t0 and t1 < marks["heal"] and
            v is not None]
    assert not late, "n3 served cached values while cut off (marks %r): %r" % (rel, late[:10])
    assert len([r for r in reads if r[0] > marks["cut"] + LEASE_S]) > 20

    # Converged: the flushed keys are gone everywhere, n3 serves the rest.
    for n in cl:
        assert n.serving(), n.name
        assert n.call("GET", "k1") is None, n.name
        assert n.call("GET", "k2") is None, n.name
    assert n3.call("GET", "z") == b"unflushed"
    cl.coherence_round(30)


def _never_dead(cl, observer, member, seconds):
    """Polls observer's view of member for seconds; returns the states seen,
    failing at once if it is ever dead."""
    seen = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        st = observer.state_of(member)
        seen.add(st)
        assert st != "dead", "%s declared %s dead though another member reaches it\n%s" % (
            observer.name, member, observer.log_tail(15))
        time.sleep(0.05)
    return seen


def test_a_member_never_reached_but_reached_by_another_is_not_declared_dead(netlab,
                                                                            cluster_factory):
    """n1 and n2 never reach each other (an unreachable route both ways from
    the start); n3 reaches both. Without a store, neither may declare the
    other dead after dead_after: it is probed through n3 (by the address both
    list it at, having never learned its name) and n3 says it reaches it.
    Before the fix an unknown member was never probed and was declared dead
    after dead_after while n3 reached it the whole time."""
    dead_after = 2.0
    netlab.block(0, 1)
    cl = cluster_factory(3, netns=netlab.node_ns, addrs=netlab.addrs, start=False,
                         options={"dead_after": int(dead_after * 1000)})
    n1, n2, n3 = cl
    for n in cl:
        n.start()
    cl.wait_state([n3], "n1", "alive", timeout=scaled(10))
    cl.wait_state([n3], "n2", "alive", timeout=scaled(10))
    seen = _never_dead(cl, n1, netlab.addrs[1] + ":7381", scaled(2.5 * dead_after))
    seen |= _never_dead(cl, n2, netlab.addrs[0] + ":7381", 0.5)
    assert "suspect" in seen, seen  # "reachable by other members"
    assert n3.state_of("n1") == "alive" and n3.state_of("n2") == "alive"


def test_a_member_unreachable_for_one_probe_round_is_probed_again(netlab, cluster_factory):
    """n1 and n2 lose each other (n3 still reaches both); n2 then stops for
    long enough that n3 cannot vouch for it in one probe round, so n1 marks
    it unreachable; n2 resumes and n3 reaches it again. Without a store, n1
    must probe n2 again and keep it alive (suspect), never declare it dead
    after dead_after. Before the fix an unreachable member was never probed
    again, and that one round made it dead dead_after later."""
    dead_after = 2.0
    cl = cluster_factory(3, netns=netlab.node_ns, addrs=netlab.addrs,
                         options={"dead_after": int(dead_after * 1000)})
    n1, n2, n3 = cl
    netlab.block(0, 1)
    cl.wait_state([n1], "n2", "suspect", timeout=scaled(5), interval=0.02)
    n2.sigstop()
    try:
        cl.wait_state([n1], "n2", "unreachable", timeout=scaled(5), interval=0.02)
    finally:
        n2.sigcont()
    cl.wait_state([n3], "n2", "alive", timeout=scaled(5), interval=0.02)
    seen = _never_dead(cl, n1, "n2", scaled(2.5 * dead_after))
    assert n1.state_of("n2") == "suspect", seen



def test_a_node_bound_to_every_address_must_find_itself_in_its_peer_list(netlab,
                                                                       cluster_factory):
    """n3 binds its peer port to every address of its host. Listed in its
    own peer list, it finds itself there and joins. Missing from it, it
    cannot know its own address among the members': before the fix it took
    itself for the smallest, dialled members that dialled it too (a second
    link per pair) and shared its version rank with n1; now it refuses to
    start and says why."""
    cl = cluster_factory(3, netns=netlab.node_ns, addrs=netlab.addrs, start=False)
    n1, n2, n3 = cl
    n3.config["cluster"]["bind"] = "0.0.0.0"
    n3.config["cluster"]["peer"] = ["%s:7381" % a for a in netlab.addrs[:2]]
    n3.expect_clean_exit = False
    n3.start(wait_ready=False)
    assert n3.proc.wait(timeout=scaled(10)) != 0, n3.log_tail(20)
    assert "not in its own peer list" in n3.log_text(), n3.log_tail(20)
    n3.config["cluster"]["peer"] = ["%s:7381" % a for a in netlab.addrs]
    for n in cl:
        n.start(wait_ready=False)
    for n in cl:
        n.wait_ready()
    cl.wait_converged(timeout=10.0)
