"""Replays one session from `after_seq=0` to `replay_done`, through the binding or through a plain
`websockets` client, and prints `{"events": N, "seconds": S}`: a consumer of the bindings'
benchmark (bench/src/bindings.rs has the contract)."""

import asyncio
import json
import os
import time

import proliferate
import websockets
from proliferate import types

URL = os.environ["PROLIFERATE_URL"]
TOKEN = os.environ["PROLIFERATE_TOKEN"]
SESSION = os.environ["PROLIFERATE_SESSION"]


async def binding() -> int:
    client = proliferate.Client(URL, token=TOKEN, source="bench")
    events = 0
    async with client.connect(SESSION, after_seq=0) as connection:
        async for update in connection.updates():
            if isinstance(update, types.EventEnvelope):
                events += 1
            elif isinstance(update, types.ReplayDone):
                return events
    raise RuntimeError("the connection closed before replay_done")


async def plain() -> int:
    url = URL.replace("http", "ws", 1) + f"/v1/sessions/{SESSION}/ws?after_seq=0&source=bench"
    headers = {"authorization": f"Bearer {TOKEN}"}
    events = 0
    async with websockets.connect(url, additional_headers=headers, max_size=None) as socket:
        async for message in socket:
            frame = json.loads(message)
            if frame["type"] == "event":
                events += 1
            elif frame["type"] == "replay_done":
                return events
    raise RuntimeError("the connection closed before replay_done")


async def main() -> None:
    replay = {"binding": binding, "plain": plain}[os.environ["PROLIFERATE_CLIENT"]]
    started = time.perf_counter()
    events = await replay()
    print(json.dumps({"events": events, "seconds": time.perf_counter() - started}))


asyncio.run(main())
