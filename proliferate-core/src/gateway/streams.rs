//! Reading a session: event pages, the transcript, live subscriptions, the agent proxy.

use super::*;

/// A client's cursor, if it is a seq the log can hold (the store keeps seqs as signed 64-bit
/// integers).
fn cursor(after_seq: u64) -> Result<u64, GatewayError> {
    if i64::try_from(after_seq).is_err() {
        return Err(GatewayError::BadRequest(format!(
            "after_seq {after_seq} is out of range"
        )));
    }
    Ok(after_seq)
}

impl Gateway {
    /// A page of the session's events after `after_seq`.
    pub async fn events(
        &self,
        principal: &Principal,
        session_id: &str,
        after_seq: u64,
        limit: u32,
    ) -> Result<EventPage, GatewayError> {
        let after_seq = cursor(after_seq)?;
        let record = self.access(principal, session_id, Scope::Read).await?;
        if let Some((earliest, _)) = self.services.log.bounds(session_id).await?
            && after_seq + 1 < earliest
        {
            return Err(GatewayError::CursorExpired(format!(
                "events before seq {earliest} are no longer kept; read the transcript, then \
                 follow from its through_seq"
            )));
        }
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
        self.services.ask(session_id, Command::Transcript).await
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
        let after_seq = cursor(after_seq)?;
        let record = self.access(principal, session_id, Scope::Read).await?;
        let cap = self.services.config.max_connections_per_organization;
        let place = (self.services.connections)
            .try_take(&record.info.organization_id, cap)
            .ok_or_else(|| {
                GatewayError::LimitExceeded(format!(
                    "the organisation already holds {} open streams, its limit; close one first",
                    cap.unwrap_or_default()
                ))
            })?;
        let connection_id = format!("con_{}", uuid::Uuid::now_v7().simple());
        let presence = PresenceEntry {
            connection_id: connection_id.clone(),
            subject: principal.subject.clone(),
            source: source.to_owned(),
        };
        let attached = (self.services)
            .ask(session_id, |reply| Command::Connect(presence, reply))
            .await?;
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
            connections: attached.connections,
            connection_count: attached.connection_count,
            ..Default::default()
        };
        Ok(Subscription::new(
            welcome,
            after_seq,
            attached.outlet,
            self.services.log.clone(),
            attached.hub,
            place,
            self.services.metrics.clone(),
        ))
    }

    /// Everyone connected to the session's streams now.
    pub async fn presence(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<Presence, GatewayError> {
        self.access(principal, session_id, Scope::Read).await?;
        self.services.ask(session_id, Command::Presence).await
    }

    /// Where the session's agent answers, resuming the session first if needed.
    pub async fn agent_endpoint(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<AgentEndpoint, GatewayError> {
        self.access(principal, session_id, Scope::Write).await?;
        self.services.ask(session_id, Command::Resume).await?;
        self.services.ask(session_id, Command::AgentEndpoint).await
    }

    /// The agent's own id for the session's conversation, once its agent has started.
    pub async fn agent_session(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<Option<String>, GatewayError> {
        Ok(self
            .access(principal, session_id, Scope::Read)
            .await?
            .agent_session_id)
    }
}
