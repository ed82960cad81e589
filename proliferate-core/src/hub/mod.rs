//! The hub: one per live session, the single writer of its event log and the fan-out of its
//! events to every connection.
//!
//! The hub is an actor: one task owns the session's state (status, agent, prompt queue, pending
//! permissions, connections) and handles commands one at a time, so no lock is ever held across
//! I/O. Booting a sandbox runs in a separate task, so admissions and connections stay fast while
//! an agent starts. A hub with no connection, no agent and no work leaves memory after
//! [`HubConfig::evict_after`] and comes back from the store on demand.

mod actor;
mod fanout;
pub mod fit;
pub(crate) mod follower;
mod lease;
mod lifecycle;
mod permissions;
mod queue;
mod subscription;
mod turn_queue;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use fanout::Frame;
pub use subscription::{Subscription, SubscriptionEnded};

pub(crate) use actor::spawn;

pub(crate) use fanout::Outlet;

use crate::GatewayError;
use crate::protocol::v1::{
    PermissionDecision, Presence, PresenceEntry, PromptAdmission, Sender, SessionInfo,
    SessionStatus, SnapshotInfo, Transcript,
};
use crate::sandbox::AgentEndpoint;
use crate::store::PromptRecord;

/// Tunables of every hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Frames a connection may have queued and unsent before it is closed with 1013.
    pub send_budget: usize,
    /// Time between server heartbeats.
    pub heartbeat_interval: Duration,
    /// How long a permission request waits for an answer.
    pub permission_timeout: Duration,
    /// The answer applied when nobody answers in time.
    pub permission_default: PermissionDecision,
    /// How long a session with no connection and no turn stays up before it pauses itself.
    pub idle_grace: Duration,
    /// How long a cancelled turn may take to stop before it is reported cancelled anyway.
    pub cancel_grace: Duration,
    /// The largest prompt accepted, in bytes (text and images together).
    pub max_prompt_bytes: usize,
    /// The most prompts a session holds waiting their turn; more get `limit_exceeded`.
    pub max_queued_prompts: usize,
    /// The most sessions of one organisation whose sandboxes run at once; one more is
    /// `limit_exceeded`. `None` sets no cap.
    pub max_live_sessions_per_organization: Option<usize>,
    /// The most streams (WebSocket and SSE) one organisation holds open at once; one more is
    /// `limit_exceeded`. `None` sets no cap.
    pub max_connections_per_organization: Option<usize>,
    /// How many of a session's newest events its log keeps; older ones are dropped, with the
    /// transcript kept in their place. `None` keeps every event.
    pub retained_events: Option<u64>,
    /// How long a session's events are kept; older ones are dropped (looked for when the hub
    /// starts and at most once a minute while it writes), with the transcript kept in their
    /// place; the newest event always stays. `None` keeps them for good.
    pub retained_age: Option<Duration>,
    /// The largest event recorded, in bytes of JSON; an agent's larger event has its longest
    /// strings cut ([`fit::fit`]).
    pub max_event_bytes: usize,
    /// How long a session's hub stays in memory with no connection, no agent and no work; it
    /// comes back from the store on the next call about the session.
    pub evict_after: Duration,
    /// The name this gateway holds session leases under: the same across its restarts, and
    /// different for every gateway that shares a database.
    pub gateway_id: String,
    /// How long a session's lease lasts unless renewed; the hub renews it three times as often,
    /// and a hub that could not renew it for this long stops, as another gateway may run the
    /// session by then.
    pub lease_ttl: Duration,
    /// How long joins and leaves gather before one `presence_changed` announces them.
    pub presence_window: Duration,
    /// The most connections a session lists in `welcome` and `presence_changed`; above it they
    /// carry the count alone, so a crowd costs each connection nothing that grows with it.
    pub presence_list_limit: usize,
}

impl HubConfig {
    /// How long a sandbox token stays valid unless renewed: three heartbeats, renewed on each.
    pub fn sandbox_token_lease(&self) -> Duration {
        self.heartbeat_interval * 3
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            send_budget: 4096,
            heartbeat_interval: Duration::from_secs(15),
            permission_timeout: Duration::from_secs(300),
            permission_default: PermissionDecision::Reject,
            idle_grace: Duration::from_secs(300),
            cancel_grace: Duration::from_secs(10),
            max_prompt_bytes: 256 * 1024,
            max_queued_prompts: 100,
            retained_events: None,
            retained_age: None,
            max_event_bytes: 1024 * 1024,
            evict_after: Duration::from_secs(60),
            gateway_id: "local".into(),
            lease_ttl: Duration::from_secs(30),
            presence_window: Duration::from_millis(100),
            presence_list_limit: 100,
            max_live_sessions_per_organization: None,
            max_connections_per_organization: None,
        }
    }
}

/// Where a command's answer goes.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, GatewayError>>;

/// What a new connection gets from its hub.
pub(crate) struct Attached {
    /// The hub that took the connection (the one to tell when it closes).
    pub hub: HubHandle,
    pub outlet: Outlet,
    pub head_seq: u64,
    pub status: SessionStatus,
    /// Everyone connected, the new connection included, if they are few enough to list.
    pub connections: Vec<PresenceEntry>,
    /// How many connections there are, the new one included.
    pub connection_count: u64,
}

pub(crate) enum Command {
    Connect(PresenceEntry, Reply<Attached>),
    Boot(Reply<()>),
    Disconnect(String),
    Prompt(PromptRecord, Reply<PromptAdmission>),
    CancelQueued(String, Sender, Reply<()>),
    Cancel(Sender, Reply<bool>),
    ReplyPermission(String, PermissionDecision, Sender, Reply<()>),
    Pause(Reply<SessionInfo>),
    Resume(Reply<SessionInfo>),
    Snapshot(Reply<SnapshotInfo>),
    Transcript(Reply<Transcript>),
    Presence(Reply<Presence>),
    Info(Reply<SessionInfo>),
    AgentEndpoint(Reply<AgentEndpoint>),
    Terminate(Reply<()>),
    /// Another gateway's connections on the session, as it reports them.
    Remote(String, Vec<PresenceEntry>),
    Shutdown(oneshot::Sender<()>),
}

impl Command {
    /// Answers the command's caller with `error` instead of running it.
    pub(crate) fn refuse(self, error: GatewayError) {
        match self {
            Command::Connect(_, reply) => drop(reply.send(Err(error))),
            Command::Boot(reply) | Command::Terminate(reply) => drop(reply.send(Err(error))),
            Command::CancelQueued(_, _, reply) | Command::ReplyPermission(_, _, _, reply) => {
                drop(reply.send(Err(error)))
            }
            Command::Prompt(_, reply) => drop(reply.send(Err(error))),
            Command::Cancel(_, reply) => drop(reply.send(Err(error))),
            Command::Pause(reply) | Command::Resume(reply) | Command::Info(reply) => {
                drop(reply.send(Err(error)))
            }
            Command::Snapshot(reply) => drop(reply.send(Err(error))),
            Command::Transcript(reply) => drop(reply.send(Err(error))),
            Command::Presence(reply) => drop(reply.send(Err(error))),
            Command::AgentEndpoint(reply) => drop(reply.send(Err(error))),
            Command::Disconnect(_) | Command::Remote(..) => {}
            Command::Shutdown(done) => drop(done.send(())),
        }
    }
}

/// A handle to a session's hub task.
#[derive(Clone)]
pub(crate) struct HubHandle {
    commands: mpsc::Sender<Command>,
    pub(crate) session_id: Arc<str>,
    deleted: Arc<std::sync::atomic::AtomicBool>,
    /// The gateway this hub follows, when another gateway runs the session.
    follows: Option<Arc<str>>,
}

impl HubHandle {
    /// Queues a command; gives it back if the hub has stopped.
    pub(crate) async fn send(&self, command: Command) -> Result<(), Command> {
        self.commands.send(command).await.map_err(|error| error.0)
    }

    /// The gateway running the session, when this hub follows it rather than running it.
    pub(crate) fn follows(&self) -> Option<&str> {
        self.follows.as_deref()
    }

    /// Queues a command if there is room now, else drops it (for reports sent again anyway).
    pub(crate) fn offer(&self, command: Command) {
        let _ = self.commands.try_send(command);
    }

    /// True when both handles reach the same hub task.
    pub(crate) fn same_hub(&self, other: &HubHandle) -> bool {
        self.commands.same_channel(&other.commands)
    }

    /// Sends a command and waits for its answer.
    pub async fn ask<T>(
        &self,
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, GatewayError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| GatewayError::Unavailable("the session is shutting down".into()))?;
        answer
            .await
            .map_err(|_| GatewayError::Unavailable("the session is shutting down".into()))?
    }

    /// Tells the hub a connection closed; never waits.
    pub fn disconnect(&self, connection_id: String) {
        let commands = self.commands.clone();
        if let Err(mpsc::error::TrySendError::Full(command)) =
            commands.try_send(Command::Disconnect(connection_id))
        {
            tokio::spawn(async move { commands.send(command).await });
        }
    }

    /// Stops the hub, leaving the session's sandbox to be stopped by the caller.
    pub async fn shutdown(&self) {
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::Shutdown(done)).await.is_ok() {
            let _ = finished.await;
        }
    }

    /// Why a connection to this hub ends now that the hub is gone: the session was deleted, or
    /// the hub stopped (shutdown, a store fault) while the session lives on.
    pub fn ending(&self) -> SubscriptionEnded {
        match self.deleted.load(std::sync::atomic::Ordering::SeqCst) {
            true => SubscriptionEnded::SessionEnded,
            false => SubscriptionEnded::Interrupted,
        }
    }

    /// True once the hub task has ended.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }
}

/// Takes a leaving hub out of the gateway's table, then hands the commands already on their way
/// to it to the session's next hub.
pub(crate) async fn leave(
    services: &Arc<crate::gateway::Services>,
    own: Option<HubHandle>,
    session_id: &str,
    commands: &mut mpsc::Receiver<Command>,
) {
    if let Some(own) = own {
        services.hubs.forget(session_id, &own);
    }
    commands.close();
    let mut waiting = Vec::new();
    while let Some(command) = commands.recv().await {
        // No connection of this hub is left to disconnect.
        if !matches!(command, Command::Disconnect(_)) {
            waiting.push(command);
        }
    }
    services.hand_over(session_id, waiting);
}
