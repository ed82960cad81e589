// Live streams: reconnect without loss, callbacks, many concurrent connections from one process.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, connect } from "node:net";
import { startServer, untilRunning, withTimeout } from "./support.mjs";
import { createSyncClient } from "../dist/index.mjs";

let server;
let client;
let token;
before(async () => {
  server = await startServer();
  token = server.token();
  client = createSyncClient({ baseUrl: server.url, auth: { type: "token", token }, source: "node-tests" });
});
after(() => server.stop());

/** A TCP proxy on loopback that cuts every connection at an interval. */
async function cuttingProxy(targetPort, interval) {
  const sockets = new Set();
  const proxy = createServer((downstream) => {
    const upstream = connect(targetPort, "127.0.0.1");
    for (const socket of [downstream, upstream]) {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => sockets.delete(socket));
    }
    downstream.pipe(upstream).pipe(downstream);
  });
  await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const state = { cuts: 0, port: proxy.address().port };
  const timer = setInterval(() => {
    if (sockets.size) state.cuts += 1;
    for (const socket of sockets) socket.destroy();
  }, interval);
  state.stop = () => { clearInterval(timer); proxy.close(); for (const socket of sockets) socket.destroy(); };
  return state;
}

test("reconnects resume without loss or duplicates", async () => {
  const session = await client.createSession();
  const direct = client.connect(session.id);
  await untilRunning(direct);
  const words = Array.from({ length: 300 }, (_, index) => `w${index + 1}`).join(" ");
  await direct.sendPrompt(`[[delay:10]] [[say:${words}]]`);
  await direct.close();

  const proxy = await cuttingProxy(server.port, 400);
  const proxied = createSyncClient({ baseUrl: `http://127.0.0.1:${proxy.port}`, auth: { type: "token", token } });
  const connection = proxied.connect(session.id);
  const seqs = [];
  let reconnects = 0;
  for await (const update of withTimeout(connection.updates(), 120_000)) {
    if (update.type === "reconnecting") reconnects += 1;
    if (update.type === "event") {
      seqs.push(update.event.seq);
      if (update.event.event.type === "turn_completed") break;
    }
  }
  await connection.close();
  proxy.stop();
  assert.ok(proxy.cuts >= 2 && reconnects >= 2, `${proxy.cuts} cuts, ${reconnects} reconnects`);
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, index) => index + 1), "every seq once, in order");
  const page = await client.events(session.id, { limit: 10000 });
  assert.deepEqual(page.events.map((envelope) => envelope.seq), seqs);

  await client.deleteSession(session.id);
});

test("callbacks see open, every event, and close", async () => {
  const session = await client.createSession();
  const events = [];
  let opened = 0;
  let closed;
  const done = new Promise((resolve) => { closed = resolve; });
  let turnDone;
  const completed = new Promise((resolve) => { turnDone = resolve; });
  const connection = client.connect(session.id, {
    onOpen: () => { opened += 1; },
    onEvent: (envelope) => {
      events.push(envelope);
      if (envelope.event.type === "turn_completed") turnDone();
    },
    onClose: () => closed(),
  });
  await connection.sendPrompt("[[say:called back]]", { promptId: "prm_callback" });
  await completed;
  await connection.close();
  await done;
  assert.equal(opened, 1);
  assert.deepEqual(events.map((envelope) => envelope.seq), Array.from({ length: events.length }, (_, index) => index + 1));
  await client.deleteSession(session.id);
});

test("a connection that cannot reconnect reports it and closes", async () => {
  const nowhere = createSyncClient({ baseUrl: "http://127.0.0.1:9", auth: { type: "token", token } });
  let failure;
  await new Promise((resolve) => {
    nowhere.connect("ses_x", { maxReconnectAttempts: 2, onReconnectFailed: (error) => { failure = error; }, onClose: resolve });
  });
  assert.equal(failure?.code, "unavailable");
});

test("many concurrent connections from one process", async () => {
  const session = await client.createSession({ title: "fan-out" });
  const first = client.connect(session.id);
  await untilRunning(first);
  const followers = Array.from({ length: 50 }, () => client.connect(session.id));
  const admission = await first.sendPrompt("[[say:one answer for fifty readers]]");
  const read = async (connection) => {
    const seqs = [];
    for await (const envelope of withTimeout(connection, 120_000)) {
      seqs.push(envelope.seq);
      if (envelope.event.type === "turn_completed" && envelope.event.prompt_id === admission.prompt_id) break;
    }
    await connection.close();
    return seqs;
  };
  const results = await Promise.all(followers.map(read));
  await first.close();
  for (const seqs of results) assert.deepEqual(seqs, results[0], "every reader saw the same events");
  assert.deepEqual(results[0], Array.from({ length: results[0].length }, (_, index) => index + 1));
  const sessions = await client.listSessions({ limit: 100 });
  assert.ok(sessions.sessions.some((each) => each.id === session.id));
  const usage = await client.usage(session.id);
  assert.ok(usage.requests >= 1 && usage.total.output > 0, JSON.stringify(usage));
  assert.equal(usage.by_model[0].model, "scripted/scripted-model");
  const organization = await client.organizationUsage({ end: 0 });
  assert.equal(organization.requests, 0, "nothing was spent before 1970");
  await client.deleteSession(session.id);
});

test("presence arrives as typed updates", async () => {
  const session = await client.createSession();
  const nextOf = async (connection, type, accept = () => true) => {
    for await (const update of withTimeout(connection.updates(), 60_000)) {
      if (update.type === type && accept(update)) return update;
    }
    throw new Error(`the connection closed before a ${type} update`);
  };
  const ids = (entries) => entries.map((entry) => entry.connection_id).sort();
  const first = client.connect(session.id);
  const firstId = (await nextOf(first, "connected")).welcome.connection_id;
  const second = client.connect(session.id);
  const { welcome } = await nextOf(second, "connected");
  const both = [firstId, welcome.connection_id].sort();
  assert.deepEqual(ids(welcome.connections), both);
  const joined = await nextOf(first, "presence_changed", (update) =>
    update.presence_changed.joined.some((entry) => entry.connection_id === welcome.connection_id));
  assert.deepEqual(joined.presence_changed.left, []);
  await first.requestPresence();
  const { presence } = await nextOf(first, "presence");
  assert.deepEqual(ids(presence.connections), both);
  await second.close();
  await nextOf(first, "presence_changed", (update) => update.presence_changed.left.includes(welcome.connection_id));
  await first.close();
});
