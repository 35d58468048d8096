"""Write modes through stock client libraries on a 3-node cluster, one
client per node, as apps on three hosts would use them (README "Write
modes"): node-redis and ioredis from npm (tests/integration/node/, installed
by scripts/install-deps.sh with npm ci), and Django's cache and cache-backed
sessions through django_redis (Debian python3-django-redis).

Each library's checks run in a child process (node, or python3 for Django,
whose settings are per process) against a cluster started here; the child
prints "ok NAME" per check and exits non-zero on the first failure:
write-through (set on A, get on B and C), a session created through A and
loaded through B, counters incremented through different nodes (also
concurrently: no value returned twice, none lost), a lock with SET NX PX,
and for node clients the invalidate and local keyspaces."""

import os
import shutil
import subprocess
import sys

import pytest

from cluster_harness import cluster_factory, requires_cohort  # noqa: F401
from conftest import scaled

pytestmark = [requires_cohort, pytest.mark.cohort_only]

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "node")
SECTIONS = {
    "keyspace pages": {"prefix": "page:", "writes": "invalidate"},
    "keyspace scratch": {"prefix": "tmp:", "writes": "local"},
}


def run_child(argv, expect_ok):
    """Runs a client child; asserts it exited 0 and printed every check."""
    p = subprocess.run(argv, capture_output=True, text=True, timeout=scaled(120), cwd=HERE)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("ok ")]
    assert len(lines) == expect_ok, out


@pytest.mark.parametrize("lib", ["redis", "ioredis"])
def test_node_clients_on_each_write_mode(cluster_factory, lib):
    node = shutil.which("node")
    assert node, "node not found (scripts/install-deps.sh installs nodejs)"
    assert os.path.isdir(os.path.join(NODE_DIR, "node_modules", lib)), \
        "npm packages missing: run scripts/install-deps.sh (npm ci in tests/integration/node)"
    cl = cluster_factory(3, writes="replicate", sections=SECTIONS)
    run_child([node, os.path.join(NODE_DIR, "write_modes.js"), lib, "modes"] +
              [str(n.port) for n in cl], expect_ok=6)


@pytest.mark.parametrize("lib", ["redis", "ioredis"])
def test_node_clients_concurrent_read_modify_writes(cluster_factory, lib):
    node = shutil.which("node")
    assert node and os.path.isdir(os.path.join(NODE_DIR, "node_modules", lib))
    cl = cluster_factory(3, writes="replicate")
    run_child([node, os.path.join(NODE_DIR, "write_modes.js"), lib, "races"] +
              [str(n.port) for n in cl], expect_ok=2)


def test_django_cache_and_sessions_across_nodes(cluster_factory):
    import django_redis  # noqa: F401 (installed by scripts/install-deps.sh)
    cl = cluster_factory(3, writes="replicate")
    run_child([sys.executable, os.path.join(HERE, "django_write_modes.py")] +
              [str(n.port) for n in cl], expect_ok=4)
