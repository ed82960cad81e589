//! Wire types of the gateway sync protocol, one module per major version.
//!
//! This module owns serde types only: no tokio, no I/O, no business logic. `docs/protocol.md`
//! is the normative description; `fixtures/protocol/` holds golden JSON every language tests
//! against; `docs/schema/v1.json` is the JSON Schema generated from these types.

pub mod v1;
