//! A scripted OpenAI-compatible model server.
//!
//! [`ScriptedModel`] serves `POST /v1/chat/completions` and `GET /v1/models` on
//! `127.0.0.1`, on a port the OS picks, so a real agent (such as OpenCode with
//! `@ai-sdk/openai-compatible`) can run offline against scripted answers.
//!
//! Each answer is chosen statelessly from the request:
//!
//! - Requests without a non-empty `tools` array (title generation) get the text
//!   `Scripted session`.
//! - Otherwise the last user message picks a [`Script`]: `[[script:NAME]]` names
//!   one from the [`ScriptLibrary`]; else inline markers build one:
//!   `[[say:TEXT]]`, `[[deltas:N]]`, `[[delay:MS]]`, and one action among
//!   `[[bash:COMMAND]]`, `[[tool:NAME JSON]]`, `[[fail:STATUS]]`,
//!   `[[malformed]]`, `[[stall]]`. Without markers the answer is
//!   `Hello from the scripted model.`
//! - The number of assistant messages after that user message is the index of
//!   the step to play; past the end the answer is `Done.`. `{tool_output}` in a
//!   text step becomes the content of the last `tool` message.

mod conversation;
mod markers;
mod script;
mod server;
mod wire;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use script::{Script, ScriptError, ScriptLibrary, Step};
pub use server::Reported;
pub use wire::SENT_AT;

/// A running scripted model server; dropping it shuts the server down.
#[derive(Debug)]
pub struct ScriptedModel {
    address: SocketAddr,
    shared: Arc<server::Shared>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ScriptedModel {
    /// Starts a server with only the inline markers and no named scripts.
    pub async fn start() -> std::io::Result<ScriptedModel> {
        Self::start_with(ScriptLibrary::default()).await
    }

    /// Starts a server whose `[[script:NAME]]` markers select scripts from `library`.
    pub async fn start_with(library: ScriptLibrary) -> std::io::Result<ScriptedModel> {
        Self::start_on(0, library).await
    }

    /// Starts a server on `127.0.0.1:port` (0 lets the OS pick).
    pub async fn start_on(port: u16, library: ScriptLibrary) -> std::io::Result<ScriptedModel> {
        Self::serve(port, library, None).await
    }

    /// Starts a server that, like a real provider, answers 401 to requests without
    /// `Authorization: Bearer <key>`.
    pub async fn start_requiring_key(key: &str) -> std::io::Result<ScriptedModel> {
        Self::serve(0, ScriptLibrary::default(), Some(key.to_owned())).await
    }

    async fn serve(
        port: u16,
        library: ScriptLibrary,
        key: Option<String>,
    ) -> std::io::Result<ScriptedModel> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let address = listener.local_addr()?;
        let (shutdown, stop) = watch::channel(false);
        let shared = server::Shared::new(library, stop, key);
        let task = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move {
                // Accept errors are retried inside axum; serving ends only at shutdown.
                let _ = server::serve(listener, shared).await;
            }
        });
        Ok(ScriptedModel {
            address,
            shared,
            shutdown,
            task,
        })
    }

    /// Where the server listens, on loopback.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The OpenAI-compatible base URL, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    /// The usage reported to clients so far, and the streams they abandoned.
    pub fn reported(&self) -> Reported {
        self.shared.reported()
    }

    /// Every chat-completions request body received (as JSON), in order.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        self.shared.requests()
    }
}

impl Drop for ScriptedModel {
    fn drop(&mut self) {
        // Ends stalled streams and asks open connections to close; aborting the
        // task stops accepting new connections right away.
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}
