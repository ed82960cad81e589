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
                    .set_connections(&self.record.info.id, self.fanout.local_len());
                let _ = reply.send(Ok(Attached {
                    hub,
                    outlet,
                    head_seq: self.head_seq,
                    status: self.record.info.status,
                    connections: self.fanout.listed_connections(),
                    connection_count: self.fanout.len() as u64,
                }));
                // A client may watch a session its organisation has no room to run.
                match self.ensure_agent(None) {
                    Err(GatewayError::LimitExceeded(reason)) => {
                        tracing::info!(session_id = %self.record.info.id, reason, "not resumed on connect");
                    }
                    other => other?,
                }
            }
            Command::Boot(reply) => {
                let answer = self.ensure_agent(None);
                let _ = reply.send(answer);
            }
            Command::Remote(gateway_id, connections) => {
                self.fanout
                    .set_remote(&gateway_id, connections, Instant::now());
            }
            Command::Disconnect(connection_id) => {
                if self.fanout.remove(&connection_id) {
                    self.services
                        .metrics
                        .set_connections(&self.record.info.id, self.fanout.local_len());
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
            // A refusal goes to the waiter; what fails beyond it stops the hub.
            Command::Pause(reply) => self.pause("requested", Some(reply))?,
            Command::Resume(reply) => self.ensure_agent(Some(reply))?,
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
                let url = match self.lifecycle.agent() {
                    Some(_) => self.agent_endpoint.clone(),
                    None => None,
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
                if self.deleting.is_some() {
                    let error = GatewayError::Conflict("the session is being deleted".into());
                    let _ = reply.send(Err(error));
                    return Ok(true);
                }
                self.deleting = Some(reply);
                let effects = self.lifecycle.delete();
                self.carry_out(effects)?;
            }
            Command::Shutdown(done) => {
                // Released first, so writing out starts no turn.
                let effects = self.lifecycle.shut_down();
                self.carry_out(effects)?;
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
