//! The engine on paused time: the gateway with an in-memory store, a fake provider and a fake
//! agent, so every timer (permission timeout, cancel grace, idle pause, store retry) fires
//! exactly when configured and nothing depends on how fast the machine is.

mod support;

use std::sync::Arc;
use std::time::Duration;

use proliferate_core::GatewayError;
use proliferate_core::agent::AgentUpdate;
use proliferate_core::agent::fake::AgentCall;
use proliferate_core::hub::{HubConfig, Subscription, SubscriptionEnded};
use proliferate_core::protocol::v1::*;
use proliferate_core::sandbox::fake::FakeProvider;
use proliferate_core::store::{EventLog, MemoryStore, MetadataStore, PromptRecord, PromptState};
use support::Engine;
use support::engine::*;

#[tokio::test(start_paused = true)]
async fn a_permission_nobody_answers_gets_the_default_when_it_expires() {
    let engine = Engine::start(config()).await;
    let (session, mut agent, mut stream) = engine.running().await;
    engine.prompt(&session.id, "go").await.unwrap();
    agent.next_prompt().await.unwrap();

    // Control: an answered request resolves with the person's answer, not the default.
    agent.ask_permission("per_answered", "bash").await;
    until(&mut stream, |e| matches!(e, Event::PermissionRequested(_))).await;
    let answer = engine.gateway.reply_permission(
        &engine.who,
        &session.id,
        "per_answered",
        PermissionDecision::Always,
        "test",
    );
    answer.await.unwrap();
    let call = AgentCall::ReplyPermission("per_answered".into(), PermissionDecision::Always);
    assert_eq!(agent.next_call().await, Some(call));
    let resolved = until(&mut stream, |e| matches!(e, Event::PermissionResolved(_))).await;
    let Some(Event::PermissionResolved(resolved)) = resolved.last().map(|e| &e.event) else {
        unreachable!()
    };
    assert!(!resolved.timed_out);

    let asked_at = tokio::time::Instant::now();
    agent.ask_permission("per_ignored", "bash").await;
    let resolved = until(
        &mut stream,
        |e| matches!(e, Event::PermissionResolved(r) if r.permission_id == "per_ignored"),
    )
    .await;
    let Some(Event::PermissionResolved(resolved)) = resolved.last().map(|e| &e.event) else {
        unreachable!()
    };
    assert!(resolved.timed_out);
    assert_eq!(resolved.decision, PermissionDecision::Reject);
    assert_eq!(resolved.resolved_by, None);
    assert_eq!(asked_at.elapsed(), config().permission_timeout);
    let call = AgentCall::ReplyPermission("per_ignored".into(), PermissionDecision::Reject);
    assert_eq!(agent.next_call().await, Some(call));
}

#[tokio::test(start_paused = true)]
async fn a_turn_the_agent_will_not_stop_is_cancelled_after_the_grace_and_its_late_output_dropped() {
    let engine = Engine::start(config()).await;
    let (session, mut agent, mut stream) = engine.running().await;
    let first = engine.prompt(&session.id, "first").await.unwrap();
    let second = engine.prompt(&session.id, "second").await.unwrap();
    assert_eq!(second.queue_position, 1);
    assert_eq!(agent.next_prompt().await.unwrap().text, "first");
    agent.say("working on the first").await;
    until(&mut stream, |e| matches!(e, Event::TextDelta(_))).await;

    let cancelled_at = tokio::time::Instant::now();
    assert!(
        engine
            .gateway
            .cancel(&engine.who, &session.id, "test")
            .await
            .unwrap()
    );
    assert_eq!(agent.next_call().await, Some(AgentCall::Abort));
    // The agent ignores the abort: the turn is reported cancelled once the grace runs out.
    let seen = until(&mut stream, |e| matches!(e, Event::TurnCancelled(_))).await;
    assert_eq!(cancelled_at.elapsed(), config().cancel_grace);
    let Some(Event::TurnCancelled(cancelled)) = seen.last().map(|e| &e.event) else {
        unreachable!()
    };
    assert_eq!(cancelled.prompt_id, first.prompt_id);
    assert_eq!(cancelled.cancelled_by.as_ref().unwrap().subject, "ada");

    // The next prompt starts; the first turn's late output is not the second's.
    assert_eq!(agent.next_prompt().await.unwrap().text, "second");
    let late = Event::TextDelta(TextDelta {
        message_id: "msg_fake_1".into(),
        part_id: "part_1".into(),
        delta: "late output of the first".into(),
        ..Default::default()
    });
    agent.send(AgentUpdate::Event(late)).await;
    agent.say("the second's answer").await;
    agent.finish().await;
    let seen = until(&mut stream, |e| matches!(e, Event::TurnCompleted(_))).await;
    let texts: Vec<&str> = (seen.iter())
        .filter_map(|e| match &e.event {
            Event::TextDelta(delta) => Some(delta.delta.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["the second's answer"], "{seen:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_restarted_gateway_ends_the_interrupted_turn_and_runs_the_queued_one_on_the_same_agent_session()
 {
    let store = Arc::new(MemoryStore::new());
    let provider = FakeProvider::new();
    let before = Engine::on(store.clone(), provider.clone(), config()).await;
    let (session, mut agent, stream) = before.running().await;
    let interrupted = before.prompt(&session.id, "interrupted").await.unwrap();
    before.prompt(&session.id, "queued").await.unwrap();
    agent.next_prompt().await.unwrap();
    let agent_session_id = agent.agent_session_id.clone();
    drop(stream);
    before.gateway.shutdown().await;

    let after = Engine::on(store, provider, config()).await;
    let mut stream = after.connect(&session.id, 0).await;
    let mut seen = until(
        &mut stream,
        |e| matches!(e, Event::StatusChanged(s) if s.status == SessionStatus::Failed),
    )
    .await;
    seen.extend(
        until(
            &mut stream,
            |e| matches!(e, Event::StatusChanged(s) if s.status == SessionStatus::Running),
        )
        .await,
    );
    let mut agent = after.driver.next_agent().await.unwrap();
    assert_eq!(agent.adopted.as_deref(), Some(agent_session_id.as_str()));
    let cancelled = seen.iter().find_map(|e| match &e.event {
        Event::TurnCancelled(cancelled) => Some(cancelled.prompt_id.clone()),
        _ => None,
    });
    assert_eq!(cancelled, Some(interrupted.prompt_id));
    let reasons: Vec<_> = (seen.iter())
        .filter_map(|e| match &e.event {
            Event::StatusChanged(changed) => changed.reason.clone(),
            _ => None,
        })
        .collect();
    assert!(
        reasons.ends_with(&[
            "gateway_restarted".into(),
            "requested".into(),
            "agent_ready".into()
        ]),
        "{reasons:?}"
    );
    assert_eq!(agent.next_prompt().await.unwrap().text, "queued");
}

#[tokio::test(start_paused = true)]
async fn a_client_behind_the_retained_log_is_reset_to_the_transcript() {
    let engine = Engine::start(HubConfig {
        retained_events: Some(8),
        ..config()
    })
    .await;
    let (session, mut agent, mut stream) = engine.running().await;
    engine.prompt(&session.id, "go").await.unwrap();
    agent.next_prompt().await.unwrap();
    for line in 0..20 {
        agent.say(&format!("line {line}")).await;
    }
    agent.finish().await;
    let seen = until(&mut stream, |e| matches!(e, Event::TurnCompleted(_))).await;
    let head = seen.last().unwrap().seq;

    // Control: a client at the head resumes with no reset.
    let mut current = engine.connect(&session.id, head).await;
    assert!(matches!(
        next(&mut current).await,
        Ok(ServerFrame::Welcome(_))
    ));
    assert!(matches!(
        next(&mut current).await,
        Ok(ServerFrame::ReplayDone(_))
    ));

    let reset = engine.reset_after_seq_one(&session.id).await;
    assert_eq!(reset.reason, "cursor_expired");
    assert!(reset.earliest_seq > 2);
    assert_eq!(reset.transcript.through_seq, head);
    let text = text_of(&reset.transcript);
    assert!(
        text.contains("line 0") && text.contains("line 19"),
        "{text}"
    );
    let page = engine
        .gateway
        .events(&engine.who, &session.id, 1, 100)
        .await;
    assert!(matches!(page, Err(GatewayError::CursorExpired(_))));
    let page = engine
        .gateway
        .events(&engine.who, &session.id, reset.earliest_seq - 1, 100);
    assert_eq!(page.await.unwrap().events.last().unwrap().seq, head);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_reads_nothing_is_cut_off_while_the_others_get_everything() {
    let engine = Engine::start(HubConfig {
        send_budget: 16,
        ..config()
    })
    .await;
    let (session, mut agent, mut reader) = engine.running().await;
    let mut stalled = engine.connect(&session.id, 0).await;
    assert!(matches!(
        next(&mut stalled).await,
        Ok(ServerFrame::Welcome(_))
    ));
    engine.prompt(&session.id, "go").await.unwrap();
    agent.next_prompt().await.unwrap();
    for line in 0..100 {
        agent.say(&format!("line {line}")).await;
        // The reader keeps up.
        until(&mut reader, |e| matches!(e, Event::TextDelta(_))).await;
    }
    agent.finish().await;
    until(&mut reader, |e| matches!(e, Event::TurnCompleted(_))).await;
    let ended = loop {
        match next(&mut stalled).await {
            Ok(_) => continue,
            Err(ended) => break ended,
        }
    };
    assert_eq!(ended, SubscriptionEnded::SlowConsumer);
}

#[tokio::test(start_paused = true)]
async fn a_store_outage_answers_unavailable_and_loses_nothing_once_the_store_is_back() {
    // A lease outlasting the outage: past it the hub would stop (`ownership.rs`).
    let lease_ttl = Duration::from_secs(300);
    let engine = Engine::start(HubConfig {
        lease_ttl,
        ..config()
    })
    .await;
    let (session, mut agent, mut stream) = engine.running().await;
    engine.prompt(&session.id, "go").await.unwrap();
    agent.next_prompt().await.unwrap();
    until(&mut stream, |e| matches!(e, Event::TurnStarted(_))).await;

    engine.store.set_unavailable(Some("the disk is gone"));
    let refused = engine.prompt(&session.id, "during the outage").await;
    assert_eq!(refused.unwrap_err().code(), ErrorCode::Unavailable);
    agent.say("said during the outage").await;
    agent.finish().await;
    // Nothing is published that is not stored: for a minute the stream only beats.
    let outage_ends = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut beats = 0;
    while tokio::time::Instant::now() < outage_ends {
        match next(&mut stream).await {
            Ok(ServerFrame::Heartbeat(_)) => beats += 1,
            Ok(ServerFrame::Event(event)) => {
                panic!("published while the store was down: {event:?}")
            }
            Ok(_) => {}
            Err(ended) => panic!("the stream ended during the outage: {ended:?}"),
        }
    }
    assert!(beats >= 4, "the stream kept beating through the outage");

    engine.store.set_unavailable(None);
    let seen = until(&mut stream, |e| matches!(e, Event::TurnCompleted(_))).await;
    assert!(
        seen.iter().any(
            |e| matches!(&e.event, Event::TextDelta(d) if d.delta == "said during the outage")
        )
    );
    let page = engine
        .gateway
        .events(&engine.who, &session.id, 0, 1000)
        .await
        .unwrap();
    let seqs: Vec<u64> = page.events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "dense, no duplicate"
    );
    assert_eq!(*seqs.last().unwrap(), seen.last().unwrap().seq);
}

#[tokio::test(start_paused = true)]
async fn a_hub_with_nothing_to_do_leaves_memory_and_comes_back_on_demand() {
    let evict_after = Duration::from_secs(30);
    let engine = Engine::start(HubConfig {
        evict_after,
        ..config()
    })
    .await;
    let hubs = || engine.gateway.metrics().read().hubs_running;
    let (session, mut agent, mut stream) = engine.running().await;
    engine.prompt(&session.id, "first").await.unwrap();
    agent.next_prompt().await.unwrap();
    agent.say("the first answer").await;
    agent.finish().await;
    until(&mut stream, |e| matches!(e, Event::TurnCompleted(_))).await;
    drop(stream);

    // It pauses after the idle grace, and leaves once it has been dormant for `evict_after`.
    let left_at = tokio::time::Instant::now();
    while hubs() > 0 {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let gone_after = left_at.elapsed();
    assert!(
        gone_after >= config().idle_grace + evict_after,
        "{gone_after:?}"
    );
    assert!(gone_after <= config().idle_grace + evict_after + Duration::from_secs(2));
    let stored = engine.store.session(&session.id).await.unwrap().unwrap();
    assert_eq!(stored.info.status, SessionStatus::Paused);

    // The next call brings it back from the store, with its log and its agent's session.
    let info = engine
        .gateway
        .session(&engine.who, &session.id)
        .await
        .unwrap();
    assert_eq!(
        (info.status, info.head_seq),
        (SessionStatus::Paused, stored.info.head_seq)
    );
    assert_eq!(hubs(), 1);
    let mut stream = engine.connect(&session.id, 0).await;
    let mut agent = engine.driver.next_agent().await.unwrap();
    assert_eq!(agent.adopted.as_deref(), Some("ses_fake_1"));
    let second = engine.prompt(&session.id, "second").await.unwrap();
    assert_eq!(agent.next_prompt().await.unwrap().text, "second");
    agent.finish().await;
    let seen = until(
        &mut stream,
        |e| matches!(e, Event::TurnCompleted(c) if c.prompt_id == second.prompt_id),
    )
    .await;
    let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "dense across hubs"
    );
}

/// Hubs come and go as fast as they can while callers keep asking: no caller ever sees one
/// leave, because a command that reaches a leaving hub is handed to its successor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_never_see_a_hub_leave() {
    let engine = Engine::start(HubConfig {
        evict_after: Duration::ZERO,
        ..config()
    })
    .await;
    let (session, _agent, stream) = engine.running().await;
    drop(stream);
    let paused = engine.gateway.pause(&engine.who, &session.id).await;
    assert_eq!(paused.unwrap().status, SessionStatus::Paused);
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..4 {
        let (gateway, who, id) = (
            engine.gateway.clone(),
            engine.who.clone(),
            session.id.clone(),
        );
        callers.spawn(async move {
            for call in 0..300 {
                let info = gateway.session(&who, &id).await;
                assert_eq!(
                    info.map(|info| info.status).ok(),
                    Some(SessionStatus::Paused),
                    "caller {caller}, call {call}"
                );
                if call % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        });
    }
    while let Some(done) = callers.join_next().await {
        done.unwrap();
    }
    // With nothing to do, every hub leaves; none is left behind.
    let settled = tokio::time::timeout(Duration::from_secs(60), async {
        while engine.gateway.metrics().read().hubs_running > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    settled.await.expect("every hub left");
}

/// The log is the truth about a prompt; its stored state may lag (the store refused the write
/// and the gateway stopped before the retry). A restart follows the log.
#[tokio::test(start_paused = true)]
async fn a_restart_follows_the_log_when_a_prompts_stored_state_lags_behind() {
    let (store, provider) = (Arc::new(MemoryStore::new()), FakeProvider::new());
    let before = Engine::on(store.clone(), provider.clone(), config()).await;
    let (session, mut agent, mut stream) = before.running().await;
    let ended = before.prompt(&session.id, "ended").await.unwrap();
    agent.next_prompt().await.unwrap();
    agent.finish().await;
    until(&mut stream, |e| matches!(e, Event::TurnCompleted(_))).await;
    drop(stream);
    before.gateway.shutdown().await;
    let head = store
        .session(&session.id)
        .await
        .unwrap()
        .unwrap()
        .info
        .head_seq;
    // As if the turn's end reached the log but its prompt's state never reached the store.
    let lease = store
        .acquire(&session.id, "local", Duration::from_secs(30))
        .await;
    store
        .set_prompt_state(
            &lease.unwrap().unwrap(),
            &ended.prompt_id,
            PromptState::Running,
        )
        .await
        .unwrap();
    // Control: a prompt admitted whose message never reached the log.
    let lost = PromptRecord {
        session_id: session.id.clone(),
        prompt_id: "prm_lost".into(),
        admission: PromptAdmission {
            prompt_id: "prm_lost".into(),
            ..Default::default()
        },
        state: PromptState::Queued,
        content: "lost".into(),
        images: Vec::new(),
        sender: Sender::default(),
    };
    store.admit_prompt(&lost).await.unwrap();

    let after = Engine::on(store.clone(), provider, config()).await;
    let mut stream = after.connect(&session.id, head).await;
    let mut agent = after.driver.next_agent().await.unwrap();
    assert_eq!(
        agent.next_prompt().await.unwrap().text,
        "lost",
        "the lost prompt runs once"
    );
    let seen = until(&mut stream, |e| matches!(e, Event::TurnStarted(_))).await;
    let ends = seen
        .iter()
        .filter(|e| matches!(&e.event, Event::TurnCancelled(_) | Event::AgentError(_)));
    assert_eq!(
        ends.count(),
        0,
        "the ended turn is not ended again: {seen:#?}"
    );
    let logged = seen
        .iter()
        .filter(|e| matches!(&e.event, Event::UserMessage(m) if m.prompt_id == "prm_lost"));
    assert_eq!(logged.count(), 1, "{seen:#?}");
    assert!(
        store
            .pending_prompts(&session.id)
            .await
            .unwrap()
            .iter()
            .all(|p| p.prompt_id != ended.prompt_id)
    );
}

/// A stuck disk stalls a session for at most 30 s: the write is then left in flight and the hub
/// goes on beating and draining the agent (whose update channel would otherwise fill and stall
/// it), publishing nothing until the store answers, and losing nothing.
#[tokio::test(start_paused = true)]
async fn a_stuck_store_stalls_a_session_at_most_thirty_seconds_and_loses_nothing() {
    let engine = Engine::start(config()).await;
    let (session, mut agent, mut stream) = engine.running().await;
    engine.prompt(&session.id, "go").await.unwrap();
    agent.next_prompt().await.unwrap();
    until(&mut stream, |e| matches!(e, Event::TurnStarted(_))).await;

    engine.store.hold_appends(true);
    // Far more than the agent's update channel holds (64).
    let said = tokio::time::timeout(Duration::from_secs(45), async {
        for line in 0..300 {
            agent.say(&format!("line {line}")).await;
        }
        agent.finish().await;
    });
    said.await
        .expect("the hub drained the agent while the store was held");
    let (mut beats, held_until) = (0, tokio::time::Instant::now() + Duration::from_secs(60));
    while tokio::time::Instant::now() < held_until {
        match next(&mut stream).await {
            Ok(ServerFrame::Heartbeat(_)) => beats += 1,
            Ok(ServerFrame::Event(event)) => panic!("published before it was written: {event:?}"),
            _ => {}
        }
    }
    assert!(beats >= 3, "beats went on: {beats}");

    engine.store.hold_appends(false);
    let seen = until(&mut stream, |e| matches!(e, Event::TurnCompleted(_))).await;
    let deltas = seen
        .iter()
        .filter(|e| matches!(e.event, Event::TextDelta(_)));
    assert_eq!(deltas.count(), 300);
    let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
    let first = seqs[0];
    assert_eq!(seqs, (first..first + seqs.len() as u64).collect::<Vec<_>>());
}

/// Retention by age, on the real clock (the wire's timestamps are wall-clock time): events
/// older than the configured age go at the next write after it passed, with the transcript kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_past_their_age_are_dropped_and_the_transcript_kept() {
    let age = Duration::from_secs(1);
    let engine = Engine::start(HubConfig {
        retained_age: Some(age),
        ..config()
    })
    .await;
    let (session, mut agent, mut stream) = engine.running().await;
    engine.prompt(&session.id, "old").await.unwrap();
    agent.next_prompt().await.unwrap();
    agent.say("the old answer").await;
    agent.finish().await;
    let old = until(&mut stream, |e| matches!(e, Event::TurnCompleted(_))).await;
    let old_head = old.last().unwrap().seq;
    // Control: nothing is old yet.
    assert_eq!(
        engine
            .gateway
            .events(&engine.who, &session.id, 0, 10)
            .await
            .unwrap()
            .events[0]
            .seq,
        1
    );

    tokio::time::sleep(age * 2).await;
    engine.prompt(&session.id, "new").await.unwrap();
    agent.next_prompt().await.unwrap();
    agent.say("the new answer").await;
    agent.finish().await;
    let new = until(&mut stream, |e| matches!(e, Event::TurnCompleted(_))).await;

    // The write after the age passed dropped every event written before it.
    let expired = engine.gateway.events(&engine.who, &session.id, 0, 10).await;
    assert!(
        matches!(expired, Err(GatewayError::CursorExpired(_))),
        "{expired:?}"
    );
    let reset = engine.reset_after_seq_one(&session.id).await;
    assert!(
        reset.earliest_seq > old_head,
        "{} > {old_head}",
        reset.earliest_seq
    );
    assert!(reset.earliest_seq <= new[0].seq, "the new events stay");
    let text = text_of(&reset.transcript);
    assert!(
        text.contains("the old answer") && text.contains("the new answer"),
        "{text}"
    );
}

/// What a crowd's connections received about who is connected.
struct CrowdPresence {
    /// Bytes of every `welcome`, `presence` and `presence_changed` that reached the crowd.
    bytes: usize,
    /// How many `presence` and `presence_changed` frames reached the crowd's first connection.
    frames_of_the_first: usize,
}

/// What a stream has for now: the welcome, the backlog and `replay_done`, then the live frames
/// already queued.
async fn drain(stream: &mut Subscription) -> Vec<bytes::Bytes> {
    let mut frames = Vec::new();
    loop {
        let bytes = tokio::time::timeout(PATIENCE, stream.next()).await;
        let bytes = bytes.expect("a frame").expect("an open stream");
        let frame = serde_json::from_slice::<ServerFrame>(&bytes);
        frames.push(bytes);
        if matches!(frame, Ok(ServerFrame::ReplayDone(_))) {
            break;
        }
    }
    frames.extend(std::iter::from_fn(|| stream.try_next()));
    frames
}

fn ids(entries: &[PresenceEntry]) -> impl Iterator<Item = String> + '_ {
    entries.iter().map(|entry| entry.connection_id.clone())
}

/// Connects `size` streams to a running session, one every 7 ms (so no join falls on the instant
/// a window ends), and drops every tenth the moment it joined. Checks that every stream, applying
/// each `presence_changed` to its welcome list as set operations, knows who is connected, as the
/// gateway's `presence` does, and that no one heard of the dropped ones.
async fn crowd_joins(size: usize) -> CrowdPresence {
    let window = Duration::from_millis(100);
    let engine = Engine::start(HubConfig {
        presence_window: window,
        presence_list_limit: usize::MAX,
        ..config()
    })
    .await;
    let (session, _agent, first) = engine.running().await;
    tokio::time::sleep(window * 3).await;
    let (mut kept, mut dropped) = (Vec::new(), Vec::new());
    for index in 0..size {
        let stream = engine.connect(&session.id, 0).await;
        if index % 10 == 9 {
            dropped.push(stream.connection_id().to_owned());
            drop(stream);
        } else {
            kept.push(stream);
        }
        tokio::time::sleep(Duration::from_millis(7)).await;
    }
    tokio::time::sleep(window * 3).await;

    let connected = ids(&(engine.gateway.presence(&engine.who, &session.id).await)
        .unwrap()
        .connections)
    .collect::<std::collections::BTreeSet<_>>();
    let expected = (kept.iter().chain([&first]))
        .map(|stream| stream.connection_id().to_owned())
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(connected, expected, "`presence` lists everyone connected");

    let mut crowd = CrowdPresence {
        bytes: 0,
        frames_of_the_first: 0,
    };
    let mut heard_of = std::collections::BTreeSet::new();
    for (index, stream) in kept.iter_mut().enumerate() {
        let (mut known, mut frames) = (std::collections::BTreeSet::new(), 0);
        for bytes in drain(stream).await {
            match serde_json::from_slice(&bytes).unwrap() {
                ServerFrame::Welcome(welcome) => {
                    known = ids(&welcome.connections).collect();
                    heard_of.extend(known.iter().cloned());
                }
                ServerFrame::PresenceChanged(change) => {
                    for connection_id in &change.left {
                        known.remove(connection_id);
                    }
                    known.extend(ids(&change.joined));
                    heard_of.extend(ids(&change.joined).chain(change.left));
                    frames += 1;
                }
                ServerFrame::Presence(_) => frames += 1,
                _ => continue,
            }
            crowd.bytes += bytes.len();
        }
        assert_eq!(known, expected, "connection {index} knows who is connected");
        if index == 0 {
            crowd.frames_of_the_first = frames;
        }
    }
    for connection_id in &dropped {
        assert!(
            !heard_of.contains(connection_id),
            "{connection_id} joined and left within one window, yet someone heard of it"
        );
    }
    // Control: the others were heard of.
    assert!(
        expected
            .iter()
            .all(|connection_id| heard_of.contains(connection_id))
    );
    crowd
}

/// §2.5 of the protocol, at scale: joins and leaves gather for a window, so a crowd joining costs
/// each connection a few `presence_changed` frames rather than a full list per join, and what the
/// connections receive about presence grows with the square of the crowd, not its cube.
#[tokio::test(start_paused = true)]
async fn a_crowd_joining_is_announced_in_a_few_presence_changes() {
    let small = crowd_joins(100).await;
    let large = crowd_joins(200).await;
    // The first of 200 saw 199 joins and leaves spread over 1.4 s, about 14 windows; a frame
    // per change would be 199 or more.
    assert!(
        large.frames_of_the_first * 5 <= 199,
        "the first connection got {} presence frames for 199 joins",
        large.frames_of_the_first
    );
    // A full list to everyone on every join grows with the cube: doubling the crowd multiplies
    // the bytes by about 8. The welcome lists and the changes grow with the square: about 4.
    let growth = large.bytes as f64 / small.bytes as f64;
    assert!(
        (3.0..6.0).contains(&growth),
        "doubling the crowd multiplied the presence bytes by {growth:.2} ({} to {})",
        small.bytes,
        large.bytes
    );
}
