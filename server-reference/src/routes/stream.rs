//! Events as Server-Sent Events: the same frames as the socket, with `id:` set to the seq so a
//! reconnecting `EventSource` resumes through `Last-Event-ID`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::http::{HeaderValue, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use proliferate_core::protocol::v1::Principal;
use serde::Deserialize;

use super::AppState;
use crate::problem::ApiError;

/// Just enough of a frame to name its SSE event.
#[derive(Deserialize)]
struct FrameHead {
    #[serde(rename = "type")]
    frame_type: String,
    seq: Option<u64>,
    event: Option<EventHead>,
}

#[derive(Deserialize)]
struct EventHead {
    #[serde(rename = "type")]
    event_type: String,
}

fn to_sse(bytes: &Bytes) -> SseEvent {
    let text = std::str::from_utf8(bytes).unwrap_or_default();
    let event = SseEvent::default().data(text);
    match serde_json::from_slice::<FrameHead>(bytes) {
        Ok(FrameHead {
            seq: Some(seq),
            event: Some(head),
            ..
        }) => event.id(seq.to_string()).event(head.event_type),
        Ok(head) => event.event(head.frame_type),
        Err(_) => event,
    }
}

/// Streams the session's frames from `after_seq` as SSE.
pub async fn events(
    state: &AppState,
    principal: &Principal,
    session_id: &str,
    after_seq: u64,
) -> Result<Response, ApiError> {
    let subscription = state
        .gateway
        .connect(principal, session_id, after_seq, "sse")
        .await?;
    let mut shutting_down = state.shutting_down.clone();
    // A stopping server ends the stream, and the client resumes from its `Last-Event-ID`.
    // Frames that gathered go out back to back, which the server writes at once.
    let gathered = VecDeque::new();
    let frames = futures::stream::unfold(
        (subscription, gathered),
        |(mut subscription, mut gathered)| async move {
            if let Some(frame) = gathered.pop_front() {
                return Some((
                    Ok::<_, Infallible>(to_sse(&frame)),
                    (subscription, gathered),
                ));
            }
            // Asked for more once the body took what gathered: that reached the socket.
            subscription.sent();
            let frame = subscription.next().await.ok()?;
            let gathering = subscription.gathering();
            if !gathering.is_zero() {
                tokio::time::sleep(gathering).await;
            }
            gathered.extend(std::iter::from_fn(|| subscription.try_next()));
            Some((Ok(to_sse(&frame)), (subscription, gathered)))
        },
    )
    .take_until(async move {
        let _ = shutting_down.wait_for(|down| *down).await;
    });
    let mut response = Sse::new(frames)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-transform"),
    );
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
