//! Commands to OpenCode over its HTTP API.

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
    /// else creates a new one.
    pub(super) async fn attach(
        agent: AgentEndpoint,
        known_session: Option<&str>,
    ) -> Result<Self, DriverError> {
        let mut control = Self {
            agent,
            session_id: String::new(),
        };
        control.session_id = control.adopt_or_create(known_session).await?;
        Ok(control)
    }

    pub(super) fn session_id(&self) -> &str {
        &self.session_id
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.agent.base_url)
    }

    async fn adopt_or_create(&self, known_session: Option<&str>) -> Result<String, DriverError> {
        if let Some(known) = known_session {
            match send(self.agent.http.get(self.url(&format!("/session/{known}")))).await {
                Ok(_) => return Ok(known.to_owned()),
                Err(DriverError::Rejected { status: 404, .. }) => {}
                Err(error) => return Err(error),
            }
        }
        let sessions = json_of(send(self.agent.http.get(self.url("/session"))).await?).await?;
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
        let created =
            json_of(send(self.agent.http.post(self.url("/session")).json(&json!({}))).await?)
                .await?;
        created["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| DriverError::Protocol("POST /session answered without an id".into()))
    }
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
        send(self.agent.http.post(self.url(&path)).json(&body)).await?;
        Ok(())
    }

    async fn abort(&self) -> Result<(), DriverError> {
        let path = format!("/session/{}/abort", self.session_id);
        send(self.agent.http.post(self.url(&path))).await?;
        Ok(())
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
