//! Wall-clock time as the wire carries it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// Seconds since the Unix epoch.
pub fn now_seconds() -> i64 {
    now_millis() / 1000
}
