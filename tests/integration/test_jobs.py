"""The job scheduler with real processes and the SQLite store: every slot runs
exactly once across kill -9, SIGSTOP and SIGCONT of the leader, epochs only
grow, a hanging job is killed at its timeout, a chatty one keeps its tail,
JOB.RUN fires once, where = every runs on every node, overlap skip and queue,
the holder takes over a slot claimed under an older epoch and never started,
HTTP actions with their headers and statuses, retention pruning, and bad job
settings stop the start with FILE:LINE."""

import os
import re
import signal
import time

import pytest

import helpers
from conftest import run_cohortd, scaled
from jobs_harness import call, check_slots, holders, lease, runs, start_nodes

pytestmark = pytest.mark.cohort_only

NEVER = "0 0 1 1 *"  # a cron slot that is not due during a test


def test_every_slot_once_across_kill_stop_cont(cohortd, tmp_path):
    tick = {"every": "1s", "command": "echo $COHORT_EPOCH $COHORT_SLOT", "catchup": "all"}
    nodes = start_nodes(cohortd, tmp_path, jobs={"tick": tick})
    assert helpers.wait_for(lambda: len(holders(nodes)) == 1, scaled(5))
    assert helpers.wait_for(lambda: len(runs(tmp_path, "tick")) >= 2, scaled(5))

    # kill -9 the leader.
    first = holders(nodes)[0]
    nodes[first].expect_clean_exit = False
    nodes[first].kill()
    assert helpers.wait_for(lambda: len(holders(nodes)) == 1, scaled(4))
    second = holders(nodes)[0]
    assert helpers.wait_for(lambda: any(r["node"] == second for r in runs(tmp_path, "tick")),
                            scaled(4))

    # SIGSTOP the new leader past its lease, let the other take over, SIGCONT.
    os.kill(nodes[second].pid, signal.SIGSTOP)
    try:
        others = {n: d for n, d in nodes.items() if n not in (first, second)}
        assert helpers.wait_for(lambda: len(holders(others)) == 1, scaled(4))
        third = holders(others)[0]
        assert helpers.wait_for(
            lambda: any(r["node"] == third for r in runs(tmp_path, "tick")), scaled(4))
    finally:
        os.kill(nodes[second].pid, signal.SIGCONT)
    resumed = time.time() * 1000
    time.sleep(scaled(2))
    assert holders(nodes) == [third]
    rows = runs(tmp_path, "tick")
    # Nothing ran on the resumed node after it woke up. A slot it had started
    # in the store before the pause may be recorded "abandoned" on waking
    # (scheduler.c resolve_start: started, never run, never re-run), stamped
    # with the time of that record: not a run.
    late = [r for r in rows if r["node"] == second and r["status"] != "abandoned" and
            (r["started_ms"] or 0) > resumed]
    assert not late, late
    check_slots(rows)
    for r in rows:
        if r["status"] == "ok":
            assert r["output"].split()[0] == str(r["epoch"]).encode()
            assert r["output"].split()[1] == str(r["slot_ms"]).encode()
    # JOB.HISTORY shows the same runs, newest first.
    hist = helpers.wait_for(lambda: call(nodes[third], "JOB.HISTORY", "tick", "5"), scaled(2))
    assert [h[0] for h in hist] == sorted((h[0] for h in hist), reverse=True)
    by_slot = {r["slot_ms"]: r for r in runs(tmp_path, "tick")}
    assert all(by_slot[h[0]]["node"].encode() == h[1] for h in hist)


def test_timeout_and_output_tail(cohortd, tmp_path):
    # A duration no other test or suite running on this machine uses, so the
    # process check below finds only this job's process.
    hang_cmd = "sleep 60.%06d" % (os.getpid() % 1000000)
    jobs = {"hang": {"cron": NEVER, "command": hang_cmd, "timeout": "500ms"},
            "chatty": {"cron": NEVER,
                       "command": "yes 0123456789 | head -c 3000000; echo THE-END"}}
    d = start_nodes(cohortd, tmp_path, hot=("solo",), jobs=jobs)["solo"]
    assert helpers.wait_for(lambda: lease(d)[3] == 1, scaled(3))
    assert call(d, "JOB.RUN", "hang") == b"OK"
    assert call(d, "JOB.RUN", "chatty") == b"OK"

    def done(job):
        return [r for r in runs(tmp_path, job) if r["status"]]
    hang = helpers.wait_for(lambda: done("hang"), scaled(8))
    assert hang and hang[0]["status"] == "timeout", hang
    assert hang[0]["ended_ms"] - hang[0]["started_ms"] < 5000
    chatty = helpers.wait_for(lambda: done("chatty"), scaled(8))
    assert chatty and chatty[0]["status"] == "ok"
    out = chatty[0]["output"]
    assert len(out) == 4096 and out.endswith(b"THE-END\n")
    # The hanging job's process is gone.
    assert not [l for l in os.popen("ps -eo args").read().splitlines() if l == hang_cmd]


def test_job_run_once_and_jobs(cohortd, tmp_path):
    jobs = {"report": {"cron": NEVER, "command": "echo report $COHORT_NODE"}}
    nodes = start_nodes(cohortd, tmp_path, hot=("a", "b"), warm=("w",), jobs=jobs)
    assert helpers.wait_for(lambda: len(holders(nodes)) == 1, scaled(3))
    leader = holders(nodes)[0]
    other = "b" if leader == "a" else "a"
    # Only the holder fires a leader job; the others name it.
    for name in (other, "w"):
        err = call(nodes[name], "JOB.RUN", "report")
        assert isinstance(err, helpers.RespError) and leader.encode() in err.msg, err
    assert call(nodes[leader], "JOB.RUN", "report") == b"OK"
    assert helpers.wait_for(lambda: [r for r in runs(tmp_path, "report") if r["status"]],
                            scaled(5))
    time.sleep(0.5)
    rows = runs(tmp_path, "report")
    assert len(rows) == 1 and rows[0]["node"] == leader
    assert rows[0]["output"] == ("report %s\n" % leader).encode()
    assert rows[0]["epoch"] == lease(nodes[leader])[1]
    listing = call(nodes[other], "JOBS")
    assert listing[0][:3] == [b"report", b"cron " + NEVER.encode(), b"leader"]
    assert isinstance(listing[0][5], int)
    hist = helpers.wait_for(lambda: call(nodes["w"], "JOB.HISTORY", "report"), scaled(3))
    assert len(hist) == 1 and hist[0][1] == leader.encode() and hist[0][3] == b"ok"
    assert isinstance(call(nodes[leader], "JOB.RUN", "nope"), helpers.RespError)
    assert isinstance(call(nodes[leader], "JOB.HISTORY", "report", "0"), helpers.RespError)


def test_where_every_runs_on_every_node(cohortd, tmp_path):
    jobs = {"local": {"every": "1s", "command": "true", "where": "every"}}
    start_nodes(cohortd, tmp_path, hot=("a",), warm=("w",), jobs=jobs)
    assert helpers.wait_for(lambda: runs(tmp_path, "local:a") and runs(tmp_path, "local:w"),
                            scaled(5))


BAD_JOBS = [
    ("bad-cron", "[job x]\ncron = 61 * * * *\ncommand = true\n", 2, "cron"),
    ("unknown-key", "[job x]\nevery = 1s\ncommand = true\ncolour = red\n", 4, "colour"),
    ("bad-every", "[job x]\nevery = soon\ncommand = true\n", 2, "every"),
    ("bad-catchup", "[job x]\nevery = 1s\ncommand = true\ncatchup = some\n", 4, "catchup"),
]


@pytest.mark.parametrize("case,body,line,key", BAD_JOBS, ids=[c[0] for c in BAD_JOBS])
def test_bad_job_config(tmp_path, case, body, line, key):
    path = os.path.join(str(tmp_path), "bad.ini")
    with open(path, "w") as f:
        f.write("[node]\ndata_dir = %s\n" % os.path.join(str(tmp_path), "data") + body)
    line += 2
    p = run_cohortd(["--config", path, "--port", "0", "--http-port", "0"])
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 2, err
    assert re.search(re.escape(path) + ":%d: %s: \\S" % (line, key), err), err
    assert not os.path.exists(os.path.join(str(tmp_path), "data"))


def test_overlap_skip_and_queue(cohortd, tmp_path):
    jobs = {"slow-skip": {"every": "1s", "command": "sleep 1.6", "overlap": "skip",
                          "catchup": "all"},
            "slow-queue": {"every": "1s", "command": "sleep 1.6", "overlap": "queue",
                           "catchup": "all"}}
    start_nodes(cohortd, tmp_path, hot=("solo",), jobs=jobs)

    def finished(job):
        return [r for r in runs(tmp_path, job) if r["status"] == "ok"]
    assert helpers.wait_for(lambda: len(finished("slow-skip")) >= 3, scaled(12))
    for job in ("slow-skip", "slow-queue"):
        done = finished(job)
        # Runs of one job never overlap.
        for a, b in zip(done, done[1:]):
            assert b["started_ms"] >= a["ended_ms"], (job, a, b)
    skip = [r["slot_ms"] for r in finished("slow-skip")]
    assert any(b - a > 1000 for a, b in zip(skip, skip[1:])), "skip dropped no slot: %r" % skip
    queue = [r["slot_ms"] for r in runs(tmp_path, "slow-queue")]
    assert queue == list(range(queue[0], queue[-1] + 1, 1000)), "queue lost a slot: %r" % queue


def test_http_action(cohortd, tmp_path):
    import http.server
    import threading
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append((self.path, dict(self.headers)))
            code = 500 if self.path == "/fail" else 200
            self.send_response(code)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *a):
            pass
    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        port = srv.server_address[1]
        jobs = {"hook": {"cron": NEVER, "run": "http://127.0.0.1:%d/ok" % port, "method": "POST"},
                "bad": {"cron": NEVER, "run": "http://127.0.0.1:%d/fail" % port,
                        "method": "POST"}}
        d = start_nodes(cohortd, tmp_path, hot=("solo",), jobs=jobs)["solo"]
        assert helpers.wait_for(lambda: lease(d)[3] == 1, scaled(3))
        assert call(d, "JOB.RUN", "hook") == b"OK"
        assert call(d, "JOB.RUN", "bad") == b"OK"

        def done(job):
            return [r for r in runs(tmp_path, job) if r["status"]]
        ok = helpers.wait_for(lambda: done("hook"), scaled(5))
        bad = helpers.wait_for(lambda: done("bad"), scaled(5))
        assert ok[0]["status"] == "ok" and ok[0]["code"] == 200 and ok[0]["output"] == b"hello"
        assert bad[0]["status"] == "failed" and bad[0]["code"] == 500
        hdrs = [h for p, h in seen if p == "/ok"][0]
        assert hdrs["Cohort-Job"] == "hook" and hdrs["Cohort-Node"] == "solo"
        assert hdrs["Cohort-Epoch"] == str(lease(d)[1])
    finally:
        srv.shutdown()
        srv.server_close()


def test_retention_prunes_old_runs(cohortd, tmp_path):
    import sqlite3
    jobs = {"report": {"cron": NEVER, "command": "true"}}
    d = start_nodes(cohortd, tmp_path, hot=("solo",), jobs=jobs,
                    extra={"scheduler": {"retention": "1h"}})["solo"]
    assert helpers.wait_for(lambda: lease(d)[3] == 1, scaled(3))
    assert call(d, "JOB.RUN", "report") == b"OK"
    assert helpers.wait_for(lambda: [r for r in runs(tmp_path, "report") if r["status"]],
                            scaled(5))
    db = sqlite3.connect(os.path.join(str(tmp_path), "shared.db"), timeout=10)
    old = int(time.time() * 1000) - 2 * 3600 * 1000
    with db:
        db.execute("INSERT INTO cohort_job_runs (job, slot_ms, node, epoch, claimed_at, status)"
                   " VALUES ('report', ?, 'gone', 1, ?, 'ok')", (old, old))
    db.close()
    d.stop()
    d2 = start_nodes(cohortd, tmp_path, hot=("solo2",), jobs=jobs,
                     extra={"scheduler": {"retention": "1h"}})["solo2"]
    assert helpers.wait_for(lambda: len(runs(tmp_path, "report")) == 1, scaled(5))
    assert runs(tmp_path, "report")[0]["node"] == "solo"
    assert d2.alive()


def test_claim_never_started_is_taken_over(cohortd, tmp_path):
    """A slot claimed under an older epoch and never started (its claimer
    lost the lease between claim and start) is taken over and run by the
    holder; JOB.HISTORY tells a claimed-only slot from a run."""
    import sqlite3
    tick = {"every": "1s", "command": "echo $COHORT_NODE", "catchup": "all"}
    d = start_nodes(cohortd, tmp_path, hot=("solo",), jobs={"tick": tick})["solo"]
    assert helpers.wait_for(lambda: lease(d)[3] == 1, scaled(3))
    assert helpers.wait_for(lambda: [r for r in runs(tmp_path, "tick") if r["status"]], scaled(5))
    now = int(time.time() * 1000)
    slot = (now // 1000 + 3) * 1000
    far = slot + 3600 * 1000
    db = sqlite3.connect(os.path.join(str(tmp_path), "shared.db"), timeout=10)
    with db:
        for s in (slot, far):
            db.execute("INSERT INTO cohort_job_runs (job, slot_ms, node, epoch, claimed_at)"
                       " VALUES ('tick', ?, 'ghost', 0, ?)", (s, now))
    db.close()

    def taken_over():
        return [r for r in runs(tmp_path, "tick") if r["slot_ms"] == slot and r["status"]]
    done = helpers.wait_for(taken_over, scaled(8))
    assert done and done[0]["node"] == "solo" and done[0]["status"] == "ok", done
    assert done[0]["epoch"] == lease(d)[1] and done[0]["output"].strip() == b"solo"
    hist = call(d, "JOB.HISTORY", "tick", "3")
    assert hist[0][0] == far and hist[0][1] == b"ghost" and hist[0][3] == b"claimed", hist[0]
    assert any(h[0] == slot and h[3] == b"ok" for h in call(d, "JOB.HISTORY", "tick", "10"))
