//! What durable commits cost: appends to the SQLite event log with every commit on disk
//! (`Durability::Full`, the default) against commits that reach the disk at checkpoints
//! (`Durability::Normal`), run side by side in alternating rounds on the same disk.
//!
//! The hub appends what one turn of its loop staged as one batch, so both one event per commit
//! (a quiet session) and a batch of 16 (a streaming one) are measured.
//!
//! ```text
//! cargo run --release -p proliferate-core --example durability [-- EVENTS ROUNDS DIRECTORY]
//! ```

use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use proliferate_core::store::{Durability, EventLog, SqliteStore, StoredEvent};

/// Events per second appending `events` events in batches of `batch`.
async fn appends_per_second(folder: &Path, durability: Durability, events: u64, batch: u64) -> f64 {
    let path = folder.join(format!("{durability:?}-{batch}-{}.db", rand_suffix()));
    let store = SqliteStore::open_with(&path, durability)
        .await
        .expect("open the store");
    let ttl = std::time::Duration::from_secs(3600);
    let lease = (store.acquire("ses_bench", "bench", ttl).await)
        .expect("lease the log")
        .expect("the log is free");
    let frame = Bytes::from(vec![b'x'; 300]);
    let started = Instant::now();
    let mut seq = 0;
    while seq < events {
        let page: Vec<StoredEvent> = (1..=batch)
            .map(|offset| StoredEvent {
                seq: seq + offset,
                frame: frame.clone(),
            })
            .collect();
        store.append(&lease, &page).await.expect("append");
        seq += batch;
    }
    seq as f64 / started.elapsed().as_secs_f64()
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let events: u64 = arguments
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let rounds: usize = arguments.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let folder = match arguments.get(2) {
        Some(folder) => tempfile::tempdir_in(folder),
        None => tempfile::tempdir(),
    }
    .expect("a scratch folder");
    println!("| events per commit | NORMAL events/s | FULL events/s | FULL / NORMAL |");
    println!("|---|---|---|---|");
    for batch in [1, 16] {
        let (mut normal, mut full) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            normal.push(appends_per_second(folder.path(), Durability::Normal, events, batch).await);
            full.push(appends_per_second(folder.path(), Durability::Full, events, batch).await);
        }
        let (normal, full) = (median(normal), median(full));
        println!(
            "| {batch} | {normal:.0} | {full:.0} | {:.2} |",
            full / normal
        );
    }
}
