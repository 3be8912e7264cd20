//! The webhook's shells without a network: the review codec, certificates,
//! flags and the store-to-view conversion; the apiserver calls in [`certs`].

mod certs;

use std::sync::Arc;

use clap::Parser;
use serde_json::{Value, json};
use switchyard_api::{InferencePool, InferenceRollout};
use switchyard_check::admission::{Config, Enforcement};
use switchyard_check::{Objects, PoolObject, Scope};

use super::review::{ReviewError, answer};
use super::tls;
use super::watch::objects_from;
use crate::cli::{Cli, Command};

fn review(request: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request
    }))
    .unwrap()
}

fn objective(pool: &str) -> Value {
    json!({
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferenceObjective",
        "metadata": {"name": "chat", "namespace": "llm"},
        "spec": {"poolRef": {"name": pool}}
    })
}

fn known_pools() -> Objects {
    Objects {
        scope: Scope::Cluster,
        pools: Some(vec![PoolObject::new("llm", "v1")]),
        ..Objects::default()
    }
}

fn answered(request: Value, config: &Config) -> Value {
    let out = answer(&review(request), &known_pools(), config).unwrap();
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn an_allowed_review_echoes_the_uid_and_nothing_else() {
    let request = json!({"uid": "u-1", "operation": "CREATE", "namespace": "llm",
                         "userInfo": {"username": "alice"}, "object": objective("v1")});
    assert_eq!(
        answered(request, &Config::default()),
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
               "response": {"uid": "u-1", "allowed": true}})
    );
}

#[test]
fn a_denied_review_carries_a_forbidden_status_with_the_fix() {
    let request = json!({"uid": "u-2", "operation": "CREATE", "namespace": "llm",
                         "userInfo": {"username": "alice"}, "object": objective("v2")});
    assert_eq!(
        answered(request, &Config::default()),
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
               "response": {"uid": "u-2", "allowed": false, "status": {
                   "code": 403, "reason": "Forbidden",
                   "message": "InferenceObjective chat: 1 problem (Switchyard): spec.poolRef: no InferencePool \"v2\" in namespace llm in the cluster; did you mean v1?"}}})
    );
}

#[test]
fn a_warned_review_is_allowed_with_warnings() {
    let warn = Config {
        missing_references: Enforcement::Warn,
        ..Config::default()
    };
    let request = json!({"uid": "u-3", "operation": "CREATE", "namespace": "llm",
                         "userInfo": {"username": "alice"}, "object": objective("v2")});
    assert_eq!(
        answered(request, &warn),
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
               "response": {"uid": "u-3", "allowed": true, "warnings": [
                   "spec.poolRef: no InferencePool \"v2\" in namespace llm in the cluster; did you mean v1?"]}})
    );
}

#[test]
fn a_delete_with_a_null_object_is_allowed() {
    let request = json!({"uid": "u-4", "operation": "DELETE", "namespace": "llm",
                         "object": null, "oldObject": objective("v2")});
    assert_eq!(
        answered(request, &Config::default())["response"]["allowed"],
        true
    );
}

#[test]
fn unusable_bodies_are_errors_that_say_what_is_wrong() {
    let objects = Objects::default();
    let config = Config::default();
    let error = |body: &[u8]| answer(body, &objects, &config).unwrap_err();
    assert!(matches!(error(b"not json"), ReviewError::Malformed(_)));
    assert!(matches!(error(b"[1, 2]"), ReviewError::Malformed(_)));
    assert_eq!(
        error(br#"{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}"#)
            .to_string(),
        "expected apiVersion admission.k8s.io/v1 and kind AdmissionReview, got admission.k8s.io/v1beta1 AdmissionReview; set admissionReviewVersions: [v1] in the ValidatingWebhookConfiguration"
    );
    assert_eq!(
        error(br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}"#),
        ReviewError::NoRequest
    );
    assert_eq!(
        error(&review(json!({"uid": "u", "operation": "PATCH"}))),
        ReviewError::UnknownOperation("PATCH".to_owned())
    );
    // Missing uid: the apiserver always sends one, so this is malformed.
    assert!(matches!(
        error(&review(json!({"operation": "CREATE"}))),
        ReviewError::Malformed(_)
    ));
}

#[test]
fn garbage_bodies_never_panic() {
    let objects = known_pools();
    let config = Config::default();
    let bodies: [&[u8]; 6] = [
        b"",
        b"\xff\xfe",
        b"{\"apiVersion\": \"admission.k8s.io/v1\", \"kind\": \"AdmissionReview\", \"request\": 7}",
        &review(json!({"uid": "u", "operation": "CREATE", "object": [1, 2]})),
        &review(
            json!({"uid": "u", "operation": "CREATE", "object": {"kind": "InferencePool", "apiVersion": "inference.networking.k8s.io/v1", "spec": "x"}}),
        ),
        &review(
            json!({"uid": "u", "operation": "UPDATE", "object": {"kind": "HTTPRoute", "apiVersion": "gateway.networking.k8s.io/v1", "spec": {"rules": [{"backendRefs": [{"kind": "InferencePool"}]}]}}, "oldObject": "x"}),
        ),
    ];
    for body in bodies {
        let _ = answer(body, &objects, &config);
    }
}

#[test]
fn a_generated_pair_serves_tls_and_garbage_is_refused() {
    let pair = tls::generate(&["svc.ns.svc".to_owned()]).unwrap();
    assert!(pair.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_ne!(pair.ca_pem, pair.cert_pem);
    tls::server_config(&pair.cert_pem, &pair.key_pem).unwrap();
    let other = tls::generate(&["svc.ns.svc".to_owned()]).unwrap();
    let mismatched = tls::server_config(&pair.cert_pem, &other.key_pem).unwrap_err();
    assert!(
        mismatched.to_string().contains("do not match"),
        "{mismatched}"
    );
    let empty = tls::server_config("", &pair.key_pem).unwrap_err();
    assert!(empty.to_string().contains("no PEM CERTIFICATE"), "{empty}");
    let no_key = tls::server_config(&pair.cert_pem, "garbage").unwrap_err();
    assert!(no_key.to_string().contains("private key"), "{no_key}");
}

#[test]
fn a_certificate_directory_is_read_and_a_missing_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = tls::load_dir(dir.path()).unwrap_err().to_string();
    assert!(missing.contains("tls.crt"), "{missing}");
    let pair = tls::generate(&["localhost".to_owned()]).unwrap();
    std::fs::write(dir.path().join(tls::CERT_FILE), &pair.cert_pem).unwrap();
    std::fs::write(dir.path().join(tls::KEY_FILE), &pair.key_pem).unwrap();
    tls::load_dir(dir.path()).unwrap();
}

#[test]
fn flags_build_the_config_and_the_service_names() {
    let cli = Cli::try_parse_from([
        "switchyard-rollout",
        "serve",
        "--webhook-address",
        "0.0.0.0:9444",
        "--webhook-namespace",
        "infra",
        "--webhook-manual-weight-edits",
        "warn",
        "--webhook-trusted-users",
        "system:serviceaccount:infra:switchyard-rollout, ,bob",
    ])
    .unwrap();
    let Command::Serve(args) = cli.command else {
        panic!("not serve")
    };
    let webhook = args.webhook;
    assert_eq!(
        webhook.webhook_address,
        Some("0.0.0.0:9444".parse().unwrap())
    );
    assert_eq!(
        webhook.config(),
        Config {
            missing_references: Enforcement::Deny,
            manual_weight_edits: Enforcement::Warn,
            trusted_users: vec![
                "system:serviceaccount:infra:switchyard-rollout".to_owned(),
                "bob".to_owned()
            ],
        }
    );
    assert_eq!(
        webhook.dns_names(),
        [
            "switchyard-rollout-webhook.infra.svc",
            "switchyard-rollout-webhook.infra.svc.cluster.local",
            "switchyard-rollout-webhook.infra",
            "switchyard-rollout-webhook",
        ]
    );
    let off = Cli::try_parse_from(["switchyard-rollout", "serve"]).unwrap();
    let Command::Serve(args) = off.command else {
        panic!("not serve")
    };
    assert_eq!(args.webhook.webhook_address, None, "off unless asked for");
}

#[test]
fn the_view_leaves_out_finished_rollouts_and_unlisted_kinds() {
    let rollout = |name: &str, phase: Option<&str>| -> Arc<InferenceRollout> {
        let mut value = json!({
            "apiVersion": "rollout.switchyard.dev/v1alpha1", "kind": "InferenceRollout",
            "metadata": {"name": name, "namespace": "llm"},
            "spec": {"target": {"mode": "PoolSplit", "route": {"name": "r", "ruleName": "chat"},
                                "stable": {"name": "v1"}, "canary": {"name": "v2"}},
                     "strategy": {"steps": [{"weight": 500}]}}
        });
        if let Some(phase) = phase {
            value["status"] = json!({"phase": phase});
        }
        Arc::new(serde_json::from_value(value).unwrap())
    };
    let pool: Arc<InferencePool> = Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
            "metadata": {"name": "v1", "namespace": "llm",
                         "annotations": {"inference.switchyard.dev/served-models": "llama,llama-lora"}},
            "spec": {"selector": {"matchLabels": {"app": "v1"}}, "targetPorts": [{"number": 8000}],
                     "endpointPickerRef": {"name": "v1-epp", "port": {"number": 9002}}}
        }))
        .unwrap(),
    );
    let objects = objects_from(
        Some(vec![
            rollout("running", Some("Progressing")),
            rollout("new", None),
            rollout("done", Some("Succeeded")),
            rollout("gone", Some("Aborted")),
        ]),
        None,
        Some(vec![pool]),
        Some(Vec::new()),
        None,
    );
    let names: Vec<&str> = objects.rollouts.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["running", "new"]);
    assert_eq!(objects.routes, None, "not listed: not judged");
    assert_eq!(objects.services, None);
    assert_eq!(objects.rewrites, Some(Vec::new()));
    assert_eq!(objects.scope, Scope::Cluster);
    let mut expected = PoolObject::new("llm", "v1");
    expected.epp_service = Some("v1-epp".to_owned());
    expected.served_models = Some(vec!["llama".to_owned(), "llama-lora".to_owned()]);
    assert_eq!(objects.pools, Some(vec![expected]));
}

#[tokio::test]
async fn a_rotated_certificate_directory_is_served_for_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let write = |pair: &tls::CertificatePair| {
        std::fs::write(dir.path().join(tls::CERT_FILE), &pair.cert_pem).unwrap();
        std::fs::write(dir.path().join(tls::KEY_FILE), &pair.key_pem).unwrap();
    };
    let first = tls::generate(&["localhost".to_owned()]).unwrap();
    write(&first);
    let certificates = tls::Certificates::new(tls::load_dir(dir.path()).unwrap());
    let before = certificates.current();
    let cancel = tokio_util::sync::CancellationToken::new();
    let watching = tokio::spawn(certificates.clone().watch(
        dir.path().to_owned(),
        std::time::Duration::from_millis(20),
        cancel.clone(),
    ));
    // A half-written pair (a key that does not match) keeps the old configuration.
    let second = tls::generate(&["localhost".to_owned(), "x".to_owned()]).unwrap();
    std::fs::write(dir.path().join(tls::CERT_FILE), &second.cert_pem).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        Arc::ptr_eq(&before, &certificates.current()),
        "mismatched pair kept out"
    );
    write(&second);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while Arc::ptr_eq(&before, &certificates.current()) {
        assert!(tokio::time::Instant::now() < deadline, "never reloaded");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    cancel.cancel();
    watching.await.unwrap();
}

#[test]
fn a_store_counts_only_once_it_has_listed() {
    use kube::runtime::{reflector, watcher};
    let (store, mut writer) = reflector::store::<InferencePool>();
    assert_eq!(
        super::watch::listed(&store),
        None,
        "not listed yet: unknown"
    );
    writer.apply_watcher_event(&watcher::Event::Init);
    writer.apply_watcher_event(&watcher::Event::InitDone);
    assert_eq!(
        super::watch::listed(&store),
        Some(Vec::new()),
        "listed: known to be none"
    );
}

#[test]
fn m9_an_unlisted_rollout_store_turns_the_weight_guard_to_refusing() {
    let unlisted = objects_from(None, None, None, None, None);
    assert!(
        unlisted.rollouts_unsynced,
        "nothing listed yet: not 'no rollouts'"
    );
    let listed = objects_from(Some(Vec::new()), None, None, None, None);
    assert!(!listed.rollouts_unsynced);
    // Through a review: a weight edit before the list is refused.
    let route = |weight: i32| {
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
               "metadata": {"name": "r", "namespace": "llm"},
               "spec": {"rules": [{"name": "chat", "backendRefs": [
                   {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "v1", "weight": weight}]}]}})
    };
    let request = json!({"uid": "u-9", "operation": "UPDATE", "namespace": "llm",
                         "userInfo": {"username": "alice"},
                         "object": route(5), "oldObject": route(1)});
    let out = answer(&review(request), &unlisted, &Config::default()).unwrap();
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["response"]["allowed"], false, "{out:#}");
}
