"""A real PostgreSQL server for a test module: tests/pg/pg-harness.sh starts
it (initdb in a temporary directory, loopback only, an unprivileged user) and
removes it afterwards.

Never: skips when PostgreSQL is missing (scripts/install-deps.sh installs
it; a missing server is a failure)."""

import contextlib
import os
import subprocess

import pytest

HARNESS = os.path.join(os.path.dirname(__file__), "..", "pg", "pg-harness.sh")


@contextlib.contextmanager
def pg_server():
    """Yields (url, harness): harness(cmd) runs pg-harness.sh cmd ("stop",
    "start") on this server. Stops and removes it at the end."""
    if not os.path.exists("/usr/lib/postgresql/15/bin/initdb"):
        pytest.fail("postgresql is not installed (scripts/install-deps.sh installs it)")
    p = subprocess.run(["bash", HARNESS, "start"], capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    url = p.stdout.decode().strip()
    pgdir = [l.split("=", 1)[1] for l in p.stderr.decode().splitlines()
             if l.startswith("pg-harness: COHORT_PG_DIR=")][0]
    env = dict(os.environ, COHORT_PG_DIR=pgdir)

    def harness(cmd):
        subprocess.run(["bash", HARNESS, cmd], env=env, check=True, timeout=120,
                       capture_output=True)
    try:
        yield url, harness
    finally:
        harness("stop")
