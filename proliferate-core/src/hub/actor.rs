//! The hub's task: the session's single writer, prompt queue, permission router and idle timer.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::fanout::{FanOut, Frame};
use super::lease::LeaseKeeper;
use super::lifecycle::Lifecycle;
use super::permissions::Permissions;
use super::turn_queue::TurnQueue;
use super::{Attached, Command, HubHandle, Reply};
use crate::GatewayError;
use crate::agent::{AgentControl, AgentPrompt, AgentSession, AgentUpdate, PermissionAsk};
use crate::bus::wire::SessionMessage;
use crate::clock::now_millis;
use crate::gateway::Services;
use crate::protocol::v1::*;
use crate::sandbox::{AgentEndpoint, Sandbox};
use crate::session::status::{agent_should_run, check_transition};
use crate::store::{Lease, PromptRecord, PromptState, SessionRecord, SnapshotRecord, StoredEvent};
use crate::transcript::TranscriptReducer;

mod agent;
mod commands;
mod turns;
mod writes;

/// Events read per page while the hub rebuilds its transcript at start-up.
const PAGE: u32 = 1000;
/// Room for an event's envelope (session, seq, time) within the event size limit.
const ENVELOPE_BYTES: usize = 256;
/// Heartbeats without a report after which another gateway's connections are dropped.
pub(crate) const REMOTE_BEATS: u32 = 3;

/// What the hub's lifecycle asks it to do.
type Effect = super::lifecycle::Effect<Arc<dyn AgentControl>, Reply<SessionInfo>>;

/// What a slow call, run as a task off the hub's loop, reports when it finishes. The loop
/// keeps streaming, beating and admitting meanwhile.
pub(super) enum Done {
    /// The sandbox started and the agent attached, or not.
    Booted(Result<(Sandbox, AgentSession), GatewayError>),
    /// A snapshot was saved, or not.
    Snapshot(Result<SnapshotInfo, GatewayError>, Reply<SnapshotInfo>),
    /// The agent took a turn's prompt, or refused it.
    Prompted(String, Result<(), GatewayError>),
    /// The agent took a person's answer to a permission request, or not.
    PermissionAnswered(PermissionAnswer, Result<(), GatewayError>),
    /// The sandbox stopped, or failed to.
    Stopped(Result<(), GatewayError>),
    /// The sandbox was terminated and the session deleted, or not.
    Deleted(Result<(), GatewayError>),
}

/// A person's answer to a permission request, on its way to the agent.
pub(super) struct PermissionAnswer {
    permission_id: String,
    decision: PermissionDecision,
    by: Sender,
    reply: Reply<()>,
}

struct Hub {
    services: Arc<Services>,
    record: SessionRecord,
    head_seq: u64,
    /// Events numbered but not yet in the log; published once they are.
    unpersisted: Vec<StoredEvent>,
    /// When each event not yet published was staged, by seq, oldest first.
    staged_at: VecDeque<(u64, Instant)>,
    /// The session's record changed since it was last stored.
    record_dirty: bool,
    /// Prompt states to store, in order, after the events that explain them.
    prompt_states: Vec<(String, PromptState)>,
    /// The write in flight.
    writing: Option<writes::Writing>,
    /// When a write the store refused is tried again.
    retry_at: Option<Instant>,
    /// The newest seq in the log.
    written_seq: u64,
    /// The seq of the newest `user_message`: no turn starts before it is in the log.
    last_user_message_seq: u64,
    /// Answers held until what they report is in the log.
    answers: Vec<writes::Answer>,
    /// When the next write looks for events past `retained_age`.
    next_age_check: Option<Instant>,
    reducer: TranscriptReducer,
    fanout: FanOut,
    lifecycle: Lifecycle<Arc<dyn AgentControl>, Reply<SessionInfo>>,
    updates: Option<mpsc::Receiver<AgentUpdate>>,
    done: mpsc::Sender<Done>,
    agent_endpoint: Option<AgentEndpoint>,
    /// Set when the session is deleted, so its clients are told it ended rather than that its
    /// hub stopped.
    deleted: Arc<std::sync::atomic::AtomicBool>,
    /// The oldest seq the log still holds.
    earliest_retained: u64,
    turns: TurnQueue,
    permissions: Permissions,
    idle_since: Option<Instant>,
    /// A weak handle to this hub's own commands, to give connections the hub they joined.
    own: mpsc::WeakSender<Command>,
    /// Slow calls running off the loop, not yet reported back.
    in_flight: usize,
    /// Since when the hub has had no connection, no agent and no work.
    dormant_since: Option<Instant>,
    /// Set when the hub leaves memory (see [`crate::gateway`]'s hub table).
    evicted: bool,
    /// The lease this hub writes the log under, and its keeper.
    lease: Lease,
    keeper: Option<LeaseKeeper>,
    /// The answer to a delete, sent once the session is gone.
    deleting: Option<Reply<()>>,
}

/// Loads a session's state from the store and starts its hub.
pub(crate) async fn spawn(
    services: Arc<Services>,
    record: SessionRecord,
    lease: Lease,
    taken_at: Instant,
) -> Result<HubHandle, GatewayError> {
    let (log, ttl) = (services.log.clone(), services.config.lease_ttl);
    let keeper = LeaseKeeper::start(log, lease.clone(), taken_at, ttl);
    let session_id = record.info.id.clone();
    // A compacted log starts from the transcript kept in place of its dropped events.
    let mut reducer = match services.log.compacted(&session_id).await? {
        Some(transcript) => TranscriptReducer::resume(transcript),
        None => TranscriptReducer::new(&session_id),
    };
    let earliest_retained = match services.log.bounds(&session_id).await? {
        Some((earliest, _)) => earliest,
        None => reducer.transcript().through_seq + 1,
    };
    loop {
        let page = services
            .log
            .read(&session_id, reducer.transcript().through_seq, PAGE)
            .await?;
        for event in &page {
            if let Ok(ServerFrame::Event(envelope)) = serde_json::from_slice(&event.frame) {
                reducer.apply(&envelope);
            }
        }
        if page.len() < PAGE as usize {
            break;
        }
    }
    // The log says where each pending prompt got to; its stored state may lag behind.
    let transcript = reducer.transcript();
    let (mut queue, mut interrupted, mut unlogged, mut finished) =
        (VecDeque::new(), Vec::new(), Vec::new(), Vec::new());
    for prompt in services.store.pending_prompts(&session_id).await? {
        let id = Some(prompt.prompt_id.as_str());
        let waiting = (transcript.queued_prompts.iter()).any(|m| m.prompt_id.as_deref() == id);
        let seen = (transcript.messages.iter()).any(|m| m.prompt_id.as_deref() == id);
        if transcript.running_prompt_id.as_deref() == id {
            // A turn that was running when the previous hub stopped cannot be continued.
            interrupted.push(prompt);
        } else if waiting {
            queue.push_back(prompt);
        } else if seen {
            // Its turn ended in the log before its state was stored.
            finished.push(prompt.prompt_id);
        } else {
            // Admitted, but its message never reached the log.
            unlogged.push(prompt.clone());
            queue.push_back(prompt);
        }
    }

    let turns = TurnQueue::new(queue, services.config.max_queued_prompts);
    let (commands, command_receiver) = mpsc::channel(256);
    let (done, done_receiver) = mpsc::channel(64);
    let head_seq = record.info.head_seq;
    let mut hub = Hub {
        head_seq,
        fanout: FanOut::new(
            services.config.send_budget,
            services.config.presence_window,
            services.config.presence_list_limit,
        ),
        services,
        record,
        unpersisted: Vec::new(),
        staged_at: Default::default(),
        record_dirty: false,
        prompt_states: Vec::new(),
        writing: None,
        retry_at: None,
        written_seq: head_seq,
        last_user_message_seq: 0,
        answers: Vec::new(),
        next_age_check: None,
        reducer,
        lifecycle: Lifecycle::default(),
        updates: None,
        done,
        agent_endpoint: None,
        deleted: Arc::default(),
        earliest_retained,
        turns,
        permissions: Permissions::default(),
        idle_since: None,
        own: commands.downgrade(),
        in_flight: 0,
        dormant_since: None,
        evicted: false,
        deleting: None,
        lease,
        keeper: Some(keeper),
    };
    for prompt in interrupted {
        hub.append(Event::AgentError(AgentError {
            kind: "agent_exited".into(),
            message: "the gateway restarted while this turn ran".into(),
            prompt_id: Some(prompt.prompt_id.clone()),
            ..Default::default()
        }));
        hub.append(Event::TurnCancelled(TurnCancelled {
            prompt_id: prompt.prompt_id.clone(),
            ..Default::default()
        }));
        finished.push(prompt.prompt_id);
    }
    for prompt_id in finished {
        hub.stage_prompt_state(&prompt_id, PromptState::Done);
    }
    for prompt in &unlogged {
        hub.log_user_message(prompt);
    }
    if agent_should_run(hub.record.info.status) {
        hub.set_status(SessionStatus::Failed, "gateway_restarted")?;
    }
    hub.write_out().await?;
    let handle = HubHandle {
        commands,
        session_id: session_id.into(),
        deleted: hub.deleted.clone(),
        follows: None,
    };
    tokio::spawn(hub.run(command_receiver, done_receiver));
    Ok(handle)
}

async fn next_update(updates: &mut Option<mpsc::Receiver<AgentUpdate>>) -> Option<AgentUpdate> {
    match updates {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// Resolves once the hub's lease is lost, or never once its keeper stopped.
async fn lease_lost(keeper: &mut Option<LeaseKeeper>) {
    match keeper {
        Some(keeper) => keeper.lost().await,
        None => std::future::pending().await,
    }
}

/// Resolves at `deadline`, or never when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

impl Hub {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, mut done: mpsc::Receiver<Done>) {
        let session_id = self.record.info.id.clone();
        let mut heartbeat = tokio::time::interval(self.services.config.heartbeat_interval);
        loop {
            let deadline = self.next_deadline();
            let outcome: Result<bool, GatewayError> = tokio::select! {
                command = commands.recv() => match command {
                    None => Ok(false),
                    Some(command) => self.handle(command).await,
                },
                update = next_update(&mut self.updates) => self.on_update(update).await.map(|()| true),
                Some(done) = done.recv() => self.on_done(done).await,
                written = writes::written(&mut self.writing) => self.on_written(written).await.map(|()| true),
                () = tokio::time::sleep_until(deadline) => self.on_deadlines().await.map(|()| true),
                () = sleep_until(self.fanout.presence_due()) => {
                    self.announce_presence();
                    Ok(true)
                }
                _ = heartbeat.tick() => {
                    self.heartbeat();
                    Ok(true)
                }
                () = lease_lost(&mut self.keeper) => {
                    tracing::warn!(session_id, "the lease was taken over or not renewed in time; stopping");
                    Ok(false)
                }
            };
            // What this turn of the loop staged is written before the next one (a hub that
            // stops has written out already, or its session is gone).
            let outcome = match outcome {
                Ok(false) => Ok(false),
                outcome => outcome.and(self.write_through().await.map(|()| true)),
            };
            match outcome {
                Ok(true) => {}
                Ok(false) => break,
                // A busy store: the call fails, and the hub goes on.
                Err(error) if error.is_transient() => {
                    tracing::warn!(session_id, error = %error, "the store is busy");
                }
                Err(error) => {
                    tracing::error!(session_id, error = %error, "hub stopped on an error");
                    break;
                }
            }
            self.track_idleness();
            self.services
                .metrics
                .set_queued_prompts(&session_id, self.turns.waiting());
            if self.evicted {
                tracing::debug!(session_id, "hub evicted");
                let own = self.own_handle();
                super::leave(&self.services, own, &session_id, &mut commands).await;
                break;
            }
        }
        self.services.metrics.set_queued_prompts(&session_id, 0);
        self.services.metrics.set_connections(&session_id, 0);
        if self.lifecycle.runs() {
            let _ = self.services.provider.pause(&session_id).await;
        }
        // Another gateway may take the session at once.
        self.keeper = None;
        if let Err(error) = self.services.log.release(&self.lease).await {
            tracing::warn!(session_id, error = %error, "the lease was not released");
        }
        // Followers' clients reconnect once they hear, and find the session free to take.
        let deleted = self.deleted.load(std::sync::atomic::Ordering::SeqCst);
        self.announce(&SessionMessage::Ended { deleted });
        self.services.metrics.hub_stopped();
    }

    /// A handle to this hub, while anyone else holds one.
    pub(super) fn own_handle(&self) -> Option<HubHandle> {
        Some(HubHandle {
            commands: self.own.upgrade()?,
            session_id: self.record.info.id.as_str().into(),
            deleted: self.deleted.clone(),
            follows: None,
        })
    }

    // ----- work off the loop ----------------------------------------------------------------

    /// Runs a slow call as a task; what it reports comes back to [`Hub::on_done`].
    pub(super) fn off_the_loop(&mut self, work: impl Future<Output = Done> + Send + 'static) {
        self.in_flight += 1;
        let done = self.done.clone();
        tokio::spawn(async move {
            let _ = done.send(work.await).await;
        });
    }

    /// Handles what a slow call reported; false when the hub must stop.
    async fn on_done(&mut self, done: Done) -> Result<bool, GatewayError> {
        self.in_flight -= 1;
        match done {
            Done::Booted(result) => self.on_booted(result).await?,
            Done::Snapshot(result, reply) => {
                if let Ok(info) = &result {
                    self.append(Event::SnapshotSaved(SnapshotSaved {
                        snapshot_id: info.snapshot_id.clone(),
                        ..Default::default()
                    }));
                }
                self.answer_when_staged_written(reply, result);
            }
            Done::Prompted(prompt_id, result) => self.on_prompted(prompt_id, result).await?,
            Done::PermissionAnswered(answer, result) => {
                if self
                    .permissions
                    .delivered(&answer.permission_id, result.is_ok())
                {
                    let by = Some(answer.by);
                    self.log_resolved(&answer.permission_id, answer.decision, by, false);
                }
                self.answer_when_staged_written(answer.reply, result);
            }
            Done::Stopped(result) => self.on_stopped(result).await?,
            Done::Deleted(result) => {
                self.deleted
                    .store(result.is_ok(), std::sync::atomic::Ordering::SeqCst);
                if let Some(reply) = self.deleting.take() {
                    let _ = reply.send(result);
                }
                return Ok(false);
            }
        }
        Ok(true)
    }

    // ----- the log --------------------------------------------------------------------------

    /// Numbers an event and stages it; [`Hub::start_write`] stores it, then it is published.
    pub(super) fn append(&mut self, event: Event) {
        self.head_seq += 1;
        self.staged_at.push_back((self.head_seq, Instant::now()));
        let mut frame = ServerFrame::Event(EventEnvelope {
            session_id: self.record.info.id.clone(),
            seq: self.head_seq,
            timestamp: now_millis(),
            event,
            extra: Extra::new(),
        });
        let mut bytes = serde_json::to_vec(&frame).unwrap_or_default();
        let limit = self.services.config.max_event_bytes;
        if let ServerFrame::Event(envelope) = &mut frame
            && bytes.len() > limit
        {
            let room = limit.saturating_sub(ENVELOPE_BYTES);
            envelope.event = super::fit::fit(envelope.event.clone(), room);
            bytes = serde_json::to_vec(&frame).unwrap_or_default();
        }
        if let ServerFrame::Event(envelope) = &frame {
            self.reducer.apply(envelope);
        }
        self.unpersisted.push(StoredEvent {
            seq: self.head_seq,
            frame: Bytes::from(bytes),
        });
    }

    /// Sends a frame to every connection; those cut off for falling behind are announced as
    /// gone with the next `presence_changed`.
    pub(super) fn publish(&mut self, frame: &Frame) {
        let slow = self.fanout.publish(frame);
        if slow > 0 {
            self.services.metrics.slow_consumers_closed(slow);
            tracing::warn!(session_id = %self.record.info.id, slow, "closed slow consumers");
        }
    }

    /// Publishes one `presence_changed` with the joins and leaves gathered since the last.
    fn announce_presence(&mut self) {
        if let Some(frame) = self.fanout.take_presence_change() {
            self.publish(&frame);
            self.announce(&SessionMessage::Control(frame.bytes));
        }
    }

    /// Tells the gateways following the session, if there may be any.
    pub(super) fn announce(&self, message: &SessionMessage) {
        if let Some(relay) = &self.services.relay {
            relay.announce(&self.record.info.id, message);
        }
    }

    /// Moves the session to `status`, if the lifecycle allows; stored with the next flush.
    pub(super) fn set_status(
        &mut self,
        status: SessionStatus,
        reason: &str,
    ) -> Result<(), GatewayError> {
        check_transition(self.record.info.status, status)?;
        self.record.info.status = status;
        self.record.info.status_reason = Some(reason.to_owned());
        self.record.info.updated_at = now_millis();
        self.record_dirty = true;
        self.append(Event::StatusChanged(StatusChanged {
            status,
            reason: Some(reason.to_owned()),
            ..Default::default()
        }));
        tracing::info!(session_id = %self.record.info.id, status = status.as_str(), reason, "status");
        Ok(())
    }

    /// The session as it will be once what is staged is written.
    pub(super) fn info_as_staged(&self) -> SessionInfo {
        SessionInfo {
            head_seq: self.head_seq,
            ..self.record.info.clone()
        }
    }

    /// The session, with the newest seq its log holds.
    pub(super) fn info(&self) -> SessionInfo {
        SessionInfo {
            head_seq: self.written_seq,
            ..self.record.info.clone()
        }
    }

    // ----- timers ---------------------------------------------------------------------------

    fn next_deadline(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let idle = self
            .idle_since
            .map(|since| since + self.services.config.idle_grace);
        let cancel = self.turns.cancel_deadline();
        let eviction = self
            .dormant_since
            .map(|since| since + self.services.config.evict_after);
        (self.permissions.next_deadline().into_iter())
            .chain(idle)
            .chain(cancel)
            .chain(eviction)
            .chain(self.retry_at)
            .chain(self.admission_deadline())
            .min()
            .unwrap_or(far)
    }

    async fn on_deadlines(&mut self) -> Result<(), GatewayError> {
        let now = Instant::now();
        self.expire_admissions(now);
        let default = self.services.config.permission_default;
        for permission_id in self.permissions.expired(now) {
            if let Some(control) = self.lifecycle.agent() {
                let (control, id) = (control.clone(), permission_id.clone());
                let session_id = self.record.info.id.clone();
                tokio::spawn(async move {
                    if let Err(error) = control.reply_permission(&id, default).await {
                        tracing::warn!(session_id, error = %error, "default permission answer failed");
                    }
                });
            }
            self.resolve_permission(&permission_id, default, None, true);
        }
        if self
            .turns
            .cancel_deadline()
            .is_some_and(|deadline| deadline <= now)
        {
            self.end_turn(true);
        }
        if self
            .idle_since
            .is_some_and(|since| since + self.services.config.idle_grace <= now)
        {
            self.idle_since = None;
            self.pause("idle", None)?;
        }
        self.evicted = self
            .dormant_since
            .is_some_and(|since| since + self.services.config.evict_after <= now);
        // Prompts may wait on a turn that just ended, or on a flush the store refused.
        match self.lifecycle.agent() {
            Some(_) => self.advance().await,
            None => Ok(()),
        }
    }

    fn track_idleness(&mut self) {
        let idle = self.fanout.is_empty()
            && self.turns.is_idle()
            && self.record.info.status == SessionStatus::Running;
        if !idle {
            self.idle_since = None;
        } else if self.idle_since.is_none() {
            self.idle_since = Some(Instant::now());
        }
        let dormant = self.fanout.is_empty()
            && self.lifecycle.is_settled()
            && !agent_should_run(self.record.info.status)
            && self.in_flight == 0
            && self.turns.is_idle()
            && !self.unflushed();
        if !dormant {
            self.dormant_since = None;
        } else if self.dormant_since.is_none() {
            self.dormant_since = Some(Instant::now());
        }
    }

    /// Beats to every connection and to the gateways following the session, forgets the
    /// connections of gateways that stopped reporting them, and renews the running sandbox's
    /// token.
    fn heartbeat(&mut self) {
        let silence = self.services.config.heartbeat_interval * REMOTE_BEATS;
        if let Some(before) = Instant::now().checked_sub(silence) {
            self.fanout.expire_remote(before);
        }
        self.announce(&SessionMessage::Head(self.written_seq));
        if self.lifecycle.runs() {
            let lease = self.services.config.sandbox_token_lease();
            (self.services.authenticator).renew_sandbox_token(&self.record.info.id, lease);
        }
        if self.fanout.local_len() > 0 {
            let frame = Frame::control(&ServerFrame::Heartbeat(Heartbeat {
                head_seq: self.head_seq,
                ..Default::default()
            }));
            self.publish(&frame);
        }
    }
}
