//! The push alternative to [`Connection::next`]: a subscription delivers a connection's updates
//! to a [`Listener`] from a runtime task, with a handle that cancels it.

use std::sync::Arc;

use crate::{ClientError, Connection, Update};

/// Receives a subscription's updates ([`Connection::subscribe`]), on a runtime task.
pub trait Listener: Send + Sync + 'static {
    /// The next update.
    fn on_update(&self, update: Update);
    /// The connection failed for good; `on_closed` follows.
    fn on_error(&self, error: ClientError);
    /// The connection closed or failed: nothing more will come. A cancelled subscription hears
    /// nothing more, this included.
    fn on_closed(&self);
}

/// A push subscription: it delivers a connection's updates to a [`Listener`] until the
/// connection closes or fails, or until it is cancelled. Dropping it cancels it.
pub struct Subscription {
    task: tokio::task::AbortHandle,
}

impl Subscription {
    /// Stops the deliveries now.
    pub fn cancel(&self) {
        self.task.abort();
    }

    /// True once the subscription has ended: the connection closed or failed, or it was
    /// cancelled.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Connection {
    /// Delivers every update to `listener` from a runtime task, the push alternative to
    /// [`Connection::next`]: read a connection one way at a time. The cursor moves as updates
    /// are delivered.
    pub fn subscribe(self: &Arc<Self>, listener: Arc<dyn Listener>) -> Subscription {
        let connection = self.clone();
        let task = tokio::spawn(async move {
            while let Some(next) = connection.next().await {
                match next {
                    Ok(update) => listener.on_update(update),
                    Err(error) => {
                        listener.on_error(error);
                        break;
                    }
                }
            }
            listener.on_closed();
        });
        Subscription {
            task: task.abort_handle(),
        }
    }
}
