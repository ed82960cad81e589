//! Fan-out: every connection gets the same serialized frames through its own bounded queue.
//!
//! Publishing never waits: a connection whose queue is full is cut off (its overflow signal
//! fires and it closes with 1013), so one slow client never delays the agent or anyone else.

use std::collections::HashMap;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::protocol::v1::{Presence, PresenceEntry, ServerFrame};

/// A serialized server frame; `seq` is 0 for control frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The event's seq, or 0 for a control frame.
    pub seq: u64,
    /// The frame's JSON, serialized once and shared.
    pub bytes: Bytes,
}

impl Frame {
    /// Serializes a control frame.
    pub fn control(frame: &ServerFrame) -> Self {
        Self {
            seq: 0,
            bytes: Bytes::from(serde_json::to_vec(frame).unwrap_or_default()),
        }
    }
}

/// What a connection receives from the hub.
pub(crate) struct Outlet {
    pub frames: mpsc::Receiver<Frame>,
    pub overflow: oneshot::Receiver<()>,
}

struct Connection {
    frames: mpsc::Sender<Frame>,
    overflow: Option<oneshot::Sender<()>>,
    presence: PresenceEntry,
}

/// The connections of one session.
pub(crate) struct FanOut {
    budget: usize,
    connections: HashMap<String, Connection>,
}

impl FanOut {
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            connections: HashMap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.connections.is_empty()
    }

    pub fn len(&self) -> usize {
        self.connections.len()
    }

    /// Adds a connection; frames published from now on reach it.
    pub fn add(&mut self, presence: PresenceEntry) -> Outlet {
        let (frames, receiver) = mpsc::channel(self.budget);
        let (overflow, overflow_receiver) = oneshot::channel();
        self.connections.insert(
            presence.connection_id.clone(),
            Connection {
                frames,
                overflow: Some(overflow),
                presence,
            },
        );
        Outlet {
            frames: receiver,
            overflow: overflow_receiver,
        }
    }

    /// Removes a connection; true if it was there.
    pub fn remove(&mut self, connection_id: &str) -> bool {
        self.connections.remove(connection_id).is_some()
    }

    /// Sends a frame to every connection. Returns how many were cut off for overflowing.
    pub fn publish(&mut self, frame: &Frame) -> usize {
        let mut slow = 0;
        self.connections.retain(
            |_, connection| match connection.frames.try_send(frame.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    if let Some(signal) = connection.overflow.take() {
                        let _ = signal.send(());
                    }
                    slow += 1;
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            },
        );
        slow
    }

    /// The presence frame for the current connections.
    pub fn presence(&self) -> Frame {
        let mut connections: Vec<PresenceEntry> = self
            .connections
            .values()
            .map(|connection| connection.presence.clone())
            .collect();
        connections.sort_by(|left, right| left.connection_id.cmp(&right.connection_id));
        Frame::control(&ServerFrame::Presence(Presence {
            connections,
            ..Default::default()
        }))
    }
}
