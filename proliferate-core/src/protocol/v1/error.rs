//! The one error taxonomy: stable machine codes, shared by HTTP, WebSocket and every binding.

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Extra;

macro_rules! error_codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = $name:literal, $status:literal; )*) => {
        /// A stable machine code. Codes this version does not know decode to `Unknown`.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub enum ErrorCode {
            $( $(#[doc = $doc])* $variant, )*
            /// A code this version does not know, kept verbatim.
            Unknown(String),
            /// Something failed inside the gateway.
            #[default]
            Internal,
        }

        impl ErrorCode {
            /// Every code this version knows.
            pub const ALL: &'static [ErrorCode] = &[$(Self::$variant,)* Self::Internal];

            /// The code as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $name, )*
                    Self::Internal => "internal",
                    Self::Unknown(code) => code,
                }
            }

            /// What the code means, as its documentation says.
            pub fn description(&self) -> &'static str {
                match self {
                    $( Self::$variant => concat!($($doc),*).trim_ascii(), )*
                    Self::Internal => "Something failed inside the gateway.",
                    Self::Unknown(_) => "A code this version does not know.",
                }
            }

            /// The HTTP status that carries this code.
            pub fn http_status(&self) -> u16 {
                match self {
                    $( Self::$variant => $status, )*
                    Self::Internal | Self::Unknown(_) => 500,
                }
            }

            /// Parses a wire code; never fails, unknown codes are kept.
            pub fn parse(code: &str) -> Self {
                match code {
                    $( $name => Self::$variant, )*
                    "internal" => Self::Internal,
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }
    };
}

error_codes! {
    /// The request or frame is malformed or fails validation.
    BadRequest = "bad_request", 400;
    /// No valid credentials: missing, malformed, tampered or wrongly signed token.
    Unauthenticated = "unauthenticated", 401;
    /// The token was valid once but has expired; get a fresh one and retry.
    TokenExpired = "token_expired", 401;
    /// The credentials are valid but do not allow this (scope, organisation or session).
    Forbidden = "forbidden", 403;
    /// No such session, snapshot, prompt or permission request (or not visible to the caller).
    NotFound = "not_found", 404;
    /// The request conflicts with the current state, for example a transition the lifecycle forbids.
    Conflict = "conflict", 409;
    /// The requested cursor is older than what is retained; fetch the transcript instead.
    CursorExpired = "cursor_expired", 410;
    /// The request or frame is larger than allowed.
    PayloadTooLarge = "payload_too_large", 413;
    /// A limit of the server is reached (queued prompts of a session, for example); retry once
    /// below it.
    LimitExceeded = "limit_exceeded", 429;
    /// The agent failed or rejected the request.
    AgentError = "agent_error", 502;
    /// The sandbox provider failed.
    SandboxError = "sandbox_error", 502;
    /// The gateway or the session cannot serve this now (shutting down, not ready); retry later.
    Unavailable = "unavailable", 503;
    /// A dependency did not answer in time.
    Timeout = "timeout", 504;
    /// The connection fell behind its send budget and was closed (WebSocket close 1013).
    SlowConsumer = "slow_consumer", 503;
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = Cow::<str>::deserialize(deserializer)?;
        Ok(Self::parse(&code))
    }
}

impl JsonSchema for ErrorCode {
    fn schema_name() -> Cow<'static, str> {
        "ErrorCode".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut codes: Vec<serde_json::Value> = Self::ALL
            .iter()
            .map(|code| serde_json::json!({"const": code.as_str(), "description": code.description()}))
            .collect();
        codes.push(serde_json::json!({"type": "string", "description": "A code this version does not know."}));
        schemars::json_schema!({
            "description": "A stable machine code. Known codes are listed; readers keep unknown ones.",
            "anyOf": codes,
        })
    }
}

/// An HTTP error body (`application/problem+json`, RFC 9457) with a stable machine `code`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Problem {
    /// A URI naming the problem type; `about:blank` unless a page documents it.
    #[serde(rename = "type", default = "about_blank")]
    pub problem_type: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// The stable machine code.
    pub code: ErrorCode,
    /// What went wrong in this occurrence, fit to show a person.
    pub detail: String,
    /// The id of the request, as logged by the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

fn about_blank() -> String {
    "about:blank".to_owned()
}

impl Problem {
    /// A problem with the status and title that belong to `code`.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            problem_type: about_blank(),
            title: code.as_str().replace('_', " "),
            status: code.http_status(),
            code,
            detail: detail.into(),
            request_id: None,
            extra: Extra::new(),
        }
    }
}
