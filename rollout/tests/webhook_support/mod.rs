//! The webhook served for real on loopback HTTPS, and a client that verifies
//! its certificate against the generated CA, as the apiserver does with the
//! caBundle.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use switchyard_check::admission::Config;
use switchyard_check::{Objects, Scope, objects_of, parse_documents};
use switchyard_rollout::webhook::server::{WebhookState, router, serve};
use switchyard_rollout::webhook::tls::{Certificates, generate, server_config};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_util::sync::CancellationToken;

/// A running webhook and a client that trusts its CA.
pub struct Served {
    pub address: SocketAddr,
    connector: TlsConnector,
    /// The name the certificate must carry (the apiserver uses the Service's).
    pub server_name: String,
    _stop: tokio_util::sync::DropGuard,
}

/// Serves the webhook with `objects` and `config` on an ephemeral loopback port.
pub async fn serve_webhook(objects: Objects, config: Config) -> Served {
    let pair = generate(&["localhost".to_owned()]).unwrap();
    let certificates = Certificates::new(server_config(&pair.cert_pem, &pair.key_pem).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let state = WebhookState {
        view: Arc::new(objects),
        config: Arc::new(config),
        access: None,
    };
    tokio::spawn(serve(listener, certificates, router(state), cancel.clone()));
    Served::trusting(address, &pair.ca_pem, cancel)
}

impl Served {
    /// A client of the webhook at `address` that trusts only `ca_pem`; dropping it
    /// cancels `stop`.
    pub fn trusting(address: SocketAddr, ca_pem: &str, stop: CancellationToken) -> Self {
        let mut roots = RootCertStore::empty();
        let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap();
        roots.add(ca).unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Served {
            address,
            connector: TlsConnector::from(Arc::new(client)),
            server_name: "localhost".to_owned(),
            _stop: stop.drop_guard(),
        }
    }

    /// POSTs `body` to `path` over verified TLS; the status and the body.
    pub async fn post(&self, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
        let tcp = TcpStream::connect(self.address).await.unwrap();
        let name = ServerName::try_from(self.server_name.as_str())
            .unwrap()
            .to_owned();
        let tls = self.connector.connect(name, tcp).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(connection);
        let request = hyper::Request::post(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
    }

    /// POSTs an AdmissionReview and returns the review answered.
    pub async fn review(&self, review: &Value) -> Value {
        let (status, body) = self
            .post("/validate", serde_json::to_vec(review).unwrap())
            .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }
}

/// The objects of a manifest file, as the webhook's watches would see them.
pub fn cluster_of(path: &str) -> Objects {
    let text = std::fs::read_to_string(path).unwrap();
    let documents = parse_documents(path, &text).unwrap();
    Objects {
        scope: Scope::Cluster,
        ..objects_of(&documents)
    }
}
