//! A sandbox's channel to the gateway: Unix sockets in the session's folder, the only way in and
//! out of a sandbox that has no network but its own loopback.
//!
//! `sessions/<id>/channel/sandbox/agent.sock` is bound by the sandbox helper and carries the
//! gateway's HTTP requests to the agent. The gateway opens it without following links (an agent
//! that swaps it for a link reaches nothing but itself). `sessions/<id>/channel/gateway/` is
//! read-only inside the sandbox and holds the sockets the gateway serves for it: `egress.sock`
//! (the egress proxy) and `<port>.sock` for each [`ChannelService`] (the model proxy), which the
//! helper exposes on the same port of the sandbox's loopback.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, SFlag, fstat};
use tokio::io::{AsyncRead, AsyncWrite, copy_bidirectional};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::task::JoinHandle;

use super::egress::{self, EgressPolicy};

/// One connection from a sandbox to a [`ChannelService`].
pub trait Connection: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Connection for T {}

/// A service the gateway serves into every sandbox: the sandbox reaches it on [`port`] of its
/// own loopback, through its channel (or, without isolation, on a port of the host's loopback
/// that the sandbox learns from [`address_variable`]), and every connection is known to come from
/// one session's sandbox.
///
/// [`port`]: ChannelService::port
/// [`address_variable`]: ChannelService::address_variable
#[async_trait]
pub trait ChannelService: Send + Sync + std::fmt::Debug {
    /// Its port on the sandbox's loopback.
    fn port(&self) -> u16;

    /// The environment variable that gives the agent the service's base URL
    /// (`http://127.0.0.1:<port>`), if the agent needs it.
    fn address_variable(&self) -> Option<&str> {
        None
    }

    /// Serves one connection from `session_id`'s sandbox.
    async fn serve(&self, session_id: String, connection: Box<dyn Connection>);
}

/// A service on the host's loopback that every sandbox reaches at the same port of its own
/// loopback, shared by all sessions.
#[derive(Debug, Clone, Copy)]
pub struct LoopbackForward(pub SocketAddr);

#[async_trait]
impl ChannelService for LoopbackForward {
    fn port(&self) -> u16 {
        self.0.port()
    }

    async fn serve(&self, _session_id: String, mut connection: Box<dyn Connection>) {
        if let Ok(mut outbound) = TcpStream::connect(self.0).await {
            let _ = copy_bidirectional(&mut connection, &mut outbound).await;
        }
    }
}

/// Serves `service` to `session_id`'s connections on `listener` until dropped.
async fn serve_service<L: Accept>(
    listener: L,
    service: Arc<dyn ChannelService>,
    session_id: String,
) {
    while let Some(connection) = listener.accept_connection().await {
        let (service, session_id) = (service.clone(), session_id.clone());
        tokio::spawn(async move { service.serve(session_id, connection).await });
    }
}

/// A listener of [`Connection`]s.
#[async_trait]
trait Accept: Send + Sync + 'static {
    async fn accept_connection(&self) -> Option<Box<dyn Connection>>;
}

#[async_trait]
impl Accept for UnixListener {
    async fn accept_connection(&self) -> Option<Box<dyn Connection>> {
        Some(Box::new(self.accept().await.ok()?.0))
    }
}

#[async_trait]
impl Accept for TcpListener {
    async fn accept_connection(&self) -> Option<Box<dyn Connection>> {
        Some(Box::new(self.accept().await.ok()?.0))
    }
}

/// Serves each of `services` to an unisolated sandbox on a free port of the host's loopback;
/// returns the tasks and, for each service with an address variable, its value.
pub(crate) async fn serve_on_loopback(
    session_id: &str,
    services: &[Arc<dyn ChannelService>],
) -> std::io::Result<(GatewayEnd, Vec<(String, String)>)> {
    let mut end = GatewayEnd { tasks: Vec::new() };
    let mut environment = Vec::new();
    for service in services {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        if let Some(variable) = service.address_variable() {
            environment.push((variable.to_owned(), format!("http://{address}")));
        }
        end.tasks.push(tokio::spawn(serve_service(
            listener,
            service.clone(),
            session_id.to_owned(),
        )));
    }
    Ok((end, environment))
}

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
        services: &[Arc<dyn ChannelService>],
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
        for service in services {
            let listener = bind(&format!("{}.sock", service.port()))?;
            tasks.push(tokio::spawn(serve_service(
                listener,
                service.clone(),
                session_id.to_owned(),
            )));
        }
        Ok(GatewayEnd { tasks })
    }
}

/// The environment that gives an isolated sandbox's agent each service's address.
pub(crate) fn channel_environment(services: &[Arc<dyn ChannelService>]) -> Vec<(String, String)> {
    services
        .iter()
        .filter_map(|service| {
            let variable = service.address_variable()?;
            Some((
                variable.to_owned(),
                format!("http://127.0.0.1:{}", service.port()),
            ))
        })
        .collect()
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
