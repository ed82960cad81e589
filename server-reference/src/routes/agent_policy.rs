//! What the agent proxy (`/v1/sessions/{id}/agent/{*path}`) lets through, in both directions.
//!
//! The agent is untrusted, and the clients of the proxy are users of one organisation whose
//! permission policy must hold. So the proxy forwards only the OpenCode routes that `opencode
//! attach` and OpenCode's SDKs need to watch and drive the session ([`allows`]), only the query
//! parameters those routes need ([`forwarded_query`]), only end-to-end request headers that carry
//! no credentials ([`forwards_request_header`]), and only response headers that cannot act on
//! the gateway's origin ([`forwards_response_header`], [`response_content_type`],
//! [`hardening_headers`], [`forwarded_status`]). The bodies of the prompt routes are checked too
//! ([`inspects_body`], [`check_body`]): OpenCode turns a prompt's `tools` into session permission
//! rules, and reads `file:` parts from any absolute path.
//!
//! Everything here is pure (no I/O). `docs/agents/opencode-proxy.md` gives the reason for every
//! route allowed or refused, measured against OpenCode 1.18.33.

use std::sync::LazyLock;

use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};

/// The methods the allow-list uses; every other method is refused outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
}

impl Verb {
    /// The verb of an HTTP method, or `None` for a method no allowed route uses.
    fn of(method: &Method) -> Option<Verb> {
        if *method == Method::GET {
            Some(Verb::Get)
        } else if *method == Method::POST {
            Some(Verb::Post)
        } else {
            None
        }
    }
}

/// What the proxy checks in a route's request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Nothing: the body cannot widen permissions or reach outside the workspace.
    Free,
    /// A prompt (`POST /session/{id}/message` or `prompt_async`): no `tools`, and file parts only
    /// as `data:` URLs or `file:` URLs inside the workspace.
    Prompt,
}

/// One allowed route: method, OpenCode path pattern, body check.
#[derive(Debug, Clone, Copy)]
struct Rule {
    /// The method.
    verb: Verb,
    /// The pattern: a `{name}` segment matches one OpenCode identifier (letters, digits, `_`,
    /// `-`, `.`); `{*name}`, last only, matches one or more path segments.
    pattern: &'static str,
    /// The body check.
    body: Body,
}

/// A `GET` route.
const fn get(pattern: &'static str) -> Rule {
    Rule {
        verb: Verb::Get,
        pattern,
        body: Body::Free,
    }
}

/// A `POST` route whose body cannot widen permissions or reach outside the workspace.
const fn post(pattern: &'static str) -> Rule {
    Rule {
        verb: Verb::Post,
        pattern,
        body: Body::Free,
    }
}

/// A `POST` prompt route, whose body is checked ([`check_body`]).
const fn prompt(pattern: &'static str) -> Rule {
    Rule {
        verb: Verb::Post,
        pattern,
        body: Body::Prompt,
    }
}

/// The allow-list. Every route not listed is refused; `docs/agents/opencode-proxy.md` says why
/// each is here, and why the others are not.
const RULES: &[Rule] = &[
    // Server and instance information, read-only.
    get("/global/health"),
    get("/path"),
    get("/project/current"),
    get("/project/{projectID}/directories"),
    get("/config"),
    get("/config/providers"),
    get("/provider"),
    get("/provider/auth"),
    get("/agent"),
    get("/command"),
    get("/skill"),
    get("/lsp"),
    get("/formatter"),
    get("/mcp"),
    get("/vcs"),
    get("/vcs/status"),
    get("/vcs/diff"),
    get("/vcs/diff/raw"),
    get("/experimental/capabilities"),
    get("/experimental/console"),
    get("/experimental/resource"),
    get("/experimental/workspace"),
    get("/experimental/workspace/status"),
    // Event streams.
    get("/event"),
    get("/global/event"),
    // Files, read-only, inside the workspace (OpenCode refuses paths outside its directory once
    // `directory` and `x-opencode-directory` are stripped).
    get("/find"),
    get("/find/file"),
    get("/find/symbol"),
    get("/file"),
    get("/file/content"),
    get("/file/status"),
    // Sessions and transcripts, read-only.
    get("/session"),
    get("/session/status"),
    get("/session/{sessionID}"),
    get("/session/{sessionID}/children"),
    get("/session/{sessionID}/todo"),
    get("/session/{sessionID}/diff"),
    get("/session/{sessionID}/message"),
    get("/session/{sessionID}/message/{messageID}"),
    get("/permission"),
    get("/question"),
    // Driving the session.
    prompt("/session/{sessionID}/message"),
    prompt("/session/{sessionID}/prompt_async"),
    post("/session/{sessionID}/abort"),
    post("/session/{sessionID}/summarize"),
    post("/permission/{requestID}/reply"),
    post("/session/{sessionID}/permissions/{permissionID}"),
    post("/question/{requestID}/reply"),
    post("/question/{requestID}/reject"),
    // The V2 API (`/api`), which `opencode attach` 1.18 already reads.
    get("/api/health"),
    get("/api/location"),
    get("/api/agent"),
    get("/api/model"),
    get("/api/provider"),
    get("/api/integration"),
    get("/api/reference"),
    get("/api/command"),
    get("/api/skill"),
    get("/api/event"),
    get("/api/fs/find"),
    get("/api/fs/list"),
    get("/api/fs/read/{*path}"),
    get("/api/session"),
    get("/api/session/active"),
    get("/api/session/{sessionID}"),
    get("/api/session/{sessionID}/context"),
    get("/api/session/{sessionID}/history"),
    get("/api/session/{sessionID}/event"),
    get("/api/session/{sessionID}/message"),
    get("/api/session/{sessionID}/message/{messageID}"),
    get("/api/session/{sessionID}/permission"),
    get("/api/session/{sessionID}/permission/{requestID}"),
    get("/api/session/{sessionID}/question"),
    get("/api/permission/request"),
    get("/api/question/request"),
    post("/api/session/{sessionID}/interrupt"),
    post("/api/session/{sessionID}/wait"),
    post("/api/session/{sessionID}/permission/{requestID}/reply"),
    post("/api/session/{sessionID}/question/{requestID}/reply"),
    post("/api/session/{sessionID}/question/{requestID}/reject"),
];

/// One segment of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    /// Matches exactly this text.
    Literal(&'static str),
    /// `{name}`: one OpenCode identifier.
    Param,
    /// `{*name}`, last only: one or more path segments.
    Rest,
}

/// An allowed route, compiled.
#[derive(Debug)]
struct Route {
    /// Its method.
    verb: Verb,
    /// Its pattern, split on `/`.
    segments: Vec<Segment>,
    /// Its body check.
    body: Body,
}

/// [`RULES`] compiled once.
static ROUTES: LazyLock<Vec<Route>> = LazyLock::new(|| {
    RULES
        .iter()
        .map(|rule| Route {
            verb: rule.verb,
            segments: compile(rule.pattern),
            body: rule.body,
        })
        .collect()
});

/// Splits a pattern into segments (`{name}` is a parameter, `{*name}` the rest of the path).
fn compile(pattern: &'static str) -> Vec<Segment> {
    pattern
        .strip_prefix('/')
        .unwrap_or(pattern)
        .split('/')
        .map(|segment| {
            if segment.starts_with("{*") {
                Segment::Rest
            } else if segment.starts_with('{') {
                Segment::Param
            } else {
                Segment::Literal(segment)
            }
        })
        .collect()
}

/// The longest agent path accepted, in bytes.
const MAX_PATH: usize = 2048;
/// The most segments an agent path may have.
const MAX_SEGMENTS: usize = 32;
/// The longest identifier a `{name}` segment matches.
const MAX_PARAM: usize = 128;

/// Whether a client may send `method` to the agent's `path`.
///
/// `path` is the raw (still percent-encoded) request path after `/v1/sessions/{id}/agent` (see
/// [`agent_path`]), starting with `/`, without the query. It is refused when it does not match
/// the allow-list exactly, or when any segment is empty, is `.` or `..` (also percent-encoded),
/// encodes `/`, `\`, `%` or a control character, or holds a character a URL path may not carry
/// raw. The proxy must then forward exactly this raw path, never a decoded or normalized one.
pub(crate) fn allows(method: &Method, path: &str) -> bool {
    route(method, path).is_some()
}

/// The allowed route `method` and `path` reach, if any.
fn route(method: &Method, path: &str) -> Option<&'static Route> {
    let verb = Verb::of(method)?;
    let segments = checked_segments(path)?;
    ROUTES
        .iter()
        .find(|route| route.verb == verb && matches(&route.segments, &segments))
}

/// What the gateway does itself for an allowed route instead of forwarding it, so that every
/// client sees what a proxy client did: prompts join the session's queue (with `user_message`
/// and turn events), and aborts cancel the session's running turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intercept<'a> {
    /// `POST /session/{id}/prompt_async` (`wait` false) or `POST /session/{id}/message`
    /// (`wait` true: answer once the turn ends).
    Prompt {
        /// The OpenCode session the client addressed.
        agent_session: &'a str,
        /// Whether the client waits for the turn's answer.
        wait: bool,
    },
    /// `POST /session/{id}/abort` or `POST /api/session/{id}/interrupt`.
    Abort {
        /// The OpenCode session the client addressed.
        agent_session: &'a str,
        /// Whether OpenCode answers `true` (`abort`) rather than no content (`interrupt`).
        answers_true: bool,
    },
}

/// The gateway's own handling of `method` and `path`, for routes it does not forward.
pub(crate) fn intercept<'a>(method: &Method, path: &'a str) -> Option<Intercept<'a>> {
    if *method != Method::POST {
        return None;
    }
    let segments: Vec<&'a str> = path.strip_prefix('/')?.split('/').collect();
    match segments.as_slice() {
        ["session", agent_session, "prompt_async"] => Some(Intercept::Prompt {
            agent_session,
            wait: false,
        }),
        ["session", agent_session, "message"] => Some(Intercept::Prompt {
            agent_session,
            wait: true,
        }),
        ["session", agent_session, "abort"] => Some(Intercept::Abort {
            agent_session,
            answers_true: true,
        }),
        ["api", "session", agent_session, "interrupt"] => Some(Intercept::Abort {
            agent_session,
            answers_true: false,
        }),
        _ => None,
    }
}

/// The segments of `path`, if it is well formed and every segment is safe.
fn checked_segments(path: &str) -> Option<Vec<&str>> {
    if path.len() > MAX_PATH {
        return None;
    }
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    if segments.len() > MAX_SEGMENTS || !segments.iter().all(|s| segment_is_safe(s)) {
        return None;
    }
    Some(segments)
}

/// Whether one raw path segment is non-empty, uses only the characters RFC 3986 allows raw in a
/// path segment, and decodes to something other than `.` or `..` without `/`, `\`, `%` (double
/// encoding) or control characters.
fn segment_is_safe(raw: &str) -> bool {
    if raw.is_empty() || !raw.bytes().all(is_path_char) {
        return false;
    }
    let Some(decoded) = percent_decode(raw, false) else {
        return false;
    };
    decoded != "."
        && decoded != ".."
        && !decoded
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '%') || c.is_control())
}

/// RFC 3986 `pchar` bytes, plus `%` for escapes.
fn is_path_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'%'
        )
}

/// Whether checked path segments match a compiled pattern.
fn matches(pattern: &[Segment], segments: &[&str]) -> bool {
    let mut rest = segments;
    for (index, segment) in pattern.iter().enumerate() {
        match segment {
            Segment::Rest => return index + 1 == pattern.len() && !rest.is_empty(),
            Segment::Literal(text) => match rest.split_first() {
                Some((first, tail)) if first == text => rest = tail,
                _ => return false,
            },
            Segment::Param => match rest.split_first() {
                Some((first, tail)) if is_identifier(first) => rest = tail,
                _ => return false,
            },
        }
    }
    rest.is_empty()
}

/// Whether a raw segment looks like an OpenCode identifier (`ses_…`, `msg_…`, `per_…`, a project
/// hash): ASCII letters, digits, `_`, `-` and `.`, not starting with `.`, no escapes.
fn is_identifier(segment: &str) -> bool {
    segment.len() <= MAX_PARAM
        && !segment.starts_with('.')
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The agent path of a raw gateway request path: what follows `/v1/sessions/{id}/agent`
/// (`""` for the bare prefix), or `None` when the path is not an agent-proxy path.
///
/// Use it on `uri.path()`, not on axum's `{*path}` capture: the capture is percent-decoded, so
/// `..%2Fshell` would arrive as `../shell`, which the URL parser of the HTTP client then resolves.
pub(crate) fn agent_path(request_path: &str) -> Option<&str> {
    let after_sessions = request_path.strip_prefix("/v1/sessions/")?;
    let (id, after_id) = after_sessions.split_once('/')?;
    if id.is_empty() {
        return None;
    }
    let rest = after_id.strip_prefix("agent")?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// The query parameters forwarded to the agent, by name after percent-decoding; every other
/// parameter is dropped. None of them selects a directory, a workspace or a credential:
///
/// - `limit`, `before`, `after`, `cursor`, `order`: paging of messages, history and sessions;
/// - `start`, `search`, `roots`: filters of the session list;
/// - `path`: a file or folder relative to the workspace (also a filter of the session list),
///   kept only when relative and free of `..`;
/// - `pattern`, `query`, `type`, `dirs`: text and file search;
/// - `messageID`: the message a session diff is taken at;
/// - `mode`, `context`: how the version-control diff is computed.
const KEPT_QUERY: &[&str] = &[
    "limit",
    "before",
    "after",
    "cursor",
    "order",
    "start",
    "search",
    "roots",
    "path",
    "pattern",
    "query",
    "type",
    "dirs",
    "messageID",
    "mode",
    "context",
];

/// The query string to forward (without `?`; empty when nothing is kept): the pairs of `query`
/// whose decoded name is in the kept list ([`KEPT_QUERY`]), in order and as sent. Drops
/// `directory`, `workspace` and `location[…]` (they point OpenCode at another folder), `token`
/// (the gateway's credential), everything unknown, malformed escapes, and `path` values that are
/// absolute or climb with `..`.
pub(crate) fn forwarded_query(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| keeps_pair(pair))
        .collect::<Vec<_>>()
        .join("&")
}

/// Whether one `name=value` pair of a query is forwarded.
fn keeps_pair(pair: &str) -> bool {
    if pair.is_empty() {
        return false;
    }
    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
    let Some(name) = percent_decode(name, true) else {
        return false;
    };
    if !KEPT_QUERY.contains(&name.as_str()) {
        return false;
    }
    let Some(value) = percent_decode(value, true) else {
        return false;
    };
    name != "path" || relative_path_is_safe(&value)
}

/// Whether a decoded `path` value stays inside the folder it is relative to: not absolute (`/`,
/// `\`, `~` or a drive letter), no `..` segment, no control character.
fn relative_path_is_safe(value: &str) -> bool {
    let drive = value.len() >= 2
        && value.as_bytes()[0].is_ascii_alphabetic()
        && value.as_bytes()[1] == b':';
    !drive
        && !value.starts_with(['/', '\\', '~'])
        && !value.chars().any(char::is_control)
        && !value.split(['/', '\\']).any(|segment| segment == "..")
}

/// Whether a client's request header is forwarded to the agent. Only end-to-end headers that
/// describe the content and how to answer are kept: `accept`, `accept-encoding`,
/// `accept-language`, `content-type`, `cache-control`, `if-none-match`, `if-modified-since`,
/// `last-event-id` and `user-agent`. Everything else is dropped, among them the gateway's
/// credentials (`authorization`, `proxy-authorization`, `cookie`), `host`, hop-by-hop headers
/// (`connection`, `keep-alive`, `te`, `trailer`, `transfer-encoding`, `upgrade`), `content-length`
/// (the HTTP client sets its own), `x-opencode-directory` and every `x-opencode-*`, `forwarded`
/// and `x-forwarded-*`, `origin` and `referer`.
pub(crate) fn forwards_request_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "accept"
            | "accept-encoding"
            | "accept-language"
            | "content-type"
            | "cache-control"
            | "if-none-match"
            | "if-modified-since"
            | "last-event-id"
            | "user-agent"
    )
}

/// Whether an agent's response header is passed to the client as it is. Only `content-encoding`
/// (the HTTP client does not decompress, so the body is still encoded), `content-language`,
/// `etag`, `last-modified`, `vary`, `retry-after` and `x-accel-buffering` are. `content-type` is
/// not: set it from [`response_content_type`]. Everything else is dropped, among them
/// `set-cookie`, `access-control-*`, `content-security-policy`, `strict-transport-security`,
/// `location`, `www-authenticate`, `cache-control` (replaced by [`hardening_headers`]),
/// `content-length` and `transfer-encoding` (the gateway frames its own body) and hop-by-hop
/// headers.
pub(crate) fn forwards_response_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "content-encoding"
            | "content-language"
            | "etag"
            | "last-modified"
            | "vary"
            | "retry-after"
            | "x-accel-buffering"
    )
}

/// The `content-type` of a proxied response: the agent's own when it is JSON, an event stream or
/// plain text (parameters such as `charset` kept), else `application/octet-stream`, so a file
/// the agent wrote (`/api/fs/read/page.html` answers `text/html`) is never rendered as a page
/// on the gateway's origin.
pub(crate) fn response_content_type(upstream: Option<&HeaderValue>) -> HeaderValue {
    let safe = upstream.filter(|value| {
        value.to_str().is_ok_and(|text| {
            let essence = text.split(';').next().unwrap_or_default().trim();
            ["application/json", "text/event-stream", "text/plain"]
                .iter()
                .any(|allowed| essence.eq_ignore_ascii_case(allowed))
        })
    });
    safe.cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"))
}

/// Headers the gateway adds to every proxied response: no sniffing, a sandboxing
/// content-security policy (nothing the agent returns can run script on the gateway's origin),
/// no framing, same-origin resource policy, and no caching (answers are per user, and a
/// hostile agent could otherwise make them cacheable by a shared cache).
pub(crate) fn hardening_headers() -> [(HeaderName, HeaderValue); 4] {
    [
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("sandbox; default-src 'none'; frame-ancestors 'none'"),
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store, no-transform"),
        ),
    ]
}

/// The status the gateway answers for an agent's status: 2xx, 304, 4xx and 5xx as they are;
/// anything else (1xx, `101 Switching Protocols`, redirects, whose `location` is dropped,
/// out-of-range codes) becomes `502 Bad Gateway`.
pub(crate) fn forwarded_status(upstream: u16) -> StatusCode {
    match upstream {
        200..=299 | 304 | 400..=599 => {
            StatusCode::from_u16(upstream).unwrap_or(StatusCode::BAD_GATEWAY)
        }
        _ => StatusCode::BAD_GATEWAY,
    }
}

/// Why a request body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyViolation {
    /// The body of a prompt route is not a JSON object.
    NotJsonObject,
    /// The prompt sets `tools`, which OpenCode turns into the session's permission rules
    /// (`{"tools": {"bash": true}}` would allow every command without asking).
    Tools,
    /// A part's URL is neither a `data:` URL nor a `file:` URL inside the workspace (OpenCode
    /// reads `file:` parts from any absolute path, without asking).
    FileOutsideWorkspace,
}

impl BodyViolation {
    /// A message for the client's problem document.
    pub(crate) fn message(self) -> &'static str {
        match self {
            BodyViolation::NotJsonObject => "the agent request body must be a JSON object",
            BodyViolation::Tools => {
                "`tools` is not accepted through the gateway: the session's permission policy applies"
            }
            BodyViolation::FileOutsideWorkspace => {
                "file parts must be data: URLs or file: URLs inside the workspace"
            }
        }
    }
}

/// Whether the proxy must read the body of this request and pass it to [`check_body`] before
/// forwarding it (only the prompt routes; other bodies stream through).
pub(crate) fn inspects_body(method: &Method, path: &str) -> bool {
    route(method, path).is_some_and(|route| route.body == Body::Prompt)
}

/// Checks the body of a request to an allowed route; `workspace` is the absolute path of the
/// workspace as the agent sees it (OpenCode's `GET /path` `directory`). Prompt bodies must be
/// JSON objects without `tools`, whose parts' `url`s are `data:` URLs or `file:` URLs naming
/// the workspace or something inside it. Routes without a body check always pass.
pub(crate) fn check_body(
    method: &Method,
    path: &str,
    body: &[u8],
    workspace: &str,
) -> Result<(), BodyViolation> {
    if !inspects_body(method, path) {
        return Ok(());
    }
    let Ok(serde_json::Value::Object(prompt)) = serde_json::from_slice(body) else {
        return Err(BodyViolation::NotJsonObject);
    };
    if prompt.contains_key("tools") {
        return Err(BodyViolation::Tools);
    }
    let parts = prompt
        .get("parts")
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for part in parts {
        if let Some(url) = part.get("url")
            && !url
                .as_str()
                .is_some_and(|url| part_url_allowed(url, workspace))
        {
            return Err(BodyViolation::FileOutsideWorkspace);
        }
    }
    Ok(())
}

/// Whether a prompt part's URL is a `data:` URL, or a `file:` URL (empty or `localhost` host)
/// whose decoded path is the workspace or inside it, with no `.`, `..` or empty segment, no `\`
/// and no control character (the URL parser on the other side would turn those into `/` or
/// drop them).
fn part_url_allowed(url: &str, workspace: &str) -> bool {
    if strip_prefix_ignore_case(url, "data:").is_some() {
        return true;
    }
    let Some(rest) = strip_prefix_ignore_case(url, "file://") else {
        return false;
    };
    let Some(slash) = rest.find('/') else {
        return false;
    };
    let (host, path) = rest.split_at(slash);
    if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
        return false;
    }
    let path = path.split(['?', '#']).next().unwrap_or_default();
    percent_decode(path, false).is_some_and(|path| path_within(&path, workspace))
}

/// Whether an absolute, decoded path is `root` or inside it, lexically: no `.`, `..` or empty
/// segment (a trailing `/` aside), no `\` and no control character.
fn path_within(path: &str, root: &str) -> bool {
    let root = root.trim_end_matches('/');
    if !root.starts_with('/') || !is_clean_absolute(root) || !is_clean_absolute(path) {
        return false;
    }
    path.strip_prefix(root)
        .is_some_and(|inside| inside.is_empty() || inside.starts_with('/'))
}

/// Whether an absolute path is lexically clean (see [`path_within`]).
fn is_clean_absolute(path: &str) -> bool {
    let Some(relative) = path.strip_prefix('/') else {
        return false;
    };
    if path.chars().any(|c| c == '\\' || c.is_control()) {
        return false;
    }
    let relative = relative.strip_suffix('/').unwrap_or(relative);
    relative.is_empty()
        || relative
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

/// `text` without `prefix`, compared ignoring ASCII case.
fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Percent-decodes `input` (and `+` as a space when `plus_is_space`, as in a query), or `None`
/// for a malformed escape or a result that is not UTF-8.
fn percent_decode(input: &str, plus_is_space: bool) -> Option<String> {
    let bytes = input.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'%' => {
                let high = hex_value(*bytes.get(index + 1)?)?;
                let low = hex_value(*bytes.get(index + 2)?)?;
                decoded.push((high << 4) | low);
                index += 3;
            }
            b'+' if plus_is_space => {
                decoded.push(b' ');
                index += 1;
            }
            _ => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(decoded).ok()
}

/// The value of one hexadecimal digit.
fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
