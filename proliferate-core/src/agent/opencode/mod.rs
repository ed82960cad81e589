//! The OpenCode driver: `opencode serve`'s HTTP API for commands, its `/event` stream for output.
//!
//! The translation from OpenCode events to protocol v1 events is documented in
//! `docs/agents/opencode.md` and lives in [`translate`].

mod control;
pub mod stream;
pub mod translate;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{AgentDriver, AgentSession, DriverError};
use crate::sandbox::{AgentCredential, AgentEndpoint, AgentLaunch};
use control::OpenCodeControl;

/// Settings of the OpenCode driver.
#[derive(Debug, Clone)]
pub struct OpenCodeConfig {
    /// The `opencode` executable.
    pub program: PathBuf,
    /// The model, as `provider/model`, for example `scripted/scripted-model`.
    pub model: String,
    /// OpenCode `provider` configuration merged into the agent's config (custom providers such
    /// as an OpenAI-compatible endpoint); `{}` to use OpenCode's built-in providers.
    pub providers: Value,
    /// OpenCode `permission` configuration, for example `{"bash": "ask"}`.
    pub permission: Value,
    /// How long the event stream may stay silent before it is treated as dead (OpenCode sends a
    /// heartbeat every 10 s).
    pub heartbeat_timeout: Duration,
}

impl OpenCodeConfig {
    /// OpenCode at `program`, answering with an OpenAI-compatible model at `base_url` (for
    /// example the scripted model), allowing every tool.
    pub fn with_openai_compatible_model(program: impl Into<PathBuf>, base_url: &str) -> Self {
        Self {
            program: program.into(),
            model: "scripted/scripted-model".into(),
            providers: json!({
                "scripted": {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "Scripted model",
                    "options": { "baseURL": base_url, "apiKey": "scripted" },
                    "models": { "scripted-model": {
                        "name": "Scripted model",
                        "tool_call": true,
                        "limit": { "context": 128000, "output": 4096 },
                    }},
                },
            }),
            permission: json!({}),
            heartbeat_timeout: Duration::from_secs(30),
        }
    }

    /// The OpenCode configuration document the agent starts with, answering with `model`.
    pub fn agent_config(&self, model: &str) -> Value {
        let mut providers: Vec<&str> = self
            .providers
            .as_object()
            .into_iter()
            .flat_map(|providers| providers.keys().map(String::as_str))
            .collect();
        providers.push(model.split('/').next().unwrap_or_default());
        providers.sort_unstable();
        providers.dedup();
        json!({
            "$schema": "https://opencode.ai/config.json",
            "provider": self.providers,
            "model": model,
            "small_model": model,
            "enabled_providers": providers,
            "permission": self.permission,
            "autoupdate": false,
            "share": "disabled",
        })
    }
}

/// Drives `opencode serve`.
pub struct OpenCodeDriver {
    config: OpenCodeConfig,
}

impl OpenCodeDriver {
    /// A driver with these settings.
    pub fn new(config: OpenCodeConfig) -> Self {
        Self { config }
    }
}

/// Where the pinned OpenCode is: `PROLIFERATE_OPENCODE_BIN`, else the install that
/// `scripts/install-opencode` makes under `PROLIFERATE_CACHE` (default `~/.cache/proliferate`),
/// else `opencode` on the `PATH`.
pub fn default_program() -> PathBuf {
    if let Some(program) = std::env::var_os("PROLIFERATE_OPENCODE_BIN") {
        return PathBuf::from(program);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    let cache = std::env::var_os("PROLIFERATE_CACHE")
        .map_or_else(|| home.join(".cache/proliferate"), PathBuf::from);
    let installed = cache.join("opencode/node_modules/.bin/opencode");
    if installed.exists() {
        installed
    } else {
        PathBuf::from("opencode")
    }
}

/// The folder an npm-installed `opencode` needs: the parent of its `node_modules`.
fn install_root(program: &std::path::Path) -> PathBuf {
    program
        .ancestors()
        .find(|folder| {
            folder
                .file_name()
                .is_some_and(|name| name == "node_modules")
        })
        .and_then(std::path::Path::parent)
        .or_else(|| program.parent())
        .unwrap_or(program)
        .to_path_buf()
}

#[async_trait]
impl AgentDriver for OpenCodeDriver {
    fn name(&self) -> &'static str {
        "opencode"
    }

    fn default_model(&self) -> &str {
        &self.config.model
    }

    fn launch(&self, model: &str) -> AgentLaunch {
        let flags = [
            "OPENCODE_DISABLE_PROJECT_CONFIG",
            "OPENCODE_DISABLE_MODELS_FETCH",
            "OPENCODE_DISABLE_AUTOUPDATE",
            "OPENCODE_DISABLE_SHARE",
            "OPENCODE_DISABLE_LSP_DOWNLOAD",
            "OPENCODE_DISABLE_DEFAULT_PLUGINS",
            "OPENCODE_DISABLE_CLAUDE_CODE",
        ];
        let mut environment: Vec<(String, String)> = flags
            .iter()
            .map(|flag| (flag.to_string(), "true".to_owned()))
            .collect();
        environment.push((
            "OPENCODE_CONFIG_CONTENT".into(),
            self.config.agent_config(model).to_string(),
        ));
        let program = std::fs::canonicalize(&self.config.program)
            .unwrap_or_else(|_| self.config.program.clone());
        AgentLaunch {
            install_root: Some(install_root(&program)),
            program: self.config.program.clone(),
            arguments: ["serve", "--port", "{port}", "--hostname", "127.0.0.1"]
                .map(String::from)
                .to_vec(),
            credential: Some(AgentCredential {
                username: "opencode".into(),
                password_variable: "OPENCODE_SERVER_PASSWORD".into(),
            }),
            environment,
            home_files: Vec::new(),
            readiness_path: "/global/health".into(),
        }
    }

    async fn attach(
        &self,
        agent: &AgentEndpoint,
        known_session: Option<&str>,
    ) -> Result<AgentSession, DriverError> {
        let (sender, updates) = mpsc::channel(1024);
        let connected = stream::subscribe(agent, self.config.heartbeat_timeout).await?;
        let control = OpenCodeControl::attach(agent.clone(), known_session).await?;
        let session_id = control.session_id().to_owned();
        tokio::spawn(stream::run(
            connected,
            agent.clone(),
            self.config.heartbeat_timeout,
            translate::Translator::new(session_id),
            control.pending_abort(),
            sender,
        ));
        Ok(AgentSession {
            control: Arc::new(control),
            updates,
        })
    }
}
