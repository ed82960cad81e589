//! Scripts: what the model answers, step by step, and named libraries of them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A scripted conversation turn: the model's answer to each successive step.
///
/// Step `n` answers the request whose conversation holds `n` assistant
/// messages after the last user message, so a tool call in step 0 is followed,
/// once the tool result comes back, by step 1. Past the last step the model
/// answers the text `Done.`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// The answers, one per model step.
    pub steps: Vec<Step>,
    /// Milliseconds to wait before each streamed chunk (or before a non-streamed answer).
    #[serde(default)]
    pub delay_ms: u64,
}

/// One model answer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// Answer with text, streamed as several content deltas whose concatenation is `text`.
    ///
    /// `{tool_output}` in `text` is replaced with the content of the last `tool` message.
    Text {
        /// The full answer.
        text: String,
        /// How many content deltas to stream; by default one per word (spaces kept).
        /// When larger than the number of characters, some deltas are empty.
        #[serde(default)]
        deltas: Option<usize>,
    },
    /// Call one tool; the answer finishes with `finish_reason: "tool_calls"`.
    ToolCall {
        /// The tool's name, e.g. `bash`.
        name: String,
        /// The tool's arguments, sent as JSON text; a JSON string is sent verbatim,
        /// so a script can also send arguments that are not valid JSON.
        arguments: serde_json::Value,
    },
    /// Fail with an HTTP error and an OpenAI-style error body.
    Error {
        /// The HTTP status, 400 to 599.
        status: u16,
        /// The error message.
        message: String,
    },
    /// Stream one valid text chunk, then a line that is not JSON, then end the stream.
    Malformed,
    /// Stream one valid text chunk, then send nothing until the client disconnects.
    Stall,
}

/// Why a script library could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The script file could not be read.
    #[error("cannot read script file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The script file is not valid JSON or does not have the script file shape.
    #[error("invalid script file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The underlying error, with line and column.
        source: serde_json::Error,
    },
    /// A script in the file is well-formed JSON but cannot be played.
    #[error("invalid script {name:?} in {path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The script's name.
        name: String,
        /// What is wrong.
        problem: String,
    },
}

/// Named scripts, selected by a `[[script:NAME]]` marker in the user's message.
#[derive(Clone, Debug, Default)]
pub struct ScriptLibrary {
    scripts: HashMap<String, Script>,
}

/// The script file format: `{"scripts": {"NAME": {"steps": [...], "delay_ms": 0}}}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptFile {
    scripts: HashMap<String, Script>,
}

impl ScriptLibrary {
    /// Loads a JSON script file of the form `{"scripts": {"NAME": {"steps": [...], "delay_ms": 0}}}`.
    pub fn from_file(path: &Path) -> Result<Self, ScriptError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScriptError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file: ScriptFile =
            serde_json::from_str(&text).map_err(|source| ScriptError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        for (name, script) in &file.scripts {
            if let Err(problem) = validate(script) {
                return Err(ScriptError::Invalid {
                    path: path.to_path_buf(),
                    name: name.clone(),
                    problem,
                });
            }
        }
        Ok(Self {
            scripts: file.scripts,
        })
    }

    /// Adds a script under `name`, replacing any script of that name.
    pub fn insert(&mut self, name: impl Into<String>, script: Script) {
        self.scripts.insert(name.into(), script);
    }

    /// The script named `name`, if any.
    pub(crate) fn get(&self, name: &str) -> Option<&Script> {
        self.scripts.get(name)
    }
}

/// Checks what JSON deserialization cannot: error statuses and delta counts.
fn validate(script: &Script) -> Result<(), String> {
    for (index, step) in script.steps.iter().enumerate() {
        match step {
            Step::Error { status, .. } if !(400..=599).contains(status) => {
                return Err(format!(
                    "step {index}: error status {status} is not between 400 and 599"
                ));
            }
            Step::Text {
                deltas: Some(0), ..
            } => return Err(format!("step {index}: deltas must be at least 1")),
            _ => {}
        }
    }
    Ok(())
}
