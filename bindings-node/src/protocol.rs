//! The protocol without I/O: JSON conversion, decoding by type name and the transcript reducer.

use napi_derive::napi;
use proliferate_client::protocol::v1::{self, EventEnvelope, Transcript};
use proliferate_client::{ClientError, TranscriptReducer};

use crate::error::{bad_request, to_javascript};

/// Decodes JSON text from the facade into a protocol type; `bad_request` when it does not.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(json: &str) -> napi::Result<T> {
    serde_json::from_str(json).map_err(bad_request)
}

/// Encodes a protocol value as JSON text for the facade.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> napi::Result<String> {
    serde_json::to_string(value)
        .map_err(|error| to_javascript(ClientError::InvalidResponse(error.to_string())))
}

/// Decodes `json` as the named wire type and returns it re-encoded, as this version reads it.
/// Throws a `bad_request` error naming the problem when it does not decode.
#[napi]
pub fn normalize(type_name: String, json: String) -> napi::Result<String> {
    let value: serde_json::Value = parse(&json)?;
    encode(&v1::normalize(&type_name, &value).map_err(bad_request)?)
}

/// Folds events into a transcript, exactly as the server does.
#[napi]
pub struct NativeReducer {
    reducer: TranscriptReducer,
}

#[napi]
impl NativeReducer {
    /// An empty transcript for `session_id`, or one that continues `transcript` (JSON).
    #[napi(constructor)]
    pub fn new(session_id: String, transcript: Option<String>) -> napi::Result<Self> {
        let reducer = match transcript {
            Some(json) => TranscriptReducer::resume(parse::<Transcript>(&json)?),
            None => TranscriptReducer::new(session_id),
        };
        Ok(Self { reducer })
    }

    /// Applies one event envelope (JSON); false when its seq was already folded.
    #[napi]
    pub fn apply(&mut self, envelope: String) -> napi::Result<bool> {
        Ok(self.reducer.apply(&parse::<EventEnvelope>(&envelope)?))
    }

    /// The transcript so far, as JSON.
    #[napi]
    pub fn transcript(&self) -> napi::Result<String> {
        encode(self.reducer.transcript())
    }
}
