//! `Connection::subscribe`: pushes every update to a listener until the connection closes, or
//! until the subscription is cancelled, and says when it has finished.

mod support;

use std::sync::Arc;
use std::time::Duration;

use proliferate_client::protocol::v1::*;
use proliferate_client::{ClientError, ConnectionOptions, Listener, Update};
use support::*;
use tokio::sync::mpsc;

/// What a listener heard.
#[derive(Debug)]
enum Heard {
    Update(Box<Update>),
    Error(ClientError),
    Closed,
}

struct Forward(mpsc::UnboundedSender<Heard>);

impl Listener for Forward {
    fn on_update(&self, update: Update) {
        let _ = self.0.send(Heard::Update(Box::new(update)));
    }
    fn on_error(&self, error: ClientError) {
        let _ = self.0.send(Heard::Error(error));
    }
    fn on_closed(&self) {
        let _ = self.0.send(Heard::Closed);
    }
}

async fn heard(receiver: &mut mpsc::UnboundedReceiver<Heard>) -> Heard {
    tokio::time::timeout(Duration::from_secs(120), receiver.recv())
        .await
        .expect("heard in time")
        .expect("the listener is alive")
}

async fn until_finished(subscription: &proliferate_client::Subscription) {
    tokio::time::timeout(Duration::from_secs(120), async {
        while !subscription.is_finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_delivers_until_cancelled_or_closed() {
    let server = TestServer::start().await;
    let client = client(&server.url());
    let session = client
        .create_session(&CreateSessionRequest::default())
        .await
        .unwrap();
    let connection = Arc::new(client.connect(&session.id, ConnectionOptions::default()));
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let subscription = connection.subscribe(Arc::new(Forward(sender)));
    let admission = client
        .send_message(
            &session.id,
            &SendMessageRequest {
                content: "[[say:pushed]]".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut text = String::new();
    loop {
        match heard(&mut receiver).await {
            Heard::Update(update) => {
                if let Update::Event(envelope) = *update {
                    match envelope.event {
                        Event::TextDelta(delta) => text += &delta.delta,
                        Event::TurnCompleted(turn) if turn.prompt_id == admission.prompt_id => {
                            break;
                        }
                        _ => {}
                    }
                }
            }
            Heard::Error(error) => panic!("the subscription failed: {error}"),
            Heard::Closed => panic!("the subscription ended early"),
        }
    }
    assert_eq!(text, "pushed");
    assert!(!subscription.is_finished(), "it runs until cancelled");
    subscription.cancel();
    until_finished(&subscription).await;
    // A cancelled subscription lets its listener go and never says it closed.
    let rest = tokio::time::timeout(Duration::from_secs(120), async {
        let mut rest = Vec::new();
        while let Some(heard) = receiver.recv().await {
            rest.push(heard);
        }
        rest
    })
    .await
    .expect("the listener is let go");
    assert!(
        rest.iter().all(|heard| matches!(heard, Heard::Update(_))),
        "{rest:?}"
    );

    // A connection that closes ends its subscription, and the listener hears so.
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let subscription = connection.subscribe(Arc::new(Forward(sender)));
    connection.close().await;
    loop {
        match heard(&mut receiver).await {
            Heard::Closed => break,
            Heard::Error(error) => panic!("closing is not a failure: {error}"),
            Heard::Update(_) => {}
        }
    }
    until_finished(&subscription).await;
}
