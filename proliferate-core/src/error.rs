//! The engine's one error type, and its mapping to the protocol's stable codes.

use crate::agent::DriverError;
use crate::protocol::v1::ErrorCode;
use crate::sandbox::SandboxError;
use crate::session::status::ForbiddenTransition;
use crate::store::StoreError;

/// Why a gateway operation failed. [`GatewayError::code`] gives the protocol's machine code,
/// which the server maps to HTTP statuses and WebSocket error frames.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The request is malformed or invalid.
    #[error("{0}")]
    BadRequest(String),
    /// The request or frame is too large.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// No valid credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// The token expired.
    #[error("the token has expired")]
    TokenExpired,
    /// The credentials do not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// Nothing with this id is visible to the caller.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// A limit of the server is reached.
    #[error("{0}")]
    LimitExceeded(String),
    /// The cursor is older than what the log retains.
    #[error("{0}")]
    CursorExpired(String),
    /// The lifecycle forbids this transition.
    #[error(transparent)]
    Transition(#[from] ForbiddenTransition),
    /// The agent failed.
    #[error(transparent)]
    Agent(#[from] DriverError),
    /// The sandbox provider failed.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The gateway cannot serve this now.
    #[error("{0}")]
    Unavailable(String),
    /// The gateway running the session refused, with this code.
    #[error("{message}")]
    Relayed {
        /// The refusal's stable code.
        code: ErrorCode,
        /// Why, as the refusing gateway put it.
        message: String,
    },
}

impl GatewayError {
    /// Whether the same call may succeed later without any change (a busy store).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Store(error) if error.is_transient())
    }

    /// The protocol's machine code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Relayed { code, .. } => code.clone(),
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::TokenExpired => ErrorCode::TokenExpired,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) | Self::Transition(_) => ErrorCode::Conflict,
            Self::LimitExceeded(_) => ErrorCode::LimitExceeded,
            Self::CursorExpired(_) => ErrorCode::CursorExpired,
            Self::Store(StoreError::IdempotencyConflict | StoreError::Conflict(_)) => {
                ErrorCode::Conflict
            }
            Self::Store(StoreError::NotFound(_)) => ErrorCode::NotFound,
            Self::Agent(_) => ErrorCode::AgentError,
            Self::Sandbox(SandboxError::SnapshotNotFound(_) | SandboxError::NotFound(_)) => {
                ErrorCode::NotFound
            }
            Self::Sandbox(SandboxError::InvalidSessionId(_)) => ErrorCode::BadRequest,
            Self::Sandbox(_) => ErrorCode::SandboxError,
            Self::Store(error) if error.is_transient() => ErrorCode::Unavailable,
            // Another gateway runs the session now.
            Self::Store(StoreError::Fenced(_)) => ErrorCode::Unavailable,
            Self::Store(_) => ErrorCode::Internal,
            Self::Unavailable(_) => ErrorCode::Unavailable,
        }
    }
}
