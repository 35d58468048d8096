"""node-redis (v5) with its client-side cache on node B of a 2-node cluster:
reads are served from the Node.js process's memory, and a DEL, FLUSHPREFIX,
SEED, FLUSHALL through node A and an expiry invalidate them
(tests/node/csc.mjs; its packages come from scripts/install-deps.sh)."""

import os
import shutil
import subprocess

import pytest

from cluster_harness import cluster_factory, requires_cohort  # noqa: F401 (fixture)
from conftest import scaled

pytestmark = [requires_cohort, pytest.mark.cohort_only]

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "node")


def test_node_redis_client_side_cache_across_nodes(cluster_factory):
    node = shutil.which("node")
    if not node or not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "redis")):
        pytest.fail("node-redis is not installed: run scripts/install-deps.sh")
    cl = cluster_factory(2)
    a, b = cl[0], cl[1]
    out = subprocess.run([node, os.path.join(NODE_DIR, "csc.mjs"), str(b.port), str(a.port)],
                         capture_output=True, text=True, timeout=scaled(60), cwd=NODE_DIR)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stdout + out.stderr
