//! Subscriptions by subject, for a bus to hand each message to: shared by every bus.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::SUBSCRIPTION_BUFFER;

/// A subject's subscriptions, by id.
type Subscriptions = Vec<(u64, mpsc::Sender<Bytes>)>;

/// Each subject's subscriptions, each a bounded queue that drops what it has no room for.
#[derive(Default)]
pub(crate) struct Routes {
    table: Mutex<HashMap<String, Subscriptions>>,
    next_id: AtomicU64,
}

impl Routes {
    fn table(&self) -> MutexGuard<'_, HashMap<String, Subscriptions>> {
        self.table
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// A new subscription to `subject`: its id, its queue, and whether it is the subject's first.
    pub fn add(&self, subject: &str) -> (u64, mpsc::Receiver<Bytes>, bool) {
        let (sender, receiver) = mpsc::channel(SUBSCRIPTION_BUFFER);
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let mut table = self.table();
        let list = table.entry(subject.to_owned()).or_default();
        list.push((id, sender));
        (id, receiver, list.len() == 1)
    }

    /// Removes subscription `id` of `subject`; true if the subject has none left.
    pub fn remove(&self, subject: &str, id: u64) -> bool {
        let mut table = self.table();
        let Some(list) = table.get_mut(subject) else {
            return false;
        };
        list.retain(|(other, _)| *other != id);
        let last = list.is_empty();
        if last {
            table.remove(subject);
        }
        last
    }

    /// Hands `payload` to every subscription of `subject`; how many had no room for it.
    pub fn deliver(&self, subject: &str, payload: &Bytes) -> u64 {
        let table = self.table();
        let subscriptions = table.get(subject).into_iter().flatten();
        (subscriptions
            .filter(|(_, queue)| queue.try_send(payload.clone()).is_err())
            .count()) as u64
    }

    /// Every subject with a subscription.
    #[cfg(feature = "redis")]
    pub fn subjects(&self) -> Vec<String> {
        self.table().keys().cloned().collect()
    }
}
