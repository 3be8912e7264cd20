//! The real gRPC server in-process (port 0, no Envoy): streams, limits, errors, health,
//! metrics and drain.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions panic on setup failure by design

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::extensions::filters::http::ext_proc::v3::processing_mode::BodySendMode;
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_client::ExternalProcessorClient;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    HttpBody, HttpHeaders, ProcessingRequest, ProcessingResponse, ProtocolConfiguration,
};
use switchyard_bbr::config::RouterConfig;
use switchyard_bbr::server::{self, Options, Running};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

fn any_port() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

async fn start(config: RouterConfig) -> Running {
    server::start(Options {
        config,
        grpc_addr: any_port(),
        health_addr: any_port(),
        metrics_addr: any_port(),
        base_model_file: None,
        config_maps: None,
        drain_timeout: Duration::from_secs(5),
        max_concurrent_streams: 100,
        tls: None,
    })
    .await
    .unwrap()
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn headers(mode: BodySendMode, eos: bool, extra: &[(&str, &str)]) -> ProcessingRequest {
    let mut list = vec![(":method", "POST"), (":path", "/v1/completions")];
    list.extend_from_slice(extra);
    ProcessingRequest {
        protocol_config: Some(ProtocolConfiguration {
            request_body_mode: mode as i32,
            ..ProtocolConfiguration::default()
        }),
        request: Some(Request::RequestHeaders(HttpHeaders {
            headers: Some(HeaderMap {
                headers: list
                    .iter()
                    .map(|(k, v)| HeaderValue {
                        key: k.to_string(),
                        raw_value: v.as_bytes().to_vec(),
                        ..HeaderValue::default()
                    })
                    .collect(),
            }),
            end_of_stream: eos,
            ..HttpHeaders::default()
        })),
        ..ProcessingRequest::default()
    }
}

fn body(bytes: Vec<u8>, eos: bool) -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Request::RequestBody(HttpBody {
            body: bytes,
            end_of_stream: eos,
            ..HttpBody::default()
        })),
        ..ProcessingRequest::default()
    }
}

/// Sends `messages`, then collects every answer until the server ends the stream.
async fn exchange(
    addr: SocketAddr,
    messages: Vec<ProcessingRequest>,
) -> (Vec<ProcessingResponse>, Option<tonic::Status>) {
    let mut client = ExternalProcessorClient::new(channel(addr).await)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024);
    let mut answers = Vec::new();
    let mut inbound = match client.process(futures::stream::iter(messages)).await {
        Ok(response) => response.into_inner(),
        Err(status) => return (answers, Some(status)),
    };
    loop {
        match inbound.message().await {
            Ok(Some(answer)) => answers.push(answer),
            Ok(None) => return (answers, None),
            Err(status) => return (answers, Some(status)),
        }
    }
}

fn set_header(answer: &ProcessingResponse, name: &str) -> Option<String> {
    let common = match &answer.response {
        Some(Response::RequestHeaders(h)) => h.response.as_ref(),
        Some(Response::RequestBody(b)) => b.response.as_ref(),
        _ => None,
    }?;
    common
        .header_mutation
        .as_ref()?
        .set_headers
        .iter()
        .filter_map(|o| o.header.as_ref())
        .find(|h| h.key == name)
        .map(|h| String::from_utf8_lossy(&h.raw_value).into_owned())
}

async fn scrape(addr: SocketAddr) -> String {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: bbr\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).await.unwrap();
    text
}

#[tokio::test]
async fn buffered_request_is_routed_over_grpc() {
    let bbr = start(RouterConfig::default()).await;
    let (answers, status) = exchange(
        bbr.grpc_addr,
        vec![
            headers(
                BodySendMode::Buffered,
                false,
                &[("x-gateway-inference-model", "spoof")],
            ),
            body(br#"{"model":"llama"}"#.to_vec(), true),
        ],
    )
    .await;
    assert!(status.is_none(), "{status:?}");
    assert_eq!(answers.len(), 2);
    assert_eq!(
        set_header(&answers[1], "x-gateway-inference-model").as_deref(),
        Some("llama")
    );
    let metrics = scrape(bbr.metrics_addr).await;
    assert!(
        metrics.contains("bbr_requests_total{outcome=\"routed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bbr_spoofed_headers_removed_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("bbr_success_total 1"), "{metrics}");
    bbr.shutdown().await.unwrap();
}

#[tokio::test]
async fn bodies_past_tonics_default_4_mib_decode_limit_are_accepted() {
    let bbr = start(RouterConfig::default()).await;
    let filler = "x".repeat(5 * 1024 * 1024);
    let big = format!(r#"{{"prompt":"{filler}","model":"big"}}"#).into_bytes();
    let (answers, status) = exchange(
        bbr.grpc_addr,
        vec![headers(BodySendMode::Buffered, false, &[]), body(big, true)],
    )
    .await;
    assert!(status.is_none(), "{status:?}");
    assert_eq!(
        set_header(&answers[1], "x-gateway-inference-model").as_deref(),
        Some("big")
    );
    bbr.shutdown().await.unwrap();
}

#[tokio::test]
async fn full_duplex_chunks_are_echoed_over_grpc() {
    let bbr = start(RouterConfig::default()).await;
    let payload = format!(r#"{{"prompt":"{}","model":"m"}}"#, "y".repeat(200_000)).into_bytes();
    let mut messages = vec![headers(BodySendMode::FullDuplexStreamed, false, &[])];
    let pieces: Vec<Vec<u8>> = payload.chunks(70_000).map(<[u8]>::to_vec).collect();
    let n = pieces.len();
    for (i, piece) in pieces.into_iter().enumerate() {
        messages.push(body(piece, i + 1 == n));
    }
    let (answers, status) = exchange(bbr.grpc_addr, messages).await;
    assert!(status.is_none(), "{status:?}");
    assert_eq!(
        set_header(&answers[0], "x-gateway-inference-model").as_deref(),
        Some("m")
    );
    let echoed: usize = answers[1..]
        .iter()
        .map(|a| match &a.response {
            Some(Response::RequestBody(b)) => match b
                .response
                .as_ref()
                .and_then(|c| c.body_mutation.as_ref())
                .and_then(|m| m.mutation.as_ref())
            {
                Some(envoy_types::pb::envoy::service::ext_proc::v3::body_mutation::Mutation::StreamedResponse(s)) => {
                    assert!(s.body.len() <= 62_000);
                    s.body.len()
                }
                _ => 0,
            },
            _ => 0,
        })
        .sum();
    assert_eq!(echoed, payload.len());
    bbr.shutdown().await.unwrap();
}

#[tokio::test]
async fn protocol_errors_end_the_stream_with_an_error_status_not_a_clean_close() {
    let bbr = start(RouterConfig::default()).await;
    let (answers, status) = exchange(bbr.grpc_addr, vec![body(b"{}".to_vec(), true)]).await;
    assert!(answers.is_empty());
    let status = status.expect("an error status");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("before its headers"),
        "{}",
        status.message()
    );
    // An unusable body mode says what to configure.
    let (_, status) = exchange(
        bbr.grpc_addr,
        vec![headers(BodySendMode::Streamed, false, &[])],
    )
    .await;
    let status = status.expect("an error status");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(
        status.message().contains("FULL_DUPLEX_STREAMED"),
        "{}",
        status.message()
    );
    let metrics = scrape(bbr.metrics_addr).await;
    assert!(
        metrics.contains("bbr_stream_errors_total{kind=\"protocol\"} 1"),
        "{metrics}"
    );
    bbr.shutdown().await.unwrap();
}

/// H5: a message past the decode limit (a BUFFERED body far over `--max-body-bytes`) used to
/// fail the stream, which Envoy answers with a 500; it now gets the 413 with the JSON error
/// and the stream ends cleanly.
#[tokio::test]
async fn h5_a_message_over_the_decode_limit_is_answered_413_not_a_failed_stream() {
    let bbr = start(RouterConfig {
        max_body_bytes: 1000,
        ..RouterConfig::default()
    })
    .await;
    // Past the body limit plus the 1 MiB envelope allowance: tonic refuses to decode it.
    let (answers, status) = exchange(
        bbr.grpc_addr,
        vec![
            headers(BodySendMode::Buffered, false, &[]),
            body(vec![b' '; 2 * 1024 * 1024], true),
        ],
    )
    .await;
    assert!(status.is_none(), "the stream failed: {status:?}");
    let Some(Response::ImmediateResponse(immediate)) =
        answers.last().and_then(|a| a.response.as_ref())
    else {
        panic!("no immediate response: {answers:?}");
    };
    assert_eq!(immediate.status.as_ref().map(|s| s.code), Some(413));
    let json: serde_json::Value = serde_json::from_slice(&immediate.body).unwrap();
    assert_eq!(json["error"]["code"], "request_too_large");
    let metrics = scrape(bbr.metrics_addr).await;
    assert!(
        metrics.contains("bbr_requests_total{outcome=\"rejected_request_too_large\"} 1"),
        "{metrics}"
    );
    bbr.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_is_serving_until_shutdown() {
    let bbr = start(RouterConfig::default()).await;
    let mut health = HealthClient::new(channel(bbr.health_addr).await);
    for service in ["", "envoy.service.ext_proc.v3.ExternalProcessor"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }
    let grpc = bbr.grpc_addr;
    bbr.shutdown().await.unwrap();
    // After the drain the listeners are closed.
    assert!(tokio::net::TcpStream::connect(grpc).await.is_err());
}

#[tokio::test]
async fn a_port_in_use_fails_startup_with_the_address() {
    let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = taken.local_addr().unwrap();
    let err = server::start(Options {
        config: RouterConfig::default(),
        grpc_addr: addr,
        health_addr: any_port(),
        metrics_addr: any_port(),
        base_model_file: None,
        config_maps: None,
        drain_timeout: Duration::from_secs(1),
        max_concurrent_streams: 100,
        tls: None,
    })
    .await
    .err()
    .expect("bind must fail");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

/// H5: `--grpc-max-concurrent-streams` reaches the HTTP/2 settings: with a cap of 2, a third
/// stream on the same connection is not served while two are open (tonic's default was no
/// cap at all), and is served as soon as one ends.
#[tokio::test]
async fn h5_streams_past_max_concurrent_streams_wait_for_a_place() {
    let bbr = server::start(Options {
        max_concurrent_streams: 2,
        ..Options::on_loopback()
    })
    .await
    .unwrap();
    let channel = channel(bbr.grpc_addr).await;
    // Two FULL_DUPLEX requests whose bodies never end: BBR holds their answers, and their
    // streams stay open.
    let mut open = Vec::new();
    for _ in 0..2 {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        tx.unbounded_send(headers(BodySendMode::FullDuplexStreamed, false, &[]))
            .unwrap();
        let mut client = ExternalProcessorClient::new(channel.clone());
        let response = client.process(rx).await.unwrap();
        open.push((tx, response));
    }
    // A body-less request is answered at once, unless it cannot get a stream.
    let third = {
        let channel = channel.clone();
        tokio::spawn(async move {
            let mut client = ExternalProcessorClient::new(channel);
            let messages = futures::stream::iter([headers(BodySendMode::Buffered, true, &[])]);
            let mut answers = client.process(messages).await.unwrap().into_inner();
            answers.message().await.unwrap().is_some()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !third.is_finished(),
        "a third stream was served past the cap of 2"
    );
    // One of the two ends: its place goes to the third.
    drop(open.pop());
    let answered = tokio::time::timeout(Duration::from_secs(5), third).await;
    assert!(matches!(answered, Ok(Ok(true))), "{answered:?}");
    drop(open);
    bbr.shutdown().await.unwrap();
}

/// H7: on shutdown health turns NOT_SERVING at once, yet the ext_proc port keeps serving
/// through the grace: a stream opened during the grace completes, and so does one opened
/// before it that ends after the listeners stopped. Only then is the port closed.
#[tokio::test]
async fn h7_streams_opened_during_the_grace_period_still_complete() {
    let bbr = start(RouterConfig::default())
        .await
        .with_drain_grace(Duration::from_millis(800));
    let (grpc, health_addr) = (bbr.grpc_addr, bbr.health_addr);
    let mut health = HealthClient::new(channel(health_addr).await);
    // A FULL_DUPLEX request in flight: its body ends only after the listeners stop.
    let (early_tx, early_rx) = futures::channel::mpsc::unbounded();
    early_tx
        .unbounded_send(headers(BodySendMode::FullDuplexStreamed, false, &[]))
        .unwrap();
    let mut early = ExternalProcessorClient::new(channel(grpc).await)
        .process(early_rx)
        .await
        .unwrap()
        .into_inner();

    let draining = tokio::spawn(bbr.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::NotServing, "health flips first");

    // A new client during the grace: a fresh connection, served in full.
    let (answers, failed) = exchange(
        grpc,
        vec![
            headers(BodySendMode::Buffered, false, &[]),
            body(br#"{"model":"m"}"#.to_vec(), true),
        ],
    )
    .await;
    assert!(failed.is_none(), "{failed:?}");
    assert_eq!(
        answers.len(),
        2,
        "headers and body answered during the grace"
    );

    // Past the grace the port is closed to new clients...
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let refused = tokio::net::TcpStream::connect(grpc).await;
    assert!(refused.is_err(), "still accepting after the grace");
    // ...while the early stream still finishes.
    early_tx
        .unbounded_send(body(br#"{"model":"m"}"#.to_vec(), true))
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), early.message()).await;
    assert!(matches!(answer, Ok(Ok(Some(_)))), "{answer:?}");
    drop(early_tx);
    draining.await.unwrap().unwrap();
}
