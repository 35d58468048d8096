"""Configuration, command line, signals, logging and AUTH.

A bad config names "FILE:LINE: key:" on stderr, exits non-zero and opens no
listener; flags override the file; SIGTERM and SIGINT are clean shutdowns;
log lines have one shape; requirepass behaves as redis-server's."""

import os
import re
import signal
import time

import pytest

import helpers
from cluster_harness import write_key_file
from conftest import FLAVOR, port_listening, run_cohortd, scaled

LOG_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\S+) (DEBUG|INFO|WARN|WARNING|ERROR) "
    r"([a-z][a-z0-9_.-]*): \S.*$")


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


# (file body with {port} for a free port, bad line number, key named as a
# regular expression)
BAD_CONFIGS = [
    # The section line itself, or the first key in it, may carry the error.
    ("unknown-section", "[client]\nport = {port}\n[bogus]\nx = 1\n", "(3|4)", r"(\[bogus\]|(bogus\.)?x)"),
    ("unknown-key", "[client]\nport = {port}\nbogus_key = 1\n", 3, "bogus_key"),
    ("unknown-key-in-node", "[node]\nname = a\ncolour = blue\n[client]\nport = {port}\n", 3, "colour"),
    ("port-not-a-number", "[client]\nbind = 127.0.0.1\nport = notanumber\n", 3, "port"),
    ("port-out-of-range", "[client]\nport = 70000\n", 2, "port"),
    ("port-negative", "[client]\nport = -1\n", 2, "port"),
    ("maxclients-negative", "[client]\nport = {port}\nmaxclients = -5\n", 3, "maxclients"),
    ("maxclients-garbage", "[client]\nport = {port}\nmaxclients = 10x\n", 3, "maxclients"),
    ("maxmemory-bad-unit", "[client]\nport = {port}\n[cache]\nmaxmemory = 12zb\n", 4, "maxmemory"),
    ("maxmemory-empty-number", "[client]\nport = {port}\n[cache]\nmaxmemory = mb\n", 4, "maxmemory"),
    ("max-bulk-len-bad", "[client]\nport = {port}\nmax_bulk_len = lots\n", 3, "max_bulk_len"),
    ("role-unknown", "[client]\nport = {port}\n[node]\nrole = lukewarm\n", 4, "role"),
    ("log-level-unknown", "[client]\nport = {port}\n[node]\nlog_level = loud\n", 4, "log_level"),
    ("repeated-scalar", "[client]\nport = {port}\nport = {port}\n", 3, "port"),
    ("http-port-bad", "[client]\nport = {port}\n[http]\nport = http\n", 4, "port"),
    ("timeout-bad", "[client]\nport = {port}\ntimeout = soon\n", 3, "timeout"),
    ("unixsocketperm-bad", "[client]\nport = {port}\nunixsocketperm = 999\n", 3, "unixsocketperm"),
]


@pytest.mark.cohort_only
@pytest.mark.parametrize("case,body,line,key", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config(tmp_path, case, body, line, key):
    port = helpers.free_port()
    path = _write(tmp_path, "bad.ini", body.format(port=port))
    p = run_cohortd(["--config", path, "--http-port", "0"])
    err = p.stderr.decode(errors="replace")
    assert p.returncode != 0, "started with a bad config (%s)" % case
    pat = re.escape(path) + ":%s: %s: \\S" % (line, key)
    assert re.search(pat, err), "no %r in stderr:\n%s" % (pat, err)
    assert not port_listening(port)


SYNTAX_ERRORS = [
    ("no-equals", "[client]\nport = {port}\nthis line has no equals sign\n", 3),
    ("unclosed-section", "[client\nport = {port}\n", 1),
]


@pytest.mark.cohort_only
@pytest.mark.parametrize("case,body,line", SYNTAX_ERRORS, ids=[c[0] for c in SYNTAX_ERRORS])
def test_config_syntax_error(tmp_path, case, body, line):
    port = helpers.free_port()
    path = _write(tmp_path, "bad.ini", body.format(port=port))
    p = run_cohortd(["--config", path, "--http-port", "0"])
    err = p.stderr.decode(errors="replace")
    assert p.returncode != 0
    assert (path + ":%d: " % line) in err, err
    assert not port_listening(port)


@pytest.mark.cohort_only
@pytest.mark.cohort_only
@pytest.mark.parametrize("peers", [1023, 1200])
def test_too_many_peers(tmp_path, peers):
    """A version's 10-bit tag tells the nodes apart (src/base/hlc.h): a
    cluster of more than 1,023 nodes is refused at start-up, with the limit
    named, before any listener opens."""
    key = write_key_file(str(tmp_path / "cluster.key"))
    port, cport = helpers.free_port(), helpers.free_port()
    lines = ["[client]", "port = %d" % port, "[cluster]", "bind = 127.0.0.1",
             "port = %d" % cport, "key_file = %s" % key]
    lines += ["peer = 127.0.0.1:%d" % (20000 + i) for i in range(peers)]
    path = _write(tmp_path, "many.ini", "\n".join(lines) + "\n")
    p = run_cohortd(["--config", path, "--http-port", "0"])
    err = p.stderr.decode(errors="replace")
    assert p.returncode != 0, "started with %d peers" % peers
    assert "at most 1022 peers (1023 nodes)" in err, err
    assert not port_listening(port) and not port_listening(cport)


def test_unreadable_config(tmp_path):
    missing = str(tmp_path / "does-not-exist.ini")
    p = run_cohortd(["--config", missing])
    assert p.returncode != 0
    assert missing in p.stderr.decode(errors="replace")
    # A directory is not a config file (as root, permissions would not stop
    # the read, so a directory stands for a file that cannot be read).
    d = tmp_path / "adir.ini"
    d.mkdir()
    p = run_cohortd(["--config", str(d)])
    assert p.returncode != 0
    assert str(d) in p.stderr.decode(errors="replace")


@pytest.mark.cohort_only
def test_bad_flags():
    p = run_cohortd(["--no-such-flag"])
    assert p.returncode != 0 and p.stderr.strip()
    p = run_cohortd(["--port", "notaport", "--http-port", "0"])
    assert p.returncode != 0 and b"port" in p.stderr
    p = run_cohortd(["--set", "client.nosuchkey=1", "--http-port", "0"])
    assert p.returncode != 0 and b"nosuchkey" in p.stderr
    p = run_cohortd(["--set", "garbage", "--http-port", "0"])
    assert p.returncode != 0 and p.stderr.strip()
    p = run_cohortd(["--port"])
    assert p.returncode != 0 and p.stderr.strip()
    # Settings that must agree: a heartbeat as long as suspect_after would
    # make every member suspect between two heartbeats.
    p = run_cohortd(["--set", "cluster.heartbeat=1s", "--http-port", "0"])
    assert p.returncode == 2
    assert b"cluster.heartbeat (1s) must be shorter than cluster.suspect_after" in p.stderr


@pytest.mark.cohort_only
def test_help_and_version():
    p = run_cohortd(["--help"])
    assert p.returncode == 0
    out = (p.stdout + p.stderr).decode()
    for flag in ("--config", "--port", "--bind", "--name", "--http-port", "--set"):
        assert flag in out, (flag, out)
    p = run_cohortd(["--version"])
    assert p.returncode == 0
    assert "0.1.0" in (p.stdout + p.stderr).decode()


@pytest.mark.cohort_only
def test_flags_override_file(cohortd):
    file_port = helpers.free_port()
    flag_port = helpers.free_port()
    flag_http = helpers.free_port()
    d = cohortd(config={"client": {"port": file_port}, "node": {"name": "from-file"},
                        "cache": {"maxmemory": "64mb"}},
                args=["--port", str(flag_port), "--name", "from-flag", "--http-port", str(flag_http),
                      "--maxmemory", "5mb", "--set", "client.requirepass=flagpass"],
                wait_ready=False)
    d.wait_ready(port=flag_port)
    d.http_port = flag_http
    assert not port_listening(file_port)
    with d.raw() as c:
        assert c.cmd("GET", "x") == b"-NOAUTH Authentication required.\r\n"
        assert c.cmd("AUTH", "flagpass") == b"+OK\r\n"
        info = helpers.info_dict(c.cmd("INFO", "memory"))
        assert int(info["maxmemory"]) == 5 * 1024 * 1024
    status, _, body = helpers.http_get(flag_http, "/v1/status")
    assert status == 200 and b"from-flag" in body and b"from-file" not in body


@pytest.mark.cohort_only
def test_flags_without_file(cohortd):
    """Every setting has a default: flags alone are enough."""
    port = helpers.free_port()
    http = helpers.free_port()
    d = cohortd(config={}, args=["--bind", "127.0.0.1", "--port", str(port), "--http-port", str(http),
                                 "--name", "flagsonly"], wait_ready=False)
    d.wait_ready(port=port)
    status, _, body = helpers.http_get(http, "/health")
    assert status == 200


@pytest.mark.cohort_only
def test_unixsocket(cohortd, tmp_path):
    import socket as so
    path = str(tmp_path / "cohort.sock")
    d = cohortd(config={"client": {"unixsocket": path, "unixsocketperm": "0700"}})
    assert os.path.exists(path)
    assert (os.stat(path).st_mode & 0o777) == 0o700
    s = so.socket(so.AF_UNIX, so.SOCK_STREAM)
    s.settimeout(scaled(5))
    s.connect(path)
    try:
        s.sendall(helpers.encode("SET", "u", "x") + helpers.encode("GET", "u"))
        data = b""
        deadline = time.monotonic() + scaled(5)
        while data != b"+OK\r\n$1\r\nx\r\n" and time.monotonic() < deadline:
            data += s.recv(100)
        assert data == b"+OK\r\n$1\r\nx\r\n"
    finally:
        s.close()
    assert d.stop() == 0
    assert not os.path.exists(path), "unix socket left behind"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_clean_exit(cohortd, sig):
    d = cohortd()
    # Clients in every state: idle, mid-command, and with unread replies.
    idle = d.raw()
    half = d.raw()
    half.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc")
    busy = d.raw()
    busy.send(helpers.encode("SET", "v", "x" * 10000))
    busy.send(helpers.encode("GET", "v") * 200)
    time.sleep(0.1)
    t0 = time.monotonic()
    rc = d.stop(sig=sig, timeout=10)
    took = time.monotonic() - t0
    for c in (idle, half, busy):
        c.close()
    assert rc == 0, "exit %s after %s:\n%s" % (rc, sig.name, d.stderr()[-3000:])
    assert took < scaled(5), took
    assert not port_listening(d.port)


@pytest.mark.cohort_only
def test_log_lines(cohortd, tmp_path):
    log = str(tmp_path / "node-logs.log")
    d = cohortd(name="lognode", config={"node": {"log_file": log, "log_level": "debug"}})
    with d.raw() as c:
        c.cmd("PING")
        c.send(b"*x\r\n")  # a protocol error is worth a log line at some level
        try:
            c.read_until_closed()
        except Exception:
            pass
    assert d.stop() == 0
    with open(log, encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert lines, "log file is empty"
    for line in lines:
        m = LOG_LINE.match(line)
        assert m, "log line of the wrong shape: %r" % line
        assert m.group(2) == "lognode", line
    # Nothing of that format went to stderr instead.
    for line in d.stderr().splitlines():
        assert not LOG_LINE.match(line), "log line on stderr although log_file is set: %r" % line
    # Start and stop are logged.
    assert len(lines) >= 2


@pytest.mark.cohort_only
def test_log_to_stderr_by_default(cohortd):
    d = cohortd(name="errnode")
    assert d.stop() == 0
    lines = [l for l in d.stderr().splitlines() if l.strip()]
    assert lines
    for line in lines:
        m = LOG_LINE.match(line)
        assert m, "stderr line of the wrong shape: %r" % line
        assert m.group(2) == "errnode"


@pytest.mark.cohort_only
def test_log_reopen_on_sighup(cohortd, tmp_path):
    log = str(tmp_path / "rot.log")
    d = cohortd(name="rotnode", config={"node": {"log_file": log, "log_level": "debug"}})
    os.rename(log, log + ".1")
    d.proc.send_signal(signal.SIGHUP)
    assert helpers.wait_for(lambda: os.path.exists(log), scaled(5)), "log not reopened after SIGHUP"
    assert d.alive()
    assert d.stop() == 0
    with open(log, encoding="utf-8") as f:
        assert any(LOG_LINE.match(l) for l in f.read().splitlines())


AUTH_SCRIPT = [
    ("GET", "a"),
    ("SET", "a", "1"),
    ("PING",),
    ("ECHO", "x"),
    ("DBSIZE",),
    ("NOSUCHCOMMAND", "x"),
    ("GET",),
    ("AUTH",),
    ("AUTH", "wrong"),
    ("AUTH", "default", "wrong"),
    ("AUTH", "someone", "s3cret pass"),
    ("AUTH", "a", "b", "c"),
    ("HELLO", "3"),
    ("GET", "a"),
    ("AUTH", "s3cret pass"),
    ("GET", "a"),
    ("SET", "a", "1"),
    ("GET", "a"),
    ("AUTH", "wrong"),
    ("GET", "a"),
    ("AUTH", "default", "s3cret pass"),
    ("GET", "a"),
]


def test_requirepass_like_redis(cohortd, redis_factory):
    """Every reply of an AUTH session equals redis-server 7's, byte for byte."""
    pw = "s3cret pass"
    ours = cohortd(config={"client": {"requirepass": pw}})
    ref = redis_factory(config={"client": {"requirepass": pw}}, name="redis-auth")
    diffs = []
    with ours.raw() as a, ref.raw() as b:
        for cmd in AUTH_SCRIPT:
            ra, rb = a.cmd(*cmd), b.cmd(*cmd)
            if ra != rb:
                diffs.append("%s\n   cohortd:      %r\n   redis-server: %r" % (" ".join(cmd), ra, rb))
    assert not diffs, "\n".join(diffs)
    with ours.raw() as c:
        assert c.cmd("GET", "a") == b"-NOAUTH Authentication required.\r\n"
        assert c.cmd("AUTH", "wrong") == \
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        assert c.cmd("QUIT") == b"+OK\r\n"


UNAUTH_INPUTS = [
    b"*11\r\n",                                  # more than 10 arguments before AUTH
    b"*1\r\n$16385\r\n",                         # an argument over 16384 bytes before AUTH
]


def test_unauthenticated_limits_like_redis(cohortd, redis_factory):
    """Before AUTH, a client cannot make the server buffer a large command:
    the same protocol errors as redis-server 7, and the connection closes."""
    pw = "s3cret pass"
    ours = cohortd(config={"client": {"requirepass": pw}})
    ref = redis_factory(config={"client": {"requirepass": pw}}, name="redis-unauth")
    for data in UNAUTH_INPUTS:
        replies = []
        for d in (ours, ref):
            with d.raw() as c:
                c.send(data)
                replies.append(c.read_reply())
        assert replies[0] == replies[1], (data, replies)
        assert replies[0].startswith(b"-ERR Protocol error: unauthenticated"), replies[0]
    # After AUTH the same sizes are fine.
    with ours.raw() as c:
        assert c.cmd("AUTH", pw) == b"+OK\r\n"
        assert c.cmd("SET", "k", "v" * 20000) == b"+OK\r\n"
        assert c.cmd("MSET", *["a"] * 12) == b"+OK\r\n"
