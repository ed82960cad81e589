// Typed wire values of protocol v1, generated from docs/schema/v1.json.
// Do not edit: run `cargo run -p proliferate-codegen`.

/** Payload of `agent_error`. */
export interface AgentError {
  /** The `type` tag this value carries on the wire. */
  type: "agent_error";
  /** What failed: `model` (the model's API), `model_retrying` (the agent retries the model),
`agent_exited`, `limit_exceeded` (the sandbox ran out of memory or processes),
`agent_unreachable`, `prompt_rejected`, or `agent` for anything else. */
  kind: string;
  /** A message fit to show a person. */
  message: string;
  /** The prompt whose turn failed, if any. */
  prompt_id?: string | null;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Payload of `assistant_message_completed`. */
export interface AssistantMessageCompleted {
  /** The `type` tag this value carries on the wire. */
  type: "assistant_message_completed";
  /** Why the model stopped: `stop`, `tool-calls`, `length`, ... */
  finish?: string | null;
  /** The message that finished. */
  message_id: string;
  /** Tokens spent on this message. */
  usage?: TokenUsage | null;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Payload of `assistant_message_started`. */
export interface AssistantMessageStarted {
  /** The `type` tag this value carries on the wire. */
  type: "assistant_message_started";
  /** The agent's id for this message. */
  message_id: string;
  /** The model answering, as `provider/model`, if known. */
  model?: string | null;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Payload of `auth`. */
export interface Auth {
  /** The `type` tag this value carries on the wire. */
  type?: "auth";
  /** A bearer token. */
  token: string;
}

/** Payload of `cancel`. */
export interface Cancel {
  /** The `type` tag this value carries on the wire. */
  type?: "cancel";
}

/** Body of `POST /v1/sessions/{id}/cancel`. */
export interface CancelOutcome {
  /** True when a turn was running and is now cancelled. */
  cancelled: boolean;
}

/** Payload of `cancel_queued`. */
export interface CancelQueued {
  /** The `type` tag this value carries on the wire. */
  type?: "cancel_queued";
  /** The queued prompt to withdraw. */
  prompt_id: string;
}

/** Body of `POST /v1/sessions`. Send an `Idempotency-Key` header to make retries safe. */
export interface CreateSessionRequest {
  /** Hosts the sandbox may reach through the egress proxy, beyond the server's allow-list
(`host`, `host:port` or `*.domain`). */
  egress_allow?: Array<string>;
  /** A prompt to run as soon as the agent is up. */
  initial_prompt?: string | null;
  /** Resource limits for the sandbox, each no higher than the server's. */
  limits?: SandboxLimits | null;
  /** Free-form metadata kept with the session. */
  metadata?: unknown;
  /** The model to use, as `provider/model`; the server's default otherwise. */
  model?: string | null;
  /** Start from this snapshot's workspace and agent state. */
  snapshot_id?: string | null;
  /** A human title. */
  title?: string | null;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** A stable machine code. Known codes are listed; readers keep unknown ones. */
export type ErrorCode = "bad_request" | "unauthenticated" | "token_expired" | "forbidden" | "not_found" | "conflict" | "cursor_expired" | "payload_too_large" | "limit_exceeded" | "agent_error" | "sandbox_error" | "unavailable" | "timeout" | "slow_consumer" | "internal" | (string & {});

/** Payload of `error`. */
export interface ErrorFrame {
  /** The `type` tag this value carries on the wire. */
  type?: "error";
  /** The stable machine code. */
  code: ErrorCode;
  /** A message fit to show a person. */
  message: string;
  /** The client's id of the frame that failed, if it had one. */
  prompt_id?: string | null;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** One durable event of a session: persisted before broadcast, numbered by a dense `seq`. */
export interface EventEnvelope {
  /** The `type` tag this value carries on the wire. */
  type?: "event";
  /** What happened. */
  event: Event;
  /** Position in the session's log: 1 for the first event, then every integer in turn. */
  seq: number;
  /** The session this event belongs to. */
  session_id: string;
  /** When the gateway recorded the event, milliseconds since the Unix epoch. */
  timestamp: number;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Body of `GET /v1/sessions/{id}/events?after_seq=N&limit=M`. */
export interface EventPage {
  /** Events with `seq > after_seq`, in order, at most `limit` of them. */
  events: Array<EventEnvelope>;
  /** True when more events follow this page. */
  has_more: boolean;
  /** The newest seq of the session when the page was read. */
  head_seq: number;
}

/** One changed file. */
export interface FileChange {
  /** Lines added. */
  additions?: number;
  /** Lines removed. */
  deletions?: number;
  /** Path relative to the workspace. */
  path: string;
}

/** Payload of `files_changed`. */
export interface FilesChanged {
  /** The `type` tag this value carries on the wire. */
  type: "files_changed";
  /** The files that differ from the start of the session. */
  files: Array<FileChange>;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Body of `GET /healthz` and `GET /readyz`. */
export interface Health {
  /** `ok`, or what is not ready. */
  status: string;
  /** The server's version. */
  version: string;
}

/** Payload of `heartbeat`. */
export interface Heartbeat {
  /** The `type` tag this value carries on the wire. */
  type?: "heartbeat";
  /** The newest seq at the time of the heartbeat. */
  head_seq: number;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** One model's share of a [`UsageReport`]. */
export interface ModelUsage {
  /** The model, as `provider/model`. */
  model: string;
  /** Its requests. */
  requests: number;
  /** Its tokens and cost. */
  usage: TokenUsage;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** An answer to a permission request. */
export type PermissionDecision = "once" | "always" | "reject";

/** Payload of `permission_reply`. */
export interface PermissionReply {
  /** The `type` tag this value carries on the wire. */
  type?: "permission_reply";
  /** The answer. */
  decision: PermissionDecision;
  /** The request to answer. */
  permission_id: string;
}

/** Body of `POST /v1/sessions/{id}/permissions/{permission_id}`. */
export interface PermissionReplyRequest {
  /** The answer. */
  decision: PermissionDecision;
}

/** Payload of `permission_requested`. */
export interface PermissionRequested {
  /** The `type` tag this value carries on the wire. */
  type: "permission_requested";
  /** The tool call waiting on this answer, if any. */
  call_id?: string | null;
  /** The answer applied when nobody answers in time. */
  default_decision: PermissionDecision;
  /** When the default answer applies, milliseconds since the Unix epoch. */
  expires_at: number;
  /** Details the agent attached, for example `{"command": "..."}`. */
  metadata?: unknown;
  /** The patterns the permission covers, for example the command line. */
  patterns?: Array<string>;
  /** What is asked, for example `bash`, `edit`, `external_directory`. */
  permission: string;
  /** The id to answer with. */
  permission_id: string;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Payload of `permission_resolved`. */
export interface PermissionResolved {
  /** The `type` tag this value carries on the wire. */
  type: "permission_resolved";
  /** The answer that won. */
  decision: PermissionDecision;
  /** The request that was answered. */
  permission_id: string;
  /** Who answered; absent when the timeout default applied. */
  resolved_by?: Sender | null;
  /** True when nobody answered in time and the default applied. */
  timed_out?: boolean;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Payload of `ping`. */
export interface Ping {
  /** The `type` tag this value carries on the wire. */
  type?: "ping";
  /** Echoed back in the `pong`. */
  nonce?: string | null;
}

/** Payload of `pong`: the ping's nonce, echoed. */
export interface Pong {
  /** The `type` tag this value carries on the wire. */
  type?: "pong";
  /** Echoed back in the `pong`. */
  nonce?: string | null;
}

/** Payload of `presence`. */
export interface Presence {
  /** The `type` tag this value carries on the wire. */
  type?: "presence";
  /** Every open connection of the session. */
  connections: Array<PresenceEntry>;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Payload of `presence_changed`: the joins and leaves of a short window, as set operations on
the connections a client knows. A connection that joined and left within one window is in
neither list; no id is in both. */
export interface PresenceChange {
  /** The `type` tag this value carries on the wire. */
  type?: "presence_changed";
  /** How many connections the session has after the change. Above the presence list limit,
`joined` and `left` are empty and only the count changes; once the count is back within
the limit, a `presence` frame with the whole list follows. */
  count?: number;
  /** Connections that opened; some may already be in this connection's `welcome`. */
  joined?: Array<PresenceEntry>;
  /** The ids of connections that closed; some may be unknown to this connection. */
  left?: Array<string>;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** One connected client. */
export interface PresenceEntry {
  /** The connection's id. */
  connection_id: string;
  /** The kind of client it said it is. */
  source: string;
  /** The subject of its token. */
  subject: string;
}

/** Payload of the client frame `presence`. */
export interface PresenceRequest {
  /** The `type` tag this value carries on the wire. */
  type?: "presence";
}

/** Payload of `preview_url`. */
export interface PreviewUrl {
  /** The `type` tag this value carries on the wire. */
  type: "preview_url";
  /** Where the preview is served. */
  url: string;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Who a connection or request is, as the gateway authenticated it. */
export interface Principal {
  /** What kind of party this is. */
  kind: PrincipalKind;
  /** The organisation the token belongs to. */
  organization_id: string;
  /** What the token may do. */
  scopes: Array<Scope>;
  /** The one session this token is restricted to, if any. */
  session_id?: string | null;
  /** The token's subject (a user id, a service name). */
  subject: string;
}

/** The kind of party a token stands for. */
export type PrincipalKind = "user" | "service" | "sandbox";

/** An HTTP error body (`application/problem+json`, RFC 9457) with a stable machine `code`. */
export interface Problem {
  /** The stable machine code. */
  code: ErrorCode;
  /** What went wrong in this occurrence, fit to show a person. */
  detail: string;
  /** The id of the request, as logged by the gateway. */
  request_id?: string | null;
  /** The HTTP status code. */
  status: number;
  /** A short summary of the problem type. */
  title: string;
  /** A URI naming the problem type; `about:blank` unless a page documents it. */
  type?: string;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Payload of `prompt`. */
export interface Prompt {
  /** The `type` tag this value carries on the wire. */
  type?: "prompt";
  /** The prompt text. */
  content: string;
  /** Attached images, as `data:` URIs or URLs. */
  images?: Array<string>;
  /** The client-chosen id; a retry with the same id never starts a second turn. */
  prompt_id: string;
}

/** The gateway's acknowledgement of a prompt; the same for a retry of the same `prompt_id`. */
export interface PromptAdmission {
  /** The `type` tag this value carries on the wire. */
  type?: "prompt_admitted";
  /** True when this prompt had been admitted before and this is a retry. */
  duplicate: boolean;
  /** The client-chosen id of the prompt. */
  prompt_id: string;
  /** Prompts ahead of this one when it was admitted; 0 means it runs now. */
  queue_position: number;
}

/** Payload of `queued_prompt_cancelled`. */
export interface QueuedPromptCancelled {
  /** The `type` tag this value carries on the wire. */
  type: "queued_prompt_cancelled";
  /** Who withdrew it. */
  cancelled_by?: Sender | null;
  /** The prompt that was withdrawn. */
  prompt_id: string;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Payload of `reasoning_completed`. */
export interface ReasoningCompleted {
  /** The `type` tag this value carries on the wire. */
  type: "reasoning_completed";
  /** The message the part belongs to. */
  message_id: string;
  /** The part that finished. */
  part_id: string;
  /** The whole text of the part; it replaces what the deltas built. */
  text: string;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Payload of `reasoning_delta`. */
export interface ReasoningDelta {
  /** The `type` tag this value carries on the wire. */
  type: "reasoning_delta";
  /** Text to append. */
  delta: string;
  /** The message the part belongs to. */
  message_id: string;
  /** The part the text is appended to. */
  part_id: string;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Payload of `replay_done`. */
export interface ReplayDone {
  /** The `type` tag this value carries on the wire. */
  type?: "replay_done";
  /** The last seq sent from the backlog (the client's cursor if there was none). */
  through_seq: number;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Payload of `reset`. */
export interface Reset {
  /** The `type` tag this value carries on the wire. */
  type?: "reset";
  /** The oldest seq still retained. */
  earliest_seq: number;
  /** Why replay was impossible, for example `cursor_expired`. */
  reason: string;
  /** The session's transcript up to `transcript.through_seq`; live events follow it. */
  transcript: Transcript;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Body of `POST /v1/tokens/revoke`: the id of the tokens to stop. */
export interface RevokeTokenRequest {
  /** The token's `jti` claim. */
  jti: string;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Who wrote a message. */
export type Role = "user" | "assistant";

/** Resource limits of a sandbox. In a request each field lowers the server's limit (a value above
it is refused, as is one below the least a sandbox works with); in session info each field is
the limit in force. */
export interface SandboxLimits {
  /** CPU time, in thousandths of a core (1000 is one core). */
  cpu_millicores?: number | null;
  /** Disk for the sandbox's home and workspace together, in bytes, where the server gives each
sandbox a disk of its own; elsewhere the largest file it may write. */
  disk_bytes?: number | null;
  /** How the limits are enforced, for example `cgroup v1` or `rlimit` (memory, CPU and processes
unenforced); set by the server, ignored in requests. */
  enforced_by?: string | null;
  /** Memory of every process in the sandbox together, including its `/tmp`, in bytes. */
  memory_bytes?: number | null;
  /** Open files per process. */
  open_files?: number | null;
  /** Processes and threads at once. */
  processes?: number | null;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** A permission a token grants. */
export type Scope = "read" | "write" | "admin";

/** Body of `POST /v1/sessions/{id}/messages`: the same admission path as a WebSocket `prompt`. */
export interface SendMessageRequest {
  /** The prompt text; not only whitespace. */
  content: string;
  /** Attached images, as `data:` URIs or URLs. */
  images?: Array<string>;
  /** The client-chosen id that makes the prompt idempotent; generated when absent. */
  prompt_id?: string | null;
  /** The kind of client sending it (`api` when absent). */
  source?: string | null;
}

/** Who sent a prompt or answered a permission, and through what kind of client. */
export interface Sender {
  /** The kind of client: `web`, `cli`, `slack`, `api`, `automation`, or another name. */
  source: string;
  /** The subject of the sender's token. */
  subject: string;
}

/** What a session looks like to clients. */
export interface SessionInfo {
  /** The agent that runs in the sandbox, for example `opencode`. */
  agent: string;
  /** Creation time, milliseconds since the Unix epoch. */
  created_at: number;
  /** The subject of the token that created it. */
  created_by: string;
  /** Hosts the sandbox may reach through the egress proxy, beyond the server's allow-list. */
  egress_allow?: Array<string>;
  /** The seq of the newest durable event; 0 before the first. */
  head_seq: number;
  /** The session's id. */
  id: string;
  /** How the sandbox isolates the agent, for example `bubblewrap` or `process`. */
  isolation?: string | null;
  /** The resource limits of the session's sandbox, once it has started. */
  limits?: SandboxLimits | null;
  /** Free-form metadata the creator attached. */
  metadata?: unknown;
  /** The model the agent uses, as `provider/model`. */
  model?: string | null;
  /** The organisation that owns the session; no other organisation's token reaches it. */
  organization_id: string;
  /** A URL where the sandbox's preview is served, if any. */
  preview_url?: string | null;
  /** The sandbox provider, for example `local`. */
  provider: string;
  /** The snapshot the session started from, if any. */
  source_snapshot_id?: string | null;
  /** Lifecycle status. */
  status: SessionStatus;
  /** Why the session is in its status (for example `idle` for an auto-pause). */
  status_reason?: string | null;
  /** A human title, if one was given or derived. */
  title?: string | null;
  /** Last change, milliseconds since the Unix epoch. */
  updated_at: number;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Body of `GET /v1/sessions`. */
export interface SessionList {
  /** Pass as `?cursor=` to get the next page; absent on the last page. */
  next_cursor?: string | null;
  /** The caller's organisation's sessions, newest first. */
  sessions: Array<SessionInfo>;
}

/** Where a session is in its lifecycle. Every transition is checked by the core's state machine. */
export type SessionStatus = "pending" | "starting" | "running" | "pausing" | "paused" | "resuming" | "stopped" | "failed";

/** Body of `POST /v1/sessions/{id}/snapshot`. */
export interface SnapshotInfo {
  /** When it was taken, milliseconds since the Unix epoch. */
  created_at: number;
  /** The session it was taken from. */
  session_id: string;
  /** Its size on disk. */
  size_bytes: number;
  /** The snapshot's id; pass it as `snapshot_id` to create a session from it. */
  snapshot_id: string;
}

/** Payload of `snapshot_saved`. */
export interface SnapshotSaved {
  /** The `type` tag this value carries on the wire. */
  type: "snapshot_saved";
  /** The snapshot's id; a new session can start from it. */
  snapshot_id: string;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Payload of `status_changed`. */
export interface StatusChanged {
  /** The `type` tag this value carries on the wire. */
  type: "status_changed";
  /** Why, for example `idle`, `requested`, `agent_exited`. */
  reason?: string | null;
  /** The new status. */
  status: SessionStatus;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Payload of `text_completed`. */
export interface TextCompleted {
  /** The `type` tag this value carries on the wire. */
  type: "text_completed";
  /** The message the part belongs to. */
  message_id: string;
  /** The part that finished. */
  part_id: string;
  /** The whole text of the part; it replaces what the deltas built. */
  text: string;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Payload of `text_delta`. */
export interface TextDelta {
  /** The `type` tag this value carries on the wire. */
  type: "text_delta";
  /** Text to append. */
  delta: string;
  /** The message the part belongs to. */
  message_id: string;
  /** The part the text is appended to. */
  part_id: string;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** A text or reasoning part. */
export interface TextPart {
  /** The `type` tag this value carries on the wire. */
  type: "text" | "reasoning";
  /** True once the final text arrived. */
  completed: boolean;
  /** The part's id. */
  id: string;
  /** The text so far, or the final text once completed. */
  text: string;
}

/** One item of the agent's todo list. */
export interface Todo {
  /** What is to be done. */
  content: string;
  /** `high`, `medium` or `low`, if given. */
  priority?: string | null;
  /** `pending`, `in_progress`, `completed` or `cancelled`. */
  status: string;
}

/** Payload of `todo_updated`. */
export interface TodoUpdated {
  /** The `type` tag this value carries on the wire. */
  type: "todo_updated";
  /** The whole list, replacing the previous one. */
  todos: Array<Todo>;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** The claims of a Proliferate JWT (HS256), as `docs/protocol.md` section 12 lists them. */
export interface TokenClaims {
  /** Audience, one string; a server that sets one accepts only user tokens that name it. */
  aud?: string | null;
  /** Expiry, seconds since the Unix epoch. */
  exp: number;
  /** Issue time, seconds since the Unix epoch. */
  iat: number;
  /** Issuer; a server that sets one accepts only user tokens that name it. */
  iss?: string | null;
  /** Token id. */
  jti: string;
  /** `user` or `service`. */
  kind?: PrincipalKind;
  /** Organisation id. */
  org: string;
  /** What the token may do. */
  scopes: Array<Scope>;
  /** The only session the token may reach, if restricted. */
  sid?: string | null;
  /** Subject: a user id or service name. */
  sub: string;
}

/** Token counts of one assistant message. */
export interface TokenUsage {
  /** Tokens read from the provider's cache. */
  cache_read?: number;
  /** Tokens written to the provider's cache. */
  cache_write?: number;
  /** Cost in US dollars, if the agent reports it. */
  cost?: number | null;
  /** Prompt tokens. */
  input: number;
  /** Completion tokens. */
  output: number;
  /** Reasoning tokens. */
  reasoning?: number;
}

/** A tool call inside an assistant message. */
export interface ToolCall {
  /** The `type` tag this value carries on the wire. */
  type: "tool";
  /** The model's id for the call. */
  call_id: string;
  /** The error, when the call failed. */
  error?: string | null;
  /** The part that holds the call. */
  id: string;
  /** The arguments. */
  input: unknown;
  /** The output (or the output so far). */
  output?: string | null;
  /** Where the call is. */
  status: ToolStatus;
  /** A short human title. */
  title?: string | null;
  /** The tool's name. */
  tool: string;
}

/** Payload of `tool_completed`. */
export interface ToolCompleted {
  /** The `type` tag this value carries on the wire. */
  type: "tool_completed";
  /** The model's id for the call. */
  call_id: string;
  /** The final arguments. */
  input?: unknown;
  /** The message that made the call. */
  message_id: string;
  /** What the tool returned to the model. */
  output: string;
  /** The part that holds the call. */
  part_id: string;
  /** A short human title for what the tool did. */
  title?: string | null;
  /** The tool's name. */
  tool: string;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Payload of `tool_failed`. */
export interface ToolFailed {
  /** The `type` tag this value carries on the wire. */
  type: "tool_failed";
  /** The model's id for the call. */
  call_id: string;
  /** What went wrong. */
  error: string;
  /** The final arguments. */
  input?: unknown;
  /** The message that made the call. */
  message_id: string;
  /** The part that holds the call. */
  part_id: string;
  /** The tool's name. */
  tool: string;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Payload of `tool_started`. */
export interface ToolStarted {
  /** The `type` tag this value carries on the wire. */
  type: "tool_started";
  /** The model's id for the call. */
  call_id: string;
  /** The tool's arguments (may still be `{}` while the model streams them). */
  input?: unknown;
  /** The message that made the call. */
  message_id: string;
  /** The part that holds the call. */
  part_id: string;
  /** The tool's name, for example `bash`. */
  tool: string;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Where a tool call is. */
export type ToolStatus = "running" | "completed" | "failed" | "cancelled";

/** Payload of `tool_updated`. */
export interface ToolUpdated {
  /** The `type` tag this value carries on the wire. */
  type: "tool_updated";
  /** The model's id for the call. */
  call_id: string;
  /** The arguments, when they changed. */
  input?: unknown;
  /** The message that made the call. */
  message_id: string;
  /** Output so far, for tools that stream it. */
  output?: string | null;
  /** The part that holds the call. */
  part_id: string;
  /** A short human title for what the tool is doing. */
  title?: string | null;
  /** The tool's name. */
  tool: string;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** A session's conversation as of one seq. */
export interface Transcript {
  /** Messages in the order their turns ran: each prompt, then the agent's answer. */
  messages: Array<TranscriptMessage>;
  /** Permission requests not yet resolved. */
  pending_permissions?: Array<PermissionRequested>;
  /** Prompts admitted but not started yet, in queue order. */
  queued_prompts?: Array<TranscriptMessage>;
  /** The prompt whose turn runs now, if any. */
  running_prompt_id?: string | null;
  /** The session. */
  session_id: string;
  /** The last seq folded in; live events continue from here. */
  through_seq: number;
  /** The agent's latest todo list. */
  todos?: Array<Todo>;
}

/** One message of the transcript. */
export interface TranscriptMessage {
  /** True once the message is final. */
  completed: boolean;
  /** The message's id. */
  id: string;
  /** Its parts, in order. */
  parts: Array<TranscriptPart>;
  /** The prompt it belongs to: the prompt itself, or the one the agent answers. */
  prompt_id?: string | null;
  /** Who wrote it. */
  role: Role;
  /** Who sent it (user messages only). */
  sender?: Sender | null;
  /** Token usage (assistant messages, once completed). */
  usage?: TokenUsage | null;
}

/** Payload of `turn_cancelled`. */
export interface TurnCancelled {
  /** The `type` tag this value carries on the wire. */
  type: "turn_cancelled";
  /** Who cancelled it, if a client did. */
  cancelled_by?: Sender | null;
  /** The prompt whose turn was cancelled. */
  prompt_id: string;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Payload of `turn_completed`. */
export interface TurnCompleted {
  /** The `type` tag this value carries on the wire. */
  type: "turn_completed";
  /** The prompt this turn answers. */
  prompt_id: string;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Payload of `turn_started`. */
export interface TurnStarted {
  /** The `type` tag this value carries on the wire. */
  type: "turn_started";
  /** The prompt this turn answers. */
  prompt_id: string;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Model usage summed over a session or an organisation (`GET /v1/sessions/{id}/usage`,
`GET /v1/usage`), as the gateway's model proxy metered it. */
export interface UsageReport {
  /** The same per model, most used first. */
  by_model: Array<ModelUsage>;
  /** Model requests. */
  requests: number;
  /** Tokens and cost of every request; `cost` is absent when no request had a price. */
  total: TokenUsage;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Payload of `user_message`: the prompt as admitted, echoed to everyone. */
export interface UserMessage {
  /** The `type` tag this value carries on the wire. */
  type: "user_message";
  /** The prompt text. */
  content: string;
  /** Attached images, as `data:` URIs or URLs. */
  images?: Array<string>;
  /** The transcript id of this message. */
  message_id: string;
  /** The client-chosen id that made the prompt idempotent. */
  prompt_id: string;
  /** Places ahead of this prompt when it was admitted; 0 means it ran at once. */
  queue_position: number;
  /** Who sent it and from what kind of client. */
  sender: Sender;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** Payload of `welcome`. */
export interface Welcome {
  /** The `type` tag this value carries on the wire. */
  type?: "welcome";
  /** How many connections the session has, this one included. */
  connection_count?: number;
  /** This connection's id, as presence frames show it. */
  connection_id: string;
  /** Everyone connected when this connection joined, itself included; empty when the session
has more connections than the gateway lists (its presence list limit, 100 by default). */
  connections?: Array<PresenceEntry>;
  /** The newest seq at the time of the welcome. */
  head_seq: number;
  /** Milliseconds between server heartbeats. */
  heartbeat_interval_ms: number;
  /** Who the gateway authenticated. */
  principal: Principal;
  /** The protocol version the gateway speaks. */
  protocol_version: number;
  /** The session this connection follows. */
  session_id: string;
  /** The session's status. */
  status: SessionStatus;
  /** Fields this version does not know, kept as sent. */
  [field: string]: unknown;
}

/** An attached image. */
export interface ImageTranscriptPart {
  /** The `type` tag this value carries on the wire. */
  type: "image";
  /** A `data:` URI or URL. */
  url: string;
}

/** One `ClientFrame`, tagged on `type`. Newer servers may send types this version does not know. */
export type ClientFrame = Auth | Ping | Prompt | Cancel | CancelQueued | PermissionReply | PresenceRequest;

/** Every `ClientFrame` tag this version knows. */
export const clientFrameTypes = ["auth","ping","prompt","cancel","cancel_queued","permission_reply","presence"] as const;

/** One `Event`, tagged on `type`. Newer servers may send types this version does not know. */
export type Event = StatusChanged | UserMessage | QueuedPromptCancelled | TurnStarted | TurnCompleted | TurnCancelled | AssistantMessageStarted | AssistantMessageCompleted | TextDelta | TextCompleted | ReasoningDelta | ReasoningCompleted | ToolStarted | ToolUpdated | ToolCompleted | ToolFailed | AgentError | PermissionRequested | PermissionResolved | TodoUpdated | FilesChanged | SnapshotSaved | PreviewUrl;

/** Every `Event` tag this version knows. */
export const eventTypes = ["status_changed","user_message","queued_prompt_cancelled","turn_started","turn_completed","turn_cancelled","assistant_message_started","assistant_message_completed","text_delta","text_completed","reasoning_delta","reasoning_completed","tool_started","tool_updated","tool_completed","tool_failed","agent_error","permission_requested","permission_resolved","todo_updated","files_changed","snapshot_saved","preview_url"] as const;

/** One `ServerFrame`, tagged on `type`. Newer servers may send types this version does not know. */
export type ServerFrame = EventEnvelope | Welcome | ReplayDone | Reset | Heartbeat | Pong | PromptAdmission | ErrorFrame | Presence | PresenceChange;

/** Every `ServerFrame` tag this version knows. */
export const serverFrameTypes = ["event","welcome","replay_done","reset","heartbeat","pong","prompt_admitted","error","presence","presence_changed"] as const;

/** One part of a message. */
export type TranscriptPart = TextPart | ToolCall | ImageTranscriptPart;

/** Every `TranscriptPart` tag this version knows. */
export const transcriptPartTypes = ["text","reasoning","tool","image"] as const;

