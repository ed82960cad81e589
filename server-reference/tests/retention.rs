//! Retention (`docs/protocol.md` sections 3 and 11): a log that keeps only a session's newest
//! events drops the older ones with the transcript kept in their place, so a client behind them
//! gets `reset` with the transcript, the events page answers `410 cursor_expired`, and the
//! transcript stays whole across a restart.

mod support;

use proliferate_core::protocol::v1::*;
use reqwest::Method;
use serde_json::json;
use support::*;

/// The session's transcript, as the server folds it.
async fn transcript(api: &Api, session_id: &str) -> Transcript {
    let path = format!("/v1/sessions/{session_id}/transcript");
    let (status, body) = api.call(Method::GET, &path, None).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_events_go_and_clients_behind_them_are_reset_with_the_whole_transcript() {
    let mut server = TestServer::start(&["--retained-events", "20"]);
    let token = token("ada", "acme-retention");
    let api = Api::new(&server, &token);
    let session = api.create_session().await;
    let words: Vec<String> = (1..=100).map(|word| format!("w{word}")).collect();
    let text = words.join(" ");
    api.prompt(
        &session.id,
        "prm_long",
        &format!("[[delay:0]] [[say:{text}]]"),
    )
    .await;
    let mut socket = connect(&server, &session.id, 0, &token).await;
    read_until(&mut socket, |frame| is_turn_end(frame, "prm_long")).await;
    let whole = transcript(&api, &session.id).await;
    assert!(
        serde_json::to_string(&whole).unwrap().contains(&text),
        "control: the transcript holds the whole answer"
    );

    // The events page no longer reaches back to the start...
    let events = |after_seq: u64| {
        let path = format!("/v1/sessions/{}/events?after_seq={after_seq}", session.id);
        let api = &api;
        async move { api.call(Method::GET, &path, None).await }
    };
    let (status, problem) = events(0).await;
    assert_eq!(
        (status, &problem["code"]),
        (410, &json!("cursor_expired")),
        "{problem}"
    );
    let head = whole.through_seq;
    let (status, page) = events(head - 5).await;
    assert_eq!(status, 200, "control: recent events are kept: {page}");
    assert_eq!(page["events"].as_array().unwrap().len(), 5);

    // ...so a client that starts there is reset with the whole transcript.
    let mut behind = connect(&server, &session.id, 0, &token).await;
    let frames = read_until(&mut behind, |frame| {
        matches!(frame, ServerFrame::ReplayDone(_))
    })
    .await;
    let reset = frames
        .iter()
        .find_map(|(_, frame)| match frame {
            ServerFrame::Reset(reset) => Some(reset.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no reset: {frames:#?}"));
    assert_eq!(reset.reason, "cursor_expired");
    // The log holds the newest 20 events, and at most a quarter more before it drops again.
    let kept = head + 1 - reset.earliest_seq;
    assert!((20..25).contains(&kept), "{kept} kept: {reset:?}");
    assert_eq!(reset.transcript, whole);
    assert!(
        frames
            .iter()
            .all(|(_, frame)| event_of(frame).is_none_or(|envelope| envelope.seq > head)),
        "nothing the transcript already holds is replayed"
    );

    // The transcript outlives the dropped events and the process.
    server.terminate();
    server.restart();
    let api = Api::new(&server, &token);
    // (The restart itself adds a status change, no message.)
    assert_eq!(transcript(&api, &session.id).await.messages, whole.messages);
}
