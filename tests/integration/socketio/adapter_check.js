// adapter_check: one socket.io server per cohortd node (two or more), each
// through @socket.io/redis-adapter (node-redis clients), and one socket.io
// client per server. Clients of every server but the last join "room1"; the
// last one's client joins "roomN". Checks, across the nodes: a room broadcast
// emitted on the last server reaches exactly the room's clients on the other
// servers; a broadcast to everyone from server 2 reaches every client;
// fetchSockets() on the last server finds the room's sockets on the others;
// serverSideEmit with an acknowledgement on the last server gets every other
// server's answer (the adapter waits for as many answers as PUBSUB NUMSUB /
// SHARDNUMSUB reports); serverCount() counts every server. Prints one JSON
// line with what it saw; exits non-zero on any failure or after 60 s.
//
// usage: node adapter_check.js classic|sharded PORT1 PORT2 [PORT3 ...]
"use strict";
const http = require("http");
const { Server } = require("socket.io");
const { io: ioClient } = require("socket.io-client");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

const [mode, ...ports] = process.argv.slice(2);
const sharded = mode === "sharded";
const cleanup = [];

setTimeout(() => {
  console.error("adapter_check: timed out");
  process.exit(2);
}, 60000).unref();

async function server(port) {
  const pub = createClient({ url: `redis://127.0.0.1:${port}` });
  const sub = pub.duplicate();
  pub.on("error", (e) => console.error("pub", port, e.message));
  sub.on("error", (e) => console.error("sub", port, e.message));
  await Promise.all([pub.connect(), sub.connect()]);
  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    adapter: sharded ? createShardedAdapter(pub, sub) : createAdapter(pub, sub),
  });
  await new Promise((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  cleanup.push(async () => {
    io.close();
    await Promise.allSettled([pub.quit(), sub.quit()]);
  });
  return { io, pub, port: httpServer.address().port };
}

// Every channel either node lists, with its subscriber count on each node.
async function views(clients) {
  const kind = sharded ? "SHARD" : "";
  const names = new Set();
  for (const c of clients)
    for (const ch of await c.sendCommand(["PUBSUB", kind + "CHANNELS"])) names.add(ch);
  const out = [];
  for (const c of clients) {
    const counts = names.size ? await c.sendCommand(["PUBSUB", kind + "NUMSUB", ...names]) : [];
    out.push(JSON.stringify(counts));
  }
  return { names, out };
}

// Waits until every node counts the same subscribers on every channel (each
// node has learned the others' subscriptions) and every server subscribed.
async function settled(clients, minChannels) {
  for (let i = 0; i < 300; i++) {
    const v = await views(clients);
    if (v.names.size >= minChannels && v.out.every((o) => o === v.out[0])) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("the nodes never agreed on the subscriptions");
}

function connected(port) {
  const c = ioClient(`http://127.0.0.1:${port}`, { transports: ["websocket"] });
  cleanup.push(async () => c.close());
  return new Promise((resolve, reject) => {
    c.on("connect", () => resolve(c));
    c.on("connect_error", reject);
  });
}

// Resolves with the "msg" events c got within ms milliseconds.
function collect(c, ms) {
  const got = [];
  const on = (m) => got.push(m);
  c.on("msg", on);
  return new Promise((resolve) => setTimeout(() => {
    c.off("msg", on);
    resolve(got);
  }, ms));
}

async function main() {
  const servers = [];
  for (const p of ports) servers.push(await server(p));
  const last = servers[servers.length - 1];
  const before = (await views([servers[0].pub])).names.size;
  servers.forEach((s, i) => {
    const room = s === last ? "roomN" : "room1";
    s.io.on("connection", (socket) => socket.join(room));
    s.io.on("ping", (cb) => cb(`pong from server ${i + 1}`));
  });
  const clients = [];
  for (const s of servers) clients.push(await connected(s.port));
  await settled(servers.map((s) => s.pub), Math.max(before, 1));

  const roomMsgs = Promise.all(clients.map((c) => collect(c, 1500)));
  last.io.to("room1").emit("msg", `to room1 from server ${servers.length}`);
  const room = await roomMsgs;
  const allMsgs = Promise.all(clients.map((c) => collect(c, 1500)));
  servers[1].io.emit("msg", "to everyone from server 2");
  const everyone = await allMsgs;

  const sockets = await last.io.in("room1").fetchSockets();
  const acks = await new Promise((resolve, reject) =>
    last.io.serverSideEmit("ping", (err, responses) => (err ? reject(err) : resolve(responses))));
  // the adapter counts the servers with PUBSUB NUMSUB (SHARDNUMSUB)
  const counts = [];
  for (const s of servers) counts.push(await s.io.of("/").adapter.serverCount());
  console.log(JSON.stringify({
    room, everyone, client_ids: clients.map((c) => c.id),
    fetched: sockets.map((s) => s.id).sort(), acks: acks.sort(), server_counts: counts,
  }));
}

main()
  .then(async () => {
    for (const f of cleanup.reverse()) await f();
    process.exit(0);
  })
  .catch(async (e) => {
    console.error("adapter_check:", e && e.stack ? e.stack : e);
    for (const f of cleanup.reverse()) await f().catch(() => {});
    process.exit(1);
  });
