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

use super::channel::{
    ChannelDirs, ChannelService, GatewayEnd, channel_environment, serve_on_loopback,
};
use super::disk;
use super::endpoint::{Target, create_inside, free_loopback_port, private_folder, random_password};
use super::isolation::{self, IsolationMode, Mounts, SANDBOX_HOME, SANDBOX_WORKSPACE};
use super::limits::{ControlGroup, default_limits};
use super::{
    AgentEndpoint, AgentLaunch, Capabilities, EgressPolicy, Sandbox, SandboxError, SandboxProvider,
    SandboxSpec, archive, helper, process, validate_session_id,
};
use crate::clock::now_millis;
use crate::protocol::v1::{SandboxLimits, SnapshotInfo};

/// The egress proxy's port on a sandbox's loopback.
const EGRESS_PORT: u16 = 3128;
/// Joins the control groups named before `--`, then runs the rest: the sandbox is inside its
/// group before bubblewrap starts anything.
const JOIN_GROUPS: &str =
    r#"while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@""#;

/// Settings of the local provider.
#[derive(Debug, Clone)]
pub struct LocalProviderConfig {
    /// Where sessions and snapshots live.
    pub data_dir: PathBuf,
    /// How agents are isolated.
    pub isolation: IsolationMode,
    /// Names of the gateway's environment variables passed on to agents. Nothing else of the
    /// gateway's environment reaches an agent; values are never logged.
    pub passed_environment: Vec<String>,
    /// How long an agent may take to answer its readiness probe.
    pub readiness_timeout: Duration,
    /// How long an agent may take to exit after TERM before it is killed.
    pub stop_grace: Duration,
    /// The sandbox helper program (answers `sandbox-init`); by default the first that answers of
    /// `PROLIFERATE_SANDBOX_HELPER`, the running program, and `proliferate-sandbox` beside it.
    pub helper: Option<PathBuf>,
    /// The most a session's sandbox may use, and the default for sessions that ask nothing.
    pub limits: SandboxLimits,
    /// Hosts every sandbox may reach through the egress proxy.
    pub egress: EgressPolicy,
    /// Services the gateway serves into every sandbox (the model proxy, for example), on ports
    /// of the sandbox's own loopback; nothing else of the host is reachable.
    pub channel_services: Vec<Arc<dyn ChannelService>>,
    /// The largest snapshot, in bytes of files.
    pub max_snapshot_bytes: u64,
}

impl LocalProviderConfig {
    /// Defaults for a data directory: bubblewrap isolation, the default limits, no egress, no
    /// passed environment, 90 s to start, 5 s to stop, snapshots up to 1 GiB.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            isolation: IsolationMode::Bubblewrap,
            passed_environment: Vec::new(),
            readiness_timeout: Duration::from_secs(90),
            stop_grace: Duration::from_secs(5),
            helper: None,
            limits: default_limits(),
            egress: EgressPolicy::default(),
            channel_services: Vec::new(),
            max_snapshot_bytes: 1 << 30,
        }
    }
}

struct RunningAgent {
    child: Child,
    endpoint: AgentEndpoint,
    limits: SandboxLimits,
    group: Option<ControlGroup>,
    _gateway_end: Option<GatewayEnd>,
}

type Slot = Arc<tokio::sync::Mutex<Option<RunningAgent>>>;

/// Runs sandboxes as folders and processes on this machine.
pub struct LocalProvider {
    config: LocalProviderConfig,
    helper: PathBuf,
    slots: Mutex<HashMap<String, Slot>>,
}

impl LocalProvider {
    /// A provider over `config`. Fails closed: with bubblewrap isolation, when bubblewrap or the
    /// sandbox helper does not work here, with an error that says what is missing.
    pub fn new(config: LocalProviderConfig) -> Result<Self, SandboxError> {
        let candidates = match &config.helper {
            Some(helper) => vec![helper.clone()],
            None => isolation::helper_candidates(),
        };
        let mut helper = PathBuf::new();
        match config.isolation {
            IsolationMode::Bubblewrap => {
                if let Some(problem) = isolation::bubblewrap_problem() {
                    return Err(SandboxError::IsolationUnavailable(problem));
                }
                helper = candidates
                    .iter()
                    .find(|candidate| isolation::is_helper(candidate))
                    .cloned()
                    .ok_or_else(|| {
                        SandboxError::IsolationUnavailable(format!(
                            "no sandbox helper answers `{} --version` (tried {candidates:?}); set \
                             PROLIFERATE_SANDBOX_HELPER to the proliferate-sandbox program",
                            helper::SUBCOMMAND
                        ))
                    })?;
            }
            IsolationMode::Process => tracing::warn!(
                "agents run as plain processes without isolation (--isolation process): \
                 single-user development only"
            ),
        }
        private_folder(&config.data_dir)?;
        for folder in ["sessions", "snapshots"] {
            private_folder(&config.data_dir.join(folder))?;
        }
        Ok(Self {
            config,
            helper,
            slots: Mutex::default(),
        })
    }

    /// `bubblewrap` or `process`: how agents are isolated.
    pub fn isolation(&self) -> &'static str {
        self.config.isolation.as_str()
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

    /// Where a session's home and workspace live: its own disk (mounted again if needed), or
    /// its folder.
    fn data_root(&self, session_dir: &Path) -> Result<PathBuf, SandboxError> {
        if session_dir.join("disk.img").exists() {
            disk::attach(session_dir, 0)
                .map_err(SandboxError::io("mounting the session's disk"))?;
        }
        Ok(disk::data_root(session_dir))
    }

    /// The folder of a session's workspace on this machine.
    pub fn workspace_dir(&self, session_id: &str) -> PathBuf {
        disk::data_root(&self.session_dir(session_id)).join("workspace")
    }

    /// Creates the session's folders (and disk), restoring a snapshot into a new one; returns the
    /// session's folder and where its home and workspace live.
    async fn prepare_folders(
        &self,
        spec: &SandboxSpec,
    ) -> Result<(PathBuf, PathBuf), SandboxError> {
        let session_dir = self.session_dir(&spec.session_id);
        let new = !session_dir.exists();
        private_folder(&session_dir)?;
        let root = match spec.limits.disk_bytes {
            Some(bytes) if self.config.isolation == IsolationMode::Bubblewrap => {
                disk::attach(&session_dir, bytes)
                    .map_err(SandboxError::io("creating the session's disk"))?;
                disk::data_root(&session_dir)
            }
            _ => self.data_root(&session_dir)?,
        };
        if new && let Some(snapshot_id) = &spec.restore_from {
            validate_session_id(snapshot_id)
                .map_err(|_| SandboxError::SnapshotNotFound(snapshot_id.clone()))?;
            let archive_path = self.snapshot_path(snapshot_id);
            if !archive_path.is_file() {
                return Err(SandboxError::SnapshotNotFound(snapshot_id.clone()));
            }
            let target = root.clone();
            tokio::task::spawn_blocking(move || archive::unpack(&archive_path, &target))
                .await
                .map_err(|error| SandboxError::io("unpacking a snapshot")(error.into()))?
                .map_err(SandboxError::io(format!(
                    "unpacking snapshot {snapshot_id}"
                )))?;
        }
        // The home and workspace belong to the (possibly hostile) agent: nothing below them is
        // created or written through a link it left there.
        let home = Path::new("home");
        for folder in [
            Path::new("workspace"),
            home,
            &home.join(".config"),
            &home.join(".local/share"),
            &home.join(".local/state"),
            &home.join(".cache"),
            &home.join("tmp"),
        ] {
            create_inside(&root, folder)?;
        }
        let identity = session_dir.join("identity");
        private_folder(&identity)?;
        for (name, contents) in isolation::identity_files() {
            let path = identity.join(name);
            std::fs::write(&path, contents)
                .map_err(SandboxError::io(format!("writing {}", path.display())))?;
        }
        for (relative, contents) in &spec.launch.home_files {
            let path = home.join(relative);
            if let Some(parent) = path.parent() {
                create_inside(&root, parent)?;
            }
            let target = root.join(&path);
            let _ = std::fs::remove_file(&target);
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&target)
                .and_then(|mut file| std::io::Write::write_all(&mut file, contents.as_bytes()))
                .map_err(SandboxError::io(format!("writing {}", target.display())))?;
        }
        Ok((session_dir, root))
    }

    /// The command that starts the agent: bubblewrap around the helper around the agent, or the
    /// agent alone; with the port it listens on.
    fn command(
        &self,
        spec: &SandboxSpec,
        (session_dir, root): (&Path, &Path),
        group: Option<&ControlGroup>,
        password: Option<&str>,
    ) -> Result<(Command, u16), SandboxError> {
        let launch = &spec.launch;
        let (home_on_host, workspace_on_host) = (root.join("home"), root.join("workspace"));
        let isolated = self.config.isolation == IsolationMode::Bubblewrap;
        let port = if isolated {
            (4096..)
                .find(|port| {
                    *port != EGRESS_PORT
                        && !self
                            .config
                            .channel_services
                            .iter()
                            .any(|s| s.port() == *port)
                })
                .unwrap_or(4096)
        } else {
            free_loopback_port()?
        };
        let arguments: Vec<String> = launch
            .arguments
            .iter()
            .map(|argument| argument.replace("{port}", &port.to_string()))
            .collect();
        let (mut command, home, workspace) = if isolated {
            let channel = ChannelDirs::of(session_dir);
            let mut command = match group {
                Some(group) => {
                    let mut command = Command::new("/bin/sh");
                    command.args(["-c", JOIN_GROUPS, "proliferate-sandbox"]);
                    command.args(group.procs_files()).args(["--", "bwrap"]);
                    command
                }
                None => Command::new("bwrap"),
            };
            command.args(isolation::bubblewrap_arguments(&Mounts {
                home: &home_on_host,
                workspace: &workspace_on_host,
                sandbox_channel: &channel.sandbox,
                gateway_channel: &channel.gateway,
                identity: &session_dir.join("identity"),
                helper: &self.helper,
                install_root: launch.install_root.as_deref(),
                tmp_bytes: spec.limits.memory_bytes.map_or(1 << 30, |bytes| bytes / 4),
            }));
            command.args([isolation::SANDBOX_HELPER, helper::SUBCOMMAND]);
            command.args([
                "--agent-socket",
                &format!("{}/agent.sock", isolation::SANDBOX_CHANNEL),
            ]);
            command.args(["--agent-port", &port.to_string()]);
            for service in &self.config.channel_services {
                let socket = format!("{}/{}.sock", isolation::GATEWAY_CHANNEL, service.port());
                command.args(["--forward", &format!("{}={socket}", service.port())]);
            }
            let egress = format!("{}/egress.sock", isolation::GATEWAY_CHANNEL);
            command.args(["--forward", &format!("{EGRESS_PORT}={egress}")]);
            if let Some(files) = spec.limits.open_files {
                command.args(["--open-files", &files.to_string()]);
            }
            if let Some(bytes) = spec.limits.disk_bytes {
                command.args(["--file-bytes", &bytes.to_string()]);
            }
            command.arg("--").arg(&launch.program).args(&arguments);
            (
                command,
                PathBuf::from(SANDBOX_HOME),
                PathBuf::from(SANDBOX_WORKSPACE),
            )
        } else {
            let mut command = Command::new(&launch.program);
            command.args(&arguments).current_dir(&workspace_on_host);
            (command, home_on_host, workspace_on_host)
        };
        command.env_clear();
        if isolated {
            command.env(
                "PATH",
                "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
            );
            let proxy = format!("http://127.0.0.1:{EGRESS_PORT}");
            for name in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
                command.env(name, &proxy);
            }
            command.env("NO_PROXY", "localhost,127.0.0.1");
            command.env("no_proxy", "localhost,127.0.0.1");
        } else {
            command.env("PATH", std::env::var_os("PATH").unwrap_or_default());
        }
        command.env("LANG", "C.UTF-8");
        command.env("HOME", &home);
        command.env("PWD", &workspace);
        command.env("TMPDIR", home.join("tmp"));
        command.env("XDG_CONFIG_HOME", home.join(".config"));
        command.env("XDG_DATA_HOME", home.join(".local/share"));
        command.env("XDG_STATE_HOME", home.join(".local/state"));
        command.env("XDG_CACHE_HOME", home.join(".cache"));
        command.envs(launch.environment.iter().map(|(name, value)| (name, value)));
        if let (Some(credential), Some(password)) = (&launch.credential, password) {
            command.env(&credential.password_variable, password);
        }
        for name in &self.config.passed_environment {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        Ok((command, port))
    }

    /// Waits until the agent answers its readiness probe; returns how to reach it.
    async fn wait_until_ready(
        &self,
        child: &mut Child,
        target: Target<'_>,
        launch: &AgentLaunch,
        log: &Path,
    ) -> Result<AgentEndpoint, SandboxError> {
        let deadline = Instant::now() + self.config.readiness_timeout;
        let mut endpoint = None;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(SandboxError::AgentNotReady(format!(
                    "the agent exited with {status} while starting; its log is {}",
                    log.display()
                )));
            }
            if endpoint.is_none() {
                endpoint = target.endpoint(launch)?;
            }
            if let Some(endpoint) = &endpoint {
                let answer = endpoint
                    .http
                    .get(format!("{}{}", endpoint.base_url, launch.readiness_path))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await;
                if answer.is_ok_and(|response| response.status().is_success()) {
                    return Ok(endpoint.clone());
                }
            }
            if Instant::now() >= deadline {
                return Err(SandboxError::AgentNotReady(format!(
                    "no answer to {} within {:?}; its log is {}",
                    launch.readiness_path,
                    self.config.readiness_timeout,
                    log.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for LocalProvider {
    /// Unmounts the disks of the sandboxes it ran: nothing of a session stays mounted once its
    /// provider is gone (its agents die with it).
    fn drop(&mut self) {
        let slots = self
            .slots
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for session_id in slots.keys() {
            disk::detach(&self.config.data_dir.join("sessions").join(session_id));
        }
    }
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

    fn limits(&self) -> SandboxLimits {
        self.config.limits.clone()
    }

    async fn start(&self, spec: &SandboxSpec) -> Result<Sandbox, SandboxError> {
        validate_session_id(&spec.session_id)?;
        let slot = self.slot(&spec.session_id);
        let mut running = slot.lock().await;
        let sandbox = |agent: &RunningAgent| Sandbox {
            session_id: spec.session_id.clone(),
            agent: agent.endpoint.clone(),
            isolation: self.isolation().to_owned(),
            limits: agent.limits.clone(),
        };
        if let Some(agent) = running.as_mut()
            && matches!(agent.child.try_wait(), Ok(None))
        {
            return Ok(sandbox(agent));
        }
        *running = None;

        let (session_dir, root) = self.prepare_folders(spec).await?;
        let isolated = self.config.isolation == IsolationMode::Bubblewrap;
        let group = isolated
            .then(|| ControlGroup::create(&spec.session_id, &spec.limits))
            .flatten();
        let limits = SandboxLimits {
            enforced_by: Some(match (&group, isolated) {
                (Some(group), _) if root != session_dir => {
                    format!("{}, a disk of its own and rlimits", group.describe())
                }
                (Some(group), _) => format!("{} and rlimits", group.describe()),
                (None, true) => "rlimits (no control group here: memory, CPU and processes are \
                                 not enforced)"
                    .into(),
                (None, false) => "none (process isolation)".into(),
            }),
            ..spec.limits.clone()
        };
        let services = &self.config.channel_services;
        let (gateway_end, service_environment) = if isolated {
            let policy = self.config.egress.with(&spec.egress_allow);
            let end = ChannelDirs::of(&session_dir)
                .open(&spec.session_id, policy, services)
                .map_err(SandboxError::io("opening the sandbox's channel"))?;
            (end, channel_environment(services))
        } else {
            serve_on_loopback(&spec.session_id, services)
                .await
                .map_err(SandboxError::io("serving the gateway's services"))?
        };
        let password = spec.launch.credential.as_ref().map(|_| random_password());
        let log_path = session_dir.join("agent.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(SandboxError::io(format!("opening {}", log_path.display())))?;
        let error_log = log
            .try_clone()
            .map_err(SandboxError::io("duplicating the agent log"))?;
        let (mut command, port) = self.command(
            spec,
            (&session_dir, &root),
            group.as_ref(),
            password.as_deref(),
        )?;
        command
            .envs(service_environment)
            .envs(spec.environment.clone());
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
            isolation = self.isolation(),
            limits = ?limits,
            passed_environment = ?self.config.passed_environment,
            "agent starting"
        );

        let target = if isolated {
            Target::Socket(
                ChannelDirs::of(&session_dir).agent_socket(),
                password.as_deref(),
            )
        } else {
            Target::Port(port, password.as_deref(), root.join("workspace"))
        };
        let endpoint = match self
            .wait_until_ready(&mut child, target, &spec.launch, &log_path)
            .await
        {
            Ok(endpoint) => endpoint,
            Err(error) => {
                process::stop(&mut child, self.config.stop_grace).await;
                if let Some(group) = &group {
                    group.remove();
                }
                return Err(error);
            }
        };
        tracing::info!(session_id = %spec.session_id, pid, "agent ready");
        let agent = RunningAgent {
            child,
            endpoint,
            limits,
            group,
            _gateway_end: Some(gateway_end),
        };
        let started = sandbox(&agent);
        *running = Some(agent);
        Ok(started)
    }

    async fn over_limit(&self, session_id: &str) -> Option<String> {
        let slot = self.slot(session_id);
        let running = slot.lock().await;
        let agent = running.as_ref()?;
        if disk::full(&self.session_dir(session_id)) {
            return Some(format!(
                "disk (limit {} bytes)",
                agent.limits.disk_bytes.unwrap_or_default()
            ));
        }
        agent.group.as_ref()?.exhausted(&agent.limits)
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
            if let Some(group) = &agent.group {
                group.remove();
            }
            tracing::info!(session_id, "agent stopped");
        }
        let session_dir = self.session_dir(session_id);
        disk::detach(&session_dir);
        let _ = std::fs::remove_file(session_dir.join("agent.pid"));
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
        let limit = self.config.max_snapshot_bytes;
        let root = self.data_root(&session_dir)?;
        let slot = self.slot(session_id);
        let running = slot.lock().await;
        let group = running.as_ref().and_then(|agent| agent.group.as_ref());
        if let Some(group) = group {
            group
                .freeze(true)
                .map_err(SandboxError::io("freezing the sandbox"))?;
        }
        let written =
            tokio::task::spawn_blocking(move || archive::write(&root, &destination, limit)).await;
        if let Some(group) = group {
            group
                .freeze(false)
                .map_err(SandboxError::io("thawing the sandbox"))?;
        }
        if running.is_none() {
            disk::detach(&self.session_dir(session_id));
        }
        let size_bytes = written
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
        disk::detach(&session_dir);
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
            let session_id = entry.file_name().to_string_lossy().into_owned();
            if self.is_running(&session_id).await {
                continue;
            }
            // A disk left mounted by a gateway that died; the next start mounts it again.
            disk::detach(&entry.path());
            let pid_file = entry.path().join("agent.pid");
            let Ok(pid) = std::fs::read_to_string(&pid_file) else {
                continue;
            };
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
