"""node-redis and ioredis (npm, tests/integration/node/) driven through their
own APIs against one node and against a 3-node cluster whose keys replicate:
MULTI/EXEC, EVAL and EVALSHA of the lock-release script, hashes, sets,
counters with a TTL, database 1 in the connection options and WAIT
(tests/integration/node/stock_calls.js prints "ok NAME" per check)."""

import os
import shutil
import subprocess

import pytest

from cluster_harness import cluster_factory, requires_cohort  # noqa: F401
from conftest import scaled

pytestmark = [requires_cohort, pytest.mark.cohort_only]

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "node")
CHECKS = 7


def run(lib, ports):
    node = shutil.which("node")
    assert node, "node not found (scripts/install-deps.sh installs nodejs)"
    assert os.path.isdir(os.path.join(NODE_DIR, "node_modules", lib)), \
        "npm packages missing: run scripts/install-deps.sh (npm ci in tests/integration/node)"
    p = subprocess.run([node, os.path.join(NODE_DIR, "stock_calls.js"), lib] +
                       [str(x) for x in ports], capture_output=True, text=True,
                       timeout=scaled(120), cwd=HERE)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert len([ln for ln in p.stdout.splitlines() if ln.startswith("ok ")]) == CHECKS, out


@pytest.mark.parametrize("lib", ["redis", "ioredis"])
def test_stock_calls_on_one_node(cohortd, lib):
    run(lib, [cohortd().port])


@pytest.mark.parametrize("lib", ["redis", "ioredis"])
def test_stock_calls_on_three_nodes(cluster_factory, lib):
    cl = cluster_factory(3, writes="replicate")
    run(lib, [n.port for n in cl])
