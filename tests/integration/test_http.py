"""The HTTP endpoint: /health, /metrics (Prometheus text), /v1/status (JSON),
and how it treats malformed and oversized requests."""

import json
import re
import socket
import time

import pytest

import helpers
from conftest import scaled

pytestmark = pytest.mark.cohort_only

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$')
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_metrics(text):
    """Parses the Prometheus text exposition format strictly. Returns
    ({(name, ((label, value), ...)): float}, {name: type})."""
    samples = {}
    types = {}
    for n, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                assert parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"), line
                assert parts[2] not in types, "TYPE given twice: %s" % line
                types[parts[2]] = parts[3]
            elif len(parts) >= 2 and parts[1] == "HELP":
                pass
            continue
        m = SAMPLE.match(line)
        assert m, "line %d is not a sample: %r" % (n, line)
        name, _, labels_text, value = m.group(1), m.group(2), m.group(3), m.group(4)
        labels = []
        if labels_text:
            pos = 0
            while pos < len(labels_text):
                lm = LABEL.match(labels_text, pos)
                assert lm, "line %d: bad labels %r" % (n, labels_text)
                labels.append((lm.group(1), lm.group(2)))
                pos = lm.end()
        key = (name, tuple(sorted(labels)))
        assert key not in samples, "sample given twice: %r" % line
        samples[key] = float(value)
    return samples, types


def metrics(d):
    status, headers, body = helpers.http_get(d.http_port, "/metrics")
    assert status == 200, (status, body[:200])
    assert headers.get("content-type", "").startswith("text/plain"), headers
    return parse_metrics(body.decode())


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def test_health(cohortd):
    d = cohortd()
    status, headers, body = helpers.http_get(d.http_port, "/health")
    assert status == 200
    assert body.strip() == b"ok", body
    assert int(headers["content-length"]) == len(body)


def test_metrics_format_and_counters(cohortd):
    d = cohortd()
    samples, types = metrics(d)
    assert samples, "no samples"
    for (name, _labels) in samples:
        assert name.startswith("cohort_"), name
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or base in types, "no TYPE for %s" % name
    for name, t in types.items():
        if t == "counter":
            assert name.endswith("_total"), "counter without _total: %s" % name

    gets0 = value(samples, "cohort_commands_total", cmd="get") or 0.0
    sets0 = value(samples, "cohort_commands_total", cmd="set") or 0.0
    hits0 = value(samples, "cohort_cache_hits_total")
    assert hits0 is not None, sorted(k[0] for k in samples)[:50]
    misses0 = value(samples, "cohort_cache_misses_total")
    with d.raw() as c:
        for i in range(7):
            assert c.cmd("SET", "m%d" % i, "v") == b"+OK\r\n"
        for i in range(7):
            assert c.cmd("GET", "m%d" % i) == b"$1\r\nv\r\n"
        for i in range(3):
            assert c.cmd("GET", "absent%d" % i) == b"$-1\r\n"
    samples, _ = metrics(d)
    assert value(samples, "cohort_commands_total", cmd="get") - gets0 == 10
    assert value(samples, "cohort_commands_total", cmd="set") - sets0 == 7
    assert value(samples, "cohort_cache_hits_total") - hits0 == 7
    if misses0 is not None:
        assert value(samples, "cohort_cache_misses_total") - misses0 == 3
    # Counters never go down between scrapes.
    again, _ = metrics(d)
    for key, v in samples.items():
        if key[0].endswith("_total") and key in again:
            assert again[key] >= v, key


def _find_value(obj, want):
    if obj == want:
        return True
    if isinstance(obj, dict):
        return any(_find_value(v, want) for v in obj.values())
    if isinstance(obj, list):
        return any(_find_value(v, want) for v in obj)
    return False


def test_status_json(cohortd):
    d = cohortd(name="www-test-7")
    status, headers, body = helpers.http_get(d.http_port, "/v1/status")
    assert status == 200
    assert headers.get("content-type", "").startswith("application/json"), headers
    doc = json.loads(body)
    assert isinstance(doc, dict)
    assert _find_value(doc, "www-test-7"), doc


def test_not_found_and_method(cohortd):
    d = cohortd()
    status, _, _ = helpers.http_get(d.http_port, "/nope")
    assert status == 404
    status, _, _ = helpers.http_request(
        d.http_port, b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    assert status == 405
    # A query string does not change the route.
    status, _, body = helpers.http_get(d.http_port, "/health?verbose=1")
    assert status == 200


def test_keep_alive(cohortd):
    d = cohortd()
    with socket.create_connection((helpers.HOST, d.http_port), timeout=scaled(5)) as s:
        for _ in range(3):
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            deadline = time.monotonic() + scaled(5)
            while time.monotonic() < deadline:
                data += s.recv(4096)
                st, hd, body = helpers.parse_http_response(data)
                if st and "content-length" in hd and len(body) >= int(hd["content-length"]):
                    break
            assert data.startswith(b"HTTP/1.1 200"), data


MALFORMED = [
    b"\x00\x01\x02garbage\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/9.9.9\r\n\r\n",
    b"NOT A REQUEST AT ALL\r\n\r\n",
    b"GET /health HTTP/1.1\r\nBad Header Without Colon\r\n\r\n",
    b"GET /health HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    b"GET /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
]


@pytest.mark.parametrize("raw", MALFORMED, ids=[repr(m)[2:22] for m in MALFORMED])
def test_malformed_request(cohortd_module, raw):
    d = _shared(cohortd_module)
    status, _, _ = helpers.http_request(d.http_port, raw)
    assert status == 400, status
    # The server keeps answering, on HTTP and on RESP.
    status, _, body = helpers.http_get(d.http_port, "/health")
    assert status == 200 and body.strip() == b"ok"
    with d.raw() as c:
        assert c.cmd("PING") == b"+PONG\r\n"


def test_oversized_request(cohortd_module):
    d = _shared(cohortd_module)
    big_header = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    status, _, _ = helpers.http_request(d.http_port, big_header)
    assert status in (413, 431), status
    big_url = b"GET /" + b"u" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    status, _, _ = helpers.http_request(d.http_port, big_url)
    assert status in (413, 414, 431), status
    big_body = (b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n" +
                b"b" * 20000)
    status, _, _ = helpers.http_request(d.http_port, big_body)
    assert status in (413, 431), status
    # A header that never ends: cut off at the limit, not kept in memory.
    with socket.create_connection((helpers.HOST, d.http_port), timeout=scaled(5)) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nX-Endless: ")
        status = None
        try:
            for _ in range(100):
                s.sendall(b"e" * 4096)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            data = s.recv(4096)
            status = helpers.parse_http_response(data)[0] if data else None
        except ConnectionResetError:
            status = None
        assert status in (None, 413, 431), status
    status, _, body = helpers.http_get(d.http_port, "/health")
    assert status == 200


def test_many_http_clients(cohortd):
    """Scrapes in a row and a few half-open connections do not hurt."""
    d = cohortd()
    idle = [socket.create_connection((helpers.HOST, d.http_port), timeout=scaled(5)) for _ in range(20)]
    try:
        idle[0].sendall(b"GET /hea")  # half a request, never finished
        for _ in range(50):
            status, _, _ = helpers.http_get(d.http_port, "/metrics")
            assert status == 200
    finally:
        for s in idle:
            s.close()
    status, _, _ = helpers.http_get(d.http_port, "/health")
    assert status == 200


def _shared(manager):
    for d in manager.daemons:
        if d.name == "http-shared" and d.alive():
            return d
    return manager(name="http-shared")
