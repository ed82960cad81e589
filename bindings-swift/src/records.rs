//! The wire values as Swift sees them: records and enums decoded from the protocol types.
//! Open-ended values (tool input, metadata) are JSON text; unknown event types keep their JSON.

use serde::{Deserialize, Deserializer};

/// Decodes any JSON value as its text.
fn json_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(serde_json::Value::deserialize(deserializer)?.to_string())
}

/// What a session looks like to clients.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct SessionInfo {
    /// The session's id.
    pub id: String,
    /// The organisation that owns it.
    pub organization_id: String,
    /// The subject of the token that created it.
    pub created_by: String,
    /// A human title.
    pub title: Option<String>,
    /// Where it is in its lifecycle: `pending`, `starting`, `running`, `paused`, `stopped`...
    pub status: String,
    /// Why it last changed status.
    pub status_reason: Option<String>,
    /// The agent that runs in the sandbox, for example `opencode`.
    pub agent: String,
    /// The sandbox provider, for example `local`.
    pub provider: String,
    /// How the sandbox isolates the agent, for example `bubblewrap` or `process`.
    pub isolation: Option<String>,
    /// The resource limits of its sandbox.
    #[serde(default)]
    pub limits: Option<SandboxLimits>,
    /// Hosts its sandbox may reach beyond the server's egress allow-list.
    #[serde(default)]
    pub egress_allow: Vec<String>,
    /// The seq of the newest durable event.
    pub head_seq: u64,
    /// The snapshot it started from.
    pub source_snapshot_id: Option<String>,
    /// A preview URL the sandbox serves.
    pub preview_url: Option<String>,
    /// The model its agent runs on, as `provider/model`.
    #[serde(default)]
    pub model: Option<String>,
    /// Free-form metadata, as JSON text.
    #[serde(default, deserialize_with = "json_text")]
    pub metadata: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Last change, milliseconds since the Unix epoch.
    pub updated_at: i64,
}

/// Resource limits of a sandbox: in session info each field is the limit in force; in a request
/// each lowers the server's.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct SandboxLimits {
    /// Memory of every process together, in bytes.
    pub memory_bytes: Option<u64>,
    /// CPU time, in thousandths of a core.
    pub cpu_millicores: Option<u32>,
    /// Processes and threads at once.
    pub processes: Option<u32>,
    /// Open files per process.
    pub open_files: Option<u32>,
    /// Disk for its home and workspace, in bytes (or, without a disk of its own, the largest
    /// file it may write).
    pub disk_bytes: Option<u64>,
    /// How the limits are enforced, for example `cgroup v2 and rlimits`.
    pub enforced_by: Option<String>,
}

impl From<SandboxLimits> for proliferate_client::protocol::v1::SandboxLimits {
    fn from(limits: SandboxLimits) -> Self {
        Self {
            memory_bytes: limits.memory_bytes,
            cpu_millicores: limits.cpu_millicores,
            processes: limits.processes,
            open_files: limits.open_files,
            disk_bytes: limits.disk_bytes,
            ..Self::default()
        }
    }
}

/// A page of sessions.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct SessionList {
    /// Sessions, newest first.
    pub sessions: Vec<SessionInfo>,
    /// The cursor of the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// A saved snapshot.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct SnapshotInfo {
    /// The snapshot's id; create a session from it with `snapshot_id`.
    pub snapshot_id: String,
    /// The session it was taken from.
    pub session_id: String,
    /// When, milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Its size.
    pub size_bytes: u64,
}

/// How the gateway admitted a prompt.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct PromptAdmission {
    /// The prompt's id.
    pub prompt_id: String,
    /// Places ahead of it; 0 means it runs now.
    pub queue_position: u32,
    /// True when this id was admitted before (the retry changed nothing).
    pub duplicate: bool,
}

/// Who sent a prompt or answered a permission, and through what kind of client.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, uniffi::Record)]
pub struct Sender {
    /// The subject of the sender's token.
    pub subject: String,
    /// The kind of client: `web`, `cli`, `slack`, `api`...
    pub source: String,
}

/// Token counts of one assistant message.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct TokenUsage {
    /// Prompt tokens.
    pub input: u64,
    /// Completion tokens.
    pub output: u64,
    /// Reasoning tokens.
    #[serde(default)]
    pub reasoning: u64,
    /// Tokens read from the provider's cache.
    #[serde(default)]
    pub cache_read: u64,
    /// Tokens written to the provider's cache.
    #[serde(default)]
    pub cache_write: u64,
    /// Cost in US dollars, if reported.
    pub cost: Option<f64>,
}

/// One item of the agent's todo list.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct Todo {
    /// What to do.
    pub content: String,
    /// `pending`, `in_progress`, `completed`...
    pub status: String,
    /// `high`, `medium`, `low`, when given.
    pub priority: Option<String>,
}

/// A changed file.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct FileChange {
    /// Its path in the workspace.
    pub path: String,
    /// Lines added.
    #[serde(default)]
    pub additions: u64,
    /// Lines removed.
    #[serde(default)]
    pub deletions: u64,
}

/// A permission the agent asks for.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct PermissionRequest {
    /// Answer with this id.
    pub permission_id: String,
    /// What kind of action, for example `bash` or `edit`.
    pub permission: String,
    /// The patterns it covers, for example the command.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Details the agent attached, as JSON text.
    #[serde(default, deserialize_with = "json_text")]
    pub metadata: String,
    /// The tool call that asks.
    pub call_id: Option<String>,
    /// What applies if nobody answers in time: `once`, `always` or `reject`.
    pub default_decision: String,
    /// When the default applies, milliseconds since the Unix epoch.
    pub expires_at: i64,
}

/// One durable event of a session.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct EventEnvelope {
    /// The session it belongs to.
    pub session_id: String,
    /// Its position in the session's log: 1, 2, 3...
    pub seq: u64,
    /// When the gateway recorded it, milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The event's `type` tag as on the wire, for example `text_delta`.
    pub event_type: String,
    /// What happened.
    pub event: Event,
    /// The whole envelope as JSON text, exactly as this version reads it.
    pub json: String,
}

/// What happened in a session.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Enum)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The session's lifecycle status changed.
    StatusChanged {
        /// The new status.
        status: String,
        /// Why.
        reason: Option<String>,
    },
    /// A prompt was admitted; this echoes it to every client.
    UserMessage {
        /// The transcript id of this message.
        message_id: String,
        /// The prompt's id.
        prompt_id: String,
        /// Who sent it.
        sender: Sender,
        /// The prompt text.
        content: String,
        /// Attached images.
        #[serde(default)]
        images: Vec<String>,
        /// Places ahead of it when it was admitted.
        queue_position: u32,
    },
    /// A queued prompt was withdrawn before it ran.
    QueuedPromptCancelled {
        /// The prompt.
        prompt_id: String,
        /// Who withdrew it.
        cancelled_by: Option<Sender>,
    },
    /// The agent began working on a prompt.
    TurnStarted {
        /// The prompt.
        prompt_id: String,
    },
    /// The agent finished a prompt.
    TurnCompleted {
        /// The prompt.
        prompt_id: String,
    },
    /// The running turn was cancelled.
    TurnCancelled {
        /// The prompt.
        prompt_id: String,
        /// Who cancelled it.
        cancelled_by: Option<Sender>,
    },
    /// The agent started an assistant message.
    AssistantMessageStarted {
        /// The message.
        message_id: String,
        /// The model that writes it.
        model: Option<String>,
    },
    /// An assistant message finished.
    AssistantMessageCompleted {
        /// The message.
        message_id: String,
        /// Why it finished, for example `stop` or `tool-calls`.
        finish: Option<String>,
        /// Its token usage.
        usage: Option<TokenUsage>,
    },
    /// A piece of streamed assistant text.
    TextDelta {
        /// The message.
        message_id: String,
        /// The text part.
        part_id: String,
        /// The new text.
        delta: String,
    },
    /// The final text of a text part.
    TextCompleted {
        /// The message.
        message_id: String,
        /// The text part.
        part_id: String,
        /// The whole text.
        text: String,
    },
    /// A piece of streamed reasoning.
    ReasoningDelta {
        /// The message.
        message_id: String,
        /// The reasoning part.
        part_id: String,
        /// The new text.
        delta: String,
    },
    /// The final text of a reasoning part.
    ReasoningCompleted {
        /// The message.
        message_id: String,
        /// The reasoning part.
        part_id: String,
        /// The whole text.
        text: String,
    },
    /// The agent called a tool.
    ToolStarted {
        /// The message that made the call.
        message_id: String,
        /// The part that holds the call.
        part_id: String,
        /// The model's id for the call.
        call_id: String,
        /// The tool's name, for example `bash`.
        tool: String,
        /// The arguments, as JSON text.
        #[serde(default, deserialize_with = "json_text")]
        input: String,
    },
    /// A running tool reported progress.
    ToolUpdated {
        /// The message that made the call.
        message_id: String,
        /// The part that holds the call.
        part_id: String,
        /// The model's id for the call.
        call_id: String,
        /// The tool's name.
        tool: String,
        /// The arguments, as JSON text.
        #[serde(default, deserialize_with = "json_text")]
        input: String,
        /// A short human title.
        title: Option<String>,
        /// The output so far.
        output: Option<String>,
    },
    /// A tool finished.
    ToolCompleted {
        /// The message that made the call.
        message_id: String,
        /// The part that holds the call.
        part_id: String,
        /// The model's id for the call.
        call_id: String,
        /// The tool's name.
        tool: String,
        /// The arguments, as JSON text.
        #[serde(default, deserialize_with = "json_text")]
        input: String,
        /// A short human title.
        title: Option<String>,
        /// The output.
        output: String,
    },
    /// A tool failed.
    ToolFailed {
        /// The message that made the call.
        message_id: String,
        /// The part that holds the call.
        part_id: String,
        /// The model's id for the call.
        call_id: String,
        /// The tool's name.
        tool: String,
        /// The arguments, as JSON text.
        #[serde(default, deserialize_with = "json_text")]
        input: String,
        /// The error.
        error: String,
    },
    /// The agent or its model failed.
    AgentError {
        /// What failed, for example `model_error` or `agent_unreachable`.
        kind: String,
        /// What the agent said.
        message: String,
        /// The prompt whose turn it broke.
        prompt_id: Option<String>,
    },
    /// The agent asks for permission to act.
    PermissionRequested {
        /// Answer with this id.
        permission_id: String,
        /// What kind of action, for example `bash`.
        permission: String,
        /// The patterns it covers.
        #[serde(default)]
        patterns: Vec<String>,
        /// Details the agent attached, as JSON text.
        #[serde(default, deserialize_with = "json_text")]
        metadata: String,
        /// The tool call that asks.
        call_id: Option<String>,
        /// What applies if nobody answers in time.
        default_decision: String,
        /// When the default applies, milliseconds since the Unix epoch.
        expires_at: i64,
    },
    /// A permission request was answered.
    PermissionResolved {
        /// The request.
        permission_id: String,
        /// `once`, `always` or `reject`.
        decision: String,
        /// Who answered; absent when the timeout default applied.
        resolved_by: Option<Sender>,
        /// True when the timeout default applied.
        #[serde(default)]
        timed_out: bool,
    },
    /// The agent's todo list changed.
    TodoUpdated {
        /// The whole list.
        todos: Vec<Todo>,
    },
    /// Files in the workspace changed.
    FilesChanged {
        /// The changes.
        files: Vec<FileChange>,
    },
    /// A snapshot of the session was saved.
    SnapshotSaved {
        /// The snapshot.
        snapshot_id: String,
    },
    /// The sandbox serves a preview at this URL.
    PreviewUrl {
        /// The URL.
        url: String,
    },
    /// An event type this version does not know, kept as JSON text.
    #[serde(skip)]
    Unknown {
        /// Its `type` tag.
        type_name: String,
        /// The whole event, as JSON text.
        json: String,
    },
}

/// What a session or an organisation spent on models.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct UsageReport {
    /// Tokens and cost of every request; `cost` is absent when no request had a price.
    pub total: TokenUsage,
    /// Model requests.
    pub requests: u64,
    /// The same per model, most used first.
    pub by_model: Vec<ModelUsage>,
}

/// One model's share of a usage report.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct ModelUsage {
    /// The model, as `provider/model`.
    pub model: String,
    /// Its tokens and cost.
    pub usage: TokenUsage,
    /// Its requests.
    pub requests: u64,
}

/// A session's events folded into messages: what a UI renders.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct Transcript {
    /// The session.
    pub session_id: String,
    /// The last seq folded in.
    pub through_seq: u64,
    /// The messages, in order.
    pub messages: Vec<TranscriptMessage>,
    /// The prompt whose turn runs now.
    pub running_prompt_id: Option<String>,
    /// Prompts waiting their turn.
    #[serde(default)]
    pub queued_prompts: Vec<TranscriptMessage>,
    /// Permission requests nobody answered yet.
    #[serde(default)]
    pub pending_permissions: Vec<PermissionRequest>,
    /// The agent's todo list.
    #[serde(default)]
    pub todos: Vec<Todo>,
}

/// One message of the transcript.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct TranscriptMessage {
    /// The message's id.
    pub id: String,
    /// `user` or `assistant`.
    pub role: String,
    /// The prompt it belongs to.
    pub prompt_id: Option<String>,
    /// Who sent it (user messages).
    pub sender: Option<Sender>,
    /// Its parts, in order.
    pub parts: Vec<TranscriptPart>,
    /// True once final.
    pub completed: bool,
    /// Token usage (assistant messages, once completed).
    pub usage: Option<TokenUsage>,
}

/// One part of a message.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Enum)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TranscriptPart {
    /// Text, streamed or final.
    Text {
        /// The part's id.
        id: String,
        /// The text so far.
        text: String,
        /// True once final.
        completed: bool,
    },
    /// The model's reasoning.
    Reasoning {
        /// The part's id.
        id: String,
        /// The text so far.
        text: String,
        /// True once final.
        completed: bool,
    },
    /// A tool call and its result.
    Tool {
        /// The part's id.
        id: String,
        /// The model's id for the call.
        call_id: String,
        /// The tool's name.
        tool: String,
        /// `running`, `completed`, `failed` or `cancelled`.
        status: String,
        /// The arguments, as JSON text.
        #[serde(default, deserialize_with = "json_text")]
        input: String,
        /// A short human title.
        title: Option<String>,
        /// The output (so far).
        output: Option<String>,
        /// The error, when it failed.
        error: Option<String>,
    },
    /// An attached image.
    Image {
        /// A `data:` URI or URL.
        url: String,
    },
    /// A part this version does not know.
    #[serde(other)]
    Unknown,
}

/// Who a token stands for.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct Principal {
    /// The token's subject.
    pub subject: String,
    /// The organisation.
    pub organization_id: String,
    /// What it may do: `read`, `write`, `admin`.
    pub scopes: Vec<String>,
    /// `user`, `service` or `sandbox`.
    pub kind: String,
    /// The one session a sandbox token is bound to.
    pub session_id: Option<String>,
}

/// A (re)connection the gateway accepted.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct Welcome {
    /// The protocol version the gateway speaks.
    pub protocol_version: u32,
    /// The session.
    pub session_id: String,
    /// This connection's id.
    pub connection_id: String,
    /// The newest seq at the time of the welcome.
    pub head_seq: u64,
    /// The session's status.
    pub status: String,
    /// Who the gateway thinks you are.
    pub principal: Principal,
    /// How often the gateway sends heartbeats.
    pub heartbeat_interval_ms: u64,
    /// Everyone connected when this connection joined, itself included; empty above the
    /// gateway's presence list limit.
    #[serde(default)]
    pub connections: Vec<PresenceEntry>,
    /// How many connections the session has, this one included.
    #[serde(default)]
    pub connection_count: u64,
}

/// One connected client.
#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]
pub struct PresenceEntry {
    /// The connection's id.
    pub connection_id: String,
    /// The subject of its token.
    pub subject: String,
    /// The kind of client it said it is.
    pub source: String,
}

/// What a connection yields.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum Update {
    /// A (re)connection was accepted.
    Connected {
        /// Where the session is.
        welcome: Welcome,
    },
    /// A durable event: each seq once, in order, across reconnects.
    Event {
        /// The event.
        envelope: EventEnvelope,
    },
    /// The backlog is replayed; what follows is live.
    ReplayDone {
        /// The last seq of the backlog.
        through_seq: u64,
    },
    /// The cursor was too old: replace all state with this transcript.
    Reset {
        /// Why, for example `cursor_expired`.
        reason: String,
        /// The transcript to start again from.
        transcript: Transcript,
    },
    /// Everyone connected: the answer to `requestPresence`.
    Presence {
        /// Every open connection of the session.
        connections: Vec<PresenceEntry>,
    },
    /// Who joined and who left since the last change; apply it as set operations to the
    /// welcome's `connections` (a joined connection may already be there).
    PresenceChanged {
        /// Connections that opened.
        joined: Vec<PresenceEntry>,
        /// The ids of connections that closed.
        left: Vec<String>,
        /// How many connections the session has now; above the presence list limit the lists
        /// are empty and only this changes.
        count: u64,
    },
    /// The connection broke; it reconnects after a backoff and resumes without loss.
    Reconnecting {
        /// Failed attempts in a row so far.
        attempt: u32,
        /// Why the last socket ended.
        reason: String,
    },
    /// A frame this version does not know, as JSON text.
    Unknown {
        /// The frame.
        json: String,
    },
}
