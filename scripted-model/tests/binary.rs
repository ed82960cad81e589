//! The `scripted-model` binary: argument handling, the listening line, shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_scripted-model");

#[test]
fn unknown_arguments_exit_with_status_2() {
    let output = Command::new(BINARY).arg("--verbose").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--verbose"));
    assert!(output.stdout.is_empty());
}

#[test]
fn invalid_script_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(&path, "[]").unwrap();
    let output = Command::new(BINARY)
        .args(["--script-file".as_ref(), path.as_os_str()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("bad.json"));
}

#[cfg(unix)]
#[tokio::test]
async fn serves_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scripts.json");
    std::fs::write(
        &path,
        r#"{"scripts": {"hi": {"steps": [{"kind": "text", "text": "Hi from a file."}]}}}"#,
    )
    .unwrap();
    let mut child = Command::new(BINARY)
        .args([
            "--port".as_ref(),
            "0".as_ref(),
            "--script-file".as_ref(),
            path.as_os_str(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let base_url = line
        .strip_prefix("listening on ")
        .and_then(|rest| rest.strip_suffix("\n"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(base_url.starts_with("http://127.0.0.1:") && base_url.ends_with("/v1"));

    let completion: serde_json::Value = reqwest::Client::new()
        .post(format!("{base_url}/chat/completions"))
        .json(&serde_json::json!({
            "model": "m",
            "tools": [{"type": "function", "function": {"name": "bash"}}],
            "messages": [{"role": "user", "content": "[[script:hi]]"}],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        "Hi from a file."
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(rest.is_empty(), "more output: {rest:?}");
}
