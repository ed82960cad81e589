//! A live connection to a session: a pull-based stream of updates that survives disconnects.
//!
//! One task owns the socket. It reconnects with jittered exponential backoff and resumes from the
//! last seq it yielded, so the application sees every event exactly once, in order, whatever
//! happens to the network. Prompts sent while disconnected wait and go out on the next socket;
//! their ids make a resend harmless.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{SinkExt, Stream, StreamExt};
use proliferate_core::protocol::v1::*;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::{Client, ClientError};

/// How a connection reconnects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Delay before the first retry.
    pub initial_delay: Duration,
    /// The longest delay between retries.
    pub max_delay: Duration,
    /// Give up after this many failed attempts in a row; `None` retries forever.
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            max_attempts: None,
        }
    }
}

/// Options of [`Client::connect`].
#[derive(Debug, Clone, Default)]
pub struct ConnectionOptions {
    /// Resume after this seq: the last one the application processed (0 replays everything).
    pub after_seq: u64,
    /// How to reconnect.
    pub reconnect: ReconnectPolicy,
}

/// What a connection yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// A (re)connection was accepted; the welcome says where the session is.
    Connected(Welcome),
    /// A durable event; each seq is yielded once, in order.
    Event(EventEnvelope),
    /// The backlog is replayed; what follows is live.
    ReplayDone(u64),
    /// The cursor was too old: replace all state with this transcript.
    Reset(Reset),
    /// Everyone connected: the answer to [`Connection::request_presence`].
    Presence(Presence),
    /// Who joined and who left since the last change. Apply it as set operations to the
    /// welcome's `connections`: a joined connection may already be there, a departed one may
    /// never have been.
    PresenceChanged(PresenceChange),
    /// The connection broke; it reconnects after a backoff.
    Reconnecting {
        /// Failed attempts in a row so far.
        attempt: u32,
        /// Why the last socket ended.
        reason: String,
    },
    /// A frame type this version does not know, kept as is.
    Unknown(serde_json::Value),
}

/// The update as one JSON object tagged on `type`: `connected` (`welcome`), `event` (`event`,
/// the envelope), `replay_done` (`through_seq`), `reset` (`reset`), `presence` (`presence`),
/// `presence_changed` (`presence_changed`), `reconnecting` (`attempt`, `reason`) or `unknown`
/// (`frame`). Bindings hand this shape to their languages.
impl serde::Serialize for Update {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        match self {
            Self::Connected(welcome) => {
                map.serialize_entry("type", "connected")?;
                map.serialize_entry("welcome", welcome)?;
            }
            Self::Event(envelope) => {
                map.serialize_entry("type", "event")?;
                map.serialize_entry("event", envelope)?;
            }
            Self::ReplayDone(through_seq) => {
                map.serialize_entry("type", "replay_done")?;
                map.serialize_entry("through_seq", through_seq)?;
            }
            Self::Reset(reset) => {
                map.serialize_entry("type", "reset")?;
                map.serialize_entry("reset", reset)?;
            }
            Self::Presence(presence) => {
                map.serialize_entry("type", "presence")?;
                map.serialize_entry("presence", presence)?;
            }
            Self::PresenceChanged(change) => {
                map.serialize_entry("type", "presence_changed")?;
                map.serialize_entry("presence_changed", change)?;
            }
            Self::Reconnecting { attempt, reason } => {
                map.serialize_entry("type", "reconnecting")?;
                map.serialize_entry("attempt", attempt)?;
                map.serialize_entry("reason", reason)?;
            }
            Self::Unknown(frame) => {
                map.serialize_entry("type", "unknown")?;
                map.serialize_entry("frame", frame)?;
            }
        }
        map.end()
    }
}

/// Options of [`Connection::send_prompt`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromptOptions {
    /// The prompt's id; a retry with the same id never runs twice. Generated when absent.
    pub prompt_id: Option<String>,
    /// Attached images, as `data:` URIs or URLs.
    pub images: Vec<String>,
}

type AdmissionReply = oneshot::Sender<Result<PromptAdmission, ClientError>>;

enum Command {
    Prompt(Prompt, AdmissionReply),
    RequestPresence,
    Close,
}

/// A live connection to one session. Read it with [`Connection::next`] or as a `Stream`. Every
/// call takes `&self`, so one task may wait in `next` while others send prompts (share it in an
/// `Arc`). Dropping it closes the socket and stops reconnecting.
pub struct Connection {
    client: Client,
    session_id: String,
    updates: tokio::sync::Mutex<Updates>,
    commands: mpsc::Sender<Command>,
    /// The cursor: the seq of the last event the application took.
    consumed: AtomicU64,
    /// The seq of the last event the worker received.
    received: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

/// The updates the worker has sent and the application has not taken yet.
struct Updates {
    receiver: mpsc::Receiver<Result<Update, ClientError>>,
    /// The final error, held back while the updates before it go out as a batch.
    failure: Option<ClientError>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Connection {
    pub(crate) fn open(client: Client, session_id: String, options: ConnectionOptions) -> Self {
        let (updates_sender, updates) = mpsc::channel(1024);
        let (commands, command_receiver) = mpsc::channel(64);
        let received = Arc::new(AtomicU64::new(options.after_seq));
        let task = tokio::spawn(
            Worker {
                client: client.clone(),
                session_id: session_id.clone(),
                policy: options.reconnect,
                updates: updates_sender,
                commands: command_receiver,
                received: received.clone(),
                pending: HashMap::new(),
            }
            .run(),
        );
        Self {
            client,
            session_id,
            updates: tokio::sync::Mutex::new(Updates {
                receiver: updates,
                failure: None,
            }),
            commands,
            consumed: AtomicU64::new(options.after_seq),
            received,
            task,
        }
    }

    /// Moves the cursor past what the application takes now.
    fn consume(
        &self,
        update: Option<Result<Update, ClientError>>,
    ) -> Option<Result<Update, ClientError>> {
        if let Some(Ok(update)) = &update {
            self.advance(update);
        }
        update
    }

    fn advance(&self, update: &Update) {
        match update {
            Update::Event(envelope) => self.consumed.store(envelope.seq, Ordering::Release),
            Update::Reset(reset) => self
                .consumed
                .store(reset.transcript.through_seq, Ordering::Release),
            _ => {}
        }
    }

    /// The next update; `None` once the connection is closed. An error is final. Concurrent
    /// callers take turns, each update going to one of them.
    pub async fn next(&self) -> Option<Result<Update, ClientError>> {
        let mut updates = self.updates.lock().await;
        match updates.failure.take() {
            Some(error) => Some(Err(error)),
            None => self.consume(updates.receiver.recv().await),
        }
    }

    /// The next updates, at most `limit`: waits for one, then takes those already received
    /// behind it, so a backlog crosses into another language in a few calls rather than one per
    /// update. `None` once the connection is closed; an error is final and comes alone, after
    /// the updates received before it.
    pub async fn next_batch(&self, limit: usize) -> Option<Result<Vec<Update>, ClientError>> {
        let mut updates = self.updates.lock().await;
        if let Some(error) = updates.failure.take() {
            return Some(Err(error));
        }
        let mut batch = match updates.receiver.recv().await? {
            Ok(update) => vec![update],
            Err(error) => return Some(Err(error)),
        };
        while batch.len() < limit {
            match updates.receiver.try_recv() {
                Ok(Ok(update)) => batch.push(update),
                Ok(Err(error)) => {
                    updates.failure = Some(error);
                    break;
                }
                Err(_) => break,
            }
        }
        batch.iter().for_each(|update| self.advance(update));
        Some(Ok(batch))
    }

    /// The seq of the last event this connection yielded (or of the last reset's transcript):
    /// the checkpoint to save and resume from with [`ConnectionOptions::after_seq`]. Events
    /// received but not yet taken are not counted, so resuming from it loses nothing.
    pub fn last_seq(&self) -> u64 {
        self.consumed.load(Ordering::Acquire)
    }

    /// The seq of the last event received from the gateway; `received_seq() - last_seq()`
    /// events wait to be taken.
    pub fn received_seq(&self) -> u64 {
        self.received.load(Ordering::Acquire)
    }

    /// The session this connection follows.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Sends a prompt and waits for its admission. Survives reconnects: the prompt is resent
    /// with the same id until the gateway answers.
    pub async fn send_prompt(
        &self,
        content: impl Into<String>,
        options: PromptOptions,
    ) -> Result<PromptAdmission, ClientError> {
        let prompt = Prompt {
            prompt_id: options
                .prompt_id
                .unwrap_or_else(|| format!("prm_{}", uuid::Uuid::new_v4().simple())),
            content: content.into(),
            images: options.images,
        };
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Prompt(prompt, reply))
            .await
            .map_err(|_| ClientError::Closed("the connection is closed".into()))?;
        let timeout = self.client.settings().request_timeout;
        tokio::time::timeout(timeout, answer)
            .await
            .map_err(|_| ClientError::Timeout("no admission for the prompt".into()))?
            .map_err(|_| ClientError::Closed("the connection is closed".into()))?
    }

    /// Cancels the running turn; false when none ran.
    pub async fn cancel(&self) -> Result<bool, ClientError> {
        self.client.cancel(&self.session_id).await
    }

    /// Withdraws a queued prompt.
    pub async fn cancel_queued(&self, prompt_id: &str) -> Result<(), ClientError> {
        self.client.cancel_queued(&self.session_id, prompt_id).await
    }

    /// Answers a permission request.
    pub async fn reply_permission(
        &self,
        permission_id: &str,
        decision: PermissionDecision,
    ) -> Result<(), ClientError> {
        self.client
            .reply_permission(&self.session_id, permission_id, decision)
            .await
    }

    /// Asks the gateway for everyone connected; the answer arrives as an [`Update::Presence`].
    /// While disconnected nothing is sent: the next welcome lists everyone.
    pub async fn request_presence(&self) -> Result<(), ClientError> {
        self.commands
            .send(Command::RequestPresence)
            .await
            .map_err(|_| ClientError::Closed("the connection is closed".into()))
    }

    /// Closes the socket and stops reconnecting; `next` then returns `None`.
    pub async fn close(&self) {
        let _ = self.commands.send(Command::Close).await;
    }
}

impl Stream for Connection {
    type Item = Result<Update, ClientError>;

    fn poll_next(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let next = match this.updates.get_mut().failure.take() {
            Some(error) => Some(Err(error)),
            None => std::task::ready!(this.updates.get_mut().receiver.poll_recv(context)),
        };
        Poll::Ready(this.consume(next))
    }
}

/// How a socket ended.
enum Ended {
    /// Reconnect.
    Retry(String),
    /// Reconnect at once with a fresh token.
    TokenExpired,
    /// Stop with this error.
    Fatal(ClientError),
    /// Stop quietly: the application closed or went away.
    Stopped,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Worker {
    client: Client,
    session_id: String,
    policy: ReconnectPolicy,
    updates: mpsc::Sender<Result<Update, ClientError>>,
    commands: mpsc::Receiver<Command>,
    /// Where the next socket resumes: the last seq received, since what is queued is kept.
    received: Arc<AtomicU64>,
    pending: HashMap<String, (Prompt, Vec<AdmissionReply>)>,
}

fn api_error(code: ErrorCode, message: impl Into<String>) -> ClientError {
    ClientError::Api {
        code,
        message: message.into(),
        status: None,
    }
}

impl Worker {
    async fn run(mut self) {
        let mut attempt = 0u32;
        let mut refresh = false;
        loop {
            let ended = match self.open(refresh).await {
                Ok(socket) => {
                    attempt = 0;
                    refresh = false;
                    self.session(socket).await
                }
                Err(ended) => ended,
            };
            let reason = match ended {
                Ended::Stopped => return,
                Ended::Fatal(error) => {
                    let _ = self.updates.send(Err(error)).await;
                    return;
                }
                Ended::TokenExpired if !refresh && self.client.settings().auth.can_refresh() => {
                    refresh = true;
                    continue;
                }
                Ended::TokenExpired => {
                    let error = api_error(
                        ErrorCode::TokenExpired,
                        "the token expired and no fresh one is available",
                    );
                    let _ = self.updates.send(Err(error)).await;
                    return;
                }
                Ended::Retry(reason) => reason,
            };
            attempt += 1;
            if self.policy.max_attempts.is_some_and(|max| attempt > max) {
                let error = ClientError::Closed(format!(
                    "gave up after {} attempts: {reason}",
                    attempt - 1
                ));
                let _ = self.updates.send(Err(error)).await;
                return;
            }
            tracing::debug!(session_id = %self.session_id, attempt, reason, "reconnecting");
            if self
                .updates
                .send(Ok(Update::Reconnecting { attempt, reason }))
                .await
                .is_err()
            {
                return;
            }
            if !self.wait(self.backoff(attempt)).await {
                return;
            }
        }
    }

    /// Exponential backoff with full jitter in its upper half.
    fn backoff(&self, attempt: u32) -> Duration {
        let exponential = self
            .policy
            .initial_delay
            .saturating_mul(1 << attempt.min(16).saturating_sub(1));
        let capped = exponential.min(self.policy.max_delay);
        capped.mul_f64(0.5 + fastrand::f64() / 2.0)
    }

    /// Sleeps, still taking prompts; false if the application closed meanwhile.
    async fn wait(&mut self, delay: Duration) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return true,
                command = self.commands.recv() => match command {
                    Some(Command::Prompt(prompt, reply)) => self.remember(prompt, reply),
                    // The next welcome lists everyone.
                    Some(Command::RequestPresence) => {}
                    Some(Command::Close) | None => return false,
                },
            }
        }
    }

    fn remember(&mut self, prompt: Prompt, reply: AdmissionReply) {
        self.pending
            .entry(prompt.prompt_id.clone())
            .or_insert_with(|| (prompt, Vec::new()))
            .1
            .push(reply);
    }

    async fn open(&self, refresh: bool) -> Result<Socket, Ended> {
        let settings = self.client.settings();
        let token = settings.auth.token(refresh).await.map_err(Ended::Fatal)?;
        let url = format!(
            "{}/v1/sessions/{}/ws?after_seq={}&source={}",
            settings.base_url.replacen("http", "ws", 1),
            self.session_id,
            self.received.load(Ordering::Acquire),
            settings.source,
        );
        let mut request = url
            .into_client_request()
            .map_err(|error| Ended::Fatal(ClientError::Config(error.to_string())))?;
        let authorization = format!("Bearer {token}").parse().map_err(|_| {
            Ended::Fatal(ClientError::Config(
                "the token is not a valid header".into(),
            ))
        })?;
        request.headers_mut().insert("authorization", authorization);
        let connect = tokio_tungstenite::connect_async(request);
        match tokio::time::timeout(settings.request_timeout, connect).await {
            Err(_) => Err(Ended::Retry("connecting timed out".into())),
            Ok(Ok((socket, _))) => Ok(socket),
            Ok(Err(tungstenite::Error::Http(response))) => {
                let problem = response
                    .body()
                    .as_deref()
                    .and_then(|body| serde_json::from_slice::<Problem>(body).ok());
                let status = response.status().as_u16();
                match problem {
                    Some(problem) if problem.code == ErrorCode::TokenExpired => {
                        Err(Ended::TokenExpired)
                    }
                    Some(problem) if status < 500 => {
                        Err(Ended::Fatal(ClientError::from_problem(problem)))
                    }
                    _ => Err(Ended::Retry(format!("the gateway answered HTTP {status}"))),
                }
            }
            Ok(Err(error)) => Err(Ended::Retry(error.to_string())),
        }
    }

    async fn send_frame(socket: &mut Socket, frame: &ClientFrame) -> bool {
        let text = serde_json::to_string(frame).unwrap_or_default();
        socket.send(Message::text(text)).await.is_ok()
    }

    async fn session(&mut self, mut socket: Socket) -> Ended {
        let settings = self.client.settings().clone();
        let mut liveness = settings.liveness_timeout.unwrap_or(Duration::from_secs(45));
        let mut ping = tokio::time::interval(liveness / 3);
        ping.reset();
        loop {
            tokio::select! {
                message = tokio::time::timeout(liveness, socket.next()) => {
                    let message = match message {
                        Err(_) => return Ended::Retry("nothing received within the liveness timeout".into()),
                        Ok(None) => return Ended::Retry("the connection closed".into()),
                        Ok(Some(Err(error))) => return Ended::Retry(error.to_string()),
                        Ok(Some(Ok(message))) => message,
                    };
                    match message {
                        Message::Text(text) => {
                            let frame = match serde_json::from_str::<ServerFrame>(&text) {
                                Ok(frame) => frame,
                                Err(error) => {
                                    tracing::warn!(error = %error, "skipped an unreadable frame");
                                    continue;
                                }
                            };
                            if let ServerFrame::Welcome(welcome) = &frame {
                                let interval = Duration::from_millis(welcome.heartbeat_interval_ms.max(100));
                                liveness = settings.liveness_timeout.unwrap_or(interval * 3);
                                ping = tokio::time::interval(interval);
                                ping.reset();
                                for (prompt, _) in self.pending.values() {
                                    if !Self::send_frame(&mut socket, &ClientFrame::Prompt(prompt.clone())).await {
                                        return Ended::Retry("sending failed".into());
                                    }
                                }
                            }
                            if let Some(update) = self.handle(frame)
                                && self.updates.send(Ok(update)).await.is_err() {
                                    return Ended::Stopped;
                                }
                        }
                        Message::Close(close) => return Self::closed(close),
                        _ => {}
                    }
                }
                command = self.commands.recv() => match command {
                    Some(Command::Prompt(prompt, reply)) => {
                        let frame = ClientFrame::Prompt(prompt.clone());
                        self.remember(prompt, reply);
                        if !Self::send_frame(&mut socket, &frame).await {
                            return Ended::Retry("sending failed".into());
                        }
                    }
                    Some(Command::RequestPresence) => {
                        let frame = ClientFrame::Presence(PresenceRequest {});
                        if !Self::send_frame(&mut socket, &frame).await {
                            return Ended::Retry("sending failed".into());
                        }
                    }
                    Some(Command::Close) | None => {
                        let _ = socket.close(None).await;
                        return Ended::Stopped;
                    }
                },
                _ = ping.tick() => {
                    if !Self::send_frame(&mut socket, &ClientFrame::Ping(Ping::default())).await {
                        return Ended::Retry("sending failed".into());
                    }
                }
            }
        }
    }

    /// Turns a server frame into what the application sees, if anything.
    fn handle(&mut self, frame: ServerFrame) -> Option<Update> {
        match frame {
            ServerFrame::Event(envelope) => {
                let last = self.received.load(Ordering::Acquire);
                (envelope.seq > last).then(|| {
                    self.received.store(envelope.seq, Ordering::Release);
                    Update::Event(envelope)
                })
            }
            ServerFrame::Welcome(welcome) => Some(Update::Connected(welcome)),
            ServerFrame::ReplayDone(done) => Some(Update::ReplayDone(done.through_seq)),
            ServerFrame::Reset(reset) => {
                self.received
                    .store(reset.transcript.through_seq, Ordering::Release);
                Some(Update::Reset(reset))
            }
            ServerFrame::Presence(presence) => Some(Update::Presence(presence)),
            ServerFrame::PresenceChanged(change) => Some(Update::PresenceChanged(change)),
            ServerFrame::PromptAdmitted(admission) => {
                if let Some((_, replies)) = self.pending.remove(&admission.prompt_id) {
                    for reply in replies {
                        let _ = reply.send(Ok(admission.clone()));
                    }
                }
                None
            }
            ServerFrame::Error(error) => {
                let pending = error
                    .prompt_id
                    .as_ref()
                    .and_then(|id| self.pending.remove(id));
                match pending {
                    Some((_, replies)) => {
                        for reply in replies {
                            let _ = reply
                                .send(Err(api_error(error.code.clone(), error.message.clone())));
                        }
                    }
                    None => tracing::warn!(code = %error.code, "the gateway refused a frame"),
                }
                None
            }
            ServerFrame::Heartbeat(_) | ServerFrame::Pong(_) => None,
            ServerFrame::Unknown(raw) => Some(Update::Unknown(raw)),
        }
    }

    fn closed(close: Option<tungstenite::protocol::CloseFrame>) -> Ended {
        let Some(close) = close else {
            return Ended::Retry("the gateway closed the connection".into());
        };
        let reason = close.reason.to_string();
        match close.code {
            CloseCode::Normal => Ended::Fatal(ClientError::Closed(format!(
                "the gateway closed the connection: {reason}"
            ))),
            CloseCode::Policy if reason == "token_expired" => Ended::TokenExpired,
            CloseCode::Policy => Ended::Fatal(api_error(
                ErrorCode::parse(&reason),
                "the gateway refused the connection",
            )),
            _ => Ended::Retry(format!("closed with {}: {reason}", u16::from(close.code))),
        }
    }
}
