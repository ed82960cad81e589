//! `Connection::next_batch`: a backlog in few calls, every seq once, and a final error kept.

mod support;

use std::time::Duration;

use proliferate_client::protocol::v1::*;
use proliferate_client::{ConnectionOptions, ReconnectPolicy, Update};
use support::*;

/// The next batch, within two minutes.
async fn next_batch(
    connection: &proliferate_client::Connection,
    limit: usize,
) -> Option<Result<Vec<Update>, proliferate_client::ClientError>> {
    tokio::time::timeout(Duration::from_secs(120), connection.next_batch(limit))
        .await
        .expect("a batch in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_arrives_in_batches_with_every_seq_once_then_the_final_error() {
    let mut server = TestServer::start().await;
    let client = client(&server.url());
    let (session, mut writer) = running_session(&client).await;
    writer
        .send_prompt("[[stamps:300]]", Default::default())
        .await
        .unwrap();
    let turn = events_until(&mut writer, |envelope| {
        matches!(envelope.event, Event::TurnCompleted(_))
    })
    .await;
    let head = turn.last().unwrap().seq;
    drop(writer);

    let reader = client.connect(
        &session.id,
        ConnectionOptions {
            reconnect: ReconnectPolicy {
                initial_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(10),
                max_attempts: Some(1),
            },
            ..Default::default()
        },
    );
    // The worker has queued the whole backlog once its cursor reaches the head.
    while reader.received_seq() < head {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = next_batch(&reader, 64).await.unwrap().unwrap();
    assert_eq!(
        first.len(),
        64,
        "a batch takes what is queued, up to its limit"
    );
    assert!(matches!(first[0], Update::Connected(_)));

    server.server.take().unwrap().stop().await;
    let mut seqs = Vec::new();
    let mut updates = first;
    let error = loop {
        for update in updates {
            if let Update::Event(envelope) = update {
                seqs.push(envelope.seq);
            }
        }
        match next_batch(&reader, 64).await.expect("open until the error") {
            Ok(batch) => {
                assert!((1..=64).contains(&batch.len()));
                updates = batch;
            }
            Err(error) => break error,
        }
    };
    assert_eq!(
        seqs,
        (1..=head).collect::<Vec<_>>(),
        "every seq once, in order"
    );
    assert!(
        matches!(&error, proliferate_client::ClientError::Closed(reason) if reason.starts_with("gave up")),
        "{error:?}"
    );
    assert!(
        next_batch(&reader, 64).await.is_none(),
        "the error is final"
    );
}
