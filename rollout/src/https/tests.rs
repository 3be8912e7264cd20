//! M8: a silent or idle client is dropped, and connections past the cap wait.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use switchyard_runtime::tls::{AcceptLimits, Alpn, Certificates, generate_ca_signed};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_util::sync::CancellationToken;

use super::{HttpsLimits, serve};

const SHORT: Duration = Duration::from_millis(300);

/// Starts a server with `limits`; returns its address and a connector trusting it.
async fn start(limits: HttpsLimits) -> (std::net::SocketAddr, TlsConnector, CancellationToken) {
    let pair = generate_ca_signed("test CA", &["localhost".to_owned()]).unwrap();
    let config =
        switchyard_runtime::tls::server_config_from_pem(&pair.cert_pem, &pair.key_pem, Alpn::Http1)
            .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let router = Router::new().route("/healthz", get(|| async { "ok" }));
    tokio::spawn(serve(
        listener,
        Certificates::new(config),
        router,
        limits,
        cancel.clone(),
    ));
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pair.ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (addr, TlsConnector::from(Arc::new(config)), cancel)
}

async fn connect(addr: std::net::SocketAddr, connector: &TlsConnector) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

/// Whether the server closes `stream` within `within` (end of file or reset).
async fn closed_within(stream: &mut TlsStream<TcpStream>, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

fn limits(max_connections: usize) -> HttpsLimits {
    HttpsLimits {
        accept: AcceptLimits {
            handshake_timeout: SHORT,
            max_connections,
        },
        header_read_timeout: SHORT,
    }
}

#[tokio::test]
async fn m8_a_client_that_never_sends_its_headers_is_dropped() {
    let (addr, connector, cancel) = start(limits(16)).await;
    let mut silent = connect(addr, &connector).await;
    silent
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(closed_within(&mut silent, SHORT * 4).await);
    cancel.cancel();
}

#[tokio::test]
async fn m8_an_idle_kept_alive_connection_is_dropped() {
    let (addr, connector, cancel) = start(limits(16)).await;
    let mut client = connect(addr, &connector).await;
    client
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = client.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Kept alive, then silent: closed after the header-read timeout.
    assert!(closed_within(&mut client, SHORT * 4).await);
    cancel.cancel();
}

#[tokio::test]
async fn m8_connections_past_the_cap_wait_until_one_closes() {
    let (addr, connector, cancel) = start(limits(2)).await;
    let first = connect(addr, &connector).await;
    let _second = connect(addr, &connector).await;
    // The third's handshake is not even started while two are open.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let third = connector.connect(name, tcp);
    let mut third = std::pin::pin!(third);
    assert!(
        tokio::time::timeout(SHORT / 3, &mut third).await.is_err(),
        "a third connection was served past the cap of 2"
    );
    drop(first);
    assert!(
        tokio::time::timeout(SHORT * 3, third)
            .await
            .is_ok_and(|r| r.is_ok())
    );
    cancel.cancel();
}
