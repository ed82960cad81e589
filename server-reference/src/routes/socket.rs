//! `GET /v1/sessions/{id}/ws`: the WebSocket transport of the sync protocol.
//!
//! One task per connection, holding little while idle: it sends the subscription's frames,
//! coalescing what is ready into one flush raced against the overflow signal (a client that
//! stops reading is cut with 1013), and handles client frames one at a time (one gateway call
//! each) while frames keep flowing.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use proliferate_core::GatewayError;
use proliferate_core::hub::{Subscription, SubscriptionEnded};
use proliferate_core::protocol::v1::*;
use serde::Deserialize;

use super::{AppState, QueryParams, authenticate};
use crate::credentials;
use crate::problem::ApiError;
use crate::serve::ReadAllowance;

/// The largest client frame handled; larger ones get `payload_too_large`.
const MAX_FRAME: usize = 1024 * 1024;
/// The read buffer each socket starts with; it grows for a larger frame.
const READ_BUFFER: usize = 256;
/// How long a browser has to send its `auth` frame.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a socket may send before its `auth` frame authenticates it.
const AUTH_FRAME_BYTES: usize = 64 * 1024;
/// How long a close frame may take to reach a client that reads slowly.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Query of the socket route.
#[derive(Debug, Deserialize)]
pub struct SocketQuery {
    #[serde(default)]
    after_seq: u64,
    #[serde(default = "default_source")]
    source: String,
}

fn default_source() -> String {
    "api".into()
}

fn encode(frame: &ServerFrame) -> Bytes {
    Bytes::from(serde_json::to_vec(frame).unwrap_or_default())
}

fn error_frame(error: &GatewayError, prompt_id: Option<String>) -> Bytes {
    encode(&ServerFrame::Error(ErrorFrame {
        code: error.code(),
        message: error.to_string(),
        prompt_id,
        ..Default::default()
    }))
}

/// Authenticates from the header (or the compatibility query) when present, then upgrades.
pub async fn upgrade(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    QueryParams(query): QueryParams<SocketQuery>,
    allowance: Option<Extension<ReadAllowance>>,
    socket: WebSocketUpgrade,
) -> Response {
    let principal = if credentials::token(&headers, uri.query()).is_some() {
        match authenticate(&state, &headers, &uri, Some(&id)) {
            Ok(principal) => match state.gateway.session(&principal, &id).await {
                Ok(_) => Some(principal),
                Err(error) => return ApiError(error).into_response(),
            },
            Err(error) => return error.into_response(),
        }
    } else {
        None
    };
    let allowance = allowance.map(|Extension(allowance)| allowance);
    if let Some(allowance) = allowance.as_ref().filter(|_| principal.is_none()) {
        allowance.limit(AUTH_FRAME_BYTES);
    }
    // A small read buffer (it grows for a large frame): idle connections hold little memory.
    socket
        .read_buffer_size(READ_BUFFER)
        .max_message_size(16 * MAX_FRAME)
        .on_upgrade(move |socket| run(state, socket, id, principal, allowance, query))
}

async fn run(
    state: AppState,
    mut socket: WebSocket,
    session_id: String,
    principal: Option<Principal>,
    allowance: Option<ReadAllowance>,
    query: SocketQuery,
) {
    // What runs once, or once per client frame, is boxed, so that an idle connection's task
    // holds only what it waits on (docs/benchmarks.md: memory per idle connection).
    let opening = open(
        &state,
        &mut socket,
        &session_id,
        principal,
        allowance,
        &query,
    );
    let Some((principal, subscription)) = Box::pin(opening).await else {
        return;
    };
    let client = Client {
        state: &state,
        principal: &principal,
        session_id: &session_id,
        source: &query.source,
    };
    if let Some((code, reason)) = serve(&client, &mut socket, subscription).await {
        Box::pin(close(&mut socket, code, reason)).await;
    }
    tracing::info!(session_id, "socket closed");
}

/// Authenticates the socket (from its first frame if the upgrade carried no credentials) and
/// subscribes it to the session; `None` once it was refused and closed.
async fn open(
    state: &AppState,
    socket: &mut WebSocket,
    session_id: &str,
    principal: Option<Principal>,
    allowance: Option<ReadAllowance>,
    query: &SocketQuery,
) -> Option<(Principal, Subscription)> {
    let principal = match principal {
        Some(principal) => principal,
        None => match first_frame_auth(state, socket, session_id).await {
            Ok(principal) => {
                if let Some(allowance) = &allowance {
                    allowance.lift();
                }
                principal
            }
            Err(error) => {
                refuse(socket, &error).await;
                return None;
            }
        },
    };
    let connecting = state
        .gateway
        .connect(&principal, session_id, query.after_seq, &query.source);
    match connecting.await {
        Ok(subscription) => {
            tracing::info!(session_id, connection_id = subscription.connection_id(), user_id = %principal.subject, after_seq = query.after_seq, "socket opened");
            Some((principal, subscription))
        }
        Err(error) => {
            refuse(socket, &error).await;
            None
        }
    }
}

/// Who a socket serves, for the client frames it handles.
struct Client<'a> {
    state: &'a AppState,
    principal: &'a Principal,
    session_id: &'a str,
    source: &'a str,
}

/// A client frame being handled: its gateway call, whose answer goes back to the client.
type Handling<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Option<Bytes>> + Send + 'a>>;

/// Serves an open socket in one task: the subscription's frames out, coalescing what is ready
/// into one flush raced against the overflow signal (a client that stops reading is cut with
/// 1013); client frames in, one at a time, each handled while frames keep flowing; a client
/// silent for three heartbeat intervals is closed with 4408. Returns the close to send, if any.
async fn serve(
    client: &Client<'_>,
    socket: &mut WebSocket,
    mut subscription: Subscription,
) -> Option<(u16, &'static str)> {
    let state = client.state;
    let mut shutting_down = state.shutting_down.clone();
    let send_stall = state.send_stall;
    let liveness = state.gateway.config().heartbeat_interval * 3;
    let silence = tokio::time::sleep(liveness);
    tokio::pin!(silence);
    // The subscription's first frame is the welcome, the first frame of every connection: no
    // client frame is read before it goes out.
    let mut welcomed = false;
    let mut handling: Option<Handling<'_>> = None;
    // A client frame read before the deadline counts, even if the deadline passed while the
    // task was sending: the read goes before the timer.
    let ended = loop {
        tokio::select! {
            biased;
            () = shutdown_requested(&mut shutting_down) => break Some((1001, "shutting_down")),
            reply = async { handling.as_mut()?.await }, if handling.is_some() => {
                handling = None;
                silence.as_mut().reset(tokio::time::Instant::now() + liveness);
                if let Some(reply) = reply {
                    let sending = tokio::time::timeout(send_stall, socket.send(text_message(reply)));
                    match Box::pin(sending).await {
                        Err(_) => break Some((1013, "slow_consumer")),
                        Ok(Err(_)) => break None,
                        Ok(Ok(())) => {}
                    }
                }
            },
            message = socket.next(), if welcomed && handling.is_none() => {
                silence.as_mut().reset(tokio::time::Instant::now() + liveness);
                match message {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break None,
                    Some(Ok(Message::Text(text))) => {
                        handling = Some(Box::pin(async move { handle(client, &text).await }));
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let error = GatewayError::BadRequest("send frames as text".into());
                        handling = Some(Box::pin(std::future::ready(Some(error_frame(&error, None)))));
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                }
            },
            () = &mut silence, if handling.is_none() => break Some((4408, "liveness_timeout")),
            frame = subscription.next() => match frame {
                Err(SubscriptionEnded::SlowConsumer) => break Some((1013, "slow_consumer")),
                Err(SubscriptionEnded::SessionEnded) => break Some((1000, "session_ended")),
                Err(SubscriptionEnded::Interrupted) => break Some((1011, "interrupted")),
                Err(SubscriptionEnded::Replay(error)) => {
                    tracing::error!(error, "replay failed");
                    break Some((1011, "internal"));
                }
                Ok(first) => {
                    welcomed = true;
                    match Box::pin(send_ready(socket, &mut subscription, first, send_stall)).await {
                        Sent::Yes => {}
                        Sent::Broken => break None,
                        Sent::Stalled => break Some((1013, "slow_consumer")),
                    }
                }
            },
        }
    };
    // A client frame being handled (a prompt, a cancel, a permission answer) still reaches the
    // gateway, whatever ended the connection.
    if let Some(handling) = handling {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, handling).await;
    }
    ended
}

/// How a write of ready frames went.
enum Sent {
    Yes,
    Broken,
    Stalled,
}

/// Sends `first` and the live frames that arrive within the subscription's gathering window, in
/// one flush. A client that takes nothing is cut, whether it falls behind its send budget (a
/// busy session) or stalls one send (a quiet one).
async fn send_ready(
    socket: &mut WebSocket,
    subscription: &mut Subscription,
    first: Bytes,
    send_stall: Duration,
) -> Sent {
    let gathering = subscription.gathering();
    if !gathering.is_zero() {
        tokio::time::sleep(gathering).await;
    }
    let mut ready = vec![first];
    ready.extend(std::iter::from_fn(|| subscription.try_next()));
    let sent = async {
        for frame in ready {
            socket.feed(text_message(frame)).await?;
        }
        socket.flush().await
    };
    tokio::select! {
        sent = sent => match sent {
            Ok(()) => {
                subscription.sent();
                Sent::Yes
            }
            Err(_) => Sent::Broken,
        },
        () = subscription.overflowed() => Sent::Stalled,
        () = tokio::time::sleep(send_stall) => Sent::Stalled,
    }
}

async fn first_frame_auth(
    state: &AppState,
    socket: &mut WebSocket,
    session_id: &str,
) -> Result<Principal, GatewayError> {
    let missing = || GatewayError::Unauthenticated("send an auth frame first".into());
    let message = tokio::time::timeout(AUTH_TIMEOUT, socket.next())
        .await
        .map_err(|_| missing())?;
    let text = match message {
        Some(Ok(Message::Text(text))) => text,
        // The read allowance ran out before a whole frame arrived.
        Some(Err(_)) => {
            return Err(GatewayError::PayloadTooLarge(format!(
                "send at most {AUTH_FRAME_BYTES} bytes before the auth frame"
            )));
        }
        _ => return Err(missing()),
    };
    let Ok(ClientFrame::Auth(auth)) = serde_json::from_str::<ClientFrame>(&text) else {
        return Err(missing());
    };
    let principal = state.gateway.authenticate(&auth.token, Some(session_id))?;
    state.gateway.session(&principal, session_id).await?;
    Ok(principal)
}

/// Handles one client frame; returns the frame to send back to this connection, if any.
async fn handle(client: &Client<'_>, text: &str) -> Option<Bytes> {
    let Client {
        state,
        principal,
        session_id,
        source,
    } = *client;
    if text.len() > MAX_FRAME {
        let error = GatewayError::PayloadTooLarge(format!(
            "the frame has {} bytes; the limit is {MAX_FRAME}",
            text.len()
        ));
        return Some(error_frame(&error, None));
    }
    let frame = match serde_json::from_str::<ClientFrame>(text) {
        Ok(frame) => frame,
        Err(error) => {
            return Some(error_frame(
                &GatewayError::BadRequest(error.to_string()),
                None,
            ));
        }
    };
    let gateway = &state.gateway;
    let result = match frame {
        ClientFrame::Ping(ping) => {
            return Some(encode(&ServerFrame::Pong(Pong { nonce: ping.nonce })));
        }
        ClientFrame::Prompt(prompt) => {
            let prompt_id = prompt.prompt_id.clone();
            let request = SendMessageRequest {
                prompt_id: Some(prompt.prompt_id),
                content: prompt.content,
                images: prompt.images,
                source: None,
            };
            return Some(
                match gateway
                    .send_prompt(principal, session_id, request, source)
                    .await
                {
                    Ok(admission) => encode(&ServerFrame::PromptAdmitted(admission)),
                    Err(error) => error_frame(&error, Some(prompt_id)),
                },
            );
        }
        ClientFrame::Cancel(_) => gateway
            .cancel(principal, session_id, source)
            .await
            .map(drop),
        ClientFrame::CancelQueued(cancel) => {
            let result = gateway
                .cancel_queued(principal, session_id, &cancel.prompt_id, source)
                .await;
            return result
                .err()
                .map(|error| error_frame(&error, Some(cancel.prompt_id)));
        }
        ClientFrame::PermissionReply(reply) => {
            gateway
                .reply_permission(
                    principal,
                    session_id,
                    &reply.permission_id,
                    reply.decision,
                    source,
                )
                .await
        }
        ClientFrame::Presence(_) => {
            return Some(match gateway.presence(principal, session_id).await {
                Ok(presence) => encode(&ServerFrame::Presence(presence)),
                Err(error) => error_frame(&error, None),
            });
        }
        ClientFrame::Auth(_) => Err(GatewayError::BadRequest("already authenticated".into())),
        ClientFrame::Unknown(raw) => Err(GatewayError::BadRequest(format!(
            "unknown frame type {}",
            raw.get("type")
                .map_or_else(String::new, ToString::to_string)
        ))),
    };
    result.err().map(|error| error_frame(&error, None))
}

fn text_message(bytes: Bytes) -> Message {
    Message::Text(Utf8Bytes::try_from(bytes).unwrap_or_default())
}

/// Sends the error, then closes: 1013 when a limit or a busy store refused the connection (retry
/// later), 1008 when its token or session did.
async fn refuse(socket: &mut WebSocket, error: &GatewayError) {
    let _ = socket.feed(text_message(error_frame(error, None))).await;
    let (code, reason) = match error.code() {
        ErrorCode::LimitExceeded => (1013, "limit_exceeded"),
        ErrorCode::Unavailable => (1013, "unavailable"),
        ErrorCode::TokenExpired => (1008, "token_expired"),
        ErrorCode::Forbidden => (1008, "forbidden"),
        ErrorCode::NotFound => (1008, "not_found"),
        ErrorCode::PayloadTooLarge => (1008, "payload_too_large"),
        _ => (1008, "unauthenticated"),
    };
    close(socket, code, reason).await;
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }));
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.send(frame)).await;
}

/// Resolves once the server starts shutting down.
async fn shutdown_requested(shutting_down: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutting_down.wait_for(|down| *down).await;
}
