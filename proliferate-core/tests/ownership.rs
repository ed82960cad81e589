//! Session ownership on paused time: two gateways share one store; a session runs on the one
//! holding its lease, and another takes it over only once that lease lapsed, the log going on
//! without gap or duplicate.

mod support;

use std::sync::Arc;
use std::time::Duration;

use proliferate_core::GatewayError;
use proliferate_core::hub::{HubConfig, SubscriptionEnded};
use proliferate_core::protocol::v1::*;
use proliferate_core::sandbox::fake::FakeProvider;
use proliferate_core::store::{EventLog, MemoryStore};
use support::Engine;
use support::engine::*;

fn config(gateway_id: &str) -> HubConfig {
    HubConfig {
        gateway_id: gateway_id.into(),
        lease_ttl: Duration::from_secs(30),
        heartbeat_interval: Duration::from_secs(15),
        ..HubConfig::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_gateway_that_lost_the_store_past_its_lease_stops_and_another_takes_over() {
    let store = Arc::new(MemoryStore::new());
    let first = Engine::on(store.clone(), FakeProvider::new(), config("first")).await;
    let second = Engine::on(store.clone(), FakeProvider::new(), config("second")).await;
    let (session, mut agent, mut stream) = first.running().await;
    first.prompt(&session.id, "hello").await.unwrap();
    agent.next_prompt().await.unwrap();
    agent.say("from the first gateway").await;
    agent.finish().await;
    let seen = until(&mut stream, |e| matches!(e, Event::TurnCompleted(_))).await;

    // While the first renews its lease, the second refuses the session.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let refused = second
        .gateway
        .connect(&second.who, &session.id, 0, "test")
        .await;
    assert!(
        matches!(refused, Err(GatewayError::Unavailable(_))),
        "the second gateway does not run a session the first holds"
    );

    // The first cannot reach the store for longer than its lease: it stops on its own.
    store.set_unavailable(Some("the first gateway's network is down"));
    let ended = loop {
        match next(&mut stream).await {
            Ok(_) => {}
            Err(ended) => break ended,
        }
    };
    assert!(matches!(ended, SubscriptionEnded::Interrupted), "{ended:?}");
    store.set_unavailable(None);

    // The second takes the session over, and its log goes on from the first one's head.
    let mut taken = second.connect(&session.id, 0).await;
    let replayed = until(
        &mut taken,
        |e| matches!(e, Event::StatusChanged(changed) if changed.status == SessionStatus::Failed),
    )
    .await;
    let seqs: Vec<u64> = replayed.iter().map(|envelope| envelope.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    for envelope in &seen {
        let kept = &replayed[envelope.seq as usize - 1];
        assert_eq!(
            kept, envelope,
            "the first gateway's events, as it sent them"
        );
    }
    let lease = store
        .acquire(&session.id, "first", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(lease, None, "the second holds it now");
}

#[tokio::test(start_paused = true)]
async fn a_live_session_whose_gateway_stopped_is_taken_over_with_nobody_asking() {
    let store = Arc::new(MemoryStore::new());
    let first = Engine::on(store.clone(), FakeProvider::new(), config("first")).await;
    let second = Engine::on(store.clone(), FakeProvider::new(), config("second")).await;
    let (session, mut agent, stream) = first.running().await;
    first.prompt(&session.id, "cut short").await.unwrap();
    agent.next_prompt().await.unwrap();
    drop(stream);

    // The first stops mid-turn; within a lease lifetime the second takes the session over and
    // logs the turn as cut short, before anyone asks about it.
    first.gateway.shutdown().await;
    assert_eq!(store.holder(&session.id).await.unwrap(), None);
    tokio::time::sleep(Duration::from_secs(31)).await;
    let holder = store.holder(&session.id).await.unwrap();
    assert_eq!(holder.as_deref(), Some("second"));
    let logged = store.read(&session.id, 0, 100).await.unwrap();
    let frames: Vec<String> = (logged.iter())
        .map(|event| String::from_utf8_lossy(&event.frame).into_owned())
        .collect();
    assert!(
        frames
            .iter()
            .any(|frame| frame.contains("\"turn_cancelled\"")),
        "{frames:#?}"
    );
    let mut stream = second.connect(&session.id, 0).await;
    let events = until(&mut stream, |e| matches!(e, Event::TurnCancelled(_))).await;
    let exited = events.iter().any(|envelope| {
        matches!(&envelope.event, Event::AgentError(error) if error.kind == "agent_exited")
    });
    assert!(exited, "the turn is reported cut short");
}
