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
    // The API reads the same log (later, so perhaps a little further on).
    assert!(api.session(&session.id).await.head_seq >= logged as u64);
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

/// A socket to the session once its gateway welcomed it, or the code it was refused with.
async fn welcomed(
    server: &TestServer,
    session_id: &str,
    after_seq: u64,
    token: &str,
) -> Result<Socket, ErrorCode> {
    let mut socket = try_connect(server, session_id, after_seq, token)
        .await
        .expect("the socket opens");
    match receive(&mut socket, Duration::from_secs(60)).await {
        Received::Frame(_, frame) => match *frame {
            ServerFrame::Welcome(_) => Ok(socket),
            ServerFrame::Error(error) => Err(error.code),
            other => panic!("a welcome or an error first, not {other:?}"),
        },
        Received::Closed(close) => panic!("closed before a first frame: {close:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_database_run_each_session_once_and_one_takes_over_when_the_other_dies()
{
    let database = TestDatabase::create().await;
    let lease = ["--lease-ttl-secs", "3"];
    let gateway = |id: &str| {
        let arguments = ["--database-url", &database.url, "--gateway-id", id];
        TestServer::start(&[&arguments[..], &lease[..]].concat())
    };
    let mut first = gateway("first");
    let second = gateway("second");
    let token = token("ada", "acme");
    let (api, other_api) = (Api::new(&first, &token), Api::new(&second, &token));
    let session = api.create_session().await;
    let mut socket = connect(&first, &session.id, 0, &token).await;
    let words: Vec<String> = (1..=150).map(|word| format!("w{word}")).collect();
    let prompt = format!("[[delay:20]] [[say:{}]]", words.join(" "));
    api.prompt(&session.id, "prm_failover", &prompt).await;
    let before = read_until(&mut socket, |frame| {
        matches!(
            event_of(frame).map(|envelope| &envelope.event),
            Some(Event::TextDelta(_))
        )
    })
    .await;

    // The session runs on the first; the second says so rather than run it twice.
    let refused = welcomed(&second, &session.id, 0, &token).await;
    assert_eq!(
        refused.err(),
        Some(ErrorCode::Unavailable),
        "the second gateway does not serve a session the first runs"
    );
    assert_eq!(
        other_api.session(&session.id).await.id,
        session.id,
        "reads work anywhere"
    );

    // The first dies mid-turn; once its lease lapses, the second serves the session.
    first.kill();
    let cursor = *seqs(&before).last().unwrap();
    let killed_at = std::time::Instant::now();
    let mut socket = loop {
        assert!(
            killed_at.elapsed() < Duration::from_secs(120),
            "the second takes over within a few lease lifetimes"
        );
        match welcomed(&second, &session.id, cursor, &token).await {
            Ok(socket) => break socket,
            Err(code) => {
                assert_eq!(code, ErrorCode::Unavailable);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    let after = read_until(&mut socket, |frame| is_turn_end(frame, "prm_failover")).await;
    let mut seen = seqs(&before);
    seen.extend(seqs(&after));
    assert_eq!(
        seen,
        (1..=*seen.last().unwrap()).collect::<Vec<_>>(),
        "no gap and no duplicate across gateways"
    );
    let interrupted = after.iter().any(|(_, frame)| {
        matches!(event_of(frame).map(|envelope| &envelope.event),
            Some(Event::AgentError(error)) if error.kind == "agent_exited")
    });
    assert!(
        interrupted,
        "the turn the first gateway ran is reported cut short"
    );

    // The second runs it from here on.
    other_api
        .prompt(&session.id, "prm_after", "[[say:served by the second]]")
        .await;
    read_until(&mut socket, |frame| is_turn_end(frame, "prm_after")).await;
    drop((socket, second));
    database.drop_database().await;
}
