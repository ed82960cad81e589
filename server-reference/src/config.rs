//! Configuration of `proliferate-server serve`: flags, each with an environment variable.
//! Secrets come only from the environment (or are generated into the data directory), never from
//! flags, so they do not show in process listings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use proliferate_core::hub::HubConfig;
use proliferate_core::protocol::v1::{PermissionDecision, SandboxLimits};
use proliferate_core::sandbox::IsolationMode;

use crate::ConnectionLimits;
use crate::model_proxy::OrganizationKeys;
use crate::model_proxy::policy::{Budget, ModelPolicy};

/// Settings of the server.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "PROLIFERATE_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// Where the database, sessions and snapshots live [default: ~/.local/share/proliferate].
    #[arg(long, env = "PROLIFERATE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL database for metadata and the event log (`postgres://user@host:port/db`);
    /// without one, SQLite in the data folder.
    #[arg(long, env = "PROLIFERATE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The most connections to the PostgreSQL database.
    #[arg(long, env = "PROLIFERATE_DATABASE_CONNECTIONS", default_value_t = 16)]
    pub database_connections: u32,
    /// A Redis server (`redis://host:port/`) that joins the gateways sharing the database, so
    /// any of them serves any session to its clients; without one, a session is served only
    /// by the gateway running it.
    #[arg(long, env = "PROLIFERATE_BUS_URL", hide_env_values = true)]
    pub bus_url: Option<String>,
    /// The name this gateway holds session leases under: the same across its restarts, and
    /// different for every gateway sharing the database [default: the machine's host name].
    #[arg(long, env = "PROLIFERATE_GATEWAY_ID")]
    pub gateway_id: Option<String>,
    /// How long a gateway's lease on a session lasts unless renewed (renewed three times as
    /// often); another gateway may take a session whose gateway died after this long.
    #[arg(long, env = "PROLIFERATE_LEASE_TTL_SECS", default_value_t = 30)]
    pub lease_ttl_secs: u64,
    /// The `opencode` executable [default: the one `scripts/install-opencode` installs, else PATH].
    #[arg(long, env = "PROLIFERATE_OPENCODE_BIN")]
    pub opencode: Option<PathBuf>,
    /// The model: `scripted` (an offline scripted model started in-process) or `provider/model`.
    #[arg(long, env = "PROLIFERATE_MODEL", default_value = "scripted")]
    pub model: String,
    /// OpenCode `provider` configuration as JSON, for custom providers.
    #[arg(long, env = "PROLIFERATE_MODEL_PROVIDERS", default_value = "{}")]
    pub providers: String,
    /// Names of the model API key variables, comma-separated: they stay in the gateway, where
    /// the model proxy reads them (providers name theirs as `{env:NAME}`); agents never get them.
    #[arg(long, env = "PROLIFERATE_AGENT_ENV", value_delimiter = ',')]
    pub agent_env: Vec<String>,
    /// A JSON file of organisations' own model keys: `{"<organisation>": {"<provider>": "<key>"}}`.
    #[arg(long, env = "PROLIFERATE_MODEL_KEYS_FILE")]
    pub model_keys_file: Option<PathBuf>,
    /// Seconds a model provider may send nothing before the model proxy gives up on it.
    #[arg(
        long,
        env = "PROLIFERATE_MODEL_READ_TIMEOUT_SECS",
        default_value_t = 300
    )]
    pub model_read_timeout_secs: u64,
    /// Models sandboxes may use (`provider/model`), comma-separated; any configured by default.
    #[arg(long, env = "PROLIFERATE_ALLOWED_MODELS", value_delimiter = ',')]
    pub allowed_models: Vec<String>,
    /// Model prices as JSON: `{"provider/model": {"input": 3, "output": 15, "cache_read": 0.3,
    /// "cache_write": 3.75}}`, US dollars per million tokens.
    #[arg(long, env = "PROLIFERATE_MODEL_PRICES", default_value = "{}")]
    pub model_prices: String,
    /// The most tokens one session may use.
    #[arg(long, env = "PROLIFERATE_SESSION_TOKEN_BUDGET")]
    pub session_token_budget: Option<u64>,
    /// The most one session may spend on priced models, in US dollars.
    #[arg(long, env = "PROLIFERATE_SESSION_COST_BUDGET")]
    pub session_cost_budget: Option<f64>,
    /// The most tokens one organisation may use.
    #[arg(long, env = "PROLIFERATE_ORGANIZATION_TOKEN_BUDGET")]
    pub organization_token_budget: Option<u64>,
    /// The most one organisation may spend on priced models, in US dollars.
    #[arg(long, env = "PROLIFERATE_ORGANIZATION_COST_BUDGET")]
    pub organization_cost_budget: Option<f64>,
    /// A script file for the scripted model.
    #[arg(long, env = "PROLIFERATE_SCRIPT_FILE")]
    pub script_file: Option<PathBuf>,
    /// Agent isolation: `bubblewrap` (required to work; the server refuses to start without it)
    /// or `process` (no isolation: single-user development only).
    #[arg(long, env = "PROLIFERATE_ISOLATION", default_value = "bubblewrap", value_parser = parse_isolation)]
    pub isolation: IsolationMode,
    /// Hosts every sandbox may reach through the egress proxy (`host`, `host:port` or
    /// `*.domain`), comma-separated; none by default.
    #[arg(long, env = "PROLIFERATE_EGRESS_ALLOW", value_delimiter = ',')]
    pub egress_allow: Vec<String>,
    /// Memory of a sandbox, in bytes (sessions may ask for less).
    #[arg(long, env = "PROLIFERATE_MEMORY_LIMIT", default_value_t = 2 << 30)]
    pub memory_limit: u64,
    /// CPU of a sandbox, in thousandths of a core.
    #[arg(long, env = "PROLIFERATE_CPU_LIMIT", default_value_t = 1000)]
    pub cpu_limit: u32,
    /// Processes and threads of a sandbox at once.
    #[arg(long, env = "PROLIFERATE_PROCESS_LIMIT", default_value_t = 512)]
    pub process_limit: u32,
    /// Open files per process in a sandbox.
    #[arg(long, env = "PROLIFERATE_OPEN_FILES_LIMIT", default_value_t = 4096)]
    pub open_files_limit: u32,
    /// A sandbox's disk (home and workspace), in bytes; without root, the largest file it may
    /// write.
    #[arg(long, env = "PROLIFERATE_DISK_LIMIT", default_value_t = 10 << 30)]
    pub disk_limit: u64,
    /// OpenCode `permission` configuration as JSON, for example `{"bash":"ask"}`.
    #[arg(long, env = "PROLIFERATE_PERMISSION", default_value = "{}")]
    pub permission: String,
    /// Seconds a permission request waits for an answer.
    #[arg(
        long,
        env = "PROLIFERATE_PERMISSION_TIMEOUT_SECS",
        default_value_t = 300
    )]
    pub permission_timeout_secs: u64,
    /// The answer applied when nobody answers: `once`, `always` or `reject`.
    #[arg(long, env = "PROLIFERATE_PERMISSION_DEFAULT", default_value = "reject", value_parser = parse_decision)]
    pub permission_default: PermissionDecision,
    /// Seconds an unattended, idle session stays up before it pauses.
    #[arg(long, env = "PROLIFERATE_IDLE_GRACE_SECS", default_value_t = 300)]
    pub idle_grace_secs: u64,
    /// Seconds a session's hub stays in memory with no connection, no agent and no work; it
    /// comes back from the store on the next request about the session.
    #[arg(long, env = "PROLIFERATE_EVICT_HUBS_AFTER_SECS", default_value_t = 60)]
    pub evict_hubs_after_secs: u64,
    /// Seconds between server heartbeats.
    #[arg(long, env = "PROLIFERATE_HEARTBEAT_SECS", default_value_t = 15)]
    pub heartbeat_secs: u64,
    /// Seconds a WebSocket client may take to take what is sent to it before it is closed with
    /// 1013, even if it pings.
    #[arg(long, env = "PROLIFERATE_SEND_STALL_SECS", default_value_t = 30)]
    pub send_stall_secs: u64,
    /// The longest a user or service token may be valid, from issue to expiry, in seconds.
    #[arg(long, env = "PROLIFERATE_MAX_TOKEN_LIFETIME_SECS", default_value_t = 7 * 24 * 3600)]
    pub max_token_lifetime_secs: u64,
    /// The `iss` every user token must name; not checked when unset.
    #[arg(long, env = "PROLIFERATE_TOKEN_ISSUER")]
    pub token_issuer: Option<String>,
    /// The `aud` every user token must name; tokens naming an audience are refused when unset.
    #[arg(long, env = "PROLIFERATE_TOKEN_AUDIENCE")]
    pub token_audience: Option<String>,
    /// How many of a session's newest events its log keeps (older ones are dropped, the
    /// transcript kept); every event when unset.
    #[arg(long, env = "PROLIFERATE_RETAINED_EVENTS")]
    pub retained_events: Option<u64>,
    /// Seconds a session's events are kept; older ones are dropped, with the transcript kept in
    /// their place. Unset: kept for good.
    #[arg(long, env = "PROLIFERATE_RETAINED_EVENT_AGE_SECS")]
    pub retained_event_age_secs: Option<u64>,
    /// The most sessions of one organisation whose sandboxes run at once; no cap when unset.
    #[arg(long, env = "PROLIFERATE_MAX_LIVE_SESSIONS_PER_ORGANIZATION")]
    pub max_live_sessions_per_organization: Option<usize>,
    /// The largest event a session records, in bytes of JSON; an agent's larger event has its
    /// longest strings cut (at least 4096).
    #[arg(long, env = "PROLIFERATE_MAX_EVENT_BYTES", default_value_t = 1024 * 1024)]
    pub max_event_bytes: usize,
    /// The most prompts a session holds waiting their turn.
    #[arg(long, env = "PROLIFERATE_MAX_QUEUED_PROMPTS", default_value_t = 100)]
    pub max_queued_prompts: usize,
    /// Frames a connection may have unsent before it is closed with 1013.
    #[arg(long, env = "PROLIFERATE_SEND_BUDGET", default_value_t = 4096)]
    pub send_budget: usize,
    /// Caps each client socket's kernel send buffer, in bytes, so the memory a stalled client
    /// holds is bounded by the send budget plus this [default: the kernel's autotuning].
    #[arg(long, env = "PROLIFERATE_SOCKET_SEND_BUFFER")]
    pub socket_send_buffer: Option<usize>,
    /// The most connections open at once; one more is answered 503 and closed.
    #[arg(long, env = "PROLIFERATE_MAX_CONNECTIONS", default_value_t = 16384)]
    pub max_connections: usize,
    /// The most connections one address holds open at once; one more is answered 429 and
    /// closed. Behind a reverse proxy every client shares the proxy's address: raise it there.
    #[arg(
        long,
        env = "PROLIFERATE_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 1024
    )]
    pub max_connections_per_address: usize,
    /// The most streams (WebSocket and SSE) one organisation holds open at once.
    #[arg(
        long,
        env = "PROLIFERATE_MAX_CONNECTIONS_PER_ORGANIZATION",
        default_value_t = 4096
    )]
    pub max_connections_per_organization: usize,
    /// Seconds a client may take to send a request's headers; a kept-alive connection that
    /// starts no request within it is closed.
    #[arg(
        long,
        env = "PROLIFERATE_HEADER_READ_TIMEOUT_SECS",
        default_value_t = 30
    )]
    pub header_read_timeout_secs: u64,
}

fn parse_isolation(text: &str) -> Result<IsolationMode, String> {
    match text {
        "bubblewrap" => Ok(IsolationMode::Bubblewrap),
        "process" => Ok(IsolationMode::Process),
        other => Err(format!("{other:?} is not bubblewrap or process")),
    }
}

fn parse_decision(text: &str) -> Result<PermissionDecision, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| format!("{text:?} is not once, always or reject"))
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

impl ServeArgs {
    /// The data directory, defaulted.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| home().join(".local/share/proliferate"))
    }

    /// The `opencode` executable, defaulted.
    pub fn opencode(&self) -> PathBuf {
        self.opencode
            .clone()
            .unwrap_or_else(proliferate_core::agent::opencode::default_program)
    }

    /// The most a session's sandbox may use.
    pub fn limits(&self) -> SandboxLimits {
        SandboxLimits {
            memory_bytes: Some(self.memory_limit),
            cpu_millicores: Some(self.cpu_limit),
            processes: Some(self.process_limit),
            open_files: Some(self.open_files_limit),
            disk_bytes: Some(self.disk_limit),
            ..SandboxLimits::default()
        }
    }

    /// What the model proxy allows, and what models cost.
    pub fn model_policy(&self) -> Result<ModelPolicy, String> {
        let prices = serde_json::from_str(&self.model_prices)
            .map_err(|error| format!("PROLIFERATE_MODEL_PRICES: {error}"))?;
        Ok(ModelPolicy {
            allowed: self.allowed_models.clone(),
            prices,
            session: Budget {
                tokens: self.session_token_budget,
                cost: self.session_cost_budget,
            },
            organization: Budget {
                tokens: self.organization_token_budget,
                cost: self.organization_cost_budget,
            },
        })
    }

    /// Organisations' own model keys, from [`ServeArgs::model_keys_file`].
    pub fn organization_keys(&self) -> Result<OrganizationKeys, String> {
        let Some(path) = &self.model_keys_file else {
            return Ok(OrganizationKeys::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("reading {}: {error}", path.display()))?;
        serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))
    }

    /// Limits of the accept loop.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            total: self.max_connections.max(1),
            per_address: self.max_connections_per_address.max(1),
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs.max(1)),
            send_buffer: self.socket_send_buffer,
        }
    }

    /// Hub tunables.
    pub fn hub(&self) -> HubConfig {
        HubConfig {
            send_budget: self.send_budget.max(16),
            heartbeat_interval: Duration::from_secs(self.heartbeat_secs.max(1)),
            permission_timeout: Duration::from_secs(self.permission_timeout_secs),
            permission_default: self.permission_default,
            idle_grace: Duration::from_secs(self.idle_grace_secs),
            evict_after: Duration::from_secs(self.evict_hubs_after_secs),
            max_queued_prompts: self.max_queued_prompts,
            max_event_bytes: self.max_event_bytes.max(4096),
            retained_events: self.retained_events.map(|count| count.max(1)),
            retained_age: (self.retained_event_age_secs)
                .map(|secs| Duration::from_secs(secs.max(1))),
            max_live_sessions_per_organization: self.max_live_sessions_per_organization,
            max_connections_per_organization: Some(self.max_connections_per_organization.max(1)),
            gateway_id: (self.gateway_id.clone()).unwrap_or_else(host_name),
            lease_ttl: Duration::from_secs(self.lease_ttl_secs.max(3)),
            ..HubConfig::default()
        }
    }
}

impl ServeArgs {
    /// The defaults of every setting, with this data directory.
    pub fn parse_defaults(data_dir: Option<PathBuf>) -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            args: ServeArgs,
        }
        let mut args = <Defaults as clap::Parser>::parse_from(["proliferate-server"]).args;
        if data_dir.is_some() {
            args.data_dir = data_dir;
        }
        args
    }
}

/// The machine's host name, or `local` where it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "local".into())
}
