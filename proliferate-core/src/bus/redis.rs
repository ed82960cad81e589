//! The bus over Redis publish-subscribe: one connection publishes, in batches, and one
//! subscribes to every subject this gateway follows, routing each message to its subscriptions.
//! Both reconnect on their own; what is published while a connection is down is lost, which the
//! bus allows (the log fills the gap).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::routes::Routes;
use super::{Bus, BusError, BusSubscription};

/// Messages waiting to be published before new ones are dropped.
const PUBLISH_BUFFER: usize = 65_536;
/// The most messages sent to Redis in one pipeline.
const PUBLISH_BATCH: usize = 256;
/// How long a lost connection waits before it is made again.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);
/// How often the subscribing connection is pinged, so a connection that went silent (a
/// half-open socket) is noticed and made again.
const PING_EVERY: Duration = Duration::from_secs(5);
/// How long a ping, or a subscription's confirmation, may take.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

enum Change {
    Subscribe(String, oneshot::Sender<()>),
    Unsubscribe(String),
}

struct Shared {
    routes: Routes,
    changes: mpsc::UnboundedSender<Change>,
}

/// A bus on a Redis server (`redis://host:port/`). Cheap to clone.
#[derive(Clone)]
pub struct RedisBus {
    shared: Arc<Shared>,
    outbox: mpsc::Sender<(String, Bytes)>,
}

fn unreachable(error: redis::RedisError) -> BusError {
    BusError::Unreachable(error.to_string())
}

impl RedisBus {
    /// Connects to the Redis server at `url`, checking it answers.
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        let client = redis::Client::open(url).map_err(unreachable)?;
        let publisher = client
            .get_multiplexed_async_connection()
            .await
            .map_err(unreachable)?;
        let (outbox, queued) = mpsc::channel(PUBLISH_BUFFER);
        let (changes, requested) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            routes: Routes::default(),
            changes,
        });
        tokio::spawn(publish(client.clone(), publisher, queued));
        tokio::spawn(route(client, Arc::downgrade(&shared), requested));
        Ok(Self { shared, outbox })
    }
}

/// Sends what is queued, a pipeline at a time, until the bus is dropped.
async fn publish(
    client: redis::Client,
    mut connection: redis::aio::MultiplexedConnection,
    mut queued: mpsc::Receiver<(String, Bytes)>,
) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while queued.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        let mut pipeline = redis::pipe();
        for (subject, payload) in batch.drain(..) {
            pipeline
                .cmd("PUBLISH")
                .arg(subject)
                .arg(&payload[..])
                .ignore();
        }
        if let Err(error) = pipeline.exec_async(&mut connection).await {
            tracing::warn!(error = %error, "publishing on the bus failed; reconnecting");
            loop {
                tokio::time::sleep(RECONNECT_AFTER).await;
                match client.get_multiplexed_async_connection().await {
                    Ok(fresh) => break connection = fresh,
                    Err(error) => tracing::warn!(error = %error, "the bus is unreachable"),
                }
            }
        }
    }
}

/// Holds the subscribing connection (made again whenever it is lost, with every subject
/// subscribed again) and routes each message to the subject's subscriptions.
async fn route(
    client: redis::Client,
    shared: std::sync::Weak<Shared>,
    mut requested: mpsc::UnboundedReceiver<Change>,
) {
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    'connect: loop {
        let Some(subjects) = shared.upgrade().map(|shared| shared.routes.subjects()) else {
            return;
        };
        let (mut sink, mut messages) = match client.get_async_pubsub().await {
            Ok(pubsub) => pubsub.split(),
            Err(error) => {
                tracing::warn!(error = %error, "the bus is unreachable");
                tokio::time::sleep(RECONNECT_AFTER).await;
                continue;
            }
        };
        if !subjects.is_empty()
            && let Err(error) = sink.subscribe(&subjects).await
        {
            tracing::warn!(error = %error, "subscribing on the bus failed");
            tokio::time::sleep(RECONNECT_AFTER).await;
            continue;
        }
        for ack in waiting.drain(..) {
            let _ = ack.send(());
        }
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
        loop {
            tokio::select! {
                _ = ping.tick() => {
                    let answered = tokio::time::timeout(ANSWER_WITHIN, sink.ping::<redis::Value>()).await;
                    if !matches!(answered, Ok(Ok(_))) {
                        tracing::warn!("the bus did not answer a ping; reconnecting");
                        continue 'connect;
                    }
                }
                change = requested.recv() => {
                    let result = match change {
                        None => return,
                        Some(Change::Subscribe(subject, ack)) => {
                            let result = sink.subscribe(&subject).await;
                            match result {
                                Ok(()) => drop(ack.send(())),
                                // Acknowledged once the connection is made again.
                                Err(_) => waiting.push(ack),
                            }
                            result
                        }
                        Some(Change::Unsubscribe(subject)) => sink.unsubscribe(&subject).await,
                    };
                    if let Err(error) = result {
                        tracing::warn!(error = %error, "the bus connection was lost");
                        tokio::time::sleep(RECONNECT_AFTER).await;
                        continue 'connect;
                    }
                }
                message = messages.next() => {
                    let Some(message) = message else {
                        tracing::warn!("the bus connection was lost; reconnecting");
                        tokio::time::sleep(RECONNECT_AFTER).await;
                        continue 'connect;
                    };
                    let Some(shared) = shared.upgrade() else { return };
                    let payload = Bytes::copy_from_slice(message.get_payload_bytes());
                    // A subscription that is full loses the message, as the bus may.
                    shared.routes.deliver(message.get_channel_name(), &payload);
                }
            }
        }
    }
}

struct Unsubscribe {
    shared: Arc<Shared>,
    subject: String,
    id: u64,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        if self.shared.routes.remove(&self.subject, self.id) {
            let change = Change::Unsubscribe(self.subject.clone());
            let _ = self.shared.changes.send(change);
        }
    }
}

#[async_trait::async_trait]
impl Bus for RedisBus {
    fn publish(&self, subject: &str, payload: Bytes) {
        if self.outbox.try_send((subject.to_owned(), payload)).is_err() {
            tracing::warn!(subject, "the bus is behind; a message was dropped");
        }
    }

    async fn subscribe(&self, subject: &str) -> Result<BusSubscription, BusError> {
        let (id, receiver, first) = self.shared.routes.add(subject);
        let unsubscribe = Unsubscribe {
            shared: self.shared.clone(),
            subject: subject.to_owned(),
            id,
        };
        if first {
            let (ack, acknowledged) = oneshot::channel();
            let change = Change::Subscribe(subject.to_owned(), ack);
            if self.shared.changes.send(change).is_err() {
                return Err(BusError::Unreachable("the bus has stopped".into()));
            }
            // What is published once this returns reaches the subscription.
            match tokio::time::timeout(ANSWER_WITHIN, acknowledged).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(BusError::Unreachable("the bus has stopped".into())),
                Err(_) => {
                    return Err(BusError::Unreachable(
                        "the bus did not confirm a subscription in time".into(),
                    ));
                }
            }
        }
        Ok(BusSubscription::new(receiver, unsubscribe))
    }
}
