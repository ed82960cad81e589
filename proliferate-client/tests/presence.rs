//! Presence as a connection's updates: the welcome's list, typed changes, and the full list on
//! request.

mod support;

use proliferate_client::protocol::v1::*;
use proliferate_client::{Connection, ConnectionOptions, Update};
use support::*;

/// The next update that `pick` takes, skipping the others.
async fn next_of<T>(connection: &Connection, mut pick: impl FnMut(Update) -> Option<T>) -> T {
    loop {
        if let Some(picked) = pick(next_update(connection).await) {
            return picked;
        }
    }
}

/// The connection's welcome.
async fn welcome_of(connection: &Connection) -> Welcome {
    next_of(connection, |update| match update {
        Update::Connected(welcome) => Some(welcome),
        _ => None,
    })
    .await
}

fn ids(entries: &[PresenceEntry]) -> Vec<String> {
    let mut ids: Vec<String> = entries.iter().map(|e| e.connection_id.clone()).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_leaves_and_the_full_list_arrive_as_typed_updates() {
    let server = TestServer::start().await;
    let client = client(&server.url());
    let session = client
        .create_session(&CreateSessionRequest::default())
        .await
        .unwrap();
    let first = client.connect(&session.id, ConnectionOptions::default());
    let first_welcome = welcome_of(&first).await;
    let first_id = first_welcome.connection_id.clone();
    assert_eq!(ids(&first_welcome.connections), [first_id.as_str()]);

    let second = client.connect(&session.id, ConnectionOptions::default());
    let second_welcome = welcome_of(&second).await;
    let second_id = second_welcome.connection_id.clone();
    let mut both = vec![first_id.clone(), second_id.clone()];
    both.sort();
    assert_eq!(ids(&second_welcome.connections), both);

    // The first hears of the second as a change, in JSON as bindings see it too.
    let joined = next_of(&first, |update| match update {
        Update::PresenceChanged(change)
            if change.joined.iter().any(|e| e.connection_id == second_id) =>
        {
            Some(change)
        }
        _ => None,
    })
    .await;
    let json = serde_json::to_value(Update::PresenceChanged(joined.clone())).unwrap();
    assert_eq!(json["type"], "presence_changed");
    assert_eq!(
        json["presence_changed"]["joined"],
        serde_json::to_value(&joined.joined).unwrap()
    );

    first.request_presence().await.unwrap();
    let everyone = next_of(&first, |update| match update {
        Update::Presence(presence) => Some(presence),
        _ => None,
    })
    .await;
    assert_eq!(ids(&everyone.connections), both);

    second.close().await;
    let left = next_of(&first, |update| match update {
        Update::PresenceChanged(change) if change.left.contains(&second_id) => Some(change),
        _ => None,
    })
    .await;
    assert!(left.joined.is_empty(), "{left:?}");
}
