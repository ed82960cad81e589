//! A live connection: a pull-based stream of updates, the client's push subscription, and the
//! calls that act on it.

use std::sync::Arc;

use napi::Status;
use napi::bindgen_prelude::within_runtime_if_available;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use proliferate_client::{ClientError, Connection, Listener, PromptOptions, Subscription, Update};

use crate::client::answer;
use crate::error::to_javascript;
use crate::protocol::parse;

/// One connection to a session. Closing it, or collecting it, closes the socket.
#[napi]
pub struct NativeConnection {
    connection: Arc<Connection>,
}

impl NativeConnection {
    pub(crate) fn new(connection: Connection) -> Self {
        Self {
            connection: Arc::new(connection),
        }
    }
}

/// The application's `(error, update) => void`, called on the main thread: each update as JSON,
/// then `null` once the connection closed, or an error once it failed for good.
type UpdateCallback = ThreadsafeFunction<Option<String>, (), Option<String>, Status, true>;

/// Hands a subscription's updates to JavaScript, in order.
struct Forward(UpdateCallback);

impl Listener for Forward {
    fn on_update(&self, update: Update) {
        let update = serde_json::to_string(&update).unwrap_or_default();
        self.0
            .call(Ok(Some(update)), ThreadsafeFunctionCallMode::NonBlocking);
    }

    fn on_error(&self, error: ClientError) {
        (self.0).call(
            Err(to_javascript(error)),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
    }

    fn on_closed(&self) {
        (self.0).call(Ok(None), ThreadsafeFunctionCallMode::NonBlocking);
    }
}

/// The client's push subscription (`NativeConnection.subscribe`). Cancelling it, or collecting
/// it, stops the deliveries.
#[napi]
pub struct NativeSubscription {
    subscription: Subscription,
}

#[napi]
impl NativeSubscription {
    /// Stops the deliveries now; nothing more is called, `null` included.
    #[napi]
    pub fn cancel(&self) {
        self.subscription.cancel();
    }

    /// True once the subscription ended: the connection closed or failed, or it was cancelled.
    #[napi(getter)]
    pub fn is_finished(&self) -> bool {
        self.subscription.is_finished()
    }
}

#[napi]
impl NativeConnection {
    /// Delivers every update to `deliver` (see `Connection::subscribe`), the push alternative
    /// to `nextBatch`; read a connection one way at a time.
    #[napi(ts_args_type = "deliver: (error: Error | null, update: string | null) => void")]
    pub fn subscribe(&self, deliver: UpdateCallback) -> NativeSubscription {
        let listener = Arc::new(Forward(deliver));
        let subscription = within_runtime_if_available(|| self.connection.subscribe(listener));
        NativeSubscription { subscription }
    }

    /// The next updates (see `Connection::next_batch`), at most `limit`, as one JSON array of
    /// `Update`s, or `null` once closed.
    #[napi]
    pub async fn next_batch(&self, limit: u32) -> napi::Result<Option<String>> {
        match self.connection.next_batch(limit as usize).await {
            Some(Ok(updates)) => Ok(Some(serde_json::to_string(&updates).unwrap_or_default())),
            Some(Err(error)) => Err(to_javascript(error)),
            None => Ok(None),
        }
    }

    /// The session this connection follows.
    #[napi(getter)]
    pub fn session_id(&self) -> String {
        self.connection.session_id().to_owned()
    }

    /// Sends a prompt and resolves to its admission (JSON) once the gateway admits it.
    #[napi]
    pub async fn send_prompt(
        &self,
        content: String,
        prompt_id: Option<String>,
        images: Option<Vec<String>>,
    ) -> napi::Result<String> {
        let options = PromptOptions {
            prompt_id,
            images: images.unwrap_or_default(),
        };
        answer(self.connection.send_prompt(content, options).await)
    }

    /// Cancels the running turn; resolves to `false` when none ran.
    #[napi]
    pub async fn cancel(&self) -> napi::Result<String> {
        answer(self.connection.cancel().await)
    }

    /// Withdraws a queued prompt.
    #[napi]
    pub async fn cancel_queued(&self, prompt_id: String) -> napi::Result<String> {
        answer(self.connection.cancel_queued(&prompt_id).await)
    }

    /// Answers a permission request with `"once"`, `"always"` or `"reject"` (JSON).
    #[napi]
    pub async fn reply_permission(
        &self,
        permission_id: String,
        decision: String,
    ) -> napi::Result<String> {
        let decision = parse(&decision)?;
        answer(
            self.connection
                .reply_permission(&permission_id, decision)
                .await,
        )
    }

    /// Asks the gateway for everyone connected; the answer arrives as a `presence` update.
    #[napi]
    pub async fn request_presence(&self) -> napi::Result<String> {
        answer(self.connection.request_presence().await)
    }

    /// Closes the socket and stops reconnecting; `next` then resolves to `null`.
    #[napi]
    pub async fn close(&self) {
        self.connection.close().await;
    }
}
