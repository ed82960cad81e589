//! Where a request's token comes from: the `Authorization` header (Bearer, or Basic with the
//! token as password for tools that cannot set headers), or `?token=` for compatibility.

use axum::http::{HeaderMap, header};

/// The token a request carries, if any. Query strings are never logged by this server.
pub fn token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
    {
        if let Some(token) = value.strip_prefix("Bearer ") {
            return Some(token.trim().to_owned());
        }
        if let Some(encoded) = value.strip_prefix("Basic ") {
            let decoded = decode_base64(encoded.trim())?;
            let (_, password) = decoded.split_once(':')?;
            return Some(password.to_owned());
        }
    }
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .map(str::to_owned)
}

fn decode_base64(text: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    String::from_utf8(bytes).ok()
}
