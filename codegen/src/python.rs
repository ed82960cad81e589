//! Python: frozen dataclasses for every wire record (`proliferate/types.py`) and one exception
//! class per error code (`proliferate/errors.py`).

use std::fmt::Write;

use serde_json::Value;

use crate::schema::{Schema, camel, error_codes, properties, reference, required};

const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// The Python annotation of a property's schema.
fn annotation(schema: &Value) -> String {
    if let Some(name) = reference(schema) {
        return name;
    }
    if let Some(constant) = schema.get("const") {
        return format!("Literal[{}]", repr(constant));
    }
    if let Some(members) = schema["anyOf"].as_array() {
        let present: Vec<&Value> = members.iter().filter(|m| m["type"] != "null").collect();
        let mut names: Vec<String> = present.iter().map(|m| annotation(m)).collect();
        // Known values beside any string: a string.
        if names.iter().any(|name| name == "str") {
            names.retain(|name| !name.starts_with("Literal["));
        }
        let inner = names.join(" | ");
        return if present.len() < members.len() {
            format!("{inner} | None")
        } else {
            inner
        };
    }
    match &schema["type"] {
        Value::Array(kinds) => {
            let inner: Vec<&Value> = kinds.iter().filter(|kind| *kind != "null").collect();
            let name = match inner.as_slice() {
                [kind] => {
                    let mut single = schema.clone();
                    single["type"] = (*kind).clone();
                    annotation(&single)
                }
                _ => "Any".into(),
            };
            if inner.len() < kinds.len() {
                format!("{name} | None")
            } else {
                name
            }
        }
        Value::String(kind) => match kind.as_str() {
            "array" => format!("list[{}]", annotation(&schema["items"])),
            "object" => "dict[str, Any]".into(),
            "string" => "str".into(),
            "integer" => "int".into(),
            "number" => "float".into(),
            "boolean" => "bool".into(),
            _ => "Any".into(),
        },
        _ => "Any".into(),
    }
}

/// A JSON value as a Python literal.
fn repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(text) => format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(repr).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

fn docstring(text: &str, indent: &str) -> String {
    let text = text.replace('\\', "\\\\").replace("\"\"\"", "\\\"\\\"\\\"");
    format!("{indent}\"\"\"{text}\"\"\"\n")
}

fn record(name: &str, schema: &Value, tags: &[String]) -> String {
    let mut properties = properties(schema);
    let required = required(schema);
    let mut out = format!("@dataclass(frozen=True, kw_only=True)\nclass {name}:\n");
    let description = match (schema["description"].as_str(), tags.first()) {
        (Some(description), _) => description.to_owned(),
        (None, Some(tag)) => format!("A `{tag}` value."),
        (None, None) => name.to_owned(),
    };
    out += &docstring(&description, "    ");
    if let Some(tag) = tags.first() {
        let default = if tags.len() == 1 {
            format!(" = \"{tag}\"")
        } else {
            String::new()
        };
        let _ = writeln!(out, "    type: str{default}");
        out += &docstring("The `type` tag this value carries on the wire.", "    ");
        properties.remove("type");
    }
    for (field, spec) in &properties {
        let python_name = if KEYWORDS.contains(&field.as_str()) {
            format!("{field}_")
        } else {
            field.clone()
        };
        let mut annotation = annotation(spec);
        let value = if required.contains(&field.as_str()) {
            String::new()
        } else if let Some(default) = spec.get("default").filter(|value| !value.is_null()) {
            if default == &Value::Array(Vec::new()) {
                " = field(default_factory=list)".into()
            } else {
                format!(" = {}", repr(default))
            }
        } else if annotation.starts_with("list[") {
            " = field(default_factory=list)".into()
        } else {
            if !annotation.ends_with("| None") && annotation != "Any" {
                annotation += " | None";
            }
            " = None".into()
        };
        let _ = writeln!(out, "    {python_name}: {annotation}{value}");
        if let Some(description) = spec["description"].as_str() {
            out += &docstring(description, "    ");
        }
    }
    if schema["additionalProperties"] == true {
        out += "    extra: dict[str, Any] = field(default_factory=dict)\n";
        out += &docstring("Fields this version does not know, kept as sent.", "    ");
    }
    out
}

/// `proliferate/types.py`.
pub fn types(schema: &Schema) -> String {
    let mut out = String::from(
        "\"\"\"Typed wire values of protocol v1, generated from `docs/schema/v1.json`.\n\n\
         Do not edit: run `cargo run -p proliferate-codegen`.\n\"\"\"\n\n\
         from __future__ import annotations\n\n\
         from dataclasses import dataclass, field\nfrom typing import Any, Literal, Union\n\n",
    );
    let none = Vec::new();
    for (name, definition) in &schema.definitions {
        if schema.unions.contains_key(name) {
            continue;
        }
        let description = definition["description"].as_str().unwrap_or(name);
        if let Some(members) = definition["oneOf"].as_array() {
            let values: Vec<String> = members.iter().map(|m| repr(&m["const"])).collect();
            let _ = writeln!(out, "{name} = Literal[{}]", values.join(", "));
            out += &docstring(description, "");
            out += "\n\n";
        } else if definition.get("properties").is_some() || schema.tags.contains_key(name) {
            out += &record(name, definition, schema.tags.get(name).unwrap_or(&none));
            out += "\n\n";
        } else {
            let _ = writeln!(out, "{name} = {}", annotation(definition));
            out += &docstring(description, "");
            out += "\n\n";
        }
    }
    for members in schema.unions.values() {
        for member in members {
            if !schema.definitions.contains_key(&member.target) {
                out += &record(
                    &member.target,
                    &member.schema,
                    std::slice::from_ref(&member.tag),
                );
                out += "\n\n";
            }
        }
    }
    out += "@dataclass(frozen=True, kw_only=True)\nclass Unknown:\n    \
            \"\"\"A member of a tagged union whose `type` this version does not know.\"\"\"\n    \
            type: str\n    \"\"\"The `type` tag as sent.\"\"\"\n    raw: dict[str, Any]\n    \
            \"\"\"The whole value as sent.\"\"\"\n\n\n";
    for (union, members) in &schema.unions {
        let mut classes: Vec<&str> = Vec::new();
        for member in members {
            if !classes.contains(&member.target.as_str()) {
                classes.push(&member.target);
            }
        }
        let _ = writeln!(out, "{union} = Union[{}, Unknown]", classes.join(", "));
        let fallback = format!("One `{union}`, tagged on `type`.");
        let description = schema.definitions[union]["description"].as_str();
        out += &docstring(description.unwrap_or(&fallback), "");
        let _ = writeln!(out, "{}_TYPES: dict[str, type] = {{", union.to_uppercase());
        for member in members {
            let _ = writeln!(out, "    \"{}\": {},", member.tag, member.target);
        }
        out += "}\n";
        out += &docstring(
            &format!("Every `{union}` tag this version knows, and its class."),
            "",
        );
        out += "\n";
    }
    out += "UNIONS: dict[str, dict[str, type]] = {\n";
    for union in schema.unions.keys() {
        let _ = writeln!(out, "    \"{union}\": {}_TYPES,", union.to_uppercase());
    }
    out += "}\n";
    out += &docstring("Each tagged union by name.", "");
    out
}

/// The exception class of each code: its name and the class it refines. `timeout` avoids the
/// builtin `TimeoutError`, and an expired token is a kind of unauthenticated request.
fn exception(code: &str) -> (String, &'static str) {
    let name = match code {
        "timeout" => "TimedOutError".into(),
        code if code.ends_with("_error") => camel(code),
        code => format!("{}Error", camel(code)),
    };
    let base = match code {
        "token_expired" => "UnauthenticatedError",
        _ => "ProliferateError",
    };
    (name, base)
}

/// `proliferate/errors.py`.
pub fn errors() -> String {
    let mut classes = String::new();
    let mut names = Vec::new();
    for (code, description) in error_codes() {
        let (name, base) = exception(code);
        let _ = write!(
            classes,
            "class {name}({base}):\n{}\n    code = \"{code}\"\n\n\n",
            docstring(description, "    ")
        );
        names.push(name);
    }
    let mut table = String::new();
    for chunk in names.chunks(6) {
        let _ = writeln!(table, "        {},", chunk.join(", "));
    }
    ERRORS
        .replace("{classes}", &classes)
        .replace("{table}", &table)
}

const ERRORS: &str = r#""""Errors: one `ProliferateError` base carrying the protocol's stable `code`, one subclass per code.

Generated from the error codes of `docs/schema/v1.json`. Do not edit: run
`cargo run -p proliferate-codegen`.
"""

from __future__ import annotations

import builtins


class ProliferateError(Exception):
    """A failed call. `code` is the protocol's machine code, the same in every language."""

    code: str = "internal"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        """What went wrong, fit to show a person."""
        if code is not None:
            self.code = code
        self.status = status
        """The HTTP status, when the gateway refused over HTTP."""


{classes}ERRORS: dict[str, type[ProliferateError]] = {
    cls.code: cls
    for cls in (
{table}    )
}
"""The exception class for each known code; unknown codes raise `ProliferateError`."""

_CAUSES: dict[str, type[Exception]] = {
    "transport": ConnectionError,
    "timeout": builtins.TimeoutError,
}


def from_native(code: str, message: str, status: int | None, kind: str) -> ProliferateError:
    """Builds the exception for a native failure; called by the native module.

    Transport failures and timeouts keep their cause as a `ConnectionError` or a builtin
    `TimeoutError` in `__cause__`.
    """
    error = ERRORS.get(code, ProliferateError)(message, code=code, status=status)
    if cause := _CAUSES.get(kind):
        error.__cause__ = cause(message)
    return error
"#;
