//! `--secure-serving`: TLS with ALPN `h2` on the ext_proc listener, as upstream BBR serves by
//! default. The certificate is either generated at start (self-signed, like upstream) or read
//! from `--cert-path` (`tls.crt` and `tls.key`, the layout of a Kubernetes TLS Secret mounted
//! as a volume) and reloaded when the files change, so cert-manager rotations need no restart.
//!
//! The rustls server configuration lives in an `ArcSwap`: each handshake takes the current one,
//! so a reload affects new connections only and never blocks a request. Handshakes run in
//! their own tasks (a silent client cannot stall the accept loop) and finished connections go
//! to tonic through a bounded channel.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::error::{Error, Result};

/// The certificate chain inside `--cert-path`.
pub const CERT_FILE: &str = "tls.crt";
/// The private key inside `--cert-path`.
pub const KEY_FILE: &str = "tls.key";
/// How long a client has to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections through their handshake, waiting for tonic to take them.
const HANDSHAKEN_BACKLOG: usize = 128;

/// Where the serving certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// Generated at start for `localhost` (ECDSA P-256); clients must skip verification, as
    /// upstream's Envoy configurations do for BBR.
    SelfSigned,
    /// `tls.crt` and `tls.key` in `dir`, checked for changes every `poll`.
    Dir {
        /// The directory.
        dir: PathBuf,
        /// How often the files' modification times are compared.
        poll: Duration,
    },
}

fn tls_error(what: impl Into<String>) -> Error {
    Error::Tls(what.into())
}

/// A rustls server configuration for one chain and key, speaking HTTP/2 only (gRPC).
fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            tls_error(format!(
                "the certificate and key do not match or are unusable: {e}"
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// A fresh self-signed certificate for `localhost`.
pub fn self_signed() -> Result<ServerConfig> {
    let key = rcgen::KeyPair::generate().map_err(|e| tls_error(e.to_string()))?;
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .map_err(|e| tls_error(e.to_string()))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| tls_error(e.to_string()))?;
    let key = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| tls_error(e.to_string()))?;
    server_config(vec![cert.der().clone()], key)
}

/// Reads `tls.crt` and `tls.key` from `dir`; errors name the file and what to fix.
pub fn load_dir(dir: &Path) -> Result<ServerConfig> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    let chain = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| {
            tls_error(format!(
                "cannot read the certificate chain {}: {e} (expected PEM CERTIFICATE blocks)",
                cert_path.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(tls_error(format!(
            "{} holds no PEM CERTIFICATE block",
            cert_path.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
        tls_error(format!(
            "cannot read the private key {}: {e} (expected one PEM PRIVATE KEY block: PKCS#8, \
             PKCS#1 or SEC1)",
            key_path.display()
        ))
    })?;
    server_config(chain, key)
}

/// What identifies a version of the two files: modification times and lengths.
fn stamp(dir: &Path) -> Option<[(SystemTime, u64); 2]> {
    let one = |name| {
        let meta = std::fs::metadata(dir.join(name)).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    Some([one(CERT_FILE)?, one(KEY_FILE)?])
}

/// The current server configuration, replaced on reload.
pub struct Certificates {
    current: ArcSwap<ServerConfig>,
}

impl Certificates {
    /// Loads the configuration once; an error here stops startup.
    pub fn load(source: &CertSource) -> Result<Arc<Self>> {
        let config = match source {
            CertSource::SelfSigned => self_signed()?,
            CertSource::Dir { dir, .. } => load_dir(dir)?,
        };
        Ok(Arc::new(Certificates {
            current: ArcSwap::from_pointee(config),
        }))
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.load_full())
    }

    /// Polls `--cert-path` until cancelled, swapping in each new valid pair. A broken or
    /// half-written pair keeps the previous certificate and is logged (the next change retries).
    pub async fn watch(self: Arc<Self>, source: CertSource, cancel: CancellationToken) {
        let CertSource::Dir { dir, poll } = source else {
            return;
        };
        let mut last = stamp(&dir);
        let mut ticker = tokio::time::interval(poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let now = stamp(&dir);
            if now == last {
                continue;
            }
            last = now;
            match load_dir(&dir) {
                Ok(config) => {
                    self.current.store(Arc::new(config));
                    tracing::info!(dir = %dir.display(), "serving certificate reloaded");
                }
                Err(err) => tracing::error!(%err, "keeping the previous serving certificate"),
            }
        }
    }
}

/// A TLS connection handed to tonic.
pub struct TlsConnection(tokio_rustls::server::TlsStream<TcpStream>);

impl Connected for TlsConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.get_ref().0.connect_info()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// Accepts TCP connections until cancelled and yields those whose handshake succeeded.
pub fn incoming(
    listener: TcpListener,
    certificates: Arc<Certificates>,
    cancel: CancellationToken,
) -> ReceiverStream<std::io::Result<TlsConnection>> {
    let (tx, rx) = tokio::sync::mpsc::channel(HANDSHAKEN_BACKLOG);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = cancel.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%err, "accepting a gRPC connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Small answers must not wait for Nagle (see the plaintext listener).
            let _ = tcp.set_nodelay(true);
            let acceptor = certificates.acceptor();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(TlsConnection(tls))).await;
                    }
                    Ok(Err(err)) => tracing::debug!(%peer, %err, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests;
