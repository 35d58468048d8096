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
  "drop"     both ways dropped (a black hole; the connections stay open);
  "drop_from_initiator", "drop_from_target"
             one direction dropped, the other forwarded (after the drop the
             receiver sees a gap in the frame numbering and must close the
             link, never accept what follows);
  "delay"    both ways forwarded .delay seconds late, in order;
  "space"    both ways forwarded in order, each frame at least .delay seconds
             after the one before it in its direction (a slow link: frames
             sent together arrive apart).

proxy_every_link(cluster) puts one proxy on every peer link of a cluster
that is not started yet.

reset() closes every connection open now (both nodes see their link end);
while .refusing is set, new connections are closed as soon as accepted.
"""

import collections
import socket
import struct
import threading
import time

import helpers

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
        self.delay = 0.0  # seconds, for mode "delay"
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
            for src, dst in ((client, target), (target, client)):
                line = _DelayLine(dst, self._stop)
                self._spawn(line.run)
                self._spawn(self._pump, src, dst, client, state, line)

    def _pump(self, src, dst, initiator, state, line):
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
                    self._route(f, src, line, from_initiator, state)
                except OSError:
                    break
        line.close()
        line.done.wait(2.0)  # what src sent before it closed (a BYE) goes out first
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _route(self, frame, src, line, from_initiator, state):
        with self._lock:
            self.frames_seen += 1
            in_handshake = state["handshake"] < HANDSHAKE_FRAMES
            if in_handshake:
                state["handshake"] += 1
            mode, delay = self.mode, self.delay
        if in_handshake or mode == "forward":
            line.send(frame, 0.0)
        elif mode == "delay":
            line.send(frame, delay)
        elif mode == "space":
            line.send_spaced(frame, delay)
        elif mode == "reflect" and from_initiator:
            src.sendall(frame)  # the node gets its own frame back
        elif mode == "drop_from_initiator" and not from_initiator:
            line.send(frame, 0.0)
        elif mode == "drop_from_target" and from_initiator:
            line.send(frame, 0.0)
        # "reflect" from the target, "drop" and the dropped direction: nothing

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


class _DelayLine:
    """Sends frames to dst in the order given, each no sooner than its delay
    after it was given; a delay of 0 goes out as soon as those before it."""

    def __init__(self, dst, stop):
        self.dst = dst
        self.stop = stop
        self.queue = collections.deque()
        self.cond = threading.Condition()
        self.closed = False
        self.last_due = 0.0
        self.done = threading.Event()  # set once run() returned

    def send(self, frame, delay):
        with self.cond:
            if self.closed:
                raise OSError("proxy line closed")
            due = time.monotonic() + delay
            self.last_due = max(self.last_due, due)
            self.queue.append((due, frame))
            self.cond.notify()

    def send_spaced(self, frame, gap):
        """As send, due gap seconds after the frame before it at the earliest."""
        with self.cond:
            if self.closed:
                raise OSError("proxy line closed")
            due = max(time.monotonic(), self.last_due + gap)
            self.last_due = due
            self.queue.append((due, frame))
            self.cond.notify()

    def close(self):
        with self.cond:
            self.closed = True
            self.cond.notify()

    def run(self):
        try:
            self._run()
        finally:
            self.done.set()

    def _run(self):
        while not self.stop.is_set():
            with self.cond:
                while not self.queue and not self.closed and not self.stop.is_set():
                    self.cond.wait(0.1)
                if not self.queue:
                    if self.closed:
                        return
                    continue
                due, frame = self.queue[0]
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(min(wait, 0.05))
                continue
            with self.cond:
                self.queue.popleft()
            try:
                self.dst.sendall(frame)
            except OSError:
                self.close()
                return


def ordered_proxies(cl):
    """A proxy on every peer link of cl, opened by the node with the smaller
    peer address, so a proxy's mode acts on the whole link (dropping frames
    cuts every link while the store stays reachable). Returns (peer lists by
    node name, proxies); each proxy has .pair = (name of the opening node,
    name of the other). Close the proxies after the nodes are stopped."""
    nodes = sorted(cl, key=lambda n: n.peer_address)
    top = max(n.peer_address for n in nodes)
    proxies, peers = [], {n.name: [n.peer_address] for n in nodes}
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            while True:  # a proxy address compares above every node's id
                port = helpers.free_port()
                if "127.0.0.1:%d" % port > top:
                    break
            p = PeerProxy(b.cluster_port, port)
            p.pair = (a.name, b.name)
            proxies.append(p)
            peers[a.name].append("127.0.0.1:%d" % port)
            peers[b.name].append(a.peer_address)
    return peers, proxies


def proxy_every_link(cl):
    """ordered_proxies(cl), with each node's peer list set (cl not started
    yet; its [store] section kept). Returns the proxies."""
    peers, proxies = ordered_proxies(cl)
    for n in cl:
        store = n.config.get("store")
        n.config = cl.node_config(n, peers=peers[n.name])
        if store:
            n.config["store"] = store
    return proxies
