//! The gateway under test: a `proliferate-server` process, its sessions and its streams.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proliferate_core::auth::{Authenticator, claims};
use proliferate_core::protocol::v1::Scope;
use serde_json::{Value, json};

use crate::bindings::{Backlog, Consumer, ConsumerResult};
use crate::load::{self, Idle, Stream, Target, Transport};
use crate::measure::{self, Percentiles};
use crate::report::{CatchUp, IdleResult, Latencies, Stages, StreamResult};

/// How often the API prober calls `/healthz`, and every how many calls it also sends a prompt.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
const PROMPT_EVERY: u32 = 5;
/// The longest any HTTP call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Catch-up runs, of which the median and the slowest are reported.
const CATCH_UP_RUNS: usize = 5;

/// A running `proliferate-server`, stopped on drop.
pub struct Gateway {
    child: Child,
    base: String,
    http: reqwest::Client,
    authorization: String,
    _data: tempfile::TempDir,
}

impl Gateway {
    /// Starts the server built next to this benchmark (`cargo build [--release] -p
    /// server-reference`), with connection limits raised for thousands of clients.
    pub async fn start() -> Result<Self, String> {
        Self::launch(&Secrets::new()?, &[]).await
    }

    /// [`Gateway::start`] with signing secrets shared with other gateways, and more arguments.
    pub async fn launch(secrets: &Secrets, arguments: &[String]) -> Result<Self, String> {
        let program = std::env::current_exe()
            .map_err(|error| error.to_string())?
            .with_file_name("proliferate-server");
        if !program.exists() {
            return Err(format!(
                "{} is missing: build it with the same profile (cargo build -p server-reference)",
                program.display()
            ));
        }
        let data = tempfile::tempdir().map_err(|error| error.to_string())?;
        let Secrets {
            user: user_secret,
            service: service_secret,
        } = secrets.clone();
        let many = "30000";
        let mut child = Command::new(&program)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .args(["--max-connections", many])
            .args(["--max-connections-per-address", many])
            .args(["--max-connections-per-organization", many])
            .args(["--max-queued-prompts", "1000"])
            .args(arguments)
            .env("PROLIFERATE_JWT_SECRET", &user_secret)
            .env("PROLIFERATE_SERVICE_SECRET", &service_secret)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|error| format!("starting {}: {error}", program.display()))?;
        let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let base = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(base) = line.strip_prefix("proliferate-server listening on ") {
                        break base.to_owned();
                    }
                }
                _ => return Err("the server stopped before it listened".into()),
            }
        };
        // Its log follows on stdout: keep draining it so the server never blocks on it.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        let authenticator = Authenticator::new(user_secret, service_secret);
        let token = authenticator.mint(&claims(
            "bench",
            "bench",
            &[Scope::Read, Scope::Write, Scope::Admin],
            Duration::from_secs(24 * 3600),
        ));
        Ok(Self {
            child,
            base,
            http: reqwest::Client::new(),
            authorization: format!("Bearer {token}"),
            _data: data,
        })
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .timeout(CALL_TIMEOUT)
            .header("authorization", &self.authorization);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| format!("{path}: {error}"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("{path} answered {status}: {body}"));
        }
        Ok(body)
    }

    /// A new running session.
    pub(crate) async fn session(&self) -> Result<Session<'_>, String> {
        let created = self
            .call(
                reqwest::Method::POST,
                "/v1/sessions",
                Some(json!({"title": "bench"})),
            )
            .await?;
        let id = created["id"]
            .as_str()
            .ok_or("a session without an id")?
            .to_owned();
        let session = Session {
            gateway: self,
            id,
            prompts: format!("prm_{}", &random_secret()?[..24]),
            turn: std::cell::Cell::new(0),
        };
        for _ in 0..600 {
            match session.info().await?["status"].as_str() {
                Some("running") => {
                    self.warm_up(&session).await?;
                    return Ok(session);
                }
                Some("failed" | "stopped") => return Err("the session failed to start".into()),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Err("the session never started".into())
    }

    /// Runs a short turn, so the measured one finds the agent warm, as the baseline's is.
    async fn warm_up(&self, session: &Session<'_>) -> Result<(), String> {
        let turn = Stream {
            clients: 1,
            deltas: 20,
            interval: Duration::ZERO,
        };
        let target = self.target(session, session.head().await?, Transport::WebSocket);
        let prompt = turn.prompt();
        load::stream(&target, &turn, || session.prompt(&prompt)).await?;
        session.turn.set(session.turn.get() + 1);
        Ok(())
    }

    pub(crate) fn target(&self, session: &Session, after_seq: u64, transport: Transport) -> Target {
        let session_id = &session.id;
        let url = match transport {
            Transport::WebSocket => format!(
                "{}/v1/sessions/{session_id}/ws?after_seq={after_seq}&source=bench",
                self.base.replacen("http", "ws", 1)
            ),
            Transport::Sse => format!(
                "{}/v1/sessions/{session_id}/events?after_seq={after_seq}",
                self.base
            ),
        };
        Target {
            url,
            authorization: Some(self.authorization.clone()),
            ready: "\"type\":\"replay_done\"",
            prompt_id: Some(session.prompt_id()),
            transport,
        }
    }

    /// The event latency histograms of `/metrics`.
    async fn stages(&self) -> Result<Stages, String> {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|error| format!("/metrics: {error}"))?
            .text()
            .await
            .map_err(|error| format!("/metrics: {error}"))?;
        Ok(Stages::parse(&text))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The `Authorization` header its clients send.
    pub(crate) fn authorization(&self) -> &str {
        &self.authorization
    }

    /// The newest seq of a session's log.
    pub(crate) async fn head_of(&self, session_id: &str) -> Result<u64, String> {
        let path = format!("/v1/sessions/{session_id}");
        (self.call(reqwest::Method::GET, &path, None).await?["head_seq"].as_u64())
            .ok_or_else(|| "no head_seq".into())
    }

    /// Where it listens (`http://host:port`).
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// Kills the process at once, as a crash would.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Streams one stamped turn to `stream.clients` clients over `transport`, probing the HTTP
    /// API meanwhile.
    pub async fn stream(
        &self,
        stream: &Stream,
        transport: Transport,
    ) -> Result<StreamResult, String> {
        let session = self.session().await?;
        let head = session.head().await?;
        let target = self.target(&session, head, transport);
        let stages_before = self.stages().await?;
        let cpu_before = std::cell::Cell::new(Duration::ZERO);
        let (probing, stop) = tokio::sync::watch::channel(false);
        let prober = std::cell::RefCell::new(None);
        let received = load::stream(&target, stream, || async {
            cpu_before.set(measure::cpu_time(self.pid(), false));
            session.prompt(&stream.prompt()).await?;
            // Probe prompts queue behind the stamped turn, so they never delay it.
            let (base, authorization) = (self.base.clone(), self.authorization.clone());
            let probing = probe(base, authorization, session.id.clone(), stop);
            *prober.borrow_mut() = Some(tokio::spawn(probing));
            Ok(())
        })
        .await?;
        let cpu = measure::cpu_time(self.pid(), false).saturating_sub(cpu_before.get());
        let _ = probing.send(true);
        let prober = prober.into_inner().ok_or("the prober never started")?;
        let api = prober.await.map_err(|error| error.to_string())??;
        let stages = self.stages().await?.since(&stages_before);
        session.delete().await?;
        Ok(StreamResult {
            server: "gateway",
            transport,
            stream: *stream,
            received,
            cpu,
            api: Some(api),
            stages: Some(stages),
        })
    }

    /// Memory per idle connection: the server's resident memory with `count` idle clients on
    /// one session, against without.
    pub async fn idle(&self, count: usize, transport: Transport) -> Result<IdleResult, String> {
        let session = self.session().await?;
        let target = self.target(&session, session.head().await?, transport);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = measure::resident_memory(self.pid(), false);
        let idle = Idle::connect(&target, count).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = measure::resident_memory(self.pid(), false);
        let held = idle.connected();
        drop(idle);
        session.delete().await?;
        Ok(IdleResult {
            server: "gateway",
            transport,
            connections: held,
            bytes: after.saturating_sub(before),
        })
    }

    /// A session whose last turn streamed `deltas` deltas, complete.
    async fn backlog(&self, deltas: usize) -> Result<Session<'_>, String> {
        let session = self.session().await?;
        let before = session.head().await?;
        let turn = Stream {
            clients: 1,
            deltas,
            interval: Duration::ZERO,
        };
        let writer = self.target(&session, before, Transport::WebSocket);
        let prompt = turn.prompt();
        load::stream(&writer, &turn, || session.prompt(&prompt)).await?;
        Ok(session)
    }

    /// How long a client that is `behind` events behind takes from connecting to `replay_done`.
    pub async fn catch_up(&self, behind: usize) -> Result<CatchUp, String> {
        let session = self.backlog(behind).await?;
        let after_seq = session.head().await?.saturating_sub(behind as u64);
        let mut times = Vec::new();
        for _ in 0..CATCH_UP_RUNS {
            // The turn's last events may still be landing: at least the head read before.
            let head = session.head().await?;
            let target = self.target(&session, after_seq, Transport::WebSocket);
            let started = Instant::now();
            let replayed = load::replay(&target).await?;
            times.push(started.elapsed());
            if replayed < head - after_seq {
                let missing = head - after_seq - replayed;
                return Err(format!("catching up, {missing} events were missing"));
            }
        }
        session.delete().await?;
        Ok(CatchUp { behind, times })
    }

    /// Each consumer's binding and plain client replaying a session of about `deltas` events,
    /// `rounds` times each.
    pub async fn consumers(
        &self,
        consumers: &[Consumer],
        deltas: usize,
        rounds: usize,
    ) -> Result<Vec<ConsumerResult>, String> {
        let session = self.backlog(deltas).await?;
        // Events after the turn's end (the session going idle) land meanwhile: wait for them.
        let mut head = session.head().await?;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            match session.head().await? {
                same if same == head => break,
                later => head = later,
            }
        }
        let token = self.authorization.trim_start_matches("Bearer ");
        let backlog = Backlog {
            url: &self.base,
            token,
            session: &session.id,
            events: head,
        };
        let mut results = Vec::new();
        for consumer in consumers {
            eprintln!("{} replays {} events", consumer.language, backlog.events);
            results.extend(consumer.measure(&backlog, rounds).await?);
        }
        session.delete().await?;
        Ok(results)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// The signing secrets of a gateway, shared by gateways that serve the same clients.
#[derive(Clone)]
pub struct Secrets {
    user: String,
    service: String,
}

impl Secrets {
    /// New random secrets.
    pub fn new() -> Result<Self, String> {
        Ok(Self {
            user: random_secret()?,
            service: random_secret()?,
        })
    }
}

/// A session of the gateway.
pub(crate) struct Session<'a> {
    gateway: &'a Gateway,
    pub(crate) id: String,
    /// The prefix of its prompts' ids.
    prompts: String,
    /// The number of the turn the next prompt starts.
    turn: std::cell::Cell<u32>,
}

impl Session<'_> {
    async fn info(&self) -> Result<Value, String> {
        self.gateway
            .call(
                reqwest::Method::GET,
                &format!("/v1/sessions/{}", self.id),
                None,
            )
            .await
    }

    pub(crate) async fn head(&self) -> Result<u64, String> {
        self.info().await?["head_seq"]
            .as_u64()
            .ok_or_else(|| "no head_seq".into())
    }

    /// The id of the next turn's prompt.
    fn prompt_id(&self) -> String {
        format!("{}_{}", self.prompts, self.turn.get())
    }

    /// Sends the next turn's prompt.
    async fn prompt(&self, content: &str) -> Result<(), String> {
        self.prompt_through(self.gateway, content).await
    }

    /// Sends the next turn's prompt through `gateway`, and counts the turn.
    pub(crate) async fn prompt_through(
        &self,
        gateway: &Gateway,
        content: &str,
    ) -> Result<(), String> {
        let body = json!({"content": content, "prompt_id": self.prompt_id()});
        let path = format!("/v1/sessions/{}/messages", self.id);
        gateway
            .call(reqwest::Method::POST, &path, Some(body))
            .await
            .map(drop)
    }

    /// The next prompt starts a new turn.
    pub(crate) fn next_turn(&self) {
        self.turn.set(self.turn.get() + 1);
    }

    pub(crate) async fn delete(&self) -> Result<(), String> {
        let response = self
            .gateway
            .http
            .delete(format!("{}/v1/sessions/{}", self.gateway.base, self.id))
            .timeout(CALL_TIMEOUT)
            .header("authorization", &self.gateway.authorization)
            .send()
            .await
            .map_err(|error| error.to_string())?;
        match response.status().is_success() {
            true => Ok(()),
            false => Err(format!("deleting a session answered {}", response.status())),
        }
    }
}

/// Calls `/healthz`, and every few calls sends a prompt, until `stop`; returns the latencies.
async fn probe(
    base: String,
    authorization: String,
    session_id: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Latencies, String> {
    let http = reqwest::Client::new();
    let (mut healthz, mut prompts) = (Vec::new(), Vec::new());
    let mut ticks = tokio::time::interval(PROBE_INTERVAL);
    for call in 0u32.. {
        tokio::select! {
            _ = stop.changed() => break,
            _ = ticks.tick() => {}
        }
        let started = Instant::now();
        let status = http
            .get(format!("{base}/healthz"))
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|error| error.to_string())?
            .status();
        healthz.push(started.elapsed().as_micros() as u32);
        if !status.is_success() {
            return Err(format!("/healthz answered {status}"));
        }
        if call % PROMPT_EVERY == 0 {
            let started = Instant::now();
            let response = http
                .post(format!("{base}/v1/sessions/{session_id}/messages"))
                .timeout(CALL_TIMEOUT)
                .header("authorization", &authorization)
                .json(&json!({"content": "[[say:probe]]"}))
                .send()
                .await
                .map_err(|error| error.to_string())?;
            prompts.push(started.elapsed().as_micros() as u32);
            if !response.status().is_success() {
                return Err(format!("sending a prompt answered {}", response.status()));
            }
        }
    }
    Ok(Latencies {
        healthz: Percentiles::of(&mut healthz),
        prompt: Percentiles::of(&mut prompts),
    })
}

fn random_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .map_err(|error| error.to_string())?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}
