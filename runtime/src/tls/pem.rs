//! From PEM text to a rustls server configuration, with errors that name the file and what
//! it should hold.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{Alpn, CERT_FILE, KEY_FILE};
use crate::error::{Error, Result};

/// A server configuration for one chain and key, offering `alpn`.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpn: Alpn,
) -> Result<ServerConfig> {
    // The provider is named (not the process default) so no binary depends on which crypto
    // provider another dependency happened to install first.
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            Error::Tls(format!(
                "the certificate and key do not match or are unusable: {e}"
            ))
        })?;
    config.alpn_protocols = alpn.protocols();
    Ok(config)
}

/// A server configuration from PEM text; `cert_name` and `key_name` say where each came from
/// (a path, or "the certificate") in errors.
pub fn parse_pair(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_name: &str,
    key_name: &str,
    alpn: Alpn,
) -> Result<ServerConfig> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::Tls(format!(
                "{cert_name} is not PEM (expected CERTIFICATE blocks): {e}"
            ))
        })?;
    if chain.is_empty() {
        return Err(Error::Tls(format!(
            "{cert_name} holds no PEM CERTIFICATE block"
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
        Error::Tls(format!(
            "{key_name}: not a private key (expected one PEM PRIVATE KEY block: PKCS#8, \
             PKCS#1 or SEC1): {e}"
        ))
    })?;
    server_config(chain, key, alpn)
}

/// A server configuration from a certificate and key in PEM text (a Secret's data).
pub fn server_config_from_pem(cert_pem: &str, key_pem: &str, alpn: Alpn) -> Result<ServerConfig> {
    parse_pair(
        cert_pem.as_bytes(),
        key_pem.as_bytes(),
        "the certificate",
        "the private key",
        alpn,
    )
}

/// Reads `tls.crt` and `tls.key` from `dir` as bytes (no parsing).
pub(super) fn read_pair(dir: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|e| {
            Error::Tls(format!(
                "cannot read {}: {e} (the directory must hold {CERT_FILE} and {KEY_FILE}, PEM)",
                path.display()
            ))
        })
    };
    Ok((read(CERT_FILE)?, read(KEY_FILE)?))
}

/// Parses a pair read from `dir`.
pub(super) fn parse_dir_pair(
    dir: &Path,
    cert: &[u8],
    key: &[u8],
    alpn: Alpn,
) -> Result<ServerConfig> {
    let cert_name = dir.join(CERT_FILE).display().to_string();
    let key_name = dir.join(KEY_FILE).display().to_string();
    parse_pair(cert, key, &cert_name, &key_name, alpn)
}

/// The server configuration from `tls.crt` and `tls.key` in `dir`.
pub fn load_dir(dir: &Path, alpn: Alpn) -> Result<ServerConfig> {
    let (cert, key) = read_pair(dir)?;
    parse_dir_pair(dir, &cert, &key, alpn)
}
