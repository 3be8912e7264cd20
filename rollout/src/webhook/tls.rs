//! The webhook's serving certificate.
//!
//! Two sources, as the chart decides:
//! - a directory holding `tls.crt` and `tls.key` (a cert-manager Secret mounted as
//!   a volume), re-read so a rotation needs no restart;
//! - a pair this process generates: a self-signed CA and a serving certificate
//!   it signs for the webhook Service's DNS names. The CA is what goes into the
//!   ValidatingWebhookConfiguration's `caBundle` ([`super::certs`]).
//!
//! Loading, reload and generation are the workspace's one copy in
//! [`switchyard_runtime::tls`]; this module fixes the webhook's choices (ALPN
//! `http/1.1`, which the apiserver speaks; the CA's name) and its error wording.

use std::path::Path;
use std::sync::Arc;

use switchyard_runtime::tls::{self as runtime_tls, Alpn, CertSource};
use tokio_rustls::rustls::ServerConfig;

pub use switchyard_runtime::tls::{CA_FILE, CERT_FILE, CertificatePair, Certificates, KEY_FILE};

use crate::error::{Error, Result};

/// The apiserver calls webhooks over HTTP/1.1.
pub const ALPN: Alpn = Alpn::Http1;
/// The common name of a generated CA.
const CA_NAME: &str = "switchyard-rollout webhook CA";

fn tls_error(err: switchyard_runtime::Error) -> Error {
    Error::Tls(err.to_string())
}

/// Generates a CA and a serving certificate for `dns_names` signed by it.
pub fn generate(dns_names: &[String]) -> Result<CertificatePair> {
    runtime_tls::generate_ca_signed(CA_NAME, dns_names).map_err(tls_error)
}

/// A rustls server configuration from PEM text (HTTP/1.1).
pub fn server_config(cert_pem: &str, key_pem: &str) -> Result<ServerConfig> {
    runtime_tls::server_config_from_pem(cert_pem, key_pem, ALPN).map_err(tls_error)
}

fn cert_dir_error(err: switchyard_runtime::Error) -> Error {
    Error::Tls(format!(
        "{err} (mount the webhook's TLS Secret in --webhook-cert-dir, or leave it unset for a generated certificate)"
    ))
}

/// Reads `tls.crt` and `tls.key` from `dir`; errors name the file.
pub fn load_dir(dir: &Path) -> Result<ServerConfig> {
    runtime_tls::load_dir(dir, ALPN).map_err(cert_dir_error)
}

/// The pair in `dir`, remembered as loaded so [`Certificates::watch`] reloads only when the
/// files' content changes.
pub fn load_certificates(dir: &Path) -> Result<Arc<Certificates>> {
    let source = CertSource::Dir {
        path: dir.to_owned(),
        poll: None,
    };
    Certificates::load(&source, ALPN).map_err(cert_dir_error)
}
