"""Values too large for a member, on a real 3-node cluster (issue 9, "Bad
input and limits"; src/proto/frame.h FRAME_VALUE_MAX).

Every member decodes a member's key or value up to FRAME_VALUE_MAX (64 MiB)
whatever its own max_bulk_len, and a write whose key or value would travel
larger than that is refused on the command before anything is applied
(cmd/cmd_util.c): no member refuses an entry, so no peer link is torn down
and the other writes go on.

Before this, a member with a smaller max_bulk_len refused the FLUSH entry
("malformed FLUSH entry"), closed the link, and got the same entry again at
every reconnection; and a value above every member's limit went out anyway
and tore down every link."""

import time

import pytest
import redis

from cluster_harness import cluster_factory, requires_cohort  # noqa: F401
from conftest import scaled
from helpers import wait_for

pytestmark = [requires_cohort, pytest.mark.cohort_only]

FRAME_VALUE_MAX = 64 << 20


def rp(node):
    return redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=scaled(60))


def refused_links(node):
    return node.metrics().get("cohort_peer_links_refused_total", 0)


def small_limit_cluster(cluster_factory):
    """n1 takes client values up to 128 MB, n2 the default (64 MB), n3 only
    1 MB; every key replicates."""
    cl = cluster_factory(3, writes="replicate", start=False)
    cl[0].config["client"]["max_bulk_len"] = "128mb"
    cl[2].config["client"]["max_bulk_len"] = "1mb"
    return cl.start()


def strlen_served(c, key):
    """STRLEN of key, or None while the node answers TRYAGAIN (shipping a
    64 MB value to every member can outlast the lease on a loaded machine:
    the node serves again once the members answered)."""
    try:
        return c.strlen(key)
    except redis.exceptions.ResponseError as e:
        if str(e).startswith("TRYAGAIN"):
            return None
        raise


def assert_links_up(cl, before):
    for n in cl:
        assert refused_links(n) == before[n.name], (n.name, n.log_tail())
        states = {m: v["state"] for m, v in n.members().items()}
        assert all(s == "alive" for s in states.values()), (n.name, states)
        assert "malformed" not in n.log_text(), n.log_tail()


def test_a_value_over_one_members_max_bulk_len_replicates(cluster_factory):
    cl = small_limit_cluster(cluster_factory)
    before = {n.name: refused_links(n) for n in cl}
    clients = [rp(n) for n in cl]
    big = b"x" * (2 << 20)  # over n3's max_bulk_len, under the cluster's limit
    assert clients[0].set("big", big) is True
    for c in clients:
        assert c.get("big") == big
    assert clients[1].append("big", b"yz") == len(big) + 2
    for c in clients:
        assert c.strlen("big") == len(big) + 2
    # n3's own clients still send at most 1 MB per argument, as configured.
    # (the error reply, or the connection closed while the rest was written)
    with pytest.raises((redis.exceptions.ResponseError, redis.exceptions.ConnectionError)):
        clients[2].set("mine", b"z" * (2 << 20))
    clients[2] = rp(cl[2])  # that connection was closed
    assert_links_up(cl, before)


def test_a_value_over_the_clusters_limit_is_refused_and_nothing_is_written(cluster_factory):
    cl = small_limit_cluster(cluster_factory)
    before = {n.name: refused_links(n) for n in cl}
    clients = [rp(n) for n in cl]
    assert clients[1].set("k", "old") is True
    huge = b"h" * (FRAME_VALUE_MAX + 1)
    with pytest.raises(redis.exceptions.ResponseError, match="value too large to replicate"):
        clients[0].set("k", huge)
    with pytest.raises(redis.exceptions.ResponseError, match="value too large to replicate"):
        clients[0].set("fresh", huge)
    # A read-modify-write that would grow past it: APPEND through n1 (whose
    # own max_bulk_len allows the result).
    assert clients[1].set("grow", b"g" * (FRAME_VALUE_MAX - 10)) is True
    for c in clients:
        got = wait_for(lambda: strlen_served(c, "grow"), scaled(30))
        assert got == FRAME_VALUE_MAX - 10
    with pytest.raises(redis.exceptions.ResponseError, match="value too large to replicate"):
        clients[0].append("grow", b"0123456789ab")
    for c in clients:
        assert c.get("k") == b"old"
        assert c.exists("fresh") == 0
        assert c.strlen("grow") == FRAME_VALUE_MAX - 10
    # The others are unaffected: writes through every node go on at once.
    for i, c in enumerate(clients):
        assert c.incr("after") == i + 1
        assert c.set("after:%d" % i, "v") is True
    time.sleep(scaled(0.3))
    for c in clients:
        assert c.get("after") == b"3"
        assert c.mget("after:0", "after:1", "after:2") == [b"v", b"v", b"v"]
    assert_links_up(cl, before)
