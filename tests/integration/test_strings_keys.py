"""Strings, keys and server commands whose effects the differential corpus
cannot compare byte for byte: TIME, RANDOMKEY, the slow log's content, CLIENT
KILL / REPLY / NO-TOUCH, DUMP / RESTORE round trips and refused payloads,
OBJECT IDLETIME, CONFIG SET effects, CONFIG RESETSTAT, INFO fields.

They run against redis-server too ($COHORTD=redis-server), except what is
cohort's own (marked cohort_only)."""

import socket
import time

import pytest

import helpers
from conftest import FLAVOR, scaled

# DUMP of "v" made by redis-server 7.0: cohortd must refuse it.
REDIS_DUMP_OF_V = b"\x00\x01v\n\x00\x91\x08\xce\xb2\x198\x8a\xce"


def _d(raw):
    return helpers.decode1(raw)


def test_time(cohortd):
    d = cohortd()
    with d.raw() as c:
        raw = c.cmd("TIME")
        secs, usecs = _d(raw)
        assert raw.startswith(b"*2\r\n$"), raw
        assert abs(int(secs) - time.time()) < 60
        assert 0 <= int(usecs) < 1000000
        t2 = _d(c.cmd("TIME"))
        assert (int(t2[0]), int(t2[1])) >= (int(secs), int(usecs))


def test_randomkey(cohortd):
    d = cohortd()
    with d.raw() as c:
        assert c.cmd("RANDOMKEY") == b"$-1\r\n"
        keys = {b"k%d" % i for i in range(20)}
        for k in keys:
            c.cmd("SET", k, "v")
        seen = {_d(c.cmd("RANDOMKEY")) for _ in range(300)}
        assert seen <= keys
        assert len(seen) > 5, seen  # 300 draws of 20 keys
        c.cmd("FLUSHALL")
        for i in range(5):
            c.cmd("SET", "gone%d" % i, "v", "PX", 1)
        time.sleep(0.05)
        assert c.cmd("RANDOMKEY") == b"$-1\r\n"


def test_slowlog_records_commands(cohortd):
    d = cohortd()
    with d.raw() as c:
        assert c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "0") == b"+OK\r\n"
        c.cmd("CLIENT", "SETNAME", "slowpoke")
        addr = [f for f in _d(c.cmd("CLIENT", "INFO")).decode().split()
                if f.startswith("addr=")][0][5:]
        c.cmd("SLOWLOG", "RESET")
        c.cmd("SET", "k", "x" * 200)
        c.cmd("MSET", *["a%d" % i for i in range(40)])
        log = _d(c.cmd("SLOWLOG", "GET", "-1"))
        # Newest first: MSET, SET, then the RESET itself (logged after it ran).
        mset, set_, reset = log[0], log[1], log[2]
        assert reset[3] == [b"SLOWLOG", b"RESET"]
        assert mset[0] == set_[0] + 1 == reset[0] + 2
        for e in (mset, set_):
            assert abs(e[1] - time.time()) < 60
            assert e[2] >= 0
            assert e[4] == addr.encode()
            assert e[5] == b"slowpoke"
        assert set_[3] == [b"SET", b"k", b"x" * 128 + b"... (72 more bytes)"]
        assert len(mset[3]) == 32
        assert mset[3][:31] == [b"MSET"] + [b"a%d" % i for i in range(30)]
        assert mset[3][31] == b"... (10 more arguments)"
        assert _d(c.cmd("SLOWLOG", "LEN")) == 4  # RESET, SET, MSET, GET -1
        # Bounded by slowlog-max-len.
        c.cmd("CONFIG", "SET", "slowlog-max-len", "3")
        for i in range(10):
            c.cmd("GET", "k")
        assert _d(c.cmd("SLOWLOG", "LEN")) == 3
        assert len(_d(c.cmd("SLOWLOG", "GET", "-1"))) == 3
        # -1 turns it off; a high threshold logs nothing fast.
        c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "-1")
        c.cmd("SLOWLOG", "RESET")
        c.cmd("GET", "k")
        assert _d(c.cmd("SLOWLOG", "LEN")) == 0
        c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "10000000")
        c.cmd("GET", "k")
        assert _d(c.cmd("SLOWLOG", "LEN")) == 0
        help_ = _d(c.cmd("SLOWLOG", "HELP"))
        assert help_[0].startswith(b"SLOWLOG <subcommand>")


def test_slowlog_leaves_out_auth(cohortd):
    d = cohortd(config={"client": {"requirepass": "sekrit"}})
    with d.raw() as c:
        assert c.cmd("AUTH", "sekrit") == b"+OK\r\n"
        c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "0")
        c.cmd("SLOWLOG", "RESET")
        c.cmd("AUTH", "sekrit")
        c.cmd("HELLO", "2", "AUTH", "default", "sekrit")
        log = _d(c.cmd("SLOWLOG", "GET", "-1"))
        assert all(b"sekrit" not in b" ".join(e[3]) for e in log), log


def test_client_reply_off_on_skip(cohortd):
    d = cohortd()
    with d.raw() as c:
        c.send(helpers.encode("CLIENT", "REPLY", "OFF") + helpers.encode("SET", "a", "1") +
               helpers.encode("NOSUCHCMD") + helpers.encode("GET", "a") +
               helpers.encode("CLIENT", "REPLY", "ON"))
        assert c.read_reply() == b"+OK\r\n"
        c.send(helpers.encode("CLIENT", "REPLY", "SKIP") + helpers.encode("SET", "b", "2") +
               helpers.encode("GET", "b"))
        assert c.read_reply() == b"$1\r\n2\r\n"
        # SKIP while OFF does nothing; ON ends both.
        c.send(helpers.encode("CLIENT", "REPLY", "OFF") + helpers.encode("CLIENT", "REPLY", "SKIP") +
               helpers.encode("GET", "b") + helpers.encode("CLIENT", "REPLY", "ON") +
               helpers.encode("GET", "a"))
        assert c.read_reply() == b"+OK\r\n"
        assert c.read_reply() == b"$1\r\n1\r\n"
        assert c.cmd("CLIENT", "REPLY", "MAYBE") == b"-ERR syntax error\r\n"


def _client_id(conn):
    return _d(conn.cmd("CLIENT", "ID"))


def _addr(conn):
    info = _d(conn.cmd("CLIENT", "INFO")).decode()
    return [f for f in info.split() if f.startswith("addr=")][0][5:]


def _assert_closed(conn):
    with pytest.raises((helpers.Closed, ConnectionResetError, BrokenPipeError)):
        conn.cmd("PING")


def test_client_kill(cohortd):
    d = cohortd()
    with d.raw() as me, d.raw() as a, d.raw() as b, d.raw() as e, d.raw() as f:
        assert me.cmd("CLIENT", "KILL", "ID", str(_client_id(a))) == b":1\r\n"
        _assert_closed(a)
        assert me.cmd("CLIENT", "KILL", "ADDR", _addr(b)) == b":1\r\n"
        _assert_closed(b)
        assert me.cmd("CLIENT", "KILL", _addr(e)) == b"+OK\r\n"  # old form
        _assert_closed(e)
        assert me.cmd("CLIENT", "KILL", "127.0.0.1:1") == b"-ERR No such client\r\n"
        assert me.cmd("CLIENT", "KILL", "ID", "999999") == b":0\r\n"
        # SKIPME yes (the default) spares the caller; TYPE normal matches f.
        assert me.cmd("CLIENT", "KILL", "TYPE", "normal") == b":1\r\n"
        _assert_closed(f)
        assert me.cmd("PING") == b"+PONG\r\n"
        # SKIPME no: the caller gets its reply, then the connection closes.
        assert me.cmd("CLIENT", "KILL", "ID", str(_client_id(me)), "SKIPME", "no") == b":1\r\n"
        with pytest.raises((helpers.Closed, ConnectionResetError, BrokenPipeError, socket.timeout)):
            me.read_reply(timeout=scaled(5))
    with d.raw() as c:
        assert c.cmd("PING") == b"+PONG\r\n"


def test_client_list_filters(cohortd):
    d = cohortd()
    with d.raw() as c, d.raw() as other:
        me, them = _client_id(c), _client_id(other)
        lines = _d(c.cmd("CLIENT", "LIST", "ID", str(them), "999999", str(me))).decode()
        ids = sorted(int(l.split()[0][3:]) for l in lines.splitlines())
        assert ids == sorted([me, them]), lines
        assert len(_d(c.cmd("CLIENT", "LIST", "TYPE", "normal")).decode().splitlines()) == 2
        assert _d(c.cmd("CLIENT", "LIST", "TYPE", "pubsub")) == b""
        assert c.cmd("CLIENT", "LIST", "TYPE", "foo") == b"-ERR Unknown client type 'foo'\r\n"
        assert c.cmd("CLIENT", "LIST", "ID", "x") == b"-ERR Invalid client ID\r\n"
        assert c.cmd("CLIENT", "LIST", "foo") == b"-ERR syntax error\r\n"


@pytest.mark.cohort_only
def test_client_setinfo_noevict_notouch(cohortd):
    """SETINFO and NO-TOUCH are redis-server 7.2's (7.0 lacks them)."""
    d = cohortd()
    with d.raw() as c:
        assert c.cmd("CLIENT", "SETINFO", "LIB-NAME", "redis-py") == b"+OK\r\n"
        assert c.cmd("CLIENT", "SETINFO", "lib-ver", "5.0.1") == b"+OK\r\n"
        assert c.cmd("CLIENT", "SETINFO", "lib-name", "a b") == \
            b"-ERR lib-name cannot contain spaces, newlines or special characters.\r\n"
        assert c.cmd("CLIENT", "SETINFO", "foo", "x") == b"-ERR Unrecognized option 'foo'\r\n"
        assert c.cmd("CLIENT", "NO-EVICT", "ON") == b"+OK\r\n"
        assert c.cmd("CLIENT", "NO-TOUCH", "ON") == b"+OK\r\n"
        assert "flags=eT " in _d(c.cmd("CLIENT", "INFO")).decode()
        assert c.cmd("CLIENT", "NO-EVICT", "maybe") == b"-ERR syntax error\r\n"
        assert c.cmd("CLIENT", "UNPAUSE") == b"+OK\r\n"


def test_object_idletime_and_no_touch(cohortd):
    d = cohortd()
    with d.raw() as c:
        c.cmd("SET", "k", "v")
        c.cmd("SET", "t", "v")
        assert _d(c.cmd("OBJECT", "IDLETIME", "k")) <= 1
        time.sleep(2.5)
        idle = _d(c.cmd("OBJECT", "IDLETIME", "k"))
        assert idle >= 1, idle  # OBJECT itself does not touch
        assert _d(c.cmd("OBJECT", "IDLETIME", "k")) >= 1
        c.cmd("GET", "k")
        assert _d(c.cmd("OBJECT", "IDLETIME", "k")) <= 1
        if FLAVOR == "cohort":
            c.cmd("CLIENT", "NO-TOUCH", "ON")
            c.cmd("GET", "t")
            assert _d(c.cmd("OBJECT", "IDLETIME", "t")) >= 1
            c.cmd("TOUCH", "t")  # TOUCH touches whatever the mode
            assert _d(c.cmd("OBJECT", "IDLETIME", "t")) <= 1


def test_dump_restore_round_trip(cohortd):
    d = cohortd()
    values = {"int": b"12345", "neg": b"-7", "emb": b"hello", "raw": b"x" * 100,
              "bin": bytes(range(256)), "empty": b""}
    with d.raw() as c:
        for k, v in values.items():
            c.cmd("SET", k, v)
        c.cmd("APPEND", "appended", "abc")
        c.cmd("APPEND", "appended", "def")
        c.cmd("INCRBYFLOAT", "float", "3")
        for k in list(values) + ["appended", "float"]:
            payload = _d(c.cmd("DUMP", k))
            assert c.cmd("RESTORE", "copy:" + k, "0", payload) == b"+OK\r\n"
            assert c.cmd("GET", "copy:" + k) == c.cmd("GET", k)
            # A restored string is encoded as a SET of it would be.
            c.cmd("SET", "set:" + k, _d(c.cmd("GET", k)))
            assert c.cmd("OBJECT", "ENCODING", "copy:" + k) == \
                c.cmd("OBJECT", "ENCODING", "set:" + k), k
            assert c.cmd("TTL", "copy:" + k) == b":-1\r\n"
        payload = _d(c.cmd("DUMP", "emb"))
        assert c.cmd("RESTORE", "emb", "0", payload) == \
            b"-BUSYKEY Target key name already exists.\r\n"
        c.cmd("SET", "emb", "other")
        assert c.cmd("RESTORE", "emb", "0", payload, "REPLACE") == b"+OK\r\n"
        assert c.cmd("GET", "emb") == b"$5\r\nhello\r\n"
        # TTL: relative, absolute, already past (with REPLACE: the key goes).
        assert c.cmd("RESTORE", "ttl", "100000", payload) == b"+OK\r\n"
        assert 90 <= _d(c.cmd("TTL", "ttl")) <= 100
        at = int(time.time() * 1000) + 200000
        assert c.cmd("RESTORE", "abs", str(at), payload, "ABSTTL") == b"+OK\r\n"
        assert _d(c.cmd("PEXPIRETIME", "abs")) == at
        assert c.cmd("RESTORE", "abs", "1", payload, "ABSTTL", "REPLACE") == b"+OK\r\n"
        assert c.cmd("EXISTS", "abs") == b":0\r\n"
        assert c.cmd("RESTORE", "idle", "0", payload, "IDLETIME", "1000") == b"+OK\r\n"
        assert 1000 <= _d(c.cmd("OBJECT", "IDLETIME", "idle")) <= 1010
        assert c.cmd("RESTORE", "freq", "0", payload, "FREQ", "5") == b"+OK\r\n"
        assert c.cmd("GET", "freq") == b"$5\r\nhello\r\n"


def test_restore_refuses_foreign_and_tampered_payloads(cohortd):
    d = cohortd()
    wrong = b"-ERR DUMP payload version or checksum are wrong\r\n"
    with d.raw() as c:
        c.cmd("SET", "k", "some value")
        payload = _d(c.cmd("DUMP", "k"))
        for i in range(len(payload)):
            bad = bytearray(payload)
            bad[i] ^= 0x01
            assert c.cmd("RESTORE", "t%d" % i, "0", bytes(bad)) == wrong, i
        assert c.cmd("RESTORE", "short", "0", payload[:-1]) == wrong
        assert c.cmd("RESTORE", "long", "0", payload + b"\x00") == wrong
        assert c.cmd("DBSIZE") == b":1\r\n"
        if FLAVOR == "cohort":
            assert c.cmd("RESTORE", "redis", "0", REDIS_DUMP_OF_V) == wrong


def test_config_set_maxmemory_evicts(cohortd):
    d = cohortd()
    with d.raw() as c:
        base = int(d.info("memory")["used_memory"])
        helpers.pipeline_raw(d.port, [helpers.encode("SET", "k%d" % i, "x" * 1000)
                                      for i in range(2000)])
        assert _d(c.cmd("DBSIZE")) == 2000
        limit = (base // 1024 + 1024) * 1024  # 1 MB above the empty server's
        assert c.cmd("CONFIG", "SET", "maxmemory", "%dkb" % (limit // 1024),
                     "maxmemory-policy", "allkeys-lru") == b"+OK\r\n"
        got = _d(c.cmd("CONFIG", "GET", "maxmemory"))
        assert got in ([b"maxmemory", b"%d" % limit], {b"maxmemory": b"%d" % limit}), got
        c.cmd("SET", "trigger", "x")  # redis-server evicts before a command
        mem = d.info("memory")
        assert int(mem["maxmemory"]) == limit
        keys = _d(c.cmd("DBSIZE"))
        assert 100 < keys < 1500, keys
        assert _d(c.cmd("GET", "trigger")) == b"x"
        assert c.cmd("CONFIG", "SET", "maxmemory", "0") == b"+OK\r\n"
        if FLAVOR == "cohort":
            assert int(mem["used_memory"]) <= limit
            assert c.cmd("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu") == b"+OK\r\n"
            assert d.info("memory")["maxmemory_policy"] == "allkeys-lfu"  # test_eviction_policies


def test_config_set_timeout_closes_idle_clients(cohortd):
    d = cohortd()
    with d.raw() as idle, d.raw() as c:
        assert idle.cmd("PING") == b"+PONG\r\n"
        assert c.cmd("CONFIG", "SET", "timeout", "1") == b"+OK\r\n"
        assert _d(c.cmd("CONFIG", "GET", "timeout")) in ([b"timeout", b"1"], {b"timeout": b"1"})
        idle.read_until_closed(timeout=scaled(10))
    with d.raw() as c:
        assert c.cmd("CONFIG", "SET", "timeout", "0") == b"+OK\r\n"
    with d.raw() as later:
        time.sleep(2.5)
        assert later.cmd("PING") == b"+PONG\r\n"


def test_info_fields_clients_read(cohortd):
    d = cohortd()
    with d.raw() as c:
        info = helpers.info_dict(c.cmd("INFO"))
        assert info["role"] == "master"
        assert info["loading"] == "0"
        assert info["cluster_enabled"] == "0"
        assert int(info["used_memory_peak"]) >= int(info["used_memory"]) > 0
        assert info["used_memory_peak_human"]
        assert float(info["mem_fragmentation_ratio"]) > 0
        assert int(info["instantaneous_ops_per_sec"]) >= 0
        text = _d(c.cmd("INFO")).decode()
        for section in ("# Persistence", "# Replication", "# Cluster"):
            assert section + "\r\n" in text
        # A steady load shows in instantaneous_ops_per_sec.
        deadline = time.monotonic() + scaled(3)
        while time.monotonic() < deadline:
            c.send(helpers.encode("PING") * 200)
            for _ in range(200):
                c.read_reply()
        ops = int(helpers.info_dict(c.cmd("INFO", "stats"))["instantaneous_ops_per_sec"])
        assert ops > 100, ops
        # The peak stays when memory goes down.
        helpers.pipeline_raw(d.port, [helpers.encode("SET", "k%d" % i, "x" * 1000)
                                      for i in range(500)])
        peak = int(helpers.info_dict(c.cmd("INFO", "memory"))["used_memory_peak"])
        c.cmd("FLUSHALL")
        time.sleep(0.2)
        mem = helpers.info_dict(c.cmd("INFO", "memory"))
        assert int(mem["used_memory_peak"]) >= peak > int(mem["used_memory"])
        assert _d(c.cmd("ROLE")) == [b"master", 0, []]
        assert _d(c.cmd("WAIT", "0", "0")) == 0
        assert _d(c.cmd("LASTSAVE")) <= time.time() + 1


def test_config_resetstat(cohortd):
    d = cohortd()
    with d.raw() as c:
        c.cmd("SET", "a", "1")
        c.cmd("GET", "a")
        c.cmd("GET", "b")
        s = helpers.info_dict(c.cmd("INFO", "stats"))
        assert int(s["keyspace_hits"]) >= 1 and int(s["keyspace_misses"]) >= 1
        assert c.cmd("CONFIG", "RESETSTAT") == b"+OK\r\n"
        s = helpers.info_dict(c.cmd("INFO", "stats"))
        assert s["keyspace_hits"] == "0" and s["keyspace_misses"] == "0"
        stats = _d(c.cmd("INFO", "commandstats")).decode()
        assert "cmdstat_get" not in stats and "cmdstat_set" not in stats, stats


@pytest.mark.cohort_only
def test_wait_replies_at_once(cohortd):
    d = cohortd()
    with d.raw() as c:
        t0 = time.monotonic()
        assert c.cmd("WAIT", "3", "0") == b":0\r\n"
        assert time.monotonic() - t0 < scaled(5)


@pytest.mark.cohort_only
def test_value_growth_bounded_by_max_bulk_len(cohortd):
    """APPEND, SETRANGE and LCS's table are bounded by max_bulk_len (redis-server's
    proto-max-bulk-len), with redis-server's errors."""
    d = cohortd(config={"client": {"max_bulk_len": "1mb"}})
    too_big = b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"
    with d.raw() as c:
        half = "x" * (512 * 1024)
        assert c.cmd("APPEND", "a", half) == b":524288\r\n"
        assert c.cmd("APPEND", "a", half) == b":1048576\r\n"
        assert c.cmd("APPEND", "a", "y") == too_big
        assert c.cmd("STRLEN", "a") == b":1048576\r\n"
        assert c.cmd("SETRANGE", "s", str(1024 * 1024), "x") == too_big
        assert c.cmd("SETRANGE", "s", str(1024 * 1024 - 1), "x") == b":1048576\r\n"
        assert c.cmd("EXISTS", "s") == b":1\r\n"
        c.cmd("SET", "l1", "a" * 1000)
        c.cmd("SET", "l2", "b" * 1000)
        assert c.cmd("LCS", "l1", "l2") == (
            b"-ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len\r\n")
        c.cmd("SET", "l2", "a" * 400)
        assert c.cmd("LCS", "l2", "l2", "LEN") == b":400\r\n"
        assert c.cmd("PING") == b"+PONG\r\n"
