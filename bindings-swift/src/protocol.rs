//! The protocol without I/O: conversion into the Swift records, decoding by type name, and the
//! transcript reducer.

use std::sync::Mutex;

use proliferate_client::protocol::v1;
use proliferate_client::{ClientError, TranscriptReducer as WireReducer, Update as WireUpdate};
use serde::{Serialize, de::DeserializeOwned};

use crate::error::{ProliferateError, bad_request};
use crate::records::{EventEnvelope, Update};
use crate::wire::Transcript;

/// Converts a protocol value into its Swift record through their shared JSON shape.
pub(crate) fn convert<T: DeserializeOwned>(value: &impl Serialize) -> Result<T, ProliferateError> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|error| ClientError::InvalidResponse(error.to_string()).into())
}

/// The Swift record of an event envelope; unknown event types keep their JSON.
pub(crate) fn envelope(wire: &v1::EventEnvelope) -> Result<EventEnvelope, ProliferateError> {
    Ok(EventEnvelope {
        session_id: wire.session_id.clone(),
        seq: wire.seq,
        timestamp: wire.timestamp,
        event_type: wire.event.type_name().to_owned(),
        event: convert(&wire.event)?,
        json: serde_json::to_string(wire)
            .map_err(|error| ClientError::InvalidResponse(error.to_string()))?,
    })
}

/// The Swift value of a connection update.
pub(crate) fn update(wire: &WireUpdate) -> Result<Update, ProliferateError> {
    Ok(match wire {
        WireUpdate::Connected(welcome) => Update::Connected {
            welcome: convert(welcome)?,
        },
        WireUpdate::Event(event) => Update::Event {
            envelope: envelope(event)?,
        },
        WireUpdate::ReplayDone(through_seq) => Update::ReplayDone {
            through_seq: *through_seq,
        },
        WireUpdate::Reset(reset) => Update::Reset {
            reason: reset.reason.clone(),
            transcript: convert(&reset.transcript)?,
        },
        WireUpdate::Presence(presence) => Update::Presence {
            connections: convert(&presence.connections)?,
        },
        WireUpdate::PresenceChanged(change) => Update::PresenceChanged {
            joined: convert(&change.joined)?,
            left: change.left.clone(),
            count: change.count,
        },
        WireUpdate::Reconnecting { attempt, reason } => Update::Reconnecting {
            attempt: *attempt,
            reason: reason.clone(),
        },
        WireUpdate::Unknown(frame) => Update::Unknown {
            json: frame.to_string(),
        },
    })
}

/// Decodes `json` as the named wire type and returns it re-encoded, as this version reads it.
/// Throws `bad_request` naming the problem when it does not decode.
#[uniffi::export]
pub fn normalize(type_name: String, json: String) -> Result<String, ProliferateError> {
    let value: serde_json::Value = serde_json::from_str(&json).map_err(bad_request)?;
    let normalized = v1::normalize(&type_name, &value).map_err(bad_request)?;
    Ok(normalized.to_string())
}

/// Decodes an event envelope (JSON text, with or without its frame's `type`) into its record.
#[uniffi::export]
pub fn decode_event_envelope(json: String) -> Result<EventEnvelope, ProliferateError> {
    envelope(&serde_json::from_str(&json).map_err(bad_request)?)
}

impl TranscriptReducer {
    fn reducer(&self) -> std::sync::MutexGuard<'_, WireReducer> {
        // The reducer never panics mid-update, so a poisoned lock still holds a whole transcript.
        self.reducer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Folds events into a transcript, exactly as the server does.
#[derive(uniffi::Object)]
pub struct TranscriptReducer {
    reducer: Mutex<WireReducer>,
}

#[uniffi::export]
impl TranscriptReducer {
    /// An empty transcript for `session_id`.
    #[uniffi::constructor]
    pub fn new(session_id: String) -> Self {
        Self {
            reducer: Mutex::new(WireReducer::new(session_id)),
        }
    }

    /// Applies one event; false when its seq was already folded.
    pub fn apply(&self, envelope: EventEnvelope) -> Result<bool, ProliferateError> {
        let wire: v1::EventEnvelope = serde_json::from_str(&envelope.json).map_err(bad_request)?;
        Ok(self.reducer().apply(&wire))
    }

    /// The transcript so far.
    pub fn transcript(&self) -> Result<Transcript, ProliferateError> {
        convert(self.reducer().transcript())
    }
}
