//! Two gateways on one PostgreSQL database and one Redis: what a client of the gateway that
//! follows a session costs against a client of the gateway running it, and how long a client
//! waits when the running gateway is killed.

use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use proliferate_core::protocol::v1::ServerFrame;

use crate::gateway::{Gateway, Secrets};
use crate::load::{self, Stream, Transport};
use crate::report::{Failover, StreamResult};

/// The lease lifetime the gateways run with: a killed gateway's sessions are taken over after
/// it.
const LEASE_TTL_SECS: &str = "3";

/// Where the gateways keep their state and meet.
#[derive(Debug, Clone)]
pub struct Shared {
    /// A PostgreSQL database (`postgres://…`); the gateways create their tables in it.
    pub database_url: String,
    /// A Redis server (`redis://…`).
    pub bus_url: String,
}

/// Starts gateway `name` on `shared`.
async fn start(shared: &Shared, secrets: &Secrets, name: &str) -> Result<Gateway, String> {
    let arguments = [
        "--database-url",
        &shared.database_url,
        "--bus-url",
        &shared.bus_url,
        "--gateway-id",
        name,
        "--lease-ttl-secs",
        LEASE_TTL_SECS,
    ]
    .map(str::to_owned);
    Gateway::launch(secrets, &arguments).await
}

/// The same paced turn streamed to `stream.clients` clients of the running gateway, then to as
/// many clients of the following one (its prompt sent through the following one too); then
/// `failovers` kills of the running gateway, each timed from the kill to the first new event a
/// client of the other gateway receives.
pub async fn measure(
    shared: &Shared,
    stream: &Stream,
    failovers: usize,
) -> Result<(Vec<StreamResult>, Failover), String> {
    let secrets = Secrets::new()?;
    let run = std::process::id();
    let names = [format!("bench-a-{run}"), format!("bench-b-{run}")];
    let mut gateways = [
        start(shared, &secrets, &names[0]).await?,
        start(shared, &secrets, &names[1]).await?,
    ];
    let (session_id, streams) = side_by_side(&gateways, stream).await?;
    let mut times = Vec::new();
    for round in 0..failovers {
        // The first runs the session, then whichever took it over.
        let running = round % 2;
        let [first, second] = &mut gateways;
        let (killed, watching) = match running {
            0 => (first, &*second),
            _ => (second, &*first),
        };
        times.push(failover(killed, watching, &session_id).await?);
        gateways[running] = start(shared, &secrets, &names[running]).await?;
    }
    // Deleted before the gateways stop, so neither takes it over from the other as they do.
    let path = format!("/v1/sessions/{session_id}");
    gateways[0]
        .call(reqwest::Method::DELETE, &path, None)
        .await?;
    Ok((streams, Failover { times }))
}

/// A session created (and warmed up) on the first gateway, which runs it; its turns streamed to
/// clients of each gateway in turn.
async fn side_by_side(
    gateways: &[Gateway; 2],
    stream: &Stream,
) -> Result<(String, Vec<StreamResult>), String> {
    let session = gateways[0].session().await?;
    let mut results = Vec::new();
    for (gateway, server) in [
        (&gateways[0], "running gateway"),
        (&gateways[1], "following gateway"),
    ] {
        session.next_turn();
        let target = gateway.target(&session, session.head().await?, Transport::WebSocket);
        let prompt = stream.prompt();
        let prompting = || session.prompt_through(gateway, &prompt);
        let received = load::stream(&target, stream, prompting).await?;
        results.push(StreamResult {
            server,
            transport: Transport::WebSocket,
            stream: *stream,
            received,
            cpu: Duration::ZERO,
            api: None,
            stages: None,
        });
    }
    Ok((session.id.clone(), results))
}

/// Kills `running` while a client of `watching` follows the session; the time from the kill to
/// the client's first event after its cursor, reconnecting as a client would.
async fn failover(
    running: &mut Gateway,
    watching: &Gateway,
    session_id: &str,
) -> Result<Duration, String> {
    let head = watching.head_of(session_id).await?;
    let mut client = connect(watching, session_id, head).await?;
    let cursor = replay_done(&mut client).await?;
    running.kill();
    let killed = Instant::now();
    // The stream ends once the watching gateway sees the running one gone.
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_secs(300), client.next()).await
    {
        if matches!(message, Message::Close(_)) {
            break;
        }
    }
    while killed.elapsed() < Duration::from_secs(300) {
        let mut client = connect(watching, session_id, cursor).await?;
        if first_event(&mut client).await {
            return Ok(killed.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("no gateway took the session over".into())
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(gateway: &Gateway, session_id: &str, after_seq: u64) -> Result<Client, String> {
    let base = gateway.base().replacen("http", "ws", 1);
    let url = format!("{base}/v1/sessions/{session_id}/ws?after_seq={after_seq}&source=bench");
    let mut request = url
        .into_client_request()
        .map_err(|error| error.to_string())?;
    let header = gateway
        .authorization()
        .parse()
        .map_err(|_| "a bad header")?;
    request.headers_mut().insert("authorization", header);
    let (client, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|error| error.to_string())?;
    Ok(client)
}

/// Reads through the replay; the seq it ends at.
async fn replay_done(client: &mut Client) -> Result<u64, String> {
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_secs(60), client.next()).await
    {
        if let Message::Text(text) = message
            && let Ok(ServerFrame::ReplayDone(done)) = serde_json::from_str(&text)
        {
            return Ok(done.through_seq);
        }
    }
    Err("the stream ended before its replay did".into())
}

/// True once an event arrives; false if the stream was refused or ended first.
async fn first_event(client: &mut Client) -> bool {
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_secs(60), client.next()).await
    {
        match message {
            Message::Text(text) => match serde_json::from_str(&text) {
                Ok(ServerFrame::Event(_)) => return true,
                Ok(ServerFrame::Error(_)) => return false,
                _ => {}
            },
            Message::Close(_) => return false,
            _ => {}
        }
    }
    false
}
