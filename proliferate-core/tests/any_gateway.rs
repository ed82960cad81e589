//! Gateways on one store and one bus, on paused time: a client of any gateway streams a session
//! another runs, live and whole, and its commands run once on the gateway running it, however
//! the bus loses messages.

mod support;

use std::sync::Arc;
use std::time::Duration;

use proliferate_core::GatewayError;
use proliferate_core::bus::{Bus, MemoryBus};
use proliferate_core::hub::{HubConfig, Subscription, SubscriptionEnded};
use proliferate_core::protocol::v1::*;
use proliferate_core::sandbox::fake::FakeProvider;
use proliferate_core::store::MemoryStore;
use support::Engine;
use support::engine::{next, until};

fn config(gateway_id: &str) -> HubConfig {
    HubConfig {
        gateway_id: gateway_id.into(),
        idle_grace: Duration::from_secs(120),
        ..support::engine::config()
    }
}

/// Two gateways, `a` and `b`, on one store and one bus.
async fn pair() -> (Engine, Engine, MemoryBus) {
    let (store, bus) = (Arc::new(MemoryStore::new()), MemoryBus::new());
    let shared = || Some(Arc::new(bus.clone()) as Arc<dyn Bus>);
    let a = Engine::joined(store.clone(), FakeProvider::new(), config("a"), shared()).await;
    let b = Engine::joined(store, FakeProvider::new(), config("b"), shared()).await;
    (a, b, bus)
}

/// Reads a stream until its `replay_done`; returns its welcome.
async fn welcomed(stream: &mut Subscription) -> Welcome {
    let welcome = match next(stream).await {
        Ok(ServerFrame::Welcome(welcome)) => welcome,
        other => panic!("a stream opens with its welcome, not {other:?}"),
    };
    while !matches!(next(stream).await, Ok(ServerFrame::ReplayDone(_))) {}
    welcome
}

/// The seqs of `events`, checked dense from `first`.
fn dense(events: &[EventEnvelope], first: u64) {
    let seqs: Vec<u64> = events.iter().map(|event| event.seq).collect();
    let expected: Vec<u64> = (first..first + seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "no gap, no duplicate, in order");
}

async fn prompt_with_id(engine: &Engine, session_id: &str, prompt_id: &str) -> PromptAdmission {
    let request = SendMessageRequest {
        content: "hello".into(),
        prompt_id: Some(prompt_id.into()),
        ..Default::default()
    };
    (engine.gateway)
        .send_prompt(&engine.who, session_id, request, "test")
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_client_of_another_gateway_streams_the_session_and_its_prompt_runs_once() {
    let (a, b, _bus) = pair().await;
    let (session, mut agent, mut on_a) = a.running().await;

    let mut on_b = b.connect(&session.id, 0).await;
    let welcome = welcomed(&mut on_b).await;
    assert_eq!(welcome.status, SessionStatus::Running);
    assert_eq!(welcome.connection_count, 2, "{welcome:?}");

    // A prompt sent through b runs on a, once, even when sent again.
    let admission = prompt_with_id(&b, &session.id, "p1").await;
    let prompt = agent.next_prompt().await.unwrap();
    assert_eq!(prompt.text, "hello");
    let again = prompt_with_id(&b, &session.id, "p1").await;
    assert_eq!(
        (again.prompt_id, again.duplicate),
        (admission.prompt_id, true)
    );
    agent.say("hello from a").await;
    agent.finish().await;

    let live_on_a = until(&mut on_a, |e| matches!(e, Event::TurnCompleted(_))).await;
    let live_on_b = until(&mut on_b, |e| matches!(e, Event::TurnCompleted(_))).await;
    let tail = &live_on_a[live_on_a.len() - live_on_b.len()..];
    assert_eq!(live_on_b, tail, "b's client sees what a's does");
    dense(&live_on_b, live_on_b[0].seq);

    // Everything a logged reaches b's client from the log, then live: the whole session.
    let mut late = b.connect(&session.id, 0).await;
    assert!(matches!(next(&mut late).await, Ok(ServerFrame::Welcome(_))));
    let whole = until(&mut late, |e| matches!(e, Event::TurnCompleted(_))).await;
    dense(&whole, 1);
    let transcript = (b.gateway.transcript(&b.who, &session.id).await).unwrap();
    // The prompt, then the answer.
    assert_eq!(transcript.messages.len(), 2);
    assert_eq!(support::engine::text_of(&transcript), "hellohello from a");
    let again = tokio::time::timeout(Duration::from_secs(60), agent.next_prompt()).await;
    assert!(
        again.is_err(),
        "the prompt reached the agent once: {again:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn what_the_bus_loses_is_read_from_the_log_in_order() {
    let (a, b, bus) = pair().await;
    let (session, mut agent, _on_a) = a.running().await;
    let mut on_b = b.connect(&session.id, 0).await;
    welcomed(&mut on_b).await;
    a.prompt(&session.id, "hello").await.unwrap();
    agent.next_prompt().await.unwrap();
    let first = until(&mut on_b, |e| matches!(e, Event::UserMessage(_))).await;

    // Lost in the middle: the next event that arrives shows the gap.
    bus.drop_messages(Some("proliferate.session."));
    agent.say("lost ").await;
    agent.say("twice ").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    bus.drop_messages(None);
    agent.say("then heard").await;
    let middle = until(
        &mut on_b,
        |e| matches!(e, Event::TextDelta(delta) if delta.delta == "then heard"),
    )
    .await;

    // Lost at the end: the head the running gateway beats shows it.
    bus.drop_messages(Some("proliferate.session."));
    agent.finish().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    bus.drop_messages(None);
    let end = until(&mut on_b, |e| matches!(e, Event::TurnCompleted(_))).await;

    let all: Vec<EventEnvelope> = [first, middle, end].concat();
    dense(&all, all[0].seq);
    let texts: String = (all.iter())
        .filter_map(|event| match &event.event {
            Event::TextDelta(delta) => Some(delta.delta.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, "lost twice then heard");
    assert!(bus.dropped() > 0, "the bus did drop messages");
}

#[tokio::test(start_paused = true)]
async fn a_request_whose_answer_is_lost_is_sent_again_and_runs_once() {
    let (a, b, bus) = pair().await;
    let (session, mut agent, _on_a) = a.running().await;

    // b's answers are lost for a while: b sends its request again, and a answers the repeat
    // with the answer it gave, running the prompt once.
    bus.drop_messages(Some("proliferate.gateway.b"));
    let sending = {
        let (gateway, who, id) = (b.gateway.clone(), b.who.clone(), session.id.clone());
        tokio::spawn(async move {
            let request = SendMessageRequest {
                content: "once".into(),
                ..Default::default()
            };
            gateway.send_prompt(&who, &id, request, "test").await
        })
    };
    let prompt = agent.next_prompt().await.unwrap();
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(!sending.is_finished(), "no answer has reached b yet");
    bus.drop_messages(None);
    assert_eq!(prompt.text, "once");
    sending.await.unwrap().unwrap();
    agent.finish().await;
    let again = tokio::time::timeout(Duration::from_secs(60), agent.next_prompt()).await;
    assert!(again.is_err(), "run once: {again:?}");

    // With the running gateway silent for longer than a request waits, the caller is told.
    bus.drop_messages(Some("proliferate.gateway.a"));
    let refused = b.gateway.transcript(&b.who, &session.id).await;
    assert!(
        matches!(refused, Err(GatewayError::Unavailable(_))),
        "{refused:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn presence_and_the_idle_pause_count_every_gateways_connections() {
    let (a, b, bus) = pair().await;
    let (session, _agent, on_a) = a.running().await;
    let mut on_b = b.connect(&session.id, 0).await;
    let welcome = welcomed(&mut on_b).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let presence = (a.gateway.presence(&a.who, &session.id).await).unwrap();
    let ids: Vec<&str> = (presence.connections.iter())
        .map(|entry| entry.connection_id.as_str())
        .collect();
    assert!(ids.contains(&welcome.connection_id.as_str()), "{ids:?}");
    assert_eq!(ids.len(), 2);

    // a's own client leaves; b's keeps the session running past the idle grace.
    drop(on_a);
    tokio::time::sleep(Duration::from_secs(600)).await;
    let info = (a.gateway.session(&a.who, &session.id).await).unwrap();
    assert_eq!(
        info.status,
        SessionStatus::Running,
        "b's client is watching"
    );

    // b falls silent (its messages to a are lost, as if it died): a forgets its connections
    // after three heartbeats, and the session pauses once idle.
    bus.drop_messages(Some("proliferate.gateway.a"));
    tokio::time::sleep(Duration::from_secs(60)).await;
    let presence = (a.gateway.presence(&a.who, &session.id).await).unwrap();
    assert!(presence.connections.is_empty(), "{presence:?}");
    tokio::time::sleep(Duration::from_secs(180)).await;
    let info = (a.gateway.session(&a.who, &session.id).await).unwrap();
    assert_eq!(
        info.status,
        SessionStatus::Paused,
        "idle with nobody reported"
    );
    drop(on_b);
}

#[tokio::test(start_paused = true)]
async fn a_delete_through_another_gateway_ends_every_stream() {
    let (a, b, _bus) = pair().await;
    let (session, _agent, mut on_a) = a.running().await;
    let mut on_b = b.connect(&session.id, 0).await;
    welcomed(&mut on_b).await;
    (b.gateway.delete_session(&b.who, &session.id).await).unwrap();
    for stream in [&mut on_a, &mut on_b] {
        let ended = loop {
            if let Err(ended) = next(stream).await {
                break ended;
            }
        };
        assert_eq!(ended, SubscriptionEnded::SessionEnded);
    }
    let gone = b.gateway.session(&b.who, &session.id).await;
    assert!(matches!(gone, Err(GatewayError::NotFound(_))), "{gone:?}");
}

#[tokio::test(start_paused = true)]
async fn when_the_running_gateway_stops_its_followers_clients_resume_on_the_next() {
    let (a, b, _bus) = pair().await;
    let (session, _agent, _on_a) = a.running().await;
    let mut on_b = b.connect(&session.id, 0).await;
    welcomed(&mut on_b).await;

    a.gateway.shutdown().await;
    let ended = loop {
        if let Err(ended) = next(&mut on_b).await {
            break ended;
        }
    };
    assert_eq!(ended, SubscriptionEnded::Interrupted);

    // The client reconnects to b, which runs the session now, from the same log.
    let mut again = b.connect(&session.id, 0).await;
    let _agent = b.driver.next_agent().await.unwrap();
    let status = |wanted: SessionStatus| move |e: &Event| matches!(e, Event::StatusChanged(changed) if changed.status == wanted);
    let mut events = until(&mut again, status(SessionStatus::Failed)).await;
    events.extend(until(&mut again, status(SessionStatus::Running)).await);
    dense(&events, 1);
}

#[tokio::test(start_paused = true)]
async fn what_no_gateway_sealed_is_dropped_unread() {
    let (a, b, bus) = pair().await;
    let (session, mut agent, _on_a) = a.running().await;
    let mut on_b = b.connect(&session.id, 0).await;
    let welcome = welcomed(&mut on_b).await;

    // Something that reached the bus forges a delete for `a` and the next event for `b`'s
    // clients, with and without a made-up tag in front.
    let delete = serde_json::json!({
        "kind": "request", "id": "req_forged", "from": "b",
        "session_id": session.id, "op": "terminate",
    });
    let seq = welcome.head_seq + 1;
    let frame = serde_json::json!({
        "type": "event", "session_id": session.id, "seq": seq, "timestamp": 1,
        "event": {"type": "text_delta", "message_id": "m", "part_id": "p", "delta": "forged"},
    })
    .to_string();
    let mut event = vec![b'E'];
    event.extend(seq.to_be_bytes());
    event.extend((frame.len() as u32).to_be_bytes());
    event.extend(frame.as_bytes());
    for tag in [Vec::new(), vec![7u8; 32]] {
        let forged = |body: &[u8]| bytes::Bytes::from([tag.clone(), body.to_vec()].concat());
        bus.publish(
            "proliferate.gateway.a",
            forged(delete.to_string().as_bytes()),
        );
        bus.publish(
            &format!("proliferate.session.{}", session.id),
            forged(&event),
        );
    }

    // What the agent says next is what b's client gets at that seq; the session lives on.
    a.prompt(&session.id, "hello").await.unwrap();
    agent.next_prompt().await.unwrap();
    agent.say("genuine").await;
    let events = until(&mut on_b, |e| matches!(e, Event::TextDelta(_))).await;
    dense(&events, seq);
    match &events.last().unwrap().event {
        Event::TextDelta(delta) => assert_eq!(delta.delta, "genuine"),
        other => panic!("{other:?}"),
    }
    let info = (a.gateway.session(&a.who, &session.id).await).unwrap();
    assert_eq!(info.status, SessionStatus::Running, "not deleted");
}
