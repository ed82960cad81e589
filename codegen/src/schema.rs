//! The wire schema as the generators read it: definitions, tagged unions and their tags.

use std::collections::BTreeMap;

use proliferate_core::protocol::v1::{ErrorCode, wire_schema};
use serde_json::{Map, Value};

/// One member of a tagged union: its `type` tag, the name of its payload, and its schema.
pub struct Member {
    /// The `type` tag on the wire.
    pub tag: String,
    /// The payload's name: its definition, or a name made from the tag and the union.
    pub target: String,
    /// The member's schema.
    pub schema: Value,
}

/// The schema's definitions, with the tagged unions found among them.
pub struct Schema {
    /// Every definition, by name, sorted.
    pub definitions: BTreeMap<String, Value>,
    /// The unions tagged on `type`, by name.
    pub unions: BTreeMap<String, Vec<Member>>,
    /// The tags each payload carries.
    pub tags: BTreeMap<String, Vec<String>>,
}

impl Schema {
    /// The schema of protocol v1.
    pub fn v1() -> Self {
        let schema = wire_schema();
        let definitions: BTreeMap<String, Value> = schema["$defs"]
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut unions = BTreeMap::new();
        let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, definition) in &definitions {
            let members = items(&definition["oneOf"]);
            if members
                .first()
                .is_none_or(|first| first.get("const").is_some())
            {
                continue;
            }
            let members: Vec<Member> = members
                .iter()
                .map(|member| {
                    let tag = text(&member["properties"]["type"]["const"]).to_owned();
                    let target =
                        reference(member).unwrap_or_else(|| format!("{}{name}", camel(&tag)));
                    tags.entry(target.clone()).or_default().push(tag.clone());
                    Member {
                        tag,
                        target,
                        schema: member.clone(),
                    }
                })
                .collect();
            unions.insert(name.clone(), members);
        }
        Self {
            definitions,
            unions,
            tags,
        }
    }
}

/// Every error code this version knows, with its description.
pub fn error_codes() -> Vec<(&'static str, &'static str)> {
    ErrorCode::ALL
        .iter()
        .map(|code| (code.as_str(), code.description()))
        .collect()
}

/// `snake_case` as `CamelCase`.
pub fn camel(tag: &str) -> String {
    tag.split('_')
        .map(|word| {
            let mut letters = word.chars();
            letters
                .next()
                .map(|first| first.to_uppercase().chain(letters).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// The definition a `$ref` names.
pub fn reference(schema: &Value) -> Option<String> {
    schema["$ref"]
        .as_str()
        .and_then(|path| path.rsplit('/').next())
        .map(str::to_owned)
}

/// The items of an array value; none for anything else.
pub fn items(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// The properties of an object schema, sorted.
pub fn properties(schema: &Value) -> Map<String, Value> {
    schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// A string value's text; empty for anything else.
pub fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// The names a schema requires.
pub fn required(schema: &Value) -> Vec<&str> {
    items(&schema["required"]).iter().map(text).collect()
}
