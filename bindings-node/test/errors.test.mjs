// Errors carry the protocol's codes and lose nothing; long calls take an AbortSignal.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./support.mjs";
import { createSyncClient, ProliferateError } from "../dist/index.mjs";

let server;
let client;
before(async () => {
  server = await startServer();
  client = createSyncClient({ baseUrl: server.url, auth: { type: "token", token: server.token() } });
});
after(() => server.stop());

const rejectsWith = (promise, code, status) =>
  assert.rejects(promise, (error) => {
    assert.ok(error instanceof ProliferateError && error instanceof Error, String(error));
    assert.equal(error.code, code);
    if (status) assert.equal(error.status, status);
    return true;
  });

test("a bad token is unauthenticated", async () => {
  const stranger = createSyncClient({ baseUrl: server.url, auth: { type: "token", token: "not-a-token" } });
  await rejectsWith(stranger.listSessions(), "unauthenticated", 401);
});

test("another organisation cannot see a session", async () => {
  const session = await client.createSession({ title: "private" });
  const other = createSyncClient({ baseUrl: server.url, auth: { type: "token", token: server.token("eve", "other") } });
  await rejectsWith(other.getInfo(session.id), "not_found", 404);
  await client.deleteSession(session.id);
});

test("an unknown session is not found", async () => {
  await rejectsWith(client.getSession("ses_does_not_exist"), "not_found", 404);
});

test("bad input is a bad request and loses nothing", async () => {
  const session = await client.createSession();
  await rejectsWith(client.replyPermission(session.id, "per_x", "maybe"), "bad_request");
  await rejectsWith(client.postMessage(session.id, ""), "bad_request", 400);
  await rejectsWith(client.sendMessage(session.id, ""), "bad_request", 400);
  assert.equal((await client.getInfo(session.id)).id, session.id);
  await client.deleteSession(session.id);
});

test("sandbox limits asked for are in force, and above the server's are refused", async () => {
  const session = await client.createSession({ limits: { memory_bytes: 2 ** 30, processes: 256 }, egress_allow: ["*.github.com"] });
  assert.equal(session.limits.memory_bytes, 2 ** 30);
  assert.equal(session.limits.processes, 256);
  assert.deepEqual(session.egress_allow, ["*.github.com"]);
  await rejectsWith(client.createSession({ limits: { memory_bytes: 2 ** 50 } }), "bad_request", 400);
  await client.deleteSession(session.id);
});

test("an unreachable gateway is unavailable, with its cause", async () => {
  const nowhere = createSyncClient({ baseUrl: "http://127.0.0.1:9", auth: { type: "token", token: "t" }, requestTimeoutMs: 5000 });
  await assert.rejects(nowhere.listSessions(), (error) => {
    assert.equal(error.code, "unavailable");
    assert.equal(error.kind, "transport");
    assert.ok(error.cause instanceof Error);
    return true;
  });
});

test("a wrong configuration throws at once", () => {
  assert.throws(() => createSyncClient({ baseUrl: "not a url", auth: { type: "token", token: "t" } }), ProliferateError);
});

test("an aborted signal rejects a long call", async () => {
  const controller = new AbortController();
  const pending = client.listSessions({ signal: controller.signal });
  controller.abort(new Error("stop"));
  await assert.rejects(pending, /stop/);
  await assert.rejects(client.getInfo("x", { signal: AbortSignal.abort() }), { name: "AbortError" });
});

test("service credentials sign their own tokens", async () => {
  const service = createSyncClient({
    baseUrl: server.url,
    auth: { type: "service", name: "slack-bot", organization: "acme", secret: server.serviceSecret() },
    source: "slack",
  });
  const session = await service.createSession({ title: "from a bot" });
  assert.equal(session.created_by, "slack-bot");
  await service.deleteSession(session.id);
});

test("a token source is asked again when the token expired", async () => {
  const [expired, fresh] = [server.token("tester", "acme", 1), server.token()];
  await new Promise((resolve) => setTimeout(resolve, 2100)); // past the one-second lifetime of `expired`
  const asks = [];
  const refreshing = createSyncClient({
    baseUrl: server.url,
    auth: { type: "source", token: async (refresh) => (asks.push(refresh), refresh ? fresh : expired) },
  });
  const session = await refreshing.createSession();
  assert.deepEqual(asks, [false, true], "an expired token is refreshed once");
  const connection = refreshing.connect(session.id);
  assert.equal((await connection.next()).type, "connected");
  assert.deepEqual(asks, [false, true, false, true], "the connection refreshes too");
  await connection.close();
  await refreshing.deleteSession(session.id);

  const failing = createSyncClient({
    baseUrl: server.url,
    auth: { type: "source", token: () => { throw new Error("no token in the keychain"); } },
  });
  await assert.rejects(failing.listSessions(), (error) => {
    assert.ok(error instanceof ProliferateError, String(error));
    assert.equal(error.code, "unauthenticated");
    assert.match(error.message, /no token in the keychain/);
    return true;
  });
});
