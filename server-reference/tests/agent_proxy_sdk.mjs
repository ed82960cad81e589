// Drives a session through the agent proxy with OpenCode's official SDK, as a user of the SDK
// would; prints what it got back, one JSON object per line, for agent_proxy_sdk.rs to check.
// Environment: SDK (the SDK's client module), BASE (the proxy URL), TOKEN, AGENT_SESSION.
const { createOpencodeClient } = await import(process.env.SDK);
const client = createOpencodeClient({
  baseUrl: process.env.BASE,
  headers: { Authorization: `Bearer ${process.env.TOKEN}` },
});
const id = process.env.AGENT_SESSION;
const report = (step, value) => console.log(JSON.stringify({ step, ...value }));
const text = (body) => ({ parts: [{ type: "text", text: body }] });

const queued = await client.session.promptAsync({ path: { id }, body: text("[[say:asynchronous answer]]") });
report("prompt_async", { status: queued.response.status });

const answered = await client.session.prompt({ path: { id }, body: text("[[say:synchronous answer]]") });
report("prompt", {
  status: answered.response.status,
  role: answered.data?.info?.role,
  text: (answered.data?.parts ?? []).filter((part) => part.type === "text").map((part) => part.text).join(""),
});

const stalled = await client.session.promptAsync({ path: { id }, body: text("[[stall]]") });
report("stalled", { status: stalled.response.status });
// Abort once the stalled turn runs.
for (let tries = 0; tries < 600; tries++) {
  const status = await client.session.status();
  if (status.data?.[id]?.type === "busy") break;
  await new Promise((resolve) => setTimeout(resolve, 100));
}
const aborted = await client.session.abort({ path: { id } });
report("abort", { status: aborted.response.status, data: aborted.data });

const elsewhere = await client.session.promptAsync({ path: { id: "ses_someone_else" }, body: text("hello") });
report("elsewhere", { status: elsewhere.response.status });

const withoutReply = await client.session.promptAsync({ path: { id }, body: { noReply: true, ...text("note") } });
report("no_reply", { status: withoutReply.response.status });
