//! The agent's run, as a plain type: down, booting, up, stopping or ending, and who waits for a
//! resume or a pause. Each step takes the session's status and returns what the hub must do, in
//! order: end the turn, move the status, boot, stop or delete the sandbox, release the run,
//! answer the waiters. It does no I/O, so every path is tested here without a sandbox.

use std::mem::take;

use crate::GatewayError;
use crate::protocol::v1::SessionStatus;
use crate::session::status::check_transition;

#[derive(Debug)]
enum Phase<A> {
    Down,
    Booting,
    Up(A),
    /// The sandbox is being stopped, because the session pauses or its agent was lost.
    Stopping {
        /// The status the session moves to once stopped (`paused`), if any.
        reason: String,
        /// A resume was asked meanwhile; it starts once the sandbox has stopped.
        resume: bool,
    },
    /// The session is being deleted.
    Ending,
}

/// One thing the hub does, in the order given.
#[derive(Debug)]
pub(crate) enum Effect<A, W> {
    /// Ends the running turn as cancelled, asking this agent to abort it if one is given.
    EndTurn(Option<A>),
    /// Moves the session to a status, for a reason.
    Status(SessionStatus, String),
    /// Starts the sandbox and attaches the agent, reporting back.
    Boot,
    /// Stops (pauses) the sandbox, reporting back.
    Stop,
    /// Terminates the sandbox and deletes the session, reporting back.
    Delete,
    /// The run is over: its organisation's place is free and its sandbox token stops working.
    Release,
    /// Answers these waiters with the session as it now is.
    Answer(Vec<W>),
    /// Answers these waiters with an error.
    Fail(Vec<W>, GatewayError),
    /// Asks for a resume that was waiting on the sandbox to stop.
    Resume,
}

/// Where a step leaves the one who asked for it.
enum Step<A, W> {
    /// Answered at once: the session already is as asked.
    Now,
    /// Answered when these effects have run their course.
    Wait(Vec<Effect<A, W>>),
}

/// Which waiters a step's waiter joins.
enum Queue {
    Resuming,
    Pausing,
}

/// The agent's run of one session.
#[derive(Debug)]
pub(crate) struct Lifecycle<A, W> {
    phase: Phase<A>,
    resuming: Vec<W>,
    pausing: Vec<W>,
}

impl<A, W> Default for Lifecycle<A, W> {
    fn default() -> Self {
        Self {
            phase: Phase::Down,
            resuming: Vec::new(),
            pausing: Vec::new(),
        }
    }
}

impl<A, W> Lifecycle<A, W> {
    /// The running agent.
    pub fn agent(&self) -> Option<&A> {
        match &self.phase {
            Phase::Up(agent) => Some(agent),
            _ => None,
        }
    }

    /// The agent is starting.
    pub fn is_booting(&self) -> bool {
        matches!(self.phase, Phase::Booting)
    }

    /// Booting or up: the sandbox holds a live run and token.
    pub fn runs(&self) -> bool {
        matches!(self.phase, Phase::Booting | Phase::Up(_))
    }

    /// Nothing runs, nothing is on its way, and nobody waits.
    pub fn is_settled(&self) -> bool {
        matches!(self.phase, Phase::Down) && self.resuming.is_empty() && self.pausing.is_empty()
    }

    /// Resumes the session (or starts it), asked by `waiter` or implied by a connection or a
    /// prompt (`None`, which never fails for want of a resumable status). `claim` takes the
    /// organisation's place for the run, just before a boot. A waiter hears of a refusal
    /// through [`Effect::Fail`]; an implied resume returns it.
    pub fn resume(
        &mut self,
        status: SessionStatus,
        waiter: Option<W>,
        claim: impl FnOnce() -> Result<(), GatewayError>,
    ) -> Result<Vec<Effect<A, W>>, GatewayError> {
        let step = self.resume_step(status, waiter.is_some(), claim);
        self.settle(step, waiter, Queue::Resuming)
    }

    fn resume_step(
        &mut self,
        status: SessionStatus,
        asked: bool,
        claim: impl FnOnce() -> Result<(), GatewayError>,
    ) -> Result<Step<A, W>, GatewayError> {
        match &mut self.phase {
            Phase::Up(_) => Ok(Step::Now),
            Phase::Booting => Ok(Step::Wait(Vec::new())),
            // A lost agent's sandbox stops first; a pausing session cannot resume yet.
            Phase::Stopping { resume, .. } if status != SessionStatus::Pausing => {
                *resume = true;
                Ok(Step::Wait(Vec::new()))
            }
            Phase::Stopping { .. } if asked => Err(cannot_resume(status)),
            Phase::Ending if asked => Err(GatewayError::Conflict(
                "the session is being deleted".into(),
            )),
            Phase::Stopping { .. } | Phase::Ending => Ok(Step::Now),
            Phase::Down => {
                let next = match status {
                    SessionStatus::Pending => SessionStatus::Starting,
                    SessionStatus::Paused | SessionStatus::Failed => SessionStatus::Resuming,
                    _ if asked => return Err(cannot_resume(status)),
                    _ => return Ok(Step::Now),
                };
                claim()?;
                self.phase = Phase::Booting;
                Ok(Step::Wait(vec![
                    Effect::Status(next, "requested".into()),
                    Effect::Boot,
                ]))
            }
        }
    }

    /// Answers the waiter now, queues it behind the step's effects, or tells it the step was
    /// refused.
    fn settle(
        &mut self,
        step: Result<Step<A, W>, GatewayError>,
        waiter: Option<W>,
        queue: Queue,
    ) -> Result<Vec<Effect<A, W>>, GatewayError> {
        match (step, waiter) {
            (Ok(Step::Now), waiter) => Ok(waiter
                .map(|w| Effect::Answer(vec![w]))
                .into_iter()
                .collect()),
            (Ok(Step::Wait(effects)), waiter) => {
                match queue {
                    Queue::Resuming => self.resuming.extend(waiter),
                    Queue::Pausing => self.pausing.extend(waiter),
                }
                Ok(effects)
            }
            (Err(error), Some(waiter)) => Ok(vec![Effect::Fail(vec![waiter], error)]),
            (Err(error), None) => Err(error),
        }
    }

    /// The sandbox started and the agent attached.
    pub fn booted(&mut self, agent: A) -> Vec<Effect<A, W>> {
        if !self.is_booting() {
            // Deleted while it booted: the agent is let go.
            return Vec::new();
        }
        self.phase = Phase::Up(agent);
        vec![
            Effect::Status(SessionStatus::Running, "agent_ready".into()),
            Effect::Answer(take(&mut self.resuming)),
        ]
    }

    /// The sandbox or the agent failed to start.
    pub fn boot_failed(&mut self, error: &GatewayError) -> Vec<Effect<A, W>> {
        if !self.is_booting() {
            return Vec::new();
        }
        self.phase = Phase::Down;
        vec![
            Effect::Release,
            Effect::Status(SessionStatus::Failed, "start_failed".into()),
            Effect::Fail(
                take(&mut self.resuming),
                GatewayError::Unavailable(error.to_string()),
            ),
        ]
    }

    /// Pauses a running session, asked by `waiter` or for being idle (`None`); a paused or
    /// pausing session answers when paused. As with [`Lifecycle::resume`], a waiter hears of a
    /// refusal through [`Effect::Fail`].
    pub fn pause(
        &mut self,
        status: SessionStatus,
        reason: &str,
        waiter: Option<W>,
    ) -> Result<Vec<Effect<A, W>>, GatewayError> {
        let step = self.pause_step(status, reason);
        self.settle(step, waiter, Queue::Pausing)
    }

    fn pause_step(
        &mut self,
        status: SessionStatus,
        reason: &str,
    ) -> Result<Step<A, W>, GatewayError> {
        match status {
            SessionStatus::Paused => return Ok(Step::Now),
            SessionStatus::Pausing => return Ok(Step::Wait(Vec::new())),
            _ => check_transition(status, SessionStatus::Pausing)?,
        }
        let phase = Phase::Stopping {
            reason: reason.to_owned(),
            resume: false,
        };
        let agent = match std::mem::replace(&mut self.phase, phase) {
            Phase::Up(agent) => Some(agent),
            _ => None,
        };
        Ok(Step::Wait(vec![
            Effect::EndTurn(agent),
            Effect::Status(SessionStatus::Pausing, reason.to_owned()),
            Effect::Release,
            Effect::Stop,
        ]))
    }

    /// The agent stopped on its own, or its update stream ended.
    pub fn lost(&mut self, status: SessionStatus) -> Vec<Effect<A, W>> {
        if !matches!(self.phase, Phase::Up(_)) {
            return Vec::new();
        }
        self.phase = Phase::Stopping {
            reason: "agent_exited".into(),
            resume: false,
        };
        let mut effects = vec![Effect::Release, Effect::EndTurn(None), Effect::Stop];
        if status == SessionStatus::Running {
            effects.push(Effect::Status(SessionStatus::Failed, "agent_exited".into()));
        }
        effects
    }

    /// The sandbox stopped (`Ok`) or failed to.
    pub fn stopped(
        &mut self,
        status: SessionStatus,
        result: Result<(), GatewayError>,
    ) -> Vec<Effect<A, W>> {
        let Phase::Stopping { reason, resume } = std::mem::replace(&mut self.phase, Phase::Down)
        else {
            return Vec::new();
        };
        if status != SessionStatus::Pausing {
            return if resume {
                vec![Effect::Resume]
            } else {
                Vec::new()
            };
        }
        let waiters = take(&mut self.pausing);
        match result {
            Ok(()) => vec![
                Effect::Status(SessionStatus::Paused, reason),
                Effect::Answer(waiters),
            ],
            Err(error) => vec![
                Effect::Status(SessionStatus::Failed, "pause_failed".into()),
                Effect::Fail(waiters, error),
            ],
        }
    }

    /// Deletes the session: whoever waits is told, and nothing starts again.
    pub fn delete(&mut self) -> Vec<Effect<A, W>> {
        let mut effects = self.end(GatewayError::NotFound("the session was deleted".into()));
        effects.push(Effect::Delete);
        effects
    }

    /// The gateway stops serving the session: whoever waits is told, and nothing starts again.
    pub fn shut_down(&mut self) -> Vec<Effect<A, W>> {
        self.end(GatewayError::Unavailable(
            "the gateway is shutting down".into(),
        ))
    }

    fn end(&mut self, error: GatewayError) -> Vec<Effect<A, W>> {
        self.phase = Phase::Ending;
        let mut waiting = take(&mut self.resuming);
        waiting.append(&mut self.pausing);
        vec![Effect::Release, Effect::Fail(waiting, error)]
    }
}

/// Why a session in `status` cannot resume now.
fn cannot_resume(status: SessionStatus) -> GatewayError {
    match check_transition(status, SessionStatus::Resuming) {
        Err(forbidden) => forbidden.into(),
        Ok(()) => GatewayError::Conflict("the session cannot resume now".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::v1::ErrorCode;
    use SessionStatus::*;

    type Run = Lifecycle<&'static str, u32>;

    fn free() -> Result<(), GatewayError> {
        Ok(())
    }

    /// The effects as they read, errors by their code.
    fn shown(effects: Vec<Effect<&'static str, u32>>) -> String {
        let shown = (effects.into_iter()).map(|effect| match effect {
            Effect::Fail(waiters, error) => format!("Fail({waiters:?}, {:?})", error.code()),
            effect => format!("{effect:?}"),
        });
        shown.collect::<Vec<_>>().join(", ")
    }

    fn refused(result: Result<Vec<Effect<&'static str, u32>>, GatewayError>) -> Option<ErrorCode> {
        result.err().map(|error| error.code())
    }

    #[test]
    fn a_resume_boots_once_and_everyone_who_asked_meanwhile_hears_when_it_runs() {
        let mut run = Run::default();
        let effects = run.resume(Paused, Some(1), free).unwrap();
        assert_eq!(shown(effects), r#"Status(Resuming, "requested"), Boot"#);
        assert_eq!(shown(run.resume(Resuming, Some(2), free).unwrap()), "");
        assert_eq!(shown(run.resume(Resuming, None, free).unwrap()), "");
        assert_eq!(
            shown(run.booted("agent")),
            r#"Status(Running, "agent_ready"), Answer([1, 2])"#
        );
        assert_eq!(run.agent(), Some(&"agent"));
        assert_eq!(
            shown(run.resume(Running, Some(3), free).unwrap()),
            "Answer([3])"
        );
    }

    #[test]
    fn a_session_without_room_does_not_boot_and_a_failed_boot_releases_its_place() {
        let mut run = Run::default();
        let full = || Err(GatewayError::LimitExceeded("full".into()));
        assert_eq!(
            refused(run.resume(Pending, None, full)),
            Some(ErrorCode::LimitExceeded)
        );
        assert_eq!(
            shown(run.resume(Pending, Some(1), full).unwrap()),
            "Fail([1], LimitExceeded)"
        );
        assert!(run.is_settled());
        run.resume(Pending, Some(1), free).unwrap();
        let effects = run.boot_failed(&GatewayError::Unavailable("no sandbox".into()));
        assert_eq!(
            shown(effects),
            r#"Release, Status(Failed, "start_failed"), Fail([1], Unavailable)"#
        );
        assert!(run.is_settled());
    }

    #[test]
    fn only_a_resumable_session_resumes_when_asked_and_an_implied_resume_never_fails() {
        let mut run = Run::default();
        assert_eq!(
            shown(run.resume(Stopped, Some(1), free).unwrap()),
            "Fail([1], Conflict)"
        );
        assert_eq!(shown(run.resume(Stopped, None, free).unwrap()), "");
        assert!(run.is_settled());
    }

    #[test]
    fn a_pause_ends_the_turn_releases_the_run_and_answers_once_stopped() {
        let mut run = Run::default();
        run.resume(Pending, None, free).unwrap();
        run.booted("agent");
        assert_eq!(
            shown(run.pause(Running, "requested", Some(1)).unwrap()),
            r#"EndTurn(Some("agent")), Status(Pausing, "requested"), Release, Stop"#
        );
        assert!(!run.runs());
        assert_eq!(shown(run.pause(Pausing, "requested", Some(2)).unwrap()), "");
        assert_eq!(
            shown(run.resume(Pausing, Some(3), free).unwrap()),
            "Fail([3], Conflict)"
        );
        assert_eq!(
            shown(run.stopped(Pausing, Ok(()))),
            r#"Status(Paused, "requested"), Answer([1, 2])"#
        );
        assert_eq!(
            shown(run.pause(Paused, "requested", Some(4)).unwrap()),
            "Answer([4])"
        );
        assert!(run.is_settled());
    }

    #[test]
    fn a_pause_that_fails_leaves_the_session_failed_and_tells_the_waiters() {
        let mut run = Run::default();
        run.resume(Pending, None, free).unwrap();
        run.booted("agent");
        run.pause(Running, "idle", Some(1)).unwrap();
        let effects = run.stopped(Pausing, Err(GatewayError::Unavailable("stuck".into())));
        assert_eq!(
            shown(effects),
            r#"Status(Failed, "pause_failed"), Fail([1], Unavailable)"#
        );
        assert_eq!(
            refused(run.pause(Stopped, "idle", None)),
            Some(ErrorCode::Conflict)
        );
    }

    #[test]
    fn a_resume_asked_while_a_lost_agent_stops_boots_once_the_sandbox_stopped() {
        let mut run = Run::default();
        run.resume(Pending, None, free).unwrap();
        run.booted("agent");
        assert_eq!(
            shown(run.lost(Running)),
            r#"Release, EndTurn(None), Stop, Status(Failed, "agent_exited")"#
        );
        assert!(!run.runs());
        assert_eq!(shown(run.resume(Failed, Some(1), free).unwrap()), "");
        assert_eq!(shown(run.stopped(Failed, Ok(()))), "Resume");
        assert_eq!(
            shown(run.resume(Failed, None, free).unwrap()),
            r#"Status(Resuming, "requested"), Boot"#
        );
        assert_eq!(
            shown(run.booted("again")),
            r#"Status(Running, "agent_ready"), Answer([1])"#
        );
    }

    #[test]
    fn a_deleted_session_tells_its_waiters_and_never_boots_again() {
        let mut run = Run::default();
        run.resume(Paused, Some(1), free).unwrap();
        assert_eq!(shown(run.delete()), "Release, Fail([1], NotFound), Delete");
        assert_eq!(shown(run.booted("late")), "");
        assert!(run.agent().is_none());
        assert_eq!(
            shown(run.resume(Paused, Some(2), free).unwrap()),
            "Fail([2], Conflict)"
        );
        assert_eq!(shown(run.resume(Paused, None, free).unwrap()), "");
    }
}
