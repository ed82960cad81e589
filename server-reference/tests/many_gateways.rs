//! Three gateways on one PostgreSQL database and the machine's Redis (`--bus-url`): a client of
//! any gateway streams a session another runs, live, with no gap and no duplicate; prompts sent
//! to any gateway run once; presence counts every gateway's clients; and when the gateway running
//! the session is killed, its clients reconnect to another and go on from their cursor.
#![cfg(all(feature = "postgres", feature = "redis"))]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proliferate_core::protocol::v1::*;
use support::postgres::TestDatabase;
use support::*;

fn redis_url() -> String {
    std::env::var("PROLIFERATE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
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
    let (redis, run) = (redis_url(), std::process::id());
    let gateway = |name: &str| {
        let id = format!("{name}-{run}");
        TestServer::start(&[
            "--database-url",
            &database.url,
            "--bus-url",
            &redis,
            "--gateway-id",
            &id,
            "--lease-ttl-secs",
            "3",
        ])
    };
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
