//! The reference server end to end: real sockets, a real OpenCode, a scripted model.

mod support;

use std::time::Duration;

use futures::SinkExt;

use proliferate_core::auth::claims;
use proliferate_core::protocol::v1::*;
use reqwest::Method;
use serde_json::json;
use support::*;

/// A prompt whose answer streams `words` deltas, `delay_ms` apart.
fn streaming_prompt(words: usize, delay_ms: u64) -> String {
    let text: Vec<String> = (1..=words).map(|word| format!("w{word}")).collect();
    format!("[[delay:{delay_ms}]] [[say:{}]]", text.join(" "))
}

fn streamed_text(words: usize) -> String {
    (1..=words)
        .map(|word| format!("w{word}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_see_identical_streams_and_a_reconnect_loses_nothing() {
    let server = TestServer::start(&[]);
    let token = token("ada", "acme");
    let api = Api::new(&server, &token);
    let session = api.create_session().await;
    let mut first = connect(&server, &session.id, 0, &token).await;
    let mut second = connect(&server, &session.id, 0, &token).await;
    let mut reconnecting = connect(&server, &session.id, 0, &token).await;

    let admission = api
        .prompt(&session.id, "prm_long", &streaming_prompt(150, 20))
        .await;
    assert_eq!(admission.queue_position, 0);
    assert!(!admission.duplicate);

    // The third client drops mid-turn and comes back with its cursor.
    let early = read_until(&mut reconnecting, |frame| {
        matches!(
            event_of(frame).map(|envelope| &envelope.event),
            Some(Event::TextDelta(_))
        )
    })
    .await;
    let cursor = *seqs(&early).last().unwrap();
    drop(reconnecting);
    let mut reconnected = connect(&server, &session.id, cursor, &token).await;

    let first_frames = read_until(&mut first, |frame| is_turn_end(frame, "prm_long")).await;
    let second_frames = read_until(&mut second, |frame| is_turn_end(frame, "prm_long")).await;
    let late = read_until(&mut reconnected, |frame| is_turn_end(frame, "prm_long")).await;

    let events = |frames: &[(String, ServerFrame)]| -> Vec<String> {
        frames
            .iter()
            .filter(|(_, frame)| event_of(frame).is_some())
            .map(|(text, _)| text.clone())
            .collect()
    };
    assert_eq!(
        events(&first_frames),
        events(&second_frames),
        "two clients, byte-identical events"
    );
    let all = seqs(&first_frames);
    assert_eq!(
        all,
        (1..=*all.last().unwrap()).collect::<Vec<_>>(),
        "dense seqs from 1"
    );
    assert!(
        all.len() > 100,
        "the long turn streamed {} events",
        all.len()
    );

    let mut resumed = seqs(&early);
    resumed.extend(seqs(&late));
    assert_eq!(
        resumed, all,
        "the reconnect lost nothing and duplicated nothing"
    );
    assert!(matches!(late[0].1, ServerFrame::Welcome(_)));
    let replay_done = late
        .iter()
        .position(|(_, frame)| matches!(frame, ServerFrame::ReplayDone(_)))
        .expect("replay_done");
    assert!(seqs(&late[..replay_done]).iter().all(|seq| *seq > cursor));

    let (status, transcript) = api
        .call(
            Method::GET,
            &format!("/v1/sessions/{}/transcript", session.id),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let transcript: Transcript = serde_json::from_value(transcript).unwrap();
    assert_eq!(transcript.through_seq, *all.last().unwrap());
    let answer = transcript
        .messages
        .iter()
        .find(|message| message.role == Role::Assistant)
        .expect("an answer");
    assert!(
        answer.parts.iter().any(
            |part| matches!(part, TranscriptPart::Text(text) if text.text == streamed_text(150))
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_prompt_runs_once_and_bad_frames_get_errors_without_harm() {
    let server = TestServer::start(&[]);
    let token = token("ada", "acme");
    let api = Api::new(&server, &token);
    let session = api.create_session().await;
    let mut socket = connect(&server, &session.id, 0, &token).await;
    read_until(&mut socket, |frame| {
        matches!(frame, ServerFrame::ReplayDone(_))
    })
    .await;

    let mut frames = Vec::new();
    for expect_duplicate in [false, true] {
        send(
            &mut socket,
            json!({"type": "prompt", "prompt_id": "prm_once", "content": "[[say:only once]]"}),
        )
        .await;
        let read = read_until(&mut socket, |frame| {
            matches!(frame, ServerFrame::PromptAdmitted(_))
        })
        .await;
        let Some((_, ServerFrame::PromptAdmitted(admission))) = read.last() else {
            unreachable!()
        };
        assert_eq!(
            (admission.queue_position, admission.duplicate),
            (0, expect_duplicate)
        );
        frames.extend(read);
    }
    let again = api
        .prompt(&session.id, "prm_once", "[[say:only once]]")
        .await;
    assert!(again.duplicate);
    assert_eq!(
        again.queue_position, 0,
        "a retry returns the first admission"
    );

    send(&mut socket, json!("not an object")).await;
    socket
        .send(tokio_tungstenite::tungstenite::Message::text("{not json"))
        .await
        .unwrap();
    send(&mut socket, json!({"type": "teleport", "where": "mars"})).await;
    send(&mut socket, json!({"type": "prompt", "content": "no id"})).await;
    send(
        &mut socket,
        json!({"type": "prompt", "prompt_id": "big", "content": "x".repeat(1_100_000)}),
    )
    .await;
    send(&mut socket, json!({"type": "ping", "nonce": "still-alive"})).await;

    frames.extend(
        read_until(&mut socket, |frame| {
            matches!(frame, ServerFrame::Pong(pong) if pong.nonce.as_deref() == Some("still-alive"))
        })
        .await,
    );
    let errors: Vec<&ErrorFrame> = frames
        .iter()
        .filter_map(|(_, frame)| match frame {
            ServerFrame::Error(error) => Some(error),
            _ => None,
        })
        .collect();
    let codes: Vec<&ErrorCode> = errors.iter().map(|error| &error.code).collect();
    assert_eq!(
        codes,
        [
            &ErrorCode::BadRequest,
            &ErrorCode::BadRequest,
            &ErrorCode::BadRequest,
            &ErrorCode::BadRequest,
            &ErrorCode::PayloadTooLarge
        ],
        "{errors:#?}"
    );
    assert!(
        errors[2].message.contains("teleport"),
        "{}",
        errors[2].message
    );
    assert!(
        errors[3].message.contains("prompt_id"),
        "{}",
        errors[3].message
    );

    // The session survived and ran the prompt exactly once.
    let rest = read_until(&mut socket, |frame| is_turn_end(frame, "prm_once")).await;
    let all: Vec<&Event> = frames
        .iter()
        .chain(&rest)
        .filter_map(|(_, frame)| event_of(frame).map(|envelope| &envelope.event))
        .collect();
    let echoes = all
        .iter()
        .filter(
            |event| matches!(event, Event::UserMessage(message) if message.prompt_id == "prm_once"),
        )
        .count();
    let turns = all
        .iter()
        .filter(|event| matches!(event, Event::TurnStarted(_)))
        .count();
    assert_eq!((echoes, turns), (1, 1));
    let (_, page) = api
        .call(
            Method::GET,
            &format!("/v1/sessions/{}/events?after_seq=0&limit=5000", session.id),
            None,
        )
        .await;
    let page: EventPage = serde_json::from_value(page).unwrap();
    assert_eq!(
        page.events
            .iter()
            .filter(|envelope| matches!(envelope.event, Event::TurnStarted(_)))
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_cross_organisations_and_bad_tokens_are_refused() {
    let server = TestServer::start(&[]);
    let acme = token("ada", "acme");
    let session = Api::new(&server, &acme).create_session().await;
    let path = format!("/v1/sessions/{}", session.id);

    let other_org = Api::new(&server, &token("eve", "evil"));
    let (status, body) = other_org.call(Method::GET, &path, None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));

    let mut expired_claims = claims("ada", "acme", &[Scope::Read], Duration::ZERO);
    expired_claims.exp -= 10;
    let expired = authenticator().mint(&expired_claims);
    let (status, body) = Api::new(&server, &expired)
        .call(Method::GET, &path, None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("token_expired"))
    );

    let mut tampered = acme.clone();
    tampered.pop();
    tampered.push(if acme.ends_with('A') { 'B' } else { 'A' });
    let (status, body) = Api::new(&server, &tampered)
        .call(Method::GET, &path, None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    assert_eq!(
        Api::new(&server, "").call(Method::GET, &path, None).await.0,
        401
    );

    for bad in [token("eve", "evil"), expired.clone(), tampered.clone()] {
        let refused = try_connect(&server, &session.id, 0, &bad).await;
        assert!(refused.is_err(), "the socket refused a bad token");
    }

    // First-frame auth: a good token works, a bad one is closed with 1008.
    let url = server.websocket_url(&session.id, 0);
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    send(&mut socket, json!({"type": "auth", "token": acme})).await;
    let welcome = receive(&mut socket, Duration::from_secs(30)).await;
    assert!(
        matches!(welcome, Received::Frame(_, ref frame) if matches!(**frame, ServerFrame::Welcome(_))),
        "{welcome:?}"
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    send(
        &mut socket,
        json!({"type": "auth", "token": token("eve", "evil")}),
    )
    .await;
    let Received::Frame(_, frame) = receive(&mut socket, Duration::from_secs(10)).await else {
        panic!("an error frame first");
    };
    let ServerFrame::Error(error) = *frame else {
        panic!("an error frame first, not {frame:?}");
    };
    assert_eq!(error.code, ErrorCode::NotFound);
    let Received::Closed(Some(close)) = receive(&mut socket, Duration::from_secs(10)).await else {
        panic!("then a close");
    };
    assert_eq!(u16::from(close.code), 1008);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_while_the_other_gets_everything() {
    let server = TestServer::start(&["--send-budget", "64", "--socket-send-buffer", "16384"]);
    let token = token("ada", "acme");
    let api = Api::new(&server, &token);
    let session = api.create_session().await;
    let mut reader = connect(&server, &session.id, 0, &token).await;
    let mut stalled = connect_with_small_buffer(&server, &session.id, &token).await;
    read_until(&mut stalled, |frame| {
        matches!(frame, ServerFrame::ReplayDone(_))
    })
    .await;

    api.prompt(&session.id, "prm_flood", &streaming_prompt(3000, 0))
        .await;
    let is_delta = |frame: &ServerFrame| {
        matches!(
            event_of(frame).map(|envelope| &envelope.event),
            Some(Event::TextDelta(_))
        )
    };
    let mut deltas = 0;
    let mut frames = read_until(&mut reader, |frame| {
        deltas += usize::from(is_delta(frame));
        deltas == 1500
    })
    .await;

    // The stalled client, far over its budget of 64 frames, was cut off with 1013.
    let close = loop {
        match receive(&mut stalled, Duration::from_secs(30)).await {
            Received::Frame(..) => continue,
            Received::Closed(close) => break close,
        }
    };
    let close = close.expect("a close frame");
    assert_eq!(u16::from(close.code), 1013);
    assert_eq!(close.reason.as_str(), "slow_consumer");

    // The reading client got everything.
    frames.extend(read_until(&mut reader, |frame| is_turn_end(frame, "prm_flood")).await);
    let deltas = frames.iter().filter(|(_, frame)| is_delta(frame)).count();
    assert_eq!(deltas, 3000, "the reading client got every delta");
    let all = seqs(&frames);
    assert_eq!(all, (1..=*all.last().unwrap()).collect::<Vec<_>>());
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("proliferate_slow_consumer_closes_total 1"),
        "{metrics}"
    );
    // Every event's way through the hub is measured: each one persisted, and the flushes to
    // the reading client's socket.
    let value = |series: &str| -> u64 {
        let line = metrics.lines().find(|line| line.starts_with(series));
        let value = line.and_then(|line| line.rsplit(' ').next()?.parse().ok());
        value.unwrap_or_else(|| panic!("{series} in {metrics}"))
    };
    let name = "proliferate_event_latency_seconds";
    let persisted = value(&format!("{name}_count{{stage=\"persisted\"}}"));
    assert!(persisted >= *all.last().unwrap(), "{metrics}");
    let sent = value(&format!("{name}_count{{stage=\"sent\"}}"));
    assert!(sent > 0 && sent <= 2 * persisted, "{metrics}");
    assert_eq!(
        value(&format!("{name}_bucket{{stage=\"sent\",le=\"+Inf\"}}")),
        sent
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_permission_gets_the_default() {
    let server = TestServer::start(&[
        "--permission",
        r#"{"bash":"ask"}"#,
        "--permission-timeout-secs",
        "2",
    ]);
    let token = token("ada", "acme");
    let api = Api::new(&server, &token);
    let session = api.create_session().await;
    let mut socket = connect(&server, &session.id, 0, &token).await;
    api.prompt(&session.id, "prm_ask", "[[bash:echo never > never.txt]]")
        .await;
    let frames = read_until(&mut socket, |frame| is_turn_end(frame, "prm_ask")).await;
    let requested = frames
        .iter()
        .find_map(
            |(_, frame)| match event_of(frame).map(|envelope| &envelope.event) {
                Some(Event::PermissionRequested(requested)) => Some(requested.clone()),
                _ => None,
            },
        )
        .expect("permission_requested");
    assert_eq!(requested.default_decision, PermissionDecision::Reject);
    let resolved = frames
        .iter()
        .find_map(
            |(_, frame)| match event_of(frame).map(|envelope| &envelope.event) {
                Some(Event::PermissionResolved(resolved)) => Some(resolved.clone()),
                _ => None,
            },
        )
        .expect("permission_resolved");
    assert_eq!(resolved.permission_id, requested.permission_id);
    assert!(resolved.timed_out);
    assert_eq!(resolved.decision, PermissionDecision::Reject);
    assert!(
        !server
            .data_dir
            .join("sessions")
            .join(&session.id)
            .join("workspace/never.txt")
            .exists()
    );
    let late = api
        .call(
            Method::POST,
            &format!(
                "/v1/sessions/{}/permissions/{}",
                session.id, requested.permission_id
            ),
            Some(json!({"decision": "once"})),
        )
        .await;
    assert_eq!((late.0, late.1["code"].as_str()), (409, Some("conflict")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_pauses_and_resumes_on_connect() {
    let server = TestServer::start(&["--idle-grace-secs", "2"]);
    let token = token("ada", "acme");
    let api = Api::new(&server, &token);
    let session = api.create_session().await;
    let mut socket = connect(&server, &session.id, 0, &token).await;
    api.prompt(&session.id, "prm_first", "[[say:remember me]]")
        .await;
    let frames = read_until(&mut socket, |frame| is_turn_end(frame, "prm_first")).await;
    let cursor = *seqs(&frames).last().unwrap();
    drop(socket);
    let paused = api
        .wait_for_status(&session.id, SessionStatus::Paused)
        .await;
    assert_eq!(paused.status_reason.as_deref(), Some("idle"));

    let mut socket = connect(&server, &session.id, cursor, &token).await;
    let frames = read_until(&mut socket, |frame| {
        matches!(event_of(frame).map(|envelope| &envelope.event), Some(Event::StatusChanged(changed)) if changed.status == SessionStatus::Running)
    }).await;
    let statuses: Vec<SessionStatus> = frames
        .iter()
        .filter_map(
            |(_, frame)| match event_of(frame).map(|envelope| &envelope.event) {
                Some(Event::StatusChanged(changed)) => Some(changed.status),
                _ => None,
            },
        )
        .collect();
    assert_eq!(
        statuses,
        [
            SessionStatus::Pausing,
            SessionStatus::Paused,
            SessionStatus::Resuming,
            SessionStatus::Running
        ]
    );
    api.prompt(&session.id, "prm_second", "[[say:still here]]")
        .await;
    read_until(&mut socket, |frame| is_turn_end(frame, "prm_second")).await;
    let (_, transcript) = api
        .call(
            Method::GET,
            &format!("/v1/sessions/{}/transcript", session.id),
            None,
        )
        .await;
    let transcript: Transcript = serde_json::from_value(transcript).unwrap();
    assert_eq!(
        transcript
            .messages
            .iter()
            .filter(|message| message.role == Role::User)
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_restarts_and_clients_resume_from_their_cursor() {
    let mut server = TestServer::start(&[]);
    let token = token("ada", "acme");
    let api = Api::new(&server, &token);
    let session = api.create_session().await;
    let mut socket = connect(&server, &session.id, 0, &token).await;
    api.prompt(&session.id, "prm_crash", &streaming_prompt(150, 20))
        .await;
    let before = read_until(&mut socket, |frame| {
        matches!(
            event_of(frame).map(|envelope| &envelope.event),
            Some(Event::TextDelta(_))
        )
    })
    .await;
    let cursor = *seqs(&before).last().unwrap();
    server.kill();
    assert!(matches!(
        receive(&mut socket, Duration::from_secs(10)).await,
        Received::Closed(_) | Received::Frame(..)
    ));

    server.restart();
    let api = Api::new(&server, &token);
    let mut socket = connect(&server, &session.id, cursor, &token).await;
    let after = read_until(&mut socket, |frame| is_turn_end(frame, "prm_crash")).await;
    let mut seen = seqs(&before);
    seen.extend(seqs(&after));
    assert_eq!(
        seen,
        (1..=*seen.last().unwrap()).collect::<Vec<_>>(),
        "no gap and no duplicate across the crash"
    );
    let errors = after.iter().filter(|(_, frame)| matches!(event_of(frame).map(|envelope| &envelope.event), Some(Event::AgentError(error)) if error.kind == "agent_exited")).count();
    assert_eq!(errors, 1, "the interrupted turn is reported");

    api.prompt(&session.id, "prm_after", "[[say:back again]]")
        .await;
    let frames = read_until(&mut socket, |frame| is_turn_end(frame, "prm_after")).await;
    assert!(frames.iter().any(|(_, frame)| matches!(
        event_of(frame).map(|envelope| &envelope.event),
        Some(Event::TurnCompleted(_))
    )));
    assert_eq!(
        api.session(&session.id).await.status,
        SessionStatus::Running
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_resumes_from_last_event_id_and_the_system_routes_answer() {
    let server = TestServer::start(&[]);
    let token = token("ada", "acme");
    let api = Api::new(&server, &token);
    let session = api.create_session().await;
    let mut socket = connect(&server, &session.id, 0, &token).await;
    api.prompt(&session.id, "prm_sse", "[[say:over server sent events]]")
        .await;
    let frames = read_until(&mut socket, |frame| is_turn_end(frame, "prm_sse")).await;
    let head = *seqs(&frames).last().unwrap();

    let response = api
        .http
        .get(format!("{}/v1/sessions/{}/events", server.base, session.id))
        .bearer_auth(&token)
        .header("accept", "text/event-stream")
        .header("last-event-id", "3")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["cache-control"],
        "no-cache, no-transform"
    );
    let mut body = response.bytes_stream();
    let mut text = String::new();
    while !text.contains("event: replay_done") {
        let chunk =
            tokio::time::timeout(Duration::from_secs(30), futures::StreamExt::next(&mut body))
                .await
                .expect("SSE data in time")
                .expect("open")
                .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let ids: Vec<u64> = text
        .lines()
        .filter_map(|line| {
            line.strip_prefix("id: ")
                .or_else(|| line.strip_prefix("id:"))
        })
        .map(|id| id.trim().parse().unwrap())
        .collect();
    assert_eq!(
        ids,
        (4..=head).collect::<Vec<_>>(),
        "SSE resumed after Last-Event-ID"
    );
    assert!(text.contains("event: welcome") && text.contains("event: text_delta"));

    for path in ["/healthz", "/readyz", "/v1/openapi.json", "/metrics"] {
        let response = reqwest::get(format!("{}{path}", server.base))
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let openapi: serde_json::Value = reqwest::get(format!("{}/v1/openapi.json", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(openapi["paths"]["/v1/sessions/{id}/messages"]["post"].is_object());
    assert!(openapi["components"]["schemas"]["SessionInfo"].is_object());

    let (status, health) = api
        .call(
            Method::GET,
            &format!("/v1/sessions/{}/agent/global/health", session.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "the agent proxy reaches OpenCode: {health}");
    assert_eq!(health["healthy"], true);
    // `opencode attach <url> --password <token>` sends HTTP Basic auth.
    let basic = api
        .http
        .get(format!(
            "{}/v1/sessions/{}/agent/global/health",
            server.base, session.id
        ))
        .basic_auth("opencode", Some(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 200);
    let unauthenticated = reqwest::get(format!(
        "{}/v1/sessions/{}/agent/global/health",
        server.base, session.id
    ))
    .await
    .unwrap();
    assert_eq!(unauthenticated.status(), 401);
}
