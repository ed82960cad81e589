//! A provider that runs nothing: sandboxes are entries in a table, for engine tests that need
//! the provider's answers (and its delays and failures) under their control, on paused time.
//!
//! Each operation can be held (it waits until released, as a slow snapshot of a large
//! workspace would) or made to fail, and every call is counted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::watch;

use super::*;
use crate::clock::now_millis;

/// An operation of the provider, to hold, fail or count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// [`SandboxProvider::start`].
    Start,
    /// [`SandboxProvider::pause`].
    Pause,
    /// [`SandboxProvider::snapshot`].
    Snapshot,
    /// [`SandboxProvider::terminate`].
    Terminate,
}

/// Where a fake sandbox is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeSandboxState {
    /// Its agent runs.
    Running,
    /// Paused, with its workspace kept.
    Paused,
}

#[derive(Default)]
struct State {
    sandboxes: HashMap<String, FakeSandboxState>,
    calls: HashMap<Operation, usize>,
    failures: HashMap<Operation, String>,
    over_limit: HashMap<String, String>,
    snapshots: usize,
}

/// A sandbox provider whose sandboxes are table entries.
pub struct FakeProvider {
    state: Mutex<State>,
    /// Per operation, true while it is held.
    held: HashMap<Operation, watch::Sender<bool>>,
}

impl Default for FakeProvider {
    fn default() -> Self {
        let operations = [
            Operation::Start,
            Operation::Pause,
            Operation::Snapshot,
            Operation::Terminate,
        ];
        Self {
            state: Mutex::default(),
            held: operations
                .into_iter()
                .map(|operation| (operation, watch::channel(false).0))
                .collect(),
        }
    }
}

impl FakeProvider {
    /// A provider with no sandboxes.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Makes `operation` wait until [`FakeProvider::release`].
    pub fn hold(&self, operation: Operation) {
        self.held[&operation].send_replace(true);
    }

    /// Lets held calls of `operation`, and later ones, through.
    pub fn release(&self, operation: Operation) {
        self.held[&operation].send_replace(false);
    }

    /// Makes `operation` fail with `reason` until [`FakeProvider::heal`].
    pub fn fail(&self, operation: Operation, reason: &str) {
        self.state().failures.insert(operation, reason.to_owned());
    }

    /// Makes `operation` succeed again.
    pub fn heal(&self, operation: Operation) {
        self.state().failures.remove(&operation);
    }

    /// Makes the session's sandbox report that it ran out of `resource`.
    pub fn exhaust(&self, session_id: &str, resource: &str) {
        let over_limit = &mut self.state().over_limit;
        over_limit.insert(session_id.to_owned(), resource.to_owned());
    }

    /// How many times `operation` was called (held calls included).
    pub fn calls(&self, operation: Operation) -> usize {
        self.state().calls.get(&operation).copied().unwrap_or(0)
    }

    /// Where the session's sandbox is, if it has one.
    pub fn sandbox(&self, session_id: &str) -> Option<FakeSandboxState> {
        self.state().sandboxes.get(session_id).copied()
    }

    /// Counts the call, waits while the operation is held, then fails if told to.
    async fn enter(&self, operation: Operation, session_id: &str) -> Result<(), SandboxError> {
        validate_session_id(session_id)?;
        *self.state().calls.entry(operation).or_default() += 1;
        let mut held = self.held[&operation].subscribe();
        let _ = held.wait_for(|held| !held).await;
        match self.state().failures.get(&operation) {
            Some(reason) => Err(SandboxError::Io {
                context: format!("fake {operation:?} of {session_id}"),
                source: std::io::Error::other(reason.clone()),
            }),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl SandboxProvider for FakeProvider {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            pause: true,
            snapshot: true,
            ..Default::default()
        }
    }

    async fn start(&self, spec: &SandboxSpec) -> Result<Sandbox, SandboxError> {
        self.enter(Operation::Start, &spec.session_id).await?;
        let mut state = self.state();
        (state.sandboxes).insert(spec.session_id.clone(), FakeSandboxState::Running);
        state.over_limit.remove(&spec.session_id);
        Ok(Sandbox {
            session_id: spec.session_id.clone(),
            agent: AgentEndpoint::new(
                format!("http://fake-agent.invalid/{}", spec.session_id),
                reqwest::Client::new(),
                "/workspace",
            ),
            isolation: "none".into(),
            limits: spec.limits.clone(),
        })
    }

    async fn over_limit(&self, session_id: &str) -> Option<String> {
        self.state().over_limit.get(session_id).cloned()
    }

    async fn is_running(&self, session_id: &str) -> bool {
        self.sandbox(session_id) == Some(FakeSandboxState::Running)
    }

    async fn pause(&self, session_id: &str) -> Result<(), SandboxError> {
        self.enter(Operation::Pause, session_id).await?;
        if let Some(sandbox) = self.state().sandboxes.get_mut(session_id) {
            *sandbox = FakeSandboxState::Paused;
        }
        Ok(())
    }

    async fn snapshot(&self, session_id: &str) -> Result<SnapshotInfo, SandboxError> {
        self.enter(Operation::Snapshot, session_id).await?;
        let mut state = self.state();
        if !state.sandboxes.contains_key(session_id) {
            return Err(SandboxError::NotFound(session_id.to_owned()));
        }
        state.snapshots += 1;
        Ok(SnapshotInfo {
            snapshot_id: format!("snap_fake_{}", state.snapshots),
            session_id: session_id.to_owned(),
            created_at: now_millis(),
            size_bytes: 0,
        })
    }

    async fn terminate(&self, session_id: &str) -> Result<(), SandboxError> {
        self.enter(Operation::Terminate, session_id).await?;
        self.state().sandboxes.remove(session_id);
        Ok(())
    }

    async fn cleanup_orphans(&self) -> Result<usize, SandboxError> {
        let mut state = self.state();
        let running = state.sandboxes.values_mut();
        let orphans = running.filter(|sandbox| **sandbox == FakeSandboxState::Running);
        Ok(orphans
            .map(|sandbox| *sandbox = FakeSandboxState::Paused)
            .count())
    }
}
