//! Tokens (`docs/protocol.md` section 12): an organisation's admin revokes a token for good, no
//! other organisation can, and a token valid for longer than the server allows is refused.

mod support;

use std::time::Duration;

use proliferate_core::auth::claims;
use proliferate_core::protocol::v1::*;
use reqwest::Method;
use serde_json::json;
use support::*;

/// The status and code a token gets when it lists its organisation's sessions.
async fn listing(server: &TestServer, token: &str) -> (u16, serde_json::Value) {
    let (status, body) = Api::new(server, token)
        .call(Method::GET, "/v1/sessions", None)
        .await;
    (status, body["code"].clone())
}

async fn revoke(server: &TestServer, token: &str, jti: &str) -> u16 {
    Api::new(server, token)
        .call(Method::POST, "/v1/tokens/revoke", Some(json!({"jti": jti})))
        .await
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_revokes_a_token_for_good_and_no_one_else_can() {
    let mut server = TestServer::start(&[]);
    let admin = token("ada", "acme-tokens");
    let bobs = claims(
        "bob",
        "acme-tokens",
        &[Scope::Read, Scope::Write],
        Duration::from_secs(3600),
    );
    let bob = authenticator().mint(&bobs);
    assert_eq!(
        listing(&server, &bob).await.0,
        200,
        "control: bob's token works"
    );

    assert_eq!(
        revoke(&server, &bob, &bobs.jti).await,
        403,
        "bob is no admin"
    );
    let outsider = token("eve", "elsewhere");
    assert_eq!(revoke(&server, &outsider, &bobs.jti).await, 204);
    assert_eq!(
        listing(&server, &bob).await.0,
        200,
        "another organisation's admin stops only its own tokens"
    );
    assert_eq!(revoke(&server, &admin, &bobs.jti).await, 204);
    assert_eq!(
        listing(&server, &bob).await,
        (401, json!("unauthenticated"))
    );
    assert_eq!(
        listing(&server, &admin).await.0,
        200,
        "other tokens still work"
    );
    let (status, problem) = Api::new(&server, &admin)
        .call(Method::POST, "/v1/tokens/revoke", Some(json!({"jti": ""})))
        .await;
    assert_eq!((status, &problem["code"]), (400, &json!("bad_request")));

    // The revocation is stored: it outlives the process.
    server.terminate();
    server.restart();
    assert_eq!(listing(&server, &bob).await.0, 401);
    assert_eq!(listing(&server, &admin).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_valid_longer_than_the_server_allows_is_refused() {
    let server = TestServer::start(&["--max-token-lifetime-secs", "7200"]);
    let minted = |lifetime: u64| {
        authenticator().mint(&claims(
            "ada",
            "acme-lifetime",
            &[Scope::Read],
            Duration::from_secs(lifetime),
        ))
    };
    assert_eq!(
        listing(&server, &minted(7200)).await.0,
        200,
        "control: at the maximum"
    );
    assert_eq!(
        listing(&server, &minted(7201)).await,
        (401, json!("unauthenticated"))
    );
}
