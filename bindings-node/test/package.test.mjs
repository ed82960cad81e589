// `npm pack` makes a package another project installs, through both entry points, and the
// example bot runs from it against the real server.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { root, startServer } from "./support.mjs";

let server;
let project;
before(async () => {
  server = await startServer();
  project = mkdtempSync(join(tmpdir(), "proliferate-consumer-"));
  const packed = execFileSync("npm", ["pack", "--silent", "--pack-destination", project], { cwd: join(root, "bindings-node") })
    .toString().trim().split("\n").pop();
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", join(project, packed)], { cwd: project });
});
after(async () => {
  await server.stop();
  rmSync(project, { recursive: true, force: true });
});

const node = (args, env = {}) =>
  execFileSync(process.execPath, args, { cwd: project, env: { ...process.env, ...env }, timeout: 120_000 }).toString();

test("the installed package loads through require and import", () => {
  assert.equal(node(["-e", "console.log(typeof require('proliferate').createSyncClient)"]).trim(), "function");
  assert.equal(node(["--input-type=module", "-e", "import { createSyncClient } from 'proliferate'; console.log(typeof createSyncClient)"]).trim(), "function");
});

test("the example bot streams a turn from the installed package", () => {
  copyFileSync(join(root, "examples/node/bot.mjs"), join(project, "bot.mjs"));
  const output = node(["bot.mjs", "[[bash:echo hi from bash]]"], { PROLIFERATE_URL: server.url, PROLIFERATE_TOKEN: server.token() });
  assert.match(output, /\[tool bash\]/);
  assert.match(output, /hi from bash/);
  assert.match(output, /bot reply: Ran the command: hi from bash/);
});
