//! Session lifecycle: create, list, read, pause, resume, snapshot, delete.

use super::*;

impl Gateway {
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
        if principal.session_id.is_some() {
            return Err(GatewayError::Forbidden(
                "a token restricted to one session cannot create sessions".into(),
            ));
        }
        if let Some(snapshot_id) = &request.snapshot_id {
            let snapshot = self.services.store.snapshot(snapshot_id).await?;
            if snapshot.is_none_or(|snapshot| snapshot.organization_id != principal.organization_id)
            {
                return Err(GatewayError::NotFound(format!("no snapshot {snapshot_id}")));
            }
        }
        let limits = crate::sandbox::within(
            &self.services.provider.limits(),
            &request.limits.clone().unwrap_or_default(),
        )
        .map_err(GatewayError::BadRequest)?;
        crate::sandbox::EgressPolicy::validate(&request.egress_allow)
            .map_err(GatewayError::BadRequest)?;
        let model = match &request.model {
            Some(model) => match model.split_once('/') {
                Some((provider, name)) if !provider.is_empty() && !name.is_empty() => model,
                _ => {
                    return Err(GatewayError::BadRequest(format!(
                        "model {model:?} is not of the form provider/model"
                    )));
                }
            },
            None => self.services.driver.default_model(),
        };
        let cap = self.services.config.max_live_sessions_per_organization;
        if let Some(cap) = cap
            && idempotency_key.is_none()
            && self.services.live.count(&principal.organization_id) >= cap
        {
            return Err(GatewayError::LimitExceeded(format!(
                "the organisation already runs {cap} sessions, its limit; pause one first"
            )));
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
                model: Some(model.to_owned()),
                provider: self.services.provider.name().into(),
                isolation: Some(self.services.isolation.clone()),
                limits: Some(limits),
                egress_allow: request.egress_allow.clone(),
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
        let hubs = &self.services;
        if let Some(content) = request.initial_prompt {
            let prompt =
                self.prompt_record(principal, &session_id, None, content, Vec::new(), "api")?;
            hubs.ask(&session_id, |reply| Command::Prompt(prompt, reply))
                .await?;
        } else {
            hubs.ask(&session_id, Command::Boot).await?;
        }
        Ok((hubs.ask(&session_id, Command::Info).await?, true))
    }

    pub(super) async fn info_of(&self, session_id: &str) -> Result<SessionInfo, GatewayError> {
        match self.services.ask(session_id, Command::Info).await {
            // Run by another gateway, or the store is busy: the session as last stored.
            Err(GatewayError::Unavailable(reason)) => {
                match self.services.store.session(session_id).await {
                    Ok(Some(record)) => Ok(record.info),
                    Ok(None) => Err(GatewayError::NotFound(format!("no session {session_id}"))),
                    Err(_) => Err(GatewayError::Unavailable(reason)),
                }
            }
            answer => answer,
        }
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
        self.services.ask(session_id, Command::Terminate).await?;
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
        self.services.ask(session_id, Command::Pause).await
    }

    /// Resumes the session; answers once it runs.
    pub async fn resume(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<SessionInfo, GatewayError> {
        self.access(principal, session_id, Scope::Write).await?;
        self.services.ask(session_id, Command::Resume).await
    }

    /// Saves a snapshot of the session's workspace and agent state.
    pub async fn snapshot(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<SnapshotInfo, GatewayError> {
        self.access(principal, session_id, Scope::Write).await?;
        self.services.ask(session_id, Command::Snapshot).await
    }
}
