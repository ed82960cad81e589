//! OpenCode events to protocol v1 events. The table in `docs/agents/opencode.md` describes this
//! mapping; the tests replay recorded OpenCode streams from `fixtures/opencode/` through it.
//!
//! The translator is a pure state machine over one OpenCode session: it keeps just enough state
//! (which messages are the user's, which parts are text or reasoning, what was already said about
//! each tool call) to emit every v1 event exactly once.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::agent::{AgentUpdate, PermissionAsk};
use crate::protocol::v1::*;

#[derive(Debug, Default)]
struct PartState {
    message_id: String,
    kind: PartKind,
    text: String,
    completed: bool,
    tool_input: Value,
    tool_title: Option<String>,
    tool_output: Option<String>,
}

#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
enum PartKind {
    #[default]
    Text,
    Reasoning,
    Tool,
}

/// Translates one OpenCode session's events; events of other sessions are ignored.
#[derive(Debug)]
pub struct Translator {
    session_id: String,
    user_messages: HashSet<String>,
    started_messages: Vec<String>,
    completed_messages: HashSet<String>,
    parts: HashMap<String, PartState>,
    busy: bool,
    reported_errors: HashSet<String>,
}

fn string(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn optional_string(value: &Value) -> Option<String> {
    value
        .as_str()
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

/// OpenCode's errors are `{name, data: {message}}`; aborts are not failures. An error a
/// provider sent in the middle of its stream arrives as its JSON text, and reads as its message.
fn error_message(error: &Value) -> Option<String> {
    let name = error["name"].as_str().unwrap_or("UnknownError");
    let message = error["data"]["message"]
        .as_str()
        .or_else(|| error["message"].as_str())
        .unwrap_or(name);
    let aborted = name == "MessageAbortedError"
        || name == "AbortError"
        || message.contains("operation was aborted")
        || message.contains("signal is aborted");
    (!aborted).then(|| provider_message(message).unwrap_or_else(|| message.to_owned()))
}

/// The message of a provider's error body in OpenAI's (`{error: {message}}`, or its inner
/// object) or Anthropic's (`{type: "error", error: {message}}`) shape.
fn provider_message(text: &str) -> Option<String> {
    let body: Value = serde_json::from_str(text).ok()?;
    let error = if body["error"].is_object() {
        &body["error"]
    } else {
        &body
    };
    error["message"].as_str().map(str::to_owned)
}

fn error_kind(error: &Value) -> &'static str {
    let from_provider = error["data"]["message"]
        .as_str()
        .is_some_and(|message| provider_message(message).is_some());
    match error["name"].as_str() {
        Some("APIError" | "ProviderAuthError" | "MessageOutputLengthError") => "model",
        _ if from_provider => "model",
        _ => "agent",
    }
}

fn usage(info: &Value) -> Option<TokenUsage> {
    let tokens = info.get("tokens")?;
    let count = |value: &Value| value.as_u64().unwrap_or_default();
    Some(TokenUsage {
        input: count(&tokens["input"]),
        output: count(&tokens["output"]),
        reasoning: count(&tokens["reasoning"]),
        cache_read: count(&tokens["cache"]["read"]),
        cache_write: count(&tokens["cache"]["write"]),
        cost: info["cost"].as_f64(),
    })
}

fn decision(reply: &Value) -> PermissionDecision {
    match reply.as_str() {
        Some("once") => PermissionDecision::Once,
        Some("always") => PermissionDecision::Always,
        _ => PermissionDecision::Reject,
    }
}

impl Translator {
    /// A translator for the OpenCode session `session_id`.
    pub fn new(session_id: impl Into<String>) -> Self {
        Self {
            session_id: session_id.into(),
            user_messages: HashSet::new(),
            started_messages: Vec::new(),
            completed_messages: HashSet::new(),
            parts: HashMap::new(),
            busy: false,
            reported_errors: HashSet::new(),
        }
    }

    /// Whether OpenCode is running a turn (went busy and not yet idle).
    pub fn busy(&self) -> bool {
        self.busy
    }

    /// The v1 updates one OpenCode event (`{type, properties}`) stands for; often none.
    pub fn translate(&mut self, event: &Value) -> Vec<AgentUpdate> {
        let properties = &event["properties"];
        let session_of_event = properties["sessionID"]
            .as_str()
            .or_else(|| properties["info"]["sessionID"].as_str())
            .or_else(|| properties["part"]["sessionID"].as_str());
        if session_of_event.is_some_and(|session| session != self.session_id) {
            return Vec::new();
        }
        let mut updates = Vec::new();
        match event["type"].as_str().unwrap_or_default() {
            "message.updated" => self.message_updated(&properties["info"], &mut updates),
            "message.part.updated" => self.part_updated(&properties["part"], &mut updates),
            "message.part.delta" => self.part_delta(properties, &mut updates),
            "session.status" if properties["status"]["type"] == "retry" => {
                let status = &properties["status"];
                updates.push(AgentUpdate::Event(Event::AgentError(AgentError {
                    kind: "model_retrying".into(),
                    message: format!(
                        "{} (retry {})",
                        status["message"].as_str().unwrap_or("the model failed"),
                        status["attempt"].as_u64().unwrap_or(1)
                    ),
                    ..Default::default()
                })));
            }
            "session.status" if properties["status"]["type"] == "busy" => {
                if !self.busy {
                    self.reported_errors.clear();
                }
                self.busy = true;
            }
            "session.status" | "session.idle"
                if self.busy
                    && (event["type"] == "session.idle"
                        || properties["status"]["type"] == "idle") =>
            {
                self.busy = false;
                self.complete_started_messages(&mut updates);
                updates.push(AgentUpdate::Idle);
            }
            "session.error" if session_of_event.is_some() => {
                self.report_error(&properties["error"], &mut updates);
            }
            "permission.asked" => updates.push(AgentUpdate::PermissionAsked(PermissionAsk {
                permission_id: string(&properties["id"]),
                permission: string(&properties["permission"]),
                patterns: serde_json::from_value(properties["patterns"].clone())
                    .unwrap_or_default(),
                metadata: properties["metadata"].clone(),
                call_id: optional_string(&properties["tool"]["callID"]),
            })),
            "permission.replied" => updates.push(AgentUpdate::PermissionReplied {
                permission_id: string(&properties["requestID"]),
                decision: decision(&properties["reply"]),
            }),
            "todo.updated" => updates.push(AgentUpdate::Event(Event::TodoUpdated(TodoUpdated {
                todos: serde_json::from_value(properties["todos"].clone()).unwrap_or_default(),
                ..Default::default()
            }))),
            "session.diff" => {
                let files: Vec<FileChange> = properties["diff"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|diff| FileChange {
                        path: string(&diff["file"]),
                        additions: diff["additions"].as_u64().unwrap_or_default(),
                        deletions: diff["deletions"].as_u64().unwrap_or_default(),
                    })
                    .collect();
                if !files.is_empty() {
                    updates.push(AgentUpdate::Event(Event::FilesChanged(FilesChanged {
                        files,
                        ..Default::default()
                    })));
                }
            }
            _ => {}
        }
        updates
    }

    fn message_updated(&mut self, info: &Value, updates: &mut Vec<AgentUpdate>) {
        let message_id = string(&info["id"]);
        if info["role"] == "user" {
            self.user_messages.insert(message_id);
            return;
        }
        if info["role"] != "assistant" || message_id.is_empty() {
            return;
        }
        self.ensure_started(&message_id, Some(info), updates);
        if let Some(error) = info.get("error") {
            self.report_error(error, updates);
        }
    }

    fn ensure_started(
        &mut self,
        message_id: &str,
        info: Option<&Value>,
        updates: &mut Vec<AgentUpdate>,
    ) {
        if !self
            .started_messages
            .iter()
            .any(|started| started == message_id)
        {
            self.started_messages.push(message_id.to_owned());
            let model = info.and_then(|info| {
                let provider = info["providerID"].as_str()?;
                let model = info["modelID"].as_str()?;
                Some(format!("{provider}/{model}"))
            });
            updates.push(AgentUpdate::Event(Event::AssistantMessageStarted(
                AssistantMessageStarted {
                    message_id: message_id.to_owned(),
                    model,
                    ..Default::default()
                },
            )));
        }
    }

    /// Reports an OpenCode error once per turn (OpenCode repeats it in `session.error` and in
    /// the failed message); aborts are not errors.
    fn report_error(&mut self, error: &Value, updates: &mut Vec<AgentUpdate>) {
        if let Some(message) = error_message(error)
            && self.reported_errors.insert(message.clone())
        {
            updates.push(AgentUpdate::Event(Event::AgentError(AgentError {
                kind: error_kind(error).into(),
                message,
                ..Default::default()
            })));
        }
    }

    /// Completes a message when its step finishes (OpenCode's `step-finish` part carries the
    /// finish reason and the step's token usage).
    fn complete_message(&mut self, message_id: &str, step: &Value, updates: &mut Vec<AgentUpdate>) {
        if !self.completed_messages.insert(message_id.to_owned()) {
            return;
        }
        self.ensure_started(message_id, None, updates);
        self.complete_open_parts(message_id, updates);
        updates.push(AgentUpdate::Event(Event::AssistantMessageCompleted(
            AssistantMessageCompleted {
                message_id: message_id.to_owned(),
                finish: optional_string(&step["reason"]),
                usage: usage(step),
                ..Default::default()
            },
        )));
    }

    /// Completes every started message before the turn ends: OpenCode may go idle before it
    /// sends a failed message's final update.
    fn complete_started_messages(&mut self, updates: &mut Vec<AgentUpdate>) {
        let open: Vec<String> = self
            .started_messages
            .iter()
            .filter(|message_id| !self.completed_messages.contains(*message_id))
            .cloned()
            .collect();
        for message_id in open {
            self.completed_messages.insert(message_id.clone());
            self.complete_open_parts(&message_id, updates);
            updates.push(AgentUpdate::Event(Event::AssistantMessageCompleted(
                AssistantMessageCompleted {
                    message_id,
                    ..Default::default()
                },
            )));
        }
    }

    /// Text and reasoning parts still open when their message ends are completed with what the
    /// deltas built.
    fn complete_open_parts(&mut self, message_id: &str, updates: &mut Vec<AgentUpdate>) {
        let mut open: Vec<_> = self
            .parts
            .iter_mut()
            .filter(|(_, part)| {
                part.message_id == message_id && part.kind != PartKind::Tool && !part.completed
            })
            .collect();
        open.sort_by(|left, right| left.0.cmp(right.0));
        for (part_id, part) in open {
            part.completed = true;
            updates.push(AgentUpdate::Event(text_completed(part_id, part)));
        }
    }

    fn part_updated(&mut self, part: &Value, updates: &mut Vec<AgentUpdate>) {
        let (part_id, message_id) = (string(&part["id"]), string(&part["messageID"]));
        if part_id.is_empty() || message_id.is_empty() || self.user_messages.contains(&message_id) {
            return;
        }
        let kind = match part["type"].as_str() {
            Some("step-finish") => return self.complete_message(&message_id, part, updates),
            Some("text") => PartKind::Text,
            Some("reasoning") => PartKind::Reasoning,
            Some("tool") => PartKind::Tool,
            _ => return,
        };
        if part["synthetic"] == true || part["ignored"] == true {
            return;
        }
        let state = self.part_state(&part_id, message_id, kind, updates);
        if kind == PartKind::Tool {
            return tool_updated(&part_id, state, part, updates);
        }
        let text = part["text"].as_str().unwrap_or_default();
        if text.len() > state.text.len() && text.starts_with(state.text.as_str()) {
            // A build without `message.part.delta` sends the whole growing text: emit the growth.
            let delta = text[state.text.len()..].to_owned();
            state.text = text.to_owned();
            updates.push(AgentUpdate::Event(text_delta(&part_id, state, delta)));
        } else if !text.is_empty() {
            state.text = text.to_owned();
        }
        if part["time"]["end"].is_number() && !state.completed {
            state.completed = true;
            updates.push(AgentUpdate::Event(text_completed(&part_id, state)));
        }
    }

    /// The state of a part, created (after its message's start) on first sighting; a part
    /// first seen as a delta is taken for text until an update says otherwise.
    fn part_state(
        &mut self,
        part_id: &str,
        message_id: String,
        kind: PartKind,
        updates: &mut Vec<AgentUpdate>,
    ) -> &mut PartState {
        self.ensure_started(&message_id, None, updates);
        self.parts
            .entry(part_id.to_owned())
            .or_insert_with(|| PartState {
                message_id,
                kind,
                ..Default::default()
            })
    }

    fn part_delta(&mut self, properties: &Value, updates: &mut Vec<AgentUpdate>) {
        let (part_id, message_id) = (
            string(&properties["partID"]),
            string(&properties["messageID"]),
        );
        let delta = string(&properties["delta"]);
        if part_id.is_empty()
            || delta.is_empty()
            || properties["field"] != "text"
            || self.user_messages.contains(&message_id)
        {
            return;
        }
        let state = self.part_state(&part_id, message_id, PartKind::Text, updates);
        if state.kind == PartKind::Tool || state.completed {
            return;
        }
        state.text.push_str(&delta);
        updates.push(AgentUpdate::Event(text_delta(&part_id, state, delta)));
    }
}

fn text_delta(part_id: &str, state: &PartState, delta: String) -> Event {
    let (message_id, part_id) = (state.message_id.clone(), part_id.to_owned());
    let extra = Extra::default();
    match state.kind {
        PartKind::Reasoning => Event::ReasoningDelta(ReasoningDelta {
            message_id,
            part_id,
            delta,
            extra,
        }),
        _ => Event::TextDelta(TextDelta {
            message_id,
            part_id,
            delta,
            extra,
        }),
    }
}

fn text_completed(part_id: &str, state: &PartState) -> Event {
    let (message_id, part_id, text) = (
        state.message_id.clone(),
        part_id.to_owned(),
        state.text.clone(),
    );
    let extra = Extra::default();
    match state.kind {
        PartKind::Reasoning => Event::ReasoningCompleted(ReasoningCompleted {
            message_id,
            part_id,
            text,
            extra,
        }),
        _ => Event::TextCompleted(TextCompleted {
            message_id,
            part_id,
            text,
            extra,
        }),
    }
}

fn tool_updated(
    part_id: &str,
    state: &mut PartState,
    part: &Value,
    updates: &mut Vec<AgentUpdate>,
) {
    if state.completed {
        return;
    }
    let tool_state = &part["state"];
    let (call_id, tool) = (string(&part["callID"]), string(&part["tool"]));
    let input = match &tool_state["input"] {
        Value::Null => Value::Object(Default::default()),
        input => input.clone(),
    };
    let first_sighting = state.tool_input.is_null();
    let (message_id, part_id) = (state.message_id.clone(), part_id.to_owned());
    if first_sighting {
        state.tool_input = input.clone();
        updates.push(AgentUpdate::Event(Event::ToolStarted(ToolStarted {
            message_id: message_id.clone(),
            part_id: part_id.clone(),
            call_id: call_id.clone(),
            tool: tool.clone(),
            input: input.clone(),
            ..Default::default()
        })));
    }
    match tool_state["status"].as_str() {
        Some("completed") => {
            state.completed = true;
            updates.push(AgentUpdate::Event(Event::ToolCompleted(ToolCompleted {
                message_id,
                part_id,
                call_id,
                tool,
                input,
                output: string(&tool_state["output"]),
                title: optional_string(&tool_state["title"]),
                ..Default::default()
            })));
        }
        Some("error") => {
            state.completed = true;
            updates.push(AgentUpdate::Event(Event::ToolFailed(ToolFailed {
                message_id,
                part_id,
                call_id,
                tool,
                input,
                error: string(&tool_state["error"]),
                ..Default::default()
            })));
        }
        _ if !first_sighting => {
            let title = optional_string(&tool_state["title"]);
            let output = optional_string(&tool_state["metadata"]["output"]);
            let changed_input = (input != state.tool_input).then(|| input.clone());
            if changed_input.is_none() && title == state.tool_title && output == state.tool_output {
                return;
            }
            state.tool_input = input;
            state.tool_title.clone_from(&title);
            state.tool_output.clone_from(&output);
            updates.push(AgentUpdate::Event(Event::ToolUpdated(ToolUpdated {
                message_id,
                part_id,
                call_id,
                tool,
                input: changed_input,
                title,
                output,
                ..Default::default()
            })));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_providers_error_passed_on_as_json_reads_as_its_message() {
        let openai = json!({"name": "UnknownError", "data": {"message":
            r#"{"message":"the provider went silent","type":"timeout_error"}"#}});
        let anthropic = json!({"name": "UnknownError", "data": {"message":
            r#"{"type":"error","error":{"type":"overloaded_error","message":"overloaded"}}"#}});
        let plain = json!({"name": "UnknownError", "data": {"message": "disk full"}});
        assert_eq!(
            error_message(&openai).as_deref(),
            Some("the provider went silent")
        );
        assert_eq!(error_message(&anthropic).as_deref(), Some("overloaded"));
        assert_eq!(error_message(&plain).as_deref(), Some("disk full"));
        assert_eq!(
            [&openai, &anthropic, &plain].map(error_kind),
            ["model", "model", "agent"]
        );
        let aborted = json!({"name": "MessageAbortedError", "data": {"message": "aborted"}});
        assert_eq!(error_message(&aborted), None);
    }
}
