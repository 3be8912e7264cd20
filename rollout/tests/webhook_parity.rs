//! One rule set, two front ends: for every document of the checker's fixture
//! sets, `switchyard-check`'s rules and the served webhook (HTTPS, the same
//! objects as its view) must agree on pass or fail, and every failing finding
//! must be in the webhook's denial.
//!
//! Two documented exceptions are not sent: HTTPRoutes without an InferencePool
//! backend (the webhook does not judge other teams' routes) and misspelt kinds
//! (the apiserver has no such resource to send).

#![allow(clippy::unwrap_used)]

mod webhook_support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use switchyard_check::admission::Config;
use switchyard_check::{Document, check_documents, objects_of, parse_documents};
use webhook_support::serve_webhook;

const KINDS: [&str; 6] = [
    "InferencePool",
    "InferenceObjective",
    "InferenceModelRewrite",
    "InferenceRollout",
    "HTTPRoute",
    "InferenceModel",
];

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

fn documents(dir: &Path) -> Vec<Document> {
    yaml_files(dir)
        .iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).unwrap();
            parse_documents(&file.display().to_string(), &text).unwrap()
        })
        .collect()
}

fn judged(document: &Document) -> bool {
    let value = &document.value;
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !KINDS.contains(&kind) {
        return false;
    }
    kind != "HTTPRoute" || value.to_string().contains("\"kind\":\"InferencePool\"")
}

/// (documents judged, denied) over one fixture set.
async fn compare(dir: &Path) -> (usize, usize) {
    let documents = documents(dir);
    let findings = check_documents(&documents);
    let served = serve_webhook(objects_of(&documents), Config::default()).await;
    let (mut judged_count, mut denied) = (0, 0);
    for document in documents.iter().filter(|d| judged(d)) {
        judged_count += 1;
        let failing: Vec<&str> = findings
            .iter()
            .filter(|f| f.source == document.source && f.index == document.index && f.fails())
            .map(|f| f.message.as_str())
            .collect();
        let namespace = document
            .value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let review = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": format!("{}:{}", document.source, document.index),
                        "operation": "CREATE", "namespace": namespace,
                        "userInfo": {"username": "alice"}, "object": document.value}
        });
        let answer = served.review(&review).await;
        let response = &answer["response"];
        let at = format!("{}:{}", document.source, document.index);
        assert_eq!(
            response["allowed"],
            failing.is_empty(),
            "{at}: offline {failing:#?}, webhook {response:#}"
        );
        if !failing.is_empty() {
            denied += 1;
            let message = response["status"]["message"].as_str().unwrap();
            for finding in failing {
                assert!(
                    message.contains(finding),
                    "{at}: {finding:?} not in {message:?}"
                );
            }
        }
    }
    (judged_count, denied)
}

fn manifests(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../api/check/tests/fixtures/manifests")
        .join(relative)
}

#[tokio::test]
async fn valid_fixtures_pass_both_front_ends() {
    let (judged, denied) = compare(&manifests("valid")).await;
    assert_eq!((judged, denied), (6, 0));
    for fixed in ["fixed/seed-002", "fixed/seed-003"] {
        let (judged, denied) = compare(&manifests(fixed)).await;
        assert!(judged > 0, "{fixed}");
        assert_eq!(denied, 0, "{fixed}");
    }
}

#[tokio::test]
async fn invalid_fixtures_fail_both_front_ends() {
    let (judged, denied) = compare(&manifests("invalid")).await;
    assert!(judged > 0 && denied > 0, "{judged} judged, {denied} denied");
    let (judged, denied) = compare(&manifests("rollout-invalid")).await;
    assert!(judged > 0 && denied > 0, "{judged} judged, {denied} denied");
}

#[tokio::test]
async fn the_admission_cluster_passes_both_front_ends() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/admission");
    assert_eq!(compare(&dir).await, (4, 0));
}

/// The objects of the recorded CREATE reviews, each checked offline with the
/// recorded cluster's manifests, must get the verdict the webhook gives them.
#[tokio::test]
async fn recorded_creates_get_the_same_verdict_offline() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/admission");
    let cluster = documents(&dir);
    let mut checked = 0;
    for file in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.ends_with(".response.json") {
            continue;
        }
        let review: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        if review["request"]["operation"] != "CREATE" {
            continue; // The offline checker has no old object to compare with.
        }
        let mut all = cluster.clone();
        all.push(Document {
            source: name.clone(),
            index: 1,
            line: 1,
            value: review["request"]["object"].clone(),
        });
        let offline_fails = check_documents(&all)
            .iter()
            .any(|f| f.source == name && f.fails());
        let served = serve_webhook(objects_of(&all), Config::default()).await;
        let answer = served.review(&review).await;
        assert_eq!(
            answer["response"]["allowed"], !offline_fails,
            "{name}: {answer:#}"
        );
        checked += 1;
    }
    assert_eq!(checked, 11, "every recorded CREATE");
}
