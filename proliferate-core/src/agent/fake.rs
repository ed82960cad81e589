//! An agent driver whose agent is the test: each attachment hands the test a [`FakeAgent`],
//! which sees every command the gateway sends and says whatever the test makes it say.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::*;
use crate::protocol::v1::{AssistantMessageStarted, TextDelta};

/// A command the gateway sent to the agent.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentCall {
    /// [`AgentControl::prompt`].
    Prompt(AgentPrompt),
    /// [`AgentControl::abort`].
    Abort,
    /// [`AgentControl::reply_permission`].
    ReplyPermission(String, PermissionDecision),
}

/// Failures the agent gives its next commands.
#[derive(Default)]
struct Refusals {
    prompts: Option<String>,
}

struct Control {
    agent_session_id: String,
    calls: mpsc::UnboundedSender<AgentCall>,
    refusals: Arc<Mutex<Refusals>>,
}

#[async_trait]
impl AgentControl for Control {
    fn agent_session_id(&self) -> &str {
        &self.agent_session_id
    }

    async fn prompt(&self, prompt: &AgentPrompt) -> Result<(), DriverError> {
        let _ = self.calls.send(AgentCall::Prompt(prompt.clone()));
        let refusal = self.refusals.lock().map(|r| r.prompts.clone());
        match refusal.unwrap_or_default() {
            Some(message) => Err(DriverError::Rejected {
                status: 400,
                message,
            }),
            None => Ok(()),
        }
    }

    async fn abort(&self) -> Result<(), DriverError> {
        let _ = self.calls.send(AgentCall::Abort);
        Ok(())
    }

    async fn reply_permission(
        &self,
        permission_id: &str,
        decision: PermissionDecision,
    ) -> Result<(), DriverError> {
        let call = AgentCall::ReplyPermission(permission_id.to_owned(), decision);
        let _ = self.calls.send(call);
        Ok(())
    }

    async fn history(&self) -> Result<serde_json::Value, DriverError> {
        Ok(serde_json::json!([]))
    }
}

/// The test's side of one attachment: what the gateway asked, and the agent's voice.
pub struct FakeAgent {
    /// The agent's session id, kept by the gateway to adopt it again.
    pub agent_session_id: String,
    /// The session it was adopted from, if the gateway named one.
    pub adopted: Option<String>,
    updates: mpsc::Sender<AgentUpdate>,
    calls: mpsc::UnboundedReceiver<AgentCall>,
    refusals: Arc<Mutex<Refusals>>,
    messages: usize,
}

impl FakeAgent {
    /// The next command the gateway sent; `None` once the gateway dropped the agent.
    pub async fn next_call(&mut self) -> Option<AgentCall> {
        self.calls.recv().await
    }

    /// The next prompt the gateway sent, skipping other commands.
    pub async fn next_prompt(&mut self) -> Option<AgentPrompt> {
        loop {
            if let AgentCall::Prompt(prompt) = self.next_call().await? {
                return Some(prompt);
            }
        }
    }

    /// Reports `update`; false when the gateway no longer listens.
    pub async fn send(&self, update: AgentUpdate) -> bool {
        self.updates.send(update).await.is_ok()
    }

    /// Starts an assistant message and streams `text` into it.
    pub async fn say(&mut self, text: &str) -> bool {
        self.messages += 1;
        let message_id = format!("msg_fake_{}", self.messages);
        let started = Event::AssistantMessageStarted(AssistantMessageStarted {
            message_id: message_id.clone(),
            ..Default::default()
        });
        let delta = Event::TextDelta(TextDelta {
            message_id,
            part_id: "part_1".into(),
            delta: text.to_owned(),
            ..Default::default()
        });
        self.send(AgentUpdate::Event(started)).await && self.send(AgentUpdate::Event(delta)).await
    }

    /// Reports the agent idle: the running turn is over.
    pub async fn finish(&self) -> bool {
        self.send(AgentUpdate::Idle).await
    }

    /// Asks for permission to run `permission`.
    pub async fn ask_permission(&self, permission_id: &str, permission: &str) -> bool {
        let ask = PermissionAsk {
            permission_id: permission_id.to_owned(),
            permission: permission.to_owned(),
            ..Default::default()
        };
        self.send(AgentUpdate::PermissionAsked(ask)).await
    }

    /// The agent refuses every later prompt with `message` (`None`: accepts them again).
    pub fn refuse_prompts(&self, message: Option<&str>) {
        if let Ok(mut refusals) = self.refusals.lock() {
            refusals.prompts = message.map(str::to_owned);
        }
    }

    /// The agent dies: it reports itself lost and says nothing more.
    pub async fn die(self, reason: &str) {
        let _ = self
            .updates
            .send(AgentUpdate::Lost(reason.to_owned()))
            .await;
    }
}

/// A driver whose agents are [`FakeAgent`]s handed to the test, one per attachment.
pub struct FakeDriver {
    attachments: mpsc::UnboundedSender<FakeAgent>,
    waiting: tokio::sync::Mutex<mpsc::UnboundedReceiver<FakeAgent>>,
    attached: Mutex<usize>,
}

impl FakeDriver {
    /// A driver no agent has attached to yet.
    pub fn new() -> Arc<Self> {
        let (attachments, waiting) = mpsc::unbounded_channel();
        Arc::new(Self {
            attachments,
            waiting: tokio::sync::Mutex::new(waiting),
            attached: Mutex::new(0),
        })
    }

    /// The agent of the next attachment, once the gateway attaches.
    pub async fn next_agent(&self) -> Option<FakeAgent> {
        self.waiting.lock().await.recv().await
    }

    /// The agent of an attachment that already happened, if any is waiting.
    pub fn try_next_agent(&self) -> Option<FakeAgent> {
        self.waiting.try_lock().ok()?.try_recv().ok()
    }
}

#[async_trait]
impl AgentDriver for FakeDriver {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn default_model(&self) -> &str {
        "fake/model"
    }

    fn launch(&self, _model: &str) -> AgentLaunch {
        AgentLaunch {
            program: "fake-agent".into(),
            readiness_path: "/".into(),
            ..Default::default()
        }
    }

    async fn attach(
        &self,
        _agent: &AgentEndpoint,
        known_session: Option<&str>,
    ) -> Result<AgentSession, DriverError> {
        let number = {
            let mut attached = self.attached.lock().unwrap_or_else(|p| p.into_inner());
            *attached += 1;
            *attached
        };
        let (updates, receiver) = mpsc::channel(64);
        let (calls, call_receiver) = mpsc::unbounded_channel();
        let refusals = Arc::<Mutex<Refusals>>::default();
        let agent_session_id =
            known_session.map_or_else(|| format!("ses_fake_{number}"), str::to_owned);
        let agent = FakeAgent {
            agent_session_id: agent_session_id.clone(),
            adopted: known_session.map(str::to_owned),
            updates,
            calls: call_receiver,
            refusals: refusals.clone(),
            messages: 0,
        };
        self.attachments
            .send(agent)
            .map_err(|_| DriverError::Unreachable("the test went away".into()))?;
        Ok(AgentSession {
            control: Arc::new(Control {
                agent_session_id,
                calls,
                refusals,
            }),
            updates: receiver,
        })
    }
}
