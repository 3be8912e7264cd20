//! Recorded AdmissionReviews, one allowed, one denied and one warned for each
//! kind, POSTed over HTTPS to the webhook served on loopback; each answer must
//! equal its recorded response (`<name>.response.json`) byte for byte in JSON.
//!
//! The requests have the shape the apiserver sends (uid, kinds, resources,
//! userInfo, object, oldObject, options). Set `UPDATE_WEBHOOK_GOLDEN=1` to
//! rewrite the responses after a deliberate message change, then review the diff.

#![allow(clippy::unwrap_used)]

mod webhook_support;

use serde_json::{Value, json};
use switchyard_check::admission::{Config, Enforcement};
use webhook_support::{cluster_of, serve_webhook};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/admission");
const CONTROLLER: &str = "system:serviceaccount:switchyard-system:switchyard-rollout";

/// The chart's defaults: deny both, trust the controller's service account.
fn strict() -> Config {
    Config {
        trusted_users: vec![CONTROLLER.to_owned()],
        ..Config::default()
    }
}

/// `--webhook-missing-references warn --webhook-manual-weight-edits warn`.
fn lenient() -> Config {
    Config {
        missing_references: Enforcement::Warn,
        manual_weight_edits: Enforcement::Warn,
        trusted_users: vec![CONTROLLER.to_owned()],
    }
}

fn read(name: &str) -> Value {
    let path = format!("{FIXTURES}/{name}");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .unwrap()
}

async fn round_trip(kind: &str) {
    let cluster = cluster_of(&format!("{FIXTURES}/cluster.yaml"));
    let strict = serve_webhook(cluster.clone(), strict()).await;
    let lenient = serve_webhook(cluster, lenient()).await;
    for verdict in ["allowed", "denied", "warned"] {
        let name = format!("{kind}-{verdict}");
        let request = read(&format!("{name}.json"));
        // Warnings that stand for a denial under the defaults need the lenient flags.
        let server = match (kind, verdict) {
            ("inferenceobjective" | "inferencerollout" | "httproute", "warned") => &lenient,
            _ => &strict,
        };
        let answer = server.review(&request).await;
        let response = &answer["response"];
        assert_eq!(response["uid"], request["request"]["uid"], "{name}");
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1", "{name}");
        match verdict {
            "allowed" => assert_eq!(
                response,
                &json!({"uid": response["uid"], "allowed": true}),
                "{name}"
            ),
            "denied" => {
                assert_eq!(response["allowed"], false, "{name}");
                assert_eq!(response["status"]["code"], 403, "{name}");
            }
            _ => {
                assert_eq!(response["allowed"], true, "{name}");
                assert!(
                    !response["warnings"].as_array().unwrap().is_empty(),
                    "{name}"
                );
            }
        }
        let golden = format!("{FIXTURES}/{name}.response.json");
        if std::env::var_os("UPDATE_WEBHOOK_GOLDEN").is_some() {
            std::fs::write(
                &golden,
                serde_json::to_string_pretty(&answer).unwrap() + "\n",
            )
            .unwrap();
        }
        assert_eq!(answer, read(&format!("{name}.response.json")), "{name}");
    }
}

#[tokio::test]
async fn inference_pool_reviews() {
    round_trip("inferencepool").await;
}

#[tokio::test]
async fn inference_objective_reviews() {
    round_trip("inferenceobjective").await;
}

#[tokio::test]
async fn inference_model_rewrite_reviews() {
    round_trip("inferencemodelrewrite").await;
}

#[tokio::test]
async fn inference_rollout_reviews() {
    round_trip("inferencerollout").await;
}

#[tokio::test]
async fn http_route_reviews() {
    round_trip("httproute").await;
}

#[tokio::test]
async fn bad_bodies_get_400_with_the_reason_and_health_answers() {
    let served = serve_webhook(cluster_of(&format!("{FIXTURES}/cluster.yaml")), strict()).await;
    let (status, body) = served.post("/validate", b"{not json".to_vec()).await;
    assert_eq!(status, 400);
    assert!(
        String::from_utf8_lossy(&body)
            .starts_with("the body is not an admission.k8s.io/v1 AdmissionReview"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let old = serde_json::to_vec(
        &json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}),
    )
    .unwrap();
    assert_eq!(served.post("/validate", old).await.0, 400);
    let too_big = vec![b' '; 5 * 1024 * 1024];
    assert_eq!(served.post("/validate", too_big).await.0, 413);
    // Still serving after all that.
    let (status, body) = served.post("/healthz", Vec::new()).await;
    assert_eq!(
        (status, body.as_slice()),
        (405, &b""[..]),
        "healthz is GET only"
    );
    let answer = served.review(&read("inferencepool-allowed.json")).await;
    assert_eq!(answer["response"]["allowed"], true);
}
