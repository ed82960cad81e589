//! Where each model provider really is, and with which key: the agent's configuration names only
//! the model proxy and its sandbox token; the upstream URLs and keys stay in the gateway.

use std::collections::HashMap;

use proliferate_core::auth::SANDBOX_TOKEN_VARIABLE;
use serde_json::{Value, json};

/// The variable that gives the agent the model proxy's base URL.
pub const MODEL_PROXY_VARIABLE: &str = "PROLIFERATE_MODEL_PROXY";

/// The API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// OpenAI chat completions (`POST {base}/chat/completions`, `Authorization: Bearer`).
    OpenAi,
    /// Anthropic Messages (`POST {base}/messages`, `x-api-key`).
    Anthropic,
}

impl Surface {
    /// An error body in the surface's own shape.
    pub fn error(self, kind: &str, message: &str) -> Value {
        match self {
            Surface::OpenAi => json!({"error": {"message": message, "type": kind, "code": kind}}),
            Surface::Anthropic => {
                json!({"type": "error", "error": {"type": kind, "message": message}})
            }
        }
    }

    /// The same error as a server-sent event in the middle of a stream: OpenAI sends the body as
    /// `data`, Anthropic as an `error` event.
    pub fn stream_error(self, kind: &str, message: &str) -> bytes::Bytes {
        let body = self.error(kind, message);
        match self {
            Surface::OpenAi => format!("data: {body}\n\n"),
            Surface::Anthropic => format!("event: error\ndata: {body}\n\n"),
        }
        .into()
    }
}

/// Where a provider's key comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum Key {
    /// The gateway's environment variable of this name, read at each request.
    Variable(String),
    /// This value (from the server's configuration).
    Value(String),
}

impl std::fmt::Debug for Key {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Variable(name) => write!(formatter, "Key::Variable({name})"),
            Key::Value(_) => formatter.write_str("Key::Value(<redacted>)"),
        }
    }
}

/// One provider behind the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The provider's base URL, for example `https://api.anthropic.com/v1`.
    pub base_url: String,
    /// Its API.
    pub surface: Surface,
    /// Its key for every organisation without one of its own.
    pub key: Option<Key>,
}

/// Providers OpenCode knows without configuration, with their real base URL and key variable.
const BUILT_IN: &[(&str, &str, Surface, &str)] = &[
    (
        "anthropic",
        "https://api.anthropic.com/v1",
        Surface::Anthropic,
        "ANTHROPIC_API_KEY",
    ),
    (
        "openai",
        "https://api.openai.com/v1",
        Surface::OpenAi,
        "OPENAI_API_KEY",
    ),
];

/// A `{env:NAME}` reference, as OpenCode writes them.
fn variable_reference(text: &str) -> Option<&str> {
    text.strip_prefix("{env:")?.strip_suffix('}')
}

/// The upstreams of an OpenCode `provider` configuration, and the same configuration rewritten
/// for the agent: every provider's `baseURL` is the model proxy's and its `apiKey` the sandbox
/// token, both read from the agent's environment. `model` (`provider/model`) adds its provider
/// when it is a built-in one the configuration does not name.
pub fn route_through_proxy(
    providers: &Value,
    model: &str,
) -> Result<(HashMap<String, Upstream>, Value), String> {
    let mut configured = match providers {
        Value::Object(map) => map.clone(),
        Value::Null => Default::default(),
        _ => return Err("the provider configuration must be a JSON object".into()),
    };
    let model_provider = model.split('/').next().unwrap_or_default();
    if !configured.contains_key(model_provider) {
        configured.insert(model_provider.to_owned(), json!({}));
    }
    let mut upstreams = HashMap::new();
    for (name, provider) in configured.iter_mut() {
        let built_in = BUILT_IN.iter().find(|(known, ..)| known == name);
        let options = &provider["options"];
        let base_url = options["baseURL"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| built_in.map(|(_, url, ..)| (*url).to_owned()))
            .ok_or_else(|| format!("provider {name} has no options.baseURL"))?;
        let surface = match provider["npm"].as_str() {
            Some("@ai-sdk/anthropic") => Surface::Anthropic,
            Some(_) => Surface::OpenAi,
            None => built_in.map_or(Surface::OpenAi, |(_, _, surface, _)| *surface),
        };
        let key = match options["apiKey"].as_str() {
            Some(text) => Some(match variable_reference(text) {
                Some(variable) => Key::Variable(variable.to_owned()),
                None => Key::Value(text.to_owned()),
            }),
            None => built_in.map(|(.., variable)| Key::Variable((*variable).to_owned())),
        };
        let upstream = Upstream {
            base_url: base_url.trim_end_matches('/').to_owned(),
            surface,
            key,
        };
        if !provider.is_object() {
            return Err(format!("provider {name} must be a JSON object"));
        }
        provider["options"]["baseURL"] = json!(format!("{{env:{MODEL_PROXY_VARIABLE}}}/{name}"));
        provider["options"]["apiKey"] = json!(format!("{{env:{SANDBOX_TOKEN_VARIABLE}}}"));
        upstreams.insert(name.clone(), upstream);
    }
    Ok((upstreams, Value::Object(configured)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_sees_the_proxy_and_the_token_and_the_gateway_keeps_urls_and_keys() {
        let providers = json!({
            "scripted": {
                "npm": "@ai-sdk/openai-compatible",
                "options": { "baseURL": "http://127.0.0.1:9/v1/", "apiKey": "{env:SCRIPTED_KEY}" },
                "models": { "m": {} },
            },
            "house": {
                "npm": "@ai-sdk/anthropic",
                "options": { "baseURL": "https://models.example/v1", "apiKey": "sk-literal" },
            },
        });
        let (upstreams, rewritten) = route_through_proxy(&providers, "anthropic/claude").unwrap();
        assert_eq!(
            upstreams["scripted"],
            Upstream {
                base_url: "http://127.0.0.1:9/v1".into(),
                surface: Surface::OpenAi,
                key: Some(Key::Variable("SCRIPTED_KEY".into())),
            }
        );
        assert_eq!(upstreams["house"].surface, Surface::Anthropic);
        assert_eq!(
            upstreams["house"].key,
            Some(Key::Value("sk-literal".into()))
        );
        assert_eq!(
            upstreams["anthropic"],
            Upstream {
                base_url: "https://api.anthropic.com/v1".into(),
                surface: Surface::Anthropic,
                key: Some(Key::Variable("ANTHROPIC_API_KEY".into())),
            }
        );
        let text = rewritten.to_string();
        assert!(
            !text.contains("sk-literal") && !text.contains("SCRIPTED_KEY"),
            "{text}"
        );
        assert!(
            !text.contains("127.0.0.1:9") && !text.contains("models.example"),
            "{text}"
        );
        for name in ["scripted", "house", "anthropic"] {
            assert_eq!(
                rewritten[name]["options"]["baseURL"],
                format!("{{env:PROLIFERATE_MODEL_PROXY}}/{name}")
            );
            assert_eq!(
                rewritten[name]["options"]["apiKey"],
                "{env:PROLIFERATE_SANDBOX_TOKEN}"
            );
        }
        assert_eq!(
            rewritten["scripted"]["models"],
            json!({"m": {}}),
            "the rest is kept"
        );
    }

    #[test]
    fn a_provider_without_a_base_url_that_opencode_does_not_know_is_refused() {
        assert!(route_through_proxy(&json!({}), "mystery/model").is_err());
        assert!(route_through_proxy(&json!([]), "anthropic/claude").is_err());
    }
}
