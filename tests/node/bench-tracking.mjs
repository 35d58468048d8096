// bench-tracking: the Node.js side of bench/tracking. Against node B of a
// cluster, one node-redis client reads random keys, one request in flight,
// with 1% writes (SEED of a random key through node A: a replicated write
// that invalidates every node's copy), for --seconds, once without and once
// with node-redis's client-side cache. Then the invalidation latency: a
// RESP3 socket on B tracks a key; a SEED through A is timed until the push
// arrives on B's socket. Every read's value is checked against the last
// write acknowledged (a stale read is counted, and fails the run).
// Prints "name value" lines. Usage: node bench-tracking.mjs PORT_A PORT_B SECONDS SAMPLES
import { createClient } from 'redis';
import net from 'node:net';

const [portA, portB, seconds, samples] = process.argv.slice(2).map(Number);
const KEYS = 1000;

function pct(sorted, p) {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

async function readLoop(csc) {
  const opts = { url: `redis://127.0.0.1:${portB}`, RESP: 3 };
  if (csc) opts.clientSideCache = { ttl: 0, maxEntries: 0 };
  const r = createClient(opts);
  const w = createClient({ url: `redis://127.0.0.1:${portA}` });
  for (const c of [r, w]) { c.on('error', (e) => { console.error(e); process.exit(1); }); await c.connect(); }
  const current = new Map();
  for (let i = 0; i < KEYS; i++) {
    await w.sendCommand(['SEED', `k${i}`, 'v0']);
    current.set(`k${i}`, 'v0');
  }
  const lat = [];
  let reads = 0, writes = 0, stale = 0, version = 0;
  const end = process.hrtime.bigint() + BigInt(seconds) * 1000000000n;
  while (process.hrtime.bigint() < end) {
    const k = `k${Math.floor(Math.random() * KEYS)}`;
    if (Math.random() < 0.01) {
      const v = `v${++version}`;
      await w.sendCommand(['SEED', k, v]);
      await r.ping(); // B wrote the push before A's reply: read it now
      current.set(k, v);
      writes++;
      continue;
    }
    const t0 = process.hrtime.bigint();
    const v = await r.get(k);
    lat.push(Number(process.hrtime.bigint() - t0) / 1000);
    reads++;
    if (v !== current.get(k)) stale++;
  }
  lat.sort((a, b) => a - b);
  const tag = csc ? 'csc' : 'plain';
  console.log(`${tag}_reads_per_s ${Math.round(reads / seconds)}`);
  console.log(`${tag}_read_p50_us ${pct(lat, 50).toFixed(1)}`);
  console.log(`${tag}_read_p99_us ${pct(lat, 99).toFixed(1)}`);
  console.log(`${tag}_writes ${writes}`);
  console.log(`${tag}_stale ${stale}`);
  await r.quit();
  await w.quit();
  return stale;
}

function resp(...args) {
  return `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('');
}

async function invalidationLatency() {
  const w = createClient({ url: `redis://127.0.0.1:${portA}` });
  await w.connect();
  const s = net.connect(portB, '127.0.0.1');
  s.setNoDelay(true);
  let buf = '';
  let waiter = null;
  s.on('data', (d) => { buf += d.toString('latin1'); if (waiter) waiter(); });
  const waitFor = (pred) => new Promise((resolve) => {
    const check = () => { if (pred(buf)) { waiter = null; resolve(); } };
    waiter = check;
    check();
  });
  await new Promise((r) => s.once('connect', r));
  s.write(resp('HELLO', '3') + resp('CLIENT', 'TRACKING', 'ON'));
  await waitFor((b) => b.includes('+OK\r\n'));
  buf = '';
  const lat = [];
  for (let i = 0; i < samples; i++) {
    const key = `inv${i}`;
    s.write(resp('GET', key));
    await waitFor((b) => b.length > 0);
    buf = '';
    const t0 = process.hrtime.bigint();
    const done = waitFor((b) => b.includes('invalidate'));
    await w.sendCommand(['SEED', key, 'x']);
    await done;
    lat.push(Number(process.hrtime.bigint() - t0) / 1000);
    buf = '';
  }
  lat.sort((a, b) => a - b);
  console.log(`inval_p50_us ${pct(lat, 50).toFixed(1)}`);
  console.log(`inval_p99_us ${pct(lat, 99).toFixed(1)}`);
  s.destroy();
  await w.quit();
}

let stale = await readLoop(false);
stale += await readLoop(true);
await invalidationLatency();
process.exit(stale ? 1 : 0);
