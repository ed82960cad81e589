"""The cursor is the last event the application took: a checkpoint saved at any moment resumes
with every event once, in order."""

from __future__ import annotations

import asyncio
import random

from conftest import until_running

from proliferate import types


async def test_checkpoints_at_random_points_resume_every_event_once(client) -> None:
    session = await client.create_session()
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    checkpoint, taken, resumes, done = 0, [], 0, False
    async with client.connect(session.id) as writer:
        await until_running(writer)
        words = " ".join(f"w{word}" for word in range(1, 301))
        await writer.send_prompt(f"[[say:{words}]]", prompt_id="prm_checkpoint")
        async with asyncio.timeout(180):
            # The whole turn is in the log, so every resume replays a backlog the connection
            # receives faster than the test takes it.
            async for envelope in writer:
                if isinstance(envelope.event, types.TurnCompleted):
                    break
            while not done:
                async with client.connect(session.id, after_seq=checkpoint) as reader:
                    take = rng.randint(1, 40)
                    async for envelope in reader:
                        taken.append(envelope)
                        event, take = envelope.event, take - 1
                        done = isinstance(event, types.TurnCompleted) and event.prompt_id == "prm_checkpoint"
                        if done or take == 0:
                            break
                        await asyncio.sleep(rng.random() * 0.004)
                    checkpoint = reader.last_seq
                    assert checkpoint == taken[-1].seq, f"seed {seed}"
                resumes += 1
    assert resumes >= 5, f"resumed {resumes} times (seed {seed})"
    assert [envelope.seq for envelope in taken] == list(range(1, len(taken) + 1)), f"seed {seed}"
    page = await client.events(session.id, limit=10000)
    assert page.events[: len(taken)] == taken, f"seed {seed}"
    await client.delete_session(session.id)
