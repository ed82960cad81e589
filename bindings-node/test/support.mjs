// Starts the real `proliferate-server` (real OpenCode, scripted model) for the suite.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createInterface } from "node:readline";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("../..", import.meta.url));
export const fixtures = join(root, "fixtures");

export function serverProgram() {
  if (process.env.PROLIFERATE_SERVER_BIN) return process.env.PROLIFERATE_SERVER_BIN;
  const cache = process.env.PROLIFERATE_CACHE ?? join(homedir(), ".cache/proliferate");
  return join(process.env.CARGO_TARGET_DIR ?? join(cache, "target"), "debug/proliferate-server");
}

/** Starts a server on port 0 in a fresh data folder, with `settings` (command-line flags). */
export async function startServer(settings = []) {
  const dataDir = mkdtempSync(join(tmpdir(), "proliferate-node-"));
  const child = spawn(serverProgram(), ["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, ...settings], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" },
  });
  const lines = createInterface({ input: child.stdout });
  // The first line that says where it listens; log lines may come before it (readline keeps
  // reading after it, so the server never blocks on a full pipe).
  const [line] = await Promise.race([
    new Promise((resolve) => lines.on("line", (each) => each.includes("listening on ") && resolve([each]))),
    new Promise((_, reject) => child.once("exit", (code) => reject(new Error(`the server exited with ${code}`)))),
  ]);
  if (!line.includes("listening on ")) throw new Error(`the server did not start: ${line}`);
  const url = line.trim().split(" ").pop();
  return {
    url,
    port: Number(new URL(url).port),
    token(subject = "tester", organization = "acme", ttlSecs = 86400) {
      return execFileSync(serverProgram(), ["token", "--data-dir", dataDir, "--subject", subject,
        "--organization", organization, "--scopes", "read,write,admin", "--ttl-secs", String(ttlSecs)]).toString().trim();
    },
    serviceSecret: () => readFileSync(join(dataDir, "secrets/service"), "utf8").trim(),
    async stop() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(killer);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Reads updates until the session's agent is up; fails fast when it fails. */
export async function untilRunning(connection) {
  for await (const update of withTimeout(connection.updates(), 120_000)) {
    if (update.type === "connected" && update.welcome.status === "running") return;
    if (update.type === "event" && update.event.event.type === "status_changed") {
      if (update.event.event.status === "failed") throw new Error(`the session failed: ${update.event.event.reason}`);
      if (update.event.event.status === "running") return;
    }
  }
  throw new Error("the connection closed before the session ran");
}

/** Iterates `iterable`, failing when the whole iteration takes longer than `milliseconds`. */
export async function* withTimeout(iterable, milliseconds) {
  const deadline = Date.now() + milliseconds;
  const iterator = iterable[Symbol.asyncIterator]();
  while (true) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error("timed out")), Math.max(0, deadline - Date.now()));
    });
    try {
      const next = await Promise.race([iterator.next(), timeout]);
      if (next.done) return;
      yield next.value;
    } finally {
      clearTimeout(timer);
    }
  }
}
