//! Limits the server keeps against clients that ask for too much (`docs/configuration.md`,
//! *Limits*): each is refused with its code, with a control that normal use still works.

mod support;

use proliferate_core::protocol::v1::*;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

use futures::SinkExt;
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
    let frames = read_until(&mut stalled, |frame| {
        matches!(frame, ServerFrame::ReplayDone(_))
    })
    .await;
    let ServerFrame::Welcome(welcome) = &frames[0].1 else {
        panic!("the first frame is not a welcome: {frames:#?}");
    };
    let stalled_id = welcome.connection_id.clone();

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
    let (mut known, mut peak) = (KnownConnections::default(), 0);
    let mut left = |frame: &ServerFrame| {
        known.follow(frame);
        peak = peak.max(known.count());
        matches!(frame, ServerFrame::PresenceChanged(change) if change.left.contains(&stalled_id))
    };
    if !frames.iter().any(|(_, frame)| left(frame)) {
        frames.extend(read_until(&mut reader, &mut left).await);
    }
    assert_eq!(peak, 2, "control: both clients were connected");
    assert_eq!(known.count(), 1, "the stalled client left");
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

/// A raw connection to the server from `source`, a loopback address, that sends nothing yet.
async fn open_from(server: &TestServer, source: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let address = server.base.trim_start_matches("http://").parse().unwrap();
    socket.connect(address).await.expect("the server accepts")
}

/// Sends a health check on `stream` and returns the status line of its answer.
async fn health_on(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: gateway\r\n\r\n")
        .await
        .unwrap();
    first_line(stream).await
}

/// The first line the server sends on `stream` (empty if it closes without a word).
async fn first_line(stream: &mut TcpStream) -> String {
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(stream);
    tokio::time::timeout(Duration::from_secs(30), reader.read_line(&mut line))
        .await
        .expect("an answer")
        .unwrap_or_default();
    line
}

/// Everything the server sends on `stream` until it closes it.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .unwrap_or_default();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limits_are_refused_and_their_places_come_back() {
    let server = TestServer::start(&[
        "--max-connections",
        "5",
        "--max-connections-per-address",
        "3",
    ]);
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(open_from(&server, "127.0.0.1").await);
    }
    let answer = until_closed(&mut open_from(&server, "127.0.0.1").await).await;
    assert!(
        answer.starts_with("HTTP/1.1 429") && answer.contains(r#""code":"limit_exceeded""#),
        "{answer}"
    );

    // Another address has places of its own, up to the server's total.
    let mut second = [
        open_from(&server, "127.0.0.2").await,
        open_from(&server, "127.0.0.2").await,
    ];
    assert!(health_on(&mut second[0]).await.starts_with("HTTP/1.1 200"));
    let answer = until_closed(&mut open_from(&server, "127.0.0.3").await).await;
    assert!(
        answer.starts_with("HTTP/1.1 503") && answer.contains(r#""code":"unavailable""#),
        "{answer}"
    );

    // Control: closed connections give their places back.
    drop(first);
    drop(second);
    let mut served = false;
    for _ in 0..100 {
        if health_on(&mut open_from(&server, "127.0.0.1").await)
            .await
            .starts_with("HTTP/1.1 200")
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "the places of closed connections came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_half_a_request_or_nothing_is_closed_after_the_header_read_timeout() {
    let server = TestServer::start(&["--header-read-timeout-secs", "2"]);
    let started = std::time::Instant::now();
    let mut half = open_from(&server, "127.0.0.1").await;
    half.write_all(b"GET /healthz HTTP/1.1\r\nhost: gateway\r\n")
        .await
        .unwrap();
    let mut silent = open_from(&server, "127.0.0.1").await;
    let mut kept_alive = open_from(&server, "127.0.0.1").await;
    assert!(health_on(&mut kept_alive).await.starts_with("HTTP/1.1 200"));

    for stream in [&mut half, &mut silent, &mut kept_alive] {
        let answer = until_closed(stream).await;
        assert!(!answer.contains("200 OK"), "{answer}");
    }
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "not before the timeout"
    );

    // Control: a request sent whole within the timeout is answered.
    let mut whole = open_from(&server, "127.0.0.1").await;
    assert!(health_on(&mut whole).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organisation_holds_at_most_its_share_of_open_streams() {
    let server = TestServer::start(&["--max-connections-per-organization", "2"]);
    let acme = token("ada", "acme-streams");
    let api = Api::new(&server, &acme);
    let session = api.create_session().await;
    let mut open = vec![
        connect(&server, &session.id, 0, &acme).await,
        connect(&server, &session.id, 0, &acme).await,
    ];
    for socket in &mut open {
        let Received::Frame(_, welcome) = receive(socket, Duration::from_secs(30)).await else {
            panic!("a welcome");
        };
        assert!(matches!(*welcome, ServerFrame::Welcome(_)));
    }

    let mut third = connect(&server, &session.id, 0, &acme).await;
    let Received::Frame(_, refusal) = receive(&mut third, Duration::from_secs(30)).await else {
        panic!("an error frame");
    };
    assert!(
        matches!(&*refusal, ServerFrame::Error(error) if error.code == ErrorCode::LimitExceeded),
        "{refusal:?}"
    );
    let Received::Closed(Some(close)) = receive(&mut third, Duration::from_secs(30)).await else {
        panic!("a close");
    };
    assert_eq!(
        (u16::from(close.code), close.reason.as_str()),
        (1013, "limit_exceeded")
    );
    let sse = api
        .http
        .get(format!("{}/v1/sessions/{}/events", api.base, session.id))
        .bearer_auth(&acme)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(
        sse.status(),
        429,
        "an event stream over HTTP is refused too"
    );

    // Control: another organisation is unaffected, and a closed stream frees its place.
    let globex = token("grace", "globex-streams");
    let other = Api::new(&server, &globex).create_session().await;
    let mut theirs = connect(&server, &other.id, 0, &globex).await;
    assert!(matches!(
        receive(&mut theirs, Duration::from_secs(30)).await,
        Received::Frame(_, frame) if matches!(*frame, ServerFrame::Welcome(_))
    ));
    drop(open.pop());
    let mut welcomed = false;
    for _ in 0..100 {
        let mut again = connect(&server, &session.id, 0, &acme).await;
        if let Received::Frame(_, frame) = receive(&mut again, Duration::from_secs(30)).await
            && matches!(*frame, ServerFrame::Welcome(_))
        {
            welcomed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(welcomed, "a closed stream's place came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_may_send_little_before_it_authenticates_and_much_after() {
    let server = TestServer::start(&["--heartbeat-secs", "60"]);
    let token = token("ada", "acme-preauth");
    let session = Api::new(&server, &token).create_session().await;
    let url = server.websocket_url(&session.id, 0);

    // A megabyte in place of the auth frame: the server stops reading at 64 KiB and says so (a
    // frame it had read whole would be `unauthenticated`: not an auth frame).
    let (mut attacker, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let _ = attacker
        .send(tokio_tungstenite::tungstenite::Message::text(
            "x".repeat(1 << 20),
        ))
        .await;
    let answer = receive(&mut attacker, Duration::from_secs(30)).await;
    assert!(
        matches!(&answer, Received::Frame(_, frame)
            if matches!(&**frame, ServerFrame::Error(error) if error.code == ErrorCode::PayloadTooLarge)),
        "{answer:?}"
    );

    // Control: an auth frame first, then a prompt of 200 KiB, far past what was allowed before.
    let (mut browser, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    send(&mut browser, json!({"type": "auth", "token": token})).await;
    let content = format!("[[say:done]] {}", "y".repeat(200 * 1024));
    send(
        &mut browser,
        json!({"type": "prompt", "prompt_id": "prm_large", "content": content}),
    )
    .await;
    let frames = read_until(&mut browser, |frame| {
        matches!(frame, ServerFrame::PromptAdmitted(admitted) if admitted.prompt_id == "prm_large")
            || matches!(frame, ServerFrame::Error(_))
    })
    .await;
    assert!(
        matches!(frames.last(), Some((_, ServerFrame::PromptAdmitted(_)))),
        "{:?}",
        frames.last()
    );
}
