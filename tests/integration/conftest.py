"""Fixtures that start real cohortd and redis-server processes on loopback.

The daemon under test is the binary named by $COHORTD (default
/work/main/build/cohortd; a relative path is taken from the current
directory). When $COHORTD names a redis-server binary instead, the same tests
run against redis-server, with cohort's settings translated to redis-server
options; tests of cohort's own features (marked cohort_only) are skipped then.
That mode checks the suite itself against the behaviour cohort copies.

Every process started here is stopped at teardown, also when a test fails:
SIGTERM, a bounded wait, the exit code must be 0 (a clean shutdown is part of
the contract), stderr must hold no sanitizer report, and anything still
running is killed.
"""

import atexit
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import redis

import helpers

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))


def _binary():
    b = os.environ.get("COHORTD", os.path.join(REPO, "build", "cohortd"))
    if os.sep in b:
        return os.path.abspath(b)
    return shutil.which(b) or b


COHORTD = _binary()
FLAVOR = "redis" if os.path.basename(COHORTD).startswith("redis-server") else "cohort"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def _sanitized(path):
    """True when the binary was built with AddressSanitizer."""
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


SANITIZED = os.environ.get("COHORT_SANITIZED") == "1" or _sanitized(COHORTD)
# Timing budgets scale with the build: a sanitizer build runs about 3x slower.
TIME_SCALE = float(os.environ.get("COHORT_TIME_SCALE", "3" if SANITIZED else "1"))

SANITIZER_PATTERNS = (b"Sanitizer", b"runtime error:")

# Every live process, so that an interrupted run still kills them.
_LIVE = set()


@atexit.register
def _kill_leftovers():
    for p in list(_LIVE):
        try:
            p.kill()
            p.wait(timeout=5)
        except Exception:
            pass


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds (deselect with -m 'not slow')")
    config.addinivalue_line("markers", "cohort_only: tests cohort's own features; skipped when $COHORTD is redis-server")


def pytest_report_header(config):
    return "cohortd: %s (flavor %s, sanitizer %s, time scale %.1f)" % (
        COHORTD, FLAVOR, "yes" if SANITIZED else "no", TIME_SCALE)


def pytest_collection_modifyitems(config, items):
    if FLAVOR != "redis":
        return
    skip = pytest.mark.skip(reason="cohort's own feature; $COHORTD is redis-server")
    for item in items:
        if "cohort_only" in item.keywords:
            item.add_marker(skip)


def scaled(seconds):
    return seconds * TIME_SCALE


def with_data_dir(config, workdir, name):
    """config with node.data_dir set to a directory of its own in workdir
    (unless the test set data_dir or store.url), so a node never writes its
    store outside the test's directory (the default is /var/lib/cohort)."""
    if "data_dir" in config.get("node", {}) or "url" in config.get("store", {}):
        return config
    out = {s: dict(kv) for s, kv in config.items()}
    out.setdefault("node", {})["data_dir"] = os.path.join(workdir, "%s-data" % name)
    return out


def _ini(config):
    out = []
    for section, kv in config.items():
        out.append("[%s]" % section)
        for k, v in kv.items():
            vals = v if isinstance(v, (list, tuple)) else [v]
            for one in vals:
                out.append("%s = %s" % (k, one))
        out.append("")
    return "\n".join(out)


# cohort setting -> redis-server option, for the redis flavor.
_REDIS_OPTS = {
    ("client", "bind"): "bind",
    ("client", "port"): "port",
    ("client", "unixsocket"): "unixsocket",
    ("client", "requirepass"): "requirepass",
    ("client", "maxclients"): "maxclients",
    ("client", "max_bulk_len"): "proto-max-bulk-len",
    ("client", "query_buffer_limit"): "client-query-buffer-limit",
    ("client", "timeout"): "timeout",
    ("cache", "maxmemory"): "maxmemory",
}


class Daemon:
    """One started server process (cohortd or redis-server)."""

    def __init__(self, binary, flavor, workdir, name, config, args, nofile, env):
        self.binary = binary
        self.flavor = flavor
        self.workdir = workdir
        self.name = name
        self.config = config
        self.extra_args = list(args)
        self.nofile = nofile
        self.env = env
        self.proc = None
        self.returncode = None
        self.expect_clean_exit = True
        self.conf_path = os.path.join(workdir, "%s.ini" % name)
        self.stdout_path = os.path.join(workdir, "%s.stdout" % name)
        self.stderr_path = os.path.join(workdir, "%s.stderr" % name)
        self.port = None
        self.http_port = None

    # --- starting ---------------------------------------------------------

    def _command(self):
        if self.flavor == "redis":
            argv = [self.binary, "--port", str(self.port), "--bind", helpers.HOST,
                    "--save", "", "--appendonly", "no", "--dir", self.workdir,
                    "--daemonize", "no", "--protected-mode", "no", "--logfile", ""]
            policy = False
            for (sec, key), opt in _REDIS_OPTS.items():
                if key in ("port", "bind"):
                    continue
                v = self.config.get(sec, {}).get(key)
                if v is not None:
                    argv += ["--" + opt, str(v)]
                    policy = policy or opt == "maxmemory"
            obl = self.config.get("client", {}).get("output_buffer_limit")
            if obl is not None:
                argv += ["--client-output-buffer-limit", "normal %s %s 0" % (obl, obl)]
            client = self.config.get("client", {})
            if any(k.startswith("pubsub_output") for k in client):
                argv += ["--client-output-buffer-limit", "pubsub %s %s %s" % (
                    client.get("pubsub_output_limit_hard", "32mb"),
                    client.get("pubsub_output_limit_soft", "8mb"),
                    client.get("pubsub_output_soft_seconds", "60"))]
            if policy:
                argv += ["--maxmemory-policy", "allkeys-lru"]
            return argv + self.extra_args
        with open(self.conf_path, "w") as f:
            f.write(_ini(with_data_dir(self.config, self.workdir, self.name)))
        return [self.binary, "--config", self.conf_path] + self.extra_args

    def _preexec(self):
        os.setsid()
        if self.nofile:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            want = min(self.nofile, hard)
            if soft < want:
                resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    def start(self, wait_ready=True, ready_timeout=5.0):
        """Starts the process on fresh free ports. Retries on a port taken by
        someone else between picking and binding it."""
        last = ""
        for _attempt in range(3):
            cl = self.config.setdefault("client", {})
            if self._auto_port:
                cl["port"] = helpers.free_port()
            self.port = int(cl["port"])
            if self.flavor == "cohort":
                ht = self.config.setdefault("http", {})
                if self._auto_http:
                    ht["port"] = helpers.free_port()
                ht.setdefault("bind", helpers.HOST)
                self.http_port = int(ht["port"])
                cl.setdefault("bind", helpers.HOST)
                self.config.setdefault("node", {}).setdefault("name", self.name)
            env = dict(os.environ)
            env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
            env.update(self.env or {})
            with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
                self.proc = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=err, cwd=self.workdir, env=env,
                                             preexec_fn=self._preexec)
            _LIVE.add(self.proc)
            if not wait_ready:
                return self
            ok, why = self._wait_ready(scaled(ready_timeout), self.port)
            if ok:
                return self
            last = why
            if self.proc.poll() is None:
                self.kill()
            err_text = self.stderr()
            self.returncode = self.proc.returncode
            _LIVE.discard(self.proc)
            if "in use" not in err_text.lower():
                break
        self.expect_clean_exit = False
        raise AssertionError("%s did not become ready: %s\n--- stderr ---\n%s" % (
            self.binary, last, self.stderr()[-4000:]))

    def wait_ready(self, port=None, timeout=5.0):
        """Waits until port (default: the configured one) answers PING;
        raises with the server's stderr if it does not."""
        ok, why = self._wait_ready(scaled(timeout), port or self.port)
        if not ok:
            raise AssertionError("not ready on port %s: %s\n--- stderr ---\n%s" % (
                port or self.port, why, self.stderr()[-4000:]))
        if port:
            self.port = port
        return self

    def _wait_ready(self, timeout, port):
        deadline = time.monotonic() + timeout
        why = "no answer to PING"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False, "exited with %d" % self.proc.returncode
            try:
                with socket.create_connection((helpers.HOST, port), timeout=1.0) as s:
                    s.sendall(b"*1\r\n$4\r\nPING\r\n")
                    data = s.recv(64)
                    if data.startswith(b"+PONG") or data.startswith(b"-NOAUTH"):
                        return True, ""
                    why = "PING answered %r" % data
            except OSError as e:
                why = str(e)
            time.sleep(0.02)
        return False, why

    # --- using --------------------------------------------------------------

    @property
    def pid(self):
        return self.proc.pid

    def raw(self, timeout=5.0):
        return helpers.RawConn(self.port, timeout=scaled(timeout))

    def client(self, **kw):
        kw.setdefault("socket_timeout", scaled(10))
        return redis.Redis(host=helpers.HOST, port=self.port, **kw)

    def info(self, section=None, password=None):
        with self.raw() as c:
            if password:
                c.cmd("AUTH", password)
            r = c.cmd("INFO", section) if section else c.cmd("INFO")
        return helpers.info_dict(r)

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # --- stopping -----------------------------------------------------------

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Sends sig and waits (bounded) for the exit. Returns the exit code
        (negative: killed by that signal); kills the process at the deadline."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=scaled(timeout))
            except subprocess.TimeoutExpired:
                self.kill()
                self.returncode = "hung after %s; killed" % signal.Signals(sig).name
                _LIVE.discard(self.proc)
                return self.returncode
        self.returncode = self.proc.returncode
        _LIVE.discard(self.proc)
        return self.returncode

    def kill(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def problems(self):
        """What is wrong with how this process ended (after stop())."""
        out = []
        if self.expect_clean_exit and self.returncode not in (0, None):
            out.append("%s %s: exit %s" % (os.path.basename(self.binary), self.name, self.returncode))
        err = self.stderr().encode()
        for pat in SANITIZER_PATTERNS:
            if pat in err:
                i = err.index(pat)
                out.append("%s %s: sanitizer report in stderr:\n%s" % (
                    os.path.basename(self.binary), self.name,
                    err[max(0, i - 200):i + 3000].decode("utf-8", "replace")))
                break
        return out


class DaemonManager:
    """Starts daemons for one fixture scope and stops every one of them."""

    def __init__(self, workdir, binary, flavor):
        self.workdir = workdir
        self.binary = binary
        self.flavor = flavor
        self.daemons = []

    def __call__(self, config=None, args=(), name=None, nofile=None, env=None,
                 wait_ready=True, ready_timeout=5.0):
        """Starts one daemon. config is {section: {key: value}}; client.port
        and http.port are picked at random unless given."""
        if self.flavor == "cohort" and not os.path.exists(self.binary):
            pytest.fail("cohortd binary %s does not exist: build it or set $COHORTD" % self.binary)
        name = name or "n%d" % (len(self.daemons) + 1)
        cfg = {s: dict(kv) for s, kv in (config or {}).items()}
        d = Daemon(self.binary, self.flavor, self.workdir, name, cfg, args, nofile, env)
        d._auto_port = "port" not in cfg.get("client", {})
        d._auto_http = "port" not in cfg.get("http", {})
        self.daemons.append(d)
        return d.start(wait_ready=wait_ready, ready_timeout=ready_timeout)

    def cleanup(self):
        problems = []
        for d in self.daemons:
            if d.proc is None:
                continue
            if d.returncode is None:
                d.stop()
            problems += d.problems()
            if d.alive():
                d.kill()
        self.daemons = []
        return problems


def _manager(tmp, binary, flavor):
    return DaemonManager(str(tmp), binary, flavor)


@pytest.fixture
def cohortd(tmp_path):
    """Factory: cohortd(config={...}, args=[...]) -> Daemon."""
    m = _manager(tmp_path, COHORTD, FLAVOR)
    yield m
    problems = m.cleanup()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def cohortd_module(tmp_path_factory):
    """Factory like cohortd, shared by the tests of one module."""
    m = _manager(tmp_path_factory.mktemp("cohortd"), COHORTD, FLAVOR)
    yield m
    problems = m.cleanup()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """A reference redis-server on a free loopback port (no persistence)."""
    if not os.path.exists(REDIS_SERVER):
        pytest.fail("redis-server is not installed (Debian package redis-server)")
    m = _manager(tmp_path_factory.mktemp("redis"), REDIS_SERVER, "redis")
    d = m(name="reference")
    yield d
    problems = m.cleanup()
    assert not problems, "\n".join(problems)


@pytest.fixture
def redis_factory(tmp_path):
    """Factory like cohortd, for reference redis-servers with settings."""
    if not os.path.exists(REDIS_SERVER):
        pytest.fail("redis-server is not installed (Debian package redis-server)")
    m = _manager(tmp_path / "redis", REDIS_SERVER, "redis")
    os.makedirs(m.workdir, exist_ok=True)
    yield m
    problems = m.cleanup()
    assert not problems, "\n".join(problems)


def run_cohortd(args, timeout=10.0, env=None, cwd=None):
    """Runs cohortd with args to completion (bounded). Returns the
    CompletedProcess; fails the test if it is still running at the deadline."""
    if FLAVOR == "cohort" and not os.path.exists(COHORTD):
        pytest.fail("cohortd binary %s does not exist" % COHORTD)
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.Popen([COHORTD] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=e, cwd=cwd, start_new_session=True)
    _LIVE.add(p)
    try:
        out, err = p.communicate(timeout=scaled(timeout))
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate(timeout=10)
        pytest.fail("cohortd %s still running after %.0fs; stderr:\n%s" % (
            " ".join(args), scaled(timeout), err.decode(errors="replace")[-2000:]))
    finally:
        _LIVE.discard(p)
    for pat in SANITIZER_PATTERNS:
        assert pat not in err, "sanitizer report:\n%s" % err.decode(errors="replace")
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def port_listening(port):
    try:
        with socket.create_connection((helpers.HOST, port), timeout=1.0):
            return True
    except OSError:
        return False
