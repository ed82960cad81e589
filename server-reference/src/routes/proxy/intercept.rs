//! Prompts and aborts sent through the agent proxy go through the session's queue instead of
//! straight to OpenCode, so every client sees them: a prompt gets its `user_message`, waits its
//! turn, and its turn starts and ends in the log; an abort cancels the running turn.
//!
//! OpenCode's prompt body is reduced to what a v1 prompt carries: its text parts become the
//! content, its image file parts the images, and a file part naming a workspace file is kept as a
//! mention of its path (the agent reads the file itself). `model`, `agent`, `variant` and `system`
//! are the session's own; `noReply`, `format`, agent and subtask parts are refused.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use proliferate_core::protocol::v1::{Event, Principal, SendMessageRequest, ServerFrame};
use proliferate_core::sandbox::AgentEndpoint;
use proliferate_core::{Gateway, GatewayError};
use serde_json::Value;

use super::agent_policy::Intercept;
use crate::problem::ApiError;

/// How prompts and cancels from the agent proxy are attributed.
const SOURCE: &str = "agent_proxy";

/// Does for `intercept` what OpenCode would, through the session's queue.
pub(super) async fn handle(
    gateway: &Gateway,
    principal: &Principal,
    session_id: &str,
    agent: &AgentEndpoint,
    intercept: Intercept<'_>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (Intercept::Prompt { agent_session, .. } | Intercept::Abort { agent_session, .. }) =
        intercept;
    let own = gateway.agent_session(principal, session_id).await?;
    if own.as_deref() != Some(agent_session) {
        return Err(ApiError(GatewayError::Forbidden(format!(
            "only the session's own OpenCode session ({}) is driven through the gateway",
            own.unwrap_or_default()
        ))));
    }
    match intercept {
        Intercept::Abort { answers_true, .. } => {
            gateway.cancel(principal, session_id, SOURCE).await?;
            Ok(match answers_true {
                true => Json(true).into_response(),
                false => StatusCode::NO_CONTENT.into_response(),
            })
        }
        Intercept::Prompt { wait: false, .. } => {
            let request = prompt_request(&body)?;
            gateway
                .send_prompt(principal, session_id, request, SOURCE)
                .await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Intercept::Prompt { wait: true, .. } => {
            let request = prompt_request(&body)?;
            let head = gateway.session(principal, session_id).await?.head_seq;
            let admission = gateway
                .send_prompt(principal, session_id, request, SOURCE)
                .await?;
            let after_seq = if admission.duplicate { 0 } else { head };
            turn_end(
                gateway,
                principal,
                session_id,
                after_seq,
                &admission.prompt_id,
            )
            .await?;
            Ok(Json(last_message(agent, agent_session).await?).into_response())
        }
    }
}

/// The v1 prompt of an OpenCode prompt body (already checked by the policy).
fn prompt_request(body: &[u8]) -> Result<SendMessageRequest, ApiError> {
    let refuse = |message: &str| ApiError(GatewayError::BadRequest(message.to_owned()));
    let prompt: Value = serde_json::from_slice(body)
        .map_err(|_| refuse("the agent request body must be a JSON object"))?;
    for unsupported in ["noReply", "format"] {
        if prompt.get(unsupported).is_some() {
            return Err(refuse(&format!(
                "`{unsupported}` is not accepted through the gateway: prompts take their turn in \
                 the session's queue"
            )));
        }
    }
    let mut texts = Vec::new();
    let mut images = Vec::new();
    let mut mentions = Vec::new();
    for part in prompt["parts"].as_array().into_iter().flatten() {
        let url = part["url"].as_str().unwrap_or_default();
        match part["type"].as_str() {
            Some("text") => texts.push(part["text"].as_str().unwrap_or_default()),
            Some("file") if url.starts_with("data:") => images.push(url.to_owned()),
            Some("file") => mentions.push(
                part["source"]["path"]
                    .as_str()
                    .or(part["filename"].as_str())
                    .unwrap_or(url),
            ),
            _ => return Err(refuse("the gateway takes text and file parts only")),
        }
    }
    let mut content = texts.join("\n");
    for mention in mentions {
        if !content.contains(mention) {
            content.push_str(&format!("\n@{mention}"));
        }
    }
    Ok(SendMessageRequest {
        prompt_id: prompt["messageID"].as_str().map(str::to_owned),
        content,
        images,
        ..Default::default()
    })
}

/// Waits until the prompt's turn ends; `conflict` if it was withdrawn before it ran.
async fn turn_end(
    gateway: &Gateway,
    principal: &Principal,
    session_id: &str,
    after_seq: u64,
    prompt_id: &str,
) -> Result<(), ApiError> {
    let mut frames = gateway
        .connect(principal, session_id, after_seq, SOURCE)
        .await?;
    loop {
        let frame = frames
            .next()
            .await
            .map_err(|ended| ApiError(GatewayError::Unavailable(ended.to_string())))?;
        let Ok(ServerFrame::Event(envelope)) = serde_json::from_slice(&frame) else {
            continue;
        };
        match envelope.event {
            Event::TurnCompleted(turn) if turn.prompt_id == prompt_id => return Ok(()),
            Event::TurnCancelled(turn) if turn.prompt_id == prompt_id => return Ok(()),
            Event::QueuedPromptCancelled(queued) if queued.prompt_id == prompt_id => {
                return Err(ApiError(GatewayError::Conflict(format!(
                    "prompt {prompt_id} was withdrawn before it ran"
                ))));
            }
            _ => {}
        }
    }
}

/// The session's newest message at the agent, as OpenCode's synchronous prompt answers it.
async fn last_message(agent: &AgentEndpoint, agent_session: &str) -> Result<Value, ApiError> {
    let url = format!("{}/session/{agent_session}/message?limit=1", agent.base_url);
    let unreachable = |error: reqwest::Error| {
        ApiError(GatewayError::Agent(
            proliferate_core::agent::DriverError::Unreachable(error.without_url().to_string()),
        ))
    };
    let messages: Value = agent
        .http
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(unreachable)?
        .json()
        .await
        .map_err(unreachable)?;
    Ok(messages
        .as_array()
        .and_then(|messages| messages.last())
        .cloned()
        .unwrap_or(Value::Null))
}
