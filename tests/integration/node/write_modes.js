// write_modes.js: cohort's write modes seen through a stock Node.js client,
// on a 3-node cluster started by tests/integration/test_write_modes_clients.py.
//
// Owns: one client of the chosen library per node, and the checks below.
// Never: starts or stops a server, or talks to anything but 127.0.0.1.
//
// Run: node write_modes.js redis|ioredis modes|races PORT1 PORT2 PORT3
// (modes: the checks of each mode; races: concurrent read-modify-writes of
// one key through different nodes, which src/cluster/WRITES.md lists as not
// linearizable yet)
// The cluster's keyspaces (set by the test): everything replicate, except
// "page:" (invalidate) and "tmp:" (local). Prints "ok NAME" per check; exits
// 1 with the failed check's message on the first failure.
'use strict';

const assert = require('node:assert/strict');

const [lib, group, ...portArgs] = process.argv.slice(2);
const ports = portArgs.map(Number);
if (!['redis', 'ioredis'].includes(lib) || !['modes', 'races'].includes(group) ||
    ports.length !== 3 || ports.some(isNaN)) {
  console.error('usage: node write_modes.js redis|ioredis modes|races PORT1 PORT2 PORT3');
  process.exit(2);
}

// One small interface over both libraries: what an app calls.
async function connect(port) {
  if (lib === 'redis') {
    const { createClient } = require('redis');
    const c = createClient({ socket: { host: '127.0.0.1', port, reconnectStrategy: false } });
    c.on('error', (e) => console.error('node-redis:', e.message));
    await c.connect();
    return {
      set: (k, v, o = {}) => c.set(k, v, o.px ? { PX: o.px, NX: !!o.nx } : o.ex ? { EX: o.ex } : {}),
      get: (k) => c.get(k),
      del: (k) => c.del(k),
      incr: (k) => c.incr(k),
      incrBy: (k, n) => c.incrBy(k, n),
      pttl: (k) => c.pTTL(k),
      ttl: (k) => c.ttl(k),
      quit: () => c.quit(),
    };
  }
  const { Redis } = require('ioredis');
  const c = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0,
                        retryStrategy: () => null });
  c.on('error', (e) => console.error('ioredis:', e.message));
  await c.connect();
  return {
    set: (k, v, o = {}) => (o.px ? (o.nx ? c.set(k, v, 'PX', o.px, 'NX') : c.set(k, v, 'PX', o.px))
                                  : o.ex ? c.set(k, v, 'EX', o.ex) : c.set(k, v)),
    get: (k) => c.get(k),
    del: (k) => c.del(k),
    incr: (k) => c.incr(k),
    incrBy: (k, n) => c.incrby(k, n),
    pttl: (k) => c.pttl(k),
    ttl: (k) => c.ttl(k),
    quit: () => c.quit(),
  };
}

const checks = { modes: [], races: [] };
function check(name, fn, g = 'modes') { checks[g].push([name, fn]); }

// write-through: the app updates a row, then writes the new value through
// its cache on node A; node B and C serve the new value right after.
check('write-through cache', async ([a, b, c]) => {
  assert.equal(await a.set('user:1', JSON.stringify({ name: 'old' }), { ex: 300 }), 'OK');
  assert.deepEqual(JSON.parse(await b.get('user:1')), { name: 'old' });
  assert.equal(await a.set('user:1', JSON.stringify({ name: 'new' }), { ex: 300 }), 'OK');
  for (const x of [a, b, c]) assert.deepEqual(JSON.parse(await x.get('user:1')), { name: 'new' });
  const ttl = await c.ttl('user:1');
  assert.ok(ttl > 200 && ttl <= 300, `ttl on C ${ttl}`);
  assert.equal(await b.del('user:1'), 1);
  for (const x of [a, b, c]) assert.equal(await x.get('user:1'), null);
});

// a session written on login through A (as connect-redis stores one: JSON
// under "sess:ID", SET with EX) is read by the next request on B, changed
// there, and read back through C and A; logout (DEL) through C.
check('session across nodes', async ([a, b, c]) => {
  const sid = 'sess:' + Math.random().toString(36).slice(2);
  assert.equal(await a.set(sid, JSON.stringify({ user: 42, cart: [] }), { ex: 1800 }), 'OK');
  const onB = JSON.parse(await b.get(sid));
  assert.deepEqual(onB, { user: 42, cart: [] });
  onB.cart.push('book');
  assert.equal(await b.set(sid, JSON.stringify(onB), { ex: 1800 }), 'OK');
  assert.deepEqual(JSON.parse(await c.get(sid)), { user: 42, cart: ['book'] });
  assert.deepEqual(JSON.parse(await a.get(sid)), { user: 42, cart: ['book'] });
  const ttl = await c.ttl(sid);
  assert.ok(ttl > 1700 && ttl <= 1800, `session ttl on C ${ttl}`);
  assert.equal(await c.del(sid), 1);
  for (const x of [a, b]) assert.equal(await x.get(sid), null);
});

// counters: INCR through each node in turn.
check('counters through different nodes', async (cs) => {
  for (let i = 0; i < 30; i++) assert.equal(await cs[i % 3].incr('hits'), i + 1);
  assert.equal(await cs[1].incrBy('hits', 10), 40);
  for (const x of cs) assert.equal(await x.get('hits'), '40');
});

// a lock: SET key token NX PX on A; B and C cannot take it; once A releases
// it, B can.
check('lock with SET NX PX', async ([a, b, c]) => {
  assert.equal(await a.set('lock:report', 'tok-a', { nx: true, px: 10000 }), 'OK');
  assert.equal(await b.set('lock:report', 'tok-b', { nx: true, px: 10000 }), null);
  assert.equal(await c.set('lock:report', 'tok-c', { nx: true, px: 10000 }), null);
  assert.equal(await c.get('lock:report'), 'tok-a');
  const pttl = await b.pttl('lock:report');
  assert.ok(pttl > 5000 && pttl <= 10000, `lock pttl on B ${pttl}`);
  assert.equal(await a.del('lock:report'), 1);
  assert.equal(await b.set('lock:report', 'tok-b', { nx: true, px: 10000 }), 'OK');
  assert.equal(await a.get('lock:report'), 'tok-b');
});

// concurrent INCRs from all three nodes: no value returned twice, none lost.
check('concurrent counters', async (cs) => {
  const got = await Promise.all(Array.from({ length: 90 }, (_, i) => cs[i % 3].incr('chits')));
  assert.equal(new Set(got).size, 90, 'two INCRs returned the same value');
  for (const x of cs) assert.equal(await x.get('chits'), '90');
}, 'races');

// concurrent takers of one lock on all three nodes: exactly one wins.
check('concurrent SET NX PX', async (cs) => {
  for (let round = 0; round < 20; round++) {
    const k = 'lock:race:' + round;
    const won = await Promise.all(cs.map((x, i) => x.set(k, 'tok' + i, { nx: true, px: 10000 })));
    assert.equal(won.filter((r) => r === 'OK').length, 1, `round ${round} winners: ${won}`);
    const holder = won.indexOf('OK');
    for (const x of cs) assert.equal(await x.get(k), 'tok' + holder);
  }
}, 'races');

// invalidate keyspace (page:): a SET on A drops B's different value.
check('invalidate keyspace', async ([a, b, c]) => {
  assert.equal(await b.set('page:/home', 'old render'), 'OK');
  assert.equal(await a.set('page:/home', 'new render'), 'OK');
  assert.equal(await a.get('page:/home'), 'new render');
  for (const x of [b, c]) {
    const v = await x.get('page:/home');
    assert.ok(v === null || v === 'new render', `stale page served: ${v}`);
  }
});

// local keyspace (tmp:): a fill of one node; a DEL still reaches every node.
check('local keyspace', async ([a, b, c]) => {
  assert.equal(await a.set('tmp:x', 'on-a'), 'OK');
  assert.equal(await b.set('tmp:x', 'on-b'), 'OK');
  assert.equal(await a.get('tmp:x'), 'on-a');
  assert.equal(await b.get('tmp:x'), 'on-b');
  assert.equal(await c.get('tmp:x'), null);
  await c.del('tmp:x');
  for (const x of [a, b]) assert.equal(await x.get('tmp:x'), null);
});

(async () => {
  const cs = [];
  try {
    for (const p of ports) cs.push(await connect(p));
    for (const [name, fn] of checks[group]) {
      try {
        await fn(cs);
      } catch (e) {
        console.error(`FAIL ${lib}: ${name}: ${e.message}`);
        process.exitCode = 1;
        return;
      }
      console.log(`ok ${lib}: ${name}`);
    }
  } finally {
    for (const c of cs) await c.quit().catch(() => {});
  }
})();
