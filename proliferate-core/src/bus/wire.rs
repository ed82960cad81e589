//! What gateways say to each other on the bus.
//!
//! On a session's subject, the gateway running the session publishes [`SessionMessage`]s in a
//! compact binary form (the event frames inside are the bytes clients receive). On a gateway's
//! subject, gateways send [`GatewayMessage`]s as JSON: requests for the hub a gateway runs,
//! their answers, and reports of the connections a gateway holds on a session.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::GatewayError;
use crate::protocol::v1::{ErrorCode, PermissionDecision, PresenceEntry, Sender, SessionStatus};
use crate::store::PromptRecord;

/// What the gateway running a session publishes on the session's subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionMessage {
    /// Events now in the log, by seq, each as the frame clients receive.
    Events(Vec<(u64, Bytes)>),
    /// A control frame for every connection (`presence_changed`).
    Control(Bytes),
    /// The newest seq in the log, beaten every heartbeat so a lost last message is noticed.
    Head(u64),
    /// The session's hub stopped: the session was deleted, or another gateway may take it.
    Ended {
        /// True when the session was deleted.
        deleted: bool,
    },
}

const EVENTS: u8 = b'E';
const CONTROL: u8 = b'C';
const HEAD: u8 = b'H';
const ENDED: u8 = b'X';

impl SessionMessage {
    /// The message as published.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self {
            Self::Events(events) => {
                out.put_u8(EVENTS);
                for (seq, frame) in events {
                    out.put_u64(*seq);
                    out.put_u32(frame.len() as u32);
                    out.put_slice(frame);
                }
            }
            Self::Control(frame) => {
                out.put_u8(CONTROL);
                out.put_slice(frame);
            }
            Self::Head(seq) => {
                out.put_u8(HEAD);
                out.put_u64(*seq);
            }
            Self::Ended { deleted } => {
                out.put_u8(ENDED);
                out.put_u8(u8::from(*deleted));
            }
        }
        out.freeze()
    }

    /// Reads a published message; `None` if it is not one.
    pub fn decode(mut bytes: Bytes) -> Option<Self> {
        if bytes.is_empty() {
            return None;
        }
        match bytes.get_u8() {
            EVENTS => {
                let mut events = Vec::new();
                while bytes.has_remaining() {
                    if bytes.remaining() < 12 {
                        return None;
                    }
                    let seq = bytes.get_u64();
                    let len = bytes.get_u32() as usize;
                    if bytes.remaining() < len {
                        return None;
                    }
                    events.push((seq, bytes.split_to(len)));
                }
                Some(Self::Events(events))
            }
            CONTROL => Some(Self::Control(bytes)),
            HEAD if bytes.remaining() == 8 => Some(Self::Head(bytes.get_u64())),
            ENDED if bytes.remaining() == 1 => Some(Self::Ended {
                deleted: bytes.get_u8() == 1,
            }),
            _ => None,
        }
    }
}

/// A request for the hub of the gateway running a session: the hub commands that carry data.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Op {
    /// A connection opened on another gateway: the session's status and connections, and the
    /// agent started if it can be.
    Attach,
    Boot,
    Prompt {
        prompt: PromptRecord,
    },
    CancelQueued {
        prompt_id: String,
        by: Sender,
    },
    Cancel {
        by: Sender,
    },
    ReplyPermission {
        permission_id: String,
        decision: PermissionDecision,
        by: Sender,
    },
    Pause,
    Resume,
    Snapshot,
    Transcript,
    Presence,
    Info,
    Terminate,
}

/// The answer to [`Op::Attach`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Attachment {
    pub status: SessionStatus,
    pub connections: Vec<PresenceEntry>,
}

/// An error as it crosses the bus: its stable code and its message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl From<&GatewayError> for Refusal {
    fn from(error: &GatewayError) -> Self {
        Self {
            code: error.code(),
            message: error.to_string(),
        }
    }
}

impl From<Refusal> for GatewayError {
    fn from(refusal: Refusal) -> Self {
        GatewayError::Relayed {
            code: refusal.code,
            message: refusal.message,
        }
    }
}

/// What one gateway sends another on its subject.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum GatewayMessage {
    /// Run `op` on the session's hub, and answer on the sender's subject. The id makes a
    /// repeated request (its answer lost) run once.
    Request {
        id: String,
        from: String,
        session_id: String,
        #[serde(flatten)]
        op: Op,
    },
    /// The answer to the request `id`.
    Answer {
        id: String,
        result: Result<serde_json::Value, Refusal>,
    },
    /// Every connection the sender holds on the session now; sent on each change and every
    /// heartbeat, so a gateway that stops reporting has its connections dropped.
    Connections {
        from: String,
        session_id: String,
        connections: Vec<PresenceEntry>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_messages_round_trip_and_garbage_is_refused() {
        let messages = [
            SessionMessage::Events(vec![
                (7, Bytes::from_static(b"{\"seq\":7}")),
                (8, Bytes::new()),
            ]),
            SessionMessage::Control(Bytes::from_static(b"{}")),
            SessionMessage::Head(42),
            SessionMessage::Ended { deleted: true },
            SessionMessage::Ended { deleted: false },
        ];
        for message in messages {
            assert_eq!(SessionMessage::decode(message.encode()), Some(message));
        }
        for garbage in [
            &b""[..],
            b"E\0\0",
            b"E\0\0\0\0\0\0\0\x01\0\0\0\x09{}",
            b"H\x01",
            b"Q",
        ] {
            assert_eq!(
                SessionMessage::decode(Bytes::copy_from_slice(garbage)),
                None
            );
        }
    }
}
