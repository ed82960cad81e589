//! The native half of the `proliferate` npm package: conversion, async bridging and error mapping
//! over `proliferate-client`. Values cross as JSON text that the Rust protocol types have
//! validated; the TypeScript facade in `lib/` types them and is the public API.

// napi registers exports only outside `cfg(test)`, so a test build sees them as unused.
#![cfg_attr(test, allow(dead_code))]

mod client;
mod connection;
mod error;
mod protocol;
