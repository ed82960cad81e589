// Every golden fixture decodes (or fails) in Node exactly as the protocol says.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { fixtures, serverProgram } from "./support.mjs";
import { decodeAs, ProliferateError, eventTypes, serverFrameTypes, clientFrameTypes } from "../dist/index.mjs";

const read = (kind) =>
  readdirSync(join(fixtures, "protocol/v1", kind)).filter((name) => name.endsWith(".json")).sort()
    .map((name) => ({ name, ...JSON.parse(readFileSync(join(fixtures, "protocol/v1", kind, name), "utf8")) }));

const valid = read("valid");
const invalid = read("invalid");

test("the fixtures are present", () => {
  assert.ok(valid.length >= 50 && invalid.length >= 10);
});

for (const fixture of valid) {
  test(`valid fixture ${fixture.name} round-trips unchanged`, () => {
    assert.deepEqual(decodeAs(fixture.decode_as, fixture.json), fixture.json);
    assert.deepEqual(decodeAs(fixture.decode_as, JSON.stringify(fixture.json)), fixture.json);
  });
}

for (const fixture of invalid) {
  test(`invalid fixture ${fixture.name} fails naming the problem`, () => {
    assert.throws(() => decodeAs(fixture.decode_as, fixture.json), (error) => {
      assert.ok(error instanceof ProliferateError && error instanceof Error);
      assert.equal(error.code, "bad_request");
      assert.ok(error.message.includes(fixture.error_contains), `${error.message} names ${fixture.error_contains}`);
      return true;
    });
  });
}

test("the fixtures cover every tag the generated types know", () => {
  const seen = (type, pick) => new Set(valid.filter((f) => f.decode_as === type).map((f) => pick(f.json)));
  const server = seen("ServerFrame", (json) => json.type);
  const client = seen("ClientFrame", (json) => json.type);
  const events = seen("ServerFrame", (json) => json.event?.type);
  for (const tag of serverFrameTypes) assert.ok(server.has(tag), `server frame ${tag}`);
  for (const tag of clientFrameTypes) assert.ok(client.has(tag), `client frame ${tag}`);
  for (const tag of eventTypes) assert.ok(events.has(tag), `event ${tag}`);
});

test("unknown type names are refused", () => {
  assert.throws(() => decodeAs("Nonsense", {}), /unknown wire type `Nonsense`/);
});

test("the generated types match the schema", () => {
  const codegen = join(dirname(serverProgram()), "proliferate-codegen");
  const checked = spawnSync(codegen, ["--check"], { encoding: "utf8" });
  assert.equal(checked.status, 0, checked.stderr);
});

test("CommonJS and ES module entry points export the same API", () => {
  const common = createRequire(import.meta.url)("../dist/index.js");
  assert.equal(typeof common.createSyncClient, "function");
  assert.equal(typeof common.TranscriptReducer, "function");
  assert.deepEqual(common.eventTypes, eventTypes);
});
