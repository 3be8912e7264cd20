//! The Secret and caBundle calls against kube's mock service, each request
//! checked for method, URI, content type and body.

use std::time::Duration;

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhook;
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

use super::super::certs::{ca_bundle_patch, ensure_pair, patch_ca_bundle, secret_of};
use super::super::tls::{CertificatePair, generate};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// One expected call: method, path and query, content type, and the answer.
struct Call {
    method: Method,
    uri: &'static str,
    content_type: Option<&'static str>,
    status: u16,
    reply: Value,
}

/// Answers `calls` in order, returning the request bodies for inspection.
fn serve(mut handle: Handle, calls: Vec<Call>) -> tokio::task::JoinHandle<Vec<Value>> {
    tokio::spawn(async move {
        let mut bodies = Vec::new();
        for (i, call) in calls.into_iter().enumerate() {
            let (request, send) =
                tokio::time::timeout(Duration::from_secs(2), handle.next_request())
                    .await
                    .unwrap_or_else(|_| panic!("call {i} never came: {} {}", call.method, call.uri))
                    .unwrap();
            assert_eq!(request.method(), call.method, "call {i}");
            assert_eq!(request.uri().to_string(), call.uri, "call {i}");
            let content_type = request
                .headers()
                .get(http::header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap().to_owned());
            if let Some(expected) = call.content_type {
                assert_eq!(content_type.as_deref(), Some(expected), "call {i}");
            }
            let bytes = request.into_body().collect().await.unwrap().to_bytes();
            let body: Value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap()
            };
            // A `Null` reply echoes the body, as the apiserver does on create.
            let reply = if call.reply.is_null() {
                body.clone()
            } else {
                call.reply
            };
            bodies.push(body);
            send.send_response(
                Response::builder()
                    .status(call.status)
                    .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                    .unwrap(),
            );
        }
        bodies
    })
}

fn client() -> (Client, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), handle)
}

const SECRET: &str = "/api/v1/namespaces/infra/secrets/webhook-tls";

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
           "code": 404, "message": "secrets \"webhook-tls\" not found"})
}

fn stored(pair: &CertificatePair) -> Value {
    serde_json::to_value(secret_of("infra", "webhook-tls", pair)).unwrap()
}

#[tokio::test]
async fn a_missing_secret_is_created_with_a_fresh_pair() {
    let (client, handle) = client();
    let calls = serve(
        handle,
        vec![
            Call {
                method: Method::GET,
                uri: SECRET,
                content_type: None,
                status: 404,
                reply: not_found(),
            },
            Call {
                method: Method::POST,
                uri: "/api/v1/namespaces/infra/secrets?",
                content_type: Some("application/json"),
                status: 201,
                reply: Value::Null,
            },
        ],
    );
    let pair = ensure_pair(
        &client,
        "infra",
        "webhook-tls",
        &["svc.infra.svc".to_owned()],
    )
    .await
    .unwrap();
    let bodies = calls.await.unwrap();
    assert_eq!(
        bodies[1],
        stored(&pair),
        "the Secret holds exactly the pair served"
    );
    assert_eq!(bodies[1]["type"], "kubernetes.io/tls");
    assert_eq!(bodies[1]["metadata"]["name"], "webhook-tls");
}

#[tokio::test]
async fn an_existing_secret_is_reused() {
    let pair = generate(&["svc.infra.svc".to_owned()]).unwrap();
    let (client, handle) = client();
    let calls = serve(
        handle,
        vec![Call {
            method: Method::GET,
            uri: SECRET,
            content_type: None,
            status: 200,
            reply: stored(&pair),
        }],
    );
    let found = ensure_pair(&client, "infra", "webhook-tls", &[])
        .await
        .unwrap();
    calls.await.unwrap();
    assert_eq!(found, pair);
}

#[tokio::test]
async fn losing_the_create_race_reads_the_winners_pair() {
    let winner = generate(&["svc.infra.svc".to_owned()]).unwrap();
    let conflict = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                          "reason": "AlreadyExists", "code": 409, "message": "already exists"});
    let (client, handle) = client();
    let calls = serve(
        handle,
        vec![
            Call {
                method: Method::GET,
                uri: SECRET,
                content_type: None,
                status: 404,
                reply: not_found(),
            },
            Call {
                method: Method::POST,
                uri: "/api/v1/namespaces/infra/secrets?",
                content_type: None,
                status: 409,
                reply: conflict,
            },
            Call {
                method: Method::GET,
                uri: SECRET,
                content_type: None,
                status: 200,
                reply: stored(&winner),
            },
        ],
    );
    let pair = ensure_pair(
        &client,
        "infra",
        "webhook-tls",
        &["svc.infra.svc".to_owned()],
    )
    .await
    .unwrap();
    calls.await.unwrap();
    assert_eq!(pair, winner);
}

#[tokio::test]
async fn an_incomplete_secret_is_an_error_that_says_what_to_do() {
    let (client, handle) = client();
    let partial = json!({"apiVersion": "v1", "kind": "Secret",
                         "metadata": {"name": "webhook-tls", "namespace": "infra"},
                         "data": {"tls.crt": "eA=="}});
    let calls = serve(
        handle,
        vec![Call {
            method: Method::GET,
            uri: SECRET,
            content_type: None,
            status: 200,
            reply: partial,
        }],
    );
    let error = ensure_pair(&client, "infra", "webhook-tls", &[])
        .await
        .unwrap_err();
    calls.await.unwrap();
    assert_eq!(
        error.to_string(),
        "webhook TLS: Secret infra/webhook-tls lacks tls.crt, tls.key or ca.crt; delete it and the webhook creates a new pair"
    );
}

fn webhook(name: &str, ca: Option<&str>) -> ValidatingWebhook {
    serde_json::from_value(json!({
        "name": name, "sideEffects": "None", "admissionReviewVersions": ["v1"],
        "clientConfig": {"service": {"name": "svc", "namespace": "infra", "path": "/validate"}}
    }))
    .map(|mut webhook: ValidatingWebhook| {
        webhook.client_config.ca_bundle = ca.map(|ca| ByteString(ca.as_bytes().to_vec()));
        webhook
    })
    .unwrap()
}

#[test]
fn the_patch_sets_only_the_stale_ca_bundles_each_behind_a_name_test() {
    let ca = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n";
    let encoded =
        json!("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkFBPT0KLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=");
    let webhooks = [
        webhook("pools.switchyard.dev", None),
        webhook("routes.switchyard.dev", Some(ca)),
        webhook("rollouts.switchyard.dev", Some("old")),
    ];
    assert_eq!(
        ca_bundle_patch(&webhooks, ca),
        Some(json!([
            {"op": "test", "path": "/webhooks/0/name", "value": "pools.switchyard.dev"},
            {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": encoded},
            {"op": "test", "path": "/webhooks/2/name", "value": "rollouts.switchyard.dev"},
            {"op": "add", "path": "/webhooks/2/clientConfig/caBundle", "value": encoded},
        ]))
    );
    assert_eq!(
        ca_bundle_patch(&webhooks[1..2], ca),
        None,
        "already current"
    );
}

const CONFIGURATION: &str =
    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/switchyard-rollout";

#[tokio::test]
async fn the_ca_bundle_is_patched_with_json_patch_and_only_when_stale() {
    let ca = generate(&[]).unwrap().ca_pem;
    let configuration = |ca_bundle: Option<&str>| {
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
               "metadata": {"name": "switchyard-rollout"},
               "webhooks": [serde_json::to_value(webhook("inference.switchyard.dev", ca_bundle)).unwrap()]})
    };
    let (client, handle) = client();
    let calls = serve(
        handle,
        vec![
            Call {
                method: Method::GET,
                uri: CONFIGURATION,
                content_type: None,
                status: 200,
                reply: configuration(None),
            },
            Call {
                method: Method::PATCH,
                uri: "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/switchyard-rollout?&fieldManager=switchyard-rollout-webhook",
                content_type: Some("application/json-patch+json"),
                status: 200,
                reply: configuration(Some(&ca)),
            },
            Call {
                method: Method::GET,
                uri: CONFIGURATION,
                content_type: None,
                status: 200,
                reply: configuration(Some(&ca)),
            },
        ],
    );
    assert!(
        patch_ca_bundle(&client, "switchyard-rollout", &ca)
            .await
            .unwrap()
    );
    assert!(
        !patch_ca_bundle(&client, "switchyard-rollout", &ca)
            .await
            .unwrap(),
        "current: no patch"
    );
    let bodies = calls.await.unwrap();
    let encoded = serde_json::to_value(ByteString(ca.as_bytes().to_vec())).unwrap();
    assert_eq!(
        bodies[1],
        json!([
            {"op": "test", "path": "/webhooks/0/name", "value": "inference.switchyard.dev"},
            {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": encoded},
        ])
    );
}

#[test]
fn l12_a_pair_fits_only_its_own_names_and_only_before_it_expires() {
    use tokio_rustls::rustls::pki_types::UnixTime;

    use super::super::certs::pair_fits;

    let pair = generate(&["svc.infra.svc".to_owned()]).unwrap();
    let now = UnixTime::now();
    assert!(pair_fits(&pair, &["svc.infra.svc".to_owned()], now));
    assert!(!pair_fits(&pair, &["renamed.infra.svc".to_owned()], now));
    // Past any not-after rcgen writes (its default is the year 4096).
    let far_future = UnixTime::since_unix_epoch(Duration::from_secs(2500 * 365 * 24 * 3600));
    assert!(!pair_fits(&pair, &["svc.infra.svc".to_owned()], far_future));
    let mut foreign = pair.clone();
    foreign.ca_pem = generate(&["x".to_owned()]).unwrap().ca_pem;
    assert!(!pair_fits(&foreign, &["svc.infra.svc".to_owned()], now));
}

#[tokio::test]
async fn l12_a_stored_pair_for_other_names_is_replaced() {
    let old = generate(&["old.infra.svc".to_owned()]).unwrap();
    let mut stored_old = stored(&old);
    stored_old["metadata"]["resourceVersion"] = json!("5");
    let (client, handle) = client();
    let calls = serve(
        handle,
        vec![
            Call {
                method: Method::GET,
                uri: SECRET,
                content_type: None,
                status: 200,
                reply: stored_old,
            },
            Call {
                method: Method::PUT,
                uri: "/api/v1/namespaces/infra/secrets/webhook-tls?",
                content_type: Some("application/json"),
                status: 200,
                reply: Value::Null,
            },
        ],
    );
    let names = ["svc.infra.svc".to_owned()];
    let pair = ensure_pair(&client, "infra", "webhook-tls", &names)
        .await
        .unwrap();
    let bodies = calls.await.unwrap();
    assert_ne!(pair, old);
    assert_eq!(
        bodies[1]["metadata"]["resourceVersion"], "5",
        "a guarded replace"
    );
    use tokio_rustls::rustls::pki_types::UnixTime;
    assert!(super::super::certs::pair_fits(
        &pair,
        &names,
        UnixTime::now()
    ));
}
