//! The agent's permission requests, as a plain type: which wait for an answer and until when,
//! which have an answer on its way to the agent, and which were settled. It does no I/O; the hub
//! acts on what it returns.

use std::collections::{HashMap, HashSet};

use tokio::time::Instant;

use crate::GatewayError;

/// A session's permission requests.
#[derive(Debug, Default)]
pub(crate) struct Permissions {
    /// Requests waiting for an answer, with when the default applies.
    pending: HashMap<String, Instant>,
    /// Pending requests whose answer is on its way to the agent (their timers are stopped).
    answering: HashSet<String>,
    /// Requests settled once; a later answer is a conflict, not an unknown id.
    settled: HashSet<String>,
}

impl Permissions {
    /// The agent asked; the default applies at `deadline` unless someone answers first.
    pub fn ask(&mut self, permission_id: String, deadline: Instant) {
        self.pending.insert(permission_id, deadline);
    }

    /// A person answers: allowed only for a pending request no answer is on its way to. On
    /// success the request's timer stops until [`Permissions::delivered`].
    pub fn answer(&mut self, permission_id: &str) -> Result<(), GatewayError> {
        if self.answering.contains(permission_id) || self.settled.contains(permission_id) {
            return Err(GatewayError::Conflict(format!(
                "permission {permission_id} was already answered"
            )));
        }
        if !self.pending.contains_key(permission_id) {
            return Err(GatewayError::NotFound(format!(
                "no pending permission {permission_id}"
            )));
        }
        self.answering.insert(permission_id.to_owned());
        Ok(())
    }

    /// The agent took the answer (`taken`), or refused it, and the request waits again.
    /// Returns whether the request is now settled.
    pub fn delivered(&mut self, permission_id: &str, taken: bool) -> bool {
        self.answering.remove(permission_id);
        taken && self.settle(permission_id)
    }

    /// Settles a pending request (answered, or its default applied); false if it was not
    /// pending, so it is reported settled once, or if a person's answer to it is on its way: the
    /// agent may report that answer taken before the hub hears so, and it is settled, with its
    /// answerer, by [`Permissions::delivered`].
    pub fn settle(&mut self, permission_id: &str) -> bool {
        if self.answering.contains(permission_id) || !self.pending.contains_key(permission_id) {
            return false;
        }
        self.pending.remove(permission_id);
        self.settled.insert(permission_id.to_owned());
        true
    }

    /// Requests whose default applies at `now`: their deadline passed and no answer is on its
    /// way.
    pub fn expired(&self, now: Instant) -> Vec<String> {
        let mut expired: Vec<String> = (self.pending.iter())
            .filter(|(id, deadline)| **deadline <= now && !self.answering.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        expired.sort();
        expired
    }

    /// When the next default applies.
    pub fn next_deadline(&self) -> Option<Instant> {
        (self.pending.iter())
            .filter(|(id, _)| !self.answering.contains(*id))
            .map(|(_, deadline)| *deadline)
            .min()
    }

    /// The turn ended: what it asked needs no answer any more.
    pub fn end_turn(&mut self) {
        self.answering.clear();
        self.settled.extend(self.pending.drain().map(|(id, _)| id));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::protocol::v1::ErrorCode;

    /// `seconds` after a fixed start.
    fn at(start: Instant, seconds: u64) -> Instant {
        start + Duration::from_secs(seconds)
    }

    fn code(result: Result<(), GatewayError>) -> ErrorCode {
        result.unwrap_err().code()
    }

    #[test]
    fn the_first_answer_wins_and_a_second_is_a_conflict() {
        let (start, mut permissions) = (Instant::now(), Permissions::default());
        permissions.ask("a".into(), at(start, 60));
        assert_eq!(code(permissions.answer("b")), ErrorCode::NotFound);
        permissions.answer("a").unwrap();
        assert_eq!(code(permissions.answer("a")), ErrorCode::Conflict);
        assert!(permissions.delivered("a", true));
        assert_eq!(code(permissions.answer("a")), ErrorCode::Conflict);
        assert!(!permissions.settle("a"), "settled once");
    }

    #[test]
    fn the_agent_reporting_an_answer_on_its_way_leaves_it_to_the_answer() {
        let (start, mut permissions) = (Instant::now(), Permissions::default());
        permissions.ask("a".into(), at(start, 60));
        permissions.answer("a").unwrap();
        assert!(!permissions.settle("a"), "the agent's report of the answer");
        assert!(
            permissions.delivered("a", true),
            "settled by the answer, once"
        );
        assert!(!permissions.settle("a"));
    }

    #[test]
    fn an_answer_on_its_way_stops_the_timer_and_a_refused_one_starts_it_again() {
        let (start, mut permissions) = (Instant::now(), Permissions::default());
        permissions.ask("a".into(), at(start, 60));
        permissions.ask("b".into(), at(start, 90));
        permissions.answer("a").unwrap();
        assert_eq!(permissions.next_deadline(), Some(at(start, 90)));
        assert!(permissions.expired(at(start, 60)).is_empty());
        assert!(!permissions.delivered("a", false), "refused: still pending");
        assert_eq!(permissions.expired(at(start, 60)), ["a"]);
        assert_eq!(permissions.next_deadline(), Some(at(start, 60)));
    }

    #[test]
    fn defaults_apply_in_order_and_a_turn_end_settles_the_rest() {
        let (start, mut permissions) = (Instant::now(), Permissions::default());
        permissions.ask("late".into(), at(start, 90));
        permissions.ask("early".into(), at(start, 30));
        assert!(permissions.expired(at(start, 10)).is_empty());
        assert_eq!(permissions.expired(at(start, 90)), ["early", "late"]);
        assert!(permissions.settle("early"));
        permissions.end_turn();
        assert_eq!(permissions.next_deadline(), None);
        assert_eq!(code(permissions.answer("late")), ErrorCode::Conflict);
    }
}
