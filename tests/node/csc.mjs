// node-redis (v5) with its client-side cache against two cohortd nodes of one
// cluster: reads on node B are served from the process's own cache, and a
// DEL, a FLUSHPREFIX, a SEED and an expiry through node A (or B's own
// expiry) invalidate them. After A's reply, one round trip on B's caching
// connection (PING) is enough: cohortd wrote the invalidation push into B's
// socket before A's reply could come back, so node-redis has read it before
// PONG. A connection killed on the server side drops the cache and
// tracks again once reconnected. Usage: node csc.mjs PORT_B PORT_A. Prints "ok" and exits 0, or
// throws (exit 1) with what differed.
import { createClient, BasicClientSideCache } from 'redis';
import assert from 'node:assert/strict';

const [portB, portA] = process.argv.slice(2).map(Number);
const cache = new BasicClientSideCache({ ttl: 0, maxEntries: 0 });
const csc = createClient({ url: `redis://127.0.0.1:${portB}`, RESP: 3, clientSideCache: cache });
const b = createClient({ url: `redis://127.0.0.1:${portB}` });
const a = createClient({ url: `redis://127.0.0.1:${portA}` });
for (const c of [csc, a, b]) {
  c.on('error', (e) => { console.error('client error', e); process.exit(1); });
  await c.connect();
}

// The reads node B itself answered (hits and misses of its cache).
async function serverReads() {
  const info = await b.info('stats');
  const field = (name) => Number(info.match(new RegExp(`^${name}:(\\d+)`, 'm'))[1]);
  return field('keyspace_hits') + field('keyspace_misses');
}

// Reads k through the caching client many times: only the first may reach
// the server. Returns the value.
async function readCached(k) {
  const v = await csc.get(k);
  const before = await serverReads();
  for (let i = 0; i < 100; i++) assert.equal(await csc.get(k), v);
  assert.equal(await serverReads(), before, `reads of ${k} were not served locally`);
  return v;
}

async function sync() { await csc.ping(); }

await b.set('user:1', 'v1');
assert.equal(await readCached('user:1'), 'v1');
assert.equal(await a.del('user:1'), 0); // a fill of B only: A holds no value, the flush still goes
await sync();
assert.equal(await readCached('user:1'), null);

await b.set('page:1', 'p');
assert.equal(await readCached('page:1'), 'p');
await a.sendCommand(['FLUSHPREFIX', 'page:']);
await sync();
assert.equal(await readCached('page:1'), null);

assert.equal(await readCached('seeded'), null);
await a.sendCommand(['SEED', 'seeded', 'from-a']);
await sync();
assert.equal(await readCached('seeded'), 'from-a');

await b.set('short', 'x', { PX: 300 });
assert.equal(await readCached('short'), 'x');
const deadline = Date.now() + 10000;
let v = 'x';
while (v !== null && Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 50));
  v = await csc.get('short');
}
assert.equal(v, null, 'the expiry did not invalidate the cached value');

await b.set('all', 'x');
assert.equal(await readCached('all'), 'x');
await a.flushAll();
await sync();
assert.equal(await readCached('all'), null);

const stats = cache.stats(); // (reset when the cache is dropped below)
assert.ok(stats.hitCount >= 500, `hits ${stats.hitCount}`);

// A connection that breaks: node-redis drops its cache when the socket
// fails, reconnects and turns tracking on again; invalidation works again.
await b.set('rc', 'before');
assert.equal(await readCached('rc'), 'before');
const id = await csc.sendCommand(['CLIENT', 'ID']);
const ready = new Promise((resolve) => csc.once('ready', resolve));
csc.removeAllListeners('error');
csc.on('error', () => {}); // the killed socket's error is expected
await b.sendCommand(['CLIENT', 'KILL', 'ID', String(id)]);
await ready;
assert.equal(cache.size(), 0, 'the cache was not dropped on the broken connection');
await b.set('rc', 'after');
assert.equal(await readCached('rc'), 'after');
await a.del('rc');
await sync();
assert.equal(await readCached('rc'), null);

for (const c of [csc, a, b]) await c.quit();
console.log('ok');
