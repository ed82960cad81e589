//! Rust client for the Proliferate gateway.
//!
//! Built on `proliferate_core::protocol` alone, with no server dependencies:
//!
//! ```no_run
//! # async fn quickstart() -> Result<(), proliferate_client::ClientError> {
//! use proliferate_client::{Client, ConnectionOptions, PromptOptions, Update};
//! use proliferate_client::protocol::v1::{CreateSessionRequest, Event};
//!
//! let client = Client::builder("http://127.0.0.1:8787").token("<token>").source("cli").build()?;
//! let session = client.create_session(&CreateSessionRequest::default()).await?;
//! let mut connection = client.connect(&session.id, ConnectionOptions::default());
//! connection.send_prompt("Say hello", PromptOptions::default()).await?;
//! while let Some(update) = connection.next().await {
//!     if let Update::Event(envelope) = update? {
//!         match envelope.event {
//!             Event::TextDelta(delta) => print!("{}", delta.delta),
//!             Event::TurnCompleted(_) => break,
//!             _ => {}
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```

mod auth;
mod client;
mod connection;
mod error;
mod subscription;

pub use auth::{Auth, TokenSource};
pub use client::{Client, ClientBuilder};
pub use connection::{Connection, ConnectionOptions, PromptOptions, ReconnectPolicy, Update};
pub use error::ClientError;
pub use proliferate_core::protocol;
pub use proliferate_core::transcript::TranscriptReducer;
pub use subscription::{Listener, Subscription};
