//! An axum router served over TLS with bounds on what a client can cost: the
//! runtime's accept loop (handshake deadline, connection cap) and hyper's
//! header-read timeout, which hyper also runs while a kept-alive connection
//! waits for its next request, so it is the idle timeout as well.
//!
//! Both the validating webhook and the admin API serve through here: without
//! these bounds a client holding thousands of silent connections exhausts
//! file descriptors, and under the webhook's `failurePolicy: Ignore` that
//! turns validation off.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use futures::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use switchyard_runtime::tls::{AcceptLimits, Certificates, incoming};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What one HTTPS listener lets a client cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpsLimits {
    /// The handshake deadline and the cap on open connections.
    pub accept: AcceptLimits,
    /// How long a client has to send a request's headers, counted from when
    /// the connection starts waiting for them (after the handshake, or after
    /// the previous answer on a kept-alive connection).
    pub header_read_timeout: Duration,
}

impl Default for HttpsLimits {
    /// Ten seconds for a handshake and for a request's headers (the apiserver
    /// and the CLI send theirs at once; its own webhook timeout is at most 30 s),
    /// and 1024 connections: far above what the apiserver's replicas or a
    /// handful of admins open.
    fn default() -> Self {
        Self {
            accept: AcceptLimits {
                handshake_timeout: Duration::from_secs(10),
                max_connections: 1024,
            },
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// Accepts TLS connections on `listener` and serves `router` on each (HTTP/1.1)
/// until cancelled; open connections then finish their current request.
pub async fn serve(
    listener: TcpListener,
    certificates: Arc<Certificates>,
    router: Router,
    limits: HttpsLimits,
    cancel: CancellationToken,
) {
    let mut connections = incoming(listener, certificates, limits.accept, cancel.clone());
    while let Some(connection) = connections.next().await {
        let Ok(tls) = connection else { continue };
        let peer = tls.peer();
        let service = TowerToHyperService::new(router.clone());
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(TokioIo::new(tls), service);
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = &mut connection => result,
                () = cancel.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = result {
                tracing::debug!(%peer, %err, "HTTPS connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests;
