//! Gateway sync protocol, version 1.
//!
//! Every JSON object in this version is a tagged union on `type` or a plain record. Readers keep
//! what they do not know: an unknown `type` decodes to an `Unknown` variant holding the raw JSON,
//! and unknown fields of a known record land in its `extra` map. Both re-encode unchanged, so a
//! client built against this version keeps working against a newer server.

mod codec;
mod error;
mod event;
mod frame;
mod http;
mod schema;
mod session;
mod transcript;

pub use codec::{DECODABLE_TYPES, DecodeError, normalize};
pub use error::{ErrorCode, Problem};
pub use event::*;
pub use frame::*;
pub use http::*;
pub use schema::wire_schema;
pub use session::*;
pub use transcript::*;

/// The protocol version this module speaks; sent in the welcome frame and used in `/v1` paths.
pub const PROTOCOL_VERSION: u32 = 1;

/// Fields of a record that this version does not know, kept so they survive a round trip.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// Declares a union tagged on `type` whose unknown members decode to `Unknown(raw JSON)`.
///
/// A known `type` with a malformed body is an error that names the type and the problem; an
/// unknown `type` is kept verbatim. Serialization writes the payload's fields beside `type`.
macro_rules! open_union {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident($payload:ty) = $tag:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant($payload), )*
            /// A `type` this version does not know, kept verbatim so it survives a round trip.
            Unknown(serde_json::Value),
        }

        impl $name {
            /// Every `type` tag this version knows, in declaration order.
            pub const KNOWN_TYPES: &'static [&'static str] = &[$($tag),*];

            /// The `type` tag of this value, as it appears on the wire.
            pub fn type_name(&self) -> &str {
                match self {
                    $( Self::$variant(_) => $tag, )*
                    Self::Unknown(raw) => raw.get("type").and_then(serde_json::Value::as_str).unwrap_or(""),
                }
            }
        }

        const _: () = {
            use serde::{Deserialize, Serialize, de::Error as _};

            #[derive(Deserialize, schemars::JsonSchema)]
            #[serde(tag = "type")]
            enum Known { $( #[serde(rename = $tag)] $variant($payload), )* }

            #[derive(Serialize)]
            #[serde(tag = "type")]
            enum KnownRef<'a> { $( #[serde(rename = $tag)] $variant(&'a $payload), )* }

            impl Serialize for $name {
                fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                    match self {
                        $( Self::$variant(payload) => KnownRef::$variant(payload).serialize(serializer), )*
                        Self::Unknown(raw) => raw.serialize(serializer),
                    }
                }
            }

            impl<'de> Deserialize<'de> for $name {
                fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                    let raw = serde_json::Value::deserialize(deserializer)?;
                    let Some(tag) = raw.get("type").and_then(serde_json::Value::as_str) else {
                        return Err(D::Error::custom(concat!(stringify!($name), " needs a string field `type`")));
                    };
                    if !Self::KNOWN_TYPES.contains(&tag) {
                        return Ok(Self::Unknown(raw));
                    }
                    let tag = tag.to_owned();
                    match Known::deserialize(raw) {
                        $( Ok(Known::$variant(payload)) => Ok(Self::$variant(payload)), )*
                        Err(error) => Err(D::Error::custom(format_args!("invalid `{tag}`: {error}"))),
                    }
                }
            }

            impl schemars::JsonSchema for $name {
                fn schema_name() -> std::borrow::Cow<'static, str> {
                    stringify!($name).into()
                }

                fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                    Known::json_schema(generator)
                }
            }
        };
    };
}
pub(crate) use open_union;

/// Declares payload types of one shape under distinct names, so that every language can match
/// each event or frame by the name of its payload.
macro_rules! same_shape {
    (#[$derive:meta] { $( $(#[$doc:meta])* $name:ident ),+ $(,)? } $fields:tt) => {
        $( #[$derive] $(#[$doc])* pub struct $name $fields )+
    };
}

pub(crate) use same_shape;
