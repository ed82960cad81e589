//! The accept loop: connections in total and per address, a header-read timeout, graceful
//! shutdown.
//!
//! Each connection holds its places for as long as its socket is open, after a WebSocket
//! upgrade too. A connection past a limit is answered at once with a problem body and closed,
//! without reading its request. Each request carries its connection's [`ReadAllowance`], so a
//! route can cap what the connection may send before it authenticates.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use proliferate_core::protocol::v1::{ErrorCode, Problem};
use proliferate_core::quota::{Quota, QuotaPermit};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

/// How long a stopping server waits for its connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How long a refused connection has to take its answer.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// Limits of the accept loop.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// The most connections open at once.
    pub total: usize,
    /// The most connections one address holds open at once.
    pub per_address: usize,
    /// How long a client may take to send a request's headers, counted from when the server
    /// starts waiting for them (a kept-alive connection that sends nothing closes after it).
    pub header_read_timeout: Duration,
    /// The socket send buffer in bytes, if set.
    pub send_buffer: Option<usize>,
}

/// How many more bytes a connection may read: no limit, unless a route sets one (a WebSocket
/// waiting for its `auth` frame); a read past it fails the connection.
#[derive(Debug, Clone)]
pub struct ReadAllowance(Arc<AtomicUsize>);

impl Default for ReadAllowance {
    fn default() -> Self {
        Self(Arc::new(AtomicUsize::new(usize::MAX)))
    }
}

impl ReadAllowance {
    /// From now on, the connection may read at most `bytes` more until [`ReadAllowance::lift`].
    pub fn limit(&self, bytes: usize) {
        self.0.store(bytes, Ordering::SeqCst);
    }

    /// Lifts the limit.
    pub fn lift(&self) {
        self.0.store(usize::MAX, Ordering::SeqCst);
    }

    fn left(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    fn spend(&self, bytes: usize) {
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                (left != usize::MAX).then(|| left.saturating_sub(bytes))
            });
    }
}

/// A connection's socket, holding its places until it closes, and reading within its
/// allowance.
struct Counted {
    stream: TcpStream,
    allowance: ReadAllowance,
    _places: (
        OwnedSemaphorePermit,
        QuotaPermit<IpAddr>,
        watch::Receiver<()>,
    ),
}

/// Serves `app` on `listener` until `stop` turns true, then waits (up to [`SHUTDOWN_GRACE`])
/// for the open connections to finish.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let total = Arc::new(Semaphore::new(limits.total));
    let addresses = Quota::<IpAddr>::default();
    let (open, open_watcher) = watch::channel(());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopping(&mut stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, say: wait rather than spin.
                tracing::warn!(error = %error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if let Some(bytes) = limits.send_buffer {
            let _ = socket2::SockRef::from(&stream).set_send_buffer_size(bytes);
        }
        let Ok(place) = total.clone().try_acquire_owned() else {
            refuse(
                stream,
                ErrorCode::Unavailable,
                "the server holds its most connections",
            );
            continue;
        };
        let Some(address_place) = addresses.try_take(&peer.ip(), Some(limits.per_address)) else {
            refuse(
                stream,
                ErrorCode::LimitExceeded,
                "this address holds its most connections; close one first",
            );
            continue;
        };
        let allowance = ReadAllowance::default();
        let io = Counted {
            stream,
            allowance: allowance.clone(),
            _places: (place, address_place, open_watcher.clone()),
        };
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(allowance.clone());
                request
            },
        ));
        let builder = {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            builder
        };
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let connection = builder
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stopping(&mut stop) => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(open_watcher);
    if tokio::time::timeout(SHUTDOWN_GRACE, open.closed())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period");
    }
}

async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|down| *down).await;
}

/// Answers a connection past a limit with a problem body, without reading its request, and
/// closes it.
fn refuse(mut stream: TcpStream, code: ErrorCode, detail: &str) {
    let reason = match code {
        ErrorCode::LimitExceeded => "Too Many Requests",
        _ => "Service Unavailable",
    };
    tracing::warn!(code = code.as_str(), "refused a connection");
    let problem = Problem::new(code, detail);
    let body = serde_json::to_string(&problem).unwrap_or_default();
    let response = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        problem.status,
        reason,
        body.len(),
    );
    tokio::spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
            stream.write_all(response.as_bytes()).await?;
            stream.shutdown().await
        })
        .await;
    });
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let left = this.allowance.left();
        if left >= buffer.remaining() {
            let before = buffer.filled().len();
            std::task::ready!(Pin::new(&mut this.stream).poll_read(context, buffer))?;
            this.allowance.spend(buffer.filled().len() - before);
            return Poll::Ready(Ok(()));
        }
        if left == 0 {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the client sent more than it may before authenticating",
            )));
        }
        let mut within = vec![0; left];
        let mut limited = ReadBuf::new(&mut within);
        std::task::ready!(Pin::new(&mut this.stream).poll_read(context, &mut limited))?;
        this.allowance.spend(limited.filled().len());
        buffer.put_slice(limited.filled());
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(context, bytes)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(context)
    }
}
