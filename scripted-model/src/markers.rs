//! The inline marker language: picks the script for a user message.
//!
//! `[[script:NAME]]` selects a named script and wins over everything else.
//! Otherwise these markers combine into a one- or two-step script:
//! `[[say:TEXT]]`, `[[deltas:N]]`, `[[delay:MS]]`, `[[stamps:N]]` (N deltas, each the time it
//! was sent, see [`crate::wire::SENT_AT`]), and at most one action,
//! `[[bash:COMMAND]]`, `[[tool:NAME JSON]]`, `[[fail:STATUS]]`, `[[malformed]]`
//! or `[[stall]]`. A marker's argument runs to the next `]]`, except the JSON of
//! `[[tool:...]]`, which is parsed as JSON first (so it may contain `]]`).
//! Double brackets with an unknown keyword are left alone as ordinary text.

use serde_json::{Map, Value};

use crate::script::{Script, ScriptLibrary, Step};

/// The answer when the user's message has no marker.
pub(crate) const DEFAULT_TEXT: &str = "Hello from the scripted model.";

/// What a marker asks for.
#[derive(Debug)]
enum Marker {
    Script(String),
    Say(String),
    Deltas(usize),
    Delay(u64),
    Stamps(usize),
    Action(Action),
}

/// A marker that decides the first step.
#[derive(Debug)]
enum Action {
    Bash(String),
    Tool(String, Value),
    Fail(u16),
    Malformed,
    Stall,
}

/// The script for a user message, given the library of named scripts.
pub(crate) fn script_for(prompt: &str, library: &ScriptLibrary) -> Script {
    let markers = match parse_markers(prompt) {
        Ok(markers) => markers,
        Err(problem) => return text_script(problem),
    };
    if let Some(name) = markers.iter().find_map(|marker| match marker {
        Marker::Script(name) => Some(name),
        _ => None,
    }) {
        return match library.get(name) {
            Some(script) => script.clone(),
            None => text_script(format!("unknown script {name}")),
        };
    }

    let mut say = None;
    let mut deltas = None;
    let mut delay_ms = 0;
    let mut action = None;
    for marker in markers {
        match marker {
            Marker::Script(_) => {}
            Marker::Say(text) => say = Some(text),
            Marker::Deltas(count) => deltas = Some(count),
            Marker::Delay(ms) => delay_ms = ms,
            Marker::Stamps(count) => {
                say = Some(format!("{} ", crate::wire::SENT_AT).repeat(count));
                deltas = Some(count);
            }
            Marker::Action(next) => {
                if let Some(first) = &action {
                    return text_script(format!(
                        "conflicting markers: {} and {}",
                        describe(first),
                        describe(&next)
                    ));
                }
                action = Some(next);
            }
        }
    }

    let text = |default: String| Step::Text {
        text: say.clone().unwrap_or(default),
        deltas,
    };
    let steps = match action {
        None => vec![text(DEFAULT_TEXT.to_owned())],
        Some(Action::Bash(command)) => vec![
            Step::ToolCall {
                name: "bash".to_owned(),
                arguments: serde_json::json!({
                    "command": command,
                    "description": "Run a scripted command",
                }),
            },
            text("Ran the command: {tool_output}".to_owned()),
        ],
        Some(Action::Tool(name, arguments)) => {
            let follow_up = text(format!("Used {name}."));
            vec![Step::ToolCall { name, arguments }, follow_up]
        }
        Some(Action::Fail(status)) => vec![Step::Error {
            status,
            message: "scripted failure".to_owned(),
        }],
        Some(Action::Malformed) => vec![Step::Malformed],
        Some(Action::Stall) => vec![Step::Stall],
    };
    Script { steps, delay_ms }
}

/// A one-step script answering `text`.
fn text_script(text: String) -> Script {
    Script {
        steps: vec![Step::Text { text, deltas: None }],
        delay_ms: 0,
    }
}

/// How an action marker reads, for error messages.
fn describe(action: &Action) -> String {
    match action {
        Action::Bash(command) => format!("[[bash:{command}]]"),
        Action::Tool(name, arguments) => format!("[[tool:{name} {arguments}]]"),
        Action::Fail(status) => format!("[[fail:{status}]]"),
        Action::Malformed => "[[malformed]]".to_owned(),
        Action::Stall => "[[stall]]".to_owned(),
    }
}

/// Every known marker in `text`, in order, or a description of the first invalid one.
fn parse_markers(text: &str) -> Result<Vec<Marker>, String> {
    let mut markers = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("[[") {
        let inner = &rest[start + 2..];
        if let Some(tool) = inner.strip_prefix("tool:") {
            let (marker, after) = parse_tool(tool)?;
            markers.push(Marker::Action(marker));
            rest = after;
            continue;
        }
        let Some(end) = inner.find("]]") else { break };
        let body = &inner[..end];
        rest = &inner[end + 2..];
        let (keyword, argument) = match body.split_once(':') {
            Some((keyword, argument)) => (keyword, Some(argument)),
            None => (body, None),
        };
        let invalid = |why: &str| format!("invalid marker [[{body}]]: {why}");
        let marker = match (keyword, argument) {
            ("script", Some(name)) => Marker::Script(name.trim().to_owned()),
            ("say", Some(text)) => Marker::Say(text.to_owned()),
            ("deltas", Some(count)) => match count.trim().parse::<usize>() {
                Ok(count) if count > 0 => Marker::Deltas(count),
                _ => return Err(invalid("expected a positive number of deltas")),
            },
            ("stamps", Some(count)) => match count.trim().parse::<usize>() {
                Ok(count) if count > 0 => Marker::Stamps(count),
                _ => return Err(invalid("expected a positive number of stamps")),
            },
            ("delay", Some(ms)) => match ms.trim().parse::<u64>() {
                Ok(ms) => Marker::Delay(ms),
                Err(_) => return Err(invalid("expected a delay in milliseconds")),
            },
            ("bash", Some(command)) => Marker::Action(Action::Bash(command.trim().to_owned())),
            ("fail", Some(status)) => match status.trim().parse::<u16>() {
                Ok(status) if (400..=599).contains(&status) => Marker::Action(Action::Fail(status)),
                _ => return Err(invalid("expected an HTTP status from 400 to 599")),
            },
            ("malformed", None) => Marker::Action(Action::Malformed),
            ("stall", None) => Marker::Action(Action::Stall),
            _ => continue,
        };
        markers.push(marker);
    }
    Ok(markers)
}

/// Parses the inside of `[[tool:NAME JSON]]` after `tool:`: the marker and the text after `]]`.
/// Without JSON the arguments are `{}`.
fn parse_tool(text: &str) -> Result<(Action, &str), String> {
    let text = text.trim_start();
    let name_end = text
        .find(|c: char| c.is_whitespace() || c == ']')
        .unwrap_or(text.len());
    let name = &text[..name_end];
    if name.is_empty() {
        return Err("invalid marker [[tool:...]]: expected a tool name".to_owned());
    }
    let json = text[name_end..].trim_start();
    if let Some(after) = json.strip_prefix("]]") {
        return Ok((
            Action::Tool(name.to_owned(), Value::Object(Map::new())),
            after,
        ));
    }
    let mut values = serde_json::Deserializer::from_str(json).into_iter::<Value>();
    let arguments = match values.next() {
        Some(Ok(arguments)) => arguments,
        Some(Err(error)) => {
            return Err(format!(
                "invalid marker [[tool:{name} ...]]: arguments are not JSON: {error}"
            ));
        }
        None => return Err(format!("invalid marker [[tool:{name} ...]]: missing `]]`")),
    };
    let after = json[values.byte_offset()..].trim_start();
    match after.strip_prefix("]]") {
        Some(after) => Ok((Action::Tool(name.to_owned(), arguments), after)),
        None => Err(format!(
            "invalid marker [[tool:{name} ...]]: expected `]]` after the JSON arguments"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(prompt: &str) -> Script {
        script_for(prompt, &ScriptLibrary::default())
    }

    fn text(text: &str, deltas: Option<usize>) -> Step {
        Step::Text {
            text: text.to_owned(),
            deltas,
        }
    }

    #[test]
    fn no_marker_is_the_default_text() {
        assert_eq!(
            script("hello there [[unknown]]").steps,
            vec![text(DEFAULT_TEXT, None)]
        );
    }

    #[test]
    fn say_deltas_and_delay_combine() {
        let script = script("x [[delay:25]] [[say:Hi there]] [[deltas:3]]");
        assert_eq!(script.delay_ms, 25);
        assert_eq!(script.steps, vec![text("Hi there", Some(3))]);
    }

    #[test]
    fn stamps_are_one_delta_each() {
        let script = script("[[stamps:3]] [[delay:5]]");
        assert_eq!(script.delay_ms, 5);
        let stamp = format!("{} ", crate::wire::SENT_AT);
        assert_eq!(script.steps, vec![text(&stamp.repeat(3), Some(3))]);
        let Step::Text { text, deltas } = &script.steps[0] else {
            unreachable!()
        };
        assert_eq!(crate::wire::split_text(text, *deltas), vec![stamp; 3]);
    }

    #[test]
    fn bash_is_a_tool_call_then_a_follow_up() {
        let script = script("please [[bash:ls -la]]");
        assert_eq!(
            script.steps,
            vec![
                Step::ToolCall {
                    name: "bash".to_owned(),
                    arguments: serde_json::json!({
                        "command": "ls -la",
                        "description": "Run a scripted command"
                    }),
                },
                text("Ran the command: {tool_output}", None),
            ]
        );
    }

    #[test]
    fn tool_arguments_may_contain_brackets() {
        let script = script(r#"[[tool:write {"path":"a","content":"[[x]]"}]] [[say:Wrote.]]"#);
        assert_eq!(
            script.steps,
            vec![
                Step::ToolCall {
                    name: "write".to_owned(),
                    arguments: serde_json::json!({"path": "a", "content": "[[x]]"}),
                },
                text("Wrote.", None),
            ]
        );
        let bare = script_for("[[tool:todoread]]", &ScriptLibrary::default());
        assert_eq!(
            bare.steps[0],
            Step::ToolCall {
                name: "todoread".to_owned(),
                arguments: serde_json::json!({})
            }
        );
        assert_eq!(bare.steps[1], text("Used todoread.", None));
    }

    #[test]
    fn failure_markers() {
        assert_eq!(
            script("[[fail:503]]").steps,
            vec![Step::Error {
                status: 503,
                message: "scripted failure".to_owned()
            }]
        );
        assert_eq!(script("[[malformed]]").steps, vec![Step::Malformed]);
        assert_eq!(script("[[stall]]").steps, vec![Step::Stall]);
    }

    #[test]
    fn invalid_markers_answer_with_the_problem() {
        for (prompt, problem) in [
            ("[[deltas:many]]", "invalid marker [[deltas:many]]"),
            ("[[fail:200]]", "invalid marker [[fail:200]]"),
            ("[[stamps:0]]", "expected a positive number of stamps"),
            ("[[tool:x {nope]]", "arguments are not JSON"),
            (
                "[[stall]] [[malformed]]",
                "conflicting markers: [[stall]] and [[malformed]]",
            ),
        ] {
            match &script(prompt).steps[..] {
                [Step::Text { text, .. }] => assert!(text.contains(problem), "{prompt}: {text}"),
                other => panic!("{prompt}: {other:?}"),
            }
        }
    }

    #[test]
    fn named_scripts_win() {
        let mut library = ScriptLibrary::default();
        let named = Script {
            steps: vec![Step::Stall],
            delay_ms: 7,
        };
        library.insert("slow", named.clone());
        assert_eq!(script_for("[[say:no]] [[script:slow]]", &library), named);
        assert_eq!(
            script_for("[[script:missing]]", &library).steps,
            vec![text("unknown script missing", None)]
        );
    }
}
