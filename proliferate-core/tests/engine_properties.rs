//! Properties of the event log under any sequence of what clients, the agent, the provider and
//! the store (down, or slow) can do, on paused time: seqs are dense from 1 with no duplicate, every started
//! turn ends exactly once before the next starts, every admitted prompt is logged once, a replay
//! is the log byte for byte, and nothing fails as `internal`.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use proliferate_core::agent::fake::{FakeAgent, FakeDriver};
use proliferate_core::hub::HubConfig;
use proliferate_core::protocol::v1::*;
use proliferate_core::sandbox::fake::{FakeProvider, Operation};
use proliferate_core::store::MemoryStore;
use proliferate_core::{Gateway, GatewayError};
use proptest::prelude::*;
use support::Engine;

/// One thing that happens to a session.
#[derive(Debug, Clone)]
enum Step {
    Prompt,
    Cancel,
    CancelQueued(usize),
    Say(u8),
    AskPermission,
    Answer(usize, bool),
    Finish,
    AgentDies,
    Pause,
    Resume,
    Snapshot,
    SnapshotFails(bool),
    StoreDown(bool),
    StoreSlow(bool),
    Wait(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::Prompt),
        1 => Just(Step::Cancel),
        1 => (0usize..4).prop_map(Step::CancelQueued),
        4 => (1u8..4).prop_map(Step::Say),
        1 => Just(Step::AskPermission),
        1 => ((0usize..4), any::<bool>()).prop_map(|(index, allow)| Step::Answer(index, allow)),
        3 => Just(Step::Finish),
        1 => Just(Step::AgentDies),
        1 => Just(Step::Pause),
        1 => Just(Step::Resume),
        1 => Just(Step::Snapshot),
        1 => any::<bool>().prop_map(Step::SnapshotFails),
        1 => any::<bool>().prop_map(Step::StoreDown),
        1 => any::<bool>().prop_map(Step::StoreSlow),
        2 => (0u16..400).prop_map(Step::Wait),
    ]
}

struct Run {
    gateway: Gateway,
    store: Arc<MemoryStore>,
    provider: Arc<FakeProvider>,
    driver: Arc<FakeDriver>,
    who: Principal,
    session_id: String,
    agent: Option<FakeAgent>,
    prompts: Vec<String>,
    permissions: Vec<String>,
    admitted: HashSet<String>,
    /// Prompts whose sender was told `unavailable`.
    unanswered: HashSet<String>,
    sent: usize,
}

impl Run {
    /// The newest attached agent (a resume attaches a new one).
    fn agent(&mut self) -> Option<&mut FakeAgent> {
        while let Some(agent) = self.driver.try_next_agent() {
            self.agent = Some(agent);
        }
        self.agent.as_mut()
    }

    /// Sends a prompt; one answered `unavailable` may have been admitted, so it is sent again
    /// once the store is back, as a client would.
    async fn send(&mut self, prompt_id: String) {
        let request = SendMessageRequest {
            prompt_id: Some(prompt_id.clone()),
            content: format!("content of {prompt_id}"),
            ..Default::default()
        };
        let (gateway, who, id) = (&self.gateway, &self.who, &self.session_id);
        match gateway.send_prompt(who, id, request, "test").await {
            Ok(admission) => {
                self.unanswered.remove(&prompt_id);
                self.admitted.insert(admission.prompt_id.clone());
                self.prompts.push(admission.prompt_id);
            }
            Err(error) if error.code() == ErrorCode::Unavailable => {
                self.unanswered.insert(prompt_id);
            }
            Err(error) => drop(self.check::<()>(Err(error))),
        }
    }

    fn check<T>(&mut self, result: Result<T, GatewayError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                assert_ne!(error.code(), ErrorCode::Internal, "{error}");
                None
            }
        }
    }

    /// Applies a step; no call may hang, whatever the store does.
    async fn apply(&mut self, step: Step) {
        let description = format!("{step:?}");
        let waits = match step {
            Step::Wait(seconds) => u64::from(seconds),
            _ => 0,
        };
        let patience = Duration::from_secs(waits + 120);
        let applied = tokio::time::timeout(patience, self.apply_now(step));
        applied
            .await
            .unwrap_or_else(|_| panic!("{description} hung"));
    }

    async fn apply_now(&mut self, step: Step) {
        let (gateway, who, id) = (
            self.gateway.clone(),
            self.who.clone(),
            self.session_id.clone(),
        );
        match step {
            Step::Prompt => {
                let prompt_id = format!("prm_{}", self.sent);
                self.sent += 1;
                self.send(prompt_id).await;
            }
            Step::Cancel => drop(self.check(gateway.cancel(&who, &id, "test").await)),
            Step::CancelQueued(index) => {
                if let Some(prompt_id) = self.prompts.get(index).cloned() {
                    let withdrawn = gateway.cancel_queued(&who, &id, &prompt_id, "test").await;
                    self.check(withdrawn);
                }
            }
            Step::Say(parts) => {
                if let Some(agent) = self.agent() {
                    for part in 0..parts {
                        agent.say(&format!("part {part}")).await;
                    }
                }
            }
            Step::AskPermission => {
                let permission_id = format!("per_{}", self.permissions.len());
                self.permissions.push(permission_id.clone());
                if let Some(agent) = self.agent() {
                    agent.ask_permission(&permission_id, "bash").await;
                }
            }
            Step::Answer(index, allow) => {
                if let Some(permission_id) = self.permissions.get(index).cloned() {
                    let decision = match allow {
                        true => PermissionDecision::Once,
                        false => PermissionDecision::Reject,
                    };
                    let answer =
                        (gateway.reply_permission(&who, &id, &permission_id, decision, "test"))
                            .await;
                    self.check(answer);
                }
            }
            Step::Finish => {
                if let Some(agent) = self.agent() {
                    agent.finish().await;
                }
            }
            Step::AgentDies => {
                self.agent();
                if let Some(agent) = self.agent.take() {
                    agent.die("killed by the test").await;
                }
            }
            Step::Pause => drop(self.check(gateway.pause(&who, &id).await)),
            Step::Resume => drop(self.check(gateway.resume(&who, &id).await)),
            Step::Snapshot => drop(self.check(gateway.snapshot(&who, &id).await)),
            Step::SnapshotFails(true) => self.provider.fail(Operation::Snapshot, "disk full"),
            Step::SnapshotFails(false) => self.provider.heal(Operation::Snapshot),
            Step::StoreDown(down) => self.store.set_unavailable(down.then_some("outage")),
            Step::StoreSlow(slow) => self.store.hold_appends(slow),
            Step::Wait(seconds) => tokio::time::sleep(Duration::from_secs(seconds.into())).await,
        }
        // Let the hub take in what the agent said before the next step.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn run(steps: Vec<Step>) {
    let Engine {
        gateway,
        store,
        provider,
        driver,
        who,
    } = Engine::start(HubConfig {
        permission_timeout: Duration::from_secs(90),
        cancel_grace: Duration::from_secs(10),
        idle_grace: Duration::from_secs(300),
        evict_after: Duration::from_secs(30),
        // Outages here may be long; a lease lapsing under one stops the hub, which
        // `ownership.rs` tests. Here the log's promises are what is tested.
        lease_ttl: Duration::from_secs(24 * 3600),
        ..HubConfig::default()
    })
    .await;
    let (session, _) = (gateway.create_session(&who, CreateSessionRequest::default(), None))
        .await
        .unwrap();
    let mut run = Run {
        gateway,
        store,
        provider,
        driver,
        who,
        session_id: session.id,
        agent: None,
        prompts: Vec::new(),
        permissions: Vec::new(),
        admitted: HashSet::new(),
        unanswered: HashSet::new(),
        sent: 0,
    };
    for step in steps {
        run.apply(step).await;
    }
    // Settle: the store comes back, the agent finishes what it runs, every timer fires.
    run.store.set_unavailable(None);
    run.store.hold_appends(false);
    for prompt_id in run.unanswered.clone() {
        run.send(prompt_id).await;
    }
    assert!(
        run.unanswered.is_empty(),
        "sent again once the store is back, each is admitted"
    );
    // A hub that stopped for want of its lease (an outage past it) comes back when a client
    // reconnects, as clients do on `interrupted`.
    let (gateway, who, id) = (&run.gateway, &run.who, &run.session_id);
    drop(gateway.connect(who, id, 0, "test").await.unwrap());
    for _ in 0..=run.prompts.len() {
        run.apply(Step::Finish).await;
        run.apply(Step::Wait(3600)).await;
    }

    let (gateway, who, id) = (&run.gateway, &run.who, &run.session_id);
    let mut events = Vec::new();
    loop {
        let after = events.last().map_or(0, |event: &EventEnvelope| event.seq);
        let page = gateway.events(who, id, after, 500).await.unwrap();
        events.extend(page.events);
        if !page.has_more {
            break;
        }
    }
    let seqs: Vec<u64> = events.iter().map(|event| event.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "dense, no duplicate"
    );

    let mut running: Option<String> = None;
    let mut logged = HashSet::new();
    for event in &events {
        match &event.event {
            Event::TurnStarted(started) => {
                assert_eq!(
                    running, None,
                    "a turn started while another ran: {events:#?}"
                );
                running = Some(started.prompt_id.clone());
            }
            Event::TurnCompleted(TurnCompleted { prompt_id, .. })
            | Event::TurnCancelled(TurnCancelled { prompt_id, .. }) => {
                assert_eq!(running.as_ref(), Some(prompt_id), "{events:#?}");
                running = None;
            }
            Event::UserMessage(message) => {
                assert!(
                    logged.insert(message.prompt_id.clone()),
                    "logged twice: {message:?}"
                );
            }
            _ => {}
        }
    }
    assert_eq!(running, None, "every started turn ended: {events:#?}");
    assert_eq!(logged, run.admitted, "every admitted prompt is logged once");

    // A replay from the start is the log.
    let mut stream = gateway.connect(who, id, 0, "test").await.unwrap();
    let mut replayed = Vec::new();
    loop {
        let bytes = stream.next().await.unwrap();
        match serde_json::from_slice(&bytes).unwrap() {
            ServerFrame::Event(envelope) => replayed.push(envelope),
            ServerFrame::ReplayDone(_) => break,
            _ => {}
        }
    }
    // (Connecting resumes the session, which may log more after the events read above.)
    assert_eq!(replayed[..events.len()], events[..]);
    run.gateway.shutdown().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn the_log_keeps_its_promises_whatever_happens(steps in proptest::collection::vec(step(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(run(steps));
    }
}
