//! The reference Proliferate server: the gateway engine of `proliferate-core` over HTTP,
//! WebSocket and Server-Sent Events, on embedded defaults (SQLite, local sandboxes, OpenCode).
//!
//! Embed it: [`router`] gives the axum router to nest in your own app; [`Server::start`] runs the
//! whole server on a listener, as the `proliferate-server` binary does.

pub mod config;
mod credentials;
pub mod model_proxy;
mod observability;
mod openapi;
mod problem;
mod routes;
mod secrets;
mod serve;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proliferate_core::agent::opencode::{OpenCodeConfig, OpenCodeDriver};
use proliferate_core::auth::Authenticator;
use proliferate_core::bus::Bus;
#[cfg(feature = "redis")]
use proliferate_core::bus::redis::RedisBus;
use proliferate_core::sandbox::{EgressPolicy, LocalProvider, LocalProviderConfig, SandboxError};
#[cfg(feature = "postgres")]
use proliferate_core::store::PostgresStore;
use proliferate_core::store::{EventLog, MetadataStore, SqliteStore, StoreError, UsageLedger};
use proliferate_core::{Gateway, GatewayError, GatewayParts};
use scripted_model::{ScriptLibrary, ScriptedModel};
use tokio::sync::watch;

pub use config::ServeArgs;
pub use observability::init_logging;
pub use routes::{AppState, router};
pub use serve::{ConnectionLimits, ReadAllowance};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A setting is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// A file or socket operation failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The sandbox provider could not be set up.
    #[error("sandbox: {0}")]
    Sandbox(#[from] SandboxError),
    /// The engine could not start.
    #[error("gateway: {0}")]
    Gateway(#[from] GatewayError),
}

/// The shortest signing secret the server accepts, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// The signing secrets: from `PROLIFERATE_JWT_SECRET` and `PROLIFERATE_SERVICE_SECRET`, else
/// generated once into `<data dir>/secrets/` (the folder `0700`, each file created `0600` and
/// renamed into place whole). A secret shorter than [`MIN_SECRET_BYTES`] is refused.
pub fn authenticator(data_dir: &Path) -> Result<Authenticator, ServeError> {
    let secrets = data_dir.join("secrets");
    let secret = |variable: &str, file: &str| -> Result<String, ServeError> {
        let path = secrets.join(file);
        let value = match std::env::var(variable) {
            Ok(value) => value,
            Err(_) => match std::fs::read_to_string(&path) {
                Ok(value) => value.trim().to_owned(),
                Err(_) => secrets::create(&path)?,
            },
        };
        if value.len() < MIN_SECRET_BYTES {
            return Err(ServeError::Config(format!(
                "{variable} (or {}) is shorter than {MIN_SECRET_BYTES} bytes",
                path.display()
            )));
        }
        Ok(value)
    };
    secrets::private_folder(data_dir)?;
    secrets::private_folder(&secrets)?;
    Ok(Authenticator::new(
        secret("PROLIFERATE_JWT_SECRET", "jwt")?,
        secret("PROLIFERATE_SERVICE_SECRET", "service")?,
    ))
}

impl ServeArgs {
    /// The server's authenticator: its secrets ([`authenticator`]) and its token checks.
    pub fn authenticator(&self) -> Result<Authenticator, ServeError> {
        Ok(authenticator(&self.data_dir())?
            .with_max_token_lifetime(Duration::from_secs(self.max_token_lifetime_secs.max(1)))
            .with_issuer_and_audience(self.token_issuer.clone(), self.token_audience.clone()))
    }
}

/// A running server.
pub struct Server {
    /// Where it listens.
    pub address: SocketAddr,
    gateway: Gateway,
    shutting_down: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    _model: Option<ScriptedModel>,
}

/// The server's store, as the gateway's three ports.
struct Store {
    metadata: Arc<dyn MetadataStore>,
    log: Arc<dyn EventLog>,
    usage: Arc<dyn UsageLedger>,
}

impl<T: MetadataStore + EventLog + UsageLedger + 'static> From<T> for Store {
    fn from(store: T) -> Self {
        let store = Arc::new(store);
        Self {
            metadata: store.clone(),
            log: store.clone(),
            usage: store,
        }
    }
}

/// PostgreSQL when a database URL is given, else SQLite in the data folder.
async fn open_store(args: &ServeArgs, data_dir: &Path) -> Result<Store, ServeError> {
    match &args.database_url {
        None => Ok(SqliteStore::open(&data_dir.join("proliferate.db"))
            .await?
            .into()),
        #[cfg(feature = "postgres")]
        Some(url) => {
            let store = PostgresStore::connect(url, args.database_connections.max(1)).await?;
            Ok(store.into())
        }
        #[cfg(not(feature = "postgres"))]
        Some(_) => Err(ServeError::Config(
            "this server was built without PostgreSQL (the `postgres` feature)".into(),
        )),
    }
}

/// The bus to the other gateways, when a Redis server is given.
async fn open_bus(args: &ServeArgs) -> Result<Option<Arc<dyn Bus>>, ServeError> {
    match &args.bus_url {
        None => Ok(None),
        #[cfg(feature = "redis")]
        Some(url) => {
            let bus = RedisBus::connect(url)
                .await
                .map_err(|error| ServeError::Config(format!("--bus-url: {error}")))?;
            Ok(Some(Arc::new(bus)))
        }
        #[cfg(not(feature = "redis"))]
        Some(_) => Err(ServeError::Config(
            "this server was built without the Redis bus (the `redis` feature)".into(),
        )),
    }
}

impl Server {
    /// Opens the store, recovers sessions from a previous run, and starts serving.
    pub async fn start(args: &ServeArgs) -> Result<Self, ServeError> {
        let data_dir = args.data_dir();
        secrets::private_folder(&data_dir)?;
        let authenticator = args.authenticator()?;
        let json = |name: &str, text: &str| {
            serde_json::from_str::<serde_json::Value>(text)
                .map_err(|error| ServeError::Config(format!("{name} is not JSON: {error}")))
        };
        let (model, opencode) = if args.model == "scripted" {
            let library = match &args.script_file {
                Some(path) => ScriptLibrary::from_file(path)
                    .map_err(|error| ServeError::Config(error.to_string()))?,
                None => ScriptLibrary::default(),
            };
            let model = ScriptedModel::start_with(library).await?;
            let config =
                OpenCodeConfig::with_openai_compatible_model(args.opencode(), &model.base_url());
            (Some(model), config)
        } else {
            let mut config = OpenCodeConfig::with_openai_compatible_model(args.opencode(), "");
            config.model = args.model.clone();
            config.providers = json("PROLIFERATE_MODEL_PROVIDERS", &args.providers)?;
            (None, config)
        };
        // The agent gets the proxy's address and its sandbox token; the gateway keeps the rest.
        let (upstreams, providers) =
            model_proxy::upstream::route_through_proxy(&opencode.providers, &opencode.model)
                .map_err(ServeError::Config)?;
        let model_proxy = Arc::new(model_proxy::ModelProxy::new(
            upstreams,
            args.organization_keys().map_err(ServeError::Config)?,
            args.model_policy().map_err(ServeError::Config)?,
            Duration::from_secs(args.model_read_timeout_secs.max(1)),
        ));
        let opencode = OpenCodeConfig {
            permission: json("PROLIFERATE_PERMISSION", &args.permission)?,
            providers,
            ..opencode
        };
        let store = open_store(args, &data_dir).await?;
        let provider = LocalProvider::new(LocalProviderConfig {
            isolation: args.isolation,
            limits: args.limits(),
            egress: EgressPolicy::new(&args.egress_allow),
            channel_services: vec![Arc::new(model_proxy::ModelProxyService(
                model_proxy.clone(),
            ))],
            ..LocalProviderConfig::new(&data_dir)
        })?;
        let gateway = Gateway::start(GatewayParts {
            store: store.metadata,
            log: store.log,
            usage: store.usage,
            isolation: provider.isolation().to_owned(),
            provider: Arc::new(provider),
            driver: Arc::new(OpenCodeDriver::new(opencode)),
            authenticator,
            config: args.hub(),
            bus: open_bus(args).await?,
        })
        .await?;
        model_proxy.attach(Arc::new(gateway.clone()));
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        let address = listener.local_addr()?;
        let (shutting_down, watcher) = watch::channel(false);
        let app = router(AppState {
            gateway: gateway.clone(),
            shutting_down: watcher.clone(),
            model_proxy: Some(model_proxy),
            send_stall: Duration::from_secs(args.send_stall_secs.max(1)),
        });
        let task = tokio::spawn(serve::serve(
            listener,
            app,
            args.connection_limits(),
            watcher,
        ));
        Ok(Self {
            address,
            gateway,
            shutting_down,
            task,
            _model: model,
        })
    }

    /// The engine, for embedding and tests.
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// Stops gracefully: sockets close with 1001, requests in flight finish, every agent stops.
    /// Every event was persisted before it was sent, so none is lost.
    pub async fn stop(self) {
        let _ = self.shutting_down.send(true);
        let _ = self.task.await;
        self.gateway.shutdown().await;
    }
}
