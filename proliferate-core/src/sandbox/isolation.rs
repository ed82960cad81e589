//! How the local provider isolates an agent: bubblewrap where the machine allows it, a plain
//! process otherwise.
//!
//! Under bubblewrap the agent sees the host's file system read-only, with `/tmp`, `/root`,
//! `/home` and the provider's data folder replaced by empty in-memory folders, so it cannot read
//! other sessions, the gateway's data or the host user's files. Its own home and workspace are
//! mounted writable at `/home/agent` and `/home/agent/workspace`, the same paths in every
//! session, so snapshots restore anywhere. It gets its own PID, IPC and UTS namespaces (it cannot
//! see or signal host processes) and dies with the gateway. The network is shared: the agent must
//! listen on the host's loopback and reach its model.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

/// Which isolation the local provider uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationMode {
    /// Bubblewrap if it works on this machine, a plain process otherwise.
    #[default]
    Auto,
    /// Always bubblewrap; starting fails where it does not work.
    Bubblewrap,
    /// A plain process with its own home and workspace folders, and no further isolation.
    Process,
}

/// Home of the agent inside a bubblewrap sandbox.
pub(crate) const SANDBOX_HOME: &str = "/home/agent";
/// Workspace of the agent inside a bubblewrap sandbox.
pub(crate) const SANDBOX_WORKSPACE: &str = "/home/agent/workspace";

/// True when `bwrap` can create the namespaces the sandbox needs on this machine.
pub(crate) fn bubblewrap_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::process::Command::new("bwrap")
            .args(["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"])
            .args([
                "--unshare-pid",
                "--unshare-ipc",
                "--unshare-uts",
                "--",
                "true",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

/// Paths the sandbox is built from.
pub(crate) struct Mounts<'a> {
    pub home: &'a Path,
    pub workspace: &'a Path,
    pub data_dir: &'a Path,
    pub install_root: Option<&'a Path>,
}

/// The `bwrap` arguments that run a program in the sandbox described in the module docs.
pub(crate) fn bubblewrap_arguments(mounts: &Mounts<'_>) -> Vec<String> {
    let mut arguments: Vec<String> = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        .map(String::from)
        .to_vec();
    let hidden: [PathBuf; 4] = [
        "/tmp".into(),
        "/root".into(),
        "/home".into(),
        mounts.data_dir.to_path_buf(),
    ];
    for folder in hidden.iter().filter(|folder| folder.is_dir()) {
        let covered = hidden
            .iter()
            .any(|other| other != folder && folder.starts_with(other));
        if !covered {
            arguments.extend(["--tmpfs".into(), folder.display().to_string()]);
        }
    }
    if let Some(root) = mounts.install_root {
        let root = root.display().to_string();
        arguments.extend(["--ro-bind".into(), root.clone(), root]);
    }
    arguments.extend([
        "--bind".into(),
        mounts.home.display().to_string(),
        SANDBOX_HOME.into(),
        "--bind".into(),
        mounts.workspace.display().to_string(),
        SANDBOX_WORKSPACE.into(),
        "--chdir".into(),
        SANDBOX_WORKSPACE.into(),
    ]);
    arguments.extend(
        [
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--",
        ]
        .map(String::from),
    );
    arguments
}
