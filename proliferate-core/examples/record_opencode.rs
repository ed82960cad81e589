//! Records OpenCode's raw `/event` stream for the translator's fixtures.
//!
//! `cargo run -p proliferate-core --example record_opencode -- <opencode> <fixtures/opencode>`
//! runs each scenario against a real OpenCode and the scripted model, and writes the session's
//! events as JSON lines to `<folder>/<scenario>.jsonl`. Heartbeats and other sessions' events
//! are left out; ids and times are OpenCode's own.

use std::path::PathBuf;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use proliferate_core::agent::opencode::{OpenCodeConfig, OpenCodeDriver};
use proliferate_core::agent::{AgentDriver, AgentPrompt, AgentUpdate};
use proliferate_core::protocol::v1::PermissionDecision;
use proliferate_core::sandbox::{
    LocalProvider, LocalProviderConfig, LoopbackForward, SandboxProvider, SandboxSpec,
};
use scripted_model::ScriptedModel;
use serde_json::{Value, json};

/// (name, OpenCode permission config, prompt, answer permissions with)
const SCENARIOS: &[(&str, &str, &str, Option<PermissionDecision>)] = &[
    (
        "text",
        "{}",
        "[[deltas:6]] [[say:Streaming text in six pieces.]]",
        None,
    ),
    (
        "bash_tool",
        "{}",
        "[[bash:echo tool-ran > out.txt && cat out.txt]]",
        None,
    ),
    (
        "permission",
        r#"{"bash":"ask"}"#,
        "[[bash:echo approved]]",
        Some(PermissionDecision::Once),
    ),
    (
        "tool_error",
        "{}",
        r#"[[tool:read {"filePath":"/home/agent/workspace/missing.txt"}]]"#,
        None,
    ),
    ("model_error", "{}", "[[fail:400]]", None),
];

#[tokio::main]
async fn main() {
    let mut arguments = std::env::args().skip(1);
    let (Some(program), Some(folder)) = (arguments.next(), arguments.next()) else {
        eprintln!("usage: record_opencode <opencode executable> <output folder>");
        std::process::exit(2);
    };
    let folder = PathBuf::from(folder);
    std::fs::create_dir_all(&folder).expect("output folder");
    let model = ScriptedModel::start().await.expect("scripted model");
    let data = tempfile::tempdir().expect("temporary folder");
    // The sandbox helper comes from PROLIFERATE_SANDBOX_HELPER (the `proliferate-sandbox` binary).
    let provider = LocalProvider::new(LocalProviderConfig {
        channel_services: vec![std::sync::Arc::new(LoopbackForward(model.address()))],
        ..LocalProviderConfig::new(data.path())
    })
    .expect("provider");
    for (name, permission, prompt, answer) in SCENARIOS {
        let mut config = OpenCodeConfig::with_openai_compatible_model(&program, &model.base_url());
        config.permission = serde_json::from_str(permission).expect("permission JSON");
        let driver = OpenCodeDriver::new(config);
        let spec = SandboxSpec {
            session_id: format!("record_{name}"),
            launch: driver.launch(driver.default_model()),
            restore_from: None,
            limits: provider.limits(),
            egress_allow: Vec::new(),
            environment: Vec::new(),
        };
        let sandbox = provider.start(&spec).await.expect("sandbox");
        let raw = sandbox
            .agent
            .http
            .get(format!("{}/event", sandbox.agent.base_url))
            .send()
            .await
            .expect("raw stream");
        let mut raw = raw.bytes_stream().eventsource();
        raw.next()
            .await
            .expect("server.connected")
            .expect("readable");
        let mut session = driver.attach(&sandbox.agent, None).await.expect("attach");
        let session_id = session.control.agent_session_id().to_owned();
        session
            .control
            .prompt(&AgentPrompt {
                text: prompt.to_string(),
                images: Vec::new(),
            })
            .await
            .expect("prompt");
        let mut lines = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            tokio::select! {
                update = session.updates.recv() => match update {
                    Some(AgentUpdate::PermissionAsked(ask)) => {
                        let decision = answer.expect("a scenario that asks answers");
                        session.control.reply_permission(&ask.permission_id, decision).await.expect("reply");
                    }
                    Some(AgentUpdate::Idle) | None => break,
                    _ => {}
                },
                message = raw.next() => {
                    let Some(Ok(message)) = message else { break };
                    let event: Value = serde_json::from_str(&message.data).unwrap_or(json!({}));
                    let kind = event["type"].as_str().unwrap_or_default();
                    let properties = &event["properties"];
                    let session_of = properties["sessionID"].as_str()
                        .or_else(|| properties["info"]["sessionID"].as_str())
                        .or_else(|| properties["part"]["sessionID"].as_str());
                    if session_of == Some(session_id.as_str()) && kind != "server.heartbeat" {
                        lines.push(message.data);
                    }
                }
                () = tokio::time::sleep_until(deadline) => panic!("scenario {name} did not finish"),
            }
        }
        // Drain what OpenCode sends right after going idle (session.diff and the like).
        while let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_millis(700), raw.next()).await
        {
            if message.data.contains(&session_id) {
                lines.push(message.data);
            }
        }
        let path = folder.join(format!("{name}.jsonl"));
        std::fs::write(&path, lines.join("\n") + "\n").expect("write fixture");
        println!("{} events -> {}", lines.len(), path.display());
        provider
            .terminate(&spec.session_id)
            .await
            .expect("terminate");
    }
}
