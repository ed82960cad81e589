// The client's push subscription: callbacks in order and one at a time, a cursor that moves as
// they are handed updates, and a subscription that stops when cancelled.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { startServer } from "./support.mjs";
import { createSyncClient } from "../dist/index.mjs";

let server;
let client;
before(async () => {
  server = await startServer();
  client = createSyncClient({ baseUrl: server.url, auth: { type: "token", token: server.token() } });
});
after(() => server.stop());

async function until(condition, milliseconds = 120_000) {
  const deadline = Date.now() + milliseconds;
  while (!condition()) {
    assert.ok(Date.now() < deadline, "the condition came true in time");
    await sleep(20);
  }
}

const turnCompleted = (updates) =>
  updates.some((update) => (update.type === "event" ? update.event : update).event?.type === "turn_completed");

test("a subscription hands on every update in order, one callback at a time", async () => {
  const session = await client.createSession();
  const events = [];
  const kinds = [];
  let running = 0;
  let mostRunning = 0;
  let closed = 0;
  const connection = client.connect(session.id);
  const subscription = connection.subscribe({
    onUpdate: (update) => { kinds.push(update.type); },
    onEvent: async (envelope) => {
      running += 1;
      mostRunning = Math.max(mostRunning, running);
      await sleep(1);
      events.push(envelope);
      running -= 1;
    },
    onClose: () => { closed += 1; },
  });
  await connection.sendPrompt("[[words:60]]", { promptId: "prm_pushed" });
  await until(() => turnCompleted(events));
  assert.equal(subscription.isFinished, false);
  assert.equal(connection.lastSeq, events.at(-1).seq, "the cursor is the last event handed on");
  await connection.close();
  assert.equal(await subscription.finished, undefined);
  assert.equal(closed, 1);
  assert.equal(subscription.isFinished, true);
  assert.equal(mostRunning, 1, "an async callback is awaited before the next update");
  assert.deepEqual(events.map((envelope) => envelope.seq), Array.from({ length: events.length }, (_, index) => index + 1));
  assert.equal(kinds[0], "connected");
  assert.ok(kinds.includes("replay_done"));
  await client.deleteSession(session.id);
});

test("a cancelled subscription hears nothing more and leaves the connection's updates untaken", async () => {
  const session = await client.createSession();
  const heard = { kept: [], cancelled: [] };
  const connections = { kept: client.connect(session.id), cancelled: client.connect(session.id) };
  const subscriptions = {};
  for (const name of Object.keys(heard)) {
    subscriptions[name] = connections[name].subscribe({ onUpdate: (update) => { heard[name].push(update); } });
  }
  for (const name of Object.keys(heard)) await until(() => heard[name].some((update) => update.type === "replay_done"));
  subscriptions.cancelled.cancel();
  assert.equal(subscriptions.cancelled.isFinished, true);
  const before = heard.cancelled.length;

  await connections.kept.sendPrompt("[[say:only the kept one hears this]]");
  await until(() => turnCompleted(heard.kept));
  const pulled = [];
  while (!turnCompleted(pulled)) pulled.push(await connections.cancelled.next());
  assert.equal(heard.cancelled.length, before, "the cancelled subscription heard more");
  assert.ok(heard.kept.length > before, "control: the kept subscription heard the turn");
  assert.equal(await subscriptions.cancelled.finished, undefined);
  for (const connection of Object.values(connections)) await connection.close();
  await client.deleteSession(session.id);
});

test("a callback that throws ends its subscription with the error", async () => {
  const session = await client.createSession();
  const connection = client.connect(session.id);
  let closed = 0;
  const subscription = connection.subscribe({
    onUpdate: () => { throw new Error("the application failed"); },
    onClose: () => { closed += 1; },
  });
  const ended = await subscription.finished;
  assert.equal(ended?.message, "the application failed");
  assert.equal(closed, 1);
  assert.equal(subscription.isFinished, true);
  await connection.close();
  await client.deleteSession(session.id);
});
