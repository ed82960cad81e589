//! Shared pieces of the live tests: a real OpenCode, a scripted model, a local provider.

#![allow(dead_code)]

pub mod engine;
#[cfg(feature = "postgres")]
pub mod postgres;

use std::path::PathBuf;
use std::time::Duration;

use proliferate_core::agent::opencode::{OpenCodeConfig, OpenCodeDriver};
use proliferate_core::agent::{AgentDriver, AgentSession, AgentUpdate};
use proliferate_core::sandbox::{
    LocalProvider, LocalProviderConfig, Sandbox, SandboxProvider, SandboxSpec,
};
use scripted_model::ScriptedModel;
use serde_json::Value;

/// The pinned OpenCode that `scripts/install-opencode` installs. Missing is a failure, not a skip.
pub fn opencode_program() -> PathBuf {
    let program = proliferate_core::agent::opencode::default_program();
    assert!(
        program.is_absolute() && program.exists(),
        "OpenCode is not installed ({}); run scripts/install-opencode",
        program.display()
    );
    program
}

/// A scripted model, a local provider in a temporary data directory, and the OpenCode driver.
pub struct Rig {
    pub model: ScriptedModel,
    pub provider: LocalProvider,
    pub driver: OpenCodeDriver,
    pub data_dir: tempfile::TempDir,
}

impl Rig {
    /// A rig whose OpenCode uses `permission` (for example `{"bash": "ask"}`).
    pub async fn new(permission: Value) -> Self {
        let model = ScriptedModel::start().await.expect("scripted model");
        let data_dir = tempfile::tempdir().expect("temporary folder");
        let provider = LocalProvider::new(LocalProviderConfig {
            helper: Some(env!("CARGO_BIN_EXE_proliferate-sandbox").into()),
            channel_services: vec![std::sync::Arc::new(
                proliferate_core::sandbox::LoopbackForward(model.address()),
            )],
            ..LocalProviderConfig::new(data_dir.path())
        })
        .expect("provider");
        let mut config =
            OpenCodeConfig::with_openai_compatible_model(opencode_program(), &model.base_url());
        config.permission = permission;
        Self {
            model,
            provider,
            driver: OpenCodeDriver::new(config),
            data_dir,
        }
    }

    /// Starts (or resumes) a session's sandbox and attaches to its agent.
    pub async fn start(
        &self,
        session_id: &str,
        restore_from: Option<String>,
        known: Option<&str>,
    ) -> (Sandbox, AgentSession) {
        let spec = SandboxSpec {
            session_id: session_id.into(),
            launch: self.driver.launch(self.driver.default_model()),
            restore_from,
            limits: self.provider.limits(),
            egress_allow: Vec::new(),
            environment: Vec::new(),
        };
        let sandbox = self.provider.start(&spec).await.expect("sandbox starts");
        let session = self
            .driver
            .attach(&sandbox.agent, known)
            .await
            .expect("driver attaches");
        (sandbox, session)
    }

    /// The session's workspace on this machine.
    pub fn workspace(&self, session_id: &str) -> PathBuf {
        self.provider.workspace_dir(session_id)
    }
}

/// Collects updates until the agent is idle (or `until` says stop), within `limit`.
pub async fn collect_until(
    session: &mut AgentSession,
    limit: Duration,
    mut until: impl FnMut(&AgentUpdate) -> bool,
) -> Vec<AgentUpdate> {
    let mut updates = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let update = tokio::time::timeout_at(deadline, session.updates.recv())
            .await
            .unwrap_or_else(|_| panic!("no end of turn within {limit:?}; got {updates:#?}"))
            .expect("update stream open");
        let stop = until(&update);
        updates.push(update);
        if stop {
            return updates;
        }
    }
}

/// Collects one turn's updates, up to the agent going idle.
pub async fn collect_turn(session: &mut AgentSession) -> Vec<AgentUpdate> {
    collect_until(session, Duration::from_secs(90), |update| {
        matches!(update, AgentUpdate::Idle)
    })
    .await
}

/// A gateway over the in-memory store, the fake provider and fake agents, with a principal of
/// organisation `acme` that may read and write.
pub struct Engine {
    pub gateway: proliferate_core::Gateway,
    pub store: std::sync::Arc<proliferate_core::store::MemoryStore>,
    pub provider: std::sync::Arc<proliferate_core::sandbox::fake::FakeProvider>,
    pub driver: std::sync::Arc<proliferate_core::agent::fake::FakeDriver>,
    pub who: proliferate_core::protocol::v1::Principal,
}

impl Engine {
    /// A gateway over an empty store.
    pub async fn start(config: proliferate_core::hub::HubConfig) -> Self {
        let store = std::sync::Arc::new(proliferate_core::store::MemoryStore::new());
        Self::on(
            store,
            proliferate_core::sandbox::fake::FakeProvider::new(),
            config,
        )
        .await
    }

    /// A gateway over an existing store and provider, as after a restart.
    pub async fn on(
        store: std::sync::Arc<proliferate_core::store::MemoryStore>,
        provider: std::sync::Arc<proliferate_core::sandbox::fake::FakeProvider>,
        config: proliferate_core::hub::HubConfig,
    ) -> Self {
        Self::joined(store, provider, config, None).await
    }

    /// A gateway over an existing store and provider, on `bus` with the other gateways there.
    pub async fn joined(
        store: std::sync::Arc<proliferate_core::store::MemoryStore>,
        provider: std::sync::Arc<proliferate_core::sandbox::fake::FakeProvider>,
        config: proliferate_core::hub::HubConfig,
        bus: Option<std::sync::Arc<dyn proliferate_core::bus::Bus>>,
    ) -> Self {
        use proliferate_core::protocol::v1::{Principal, PrincipalKind, Scope};
        let driver = proliferate_core::agent::fake::FakeDriver::new();
        let gateway = proliferate_core::Gateway::start(proliferate_core::GatewayParts {
            store: store.clone(),
            log: store.clone(),
            usage: store.clone(),
            provider: provider.clone(),
            driver: driver.clone(),
            isolation: "none".into(),
            authenticator: proliferate_core::auth::Authenticator::new(
                "user secret",
                "service secret",
            ),
            config,
            bus,
        })
        .await
        .unwrap();
        let who = Principal {
            subject: "ada".into(),
            organization_id: "acme".into(),
            scopes: vec![Scope::Read, Scope::Write],
            kind: PrincipalKind::User,
            session_id: None,
        };
        Self {
            gateway,
            store,
            provider,
            driver,
            who,
        }
    }
}
