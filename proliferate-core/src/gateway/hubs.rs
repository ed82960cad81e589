//! Each live session's hub, started on demand and dropped when it has nothing to do.
//!
//! A hub that has had no connection, no agent and no work for [`HubConfig::evict_after`] leaves
//! the table and stops; the next call about its session starts a new one from the store. A
//! command that reaches a hub as it leaves is handed on to its successor, so callers never see
//! an eviction.
//!
//! [`HubConfig::evict_after`]: crate::hub::HubConfig::evict_after

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::OnceCell;

use super::Services;
use crate::GatewayError;
use crate::hub::{Command, HubHandle, Reply};

/// The most times a command is handed to a new hub because the one it reached had stopped.
const DELIVERY_ATTEMPTS: usize = 3;

/// Sessions' hubs by session id. The lock is held only to find a session's cell, never while a
/// hub starts (which replays its log), so one slow start blocks no other.
#[derive(Default)]
pub(crate) struct Hubs(Mutex<HashMap<String, Arc<OnceCell<HubHandle>>>>);

impl Hubs {
    fn table(&self) -> MutexGuard<'_, HashMap<String, Arc<OnceCell<HubHandle>>>> {
        self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// Forgets `hub`, if it is still the one the session's entry holds.
    pub fn forget(&self, session_id: &str, hub: &HubHandle) {
        let mut table = self.table();
        let current = table.get(session_id).and_then(|cell| cell.get());
        if current.is_some_and(|current| current.same_hub(hub)) {
            table.remove(session_id);
        }
    }

    /// Takes every hub out of the table.
    pub fn drain(&self) -> Vec<HubHandle> {
        (self.table().drain())
            .filter_map(|(_, cell)| cell.get().cloned())
            .collect()
    }
}

impl Services {
    /// The session's hub if this gateway runs it now; never starts one.
    pub(crate) fn running_hub(&self, session_id: &str) -> Option<HubHandle> {
        let table = self.hubs.table();
        let hub = table.get(session_id)?.get()?;
        (hub.follows().is_none() && !hub.is_closed()).then(|| hub.clone())
    }

    /// The session's hub if this gateway runs it, started if it can lease the session.
    pub(crate) async fn hub_here(
        self: &Arc<Self>,
        session_id: &str,
    ) -> Result<HubHandle, GatewayError> {
        self.find_hub(session_id, false).await
    }

    /// The session's hub, started (from the store) if it has none: its own if this gateway
    /// can lease the session, else, when `may_follow` and on a bus, one that follows the
    /// gateway running it.
    async fn find_hub(
        self: &Arc<Self>,
        session_id: &str,
        may_follow: bool,
    ) -> Result<HubHandle, GatewayError> {
        let cell = {
            let mut table = self.hubs.table();
            let cell = table.entry(session_id.to_owned()).or_default();
            if cell.get().is_some_and(HubHandle::is_closed) {
                *cell = Arc::default();
            }
            cell.clone()
        };
        let started = cell
            .get_or_try_init(|| self.start_hub(session_id, may_follow))
            .await;
        match started {
            Ok(hub) if hub.follows().is_some() && !may_follow => Err(GatewayError::Unavailable(
                format!("session {session_id} is not run by this gateway"),
            )),
            Ok(hub) => Ok(hub.clone()),
            Err(error) => {
                let mut table = self.hubs.table();
                if (table.get(session_id)).is_some_and(|current| Arc::ptr_eq(current, &cell)) {
                    table.remove(session_id);
                }
                Err(error)
            }
        }
    }

    async fn start_hub(
        self: &Arc<Self>,
        session_id: &str,
        may_follow: bool,
    ) -> Result<HubHandle, GatewayError> {
        let held_elsewhere =
            || GatewayError::Unavailable(format!("session {session_id} is run by another gateway"));
        // A lease released between the attempt and the look at its holder is tried again.
        for _ in 0..2 {
            // Leased first, so the session read next is the log's head as this hub takes it.
            let (config, taken_at) = (&self.config, tokio::time::Instant::now());
            let lease = (self.log)
                .acquire(session_id, &config.gateway_id, config.lease_ttl)
                .await?;
            let Some(lease) = lease else {
                let relay = match &self.relay {
                    Some(relay) if may_follow => relay.clone(),
                    _ => return Err(held_elsewhere()),
                };
                let Some(owner) = self.log.holder(session_id).await? else {
                    continue;
                };
                let Some(record) = self.store.session(session_id).await? else {
                    return Err(GatewayError::NotFound(format!("no session {session_id}")));
                };
                return crate::hub::follower::spawn(self.clone(), relay, record, owner).await;
            };
            let Some(record) = self.store.session(session_id).await? else {
                self.log.release(&lease).await?;
                return Err(GatewayError::NotFound(format!("no session {session_id}")));
            };
            return match crate::hub::spawn(self.clone(), record, lease.clone(), taken_at).await {
                Ok(hub) => {
                    self.metrics.hub_started();
                    Ok(hub)
                }
                Err(error) => {
                    let _ = self.log.release(&lease).await;
                    Err(error)
                }
            };
        }
        Err(held_elsewhere())
    }

    /// Hands `command` to the session's hub, starting a new one when the hub it reached has
    /// stopped. On failure the command comes back, with why.
    pub(crate) async fn deliver(
        self: &Arc<Self>,
        session_id: &str,
        command: Command,
    ) -> Result<(), (Command, GatewayError)> {
        self.deliver_to(session_id, command, true).await
    }

    async fn deliver_to(
        self: &Arc<Self>,
        session_id: &str,
        mut command: Command,
        may_follow: bool,
    ) -> Result<(), (Command, GatewayError)> {
        for _ in 0..DELIVERY_ATTEMPTS {
            let hub = match self.find_hub(session_id, may_follow).await {
                Ok(hub) => hub,
                Err(error) => return Err((command, error)),
            };
            match hub.send(command).await {
                Ok(()) => return Ok(()),
                Err(returned) => command = returned,
            }
        }
        let error = GatewayError::Unavailable("the session's hub keeps stopping".into());
        Err((command, error))
    }

    /// Delivers commands a leaving hub had queued to the session's next hub, in order, off the
    /// leaving hub's task.
    pub(crate) fn hand_over(self: &Arc<Self>, session_id: &str, commands: Vec<Command>) {
        if commands.is_empty() {
            return;
        }
        let (services, session_id) = (self.clone(), session_id.to_owned());
        tokio::spawn(async move {
            for command in commands {
                if let Err((command, error)) = services.deliver(&session_id, command).await {
                    command.refuse(error);
                }
            }
        });
    }

    /// Sends the session's hub a command and waits for its answer.
    pub(crate) async fn ask<T>(
        self: &Arc<Self>,
        session_id: &str,
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, GatewayError> {
        self.ask_to(session_id, command, true).await
    }

    /// [`Services::ask`] of a hub this gateway runs, never of one following another's.
    pub(crate) async fn ask_here<T>(
        self: &Arc<Self>,
        session_id: &str,
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, GatewayError> {
        self.ask_to(session_id, command, false).await
    }

    async fn ask_to<T>(
        self: &Arc<Self>,
        session_id: &str,
        command: impl FnOnce(Reply<T>) -> Command,
        may_follow: bool,
    ) -> Result<T, GatewayError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.deliver_to(session_id, command(reply), may_follow)
            .await
            .map_err(|(_, error)| error)?;
        answer
            .await
            .map_err(|_| GatewayError::Unavailable("the session is shutting down".into()))?
    }
}
