//! Proliferate's core: the wire protocol, and (with the `engine` feature) the session lifecycle,
//! sandbox providers, agent drivers and the per-session hub that streams an agent's work to every
//! client.
//!
//! Built with `default-features = false`, this crate is the protocol module alone: serde types
//! with no tokio and no I/O, which is what `proliferate-client` and the language bindings use.

pub mod protocol;
