//! Commands to OpenCode over its HTTP API.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::agent::{AgentControl, AgentPrompt, DriverError};
use crate::protocol::v1::PermissionDecision;
use crate::sandbox::AgentEndpoint;

/// Every request to the agent gets this long; prompts are asynchronous, so none should need more.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

pub(super) struct OpenCodeControl {
    agent: AgentEndpoint,
    session_id: String,
    abort: Arc<PendingAbort>,
}

/// An abort the running turn may not have seen yet. OpenCode starts a prompt's run in the
/// background after `prompt_async` answers, and an abort that arrives before the run starts stops
/// nothing; so until OpenCode next goes idle, the event stream aborts again when it sees the
/// session go busy.
#[derive(Debug)]
pub(super) struct PendingAbort {
    agent: AgentEndpoint,
    session_id: String,
    pending: AtomicBool,
}

impl PendingAbort {
    /// Sends the abort, and keeps it pending until [`PendingAbort::settled`].
    async fn send(&self) -> Result<(), DriverError> {
        self.pending.store(true, Ordering::SeqCst);
        let path = format!("{}/session/{}/abort", self.agent.base_url, self.session_id);
        send(self.agent.http.post(path)).await?;
        Ok(())
    }

    /// The session went busy: aborts again if an abort is pending.
    pub(super) fn on_busy(self: &Arc<Self>) {
        if self.pending.load(Ordering::SeqCst) {
            let abort = self.clone();
            tokio::spawn(async move {
                if let Err(error) = abort.send().await {
                    tracing::warn!(error = %error, "repeating an abort failed");
                }
            });
        }
    }

    /// The session went idle, or a new prompt starts: nothing is left to abort.
    pub(super) fn settled(&self) {
        self.pending.store(false, Ordering::SeqCst);
    }
}

fn unreachable(error: reqwest::Error) -> DriverError {
    DriverError::Unreachable(error.without_url().to_string())
}

/// Sends a request and turns every non-2xx answer into [`DriverError::Rejected`].
async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, DriverError> {
    let response = request
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let mut message = response.text().await.unwrap_or_default();
    message.truncate(500);
    Err(DriverError::Rejected {
        status: status.as_u16(),
        message,
    })
}

async fn json_of(response: reqwest::Response) -> Result<Value, DriverError> {
    response
        .json()
        .await
        .map_err(|error| DriverError::Protocol(error.without_url().to_string()))
}

impl OpenCodeControl {
    /// Adopts `known_session` if OpenCode still has it, else its most recently updated session,
    /// else creates a new one; then has OpenCode load its providers.
    pub(super) async fn attach(
        agent: AgentEndpoint,
        known_session: Option<&str>,
    ) -> Result<Self, DriverError> {
        let session_id = adopt_or_create(&agent, known_session).await?;
        // OpenCode loads its providers on first use, and an abort that lands during that load
        // leaves the next prompt failing ("All fibers interrupted"); load them now.
        send(
            agent
                .http
                .get(format!("{}/config/providers", agent.base_url)),
        )
        .await?;
        Ok(Self {
            abort: Arc::new(PendingAbort {
                agent: agent.clone(),
                session_id: session_id.clone(),
                pending: AtomicBool::new(false),
            }),
            agent,
            session_id,
        })
    }

    pub(super) fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The abort the event stream repeats while it is pending.
    pub(super) fn pending_abort(&self) -> Arc<PendingAbort> {
        self.abort.clone()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.agent.base_url)
    }
}

async fn adopt_or_create(
    agent: &AgentEndpoint,
    known_session: Option<&str>,
) -> Result<String, DriverError> {
    let url = |path: &str| format!("{}{path}", agent.base_url);
    if let Some(known) = known_session {
        match send(agent.http.get(url(&format!("/session/{known}")))).await {
            Ok(_) => return Ok(known.to_owned()),
            Err(DriverError::Rejected { status: 404, .. }) => {}
            Err(error) => return Err(error),
        }
    }
    let sessions = json_of(send(agent.http.get(url("/session"))).await?).await?;
    let newest = sessions
        .as_array()
        .into_iter()
        .flatten()
        .filter(|session| session["parentID"].is_null())
        .max_by_key(|session| session["time"]["updated"].as_i64().unwrap_or_default())
        .and_then(|session| session["id"].as_str());
    if let Some(id) = newest {
        return Ok(id.to_owned());
    }
    let created = json_of(send(agent.http.post(url("/session")).json(&json!({}))).await?).await?;
    created["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| DriverError::Protocol("POST /session answered without an id".into()))
}

/// OpenCode's prompt parts: the text, then each image as a file part.
fn prompt_parts(prompt: &AgentPrompt) -> Vec<Value> {
    let images = prompt.images.iter().map(|url| {
        let mime = url
            .strip_prefix("data:")
            .and_then(|rest| rest.split(';').next())
            .unwrap_or("image/png");
        json!({ "type": "file", "mime": mime, "url": url, "filename": "image" })
    });
    images
        .chain(std::iter::once(
            json!({ "type": "text", "text": prompt.text }),
        ))
        .collect()
}

#[async_trait]
impl AgentControl for OpenCodeControl {
    fn agent_session_id(&self) -> &str {
        &self.session_id
    }

    async fn prompt(&self, prompt: &AgentPrompt) -> Result<(), DriverError> {
        let path = format!("/session/{}/prompt_async", self.session_id);
        let body = json!({ "parts": prompt_parts(prompt) });
        self.abort.settled();
        send(self.agent.http.post(self.url(&path)).json(&body)).await?;
        Ok(())
    }

    async fn abort(&self) -> Result<(), DriverError> {
        self.abort.send().await
    }

    async fn reply_permission(
        &self,
        permission_id: &str,
        decision: PermissionDecision,
    ) -> Result<(), DriverError> {
        let reply = match decision {
            PermissionDecision::Once => "once",
            PermissionDecision::Always => "always",
            PermissionDecision::Reject => "reject",
        };
        let path = format!("/permission/{permission_id}/reply");
        send(
            self.agent
                .http
                .post(self.url(&path))
                .json(&json!({ "reply": reply })),
        )
        .await?;
        Ok(())
    }

    async fn history(&self) -> Result<Value, DriverError> {
        let path = format!("/session/{}/message", self.session_id);
        json_of(send(self.agent.http.get(self.url(&path))).await?).await
    }
}
