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
        // Bound through a descriptor of the folder: a socket's path may be at most 107 bytes, and
        // a data directory's may be longer.
        let folder = open(
            &self.gateway,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let bind =
            |name: &str| UnixListener::bind(format!("/proc/self/fd/{}/{name}", folder.as_raw_fd()));
        let egress = bind("egress.sock")?;
        let mut tasks = vec![tokio::spawn(egress::serve(
            egress,
            Arc::new(policy),
            session_id.to_owned(),
        ))];
        for &target in forwards {
            let listener = bind(&format!("{}.sock", target.port()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sockets_open_under_a_session_folder_of_any_length() {
        let data = tempfile::tempdir().unwrap();
        let session_dir = data
            .path()
            .join("d".repeat(120))
            .join("ses_0123456789abcdef");
        let dirs = ChannelDirs::of(&session_dir);
        let _end = dirs
            .open("ses_0123456789abcdef", EgressPolicy::default(), &[])
            .expect("the channel opens");
        let egress = dirs.gateway.join("egress.sock");
        assert!(
            egress.as_os_str().len() > 108,
            "control: the path is past SUN_LEN"
        );
        let handle = SocketHandle::open(&egress).expect("a socket is there");
        let mut proxy = tokio::net::UnixStream::connect(handle.connect_path())
            .await
            .expect("the proxy accepts");
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        proxy
            .write_all(b"CONNECT example.com:443 HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        proxy.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    }

    #[test]
    fn a_link_where_the_agent_socket_should_be_is_not_followed() {
        let data = tempfile::tempdir().unwrap();
        let real = data.path().join("real.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&real).unwrap();
        assert!(
            SocketHandle::open(&real).is_some(),
            "control: the socket opens"
        );
        let link = data.path().join("agent.sock");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(SocketHandle::open(&link).is_none());
        std::fs::write(data.path().join("file.sock"), "").unwrap();
        assert!(SocketHandle::open(&data.path().join("file.sock")).is_none());
    }
}
