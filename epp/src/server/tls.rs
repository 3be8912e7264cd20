//! `--secure-serving`: TLS (ALPN h2) on the ext_proc listener, with a certificate from
//! `--cert-path` (`tls.crt` and `tls.key`, reloaded when they change) or, without it, a
//! self-signed one generated at start (upstream does the same).
//!
//! Handshakes run in their own tasks so a slow or silent client cannot hold up the accept
//! loop; finished connections are handed to tonic through a bounded channel. The server
//! configuration sits in an `ArcSwap`, so a reload affects new connections only.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// The certificate file inside `--cert-path`.
pub const CERT_FILE: &str = "tls.crt";
/// The key file inside `--cert-path`.
pub const KEY_FILE: &str = "tls.key";
/// How long a client gets to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for tonic.
const ACCEPT_BACKLOG: usize = 128;

/// Where the serving certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertSource {
    /// Generated at start: ECDSA P-256, O=`Inference Ext`, valid 10 years.
    SelfSigned,
    /// `tls.crt` and `tls.key` in this directory, checked for changes every `poll`.
    Dir {
        /// The directory.
        path: PathBuf,
        /// How often the files' modification times are checked; `None`: never reloaded.
        poll: Option<Duration>,
    },
}

fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            Error::Tls(format!(
                "the certificate and key do not form a usable pair: {e}"
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// A self-signed server configuration.
pub fn self_signed() -> Result<ServerConfig> {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .map_err(|e| Error::Tls(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Inference Ext");
    let now = SystemTime::now();
    params.not_before = now.into();
    params.not_after = (now + Duration::from_secs(10 * 365 * 24 * 3600)).into();
    let key = rcgen::KeyPair::generate().map_err(|e| Error::Tls(e.to_string()))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| Error::Tls(e.to_string()))?;
    let key = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| Error::Tls(e.to_owned()))?;
    server_config(vec![cert.der().clone()], key)
}

/// The server configuration from `tls.crt` and `tls.key` in `dir`.
pub fn from_dir(dir: &Path) -> Result<ServerConfig> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| {
            Error::Tls(format!(
                "cannot read {}: {e}; --cert-path must hold {CERT_FILE} and {KEY_FILE} (PEM)",
                path.display()
            ))
        })
    };
    let cert_pem = read(&cert_path)?;
    let key_pem = read(&key_path)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::Tls(format!(
                "{}: not a PEM certificate: {e}",
                cert_path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::Tls(format!(
            "{} holds no CERTIFICATE block",
            cert_path.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        Error::Tls(format!(
            "{}: not a PEM private key: {e}",
            key_path.display()
        ))
    })?;
    server_config(certs, key)
}

fn modified(dir: &Path) -> Option<(SystemTime, SystemTime)> {
    let m = |f: &str| {
        std::fs::metadata(dir.join(f))
            .and_then(|m| m.modified())
            .ok()
    };
    Some((m(CERT_FILE)?, m(KEY_FILE)?))
}

/// The current TLS configuration, reloadable.
pub struct Tls {
    config: ArcSwap<ServerConfig>,
}

impl Tls {
    /// Loads the configuration from `source`; with [`CertSource::Dir`], spawns the reload
    /// poller (stopped by `cancel`).
    pub fn load(source: &CertSource, cancel: &CancellationToken) -> Result<Arc<Self>> {
        let config = match source {
            CertSource::SelfSigned => self_signed()?,
            CertSource::Dir { path, .. } => from_dir(path)?,
        };
        let tls = Arc::new(Self {
            config: ArcSwap::from_pointee(config),
        });
        if let CertSource::Dir {
            path,
            poll: Some(poll),
        } = source
        {
            tokio::spawn(reload(
                Arc::clone(&tls),
                path.clone(),
                *poll,
                cancel.clone(),
            ));
        }
        Ok(tls)
    }

    /// The configuration new connections use.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.config.load_full()
    }

    /// Accepts TCP connections on `listener` and yields them after their TLS handshake.
    pub fn incoming(
        self: Arc<Self>,
        listener: TcpListener,
        cancel: CancellationToken,
    ) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
        let (tx, rx) = tokio::sync::mpsc::channel(ACCEPT_BACKLOG);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = cancel.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let (tcp, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        tracing::warn!(%err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = TlsAcceptor::from(self.current());
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(Ok(stream)).await;
                        }
                        Ok(Err(err)) => tracing::debug!(%peer, %err, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(rx)
    }
}

async fn reload(tls: Arc<Tls>, dir: PathBuf, poll: Duration, cancel: CancellationToken) {
    let mut seen = modified(&dir);
    let mut ticker = tokio::time::interval(poll);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = modified(&dir);
        if now == seen {
            continue;
        }
        // A half-written pair fails to load; the next tick retries with the old one kept.
        match from_dir(&dir) {
            Ok(config) => {
                tls.config.store(Arc::new(config));
                seen = now;
                tracing::info!(dir = %dir.display(), "serving certificate reloaded");
            }
            Err(err) => tracing::warn!(%err, "keeping the previous serving certificate"),
        }
    }
}

#[cfg(test)]
mod tests;
