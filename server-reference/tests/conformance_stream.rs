//! `docs/protocol.md` on its streams, taken at its word: the WebSocket (sections 1 to 4, 6.3, 6.4,
//! 7, 8.1 and 10) and Server-Sent Events (11.1), against the real server (a real OpenCode, the
//! scripted model). Each test quotes the promises it checks.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::stream::BoxStream;
use futures::{SinkExt, StreamExt};
use proliferate_core::auth::claims;
use proliferate_core::protocol::v1::*;
use reqwest::Method;
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as SocketError, Message};

/// How long any single wait of these tests may take before it fails.
const DEADLINE: Duration = Duration::from_secs(90);

/// Now, in milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The socket route of `session_id` with a raw query (`""` or `"?..."`).
fn ws_url(server: &TestServer, session_id: &str, query: &str) -> String {
    format!(
        "{}/v1/sessions/{session_id}/ws{query}",
        server.base.replacen("http://", "ws://", 1)
    )
}

/// Opens a socket, with a bearer header when `bearer` is given.
async fn open(url: &str, bearer: Option<&str>) -> Result<Socket, SocketError> {
    let mut request = url.into_client_request().unwrap();
    if let Some(token) = bearer {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// A token with exactly `scopes`, optionally restricted to the session `sid`.
fn scoped_token(subject: &str, scopes: &[Scope], sid: Option<&str>) -> String {
    let mut claims = claims(subject, "acme", scopes, Duration::from_secs(3600));
    claims.sid = sid.map(str::to_owned);
    authenticator().mint(&claims)
}

/// The HTTP answer of a refused upgrade: status and problem body.
fn refusal(result: Result<Socket, SocketError>) -> (u16, Value) {
    match result {
        Err(SocketError::Http(response)) => (
            response.status().as_u16(),
            response
                .body()
                .as_deref()
                .and_then(|body| serde_json::from_slice(body).ok())
                .unwrap_or(Value::Null),
        ),
        Err(other) => panic!("refused without an HTTP answer: {other}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

/// Like `read_until`, but sends a `ping` frame every 500 ms while it waits, as §10.1 asks of
/// clients, so the gateway's liveness check never cuts the connection.
async fn read_pinging<S>(
    socket: &mut WebSocketStream<S>,
    mut until: impl FnMut(&ServerFrame) -> bool,
) -> Vec<(String, ServerFrame)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = Instant::now() + DEADLINE;
    let mut keepalive = tokio::time::interval(Duration::from_millis(500));
    let mut frames = Vec::new();
    loop {
        tokio::select! {
            _ = keepalive.tick() => {
                let ping = json!({"type": "ping", "nonce": "keepalive"}).to_string();
                socket.send(Message::text(ping)).await.expect("ping");
            }
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let frame: ServerFrame = serde_json::from_str(&text).expect("a server frame");
                    let stop = until(&frame);
                    frames.push((text.to_string(), frame));
                    if stop {
                        return frames;
                    }
                }
                Some(Ok(Message::Close(close))) => panic!(
                    "closed ({close:?}) after {} frames: {:#?}",
                    frames.len(),
                    frames.last()
                ),
                Some(Ok(_)) => {}
                Some(Err(error)) => panic!("the socket failed: {error}"),
                None => panic!("the socket ended after {} frames", frames.len()),
            },
            () = tokio::time::sleep_until(deadline) => panic!(
                "nothing matched within {DEADLINE:?}; the last frames: {:#?}",
                &frames[frames.len().saturating_sub(5)..]
            ),
        }
    }
}

/// Sends `ping` with `nonce` and reads until its `pong`: proof the connection is open and has
/// handled every frame sent before (§4: "Frames are handled in the order received").
async fn ping_pong<S>(socket: &mut WebSocketStream<S>, nonce: &str) -> Vec<(String, ServerFrame)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ping = json!({"type": "ping", "nonce": nonce}).to_string();
    socket.send(Message::text(ping)).await.expect("ping");
    read_pinging(
        socket,
        |frame| matches!(frame, ServerFrame::Pong(pong) if pong.nonce.as_deref() == Some(nonce)),
    )
    .await
}

/// The next frame or close, sending nothing; `None` when nothing came within `limit`.
async fn next_quietly<S>(socket: &mut WebSocketStream<S>, limit: Duration) -> Option<Received>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tokio::time::timeout(limit, receive(socket, limit + DEADLINE))
        .await
        .ok()
}

/// Reads, sending nothing, until the gateway closes; the frames before and the close.
async fn until_closed<S>(
    socket: &mut WebSocketStream<S>,
    limit: Duration,
) -> (Vec<ServerFrame>, Option<CloseFrame>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = Instant::now() + limit;
    let mut frames = Vec::new();
    loop {
        match next_quietly(socket, deadline.saturating_duration_since(Instant::now())).await {
            Some(Received::Frame(_, frame)) => frames.push(*frame),
            Some(Received::Closed(close)) => return (frames, close),
            None => panic!("not closed within {limit:?}; frames: {frames:#?}"),
        }
    }
}

/// Close code and reason.
fn close_of(close: &Option<CloseFrame>) -> (u16, String) {
    let close = close.as_ref().expect("a close frame");
    (u16::from(close.code), close.reason.to_string())
}

/// Opens a socket without any token and sends `{"type":"auth"}` with `token` as first frame.
async fn auth_by_first_frame(server: &TestServer, session_id: &str, token: &str) -> Socket {
    let mut socket = open(&ws_url(server, session_id, "?source=web"), None)
        .await
        .expect("the upgrade itself needs no token");
    send(&mut socket, json!({"type": "auth", "token": token})).await;
    socket
}

fn is_replay_done(frame: &ServerFrame) -> bool {
    matches!(frame, ServerFrame::ReplayDone(_))
}

fn is_presence(frame: &ServerFrame) -> bool {
    matches!(frame, ServerFrame::Presence(_))
}

fn is_presence_changed(frame: &ServerFrame) -> bool {
    matches!(frame, ServerFrame::PresenceChanged(_))
}

fn is_admitted(frame: &ServerFrame, prompt_id: &str) -> bool {
    matches!(frame, ServerFrame::PromptAdmitted(admitted) if admitted.prompt_id == prompt_id)
}

fn is_turn_started(frame: &ServerFrame, prompt_id: &str) -> bool {
    matches!(event_of(frame).map(|envelope| &envelope.event),
        Some(Event::TurnStarted(turn)) if turn.prompt_id == prompt_id)
}

/// The frames other than heartbeats and keep-alive pongs, which may come at any time.
fn significant(frames: &[(String, ServerFrame)]) -> Vec<&ServerFrame> {
    frames
        .iter()
        .map(|(_, frame)| frame)
        .filter(|frame| match frame {
            ServerFrame::Heartbeat(_) => false,
            ServerFrame::Pong(pong) => pong.nonce.as_deref() != Some("keepalive"),
            _ => true,
        })
        .collect()
}

fn errors(frames: &[(String, ServerFrame)]) -> Vec<&ErrorFrame> {
    frames
        .iter()
        .filter_map(|(_, frame)| match frame {
            ServerFrame::Error(error) => Some(error),
            _ => None,
        })
        .collect()
}

/// The codes of the error frames, in order.
fn codes(frames: &[(String, ServerFrame)]) -> Vec<ErrorCode> {
    errors(frames)
        .iter()
        .map(|error| error.code.clone())
        .collect()
}

fn events(frames: &[(String, ServerFrame)]) -> Vec<&Event> {
    frames
        .iter()
        .filter_map(|(_, frame)| event_of(frame).map(|envelope| &envelope.event))
        .collect()
}

/// The raw text of each event frame, by seq.
fn event_texts(frames: &[(String, ServerFrame)]) -> BTreeMap<u64, String> {
    frames
        .iter()
        .filter_map(|(text, frame)| event_of(frame).map(|envelope| (envelope.seq, text.clone())))
        .collect()
}

fn the_welcome(frames: &[(String, ServerFrame)]) -> &Welcome {
    match &frames.first().expect("a first frame").1 {
        ServerFrame::Welcome(welcome) => welcome,
        other => panic!("the first frame is not a welcome: {other:?}"),
    }
}

fn the_replay_done(frames: &[(String, ServerFrame)]) -> (usize, u64) {
    frames
        .iter()
        .enumerate()
        .find_map(|(index, (_, frame))| match frame {
            ServerFrame::ReplayDone(done) => Some((index, done.through_seq)),
            _ => None,
        })
        .expect("a replay_done")
}

/// The connections of the last presence frame as (connection, subject, source), sorted.
fn last_presence(frames: &[(String, ServerFrame)]) -> Vec<(String, String, String)> {
    let mut entries: Vec<_> = frames
        .iter()
        .rev()
        .find_map(|(_, frame)| match frame {
            ServerFrame::Presence(presence) => Some(&presence.connections),
            _ => None,
        })
        .expect("a presence frame")
        .iter()
        .map(|entry| {
            (
                entry.connection_id.clone(),
                entry.subject.clone(),
                entry.source.clone(),
            )
        })
        .collect();
    entries.sort();
    entries
}

/// Every event of the session, over HTTP.
async fn all_events(api: &Api, session_id: &str) -> Vec<EventEnvelope> {
    let (status, page) = api
        .call(
            Method::GET,
            &format!("/v1/sessions/{session_id}/events?after_seq=0&limit=5000"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let page: EventPage = serde_json::from_value(page).unwrap();
    assert!(!page.has_more);
    page.events
}

/// §1: "Times are integers: milliseconds since the Unix epoch." Every envelope of `frames` has
/// an integer `timestamp` within a minute of now, in milliseconds.
fn assert_timestamps_are_epoch_millis(frames: &[(String, ServerFrame)]) {
    let now = now_ms();
    let mut checked = 0;
    for (text, frame) in frames {
        if event_of(frame).is_none() {
            continue;
        }
        let raw: Value = serde_json::from_str(text).unwrap();
        let timestamp = raw["timestamp"]
            .as_i64()
            .unwrap_or_else(|| panic!("an integer timestamp: {text}"));
        assert!(
            (timestamp - now).abs() <= 60_000,
            "timestamp {timestamp} is not within a minute of now ({now} ms): {text}"
        );
        checked += 1;
    }
    assert!(checked > 0, "control: some envelopes were checked");
}

/// Connecting, authenticating and replaying:
/// - §1 "Lifecycle calls are never in the streaming path." and "Times are integers: milliseconds
///   since the Unix epoch."
/// - §2 "`after_seq` (optional, default `0`) ... `0` replays all retained history"; "`source`
///   (optional, default `api`) ... is shown in presence and recorded as the sender's source of
///   prompts sent on this connection."
/// - §2.1 "`?token=<token>` in the query string, accepted only for compatibility"; a token "that
///   ... is restricted to another session, is refused: on the upgrade request with an HTTP
///   problem ...; after a first-frame `auth`, with an `error` frame (... `forbidden`) and close
///   code 1008"; "Connecting requires the `read` scope."; the gateway "waits up to 10 seconds"
///   for the `auth` frame "and sends nothing before it" (§8.1: 1008 for "no `auth` frame in
///   time").
/// - §2.2 "`replay_done` with `through_seq`: the last seq of the backlog, or `after_seq` when
///   there was none"; §3 `welcome` is the "first frame of every connection".
/// - §2.3 a cursor greater than the head gets "one `reset` frame carrying: `reason`: ...
///   `cursor_ahead`; `earliest_seq` ...; `transcript` ... `replay_done` and live events follow as
///   in 2.2".
/// - §2.5 "`welcome.connections` lists everyone connected when this connection joined, itself
///   included"; "`presence_changed` announces joins and leaves, to every connection": `joined`,
///   "the connections that opened", and `left`, "the ids of those that closed"; "`presence` lists
///   everyone connected now. The gateway sends it only in answer to a client's `presence` frame,
///   and only to that connection."; applying the welcome list and each `presence_changed` "as set
///   operations, the set always matches who is connected".
/// - §4 `auth` is "ignored afterwards with an `error`".
/// - §8.1 close 1000 `session_ended`: "the session was deleted".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_authenticates_replays_and_announces_presence() {
    let server = TestServer::start(&[]);
    let ada = token("ada", "acme");
    let api = Api::new(&server, &ada);
    let session = api.create_session().await;
    let other = api.create_session().await;
    let sid = session.id.clone();

    // §2.1: "A first frame `{"type": "auth", ...}` ... The gateway waits up to 10 seconds for it
    // and sends nothing before it"; §8.1: 1008 when there is "no `auth` frame in time". Runs
    // alongside the rest of this test.
    let url = ws_url(&server, &sid, "");
    let unauthenticated = tokio::spawn(async move {
        let mut socket = open(&url, None).await.expect("the upgrade needs no token");
        let start = Instant::now();
        let first = next_quietly(&mut socket, Duration::from_secs(30)).await;
        let elapsed = start.elapsed();
        let (mut frames, close) = match first {
            Some(Received::Closed(close)) => (Vec::new(), close),
            Some(Received::Frame(_, frame)) => {
                let (mut rest, close) = until_closed(&mut socket, Duration::from_secs(30)).await;
                rest.insert(0, *frame);
                (rest, close)
            }
            None => panic!("neither a frame nor a close within 30 s"),
        };
        frames.retain(|frame| !matches!(frame, ServerFrame::Heartbeat(_)));
        (frames, close, elapsed)
    });

    let head = api
        .wait_for_status(&sid, SessionStatus::Running)
        .await
        .head_seq;
    assert!(head >= 2, "control: the session has a backlog");

    // §2: "`after_seq` (optional, default `0`) ... `0` replays all retained history"; "`source`
    // (optional, default `api`) ... shown in presence". §2.2: welcome, the backlog, `replay_done`
    // "with `through_seq`: the last seq of the backlog". §2.5: the welcome lists everyone
    // connected, itself included, and its own join is announced to everyone.
    let mut first = open(&ws_url(&server, &sid, ""), Some(&ada))
        .await
        .expect("socket opens");
    let frames = read_pinging(&mut first, is_presence_changed).await;
    let welcome = the_welcome(&frames).clone();
    assert_eq!(
        (
            welcome.protocol_version,
            welcome.session_id.as_str(),
            welcome.head_seq,
            welcome.status
        ),
        (1, sid.as_str(), head, SessionStatus::Running)
    );
    assert_eq!(welcome.principal.subject, "ada");
    let (done_at, through_seq) = the_replay_done(&frames);
    assert_eq!(
        seqs(&frames[..done_at]),
        (1..=head).collect::<Vec<_>>(),
        "the backlog starts at seq 1"
    );
    assert_eq!(through_seq, head, "through_seq is the backlog's last seq");
    assert_timestamps_are_epoch_millis(&frames);
    let first_id = welcome.connection_id.clone();
    let only_first = vec![(first_id.clone(), "ada".to_owned(), "api".to_owned())];
    let mut seen_by_first = KnownConnections::default();
    seen_by_first.follow(&ServerFrame::Welcome(welcome.clone()));
    assert_eq!(
        seen_by_first.entries(),
        only_first,
        "the welcome lists itself"
    );
    seen_by_first.follow_all(&frames);
    assert_eq!(seen_by_first.entries(), only_first);

    // §2.1: "`?token=<token>` in the query string, accepted only for compatibility". §2.2:
    // `through_seq` is "`after_seq` when there was none".
    let mut second = open(
        &ws_url(
            &server,
            &sid,
            &format!("?token={ada}&source=cli&after_seq={head}"),
        ),
        None,
    )
    .await
    .expect("a query token opens the socket");
    let frames = read_pinging(&mut second, is_presence_changed).await;
    let second_id = the_welcome(&frames).connection_id.clone();
    assert_eq!(the_welcome(&frames).principal.subject, "ada");
    assert!(
        matches!(
            significant(&frames)[..],
            [
                ServerFrame::Welcome(_),
                ServerFrame::ReplayDone(ReplayDone { through_seq, .. }),
                ServerFrame::PresenceChanged(_)
            ] if *through_seq == head
        ),
        "{frames:#?}"
    );
    let both = {
        let mut both = vec![
            (first_id.clone(), "ada".to_owned(), "api".to_owned()),
            (second_id.clone(), "ada".to_owned(), "cli".to_owned()),
        ];
        both.sort();
        both
    };
    let mut seen_by_second = KnownConnections::default();
    seen_by_second.follow(&frames[0].1);
    assert_eq!(
        seen_by_second.entries(),
        both,
        "the welcome lists everyone connected, itself included"
    );
    seen_by_second.follow_all(&frames);
    assert_eq!(seen_by_second.entries(), both);
    let frames = read_pinging(&mut first, |frame| {
        matches!(frame, ServerFrame::PresenceChanged(change)
            if change.joined.iter().any(|entry| entry.connection_id == second_id))
    })
    .await;
    let Some(ServerFrame::PresenceChanged(change)) = frames.last().map(|(_, frame)| frame) else {
        unreachable!()
    };
    assert!(change.left.is_empty(), "nobody left: {change:?}");
    seen_by_first.follow_all(&frames);
    assert_eq!(
        seen_by_first.entries(),
        both,
        "the first connection hears of the second"
    );

    // §2.5, §4: a `presence` frame gets `presence` with everyone connected, to that connection
    // only.
    send(&mut first, json!({"type": "presence"})).await;
    let frames = read_pinging(&mut first, is_presence).await;
    assert_eq!(last_presence(&frames), both);
    seen_by_first.follow_all(&frames);

    // §2: `source` is "recorded as the sender's source of prompts sent on this connection".
    send(
        &mut second,
        json!({"type": "prompt", "prompt_id": "prm_cli", "content": "[[say:from the cli]]"}),
    )
    .await;
    let frames = read_pinging(&mut first, |frame| is_turn_end(frame, "prm_cli")).await;
    let sender = events(&frames)
        .into_iter()
        .find_map(|event| match event {
            Event::UserMessage(message) if message.prompt_id == "prm_cli" => {
                Some(message.sender.clone())
            }
            _ => None,
        })
        .expect("the user_message");
    assert_eq!(
        (sender.subject.as_str(), sender.source.as_str()),
        ("ada", "cli")
    );
    assert_timestamps_are_epoch_millis(&frames);
    seen_by_first.follow_all(&frames);
    // The hub publishes in order, so a `presence` sent to everyone on the first connection's
    // request would have reached the second before its prompt's events.
    let frames = read_pinging(&mut second, |frame| is_turn_end(frame, "prm_cli")).await;
    assert!(
        !frames.iter().any(|(_, frame)| is_presence(frame)),
        "only the connection that asked gets `presence`: {frames:#?}"
    );

    // §4: `auth` is "ignored afterwards with an `error`": the connection keeps its principal.
    // §1: "Lifecycle calls are never in the streaming path": a lifecycle frame is refused like any
    // unknown frame (§4: "has an unknown `type` ... gets an `error` frame (`bad_request`)") and
    // changes nothing.
    let before = api.session(&sid).await;
    send(
        &mut first,
        json!({"type": "auth", "token": scoped_token("eve", &[Scope::Read, Scope::Write], None)}),
    )
    .await;
    for lifecycle in ["pause", "resume", "snapshot", "delete"] {
        send(&mut first, json!({"type": lifecycle})).await;
    }
    let frames = ping_pong(&mut first, "after-lifecycle").await;
    seen_by_first.follow_all(&frames);
    assert_eq!(
        codes(&frames),
        vec![ErrorCode::BadRequest; 5],
        "{frames:#?}"
    );
    assert!(events(&frames).is_empty(), "nothing appended: {frames:#?}");
    let after = api.session(&sid).await;
    assert_eq!(
        (after.status, after.head_seq),
        (SessionStatus::Running, before.head_seq),
        "the session is neither paused nor changed"
    );
    // The prompt of the first connection: default source `api`, and still `ada`, not `eve`.
    send(
        &mut first,
        json!({"type": "prompt", "prompt_id": "prm_api", "content": "[[say:from the api]]"}),
    )
    .await;
    let frames = read_pinging(&mut first, |frame| is_turn_end(frame, "prm_api")).await;
    seen_by_first.follow_all(&frames);
    let sender = events(&frames)
        .into_iter()
        .find_map(|event| match event {
            Event::UserMessage(message) if message.prompt_id == "prm_api" => {
                Some(message.sender.clone())
            }
            _ => None,
        })
        .expect("the user_message");
    assert_eq!(
        (sender.subject.as_str(), sender.source.as_str()),
        ("ada", "api")
    );

    // §2.5: a close reaches the others in a `presence_changed` `left`.
    assert_eq!(
        seen_by_first.entries(),
        both,
        "nobody left before the close"
    );
    second.close(None).await.unwrap();
    let frames = read_pinging(&mut first, |frame| {
        matches!(frame, ServerFrame::PresenceChanged(change) if change.left.contains(&second_id))
    })
    .await;
    seen_by_first.follow_all(&frames);
    assert_eq!(seen_by_first.entries(), only_first);

    // §2.3: "`after_seq` is greater than the session's head ... Instead of the backlog it sends
    // one `reset` frame carrying: `reason`: ... `cursor_ahead`; `earliest_seq` ...; `transcript`
    // ... `replay_done` and live events follow as in 2.2", live events "starting at
    // `through_seq + 1`".
    let head = api.session(&sid).await.head_seq;
    let mut ahead = connect(&server, &sid, head + 5, &ada).await;
    let frames = read_pinging(&mut ahead, is_replay_done).await;
    let [
        ServerFrame::Welcome(_),
        ServerFrame::Reset(reset),
        ServerFrame::ReplayDone(done),
    ] = significant(&frames)[..]
    else {
        panic!("welcome, reset, replay_done: {frames:#?}");
    };
    assert_eq!(
        (
            reset.reason.as_str(),
            reset.earliest_seq,
            reset.transcript.through_seq
        ),
        ("cursor_ahead", 1, head)
    );
    assert_eq!(reset.transcript.session_id, sid);
    assert_eq!(
        reset
            .transcript
            .messages
            .iter()
            .filter(|message| message.role == Role::User)
            .count(),
        2,
        "the transcript holds the conversation"
    );
    assert_eq!(done.through_seq, reset.transcript.through_seq);
    send(
        &mut ahead,
        json!({"type": "prompt", "prompt_id": "prm_live", "content": "[[say:live]]"}),
    )
    .await;
    let frames = read_pinging(&mut ahead, |frame| is_turn_end(frame, "prm_live")).await;
    let live = seqs(&frames);
    assert_eq!(
        live,
        (head + 1..=*live.last().unwrap()).collect::<Vec<_>>(),
        "live events start at through_seq + 1"
    );

    // §2.2: the backlog is "every retained event with `seq > after_seq`, in order".
    let head = *live.last().unwrap();
    let mut middle = connect(&server, &sid, 1, &ada).await;
    let frames = read_pinging(&mut middle, is_replay_done).await;
    let (done_at, through_seq) = the_replay_done(&frames);
    assert_eq!(seqs(&frames[..done_at]), (2..=head).collect::<Vec<_>>());
    assert_eq!(through_seq, head);
    middle.close(None).await.unwrap();

    // §2.1: a token "restricted to another session, is refused: on the upgrade request with an
    // HTTP problem ...; after a first-frame `auth`, with an `error` frame (... `forbidden`) and
    // close code 1008". "Connecting requires the `read` scope."
    let elsewhere = scoped_token("ada", &[Scope::Read, Scope::Write], Some(&other.id));
    let write_only = scoped_token("ada", &[Scope::Write], None);
    for refused in [&elsewhere, &write_only] {
        let (status, problem) = refusal(try_connect(&server, &sid, 0, refused).await);
        assert_eq!(
            (status, problem["code"].as_str()),
            (403, Some("forbidden")),
            "{problem}"
        );
        let mut socket = auth_by_first_frame(&server, &sid, refused).await;
        let (frames, close) = until_closed(&mut socket, Duration::from_secs(30)).await;
        assert!(
            matches!(&frames[..], [ServerFrame::Error(error)] if error.code == ErrorCode::Forbidden),
            "{frames:#?}"
        );
        assert_eq!(close_of(&close), (1008, "forbidden".to_owned()));
    }
    // Controls: restricted to this very session, or with `read` alone, the token connects, by
    // header and by first frame.
    let here = scoped_token("ada", &[Scope::Read, Scope::Write], Some(&sid));
    let read_only = scoped_token("ada", &[Scope::Read], None);
    for accepted in [&here, &read_only] {
        let mut socket = connect(&server, &sid, 0, accepted).await;
        let frames = read_pinging(&mut socket, is_replay_done).await;
        the_welcome(&frames);
        socket.close(None).await.unwrap();
        let mut socket = auth_by_first_frame(&server, &sid, accepted).await;
        let frames = read_pinging(&mut socket, is_replay_done).await;
        the_welcome(&frames);
        socket.close(None).await.unwrap();
    }

    // §3: `welcome` is the "first frame of every connection"; §2.2: "After authentication the
    // gateway sends, in this order: 1. `welcome` ...". So even a client that pings at once gets
    // its `pong` only after the welcome, whichever way it authenticates.
    for round in 0..3 {
        for by_header in [true, false] {
            let mut socket = if by_header {
                connect(&server, &sid, 0, &ada).await
            } else {
                auth_by_first_frame(&server, &sid, &ada).await
            };
            for nonce in ["early-1", "early-2", "early-3"] {
                send(&mut socket, json!({"type": "ping", "nonce": nonce})).await;
            }
            let frames = read_until(&mut socket, |frame| {
                matches!(frame, ServerFrame::Pong(pong) if pong.nonce.as_deref() == Some("early-3"))
            })
            .await;
            assert!(
                matches!(frames[0].1, ServerFrame::Welcome(_)),
                "round {round}, by header {by_header}: the first frame is {:?}",
                frames[0].1
            );
            socket.close(None).await.unwrap();
        }
    }

    let (frames, close, elapsed) = unauthenticated.await.unwrap();
    assert!(
        !frames
            .iter()
            .any(|frame| matches!(frame, ServerFrame::Welcome(_))),
        "no welcome without an auth frame: {frames:#?}"
    );
    assert!(
        elapsed >= Duration::from_secs(5),
        "the gateway sent something after {elapsed:?}, before it had waited for the auth frame"
    );
    assert_eq!(close_of(&close), (1008, "unauthenticated".to_owned()));

    // §8.1: 1000 `session_ended` "the session was deleted".
    let (status, body) = api
        .call(Method::DELETE, &format!("/v1/sessions/{sid}"), None)
        .await;
    assert_eq!(status, 204, "{body}");
    for socket in [&mut first, &mut ahead] {
        let (_, close) = until_closed(socket, Duration::from_secs(30)).await;
        assert_eq!(close_of(&close), (1000, "session_ended".to_owned()));
    }
}

/// The frames that act on the session:
/// - §2.1 "Sending `prompt`, `cancel`, `cancel_queued` and `permission_reply` requires `write`;
///   without it the frame gets an `error` frame with `forbidden` and the connection stays open."
/// - §4 and §6.3 "`cancel_queued` with the `prompt_id` withdraws a prompt that has not started:
///   `queued_prompt_cancelled` is appended. A prompt that is already running answers `conflict`
///   (use `cancel`), an unknown one `not_found`."
/// - §4 and §6.4 "`cancel` aborts the running turn ... appends `turn_cancelled` ... and then
///   starts the next queued prompt"; "`cancel` with no running turn does nothing".
/// - §4 and §7 "Any connection with the `write` scope may answer with `permission_reply` ... The
///   first valid answer wins: the gateway forwards it to the agent and appends
///   `permission_resolved` with the answer and who gave it. Later answers get `conflict`; answers
///   to unknown requests get `not_found`."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_cancel_and_permission_frames_act_and_need_write() {
    let server = TestServer::start(&["--permission", r#"{"bash":"ask"}"#]);
    let ada = token("ada", "acme");
    let bob = scoped_token("bob", &[Scope::Read], None);
    let api = Api::new(&server, &ada);
    let sid = api.create_session().await.id;
    let mut writer = connect(&server, &sid, 0, &ada).await;
    let mut reader = connect(&server, &sid, 0, &bob).await;
    read_pinging(&mut writer, is_replay_done).await;
    read_pinging(&mut reader, is_replay_done).await;

    for (prompt_id, content, position) in [
        ("prm_a", "[[stall]]", 0),
        ("prm_b", "[[say:B must never run]]", 1),
    ] {
        send(
            &mut writer,
            json!({"type": "prompt", "prompt_id": prompt_id, "content": content}),
        )
        .await;
        let frames = read_pinging(&mut writer, |frame| is_admitted(frame, prompt_id)).await;
        let Some((_, ServerFrame::PromptAdmitted(admitted))) = frames.last() else {
            unreachable!()
        };
        assert_eq!(
            (admitted.queue_position, admitted.duplicate),
            (position, false)
        );
    }
    read_pinging(&mut writer, |frame| is_turn_started(frame, "prm_a")).await;

    // §2.1: "Sending `prompt`, `cancel`, `cancel_queued` and `permission_reply` requires
    // `write`; without it the frame gets an `error` frame with `forbidden` and the connection
    // stays open." The frames would act if allowed: a turn runs and B is queued.
    send(
        &mut reader,
        json!({"type": "prompt", "prompt_id": "prm_bob", "content": "[[say:bob]]"}),
    )
    .await;
    send(&mut reader, json!({"type": "cancel"})).await;
    send(
        &mut reader,
        json!({"type": "cancel_queued", "prompt_id": "prm_b"}),
    )
    .await;
    send(
        &mut reader,
        json!({"type": "permission_reply", "permission_id": "per_none", "decision": "once"}),
    )
    .await;
    let frames = ping_pong(&mut reader, "still-open").await;
    assert_eq!(codes(&frames), vec![ErrorCode::Forbidden; 4], "{frames:#?}");

    // §6.3: "`cancel_queued` with the `prompt_id` withdraws a prompt that has not started:
    // `queued_prompt_cancelled` is appended. A prompt that is already running answers `conflict`
    // (use `cancel`), an unknown one `not_found`."
    send(
        &mut writer,
        json!({"type": "cancel_queued", "prompt_id": "prm_a"}),
    )
    .await;
    send(
        &mut writer,
        json!({"type": "cancel_queued", "prompt_id": "prm_nobody"}),
    )
    .await;
    send(
        &mut writer,
        json!({"type": "cancel_queued", "prompt_id": "prm_b"}),
    )
    .await;
    let mut error_count = 0;
    let mut withdrawn = false;
    let frames = read_pinging(&mut writer, |frame| {
        error_count += usize::from(matches!(frame, ServerFrame::Error(_)));
        withdrawn |= matches!(event_of(frame).map(|envelope| &envelope.event),
            Some(Event::QueuedPromptCancelled(cancelled)) if cancelled.prompt_id == "prm_b");
        withdrawn && error_count == 2
    })
    .await;
    let refused: Vec<(ErrorCode, Option<&str>)> = errors(&frames)
        .iter()
        .map(|error| (error.code.clone(), error.prompt_id.as_deref()))
        .collect();
    assert_eq!(
        refused,
        [
            (ErrorCode::Conflict, Some("prm_a")),
            (ErrorCode::NotFound, Some("prm_nobody"))
        ]
    );
    let cancelled_by = events(&frames)
        .into_iter()
        .find_map(|event| match event {
            Event::QueuedPromptCancelled(cancelled) => cancelled.cancelled_by.clone(),
            _ => None,
        })
        .expect("cancelled_by");
    assert_eq!(
        (cancelled_by.subject.as_str(), cancelled_by.source.as_str()),
        ("ada", "cli")
    );

    // §6.1: `queue_position` counts the prompts that run before this one: A only, B is gone.
    send(
        &mut writer,
        json!({"type": "prompt", "prompt_id": "prm_c", "content": "[[bash:echo hi]]"}),
    )
    .await;
    let frames = read_pinging(&mut writer, |frame| is_admitted(frame, "prm_c")).await;
    let Some((_, ServerFrame::PromptAdmitted(admitted))) = frames.last() else {
        unreachable!()
    };
    assert_eq!(admitted.queue_position, 1);

    // §6.4: "`cancel` aborts the running turn in the agent. The gateway appends `turn_cancelled`
    // ... and then starts the next queued prompt."
    send(&mut writer, json!({"type": "cancel"})).await;
    let frames = read_pinging(&mut writer, |frame| is_turn_end(frame, "prm_a")).await;
    let Some(Event::TurnCancelled(cancelled)) = events(&frames).last().copied() else {
        panic!("A is cancelled: {frames:#?}");
    };
    let by = cancelled.cancelled_by.clone().expect("cancelled_by");
    assert_eq!(
        (by.subject.as_str(), by.source.as_str()),
        ("ada", "cli"),
        "the read-only cancel did nothing"
    );

    // §7: "Any connection with the `write` scope may answer with `permission_reply` ... The first
    // valid answer wins: the gateway forwards it to the agent and appends `permission_resolved`
    // with the answer and who gave it. Later answers get `conflict`; answers to unknown requests
    // get `not_found`."
    let frames = read_pinging(&mut writer, |frame| {
        matches!(
            event_of(frame).map(|envelope| &envelope.event),
            Some(Event::PermissionRequested(_))
        )
    })
    .await;
    assert!(
        frames
            .iter()
            .any(|(_, frame)| is_turn_started(frame, "prm_c")),
        "C runs next, not the withdrawn B: {frames:#?}"
    );
    let Some(Event::PermissionRequested(requested)) = events(&frames).last().copied() else {
        unreachable!()
    };
    let requested = requested.clone();
    // §1 and §7: `expires_at` is in milliseconds, the default five minutes from now.
    let expected = now_ms() + 300_000;
    assert!(
        (requested.expires_at - expected).abs() <= 60_000,
        "expires_at {} is not about {expected}",
        requested.expires_at
    );
    let reply = json!({"type": "permission_reply", "permission_id": requested.permission_id, "decision": "once"});
    send(&mut reader, reply.clone()).await;
    let frames = ping_pong(&mut reader, "still-open-2").await;
    assert_eq!(codes(&frames), [ErrorCode::Forbidden], "{frames:#?}");
    send(&mut writer, reply.clone()).await;
    let frames = read_pinging(&mut writer, |frame| is_turn_end(frame, "prm_c")).await;
    assert!(errors(&frames).is_empty(), "{frames:#?}");
    let resolved = events(&frames)
        .into_iter()
        .find_map(|event| match event {
            Event::PermissionResolved(resolved) => Some(resolved.clone()),
            _ => None,
        })
        .expect("permission_resolved");
    assert_eq!(resolved.permission_id, requested.permission_id);
    assert_eq!(
        (resolved.decision, resolved.timed_out),
        (PermissionDecision::Once, false)
    );
    let by = resolved.resolved_by.expect("resolved_by");
    assert_eq!((by.subject.as_str(), by.source.as_str()), ("ada", "cli"));
    let output = events(&frames)
        .into_iter()
        .find_map(|event| match event {
            Event::ToolCompleted(done) if done.tool == "bash" => Some(done.output.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the allowed tool completes: {frames:#?}"));
    assert!(output.contains("hi"), "{output}");
    assert!(matches!(
        events(&frames).last(),
        Some(Event::TurnCompleted(_))
    ));

    send(&mut writer, reply).await;
    send(
        &mut writer,
        json!({"type": "permission_reply", "permission_id": "per_unknown", "decision": "reject"}),
    )
    .await;
    // §6.4: "`cancel` with no running turn does nothing".
    send(&mut writer, json!({"type": "cancel"})).await;
    let frames = ping_pong(&mut writer, "after-replies").await;
    assert_eq!(
        codes(&frames),
        [ErrorCode::Conflict, ErrorCode::NotFound],
        "{frames:#?}"
    );
    assert!(events(&frames).is_empty(), "{frames:#?}");

    // The log agrees: B was admitted but never started, bob's prompt was never admitted, one
    // turn was cancelled and one permission resolved.
    let log = all_events(&api, &sid).await;
    let count = |matching: fn(&Event) -> bool| {
        log.iter()
            .filter(|envelope| matching(&envelope.event))
            .count()
    };
    assert_eq!(
        count(|event| matches!(event, Event::UserMessage(message) if message.prompt_id == "prm_b")),
        1
    );
    assert_eq!(
        count(|event| matches!(event, Event::TurnStarted(turn) if turn.prompt_id == "prm_b")),
        0
    );
    assert_eq!(
        count(
            |event| matches!(event, Event::UserMessage(message) if message.prompt_id == "prm_bob")
        ),
        0
    );
    assert_eq!(count(|event| matches!(event, Event::TurnCancelled(_))), 1);
    assert_eq!(
        count(|event| matches!(event, Event::PermissionResolved(_))),
        1
    );
}

/// One Server-Sent Events message.
#[derive(Debug, Clone, Default)]
struct SseMessage {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

/// A Server-Sent Events response, read message by message.
struct SseStream {
    body: BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buffer: String,
}

impl SseStream {
    /// Opens the events route as SSE, with `query` and an optional `Last-Event-ID`.
    async fn open(
        api: &Api,
        session_id: &str,
        query: &str,
        last_event_id: Option<&str>,
    ) -> (reqwest::header::HeaderMap, Self) {
        let mut request = api
            .http
            .get(format!(
                "{}/v1/sessions/{session_id}/events{query}",
                api.base
            ))
            .bearer_auth(&api.token)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        let body = response
            .bytes_stream()
            .map(|chunk| chunk.map(|bytes| bytes.to_vec()))
            .boxed();
        (
            headers,
            Self {
                body,
                buffer: String::new(),
            },
        )
    }

    /// The next message (comments skipped).
    async fn next(&mut self) -> SseMessage {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut message = SseMessage::default();
                let mut data = Vec::new();
                for line in block.lines() {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "id" => message.id = Some(value.to_owned()),
                        "event" => message.event = Some(value.to_owned()),
                        "data" => data.push(value),
                        _ => {}
                    }
                }
                message.data = data.join("\n");
                if message.event.is_some() || !data.is_empty() {
                    return message;
                }
                continue;
            }
            let chunk = tokio::time::timeout(DEADLINE, self.body.next())
                .await
                .expect("SSE data in time")
                .expect("the stream is open")
                .expect("readable");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Messages until one named `event` (included).
    async fn until_event(&mut self, event: &str) -> Vec<SseMessage> {
        let mut messages = Vec::new();
        loop {
            let message = self.next().await;
            let stop = message.event.as_deref() == Some(event);
            messages.push(message);
            if stop {
                return messages;
            }
        }
    }
}

/// The seqs carried as SSE ids, in order.
fn sse_ids(messages: &[SseMessage]) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|message| message.id.as_ref())
        .map(|id| id.parse().expect("a numeric id"))
        .collect()
}

fn sse_frame(message: &SseMessage) -> ServerFrame {
    serde_json::from_str(&message.data).expect("SSE data is a frame")
}

/// Liveness and Server-Sent Events:
/// - §3 `heartbeat` with `head_seq` is "sent every `heartbeat_interval_ms`", which `welcome`
///   carries; §10.1 "The gateway sends `heartbeat` every `heartbeat_interval_ms`".
/// - §10.1 "The gateway closes a connection that sent nothing for three intervals with 4408"
///   (§8.1 reason `liveness_timeout`), and a client that pings "at the same interval" stays.
/// - §11.1 SSE "streams the same envelopes as the WebSocket. Each event is one SSE message with
///   `id: <seq>`, `event: <event type>` and `data: <envelope JSON>`. The start cursor is the
///   `Last-Event-ID` header if present, else `after_seq`. A `reset` is sent as `event: reset`
///   with the reset frame as data; `replay_done` and `heartbeat` are sent as events of those
///   names without an `id`. Responses carry `Cache-Control: no-cache` and
///   `X-Accel-Buffering: no`."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_liveness_and_server_sent_events() {
    let server = TestServer::start(&["--heartbeat-secs", "1"]);
    let ada = token("ada", "acme");
    let api = Api::new(&server, &ada);
    let sid = api.create_session().await.id;
    api.wait_for_status(&sid, SessionStatus::Running).await;

    // §3: `welcome` carries `heartbeat_interval_ms`; §10.1: "The gateway sends `heartbeat` every
    // `heartbeat_interval_ms`".
    let mut pinger = connect(&server, &sid, 0, &ada).await;
    let connected = Instant::now();
    let mut frames = read_pinging(&mut pinger, is_replay_done).await;
    assert_eq!(the_welcome(&frames).heartbeat_interval_ms, 1000);

    // §10.1: "The gateway closes a connection that sent nothing for three intervals with 4408"
    // (§8.1: reason `liveness_timeout`), though it received heartbeats all along.
    let mut silent = connect(&server, &sid, 0, &ada).await;
    let silent = tokio::spawn(async move {
        let start = Instant::now();
        let (frames, close) = until_closed(&mut silent, Duration::from_secs(30)).await;
        (frames, close, start.elapsed())
    });

    api.prompt(&sid, "prm_beat", "[[say:beating]]").await;
    frames.extend(read_pinging(&mut pinger, |frame| is_turn_end(frame, "prm_beat")).await);
    let head = api.session(&sid).await.head_seq;
    assert_eq!(*seqs(&frames).last().unwrap(), head);
    // A client that pings stays open well past three intervals; the heartbeats carry the head.
    let watch = Instant::now();
    let mut heartbeats = Vec::new();
    while !(silent.is_finished()
        && heartbeats.len() >= 3
        && connected.elapsed() >= Duration::from_secs(6))
    {
        assert!(
            watch.elapsed() < DEADLINE,
            "{} heartbeats in {DEADLINE:?}",
            heartbeats.len()
        );
        let read = read_pinging(&mut pinger, |frame| {
            matches!(frame, ServerFrame::Heartbeat(_))
        })
        .await;
        assert!(
            events(&read).is_empty(),
            "control: the session is quiet: {read:#?}"
        );
        let Some((_, ServerFrame::Heartbeat(heartbeat))) = read.last() else {
            unreachable!()
        };
        heartbeats.push(heartbeat.head_seq);
    }
    let watched = watch.elapsed();
    assert_eq!(
        heartbeats,
        vec![head; heartbeats.len()],
        "heartbeats carry head_seq"
    );
    // One a second: neither far fewer (at least one per two intervals) nor far more.
    let count = heartbeats.len() as u64;
    assert!(
        count + 1 >= watched.as_secs() / 2 && count <= watched.as_secs() + 5,
        "{count} heartbeats in {watched:?} at one per second"
    );
    ping_pong(&mut pinger, "still-open").await;
    let (silent_frames, close, silent_for) = silent.await.unwrap();
    assert_eq!(close_of(&close), (4408, "liveness_timeout".to_owned()));
    assert!(
        silent_for >= Duration::from_secs(2),
        "closed after {silent_for:?}, before three intervals of one second"
    );
    assert!(
        silent_frames
            .iter()
            .any(|frame| matches!(frame, ServerFrame::Heartbeat(_))),
        "control: the silent client was sent heartbeats"
    );

    // §11.1: "streams the same envelopes as the WebSocket. Each event is one SSE message with
    // `id: <seq>`, `event: <event type>` and `data: <envelope JSON>`"; "`replay_done` and
    // `heartbeat` are sent as events of those names without an `id`. Responses carry
    // `Cache-Control: no-cache` and `X-Accel-Buffering: no`."
    let (headers, mut sse) = SseStream::open(&api, &sid, "?after_seq=0", None).await;
    assert_eq!(headers["x-accel-buffering"], "no");
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .split(',')
            .any(|directive| directive.trim() == "no-cache"),
        "{headers:?}"
    );
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut messages = sse.until_event("replay_done").await;
    let replay_done = messages.last().unwrap().clone();
    assert_eq!(replay_done.id, None);
    assert!(
        matches!(sse_frame(&replay_done), ServerFrame::ReplayDone(done) if done.through_seq == head)
    );
    assert_eq!(sse_ids(&messages), (1..=head).collect::<Vec<_>>());
    api.prompt(&sid, "prm_sse", "[[say:streamed twice]]").await;
    let (ws, live) = tokio::join!(
        read_pinging(&mut pinger, |frame| is_turn_end(frame, "prm_sse")),
        sse.until_event("turn_completed"),
    );
    frames.extend(ws);
    messages.extend(live);
    let ws_texts = event_texts(&frames);
    let head = *ws_texts.keys().last().unwrap();
    assert_eq!(sse_ids(&messages), (1..=head).collect::<Vec<_>>());
    for message in messages.iter().filter(|message| message.id.is_some()) {
        let seq: u64 = message.id.as_ref().unwrap().parse().unwrap();
        assert_eq!(
            message.data, ws_texts[&seq],
            "SSE and WebSocket carry the same envelope"
        );
        let envelope: Value = serde_json::from_str(&message.data).unwrap();
        assert_eq!(envelope["seq"], seq);
        assert_eq!(
            message.event.as_deref(),
            envelope["event"]["type"].as_str(),
            "{message:?}"
        );
    }
    pinger.close(None).await.unwrap();
    let heartbeat = loop {
        let message = sse.next().await;
        if message.event.as_deref() == Some("heartbeat") {
            break message;
        }
        assert!(message.id.is_none(), "the session is quiet: {message:?}");
    };
    assert_eq!(heartbeat.id, None);
    assert!(
        matches!(sse_frame(&heartbeat), ServerFrame::Heartbeat(beat) if beat.head_seq == head),
        "{heartbeat:?}"
    );

    // §11.1: "The start cursor is the `Last-Event-ID` header if present, else `after_seq`."
    let (_, mut resumed) = SseStream::open(&api, &sid, "?after_seq=1", Some("3")).await;
    assert_eq!(
        sse_ids(&resumed.until_event("replay_done").await),
        (4..=head).collect::<Vec<_>>()
    );
    let (_, mut resumed) = SseStream::open(&api, &sid, "?after_seq=2", None).await;
    assert_eq!(
        sse_ids(&resumed.until_event("replay_done").await),
        (3..=head).collect::<Vec<_>>()
    );

    // §11.1: "A `reset` is sent as `event: reset` with the reset frame as data", before
    // `replay_done` as on the socket (§2.3); here the cursor comes from `Last-Event-ID`.
    let ahead = (head + 10).to_string();
    let (_, mut reset) = SseStream::open(&api, &sid, "?after_seq=0", Some(&ahead)).await;
    let messages = reset.until_event("replay_done").await;
    let names: Vec<&str> = messages
        .iter()
        .filter_map(|message| message.event.as_deref())
        .collect();
    assert_eq!(names, ["welcome", "reset", "replay_done"], "{messages:#?}");
    assert_eq!(sse_ids(&messages), Vec::<u64>::new());
    let ServerFrame::Reset(frame) = sse_frame(&messages[1]) else {
        panic!("a reset frame: {:?}", messages[1]);
    };
    assert_eq!(
        (
            frame.reason.as_str(),
            frame.earliest_seq,
            frame.transcript.through_seq
        ),
        ("cursor_ahead", 1, head)
    );
    assert!(
        matches!(sse_frame(&messages[2]), ServerFrame::ReplayDone(done) if done.through_seq == head)
    );
}

/// §10.2 "Each connection has a bounded send budget ... A connection that overflows it is closed
/// with 1013 and reason `slow_consumer`": one that lags within its budget keeps its connection
/// and gets every event; the same client lagging beyond it is cut (the control).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_lagging_within_its_send_budget_keeps_its_connection() {
    const BUDGET: usize = 256;
    let server = TestServer::start(&[
        "--send-budget",
        &BUDGET.to_string(),
        "--socket-send-buffer",
        "16384",
        "--heartbeat-secs",
        "30",
    ]);
    let ada = token("ada", "acme");
    let api = Api::new(&server, &ada);
    let sid = api.create_session().await.id;
    let mut reader = connect(&server, &sid, 0, &ada).await;
    let mut lagger = connect_with_small_buffer(&server, &sid, &ada).await;
    read_pinging(&mut reader, is_replay_done).await;
    read_pinging(&mut lagger, is_replay_done).await;

    // §10.2: "Each connection has a bounded send budget ... A connection that overflows it is
    // closed with 1013": one that lags but stays within it is not. The lagging client reads
    // nothing while a turn of far more bytes than the kernel buffers hold (4 KiB receive,
    // 16 KiB send) but fewer frames than the budget is streamed.
    let text: Vec<String> = (1..=6000).map(|word| format!("w{word}")).collect();
    let prompt = format!("[[deltas:60]] [[say:{}]]", text.join(" "));
    api.prompt(&sid, "prm_lag", &prompt).await;
    let read = read_pinging(&mut reader, |frame| is_turn_end(frame, "prm_lag")).await;
    let lagged = read_pinging(&mut lagger, |frame| is_turn_end(frame, "prm_lag")).await;
    let expected = event_texts(&read);
    assert_eq!(
        event_texts(&lagged),
        expected,
        "the lagging client got every event"
    );
    let bytes: usize = expected.values().map(String::len).sum();
    assert!(
        bytes > 64 * 1024,
        "control: the turn ({bytes} bytes) overflowed the socket buffers"
    );
    assert!(
        lagged.len() < BUDGET,
        "control: the turn ({} frames) fit in the budget",
        lagged.len()
    );
    ping_pong(&mut lagger, "within-budget").await;

    // Control: the same client, lagging over the budget, is cut with 1013 `slow_consumer`.
    let words: Vec<String> = (1..=3000).map(|word| format!("f{word}")).collect();
    api.prompt(&sid, "prm_flood", &format!("[[say:{}]]", words.join(" ")))
        .await;
    read_pinging(&mut reader, |frame| is_turn_end(frame, "prm_flood")).await;
    let (_, close) = until_closed(&mut lagger, Duration::from_secs(30)).await;
    assert_eq!(close_of(&close), (1013, "slow_consumer".to_owned()));
}
