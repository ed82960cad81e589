//! A bus inside one process: every gateway built on the same [`MemoryBus`] hears the others.
//! A switch drops the messages of chosen subjects, as a lossy network would.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Bus, BusError, BusSubscription, SUBSCRIPTION_BUFFER};

type Subscribers = HashMap<String, Vec<(u64, mpsc::Sender<Bytes>)>>;

#[derive(Default)]
struct Shared {
    subscribers: Mutex<Subscribers>,
    next_id: AtomicU64,
    /// Messages on subjects that start with this are dropped.
    dropping: Mutex<Option<String>>,
    dropped: AtomicU64,
}

impl Shared {
    fn subscribers(&self) -> MutexGuard<'_, Subscribers> {
        self.subscribers
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// An in-process bus. Cheap to clone; clones share subscribers.
#[derive(Clone, Default)]
pub struct MemoryBus(Arc<Shared>);

impl MemoryBus {
    /// A bus with no subscriber.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops every message published on a subject that starts with `prefix` (`""` for all),
    /// until called with `None`.
    pub fn drop_messages(&self, prefix: Option<&str>) {
        let mut dropping = (self.0.dropping.lock()).unwrap_or_else(|poison| poison.into_inner());
        *dropping = prefix.map(str::to_owned);
    }

    /// How many messages were dropped so far, by the switch or a full subscription.
    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::SeqCst)
    }
}

struct Unsubscribe {
    shared: Arc<Shared>,
    subject: String,
    id: u64,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        let mut subscribers = self.shared.subscribers();
        if let Some(list) = subscribers.get_mut(&self.subject) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                subscribers.remove(&self.subject);
            }
        }
    }
}

#[async_trait::async_trait]
impl Bus for MemoryBus {
    fn publish(&self, subject: &str, payload: Bytes) {
        let dropping = (self.0.dropping.lock()).unwrap_or_else(|poison| poison.into_inner());
        if dropping
            .as_deref()
            .is_some_and(|prefix| subject.starts_with(prefix))
        {
            self.0.dropped.fetch_add(1, Ordering::SeqCst);
            return;
        }
        drop(dropping);
        let subscribers = self.0.subscribers();
        for (_, subscriber) in subscribers.get(subject).into_iter().flatten() {
            if subscriber.try_send(payload.clone()).is_err() {
                self.0.dropped.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    async fn subscribe(&self, subject: &str) -> Result<BusSubscription, BusError> {
        let (sender, receiver) = mpsc::channel(SUBSCRIPTION_BUFFER);
        let id = self.0.next_id.fetch_add(1, Ordering::SeqCst);
        (self.0.subscribers())
            .entry(subject.to_owned())
            .or_default()
            .push((id, sender));
        let unsubscribe = Unsubscribe {
            shared: self.0.clone(),
            subject: subject.to_owned(),
            id,
        };
        Ok(BusSubscription::new(receiver, unsubscribe))
    }
}
