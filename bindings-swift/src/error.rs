//! The one error enum: every failure carries the protocol's machine `code`.

use proliferate_client::ClientError;
use proliferate_client::protocol::v1::ErrorCode;

/// Why a call failed. Every case carries `code`, the protocol's stable machine code.
#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
pub enum ProliferateError {
    /// The gateway refused the request.
    #[error("{code}: {message}")]
    Api {
        /// The stable machine code.
        code: String,
        /// What the gateway said.
        message: String,
        /// The HTTP status, when the refusal came over HTTP.
        status: Option<u16>,
    },
    /// The gateway could not be reached, or the connection broke (`unavailable`).
    #[error("{code}: {message}")]
    Transport {
        /// The stable machine code.
        code: String,
        /// What failed.
        message: String,
    },
    /// No answer in time (`timeout`).
    #[error("{code}: {message}")]
    Timeout {
        /// The stable machine code.
        code: String,
        /// What timed out.
        message: String,
    },
    /// The gateway answered something this client does not understand (`internal`).
    #[error("{code}: {message}")]
    InvalidResponse {
        /// The stable machine code.
        code: String,
        /// What was wrong.
        message: String,
    },
    /// The connection was closed (`unavailable`).
    #[error("{code}: {message}")]
    Closed {
        /// The stable machine code.
        code: String,
        /// Why.
        message: String,
    },
    /// The client was configured wrongly (`internal`).
    #[error("{code}: {message}")]
    Config {
        /// The stable machine code.
        code: String,
        /// What is wrong.
        message: String,
    },
}

impl From<ClientError> for ProliferateError {
    fn from(error: ClientError) -> Self {
        let code = error.code().as_str().to_owned();
        match error {
            ClientError::Api {
                message, status, ..
            } => Self::Api {
                code,
                message,
                status,
            },
            ClientError::Transport(message) => Self::Transport { code, message },
            ClientError::Timeout(message) => Self::Timeout { code, message },
            ClientError::InvalidResponse(message) => Self::InvalidResponse { code, message },
            ClientError::Closed(message) => Self::Closed { code, message },
            ClientError::Config(message) => Self::Config { code, message },
        }
    }
}

/// A `bad_request` error for input that does not decode.
pub(crate) fn bad_request(message: impl std::fmt::Display) -> ProliferateError {
    ClientError::Api {
        code: ErrorCode::BadRequest,
        message: message.to_string(),
        status: None,
    }
    .into()
}

/// A Swift callback that threw something other than a `ProliferateError`.
impl From<uniffi::UnexpectedUniFFICallbackError> for ProliferateError {
    fn from(error: uniffi::UnexpectedUniFFICallbackError) -> Self {
        ClientError::Config(format!("a callback failed: {}", error.reason)).into()
    }
}
