"""Job slots against a real PostgreSQL (tests/pg/pg-harness.sh starts it for
this module, loopback only, and removes it afterwards): the leader is
SIGSTOPped between the claim of a slot and its start, and the slot still runs
exactly once, on another node.

How the moment is made deterministic: a trigger installed for the test
holds the leader's next claim of the job in the database for 3 s, after its
row is inserted (an AFTER INSERT trigger: pg_sleep inside the claim's
transaction, so another node's claim of the slot waits for it; the leader's
store connection waits for the answer). The test sees the claim sleeping (pg_stat_activity), SIGSTOPs the
leader, and lets the claim commit: the slot's row is then claimed by the
stopped leader under its epoch, and never started. Another node takes the
lease over (a higher epoch), takes the claim over and runs the slot. The
stopped leader, resumed, must run nothing: not that slot (the start is
fenced by the lease and the row is no longer its claim), nor any other.

Every run appends "NODE SLOT EPOCH" to one file, so what is checked is the
processes that really ran, besides the rows."""

import os
import signal
import subprocess
import time

import pytest

import helpers
from conftest import scaled
from jobs_harness import call, holders, lease
from pg_server import pg_server

pytestmark = pytest.mark.cohort_only


@pytest.fixture(scope="module")
def pg():
    with pg_server() as server:
        yield server


def psql(url, sql):
    """Runs sql with psql; returns its rows as lists of strings."""
    p = subprocess.run(["psql", url, "-X", "-A", "-t", "-q", "-F", "|", "-v", "ON_ERROR_STOP=1",
                        "-c", sql], capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    return [line.split("|") for line in p.stdout.decode().splitlines() if line]


STALL = """
CREATE TABLE IF NOT EXISTS test_stall (node text PRIMARY KEY);
CREATE SEQUENCE IF NOT EXISTS test_stalled_slot;
CREATE OR REPLACE FUNCTION test_stall_claim() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  IF NEW.job = 'tick' AND EXISTS (SELECT 1 FROM test_stall WHERE node = NEW.node) THEN
    DELETE FROM test_stall WHERE node = NEW.node;
    PERFORM setval('test_stalled_slot', NEW.slot_ms);  -- sequences: seen at once
    PERFORM pg_sleep(3);
  END IF;
  RETURN NEW;
END $f$;
DROP TRIGGER IF EXISTS test_stall_claim ON cohort_job_runs;
CREATE TRIGGER test_stall_claim AFTER INSERT ON cohort_job_runs
  FOR EACH ROW EXECUTE FUNCTION test_stall_claim();
"""


def start(cohortd, url, name, ran, role="hot"):
    cfg = {"node": {"name": name, "role": role},
           "store": {"url": url + "?connect_timeout=2"},
           "leases": {"ttl": "1s"},
           "job tick": {"every": "1s", "catchup": "all",
                        "command": "echo $COHORT_NODE $COHORT_SLOT $COHORT_EPOCH >> %s" % ran}}
    return cohortd(config=cfg, name=name)


def ran_lines(path):
    try:
        with open(path) as f:
            return [line.split() for line in f if line.strip()]
    except FileNotFoundError:
        return []


def test_leader_stopped_between_claim_and_start_pg(cohortd, pg, tmp_path):
    url, _ = pg
    ran = str(tmp_path / "ran.txt")
    nodes = {n: start(cohortd, url, n, ran) for n in ("a", "b", "c")}
    assert helpers.wait_for(lambda: len(holders(nodes)) == 1, scaled(10)), holders(nodes)
    assert helpers.wait_for(lambda: len(ran_lines(ran)) >= 2, scaled(5))
    leader = holders(nodes)[0]
    old_epoch = lease(nodes[leader])[1]

    psql(url, STALL)
    psql(url, "INSERT INTO test_stall VALUES ('%s')" % leader)

    def claim_sleeping():
        return psql(url, "SELECT count(*) FROM pg_stat_activity"
                         " WHERE wait_event = 'PgSleep'") == [["1"]]
    assert helpers.wait_for(claim_sleeping, scaled(5))
    os.kill(nodes[leader].pid, signal.SIGSTOP)
    stopped_at = time.time()
    slot = int(psql(url, "SELECT last_value FROM test_stalled_slot")[0][0])
    others = {n: d for n, d in nodes.items() if n != leader}
    try:
        assert helpers.wait_for(lambda: len(holders(others)) == 1, scaled(5))

        def slot_ran():
            return [l for l in ran_lines(ran) if int(l[1]) == slot]
        # The claim commits after its 3 s; the new holder then takes it over.
        assert helpers.wait_for(slot_ran, scaled(10)), psql(
            url, "SELECT * FROM cohort_job_runs WHERE job = 'tick' AND slot_ms = %d" % slot)
        # Stay stopped a moment longer so the new holder runs slots after it.
        assert helpers.wait_for(lambda: max(int(l[1]) for l in ran_lines(ran)) >= slot + 2000,
                                scaled(5))
    finally:
        os.kill(nodes[leader].pid, signal.SIGCONT)
    resumed = len(ran_lines(ran))
    time.sleep(scaled(3))  # the resumed node hears its claim's answer and the lease's

    # The slot ran once, on another node, under a later epoch. (The holder
    # that takes the claim over may have to wait for the held claim to
    # commit, its store connection busy meanwhile, so it may lose the lease
    # in turn: the slot then goes to the next one, with a later epoch still.)
    lines = ran_lines(ran)
    runs_of_slot = [l for l in lines if int(l[1]) == slot]
    assert len(runs_of_slot) == 1, runs_of_slot
    new_leader, _, new_epoch = runs_of_slot[0]
    new_epoch = int(new_epoch)
    assert new_leader != leader and new_epoch > old_epoch, runs_of_slot
    # The resumed node ran nothing with its old epoch after it woke up.
    assert not [l for l in lines[resumed:] if l[0] == leader and int(l[2]) <= old_epoch], \
        lines[resumed:]
    assert len(holders(nodes)) == 1
    # Every slot ran exactly once, as processes; epochs never went down.
    slots = [int(l[1]) for l in lines]
    assert len(slots) == len(set(slots)), sorted(slots)
    want = set(range(min(slots), max(slots) + 1, 1000))
    assert want == set(slots), sorted(want - set(slots))
    epochs = [int(l[2]) for l in lines]
    assert epochs == sorted(epochs), epochs
    # The rows agree: the slot is the new holder's, started and finished; no
    # slot before the newest started one is left only claimed.
    row = psql(url, "SELECT node, epoch, started_at IS NOT NULL, status FROM cohort_job_runs"
                    " WHERE job = 'tick' AND slot_ms = %d" % slot)
    assert row == [[new_leader, str(new_epoch), "t", "ok"]], row
    left = psql(url, "SELECT slot_ms FROM cohort_job_runs WHERE job = 'tick'"
                     " AND started_at IS NULL AND slot_ms < (SELECT max(slot_ms)"
                     " FROM cohort_job_runs WHERE job = 'tick' AND started_at IS NOT NULL)")
    assert left == [], left
    hist = call(nodes[new_leader], "JOB.HISTORY", "tick", "100")
    mine = [h for h in hist if h[0] == slot]
    assert mine and mine[0][1] == new_leader.encode() and mine[0][3] == b"ok", mine
    assert time.time() - stopped_at < scaled(30)
