//! TypeScript: an interface for every wire record and a union type for every tagged union
//! (`lib/types.ts`), the error codes among them.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde_json::Value;

use crate::schema::{Schema, properties, reference, required};

fn doc(text: Option<&str>, indent: &str) -> String {
    match text {
        Some(text) => format!("{indent}/** {} */\n", text.replace("*/", "*\\/")),
        None => String::new(),
    }
}

fn quoted(text: &str) -> String {
    Value::from(text).to_string()
}

/// The TypeScript type of a property's schema.
fn annotation(schema: &Value) -> String {
    if let Some(name) = reference(schema) {
        return name;
    }
    if let Some(constant) = schema.get("const") {
        return constant.to_string();
    }
    if let Some(members) = schema["anyOf"].as_array() {
        let known = members.iter().any(|member| member.get("const").is_some());
        let names: Vec<String> = members
            .iter()
            .map(|member| match annotation(member) {
                // Known values beside any string: keep the known ones suggested.
                open if known && open == "string" => "(string & {})".into(),
                name => name,
            })
            .collect();
        return names.join(" | ");
    }
    match &schema["type"] {
        Value::Array(kinds) => kinds
            .iter()
            .map(|kind| {
                let mut single = schema.clone();
                single["type"] = kind.clone();
                annotation(&single)
            })
            .collect::<Vec<_>>()
            .join(" | "),
        Value::String(kind) => match kind.as_str() {
            "array" => format!("Array<{}>", annotation(&schema["items"])),
            "object" => "Record<string, unknown>".into(),
            "null" => "null".into(),
            "integer" | "number" => "number".into(),
            "string" | "boolean" => kind.clone(),
            _ => "unknown".into(),
        },
        _ => "unknown".into(),
    }
}

/// Frame payloads also travel without their tag (HTTP bodies, connection updates), so their
/// `type` is optional; events and transcript parts always carry it.
fn record(name: &str, schema: &Value, tags: &[String], optional_tag: bool) -> String {
    let fallback = match tags.first() {
        Some(tag) => format!("A `{tag}` value."),
        None => name.to_owned(),
    };
    let mut out = doc(
        Some(schema["description"].as_str().unwrap_or(&fallback)),
        "",
    );
    let _ = writeln!(out, "export interface {name} {{");
    if !tags.is_empty() {
        out += &doc(Some("The `type` tag this value carries on the wire."), "  ");
        let tags: Vec<String> = tags.iter().map(|tag| quoted(tag)).collect();
        let optional = if optional_tag { "?" } else { "" };
        let _ = writeln!(out, "  type{optional}: {};", tags.join(" | "));
    }
    let required = required(schema);
    for (field, spec) in &properties(schema) {
        if !tags.is_empty() && field == "type" {
            continue;
        }
        out += &doc(spec["description"].as_str(), "  ");
        let optional = if required.contains(&field.as_str()) {
            ""
        } else {
            "?"
        };
        let _ = writeln!(out, "  {field}{optional}: {};", annotation(spec));
    }
    if schema["additionalProperties"] == true {
        out += &doc(
            Some("Fields this version does not know, kept as sent."),
            "  ",
        );
        out += "  [field: string]: unknown;\n";
    }
    out + "}\n\n"
}

/// `lib/types.ts`.
pub fn types(schema: &Schema) -> String {
    let framed: BTreeSet<&str> = schema
        .unions
        .iter()
        .filter(|(name, _)| name.ends_with("Frame"))
        .flat_map(|(_, members)| members.iter().map(|member| member.target.as_str()))
        .collect();
    let mut out = String::from(
        "// Typed wire values of protocol v1, generated from docs/schema/v1.json.\n\
         // Do not edit: run `cargo run -p proliferate-codegen`.\n\n",
    );
    let none = Vec::new();
    for (name, definition) in &schema.definitions {
        if schema.unions.contains_key(name) {
            continue;
        }
        if let Some(members) = definition["oneOf"].as_array() {
            out += &doc(definition["description"].as_str(), "");
            let values: Vec<String> = members.iter().map(|m| m["const"].to_string()).collect();
            let _ = write!(out, "export type {name} = {};\n\n", values.join(" | "));
        } else if definition.get("properties").is_some() || schema.tags.contains_key(name) {
            let tags = schema.tags.get(name).unwrap_or(&none);
            out += &record(name, definition, tags, framed.contains(name.as_str()));
        } else {
            out += &doc(definition["description"].as_str(), "");
            let _ = write!(out, "export type {name} = {};\n\n", annotation(definition));
        }
    }
    for members in schema.unions.values() {
        for member in members {
            if !schema.definitions.contains_key(&member.target) {
                let tags = std::slice::from_ref(&member.tag);
                let framed = framed.contains(member.target.as_str());
                out += &record(&member.target, &member.schema, tags, framed);
            }
        }
    }
    for (name, members) in &schema.unions {
        let mut classes: Vec<&str> = Vec::new();
        for member in members {
            if !classes.contains(&member.target.as_str()) {
                classes.push(&member.target);
            }
        }
        let fallback = format!(
            "One `{name}`, tagged on `type`. Newer servers may send types this version does not know."
        );
        out += &doc(
            Some(
                schema.definitions[name]["description"]
                    .as_str()
                    .unwrap_or(&fallback),
            ),
            "",
        );
        let _ = write!(out, "export type {name} = {};\n\n", classes.join(" | "));
        out += &doc(Some(&format!("Every `{name}` tag this version knows.")), "");
        let tags: Vec<&str> = members.iter().map(|member| member.tag.as_str()).collect();
        let constant = format!("{}{}Types", name[..1].to_lowercase(), &name[1..]);
        let tags = Value::from(tags).to_string();
        let _ = write!(out, "export const {constant} = {tags} as const;\n\n");
    }
    out
}
