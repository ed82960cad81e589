//! Sandbox providers: where an agent runs, and how it is started, paused, snapshotted and stopped.
//!
//! A provider knows nothing of any particular agent: the agent driver describes how to launch its
//! agent ([`AgentLaunch`]) and the provider runs it inside the sandbox and waits until it answers.

mod archive;
mod channel;
mod disk;
mod egress;
mod endpoint;
#[cfg(feature = "fakes")]
pub mod fake;
pub mod helper;
mod isolation;
mod limits;
mod local;
mod process;
mod seccomp;

use std::path::PathBuf;

use async_trait::async_trait;

pub use channel::{ChannelService, Connection, LoopbackForward};
pub use egress::EgressPolicy;
pub use isolation::IsolationMode;
pub use limits::{default_limits, within};
pub use local::{LocalProvider, LocalProviderConfig};

use crate::protocol::v1::{SandboxLimits, SnapshotInfo};

/// What a provider can do beyond start and terminate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// The sandbox can be paused with its workspace and agent state kept.
    pub pause: bool,
    /// The workspace and agent state can be saved and restored into a new session.
    pub snapshot: bool,
    /// Snapshots include process memory (a restored agent continues mid-turn).
    pub memory_snapshot: bool,
    /// The provider pauses idle sandboxes by itself.
    pub auto_pause: bool,
}

/// How to start an agent inside a sandbox; written by the agent driver.
#[derive(Debug, Clone, Default)]
pub struct AgentLaunch {
    /// The agent's executable.
    pub program: PathBuf,
    /// Arguments; `{port}` is replaced by the port the agent must listen on, on loopback.
    pub arguments: Vec<String>,
    /// How the agent takes its own credential, if it can: the gateway generates a random password
    /// per sandbox, passes it in this environment variable and presents it with HTTP Basic auth.
    pub credential: Option<AgentCredential>,
    /// Environment variables for the agent, beyond the provider's own (HOME, PATH, XDG).
    pub environment: Vec<(String, String)>,
    /// Files written under the agent's home before it starts: (path relative to home, contents).
    pub home_files: Vec<(PathBuf, String)>,
    /// A folder the agent's executable needs, made readable inside an isolated sandbox.
    pub install_root: Option<PathBuf>,
    /// The path answered with 2xx once the agent is ready, for example `/global/health`.
    pub readiness_path: String,
}

/// How an agent takes the credential its HTTP server requires.
#[derive(Debug, Clone, Default)]
pub struct AgentCredential {
    /// The user name presented with HTTP Basic auth.
    pub username: String,
    /// The environment variable that carries the password to the agent.
    pub password_variable: String,
}

/// What a provider needs to start a session's sandbox.
#[derive(Debug, Clone, Default)]
pub struct SandboxSpec {
    /// The session the sandbox belongs to.
    pub session_id: String,
    /// How to start the agent.
    pub launch: AgentLaunch,
    /// Fill a new sandbox from this snapshot.
    pub restore_from: Option<String>,
    /// The session's resource limits (already within the provider's).
    pub limits: SandboxLimits,
    /// Hosts the session may reach beyond the provider's egress allow-list.
    pub egress_allow: Vec<String>,
    /// Variables the gateway sets in the agent's environment for this run (its sandbox token).
    pub environment: Vec<(String, String)>,
}

/// How the gateway reaches a sandbox's agent: a base URL and the HTTP client that carries
/// requests there (through the sandbox's channel, with the agent's credential).
#[derive(Clone)]
pub struct AgentEndpoint {
    /// The base URL requests are made against, for example `http://agent`.
    pub base_url: String,
    /// The client configured for this agent; use it for every request to `base_url`.
    pub http: reqwest::Client,
    /// The workspace's absolute path as the agent sees it.
    pub workspace: String,
    /// Keeps the channel the client connects through open while any copy of the endpoint lives.
    _channel: Option<std::sync::Arc<channel::SocketHandle>>,
}

impl AgentEndpoint {
    /// An endpoint at `base_url`, reached with `http`, whose agent works in `workspace`.
    pub fn new(
        base_url: impl Into<String>,
        http: reqwest::Client,
        workspace: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            http,
            workspace: workspace.into(),
            _channel: None,
        }
    }
}

impl std::fmt::Debug for AgentEndpoint {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AgentEndpoint")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// A running sandbox, as the rest of the engine sees it.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// The session it belongs to.
    pub session_id: String,
    /// Where its agent answers.
    pub agent: AgentEndpoint,
    /// How the agent is isolated, for example `bubblewrap` or `process`.
    pub isolation: String,
    /// The limits in force, and how they are enforced.
    pub limits: SandboxLimits,
}

/// A failure of a sandbox provider.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The session id cannot name a sandbox (it must be 1 to 64 letters, digits, `-` or `_`).
    #[error("invalid session id {0:?}: use 1 to 64 letters, digits, '-' or '_'")]
    InvalidSessionId(String),
    /// No snapshot with this id exists.
    #[error("no snapshot {0}")]
    SnapshotNotFound(String),
    /// The provider has no sandbox for this session.
    #[error("no sandbox for session {0}")]
    NotFound(String),
    /// The provider cannot do this.
    #[error("the {provider} provider cannot {operation}")]
    Unsupported {
        /// The provider's name.
        provider: &'static str,
        /// What was asked.
        operation: &'static str,
    },
    /// The sandbox cannot be isolated as configured on this machine.
    #[error("isolation is unavailable: {0}")]
    IsolationUnavailable(String),
    /// The sandbox went over one of its limits.
    #[error("the sandbox exceeded its limits: {0}")]
    LimitExceeded(String),
    /// The agent did not become ready.
    #[error("the agent did not become ready: {0}")]
    AgentNotReady(String),
    /// A file-system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl SandboxError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// A place where agents run: the local machine today, cloud sandboxes through the same trait.
#[async_trait]
pub trait SandboxProvider: Send + Sync {
    /// The provider's name, for example `local`.
    fn name(&self) -> &'static str;

    /// What this provider can do.
    fn capabilities(&self) -> Capabilities;

    /// The most a session's sandbox may use; a session may ask for less.
    fn limits(&self) -> SandboxLimits {
        SandboxLimits::default()
    }

    /// Starts the session's sandbox (creating it, restoring a snapshot, or resuming a paused one)
    /// and waits until its agent answers. Returns the running sandbox if it already runs.
    async fn start(&self, spec: &SandboxSpec) -> Result<Sandbox, SandboxError>;

    /// Which of its limits the session's sandbox has run into, if any (asked when its agent
    /// stops unexpectedly).
    async fn over_limit(&self, _session_id: &str) -> Option<String> {
        None
    }

    /// True while the session's agent process runs.
    async fn is_running(&self, session_id: &str) -> bool;

    /// Stops the agent and keeps the workspace and the agent's state for a later `start`.
    async fn pause(&self, session_id: &str) -> Result<(), SandboxError>;

    /// Saves the workspace and the agent's state; a new session can start from the result.
    async fn snapshot(&self, session_id: &str) -> Result<SnapshotInfo, SandboxError>;

    /// Stops the agent and removes the sandbox. Succeeds when there is nothing to remove.
    async fn terminate(&self, session_id: &str) -> Result<(), SandboxError>;

    /// Stops agents left running by a previous process; returns how many were stopped.
    async fn cleanup_orphans(&self) -> Result<usize, SandboxError>;
}

/// Checks that a session id can safely name a folder.
pub(crate) fn validate_session_id(session_id: &str) -> Result<(), SandboxError> {
    let valid = (1..=64).contains(&session_id.len())
        && session_id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    if valid {
        Ok(())
    } else {
        Err(SandboxError::InvalidSessionId(session_id.to_owned()))
    }
}
