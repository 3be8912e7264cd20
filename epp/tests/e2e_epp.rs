//! The EPP end to end through the real Envoy and simulator replicas: a test ext_proc server in
//! front copies the body's `model` into the model header (BBR's job; BBR itself in front of the
//! EPP is covered by `conformance/tests/e2e_conformance/bbr_and_picker.rs`, with the real
//! binaries), the route picks the pool, the pool's own EPP picks the replica, an ORIGINAL_DST
//! cluster connects to it.
//!
//! Three pools: `model-a` (3 replicas), `model-b` (2 replicas) and `model-c` (no endpoints),
//! each with its own EPP and standalone endpoints file. A test header is copied by Envoy's
//! header-to-metadata filter into `envoy.lb.subset_hint`, the way a gateway passes a subset.
//!
//! Needs Envoy: run `cargo xtask tools` (or `cargo xtask test`, which does). The metrics
//! scraper is not part of this build, so spreading rests on the EPP's in-flight reservations
//! and random tie-breaks, and stickiness on its prefix index.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::{EppSetup, any_port, endpoints_file};
use futures::future::join_all;
use serde_json::json;
use switchyard_conformance::client::{HttpClient, HttpResponse};
use switchyard_conformance::envoy::Envoy;
use switchyard_conformance::envoy::bootstrap::{Bootstrap, ExtProc, MODEL_HEADER, Route};
use switchyard_conformance::extproc::{Rule, TestExtProc};
use switchyard_epp::server::Running;
use switchyard_epp::server::tls::CertSource;
use switchyard_sim::http::{ReplicaHandle, ReplicaOptions, spawn_replica};
use tempfile::NamedTempFile;
use tokio::net::TcpListener;

/// The test header Envoy turns into the subset hint.
const SUBSET_HEADER: &str = "x-test-subset-hint";

struct Pool {
    replicas: Vec<ReplicaHandle>,
    epp: Running,
    file: NamedTempFile,
}

impl Pool {
    fn addr_of(&self, name: &str) -> SocketAddr {
        self.replicas.iter().find(|r| r.name == name).unwrap().addr
    }
}

async fn replica(name: String, model: &str) -> ReplicaHandle {
    let mut options = ReplicaOptions::new(name, model);
    // A few milliseconds per request: concurrent requests overlap, so in-flight load
    // matters, and the suite stays fast.
    options.time_scale = 0.1;
    let listener = TcpListener::bind(any_port()).await.unwrap();
    spawn_replica(listener, options).unwrap()
}

async fn pool_with(model: &str, replicas: usize, tls: Option<CertSource>) -> Pool {
    let mut handles = Vec::new();
    for i in 0..replicas {
        handles.push(replica(format!("{model}-{i}"), model).await);
    }
    let addrs: Vec<SocketAddr> = handles.iter().map(|r| r.addr).collect();
    let file = endpoints_file(model, &addrs, "");
    let mut setup = EppSetup::new(file.path().to_owned());
    setup.tls = tls;
    let epp = setup.start().await;
    Pool {
        replicas: handles,
        epp,
        file,
    }
}

async fn pool(model: &str, replicas: usize) -> Pool {
    pool_with(model, replicas, None).await
}

struct Stack {
    envoy: Envoy,
    a: Pool,
    b: Pool,
    c: Pool,
    _model_router: TestExtProc,
    client: HttpClient,
}

async fn stack() -> Stack {
    let (a, b, c) = tokio::join!(pool("model-a", 3), pool("model-b", 2), pool("model-c", 0));
    // Sets the model header from the body, as BBR would, so the route can pick the pool.
    let model_router = TestExtProc::start(Rule::body_field("model")).await.unwrap();
    let epp = ExtProc::endpoint_picker("epp", a.epp.grpc_addr);
    let bootstrap = Bootstrap::new()
        .header_to_metadata(
            SUBSET_HEADER,
            "envoy.lb.subset_hint",
            "x-gateway-destination-endpoint-subset",
        )
        .ext_proc(ExtProc::new("model-router", model_router.addr()))
        .ext_proc(epp.clone())
        .grpc_cluster("epp_b", b.epp.grpc_addr, false)
        .grpc_cluster("epp_c", c.epp.grpc_addr, false)
        .route(Route::to_pool("model-a", MODEL_HEADER, "model-a"))
        .route(
            Route::to_pool("model-b", MODEL_HEADER, "model-b")
                .ext_proc_cluster(epp.filter_name(), "epp_b"),
        )
        .route(
            Route::to_pool("model-c", MODEL_HEADER, "model-c")
                .ext_proc_cluster(epp.filter_name(), "epp_c"),
        );
    let envoy = Envoy::start(&bootstrap).await.unwrap();
    Stack {
        envoy,
        a,
        b,
        c,
        _model_router: model_router,
        client: HttpClient::new(),
    }
}

fn chat(model: &str, system: &str, user: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "model": model,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ],
        "max_tokens": 2,
    }))
    .unwrap()
}

impl Stack {
    async fn send(&self, body: Vec<u8>, headers: &[(&str, &str)]) -> HttpResponse {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.client
            .post(&self.envoy.url("/v1/chat/completions"), &all, body)
            .await
            .unwrap()
    }

    /// Sends `body`, expects 200 and returns the replica that answered.
    async fn served_by(&self, body: Vec<u8>, headers: &[(&str, &str)]) -> String {
        let response = self.send(body, headers).await;
        assert_eq!(response.status, 200, "{}", response.text());
        response.header("x-inference-pod").unwrap().to_owned()
    }
}

fn count(names: impl IntoIterator<Item = String>) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for name in names {
        *counts.entry(name).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn the_epp_routes_spreads_sticks_honours_hints_and_refuses_empty_pools() {
    let s = stack().await;

    // Two pools routed by model: each request stays inside its model's pool.
    for model in ["model-a", "model-b"] {
        let served = s.served_by(chat(model, "s", "hello"), &[]).await;
        assert!(served.starts_with(model), "{model} served by {served}");
        // The response carries the model the client asked for.
    }

    // Load spreads: 30 concurrent short, distinct prompts reach every replica of pool A.
    let burst = (0..30).map(|i| s.served_by(chat("model-a", "s", &format!("q{i}")), &[]));
    let spread = count(join_all(burst).await);
    assert_eq!(spread.len(), 3, "every replica gets traffic: {spread:?}");
    assert!(
        spread.keys().all(|k| k.starts_with("model-a-")),
        "{spread:?}"
    );

    // Shared prefixes stay together: one long system prompt, different questions.
    let system = "You are a support agent for a storage company. ".repeat(20);
    let mut sticky = Vec::new();
    for i in 0..8 {
        sticky.push(
            s.served_by(chat("model-a", &system, &format!("question {i}")), &[])
                .await,
        );
    }
    let sticky = count(sticky);
    assert_eq!(
        sticky.len(),
        1,
        "one replica serves the shared prefix: {sticky:?}"
    );

    // The subset hint is honoured, by ip:port.
    let target = s.a.addr_of("model-a-2").to_string();
    for i in 0..6 {
        let served = s
            .served_by(
                chat("model-a", "s", &format!("h{i}")),
                &[(SUBSET_HEADER, &target)],
            )
            .await;
        assert_eq!(served, "model-a-2");
    }
    // A hint naming no member of the pool: 503.
    let elsewhere = s.b.addr_of("model-b-0").to_string();
    let response = s
        .send(chat("model-a", "s", "x"), &[(SUBSET_HEADER, &elsewhere)])
        .await;
    assert_eq!(response.status, 503, "{}", response.text());

    // A client-supplied destination header is replaced: pointing at pool B's replica does
    // not take a model-a request out of pool A.
    for i in 0..4 {
        let served = s
            .served_by(
                chat("model-a", "s", &format!("d{i}")),
                &[("x-gateway-destination-endpoint", &elsewhere)],
            )
            .await;
        assert!(served.starts_with("model-a-"), "{served}");
    }

    // An empty pool: 503 with an OpenAI-style error and the reason header.
    let response = s.send(chat("model-c", "s", "x"), &[]).await;
    assert_eq!(response.status, 503, "{}", response.text());
    let error = response.json().unwrap();
    assert_eq!(error["error"]["code"], 503, "{error}");
    assert_eq!(
        response.header("x-llm-d-request-dropped-reason"),
        Some("rejected-no-endpoints")
    );

    // Pool B's EPP saw only pool B's requests.
    let metrics = s
        .client
        .get(&format!("http://{}/metrics", s.b.epp.metrics_addr), &[])
        .await
        .unwrap()
        .text();
    assert!(
        metrics.contains("inference_objective_request_total{model_name=\"model-b\",target_model_name=\"model-b\",priority=\"0\"} 1"),
        "{metrics}"
    );
    assert!(!metrics.contains("model_name=\"model-a\""), "{metrics}");
    // The simulator's JSON usage reached the token histograms.
    assert!(
        metrics.contains("inference_objective_output_tokens_count{model_name=\"model-b\",target_model_name=\"model-b\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_edited_endpoints_file_reaches_the_data_plane() {
    let s = stack().await;
    let response = s.send(chat("model-c", "s", "x"), &[]).await;
    assert_eq!(response.status, 503);
    // The empty pool gains a replica: the EPP picks it up without a restart.
    let late = replica("model-c-late".into(), "model-c").await;
    std::fs::write(
        s.c.file.path(),
        format!(
            "poolName: model-c\nendpoints:\n- {{name: late, address: '{}'}}\n",
            late.addr
        ),
    )
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let response = s.send(chat("model-c", "s", "x"), &[]).await;
        if response.status == 200 {
            assert_eq!(response.header("x-inference-pod"), Some("model-c-late"));
            break;
        }
        assert_eq!(response.status, 503, "{}", response.text());
        assert!(
            tokio::time::Instant::now() < deadline,
            "the edit never took effect"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A broken edit keeps the last good pool.
    std::fs::write(
        s.c.file.path(),
        "endpoints: [{name: late, address: nowhere}]\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        s.served_by(chat("model-c", "s", "y"), &[]).await,
        "model-c-late"
    );
}

#[tokio::test]
async fn envoy_talks_tls_to_a_secure_serving_epp() {
    // `--secure-serving` is upstream's default: a self-signed certificate, ALPN h2.
    let a = pool_with("model-a", 2, Some(CertSource::SelfSigned)).await;
    let bootstrap = Bootstrap::new()
        .ext_proc(ExtProc::endpoint_picker("epp", a.epp.grpc_addr).tls(true))
        .route(Route::to_pool("model-a", MODEL_HEADER, "model-a"));
    let envoy = Envoy::start(&bootstrap).await.unwrap();
    let client = HttpClient::new();
    for i in 0..4 {
        let response = client
            .post(
                &envoy.url("/v1/completions"),
                &[
                    ("content-type", "application/json"),
                    (MODEL_HEADER, "model-a"),
                ],
                serde_json::to_vec(
                    &json!({"model": "model-a", "prompt": format!("p{i}"), "max_tokens": 1}),
                )
                .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
        assert!(
            response
                .header("x-inference-pod")
                .unwrap()
                .starts_with("model-a-")
        );
    }
}

#[tokio::test]
async fn rewrites_are_applied_and_undone_in_the_response() {
    // The replica serves only the rewrite target: without the EPP's rewrite it answers 404.
    let mut options = ReplicaOptions::new("model-r-0", "model-r-v2");
    options.time_scale = 0.0;
    let target = spawn_replica(TcpListener::bind(any_port()).await.unwrap(), options).unwrap();
    let file = endpoints_file(
        "model-r",
        &[target.addr],
        "rewrites:\n- name: upgrade\n  rules:\n  - matches: [{model: {value: model-r}}]\n    targets: [{modelRewrite: model-r-v2}]\n",
    );
    let epp = EppSetup::new(file.path().to_owned()).start().await;
    let bootstrap = Bootstrap::new()
        .ext_proc(ExtProc::endpoint_picker("epp", epp.grpc_addr))
        .route(Route::to_pool("model-r", MODEL_HEADER, "model-r"));
    let envoy = Envoy::start(&bootstrap).await.unwrap();
    let client = HttpClient::new();
    let headers = [
        ("content-type", "application/json"),
        (MODEL_HEADER, "model-r"),
    ];
    let plain = client
        .post(
            &envoy.url("/v1/chat/completions"),
            &headers,
            chat("model-r", "s", "hi"),
        )
        .await
        .unwrap();
    assert_eq!(plain.status, 200, "{}", plain.text());
    assert_eq!(
        plain.json().unwrap()["model"],
        "model-r",
        "{}",
        plain.text()
    );
    let streamed = client
        .post(
            &envoy.url("/v1/chat/completions"),
            &headers,
            serde_json::to_vec(&json!({
                "model": "model-r",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 3,
                "stream": true,
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(streamed.status, 200, "{}", streamed.text());
    let text = streamed.text();
    assert!(
        text.contains("\"model\":\"model-r\"") && !text.contains("model-r-v2"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let metrics = client
        .get(&format!("http://{}/metrics", epp.metrics_addr), &[])
        .await
        .unwrap()
        .text();
    assert!(
        metrics.contains("inference_objective_request_total{model_name=\"model-r\",target_model_name=\"model-r-v2\",priority=\"0\"} 2"),
        "{metrics}"
    );
}

/// `name value` of an unlabelled sample in a Prometheus text page.
fn sample(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_hung_metrics_endpoint_changes_nothing_for_the_others() {
    let s = stack().await;
    let hung = s.a.addr_of("model-a-0");
    let response = s
        .client
        .post(
            &format!("http://{hung}/admin/faults"),
            &[("content-type", "application/json")],
            r#"{"metrics_hang": true}"#,
        )
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let metrics_url = format!("http://{}/metrics", s.a.epp.metrics_addr);
    let page = s.client.get(&metrics_url, &[]).await.unwrap().text();
    let (scrapes_before, timeouts_before) = (
        sample(&page, "switchyard_epp_metrics_scrapes_total"),
        sample(
            &page,
            "switchyard_epp_metrics_scrape_errors_total{reason=\"timeout\"}",
        ),
    );
    let started = std::time::Instant::now();
    // Requests keep flowing to every replica, the hung one included (it still serves).
    let burst = (0..30).map(|i| s.served_by(chat("model-a", "s", &format!("z{i}")), &[]));
    let served = count(join_all(burst).await);
    assert_eq!(served.len(), 3, "{served:?}");
    tokio::time::sleep(Duration::from_millis(2500).saturating_sub(started.elapsed())).await;
    let elapsed = started.elapsed().as_secs_f64();
    let page = s.client.get(&metrics_url, &[]).await.unwrap().text();
    let scrapes = sample(&page, "switchyard_epp_metrics_scrapes_total") - scrapes_before;
    let timeouts = sample(
        &page,
        "switchyard_epp_metrics_scrape_errors_total{reason=\"timeout\"}",
    ) - timeouts_before;
    // The hung endpoint times out about once a second; the two others keep their 50 ms
    // cadence (40 scrapes a second between them), with a wide margin for a loaded machine.
    assert!(
        timeouts >= 1.0,
        "the hung endpoint timed out: {timeouts}\n{page}"
    );
    assert!(
        scrapes >= 10.0 * elapsed,
        "{scrapes} scrapes in {elapsed:.1} s: the healthy endpoints were held up\n{page}"
    );
}
