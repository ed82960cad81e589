//! The protocol without I/O: JSON conversion, decoding by type name and the transcript reducer.

use proliferate_client::TranscriptReducer;
use proliferate_client::protocol::v1::{self, EventEnvelope, Transcript};
use pyo3::prelude::*;

use crate::error::{bad_request, to_python};
use proliferate_client::ClientError;

/// Decodes JSON text from the Python layer into a protocol type; `bad_request` when it does not.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(json: &str) -> PyResult<T> {
    serde_json::from_str(json).map_err(bad_request)
}

/// Encodes a protocol value as JSON text for the Python layer.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<String, ClientError> {
    serde_json::to_string(value).map_err(|error| ClientError::InvalidResponse(error.to_string()))
}

/// Decodes `json` as the named wire type and returns it re-encoded, as this version reads it.
/// Raises `BadRequestError` naming the problem when it does not decode.
#[pyfunction]
pub(crate) fn normalize(type_name: &str, json: &str) -> PyResult<String> {
    let value: serde_json::Value = parse(json)?;
    let normalized = v1::normalize(type_name, &value).map_err(bad_request)?;
    Ok(normalized.to_string())
}

/// Folds events into a transcript, exactly as the server does.
#[pyclass(module = "proliferate._native")]
pub(crate) struct NativeReducer {
    reducer: TranscriptReducer,
}

#[pymethods]
impl NativeReducer {
    /// An empty transcript for `session_id`, or one that continues `transcript` (JSON).
    #[new]
    #[pyo3(signature = (session_id, transcript=None))]
    fn new(session_id: &str, transcript: Option<&str>) -> PyResult<Self> {
        let reducer = match transcript {
            Some(json) => TranscriptReducer::resume(parse::<Transcript>(json)?),
            None => TranscriptReducer::new(session_id),
        };
        Ok(Self { reducer })
    }

    /// Applies one event envelope (JSON); false when its seq was already folded.
    fn apply(&mut self, envelope: &str) -> PyResult<bool> {
        Ok(self.reducer.apply(&parse::<EventEnvelope>(envelope)?))
    }

    /// The transcript so far, as JSON.
    fn transcript(&self) -> PyResult<String> {
        encode(self.reducer.transcript()).map_err(to_python)
    }
}
