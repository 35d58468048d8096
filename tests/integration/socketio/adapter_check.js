// adapter_check: two socket.io servers, each on its own cohortd node through
// @socket.io/redis-adapter (node-redis clients), and one socket.io client on
// server 1. Checks, across the two nodes: a room broadcast emitted on server
// 2 reaches the client; fetchSockets() on server 2 finds the client's socket;
// serverSideEmit with an acknowledgement on server 2 gets server 1's answer (the adapter waits
// for as many answers as PUBSUB NUMSUB / SHARDNUMSUB reports). Prints one
// JSON line with what it saw; exits non-zero on any failure or after 30 s.
//
// usage: node adapter_check.js classic|sharded PORT1 PORT2
"use strict";
const http = require("http");
const { Server } = require("socket.io");
const { io: ioClient } = require("socket.io-client");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

const [mode, port1, port2] = process.argv.slice(2);
const sharded = mode === "sharded";
const cleanup = [];

setTimeout(() => {
  console.error("adapter_check: timed out");
  process.exit(2);
}, 30000).unref();

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

// Waits until both nodes count the same subscribers on every channel (each
// node has learned the other's subscriptions) and both servers subscribed.
async function settled(clients, minChannels) {
  for (let i = 0; i < 300; i++) {
    const v = await views(clients);
    if (v.names.size >= minChannels && v.out.every((o) => o === v.out[0])) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("the two nodes never agreed on the subscriptions");
}

async function main() {
  const s1 = await server(port1);
  const s2 = await server(port2);
  const before = (await views([s1.pub])).names.size;
  s1.io.on("connection", (socket) => socket.join("room1"));
  s1.io.on("ping", (cb) => cb("pong from server 1"));
  const client = ioClient(`http://127.0.0.1:${s1.port}`, { transports: ["websocket"] });
  cleanup.push(async () => client.close());
  await new Promise((resolve, reject) => {
    client.on("connect", resolve);
    client.on("connect_error", reject);
  });
  await settled([s1.pub, s2.pub], Math.max(before, 1));

  const got = new Promise((resolve) => client.on("msg", resolve));
  s2.io.to("room1").emit("msg", "hello from server 2");
  const broadcast = await got;

  const sockets = await s2.io.in("room1").fetchSockets();
  const acks = await new Promise((resolve, reject) =>
    s2.io.serverSideEmit("ping", (err, responses) => (err ? reject(err) : resolve(responses))));
  // the adapter counts the servers with PUBSUB NUMSUB (SHARDNUMSUB)
  const servers = await s2.io.of("/").adapter.serverCount();
  console.log(JSON.stringify({
    broadcast, client_id: client.id, fetched: sockets.map((s) => s.id), acks,
    server_count_from_2: servers,
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
