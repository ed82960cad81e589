//! Persistence: the metadata store (sessions, prompts, snapshots, idempotency keys) and the
//! ordered event log. SQLite is the embedded default and PostgreSQL (the `postgres` feature) the
//! shared one; the traits are what the hub and the session service use, and one contract test
//! suite holds every implementation, the in-memory fake included, to the same answers.
//!
//! The database holds metadata and the event log, never secrets.

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod rows;
mod sqlite;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
pub use sqlite::{Durability, SqliteStore};

use crate::protocol::v1::{
    ModelUsage, PromptAdmission, Sender, SessionInfo, SnapshotInfo, TokenUsage, Transcript,
    UsageReport,
};

/// A session as stored: what clients see, plus what only the engine needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionRecord {
    /// The client-visible session (its `head_seq` is filled from the event log on read).
    pub info: SessionInfo,
    /// The agent's own id for its session, so a restarted agent adopts the same conversation.
    pub agent_session_id: Option<String>,
}

/// Where a prompt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PromptState {
    /// Waiting for the running turn to end.
    Queued,
    /// Its turn runs.
    Running,
    /// Its turn ended.
    Done,
    /// Withdrawn before it ran.
    Withdrawn,
}

impl PromptState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Withdrawn => "withdrawn",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "withdrawn" => Self::Withdrawn,
            _ => Self::Done,
        }
    }
}

/// A prompt as admitted.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PromptRecord {
    /// The session.
    pub session_id: String,
    /// The client-chosen id.
    pub prompt_id: String,
    /// The admission returned to the client, and to every retry.
    pub admission: PromptAdmission,
    /// Where it is.
    pub state: PromptState,
    /// The text.
    pub content: String,
    /// Attached images.
    pub images: Vec<String>,
    /// Who sent it.
    pub sender: Sender,
}

/// A gateway's lease on a session's log: while it holds, this gateway alone writes the log and
/// runs the session. Each taking raises the generation, which fences out every earlier holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The session.
    pub session_id: String,
    /// The gateway holding it.
    pub gateway_id: String,
    /// Raised by each taking; appends under an older one are refused.
    pub generation: u64,
}

/// One event of a session's log: the seq and the exact bytes of its `event` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Position in the log.
    pub seq: u64,
    /// The serialized `event` frame, sent as is to every client.
    pub frame: Bytes,
}

/// A snapshot and who owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// What clients see.
    pub info: SnapshotInfo,
    /// The organisation that owns it; no other organisation may start from it.
    pub organization_id: String,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An `Idempotency-Key` was reused with a different request.
    #[error("the idempotency key was already used with a different request")]
    IdempotencyConflict,
    /// A record does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(String),
    /// A stored record could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// A write collided with a record already there (an event's seq, a session's id).
    #[error("already exists: {0}")]
    Conflict(String),
    /// The write was refused: another gateway's lease holds the session's log now.
    #[error("fenced: {0}")]
    Fenced(String),
    /// The store could not be reached, or is busy (another writer holds its lock).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// Whether the store may answer if asked again: it is busy, or could not be reached in time.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// A database error in the store's own terms, so no driver's type leaks past the store.
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(database) if database.is_unique_violation() => {
                Self::Conflict(database.message().to_owned())
            }
            sqlx::Error::Database(database) if database.code().is_some_and(|code| busy(&code)) => {
                Self::Unavailable(error.to_string())
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                Self::Unavailable(error.to_string())
            }
            _ => Self::Database(error.to_string()),
        }
    }
}

/// Whether a database's error code says to try again: PostgreSQL's SQLSTATEs (five characters)
/// for a serialization failure, a deadlock, a lost connection, too many connections, a lock not
/// granted in time or a server shutting down; SQLite's BUSY and LOCKED (numbers), with their extended codes.
fn busy(code: &str) -> bool {
    if code.len() == 5 {
        return matches!(
            code,
            "40001" | "40P01" | "53300" | "55P03" | "57P01" | "57P02" | "57P03"
        ) || code.starts_with("08");
    }
    code.parse::<u32>()
        .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
}

/// The refusal of an append under `generation` when the log's lease is at `current`.
fn fenced(session_id: &str, generation: u64, current: Option<u64>) -> StoreError {
    StoreError::Fenced(match current {
        Some(current) => format!(
            "session {session_id}'s log is held by lease generation {current}, not {generation}"
        ),
        None => format!("session {session_id}'s log has no lease"),
    })
}

/// The refusal of an append whose first event does not follow the log's head.
fn not_after_head(session_id: &str, first: u64, head: u64) -> StoreError {
    StoreError::Conflict(format!(
        "session {session_id}'s log ends at {head}: event {first} does not follow it"
    ))
}

/// A unique key for a creation request, and a digest of the request it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The client's `Idempotency-Key`.
    pub key: String,
    /// A digest of the request body, to refuse the same key with another body.
    pub request_digest: String,
}

/// Sessions, prompts and snapshots.
#[async_trait]
pub trait MetadataStore: Send + Sync {
    /// Inserts a session. With an idempotency key already used for the same request, returns
    /// the session created then instead (and `false`); with another request, fails.
    async fn create_session(
        &self,
        record: &SessionRecord,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<(SessionRecord, bool), StoreError>;

    /// A session by id, with its head seq.
    async fn session(&self, session_id: &str) -> Result<Option<SessionRecord>, StoreError>;

    /// An organisation's sessions, newest first, at most `limit`, starting after `cursor`.
    async fn list_sessions(
        &self,
        organization_id: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<SessionRecord>, Option<String>), StoreError>;

    /// Sessions whose status says an agent should be running (to resume after a restart).
    async fn live_sessions(&self) -> Result<Vec<SessionRecord>, StoreError>;

    /// Replaces a session's record, under the lease on its log (refused with
    /// [`StoreError::Fenced`] once another generation holds it).
    async fn update_session(&self, lease: &Lease, record: &SessionRecord)
    -> Result<(), StoreError>;

    /// Removes a session with its prompts and events.
    async fn delete_session(&self, session_id: &str) -> Result<(), StoreError>;

    /// Inserts a prompt, or returns the one admitted before with the same id (and `false`).
    async fn admit_prompt(&self, prompt: &PromptRecord)
    -> Result<(PromptRecord, bool), StoreError>;

    /// Moves a prompt to another state, under the lease on its session's log.
    async fn set_prompt_state(
        &self,
        lease: &Lease,
        prompt_id: &str,
        state: PromptState,
    ) -> Result<(), StoreError>;

    /// Prompts that are queued or running, oldest first.
    async fn pending_prompts(&self, session_id: &str) -> Result<Vec<PromptRecord>, StoreError>;

    /// Records a snapshot.
    async fn insert_snapshot(&self, snapshot: &SnapshotRecord) -> Result<(), StoreError>;

    /// A snapshot by id.
    async fn snapshot(&self, snapshot_id: &str) -> Result<Option<SnapshotRecord>, StoreError>;

    /// Records a revoked token.
    async fn revoke_token(&self, token: &RevokedToken) -> Result<(), StoreError>;

    /// The tokens revoked that could still be valid at `now` (milliseconds since the epoch).
    async fn revoked_tokens(&self, now: i64) -> Result<Vec<RevokedToken>, StoreError>;
}

/// A token an organisation's admin revoked before it expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedToken {
    /// The token's `jti`.
    pub jti: String,
    /// The organisation whose tokens with this id no longer work.
    pub organization_id: String,
    /// When every token with this id has expired anyway (milliseconds since the epoch), so the
    /// revocation can be forgotten.
    pub expires_at: i64,
}

/// The ordered event log. One writer per session (the hub) assigns the seqs.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Takes the lease on the session's log for `gateway_id`, for `ttl`, unless another
    /// gateway's lease is unexpired; a gateway taking its own lease again gets a new generation.
    async fn acquire(
        &self,
        session_id: &str,
        gateway_id: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError>;

    /// Extends the lease to `ttl` from now; false once another generation holds the log.
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, StoreError>;

    /// Gives the lease up, so another gateway may take the log at once; the generation stays.
    async fn release(&self, lease: &Lease) -> Result<(), StoreError>;

    /// The gateway whose lease on the session's log is unexpired, if any.
    async fn holder(&self, session_id: &str) -> Result<Option<String>, StoreError>;

    /// Appends events under `lease`, in one transaction, in the order given: refused with
    /// [`StoreError::Fenced`] once another generation holds the log, and with
    /// [`StoreError::Conflict`] unless the first event follows the log's head.
    async fn append(&self, lease: &Lease, events: &[StoredEvent]) -> Result<(), StoreError>;

    /// Events with `seq > after_seq`, in order, at most `limit`.
    async fn read(
        &self,
        session_id: &str,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// The oldest and newest seq retained, or `None` for an empty log.
    async fn bounds(&self, session_id: &str) -> Result<Option<(u64, u64)>, StoreError>;

    /// Drops the events through `through_seq` and keeps `transcript` (the session folded at
    /// least that far) in their place, in one transaction, under the lease on the log.
    async fn compact(
        &self,
        lease: &Lease,
        through_seq: u64,
        transcript: &Transcript,
    ) -> Result<(), StoreError>;

    /// The transcript the last compaction kept, if the log was ever compacted.
    async fn compacted(&self, session_id: &str) -> Result<Option<Transcript>, StoreError>;
}

/// One model request as the model proxy metered it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UsageRecord {
    /// The session whose sandbox made the request.
    pub session_id: String,
    /// The session's organisation.
    pub organization_id: String,
    /// The model, as `provider/model`.
    pub model: String,
    /// When the request ended, milliseconds since the Unix epoch.
    pub at: i64,
    /// Its tokens, and its cost where the model has a price.
    pub usage: TokenUsage,
}

/// Which requests a usage report sums.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsageFilter {
    /// The organisation.
    pub organization_id: String,
    /// Only this session's.
    pub session_id: Option<String>,
    /// Only those that ended at or after this time (ms since the epoch).
    pub from: Option<i64>,
    /// Only those that ended before this time (ms since the epoch).
    pub to: Option<i64>,
}

/// Model usage, kept when sessions are deleted (it is what an organisation spent).
#[async_trait]
pub trait UsageLedger: Send + Sync {
    /// Records one request.
    async fn record_usage(&self, record: &UsageRecord) -> Result<(), StoreError>;

    /// Sums the requests `filter` selects.
    async fn usage(&self, filter: &UsageFilter) -> Result<UsageReport, StoreError>;
}
