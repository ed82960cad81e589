//! Counted places per key (an organisation, an address), each key up to a cap; a place is
//! given back when its permit drops.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

/// Places taken per key.
#[derive(Debug)]
pub struct Quota<K: Hash + Eq> {
    taken: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: Hash + Eq> Default for Quota<K> {
    fn default() -> Self {
        Self {
            taken: Arc::default(),
        }
    }
}

impl<K: Hash + Eq> Clone for Quota<K> {
    fn clone(&self) -> Self {
        Self {
            taken: self.taken.clone(),
        }
    }
}

/// One place of a [`Quota`], held until dropped.
#[derive(Debug)]
pub struct QuotaPermit<K: Hash + Eq> {
    quota: Quota<K>,
    key: Option<K>,
}

impl<K: Hash + Eq + Clone> Quota<K> {
    fn taken(&self) -> MutexGuard<'_, HashMap<K, usize>> {
        self.taken
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Takes a place for `key`, unless `cap` are already taken; `None` sets no cap.
    pub fn try_take(&self, key: &K, cap: Option<usize>) -> Option<QuotaPermit<K>> {
        let mut taken = self.taken();
        let count = taken.entry(key.clone()).or_default();
        if cap.is_some_and(|cap| *count >= cap) {
            return None;
        }
        *count += 1;
        Some(QuotaPermit {
            quota: self.clone(),
            key: Some(key.clone()),
        })
    }

    /// How many places `key` holds.
    pub fn taken_by(&self, key: &K) -> usize {
        self.taken().get(key).copied().unwrap_or(0)
    }
}

impl<K: Hash + Eq> Drop for QuotaPermit<K> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        let mut taken = self
            .quota
            .taken
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(count) = taken.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                taken.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_holds_at_most_its_cap_and_a_dropped_permit_frees_its_place() {
        let quota = Quota::default();
        let first = quota.try_take(&"acme", Some(2)).expect("a place");
        let _second = quota.try_take(&"acme", Some(2)).expect("a place");
        assert!(quota.try_take(&"acme", Some(2)).is_none());
        assert!(quota.try_take(&"globex", Some(2)).is_some(), "another key");
        drop(first);
        assert_eq!(quota.taken_by(&"acme"), 1);
        assert!(quota.try_take(&"acme", Some(2)).is_some());
        assert!(quota.try_take(&"acme", None).is_some(), "no cap");
    }

    #[test]
    fn a_key_with_no_place_taken_is_forgotten() {
        let quota = Quota::default();
        drop(quota.try_take(&"acme", Some(1)));
        assert!(quota.taken().is_empty());
    }
}
