//! Sessions and the identities that act on them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Extra;

/// Where a session is in its lifecycle. Every transition is checked by the core's state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Created; no sandbox yet.
    #[default]
    Pending,
    /// The sandbox and agent are booting.
    Starting,
    /// The agent is up and accepts prompts.
    Running,
    /// The sandbox is being paused.
    Pausing,
    /// Stopped with workspace and agent state kept; resumes on connect, prompt or request.
    Paused,
    /// Coming back from `paused`.
    Resuming,
    /// Ended for good; the sandbox is gone.
    Stopped,
    /// The sandbox or agent could not be brought up; a resume may retry.
    Failed,
}

impl SessionStatus {
    /// The wire name of this status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Pausing => "pausing",
            Self::Paused => "paused",
            Self::Resuming => "resuming",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }
}

/// What a session looks like to clients.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SessionInfo {
    /// The session's id.
    pub id: String,
    /// The organisation that owns the session; no other organisation's token reaches it.
    pub organization_id: String,
    /// The subject of the token that created it.
    pub created_by: String,
    /// A human title, if one was given or derived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Lifecycle status.
    pub status: SessionStatus,
    /// Why the session is in its status (for example `idle` for an auto-pause).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// The agent that runs in the sandbox, for example `opencode`.
    pub agent: String,
    /// The model the agent uses, as `provider/model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The sandbox provider, for example `local`.
    pub provider: String,
    /// How the sandbox isolates the agent, for example `bubblewrap` or `process`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    /// The resource limits of the session's sandbox, once it has started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<SandboxLimits>,
    /// Hosts the sandbox may reach through the egress proxy, beyond the server's allow-list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress_allow: Vec<String>,
    /// The seq of the newest durable event; 0 before the first.
    pub head_seq: u64,
    /// The snapshot the session started from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_snapshot_id: Option<String>,
    /// A URL where the sandbox's preview is served, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<String>,
    /// Free-form metadata the creator attached.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub metadata: serde_json::Value,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Last change, milliseconds since the Unix epoch.
    pub updated_at: i64,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Resource limits of a sandbox. In a request each field lowers the server's limit (a value above
/// it is refused, as is one below the least a sandbox works with); in session info each field is
/// the limit in force.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SandboxLimits {
    /// Memory of every process in the sandbox together, including its `/tmp`, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 67108864))]
    pub memory_bytes: Option<u64>,
    /// CPU time, in thousandths of a core (1000 is one core).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 4294967295u32))]
    pub cpu_millicores: Option<u32>,
    /// Processes and threads at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 16, max = 4294967295u32))]
    pub processes: Option<u32>,
    /// Open files per process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 64, max = 4294967295u32))]
    pub open_files: Option<u32>,
    /// Disk for the sandbox's home and workspace together, in bytes, where the server gives each
    /// sandbox a disk of its own; elsewhere the largest file it may write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 67108864))]
    pub disk_bytes: Option<u64>,
    /// How the limits are enforced, for example `cgroup v1` or `rlimit` (memory, CPU and processes
    /// unenforced); set by the server, ignored in requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced_by: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A permission a token grants.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read sessions and stream their events.
    Read,
    /// Prompt, cancel, answer permissions, create and control sessions.
    Write,
    /// Everything, including delete and other subjects' sessions in the organisation.
    Admin,
}

/// The kind of party a token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A person, through an app.
    #[default]
    User,
    /// A back end acting for the organisation.
    Service,
    /// The agent inside one session's sandbox, calling back to the gateway.
    Sandbox,
}

/// Who a connection or request is, as the gateway authenticated it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Principal {
    /// The token's subject (a user id, a service name).
    pub subject: String,
    /// The organisation the token belongs to.
    pub organization_id: String,
    /// What the token may do.
    pub scopes: Vec<Scope>,
    /// What kind of party this is.
    pub kind: PrincipalKind,
    /// The one session this token is restricted to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

/// Who sent a prompt or answered a permission, and through what kind of client.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Sender {
    /// The subject of the sender's token.
    pub subject: String,
    /// The kind of client: `web`, `cli`, `slack`, `api`, `automation`, or another name.
    pub source: String,
}

/// The claims of a Proliferate JWT (HS256), as `docs/protocol.md` section 12 lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TokenClaims {
    /// Subject: a user id or service name.
    pub sub: String,
    /// Organisation id.
    pub org: String,
    /// What the token may do.
    pub scopes: Vec<Scope>,
    /// `user` or `service`.
    #[serde(default)]
    pub kind: PrincipalKind,
    /// The only session the token may reach, if restricted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: i64,
    /// Token id.
    pub jti: String,
    /// Issuer; a server that sets one accepts only user tokens that name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience, one string; a server that sets one accepts only user tokens that name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}
