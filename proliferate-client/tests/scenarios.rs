//! Replays the shared scenarios of `fixtures/scenarios/` against the real server, and checks
//! that the client's reducer folds the same transcript as the server's.

mod support;

use std::path::Path;

use proliferate_client::protocol::v1::*;
use proliferate_client::{ConnectionOptions, PromptOptions, TranscriptReducer};
use serde_json::{Value, json};
use support::*;

/// One entry per message: role, joined text, and each tool call's name and status.
fn simplify(transcript: &Transcript) -> Vec<Value> {
    transcript
        .messages
        .iter()
        .map(|message| {
            let text: String = message
                .parts
                .iter()
                .filter_map(|part| match part {
                    TranscriptPart::Text(text) => Some(text.text.as_str()),
                    _ => None,
                })
                .collect();
            let tools: Vec<Value> = message
                .parts
                .iter()
                .filter_map(|part| match part {
                    TranscriptPart::Tool(call) => {
                        Some(json!({"tool": call.tool, "status": call.status}))
                    }
                    _ => None,
                })
                .collect();
            json!({"role": message.role, "text": text, "tools": tools})
        })
        .collect()
}

fn matches_expected(actual: &[Value], expected: &[Value]) -> bool {
    actual.len() == expected.len()
        && actual.iter().zip(expected).all(|(actual, expected)| {
            actual["role"] == expected["role"]
                && actual["tools"] == expected["tools"]
                && (expected["text"].is_null() || actual["text"] == expected["text"])
        })
}

/// The prompt an event belongs to, for `wait_for` matching.
fn prompt_of<'a>(event: &'a Event, running: Option<&'a str>) -> Option<&'a str> {
    match event {
        Event::UserMessage(message) => Some(&message.prompt_id),
        Event::TurnStarted(turn) => Some(&turn.prompt_id),
        Event::TurnCompleted(turn) => Some(&turn.prompt_id),
        Event::TurnCancelled(turn) => Some(&turn.prompt_id),
        Event::QueuedPromptCancelled(cancelled) => Some(&cancelled.prompt_id),
        Event::AgentError(error) => error.prompt_id.as_deref(),
        _ => running,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shared_scenario_replays() {
    let server = TestServer::start().await;
    let client = client(&server.url());
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/scenarios");
    let mut paths: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    paths.sort();
    assert!(paths.len() >= 4, "scenarios are missing");

    for path in paths {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let scenario: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let session = client
            .create_session(&CreateSessionRequest::default())
            .await
            .unwrap();
        let mut connection = client.connect(&session.id, ConnectionOptions::default());
        until_running(&mut connection).await;
        let mut reducer = TranscriptReducer::new(&session.id);
        let mut seen: Vec<EventEnvelope> = Vec::new();

        for step in scenario["steps"].as_array().unwrap() {
            if let Some(prompt) = step.get("send_prompt") {
                let options = PromptOptions {
                    prompt_id: prompt["prompt_id"].as_str().map(str::to_owned),
                    images: Vec::new(),
                };
                let admission = connection
                    .send_prompt(prompt["content"].as_str().unwrap(), options)
                    .await
                    .unwrap();
                assert_eq!(
                    Some(u64::from(admission.queue_position)),
                    prompt["queue_position"].as_u64(),
                    "{name}: queue position of {}",
                    admission.prompt_id
                );
            } else if let Some(wait) = step.get("wait_for") {
                let wanted = wait["event"].as_str().unwrap();
                let prompt = wait["prompt_id"].as_str();
                let already = seen.iter().any(|envelope| {
                    envelope.event.type_name() == wanted
                        && (prompt.is_none() || prompt_of(&envelope.event, None) == prompt)
                });
                if !already {
                    let mut running = reducer.transcript().running_prompt_id.clone();
                    let read = events_until(&mut connection, |envelope| {
                        if let Event::TurnStarted(turn) = &envelope.event {
                            running = Some(turn.prompt_id.clone());
                        }
                        envelope.event.type_name() == wanted
                            && (prompt.is_none()
                                || prompt_of(&envelope.event, running.as_deref()) == prompt)
                    })
                    .await;
                    for envelope in &read {
                        reducer.apply(envelope);
                    }
                    seen.extend(read);
                }
            } else if step.get("cancel").is_some() {
                assert!(
                    connection.cancel().await.unwrap(),
                    "{name}: a turn was running"
                );
            } else if let Some(cancel) = step.get("cancel_queued") {
                connection
                    .cancel_queued(cancel["prompt_id"].as_str().unwrap())
                    .await
                    .unwrap();
            } else {
                panic!("{name}: unknown step {step}");
            }
        }

        let mut expected = scenario["expect"]["events_in_order"]
            .as_array()
            .unwrap()
            .iter();
        let mut next = expected.next();
        for envelope in &seen {
            if next.and_then(Value::as_str) == Some(envelope.event.type_name()) {
                next = expected.next();
            }
        }
        let kinds: Vec<&str> = seen
            .iter()
            .map(|envelope| envelope.event.type_name())
            .collect();
        assert!(
            next.is_none(),
            "{name}: {next:?} missing in order from {kinds:?}"
        );

        let server_transcript = client.transcript(&session.id).await.unwrap();
        if reducer.transcript().through_seq < server_transcript.through_seq {
            let target = server_transcript.through_seq;
            for envelope in events_until(&mut connection, |envelope| envelope.seq >= target).await {
                reducer.apply(&envelope);
            }
        }
        assert_eq!(
            &server_transcript,
            reducer.transcript(),
            "{name}: reducer and server agree"
        );
        let actual = simplify(reducer.transcript());
        let wanted = scenario["expect"]["transcript"].as_array().unwrap();
        assert!(
            matches_expected(&actual, wanted),
            "{name}: transcript {actual:#?}\nexpected {wanted:#?}"
        );
        client.delete_session(&session.id).await.unwrap();
    }
}
