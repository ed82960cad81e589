"""The synchronous API for scripts and threads, over the same native client.

Calls run on a private event loop in a background thread, so a `SyncClient` may be shared by
many threads at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

from . import types as wire
from .client import Client, Connection, ServiceCredentials, Update

T = TypeVar("T")


class _Loop:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="proliferate", daemon=True).start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()


class SyncConnection:
    """A live connection, iterated with a plain `for`; use it as a context manager to close it."""

    def __init__(self, connection: Connection, loop: _Loop):
        self._connection = connection
        self._loop = loop

    @property
    def session_id(self) -> str:
        """The session this connection follows."""
        return self._connection.session_id

    @property
    def last_seq(self) -> int:
        """The seq of the last event yielded: the cursor to resume from."""
        return self._connection.last_seq

    def next_update(self) -> Update | None:
        """The next update, or None once the connection is closed."""
        return self._loop.run(self._connection.next_update())

    def updates(self) -> Iterator[Update]:
        """Every update until the connection closes."""
        while (update := self.next_update()) is not None:
            yield update

    def __iter__(self) -> Iterator[wire.EventEnvelope]:
        for update in self.updates():
            if isinstance(update, wire.EventEnvelope):
                yield update

    def send_prompt(
        self, content: str, *, prompt_id: str | None = None, images: Sequence[str] = ()
    ) -> wire.PromptAdmission:
        """Sends a prompt and returns its admission."""
        return self._loop.run(
            self._connection.send_prompt(content, prompt_id=prompt_id, images=images)
        )

    def cancel(self) -> bool:
        """Cancels the running turn; False when none ran."""
        return self._loop.run(self._connection.cancel())

    def cancel_queued(self, prompt_id: str) -> None:
        """Withdraws a queued prompt."""
        self._loop.run(self._connection.cancel_queued(prompt_id))

    def reply_permission(self, permission_id: str, decision: wire.PermissionDecision) -> None:
        """Answers a permission request with `once`, `always` or `reject`."""
        self._loop.run(self._connection.reply_permission(permission_id, decision))

    def request_presence(self) -> None:
        """Asks the gateway for everyone connected; the answer arrives as a `Presence` update."""
        self._loop.run(self._connection.request_presence())

    def close(self) -> None:
        """Closes the socket and stops reconnecting."""
        self._loop.run(self._connection.close())

    def __enter__(self) -> SyncConnection:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()


class SyncClient:
    """The blocking twin of `Client`, with the same arguments and calls."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        token_source: Callable[[bool], str] | None = None,
        service: ServiceCredentials | None = None,
        source: str | None = None,
        request_timeout: float | None = None,
        liveness_timeout: float | None = None,
    ):
        self._loop = _Loop()
        self._client = Client(
            base_url, token=token, token_source=token_source, service=service, source=source,
            request_timeout=request_timeout, liveness_timeout=liveness_timeout,
        )

    def create_session(self, **request: Any) -> wire.SessionInfo:
        """Creates a session; takes the keyword arguments of `Client.create_session`."""
        return self._loop.run(self._client.create_session(**request))

    def list_sessions(self, *, limit: int | None = None, cursor: str | None = None) -> wire.SessionList:
        """A page of the organisation's sessions, newest first."""
        return self._loop.run(self._client.list_sessions(limit=limit, cursor=cursor))

    def get_session(self, session_id: str) -> wire.SessionInfo:
        """One session's info."""
        return self._loop.run(self._client.get_session(session_id))

    def delete_session(self, session_id: str) -> None:
        """Terminates a session and deletes its sandbox."""
        self._loop.run(self._client.delete_session(session_id))

    def pause(self, session_id: str) -> wire.SessionInfo:
        """Pauses a session, keeping its state."""
        return self._loop.run(self._client.pause(session_id))

    def resume(self, session_id: str) -> wire.SessionInfo:
        """Resumes a paused session."""
        return self._loop.run(self._client.resume(session_id))

    def snapshot(self, session_id: str) -> wire.SnapshotInfo:
        """Saves a snapshot of the session's workspace and agent state."""
        return self._loop.run(self._client.snapshot(session_id))

    def send_message(self, session_id: str, content: str, **options: Any) -> wire.PromptAdmission:
        """Sends a prompt over HTTP; takes the options of `Client.send_message`."""
        return self._loop.run(self._client.send_message(session_id, content, **options))

    def cancel(self, session_id: str) -> bool:
        """Cancels the running turn; False when none ran."""
        return self._loop.run(self._client.cancel(session_id))

    def cancel_queued(self, session_id: str, prompt_id: str) -> None:
        """Withdraws a queued prompt."""
        self._loop.run(self._client.cancel_queued(session_id, prompt_id))

    def reply_permission(
        self, session_id: str, permission_id: str, decision: wire.PermissionDecision
    ) -> None:
        """Answers a permission request with `once`, `always` or `reject`."""
        self._loop.run(self._client.reply_permission(session_id, permission_id, decision))

    def events(self, session_id: str, *, after_seq: int = 0, limit: int = 500) -> wire.EventPage:
        """A page of the session's durable events after `after_seq`."""
        return self._loop.run(self._client.events(session_id, after_seq=after_seq, limit=limit))

    def transcript(self, session_id: str) -> wire.Transcript:
        """The session's transcript as the server folded it."""
        return self._loop.run(self._client.transcript(session_id))

    def usage(self, session_id: str) -> wire.UsageReport:
        """What the session's agent spent on models: tokens and cost, in all and per model."""
        return self._loop.run(self._client.usage(session_id))

    def organization_usage(self, *, start: int | None = None, end: int | None = None) -> wire.UsageReport:
        """What the organisation's sessions spent on models from `start` to `end` (milliseconds
        since the Unix epoch); needs the `admin` scope."""
        return self._loop.run(self._client.organization_usage(start=start, end=end))

    def connect(self, session_id: str, *, after_seq: int = 0) -> SyncConnection:
        """Opens a live connection that replays after `after_seq`, then follows the session."""
        return SyncConnection(self._client.connect(session_id, after_seq=after_seq), self._loop)
