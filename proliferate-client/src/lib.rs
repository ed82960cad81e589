//! Rust client for the Proliferate gateway.
//!
//! Built on `proliferate_core::protocol` alone, with no server dependencies.

pub use proliferate_core::protocol;
