//! A real reference server in-process (real OpenCode, scripted model, SQLite), and helpers.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use proliferate_client::protocol::v1::*;
use proliferate_client::{Client, Connection, Update};
use proliferate_core::auth::{Authenticator, claims};
use server_reference::{ServeArgs, Server};

pub const SECRET: &str = "client-tests-user-secret-of-32-bytes-or-more";
pub const SERVICE_SECRET: &str = "client-tests-service-secret-of-32-bytes-or-more";

fn opencode_program() -> PathBuf {
    let program = proliferate_core::agent::opencode::default_program();
    assert!(
        program.is_absolute() && program.exists(),
        "OpenCode is not installed ({}); run scripts/install-opencode",
        program.display()
    );
    program
}

/// A reference server on loopback, with its data directory.
pub struct TestServer {
    pub server: Option<Server>,
    pub args: ServeArgs,
    _data: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(data.path().join("secrets")).unwrap();
        std::fs::write(data.path().join("secrets/jwt"), SECRET).unwrap();
        std::fs::write(data.path().join("secrets/service"), SERVICE_SECRET).unwrap();
        let mut args = ServeArgs::parse_defaults(Some(data.path().to_path_buf()));
        args.listen = "127.0.0.1:0".parse().unwrap();
        args.opencode = Some(opencode_program());
        let server = Server::start(&args).await.expect("the server starts");
        args.listen = server.address;
        Self {
            server: Some(server),
            args,
            _data: data,
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.args.listen
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address())
    }

    /// Stops the server gracefully and starts it again on the same port and data.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        self.server = Some(
            Server::start(&self.args)
                .await
                .expect("the server restarts"),
        );
    }
}

pub fn token(subject: &str, organization: &str, lifetime: Duration) -> String {
    Authenticator::new(SECRET, SERVICE_SECRET).mint(&claims(
        subject,
        organization,
        &[Scope::Read, Scope::Write, Scope::Admin],
        lifetime,
    ))
}

pub fn client(url: &str) -> Client {
    Client::builder(url)
        .token(token("ada", "acme", Duration::from_secs(3600)))
        .source("cli")
        .build()
        .unwrap()
}

/// The connection's next update, within two minutes.
pub async fn next_update(connection: &Connection) -> Update {
    tokio::time::timeout(Duration::from_secs(120), connection.next())
        .await
        .expect("an update in time")
        .expect("the connection is open")
        .expect("no error")
}

/// Reads updates until `until` matches an event; returns the events read.
pub async fn events_until(
    connection: &mut Connection,
    mut until: impl FnMut(&EventEnvelope) -> bool,
) -> Vec<EventEnvelope> {
    let mut events = Vec::new();
    loop {
        if let Update::Event(envelope) = next_update(connection).await {
            let stop = until(&envelope);
            events.push(envelope);
            if stop {
                return events;
            }
        }
    }
}

/// True for the event that ends the turn of `prompt_id`.
pub fn ends_turn(envelope: &EventEnvelope, prompt_id: &str) -> bool {
    match &envelope.event {
        Event::TurnCompleted(turn) => turn.prompt_id == prompt_id,
        Event::TurnCancelled(turn) => turn.prompt_id == prompt_id,
        _ => false,
    }
}

/// A new session, and a connection to it once its agent runs.
pub async fn running_session(client: &Client) -> (SessionInfo, Connection) {
    let session = client
        .create_session(&CreateSessionRequest::default())
        .await
        .unwrap();
    let mut connection = client.connect(&session.id, Default::default());
    until_running(&mut connection).await;
    (session, connection)
}

/// Waits until the session runs.
pub async fn until_running(connection: &mut Connection) {
    loop {
        let update = tokio::time::timeout(Duration::from_secs(120), connection.next())
            .await
            .expect("an update in time")
            .expect("open")
            .expect("no error");
        match update {
            Update::Connected(welcome) if welcome.status == SessionStatus::Running => return,
            Update::Event(envelope) => {
                if let Event::StatusChanged(changed) = &envelope.event
                    && changed.status == SessionStatus::Running
                {
                    return;
                }
            }
            _ => {}
        }
    }
}

/// A prompt that says `words` words, one per `delay_ms`.
pub fn long_prompt(words: usize, delay_ms: u64) -> String {
    let text: Vec<String> = (1..=words).map(|word| format!("w{word}")).collect();
    format!("[[delay:{delay_ms}]] [[say:{}]]", text.join(" "))
}

/// Asserts that `events` are the seqs after `after`, each once, in order.
pub fn assert_dense(events: &[EventEnvelope], after: u64) {
    let seqs: Vec<u64> = events.iter().map(|envelope| envelope.seq).collect();
    let expected: Vec<u64> = (after + 1..=after + seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "every seq exactly once, in order");
}
