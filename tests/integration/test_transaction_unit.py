"""A transaction's (or a script's) flushes reach every member as one unit
(src/cluster/coherence.c, U1): a member applies them in one go, so a client
of the member never sees part of an EXEC, even when its flushes are larger
than one flush frame (1 MiB) and the frames arrive far apart (a proxy on the
peer link spaces them 20 ms apart)."""

import threading
import time

import pytest

from cluster_harness import cluster_factory, requires_cohort  # noqa: F401 (fixture)
from conftest import scaled
from peer_proxy import proxy_every_link

pytestmark = [requires_cohort, pytest.mark.cohort_only]

KEYS = ["unit:%036d" % i for i in range(20000)]  # ~1.4 MiB of flushes
ROUNDS = 6
GAP = 0.02  # seconds between two frames on the peer link
SCRIPT = "for i = 1, #KEYS do redis.call('DEL', KEYS[i]) end return #KEYS"


@pytest.mark.parametrize("how", ["exec", "script"])
def test_member_never_sees_half_a_transaction(cluster_factory, how):
    cl = cluster_factory(2, start=False)
    proxies = proxy_every_link(cl)
    cl.start()
    writer, reader = cl[0].conn(), cl[1].conn()
    torn, reads = [], [0]
    stop = threading.Event()

    def read_loop():
        deadline = time.monotonic() + scaled(120)
        while not stop.is_set() and time.monotonic() < deadline:
            first, last = reader.call("MGET", KEYS[0], KEYS[-1])
            reads[0] += 1
            if first is None and last is not None:
                torn.append(reads[0])

    try:
        for p in proxies:
            p.delay = GAP
            p.mode = "space"
        for rnd in range(ROUNDS):
            cl.fill([(k, "v") for k in KEYS])
            stop.clear()
            t = threading.Thread(target=read_loop)
            t.start()
            try:
                if how == "exec":
                    assert writer.call("MULTI") == b"OK"
                    assert writer.call("DEL", *KEYS) == b"QUEUED"
                    assert writer.call("EXEC") == [len(KEYS)]
                else:
                    assert writer.call("EVAL", SCRIPT, len(KEYS), *KEYS) == len(KEYS)
            finally:
                stop.set()
                t.join()
            assert cl[1].call("EXISTS", KEYS[0], KEYS[-1]) == 0
            assert not torn, "round %d: the member served half a transaction" % rnd
        assert reads[0] > ROUNDS, "the reader made only %d reads" % reads[0]
    finally:
        writer.close()
        reader.close()
        cl.stop_all()
        for p in proxies:
            p.close()
