//! What the engine tests on paused time share: calls on the fake gateway, and reading a
//! subscription.

use std::time::Duration;

use proliferate_core::GatewayError;
use proliferate_core::agent::fake::FakeAgent;
use proliferate_core::hub::{HubConfig, Subscription, SubscriptionEnded};
use proliferate_core::protocol::v1::*;

use super::Engine;

/// Longer than any timer a test configures, so a wait that runs out means the event never came.
pub const PATIENCE: Duration = Duration::from_secs(24 * 3600);

impl Engine {
    pub async fn create(&self) -> SessionInfo {
        let request = CreateSessionRequest::default();
        let (session, _) = (self.gateway.create_session(&self.who, request, None).await).unwrap();
        session
    }

    pub async fn connect(&self, session_id: &str, after_seq: u64) -> Subscription {
        let connecting = self
            .gateway
            .connect(&self.who, session_id, after_seq, "test");
        connecting.await.unwrap()
    }

    pub async fn prompt(
        &self,
        session_id: &str,
        text: &str,
    ) -> Result<PromptAdmission, GatewayError> {
        let request = SendMessageRequest {
            content: text.into(),
            ..Default::default()
        };
        (self
            .gateway
            .send_prompt(&self.who, session_id, request, "test"))
        .await
    }

    /// Connects with `after_seq` 1 and returns the `reset` that must follow the welcome.
    pub async fn reset_after_seq_one(&self, session_id: &str) -> Reset {
        let mut behind = self.connect(session_id, 1).await;
        assert!(matches!(
            next(&mut behind).await,
            Ok(ServerFrame::Welcome(_))
        ));
        match next(&mut behind).await {
            Ok(ServerFrame::Reset(reset)) => reset,
            other => panic!("a client behind the log is reset, not sent {other:?}"),
        }
    }

    /// A running session, its agent, and a stream that has seen it start.
    pub async fn running(&self) -> (SessionInfo, FakeAgent, Subscription) {
        let session = self.create().await;
        let mut stream = self.connect(&session.id, 0).await;
        let agent = self.driver.next_agent().await.unwrap();
        until(&mut stream, |event| {
            matches!(event, Event::StatusChanged(changed) if changed.status == SessionStatus::Running)
        })
        .await;
        (session, agent, stream)
    }
}

/// The next frame of a stream, decoded.
pub async fn next(stream: &mut Subscription) -> Result<ServerFrame, SubscriptionEnded> {
    let bytes = tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("a frame before the patience ran out")?;
    Ok(serde_json::from_slice(&bytes).unwrap())
}

/// Reads events until one matches; returns every event read, the match last.
pub async fn until(
    stream: &mut Subscription,
    wanted: impl Fn(&Event) -> bool,
) -> Vec<EventEnvelope> {
    let mut seen = Vec::new();
    loop {
        if let ServerFrame::Event(envelope) = next(stream).await.unwrap() {
            let found = wanted(&envelope.event);
            seen.push(envelope);
            if found {
                return seen;
            }
        }
    }
}

/// Every text part of a transcript, joined.
pub fn text_of(transcript: &Transcript) -> String {
    (transcript.messages.iter())
        .flat_map(|message| message.parts.iter())
        .filter_map(|part| match part {
            TranscriptPart::Text(text) => Some(text.text.as_str()),
            _ => None,
        })
        .collect()
}

pub fn config() -> HubConfig {
    HubConfig {
        heartbeat_interval: Duration::from_secs(15),
        permission_timeout: Duration::from_secs(60),
        cancel_grace: Duration::from_secs(10),
        idle_grace: Duration::from_secs(120),
        ..HubConfig::default()
    }
}
