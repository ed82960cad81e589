//! A busy store (`docs/protocol.md` section 8): while another process holds the database's write
//! lock, callers get `503 unavailable`, the session's events wait in the hub and are written once
//! the store answers again, and connected clients are never told the session ended.

mod support;

use proliferate_core::protocol::v1::*;
use reqwest::Method;
use serde_json::json;
use sqlx::Connection;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_store_answers_unavailable_and_loses_nothing_once_it_is_back() {
    // A liveness timeout (three heartbeats) longer than the test, for a client that only reads,
    // and a lease that outlasts the lock (past it the hub would stop, as it must when another
    // gateway may take the session over).
    let arguments = ["--heartbeat-secs", "60", "--lease-ttl-secs", "600"];
    let server = TestServer::start_with_environment(&arguments, &[]);
    let token = token("ada", "acme-store");
    let api = Api::new(&server, &token);
    let session = api.create_session().await;
    api.wait_for_status(&session.id, SessionStatus::Running)
        .await;
    let mut socket = connect(&server, &session.id, 0, &token).await;

    // A turn streams a word every 300 ms; the store locks after its first word.
    let words: Vec<String> = (1..=20).map(|word| format!("w{word}")).collect();
    let prompt = format!("[[delay:300]] [[say:{}]]", words.join(" "));
    api.prompt(&session.id, "prm_slow", &prompt).await;
    let mut frames = read_until(&mut socket, |frame| {
        matches!(
            event_of(frame).map(|envelope| &envelope.event),
            Some(Event::TextDelta(_))
        )
    })
    .await;
    let database = server.data_dir.join("proliferate.db");
    let mut lock = sqlx::SqliteConnection::connect(&format!("sqlite://{}", database.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut lock)
        .await
        .unwrap();
    // Held well past the store's busy timeout (5 s) while words keep coming: a write begun in
    // its first ten seconds fails, however slowly the words come on a busy machine.
    tokio::time::sleep(std::time::Duration::from_secs(15)).await;

    // While it is locked, admission cannot write its prompt: 503, retry later.
    let (status, problem) = api
        .call(
            Method::POST,
            &format!("/v1/sessions/{}/messages", session.id),
            Some(json!({"prompt_id": "prm_locked", "content": "[[say:locked]]"})),
        )
        .await;
    assert_eq!(
        (status, &problem["code"]),
        (503, &json!("unavailable")),
        "{problem}"
    );
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    drop(lock);

    // The store answers again: the turn's every word arrives, in order, and the session goes on.
    frames.extend(read_until(&mut socket, |frame| is_turn_end(frame, "prm_slow")).await);
    let text: String = frames
        .iter()
        .filter_map(
            |(_, frame)| match event_of(frame).map(|envelope| &envelope.event) {
                Some(Event::TextDelta(delta)) => Some(delta.delta.clone()),
                _ => None,
            },
        )
        .collect();
    assert_eq!(text, words.join(" "));
    let seqs: Vec<u64> = frames
        .iter()
        .filter_map(|(_, frame)| event_of(frame).map(|envelope| envelope.seq))
        .collect();
    assert!(
        seqs.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "dense: {seqs:?}"
    );
    api.prompt(&session.id, "prm_after", "[[say:back]]").await;
    read_until(&mut socket, |frame| is_turn_end(frame, "prm_after")).await;

    // What the clients saw is what the log holds.
    let (status, page) = api
        .call(
            Method::GET,
            &format!("/v1/sessions/{}/events?limit=5000", session.id),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let page: EventPage = serde_json::from_value(page).unwrap();
    let logged: Vec<u64> = page.events.iter().map(|envelope| envelope.seq).collect();
    assert_eq!(logged, (1..=logged.len() as u64).collect::<Vec<_>>());
    assert!(seqs.iter().all(|seq| logged.contains(seq)));
    assert!(
        server.log().contains("the store is busy; retrying"),
        "control: the hub did meet the lock"
    );
}
