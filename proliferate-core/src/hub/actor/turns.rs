//! Prompts, turns and permissions.

use super::*;

impl Hub {
    /// Admits a prompt: its sender is answered once its `user_message` is in the log, and the
    /// agent sees it only then. A prompt admitted before is answered at once.
    pub(super) async fn admit(
        &mut self,
        prompt: PromptRecord,
        reply: Reply<PromptAdmission>,
    ) -> Result<(), GatewayError> {
        match self.admission(prompt).await {
            Ok((admission, true)) => {
                self.answer_when_written(self.last_user_message_seq, reply, Ok(admission));
                self.advance().await?;
            }
            Ok((admission, false)) => drop(reply.send(Ok(admission))),
            Err(error) => drop(reply.send(Err(error))),
        }
        Ok(())
    }

    /// Stores, logs and queues a new prompt; true when it is new.
    async fn admission(
        &mut self,
        mut prompt: PromptRecord,
    ) -> Result<(PromptAdmission, bool), GatewayError> {
        if self.record.info.status == SessionStatus::Stopped {
            return Err(GatewayError::Conflict("the session has stopped".into()));
        }
        prompt.admission = PromptAdmission {
            prompt_id: prompt.prompt_id.clone(),
            queue_position: self.turns.place(&prompt.prompt_id)?,
            duplicate: false,
        };
        prompt.state = PromptState::Queued;
        let (stored, new) = self.services.store.admit_prompt(&prompt).await?;
        if !new {
            return Ok((stored.admission, false));
        }
        self.log_user_message(&prompt);
        let admission = prompt.admission.clone();
        self.turns.push(prompt);
        Ok((admission, true))
    }

    /// Logs a prompt's `user_message`.
    pub(super) fn log_user_message(&mut self, prompt: &PromptRecord) {
        self.append(Event::UserMessage(UserMessage {
            message_id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
            prompt_id: prompt.prompt_id.clone(),
            sender: prompt.sender.clone(),
            content: prompt.content.clone(),
            images: prompt.images.clone(),
            queue_position: prompt.admission.queue_position,
            ..Default::default()
        }));
        self.last_user_message_seq = self.head_seq;
    }

    pub(super) async fn cancel_queued(
        &mut self,
        prompt_id: &str,
        by: Sender,
    ) -> Result<(), GatewayError> {
        self.turns.withdraw(prompt_id)?;
        self.stage_prompt_state(prompt_id, PromptState::Withdrawn);
        self.append(Event::QueuedPromptCancelled(QueuedPromptCancelled {
            prompt_id: prompt_id.to_owned(),
            cancelled_by: Some(by),
            ..Default::default()
        }));
        Ok(())
    }

    pub(super) fn cancel(&mut self, by: Sender) -> bool {
        let deadline = Instant::now() + self.services.config.cancel_grace;
        match self.turns.cancel(Some(by), deadline) {
            None => false,
            Some(first) => {
                if first && let Some(agent) = self.lifecycle.agent() {
                    self.abort_off_the_loop(agent.clone());
                }
                true
            }
        }
    }

    /// Asks the agent to stop its turn, without waiting for it.
    pub(super) fn abort_off_the_loop(&self, agent: Arc<dyn AgentControl>) {
        let session_id = self.record.info.id.clone();
        tokio::spawn(async move {
            if let Err(error) = agent.abort().await {
                tracing::warn!(session_id, error = %error, "abort failed");
            }
        });
    }

    /// Passes a person's answer to the agent off the loop; the request resolves when the
    /// agent took it ([`Done::PermissionAnswered`]).
    pub(super) fn reply_permission(&mut self, answer: PermissionAnswer) {
        let id = answer.permission_id.clone();
        if let Err(error) = self.permissions.answer(&id) {
            let _ = answer.reply.send(Err(error));
            return;
        }
        let Some(control) = self.lifecycle.agent() else {
            // No agent to tell: the answer is taken as given.
            if self.permissions.delivered(&id, true) {
                self.log_resolved(&id, answer.decision, Some(answer.by), false);
            }
            let _ = answer.reply.send(Ok(()));
            return;
        };
        let control = control.clone();
        self.off_the_loop(async move {
            let result = control.reply_permission(&id, answer.decision).await;
            Done::PermissionAnswered(answer, result.map_err(Into::into))
        });
    }

    /// Settles a pending request and logs how, once.
    pub(super) fn resolve_permission(
        &mut self,
        permission_id: &str,
        decision: PermissionDecision,
        resolved_by: Option<Sender>,
        timed_out: bool,
    ) {
        if self.permissions.settle(permission_id) {
            self.log_resolved(permission_id, decision, resolved_by, timed_out);
        }
    }

    /// Logs a settled request.
    pub(super) fn log_resolved(
        &mut self,
        permission_id: &str,
        decision: PermissionDecision,
        resolved_by: Option<Sender>,
        timed_out: bool,
    ) {
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
        while self.turns.running_prompt().is_none() && self.turns.waiting() > 0 {
            let control = match self.lifecycle.agent() {
                Some(control) => control.clone(),
                None => {
                    // The prompts wait (for a boot under way, or a place to run), and everyone
                    // is told why.
                    if let Err(GatewayError::LimitExceeded(reason)) = self.ensure_agent(None) {
                        let next = self.turns.next_waiting();
                        let prompt_id = next.map(|prompt| prompt.prompt_id.clone());
                        self.append(Event::AgentError(AgentError {
                            kind: "limit_exceeded".into(),
                            message: reason,
                            prompt_id,
                            ..Default::default()
                        }));
                    }
                    return Ok(());
                }
            };
            if self.record.info.status != SessionStatus::Running {
                return Ok(());
            }
            // A prompt's message is in the log before the agent sees the prompt.
            if self.written_seq < self.last_user_message_seq {
                return Ok(());
            }
            let Some(prompt) = self.turns.start_next() else {
                return Ok(());
            };
            self.stage_prompt_state(&prompt.prompt_id, PromptState::Running);
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
        if self.turns.running_prompt() != Some(prompt_id.as_str()) {
            return Ok(());
        }
        self.append(Event::AgentError(AgentError {
            kind: "prompt_rejected".into(),
            message: error.to_string(),
            prompt_id: Some(prompt_id),
            ..Default::default()
        }));
        self.end_turn(false);
        self.advance().await
    }

    /// Ends the running turn, completed or cancelled.
    pub(super) fn end_turn(&mut self, cancelled: bool) {
        let Some(end) = self.turns.end(cancelled) else {
            return;
        };
        self.stage_prompt_state(&end.prompt_id, PromptState::Done);
        self.append(match end.cancelled {
            true => Event::TurnCancelled(TurnCancelled {
                prompt_id: end.prompt_id,
                cancelled_by: end.cancelled_by,
                ..Default::default()
            }),
            false => Event::TurnCompleted(TurnCompleted {
                prompt_id: end.prompt_id,
                ..Default::default()
            }),
        });
        self.permissions.end_turn();
    }

    pub(super) fn permission_asked(&mut self, ask: PermissionAsk) {
        let timeout = self.services.config.permission_timeout;
        let expires_at = now_millis() + timeout.as_millis() as i64;
        (self.permissions).ask(ask.permission_id.clone(), Instant::now() + timeout);
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
