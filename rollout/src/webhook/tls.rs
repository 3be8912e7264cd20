//! The webhook's serving certificate.
//!
//! Two sources, as the chart decides:
//! - a directory holding `tls.crt` and `tls.key` (a cert-manager Secret mounted as
//!   a volume), polled so a rotation needs no restart;
//! - a pair this process generates: a self-signed CA and a serving certificate
//!   it signs for the webhook Service's DNS names. The CA is what goes into the
//!   ValidatingWebhookConfiguration's `caBundle` ([`super::certs`]).
//!
//! The rustls configuration lives in an `ArcSwap`: each handshake loads the
//! current one, so a reload never blocks a request.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// The certificate chain inside a certificate directory (and a TLS Secret).
pub const CERT_FILE: &str = "tls.crt";
/// The private key inside a certificate directory (and a TLS Secret).
pub const KEY_FILE: &str = "tls.key";
/// The CA certificate in a Secret written by us or by cert-manager.
pub const CA_FILE: &str = "ca.crt";

fn tls_error(message: impl Into<String>) -> Error {
    Error::Tls(message.into())
}

/// A serving certificate, its key and the CA that signed it, all PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificatePair {
    /// The serving certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
    /// The CA certificate clients trust (the `caBundle`).
    pub ca_pem: String,
}

/// Generates a CA and a serving certificate for `dns_names` signed by it.
pub fn generate(dns_names: &[String]) -> Result<CertificatePair> {
    let fail = |e: rcgen::Error| tls_error(format!("generating the webhook certificate: {e}"));
    let ca_key = rcgen::KeyPair::generate().map_err(fail)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "switchyard-rollout webhook CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(fail)?;
    let key = rcgen::KeyPair::generate().map_err(fail)?;
    let mut params = rcgen::CertificateParams::new(dns_names.to_vec()).map_err(fail)?;
    if let Some(first) = dns_names.first() {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, first.as_str());
    }
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca).map_err(fail)?;
    Ok(CertificatePair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        ca_pem: ca.pem(),
    })
}

/// A rustls server configuration from PEM text (HTTP/1.1, which the apiserver speaks).
pub fn server_config(cert_pem: &str, key_pem: &str) -> Result<ServerConfig> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls_error(format!("the certificate is not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(tls_error("the certificate holds no PEM CERTIFICATE block"));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| {
        tls_error(format!(
            "the private key is not PEM (expected one PRIVATE KEY block: PKCS#8, PKCS#1 or SEC1): {e}"
        ))
    })?;
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
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Reads `tls.crt` and `tls.key` from `dir`; errors name the file.
pub fn load_dir(dir: &Path) -> Result<ServerConfig> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| {
            tls_error(format!(
                "cannot read {}: {e} (mount the webhook's TLS Secret there, or leave --webhook-cert-dir unset for a generated certificate)",
                path.display()
            ))
        })
    };
    let (cert, key) = (read(CERT_FILE)?, read(KEY_FILE)?);
    server_config(&cert, &key)
        .map_err(|e| tls_error(format!("{}: {e}", dir.join(CERT_FILE).display())))
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
    /// Serves `config` until replaced.
    pub fn new(config: ServerConfig) -> Arc<Self> {
        Arc::new(Self {
            current: ArcSwap::from_pointee(config),
        })
    }

    /// The configuration for the next handshake.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// Polls `dir` every `poll` until cancelled, swapping in each new valid pair;
    /// a half-written pair keeps the previous certificate (the next change retries).
    pub async fn watch(self: Arc<Self>, dir: PathBuf, poll: Duration, cancel: CancellationToken) {
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
                    tracing::info!(dir = %dir.display(), "webhook certificate reloaded");
                }
                Err(err) => tracing::error!(%err, "keeping the previous webhook certificate"),
            }
        }
    }
}
