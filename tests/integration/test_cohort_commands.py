"""cohort's own commands on one node: FLUSHPREFIX, SEED, GETL/SETL and
COHORT.STATUS."""

import time

import pytest

import helpers
from conftest import scaled

pytestmark = pytest.mark.cohort_only


def _load_site_map(port):
    """110,000 keys sn:/A/B/C: 110 top folders x 10 x 100."""
    reqs = (helpers.encode("SET", "sn:/%d/%d/%d" % (a, b, c), "node %d.%d.%d" % (a, b, c))
            for a in range(110) for b in range(10) for c in range(100))
    got, errors, first = helpers.pipeline_raw(port, reqs, timeout=scaled(60))
    assert (got, errors) == (110000, 0), first


@pytest.mark.slow
def test_flushprefix_site_map_subtree(cohortd):
    d = cohortd()
    _load_site_map(d.port)
    with d.raw(timeout=30) as c:
        # Keys that share the text but not the folder stay.
        assert c.cmd("SET", "sn:/7", "the folder node itself") == b"+OK\r\n"
        assert c.cmd("SET", "sn:/7x", "a sibling") == b"+OK\r\n"
        assert c.cmd("DBSIZE") == b":110002\r\n"
        t0 = time.monotonic()
        assert c.cmd("FLUSHPREFIX", "sn:/7/") == b":1000\r\n"
        took = time.monotonic() - t0
        assert c.cmd("DBSIZE") == b":109002\r\n"
        # Nothing of the subtree is left, everything else is.
        assert helpers.decode1(c.cmd("KEYS", "sn:/7/*")) == []
        assert c.cmd("EXISTS", "sn:/7/0/0", "sn:/7/9/99", "sn:/7/5/50") == b":0\r\n"
        assert c.cmd("EXISTS", "sn:/70/0/0", "sn:/77/9/99", "sn:/6/9/99", "sn:/8/0/0",
                     "sn:/7", "sn:/7x") == b":6\r\n"
        assert c.cmd("GET", "sn:/71/2/3") == b"$11\r\nnode 71.2.3\r\n"
        # A deeper subtree of another folder: 100 keys.
        assert c.cmd("FLUSHPREFIX", "sn:/42/3/") == b":100\r\n"
        assert c.cmd("EXISTS", "sn:/42/3/0", "sn:/42/4/0") == b":1\r\n"
        # Again, and an unknown prefix: nothing to remove.
        assert c.cmd("FLUSHPREFIX", "sn:/7/") == b":0\r\n"
        assert c.cmd("FLUSHPREFIX", "nosuchprefix:") == b":0\r\n"
        assert c.cmd("DBSIZE") == b":108902\r\n"
        # Cost grows with what is removed, not with the cache (a loose bound:
        # a whole-table walk would also pass on a fast machine, the exact
        # count above is what matters).
        assert took < scaled(1.0), took
    assert int(d.info("stats")["keyspace_hits"]) >= 1


def test_flushprefix_small(cohortd):
    d = cohortd()
    with d.raw() as c:
        c.cmd("MSET", "user:1:a", "1", "user:1:b", "2", "user:10:a", "3", "user:2:a", "4",
              "user:1", "5")
        assert c.cmd("FLUSHPREFIX", "user:1:") == b":2\r\n"
        assert sorted(helpers.decode1(c.cmd("KEYS", "*"))) == [b"user:1", b"user:10:a", b"user:2:a"]
        # Expired keys under the prefix are not counted as removed.
        c.cmd("SET", "tmp:x", "v", "PX", 20)
        c.cmd("SET", "tmp:y", "v")
        time.sleep(0.05)
        assert c.cmd("FLUSHPREFIX", "tmp:") == b":1\r\n"
        # Binary prefixes.
        c.cmd("SET", b"\x00\xffa", "1")
        c.cmd("SET", b"\x00\xffb", "2")
        c.cmd("SET", b"\x00\xfe", "3")
        assert c.cmd("FLUSHPREFIX", b"\x00\xff") == b":2\r\n"
        assert c.cmd("EXISTS", b"\x00\xfe") == b":1\r\n"
        # Arity.
        assert c.cmd("FLUSHPREFIX") == b"-ERR wrong number of arguments for 'flushprefix' command\r\n"
        assert c.cmd("FLUSHPREFIX", "a", "b") == b"-ERR syntax error\r\n"
        assert c.cmd("FLUSHPREFIX", "a", "async", "x") == b"-ERR syntax error\r\n"
        # ASYNC: OK without the count; the keys are gone all the same.
        c.cmd("MSET", "as:1", "1", "as:2", "2", "ast", "3")
        assert c.cmd("FLUSHPREFIX", "as:", "ASYNC") == b"+OK\r\n"
        assert c.cmd("EXISTS", "as:1", "as:2", "ast") == b":1\r\n"
        assert c.cmd("DBSIZE") == b":5\r\n"
        # In RESP3 the reply is the same integer.
        c.cmd("HELLO", "3")
        c.cmd("SET", "r3:a", "1")
        assert c.cmd("FLUSHPREFIX", "r3:") == b":1\r\n"


def test_seed_like_set(cohortd):
    d = cohortd()
    with d.raw() as c:
        assert c.cmd("SEED", "s", "v1") == b"+OK\r\n"
        assert c.cmd("GET", "s") == b"$2\r\nv1\r\n"
        assert c.cmd("TTL", "s") == b":-1\r\n"
        assert c.cmd("SEED", "s", "v2", "EX", "100") == b"+OK\r\n"
        assert c.cmd("GET", "s") == b"$2\r\nv2\r\n"
        ttl = helpers.decode1(c.cmd("TTL", "s"))
        assert 98 <= ttl <= 100, ttl
        assert c.cmd("SEED", "p", "v3", "PX", "100000") == b"+OK\r\n"
        pttl = helpers.decode1(c.cmd("PTTL", "p"))
        assert 98000 <= pttl <= 100000, pttl
        assert c.cmd("SEED", "short", "v", "PX", "50") == b"+OK\r\n"
        time.sleep(0.1)
        assert c.cmd("GET", "short") == b"$-1\r\n"
        # A SEED replaces the TTL like SET does.
        assert c.cmd("SEED", "p", "v4") == b"+OK\r\n"
        assert c.cmd("TTL", "p") == b":-1\r\n"
        assert c.cmd("SEED", "bin\x00", b"\x00\xff") == b"+OK\r\n"
        assert c.cmd("GET", "bin\x00") == b"$2\r\n\x00\xff\r\n"
        # Errors as SET gives them.
        assert c.cmd("SEED", "s", "v", "EX", "0") == b"-ERR invalid expire time in 'seed' command\r\n"
        assert c.cmd("SEED", "s", "v", "EX", "abc") == b"-ERR value is not an integer or out of range\r\n"
        assert c.cmd("SEED", "s", "v", "EX", "10", "PX", "10") == b"-ERR syntax error\r\n"
        assert c.cmd("SEED", "s", "v", "FOO") == b"-ERR syntax error\r\n"
        assert c.cmd("SEED", "s") == b"-ERR wrong number of arguments for 'seed' command\r\n"
        assert c.cmd("SEED") == b"-ERR wrong number of arguments for 'seed' command\r\n"
        assert c.cmd("GET", "s") == b"$2\r\nv2\r\n"


def getl(c, key):
    """Returns (value or None, token bytes); checks the reply's shape."""
    raw = c.cmd("GETL", key)
    assert raw.startswith(b"*2\r\n"), raw
    v = helpers.decode1(raw)
    assert isinstance(v[1], bytes) and v[1], raw
    return v[0], v[1]


def test_getl_shape(cohortd):
    d = cohortd()
    with d.raw() as c:
        raw = c.cmd("GETL", "missing")
        assert raw.startswith(b"*2\r\n$-1\r\n$"), raw
        c.cmd("SET", "k", "val")
        raw = c.cmd("GETL", "k")
        assert raw.startswith(b"*2\r\n$3\r\nval\r\n$"), raw
        c.cmd("HELLO", "3")
        raw = c.cmd("GETL", "missing")
        assert raw.startswith(b"*2\r\n_\r\n$"), raw
        # Tokens never go backwards.
        t1 = getl(c, "k")[1]
        c.cmd("DEL", "other")
        t2 = getl(c, "k")[1]
        assert int(t2) >= int(t1)
        assert c.cmd("GETL") == b"-ERR wrong number of arguments for 'getl' command\r\n"
        assert c.cmd("GETL", "a", "b") == b"-ERR wrong number of arguments for 'getl' command\r\n"


def test_setl_accepted_without_flush(cohortd):
    d = cohortd()
    with d.raw() as c:
        v, tok = getl(c, "page:1")
        assert v is None
        # Other keys and plain fills in between do not matter.
        c.cmd("SET", "page:1", "someone else's fill")
        c.cmd("SET", "page:2", "x")
        c.cmd("DEL", "page:2")
        assert c.cmd("SETL", "page:1", tok, "rendered") == b"+OK\r\n"
        assert c.cmd("GET", "page:1") == b"$8\r\nrendered\r\n"
        v, tok = getl(c, "page:1")
        assert v == b"rendered"
        assert c.cmd("SETL", "page:1", tok, "again", "EX", "100") == b"+OK\r\n"
        ttl = helpers.decode1(c.cmd("TTL", "page:1"))
        assert 98 <= ttl <= 100
        v, tok = getl(c, "page:1")
        assert c.cmd("SETL", "page:1", tok, "px", "PX", "100000") == b"+OK\r\n"
        assert 98000 <= helpers.decode1(c.cmd("PTTL", "page:1")) <= 100000


KEY = "sn:/a/b"      # the key filled through GETL/SETL
OTHER = "sn:/x/y"    # another key, filled at the same time

FLUSHES = [
    ("DEL", lambda c: c.cmd("DEL", KEY)),
    ("UNLINK", lambda c: c.cmd("UNLINK", KEY)),
    ("GETDEL", lambda c: c.cmd("GETDEL", KEY)),
    ("FLUSHPREFIX", lambda c: c.cmd("FLUSHPREFIX", "sn:/a/")),
    ("FLUSHPREFIX-whole-key", lambda c: c.cmd("FLUSHPREFIX", KEY)),
    ("FLUSHALL", lambda c: c.cmd("FLUSHALL")),
    ("FLUSHDB", lambda c: c.cmd("FLUSHDB")),
    ("EXPIRE-0", lambda c: c.cmd("EXPIRE", KEY, "0")),
    ("PEXPIRE-negative", lambda c: c.cmd("PEXPIRE", KEY, "-1")),
    # The classic race: the key is not cached, the fill reads the database,
    # an update flushes the (absent) key, the stale fill arrives.
    ("DEL-of-absent-key", lambda c: c.cmd("DEL", KEY)),
    ("FLUSHPREFIX-of-absent-key", lambda c: c.cmd("FLUSHPREFIX", "sn:/")),
]


@pytest.mark.parametrize("name,flush", FLUSHES, ids=[f[0] for f in FLUSHES])
def test_setl_refused_after_flush(cohortd_module, name, flush):
    d = _shared(cohortd_module)
    with d.raw() as c:
        c.cmd("FLUSHALL")
        if "absent" not in name:
            assert c.cmd("SET", KEY, "old") == b"+OK\r\n"
        v, tok = getl(c, KEY)
        assert v == (None if "absent" in name else b"old")
        _, tok_other = getl(c, OTHER)
        flush(c)
        # The fill that raced the flush is refused; nothing is stored.
        assert c.cmd("SETL", KEY, tok, "stale") == b"$-1\r\n"
        assert c.cmd("GET", KEY) == b"$-1\r\n"
        if name in ("DEL", "UNLINK", "GETDEL", "FLUSHPREFIX", "FLUSHPREFIX-whole-key", "EXPIRE-0",
                    "PEXPIRE-negative", "DEL-of-absent-key"):
            # A fill of a key the flush did not cover is not refused.
            assert c.cmd("SETL", OTHER, tok_other, "fresh") == b"+OK\r\n"
            assert c.cmd("GET", OTHER) == b"$5\r\nfresh\r\n"
        else:
            assert c.cmd("SETL", OTHER, tok_other, "fresh") == b"$-1\r\n"
        # A token taken after the flush works.
        _, tok2 = getl(c, KEY)
        assert c.cmd("SETL", KEY, tok2, "new") == b"+OK\r\n"
        assert c.cmd("GET", KEY) == b"$3\r\nnew\r\n"
        # In RESP3 a refusal is the RESP3 null.
        c.cmd("HELLO", "3")
        _, tok3 = getl(c, KEY)
        flush(c)
        assert c.cmd("SETL", KEY, tok3, "stale") == b"_\r\n"


def test_setl_not_refused_by_non_flushes(cohortd):
    d = cohortd()
    with d.raw() as c:
        c.cmd("SET", "k", "v")
        _, tok = getl(c, "k")
        # Fills, reads and TTL changes are not flushes.
        c.cmd("SET", "k", "w")
        c.cmd("GET", "k")
        c.cmd("EXPIRE", "k", "100")
        c.cmd("PERSIST", "k")
        c.cmd("SETEX", "k", "100", "x")
        c.cmd("FLUSHPREFIX", "kk")
        c.cmd("FLUSHPREFIX", "other:")
        c.cmd("DEL", "k2")
        assert c.cmd("SETL", "k", tok, "filled") == b"+OK\r\n"
        # A flush of the key before the GETL does not refuse the token.
        c.cmd("DEL", "k")
        _, tok = getl(c, "k")
        assert c.cmd("SETL", "k", tok, "after") == b"+OK\r\n"


def test_setl_errors(cohortd):
    d = cohortd()
    with d.raw() as c:
        _, tok = getl(c, "k")
        assert c.cmd("SETL", "k", tok) == b"-ERR wrong number of arguments for 'setl' command\r\n"
        assert c.cmd("SETL") == b"-ERR wrong number of arguments for 'setl' command\r\n"
        assert c.cmd("SETL", "k", tok, "v", "EX", "0") == b"-ERR invalid expire time in 'setl' command\r\n"
        assert c.cmd("SETL", "k", tok, "v", "EX") == b"-ERR syntax error\r\n"
        assert c.cmd("SETL", "k", tok, "v", "FOO") == b"-ERR syntax error\r\n"
        # A token that was never issued is not accepted as a fill.
        for bad in (b"abc", b"", b"-1", b"99999999999999999999999"):
            r = c.cmd("SETL", "k", bad, "v")
            assert r != b"+OK\r\n", (bad, r)
        future = str(int(tok) + 10**9).encode()
        r = c.cmd("SETL", "k", future, "v")
        assert r != b"+OK\r\n", r
        assert c.cmd("GET", "k") == b"$-1\r\n"


def test_cohort_status(cohortd):
    d = cohortd(name="statusnode")
    with d.raw() as c:
        raw = c.cmd("COHORT.STATUS")
        assert raw[:1] not in (b"-", b"_") and raw != b"$-1\r\n", raw
        assert b"statusnode" in raw, raw
        assert c.cmd("cohort.status")[:1] not in (b"-",)


def _shared(manager):
    for d in manager.daemons:
        if d.name == "cohort-shared" and d.alive():
            return d
    return manager(name="cohort-shared")
