//! The quickstart, end to end: the real binary against a real server, OpenCode and the scripted
//! model, with bash behind a permission prompt.

use std::time::Duration;

use proliferate_core::auth::claims;
use proliferate_core::protocol::v1::Scope;
use server_reference::{ServeArgs, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_streams_a_turn_and_answers_the_permission_prompt() {
    let data = tempfile::tempdir().unwrap();
    let mut args = ServeArgs::parse_defaults(Some(data.path().to_path_buf()));
    args.listen = "127.0.0.1:0".parse().unwrap();
    args.permission = r#"{"bash":"ask"}"#.into();
    let opencode = proliferate_core::agent::opencode::default_program();
    assert!(
        opencode.exists(),
        "OpenCode is not installed; run scripts/install-opencode"
    );
    args.opencode = Some(opencode);
    let server = Server::start(&args).await.expect("the server starts");
    let authenticator = server_reference::authenticator(data.path()).unwrap();
    let token = authenticator.mint(&claims(
        "developer",
        "default",
        &[Scope::Read, Scope::Write],
        Duration::from_secs(600),
    ));

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .env("PROLIFERATE_URL", format!("http://{}", server.address))
        .env("PROLIFERATE_TOKEN", token)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("[permission bash asked for"), "{stdout}");
    assert!(
        stdout.contains("[tool bash completed]\nHello from the sandbox"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Ran the command: Hello from the sandbox"),
        "{stdout}"
    );
    assert!(stdout.contains("[turn completed]"), "{stdout}");
    server.stop().await;
}
