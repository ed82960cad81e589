//! Health, readiness, metrics and the OpenAPI document.

use std::fmt::Write;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use proliferate_core::metrics::LATENCY_BUCKETS;
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
    let name = "proliferate_event_latency_seconds";
    let _ = writeln!(
        text,
        "# HELP {name} From the hub receiving an agent's event to the store holding it (stage=\"persisted\") and to a client's socket (stage=\"sent\", per flush, its oldest event).\n# TYPE {name} histogram"
    );
    for (stage, reading) in [("persisted", reading.persisted), ("sent", reading.sent)] {
        let mut count = 0;
        let bounds = LATENCY_BUCKETS.iter().map(ToString::to_string);
        for (bound, observed) in bounds.chain(["+Inf".into()]).zip(reading.buckets) {
            count += observed;
            let _ = writeln!(
                text,
                "{name}_bucket{{stage=\"{stage}\",le=\"{bound}\"}} {count}"
            );
        }
        let sum = reading.sum.as_secs_f64();
        let _ = writeln!(text, "{name}_sum{{stage=\"{stage}\"}} {sum}");
        let _ = writeln!(text, "{name}_count{{stage=\"{stage}\"}} {count}");
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
