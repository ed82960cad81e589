//! Health, readiness, metrics and the OpenAPI document.

use std::fmt::Write;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use proliferate_core::protocol::v1::Health;

use super::AppState;

fn health_of(status: &str) -> Json<Health> {
    Json(Health {
        status: status.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}

/// `GET /healthz`: the process answers.
pub async fn health() -> Json<Health> {
    health_of("ok")
}

/// `GET /readyz`: the store answers and the server is not shutting down.
pub async fn ready(State(state): State<AppState>) -> Response {
    if *state.shutting_down.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, health_of("shutting_down")).into_response();
    }
    match state.gateway.check_store().await {
        Ok(()) => health_of("ok").into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            health_of("store_unavailable"),
        )
            .into_response(),
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let reading = state.gateway.metrics().read();
    let mut text = String::new();
    for (name, kind, help, value) in [
        (
            "proliferate_sessions_live",
            "gauge",
            "Sessions with a running hub.",
            reading.hubs_running,
        ),
        (
            "proliferate_connections",
            "gauge",
            "Open client connections.",
            reading.connections,
        ),
        (
            "proliferate_events_total",
            "counter",
            "Events persisted and broadcast.",
            reading.events_appended,
        ),
        (
            "proliferate_queued_prompts",
            "gauge",
            "Prompts waiting for a running turn.",
            reading.queued_prompts,
        ),
        (
            "proliferate_slow_consumer_closes_total",
            "counter",
            "Connections closed with 1013.",
            reading.slow_consumers_closed,
        ),
    ] {
        let _ = writeln!(
            text,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    if let Some(proxy) = &state.model_proxy {
        text.push_str(&proxy.metrics());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// `GET /v1/openapi.json`
pub async fn openapi() -> Json<serde_json::Value> {
    Json(crate::openapi::document())
}
