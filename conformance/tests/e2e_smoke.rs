//! Smoke test of the ext_proc chain with the real Envoy: an ext_proc server sets the routing
//! header and clears the route cache, and Envoy routes on that header to one of two loopback
//! backends. Also: what happens when the ext_proc server is down, and what the harness says
//! when Envoy cannot start.
//!
//! Needs Envoy: run `cargo xtask tools` (or `cargo xtask test`, which does).

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::Path;

use http::StatusCode;
use switchyard_conformance::backend::{BACKEND_HEADER, TestBackend};
use switchyard_conformance::client::{HttpClient, HttpResponse};
use switchyard_conformance::envoy::bootstrap::{
    Bootstrap, ExtProc, MODEL_HEADER, NO_ROUTE_BODY, Route,
};
use switchyard_conformance::envoy::{Envoy, EnvoyOptions};
use switchyard_conformance::extproc::{Rule, TestExtProc};
use switchyard_conformance::ports;

/// The client-side header the test ext_proc server copies into `x-gateway-inference-model`.
const ROUTE_TO: &str = "x-route-to";

/// Two backends behind routes on the model header, with `ext_proc` in front.
fn gateway(ext_proc: ExtProc, a: &TestBackend, b: &TestBackend) -> Bootstrap {
    Bootstrap::new()
        .ext_proc(ext_proc)
        .route(Route::on_header(
            "model-a",
            MODEL_HEADER,
            "model-a",
            &[a.addr()],
        ))
        .route(Route::on_header(
            "model-b",
            MODEL_HEADER,
            "model-b",
            &[b.addr()],
        ))
}

/// Asserts a 200 from `backend`, which saw `model` in the routing header.
fn assert_answered_by(response: &HttpResponse, backend: &str, model: &str) {
    assert_eq!(response.status, StatusCode::OK, "body: {}", response.text());
    assert_eq!(response.header(BACKEND_HEADER), Some(backend));
    let json = response.json().unwrap();
    assert_eq!(json["backend"], backend);
    assert_eq!(json["model"], model);
}

#[tokio::test]
async fn e2e_ext_proc_header_and_route_cache_clear_pick_the_backend() {
    let a = TestBackend::start("a").await.expect("starting backend a");
    let b = TestBackend::start("b").await.expect("starting backend b");
    let ext_proc = TestExtProc::start(Rule::copy_header(ROUTE_TO))
        .await
        .expect("starting the ext_proc server");
    let bootstrap = gateway(ExtProc::new("test", ext_proc.addr()), &a, &b);
    let envoy = Envoy::start(&bootstrap).await.expect("starting Envoy");
    let client = HttpClient::new();

    // Without the ext_proc header Envoy keeps the route it chose first: the 404 fallback.
    let response = client.get(&envoy.url("/v1/models"), &[]).await.unwrap();
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!(response.text(), NO_ROUTE_BODY);

    // Both routes are taken, each only for its own value, several times over.
    for _ in 0..3 {
        let response = client
            .get(&envoy.url("/v1/chat"), &[(ROUTE_TO, "model-a")])
            .await
            .unwrap();
        assert_answered_by(&response, "a", "model-a");
        let response = client
            .get(&envoy.url("/v1/chat"), &[(ROUTE_TO, "model-b")])
            .await
            .unwrap();
        assert_answered_by(&response, "b", "model-b");
    }
    assert_eq!((a.requests(), b.requests()), (3, 3));
    // Every request went through the ext_proc server.
    assert_eq!(ext_proc.streams(), 7);

    // A client cannot pick the route by sending the routing header itself: the ext_proc
    // server's value overwrites it.
    let response = client
        .get(
            &envoy.url("/v1/chat"),
            &[(ROUTE_TO, "model-b"), (MODEL_HEADER, "model-a")],
        )
        .await
        .unwrap();
    assert_answered_by(&response, "b", "model-b");

    // Dropping the handle stops and reaps Envoy.
    let pid = envoy.pid();
    drop(envoy);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "Envoy (pid {pid}) still exists after drop"
    );
}

#[tokio::test]
async fn e2e_buffered_body_field_routes_after_the_body_arrives() {
    let a = TestBackend::start("a").await.expect("starting backend a");
    let b = TestBackend::start("b").await.expect("starting backend b");
    let ext_proc = TestExtProc::start(Rule::body_field("model"))
        .await
        .expect("starting the ext_proc server");
    let bootstrap = gateway(ExtProc::new("test", ext_proc.addr()), &a, &b);
    let envoy = Envoy::start(&bootstrap).await.expect("starting Envoy");
    let client = HttpClient::new();
    let json = [("content-type", "application/json")];

    let response = client
        .post(
            &envoy.url("/v1/completions"),
            &json,
            r#"{"model":"model-b","prompt":"hi"}"#,
        )
        .await
        .unwrap();
    assert_answered_by(&response, "b", "model-b");

    // A body of 2 MiB (above Envoy's 1 MiB default buffer, below our 4 MiB limit) arrives
    // whole at the backend after buffering.
    let prompt = "x".repeat(2 * 1024 * 1024);
    let body = format!(r#"{{"prompt":"{prompt}","model":"model-a"}}"#);
    let response = client
        .post(&envoy.url("/v1/completions"), &json, body.clone())
        .await
        .unwrap();
    assert_answered_by(&response, "a", "model-a");
    assert_eq!(response.json().unwrap()["body_bytes"], body.len());

    // No model field: nothing is set and the fallback answers.
    let response = client
        .post(&envoy.url("/v1/completions"), &json, r#"{"prompt":"hi"}"#)
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!((a.requests(), b.requests()), (1, 1));
}

#[tokio::test]
async fn e2e_ext_proc_down_fails_closed_with_5xx() {
    let a = TestBackend::start("a").await.expect("starting backend a");
    let b = TestBackend::start("b").await.expect("starting backend b");
    // Nothing listens here: every gRPC connect is refused.
    let dead = ports::free_addr().unwrap();
    let bootstrap = gateway(ExtProc::new("test", dead).failure_mode_allow(false), &a, &b);
    let envoy = Envoy::start(&bootstrap).await.expect("starting Envoy");
    let client = HttpClient::new();

    for headers in [vec![(ROUTE_TO, "model-a")], vec![(MODEL_HEADER, "model-b")]] {
        let response = client.get(&envoy.url("/v1/chat"), &headers).await.unwrap();
        assert_eq!(
            response.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "a fail-closed ext_proc filter must not let requests through; body: {}",
            response.text()
        );
    }
    assert_eq!((a.requests(), b.requests()), (0, 0));
}

#[tokio::test]
async fn e2e_ext_proc_down_fails_open_when_allowed() {
    let a = TestBackend::start("a").await.expect("starting backend a");
    let b = TestBackend::start("b").await.expect("starting backend b");
    let dead = ports::free_addr().unwrap();
    let bootstrap = gateway(ExtProc::new("test", dead).failure_mode_allow(true), &a, &b);
    let envoy = Envoy::start(&bootstrap).await.expect("starting Envoy");
    let client = HttpClient::new();

    // The request continues unmodified: nothing sets the model header, so no route matches.
    let response = client
        .get(&envoy.url("/v1/chat"), &[(ROUTE_TO, "model-a")])
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    // Which also means a client-supplied routing header is honoured when the filter is down.
    let response = client
        .get(&envoy.url("/v1/chat"), &[(MODEL_HEADER, "model-b")])
        .await
        .unwrap();
    assert_answered_by(&response, "b", "model-b");
    assert_eq!((a.requests(), b.requests()), (0, 1));
}

#[test]
fn e2e_rendered_bootstrap_passes_envoy_validate() {
    let addr = "127.0.0.1:9".parse().unwrap();
    let bootstrap = Bootstrap::new()
        .ext_proc(ExtProc::new("first", addr))
        .ext_proc(ExtProc::new("second", addr).failure_mode_allow(true))
        .route(Route::on_header("r", MODEL_HEADER, "m", &[addr]));
    Envoy::validate(&bootstrap).expect("envoy --mode validate");
}

#[tokio::test]
async fn e2e_envoy_that_cannot_start_is_reported_with_its_log() {
    // Hold a port so Envoy's listener cannot bind it.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let bootstrap = Bootstrap::new().listener(taken.local_addr().unwrap());
    let err = Envoy::start_with(&bootstrap, EnvoyOptions::default())
        .await
        .expect_err("Envoy must not start on a port in use");
    let message = err.to_string();
    assert!(message.contains("envoy (pid"), "{message}");
    assert!(message.contains("exited during startup"), "{message}");
    // The log tail is in the error, so the cause is visible without opening files.
    assert!(
        message.to_lowercase().contains("address already in use"),
        "{message}"
    );
}
