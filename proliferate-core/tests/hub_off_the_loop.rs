//! The hub never waits on a slow call in its loop: while a snapshot is being saved, the same
//! session's clients keep receiving heartbeats and events, and new prompts run. The snapshot
//! is held open by a gate until the test has seen all of that, so nothing depends on how fast
//! the machine is.

mod support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use proliferate_core::auth::Authenticator;
use proliferate_core::hub::HubConfig;
use proliferate_core::protocol::v1::*;
use proliferate_core::sandbox::{
    Capabilities, Sandbox, SandboxError, SandboxProvider, SandboxSpec,
};
use proliferate_core::store::SqliteStore;
use proliferate_core::{Gateway, GatewayParts};
use serde_json::json;
use support::Rig;
use tokio::sync::Semaphore;

/// A provider whose snapshots wait for the test to open the gate.
struct GatedSnapshots {
    inner: Arc<dyn SandboxProvider>,
    gate: Arc<Semaphore>,
}

#[async_trait]
impl SandboxProvider for GatedSnapshots {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn start(&self, spec: &SandboxSpec) -> Result<Sandbox, SandboxError> {
        self.inner.start(spec).await
    }

    async fn is_running(&self, session_id: &str) -> bool {
        self.inner.is_running(session_id).await
    }

    async fn pause(&self, session_id: &str) -> Result<(), SandboxError> {
        self.inner.pause(session_id).await
    }

    async fn snapshot(&self, session_id: &str) -> Result<SnapshotInfo, SandboxError> {
        let _open = self.gate.acquire().await;
        self.inner.snapshot(session_id).await
    }

    async fn terminate(&self, session_id: &str) -> Result<(), SandboxError> {
        self.inner.terminate(session_id).await
    }

    async fn cleanup_orphans(&self) -> Result<usize, SandboxError> {
        self.inner.cleanup_orphans().await
    }
}

fn principal() -> Principal {
    Principal {
        subject: "ada".into(),
        organization_id: "acme".into(),
        scopes: vec![Scope::Read, Scope::Write],
        kind: PrincipalKind::User,
        session_id: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_streams_beats_and_runs_turns_while_its_snapshot_is_saved() {
    let Rig {
        model: _model,
        provider,
        driver,
        data_dir,
    } = Rig::new(json!({})).await;
    let gate = Arc::new(Semaphore::new(0));
    let store = Arc::new(
        SqliteStore::open(&data_dir.path().join("proliferate.db"))
            .await
            .unwrap(),
    );
    let isolation = provider.isolation().to_owned();
    let provider = GatedSnapshots {
        inner: Arc::new(provider),
        gate: gate.clone(),
    };
    let gateway = Gateway::start(GatewayParts {
        store: store.clone(),
        log: store.clone(),
        usage: store,
        isolation,
        provider: Arc::new(provider),
        driver: Arc::new(driver),
        authenticator: Authenticator::new("user secret", "service secret"),
        config: HubConfig {
            heartbeat_interval: Duration::from_secs(1),
            ..HubConfig::default()
        },
        bus: None,
    })
    .await
    .unwrap();
    let who = principal();
    let (session, _) = gateway
        .create_session(&who, CreateSessionRequest::default(), None)
        .await
        .unwrap();
    let mut stream = gateway.connect(&who, &session.id, 0, "test").await.unwrap();
    let mut frames = Vec::<ServerFrame>::new();
    let mut next_frame = async || {
        let bytes = tokio::time::timeout(Duration::from_secs(120), stream.next())
            .await
            .expect("a frame within two minutes")
            .expect("the stream is open");
        let frame: ServerFrame = serde_json::from_slice(&bytes).unwrap();
        frames.push(frame.clone());
        frame
    };
    while !matches!(
        next_frame().await,
        ServerFrame::Event(EventEnvelope {
            event: Event::StatusChanged(StatusChanged {
                status: SessionStatus::Running,
                ..
            }),
            ..
        })
    ) {}

    // The snapshot starts and waits at the gate.
    let snapshot = tokio::spawn({
        let (gateway, who, id) = (gateway.clone(), who.clone(), session.id.clone());
        async move { gateway.snapshot(&who, &id).await }
    });
    // Meanwhile the hub beats, admits a prompt and streams its whole turn.
    let mut beats = 0;
    while beats < 2 {
        if matches!(next_frame().await, ServerFrame::Heartbeat(_)) {
            beats += 1;
        }
    }
    let admission = gateway
        .send_prompt(
            &who,
            &session.id,
            SendMessageRequest {
                content: "[[say:answered during the snapshot]]".into(),
                ..Default::default()
            },
            "test",
        )
        .await
        .expect("admitted while the snapshot is saved");
    let mut answered = false;
    loop {
        match next_frame().await {
            ServerFrame::Event(EventEnvelope {
                event: Event::TextCompleted(text),
                ..
            }) => answered |= text.text.contains("answered during the snapshot"),
            ServerFrame::Event(EventEnvelope {
                event: Event::TurnCompleted(turn),
                ..
            }) if turn.prompt_id == admission.prompt_id => break,
            _ => {}
        }
    }
    assert!(answered, "{frames:#?}");
    assert!(
        !snapshot.is_finished(),
        "control: the snapshot was still held at the gate the whole time"
    );

    gate.add_permits(1);
    let saved = snapshot.await.unwrap().expect("the snapshot is saved");
    while !matches!(next_frame().await, ServerFrame::Event(EventEnvelope {
        event: Event::SnapshotSaved(ref event), ..
    }) if event.snapshot_id == saved.snapshot_id)
    {}
    gateway.delete_session(&who, &session.id).await.unwrap();
    gateway.shutdown().await;
}
