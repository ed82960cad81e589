//! The `local` provider: each session is a folder on this machine and its agent a local process,
//! isolated with bubblewrap where available.
//!
//! Layout under the data directory:
//! `sessions/<id>/workspace` (the agent's working folder), `sessions/<id>/home` (its HOME and XDG
//! folders, where the agent keeps its own state), `sessions/<id>/agent.log`,
//! `sessions/<id>/agent.pid`, and `snapshots/<snapshot id>.tar.gz`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::process::{Child, Command};

use super::isolation::{self, IsolationMode, Mounts, SANDBOX_HOME, SANDBOX_WORKSPACE};
use super::{
    AgentLaunch, Capabilities, Sandbox, SandboxError, SandboxProvider, SandboxSpec, archive,
    process, validate_session_id,
};
use crate::clock::now_millis;
use crate::protocol::v1::SnapshotInfo;

/// Settings of the local provider.
#[derive(Debug, Clone)]
pub struct LocalProviderConfig {
    /// Where sessions and snapshots live.
    pub data_dir: PathBuf,
    /// How agents are isolated.
    pub isolation: IsolationMode,
    /// Names of the gateway's environment variables passed on to agents (for example model API
    /// keys). Nothing else of the gateway's environment reaches an agent; values are never logged.
    pub passed_environment: Vec<String>,
    /// How long an agent may take to answer its readiness probe.
    pub readiness_timeout: Duration,
    /// How long an agent may take to exit after TERM before it is killed.
    pub stop_grace: Duration,
}

impl LocalProviderConfig {
    /// Defaults for a data directory: automatic isolation, no passed environment, 90 s to start,
    /// 5 s to stop.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            isolation: IsolationMode::Auto,
            passed_environment: Vec::new(),
            readiness_timeout: Duration::from_secs(90),
            stop_grace: Duration::from_secs(5),
        }
    }
}

struct RunningAgent {
    child: Child,
    url: String,
}

type Slot = Arc<tokio::sync::Mutex<Option<RunningAgent>>>;

/// Runs sandboxes as folders and processes on this machine.
pub struct LocalProvider {
    config: LocalProviderConfig,
    bubblewrap: bool,
    slots: Mutex<HashMap<String, Slot>>,
    http: reqwest::Client,
}

impl LocalProvider {
    /// A provider over `config`; fails when bubblewrap is required but does not work here.
    pub fn new(config: LocalProviderConfig) -> Result<Self, SandboxError> {
        let bubblewrap = match config.isolation {
            IsolationMode::Process => false,
            IsolationMode::Auto => isolation::bubblewrap_available(),
            IsolationMode::Bubblewrap if isolation::bubblewrap_available() => true,
            IsolationMode::Bubblewrap => {
                return Err(SandboxError::Unsupported {
                    provider: "local",
                    operation: "isolate agents with bubblewrap on this machine",
                });
            }
        };
        for folder in ["sessions", "snapshots"] {
            let path = config.data_dir.join(folder);
            std::fs::create_dir_all(&path)
                .map_err(SandboxError::io(format!("creating {}", path.display())))?;
        }
        Ok(Self {
            config,
            bubblewrap,
            slots: Mutex::default(),
            http: reqwest::Client::new(),
        })
    }

    /// `bubblewrap` or `process`: how agents are isolated.
    pub fn isolation(&self) -> &'static str {
        if self.bubblewrap {
            "bubblewrap"
        } else {
            "process"
        }
    }

    /// The folder that holds a session's workspace, home and agent log.
    pub fn session_dir(&self, session_id: &str) -> PathBuf {
        self.config.data_dir.join("sessions").join(session_id)
    }

    fn snapshot_path(&self, snapshot_id: &str) -> PathBuf {
        self.config
            .data_dir
            .join("snapshots")
            .join(format!("{snapshot_id}.tar.gz"))
    }

    fn slot(&self, session_id: &str) -> Slot {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        slots.entry(session_id.to_owned()).or_default().clone()
    }

    async fn prepare_folders(&self, spec: &SandboxSpec) -> Result<PathBuf, SandboxError> {
        let session_dir = self.session_dir(&spec.session_id);
        if !session_dir.exists()
            && let Some(snapshot_id) = &spec.restore_from
        {
            validate_session_id(snapshot_id)
                .map_err(|_| SandboxError::SnapshotNotFound(snapshot_id.clone()))?;
            let archive_path = self.snapshot_path(snapshot_id);
            if !archive_path.is_file() {
                return Err(SandboxError::SnapshotNotFound(snapshot_id.clone()));
            }
            let target = session_dir.clone();
            tokio::task::spawn_blocking(move || archive::unpack(&archive_path, &target))
                .await
                .map_err(|error| SandboxError::io("unpacking a snapshot")(error.into()))?
                .map_err(SandboxError::io(format!(
                    "unpacking snapshot {snapshot_id}"
                )))?;
        }
        let home = session_dir.join("home");
        for folder in [
            session_dir.join("workspace"),
            home.join(".config"),
            home.join(".local/share"),
            home.join(".local/state"),
            home.join(".cache"),
            home.join("tmp"),
        ] {
            std::fs::create_dir_all(&folder)
                .map_err(SandboxError::io(format!("creating {}", folder.display())))?;
        }
        for (relative, contents) in &spec.launch.home_files {
            let path = home.join(relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(SandboxError::io(format!("creating {}", parent.display())))?;
            }
            std::fs::write(&path, contents)
                .map_err(SandboxError::io(format!("writing {}", path.display())))?;
        }
        Ok(session_dir)
    }

    fn command(&self, launch: &AgentLaunch, session_dir: &Path, port: u16) -> Command {
        let (home_on_host, workspace_on_host) =
            (session_dir.join("home"), session_dir.join("workspace"));
        let arguments = launch
            .arguments
            .iter()
            .map(|argument| argument.replace("{port}", &port.to_string()));
        let (mut command, home, workspace) = if self.bubblewrap {
            let mut command = Command::new("bwrap");
            command.args(isolation::bubblewrap_arguments(&Mounts {
                home: &home_on_host,
                workspace: &workspace_on_host,
                data_dir: &self.config.data_dir,
                install_root: launch.install_root.as_deref(),
            }));
            command.arg(&launch.program).args(arguments);
            (
                command,
                PathBuf::from(SANDBOX_HOME),
                PathBuf::from(SANDBOX_WORKSPACE),
            )
        } else {
            let mut command = Command::new(&launch.program);
            command.args(arguments).current_dir(&workspace_on_host);
            (command, home_on_host, workspace_on_host)
        };
        command.env_clear();
        command.env("PATH", std::env::var_os("PATH").unwrap_or_default());
        command.env("LANG", "C.UTF-8");
        command.env("HOME", &home);
        command.env("PWD", &workspace);
        command.env("TMPDIR", home.join("tmp"));
        command.env("XDG_CONFIG_HOME", home.join(".config"));
        command.env("XDG_DATA_HOME", home.join(".local/share"));
        command.env("XDG_STATE_HOME", home.join(".local/state"));
        command.env("XDG_CACHE_HOME", home.join(".cache"));
        command.envs(launch.environment.iter().map(|(name, value)| (name, value)));
        for name in &self.config.passed_environment {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        command
    }

    async fn wait_until_ready(
        &self,
        child: &mut Child,
        url: &str,
        launch: &AgentLaunch,
        log: &Path,
    ) -> Result<(), SandboxError> {
        let deadline = Instant::now() + self.config.readiness_timeout;
        let probe = format!("{url}{}", launch.readiness_path);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(SandboxError::AgentNotReady(format!(
                    "the agent exited with {status} while starting; its log is {}",
                    log.display()
                )));
            }
            let answer = self
                .http
                .get(&probe)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if answer.is_ok_and(|response| response.status().is_success()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(SandboxError::AgentNotReady(format!(
                    "no answer from {probe} within {:?}; its log is {}",
                    self.config.readiness_timeout,
                    log.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn free_loopback_port() -> Result<u16, SandboxError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(SandboxError::io("finding a free loopback port"))
}

#[async_trait]
impl SandboxProvider for LocalProvider {
    fn name(&self) -> &'static str {
        "local"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            pause: true,
            snapshot: true,
            memory_snapshot: false,
            auto_pause: false,
        }
    }

    async fn start(&self, spec: &SandboxSpec) -> Result<Sandbox, SandboxError> {
        validate_session_id(&spec.session_id)?;
        let slot = self.slot(&spec.session_id);
        let mut running = slot.lock().await;
        let sandbox = |url: &str| Sandbox {
            session_id: spec.session_id.clone(),
            agent_url: url.to_owned(),
            isolation: self.isolation().to_owned(),
        };
        if let Some(agent) = running.as_mut()
            && matches!(agent.child.try_wait(), Ok(None))
        {
            return Ok(sandbox(&agent.url));
        }
        *running = None;

        let session_dir = self.prepare_folders(spec).await?;
        let port = free_loopback_port()?;
        let log_path = session_dir.join("agent.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(SandboxError::io(format!("opening {}", log_path.display())))?;
        let error_log = log
            .try_clone()
            .map_err(SandboxError::io("duplicating the agent log"))?;
        let mut command = self.command(&spec.launch, &session_dir, port);
        command.stdout(log).stderr(error_log);
        let mut child = command.spawn().map_err(SandboxError::io(format!(
            "starting {}",
            spec.launch.program.display()
        )))?;
        let pid = child.id().unwrap_or_default();
        std::fs::write(session_dir.join("agent.pid"), pid.to_string())
            .map_err(SandboxError::io("writing agent.pid"))?;
        tracing::info!(
            session_id = %spec.session_id,
            pid,
            port,
            isolation = self.isolation(),
            passed_environment = ?self.config.passed_environment,
            "agent starting"
        );

        let url = format!("http://127.0.0.1:{port}");
        if let Err(error) = self
            .wait_until_ready(&mut child, &url, &spec.launch, &log_path)
            .await
        {
            process::stop(&mut child, self.config.stop_grace).await;
            return Err(error);
        }
        tracing::info!(session_id = %spec.session_id, pid, "agent ready");
        let sandbox = sandbox(&url);
        *running = Some(RunningAgent { child, url });
        Ok(sandbox)
    }

    async fn is_running(&self, session_id: &str) -> bool {
        let slot = self.slot(session_id);
        let mut running = slot.lock().await;
        running
            .as_mut()
            .is_some_and(|agent| matches!(agent.child.try_wait(), Ok(None)))
    }

    async fn pause(&self, session_id: &str) -> Result<(), SandboxError> {
        validate_session_id(session_id)?;
        let slot = self.slot(session_id);
        let mut running = slot.lock().await;
        if let Some(mut agent) = running.take() {
            process::stop(&mut agent.child, self.config.stop_grace).await;
            tracing::info!(session_id, "agent stopped");
        }
        let _ = std::fs::remove_file(self.session_dir(session_id).join("agent.pid"));
        Ok(())
    }

    async fn snapshot(&self, session_id: &str) -> Result<SnapshotInfo, SandboxError> {
        validate_session_id(session_id)?;
        let session_dir = self.session_dir(session_id);
        if !session_dir.is_dir() {
            return Err(SandboxError::NotFound(session_id.to_owned()));
        }
        let snapshot_id = format!("snp_{}", uuid::Uuid::now_v7().simple());
        let destination = self.snapshot_path(&snapshot_id);
        let size_bytes =
            tokio::task::spawn_blocking(move || archive::write(&session_dir, &destination))
                .await
                .map_err(|error| SandboxError::io("writing a snapshot")(error.into()))?
                .map_err(SandboxError::io(format!("writing snapshot {snapshot_id}")))?;
        tracing::info!(session_id, snapshot_id, size_bytes, "snapshot saved");
        Ok(SnapshotInfo {
            snapshot_id,
            session_id: session_id.to_owned(),
            created_at: now_millis(),
            size_bytes,
        })
    }

    async fn terminate(&self, session_id: &str) -> Result<(), SandboxError> {
        self.pause(session_id).await?;
        let session_dir = self.session_dir(session_id);
        if session_dir.exists() {
            std::fs::remove_dir_all(&session_dir).map_err(SandboxError::io(format!(
                "removing {}",
                session_dir.display()
            )))?;
        }
        self.slots
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(session_id);
        Ok(())
    }

    async fn cleanup_orphans(&self) -> Result<usize, SandboxError> {
        let sessions = self.config.data_dir.join("sessions");
        let entries = std::fs::read_dir(&sessions)
            .map_err(SandboxError::io(format!("reading {}", sessions.display())))?;
        let mut stopped = 0;
        for entry in entries.flatten() {
            let pid_file = entry.path().join("agent.pid");
            let Ok(pid) = std::fs::read_to_string(&pid_file) else {
                continue;
            };
            let session_id = entry.file_name().to_string_lossy().into_owned();
            if self.is_running(&session_id).await {
                continue;
            }
            if let Ok(pid) = pid.trim().parse()
                && process::kill_orphan(pid, &entry.path())
            {
                tracing::warn!(session_id, pid, "stopped an orphaned agent");
                stopped += 1;
            }
            let _ = std::fs::remove_file(pid_file);
        }
        Ok(stopped)
    }
}
