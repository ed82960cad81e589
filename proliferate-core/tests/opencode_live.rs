//! The local provider and the OpenCode driver against a real OpenCode whose model is scripted.

mod support;

use std::time::Duration;

use proliferate_core::agent::{AgentPrompt, AgentUpdate};
use proliferate_core::protocol::v1::{Event, PermissionDecision};
use proliferate_core::sandbox::SandboxProvider;
use serde_json::json;
use support::{Rig, collect_turn, collect_until};

fn prompt(text: &str) -> AgentPrompt {
    AgentPrompt {
        text: text.into(),
        images: Vec::new(),
    }
}

fn events(updates: &[AgentUpdate]) -> Vec<&Event> {
    updates
        .iter()
        .filter_map(|update| match update {
            AgentUpdate::Event(event) => Some(event),
            _ => None,
        })
        .collect()
}

fn text_of(updates: &[AgentUpdate]) -> (String, Vec<String>) {
    let mut deltas = String::new();
    let mut completed = Vec::new();
    for event in events(updates) {
        match event {
            Event::TextDelta(delta) => deltas.push_str(&delta.delta),
            Event::TextCompleted(done) => completed.push(done.text.clone()),
            _ => {}
        }
    }
    (deltas, completed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_streams_as_deltas_then_a_completed_part_and_tools_really_run() {
    let rig = Rig::new(json!({})).await;
    let (_, mut session) = rig.start("text_and_tools", None, None).await;

    let text = "alpha beta gamma delta epsilon zeta eta theta";
    session
        .control
        .prompt(&prompt(&format!("[[deltas:8]] [[say:{text}]]")))
        .await
        .unwrap();
    let updates = collect_turn(&mut session).await;
    let (deltas, completed) = text_of(&updates);
    let delta_count = events(&updates)
        .iter()
        .filter(|event| matches!(event, Event::TextDelta(_)))
        .count();
    assert!(
        delta_count >= 8,
        "expected at least 8 deltas, got {delta_count}: {updates:#?}"
    );
    assert_eq!(deltas, text);
    assert_eq!(completed, vec![text.to_owned()]);
    let kinds: Vec<&str> = events(&updates)
        .iter()
        .map(|event| event.type_name())
        .collect();
    let first_delta = kinds.iter().position(|kind| *kind == "text_delta").unwrap();
    let completion = kinds
        .iter()
        .position(|kind| *kind == "text_completed")
        .unwrap();
    assert!(
        kinds
            .iter()
            .position(|kind| *kind == "assistant_message_started")
            .unwrap()
            < first_delta
    );
    assert!(first_delta < completion);
    assert!(kinds.contains(&"assistant_message_completed"), "{kinds:?}");

    session
        .control
        .prompt(&prompt("[[bash:echo tool-ran > out.txt && cat out.txt]]"))
        .await
        .unwrap();
    let updates = collect_turn(&mut session).await;
    let started = events(&updates)
        .into_iter()
        .find_map(|event| match event {
            Event::ToolStarted(started) => Some(started.clone()),
            _ => None,
        })
        .expect("tool_started");
    let completed = events(&updates)
        .into_iter()
        .find_map(|event| match event {
            Event::ToolCompleted(completed) => Some(completed.clone()),
            _ => None,
        })
        .expect("tool_completed");
    assert_eq!(started.tool, "bash");
    assert_eq!(completed.call_id, started.call_id);
    assert_eq!(completed.output.trim(), "tool-ran");
    let written = std::fs::read_to_string(rig.workspace("text_and_tools").join("out.txt")).unwrap();
    assert_eq!(written, "tool-ran\n");
    let (_, texts) = text_of(&updates);
    assert!(
        texts.iter().any(|text| text.contains("tool-ran")),
        "follow-up saw the tool output: {texts:?}"
    );

    rig.provider.terminate("text_and_tools").await.unwrap();
    assert!(!rig.provider.session_dir("text_and_tools").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_request_is_surfaced_and_answered() {
    let rig = Rig::new(json!({ "bash": "ask" })).await;
    let (_, mut session) = rig.start("permission", None, None).await;
    session
        .control
        .prompt(&prompt("[[bash:echo approved > approved.txt]]"))
        .await
        .unwrap();
    let updates = collect_until(&mut session, Duration::from_secs(90), |update| {
        matches!(update, AgentUpdate::PermissionAsked(_))
    })
    .await;
    let Some(AgentUpdate::PermissionAsked(ask)) = updates.last() else {
        panic!("no permission request: {updates:#?}");
    };
    assert_eq!(ask.permission, "bash");
    assert!(
        ask.patterns
            .iter()
            .any(|pattern| pattern.contains("approved.txt")),
        "{ask:?}"
    );
    assert!(!rig.workspace("permission").join("approved.txt").exists());

    session
        .control
        .reply_permission(&ask.permission_id, PermissionDecision::Once)
        .await
        .unwrap();
    let updates = collect_turn(&mut session).await;
    assert!(updates.iter().any(|update| matches!(
        update,
        AgentUpdate::PermissionReplied {
            decision: PermissionDecision::Once,
            ..
        }
    )));
    assert!(
        events(&updates)
            .iter()
            .any(|event| matches!(event, Event::ToolCompleted(_)))
    );
    assert!(rig.workspace("permission").join("approved.txt").exists());
    rig.provider.terminate("permission").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_mid_turn_ends_the_turn_without_an_error() {
    let rig = Rig::new(json!({})).await;
    let (_, mut session) = rig.start("abort", None, None).await;
    session
        .control
        .prompt(&prompt("[[delay:100]] [[deltas:200]] [[say:a long answer that takes twenty seconds to stream]]"))
        .await
        .unwrap();
    collect_until(&mut session, Duration::from_secs(60), |update| {
        matches!(update, AgentUpdate::Event(Event::TextDelta(_)))
    })
    .await;
    session.control.abort().await.unwrap();
    let updates = collect_until(&mut session, Duration::from_secs(15), |update| {
        matches!(update, AgentUpdate::Idle)
    })
    .await;
    assert!(
        !events(&updates)
            .iter()
            .any(|event| matches!(event, Event::AgentError(_))),
        "an abort is not an error: {updates:#?}"
    );
    rig.provider.terminate("abort").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_error_becomes_an_agent_error() {
    let rig = Rig::new(json!({})).await;
    let (_, mut session) = rig.start("model_error", None, None).await;
    session
        .control
        .prompt(&prompt("[[fail:500]]"))
        .await
        .unwrap();
    let updates = collect_until(&mut session, Duration::from_secs(90), |update| {
        matches!(update, AgentUpdate::Event(Event::AgentError(_)))
    })
    .await;
    let Some(AgentUpdate::Event(Event::AgentError(error))) = updates.last() else {
        unreachable!()
    };
    assert!(error.kind.starts_with("model"), "{error:?}");
    assert!(!error.message.is_empty());
    rig.provider.terminate("model_error").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_kill_and_snapshot_keep_what_they_must() {
    let rig = Rig::new(json!({})).await;
    let (_, mut session) = rig.start("lifecycle", None, None).await;
    let agent_session = session.control.agent_session_id().to_owned();
    session
        .control
        .prompt(&prompt("[[bash:echo kept > kept.txt]]"))
        .await
        .unwrap();
    collect_turn(&mut session).await;
    let history_before = session.control.history().await.unwrap();
    let messages_before = history_before.as_array().map_or(0, Vec::len);
    assert!(messages_before >= 2, "{history_before}");

    // Pause stops the process; resume adopts the same agent session with its transcript.
    rig.provider.pause("lifecycle").await.unwrap();
    assert!(!rig.provider.is_running("lifecycle").await);
    drop(session);
    let (_, session) = rig.start("lifecycle", None, Some(&agent_session)).await;
    assert_eq!(session.control.agent_session_id(), agent_session);
    let history_after = session.control.history().await.unwrap();
    assert_eq!(
        history_after.as_array().map_or(0, Vec::len),
        messages_before
    );

    // A killed agent is reported lost; starting again recovers the same session.
    let pid: i32 = std::fs::read_to_string(rig.provider.session_dir("lifecycle").join("agent.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut session = session;
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let updates = collect_until(&mut session, Duration::from_secs(60), |update| {
        matches!(update, AgentUpdate::Lost(_))
    })
    .await;
    assert!(matches!(updates.last(), Some(AgentUpdate::Lost(_))));
    assert!(!rig.provider.is_running("lifecycle").await);
    let (_, session) = rig.start("lifecycle", None, Some(&agent_session)).await;
    assert_eq!(session.control.agent_session_id(), agent_session);

    // A snapshot restores into a new session that sees its files.
    let snapshot = rig.provider.snapshot("lifecycle").await.unwrap();
    assert!(snapshot.size_bytes > 0);
    let (_, mut restored) = rig
        .start("restored", Some(snapshot.snapshot_id.clone()), None)
        .await;
    assert_eq!(
        std::fs::read_to_string(rig.workspace("restored").join("kept.txt")).unwrap(),
        "kept\n"
    );
    restored
        .control
        .prompt(&prompt("[[bash:cat kept.txt]]"))
        .await
        .unwrap();
    let updates = collect_turn(&mut restored).await;
    assert!(
        events(&updates).iter().any(
            |event| matches!(event, Event::ToolCompleted(done) if done.output.contains("kept"))
        )
    );
    drop(session);

    for session_id in ["lifecycle", "restored"] {
        rig.provider.terminate(session_id).await.unwrap();
        rig.provider.terminate(session_id).await.unwrap(); // idempotent
    }
}
