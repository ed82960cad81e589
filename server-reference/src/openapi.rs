//! The OpenAPI 3.1 document of the HTTP API, built from the router's own table of operations
//! and the protocol's JSON Schema, so none of the three can disagree.

use proliferate_core::protocol::v1::wire_schema;

use crate::routes::OPERATIONS;
use serde_json::{Map, Value, json};

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn rewrite_references(value: &mut Value) {
    match value {
        Value::String(text) if text.starts_with("#/$defs/") => {
            *text = text.replacen("#/$defs/", "#/components/schemas/", 1);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_references),
        Value::Object(map) => map.values_mut().for_each(rewrite_references),
        _ => {}
    }
}

/// The document served at `/v1/openapi.json`.
pub fn document() -> Value {
    let mut schema = wire_schema();
    rewrite_references(&mut schema);
    let mut paths = Map::new();
    for operation in OPERATIONS {
        let path = operation.path.replace("{*", "{");
        let in_path = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }));
        let in_query = (operation.query.iter()).map(|(name, schema)| {
            let schema: Value = serde_json::from_str(schema).unwrap_or_default();
            json!({ "name": name, "in": "query", "required": false, "schema": schema })
        });
        let parameters: Vec<Value> = in_path.chain(in_query).collect();
        let success = match operation.response {
            Some(name) => {
                json!({ "description": "OK", "content": { "application/json": { "schema": reference(name) } } })
            }
            None => json!({ "description": "OK" }),
        };
        let mut entry = json!({
            "summary": operation.summary,
            "parameters": parameters,
            "responses": {
                operation.status.to_string(): success,
                "default": { "description": "Error", "content": { "application/problem+json": { "schema": reference("Problem") } } },
            },
        });
        if operation.public {
            entry["security"] = json!([]);
        }
        if let Some(name) = operation.request {
            entry["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": reference(name) } } });
        }
        let documented = paths.entry(path).or_insert_with(|| json!({}));
        for method in operation.methods {
            documented[*method] = entry.clone();
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Proliferate gateway", "version": env!("CARGO_PKG_VERSION") },
        "components": {
            "schemas": schema["$defs"],
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
        },
        "security": [{ "bearer": [] }],
        "paths": paths,
    })
}
