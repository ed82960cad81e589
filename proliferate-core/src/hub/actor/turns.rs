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
        let waiting = |queued: &PromptRecord| queued.prompt_id == prompt.prompt_id;
        let limit = self.services.config.max_queued_prompts;
        if self.queue.len() >= limit && !self.queue.iter().any(waiting) {
            return Err(GatewayError::LimitExceeded(format!(
                "the session already holds {limit} queued prompts, its limit; send this one after a turn ends"
            )));
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
        // The prompt is in the log before the agent sees it and before its sender is told.
        self.flush().await?;
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

    pub(super) fn cancel(&mut self, by: Sender) -> bool {
        let grace = self.services.config.cancel_grace;
        let Some(turn) = self.running.as_mut() else {
            return false;
        };
        if turn.cancel.is_none() {
            turn.cancel = Some((Instant::now() + grace, Some(by)));
            self.abort_off_the_loop();
        }
        true
    }

    /// Asks the agent to stop its turn, without waiting for it.
    pub(super) fn abort_off_the_loop(&self) {
        if let Agent::Up(control) = &self.agent {
            let (control, session_id) = (control.clone(), self.record.info.id.clone());
            tokio::spawn(async move {
                if let Err(error) = control.abort().await {
                    tracing::warn!(session_id, error = %error, "abort failed");
                }
            });
        }
    }

    /// Passes a person's answer to the agent off the loop; the request resolves when the
    /// agent took it ([`Done::PermissionAnswered`]).
    pub(super) fn reply_permission(&mut self, answer: PermissionAnswer) {
        let id = answer.permission_id.clone();
        if !self.permissions.contains_key(&id) || self.answering.contains(&id) {
            let error = if self.resolved_permissions.contains(&id) || self.answering.contains(&id) {
                GatewayError::Conflict(format!("permission {id} was already answered"))
            } else {
                GatewayError::NotFound(format!("no pending permission {id}"))
            };
            let _ = answer.reply.send(Err(error));
            return;
        }
        let Agent::Up(control) = &self.agent else {
            self.resolve_permission(&id, answer.decision, Some(answer.by), false);
            let _ = answer.reply.send(Ok(()));
            return;
        };
        let control = control.clone();
        self.answering.insert(id.clone());
        self.off_the_loop(async move {
            let result = control.reply_permission(&id, answer.decision).await;
            Done::PermissionAnswered(answer, result.map_err(Into::into))
        });
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
                Agent::Down => {
                    // The prompts wait, and everyone is told why.
                    if let Err(GatewayError::LimitExceeded(reason)) = self.ensure_agent().await {
                        let prompt_id = self.queue.front().map(|prompt| prompt.prompt_id.clone());
                        self.append(Event::AgentError(AgentError {
                            kind: "limit_exceeded".into(),
                            message: reason,
                            prompt_id,
                            ..Default::default()
                        }));
                    }
                    return Ok(());
                }
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
            let prompt_id = prompt.prompt_id;
            self.off_the_loop(async move {
                let result = control.prompt(&agent_prompt).await;
                Done::Prompted(prompt_id, result.map_err(Into::into))
            });
        }
        Ok(())
    }

    /// The agent refused a turn's prompt: the turn ends with the reason, and the next starts.
    pub(super) async fn on_prompted(
        &mut self,
        prompt_id: String,
        result: Result<(), GatewayError>,
    ) -> Result<(), GatewayError> {
        let Err(error) = result else {
            return Ok(());
        };
        if self
            .running
            .as_ref()
            .is_none_or(|turn| turn.prompt_id != prompt_id)
        {
            return Ok(());
        }
        self.append(Event::AgentError(AgentError {
            kind: "prompt_rejected".into(),
            message: error.to_string(),
            prompt_id: Some(prompt_id),
            ..Default::default()
        }));
        self.end_turn(false).await?;
        self.advance().await
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
