// The cursor is the last event the application took: a checkpoint saved at any moment resumes
// with every event once, in order.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startServer, untilRunning, withTimeout } from "./support.mjs";
import { createSyncClient } from "../dist/index.mjs";

let server;
let client;
before(async () => {
  server = await startServer();
  client = createSyncClient({ baseUrl: server.url, auth: { type: "token", token: server.token() }, source: "node-tests" });
});
after(() => server.stop());

/** A small seeded generator (mulberry32), so a failure names the seed that reproduces it. */
function seeded(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("checkpoints at random points resume every event once", async () => {
  const session = await client.createSession();
  const writer = client.connect(session.id);
  await untilRunning(writer);
  const words = Array.from({ length: 300 }, (_, index) => `w${index + 1}`).join(" ");
  await writer.sendPrompt(`[[say:${words}]]`, { promptId: "prm_checkpoint" });
  // The whole turn is in the log, so every resume replays a backlog the connection receives
  // faster than the test takes it.
  for await (const envelope of withTimeout(writer, 120_000)) if (envelope.event.type === "turn_completed") break;

  const seed = Math.floor(Math.random() * 2 ** 32);
  const random = seeded(seed);
  const taken = [];
  let checkpoint = 0;
  let resumes = 0;
  let done = false;
  while (!done) {
    const reader = client.connect(session.id, { afterSeq: checkpoint });
    let take = 1 + Math.floor(random() * 40);
    for await (const envelope of withTimeout(reader, 120_000)) {
      taken.push(envelope);
      take -= 1;
      done = envelope.event.type === "turn_completed" && envelope.event.prompt_id === "prm_checkpoint";
      if (done || take === 0) break;
      await new Promise((resolve) => setTimeout(resolve, random() * 4));
    }
    checkpoint = reader.lastSeq;
    assert.equal(checkpoint, taken.at(-1).seq, `seed ${seed}`);
    await reader.close();
    resumes += 1;
  }
  await writer.close();
  assert.ok(resumes >= 5, `resumed ${resumes} times (seed ${seed})`);
  assert.deepEqual(taken.map((envelope) => envelope.seq), taken.map((_, index) => index + 1), `seed ${seed}`);
  const page = await client.events(session.id, { limit: 10000 });
  assert.deepEqual(page.events.slice(0, taken.length), taken, `seed ${seed}`);
  await client.deleteSession(session.id);
});
