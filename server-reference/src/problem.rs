//! Errors as `application/problem+json`, with the protocol's stable codes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proliferate_core::GatewayError;
use proliferate_core::protocol::v1::{ErrorCode, Problem};

/// A failed request; renders as problem+json.
#[derive(Debug)]
pub struct ApiError(pub GatewayError);

impl From<GatewayError> for ApiError {
    fn from(error: GatewayError) -> Self {
        Self(error)
    }
}

impl ApiError {
    /// A `bad_request` error with `detail`.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self(GatewayError::BadRequest(detail.into()))
    }
}

/// Renders a problem body for `code`.
pub fn problem_response(code: ErrorCode, detail: String) -> Response {
    let problem = Problem::new(code, detail);
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(problem)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        if code == ErrorCode::Internal {
            tracing::error!(error = %self.0, "request failed");
            return problem_response(code, "an internal error occurred".into());
        }
        problem_response(code, self.0.to_string())
    }
}
