//! The local provider's bookkeeping on this machine: how the gateway reaches a starting agent
//! (its endpoint and credential), and the session folders it creates without following links.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;

use super::channel::SocketHandle;
use super::isolation::SANDBOX_WORKSPACE;
use super::{AgentEndpoint, AgentLaunch, SandboxError};

/// Creates `relative` under `root`, refusing any component that is a link or not a folder, so a
/// link the agent planted never leads the gateway outside the session.
pub(crate) fn create_inside(root: &Path, relative: &Path) -> Result<(), SandboxError> {
    let mut path = root.to_path_buf();
    for component in relative.components() {
        let std::path::Component::Normal(name) = component else {
            return Err(
                SandboxError::io(format!("creating {}", relative.display()))(
                    std::io::Error::other("the path leaves the session"),
                ),
            );
        };
        path.push(name);
        match std::fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => {
                return Err(SandboxError::io(format!("creating {}", path.display()))(
                    std::io::Error::other("the agent left something other than a folder there"),
                ));
            }
            Err(_) => std::fs::create_dir(&path)
                .map_err(SandboxError::io(format!("creating {}", path.display())))?,
        }
    }
    Ok(())
}

/// Creates `path` and its parents readable by the owner only.
pub(crate) fn private_folder(path: &Path) -> Result<(), SandboxError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)))
        .map_err(SandboxError::io(format!("creating {}", path.display())))
}

/// Where a starting agent will answer.
pub(crate) enum Target<'a> {
    /// A Unix socket the sandbox helper binds.
    Socket(PathBuf, Option<&'a str>),
    /// A port on the host's loopback, and the workspace on the host.
    Port(u16, Option<&'a str>, PathBuf),
}

impl Target<'_> {
    /// The endpoint, once the agent's socket exists.
    pub(crate) fn endpoint(
        &self,
        launch: &AgentLaunch,
    ) -> Result<Option<AgentEndpoint>, SandboxError> {
        let (builder, base_url, password, handle, workspace) = match self {
            Self::Socket(path, password) => {
                let Some(handle) = SocketHandle::open(path) else {
                    return Ok(None);
                };
                let builder = reqwest::Client::builder().unix_socket(handle.connect_path());
                (
                    builder,
                    "http://agent".to_owned(),
                    *password,
                    Some(Arc::new(handle)),
                    SANDBOX_WORKSPACE.to_owned(),
                )
            }
            Self::Port(port, password, workspace) => (
                reqwest::Client::builder(),
                format!("http://127.0.0.1:{port}"),
                *password,
                None,
                workspace.display().to_string(),
            ),
        };
        let mut headers = reqwest::header::HeaderMap::new();
        if let (Some(credential), Some(password)) = (&launch.credential, password) {
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{password}", credential.username));
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Basic {token}"))
                .map_err(|error| {
                    SandboxError::io("encoding the agent's credential")(std::io::Error::other(
                        error,
                    ))
                })?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = builder.default_headers(headers).build().map_err(|error| {
            SandboxError::io("building the agent's client")(std::io::Error::other(error))
        })?;
        Ok(Some(AgentEndpoint {
            base_url,
            http,
            workspace,
            _channel: handle,
        }))
    }
}

pub(crate) fn free_loopback_port() -> Result<u16, SandboxError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(SandboxError::io("finding a free loopback port"))
}

/// A random password for one agent.
pub(crate) fn random_password() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}
