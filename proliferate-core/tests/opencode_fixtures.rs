//! The OpenCode translator replayed over event streams recorded from a real OpenCode
//! (`fixtures/opencode/*.jsonl`, made by `examples/record_opencode.rs`).
//!
//! Each stream's translation is compared with `<name>.expected.json` (regenerate with
//! `UPDATE_FIXTURES=1` and review the diff), and checked for the properties every translation
//! must have.

use std::path::{Path, PathBuf};

use proliferate_core::agent::AgentUpdate;
use proliferate_core::agent::opencode::translate::Translator;
use proliferate_core::protocol::v1::Event;
use serde_json::Value;

fn fixtures() -> Vec<PathBuf> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/opencode");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap_or_else(|error| panic!("{}: {error}", folder.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "jsonl")
        })
        .collect();
    paths.sort();
    paths
}

/// Replays a recording; the session id is the one its events carry.
fn replay(path: &Path) -> Vec<AgentUpdate> {
    let events: Vec<Value> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let session_id = events
        .iter()
        .find_map(|event| event["properties"]["sessionID"].as_str())
        .expect("a session id in the recording");
    let mut translator = Translator::new(session_id);
    events
        .iter()
        .flat_map(|event| translator.translate(event))
        .collect()
}

fn summary(update: &AgentUpdate) -> String {
    match update {
        AgentUpdate::Event(event) => event.type_name().to_owned(),
        AgentUpdate::PermissionAsked(ask) => format!("permission_asked:{}", ask.permission),
        AgentUpdate::PermissionReplied { decision, .. } => {
            format!("permission_replied:{decision:?}")
        }
        AgentUpdate::Idle => "idle".into(),
        AgentUpdate::Lost(_) => "lost".into(),
    }
}

#[test]
fn recorded_streams_translate_as_expected() {
    let paths = fixtures();
    assert!(paths.len() >= 5, "recordings are missing");
    for path in paths {
        let updates = replay(&path);
        let summaries: Vec<String> = updates.iter().map(summary).collect();
        let expected_path = path.with_extension("expected.json");
        if std::env::var_os("UPDATE_FIXTURES").is_some() {
            std::fs::write(
                &expected_path,
                serde_json::to_string_pretty(&summaries).unwrap() + "\n",
            )
            .unwrap();
        }
        let expected: Vec<String> =
            serde_json::from_str(&std::fs::read_to_string(&expected_path).unwrap()).unwrap();
        assert_eq!(summaries, expected, "{}", path.display());
        check_invariants(&path, &updates);
    }
}

/// What holds for every translation: one start per message before its parts, deltas that add
/// up to the completed text, a single completion per tool call, exactly one idle at the end.
fn check_invariants(path: &Path, updates: &[AgentUpdate]) {
    let name = path.display();
    let mut started = Vec::new();
    let mut texts: std::collections::HashMap<String, String> = Default::default();
    let mut tools_open = std::collections::HashSet::new();
    for update in updates {
        let AgentUpdate::Event(event) = update else {
            continue;
        };
        match event {
            Event::AssistantMessageStarted(start) => {
                assert!(
                    !started.contains(&start.message_id),
                    "{name}: started twice"
                );
                started.push(start.message_id.clone());
            }
            Event::TextDelta(delta) => {
                assert!(
                    started.contains(&delta.message_id),
                    "{name}: delta before its message"
                );
                texts
                    .entry(delta.part_id.clone())
                    .or_default()
                    .push_str(&delta.delta);
            }
            Event::TextCompleted(done) => {
                let streamed = texts.get(&done.part_id).cloned().unwrap_or_default();
                assert!(
                    streamed.is_empty() || streamed == done.text,
                    "{name}: deltas {streamed:?} != {:?}",
                    done.text
                );
            }
            Event::ToolStarted(tool) => assert!(
                tools_open.insert(tool.call_id.clone()),
                "{name}: tool started twice"
            ),
            Event::ToolCompleted(tool) => assert!(
                tools_open.remove(&tool.call_id),
                "{name}: tool completed twice"
            ),
            Event::ToolFailed(tool) => assert!(
                tools_open.remove(&tool.call_id),
                "{name}: tool failed twice"
            ),
            _ => {}
        }
    }
    assert!(
        tools_open.is_empty(),
        "{name}: tools never finished: {tools_open:?}"
    );
    let idles = updates
        .iter()
        .filter(|update| matches!(update, AgentUpdate::Idle))
        .count();
    assert_eq!(idles, 1, "{name}: one idle per turn");
}

#[test]
fn scenario_specific_translations() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/opencode");
    let text = replay(&folder.join("text.jsonl"));
    let completed: Vec<&str> = text
        .iter()
        .filter_map(|update| match update {
            AgentUpdate::Event(Event::TextCompleted(done)) => Some(done.text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(completed, ["Streaming text in six pieces."]);

    let bash = replay(&folder.join("bash_tool.jsonl"));
    assert!(bash.iter().any(|update| matches!(update, AgentUpdate::Event(Event::ToolCompleted(done)) if done.tool == "bash" && done.output.contains("tool-ran"))));

    let permission = replay(&folder.join("permission.jsonl"));
    assert!(permission.iter().any(
        |update| matches!(update, AgentUpdate::PermissionAsked(ask) if ask.permission == "bash")
    ));

    let failing_tool = replay(&folder.join("tool_error.jsonl"));
    assert!(failing_tool.iter().any(|update| matches!(update, AgentUpdate::Event(Event::ToolFailed(failed)) if failed.tool == "read" && !failed.error.is_empty())));

    let model_error = replay(&folder.join("model_error.jsonl"));
    assert!(model_error.iter().any(|update| matches!(update, AgentUpdate::Event(Event::AgentError(error)) if error.kind == "model")));
}
