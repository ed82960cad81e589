//! The prompt queue and the running turn, as a plain type: prompts wait in order, one turn runs
//! at a time, a cancelled turn ends once, and its late output is told apart from the next
//! turn's. It does no I/O; the hub stores, logs and calls the agent on what it returns.

use std::collections::{HashSet, VecDeque};

use tokio::time::Instant;

use crate::GatewayError;
use crate::protocol::v1::Sender;
use crate::store::PromptRecord;

struct Turn {
    prompt_id: String,
    /// When a cancel was asked: the time by which the turn is reported cancelled, and by whom.
    cancel: Option<(Instant, Option<Sender>)>,
    /// The assistant messages the agent started in this turn.
    messages: HashSet<String>,
}

/// How a turn ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TurnEnd {
    /// The prompt whose turn it was.
    pub prompt_id: String,
    /// Cancelled rather than completed.
    pub cancelled: bool,
    /// Who cancelled it, if someone did.
    pub cancelled_by: Option<Sender>,
}

/// A session's waiting prompts and its running turn.
pub(crate) struct TurnQueue {
    waiting: VecDeque<PromptRecord>,
    running: Option<Turn>,
    /// The messages of the last cancelled turn: their late output is not the next turn's.
    cancelled_messages: HashSet<String>,
    limit: usize,
}

impl TurnQueue {
    /// A queue holding `waiting` (in order), at most `limit` of them.
    pub fn new(waiting: VecDeque<PromptRecord>, limit: usize) -> Self {
        Self {
            waiting,
            running: None,
            cancelled_messages: HashSet::new(),
            limit,
        }
    }

    /// The queue position `prompt_id` would take, or `limit_exceeded` when the queue is full
    /// (a prompt already waiting keeps its place).
    pub fn place(&self, prompt_id: &str) -> Result<u32, GatewayError> {
        let waiting = self
            .waiting
            .iter()
            .any(|queued| queued.prompt_id == prompt_id);
        if self.waiting.len() >= self.limit && !waiting {
            return Err(GatewayError::LimitExceeded(format!(
                "the session already holds {} queued prompts, its limit; send this one after a turn ends",
                self.limit
            )));
        }
        let position = self.waiting.len() + usize::from(self.running.is_some());
        Ok(u32::try_from(position).unwrap_or(u32::MAX))
    }

    /// Queues an admitted prompt.
    pub fn push(&mut self, prompt: PromptRecord) {
        self.waiting.push_back(prompt);
    }

    /// Withdraws a waiting prompt.
    pub fn withdraw(&mut self, prompt_id: &str) -> Result<PromptRecord, GatewayError> {
        if self.running_prompt() == Some(prompt_id) {
            return Err(GatewayError::Conflict(format!(
                "prompt {prompt_id} is running; cancel the turn instead"
            )));
        }
        let index = (self.waiting.iter()).position(|queued| queued.prompt_id == prompt_id);
        (index.and_then(|index| self.waiting.remove(index)))
            .ok_or_else(|| GatewayError::NotFound(format!("no queued prompt {prompt_id}")))
    }

    /// Asks the running turn to stop, reported cancelled by `deadline` at the latest. `None`
    /// when no turn runs; `Some(true)` the first time, when the agent must be told.
    pub fn cancel(&mut self, by: Option<Sender>, deadline: Instant) -> Option<bool> {
        let turn = self.running.as_mut()?;
        let first = turn.cancel.is_none();
        if first {
            turn.cancel = Some((deadline, by));
        }
        Some(first)
    }

    /// Starts the next waiting prompt's turn, if none runs.
    pub fn start_next(&mut self) -> Option<PromptRecord> {
        if self.running.is_some() {
            return None;
        }
        let prompt = self.waiting.pop_front()?;
        self.running = Some(Turn {
            prompt_id: prompt.prompt_id.clone(),
            cancel: None,
            messages: HashSet::new(),
        });
        Some(prompt)
    }

    /// Ends the running turn: cancelled if `cancelled` or if a cancel was asked, else completed.
    pub fn end(&mut self, cancelled: bool) -> Option<TurnEnd> {
        let turn = self.running.take()?;
        let cancelled = cancelled || turn.cancel.is_some();
        if cancelled {
            self.cancelled_messages = turn.messages;
        }
        Some(TurnEnd {
            prompt_id: turn.prompt_id,
            cancelled,
            cancelled_by: turn.cancel.and_then(|(_, by)| by),
        })
    }

    /// Whether output of `message_id` belongs in the log: not if it is a cancelled turn's (no
    /// output follows `turn_cancelled`). A message the running turn starts becomes its own.
    pub fn claim_output(&mut self, message_id: &str) -> bool {
        if self.cancelled_messages.contains(message_id) {
            return false;
        }
        if let Some(turn) = self.running.as_mut() {
            turn.messages.insert(message_id.to_owned());
        }
        true
    }

    /// When a cancelled turn is reported cancelled whatever the agent does.
    pub fn cancel_deadline(&self) -> Option<Instant> {
        (self.running.as_ref()?.cancel.as_ref()).map(|(deadline, _)| *deadline)
    }

    /// The prompt whose turn runs.
    pub fn running_prompt(&self) -> Option<&str> {
        self.running.as_ref().map(|turn| turn.prompt_id.as_str())
    }

    /// The first waiting prompt.
    pub fn next_waiting(&self) -> Option<&PromptRecord> {
        self.waiting.front()
    }

    /// How many prompts wait.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Nothing runs and nothing waits.
    pub fn is_idle(&self) -> bool {
        self.running.is_none() && self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::protocol::v1::ErrorCode;

    fn prompt(id: &str) -> PromptRecord {
        PromptRecord {
            session_id: "ses".into(),
            prompt_id: id.into(),
            admission: Default::default(),
            state: crate::store::PromptState::Queued,
            content: String::new(),
            images: Vec::new(),
            sender: Sender::default(),
        }
    }

    fn ada() -> Option<Sender> {
        Some(Sender {
            subject: "ada".into(),
            source: "test".into(),
        })
    }

    #[test]
    fn prompts_run_one_at_a_time_in_order_within_the_limit() {
        let mut turns = TurnQueue::new(VecDeque::new(), 2);
        assert_eq!(turns.place("a").unwrap(), 0);
        turns.push(prompt("a"));
        assert_eq!(turns.start_next().unwrap().prompt_id, "a");
        assert_eq!(turns.place("b").unwrap(), 1, "behind the running turn");
        turns.push(prompt("b"));
        turns.push(prompt("c"));
        assert_eq!(
            turns.place("d").unwrap_err().code(),
            ErrorCode::LimitExceeded
        );
        assert_eq!(
            turns.place("c").unwrap(),
            3,
            "a waiting prompt keeps its place"
        );
        assert!(turns.start_next().is_none(), "one turn at a time");
        let ended = turns.end(false).unwrap();
        assert_eq!((ended.prompt_id.as_str(), ended.cancelled), ("a", false));
        assert_eq!(turns.start_next().unwrap().prompt_id, "b");
        assert_eq!(turns.end(false).unwrap().prompt_id, "b");
        assert!(turns.end(false).is_none(), "a turn ends once");
    }

    #[test]
    fn a_running_prompt_cannot_be_withdrawn_and_a_waiting_one_can() {
        let mut turns = TurnQueue::new(VecDeque::from([prompt("a"), prompt("b")]), 10);
        turns.start_next();
        assert_eq!(turns.withdraw("a").unwrap_err().code(), ErrorCode::Conflict);
        assert_eq!(turns.withdraw("z").unwrap_err().code(), ErrorCode::NotFound);
        assert_eq!(turns.withdraw("b").unwrap().prompt_id, "b");
        turns.end(false);
        assert!(turns.is_idle());
    }

    #[test]
    fn a_cancel_is_asked_once_and_the_cancelled_turns_late_output_is_dropped() {
        let mut turns = TurnQueue::new(VecDeque::from([prompt("a"), prompt("b")]), 10);
        let deadline = Instant::now() + Duration::from_secs(10);
        assert_eq!(turns.cancel(ada(), deadline), None, "nothing runs");
        turns.start_next();
        assert!(turns.claim_output("msg_a"));
        assert_eq!(turns.cancel(ada(), deadline), Some(true));
        assert_eq!(
            turns.cancel(None, deadline + Duration::from_secs(5)),
            Some(false)
        );
        assert_eq!(
            turns.cancel_deadline(),
            Some(deadline),
            "the first cancel's deadline"
        );
        let ended = turns.end(false).unwrap();
        assert!(
            ended.cancelled,
            "an agent that goes idle after a cancel was cancelled"
        );
        assert_eq!(ended.cancelled_by, ada());
        turns.start_next();
        assert!(
            !turns.claim_output("msg_a"),
            "late output of the cancelled turn"
        );
        assert!(turns.claim_output("msg_b"));
        assert_eq!(turns.cancel_deadline(), None);
    }
}
