//! `docs/protocol.md` taken at its word: each test quotes the promise it checks, against the real
//! server (a real OpenCode, the scripted model), over HTTP and WebSocket.

mod support;

use proliferate_core::protocol::v1::*;
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

/// A valid one-pixel PNG.
const PNG: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

/// GET `path` with the API's token; status, content type, body.
async fn get(api: &Api, path: &str) -> (u16, String, Value) {
    let response = api
        .http
        .get(format!("{}{path}", api.base))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, content_type, body)
}

/// §8: "HTTP errors use `application/problem+json` with a machine `code`".
fn assert_problem(answer: &(u16, String, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{answer:?}");
    assert_eq!(answer.1, "application/problem+json", "{answer:?}");
    assert_eq!(answer.2["code"], code, "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_answers_as_the_spec_says() {
    let server = TestServer::start(&[]);
    let api = Api::new(&server, &token("ada", "acme"));

    // §11: "An `Idempotency-Key` header makes retries return the first answer".
    let create = |key: &'static str| {
        api.http
            .post(format!("{}/v1/sessions", api.base))
            .bearer_auth(&api.token)
            .header("idempotency-key", key)
            .json(&json!({"title": "idempotent"}))
            .send()
    };
    let first = create("key-1").await.unwrap();
    let first_status = first.status().as_u16();
    let first: SessionInfo = first.json().await.unwrap();
    let retry = create("key-1").await.unwrap();
    assert_eq!((first_status, retry.status().as_u16()), (201, 201));
    let retry: SessionInfo = retry.json().await.unwrap();
    assert_eq!(retry.id, first.id);

    // §9: "A request that needs a transition the table forbids gets `conflict`": a session still
    // starting cannot pause. And asking for the status it has is no transition: `200`, nothing
    // appended.
    let starting = api.create_session().await;
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/v1/sessions/{}/pause", starting.id),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    let running = api
        .wait_for_status(&starting.id, SessionStatus::Running)
        .await;
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/v1/sessions/{}/resume", running.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["head_seq"], running.head_seq,
        "resuming a running session appends nothing"
    );
    let (status, paused) = api
        .call(
            Method::POST,
            &format!("/v1/sessions/{}/pause", running.id),
            None,
        )
        .await;
    assert_eq!(
        (status, paused["status"].as_str()),
        (200, Some("paused")),
        "{paused}"
    );
    let (status, again) = api
        .call(
            Method::POST,
            &format!("/v1/sessions/{}/pause", running.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        again["head_seq"], paused["head_seq"],
        "pausing a paused session appends nothing"
    );

    // §8 and §11: a malformed query is a `bad_request` problem, like any other error.
    let events = format!("/v1/sessions/{}/events", first.id);
    for path in [
        format!("{events}?after_seq=abc"),
        format!("{events}?limit=abc"),
        format!("{events}?after_seq=-1"),
        "/v1/sessions?limit=abc".to_owned(),
        format!("/v1/sessions/{}/ws?after_seq=abc", first.id),
        format!("/v1/sessions/{}/ws?after_seq=-1", first.id),
        format!("/v1/sessions/{}/ws?after_seq=1.5", first.id),
    ] {
        assert_problem(&get(&api, &path).await, 400, "bad_request");
    }

    // §11: "at most `limit`"; `limit=0` is `bad_request`.
    let one = get(&api, &format!("{events}?limit=1")).await;
    assert_eq!(one.0, 200, "{one:?}");
    assert_eq!(
        one.2["events"].as_array().unwrap().len(),
        1,
        "control: one event"
    );
    assert_problem(
        &get(&api, &format!("{events}?limit=0")).await,
        400,
        "bad_request",
    );
    assert_problem(&get(&api, "/v1/sessions?limit=0").await, 400, "bad_request");
    let listed = get(&api, "/v1/sessions?limit=1").await;
    assert_eq!(
        listed.2["sessions"].as_array().unwrap().len(),
        1,
        "{listed:?}"
    );

    // §6.1: "a malformed image gets ... `bad_request`", over HTTP; a well-formed one is admitted.
    let messages = format!("/v1/sessions/{}/messages", first.id);
    for image in [
        "data:image/png;base64,@@@not-base64@@@",
        "data:image/png,raw",
        "file:///etc/passwd",
    ] {
        let (status, body) = api
            .call(
                Method::POST,
                &messages,
                Some(json!({"content": "look", "images": [image]})),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("bad_request")),
            "{image}: {body}"
        );
    }
    let (status, body) = api
        .call(
            Method::POST,
            &messages,
            Some(json!({"content": "look", "images": [PNG]})),
        )
        .await;
    assert_eq!(
        status, 202,
        "control: a well-formed image is admitted: {body}"
    );

    // §11: `GET /v1/openapi.json` is "the OpenAPI document of these routes".
    let (status, _, document) = get(&api, "/v1/openapi.json").await;
    assert_eq!(status, 200);
    for path in [
        "/v1/sessions",
        "/v1/sessions/{id}/ws",
        "/v1/sessions/{id}/agent/{path}",
        "/v1/sessions/{id}/events",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/openapi.json",
    ] {
        assert!(
            document["paths"][path].is_object(),
            "{path} is missing from the document"
        );
    }
    // The document and the router are one table: every documented operation is routed (a
    // routed request without a token is refused with problem+json, an unrouted one gets the
    // router's bare 404 or 405), and a method the document does not list is not, except on the
    // agent proxy, which takes every method to refuse the ones its policy does not allow.
    let paths = document["paths"].as_object().unwrap();
    for (path, operations) in paths {
        let concrete = path
            .split('/')
            .map(|segment| match segment.starts_with('{') {
                true => "x",
                false => segment,
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in ["get", "post", "put", "patch", "delete"] {
            let request = api.http.request(
                method.to_uppercase().parse().unwrap(),
                format!("{}{concrete}", api.base),
            );
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let problem = (response.headers().get("content-type"))
                .is_some_and(|value| value == "application/problem+json");
            let routed = status != 405 && (status != 404 || problem);
            let documented = operations.get(method).is_some();
            let proxied = path.contains("/agent");
            assert_eq!(routed, documented || proxied, "{method} {path}: {status}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_image_over_the_socket_gets_a_bad_request_frame() {
    let server = TestServer::start(&[]);
    let token = token("ada", "acme");
    let api = Api::new(&server, &token);
    let session = api.create_session().await;
    let mut socket = connect(&server, &session.id, 0, &token).await;
    send(
        &mut socket,
        json!({"type": "prompt", "prompt_id": "prm_bad_image", "content": "look", "images": ["data:image/png;base64,%%%"]}),
    )
    .await;
    let frames = read_until(&mut socket, |frame| matches!(frame, ServerFrame::Error(_))).await;
    let Some((_, ServerFrame::Error(error))) = frames.last() else {
        panic!("no error frame: {frames:?}");
    };
    assert_eq!(error.code, ErrorCode::BadRequest);
    assert_eq!(error.prompt_id.as_deref(), Some("prm_bad_image"));
    // Control: the same prompt with a well-formed image is admitted.
    send(
        &mut socket,
        json!({"type": "prompt", "prompt_id": "prm_good_image", "content": "look", "images": [PNG]}),
    )
    .await;
    let frames = read_until(&mut socket, |frame| {
        matches!(frame, ServerFrame::PromptAdmitted(admitted) if admitted.prompt_id == "prm_good_image")
    })
    .await;
    assert!(!frames.is_empty());
}
