//! The server on PostgreSQL (`--database-url`): sessions and their logs live in the database, a
//! killed server restarts on it, and clients resume from their cursor without gap or duplicate.
#![cfg(feature = "postgres")]

mod support;

use std::time::Duration;

use proliferate_core::protocol::v1::*;
use sqlx::{Connection, PgConnection};
use support::postgres::TestDatabase;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_postgres_keeps_its_log_there_and_resumes_after_a_kill() {
    let database = TestDatabase::create().await;
    let mut server = TestServer::start(&["--database-url", &database.url]);
    let token = token("ada", "acme");
    let api = Api::new(&server, &token);
    let session = api.create_session().await;
    let mut socket = connect(&server, &session.id, 0, &token).await;
    let words: Vec<String> = (1..=120).map(|word| format!("w{word}")).collect();
    let prompt = format!("[[delay:20]] [[say:{}]]", words.join(" "));
    api.prompt(&session.id, "prm_on_postgres", &prompt).await;
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
    let after = read_until(&mut socket, |frame| is_turn_end(frame, "prm_on_postgres")).await;
    let mut seen = seqs(&before);
    seen.extend(seqs(&after));
    assert_eq!(
        seen,
        (1..=*seen.last().unwrap()).collect::<Vec<_>>(),
        "no gap and no duplicate across the kill"
    );

    // The log is in PostgreSQL, and nothing in the data folder.
    let mut connection = PgConnection::connect(&database.url).await.unwrap();
    let logged: i64 = sqlx::query_scalar("SELECT MAX(seq) FROM events WHERE session_id = $1")
        .bind(&session.id)
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert!(logged as u64 >= *seen.last().unwrap());
    assert_eq!(api.session(&session.id).await.head_seq, logged as u64);
    assert!(!server.data_dir.join("proliferate.db").exists());
    drop((connection, server));
    database.drop_database().await;
}

#[test]
fn a_database_that_cannot_be_reached_stops_the_server_with_a_clear_error() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_proliferate-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url"])
        .arg("postgres://postgres@127.0.0.1:9/nowhere")
        .env("PROLIFERATE_DATA_DIR", tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unavailable"), "{stderr}");
}
