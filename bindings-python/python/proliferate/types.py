"""Typed wire values of protocol v1, generated from `docs/schema/v1.json`.

Do not edit: run `cargo run -p proliferate-codegen`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union

@dataclass(frozen=True, kw_only=True)
class AgentError:
    """Payload of `agent_error`."""
    type: str = "agent_error"
    """The `type` tag this value carries on the wire."""
    kind: str
    """What failed: `model` (the model's API), `model_retrying` (the agent retries the model),
`agent_exited`, `limit_exceeded` (the sandbox ran out of memory or processes),
`agent_unreachable`, `prompt_rejected`, or `agent` for anything else."""
    message: str
    """A message fit to show a person."""
    prompt_id: str | None = None
    """The prompt whose turn failed, if any."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class AssistantMessageCompleted:
    """Payload of `assistant_message_completed`."""
    type: str = "assistant_message_completed"
    """The `type` tag this value carries on the wire."""
    finish: str | None = None
    """Why the model stopped: `stop`, `tool-calls`, `length`, ..."""
    message_id: str
    """The message that finished."""
    usage: TokenUsage | None = None
    """Tokens spent on this message."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class AssistantMessageStarted:
    """Payload of `assistant_message_started`."""
    type: str = "assistant_message_started"
    """The `type` tag this value carries on the wire."""
    message_id: str
    """The agent's id for this message."""
    model: str | None = None
    """The model answering, as `provider/model`, if known."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class Auth:
    """Payload of `auth`."""
    type: str = "auth"
    """The `type` tag this value carries on the wire."""
    token: str
    """A bearer token."""


@dataclass(frozen=True, kw_only=True)
class Cancel:
    """Payload of `cancel`."""
    type: str = "cancel"
    """The `type` tag this value carries on the wire."""


@dataclass(frozen=True, kw_only=True)
class CancelOutcome:
    """Body of `POST /v1/sessions/{id}/cancel`."""
    cancelled: bool
    """True when a turn was running and is now cancelled."""


@dataclass(frozen=True, kw_only=True)
class CancelQueued:
    """Payload of `cancel_queued`."""
    type: str = "cancel_queued"
    """The `type` tag this value carries on the wire."""
    prompt_id: str
    """The queued prompt to withdraw."""


@dataclass(frozen=True, kw_only=True)
class CreateSessionRequest:
    """Body of `POST /v1/sessions`. Send an `Idempotency-Key` header to make retries safe."""
    egress_allow: list[str] = field(default_factory=list)
    """Hosts the sandbox may reach through the egress proxy, beyond the server's allow-list
(`host`, `host:port` or `*.domain`)."""
    initial_prompt: str | None = None
    """A prompt to run as soon as the agent is up."""
    limits: SandboxLimits | None = None
    """Resource limits for the sandbox, each no higher than the server's."""
    metadata: Any = None
    """Free-form metadata kept with the session."""
    model: str | None = None
    """The model to use, as `provider/model`; the server's default otherwise."""
    snapshot_id: str | None = None
    """Start from this snapshot's workspace and agent state."""
    title: str | None = None
    """A human title."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


ErrorCode = str
"""A stable machine code. Known codes are listed; readers keep unknown ones."""


@dataclass(frozen=True, kw_only=True)
class ErrorFrame:
    """Payload of `error`."""
    type: str = "error"
    """The `type` tag this value carries on the wire."""
    code: ErrorCode
    """The stable machine code."""
    message: str
    """A message fit to show a person."""
    prompt_id: str | None = None
    """The client's id of the frame that failed, if it had one."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class EventEnvelope:
    """One durable event of a session: persisted before broadcast, numbered by a dense `seq`."""
    type: str = "event"
    """The `type` tag this value carries on the wire."""
    event: Event
    """What happened."""
    seq: int
    """Position in the session's log: 1 for the first event, then every integer in turn."""
    session_id: str
    """The session this event belongs to."""
    timestamp: int
    """When the gateway recorded the event, milliseconds since the Unix epoch."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class EventPage:
    """Body of `GET /v1/sessions/{id}/events?after_seq=N&limit=M`."""
    events: list[EventEnvelope]
    """Events with `seq > after_seq`, in order, at most `limit` of them."""
    has_more: bool
    """True when more events follow this page."""
    head_seq: int
    """The newest seq of the session when the page was read."""


@dataclass(frozen=True, kw_only=True)
class FileChange:
    """One changed file."""
    additions: int = 0
    """Lines added."""
    deletions: int = 0
    """Lines removed."""
    path: str
    """Path relative to the workspace."""


@dataclass(frozen=True, kw_only=True)
class FilesChanged:
    """Payload of `files_changed`."""
    type: str = "files_changed"
    """The `type` tag this value carries on the wire."""
    files: list[FileChange]
    """The files that differ from the start of the session."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class Health:
    """Body of `GET /healthz` and `GET /readyz`."""
    status: str
    """`ok`, or what is not ready."""
    version: str
    """The server's version."""


@dataclass(frozen=True, kw_only=True)
class Heartbeat:
    """Payload of `heartbeat`."""
    type: str = "heartbeat"
    """The `type` tag this value carries on the wire."""
    head_seq: int
    """The newest seq at the time of the heartbeat."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class ModelUsage:
    """One model's share of a [`UsageReport`]."""
    model: str
    """The model, as `provider/model`."""
    requests: int
    """Its requests."""
    usage: TokenUsage
    """Its tokens and cost."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


PermissionDecision = Literal['once', 'always', 'reject']
"""An answer to a permission request."""


@dataclass(frozen=True, kw_only=True)
class PermissionReply:
    """Payload of `permission_reply`."""
    type: str = "permission_reply"
    """The `type` tag this value carries on the wire."""
    decision: PermissionDecision
    """The answer."""
    permission_id: str
    """The request to answer."""


@dataclass(frozen=True, kw_only=True)
class PermissionReplyRequest:
    """Body of `POST /v1/sessions/{id}/permissions/{permission_id}`."""
    decision: PermissionDecision
    """The answer."""


@dataclass(frozen=True, kw_only=True)
class PermissionRequested:
    """Payload of `permission_requested`."""
    type: str = "permission_requested"
    """The `type` tag this value carries on the wire."""
    call_id: str | None = None
    """The tool call waiting on this answer, if any."""
    default_decision: PermissionDecision
    """The answer applied when nobody answers in time."""
    expires_at: int
    """When the default answer applies, milliseconds since the Unix epoch."""
    metadata: Any = None
    """Details the agent attached, for example `{"command": "..."}`."""
    patterns: list[str] = field(default_factory=list)
    """The patterns the permission covers, for example the command line."""
    permission: str
    """What is asked, for example `bash`, `edit`, `external_directory`."""
    permission_id: str
    """The id to answer with."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class PermissionResolved:
    """Payload of `permission_resolved`."""
    type: str = "permission_resolved"
    """The `type` tag this value carries on the wire."""
    decision: PermissionDecision
    """The answer that won."""
    permission_id: str
    """The request that was answered."""
    resolved_by: Sender | None = None
    """Who answered; absent when the timeout default applied."""
    timed_out: bool = False
    """True when nobody answered in time and the default applied."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class Ping:
    """Payload of `ping`."""
    type: str = "ping"
    """The `type` tag this value carries on the wire."""
    nonce: str | None = None
    """Echoed back in the `pong`."""


@dataclass(frozen=True, kw_only=True)
class Pong:
    """Payload of `pong`: the ping's nonce, echoed."""
    type: str = "pong"
    """The `type` tag this value carries on the wire."""
    nonce: str | None = None
    """Echoed back in the `pong`."""


@dataclass(frozen=True, kw_only=True)
class Presence:
    """Payload of `presence`."""
    type: str = "presence"
    """The `type` tag this value carries on the wire."""
    connections: list[PresenceEntry]
    """Every open connection of the session."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class PresenceChange:
    """Payload of `presence_changed`: the joins and leaves of a short window, as set operations on
the connections a client knows. A connection that joined and left within one window is in
neither list; no id is in both."""
    type: str = "presence_changed"
    """The `type` tag this value carries on the wire."""
    count: int = 0
    """How many connections the session has after the change. Above the presence list limit,
`joined` and `left` are empty and only the count changes; once the count is back within
the limit, a `presence` frame with the whole list follows."""
    joined: list[PresenceEntry] = field(default_factory=list)
    """Connections that opened; some may already be in this connection's `welcome`."""
    left: list[str] = field(default_factory=list)
    """The ids of connections that closed; some may be unknown to this connection."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class PresenceEntry:
    """One connected client."""
    connection_id: str
    """The connection's id."""
    source: str
    """The kind of client it said it is."""
    subject: str
    """The subject of its token."""


@dataclass(frozen=True, kw_only=True)
class PresenceRequest:
    """Payload of the client frame `presence`."""
    type: str = "presence"
    """The `type` tag this value carries on the wire."""


@dataclass(frozen=True, kw_only=True)
class PreviewUrl:
    """Payload of `preview_url`."""
    type: str = "preview_url"
    """The `type` tag this value carries on the wire."""
    url: str
    """Where the preview is served."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who a connection or request is, as the gateway authenticated it."""
    kind: PrincipalKind
    """What kind of party this is."""
    organization_id: str
    """The organisation the token belongs to."""
    scopes: list[Scope]
    """What the token may do."""
    session_id: str | None = None
    """The one session this token is restricted to, if any."""
    subject: str
    """The token's subject (a user id, a service name)."""


PrincipalKind = Literal['user', 'service', 'sandbox']
"""The kind of party a token stands for."""


@dataclass(frozen=True, kw_only=True)
class Problem:
    """An HTTP error body (`application/problem+json`, RFC 9457) with a stable machine `code`."""
    code: ErrorCode
    """The stable machine code."""
    detail: str
    """What went wrong in this occurrence, fit to show a person."""
    request_id: str | None = None
    """The id of the request, as logged by the gateway."""
    status: int
    """The HTTP status code."""
    title: str
    """A short summary of the problem type."""
    type: str = 'about:blank'
    """A URI naming the problem type; `about:blank` unless a page documents it."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class Prompt:
    """Payload of `prompt`."""
    type: str = "prompt"
    """The `type` tag this value carries on the wire."""
    content: str
    """The prompt text."""
    images: list[str] = field(default_factory=list)
    """Attached images, as `data:` URIs or URLs."""
    prompt_id: str
    """The client-chosen id; a retry with the same id never starts a second turn."""


@dataclass(frozen=True, kw_only=True)
class PromptAdmission:
    """The gateway's acknowledgement of a prompt; the same for a retry of the same `prompt_id`."""
    type: str = "prompt_admitted"
    """The `type` tag this value carries on the wire."""
    duplicate: bool
    """True when this prompt had been admitted before and this is a retry."""
    prompt_id: str
    """The client-chosen id of the prompt."""
    queue_position: int
    """Prompts ahead of this one when it was admitted; 0 means it runs now."""


@dataclass(frozen=True, kw_only=True)
class QueuedPromptCancelled:
    """Payload of `queued_prompt_cancelled`."""
    type: str = "queued_prompt_cancelled"
    """The `type` tag this value carries on the wire."""
    cancelled_by: Sender | None = None
    """Who withdrew it."""
    prompt_id: str
    """The prompt that was withdrawn."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class ReasoningCompleted:
    """Payload of `reasoning_completed`."""
    type: str = "reasoning_completed"
    """The `type` tag this value carries on the wire."""
    message_id: str
    """The message the part belongs to."""
    part_id: str
    """The part that finished."""
    text: str
    """The whole text of the part; it replaces what the deltas built."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class ReasoningDelta:
    """Payload of `reasoning_delta`."""
    type: str = "reasoning_delta"
    """The `type` tag this value carries on the wire."""
    delta: str
    """Text to append."""
    message_id: str
    """The message the part belongs to."""
    part_id: str
    """The part the text is appended to."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class ReplayDone:
    """Payload of `replay_done`."""
    type: str = "replay_done"
    """The `type` tag this value carries on the wire."""
    through_seq: int
    """The last seq sent from the backlog (the client's cursor if there was none)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class Reset:
    """Payload of `reset`."""
    type: str = "reset"
    """The `type` tag this value carries on the wire."""
    earliest_seq: int
    """The oldest seq still retained."""
    reason: str
    """Why replay was impossible, for example `cursor_expired`."""
    transcript: Transcript
    """The session's transcript up to `transcript.through_seq`; live events follow it."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class RevokeTokenRequest:
    """Body of `POST /v1/tokens/revoke`: the id of the tokens to stop."""
    jti: str
    """The token's `jti` claim."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


Role = Literal['user', 'assistant']
"""Who wrote a message."""


@dataclass(frozen=True, kw_only=True)
class SandboxLimits:
    """Resource limits of a sandbox. In a request each field lowers the server's limit (a value above
it is refused, as is one below the least a sandbox works with); in session info each field is
the limit in force."""
    cpu_millicores: int | None = None
    """CPU time, in thousandths of a core (1000 is one core)."""
    disk_bytes: int | None = None
    """Disk for the sandbox's home and workspace together, in bytes, where the server gives each
sandbox a disk of its own; elsewhere the largest file it may write."""
    enforced_by: str | None = None
    """How the limits are enforced, for example `cgroup v1` or `rlimit` (memory, CPU and processes
unenforced); set by the server, ignored in requests."""
    memory_bytes: int | None = None
    """Memory of every process in the sandbox together, including its `/tmp`, in bytes."""
    open_files: int | None = None
    """Open files per process."""
    processes: int | None = None
    """Processes and threads at once."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


Scope = Literal['read', 'write', 'admin']
"""A permission a token grants."""


@dataclass(frozen=True, kw_only=True)
class SendMessageRequest:
    """Body of `POST /v1/sessions/{id}/messages`: the same admission path as a WebSocket `prompt`."""
    content: str
    """The prompt text; not only whitespace."""
    images: list[str] = field(default_factory=list)
    """Attached images, as `data:` URIs or URLs."""
    prompt_id: str | None = None
    """The client-chosen id that makes the prompt idempotent; generated when absent."""
    source: str | None = None
    """The kind of client sending it (`api` when absent)."""


@dataclass(frozen=True, kw_only=True)
class Sender:
    """Who sent a prompt or answered a permission, and through what kind of client."""
    source: str
    """The kind of client: `web`, `cli`, `slack`, `api`, `automation`, or another name."""
    subject: str
    """The subject of the sender's token."""


@dataclass(frozen=True, kw_only=True)
class SessionInfo:
    """What a session looks like to clients."""
    agent: str
    """The agent that runs in the sandbox, for example `opencode`."""
    created_at: int
    """Creation time, milliseconds since the Unix epoch."""
    created_by: str
    """The subject of the token that created it."""
    egress_allow: list[str] = field(default_factory=list)
    """Hosts the sandbox may reach through the egress proxy, beyond the server's allow-list."""
    head_seq: int
    """The seq of the newest durable event; 0 before the first."""
    id: str
    """The session's id."""
    isolation: str | None = None
    """How the sandbox isolates the agent, for example `bubblewrap` or `process`."""
    limits: SandboxLimits | None = None
    """The resource limits of the session's sandbox, once it has started."""
    metadata: Any = None
    """Free-form metadata the creator attached."""
    model: str | None = None
    """The model the agent uses, as `provider/model`."""
    organization_id: str
    """The organisation that owns the session; no other organisation's token reaches it."""
    preview_url: str | None = None
    """A URL where the sandbox's preview is served, if any."""
    provider: str
    """The sandbox provider, for example `local`."""
    source_snapshot_id: str | None = None
    """The snapshot the session started from, if any."""
    status: SessionStatus
    """Lifecycle status."""
    status_reason: str | None = None
    """Why the session is in its status (for example `idle` for an auto-pause)."""
    title: str | None = None
    """A human title, if one was given or derived."""
    updated_at: int
    """Last change, milliseconds since the Unix epoch."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class SessionList:
    """Body of `GET /v1/sessions`."""
    next_cursor: str | None = None
    """Pass as `?cursor=` to get the next page; absent on the last page."""
    sessions: list[SessionInfo]
    """The caller's organisation's sessions, newest first."""


SessionStatus = Literal['pending', 'starting', 'running', 'pausing', 'paused', 'resuming', 'stopped', 'failed']
"""Where a session is in its lifecycle. Every transition is checked by the core's state machine."""


@dataclass(frozen=True, kw_only=True)
class SnapshotInfo:
    """Body of `POST /v1/sessions/{id}/snapshot`."""
    created_at: int
    """When it was taken, milliseconds since the Unix epoch."""
    session_id: str
    """The session it was taken from."""
    size_bytes: int
    """Its size on disk."""
    snapshot_id: str
    """The snapshot's id; pass it as `snapshot_id` to create a session from it."""


@dataclass(frozen=True, kw_only=True)
class SnapshotSaved:
    """Payload of `snapshot_saved`."""
    type: str = "snapshot_saved"
    """The `type` tag this value carries on the wire."""
    snapshot_id: str
    """The snapshot's id; a new session can start from it."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class StatusChanged:
    """Payload of `status_changed`."""
    type: str = "status_changed"
    """The `type` tag this value carries on the wire."""
    reason: str | None = None
    """Why, for example `idle`, `requested`, `agent_exited`."""
    status: SessionStatus
    """The new status."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class TextCompleted:
    """Payload of `text_completed`."""
    type: str = "text_completed"
    """The `type` tag this value carries on the wire."""
    message_id: str
    """The message the part belongs to."""
    part_id: str
    """The part that finished."""
    text: str
    """The whole text of the part; it replaces what the deltas built."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class TextDelta:
    """Payload of `text_delta`."""
    type: str = "text_delta"
    """The `type` tag this value carries on the wire."""
    delta: str
    """Text to append."""
    message_id: str
    """The message the part belongs to."""
    part_id: str
    """The part the text is appended to."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class TextPart:
    """A text or reasoning part."""
    type: str
    """The `type` tag this value carries on the wire."""
    completed: bool
    """True once the final text arrived."""
    id: str
    """The part's id."""
    text: str
    """The text so far, or the final text once completed."""


@dataclass(frozen=True, kw_only=True)
class Todo:
    """One item of the agent's todo list."""
    content: str
    """What is to be done."""
    priority: str | None = None
    """`high`, `medium` or `low`, if given."""
    status: str
    """`pending`, `in_progress`, `completed` or `cancelled`."""


@dataclass(frozen=True, kw_only=True)
class TodoUpdated:
    """Payload of `todo_updated`."""
    type: str = "todo_updated"
    """The `type` tag this value carries on the wire."""
    todos: list[Todo]
    """The whole list, replacing the previous one."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class TokenClaims:
    """The claims of a Proliferate JWT (HS256), as `docs/protocol.md` section 12 lists them."""
    aud: str | None = None
    """Audience, one string; a server that sets one accepts only user tokens that name it."""
    exp: int
    """Expiry, seconds since the Unix epoch."""
    iat: int
    """Issue time, seconds since the Unix epoch."""
    iss: str | None = None
    """Issuer; a server that sets one accepts only user tokens that name it."""
    jti: str
    """Token id."""
    kind: PrincipalKind = 'user'
    """`user` or `service`."""
    org: str
    """Organisation id."""
    scopes: list[Scope]
    """What the token may do."""
    sid: str | None = None
    """The only session the token may reach, if restricted."""
    sub: str
    """Subject: a user id or service name."""


@dataclass(frozen=True, kw_only=True)
class TokenUsage:
    """Token counts of one assistant message."""
    cache_read: int = 0
    """Tokens read from the provider's cache."""
    cache_write: int = 0
    """Tokens written to the provider's cache."""
    cost: float | None = None
    """Cost in US dollars, if the agent reports it."""
    input: int
    """Prompt tokens."""
    output: int
    """Completion tokens."""
    reasoning: int = 0
    """Reasoning tokens."""


@dataclass(frozen=True, kw_only=True)
class ToolCall:
    """A tool call inside an assistant message."""
    type: str = "tool"
    """The `type` tag this value carries on the wire."""
    call_id: str
    """The model's id for the call."""
    error: str | None = None
    """The error, when the call failed."""
    id: str
    """The part that holds the call."""
    input: Any
    """The arguments."""
    output: str | None = None
    """The output (or the output so far)."""
    status: ToolStatus
    """Where the call is."""
    title: str | None = None
    """A short human title."""
    tool: str
    """The tool's name."""


@dataclass(frozen=True, kw_only=True)
class ToolCompleted:
    """Payload of `tool_completed`."""
    type: str = "tool_completed"
    """The `type` tag this value carries on the wire."""
    call_id: str
    """The model's id for the call."""
    input: Any = None
    """The final arguments."""
    message_id: str
    """The message that made the call."""
    output: str
    """What the tool returned to the model."""
    part_id: str
    """The part that holds the call."""
    title: str | None = None
    """A short human title for what the tool did."""
    tool: str
    """The tool's name."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class ToolFailed:
    """Payload of `tool_failed`."""
    type: str = "tool_failed"
    """The `type` tag this value carries on the wire."""
    call_id: str
    """The model's id for the call."""
    error: str
    """What went wrong."""
    input: Any = None
    """The final arguments."""
    message_id: str
    """The message that made the call."""
    part_id: str
    """The part that holds the call."""
    tool: str
    """The tool's name."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class ToolStarted:
    """Payload of `tool_started`."""
    type: str = "tool_started"
    """The `type` tag this value carries on the wire."""
    call_id: str
    """The model's id for the call."""
    input: Any = None
    """The tool's arguments (may still be `{}` while the model streams them)."""
    message_id: str
    """The message that made the call."""
    part_id: str
    """The part that holds the call."""
    tool: str
    """The tool's name, for example `bash`."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


ToolStatus = Literal['running', 'completed', 'failed', 'cancelled']
"""Where a tool call is."""


@dataclass(frozen=True, kw_only=True)
class ToolUpdated:
    """Payload of `tool_updated`."""
    type: str = "tool_updated"
    """The `type` tag this value carries on the wire."""
    call_id: str
    """The model's id for the call."""
    input: Any = None
    """The arguments, when they changed."""
    message_id: str
    """The message that made the call."""
    output: str | None = None
    """Output so far, for tools that stream it."""
    part_id: str
    """The part that holds the call."""
    title: str | None = None
    """A short human title for what the tool is doing."""
    tool: str
    """The tool's name."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class Transcript:
    """A session's conversation as of one seq."""
    messages: list[TranscriptMessage]
    """Messages in the order their turns ran: each prompt, then the agent's answer."""
    pending_permissions: list[PermissionRequested] = field(default_factory=list)
    """Permission requests not yet resolved."""
    queued_prompts: list[TranscriptMessage] = field(default_factory=list)
    """Prompts admitted but not started yet, in queue order."""
    running_prompt_id: str | None = None
    """The prompt whose turn runs now, if any."""
    session_id: str
    """The session."""
    through_seq: int
    """The last seq folded in; live events continue from here."""
    todos: list[Todo] = field(default_factory=list)
    """The agent's latest todo list."""


@dataclass(frozen=True, kw_only=True)
class TranscriptMessage:
    """One message of the transcript."""
    completed: bool
    """True once the message is final."""
    id: str
    """The message's id."""
    parts: list[TranscriptPart]
    """Its parts, in order."""
    prompt_id: str | None = None
    """The prompt it belongs to: the prompt itself, or the one the agent answers."""
    role: Role
    """Who wrote it."""
    sender: Sender | None = None
    """Who sent it (user messages only)."""
    usage: TokenUsage | None = None
    """Token usage (assistant messages, once completed)."""


@dataclass(frozen=True, kw_only=True)
class TurnCancelled:
    """Payload of `turn_cancelled`."""
    type: str = "turn_cancelled"
    """The `type` tag this value carries on the wire."""
    cancelled_by: Sender | None = None
    """Who cancelled it, if a client did."""
    prompt_id: str
    """The prompt whose turn was cancelled."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class TurnCompleted:
    """Payload of `turn_completed`."""
    type: str = "turn_completed"
    """The `type` tag this value carries on the wire."""
    prompt_id: str
    """The prompt this turn answers."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class TurnStarted:
    """Payload of `turn_started`."""
    type: str = "turn_started"
    """The `type` tag this value carries on the wire."""
    prompt_id: str
    """The prompt this turn answers."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class UsageReport:
    """Model usage summed over a session or an organisation (`GET /v1/sessions/{id}/usage`,
`GET /v1/usage`), as the gateway's model proxy metered it."""
    by_model: list[ModelUsage]
    """The same per model, most used first."""
    requests: int
    """Model requests."""
    total: TokenUsage
    """Tokens and cost of every request; `cost` is absent when no request had a price."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class UserMessage:
    """Payload of `user_message`: the prompt as admitted, echoed to everyone."""
    type: str = "user_message"
    """The `type` tag this value carries on the wire."""
    content: str
    """The prompt text."""
    images: list[str] = field(default_factory=list)
    """Attached images, as `data:` URIs or URLs."""
    message_id: str
    """The transcript id of this message."""
    prompt_id: str
    """The client-chosen id that made the prompt idempotent."""
    queue_position: int
    """Places ahead of this prompt when it was admitted; 0 means it ran at once."""
    sender: Sender
    """Who sent it and from what kind of client."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class Welcome:
    """Payload of `welcome`."""
    type: str = "welcome"
    """The `type` tag this value carries on the wire."""
    connection_count: int = 0
    """How many connections the session has, this one included."""
    connection_id: str
    """This connection's id, as presence frames show it."""
    connections: list[PresenceEntry] = field(default_factory=list)
    """Everyone connected when this connection joined, itself included; empty when the session
has more connections than the gateway lists (its presence list limit, 100 by default)."""
    head_seq: int
    """The newest seq at the time of the welcome."""
    heartbeat_interval_ms: int
    """Milliseconds between server heartbeats."""
    principal: Principal
    """Who the gateway authenticated."""
    protocol_version: int
    """The protocol version the gateway speaks."""
    session_id: str
    """The session this connection follows."""
    status: SessionStatus
    """The session's status."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept as sent."""


@dataclass(frozen=True, kw_only=True)
class ImageTranscriptPart:
    """An attached image."""
    type: str = "image"
    """The `type` tag this value carries on the wire."""
    url: str
    """A `data:` URI or URL."""


@dataclass(frozen=True, kw_only=True)
class Unknown:
    """A member of a tagged union whose `type` this version does not know."""
    type: str
    """The `type` tag as sent."""
    raw: dict[str, Any]
    """The whole value as sent."""


ClientFrame = Union[Auth, Ping, Prompt, Cancel, CancelQueued, PermissionReply, PresenceRequest, Unknown]
"""One `ClientFrame`, tagged on `type`."""
CLIENTFRAME_TYPES: dict[str, type] = {
    "auth": Auth,
    "ping": Ping,
    "prompt": Prompt,
    "cancel": Cancel,
    "cancel_queued": CancelQueued,
    "permission_reply": PermissionReply,
    "presence": PresenceRequest,
}
"""Every `ClientFrame` tag this version knows, and its class."""

Event = Union[StatusChanged, UserMessage, QueuedPromptCancelled, TurnStarted, TurnCompleted, TurnCancelled, AssistantMessageStarted, AssistantMessageCompleted, TextDelta, TextCompleted, ReasoningDelta, ReasoningCompleted, ToolStarted, ToolUpdated, ToolCompleted, ToolFailed, AgentError, PermissionRequested, PermissionResolved, TodoUpdated, FilesChanged, SnapshotSaved, PreviewUrl, Unknown]
"""One `Event`, tagged on `type`."""
EVENT_TYPES: dict[str, type] = {
    "status_changed": StatusChanged,
    "user_message": UserMessage,
    "queued_prompt_cancelled": QueuedPromptCancelled,
    "turn_started": TurnStarted,
    "turn_completed": TurnCompleted,
    "turn_cancelled": TurnCancelled,
    "assistant_message_started": AssistantMessageStarted,
    "assistant_message_completed": AssistantMessageCompleted,
    "text_delta": TextDelta,
    "text_completed": TextCompleted,
    "reasoning_delta": ReasoningDelta,
    "reasoning_completed": ReasoningCompleted,
    "tool_started": ToolStarted,
    "tool_updated": ToolUpdated,
    "tool_completed": ToolCompleted,
    "tool_failed": ToolFailed,
    "agent_error": AgentError,
    "permission_requested": PermissionRequested,
    "permission_resolved": PermissionResolved,
    "todo_updated": TodoUpdated,
    "files_changed": FilesChanged,
    "snapshot_saved": SnapshotSaved,
    "preview_url": PreviewUrl,
}
"""Every `Event` tag this version knows, and its class."""

ServerFrame = Union[EventEnvelope, Welcome, ReplayDone, Reset, Heartbeat, Pong, PromptAdmission, ErrorFrame, Presence, PresenceChange, Unknown]
"""One `ServerFrame`, tagged on `type`."""
SERVERFRAME_TYPES: dict[str, type] = {
    "event": EventEnvelope,
    "welcome": Welcome,
    "replay_done": ReplayDone,
    "reset": Reset,
    "heartbeat": Heartbeat,
    "pong": Pong,
    "prompt_admitted": PromptAdmission,
    "error": ErrorFrame,
    "presence": Presence,
    "presence_changed": PresenceChange,
}
"""Every `ServerFrame` tag this version knows, and its class."""

TranscriptPart = Union[TextPart, ToolCall, ImageTranscriptPart, Unknown]
"""One part of a message."""
TRANSCRIPTPART_TYPES: dict[str, type] = {
    "text": TextPart,
    "reasoning": TextPart,
    "tool": ToolCall,
    "image": ImageTranscriptPart,
}
"""Every `TranscriptPart` tag this version knows, and its class."""

UNIONS: dict[str, dict[str, type]] = {
    "ClientFrame": CLIENTFRAME_TYPES,
    "Event": EVENT_TYPES,
    "ServerFrame": SERVERFRAME_TYPES,
    "TranscriptPart": TRANSCRIPTPART_TYPES,
}
"""Each tagged union by name."""
