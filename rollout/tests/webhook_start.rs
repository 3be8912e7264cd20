//! `webhook::start` end to end against kube's mock apiserver: without a
//! certificate directory it generates a pair, stores it in the Secret, writes
//! its CA into the configuration's caBundle, lists the kinds the rules consult,
//! and serves HTTPS that a client trusting only that CA (as the apiserver trusts
//! the caBundle) can call, for the Service's DNS name.

#![allow(clippy::unwrap_used)]

mod webhook_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use http::{Request, Response};
use http_body_util::BodyExt;
use k8s_openapi::ByteString;
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use switchyard_rollout::cli::{Cli, Command};
use tokio_util::sync::CancellationToken;
use webhook_support::Served;

/// What the mock apiserver was sent: (method, path, body).
type Calls = Arc<Mutex<Vec<(String, String, Value)>>>;

fn list(kind: &str, api_version: &str, items: Value) -> Value {
    json!({"apiVersion": api_version, "kind": format!("{kind}List"),
           "metadata": {"resourceVersion": "1"}, "items": items})
}

/// Answers by path, whatever the order; watches are held open, unanswered.
fn apiserver(calls: Calls) -> Client {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().to_string();
            let path = request.uri().path().to_owned();
            let query = request.uri().query().unwrap_or_default().to_owned();
            let bytes = request.into_body().collect().await.unwrap().to_bytes();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            calls
                .lock()
                .unwrap()
                .push((method.clone(), path.clone(), body.clone()));
            if query.contains("watch=true") {
                held.push(send);
                continue;
            }
            let configuration = json!({
                "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": "rel-rollout"},
                "webhooks": [{"name": "inference.rollout.switchyard.dev", "sideEffects": "None",
                              "admissionReviewVersions": ["v1"],
                              "clientConfig": {"service": {"name": "rel-rollout-webhook", "namespace": "sw"}}}]
            });
            let (status, reply) = match (method.as_str(), path.as_str()) {
                ("GET", "/api/v1/namespaces/sw/secrets/rel-rollout-webhook-tls") => (
                    404,
                    json!({
                    "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
                ),
                ("POST", "/api/v1/namespaces/sw/secrets") => (201, body),
                (
                    "GET",
                    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/rel-rollout",
                )
                | (
                    "PATCH",
                    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/rel-rollout",
                ) => (200, configuration),
                ("GET", "/apis/inference.networking.k8s.io/v1/inferencepools") => (
                    200,
                    list(
                        "InferencePool",
                        "inference.networking.k8s.io/v1",
                        json!([{
                        "apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
                        "metadata": {"name": "llama", "namespace": "llm", "resourceVersion": "1"},
                        "spec": {"selector": {"matchLabels": {"app": "llama"}}, "targetPorts": [{"number": 8000}],
                                 "endpointPickerRef": {"name": "llama-epp", "port": {"number": 9002}}}}]),
                    ),
                ),
                ("GET", "/apis/rollout.switchyard.dev/v1alpha1/inferencerollouts") => (
                    200,
                    list(
                        "InferenceRollout",
                        "rollout.switchyard.dev/v1alpha1",
                        json!([]),
                    ),
                ),
                ("GET", "/apis/gateway.networking.k8s.io/v1/httproutes") => (
                    200,
                    list("HTTPRoute", "gateway.networking.k8s.io/v1", json!([])),
                ),
                ("GET", "/apis/inference.networking.x-k8s.io/v1alpha2/inferencemodelrewrites") => (
                    200,
                    list(
                        "InferenceModelRewrite",
                        "inference.networking.x-k8s.io/v1alpha2",
                        json!([]),
                    ),
                ),
                ("GET", "/api/v1/services") => (
                    200,
                    json!({
                    "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
                    "metadata": {"resourceVersion": "1"},
                    "items": [{"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                               "metadata": {"name": "llama-epp", "namespace": "llm"}}]}),
                ),
                _ => (
                    404,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}),
                ),
            };
            send.send_response(
                Response::builder()
                    .status(status)
                    .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                    .unwrap(),
            );
        }
    });
    Client::new(service, "default")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_generated_certificate_is_stored_trusted_through_the_ca_bundle_and_served() {
    let port = free_port();
    let cli = Cli::try_parse_from([
        "switchyard-rollout",
        "serve",
        &format!("--webhook-address=127.0.0.1:{port}"),
        "--webhook-namespace=sw",
        "--webhook-service=rel-rollout-webhook",
        "--webhook-secret=rel-rollout-webhook-tls",
        "--webhook-configuration=rel-rollout",
    ])
    .unwrap();
    let Command::Serve(args) = cli.command else {
        panic!("not serve")
    };
    let calls: Calls = Arc::default();
    let cancel = CancellationToken::new();
    switchyard_rollout::webhook::start(&args.webhook, apiserver(calls.clone()), cancel.clone())
        .await
        .unwrap();

    // The stored Secret holds the CA the client will trust.
    let secret = calls
        .lock()
        .unwrap()
        .iter()
        .find(|(method, _, _)| method == "POST")
        .map(|(_, _, body)| body.clone())
        .unwrap();
    let ca: ByteString = serde_json::from_value(secret["data"]["ca.crt"].clone()).unwrap();
    let ca_pem = String::from_utf8(ca.0).unwrap();
    let mut served = Served::trusting(
        format!("127.0.0.1:{port}").parse().unwrap(),
        &ca_pem,
        cancel,
    );
    served.server_name = "rel-rollout-webhook.sw.svc".to_owned();

    // Once the pools are listed, a reference to a missing one is denied.
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u", "operation": "CREATE", "namespace": "llm", "userInfo": {"username": "alice"},
                    "object": {"apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferenceObjective",
                               "metadata": {"name": "chat", "namespace": "llm"},
                               "spec": {"poolRef": {"name": "llama-pool"}}}}});
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let answer = served.review(&review).await;
        if answer["response"]["allowed"] == false || tokio::time::Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        answer["response"]["status"]["message"],
        "InferenceObjective chat: 1 problem (Switchyard): spec.poolRef: no InferencePool \"llama-pool\" in namespace llm in the cluster; the pools there are llama"
    );

    // The caBundle patch carried that same CA.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let patch = loop {
        let found = calls
            .lock()
            .unwrap()
            .iter()
            .find(|(method, _, _)| method == "PATCH")
            .map(|(_, _, body)| body.clone());
        if let Some(patch) = found {
            break patch;
        }
        assert!(tokio::time::Instant::now() < deadline, "no caBundle patch");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(patch[1]["path"], "/webhooks/0/clientConfig/caBundle");
    assert_eq!(patch[1]["value"], secret["data"]["ca.crt"]);
}
