//! Decoding by type name: the one validation every binding and fixture runner shares.

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::*;

/// Why [`normalize`] refused a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The type name is not one of [`DECODABLE_TYPES`].
    #[error("unknown wire type `{0}`")]
    UnknownType(String),
    /// The value does not decode as the type; the message names the problem.
    #[error("{0}")]
    Invalid(String),
}

/// The wire types [`normalize`] accepts by name.
pub const DECODABLE_TYPES: &[&str] = &[
    "ServerFrame",
    "ClientFrame",
    "EventEnvelope",
    "CreateSessionRequest",
    "SessionInfo",
    "SessionList",
    "SendMessageRequest",
    "PromptAdmission",
    "CancelOutcome",
    "PermissionReplyRequest",
    "EventPage",
    "SnapshotInfo",
    "Transcript",
    "Health",
    "Problem",
    "TokenClaims",
];

/// Decodes `json` as the named wire type and encodes it again: the value as this version reads
/// it, with unknown types and fields kept. Fails with a message that names the problem.
pub fn normalize(type_name: &str, json: &Value) -> Result<Value, DecodeError> {
    fn round_trip<T: Serialize + DeserializeOwned>(json: &Value) -> Result<Value, DecodeError> {
        let decoded: T = serde_json::from_value(json.clone())
            .map_err(|error| DecodeError::Invalid(error.to_string()))?;
        serde_json::to_value(&decoded).map_err(|error| DecodeError::Invalid(error.to_string()))
    }
    match type_name {
        "ServerFrame" => round_trip::<ServerFrame>(json),
        "ClientFrame" => round_trip::<ClientFrame>(json),
        "EventEnvelope" => round_trip::<EventEnvelope>(json),
        "CreateSessionRequest" => round_trip::<CreateSessionRequest>(json),
        "SessionInfo" => round_trip::<SessionInfo>(json),
        "SessionList" => round_trip::<SessionList>(json),
        "SendMessageRequest" => round_trip::<SendMessageRequest>(json),
        "PromptAdmission" => round_trip::<PromptAdmission>(json),
        "CancelOutcome" => round_trip::<CancelOutcome>(json),
        "PermissionReplyRequest" => round_trip::<PermissionReplyRequest>(json),
        "EventPage" => round_trip::<EventPage>(json),
        "SnapshotInfo" => round_trip::<SnapshotInfo>(json),
        "Transcript" => round_trip::<Transcript>(json),
        "Health" => round_trip::<Health>(json),
        "Problem" => round_trip::<Problem>(json),
        "TokenClaims" => round_trip::<TokenClaims>(json),
        other => Err(DecodeError::UnknownType(other.to_owned())),
    }
}
