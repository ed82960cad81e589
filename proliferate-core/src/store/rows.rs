//! Records from rows, the same for every SQL store: the stores differ in their SQL, not in how
//! a row reads.

use bytes::Bytes;
use sqlx::Row;

use super::*;

/// A row of a SQL store, read by column name into the few types the stores keep.
pub(super) trait StoreRow {
    /// A text column.
    fn text(&self, name: &str) -> Result<String, StoreError>;
    /// A text column that may be null.
    fn maybe_text(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// An integer column.
    fn integer(&self, name: &str) -> Result<i64, StoreError>;
    /// An integer column that may be null.
    fn maybe_integer(&self, name: &str) -> Result<Option<i64>, StoreError>;
    /// A real column that may be null.
    fn maybe_real(&self, name: &str) -> Result<Option<f64>, StoreError>;
    /// A binary column.
    fn blob(&self, name: &str) -> Result<Vec<u8>, StoreError>;
}

macro_rules! store_row {
    ($row:ty) => {
        impl StoreRow for $row {
            fn text(&self, name: &str) -> Result<String, StoreError> {
                Ok(self.try_get(name)?)
            }
            fn maybe_text(&self, name: &str) -> Result<Option<String>, StoreError> {
                Ok(self.try_get(name)?)
            }
            fn integer(&self, name: &str) -> Result<i64, StoreError> {
                Ok(self.try_get(name)?)
            }
            fn maybe_integer(&self, name: &str) -> Result<Option<i64>, StoreError> {
                Ok(self.try_get(name)?)
            }
            fn maybe_real(&self, name: &str) -> Result<Option<f64>, StoreError> {
                Ok(self.try_get(name)?)
            }
            fn blob(&self, name: &str) -> Result<Vec<u8>, StoreError> {
                Ok(self.try_get(name)?)
            }
        }
    };
}

store_row!(sqlx::sqlite::SqliteRow);
#[cfg(feature = "postgres")]
store_row!(sqlx::postgres::PgRow);

/// A stored value that does not decode.
pub(super) fn corrupt(error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

/// A session from `info`, `agent_session_id` and `head_seq`.
pub(super) fn session(row: &impl StoreRow) -> Result<SessionRecord, StoreError> {
    let mut info: SessionInfo = serde_json::from_str(&row.text("info")?).map_err(corrupt)?;
    info.head_seq = row.maybe_integer("head_seq")?.unwrap_or(0) as u64;
    Ok(SessionRecord {
        info,
        agent_session_id: row.maybe_text("agent_session_id")?,
    })
}

/// A prompt from a `prompts` row.
pub(super) fn prompt(row: &impl StoreRow) -> Result<PromptRecord, StoreError> {
    let prompt_id = row.text("prompt_id")?;
    Ok(PromptRecord {
        session_id: row.text("session_id")?,
        admission: PromptAdmission {
            prompt_id: prompt_id.clone(),
            queue_position: row.integer("queue_position")? as u32,
            duplicate: false,
        },
        prompt_id,
        state: PromptState::parse(&row.text("state")?),
        content: row.text("content")?,
        images: serde_json::from_str(&row.text("images")?).map_err(corrupt)?,
        sender: serde_json::from_str(&row.text("sender")?).map_err(corrupt)?,
    })
}

/// A snapshot from a `snapshots` row.
pub(super) fn snapshot(row: &impl StoreRow) -> Result<SnapshotRecord, StoreError> {
    Ok(SnapshotRecord {
        info: SnapshotInfo {
            snapshot_id: row.text("id")?,
            session_id: row.text("session_id")?,
            created_at: row.integer("created_at")?,
            size_bytes: row.integer("size_bytes")? as u64,
        },
        organization_id: row.text("organization_id")?,
    })
}

/// A revoked token from a `revoked_tokens` row.
pub(super) fn revoked_token(row: &impl StoreRow) -> Result<RevokedToken, StoreError> {
    Ok(RevokedToken {
        jti: row.text("jti")?,
        organization_id: row.text("organization_id")?,
        expires_at: row.integer("expires_at")?,
    })
}

/// An event from `seq` and `frame`.
pub(super) fn event(row: &impl StoreRow) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        seq: row.integer("seq")? as u64,
        frame: Bytes::from(row.blob("frame")?),
    })
}

/// One model's usage from a row of sums (`requests`, `input`, `output`, `reasoning`,
/// `cache_read`, `cache_write`, `cost`), added to `report`.
pub(super) fn add_model_usage(
    report: &mut UsageReport,
    row: &impl StoreRow,
) -> Result<(), StoreError> {
    let count = |column: &str| -> Result<u64, StoreError> { Ok(row.integer(column)? as u64) };
    let model = ModelUsage {
        model: row.text("model")?,
        usage: TokenUsage {
            input: count("input")?,
            output: count("output")?,
            reasoning: count("reasoning")?,
            cache_read: count("cache_read")?,
            cache_write: count("cache_write")?,
            cost: row.maybe_real("cost")?,
        },
        requests: count("requests")?,
        ..Default::default()
    };
    report.add(&model.usage, model.requests);
    report.by_model.push(model);
    Ok(())
}
