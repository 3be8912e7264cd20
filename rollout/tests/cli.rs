//! The `switchyard-rollout` binary: `serve` refuses unsafe or broken settings
//! before touching a cluster, and the client subcommands talk to a real admin
//! API on loopback (whose apiserver is kube-rs's tower-test mock).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{Value, json};
use switchyard_rollout::admin::{AdminState, Authenticator, Store, TokenFile, router};
use switchyard_rollout::metrics::Metrics;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard-rollout");
const TOKEN: &str = "cli-test-token-0123456789";

async fn run(args: &[&str]) -> (i32, String, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(BIN).args(args).output(),
    )
    .await
    .unwrap()
    .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn serve_refuses_a_remote_admin_address_unless_allowed() {
    let (code, _, stderr) = run(&["serve", "--admin-address", "0.0.0.0:0"]).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("not a loopback address; pass --admin-allow-remote"),
        "{stderr}"
    );
}

#[tokio::test]
async fn serve_reports_a_bad_token_file() {
    let (code, _, stderr) = run(&["serve", "--admin-token-file", "/nonexistent/tokens"]).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("reading --admin-token-file /nonexistent/tokens"),
        "{stderr}"
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "short alice\n").unwrap();
    let (code, _, stderr) =
        run(&["serve", "--admin-token-file", file.path().to_str().unwrap()]).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("line 1: tokens must be at least 16 characters"),
        "{stderr}"
    );
}

#[tokio::test]
async fn help_lists_every_subcommand() {
    let (code, stdout, _) = run(&["--help"]).await;
    assert_eq!(code, 0);
    for sub in [
        "serve",
        "list",
        "get",
        "pause",
        "resume",
        "promote",
        "abort",
        "retry",
        "set-weight",
    ] {
        assert!(stdout.contains(sub), "{sub} missing from:\n{stdout}");
    }
}

#[tokio::test]
async fn client_commands_reach_the_admin_api_and_print_its_answers() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let state = AdminState {
        store: Store::Kubernetes(client),
        auth: Arc::new(Authenticator::TokenFile(
            TokenFile::parse(&format!("{TOKEN} carol")).unwrap(),
        )),
        metrics: Metrics::new(),
        clock: Arc::new(k8s_openapi::jiff::Timestamp::now),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    let rollout = json!({
        "apiVersion": "rollout.switchyard.dev/v1alpha1", "kind": "InferenceRollout",
        "metadata": {"name": "qwen", "namespace": "llm", "resourceVersion": "9"},
        "spec": {"target": {"mode": "PoolSplit", "route": {"name": "r", "ruleName": "chat"},
                            "stable": {"name": "a"}, "canary": {"name": "b"}},
                 "strategy": {"steps": [{"weight": 1000}]}},
        "status": {"phase": "Progressing", "currentStep": 0}
    });
    let apiserver = {
        let rollout = rollout.clone();
        tokio::spawn(async move {
            let (request, send) = handle.next_request().await.unwrap();
            assert_eq!(
                request.uri().path(),
                "/apis/rollout.switchyard.dev/v1alpha1/namespaces/llm/inferencerollouts/qwen"
            );
            send.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&rollout).unwrap()))
                    .unwrap(),
            );
            let (request, send) = handle.next_request().await.unwrap();
            assert_eq!(request.method(), "PATCH");
            let body: Value =
                serde_json::from_slice(&request.into_body().collect().await.unwrap().to_bytes())
                    .unwrap();
            assert_eq!(body["status"]["intent"]["action"], "setWeight");
            assert_eq!(body["status"]["intent"]["canaryWeight"], 250);
            assert_eq!(body["status"]["intent"]["nonce"], "cli-1");
            assert_eq!(body["status"]["intent"]["by"], "carol");
            send.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&rollout).unwrap()))
                    .unwrap(),
            );
        })
    };
    let server = format!("http://{addr}");
    let (code, stdout, stderr) = run(&[
        "set-weight",
        "llm/qwen",
        "--canary",
        "2.5",
        "--percent",
        "--idempotency-key",
        "cli-1",
        "--server",
        &server,
        "--token",
        TOKEN,
    ])
    .await;
    assert_eq!(code, 0, "{stderr}");
    let answer: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(answer["accepted"], true);
    assert_eq!(answer["intent"]["canaryWeight"], 250);
    apiserver.await.unwrap();

    let (code, _, stderr) = run(&[
        "pause",
        "llm/qwen",
        "--server",
        &server,
        "--token",
        "not-the-token-000000",
    ])
    .await;
    assert_eq!(code, 1);
    assert_eq!(
        stderr.trim(),
        "switchyard-rollout: HTTP 401: the token is not in the token file"
    );

    let (code, _, stderr) = run(&["get", "Bad/Name", "--server", &server]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("is not namespace/name"), "{stderr}");
}

#[tokio::test]
async fn client_says_when_no_admin_api_answers() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (code, _, stderr) = run(&["get", "llm/qwen", "--server", &format!("http://{addr}")]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot reach the admin API"), "{stderr}");
    assert!(stderr.contains("switchyard-rollout serve"), "{stderr}");
}
