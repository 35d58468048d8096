"""The write protocol's frames from a member that holds the cluster key but
sends them malformed (cluster/WRITES.md: PROPOSE, NACK, ABORT, COMMIT,
SNAPREQ, SNAPSHOT). The scripted peer of test_cluster_fake_peer.py speaks
the real handshake and MACs to one real cohortd, n1; each malformed frame
must be refused with a clear log line (the link closed, or the entry
ignored), and n1 keeps serving its clients and comes back to the fake's next
link. Under the sanitizer build (COHORTD=build-asan/cohortd) the harness also
fails the test on any sanitizer report in n1's stderr."""

import socket
import struct
import time

import pytest

import helpers
from cluster_harness import cluster_factory, requires_cohort  # noqa: F401
from conftest import scaled
from test_cluster_fake_peer import (FAKE_INCARNATION, FLUSH, SYNC,  # noqa: F401
                                    _bytes, n1_and_fake, n1_with_fake)
from test_cluster_hostile import closed_within, refused

pytestmark = [requires_cohort, pytest.mark.cohort_only]

PING, PONG = 4, 5
SNAPREQ, SNAPSHOT, NACK, ABORT, COMMIT = 15, 16, 17, 18, 19
PROPOSE = 6  # a FLUSH entry's kind
SEED = 4
SNAP_DONE, SNAP_FRESH, SNAP_NOT_SERVING, SNAP_WAITING, SNAP_PARTIAL = 1, 2, 4, 8, 16


def entry(kind, key, val=b"", version=1 << 40, ttl=0, enc=0):
    out = bytes([kind]) + struct.pack(">Q", version) + _bytes(key)
    if kind in (SEED, PROPOSE):
        out += struct.pack(">Q", ttl) + _bytes(val) + bytes([enc])
    return out


def flush(first, *entries, inc=FAKE_INCARNATION):
    return struct.pack(">QQI", inc, first, len(entries)) + b"".join(entries)


def pump(fake, seconds, snapreq=False, on_frame=None):
    """For seconds: PINGs n1 every 50 ms and answers n1's PINGs (so n1 holds
    a lease on the fake and serves); with snapreq, answers n1's SNAPREQ with
    "catching up too" (SNAP_FRESH); passes n1's other frames to on_frame
    (dropped without), and stops early when it returns true."""
    end = time.monotonic() + seconds
    next_ping = 0
    while time.monotonic() < end:
        if time.monotonic() >= next_ping:
            fake.ping()
            next_ping = time.monotonic() + 0.05
        try:
            ftype, payload = fake._read_frame(0.01)
        except (TimeoutError, socket.timeout):
            continue
        if ftype == PING:
            fake.send(PONG, payload[:16])
        elif ftype == SNAPREQ and snapreq:
            fake.send(SNAPSHOT, payload[:8] + struct.pack(">BI", SNAP_FRESH, 0))
        elif on_frame and on_frame(ftype, payload):
            return


def pump_answering(fake, seconds):
    pump(fake, seconds, snapreq=True)


def linked(n1, fake):
    """Accepts n1's next link, starts the fake's stream and keeps it up until
    n1 sees the fake alive and serves. Returns n1's incarnation."""
    inc = fake.accept(scaled(5.0))
    fake.send(SYNC, struct.pack(">QQQ", inc, 0, 0))
    assert helpers.wait_for(lambda: pump(fake, 0.05) or n1.serving(), scaled(5.0)), \
        n1.log_tail()
    return inc


def assert_answers(n1, tag):
    """n1 is up and answers its clients (whether it serves cached values
    depends on its lease on the fake)."""
    assert n1.alive(), n1.log_tail()
    assert n1.call("PING") in (b"PONG", "PONG", True)
    assert n1.call("SET", "after:" + tag, "ok") in (b"OK", "OK", True)


def assert_serves(n1, fake, tag):
    """n1 serves: a value written is read back (the fake keeps its lease)."""
    assert_answers(n1, tag)
    pump(fake, 0.05)
    assert n1.call("GET", "after:" + tag) in (b"ok", "ok")


def refused_with(n1, fake, r0, line):
    took, _ = closed_within(fake.sock, scaled(2.0))
    assert took is not None, "n1 kept the link open after: %s" % line
    assert helpers.wait_for(lambda: line in n1.log_text(), scaled(2.0)), n1.log_tail()
    assert refused(n1) > r0


def test_a_well_formed_proposal_commits_on_n1(n1_and_fake):
    """The fake speaks the protocol right: its PROPOSE is applied on n1, a
    read of the key waits for the COMMIT, then returns the value."""
    n1, fake = n1_and_fake
    linked(n1, fake)
    fake.send(FLUSH, flush(1, entry(PROPOSE, b"\x00p", b"from-fake")))
    fake.send(COMMIT, struct.pack(">QQ", FAKE_INCARNATION, 1))
    fake.ping()
    got = []
    assert helpers.wait_for(lambda: pump(fake, 0.05) or got.append(n1.call("GET", "p")) or
                            got[-1] in (b"from-fake", "from-fake"), scaled(3.0)), \
        (got[-3:], n1.log_tail())


# (frame type, payload maker(n1's incarnation), the log line it must cause)
MALFORMED = [
    ("NACK truncated", NACK, lambda inc: struct.pack(">Q", inc), "malformed NACK"),
    ("NACK trailing bytes", NACK, lambda inc: struct.pack(">QQB", inc, 1, 0), "malformed NACK"),
    ("NACK of a flush never sent", NACK, lambda inc: struct.pack(">QQ", inc, 1 << 62),
     "NACK of a flush never sent"),
    ("ABORT truncated", ABORT, lambda inc: struct.pack(">I", 7), "malformed ABORT"),
    ("COMMIT trailing bytes", COMMIT, lambda inc: struct.pack(">QQQ", FAKE_INCARNATION, 1, 2),
     "malformed COMMIT"),
    ("SNAPREQ id 0", SNAPREQ, lambda inc: struct.pack(">Q", 0), "malformed SNAPREQ"),
    ("SNAPREQ truncated", SNAPREQ, lambda inc: b"\x01", "malformed SNAPREQ"),
    ("SNAPSHOT unknown flags", SNAPSHOT, lambda inc: struct.pack(">QBI", 1, 0x80, 0),
     "malformed SNAPSHOT"),
    ("SNAPSHOT entries missing", SNAPSHOT, lambda inc: struct.pack(">QBI", 1, 1, 5),
     "malformed SNAPSHOT entry"),
    ("SNAPSHOT key longer than the frame", SNAPSHOT,
     lambda inc: struct.pack(">QBIQI", 1, 1, 1, 1, 0xFFFFFFFF) + b"k",
     "malformed SNAPSHOT entry"),
    ("PROPOSE value truncated", FLUSH,
     lambda inc: flush(1, entry(PROPOSE, b"\x00k", b"value"))[:-4], "malformed FLUSH entry"),
    ("PROPOSE value length over every limit", FLUSH,
     lambda inc: flush(1, bytes([PROPOSE]) + struct.pack(">Q", 1 << 40) + _bytes(b"\x00k") +
                       struct.pack(">QI", 0, 0xFFFFFFF0) + b"v"), "malformed FLUSH entry"),
    ("PROPOSE of an unknown entry kind", FLUSH,
     lambda inc: flush(1, bytes([99]) + struct.pack(">Q", 1) + _bytes(b"\x00k")),
     "malformed FLUSH entry"),
]


@pytest.mark.parametrize("name,ftype,payload,line", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_write_frames_are_refused_and_n1_keeps_serving(n1_and_fake, name, ftype,
                                                                payload, line):
    n1, fake = n1_and_fake
    inc = linked(n1, fake)
    r0 = refused(n1)
    fake.send(ftype, payload(inc))
    refused_with(n1, fake, r0, line)
    assert_answers(n1, "1")
    # n1 links with the fake again, and serves with it.
    linked(n1, fake)
    assert_serves(n1, fake, "2")
    assert n1.counter("cache_drops") == 0 or ftype in (FLUSH, SNAPSHOT)


# (name, flags): a SNAPSHOT n1 never asked for, each flag the catch-up knows
# (src/proto/frame.h), and all of them at once.
UNASKED_SNAPSHOTS = [
    ("WAITING", SNAP_WAITING),
    ("PARTIAL", SNAP_PARTIAL),
    ("PARTIAL and DONE", SNAP_PARTIAL | SNAP_DONE),
    ("every flag", SNAP_DONE | SNAP_FRESH | SNAP_NOT_SERVING | SNAP_WAITING | SNAP_PARTIAL),
]


def snapshot_entry(key, val, version):
    return struct.pack(">Q", version) + _bytes(key) + struct.pack(">Q", 0) + _bytes(val) + b"\x00"


@pytest.fixture
def n1_replicating_and_fake(cluster_factory):
    """As n1_and_fake, with every key of n1 replicated: n1 asks the fake for
    a snapshot at start (pump_answering says "catching up too")."""
    yield from n1_with_fake(cluster_factory, writes="replicate")


def unasked_snapshot_changes_nothing_but_by_version(n1, fake, flags, pumper):
    inc = fake.accept(scaled(5.0))
    fake.send(SYNC, struct.pack(">QQQ", inc, 0, 0))
    assert helpers.wait_for(lambda: pumper(fake, 0.05) or n1.serving(), scaled(5.0)), \
        n1.log_tail()
    r0 = refused(n1)
    fake.send(FLUSH, flush(1, entry(PROPOSE, b"\x00s", b"new", version=1 << 41)))
    fake.send(COMMIT, struct.pack(">QQ", FAKE_INCARNATION, 1))
    assert helpers.wait_for(lambda: pumper(fake, 0.05) or
                            n1.call("GET", "s") in (b"new", "new"), scaled(3.0)), n1.log_tail()
    fake.send(SNAPSHOT, struct.pack(">QBI", 77, flags, 1) +
              snapshot_entry(b"\x00s", b"old", 1 << 40))
    try:
        pumper(fake, 0.3)
    except EOFError:
        time.sleep(0.5)
        pytest.fail("n1 closed the link (alive %s):\n%s" % (n1.alive(), n1.log_tail()))
    assert refused(n1) == r0, n1.log_tail()
    assert n1.serving(), n1.log_tail()
    assert n1.call("GET", "s") in (b"new", "new")
    assert n1.call("SET", "after", "ok") in (b"OK", "OK", True)
    pumper(fake, 0.05)
    assert n1.call("GET", "after") in (b"ok", "ok")


@pytest.mark.parametrize("name,flags", UNASKED_SNAPSHOTS, ids=[u[0] for u in UNASKED_SNAPSHOTS])
def test_an_unasked_snapshot_with_catch_up_flags_changes_nothing_but_by_version(
        n1_and_fake, name, flags):
    """A member that sends SNAPSHOT frames n1 never asked for, with the
    catch-up's flags (waiting, partial, everything at once), with no
    keyspace replicating on n1 (it crashed on the entry: no snapshot hook):
    the link stays up, n1 keeps serving and does not start a catch-up, and
    an entry older than n1's value of its key is not taken."""
    n1, fake = n1_and_fake
    unasked_snapshot_changes_nothing_but_by_version(n1, fake, flags, pump)


@pytest.mark.parametrize("name,flags", UNASKED_SNAPSHOTS, ids=[u[0] for u in UNASKED_SNAPSHOTS])
def test_an_unasked_snapshot_on_a_replicating_node_changes_nothing_but_by_version(
        n1_replicating_and_fake, name, flags):
    """The same with every key replicated on n1 (the entries reach the
    write protocol's catch-up code, which takes them by version only)."""
    n1, fake = n1_replicating_and_fake
    unasked_snapshot_changes_nothing_but_by_version(n1, fake, flags, pump_answering)


def test_a_proposal_of_an_unknown_value_type_is_ignored_with_a_log_line(n1_and_fake):
    """A PROPOSE whose value type byte is unknown is well framed: n1 logs it,
    applies nothing and keeps the link."""
    n1, fake = n1_and_fake
    linked(n1, fake)
    r0 = refused(n1)
    fake.send(FLUSH, flush(1, entry(PROPOSE, b"\x00odd", b"v", enc=200)))
    pump(fake, 0.1)
    assert helpers.wait_for(lambda: "unknown type (200)" in n1.log_text(), scaled(2.0)), \
        n1.log_tail()
    pump(fake, 0.3)  # (a closed link raises EOFError here)
    assert refused(n1) == r0
    assert n1.call("EXISTS", "odd") in (0, b"0")
    assert_serves(n1, fake, "odd")


def read_snapshot(fake, seconds, sid):
    """For at most seconds (keeping n1's lease on the fake as pump does):
    n1's SNAPSHOT frames answering request sid, until one says SNAP_DONE.
    Returns (done, [(key, value, version)])."""
    entries, done = [], []

    def take(ftype, payload):
        if ftype != SNAPSHOT:
            return False
        got, flags, count = struct.unpack_from(">QBI", payload, 0)
        if got != sid:
            return False
        i = 13
        for _ in range(count):
            version, klen = struct.unpack_from(">QI", payload, i)
            key = payload[i + 12:i + 12 + klen]
            i += 12 + klen + 8
            vlen = struct.unpack_from(">I", payload, i)[0]
            entries.append((key, payload[i + 4:i + 4 + vlen], version))
            i += 4 + vlen + 1
        done.append(flags & SNAP_DONE)
        return bool(flags & SNAP_DONE)

    pump(fake, seconds, on_frame=take)
    return any(done), entries


def six_over_five(n1, fake):
    """The fake links with n1 (n1 serving), commits ctr = 5 and proposes 6
    over it (flush 2, left undecided). Returns the hlc counter of 6 and the
    versions of 5 and 6."""
    inc = fake.accept(scaled(5.0))
    fake.send(SYNC, struct.pack(">QQQ", inc, 0, 0))
    assert helpers.wait_for(lambda: pump_answering(fake, 0.05) or n1.serving(),
                            scaled(5.0)), n1.log_tail()
    now = (int(time.time() * 1000) + 1000) * 1024  # hlc counter: 1/1024 ms (base/hlc.h)
    v5, v6 = now << 10 | 7, (now + 1) << 10 | 7
    fake.send(FLUSH, flush(1, entry(SEED, b"\x00ctr", b"5", version=v5)))
    fake.send(COMMIT, struct.pack(">QQ", FAKE_INCARNATION, 1))
    assert helpers.wait_for(lambda: pump(fake, 0.05) or
                            n1.call("GET", "ctr") in (b"5", "5"), scaled(3.0)), n1.log_tail()
    fake.send(FLUSH, flush(2, entry(PROPOSE, b"\x00ctr", b"6", version=v6)))
    return now + 1, v5, v6


def six_over_five_deferred(n1, fake):
    """six_over_five, then the fake asks n1 for a snapshot (id 9): n1 sends
    nothing of ctr and no SNAP_DONE while 6 is undecided."""
    six, v5, v6 = six_over_five(n1, fake)
    pump(fake, 0.2)
    fake.send(SNAPREQ, struct.pack(">Q", 9))
    done, entries = read_snapshot(fake, scaled(0.5), 9)  # (it gives up after two leases)
    assert not done, "n1 finished its snapshot with ctr undecided: %r" % entries
    assert [e for e in entries if e[0] == b"\x00ctr"] == [], entries
    return six, v5, v6


@pytest.mark.parametrize("decision", ["ABORT", "COMMIT"])
def test_a_snapshot_waits_for_a_proposal_its_sender_holds_undecided(
        n1_replicating_and_fake, decision):
    """WRITES.md rule 24 on a real node: n1 holds the fake's PROPOSE of
    ctr (6 over 5) undecided when the fake asks n1 for a snapshot. n1 sends
    nothing of ctr and no SNAP_DONE until the fake decides; then the value
    the decision leaves: 5 after an ABORT, 6 after a COMMIT. (Before, the
    undecided 6 went at once as a plain value after 5, and a requester
    that never heard the ABORT kept an aborted INCR: sim seed 248.)"""
    n1, fake = n1_replicating_and_fake
    _, v5, v6 = six_over_five_deferred(n1, fake)
    if decision == "ABORT":
        fake.send(ABORT, struct.pack(">QQ", FAKE_INCARNATION, 2))
    else:
        fake.send(COMMIT, struct.pack(">QQ", FAKE_INCARNATION, 2))
    done, entries = read_snapshot(fake, scaled(3.0), 9)
    assert done, (entries, n1.log_tail())
    ctr = [(val, version) for key, val, version in entries if key == b"\x00ctr"]
    assert ctr == ([(b"5", v5)] if decision == "ABORT" else [(b"6", v6)]), ctr
    assert n1.alive(), n1.log_tail()


def test_a_snapshot_waits_for_a_proposal_that_overtook_the_one_it_deferred(
        n1_replicating_and_fake):
    """WRITES.md rule 30 on a real node: n1 defers ctr for the fake's
    undecided PROPOSE of 6 over 5; a newer PROPOSE from the same 5 (a higher
    tag, flush 3) overtakes it. n1 still sends nothing of ctr until no
    proposal stands undecided on it; after the ABORT of the first and the
    COMMIT of the second, the second's value alone. (Before, the overtaking
    ended the wait and both undecided values went as plain values: sim
    --store seed 130, a lock on two nodes of four.)"""
    n1, fake = n1_replicating_and_fake
    six, _, _ = six_over_five_deferred(n1, fake)
    v6b = six << 10 | 8  # the same counter, a higher tag: newer, from the same 5
    fake.send(FLUSH, flush(3, entry(PROPOSE, b"\x00ctr", b"6", version=v6b)))
    # not scaled: the wait gives up two leases after the scan ended
    done, entries = read_snapshot(fake, 0.5, 9)
    assert not done, "n1 finished its snapshot with ctr undecided: %r" % entries
    assert [e for e in entries if e[0] == b"\x00ctr"] == [], entries
    fake.send(ABORT, struct.pack(">QQ", FAKE_INCARNATION, 2))
    fake.send(COMMIT, struct.pack(">QQ", FAKE_INCARNATION, 3))
    done, entries = read_snapshot(fake, scaled(3.0), 9)
    assert done, (entries, n1.log_tail())
    assert [(v, ver) for k, v, ver in entries if k == b"\x00ctr"] == [(b"6", v6b)], entries
    assert n1.alive(), n1.log_tail()


def test_a_node_that_served_as_is_asks_again_and_takes_what_it_lacked(
        n1_replicating_and_fake):
    """WRITES.md rule 26 on a real node: n1 starts, the fake (its only
    member) says "catching up too", so n1 serves as is. Then n1 asks the
    fake once more, to reconcile; the fake's whole snapshot holds a key n1
    never had, and n1 serves it. (Before, copies that every holder dropped
    at about the same time stayed different for good: sim W4.)"""
    n1, fake = n1_replicating_and_fake
    inc = fake.accept(scaled(5.0))
    fake.send(SYNC, struct.pack(">QQQ", inc, 0, 0))
    assert helpers.wait_for(lambda: pump_answering(fake, 0.05) or n1.serving(),
                            scaled(5.0)), n1.log_tail()
    asked = []
    pump(fake, scaled(2.0),
         on_frame=lambda ftype, p: ftype == SNAPREQ and (asked.append(p[:8]) or True))
    assert asked, "n1 never asked again after serving as is:\n" + n1.log_tail()
    version = ((int(time.time() * 1000) + 1000) * 1024) << 10 | 7
    fake.send(SNAPSHOT, asked[0] + struct.pack(">BI", SNAP_DONE, 1) +
              snapshot_entry(b"\x00lost", b"kept-by-fake", version))
    assert helpers.wait_for(lambda: pump(fake, 0.05) or
                            n1.call("GET", "lost") in (b"kept-by-fake", "kept-by-fake"),
                            scaled(3.0)), n1.log_tail()
    assert "reconciled with fake" in n1.log_text()
    asked.clear()
    pump(fake, 0.5, on_frame=lambda ftype, p: ftype == SNAPREQ and (asked.append(p) or True))
    assert asked == [], "n1 asked again after a whole snapshot"


def test_a_proposal_its_maker_never_decides_ends_the_snapshot_unfinished(
        n1_replicating_and_fake):
    """A member that proposes and then never says COMMIT or ABORT (hostile,
    or hung) cannot hold a snapshot answer for ever: after two leases n1
    ends it with "not serving" (the asker asks again later), the link stays
    up and n1 keeps serving. Once the member decides, a new request gets
    the whole snapshot: nothing was lost."""
    n1, fake = n1_replicating_and_fake
    _, v5, _ = six_over_five(n1, fake)
    fake.send(SNAPREQ, struct.pack(">Q", 21))
    answers = []

    def take(ftype, payload):
        if ftype == SNAPSHOT and struct.unpack_from(">Q", payload, 0)[0] == 21:
            answers.append(payload[8])
            return bool(payload[8] & (SNAP_DONE | SNAP_NOT_SERVING))
        return False

    pump(fake, scaled(10.0), on_frame=take)
    assert answers and answers[-1] & SNAP_NOT_SERVING, (answers, n1.log_tail())
    assert not any(f & SNAP_DONE for f in answers), answers
    assert "a write in flight stayed undecided" in n1.log_text()
    assert_serves(n1, fake, "undecided")
    fake.send(ABORT, struct.pack(">QQ", FAKE_INCARNATION, 2))
    pump(fake, 0.2)
    fake.send(SNAPREQ, struct.pack(">Q", 22))
    done, entries = read_snapshot(fake, scaled(3.0), 22)
    assert done, (entries, n1.log_tail())
    assert [(v, ver) for k, v, ver in entries if k == b"\x00ctr"] == [(b"5", v5)], entries
