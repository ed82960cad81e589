//! The client's one error type, carrying the protocol's machine codes.

use proliferate_core::protocol::v1::{ErrorCode, Problem};

/// Why a client call failed. [`ClientError::code`] is the protocol's stable code, the same one
/// the server sent (HTTP problem or WebSocket error frame) or the one that names a local failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The gateway refused the request.
    #[error("{code}: {message}")]
    Api {
        /// The stable machine code.
        code: ErrorCode,
        /// What the gateway said.
        message: String,
        /// The HTTP status, when the refusal came over HTTP.
        status: Option<u16>,
    },
    /// The gateway could not be reached, or the connection broke.
    #[error("transport: {0}")]
    Transport(String),
    /// No answer in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The gateway answered something this client does not understand.
    #[error("unexpected answer: {0}")]
    InvalidResponse(String),
    /// The connection was closed by the application, or for good by the gateway.
    #[error("closed: {0}")]
    Closed(String),
    /// The client was configured wrongly.
    #[error("configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// The protocol's machine code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Api { code, .. } => code.clone(),
            Self::Transport(_) | Self::Closed(_) => ErrorCode::Unavailable,
            Self::Timeout(_) => ErrorCode::Timeout,
            Self::InvalidResponse(_) | Self::Config(_) => ErrorCode::Internal,
        }
    }

    /// What kind of failure this is, as every binding names it: `api` (the gateway refused),
    /// `transport`, `timeout`, `invalid_response`, `closed` or `config`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Api { .. } => "api",
            Self::Transport(_) => "transport",
            Self::Timeout(_) => "timeout",
            Self::InvalidResponse(_) => "invalid_response",
            Self::Closed(_) => "closed",
            Self::Config(_) => "config",
        }
    }

    /// The HTTP status, when the gateway refused over HTTP.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => *status,
            _ => None,
        }
    }

    /// True when retrying later may succeed (the connection broke, the gateway was busy).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transport(_) | Self::Timeout(_))
            || matches!(
                self.code(),
                ErrorCode::Unavailable | ErrorCode::Timeout | ErrorCode::SlowConsumer
            )
    }

    /// The error for a token source that gave no token (`unauthenticated`): bindings report
    /// their language's failure this way.
    pub fn token_source_failed(reason: impl std::fmt::Display) -> Self {
        Self::Api {
            code: ErrorCode::Unauthenticated,
            message: format!("the token source failed: {reason}"),
            status: None,
        }
    }

    pub(crate) fn from_problem(problem: Problem) -> Self {
        Self::Api {
            code: problem.code,
            message: problem.detail,
            status: Some(problem.status),
        }
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(error: reqwest::Error) -> Self {
        if error.is_timeout() {
            Self::Timeout(error.without_url().to_string())
        } else {
            Self::Transport(error.without_url().to_string())
        }
    }
}
