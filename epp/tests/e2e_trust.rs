//! The trust boundary through the real Envoy: a client spoofing every steering header
//! (priority, fairness, TTL, forced rewrite, destination, trust marker) against an EPP that
//! trusts no client, as in Kubernetes mode. A recording backend stands in for the model
//! server and shows what reached it.
//!
//! Needs Envoy: run `cargo xtask tools` (or `cargo xtask test`, which does).

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use common::{EppSetup, any_port, endpoints_file};
use serde_json::json;
use switchyard_conformance::client::HttpClient;
use switchyard_conformance::envoy::Envoy;
use switchyard_conformance::envoy::bootstrap::{Bootstrap, ExtProc, MODEL_HEADER, Route};
use switchyard_epp::flow::HeaderTrust;
use switchyard_epp::trust::STRIPPED_HEADERS;
use tokio::net::TcpListener;

/// What the backend received: each request's headers and body.
type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn record(
    State(seen): State<Seen>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl axum::response::IntoResponse {
    // The EPP's own scrapes of /metrics are not requests of the client.
    if uri.path() != "/metrics" {
        seen.lock().unwrap().push((headers, body));
    }
    (
        [("content-type", "application/json")],
        json!({"model": "model-t", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}})
            .to_string(),
    )
}

async fn backend() -> (std::net::SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new().fallback(record).with_state(Arc::clone(&seen));
    let listener = TcpListener::bind(any_port()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, seen)
}

const MARKER: &str = "x-switchyard-trusted-caller";

#[tokio::test]
async fn h2_h3_l10_spoofed_steering_headers_never_reach_the_model_server() {
    let (addr, seen) = backend().await;
    // `model-t-canary` is a model the pool knows (a rewrite target) and `premium` an
    // objective: the spoofed values are plausible, only the trust is missing.
    let file = endpoints_file(
        "model-t",
        &[addr],
        "objectives:\n- {name: premium, priority: 10}\n\
         rewrites:\n- name: canary\n  rules:\n  - matches: [{model: {value: model-t-legacy}}]\n    \
         targets: [{modelRewrite: model-t-canary}]\n",
    );
    let mut setup = EppSetup::new(file.path().to_owned());
    setup.header_trust = HeaderTrust::WhenMarked(MARKER.into());
    let epp = setup.start().await;
    let bootstrap = Bootstrap::new()
        .ext_proc(ExtProc::endpoint_picker("epp", epp.grpc_addr))
        .route(Route::to_pool("model-t", MODEL_HEADER, "model-t"));
    let envoy = Envoy::start(&bootstrap).await.unwrap();
    let client = HttpClient::new();

    let hostile_ttl_and_ids: Vec<String> = (0..20)
        .map(|i| format!("{i:04}{}", "f".repeat(4092)))
        .collect();
    for fairness_id in &hostile_ttl_and_ids {
        let response = client
            .post(
                &envoy.url("/v1/chat/completions"),
                &[
                    ("content-type", "application/json"),
                    (MODEL_HEADER, "model-t"),
                    ("x-gateway-model-name-rewrite", "model-t-canary"),
                    ("x-gateway-inference-objective", "premium"),
                    ("x-llm-d-inference-objective", "premium"),
                    ("x-gateway-inference-fairness-id", fairness_id),
                    ("x-llm-d-inference-fairness-id", "tenant-b"),
                    ("x-llm-d-inference-ttl", "1h"),
                    ("x-gateway-destination-endpoint", "203.0.113.7:9"),
                ],
                serde_json::to_vec(&json!({
                    "model": "model-t",
                    "messages": [{"role": "user", "content": "hi"}],
                }))
                .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
    }

    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(
        seen.len(),
        hostile_ttl_and_ids.len(),
        "every request was served by the pool"
    );
    for (headers, body) in seen.iter() {
        for name in STRIPPED_HEADERS.iter().chain([&MARKER]) {
            assert!(
                !headers.contains_key(*name),
                "{name} reached the model server: {headers:?}"
            );
        }
        // The forced rewrite was not applied: the body still asks for the client's model.
        let body: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(body["model"], "model-t", "{body}");
        // The destination is the EPP's pick, not the client's.
        assert_eq!(
            headers
                .get("x-gateway-destination-endpoint")
                .map(|v| v.to_str().unwrap().to_owned()),
            Some(addr.to_string())
        );
    }

    let metrics = client
        .get(&format!("http://{}/metrics", epp.metrics_addr), &[])
        .await
        .unwrap()
        .text();
    assert!(
        metrics.contains("inference_objective_request_total{model_name=\"model-t\",target_model_name=\"model-t\",priority=\"0\"} 20"),
        "the spoofed objective gave no priority and the rewrite no target: {metrics}"
    );
    assert!(
        !metrics.contains("ffff"),
        "a hostile fairness id reached /metrics"
    );
    assert!(
        metrics.contains("switchyard_epp_refused_steering_headers_total{reason=\"untrusted\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn c1_distinct_4kib_model_names_through_envoy_keep_metrics_small() {
    let (addr, seen) = backend().await;
    let file = endpoints_file("model-t", &[addr], "");
    let epp = EppSetup::new(file.path().to_owned()).start().await;
    let bootstrap = Bootstrap::new()
        .ext_proc(ExtProc::endpoint_picker("epp", epp.grpc_addr))
        .route(Route::to_pool("model-t", MODEL_HEADER, "model-t"));
    let envoy = Envoy::start(&bootstrap).await.unwrap();
    let client = HttpClient::new();
    let requests = 200;
    for i in 0..requests {
        // The route is chosen by the model header; the body names a hostile model.
        let model = format!("{i:04}{}", "x".repeat(4092));
        let response = client
            .post(
                &envoy.url("/v1/chat/completions"),
                &[
                    ("content-type", "application/json"),
                    (MODEL_HEADER, "model-t"),
                    ("x-gateway-model-name-rewrite", &model),
                ],
                serde_json::to_vec(&json!({
                    "model": model,
                    "messages": [{"role": "user", "content": "hi"}],
                }))
                .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
    }
    assert_eq!(seen.lock().unwrap().len(), requests);
    let metrics = client
        .get(&format!("http://{}/metrics", epp.metrics_addr), &[])
        .await
        .unwrap()
        .text();
    assert!(
        metrics.len() < 1 << 20,
        "the page is {} bytes",
        metrics.len()
    );
    assert!(
        !metrics.contains("xxxx"),
        "a hostile model name became a label"
    );
    assert!(
        metrics.contains(&format!(
            "inference_objective_request_total{{model_name=\"other\",target_model_name=\"other\",priority=\"0\"}} {requests}"
        )),
        "{metrics}"
    );
}
