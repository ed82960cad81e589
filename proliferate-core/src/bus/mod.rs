//! The bus between gateways: subjects that carry a session's live frames from the gateway that
//! runs it to every other gateway with a client on it, and gateways' requests to each other.
//!
//! A bus delivers at most once, in order per subject, and never makes a publisher wait: what it
//! cannot carry it drops. Nothing depends on it for correctness. The log is the truth, and a
//! follower that sees a gap in seqs (or a head beyond its own) reads the missing events from the
//! log; a request not answered in time is sent again, and its id makes the repeat harmless.
//! Gateways seal what they publish (`seal.rs`): what is not sealed with their shared key is
//! dropped unread.
//! [`memory::MemoryBus`] serves one process (and tests, with a switch that drops messages);
//! `redis::RedisBus` (feature `redis`) serves many.

use bytes::Bytes;
use tokio::sync::mpsc;

pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;
mod routes;
pub(crate) mod seal;
pub(crate) mod wire;

pub use memory::MemoryBus;

/// Messages a subscription holds before it drops new ones.
pub const SUBSCRIPTION_BUFFER: usize = 4096;

/// Why the bus could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus refused or could not be reached.
    #[error("the bus is unreachable: {0}")]
    Unreachable(String),
}

/// Messages on one subject, in the order they were published. Dropping it unsubscribes.
pub struct BusSubscription {
    messages: mpsc::Receiver<Bytes>,
    _unsubscribe: Box<dyn Send + Sync>,
}

impl BusSubscription {
    /// A subscription reading `messages`; `unsubscribe` is dropped with it.
    pub fn new(messages: mpsc::Receiver<Bytes>, unsubscribe: impl Send + Sync + 'static) -> Self {
        Self {
            messages,
            _unsubscribe: Box::new(unsubscribe),
        }
    }

    /// The next message; `None` once the bus has closed.
    pub async fn next(&mut self) -> Option<Bytes> {
        self.messages.recv().await
    }
}

/// A publish-subscribe bus between gateways.
#[async_trait::async_trait]
pub trait Bus: Send + Sync {
    /// Publishes `payload` on `subject`, never waiting; dropped if the bus cannot take it now.
    fn publish(&self, subject: &str, payload: Bytes);

    /// Receives what is published on `subject` from now on.
    async fn subscribe(&self, subject: &str) -> Result<BusSubscription, BusError>;
}

/// The subject a session's live frames are published on.
pub fn session_subject(session_id: &str) -> String {
    format!("proliferate.session.{session_id}")
}

/// The subject a gateway receives requests, answers and connection reports on.
pub fn gateway_subject(gateway_id: &str) -> String {
    format!("proliferate.gateway.{gateway_id}")
}
