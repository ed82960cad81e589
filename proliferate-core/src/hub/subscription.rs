//! One connection's view of a session: the welcome, the backlog from the store, then live frames,
//! with no gap and no duplicate.
//!
//! The connection is registered with the hub (so live frames start queueing) before the backlog
//! is read; live frames are then forwarded only when their seq is above the last one sent.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use tokio::time::Instant;

use super::fanout::Frame;
use super::{Command, HubHandle, Outlet};
use crate::metrics::{Metrics, Stage};
use crate::protocol::v1::{ReplayDone, Reset, ServerFrame, Welcome};
use crate::quota::QuotaPermit;
use crate::store::EventLog;

/// How long a connection's writer gathers live frames into one write, per connection of the
/// session, up to [`MAX_GATHERING`]: a crowd costs each client a few writes (and wake-ups) per
/// window instead of one per event, while a lone client waits microseconds.
const GATHERING_PER_CONNECTION: Duration = Duration::from_micros(25);
/// The longest a live frame waits to be gathered with others.
const MAX_GATHERING: Duration = Duration::from_millis(25);

/// Events read from the store per page of replay.
const REPLAY_PAGE: u32 = 500;

/// Why a subscription ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionEnded {
    /// The connection fell behind its send budget; close it with 1013.
    #[error("slow consumer: the connection fell behind its send budget")]
    SlowConsumer,
    /// The session was deleted.
    #[error("the session ended")]
    SessionEnded,
    /// The session's hub stopped while the session lives on (a shutdown, a store fault);
    /// reconnecting resumes it.
    #[error("the session's stream was interrupted")]
    Interrupted,
    /// The backlog could not be read.
    #[error("reading the backlog failed: {0}")]
    Replay(String),
}

enum Phase {
    Welcome(Box<Welcome>),
    Start,
    Replay,
    ReplayDone,
    Live,
}

/// Frames for one connection, in the order to send them. Dropping it disconnects.
pub struct Subscription {
    phase: Phase,
    backlog: VecDeque<Bytes>,
    last_sent: u64,
    head_at_connect: u64,
    outlet: Outlet,
    overflow_fired: bool,
    overflow_closed: bool,
    log: Arc<dyn EventLog>,
    hub: HubHandle,
    connection_id: String,
    metrics: Arc<Metrics>,
    /// When the oldest live event taken since the last [`Subscription::sent`] was staged.
    unsent_since: Option<Instant>,
    /// This connection's place among its organisation's open streams.
    _place: QuotaPermit<String>,
}

fn encode(frame: &ServerFrame) -> Bytes {
    Bytes::from(serde_json::to_vec(frame).unwrap_or_default())
}

impl Subscription {
    pub(crate) fn new(
        welcome: Welcome,
        after_seq: u64,
        outlet: Outlet,
        log: Arc<dyn EventLog>,
        hub: HubHandle,
        place: QuotaPermit<String>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            head_at_connect: welcome.head_seq,
            connection_id: welcome.connection_id.clone(),
            phase: Phase::Welcome(Box::new(welcome)),
            backlog: VecDeque::new(),
            last_sent: after_seq,
            outlet,
            overflow_fired: false,
            overflow_closed: false,
            log,
            hub,
            metrics,
            unsent_since: None,
            _place: place,
        }
    }

    /// This connection's id.
    pub fn connection_id(&self) -> &str {
        &self.connection_id
    }

    /// The next frame to send. An error means the connection must close (see the variant).
    /// Cancel-safe: dropping the future loses no frame.
    pub async fn next(&mut self) -> Result<Bytes, SubscriptionEnded> {
        loop {
            if let Some(frame) = self.backlog.pop_front() {
                return Ok(frame);
            }
            match &self.phase {
                Phase::Welcome(_) => {
                    if let Phase::Welcome(welcome) =
                        std::mem::replace(&mut self.phase, Phase::Start)
                    {
                        return Ok(encode(&ServerFrame::Welcome(*welcome)));
                    }
                }
                // Boxed: they run once per connection or per page, and an idle connection's
                // task would otherwise hold room for them.
                Phase::Start => Box::pin(self.start()).await?,
                Phase::Replay => Box::pin(self.replay_page()).await?,
                Phase::ReplayDone => {
                    self.phase = Phase::Live;
                    return Ok(encode(&ServerFrame::ReplayDone(ReplayDone {
                        through_seq: self.last_sent,
                        ..Default::default()
                    })));
                }
                Phase::Live => return self.live().await,
            }
        }
    }

    /// Tells the subscription that the frames taken so far reached the socket, for the latency
    /// metrics.
    pub fn sent(&mut self) {
        if let Some(staged) = self.unsent_since.take() {
            self.metrics.observe(Stage::Sent, staged.elapsed());
        }
    }

    /// Takes a live frame's bytes, noting when it was staged.
    fn take(&mut self, frame: Frame) -> Bytes {
        self.last_sent = self.last_sent.max(frame.seq);
        if let Some(staged) = frame.staged {
            self.unsent_since.get_or_insert(staged);
        }
        frame.bytes
    }

    /// How long to gather live frames before writing: longer the more connections the session
    /// has, so the gateway's writes per second stay bounded whatever the crowd.
    pub fn gathering(&self) -> Duration {
        if !matches!(self.phase, Phase::Live) || !self.backlog.is_empty() {
            return Duration::ZERO;
        }
        let connections = self
            .outlet
            .connections
            .load(std::sync::atomic::Ordering::Relaxed);
        (GATHERING_PER_CONNECTION * connections as u32).min(MAX_GATHERING)
    }

    /// The next frame if one is ready now (of the backlog, or live); for coalescing writes.
    pub fn try_next(&mut self) -> Option<Bytes> {
        if let Some(frame) = self.backlog.pop_front() {
            return Some(frame);
        }
        if !matches!(self.phase, Phase::Live) || self.overflow_fired {
            return None;
        }
        while let Some(frame) = self.outlet.frames.try_recv() {
            if frame.seq == 0 || frame.seq > self.last_sent {
                return Some(self.take(frame));
            }
        }
        None
    }

    /// Resolves when the hub cut this connection off for overflowing its send budget.
    pub async fn overflowed(&mut self) {
        if self.overflow_closed || self.overflow_fired {
            return std::future::pending().await;
        }
        match (&mut self.outlet.overflow).await {
            Ok(()) => self.overflow_fired = true,
            Err(_) => {
                self.overflow_closed = true;
                std::future::pending().await
            }
        }
    }

    async fn start(&mut self) -> Result<(), SubscriptionEnded> {
        let bounds = self
            .log
            .bounds(&self.hub.session_id)
            .await
            .map_err(|error| SubscriptionEnded::Replay(error.to_string()))?;
        let earliest = bounds.map_or(self.head_at_connect + 1, |(first, _)| first);
        let reason = if self.last_sent > self.head_at_connect {
            Some("cursor_ahead")
        } else if earliest > self.last_sent + 1 && self.last_sent < self.head_at_connect {
            Some("cursor_expired")
        } else {
            None
        };
        let Some(reason) = reason else {
            self.phase = Phase::Replay;
            return Ok(());
        };
        let transcript = self
            .hub
            .ask(Command::Transcript)
            .await
            .map_err(|_| self.hub.ending())?;
        self.last_sent = transcript.through_seq;
        self.backlog.push_back(encode(&ServerFrame::Reset(Reset {
            reason: reason.into(),
            earliest_seq: earliest,
            transcript,
            ..Default::default()
        })));
        self.phase = Phase::ReplayDone;
        Ok(())
    }

    async fn replay_page(&mut self) -> Result<(), SubscriptionEnded> {
        let page = self
            .log
            .read(&self.hub.session_id, self.last_sent, REPLAY_PAGE)
            .await
            .map_err(|error| SubscriptionEnded::Replay(error.to_string()))?;
        self.phase = if page.len() < REPLAY_PAGE as usize {
            Phase::ReplayDone
        } else {
            Phase::Replay
        };
        for event in page {
            self.last_sent = event.seq;
            self.backlog.push_back(event.frame);
        }
        Ok(())
    }

    async fn live(&mut self) -> Result<Bytes, SubscriptionEnded> {
        if self.overflow_fired {
            return Err(SubscriptionEnded::SlowConsumer);
        }
        loop {
            let frame = tokio::select! {
                biased;
                signal = &mut self.outlet.overflow, if !self.overflow_closed => {
                    if signal.is_ok() {
                        self.overflow_fired = true;
                        return Err(SubscriptionEnded::SlowConsumer);
                    }
                    self.overflow_closed = true;
                    continue;
                }
                frame = self.outlet.frames.recv() => frame,
            };
            let Some(frame) = frame else {
                return Err(if self.overflow_fired {
                    SubscriptionEnded::SlowConsumer
                } else {
                    self.hub.ending()
                });
            };
            if frame.seq == 0 || frame.seq > self.last_sent {
                return Ok(self.take(frame));
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.disconnect(self.connection_id.clone());
    }
}
