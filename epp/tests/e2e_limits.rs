//! Body limits through the real Envoy (review finding H5): a body past `--max-body-bytes`
//! and past the EPP's gRPC decode limit gets the EPP's 413 with its JSON error body and
//! dropped reason, and loses nothing for the next request.
//!
//! Only FULL_DUPLEX_STREAMED is exercised here: the endpoint picker protocol answers the
//! request headers after the body, so a BUFFERED picker filter (which waits for the headers
//! answer before it sends the body) cannot route at all. A body arriving as one message over
//! the decode limit, as BUFFERED or a coalescing proxy would send it, is answered 413 too:
//! `epp/tests/grpc.rs` sends one.
//!
//! Needs Envoy: run `cargo xtask tools` (or `cargo xtask test`, which does).

#![allow(clippy::unwrap_used)]

mod common;

use common::{EppSetup, any_port, endpoints_file};
use switchyard_conformance::client::HttpClient;
use switchyard_conformance::envoy::Envoy;
use switchyard_conformance::envoy::bootstrap::{Bootstrap, ExtProc, MODEL_HEADER, Route};
use switchyard_sim::http::{ReplicaOptions, spawn_replica};
use tokio::net::TcpListener;

/// The EPP's body limit: small, so the test body is past it and past its decode limit.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Asserts the EPP's 413: status, dropped reason and OpenAI-style error body.
fn assert_epp_413(response: &switchyard_conformance::client::HttpResponse, mode: &str) {
    assert_eq!(response.status, 413, "{mode}: {}", response.text());
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_else(|err| {
        panic!(
            "{mode}: the 413 body is not JSON ({err}): {}",
            response.text()
        )
    });
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("--max-body-bytes"), "{mode}: {body}");
    assert_eq!(body["error"]["code"], 413, "{mode}: {body}");
    assert_eq!(
        response.header("x-llm-d-request-dropped-reason"),
        Some("body-too-large"),
        "{mode}"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_gets_the_epps_json_413_through_envoy() {
    let listener = TcpListener::bind(any_port()).await.unwrap();
    let replica = spawn_replica(listener, ReplicaOptions::new("sim-0".to_owned(), "m")).unwrap();
    let file = endpoints_file("pool", &[replica.addr], "");
    let mut setup = EppSetup::new(file.path().to_owned());
    setup.max_body_bytes = MAX_BODY_BYTES;
    let epp = setup.start().await;

    let bootstrap = Bootstrap::new()
        .ext_proc(ExtProc::endpoint_picker("epp", epp.grpc_addr))
        .route(Route::to_pool("m", MODEL_HEADER, "m"));
    let envoy = Envoy::start(&bootstrap).await.unwrap();
    let client = HttpClient::new();

    let headers = [("content-type", "application/json"), (MODEL_HEADER, "m")];
    // Past the limit, and larger than the decode limit (limit + 1 MiB) as a whole.
    let filler = "x".repeat(MAX_BODY_BYTES + (3 << 20));
    let body = format!(r#"{{"model":"m","prompt":"{filler}"}}"#);
    let url = envoy.url("/v1/completions");
    let response = client.post(&url, &headers, body).await.unwrap();
    assert_epp_413(&response, "streamed");
    // A body under the limit still goes through.
    let small = r#"{"model":"m","prompt":"hello","max_tokens":2}"#.to_owned();
    let response = client.post(&url, &headers, small).await.unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    epp.shutdown().await.unwrap();
}
