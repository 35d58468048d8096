"""RESP3: HELLO and the RESP3 reply types, byte for byte over raw sockets
(redis-py 4.3 speaks only RESP2)."""

import helpers


def hello_fields(raw):
    v = helpers.decode1(raw)
    if isinstance(v, list):  # RESP2: a flat array of name, value
        v = dict(zip(v[0::2], v[1::2]))
    return v


def test_hello3_map(cohortd):
    d = cohortd()
    with d.raw() as c:
        raw = c.cmd("HELLO", "3")
        assert raw.startswith(b"%7\r\n"), raw
        m = hello_fields(raw)
        assert list(m.keys()) == [b"server", b"version", b"proto", b"id", b"mode", b"role",
                                  b"modules"], m
        assert b"\r\n$5\r\nproto\r\n:3\r\n" in raw
        assert m[b"proto"] == 3
        assert isinstance(m[b"server"], bytes) and m[b"server"]
        # Clients choose their features by this version: cohort speaks Redis 7.
        assert m[b"version"].startswith(b"7."), m[b"version"]
        assert isinstance(m[b"id"], int) and m[b"id"] > 0
        assert m[b"mode"] == b"standalone"
        assert m[b"role"] == b"master"
        assert m[b"modules"] == [] and b"$7\r\nmodules\r\n*0\r\n" in raw
        # HELLO without a version reports the current protocol.
        again = hello_fields(c.cmd("HELLO"))
        assert again[b"proto"] == 3
        assert again[b"id"] == m[b"id"]


def test_hello2_is_an_array(cohortd):
    d = cohortd()
    with d.raw() as c:
        raw = c.cmd("HELLO", "2")
        assert raw.startswith(b"*14\r\n"), raw
        m = hello_fields(raw)
        assert m[b"proto"] == 2
        assert c.cmd("GET", "missing") == b"$-1\r\n"


def test_resp3_nulls_and_types(cohortd):
    d = cohortd()
    with d.raw() as c:
        c.cmd("HELLO", "3")
        assert c.cmd("GET", "missing") == b"_\r\n"
        assert c.cmd("SET", "a", "x") == b"+OK\r\n"
        assert c.cmd("MGET", "a", "missing") == b"*2\r\n$1\r\nx\r\n_\r\n"
        assert c.cmd("SET", "a", "y", "NX") == b"_\r\n"
        assert c.cmd("SET", "b", "y", "XX") == b"_\r\n"
        assert c.cmd("SET", "a", "z", "GET") == b"$1\r\nx\r\n"
        assert c.cmd("SET", "new", "z", "GET") == b"_\r\n"
        assert c.cmd("GETDEL", "missing") == b"_\r\n"
        assert c.cmd("GETEX", "missing") == b"_\r\n"
        assert c.cmd("TTL", "a") == b":-1\r\n"
        assert c.cmd("EXISTS", "a") == b":1\r\n"
        assert c.cmd("KEYS", "nomatch*") == b"*0\r\n"
        assert c.cmd("SCAN", "0", "MATCH", "nomatch*") == b"*2\r\n$1\r\n0\r\n*0\r\n"
        assert c.cmd("TYPE", "a") == b"+string\r\n"
        assert c.cmd("FOO") == b"-ERR unknown command 'FOO', with args beginning with: \r\n"
        # Back to RESP2 on the same connection.
        assert c.cmd("HELLO", "2").startswith(b"*14\r\n")
        assert c.cmd("GET", "missing") == b"$-1\r\n"
        assert c.cmd("MGET", "missing") == b"*1\r\n$-1\r\n"


def test_hello_errors(cohortd):
    d = cohortd()
    with d.raw() as c:
        assert c.cmd("HELLO", "4") == b"-NOPROTO unsupported protocol version\r\n"
        assert c.cmd("HELLO", "1") == b"-NOPROTO unsupported protocol version\r\n"
        assert c.cmd("HELLO", "abc") == b"-ERR Protocol version is not an integer or out of range\r\n"
        assert c.cmd("HELLO", "3", "FOO") == b"-ERR Syntax error in HELLO option 'FOO'\r\n"
        # A failed HELLO leaves the protocol as it was.
        assert c.cmd("GET", "missing") == b"$-1\r\n"


def test_hello_setname(cohortd):
    d = cohortd()
    with d.raw() as c:
        raw = c.cmd("HELLO", "3", "SETNAME", "myconn")
        assert raw.startswith(b"%7\r\n"), raw
        assert c.cmd("CLIENT", "GETNAME") == b"$6\r\nmyconn\r\n"


def test_hello_auth(cohortd):
    d = cohortd(config={"client": {"requirepass": "s3cret"}})
    with d.raw() as c:
        assert c.cmd("GET", "a") == b"-NOAUTH Authentication required.\r\n"
        assert c.cmd("HELLO", "3", "AUTH", "default", "wrong") == \
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        assert c.cmd("GET", "a") == b"-NOAUTH Authentication required.\r\n"
        raw = c.cmd("HELLO", "3", "AUTH", "default", "s3cret")
        assert raw.startswith(b"%7\r\n"), raw
        assert c.cmd("GET", "a") == b"_\r\n"


def test_resp3_protocol_error_closes(cohortd):
    d = cohortd()
    with d.raw() as c:
        c.cmd("HELLO", "3")
        c.send(b"*1\r\n$x\r\n")
        data = c.read_until_closed()
        assert data == b"-ERR Protocol error: invalid bulk length\r\n", data
