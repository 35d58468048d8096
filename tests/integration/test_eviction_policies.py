"""maxmemory-policy end to end, one test per policy, with a 1 MB cache and
1,000-byte values (about 800 keys fit): each policy evicts what redis-server
documents (https://redis.io/docs/reference/eviction/), noeviction and a
volatile-* policy with nothing volatile refuse writes that add memory with
redis-server's -OOM error while reads, deletions and TTL changes still run,
and the policy shows in CONFIG GET and INFO. Policies are set at start
([cache] maxmemory_policy) or with CONFIG SET."""

import time

import pytest

import helpers

pytestmark = pytest.mark.cohort_only  # redis-server counts a ~1 MB baseline in used_memory

MAXMEMORY = 1024 * 1024
VALUE = b"v" * 1000
OOM = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"


def start(cohortd, policy):
    d = cohortd(config={"cache": {"maxmemory": "1mb", "maxmemory_policy": policy}})
    return d


def evicted(d):
    return int(d.info("stats")["evicted_keys"])


def used(d):
    return int(d.info("memory")["used_memory"])


def set_all(c, keys, *opts):
    """SETs every key (pipelined); returns the replies."""
    c.send(b"".join(helpers.encode("SET", k, VALUE, *opts) for k in keys))
    return [c.read_reply() for _ in keys]


def present(c, keys):
    c.send(b"".join(helpers.encode("EXISTS", k) for k in keys))
    return [k for k in keys if c.read_reply() == b":1\r\n"]


def fill_until_evicted(d, c, prefix, want, *opts, limit=20000):
    """SETs prefix0, prefix1... in batches of 20 until at least want keys
    were evicted; returns the keys written."""
    keys = []
    while evicted(d) < want:
        assert len(keys) < limit, "nothing evicted after %d writes" % limit
        batch = ["%s%d" % (prefix, len(keys) + i) for i in range(20)]
        assert set(set_all(c, batch, *opts)) == {b"+OK\r\n"}
        keys += batch
    return keys


@pytest.mark.parametrize("policy", ["noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
                                    "volatile-lru", "volatile-lfu", "volatile-random",
                                    "volatile-ttl"])
def test_policy_from_config_and_config_set(cohortd, policy):
    d = start(cohortd, policy)
    with d.raw() as c:
        assert helpers.decode1(c.cmd("CONFIG", "GET", "maxmemory-policy")) == [
            b"maxmemory-policy", policy.encode()]
        assert d.info("memory")["maxmemory_policy"] == policy
        assert c.cmd("CONFIG", "SET", "maxmemory-policy", policy.upper()) == b"+OK\r\n"
        assert c.cmd("CONFIG", "SET", "maxmemory-policy", "allkeys-lru") == b"+OK\r\n"
        assert d.info("memory")["maxmemory_policy"] == "allkeys-lru"
        assert c.cmd("CONFIG", "SET", "maxmemory-policy", "lru").startswith(
            b"-ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - "
            b"argument(s) must be one of the following")


def test_noeviction_refuses_writes_and_keeps_every_key(cohortd):
    d = start(cohortd, "noeviction")
    with d.raw(timeout=30) as c:
        keys = []
        for i in range(5000):
            r = set_all(c, ["k%d" % i])[0]
            if r == OOM:
                break
            assert r == b"+OK\r\n", r
            keys.append("k%d" % i)
        else:
            pytest.fail("5,000 writes of 1,000 bytes into 1 MB were never refused")
        assert evicted(d) == 0
        assert helpers.decode1(c.cmd("DBSIZE")) == len(keys)
        assert len(present(c, keys)) == len(keys)
        # Writes that add memory are refused; reads, deletions and TTL changes run.
        assert c.cmd("INCR", "counter") == OOM
        assert c.cmd("HSET", "h", "f", "v") == OOM
        assert c.cmd("SADD", "s", "m") == OOM
        assert c.cmd("APPEND", keys[0], "x") == OOM
        assert c.cmd("EVAL", "return redis.call('set', 'x', 'y')", "0").startswith(b"-OOM")
        assert c.cmd("GET", keys[0]) == b"$1000\r\n" + VALUE + b"\r\n"
        assert c.cmd("EXPIRE", keys[0], "1000") == b":1\r\n"
        assert c.cmd("MULTI") == b"+OK\r\n"
        assert c.cmd("SET", "x", "y") == OOM
        assert c.cmd("EXEC").startswith(b"-EXECABORT")
        c.send(b"".join(helpers.encode("DEL", k) for k in keys[:100]))
        assert [c.read_reply() for _ in range(100)] == [b":1\r\n"] * 100
        assert c.cmd("SET", "again", "v") == b"+OK\r\n"
        assert c.cmd("CONFIG", "SET", "maxmemory-policy", "allkeys-lru") == b"+OK\r\n"
        fill_until_evicted(d, c, "more", 1)
        assert used(d) <= MAXMEMORY


def test_allkeys_lfu_keeps_frequently_used_keys(cohortd):
    d = start(cohortd, "allkeys-lfu")
    with d.raw(timeout=30) as c:
        hot = ["hot%d" % i for i in range(150)]
        assert set(set_all(c, hot)) == {b"+OK\r\n"}
        for _ in range(20):
            c.send(b"".join(helpers.encode("GET", k) for k in hot))
            for _ in hot:
                c.read_reply()
        assert c.cmd("OBJECT", "FREQ", hot[0]) not in (b":5\r\n", b":0\r\n")
        assert c.cmd("OBJECT", "IDLETIME", hot[0]).startswith(b"-ERR An LFU maxmemory policy")
        cold = fill_until_evicted(d, c, "cold", 1500)
        assert used(d) <= MAXMEMORY
        # A cold key goes unless all 5 sampled keys are hot.
        assert len(present(c, hot)) >= 0.9 * len(hot)
        assert len(present(c, cold)) < len(cold) - 1000


def test_allkeys_random_evicts_old_and_new_keys_alike(cohortd):
    d = start(cohortd, "allkeys-random")
    with d.raw(timeout=30) as c:
        first = ["first%d" % i for i in range(300)]
        assert set(set_all(c, first)) == {b"+OK\r\n"}
        later = fill_until_evicted(d, c, "later", 1500)
        assert used(d) <= MAXMEMORY
        # LRU would have evicted every one of the first keys before any later one.
        assert present(c, first), "every one of the oldest keys was evicted"
        assert len(present(c, later[:len(later) // 2])) < len(later) // 2


def test_volatile_lru_evicts_only_volatile_keys_least_recently_used_first(cohortd):
    d = start(cohortd, "volatile-lru")
    with d.raw(timeout=30) as c:
        idle = ["idle%d" % i for i in range(250)]
        used_ = ["used%d" % i for i in range(250)]
        assert set(set_all(c, idle, "EX", "1000")) == {b"+OK\r\n"}
        assert set(set_all(c, used_, "EX", "1000")) == {b"+OK\r\n"}
        time.sleep(1.2)  # the LRU clock counts seconds
        c.send(b"".join(helpers.encode("GET", k) for k in used_))
        for _ in used_:
            c.read_reply()
        persistent = fill_until_evicted(d, c, "p", 120)
        assert len(present(c, persistent)) == len(persistent)  # never a key without TTL
        gone_idle = len(idle) - len(present(c, idle))
        gone_used = len(used_) - len(present(c, used_))
        assert gone_idle + gone_used == evicted(d)
        assert gone_idle > 3 * gone_used, (gone_idle, gone_used)
        # Only persistent keys left to evict: writes get -OOM.
        assert_oom_once_nothing_volatile(d, c)


def assert_oom_once_nothing_volatile(d, c):
    """Fills with keys without TTL until every volatile key is gone and a
    write is refused; the keys without TTL all stay."""
    keys = []
    for i in range(5000):
        r = set_all(c, ["nv%d" % i])[0]
        if r == OOM:
            break
        assert r == b"+OK\r\n", r
        keys.append("nv%d" % i)
    else:
        pytest.fail("never refused")
    assert len(present(c, keys)) == len(keys)
    assert c.cmd("SET", "x", "y", "EX", "100") == OOM  # over the limit already
    assert c.cmd("GET", keys[0]) == b"$1000\r\n" + VALUE + b"\r\n"
    assert c.cmd("DEL", keys[0]) == b":1\r\n"


def test_volatile_lfu_evicts_only_volatile_keys_least_frequently_used_first(cohortd):
    d = start(cohortd, "volatile-lfu")
    with d.raw(timeout=30) as c:
        rare = ["rare%d" % i for i in range(250)]
        often = ["often%d" % i for i in range(250)]
        assert set(set_all(c, rare, "EX", "1000")) == {b"+OK\r\n"}
        assert set(set_all(c, often, "EX", "1000")) == {b"+OK\r\n"}
        for _ in range(20):
            c.send(b"".join(helpers.encode("GET", k) for k in often))
            for _ in often:
                c.read_reply()
        persistent = fill_until_evicted(d, c, "p", 120)
        assert len(present(c, persistent)) == len(persistent)
        gone_rare = len(rare) - len(present(c, rare))
        gone_often = len(often) - len(present(c, often))
        assert gone_rare + gone_often == evicted(d)
        assert gone_rare > 3 * gone_often, (gone_rare, gone_often)
        assert_oom_once_nothing_volatile(d, c)


def test_volatile_random_evicts_only_volatile_keys(cohortd):
    d = start(cohortd, "volatile-random")
    with d.raw(timeout=30) as c:
        vol = ["vol%d" % i for i in range(400)]
        assert set(set_all(c, vol, "EX", "1000")) == {b"+OK\r\n"}
        persistent = fill_until_evicted(d, c, "p", 100)
        assert len(present(c, persistent)) == len(persistent)
        assert len(vol) - len(present(c, vol)) == evicted(d)
        assert_oom_once_nothing_volatile(d, c)


def test_volatile_ttl_evicts_the_nearest_expiry_first(cohortd):
    d = start(cohortd, "volatile-ttl")
    with d.raw(timeout=30) as c:
        # vol0 expires first, vol399 last; written in a shuffled order.
        vol = ["vol%d" % i for i in range(400)]
        order = list(range(400))
        order = order[1::2] + order[0::2]
        c.send(b"".join(helpers.encode("SET", vol[i], VALUE, "EX", 1000 + 10 * i) for i in order))
        assert {c.read_reply() for _ in order} == {b"+OK\r\n"}
        persistent = fill_until_evicted(d, c, "p", 100)
        assert len(present(c, persistent)) == len(persistent)
        n = evicted(d)
        assert present(c, vol) == vol[n:]  # exactly the n nearest expiries went
        assert_oom_once_nothing_volatile(d, c)


def test_object_freq_and_idletime_follow_the_policy(cohortd):
    d = start(cohortd, "allkeys-lru")
    with d.raw() as c:
        assert c.cmd("SET", "k", "v") == b"+OK\r\n"
        assert c.cmd("OBJECT", "FREQ", "k").startswith(b"-ERR An LFU maxmemory policy is not")
        assert c.cmd("OBJECT", "IDLETIME", "k") == b":0\r\n"
        assert c.cmd("CONFIG", "SET", "maxmemory-policy", "volatile-lfu") == b"+OK\r\n"
        assert c.cmd("SET", "n", "v") == b"+OK\r\n"
        assert c.cmd("OBJECT", "FREQ", "n") == b":5\r\n"
        assert c.cmd("GET", "n") == b"$1\r\n" + b"v\r\n"
        assert c.cmd("OBJECT", "FREQ", "n") == b":6\r\n"
        assert c.cmd("OBJECT", "IDLETIME", "n").startswith(b"-ERR An LFU maxmemory policy is")
