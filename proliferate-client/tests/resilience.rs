//! The client under broken networks, restarted servers and expiring tokens.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use proliferate_client::protocol::v1::*;
use proliferate_client::{
    Auth, Client, ClientError, ConnectionOptions, PromptOptions, TokenSource, Update,
};
use support::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP proxy whose connections can all be cut at once.
struct Proxy {
    address: std::net::SocketAddr,
    connections: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let connections: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let tracked = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tracked.lock().unwrap().push(task);
            }
        });
        Self {
            address,
            connections,
        }
    }

    /// Kills every open connection, as a network failure would.
    fn cut(&self) {
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_again_and_again_still_yields_every_seq_once() {
    let server = TestServer::start().await;
    let proxy = Proxy::start(server.address()).await;
    let direct = client(&server.url());
    let session = direct
        .create_session(&CreateSessionRequest::default())
        .await
        .unwrap();
    let through_proxy = client(&format!("http://{}", proxy.address));
    let mut connection = through_proxy.connect(
        &session.id,
        ConnectionOptions {
            reconnect: proliferate_client::ReconnectPolicy {
                initial_delay: std::time::Duration::from_millis(50),
                max_delay: std::time::Duration::from_millis(400),
                max_attempts: None,
            },
            ..Default::default()
        },
    );
    until_running(&mut connection).await;
    let start = connection.last_seq();
    direct
        .send_message(
            &session.id,
            &SendMessageRequest {
                prompt_id: Some("prm_cut".into()),
                content: long_prompt(200, 15),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let mut events = Vec::new();
    let mut reconnects = 0;
    let mut cuts = tokio::time::interval(Duration::from_millis(400));
    cuts.reset();
    loop {
        tokio::select! {
            _ = cuts.tick() => proxy.cut(),
            update = connection.next() => match update.expect("open").expect("no error") {
                Update::Event(envelope) => {
                    let done = ends_turn(&envelope, "prm_cut");
                    events.push(envelope);
                    if done {
                        break;
                    }
                }
                Update::Reconnecting { .. } => reconnects += 1,
                _ => {}
            },
        }
    }
    assert!(reconnects >= 3, "the connection was cut {reconnects} times");
    assert_dense(&events, start);
    let deltas: String = events
        .iter()
        .filter_map(|envelope| match &envelope.event {
            Event::TextDelta(delta) => Some(delta.delta.as_str()),
            _ => None,
        })
        .collect();
    let words: Vec<String> = (1..=200).map(|word| format!("w{word}")).collect();
    assert_eq!(deltas, words.join(" "), "the text arrived whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_is_resumed_from_the_cursor() {
    let mut server = TestServer::start().await;
    let client = client(&server.url());
    let (_, mut connection) = running_session(&client).await;
    let start = connection.last_seq();
    connection
        .send_prompt(
            long_prompt(150, 30),
            PromptOptions {
                prompt_id: Some("prm_restart".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut events = events_until(&mut connection, |envelope| {
        matches!(envelope.event, Event::TextDelta(_))
    })
    .await;

    server.restart().await;
    events.extend(
        events_until(&mut connection, |envelope| {
            ends_turn(envelope, "prm_restart")
        })
        .await,
    );
    connection
        .send_prompt(
            "[[say:after the restart]]",
            PromptOptions {
                prompt_id: Some("prm_after".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    events.extend(events_until(&mut connection, |envelope| ends_turn(envelope, "prm_after")).await);
    assert_dense(&events, start);
    assert!(events.iter().any(|envelope| matches!(&envelope.event, Event::TurnCancelled(turn) if turn.prompt_id == "prm_restart")));
    assert!(events.iter().any(|envelope| matches!(&envelope.event, Event::TurnCompleted(turn) if turn.prompt_id == "prm_after")));
}

/// Hands out an expired token until asked to refresh.
struct ExpiringSource {
    refreshes: AtomicUsize,
}

#[async_trait]
impl TokenSource for ExpiringSource {
    async fn token(&self, refresh: bool) -> Result<String, ClientError> {
        if refresh {
            self.refreshes.fetch_add(1, Ordering::SeqCst);
            return Ok(token("ada", "acme", Duration::from_secs(3600)));
        }
        let mut expired = proliferate_core::auth::claims(
            "ada",
            "acme",
            &[Scope::Read, Scope::Write],
            Duration::ZERO,
        );
        expired.exp -= 60;
        Ok(proliferate_core::auth::Authenticator::new(SECRET, SERVICE_SECRET).mint(&expired))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refreshed_through_the_token_source() {
    let server = TestServer::start().await;
    let source = Arc::new(ExpiringSource {
        refreshes: AtomicUsize::new(0),
    });
    let client = Client::builder(server.url())
        .auth(Auth::Source(source.clone()))
        .build()
        .unwrap();
    let session = client
        .create_session(&CreateSessionRequest::default())
        .await
        .unwrap();
    assert_eq!(
        source.refreshes.load(Ordering::SeqCst),
        1,
        "one refresh for the HTTP call"
    );

    let connection = client.connect(&session.id, ConnectionOptions::default());
    let Some(Ok(Update::Connected(welcome))) = connection.next().await else {
        panic!("the socket connected after a refresh");
    };
    assert_eq!(welcome.principal.subject, "ada");
    assert_eq!(
        source.refreshes.load(Ordering::SeqCst),
        2,
        "one refresh for the socket"
    );

    let fixed = Client::builder(server.url())
        .token(token("ada", "acme", Duration::ZERO))
        .build()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let error = fixed.get_session(&session.id).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::TokenExpired);
    let error = support::client(&server.url())
        .get_session("ses_missing")
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::NotFound);
    assert!(matches!(
        error,
        ClientError::Api {
            status: Some(404),
            ..
        }
    ));
}
