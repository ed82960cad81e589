//! The HTTP and WebSocket surface of `docs/protocol.md`, as an axum router.

mod agent_policy;
mod proxy;
mod sessions;
mod socket;
mod stream;
mod system;
mod table;

pub(crate) use table::OPERATIONS;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};
use proliferate_core::protocol::v1::Principal;
use proliferate_core::{Gateway, GatewayError};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::credentials;
use crate::model_proxy::ModelProxy;
use crate::problem::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The engine.
    pub gateway: Gateway,
    /// Turns true when the server starts shutting down; sockets then close with 1001.
    pub shutting_down: watch::Receiver<bool>,
    /// The model proxy, whose counters `/metrics` adds.
    pub model_proxy: Option<Arc<ModelProxy>>,
    /// How long a socket may take to take what is sent to it before it is closed as a slow
    /// consumer, even if it pings.
    pub send_stall: std::time::Duration,
}

/// The largest HTTP body accepted (prompts with images included).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// The whole API, ready to serve or to nest in another axum app.
pub fn router(state: AppState) -> Router {
    let mounted = (table::OPERATIONS.iter()).fold(Router::new(), |router, operation| {
        router.route(operation.path, (operation.mount)())
    });
    mounted
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(
            crate::observability::trace_request,
        ))
        .with_state(state)
}

/// Authenticates a request: Bearer or Basic header, or `?token=` for compatibility.
pub(crate) fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    session_id: Option<&str>,
) -> Result<Principal, ApiError> {
    let token = credentials::token(headers, uri.query()).ok_or_else(|| {
        GatewayError::Unauthenticated("no token: send Authorization: Bearer <token>".into())
    })?;
    Ok(state.gateway.authenticate(&token, session_id)?)
}

/// An authenticated caller, and the session the route names in its `{id}`, if any.
pub struct Caller {
    /// Who the token stands for.
    pub principal: Principal,
    session_id: Option<String>,
}

impl Caller {
    /// The session id of the route (empty for routes without one).
    pub fn session(&self) -> &str {
        self.session_id.as_deref().unwrap_or_default()
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let session_id = RawPathParams::from_request_parts(parts, state)
            .await
            .ok()
            .and_then(|parameters| {
                parameters
                    .iter()
                    .find(|(name, _)| *name == "id")
                    .map(|(_, value)| value.to_owned())
            });
        let principal = authenticate(state, &parts.headers, &parts.uri, session_id.as_deref())?;
        Ok(Self {
            principal,
            session_id,
        })
    }
}

/// A query string whose rejections are problem+json `bad_request`, like every other error.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
    }
}

/// A JSON body whose rejections are problem+json with the protocol's codes.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError(GatewayError::PayloadTooLarge(format!(
                    "the body is over {MAX_BODY} bytes"
                ))))
            }
            Err(JsonRejection::MissingJsonContentType(_)) => {
                Err(ApiError::bad_request("send the body as application/json"))
            }
            Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
        }
    }
}
