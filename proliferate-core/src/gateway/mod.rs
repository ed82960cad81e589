//! The gateway engine: every operation a transport exposes, one call each, with access control.
//!
//! A transport (the reference server, or an app embedding the engine) authenticates the caller
//! with [`Gateway::authenticate`], then makes one call here. The gateway checks the principal's
//! organisation, session restriction and scope against the session, then hands the operation to
//! the session's hub.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
mod hubs;
mod prompts;
pub(crate) mod relay;
mod sessions;
mod streams;
mod usage;

use crate::GatewayError;
use crate::agent::AgentDriver;
use crate::auth::Authenticator;
use crate::bus::Bus;
use crate::clock::now_millis;
use crate::hub::{Command, HubConfig, Subscription};
use crate::metrics::Metrics;
use crate::protocol::v1::*;
use crate::sandbox::{AgentEndpoint, SandboxProvider};
use crate::store::{
    EventLog, IdempotencyKey, MetadataStore, PromptRecord, PromptState, SessionRecord, UsageLedger,
};

/// Everything a hub needs, shared by all hubs.
pub(crate) struct Services {
    pub store: Arc<dyn MetadataStore>,
    pub log: Arc<dyn EventLog>,
    pub provider: Arc<dyn SandboxProvider>,
    pub driver: Arc<dyn AgentDriver>,
    pub config: HubConfig,
    pub metrics: Arc<Metrics>,
    pub isolation: String,
    pub authenticator: Authenticator,
    pub usage: Arc<dyn UsageLedger>,
    pub live: LiveSessions,
    /// Open streams (WebSocket and SSE) by organisation.
    pub connections: crate::quota::Quota<String>,
    /// Each session's hub, while it has one.
    pub hubs: hubs::Hubs,
    /// This gateway's side of the bus to other gateways, if it has one.
    pub relay: Option<Arc<relay::Relay>>,
    /// Set when the gateway shuts down: it takes no more sessions over, and no more requests.
    pub stopped: std::sync::atomic::AtomicBool,
}

/// The sessions whose sandbox is up or starting, by organisation, against the cap of
/// [`HubConfig::max_live_sessions_per_organization`].
#[derive(Default)]
pub(crate) struct LiveSessions(
    std::sync::Mutex<HashMap<String, std::collections::HashSet<String>>>,
);

impl LiveSessions {
    fn organizations(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, std::collections::HashSet<String>>> {
        self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// How many sessions of `organization_id` are live.
    pub fn count(&self, organization_id: &str) -> usize {
        self.organizations()
            .get(organization_id)
            .map_or(0, |live| live.len())
    }

    /// Counts `session_id` live, unless its organisation already has `cap` others live.
    pub fn claim(&self, organization_id: &str, session_id: &str, cap: Option<usize>) -> bool {
        let mut organizations = self.organizations();
        let live = organizations.entry(organization_id.to_owned()).or_default();
        if live.contains(session_id) || cap.is_none_or(|cap| live.len() < cap) {
            live.insert(session_id.to_owned());
            return true;
        }
        false
    }

    /// `session_id` is no longer live.
    pub fn release(&self, organization_id: &str, session_id: &str) {
        let mut organizations = self.organizations();
        if let Some(live) = organizations.get_mut(organization_id) {
            live.remove(session_id);
            if live.is_empty() {
                organizations.remove(organization_id);
            }
        }
    }
}

/// Starts the hub of every live session whose lease no gateway holds: at start, the sessions
/// this gateway ran before it stopped, and every third of a lease lifetime after, those of a
/// gateway that died. Sessions another gateway holds are left to it; one the store cannot serve
/// now resumes on the next call about it.
async fn take_over_unheld(services: &Arc<Services>) -> Result<(), GatewayError> {
    for record in services.store.live_sessions().await? {
        let session_id = &record.info.id;
        let gateway_id = &services.config.gateway_id;
        // One session's trouble is logged and leaves the others to be looked at.
        let taken = match services.log.holder(session_id).await {
            Ok(Some(holder)) if holder != *gateway_id => continue,
            Ok(Some(_)) if services.running_hub(session_id).is_some() => continue,
            Ok(_) => services.hub_here(session_id).await.map(drop),
            Err(error) => Err(error.into()),
        };
        if let Err(error) = taken {
            tracing::warn!(session_id, error = %error, "not taken over");
        }
    }
    Ok(())
}

/// The parts a gateway is built from.
pub struct GatewayParts {
    /// Sessions, prompts and snapshots.
    pub store: Arc<dyn MetadataStore>,
    /// The event log.
    pub log: Arc<dyn EventLog>,
    /// Where agents run.
    pub provider: Arc<dyn SandboxProvider>,
    /// Which agent runs.
    pub driver: Arc<dyn AgentDriver>,
    /// How agents are isolated, as reported in session info (for example `bubblewrap`).
    pub isolation: String,
    /// Verifies tokens.
    pub authenticator: Authenticator,
    /// Model usage, as the model proxy meters it.
    pub usage: Arc<dyn UsageLedger>,
    /// Hub tunables.
    pub config: HubConfig,
    /// The bus to the other gateways on the same store, if there are any: with it, a client
    /// may reach any session through any of them (`docs/deployment.md`).
    pub bus: Option<Arc<dyn Bus>>,
}

/// The engine behind every route and socket. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    services: Arc<Services>,
}

/// The longest client-chosen prompt id.
const MAX_PROMPT_ID: usize = 128;
/// The most sessions one list call returns.
const MAX_PAGE: u32 = 200;

fn has_scope(principal: &Principal, scope: Scope) -> bool {
    principal.scopes.contains(&scope) || principal.scopes.contains(&Scope::Admin)
}

fn sender(principal: &Principal, source: &str) -> Sender {
    Sender {
        subject: principal.subject.clone(),
        source: source.to_owned(),
    }
}

impl Gateway {
    /// Builds a gateway and recovers from the previous run: stops orphaned agents and marks
    /// sessions that were live as failed (they resume on the next connect, prompt or request).
    pub async fn start(parts: GatewayParts) -> Result<Self, GatewayError> {
        let orphans = parts.provider.cleanup_orphans().await?;
        if orphans > 0 {
            tracing::warn!(orphans, "stopped agents left by a previous run");
        }
        let gateway_id = parts.config.gateway_id.clone();
        let seal = parts.authenticator.bus_seal();
        let gateway = Self {
            services: Arc::new(Services {
                store: parts.store,
                log: parts.log,
                provider: parts.provider,
                driver: parts.driver,
                config: parts.config,
                metrics: Arc::default(),
                isolation: parts.isolation,
                authenticator: parts.authenticator,
                usage: parts.usage,
                live: LiveSessions::default(),
                connections: Default::default(),
                hubs: Default::default(),
                stopped: Default::default(),
                relay: (parts.bus.clone())
                    .map(|bus| Arc::new(relay::Relay::new(bus, seal, &gateway_id))),
            }),
        };
        if let Some(bus) = parts.bus {
            let inbox = bus
                .subscribe(&crate::bus::gateway_subject(&gateway_id))
                .await;
            let inbox = inbox.map_err(|error| GatewayError::Unavailable(error.to_string()))?;
            let services = Arc::downgrade(&gateway.services);
            tokio::spawn(relay::listen(services, inbox));
        }
        for revoked in gateway.services.store.revoked_tokens(now_millis()).await? {
            (gateway.services.authenticator).revoke(&revoked.jti, &revoked.organization_id);
        }
        take_over_unheld(&gateway.services).await?;
        // As often as leases are renewed: a lapsed one is found within a third of a lifetime.
        let (services, every) = (
            Arc::downgrade(&gateway.services),
            gateway.config().lease_ttl / 3,
        );
        tokio::spawn(async move {
            let mut sweep = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                sweep.tick().await;
                let Some(services) = services.upgrade() else {
                    return;
                };
                if services.stopped.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                if let Err(error) = take_over_unheld(&services).await {
                    tracing::warn!(error = %error, "live sessions could not be read");
                }
            }
        });
        Ok(gateway)
    }

    /// The engine's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.services.metrics
    }

    /// Hub tunables.
    pub fn config(&self) -> &HubConfig {
        &self.services.config
    }

    /// Verifies a bearer token; `session_id` is the session the request is about, if any.
    pub fn authenticate(
        &self,
        token: &str,
        session_id: Option<&str>,
    ) -> Result<Principal, GatewayError> {
        self.services.authenticator.verify(token, session_id)
    }

    /// Checks that `principal` may act on the session with `scope`; returns the session.
    pub(super) async fn access(
        &self,
        principal: &Principal,
        session_id: &str,
        scope: Scope,
    ) -> Result<SessionRecord, GatewayError> {
        let not_found = || GatewayError::NotFound(format!("no session {session_id}"));
        let record = self
            .services
            .store
            .session(session_id)
            .await?
            .ok_or_else(not_found)?;
        if principal.kind == PrincipalKind::Sandbox {
            return if principal.session_id.as_deref() == Some(session_id) {
                Ok(record)
            } else {
                Err(not_found())
            };
        }
        if record.info.organization_id != principal.organization_id {
            return Err(not_found());
        }
        if principal
            .session_id
            .as_deref()
            .is_some_and(|only| only != session_id)
        {
            return Err(GatewayError::Forbidden(
                "the token is restricted to another session".into(),
            ));
        }
        if !has_scope(principal, scope) {
            return Err(GatewayError::Forbidden(format!(
                "the token lacks the {} scope",
                serde_json::to_value(scope)
                    .unwrap_or_default()
                    .as_str()
                    .unwrap_or_default()
            )));
        }
        Ok(record)
    }

    /// Revokes the caller's organisation's tokens whose id is `jti`, for good: the revocation is
    /// stored, and kept until every such token has expired. Needs the `admin` scope.
    pub async fn revoke_token(&self, principal: &Principal, jti: &str) -> Result<(), GatewayError> {
        if !has_scope(principal, Scope::Admin) || principal.kind == PrincipalKind::Sandbox {
            return Err(GatewayError::Forbidden(
                "revoking tokens needs the admin scope".into(),
            ));
        }
        if jti.is_empty() || jti.chars().count() > 128 {
            return Err(GatewayError::BadRequest(
                "jti must be 1 to 128 characters".into(),
            ));
        }
        let authenticator = &self.services.authenticator;
        let lifetime = authenticator.max_token_lifetime().as_millis() as i64;
        let revoked = crate::store::RevokedToken {
            jti: jti.to_owned(),
            organization_id: principal.organization_id.clone(),
            expires_at: now_millis().saturating_add(lifetime),
        };
        self.services.store.revoke_token(&revoked).await?;
        authenticator.revoke(jti, &principal.organization_id);
        tracing::info!(user_id = %principal.subject, org_id = %principal.organization_id, "token revoked");
        Ok(())
    }

    /// Fails when the store does not answer.
    pub async fn check_store(&self) -> Result<(), GatewayError> {
        self.services.store.session("").await?;
        Ok(())
    }

    /// Stops every hub and pauses every running agent, so nothing outlives the gateway; no
    /// session is taken over and no other gateway's request taken after.
    pub async fn shutdown(&self) {
        (self.services.stopped).store(true, std::sync::atomic::Ordering::SeqCst);
        for hub in self.services.hubs.drain() {
            hub.shutdown().await;
        }
    }
}
