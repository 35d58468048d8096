"""scripts/run-cluster.sh, the README's way to try a cluster on one machine:
it starts three nodes that meet, a DEL on one replies once the others
dropped the key, and Ctrl-C (SIGINT) stops every node and removes the
temporary directory it made."""

import glob
import os
import signal
import subprocess

import pytest

import helpers
from cluster_harness import decode_members, requires_cohort
from conftest import COHORTD, scaled

pytestmark = [requires_cohort, pytest.mark.cohort_only]

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "run-cluster.sh")
OFFSETS = [0, 1, 2, 10, 11, 12, 20, 21, 22]  # RESP, HTTP, peer port of n1..n3


def _call(port, *args):
    with helpers.RawConn(port, timeout=5.0) as c:
        v = helpers.decode1(c.cmd(*args))
    if isinstance(v, helpers.RespError):
        raise AssertionError("%s on %d: %r" % (args, port, v))
    return v


def _all_alive(port, others):
    try:
        ms = decode_members(_call(port, "COHORT.MEMBERS"))
    except (OSError, helpers.Closed):
        return False
    return sorted(ms) == sorted(others) and all(m["state"] == "alive" for m in ms.values())


def _serving(port):
    """The node serves (it has caught up and holds its leases): before that it
    answers writes of replicated keys with TRYAGAIN."""
    try:
        return b"cohort_serving_cache:1" in _call(port, "INFO", "cohort")
    except (OSError, helpers.Closed):
        return False


def _listening(port):
    try:
        with helpers.RawConn(port, timeout=1.0):
            return True
    except OSError:
        return False


def _as_from_a_terminal():
    """In the script's process before exec: Ctrl-C reaches it as from a
    terminal, with SIGINT's default action and not blocked. A suite started
    in the background has SIGINT ignored (and a shell cannot trap a signal
    that was ignored when it started), and a thread may have it blocked."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def test_run_cluster_script(tmp_path):
    base = helpers.free_port_base(OFFSETS)
    ports = {"n1": base, "n2": base + 10, "n3": base + 20}
    before = set(glob.glob("/tmp/cohort-cluster.*"))
    env = dict(os.environ, COHORT_BASE_PORT=str(base), COHORTD=COHORTD)
    out = open(tmp_path / "run-cluster.log", "wb")
    p = subprocess.Popen(["bash", SCRIPT], stdout=out, stderr=subprocess.STDOUT, env=env,
                         start_new_session=True, preexec_fn=_as_from_a_terminal)
    try:
        for name, port in ports.items():
            others = [n for n in ports if n != name]
            assert helpers.wait_for(lambda: _all_alive(port, others), scaled(10.0)), \
                "%s did not see the others alive:\n%s" % (name, (tmp_path / "run-cluster.log")
                                                          .read_text(errors="replace"))
        for port in ports.values():
            assert helpers.wait_for(lambda: _serving(port), scaled(10.0))
        made = set(glob.glob("/tmp/cohort-cluster.*")) - before
        assert len(made) == 1, made
        for port in ports.values():
            assert _call(port, "SET", "k", "v") == b"OK"
        assert _call(ports["n1"], "DEL", "k") == 1
        assert _call(ports["n2"], "GET", "k") is None
        assert _call(ports["n3"], "GET", "k") is None
    finally:
        p.send_signal(signal.SIGINT)
        try:
            rc = p.wait(timeout=scaled(10.0))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            out.close()
            raise AssertionError("run-cluster.sh did not end within %.0f s of SIGINT:\n%s" % (
                scaled(10.0), (tmp_path / "run-cluster.log").read_text(errors="replace")[-6000:]))
        finally:
            out.close()
    log = (tmp_path / "run-cluster.log").read_text(errors="replace")
    assert rc == 0, log
    for name in ports:
        assert "[%s]" % name in log and "shutting down (SIGTERM)" in log, log
    for port in ports.values():
        assert not _listening(port), "port %d still open after the script ended" % port
    assert not (set(glob.glob("/tmp/cohort-cluster.*")) - before), "the directory was left"
