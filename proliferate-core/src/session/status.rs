//! The session state machine: every status transition is checked here and nowhere else.

use crate::protocol::v1::SessionStatus::{self, *};

/// Whether the lifecycle allows going from `from` to `to`. Staying in a status is not a transition.
pub fn transition_allowed(from: SessionStatus, to: SessionStatus) -> bool {
    matches!(
        (from, to),
        (Pending, Starting | Stopped)
            | (Starting, Running | Failed | Stopped)
            | (Running, Pausing | Failed | Stopped)
            | (Pausing, Paused | Failed | Stopped)
            | (Paused, Resuming | Stopped)
            | (Resuming, Running | Failed | Stopped)
            | (Failed, Resuming | Stopped)
    )
}

/// Whether a session in `status` should have its agent running (or on its way up or down), so a
/// restarted gateway must recover it.
pub fn agent_should_run(status: SessionStatus) -> bool {
    matches!(status, Starting | Running | Resuming | Pausing)
}

/// A transition the lifecycle forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a session cannot go from {} to {}", from.as_str(), to.as_str())]
pub struct ForbiddenTransition {
    /// The current status.
    pub from: SessionStatus,
    /// The requested status.
    pub to: SessionStatus,
}

/// Checks a transition, naming both ends when it is forbidden.
pub fn check_transition(from: SessionStatus, to: SessionStatus) -> Result<(), ForbiddenTransition> {
    if transition_allowed(from, to) {
        Ok(())
    } else {
        Err(ForbiddenTransition { from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [SessionStatus; 8] = [
        Pending, Starting, Running, Pausing, Paused, Resuming, Stopped, Failed,
    ];

    #[test]
    fn stopped_is_final_and_no_status_transitions_to_itself() {
        for status in ALL {
            assert!(!transition_allowed(Stopped, status));
            assert!(!transition_allowed(status, status));
        }
    }

    #[test]
    fn every_live_status_can_stop_and_pause_resume_round_trips() {
        for status in ALL.into_iter().filter(|status| *status != Stopped) {
            assert!(transition_allowed(status, Stopped), "{status:?}");
        }
        for (from, to) in [
            (Running, Pausing),
            (Pausing, Paused),
            (Paused, Resuming),
            (Resuming, Running),
        ] {
            assert!(check_transition(from, to).is_ok());
        }
        let error = check_transition(Paused, Running).unwrap_err();
        assert_eq!(
            error.to_string(),
            "a session cannot go from paused to running"
        );
    }

    #[test]
    fn the_table_in_the_protocol_doc_matches() {
        let doc = include_str!("../../../docs/protocol.md");
        for from in ALL {
            let row = doc
                .lines()
                .find(|line| line.starts_with(&format!("| `{}` |", from.as_str())))
                .unwrap_or_else(|| panic!("no lifecycle row for {from:?}"));
            for to in ALL {
                let listed = row
                    .split('|')
                    .nth(2)
                    .unwrap()
                    .contains(&format!("`{}`", to.as_str()));
                assert_eq!(listed, transition_allowed(from, to), "{from:?} -> {to:?}");
            }
        }
    }
}
