//! One contract, every store: the same checks run against SQLite, PostgreSQL and the in-memory
//! store, so the fake the engine tests use answers as the real ones do.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proliferate_core::protocol::v1::*;
use proliferate_core::store::*;

trait Store: MetadataStore + EventLog + UsageLedger {}
impl<T: MetadataStore + EventLog + UsageLedger> Store for T {}

fn session(id: &str, organization_id: &str, created_at: i64) -> SessionRecord {
    SessionRecord {
        info: SessionInfo {
            id: id.into(),
            organization_id: organization_id.into(),
            created_at,
            status: SessionStatus::Pending,
            ..Default::default()
        },
        agent_session_id: None,
    }
}

fn prompt(session_id: &str, prompt_id: &str) -> PromptRecord {
    PromptRecord {
        session_id: session_id.into(),
        prompt_id: prompt_id.into(),
        admission: PromptAdmission {
            prompt_id: prompt_id.into(),
            ..Default::default()
        },
        state: PromptState::Queued,
        content: format!("content of {prompt_id}"),
        images: vec!["data:image/png;base64,AA==".into()],
        sender: Sender {
            subject: "ada".into(),
            source: "test".into(),
        },
    }
}

fn events(seqs: std::ops::RangeInclusive<u64>) -> Vec<StoredEvent> {
    seqs.map(|seq| StoredEvent {
        seq,
        frame: Bytes::from(format!("{{\"seq\":{seq}}}")),
    })
    .collect()
}

async fn sessions_keys_and_pages(store: &dyn Store) {
    let key = IdempotencyKey {
        key: "k1".into(),
        request_digest: "digest".into(),
    };
    let (created, new) = store
        .create_session(&session("ses_a", "acme", 10), Some(&key))
        .await
        .unwrap();
    assert!(new);
    assert_eq!(created.info.id, "ses_a");
    // The same key and request: the first session, not a new one.
    let (again, new) = store
        .create_session(&session("ses_b", "acme", 11), Some(&key))
        .await
        .unwrap();
    assert!(!new);
    assert_eq!(again.info.id, "ses_a");
    let other = IdempotencyKey {
        request_digest: "another".into(),
        ..key.clone()
    };
    let reused = store
        .create_session(&session("ses_c", "acme", 12), Some(&other))
        .await;
    assert!(matches!(reused, Err(StoreError::IdempotencyConflict)));
    let duplicate = store
        .create_session(&session("ses_a", "acme", 13), None)
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::Conflict(_))),
        "{duplicate:?}"
    );

    for (id, at) in [("ses_d", 20), ("ses_e", 20), ("ses_f", 30)] {
        store
            .create_session(&session(id, "acme", at), None)
            .await
            .unwrap();
    }
    store
        .create_session(&session("ses_x", "other", 40), None)
        .await
        .unwrap();
    let (first, cursor) = store.list_sessions("acme", 2, None).await.unwrap();
    let ids = |page: &[SessionRecord]| page.iter().map(|r| r.info.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&first), ["ses_f", "ses_e"]);
    let (second, cursor) = store
        .list_sessions("acme", 2, cursor.as_deref())
        .await
        .unwrap();
    assert_eq!(ids(&second), ["ses_d", "ses_a"]);
    assert_eq!(cursor, None);

    let mut record = store.session("ses_a").await.unwrap().unwrap();
    assert_eq!(record.info.head_seq, 0);
    record.info.status = SessionStatus::Running;
    record.agent_session_id = Some("agent_1".into());
    let lease = store.acquire("ses_a", "g1", TTL).await.unwrap().unwrap();
    store.update_session(&lease, &record).await.unwrap();
    let live = store.live_sessions().await.unwrap();
    assert_eq!(ids(&live), ["ses_a"]);
    assert_eq!(live[0].agent_session_id.as_deref(), Some("agent_1"));
    let unleased = store
        .acquire("ses_missing", "g1", TTL)
        .await
        .unwrap()
        .unwrap();
    let missing = store
        .update_session(&unleased, &session("ses_missing", "acme", 1))
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
    // A record written under a lease no longer held is refused.
    store.acquire("ses_a", "g2", TTL).await.unwrap();
    let newer = store.acquire("ses_a", "g1", TTL).await.unwrap().unwrap();
    record.info.title = Some("from an old lease".into());
    let stale = store.update_session(&lease, &record).await;
    assert!(matches!(stale, Err(StoreError::Fenced(_))), "{stale:?}");
    assert_eq!(
        store.session("ses_a").await.unwrap().unwrap().info.title,
        None
    );
    store.release(&newer).await.unwrap();
    assert_eq!(store.session("ses_missing").await.unwrap(), None);
}

async fn prompts_are_admitted_once(store: &dyn Store) {
    store
        .create_session(&session("ses_p", "acme", 1), None)
        .await
        .unwrap();
    let (admitted, new) = store.admit_prompt(&prompt("ses_p", "p1")).await.unwrap();
    assert!(new);
    assert!(!admitted.admission.duplicate);
    let (again, new) = store.admit_prompt(&prompt("ses_p", "p1")).await.unwrap();
    assert!(!new);
    assert!(again.admission.duplicate);
    assert_eq!(again.content, "content of p1");
    assert_eq!(again.images, prompt("ses_p", "p1").images);
    assert_eq!(again.sender.subject, "ada");
    store.admit_prompt(&prompt("ses_p", "p2")).await.unwrap();
    store.admit_prompt(&prompt("ses_p", "p3")).await.unwrap();
    let lease = store.acquire("ses_p", "g1", TTL).await.unwrap().unwrap();
    store
        .set_prompt_state(&lease, "p1", PromptState::Running)
        .await
        .unwrap();
    store
        .set_prompt_state(&lease, "p2", PromptState::Withdrawn)
        .await
        .unwrap();
    store.acquire("ses_p", "g1", TTL).await.unwrap();
    let stale = store
        .set_prompt_state(&lease, "p3", PromptState::Done)
        .await;
    assert!(matches!(stale, Err(StoreError::Fenced(_))), "{stale:?}");
    let pending = store.pending_prompts("ses_p").await.unwrap();
    let states: Vec<_> = pending
        .iter()
        .map(|p| (p.prompt_id.as_str(), p.state))
        .collect();
    assert_eq!(
        states,
        [("p1", PromptState::Running), ("p3", PromptState::Queued)]
    );
}

async fn the_log_appends_in_order_and_compacts(store: &dyn Store) {
    store
        .create_session(&session("ses_l", "acme", 1), None)
        .await
        .unwrap();
    assert_eq!(store.bounds("ses_l").await.unwrap(), None);
    let lease = store.acquire("ses_l", "g1", TTL).await.unwrap().unwrap();
    store.append(&lease, &events(1..=5)).await.unwrap();
    // A seq already there, or one past the head, fails the whole batch.
    let clash = store.append(&lease, &events(5..=7)).await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");
    let gap = store.append(&lease, &events(7..=8)).await;
    assert!(matches!(gap, Err(StoreError::Conflict(_))), "{gap:?}");
    assert_eq!(store.bounds("ses_l").await.unwrap(), Some((1, 5)));
    store.append(&lease, &events(6..=10)).await.unwrap();
    let page = store.read("ses_l", 3, 4).await.unwrap();
    assert_eq!(page, events(4..=7));
    assert_eq!(
        store.session("ses_l").await.unwrap().unwrap().info.head_seq,
        10
    );

    assert_eq!(store.compacted("ses_l").await.unwrap(), None);
    let transcript = Transcript {
        session_id: "ses_l".into(),
        through_seq: 10,
        ..Default::default()
    };
    store.compact(&lease, 6, &transcript).await.unwrap();
    assert_eq!(store.bounds("ses_l").await.unwrap(), Some((7, 10)));
    assert_eq!(store.read("ses_l", 0, 100).await.unwrap(), events(7..=10));
    assert_eq!(store.compacted("ses_l").await.unwrap(), Some(transcript));
    assert_eq!(
        store.session("ses_l").await.unwrap().unwrap().info.head_seq,
        10
    );

    store.admit_prompt(&prompt("ses_l", "p1")).await.unwrap();
    store.delete_session("ses_l").await.unwrap();
    assert_eq!(store.session("ses_l").await.unwrap(), None);
    assert_eq!(store.bounds("ses_l").await.unwrap(), None);
    assert_eq!(store.compacted("ses_l").await.unwrap(), None);
    assert!(store.pending_prompts("ses_l").await.unwrap().is_empty());
}

/// Longer than any test here takes: a lease that lapses on its own only where a test waits.
const TTL: Duration = Duration::from_secs(600);

async fn a_lease_fences_every_earlier_holder_and_lapses_unless_renewed(store: &dyn Store) {
    store
        .create_session(&session("ses_lease", "acme", 1), None)
        .await
        .unwrap();
    let first = store
        .acquire("ses_lease", "g1", TTL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.generation, 1);
    assert_eq!(
        store.acquire("ses_lease", "g2", TTL).await.unwrap(),
        None,
        "held by g1"
    );
    assert_eq!(
        store.holder("ses_lease").await.unwrap().as_deref(),
        Some("g1")
    );
    assert_eq!(store.holder("ses_unleased").await.unwrap(), None);
    store.append(&first, &events(1..=2)).await.unwrap();
    assert!(store.renew(&first, TTL).await.unwrap());

    // The same gateway taking it again (a new hub) fences out its earlier hub.
    let second = store
        .acquire("ses_lease", "g1", TTL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.generation, 2);
    let stale = store.append(&first, &events(3..=3)).await;
    assert!(matches!(stale, Err(StoreError::Fenced(_))), "{stale:?}");
    assert!(!store.renew(&first, TTL).await.unwrap());
    store.append(&second, &events(3..=3)).await.unwrap();

    // Released, it is anyone's at once, and the generation goes on rising.
    store.release(&first).await.unwrap();
    assert_eq!(
        store.acquire("ses_lease", "g2", TTL).await.unwrap(),
        None,
        "an old release frees nothing"
    );
    store.release(&second).await.unwrap();
    assert_eq!(store.holder("ses_lease").await.unwrap(), None, "released");
    let third = store
        .acquire("ses_lease", "g2", TTL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(third.generation, 3);
    let late = store.append(&second, &events(4..=4)).await;
    assert!(matches!(late, Err(StoreError::Fenced(_))), "{late:?}");
    store.append(&third, &events(4..=4)).await.unwrap();

    // A lease not renewed lapses, and another gateway takes over from the head.
    let short = Duration::from_secs(5);
    assert!(store.renew(&third, short).await.unwrap());
    assert_eq!(store.acquire("ses_lease", "g3", TTL).await.unwrap(), None);
    tokio::time::sleep(short + Duration::from_secs(1)).await;
    assert_eq!(store.holder("ses_lease").await.unwrap(), None, "lapsed");
    let fourth = store
        .acquire("ses_lease", "g3", TTL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fourth.generation, 4);
    assert_eq!(store.bounds("ses_lease").await.unwrap(), Some((1, 4)));
    store.append(&fourth, &events(5..=5)).await.unwrap();
    assert!(!store.renew(&third, TTL).await.unwrap());

    // A deleted session's log takes no more events.
    store.delete_session("ses_lease").await.unwrap();
    let gone = store.append(&fourth, &events(6..=6)).await;
    assert!(matches!(gone, Err(StoreError::Fenced(_))), "{gone:?}");
}

async fn snapshots_revocations_and_usage(store: &dyn Store) {
    let snapshot = SnapshotRecord {
        info: SnapshotInfo {
            snapshot_id: "snap_1".into(),
            session_id: "ses_s".into(),
            created_at: 5,
            size_bytes: 1234,
        },
        organization_id: "acme".into(),
    };
    store.insert_snapshot(&snapshot).await.unwrap();
    assert_eq!(store.snapshot("snap_1").await.unwrap(), Some(snapshot));
    assert_eq!(store.snapshot("snap_2").await.unwrap(), None);

    for (jti, expires_at) in [("old", 100), ("new", 300)] {
        let revoked = RevokedToken {
            jti: jti.into(),
            organization_id: "acme".into(),
            expires_at,
        };
        store.revoke_token(&revoked).await.unwrap();
    }
    let kept = store.revoked_tokens(200).await.unwrap();
    assert_eq!(
        kept.iter().map(|t| t.jti.as_str()).collect::<Vec<_>>(),
        ["new"]
    );

    let usage =
        |model: &str, session_id: &str, at: i64, input: u64, cost: Option<f64>| UsageRecord {
            session_id: session_id.into(),
            organization_id: "acme".into(),
            model: model.into(),
            at,
            usage: TokenUsage {
                input,
                output: 1,
                cost,
                ..Default::default()
            },
        };
    for record in [
        usage("a/small", "s1", 10, 5, Some(0.5)),
        usage("a/small", "s2", 20, 5, None),
        usage("b/large", "s1", 30, 100, Some(2.0)),
        usage("b/large", "s1", 40, 100, Some(2.0)),
    ] {
        store.record_usage(&record).await.unwrap();
    }
    let report = store
        .usage(&UsageFilter {
            organization_id: "acme".into(),
            to: Some(40),
            ..Default::default()
        })
        .await
        .unwrap();
    let models: Vec<_> = (report.by_model.iter())
        .map(|m| (m.model.as_str(), m.requests, m.usage.input, m.usage.cost))
        .collect();
    assert_eq!(
        models,
        [
            ("b/large", 1, 100, Some(2.0)),
            ("a/small", 2, 10, Some(0.5))
        ]
    );
    assert_eq!((report.requests, report.total.input), (3, 110));
    let one_session = UsageFilter {
        organization_id: "acme".into(),
        session_id: Some("s2".into()),
        ..Default::default()
    };
    assert_eq!(store.usage(&one_session).await.unwrap().requests, 1);
}

async fn contract(store: Arc<dyn Store>) {
    sessions_keys_and_pages(&*store).await;
    prompts_are_admitted_once(&*store).await;
    the_log_appends_in_order_and_compacts(&*store).await;
    a_lease_fences_every_earlier_holder_and_lapses_unless_renewed(&*store).await;
    snapshots_revocations_and_usage(&*store).await;
}

#[tokio::test]
async fn sqlite_keeps_the_store_contract() {
    let folder = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&folder.path().join("store.db"))
        .await
        .unwrap();
    contract(Arc::new(store)).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_keeps_the_store_contract() {
    let database = support::postgres::TestDatabase::create().await;
    let store = PostgresStore::connect(&database.url, 4).await.unwrap();
    contract(Arc::new(store.clone())).await;
    // Gateways starting together each find the schema in place, applied once.
    let again = PostgresStore::connect(&database.url, 1).await.unwrap();
    assert!(again.session("ses_a").await.unwrap().is_some());
    drop((store, again));
    database.drop_database().await;
}

#[tokio::test]
async fn the_memory_store_keeps_the_store_contract() {
    contract(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn the_memory_store_fails_as_an_unreachable_database_while_switched_off() {
    let store = MemoryStore::new();
    store.set_unavailable(Some("down for the test"));
    let error = store.session("ses_a").await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    store.set_unavailable(None);
    assert_eq!(store.session("ses_a").await.unwrap(), None);
}
