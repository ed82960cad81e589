//! The load client: many connections to one stream, each counting the stamped deltas it receives
//! and how long after the model sent them.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// How many connections are opened at once.
const CONNECTING_AT_ONCE: usize = 64;
/// How often a WebSocket client pings, to stay within the gateway's liveness timeout.
const PING: Duration = Duration::from_secs(20);

/// How a client reaches the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The gateway's WebSocket.
    WebSocket,
    /// Server-Sent Events: the gateway's events route, or OpenCode's `/event`.
    Sse,
}

impl Transport {
    /// The transport's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::WebSocket => "WebSocket",
            Self::Sse => "SSE",
        }
    }
}

/// One stamped turn streamed to many clients.
#[derive(Debug, Clone, Copy)]
pub struct Stream {
    /// Clients on the session.
    pub clients: usize,
    /// Stamped deltas in the turn.
    pub deltas: usize,
    /// Time between deltas; zero for a burst.
    pub interval: Duration,
}

impl Stream {
    /// The prompt that makes the scripted model stream this turn.
    pub fn prompt(&self) -> String {
        format!(
            "[[stamps:{}]] [[delay:{}]]",
            self.deltas,
            self.interval.as_millis()
        )
    }

    /// How long a client waits for the whole turn before counting the rest as missed.
    pub fn deadline(&self) -> Duration {
        self.interval * self.deltas as u32
            + Duration::from_secs(60)
            + self.clients as u32 * Duration::from_millis(20)
    }
}

/// Where and how a client connects.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL (`ws://` for the WebSocket, `http://` for SSE).
    pub url: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// Text in the frame that says the stream is live (replay done, or connected).
    pub ready: &'static str,
    /// The prompt whose `turn_completed` ends the turn, if the stream has turns.
    pub prompt_id: Option<String>,
    /// The transport.
    pub transport: Transport,
}

/// What the clients of one stream received.
#[derive(Debug, Default)]
pub struct Received {
    /// Delivery latency of every stamped delta, in microseconds.
    pub latencies: Vec<u32>,
    /// When the first and the last stamped delta arrived.
    pub first: Option<Instant>,
    /// See `first`.
    pub last: Option<Instant>,
}

impl Received {
    fn merge(&mut self, other: Received) {
        self.latencies.extend(other.latencies);
        self.first = [self.first, other.first].into_iter().flatten().min();
        self.last = [self.last, other.last].into_iter().flatten().max();
    }
}

/// Frames of one connection, as text.
enum Connection {
    WebSocket(
        Box<
            tokio_tungstenite::WebSocketStream<
                tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
            >,
        >,
    ),
    Sse {
        body: std::pin::Pin<
            Box<dyn futures::Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send>,
        >,
        buffer: Vec<u8>,
    },
}

impl Connection {
    async fn open(target: &Target, http: &reqwest::Client) -> Result<Self, String> {
        match target.transport {
            Transport::WebSocket => {
                let mut request = target
                    .url
                    .as_str()
                    .into_client_request()
                    .map_err(|error| error.to_string())?;
                if let Some(authorization) = &target.authorization {
                    request.headers_mut().insert(
                        "authorization",
                        authorization.parse().map_err(|_| "a bad token")?,
                    );
                }
                // Small buffers, so ten thousand clients fit in the benchmark's memory.
                let config = WebSocketConfig::default().read_buffer_size(4096);
                let (socket, _) =
                    tokio_tungstenite::connect_async_with_config(request, Some(config), false)
                        .await
                        .map_err(|error| format!("connecting {}: {error}", target.url))?;
                Ok(Self::WebSocket(Box::new(socket)))
            }
            Transport::Sse => {
                let mut request = http.get(&target.url).header("accept", "text/event-stream");
                if let Some(authorization) = &target.authorization {
                    request = request.header("authorization", authorization);
                }
                let response = request
                    .send()
                    .await
                    .map_err(|error| format!("connecting {}: {error}", target.url))?;
                if !response.status().is_success() {
                    return Err(format!("{} answered {}", target.url, response.status()));
                }
                Ok(Self::Sse {
                    body: Box::pin(response.bytes_stream()),
                    buffer: Vec::new(),
                })
            }
        }
    }

    /// The next frame's text; `None` when the stream ends.
    async fn next(&mut self) -> Option<String> {
        match self {
            Self::WebSocket(socket) => loop {
                match socket.next().await? {
                    Ok(Message::Text(text)) => return Some(text.to_string()),
                    Ok(Message::Close(_)) | Err(_) => return None,
                    Ok(_) => {}
                }
            },
            Self::Sse { body, buffer } => loop {
                if let Some(end) = buffer.windows(2).position(|pair| pair == b"\n\n") {
                    let event: Vec<u8> = buffer.drain(..end + 2).collect();
                    let data: String = String::from_utf8_lossy(&event)
                        .lines()
                        .filter_map(|line| line.strip_prefix("data:"))
                        .map(str::trim_start)
                        .collect();
                    if !data.is_empty() {
                        return Some(data);
                    }
                    continue;
                }
                match body.next().await? {
                    Ok(chunk) => buffer.extend_from_slice(&chunk),
                    Err(_) => return None,
                }
            },
        }
    }

    async fn ping(&mut self) {
        if let Self::WebSocket(socket) = self {
            let _ = socket.send(Message::text(r#"{"type":"ping"}"#)).await;
        }
    }
}

/// Microseconds since the Unix epoch.
fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as u64)
}

/// The stamp of a stamped delta in `frame`, if it carries one.
fn stamp(frame: &str) -> Option<u64> {
    const KEY: &str = "\"delta\":\"";
    let start = frame.find(KEY)? + KEY.len();
    let digits = frame[start..]
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(frame.len() - start);
    frame[start..start + digits].parse().ok()
}

/// Connects `count` clients and waits until every one is live; each then runs `then`.
async fn connect_all<F, Fut, T>(
    target: &Target,
    count: usize,
    then: F,
) -> Result<Vec<tokio::task::JoinHandle<T>>, String>
where
    F: Fn(Connection) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let http = reqwest::Client::new();
    futures::stream::iter(0..count)
        .map(|_| {
            let (target, http, then) = (target.clone(), http.clone(), then.clone());
            async move {
                let mut connection = Connection::open(&target, &http).await?;
                loop {
                    match connection.next().await {
                        Some(frame) if frame.contains(target.ready) => break,
                        Some(_) => {}
                        None => return Err(format!("{} closed before it was live", target.url)),
                    }
                }
                Ok(tokio::spawn(then(connection)))
            }
        })
        .buffer_unordered(CONNECTING_AT_ONCE)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Connects `stream.clients` clients, runs `start` once they are all live, and collects what
/// they receive of the turn.
pub async fn stream<F, Fut>(target: &Target, stream: &Stream, start: F) -> Result<Received, String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let (deltas, deadline) = (stream.deltas, stream.deadline());
    let done = target
        .prompt_id
        .as_ref()
        .map(|prompt_id| format!("\"turn_completed\",\"prompt_id\":\"{prompt_id}\""));
    let clients = connect_all(target, stream.clients, move |mut connection| {
        let done = done.clone();
        async move {
            let mut received = Received::default();
            let until = tokio::time::Instant::now() + deadline;
            let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + PING, PING);
            while received.latencies.len() < deltas {
                let frame = tokio::select! {
                    frame = tokio::time::timeout_at(until, connection.next()) => match frame {
                        Ok(Some(frame)) => frame,
                        Ok(None) | Err(_) => break,
                    },
                    _ = pings.tick() => {
                        connection.ping().await;
                        continue;
                    }
                };
                if let Some(sent) = stamp(&frame) {
                    let now = Instant::now();
                    received
                        .latencies
                        .push(now_micros().saturating_sub(sent) as u32);
                    received.first.get_or_insert(now);
                    received.last = Some(now);
                } else if done
                    .as_ref()
                    .is_some_and(|done| frame.contains(done.as_str()))
                {
                    break;
                }
            }
            received
        }
    })
    .await?;
    start().await?;
    let mut all = Received::default();
    for client in clients {
        all.merge(client.await.map_err(|error| error.to_string())?);
    }
    Ok(all)
}

/// Connects one client and reads its backlog up to `replay_done`; the number of events in it.
pub async fn replay(target: &Target) -> Result<u64, String> {
    let mut connection = Connection::open(target, &reqwest::Client::new()).await?;
    let mut events = 0;
    loop {
        match connection.next().await {
            Some(frame) if frame.contains(target.ready) => return Ok(events),
            Some(frame) if frame.starts_with("{\"type\":\"event\"") => events += 1,
            Some(_) => {}
            None => return Err(format!("{} closed before its backlog ended", target.url)),
        }
    }
}

/// Idle clients, held until the returned sender is dropped.
pub struct Idle {
    _hold: watch::Sender<()>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Idle {
    /// Connects `count` idle clients and waits until all are live.
    pub async fn connect(target: &Target, count: usize) -> Result<Self, String> {
        let (hold, released) = watch::channel(());
        let clients = connect_all(target, count, move |mut connection| {
            let mut released = released.clone();
            async move {
                loop {
                    tokio::select! {
                        _ = released.changed() => return,
                        frame = connection.next() => if frame.is_none() { return },
                        () = tokio::time::sleep(PING) => connection.ping().await,
                    }
                }
            }
        })
        .await?;
        Ok(Self {
            _hold: hold,
            clients,
        })
    }

    /// How many clients are still connected.
    pub fn connected(&self) -> usize {
        self.clients
            .iter()
            .filter(|client| !client.is_finished())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_read_from_delta_fields_only() {
        assert_eq!(
            stamp(r#"{"type":"event","event":{"type":"text_delta","delta":"1796640000123456 "}}"#),
            Some(1_796_640_000_123_456)
        );
        assert_eq!(stamp(r#"{"delta":"hello"}"#), None);
        assert_eq!(stamp(r#"{"text":"1796640000123456 "}"#), None);
    }
}
