#!/usr/bin/env python3
"""Records redis-server's replies to the scripting cases below into
tests/unit/script_redis_replies.h, the table test_script.c checks cohort's
script engine against byte for byte (redis-server is not needed at test time).

Usage: redis-server --port 21999 --bind 127.0.0.1 --save '' &
       python3 tests/unit/script_record.py 21999 > tests/unit/script_redis_replies.h
The server must be redis-server 7.0 (the version recorded is checked). Before each
case the server is emptied (FLUSHALL, SCRIPT FLUSH). Cases only use the commands
the unit test's fake host implements: GET SET DEL INCR PING.
"""
import socket
import sys

# (protocol, [command, ...]); every command's reply is recorded.
E = 'EVAL'
CASES = [
    (2, [[E, 'return 1', '0']]),
    (2, [[E, 'return 3.99', '0']]),
    (2, [[E, 'return -3.99', '0']]),
    (2, [[E, 'return 1e20', '0']]),
    (2, [[E, "return 'hello'", '0']]),
    (2, [[E, 'return true', '0']]),
    (2, [[E, 'return false', '0']]),
    (2, [[E, 'return nil', '0']]),
    (2, [[E, "return {1,2,3,'x',nil,4}", '0']]),
    (2, [[E, "return {1,{2,{3,{}}},'a',false,true}", '0']]),
    (2, [[E, 'local t = {} t[1]=1 t[3]=3 return t', '0']]),
    (2, [[E, "return {ok='fine'}", '0']]),
    (2, [[E, "return {ok='a\\r\\nb'}", '0']]),
    (2, [[E, "return {err='My Error'}", '0']]),
    (2, [[E, "return {1, {err='inner'}, 3}", '0']]),
    (2, [[E, "return redis.error_reply('My Error')", '0']]),
    (2, [[E, "return redis.error_reply('-WRONG thing')", '0']]),
    (2, [[E, "return redis.error_reply(1)", '0']]),
    (2, [[E, "return redis.status_reply('PONG')", '0']]),
    (2, [[E, "return redis.sha1hex('')", '0']]),
    (2, [[E, "return redis.sha1hex()", '0']]),
    (2, [[E, "return {KEYS[1], ARGV[1], ARGV[2], #KEYS, #ARGV}", '1', 'k', 'a1', 'a2']]),
    (2, [[E, "redis.call('set',KEYS[1],ARGV[1]) return redis.call('get',KEYS[1])", '1', 'k', 'v']]),
    (2, [[E, "return redis.call('get','nokey')", '0']]),
    (2, [[E, "return redis.call('set','k','v')", '0']]),
    (2, [[E, "return {redis.call('incr','x'), redis.call('incr','x')}", '0']]),
    (2, [[E, "redis.call('set','k',0.1) return redis.call('get','k')", '0']]),
    (2, [[E, "redis.call('set','k',3) return redis.call('get','k')", '0']]),
    (2, [[E, "redis.call('set','k','abc') return redis.pcall('incr','k')", '0']]),
    (2, [[E, "redis.call('set','k','abc') return redis.call('incr','k')", '0']]),
    (2, [[E, "return redis.call('nosuch')", '0']]),
    (2, [[E, "return redis.pcall('nosuch')", '0']]),
    (2, [[E, "return redis.call('get')", '0']]),
    (2, [[E, "return redis.pcall('set','k')", '0']]),
    (2, [[E, "return redis.call('get', {})", '0']]),
    (2, [[E, "return redis.call()", '0']]),
    (2, [[E, "return {pcall(redis.call, 'nosuch')}", '0']]),
    (2, [[E, "local ok, e = pcall(error, {err='X y'}) return {tostring(ok), e}", '0']]),
    (2, [[E, "return redis.call('ping')", '0']]),
    (2, [[E, 'x = 1', '0']]),
    (2, [[E, 'return y', '0']]),
    (2, [[E, "rawset(_G, 'x', 1)", '0']]),
    (2, [[E, 'redis.call = nil', '0']]),
    (2, [[E, 'string.foo = 1', '0']]),
    (2, [[E, 'function f() end', '0']]),
    (2, [[E, 'return os.time()', '0']]),
    (2, [[E, 'return io', '0']]),
    (2, [[E, 'return loadfile', '0']]),
    (2, [[E, 'return dofile', '0']]),
    (2, [[E, 'return print', '0']]),
    (2, [[E, 'return require', '0']]),
    (2, [[E, 'return debug', '0']]),
    (2, [[E, "return {type(string), type(math), type(table), type(cjson), type(bit), type(loadstring), type(__redis__err__handler)}", '0']]),
    (2, [[E, "error('boom')", '0']]),
    (2, [[E, "\n\nerror('line three')", '0']]),
    (2, [[E, "error({err='CUSTOM boom'})", '0']]),
    (2, [[E, "error()", '0']]),
    (2, [[E, 'return 1 +', '0']]),
    (2, [[E, 'local t = nil return t.x', '0']]),
    (2, [[E, "return cjson.encode({1,2,'x',{a=1}})", '0']]),
    (2, [[E, "return cjson.decode('[1,2,{\"a\":3}]')[3].a", '0']]),
    (2, [[E, "return cjson.decode('{bad')", '0']]),
    (2, [[E, "return {bit.band(0xff, 0x0f), bit.tohex(255), bit.bxor(5,3), bit.lshift(1,31), bit.bnot(0)}", '0']]),
    (2, [[E, "math.randomseed(1) return {math.random(100), math.random(1,10), tostring(math.random() < 1)}", '0']]),
    (2, [[E, "return {tostring(1e15), string.format('%d %s %5.2f', 3, 'a', 1.5), tostring(0.1)}", '0']]),
    (2, [[E, "return redis.setresp(4)", '0']]),
    (2, [[E, "return redis.setresp()", '0']]),
    (2, [[E, "redis.set_repl(redis.REPL_ALL) return redis.replicate_commands()", '0']]),
    (2, [[E, "return redis.set_repl(99)", '0']]),
    (2, [[E, "redis.log(redis.LOG_WARNING, 'from a test') return {redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING}", '0']]),
    (2, [[E, "return redis.log(redis.LOG_WARNING)", '0']]),
    (2, [[E, "return redis.log('x', 'y')", '0']]),
    (2, [[E, "return redis.log(99, 'y')", '0']]),
    (2, [[E, "return {redis.breakpoint(), redis.debug('x')}", '0']]),
    (2, [[E, "return 1", '2', 'a']]),
    (2, [[E, "return 1", '-1']]),
    (2, [[E, "return 1", 'x']]),
    (2, [['EVALSHA', 'ffffffffffffffffffffffffffffffffffffffff', '0']]),
    (2, [['EVALSHA', 'abc', '0']]),
    (2, [['SCRIPT', 'LOAD', "return 'loaded'"],
         ['SCRIPT', 'EXISTS', 'b534286061d4b9e4026607613b95c06c06015ae8', 'B534286061D4B9E4026607613B95C06C06015AE8', 'nope'],
         ['EVALSHA', 'B534286061D4B9E4026607613B95C06C06015AE8', '0'],
         ['EVALSHA_RO', 'b534286061d4b9e4026607613b95c06c06015ae8', '0'],
         ['SCRIPT', 'FLUSH'],
         ['SCRIPT', 'EXISTS', 'b534286061d4b9e4026607613b95c06c06015ae8'],
         ['EVALSHA', 'b534286061d4b9e4026607613b95c06c06015ae8', '0']]),
    (2, [['SCRIPT', 'LOAD'], ['SCRIPT', 'EXISTS'], ['SCRIPT', 'KILL', 'x'], ['SCRIPT', 'HELP'],
         ['SCRIPT'], [E, 'return 1'], ['EVALSHA_RO', 'x'], ['SCRIPT', 'FLUSH', 'a', 'b'],
         ['SCRIPT', 'DEBUG', 'maybe'], [E, 'return 1', '01'], [E, 'return 1', ' 1'],
         [E, 'return 1', '1', 'k']]),
    (2, [[E, "return loadstring(string.dump(function() return 1 end))", '0'], [E, "\x1bLua", '0']]),
    (2, [[E, "local t = {} local c = t for i=1,10000 do c[1] = {} c = c[1] end return t", '0']]),
    (2, [[E, "error({err='a\\nb'})", '0'], [E, "return {err='a\\nb'}", '0'], [E, "error({err='FOO'})", '0'],
         [E, "return redis.error_reply('FOO')", '0'], [E, "return {err='x\\0y'}", '0'], [E, "return 'a\\0b'", '0'],
         [E, "return {0/0, -0.0, 2^53, -2^63, 2^63, math.huge, -0.5}", '0'], [E, "error(12)", '0'],
         [E, "local t = setmetatable({}, {__index=function() return 1 end}) return t", '0'],
         [E, "return pcall(function() error({err='E1 x'}) end)", '0'],
         [E, "return select(2, pcall(function() error('plain') end))", '0'],
         [E, "return getfenv", '0'], [E, "return newproxy", '0'], [E, "return setfenv", '0'],
         [E, "return {redis.REDIS_VERSION, redis.REDIS_VERSION_NUM}", '0'],
         [E, "return coroutine.wrap(function() redis.call('set','a','b') coroutine.yield(1) end)()", '0'],
         [E, "return loadstring('return 5')()", '0'], [E, "return loadstring('x = 5')()", '0'],
         [E, "return tostring(rawget(_G, 'redis') ~= nil)", '0'],
         [E, "local n = {} for k,v in pairs(_G) do if k ~= 'struct' and k ~= 'cmsgpack' then n[#n+1] = k .. '=' .. type(v) end end table.sort(n) return n", '0'],
         [E, "local n = {} for k,v in pairs(redis) do n[#n+1] = k end table.sort(n) return n", '0'],
         [E, "local n = {} for k,v in pairs(math) do n[#n+1] = k end table.sort(n) return table.concat(n, ' ')", '0'],
         [E, "local n = {} for k,v in pairs(string) do n[#n+1] = k end table.sort(n) return table.concat(n, ' ')", '0'],
         [E, "local n = {} for k,v in pairs(table) do n[#n+1] = k end table.sort(n) return table.concat(n, ' ')", '0'],
         [E, "return getmetatable('').__index == string", '0'], [E, "getmetatable('').__index = nil", '0'],
         [E, "setmetatable(_G, {})", '0'], [E, "return {redis.status_reply(1)}", '0'],
         [E, "return redis.status_reply('a', 'b')", '0'], [E, "return redis.call('get', 'k', nil)", '0'],
         [E, "return redis.call('get', true)", '0'], [E, "return redis.call('eval', 'return 1', '0')", '0'],
         [E, "return redis.call('GET', 'k')", '0'], [E, "return redis.pcall('set', 'k', 'v', 'xx', 'nx')", '0'],
         [E, "return {redis.sha1hex(1), redis.sha1hex({})}", '0'], [E, "return redis.acl_check_cmd('get','x')", '0'],
         [E, "return {err=1}", '0'], [E, "return {ok=1}", '0'], [E, "return {ok='x', err='y'}", '0'],
         [E, "return {double='3'}", '0'], [E, "return {map={}}", '0'], [E, "return {big_number=12}", '0'],
         [E, "return {map={a={map={b=1}}}}", '0'],
         [E, "return cjson.encode({a={}, b=1.5, c=1e300, d='\\1/'})", '0'], [E, "return cjson.encode({[1]=1,[3]=3})", '0'],
         [E, "return cjson.encode(2^63)", '0'], [E, "return cjson.encode(cjson.null)", '0']]),
    (2, [['SCRIPT', 'LOAD', 'return 1 +']]),
    (2, [['SCRIPT', 'FLUSH', 'ASYNC'], ['SCRIPT', 'FLUSH', 'bogus'], ['SCRIPT', 'KILL'], ['SCRIPT', 'NOPE']]),
    (2, [['EVAL_RO', "return redis.call('set','k','v')", '0']]),
    (2, [['EVAL_RO', "return redis.call('get','k')", '0']]),
    (2, [['EVAL_RO', "return redis.call('publish','ch','m')", '0'], [E, "return redis.call('publish','ch','m')", '0'],
         [E, "#!lua flags=no-writes\nreturn redis.pcall('publish','ch','m')", '0']]),
    (2, [[E, "#!lua flags=no-writes\nreturn redis.call('set','k','v')", '0']]),
    (2, [['EVAL_RO', "#!lua\nreturn 1", '0']]),
    (2, [[E, "#!lua\nreturn redis.call('set','k','v')", '0']]),
    (2, [[E, "#!lua flags=no-writes,allow-oom\n\nerror('two')", '0']]),
    (2, [[E, "#!python\nreturn 1", '0']]),
    (2, [[E, "#!lua foo=bar\nreturn 1", '0']]),
    (2, [[E, "#!lua flags=bad\nreturn 1", '0']]),
    (2, [[E, "#!lua", '0']]),
    # RESP3 types: the script's own protocol (setresp) and the caller's.
    (2, [[E, "return {double=3.5}", '0']]),
    (3, [[E, "return {double=3.5}", '0']]),
    (3, [[E, "return {double=1/0}", '0']]),
    (2, [[E, "return {big_number='123456789012345678901234567890'}", '0']]),
    (3, [[E, "return {big_number='12\\r\\n34'}", '0']]),
    (2, [[E, "return {verbatim_string={format='txt', string='hi there'}}", '0']]),
    (3, [[E, "return {verbatim_string={format='markdown', string='hi'}}", '0']]),
    (2, [[E, "return {map={a=1}}", '0']]),
    (3, [[E, "return {map={a=1}}", '0']]),
    (2, [[E, "return {set={a=true}}", '0']]),
    (3, [[E, "return {set={a=true}}", '0']]),
    (3, [[E, 'return nil', '0']]),
    (3, [[E, 'return false', '0']]),
    (3, [[E, 'return true', '0']]),
    (3, [[E, "return {1, 'two', false, {ok='ok'}}", '0']]),
    (2, [[E, "redis.setresp(3) return {true, false}", '0']]),
    (3, [[E, "redis.setresp(3) return {true, false}", '0']]),
    (3, [[E, "redis.setresp(3) return redis.call('get', 'nokey')", '0']]),
    (3, [[E, "redis.setresp(3) return {redis.call('set', 'k', 'v'), redis.call('get', 'k'), redis.call('incr', 'n')}", '0']]),
    (2, [[E, "redis.setresp(3) return type(redis.call('get', 'nokey'))", '0']]),
    (2, [[E, "return type(redis.call('get', 'nokey'))", '0']]),
    (2, [[E, "redis.call('set','k','v') return redis.call('del','k','nokey')", '0']]),
    # lock helpers' release scripts (redis-py, redlock/Laravel), both outcomes
    (2, [['SET', 'lock', 'tok'],
         [E, "local token = redis.call('get', KEYS[1])\nif not token or token ~= ARGV[1] then\n    return 0\nend\nredis.call('del', KEYS[1])\nreturn 1\n", '1', 'lock', 'other'],
         [E, "local token = redis.call('get', KEYS[1])\nif not token or token ~= ARGV[1] then\n    return 0\nend\nredis.call('del', KEYS[1])\nreturn 1\n", '1', 'lock', 'tok'],
         ['SET', 'lock', 'tok'],
         [E, 'if redis.call("get",KEYS[1]) == ARGV[1] then return redis.call("del",KEYS[1]) else return 0 end', '1', 'lock', 'tok'],
         [E, 'if redis.call("get",KEYS[1]) == ARGV[1] then return redis.call("del",KEYS[1]) else return 0 end', '1', 'lock', 'tok']]),
    (2, [[E, "local function f()\n  error('deep')\nend\nf()", '0'],
         [E, "local function f()\n  return redis.call('nosuch')\nend\nreturn f()", '0'],
         [E, "local function f()\n  local x = nil\n  return x.y\nend\nreturn f()", '0'],
         [E, "return redis.call('incr', 'k', 'extra')", '0']]),
    (3, [[E, "return {redis.pcall('nosuch'), 1}", '0'], [E, "return redis.call('nosuch')", '0'],
         [E, "return {1, nil, 3}", '0'], [E, "return {map={k={1, false}}}", '0'],
         [E, "return redis.sha1hex('abc')", '0']]),
    (2, [[E, "local i = 0 return {load(function() i = i + 1 if i == 1 then return 'return 7' end end)()}", '0'],
         [E, "return {load(function() error('rd') end)}", '0'], [E, "return {load(function() return {} end)}", '0'],
         [E, "local f = load(function() return nil end) return type(f)", '0'],
         [E, "return {select(2, load(function() return {} end))}", '0'],
         [E, "return {select(2, loadstring('return +'))}", '0']]),
    (2, [[E, "return {type(getmetatable(_G)), type(getmetatable(string)), type(getmetatable(''))}", '0'],
         [E, "getmetatable(_G).x = 1", '0'], [E, "collectgarbage('stop') return type(collectgarbage('count'))", '0'],
         [E, "return collectgarbage('step')", '0'], [E, "collectgarbage('restart') return 1", '0'],
         [E, "return KEYS[1]", '1', 'key'], [E, "KEYS[1] = 'changed' return KEYS[1]", '1', 'key']]),
    (2, [[E, s, '0'] for s in [
        "table.insert(_G, 1)", "table.insert(string, 1, 'x')", "table.remove(string)", "table.sort(math)",
        "return table.getn(_G)", "table.setn(_G, 1)", "return {table.maxn(_G), #_G}",
        "table.insert(KEYS, 'x') return KEYS", "return {ipairs(_G)}",
        "local n = 0 for k in ipairs(_G) do n = n + 1 end return n", "return unpack(_G)",
        "return {table.concat(_G)}", "return rawget(_G, 1)"]]),
]

CJSON_CASES = [
    r"return cjson.encode({1, 2, nil, 4})", r"return cjson.encode({[10]=1})", r"return cjson.encode({[100]=1})",
    r"""return cjson.encode('\226\130\172 "x" \t')""", r"""return cjson.decode('"\\u20ac"')""",
    r"return cjson.decode('[0x10]')[1]", r"return tostring(cjson.decode('[1e400]')[1])", r"return cjson.encode(1/0)",
    r"return cjson.encode(0/0)", r"return cjson.decode('123456789012345678')", r"return cjson.encode(123456789012345678)",
    r"return cjson.encode(3.14159265358979)", r"""return cjson.decode('{"a":null}').a == cjson.null""",
    r"local t = {} local c = t for i = 1, 1100 do c[1] = {} c = c[1] end return cjson.encode(t)",
    r"return cjson.decode(string.rep('[', 1100) .. string.rep(']', 1100))",
    r"return cjson.decode('')", r"return cjson.decode('[1,]')", r"return cjson.encode(function() end)",
    r"return cjson.encode({[true]=1})", r"""return cjson.decode('"\\ud800"')""",
    r"return {cjson.encode({a=1, b={c={1,2}}})}", r"return cjson.encode_keep_buffer ~= nil",
    r"return {bit.tohex(-1), bit.tohex(255, -4), bit.arshift(-256, 4), bit.rol(1, 33), bit.bswap(1)}",
    r"return bit.band('x')",
]

CASES.append((2, [[E, s, '0'] for s in CJSON_CASES]))

def random_value(rng, depth):
    """A Lua expression for a random reply value (fixed seed: the corpus is
    the same on every recording)."""
    kinds = ['int', 'float', 'str', 'bool', 'nil'] + (['arr', 'map', 'set', 'ok', 'err', 'dbl', 'big', 'verb'] if depth < 4 else [])
    k = rng.choice(kinds)
    if k == 'int':
        return str(rng.choice([0, 1, -1, 7, 2**31, -2**40, 10**15]))
    if k == 'float':
        return rng.choice(['3.75', '-0.25', '1e300', '-1e-5', '2^53+1', '1/0', '0/0'])
    if k == 'str':
        return rng.choice(["'a'", "''", "'x y'", "'\\0z'", "'\\r\\n'", "string.rep('q', 40)"])
    if k == 'bool':
        return rng.choice(['true', 'false'])
    if k == 'nil':
        return 'nil'
    if k == 'arr':
        return '{' + ', '.join(random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))) + '}'
    if k == 'map':
        keys = rng.sample(['a', 'b', 'c', 'dd', 'e1', 'f'], rng.randint(0, 4))
        return '{map={' + ', '.join('%s=%s' % (kk, random_value(rng, depth + 1)) for kk in keys) + '}}'
    if k == 'set':
        keys = rng.sample(['a', 'b', 'c', 'dd', 'e1', 'f'], rng.randint(0, 4))
        return '{set={' + ', '.join('%s=true' % kk for kk in keys) + '}}'
    if k == 'ok':
        return "{ok='fine " + str(rng.randint(0, 9)) + "'}"
    if k == 'err':
        return rng.choice(["{err='E1 bad'}", "redis.error_reply('E2 worse')", "{err=''}"])
    if k == 'dbl':
        return '{double=' + rng.choice(['0.5', '-2', '1e21', '1/0', '-1/0', '1/3']) + '}'
    if k == 'big':
        return "{big_number='" + rng.choice(['1', '-99999999999999999999', '12a']) + "'}"
    return "{verbatim_string={format='" + rng.choice(['txt', 'mkd', 'x']) + "', string='v\\nw'}}"


def random_cases():
    import random
    rng = random.Random(20261201)
    cases = []
    for i in range(60):
        body = 'return ' + random_value(rng, 0)
        if i % 3 == 1:
            body = 'redis.setresp(3) ' + body
        cases.append((2 if i % 2 == 0 else 3, [[E, body, '0']]))
    return cases


CASES.extend(random_cases())


def enc(args):
    out = b'*%d\r\n' % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b'$%d\r\n%s\r\n' % (len(a), a)
    return out

class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(('127.0.0.1', port))
        self.buf = b''
    def fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError('server closed the connection')
        self.buf += d
    def line_end(self, pos):
        while True:
            i = self.buf.find(b'\r\n', pos)
            if i >= 0:
                return i
            self.fill()
    def parse(self, pos):
        while len(self.buf) <= pos:
            self.fill()
        t = self.buf[pos:pos + 1]
        e = self.line_end(pos)
        hdr = self.buf[pos + 1:e]
        pos = e + 2
        if t in b'$=!':
            n = int(hdr)
            if n < 0:
                return pos
            while len(self.buf) < pos + n + 2:
                self.fill()
            return pos + n + 2
        if t in b'*~>%|':
            n = int(hdr)
            if n < 0:
                return pos
            if t in b'%|':
                n *= 2
            for _ in range(n):
                pos = self.parse(pos)
            return pos
        return pos
    def cmd(self, args):
        self.s.sendall(enc(args))
        end = self.parse(0)
        r, self.buf = self.buf[:end], self.buf[end:]
        return r

def cstr(b):
    out = '"'
    for ch in b:
        c = chr(ch)
        if c == '"' or c == '\\':
            out += '\\' + c
        elif 32 <= ch < 127:
            out += c
        elif c == '\n':
            out += '\\n'
        elif c == '\r':
            out += '\\r'
        else:
            out += '\\%03o' % ch
    return out + '"'

def main():
    sys.setrecursionlimit(100000)
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 21999
    c = Conn(port)
    info = c.cmd(['INFO', 'server']).decode()
    version = [l for l in info.split('\r\n') if l.startswith('redis_version:')][0].split(':')[1]
    assert version.startswith('7.0'), version
    print('/* Generated by tests/unit/script_record.py from redis-server %s: do not edit. */' % version)
    print('#define R(s) s, sizeof(s) - 1')
    print('static const struct script_case script_cases[] = {')
    for proto, cmds in CASES:
        c.cmd(['HELLO', str(proto)])
        c.cmd(['FLUSHALL'])
        c.cmd(['SCRIPT', 'FLUSH'])
        print('    {%d, %d, {' % (proto, len(cmds)))
        for args in cmds:
            reply = c.cmd(args)
            print('        {%d, {%s}, R(%s)},' % (len(args), ', '.join(cstr(a.encode()) for a in args), cstr(reply)))
        print('    }},')
    print('};')
    print('#undef R')

main()
