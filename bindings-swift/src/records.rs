//! What the Swift API adds to the generated wire records (`wire.rs`): the event envelope with
//! its JSON, a connection's updates, and sandbox limits as a request carries them.

use crate::wire::{Event, PresenceEntry, SandboxLimits, Transcript, Welcome};

/// One durable event of a session.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct EventEnvelope {
    /// The session it belongs to.
    pub session_id: String,
    /// Its position in the session's log: 1, 2, 3...
    pub seq: u64,
    /// When the gateway recorded it, milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The event's `type` tag as on the wire, for example `text_delta`.
    pub event_type: String,
    /// What happened.
    pub event: Event,
    /// The whole envelope as JSON text, exactly as this version reads it.
    pub json: String,
}

impl From<SandboxLimits> for proliferate_client::protocol::v1::SandboxLimits {
    fn from(limits: SandboxLimits) -> Self {
        Self {
            memory_bytes: limits.memory_bytes,
            cpu_millicores: limits.cpu_millicores,
            processes: limits.processes,
            open_files: limits.open_files,
            disk_bytes: limits.disk_bytes,
            ..Self::default()
        }
    }
}

/// What a connection yields.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum Update {
    /// A (re)connection was accepted.
    Connected {
        /// Where the session is.
        welcome: Welcome,
    },
    /// A durable event: each seq once, in order, across reconnects.
    Event {
        /// The event.
        envelope: EventEnvelope,
    },
    /// The backlog is replayed; what follows is live.
    ReplayDone {
        /// The last seq of the backlog.
        through_seq: u64,
    },
    /// The cursor was too old: replace all state with this transcript.
    Reset {
        /// Why, for example `cursor_expired`.
        reason: String,
        /// The transcript to start again from.
        transcript: Transcript,
    },
    /// Everyone connected: the answer to `requestPresence`.
    Presence {
        /// Every open connection of the session.
        connections: Vec<PresenceEntry>,
    },
    /// Who joined and who left since the last change; apply it as set operations to the
    /// welcome's `connections` (a joined connection may already be there).
    PresenceChanged {
        /// Connections that opened.
        joined: Vec<PresenceEntry>,
        /// The ids of connections that closed.
        left: Vec<String>,
        /// How many connections the session has now; above the presence list limit the lists
        /// are empty and only this changes.
        count: u64,
    },
    /// The connection broke; it reconnects after a backoff and resumes without loss.
    Reconnecting {
        /// Failed attempts in a row so far.
        attempt: u32,
        /// Why the last socket ended.
        reason: String,
    },
    /// A frame this version does not know, as JSON text.
    Unknown {
        /// The frame.
        json: String,
    },
}
