"""A member that holds the cluster key but misbehaves: a scripted peer in
Python speaks the real handshake and frames (HMAC-SHA256, as README's peer
link table says) to one real cohortd, n1, and then does what no healthy
cohortd does. Whatever it does, a flush on n1 replies within flush_timeout + T
(the member's lease on n1 runs out) and never before the member could have
applied it or lost its lease.

n1's peer port sorts before the fake's (10000-19999 against 20000 and up), so
n1 opens the link and the fake answers as the acceptor."""

import hashlib
import hmac
import os
import socket
import struct
import threading
import time

import pytest

import helpers
from cluster_harness import FLUSH_TIMEOUT_S, LEASE_S, cluster_factory, requires_cohort  # noqa: F401
from conftest import scaled
from test_cluster_hostile import FRAME_VERSION, closed_within, frame_header, low_free_port, peer_socket, refused

pytestmark = [requires_cohort, pytest.mark.cohort_only]

HELLO, WELCOME, PROOF, PING, PONG, FLUSH, ACK, SYNC = 1, 2, 3, 4, 5, 6, 7, 8
FAKE_INCARNATION = 0x1234567


def _mac(key, *parts):
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()


def _hkdf(ikm, salt, info):
    """HKDF-SHA256 (RFC 5869) for one 32-byte output, as src/proto/frame.c."""
    prk = _mac(salt, ikm)
    return _mac(prk, info, b"\x01")


def _frame(ftype, payload, seq, key):
    head = frame_header(ftype, len(payload), seq)
    return head + payload + _mac(key, head + payload)


def _bytes(x):
    return struct.pack(">I", len(x)) + x


class _Reader:
    def __init__(self, payload):
        self.p, self.i = payload, 0

    def u8(self):
        self.i += 1
        return self.p[self.i - 1]

    def u16(self):
        self.i += 2
        return struct.unpack_from(">H", self.p, self.i - 2)[0]

    def u64(self):
        self.i += 8
        return struct.unpack_from(">Q", self.p, self.i - 8)[0]

    def blob(self):
        n = struct.unpack_from(">I", self.p, self.i)[0]
        self.i += 4 + n
        return self.p[self.i - n:self.i]


class FakePeer:
    """Listens on a peer port and completes the acceptor's side of the
    handshake with the cluster key; then sends what the test tells it to."""

    def __init__(self, key_file, name=b"fake"):
        with open(key_file, "rb") as f:
            secret = f.read().rstrip(b"\r\n ")
        self.ck = _mac(secret, b"cohort cluster key")
        self.name = name
        self.port = helpers.free_port()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(16)
        self.sock = None

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def close(self):
        if self.sock:
            self.sock.close()
        self.listener.close()

    def _read_frame(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 20:
                n = struct.unpack_from(">I", self.buf, 8)[0]
                if len(self.buf) >= 20 + n + 32:
                    ftype, payload = self.buf[5], self.buf[20:20 + n]
                    self.buf = self.buf[20 + n + 32:]
                    return ftype, payload
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame within %.1fs" % timeout)
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def accept(self, timeout):
        """Accepts n1's next link and completes the handshake. Returns n1's
        incarnation. Connections that close at once (n1's knocks) are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "n1 did not open a link to the fake peer"
            self.listener.settimeout(left)
            if self.sock:
                self.sock.close()
            self.sock, _ = self.listener.accept()
            self.buf = b""
            try:
                ftype, payload = self._read_frame(left)
            except (EOFError, OSError):
                continue
            assert ftype == HELLO, ftype
            r = _Reader(payload)
            r.u8()
            r.blob()  # cluster name
            n1_name = r.blob()
            n1_inc = r.u64()
            r.u16()
            nonce_i = r.blob()
            nonce_a = os.urandom(32)
            proof = _mac(self.ck, b"cohort acceptor", nonce_i, nonce_a,
                         _bytes(n1_name) + _bytes(self.name))
            welcome = (bytes([FRAME_VERSION]) + _bytes(b"cohort") + _bytes(self.name) +
                       struct.pack(">Q", FAKE_INCARNATION) + _bytes(nonce_a) + _bytes(proof))
            self.sock.sendall(_frame(WELCOME, welcome, 0, self.ck))
            ftype, _ = self._read_frame(left)
            assert ftype == PROOF, ftype
            # The fake is the acceptor: it sends with the acceptor-to-initiator key.
            self.link_key = _hkdf(self.ck, nonce_i + nonce_a, b"cohort link acceptor to initiator")
            self.seq = 0
            return n1_inc

    def send(self, ftype, payload):
        self.seq += 1
        self.sock.sendall(_frame(ftype, payload, self.seq, self.link_key))

    def ping(self):
        self.send(PING, struct.pack(">QQ", self.seq + 1, int(time.monotonic() * 1000)))

    def drain(self):
        """Reads and drops whatever n1 sent (its PINGs, PONGs and FLUSHes)."""
        self.sock.settimeout(0.001)
        try:
            while self.sock.recv(65536):
                pass
        except (socket.timeout, BlockingIOError, ConnectionResetError):
            pass


def n1_with_fake(cluster_factory, **kw):
    """Yields n1, a real cohortd whose peer list names the fake peer (kw:
    Cluster options), and the fake."""
    cl = cluster_factory(1, start=False, **kw)
    n1 = cl[0]
    n1.cluster_port = low_free_port()
    fake = FakePeer(cl.key_file)
    try:
        n1.config = cl.node_config(n1, peers=[n1.peer_address, fake.address])
        n1.start()
        yield n1, fake
    finally:
        fake.close()


@pytest.fixture
def n1_and_fake(cluster_factory):
    """n1, a real cohortd whose peer list names the fake peer, and the fake."""
    yield from n1_with_fake(cluster_factory)


def _timed_del(n1, key, out):
    t0 = time.monotonic()
    try:
        with helpers.RawConn(n1.port, timeout=scaled(15.0)) as c:
            out.append((c.cmd("DEL", key), time.monotonic() - t0))
    except OSError as e:
        out.append((e, time.monotonic() - t0))


def _keep_alive_until(fake, done, seconds):
    """PINGs every 50 ms (so n1 keeps hearing from it) and never ACKs."""
    end = time.monotonic() + seconds
    while not done() and time.monotonic() < end:
        fake.ping()
        fake.drain()
        time.sleep(0.05)


def test_sync_claiming_everything_applied_does_not_release_flushes(n1_and_fake):
    """A SYNC saying "I applied flush 2^64-1 of yours" must not count as an
    acknowledgement of flushes never sent: the DEL waits for the fake's
    lease on n1 to run out, as for any member that does not acknowledge."""
    n1, fake = n1_and_fake
    n1_inc = fake.accept(scaled(5.0))
    fake.send(SYNC, struct.pack(">QQQ", n1_inc, (1 << 64) - 1, 0))
    fake.ping()
    helpers.wait_for(lambda: n1.state_of("fake") == "alive", scaled(2.0))
    n1.call("SET", "k", "v")
    out = []
    t = threading.Thread(target=_timed_del, args=(n1, "k", out))
    t.start()
    _keep_alive_until(fake, lambda: out, scaled(FLUSH_TIMEOUT_S + LEASE_S + 3.0))
    t.join(scaled(10.0))
    assert out, "DEL never replied"
    reply, took = out[0]
    assert reply == b":1\r\n", reply
    # Released only once the fake's lease ran out: no PONG for it after
    # flush_timeout unacknowledged, then T more.
    assert took >= FLUSH_TIMEOUT_S - 0.1, "DEL replied after %.3fs, unacknowledged" % took


def test_link_that_keeps_reconnecting_does_not_stretch_the_wait(n1_and_fake):
    """A member that never acknowledges and whose link drops every 0.5 s (so
    each new link starts with a fresh SYNC) still has its lease on n1 run
    out: the DEL replies within flush_timeout + T, not never."""
    n1, fake = n1_and_fake
    n1.call("SET", "k", "v")
    out = []
    t = None
    deadline = time.monotonic() + scaled(FLUSH_TIMEOUT_S + LEASE_S + 6.0)
    links = 0
    while not out and time.monotonic() < deadline:
        try:
            fake.accept(scaled(5.0))
        except AssertionError:
            break
        links += 1
        fake.send(SYNC, struct.pack(">QQQ", 0, 0, 0))  # applied nothing of n1's
        if t is None:
            t = threading.Thread(target=_timed_del, args=(n1, "k", out))
            t.start()
        _keep_alive_until(fake, lambda: out, 0.5)
        fake.sock.close()
        fake.sock = None
    t.join(scaled(10.0))
    assert out, "DEL did not reply within %.1fs over %d links" % (
        scaled(FLUSH_TIMEOUT_S + LEASE_S + 6.0), links)
    reply, took = out[0]
    print("DEL replied after %.3fs over %d links" % (took, links))
    assert reply == b":1\r\n", reply
    assert links >= 2, "the link never dropped during the wait"
    assert took >= FLUSH_TIMEOUT_S - 0.1, "DEL replied after %.3fs, unacknowledged" % took
    # The fake kept reconnecting until the deadline: a wait that restarted
    # with every link would last until the fake gave up, plus T.
    assert took < scaled(FLUSH_TIMEOUT_S + LEASE_S + 2.5), \
        "DEL waited %.3fs: link churn stretched the wait past flush_timeout + T" % took


def test_flush_numbers_that_would_wrap_are_refused(n1_and_fake):
    """A FLUSH whose first number plus its count passes 2^64 closes the link
    (malformed); n1 keeps its cache and keeps serving."""
    n1, fake = n1_and_fake
    fake.accept(scaled(5.0))
    n1.call("SET", "kept", "v")
    r0 = refused(n1)
    entry = bytes([1]) + struct.pack(">Q", 1) + _bytes(b"kept")  # kind, version, key
    payload = struct.pack(">QQI", FAKE_INCARNATION, (1 << 64) - 1, 2) + entry + entry
    fake.send(FLUSH, payload)
    took, _ = closed_within(fake.sock, scaled(2.0))
    assert took is not None, "a FLUSH numbered past 2^64 left the link open"
    assert helpers.wait_for(lambda: refused(n1) > r0, scaled(1.0)) or \
        "malformed FLUSH" in n1.log_text()
    assert n1.call("DBSIZE") == 1
    assert n1.counter("cache_drops") == 0


def test_strangers_cannot_make_a_node_buffer_large_frames(cluster_factory):
    """Before the handshake only small frames are accepted: a HELLO header
    announcing 4097 bytes is refused on its header, so unauthenticated
    connections cannot make a node buffer big payloads."""
    cl = cluster_factory(2)
    target = cl[0]
    rss0 = helpers.rss_bytes(target.pid)
    socks = []
    try:
        for _ in range(8):
            s = peer_socket(target)
            s.sendall(frame_header(HELLO, 4097))
            socks.append(s)
        for s in socks:
            took, _ = closed_within(s, scaled(1.0))
            assert took is not None, "a 4097-byte HELLO left the link open"
        # 4 KiB is accepted as a length (and then waited for, up to the
        # handshake deadline): only the header says how much may follow.
        with peer_socket(target) as s:
            s.sendall(frame_header(HELLO, 4096) + b"x" * 4000)
            took, _ = closed_within(s, 0.3)
            assert took is None, "a 4096-byte HELLO was refused on its length"
    finally:
        for s in socks:
            s.close()
    assert helpers.rss_bytes(target.pid) < rss0 + (16 << 20)
    cl.wait_converged(timeout=5.0)


def test_small_max_bulk_len_still_carries_big_batches(cluster_factory):
    """With max_bulk_len = 1kb, one DEL of 3,000 keys makes FLUSH frames
    near the 1 MiB batch size, far above twice max_bulk_len: peers accept
    them (no refused link) and every key is gone everywhere."""
    cl = cluster_factory(3, start=False)
    for n in cl:
        n.config["client"]["max_bulk_len"] = "1kb"
    cl.start()
    keys = ["bulk:%05d:%s" % (i, "p" * 300) for i in range(3000)]
    cl.fill([(k, "v") for k in keys])
    r0 = {n.name: refused(n) for n in cl}
    assert cl[0].call("DEL", *keys) == len(keys)
    for n in cl:
        assert n.call("DBSIZE") == 0, n.name
        assert refused(n) == r0[n.name], "%s refused a link" % n.name
    cl.wait_converged(timeout=5.0)


def test_pipelined_flush_waits_its_own_flush_timeout_for_a_silent_member(n1_and_fake):
    """A member n1 has never heard from (its port takes connections, then
    says nothing) may be a node just restarted that holds old values: every
    flush waits flush_timeout for it, counted from that flush, also when it
    follows another flush on the same connection."""
    n1, fake = n1_and_fake  # the fake never accepts: n1's links sit in its backlog
    assert n1.state_of("fake") in (None, "unknown"), n1.members()
    n1.call("SET", "a", "1")
    n1.call("SET", "b", "2")
    with helpers.RawConn(n1.port, timeout=scaled(10.0)) as c:
        c.send(helpers.encode("DEL", "a"))
        time.sleep(0.6 * FLUSH_TIMEOUT_S)
        t_b = time.monotonic()
        c.send(helpers.encode("DEL", "b"))
        assert c.read_reply() == b":1\r\n"
        assert c.read_reply() == b":1\r\n"
        took = time.monotonic() - t_b
    assert took >= FLUSH_TIMEOUT_S - 0.1, \
        "the second DEL replied %.3fs after it was sent, before its flush_timeout" % took
