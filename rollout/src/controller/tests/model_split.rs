//! ModelSplit reconciles: the InferenceModelRewrite is read, its pool's ready
//! endpoints count for both arms, and the weights go out as the guarded JSON
//! Patch of the rule's targets.

use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_api::InferenceRollout;

use super::fixtures::{Expect, STATUS_PATH, STATUS_QUERY, context, pods, pool, serve};
use crate::controller::reconcile;

const REWRITE_PATH: &str = "/apis/inference.networking.x-k8s.io/v1alpha2/namespaces/llm/inferencemodelrewrites/chat-rewrite";
const PATCH_QUERY: &[(&str, &str)] = &[("fieldManager", "inference-rollout-controller")];

/// A ModelSplit rollout `qwen` in `llm`: model `chat` from `qwen-v1` to
/// `qwen-v2` in rewrite `chat-rewrite`, steps 1,000 and 5,000 bp.
fn rollout() -> Arc<InferenceRollout> {
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "rollout.switchyard.dev/v1alpha1",
            "kind": "InferenceRollout",
            "metadata": {"name": "qwen", "namespace": "llm", "generation": 2, "uid": "u-1"},
            "spec": {
                "target": {"mode": "ModelSplit", "modelSplit": {
                    "rewriteRef": "chat-rewrite", "model": "chat",
                    "stable": "qwen-v1", "canary": "qwen-v2"}},
                "strategy": {"steps": [{"weight": 1000}, {"weight": 5000}], "settleTime": "0s",
                             "successfulChecksPerStep": 2}
            }
        }))
        .unwrap(),
    )
}

fn rewrite(targets: Value) -> Value {
    json!({
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
        "kind": "InferenceModelRewrite",
        "metadata": {"name": "chat-rewrite", "namespace": "llm", "generation": 4, "resourceVersion": "7"},
        "spec": {
            "poolRef": {"name": "qwen"},
            "rules": [
                {"targets": [{"modelRewrite": "fallback"}]},
                {"matches": [{"model": {"value": "chat"}}], "targets": targets},
            ],
        },
    })
}

fn reads(rewrite: Value) -> Vec<Expect> {
    vec![
        Expect::get(REWRITE_PATH, rewrite),
        Expect::get(
            "/apis/inference.networking.k8s.io/v1/namespaces/llm/inferencepools/qwen",
            pool("qwen"),
        ),
        Expect::list(
            "/api/v1/namespaces/llm/pods",
            &[("labelSelector", "app=qwen")],
            pods(2),
        ),
    ]
}

fn status_apply(check: impl FnOnce(&Value) + Send + 'static) -> Expect {
    let reply = serde_json::to_value(rollout().as_ref()).unwrap();
    Expect::patch(STATUS_PATH, STATUS_QUERY, move |body| {
        check(&body["status"])
    })
    .answering(200, reply)
}

#[tokio::test]
async fn first_reconcile_adds_the_canary_target_with_a_guarded_patch() {
    let (ctx, handle) = context();
    let mut calls = reads(rewrite(json!([{"modelRewrite": "qwen-v1"}])));
    calls.push(status_apply(|status| {
        assert_eq!(status["phase"], "Progressing");
        assert_eq!(
            status["weights"]["desired"],
            json!({"stable": 9000, "canary": 1000})
        );
    }));
    calls.push(
        Expect::patch(REWRITE_PATH, PATCH_QUERY, |body| {
            assert_eq!(
                body,
                json!([
                    {"op": "test", "path": "/spec/rules/1/matches/0/model/value", "value": "chat"},
                    {"op": "test", "path": "/spec/rules/1/targets", "value": [{"modelRewrite": "qwen-v1"}]},
                    {"op": "add", "path": "/spec/rules/1/targets/0/weight", "value": 9000},
                    {"op": "add", "path": "/spec/rules/1/targets/-", "value": {"modelRewrite": "qwen-v2", "weight": 1000}},
                ])
            );
        })
        .answering(
            200,
            rewrite(json!([
                {"modelRewrite": "qwen-v1", "weight": 9000},
                {"modelRewrite": "qwen-v2", "weight": 1000},
            ])),
        ),
    );
    calls.push(Expect::event("Started"));
    let server = serve(handle, calls);
    reconcile(rollout(), ctx.clone()).await.unwrap();
    server.await.unwrap();
    assert!(
        ctx.metrics
            .encode()
            .contains("switchyard_rollout_weight_writes_total{outcome=\"ok\"} 1")
    );
}

#[tokio::test]
async fn a_failed_test_operation_is_a_conflict_event_not_an_error() {
    let (ctx, handle) = context();
    let mut calls = reads(rewrite(json!([
        {"modelRewrite": "qwen-v1", "weight": 10000},
        {"modelRewrite": "qwen-v2", "weight": 1},
    ])));
    let invalid = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "message": "the server rejected our request due to an error in our request",
                         "reason": "Invalid", "code": 422});
    calls.push(status_apply(|_| {}));
    calls.push(
        Expect::patch(REWRITE_PATH, PATCH_QUERY, |body| {
            assert_eq!(
                body[1],
                json!({"op": "test", "path": "/spec/rules/1/targets", "value": [
                    {"modelRewrite": "qwen-v1", "weight": 10000},
                    {"modelRewrite": "qwen-v2", "weight": 1},
                ]})
            );
        })
        .answering(422, invalid),
    );
    calls.push(Expect::event("Started"));
    calls.push(Expect::event("WeightWriteConflict"));
    let server = serve(handle, calls);
    reconcile(rollout(), ctx.clone()).await.unwrap();
    server.await.unwrap();
    assert!(
        ctx.metrics
            .encode()
            .contains("switchyard_rollout_weight_writes_total{outcome=\"conflict\"} 1")
    );
}

#[tokio::test]
async fn a_missing_rewrite_is_reported_in_status_and_nothing_is_written() {
    let (ctx, handle) = context();
    let not_found = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "message": "not found", "reason": "NotFound", "code": 404});
    let calls = vec![
        Expect::get(REWRITE_PATH, not_found.clone()).answering(404, not_found),
        status_apply(|status| {
            let ready = status["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == "Ready")
                .unwrap();
            let message = ready["message"].as_str().unwrap();
            assert!(
                message.contains("InferenceModelRewrite llm/chat-rewrite not found"),
                "{ready:#}"
            );
        }),
        Expect::event("Started"),
    ];
    let server = serve(handle, calls);
    reconcile(rollout(), ctx).await.unwrap();
    server.await.unwrap();
}
