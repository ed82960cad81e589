//! Swift: the UniFFI records and enums of every value the gateway sends (`bindings-swift/src/
//! wire.rs`), decoded from the protocol types' JSON; UniFFI turns them into Swift structs and
//! enums. Each event's payload is a record named after it, so an added field reaches Swift
//! without breaking a `case let .textDelta(delta)`.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde_json::Value;

use crate::schema::{Member, Schema, camel, properties, reference, required};

/// What the Swift API returns; everything they refer to is generated too.
const ROOTS: &[&str] = &[
    "Event",
    "PresenceEntry",
    "PromptAdmission",
    "SessionInfo",
    "SessionList",
    "SnapshotInfo",
    "Transcript",
    "UsageReport",
    "Welcome",
];

/// A field's Rust type and its serde attribute.
struct Field {
    rust: String,
    serde: &'static str,
}

impl Schema {
    /// True for definitions that are a set of strings (`SessionStatus`, `ErrorCode`...).
    fn is_string(&self, name: &str) -> bool {
        let definition = &self.definitions[name];
        definition["oneOf"]
            .as_array()
            .is_some_and(|members| members.iter().all(|member| member.get("const").is_some()))
            || definition["anyOf"].is_array()
    }

    /// Every definition the roots refer to, directly or not.
    fn reachable(&self) -> BTreeSet<String> {
        fn visit(schema: &Schema, value: &Value, found: &mut BTreeSet<String>) {
            match value {
                Value::Object(map) => {
                    if let Some(name) = reference(value)
                        && found.insert(name.clone())
                    {
                        visit(schema, &schema.definitions[&name], found);
                    }
                    map.values().for_each(|inner| visit(schema, inner, found));
                }
                Value::Array(items) => items.iter().for_each(|inner| visit(schema, inner, found)),
                _ => {}
            }
        }
        let mut found: BTreeSet<String> = ROOTS.iter().map(|root| (*root).to_owned()).collect();
        for root in ROOTS {
            visit(self, &self.definitions[*root], &mut found);
        }
        found
    }

    /// The Rust type of a schema, and whether it is JSON kept as text.
    fn rust_type(&self, schema: &Value) -> (String, bool) {
        if let Some(name) = reference(schema) {
            return if self.is_string(&name) {
                ("String".into(), false)
            } else {
                (name, false)
            };
        }
        if let Some(members) = schema["anyOf"].as_array() {
            let present: Vec<&Value> = members.iter().filter(|m| m["type"] != "null").collect();
            if let [only] = present.as_slice()
                && present.len() < members.len()
            {
                let (inner, json) = self.rust_type(only);
                return (format!("Option<{inner}>"), json);
            }
            return ("String".into(), true);
        }
        let (kind, nullable) = match &schema["type"] {
            Value::Array(kinds) => {
                let present: Vec<&Value> = kinds.iter().filter(|kind| *kind != "null").collect();
                match present.as_slice() {
                    [kind] => (
                        kind.as_str().unwrap_or_default(),
                        present.len() < kinds.len(),
                    ),
                    _ => return ("String".into(), true),
                }
            }
            Value::String(kind) => (kind.as_str(), false),
            _ => return ("String".into(), true),
        };
        let rust: String = match kind {
            "string" => "String".into(),
            "boolean" => "bool".into(),
            "number" => "f64".into(),
            "integer" => match schema["format"].as_str() {
                Some("uint64") => "u64".into(),
                Some("uint32") => "u32".into(),
                Some("uint16") => "u16".into(),
                Some("int32") => "i32".into(),
                _ => "i64".into(),
            },
            "array" => {
                let (item, json) = self.rust_type(&schema["items"]);
                if json {
                    return ("String".into(), true);
                }
                format!("Vec<{item}>")
            }
            _ => return ("String".into(), true),
        };
        if nullable {
            (format!("Option<{rust}>"), false)
        } else {
            (rust, false)
        }
    }

    fn field(&self, spec: &Value, is_required: bool) -> Field {
        let (rust, json) = self.rust_type(spec);
        if json {
            return Field {
                rust,
                serde: "#[serde(default, deserialize_with = \"json_text\")]",
            };
        }
        let defaultable = rust.starts_with("Option<")
            || rust.starts_with("Vec<")
            || ["u64", "u32", "u16", "i32", "i64", "f64", "bool"].contains(&rust.as_str());
        match (is_required, defaultable) {
            (true, _) => Field { rust, serde: "" },
            (false, true) => Field {
                rust,
                serde: "#[serde(default)]",
            },
            (false, false) => Field {
                rust: format!("Option<{rust}>"),
                serde: "#[serde(default)]",
            },
        }
    }

    fn fields(&self, schema: &Value, indent: &str, visibility: &str) -> String {
        let required = required(schema);
        let mut out = String::new();
        for (name, spec) in &properties(schema) {
            if name == "type" && spec.get("const").is_some() {
                continue;
            }
            let field = self.field(spec, required.contains(&name.as_str()));
            out += &doc(spec["description"].as_str(), indent);
            if !field.serde.is_empty() {
                let _ = writeln!(out, "{indent}{}", field.serde);
            }
            // Swift callers may leave out what may be absent.
            if field.rust.starts_with("Option<") {
                let _ = writeln!(out, "{indent}#[uniffi(default)]");
            }
            let _ = writeln!(out, "{indent}{visibility}{name}: {},", field.rust);
        }
        out
    }
}

fn doc(text: Option<&str>, indent: &str) -> String {
    let mut out = String::new();
    for line in text.unwrap_or_default().lines() {
        let _ = writeln!(out, "{indent}/// {line}");
    }
    out
}

const HEADER: &str =
    "//! The values the gateway sends, as Swift sees them: UniFFI records and enums decoded from
//! the protocol types' JSON. Open-ended values (tool input, metadata) are JSON text.
//!
//! Generated from `docs/schema/v1.json`. Do not edit: run `cargo run -p proliferate-codegen`.

use serde::{Deserialize, Deserializer};

/// Decodes any JSON value as its text.
fn json_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(serde_json::Value::deserialize(deserializer)?.to_string())
}

/// Decodes a union member's payload.
fn payload<T: serde::de::DeserializeOwned, E: serde::de::Error>(
    value: serde_json::Value,
) -> Result<T, E> {
    serde_json::from_value(value).map_err(E::custom)
}
";

fn record(schema: &Schema, name: &str, definition: &Value) -> String {
    let fallback = format!("A `{name}` value.");
    let mut out = doc(
        Some(definition["description"].as_str().unwrap_or(&fallback)),
        "",
    );
    out += "#[derive(Debug, Clone, PartialEq, Deserialize, uniffi::Record)]\n";
    let _ = writeln!(out, "pub struct {name} {{");
    out += &schema.fields(definition, "    ", "pub ");
    out + "}\n"
}

/// A union as an enum of payload records, decoded by its `type` tag; a tag this version does not
/// know becomes `Unknown` rather than an error.
fn union(schema: &Schema, name: &str, members: &[Member]) -> String {
    let fallback = format!("One `{name}`, tagged on `type`.");
    let description = schema.definitions[name]["description"].as_str();
    let mut out = doc(Some(description.unwrap_or(&fallback)), "");
    out += "#[derive(Debug, Clone, PartialEq, uniffi::Enum)]\n";
    let _ = writeln!(out, "pub enum {name} {{");
    let mut arms = String::new();
    for member in members {
        let description = schema
            .definitions
            .get(&member.target)
            .unwrap_or(&member.schema);
        out += &doc(description["description"].as_str(), "    ");
        let variant = camel(&member.tag);
        let _ = writeln!(out, "    {variant}({}),", member.target);
        let _ = writeln!(
            arms,
            "            \"{}\" => Self::{variant}(payload(value)?),",
            member.tag
        );
    }
    out += "    /// A type this version does not know.\n    Unknown {\n";
    out += "        /// Its `type` tag.\n        type_name: String,\n";
    out += "        /// The whole value as JSON text.\n        json: String,\n    },\n}\n\n";
    let _ = write!(
        out,
        "impl<'de> Deserialize<'de> for {name} {{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {{
        let value = serde_json::Value::deserialize(deserializer)?;
        let type_name = value[\"type\"].as_str().unwrap_or_default().to_owned();
        let decoded = match type_name.as_str() {{
{arms}            _ => {{
                let json = value.to_string();
                return Ok(Self::Unknown {{ type_name, json }});
            }}
        }};
        Ok(decoded)
    }}
}}
"
    );
    out
}

/// `bindings-swift/src/wire.rs`.
pub fn records(schema: &Schema) -> String {
    let mut out = String::from(HEADER);
    for name in schema.reachable() {
        if schema.is_string(&name) {
            continue;
        }
        out += "\n";
        match schema.unions.get(&name) {
            Some(members) => {
                for member in members {
                    if !schema.definitions.contains_key(&member.target) {
                        out += &record(schema, &member.target, &member.schema);
                        out += "\n";
                    }
                }
                out += &union(schema, &name, members);
            }
            None => out += &record(schema, &name, &schema.definitions[&name]),
        }
    }
    out
}
