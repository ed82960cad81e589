//! How much latency the model proxy adds to each streamed chunk, side by side with a direct
//! connection to the same upstream. An upstream in this process streams chunks that carry the
//! time they were sent; a client reads them directly, then through the proxy (over loopback TCP,
//! as an unisolated sandbox reaches it), round after round, and reports p50 and p99 of
//! receive time minus send time for each. Results: `benchmarks/model_proxy.md`.
//!
//! `cargo run --release -p server-reference --example model_proxy_latency -- [rounds] [chunks]`

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::Body;
use axum::response::IntoResponse;
use futures::StreamExt;
use proliferate_core::GatewayError;
use proliferate_core::protocol::v1::{SessionInfo, TokenUsage, UsageReport};
use proliferate_core::sandbox::ChannelService;
use server_reference::model_proxy::policy::ModelPolicy;
use server_reference::model_proxy::upstream::{Key, Surface, Upstream};
use server_reference::model_proxy::{ModelProxy, ModelProxyService, ProxySessions};

/// The clock both sides read.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_micros() -> u64 {
    EPOCH.elapsed().as_micros() as u64
}

/// Sessions for the proxy: one, with nothing spent.
struct OneSession;

#[async_trait]
impl ProxySessions for OneSession {
    async fn sandbox_session(
        &self,
        token: &str,
        session_id: &str,
    ) -> Result<SessionInfo, GatewayError> {
        match token {
            "token" => Ok(SessionInfo {
                id: session_id.to_owned(),
                organization_id: "bench".into(),
                ..Default::default()
            }),
            _ => Err(GatewayError::Unauthenticated("bad token".into())),
        }
    }

    async fn spent(&self, _: &SessionInfo) -> Result<(UsageReport, UsageReport), GatewayError> {
        Ok(Default::default())
    }

    async fn record_usage(
        &self,
        _: &SessionInfo,
        _: &str,
        _: &TokenUsage,
    ) -> Result<(), GatewayError> {
        Ok(())
    }
}

/// `POST /v1/chat/completions`: `chunks` chunks 2 ms apart, each carrying its send time.
async fn upstream(chunks: usize) -> String {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || async move {
            let stream = futures::stream::iter(0..chunks).then(|_| async {
                tokio::time::sleep(Duration::from_millis(2)).await;
                let chunk = serde_json::json!({"choices": [{"delta": {"content": now_micros().to_string()}}]});
                Ok::<_, std::convert::Infallible>(format!("data: {chunk}\n\n"))
            });
            let end = futures::stream::iter([Ok(
                "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n".to_owned(),
            )]);
            ([("content-type", "text/event-stream")], Body::from_stream(stream.chain(end))).into_response()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/v1")
}

/// Serves the proxy to one session on a loopback port.
async fn proxy(base_url: &str) -> String {
    let proxy = Arc::new(ModelProxy::new(
        HashMap::from([(
            "bench".to_owned(),
            Upstream {
                base_url: base_url.to_owned(),
                surface: Surface::OpenAi,
                key: Some(Key::Value("upstream-key".into())),
            },
        )]),
        Default::default(),
        ModelPolicy::default(),
        Duration::from_secs(300),
    ));
    proxy.attach(Arc::new(OneSession));
    let service = ModelProxyService(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((connection, _)) = listener.accept().await {
            let service = service.clone();
            tokio::spawn(async move {
                service
                    .serve("ses_bench".into(), Box::new(connection))
                    .await
            });
        }
    });
    format!("http://{address}/bench")
}

/// One streamed request; the latency of each chunk in microseconds.
async fn latencies(client: &reqwest::Client, base_url: &str) -> Vec<u64> {
    let response = client
        .post(format!("{base_url}/chat/completions"))
        .bearer_auth("token")
        .json(&serde_json::json!({"model": "m", "stream": true, "messages": []}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let mut body = response.bytes_stream();
    let mut pending = String::new();
    let mut latencies = Vec::new();
    while let Some(chunk) = body.next().await {
        let received = now_micros();
        pending.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = pending.find("\n\n") {
            let event: String = pending.drain(..end + 2).collect();
            let Some(data) = event.trim().strip_prefix("data: ") else {
                continue;
            };
            let Ok(value) = serde_json::from_str::<serde_json::Value>(data) else {
                continue;
            };
            if let Some(sent) = value["choices"][0]["delta"]["content"]
                .as_str()
                .and_then(|text| text.parse::<u64>().ok())
            {
                latencies.push(received.saturating_sub(sent));
            }
        }
    }
    latencies
}

fn percentile(sorted: &[u64], fraction: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut arguments = std::env::args()
        .skip(1)
        .map(|argument| argument.parse::<usize>().unwrap());
    let rounds = arguments.next().unwrap_or(5);
    let chunks = arguments.next().unwrap_or(1000);
    LazyLock::force(&EPOCH);
    let direct = upstream(chunks).await;
    let proxied = proxy(&direct).await;
    let client = reqwest::Client::new();
    let (mut of_direct, mut of_proxy) = (Vec::new(), Vec::new());
    // A warm-up request each, then alternate so both see the same machine.
    latencies(&client, &direct).await;
    latencies(&client, &proxied).await;
    for _ in 0..rounds {
        of_direct.extend(latencies(&client, &direct).await);
        of_proxy.extend(latencies(&client, &proxied).await);
    }
    of_direct.sort_unstable();
    of_proxy.sort_unstable();
    println!("{rounds} rounds of {chunks} chunks 2 ms apart; latency per chunk in microseconds");
    println!("| path | chunks | p50 | p99 |");
    println!("|---|---|---|---|");
    for (name, sorted) in [("direct", &of_direct), ("through the proxy", &of_proxy)] {
        println!(
            "| {name} | {} | {} | {} |",
            sorted.len(),
            percentile(sorted, 0.5),
            percentile(sorted, 0.99)
        );
    }
    println!(
        "| added by the proxy | | {} | {} |",
        percentile(&of_proxy, 0.5) as i64 - percentile(&of_direct, 0.5) as i64,
        percentile(&of_proxy, 0.99) as i64 - percentile(&of_direct, 0.99) as i64
    );
}
