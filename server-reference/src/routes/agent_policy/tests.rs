//! The agent proxy's policy, route by route and header by header.

//! The policy against what `opencode attach` 1.18.33 and the SDKs really send, and against
//! every route of OpenCode 1.18.33's OpenAPI document.

use super::*;

/// The workspace the body tests use.
const WORKSPACE: &str = "/home/agent/workspace";

/// Splits `"METHOD /path?query"` into a method and a path (the query dropped).
fn request(line: &str) -> (Method, &str) {
    let (method, target) = line.split_once(' ').expect("METHOD target");
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    (Method::from_bytes(method.as_bytes()).expect("method"), path)
}

/// Whether the request line is allowed.
fn allowed(line: &str) -> bool {
    let (method, path) = request(line);
    allows(&method, path)
}

/// Asserts each denied request is refused, and its control (the same shape on an allowed
/// route) is accepted, so a denial never comes from a malformed test input.
fn assert_pairs(pairs: &[(&str, &str)]) {
    for (denied, control) in pairs {
        assert!(!allowed(denied), "should be denied: {denied}");
        assert!(allowed(control), "control should be allowed: {control}");
    }
}

/// Every request `opencode attach` 1.18.33 made, recorded through a logging proxy: start on
/// the home screen, `--session`, `--continue`, a prompt, an `@` file mention, a permission
/// answered, one rejected with Escape, `/compact`, the session list.
const ATTACH_TRACE: &[&str] = &[
    "GET /path",
    "GET /project/current",
    "GET /config/providers",
    "GET /provider",
    "GET /experimental/capabilities",
    "GET /experimental/console",
    "GET /agent",
    "GET /config",
    "GET /global/event",
    "GET /project/25fc8281d94f44bea23b8fe9ff59dd363b555006/directories",
    "GET /session?start=1793544690609&path=",
    "GET /session?roots=true&limit=100&path=",
    "GET /api/location",
    "GET /api/agent",
    "GET /api/integration",
    "GET /api/model",
    "GET /api/provider",
    "GET /api/reference",
    "GET /api/command",
    "GET /api/skill",
    "GET /command",
    "GET /lsp",
    "GET /mcp",
    "GET /experimental/resource",
    "GET /formatter",
    "GET /session/status",
    "GET /provider/auth",
    "GET /vcs",
    "GET /experimental/workspace",
    "GET /experimental/workspace/status",
    "GET /api/model?location[directory]=%2Ftmp%2Focprobe%2Fws&",
    "GET /api/provider?location[directory]=%2Ftmp%2Focprobe%2Fws&",
    "GET /api/integration?location[directory]=%2Ftmp%2Focprobe%2Fws&",
    "GET /api/fs/find?query=READ&limit=20&location[directory]=%2Ftmp%2Focprobe%2Fws&",
    "POST /session/ses_dcde85c08ffedTwHC6xc1qv41r/message",
    "GET /session/ses_dcde85c08ffedTwHC6xc1qv41r",
    "GET /session/ses_dcde85c08ffedTwHC6xc1qv41r/message?limit=100",
    "GET /session/ses_dcde85c08ffedTwHC6xc1qv41r/todo",
    "GET /session/ses_dcde85c08ffedTwHC6xc1qv41r/diff",
    "POST /permission/per_23217ab7d0010LNIf1i2vaHHJf/reply?directory=%2Ftmp%2Focprobe%2Fws",
    "POST /session/ses_dcde6a343ffe4YO3X880IVp031/summarize",
];

/// Requests the attach trace made that the proxy refuses on purpose: a new session from the
/// home screen (attach with `--continue` or `--session` instead), and `/undo`.
const ATTACH_TRACE_REFUSED: &[&str] = &[
    "POST /session?directory=%2Ftmp%2Focprobe%2Fws",
    "POST /session/ses_dcde6a343ffe4YO3X880IVp031/revert",
];

/// What the JS SDK's common calls and the gateway's own driver send.
const SDK_CALLS: &[&str] = &[
    "GET /event",
    "GET /global/health",
    "GET /session",
    "GET /session/ses_1",
    "GET /session/ses_1/children",
    "GET /session/ses_1/message/msg_1",
    "POST /session/ses_1/prompt_async",
    "POST /session/ses_1/abort",
    "POST /session/ses_1/permissions/per_1",
    "GET /permission",
    "GET /question",
    "POST /question/que_1/reply",
    "POST /question/que_1/reject",
    "GET /find?pattern=TODO",
    "GET /find/file?query=main&dirs=true",
    "GET /find/symbol?query=main",
    "GET /file?path=src",
    "GET /file/content?path=src/main.rs",
    "GET /file/status",
    "GET /vcs/status",
    "GET /vcs/diff?mode=working&context=3",
    "GET /vcs/diff/raw",
    "GET /api/health",
    "GET /api/event",
    "GET /api/fs/list?path=src",
    "GET /api/fs/read/src/main.rs",
    "GET /api/fs/read/.gitignore",
    "GET /api/session?limit=10",
    "GET /api/session/active",
    "GET /api/session/ses_1",
    "GET /api/session/ses_1/context",
    "GET /api/session/ses_1/history?after=3",
    "GET /api/session/ses_1/event?after=3",
    "GET /api/session/ses_1/message",
    "GET /api/session/ses_1/message/msg_1",
    "GET /api/session/ses_1/permission",
    "GET /api/session/ses_1/permission/per_1",
    "GET /api/session/ses_1/question",
    "GET /api/permission/request",
    "GET /api/question/request",
    "POST /api/session/ses_1/interrupt",
    "POST /api/session/ses_1/wait",
    "POST /api/session/ses_1/permission/per_1/reply",
    "POST /api/session/ses_1/question/que_1/reply",
    "POST /api/session/ses_1/question/que_1/reject",
];

/// Every route of OpenCode 1.18.33's OpenAPI document (`GET /doc`), parameters filled in,
/// with `+` for allowed and `-` for refused.
const OPENAPI_ROUTES: &[&str] = &[
    "- PUT /auth/x1",
    "- DELETE /auth/x1",
    "- POST /log",
    "- POST /experimental/control-plane/move-session",
    "+ GET /global/health",
    "+ GET /global/event",
    "- GET /global/config",
    "- PATCH /global/config",
    "- POST /global/dispose",
    "- POST /global/upgrade",
    "+ GET /event",
    "+ GET /config",
    "- PATCH /config",
    "+ GET /config/providers",
    "+ GET /experimental/capabilities",
    "+ GET /experimental/console",
    "- GET /experimental/console/orgs",
    "- POST /experimental/console/switch",
    "- GET /experimental/tool",
    "- GET /experimental/tool/ids",
    "- GET /experimental/worktree",
    "- POST /experimental/worktree",
    "- DELETE /experimental/worktree",
    "- POST /experimental/worktree/reset",
    "- GET /experimental/session",
    "- POST /experimental/session/x1/background",
    "+ GET /experimental/resource",
    "+ GET /find",
    "+ GET /find/file",
    "+ GET /find/symbol",
    "+ GET /file",
    "+ GET /file/content",
    "+ GET /file/status",
    "- POST /instance/dispose",
    "+ GET /path",
    "+ GET /vcs",
    "+ GET /vcs/status",
    "+ GET /vcs/diff",
    "+ GET /vcs/diff/raw",
    "- POST /vcs/apply",
    "+ GET /command",
    "+ GET /agent",
    "+ GET /skill",
    "+ GET /lsp",
    "+ GET /formatter",
    "+ GET /mcp",
    "- POST /mcp",
    "- POST /mcp/x1/auth",
    "- DELETE /mcp/x1/auth",
    "- POST /mcp/x1/auth/callback",
    "- POST /mcp/x1/auth/authenticate",
    "- POST /mcp/x1/connect",
    "- POST /mcp/x1/disconnect",
    "- GET /project",
    "+ GET /project/current",
    "- POST /project/git/init",
    "- PATCH /project/x1",
    "+ GET /project/x1/directories",
    "- POST /experimental/project/x1/copy/generate-name",
    "- GET /pty/shells",
    "- GET /pty",
    "- POST /pty",
    "- GET /pty/x1",
    "- PUT /pty/x1",
    "- DELETE /pty/x1",
    "- POST /pty/x1/connect-token",
    "+ GET /question",
    "+ POST /question/x1/reply",
    "+ POST /question/x1/reject",
    "+ GET /permission",
    "+ POST /permission/x1/reply",
    "+ GET /provider",
    "+ GET /provider/auth",
    "- POST /provider/x1/oauth/authorize",
    "- POST /provider/x1/oauth/callback",
    "+ GET /session",
    "- POST /session",
    "+ GET /session/status",
    "+ GET /session/x1",
    "- DELETE /session/x1",
    "- PATCH /session/x1",
    "+ GET /session/x1/children",
    "+ GET /session/x1/todo",
    "+ GET /session/x1/diff",
    "+ GET /session/x1/message",
    "+ POST /session/x1/message",
    "+ GET /session/x1/message/x1",
    "- DELETE /session/x1/message/x1",
    "- POST /session/x1/fork",
    "+ POST /session/x1/abort",
    "- POST /session/x1/init",
    "- POST /session/x1/share",
    "- DELETE /session/x1/share",
    "+ POST /session/x1/summarize",
    "+ POST /session/x1/prompt_async",
    "- POST /session/x1/command",
    "- POST /session/x1/shell",
    "- POST /session/x1/revert",
    "- POST /session/x1/unrevert",
    "+ POST /session/x1/permissions/x1",
    "- DELETE /session/x1/message/x1/part/x1",
    "- PATCH /session/x1/message/x1/part/x1",
    "- POST /sync/start",
    "- POST /sync/replay",
    "- POST /sync/steal",
    "- POST /sync/history",
    "- POST /tui/append-prompt",
    "- POST /tui/open-help",
    "- POST /tui/open-sessions",
    "- POST /tui/open-themes",
    "- POST /tui/open-models",
    "- POST /tui/submit-prompt",
    "- POST /tui/clear-prompt",
    "- POST /tui/execute-command",
    "- POST /tui/show-toast",
    "- POST /tui/publish",
    "- POST /tui/select-session",
    "- GET /tui/control/next",
    "- POST /tui/control/response",
    "- GET /experimental/workspace/adapter",
    "+ GET /experimental/workspace",
    "- POST /experimental/workspace",
    "- POST /experimental/workspace/sync-list",
    "+ GET /experimental/workspace/status",
    "- DELETE /experimental/workspace/x1",
    "- POST /experimental/workspace/warp",
    "+ GET /api/health",
    "+ GET /api/location",
    "+ GET /api/agent",
    "+ GET /api/session",
    "- POST /api/session",
    "+ GET /api/session/active",
    "+ GET /api/session/x1",
    "- POST /api/session/x1/agent",
    "- POST /api/session/x1/model",
    "- POST /api/session/x1/prompt",
    "- POST /api/session/x1/compact",
    "+ POST /api/session/x1/wait",
    "- POST /api/session/x1/revert/stage",
    "- POST /api/session/x1/revert/clear",
    "- POST /api/session/x1/revert/commit",
    "+ GET /api/session/x1/context",
    "+ GET /api/session/x1/history",
    "+ GET /api/session/x1/event",
    "+ POST /api/session/x1/interrupt",
    "+ GET /api/session/x1/message/x1",
    "+ GET /api/session/x1/message",
    "+ GET /api/model",
    "+ GET /api/provider",
    "- GET /api/provider/x1",
    "+ GET /api/integration",
    "- GET /api/integration/x1",
    "- POST /api/integration/x1/connect/key",
    "- POST /api/integration/x1/connect/oauth",
    "- GET /api/integration/attempt/x1",
    "- DELETE /api/integration/attempt/x1",
    "- POST /api/integration/attempt/x1/complete",
    "- PATCH /api/credential/x1",
    "- DELETE /api/credential/x1",
    "+ GET /api/permission/request",
    "- GET /api/permission/saved",
    "- DELETE /api/permission/saved/x1",
    "- POST /api/session/x1/permission",
    "+ GET /api/session/x1/permission",
    "+ GET /api/session/x1/permission/x1",
    "+ POST /api/session/x1/permission/x1/reply",
    "+ GET /api/fs/read/x1",
    "+ GET /api/fs/list",
    "+ GET /api/fs/find",
    "+ GET /api/command",
    "+ GET /api/skill",
    "+ GET /api/event",
    "- GET /api/pty",
    "- POST /api/pty",
    "- GET /api/pty/x1",
    "- PUT /api/pty/x1",
    "- DELETE /api/pty/x1",
    "- POST /api/pty/x1/connect-token",
    "- GET /api/pty/x1/connect",
    "+ GET /api/question/request",
    "+ GET /api/session/x1/question",
    "+ POST /api/session/x1/question/x1/reply",
    "+ POST /api/session/x1/question/x1/reject",
    "+ GET /api/reference",
    "- POST /experimental/project/x1/copy",
    "- DELETE /experimental/project/x1/copy",
    "- POST /experimental/project/x1/copy/refresh",
    "- GET /pty/x1/connect",
];

/// The rule table is well formed: absolute patterns, no empty segment, braces closed, a
/// rest segment only last, no route twice.
#[test]
fn rules_are_well_formed() {
    for (index, rule) in RULES.iter().enumerate() {
        let pattern = rule.pattern;
        assert!(pattern.starts_with('/'), "{pattern}");
        let segments: Vec<&str> = pattern[1..].split('/').collect();
        for (position, segment) in segments.iter().enumerate() {
            assert!(!segment.is_empty(), "{pattern}");
            if segment.starts_with('{') {
                assert!(segment.ends_with('}'), "{pattern}");
                if segment.starts_with("{*") {
                    assert_eq!(position + 1, segments.len(), "{pattern}");
                }
            } else {
                assert!(!segment.contains(['{', '}']), "{pattern}");
                assert!(segment_is_safe(segment), "{pattern}");
            }
        }
        for other in &RULES[index + 1..] {
            let same = rule.verb == other.verb && pattern == other.pattern;
            assert!(!same, "twice: {pattern}");
        }
    }
    assert_eq!(ROUTES.len(), RULES.len());
}

/// Everything `opencode attach` sent while watching and driving a session is allowed.
#[test]
fn attach_trace_is_allowed() {
    for line in ATTACH_TRACE {
        assert!(allowed(line), "attach needs {line}");
    }
}

/// The two attach requests refused on purpose stay refused, next to their allowed
/// neighbours.
#[test]
fn attach_requests_refused_on_purpose() {
    assert_pairs(&[
        (ATTACH_TRACE_REFUSED[0], "GET /session?directory=%2Ftmp"),
        (ATTACH_TRACE_REFUSED[1], "POST /session/ses_1/abort"),
    ]);
}

/// The SDK calls for watching and driving a session are allowed.
#[test]
fn sdk_calls_are_allowed() {
    for line in SDK_CALLS {
        assert!(allowed(line), "SDK needs {line}");
    }
}

/// Every route of OpenCode's OpenAPI document gets the decision the table records, so a
/// pattern can never widen into a neighbouring route.
#[test]
fn every_openapi_route_gets_its_decision() {
    for entry in OPENAPI_ROUTES {
        let (sign, line) = entry.split_once(' ').expect("sign");
        assert_eq!(allowed(line), sign == "+", "{line}");
    }
    let allowed_count = OPENAPI_ROUTES.iter().filter(|e| e.starts_with('+')).count();
    assert_eq!(allowed_count, RULES.len(), "every rule is an OpenAPI route");
}

/// Commands that run outside the permission policy are refused: the shell route, slash
/// commands (OpenCode runs `` !`…` `` in their arguments through a shell without asking),
/// terminals, applying patches, `git init`.
#[test]
fn command_execution_is_denied() {
    assert_pairs(&[
        ("POST /session/ses_1/shell", "POST /session/ses_1/abort"),
        ("POST /session/ses_1/command", "POST /session/ses_1/message"),
        ("POST /session/ses_1/init", "POST /session/ses_1/summarize"),
        ("GET /pty", "GET /lsp"),
        ("POST /pty", "POST /session/ses_1/abort"),
        ("GET /pty/pty_1/connect", "GET /session/ses_1/message"),
        (
            "POST /pty/pty_1/connect-token",
            "POST /permission/per_1/reply",
        ),
        (
            "GET /api/pty/pty_1/connect",
            "GET /api/session/ses_1/message",
        ),
        ("POST /vcs/apply", "POST /session/ses_1/abort"),
        ("GET /vcs/apply", "GET /vcs/diff"),
        ("POST /project/git/init", "POST /session/ses_1/abort"),
        ("POST /experimental/worktree", "POST /session/ses_1/abort"),
        ("GET /experimental/tool", "GET /experimental/resource"),
    ]);
}

/// Writes to server-wide state are refused, while the matching reads pass.
#[test]
fn server_wide_writes_are_denied() {
    assert_pairs(&[
        ("PATCH /config", "GET /config"),
        ("PATCH /global/config", "GET /config"),
        ("PUT /auth/anthropic", "GET /provider/auth"),
        ("DELETE /auth/anthropic", "GET /provider/auth"),
        (
            "POST /provider/anthropic/oauth/authorize",
            "POST /permission/per_1/reply",
        ),
        ("POST /mcp", "GET /mcp"),
        ("POST /mcp/github/connect", "POST /question/que_1/reject"),
        ("POST /instance/dispose", "POST /session/ses_1/abort"),
        ("POST /global/dispose", "POST /session/ses_1/abort"),
        ("POST /global/upgrade", "POST /session/ses_1/abort"),
        ("POST /log", "POST /session/ses_1/abort"),
        ("POST /tui/submit-prompt", "POST /session/ses_1/abort"),
        ("GET /tui/control/next", "GET /session/status"),
        ("POST /sync/replay", "POST /session/ses_1/abort"),
        ("PATCH /api/credential/cred_1", "GET /api/provider"),
        (
            "POST /api/integration/openai/connect/key",
            "GET /api/integration",
        ),
        (
            "POST /api/session/ses_1/permission",
            "GET /api/session/ses_1/permission",
        ),
        (
            "DELETE /api/permission/saved/rule_1",
            "GET /api/permission/request",
        ),
    ]);
}

/// Session changes that escape the policy or the gateway's transcript are refused: new
/// sessions (their body can carry a permission ruleset), updates (same), forks, sharing,
/// reverting and editing history.
#[test]
fn session_rewrites_are_denied() {
    assert_pairs(&[
        ("POST /session", "GET /session"),
        ("PATCH /session/ses_1", "GET /session/ses_1"),
        ("DELETE /session/ses_1", "GET /session/ses_1"),
        ("POST /session/ses_1/fork", "POST /session/ses_1/abort"),
        ("POST /session/ses_1/share", "POST /session/ses_1/abort"),
        ("DELETE /session/ses_1/share", "GET /session/ses_1/diff"),
        ("POST /session/ses_1/revert", "POST /session/ses_1/abort"),
        ("POST /session/ses_1/unrevert", "POST /session/ses_1/abort"),
        (
            "DELETE /session/ses_1/message/msg_1",
            "GET /session/ses_1/message/msg_1",
        ),
        (
            "PATCH /session/ses_1/message/msg_1/part/prt_1",
            "GET /session/ses_1/message/msg_1",
        ),
        ("POST /api/session", "GET /api/session"),
        (
            "POST /api/session/ses_1/prompt",
            "POST /api/session/ses_1/interrupt",
        ),
        (
            "POST /api/session/ses_1/model",
            "POST /api/session/ses_1/wait",
        ),
        (
            "POST /api/session/ses_1/revert/commit",
            "POST /api/session/ses_1/wait",
        ),
    ]);
}

/// Methods other than the route's own are refused, `HEAD` and `OPTIONS` included.
#[test]
fn other_methods_are_denied() {
    assert_pairs(&[
        ("HEAD /event", "GET /event"),
        ("OPTIONS /session", "GET /session"),
        ("PUT /session/ses_1/abort", "POST /session/ses_1/abort"),
        ("GET /session/ses_1/abort", "POST /session/ses_1/abort"),
        ("POST /event", "GET /event"),
        ("TRACE /path", "GET /path"),
    ]);
}

/// Traversal, encoded separators, empty segments and odd characters are refused before
/// any pattern is tried.
#[test]
fn malformed_paths_are_denied() {
    assert_pairs(&[
        ("GET /session/../pty", "GET /session/ses_1/todo"),
        ("POST /session/ses_1/../../pty", "POST /session/ses_1/abort"),
        ("GET /session/./status", "GET /session/status"),
        ("GET /session/%2e%2e/pty", "GET /session/ses_1/todo"),
        ("GET /session/.%2E/pty", "GET /session/ses_1/todo"),
        ("GET /session/%252e%252e/pty", "GET /session/ses_1/todo"),
        ("POST /session/ses_1%2fshell", "POST /session/ses_1/abort"),
        ("POST /session/ses_1%2Fshell", "POST /session/ses_1/abort"),
        ("POST /session/ses_1%5cshell", "POST /session/ses_1/abort"),
        ("POST /session/ses_1\\shell", "POST /session/ses_1/abort"),
        (
            "GET /api/fs/read/..%2f..%2fetc%2fhostname",
            "GET /api/fs/read/etc/hostname",
        ),
        (
            "GET /api/fs/read/../../etc/hostname",
            "GET /api/fs/read/etc/hostname",
        ),
        (
            "GET /api/fs/read//etc/hostname",
            "GET /api/fs/read/etc/hostname",
        ),
        (
            "GET /api/fs/read/%2Fetc%2Fhostname",
            "GET /api/fs/read/etc/hostname",
        ),
        ("GET /api/fs/read/a%00b", "GET /api/fs/read/a%20b"),
        ("GET /api/fs/read/a%0ab", "GET /api/fs/read/a%20b"),
        ("GET /api/fs/read/a%ZZb", "GET /api/fs/read/a%20b"),
        ("GET /api/fs/read/a%2", "GET /api/fs/read/a%20b"),
        ("GET /api/fs/read/%ff", "GET /api/fs/read/a%20b"),
        ("GET /api/fs/read/", "GET /api/fs/read/README.md"),
        ("GET /session//message", "GET /session/ses_1/message"),
        ("GET /session/", "GET /session"),
        ("GET //session", "GET /session"),
        ("GET /session/ses_1#/message", "GET /session/ses_1/message"),
        ("GET /session/sés/message", "GET /session/ses_1/message"),
        ("GET /session/.hidden/message", "GET /session/ses_1/message"),
        ("GET /session/ses%5F1/message", "GET /session/ses_1/message"),
        ("GET /Session", "GET /session"),
        ("GET /%73ession", "GET /session"),
    ]);
    let long = format!("/api/fs/read/{}", "a/".repeat(40) + "b");
    assert!(!allows(&Method::GET, &long));
    assert!(!allows(&Method::GET, "session"));
    assert!(!allows(&Method::GET, "/session/ses_1?x/message"));
    assert!(!allows(&Method::GET, "/session?directory=%2Fetc"));
    assert!(!allows(&Method::GET, ""));
    assert!(!allows(&Method::GET, "/"));
    let too_long_id = format!("/session/{}", "a".repeat(MAX_PARAM + 1));
    assert!(!allows(&Method::GET, &too_long_id));
    assert!(allows(
        &Method::GET,
        &format!("/session/{}", "a".repeat(MAX_PARAM))
    ));
}

/// The agent path is cut from the raw request path, and only from agent-proxy paths.
#[test]
fn agent_path_is_cut_from_the_raw_path() {
    assert_eq!(
        agent_path("/v1/sessions/s1/agent/session"),
        Some("/session")
    );
    assert_eq!(
        agent_path("/v1/sessions/s1/agent/session/..%2Fshell"),
        Some("/session/..%2Fshell")
    );
    assert_eq!(agent_path("/v1/sessions/s1/agent"), Some(""));
    assert_eq!(agent_path("/v1/sessions/s1/agent/"), Some("/"));
    assert_eq!(agent_path("/v1/sessions/s1/agents/x"), None);
    assert_eq!(agent_path("/v1/sessions//agent/x"), None);
    assert_eq!(agent_path("/v1/sessions/s1/events"), None);
    assert_eq!(agent_path("/v2/sessions/s1/agent/x"), None);
    assert!(!allows(
        &Method::GET,
        agent_path("/v1/sessions/s1/agent/").unwrap()
    ));
}

/// `directory`, `workspace`, `location[…]` and `token` are dropped in every spelling,
/// while the parameters the routes need are kept as sent.
#[test]
fn query_drops_directory_and_keeps_the_rest() {
    assert_eq!(forwarded_query("directory=%2Fetc&limit=100"), "limit=100");
    assert_eq!(forwarded_query("limit=100&directory=/etc"), "limit=100");
    assert_eq!(forwarded_query("%64irectory=%2Fetc&limit=1"), "limit=1");
    assert_eq!(forwarded_query("DIRECTORY=%2Fetc&limit=1"), "limit=1");
    assert_eq!(forwarded_query("workspace=wrk_1&limit=1"), "limit=1");
    assert_eq!(
        forwarded_query("query=READ&limit=20&location[directory]=%2Fetc&"),
        "query=READ&limit=20"
    );
    assert_eq!(
        forwarded_query("query=a&location%5Bdirectory%5D=%2Fetc"),
        "query=a"
    );
    assert_eq!(forwarded_query("location=%2Fetc&query=a"), "query=a");
    assert_eq!(forwarded_query("token=secret&limit=5"), "limit=5");
    assert_eq!(forwarded_query("limit=5&token"), "limit=5");
    assert_eq!(forwarded_query("scope=global&roots=true"), "roots=true");
    assert_eq!(forwarded_query("directory"), "");
    assert_eq!(forwarded_query(""), "");
    assert_eq!(forwarded_query("&&limit=1&&"), "limit=1");
    assert_eq!(forwarded_query("li%6Dit=1"), "li%6Dit=1");
    assert_eq!(forwarded_query("limit=%ZZ"), "");
    assert_eq!(
        forwarded_query("start=1793544690609&path="),
        "start=1793544690609&path="
    );
    assert_eq!(
        forwarded_query("pattern=fn+main&type=file&dirs=false&messageID=msg_1"),
        "pattern=fn+main&type=file&dirs=false&messageID=msg_1"
    );
    assert_eq!(
        forwarded_query("mode=working&context=3&before=msg_1&after=4&cursor=c&order=desc"),
        "mode=working&context=3&before=msg_1&after=4&cursor=c&order=desc"
    );
    assert_eq!(forwarded_query("search=fix%20bug"), "search=fix%20bug");
}

/// `path` is kept when relative and inside, dropped when absolute or climbing.
#[test]
fn query_path_must_stay_inside() {
    for kept in [
        "path=src",
        "path=src%2Fmain.rs",
        "path=",
        "path=a..b",
        "path=.gitignore",
    ] {
        assert_eq!(forwarded_query(kept), kept);
    }
    for dropped in [
        "path=/etc/hostname",
        "path=%2Fetc%2Fhostname",
        "path=..",
        "path=..%2F..%2Fetc",
        "path=src/../../etc",
        "path=src%5C..%5C..%5Cetc",
        "path=%5Cetc",
        "path=~/.ssh",
        "path=C:%5Cwindows",
        "path=a%00b",
        "%70ath=/etc",
    ] {
        assert_eq!(
            forwarded_query(&format!("{dropped}&limit=1")),
            "limit=1",
            "{dropped}"
        );
    }
}

/// Credentials, routing and hop-by-hop request headers are dropped; content negotiation
/// and event-stream headers pass.
#[test]
fn request_headers_both_ways() {
    for dropped in [
        "authorization",
        "proxy-authorization",
        "cookie",
        "host",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "expect",
        "x-opencode-directory",
        "x-opencode-workspace",
        "x-opencode-anything",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-real-ip",
        "origin",
        "referer",
        "sec-websocket-key",
        "x-api-key",
    ] {
        let name = HeaderName::from_static(dropped);
        assert!(!forwards_request_header(&name), "{dropped}");
    }
    for kept in [
        "accept",
        "accept-encoding",
        "accept-language",
        "content-type",
        "cache-control",
        "if-none-match",
        "if-modified-since",
        "last-event-id",
        "user-agent",
    ] {
        let name = HeaderName::from_static(kept);
        assert!(forwards_request_header(&name), "{kept}");
    }
    assert!(forwards_request_header(&header::ACCEPT));
    assert!(!forwards_request_header(&header::AUTHORIZATION));
}

/// Response headers that would act on the gateway's origin are dropped; the ones that
/// describe the body pass.
#[test]
fn response_headers_both_ways() {
    for dropped in [
        "set-cookie",
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-headers",
        "access-control-expose-headers",
        "content-security-policy",
        "strict-transport-security",
        "location",
        "refresh",
        "link",
        "www-authenticate",
        "proxy-authenticate",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "trailer",
        "content-type",
        "cache-control",
        "x-content-type-options",
        "content-disposition",
        "clear-site-data",
        "alt-svc",
        "server",
    ] {
        let name = HeaderName::from_static(dropped);
        assert!(!forwards_response_header(&name), "{dropped}");
    }
    for kept in [
        "content-encoding",
        "content-language",
        "etag",
        "last-modified",
        "vary",
        "retry-after",
        "x-accel-buffering",
    ] {
        let name = HeaderName::from_static(kept);
        assert!(forwards_response_header(&name), "{kept}");
    }
}

/// JSON, event streams and plain text keep their content type; anything else, HTML and
/// SVG included, becomes `application/octet-stream`.
#[test]
fn content_type_is_sanitized() {
    for kept in [
        "application/json",
        "application/json; charset=utf-8",
        "text/event-stream",
        "text/plain;charset=UTF-8",
        "Application/JSON",
    ] {
        let value = HeaderValue::from_static(kept);
        assert_eq!(response_content_type(Some(&value)), value, "{kept}");
    }
    for replaced in [
        "text/html",
        "text/html; charset=utf-8",
        "image/svg+xml",
        "application/xhtml+xml",
        "application/javascript",
        "text/xml",
        "application/json-seq",
        "text/plain-html",
        "",
    ] {
        let value = HeaderValue::from_static(replaced);
        assert_eq!(
            response_content_type(Some(&value)),
            "application/octet-stream",
            "{replaced}"
        );
    }
    assert_eq!(response_content_type(None), "application/octet-stream");
    let opaque = HeaderValue::from_bytes(b"text/plain\xff").unwrap();
    assert_eq!(
        response_content_type(Some(&opaque)),
        "application/octet-stream"
    );
}

/// The hardening headers are the ones the pass-through list leaves out, so nothing is set
/// twice.
#[test]
fn hardening_headers_do_not_collide() {
    for (name, _) in hardening_headers() {
        assert!(!forwards_response_header(&name), "{name}");
    }
    let names: Vec<_> = hardening_headers().into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&header::X_CONTENT_TYPE_OPTIONS));
    assert!(names.contains(&header::CONTENT_SECURITY_POLICY));
    assert!(names.contains(&header::CACHE_CONTROL));
}

/// Successes, 304 and errors pass; informational, upgrade and redirect answers become 502.
#[test]
fn statuses() {
    for kept in [
        200, 204, 206, 304, 400, 401, 403, 404, 409, 429, 500, 503, 599,
    ] {
        assert_eq!(forwarded_status(kept).as_u16(), kept);
    }
    for replaced in [
        0, 100, 101, 103, 199, 300, 301, 302, 303, 307, 308, 600, 999,
    ] {
        assert_eq!(
            forwarded_status(replaced),
            StatusCode::BAD_GATEWAY,
            "{replaced}"
        );
    }
}

/// Checks a prompt body against the test workspace.
fn prompt(body: &str) -> Result<(), BodyViolation> {
    check_body(
        &Method::POST,
        "/session/ses_1/message",
        body.as_bytes(),
        WORKSPACE,
    )
}

/// A prompt body with one file part at `url`.
fn file_part(url: &str) -> String {
    serde_json::json!({
        "parts": [
            {"type": "text", "text": "look"},
            {"type": "file", "mime": "text/plain", "filename": "f", "url": url},
        ],
    })
    .to_string()
}

/// Only the prompt routes have their body read.
#[test]
fn body_inspection_routes() {
    assert!(inspects_body(&Method::POST, "/session/ses_1/message"));
    assert!(inspects_body(&Method::POST, "/session/ses_1/prompt_async"));
    assert!(!inspects_body(&Method::GET, "/session/ses_1/message"));
    assert!(!inspects_body(&Method::POST, "/session/ses_1/abort"));
    assert!(!inspects_body(&Method::POST, "/permission/per_1/reply"));
    assert!(!inspects_body(&Method::POST, "/session/ses_1/shell"));
    assert_eq!(
        check_body(
            &Method::POST,
            "/permission/per_1/reply",
            b"not json",
            WORKSPACE
        ),
        Ok(())
    );
    assert_eq!(
        check_body(
            &Method::POST,
            "/session/ses_1/prompt_async",
            b"not json",
            WORKSPACE
        ),
        Err(BodyViolation::NotJsonObject)
    );
}

/// `tools` is refused in any spelling JSON allows, while the prompt the TUI sends passes.
#[test]
fn prompt_tools_are_denied() {
    let tui = r#"{"agent":"build","model":{"providerID":"scripted","modelID":"scripted-model"},"parts":[{"type":"text","text":"list the files please"}]}"#;
    assert_eq!(prompt(tui), Ok(()));
    assert_eq!(
        prompt(r#"{"tools":{"bash":true},"parts":[{"type":"text","text":"x"}]}"#),
        Err(BodyViolation::Tools)
    );
    assert_eq!(
        prompt(r#"{"tool\u0073":{"bash":true},"parts":[]}"#),
        Err(BodyViolation::Tools)
    );
    assert_eq!(
        prompt(r#"{"tools":{},"tools":null,"parts":[]}"#),
        Err(BodyViolation::Tools)
    );
    assert_eq!(
        prompt(r#"{"parts":[],"system":"be brief","noReply":true}"#),
        Ok(())
    );
    assert_eq!(prompt("[]"), Err(BodyViolation::NotJsonObject));
    assert_eq!(prompt("\"tools\""), Err(BodyViolation::NotJsonObject));
    assert_eq!(prompt(""), Err(BodyViolation::NotJsonObject));
}

/// File parts outside the workspace are refused; the TUI's `@` mention and pasted images
/// pass.
#[test]
fn prompt_files_must_stay_inside() {
    let mention = r#"{"agent":"build","parts":[{"type":"text","text":"@README.md  read it"},{"type":"file","mime":"text/plain","filename":"README.md","url":"file:///home/agent/workspace/README.md","source":{"type":"file","text":{"start":0,"end":10,"value":"@README.md"},"path":"README.md"}}]}"#;
    assert_eq!(prompt(mention), Ok(()));
    for inside in [
        "file:///home/agent/workspace/README.md",
        "file:///home/agent/workspace/src/main.rs?start=1&end=9",
        "file:///home/agent/workspace/src/",
        "file:///home/agent/workspace",
        "file://localhost/home/agent/workspace/a%20b.txt",
        "FILE:///home/agent/workspace/x",
        "data:image/png;base64,iVBORw0KGgo=",
    ] {
        assert_eq!(prompt(&file_part(inside)), Ok(()), "{inside}");
    }
    for outside in [
        "file:///etc/hostname",
        "file:///proc/self/environ",
        "file:///home/agent/workspace/../.local/share/opencode/auth.json",
        "file:///home/agent/workspace/%2e%2e/x",
        "file:///home/agent/workspace/a%2F..%2F..%2Fx",
        "file:///home/agent/workspace\\..\\x",
        "file:///home/agent/workspace/.\t./x",
        "file:///home/agent/workspace/./x",
        "file:///home/agent/workspace//x",
        "file:///home/agent/workspace-evil/x",
        "file:///home/agent/work",
        "file://evil.example/home/agent/workspace/x",
        "file://localhost:80/home/agent/workspace/x",
        "file:/home/agent/workspace/x",
        "file:home/agent/workspace/x",
        "file:///home/agent/workspace/%ZZ",
        "https://example.com/x.txt",
        "http://169.254.169.254/latest/meta-data",
        " file:///home/agent/workspace/x",
    ] {
        assert_eq!(
            prompt(&file_part(outside)),
            Err(BodyViolation::FileOutsideWorkspace),
            "{outside}"
        );
    }
    let number_url = r#"{"parts":[{"type":"file","mime":"text/plain","url":7}]}"#;
    assert_eq!(prompt(number_url), Err(BodyViolation::FileOutsideWorkspace));
    let any_type = r#"{"parts":[{"type":"subtask","url":"file:///etc/passwd"}]}"#;
    assert_eq!(prompt(any_type), Err(BodyViolation::FileOutsideWorkspace));
}

/// The workspace bound is lexical and normalized: a trailing `/` on the root changes
/// nothing, and a relative, unclean or `/` root admits nothing.
#[test]
fn workspace_root_forms() {
    let url = "file:///home/agent/workspace/x";
    assert!(part_url_allowed(url, "/home/agent/workspace/"));
    assert!(!part_url_allowed(url, "home/agent/workspace"));
    assert!(!part_url_allowed(url, "/home/agent/../agent/workspace"));
    assert!(!part_url_allowed(url, ""));
    assert!(!part_url_allowed("file:///x", "/"));
}

/// Every violation has a message.
#[test]
fn violations_have_messages() {
    for violation in [
        BodyViolation::NotJsonObject,
        BodyViolation::Tools,
        BodyViolation::FileOutsideWorkspace,
    ] {
        assert!(!violation.message().is_empty());
    }
}
