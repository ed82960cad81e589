//! Counters and gauges of the engine, read by the server's `/metrics`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A gauge with one value per session, summed when read.
#[derive(Debug, Default)]
struct SessionGauge(Mutex<HashMap<String, usize>>);

impl SessionGauge {
    fn set(&self, session_id: &str, value: usize) {
        let mut values = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        if value == 0 {
            values.remove(session_id);
        } else {
            values.insert(session_id.to_owned(), value);
        }
    }

    fn sum(&self) -> u64 {
        let values = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        values.values().sum::<usize>() as u64
    }
}

/// The engine's metrics; cheap to update from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    events_appended: AtomicU64,
    slow_consumers_closed: AtomicU64,
    hubs_running: AtomicU64,
    connections: SessionGauge,
    queued_prompts: SessionGauge,
}

/// A reading of every metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricsReading {
    /// Events persisted and broadcast since start.
    pub events_appended: u64,
    /// Connections closed with 1013 since start.
    pub slow_consumers_closed: u64,
    /// Sessions with a running hub.
    pub hubs_running: u64,
    /// Open client connections.
    pub connections: u64,
    /// Prompts waiting behind a running turn.
    pub queued_prompts: u64,
}

impl Metrics {
    pub(crate) fn events_appended(&self, count: usize) {
        self.events_appended.fetch_add(count as u64, Relaxed);
    }

    pub(crate) fn slow_consumers_closed(&self, count: usize) {
        self.slow_consumers_closed.fetch_add(count as u64, Relaxed);
    }

    pub(crate) fn hub_started(&self) {
        self.hubs_running.fetch_add(1, Relaxed);
    }

    pub(crate) fn hub_stopped(&self) {
        self.hubs_running.fetch_sub(1, Relaxed);
    }

    pub(crate) fn set_connections(&self, session_id: &str, count: usize) {
        self.connections.set(session_id, count);
    }

    pub(crate) fn set_queued_prompts(&self, session_id: &str, count: usize) {
        self.queued_prompts.set(session_id, count);
    }

    /// The current values.
    pub fn read(&self) -> MetricsReading {
        MetricsReading {
            events_appended: self.events_appended.load(Relaxed),
            slow_consumers_closed: self.slow_consumers_closed.load(Relaxed),
            hubs_running: self.hubs_running.load(Relaxed),
            connections: self.connections.sum(),
            queued_prompts: self.queued_prompts.sum(),
        }
    }
}
