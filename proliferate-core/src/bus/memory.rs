//! A bus inside one process: every gateway built on the same [`MemoryBus`] hears the others.
//! A switch drops the messages of chosen subjects, as a lossy network would.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::routes::Routes;
use super::{Bus, BusError, BusSubscription};

#[derive(Default)]
struct Shared {
    routes: Routes,
    /// Messages on subjects that start with this are dropped.
    dropping: Mutex<Option<String>>,
    dropped: AtomicU64,
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
        self.shared.routes.remove(&self.subject, self.id);
    }
}

#[async_trait::async_trait]
impl Bus for MemoryBus {
    fn publish(&self, subject: &str, payload: Bytes) {
        let dropping = (self.0.dropping.lock()).unwrap_or_else(|poison| poison.into_inner());
        let dropped = match dropping.as_deref() {
            Some(prefix) if subject.starts_with(prefix) => 1,
            _ => self.0.routes.deliver(subject, &payload),
        };
        self.0.dropped.fetch_add(dropped, Ordering::SeqCst);
    }

    async fn subscribe(&self, subject: &str) -> Result<BusSubscription, BusError> {
        let (id, receiver, _) = self.0.routes.add(subject);
        let unsubscribe = Unsubscribe {
            shared: self.0.clone(),
            subject: subject.to_owned(),
            id,
        };
        Ok(BusSubscription::new(receiver, unsubscribe))
    }
}
