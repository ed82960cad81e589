//! The model proxy (`docs/security.md`, *Model keys*): a real OpenCode in a real bubblewrap
//! sandbox reaches its model only through the gateway, with a sandbox token; the provider's key
//! (the scripted model plays a provider that requires one) stays in the gateway; usage is metered
//! and budgets hold.

mod support;

use std::path::Path;
use std::time::Duration;

use proliferate_core::protocol::v1::*;
use reqwest::Method;
use scripted_model::ScriptedModel;
use serde_json::{Value, json};
use support::*;

/// The OpenCode provider configuration of a scripted model that requires `SCRIPTED_KEY`.
fn providers(model: &ScriptedModel) -> String {
    json!({
        "scripted": {
            "npm": "@ai-sdk/openai-compatible",
            "name": "Scripted model",
            "options": { "baseURL": model.base_url(), "apiKey": "{env:SCRIPTED_KEY}" },
            "models": {
                "scripted-model": {
                    "name": "Scripted model",
                    "tool_call": true,
                    "limit": { "context": 128000, "output": 4096 },
                },
                "other-model": {
                    "name": "Another scripted model",
                    "tool_call": true,
                    "limit": { "context": 128000, "output": 4096 },
                },
            },
        },
    })
    .to_string()
}

/// A key no one could guess, to look for.
fn unique_key() -> String {
    format!("sk-test-{}", uuid::Uuid::new_v4().simple())
}

struct Rig {
    model: ScriptedModel,
    server: TestServer,
    key: String,
}

async fn rig(extra: &[&str]) -> Rig {
    let key = unique_key();
    let model = ScriptedModel::start_requiring_key(&key).await.unwrap();
    let providers = providers(&model);
    let mut arguments = vec![
        "--model",
        "scripted/scripted-model",
        "--providers",
        &providers,
    ];
    arguments.extend_from_slice(extra);
    let server = TestServer::start_with_environment(&arguments, &[("SCRIPTED_KEY", &key)]);
    Rig { model, server, key }
}

/// Every event so far.
async fn events(api: &Api, session_id: &str) -> Vec<Event> {
    let (status, page) = api
        .call(
            Method::GET,
            &format!("/v1/sessions/{session_id}/events?limit=5000"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    serde_json::from_value::<EventPage>(page)
        .unwrap()
        .events
        .into_iter()
        .map(|envelope| envelope.event)
        .collect()
}

/// Waits until `prompt_id`'s turn ended; returns the log.
async fn turn(api: &Api, session_id: &str, prompt_id: &str) -> Vec<Event> {
    for _ in 0..1200 {
        let log = events(api, session_id).await;
        if log.iter().any(|event| {
            matches!(event, Event::TurnCompleted(turn) if turn.prompt_id == prompt_id)
                || matches!(event, Event::TurnCancelled(turn) if turn.prompt_id == prompt_id)
        }) {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{prompt_id} never ended: {:#?}",
        events(api, session_id).await
    );
}

/// Whether the agent said `text` in `log`.
fn says(log: &[Event], text: &str) -> bool {
    log.iter()
        .any(|event| matches!(event, Event::TextCompleted(said) if said.text.contains(text)))
}

fn errors(log: &[Event]) -> Vec<&AgentError> {
    log.iter()
        .filter_map(|event| match event {
            Event::AgentError(error) => Some(error),
            _ => None,
        })
        .collect()
}

/// The files under `folder` that contain `needle` (links are not followed). The session's disk
/// image is skipped: its files are read through its mount, which is under the same folder.
fn found_in_files(folder: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(folder) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            found.extend(found_in_files(&path, needle));
        } else if kind.is_file()
            && entry
                .metadata()
                .is_ok_and(|metadata| metadata.len() < 64 << 20)
            && let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|window| window == needle)
        {
            found.push(path.display().to_string());
        }
    }
    found
}

/// The processes whose environment contains `needle`.
fn found_in_environments(needle: &[u8]) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|window| window == needle))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_runs_through_the_proxy_and_the_key_stays_in_the_gateway() {
    let rig = rig(&[]).await;
    let token = token("ada", "acme-proxy");
    let api = Api::new(&rig.server, &token);
    let session = api.create_session().await;
    let other = api.create_session().await;
    api.prompt(&session.id, "prm_1", "[[say:answered through the proxy]]")
        .await;
    let log = turn(&api, &session.id, "prm_1").await;
    assert!(errors(&log).is_empty(), "{log:#?}");
    assert!(says(&log, "answered through the proxy"), "{log:#?}");
    assert!(
        rig.model.reported().completion_tokens > 0,
        "the provider answered, so it got its key"
    );

    // The key is nowhere in the sandbox: not in any process's environment but the gateway's...
    let key = rig.key.as_bytes();
    let holders = found_in_environments(key);
    assert_eq!(
        holders,
        [rig.server.pid()],
        "control: the gateway holds the key; nothing else does"
    );
    // ...not in the session's files (its home, workspace and agent log)...
    let session_folder = rig.server.data_dir.join("sessions").join(&session.id);
    assert!(
        session_folder.join("agent.log").exists(),
        "control: the folder is there"
    );
    assert_eq!(found_in_files(&session_folder, key), Vec::<String>::new());
    // ...not in the agent's configuration, which names the proxy and the sandbox token...
    let (status, config) = api
        .call(
            Method::GET,
            &format!("/v1/sessions/{}/agent/config", session.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{config}");
    let options = &config["provider"]["scripted"]["options"];
    assert!(
        options["baseURL"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:4100/"),
        "{config}"
    );
    let sandbox_token = options["apiKey"].as_str().unwrap().to_owned();
    assert!(!config.to_string().contains(&rig.key), "{config}");
    // ...and not in the gateway's logs, which do record the request.
    let log_text = rig.server.log();
    assert!(log_text.contains("model request"), "control: {log_text}");
    assert!(!log_text.contains(&rig.key));
    assert!(!log_text.contains(&sandbox_token));

    // The sandbox token is bound to its session and its run.
    let with_sandbox_token = Api::new(&rig.server, &sandbox_token);
    let own = format!("/v1/sessions/{}/events", session.id);
    assert_eq!(
        with_sandbox_token.call(Method::GET, &own, None).await.0,
        200
    );
    let others = format!("/v1/sessions/{}/events", other.id);
    assert_eq!(
        with_sandbox_token.call(Method::GET, &others, None).await.0,
        401
    );
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/v1/sessions/{}/pause", session.id),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        with_sandbox_token.call(Method::GET, &own, None).await.0,
        401,
        "revoked when its run ends"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_metered_and_a_spent_budget_refuses_the_next_request() {
    let rig = rig(&["--session-token-budget", "1"]).await;
    let token = token("ada", "acme-budget");
    let api = Api::new(&rig.server, &token);
    let session = api.create_session().await;
    api.prompt(&session.id, "prm_1", "[[say:first]]").await;
    turn(&api, &session.id, "prm_1").await;
    api.prompt(&session.id, "prm_2", "[[say:second]]").await;
    let log = turn(&api, &session.id, "prm_2").await;
    let refused: Vec<_> = errors(&log)
        .into_iter()
        .filter(|error| error.message.contains("token budget is spent"))
        .collect();
    assert!(!refused.is_empty(), "{log:#?}");
    assert_eq!(refused[0].kind, "model", "{refused:?}");
    assert_eq!(
        api.session(&session.id).await.status,
        SessionStatus::Running,
        "the session stays usable"
    );

    // What was metered is what the provider reported.
    let reported = rig.model.reported();
    assert!(reported.prompt_tokens > 0, "control: the provider answered");
    let (status, usage) = api
        .call(
            Method::GET,
            &format!("/v1/sessions/{}/usage", session.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{usage}");
    let usage: UsageReport = serde_json::from_value(usage).unwrap();
    assert_eq!(
        usage.total.input + usage.total.cache_read,
        reported.prompt_tokens
    );
    assert_eq!(
        usage.total.output + usage.total.reasoning,
        reported.completion_tokens
    );
    assert_eq!(usage.by_model.len(), 1);
    assert_eq!(usage.by_model[0].model, "scripted/scripted-model");
    let (status, organization) = api.call(Method::GET, "/v1/usage", None).await;
    assert_eq!(status, 200, "{organization}");
    let organization: UsageReport = serde_json::from_value(organization).unwrap();
    assert_eq!(organization.total, usage.total);
    let (status, empty) = api.call(Method::GET, "/v1/usage?from=0&to=1", None).await;
    assert_eq!(status, 200);
    assert_eq!(empty["requests"], 0, "{empty}");
    let metrics = reqwest::get(format!("{}/metrics", rig.server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "proliferate_model_tokens_total{{kind=\"input\"}} {}",
            usage.total.input
        )),
        "{metrics}"
    );
    assert!(metrics.contains("proliferate_model_requests_total{outcome=\"refused\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_errors_reach_clients_and_a_cancel_aborts_the_upstream_request() {
    let rig = rig(&[]).await;
    let api = Api::new(&rig.server, &token("ada", "acme-errors"));
    let session = api.create_session().await;
    // A rate limit: the agent retries, and says so with the provider's message.
    api.prompt(&session.id, "prm_limited", "[[fail:429]]").await;
    let mut retrying = Vec::new();
    for _ in 0..600 {
        retrying = events(&api, &session.id).await;
        if errors(&retrying)
            .iter()
            .any(|error| error.kind == "model_retrying")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        errors(&retrying)
            .iter()
            .any(|error| error.kind == "model_retrying"
                && error.message.contains("scripted failure")),
        "{retrying:#?}"
    );
    api.cancel(&session.id).await;
    turn(&api, &session.id, "prm_limited").await;
    api.prompt(&session.id, "prm_fail", "[[fail:500]]").await;
    let log = turn(&api, &session.id, "prm_fail").await;
    let failures = errors(&log);
    assert!(
        failures
            .iter()
            .any(|error| error.kind.starts_with("model")
                && error.message.contains("scripted failure")),
        "the provider's own message reaches clients: {failures:?}"
    );

    // A cancel mid-stream closes the agent's request, and with it the provider's.
    let before = rig.model.reported().abandoned_streams;
    api.prompt(&session.id, "prm_stall", "[[stall]]").await;
    for _ in 0..600 {
        if rig
            .model
            .requests()
            .iter()
            .any(|request| request.to_string().contains("[[stall]]"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(api.cancel(&session.id).await, "a turn was running");
    turn(&api, &session.id, "prm_stall").await;
    let mut abandoned = before;
    for _ in 0..300 {
        abandoned = rig.model.reported().abandoned_streams;
        if abandoned > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(abandoned > before, "the provider saw its stream closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_gone_silent_mid_stream_is_given_up_on_and_clients_are_told() {
    let rig = rig(&["--model-read-timeout-secs", "2"]).await;
    let api = Api::new(&rig.server, &token("ada", "acme-silent"));
    let session = api.create_session().await;
    // The provider sends one chunk, then nothing.
    api.prompt(&session.id, "prm_stall", "[[stall]]").await;
    let mut log = Vec::new();
    for _ in 0..1200 {
        log = events(&api, &session.id).await;
        if errors(&log)
            .iter()
            .any(|error| error.message.contains("went silent"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let silent: Vec<_> = errors(&log)
        .into_iter()
        .filter(|error| error.message.contains("went silent"))
        .collect();
    assert!(
        silent.iter().any(|error| error.kind.starts_with("model")
            && error.prompt_id.as_deref() == Some("prm_stall")),
        "{log:#?}"
    );
    assert!(
        rig.model.reported().abandoned_streams > 0,
        "the proxy closed the provider's stream"
    );
    api.cancel(&session.id).await;
    turn(&api, &session.id, "prm_stall").await;
    api.prompt(&session.id, "prm_after", "[[say:answered again]]")
        .await;
    let log = turn(&api, &session.id, "prm_after").await;
    assert!(
        says(&log, "answered again"),
        "the session stays usable: {log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_runs_on_the_model_it_names_and_unavailable_models_are_refused() {
    let rig = rig(&[
        "--allowed-models",
        "scripted/scripted-model,scripted/other-model",
    ])
    .await;
    let api = Api::new(&rig.server, &token("ada", "acme-models"));
    let create = |model: &str| {
        api.call(
            Method::POST,
            "/v1/sessions",
            Some(json!({"title": "models", "model": model})),
        )
    };
    for refused in ["scripted/forbidden-model", "elsewhere/model", "no-slash"] {
        let (status, problem) = create(refused).await;
        assert_eq!(
            (status, &problem["code"]),
            (400, &json!("bad_request")),
            "{refused}: {problem}"
        );
    }
    let default = api.create_session().await;
    assert_eq!(default.model.as_deref(), Some("scripted/scripted-model"));
    let (status, chosen) = create("scripted/other-model").await;
    assert_eq!(status, 201, "{chosen}");
    let chosen: SessionInfo = serde_json::from_value(chosen).unwrap();
    assert_eq!(chosen.model.as_deref(), Some("scripted/other-model"));
    api.prompt(&chosen.id, "prm_other", "[[say:from the other model]]")
        .await;
    let log = turn(&api, &chosen.id, "prm_other").await;
    assert!(errors(&log).is_empty(), "{log:#?}");
    let models: Vec<String> = rig
        .model
        .requests()
        .iter()
        .filter_map(|request| request["model"].as_str().map(str::to_owned))
        .collect();
    assert!(
        models.iter().any(|model| model == "other-model"),
        "{models:?}"
    );
    assert!(
        !models.iter().any(|model| model == "scripted-model"),
        "control: only the chosen session ran: {models:?}"
    );
}

/// What the tool calls of `log` returned, in order.
fn tool_outputs(log: &[Event]) -> Vec<&str> {
    log.iter()
        .filter_map(|event| match event {
            Event::ToolCompleted(tool) => Some(tool.output.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_holding_its_token_reaches_only_allowed_models_and_only_through_its_lease() {
    // A heartbeat a second: the sandbox token's lease is three seconds, renewed on each beat.
    let rig = rig(&[
        "--allowed-models",
        "scripted/scripted-model",
        "--heartbeat-secs",
        "1",
    ])
    .await;
    let api = Api::new(&rig.server, &token("ada", "acme-hostile"));
    let session = api.create_session().await;
    // The agent calls the proxy itself with its own token: an allowed model (the control that
    // the probe reaches the proxy), a model not allowed, and a made-up token.
    let probe = r#"for pair in "scripted-model:$PROLIFERATE_SANDBOX_TOKEN" "other-model:$PROLIFERATE_SANDBOX_TOKEN" "scripted-model:made-up"; do curl -s -o /dev/null -w "${pair%%:*}/${pair#*:}=%{http_code} " -H "Authorization: Bearer ${pair#*:}" -H 'content-type: application/json' -d "{\"model\":\"${pair%%:*}\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" "$PROLIFERATE_MODEL_PROXY/scripted/chat/completions"; done"#;
    api.prompt(&session.id, "prm_probe", &format!("[[bash:{probe}]]"))
        .await;
    let log = turn(&api, &session.id, "prm_probe").await;
    let outputs = tool_outputs(&log);
    assert_eq!(outputs.len(), 1, "{log:#?}");
    let statuses: Vec<&str> = outputs[0]
        .split_whitespace()
        .map(|entry| entry.rsplit('=').next().unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["200", "403", "401"], "{}", outputs[0]);
    assert!(
        !outputs[0].contains(&rig.key),
        "the key never reached the sandbox"
    );

    // The token outlives many leases while its session runs: the hub renews it.
    tokio::time::sleep(Duration::from_secs(7)).await;
    api.prompt(&session.id, "prm_later", "[[say:still served]]")
        .await;
    let log = turn(&api, &session.id, "prm_later").await;
    assert!(errors(&log).is_empty(), "{log:#?}");
    assert!(says(&log, "still served"), "{log:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_priced_model_is_costed_and_a_spent_cost_budget_refuses_the_next_request() {
    // A dollar a token, and half a dollar to spend: the first request spends it.
    let rig = rig(&[
        "--model-prices",
        r#"{"scripted/scripted-model": {"input": 1000000, "output": 1000000}}"#,
        "--session-cost-budget",
        "0.5",
    ])
    .await;
    let api = Api::new(&rig.server, &token("ada", "acme-cost"));
    let session = api.create_session().await;
    let usage = || async {
        let path = format!("/v1/sessions/{}/usage", session.id);
        let (status, usage) = api.call(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{usage}");
        serde_json::from_value::<UsageReport>(usage).unwrap()
    };
    api.prompt(&session.id, "prm_1", "[[say:first]]").await;
    turn(&api, &session.id, "prm_1").await;
    let served = rig.model.requests().len();
    let spent = usage().await;
    assert!(served > 0, "control: the first requests pass");
    assert_eq!(spent.requests, served as u64, "{spent:?}");
    let billed = spent.total.input + spent.total.output + spent.total.reasoning;
    assert_eq!(spent.total.cost, Some(billed as f64), "{spent:?}");
    assert!(billed as f64 > 0.5, "{spent:?}");

    api.prompt(&session.id, "prm_2", "[[say:second]]").await;
    let log = turn(&api, &session.id, "prm_2").await;
    let refused: Vec<_> = errors(&log)
        .into_iter()
        .filter(|error| error.prompt_id.as_deref() == Some("prm_2"))
        .collect();
    assert!(
        !refused.is_empty()
            && refused.iter().all(|error| error.kind == "model"
                && error.message.contains("session's cost budget is spent")),
        "refused once, not retried: {refused:#?}"
    );
    assert_eq!(
        rig.model.requests().len(),
        served,
        "nothing more reached the provider"
    );
    assert_eq!(
        api.session(&session.id).await.status,
        SessionStatus::Running,
        "the session stays usable"
    );
}

/// A provider that speaks Anthropic Messages (`POST /v1/messages`, `x-api-key`, server-sent
/// events as Anthropic documents them), answering every request with one short text.
struct AnthropicUpstream {
    base_url: String,
    /// Input and output tokens reported, summed.
    reported: std::sync::Arc<std::sync::Mutex<(u64, u64)>>,
}

async fn anthropic_upstream(key: String) -> AnthropicUpstream {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    let reported = std::sync::Arc::new(std::sync::Mutex::new((0u64, 0u64)));
    let counter = reported.clone();
    let app = axum::Router::new().route(
        "/v1/messages",
        axum::routing::post(move |headers: HeaderMap, body: axum::Json<Value>| {
            let (key, counter) = (key.clone(), counter.clone());
            async move {
                if headers.get("x-api-key").and_then(|value| value.to_str().ok()) != Some(&key) {
                    let error = json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}});
                    return (StatusCode::UNAUTHORIZED, axum::Json(error)).into_response();
                }
                let (input, output) = (25u64, 7u64);
                {
                    let mut totals = counter.lock().unwrap();
                    totals.0 += input;
                    totals.1 += output;
                }
                let text = "anthropic says hi";
                if body["stream"] != true {
                    return axum::Json(json!({
                        "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                        "content": [{"type": "text", "text": text}],
                        "stop_reason": "end_turn", "stop_sequence": null,
                        "usage": {"input_tokens": input, "output_tokens": output},
                    }))
                    .into_response();
                }
                let events = [
                    ("message_start", json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"], "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": input, "output_tokens": 1}}})),
                    ("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
                    ("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})),
                    ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
                    ("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": output}})),
                    ("message_stop", json!({"type": "message_stop"})),
                ];
                let stream: String = events
                    .iter()
                    .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
                    .collect();
                ([("content-type", "text/event-stream")], stream).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    AnthropicUpstream {
        base_url: format!("http://{address}/v1"),
        reported,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anthropic_messages_provider_works_through_the_proxy_with_an_organisations_own_key() {
    let key = unique_key();
    let upstream = anthropic_upstream(key.clone()).await;
    let providers = json!({
        "house": {
            "npm": "@ai-sdk/anthropic",
            "name": "House Anthropic",
            "options": { "baseURL": upstream.base_url, "apiKey": "{env:HOUSE_KEY}" },
            "models": { "claude-test": {
                "name": "Claude test",
                "tool_call": true,
                "limit": { "context": 128000, "output": 4096 },
            }},
        },
    })
    .to_string();
    // The organisation brings its own key; the server's is not the provider's.
    let keys = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        keys.path(),
        json!({"acme-anthropic": {"house": key}}).to_string(),
    )
    .unwrap();
    let keys_path = keys.path().to_str().unwrap().to_owned();
    let server = TestServer::start_with_environment(
        &[
            "--model",
            "house/claude-test",
            "--providers",
            &providers,
            "--model-keys-file",
            &keys_path,
        ],
        &[("HOUSE_KEY", "not-the-providers-key")],
    );
    let api = Api::new(&server, &token("ada", "acme-anthropic"));
    let session = api.create_session().await;
    api.prompt(&session.id, "prm_1", "hello").await;
    let log = turn(&api, &session.id, "prm_1").await;
    assert!(errors(&log).is_empty(), "{log:#?}");
    assert!(says(&log, "anthropic says hi"), "{log:#?}");
    let (input, output) = *upstream.reported.lock().unwrap();
    assert!(
        input > 0,
        "control: the provider answered, so it got its key"
    );
    let (status, usage) = api
        .call(
            Method::GET,
            &format!("/v1/sessions/{}/usage", session.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{usage}");
    let usage: UsageReport = serde_json::from_value(usage).unwrap();
    assert_eq!((usage.total.input, usage.total.output), (input, output));
    assert_eq!(usage.by_model[0].model, "house/claude-test");
    assert_eq!(found_in_environments(key.as_bytes()), Vec::<u32>::new());
    let session_folder = server.data_dir.join("sessions").join(&session.id);
    assert_eq!(
        found_in_files(&session_folder, key.as_bytes()),
        Vec::<String>::new()
    );
}
