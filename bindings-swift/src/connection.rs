//! A live connection: pull with `next`, or subscribe with a listener and an explicit cancel
//! handle (cancellation does not cross UniFFI, so a subscription stops only when told or
//! dropped).

use std::sync::Arc;

use proliferate_client::{PromptOptions, Subscription};

use crate::client::decision_from;
use crate::error::ProliferateError;
use crate::protocol::{convert, update};
use crate::records::Update;
use crate::wire::PromptAdmission;

/// Receives a subscription's updates, on a runtime thread.
#[uniffi::export(with_foreign)]
pub trait UpdateListener: Send + Sync {
    /// The next update.
    fn on_update(&self, update: Update);
    /// The connection failed for good; `on_closed` follows.
    fn on_error(&self, error: ProliferateError);
    /// The connection closed or failed; a cancelled subscription hears nothing more.
    fn on_closed(&self);
}

/// The Swift listener as the client's subscription calls it.
struct Forward(Arc<dyn UpdateListener>);

impl proliferate_client::Listener for Forward {
    fn on_update(&self, next: proliferate_client::Update) {
        // A value this version cannot convert still arrives, as its JSON.
        let converted = update(&next).unwrap_or_else(|_| Update::Unknown {
            json: serde_json::to_string(&next).unwrap_or_default(),
        });
        self.0.on_update(converted);
    }

    fn on_error(&self, error: proliferate_client::ClientError) {
        self.0.on_error(error.into());
    }

    fn on_closed(&self) {
        self.0.on_closed();
    }
}

/// Stops a subscription. Dropping it stops the subscription too.
#[derive(uniffi::Object)]
pub struct CancelHandle {
    subscription: Subscription,
}

#[uniffi::export]
impl CancelHandle {
    /// Stops the subscription now; the listener hears nothing more.
    pub fn cancel(&self) {
        self.subscription.cancel();
    }

    /// True once the subscription has ended: closed, failed or cancelled.
    pub fn is_finished(&self) -> bool {
        self.subscription.is_finished()
    }
}

/// One connection to a session. Read it with `next` or `subscribe`, not both.
#[derive(uniffi::Object)]
pub struct Connection {
    connection: Arc<proliferate_client::Connection>,
}

impl Connection {
    pub(crate) fn new(connection: proliferate_client::Connection) -> Self {
        Self {
            connection: Arc::new(connection),
        }
    }
}

#[uniffi::export]
impl Connection {
    /// The seq of the last event yielded: the cursor to resume from.
    pub fn last_seq(&self) -> u64 {
        self.connection.last_seq()
    }

    /// The session this connection follows.
    pub fn session_id(&self) -> String {
        self.connection.session_id().to_owned()
    }
}

export! {
impl Connection {
    /// The next update, or nothing once the connection is closed. A failure is final.
    pub async fn next(&self) -> Result<Option<Update>, ProliferateError> {
        match self.connection.next().await {
            Some(Ok(next)) => Ok(Some(update(&next)?)),
            Some(Err(error)) => Err(error.into()),
            None => Ok(None),
        }
    }

    /// Delivers every update to `listener` until the connection closes or the returned handle
    /// cancels (or is dropped).
    pub async fn subscribe(&self, listener: Arc<dyn UpdateListener>) -> Arc<CancelHandle> {
        let subscription = self.connection.subscribe(Arc::new(Forward(listener)));
        Arc::new(CancelHandle { subscription })
    }

    /// Sends a prompt and returns its admission; resent across reconnects, with the same id,
    /// until the gateway answers.
    #[uniffi::method(default(prompt_id = None, images = []))]
    pub async fn send_prompt(
        &self,
        content: String,
        prompt_id: Option<String>,
        images: Vec<String>,
    ) -> Result<PromptAdmission, ProliferateError> {
        let options = PromptOptions { prompt_id, images };
        convert(&self.connection.send_prompt(content, options).await?)
    }

    /// Cancels the running turn; false when none ran.
    pub async fn cancel(&self) -> Result<bool, ProliferateError> {
        Ok(self.connection.cancel().await?)
    }

    /// Withdraws a queued prompt.
    pub async fn cancel_queued(&self, prompt_id: String) -> Result<(), ProliferateError> {
        Ok(self.connection.cancel_queued(&prompt_id).await?)
    }

    /// Answers a permission request with `once`, `always` or `reject`.
    pub async fn reply_permission(
        &self,
        permission_id: String,
        decision: String,
    ) -> Result<(), ProliferateError> {
        let decision = decision_from(&decision)?;
        Ok(self.connection.reply_permission(&permission_id, decision).await?)
    }

    /// Asks the gateway for everyone connected; the answer arrives as a `presence` update.
    pub async fn request_presence(&self) -> Result<(), ProliferateError> {
        Ok(self.connection.request_presence().await?)
    }

    /// Closes the socket and stops reconnecting; `next` then returns nothing.
    pub async fn close(&self) {
        self.connection.close().await;
    }
}
}
