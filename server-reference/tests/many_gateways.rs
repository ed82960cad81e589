//! Three gateways on one PostgreSQL database and the machine's Redis (`--bus-url`): a client of
//! any gateway streams a session another runs, live, with no gap and no duplicate; prompts sent
//! to any gateway run once; presence counts every gateway's clients; and when the gateway running
//! the session is killed, its clients reconnect to another and go on from their cursor.
#![cfg(all(feature = "postgres", feature = "redis"))]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use proliferate_core::protocol::v1::*;
use sqlx::{Connection, PgConnection};
use support::postgres::TestDatabase;
use support::*;

fn redis_url() -> String {
    std::env::var("PROLIFERATE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// Gateway `name` on `database` and the machine's Redis, with leases of 3 s.
fn gateway(database: &TestDatabase, name: &str) -> TestServer {
    TestServer::start(&[
        "--database-url",
        &database.url,
        "--bus-url",
        &redis_url(),
        "--gateway-id",
        name,
        "--lease-ttl-secs",
        "3",
    ])
}

/// Each event frame's text by seq, checked dense from the first.
fn events_by_seq(frames: &[(String, ServerFrame)]) -> BTreeMap<u64, String> {
    let events: BTreeMap<u64, String> = (frames.iter())
        .filter_map(|(text, frame)| event_of(frame).map(|event| (event.seq, text.clone())))
        .collect();
    let numbered: Vec<u64> = events.keys().copied().collect();
    assert_eq!(numbered, seqs(frames), "no duplicate, in order");
    if let (Some(first), Some(last)) = (numbered.first(), numbered.last()) {
        assert_eq!(numbered, (*first..=*last).collect::<Vec<_>>(), "no gap");
    }
    events
}

/// A socket to the session on `server` once welcomed, retrying while no gateway may run it.
async fn reconnect(server: &TestServer, session_id: &str, after_seq: u64, token: &str) -> Socket {
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "a gateway takes the session over within a few lease lifetimes"
        );
        let mut socket = connect(server, session_id, after_seq, token).await;
        match receive(&mut socket, Duration::from_secs(60)).await {
            Received::Frame(_, frame) => match *frame {
                ServerFrame::Welcome(_) => return socket,
                ServerFrame::Error(error) => assert_eq!(error.code, ErrorCode::Unavailable),
                other => panic!("a welcome or an error first, not {other:?}"),
            },
            Received::Closed(close) => panic!("closed before a first frame: {close:?}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Reads until the socket closes; returns the frames read and the close code.
async fn read_to_close(socket: &mut Socket) -> (Vec<(String, ServerFrame)>, Option<u16>) {
    let mut frames = Vec::new();
    loop {
        match receive(socket, Duration::from_secs(90)).await {
            Received::Frame(text, frame) => frames.push((text, *frame)),
            Received::Closed(close) => return (frames, close.map(|close| close.code.into())),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_gateway_serves_any_session_and_its_clients_survive_the_running_one_dying() {
    let database = TestDatabase::create().await;
    let gateway = |name: &str| gateway(&database, &format!("{name}-{}", std::process::id()));
    let (mut one, two, three) = (gateway("one"), gateway("two"), gateway("three"));
    let token = token("ada", "acme");
    let (api_two, api_three) = (Api::new(&two, &token), Api::new(&three, &token));
    let session = Api::new(&one, &token).create_session().await;

    // The first client makes `one` run the session; the others watch it through `two` and
    // `three`, and everyone sees all three clients.
    let mut on_one = connect(&one, &session.id, 0, &token).await;
    let mut read_on_one = read_until(&mut on_one, |frame| {
        matches!(frame, ServerFrame::ReplayDone(_))
    })
    .await;
    let mut on_two = connect(&two, &session.id, 0, &token).await;
    let mut on_three = connect(&three, &session.id, 0, &token).await;
    let mut known = KnownConnections::default();
    read_on_one.extend(
        read_until(&mut on_one, |frame| {
            known.follow(frame);
            known.count() == 3
        })
        .await,
    );

    // A prompt through `two` runs on `one`, once, and streams to all three.
    api_two
        .prompt(
            &session.id,
            "prm_two",
            "[[say:heard through every gateway]]",
        )
        .await;
    let repeated = api_two
        .prompt(
            &session.id,
            "prm_two",
            "[[say:heard through every gateway]]",
        )
        .await;
    assert!(repeated.duplicate, "the same prompt id is admitted once");
    let mut streams = Vec::new();
    for (socket, mut frames) in [
        (&mut on_one, read_on_one),
        (&mut on_two, Vec::new()),
        (&mut on_three, Vec::new()),
    ] {
        frames.extend(read_until(socket, |frame| is_turn_end(frame, "prm_two")).await);
        let events = events_by_seq(&frames);
        assert_eq!(events.keys().next(), Some(&1), "from the first event");
        streams.push(events);
    }
    assert_eq!(streams[1], streams[0], "two's client saw what one's did");
    assert_eq!(streams[2], streams[0], "three's client saw what one's did");
    let turns = (streams[0].values())
        .filter(|text| text.contains("\"turn_started\""))
        .count();
    assert_eq!(turns, 1, "the prompt ran once");
    let cursor = *streams[0].keys().last().unwrap();

    // `one` dies. The clients of `two` and `three` are told the stream was interrupted, and
    // reconnect from their cursor; one of the two gateways takes the session over.
    one.kill();
    for socket in [&mut on_two, &mut on_three] {
        let (frames, code) = read_to_close(socket).await;
        assert_eq!(code, Some(1011), "interrupted, so the client reconnects");
        assert!(
            frames
                .iter()
                .all(|(_, frame)| event_of(frame).is_none_or(|e| e.seq > cursor))
        );
    }
    let mut on_two = reconnect(&two, &session.id, cursor, &token).await;
    let mut on_three = reconnect(&three, &session.id, cursor, &token).await;
    api_three
        .prompt(&session.id, "prm_three", "[[say:after the failover]]")
        .await;
    let after_two = read_until(&mut on_two, |frame| is_turn_end(frame, "prm_three")).await;
    let after_three = read_until(&mut on_three, |frame| is_turn_end(frame, "prm_three")).await;
    let (after_two, after_three) = (events_by_seq(&after_two), events_by_seq(&after_three));
    assert_eq!(after_two, after_three, "both clients see one log");
    assert_eq!(
        *after_two.keys().next().unwrap(),
        cursor + 1,
        "resumed from the cursor, no gap and no duplicate"
    );
    drop((on_two, on_three, two, three));
    database.drop_database().await;
}

/// Rounds of the chaos run: each prompt but the last has its running gateway killed mid-turn.
const ROUNDS: usize = 4;

/// One client of the chaos run: streams the session through the gateways in turn, reconnecting
/// to the next from its cursor whenever its stream ends, until `last_prompt`'s turn ends.
/// Returns every event it received, checked dense and in order as they came.
async fn chaos_client(
    bases: Vec<String>,
    session_id: String,
    token: String,
    mut next_gateway: usize,
    last_prompt: String,
) -> Vec<EventEnvelope> {
    let mut received: Vec<EventEnvelope> = Vec::new();
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < Duration::from_secs(900), "the run ends");
        let cursor = received.last().map_or(0, |event| event.seq);
        let base = bases[next_gateway % bases.len()].replacen("http://", "ws://", 1);
        next_gateway += 1;
        let url = format!("{base}/v1/sessions/{session_id}/ws?after_seq={cursor}&source=chaos");
        let Ok(mut socket) = connect_url(&url, &token).await else {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        };
        // Until the stream ends, for whatever reason: a refusal, a close, a dead gateway.
        while let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_secs(60), socket.next()).await
        {
            let text = match message {
                tokio_tungstenite::tungstenite::Message::Text(text) => text,
                tokio_tungstenite::tungstenite::Message::Close(_) => break,
                _ => continue,
            };
            match serde_json::from_str::<ServerFrame>(&text).expect("a server frame") {
                ServerFrame::Event(event) => {
                    let expected = received.last().map_or(1, |last| last.seq + 1);
                    assert_eq!(
                        event.seq, expected,
                        "no gap, no duplicate, across reconnects"
                    );
                    let last = is_turn_end(&ServerFrame::Event(event.clone()), &last_prompt);
                    received.push(event);
                    if last {
                        return received;
                    }
                }
                ServerFrame::Error(_) => break,
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The session's whole log, read through `api`.
async fn whole_log(api: &Api, session_id: &str) -> Vec<EventEnvelope> {
    let mut events: Vec<EventEnvelope> = Vec::new();
    loop {
        let after = events.last().map_or(0, |event| event.seq);
        let path = format!("/v1/sessions/{session_id}/events?after_seq={after}&limit=500");
        let (status, body) = api.call(reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 200, "{body}");
        let page: EventPage = serde_json::from_value(body).unwrap();
        events.extend(page.events);
        if !page.has_more {
            return events;
        }
    }
}

/// Polls the log until an event matches.
async fn logged(api: &Api, session_id: &str, wanted: impl Fn(&Event) -> bool) {
    let started = Instant::now();
    while !whole_log(api, session_id)
        .await
        .iter()
        .any(|e| wanted(&e.event))
    {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "it is logged in time"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaos_run_that_kills_running_gateways_mid_turn_loses_and_repeats_nothing() {
    let database = TestDatabase::create().await;
    let run = std::process::id();
    let names: Vec<String> = (1..=3).map(|n| format!("chaos{n}-{run}")).collect();
    let mut gateways: Vec<TestServer> = (names.iter())
        .map(|name| gateway(&database, name))
        .collect();
    let token = token("ada", "acme");
    let session = Api::new(&gateways[0], &token).create_session().await;
    let bases: Vec<String> = gateways.iter().map(|g| g.base.clone()).collect();
    let last_prompt = format!("prm_{}", ROUNDS - 1);
    let clients: Vec<_> = (0..3)
        .map(|first| {
            let (bases, id, token) = (bases.clone(), session.id.clone(), token.clone());
            tokio::spawn(chaos_client(bases, id, token, first, last_prompt.clone()))
        })
        .collect();
    let mut database_connection = PgConnection::connect(&database.url).await.unwrap();

    let words: Vec<String> = (1..=60).map(|word| format!("w{word}")).collect();
    for round in 0..ROUNDS {
        let prompt_id = format!("prm_{round}");
        let api = Api::new(&gateways[round % 3], &token);
        // Sent again with the same id until a gateway admits it: it runs once whatever the
        // retries.
        let content = format!("[[delay:50]] [[say:{}]]", words.join(" "));
        let body = serde_json::json!({"prompt_id": prompt_id, "content": content});
        let path = format!("/v1/sessions/{}/messages", session.id);
        loop {
            let (status, answer) = api
                .call(reqwest::Method::POST, &path, Some(body.clone()))
                .await;
            match status {
                202 => break,
                503 => tokio::time::sleep(Duration::from_millis(250)).await,
                other => panic!("{other}: {answer}"),
            }
        }
        let ended = |e: &Event| {
            matches!(e, Event::TurnCompleted(t) if t.prompt_id == prompt_id)
                || matches!(e, Event::TurnCancelled(t) if t.prompt_id == prompt_id)
        };
        if round + 1 < ROUNDS {
            // Killed mid-turn: whoever runs the session as its first words stream.
            logged(&api, &session.id, |e| matches!(e, Event::TextDelta(_))).await;
            let holder: String =
                sqlx::query_scalar("SELECT gateway_id FROM session_leases WHERE session_id = $1")
                    .bind(&session.id)
                    .fetch_one(&mut database_connection)
                    .await
                    .unwrap();
            let dead = names.iter().position(|name| *name == holder).unwrap();
            gateways[dead].kill();
            if round % 2 == 1 {
                // Back at once, under the same name: it takes its sessions back.
                gateways[dead].restart();
            } else {
                // Back once another gateway has taken the session over.
                let survivor = Api::new(&gateways[(dead + 1) % 3], &token);
                logged(&survivor, &session.id, &ended).await;
                gateways[dead].restart();
            }
        }
        logged(
            &Api::new(&gateways[(round + 1) % 3], &token),
            &session.id,
            &ended,
        )
        .await;
    }

    let log = whole_log(&Api::new(&gateways[0], &token), &session.id).await;
    let seqs: Vec<u64> = log.iter().map(|event| event.seq).collect();
    assert_eq!(
        seqs,
        (1..=log.len() as u64).collect::<Vec<_>>(),
        "a dense log"
    );
    for client in clients {
        let received = client.await.unwrap();
        assert_eq!(
            received,
            log[..received.len()],
            "each client saw the log, as logged"
        );
    }
    for round in 0..ROUNDS {
        let prompt_id = format!("prm_{round}");
        let count =
            |wanted: &dyn Fn(&Event) -> bool| log.iter().filter(|e| wanted(&e.event)).count();
        let messages = count(&|e| matches!(e, Event::UserMessage(m) if m.prompt_id == prompt_id));
        let starts = count(&|e| matches!(e, Event::TurnStarted(t) if t.prompt_id == prompt_id));
        let ends = count(&|e| {
            matches!(e, Event::TurnCompleted(t) if t.prompt_id == prompt_id)
                || matches!(e, Event::TurnCancelled(t) if t.prompt_id == prompt_id)
        });
        assert_eq!((messages, starts, ends), (1, 1, 1), "{prompt_id} ran once");
    }
    let completed = log
        .iter()
        .any(|e| matches!(&e.event, Event::TurnCompleted(t) if t.prompt_id == last_prompt));
    assert!(completed, "the last prompt, not killed, completed");
    let cut_short = (log.iter())
        .filter(|e| matches!(&e.event, Event::AgentError(error) if error.kind == "agent_exited"))
        .count();
    assert!(cut_short >= 1, "the kills landed mid-turn");
    drop(gateways);
    database.drop_database().await;
}
