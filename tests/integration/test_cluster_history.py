"""A randomized history checker: client threads read, fill and flush random
keys through random nodes of a 3-node cluster, alone and in pipelines, while
a nemesis restarts nodes (kill -9 or SIGTERM, then start), hangs them
(SIGSTOP for 1-3 s, then SIGCONT) and puts faults on peer links through a
proxy on every link (frames delayed, one direction dropped, connections
reset, new connections refused). The nodes share one store (a SQLite file),
as a real cluster shares its database: it decides who is dead. Every
operation is recorded with its client-side start and end (time.monotonic();
an operation in a pipeline gets the pipeline's); afterwards the history is
checked:

  stale read   a GET that began after a flush of key k replied returned a
               value whose write had completed before that flush began. The
               flushes are DEL, UNLINK, GETDEL, PEXPIRE k -1, FLUSHPREFIX of
               a prefix of k, FLUSHALL, and SEED k (which writes too). A
               flush's reply means every member that could serve the old
               value applied it, so this holds for reads on every node
               whatever the links did; reads on a hung node during [its
               SIGSTOP, its SIGCONT + 0.2 s] are excluded (listed, not
               counted).
  raced fill   a SETL was accepted although a flush of its key began after
               its GETL ended and replied before the SETL began (on a node
               that was neither hung nor restarted in between).
  foreign      a GET returned a value nobody wrote, or a fill (SET, SETL:
               local to one node) that another node wrote, or one written
               before that node's last restart. A write whose reply never
               came (its node died, its connection broke) may have taken
               effect: a value it wrote is not foreign, and not checked.

Runs about 30 s; COHORT_HISTORY_SECONDS sets the length, COHORT_HISTORY_SEED
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
from peer_proxy import proxy_every_link

pytestmark = [requires_cohort, pytest.mark.cohort_only, pytest.mark.slow]

SECONDS = float(os.environ.get("COHORT_HISTORY_SECONDS", "30"))
KEYS = ["h%d" % i for i in range(12)]
CLIENTS = 4
EXCLUDE_AFTER_RESUME = 0.2
# Operations that remove a key's value everywhere (SEED also writes one).
FLUSHES = ("del", "unlink", "getdel", "expire", "flushprefix", "flushall", "seed")
FILLS = ("set", "setl")


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


def _command(op, rng, hist):
    """The command for one operation (not setl); sets op.value for writes."""
    k = op.kind
    if k in ("set", "seed"):
        op.value = "%s:%d" % (op.key, hist.version())
        return ("SET" if k == "set" else "SEED", op.key, op.value)
    if k == "expire":
        return ("PEXPIRE", op.key, "-1")
    if k == "flushprefix":
        op.key = op.key[:2]  # "h1" covers h1, h10 and h11
        return ("FLUSHPREFIX", op.key)
    if k == "flushall":
        return ("FLUSHALL",)
    return ({"get": "GET", "del": "DEL", "unlink": "UNLINK", "getdel": "GETDEL"}[k], op.key)


def _pick_kind(rng, pipelined):
    r = rng.random()
    for kind, p in (("get", 0.45), ("set", 0.18), ("seed", 0.05), ("del", 0.08),
                    ("unlink", 0.04), ("getdel", 0.04), ("expire", 0.04),
                    ("flushprefix", 0.03), ("flushall", 0.004)):
        if r < p:
            return kind
        r -= p
    return "get" if pipelined else "setl"


def _run_setl(c, op, rng, hist):
    op.value = "%s:%d" % (op.key, hist.version())
    op.getl_start = time.monotonic()
    _, op.token = c.call("GETL", op.key)
    op.getl_end = time.monotonic()
    time.sleep(rng.random() * 0.02)  # the slow database read
    op.start = time.monotonic()
    op.result = c.call("SETL", op.key, op.token, op.value)
    op.end = time.monotonic()
    op.ok = True


def _run_pipeline(c, ops, rng, hist):
    cmds = [_command(o, rng, hist) for o in ops]
    start = time.monotonic()
    replies = c.pipeline(cmds)
    end = time.monotonic()
    for o, r in zip(ops, replies):
        o.start, o.end = start, end
        o.ok = not isinstance(r, helpers.RespError)
        o.result = r if o.ok else repr(r)


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
        pipelined = rng.random() < 0.15
        count = rng.randint(2, 5) if pipelined else 1
        ops = [Op(_pick_kind(rng, pipelined), node.name, rng.choice(KEYS), cid)
               for _ in range(count)]
        try:
            c = conn(node)
            if ops[0].kind == "setl":
                _run_setl(c, ops[0], rng, hist)
            else:
                _run_pipeline(c, ops, rng, hist)
        except (OSError, helpers.Closed, CommandError, ValueError) as e:
            now = time.monotonic()
            for op in ops:
                op.ok = False
                op.end = now
                if op.start is None:
                    op.start = op.getl_start or now
                op.result = repr(e)
            drop(node)
            time.sleep(0.05)
        for op in ops:
            hist.add(op)
    for c in conns.values():
        c.close()


def _restart(node, hist, rng, how):
    begin = time.monotonic()
    if how == "kill":
        node.kill9()
    else:
        node.terminate()
    time.sleep(0.2 + rng.random() * 0.8)
    node.start(timeout=10.0)
    end = time.monotonic()
    hist.faults.append((node.name, how, begin, end))
    hist.restarts.setdefault(node.name, []).append((begin, end))


def _link_fault(proxy, hist, rng):
    kind = rng.choice(["delay", "drop_from_initiator", "drop_from_target", "reset", "refuse"])
    begin = time.monotonic()
    if kind == "reset":
        proxy.reset()
    elif kind == "refuse":
        proxy.refusing = True
        proxy.reset()
        time.sleep(0.5 + rng.random())
        proxy.refusing = False
    else:
        proxy.delay = 0.02 + rng.random() * 0.2
        proxy.mode = kind
        time.sleep(1.0 + rng.random() * 2.0)
        proxy.mode = "forward"
    hist.faults.append(("%s-%s" % proxy.pair, kind, begin, time.monotonic()))


def nemesis_loop(cl, proxies, hist, deadline, seed, errors):
    rng = random.Random(seed)
    try:
        while time.monotonic() < deadline - 4.0:
            time.sleep(0.5 + rng.random() * 1.5)
            node = rng.choice(cl.nodes)
            r = rng.random()
            if r < 0.25:
                _restart(node, hist, rng, "kill")
            elif r < 0.4:
                _restart(node, hist, rng, "term")
            elif r < 0.65:
                pause = 1.0 + rng.random() * 2.0
                begin = time.monotonic()
                node.sigstop()
                time.sleep(pause)
                node.sigcont()
                hist.faults.append((node.name, "stop", begin, time.monotonic()))
            else:
                _link_fault(rng.choice(proxies), hist, rng)
    except Exception as e:  # reported by the test
        errors.append(repr(e))
    finally:
        for n in cl.nodes:
            if n.stopped:
                n.sigcont()
        for p in proxies:
            p.mode, p.refusing = "forward", False


def _covers(flush, key):
    if flush.kind == "flushall":
        return True
    if flush.kind == "flushprefix":
        return key.startswith(flush.key)
    return flush.key == key


def check(hist):
    ops = sorted(hist.ops, key=lambda o: o.start)
    writes = {}
    flushes = []
    for o in ops:
        if o.kind in ("set", "seed") and o.value is not None and not o.ok:
            writes[o.value] = o  # failed on the client's side: it may still have been applied
        if not o.ok:
            continue
        if o.kind in ("set", "seed") or (o.kind == "setl" and o.result == b"OK"):
            writes[o.value] = o
        if o.kind in FLUSHES:
            flushes.append(o)
    keys = set(o.key for o in ops if o.kind in ("get", "setl"))
    by_key = {k: [f for f in flushes if _covers(f, k)] for k in keys}

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
        if w is None or w.key != g.key or (w.kind in FILLS and w.node != g.node):
            violations.append(("foreign", g, w))
            continue
        if not w.ok:
            continue  # when (and whether) it took effect is unknown: nothing to check against
        if w.kind in FILLS:
            restarted = [k for k, r in hist.restarts.get(g.node, []) if w.end < k and r <= g.start]
            if restarted:
                violations.append(("survived the restart at %.3f" % restarted[0], g, w))
                continue
        before = [d for d in by_key[g.key] if d.end < g.start and d is not w]
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
        for d in by_key[s.key]:
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
        _op("seed", "n1", "h1", 0.0, 0.1, value="h1:6"),
        _op("get", "n2", "h1", 0.2, 0.21, result=b"h1:6"),  # a SEED is on every node
        _op("flushprefix", "n3", "h1", 0.3, 0.4, result=1),
        _op("get", "n1", "h10", 0.5, 0.51, result=None),
        _op("get", "n1", "h1", 0.5, 0.51, result=b"h1:6"),  # stale: under the prefix
        _op("set", "n2", "h2", 0.0, 0.1, value="h2:7"),
        _op("seed", "n3", "h2", 0.2, 0.3, value="h2:8"),
        _op("get", "n2", "h2", 0.5, 0.51, result=b"h2:7"),  # stale: the SEED replaced it
        _op("get", "n1", "h2", 0.5, 0.51, result=b"h2:8"),
        _op("set", "n1", "h3", 0.0, 0.1, value="h3:9"),
        _op("flushall", "n2", "h5", 0.2, 0.3, result=b"OK"),
        _op("get", "n1", "h3", 0.5, 0.51, result=b"h3:9"),  # stale: FLUSHALL
        _op("set", "n3", "h4", 0.0, 0.1, value="h4:10"),    # no reply: may have been applied
        _op("get", "n3", "h4", 0.5, 0.51, result=b"h4:10"),
    ]
    h.ops[-2].ok = False
    h.faults = [("n2", "kill", 1.0, 2.0), ("n3", "stop", 0.5, 0.9)]
    h.restarts = {"n2": [(1.0, 2.0)]}
    violations, excluded, checks = check(h)
    kinds = sorted(v[0].split(" at ")[0] for v in violations)
    assert kinds == ["foreign", "raced fill accepted", "stale read", "stale read",
                     "stale read", "stale read", "survived the restart"], violations
    assert [e[0] for e in excluded] == ["stale read on a hung node"]
    assert checks >= 3


def test_randomized_history(cluster_factory):
    seed_text = os.environ.get("COHORT_HISTORY_SEED", "20261201")
    seed = random.randrange(1 << 31) if seed_text == "random" else int(seed_text)
    print("history: seed %d, %.0f s, %d clients, %d keys" % (seed, SECONDS, CLIENTS, len(KEYS)))
    cl = cluster_factory(3, start=False)
    store = "sqlite://%s" % os.path.join(cl.workdir, "shared.db")
    for n in cl:
        n.config["store"] = {"url": store}
    proxies = proxy_every_link(cl)
    try:
        cl.start(timeout=15)
        hist = _run(cl, proxies, seed)
        # Afterwards the cluster comes back together and is coherent.
        cl.wait_converged(timeout=20.0)
        cl.coherence_round(30)
    finally:
        cl.stop_all()
        for p in proxies:
            p.close()
    _report(hist, seed)


def _run(cl, proxies, seed):
    hist = History()
    hist.t0 = time.monotonic()
    deadline = hist.t0 + SECONDS
    errors = []
    threads = [threading.Thread(target=client_loop, args=(cl, hist, i, deadline, seed + i))
               for i in range(CLIENTS)]
    threads.append(threading.Thread(target=nemesis_loop,
                                    args=(cl, proxies, hist, deadline, seed + 1000, errors)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SECONDS + 60)
    hung = [t for t in threads if t.is_alive()]
    assert not hung, "threads still running after the deadline"
    assert not errors, "nemesis failed: %s" % errors
    return hist


def _report(hist, seed):
    t0 = hist.t0
    violations, excluded, checks = check(hist)
    ops = hist.ops
    by_kind = {}
    for o in ops:
        k = by_kind.setdefault(o.kind, [0, 0])
        k[0 if o.ok else 1] += 1
    hits = sum(1 for o in ops if o.kind == "get" and o.ok and o.result is not None)
    refused = sum(1 for o in ops if o.kind == "setl" and o.ok and o.result is None)
    faults = {}
    for f in hist.faults:
        faults[f[1]] = faults.get(f[1], 0) + 1
    slow_dels = sorted((o.end - o.start for o in ops if o.kind == "del" and o.ok), reverse=True)
    print("history: %d operations (ok/failed by kind: %r), %d reads served a value, %d SETL "
          "refused; faults %r; %d checks, %d violations, %d excluded" % (
              len(ops), by_kind, hits, refused, faults, checks, len(violations),
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
                if o is None:
                    lines.append("    (no write of that value)")
                else:
                    lines.append("    %r (t=%.3f..%.3f)" % (o, o.start - t0, o.end - t0))
            key = v[1].key
            near = [o for o in sorted(ops, key=lambda o: o.start) if o.key == key and
                    v[1].start - 4 < o.start < v[1].end + 1]
            lines.append("  history of %s around it:" % key)
            for o in near[-40:]:
                lines.append("    t=%.3f..%.3f %r" % (o.start - t0, o.end - t0, o))
        pytest.fail("\n".join(lines))
