"""Errors: one `ProliferateError` base carrying the protocol's stable `code`, one subclass per code.

Generated from the error codes of `docs/schema/v1.json`. Do not edit: run
`cargo run -p proliferate-codegen`.
"""

from __future__ import annotations

import builtins


class ProliferateError(Exception):
    """A failed call. `code` is the protocol's machine code, the same in every language."""

    code: str = "internal"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        """What went wrong, fit to show a person."""
        if code is not None:
            self.code = code
        self.status = status
        """The HTTP status, when the gateway refused over HTTP."""


class BadRequestError(ProliferateError):
    """The request or frame is malformed or fails validation."""

    code = "bad_request"


class UnauthenticatedError(ProliferateError):
    """No valid credentials: missing, malformed, tampered or wrongly signed token."""

    code = "unauthenticated"


class TokenExpiredError(UnauthenticatedError):
    """The token was valid once but has expired; get a fresh one and retry."""

    code = "token_expired"


class ForbiddenError(ProliferateError):
    """The credentials are valid but do not allow this (scope, organisation or session)."""

    code = "forbidden"


class NotFoundError(ProliferateError):
    """No such session, snapshot, prompt or permission request (or not visible to the caller)."""

    code = "not_found"


class ConflictError(ProliferateError):
    """The request conflicts with the current state, for example a transition the lifecycle forbids."""

    code = "conflict"


class CursorExpiredError(ProliferateError):
    """The requested cursor is older than what is retained; fetch the transcript instead."""

    code = "cursor_expired"


class PayloadTooLargeError(ProliferateError):
    """The request or frame is larger than allowed."""

    code = "payload_too_large"


class LimitExceededError(ProliferateError):
    """A limit of the server is reached (queued prompts of a session, for example); retry once below it."""

    code = "limit_exceeded"


class AgentError(ProliferateError):
    """The agent failed or rejected the request."""

    code = "agent_error"


class SandboxError(ProliferateError):
    """The sandbox provider failed."""

    code = "sandbox_error"


class UnavailableError(ProliferateError):
    """The gateway or the session cannot serve this now (shutting down, not ready); retry later."""

    code = "unavailable"


class TimedOutError(ProliferateError):
    """A dependency did not answer in time."""

    code = "timeout"


class SlowConsumerError(ProliferateError):
    """The connection fell behind its send budget and was closed (WebSocket close 1013)."""

    code = "slow_consumer"


class InternalError(ProliferateError):
    """Something failed inside the gateway."""

    code = "internal"


ERRORS: dict[str, type[ProliferateError]] = {
    cls.code: cls
    for cls in (
        BadRequestError, UnauthenticatedError, TokenExpiredError, ForbiddenError, NotFoundError, ConflictError,
        CursorExpiredError, PayloadTooLargeError, LimitExceededError, AgentError, SandboxError, UnavailableError,
        TimedOutError, SlowConsumerError, InternalError,
    )
}
"""The exception class for each known code; unknown codes raise `ProliferateError`."""

_CAUSES: dict[str, type[Exception]] = {
    "transport": ConnectionError,
    "timeout": builtins.TimeoutError,
}


def from_native(code: str, message: str, status: int | None, kind: str) -> ProliferateError:
    """Builds the exception for a native failure; called by the native module.

    Transport failures and timeouts keep their cause as a `ConnectionError` or a builtin
    `TimeoutError` in `__cause__`.
    """
    error = ERRORS.get(code, ProliferateError)(message, code=code, status=status)
    if cause := _CAUSES.get(kind):
        error.__cause__ = cause(message)
    return error
