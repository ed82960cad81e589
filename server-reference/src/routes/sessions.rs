//! The session routes of `/v1`. Each handler authorises (the [`Caller`] extractor), translates
//! in, makes one gateway call, and translates out.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proliferate_core::protocol::v1::*;
use serde::Deserialize;

use super::{AppState, Caller, JsonBody, QueryParams};
use crate::problem::ApiError;

type Answer<T> = Result<T, ApiError>;

/// `POST /v1/sessions`
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(request): JsonBody<CreateSessionRequest>,
) -> Answer<Response> {
    let key = headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    if let (Some(model), Some(proxy)) = (&request.model, &state.model_proxy)
        && !proxy.serves(model)
    {
        return Err(ApiError::bad_request(format!(
            "model {model} is not available on this server"
        )));
    }
    // A retry with the same key gets the first answer: the same session, and `201` again.
    let (info, _created) = state
        .gateway
        .create_session(&caller.principal, request, key)
        .await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// Query of `GET /v1/sessions`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /v1/sessions`
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ListQuery>,
) -> Answer<Json<SessionList>> {
    if query.limit == Some(0) {
        return Err(ApiError::bad_request("limit must be at least 1"));
    }
    let list = state
        .gateway
        .list_sessions(&caller.principal, query.limit, query.cursor.as_deref())
        .await?;
    Ok(Json(list))
}

/// `GET /v1/sessions/{id}`
pub async fn get(State(state): State<AppState>, caller: Caller) -> Answer<Json<SessionInfo>> {
    Ok(Json(
        state
            .gateway
            .session(&caller.principal, caller.session())
            .await?,
    ))
}

/// `DELETE /v1/sessions/{id}`
pub async fn delete(State(state): State<AppState>, caller: Caller) -> Answer<StatusCode> {
    state
        .gateway
        .delete_session(&caller.principal, caller.session())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/sessions/{id}/pause`
pub async fn pause(State(state): State<AppState>, caller: Caller) -> Answer<Json<SessionInfo>> {
    Ok(Json(
        state
            .gateway
            .pause(&caller.principal, caller.session())
            .await?,
    ))
}

/// `POST /v1/sessions/{id}/resume`
pub async fn resume(State(state): State<AppState>, caller: Caller) -> Answer<Json<SessionInfo>> {
    Ok(Json(
        state
            .gateway
            .resume(&caller.principal, caller.session())
            .await?,
    ))
}

/// `POST /v1/sessions/{id}/snapshot`
pub async fn snapshot(
    State(state): State<AppState>,
    caller: Caller,
) -> Answer<(StatusCode, Json<SnapshotInfo>)> {
    let snapshot = state
        .gateway
        .snapshot(&caller.principal, caller.session())
        .await?;
    Ok((StatusCode::CREATED, Json(snapshot)))
}

/// `POST /v1/sessions/{id}/messages`
pub async fn send_message(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<SendMessageRequest>,
) -> Answer<(StatusCode, Json<PromptAdmission>)> {
    let admission = state
        .gateway
        .send_prompt(&caller.principal, caller.session(), request, "api")
        .await?;
    Ok((StatusCode::ACCEPTED, Json(admission)))
}

/// `DELETE /v1/sessions/{id}/messages/{prompt_id}`
pub async fn cancel_queued(
    State(state): State<AppState>,
    caller: Caller,
    Path((_, prompt_id)): Path<(String, String)>,
) -> Answer<StatusCode> {
    state
        .gateway
        .cancel_queued(&caller.principal, caller.session(), &prompt_id, "api")
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/sessions/{id}/cancel`
pub async fn cancel(State(state): State<AppState>, caller: Caller) -> Answer<Json<CancelOutcome>> {
    let cancelled = state
        .gateway
        .cancel(&caller.principal, caller.session(), "api")
        .await?;
    Ok(Json(CancelOutcome { cancelled }))
}

/// `POST /v1/sessions/{id}/permissions/{permission_id}`
pub async fn reply_permission(
    State(state): State<AppState>,
    caller: Caller,
    Path((_, permission_id)): Path<(String, String)>,
    JsonBody(request): JsonBody<PermissionReplyRequest>,
) -> Answer<StatusCode> {
    state
        .gateway
        .reply_permission(
            &caller.principal,
            caller.session(),
            &permission_id,
            request.decision,
            "api",
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/sessions/{id}/transcript`
pub async fn transcript(State(state): State<AppState>, caller: Caller) -> Answer<Json<Transcript>> {
    Ok(Json(
        state
            .gateway
            .transcript(&caller.principal, caller.session())
            .await?,
    ))
}

/// Query of `GET /v1/sessions/{id}/events`.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    after_seq: u64,
    limit: Option<u32>,
}

/// The largest page of events.
const MAX_EVENTS_PAGE: u32 = 5000;

/// `GET /v1/sessions/{id}/events`: a JSON page, or Server-Sent Events when asked for.
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    QueryParams(query): QueryParams<EventsQuery>,
) -> Answer<Response> {
    let wants_stream = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"));
    if wants_stream {
        let after_seq = headers
            .get("last-event-id")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(query.after_seq);
        return super::stream::events(&state, &caller.principal, caller.session(), after_seq).await;
    }
    if query.limit == Some(0) {
        return Err(ApiError::bad_request("limit must be at least 1"));
    }
    let limit = query.limit.unwrap_or(500).min(MAX_EVENTS_PAGE);
    let page = state
        .gateway
        .events(&caller.principal, caller.session(), query.after_seq, limit)
        .await?;
    Ok(Json(page).into_response())
}

/// `GET /v1/sessions/{id}/usage`
pub async fn usage(State(state): State<AppState>, caller: Caller) -> Answer<Json<UsageReport>> {
    Ok(Json(
        state
            .gateway
            .session_usage(&caller.principal, caller.session())
            .await?,
    ))
}

/// Query of `GET /v1/usage`: a time range in milliseconds since the epoch.
#[derive(Debug, Deserialize)]
pub struct UsageQuery {
    /// From this time, inclusive.
    from: Option<i64>,
    /// To this time, exclusive.
    to: Option<i64>,
}

/// `POST /v1/tokens/revoke`
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<RevokeTokenRequest>,
) -> Answer<StatusCode> {
    state
        .gateway
        .revoke_token(&caller.principal, &request.jti)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/usage`
pub async fn organization_usage(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<UsageQuery>,
) -> Answer<Json<UsageReport>> {
    Ok(Json(
        state
            .gateway
            .organization_usage(&caller.principal, query.from, query.to)
            .await?,
    ))
}
