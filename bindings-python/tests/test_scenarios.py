"""Replays the shared scenarios of `fixtures/scenarios/` against the real server."""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import FIXTURES, until_running

import proliferate
from proliferate import types

SCENARIOS = sorted((FIXTURES / "scenarios").glob("*.json"))
PROMPTED = (
    types.UserMessage, types.TurnStarted, types.TurnCancelled, types.QueuedPromptCancelled,
)


def prompt_of(event, running: str | None) -> str | None:
    """The prompt an event belongs to, for `wait_for` matching."""
    if isinstance(event, PROMPTED) or isinstance(event, types.AgentError):
        return event.prompt_id
    return running


def simplify(transcript: types.Transcript) -> list[dict]:
    return [
        {
            "role": message.role,
            "text": "".join(part.text for part in message.parts if part.type == "text"),
            "tools": [
                {"tool": part.tool, "status": part.status}
                for part in message.parts if isinstance(part, types.ToolCall)
            ],
        }
        for message in transcript.messages
    ]


def matches(actual: list[dict], expected: list[dict]) -> bool:
    return len(actual) == len(expected) and all(
        a["role"] == e["role"] and a["tools"] == e["tools"] and (e["text"] is None or a["text"] == e["text"])
        for a, e in zip(actual, expected)
    )


async def events_until(connection: proliferate.Connection, done) -> list[types.EventEnvelope]:
    read = []
    async with asyncio.timeout(120):
        async for envelope in connection:
            read.append(envelope)
            if done(envelope):
                return read
    raise AssertionError("the connection closed early")


def test_every_scenario_is_here() -> None:
    assert len(SCENARIOS) >= 4


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda path: path.stem)
async def test_scenario_replays(client: proliferate.Client, path) -> None:
    scenario = json.loads(path.read_text())
    session = await client.create_session()
    async with client.connect(session.id) as connection:
        await until_running(connection)
        reducer = proliferate.TranscriptReducer(session.id)
        seen: list[types.EventEnvelope] = []
        for step in scenario["steps"]:
            if prompt := step.get("send_prompt"):
                admission = await connection.send_prompt(prompt["content"], prompt_id=prompt["prompt_id"])
                assert admission.queue_position == prompt["queue_position"], admission
            elif wait := step.get("wait_for"):
                wanted, prompt_id = wait["event"], wait.get("prompt_id")
                if not any(
                    e.event.type == wanted and (prompt_id is None or prompt_of(e.event, None) == prompt_id)
                    for e in seen
                ):
                    running = [reducer.transcript.running_prompt_id]

                    def done(envelope: types.EventEnvelope) -> bool:
                        if isinstance(envelope.event, types.TurnStarted) and envelope.event.type == "turn_started":
                            running[0] = envelope.event.prompt_id
                        return envelope.event.type == wanted and (
                            prompt_id is None or prompt_of(envelope.event, running[0]) == prompt_id
                        )

                    read = await events_until(connection, done)
                    for envelope in read:
                        reducer.apply(envelope)
                    seen.extend(read)
            elif "cancel" in step:
                assert await connection.cancel(), "a turn was running"
            elif cancel := step.get("cancel_queued"):
                await connection.cancel_queued(cancel["prompt_id"])
            else:
                raise AssertionError(f"unknown step {step}")

        kinds = [envelope.event.type for envelope in seen]
        expected = iter(scenario["expect"]["events_in_order"])
        wanted = next(expected, None)
        for kind in kinds:
            if kind == wanted:
                wanted = next(expected, None)
        assert wanted is None, f"{wanted} missing in order from {kinds}"

        server_transcript = await client.transcript(session.id)
        if reducer.transcript.through_seq < server_transcript.through_seq:
            target = server_transcript.through_seq
            for envelope in await events_until(connection, lambda e: e.seq >= target):
                reducer.apply(envelope)
        assert reducer.transcript == server_transcript, "the reducer and the server agree"
        actual = simplify(reducer.transcript)
        assert matches(actual, scenario["expect"]["transcript"]), actual
    await client.delete_session(session.id)
