//! The TLS accept loop: TCP accept, then each handshake in its own task under a deadline,
//! with a cap on open connections.
//!
//! The cap is a semaphore whose permit each connection holds until it is dropped (its
//! handshake failed, or the server closed it). At the cap the loop stops accepting, so new
//! clients wait in the kernel's backlog instead of costing a task and a handshake each.
//! A second, smaller semaphore bounds the handshakes in progress: each costs CPU (the key
//! exchange) and buffers, and a flood of ClientHellos must not starve the streams already
//! being served.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::Certificates;
use super::held::Held;

/// Connections through their handshake, waiting for the server to take them.
const HANDSHAKEN_BACKLOG: usize = 128;
/// The pause after a failed `accept` (out of file descriptors and the like): long enough not
/// to spin, short enough to be unnoticed once the condition clears.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// How much one listener lets clients cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcceptLimits {
    /// How long a client has to finish its handshake.
    pub handshake_timeout: Duration,
    /// Most connections open at once, handshakes included.
    pub max_connections: usize,
    /// Most handshakes in progress at once.
    pub max_handshakes: usize,
}

impl Default for AcceptLimits {
    /// Ten seconds per handshake (what every copy used), 4096 connections (far above what
    /// one Envoy or apiserver opens, low enough that a flood cannot exhaust file
    /// descriptors) and 64 handshakes at once (Envoy reconnecting all its connections after
    /// a restart still completes in a few rounds).
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            max_connections: 4096,
            max_handshakes: 64,
        }
    }
}

/// A connection through its TLS handshake. It holds its place under the connection cap until
/// dropped.
pub type TlsConnection = Held<TlsStream<TcpStream>>;

impl Held<TlsStream<TcpStream>> {
    /// The application protocol agreed in ALPN, if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.get_ref().get_ref().1.alpn_protocol()
    }
}

/// tonic reads the peer's address from the TCP stream under the TLS one.
#[cfg(feature = "grpc")]
mod grpc {
    use tokio::net::TcpStream;
    use tokio_rustls::server::TlsStream;
    use tonic::transport::server::{Connected, TcpConnectInfo};

    use super::Held;

    impl Connected for Held<TlsStream<TcpStream>> {
        type ConnectInfo = TcpConnectInfo;

        fn connect_info(&self) -> Self::ConnectInfo {
            self.get_ref().get_ref().0.connect_info()
        }
    }
}

/// Accepts TCP connections on `listener` until cancelled and yields those whose handshake
/// succeeded, each with the certificate current when it connected.
pub fn incoming(
    listener: TcpListener,
    certificates: Arc<Certificates>,
    limits: AcceptLimits,
    cancel: CancellationToken,
) -> ReceiverStream<std::io::Result<TlsConnection>> {
    let (handshaken, rx) = tokio::sync::mpsc::channel(HANDSHAKEN_BACKLOG);
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let handshaking = Arc::new(Semaphore::new(limits.max_handshakes.max(1)));
    tokio::spawn(async move {
        loop {
            let permit = tokio::select! {
                () = cancel.cancelled() => return,
                permit = Arc::clone(&open).acquire_owned() => permit,
            };
            // The semaphores are never closed, so these are always permits.
            let Ok(permit) = permit else { return };
            let handshake = tokio::select! {
                () = cancel.cancelled() => return,
                handshake = Arc::clone(&handshaking).acquire_owned() => handshake,
            };
            let Ok(handshake) = handshake else { return };
            let accepted = tokio::select! {
                () = cancel.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(%err, "accepting a TLS connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            };
            // Small answers (routing headers, admission verdicts) must not wait for Nagle.
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(%peer, %err, "cannot set TCP_NODELAY");
            }
            let acceptor = certificates.acceptor();
            let handshaken = handshaken.clone();
            tokio::spawn(async move {
                let handshaken_or_not =
                    tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await;
                drop(handshake);
                match handshaken_or_not {
                    Ok(Ok(stream)) => {
                        let connection = Held::new(stream, peer, permit);
                        // A closed receiver means the server stopped; the connection drops.
                        let _ = handshaken.send(Ok(connection)).await;
                    }
                    Ok(Err(err)) => tracing::debug!(%peer, %err, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
