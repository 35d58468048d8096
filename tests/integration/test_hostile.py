"""Hostile clients: malformed protocol, limits, floods, idle crowds and
clients that vanish mid-command. After each, a well-behaved client must still
get correct answers."""

import os
import random
import resource
import socket
import time

import pytest

import helpers
from conftest import FLAVOR, SANITIZED, scaled

PROTO_ERR = b"-ERR Protocol error: "


def assert_healthy(d):
    """A fresh client gets correct answers."""
    assert d.alive(), "server died:\n%s" % d.stderr()[-3000:]
    key = "health:%d" % random.randrange(1 << 30)
    with d.raw() as c:
        assert c.cmd("PING") == b"+PONG\r\n"
        assert c.cmd("SET", key, "fine") == b"+OK\r\n"
        assert c.cmd("GET", key) == b"$4\r\nfine\r\n"
        assert c.cmd("DEL", key) == b":1\r\n"
        assert c.cmd("GET", key) == b"$-1\r\n"


def connected_clients(d):
    return int(d.info("clients")["connected_clients"])


def wait_clients(d, n, timeout=5.0):
    """Waits until INFO reports n connected clients (the asking one
    included). Returns the last count."""
    last = [None]

    def check():
        last[0] = connected_clients(d)
        return last[0] == n

    helpers.wait_for(check, scaled(timeout), interval=0.05)
    return last[0]


GARBAGE = [
    (b"*abc\r\n", b"invalid multibulk length"),
    (b"*1\r\nGARBAGE\r\n", b"expected '$', got 'G'"),
    (b"*2\r\n$3\r\nGET\r\n:1\r\n", b"expected '$', got ':'"),
    (b"*\xff\xfe\x01\r\n", b"invalid multibulk length"),
    (b"*1\r\n$-5\r\n", b"invalid bulk length"),
    (b"*1\r\n$1x\r\n", b"invalid bulk length"),
    (b'SET a "b\r\n', b"unbalanced quotes in request"),
    (b"SET a 'b\r\n", b"unbalanced quotes in request"),
    (b"*1\r\n$2147483648\r\n", b"invalid bulk length"),
    (b"*1\r\n$9223372036854775808\r\n", b"invalid bulk length"),
    (b"*-9223372036854775809\r\n", b"invalid multibulk length"),
]


@pytest.mark.parametrize("data,why", GARBAGE, ids=[repr(g[0])[2:30] for g in GARBAGE])
def test_protocol_error_closes(cohortd_module, data, why):
    d = _shared(cohortd_module)
    with d.raw() as c:
        assert c.cmd("PING") == b"+PONG\r\n"
        c.send(data)
        got = c.read_until_closed()
    assert got == PROTO_ERR + why + b"\r\n", got
    assert_healthy(d)


def test_too_big_inline_request(cohortd_module):
    """An inline request that never ends is a protocol error, not a buffer
    that grows until the query buffer limit."""
    d = _shared(cohortd_module)
    with d.raw() as c:
        try:
            for _ in range(16):
                c.send(b"a" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            got = c.read_until_closed()
        except socket.timeout:
            pytest.fail("1 MB without a newline: no error and the connection stays open")
    assert got == b"" or got.startswith(PROTO_ERR), got
    assert got in (b"", PROTO_ERR + b"too big inline request\r\n"), got
    assert_healthy(d)


def test_invalid_multibulk_length_above_limit(cohortd):
    if FLAVOR == "redis":
        pytest.skip("redis-server 7.0 accepts multibulk counts up to INT_MAX")
    d = cohortd()
    for count in (b"100000000", b"1048577", b"2147483648"):
        with d.raw() as c:
            c.send(b"*" + count + b"\r\n")
            assert c.read_until_closed() == PROTO_ERR + b"invalid multibulk length\r\n"
    # The limit itself is accepted: the server waits for the arguments.
    with d.raw(timeout=0.5) as c:
        c.send(b"*1048576\r\n$4\r\nECHO\r\n")
        with pytest.raises(socket.timeout):
            c.read_reply()
    assert_healthy(d)


def test_bulk_length_limit(cohortd):
    """max_bulk_len is enforced from the header, before any data arrives."""
    d = cohortd(config={"client": {"max_bulk_len": "1mb"}})
    with d.raw() as c:
        c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % (1024 * 1024 + 1))
        assert c.read_until_closed() == PROTO_ERR + b"invalid bulk length\r\n"
    with d.raw() as c:
        val = b"v" * (1024 * 1024)
        assert c.cmd("SET", "k", val) == b"+OK\r\n"
        assert c.cmd("GET", "k") == b"$%d\r\n%s\r\n" % (len(val), val)
    assert_healthy(d)


def _shared(manager):
    """One server for the small tests of this module."""
    for d in manager.daemons:
        if d.name == "hostile-shared" and d.alive():
            return d
    return manager(name="hostile-shared")


def test_slow_byte_at_a_time(cohortd_module):
    """A command that arrives one byte per packet is still parsed right."""
    d = _shared(cohortd_module)
    req = helpers.encode("SET", "slow", "a\r\nb") + helpers.encode("GET", "slow") + b"PING\r\n"
    with d.raw() as c:
        for i in range(len(req)):
            c.send(req[i:i + 1])
            time.sleep(0.001)
        assert c.read_reply() == b"+OK\r\n"
        assert c.read_reply() == b"$4\r\na\r\nb\r\n"
        assert c.read_reply() == b"+PONG\r\n"


def test_half_command_then_close(cohortd_module):
    d = _shared(cohortd_module)
    partials = [
        b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$10\r\nabc",
        b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$",
        b"*3\r\n$3\r\nSET\r\n$4\r\nha",
        b"*3\r\n",
        b"*",
        b"SET half value",
        b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$100000\r\n" + b"x" * 50000,
    ]
    for _ in range(20):
        for p in partials:
            s = socket.create_connection((helpers.HOST, d.port), timeout=scaled(5))
            s.sendall(p)
            s.close()
    # A reset instead of a clean close, with a partial command pending.
    for p in partials:
        s = socket.create_connection((helpers.HOST, d.port), timeout=scaled(5))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.sendall(p)
        s.close()
    with d.raw() as c:
        assert c.cmd("GET", "half") == b"$-1\r\n"
    assert wait_clients(d, 1) == 1
    assert_healthy(d)


def test_random_garbage(cohortd_module):
    """Random bytes on many connections: each is answered or closed; the
    server survives and keeps its data."""
    d = _shared(cohortd_module)
    with d.raw() as c:
        assert c.cmd("SET", "keep", "me") == b"+OK\r\n"
    rng = random.Random(1234)
    alphabet = b"*$\r\n:+-0123456789abcSETGET \"'\\\x00\xff"
    deadline = time.monotonic() + scaled(30)
    for i in range(300):
        if time.monotonic() > deadline:
            break
        n = rng.randrange(1, 200)
        if i % 2:
            data = bytes(rng.randrange(256) for _ in range(n))
        else:
            data = bytes(rng.choice(alphabet) for _ in range(n))
        with socket.create_connection((helpers.HOST, d.port), timeout=scaled(5)) as s:
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                # Read until the server closes (it sees our EOF).
                end = time.monotonic() + scaled(5)
                while time.monotonic() < end:
                    if not s.recv(65536):
                        break
                else:
                    pytest.fail("connection not closed after EOF; sent %r" % data)
            except (ConnectionResetError, BrokenPipeError):
                pass
    with d.raw() as c:
        assert c.cmd("GET", "keep") == b"$2\r\nme\r\n"
    assert_healthy(d)


def test_output_buffer_limit(cohortd):
    """A client that pipelines GETs of a large value and never reads is
    disconnected once its pending replies pass output_buffer_limit; the
    server's memory does not follow what it asked for."""
    d = cohortd(config={"client": {"output_buffer_limit": "1mb"}})
    val = b"v" * (256 * 1024)
    with d.raw() as c:
        assert c.cmd("SET", "big", val) == b"+OK\r\n"
    # VmHWM is the peak RSS: memory taken and given back still shows.
    hwm0 = helpers.proc_status(d.pid, "VmHWM") * 1024
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(scaled(5))
    s.connect((helpers.HOST, d.port))
    try:
        # 1000 GETs in one packet (256 MB of replies if all were kept): the
        # server reads them at once and must stop at the limit, not after.
        req = helpers.encode("GET", "big") * 1000
        sent = 0
        try:
            s.sendall(req)
            sent = 1000
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
        # The hoarding client is gone: only the asking one is left.
        assert wait_clients(d, 1) == 1
        hwm1 = helpers.proc_status(d.pid, "VmHWM") * 1024
        assert hwm1 - hwm0 < 32 * 1024 * 1024, \
            "peak RSS grew by %.1f MB for a client limited to 1 MB" % ((hwm1 - hwm0) / 2**20)
        # The client sees its connection end after what the kernel held.
        got = 0
        end = time.monotonic() + scaled(10)
        closed = False
        while time.monotonic() < end:
            try:
                chunk = s.recv(1 << 20)
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            got += len(chunk)
        assert closed, "connection still open after the output limit"
        assert got < sent * len(val)
    finally:
        s.close()
    assert_healthy(d)
    with d.raw() as c:
        assert c.cmd("GET", "big") == b"$%d\r\n%s\r\n" % (len(val), val)


def test_query_buffer_limit(cohortd):
    """A request that grows past query_buffer_limit closes the connection."""
    d = cohortd(config={"client": {"query_buffer_limit": "1mb"}})
    with d.raw() as c:
        closed = False
        try:
            c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$50000000\r\n")
            for _ in range(256):  # up to 16 MB
                c.send(b"x" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        if not closed:
            try:
                c.read_until_closed(timeout=scaled(5))
                closed = True
            except ConnectionResetError:
                closed = True
        assert closed
    # Many small commands in one burst are fine: the limit is on what is
    # pending, not on what passes through.
    with d.raw() as c:
        burst = helpers.encode("SET", "q", "x" * 1000) * 3000
        c.send(burst)
        for _ in range(3000):
            assert c.read_reply() == b"+OK\r\n"
        assert c.cmd("GET", "k") == b"$-1\r\n"
    assert_healthy(d)


def test_maxclients(cohortd):
    d = cohortd(config={"client": {"maxclients": 5}})
    conns = []
    try:
        for _ in range(5):
            c = d.raw()
            assert c.cmd("PING") == b"+PONG\r\n"
            conns.append(c)
        with d.raw() as extra:
            got = extra.read_until_closed()
        assert got == b"-ERR max number of clients reached\r\n", got
        # Still refused while full.
        with d.raw() as extra:
            assert extra.read_until_closed() == b"-ERR max number of clients reached\r\n"
        # Room again once one leaves.
        conns.pop().close()

        def try_one():
            with d.raw() as c:
                try:
                    return c.cmd("PING") == b"+PONG\r\n"
                except helpers.Closed:
                    return False

        assert helpers.wait_for(try_one, scaled(5), interval=0.05)
        for c in conns:
            assert c.cmd("ECHO", "still") == b"$5\r\nstill\r\n"
    finally:
        for c in conns:
            c.close()
    assert wait_clients(d, 1) == 1
    assert_healthy(d)


@pytest.mark.slow
def test_ten_thousand_idle_connections(cohortd):
    n = 10000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = n + 500
    if hard < need:
        pytest.skip("RLIMIT_NOFILE hard limit %d is below %d" % (hard, need))
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 2 * n + 1000), hard))
    d = cohortd(config={"client": {"maxclients": 11000}}, nofile=min(hard, 2 * n + 1000))
    socks = []
    try:
        deadline = time.monotonic() + scaled(60)
        for i in range(n):
            assert time.monotonic() < deadline, "only %d connections in time" % i
            s = socket.create_connection((helpers.HOST, d.port), timeout=scaled(10))
            socks.append(s)
        assert wait_clients(d, n + 1, timeout=30) == n + 1
        # A new client is answered promptly.
        t0 = time.monotonic()
        with d.raw() as c:
            assert c.cmd("PING") == b"+PONG\r\n"
        assert time.monotonic() - t0 < scaled(1.0)
        # Idle clients are alive, wherever they are in the list.
        for i in (0, n // 2, n - 1):
            socks[i].sendall(b"*1\r\n$4\r\nPING\r\n")
            assert socks[i].recv(64) == b"+PONG\r\n"
        assert_healthy(d)
        # Shut down with all of them connected: clean exit, each one closed.
        rc = d.stop(timeout=30)
        assert rc == 0, "exit %s with %d clients:\n%s" % (rc, n, d.stderr()[-3000:])
        for s in socks[::100]:
            s.settimeout(scaled(2))
            try:
                assert s.recv(64) == b""
            except ConnectionResetError:
                pass
    finally:
        for s in socks:
            s.close()
