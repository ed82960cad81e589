//! A store that keeps everything in memory: the same contract as SQLite with nothing durable.
//!
//! It serves tests that need a fast, deterministic store (the engine tests run on paused time,
//! which real I/O would defeat) and embedders that want no database at all. Its fault switch
//! makes every call fail as an unreachable database would, to test how callers recover.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;

use super::*;
use crate::session::status::agent_should_run;

#[derive(Default)]
struct Tables {
    sessions: HashMap<String, SessionRecord>,
    /// (organisation, key) → (request digest, session id).
    idempotency_keys: HashMap<(String, String), (String, String)>,
    /// Each session's prompts in admission order.
    prompts: HashMap<String, Vec<PromptRecord>>,
    events: HashMap<String, BTreeMap<u64, Bytes>>,
    compacted: HashMap<String, Transcript>,
    snapshots: HashMap<String, SnapshotRecord>,
    revoked: HashMap<(String, String), i64>,
    usage: Vec<UsageRecord>,
    /// Each session's lease: (gateway, generation, until when), on the runtime's clock so
    /// paused-time tests see leases expire.
    leases: HashMap<String, (String, u64, tokio::time::Instant)>,
    /// While set, every call fails with [`StoreError::Unavailable`] and this reason.
    fault: Option<String>,
}

impl Tables {
    /// Refuses a write under a lease that no longer holds the session's log.
    fn check(&self, lease: &Lease) -> Result<(), StoreError> {
        let current = (self.leases.get(&lease.session_id)).map(|(_, generation, _)| *generation);
        match current == Some(lease.generation) {
            true => Ok(()),
            false => Err(fenced(&lease.session_id, lease.generation, current)),
        }
    }
}

/// Metadata, the event log and the usage ledger, in memory.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
    /// True while event appends wait, as on a slow disk.
    appends_held: tokio::sync::watch::Sender<bool>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every call fail with [`StoreError::Unavailable`] while `reason` is set, as an
    /// unreachable database would; `None` heals it.
    pub fn set_unavailable(&self, reason: Option<&str>) {
        self.lock().fault = reason.map(str::to_owned);
    }

    /// Makes event appends wait until released (`false`), as a slow or locked disk would.
    pub fn hold_appends(&self, held: bool) {
        self.appends_held.send_replace(held);
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The tables, unless the fault switch is on.
    fn tables(&self) -> Result<MutexGuard<'_, Tables>, StoreError> {
        let tables = self.lock();
        match &tables.fault {
            Some(reason) => Err(StoreError::Unavailable(reason.clone())),
            None => Ok(tables),
        }
    }
}

impl Tables {
    fn with_head(&self, record: &SessionRecord) -> SessionRecord {
        let mut record = record.clone();
        record.info.head_seq = self
            .events
            .get(&record.info.id)
            .and_then(|log| log.keys().next_back().copied())
            .unwrap_or(0);
        record
    }
}

#[async_trait]
impl MetadataStore for MemoryStore {
    async fn create_session(
        &self,
        record: &SessionRecord,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<(SessionRecord, bool), StoreError> {
        let mut tables = self.tables()?;
        if let Some(key) = idempotency {
            let index = (record.info.organization_id.clone(), key.key.clone());
            if let Some((digest, session_id)) = tables.idempotency_keys.get(&index) {
                if *digest != key.request_digest {
                    return Err(StoreError::IdempotencyConflict);
                }
                let existing = tables.sessions.get(session_id);
                return existing
                    .map(|session| (tables.with_head(session), false))
                    .ok_or_else(|| StoreError::NotFound(session_id.clone()));
            }
            let entry = (key.request_digest.clone(), record.info.id.clone());
            tables.idempotency_keys.insert(index, entry);
        }
        if tables.sessions.contains_key(&record.info.id) {
            return Err(StoreError::Conflict(format!(
                "session {} already exists",
                record.info.id
            )));
        }
        tables
            .sessions
            .insert(record.info.id.clone(), record.clone());
        Ok((record.clone(), true))
    }

    async fn session(&self, session_id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let tables = self.tables()?;
        Ok(tables
            .sessions
            .get(session_id)
            .map(|record| tables.with_head(record)))
    }

    async fn list_sessions(
        &self,
        organization_id: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<SessionRecord>, Option<String>), StoreError> {
        let tables = self.tables()?;
        let after = cursor
            .and_then(|cursor| cursor.split_once(':'))
            .and_then(|(time, id)| Some((time.parse::<i64>().ok()?, id.to_owned())));
        let mut sessions: Vec<&SessionRecord> = tables
            .sessions
            .values()
            .filter(|record| record.info.organization_id == organization_id)
            .filter(|record| {
                after.as_ref().is_none_or(|(time, id)| {
                    (record.info.created_at, &record.info.id) < (*time, id)
                })
            })
            .collect();
        sessions
            .sort_by(|a, b| (b.info.created_at, &b.info.id).cmp(&(a.info.created_at, &a.info.id)));
        let more = sessions.len() > limit as usize;
        sessions.truncate(limit as usize);
        let next_cursor = more
            .then(|| sessions.last())
            .flatten()
            .map(|last| format!("{}:{}", last.info.created_at, last.info.id));
        let sessions = sessions
            .into_iter()
            .map(|record| tables.with_head(record))
            .collect();
        Ok((sessions, next_cursor))
    }

    async fn live_sessions(&self) -> Result<Vec<SessionRecord>, StoreError> {
        let tables = self.tables()?;
        Ok(tables
            .sessions
            .values()
            .filter(|record| agent_should_run(record.info.status))
            .map(|record| tables.with_head(record))
            .collect())
    }

    async fn update_session(
        &self,
        lease: &Lease,
        record: &SessionRecord,
    ) -> Result<(), StoreError> {
        let mut tables = self.tables()?;
        tables.check(lease)?;
        let stored = (tables.sessions.get_mut(&record.info.id))
            .ok_or_else(|| StoreError::NotFound(record.info.id.clone()))?;
        *stored = record.clone();
        Ok(())
    }

    async fn delete_session(&self, session_id: &str) -> Result<(), StoreError> {
        let mut tables = self.tables()?;
        tables.sessions.remove(session_id);
        tables.prompts.remove(session_id);
        tables.events.remove(session_id);
        tables.compacted.remove(session_id);
        // The lease stays, a generation on, so no earlier holder writes to a deleted session.
        if let Some((_, generation, until)) = tables.leases.get_mut(session_id) {
            *generation += 1;
            *until = tokio::time::Instant::now();
        }
        tables
            .idempotency_keys
            .retain(|_, (_, owner)| owner != session_id);
        Ok(())
    }

    async fn admit_prompt(
        &self,
        prompt: &PromptRecord,
    ) -> Result<(PromptRecord, bool), StoreError> {
        let mut tables = self.tables()?;
        let prompts = tables.prompts.entry(prompt.session_id.clone()).or_default();
        if let Some(existing) = prompts.iter().find(|p| p.prompt_id == prompt.prompt_id) {
            let mut existing = existing.clone();
            existing.admission.duplicate = true;
            return Ok((existing, false));
        }
        prompts.push(prompt.clone());
        Ok((prompt.clone(), true))
    }

    async fn set_prompt_state(
        &self,
        lease: &Lease,
        prompt_id: &str,
        state: PromptState,
    ) -> Result<(), StoreError> {
        let mut tables = self.tables()?;
        tables.check(lease)?;
        let prompts = (tables.prompts.get_mut(&lease.session_id))
            .into_iter()
            .flatten();
        for prompt in prompts.filter(|prompt| prompt.prompt_id == prompt_id) {
            prompt.state = state;
        }
        Ok(())
    }

    async fn pending_prompts(&self, session_id: &str) -> Result<Vec<PromptRecord>, StoreError> {
        let tables = self.tables()?;
        let prompts = tables.prompts.get(session_id).into_iter().flatten();
        Ok(prompts
            .filter(|prompt| matches!(prompt.state, PromptState::Queued | PromptState::Running))
            .cloned()
            .collect())
    }

    async fn insert_snapshot(&self, snapshot: &SnapshotRecord) -> Result<(), StoreError> {
        let mut tables = self.tables()?;
        let id = &snapshot.info.snapshot_id;
        if tables.snapshots.contains_key(id) {
            return Err(StoreError::Conflict(format!(
                "snapshot {id} already exists"
            )));
        }
        tables.snapshots.insert(id.clone(), snapshot.clone());
        Ok(())
    }

    async fn snapshot(&self, snapshot_id: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        Ok(self.tables()?.snapshots.get(snapshot_id).cloned())
    }

    async fn revoke_token(&self, token: &RevokedToken) -> Result<(), StoreError> {
        let key = (token.jti.clone(), token.organization_id.clone());
        self.tables()?.revoked.insert(key, token.expires_at);
        Ok(())
    }

    async fn revoked_tokens(&self, now: i64) -> Result<Vec<RevokedToken>, StoreError> {
        let mut tables = self.tables()?;
        tables.revoked.retain(|_, expires_at| *expires_at > now);
        Ok(tables
            .revoked
            .iter()
            .map(|((jti, organization_id), expires_at)| RevokedToken {
                jti: jti.clone(),
                organization_id: organization_id.clone(),
                expires_at: *expires_at,
            })
            .collect())
    }
}

#[async_trait]
impl EventLog for MemoryStore {
    async fn acquire(
        &self,
        session_id: &str,
        gateway_id: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let mut tables = self.tables()?;
        let now = tokio::time::Instant::now();
        let generation = match tables.leases.get(session_id) {
            Some((holder, _, until)) if holder != gateway_id && *until > now => return Ok(None),
            Some((_, generation, _)) => generation + 1,
            None => 1,
        };
        let lease = (gateway_id.to_owned(), generation, now + ttl);
        tables.leases.insert(session_id.to_owned(), lease);
        Ok(Some(Lease {
            session_id: session_id.to_owned(),
            gateway_id: gateway_id.to_owned(),
            generation,
        }))
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, StoreError> {
        let mut tables = self.tables()?;
        match tables.leases.get_mut(&lease.session_id) {
            Some((holder, generation, until))
                if *holder == lease.gateway_id && *generation == lease.generation =>
            {
                *until = tokio::time::Instant::now() + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        let mut tables = self.tables()?;
        if let Some((_, generation, until)) = tables.leases.get_mut(&lease.session_id)
            && *generation == lease.generation
        {
            *until = tokio::time::Instant::now();
        }
        Ok(())
    }

    async fn holder(&self, session_id: &str) -> Result<Option<String>, StoreError> {
        let now = tokio::time::Instant::now();
        Ok((self.tables()?.leases.get(session_id))
            .filter(|(_, _, until)| *until > now)
            .map(|(holder, _, _)| holder.clone()))
    }

    async fn append(&self, lease: &Lease, events: &[StoredEvent]) -> Result<(), StoreError> {
        let _ = self.appends_held.subscribe().wait_for(|held| !held).await;
        let mut tables = self.tables()?;
        let session_id = &lease.session_id;
        tables.check(lease)?;
        let log = tables.events.entry(session_id.to_owned()).or_default();
        let head = log.keys().next_back().copied().unwrap_or(0);
        // All or nothing, as one transaction.
        if let Some(first) = events.first()
            && first.seq != head + 1
        {
            return Err(not_after_head(session_id, first.seq, head));
        }
        log.extend(events.iter().map(|event| (event.seq, event.frame.clone())));
        Ok(())
    }

    async fn read(
        &self,
        session_id: &str,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let tables = self.tables()?;
        let Some(log) = tables.events.get(session_id) else {
            return Ok(Vec::new());
        };
        Ok(log
            .range(after_seq.saturating_add(1)..)
            .take(limit as usize)
            .map(|(seq, frame)| StoredEvent {
                seq: *seq,
                frame: frame.clone(),
            })
            .collect())
    }

    async fn bounds(&self, session_id: &str) -> Result<Option<(u64, u64)>, StoreError> {
        let tables = self.tables()?;
        let log = tables.events.get(session_id);
        let first = log.and_then(|log| log.keys().next().copied());
        let last = log.and_then(|log| log.keys().next_back().copied());
        Ok(first.zip(last))
    }

    async fn compact(
        &self,
        lease: &Lease,
        through_seq: u64,
        transcript: &Transcript,
    ) -> Result<(), StoreError> {
        let session_id = &lease.session_id;
        let mut tables = self.tables()?;
        tables.check(lease)?;
        (tables.compacted).insert(session_id.to_owned(), transcript.clone());
        if let Some(log) = tables.events.get_mut(session_id) {
            *log = log.split_off(&through_seq.saturating_add(1));
        }
        Ok(())
    }

    async fn compacted(&self, session_id: &str) -> Result<Option<Transcript>, StoreError> {
        Ok(self.tables()?.compacted.get(session_id).cloned())
    }
}

#[async_trait]
impl UsageLedger for MemoryStore {
    async fn record_usage(&self, record: &UsageRecord) -> Result<(), StoreError> {
        self.tables()?.usage.push(record.clone());
        Ok(())
    }

    async fn usage(&self, filter: &UsageFilter) -> Result<UsageReport, StoreError> {
        let tables = self.tables()?;
        let mut by_model: BTreeMap<&str, ModelUsage> = BTreeMap::new();
        let selected = tables.usage.iter().filter(|record| {
            record.organization_id == filter.organization_id
                && (filter.session_id.as_ref()).is_none_or(|id| *id == record.session_id)
                && filter.from.is_none_or(|from| record.at >= from)
                && filter.to.is_none_or(|to| record.at < to)
        });
        for record in selected {
            let model = by_model.entry(&record.model).or_insert_with(|| ModelUsage {
                model: record.model.clone(),
                ..Default::default()
            });
            model.usage.add(&record.usage);
            model.requests += 1;
        }
        let mut models: Vec<ModelUsage> = by_model.into_values().collect();
        // Most tokens in and out first, then by name, as SQLite orders them.
        models.sort_by_key(|model| std::cmp::Reverse(model.usage.input + model.usage.output));
        let mut report = UsageReport::default();
        for model in models {
            report.add(&model.usage, model.requests);
            report.by_model.push(model);
        }
        Ok(report)
    }
}
