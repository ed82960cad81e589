// A bot-like script: takes a request, lets the agent work on it, streams the work to the terminal
// and ends with the reply a chat bot would post.
//
//   npm install ./bindings-node   (after `npm run build` there)
//   PROLIFERATE_URL=http://127.0.0.1:8787 PROLIFERATE_TOKEN=... node examples/node/bot.mjs "[[bash:ls]]"
//
// `scripts/run` starts a server and prints a token.
import { createSyncClient, ProliferateError } from "proliferate";

const client = createSyncClient({
  baseUrl: process.env.PROLIFERATE_URL ?? "http://127.0.0.1:8787",
  auth: { type: "token", token: process.env.PROLIFERATE_TOKEN ?? "" },
  source: "bot",
});

try {
  const session = await client.createSession({ title: "node bot" });
  console.log(`session ${session.id}`);
  const connection = client.connect(session.id);
  const admission = await connection.sendPrompt(process.argv.slice(2).join(" ") || "Say hello");
  let reply = "";
  for await (const { event } of connection) {
    if (event.type === "text_delta") process.stdout.write(event.delta);
    else if (event.type === "text_completed") reply = event.text;
    else if (event.type === "tool_started") console.log(`\n[tool ${event.tool}]`);
    else if (event.type === "tool_completed") console.log(event.output.trimEnd());
    else if (event.type === "permission_requested") {
      console.log(`\n[permission ${event.permission}: allowing once]`);
      await connection.replyPermission(event.permission_id, "once");
    } else if (event.type === "agent_error") console.log(`\n[agent error: ${event.message}]`);
    else if (event.type === "turn_completed" && event.prompt_id === admission.prompt_id) break;
  }
  console.log(`\nbot reply: ${reply.trim()}`);
  await connection.close();
  await client.deleteSession(session.id);
} catch (error) {
  if (!(error instanceof ProliferateError)) throw error;
  console.error(`${error.code}: ${error.message}`);
  process.exitCode = 1;
}
