"""The client's push subscription: callbacks in order and one at a time, a cursor that moves as
they are handed updates, and a subscription that stops when cancelled or dropped."""

from __future__ import annotations

import asyncio
import gc

import proliferate
from proliferate import types as wire


async def until(condition, seconds: float = 120) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.02)


def turn_completed(events: list[wire.EventEnvelope]) -> bool:
    return any(isinstance(e.event, wire.TurnCompleted) for e in events)


async def test_a_subscription_hands_on_every_update_in_order_one_callback_at_a_time(client) -> None:
    session = await client.create_session()
    events: list[wire.EventEnvelope] = []
    kinds: list[str] = []
    running, most_running = 0, 0
    closed = asyncio.Event()

    async def on_event(envelope: wire.EventEnvelope) -> None:
        nonlocal running, most_running
        running += 1
        most_running = max(most_running, running)
        await asyncio.sleep(0.001)
        events.append(envelope)
        running -= 1

    connection = client.connect(session.id)
    subscription = connection.subscribe(
        lambda update: kinds.append(type(update).__name__), on_event=on_event, on_closed=closed.set
    )
    await connection.send_prompt("[[words:60]]", prompt_id="prm_pushed")
    await until(lambda: turn_completed(events))
    assert not subscription.is_finished
    assert connection.last_seq == events[-1].seq, "the cursor is the last event handed on"
    await connection.close()
    async with asyncio.timeout(60):
        await subscription.wait()
    assert closed.is_set() and subscription.is_finished
    assert most_running == 1, "an async callback is awaited before the next update"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert kinds[0] == "Welcome" and "ReplayDone" in kinds
    await client.delete_session(session.id)


async def test_a_cancelled_or_dropped_subscription_hears_nothing_more(client) -> None:
    session = await client.create_session()
    heard: dict[str, list[proliferate.Update]] = {"kept": [], "cancelled": [], "dropped": []}
    connections = {name: client.connect(session.id) for name in heard}
    subscriptions = {
        name: connections[name].subscribe(heard[name].append) for name in heard
    }
    for name in heard:
        await until(lambda name=name: any(isinstance(u, wire.ReplayDone) for u in heard[name]))
    subscriptions["cancelled"].cancel()
    assert subscriptions["cancelled"].is_finished
    del subscriptions["dropped"]
    gc.collect()
    before = {name: len(updates) for name, updates in heard.items()}

    await connections["kept"].send_prompt("[[say:only the kept one hears this]]")
    kept = heard["kept"]
    await until(lambda: turn_completed([u for u in kept if isinstance(u, wire.EventEnvelope)]))
    # The others' updates stayed in their connections, untaken: reading them pulls the turn.
    for name in ("cancelled", "dropped"):
        pulled: list[wire.EventEnvelope] = []
        async with asyncio.timeout(60):
            while not turn_completed(pulled):
                update = await connections[name].next_update()
                if isinstance(update, wire.EventEnvelope):
                    pulled.append(update)
        assert len(heard[name]) == before[name], f"the {name} subscription heard more"
    assert len(kept) > before["kept"], "control: the kept subscription heard the turn"
    for connection in connections.values():
        await connection.close()
    await client.delete_session(session.id)


async def test_a_failed_connection_ends_its_subscription_with_the_error(client) -> None:
    errors: list[BaseException] = []
    closed = asyncio.Event()
    connection = client.connect("ses_nowhere")
    subscription = connection.subscribe(on_error=errors.append, on_closed=closed.set)
    try:
        async with asyncio.timeout(120):
            await subscription.wait()
    except proliferate.ProliferateError as error:
        ended = error
    else:
        raise AssertionError("the subscription ended without its error")
    assert ended.code == "not_found"
    assert errors == [ended] and closed.is_set() and subscription.is_finished
