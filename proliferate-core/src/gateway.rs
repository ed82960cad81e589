//! The gateway engine: every operation a transport exposes, one call each, with access control.
//!
//! A transport (the reference server, or an app embedding the engine) authenticates the caller
//! with [`Gateway::authenticate`], then makes one call here. The gateway checks the principal's
//! organisation, session restriction and scope against the session, then hands the operation to
//! the session's hub.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::GatewayError;
use crate::agent::AgentDriver;
use crate::auth::Authenticator;
use crate::clock::now_millis;
use crate::hub::{Command, HubConfig, HubHandle, Subscription};
use crate::metrics::Metrics;
use crate::protocol::v1::*;
use crate::sandbox::SandboxProvider;
use crate::store::{
    EventLog, IdempotencyKey, MetadataStore, PromptRecord, PromptState, SessionRecord,
};

/// Everything a hub needs, shared by all hubs.
pub(crate) struct Services {
    pub store: Arc<dyn MetadataStore>,
    pub log: Arc<dyn EventLog>,
    pub provider: Arc<dyn SandboxProvider>,
    pub driver: Arc<dyn AgentDriver>,
    pub config: HubConfig,
    pub metrics: Metrics,
    pub isolation: String,
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
    /// Hub tunables.
    pub config: HubConfig,
}

/// The engine behind every route and socket. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    services: Arc<Services>,
    authenticator: Authenticator,
    hubs: Arc<Mutex<HashMap<String, HubHandle>>>,
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
        let gateway = Self {
            services: Arc::new(Services {
                store: parts.store,
                log: parts.log,
                provider: parts.provider,
                driver: parts.driver,
                config: parts.config,
                metrics: Metrics::default(),
                isolation: parts.isolation,
            }),
            authenticator: parts.authenticator,
            hubs: Arc::default(),
        };
        for record in gateway.services.store.live_sessions().await? {
            gateway.hub(&record.info.id).await?;
        }
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
        self.authenticator.verify(token, session_id)
    }

    async fn hub(&self, session_id: &str) -> Result<HubHandle, GatewayError> {
        let mut hubs = self.hubs.lock().await;
        if let Some(hub) = hubs.get(session_id).filter(|hub| !hub.is_closed()) {
            return Ok(hub.clone());
        }
        let record = self
            .services
            .store
            .session(session_id)
            .await?
            .ok_or_else(|| GatewayError::NotFound(format!("no session {session_id}")))?;
        let hub = crate::hub::spawn(self.services.clone(), record).await?;
        self.services.metrics.hub_started();
        hubs.insert(session_id.to_owned(), hub.clone());
        Ok(hub)
    }

    /// Checks that `principal` may act on the session with `scope`; returns the session.
    async fn access(
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

    /// Creates a session and starts its sandbox. With an idempotency key, a retry of the same
    /// request returns the session created first (`false` in the second field).
    pub async fn create_session(
        &self,
        principal: &Principal,
        request: CreateSessionRequest,
        idempotency_key: Option<String>,
    ) -> Result<(SessionInfo, bool), GatewayError> {
        if !has_scope(principal, Scope::Write) || principal.kind == PrincipalKind::Sandbox {
            return Err(GatewayError::Forbidden(
                "creating sessions needs the write scope".into(),
            ));
        }
        if let Some(snapshot_id) = &request.snapshot_id {
            let snapshot = self.services.store.snapshot(snapshot_id).await?;
            if snapshot.is_none_or(|snapshot| snapshot.organization_id != principal.organization_id)
            {
                return Err(GatewayError::NotFound(format!("no snapshot {snapshot_id}")));
            }
        }
        let idempotency = idempotency_key.map(|key| IdempotencyKey {
            key,
            request_digest: hex::encode(Sha256::digest(
                serde_json::to_vec(&request).unwrap_or_default(),
            )),
        });
        let now = now_millis();
        let record = SessionRecord {
            info: SessionInfo {
                id: format!("ses_{}", uuid::Uuid::now_v7().simple()),
                organization_id: principal.organization_id.clone(),
                created_by: principal.subject.clone(),
                title: request.title.clone(),
                status: SessionStatus::Pending,
                agent: self.services.driver.name().into(),
                provider: self.services.provider.name().into(),
                isolation: Some(self.services.isolation.clone()),
                source_snapshot_id: request.snapshot_id.clone(),
                metadata: request.metadata.clone(),
                created_at: now,
                updated_at: now,
                ..Default::default()
            },
            agent_session_id: None,
        };
        let (record, created) = self
            .services
            .store
            .create_session(&record, idempotency.as_ref())
            .await?;
        let session_id = record.info.id.clone();
        tracing::info!(session_id, org_id = %principal.organization_id, user_id = %principal.subject, created, "session created");
        if !created {
            return Ok((self.info_of(&session_id).await?, false));
        }
        let hub = self.hub(&session_id).await?;
        if let Some(content) = request.initial_prompt {
            let prompt =
                self.prompt_record(principal, &session_id, None, content, Vec::new(), "api")?;
            hub.ask(|reply| Command::Prompt(prompt, reply)).await?;
        } else {
            hub.ask(Command::Boot).await?;
        }
        Ok((hub.ask(Command::Info).await?, true))
    }

    async fn info_of(&self, session_id: &str) -> Result<SessionInfo, GatewayError> {
        self.hub(session_id).await?.ask(Command::Info).await
    }

    /// The caller's organisation's sessions, newest first.
    pub async fn list_sessions(
        &self,
        principal: &Principal,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<SessionList, GatewayError> {
        if !has_scope(principal, Scope::Read) || principal.kind == PrincipalKind::Sandbox {
            return Err(GatewayError::Forbidden(
                "listing sessions needs the read scope".into(),
            ));
        }
        let limit = limit.unwrap_or(50).clamp(1, MAX_PAGE);
        let (records, next_cursor) = self
            .services
            .store
            .list_sessions(&principal.organization_id, limit, cursor)
            .await?;
        let sessions = records
            .into_iter()
            .map(|record| record.info)
            .filter(|info| {
                principal
                    .session_id
                    .as_ref()
                    .is_none_or(|only| *only == info.id)
            })
            .collect();
        Ok(SessionList {
            sessions,
            next_cursor,
        })
    }

    /// One session.
    pub async fn session(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<SessionInfo, GatewayError> {
        self.access(principal, session_id, Scope::Read).await?;
        self.info_of(session_id).await
    }

    /// Stops the session's sandbox and removes it with its events. Needs `admin`, or `write`
    /// for the session's creator.
    pub async fn delete_session(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<(), GatewayError> {
        let record = self.access(principal, session_id, Scope::Write).await?;
        if !principal.scopes.contains(&Scope::Admin) && record.info.created_by != principal.subject
        {
            return Err(GatewayError::Forbidden(
                "only the creator or an admin may delete a session".into(),
            ));
        }
        let hub = self.hub(session_id).await?;
        hub.ask(Command::Terminate).await?;
        self.hubs.lock().await.remove(session_id);
        tracing::info!(session_id, user_id = %principal.subject, "session deleted");
        Ok(())
    }

    /// Pauses the session; answers once it is paused.
    pub async fn pause(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<SessionInfo, GatewayError> {
        self.access(principal, session_id, Scope::Write).await?;
        self.hub(session_id).await?.ask(Command::Pause).await
    }

    /// Resumes the session; answers once it runs.
    pub async fn resume(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<SessionInfo, GatewayError> {
        self.access(principal, session_id, Scope::Write).await?;
        self.hub(session_id).await?.ask(Command::Resume).await
    }

    /// Saves a snapshot of the session's workspace and agent state.
    pub async fn snapshot(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<SnapshotInfo, GatewayError> {
        self.access(principal, session_id, Scope::Write).await?;
        self.hub(session_id).await?.ask(Command::Snapshot).await
    }

    fn prompt_record(
        &self,
        principal: &Principal,
        session_id: &str,
        prompt_id: Option<String>,
        content: String,
        images: Vec<String>,
        source: &str,
    ) -> Result<PromptRecord, GatewayError> {
        let prompt_id =
            prompt_id.unwrap_or_else(|| format!("prm_{}", uuid::Uuid::now_v7().simple()));
        if prompt_id.is_empty() || prompt_id.len() > MAX_PROMPT_ID {
            return Err(GatewayError::BadRequest(format!(
                "prompt_id must have 1 to {MAX_PROMPT_ID} characters"
            )));
        }
        if content.trim().is_empty() {
            return Err(GatewayError::BadRequest(
                "prompt content must not be empty".into(),
            ));
        }
        let size = content.len() + images.iter().map(String::len).sum::<usize>();
        if size > self.services.config.max_prompt_bytes {
            return Err(GatewayError::PayloadTooLarge(format!(
                "the prompt has {size} bytes; the limit is {}",
                self.services.config.max_prompt_bytes
            )));
        }
        if let Some(image) = images.iter().find(|image| {
            !(image.starts_with("data:image/")
                || image.starts_with("https://")
                || image.starts_with("http://"))
        }) {
            let start: String = image.chars().take(24).collect();
            return Err(GatewayError::BadRequest(format!(
                "images must be data:image/ URIs or http(s) URLs, not {start:?}"
            )));
        }
        Ok(PromptRecord {
            session_id: session_id.to_owned(),
            admission: PromptAdmission {
                prompt_id: prompt_id.clone(),
                ..Default::default()
            },
            prompt_id,
            state: PromptState::Queued,
            content,
            images,
            sender: sender(principal, source),
        })
    }

    /// Admits a prompt: idempotent by `prompt_id`, queued behind a running turn.
    pub async fn send_prompt(
        &self,
        principal: &Principal,
        session_id: &str,
        request: SendMessageRequest,
        source: &str,
    ) -> Result<PromptAdmission, GatewayError> {
        self.access(principal, session_id, Scope::Write).await?;
        let source = request.source.as_deref().unwrap_or(source);
        let prompt = self.prompt_record(
            principal,
            session_id,
            request.prompt_id,
            request.content,
            request.images,
            source,
        )?;
        self.hub(session_id)
            .await?
            .ask(|reply| Command::Prompt(prompt, reply))
            .await
    }

    /// Cancels the running turn; false when none runs.
    pub async fn cancel(
        &self,
        principal: &Principal,
        session_id: &str,
        source: &str,
    ) -> Result<bool, GatewayError> {
        self.access(principal, session_id, Scope::Write).await?;
        let by = sender(principal, source);
        self.hub(session_id)
            .await?
            .ask(|reply| Command::Cancel(by, reply))
            .await
    }

    /// Withdraws a queued prompt.
    pub async fn cancel_queued(
        &self,
        principal: &Principal,
        session_id: &str,
        prompt_id: &str,
        source: &str,
    ) -> Result<(), GatewayError> {
        self.access(principal, session_id, Scope::Write).await?;
        let by = sender(principal, source);
        let prompt_id = prompt_id.to_owned();
        self.hub(session_id)
            .await?
            .ask(|reply| Command::CancelQueued(prompt_id, by, reply))
            .await
    }

    /// Answers a permission request; the first valid answer wins.
    pub async fn reply_permission(
        &self,
        principal: &Principal,
        session_id: &str,
        permission_id: &str,
        decision: PermissionDecision,
        source: &str,
    ) -> Result<(), GatewayError> {
        self.access(principal, session_id, Scope::Write).await?;
        let by = sender(principal, source);
        let permission_id = permission_id.to_owned();
        self.hub(session_id)
            .await?
            .ask(|reply| Command::ReplyPermission(permission_id, decision, by, reply))
            .await
    }

    /// A page of the session's events after `after_seq`.
    pub async fn events(
        &self,
        principal: &Principal,
        session_id: &str,
        after_seq: u64,
        limit: u32,
    ) -> Result<EventPage, GatewayError> {
        let record = self.access(principal, session_id, Scope::Read).await?;
        let stored = self
            .services
            .log
            .read(session_id, after_seq, limit + 1)
            .await?;
        let has_more = stored.len() > limit as usize;
        let events = stored
            .iter()
            .take(limit as usize)
            .filter_map(|event| match serde_json::from_slice(&event.frame) {
                Ok(ServerFrame::Event(envelope)) => Some(envelope),
                _ => None,
            })
            .collect();
        Ok(EventPage {
            events,
            head_seq: record.info.head_seq,
            has_more,
        })
    }

    /// The session's transcript as of its newest event.
    pub async fn transcript(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<Transcript, GatewayError> {
        self.access(principal, session_id, Scope::Read).await?;
        self.hub(session_id).await?.ask(Command::Transcript).await
    }

    /// Opens a stream of the session's frames from `after_seq` (implicitly resuming a paused
    /// session). The subscription yields the welcome, the backlog, `replay_done`, then live
    /// frames.
    pub async fn connect(
        &self,
        principal: &Principal,
        session_id: &str,
        after_seq: u64,
        source: &str,
    ) -> Result<Subscription, GatewayError> {
        let record = self.access(principal, session_id, Scope::Read).await?;
        let hub = self.hub(session_id).await?;
        let connection_id = format!("con_{}", uuid::Uuid::now_v7().simple());
        let presence = PresenceEntry {
            connection_id: connection_id.clone(),
            subject: principal.subject.clone(),
            source: source.to_owned(),
        };
        let attached = hub.ask(|reply| Command::Connect(presence, reply)).await?;
        let principal = Principal {
            organization_id: record.info.organization_id,
            ..principal.clone()
        };
        let welcome = Welcome {
            protocol_version: PROTOCOL_VERSION,
            session_id: session_id.to_owned(),
            connection_id,
            head_seq: attached.head_seq,
            status: attached.status,
            principal,
            heartbeat_interval_ms: self.services.config.heartbeat_interval.as_millis() as u64,
            ..Default::default()
        };
        Ok(Subscription::new(
            welcome,
            after_seq,
            attached.outlet,
            self.services.log.clone(),
            hub,
        ))
    }

    /// The base URL of the session's agent, resuming the session first if needed.
    pub async fn agent_url(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<String, GatewayError> {
        self.access(principal, session_id, Scope::Write).await?;
        let hub = self.hub(session_id).await?;
        hub.ask(Command::Resume).await?;
        hub.ask(Command::AgentUrl).await
    }

    /// Fails when the store does not answer.
    pub async fn check_store(&self) -> Result<(), GatewayError> {
        self.services.store.session("").await?;
        Ok(())
    }

    /// Stops every hub and pauses every running agent, so nothing outlives the gateway.
    pub async fn shutdown(&self) {
        let hubs: Vec<HubHandle> = self.hubs.lock().await.drain().map(|(_, hub)| hub).collect();
        for hub in hubs {
            hub.shutdown().await;
        }
    }
}
