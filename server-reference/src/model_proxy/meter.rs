//! Usage read from model responses as they pass through the proxy, without holding them back:
//! OpenAI's `usage` (in the last streamed chunk, or the body) and Anthropic's `message_start` and
//! `message_delta` usage.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use proliferate_core::protocol::v1::TokenUsage;
use serde_json::Value;

use super::upstream::Surface;

/// The most of a non-streamed answer kept to read its usage.
const MAX_BODY: usize = 8 << 20;

/// Reads a response's usage from its bytes.
#[derive(Debug)]
pub struct UsageMeter {
    surface: Surface,
    streamed: bool,
    pending: Vec<u8>,
    usage: Option<TokenUsage>,
}

impl UsageMeter {
    /// A meter for a response of `surface`, streamed (server-sent events) or not (one JSON body).
    pub fn new(surface: Surface, streamed: bool) -> Self {
        Self {
            surface,
            streamed,
            pending: Vec::new(),
            usage: None,
        }
    }

    /// Reads the next bytes of the response.
    pub fn observe(&mut self, chunk: &[u8]) {
        if !self.streamed {
            if self.pending.len() + chunk.len() <= MAX_BODY {
                self.pending.extend_from_slice(chunk);
            }
            return;
        }
        self.pending.extend_from_slice(chunk);
        while let Some(end) = self.pending.iter().position(|byte| *byte == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            if let Some(data) = line.trim_end().strip_prefix("data:")
                && let Ok(event) = serde_json::from_str::<Value>(data.trim())
            {
                self.read(&event);
            }
        }
        if self.pending.len() > MAX_BODY {
            self.pending.clear();
        }
    }

    /// The usage the response reported, if it reported any.
    pub fn finish(mut self) -> Option<TokenUsage> {
        if !self.streamed
            && let Ok(body) = serde_json::from_slice::<Value>(&self.pending)
        {
            self.read(&body);
        }
        self.usage
    }

    fn read(&mut self, event: &Value) {
        let count = |value: &Value| value.as_u64().unwrap_or_default();
        match self.surface {
            Surface::OpenAi => {
                let usage = &event["usage"];
                if usage.is_object() {
                    let cached = count(&usage["prompt_tokens_details"]["cached_tokens"]);
                    let reasoning = count(&usage["completion_tokens_details"]["reasoning_tokens"]);
                    self.usage = Some(TokenUsage {
                        input: count(&usage["prompt_tokens"]).saturating_sub(cached),
                        output: count(&usage["completion_tokens"]).saturating_sub(reasoning),
                        reasoning,
                        cache_read: cached,
                        ..Default::default()
                    });
                }
            }
            Surface::Anthropic => {
                let usage = match event["type"].as_str() {
                    Some("message_start") => &event["message"]["usage"],
                    _ => &event["usage"],
                };
                if !usage.is_object() {
                    return;
                }
                let total = self.usage.get_or_insert_with(TokenUsage::default);
                let set = |field: &mut u64, name: &str| {
                    if let Some(value) = usage[name].as_u64() {
                        *field = value;
                    }
                };
                set(&mut total.input, "input_tokens");
                set(&mut total.output, "output_tokens");
                set(&mut total.cache_read, "cache_read_input_tokens");
                set(&mut total.cache_write, "cache_creation_input_tokens");
            }
        }
    }
}

/// What happens once a metered response ends: with its usage, and whether it was read to the end.
pub type OnEnd = Box<dyn FnOnce(Option<TokenUsage>, bool) + Send>;

/// A response body that feeds a [`UsageMeter`] as it is forwarded, and reports when it ends,
/// finished or dropped (a cancelled turn closes the agent's connection, which drops this, which
/// drops the upstream request).
pub struct Metered<S> {
    inner: Pin<Box<S>>,
    meter: Option<UsageMeter>,
    on_end: Option<OnEnd>,
    complete: bool,
}

impl<S> Metered<S> {
    /// Meters `inner` with `meter`, calling `on_end` once.
    pub fn new(inner: S, meter: UsageMeter, on_end: OnEnd) -> Self {
        Self {
            inner: Box::pin(inner),
            meter: Some(meter),
            on_end: Some(on_end),
            complete: false,
        }
    }
}

impl<S, E> Stream for Metered<S>
where
    S: Stream<Item = Result<Bytes, E>>,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = self.inner.as_mut().poll_next(context);
        match &next {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(meter) = self.meter.as_mut() {
                    meter.observe(chunk);
                }
            }
            Poll::Ready(None) => self.complete = true,
            _ => {}
        }
        next
    }
}

impl<S> Drop for Metered<S> {
    fn drop(&mut self) {
        if let (Some(meter), Some(on_end)) = (self.meter.take(), self.on_end.take()) {
            on_end(meter.finish(), self.complete);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metered(surface: Surface, streamed: bool, pieces: &[&str]) -> Option<TokenUsage> {
        let mut meter = UsageMeter::new(surface, streamed);
        for piece in pieces {
            meter.observe(piece.as_bytes());
        }
        meter.finish()
    }

    #[test]
    fn openai_usage_is_read_from_the_last_chunk_even_split_across_reads() {
        let usage = metered(
            Surface::OpenAi,
            true,
            &[
                "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n",
                "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":120,\"completion_to",
                "kens\":30,\"prompt_tokens_details\":{\"cached_tokens\":100},",
                "\"completion_tokens_details\":{\"reasoning_tokens\":10}}}\n\ndata: [DONE]\n\n",
            ],
        );
        assert_eq!(
            usage,
            Some(TokenUsage {
                input: 20,
                output: 20,
                reasoning: 10,
                cache_read: 100,
                ..Default::default()
            })
        );
        assert_eq!(metered(Surface::OpenAi, true, &["data: [DONE]\n\n"]), None);
    }

    #[test]
    fn anthropic_usage_adds_the_final_output_count_to_the_start() {
        let usage = metered(
            Surface::Anthropic,
            true,
            &[
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":7,\"cache_read_input_tokens\":3,\"output_tokens\":1}}}\n\n",
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"x\"}}\n\n",
                "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n",
            ],
        );
        assert_eq!(
            usage,
            Some(TokenUsage {
                input: 25,
                output: 15,
                cache_read: 3,
                cache_write: 7,
                ..Default::default()
            })
        );
    }

    #[test]
    fn a_whole_body_is_read_at_the_end() {
        let usage = metered(
            Surface::Anthropic,
            false,
            &["{\"usage\":{\"input_tokens\":4,", "\"output_tokens\":2}}"],
        );
        assert_eq!(usage.map(|usage| (usage.input, usage.output)), Some((4, 2)));
    }
}
