//! The shared store: PostgreSQL, for gateways that outgrow one machine. Migrations run at
//! start-up under an advisory lock, so gateways starting together apply each once; every commit
//! is durable (PostgreSQL's default `synchronous_commit`).

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Row};

use super::rows::{self, corrupt};
use super::*;

/// The advisory lock migrations take ("prolifer" in ASCII).
const MIGRATION_LOCK: i64 = 0x7072_6f6c_6966_6572;

/// Schema migrations, applied in order; `schema_migrations` records the applied ones.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    info TEXT NOT NULL,
    agent_session_id TEXT
);
CREATE INDEX sessions_by_organization ON sessions (organization_id, created_at DESC, id DESC);
CREATE INDEX sessions_by_status ON sessions (status);
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
    sequence BIGINT NOT NULL,
    queue_position BIGINT NOT NULL,
    state TEXT NOT NULL,
    content TEXT NOT NULL,
    images TEXT NOT NULL,
    sender TEXT NOT NULL,
    PRIMARY KEY (session_id, prompt_id)
);
CREATE TABLE events (
    session_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    frame BYTEA NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE snapshots (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    size_bytes BIGINT NOT NULL
);
CREATE TABLE model_usage (
    organization_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    model TEXT NOT NULL,
    at BIGINT NOT NULL,
    input BIGINT NOT NULL,
    output BIGINT NOT NULL,
    reasoning BIGINT NOT NULL,
    cache_read BIGINT NOT NULL,
    cache_write BIGINT NOT NULL,
    cost DOUBLE PRECISION
);
CREATE INDEX model_usage_by_organization ON model_usage (organization_id, at);
CREATE INDEX model_usage_by_session ON model_usage (session_id, at);
CREATE TABLE revoked_tokens (
    jti TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
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
    generation BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
"#,
];

/// The database's clock in milliseconds: every gateway reads leases by the same clock.
const NOW: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

const SELECT_SESSION: &str = "SELECT info, agent_session_id, \
     (SELECT MAX(seq) FROM events WHERE events.session_id = sessions.id) AS head_seq \
     FROM sessions";

/// Metadata and the event log in a PostgreSQL database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/database`) with a pool of
    /// up to `max_connections`, and applies pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = url
            .parse::<sqlx::postgres::PgConnectOptions>()
            .map_err(|error| StoreError::Unavailable(format!("bad database URL: {error}")))?
            // Statements are logged by the server's own tracing, never with their values.
            .disable_statement_logging();
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(options)
            .await?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *transaction)
            .await?;
        sqlx::raw_sql("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
            .execute(&mut *transaction)
            .await?;
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM schema_migrations")
            .fetch_one(&mut *transaction)
            .await?;
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
            sqlx::raw_sql(migration).execute(&mut *transaction).await?;
            sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
                .bind(index as i32 + 1)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl MetadataStore for PostgresStore {
    async fn create_session(
        &self,
        record: &SessionRecord,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<(SessionRecord, bool), StoreError> {
        let mut transaction = self.pool.begin().await?;
        if let Some(key) = idempotency {
            // A concurrent create with the same key waits here until the first commits.
            let claimed = sqlx::query(
                "INSERT INTO idempotency_keys (organization_id, key, request_digest, session_id) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(&record.info.organization_id)
            .bind(&key.key)
            .bind(&key.request_digest)
            .bind(&record.info.id)
            .execute(&mut *transaction)
            .await?;
            if claimed.rows_affected() == 0 {
                let existing = sqlx::query(
                    "SELECT request_digest, session_id FROM idempotency_keys \
                     WHERE organization_id = $1 AND key = $2",
                )
                .bind(&record.info.organization_id)
                .bind(&key.key)
                .fetch_one(&mut *transaction)
                .await?;
                transaction.rollback().await?;
                if existing.try_get::<String, _>("request_digest")? != key.request_digest {
                    return Err(StoreError::IdempotencyConflict);
                }
                let session_id: String = existing.try_get("session_id")?;
                let session = self.session(&session_id).await?;
                return session
                    .map(|session| (session, false))
                    .ok_or(StoreError::NotFound(session_id));
            }
        }
        sqlx::query(
            "INSERT INTO sessions (id, organization_id, created_at, status, info, agent_session_id) \
             VALUES ($1, $2, $3, $4, $5, $6)",
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
        sqlx::query(&format!("{SELECT_SESSION} WHERE id = $1"))
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
            "{SELECT_SESSION} WHERE organization_id = $1 \
             AND (created_at < $2 OR (created_at = $2 AND id < $3) OR $3 = '') \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ))
        .bind(organization_id)
        .bind(after_time)
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
        let mut transaction = self.pool.begin().await?;
        check_lease(&mut transaction, lease).await?;
        let updated = sqlx::query(
            "UPDATE sessions SET status = $1, info = $2, agent_session_id = $3 WHERE id = $4",
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
        let mut transaction = self.pool.begin().await?;
        for table in [
            "events",
            "prompts",
            "idempotency_keys",
            "compacted_transcripts",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE session_id = $1"))
                .bind(session_id)
                .execute(&mut *transaction)
                .await?;
        }
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(session_id)
            .execute(&mut *transaction)
            .await?;
        // The lease stays, a generation on, so no earlier holder writes to a deleted session.
        sqlx::query(
            "UPDATE session_leases SET generation = generation + 1, expires_at = 0 \
             WHERE session_id = $1",
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
        let mut transaction = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO prompts (session_id, prompt_id, sequence, queue_position, state, content, \
             images, sender) \
             VALUES ($1, $2, (SELECT COUNT(*) FROM prompts WHERE session_id = $1), $3, $4, $5, \
             $6, $7) \
             ON CONFLICT (session_id, prompt_id) DO NOTHING",
        )
        .bind(&prompt.session_id)
        .bind(&prompt.prompt_id)
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
        let row = sqlx::query("SELECT * FROM prompts WHERE session_id = $1 AND prompt_id = $2")
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
        let mut transaction = self.pool.begin().await?;
        check_lease(&mut transaction, lease).await?;
        sqlx::query("UPDATE prompts SET state = $1 WHERE session_id = $2 AND prompt_id = $3")
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
            "SELECT * FROM prompts WHERE session_id = $1 AND state IN ('queued', 'running') \
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
        sqlx::query(
            "INSERT INTO snapshots (id, session_id, organization_id, created_at, size_bytes) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&snapshot.info.snapshot_id)
        .bind(&snapshot.info.session_id)
        .bind(&snapshot.organization_id)
        .bind(snapshot.info.created_at)
        .bind(snapshot.info.size_bytes as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn snapshot(&self, snapshot_id: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM snapshots WHERE id = $1")
            .bind(snapshot_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::snapshot).transpose()
    }

    async fn revoke_token(&self, token: &RevokedToken) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, organization_id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (jti, organization_id) DO UPDATE SET expires_at = EXCLUDED.expires_at",
        )
        .bind(&token.jti)
        .bind(&token.organization_id)
        .bind(token.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn revoked_tokens(&self, now: i64) -> Result<Vec<RevokedToken>, StoreError> {
        sqlx::query("DELETE FROM revoked_tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        let found = sqlx::query("SELECT jti, organization_id, expires_at FROM revoked_tokens")
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::revoked_token).collect()
    }
}

#[async_trait]
impl EventLog for PostgresStore {
    async fn acquire(
        &self,
        session_id: &str,
        gateway_id: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        // Waits for writes under the current lease to commit (they hold its row), so the new
        // holder reads the head after them; at most a few seconds, for a holder cut off in the
        // middle of one.
        let mut transaction = self.pool.begin().await?;
        sqlx::query("SET LOCAL lock_timeout = '5s'")
            .execute(&mut *transaction)
            .await?;
        let upsert = format!(
            "INSERT INTO session_leases (session_id, gateway_id, generation, expires_at) \
             VALUES ($1, $2, 1, {NOW} + $3) \
             ON CONFLICT (session_id) DO UPDATE SET gateway_id = EXCLUDED.gateway_id, \
             generation = session_leases.generation + 1, expires_at = EXCLUDED.expires_at \
             WHERE session_leases.expires_at <= {NOW} \
             OR session_leases.gateway_id = EXCLUDED.gateway_id \
             RETURNING generation"
        );
        let generation: Option<i64> = sqlx::query_scalar(&upsert)
            .bind(session_id)
            .bind(gateway_id)
            .bind(ttl.as_millis() as i64)
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
        let renewed = sqlx::query(&format!(
            "UPDATE session_leases SET expires_at = {NOW} + $1 \
             WHERE session_id = $2 AND gateway_id = $3 AND generation = $4"
        ))
        .bind(ttl.as_millis() as i64)
        .bind(&lease.session_id)
        .bind(&lease.gateway_id)
        .bind(lease.generation as i64)
        .execute(&self.pool)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE session_leases SET expires_at = 0 WHERE session_id = $1 AND generation = $2",
        )
        .bind(&lease.session_id)
        .bind(lease.generation as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn holder(&self, session_id: &str) -> Result<Option<String>, StoreError> {
        let query = format!(
            "SELECT gateway_id FROM session_leases WHERE session_id = $1 AND expires_at > {NOW}"
        );
        Ok(sqlx::query_scalar(&query)
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn append(&self, lease: &Lease, events: &[StoredEvent]) -> Result<(), StoreError> {
        let session_id = &lease.session_id;
        let mut transaction = self.pool.begin().await?;
        check_lease(&mut transaction, lease).await?;
        let head: Option<i64> =
            sqlx::query_scalar("SELECT MAX(seq) FROM events WHERE session_id = $1")
                .bind(session_id)
                .fetch_one(&mut *transaction)
                .await?;
        let head = head.unwrap_or(0) as u64;
        if let Some(first) = events.first()
            && first.seq != head + 1
        {
            return Err(not_after_head(session_id, first.seq, head));
        }
        let seqs: Vec<i64> = events.iter().map(|event| event.seq as i64).collect();
        let frames: Vec<&[u8]> = events.iter().map(|event| &event.frame[..]).collect();
        sqlx::query(
            "INSERT INTO events (session_id, seq, frame) \
             SELECT $1, seq, frame FROM UNNEST($2::BIGINT[], $3::BYTEA[]) AS appended (seq, frame)",
        )
        .bind(session_id)
        .bind(seqs)
        .bind(frames)
        .execute(&mut *transaction)
        .await?;
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
            "SELECT seq, frame FROM events WHERE session_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3",
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
            "SELECT MIN(seq) AS first, MAX(seq) AS last FROM events WHERE session_id = $1",
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
        let mut transaction = self.pool.begin().await?;
        check_lease(&mut transaction, lease).await?;
        sqlx::query(
            "INSERT INTO compacted_transcripts (session_id, transcript) VALUES ($1, $2) \
             ON CONFLICT (session_id) DO UPDATE SET transcript = EXCLUDED.transcript",
        )
        .bind(session_id)
        .bind(text)
        .execute(&mut *transaction)
        .await?;
        sqlx::query("DELETE FROM events WHERE session_id = $1 AND seq <= $2")
            .bind(session_id)
            .bind(through_seq as i64)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn compacted(&self, session_id: &str) -> Result<Option<Transcript>, StoreError> {
        let row = sqlx::query("SELECT transcript FROM compacted_transcripts WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| serde_json::from_str(row.try_get("transcript")?).map_err(corrupt))
            .transpose()
    }
}

#[async_trait]
impl UsageLedger for PostgresStore {
    async fn record_usage(&self, record: &UsageRecord) -> Result<(), StoreError> {
        let usage = &record.usage;
        sqlx::query(
            "INSERT INTO model_usage (organization_id, session_id, model, at, input, output, \
             reasoning, cache_read, cache_write, cost) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn usage(&self, filter: &UsageFilter) -> Result<UsageReport, StoreError> {
        let found = sqlx::query(
            "SELECT model, COUNT(*) AS requests, SUM(input)::BIGINT AS input, \
             SUM(output)::BIGINT AS output, SUM(reasoning)::BIGINT AS reasoning, \
             SUM(cache_read)::BIGINT AS cache_read, SUM(cache_write)::BIGINT AS cache_write, \
             SUM(cost) AS cost FROM model_usage \
             WHERE organization_id = $1 AND ($2::TEXT IS NULL OR session_id = $2) \
             AND ($3::BIGINT IS NULL OR at >= $3) AND ($4::BIGINT IS NULL OR at < $4) \
             GROUP BY model ORDER BY SUM(input + output) DESC, model",
        )
        .bind(&filter.organization_id)
        .bind(&filter.session_id)
        .bind(filter.from)
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

/// Refuses a write, in its transaction, under a lease that no longer holds the session's log; the lease's row stays locked until the transaction ends, so no taking passes it meanwhile.
async fn check_lease(connection: &mut sqlx::PgConnection, lease: &Lease) -> Result<(), StoreError> {
    let current: Option<i64> =
        sqlx::query_scalar("SELECT generation FROM session_leases WHERE session_id = $1 FOR SHARE")
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
