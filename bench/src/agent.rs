//! The baseline: OpenCode's own `/event` stream, read straight from `opencode serve` with the same
//! scripted model and the same clients, no gateway in between.

use std::process::{Child, Command};
use std::time::Duration;

use proliferate_core::agent::AgentDriver;
use proliferate_core::agent::opencode::{OpenCodeConfig, OpenCodeDriver, default_program};
use scripted_model::ScriptedModel;
use serde_json::{Value, json};

use crate::gateway::CALL_TIMEOUT;
use crate::load::{self, Idle, Stream, Target, Transport};
use crate::measure;
use crate::report::{IdleResult, StreamResult};

/// A running `opencode serve` on loopback, stopped on drop.
pub struct Agent {
    child: Child,
    base: String,
    http: reqwest::Client,
    _model: ScriptedModel,
    _home: tempfile::TempDir,
}

impl Agent {
    /// Starts OpenCode as the gateway's driver would, answering with a scripted model.
    pub async fn start() -> Result<Self, String> {
        let model = ScriptedModel::start()
            .await
            .map_err(|error| error.to_string())?;
        let config =
            OpenCodeConfig::with_openai_compatible_model(default_program(), &model.base_url());
        let launch = OpenCodeDriver::new(config.clone()).launch(&config.model);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|error| error.to_string())?
            .port();
        let home = tempfile::tempdir().map_err(|error| error.to_string())?;
        let workspace = home.path().join("workspace");
        std::fs::create_dir_all(&workspace).map_err(|error| error.to_string())?;
        let child = Command::new(&launch.program)
            .args(
                launch
                    .arguments
                    .iter()
                    .map(|argument| argument.replace("{port}", &port.to_string())),
            )
            .current_dir(&workspace)
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join(".config"))
            .env("XDG_DATA_HOME", home.path().join(".local/share"))
            .env("XDG_STATE_HOME", home.path().join(".local/state"))
            .env("XDG_CACHE_HOME", home.path().join(".cache"))
            .envs(launch.environment.iter().map(|(name, value)| (name, value)))
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(|error| format!("starting {}: {error}", launch.program.display()))?;
        let agent = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            _model: model,
            _home: home,
        };
        for _ in 0..600 {
            let ready = agent
                .http
                .get(format!("{}{}", agent.base, launch.readiness_path))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if ready.is_ok_and(|response| response.status().is_success()) {
                // A short turn first, so the measured ones find the agent warm.
                let warm_up = Stream {
                    clients: 1,
                    deltas: 20,
                    interval: Duration::ZERO,
                };
                agent.stream(&warm_up).await?;
                return Ok(agent);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("OpenCode never answered its health check".into())
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .timeout(CALL_TIMEOUT)
            .json(&body)
            .send()
            .await
            .map_err(|error| format!("{path}: {error}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("{path} answered {status}"));
        }
        Ok(response.json().await.unwrap_or(Value::Null))
    }

    fn target(&self) -> Target {
        Target {
            url: format!("{}/event", self.base),
            authorization: None,
            ready: "server.connected",
            prompt_id: None,
            transport: Transport::Sse,
        }
    }

    /// Streams one stamped turn to `stream.clients` clients of `/event`.
    pub async fn stream(&self, stream: &Stream) -> Result<StreamResult, String> {
        let created = self.post("/session", json!({})).await?;
        let session_id = created["id"]
            .as_str()
            .ok_or("a session without an id")?
            .to_owned();
        let pid = self.child.id();
        let cpu_before = std::cell::Cell::new(Duration::ZERO);
        let received = load::stream(&self.target(), stream, || async {
            cpu_before.set(measure::cpu_time(pid, true));
            let parts = json!({"parts": [{"type": "text", "text": stream.prompt()}]});
            self.post(&format!("/session/{session_id}/prompt_async"), parts)
                .await
                .map(drop)
        })
        .await?;
        Ok(StreamResult {
            server: "OpenCode",
            transport: Transport::Sse,
            stream: *stream,
            received,
            cpu: measure::cpu_time(pid, true).saturating_sub(cpu_before.get()),
            api: None,
            stages: None,
        })
    }

    /// Memory per idle `/event` connection.
    pub async fn idle(&self, count: usize) -> Result<IdleResult, String> {
        let pid = self.child.id();
        let before = measure::resident_memory(pid, true);
        let idle = Idle::connect(&self.target(), count).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = measure::resident_memory(pid, true);
        Ok(IdleResult {
            server: "OpenCode",
            transport: Transport::Sse,
            connections: idle.connected(),
            bytes: after.saturating_sub(before),
        })
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // The npm launcher runs the agent as its child: stop the whole tree.
        fn stop(pid: u32) {
            let children = measure::children(pid);
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            children.into_iter().for_each(stop);
        }
        stop(self.child.id());
        let _ = self.child.wait();
    }
}
