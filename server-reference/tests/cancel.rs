//! §5 and §6.4 of `docs/protocol.md`, against the real server with a real OpenCode: "`cancel`
//! aborts the running turn … appends `turn_cancelled` once the agent stops, marks tool calls
//! still running as cancelled in the transcript, and then starts the next queued prompt";
//! "exactly one of `turn_completed` or `turn_cancelled` ends each started turn"; after
//! `turn_cancelled`, "no further output belongs to it".

mod support;

use std::time::Duration;

use proliferate_core::protocol::v1::*;
use reqwest::Method;
use support::*;

/// Every event of the session so far, over HTTP.
async fn all_events(api: &Api, session_id: &str) -> Vec<EventEnvelope> {
    let mut events = Vec::new();
    loop {
        let after = events.last().map_or(0, |event: &EventEnvelope| event.seq);
        let (status, page) = api
            .call(
                Method::GET,
                &format!("/v1/sessions/{session_id}/events?after_seq={after}&limit=1000"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let page: EventPage = serde_json::from_value(page).unwrap();
        events.extend(page.events);
        if !page.has_more {
            return events;
        }
    }
}

/// Polls the log until `done` holds for it (at most two minutes).
async fn events_until(
    api: &Api,
    session_id: &str,
    done: impl Fn(&[EventEnvelope]) -> bool,
) -> Vec<EventEnvelope> {
    for _ in 0..1200 {
        let events = all_events(api, session_id).await;
        if done(&events) {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the log never got there: {:#?}",
        all_events(api, session_id).await
    );
}

/// One line per event: seq, type and the fields that tell turns apart.
fn outline(events: &[EventEnvelope]) -> String {
    events
        .iter()
        .map(|envelope| {
            let event = serde_json::to_value(&envelope.event).unwrap();
            let detail: Vec<String> = ["prompt_id", "status", "tool", "text", "message", "kind"]
                .iter()
                .filter_map(|field| event.get(*field).map(|value| format!("{field}={value}")))
                .collect();
            format!("{} {} {}", envelope.seq, event["type"], detail.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The events that end `prompt_id`'s turn.
fn turn_ends<'a>(events: &'a [EventEnvelope], prompt_id: &str) -> Vec<&'a Event> {
    events
        .iter()
        .map(|envelope| &envelope.event)
        .filter(|event| match event {
            Event::TurnCompleted(turn) => turn.prompt_id == prompt_id,
            Event::TurnCancelled(turn) => turn.prompt_id == prompt_id,
            _ => false,
        })
        .collect()
}

fn started(events: &[EventEnvelope], prompt_id: &str) -> bool {
    events.iter().any(
        |envelope| matches!(&envelope.event, Event::TurnStarted(turn) if turn.prompt_id == prompt_id),
    )
}

async fn cancel(api: &Api, session_id: &str) -> bool {
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/v1/sessions/{session_id}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["cancelled"].as_bool().unwrap()
}

/// Whether each event lies inside a started turn (between its `turn_started` and its end), for
/// agent output; returns the first that does not.
fn output_outside_turns(events: &[EventEnvelope]) -> Option<&EventEnvelope> {
    let mut running = false;
    events.iter().find(|envelope| {
        match &envelope.event {
            Event::TurnStarted(_) => running = true,
            Event::TurnCompleted(_) | Event::TurnCancelled(_) => running = false,
            Event::AssistantMessageStarted(_)
            | Event::AssistantMessageCompleted(_)
            | Event::TextDelta(_)
            | Event::TextCompleted(_)
            | Event::ToolStarted(_)
            | Event::ToolUpdated(_)
            | Event::ToolCompleted(_)
            | Event::ToolFailed(_)
            | Event::AgentError(_) => return !running,
            _ => {}
        }
        false
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_turn_with_a_prompt_queued_runs_the_queued_prompt_whole() {
    let server = TestServer::start(&[]);
    let api = Api::new(&server, &token("ada", "acme"));
    for delay_ms in [0, 0, 300, 1000] {
        let session = api.create_session().await;
        api.prompt(&session.id, "prm_a", "[[stall]]").await;
        api.prompt(&session.id, "prm_b", "[[say:B is answered]]")
            .await;
        events_until(&api, &session.id, |events| started(events, "prm_a")).await;
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        assert!(cancel(&api, &session.id).await, "a turn runs");
        events_until(&api, &session.id, |events| {
            !turn_ends(events, "prm_b").is_empty()
        })
        .await;
        // Let anything late arrive before judging.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let events = all_events(&api, &session.id).await;
        assert!(
            matches!(turn_ends(&events, "prm_a")[..], [Event::TurnCancelled(_)]),
            "delay {delay_ms} ms: A ends once, cancelled: {}",
            outline(&events)
        );
        assert!(
            matches!(turn_ends(&events, "prm_b")[..], [Event::TurnCompleted(_)]),
            "delay {delay_ms} ms: B ends once, completed: {}",
            outline(&events)
        );
        let b_start = events
            .iter()
            .position(|envelope| matches!(&envelope.event, Event::TurnStarted(turn) if turn.prompt_id == "prm_b"))
            .unwrap();
        assert!(
            events[b_start..]
                .iter()
                .any(|envelope| matches!(&envelope.event,
                Event::TextCompleted(text) if text.text.contains("B is answered"))),
            "delay {delay_ms} ms: B's reply is in B's turn: {}",
            outline(&events)
        );
        assert!(
            !events
                .iter()
                .any(|envelope| matches!(&envelope.event, Event::AgentError(_))),
            "delay {delay_ms} ms: no agent error: {}",
            outline(&events)
        );
        assert_eq!(
            output_outside_turns(&events),
            None,
            "delay {delay_ms} ms: all output inside turns"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_running_when_its_turn_is_cancelled_stays_cancelled() {
    let server = TestServer::start(&[]);
    let api = Api::new(&server, &token("ada", "acme"));
    let session = api.create_session().await;
    api.prompt(&session.id, "prm_sleep", "[[bash:sleep 30]]")
        .await;
    events_until(&api, &session.id, |events| {
        events
            .iter()
            .any(|envelope| matches!(envelope.event, Event::ToolStarted(_)))
    })
    .await;
    // The bash tool is running: its process exists.
    assert!(cancel(&api, &session.id).await, "a turn runs");
    events_until(&api, &session.id, |events| {
        !turn_ends(events, "prm_sleep").is_empty()
    })
    .await;
    // OpenCode finishes an aborted tool call after it reports the session idle: give it time.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let events = all_events(&api, &session.id).await;
    let end = events
        .iter()
        .position(|envelope| matches!(&envelope.event, Event::TurnCancelled(_)))
        .unwrap_or_else(|| panic!("the turn is cancelled: {}", outline(&events)));
    assert!(
        events[..end]
            .iter()
            .any(|envelope| matches!(envelope.event, Event::ToolStarted(_))),
        "control: the tool started inside the turn: {}",
        outline(&events)
    );
    assert_eq!(
        output_outside_turns(&events),
        None,
        "no output after turn_cancelled: {}",
        outline(&events)
    );
    let (status, transcript) = api
        .call(
            Method::GET,
            &format!("/v1/sessions/{}/transcript", session.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{transcript}");
    let transcript: Transcript = serde_json::from_value(transcript).unwrap();
    let tools: Vec<ToolStatus> = transcript
        .messages
        .iter()
        .flat_map(|message| &message.parts)
        .filter_map(|part| match part {
            TranscriptPart::Tool(call) => Some(call.status),
            _ => None,
        })
        .collect();
    assert_eq!(tools, [ToolStatus::Cancelled], "{transcript:?}");
}
