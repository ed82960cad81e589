//! The UniFFI half of the `Proliferate` Swift package: conversion, async bridging and error
//! mapping over `proliferate-client`. Wire values become records and enums (`wire.rs`, generated from the schema, and
//! `records.rs`);
//! failures become one error enum carrying the protocol's codes.

/// Exports an `impl` block to Swift with its async methods on the tokio runtime: the one export
/// attribute for objects here.
macro_rules! export {
    ($item:item) => {
        #[uniffi::export(async_runtime = "tokio")]
        $item
    };
}

mod client;
mod connection;
mod error;
mod protocol;
mod records;
mod wire;

pub use client::{Client, ClientOptions, CreateSessionRequest};
pub use connection::{CancelHandle, Connection, UpdateListener};
pub use error::ProliferateError;
pub use protocol::{TranscriptReducer, decode_event_envelope, normalize};
pub use records::*;
pub use wire::*;

uniffi::setup_scaffolding!("proliferate");
