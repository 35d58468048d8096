"""redis-cli against cohortd: one-shot commands, --pipe mass insertion,
interactive mode (driven with pexpect), and telnet-style inline commands."""

import os
import subprocess

import pexpect
import pytest

import helpers
from conftest import REDIS_CLI, scaled


def cli(port, *args, stdin=None, timeout=20, extra=()):
    p = subprocess.run([REDIS_CLI, "-h", helpers.HOST, "-p", str(port)] + list(extra) + list(args),
                       input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=scaled(timeout))
    return p


def test_one_shot_commands(cohortd):
    d = cohortd()
    p = cli(d.port, "PING")
    assert p.returncode == 0 and p.stdout == b"PONG\n", p
    assert cli(d.port, "SET", "greeting", "hello world").stdout == b"OK\n"
    assert cli(d.port, "GET", "greeting").stdout == b"hello world\n"
    assert cli(d.port, "EXISTS", "greeting", "nope").stdout == b"1\n"
    assert cli(d.port, "DBSIZE").stdout == b"1\n"
    # Formatted output (as on a terminal).
    assert cli(d.port, "GET", "nope", extra=["--no-raw"]).stdout == b"(nil)\n"
    assert cli(d.port, "GET", "greeting", extra=["--no-raw"]).stdout == b'"hello world"\n'
    p = cli(d.port, "NOSUCHCMD", "x")
    assert p.stdout == b"ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' \n\n", p.stdout
    p = cli(d.port, "GET")
    assert b"wrong number of arguments for 'get' command" in p.stdout
    # RESP3 through redis-cli.
    p = cli(d.port, "GET", "nope", extra=["-3", "--no-raw"])
    assert p.returncode == 0 and p.stdout == b"(nil)\n", p
    # Arguments from stdin (-x): a value with newlines.
    p = cli(d.port, "SET", "fromstdin", stdin=b"line1\nline2\n", extra=["-x"])
    assert p.stdout == b"OK\n", p
    assert cli(d.port, "GET", "fromstdin").stdout == b"line1\nline2\n\n"


@pytest.mark.slow
def test_pipe_mass_insert(cohortd, tmp_path):
    d = cohortd()
    n = 10000
    path = tmp_path / "mass.resp"
    with open(path, "wb") as f:
        for i in range(n):
            f.write(helpers.encode("SET", "mass:%05d" % i, "value-%d" % i))
    with open(path, "rb") as f:
        p = subprocess.run([REDIS_CLI, "-h", helpers.HOST, "-p", str(d.port), "--pipe"], stdin=f,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=scaled(60))
    out = p.stdout.decode()
    assert p.returncode == 0, out
    assert "All data transferred" in out, out
    assert "errors: 0, replies: %d" % n in out, out
    assert cli(d.port, "DBSIZE").stdout == b"%d\n" % n
    assert cli(d.port, "GET", "mass:09999").stdout == b"value-9999\n"
    assert cli(d.port, "GET", "mass:00000").stdout == b"value-0\n"


def test_pipe_counts_errors(cohortd, tmp_path):
    d = cohortd()
    path = tmp_path / "mixed.resp"
    with open(path, "wb") as f:
        f.write(helpers.encode("SET", "a", "1"))
        f.write(helpers.encode("SET", "b"))          # wrong arity
        f.write(helpers.encode("NOSUCH", "x"))       # unknown
        f.write(helpers.encode("GET", "a"))
    with open(path, "rb") as f:
        p = subprocess.run([REDIS_CLI, "-h", helpers.HOST, "-p", str(d.port), "--pipe"], stdin=f,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=scaled(30))
    out = p.stdout.decode()
    assert "errors: 2, replies: 4" in out, out


def _spawn_cli(port, *extra):
    env = dict(os.environ)
    env["TERM"] = "dumb"  # plain line input: no escape sequences to parse
    env.pop("REDISCLI_HISTFILE", None)
    env["HOME"] = os.environ.get("TMPDIR", "/tmp")
    env["REDISCLI_HISTFILE"] = "/dev/null"
    return pexpect.spawn(REDIS_CLI, ["-h", helpers.HOST, "-p", str(port)] + list(extra),
                         env=env, timeout=scaled(10), encoding="utf-8")


def test_interactive(cohortd):
    d = cohortd()
    child = _spawn_cli(d.port)
    prompt = "%s:%d> " % (helpers.HOST, d.port)
    try:
        child.expect_exact(prompt)
        child.sendline("SET city Lisbon")
        child.expect_exact("OK")
        child.expect_exact(prompt)
        child.sendline("GET city")
        child.expect_exact('"Lisbon"')
        child.expect_exact(prompt)
        child.sendline("GET nothing")
        child.expect_exact("(nil)")
        child.expect_exact(prompt)
        child.sendline("SET onlykey")
        child.expect_exact("(error) ERR wrong number of arguments for 'set' command")
        child.expect_exact(prompt)
        child.sendline("BOGUS a b")
        child.expect_exact("(error) ERR unknown command 'BOGUS', with args beginning with: 'a' 'b'")
        child.expect_exact(prompt)
        child.sendline("DBSIZE")
        child.expect_exact("(integer) 1")
        child.expect_exact(prompt)
        child.sendline("QUIT")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0, (child.exitstatus, child.signalstatus)
    finally:
        child.close(force=True)


def test_interactive_resp3(cohortd):
    d = cohortd()
    child = _spawn_cli(d.port, "-3")
    prompt = "%s:%d> " % (helpers.HOST, d.port)
    try:
        child.expect_exact(prompt)
        child.sendline("GET nothing")
        child.expect_exact("(nil)")
        child.expect_exact(prompt)
        child.sendline("QUIT")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def test_telnet_style_inline(cohortd):
    d = cohortd()
    with d.raw() as c:
        c.send(b"PING\r\n")
        assert c.read_reply() == b"+PONG\r\n"
        c.send(b'SET a "b c"\r\n')
        assert c.read_reply() == b"+OK\r\n"
        c.send(b"GET a\r\n")
        assert c.read_reply() == b"$3\r\nb c\r\n"
        # A bare LF ends a line too (what telnet-like tools may send).
        c.send(b"EXISTS a\n")
        assert c.read_reply() == b":1\r\n"
        # Several inline commands in one packet, and an empty line ignored.
        c.send(b"\r\nECHO one\r\nECHO 'two words'\r\n")
        assert c.read_reply() == b"$3\r\none\r\n"
        assert c.read_reply() == b"$9\r\ntwo words\r\n"
        # Inline and multibulk mixed on one connection.
        c.send(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\nDBSIZE\r\n")
        assert c.read_reply() == b"$3\r\nb c\r\n"
        assert c.read_reply() == b":1\r\n"
        # An inline command split across packets.
        c.send(b"GE")
        c.send(b"T a\r")
        c.send(b"\n")
        assert c.read_reply() == b"$3\r\nb c\r\n"
        c.send(b"QUIT\r\n")
        assert c.read_reply() == b"+OK\r\n"
        assert c.read_until_closed() == b""
