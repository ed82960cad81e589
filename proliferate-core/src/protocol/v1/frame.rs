//! WebSocket frames: what a client sends, and what the gateway sends back.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    ErrorCode, EventEnvelope, Extra, PermissionDecision, Principal, SessionStatus, Transcript,
    open_union, same_shape,
};

open_union! {
    /// A frame from the gateway. Only `event` frames carry a `seq`; the rest are control frames.
    pub enum ServerFrame {
        /// A durable event of the session.
        Event(EventEnvelope) = "event",
        /// The first frame of every connection.
        Welcome(Welcome) = "welcome",
        /// The backlog the client asked for has been sent; what follows is live.
        ReplayDone(ReplayDone) = "replay_done",
        /// The requested cursor is older than what is retained; a transcript replaces replay.
        Reset(Reset) = "reset",
        /// The gateway is alive; sent on an interval.
        Heartbeat(Heartbeat) = "heartbeat",
        /// Answer to a client `ping`.
        Pong(Pong) = "pong",
        /// A prompt was admitted (or had been already).
        PromptAdmitted(PromptAdmission) = "prompt_admitted",
        /// A client frame was refused; the connection stays open.
        Error(ErrorFrame) = "error",
        /// Everyone connected to the session; the answer to a client `presence`.
        Presence(Presence) = "presence",
        /// Who joined and who left the session since the last `presence_changed`.
        PresenceChanged(PresenceChange) = "presence_changed",
    }
}

open_union! {
    /// A frame from a client. The gateway answers an unknown `type` with an `error` frame.
    pub enum ClientFrame {
        /// Authenticate, for clients that cannot set an `Authorization` header.
        Auth(Auth) = "auth",
        /// Ask for a `pong`.
        Ping(Ping) = "ping",
        /// Send a prompt; idempotent by `prompt_id`.
        Prompt(Prompt) = "prompt",
        /// Cancel the running turn.
        Cancel(Cancel) = "cancel",
        /// Withdraw a prompt that is still queued.
        CancelQueued(CancelQueued) = "cancel_queued",
        /// Answer a permission request.
        PermissionReply(PermissionReply) = "permission_reply",
        /// Ask for a `presence` frame listing everyone connected.
        Presence(PresenceRequest) = "presence",
    }
}

/// Payload of `welcome`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Welcome {
    /// The protocol version the gateway speaks.
    pub protocol_version: u32,
    /// The session this connection follows.
    pub session_id: String,
    /// This connection's id, as presence frames show it.
    pub connection_id: String,
    /// The newest seq at the time of the welcome.
    pub head_seq: u64,
    /// The session's status.
    pub status: SessionStatus,
    /// Who the gateway authenticated.
    pub principal: Principal,
    /// Milliseconds between server heartbeats.
    pub heartbeat_interval_ms: u64,
    /// Everyone connected when this connection joined, itself included; empty when the session
    /// has more connections than the gateway lists (its presence list limit, 100 by default).
    #[serde(default)]
    pub connections: Vec<PresenceEntry>,
    /// How many connections the session has, this one included.
    #[serde(default)]
    pub connection_count: u64,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Payload of `replay_done`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ReplayDone {
    /// The last seq sent from the backlog (the client's cursor if there was none).
    pub through_seq: u64,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Payload of `reset`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Reset {
    /// Why replay was impossible, for example `cursor_expired`.
    pub reason: String,
    /// The oldest seq still retained.
    pub earliest_seq: u64,
    /// The session's transcript up to `transcript.through_seq`; live events follow it.
    pub transcript: Transcript,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Payload of `heartbeat`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Heartbeat {
    /// The newest seq at the time of the heartbeat.
    pub head_seq: u64,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

same_shape! {
    #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
    {
        /// Payload of `ping`.
        Ping,
        /// Payload of `pong`: the ping's nonce, echoed.
        Pong,
    }
    {
        /// Echoed back in the `pong`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub nonce: Option<String>,
    }
}

/// The gateway's acknowledgement of a prompt; the same for a retry of the same `prompt_id`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct PromptAdmission {
    /// The client-chosen id of the prompt.
    pub prompt_id: String,
    /// Prompts ahead of this one when it was admitted; 0 means it runs now.
    pub queue_position: u32,
    /// True when this prompt had been admitted before and this is a retry.
    pub duplicate: bool,
}

/// Payload of `error`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ErrorFrame {
    /// The stable machine code.
    pub code: ErrorCode,
    /// A message fit to show a person.
    pub message: String,
    /// The client's id of the frame that failed, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Payload of `presence`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Presence {
    /// Every open connection of the session.
    pub connections: Vec<PresenceEntry>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Payload of `presence_changed`: the joins and leaves of a short window, as set operations on
/// the connections a client knows. A connection that joined and left within one window is in
/// neither list; no id is in both.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct PresenceChange {
    /// Connections that opened; some may already be in this connection's `welcome`.
    #[serde(default)]
    pub joined: Vec<PresenceEntry>,
    /// The ids of connections that closed; some may be unknown to this connection.
    #[serde(default)]
    pub left: Vec<String>,
    /// How many connections the session has after the change. Above the presence list limit,
    /// `joined` and `left` are empty and only the count changes; once the count is back within
    /// the limit, a `presence` frame with the whole list follows.
    #[serde(default)]
    pub count: u64,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One connected client.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct PresenceEntry {
    /// The connection's id.
    pub connection_id: String,
    /// The subject of its token.
    pub subject: String,
    /// The kind of client it said it is.
    pub source: String,
}

/// Payload of `auth`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Auth {
    /// A bearer token.
    pub token: String,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Auth")
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Payload of `prompt`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Prompt {
    /// The client-chosen id; a retry with the same id never starts a second turn.
    pub prompt_id: String,
    /// The prompt text.
    pub content: String,
    /// Attached images, as `data:` URIs or URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
}

/// Payload of `cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Cancel {}

/// Payload of the client frame `presence`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct PresenceRequest {}

/// Payload of `cancel_queued`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CancelQueued {
    /// The queued prompt to withdraw.
    pub prompt_id: String,
}

/// Payload of `permission_reply`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct PermissionReply {
    /// The request to answer.
    pub permission_id: String,
    /// The answer.
    pub decision: PermissionDecision,
}
