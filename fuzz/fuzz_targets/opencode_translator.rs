//! The OpenCode translator on arbitrary sequences of OpenCode events (shaped like OpenCode's, with
//! ids, kinds and states drawn from small pools so they collide, plus raw JSON): it never panics,
//! and what it emits keeps the promises of `docs/protocol.md` section 5.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use proliferate_core::agent::AgentUpdate;
use proliferate_core::agent::opencode::translate::Translator;
use proliferate_core::protocol::v1::{
    Event, ReasoningCompleted, ReasoningDelta, TextCompleted, TextDelta,
};
use serde_json::{Value, json};

const SESSION: &str = "ses_fuzz";

fn maybe<T: Into<Value>>(u: &mut Unstructured, value: T) -> Result<Value> {
    Ok(if u.arbitrary()? {
        value.into()
    } else {
        Value::Null
    })
}

/// One OpenCode event.
fn event(u: &mut Unstructured) -> Result<Value> {
    let session = *u.choose(&[SESSION, SESSION, SESSION, "ses_other"])?;
    let message = *u.choose(&["msg_1", "msg_2", "msg_3", ""])?;
    let part = *u.choose(&["prt_1", "prt_2", "prt_3", "prt_4", ""])?;
    let text = *u.choose(&["", "a", "ab", "abc", "b", "é"])?;
    Ok(match u.int_in_range(0..=10)? {
        0 => json!({"type": "message.updated", "properties": {"info": {
            "id": message, "sessionID": session,
            "role": *u.choose(&["user", "assistant", "system"])?,
            "providerID": maybe(u, "scripted")?, "modelID": maybe(u, "model")?,
            "error": maybe(u, json!({"name": "APIError", "data": {"message": text}}))?,
        }}}),
        1 => json!({"type": "message.part.updated", "properties": {"part": {
            "id": part, "messageID": message, "sessionID": session,
            "type": *u.choose(&["text", "reasoning", "step-finish", "file"])?,
            "text": text, "synthetic": u.arbitrary::<bool>()? && u.arbitrary::<bool>()?,
            "time": {"end": maybe(u, 1)?},
            "reason": maybe(u, "stop")?,
            "tokens": {"input": u.int_in_range(0..=9)?, "output": 1},
        }}}),
        2 => json!({"type": "message.part.updated", "properties": {"part": {
            "id": part, "messageID": message, "sessionID": session, "type": "tool",
            "callID": *u.choose(&["call_1", "call_2"])?, "tool": "bash",
            "state": {
                "status": *u.choose(&["pending", "running", "completed", "error"])?,
                "input": *u.choose(&[json!({}), json!({"command": text}), Value::Null])?,
                "output": text, "error": text, "title": maybe(u, text)?,
                "metadata": {"output": maybe(u, text)?},
            },
        }}}),
        3 => json!({"type": "message.part.delta", "properties": {
            "sessionID": session, "messageID": message, "partID": part,
            "field": *u.choose(&["text", "text", "other"])?, "delta": text,
        }}),
        4 => json!({"type": "session.status", "properties": {"sessionID": session, "status": {
            "type": *u.choose(&["busy", "idle", "retry"])?, "attempt": 1, "message": text,
        }}}),
        5 => json!({"type": "session.idle", "properties": {"sessionID": session}}),
        6 => json!({"type": "session.error", "properties": {"sessionID": maybe(u, session)?,
            "error": {"name": *u.choose(&["APIError", "MessageAbortedError", "UnknownError"])?,
                      "data": {"message": text}}}}),
        7 => json!({"type": "permission.asked", "properties": {"sessionID": session,
            "id": *u.choose(&["per_1", "per_2"])?, "permission": "bash",
            "patterns": maybe(u, json!([text]))?, "tool": {"callID": maybe(u, "call_1")?}}}),
        8 => json!({"type": "permission.replied", "properties": {"sessionID": session,
            "requestID": "per_1", "reply": *u.choose(&["once", "always", "reject", "x"])?}}),
        9 => json!({"type": *u.choose(&["todo.updated", "session.diff"])?, "properties": {
            "sessionID": session,
            "todos": [{"id": "t1", "content": text, "status": "pending", "priority": "high"}],
            "diff": [{"file": text, "additions": 1, "deletions": 2}],
        }}),
        _ => {
            let length = u.int_in_range(0..=64)?;
            serde_json::from_slice(u.bytes(length)?).unwrap_or(Value::Null)
        }
    })
}

/// What section 5 promises of one agent's events, checked as they come.
#[derive(Default)]
struct Promises {
    started_messages: HashSet<String>,
    completed_messages: HashSet<String>,
    started_tools: HashSet<String>,
    ended_tools: HashSet<String>,
    completed_texts: HashSet<String>,
}

impl Promises {
    fn check(&mut self, event: &Event) {
        match event {
            Event::AssistantMessageStarted(started) => {
                assert!(
                    self.started_messages.insert(started.message_id.clone()),
                    "started twice"
                );
            }
            Event::AssistantMessageCompleted(completed) => {
                assert!(
                    self.started_messages.contains(&completed.message_id),
                    "not started"
                );
                let first = self.completed_messages.insert(completed.message_id.clone());
                assert!(first, "message completed twice");
            }
            Event::TextDelta(TextDelta { message_id, .. })
            | Event::ReasoningDelta(ReasoningDelta { message_id, .. }) => {
                assert!(self.started_messages.contains(message_id), "delta first");
            }
            Event::TextCompleted(TextCompleted {
                message_id,
                part_id,
                ..
            })
            | Event::ReasoningCompleted(ReasoningCompleted {
                message_id,
                part_id,
                ..
            }) => {
                assert!(self.started_messages.contains(message_id), "text first");
                assert!(
                    self.completed_texts.insert(part_id.clone()),
                    "completed twice"
                );
            }
            Event::ToolStarted(tool) => {
                assert!(
                    self.started_messages.contains(&tool.message_id),
                    "tool first"
                );
                assert!(
                    self.started_tools.insert(tool.part_id.clone()),
                    "tool started twice"
                );
            }
            Event::ToolUpdated(tool) => {
                assert!(
                    self.started_tools.contains(&tool.part_id),
                    "updated before started"
                );
                assert!(
                    !self.ended_tools.contains(&tool.part_id),
                    "updated after it ended"
                );
            }
            Event::ToolCompleted(tool) => self.end_tool(&tool.part_id),
            Event::ToolFailed(tool) => self.end_tool(&tool.part_id),
            _ => {}
        }
    }

    fn end_tool(&mut self, part_id: &str) {
        assert!(self.started_tools.contains(part_id), "ended before started");
        assert!(
            self.ended_tools.insert(part_id.to_owned()),
            "tool ended twice"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut translator = Translator::new(SESSION);
    let mut promises = Promises::default();
    while !u.is_empty() {
        let Ok(event) = event(&mut u) else {
            break;
        };
        for update in translator.translate(&event) {
            if let AgentUpdate::Event(event) = update {
                promises.check(&event);
            }
        }
    }
});
