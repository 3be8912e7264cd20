//! What a client may cost a listener: a cap on open connections for every port, and
//! timeouts so an idle or trickling client cannot hold one of those places forever.
//!
//! - The plaintext gRPC listeners (ext_proc without TLS, gRPC health) take connections
//!   through [`capped`]: each holds a semaphore permit until it closes, and at the cap the
//!   accept loop waits, so new clients queue in the kernel's backlog rather than costing a
//!   task each. The servers add HTTP/2 keepalive and a maximum connection age, which bound
//!   how long any one connection keeps its permit.
//! - The `/metrics` listener is served by [`serve_http1`]: the same cap, plus hyper's header
//!   read timeout, which also closes a keep-alive connection idle between requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::tls::held::Held;

/// Accepted connections waiting for the server to take them.
const ACCEPTED_BACKLOG: usize = 128;
/// The pause after a failed `accept` (out of file descriptors and the like).
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// How much the plaintext listeners (health, metrics) let clients cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// How long a client has to send a request's headers, and how long a keep-alive
    /// connection may sit idle between requests (HTTP/1).
    pub header_read_timeout: Duration,
    /// After this long a connection is asked to close (HTTP/2 GOAWAY); in-flight requests
    /// finish first.
    pub max_connection_age: Duration,
}

impl Default for ListenLimits {
    /// 256 connections (kubelet probes and a few Prometheus scrapers need a handful), 10 s
    /// for headers or idleness, connections recycled after 5 minutes.
    fn default() -> Self {
        Self {
            max_connections: 256,
            header_read_timeout: Duration::from_secs(10),
            max_connection_age: Duration::from_secs(300),
        }
    }
}

/// A plaintext connection holding its place under a listener's connection cap until it is
/// dropped.
pub type CappedConnection = Held<TcpStream>;

mod grpc {
    use tokio::net::TcpStream;
    use tonic::transport::server::{Connected, TcpConnectInfo};

    use crate::tls::held::Held;

    impl Connected for Held<TcpStream> {
        type ConnectInfo = TcpConnectInfo;

        fn connect_info(&self) -> Self::ConnectInfo {
            self.get_ref().connect_info()
        }
    }
}

/// Accepts on `listener` until cancelled, at most `max_connections` open at once, with
/// TCP_NODELAY (small gRPC answers must not wait for Nagle).
pub fn capped(
    listener: TcpListener,
    max_connections: usize,
    cancel: CancellationToken,
) -> ReceiverStream<std::io::Result<CappedConnection>> {
    let (accepted, rx) = tokio::sync::mpsc::channel(ACCEPTED_BACKLOG);
    let open = Arc::new(Semaphore::new(max_connections.max(1)));
    tokio::spawn(async move {
        while let Some((stream, peer, permit)) = accept_one(&listener, &open, &cancel).await {
            let connection = Held::new(stream, peer, permit);
            // A closed receiver means the server stopped.
            if accepted.send(Ok(connection)).await.is_err() {
                return;
            }
        }
    });
    ReceiverStream::new(rx)
}

/// Waits for a place under the cap, then for a client; `None` once cancelled.
async fn accept_one(
    listener: &TcpListener,
    open: &Arc<Semaphore>,
    cancel: &CancellationToken,
) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    let permit = tokio::select! {
        () = cancel.cancelled() => return None,
        permit = Arc::clone(open).acquire_owned() => permit.ok()?,
    };
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return None,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                if let Err(err) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, %err, "cannot set TCP_NODELAY");
                }
                return Some((stream, peer, permit));
            }
            Err(err) => {
                tracing::warn!(%err, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
            }
        }
    }
}

/// Serves `router` over HTTP/1.1 on `listener` until `cancel`, under `limits`; connections
/// open at cancellation finish their request and close.
pub async fn serve_http1(
    listener: TcpListener,
    router: axum::Router,
    limits: ListenLimits,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = tokio::task::JoinSet::new();
    while let Some((stream, _, permit)) = accept_one(&listener, &open, &cancel).await {
        let service = TowerToHyperService::new(router.clone());
        let cancel = cancel.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .keep_alive(true);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = cancel.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = served {
                tracing::debug!(%err, "metrics connection ended with an error");
            }
        });
        // Reap finished connections so the set does not grow with the process's lifetime.
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests;
