"""Shared helpers for cohort's end-to-end tests.

Owns: encoding commands as RESP, reading exactly one reply from a raw socket
(returning its bytes unchanged, so tests can compare bytes), a small RESP
decoder for tests that need values, free loopback ports, /proc readings and a
minimal HTTP client. Never: starts processes (conftest.py does that).

Every wait here is bounded by a timeout; nothing loops forever.
"""

import os
import random
import socket
import time

HOST = "127.0.0.1"


_issued_ports = set()  # ports free_port() handed out in this session


def _ephemeral_range():
    """The kernel's ephemeral port range (32768-60999 if unknown)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split()[:2])
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port_range():
    """Where free_port() draws from: 20000 up to the ephemeral range, or,
    where that range starts lower, the ports above it."""
    lo, hi = _ephemeral_range()
    if lo > 21000:
        return 20000, lo
    if hi < 64000:
        return hi + 1, 65536
    raise AssertionError("ip_local_port_range %d-%d leaves no ports for test servers" % (lo, hi))


def _bindable(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def free_port_base(offsets):
    """Returns a port base such that base + each offset is a TCP port on
    127.0.0.1 that was free a moment ago, never inside the kernel's ephemeral
    range: an outgoing connection (a peer link, a client) takes its local
    port from that range and could otherwise grab a port a node is about to
    listen on. Each port is handed out once per test session."""
    first, end = free_port_range()
    span = max(offsets)
    for attempt in range(2):
        for _ in range(2000):
            base = random.randrange(first, end - span)
            ports = [base + o for o in offsets]
            if any(p in _issued_ports for p in ports) or not all(_bindable(p) for p in ports):
                continue
            _issued_ports.update(ports)
            return base
        # A long session has handed out most of the range, in scattered
        # pieces: the ports of tests that are over are free again (their
        # processes are gone; a port still in use does not bind), so start
        # handing them out afresh.
        _issued_ports.clear()
    raise AssertionError("no free ports in %d-%d" % (first, end - 1))


def free_port():
    """Returns one free port, as free_port_base() does."""
    return free_port_base([0])


def to_bytes(x):
    if isinstance(x, bytes):
        return x
    if isinstance(x, (bytearray, memoryview)):
        return bytes(x)
    return str(x).encode()


def encode(*args):
    """Encodes one command as a RESP multibulk request."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = to_bytes(a)
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Closed(Exception):
    """The peer closed the connection before a whole reply arrived."""


class RawConn:
    """A plain TCP connection that speaks RESP byte for byte.

    read_reply() returns the exact bytes of one reply (a RESP3 attribute is
    kept together with the reply it precedes)."""

    def __init__(self, port, host=HOST, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = bytearray()
        self.closed = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def cmd(self, *args):
        """Sends one command and returns its raw reply bytes."""
        self.send(encode(*args))
        return self.read_reply()

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("no complete reply within %.1fs" % self.timeout)
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 20)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
            raise Closed(bytes(self.buf))
        self.buf += chunk

    def _line_end(self, pos, deadline):
        while True:
            i = self.buf.find(b"\r\n", pos)
            if i >= 0:
                return i
            self._fill(deadline)

    def _skip(self, pos, deadline):
        """Returns the position just past the reply that starts at pos."""
        while len(self.buf) <= pos:
            self._fill(deadline)
        t = self.buf[pos:pos + 1]
        e = self._line_end(pos, deadline)
        head = bytes(self.buf[pos + 1:e])
        nxt = e + 2
        if t in (b"+", b"-", b":", b"_", b",", b"#", b"("):
            return nxt
        if t in (b"$", b"!", b"="):
            n = int(head)
            if n < 0:
                return nxt
            end = nxt + n + 2
            while len(self.buf) < end:
                self._fill(deadline)
            return end
        if t in (b"*", b"~", b">", b"%", b"|"):
            n = int(head)
            if n < 0:
                return nxt
            if t in (b"%", b"|"):
                n *= 2
            for _ in range(n):
                nxt = self._skip(nxt, deadline)
            if t == b"|":  # an attribute precedes the real reply
                nxt = self._skip(nxt, deadline)
            return nxt
        raise ValueError("not a RESP reply: %r" % bytes(self.buf[pos:pos + 64]))

    def read_reply(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        end = self._skip(0, deadline)
        out = bytes(self.buf[:end])
        del self.buf[:end]
        return out

    def read_until_closed(self, timeout=None):
        """Reads until the peer closes; returns the bytes read. Raises
        socket.timeout if the connection is still open at the deadline."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while True:
                self._fill(deadline)
        except Closed:
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out


def decode(data):
    """Decodes one complete RESP2/RESP3 reply. Returns (value, rest).

    Errors decode to an RespError instance; maps to dicts (keys decoded);
    null to None; sets to sorted lists of their members."""
    t = data[:1]
    e = data.index(b"\r\n")
    head = data[1:e]
    rest = data[e + 2:]
    if t == b"+":
        return head, rest
    if t == b"-" or t == b"!":
        if t == b"!":
            n = int(head)
            return RespError(rest[:n]), rest[n + 2:]
        return RespError(head), rest
    if t == b":":
        return int(head), rest
    if t == b"_":
        return None, rest
    if t == b",":
        return float(head), rest
    if t == b"#":
        return head == b"t", rest
    if t == b"(":
        return int(head), rest
    if t in (b"$", b"="):
        n = int(head)
        if n < 0:
            return None, rest
        return bytes(rest[:n]), rest[n + 2:]
    if t in (b"*", b"~", b">"):
        n = int(head)
        if n < 0:
            return None, rest
        items = []
        for _ in range(n):
            v, rest = decode(rest)
            items.append(v)
        return items, rest
    if t == b"%":
        n = int(head)
        d = {}
        for _ in range(n):
            k, rest = decode(rest)
            v, rest = decode(rest)
            d[k] = v
        return d, rest
    if t == b"|":
        n = int(head)
        for _ in range(2 * n):
            _, rest = decode(rest)
        return decode(rest)
    raise ValueError("not a RESP reply: %r" % data[:64])


def decode1(data):
    v, rest = decode(data)
    assert rest == b"", "trailing bytes after reply: %r" % rest[:64]
    return v


class RespError:
    def __init__(self, msg):
        self.msg = bytes(msg)

    def __eq__(self, other):
        return isinstance(other, RespError) and other.msg == self.msg

    def __repr__(self):
        return "RespError(%r)" % self.msg


def pipeline_raw(port, requests, window=5000, timeout=60.0):
    """Sends the encoded requests (an iterable of bytes, one command each)
    over one connection, at most `window` commands ahead of the replies, and
    returns the number of replies and how many of them were errors. Replies
    are not kept, so millions of commands cost little memory."""
    conn = RawConn(port, timeout=timeout)
    sent = 0
    got = 0
    errors = 0
    first_error = None
    batch = []
    try:
        def drain(upto):
            nonlocal got, errors, first_error
            while got < upto:
                r = conn.read_reply()
                if r[:1] == b"-":
                    errors += 1
                    if first_error is None:
                        first_error = r
                got += 1

        for req in requests:
            batch.append(req)
            if len(batch) >= 1000:
                conn.send(b"".join(batch))
                sent += len(batch)
                batch = []
                drain(sent - window)
        if batch:
            conn.send(b"".join(batch))
            sent += len(batch)
        drain(sent)
    finally:
        conn.close()
    return got, errors, first_error


def wait_for(pred, timeout, interval=0.02, what="condition"):
    """Polls pred() until it is true or timeout seconds pass. Returns the last
    value of pred(); the caller asserts on it."""
    deadline = time.monotonic() + timeout
    v = pred()
    while not v and time.monotonic() < deadline:
        time.sleep(interval)
        v = pred()
    return v


def proc_status(pid, field):
    """Returns a field of /proc/PID/status in kB (VmRSS, VmHWM ...)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def rss_bytes(pid):
    return proc_status(pid, "VmRSS") * 1024


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def info_dict(raw_reply):
    """Parses an INFO reply (raw RESP bytes, bulk or verbatim) into a dict."""
    v = decode1(raw_reply)
    if isinstance(v, RespError):
        raise AssertionError("INFO failed: %r" % v)
    text = v.decode(errors="replace")
    if raw_reply[:1] == b"=":  # verbatim string: "txt:" prefix
        text = text[4:]
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or ":" not in line:
            continue
        k, _, val = line.partition(":")
        out[k] = val
    return out


def http_request(port, raw, timeout=5.0):
    """Sends raw bytes to the HTTP port and returns (status, headers, body)
    of the response (read until the server closes or Content-Length is met).
    status is None when the server closed without a response."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = bytearray()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
            hdr_end = data.find(b"\r\n\r\n")
            if hdr_end >= 0:
                head = bytes(data[:hdr_end]).decode("latin-1")
                clen = None
                for line in head.split("\r\n")[1:]:
                    k, _, v = line.partition(":")
                    if k.strip().lower() == "content-length":
                        clen = int(v.strip())
                if clen is not None and len(data) >= hdr_end + 4 + clen:
                    break
    return parse_http_response(bytes(data))


def parse_http_response(data):
    if not data:
        return None, {}, b""
    hdr_end = data.find(b"\r\n\r\n")
    if hdr_end < 0:
        hdr_end = len(data)
    head = data[:hdr_end].decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    body = data[hdr_end + 4:]
    if "content-length" in headers:
        body = body[:int(headers["content-length"])]
    return status, headers, body


def http_get(port, path, timeout=5.0):
    raw = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path).encode()
    return http_request(port, raw, timeout)
