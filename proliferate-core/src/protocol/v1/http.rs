//! Bodies of the HTTP API under `/v1`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{EventEnvelope, Extra, PermissionDecision, SandboxLimits, SessionInfo, TokenUsage};

/// Body of `POST /v1/sessions`. Send an `Idempotency-Key` header to make retries safe.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CreateSessionRequest {
    /// A human title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Start from this snapshot's workspace and agent state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// A prompt to run as soon as the agent is up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_prompt: Option<String>,
    /// The model to use, as `provider/model`; the server's default otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[^/]+/[\s\S]+$"))]
    pub model: Option<String>,
    /// Resource limits for the sandbox, each no higher than the server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<SandboxLimits>,
    /// Hosts the sandbox may reach through the egress proxy, beyond the server's allow-list
    /// (`host`, `host:port` or `*.domain`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress_allow: Vec<String>,
    /// Free-form metadata kept with the session.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub metadata: serde_json::Value,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Body of `GET /v1/sessions`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SessionList {
    /// The caller's organisation's sessions, newest first.
    pub sessions: Vec<SessionInfo>,
    /// Pass as `?cursor=` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Body of `POST /v1/tokens/revoke`: the id of the tokens to stop.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct RevokeTokenRequest {
    /// The token's `jti` claim.
    #[schemars(length(min = 1, max = 128))]
    pub jti: String,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Body of `POST /v1/sessions/{id}/messages`: the same admission path as a WebSocket `prompt`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SendMessageRequest {
    /// The client-chosen id that makes the prompt idempotent; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub prompt_id: Option<String>,
    /// The prompt text; not only whitespace.
    #[schemars(regex(pattern = r"\S"))]
    pub content: String,
    /// Attached images, as `data:` URIs or URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// The kind of client sending it (`api` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Body of `POST /v1/sessions/{id}/cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CancelOutcome {
    /// True when a turn was running and is now cancelled.
    pub cancelled: bool,
}

/// Body of `POST /v1/sessions/{id}/permissions/{permission_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct PermissionReplyRequest {
    /// The answer.
    pub decision: PermissionDecision,
}

/// Body of `GET /v1/sessions/{id}/events?after_seq=N&limit=M`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct EventPage {
    /// Events with `seq > after_seq`, in order, at most `limit` of them.
    pub events: Vec<EventEnvelope>,
    /// The newest seq of the session when the page was read.
    pub head_seq: u64,
    /// True when more events follow this page.
    pub has_more: bool,
}

/// Body of `POST /v1/sessions/{id}/snapshot`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SnapshotInfo {
    /// The snapshot's id; pass it as `snapshot_id` to create a session from it.
    pub snapshot_id: String,
    /// The session it was taken from.
    pub session_id: String,
    /// When it was taken, milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Its size on disk.
    pub size_bytes: u64,
}

/// Body of `GET /healthz` and `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// `ok`, or what is not ready.
    pub status: String,
    /// The server's version.
    pub version: String,
}

/// Model usage summed over a session or an organisation (`GET /v1/sessions/{id}/usage`,
/// `GET /v1/usage`), as the gateway's model proxy metered it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct UsageReport {
    /// Tokens and cost of every request; `cost` is absent when no request had a price.
    pub total: TokenUsage,
    /// Model requests.
    pub requests: u64,
    /// The same per model, most used first.
    pub by_model: Vec<ModelUsage>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl UsageReport {
    /// Adds `requests` requests that used `usage` to the total.
    pub fn add(&mut self, usage: &TokenUsage, requests: u64) {
        self.total.add(usage);
        self.requests += requests;
    }
}

/// One model's share of a [`UsageReport`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ModelUsage {
    /// The model, as `provider/model`.
    pub model: String,
    /// Its tokens and cost.
    pub usage: TokenUsage,
    /// Its requests.
    pub requests: u64,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}
