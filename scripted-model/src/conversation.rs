//! Reading a chat-completions request: which step of which script answers it.

use serde_json::Value;

use crate::markers;
use crate::script::{ScriptLibrary, Step};

/// The answer to requests without tools (OpenCode's title generator).
pub(crate) const AUXILIARY_TEXT: &str = "Scripted session";

/// The answer once a script has run out of steps, so every turn ends.
pub(crate) const DONE_TEXT: &str = "Done.";

/// What to answer to one request.
#[derive(Debug, PartialEq)]
pub(crate) struct Turn {
    /// The step to play, with `{tool_output}` already filled in.
    pub step: Step,
    /// Milliseconds to wait before each chunk.
    pub delay_ms: u64,
    /// The model name to echo back.
    pub model: String,
    /// Whether the client asked for a server-sent event stream.
    pub stream: bool,
    /// A rough, deterministic prompt token count.
    pub prompt_tokens: u64,
}

/// Chooses the answer to a request body. Never fails: odd bodies get a text answer.
pub(crate) fn turn_for(request: &Value, library: &ScriptLibrary) -> Turn {
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock-model")
        .to_owned();
    let stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let messages: &[Value] = request
        .get("messages")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let prompt_chars = request
        .get("messages")
        .map_or(0, |messages| messages.to_string().chars().count());
    let prompt_tokens = (prompt_chars as u64).div_ceil(4).max(1);
    let has_tools = request
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|tools| !tools.is_empty());

    let (step, delay_ms) = if has_tools {
        agent_step(messages, library)
    } else {
        (text(AUXILIARY_TEXT), 0)
    };
    Turn {
        step,
        delay_ms,
        model,
        stream,
        prompt_tokens,
    }
}

/// The step for an agent request: the script picked by the last user message,
/// at the index given by the assistant messages after it.
fn agent_step(messages: &[Value], library: &ScriptLibrary) -> (Step, u64) {
    let last_user = messages.iter().rposition(|m| role(m) == Some("user"));
    let (prompt, after) = match last_user {
        Some(index) => (content_text(&messages[index]), &messages[index + 1..]),
        None => (String::new(), messages),
    };
    let done = after
        .iter()
        .filter(|m| role(m) == Some("assistant"))
        .count();
    let script = markers::script_for(&prompt, library);
    let step = script
        .steps
        .get(done)
        .cloned()
        .unwrap_or_else(|| text(DONE_TEXT));
    let step = match step {
        Step::Text { text, deltas } if text.contains("{tool_output}") => {
            let output = messages
                .iter()
                .rfind(|m| role(m) == Some("tool"))
                .map(content_text)
                .unwrap_or_default();
            Step::Text {
                text: text.replace("{tool_output}", &output),
                deltas,
            }
        }
        step => step,
    };
    (step, script.delay_ms)
}

/// A text step with default deltas.
fn text(text: &str) -> Step {
    Step::Text {
        text: text.to_owned(),
        deltas: None,
    }
}

/// A message's role.
fn role(message: &Value) -> Option<&str> {
    message.get("role").and_then(Value::as_str)
}

/// A message's text: a string content, or the concatenated text parts of an array content.
fn content_text(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| match part {
                Value::String(text) => Some(text.as_str()),
                part => part.get("text").and_then(Value::as_str),
            })
            .collect(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tools() -> Value {
        json!([{"type": "function", "function": {"name": "bash", "parameters": {}}}])
    }

    #[test]
    fn requests_without_tools_get_the_session_title() {
        let turn = turn_for(
            &json!({"model": "m", "messages": [{"role": "user", "content": "[[fail:500]]"}]}),
            &ScriptLibrary::default(),
        );
        assert_eq!(turn.step, text(AUXILIARY_TEXT));
        assert_eq!(turn.model, "m");
        assert!(!turn.stream);
    }

    #[test]
    fn assistant_messages_after_the_last_user_message_pick_the_step() {
        let request = json!({
            "stream": true,
            "tools": tools(),
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "old [[fail:500]]"},
                {"role": "assistant", "content": "earlier"},
                {"role": "user", "content": [{"type": "text", "text": "run "}, {"type": "text", "text": "[[bash:echo hi]]"}]},
                {"role": "assistant", "content": null, "tool_calls": []},
                {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "hi\n"}]},
            ],
        });
        let turn = turn_for(&request, &ScriptLibrary::default());
        assert_eq!(turn.step, text("Ran the command: hi\n"));
        assert_eq!(turn.model, "mock-model");
        assert!(turn.stream);

        let mut past_end = request.clone();
        let messages = past_end["messages"].as_array_mut().unwrap();
        messages.push(json!({"role": "assistant", "content": "Ran it"}));
        assert_eq!(
            turn_for(&past_end, &ScriptLibrary::default()).step,
            text(DONE_TEXT)
        );
    }

    #[test]
    fn odd_bodies_get_an_answer() {
        for body in [
            json!(null),
            json!({"tools": tools(), "messages": "x"}),
            json!([1]),
        ] {
            let turn = turn_for(&body, &ScriptLibrary::default());
            assert!(matches!(turn.step, Step::Text { .. }), "{body}");
        }
    }
}
