//! Prompts, turns and permissions.

use super::*;

impl Hub {
    pub(super) async fn admit(
        &mut self,
        mut prompt: PromptRecord,
    ) -> Result<PromptAdmission, GatewayError> {
        if self.record.info.status == SessionStatus::Stopped {
            return Err(GatewayError::Conflict("the session has stopped".into()));
        }
        let position = self.queue.len() + usize::from(self.running.is_some());
        prompt.admission = PromptAdmission {
            prompt_id: prompt.prompt_id.clone(),
            queue_position: u32::try_from(position).unwrap_or(u32::MAX),
            duplicate: false,
        };
        prompt.state = PromptState::Queued;
        let (stored, new) = self.services.store.admit_prompt(&prompt).await?;
        if !new {
            return Ok(stored.admission);
        }
        self.append(Event::UserMessage(UserMessage {
            message_id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
            prompt_id: prompt.prompt_id.clone(),
            sender: prompt.sender.clone(),
            content: prompt.content.clone(),
            images: prompt.images.clone(),
            queue_position: prompt.admission.queue_position,
            ..Default::default()
        }));
        let admission = prompt.admission.clone();
        self.queue.push_back(prompt);
        self.advance().await?;
        Ok(admission)
    }

    pub(super) async fn cancel_queued(
        &mut self,
        prompt_id: &str,
        by: Sender,
    ) -> Result<(), GatewayError> {
        if self
            .running
            .as_ref()
            .is_some_and(|turn| turn.prompt_id == prompt_id)
        {
            return Err(GatewayError::Conflict(format!(
                "prompt {prompt_id} is running; cancel the turn instead"
            )));
        }
        let Some(index) = self
            .queue
            .iter()
            .position(|queued| queued.prompt_id == prompt_id)
        else {
            return Err(GatewayError::NotFound(format!(
                "no queued prompt {prompt_id}"
            )));
        };
        self.queue.remove(index);
        self.services
            .store
            .set_prompt_state(&self.record.info.id, prompt_id, PromptState::Withdrawn)
            .await?;
        self.append(Event::QueuedPromptCancelled(QueuedPromptCancelled {
            prompt_id: prompt_id.to_owned(),
            cancelled_by: Some(by),
            ..Default::default()
        }));
        Ok(())
    }

    pub(super) async fn cancel(&mut self, by: Sender) -> bool {
        let grace = self.services.config.cancel_grace;
        let Some(turn) = self.running.as_mut() else {
            return false;
        };
        if turn.cancel.is_none() {
            turn.cancel = Some((Instant::now() + grace, Some(by)));
            if let Agent::Up(control) = &self.agent
                && let Err(error) = control.abort().await
            {
                tracing::warn!(session_id = %self.record.info.id, error = %error, "abort failed");
            }
        }
        true
    }

    pub(super) async fn reply_permission(
        &mut self,
        permission_id: &str,
        decision: PermissionDecision,
        by: Option<Sender>,
    ) -> Result<(), GatewayError> {
        if !self.permissions.contains_key(permission_id) {
            return Err(if self.resolved_permissions.contains(permission_id) {
                GatewayError::Conflict(format!("permission {permission_id} was already answered"))
            } else {
                GatewayError::NotFound(format!("no pending permission {permission_id}"))
            });
        }
        if let Agent::Up(control) = &self.agent {
            control.reply_permission(permission_id, decision).await?;
        }
        self.resolve_permission(permission_id, decision, by.clone(), by.is_none());
        Ok(())
    }

    pub(super) fn resolve_permission(
        &mut self,
        permission_id: &str,
        decision: PermissionDecision,
        resolved_by: Option<Sender>,
        timed_out: bool,
    ) {
        if self.permissions.remove(permission_id).is_none() {
            return;
        }
        self.resolved_permissions.insert(permission_id.to_owned());
        self.append(Event::PermissionResolved(PermissionResolved {
            permission_id: permission_id.to_owned(),
            decision,
            resolved_by,
            timed_out,
            ..Default::default()
        }));
    }

    /// Starts the next queued prompt when nothing runs.
    pub(super) async fn advance(&mut self) -> Result<(), GatewayError> {
        while self.running.is_none() && !self.queue.is_empty() {
            let control = match &self.agent {
                Agent::Down => return self.ensure_agent().await,
                Agent::Booting => return Ok(()),
                Agent::Up(control) => control.clone(),
            };
            if self.record.info.status != SessionStatus::Running {
                return Ok(());
            }
            let Some(prompt) = self.queue.pop_front() else {
                return Ok(());
            };
            self.services
                .store
                .set_prompt_state(
                    &self.record.info.id,
                    &prompt.prompt_id,
                    PromptState::Running,
                )
                .await?;
            self.running = Some(Turn {
                prompt_id: prompt.prompt_id.clone(),
                cancel: None,
                messages: HashSet::new(),
            });
            self.append(Event::TurnStarted(TurnStarted {
                prompt_id: prompt.prompt_id.clone(),
                ..Default::default()
            }));
            let agent_prompt = AgentPrompt {
                text: prompt.content,
                images: prompt.images,
            };
            if let Err(error) = control.prompt(&agent_prompt).await {
                self.append(Event::AgentError(AgentError {
                    kind: "prompt_rejected".into(),
                    message: error.to_string(),
                    prompt_id: Some(prompt.prompt_id),
                    ..Default::default()
                }));
                self.end_turn(false).await?;
            }
        }
        Ok(())
    }

    /// Ends the running turn, completed or cancelled.
    pub(super) async fn end_turn(&mut self, cancelled: bool) -> Result<(), GatewayError> {
        let Some(turn) = self.running.take() else {
            return Ok(());
        };
        let cancelled = cancelled || turn.cancel.is_some();
        if cancelled {
            self.cancelled_messages = turn.messages;
            self.append(Event::TurnCancelled(TurnCancelled {
                prompt_id: turn.prompt_id.clone(),
                cancelled_by: turn.cancel.and_then(|(_, by)| by),
                ..Default::default()
            }));
        } else {
            self.append(Event::TurnCompleted(TurnCompleted {
                prompt_id: turn.prompt_id.clone(),
                ..Default::default()
            }));
        }
        for permission_id in std::mem::take(&mut self.permissions).into_keys() {
            self.resolved_permissions.insert(permission_id);
        }
        self.services
            .store
            .set_prompt_state(&self.record.info.id, &turn.prompt_id, PromptState::Done)
            .await?;
        Ok(())
    }

    pub(super) fn permission_asked(&mut self, ask: PermissionAsk) {
        let timeout = self.services.config.permission_timeout;
        let expires_at = now_millis() + timeout.as_millis() as i64;
        self.permissions
            .insert(ask.permission_id.clone(), Instant::now() + timeout);
        self.append(Event::PermissionRequested(PermissionRequested {
            permission_id: ask.permission_id,
            permission: ask.permission,
            patterns: ask.patterns,
            metadata: ask.metadata,
            call_id: ask.call_id,
            expires_at,
            default_decision: self.services.config.permission_default,
            ..Default::default()
        }));
    }
}
