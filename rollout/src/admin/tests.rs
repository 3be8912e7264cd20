//! The admin API over real HTTP on loopback, with the apiserver behind it
//! mocked by tower-test (exact calls and bodies, as in the controller tests).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use super::{AdminState, Authenticator, Store, TokenFile, router};
use crate::controller::tests::fixtures::{Expect, Handle, context, now, rollout, serve};
use crate::metrics::Metrics;

const TOKEN: &str = "0123456789abcdef0123";
const ROLLOUT_PATH: &str =
    "/apis/rollout.switchyard.dev/v1alpha1/namespaces/llm/inferencerollouts/qwen";
const STATUS_PATH: &str =
    "/apis/rollout.switchyard.dev/v1alpha1/namespaces/llm/inferencerollouts/qwen/status";
const ADMIN_QUERY: &[(&str, &str)] = &[
    ("fieldManager", "inference-rollout-admin"),
    ("force", "true"),
];
const R: &str = "/api/v1/namespaces/llm/inferencerollouts/qwen";

struct Admin {
    addr: SocketAddr,
    metrics: Metrics,
}

async fn start(auth: Authenticator) -> (Admin, Handle) {
    let (ctx, handle) = context();
    let metrics = Metrics::new();
    let state = AdminState {
        store: Store::Kubernetes(ctx.client.clone()),
        auth: Arc::new(auth),
        metrics: metrics.clone(),
        clock: Arc::new(now),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    (Admin { addr, metrics }, handle)
}

/// TokenReview and SubjectAccessReview for the default audience.
fn kubernetes_auth() -> Authenticator {
    Authenticator::Kubernetes {
        audiences: vec!["switchyard-rollout".into()],
    }
}

fn token_file() -> Authenticator {
    Authenticator::TokenFile(TokenFile::parse(&format!("{TOKEN} alice\n")).unwrap())
}

async fn call(
    admin: &Admin,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, HeaderMap, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", admin.addr));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = client
        .request(
            request
                .body(Full::new(Bytes::from(body.to_owned())))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, headers, value)
}

fn bearer() -> (&'static str, &'static str) {
    ("authorization", "Bearer 0123456789abcdef0123")
}

/// The rollout as the apiserver returns it, at resourceVersion 77.
fn stored(status: Value) -> Value {
    let mut value = serde_json::to_value(rollout(status).as_ref()).unwrap();
    value["metadata"]["resourceVersion"] = json!("77");
    value
}

fn progressing() -> Value {
    json!({"phase": "Progressing", "currentStep": 0, "observedIntentNonce": "old",
           "intent": {"action": "resume", "nonce": "old", "by": "bob", "at": "2027-01-01T00:00:00Z"}})
}

fn intent_patch(check: impl FnOnce(&Value) + Send + 'static) -> Expect {
    Expect::patch(STATUS_PATH, ADMIN_QUERY, move |body| {
        assert_eq!(body["kind"], "InferenceRollout");
        let written: Vec<&String> = body["status"].as_object().unwrap().keys().collect();
        assert!(
            written
                .iter()
                .all(|k| *k == "intent" || *k == "recentIntentNonces"),
            "only the intent and the nonce history are written: {body:#}"
        );
        check(&body);
    })
}

mod actions;
mod races;
mod reviews;

#[tokio::test]
async fn requests_without_a_valid_token_are_refused_before_any_api_call() {
    let (admin, handle) = start(token_file()).await;
    let server = serve(handle, vec![]);
    let (status, _, body) = call(&admin, Method::GET, R, &[], "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["reason"], "Unauthorized");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer")
    );
    let (status, _, _) = call(
        &admin,
        Method::POST,
        &format!("{R}/pause"),
        &[("authorization", "Bearer wrong-token-0000000")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = call(
        &admin,
        Method::GET,
        R,
        &[("authorization", "Basic abc")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.await.unwrap();
    assert!(
        admin
            .metrics
            .encode()
            .contains("action=\"pause\",code=\"401\"")
    );
}

#[tokio::test]
async fn l13_get_shows_the_recorded_route_weights_without_reading_the_route() {
    let (admin, handle) = start(token_file()).await;
    let mut status = progressing();
    status["weights"] = json!({"applied": {"stable": 9000, "canary": 1000, "routeGeneration": 3,
                                           "verifiedAt": "2027-01-15T07:00:00Z"}});
    // Only the rollout is read: no HTTPRoute GET with the controller's rights.
    let server = serve(handle, vec![Expect::get(ROLLOUT_PATH, stored(status))]);
    let (status, headers, body) = call(&admin, Method::GET, R, &[bearer()], "").await;
    server.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[http::header::ETAG], "\"77\"");
    assert_eq!(body["phase"], "Progressing");
    assert_eq!(body["steps"], json!([1000, 5000]));
    assert_eq!(body["route"]["stable"], 9000);
    assert_eq!(body["route"]["canary"], 1000);
    assert_eq!(body["route"]["parentsAccepted"], true);
    assert_eq!(body["route"]["source"], "status");
}

#[tokio::test]
async fn kubernetes_auth_reviews_the_token_then_the_access() {
    let (admin, handle) = start(kubernetes_auth()).await;
    let server = serve(
        handle,
        vec![
            Expect {
                method: Method::POST,
                path: "/apis/authentication.k8s.io/v1/tokenreviews",
                query: &[],
                body: Box::new(|body| assert_eq!(body["spec"]["token"], TOKEN)),
                status: 201,
                reply: json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {},
                          "status": {"authenticated": true, "audiences": ["switchyard-rollout"],
                                     "user": {"username": "alice", "groups": ["devs"]}}}),
            },
            Expect {
                method: Method::POST,
                path: "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                query: &[],
                body: Box::new(|body| {
                    assert_eq!(body["spec"]["user"], "alice");
                    assert_eq!(body["spec"]["groups"], json!(["devs"]));
                    assert_eq!(
                        body["spec"]["resourceAttributes"],
                        json!({"group": "rollout.switchyard.dev", "resource": "inferencerollouts", "subresource": "status",
                           "verb": "patch", "namespace": "llm", "name": "qwen"})
                    );
                }),
                status: 201,
                reply: json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {},
                          "status": {"allowed": false}}),
            },
        ],
    );
    let (status, _, body) =
        call(&admin, Method::POST, &format!("{R}/abort"), &[bearer()], "").await;
    server.await.unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("may not patch inferencerollouts/status")
    );
}

#[tokio::test]
async fn list_unknown_paths_missing_rollouts_and_metrics() {
    let (admin, handle) = start(token_file()).await;
    let not_found = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"});
    let server = serve(
        handle,
        vec![
            Expect::list(
                "/apis/rollout.switchyard.dev/v1alpha1/inferencerollouts",
                &[],
                json!({"apiVersion": "rollout.switchyard.dev/v1alpha1", "kind": "InferenceRolloutList", "metadata": {}, "items": [stored(progressing())]}),
            ),
            Expect::get(ROLLOUT_PATH, Value::Null).answering(404, not_found),
        ],
    );
    let (status, _, body) = call(
        &admin,
        Method::GET,
        "/api/v1/inferencerollouts",
        &[bearer()],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["name"], "qwen");
    let (status, _, body) =
        call(&admin, Method::POST, &format!("{R}/retry"), &[bearer()], "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        body["error"]["message"],
        "InferenceRollout llm/qwen not found"
    );
    let (status, _, body) = call(&admin, Method::GET, "/nope", &[], "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["reason"], "NotFound");
    let (status, _, body) = call(&admin, Method::GET, "/metrics", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.as_str()
            .unwrap()
            .contains("switchyard_rollout_admin_requests_total{action=\"retry\",code=\"404\"} 1")
    );
    server.await.unwrap();
}

#[tokio::test]
async fn kubernetes_authentication_without_a_cluster_says_to_use_a_token_file() {
    let mut headers = HeaderMap::new();
    headers.insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let access = super::auth::Access {
        verb: "get",
        namespace: None,
        name: None,
        subresource: None,
    };
    let err = kubernetes_auth()
        .authorize(None, &headers, access)
        .await
        .unwrap_err();
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    assert!(err.to_string().contains("--admin-token-file"), "{err}");
}
