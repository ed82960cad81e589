//! The OpenAI chat-completions wire format: chunks, completions, errors, usage.

use serde_json::{Value, json};

/// The content of the one valid chunk sent before a malformed line.
pub(crate) const MALFORMED_PREFIX: &str = "Partial answer";

/// The content of the one valid chunk sent before a stall.
pub(crate) const STALL_PREFIX: &str = "Thinking";

/// The line sent by the malformed step in place of a chunk.
pub(crate) const MALFORMED_LINE: &str = "data: {not json\n\n";

/// The last line of every complete stream.
pub(crate) const DONE_LINE: &str = "data: [DONE]\n\n";

/// What identifies one answer: shared by all of its chunks.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    /// `chatcmpl-N`.
    pub id: String,
    /// `call_N`, for a tool call.
    pub call_id: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// The model named in the request.
    pub model: String,
    /// The rough prompt token count reported in usage.
    pub prompt_tokens: u64,
}

impl Envelope {
    /// A streamed chunk with one choice and optional usage.
    fn chunk(&self, delta: Value, finish_reason: Option<&str>, usage: Option<Value>) -> Value {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        });
        if let Some(usage) = usage {
            chunk["usage"] = usage;
        }
        chunk
    }

    /// Token usage with `completion` completion tokens.
    fn usage(&self, completion: usize) -> Value {
        let completion = completion as u64;
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        })
    }

    /// The chunks streaming `text` in the given pieces, ending with `finish_reason: "stop"` and usage.
    pub(crate) fn text_chunks(&self, pieces: &[&str]) -> Vec<Value> {
        let mut chunks = vec![self.first_text_chunk("")];
        chunks.extend(
            pieces
                .iter()
                .map(|piece| self.chunk(json!({"content": piece}), None, None)),
        );
        chunks.push(self.chunk(json!({}), Some("stop"), Some(self.usage(pieces.len()))));
        chunks
    }

    /// The opening chunk of a text answer, with the assistant role and `content`.
    pub(crate) fn first_text_chunk(&self, content: &str) -> Value {
        self.chunk(json!({"role": "assistant", "content": content}), None, None)
    }

    /// The chunks streaming one tool call, its arguments in pieces, ending with
    /// `finish_reason: "tool_calls"` and usage.
    pub(crate) fn tool_call_chunks(&self, name: &str, argument_pieces: &[&str]) -> Vec<Value> {
        let mut chunks = vec![self.chunk(
            json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "index": 0,
                    "id": self.call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }],
            }),
            None,
            None,
        )];
        chunks.extend(argument_pieces.iter().map(|piece| {
            self.chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                None,
                None,
            )
        }));
        chunks.push(self.chunk(
            json!({}),
            Some("tool_calls"),
            Some(self.usage(argument_pieces.len())),
        ));
        chunks
    }

    /// A non-streamed completion whose message is `message`.
    fn completion(&self, message: Value, finish_reason: &str, completion_tokens: usize) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": self.usage(completion_tokens),
        })
    }

    /// A non-streamed text completion.
    pub(crate) fn text_completion(&self, text: &str, pieces: usize) -> Value {
        self.completion(
            json!({"role": "assistant", "content": text}),
            "stop",
            pieces,
        )
    }

    /// A non-streamed tool call completion.
    pub(crate) fn tool_call_completion(&self, name: &str, arguments: &str, pieces: usize) -> Value {
        self.completion(
            json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": self.call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }],
            }),
            "tool_calls",
            pieces,
        )
    }
}

/// An OpenAI-style error body.
pub(crate) fn error_body(status: u16, message: &str) -> Value {
    let kind = match status {
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    };
    json!({"error": {"message": message, "type": kind, "code": status}})
}

/// Replaced, in a streamed line, by the time the line is sent: microseconds since the Unix epoch.
/// Benchmarks measure delivery latency from it.
pub const SENT_AT: &str = "{sent_at}";

/// `line` with [`SENT_AT`] replaced by the current time.
pub(crate) fn stamped(line: String) -> String {
    if !line.contains(SENT_AT) {
        return line;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_micros());
    line.replace(SENT_AT, &now.to_string())
}

/// One server-sent event line carrying `value`.
pub(crate) fn data_line(value: &Value) -> String {
    format!("data: {value}\n\n")
}

/// Splits `text` into content deltas: `deltas` pieces of nearly equal character
/// counts, or by default one piece per word with its trailing whitespace.
/// The pieces always concatenate to `text`.
pub(crate) fn split_text(text: &str, deltas: Option<usize>) -> Vec<&str> {
    match deltas {
        Some(count) => split_even(text, count.max(1)),
        None => split_words(text),
    }
}

/// Splits tool call arguments into two or three pieces (fewer only when too short).
pub(crate) fn split_arguments(arguments: &str) -> Vec<&str> {
    let chars = arguments.chars().count();
    split_even(arguments, chars.clamp(1, 3))
}

/// `count` pieces of `text` whose character counts differ by at most one;
/// some are empty when `text` has fewer than `count` characters.
fn split_even(text: &str, count: usize) -> Vec<&str> {
    let mut boundaries: Vec<usize> = text.char_indices().map(|(at, _)| at).collect();
    boundaries.push(text.len());
    let chars = boundaries.len() - 1;
    (0..count)
        .map(|i| &text[boundaries[i * chars / count]..boundaries[(i + 1) * chars / count]])
        .collect()
}

/// One piece per word, each keeping the whitespace that follows it.
fn split_words(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut after_space = false;
    for (at, c) in text.char_indices() {
        if after_space && !c.is_whitespace() && at > start {
            pieces.push(&text[start..at]);
            start = at;
        }
        after_space = c.is_whitespace();
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_is_the_send_time_in_microseconds() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros();
        let line = stamped(format!("data: {{\"content\":\"{SENT_AT} \"}}"));
        let stamp: u128 = line["data: {\"content\":\"".len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(stamp >= before && stamp < before + 60_000_000, "{line}");
        assert_eq!(stamped("data: plain".into()), "data: plain");
    }

    #[test]
    fn words_keep_their_spaces() {
        assert_eq!(
            split_text("Hello  from the model.\n", None),
            vec!["Hello  ", "from ", "the ", "model.\n"]
        );
        assert_eq!(split_text(" a b", None), vec![" ", "a ", "b"]);
        assert!(split_text("", None).is_empty());
    }

    #[test]
    fn even_splits_respect_characters() {
        let pieces = split_text("héllo wörld", Some(4));
        assert_eq!(pieces.len(), 4);
        assert_eq!(pieces.concat(), "héllo wörld");
        let many = split_text("abc", Some(5));
        assert_eq!(many.len(), 5);
        assert_eq!(many.concat(), "abc");
        assert_eq!(split_text("abc", Some(0)), vec!["abc"]);
    }

    #[test]
    fn arguments_split_in_two_or_three() {
        assert_eq!(split_arguments("{}"), vec!["{", "}"]);
        assert_eq!(split_arguments(r#"{"a":1}"#).len(), 3);
        assert_eq!(split_arguments(r#"{"a":1}"#).concat(), r#"{"a":1}"#);
    }
}
