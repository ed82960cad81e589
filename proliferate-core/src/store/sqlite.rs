//! The embedded store: one SQLite database file, WAL, migrations at start-up.

use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::rows::{self, corrupt};
use super::*;
use crate::clock::now_millis;

/// Every write is a transaction that takes the write lock when it begins, so one that reads
/// first waits out another writer (the busy timeout) instead of failing when its snapshot went
/// stale: the hub's writes run beside its other calls, and the model proxy's.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// Schema migrations, applied in order; `PRAGMA user_version` counts the applied ones.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    info TEXT NOT NULL,
    agent_session_id TEXT
);
CREATE INDEX sessions_by_organization ON sessions (organization_id, created_at DESC, id DESC);
CREATE TABLE idempotency_keys (
    organization_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request_digest TEXT NOT NULL,
    session_id TEXT NOT NULL,
    PRIMARY KEY (organization_id, key)
);
CREATE TABLE prompts (
    session_id TEXT NOT NULL,
    prompt_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    queue_position INTEGER NOT NULL,
    state TEXT NOT NULL,
    content TEXT NOT NULL,
    images TEXT NOT NULL,
    sender TEXT NOT NULL,
    PRIMARY KEY (session_id, prompt_id)
);
CREATE TABLE events (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    frame BLOB NOT NULL,
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
CREATE TABLE snapshots (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE model_usage (
    organization_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    model TEXT NOT NULL,
    at INTEGER NOT NULL,
    input INTEGER NOT NULL,
    output INTEGER NOT NULL,
    reasoning INTEGER NOT NULL,
    cache_read INTEGER NOT NULL,
    cache_write INTEGER NOT NULL,
    cost REAL
);
CREATE INDEX model_usage_by_organization ON model_usage (organization_id, at);
CREATE INDEX model_usage_by_session ON model_usage (session_id, at);
"#,
    r#"
CREATE TABLE revoked_tokens (
    jti TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (jti, organization_id)
);
CREATE TABLE compacted_transcripts (
    session_id TEXT PRIMARY KEY,
    transcript TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE session_leases (
    session_id TEXT PRIMARY KEY,
    gateway_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
"#,
];

/// When a committed write is safe from a power failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit is on disk before it returns (`synchronous=FULL`): an event sent to clients
    /// is never lost and its seq never reused. The default.
    #[default]
    Full,
    /// Commits reach the disk at checkpoints (`synchronous=NORMAL`): faster, and a power failure
    /// may lose the last commits (never corrupt the database). Only for disposable data.
    Normal,
}

/// Metadata and the event log in one SQLite database.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations, with
    /// every commit durable.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Full).await
    }

    /// Opens the database at `path` with the given durability.
    pub async fn open_with(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let synchronous = match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        };
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut connection = self.pool.acquire().await?;
        let applied: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *connection)
            .await?;
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
            let mut transaction = self.pool.begin_with(BEGIN_WRITE).await?;
            sqlx::raw_sql(migration).execute(&mut *transaction).await?;
            sqlx::raw_sql(&format!("PRAGMA user_version = {}", index + 1))
                .execute(&mut *transaction)
                .await?;
            transaction.commit().await?;
        }
        Ok(())
    }
}

const SELECT_SESSION: &str = "SELECT info, agent_session_id, \
     (SELECT MAX(seq) FROM events WHERE events.session_id = sessions.id) AS head_seq \
     FROM sessions";

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn create_session(
        &self,
        record: &SessionRecord,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<(SessionRecord, bool), StoreError> {
        let mut transaction = self.pool.begin_with(BEGIN_WRITE).await?;
        if let Some(key) = idempotency {
            let existing = sqlx::query(
                "SELECT request_digest, session_id FROM idempotency_keys \
                 WHERE organization_id = ? AND key = ?",
            )
            .bind(&record.info.organization_id)
            .bind(&key.key)
            .fetch_optional(&mut *transaction)
            .await?;
            if let Some(existing) = existing {
                if existing.try_get::<String, _>("request_digest")? != key.request_digest {
                    transaction.rollback().await?;
                    return Err(StoreError::IdempotencyConflict);
                }
                let session_id: String = existing.try_get("session_id")?;
                transaction.rollback().await?;
                let session = self.session(&session_id).await?;
                return session
                    .map(|session| (session, false))
                    .ok_or(StoreError::NotFound(session_id));
            }
            sqlx::query(
                "INSERT INTO idempotency_keys (organization_id, key, request_digest, session_id) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(&record.info.organization_id)
            .bind(&key.key)
            .bind(&key.request_digest)
            .bind(&record.info.id)
            .execute(&mut *transaction)
            .await?;
        }
        sqlx::query(
            "INSERT INTO sessions (id, organization_id, created_at, status, info, agent_session_id) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&record.info.id)
        .bind(&record.info.organization_id)
        .bind(record.info.created_at)
        .bind(record.info.status.as_str())
        .bind(serde_json::to_string(&record.info).map_err(corrupt)?)
        .bind(&record.agent_session_id)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok((record.clone(), true))
    }

    async fn session(&self, session_id: &str) -> Result<Option<SessionRecord>, StoreError> {
        sqlx::query(&format!("{SELECT_SESSION} WHERE id = ?"))
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(rows::session)
            .transpose()
    }

    async fn list_sessions(
        &self,
        organization_id: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<SessionRecord>, Option<String>), StoreError> {
        let (after_time, after_id) = cursor
            .and_then(|cursor| cursor.split_once(':'))
            .and_then(|(time, id)| Some((time.parse::<i64>().ok()?, id.to_owned())))
            .unwrap_or((i64::MAX, String::new()));
        let found = sqlx::query(&format!(
            "{SELECT_SESSION} WHERE organization_id = ? \
             AND (created_at < ? OR (created_at = ? AND id < ?) OR ? = '') \
             ORDER BY created_at DESC, id DESC LIMIT ?"
        ))
        .bind(organization_id)
        .bind(after_time)
        .bind(after_time)
        .bind(&after_id)
        .bind(&after_id)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut sessions = found
            .iter()
            .map(rows::session)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if sessions.len() > limit as usize {
            sessions.truncate(limit as usize);
            sessions
                .last()
                .map(|last| format!("{}:{}", last.info.created_at, last.info.id))
        } else {
            None
        };
        Ok((sessions, next_cursor))
    }

    async fn live_sessions(&self) -> Result<Vec<SessionRecord>, StoreError> {
        sqlx::query(&format!(
            "{SELECT_SESSION} WHERE status IN ('starting', 'running', 'resuming', 'pausing')"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(rows::session)
        .collect()
    }

    async fn update_session(
        &self,
        lease: &Lease,
        record: &SessionRecord,
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin_with(BEGIN_WRITE).await?;
        check_lease(&mut transaction, lease).await?;
        let updated = sqlx::query(
            "UPDATE sessions SET status = ?, info = ?, agent_session_id = ? WHERE id = ?",
        )
        .bind(record.info.status.as_str())
        .bind(serde_json::to_string(&record.info).map_err(corrupt)?)
        .bind(&record.agent_session_id)
        .bind(&record.info.id)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(record.info.id.clone()));
        }
        Ok(())
    }

    async fn delete_session(&self, session_id: &str) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin_with(BEGIN_WRITE).await?;
        for table in [
            "events",
            "prompts",
            "idempotency_keys",
            "compacted_transcripts",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE session_id = ?"))
                .bind(session_id)
                .execute(&mut *transaction)
                .await?;
        }
        sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(session_id)
            .execute(&mut *transaction)
            .await?;
        // The lease stays, a generation on, so no earlier holder writes to a deleted session.
        sqlx::query(
            "UPDATE session_leases SET generation = generation + 1, expires_at = 0 \
             WHERE session_id = ?",
        )
        .bind(session_id)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn admit_prompt(
        &self,
        prompt: &PromptRecord,
    ) -> Result<(PromptRecord, bool), StoreError> {
        let mut transaction = self.pool.begin_with(BEGIN_WRITE).await?;
        let inserted = sqlx::query(
            "INSERT INTO prompts (session_id, prompt_id, sequence, queue_position, state, content, \
             images, sender) \
             VALUES (?, ?, (SELECT COUNT(*) FROM prompts WHERE session_id = ?), ?, ?, ?, ?, ?) \
             ON CONFLICT (session_id, prompt_id) DO NOTHING",
        )
        .bind(&prompt.session_id)
        .bind(&prompt.prompt_id)
        .bind(&prompt.session_id)
        .bind(i64::from(prompt.admission.queue_position))
        .bind(prompt.state.as_str())
        .bind(&prompt.content)
        .bind(serde_json::to_string(&prompt.images).map_err(corrupt)?)
        .bind(serde_json::to_string(&prompt.sender).map_err(corrupt)?)
        .execute(&mut *transaction)
        .await?;
        if inserted.rows_affected() == 1 {
            transaction.commit().await?;
            return Ok((prompt.clone(), true));
        }
        let row = sqlx::query("SELECT * FROM prompts WHERE session_id = ? AND prompt_id = ?")
            .bind(&prompt.session_id)
            .bind(&prompt.prompt_id)
            .fetch_one(&mut *transaction)
            .await?;
        transaction.commit().await?;
        let mut existing = rows::prompt(&row)?;
        existing.admission.duplicate = true;
        Ok((existing, false))
    }

    async fn set_prompt_state(
        &self,
        lease: &Lease,
        prompt_id: &str,
        state: PromptState,
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin_with(BEGIN_WRITE).await?;
        check_lease(&mut transaction, lease).await?;
        sqlx::query("UPDATE prompts SET state = ? WHERE session_id = ? AND prompt_id = ?")
            .bind(state.as_str())
            .bind(&lease.session_id)
            .bind(prompt_id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn pending_prompts(&self, session_id: &str) -> Result<Vec<PromptRecord>, StoreError> {
        sqlx::query(
            "SELECT * FROM prompts WHERE session_id = ? AND state IN ('queued', 'running') \
             ORDER BY sequence",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(rows::prompt)
        .collect()
    }

    async fn insert_snapshot(&self, snapshot: &SnapshotRecord) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin_with(BEGIN_WRITE).await?;
        sqlx::query(
            "INSERT INTO snapshots (id, session_id, organization_id, created_at, size_bytes) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&snapshot.info.snapshot_id)
        .bind(&snapshot.info.session_id)
        .bind(&snapshot.organization_id)
        .bind(snapshot.info.created_at)
        .bind(snapshot.info.size_bytes as i64)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn snapshot(&self, snapshot_id: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM snapshots WHERE id = ?")
            .bind(snapshot_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::snapshot).transpose()
    }

    async fn revoke_token(&self, token: &RevokedToken) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin_with(BEGIN_WRITE).await?;
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, organization_id, expires_at) VALUES (?, ?, ?) \
             ON CONFLICT (jti, organization_id) DO UPDATE SET expires_at = excluded.expires_at",
        )
        .bind(&token.jti)
        .bind(&token.organization_id)
        .bind(token.expires_at)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn revoked_tokens(&self, now: i64) -> Result<Vec<RevokedToken>, StoreError> {
        let mut transaction = self.pool.begin_with(BEGIN_WRITE).await?;
        sqlx::query("DELETE FROM revoked_tokens WHERE expires_at <= ?")
            .bind(now)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        let found = sqlx::query("SELECT jti, organization_id, expires_at FROM revoked_tokens")
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::revoked_token).collect()
    }
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn acquire(
        &self,
        session_id: &str,
        gateway_id: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let now = now_millis();
        let mut transaction = self.pool.begin_with(BEGIN_WRITE).await?;
        let generation: Option<i64> = sqlx::query_scalar(
            "INSERT INTO session_leases (session_id, gateway_id, generation, expires_at) \
             VALUES (?, ?, 1, ?) \
             ON CONFLICT (session_id) DO UPDATE SET gateway_id = excluded.gateway_id, \
             generation = session_leases.generation + 1, expires_at = excluded.expires_at \
             WHERE session_leases.expires_at <= ? OR session_leases.gateway_id = excluded.gateway_id \
             RETURNING generation",
        )
        .bind(session_id)
        .bind(gateway_id)
        .bind(now + ttl.as_millis() as i64)
        .bind(now)
        .fetch_optional(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(generation.map(|generation| Lease {
            session_id: session_id.to_owned(),
            gateway_id: gateway_id.to_owned(),
            generation: generation as u64,
        }))
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, StoreError> {
        let mut transaction = self.pool.begin_with(BEGIN_WRITE).await?;
        let renewed = sqlx::query(
            "UPDATE session_leases SET expires_at = ? \
             WHERE session_id = ? AND gateway_id = ? AND generation = ?",
        )
        .bind(now_millis() + ttl.as_millis() as i64)
        .bind(&lease.session_id)
        .bind(&lease.gateway_id)
        .bind(lease.generation as i64)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin_with(BEGIN_WRITE).await?;
        sqlx::query(
            "UPDATE session_leases SET expires_at = 0 WHERE session_id = ? AND generation = ?",
        )
        .bind(&lease.session_id)
        .bind(lease.generation as i64)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn holder(&self, session_id: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT gateway_id FROM session_leases WHERE session_id = ? AND expires_at > ?",
        )
        .bind(session_id)
        .bind(now_millis())
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn append(&self, lease: &Lease, events: &[StoredEvent]) -> Result<(), StoreError> {
        let session_id = &lease.session_id;
        let mut transaction = self.pool.begin_with(BEGIN_WRITE).await?;
        check_lease(&mut transaction, lease).await?;
        let head: Option<i64> =
            sqlx::query_scalar("SELECT MAX(seq) FROM events WHERE session_id = ?")
                .bind(session_id)
                .fetch_one(&mut *transaction)
                .await?;
        let head = head.unwrap_or(0) as u64;
        if let Some(first) = events.first()
            && first.seq != head + 1
        {
            return Err(not_after_head(session_id, first.seq, head));
        }
        for event in events {
            sqlx::query("INSERT INTO events (session_id, seq, frame) VALUES (?, ?, ?)")
                .bind(session_id)
                .bind(event.seq as i64)
                .bind(&event.frame[..])
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn read(
        &self,
        session_id: &str,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let found = sqlx::query(
            "SELECT seq, frame FROM events WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(session_id)
        .bind(after_seq as i64)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        found.iter().map(rows::event).collect()
    }

    async fn bounds(&self, session_id: &str) -> Result<Option<(u64, u64)>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(seq) AS first, MAX(seq) AS last FROM events WHERE session_id = ?",
        )
        .bind(session_id)
        .fetch_one(&self.pool)
        .await?;
        let first: Option<i64> = row.try_get("first")?;
        let last: Option<i64> = row.try_get("last")?;
        Ok(first
            .zip(last)
            .map(|(first, last)| (first as u64, last as u64)))
    }

    async fn compact(
        &self,
        lease: &Lease,
        through_seq: u64,
        transcript: &Transcript,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(transcript).map_err(corrupt)?;
        let session_id = &lease.session_id;
        let mut transaction = self.pool.begin_with(BEGIN_WRITE).await?;
        check_lease(&mut transaction, lease).await?;
        sqlx::query(
            "INSERT INTO compacted_transcripts (session_id, transcript) VALUES (?, ?) \
             ON CONFLICT (session_id) DO UPDATE SET transcript = excluded.transcript",
        )
        .bind(session_id)
        .bind(text)
        .execute(&mut *transaction)
        .await?;
        sqlx::query("DELETE FROM events WHERE session_id = ? AND seq <= ?")
            .bind(session_id)
            .bind(through_seq as i64)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn compacted(&self, session_id: &str) -> Result<Option<Transcript>, StoreError> {
        let row = sqlx::query("SELECT transcript FROM compacted_transcripts WHERE session_id = ?")
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| serde_json::from_str(row.try_get("transcript")?).map_err(corrupt))
            .transpose()
    }
}

#[async_trait]
impl UsageLedger for SqliteStore {
    async fn record_usage(&self, record: &UsageRecord) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin_with(BEGIN_WRITE).await?;
        let usage = &record.usage;
        sqlx::query(
            "INSERT INTO model_usage (organization_id, session_id, model, at, input, output, \
             reasoning, cache_read, cache_write, cost) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&record.organization_id)
        .bind(&record.session_id)
        .bind(&record.model)
        .bind(record.at)
        .bind(usage.input as i64)
        .bind(usage.output as i64)
        .bind(usage.reasoning as i64)
        .bind(usage.cache_read as i64)
        .bind(usage.cache_write as i64)
        .bind(usage.cost)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn usage(&self, filter: &UsageFilter) -> Result<UsageReport, StoreError> {
        let found = sqlx::query(
            "SELECT model, COUNT(*) AS requests, SUM(input) AS input, SUM(output) AS output, \
             SUM(reasoning) AS reasoning, SUM(cache_read) AS cache_read, \
             SUM(cache_write) AS cache_write, SUM(cost) AS cost FROM model_usage \
             WHERE organization_id = ? AND (? IS NULL OR session_id = ?) \
             AND (? IS NULL OR at >= ?) AND (? IS NULL OR at < ?) \
             GROUP BY model ORDER BY SUM(input + output) DESC, model",
        )
        .bind(&filter.organization_id)
        .bind(&filter.session_id)
        .bind(&filter.session_id)
        .bind(filter.from)
        .bind(filter.from)
        .bind(filter.to)
        .bind(filter.to)
        .fetch_all(&self.pool)
        .await?;
        let mut report = UsageReport::default();
        for row in &found {
            rows::add_model_usage(&mut report, row)?;
        }
        Ok(report)
    }
}

/// Refuses a write, in its transaction, under a lease that no longer holds the session's log.
async fn check_lease(
    connection: &mut sqlx::SqliteConnection,
    lease: &Lease,
) -> Result<(), StoreError> {
    let current: Option<i64> =
        sqlx::query_scalar("SELECT generation FROM session_leases WHERE session_id = ?")
            .bind(&lease.session_id)
            .fetch_optional(connection)
            .await?;
    match current == Some(lease.generation as i64) {
        true => Ok(()),
        false => Err(fenced(
            &lease.session_id,
            lease.generation,
            current.map(|g| g as u64),
        )),
    }
}
