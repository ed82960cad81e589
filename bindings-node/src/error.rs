//! Error mapping: every failure becomes a JS `Error` whose message is a JSON object with the
//! protocol's `code`, the `message`, the HTTP `status` and the `kind` of failure; the facade turns
//! it into a `ProliferateError`.

use proliferate_client::ClientError;
use proliferate_client::protocol::v1::ErrorCode;
use serde_json::json;

/// The JS error for `error`.
pub(crate) fn to_javascript(error: ClientError) -> napi::Error {
    let payload = json!({
        "code": error.code().as_str(),
        "message": error.to_string(),
        "status": error.status(),
        "kind": error.kind(),
    });
    napi::Error::new(napi::Status::GenericFailure, payload.to_string())
}

/// A `bad_request` error for input that does not decode.
pub(crate) fn bad_request(message: impl std::fmt::Display) -> napi::Error {
    to_javascript(ClientError::Api {
        code: ErrorCode::BadRequest,
        message: message.to_string(),
        status: None,
    })
}
