//! The local provider's bookkeeping that needs no agent.

use std::os::unix::process::CommandExt;

use proliferate_core::sandbox::{
    LocalProvider, LocalProviderConfig, SandboxError, SandboxProvider,
};

#[tokio::test]
async fn orphaned_agents_of_a_previous_run_are_stopped_at_start_up() {
    let data = tempfile::tempdir().unwrap();
    let provider = LocalProvider::new(LocalProviderConfig {
        helper: Some(env!("CARGO_BIN_EXE_proliferate-sandbox").into()),
        ..LocalProviderConfig::new(data.path())
    })
    .unwrap();
    let session_dir = provider.session_dir("orphan");
    std::fs::create_dir_all(session_dir.join("workspace")).unwrap();
    let mut orphan = std::process::Command::new("sleep")
        .arg("120")
        .current_dir(session_dir.join("workspace"))
        .process_group(0)
        .spawn()
        .unwrap();
    std::fs::write(session_dir.join("agent.pid"), orphan.id().to_string()).unwrap();

    // A pid that now names an unrelated process is left alone.
    let mut stranger = std::process::Command::new("sleep")
        .arg("120")
        .spawn()
        .unwrap();
    let stranger_dir = provider.session_dir("recycled");
    std::fs::create_dir_all(&stranger_dir).unwrap();
    std::fs::write(stranger_dir.join("agent.pid"), stranger.id().to_string()).unwrap();

    assert_eq!(provider.cleanup_orphans().await.unwrap(), 1);
    assert!(
        orphan.wait().unwrap().code().is_none(),
        "killed by a signal"
    );
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "the unrelated process still runs"
    );
    assert!(!session_dir.join("agent.pid").exists());
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}

#[tokio::test]
async fn terminate_is_idempotent_and_bad_ids_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let provider = LocalProvider::new(LocalProviderConfig {
        helper: Some(env!("CARGO_BIN_EXE_proliferate-sandbox").into()),
        ..LocalProviderConfig::new(data.path())
    })
    .unwrap();
    provider.terminate("never_started").await.unwrap();
    provider.terminate("never_started").await.unwrap();
    assert!(matches!(
        provider.terminate("../escape").await,
        Err(SandboxError::InvalidSessionId(_))
    ));
    assert!(matches!(
        provider.snapshot("missing").await,
        Err(SandboxError::NotFound(_))
    ));
}
