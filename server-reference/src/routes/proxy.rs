//! `/v1/sessions/{id}/agent/{path}`: forwards any request to the session's agent (OpenCode's
//! own API), streaming both ways, so `opencode attach` and OpenCode SDKs work through the
//! gateway. The gateway's credentials are stripped before forwarding.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::Response;
use proliferate_core::GatewayError;

use super::{AppState, authenticate};
use crate::problem::ApiError;

/// Request headers never forwarded to the agent.
const DROPPED: [HeaderName; 3] = [header::AUTHORIZATION, header::HOST, header::CONNECTION];

/// `ANY /v1/sessions/{id}/agent`
pub async fn forward_root(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    proxy(state, id, String::new(), request).await
}

/// `ANY /v1/sessions/{id}/agent/{*path}`
pub async fn forward(
    State(state): State<AppState>,
    Path((id, path)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    proxy(state, id, path, request).await
}

async fn proxy(
    state: AppState,
    id: String,
    path: String,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let principal = authenticate(&state, &parts.headers, &parts.uri, Some(&id))?;
    let agent = state.gateway.agent_endpoint(&principal, &id).await?;
    let query: Vec<&str> = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("token="))
        .collect();
    let mut target = format!("{}/{path}", agent.base_url);
    if !query.is_empty() {
        target = format!("{target}?{}", query.join("&"));
    }
    let mut forwarded = agent
        .http
        .request(parts.method, target)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()));
    for (name, value) in parts
        .headers
        .iter()
        .filter(|(name, _)| !DROPPED.contains(name))
    {
        forwarded = forwarded.header(name, value);
    }
    let answer = forwarded.send().await.map_err(|error| {
        GatewayError::Agent(proliferate_core::agent::DriverError::Unreachable(
            error.without_url().to_string(),
        ))
    })?;
    let mut response = Response::builder()
        .status(StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY));
    for (name, value) in answer.headers() {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .map_err(|error| ApiError(GatewayError::Unavailable(error.to_string())))
}
