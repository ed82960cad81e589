"""Live streams: reconnect without loss, many asyncio tasks, threads through the sync API."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from conftest import until_running

import proliferate
from proliferate import types


class CuttingProxy:
    """A TCP proxy on loopback that cuts every connection at an interval."""

    def __init__(self, target_port: int, interval: float):
        self.target_port, self.interval = target_port, interval
        self.writers: set[asyncio.StreamWriter] = set()
        self.cuts = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.accept, "127.0.0.1", 0)
        self.cutter = asyncio.create_task(self.cut_forever())
        return self.server.sockets[0].getsockname()[1]

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    async def cut_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self.writers:
                self.cuts += 1
            for writer in self.writers:
                writer.transport.abort()
            self.writers.clear()

    async def stop(self) -> None:
        self.cutter.cancel()
        self.server.close()


async def test_reconnects_resume_without_loss_or_duplicates(server, token, client) -> None:
    session = await client.create_session()
    port = int(server.url.rsplit(":", 1)[-1])
    proxy = CuttingProxy(port, interval=0.4)
    proxied = proliferate.Client(f"http://127.0.0.1:{await proxy.start()}", token=token)
    connection = proliferate.Client(server.url, token=token).connect(session.id)
    await until_running(connection)
    words = " ".join(f"w{word}" for word in range(1, 301))
    await connection.send_prompt(f"[[delay:10]] [[say:{words}]]")
    await connection.close()

    seqs, reconnects = [], 0
    async with proxied.connect(session.id) as cut:
        async with asyncio.timeout(120):
            async for update in cut.updates():
                if isinstance(update, proliferate.Reconnecting):
                    reconnects += 1
                elif isinstance(update, types.EventEnvelope):
                    seqs.append(update.seq)
                    if update.event.type == "turn_completed":
                        break
    await proxy.stop()
    assert proxy.cuts >= 2 and reconnects >= 2, (proxy.cuts, reconnects)
    assert seqs == list(range(1, len(seqs) + 1)), "every seq once, in order"
    page = await client.events(session.id, limit=10000)
    assert [envelope.seq for envelope in page.events] == seqs

    await client.delete_session(session.id)


async def test_many_asyncio_tasks_share_one_client(client) -> None:
    sessions = await asyncio.gather(*(client.create_session(title=f"task {i}") for i in range(4)))

    async def follow(session: types.SessionInfo) -> str:
        async with client.connect(session.id) as connection:
            await until_running(connection)
            await connection.send_prompt(f"[[say:answer for {session.title}]]")
            text = ""
            async for envelope in connection:
                if isinstance(envelope.event, types.TextCompleted):
                    text = envelope.event.text
                if envelope.event.type == "turn_completed":
                    return text
        raise AssertionError("closed early")

    async with asyncio.timeout(180):
        answers = await asyncio.gather(*(follow(session) for session in sessions))
    assert answers == [f"answer for task {i}" for i in range(4)]
    listed = {session.id for session in (await client.list_sessions(limit=100)).sessions}
    assert {session.id for session in sessions} <= listed
    await asyncio.gather(*(client.delete_session(session.id) for session in sessions))


async def test_callbacks_see_every_update(client) -> None:
    session = await client.create_session()
    events, kinds = [], []
    async with client.connect(session.id) as connection:
        listening = asyncio.create_task(
            connection.listen(on_event=events.append, on_update=lambda u: kinds.append(type(u).__name__))
        )
        await connection.send_prompt("[[say:called back]]", prompt_id="prm_callback")
        async with asyncio.timeout(120):
            while not any(e.event.type == "turn_completed" for e in events):
                await asyncio.sleep(0.05)
        await connection.close()
        await listening
    assert "Welcome" in kinds and "ReplayDone" in kinds
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    await client.delete_session(session.id)


def test_threads_share_one_sync_client(server, token) -> None:
    client = proliferate.SyncClient(server.url, token=token, source="python-threads")
    results: dict[int, str] = {}
    failures: list[BaseException] = []

    def work(index: int) -> None:
        try:
            session = client.create_session(title=f"thread {index}")
            admission = client.send_message(session.id, f"[[say:thread {index} done]]")
            with client.connect(session.id) as connection:
                for envelope in connection:
                    if isinstance(envelope.event, types.TextCompleted):
                        results[index] = envelope.event.text
                    if envelope.event.type == "turn_completed" and envelope.event.prompt_id == admission.prompt_id:
                        break
            assert client.transcript(session.id).messages[-1].role == "assistant"
            usage = client.usage(session.id)
            assert usage.requests >= 1 and usage.total.output > 0, usage
            assert usage.by_model[0].model == "scripted/scripted-model", usage
            organization = client.organization_usage(end=0)
            assert organization.requests == 0, "nothing was spent before 1970"
            client.delete_session(session.id)
        except BaseException as error:  # collected and re-raised on the main thread
            failures.append(error)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not failures, failures
    assert results == {index: f"thread {index} done" for index in range(3)}


async def test_presence_arrives_as_typed_updates(client) -> None:
    session = await client.create_session()

    async def next_of(connection: proliferate.Connection, kind: type, accept=lambda _: True):
        async with asyncio.timeout(60):
            async for update in connection.updates():
                if isinstance(update, kind) and accept(update):
                    return update

    async with client.connect(session.id) as first:
        first_id = (await next_of(first, types.Welcome)).connection_id
        async with client.connect(session.id) as second:
            welcome = await next_of(second, types.Welcome)
            second_id = welcome.connection_id
            assert {entry.connection_id for entry in welcome.connections} == {first_id, second_id}
            joined = await next_of(
                first, types.PresenceChange,
                lambda change: second_id in {entry.connection_id for entry in change.joined},
            )
            assert all(isinstance(entry, types.PresenceEntry) for entry in joined.joined)
            await first.request_presence()
            everyone = await next_of(first, types.Presence)
            assert {entry.connection_id for entry in everyone.connections} == {first_id, second_id}
        await next_of(first, types.PresenceChange, lambda change: second_id in change.left)
