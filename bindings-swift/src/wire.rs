//! The values the gateway sends, as Swift sees them: UniFFI records and enums decoded from
//! the protocol types' JSON. Open-ended values (tool input, metadata) are JSON text.
//!
//! Generated from `docs/schema/v1.json`. Do not edit: run `cargo run -p proliferate-codegen`.

use serde::{Deserialize, Deserializer};

/// Decodes any JSON value as its text.
fn json_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(serde_json::Value::deserialize(deserializer)?.to_string())
}

/// Decodes a union member's payload.
fn payload<T: serde::de::DeserializeOwned, E: serde::de::Error>(
    value: serde_json::Value,
) -> Result<T, E> {
    serde_json::from_value(value).map_err(E::custom)
}

/// Payload of `agent_error`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct AgentError {
    /// What failed: `model` (the model's API), `model_retrying` (the agent retries the model),
    /// `agent_exited`, `limit_exceeded` (the sandbox ran out of memory or processes),
    /// `agent_unreachable`, `prompt_rejected`, or `agent` for anything else.
    pub kind: String,
    /// A message fit to show a person.
    pub message: String,
    /// The prompt whose turn failed, if any.
    #[serde(default)]
    #[uniffi(default)]
    pub prompt_id: Option<String>,
}

/// Payload of `assistant_message_completed`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct AssistantMessageCompleted {
    /// Why the model stopped: `stop`, `tool-calls`, `length`, ...
    #[serde(default)]
    #[uniffi(default)]
    pub finish: Option<String>,
    /// The message that finished.
    pub message_id: String,
    /// Tokens spent on this message.
    #[serde(default)]
    #[uniffi(default)]
    pub usage: Option<TokenUsage>,
}

/// Payload of `assistant_message_started`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct AssistantMessageStarted {
    /// The agent's id for this message.
    pub message_id: String,
    /// The model answering, as `provider/model`, if known.
    #[serde(default)]
    #[uniffi(default)]
    pub model: Option<String>,
}

/// One `Event`, tagged on `type`.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum Event {
    /// Payload of `status_changed`.
    StatusChanged(StatusChanged),
    /// Payload of `user_message`: the prompt as admitted, echoed to everyone.
    UserMessage(UserMessage),
    /// Payload of `queued_prompt_cancelled`.
    QueuedPromptCancelled(QueuedPromptCancelled),
    /// Payload of `turn_started`.
    TurnStarted(TurnStarted),
    /// Payload of `turn_completed`.
    TurnCompleted(TurnCompleted),
    /// Payload of `turn_cancelled`.
    TurnCancelled(TurnCancelled),
    /// Payload of `assistant_message_started`.
    AssistantMessageStarted(AssistantMessageStarted),
    /// Payload of `assistant_message_completed`.
    AssistantMessageCompleted(AssistantMessageCompleted),
    /// Payload of `text_delta`.
    TextDelta(TextDelta),
    /// Payload of `text_completed`.
    TextCompleted(TextCompleted),
    /// Payload of `reasoning_delta`.
    ReasoningDelta(ReasoningDelta),
    /// Payload of `reasoning_completed`.
    ReasoningCompleted(ReasoningCompleted),
    /// Payload of `tool_started`.
    ToolStarted(ToolStarted),
    /// Payload of `tool_updated`.
    ToolUpdated(ToolUpdated),
    /// Payload of `tool_completed`.
    ToolCompleted(ToolCompleted),
    /// Payload of `tool_failed`.
    ToolFailed(ToolFailed),
    /// Payload of `agent_error`.
    AgentError(AgentError),
    /// Payload of `permission_requested`.
    PermissionRequested(PermissionRequested),
    /// Payload of `permission_resolved`.
    PermissionResolved(PermissionResolved),
    /// Payload of `todo_updated`.
    TodoUpdated(TodoUpdated),
    /// Payload of `files_changed`.
    FilesChanged(FilesChanged),
    /// Payload of `snapshot_saved`.
    SnapshotSaved(SnapshotSaved),
    /// Payload of `preview_url`.
    PreviewUrl(PreviewUrl),
    /// A type this version does not know.
    Unknown {
        /// Its `type` tag.
        type_name: String,
        /// The whole value as JSON text.
        json: String,
    },
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let type_name = value["type"].as_str().unwrap_or_default().to_owned();
        let decoded = match type_name.as_str() {
            "status_changed" => Self::StatusChanged(payload(value)?),
            "user_message" => Self::UserMessage(payload(value)?),
            "queued_prompt_cancelled" => Self::QueuedPromptCancelled(payload(value)?),
            "turn_started" => Self::TurnStarted(payload(value)?),
            "turn_completed" => Self::TurnCompleted(payload(value)?),
            "turn_cancelled" => Self::TurnCancelled(payload(value)?),
            "assistant_message_started" => Self::AssistantMessageStarted(payload(value)?),
            "assistant_message_completed" => Self::AssistantMessageCompleted(payload(value)?),
            "text_delta" => Self::TextDelta(payload(value)?),
            "text_completed" => Self::TextCompleted(payload(value)?),
            "reasoning_delta" => Self::ReasoningDelta(payload(value)?),
            "reasoning_completed" => Self::ReasoningCompleted(payload(value)?),
            "tool_started" => Self::ToolStarted(payload(value)?),
            "tool_updated" => Self::ToolUpdated(payload(value)?),
            "tool_completed" => Self::ToolCompleted(payload(value)?),
            "tool_failed" => Self::ToolFailed(payload(value)?),
            "agent_error" => Self::AgentError(payload(value)?),
            "permission_requested" => Self::PermissionRequested(payload(value)?),
            "permission_resolved" => Self::PermissionResolved(payload(value)?),
            "todo_updated" => Self::TodoUpdated(payload(value)?),
            "files_changed" => Self::FilesChanged(payload(value)?),
            "snapshot_saved" => Self::SnapshotSaved(payload(value)?),
            "preview_url" => Self::PreviewUrl(payload(value)?),
            _ => {
                let json = value.to_string();
                return Ok(Self::Unknown { type_name, json });
            }
        };
        Ok(decoded)
    }
}

/// One changed file.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct FileChange {
    /// Lines added.
    #[serde(default)]
    pub additions: u64,
    /// Lines removed.
    #[serde(default)]
    pub deletions: u64,
    /// Path relative to the workspace.
    pub path: String,
}

/// Payload of `files_changed`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct FilesChanged {
    /// The files that differ from the start of the session.
    pub files: Vec<FileChange>,
}

/// One model's share of a [`UsageReport`].
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct ModelUsage {
    /// The model, as `provider/model`.
    pub model: String,
    /// Its requests.
    pub requests: u64,
    /// Its tokens and cost.
    pub usage: TokenUsage,
}

/// Payload of `permission_requested`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct PermissionRequested {
    /// The tool call waiting on this answer, if any.
    #[serde(default)]
    #[uniffi(default)]
    pub call_id: Option<String>,
    /// The answer applied when nobody answers in time.
    pub default_decision: String,
    /// When the default answer applies, milliseconds since the Unix epoch.
    pub expires_at: i64,
    /// Details the agent attached, for example `{"command": "..."}`.
    #[serde(default, deserialize_with = "json_text")]
    pub metadata: String,
    /// The patterns the permission covers, for example the command line.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// What is asked, for example `bash`, `edit`, `external_directory`.
    pub permission: String,
    /// The id to answer with.
    pub permission_id: String,
}

/// Payload of `permission_resolved`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct PermissionResolved {
    /// The answer that won.
    pub decision: String,
    /// The request that was answered.
    pub permission_id: String,
    /// Who answered; absent when the timeout default applied.
    #[serde(default)]
    #[uniffi(default)]
    pub resolved_by: Option<Sender>,
    /// True when nobody answered in time and the default applied.
    #[serde(default)]
    pub timed_out: bool,
}

/// One connected client.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct PresenceEntry {
    /// The connection's id.
    pub connection_id: String,
    /// The kind of client it said it is.
    pub source: String,
    /// The subject of its token.
    pub subject: String,
}

/// Payload of `preview_url`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct PreviewUrl {
    /// Where the preview is served.
    pub url: String,
}

/// Who a connection or request is, as the gateway authenticated it.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct Principal {
    /// What kind of party this is.
    pub kind: String,
    /// The organisation the token belongs to.
    pub organization_id: String,
    /// What the token may do.
    pub scopes: Vec<String>,
    /// The one session this token is restricted to, if any.
    #[serde(default)]
    #[uniffi(default)]
    pub session_id: Option<String>,
    /// The token's subject (a user id, a service name).
    pub subject: String,
}

/// The gateway's acknowledgement of a prompt; the same for a retry of the same `prompt_id`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct PromptAdmission {
    /// True when this prompt had been admitted before and this is a retry.
    pub duplicate: bool,
    /// The client-chosen id of the prompt.
    pub prompt_id: String,
    /// Prompts ahead of this one when it was admitted; 0 means it runs now.
    pub queue_position: u32,
}

/// Payload of `queued_prompt_cancelled`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct QueuedPromptCancelled {
    /// Who withdrew it.
    #[serde(default)]
    #[uniffi(default)]
    pub cancelled_by: Option<Sender>,
    /// The prompt that was withdrawn.
    pub prompt_id: String,
}

/// Payload of `reasoning_completed`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct ReasoningCompleted {
    /// The message the part belongs to.
    pub message_id: String,
    /// The part that finished.
    pub part_id: String,
    /// The whole text of the part; it replaces what the deltas built.
    pub text: String,
}

/// Payload of `reasoning_delta`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct ReasoningDelta {
    /// Text to append.
    pub delta: String,
    /// The message the part belongs to.
    pub message_id: String,
    /// The part the text is appended to.
    pub part_id: String,
}

/// Resource limits of a sandbox. In a request each field lowers the server's limit (a value above
/// it is refused, as is one below the least a sandbox works with); in session info each field is
/// the limit in force.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct SandboxLimits {
    /// CPU time, in thousandths of a core (1000 is one core).
    #[serde(default)]
    #[uniffi(default)]
    pub cpu_millicores: Option<u32>,
    /// Disk for the sandbox's home and workspace together, in bytes, where the server gives each
    /// sandbox a disk of its own; elsewhere the largest file it may write.
    #[serde(default)]
    #[uniffi(default)]
    pub disk_bytes: Option<u64>,
    /// How the limits are enforced, for example `cgroup v1` or `rlimit` (memory, CPU and processes
    /// unenforced); set by the server, ignored in requests.
    #[serde(default)]
    #[uniffi(default)]
    pub enforced_by: Option<String>,
    /// Memory of every process in the sandbox together, including its `/tmp`, in bytes.
    #[serde(default)]
    #[uniffi(default)]
    pub memory_bytes: Option<u64>,
    /// Open files per process.
    #[serde(default)]
    #[uniffi(default)]
    pub open_files: Option<u32>,
    /// Processes and threads at once.
    #[serde(default)]
    #[uniffi(default)]
    pub processes: Option<u32>,
}

/// Who sent a prompt or answered a permission, and through what kind of client.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct Sender {
    /// The kind of client: `web`, `cli`, `slack`, `api`, `automation`, or another name.
    pub source: String,
    /// The subject of the sender's token.
    pub subject: String,
}

/// What a session looks like to clients.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct SessionInfo {
    /// The agent that runs in the sandbox, for example `opencode`.
    pub agent: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at: i64,
    /// The subject of the token that created it.
    pub created_by: String,
    /// Hosts the sandbox may reach through the egress proxy, beyond the server's allow-list.
    #[serde(default)]
    pub egress_allow: Vec<String>,
    /// The seq of the newest durable event; 0 before the first.
    pub head_seq: u64,
    /// The session's id.
    pub id: String,
    /// How the sandbox isolates the agent, for example `bubblewrap` or `process`.
    #[serde(default)]
    #[uniffi(default)]
    pub isolation: Option<String>,
    /// The resource limits of the session's sandbox, once it has started.
    #[serde(default)]
    #[uniffi(default)]
    pub limits: Option<SandboxLimits>,
    /// Free-form metadata the creator attached.
    #[serde(default, deserialize_with = "json_text")]
    pub metadata: String,
    /// The model the agent uses, as `provider/model`.
    #[serde(default)]
    #[uniffi(default)]
    pub model: Option<String>,
    /// The organisation that owns the session; no other organisation's token reaches it.
    pub organization_id: String,
    /// A URL where the sandbox's preview is served, if any.
    #[serde(default)]
    #[uniffi(default)]
    pub preview_url: Option<String>,
    /// The sandbox provider, for example `local`.
    pub provider: String,
    /// The snapshot the session started from, if any.
    #[serde(default)]
    #[uniffi(default)]
    pub source_snapshot_id: Option<String>,
    /// Lifecycle status.
    pub status: String,
    /// Why the session is in its status (for example `idle` for an auto-pause).
    #[serde(default)]
    #[uniffi(default)]
    pub status_reason: Option<String>,
    /// A human title, if one was given or derived.
    #[serde(default)]
    #[uniffi(default)]
    pub title: Option<String>,
    /// Last change, milliseconds since the Unix epoch.
    pub updated_at: i64,
}

/// Body of `GET /v1/sessions`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct SessionList {
    /// Pass as `?cursor=` to get the next page; absent on the last page.
    #[serde(default)]
    #[uniffi(default)]
    pub next_cursor: Option<String>,
    /// The caller's organisation's sessions, newest first.
    pub sessions: Vec<SessionInfo>,
}

/// Body of `POST /v1/sessions/{id}/snapshot`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct SnapshotInfo {
    /// When it was taken, milliseconds since the Unix epoch.
    pub created_at: i64,
    /// The session it was taken from.
    pub session_id: String,
    /// Its size on disk.
    pub size_bytes: u64,
    /// The snapshot's id; pass it as `snapshot_id` to create a session from it.
    pub snapshot_id: String,
}

/// Payload of `snapshot_saved`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct SnapshotSaved {
    /// The snapshot's id; a new session can start from it.
    pub snapshot_id: String,
}

/// Payload of `status_changed`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct StatusChanged {
    /// Why, for example `idle`, `requested`, `agent_exited`.
    #[serde(default)]
    #[uniffi(default)]
    pub reason: Option<String>,
    /// The new status.
    pub status: String,
}

/// Payload of `text_completed`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct TextCompleted {
    /// The message the part belongs to.
    pub message_id: String,
    /// The part that finished.
    pub part_id: String,
    /// The whole text of the part; it replaces what the deltas built.
    pub text: String,
}

/// Payload of `text_delta`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct TextDelta {
    /// Text to append.
    pub delta: String,
    /// The message the part belongs to.
    pub message_id: String,
    /// The part the text is appended to.
    pub part_id: String,
}

/// A text or reasoning part.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct TextPart {
    /// True once the final text arrived.
    pub completed: bool,
    /// The part's id.
    pub id: String,
    /// The text so far, or the final text once completed.
    pub text: String,
}

/// One item of the agent's todo list.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct Todo {
    /// What is to be done.
    pub content: String,
    /// `high`, `medium` or `low`, if given.
    #[serde(default)]
    #[uniffi(default)]
    pub priority: Option<String>,
    /// `pending`, `in_progress`, `completed` or `cancelled`.
    pub status: String,
}

/// Payload of `todo_updated`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct TodoUpdated {
    /// The whole list, replacing the previous one.
    pub todos: Vec<Todo>,
}

/// Token counts of one assistant message.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct TokenUsage {
    /// Tokens read from the provider's cache.
    #[serde(default)]
    pub cache_read: u64,
    /// Tokens written to the provider's cache.
    #[serde(default)]
    pub cache_write: u64,
    /// Cost in US dollars, if the agent reports it.
    #[serde(default)]
    #[uniffi(default)]
    pub cost: Option<f64>,
    /// Prompt tokens.
    pub input: u64,
    /// Completion tokens.
    pub output: u64,
    /// Reasoning tokens.
    #[serde(default)]
    pub reasoning: u64,
}

/// A tool call inside an assistant message.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct ToolCall {
    /// The model's id for the call.
    pub call_id: String,
    /// The error, when the call failed.
    #[serde(default)]
    #[uniffi(default)]
    pub error: Option<String>,
    /// The part that holds the call.
    pub id: String,
    /// The arguments.
    #[serde(default, deserialize_with = "json_text")]
    pub input: String,
    /// The output (or the output so far).
    #[serde(default)]
    #[uniffi(default)]
    pub output: Option<String>,
    /// Where the call is.
    pub status: String,
    /// A short human title.
    #[serde(default)]
    #[uniffi(default)]
    pub title: Option<String>,
    /// The tool's name.
    pub tool: String,
}

/// Payload of `tool_completed`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct ToolCompleted {
    /// The model's id for the call.
    pub call_id: String,
    /// The final arguments.
    #[serde(default, deserialize_with = "json_text")]
    pub input: String,
    /// The message that made the call.
    pub message_id: String,
    /// What the tool returned to the model.
    pub output: String,
    /// The part that holds the call.
    pub part_id: String,
    /// A short human title for what the tool did.
    #[serde(default)]
    #[uniffi(default)]
    pub title: Option<String>,
    /// The tool's name.
    pub tool: String,
}

/// Payload of `tool_failed`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct ToolFailed {
    /// The model's id for the call.
    pub call_id: String,
    /// What went wrong.
    pub error: String,
    /// The final arguments.
    #[serde(default, deserialize_with = "json_text")]
    pub input: String,
    /// The message that made the call.
    pub message_id: String,
    /// The part that holds the call.
    pub part_id: String,
    /// The tool's name.
    pub tool: String,
}

/// Payload of `tool_started`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct ToolStarted {
    /// The model's id for the call.
    pub call_id: String,
    /// The tool's arguments (may still be `{}` while the model streams them).
    #[serde(default, deserialize_with = "json_text")]
    pub input: String,
    /// The message that made the call.
    pub message_id: String,
    /// The part that holds the call.
    pub part_id: String,
    /// The tool's name, for example `bash`.
    pub tool: String,
}

/// Payload of `tool_updated`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct ToolUpdated {
    /// The model's id for the call.
    pub call_id: String,
    /// The arguments, when they changed.
    #[serde(default, deserialize_with = "json_text")]
    pub input: String,
    /// The message that made the call.
    pub message_id: String,
    /// Output so far, for tools that stream it.
    #[serde(default)]
    #[uniffi(default)]
    pub output: Option<String>,
    /// The part that holds the call.
    pub part_id: String,
    /// A short human title for what the tool is doing.
    #[serde(default)]
    #[uniffi(default)]
    pub title: Option<String>,
    /// The tool's name.
    pub tool: String,
}

/// A session's conversation as of one seq.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct Transcript {
    /// Messages in the order their turns ran: each prompt, then the agent's answer.
    pub messages: Vec<TranscriptMessage>,
    /// Permission requests not yet resolved.
    #[serde(default)]
    pub pending_permissions: Vec<PermissionRequested>,
    /// Prompts admitted but not started yet, in queue order.
    #[serde(default)]
    pub queued_prompts: Vec<TranscriptMessage>,
    /// The prompt whose turn runs now, if any.
    #[serde(default)]
    #[uniffi(default)]
    pub running_prompt_id: Option<String>,
    /// The session.
    pub session_id: String,
    /// The last seq folded in; live events continue from here.
    pub through_seq: u64,
    /// The agent's latest todo list.
    #[serde(default)]
    pub todos: Vec<Todo>,
}

/// One message of the transcript.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct TranscriptMessage {
    /// True once the message is final.
    pub completed: bool,
    /// The message's id.
    pub id: String,
    /// Its parts, in order.
    pub parts: Vec<TranscriptPart>,
    /// The prompt it belongs to: the prompt itself, or the one the agent answers.
    #[serde(default)]
    #[uniffi(default)]
    pub prompt_id: Option<String>,
    /// Who wrote it.
    pub role: String,
    /// Who sent it (user messages only).
    #[serde(default)]
    #[uniffi(default)]
    pub sender: Option<Sender>,
    /// Token usage (assistant messages, once completed).
    #[serde(default)]
    #[uniffi(default)]
    pub usage: Option<TokenUsage>,
}

/// An attached image.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct ImageTranscriptPart {
    /// A `data:` URI or URL.
    pub url: String,
}

/// One part of a message.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum TranscriptPart {
    /// A text or reasoning part.
    Text(TextPart),
    /// A text or reasoning part.
    Reasoning(TextPart),
    /// A tool call inside an assistant message.
    Tool(ToolCall),
    /// An attached image.
    Image(ImageTranscriptPart),
    /// A type this version does not know.
    Unknown {
        /// Its `type` tag.
        type_name: String,
        /// The whole value as JSON text.
        json: String,
    },
}

impl<'de> Deserialize<'de> for TranscriptPart {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let type_name = value["type"].as_str().unwrap_or_default().to_owned();
        let decoded = match type_name.as_str() {
            "text" => Self::Text(payload(value)?),
            "reasoning" => Self::Reasoning(payload(value)?),
            "tool" => Self::Tool(payload(value)?),
            "image" => Self::Image(payload(value)?),
            _ => {
                let json = value.to_string();
                return Ok(Self::Unknown { type_name, json });
            }
        };
        Ok(decoded)
    }
}

/// Payload of `turn_cancelled`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct TurnCancelled {
    /// Who cancelled it, if a client did.
    #[serde(default)]
    #[uniffi(default)]
    pub cancelled_by: Option<Sender>,
    /// The prompt whose turn was cancelled.
    pub prompt_id: String,
}

/// Payload of `turn_completed`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct TurnCompleted {
    /// The prompt this turn answers.
    pub prompt_id: String,
}

/// Payload of `turn_started`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct TurnStarted {
    /// The prompt this turn answers.
    pub prompt_id: String,
}

/// Model usage summed over a session or an organisation (`GET /v1/sessions/{id}/usage`,
/// `GET /v1/usage`), as the gateway's model proxy metered it.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct UsageReport {
    /// The same per model, most used first.
    pub by_model: Vec<ModelUsage>,
    /// Model requests.
    pub requests: u64,
    /// Tokens and cost of every request; `cost` is absent when no request had a price.
    pub total: TokenUsage,
}

/// Payload of `user_message`: the prompt as admitted, echoed to everyone.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct UserMessage {
    /// The prompt text.
    pub content: String,
    /// Attached images, as `data:` URIs or URLs.
    #[serde(default)]
    pub images: Vec<String>,
    /// The transcript id of this message.
    pub message_id: String,
    /// The client-chosen id that made the prompt idempotent.
    pub prompt_id: String,
    /// Places ahead of this prompt when it was admitted; 0 means it ran at once.
    pub queue_position: u32,
    /// Who sent it and from what kind of client.
    pub sender: Sender,
}

/// Payload of `welcome`.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct Welcome {
    /// How many connections the session has, this one included.
    #[serde(default)]
    pub connection_count: u64,
    /// This connection's id, as presence frames show it.
    pub connection_id: String,
    /// Everyone connected when this connection joined, itself included; empty when the session
    /// has more connections than the gateway lists (its presence list limit, 100 by default).
    #[serde(default)]
    pub connections: Vec<PresenceEntry>,
    /// The newest seq at the time of the welcome.
    pub head_seq: u64,
    /// Milliseconds between server heartbeats.
    pub heartbeat_interval_ms: u64,
    /// Who the gateway authenticated.
    pub principal: Principal,
    /// The protocol version the gateway speaks.
    pub protocol_version: u32,
    /// The session this connection follows.
    pub session_id: String,
    /// The session's status.
    pub status: String,
}
