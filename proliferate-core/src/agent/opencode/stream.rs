//! OpenCode's `/event` stream: one subscription per session, a heartbeat watchdog, reconnects,
//! and a bound on the size of each message read.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::{Event as SseMessage, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;

use super::control::PendingAbort;
use super::translate::Translator;
use crate::agent::{AgentUpdate, DriverError};
use crate::sandbox::AgentEndpoint;

type Messages = Pin<Box<dyn Stream<Item = Result<SseMessage, EventStreamError<ReadError>>> + Send>>;

/// The largest single message read from the agent's event stream; a larger one ends the stream,
/// which is then reopened, so an agent cannot make the gateway buffer without bound.
pub const MAX_AGENT_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// Why reading the agent's event stream failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The connection failed.
    #[error("{0}")]
    Transport(#[from] reqwest::Error),
    /// One message grew past [`MAX_AGENT_MESSAGE_BYTES`].
    #[error("a message of the agent's event stream passed {0} bytes")]
    Oversized(usize),
}

/// Delays between reconnect attempts; after the last, the agent is reported lost.
const RECONNECT_DELAYS: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// Opens `/event` and waits for OpenCode's first frame, so nothing that follows is missed.
pub(super) async fn subscribe(
    agent: &AgentEndpoint,
    heartbeat_timeout: Duration,
) -> Result<Messages, DriverError> {
    let response = agent
        .http
        .get(format!("{}/event", agent.base_url))
        .header("accept", "text/event-stream")
        .send()
        .await
        .map_err(|error| DriverError::Unreachable(error.without_url().to_string()))?;
    if !response.status().is_success() {
        return Err(DriverError::Rejected {
            status: response.status().as_u16(),
            message: "GET /event".into(),
        });
    }
    let bytes = bounded(response.bytes_stream(), MAX_AGENT_MESSAGE_BYTES);
    let mut messages: Messages = Box::pin(bytes.eventsource());
    match tokio::time::timeout(heartbeat_timeout, messages.next()).await {
        Ok(Some(Ok(_))) => Ok(messages),
        Ok(Some(Err(error))) => Err(DriverError::Protocol(error.to_string())),
        Ok(None) => Err(DriverError::Unreachable("the event stream closed".into())),
        Err(_) => Err(DriverError::Unreachable(
            "the event stream sent nothing".into(),
        )),
    }
}

/// Forwards translated updates until the agent is lost or nobody listens any more, repeating a
/// pending abort when the session goes busy.
pub(super) async fn run(
    mut messages: Messages,
    agent: AgentEndpoint,
    heartbeat_timeout: Duration,
    mut translator: Translator,
    abort: Arc<PendingAbort>,
    updates: mpsc::Sender<AgentUpdate>,
) {
    loop {
        let ended_because = loop {
            let message = tokio::select! {
                message = tokio::time::timeout(heartbeat_timeout, messages.next()) => message,
                () = updates.closed() => return,
            };
            let message = match message {
                Err(_) => break "no heartbeat from the agent".to_owned(),
                Ok(None) => break "the agent closed its event stream".to_owned(),
                Ok(Some(Err(error))) => break format!("the agent's event stream failed: {error}"),
                Ok(Some(Ok(message))) => message,
            };
            let Ok(event) = serde_json::from_str::<Value>(&message.data) else {
                tracing::warn!(
                    length = message.data.len(),
                    "skipped an unparsable agent event"
                );
                continue;
            };
            let was_busy = translator.busy();
            let translated = translator.translate(&event);
            if !was_busy && translator.busy() {
                abort.on_busy();
            }
            for update in translated {
                if matches!(update, AgentUpdate::Idle) {
                    abort.settled();
                }
                if updates.send(update).await.is_err() {
                    return;
                }
            }
        };
        tracing::warn!(reason = %ended_because, "agent event stream interrupted");
        match reconnect(&agent, heartbeat_timeout).await {
            Ok(reconnected) => messages = reconnected,
            Err(error) => {
                let reason = format!("{ended_because}; reconnecting failed: {error}");
                let _ = updates.send(AgentUpdate::Lost(reason)).await;
                return;
            }
        }
    }
}

/// Passes the stream's bytes on until one message (the bytes between blank lines) passes
/// `limit`, then fails with [`ReadError::Oversized`].
pub fn bounded<E>(
    bytes: impl Stream<Item = Result<Bytes, E>> + Send + 'static,
    limit: usize,
) -> impl Stream<Item = Result<Bytes, ReadError>> + Send + 'static
where
    ReadError: From<E>,
{
    let (mut message_bytes, mut at_line_start) = (0usize, true);
    bytes.map(move |chunk| {
        let chunk = chunk?;
        for &byte in chunk.iter() {
            match byte {
                b'\n' if at_line_start => message_bytes = 0,
                b'\n' => at_line_start = true,
                b'\r' => {}
                _ => {
                    at_line_start = false;
                    message_bytes += 1;
                }
            }
            if message_bytes > limit {
                return Err(ReadError::Oversized(limit));
            }
        }
        Ok(chunk)
    })
}

async fn reconnect(
    agent: &AgentEndpoint,
    heartbeat_timeout: Duration,
) -> Result<Messages, DriverError> {
    let mut last_error = DriverError::Unreachable("not tried".into());
    for delay in RECONNECT_DELAYS {
        tokio::time::sleep(delay).await;
        match subscribe(agent, heartbeat_timeout).await {
            Ok(messages) => return Ok(messages),
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(chunks: &[&'static str], limit: usize) -> Vec<Result<Bytes, String>> {
        let chunks = chunks
            .iter()
            .map(|chunk| Ok::<_, ReadError>(Bytes::from_static(chunk.as_bytes())));
        bounded(futures::stream::iter(chunks.collect::<Vec<_>>()), limit)
            .map(|chunk| chunk.map_err(|error| error.to_string()))
            .collect()
            .await
    }

    #[tokio::test]
    async fn messages_within_the_limit_pass_whatever_their_line_endings() {
        let read = read(
            &["data: 12345\n\n", "data: 1234", "5\r\n\r\ndata: 67890\n\n"],
            11,
        )
        .await;
        assert!(read.iter().all(Result::is_ok), "{read:?}");
    }

    #[tokio::test]
    async fn a_message_past_the_limit_ends_the_stream_even_when_split_across_reads() {
        let read = read(
            &["data: 12345\n\n", "data: 1234", "5678\n", "data: 9\n\n"],
            11,
        )
        .await;
        assert!(read[0].is_ok() && read[1].is_ok());
        assert_eq!(
            read[2].as_ref().unwrap_err(),
            "a message of the agent's event stream passed 11 bytes"
        );
    }
}
