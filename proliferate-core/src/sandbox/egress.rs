//! The egress proxy: the only way out of a sandbox to the network, an HTTP `CONNECT` proxy that
//! opens tunnels to allowed hosts only.
//!
//! Each sandbox has its own proxy socket and policy (the server's allow-list plus the session's).
//! A name is allowed by an exact entry (`example.com`, any port of 80 and 443; `example.com:8443`,
//! that port) or a wildcard entry (`*.example.com`, its subdomains). A name that resolves to a
//! loopback, private, link-local or otherwise non-public address is refused, so an allowed name
//! cannot be pointed at the host or its network; only an entry that is that IP address literally
//! (an operator's explicit choice) reaches one. Plain-HTTP proxying is refused: clients use
//! `CONNECT` for `http://` too (for example `curl --proxytunnel`), which keeps one policy check per
//! connection.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, copy_bidirectional};
use tokio::net::{TcpStream, UnixListener, UnixStream};

/// The most connections one sandbox has through the proxy at once.
const MAX_TUNNELS: usize = 256;
/// The longest request head the proxy reads.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request head, and a destination to accept.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Hosts a sandbox may reach through the egress proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    entries: Vec<String>,
}

impl EgressPolicy {
    /// A policy allowing these entries (`host`, `host:port` or `*.domain`); empty allows nothing.
    pub fn new(entries: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            entries: entries
                .into_iter()
                .map(|entry| entry.into().trim().to_ascii_lowercase())
                .filter(|entry| !entry.is_empty())
                .collect(),
        }
    }

    /// Checks entries a client asked for: at most 64, each a host name, `*.` domain or public
    /// IP address, with an optional port. Only the server's own list may name a loopback or
    /// private address: a client's would open the host's services (the database, the bus, the
    /// gateway) to its agent.
    pub fn validate(entries: &[String]) -> Result<(), String> {
        if entries.len() > 64 {
            return Err("egress_allow takes at most 64 entries".into());
        }
        for entry in entries {
            let (host, port) = match entry.rsplit_once(':') {
                Some((host, port)) if !host.contains(':') => (host, Some(port)),
                _ => (entry.as_str(), None),
            };
            let name = host.strip_prefix("*.").unwrap_or(host);
            let host_ok = (1..=253).contains(&name.len())
                && (name.parse::<IpAddr>().is_ok()
                    || name.split('.').all(|label| {
                        (1..=63).contains(&label.len())
                            && label
                                .bytes()
                                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
                    }));
            if !host_ok || port.is_some_and(|port| port.parse::<u16>().is_err()) {
                return Err(format!(
                    "egress_allow entry {entry:?} is not host, host:port or *.domain"
                ));
            }
            let literal = name.trim_matches(['[', ']']).parse::<IpAddr>();
            if literal.is_ok_and(|address| !is_public(address)) {
                return Err(format!(
                    "egress_allow entry {entry:?} names a non-public address, which only the \
                     server's own allow-list may"
                ));
            }
        }
        Ok(())
    }

    /// This policy with `more` entries added.
    pub fn with(&self, more: &[String]) -> Self {
        Self::new(self.entries.iter().chain(more).cloned())
    }

    /// The entry that allows `host:port`, if any.
    fn entry_for(&self, host: &str, port: u16) -> Option<&str> {
        let host = host.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|entry| {
                let (name, entry_port) = match entry.rsplit_once(':') {
                    Some((name, entry_port)) if !name.contains(':') => {
                        (name, entry_port.parse::<u16>().ok())
                    }
                    _ => (entry.as_str(), None),
                };
                let port_ok = entry_port.map_or(port == 443 || port == 80, |only| only == port);
                let name_ok = match name.strip_prefix("*.") {
                    Some(domain) => host.ends_with(&format!(".{domain}")),
                    None => name.trim_matches(['[', ']']) == host,
                };
                port_ok && name_ok
            })
            .map(String::as_str)
    }

    /// Where a tunnel to `host:port` may go: the resolved addresses, or why not.
    async fn destinations(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let entry = self
            .entry_for(host, port)
            .ok_or_else(|| format!("{host}:{port} is not on the egress allow-list"))?;
        let literal = entry
            .rsplit_once(':')
            .map_or(entry, |(name, _)| name)
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok();
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| format!("{host} does not resolve"))?
            .collect();
        if !literal && addresses.iter().any(|address| !is_public(address.ip())) {
            return Err(format!("{host} resolves to a non-public address"));
        }
        Ok(addresses)
    }
}

/// True for addresses on the public internet.
fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// Serves the proxy on `listener` until it is dropped, at most [`MAX_TUNNELS`] connections at
/// once (more wait their turn); `session_id` names the sandbox in logs.
pub(crate) async fn serve(listener: UnixListener, policy: Arc<EgressPolicy>, session_id: String) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_TUNNELS));
    while let Ok(slot) = slots.clone().acquire_owned().await
        && let Ok((client, _)) = listener.accept().await
    {
        let (policy, session_id) = (policy.clone(), session_id.clone());
        tokio::spawn(async move {
            if let Err(reason) = tunnel(client, &policy).await {
                tracing::warn!(session_id, reason, "egress refused");
            }
            drop(slot);
        });
    }
}

async fn tunnel(mut client: UnixStream, policy: &EgressPolicy) -> Result<(), String> {
    let mut head = Vec::with_capacity(1024);
    let length = tokio::time::timeout(TIMEOUT, read_head(&mut client, &mut head))
        .await
        .map_err(|_| "the request head did not arrive in time".to_owned())??;
    let target = {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        request
            .parse(&head[..length])
            .map_err(|error| format!("malformed request: {error}"))?;
        match (request.method, request.path) {
            (Some("CONNECT"), Some(target)) => target.to_owned(),
            _ => {
                let _ = client
                    .write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                    .await;
                return Err("only CONNECT is proxied".into());
            }
        }
    };
    let allowed = match target
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.trim_matches(['[', ']']), port.parse().ok()?)))
    {
        Some((host, port)) => policy.destinations(host, port).await,
        None => Err(format!("{target:?} is not host:port")),
    };
    let destinations = match allowed {
        Ok(destinations) => destinations,
        Err(reason) => {
            let _ = client
                .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                .await;
            return Err(reason);
        }
    };
    let connected = tokio::time::timeout(TIMEOUT, TcpStream::connect(&destinations[..])).await;
    let Ok(Ok(mut upstream)) = connected else {
        let _ = client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            .await;
        return Err(format!("{target} did not accept a connection"));
    };
    client
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await
        .map_err(|error| error.to_string())?;
    upstream
        .write_all(&head[length..])
        .await
        .map_err(|error| error.to_string())?;
    let _ = copy_bidirectional(&mut client, &mut upstream).await;
    Ok(())
}

/// Reads until the end of the request head; returns its length (bytes after it belong to the
/// tunnel).
async fn read_head(client: &mut UnixStream, head: &mut Vec<u8>) -> Result<usize, String> {
    loop {
        if let Some(end) = head.windows(4).position(|window| window == b"\r\n\r\n") {
            return Ok(end + 4);
        }
        if head.len() >= MAX_HEAD {
            return Err("the request head is too long".into());
        }
        let mut chunk = [0; 1024];
        let read = client
            .read(&mut chunk)
            .await
            .map_err(|error| error.to_string())?;
        if read == 0 {
            return Err("the client closed before its request head ended".into());
        }
        head.extend_from_slice(&chunk[..read]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_match_hosts_and_ports() {
        let policy = EgressPolicy::new(["Example.com", "*.github.com", "api.test:8443"]);
        assert!(policy.entry_for("example.com", 443).is_some());
        assert!(policy.entry_for("EXAMPLE.com", 80).is_some());
        assert!(policy.entry_for("example.com", 22).is_none());
        assert!(policy.entry_for("sub.example.com", 443).is_none());
        assert!(policy.entry_for("codeload.github.com", 443).is_some());
        assert!(policy.entry_for("github.com", 443).is_none());
        assert!(policy.entry_for("evilgithub.com", 443).is_none());
        assert!(policy.entry_for("api.test", 8443).is_some());
        assert!(policy.entry_for("api.test", 443).is_none());
        assert!(
            EgressPolicy::default()
                .entry_for("example.com", 443)
                .is_none()
        );
    }

    #[test]
    fn only_public_addresses_are_public() {
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(address.parse().unwrap()), "{address}");
        }
        for address in ["1.1.1.1", "140.82.112.3", "2606:4700::1111"] {
            assert!(is_public(address.parse().unwrap()), "{address}");
        }
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_but_literals_are_honoured() {
        let by_name = EgressPolicy::new(["localhost:5432"]);
        let refused = by_name.destinations("localhost", 5432).await.unwrap_err();
        assert!(refused.contains("non-public"), "{refused}");
        let literal = EgressPolicy::new(["127.0.0.1:5432"]);
        let allowed = literal.destinations("127.0.0.1", 5432).await.unwrap();
        assert_eq!(allowed, vec!["127.0.0.1:5432".parse().unwrap()]);
    }
}
