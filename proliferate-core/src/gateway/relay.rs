//! Gateways on one bus: requests for the hub another gateway runs, and their answers.
//!
//! A gateway asked about a session that another gateway runs follows it
//! ([`crate::hub::follower`]) and sends that gateway a request for each command that needs the
//! session's hub. A request unanswered after [`RESEND_AFTER`] is sent again under the same id; the
//! running gateway runs each id once and answers a repeat with the answer it gave, so a prompt, a
//! cancel or a permission answer takes effect exactly once however the bus loses messages.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::Services;
use crate::GatewayError;
use crate::bus::seal::Seal;
use crate::bus::wire::{Attachment, GatewayMessage, Op, Refusal, SessionMessage};
use crate::bus::{Bus, BusSubscription, gateway_subject, session_subject};
use crate::hub::{Command, Reply};
use crate::protocol::v1::PresenceEntry;

/// How long a request waits for its answer before it is sent again.
pub(crate) const RESEND_AFTER: Duration = Duration::from_secs(2);
/// How long a gateway remembers a request it ran, for repeats: longer than any sender resends.
const REMEMBERED_FOR: Duration = Duration::from_secs(120);
/// How often the listener checks its gateway is still there.
const LIVENESS_CHECK: Duration = Duration::from_secs(1);

type Answer = Result<serde_json::Value, Refusal>;

/// Requests this gateway ran: in flight (`None`) or answered, and when each came.
#[derive(Default)]
struct Handled {
    answers: HashMap<String, Option<Bytes>>,
    order: VecDeque<(tokio::time::Instant, String)>,
}

/// This gateway's side of the bus.
pub(crate) struct Relay {
    bus: Arc<dyn Bus>,
    seal: Seal,
    gateway_id: String,
    /// Requests sent, waiting for their answers, by id.
    pending: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    handled: Mutex<Handled>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

fn encode(message: &GatewayMessage) -> Bytes {
    Bytes::from(serde_json::to_vec(message).unwrap_or_default())
}

impl Relay {
    pub fn new(bus: Arc<dyn Bus>, seal: Seal, gateway_id: &str) -> Self {
        Self {
            bus,
            seal,
            gateway_id: gateway_id.to_owned(),
            pending: Mutex::default(),
            handled: Mutex::default(),
        }
    }

    /// Publishes `body`, sealed, on `subject`.
    fn publish(&self, subject: &str, body: &[u8]) {
        self.bus.publish(subject, self.seal.seal(body));
    }

    /// The body of a message read from the bus, if a gateway sealed it.
    pub fn open(&self, message: Bytes) -> Option<Bytes> {
        let body = self.seal.open(message);
        if body.is_none() {
            tracing::warn!("a message on the bus was not sealed by a gateway; dropped");
        }
        body
    }

    /// Publishes a message on a session's subject.
    pub fn announce(&self, session_id: &str, message: &SessionMessage) {
        self.publish(&session_subject(session_id), &message.encode());
    }

    /// Subscribes to a session's subject.
    pub async fn follow(&self, session_id: &str) -> Result<BusSubscription, GatewayError> {
        (self.bus.subscribe(&session_subject(session_id)).await)
            .map_err(|error| GatewayError::Unavailable(error.to_string()))
    }

    /// Tells `owner` which connections this gateway holds on the session.
    pub fn report(&self, owner: &str, session_id: &str, connections: Vec<PresenceEntry>) {
        let message = GatewayMessage::Connections {
            from: self.gateway_id.clone(),
            session_id: session_id.to_owned(),
            connections,
        };
        self.publish(&gateway_subject(owner), &encode(&message));
    }

    /// Asks `owner` to run `op` on the session's hub, sending again until answered or
    /// `patience` runs out.
    pub async fn ask<T: DeserializeOwned>(
        &self,
        owner: &str,
        session_id: &str,
        op: Op,
        patience: Duration,
    ) -> Result<T, GatewayError> {
        let id = format!("req_{}", uuid::Uuid::now_v7().simple());
        let (answer, mut answered) = oneshot::channel();
        lock(&self.pending).insert(id.clone(), answer);
        let request = encode(&GatewayMessage::Request {
            id: id.clone(),
            from: self.gateway_id.clone(),
            session_id: session_id.to_owned(),
            op,
        });
        let deadline = tokio::time::Instant::now() + patience;
        let answer = loop {
            self.publish(&gateway_subject(owner), &request);
            let wait = RESEND_AFTER.min(deadline - tokio::time::Instant::now());
            match tokio::time::timeout(wait, &mut answered).await {
                Ok(answer) => break answer.ok(),
                Err(_) if tokio::time::Instant::now() < deadline => continue,
                Err(_) => break None,
            }
        };
        lock(&self.pending).remove(&id);
        let Some(answer) = answer else {
            return Err(GatewayError::Unavailable(format!(
                "gateway {owner}, which runs session {session_id}, did not answer"
            )));
        };
        let value = answer.map_err(GatewayError::from)?;
        serde_json::from_value(value).map_err(|error| {
            GatewayError::Unavailable(format!(
                "gateway {owner} answered in a form not known here: {error}"
            ))
        })
    }

    /// Notes a request as taken; false if it was taken before (its answer, if any, is sent again).
    fn take(&self, id: &str, from: &str) -> bool {
        let mut handled = lock(&self.handled);
        if let Some(answer) = handled.answers.get(id) {
            if let Some(answer) = answer {
                self.publish(&gateway_subject(from), answer);
            }
            return false;
        }
        let now = tokio::time::Instant::now();
        handled.answers.insert(id.to_owned(), None);
        handled.order.push_back((now, id.to_owned()));
        while let Some((at, _)) = handled.order.front()
            && now.duration_since(*at) > REMEMBERED_FOR
        {
            if let Some((_, oldest)) = handled.order.pop_front() {
                handled.answers.remove(&oldest);
            }
        }
        true
    }

    /// Sends the answer to a request this gateway ran, and remembers it for repeats.
    fn answer(&self, id: String, from: &str, result: Answer) {
        let message = encode(&GatewayMessage::Answer {
            id: id.clone(),
            result,
        });
        if let Some(slot) = lock(&self.handled).answers.get_mut(&id) {
            *slot = Some(message.clone());
        }
        self.publish(&gateway_subject(from), &message);
    }
}

/// Serves this gateway's subject until the gateway is dropped: runs requests on the hubs it
/// runs, routes answers to their requests, and hands connection reports to the hubs.
pub(crate) async fn listen(services: Weak<Services>, mut inbox: BusSubscription) {
    let mut alive = tokio::time::interval(LIVENESS_CHECK);
    loop {
        let bytes = tokio::select! {
            bytes = inbox.next() => match bytes {
                Some(bytes) => bytes,
                None => return,
            },
            // A gateway dropped or shut down with nothing arriving still lets its bus go.
            _ = alive.tick() => {
                let gone = services.upgrade().is_none_or(|s| s.stopped.load(Ordering::SeqCst));
                match gone {
                    true => return,
                    false => continue,
                }
            }
        };
        let Some(services) = services.upgrade() else {
            return;
        };
        let Some(relay) = services.relay.as_ref() else {
            return;
        };
        if services.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Some(bytes) = relay.open(bytes) else {
            continue;
        };
        let message = match serde_json::from_slice::<GatewayMessage>(&bytes) {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(error = %error, "a message on the bus was not understood");
                continue;
            }
        };
        match message {
            GatewayMessage::Answer { id, result } => {
                if let Some(waiting) = lock(&relay.pending).remove(&id) {
                    let _ = waiting.send(result);
                }
            }
            GatewayMessage::Request {
                id,
                from,
                session_id,
                op,
            } => {
                if relay.take(&id, &from) {
                    tokio::spawn(async move {
                        let result = run(&services, &session_id, op).await;
                        let result = result.map_err(|error| Refusal::from(&error));
                        if let Some(relay) = services.relay.as_ref() {
                            relay.answer(id, &from, result);
                        }
                    });
                }
            }
            // Only a hub running here takes them, in the order they came: a report never starts
            // one, and one dropped for want of room is made good by the next.
            GatewayMessage::Connections {
                from,
                session_id,
                connections,
            } => {
                if let Some(hub) = services.running_hub(&session_id) {
                    hub.offer(Command::Remote(from, connections));
                }
            }
        }
    }
}

/// Asks the hub this gateway runs, and gives its answer as JSON.
async fn ask<T: Serialize>(
    services: &Arc<Services>,
    session_id: &str,
    command: impl FnOnce(Reply<T>) -> Command,
) -> Result<serde_json::Value, GatewayError> {
    let answer = services.ask_here(session_id, command).await?;
    serde_json::to_value(answer).map_err(|error| GatewayError::Unavailable(error.to_string()))
}

/// Runs a request on the session's hub, which must be this gateway's.
async fn run(
    services: &Arc<Services>,
    session_id: &str,
    op: Op,
) -> Result<serde_json::Value, GatewayError> {
    match op {
        Op::Attach => {
            let info = services.ask_here(session_id, Command::Info).await?;
            let presence = services.ask_here(session_id, Command::Presence).await?;
            // A client may watch a session its organisation has no room to run.
            if let Err(error) = services.ask_here(session_id, Command::Boot).await {
                tracing::info!(session_id, error = %error, "not resumed on connect");
            }
            let attachment = Attachment {
                status: info.status,
                connections: presence.connections,
            };
            serde_json::to_value(attachment)
                .map_err(|error| GatewayError::Unavailable(error.to_string()))
        }
        Op::Boot => ask(services, session_id, Command::Boot).await,
        Op::Prompt { prompt } => ask(services, session_id, |r| Command::Prompt(prompt, r)).await,
        Op::CancelQueued { prompt_id, by } => {
            ask(services, session_id, |r| {
                Command::CancelQueued(prompt_id, by, r)
            })
            .await
        }
        Op::Cancel { by } => ask(services, session_id, |r| Command::Cancel(by, r)).await,
        Op::ReplyPermission {
            permission_id,
            decision,
            by,
        } => {
            let command = |r| Command::ReplyPermission(permission_id, decision, by, r);
            ask(services, session_id, command).await
        }
        Op::Pause => ask(services, session_id, Command::Pause).await,
        Op::Resume => ask(services, session_id, Command::Resume).await,
        Op::Snapshot => ask(services, session_id, Command::Snapshot).await,
        Op::Transcript => ask(services, session_id, Command::Transcript).await,
        Op::Presence => ask(services, session_id, Command::Presence).await,
        Op::Info => ask(services, session_id, Command::Info).await,
        Op::Terminate => ask(services, session_id, Command::Terminate).await,
    }
}
