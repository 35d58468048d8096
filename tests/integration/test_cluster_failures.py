"""Failures of a node in a 3-node cluster: kill -9 and restart, a hung
process (SIGSTOP), and a clean shutdown. The others must detect each quickly,
keep serving and flushing when they can, stop serving cached values when the
coherence lease no longer holds, and never let a node serve a value that was
flushed while it was out of contact."""

import threading
import time

import pytest

import helpers
from cluster_harness import (FLUSH_TIMEOUT_S, HEARTBEAT_S, LEASE_S, PROBE_S, SUSPECT_S,  # noqa: F401
                             cluster_factory,
                             requires_cohort)
from conftest import scaled

pytestmark = [requires_cohort, pytest.mark.cohort_only]


# A flush that waited for a member would take at least flush_timeout: long
# here, so that telling "waited" from "did not" needs no tight time bound on
# a loaded machine.
LONG_FLUSH_TIMEOUT_S = 5.0


def test_kill9_detected_cluster_keeps_working_and_rejoin(cluster_factory):
    cl = cluster_factory(3, options={"flush_timeout": "%dms" % (LONG_FLUSH_TIMEOUT_S * 1000)})
    n1, n2, n3 = cl
    cl.fill([("stay:%d" % i, "v%d" % i) for i in range(20)])
    cl.fill([("gone:%d" % i, "v%d" % i) for i in range(20)])

    n3.kill9()
    seen = cl.wait_state([n1, n2], "n3", "dead", timeout=scaled(1.5))
    print("kill -9 seen as dead after %r s" % {k: round(v, 3) for k, v in seen.items()})
    for n in (n1, n2):
        m = n.metrics()
        assert m.get('cohort_member_state{member="n3",state="dead"}') == 1, n.name

    # The others keep serving (a dead member cannot serve anything) ...
    for n in (n1, n2):
        assert n.serving(), "%s stopped serving although n3 is dead" % n.name
        for i in range(20):
            assert n.call("GET", "stay:%d" % i) == b"v%d" % i, n.name
    # ... and keep flushing, promptly.
    worst = 0.0
    for i in range(20):
        origin = (n1, n2)[i % 2]
        t0 = time.monotonic()
        assert origin.call("DEL", "gone:%d" % i) == 1
        worst = max(worst, time.monotonic() - t0)
        for n in (n1, n2):
            assert n.call("GET", "gone:%d" % i) is None
    # A DEL that waited for the dead member would take flush_timeout (5 s).
    assert worst < LONG_FLUSH_TIMEOUT_S / 2, \
        "a DEL took %.3fs with a dead member" % worst
    cl.coherence_round(30, nodes=[n1, n2])

    # Restart with the same configuration: it rejoins and is coherent.
    n3.start()
    cl.wait_converged(timeout=5.0)
    for n in cl:
        assert {k: v["state"] for k, v in n.members().items()} == {
            o.name: "alive" for o in cl.others(n)}, n.name
    cl.coherence_round(50)


def _poll_gets(node, key, until, out, stop):
    """Appends (start, end, value or exception) of GETs of key on node until
    the monotonic time until (or stop is set)."""
    try:
        with node.conn(timeout=8.0) as c:
            while time.monotonic() < until and not stop.is_set():
                t0 = time.monotonic()
                try:
                    v = c.call("GET", key)
                except Exception as e:  # kept in the record
                    out.append((t0, time.monotonic(), e))
                    return
                out.append((t0, time.monotonic(), v))
                time.sleep(0.01)
    except Exception as e:
        out.append((time.monotonic(), time.monotonic(), e))


def test_sigstop_lease_and_no_stale_read_after_resume(cluster_factory):
    cl = cluster_factory(3)
    n1, n2, n3 = cl
    cl.fill([("x:stay", "kept"), ("y:flushed", "old")])
    for n in cl:
        assert n.call("GET", "y:flushed") == b"old"
    bypass0 = {n.name: n.counter("cache_bypasses") for n in (n1, n2)}

    # Readers on n1 and n2 of an unflushed key, through the whole pause.
    reads = {n1.name: [], n2.name: []}
    stop = threading.Event()
    t_stop = time.monotonic()
    n3.sigstop()
    # Long enough that reads start well after the lease ran out, whatever the build.
    pause = max(3.0, LEASE_S + scaled(0.25) + 0.75)
    readers = [threading.Thread(target=_poll_gets, args=(n, "x:stay", t_stop + pause - 0.1,
                                                         reads[n.name], stop)) for n in (n1, n2)]
    for t in readers:
        t.start()
    try:
        seen = cl.wait_state([n1, n2], "n3", ("suspect", "unreachable"), timeout=scaled(1.5))
        print("SIGSTOP seen as suspect after %r s" % {k: round(v, 3) for k, v in seen.items()})
        assert max(seen.values()) <= scaled(1.5)
        seen = cl.wait_state([n1, n2], "n3", "unreachable", timeout=scaled(1.5))
        print("... then unreachable after %r s more" % {k: round(v, 3) for k, v in seen.items()})

        # A flush during the pause. n3 holds the old value and cannot apply it
        # now; the reply must wait until n3's lease on n1 has run out.
        t_del = time.monotonic()
        assert n1.call("DEL", "y:flushed") == 1
        t_reply = time.monotonic()
        print("DEL during the pause replied after %.3fs (%.3fs after SIGSTOP)" % (
            t_reply - t_del, t_reply - t_stop))
        assert t_reply - t_stop <= scaled(1.0 + LEASE_S + 0.5), "DEL held too long"

        # /health on n1 says it bypasses its cache once the lease is gone.
        helpers.wait_for(lambda: not n1.serving(), scaled(LEASE_S + 0.5))
        status, _, body = helpers.http_get(n1.http_port, "/health")
        assert status == 200 and body.startswith(b"ok, cache bypassed"), (status, body)
    finally:
        left = t_stop + pause - time.monotonic()
        if left > 0:
            time.sleep(left)
        n3.sigcont()
        t_cont = time.monotonic()
        for t in readers:
            t.join(timeout=10)
        stop.set()

    # After T the others serve no cached value (n3 is not dead: it could still
    # be serving); before T they may.
    for name, rs in reads.items():
        errors = [r for r in rs if isinstance(r[2], Exception)]
        assert not errors, "%s: GET failed during the pause: %r" % (name, errors[:3])
        late = [r for r in rs if r[0] > t_stop + LEASE_S + scaled(0.25)]
        assert late, "%s: no reads late in the pause" % name
        served_late = [(round(r[0] - t_stop, 3), r[2]) for r in late if r[2] is not None]
        assert not served_late, "%s served cached values after the lease ran out: %r" % (
            name, served_late[:5])
        early = [r for r in rs if r[1] < t_stop + 0.3]
        assert all(r[2] == b"kept" for r in early), "%s: early reads %r" % (name, early[:5])
    for n in (n1, n2):
        grew = n.counter("cache_bypasses") - bypass0[n.name]
        assert grew > 0, "%s: cache_bypasses did not grow" % n.name

    # Right after SIGCONT n3 must never return the value flushed during its
    # pause, from its first read on.
    stale = []
    n_reads = 0
    with n3.conn() as c:
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            v = c.call("GET", "y:flushed")
            n_reads += 1
            if v is not None:
                stale.append((round(time.monotonic() - t_cont, 3), v))
    assert not stale, "n3 served the value flushed during its pause: %r" % stale[:5]
    assert n_reads > 20
    # It serves again (so the nil above was not just a bypass), and so do
    # the others.
    cl.wait_converged(timeout=5.0)
    for n in cl:
        assert n.call("GET", "x:stay") == b"kept", n.name
        assert n.call("GET", "y:flushed") is None, n.name
    cl.coherence_round(30)


def _keys_on(node):
    return node.call("DBSIZE")


def test_clean_shutdown_keeps_caches_kill_drops_them(cluster_factory):
    cl = cluster_factory(3)
    n1, n2, n3 = cl
    pairs = [("c:%d" % i, "v%d" % i) for i in range(200)]
    cl.fill(pairs)
    for n in (n1, n2):
        assert n.counter("cache_drops") == 0

    # SIGTERM: a goodbye. The others see it dead and keep their caches, also
    # when it comes back.
    assert n3.terminate() == 0
    seen = cl.wait_state([n1, n2], "n3", "dead", timeout=scaled(1.0))
    print("clean shutdown seen as dead after %r s" % {k: round(v, 3) for k, v in seen.items()})
    n3.start()
    cl.wait_converged(timeout=5.0)
    for n in (n1, n2):
        assert n.counter("cache_drops") == 0, "%s dropped its cache after a clean restart\n%s" % (
            n.name, n.log_tail(20))
        assert _keys_on(n) == 200, n.name
        assert n.call("GET", "c:7") == b"v7"

    # kill -9, seen dead (its port refuses) while the others' leases on it
    # held: it could reply a flush only after they acknowledged it, or after
    # those leases ran out, and it was gone by then. So its next incarnation
    # costs them nothing either.
    n3.kill9()
    cl.wait_state([n1, n2], "n3", "dead", timeout=scaled(1.5))
    n3.start()
    cl.wait_converged(timeout=5.0)
    for n in (n1, n2):
        assert n.counter("cache_drops") == 0, "%s dropped its cache after n3 was seen dead " \
            "within its lease\n%s" % (n.name, n.log_tail(20))
        assert _keys_on(n) == 200, n.name
    cl.coherence_round(30)


def test_kill9_of_the_flushing_node(cluster_factory):
    """A node killed while its flush replies are held: the flushes it had
    applied locally may or may not have reached the others, but every DEL
    whose reply the client got is applied everywhere, also after the killed
    node restarted (a DEL that never replied may go either way)."""
    cl = cluster_factory(3)
    n1, n2, n3 = cl
    keys = ["kf:%d" % i for i in range(2000)]
    cl.fill([(k, "old") for k in keys])
    with n3.conn() as c:
        c.raw.send(b"".join(helpers.encode("DEL", k) for k in keys))
        c.raw.read_reply()  # the first reply: the others had applied that DEL
        n3.kill9()
        replied = 1
        try:
            while True:
                c.raw.read_reply()  # what reached the socket before the kill
                replied += 1
        except (OSError, helpers.Closed, EOFError):
            pass
    print("%d of %d DELs replied before the kill" % (replied, len(keys)))
    cl.wait_state([n1, n2], "n3", "dead", timeout=scaled(1.5))
    n3.start()
    cl.wait_converged(timeout=5.0)
    for n in cl:
        with n.conn() as c:
            got = c.pipeline([("GET", k) for k in keys[:replied]])
        stale = [k for k, v in zip(keys, got) if v is not None]
        assert not stale, "%s serves %d keys whose DEL replied, e.g. %s" % (
            n.name, len(stale), stale[:3])


def test_detection_times(cluster_factory):
    """Rough bounds on detection: a refused peer port is dead at once; a hung
    node suspect after suspect_after of silence, unreachable after the
    probes."""
    cl = cluster_factory(3)
    n1, n2, n3 = cl
    n2.sigstop()
    try:
        seen = cl.wait_state([n1, n3], "n2", ("suspect", "unreachable"),
                             timeout=scaled(SUSPECT_S + 1.0))
        t_un = cl.wait_state([n1, n3], "n2", "unreachable", timeout=scaled(PROBE_S + 1.0))
    finally:
        n2.sigcont()
    print("hung: suspect after %r, then unreachable after %r" % (seen, t_un))
    # Silence counts from the last frame heard, which may precede the SIGSTOP
    # by up to a heartbeat (and a scheduling delay).
    assert min(seen.values()) >= SUSPECT_S - HEARTBEAT_S - 0.25, "suspect too early: %r" % seen
    cl.wait_converged(timeout=5.0)
