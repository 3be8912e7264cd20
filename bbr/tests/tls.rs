//! `--secure-serving` with a real TLS gRPC client (tonic over rustls) on loopback: a request
//! routed over TLS with a certificate from `--cert-path`, a rotation of that certificate picked
//! up without a restart, and plaintext refused.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions panic on setup failure by design

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::extensions::filters::http::ext_proc::v3::processing_mode::BodySendMode;
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_client::ExternalProcessorClient;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    HttpBody, HttpHeaders, ProcessingRequest, ProtocolConfiguration,
};
use switchyard_bbr::config::RouterConfig;
use switchyard_bbr::server::tls::{CERT_FILE, CertSource, KEY_FILE};
use switchyard_bbr::server::{self, Options, Running};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

fn any_port() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// Writes a fresh certificate for `localhost` into `dir`; returns its PEM (the client's CA).
fn write_pair(dir: &Path) -> String {
    // A certificate made outside the runtime, as an operator's would be.
    #[allow(
        clippy::disallowed_methods,
        reason = "the test needs a foreign certificate"
    )]
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    // The key first: a poll between the two writes sees a mismatched pair, which is refused.
    std::fs::write(dir.join(KEY_FILE), pair.signing_key.serialize_pem()).unwrap();
    std::fs::write(dir.join(CERT_FILE), pair.cert.pem()).unwrap();
    pair.cert.pem()
}

async fn start(tls: CertSource) -> Running {
    server::start(Options {
        config: RouterConfig::default(),
        grpc_addr: any_port(),
        health_addr: any_port(),
        metrics_addr: any_port(),
        base_model_file: None,
        config_maps: None,
        drain_timeout: Duration::from_secs(5),
        max_concurrent_streams: 100,
        tls: Some(tls),
    })
    .await
    .unwrap()
}

async fn tls_channel(addr: SocketAddr, ca_pem: &str) -> Result<Channel, tonic::transport::Error> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

fn buffered_request(model: &str) -> Vec<ProcessingRequest> {
    let header = |k: &str, v: &str| HeaderValue {
        key: k.into(),
        raw_value: v.as_bytes().to_vec(),
        ..HeaderValue::default()
    };
    vec![
        ProcessingRequest {
            protocol_config: Some(ProtocolConfiguration {
                request_body_mode: BodySendMode::Buffered as i32,
                ..ProtocolConfiguration::default()
            }),
            request: Some(Request::RequestHeaders(HttpHeaders {
                headers: Some(HeaderMap {
                    headers: vec![header(":method", "POST"), header(":path", "/v1/chat")],
                }),
                ..HttpHeaders::default()
            })),
            ..ProcessingRequest::default()
        },
        ProcessingRequest {
            request: Some(Request::RequestBody(HttpBody {
                body: format!(r#"{{"model":"{model}","messages":[]}}"#).into_bytes(),
                end_of_stream: true,
                ..HttpBody::default()
            })),
            ..ProcessingRequest::default()
        },
    ]
}

/// Routes one BUFFERED request over `channel`; returns the model header BBR set.
async fn route(channel: Channel, model: &str) -> String {
    let mut client = ExternalProcessorClient::new(channel);
    let mut answers = client
        .process(futures::stream::iter(buffered_request(model)))
        .await
        .unwrap()
        .into_inner();
    let mut set = None;
    while let Some(answer) = answers.message().await.unwrap() {
        if let Some(Response::RequestBody(body)) = answer.response {
            set = body
                .response
                .and_then(|common| common.header_mutation)
                .and_then(|m| m.set_headers.into_iter().find_map(|o| o.header))
                .filter(|h| h.key == "x-gateway-inference-model")
                .map(|h| String::from_utf8_lossy(&h.raw_value).into_owned());
            break;
        }
    }
    set.expect("no routing header in the body answer")
}

#[tokio::test]
async fn cert_path_serves_tls_and_picks_up_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_pair(dir.path());
    let bbr = start(CertSource::Dir {
        path: dir.path().to_path_buf(),
        poll: Some(Duration::from_millis(20)),
    })
    .await;
    let addr = bbr.grpc_addr;

    let channel = tls_channel(addr, &first).await.unwrap();
    assert_eq!(route(channel, "llama").await, "llama");

    // A plaintext HTTP/2 client gets no answer from the TLS listener.
    let plain = tokio::time::timeout(Duration::from_secs(5), async {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .ok()?;
        ExternalProcessorClient::new(channel)
            .process(futures::stream::iter(buffered_request("llama")))
            .await
            .ok()
    })
    .await;
    assert!(!matches!(plain, Ok(Some(_))), "plaintext was served");

    // Rotate: new connections present the new certificate, trusted only by its own CA.
    let second = write_pair(dir.path());
    let mut rotated = false;
    for _ in 0..250 {
        if let Ok(channel) = tls_channel(addr, &second).await {
            assert_eq!(route(channel, "mistral").await, "mistral");
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(rotated, "the rotated certificate was never served");
    assert!(
        tls_channel(addr, &first).await.is_err(),
        "the old certificate is still served"
    );
    bbr.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_broken_cert_path_stops_startup_with_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let err = server::start(Options {
        config: RouterConfig::default(),
        grpc_addr: any_port(),
        health_addr: any_port(),
        metrics_addr: any_port(),
        base_model_file: None,
        config_maps: None,
        drain_timeout: Duration::from_secs(1),
        max_concurrent_streams: 100,
        tls: Some(CertSource::Dir {
            path: dir.path().to_path_buf(),
            poll: Some(Duration::from_secs(1)),
        }),
    })
    .await
    .err()
    .expect("startup must fail without tls.crt");
    assert!(err.to_string().contains(CERT_FILE), "{err}");
}
