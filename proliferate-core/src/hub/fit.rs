//! Keeps every event within the largest event a session records: an agent that emits a huge
//! tool output, text or argument object gets its longest strings cut, and, past that, its
//! largest free-form fields emptied, so no client is sent, and no log holds, an unbounded frame.

use serde_json::Value;

use crate::protocol::v1::Event;

/// What ends a string that was cut.
pub const CUT_MARK: &str = "… [truncated]";

/// The most strings cut in one event before its free-form fields are emptied.
const MAX_CUTS: usize = 64;

/// Returns `event` if its JSON fits in `limit` bytes; otherwise a copy whose longest strings
/// are cut (each ending in [`CUT_MARK`]) and, if that is not enough, whose largest object or
/// array fields are emptied, until it fits.
pub fn fit(event: Event, limit: usize) -> Event {
    let size = encoded_len(&event);
    if size <= limit {
        return event;
    }
    let Ok(mut value) = serde_json::to_value(&event) else {
        return event;
    };
    let mut size = size;
    for _ in 0..MAX_CUTS {
        if size <= limit || !cut_longest_string(&mut value, size - limit) {
            break;
        }
        size = serde_json::to_vec(&value).map_or(usize::MAX, |bytes| bytes.len());
    }
    while size > limit && empty_largest_field(&mut value) {
        size = serde_json::to_vec(&value).map_or(usize::MAX, |bytes| bytes.len());
    }
    tracing::warn!(
        before = encoded_len(&event),
        after = size,
        limit,
        "cut an oversized agent event"
    );
    serde_json::from_value(value).unwrap_or(event)
}

fn encoded_len(event: &Event) -> usize {
    serde_json::to_vec(event).map_or(usize::MAX, |bytes| bytes.len())
}

/// Cuts the longest string by `excess` bytes (and the mark); false when no string is long
/// enough to gain anything.
fn cut_longest_string(value: &mut Value, excess: usize) -> bool {
    let Some(longest) = longest_string(value) else {
        return false;
    };
    if longest.len() <= CUT_MARK.len() {
        return false;
    }
    let mut keep = longest.len().saturating_sub(excess + CUT_MARK.len());
    while !longest.is_char_boundary(keep) {
        keep -= 1;
    }
    longest.truncate(keep);
    longest.push_str(CUT_MARK);
    true
}

fn longest_string(value: &mut Value) -> Option<&mut String> {
    match value {
        Value::String(text) => Some(text),
        Value::Array(items) => items
            .iter_mut()
            .filter_map(longest_string)
            .max_by_key(|text| text.len()),
        Value::Object(fields) => fields
            .values_mut()
            .filter_map(longest_string)
            .max_by_key(|text| text.len()),
        _ => None,
    }
}

/// Empties the event's largest object or array field (its arguments, its metadata); false when
/// none is left to empty.
fn empty_largest_field(value: &mut Value) -> bool {
    let Value::Object(fields) = value else {
        return false;
    };
    let largest = fields
        .values_mut()
        .filter(|field| match field {
            Value::Object(inner) => !inner.is_empty(),
            Value::Array(inner) => !inner.is_empty(),
            _ => false,
        })
        .max_by_key(|field| serde_json::to_vec(field).map_or(0, |bytes| bytes.len()));
    match largest {
        Some(Value::Object(inner)) => inner.clear(),
        Some(Value::Array(inner)) => inner.clear(),
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::v1::{ToolCompleted, ToolStarted};
    use serde_json::json;

    fn completed(output: String, input: Value) -> Event {
        Event::ToolCompleted(ToolCompleted {
            message_id: "msg_1".into(),
            part_id: "prt_1".into(),
            call_id: "call_1".into(),
            tool: "bash".into(),
            input,
            output,
            ..Default::default()
        })
    }

    #[test]
    fn an_event_within_the_limit_is_kept_whole() {
        let event = completed("ok".into(), json!({"command": "ls"}));
        assert_eq!(fit(event.clone(), 1024), event);
    }

    #[test]
    fn a_huge_output_is_cut_to_fit_and_says_so() {
        let event = completed("é".repeat(100_000), json!({"command": "cat big"}));
        let Event::ToolCompleted(cut) = fit(event, 4096) else {
            panic!("the event changed kind");
        };
        assert!(encoded_len(&Event::ToolCompleted(cut.clone())) <= 4096);
        assert!(cut.output.ends_with(CUT_MARK));
        assert!(cut.output.starts_with("éé"));
        assert_eq!(cut.input, json!({"command": "cat big"}));
        assert_eq!(cut.call_id, "call_1");
    }

    #[test]
    fn escaped_characters_are_counted_as_sent() {
        let event = completed("\u{1}".repeat(10_000), Value::Null);
        assert!(encoded_len(&fit(event, 2048)) <= 2048);
    }

    #[test]
    fn arguments_of_many_small_values_are_emptied() {
        let input: serde_json::Map<String, Value> = (0..20_000)
            .map(|index| (format!("k{index}"), json!(index)))
            .collect();
        let event = Event::ToolStarted(ToolStarted {
            call_id: "call_2".into(),
            tool: "write".into(),
            input: Value::Object(input),
            ..Default::default()
        });
        let Event::ToolStarted(fitted) = fit(event, 1024) else {
            panic!("the event changed kind");
        };
        assert_eq!(fitted.input, json!({}));
        assert_eq!(fitted.call_id, "call_2");
    }
}
