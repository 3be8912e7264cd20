//! The certificate loader and the accept loop, with real files in temporary directories and
//! real handshakes (over in-memory pipes, or loopback sockets for the accept loop).

mod accept;
mod reload;

use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::*;

/// A CA and a `localhost` certificate it signed.
fn pair(ca_name: &str) -> CertificatePair {
    generate_ca_signed(ca_name, &["localhost".to_owned()]).unwrap()
}

fn write_pair(dir: &Path, pair: &CertificatePair) {
    std::fs::write(dir.join(CERT_FILE), &pair.cert_pem).unwrap();
    std::fs::write(dir.join(KEY_FILE), &pair.key_pem).unwrap();
}

/// A client that trusts only `ca_pem` and offers `alpn`.
fn client(ca_pem: &str, alpn: Alpn) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.protocols();
    TlsConnector::from(Arc::new(config))
}

/// Whether a client trusting only `ca_pem` completes a handshake with `certificates` (run over
/// an in-memory pipe): the served certificate is the one `ca_pem` signed.
async fn served_by(certificates: &Certificates, ca_pem: &str) -> bool {
    let (client_side, server_side) = tokio::io::duplex(64 * 1024);
    let server = certificates.acceptor().accept(server_side);
    let client = client(ca_pem, Alpn::H2).connect(localhost(), client_side);
    let (server, client) = tokio::join!(server, client);
    server.is_ok() && client.is_ok()
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

/// Completes a client handshake on `io`; the agreed ALPN protocol on success.
async fn handshake<IO>(io: IO, ca_pem: &str, alpn: Alpn) -> std::io::Result<Option<Vec<u8>>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let tls = client(ca_pem, alpn).connect(localhost(), io).await?;
    Ok(tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec))
}

#[test]
fn a_self_signed_certificate_offers_the_asked_protocols() {
    assert_eq!(
        self_signed(Alpn::H2).unwrap().alpn_protocols,
        [b"h2".to_vec()]
    );
    assert_eq!(
        self_signed(Alpn::H2AndHttp1).unwrap().alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
}

#[test]
fn a_valid_directory_loads_with_the_asked_protocols() {
    let dir = tempfile::tempdir().unwrap();
    write_pair(dir.path(), &pair("a"));
    let config = load_dir(dir.path(), Alpn::Http1).unwrap();
    assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
}

#[test]
fn missing_or_broken_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_dir(dir.path(), Alpn::H2).unwrap_err().to_string();
    assert!(
        err.contains(CERT_FILE) && err.contains("cannot read"),
        "{err}"
    );

    write_pair(dir.path(), &pair("a"));
    std::fs::write(dir.path().join(KEY_FILE), "not a key").unwrap();
    let err = load_dir(dir.path(), Alpn::H2).unwrap_err().to_string();
    assert!(
        err.contains(KEY_FILE) && err.contains("PRIVATE KEY"),
        "{err}"
    );

    std::fs::write(dir.path().join(CERT_FILE), "").unwrap();
    let err = load_dir(dir.path(), Alpn::H2).unwrap_err().to_string();
    assert!(
        err.contains(CERT_FILE) && err.contains("no PEM CERTIFICATE"),
        "{err}"
    );
}

#[test]
fn a_key_from_another_pair_is_refused() {
    let (one, other) = (pair("one"), pair("other"));
    let err = server_config_from_pem(&one.cert_pem, &other.key_pem, Alpn::H2)
        .unwrap_err()
        .to_string();
    assert!(err.contains("do not match"), "{err}");
    let err = server_config_from_pem("", &one.key_pem, Alpn::H2)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no PEM CERTIFICATE"), "{err}");
}

#[tokio::test]
async fn a_generated_pair_is_trusted_through_its_ca_only() {
    let (one, other) = (pair("one"), pair("other"));
    assert!(one.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_ne!(one.ca_pem, one.cert_pem);
    let config = server_config_from_pem(&one.cert_pem, &one.key_pem, Alpn::H2).unwrap();
    let certificates = Certificates::new(config);
    assert!(served_by(&certificates, &one.ca_pem).await);
    assert!(!served_by(&certificates, &other.ca_pem).await);
}
