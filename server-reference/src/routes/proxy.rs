//! `/v1/sessions/{id}/agent/{path}`: forwards the routes `opencode attach` and OpenCode's SDKs
//! need to the session's agent, streaming both ways, under the policy of [`agent_policy`]
//! (`docs/agents/opencode-proxy.md`): nothing that bypasses the session's permissions or reads
//! outside the workspace, no client credentials in, no agent headers that act on the gateway's
//! origin out. The agent's own credential is added by the endpoint's client.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::header;
use axum::response::Response;
use proliferate_core::GatewayError;

use super::{AppState, agent_policy, authenticate};
use crate::problem::ApiError;

mod intercept;

/// The largest prompt body the proxy reads to check it.
const MAX_PROMPT_BODY: usize = 16 << 20;

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
    _path: String,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let principal = authenticate(&state, &parts.headers, &parts.uri, Some(&id))?;
    // The raw path: axum's `{*path}` capture is percent-decoded.
    let path = agent_policy::agent_path(parts.uri.path()).unwrap_or_default();
    if !agent_policy::allows(&parts.method, path) {
        return Err(ApiError(GatewayError::Forbidden(format!(
            "{} {path} is not available through the gateway (docs/agents/opencode-proxy.md)",
            parts.method
        ))));
    }
    let agent = state.gateway.agent_endpoint(&principal, &id).await?;
    let intercepted = agent_policy::intercept(&parts.method, path);
    let query = agent_policy::forwarded_query(parts.uri.query().unwrap_or_default());
    let target = match query.is_empty() {
        true => format!("{}{path}", agent.base_url),
        false => format!("{}{path}?{query}", agent.base_url),
    };
    let body = if agent_policy::inspects_body(&parts.method, path) {
        let bytes = axum::body::to_bytes(body, MAX_PROMPT_BODY)
            .await
            .map_err(|_| {
                ApiError(GatewayError::PayloadTooLarge(format!(
                    "a prompt through the agent proxy takes at most {MAX_PROMPT_BODY} bytes"
                )))
            })?;
        agent_policy::check_body(&parts.method, path, &bytes, &agent.workspace)
            .map_err(|violation| ApiError(GatewayError::BadRequest(violation.message().into())))?;
        if let Some(intercepted) = intercepted {
            return intercept::handle(&state.gateway, &principal, &id, &agent, intercepted, bytes)
                .await;
        }
        reqwest::Body::from(bytes)
    } else if let Some(intercepted) = intercepted {
        return intercept::handle(
            &state.gateway,
            &principal,
            &id,
            &agent,
            intercepted,
            Default::default(),
        )
        .await;
    } else {
        reqwest::Body::wrap_stream(body.into_data_stream())
    };
    let mut forwarded = agent.http.request(parts.method, target).body(body);
    for (name, value) in parts
        .headers
        .iter()
        .filter(|(name, _)| agent_policy::forwards_request_header(name))
    {
        forwarded = forwarded.header(name, value);
    }
    let answer = forwarded.send().await.map_err(|error| {
        GatewayError::Agent(proliferate_core::agent::DriverError::Unreachable(
            error.without_url().to_string(),
        ))
    })?;
    let mut response =
        Response::builder().status(agent_policy::forwarded_status(answer.status().as_u16()));
    for (name, value) in answer
        .headers()
        .iter()
        .filter(|(name, _)| agent_policy::forwards_response_header(name))
    {
        response = response.header(name, value);
    }
    response = response.header(
        header::CONTENT_TYPE,
        agent_policy::response_content_type(answer.headers().get(header::CONTENT_TYPE)),
    );
    for (name, value) in agent_policy::hardening_headers() {
        response = response.header(name, value);
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .map_err(|error| ApiError(GatewayError::Unavailable(error.to_string())))
}
