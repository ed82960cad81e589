//! Agent processes: each runs in its own process group, stopped with TERM, then KILL.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Child;

/// Sends `signal` to the whole process group led by `pid`; a group that is gone is not an error.
fn signal_group(pid: u32, signal: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = killpg(Pid::from_raw(pid), signal);
    }
}

/// Stops a child's process group: TERM, up to `grace` to exit, then KILL.
pub(crate) async fn stop(child: &mut Child, grace: Duration) {
    let Some(pid) = child.id() else {
        return; // already reaped
    };
    signal_group(pid, Signal::SIGTERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        tracing::warn!(pid, "agent ignored TERM; killing it");
    }
    signal_group(pid, Signal::SIGKILL);
    let _ = child.wait().await;
}

/// Kills the process group of a process left by an earlier gateway, if `pid` still names a
/// process that runs in `session_dir` (so a recycled pid is never touched). Returns true if it
/// killed one.
pub(crate) fn kill_orphan(pid: u32, session_dir: &Path) -> bool {
    let proc_dir = Path::new("/proc").join(pid.to_string());
    let command_line = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
    let in_session = String::from_utf8_lossy(&command_line)
        .contains(&*session_dir.to_string_lossy())
        || std::fs::read_link(proc_dir.join("cwd")).is_ok_and(|cwd| cwd.starts_with(session_dir));
    if in_session {
        signal_group(pid, Signal::SIGKILL);
    }
    in_session
}
