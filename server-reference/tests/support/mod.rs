//! Drives the real `proliferate-server` binary over real sockets on loopback.

#![allow(dead_code)]

#[cfg(feature = "postgres")]
#[path = "../../../proliferate-core/tests/support/postgres.rs"]
pub mod postgres;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use proliferate_core::auth::{Authenticator, claims};
use proliferate_core::protocol::v1::*;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as SocketError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &str = "test-secret-for-users-of-32-bytes-or-more";
pub const SERVICE_SECRET: &str = "test-secret-for-services-of-32-bytes-or-more";

/// The pinned OpenCode, installed by `scripts/install-opencode`.
pub fn opencode_program() -> PathBuf {
    let program = proliferate_core::agent::opencode::default_program();
    assert!(
        program.is_absolute() && program.exists(),
        "OpenCode is not installed ({}); run scripts/install-opencode",
        program.display()
    );
    program
}

/// A `proliferate-server` process with its own data directory.
pub struct TestServer {
    pub base: String,
    pub data_dir: PathBuf,
    /// The PostgreSQL database it runs on, under `PROLIFERATE_TEST_STORE=postgres`.
    database: Option<String>,
    arguments: Vec<String>,
    launch: Launch,
    child: Child,
    _folder: Option<tempfile::TempDir>,
}

/// How a test server's process is started.
#[derive(Clone)]
struct Launch {
    /// The command line up to and including the server program.
    program: Vec<PathBuf>,
    /// The OpenCode it runs.
    opencode: PathBuf,
    /// Its HOME, if not inherited.
    home: Option<PathBuf>,
    /// More environment variables.
    environment: Vec<(String, String)>,
    /// Where its log (at `info`) goes, if not to the test's output (at `warn`).
    log: Option<PathBuf>,
}

impl Launch {
    fn default() -> Self {
        Self {
            program: vec![env!("CARGO_BIN_EXE_proliferate-server").into()],
            opencode: opencode_program(),
            home: None,
            environment: Vec::new(),
            log: None,
        }
    }
}

/// The user an unprivileged server runs as.
const NOBODY: u32 = 65534;

/// Links (or copies) `source` to `target`.
fn place(source: &Path, target: &Path) {
    std::fs::hard_link(source, target)
        .or_else(|_| std::fs::copy(source, target).map(drop))
        .unwrap_or_else(|error| panic!("placing {}: {error}", source.display()));
}

impl TestServer {
    /// Starts a server with extra `serve` arguments.
    pub fn start(arguments: &[&str]) -> Self {
        let folder = tempfile::tempdir().unwrap();
        let data_dir = folder.path().to_path_buf();
        Self::launched(Launch::default(), folder, data_dir, arguments)
    }

    /// Starts `launch` with `arguments` on `data_dir`, keeping `folder` while the server lives.
    fn launched(
        launch: Launch,
        folder: tempfile::TempDir,
        data_dir: PathBuf,
        arguments: &[&str],
    ) -> Self {
        let mut arguments: Vec<String> = arguments
            .iter()
            .map(|argument| argument.to_string())
            .collect();
        let database = (!arguments
            .iter()
            .any(|argument| argument == "--database-url"))
        .then(own_database)
        .flatten();
        if let Some(name) = &database {
            arguments.extend(["--database-url".into(), database_url(name)]);
        }
        let (child, base) = spawn(&launch, &data_dir, &arguments, "127.0.0.1:0");
        Self {
            base,
            data_dir,
            database,
            arguments,
            launch,
            child,
            _folder: Some(folder),
        }
    }

    /// Starts a server with extra `serve` arguments and environment variables, logging at `info`
    /// into a file ([`TestServer::log`]).
    pub fn start_with_environment(arguments: &[&str], environment: &[(&str, &str)]) -> Self {
        let folder = tempfile::tempdir().unwrap();
        let data_dir = folder.path().join("data");
        let launch = Launch {
            environment: environment
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            log: Some(folder.path().join("server.log")),
            ..Launch::default()
        };
        Self::launched(launch, folder, data_dir, arguments)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server logged so far, if it logs into a file.
    pub fn log(&self) -> String {
        self.launch
            .log
            .as_ref()
            .map(|path| std::fs::read_to_string(path).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Starts a server as an unprivileged user. When the tests run as root, the server runs as
    /// `nobody` with the server and OpenCode linked into a folder that user can read and a data
    /// directory of its own; otherwise the tests' own user is already unprivileged.
    pub fn start_unprivileged(arguments: &[&str]) -> Self {
        if !nix::unistd::geteuid().is_root() {
            return Self::start(arguments);
        }
        use std::os::unix::fs::PermissionsExt;
        let folder = tempfile::tempdir().unwrap();
        let root = folder.path();
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (bin, data_dir, home) = (root.join("bin"), root.join("data"), root.join("home"));
        for path in [&bin, &data_dir, &home] {
            std::fs::create_dir(path).unwrap();
        }
        for path in [&data_dir, &home] {
            std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        place(
            Path::new(env!("CARGO_BIN_EXE_proliferate-server")),
            &bin.join("proliferate-server"),
        );
        place(
            &std::fs::canonicalize(opencode_program()).unwrap(),
            &bin.join("opencode"),
        );
        let launch = Launch {
            program: vec![
                "setpriv".into(),
                format!("--reuid={NOBODY}").into(),
                format!("--regid={NOBODY}").into(),
                "--clear-groups".into(),
                "--".into(),
                bin.join("proliferate-server"),
            ],
            opencode: bin.join("opencode"),
            home: Some(home),
            environment: Vec::new(),
            log: None,
        };
        Self::launched(launch, folder, data_dir, arguments)
    }

    /// Kills the process without any shutdown, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same data directory and address.
    pub fn restart(&mut self) {
        let address = self.base.trim_start_matches("http://").to_owned();
        let (child, base) = spawn(&self.launch, &self.data_dir, &self.arguments, &address);
        self.child = child;
        self.base = base;
    }

    /// Asks the server to stop (SIGTERM) and waits for it.
    pub fn terminate(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }

    pub fn websocket_url(&self, session_id: &str, after_seq: u64) -> String {
        format!(
            "{}/v1/sessions/{session_id}/ws?after_seq={after_seq}&source=cli",
            self.base.replacen("http://", "ws://", 1)
        )
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.terminate();
        if let Some(name) = &self.database {
            psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// With `PROLIFERATE_TEST_STORE=postgres`, a database of its own on the machine's PostgreSQL
/// for each test server, instead of SQLite in its data folder.
fn own_database() -> Option<String> {
    let store = std::env::var("PROLIFERATE_TEST_STORE").unwrap_or_default();
    (store == "postgres").then(|| {
        let name = format!("proliferate_test_{}", uuid::Uuid::new_v4().simple());
        psql(&format!("CREATE DATABASE {name}"));
        name
    })
}

fn database_url(name: &str) -> String {
    format!("postgres://postgres@127.0.0.1:5432/{name}")
}

/// Runs one statement as the machine's PostgreSQL superuser.
fn psql(statement: &str) {
    let status = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-qc",
            statement,
        ])
        .status()
        .expect("psql runs");
    assert!(status.success(), "psql: {statement}");
}

fn spawn(launch: &Launch, data_dir: &Path, arguments: &[String], listen: &str) -> (Child, String) {
    let mut command = Command::new(&launch.program[0]);
    if let Some(home) = &launch.home {
        command.env("HOME", home);
    }
    command
        .args(&launch.program[1..])
        .arg("serve")
        .args(["--listen", listen, "--data-dir"])
        .arg(data_dir)
        .arg("--opencode")
        .arg(&launch.opencode)
        .args(arguments)
        .env("PROLIFERATE_JWT_SECRET", SECRET)
        .env("PROLIFERATE_SERVICE_SECRET", SERVICE_SECRET)
        .envs(launch.environment.iter().map(|(name, value)| (name, value)))
        .stdout(Stdio::piped());
    match &launch.log {
        Some(path) => {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            command.env("RUST_LOG", "info").stderr(log);
        }
        None => {
            command.env("RUST_LOG", "warn").stderr(Stdio::inherit());
        }
    }
    let mut child = command.spawn().expect("proliferate-server starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Start-up may log (an orphaned agent stopped, say) before the server says where it listens.
    let base = loop {
        let line = lines.next().expect("a listening line").expect("readable");
        if let Some(address) = line.strip_prefix("proliferate-server listening on ") {
            break address.to_owned();
        }
        eprintln!("{line}");
    };
    // The server logs JSON lines on stdout after its first line.
    let mut log = launch.log.as_ref().map(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
    });
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if let Some(log) = log.as_mut() {
                let _ = writeln!(log, "{line}");
            }
        }
    });
    (child, base)
}

pub fn authenticator() -> Authenticator {
    Authenticator::new(SECRET, SERVICE_SECRET)
}

/// A token for `subject` in `organization` with read and write.
pub fn token(subject: &str, organization: &str) -> String {
    authenticator().mint(&claims(
        subject,
        organization,
        &[Scope::Read, Scope::Write, Scope::Admin],
        Duration::from_secs(3600),
    ))
}

/// HTTP helpers with a token.
pub struct Api {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(server: &TestServer, token: &str) -> Self {
        Self {
            base: server.base.clone(),
            token: token.into(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn create_session(&self) -> SessionInfo {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/v1/sessions",
                Some(json!({"title": "test"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        serde_json::from_value(body).unwrap()
    }

    pub async fn prompt(
        &self,
        session_id: &str,
        prompt_id: &str,
        content: &str,
    ) -> PromptAdmission {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/sessions/{session_id}/messages"),
                Some(json!({"prompt_id": prompt_id, "content": content})),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        serde_json::from_value(body).unwrap()
    }

    /// Cancels the session's running turn; whether one ran.
    pub async fn cancel(&self, session_id: &str) -> bool {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/sessions/{session_id}/cancel"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["cancelled"] == true
    }

    pub async fn session(&self, session_id: &str) -> SessionInfo {
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/sessions/{session_id}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).unwrap()
    }

    /// Polls until the session has `status`.
    pub async fn wait_for_status(&self, session_id: &str, status: SessionStatus) -> SessionInfo {
        for _ in 0..600 {
            let info = self.session(session_id).await;
            if info.status == status {
                return info;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("session {session_id} never reached {status:?}");
    }
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a socket with a bearer header.
pub async fn connect(server: &TestServer, session_id: &str, after_seq: u64, token: &str) -> Socket {
    try_connect(server, session_id, after_seq, token)
        .await
        .expect("socket opens")
}

pub async fn try_connect(
    server: &TestServer,
    session_id: &str,
    after_seq: u64,
    token: &str,
) -> Result<Socket, SocketError> {
    connect_url(&server.websocket_url(session_id, after_seq), token).await
}

/// Opens a socket to `url` with a bearer header.
pub async fn connect_url(url: &str, token: &str) -> Result<Socket, SocketError> {
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// Opens a socket whose kernel receive buffer is tiny, so a client that stops reading pushes
/// back on the server at once instead of after megabytes of buffering.
pub async fn connect_with_small_buffer(
    server: &TestServer,
    session_id: &str,
    token: &str,
) -> WebSocketStream<TcpStream> {
    let address: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(address).await.unwrap();
    let mut request = server
        .websocket_url(session_id, 0)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::client_async(request, stream)
        .await
        .expect("socket opens")
        .0
}

/// What a client read: raw text frames, or the close.
#[derive(Debug)]
pub enum Received {
    Frame(String, Box<ServerFrame>),
    Closed(Option<CloseFrame>),
}

pub async fn receive<S>(socket: &mut WebSocketStream<S>, limit: Duration) -> Received
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let message = tokio::time::timeout(limit, socket.next())
            .await
            .unwrap_or_else(|_| panic!("nothing received within {limit:?}"));
        match message {
            Some(Ok(Message::Text(text))) => {
                let frame: ServerFrame = serde_json::from_str(&text).expect("a server frame");
                return Received::Frame(text.to_string(), Box::new(frame));
            }
            Some(Ok(Message::Close(close))) => return Received::Closed(close),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Received::Closed(None),
        }
    }
}

/// Reads frames until `until` matches one; returns all raw frames read, in order.
pub async fn read_until<S>(
    socket: &mut WebSocketStream<S>,
    mut until: impl FnMut(&ServerFrame) -> bool,
) -> Vec<(String, ServerFrame)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut frames = Vec::new();
    loop {
        match receive(socket, Duration::from_secs(90)).await {
            Received::Frame(text, frame) => {
                let stop = until(&frame);
                frames.push((text, *frame));
                if stop {
                    return frames;
                }
            }
            Received::Closed(close) => panic!(
                "closed early ({close:?}) after {} frames: {:#?}",
                frames.len(),
                frames.last()
            ),
        }
    }
}

pub async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::text(frame.to_string()))
        .await
        .expect("send");
}

/// The event of a frame, if it is an event frame.
pub fn event_of(frame: &ServerFrame) -> Option<&EventEnvelope> {
    match frame {
        ServerFrame::Event(envelope) => Some(envelope),
        _ => None,
    }
}

pub fn is_turn_end(frame: &ServerFrame, prompt_id: &str) -> bool {
    matches!(event_of(frame).map(|envelope| &envelope.event),
        Some(Event::TurnCompleted(turn)) if turn.prompt_id == prompt_id)
        || matches!(event_of(frame).map(|envelope| &envelope.event),
        Some(Event::TurnCancelled(turn)) if turn.prompt_id == prompt_id)
}

/// The seqs of the event frames, in order.
pub fn seqs(frames: &[(String, ServerFrame)]) -> Vec<u64> {
    frames
        .iter()
        .filter_map(|(_, frame)| event_of(frame).map(|envelope| envelope.seq))
        .collect()
}

/// Who is connected, as a client following `docs/protocol.md` §2.5 sees it: set by a `welcome`,
/// then changed by each `presence_changed` as set operations.
#[derive(Debug, Default)]
pub struct KnownConnections(std::collections::BTreeMap<String, (String, String)>);

impl KnownConnections {
    /// Takes in what `frame` says about who is connected, if anything.
    pub fn follow(&mut self, frame: &ServerFrame) {
        let joined = match frame {
            ServerFrame::Welcome(welcome) => {
                self.0.clear();
                &welcome.connections
            }
            ServerFrame::PresenceChanged(change) => {
                for connection_id in &change.left {
                    self.0.remove(connection_id);
                }
                &change.joined
            }
            _ => return,
        };
        for entry in joined {
            let who = (entry.subject.clone(), entry.source.clone());
            self.0.insert(entry.connection_id.clone(), who);
        }
    }

    /// Takes in every frame of `frames`, in order.
    pub fn follow_all(&mut self, frames: &[(String, ServerFrame)]) {
        for (_, frame) in frames {
            self.follow(frame);
        }
    }

    /// The connections as (connection, subject, source), sorted.
    pub fn entries(&self) -> Vec<(String, String, String)> {
        (self.0.iter())
            .map(|(id, (subject, source))| (id.clone(), subject.clone(), source.clone()))
            .collect()
    }

    /// How many connections there are.
    pub fn count(&self) -> usize {
        self.0.len()
    }
}
