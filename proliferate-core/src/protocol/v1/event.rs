//! Durable events: what happened in a session, in `seq` order.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Extra, Sender, SessionStatus, open_union, same_shape};

/// One durable event of a session: persisted before broadcast, numbered by a dense `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventEnvelope {
    /// The session this event belongs to.
    pub session_id: String,
    /// Position in the session's log: 1 for the first event, then every integer in turn.
    pub seq: u64,
    /// When the gateway recorded the event, milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// What happened.
    pub event: Event,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

open_union! {
    /// What happened in a session. Unknown types are kept as [`Event::Unknown`].
    pub enum Event {
        /// The session's lifecycle status changed.
        StatusChanged(StatusChanged) = "status_changed",
        /// A prompt was admitted; this echoes it to every client.
        UserMessage(UserMessage) = "user_message",
        /// A queued prompt was withdrawn before it ran.
        QueuedPromptCancelled(QueuedPromptCancelled) = "queued_prompt_cancelled",
        /// The agent began working on a prompt.
        TurnStarted(TurnStarted) = "turn_started",
        /// The agent finished a prompt.
        TurnCompleted(TurnCompleted) = "turn_completed",
        /// The running turn was cancelled.
        TurnCancelled(TurnCancelled) = "turn_cancelled",
        /// The agent started an assistant message.
        AssistantMessageStarted(AssistantMessageStarted) = "assistant_message_started",
        /// An assistant message finished, with token usage.
        AssistantMessageCompleted(AssistantMessageCompleted) = "assistant_message_completed",
        /// A piece of streamed assistant text.
        TextDelta(TextDelta) = "text_delta",
        /// The final text of a text part.
        TextCompleted(TextCompleted) = "text_completed",
        /// A piece of streamed reasoning.
        ReasoningDelta(ReasoningDelta) = "reasoning_delta",
        /// The final text of a reasoning part.
        ReasoningCompleted(ReasoningCompleted) = "reasoning_completed",
        /// The agent called a tool.
        ToolStarted(ToolStarted) = "tool_started",
        /// A running tool reported progress.
        ToolUpdated(ToolUpdated) = "tool_updated",
        /// A tool finished.
        ToolCompleted(ToolCompleted) = "tool_completed",
        /// A tool failed.
        ToolFailed(ToolFailed) = "tool_failed",
        /// The agent or its model failed.
        AgentError(AgentError) = "agent_error",
        /// The agent asks for permission to act.
        PermissionRequested(PermissionRequested) = "permission_requested",
        /// A permission request was answered, by a client or by the timeout default.
        PermissionResolved(PermissionResolved) = "permission_resolved",
        /// The agent's todo list changed.
        TodoUpdated(TodoUpdated) = "todo_updated",
        /// Files in the workspace changed.
        FilesChanged(FilesChanged) = "files_changed",
        /// A snapshot of the session was saved.
        SnapshotSaved(SnapshotSaved) = "snapshot_saved",
        /// The sandbox serves a preview at this URL.
        PreviewUrl(PreviewUrl) = "preview_url",
    }
}

impl Event {
    /// The assistant message this event is part of, for the agent's output events.
    pub fn message_id(&self) -> Option<&str> {
        match self {
            Event::AssistantMessageStarted(event) => Some(&event.message_id),
            Event::AssistantMessageCompleted(event) => Some(&event.message_id),
            Event::TextDelta(event) => Some(&event.message_id),
            Event::ReasoningDelta(event) => Some(&event.message_id),
            Event::TextCompleted(event) => Some(&event.message_id),
            Event::ReasoningCompleted(event) => Some(&event.message_id),
            Event::ToolStarted(event) => Some(&event.message_id),
            Event::ToolUpdated(event) => Some(&event.message_id),
            Event::ToolCompleted(event) => Some(&event.message_id),
            Event::ToolFailed(event) => Some(&event.message_id),
            _ => None,
        }
    }
}

/// Payload of `status_changed`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct StatusChanged {
    /// The new status.
    pub status: SessionStatus,
    /// Why, for example `idle`, `requested`, `agent_exited`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Payload of `user_message`: the prompt as admitted, echoed to everyone.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct UserMessage {
    /// The transcript id of this message.
    pub message_id: String,
    /// The client-chosen id that made the prompt idempotent.
    pub prompt_id: String,
    /// Who sent it and from what kind of client.
    pub sender: Sender,
    /// The prompt text.
    pub content: String,
    /// Attached images, as `data:` URIs or URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// Places ahead of this prompt when it was admitted; 0 means it ran at once.
    pub queue_position: u32,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Payload of `queued_prompt_cancelled`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct QueuedPromptCancelled {
    /// The prompt that was withdrawn.
    pub prompt_id: String,
    /// Who withdrew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_by: Option<Sender>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

same_shape! {
    #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
    {
        /// Payload of `turn_started`.
        TurnStarted,
        /// Payload of `turn_completed`.
        TurnCompleted,
    }
    {
        /// The prompt this turn answers.
        pub prompt_id: String,
        /// Fields this version does not know.
        #[serde(flatten)]
        pub extra: Extra,
    }
}

/// Payload of `turn_cancelled`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct TurnCancelled {
    /// The prompt whose turn was cancelled.
    pub prompt_id: String,
    /// Who cancelled it, if a client did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_by: Option<Sender>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Payload of `assistant_message_started`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct AssistantMessageStarted {
    /// The agent's id for this message.
    pub message_id: String,
    /// The model answering, as `provider/model`, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Payload of `assistant_message_completed`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct AssistantMessageCompleted {
    /// The message that finished.
    pub message_id: String,
    /// Why the model stopped: `stop`, `tool-calls`, `length`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish: Option<String>,
    /// Tokens spent on this message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Token counts of one assistant message.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
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
    /// Cost in US dollars, if the agent reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
}

impl TokenUsage {
    /// Adds `other`'s tokens, and its cost when it has one.
    pub fn add(&mut self, other: &TokenUsage) {
        self.input += other.input;
        self.output += other.output;
        self.reasoning += other.reasoning;
        self.cache_read += other.cache_read;
        self.cache_write += other.cache_write;
        if let Some(cost) = other.cost {
            self.cost = Some(self.cost.unwrap_or_default() + cost);
        }
    }

    /// Every token counted, once.
    pub fn tokens(&self) -> u64 {
        self.input + self.output + self.reasoning + self.cache_read + self.cache_write
    }
}

same_shape! {
    #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
    {
        /// Payload of `text_delta`.
        TextDelta,
        /// Payload of `reasoning_delta`.
        ReasoningDelta,
    }
    {
        /// The message the part belongs to.
        pub message_id: String,
        /// The part the text is appended to.
        pub part_id: String,
        /// Text to append.
        pub delta: String,
        /// Fields this version does not know.
        #[serde(flatten)]
        pub extra: Extra,
    }
}

same_shape! {
    #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
    {
        /// Payload of `text_completed`.
        TextCompleted,
        /// Payload of `reasoning_completed`.
        ReasoningCompleted,
    }
    {
        /// The message the part belongs to.
        pub message_id: String,
        /// The part that finished.
        pub part_id: String,
        /// The whole text of the part; it replaces what the deltas built.
        pub text: String,
        /// Fields this version does not know.
        #[serde(flatten)]
        pub extra: Extra,
    }
}

/// Payload of `tool_started`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ToolStarted {
    /// The message that made the call.
    pub message_id: String,
    /// The part that holds the call.
    pub part_id: String,
    /// The model's id for the call.
    pub call_id: String,
    /// The tool's name, for example `bash`.
    pub tool: String,
    /// The tool's arguments (may still be `{}` while the model streams them).
    #[serde(default)]
    pub input: Value,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Payload of `tool_updated`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ToolUpdated {
    /// The message that made the call.
    pub message_id: String,
    /// The part that holds the call.
    pub part_id: String,
    /// The model's id for the call.
    pub call_id: String,
    /// The tool's name.
    pub tool: String,
    /// The arguments, when they changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// A short human title for what the tool is doing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Output so far, for tools that stream it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Payload of `tool_completed`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ToolCompleted {
    /// The message that made the call.
    pub message_id: String,
    /// The part that holds the call.
    pub part_id: String,
    /// The model's id for the call.
    pub call_id: String,
    /// The tool's name.
    pub tool: String,
    /// The final arguments.
    #[serde(default)]
    pub input: Value,
    /// What the tool returned to the model.
    pub output: String,
    /// A short human title for what the tool did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Payload of `tool_failed`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ToolFailed {
    /// The message that made the call.
    pub message_id: String,
    /// The part that holds the call.
    pub part_id: String,
    /// The model's id for the call.
    pub call_id: String,
    /// The tool's name.
    pub tool: String,
    /// The final arguments.
    #[serde(default)]
    pub input: Value,
    /// What went wrong.
    pub error: String,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Payload of `agent_error`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct AgentError {
    /// What failed: `model` (the model's API), `model_retrying` (the agent retries the model),
    /// `agent_exited`, `limit_exceeded` (the sandbox ran out of memory or processes),
    /// `agent_unreachable`, `prompt_rejected`, or `agent` for anything else.
    pub kind: String,
    /// A message fit to show a person.
    pub message: String,
    /// The prompt whose turn failed, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An answer to a permission request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PermissionDecision {
    /// Allow this one action.
    Once,
    /// Allow this action and its like for the rest of the session.
    Always,
    /// Refuse.
    #[default]
    Reject,
}

/// Payload of `permission_requested`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct PermissionRequested {
    /// The id to answer with.
    pub permission_id: String,
    /// What is asked, for example `bash`, `edit`, `external_directory`.
    pub permission: String,
    /// The patterns the permission covers, for example the command line.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Details the agent attached, for example `{"command": "..."}`.
    #[serde(default)]
    pub metadata: Value,
    /// The tool call waiting on this answer, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// When the default answer applies, milliseconds since the Unix epoch.
    pub expires_at: i64,
    /// The answer applied when nobody answers in time.
    pub default_decision: PermissionDecision,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Payload of `permission_resolved`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct PermissionResolved {
    /// The request that was answered.
    pub permission_id: String,
    /// The answer that won.
    pub decision: PermissionDecision,
    /// Who answered; absent when the timeout default applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<Sender>,
    /// True when nobody answered in time and the default applied.
    #[serde(default)]
    pub timed_out: bool,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Payload of `todo_updated`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct TodoUpdated {
    /// The whole list, replacing the previous one.
    pub todos: Vec<Todo>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One item of the agent's todo list.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Todo {
    /// What is to be done.
    pub content: String,
    /// `pending`, `in_progress`, `completed` or `cancelled`.
    pub status: String,
    /// `high`, `medium` or `low`, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
}

/// Payload of `files_changed`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct FilesChanged {
    /// The files that differ from the start of the session.
    pub files: Vec<FileChange>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One changed file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct FileChange {
    /// Path relative to the workspace.
    pub path: String,
    /// Lines added.
    #[serde(default)]
    pub additions: u64,
    /// Lines removed.
    #[serde(default)]
    pub deletions: u64,
}

/// Payload of `snapshot_saved`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SnapshotSaved {
    /// The snapshot's id; a new session can start from it.
    pub snapshot_id: String,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Payload of `preview_url`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct PreviewUrl {
    /// Where the preview is served.
    pub url: String,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}
