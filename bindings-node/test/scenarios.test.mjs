// Replays the shared scenarios of fixtures/scenarios/ against the real server.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fixtures, startServer, untilRunning, withTimeout } from "./support.mjs";
import { createSyncClient, TranscriptReducer } from "../dist/index.mjs";

const folder = join(fixtures, "scenarios");
const scenarios = readdirSync(folder).filter((name) => name.endsWith(".json")).sort();
const prompted = new Set(["user_message", "turn_started", "turn_completed", "turn_cancelled", "queued_prompt_cancelled", "agent_error"]);
const promptOf = (event, running) => (prompted.has(event.type) ? event.prompt_id : running);

const simplify = (transcript) =>
  transcript.messages.map((message) => ({
    role: message.role,
    text: message.parts.filter((part) => part.type === "text").map((part) => part.text).join(""),
    tools: message.parts.filter((part) => part.type === "tool").map((part) => ({ tool: part.tool, status: part.status })),
  }));

let server;
let client;
before(async () => {
  server = await startServer();
  client = createSyncClient({ baseUrl: server.url, auth: { type: "token", token: server.token() }, source: "node-tests" });
});
after(() => server.stop());

async function eventsUntil(connection, done) {
  const read = [];
  for await (const envelope of withTimeout(connection, 120_000)) {
    read.push(envelope);
    if (done(envelope)) return read;
  }
  throw new Error("the connection closed early");
}

test("every scenario is here", () => assert.ok(scenarios.length >= 4));

for (const name of scenarios) {
  test(`scenario ${name} replays`, async () => {
    const scenario = JSON.parse(readFileSync(join(folder, name), "utf8"));
    const session = await client.createSession();
    const connection = client.connect(session.id);
    await untilRunning(connection);
    const reducer = new TranscriptReducer(session.id);
    const seen = [];
    for (const step of scenario.steps) {
      if (step.send_prompt) {
        const admission = await connection.sendPrompt(step.send_prompt.content, { promptId: step.send_prompt.prompt_id });
        assert.equal(admission.queue_position, step.send_prompt.queue_position);
      } else if (step.wait_for) {
        const { event: wanted, prompt_id: promptId } = step.wait_for;
        const matches = (event, running) => event.type === wanted && (!promptId || promptOf(event, running) === promptId);
        if (!seen.some((envelope) => matches(envelope.event, undefined))) {
          let running = reducer.transcript.running_prompt_id;
          const read = await eventsUntil(connection, (envelope) => {
            if (envelope.event.type === "turn_started") running = envelope.event.prompt_id;
            return matches(envelope.event, running);
          });
          for (const envelope of read) reducer.apply(envelope);
          seen.push(...read);
        }
      } else if ("cancel" in step) {
        assert.equal(await connection.cancel(), true, "a turn was running");
      } else if (step.cancel_queued) {
        await connection.cancelQueued(step.cancel_queued.prompt_id);
      } else {
        assert.fail(`unknown step ${JSON.stringify(step)}`);
      }
    }
    const kinds = seen.map((envelope) => envelope.event.type);
    const expected = [...scenario.expect.events_in_order];
    for (const kind of kinds) if (kind === expected[0]) expected.shift();
    assert.deepEqual(expected, [], `missing in order from ${kinds}`);

    const serverTranscript = await client.transcript(session.id);
    if (reducer.transcript.through_seq < serverTranscript.through_seq) {
      for (const envelope of await eventsUntil(connection, (e) => e.seq >= serverTranscript.through_seq)) reducer.apply(envelope);
    }
    assert.deepEqual(reducer.transcript, serverTranscript, "the reducer and the server agree");
    const actual = simplify(reducer.transcript);
    const wanted = scenario.expect.transcript;
    assert.equal(actual.length, wanted.length, JSON.stringify(actual));
    actual.forEach((message, index) => {
      assert.equal(message.role, wanted[index].role);
      assert.deepEqual(message.tools, wanted[index].tools);
      if (wanted[index].text !== null) assert.equal(message.text, wanted[index].text);
    });
    await connection.close();
    await client.deleteSession(session.id);
  });
}
