"""Differential test: cohortd must answer byte for byte like redis-server.

Each group of the corpus (corpus/*.txt, described in corpus/README.md, plus
the generated arity groups below) is replayed on a fresh connection against
an emptied cohortd and an emptied redis-server, over RESP2 and over RESP3
(HELLO 3 first). Every command's raw reply bytes are compared; the few
comparisons that cannot be exact (TTL timing, KEYS order, SCAN cursors) are
relaxed as the README says. A failure lists every differing command of the
group with both servers' bytes. `@conn NAME` switches a group to another
connection (pub/sub: a publisher and its subscribers).
"""

import glob
import os
import re
import socket

import pytest

import helpers
from conftest import scaled

CORPUS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
SENTINEL_ARG = b"__differential_end__"
# PING <arg>: answered by the argument itself, and in RESP2 subscribe mode
# (where ECHO is refused) by ["pong", arg].
SENTINEL = helpers.encode(b"PING", SENTINEL_ARG)
SENTINEL_REPLY = b"$%d\r\n%s\r\n" % (len(SENTINEL_ARG), SENTINEL_ARG)
SENTINEL_REPLIES = (SENTINEL_REPLY, b"*2\r\n$4\r\npong\r\n" + SENTINEL_REPLY)
MAX_REPLIES = 64  # per command, before the sentinel

# --- corpus parsing -------------------------------------------------------

_ESC = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\", '"': b'"', "'": b"'",
        "a": b"\a", "b": b"\b"}


def _unescape(s):
    out = bytearray()
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            nx = s[i + 1]
            if nx == "x" and i + 3 < len(s) + 0 and re.match(r"[0-9a-fA-F]{2}", s[i + 2:i + 4]):
                out.append(int(s[i + 2:i + 4], 16))
                i += 4
                continue
            if nx in _ESC:
                out += _ESC[nx]
                i += 2
                continue
        out += ch.encode("utf-8")
        i += 1
    return bytes(out)


def tokenize(line):
    """Splits a corpus line into arguments (bytes)."""
    toks = []
    i = 0
    n = len(line)
    while i < n:
        if line[i] == " ":
            i += 1
            continue
        if line.startswith("${", i):
            j = line.index("}", i)
            count, _, text = line[i + 2:j].partition("*")
            toks.append(_unescape(text) * int(count))
            i = j + 1
            continue
        if line[i] == '"':
            j = i + 1
            while j < n and line[j] != '"':
                j += 2 if line[j] == "\\" else 1
            if j >= n:
                raise ValueError("unterminated quote in %r" % line)
            toks.append(_unescape(line[i + 1:j]))
            i = j + 1
            continue
        if line[i] == "'":
            j = line.index("'", i + 1)
            toks.append(line[i + 1:j].encode())
            i = j + 1
            continue
        j = i
        while j < n and line[j] != " ":
            j += 1
        toks.append(line[i:j].encode())
        i = j
    return toks


class Step:
    def __init__(self, where, text, request, args, conn=None):
        self.where = where      # "file:line"
        self.text = text        # the corpus line
        self.request = request  # bytes sent
        self.args = args        # parsed arguments, or None for @raw
        self.conn = conn        # @conn: the connection the next steps use

    @property
    def name(self):
        return self.args[0].upper() if self.args else b""


def load_corpus():
    groups = []
    for path in sorted(glob.glob(os.path.join(CORPUS_DIR, "*.txt"))):
        fname = os.path.basename(path)
        current = None
        with open(path, encoding="utf-8") as f:
            for lineno, raw in enumerate(f, 1):
                line = raw.rstrip("\n")
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                if line.startswith("=== "):
                    current = ("%s:%s" % (fname[:-4], line[4:].strip()), [])
                    groups.append(current)
                    continue
                assert current is not None, "%s:%d: command before the first group" % (fname, lineno)
                where = "%s:%d" % (fname, lineno)
                if line.startswith("@conn "):
                    current[1].append(Step(where, line, b"", None, conn=line[6:].strip()))
                elif line.startswith("@raw "):
                    toks = tokenize(line[5:])
                    assert len(toks) == 1, "%s: @raw takes one token" % where
                    current[1].append(Step(where, line, toks[0], None))
                else:
                    args = tokenize(line)
                    current[1].append(Step(where, line, helpers.encode(*args), args))
    return groups


# Arity of every Redis command cohort shares, as redis-server 7 declares it
# (>0: exact argc, <0: at least -arity). Wrong counts must give the same error.
ARITY = {
    "ping": -1, "echo": 2, "select": 2, "dbsize": 1, "get": 2, "set": -3, "setex": 4,
    "psetex": 4, "setnx": 3, "getdel": 2, "getex": -2, "mget": -2, "mset": -3, "del": -2,
    "unlink": -2, "exists": -2, "expire": -3, "pexpire": -3, "ttl": 2, "pttl": 2,
    "persist": 2, "type": 2, "keys": 2, "scan": -2, "flushall": -1, "flushdb": -1,
    "auth": -2, "info": -1, "publish": 3, "spublish": 3, "pubsub": -2, "reset": 1,
    "subscribe": -2, "psubscribe": -2, "ssubscribe": -2,
    "incr": 2, "decr": 2, "incrby": 3, "decrby": 3, "incrbyfloat": 3, "append": 3,
    "strlen": 2, "getrange": 4, "substr": 4, "setrange": 4, "getset": 3, "msetnx": -3,
    "lcs": -3, "expireat": -3, "pexpireat": -3, "expiretime": 2, "pexpiretime": 2,
    "touch": -2, "rename": 3, "renamenx": 3, "copy": -3, "randomkey": 1, "dump": 2,
    "restore": -4, "time": 1, "role": 1, "lastsave": 1, "wait": 3, "object": -2,
    "memory": -2, "slowlog": -2, "latency": -2,
    "hset": -4, "hsetnx": 4, "hget": 3, "hmget": -3, "hmset": -4, "hdel": -3, "hlen": 2,
    "hstrlen": 3, "hexists": 3, "hkeys": 2, "hvals": 2, "hgetall": 2, "hincrby": 4,
    "hincrbyfloat": 4, "hrandfield": -2, "hscan": -3, "sadd": -3, "srem": -3,
    "sismember": 3, "smismember": -3, "smembers": 2, "scard": 2, "spop": -2,
    "srandmember": -2, "sinter": -2, "sintercard": -3, "sunion": -2, "sdiff": -2,
    "sinterstore": -3, "sunionstore": -3, "sdiffstore": -3, "smove": 4, "sscan": -3,
    "multi": 1, "exec": 1, "discard": 1, "swapdb": 3, "move": 3,
}


def arity_groups():
    groups = []
    for name, ar in sorted(ARITY.items()):
        steps = []
        need = abs(ar)
        counts = {need - 1} if ar < 0 else {need - 1, need + 1, need + 3}
        if ar > 1:
            counts.add(1)
        for argc in sorted(c for c in counts if c >= 1):
            for case in (name, name.upper()):
                args = [case.encode()] + [b"a%d" % i for i in range(argc - 1)]
                steps.append(Step("arity:%s" % name, " ".join(a.decode() for a in args),
                                  helpers.encode(*args), args))
        if steps:
            groups.append(("arity:%s" % name, steps))
    return groups


GROUPS = load_corpus() + arity_groups()

# --- running a group --------------------------------------------------------


class Session:
    """One connection to one server, reopened when the server closes it."""

    def __init__(self, port, proto):
        self.port = port
        self.proto = proto
        self.conn = None
        self.in_multi = False  # between MULTI and EXEC/DISCARD: the sentinel would be queued

    def open(self):
        self.close()
        self.in_multi = False
        self.conn = helpers.RawConn(self.port, timeout=scaled(10))
        if self.proto == 3:
            r = self.conn.cmd(b"HELLO", b"3")
            assert r[:1] == b"%", "HELLO 3 failed on port %d: %r" % (self.port, r[:200])

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def exchange(self, request, name=b""):
        """Sends request and the sentinel; returns the replies before the
        sentinel as one bytes string (b"<closed>" appended if the server
        closed the connection). Inside MULTI the sentinel would be queued:
        the request goes alone and its one reply is read."""
        if self.conn is None:
            self.open()
        if self.in_multi or name == b"MULTI":
            try:
                self.conn.send(request)
                r = self.conn.read_reply()
            except (helpers.Closed, BrokenPipeError, ConnectionResetError):
                self.conn = None
                return b"<closed>"
            except socket.timeout:
                self.open()
                return b"<timeout>"
            if name == b"MULTI" and r == b"+OK\r\n":
                self.in_multi = True
            elif name == b"EXEC" or name == b"RESET" or (name == b"DISCARD" and r == b"+OK\r\n"):
                self.in_multi = False
            return r
        out = []
        try:
            self.conn.send(request + SENTINEL)
            for _ in range(MAX_REPLIES):
                r = self.conn.read_reply()
                if r in SENTINEL_REPLIES:
                    return b"".join(out)
                out.append(r)
            out.append(b"<more than %d replies>" % MAX_REPLIES)
            self.open()
        except helpers.Closed as e:
            out.append(e.args[0] if e.args else b"")
            out.append(b"<closed>")
            self.conn = None
        except (BrokenPipeError, ConnectionResetError):
            out.append(b"<closed>")
            self.conn = None
        except socket.timeout:
            out.append(b"<timeout>")
            self.open()
        except ValueError as e:
            out.append(b"<unparseable: %s>" % str(e).encode())
            self.open()
        return b"".join(out)

    def scan_all(self, args):
        """Runs SCAN from cursor 0 to the end with the step's options.
        Returns ("keys", sorted keys) or ("reply", raw bytes) on an error."""
        cursor = b"0"
        keys = set()
        for _ in range(10000):
            raw = self.exchange(helpers.encode(b"SCAN", cursor, *args[2:]))
            try:
                v = helpers.decode1(raw)
            except Exception:
                return ("reply", raw)
            if not isinstance(v, list) or len(v) != 2:
                return ("reply", raw)
            cursor = v[0]
            keys.update(v[1])
            if cursor == b"0":
                return ("keys", sorted(keys))
        return ("reply", b"<scan did not finish in 10000 calls>")


def _ttl_close(a, b, tol):
    try:
        va, vb = helpers.decode1(a), helpers.decode1(b)
    except Exception:
        return False
    if not (isinstance(va, int) and isinstance(vb, int)) or a[:1] != b[:1]:
        return False
    if va < 0 or vb < 0:
        return va == vb
    return abs(va - vb) <= tol


def _sorted_form(raw):
    try:
        v = helpers.decode1(raw)
    except Exception:
        return raw
    if isinstance(v, list):
        return (raw[:1], sorted(v))
    return raw


# Replies whose order is the server's hash order for a "hashtable" set or
# hash (cohort keeps insertion order): compared as sorted lists, or as maps.
UNORDERED = (b"SMEMBERS", b"SINTER", b"SUNION", b"SDIFF", b"HKEYS", b"HVALS")


def _pairs_form(raw):
    try:
        v = helpers.decode1(raw)
    except Exception:
        return raw
    if isinstance(v, dict):
        return (raw[:1], sorted(v.items()))
    if isinstance(v, list) and len(v) % 2 == 0:
        return (raw[:1], sorted(zip(v[0::2], v[1::2])))
    return raw


def compare(step, ours, ref):
    """True when the two replies agree for this step."""
    if ours == ref:
        return True
    name = step.name
    if name in (b"TTL", b"PTTL") and step.args and len(step.args) == 2:
        tol = 2 if name == b"TTL" else 2000
        return _ttl_close(ours, ref, scaled(tol))
    if name == b"KEYS" or (name == b"PUBSUB" and len(step.args) >= 2 and
                           step.args[1].upper() in (b"CHANNELS", b"SHARDCHANNELS")):
        return _sorted_form(ours) == _sorted_form(ref)
    if name in UNORDERED:
        return _sorted_form(ours) == _sorted_form(ref)
    if name == b"HGETALL":
        return _pairs_form(ours) == _pairs_form(ref)
    return False


def run_group(steps, cohort_port, redis_port, proto):
    mismatches = []
    sessions = {}

    def pair_for(name):
        if name not in sessions:
            sessions[name] = (Session(cohort_port, proto), Session(redis_port, proto))
        return sessions[name]

    a, b = pair_for("main")
    try:
        for s in steps:
            if s.conn is not None:
                a, b = pair_for(s.conn)
                continue
            if s.name == b"SCAN" and s.args and len(s.args) >= 2 and s.args[1] == b"0":
                ra = a.scan_all(s.args)
                rb = b.scan_all(s.args)
                if ra != rb:
                    mismatches.append((s, repr(ra).encode(), repr(rb).encode()))
                continue
            ra = a.exchange(s.request, s.name)
            rb = b.exchange(s.request, s.name)
            if not compare(s, ra, rb):
                mismatches.append((s, ra, rb))
    finally:
        for sa, sb in sessions.values():
            sa.close()
            sb.close()
    return mismatches


def _short(b, limit=300):
    r = repr(b)
    return r if len(r) <= limit else r[:limit] + "...(%d bytes)" % len(b)


def reset(port):
    with helpers.RawConn(port, timeout=scaled(10)) as c:
        r = c.cmd(b"FLUSHALL")
        assert r == b"+OK\r\n", "FLUSHALL on port %d replied %r" % (port, r)


@pytest.fixture(scope="module")
def pair(cohortd_module, redis_server):
    ours = cohortd_module(name="differential")
    return ours, redis_server


@pytest.mark.parametrize("proto", [2, 3], ids=["resp2", "resp3"])
@pytest.mark.parametrize("group", GROUPS, ids=[g[0] for g in GROUPS])
def test_differential(pair, group, proto):
    ours, ref = pair
    assert ours.alive(), "cohortd died earlier:\n%s" % ours.stderr()[-3000:]
    reset(ours.port)
    reset(ref.port)
    mismatches = run_group(group[1], ours.port, ref.port, proto)
    if mismatches:
        lines = ["%d of %d commands differ (RESP%d):" % (len(mismatches), len(group[1]), proto)]
        for s, ra, rb in mismatches:
            lines.append("  %s: %s" % (s.where, s.text[:200]))
            lines.append("      cohortd:      %s" % _short(ra))
            lines.append("      redis-server: %s" % _short(rb))
        pytest.fail("\n".join(lines), pytrace=False)


def test_corpus_is_large():
    """The corpus covers several hundred commands."""
    total = sum(len(g[1]) for g in GROUPS)
    assert total >= 500, total
    names = {s.name for g in GROUPS for s in g[1] if s.args}
    for cmd in (b"PING", b"ECHO", b"SELECT", b"DBSIZE", b"GET", b"SET", b"SETEX", b"PSETEX",
                b"SETNX", b"GETDEL", b"GETEX", b"MGET", b"MSET", b"DEL", b"UNLINK", b"EXISTS",
                b"EXPIRE", b"PEXPIRE", b"TTL", b"PTTL", b"PERSIST", b"TYPE", b"KEYS", b"SCAN",
                b"FLUSHALL", b"FLUSHDB", b"INCR", b"DECR", b"INCRBY", b"DECRBY", b"INCRBYFLOAT",
                b"APPEND", b"STRLEN", b"GETRANGE", b"SUBSTR", b"SETRANGE", b"GETSET", b"MSETNX",
                b"LCS", b"EXPIREAT", b"PEXPIREAT", b"EXPIRETIME", b"PEXPIRETIME", b"TOUCH",
                b"RENAME", b"RENAMENX", b"COPY", b"RANDOMKEY", b"OBJECT", b"MEMORY", b"DUMP",
                b"RESTORE", b"ROLE", b"WAIT", b"SLOWLOG", b"LATENCY", b"CONFIG",
                b"MULTI", b"EXEC", b"DISCARD", b"SWAPDB", b"MOVE"):
        assert cmd in names, cmd


def test_corpus_covers_hashes_and_sets():
    """Every hash and set command is in the corpus (hashes.txt, sets.txt)."""
    names = {s.name for g in GROUPS for s in g[1] if s.args}
    for cmd in ("HSET HSETNX HMSET HGET HMGET HDEL HLEN HSTRLEN HEXISTS HKEYS HVALS HGETALL "
                "HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN SADD SREM SISMEMBER SMISMEMBER SMEMBERS "
                "SCARD SPOP SRANDMEMBER SINTER SINTERCARD SUNION SDIFF SINTERSTORE SUNIONSTORE "
                "SDIFFSTORE SMOVE SSCAN").split():
        assert cmd.encode() in names, cmd


def test_tokenizer():
    assert tokenize('SET k "a b" \'c d\' ${3*x}') == [b"SET", b"k", b"a b", b"c d", b"xxx"]
    assert tokenize(r'"\x00\xff\r\n\\\""') == [b"\x00\xff\r\n\\\""]
    assert tokenize('""') == [b""]
    assert tokenize(r'${2*\xab}') == [b"\xab\xab"]
