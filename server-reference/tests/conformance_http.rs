//! More of `docs/protocol.md` taken at its word, over HTTP against the real server (a real
//! OpenCode driven by the scripted model). Each test quotes, section by section, the promises it
//! checks; negative probes have a control beside them, so that none can pass by doing nothing.

mod support;

use std::time::Duration;

use proliferate_core::auth::claims;
use proliferate_core::protocol::v1::Scope;
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

/// A valid one-pixel PNG.
const PNG: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

/// How long the log may take to get somewhere.
const DEADLINE: Duration = Duration::from_secs(120);

/// What the server answered: status, content type and JSON body (`Null` when empty or not
/// JSON), and the raw body.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: Value,
    text: String,
}

/// Sends a request with `token`; `body` as JSON when given.
async fn request(
    api: &Api,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let mut builder = api
        .http
        .request(method, format!("{}{path}", api.base))
        .bearer_auth(token);
    if let Some(body) = body {
        builder = builder.json(&body);
    }
    answer(builder.send().await.expect("the server answers")).await
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    Answer {
        status,
        content_type,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// Sends a request with the API's own token.
async fn call(api: &Api, method: Method, path: &str, body: Option<Value>) -> Answer {
    request(api, &api.token, method, path, body).await
}

/// §8: "HTTP errors use `application/problem+json` (RFC 9457) with a machine `code`".
#[track_caller]
fn assert_problem(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(
        answer.content_type, "application/problem+json",
        "{answer:?}"
    );
    assert_eq!(answer.body["code"], code, "{answer:?}");
    assert_eq!(answer.body["status"], status, "{answer:?}");
}

/// A successful JSON answer with `status`.
#[track_caller]
fn assert_json(answer: &Answer, status: u16) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(answer.content_type, "application/json", "{answer:?}");
}

/// A token for `subject` in `organization` with exactly `scopes`.
fn scoped_token(subject: &str, organization: &str, scopes: &[Scope]) -> String {
    authenticator().mint(&claims(
        subject,
        organization,
        scopes,
        Duration::from_secs(3600),
    ))
}

/// Admits a prompt over HTTP; the answer as it is.
async fn post_prompt(api: &Api, session_id: &str, prompt_id: &str, content: &str) -> Answer {
    call(
        api,
        Method::POST,
        &format!("/v1/sessions/{session_id}/messages"),
        Some(json!({"prompt_id": prompt_id, "content": content})),
    )
    .await
}

/// Every event envelope of the session so far, as JSON, over HTTP.
async fn all_events(api: &Api, session_id: &str) -> Vec<Value> {
    let mut events: Vec<Value> = Vec::new();
    loop {
        let after = events
            .last()
            .map_or(0, |event| event["seq"].as_u64().unwrap());
        let page = call(
            api,
            Method::GET,
            &format!("/v1/sessions/{session_id}/events?after_seq={after}&limit=5000"),
            None,
        )
        .await;
        assert_json(&page, 200);
        events.extend(page.body["events"].as_array().unwrap().iter().cloned());
        if page.body["has_more"] != true {
            return events;
        }
    }
}

/// Polls the log until `done` holds for it.
async fn events_until(api: &Api, session_id: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let start = std::time::Instant::now();
    while start.elapsed() < DEADLINE {
        let events = all_events(api, session_id).await;
        if done(&events) {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the log never got there:\n{}",
        outline(&all_events(api, session_id).await)
    );
}

/// One line per event: seq, type and the fields that tell events apart.
fn outline(events: &[Value]) -> String {
    events
        .iter()
        .map(|envelope| {
            let event = &envelope["event"];
            let detail: Vec<String> = [
                "prompt_id",
                "status",
                "tool",
                "kind",
                "message_id",
                "permission_id",
                "decision",
            ]
            .iter()
            .filter_map(|field| event.get(*field).map(|value| format!("{field}={value}")))
            .collect();
            format!("{} {} {}", envelope["seq"], event["type"], detail.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The event of an envelope whose type is `kind`.
fn is(envelope: &Value, kind: &str) -> bool {
    envelope["event"]["type"] == kind
}

/// The position of the first event of type `kind` with `prompt_id`.
fn position(events: &[Value], kind: &str, prompt_id: &str) -> Option<usize> {
    events
        .iter()
        .position(|envelope| is(envelope, kind) && envelope["event"]["prompt_id"] == prompt_id)
}

/// The events that end `prompt_id`'s turn.
fn turn_ends<'a>(events: &'a [Value], prompt_id: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|envelope| {
            (is(envelope, "turn_completed") || is(envelope, "turn_cancelled"))
                && envelope["event"]["prompt_id"] == prompt_id
        })
        .collect()
}

/// Waits until `prompt_id`'s turn ended.
async fn turn_end(api: &Api, session_id: &str, prompt_id: &str) -> Vec<Value> {
    events_until(api, session_id, |events| {
        !turn_ends(events, prompt_id).is_empty()
    })
    .await
}

/// Waits until `prompt_id`'s turn started.
async fn turn_start(api: &Api, session_id: &str, prompt_id: &str) -> Vec<Value> {
    events_until(api, session_id, |events| {
        position(events, "turn_started", prompt_id).is_some()
    })
    .await
}

/// The statuses of the `status_changed` events.
fn statuses(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|envelope| is(envelope, "status_changed"))
        .map(|envelope| envelope["event"]["status"].as_str().unwrap().to_owned())
        .collect()
}

/// A server started without `support`'s OpenCode: its `--opencode` does not exist, so every
/// sandbox fails to start at once.
struct AgentlessServer {
    base: String,
    child: std::process::Child,
    _data: tempfile::TempDir,
}

impl AgentlessServer {
    fn start() -> Self {
        use std::io::BufRead;
        let data = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_proliferate-server"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .args(["--opencode", "/nonexistent/opencode"])
            .env("PROLIFERATE_JWT_SECRET", SECRET)
            .env("PROLIFERATE_SERVICE_SECRET", SERVICE_SECRET)
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("proliferate-server starts");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next().expect("a first line").unwrap();
        let base = line
            .strip_prefix("proliferate-server listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        std::thread::spawn(move || for _ in lines {});
        Self {
            base,
            child,
            _data: data,
        }
    }

    fn api(&self, token: &str) -> Api {
        Api {
            base: self.base.clone(),
            token: token.to_owned(),
            http: reqwest::Client::new(),
        }
    }
}

impl Drop for AgentlessServer {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// §5 "An `agent_error` during a turn is followed by `turn_completed` (the turn ended in
/// failure)", with `agent_error` "`kind` is `model`, ..." and its `prompt_id`.
///
/// §5 and §13: `assistant_message_completed` "the message is final", sent "once per message";
/// "every `assistant_message_started` precedes the message's parts".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_turn_completes_and_every_message_completes_once() {
    let server = TestServer::start(&[]);
    let api = Api::new(&server, &token("ada", "acme"));
    let session = api.create_session().await;

    // The scripted model answers HTTP 400, which OpenCode does not retry.
    assert_json(
        &post_prompt(&api, &session.id, "prm_fail", "[[fail:400]]").await,
        202,
    );
    turn_end(&api, &session.id, "prm_fail").await;
    // A tool call and its follow-up: a turn of two assistant messages.
    assert_json(
        &post_prompt(&api, &session.id, "prm_tool", "[[bash:echo x > a.txt]]").await,
        202,
    );
    turn_end(&api, &session.id, "prm_tool").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = all_events(&api, &session.id).await;
    let log = outline(&events);

    let started = position(&events, "turn_started", "prm_fail").expect("the turn started");
    let errors: Vec<usize> = (0..events.len())
        .filter(|&index| is(&events[index], "agent_error"))
        .collect();
    assert_eq!(errors.len(), 1, "one agent_error:\n{log}");
    let error = &events[errors[0]]["event"];
    assert_eq!(error["kind"], "model", "{log}");
    assert_eq!(error["prompt_id"], "prm_fail", "{log}");
    assert!(started < errors[0], "the error is inside the turn:\n{log}");
    let ends = turn_ends(&events, "prm_fail");
    assert_eq!(ends.len(), 1, "{log}");
    assert!(is(ends[0], "turn_completed"), "{log}");
    let end = events
        .iter()
        .position(|envelope| envelope == ends[0])
        .unwrap();
    assert!(errors[0] < end, "turn_completed follows the error:\n{log}");
    assert!(
        events[errors[0] + 1..end]
            .iter()
            .all(|envelope| !is(envelope, "turn_started") && !is(envelope, "turn_cancelled")),
        "{log}"
    );

    // Every message started is completed exactly once, after its start and its parts, inside
    // its turn.
    let mut messages = Vec::new();
    for (index, envelope) in events.iter().enumerate() {
        if is(envelope, "assistant_message_started") {
            messages.push((index, envelope["event"]["message_id"].clone()));
        }
    }
    let tool_turn = position(&events, "turn_started", "prm_tool").unwrap();
    assert!(
        messages
            .iter()
            .filter(|(index, _)| *index > tool_turn)
            .count()
            >= 2,
        "control: the tool turn has two messages:\n{log}"
    );
    for (start, message_id) in &messages {
        let completions: Vec<usize> = (0..events.len())
            .filter(|&index| {
                is(&events[index], "assistant_message_completed")
                    && events[index]["event"]["message_id"] == *message_id
            })
            .collect();
        assert_eq!(completions.len(), 1, "{message_id} completes once:\n{log}");
        assert!(completions[0] > *start, "{log}");
        let parts_after: Vec<&Value> = events[completions[0]..]
            .iter()
            .filter(|envelope| {
                envelope["event"]["message_id"] == *message_id
                    && !is(envelope, "assistant_message_completed")
            })
            .collect();
        assert!(
            parts_after.is_empty(),
            "nothing of {message_id} after its completion:\n{log}"
        );
        let parts_before = events[..*start]
            .iter()
            .any(|envelope| envelope["event"]["message_id"] == *message_id);
        assert!(!parts_before, "{message_id} starts first:\n{log}");
        let next_end = events[*start..]
            .iter()
            .position(|envelope| is(envelope, "turn_completed") || is(envelope, "turn_cancelled"))
            .map(|offset| start + offset)
            .unwrap();
        assert!(
            completions[0] < next_end,
            "completed inside its turn:\n{log}"
        );
    }
}

/// §6.1: "A prompt carries a client-chosen `prompt_id` (any string of 1 to 128 characters ...)";
/// "content over the limit (256 KiB by default) ... gets ... `payload_too_large`";
/// "`queue_position` is the number of prompts that run before this one, counting a running turn".
///
/// §8: `payload_too_large` 413 "request body or frame over the limit".
///
/// §6.2: "A prompt admitted while a turn runs waits in a first-in, first-out queue. When a turn
/// ends (`turn_completed` or `turn_cancelled`), the next queued prompt's turn starts".
///
/// §6.3 and §11: `DELETE /v1/sessions/{id}/messages/{prompt_id}` answers "`204`; withdraws a
/// queued prompt" and "`queued_prompt_cancelled` is appended. A prompt that is already running
/// answers `conflict` (use `cancel`), an unknown one `not_found`."
///
/// §6.4: "`cancel` with no running turn does nothing (HTTP answers `{"cancelled": false}`)".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_are_admitted_queued_withdrawn_and_cancelled_as_the_spec_says() {
    let server = TestServer::start(&[]);
    let api = Api::new(&server, &token("ada", "acme"));
    let session = api.create_session().await;
    let id = &session.id;

    // prompt_id of 0 and 129 characters: refused, nothing appended.
    for bad in [String::new(), "p".repeat(129)] {
        assert_problem(
            &post_prompt(&api, id, &bad, "[[say:never]]").await,
            400,
            "bad_request",
        );
    }
    // A stalled turn A, then B (128 characters) and C (128 characters of two bytes each).
    let (b, c) = ("b".repeat(128), "é".repeat(128));
    let a = post_prompt(&api, id, "prm_a", "[[stall]]").await;
    assert_json(&a, 202);
    assert_eq!(a.body["queue_position"], 0, "{a:?}");
    turn_start(&api, id, "prm_a").await;
    let admitted_b = post_prompt(&api, id, &b, "[[say:B runs first]]").await;
    assert_json(&admitted_b, 202);
    assert_eq!(
        (
            &admitted_b.body["prompt_id"],
            &admitted_b.body["queue_position"]
        ),
        (&json!(b), &json!(1)),
        "{admitted_b:?}"
    );
    let admitted_c = post_prompt(&api, id, &c, "[[say:C runs second]]").await;
    assert_json(&admitted_c, 202);
    assert_eq!(
        (
            &admitted_c.body["prompt_id"],
            &admitted_c.body["queue_position"]
        ),
        (&json!(c), &json!(2)),
        "{admitted_c:?}"
    );

    // Content one byte over 256 KiB: 413. Exactly 256 KiB: admitted (and then withdrawn).
    let limit = 256 * 1024;
    assert_problem(
        &post_prompt(&api, id, "prm_too_big", &"x".repeat(limit + 1)).await,
        413,
        "payload_too_large",
    );
    let at_limit = post_prompt(&api, id, "prm_at_limit", &"x".repeat(limit)).await;
    assert_json(&at_limit, 202);
    assert_eq!(at_limit.body["queue_position"], 3, "{at_limit:?}");
    // A body over the server's body limit (8 MiB): 413 too. (On a connection of its own: the
    // server may close it without reading the rest of the body.)
    let huge = json!({"prompt_id": "prm_huge", "content": "x".repeat(9 << 20)}).to_string();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/sessions/{id}/messages", api.base))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_problem(&answer(response).await, 413, "payload_too_large");

    // Withdrawing: the running prompt is a conflict, an unknown one not found, a queued one goes.
    let messages = format!("/v1/sessions/{id}/messages");
    assert_problem(
        &call(&api, Method::DELETE, &format!("{messages}/prm_a"), None).await,
        409,
        "conflict",
    );
    assert_problem(
        &call(
            &api,
            Method::DELETE,
            &format!("{messages}/prm_unknown"),
            None,
        )
        .await,
        404,
        "not_found",
    );
    let withdrawn = call(
        &api,
        Method::DELETE,
        &format!("{messages}/prm_at_limit"),
        None,
    )
    .await;
    assert_eq!((withdrawn.status, withdrawn.text.as_str()), (204, ""));

    // Cancel A: B's turn runs, then C's.
    let cancelled = call(
        &api,
        Method::POST,
        &format!("/v1/sessions/{id}/cancel"),
        None,
    )
    .await;
    assert_json(&cancelled, 200);
    assert_eq!(cancelled.body, json!({"cancelled": true}));
    turn_end(&api, id, &c).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = all_events(&api, id).await;
    let log = outline(&events);
    for bad in ["", "prm_too_big", "prm_huge"] {
        assert_eq!(position(&events, "user_message", bad), None, "{log}");
    }
    assert_eq!(
        position(&events, "user_message", &"p".repeat(129)),
        None,
        "{log}"
    );
    let order = [
        position(&events, "user_message", &b),
        position(&events, "user_message", &c),
        position(&events, "user_message", "prm_at_limit"),
        position(&events, "queued_prompt_cancelled", "prm_at_limit"),
        position(&events, "turn_cancelled", "prm_a"),
        position(&events, "turn_started", &b),
        position(&events, "turn_completed", &b),
        position(&events, "turn_started", &c),
        position(&events, "turn_completed", &c),
    ];
    assert!(
        order.iter().all(Option::is_some) && order.is_sorted(),
        "{order:?}\n{log}"
    );
    let withdrawal = &events[order[3].unwrap()]["event"];
    assert_eq!(
        withdrawal["cancelled_by"],
        json!({"subject": "ada", "source": "api"})
    );
    assert_eq!(
        position(&events, "turn_started", "prm_at_limit"),
        None,
        "{log}"
    );
    assert_eq!(turn_ends(&events, &b).len(), 1, "{log}");
    assert_eq!(turn_ends(&events, &c).len(), 1, "{log}");

    // Nothing runs now: cancel does nothing.
    let before = api.session(id).await.head_seq;
    let nothing = call(
        &api,
        Method::POST,
        &format!("/v1/sessions/{id}/cancel"),
        None,
    )
    .await;
    assert_json(&nothing, 200);
    assert_eq!(nothing.body, json!({"cancelled": false}));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(api.session(id).await.head_seq, before, "nothing appended");
}

/// §6.1 "A prompt to a paused session resumes it (implicit resume)."
///
/// §9 "Resume is explicit (`POST .../resume`) or implicit on connect or prompt"; "Every change is
/// a `status_changed` event"; §11 `POST /v1/sessions/{id}/resume` answers "`200` `SessionInfo`
/// once running".
///
/// §11 `POST /v1/sessions/{id}/snapshot` answers "`201` `SnapshotInfo`; also appends
/// `snapshot_saved`".
///
/// §9 "Delete stops the sandbox and removes the session and its events"; §11 `DELETE
/// /v1/sessions/{id}` answers "`204`".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_sessions_resume_snapshots_are_logged_and_deleted_sessions_are_gone() {
    let server = TestServer::start(&[]);
    let api = Api::new(&server, &token("ada", "acme"));
    let session = api.create_session().await;
    let id = &session.id;
    api.wait_for_status(id, proliferate_core::protocol::v1::SessionStatus::Running)
        .await;

    // Implicit resume by a prompt.
    let paused = call(
        &api,
        Method::POST,
        &format!("/v1/sessions/{id}/pause"),
        None,
    )
    .await;
    assert_json(&paused, 200);
    assert_eq!(paused.body["status"], "paused");
    let cursor = paused.body["head_seq"].as_u64().unwrap();
    let woken = post_prompt(&api, id, "prm_wake", "[[say:awake again]]").await;
    assert_json(&woken, 202);
    assert_eq!(woken.body["duplicate"], false);
    let events = turn_end(&api, id, "prm_wake").await;
    let log = outline(&events);
    let after: Vec<Value> = events
        .iter()
        .filter(|envelope| envelope["seq"].as_u64().unwrap() > cursor)
        .cloned()
        .collect();
    assert_eq!(statuses(&after), ["resuming", "running"], "{log}");
    let running = after
        .iter()
        .position(|envelope| {
            is(envelope, "status_changed") && envelope["event"]["status"] == "running"
        })
        .unwrap();
    let started = position(&after, "turn_started", "prm_wake").expect("the turn started");
    assert!(running < started, "{log}");
    assert!(
        is(turn_ends(&after, "prm_wake")[0], "turn_completed"),
        "{log}"
    );
    assert!(
        after.iter().any(|envelope| is(envelope, "text_completed")
            && envelope["event"]["text"]
                .as_str()
                .unwrap()
                .contains("awake again")),
        "{log}"
    );

    // Explicit resume.
    let paused = call(
        &api,
        Method::POST,
        &format!("/v1/sessions/{id}/pause"),
        None,
    )
    .await;
    assert_eq!(paused.body["status"], "paused", "{paused:?}");
    let cursor = paused.body["head_seq"].as_u64().unwrap();
    let resumed = call(
        &api,
        Method::POST,
        &format!("/v1/sessions/{id}/resume"),
        None,
    )
    .await;
    assert_json(&resumed, 200);
    assert_eq!(resumed.body["id"], json!(id));
    assert_eq!(resumed.body["status"], "running", "{resumed:?}");
    let events = all_events(&api, id).await;
    let after: Vec<Value> = events
        .iter()
        .filter(|envelope| envelope["seq"].as_u64().unwrap() > cursor)
        .cloned()
        .collect();
    assert_eq!(
        statuses(&after),
        ["resuming", "running"],
        "{}",
        outline(&events)
    );
    assert_eq!(
        resumed.body["head_seq"],
        after.last().unwrap()["seq"],
        "the answer is the session once running"
    );

    // Snapshot: 201 and a snapshot_saved event with the same id.
    let snapshot = call(
        &api,
        Method::POST,
        &format!("/v1/sessions/{id}/snapshot"),
        None,
    )
    .await;
    assert_json(&snapshot, 201);
    let snapshot_id = snapshot.body["snapshot_id"].as_str().unwrap().to_owned();
    assert_eq!(snapshot.body["session_id"], json!(id));
    let events = all_events(&api, id).await;
    let last = events.last().unwrap();
    assert_eq!(
        last["event"],
        json!({"type": "snapshot_saved", "snapshot_id": snapshot_id}),
        "{}",
        outline(&events)
    );

    // Delete: 204 without a body; the session and its events are gone.
    let deleted = call(&api, Method::DELETE, &format!("/v1/sessions/{id}"), None).await;
    assert_eq!((deleted.status, deleted.text.as_str()), (204, ""));
    assert_problem(
        &call(&api, Method::GET, &format!("/v1/sessions/{id}"), None).await,
        404,
        "not_found",
    );
    assert_problem(
        &call(
            &api,
            Method::GET,
            &format!("/v1/sessions/{id}/events"),
            None,
        )
        .await,
        404,
        "not_found",
    );
    assert_problem(
        &call(&api, Method::DELETE, &format!("/v1/sessions/{id}"), None).await,
        404,
        "not_found",
    );
}

/// §11 `GET /v1/sessions/{id}/events?after_seq=&limit=` answers "`200` `EventPage` (at most
/// `limit`, default 500, capped at 5000 ...)".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_pages_hold_500_by_default_and_5000_at_most() {
    let server = TestServer::start(&[]);
    let api = Api::new(&server, &token("ada", "acme"));
    let session = api.create_session().await;
    let id = &session.id;
    // One delta per word: over 5000 events in one turn.
    let words: Vec<String> = (1..=5100).map(|word| format!("w{word}")).collect();
    let prompt = format!("[[say:{}]]", words.join(" "));
    assert_json(&post_prompt(&api, id, "prm_long", &prompt).await, 202);
    turn_end(&api, id, "prm_long").await;
    let head = api.session(id).await.head_seq;
    assert!(head > 5100, "control: the log has {head} events");

    let events = format!("/v1/sessions/{id}/events");
    let seqs = |page: &Answer| -> Vec<u64> {
        page.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|envelope| envelope["seq"].as_u64().unwrap())
            .collect()
    };
    let default = call(&api, Method::GET, &events, None).await;
    assert_json(&default, 200);
    assert_eq!(seqs(&default), (1..=500).collect::<Vec<_>>());
    assert_eq!(
        (&default.body["has_more"], &default.body["head_seq"]),
        (&json!(true), &json!(head))
    );
    let capped = call(
        &api,
        Method::GET,
        &format!("{events}?after_seq=10&limit=6000"),
        None,
    )
    .await;
    assert_json(&capped, 200);
    assert_eq!(seqs(&capped), (11..=5010).collect::<Vec<_>>());
    assert_eq!(capped.body["has_more"], true);
    // Control: a page that reaches the head has no more.
    let rest = call(
        &api,
        Method::GET,
        &format!("{events}?after_seq=5010&limit=5000"),
        None,
    )
    .await;
    assert_eq!(seqs(&rest), (5011..=head).collect::<Vec<_>>());
    assert_eq!(rest.body["has_more"], false);
}

/// §11.2: "`POST /session/{sid}/prompt_async` admits a prompt (its text parts are the content,
/// its `data:` image parts the images, a workspace file part a mention of its path; OpenCode's
/// `messageID` becomes the `prompt_id`) with source `agent_proxy`, which gets its
/// `user_message` ... and answers `204`"; "`noReply`, `format`, agent and subtask parts are
/// refused (`bad_request`)"; "`POST /api/session/{sid}/interrupt` cancel[s] the running turn
/// (6.4)"; "Every other route answers `forbidden`: nothing that bypasses the session's
/// permission policy (shell, ...)".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_proxy_queues_prompts_and_interrupts_and_refuses_the_rest() {
    let server = TestServer::start(&[]);
    let api = Api::new(&server, &token("ada", "acme"));
    let session = api.create_session().await;
    let id = &session.id;
    let agent = format!("/v1/sessions/{id}/agent");
    let sessions = call(&api, Method::GET, &format!("{agent}/session"), None).await;
    assert_eq!(sessions.status, 200, "{sessions:?}");
    let agent_session = sessions.body[0]["id"].as_str().unwrap().to_owned();
    let path = call(&api, Method::GET, &format!("{agent}/path"), None).await;
    assert_eq!(path.status, 200, "{path:?}");
    let workspace = path.body["directory"].as_str().unwrap().to_owned();
    let prompt_async = format!("{agent}/session/{agent_session}/prompt_async");

    let accepted = call(
        &api,
        Method::POST,
        &prompt_async,
        Some(json!({
            "messageID": "msg_x",
            "parts": [
                {"type": "text", "text": "[[say:seen through the proxy]] look at this"},
                {"type": "file", "mime": "image/png", "url": PNG, "filename": "pixel.png"},
                {"type": "file", "mime": "text/plain", "url": format!("file://{workspace}/notes.txt"), "filename": "notes.txt"},
            ],
        })),
    )
    .await;
    assert_eq!((accepted.status, accepted.text.as_str()), (204, ""));
    let events = turn_end(&api, id, "msg_x").await;
    let log = outline(&events);
    let message = &events[position(&events, "user_message", "msg_x").expect("a user_message")];
    assert_eq!(message["event"]["images"], json!([PNG]), "{message}");
    assert_eq!(message["event"]["sender"]["source"], "agent_proxy");
    let content = message["event"]["content"].as_str().unwrap();
    assert!(content.contains("look at this"), "{content}");
    assert!(content.contains("notes.txt"), "{content}");
    assert!(
        is(turn_ends(&events, "msg_x")[0], "turn_completed"),
        "{log}"
    );

    // Refused prompt bodies: 400, and no user_message.
    for (message_id, body) in [
        (
            "msg_format",
            json!({"messageID": "msg_format", "format": {"type": "json_schema", "schema": {}}, "parts": [{"type": "text", "text": "hi"}]}),
        ),
        (
            "msg_agent",
            json!({"messageID": "msg_agent", "parts": [{"type": "text", "text": "hi"}, {"type": "agent", "name": "build"}]}),
        ),
        (
            "msg_subtask",
            json!({"messageID": "msg_subtask", "parts": [{"type": "subtask", "prompt": "hi", "description": "hi", "agent": "general"}]}),
        ),
    ] {
        let refused = call(&api, Method::POST, &prompt_async, Some(body)).await;
        assert_problem(&refused, 400, "bad_request");
        assert_eq!(
            position(&all_events(&api, id).await, "user_message", message_id),
            None
        );
    }

    // Interrupt a stalled turn: it is cancelled, by the proxy.
    let stalled = call(
        &api,
        Method::POST,
        &prompt_async,
        Some(json!({"messageID": "msg_stall", "parts": [{"type": "text", "text": "[[stall]]"}]})),
    )
    .await;
    assert_eq!(stalled.status, 204, "{stalled:?}");
    turn_start(&api, id, "msg_stall").await;
    let interrupted = call(
        &api,
        Method::POST,
        &format!("{agent}/api/session/{agent_session}/interrupt"),
        None,
    )
    .await;
    // OpenCode's interrupt answers no content; so does the gateway's.
    assert_eq!(
        (interrupted.status, interrupted.text.as_str()),
        (204, ""),
        "{interrupted:?}"
    );
    let events = turn_end(&api, id, "msg_stall").await;
    let end = turn_ends(&events, "msg_stall")[0];
    assert!(is(end, "turn_cancelled"), "{}", outline(&events));
    assert_eq!(end["event"]["cancelled_by"]["source"], "agent_proxy");
    assert_eq!(end["event"]["cancelled_by"]["subject"], "ada");

    // A route that bypasses the permission policy: forbidden. Control: an allowed one answers.
    let shell = call(
        &api,
        Method::POST,
        &format!("{agent}/session/{agent_session}/shell"),
        Some(json!({"agent": "build", "command": "touch escaped"})),
    )
    .await;
    assert_problem(&shell, 403, "forbidden");
    let allowed = call(
        &api,
        Method::GET,
        &format!("{agent}/session/{agent_session}"),
        None,
    )
    .await;
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert_eq!(allowed.body["id"], json!(agent_session));
}

/// §7: "Any connection with the `write` scope may answer with `permission_reply` (or the HTTP
/// route). The first valid answer wins: the gateway ... appends `permission_resolved` with the
/// answer and who gave it. Later answers get `conflict`; answers to unknown requests get
/// `not_found`"; "If nobody answers before `expires_at` (the server's `permission_timeout`, 5
/// minutes by default)"; "`always` (allow its like for the rest of the session)".
///
/// §11 `POST /v1/sessions/{id}/permissions/{permission_id}` answers "`204`".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_answered_over_http_is_resolved_by_its_answerer_and_always_sticks() {
    let server = TestServer::start(&["--permission", r#"{"bash":"ask"}"#]);
    let api = Api::new(&server, &token("ada", "acme"));
    let session = api.create_session().await;
    let id = &session.id;
    assert_json(
        &post_prompt(&api, id, "prm_ask", "[[bash:echo one > one.txt]]").await,
        202,
    );
    let events = events_until(&api, id, |events| {
        events
            .iter()
            .any(|envelope| is(envelope, "permission_requested"))
    })
    .await;
    let requested = events
        .iter()
        .find(|envelope| is(envelope, "permission_requested"))
        .unwrap();
    let permission_id = requested["event"]["permission_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let waits = requested["event"]["expires_at"].as_i64().unwrap()
        - requested["timestamp"].as_i64().unwrap();
    assert!(
        (299_000..=300_000).contains(&waits),
        "expires five minutes after the request, not {waits} ms"
    );
    assert_eq!(requested["event"]["default_decision"], "reject");

    let permissions = format!("/v1/sessions/{id}/permissions");
    assert_problem(
        &call(
            &api,
            Method::POST,
            &format!("{permissions}/per_unknown"),
            Some(json!({"decision": "once"})),
        )
        .await,
        404,
        "not_found",
    );
    let answered = call(
        &api,
        Method::POST,
        &format!("{permissions}/{permission_id}"),
        Some(json!({"decision": "always"})),
    )
    .await;
    assert_eq!((answered.status, answered.text.as_str()), (204, ""));
    let late = call(
        &api,
        Method::POST,
        &format!("{permissions}/{permission_id}"),
        Some(json!({"decision": "reject"})),
    )
    .await;
    assert_problem(&late, 409, "conflict");
    let events = turn_end(&api, id, "prm_ask").await;
    let log = outline(&events);
    let resolved: Vec<&Value> = events
        .iter()
        .filter(|envelope| is(envelope, "permission_resolved"))
        .collect();
    assert_eq!(resolved.len(), 1, "{log}");
    assert_eq!(
        resolved[0]["event"],
        json!({
            "type": "permission_resolved",
            "permission_id": permission_id,
            "decision": "always",
            "resolved_by": {"subject": "ada", "source": "api"},
            "timed_out": false,
        })
    );
    assert!(
        events.iter().any(|envelope| is(envelope, "tool_completed")),
        "control: the allowed command ran:\n{log}"
    );

    // The same kind of command again: allowed without asking.
    assert_json(
        &post_prompt(&api, id, "prm_again", "[[bash:echo two > two.txt]]").await,
        202,
    );
    let events = turn_end(&api, id, "prm_again").await;
    let log = outline(&events);
    let start = position(&events, "turn_started", "prm_again").unwrap();
    let turn = &events[start..];
    assert!(
        !turn
            .iter()
            .any(|envelope| is(envelope, "permission_requested")),
        "`always` allows its like:\n{log}"
    );
    assert!(
        turn.iter().any(|envelope| is(envelope, "tool_completed")),
        "the second command ran:\n{log}"
    );
}

/// A server whose agent cannot start (its OpenCode does not exist): sessions are created and
/// fail to start at once, which makes them cheap; none of these promises needs an agent.
///
/// §8: `unavailable` 503 "cannot serve now (starting, shutting down); retry".
///
/// §11: "the same key with another body is `conflict`"; §8 `conflict` 409 "an
/// `Idempotency-Key` reused with another body".
///
/// §11 scopes: `POST .../messages`, `.../pause`, `.../cancel` need `write`; `DELETE
/// /v1/sessions/{id}` needs "admin, or write for the creator"; §8 `forbidden` 403 "valid token
/// without the needed scope".
///
/// §11 `GET /v1/sessions?limit=&cursor=`: "newest first (at most `limit`, default 50, capped at
/// 200 ...)".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_idempotency_listing_and_unavailable_agents() {
    let server = AgentlessServer::start();
    let ada = token("ada", "acme");
    let api = server.api(&ada);
    let session = api.create_session().await;
    let id = &session.id;
    let failed = api
        .wait_for_status(id, proliferate_core::protocol::v1::SessionStatus::Failed)
        .await;
    assert_eq!(failed.status_reason.as_deref(), Some("start_failed"));

    // The agent cannot serve: 503 unavailable, for a resume and for the agent proxy.
    assert_problem(
        &call(
            &api,
            Method::POST,
            &format!("/v1/sessions/{id}/resume"),
            None,
        )
        .await,
        503,
        "unavailable",
    );
    assert_problem(
        &call(
            &api,
            Method::GET,
            &format!("/v1/sessions/{id}/agent/path"),
            None,
        )
        .await,
        503,
        "unavailable",
    );

    // Idempotency-Key: the same body gets the first answer, another body a conflict.
    let create = |title: &'static str| {
        api.http
            .post(format!("{}/v1/sessions", api.base))
            .bearer_auth(&ada)
            .header("idempotency-key", "key-conflict")
            .json(&json!({"title": title}))
            .send()
    };
    let first = answer(create("first").await.unwrap()).await;
    assert_json(&first, 201);
    let retry = answer(create("first").await.unwrap()).await;
    assert_json(&retry, 201);
    assert_eq!(retry.body["id"], first.body["id"], "control: a true retry");
    assert_problem(
        &answer(create("second").await.unwrap()).await,
        409,
        "conflict",
    );

    // Scopes: a read-only token reads but cannot write.
    let reader = scoped_token("rita", "acme", &[Scope::Read]);
    let read = request(
        &api,
        &reader,
        Method::GET,
        &format!("/v1/sessions/{id}"),
        None,
    )
    .await;
    assert_json(&read, 200);
    for (route, body) in [
        (
            "messages",
            Some(json!({"prompt_id": "prm_reader", "content": "hi"})),
        ),
        ("pause", None),
        ("cancel", None),
    ] {
        let path = format!("/v1/sessions/{id}/{route}");
        assert_problem(
            &request(&api, &reader, Method::POST, &path, body.clone()).await,
            403,
            "forbidden",
        );
    }
    // Control: a writer gets past the scope check on the same routes.
    let writer = scoped_token("bob", "acme", &[Scope::Read, Scope::Write]);
    let cancel = request(
        &api,
        &writer,
        Method::POST,
        &format!("/v1/sessions/{id}/cancel"),
        None,
    )
    .await;
    assert_json(&cancel, 200);
    let prompt = request(
        &api,
        &writer,
        Method::POST,
        &format!("/v1/sessions/{id}/messages"),
        Some(json!({"prompt_id": "prm_writer", "content": "hi"})),
    )
    .await;
    assert_json(&prompt, 202);
    let events = events_until(&api, id, |events| {
        position(events, "user_message", "prm_writer").is_some()
    })
    .await;
    assert_eq!(position(&events, "user_message", "prm_reader"), None);

    // Delete: a writer who did not create the session may not; its creator and an admin may.
    let path = format!("/v1/sessions/{id}");
    assert_problem(
        &request(&api, &writer, Method::DELETE, &path, None).await,
        403,
        "forbidden",
    );
    assert_json(&call(&api, Method::GET, &path, None).await, 200);
    let own = request(
        &api,
        &writer,
        Method::POST,
        "/v1/sessions",
        Some(json!({"title": "bob's"})),
    )
    .await;
    assert_json(&own, 201);
    let own_path = format!("/v1/sessions/{}", own.body["id"].as_str().unwrap());
    let deleted = request(&api, &writer, Method::DELETE, &own_path, None).await;
    assert_eq!((deleted.status, deleted.text.as_str()), (204, ""));
    let admin = scoped_token("carol", "acme", &[Scope::Admin]);
    let deleted = request(&api, &admin, Method::DELETE, &path, None).await;
    assert_eq!((deleted.status, deleted.text.as_str()), (204, ""));
    assert_problem(
        &call(&api, Method::GET, &path, None).await,
        404,
        "not_found",
    );

    // Listing: 201 sessions of one organisation, newest first, 50 by default, 200 at most.
    let lister = server.api(&token("lea", "listing"));
    let mut created = Vec::new();
    for _ in 0..201 {
        created.push(lister.create_session().await.id);
    }
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    let ids = |page: &Answer| -> Vec<String> {
        page.body["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|session| session["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let default = call(&lister, Method::GET, "/v1/sessions", None).await;
    assert_json(&default, 200);
    assert_eq!(ids(&default), newest_first[..50]);
    let capped = call(&lister, Method::GET, "/v1/sessions?limit=1000", None).await;
    assert_json(&capped, 200);
    assert_eq!(ids(&capped), newest_first[..200]);
    let cursor = capped.body["next_cursor"]
        .as_str()
        .expect("more follow")
        .to_owned();
    let rest = call(
        &lister,
        Method::GET,
        &format!("/v1/sessions?limit=200&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(ids(&rest), newest_first[200..]);
    assert_eq!(rest.body.get("next_cursor"), None, "{rest:?}");
}

/// §2 and §11: `after_seq` is a seq, so a cursor no log can reach (2^63 and above) is
/// `bad_request` rather than a replay from the start; §12: a token restricted to one session
/// (`sid`) reaches only that session, so it cannot create others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_cursors_and_session_restricted_creators_are_refused() {
    let server = AgentlessServer::start();
    let api = server.api(&token("ada", "acme"));
    let session = api.create_session().await;
    for after_seq in ["9223372036854775808", "18446744073709551615"] {
        let answer = call(
            &api,
            Method::GET,
            &format!("/v1/sessions/{}/events?after_seq={after_seq}", session.id),
            None,
        )
        .await;
        assert_problem(&answer, 400, "bad_request");
    }
    let (status, page) = api
        .call(
            Method::GET,
            &format!(
                "/v1/sessions/{}/events?after_seq=9223372036854775807",
                session.id
            ),
            None,
        )
        .await;
    assert_eq!(status, 200, "control: the largest seq is a cursor: {page}");
    assert_eq!(page["events"], json!([]));

    let mut restricted = claims(
        "ada",
        "acme",
        &[Scope::Read, Scope::Write],
        Duration::from_secs(600),
    );
    restricted.sid = Some(session.id.clone());
    let restricted = server.api(&authenticator().mint(&restricted));
    let (status, problem) = restricted
        .call(Method::POST, "/v1/sessions", Some(json!({"title": "more"})))
        .await;
    assert_eq!(
        (status, &problem["code"]),
        (403, &json!("forbidden")),
        "{problem}"
    );
    let (status, own) = restricted
        .call(Method::GET, &format!("/v1/sessions/{}", session.id), None)
        .await;
    assert_eq!(
        status, 200,
        "control: the token reaches its own session: {own}"
    );
}
