//! A hub that follows a session another gateway runs, for this gateway's clients of it.
//!
//! It takes the same commands as a hub, so the gateway and every connection use it alike. Its
//! connections get the running gateway's events from the bus, in seq order with no gap and no
//! duplicate: an event at or below the follower's head is dropped, and a gap (an event beyond
//! the next seq, or a beaten head beyond its own) is read from the log before anything newer is
//! sent. Every other command goes to the running gateway as a request, and this gateway's
//! connections are reported to it on each change and every heartbeat, so presence and the idle
//! pause count them. The follower stops when the running gateway's hub stops or loses its
//! lease; its connections then end as interrupted, and reconnect to whichever gateway runs the
//! session next.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::fanout::{FanOut, Frame};
use super::{Attached, Command, HubHandle, Reply};
use crate::GatewayError;
use crate::bus::BusSubscription;
use crate::bus::wire::{Attachment, Op, SessionMessage};
use crate::gateway::Services;
use crate::gateway::relay::Relay;
use crate::protocol::v1::{Heartbeat, ServerFrame, SessionStatus};
use crate::store::SessionRecord;

/// Events read from the log per page while a gap is filled.
const FILL_PAGE: u32 = 500;
/// How long a forwarded command waits for the running gateway's answer.
const FORWARD_PATIENCE: Duration = Duration::from_secs(30);
/// How long a new connection waits for the running gateway's welcome details.
const ATTACH_PATIENCE: Duration = Duration::from_secs(5);

/// Why a gap was not filled.
enum Unfilled {
    /// The log could not be read now; the next head beat or check tries again.
    Later,
    /// The log does not hold the gap's events.
    Lost,
}

struct Follower {
    services: Arc<Services>,
    relay: Arc<Relay>,
    session_id: String,
    /// The gateway running the session.
    owner: String,
    /// The newest seq sent to this gateway's connections.
    head_seq: u64,
    /// The session's status as last heard.
    status: SessionStatus,
    fanout: FanOut,
    deleted: Arc<AtomicBool>,
    own: mpsc::WeakSender<Command>,
    /// When this gateway's connections are next reported, after a change.
    report_due: Option<Instant>,
    /// Whether the running gateway was ever told of this gateway's connections.
    reported: bool,
    /// Commands forwarded and not yet answered.
    forwarding: Arc<AtomicUsize>,
    /// Since when the follower has had no connection and nothing forwarded.
    dormant_since: Option<Instant>,
}

/// Starts following `owner`'s run of the session.
pub(crate) async fn spawn(
    services: Arc<Services>,
    relay: Arc<Relay>,
    record: SessionRecord,
    owner: String,
) -> Result<HubHandle, GatewayError> {
    let session_id = record.info.id.clone();
    // Subscribed before the head is read, so nothing published after it is missed.
    let subscription = relay.follow(&session_id).await?;
    let logged = services
        .log
        .bounds(&session_id)
        .await?
        .map(|(_, last)| last);
    let head_seq = logged.unwrap_or_default().max(record.info.head_seq);
    let (commands, receiver) = mpsc::channel(256);
    let config = &services.config;
    let follower = Follower {
        fanout: FanOut::new(
            config.send_budget,
            config.presence_window,
            config.presence_list_limit,
        ),
        relay,
        session_id: session_id.clone(),
        owner: owner.clone(),
        head_seq,
        status: record.info.status,
        deleted: Arc::default(),
        own: commands.downgrade(),
        report_due: None,
        reported: false,
        forwarding: Arc::default(),
        dormant_since: None,
        services,
    };
    let handle = HubHandle {
        commands,
        session_id: session_id.as_str().into(),
        deleted: follower.deleted.clone(),
        follows: Some(owner.as_str().into()),
    };
    tracing::debug!(
        session_id,
        owner,
        "following the gateway running the session"
    );
    tokio::spawn(follower.run(receiver, subscription));
    Ok(handle)
}

/// Resolves at `deadline`, or never when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

impl Follower {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, mut bus: BusSubscription) {
        let config = &self.services.config;
        let mut heartbeat = tokio::time::interval(config.heartbeat_interval);
        let mut lease_check = tokio::time::interval(config.lease_ttl / 3);
        loop {
            let eviction =
                (self.dormant_since).map(|since| since + self.services.config.evict_after);
            let going_on = tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.handle(command),
                    None => false,
                },
                message = bus.next() => match message {
                    Some(message) => self.on_message(message).await,
                    None => {
                        tracing::warn!(session_id = self.session_id, "the bus closed");
                        false
                    }
                },
                // The running gateway announces every gateway's joins and leaves.
                () = sleep_until(self.fanout.presence_due()) => {
                    self.fanout.take_presence_change();
                    true
                }
                () = sleep_until(self.report_due) => {
                    self.report();
                    true
                }
                _ = heartbeat.tick() => {
                    self.heartbeat();
                    true
                }
                _ = lease_check.tick() => self.check().await,
                () = sleep_until(eviction) => false,
            };
            if !going_on {
                break;
            }
            let dormant = self.fanout.is_empty() && self.forwarding.load(Ordering::SeqCst) == 0;
            match dormant {
                false => self.dormant_since = None,
                true => drop(self.dormant_since.get_or_insert_with(Instant::now)),
            }
        }
        // The running gateway forgets this gateway's connections at once, and what was on
        // its way here goes to the session's next hub.
        if self.reported {
            (self.relay).report(&self.owner, &self.session_id, Vec::new());
        }
        self.services.metrics.set_connections(&self.session_id, 0);
        let own = self.own_handle();
        super::leave(&self.services, own, &self.session_id, &mut commands).await;
    }

    fn own_handle(&self) -> Option<HubHandle> {
        Some(HubHandle {
            commands: self.own.upgrade()?,
            session_id: self.session_id.as_str().into(),
            deleted: self.deleted.clone(),
            follows: Some(self.owner.as_str().into()),
        })
    }

    /// Handles one command; false when the follower must stop.
    fn handle(&mut self, command: Command) -> bool {
        match command {
            Command::Connect(presence, reply) => {
                let Some(hub) = self.own_handle() else {
                    let error = GatewayError::Unavailable("the session is shutting down".into());
                    let _ = reply.send(Err(error));
                    return true;
                };
                let outlet = self.fanout.add(presence.clone());
                self.changed();
                let (relay, owner, session_id) = (
                    self.relay.clone(),
                    self.owner.clone(),
                    self.session_id.clone(),
                );
                let (head_seq, status, limit) = (
                    self.head_seq,
                    self.status,
                    self.services.config.presence_list_limit,
                );
                let mut local = self.fanout.connections();
                let log = self.services.log.clone();
                tokio::spawn(async move {
                    // What the client may have seen elsewhere is in the log, if not yet here:
                    // its cursor is not ahead of the session.
                    let logged = log.bounds(&session_id).await.ok().flatten();
                    let head_seq = logged.map_or(head_seq, |(_, last)| last.max(head_seq));
                    let attached = relay
                        .ask::<Attachment>(&owner, &session_id, Op::Attach, ATTACH_PATIENCE)
                        .await;
                    let (status, mut connections) = match attached {
                        Ok(attachment) => (attachment.status, attachment.connections),
                        Err(error) => {
                            tracing::warn!(session_id, error = %error, "the running gateway did not say who is connected");
                            (status, std::mem::take(&mut local))
                        }
                    };
                    // The running gateway may not have heard of this connection yet.
                    if !connections
                        .iter()
                        .any(|c| c.connection_id == presence.connection_id)
                    {
                        connections.push(presence);
                    }
                    let connection_count = connections.len() as u64;
                    if connections.len() > limit {
                        connections.clear();
                    }
                    let _ = reply.send(Ok(Attached {
                        hub,
                        outlet,
                        head_seq,
                        status,
                        connections,
                        connection_count,
                    }));
                });
            }
            Command::Disconnect(connection_id) => {
                if self.fanout.remove(&connection_id) {
                    self.changed();
                }
            }
            Command::Remote(..) => {}
            Command::Shutdown(done) => {
                let _ = done.send(());
                return false;
            }
            Command::AgentEndpoint(reply) => {
                let _ = reply.send(Err(GatewayError::Unavailable(format!(
                    "the session's agent runs beside gateway {}; its agent proxy is served there",
                    self.owner
                ))));
            }
            Command::Boot(reply) => self.forward(Op::Boot, reply),
            Command::Prompt(prompt, reply) => self.forward(Op::Prompt { prompt }, reply),
            Command::CancelQueued(prompt_id, by, reply) => {
                self.forward(Op::CancelQueued { prompt_id, by }, reply)
            }
            Command::Cancel(by, reply) => self.forward(Op::Cancel { by }, reply),
            Command::ReplyPermission(permission_id, decision, by, reply) => {
                let op = Op::ReplyPermission {
                    permission_id,
                    decision,
                    by,
                };
                self.forward(op, reply)
            }
            Command::Pause(reply) => self.forward(Op::Pause, reply),
            Command::Resume(reply) => self.forward(Op::Resume, reply),
            Command::Snapshot(reply) => self.forward(Op::Snapshot, reply),
            Command::Transcript(reply) => self.forward(Op::Transcript, reply),
            Command::Presence(reply) => self.forward(Op::Presence, reply),
            Command::Info(reply) => self.forward(Op::Info, reply),
            Command::Terminate(reply) => self.forward(Op::Terminate, reply),
        }
        true
    }

    /// Sends a command to the running gateway off the loop; the answer goes to `reply`.
    fn forward<T: DeserializeOwned + Send + 'static>(&mut self, op: Op, reply: Reply<T>) {
        let (relay, owner, session_id) = (
            self.relay.clone(),
            self.owner.clone(),
            self.session_id.clone(),
        );
        let forwarding = self.forwarding.clone();
        forwarding.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let answer = relay.ask(&owner, &session_id, op, FORWARD_PATIENCE).await;
            let _ = reply.send(answer);
            forwarding.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// This gateway's connections changed: report them once the presence window has passed.
    fn changed(&mut self) {
        let window = self.services.config.presence_window;
        self.report_due
            .get_or_insert_with(|| Instant::now() + window);
        (self.services.metrics).set_connections(&self.session_id, self.fanout.local_len());
    }

    fn report(&mut self) {
        self.report_due = None;
        self.reported = true;
        let connections = self.fanout.connections();
        self.relay
            .report(&self.owner, &self.session_id, connections);
    }

    /// Handles a message on the session's subject; false when the follower must stop.
    async fn on_message(&mut self, message: Bytes) -> bool {
        let Some(message) = self.relay.open(message).and_then(SessionMessage::decode) else {
            tracing::warn!(
                session_id = self.session_id,
                "a session message was not understood"
            );
            return true;
        };
        match message {
            SessionMessage::Events(events) => {
                for (seq, bytes) in events {
                    if seq <= self.head_seq {
                        continue;
                    }
                    if seq > self.head_seq + 1 {
                        match self.fill(seq - 1).await {
                            Ok(()) => {}
                            // The rest waits for the next try: nothing is sent past a gap.
                            Err(Unfilled::Later) => return true,
                            Err(Unfilled::Lost) => return false,
                        }
                    }
                    self.note_status(&bytes);
                    self.send(seq, bytes);
                }
                true
            }
            SessionMessage::Control(bytes) => {
                self.fanout.publish(&Frame {
                    seq: 0,
                    bytes,
                    staged: None,
                });
                true
            }
            SessionMessage::Head(seq) => seq <= self.head_seq || self.fill_now(seq).await,
            SessionMessage::Ended { deleted: true } => {
                self.deleted.store(true, Ordering::SeqCst);
                false
            }
            // A hub that lost its lease says so too: only the end of the one followed counts.
            SessionMessage::Ended { deleted: false } => {
                match self.services.log.holder(&self.session_id).await {
                    Ok(Some(holder)) => holder == self.owner,
                    Ok(None) => false,
                    // The lease check tries again.
                    Err(_) => true,
                }
            }
        }
    }

    fn send(&mut self, seq: u64, bytes: Bytes) {
        self.head_seq = seq;
        let slow = self.fanout.publish(&Frame {
            seq,
            bytes,
            staged: None,
        });
        if slow > 0 {
            self.services.metrics.slow_consumers_closed(slow);
            self.changed();
        }
    }

    /// Keeps the status a new connection's welcome reports.
    fn note_status(&mut self, frame: &[u8]) {
        #[derive(serde::Deserialize)]
        struct Peek {
            event: Option<PeekEvent>,
        }
        #[derive(serde::Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        enum PeekEvent {
            StatusChanged {
                status: SessionStatus,
            },
            #[serde(other)]
            Other,
        }
        if let Ok(Peek {
            event: Some(PeekEvent::StatusChanged { status }),
        }) = serde_json::from_slice(frame)
        {
            self.status = status;
        }
    }

    /// Sends the log's events after the head through `through`.
    async fn fill(&mut self, through: u64) -> Result<(), Unfilled> {
        while self.head_seq < through {
            let page = (self.services.log)
                .read(&self.session_id, self.head_seq, FILL_PAGE)
                .await;
            let page = match page {
                Ok(page) if page.first().is_some_and(|e| e.seq == self.head_seq + 1) => page,
                Ok(_) => {
                    tracing::warn!(
                        session_id = self.session_id,
                        "the log does not hold a gap's events"
                    );
                    return Err(Unfilled::Lost);
                }
                Err(error) => {
                    tracing::warn!(session_id = self.session_id, error = %error, "a gap could not be read from the log; trying again later");
                    return Err(Unfilled::Later);
                }
            };
            for event in page.into_iter().take_while(|event| event.seq <= through) {
                self.note_status(&event.frame);
                self.send(event.seq, event.frame);
            }
        }
        Ok(())
    }

    /// [`Follower::fill`], as a reason to go on: false only when the log lost the gap's
    /// events (the connections must then start again from the log).
    async fn fill_now(&mut self, through: u64) -> bool {
        !matches!(self.fill(through).await, Err(Unfilled::Lost))
    }

    /// Beats to this gateway's connections, and reports them.
    fn heartbeat(&mut self) {
        if self.fanout.local_len() > 0 {
            let frame = Frame::control(&ServerFrame::Heartbeat(Heartbeat {
                head_seq: self.head_seq,
                ..Default::default()
            }));
            self.fanout.publish(&frame);
            self.report();
        }
    }

    /// Checks, as often as the running gateway renews its lease, that it still runs the
    /// session and that nothing it logged was missed; false when the follower must stop.
    async fn check(&mut self) -> bool {
        match self.services.log.holder(&self.session_id).await {
            Ok(Some(holder)) if holder == self.owner => {}
            Ok(_) => {
                tracing::info!(
                    session_id = self.session_id,
                    owner = self.owner,
                    "the running gateway no longer runs the session"
                );
                return false;
            }
            Err(error) => {
                tracing::warn!(session_id = self.session_id, error = %error, "the session's lease could not be read");
                return true;
            }
        }
        match self.services.log.bounds(&self.session_id).await {
            Ok(Some((_, last))) if last > self.head_seq => self.fill_now(last).await,
            _ => true,
        }
    }
}
