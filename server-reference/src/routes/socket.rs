//! `GET /v1/sessions/{id}/ws`: the WebSocket transport of the sync protocol.
//!
//! Two tasks per connection: the reader handles client frames (one gateway call each) and the
//! writer sends the subscription's frames, coalescing what is ready into one flush, racing every
//! flush against the overflow signal so a client that stops reading is cut with 1013.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use proliferate_core::GatewayError;
use proliferate_core::hub::{Subscription, SubscriptionEnded};
use proliferate_core::protocol::v1::*;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::{AppState, QueryParams, authenticate};
use crate::credentials;
use crate::problem::ApiError;
use crate::serve::ReadAllowance;

/// The largest client frame handled; larger ones get `payload_too_large`.
const MAX_FRAME: usize = 1024 * 1024;
/// The read buffer each socket starts with.
const READ_BUFFER: usize = 4 * 1024;
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

enum Outgoing {
    Frame(Bytes),
    Close(u16, &'static str),
}

fn encode(frame: &ServerFrame) -> Bytes {
    Bytes::from(serde_json::to_vec(frame).unwrap_or_default())
}

fn error_frame(error: &GatewayError, prompt_id: Option<String>) -> Outgoing {
    Outgoing::Frame(encode(&ServerFrame::Error(ErrorFrame {
        code: error.code(),
        message: error.to_string(),
        prompt_id,
        ..Default::default()
    })))
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
    socket: WebSocket,
    session_id: String,
    principal: Option<Principal>,
    allowance: Option<ReadAllowance>,
    query: SocketQuery,
) {
    let (mut sink, mut stream) = socket.split();
    let principal = match principal {
        Some(principal) => principal,
        None => match first_frame_auth(&state, &mut stream, &session_id).await {
            Ok(principal) => {
                if let Some(allowance) = &allowance {
                    allowance.lift();
                }
                principal
            }
            Err(error) => {
                refuse(&mut sink, &error).await;
                return;
            }
        },
    };
    let subscription = match state
        .gateway
        .connect(&principal, &session_id, query.after_seq, &query.source)
        .await
    {
        Ok(subscription) => subscription,
        Err(error) => {
            refuse(&mut sink, &error).await;
            return;
        }
    };
    tracing::info!(session_id, connection_id = subscription.connection_id(), user_id = %principal.subject, after_seq = query.after_seq, "socket opened");
    let (outgoing, direct) = mpsc::channel(64);
    let writer = tokio::spawn(write(
        sink,
        subscription,
        direct,
        state.shutting_down.clone(),
        state.send_stall,
    ));
    let liveness = state.gateway.config().heartbeat_interval * 3;
    loop {
        let next = tokio::select! {
            // The writer closed the connection (a slow consumer, a shutdown): stop reading too.
            () = outgoing.closed() => break,
            next = tokio::time::timeout(liveness, stream.next()) => next,
        };
        let message = match next {
            Err(_) => {
                let _ = outgoing
                    .send(Outgoing::Close(4408, "liveness_timeout"))
                    .await;
                break;
            }
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => break,
            Ok(Some(Ok(message))) => message,
        };
        let reply = match message {
            Message::Text(text) => {
                handle(&state, &principal, &session_id, &query.source, &text).await
            }
            Message::Binary(_) => Some(error_frame(
                &GatewayError::BadRequest("send frames as text".into()),
                None,
            )),
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => None,
        };
        if let Some(reply) = reply
            && outgoing.send(reply).await.is_err()
        {
            break;
        }
    }
    drop(outgoing);
    let _ = writer.await;
    tracing::info!(session_id, "socket closed");
}

async fn first_frame_auth(
    state: &AppState,
    stream: &mut SplitStream<WebSocket>,
    session_id: &str,
) -> Result<Principal, GatewayError> {
    let missing = || GatewayError::Unauthenticated("send an auth frame first".into());
    let message = tokio::time::timeout(AUTH_TIMEOUT, stream.next())
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
async fn handle(
    state: &AppState,
    principal: &Principal,
    session_id: &str,
    source: &str,
    text: &str,
) -> Option<Outgoing> {
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
        ClientFrame::Ping(ping) => return Some(Outgoing::Frame(encode(&ServerFrame::Pong(ping)))),
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
                    Ok(admission) => {
                        Outgoing::Frame(encode(&ServerFrame::PromptAdmitted(admission)))
                    }
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
                Ok(presence) => Outgoing::Frame(encode(&ServerFrame::Presence(presence))),
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

fn to_message(outgoing: &Outgoing) -> Message {
    match outgoing {
        Outgoing::Frame(bytes) => text_message(bytes.clone()),
        Outgoing::Close(code, reason) => Message::Close(Some(CloseFrame {
            code: *code,
            reason: Utf8Bytes::from_static(reason),
        })),
    }
}

fn text_message(bytes: Bytes) -> Message {
    Message::Text(Utf8Bytes::try_from(bytes).unwrap_or_default())
}

/// Sends the error, then closes: 1013 when a limit or a busy store refused the connection (retry
/// later), 1008 when its token or session did.
async fn refuse(sink: &mut SplitSink<WebSocket, Message>, error: &GatewayError) {
    let _ = sink.feed(to_message(&error_frame(error, None))).await;
    let (code, reason) = match error.code() {
        ErrorCode::LimitExceeded => (1013, "limit_exceeded"),
        ErrorCode::Unavailable => (1013, "unavailable"),
        ErrorCode::TokenExpired => (1008, "token_expired"),
        ErrorCode::Forbidden => (1008, "forbidden"),
        ErrorCode::NotFound => (1008, "not_found"),
        ErrorCode::PayloadTooLarge => (1008, "payload_too_large"),
        _ => (1008, "unauthenticated"),
    };
    close(sink, code, reason).await;
}

async fn close(sink: &mut SplitSink<WebSocket, Message>, code: u16, reason: &'static str) {
    let frame = to_message(&Outgoing::Close(code, reason));
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(frame)).await;
}

/// Resolves once the server starts shutting down.
async fn shutdown_requested(shutting_down: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutting_down.wait_for(|down| *down).await;
}

async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut subscription: Subscription,
    mut direct: mpsc::Receiver<Outgoing>,
    mut shutting_down: tokio::sync::watch::Receiver<bool>,
    send_stall: Duration,
) {
    // The subscription's first frame is the welcome, the first frame of every connection: no
    // answer to a client frame goes before it.
    let mut welcomed = false;
    let (code, reason) = loop {
        tokio::select! {
            biased;
            () = shutdown_requested(&mut shutting_down) => break (1001, "shutting_down"),
            outgoing = direct.recv(), if welcomed => match outgoing {
                None => return,
                Some(Outgoing::Close(code, reason)) => break (code, reason),
                Some(frame) => match tokio::time::timeout(send_stall, sink.send(to_message(&frame))).await {
                    Err(_) => break (1013, "slow_consumer"),
                    Ok(Err(_)) => return,
                    Ok(Ok(())) => {}
                },
            },
            frame = subscription.next() => match frame {
                Err(SubscriptionEnded::SlowConsumer) => break (1013, "slow_consumer"),
                Err(SubscriptionEnded::SessionEnded) => break (1000, "session_ended"),
                Err(SubscriptionEnded::Interrupted) => break (1011, "interrupted"),
                Err(SubscriptionEnded::Replay(error)) => {
                    tracing::error!(error, "replay failed");
                    break (1011, "internal");
                }
                Ok(first) => {
                    welcomed = true;
                    // Live frames that arrive meanwhile go out in the same write.
                    let gathering = subscription.gathering();
                    if !gathering.is_zero() {
                        tokio::time::sleep(gathering).await;
                    }
                    let mut ready = vec![first];
                    ready.extend(std::iter::from_fn(|| subscription.try_next()));
                    let sent = async {
                        for frame in ready {
                            sink.feed(text_message(frame)).await?;
                        }
                        sink.flush().await
                    };
                    // A client that takes nothing is cut, whether it falls behind its send
                    // budget (a busy session) or stalls one send (a quiet one).
                    tokio::select! {
                        sent = sent => match sent {
                            Ok(()) => subscription.sent(),
                            Err(_) => return,
                        },
                        () = subscription.overflowed() => break (1013, "slow_consumer"),
                        () = tokio::time::sleep(send_stall) => break (1013, "slow_consumer"),
                    }
                }
            },
        }
    };
    close(&mut sink, code, reason).await;
}
