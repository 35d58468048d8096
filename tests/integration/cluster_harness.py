"""Fixtures and helpers for end-to-end tests of a cohort cluster: several
cohortd processes joined by the peer link.

Owns: the cluster key file, each node's INI (the same peer list on every
node, this node included), starting, hanging (SIGSTOP), killing, restarting
and stopping nodes, connections to a node over TCP or over its unix socket
(a node inside a network namespace is reached through its unix socket: a
socket file does not belong to a network namespace), reading COHORT.MEMBERS,
INFO and /metrics, and bounded waits on member states.
Never: modifies conftest.py or helpers.py (it imports them), talks to
anything but 127.0.0.1 or the addresses of namespaces a test made itself,
or leaves a process behind: every node is stopped at teardown, also when a
test fails, with SIGTERM (after SIGCONT if it was hung), and must exit 0
with no sanitizer report in its stderr.

Every wait here is bounded; timings scale with conftest.TIME_SCALE (about
3x for a sanitizer build).
"""

import os
import random
import signal
import socket
import subprocess
import time

import pytest

import helpers
from conftest import COHORTD, FLAVOR, SANITIZER_PATTERNS, _LIVE, scaled, with_data_dir

# The daemon's defaults (src/config.c), which the tests reason with.
LEASE_S = 2.0
HEARTBEAT_S = 0.1
SUSPECT_S = 0.5
PROBE_S = 0.4
FLUSH_TIMEOUT_S = 1.0

requires_cohort = pytest.mark.skipif(
    FLAVOR != "cohort", reason="cluster tests need cohortd ($COHORTD is redis-server)")


class CommandError(Exception):
    """The node replied with an error."""


def write_key_file(path, nbytes=48):
    """Writes a fresh random cluster key (hex text) with mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(os.urandom(nbytes).hex() + "\n")
    os.chmod(path, 0o600)
    return path


def _ini(config):
    out = []
    for section, kv in config.items():
        out.append("[%s]" % section)
        for k, v in kv.items():
            for one in (v if isinstance(v, (list, tuple)) else [v]):
                out.append("%s = %s" % (k, one))
        out.append("")
    return "\n".join(out)


class UnixRawConn(helpers.RawConn):
    """helpers.RawConn over a unix socket."""

    def __init__(self, path, timeout=5.0):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(path)
        except OSError:
            s.close()
            raise
        self.sock = s
        self.timeout = timeout
        self.buf = bytearray()
        self.closed = False


class Conn:
    """A client connection that decodes replies. call() raises CommandError
    on an error reply, OSError / helpers.Closed when the node is gone."""

    def __init__(self, raw):
        self.raw = raw

    def call(self, *args, timeout=None):
        self.raw.send(helpers.encode(*args))
        v = helpers.decode1(self.raw.read_reply(timeout))
        if isinstance(v, helpers.RespError):
            raise CommandError(v.msg.decode(errors="replace"))
        return v

    def pipeline(self, commands, chunk=1000):
        """Sends the commands (tuples of arguments) in chunks, keeping at most
        two chunks in flight; returns every decoded reply, in order."""
        out = []
        pending = 0
        cmds = list(commands)
        for i in range(0, len(cmds), chunk):
            part = cmds[i:i + chunk]
            self.raw.send(b"".join(helpers.encode(*c) for c in part))
            pending += len(part)
            while pending > chunk:
                out.append(helpers.decode1(self.raw.read_reply()))
                pending -= 1
        while pending:
            out.append(helpers.decode1(self.raw.read_reply()))
            pending -= 1
        return out

    def close(self):
        self.raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def decode_members(v):
    """COHORT.MEMBERS (RESP2: flat arrays, RESP3: maps) -> {name: {field: value}};
    byte strings become str."""
    out = {}
    for item in v or []:
        if isinstance(item, dict):
            d = dict(item)
        else:
            d = {item[i]: item[i + 1] for i in range(0, len(item), 2)}
        d = {(k.decode() if isinstance(k, bytes) else k):
             (x.decode() if isinstance(x, bytes) else x) for k, x in d.items()}
        out[d.get("name") or d.get("address")] = d
    return out


class Node:
    """One cohortd of a cluster. Ports stay the same across restarts, so a
    restarted node comes back with the same configuration."""

    def __init__(self, workdir, name, cluster_addr, cluster_port, client_port, http_port,
                 netns=None, unixsocket=None):
        self.workdir = workdir
        self.name = name
        self.cluster_addr = cluster_addr  # the address peers use for it
        self.cluster_port = cluster_port
        self.port = client_port
        self.http_port = http_port
        self.netns = netns
        self.unixsocket = unixsocket
        self.config = {}
        self.env = {}  # more environment for cohortd (COHORT_CLOCK_OFFSET_MS, say)
        self.proc = None
        self.stopped = False  # SIGSTOPped
        self.expect_clean_exit = True
        self.exits = []  # (how, returncode) of every incarnation that ended
        self.conf_path = os.path.join(workdir, "%s.ini" % name)
        self.stderr_path = os.path.join(workdir, "%s.stderr" % name)
        self.stdout_path = os.path.join(workdir, "%s.stdout" % name)

    @property
    def peer_address(self):
        return "%s:%d" % (self.cluster_addr, self.cluster_port)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    # --- life ---------------------------------------------------------------

    def start(self, wait_ready=True, timeout=5.0):
        with open(self.conf_path, "w") as f:
            f.write(_ini(with_data_dir(self.config, self.workdir, self.name)))
        argv = [COHORTD, "--config", self.conf_path]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns] + argv
        env = dict(os.environ)
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        env.update(self.env)
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            err.write(("\n=== start %s at %.3f ===\n" % (self.name, time.monotonic())).encode())
            err.flush()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         cwd=self.workdir, env=env, start_new_session=True)
        _LIVE.add(self.proc)
        self.stopped = False
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=5.0):
        deadline = time.monotonic() + scaled(timeout)
        why = "no answer to PING"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s during start-up\n%s" % (
                    self.name, self.proc.returncode, self.log_tail()))
            try:
                with self.conn(timeout=1.0) as c:
                    if c.call("PING") == b"PONG":
                        return self
            except (OSError, helpers.Closed, CommandError) as e:
                why = str(e)
            time.sleep(0.02)
        raise AssertionError("%s not ready: %s\n%s" % (self.name, why, self.log_tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _ended(self, how):
        self.exits.append((how, self.proc.returncode))
        _LIVE.discard(self.proc)

    def kill9(self):
        """kill -9; the node counts as expected to have died."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.stopped = False
        self._ended("SIGKILL")

    def sigstop(self):
        self.proc.send_signal(signal.SIGSTOP)
        self.stopped = True

    def sigcont(self):
        self.proc.send_signal(signal.SIGCONT)
        self.stopped = False

    def terminate(self, timeout=10.0):
        """SIGTERM and a bounded wait. Returns the exit code (a string when it
        hung and was killed)."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        if self.stopped:
            self.sigcont()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=scaled(timeout))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.exits.append(("SIGTERM", "hung after SIGTERM; killed"))
            _LIVE.discard(self.proc)
            return "hung"
        self._ended("SIGTERM")
        return self.proc.returncode

    def problems(self):
        """What went wrong with the incarnations that ended by SIGTERM, and
        sanitizer reports of any incarnation."""
        out = []
        for how, rc in self.exits:
            if how == "SIGTERM" and rc != 0:
                out.append("%s: exit %s after SIGTERM\n%s" % (self.name, rc, self.log_tail()))
        try:
            with open(self.stderr_path, "rb") as f:
                err = f.read()
        except OSError:
            err = b""
        for pat in SANITIZER_PATTERNS:
            if pat in err:
                i = err.index(pat)
                out.append("%s: sanitizer report:\n%s" % (
                    self.name, err[max(0, i - 200):i + 3000].decode("utf-8", "replace")))
                break
        return out

    def log_tail(self, n=40):
        try:
            with open(self.stderr_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "--- %s log (last %d lines) ---\n%s" % (self.name, n, "\n".join(lines[-n:]))

    def log_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # --- talking --------------------------------------------------------------

    def conn(self, timeout=10.0):
        if self.unixsocket:
            raw = UnixRawConn(self.unixsocket, timeout=scaled(timeout))
        else:
            raw = helpers.RawConn(self.port, timeout=scaled(timeout))
        return Conn(raw)

    def call(self, *args, timeout=10.0):
        with self.conn(timeout) as c:
            return c.call(*args)

    def info(self, section="cohort"):
        with self.conn() as c:
            c.raw.send(helpers.encode("INFO", section))
            return helpers.info_dict(c.raw.read_reply())

    def counter(self, field):
        return int(self.info("cohort")[field])

    def members(self):
        return decode_members(self.call("COHORT.MEMBERS"))

    def state_of(self, member):
        m = self.members().get(member)
        return m["state"] if m else None

    def serving(self):
        return self.info("cohort").get("cohort_serving_cache") == "1"

    def metrics(self):
        """/metrics as {name_with_labels: float} (TCP nodes only)."""
        status, _, body = helpers.http_get(self.http_port, "/metrics")
        assert status == 200, "/metrics answered %s" % status
        out = {}
        for line in body.decode().splitlines():
            if not line or line.startswith("#"):
                continue
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
        return out


class Cluster:
    """A set of nodes sharing one key and one peer list."""

    def __init__(self, workdir, count, options=None, names=None, netns=None, addrs=None,
                 key_file=None, writes="local", sections=None):
        """writes is [cache] writes: "local" by default here, because the
        tests of flush coherence reason about SET as a fill of one node; the
        tests of replicated and invalidate-mode writes say so. sections adds
        more, e.g. {"keyspace sess": {"prefix": "sess:", "writes": "replicate"}}."""
        self.workdir = str(workdir)
        self.writes = writes
        self.sections = dict(sections or {})
        os.makedirs(self.workdir, exist_ok=True)
        self.key_file = key_file or write_key_file(os.path.join(self.workdir, "cluster.key"))
        self.options = dict(options or {})
        names = names or ["n%d" % (i + 1) for i in range(count)]
        self.nodes = []
        self.extras = []  # nodes outside the peer list (impostors, other keys)
        for i, name in enumerate(names):
            if netns:
                # Inside a namespace the ports are the namespace's own.
                node = Node(self.workdir, name, addrs[i], 7381, 7379, 7380, netns=netns[i],
                            unixsocket=os.path.join(self.workdir, "%s.sock" % name))
            else:
                node = Node(self.workdir, name, "127.0.0.1", helpers.free_port(),
                            helpers.free_port(), helpers.free_port())
            self.nodes.append(node)
        for node in self.nodes:
            node.config = self.node_config(node)

    def node_config(self, node, peers=None, key_file=None, extra=None):
        cl = {"bind": node.cluster_addr, "port": node.cluster_port,
              "key_file": key_file or self.key_file,
              "peer": peers or [n.peer_address for n in self.nodes]}
        cl.update(self.options)
        cl.update(extra or {})
        cfg = {"node": {"name": node.name},
               "client": {"bind": "127.0.0.1", "port": node.port},
               "http": {"bind": "127.0.0.1", "port": node.http_port},
               "cluster": cl,
               "cache": {"writes": self.writes}}
        cfg.update(self.sections)
        if node.unixsocket:
            cfg["client"]["unixsocket"] = node.unixsocket
        return cfg

    def __iter__(self):
        return iter(self.nodes)

    def __getitem__(self, i):
        return self.nodes[i]

    def by_name(self, name):
        return next(n for n in self.nodes if n.name == name)

    def others(self, node):
        return [n for n in self.nodes if n is not node]

    def running(self):
        return [n for n in self.nodes if n.alive() and not n.stopped]

    def start(self, timeout=10.0):
        for n in self.nodes:
            n.start(wait_ready=False)
        for n in self.nodes:
            n.wait_ready()
        self.wait_converged(timeout)
        return self

    def wait_converged(self, timeout=10.0, nodes=None):
        """Waits until every running node sees every other running node alive
        and serves cached values. Raises with the member tables otherwise."""
        nodes = nodes or self.running()
        deadline = time.monotonic() + scaled(timeout)
        last = {}
        while True:
            ok = True
            for n in nodes:
                try:
                    ms = n.members()
                    serving = n.serving()
                except (OSError, helpers.Closed, CommandError) as e:
                    last[n.name] = str(e)
                    ok = False
                    continue
                last[n.name] = ({k: v["state"] for k, v in ms.items()}, "serving" if serving
                                else "not serving")
                for o in nodes:
                    if o is not n and (o.name not in ms or ms[o.name]["state"] != "alive"):
                        ok = False
                ok = ok and serving
            if ok:
                return
            if time.monotonic() > deadline:
                raise AssertionError("cluster did not converge within %.1fs: %r\n%s" % (
                    scaled(timeout), last, "\n".join(n.log_tail(15) for n in nodes)))
            time.sleep(0.05)

    def wait_state(self, observers, member, states, timeout, interval=0.005):
        """Polls COHORT.MEMBERS on each observer until it shows member in one
        of states. Returns {observer name: seconds waited}; raises with the
        last tables when one does not get there in time."""
        if isinstance(states, str):
            states = (states,)
        t0 = time.monotonic()
        deadline = t0 + timeout
        conns = {o.name: o.conn(timeout=max(1.0, timeout)) for o in observers}
        got = {}
        last = {}
        try:
            while len(got) < len(observers):
                for o in observers:
                    if o.name in got:
                        continue
                    ms = decode_members(conns[o.name].call("COHORT.MEMBERS"))
                    st = ms.get(member, {}).get("state")
                    last[o.name] = st
                    if st in states:
                        got[o.name] = time.monotonic() - t0
                if len(got) < len(observers):
                    if time.monotonic() > deadline:
                        raise AssertionError(
                            "%s not %s on %s within %.2fs; last states seen: %r" % (
                                member, "/".join(states),
                                [o.name for o in observers if o.name not in got],
                                timeout, last))
                    time.sleep(interval)
        finally:
            for c in conns.values():
                c.close()
        return got

    def stop_all(self):
        problems = []
        for n in self.nodes + self.extras:
            if n.proc is None:
                continue
            if n.alive():
                n.terminate()
            problems += n.problems()
        return problems

    # --- common checks ---------------------------------------------------------

    def fill(self, pairs, nodes=None):
        """SETs every (key, value) on each node (pipelined)."""
        for n in nodes or self.running():
            with n.conn() as c:
                replies = c.pipeline([("SET", k, v) for k, v in pairs])
            bad = [r for r in replies if r != b"OK"]
            assert not bad, "SET failed on %s: %r" % (n.name, bad[:3])

    def get_all(self, key, nodes=None):
        return {n.name: n.call("GET", key) for n in (nodes or self.running())}

    def coherence_round(self, nkeys=50, nodes=None, tag=None):
        """A fill/flush round: fill keys on every node, check every node serves
        them, DEL each through a random node and check that no node returns
        it right after the reply."""
        nodes = nodes or self.running()
        tag = tag or "round%d" % random.randrange(1 << 30)
        pairs = [("%s:%d" % (tag, i), "v:%s:%d" % (tag, i)) for i in range(nkeys)]
        self.fill(pairs, nodes)
        conns = {n.name: n.conn() for n in nodes}
        try:
            for k, v in pairs:
                for n in nodes:
                    got = conns[n.name].call("GET", k)
                    assert got == v.encode(), "%s: GET %s after the fill = %r (serving: %s)" % (
                        n.name, k, got, n.serving())
            for k, v in pairs:
                origin = random.choice(nodes)
                t0 = time.monotonic()
                assert conns[origin.name].call("DEL", k) == 1
                took = time.monotonic() - t0
                for n in nodes:
                    got = conns[n.name].call("GET", k)
                    assert got is None, (
                        "%s returned %r for %s right after DEL on %s replied (DEL took %.3fs)" % (
                            n.name, got, k, origin.name, took))
        finally:
            for c in conns.values():
                c.close()


class ClusterFactory:
    """Makes clusters for one test and stops every node at teardown."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.clusters = []

    def __call__(self, count=3, start=True, **kw):
        if not os.path.exists(COHORTD):
            pytest.fail("cohortd binary %s does not exist: build it or set $COHORTD" % COHORTD)
        c = Cluster(os.path.join(str(self.tmp_path), "cluster%d" % len(self.clusters)), count, **kw)
        self.clusters.append(c)
        if start:
            c.start()
        return c

    def cleanup(self):
        problems = []
        for c in self.clusters:
            problems += c.stop_all()
        return problems


@pytest.fixture
def cluster_factory(tmp_path):
    """Factory: cluster_factory(count=3, options={...}) -> a started Cluster."""
    f = ClusterFactory(tmp_path)
    try:
        yield f
    finally:
        problems = f.cleanup()
    assert not problems, "\n".join(problems)


def extra_daemon(cluster, name, peers, key_file=None, extra=None, cluster_port=None):
    """A node outside the cluster's list (another key, an impostor...),
    stopped with the cluster's nodes at teardown."""
    node = Node(cluster.workdir, name, "127.0.0.1", cluster_port or helpers.free_port(),
                helpers.free_port(), helpers.free_port())
    node.config = cluster.node_config(node, peers=peers, key_file=key_file, extra=extra)
    cluster.extras.append(node)
    return node
