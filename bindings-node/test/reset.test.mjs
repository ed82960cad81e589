// A client behind what the server's log still holds is reset to the transcript.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startServer, untilRunning, withTimeout } from "./support.mjs";
import { createSyncClient, ProliferateError } from "../dist/index.mjs";

let server;
let client;
before(async () => {
  // Only the newest four events of each session are kept.
  server = await startServer(["--retained-events", "4"]);
  client = createSyncClient({ baseUrl: server.url, auth: { type: "token", token: server.token() } });
});
after(() => server.stop());

test("a connection behind the log is reset to the transcript", async () => {
  const session = await client.createSession();
  const connection = client.connect(session.id);
  await untilRunning(connection);
  let head = 0;
  for (const answer of ["first answer", "second answer"]) {
    const admission = await connection.sendPrompt(`[[say:${answer}]]`);
    for await (const update of withTimeout(connection.updates(), 120_000)) {
      if (update.type !== "event") continue;
      head = update.event.seq;
      const event = update.event.event;
      if (event.type === "turn_completed" && event.prompt_id === admission.prompt_id) break;
    }
  }
  await connection.close();

  // Control: a client at the head resumes with nothing to catch up on and no reset.
  const current = client.connect(session.id, { afterSeq: head });
  for await (const update of withTimeout(current.updates(), 60_000)) {
    assert.notEqual(update.type, "reset");
    if (update.type === "replay_done") {
      assert.equal(update.through_seq, head);
      break;
    }
  }
  await current.close();

  const behind = client.connect(session.id, { afterSeq: 1 });
  let reset;
  for await (const update of withTimeout(behind.updates(), 60_000)) {
    assert.notEqual(update.type, "event", "no event before the reset");
    if (update.type === "reset") {
      reset = update.reset;
      break;
    }
  }
  await behind.close();
  assert.equal(reset.reason, "cursor_expired");
  assert.ok(reset.earliest_seq > 2, `${reset.earliest_seq}`);
  assert.ok(reset.transcript.through_seq >= head);
  const texts = reset.transcript.messages.flatMap((message) =>
    message.parts.filter((part) => part.type === "text").map((part) => part.text));
  assert.ok(texts.includes("first answer") && texts.includes("second answer"), JSON.stringify(texts));

  await assert.rejects(client.events(session.id, { afterSeq: 1 }),
    (error) => error instanceof ProliferateError && error.code === "cursor_expired");
  const page = await client.events(session.id, { afterSeq: reset.earliest_seq - 1 });
  assert.equal(page.events[0].seq, reset.earliest_seq);
  await client.deleteSession(session.id);
});
