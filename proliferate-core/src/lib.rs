//! Proliferate's core: the wire protocol, and (with the `engine` feature) the session lifecycle,
//! sandbox providers, agent drivers and the per-session hub that streams an agent's work to every
//! client.
//!
//! Built with `default-features = false`, this crate is the protocol module and the transcript
//! reducer alone: serde types with no tokio and no I/O, which is what `proliferate-client` and
//! the language bindings use.

pub mod protocol;
pub mod transcript;

#[cfg(feature = "engine")]
pub mod agent;
#[cfg(feature = "engine")]
pub mod auth;
#[cfg(feature = "engine")]
pub mod bus;
#[cfg(feature = "engine")]
pub mod clock;
#[cfg(feature = "engine")]
mod error;
#[cfg(feature = "engine")]
pub mod gateway;
#[cfg(feature = "engine")]
pub mod hub;
#[cfg(feature = "engine")]
pub mod metrics;
#[cfg(feature = "engine")]
pub mod quota;
#[cfg(feature = "engine")]
pub mod sandbox;
#[cfg(feature = "engine")]
pub mod session;
#[cfg(feature = "engine")]
pub mod store;

#[cfg(feature = "engine")]
pub use error::GatewayError;
#[cfg(feature = "engine")]
pub use gateway::{Gateway, GatewayParts};
