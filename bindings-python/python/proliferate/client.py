"""The asyncio client: lifecycle calls, and live connections that are async iterators."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import json
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Union

from . import _native
from . import types as wire
from .protocol import decode, encode


@dataclass(frozen=True)
class ServiceCredentials:
    """A back end's service credentials: the client signs its own short-lived tokens."""

    name: str
    """The service's name (the tokens' subject)."""
    organization: str
    """The organisation the service acts for."""
    secret: str
    """The gateway's service secret."""


TokenSource = Callable[[bool], Union[str, Awaitable[str]]]
"""Gives the client bearer tokens: `source(refresh)` returns a token, or an awaitable of one.
It is called before requests and connection attempts, and with `refresh=True` after the gateway
answered `token_expired`. A coroutine source runs on the event loop the client was made on."""


_REQUEST_TIMEOUT = 30.0
"""The client's request timeout when none is given, in seconds."""


def _blocking(
    source: TokenSource, loop: asyncio.AbstractEventLoop | None, timeout: float
) -> Callable[[bool], str]:
    """`source` as the native client calls it: on a worker thread, waiting for the answer, at
    most `timeout` seconds for a coroutine source (a blocked or closed loop fails the call)."""

    def token(refresh: bool) -> str:
        answer = source(refresh)
        if inspect.isawaitable(answer):
            if loop is None:
                raise RuntimeError("an async token source needs a client made inside an event loop")

            async def wait() -> str:
                return await answer

            pending = asyncio.run_coroutine_threadsafe(wait(), loop)
            try:
                answer = pending.result(timeout)
            except concurrent.futures.TimeoutError:
                pending.cancel()
                raise TimeoutError(f"the token source gave no token within {timeout} s") from None
        return answer

    return token


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@dataclass(frozen=True, kw_only=True)
class Reconnecting:
    """The connection broke; it reconnects after a backoff and resumes without loss."""

    attempt: int
    """Failed attempts in a row so far."""
    reason: str
    """Why the last socket ended."""


Update = Union[
    wire.Welcome, wire.EventEnvelope, wire.ReplayDone, wire.Reset, wire.Presence,
    wire.PresenceChange, Reconnecting, wire.Unknown,
]
"""What a connection yields: `Welcome` on each (re)connect (its `connections` list everyone
connected), each `EventEnvelope` once and in order, `ReplayDone` when the backlog is replayed,
`Reset` when the cursor was too old (replace all state with its transcript), `Presence` (the
answer to `request_presence`), `PresenceChange` (who joined and left; apply it as set operations,
as a joined connection may already be in the welcome's list), `Reconnecting`, or `Unknown` for
frames this version does not know."""

Callback = Callable[[Any], Union[None, Awaitable[None]]]

_BATCH = 256
"""The most updates one call into the native module takes."""


def _update(data: dict[str, Any]) -> Update:
    kind = data["type"]
    if kind == "connected":
        return decode(wire.Welcome, data["welcome"])
    if kind == "event":
        return decode(wire.EventEnvelope, data["event"])
    if kind == "replay_done":
        return wire.ReplayDone(through_seq=data["through_seq"])
    if kind == "reset":
        return decode(wire.Reset, data["reset"])
    if kind == "presence":
        return decode(wire.Presence, data["presence"])
    if kind == "presence_changed":
        return decode(wire.PresenceChange, data["presence_changed"])
    if kind == "reconnecting":
        return Reconnecting(attempt=data["attempt"], reason=data["reason"])
    frame = data.get("frame", data)
    return wire.Unknown(type=str(frame.get("type", "")), raw=frame)


async def _call(callback: Callback | None, value: Any) -> None:
    if callback is not None and inspect.isawaitable(result := callback(value)):
        await result


class Subscription:
    """A push subscription (`Connection.subscribe`): the client hands each update to the
    callbacks until the connection closes or fails, a callback raises, or `cancel()`. Callbacks
    run in order, one at a time, on the event loop it was made on; a coroutine callback is
    awaited before the next update. Dropping it cancels it."""

    def __init__(self, connection: Connection, callbacks: tuple[Any, Any, Any, Any]):
        self._loop = asyncio.get_running_loop()
        self._connection = connection
        self._callbacks = callbacks
        self._arrived: deque[tuple[str | None, BaseException | None]] = deque()
        self._draining: asyncio.Task[None] | None = None
        self._ended: asyncio.Future[None] = self._loop.create_future()
        # Read here, so an error nobody waits for is not reported as never retrieved.
        self._ended.add_done_callback(lambda ended: ended.cancelled() or ended.exception())
        self._native = connection._native.subscribe(_forward(weakref.ref(self), self._loop))

    @property
    def is_finished(self) -> bool:
        """True once the subscription ended and its callbacks returned, or it was cancelled."""
        return self._ended.done()

    def cancel(self) -> None:
        """Stops the deliveries now; no callback runs after it, `on_closed` included."""
        self._native.cancel()
        self._arrived.clear()
        if not self._ended.done():
            self._ended.set_result(None)

    async def wait(self) -> None:
        """Waits until the subscription ends; raises the error that ended it (the connection's
        final error, or a callback's). Cancelling the wait leaves the subscription running."""
        await asyncio.shield(self._ended)

    def _arrive(self, update: str | None, error: BaseException | None) -> None:
        if self._ended.done():
            return
        self._arrived.append((update, error))
        if self._draining is None:
            self._draining = self._loop.create_task(self._drain())

    async def _drain(self) -> None:
        on_update, on_event, on_error, _ = self._callbacks
        try:
            while self._arrived and not self._ended.done():
                update, error = self._arrived.popleft()
                if update is not None:
                    taken = self._connection._consumed(json.loads(update))
                    await _call(on_update, taken)
                    if isinstance(taken, wire.EventEnvelope):
                        await _call(on_event, taken)
                    continue
                if error is not None:
                    await _call(on_error, error)
                await self._close(error)
        except Exception as raised:
            self._native.cancel()
            await self._close(raised)
        finally:
            self._draining = None

    async def _close(self, error: BaseException | None) -> None:
        if self._ended.done():
            return
        if error is None:
            self._ended.set_result(None)
        else:
            self._ended.set_exception(error)
        on_closed = self._callbacks[3]
        if on_closed is not None and inspect.isawaitable(result := on_closed()):
            await result


def _forward(
    subscription: weakref.ref[Subscription], loop: asyncio.AbstractEventLoop
) -> Callable[[str | None, BaseException | None], None]:
    """`deliver` as the native subscription calls it, on a runtime thread: onto the loop, to a
    subscription held weakly, so that dropping it cancels it."""

    def arrive(update: str | None, error: BaseException | None) -> None:
        if (alive := subscription()) is not None:
            alive._arrive(update, error)

    def deliver(update: str | None, error: BaseException | None) -> None:
        try:
            loop.call_soon_threadsafe(arrive, update, error)
        except RuntimeError:
            pass  # the loop is closed: nobody is left to deliver to

    return deliver


class Connection:
    """A live connection to one session.

    `async for envelope in connection` yields each event once, in order, across reconnects;
    `connection.updates()` yields every update. Use it as an async context manager to close it.
    """

    def __init__(self, native: _native.NativeConnection, after_seq: int):
        self._native = native
        self._last_seq = after_seq
        self._pending: deque[dict[str, Any]] = deque()
        self._refilling = asyncio.Lock()
        self._arriving: asyncio.Future[str | None] | None = None

    @property
    def session_id(self) -> str:
        """The session this connection follows."""
        return self._native.session_id

    @property
    def last_seq(self) -> int:
        """The seq of the last event yielded: the cursor to resume from."""
        return self._last_seq

    async def next_update(self) -> Update | None:
        """The next update, or None once the connection is closed. An error is final."""
        if not self._pending and not await self._refill():
            return None
        return self._take()

    async def updates(self) -> AsyncIterator[Update]:
        """Every update until the connection closes."""
        while self._pending or await self._refill():
            yield self._take()

    async def _refill(self) -> bool:
        """Takes the updates received so far in one native call; False once closed."""
        async with self._refilling:
            # Concurrent callers take turns: one refills, the others find it refilled.
            while not self._pending:
                # Shielded: a caller cancelled while a batch is on its way leaves it for the
                # next call rather than losing it.
                if self._arriving is None:
                    self._arriving = self._native.next_batch(_BATCH)
                arriving = self._arriving
                try:
                    batch = await asyncio.shield(arriving)
                except asyncio.CancelledError:
                    if arriving.cancelled():
                        self._arriving = None
                    raise
                except BaseException:
                    self._arriving = None
                    raise
                self._arriving = None
                if batch is None:
                    return False
                self._pending.extend(json.loads(batch))
        return True

    def _take(self) -> Update:
        return self._consumed(self._pending.popleft())

    def _consumed(self, data: dict[str, Any]) -> Update:
        """Decodes an update the application takes, and moves the cursor past it."""
        update = _update(data)
        if isinstance(update, wire.EventEnvelope):
            self._last_seq = update.seq
        elif isinstance(update, wire.Reset):
            self._last_seq = update.transcript.through_seq
        return update

    async def __aiter__(self) -> AsyncIterator[wire.EventEnvelope]:
        async for update in self.updates():
            if isinstance(update, wire.EventEnvelope):
                yield update

    def subscribe(
        self,
        on_update: Callback | None = None,
        *,
        on_event: Callback | None = None,
        on_error: Callback | None = None,
        on_closed: Callable[[], Union[None, Awaitable[None]]] | None = None,
    ) -> Subscription:
        """Delivers every update to the callbacks through the client's push subscription, the
        alternative to iterating (read a connection one way at a time): `on_update` gets every
        update, `on_event` each event, `on_error` the error that ends the connection, and
        `on_closed` is called once it ended. The cursor moves as updates are handed on. Call it
        inside the event loop the callbacks are to run on."""
        return Subscription(self, (on_update, on_event, on_error, on_closed))

    async def listen(
        self, on_event: Callback | None = None, on_update: Callback | None = None
    ) -> None:
        """Calls `on_event` with each event and `on_update` with every update until the
        connection closes, through a subscription that ends with the call; raises what ended it
        otherwise. Callbacks may be plain functions or coroutines."""
        subscription = self.subscribe(on_update, on_event=on_event)
        try:
            await subscription.wait()
        finally:
            subscription.cancel()

    async def send_prompt(
        self, content: str, *, prompt_id: str | None = None, images: Sequence[str] = ()
    ) -> wire.PromptAdmission:
        """Sends a prompt and returns its admission. A retry with the same `prompt_id` never runs
        twice; the prompt is resent across reconnects until the gateway answers."""
        text = await self._native.send_prompt(content, prompt_id, list(images))
        return decode(wire.PromptAdmission, json.loads(text))

    async def cancel(self) -> bool:
        """Cancels the running turn; False when none ran."""
        return json.loads(await self._native.cancel())

    async def cancel_queued(self, prompt_id: str) -> None:
        """Withdraws a queued prompt."""
        await self._native.cancel_queued(prompt_id)

    async def reply_permission(self, permission_id: str, decision: wire.PermissionDecision) -> None:
        """Answers a permission request with `once`, `always` or `reject`."""
        await self._native.reply_permission(permission_id, decision)

    async def request_presence(self) -> None:
        """Asks the gateway for everyone connected; the answer arrives as a `Presence` update.
        While disconnected nothing is sent: the next `Welcome` lists everyone."""
        await self._native.request_presence()

    async def close(self) -> None:
        """Closes the socket and stops reconnecting; iteration then ends."""
        await self._native.close()

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exception: object) -> None:
        await self.close()


class Client:
    """An asyncio client of one gateway. Give a bearer `token`, a `token_source` that refreshes
    expired tokens, or `service` credentials."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        token_source: TokenSource | None = None,
        service: ServiceCredentials | None = None,
        source: str | None = None,
        request_timeout: float | None = None,
        liveness_timeout: float | None = None,
    ):
        self._native = _native.NativeClient(
            base_url,
            token=token,
            token_source=token_source
            and _blocking(token_source, _running_loop(), request_timeout or _REQUEST_TIMEOUT),
            service_name=service and service.name,
            service_organization=service and service.organization,
            service_secret=service and service.secret,
            source=source,
            request_timeout=request_timeout,
            liveness_timeout=liveness_timeout,
        )

    async def create_session(
        self,
        *,
        title: str | None = None,
        model: str | None = None,
        initial_prompt: str | None = None,
        snapshot_id: str | None = None,
        metadata: Any = None,
        limits: wire.SandboxLimits | None = None,
        egress_allow: list[str] | None = None,
        idempotency_key: str | None = None,
    ) -> wire.SessionInfo:
        """Creates a session; a retry with the same `idempotency_key` returns the same one.
        `limits` lowers the server's sandbox limits; `egress_allow` adds hosts its sandbox may
        reach."""
        request = wire.CreateSessionRequest(
            title=title, model=model, initial_prompt=initial_prompt,
            snapshot_id=snapshot_id, metadata=metadata, limits=limits,
            egress_allow=egress_allow or [],
        )
        text = await self._native.create_session(json.dumps(encode(type(request), request)), idempotency_key)
        return decode(wire.SessionInfo, json.loads(text))

    async def list_sessions(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> wire.SessionList:
        """A page of the organisation's sessions, newest first."""
        return decode(wire.SessionList, json.loads(await self._native.list_sessions(limit, cursor)))

    async def get_session(self, session_id: str) -> wire.SessionInfo:
        """One session's info."""
        return decode(wire.SessionInfo, json.loads(await self._native.get_session(session_id)))

    async def delete_session(self, session_id: str) -> None:
        """Terminates a session and deletes its sandbox."""
        await self._native.delete_session(session_id)

    async def pause(self, session_id: str) -> wire.SessionInfo:
        """Pauses a session, keeping its state."""
        return decode(wire.SessionInfo, json.loads(await self._native.pause(session_id)))

    async def resume(self, session_id: str) -> wire.SessionInfo:
        """Resumes a paused session."""
        return decode(wire.SessionInfo, json.loads(await self._native.resume(session_id)))

    async def snapshot(self, session_id: str) -> wire.SnapshotInfo:
        """Saves a snapshot of the session's workspace and agent state."""
        return decode(wire.SnapshotInfo, json.loads(await self._native.snapshot(session_id)))

    async def send_message(
        self,
        session_id: str,
        content: str,
        *,
        prompt_id: str | None = None,
        images: Sequence[str] = (),
        source: str | None = None,
    ) -> wire.PromptAdmission:
        """Sends a prompt over HTTP: the same admission as a connection's `send_prompt`."""
        request = wire.SendMessageRequest(
            content=content, prompt_id=prompt_id, images=list(images), source=source
        )
        text = await self._native.send_message(session_id, json.dumps(encode(type(request), request)))
        return decode(wire.PromptAdmission, json.loads(text))

    async def cancel(self, session_id: str) -> bool:
        """Cancels the running turn; False when none ran."""
        return json.loads(await self._native.cancel(session_id))

    async def cancel_queued(self, session_id: str, prompt_id: str) -> None:
        """Withdraws a queued prompt."""
        await self._native.cancel_queued(session_id, prompt_id)

    async def reply_permission(
        self, session_id: str, permission_id: str, decision: wire.PermissionDecision
    ) -> None:
        """Answers a permission request with `once`, `always` or `reject`."""
        await self._native.reply_permission(session_id, permission_id, decision)

    async def events(
        self, session_id: str, *, after_seq: int = 0, limit: int = 500
    ) -> wire.EventPage:
        """A page of the session's durable events after `after_seq`."""
        text = await self._native.events(session_id, after_seq, limit)
        return decode(wire.EventPage, json.loads(text))

    async def transcript(self, session_id: str) -> wire.Transcript:
        """The session's transcript as the server folded it."""
        return decode(wire.Transcript, json.loads(await self._native.transcript(session_id)))

    async def usage(self, session_id: str) -> wire.UsageReport:
        """What the session's agent spent on models: tokens and cost, in all and per model."""
        return decode(wire.UsageReport, json.loads(await self._native.usage(session_id)))

    async def organization_usage(self, *, start: int | None = None, end: int | None = None) -> wire.UsageReport:
        """What the organisation's sessions spent on models from `start` (inclusive) to `end`
        (exclusive), in milliseconds since the Unix epoch; needs the `admin` scope."""
        return decode(wire.UsageReport, json.loads(await self._native.organization_usage(start, end)))

    def connect(self, session_id: str, *, after_seq: int = 0) -> Connection:
        """Opens a live connection: it replays events after `after_seq`, then follows the session,
        reconnecting and resuming on its own."""
        return Connection(self._native.connect(session_id, after_seq), after_seq)


__all__ = ["Client", "Connection", "Reconnecting", "ServiceCredentials", "Subscription", "Update"]
