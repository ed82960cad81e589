//! The agent's lifecycle: boot, updates, loss and pause.

use super::*;

impl Hub {
    /// Resumes the session if it has no agent and may have one (implied by a connection or a
    /// prompt, or asked by `waiter`).
    pub(super) fn ensure_agent(
        &mut self,
        waiter: Option<Reply<SessionInfo>>,
    ) -> Result<(), GatewayError> {
        let (services, info) = (&self.services, &self.record.info);
        let cap = services.config.max_live_sessions_per_organization;
        let claim = || match services.live.claim(&info.organization_id, &info.id, cap) {
            true => Ok(()),
            false => Err(GatewayError::LimitExceeded(format!(
                "the organisation already runs {} sessions, its limit; pause one first",
                cap.unwrap_or_default()
            ))),
        };
        let effects = self.lifecycle.resume(info.status, waiter, claim)?;
        self.carry_out(effects)
    }

    /// Carries out what the lifecycle returned, in order.
    pub(super) fn carry_out(&mut self, effects: Vec<Effect>) -> Result<(), GatewayError> {
        for effect in effects {
            match effect {
                Effect::EndTurn(agent) => {
                    if self.turns.running_prompt().is_some() {
                        if let Some(agent) = agent {
                            self.abort_off_the_loop(agent);
                        }
                        self.end_turn(true);
                    }
                }
                Effect::Status(status, reason) => self.set_status(status, &reason)?,
                Effect::Boot => self.boot(),
                Effect::Stop => {
                    let (provider, session_id) =
                        (self.services.provider.clone(), self.record.info.id.clone());
                    self.off_the_loop(async move {
                        Done::Stopped(provider.pause(&session_id).await.map_err(Into::into))
                    });
                }
                Effect::Delete => {
                    let (services, session_id) =
                        (self.services.clone(), self.record.info.id.clone());
                    self.off_the_loop(async move {
                        let result = async {
                            services.provider.terminate(&session_id).await?;
                            services.store.delete_session(&session_id).await?;
                            Ok(())
                        };
                        Done::Deleted(result.await)
                    });
                }
                Effect::Release => {
                    self.updates = None;
                    let info = &self.record.info;
                    self.services.live.release(&info.organization_id, &info.id);
                    (self.services.authenticator).revoke_sandbox_token(&info.id);
                }
                Effect::Answer(waiters) => {
                    for waiter in waiters {
                        self.answer_when_staged_written(waiter, Ok(self.info_as_staged()));
                    }
                }
                Effect::Fail(waiters, error) => {
                    let message = error.to_string();
                    let mut error = Some(error);
                    for waiter in waiters {
                        let error = (error.take())
                            .unwrap_or_else(|| GatewayError::Unavailable(message.clone()));
                        let _ = waiter.send(Err(error));
                    }
                }
                Effect::Resume => self.ensure_agent(None)?,
            }
        }
        Ok(())
    }

    /// Starts the sandbox and attaches the agent off the loop; [`Hub::on_booted`] finishes.
    fn boot(&mut self) {
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
    }

    pub(super) async fn on_booted(
        &mut self,
        result: Result<(Sandbox, AgentSession), GatewayError>,
    ) -> Result<(), GatewayError> {
        match result {
            Ok((sandbox, session)) => {
                if !self.lifecycle.is_booting() {
                    // Deleted while it booted.
                    return Ok(());
                }
                self.record.agent_session_id = Some(session.control.agent_session_id().to_owned());
                self.record.info.isolation = Some(sandbox.isolation);
                self.record.info.limits = Some(sandbox.limits);
                self.agent_endpoint = Some(sandbox.agent);
                self.updates = Some(session.updates);
                let effects = self.lifecycle.booted(session.control);
                self.carry_out(effects)?;
                self.advance().await
            }
            Err(error) => {
                if !self.lifecycle.is_booting() {
                    return Ok(());
                }
                tracing::error!(session_id = %self.record.info.id, error = %error, "agent failed to start");
                self.append(Event::AgentError(AgentError {
                    kind: "agent_unreachable".into(),
                    message: error.to_string(),
                    ..Default::default()
                }));
                let effects = self.lifecycle.boot_failed(&error);
                self.carry_out(effects)
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

    /// The agent stopped: its turn ends, its sandbox stops off the loop, and the session fails.
    pub(super) async fn agent_lost(&mut self, reason: String) -> Result<(), GatewayError> {
        tracing::error!(session_id = %self.record.info.id, reason, "agent lost");
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
        let effects = self.lifecycle.lost(self.record.info.status);
        self.carry_out(effects)
    }

    /// Starts pausing, asked by `waiter` or for being idle: the running turn is cancelled, the
    /// sandbox pauses off the loop, and [`Hub::on_stopped`] finishes.
    pub(super) fn pause(
        &mut self,
        reason: &str,
        waiter: Option<Reply<SessionInfo>>,
    ) -> Result<(), GatewayError> {
        let effects = (self.lifecycle).pause(self.record.info.status, reason, waiter)?;
        self.carry_out(effects)
    }

    /// The sandbox stopped, or failed to.
    pub(super) async fn on_stopped(
        &mut self,
        result: Result<(), GatewayError>,
    ) -> Result<(), GatewayError> {
        if let Err(error) = &result {
            tracing::error!(session_id = %self.record.info.id, error = %error, "the sandbox did not stop");
        }
        let effects = self.lifecycle.stopped(self.record.info.status, result);
        self.carry_out(effects)?;
        // Prompts admitted while it paused wake it again.
        self.advance().await
    }
}
