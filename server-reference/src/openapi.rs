//! The OpenAPI 3.1 document of the HTTP API, built from the protocol's JSON Schema so the two
//! cannot disagree.

use proliferate_core::protocol::v1::wire_schema;
use serde_json::{Map, Value, json};

/// One route: method, path, summary, request body schema, success status, response schema.
struct Route(
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    u16,
    Option<&'static str>,
);

const ROUTES: &[Route] = &[
    Route(
        "post",
        "/v1/sessions",
        "Create a session",
        Some("CreateSessionRequest"),
        201,
        Some("SessionInfo"),
    ),
    Route(
        "get",
        "/v1/sessions",
        "List the organisation's sessions",
        None,
        200,
        Some("SessionList"),
    ),
    Route(
        "get",
        "/v1/sessions/{id}",
        "Get a session",
        None,
        200,
        Some("SessionInfo"),
    ),
    Route(
        "delete",
        "/v1/sessions/{id}",
        "Delete a session",
        None,
        204,
        None,
    ),
    Route(
        "post",
        "/v1/sessions/{id}/pause",
        "Pause a session",
        None,
        200,
        Some("SessionInfo"),
    ),
    Route(
        "post",
        "/v1/sessions/{id}/resume",
        "Resume a session",
        None,
        200,
        Some("SessionInfo"),
    ),
    Route(
        "post",
        "/v1/sessions/{id}/snapshot",
        "Snapshot a session",
        None,
        201,
        Some("SnapshotInfo"),
    ),
    Route(
        "post",
        "/v1/sessions/{id}/messages",
        "Send a prompt",
        Some("SendMessageRequest"),
        202,
        Some("PromptAdmission"),
    ),
    Route(
        "delete",
        "/v1/sessions/{id}/messages/{prompt_id}",
        "Withdraw a queued prompt",
        None,
        204,
        None,
    ),
    Route(
        "post",
        "/v1/sessions/{id}/cancel",
        "Cancel the running turn",
        None,
        200,
        Some("CancelOutcome"),
    ),
    Route(
        "post",
        "/v1/sessions/{id}/permissions/{permission_id}",
        "Answer a permission request",
        Some("PermissionReplyRequest"),
        204,
        None,
    ),
    Route(
        "get",
        "/v1/sessions/{id}/events",
        "Read events (JSON page, or SSE with Accept: text/event-stream)",
        None,
        200,
        Some("EventPage"),
    ),
    Route(
        "get",
        "/v1/sessions/{id}/transcript",
        "Read the transcript",
        None,
        200,
        Some("Transcript"),
    ),
    Route(
        "get",
        "/v1/sessions/{id}/usage",
        "Read the session's model usage",
        None,
        200,
        Some("UsageReport"),
    ),
    Route(
        "get",
        "/v1/usage",
        "Read the organisation's model usage (admin; from and to in ms since the epoch)",
        None,
        200,
        Some("UsageReport"),
    ),
    Route(
        "post",
        "/v1/tokens/revoke",
        "Revoke the organisation's tokens with this jti (admin)",
        Some("RevokeTokenRequest"),
        204,
        None,
    ),
    Route(
        "get",
        "/v1/sessions/{id}/ws",
        "Stream events and send prompts over a WebSocket (an upgrade; frames in docs/protocol.md)",
        None,
        101,
        None,
    ),
    Route(
        "get",
        "/v1/sessions/{id}/agent/{path}",
        "The agent proxy: the agent's read routes (docs/agents/opencode-proxy.md)",
        None,
        200,
        None,
    ),
    Route(
        "post",
        "/v1/sessions/{id}/agent/{path}",
        "The agent proxy: the agent's prompt and answer routes (docs/agents/opencode-proxy.md)",
        None,
        200,
        None,
    ),
    Route("get", "/healthz", "Liveness", None, 200, Some("Health")),
    Route("get", "/readyz", "Readiness", None, 200, Some("Health")),
    Route(
        "get",
        "/metrics",
        "Prometheus metrics, as text",
        None,
        200,
        None,
    ),
    Route("get", "/v1/openapi.json", "This document", None, 200, None),
];

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn rewrite_references(value: &mut Value) {
    match value {
        Value::String(text) if text.starts_with("#/$defs/") => {
            *text = text.replacen("#/$defs/", "#/components/schemas/", 1);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_references),
        Value::Object(map) => map.values_mut().for_each(rewrite_references),
        _ => {}
    }
}

/// The document served at `/v1/openapi.json`.
pub fn document() -> Value {
    let mut schema = wire_schema();
    rewrite_references(&mut schema);
    let mut paths = Map::new();
    for Route(method, path, summary, request, status, response) in ROUTES {
        let parameters: Vec<Value> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let mut operation = json!({
            "summary": summary,
            "parameters": parameters,
            "responses": {
                status.to_string(): match response {
                    Some(name) => json!({ "description": "OK", "content": { "application/json": { "schema": reference(name) } } }),
                    None => json!({ "description": "OK" }),
                },
                "default": { "description": "Error", "content": { "application/problem+json": { "schema": reference("Problem") } } },
            },
        });
        if let Some(name) = request {
            operation["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": reference(name) } } });
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Proliferate gateway", "version": env!("CARGO_PKG_VERSION") },
        "components": {
            "schemas": schema["$defs"],
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
        },
        "security": [{ "bearer": [] }],
        "paths": paths,
    })
}
