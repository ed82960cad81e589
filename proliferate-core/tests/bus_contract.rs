//! One contract for every bus: what is published after a subscription is made reaches it, in
//! order, on its subject alone, and nothing reaches a dropped one. The Redis bus runs against
//! the machine's Redis (`PROLIFERATE_TEST_REDIS`, default `redis://127.0.0.1:6379/`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proliferate_core::bus::{Bus, BusSubscription, MemoryBus};

/// Longer than any delivery takes on a busy machine; a wait that runs out means it never came.
const PATIENCE: Duration = Duration::from_secs(30);

async fn received(subscription: &mut BusSubscription) -> Bytes {
    tokio::time::timeout(PATIENCE, subscription.next())
        .await
        .expect("a message before the patience ran out")
        .expect("the bus is open")
}

/// A subject no other run of these tests uses.
fn subject(name: &str) -> String {
    format!("test.{name}.{}", uuid::Uuid::now_v7().simple())
}

async fn contract(bus: Arc<dyn Bus>) {
    let (orders, others) = (subject("orders"), subject("others"));
    let mut first = bus.subscribe(&orders).await.unwrap();
    let mut second = bus.subscribe(&orders).await.unwrap();
    let mut elsewhere = bus.subscribe(&others).await.unwrap();
    for n in 0..100u32 {
        bus.publish(&orders, Bytes::from(n.to_be_bytes().to_vec()));
    }
    bus.publish(&others, Bytes::from_static(b"other"));
    for subscription in [&mut first, &mut second] {
        for n in 0..100u32 {
            let message = received(subscription).await;
            assert_eq!(message, Bytes::from(n.to_be_bytes().to_vec()), "in order");
        }
    }
    assert_eq!(received(&mut elsewhere).await, Bytes::from_static(b"other"));

    // A dropped subscription hears nothing more; the one left still does.
    drop(first);
    bus.publish(&orders, Bytes::from_static(b"after"));
    assert_eq!(received(&mut second).await, Bytes::from_static(b"after"));
    let nothing = tokio::time::timeout(Duration::from_millis(200), elsewhere.next()).await;
    assert!(
        nothing.is_err(),
        "nothing was published on its subject: {nothing:?}"
    );
}

#[tokio::test]
async fn the_memory_bus_keeps_the_bus_contract() {
    contract(Arc::new(MemoryBus::new())).await;
}

#[tokio::test]
async fn the_memory_bus_drops_what_its_switch_says() {
    let bus = MemoryBus::new();
    let (kept, lost) = (subject("kept"), subject("lost"));
    let (mut kept_messages, mut lost_messages) = (
        bus.subscribe(&kept).await.unwrap(),
        bus.subscribe(&lost).await.unwrap(),
    );
    bus.drop_messages(Some(&lost));
    bus.publish(&lost, Bytes::from_static(b"dropped"));
    bus.publish(&kept, Bytes::from_static(b"kept"));
    bus.drop_messages(None);
    bus.publish(&lost, Bytes::from_static(b"heard"));
    assert_eq!(
        received(&mut kept_messages).await,
        Bytes::from_static(b"kept")
    );
    assert_eq!(
        received(&mut lost_messages).await,
        Bytes::from_static(b"heard")
    );
    assert_eq!(bus.dropped(), 1);
}

#[cfg(feature = "redis")]
fn redis_url() -> String {
    std::env::var("PROLIFERATE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// The ids of the connections to Redis that are subscribed to something.
#[cfg(feature = "redis")]
async fn subscribed_clients(redis: &mut redis::aio::MultiplexedConnection) -> Vec<String> {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(redis)
        .await
        .unwrap();
    (list.lines())
        .filter(|line| !line.contains(" sub=0 ") || !line.contains(" psub=0 "))
        .filter_map(|line| line.split(' ').find_map(|field| field.strip_prefix("id=")))
        .map(str::to_owned)
        .collect()
}

/// In one test, so that killing this bus's connection cannot touch another test's.
#[cfg(feature = "redis")]
#[tokio::test]
async fn the_redis_bus_keeps_the_bus_contract_and_comes_back_when_its_connection_is_killed() {
    use proliferate_core::bus::redis::RedisBus;
    let bus = RedisBus::connect(&redis_url())
        .await
        .expect("the machine's Redis answers");
    contract(Arc::new(bus)).await;

    let client = redis::Client::open(redis_url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let before = subscribed_clients(&mut admin).await;
    let bus = RedisBus::connect(&redis_url()).await.unwrap();
    let topic = subject("killed");
    let mut messages = bus.subscribe(&topic).await.unwrap();
    let ours: Vec<String> = (subscribed_clients(&mut admin).await.into_iter())
        .filter(|id| !before.contains(id))
        .collect();
    assert!(!ours.is_empty(), "the bus holds a subscribed connection");
    for id in &ours {
        let killed: u64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query_async(&mut admin)
            .await
            .unwrap();
        assert_eq!(killed, 1, "connection {id} was cut");
    }
    // What is published while it reconnects may be lost; once back, it hears again.
    let started = std::time::Instant::now();
    loop {
        assert!(started.elapsed() < PATIENCE, "the bus came back");
        bus.publish(&topic, Bytes::from_static(b"again"));
        let heard = tokio::time::timeout(Duration::from_millis(500), messages.next()).await;
        if let Ok(Some(message)) = heard {
            assert_eq!(message, Bytes::from_static(b"again"));
            break;
        }
    }
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_redis_bus_that_cannot_be_reached_says_so() {
    let refused = proliferate_core::bus::redis::RedisBus::connect("redis://127.0.0.1:1/").await;
    let error = refused.err().expect("nothing listens on port 1");
    assert!(error.to_string().contains("unreachable"), "{error}");
}
