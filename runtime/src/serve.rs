//! The three servers of an ext_proc binary — the ext_proc gRPC service (plaintext or TLS),
//! the gRPC health service and the `/metrics` router — spawned into one [`Tasks`] set, so BBR
//! and the EPP start them, and stop them on the shared token, the same way, under the same
//! limits ([`ServeLimits`], [`grpc_builder`], and the [`listen`] caps and timeouts).

pub mod listen;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::Router;

use crate::shutdown::Tasks;
use crate::tls::{AcceptLimits, Certificates};
use listen::ListenLimits;

/// HTTP/2 flow-control window per ext_proc stream: a 1 MiB body arrives in one round trip.
const STREAM_WINDOW_BYTES: u32 = 1024 * 1024;
/// HTTP/2 flow-control window per connection from Envoy (shared by its concurrent streams).
const CONNECTION_WINDOW_BYTES: u32 = 8 * 1024 * 1024;
/// How often an idle HTTP/2 connection is pinged, and how long the answer may take: a peer
/// that vanished without a FIN (a node lost) frees its connection within a minute.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Default `--grpc-max-concurrent-streams`: HTTP/2 streams (requests in flight) per
/// connection from Envoy. Envoy opens another connection past it, so together with the
/// connection cap it bounds the streams the process holds; the byte budget bounds their
/// memory.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 1000;

/// The ext_proc server's builder: large flow-control windows (a big body arrives without
/// waiting for WINDOW_UPDATEs every 64 KiB), at most `max_concurrent_streams` streams per
/// connection (tonic's default is no limit at all), and keepalive pings.
pub fn grpc_builder(max_concurrent_streams: u32) -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .max_concurrent_streams(max_concurrent_streams.max(1))
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
}

/// What clients may cost each listener of an ext_proc binary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServeLimits {
    /// The ext_proc port: its connection cap (TLS or not) and TLS handshake timeout.
    pub ext_proc: AcceptLimits,
    /// The health and metrics ports.
    pub listen: ListenLimits,
}

/// One listener and what it serves.
pub struct Listening<S> {
    /// What is served.
    pub service: S,
    /// The bound listener.
    pub listener: TcpListener,
}

/// The servers of one ext_proc binary.
pub struct Servers {
    /// The ext_proc service, built with its HTTP/2 window settings.
    pub grpc: Listening<Router>,
    /// `Some`: the ext_proc port speaks TLS with these certificates.
    pub tls: Option<Arc<Certificates>>,
    /// The gRPC health service (its own port, always plaintext: Kubernetes probes it).
    pub health: Listening<Routes>,
    /// The `/metrics` router.
    pub metrics: Listening<axum::Router>,
    /// Connection caps and timeouts.
    pub limits: ServeLimits,
}

/// A server that could not be bound or stopped with an error: which one, where, and why.
/// BBR's and the EPP's errors carry it as their `Serve` variant.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve {what} on {addr}: {source}")]
pub struct ServeFailure {
    /// `gRPC`, `gRPC health` or `metrics`.
    pub what: &'static str,
    /// The address it was bound to.
    pub addr: SocketAddr,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

impl ServeFailure {
    /// A server task that panicked or was aborted, reported at `addr` (the process's gRPC
    /// address, which names it in logs).
    pub fn panicked(addr: SocketAddr, join: tokio::task::JoinError) -> Self {
        Self {
            what: "a server task",
            addr,
            source: std::io::Error::other(join),
        }
    }
}

impl Servers {
    /// Spawns the three servers into `tasks`; each stops accepting when the set's token is
    /// cancelled. `failed` turns a server's error into the binary's own error type.
    pub fn spawn<E>(
        self,
        tasks: &mut Tasks<E>,
        failed: impl Fn(ServeFailure) -> E + Clone + Send + Sync + 'static,
    ) where
        E: std::fmt::Display + Send + 'static,
    {
        let cancel = tasks.token().clone();
        let limits = self.limits;
        let grpc_failed = failure("gRPC", bound(&self.grpc.listener), failed.clone());
        let grpc = self.grpc.service;
        let shutdown = cancel.clone().cancelled_owned();
        match self.tls {
            Some(certificates) => {
                let incoming = crate::tls::incoming(
                    self.grpc.listener,
                    certificates,
                    limits.ext_proc,
                    cancel.clone(),
                );
                tasks.spawn(async move {
                    let served = grpc.serve_with_incoming_shutdown(incoming, shutdown);
                    served.await.map_err(grpc_failed)
                });
            }
            None => {
                let incoming = listen::capped(
                    self.grpc.listener,
                    limits.ext_proc.max_connections,
                    cancel.clone(),
                );
                tasks.spawn(async move {
                    let served = grpc.serve_with_incoming_shutdown(incoming, shutdown);
                    served.await.map_err(grpc_failed)
                });
            }
        }

        let health_failed = failure("gRPC health", bound(&self.health.listener), failed.clone());
        let health = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
            .max_connection_age(limits.listen.max_connection_age)
            .add_routes(self.health.service);
        let incoming = listen::capped(
            self.health.listener,
            limits.listen.max_connections,
            cancel.clone(),
        );
        let shutdown = cancel.clone().cancelled_owned();
        tasks.spawn(async move {
            let served = health.serve_with_incoming_shutdown(incoming, shutdown);
            served.await.map_err(health_failed)
        });

        let metrics_addr = bound(&self.metrics.listener);
        let (listener, router) = (self.metrics.listener, self.metrics.service);
        tasks.spawn(async move {
            listen::serve_http1(listener, router, limits.listen, cancel)
                .await
                .map_err(|source| {
                    failed(ServeFailure {
                        what: "metrics",
                        addr: metrics_addr,
                        source,
                    })
                })
        });
    }
}

/// The address `listener` is bound to (unspecified if the socket cannot say, which only
/// blurs an error message).
fn bound(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// Maps a tonic server error of the server `what` on `addr` through `failed`.
fn failure<E>(
    what: &'static str,
    addr: SocketAddr,
    failed: impl Fn(ServeFailure) -> E,
) -> impl FnOnce(tonic::transport::Error) -> E {
    move |e| {
        failed(ServeFailure {
            what,
            addr,
            source: std::io::Error::other(e),
        })
    }
}

#[cfg(test)]
mod tests;
