"""A dead writer's writes in flight, settled among the survivors before any
replays them (src/cluster/orphans.c, WRITES.md rule 34), on one real cohortd,
n1, linked with two scripted peers of test_cluster_fake_peer.py: W, the
writer, and R, another member.

W commits ctr = 5, proposes 6 over it and dies (its port refuses, so n1
declares it dead at once). n1 must not replay 6 as W's write before R has
reported on W: a proposal R refused while its lease on W held cannot have
committed (W waited for R's acknowledgement), and replayed it would be an
INCR that took effect although W aborted it and told only the members it
still reached (sim W1). Checked:
  - n1 tells R what it refused of W (nothing here) in a VOIDED frame;
  - R reports 6 voided: n1 aborts it and serves 5 again;
  - R reports nothing voided: n1 replays 6, as before this rule;
  - R never reports: n1 replays 6 after flush_timeout, and says so.
Under the sanitizer build the harness also fails on any sanitizer report."""

import socket
import struct
import threading
import time

import pytest

import helpers
from cluster_harness import cluster_factory, requires_cohort  # noqa: F401
from conftest import scaled
from test_cluster_fake_peer import FAKE_INCARNATION, FLUSH, SYNC, FakePeer, _bytes
from test_cluster_fake_peer_writes import (COMMIT, PING, PONG, PROPOSE, SEED, SNAP_FRESH,
                                           SNAPREQ, SNAPSHOT, entry, flush)
from test_cluster_hostile import low_free_port

pytestmark = [requires_cohort, pytest.mark.cohort_only]

VOIDED = 22
ACK = 7


def voided(writer, seqs, inc=FAKE_INCARNATION):
    return _bytes(writer) + struct.pack(">QI", inc, len(seqs)) + b"".join(
        struct.pack(">Q", s) for s in seqs)


def parse_voided(payload):
    n = struct.unpack_from(">I", payload, 0)[0]
    name = payload[4:4 + n]
    inc, count = struct.unpack_from(">QI", payload, 4 + n)
    seqs = struct.unpack_from(">%dQ" % count, payload, 4 + n + 12)
    return name, inc, list(seqs)


def pump(fakes, seconds, on_frame=None, stop=None):
    """For seconds (or until the event stop is set): every live fake PINGs
    n1 every 50 ms, answers its PINGs and its SNAPREQs ("catching up too"),
    acknowledges its FLUSHes (as a member applying them), and hands its
    other frames to on_frame(fake, type, payload), which stops the pump by
    returning true."""
    end = time.monotonic() + seconds
    next_ping = 0
    while time.monotonic() < end and not (stop and stop.is_set()):
        ping = time.monotonic() >= next_ping
        if ping:
            next_ping = time.monotonic() + 0.05
        for fake in fakes:
            if ping:
                fake.ping()
            try:
                ftype, payload = fake._read_frame(0.005)
            except (TimeoutError, socket.timeout):
                continue
            if ftype == PING:
                fake.send(PONG, payload[:16])
            elif ftype == SNAPREQ:
                fake.send(SNAPSHOT, payload[:8] + struct.pack(">BI", SNAP_FRESH, 0))
            elif ftype == FLUSH:
                inc, first, count = struct.unpack_from(">QQI", payload, 0)
                fake.send(ACK, struct.pack(">QQ", inc, first + count - 1))
            elif on_frame and on_frame(fake, ftype, payload):
                return


@pytest.fixture
def n1_w_r(cluster_factory):
    """n1 (replicating every key, flush_timeout 1 s) serving, linked with W
    and R; W's ctr = 5 committed and its PROPOSE of 6 (flush 2) applied on
    n1 and undecided."""
    cl = cluster_factory(1, start=False, writes="replicate",
                         options={"flush_timeout": "1s", "lease": "2s"})
    n1 = cl[0]
    n1.cluster_port = low_free_port()
    w, r = FakePeer(cl.key_file, b"W"), FakePeer(cl.key_file, b"R")
    try:
        n1.config = cl.node_config(n1, peers=[n1.peer_address, w.address, r.address])
        n1.start()
        for fake in (w, r):
            inc = fake.accept(scaled(5.0))
            fake.send(SYNC, struct.pack(">QQQ", inc, 0, 0))
        assert helpers.wait_for(lambda: pump([w, r], 0.05) or n1.serving(), scaled(5.0)), \
            n1.log_tail()
        now = (int(time.time() * 1000) + 1000) * 1024
        w.send(FLUSH, flush(1, entry(SEED, b"\x00ctr", b"5", version=now << 10 | 7)))
        w.send(COMMIT, struct.pack(">QQ", FAKE_INCARNATION, 1))
        assert helpers.wait_for(lambda: pump([w, r], 0.05) or
                                n1.call("GET", "ctr") in (b"5", "5"), scaled(3.0)), n1.log_tail()
        w.send(FLUSH, flush(2, entry(PROPOSE, b"\x00ctr", b"6", version=(now + 1) << 10 | 7)))
        pump([w, r], 0.2)
        yield n1, w, r
    finally:
        w.close()
        r.close()


def kill_w_and_read_n1s_report(n1, w, r):
    """W's port closes: n1 declares it dead and reports to R. Returns n1's
    report (writer, incarnation, voided flush numbers)."""
    w.close()
    got = []
    pump([r], scaled(3.0), on_frame=lambda f, t, p: t == VOIDED and (got.append(p) or True))
    assert got, "n1 sent R no VOIDED after W died:\n" + n1.log_tail()
    return parse_voided(got[0])


def ctr_on_n1(n1, r):
    """n1's ctr once it no longer waits. R is pumped meanwhile in a thread
    of its own (it keeps n1's lease on it, and acknowledges the replay, for
    which a read of ctr waits)."""
    stop = threading.Event()
    pumper = threading.Thread(target=pump, args=([r], scaled(15.0)), kwargs={"stop": stop})
    pumper.start()
    try:
        out = []

        def read():
            out.append(n1.call("GET", "ctr"))
            return out[-1] in (b"5", "5", b"6", "6")
        assert helpers.wait_for(read, scaled(10.0)), (out, n1.log_tail())
        return out[-1] if isinstance(out[-1], bytes) else out[-1].encode()
    finally:
        stop.set()
        pumper.join()


def test_a_proposal_another_member_voided_is_not_replayed(n1_w_r):
    n1, w, r = n1_w_r
    writer, inc, seqs = kill_w_and_read_n1s_report(n1, w, r)
    assert (writer, inc, seqs) == (b"W", FAKE_INCARNATION, []), (writer, inc, seqs)
    r.send(VOIDED, voided(b"W", [2]))
    assert ctr_on_n1(n1, r) == b"5", n1.log_tail()
    assert n1.alive(), n1.log_tail()


def test_a_proposal_nobody_voided_is_replayed(n1_w_r):
    n1, w, r = n1_w_r
    kill_w_and_read_n1s_report(n1, w, r)
    r.send(VOIDED, voided(b"W", []))
    assert ctr_on_n1(n1, r) == b"6", n1.log_tail()
    assert "without every member's report" not in n1.log_text()


def test_without_a_report_the_replay_waits_flush_timeout_at_most(n1_w_r):
    n1, w, r = n1_w_r
    kill_w_and_read_n1s_report(n1, w, r)
    assert ctr_on_n1(n1, r) == b"6", n1.log_tail()
    assert "replaying W's writes in flight without every member's report on it" in \
        n1.log_text(), n1.log_tail()


def test_a_malformed_report_closes_the_link(n1_w_r):
    n1, w, r = n1_w_r
    r.send(VOIDED, _bytes(b"W") + struct.pack(">QI", FAKE_INCARNATION, 1000))
    assert helpers.wait_for(lambda: "malformed VOIDED" in n1.log_text(), scaled(3.0)), \
        n1.log_tail()
    assert n1.alive(), n1.log_tail()
