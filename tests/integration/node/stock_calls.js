// stock_calls.js: the calls apps make every day through node-redis and
// ioredis, with each library's own API (not a shim): transactions, Lua
// (EVAL, and EVALSHA of a loaded script), hashes, sets, counters with a TTL,
// a database other than 0 in the connection options, and WAIT; against one
// node, or a 3-node cluster whose every key replicates (then what one node
// wrote is read through the others, and WAIT counts the 2 other members).
// Started by tests/integration/test_stock_clients.py.
//
// Owns: one client of the chosen library per port, and the checks below.
// Never: starts or stops a server, or talks to anything but 127.0.0.1.
//
// Run: node stock_calls.js redis|ioredis PORT [PORT PORT]
// Prints "ok NAME" per check; exits 1 with the failed check's message on
// the first failure.
'use strict';

const assert = require('node:assert/strict');

const [lib, ...portArgs] = process.argv.slice(2);
const ports = portArgs.map(Number);
if (!['redis', 'ioredis'].includes(lib) || ![1, 3].includes(ports.length) ||
    ports.some(isNaN)) {
  console.error('usage: node stock_calls.js redis|ioredis PORT [PORT PORT]');
  process.exit(2);
}

// redis-py's Lock release script (and most lock helpers').
const RELEASE = 'if redis.call("get", KEYS[1]) == ARGV[1] then ' +
                'return redis.call("del", KEYS[1]) else return 0 end';

async function connect(port, db = 0) {
  if (lib === 'redis') {
    const { createClient } = require('redis');
    const c = createClient({ url: `redis://127.0.0.1:${port}/${db}`,
                             socket: { reconnectStrategy: false } });
    c.on('error', (e) => console.error('node-redis:', e.message));
    await c.connect();
    return c;
  }
  const { Redis } = require('ioredis');
  const c = new Redis({ host: '127.0.0.1', port, db, lazyConnect: true,
                        maxRetriesPerRequest: 0, retryStrategy: () => null });
  c.on('error', (e) => console.error('ioredis:', e.message));
  await c.connect();
  return c;
}

const R = lib === 'redis';
const checks = [];
function check(name, fn) { checks.push([name, fn]); }

check('MULTI/EXEC', async ([a]) => {
  const got = R
    ? await a.multi().set('tx:a', '1').incr('tx:n').incrBy('tx:n', 4).get('tx:a').exec()
    : (await a.multi().set('tx:a', '1').incr('tx:n').incrby('tx:n', 4).get('tx:a').exec())
        .map(([err, v]) => { assert.equal(err, null); return v; });
  assert.deepEqual(got, ['OK', 1, 5, '1']);
});

check('EVAL and EVALSHA lock release', async ([a, ...others]) => {
  assert.equal(await (R ? a.set('lock:job', 'tok-a', { NX: true, PX: 10000 })
                        : a.set('lock:job', 'tok-a', 'PX', 10000, 'NX')), 'OK');
  const evalRelease = (c, tok) => (R ? c.eval(RELEASE, { keys: ['lock:job'], arguments: [tok] })
                                     : c.eval(RELEASE, 1, 'lock:job', tok));
  assert.equal(await evalRelease(a, 'tok-b'), 0); // not the owner
  for (const o of others) assert.equal(await o.get('lock:job'), 'tok-a');
  assert.equal(await evalRelease(a, 'tok-a'), 1);
  for (const o of [a, ...others]) assert.equal(await o.get('lock:job'), null);
  const sha = R ? await a.scriptLoad(RELEASE) : await a.script('LOAD', RELEASE);
  await a.set('lock:job', 'tok-c');
  const last = others.length ? others[others.length - 1] : a;
  if (last !== a) { // the script is loaded on a only
    await assert.rejects(R ? last.evalSha(sha, { keys: ['lock:job'], arguments: ['tok-c'] })
                           : last.evalsha(sha, 1, 'lock:job', 'tok-c'), /NOSCRIPT/);
  }
  assert.equal(await (R ? a.evalSha(sha, { keys: ['lock:job'], arguments: ['tok-c'] })
                        : a.evalsha(sha, 1, 'lock:job', 'tok-c')), 1);
  assert.equal(await last.get('lock:job'), null);
});

check('hashes', async ([a, ...others]) => {
  assert.equal(await (R ? a.hSet('user:1', { name: 'ada', visits: '1' })
                        : a.hset('user:1', { name: 'ada', visits: '1' })), 2);
  assert.equal(await (R ? a.hIncrBy('user:1', 'visits', 2) : a.hincrby('user:1', 'visits', 2)), 3);
  for (const c of [a, ...others]) {
    assert.deepEqual(await (R ? c.hGetAll('user:1') : c.hgetall('user:1')),
                     { name: 'ada', visits: '3' });
  }
  assert.equal(await (R ? a.hDel('user:1', 'name') : a.hdel('user:1', 'name')), 1);
  for (const c of others) assert.equal(await (R ? c.hGet('user:1', 'name') : c.hget('user:1', 'name')), null);
});

check('sets', async ([a, ...others]) => {
  assert.equal(await (R ? a.sAdd('tags', ['x', 'y', 'z']) : a.sadd('tags', 'x', 'y', 'z')), 3);
  assert.equal(await (R ? a.sRem('tags', 'y') : a.srem('tags', 'y')), 1);
  for (const c of [a, ...others]) {
    assert.deepEqual((await (R ? c.sMembers('tags') : c.smembers('tags'))).sort(), ['x', 'z']);
    assert.equal(Boolean(await (R ? c.sIsMember('tags', 'x') : c.sismember('tags', 'x'))), true);
  }
});

check('counters with a TTL', async ([a, ...others]) => {
  assert.equal(await a.incr('rate:ip'), 1);
  assert.equal(Number(await a.expire('rate:ip', 60)), 1);
  assert.equal(await (R ? a.incrBy('rate:ip', 9) : a.incrby('rate:ip', 9)), 10);
  assert.equal(await a.decr('rate:ip'), 9);
  for (const c of [a, ...others]) {
    assert.equal(await c.get('rate:ip'), '9');
    const ttl = await c.ttl('rate:ip');
    assert.ok(ttl > 50 && ttl <= 60, `ttl ${ttl}`);
  }
});

check('database 1 in the connection options', async () => {
  const d1 = await connect(ports[0], 1);
  const d0 = await connect(ports[ports.length - 1], 0);
  try {
    await d1.set('db:key', 'in-1');
    assert.equal(await d0.get('db:key'), null);
    assert.equal(await d1.get('db:key'), 'in-1');
    if (ports.length > 1) {
      const o1 = await connect(ports[1], 1);
      assert.equal(await o1.get('db:key'), 'in-1');
      await o1.quit();
    }
    assert.equal(await d1.del('db:key'), 1);
  } finally {
    await d1.quit();
    await d0.quit();
  }
});

check('WAIT', async ([a]) => {
  await a.set('w:k', 'v');
  assert.equal(await a.wait(ports.length - 1, 1000), ports.length - 1);
});

(async () => {
  const cs = [];
  try {
    for (const p of ports) cs.push(await connect(p));
    for (const [name, fn] of checks) {
      try {
        await fn(cs);
      } catch (e) {
        console.error(`FAIL ${lib}: ${name}: ${e.stack}`);
        process.exitCode = 1;
        return;
      }
      console.log(`ok ${lib}: ${name}`);
    }
  } finally {
    for (const c of cs) await c.quit().catch(() => {});
  }
})();
