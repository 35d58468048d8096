"""Databases and transactions end to end: what travels between members
carries its database (FLUSHDB, DEL, MOVE, FLUSHPREFIX on one node remove that
database's keys only, on every member), EXEC replies only once every flush of
the transaction is applied everywhere, and stock clients pointed at
redis://host:port/1 (redis-py, django-redis) work in database 1 only."""

import socket

import pytest

import helpers
from cluster_harness import CommandError, cluster_factory, requires_cohort  # noqa: F401

cohort_only = [requires_cohort, pytest.mark.cohort_only]


def select_fill(node, db, pairs):
    """SETs the pairs in database db of node (a fill of that node only)."""
    with node.conn() as c:
        assert c.call("SELECT", db) == b"OK"
        for k, v in pairs:
            assert c.call("SET", k, v) == b"OK"


def get_in(node, db, key):
    with node.conn() as c:
        c.call("SELECT", db)
        return c.call("GET", key)


class TestCluster:
    pytestmark = cohort_only

    def test_exec_replies_after_its_flushes(self, cluster_factory):
        cl = cluster_factory(2)
        n1, n2 = cl[0], cl[1]
        cl.fill([("k", "v"), ("j", "w")])
        with n1.conn() as c:
            assert c.call("MULTI") == b"OK"
            assert c.call("DEL", "k") == b"QUEUED"
            assert c.call("SET", "x", "1") == b"QUEUED"
            assert c.call("GETDEL", "j") == b"QUEUED"
            assert c.call("EXEC") == [1, b"OK", b"w"]
        # EXEC's reply came after n2 applied both flushes.
        assert n2.call("GET", "k") is None
        assert n2.call("GET", "j") is None
        assert n1.call("GET", "x") == b"1"

    def test_exec_reply_held_while_a_member_cannot_apply(self, cluster_factory):
        """With n2 stopped, EXEC's reply waits (its QUEUED replies do not):
        the flush is not applied there yet and n2's lease still holds."""
        cl = cluster_factory(2)
        n1, n2 = cl[0], cl[1]
        cl.fill([("k", "v")])
        with n1.conn() as c:
            assert c.call("MULTI") == b"OK"
            assert c.call("DEL", "k") == b"QUEUED"
            assert c.call("GET", "k") == b"QUEUED"
            n2.sigstop()
            try:
                c.raw.send(helpers.encode("EXEC"))
                # n2's lease on n1 runs for seconds: well past this wait.
                with pytest.raises(socket.timeout):
                    c.raw.read_reply(0.3)
            finally:
                n2.sigcont()
            assert helpers.decode1(c.raw.read_reply(10)) == [1, None]
        assert n2.call("GET", "k") is None

    def test_exec_abort_runs_nothing(self, cluster_factory):
        cl = cluster_factory(2)
        n1, n2 = cl[0], cl[1]
        cl.fill([("k", "v")])
        with n1.conn() as c:
            assert c.call("MULTI") == b"OK"
            assert c.call("DEL", "k") == b"QUEUED"
            with pytest.raises(CommandError, match="unknown command"):
                c.call("NOSUCH")
            with pytest.raises(CommandError, match="EXECABORT"):
                c.call("EXEC")
        assert cl.get_all("k") == {n1.name: b"v", n2.name: b"v"}

    def test_flushdb_removes_that_database_on_every_member(self, cluster_factory):
        cl = cluster_factory(2)
        n1, n2 = cl[0], cl[1]
        for n in cl:
            select_fill(n, 0, [("a", "zero"), ("b", "zero")])
            select_fill(n, 1, [("a", "one"), ("c", "one")])
        with n1.conn() as c:
            c.call("SELECT", 1)
            assert c.call("FLUSHDB") == b"OK"
            assert c.call("DBSIZE") == 0
        with n2.conn() as c:
            c.call("SELECT", 1)
            assert c.call("DBSIZE") == 0
            assert c.call("KEYS", "*") == []
            c.call("SELECT", 0)
            assert c.call("DBSIZE") == 2
            assert c.call("MGET", "a", "b") == [b"zero", b"zero"]
        info = n2.info("keyspace")
        assert "db0" in info and "db1" not in info

    def test_del_and_flushprefix_carry_their_database(self, cluster_factory):
        cl = cluster_factory(2)
        n1, n2 = cl[0], cl[1]
        for n in cl:
            select_fill(n, 0, [("k", "zero"), ("p:1", "zero")])
            select_fill(n, 2, [("k", "two"), ("p:1", "two")])
        with n1.conn() as c:
            c.call("SELECT", 2)
            assert c.call("DEL", "k") == 1
            assert c.call("FLUSHPREFIX", "p:") == 1
        assert get_in(n2, 2, "k") is None and get_in(n2, 2, "p:1") is None
        assert get_in(n2, 0, "k") == b"zero" and get_in(n2, 0, "p:1") == b"zero"

    def test_move_flushes_the_source_everywhere(self, cluster_factory):
        cl = cluster_factory(2)
        n1, n2 = cl[0], cl[1]
        cl.fill([("k", "v")])
        select_fill(n2, 1, [("k", "n2-db1")])
        assert n1.call("MOVE", "k", 1) == 1
        assert cl.get_all("k") == {n1.name: None, n2.name: None}
        assert get_in(n1, 1, "k") == b"v"  # a fill of n1
        assert get_in(n2, 1, "k") == b"n2-db1"  # n2's own fill stays

    def test_swapdb_refused_in_a_cluster(self, cluster_factory):
        cl = cluster_factory(2)
        with pytest.raises(CommandError, match="not supported in a cluster"):
            cl[0].call("SWAPDB", 0, 1)


def test_redis_py_database_url(cohortd):
    redis = pytest.importorskip("redis")
    d = cohortd()
    r1 = redis.Redis.from_url("redis://%s:%d/1" % (helpers.HOST, d.port))
    r0 = redis.Redis.from_url("redis://%s:%d/0" % (helpers.HOST, d.port))
    try:
        assert r1.set("k", "one") and r0.set("k", "zero")
        assert r1.get("k") == b"one" and r0.get("k") == b"zero"
        assert r1.incr("n") == 1 and r0.get("n") is None
        with r1.pipeline(transaction=True) as p:
            p.set("a", 1).incr("a").get("a").delete("k")
            assert p.execute() == [True, 2, b"2", 1]
        assert r1.get("k") is None and r0.get("k") == b"zero"
        assert sorted(r1.keys("*")) == [b"a", b"n"]
        assert r1.dbsize() == 2 and r0.dbsize() == 1
        assert r1.info("keyspace")["db1"]["keys"] == 2
        assert r1.config_get("databases") == {"databases": "16"}
        assert [e["db"] for e in r1.client_list() if e["cmd"] == "client|list"] == ["1"]
        assert r1.move("a", 0) and r0.get("a") == b"2"
        assert r1.flushdb() and r1.dbsize() == 0 and r0.dbsize() == 2
    finally:
        r1.close()
        r0.close()


def test_django_redis_location_database(cohortd, tmp_path):
    pytest.importorskip("django_redis")
    import django
    from django.conf import settings

    d = cohortd()
    if not settings.configured:
        settings.configure(CACHES={})
        django.setup()
    from django_redis.cache import RedisCache

    cache = RedisCache("redis://%s:%d/1" % (helpers.HOST, d.port),
                       {"KEY_PREFIX": "app", "TIMEOUT": 300})
    try:
        cache.set("greeting", {"hello": "world"})
        assert cache.get("greeting") == {"hello": "world"}
        assert cache.add("greeting", "other") is False
        cache.set("hits", 1)
        assert cache.incr("hits", 5) == 6
        cache.set_many({"x": 1, "y": 2})
        assert cache.get_many(["x", "y", "z"]) == {"x": 1, "y": 2}
        assert cache.ttl("x") > 0
        with helpers.RawConn(d.port) as c:
            c.cmd(b"SELECT", b"1")
            with cache.lock("job", timeout=5):  # redis-py's Lock: SET NX PX, a Lua release
                assert c.cmd(b"EXISTS", b"app:1:job") == b":1\r\n"
            assert c.cmd(b"EXISTS", b"app:1:job") == b":0\r\n"
        cache.delete("x")
        assert cache.get("x") is None
        assert cache.get_or_set("made", lambda: "fresh") == "fresh"
        with helpers.RawConn(d.port) as c:
            assert c.cmd(b"DBSIZE") == b":0\r\n"  # nothing in database 0
            assert c.cmd(b"SELECT", b"1") == b"+OK\r\n"
            assert c.cmd(b"EXISTS", b"app:1:greeting") == b":1\r\n"
        cache.clear()
        assert cache.get("greeting") is None
    finally:
        cache.close()


@pytest.mark.cohort_only
def test_transaction_queue_is_bounded(cohortd):
    d = cohortd(config={"client": {"query_buffer_limit": "1mb"}})
    with helpers.RawConn(d.port, timeout=30) as c:
        assert c.cmd(b"MULTI") == b"+OK\r\n"
        value = b"v" * 1000
        c.send(b"".join(helpers.encode(b"SET", b"k%d" % i, value) for i in range(2000)))
        replies = [c.read_reply() for _ in range(2000)]
        assert replies[0] == b"+QUEUED\r\n"
        refused = [r for r in replies if r.startswith(b"-ERR transaction too large")]
        assert len(refused) == 1
        assert c.cmd(b"EXEC").startswith(b"-EXECABORT")
        assert c.cmd(b"DBSIZE") == b":0\r\n"
        assert c.cmd(b"PING") == b"+PONG\r\n"


@pytest.mark.cohort_only
def test_disconnect_inside_multi(cohortd):
    d = cohortd()
    s = socket.create_connection((helpers.HOST, d.port))
    s.sendall(helpers.encode(b"MULTI") + helpers.encode(b"SET", b"k", b"v"))
    s.recv(100)
    s.close()
    with helpers.RawConn(d.port) as c:
        assert c.cmd(b"GET", b"k") == b"$-1\r\n"
        assert c.cmd(b"EXEC") == b"-ERR EXEC without MULTI\r\n"


@pytest.mark.cohort_only
def test_databases_setting(cohortd):
    d = cohortd(config={"cache": {"databases": "4"}})
    with helpers.RawConn(d.port) as c:
        assert c.cmd(b"CONFIG", b"GET", b"databases") == b"*2\r\n$9\r\ndatabases\r\n$1\r\n4\r\n"
        assert c.cmd(b"SELECT", b"3") == b"+OK\r\n"
        assert c.cmd(b"SELECT", b"4") == b"-ERR DB index is out of range\r\n"
        assert c.cmd(b"SET", b"k", b"v") == b"+OK\r\n"
        assert c.cmd(b"SWAPDB", b"3", b"0") == b"+OK\r\n"  # one node: allowed
        assert c.cmd(b"DBSIZE") == b":0\r\n"
        assert c.cmd(b"RESET") == b"+RESET\r\n"
        assert c.cmd(b"GET", b"k") == b"$1\r\nv\r\n"  # back in database 0
