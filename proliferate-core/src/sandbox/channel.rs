//! A sandbox's channel to the gateway: Unix sockets in the session's folder, the only way in and
//! out of a sandbox that has no network but its own loopback.
//!
//! `sessions/<id>/channel/sandbox/agent.sock` is bound by the sandbox helper and carries the
//! gateway's HTTP requests to the agent. The gateway opens it without following links (an agent
//! that swaps it for a link reaches nothing but itself). `sessions/<id>/channel/gateway/` is
//! read-only inside the sandbox and holds the sockets the gateway serves for it: `egress.sock`
//! (the egress proxy) and `<port>.sock` for each loopback service forwarded into sandboxes (the
//! model), which the helper exposes on the same port of the sandbox's loopback.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, SFlag, fstat};
use tokio::io::copy_bidirectional;
use tokio::net::{TcpStream, UnixListener};
use tokio::task::JoinHandle;

use super::egress::{self, EgressPolicy};

/// The gateway's side of a running sandbox's channel; its sockets close when it is dropped.
pub(crate) struct GatewayEnd {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for GatewayEnd {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The folders of a session's channel.
pub(crate) struct ChannelDirs {
    /// Writable by the sandbox; holds the agent's socket.
    pub sandbox: PathBuf,
    /// Read-only in the sandbox; holds the gateway's sockets.
    pub gateway: PathBuf,
}

impl ChannelDirs {
    /// The channel folders under a session's folder.
    pub fn of(session_dir: &Path) -> Self {
        Self {
            sandbox: session_dir.join("channel/sandbox"),
            gateway: session_dir.join("channel/gateway"),
        }
    }

    /// The agent's socket, on the host.
    pub fn agent_socket(&self) -> PathBuf {
        self.sandbox.join("agent.sock")
    }

    /// Creates the folders anew and starts serving the gateway's sockets.
    pub fn open(
        &self,
        session_id: &str,
        policy: EgressPolicy,
        forwards: &[SocketAddr],
    ) -> std::io::Result<GatewayEnd> {
        for folder in [&self.sandbox, &self.gateway] {
            let _ = std::fs::remove_dir_all(folder);
            std::fs::create_dir_all(folder)?;
        }
        let egress = UnixListener::bind(self.gateway.join("egress.sock"))?;
        let mut tasks = vec![tokio::spawn(egress::serve(
            egress,
            Arc::new(policy),
            session_id.to_owned(),
        ))];
        for &target in forwards {
            let listener =
                UnixListener::bind(self.gateway.join(format!("{}.sock", target.port())))?;
            tasks.push(tokio::spawn(forward(listener, target)));
        }
        Ok(GatewayEnd { tasks })
    }
}

/// Carries every connection on `listener` to `target`.
async fn forward(listener: UnixListener, target: SocketAddr) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(target).await {
                let _ = copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// An open handle on the agent's socket: connecting through `/proc/self/fd` reaches the socket
/// the handle was opened on, never what a link or a later rename puts at its path.
#[derive(Debug)]
pub(crate) struct SocketHandle {
    fd: OwnedFd,
}

impl SocketHandle {
    /// Opens the socket at `path` without following a link; `None` while nothing (or something
    /// that is not a socket) is there.
    pub fn open(path: &Path) -> Option<Self> {
        let fd = open(
            path,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let kind = SFlag::from_bits_truncate(fstat(&fd).ok()?.st_mode) & SFlag::S_IFMT;
        (kind == SFlag::S_IFSOCK).then_some(Self { fd })
    }

    /// The path that connects to the socket while this handle lives.
    pub fn connect_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }
}
