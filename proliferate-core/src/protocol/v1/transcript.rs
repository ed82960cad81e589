//! The transcript: a session's events folded into messages, parts and tool calls.
//!
//! The fold itself lives in `proliferate_core::transcript`; these are its wire shapes, sent in
//! `reset` frames and by `GET /v1/sessions/{id}/transcript`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{PermissionRequested, Sender, Todo, TokenUsage};

/// A session's conversation as of one seq.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Transcript {
    /// The session.
    pub session_id: String,
    /// The last seq folded in; live events continue from here.
    pub through_seq: u64,
    /// Messages in the order their turns ran: each prompt, then the agent's answer.
    pub messages: Vec<TranscriptMessage>,
    /// The prompt whose turn runs now, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_prompt_id: Option<String>,
    /// Prompts admitted but not started yet, in queue order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queued_prompts: Vec<TranscriptMessage>,
    /// Permission requests not yet resolved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_permissions: Vec<PermissionRequested>,
    /// The agent's latest todo list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub todos: Vec<Todo>,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A prompt from a client.
    #[default]
    User,
    /// The agent.
    Assistant,
}

/// One message of the transcript.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct TranscriptMessage {
    /// The message's id.
    pub id: String,
    /// Who wrote it.
    pub role: Role,
    /// The prompt it belongs to: the prompt itself, or the one the agent answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<String>,
    /// Who sent it (user messages only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Sender>,
    /// Its parts, in order.
    pub parts: Vec<TranscriptPart>,
    /// True once the message is final.
    pub completed: bool,
    /// Token usage (assistant messages, once completed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
}

/// One part of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TranscriptPart {
    /// Text, streamed or final.
    Text(TextPart),
    /// The model's reasoning.
    Reasoning(TextPart),
    /// A tool call and its result.
    Tool(ToolCall),
    /// An attached image.
    Image {
        /// A `data:` URI or URL.
        url: String,
    },
}

/// A text or reasoning part.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct TextPart {
    /// The part's id.
    pub id: String,
    /// The text so far, or the final text once completed.
    pub text: String,
    /// True once the final text arrived.
    pub completed: bool,
}

/// Where a tool call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ToolStatus {
    /// Called and running.
    #[default]
    Running,
    /// Finished with output.
    Completed,
    /// Finished with an error.
    Failed,
    /// Never finished: its turn was cancelled.
    Cancelled,
}

/// A tool call inside an assistant message.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ToolCall {
    /// The part that holds the call.
    pub id: String,
    /// The model's id for the call.
    pub call_id: String,
    /// The tool's name.
    pub tool: String,
    /// Where the call is.
    pub status: ToolStatus,
    /// The arguments.
    pub input: Value,
    /// A short human title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The output (or the output so far).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The error, when the call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
