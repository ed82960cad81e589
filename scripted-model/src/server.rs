//! The HTTP side: axum routes, request recording, streamed and plain answers.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use futures::{StreamExt, future, stream};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::conversation::{Turn, turn_for};
use crate::script::{ScriptLibrary, Step};
use crate::wire::{self, Envelope};

/// The largest request body accepted; agents send long tool schemas.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// What the request handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    library: ScriptLibrary,
    requests: Mutex<Vec<Value>>,
    counter: AtomicU64,
    shutdown: watch::Receiver<bool>,
}

impl Shared {
    /// State for a server that stops when `shutdown` turns true or its sender is dropped.
    pub(crate) fn new(library: ScriptLibrary, shutdown: watch::Receiver<bool>) -> Arc<Self> {
        Arc::new(Self {
            library,
            requests: Mutex::new(Vec::new()),
            counter: AtomicU64::new(1),
            shutdown,
        })
    }

    /// Every parsed request body so far, in order.
    pub(crate) fn requests(&self) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn record(&self, request: Value) {
        self.requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(request);
    }
}

/// Serves on `listener` until shutdown; stalled streams end at shutdown so it completes.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) -> std::io::Result<()> {
    let shutdown = shared.shutdown.clone();
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(shutdown_signal(shutdown))
        .await
}

/// Resolves when shutdown is requested or its sender is gone.
async fn shutdown_signal(mut shutdown: watch::Receiver<bool>) {
    // An error means the sender was dropped, which also means shut down.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

async fn models() -> Json<Value> {
    Json(json!({"object": "list", "data": [{"id": "mock-model", "object": "model"}]}))
}

async fn not_found() -> Response {
    error_response(404, "no such route; use POST /v1/chat/completions")
}

async fn chat_completions(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return error_response(400, &format!("request body is not valid JSON: {error}"));
        }
    };
    let turn = turn_for(&request, &shared.library);
    shared.record(request);
    let number = shared.counter.fetch_add(1, Ordering::Relaxed);
    let Turn {
        step,
        delay_ms,
        model,
        stream,
        prompt_tokens,
    } = turn;
    let envelope = Envelope {
        id: format!("chatcmpl-{number}"),
        call_id: format!("call_{number}"),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs()),
        model,
        prompt_tokens,
    };
    let delay = Duration::from_millis(delay_ms);
    let shutdown = shared.shutdown.clone();
    if stream {
        streamed(step, &envelope, delay, shutdown)
    } else {
        complete(step, &envelope, delay, shutdown).await
    }
}

/// How a stream ends after its lines.
enum Ending {
    /// Close the stream.
    Close,
    /// Keep the connection open, sending nothing, until the client leaves or the server stops.
    Stall,
}

/// A `text/event-stream` answer, or an HTTP error for an error step.
fn streamed(
    step: Step,
    envelope: &Envelope,
    delay: Duration,
    shutdown: watch::Receiver<bool>,
) -> Response {
    let lines = |chunks: Vec<Value>| -> Vec<String> {
        let mut lines: Vec<String> = chunks.iter().map(wire::data_line).collect();
        lines.push(wire::DONE_LINE.to_owned());
        lines
    };
    let (lines, ending) = match step {
        Step::Text { text, deltas } => (
            lines(envelope.text_chunks(&wire::split_text(&text, deltas))),
            Ending::Close,
        ),
        Step::ToolCall { name, arguments } => {
            let arguments = arguments_string(&arguments);
            let pieces = wire::split_arguments(&arguments);
            (
                lines(envelope.tool_call_chunks(&name, &pieces)),
                Ending::Close,
            )
        }
        Step::Error { status, message } => return error_response(status, &message),
        Step::Malformed => (
            vec![
                wire::data_line(&envelope.first_text_chunk(wire::MALFORMED_PREFIX)),
                wire::MALFORMED_LINE.to_owned(),
            ],
            Ending::Close,
        ),
        Step::Stall => (
            vec![wire::data_line(
                &envelope.first_text_chunk(wire::STALL_PREFIX),
            )],
            Ending::Stall,
        ),
    };
    let chunks = stream::iter(lines).then(move |line| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok::<Bytes, Infallible>(Bytes::from(line))
    });
    let body =
        match ending {
            Ending::Close => Body::from_stream(chunks),
            Ending::Stall => Body::from_stream(chunks.chain(
                stream::once(shutdown_signal(shutdown)).filter_map(|()| future::ready(None)),
            )),
        };
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// A plain `chat.completion` answer, after one delay.
async fn complete(
    step: Step,
    envelope: &Envelope,
    delay: Duration,
    shutdown: watch::Receiver<bool>,
) -> Response {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match step {
        Step::Text { text, deltas } => {
            let pieces = wire::split_text(&text, deltas).len();
            Json(envelope.text_completion(&text, pieces)).into_response()
        }
        Step::ToolCall { name, arguments } => {
            let arguments = arguments_string(&arguments);
            let pieces = wire::split_arguments(&arguments).len();
            Json(envelope.tool_call_completion(&name, &arguments, pieces)).into_response()
        }
        Step::Error { status, message } => error_response(status, &message),
        Step::Malformed => {
            ([(header::CONTENT_TYPE, "application/json")], "{not json").into_response()
        }
        Step::Stall => {
            shutdown_signal(shutdown).await;
            error_response(503, "the scripted model is shutting down")
        }
    }
}

/// Tool call arguments as sent on the wire: a JSON string value is sent verbatim
/// (so scripts can send arguments that are not JSON), anything else as JSON text.
fn arguments_string(arguments: &Value) -> String {
    match arguments {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// An HTTP error with an OpenAI-style body; statuses that are not errors become 500.
fn error_response(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(|status| status.is_client_error() || status.is_server_error())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(wire::error_body(status.as_u16(), message))).into_response()
}
