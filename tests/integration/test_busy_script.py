"""A script past lua-time-limit: the node keeps serving its other clients
from inside the script (src/net/busy.c, src/cmd/cmd_script.c), as
redis-server 7.0 does. Every other client gets -BUSY for its commands, SCRIPT
KILL stops a script that has not written (-UNKILLABLE once it wrote), SHUTDOWN
NOSAVE stops the node, and the script's caller gets the kill error.

Every test runs twice: against cohortd and against a reference redis-server
7.0, with the same exact bytes expected from both (so the replies are
compared byte for byte with redis-server's). lua-time-limit is set to 100 ms
with CONFIG SET, which both accept."""

import hashlib
import socket
import subprocess
import threading
import time

import pytest
import redis

import helpers
from cluster_harness import UnixRawConn
from conftest import REDIS_CLI, scaled

BUSY = (b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or "
        b"SHUTDOWN NOSAVE.\r\n")
UNKILLABLE = (b"-UNKILLABLE Sorry the script already executed write commands against the "
              b"dataset. You can either wait the script termination or kill the server in a "
              b"hard way using the SHUTDOWN NOSAVE command.\r\n")
LOOP = "while true do end"
WRITE_THEN_LOOP = "redis.call('set', 'written', '1') while true do end"


def killed_error(body):
    """The error the caller of a killed script gets (redis-server 7.0's text)."""
    sha = hashlib.sha1(body.encode()).hexdigest()
    return (b"-ERR Script killed by user with SCRIPT KILL... script: %s, on @user_script:1.\r\n"
            % sha.encode())


@pytest.fixture(params=["cohortd", "redis-server"])
def server_factory(request, cohortd, redis_factory):
    """Starts a fresh server (cohortd, or the reference redis-server) with
    the given config and lua-time-limit at 100 ms."""
    def start(config=None):
        d = (cohortd if request.param == "cohortd" else redis_factory)(config=config)
        with d.raw() as c:
            assert c.cmd("CONFIG", "SET", "lua-time-limit", "100") == b"+OK\r\n"
            assert c.cmd("CONFIG", "GET", "lua-time-limit") == (
                b"*2\r\n$14\r\nlua-time-limit\r\n$3\r\n100\r\n")
        return d
    return start


@pytest.fixture
def server(server_factory):
    return server_factory()


def start_script(d, body):
    """Sends EVAL body from a new connection (not waiting for the reply) and
    returns that connection, once another client gets -BUSY."""
    caller = d.raw(timeout=30)
    caller.send(helpers.encode("EVAL", body, "0"))
    wait_busy(d)
    return caller


def wait_busy(d):
    """Waits (bounded) until a new client's PING gets -BUSY. A PING may
    still get +PONG if it arrives before the EVAL."""
    deadline = time.monotonic() + scaled(10)
    while True:
        with d.raw(timeout=10) as c:
            reply = c.cmd("PING")
        if reply == BUSY:
            return
        assert reply == b"+PONG\r\n", reply
        assert time.monotonic() < deadline, "the script never turned busy"
        time.sleep(0.01)


def cli(d, *args):
    p = subprocess.run([REDIS_CLI, "-h", helpers.HOST, "-p", str(d.port)] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=scaled(20))
    return p.stdout


def test_busy_clients_get_busy_and_script_kill_stops_the_script(server):
    d = server
    caller = start_script(d, LOOP)
    with caller, d.raw(timeout=10) as other:
        assert other.cmd("GET", "k") == BUSY
        assert other.cmd("SET", "k", "v") == BUSY
        assert other.cmd("SCRIPT", "EXISTS", "x") == BUSY
        assert other.cmd("EVAL", "return 1", "0") == BUSY
        # what redis-server checks before -BUSY comes first
        assert other.cmd("NOSUCHCMD", "a") == (
            b"-ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' \r\n")
        assert other.cmd("GET") == b"-ERR wrong number of arguments for 'get' command\r\n"
        assert other.cmd("SHUTDOWN") == BUSY  # only SHUTDOWN NOSAVE while busy
        assert other.cmd("SHUTDOWN", "ABORT") == b"-ERR No shutdown in progress.\r\n"
        assert other.cmd("HELLO", "2")[:1] == b"*"  # allowed while busy
        # redis-cli sees the same
        assert cli(d, "GET", "k") == BUSY[1:-2] + b"\n\n"
        assert cli(d, "SCRIPT", "KILL") == b"OK\n"
        assert caller.read_reply() == killed_error(LOOP)
        assert other.cmd("PING") == b"+PONG\r\n"
        assert caller.cmd("PING") == b"+PONG\r\n"
        assert other.cmd("SCRIPT", "KILL") == b"-NOTBUSY No scripts in execution right now.\r\n"
        assert other.cmd("EXISTS", "k") == b":0\r\n"


def test_redis_py_caller_gets_the_kill_error(server):
    d = server
    r = d.client(socket_timeout=scaled(30))
    result = {}

    def run():
        try:
            result["reply"] = r.eval(LOOP, 0)
        except redis.exceptions.ResponseError as e:
            result["error"] = str(e)

    t = threading.Thread(target=run)
    t.start()
    try:
        wait_busy(d)
        other = d.client()
        with pytest.raises(redis.exceptions.ResponseError, match="^BUSY Redis is busy"):
            other.get("k")
        assert other.script_kill() is True
    finally:
        t.join(scaled(30))
    assert not t.is_alive()
    assert result.get("error", "").startswith("Script killed by user with SCRIPT KILL..."), result
    assert r.ping() is True


def test_script_that_wrote_is_unkillable_and_shutdown_nosave_stops_the_node(server):
    d = server
    caller = start_script(d, WRITE_THEN_LOOP)
    with caller, d.raw(timeout=10) as other:
        assert other.cmd("SCRIPT", "KILL") == UNKILLABLE
        assert other.cmd("GET", "written") == BUSY
        assert other.cmd("SCRIPT", "KILL") == UNKILLABLE  # still running
        other.send(helpers.encode("SHUTDOWN", "NOSAVE"))
        assert other.read_until_closed(timeout=20) == b""  # no reply: the node goes
        caller.read_until_closed(timeout=20)  # cohortd may first send the kill error
    d.proc.wait(timeout=scaled(20))
    assert d.proc.returncode == 0


def test_shutdown_nosave_stops_a_script_that_has_not_written(server):
    d = server
    caller = start_script(d, LOOP)
    with caller:
        assert cli(d, "SHUTDOWN", "NOSAVE") == b""
        caller.read_until_closed(timeout=20)
    d.proc.wait(timeout=scaled(20))
    assert d.proc.returncode == 0


def test_pipelined_burst_from_many_clients(server):
    d = server
    early = [d.raw(timeout=20) for _ in range(10)]  # connected before the script
    for c in early:
        assert c.cmd("PING") == b"+PONG\r\n"
    caller = start_script(d, LOOP)
    late = [d.raw(timeout=20) for _ in range(10)]  # connected while busy
    conns = early + late
    burst = []
    for i in range(50):  # about 50 KB a client: several reads, commands split between them
        burst += [("SET", "k%d" % i, "v" * 1000), ("GET", "k%d" % i), ("INCR", "n"), ("PING",)]
    try:
        for c in conns:
            c.send(b"".join(helpers.encode(*cmd) for cmd in burst))
        for c in conns:
            for _ in burst:
                assert c.read_reply() == BUSY
        with d.raw() as killer:
            assert killer.cmd("SCRIPT", "KILL") == b"+OK\r\n"
        assert caller.read_reply() == killed_error(LOOP)
        # none of the refused commands ran, and every connection works
        for i, c in enumerate(conns):
            assert c.cmd("GET", "n") == b"$-1\r\n"
            assert c.cmd("SET", "after%d" % i, "x") == b"+OK\r\n"
        assert conns[0].cmd("DBSIZE") == b":%d\r\n" % len(conns)
    finally:
        for c in conns + [caller]:
            c.close()


def test_callers_pipeline_waits_for_its_script(server):
    d = server
    caller = d.raw(timeout=30)
    caller.send(helpers.encode("EVAL", LOOP, "0") + helpers.encode("SET", "mine", "1") +
                helpers.encode("GET", "mine"))
    wait_busy(d)
    with caller, d.raw() as other:
        assert other.cmd("GET", "mine") == BUSY
        assert other.cmd("SCRIPT", "KILL") == b"+OK\r\n"
        assert caller.read_reply() == killed_error(LOOP)
        assert caller.read_reply() == b"+OK\r\n"
        assert caller.read_reply() == b"$1\r\n1\r\n"


def test_transaction_during_busy_is_aborted(server):
    d = server
    caller = start_script(d, LOOP)
    with caller, d.raw() as tx, d.raw() as other:
        assert tx.cmd("MULTI") == b"+OK\r\n"  # allowed while busy
        assert tx.cmd("SET", "t", "1") == BUSY
        assert tx.cmd("EXEC") == (b"-EXECABORT Transaction discarded because of: BUSY Redis is "
                                  b"busy running a script. You can only call SCRIPT KILL or "
                                  b"SHUTDOWN NOSAVE.\r\n")
        assert other.cmd("SCRIPT", "KILL") == b"+OK\r\n"
        assert caller.read_reply() == killed_error(LOOP)
        assert tx.cmd("EXEC") == b"-ERR EXEC without MULTI\r\n"
        assert tx.cmd("EXISTS", "t") == b":0\r\n"


def test_client_leaving_while_busy(server):
    d = server
    with d.raw() as c:
        before = int(helpers.info_dict(c.cmd("INFO", "clients"))["connected_clients"])
    caller = start_script(d, LOOP)
    with caller, d.raw() as other:
        half = d.raw()
        half.send(b"*2\r\n$3\r\nGET\r\n$1")  # a partial command, then gone
        half.close()
        rude = d.raw()
        rude.send(helpers.encode("PING"))  # never reads its reply
        rude.sock.shutdown(socket.SHUT_RDWR)
        rude.close()
        assert other.cmd("PING") == BUSY
        assert other.cmd("SCRIPT", "KILL") == b"+OK\r\n"
        assert caller.read_reply() == killed_error(LOOP)
        deadline = time.monotonic() + scaled(10)
        while True:  # the closes may be seen in the next loop turns
            n = int(helpers.info_dict(other.cmd("INFO", "clients"))["connected_clients"])
            if n == before + 1 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert n == before + 1  # the caller and other, less the probe of `before`


def test_subscriber_gets_the_scripts_message_then_busy(server):
    """A message the script published is in the subscriber's output before
    the busy period; what the subscriber is answered meanwhile comes after
    it, and nothing is lost."""
    d = server
    with d.raw(timeout=30) as sub:
        assert sub.cmd("SUBSCRIBE", "ch") == (
            b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n")
        body = "redis.call('publish', 'ch', 'hello') while true do end"
        caller = start_script(d, body)
        with caller, d.raw() as other:
            sub.send(helpers.encode("PING"))
            assert other.cmd("SCRIPT", "KILL") == b"+OK\r\n"
            assert caller.read_reply() == killed_error(body)
        assert sub.read_reply() == b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n"
        assert sub.read_reply() == BUSY
        assert sub.cmd("PING") == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"


def test_unix_socket_connection_made_while_busy(server_factory, tmp_path):
    path = str(tmp_path / "busy.sock")
    d = server_factory({"client": {"unixsocket": path}})
    caller = start_script(d, LOOP)
    with caller, UnixRawConn(path, timeout=scaled(10)) as u:
        u.send(helpers.encode("GET", "k") + helpers.encode("SCRIPT", "KILL"))
        assert u.read_reply() == BUSY
        assert u.read_reply() == b"+OK\r\n"
        assert caller.read_reply() == killed_error(LOOP)
        assert u.cmd("PING") == b"+PONG\r\n"


def test_shutdown_when_not_busy(server):
    d = server
    with d.raw() as c:
        assert c.cmd("SHUTDOWN", "NOSUCH") == b"-ERR syntax error\r\n"
        c.send(helpers.encode("SHUTDOWN"))
        assert c.read_until_closed(timeout=20) == b""
    d.proc.wait(timeout=scaled(20))
    assert d.proc.returncode == 0


@pytest.mark.cohort_only
def test_replies_wait_while_tracking_invalidations_are_pending(cohortd):
    """busy.c invariant 5, held case: while a script's write has client
    tracking invalidations waiting for the end of the turn, output a client
    already had (here the script's PUBLISH) is not written during the busy
    period, nor the -BUSY answered behind it; both come after the script,
    in order. The script ends by itself about 3 s after it starts."""
    d = cohortd()
    with d.raw() as c:
        assert c.cmd("CONFIG", "SET", "lua-time-limit", "100") == b"+OK\r\n"
    body = ("redis.call('publish', 'ch', 'm') redis.call('set', 'tk', '2') "
            "local t0 = tonumber(redis.call('time')[1]) "
            "while tonumber(redis.call('time')[1]) < t0 + 3 do end return 'done'")
    with d.raw(timeout=30) as tracker, d.raw(timeout=30) as sub:
        assert tracker.cmd("HELLO", "3")[:1] == b"%"
        assert tracker.cmd("CLIENT", "TRACKING", "ON") == b"+OK\r\n"
        assert tracker.cmd("GET", "tk") == b"_\r\n"
        assert sub.cmd("SUBSCRIBE", "ch") == b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
        caller = start_script(d, body)
        with caller:
            sub.send(helpers.encode("PING"))
            with d.raw() as other:  # served while busy, so sub's PING was read
                assert other.cmd("GET", "x") == BUSY
                assert other.cmd("GET", "x") == BUSY
            sub.sock.settimeout(0.3)
            with pytest.raises(socket.timeout):
                sub.sock.recv(1)  # nothing yet: the script still runs
            assert caller.read_reply() == b"$4\r\ndone\r\n"
        assert tracker.read_reply() == b">2\r\n$10\r\ninvalidate\r\n*1\r\n$2\r\ntk\r\n"
        assert sub.read_reply() == b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n"
        assert sub.read_reply() == BUSY
