//! The session's lifecycle on paused time: pausing when idle, and the slow calls of a lost agent
//! and of a delete running off the hub's loop while its clients keep hearing from it.

mod support;

use std::time::Duration;

use proliferate_core::GatewayError;
use proliferate_core::hub::{HubConfig, Subscription, SubscriptionEnded};
use proliferate_core::protocol::v1::*;
use proliferate_core::sandbox::fake::{FakeSandboxState, Operation};
use proliferate_core::store::MetadataStore;
use support::Engine;
use support::engine::*;

/// Reads until `count` heartbeats came, failing on any event (the session is meant to be quiet).
async fn heartbeats(stream: &mut Subscription, count: usize) {
    let mut beats = 0;
    while beats < count {
        match next(stream).await {
            Ok(ServerFrame::Heartbeat(_)) => beats += 1,
            Ok(ServerFrame::PresenceChanged(_) | ServerFrame::ReplayDone(_)) => {}
            other => panic!("only heartbeats while the call is held, not {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_idle_session_pauses_itself_once_its_grace_runs_out_and_not_while_watched() {
    let engine = Engine::start(config()).await;
    let (session, mut agent, mut stream) = engine.running().await;
    engine.prompt(&session.id, "go").await.unwrap();
    agent.next_prompt().await.unwrap();
    agent.finish().await;
    until(&mut stream, |e| matches!(e, Event::TurnCompleted(_))).await;

    // Control: while a client watches, ten graces pass and the session stays up (the client
    // hears heartbeats, and the announcement of its own join).
    let watched_until = tokio::time::Instant::now() + config().idle_grace * 10;
    while tokio::time::Instant::now() < watched_until {
        assert!(matches!(
            next(&mut stream).await,
            Ok(ServerFrame::Heartbeat(_) | ServerFrame::PresenceChanged(_))
        ));
    }
    assert_eq!(engine.provider.calls(Operation::Pause), 0);

    drop(stream);
    let left_at = tokio::time::Instant::now();
    let paused = loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let record = engine.store.session(&session.id).await.unwrap().unwrap();
        if record.info.status == SessionStatus::Paused {
            break left_at.elapsed();
        }
    };
    assert!(paused >= config().idle_grace, "paused after {paused:?}");
    assert!(paused <= config().idle_grace + Duration::from_secs(1));
    assert_eq!(
        engine.provider.sandbox(&session.id),
        Some(FakeSandboxState::Paused)
    );
    assert_eq!(agent.next_call().await, None, "the paused agent was let go");
}

#[tokio::test(start_paused = true)]
async fn a_lost_agents_sandbox_stops_off_the_loop_and_a_resume_boots_only_once_it_has() {
    let engine = Engine::start(config()).await;
    let (session, agent, mut stream) = engine.running().await;
    engine.provider.hold(Operation::Pause);
    agent.die("crashed").await;
    until(
        &mut stream,
        |e| matches!(e, Event::StatusChanged(changed) if changed.status == SessionStatus::Failed),
    )
    .await;

    let resuming = tokio::spawn({
        let (gateway, who, id) = (
            engine.gateway.clone(),
            engine.who.clone(),
            session.id.clone(),
        );
        async move { gateway.resume(&who, &id).await }
    });
    // While the sandbox takes its time to stop, the session beats and nothing boots over it.
    heartbeats(&mut stream, 2).await;
    assert_eq!(engine.provider.calls(Operation::Pause), 1);
    assert_eq!(
        engine.provider.calls(Operation::Start),
        1,
        "no boot before the stop"
    );
    assert!(!resuming.is_finished());

    engine.provider.release(Operation::Pause);
    let resumed = resuming.await.unwrap().unwrap();
    assert_eq!(resumed.status, SessionStatus::Running);
    assert_eq!(engine.provider.calls(Operation::Start), 2);
    assert_eq!(
        engine.provider.sandbox(&session.id),
        Some(FakeSandboxState::Running)
    );
    assert!(
        engine.driver.next_agent().await.is_some(),
        "a new agent attached"
    );
}

#[tokio::test(start_paused = true)]
async fn a_delete_runs_off_the_loop_refuses_a_resume_meanwhile_and_ends_the_stream() {
    let engine = Engine::start(config()).await;
    let (session, _agent, mut stream) = engine.running().await;
    engine.provider.hold(Operation::Terminate);
    let deleting = tokio::spawn({
        let (gateway, who, id) = (
            engine.gateway.clone(),
            engine.who.clone(),
            session.id.clone(),
        );
        async move { gateway.delete_session(&who, &id).await }
    });

    heartbeats(&mut stream, 2).await;
    assert_eq!(engine.provider.calls(Operation::Terminate), 1);
    assert!(!deleting.is_finished());
    let resume = engine.gateway.resume(&engine.who, &session.id).await;
    assert!(
        matches!(resume, Err(GatewayError::Conflict(_))),
        "a session being deleted does not resume: {resume:?}"
    );
    // Control: the same call is answered while the session is not being deleted.
    assert_eq!(
        engine
            .gateway
            .session(&engine.who, &session.id)
            .await
            .unwrap()
            .status,
        SessionStatus::Running
    );

    engine.provider.release(Operation::Terminate);
    deleting.await.unwrap().unwrap();
    loop {
        match next(&mut stream).await {
            Err(ended) => {
                assert!(
                    matches!(ended, SubscriptionEnded::SessionEnded),
                    "{ended:?}"
                );
                break;
            }
            Ok(ServerFrame::Heartbeat(_) | ServerFrame::Event(_)) => {}
            Ok(other) => panic!("{other:?}"),
        }
    }
    assert!(engine.store.session(&session.id).await.unwrap().is_none());
    assert_eq!(engine.provider.calls(Operation::Start), 1);
}

fn config() -> HubConfig {
    HubConfig {
        heartbeat_interval: Duration::from_secs(15),
        idle_grace: Duration::from_secs(120),
        ..HubConfig::default()
    }
}
