//! Counters and gauges of the engine, read by the server's `/metrics`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

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

/// Upper bounds of the latency histograms' buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A latency histogram with fixed buckets, updated without locks.
#[derive(Debug, Default)]
struct Histogram {
    /// Observations at most each bound; the last counts those above every bound.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(latency.as_micros() as u64, Relaxed);
    }

    fn read(&self) -> HistogramReading {
        HistogramReading {
            buckets: std::array::from_fn(|bucket| self.buckets[bucket].load(Relaxed)),
            sum: Duration::from_micros(self.sum_micros.load(Relaxed)),
        }
    }
}

/// A reading of a latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HistogramReading {
    /// Observations per bucket of [`LATENCY_BUCKETS`] (not cumulative); the last holds those
    /// above every bound.
    pub buckets: [u64; LATENCY_BUCKETS.len() + 1],
    /// The sum of every observation.
    pub sum: Duration,
}

/// Where an event is on its way from the agent to the clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Written to the store, counted from the hub receiving it.
    Persisted,
    /// Written to a client's socket, counted from the hub receiving it (per flush, its oldest
    /// event).
    Sent,
}

/// The engine's metrics; cheap to update from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    persisted: Histogram,
    sent: Histogram,
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
    /// From the hub receiving an event to the store holding it.
    pub persisted: HistogramReading,
    /// From the hub receiving an event to a client's socket.
    pub sent: HistogramReading,
}

impl Metrics {
    /// Records how long an event took to reach `stage`.
    pub fn observe(&self, stage: Stage, latency: Duration) {
        match stage {
            Stage::Persisted => self.persisted.observe(latency),
            Stage::Sent => self.sent.observe(latency),
        }
    }

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
            persisted: self.persisted.read(),
            sent: self.sent.read(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_the_first_bucket_that_holds_them() {
        let metrics = Metrics::default();
        for micros in [100, 500, 501, 3_000_000] {
            metrics.observe(Stage::Sent, Duration::from_micros(micros));
        }
        let sent = metrics.read().sent;
        assert_eq!(sent.buckets[0], 2, "at most 0.5 ms");
        assert_eq!(sent.buckets[1], 1, "at most 1 ms");
        assert_eq!(sent.buckets[LATENCY_BUCKETS.len()], 1, "above every bound");
        assert_eq!(sent.sum, Duration::from_micros(3_001_101));
        assert_eq!(metrics.read().persisted, HistogramReading::default());
    }
}
