"""A TCP proxy for peer links, to put faults between two cohortd nodes.

Owns: one listening socket on 127.0.0.1, the connections it accepts and
the connections it opens to the target port, and the threads that pump
bytes between them. It understands just enough of the frame format (a
20-byte header whose bytes 8-11 are the payload length, then the payload
and a 32-byte MAC) to count frames and act on whole frames.
Never: talks to anything but 127.0.0.1, decrypts or forges anything, or
outlives close(): every socket is closed and every thread joined there.

Modes (set with .mode, read for every frame):
  "forward"  both ways, unchanged;
  "reflect"  after the handshake (3 frames), frames from the connecting side
             are sent back to it instead of forwarded, and the target's
             frames are dropped: a man in the middle without the cluster key
             reflecting a node's own frames;
  "drop"     both ways dropped (a black hole; the connections stay open).

reset() closes every connection open now (both nodes see their link end);
while .refusing is set, new connections are closed as soon as accepted.
"""

import socket
import struct
import threading

HEADER = 20
MAC = 32
HANDSHAKE_FRAMES = 3  # HELLO, WELCOME, PROOF


def _frames(buf):
    """Splits whole frames off buf; returns (frames, rest)."""
    out = []
    while len(buf) >= HEADER:
        (length,) = struct.unpack_from(">I", buf, 8)
        total = HEADER + length + MAC
        if len(buf) < total:
            break
        out.append(bytes(buf[:total]))
        buf = buf[total:]
    return out, buf


class PeerProxy:
    def __init__(self, target_port, listen_port):
        self.target_port = target_port
        self.mode = "forward"
        self.frames_seen = 0  # frames that passed through, both ways
        self.refusing = False  # close new connections at once
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socks = []
        self._threads = []
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", listen_port))
        self.listener.listen(8)
        self.listener.settimeout(0.1)
        self.port = listen_port
        self._spawn(self._accept_loop)

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            try:
                target = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
            except OSError:
                client.close()
                continue
            for s in (client, target):
                s.settimeout(0.1)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._socks += [client, target]
            state = {"handshake": 0}
            self._spawn(self._pump, client, target, client, state)
            self._spawn(self._pump, target, client, client, state)

    def _pump(self, src, dst, initiator, state):
        buf = b""
        from_initiator = src is initiator
        while not self._stop.is_set():
            try:
                chunk = src.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not chunk:
                break
            frames, buf = _frames(buf + chunk)
            for f in frames:
                try:
                    self._route(f, src, dst, from_initiator, state)
                except OSError:
                    return
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _route(self, frame, src, dst, from_initiator, state):
        with self._lock:
            self.frames_seen += 1
            in_handshake = state["handshake"] < HANDSHAKE_FRAMES
            if in_handshake:
                state["handshake"] += 1
            mode = self.mode
        if in_handshake or mode == "forward":
            dst.sendall(frame)
        elif mode == "reflect" and from_initiator:
            src.sendall(frame)  # the node gets its own frame back
        # "reflect" from the target, and "drop": nothing goes through

    def reset(self):
        """Closes the connections open now (the pumps end with them)."""
        with self._lock:
            socks, self._socks = list(self._socks), []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def close(self):
        self._stop.set()
        try:
            self.listener.close()
        except OSError:
            pass
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=2)
