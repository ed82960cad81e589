//! Limits the server keeps against clients that ask for too much (`docs/configuration.md`,
//! *Limits*): each is refused with its code, with a control that normal use still works.

mod support;

use proliferate_core::protocol::v1::SessionStatus;
use reqwest::Method;
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_prompt_queue_refuses_new_prompts_but_not_retries() {
    let server = TestServer::start(&["--max-queued-prompts", "2"]);
    let api = Api::new(&server, &token("ada", "acme-queue"));
    let session = api.create_session().await;
    api.wait_for_status(&session.id, SessionStatus::Running)
        .await;
    let send = |prompt_id: &'static str| {
        let path = format!("/v1/sessions/{}/messages", session.id);
        let api = &api;
        async move {
            api.call(
                Method::POST,
                &path,
                Some(json!({"prompt_id": prompt_id, "content": "[[say:queued]]"})),
            )
            .await
        }
    };
    // One turn runs and holds the queue behind it.
    api.prompt(&session.id, "prm_running", "[[stall]]").await;
    api.prompt(&session.id, "prm_1", "[[say:one]]").await;
    api.prompt(&session.id, "prm_2", "[[say:two]]").await;

    let (status, problem) = send("prm_3").await;
    assert_eq!(
        (status, &problem["code"]),
        (429, &json!("limit_exceeded")),
        "{problem}"
    );
    let (status, retry) = send("prm_2").await;
    assert_eq!(
        (status, &retry["duplicate"]),
        (202, &json!(true)),
        "a retry is no new prompt"
    );

    // Control: once a place is free, the next prompt is admitted.
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/v1/sessions/{}/messages/prm_1", session.id),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, admitted) = send("prm_3").await;
    assert_eq!(
        (status, &admitted["duplicate"]),
        (202, &json!(false)),
        "{admitted}"
    );
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/v1/sessions/{}/cancel", session.id),
            None,
        )
        .await;
    assert_eq!(status, 200);
}
