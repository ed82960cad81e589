//! Commands from connections and the gateway.

use super::*;

impl Hub {
    /// Handles one command; false when the hub must stop.
    pub(super) async fn handle(&mut self, command: Command) -> Result<bool, GatewayError> {
        match command {
            Command::Connect(presence, reply) => {
                let Some(hub) = self.own_handle() else {
                    let error = GatewayError::Unavailable("the session is shutting down".into());
                    let _ = reply.send(Err(error));
                    return Ok(true);
                };
                let outlet = self.fanout.add(presence);
                self.services
                    .metrics
                    .set_connections(&self.record.info.id, self.fanout.len());
                let _ = reply.send(Ok(Attached {
                    hub,
                    outlet,
                    head_seq: self.head_seq,
                    status: self.record.info.status,
                    connections: self.fanout.listed_connections(),
                    connection_count: self.fanout.len() as u64,
                }));
                // A client may watch a session its organisation has no room to run.
                match self.ensure_agent().await {
                    Err(GatewayError::LimitExceeded(reason)) => {
                        tracing::info!(session_id = %self.record.info.id, reason, "not resumed on connect");
                    }
                    other => other?,
                }
            }
            Command::Boot(reply) => {
                let answer = self.ensure_agent().await;
                let _ = reply.send(answer);
            }
            Command::Disconnect(connection_id) => {
                if self.fanout.remove(&connection_id) {
                    self.services
                        .metrics
                        .set_connections(&self.record.info.id, self.fanout.len());
                }
            }
            Command::Prompt(prompt, reply) => self.admit(prompt, reply).await?,
            Command::CancelQueued(prompt_id, by, reply) => {
                let answer = self.cancel_queued(&prompt_id, by).await;
                self.answer_when_staged_written(reply, answer);
            }
            Command::Cancel(by, reply) => {
                let answer = self.cancel(by);
                let _ = reply.send(Ok(answer));
            }
            Command::ReplyPermission(permission_id, decision, by, reply) => {
                self.reply_permission(PermissionAnswer {
                    permission_id,
                    decision,
                    by,
                    reply,
                });
            }
            Command::Pause(reply) => match self.record.info.status {
                SessionStatus::Paused => {
                    let _ = reply.send(Ok(self.info()));
                }
                SessionStatus::Pausing => self.pause_waiters.push(reply),
                // Pausing checks its transitions, so a session that is not running is refused.
                _ => match self.pause("requested").await {
                    Ok(()) => self.pause_waiters.push(reply),
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                },
            },
            Command::Resume(reply) => {
                if self.record.info.status == SessionStatus::Running {
                    let _ = reply.send(Ok(self.info()));
                } else if let Err(error) = self.ensure_agent().await {
                    let _ = reply.send(Err(error));
                } else if matches!(self.agent, Agent::Booting) {
                    self.resume_waiters.push(reply);
                } else {
                    let status = self.record.info.status;
                    let _ = reply.send(Err(check_transition(status, SessionStatus::Resuming)
                        .err()
                        .map_or_else(
                            || GatewayError::Conflict("the session cannot resume now".into()),
                            Into::into,
                        )));
                }
            }
            Command::Snapshot(reply) => self.snapshot(reply),
            Command::Transcript(reply) => {
                let _ = reply.send(Ok(self.reducer.transcript().clone()));
            }
            Command::Presence(reply) => {
                let _ = reply.send(Ok(Presence {
                    connections: self.fanout.connections(),
                    ..Default::default()
                }));
            }
            Command::AgentEndpoint(reply) => {
                let url = match self.agent {
                    Agent::Up(_) => self.agent_endpoint.clone(),
                    _ => None,
                };
                let _ =
                    reply.send(url.ok_or_else(|| {
                        GatewayError::Unavailable("the agent is not running".into())
                    }));
            }
            Command::Info(reply) => {
                let _ = reply.send(Ok(self.info()));
            }
            Command::Terminate(reply) => {
                self.agent_down();
                let session_id = self.record.info.id.clone();
                let answer = async {
                    self.services.provider.terminate(&session_id).await?;
                    self.services.store.delete_session(&session_id).await?;
                    Ok(())
                }
                .await;
                self.deleted
                    .store(answer.is_ok(), std::sync::atomic::Ordering::SeqCst);
                let _ = reply.send(answer);
                return Ok(false);
            }
            Command::Shutdown(done) => {
                // Down first, so writing out starts no turn.
                self.agent_down();
                if let Err(error) = self.write_out().await {
                    tracing::warn!(session_id = %self.record.info.id, error = %error, "events left unwritten at shutdown");
                }
                let _ = self.services.provider.pause(&self.record.info.id).await;
                let _ = done.send(());
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Saves a snapshot off the loop: the session streams on while its workspace is archived.
    fn snapshot(&mut self, reply: Reply<SnapshotInfo>) {
        if matches!(
            self.record.info.status,
            SessionStatus::Pending | SessionStatus::Stopped
        ) {
            let _ = reply.send(Err(GatewayError::Conflict(format!(
                "a {} session has nothing to snapshot",
                self.record.info.status.as_str()
            ))));
            return;
        }
        let services = self.services.clone();
        let (session_id, organization_id) = (
            self.record.info.id.clone(),
            self.record.info.organization_id.clone(),
        );
        self.off_the_loop(async move {
            let result = async {
                let info = services.provider.snapshot(&session_id).await?;
                services
                    .store
                    .insert_snapshot(&SnapshotRecord {
                        info: info.clone(),
                        organization_id,
                    })
                    .await?;
                Ok(info)
            }
            .await;
            Done::Snapshot(result, reply)
        });
    }
}
