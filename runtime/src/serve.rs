//! The three servers of an ext_proc binary — the ext_proc gRPC service (plaintext or TLS),
//! the gRPC health service and the `/metrics` router — spawned into one [`Tasks`] set, so BBR
//! and the EPP start them, and stop them on the shared token, the same way.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::{Router, TcpIncoming};

use crate::shutdown::Tasks;
use crate::tls::{AcceptLimits, Certificates};

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
        let grpc_failed = failure("gRPC", bound(&self.grpc.listener), failed.clone());
        let grpc = self.grpc.service;
        let shutdown = cancel.clone().cancelled_owned();
        match self.tls {
            Some(certificates) => {
                let incoming = crate::tls::incoming(
                    self.grpc.listener,
                    certificates,
                    AcceptLimits::default(),
                    cancel.clone(),
                );
                tasks.spawn(async move {
                    let served = grpc.serve_with_incoming_shutdown(incoming, shutdown);
                    served.await.map_err(grpc_failed)
                });
            }
            None => {
                let incoming = nodelay(self.grpc.listener);
                tasks.spawn(async move {
                    let served = grpc.serve_with_incoming_shutdown(incoming, shutdown);
                    served.await.map_err(grpc_failed)
                });
            }
        }

        let health_failed = failure("gRPC health", bound(&self.health.listener), failed.clone());
        let health = tonic::transport::Server::builder().add_routes(self.health.service);
        let incoming = nodelay(self.health.listener);
        let shutdown = cancel.clone().cancelled_owned();
        tasks.spawn(async move {
            let served = health.serve_with_incoming_shutdown(incoming, shutdown);
            served.await.map_err(health_failed)
        });

        let metrics_addr = bound(&self.metrics.listener);
        let (listener, router) = (self.metrics.listener, self.metrics.service);
        tasks.spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(cancel.cancelled_owned())
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

/// The incoming connections of a plaintext gRPC listener. tonic sets TCP_NODELAY only on
/// listeners it binds itself, and Nagle would hold back the small routing answers.
fn nodelay(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
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
