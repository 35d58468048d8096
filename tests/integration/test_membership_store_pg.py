"""The membership tests of test_membership_store.py against a real
PostgreSQL server, which tests/pg/pg-harness.sh starts for this module
(initdb in a temporary directory, loopback only, run as an unprivileged
user) and removes afterwards: the session lock is then a PostgreSQL
session advisory lock, and expiry is judged by the server's now()."""


import pytest

from cluster_harness import cluster_factory, requires_cohort  # noqa: F401
from pg_server import pg_server
from test_membership_store import (  # noqa: F401  (collected here again)
    test_a_node_started_alone_keeps_its_writes_when_the_others_start,
    test_clean_stop_marks_the_row_left, test_cut_peer_links_declare_nobody_dead,
    test_kill9_is_seen_at_once_through_the_session_lock,
    test_stopped_node_row_expires_and_it_serves_nothing_stale)

pytestmark = [requires_cohort, pytest.mark.cohort_only]

@pytest.fixture(scope="module")
def pg_url():
    with pg_server() as (url, _):
        yield url


@pytest.fixture
def store_url(pg_url):
    return pg_url + ("&" if "?" in pg_url else "?") + "connect_timeout=2"
