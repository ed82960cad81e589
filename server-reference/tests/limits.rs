//! Limits the server keeps against clients that ask for too much (`docs/configuration.md`,
//! *Limits*): each is refused with its code, with a control that normal use still works.

mod support;

use proliferate_core::protocol::v1::*;
use reqwest::Method;
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_prompt_queue_refuses_new_prompts_but_not_retries() {
    let server = TestServer::start(&["--max-queued-prompts", "2"]);
    let api = Api::new(&server, &token("ada", "acme-queue"));
    let session = api.create_session().await;
    api.wait_for_status(&session.id, SessionStatus::Running)
        .await;
    let send = |prompt_id: &'static str| {
        let path = format!("/v1/sessions/{}/messages", session.id);
        let api = &api;
        async move {
            api.call(
                Method::POST,
                &path,
                Some(json!({"prompt_id": prompt_id, "content": "[[say:queued]]"})),
            )
            .await
        }
    };
    // One turn runs and holds the queue behind it.
    api.prompt(&session.id, "prm_running", "[[stall]]").await;
    api.prompt(&session.id, "prm_1", "[[say:one]]").await;
    api.prompt(&session.id, "prm_2", "[[say:two]]").await;

    let (status, problem) = send("prm_3").await;
    assert_eq!(
        (status, &problem["code"]),
        (429, &json!("limit_exceeded")),
        "{problem}"
    );
    let (status, retry) = send("prm_2").await;
    assert_eq!(
        (status, &retry["duplicate"]),
        (202, &json!(true)),
        "a retry is no new prompt"
    );

    // Control: once a place is free, the next prompt is admitted.
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/v1/sessions/{}/messages/prm_1", session.id),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, admitted) = send("prm_3").await;
    assert_eq!(
        (status, &admitted["duplicate"]),
        (202, &json!(false)),
        "{admitted}"
    );
    api.cancel(&session.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_pings_but_takes_nothing_is_cut_after_the_send_stall_timeout() {
    // A send budget no turn here fills, and a liveness timeout (three heartbeats) longer than the
    // test: only the stall timeout can cut the client.
    let server = TestServer::start(&[
        "--heartbeat-secs",
        "60",
        "--send-budget",
        "1000000",
        "--socket-send-buffer",
        "16384",
        "--send-stall-secs",
        "2",
    ]);
    let token = token("ada", "acme-stall");
    let api = Api::new(&server, &token);
    let session = api.create_session().await;
    let mut reader = connect(&server, &session.id, 0, &token).await;
    let mut stalled = connect_with_small_buffer(&server, &session.id, &token).await;
    read_until(&mut stalled, |frame| {
        matches!(frame, ServerFrame::ReplayDone(_))
    })
    .await;

    // Far more than the stalled client's buffers hold.
    let words: Vec<String> = (1..=3000).map(|word| format!("w{word}")).collect();
    let prompt = format!("[[delay:0]] [[say:{}]]", words.join(" "));
    api.prompt(&session.id, "prm_flood", &prompt).await;
    // The stalled client keeps pinging, so it is alive, while it takes nothing.
    let pinger = tokio::spawn(async move {
        use futures::SinkExt;
        loop {
            let ping = tokio_tungstenite::tungstenite::Message::Ping(Vec::new().into());
            if stalled.send(ping).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    });
    // The reading client gets the whole turn, then sees the stalled one leave.
    let mut frames = read_until(&mut reader, |frame| is_turn_end(frame, "prm_flood")).await;
    let mut peak = 0;
    let mut left = |frame: &ServerFrame| match frame {
        ServerFrame::Presence(presence) => {
            peak = peak.max(presence.connections.len());
            peak == 2 && presence.connections.len() == 1
        }
        _ => false,
    };
    if !frames.iter().any(|(_, frame)| left(frame)) {
        frames.extend(read_until(&mut reader, left).await);
    }
    assert_eq!(peak, 2, "control: both clients were connected");
    let deltas = frames
        .iter()
        .filter(|(_, frame)| {
            matches!(
                event_of(frame).map(|envelope| &envelope.event),
                Some(Event::TextDelta(_))
            )
        })
        .count();
    assert_eq!(deltas, 3000, "the reading client got every delta");
    pinger.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organisation_runs_at_most_its_share_of_live_sessions() {
    let server = TestServer::start(&["--max-live-sessions-per-organization", "1"]);
    let api = Api::new(&server, &token("ada", "acme-cap"));
    let create = || {
        api.call(
            Method::POST,
            "/v1/sessions",
            Some(json!({"title": "capped"})),
        )
    };
    let first = api.create_session().await;
    api.wait_for_status(&first.id, SessionStatus::Running).await;
    let (status, problem) = create().await;
    assert_eq!(
        (status, &problem["code"]),
        (429, &json!("limit_exceeded")),
        "{problem}"
    );
    let elsewhere = Api::new(&server, &token("eve", "elsewhere-cap"));
    elsewhere.create_session().await;

    // A paused session frees its place; the other then holds it.
    let lifecycle = |session_id: &str, action: &str| {
        let path = format!("/v1/sessions/{session_id}/{action}");
        let api = &api;
        async move { api.call(Method::POST, &path, None).await }
    };
    assert_eq!(lifecycle(&first.id, "pause").await.0, 200);
    let (status, second) = create().await;
    assert_eq!(status, 201, "control: a place is free again: {second}");
    let second: SessionInfo = serde_json::from_value(second).unwrap();
    api.wait_for_status(&second.id, SessionStatus::Running)
        .await;
    let (status, problem) = lifecycle(&first.id, "resume").await;
    assert_eq!(
        (status, &problem["code"]),
        (429, &json!("limit_exceeded")),
        "{problem}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_event_past_the_size_limit_is_cut_and_a_small_one_is_not() {
    let limit = 8192;
    let server = TestServer::start(&["--max-event-bytes", "8192", "--heartbeat-secs", "60"]);
    let token = token("ada", "acme-event-size");
    let api = Api::new(&server, &token);
    let session = api.create_session().await;
    let mut socket = connect(&server, &session.id, 0, &token).await;
    let tool_output = |frames: &[(String, ServerFrame)]| {
        frames
            .iter()
            .find_map(
                |(_, frame)| match event_of(frame).map(|envelope| &envelope.event) {
                    Some(Event::ToolCompleted(tool)) => Some(tool.output.clone()),
                    _ => None,
                },
            )
            .expect("a completed tool call")
    };

    api.prompt(
        &session.id,
        "prm_big",
        "[[bash:head -c 20000 /dev/zero | tr '\\0' a]]",
    )
    .await;
    let frames = read_until(&mut socket, |frame| is_turn_end(frame, "prm_big")).await;
    let largest = frames.iter().map(|(text, _)| text.len()).max().unwrap_or(0);
    assert!(
        largest <= limit,
        "a frame of {largest} bytes passed the limit"
    );
    let output = tool_output(&frames);
    assert!(
        output.starts_with("aaaa") && output.ends_with(proliferate_core::hub::fit::CUT_MARK),
        "{output}"
    );

    // Control: a small output arrives whole.
    api.prompt(&session.id, "prm_small", "[[bash:echo small-output]]")
        .await;
    let frames = read_until(&mut socket, |frame| is_turn_end(frame, "prm_small")).await;
    assert_eq!(tool_output(&frames).trim(), "small-output");
}
