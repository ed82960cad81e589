//! Error mapping: every failure becomes the `proliferate.errors` exception for its protocol code.

use proliferate_client::ClientError;
use proliferate_client::protocol::v1::ErrorCode;
use pyo3::prelude::*;

/// The Python exception for `error`, built by `proliferate.errors.from_native` so that the
/// subclass per code, the `code` attribute and the cause are decided in one place.
pub(crate) fn to_python(error: ClientError) -> PyErr {
    Python::attach(|py| {
        py.import("proliferate.errors")
            .and_then(|errors| {
                errors.getattr("from_native")?.call1((
                    error.code().as_str(),
                    error.to_string(),
                    error.status(),
                    error.kind(),
                ))
            })
            .map_or_else(|failure| failure, PyErr::from_value)
    })
}

/// A `bad_request` error for input that does not decode.
pub(crate) fn bad_request(message: impl std::fmt::Display) -> PyErr {
    to_python(ClientError::Api {
        code: ErrorCode::BadRequest,
        message: message.to_string(),
        status: None,
    })
}
