//! The cursor is what the application took, not what the connection received: a checkpoint
//! saved at any moment resumes with every event once, in order.

mod support;

use std::time::Duration;

use proliferate_client::{ConnectionOptions, PromptOptions, Update};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_from_checkpoints_taken_at_random_points_yields_every_event_once() {
    let server = TestServer::start().await;
    let client = client(&server.url());
    let (session, mut writer) = running_session(&client).await;
    let prompt = PromptOptions {
        prompt_id: Some("prm_checkpoint".into()),
        ..Default::default()
    };
    writer
        .send_prompt(long_prompt(300, 0), prompt)
        .await
        .unwrap();
    // The whole turn is in the log, so every resume replays a backlog the connection receives
    // faster than the application takes it.
    events_until(&mut writer, |envelope| {
        ends_turn(envelope, "prm_checkpoint")
    })
    .await;

    let seed = fastrand::u64(..);
    let mut random = fastrand::Rng::with_seed(seed);
    let (mut checkpoint, mut events, mut resumes) = (0, Vec::new(), 0);
    'resuming: loop {
        let options = ConnectionOptions {
            after_seq: checkpoint,
            ..Default::default()
        };
        let reader = client.connect(&session.id, options);
        for _ in 0..random.usize(1..40) {
            let envelope = loop {
                if let Update::Event(envelope) = next_update(&reader).await {
                    break envelope;
                }
            };
            let done = ends_turn(&envelope, "prm_checkpoint");
            events.push(envelope);
            if done {
                break 'resuming;
            }
            tokio::time::sleep(Duration::from_millis(random.u64(0..4))).await;
        }
        checkpoint = reader.last_seq();
        assert_eq!(checkpoint, events.last().unwrap().seq, "seed {seed}");
        resumes += 1;
    }
    assert!(resumes >= 5, "resumed {resumes} times (seed {seed})");
    assert_dense(&events, 0);
    let log = client.events(&session.id, 0, 10_000).await.unwrap();
    assert_eq!(events, log.events[..events.len()], "seed {seed}");
    drop(writer);
}
