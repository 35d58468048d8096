"""The membership tests of test_membership_store.py against a real
PostgreSQL server, which tests/pg/pg-harness.sh starts for this module
(initdb in a temporary directory, loopback only, run as an unprivileged
user) and removes afterwards: the session lock is then a PostgreSQL
session advisory lock, and expiry is judged by the server's now()."""

import os
import subprocess

import pytest

from cluster_harness import cluster_factory, requires_cohort  # noqa: F401
from test_membership_store import (  # noqa: F401  (collected here again)
    test_clean_stop_marks_the_row_left, test_cut_peer_links_declare_nobody_dead,
    test_kill9_is_seen_at_once_through_the_session_lock,
    test_stopped_node_row_expires_and_it_serves_nothing_stale)

pytestmark = [requires_cohort, pytest.mark.cohort_only]

HARNESS = os.path.join(os.path.dirname(__file__), "..", "pg", "pg-harness.sh")


@pytest.fixture(scope="module")
def pg_server():
    if not os.path.exists("/usr/lib/postgresql/15/bin/initdb"):
        pytest.fail("postgresql is not installed (scripts/install-deps.sh installs it)")
    p = subprocess.run(["bash", HARNESS, "start"], capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    url = p.stdout.decode().strip()
    pgdir = [l.split("=", 1)[1] for l in p.stderr.decode().splitlines()
             if l.startswith("pg-harness: COHORT_PG_DIR=")][0]
    try:
        yield url
    finally:
        subprocess.run(["bash", HARNESS, "stop"], env=dict(os.environ, COHORT_PG_DIR=pgdir),
                       check=True, timeout=120, capture_output=True)


@pytest.fixture
def store_url(pg_server):
    return pg_server + ("&" if "?" in pg_server else "?") + "connect_timeout=2"
