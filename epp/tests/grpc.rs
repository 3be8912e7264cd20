//! The real gRPC server in-process (port 0, no Envoy): a full-duplex exchange, the body cap,
//! protocol errors as error statuses, health names, TLS, metrics and drain.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use envoy_types::pb::envoy::service::ext_proc::v3::ProcessingResponse;
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_client::ExternalProcessorClient;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response;
use envoy_types::pb::google::protobuf::value::Kind;
use switchyard_epp::server::tls::{CERT_FILE, CertSource, KEY_FILE};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const CHAT: &[u8] = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// An open ext_proc stream: a sender of requests and the stream of answers.
struct Exchange {
    tx: mpsc::Sender<envoy_types::pb::envoy::service::ext_proc::v3::ProcessingRequest>,
    rx: Streaming<ProcessingResponse>,
}

impl Exchange {
    async fn open(channel: Channel) -> Self {
        let (tx, requests) = mpsc::channel(16);
        let rx = ExternalProcessorClient::new(channel)
            .process(ReceiverStream::new(requests))
            .await
            .unwrap()
            .into_inner();
        Self { tx, rx }
    }

    async fn send(
        &self,
        request: envoy_types::pb::envoy::service::ext_proc::v3::ProcessingRequest,
    ) {
        self.tx.send(request).await.unwrap();
    }

    async fn next(&mut self) -> Result<Option<ProcessingResponse>, tonic::Status> {
        tokio::time::timeout(Duration::from_secs(5), self.rx.message())
            .await
            .expect("no answer within 5 s")
    }
}

fn destination(response: &ProcessingResponse) -> (String, String) {
    let Some(Response::RequestHeaders(headers)) = &response.response else {
        panic!("expected request headers, got {response:?}");
    };
    let common = headers.response.as_ref().unwrap();
    assert!(common.clear_route_cache);
    let header = common
        .header_mutation
        .as_ref()
        .unwrap()
        .set_headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key == "x-gateway-destination-endpoint")
        .unwrap();
    let lb = &response.dynamic_metadata.as_ref().unwrap().fields["envoy.lb"];
    let Some(Kind::StructValue(lb)) = &lb.kind else {
        panic!("{lb:?}")
    };
    let Some(Kind::StringValue(meta)) = &lb.fields["x-gateway-destination-endpoint"].kind else {
        panic!("{lb:?}")
    };
    (
        String::from_utf8(header.raw_value.clone()).unwrap(),
        meta.clone(),
    )
}

#[tokio::test]
async fn a_full_duplex_exchange_routes_and_passes_the_response_through() {
    let backends: Vec<SocketAddr> = vec![
        "10.0.0.1:8000".parse().unwrap(),
        "10.0.0.2:8000".parse().unwrap(),
    ];
    let file = endpoints_file("pool", &backends, "");
    let epp = EppSetup::new(file.path().to_owned()).start().await;
    let channel = channel(epp.grpc_addr).await;
    // The first state is applied asynchronously; health says when.
    wait_ready(epp.health_addr).await;
    let mut x = Exchange::open(channel).await;
    x.send(request_headers(
        "/v1/chat/completions",
        false,
        &[("x-gateway-destination-endpoint", "6.6.6.6:1")],
    ))
    .await;
    x.send(request_body(&CHAT[..10], false)).await;
    x.send(request_body(&CHAT[10..], true)).await;
    let routed = x.next().await.unwrap().unwrap();
    let (header, meta) = destination(&routed);
    assert_eq!(header, meta, "header and metadata agree");
    assert!(
        backends.iter().any(|b| b.to_string() == header),
        "{header} is a member"
    );
    let Some(Response::RequestBody(body)) = x.next().await.unwrap().unwrap().response else {
        panic!("expected the body")
    };
    let body = body
        .response
        .unwrap()
        .body_mutation
        .unwrap()
        .mutation
        .unwrap();
    let envoy_types::pb::envoy::service::ext_proc::v3::body_mutation::Mutation::StreamedResponse(
        streamed,
    ) = body
    else {
        panic!("not streamed")
    };
    assert_eq!(streamed.body, CHAT);
    assert!(streamed.end_of_stream);
    x.send(response_headers("200", "text/event-stream", false))
        .await;
    assert!(matches!(
        x.next().await.unwrap().unwrap().response,
        Some(Response::ResponseHeaders(_))
    ));
    // The usage event (stream_options.include_usage) comes split across two chunks.
    x.send(response_body(
        b"data: {\"model\":\"m\"}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tok",
        false,
    ))
    .await;
    assert!(matches!(
        x.next().await.unwrap().unwrap().response,
        Some(Response::ResponseBody(_))
    ));
    x.send(response_body(
        b"ens\":7,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n",
        false,
    ))
    .await;
    assert!(matches!(
        x.next().await.unwrap().unwrap().response,
        Some(Response::ResponseBody(_))
    ));
    x.send(response_trailers()).await;
    assert!(matches!(
        x.next().await.unwrap().unwrap().response,
        Some(Response::ResponseTrailers(_))
    ));
    // The request is complete: the server ends the stream cleanly.
    assert!(x.next().await.unwrap().is_none());

    let metrics = reqwest_metrics(epp.metrics_addr).await;
    assert!(metrics.contains("inference_objective_request_total{model_name=\"m\",target_model_name=\"m\",priority=\"0\"} 1"), "{metrics}");
    assert!(
        metrics.contains("inference_objective_running_requests{model_name=\"m\"} 0"),
        "{metrics}"
    );
    // Token usage read from the SSE usage event.
    for line in [
        "inference_objective_input_tokens_sum{model_name=\"m\",target_model_name=\"m\"} 7.0",
        "inference_objective_output_tokens_sum{model_name=\"m\",target_model_name=\"m\"} 3.0",
        "inference_objective_prompt_cached_tokens_count{model_name=\"m\",target_model_name=\"m\"} 0",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    assert!(
        metrics.contains("inference_pool_ready_pods{name=\"pool\"} 2"),
        "{metrics}"
    );
    epp.shutdown().await.unwrap();
}

async fn reqwest_metrics(addr: SocketAddr) -> String {
    let client = switchyard_conformance::client::HttpClient::new();
    let response = client
        .get(&format!("http://{addr}/metrics"), &[])
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    response.text()
}

async fn health(addr: SocketAddr, service: &str) -> ServingStatus {
    let mut client = HealthClient::new(channel(addr).await);
    let status = client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    ServingStatus::try_from(status).unwrap()
}

async fn wait_ready(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while health(addr, "readiness").await != ServingStatus::Serving {
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn errors_end_the_stream_with_a_status_or_a_local_reply() {
    let file = endpoints_file("pool", &["10.0.0.1:8000".parse().unwrap()], "");
    let mut setup = EppSetup::new(file.path().to_owned());
    setup.max_body_bytes = 100;
    let epp = setup.start().await;
    wait_ready(epp.health_addr).await;
    let channel = channel(epp.grpc_addr).await;

    // Out of order: an error status, never a clean close (which would let Envoy forward the
    // request unrouted).
    let mut x = Exchange::open(channel.clone()).await;
    x.send(response_body(b"x", true)).await;
    let status = x.next().await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(status.message().contains("processing_mode"), "{status:?}");

    // Over the body cap: a local 413 with an OpenAI-style body.
    let mut x = Exchange::open(channel.clone()).await;
    x.send(request_headers("/v1/completions", false, &[])).await;
    x.send(request_body(&[b' '; 101], false)).await;
    let Some(Response::ImmediateResponse(reply)) = x.next().await.unwrap().unwrap().response else {
        panic!("expected a local reply")
    };
    assert_eq!(reply.status.unwrap().code, 413);
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-body-bytes"),
        "{body}"
    );

    // A bad body: 400.
    let mut x = Exchange::open(channel.clone()).await;
    x.send(request_headers("/v1/completions", false, &[])).await;
    x.send(request_body(b"{not json", true)).await;
    let Some(Response::ImmediateResponse(reply)) = x.next().await.unwrap().unwrap().response else {
        panic!("expected a local reply")
    };
    assert_eq!(reply.status.unwrap().code, 400);
    epp.shutdown().await.unwrap();
}

/// BUFFERED mode sends a body as one message, as large as Envoy's buffer allows: one over
/// the decode limit (`--max-body-bytes` + 1 MiB) gets the same 413 and JSON error body as a
/// streamed body over the limit, never a stream error (which Envoy turns into a 500).
#[tokio::test]
async fn h5_a_body_message_over_the_decode_limit_gets_413_not_a_stream_error() {
    let file = endpoints_file("pool", &["10.0.0.1:8000".parse().unwrap()], "");
    let mut setup = EppSetup::new(file.path().to_owned());
    setup.max_body_bytes = 100;
    let epp = setup.start().await;
    wait_ready(epp.health_addr).await;
    let mut x = Exchange::open(channel(epp.grpc_addr).await).await;
    x.send(request_headers("/v1/completions", false, &[])).await;
    x.send(request_body(&vec![b' '; (1 << 20) + 200], true))
        .await;
    let answer = x.next().await.expect("an answer, not a stream error");
    let Some(Response::ImmediateResponse(reply)) = answer.unwrap().response else {
        panic!("expected a local reply")
    };
    assert_eq!(reply.status.unwrap().code, 413);
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-body-bytes"),
        "{body}"
    );
    epp.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_names_report_sync_and_drain() {
    let file = endpoints_file("pool", &[], "");
    let epp = EppSetup::new(file.path().to_owned()).start().await;
    wait_ready(epp.health_addr).await;
    for name in [
        "liveness",
        "readiness",
        "",
        "envoy.service.ext_proc.v3.ExternalProcessor",
    ] {
        assert_eq!(
            health(epp.health_addr, name).await,
            ServingStatus::Serving,
            "{name}"
        );
    }
    let readiness = epp.readiness();
    let health_addr = epp.health_addr;
    let started = tokio::time::Instant::now();
    epp.shutdown().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "drain waits only for streams"
    );
    assert!(!readiness.is_ready());
    // The health listener is closed after the drain.
    assert!(
        Channel::from_shared(format!("http://{health_addr}"))
            .unwrap()
            .connect()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_in_flight_stream_finishes_during_drain() {
    let file = endpoints_file("pool", &["10.0.0.1:8000".parse().unwrap()], "");
    let epp = EppSetup::new(file.path().to_owned()).start().await;
    wait_ready(epp.health_addr).await;
    let mut x = Exchange::open(channel(epp.grpc_addr).await).await;
    x.send(request_headers("/v1/completions", false, &[])).await;
    x.send(request_body(br#"{"model":"m","prompt":"p"}"#, true))
        .await;
    destination(&x.next().await.unwrap().unwrap());
    x.next().await.unwrap().unwrap();
    let drain = tokio::spawn(epp.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!drain.is_finished(), "the drain waits for the open stream");
    x.send(response_headers("200", "application/json", false))
        .await;
    x.next().await.unwrap().unwrap();
    x.send(response_body(b"{}", true)).await;
    x.next().await.unwrap().unwrap();
    assert!(x.next().await.unwrap().is_none());
    drop(x);
    tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn secure_serving_with_cert_path() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.path().join(CERT_FILE), cert.pem()).unwrap();
    std::fs::write(dir.path().join(KEY_FILE), key.serialize_pem()).unwrap();
    let file = endpoints_file("pool", &["10.0.0.1:8000".parse().unwrap()], "");
    let mut setup = EppSetup::new(file.path().to_owned());
    setup.tls = Some(CertSource::Dir {
        path: dir.path().to_owned(),
        poll: None,
    });
    let epp = setup.start().await;
    wait_ready(epp.health_addr).await;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(cert.pem()))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{}", epp.grpc_addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut x = Exchange::open(channel).await;
    x.send(request_headers("/v1/completions", false, &[])).await;
    x.send(request_body(br#"{"model":"m","prompt":"p"}"#, true))
        .await;
    let (header, _) = destination(&x.next().await.unwrap().unwrap());
    assert_eq!(header, "10.0.0.1:8000");
    // Ending the request lets the drain below finish at once.
    drop(x);
    // Plaintext gRPC to the TLS port fails.
    let plain = Channel::from_shared(format!("http://{}", epp.grpc_addr))
        .unwrap()
        .connect()
        .await;
    if let Ok(plain) = plain {
        let (_tx, requests) = mpsc::channel(1);
        let result = ExternalProcessorClient::new(plain)
            .process(ReceiverStream::<
                envoy_types::pb::envoy::service::ext_proc::v3::ProcessingRequest,
            >::new(requests))
            .await;
        assert!(result.is_err());
    }
    epp.shutdown().await.unwrap();
}

#[tokio::test]
async fn flow_control_expires_a_queued_request_and_withdraws_a_disconnected_one() {
    use switchyard_epp::flow::{FlowControlConfig, Outcome};
    // Never-scraped endpoints count as saturated, so priority-0 requests wait in the queue.
    let file = endpoints_file("pool", &["10.0.0.1:8000".parse().unwrap()], "");
    let mut setup = EppSetup::new(file.path().to_owned());
    setup.flow_control = FlowControlConfig::from_yaml(
        "featureGates: [flowControl]\nflowControl: {defaultRequestTTL: 300ms}\n",
    )
    .unwrap();
    let epp = setup.start().await;
    wait_ready(epp.health_addr).await;
    let channel = channel(epp.grpc_addr).await;
    let metrics = epp.flow_metrics().expect("flow control is enabled");

    let mut x = Exchange::open(channel.clone()).await;
    x.send(request_headers("/v1/chat/completions", false, &[]))
        .await;
    x.send(request_body(CHAT, true)).await;
    let Some(Response::ImmediateResponse(reply)) = x.next().await.unwrap().unwrap().response else {
        panic!("expected a local reply")
    };
    assert_eq!(reply.status.unwrap().code, 429);
    let reason = reply
        .headers
        .unwrap()
        .set_headers
        .into_iter()
        .filter_map(|h| h.header)
        .find(|h| h.key == "x-llm-d-request-dropped-reason")
        .unwrap();
    assert_eq!(reason.raw_value, b"rejected-ttl-expired");
    assert_eq!(metrics.count(Outcome::EvictedTtl), 1);

    // A client that goes away while queued leaves the queue at once, not at its TTL.
    let x = Exchange::open(channel.clone()).await;
    x.send(request_headers("/v1/chat/completions", false, &[]))
        .await;
    x.send(request_body(CHAT, true)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(x);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(250);
    while metrics.count(Outcome::EvictedContextCancelled) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the disconnected request was not withdrawn before its TTL"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(metrics.count(Outcome::EvictedTtl), 1);
    // The same figures under upstream's names on /metrics.
    let text = reqwest_metrics(epp.metrics_addr).await;
    for line in [
        "flow_control_requests_total{outcome=\"EvictedTTL\"} 1",
        "flow_control_requests_total{outcome=\"EvictedContextCancelled\"} 1",
        "inference_extension_flow_control_request_queue_duration_seconds_count{outcome=\"EvictedTTL\",inference_pool=\"pool\"} 1",
        "inference_extension_flow_control_pool_saturation{inference_pool=\"pool\"} ",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    epp.shutdown().await.unwrap();
}
