//! §11.2 of `docs/protocol.md`: prompts and aborts sent through the agent proxy go through the
//! session's queue. OpenCode's official SDK (`@opencode-ai/sdk`, installed beside OpenCode by
//! `scripts/install-opencode`) drives the proxy (`agent_proxy_sdk.mjs`); the log must show every
//! prompt as any other: its `user_message`, its turn started and ended, its answer inside.

mod support;

use std::time::Duration;

use proliferate_core::protocol::v1::*;
use reqwest::Method;
use serde_json::Value;
use support::*;

/// The SDK's client module, beside the installed OpenCode.
fn sdk_module() -> std::path::PathBuf {
    let program = opencode_program();
    let node_modules = program
        .ancestors()
        .find(|folder| folder.ends_with("node_modules"))
        .expect("OpenCode is installed under node_modules");
    node_modules.join("@opencode-ai/sdk/dist/client.js")
}

/// The whole log.
async fn events(api: &Api, session_id: &str) -> Vec<EventEnvelope> {
    let (status, page) = api
        .call(
            Method::GET,
            &format!("/v1/sessions/{session_id}/events?limit=1000"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    serde_json::from_value::<EventPage>(page).unwrap().events
}

/// The prompt id of the `user_message` with this content.
fn prompt_of(events: &[EventEnvelope], content: &str) -> Option<UserMessage> {
    events.iter().find_map(|envelope| match &envelope.event {
        Event::UserMessage(message) if message.content == content => Some(message.clone()),
        _ => None,
    })
}

/// The events between the prompt's `turn_started` and its end, and that end.
fn turn_of<'a>(events: &'a [EventEnvelope], prompt_id: &str) -> (&'a [EventEnvelope], &'a Event) {
    let start = events
        .iter()
        .position(|envelope| matches!(&envelope.event, Event::TurnStarted(turn) if turn.prompt_id == prompt_id))
        .unwrap_or_else(|| panic!("{prompt_id} never started"));
    let end = start
        + events[start..]
            .iter()
            .position(|envelope| match &envelope.event {
                Event::TurnCompleted(turn) => turn.prompt_id == prompt_id,
                Event::TurnCancelled(turn) => turn.prompt_id == prompt_id,
                _ => false,
            })
            .unwrap_or_else(|| panic!("{prompt_id} never ended"));
    (&events[start + 1..end], &events[end].event)
}

fn says(turn: &[EventEnvelope], text: &str) -> bool {
    turn.iter().any(
        |envelope| matches!(&envelope.event, Event::TextCompleted(part) if part.text.contains(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_and_aborts_from_the_official_sdk_go_through_the_queue() {
    let server = TestServer::start(&[]);
    let token = token("ada", "acme");
    let api = Api::new(&server, &token);
    let session = api.create_session().await;
    // The proxy starts the agent; its only top-level session is the session's own.
    let (status, sessions) = api
        .call(
            Method::GET,
            &format!("/v1/sessions/{}/agent/session", session.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{sessions}");
    let agent_session = sessions[0]["id"].as_str().unwrap().to_owned();

    let output = tokio::process::Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/agent_proxy_sdk.mjs"
        ))
        .env("SDK", sdk_module())
        .env(
            "BASE",
            format!("{}/v1/sessions/{}/agent", server.base, session.id),
        )
        .env("TOKEN", &token)
        .env("AGENT_SESSION", &agent_session)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let steps: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let step = |name: &str| {
        steps
            .iter()
            .find(|step| step["step"] == name)
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            .clone()
    };
    assert_eq!(step("prompt_async")["status"], 204);
    let prompt = step("prompt");
    assert_eq!(prompt["status"], 200, "{prompt}");
    assert_eq!(prompt["role"], "assistant", "{prompt}");
    assert!(
        prompt["text"]
            .as_str()
            .unwrap()
            .contains("synchronous answer"),
        "the synchronous prompt answers with its own reply: {prompt}"
    );
    assert_eq!(step("stalled")["status"], 204);
    assert_eq!(step("abort")["status"], 200);
    assert_eq!(step("abort")["data"], true);
    assert_eq!(step("elsewhere")["status"], 403, "another agent session");
    assert_eq!(step("no_reply")["status"], 400, "noReply is refused");

    // The stalled turn's cancellation reaches the log soon after the abort.
    let mut log = events(&api, &session.id).await;
    for _ in 0..600 {
        if log
            .iter()
            .any(|envelope| matches!(envelope.event, Event::TurnCancelled(_)))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        log = events(&api, &session.id).await;
    }
    for (content, reply) in [
        ("[[say:asynchronous answer]]", "asynchronous answer"),
        ("[[say:synchronous answer]]", "synchronous answer"),
    ] {
        let message =
            prompt_of(&log, content).unwrap_or_else(|| panic!("no user_message {content}"));
        assert_eq!(message.sender.source, "agent_proxy");
        assert_eq!(message.sender.subject, "ada");
        let (turn, end) = turn_of(&log, &message.prompt_id);
        assert!(matches!(end, Event::TurnCompleted(_)), "{end:?}");
        assert!(says(turn, reply), "{content}: its reply is inside its turn");
    }
    let stalled = prompt_of(&log, "[[stall]]").expect("the stalled prompt is admitted");
    let (_, end) = turn_of(&log, &stalled.prompt_id);
    let Event::TurnCancelled(cancelled) = end else {
        panic!("the stalled turn is cancelled: {end:?}");
    };
    assert_eq!(
        cancelled.cancelled_by.as_ref().map(|by| by.source.as_str()),
        Some("agent_proxy")
    );
    assert!(
        prompt_of(&log, "note").is_none() && prompt_of(&log, "hello").is_none(),
        "refused prompts are not admitted"
    );
}
