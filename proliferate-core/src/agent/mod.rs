//! Agent drivers: how the gateway talks to the agent inside a sandbox.
//!
//! A driver describes how to launch its agent ([`AgentDriver::launch`]), then attaches to the
//! running agent ([`AgentDriver::attach`]): it starts or adopts the agent's own session and
//! returns an [`AgentSession`], a control handle plus a pull-based stream of [`AgentUpdate`]s
//! already translated into protocol v1 events.

#[cfg(feature = "fakes")]
pub mod fake;
pub mod opencode;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::protocol::v1::{Event, PermissionDecision};
use crate::sandbox::{AgentEndpoint, AgentLaunch};

/// A prompt as the agent receives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentPrompt {
    /// The prompt text.
    pub text: String,
    /// Attached images, as `data:` URIs or URLs.
    pub images: Vec<String>,
}

/// A permission request from the agent, before the gateway adds its timeout and default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PermissionAsk {
    /// The agent's id for the request; used to answer it.
    pub permission_id: String,
    /// What is asked, for example `bash`.
    pub permission: String,
    /// The patterns it covers.
    pub patterns: Vec<String>,
    /// Details the agent attached.
    pub metadata: serde_json::Value,
    /// The tool call waiting on the answer, if any.
    pub call_id: Option<String>,
}

/// Something the agent did, translated into the protocol's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentUpdate {
    /// An event for the session's log (text, tools, messages, errors, todos, files...).
    Event(Event),
    /// The agent asks for permission.
    PermissionAsked(PermissionAsk),
    /// A permission request was answered at the agent (possibly not through the gateway).
    PermissionReplied {
        /// The request.
        permission_id: String,
        /// The answer.
        decision: PermissionDecision,
    },
    /// The agent is idle: the running turn, if any, is over.
    Idle,
    /// The agent stopped answering (exited, or its event stream is gone); nothing follows.
    Lost(String),
}

/// A failure talking to an agent.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The agent could not be reached.
    #[error("the agent is unreachable: {0}")]
    Unreachable(String),
    /// The agent answered with an error.
    #[error("the agent refused the request with HTTP {status}: {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// What it said (truncated).
        message: String,
    },
    /// The agent answered something the driver does not understand.
    #[error("unexpected answer from the agent: {0}")]
    Protocol(String),
}

/// Commands to an attached agent session.
#[async_trait]
pub trait AgentControl: Send + Sync {
    /// The agent's own id for the session (kept to adopt it again after a restart).
    fn agent_session_id(&self) -> &str;

    /// Starts a turn; returns once the agent accepted the prompt. Output arrives as updates.
    async fn prompt(&self, prompt: &AgentPrompt) -> Result<(), DriverError>;

    /// Aborts the running turn.
    async fn abort(&self) -> Result<(), DriverError>;

    /// Answers a permission request.
    async fn reply_permission(
        &self,
        permission_id: &str,
        decision: PermissionDecision,
    ) -> Result<(), DriverError>;

    /// The agent's own record of the conversation, as it returns it.
    async fn history(&self) -> Result<serde_json::Value, DriverError>;
}

/// An attached agent session: commands, and the updates they cause.
pub struct AgentSession {
    /// Sends commands to the agent.
    pub control: Arc<dyn AgentControl>,
    /// Updates in the order the agent produced them. Ends after [`AgentUpdate::Lost`].
    pub updates: mpsc::Receiver<AgentUpdate>,
}

/// A kind of agent (OpenCode today; others through the same trait).
#[async_trait]
pub trait AgentDriver: Send + Sync {
    /// The agent's name, for example `opencode`.
    fn name(&self) -> &'static str;

    /// The model (`provider/model`) sessions use unless they name another.
    fn default_model(&self) -> &str;

    /// How a provider starts this agent, answering with `model` (`provider/model`).
    fn launch(&self, model: &str) -> AgentLaunch;

    /// Attaches to the agent at `agent`: adopts `known_session` if the agent still has it,
    /// else the agent's most recent session, else creates one. Updates flow from the moment
    /// this returns.
    async fn attach(
        &self,
        agent: &AgentEndpoint,
        known_session: Option<&str>,
    ) -> Result<AgentSession, DriverError>;
}
