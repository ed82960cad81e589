//! The lease a hub runs under, kept by a task of its own: renewed every third of its lifetime
//! (sooner after a refusal) whatever the hub's loop is doing, so a slow write never lets it lapse, and reported lost when
//! another gateway took it or it could not be renewed for a whole lifetime.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::store::{EventLog, Lease};

/// Renews a hub's lease until dropped.
pub(super) struct LeaseKeeper {
    /// Until when the lease surely holds; `None` once another gateway took it.
    until: watch::Receiver<Option<Instant>>,
    task: AbortHandle,
}

impl LeaseKeeper {
    /// Starts renewing `lease`, taken at `taken_at`, for `ttl` at a time.
    pub fn start(log: Arc<dyn EventLog>, lease: Lease, taken_at: Instant, ttl: Duration) -> Self {
        let (holds, until) = watch::channel(Some(taken_at + ttl));
        let task = tokio::spawn(async move {
            // A renewal already due (after a long start) runs at once; one the store refused is
            // tried again soon, so a short outage costs the lease nothing.
            let (every, retry) = (ttl / 3, (ttl / 30).max(Duration::from_millis(100)));
            let mut next = taken_at + every;
            loop {
                tokio::time::sleep_until(next).await;
                let from = Instant::now();
                match log.renew(&lease, ttl).await {
                    Ok(true) => {
                        holds.send_replace(Some(from + ttl));
                        next = from + every;
                    }
                    Ok(false) => {
                        holds.send_replace(None);
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(session_id = %lease.session_id, error = %error, "the lease was not renewed");
                        next = from + retry;
                    }
                }
            }
        });
        Self {
            until,
            task: task.abort_handle(),
        }
    }

    /// Resolves once the lease is lost: taken over, or not renewed within its lifetime.
    pub async fn lost(&mut self) {
        loop {
            let Some(until) = *self.until.borrow_and_update() else {
                return;
            };
            tokio::select! {
                () = tokio::time::sleep_until(until) => return,
                changed = self.until.changed() => if changed.is_err() {
                    return;
                },
            }
        }
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}
