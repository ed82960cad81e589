"""A client behind what the server's log still holds is reset to the transcript."""

from __future__ import annotations

import asyncio
import pathlib
import tempfile
from collections.abc import Iterator

import pytest
from conftest import Server, until_running

import proliferate
from proliferate import errors, types


@pytest.fixture(scope="module")
def short_log() -> Iterator[Server]:
    """A server that keeps only the newest four events of each session."""
    with tempfile.TemporaryDirectory(prefix="proliferate-python-reset-") as data_dir:
        running = Server(pathlib.Path(data_dir), "--retained-events", "4")
        try:
            yield running
        finally:
            running.stop()


async def test_a_connection_behind_the_log_is_reset_to_the_transcript(short_log: Server) -> None:
    client = proliferate.Client(short_log.url, token=short_log.token())
    session = await client.create_session()
    head = 0
    async with client.connect(session.id) as connection:
        await until_running(connection)
        for answer in ("first answer", "second answer"):
            admission = await connection.send_prompt(f"[[say:{answer}]]")
            async with asyncio.timeout(120):
                async for update in connection.updates():
                    if isinstance(update, types.EventEnvelope):
                        head = update.seq
                        if update.event.type == "turn_completed" and update.event.prompt_id == admission.prompt_id:
                            break

    # Control: a client at the head resumes with nothing to catch up on and no reset.
    async with client.connect(session.id, after_seq=head) as current:
        async with asyncio.timeout(60):
            async for update in current.updates():
                assert not isinstance(update, types.Reset), update
                if isinstance(update, types.ReplayDone):
                    assert update.through_seq == head
                    break

    async with client.connect(session.id, after_seq=1) as behind:
        async with asyncio.timeout(60):
            async for update in behind.updates():
                assert not isinstance(update, types.EventEnvelope), "no event before the reset"
                if isinstance(update, types.Reset):
                    reset = update
                    break
    assert reset.reason == "cursor_expired"
    assert reset.earliest_seq > 2
    assert reset.transcript.through_seq >= head
    texts = [part.text for message in reset.transcript.messages for part in message.parts if part.type == "text"]
    assert "first answer" in texts and "second answer" in texts, texts

    with pytest.raises(errors.CursorExpiredError):
        await client.events(session.id, after_seq=1)
    page = await client.events(session.id, after_seq=reset.earliest_seq - 1)
    assert page.events[0].seq == reset.earliest_seq
    await client.delete_session(session.id)
