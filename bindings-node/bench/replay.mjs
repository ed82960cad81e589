// Replays one session from `after_seq=0` to `replay_done`, through the binding or through a plain
// `ws` client, and prints `{"events": N, "seconds": S}`: a consumer of the bindings' benchmark
// (bench/src/bindings.rs has the contract).
import { performance } from "node:perf_hooks";
import WebSocket from "ws";
import { createSyncClient } from "../dist/index.mjs";

const { PROLIFERATE_URL: url, PROLIFERATE_TOKEN: token, PROLIFERATE_SESSION: session } = process.env;

async function binding() {
  const client = createSyncClient({ baseUrl: url, auth: { type: "token", token }, source: "bench" });
  const connection = client.connect(session, { afterSeq: 0 });
  let events = 0;
  try {
    for await (const update of connection.updates()) {
      if (update.type === "event") events += 1;
      else if (update.type === "replay_done") return events;
    }
  } finally {
    await connection.close();
  }
  throw new Error("the connection closed before replay_done");
}

function plain() {
  const address = `${url.replace("http", "ws")}/v1/sessions/${session}/ws?after_seq=0&source=bench`;
  const socket = new WebSocket(address, { headers: { authorization: `Bearer ${token}` } });
  let events = 0;
  return new Promise((resolve, reject) => {
    socket.on("message", (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.type === "event") events += 1;
      else if (frame.type === "replay_done") {
        socket.close();
        resolve(events);
      }
    });
    socket.on("error", reject);
    socket.on("close", () => reject(new Error("the connection closed before replay_done")));
  });
}

const replay = { binding, plain }[process.env.PROLIFERATE_CLIENT];
const started = performance.now();
const events = await replay();
console.log(JSON.stringify({ events, seconds: (performance.now() - started) / 1000 }));
