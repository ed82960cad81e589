//! The scripted model over real sockets on 127.0.0.1.

use std::time::{Duration, Instant};

use futures::StreamExt;
use scripted_model::{Script, ScriptError, ScriptLibrary, ScriptedModel, Step};
use serde_json::{Value, json};

const DEFAULT_TEXT: &str = "Hello from the scripted model.";

fn tools() -> Value {
    json!([{
        "type": "function",
        "function": {"name": "bash", "description": "Run a command", "parameters": {"type": "object"}},
    }])
}

/// An agent request (with tools) whose last user message is `prompt`.
fn agent_request(prompt: &str, stream: bool) -> Value {
    json!({
        "model": "scripted",
        "stream": stream,
        "tools": tools(),
        "messages": [
            {"role": "system", "content": "You are a test agent."},
            {"role": "user", "content": [{"type": "text", "text": prompt}]},
        ],
    })
}

async fn post(model: &ScriptedModel, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", model.base_url()))
        .json(body)
        .send()
        .await
        .expect("request")
}

/// The `data:` payloads of a complete event stream.
async fn events(model: &ScriptedModel, body: &Value) -> Vec<String> {
    let response = post(model, body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let text = response.text().await.expect("body");
    assert!(text.ends_with("\n\n"), "{text:?}");
    text.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            event
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data line: {event:?}"))
                .to_owned()
        })
        .collect()
}

/// The JSON chunks of a complete stream, checking it ends with `[DONE]`.
async fn stream_chunks(model: &ScriptedModel, body: &Value) -> Vec<Value> {
    let mut events = events(model, body).await;
    assert_eq!(events.pop().as_deref(), Some("[DONE]"));
    events
        .iter()
        .map(|event| serde_json::from_str(event).expect("chunk is JSON"))
        .collect()
}

/// The content deltas of text chunks, skipping the opening role chunk.
fn content_deltas(chunks: &[Value]) -> Vec<String> {
    chunks[1..]
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn default_text_streams_word_deltas_then_usage_and_done() {
    let model = ScriptedModel::start().await.unwrap();
    assert!(model.base_url().starts_with("http://127.0.0.1:"));
    let chunks = stream_chunks(&model, &agent_request("hello", true)).await;

    let first = &chunks[0];
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["model"], "scripted");
    assert!(first["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(first["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(
        first["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert!(chunks.iter().all(|chunk| chunk["id"] == first["id"]));

    let deltas = content_deltas(&chunks);
    assert_eq!(deltas, ["Hello ", "from ", "the ", "scripted ", "model."]);
    assert_eq!(deltas.concat(), DEFAULT_TEXT);

    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["choices"][0]["delta"], json!({}));
    let usage = &last["usage"];
    assert_eq!(usage["completion_tokens"], 5);
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(usage["prompt_tokens"].as_u64().unwrap() + 5)
    );
}

#[tokio::test]
async fn deltas_marker_sets_the_number_of_content_deltas() {
    let model = ScriptedModel::start().await.unwrap();
    let chunks = stream_chunks(&model, &agent_request("go [[deltas:50]]", true)).await;
    let deltas = content_deltas(&chunks);
    assert_eq!(deltas.len(), 50);
    assert_eq!(deltas.concat(), DEFAULT_TEXT);
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 50);

    let said = "The quick brown fox jumps over the lazy dog";
    let chunks = stream_chunks(
        &model,
        &agent_request(&format!("[[deltas:4]][[say:{said}]]"), true),
    )
    .await;
    let deltas = content_deltas(&chunks);
    assert_eq!(deltas.len(), 4);
    assert_eq!(deltas.concat(), said);
}

#[tokio::test]
async fn bash_marker_calls_the_tool_then_reports_its_output() {
    let model = ScriptedModel::start().await.unwrap();
    let first = agent_request("please [[bash:echo hi]]", true);
    let chunks = stream_chunks(&model, &first).await;

    let opening = &chunks[0]["choices"][0]["delta"];
    assert_eq!(opening["role"], "assistant");
    assert_eq!(opening["content"], Value::Null);
    let call = &opening["tool_calls"][0];
    assert_eq!(call["index"], 0);
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "bash");
    assert_eq!(call["function"]["arguments"], "");
    let call_id = call["id"].as_str().unwrap().to_owned();
    assert!(call_id.starts_with("call_"));

    let pieces: Vec<&str> = chunks[1..chunks.len() - 1]
        .iter()
        .map(|chunk| {
            chunk["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!((2..=3).contains(&pieces.len()), "{pieces:?}");
    let arguments: Value = serde_json::from_str(&pieces.concat()).unwrap();
    assert_eq!(
        arguments,
        json!({"command": "echo hi", "description": "Run a scripted command"})
    );
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
    assert!(last["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let mut second = first.clone();
    let messages = second["messages"].as_array_mut().unwrap();
    messages.push(json!({
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": call_id, "type": "function",
                        "function": {"name": "bash", "arguments": pieces.concat()}}],
    }));
    messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": "hi\n"}));
    let chunks = stream_chunks(&model, &second).await;
    assert_eq!(content_deltas(&chunks).concat(), "Ran the command: hi\n");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );

    // A further step past the script's end closes the turn.
    let mut third = second.clone();
    let messages = third["messages"].as_array_mut().unwrap();
    messages.push(json!({"role": "assistant", "content": "Ran the command: hi\n"}));
    let chunks = stream_chunks(&model, &third).await;
    assert_eq!(content_deltas(&chunks).concat(), "Done.");

    // Every request gets its own call id.
    let again = chunks_call_id(&model, &first).await;
    assert_ne!(again, call_id);
}

async fn chunks_call_id(model: &ScriptedModel, body: &Value) -> String {
    let chunks = stream_chunks(model, body).await;
    chunks[0]["choices"][0]["delta"]["tool_calls"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn tool_marker_calls_any_tool_with_json_arguments() {
    let model = ScriptedModel::start().await.unwrap();
    let prompt = r#"[[tool:write {"filePath":"/tmp/a.txt","content":"x]]y"}]]"#;
    let response = post(&model, &agent_request(prompt, false)).await;
    let completion: Value = response.json().await.unwrap();
    let call = &completion["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "write");
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(
        arguments,
        json!({"filePath": "/tmp/a.txt", "content": "x]]y"})
    );
}

#[tokio::test]
async fn fail_marker_answers_an_http_error() {
    let model = ScriptedModel::start().await.unwrap();
    for stream in [true, false] {
        let response = post(&model, &agent_request("[[fail:500]]", stream)).await;
        assert_eq!(response.status(), 500);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["message"], "scripted failure");
        assert_eq!(body["error"]["type"], "server_error");
        assert_eq!(body["error"]["code"], 500);
    }
    let response = post(&model, &agent_request("[[fail:429]]", true)).await;
    assert_eq!(response.status(), 429);
}

#[tokio::test]
async fn malformed_marker_sends_a_line_that_is_not_json() {
    let model = ScriptedModel::start().await.unwrap();
    let events = events(&model, &agent_request("[[malformed]]", true)).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["choices"][0]["delta"]["content"], "Partial answer");
    assert!(serde_json::from_str::<Value>(&events[1]).is_err());
    assert_eq!(events[1], "{not json");
}

#[tokio::test]
async fn stall_marker_sends_one_chunk_then_nothing() {
    let model = ScriptedModel::start().await.unwrap();
    let response = post(&model, &agent_request("[[stall]]", true)).await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    let first = std::str::from_utf8(&first).unwrap();
    let chunk: Value = serde_json::from_str(
        first
            .strip_prefix("data: ")
            .and_then(|rest| rest.strip_suffix("\n\n"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(chunk["choices"][0]["delta"]["content"], "Thinking");

    let silent = tokio::time::timeout(Duration::from_millis(300), body.next()).await;
    assert!(silent.is_err(), "the stream sent more: {silent:?}");

    // Dropping the server ends the stalled stream.
    drop(model);
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = body.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stalled stream outlived the server");
}

#[tokio::test]
async fn delay_marker_spaces_out_chunks() {
    let model = ScriptedModel::start().await.unwrap();
    let started = Instant::now();
    let chunks = stream_chunks(&model, &agent_request("[[delay:20]][[say:one two]]", true)).await;
    // Role chunk, two deltas, finish chunk and [DONE]: five delays.
    assert_eq!(chunks.len(), 4);
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn requests_without_tools_get_the_session_title() {
    let model = ScriptedModel::start().await.unwrap();
    let title = json!({
        "model": "scripted",
        "stream": true,
        "messages": [
            {"role": "system", "content": "Generate a title"},
            {"role": "user", "content": "[[fail:500]] [[bash:rm -rf /]]"},
        ],
    });
    let chunks = stream_chunks(&model, &title).await;
    assert_eq!(content_deltas(&chunks).concat(), "Scripted session");

    let mut plain = title.clone();
    plain["stream"] = json!(false);
    plain["tools"] = json!([]);
    let completion: Value = post(&model, &plain).await.json().await.unwrap();
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        "Scripted session"
    );
}

#[tokio::test]
async fn non_streaming_answers_are_chat_completions() {
    let model = ScriptedModel::start().await.unwrap();
    let response = post(&model, &agent_request("[[say:Plain answer.]]", false)).await;
    assert_eq!(response.status(), 200);
    let completion: Value = response.json().await.unwrap();
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["model"], "scripted");
    assert!(completion["id"].as_str().unwrap().starts_with("chatcmpl-"));
    let choice = &completion["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(
        choice["message"],
        json!({"role": "assistant", "content": "Plain answer."})
    );
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(completion["usage"]["completion_tokens"], 2);

    let completion: Value = post(&model, &agent_request("[[bash:ls]]", false))
        .await
        .json()
        .await
        .unwrap();
    let choice = &completion["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "bash");
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments["command"], "ls");
}

#[tokio::test]
async fn script_files_provide_named_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scripts.json");
    std::fs::write(
        &path,
        r#"{"scripts": {
            "read-then-answer": {
                "delay_ms": 1,
                "steps": [
                    {"kind": "tool_call", "name": "read", "arguments": {"filePath": "/etc/hostname"}},
                    {"kind": "text", "text": "The file says {tool_output}", "deltas": 2}
                ]
            },
            "broken": {"steps": [{"kind": "error", "status": 503, "message": "overloaded"}]}
        }}"#,
    )
    .unwrap();
    let mut library = ScriptLibrary::from_file(&path).unwrap();
    library.insert(
        "inserted",
        Script {
            steps: vec![Step::Text {
                text: "From insert.".to_owned(),
                deltas: None,
            }],
            delay_ms: 0,
        },
    );
    let model = ScriptedModel::start_with(library).await.unwrap();

    let first = agent_request("[[script:read-then-answer]]", true);
    let chunks_one = stream_chunks(&model, &first).await;
    let call = &chunks_one[0]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "read");

    let mut second = first.clone();
    let messages = second["messages"].as_array_mut().unwrap();
    messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
    messages.push(json!({"role": "tool", "tool_call_id": call["id"],
                         "content": [{"type": "text", "text": "box"}]}));
    let deltas = content_deltas(&stream_chunks(&model, &second).await);
    assert_eq!(deltas.len(), 2);
    assert_eq!(deltas.concat(), "The file says box");

    let response = post(&model, &agent_request("[[script:broken]]", true)).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "overloaded");

    let inserted = stream_chunks(&model, &agent_request("[[script:inserted]]", true)).await;
    assert_eq!(content_deltas(&inserted).concat(), "From insert.");

    let unknown = stream_chunks(&model, &agent_request("[[script:nope]]", true)).await;
    assert_eq!(content_deltas(&unknown).concat(), "unknown script nope");
}

#[test]
fn invalid_script_files_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let load = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        ScriptLibrary::from_file(&path).unwrap_err()
    };

    let error = load("syntax.json", "{\"scripts\": {");
    assert!(matches!(error, ScriptError::Parse { .. }), "{error:?}");
    assert!(error.to_string().contains("syntax.json"), "{error}");
    assert!(error.to_string().contains("line 1"), "{error}");

    let error = load(
        "kind.json",
        r#"{"scripts": {"a": {"steps": [{"kind": "dance"}]}}}"#,
    );
    assert!(
        error.to_string().contains("unknown variant `dance`"),
        "{error}"
    );

    let error = load("shape.json", r#"{"script": {}}"#);
    assert!(error.to_string().contains("script"), "{error}");

    let error = load(
        "status.json",
        r#"{"scripts": {"ok": {"steps": [{"kind": "error", "status": 200, "message": "m"}]}}}"#,
    );
    assert!(matches!(error, ScriptError::Invalid { .. }), "{error:?}");
    assert!(error.to_string().contains("\"ok\""), "{error}");
    assert!(error.to_string().contains("status 200"), "{error}");

    let missing = ScriptLibrary::from_file(&dir.path().join("missing.json")).unwrap_err();
    assert!(matches!(missing, ScriptError::Read { .. }), "{missing:?}");
    assert!(missing.to_string().contains("missing.json"), "{missing}");
}

#[tokio::test]
async fn requests_are_recorded_and_bad_bodies_rejected() {
    let model = ScriptedModel::start().await.unwrap();
    let one = agent_request("first", true);
    let two = agent_request("second", false);
    stream_chunks(&model, &one).await;
    post(&model, &two).await.json::<Value>().await.unwrap();

    let response = reqwest::Client::new()
        .post(format!("{}/chat/completions", model.base_url()))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );

    assert_eq!(model.requests(), vec![one, two]);
}

#[tokio::test]
async fn models_are_listed() {
    let model = ScriptedModel::start().await.unwrap();
    let models: Value = reqwest::get(format!("{}/models", model.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        models,
        json!({"object": "list", "data": [{"id": "mock-model", "object": "model"}]})
    );
}
