"""INFO, CLIENT and COMMAND: what clients and monitors read about the server.

Their content describes the server and differs from redis-server's by design,
so it is checked field by field here; their error replies are compared with
redis-server's byte for byte."""

import re

import pytest

import helpers


def test_info_sections(cohortd):
    d = cohortd()
    with d.raw() as c:
        raw = c.cmd("INFO")
        text = helpers.decode1(raw).decode()
        for section in ("# Server", "# Clients", "# Memory", "# Stats", "# Keyspace"):
            assert section + "\r\n" in text, (section, text[:500])
        for line in text.split("\r\n"):
            assert line == "" or line.startswith("# ") or re.match(r"^[a-z0-9_]+:", line), line
        server = helpers.info_dict(c.cmd("INFO", "server"))
        assert server["redis_version"].startswith("7."), server["redis_version"]
        assert int(server["tcp_port"]) == d.port
        assert int(server["process_id"]) == d.pid
        assert re.fullmatch(r"[0-9a-f]{40}", server["run_id"]), server["run_id"]
        assert int(server["uptime_in_seconds"]) >= 0
        # A section name is case-insensitive; an unknown one is empty.
        assert "redis_version" in helpers.info_dict(c.cmd("INFO", "SERVER"))
        assert c.cmd("INFO", "nosuchsection") == b"$0\r\n\r\n"
        mem = helpers.info_dict(c.cmd("INFO", "memory"))
        assert int(mem["used_memory"]) > 0
        assert int(mem["maxmemory"]) == 0
        # RESP3: a verbatim string, same content.
        c.cmd("HELLO", "3")
        raw3 = c.cmd("INFO", "server")
        assert raw3[:1] == b"=" and b"txt:# Server\r\n" in raw3, raw3[:100]


def test_info_stats_counts(cohortd):
    d = cohortd()
    s0 = d.info("stats")
    with d.raw() as c:
        c.cmd("MSET", "a", "1", "b", "2", "c", "3")
        for k in ("a", "b", "c", "a", "b"):
            assert c.cmd("GET", k)[:1] == b"$"
        for k in ("x", "y", "z"):
            assert c.cmd("GET", k) == b"$-1\r\n"
        assert c.cmd("MGET", "a", "nope") == b"*2\r\n$1\r\n1\r\n$-1\r\n"
    s1 = d.info("stats")
    assert int(s1["keyspace_hits"]) - int(s0["keyspace_hits"]) == 6
    assert int(s1["keyspace_misses"]) - int(s0["keyspace_misses"]) == 4
    assert int(s1["total_connections_received"]) - int(s0["total_connections_received"]) == 2
    # MSET, 8 GETs, MGET; plus one of the two INFOs (one that counts itself
    # only after its reply shows the first, else the second).
    done = int(s1["total_commands_processed"]) - int(s0["total_commands_processed"])
    assert done == 11, done
    assert int(s1["evicted_keys"]) == 0
    assert int(s1["expired_keys"]) == 0


def test_info_keyspace(cohortd):
    d = cohortd()
    assert "db0" not in d.info("keyspace")
    with d.raw() as c:
        c.cmd("MSET", "a", "1", "b", "2", "c", "3")
        c.cmd("EXPIRE", "a", "100")
        ks = helpers.info_dict(c.cmd("INFO", "keyspace"))
        assert re.match(r"^keys=3,expires=1,avg_ttl=\d+$", ks["db0"]), ks
        c.cmd("FLUSHALL")
    assert "db0" not in d.info("keyspace")


def test_info_clients(cohortd):
    d = cohortd()
    conns = [d.raw() for _ in range(3)]
    try:
        for c in conns:
            assert c.cmd("PING") == b"+PONG\r\n"
        assert int(d.info("clients")["connected_clients"]) == 4
    finally:
        for c in conns:
            c.close()


def test_client_commands(cohortd):
    d = cohortd()
    with d.raw() as a, d.raw() as b:
        ida = helpers.decode1(a.cmd("CLIENT", "ID"))
        idb = helpers.decode1(b.cmd("CLIENT", "ID"))
        assert isinstance(ida, int) and isinstance(idb, int) and ida != idb
        assert a.cmd("CLIENT", "GETNAME") == b"$-1\r\n"
        assert a.cmd("CLIENT", "SETNAME", "worker-1") == b"+OK\r\n"
        assert a.cmd("CLIENT", "GETNAME") == b"$8\r\nworker-1\r\n"
        assert b.cmd("client", "setname", "other") == b"+OK\r\n"
        listing = helpers.decode1(a.cmd("CLIENT", "LIST")).decode()
        lines = [l for l in listing.split("\n") if l.strip()]
        assert len(lines) == 2, listing
        by_id = {}
        for line in lines:
            fields = dict(f.split("=", 1) for f in line.split(" ") if "=" in f)
            by_id[int(fields["id"])] = fields
            assert fields["addr"].startswith("127.0.0.1:")
        assert by_id[ida]["name"] == "worker-1"
        assert by_id[idb]["name"] == "other"
        # An empty name clears it.
        assert a.cmd("CLIENT", "SETNAME", "") == b"+OK\r\n"
        assert a.cmd("CLIENT", "GETNAME") == b"$-1\r\n"
        # HELLO's id is CLIENT ID.
        hello = helpers.decode1(a.cmd("HELLO", "3"))
        assert hello[b"id"] == ida


def test_command_introspection(cohortd):
    d = cohortd()
    with d.raw() as c:
        n = helpers.decode1(c.cmd("COMMAND", "COUNT"))
        assert isinstance(n, int) and n >= 30
        info = helpers.decode1(c.cmd("COMMAND", "INFO", "get", "set", "nosuchcmd"))
        assert info[0][0] == b"get" and info[0][1] == 2
        assert info[1][0] == b"set" and info[1][1] == -3
        assert info[2] is None
        # Key positions (first, last, step) as redis-server declares them.
        want = {"get": [1, 1, 1], "rename": [1, 2, 1], "mset": [1, -1, 2], "del": [1, -1, 1],
                "lcs": [1, 2, 1], "ping": [0, 0, 0], "incr": [1, 1, 1], "touch": [1, -1, 1],
                "copy": [1, 2, 1], "restore": [1, 1, 1], "flushall": [0, 0, 0],
                "object": [0, 0, 0], "wait": [0, 0, 0]}
        got = helpers.decode1(c.cmd("COMMAND", "INFO", *want))
        assert {e[0].decode(): e[3:6] for e in got} == want
        docs = helpers.decode1(c.cmd("COMMAND", "DOCS", "get"))
        docs = dict(zip(docs[0::2], docs[1::2])) if isinstance(docs, list) else docs
        assert b"get" in docs


@pytest.mark.cohort_only
def test_command_docs_of_cohort_commands(cohortd):
    d = cohortd()
    with d.raw() as c:
        c.cmd("HELLO", "3")
        for name in ("flushprefix", "seed", "getl", "setl", "cohort.status"):
            docs = helpers.decode1(c.cmd("COMMAND", "DOCS", name))
            assert isinstance(docs, dict) and name.encode() in docs, (name, docs)
            entry = docs[name.encode()]
            assert entry.get(b"summary"), (name, entry)


ERRORS = [
    ("CLIENT",),
    ("CLIENT", "BOGUS"),
    ("CLIENT", "SETNAME", "a b"),
    ("CLIENT", "SETNAME", "a\nb"),
    ("CLIENT", "SETNAME"),
    ("CLIENT", "GETNAME", "x"),
    ("CLIENT", "ID", "x"),
    ("COMMAND", "BOGUS"),
    ("COMMAND", "COUNT", "x"),
    ("INFO", "nosuchsection"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_errors_like_redis(cohortd, redis_server, proto):
    d = cohortd()
    diffs = []
    with d.raw() as a, redis_server.raw() as b:
        if proto == 3:
            a.cmd("HELLO", "3")
            b.cmd("HELLO", "3")
        for cmd in ERRORS:
            ra, rb = a.cmd(*cmd), b.cmd(*cmd)
            if ra != rb:
                diffs.append("%s\n   cohortd:      %r\n   redis-server: %r" % (" ".join(cmd), ra, rb))
    assert not diffs, "\n".join(diffs)
