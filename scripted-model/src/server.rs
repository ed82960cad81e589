//! The HTTP side: axum routes, request recording, streamed and plain answers.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
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
    key: Option<String>,
    reported: Mutex<Reported>,
}

/// What the model told its clients it used, and how many streams its clients left unfinished.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reported {
    /// Prompt tokens, summed over every answer that reached its usage.
    pub prompt_tokens: u64,
    /// Completion tokens, likewise.
    pub completion_tokens: u64,
    /// Streams whose client went away before the end.
    pub abandoned_streams: u64,
}

impl Shared {
    /// State for a server that stops when `shutdown` turns true or its sender is dropped.
    pub(crate) fn new(
        library: ScriptLibrary,
        shutdown: watch::Receiver<bool>,
        key: Option<String>,
    ) -> Arc<Self> {
        Arc::new(Self {
            library,
            requests: Mutex::new(Vec::new()),
            counter: AtomicU64::new(1),
            shutdown,
            key,
            reported: Mutex::default(),
        })
    }

    /// What was reported so far.
    pub(crate) fn reported(&self) -> Reported {
        *self
            .reported
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn report(&self, change: impl FnOnce(&mut Reported)) {
        change(
            &mut self
                .reported
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
    }

    /// Adds the usage in `answer` (a chunk or a completion), if it has some.
    fn report_usage(&self, answer: &Value) {
        let usage = &answer["usage"];
        if usage.is_object() {
            self.report(|reported| {
                reported.prompt_tokens += usage["prompt_tokens"].as_u64().unwrap_or_default();
                reported.completion_tokens +=
                    usage["completion_tokens"].as_u64().unwrap_or_default();
            });
        }
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

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(key) = &shared.key {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        if given != Some(format!("Bearer {key}").as_str()) {
            return error_response(401, "Incorrect API key provided.");
        }
    }
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
        streamed(step, &envelope, delay, shutdown, shared)
    } else {
        complete(step, &envelope, delay, shutdown, &shared).await
    }
}

/// Reports a stream's usage once it is delivered whole, or counts it abandoned when its client
/// leaves first.
struct Delivery {
    /// Taken when the stream is delivered whole.
    shared: Option<Arc<Shared>>,
    usage: Option<Value>,
}

impl Delivery {
    fn delivered(mut self) {
        if let (Some(shared), Some(usage)) = (self.shared.take(), &self.usage) {
            shared.report_usage(usage);
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.report(|reported| reported.abandoned_streams += 1);
        }
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
    shared: Arc<Shared>,
) -> Response {
    let mut usage = None;
    let mut lines = |chunks: Vec<Value>| -> Vec<String> {
        usage = chunks
            .iter()
            .rev()
            .find(|chunk| chunk["usage"].is_object())
            .cloned();
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
    let delivery = Delivery {
        shared: Some(shared),
        usage,
    };
    let chunks = stream::iter(lines).then(move |line| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok::<Bytes, Infallible>(Bytes::from(wire::stamped(line)))
    });
    // The delivery rides at the end of the body: dropped with it when the client leaves first.
    let body = match ending {
        Ending::Close => Body::from_stream(chunks.chain(
            stream::once(async move { delivery.delivered() }).filter_map(|()| future::ready(None)),
        )),
        Ending::Stall => Body::from_stream(
            chunks.chain(
                stream::once(async move {
                    let _delivery = delivery;
                    shutdown_signal(shutdown).await
                })
                .filter_map(|()| future::ready(None)),
            ),
        ),
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
    shared: &Shared,
) -> Response {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match step {
        Step::Text { text, deltas } => {
            let pieces = wire::split_text(&text, deltas).len();
            let completion = envelope.text_completion(&text, pieces);
            shared.report_usage(&completion);
            Json(completion).into_response()
        }
        Step::ToolCall { name, arguments } => {
            let arguments = arguments_string(&arguments);
            let pieces = wire::split_arguments(&arguments).len();
            let completion = envelope.tool_call_completion(&name, &arguments, pieces);
            shared.report_usage(&completion);
            Json(completion).into_response()
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
