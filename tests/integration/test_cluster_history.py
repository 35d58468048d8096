"""A randomized history checker: client threads read, fill and flush random
keys through random nodes of a 3-node cluster while a nemesis kills
(kill -9, then restart) and hangs (SIGSTOP for 1-3 s, then SIGCONT) nodes at
random. Every operation is recorded with its client-side start and end
(time.monotonic()); afterwards the history is checked:

  stale read   a GET that began after a DEL of key k replied returned a value
               whose SET (or accepted SETL) had completed before that DEL
               began. A DEL's reply means every member that could serve the
               old value applied it, so this holds for reads on every node;
               reads on a hung node during [its SIGSTOP, its SIGCONT + 0.2 s]
               are excluded (listed, not counted).
  raced fill   a SETL was accepted although a DEL of its key began after its
               GETL ended and replied before the SETL began (on a node that
               was neither hung nor restarted in between).
  foreign      a GET returned a value no SET or SETL wrote on that node (fills
               are local), or one written before that node's last restart.

Runs about 60 s; COHORT_HISTORY_SECONDS sets the length, COHORT_HISTORY_SEED
the random seed (printed; default a fixed seed, so the suite replays the same
schedule of operations and faults; "random" draws a new one).
"""

import os
import random
import threading
import time

import pytest

import helpers
from cluster_harness import CommandError, cluster_factory, requires_cohort  # noqa: F401

pytestmark = [requires_cohort, pytest.mark.cohort_only, pytest.mark.slow]

SECONDS = float(os.environ.get("COHORT_HISTORY_SECONDS", "60"))
KEYS = ["h%d" % i for i in range(12)]
CLIENTS = 4
EXCLUDE_AFTER_RESUME = 0.2


class Op:
    __slots__ = ("kind", "node", "key", "value", "start", "end", "ok", "result", "client",
                 "getl_start", "getl_end", "token")

    def __init__(self, kind, node, key, client):
        self.kind = kind
        self.node = node
        self.key = key
        self.client = client
        self.value = None
        self.start = self.end = None
        self.ok = False
        self.result = None
        self.getl_start = self.getl_end = self.token = None

    def __repr__(self):
        return "%s(%s %s %r -> %r, %.3f..%.3f%s)" % (
            self.kind, self.node, self.key, self.value, self.result, self.start, self.end,
            "" if self.ok else ", failed")


class History:
    def __init__(self):
        self.ops = []
        self.faults = []  # (node, kind, begin, end)
        self.restarts = {}  # node -> [(kill -9 time, time the next incarnation was ready)]
        self.lock = threading.Lock()
        self.versions = iter(range(1, 1 << 62))

    def add(self, op):
        with self.lock:
            self.ops.append(op)

    def version(self):
        with self.lock:
            return next(self.versions)


def client_loop(cl, hist, cid, deadline, seed):
    rng = random.Random(seed)
    conns = {}

    def conn(node):
        c = conns.get(node.name)
        if c is None:
            c = node.conn(timeout=8.0)
            conns[node.name] = c
        return c

    def drop(node):
        c = conns.pop(node.name, None)
        if c:
            c.close()

    while time.monotonic() < deadline:
        node = rng.choice(cl.nodes)
        key = rng.choice(KEYS)
        r = rng.random()
        kind = "get" if r < 0.5 else "set" if r < 0.72 else "setl" if r < 0.86 else "del"
        op = Op(kind, node.name, key, cid)
        try:
            c = conn(node)
            if kind == "get":
                op.start = time.monotonic()
                op.result = c.call("GET", key)
                op.end = time.monotonic()
            elif kind == "set":
                op.value = "%s:%d" % (key, hist.version())
                op.start = time.monotonic()
                op.result = c.call("SET", key, op.value)
                op.end = time.monotonic()
            elif kind == "setl":
                op.value = "%s:%d" % (key, hist.version())
                op.getl_start = time.monotonic()
                _, op.token = c.call("GETL", key)
                op.getl_end = time.monotonic()
                time.sleep(rng.random() * 0.02)  # the slow database read
                op.start = time.monotonic()
                op.result = c.call("SETL", key, op.token, op.value)
                op.end = time.monotonic()
            else:
                op.start = time.monotonic()
                op.result = c.call("DEL", key)
                op.end = time.monotonic()
            op.ok = True
        except (OSError, helpers.Closed, CommandError, ValueError) as e:
            op.end = time.monotonic()
            if op.start is None:
                op.start = op.getl_start or op.end
            op.result = repr(e)
            drop(node)
            time.sleep(0.05)
        hist.add(op)
    for c in conns.values():
        c.close()


def nemesis_loop(cl, hist, deadline, seed, errors):
    rng = random.Random(seed)
    try:
        while time.monotonic() < deadline - 4.0:
            time.sleep(0.5 + rng.random() * 1.5)
            node = rng.choice(cl.nodes)
            if rng.random() < 0.5:
                begin = time.monotonic()
                node.kill9()
                time.sleep(0.2 + rng.random() * 0.8)
                node.start(timeout=10.0)
                end = time.monotonic()
                hist.faults.append((node.name, "kill", begin, end))
                hist.restarts.setdefault(node.name, []).append((begin, end))
            else:
                pause = 1.0 + rng.random() * 2.0
                begin = time.monotonic()
                node.sigstop()
                time.sleep(pause)
                node.sigcont()
                hist.faults.append((node.name, "stop", begin, time.monotonic()))
    except Exception as e:  # reported by the test
        errors.append(repr(e))
        for n in cl.nodes:
            if n.stopped:
                n.sigcont()


def check(hist):
    ops = sorted(hist.ops, key=lambda o: o.start)
    writes = {}
    dels = {}
    for o in ops:
        if o.kind == "set" and o.ok:
            writes[o.value] = o
        elif o.kind == "setl" and o.ok and o.result == b"OK":
            writes[o.value] = o
        elif o.kind == "del" and o.ok:
            dels.setdefault(o.key, []).append(o)

    def stopped_during(node, t0, t1, slack):
        return any(n == node and k == "stop" and b <= t1 and t0 <= e + slack
                   for n, k, b, e in hist.faults)

    def faulted_during(node, t0, t1, slack):
        return any(n == node and b <= t1 and t0 <= e + slack for n, k, b, e in hist.faults)

    violations = []
    excluded = []
    checks = 0
    for g in ops:
        if g.kind != "get" or not g.ok or g.result is None:
            continue
        value = g.result.decode()
        w = writes.get(value)
        if w is None or w.node != g.node or w.key != g.key:
            violations.append(("foreign", g, w))
            continue
        restarted = [k for k, r in hist.restarts.get(g.node, []) if w.end < k and r <= g.start]
        if restarted:
            violations.append(("survived the kill -9 at %.3f" % restarted[0], g, w))
            continue
        before = [d for d in dels.get(g.key, []) if d.end < g.start]
        checks += 1 if before else 0
        for d in before:
            if w.end < d.start:
                if stopped_during(g.node, g.start, g.start, EXCLUDE_AFTER_RESUME):
                    excluded.append(("stale read on a hung node", g, w, d))
                else:
                    violations.append(("stale read", g, w, d))
                break
    for s in ops:
        if s.kind != "setl" or not s.ok or s.result != b"OK":
            continue
        if faulted_during(s.node, s.getl_start, s.end, EXCLUDE_AFTER_RESUME):
            continue
        checks += 1
        for d in dels.get(s.key, []):
            if d.start > s.getl_end and d.end < s.start:
                violations.append(("raced fill accepted", s, d))
                break
    return violations, excluded, checks


def _op(kind, node, key, start, end, value=None, result=None, getl=None):
    o = Op(kind, node, key, 0)
    o.start, o.end, o.value, o.ok = start, end, value, True
    o.result = result if result is not None or kind == "get" else b"OK"
    if getl:
        o.getl_start, o.getl_end = getl
    return o


def test_checker_finds_violations():
    """The checker itself: each kind of violation in a made-up history is
    found, and the legal cases next to them are not flagged."""
    h = History()
    h.ops = [
        _op("set", "n1", "a", 0.0, 0.1, value="a:1"),
        _op("del", "n2", "a", 0.2, 0.3, result=1),
        _op("get", "n1", "a", 0.25, 0.26, result=b"a:1"),  # DEL not replied yet: fine
        _op("get", "n1", "a", 0.4, 0.41, result=b"a:1"),   # stale read
        _op("set", "n3", "b", 0.0, 0.25, value="b:2"),      # SET raced the DEL: legal
        _op("del", "n1", "b", 0.2, 0.3, result=1),
        _op("get", "n3", "b", 0.5, 0.51, result=b"b:2"),
        _op("get", "n2", "b", 0.5, 0.51, result=b"b:2"),   # foreign: written on n3
        _op("setl", "n2", "c", 0.6, 0.61, value="c:3", getl=(0.0, 0.1)),
        _op("del", "n3", "c", 0.2, 0.3, result=0),          # between GETL and SETL
        _op("set", "n2", "d", 0.0, 0.1, value="d:4"),
        _op("get", "n2", "d", 3.0, 3.1, result=b"d:4"),    # after a kill -9 of n2
        _op("set", "n3", "e", 0.0, 0.1, value="e:5"),
        _op("del", "n1", "e", 0.2, 0.3, result=1),
        _op("get", "n3", "e", 1.0, 1.1, result=b"e:5"),    # stale, but n3 was hung
    ]
    h.faults = [("n2", "kill", 1.0, 2.0), ("n3", "stop", 0.5, 0.9)]
    h.restarts = {"n2": [(1.0, 2.0)]}
    violations, excluded, checks = check(h)
    kinds = sorted(v[0].split(" at ")[0] for v in violations)
    assert kinds == ["foreign", "raced fill accepted", "stale read",
                     "survived the kill -9"], violations
    assert [e[0] for e in excluded] == ["stale read on a hung node"]
    assert checks >= 3


def test_randomized_history(cluster_factory):
    seed_text = os.environ.get("COHORT_HISTORY_SEED", "20261122")
    seed = random.randrange(1 << 31) if seed_text == "random" else int(seed_text)
    print("history: seed %d, %.0f s, %d clients, %d keys" % (seed, SECONDS, CLIENTS, len(KEYS)))
    cl = cluster_factory(3)
    hist = History()
    t0 = time.monotonic()
    deadline = t0 + SECONDS
    errors = []
    threads = [threading.Thread(target=client_loop, args=(cl, hist, i, deadline, seed + i))
               for i in range(CLIENTS)]
    threads.append(threading.Thread(target=nemesis_loop,
                                    args=(cl, hist, deadline, seed + 1000, errors)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SECONDS + 60)
    hung = [t for t in threads if t.is_alive()]
    for n in cl.nodes:
        if n.stopped:
            n.sigcont()
    assert not hung, "threads still running after the deadline"
    assert not errors, "nemesis failed: %s" % errors

    # Afterwards the cluster comes back together and is coherent.
    cl.wait_converged(timeout=10.0)
    cl.coherence_round(30)

    violations, excluded, checks = check(hist)
    ops = hist.ops
    by_kind = {}
    for o in ops:
        k = by_kind.setdefault(o.kind, [0, 0])
        k[0 if o.ok else 1] += 1
    hits = sum(1 for o in ops if o.kind == "get" and o.ok and o.result is not None)
    refused = sum(1 for o in ops if o.kind == "setl" and o.ok and o.result is None)
    slow_dels = sorted((o.end - o.start for o in ops if o.kind == "del" and o.ok), reverse=True)
    print("history: %d operations (ok/failed by kind: %r), %d reads served a value, %d SETL "
          "refused; %d faults (%d kills, %d stops); %d checks, %d violations, %d excluded" % (
              len(ops), by_kind, hits, refused, len(hist.faults),
              sum(1 for f in hist.faults if f[1] == "kill"),
              sum(1 for f in hist.faults if f[1] == "stop"), checks, len(violations),
              len(excluded)))
    if slow_dels:
        print("history: slowest DEL replies: %s s" % ", ".join("%.3f" % x for x in slow_dels[:5]))
    for e in excluded[:10]:
        print("excluded:", e)
    assert sum(v[0] for v in by_kind.values()) > 500, "too few operations: %r" % by_kind
    assert hits > 50, "too few reads served a value to check anything"

    if violations:
        lines = ["%d violations (seed %d); faults (node, kind, begin, end): %r" % (
            len(violations), seed, [(n, k, round(b - t0, 3), round(e - t0, 3))
                                    for n, k, b, e in hist.faults])]
        for v in violations[:20]:
            lines.append("%s:" % v[0])
            for o in v[1:]:
                lines.append("    %r (t=%.3f..%.3f)" % (o, o.start - t0, o.end - t0))
            key = v[1].key
            near = [o for o in sorted(ops, key=lambda o: o.start) if o.key == key and
                    v[1].start - 4 < o.start < v[1].end + 1]
            lines.append("  history of %s around it:" % key)
            for o in near[-40:]:
                lines.append("    t=%.3f..%.3f %r" % (o.start - t0, o.end - t0, o))
        pytest.fail("\n".join(lines))
