"""Django's cache and cache-backed sessions (django_redis) on a 3-node cohort
cluster, one connection per node: run by test_write_modes_clients.py.

Owns: a Django settings object (configured in this process only) with one
django_redis cache per node, and the checks below.
Never: starts or stops a server, or talks to anything but 127.0.0.1.

Run: python3 django_write_modes.py PORT1 PORT2 PORT3 (every key replicated).
Prints "ok NAME" per check; raises (exit 1) on the first failure.
"""

import sys

import django
from django.conf import settings

PORTS = [int(p) for p in sys.argv[1:4]]
assert len(PORTS) == 3, "usage: django_write_modes.py PORT1 PORT2 PORT3"

settings.configure(
    SECRET_KEY="cohort-test-only",
    USE_TZ=True,
    INSTALLED_APPS=["django.contrib.sessions"],
    SESSION_ENGINE="django.contrib.sessions.backends.cache",
    SESSION_CACHE_ALIAS="default",
    CACHES={
        name: {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:%d/0" % port,
            "OPTIONS": {"SOCKET_TIMEOUT": 10, "SOCKET_CONNECT_TIMEOUT": 10},
        }
        for name, port in zip(["default", "b", "c"], PORTS)
    },
)
django.setup()

from django.contrib.sessions.backends.cache import SessionStore  # noqa: E402
from django.core.cache import caches  # noqa: E402

A, B, C = caches["default"], caches["b"], caches["c"]


def session_on(alias):
    """A SessionStore class whose cache is the node `alias` (the app host
    that handles the request)."""

    class Store(SessionStore):
        def __init__(self, session_key=None):
            super().__init__(session_key)
            self._cache = caches[alias]

    return Store


def ok(name):
    print("ok", name, flush=True)


# write-through: cache.set on A, cache.get on B and C
A.set("article:7", {"title": "old"}, 300)
assert B.get("article:7") == {"title": "old"}
A.set("article:7", {"title": "new"}, 300)
assert B.get("article:7") == {"title": "new"}, B.get("article:7")
assert C.get("article:7") == {"title": "new"}
assert 200 < C.ttl("article:7") <= 300, C.ttl("article:7")
C.delete("article:7")
assert A.get("article:7") is None and B.get("article:7") is None
A.set("m:1", 1, 300)
A.set("m:2", [2], 300)
assert C.get_many(["m:1", "m:2"]) == {"m:1": 1, "m:2": [2]}  # MGET
ok("write-through cache.set on A, cache.get on B and C")

# a session created through A (login) is loaded through B (next request)
s = session_on("default")()
s["user_id"] = 42
s.create()
s.save()
key = s.session_key
sb = session_on("b")(session_key=key)
assert sb.get("user_id") == 42, dict(sb.items())
sb["cart"] = ["book"]
sb.save()
sc = session_on("c")(session_key=key)
assert sc.get("cart") == ["book"] and sc.get("user_id") == 42
assert session_on("default")(session_key=key).get("cart") == ["book"]
sc.flush()  # logout through C: gone everywhere
assert not session_on("b")().exists(key)
assert not session_on("default")().exists(key)
ok("session created through A is loaded through B, logout through C")

# counters: incr/decr through different nodes (django_redis runs INCRBY in a
# Lua script that checks EXISTS first)
A.set("hits", 0, None)
assert A.incr("hits") == 1
assert B.incr("hits") == 2
assert C.incr("hits", 5) == 7
assert A.decr("hits") == 6
for cache in (A, B, C):
    assert cache.get("hits") == 6
ok("counters with incr through different nodes")

# cache.add is SET NX: only the first node's add wins
assert A.add("once", "a", 60) is True
assert B.add("once", "b", 60) is False
assert C.get("once") == "a"
# a lock (redis-py's Lock: SET NX PX, Lua release)
la = A.lock("lock:nightly", timeout=10)
lb = B.lock("lock:nightly", timeout=10)
assert la.acquire(blocking=False) is True
assert lb.acquire(blocking=False) is False
assert C.lock("lock:nightly", timeout=10).acquire(blocking=False) is False
la.release()
assert lb.acquire(blocking=False) is True
lb.release()
ok("add and a lock (SET NX PX) through different nodes")
