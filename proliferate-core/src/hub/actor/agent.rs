//! The agent's lifecycle: boot, updates, loss and pause.

use super::*;

impl Hub {
    /// Boots the sandbox if the session has none and may have one (implicit resume).
    pub(super) async fn ensure_agent(&mut self) -> Result<(), GatewayError> {
        if !matches!(self.agent, Agent::Down) {
            return Ok(());
        }
        let next = match self.record.info.status {
            SessionStatus::Pending => SessionStatus::Starting,
            SessionStatus::Paused | SessionStatus::Failed => SessionStatus::Resuming,
            _ => return Ok(()),
        };
        let (organization_id, session_id) =
            (&self.record.info.organization_id, &self.record.info.id);
        let cap = self.services.config.max_live_sessions_per_organization;
        if !self.services.live.claim(organization_id, session_id, cap) {
            return Err(GatewayError::LimitExceeded(format!(
                "the organisation already runs {} sessions, its limit; pause one first",
                cap.unwrap_or_default()
            )));
        }
        if let Err(error) = self.set_status(next, "requested") {
            self.agent_down();
            return Err(error);
        }
        self.agent = Agent::Booting;
        let services = self.services.clone();
        let spec = crate::sandbox::SandboxSpec {
            session_id: self.record.info.id.clone(),
            launch: services.driver.launch(
                (self.record.info.model.as_deref()).unwrap_or(services.driver.default_model()),
            ),
            restore_from: self.record.info.source_snapshot_id.clone(),
            // Sessions stored before limits existed get the provider's.
            limits: (self.record.info.limits.clone()).unwrap_or_else(|| services.provider.limits()),
            egress_allow: self.record.info.egress_allow.clone(),
            environment: vec![(
                crate::auth::SANDBOX_TOKEN_VARIABLE.to_owned(),
                services.authenticator.issue_sandbox_token(
                    &self.record.info.id,
                    services.config.sandbox_token_lease(),
                ),
            )],
        };
        let known_session = self.record.agent_session_id.clone();
        self.off_the_loop(async move {
            Done::Booted(
                async {
                    let sandbox = services.provider.start(&spec).await?;
                    let session = services
                        .driver
                        .attach(&sandbox.agent, known_session.as_deref())
                        .await?;
                    Ok((sandbox, session))
                }
                .await,
            )
        });
        Ok(())
    }

    pub(super) async fn on_booted(
        &mut self,
        result: Result<(Sandbox, AgentSession), GatewayError>,
    ) -> Result<(), GatewayError> {
        match result {
            Ok((sandbox, session)) => {
                self.record.agent_session_id = Some(session.control.agent_session_id().to_owned());
                self.record.info.isolation = Some(sandbox.isolation);
                self.record.info.limits = Some(sandbox.limits);
                self.agent_endpoint = Some(sandbox.agent);
                self.agent = Agent::Up(session.control);
                self.updates = Some(session.updates);
                self.set_status(SessionStatus::Running, "agent_ready")?;
                let info = SessionInfo {
                    head_seq: self.head_seq,
                    ..self.record.info.clone()
                };
                for waiter in std::mem::take(&mut self.resume_waiters) {
                    self.answer_when_staged_written(waiter, Ok(info.clone()));
                }
                self.advance().await
            }
            Err(error) => {
                self.agent_down();
                tracing::error!(session_id = %self.record.info.id, error = %error, "agent failed to start");
                self.append(Event::AgentError(AgentError {
                    kind: "agent_unreachable".into(),
                    message: error.to_string(),
                    ..Default::default()
                }));
                self.set_status(SessionStatus::Failed, "start_failed")?;
                for waiter in self.resume_waiters.drain(..) {
                    let _ = waiter.send(Err(GatewayError::Unavailable(error.to_string())));
                }
                Ok(())
            }
        }
    }

    pub(super) async fn on_update(
        &mut self,
        update: Option<AgentUpdate>,
    ) -> Result<(), GatewayError> {
        let running_prompt = self.turns.running_prompt().map(str::to_owned);
        match update {
            Some(AgentUpdate::Event(Event::AgentError(mut error))) => {
                error.prompt_id = error.prompt_id.or(running_prompt);
                // An agent that fails for want of memory, processes or disk says so vaguely.
                if let Some(limit) = self
                    .services
                    .provider
                    .over_limit(&self.record.info.id)
                    .await
                {
                    error.message = format!("the sandbox ran out of {limit}: {}", error.message);
                    error.kind = "limit_exceeded".into();
                }
                self.append(Event::AgentError(error));
            }
            Some(AgentUpdate::Event(event)) => self.agent_output(event),
            Some(AgentUpdate::PermissionAsked(ask)) => self.permission_asked(ask),
            Some(AgentUpdate::PermissionReplied {
                permission_id,
                decision,
            }) => self.resolve_permission(&permission_id, decision, None, false),
            Some(AgentUpdate::Idle) => {
                if self.turns.running_prompt().is_some() {
                    self.end_turn(false);
                    self.advance().await?;
                }
            }
            Some(AgentUpdate::Lost(reason)) => self.agent_lost(reason).await?,
            None => self.agent_lost("its update stream ended".into()).await?,
        }
        Ok(())
    }

    /// Appends the agent's output, except what belongs to a cancelled turn: §6.4 promises that
    /// no output follows `turn_cancelled` (OpenCode completes an aborted tool call after it
    /// reports the session idle).
    fn agent_output(&mut self, event: Event) {
        if let Some(message_id) = event.message_id()
            && !self.turns.claim_output(message_id)
        {
            tracing::debug!(session_id = %self.record.info.id, message_id, "dropped output of a cancelled turn");
            return;
        }
        self.append(event);
    }

    /// The agent's run is over: no more updates, and its sandbox token stops working.
    pub(super) fn agent_down(&mut self) {
        self.updates = None;
        self.agent = Agent::Down;
        let info = &self.record.info;
        self.services.live.release(&info.organization_id, &info.id);
        self.services
            .authenticator
            .revoke_sandbox_token(&self.record.info.id);
    }

    pub(super) async fn agent_lost(&mut self, reason: String) -> Result<(), GatewayError> {
        tracing::error!(session_id = %self.record.info.id, reason, "agent lost");
        self.agent_down();
        let prompt_id = self.turns.running_prompt().map(str::to_owned);
        let over_limit = self
            .services
            .provider
            .over_limit(&self.record.info.id)
            .await;
        self.append(Event::AgentError(match over_limit {
            Some(limit) => AgentError {
                kind: "limit_exceeded".into(),
                message: format!("the sandbox ran out of {limit}; the agent stopped: {reason}"),
                prompt_id,
                ..Default::default()
            },
            None => AgentError {
                kind: "agent_exited".into(),
                message: format!("the agent stopped: {reason}"),
                prompt_id,
                ..Default::default()
            },
        }));
        self.end_turn(true);
        let _ = self.services.provider.pause(&self.record.info.id).await;
        if self.record.info.status == SessionStatus::Running {
            self.set_status(SessionStatus::Failed, "agent_exited")?;
        }
        Ok(())
    }

    /// Starts pausing: the running turn is cancelled, the sandbox pauses off the loop, and
    /// [`Hub::on_paused`] finishes.
    pub(super) async fn pause(&mut self, reason: &str) -> Result<(), GatewayError> {
        check_transition(self.record.info.status, SessionStatus::Pausing)?;
        if self.turns.running_prompt().is_some() {
            self.abort_off_the_loop();
            self.end_turn(true);
        }
        self.set_status(SessionStatus::Pausing, reason)?;
        self.agent_down();
        let (provider, session_id) = (self.services.provider.clone(), self.record.info.id.clone());
        let reason = reason.to_owned();
        self.off_the_loop(async move {
            let result = provider.pause(&session_id).await;
            Done::Paused(reason, result.map_err(Into::into))
        });
        Ok(())
    }

    pub(super) async fn on_paused(
        &mut self,
        reason: &str,
        result: Result<(), GatewayError>,
    ) -> Result<(), GatewayError> {
        let waiters = std::mem::take(&mut self.pause_waiters);
        match result {
            Ok(()) => {
                self.set_status(SessionStatus::Paused, reason)?;
                let info = SessionInfo {
                    head_seq: self.head_seq,
                    ..self.record.info.clone()
                };
                for waiter in waiters {
                    self.answer_when_staged_written(waiter, Ok(info.clone()));
                }
                // Prompts admitted while it paused wake it again.
                self.advance().await
            }
            Err(error) => {
                tracing::error!(session_id = %self.record.info.id, error = %error, "pause failed");
                self.set_status(SessionStatus::Failed, "pause_failed")?;
                let message = format!("the session could not pause: {error}");
                let mut error = Some(error);
                for waiter in waiters {
                    let error = error
                        .take()
                        .unwrap_or_else(|| GatewayError::Unavailable(message.clone()));
                    let _ = waiter.send(Err(error));
                }
                Ok(())
            }
        }
    }
}
