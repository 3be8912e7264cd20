//! M9: the manual-weight guard cannot be bypassed by renaming the rule, by
//! writing before the webhook has listed the rollouts, or through a ModelSplit
//! rollout's InferenceModelRewrite.

use serde_json::{Value, json};
use switchyard_api::rollout::InferenceRolloutSpec;

use super::{cluster, route, update_by};
use crate::admission::{Config, Enforcement, Operation, Request, admit};
use crate::objects::{Object, Objects};

fn update_with(objects: &Objects, old: &Value, new: &Value) -> crate::admission::Verdict {
    let request = Request {
        object: Some(new),
        old_object: Some(old),
        operation: Operation::Update,
        namespace: Some("llm"),
        username: "alice",
    };
    admit(&request, objects, &Config::default())
}

#[test]
fn m9_renaming_an_owned_rule_is_denied_like_a_weight_edit() {
    let old = route(100, 0);
    let mut renamed = route(50, 50);
    renamed["spec"]["rules"][0]["name"] = json!("chat-2");
    let verdict = update_by("alice", &old, &renamed, &Config::default());
    assert!(!verdict.allowed, "{verdict:?}");
    let message = verdict.message.unwrap();
    assert!(message.contains("removes or renames it"), "{message}");
    assert!(message.contains("InferenceRollout llm/ro"), "{message}");
    // Warn mode lets it through with the same words.
    let warn = Config {
        manual_weight_edits: Enforcement::Warn,
        ..Config::default()
    };
    let verdict = update_by("alice", &old, &renamed, &warn);
    assert!(verdict.allowed);
    assert!(verdict.warnings[0].contains("removes or renames it"));
}

#[test]
fn m9_weight_edits_are_refused_until_the_rollouts_are_listed() {
    let unsynced = Objects {
        rollouts: Vec::new(),
        rollouts_unsynced: true,
        ..cluster()
    };
    let verdict = update_with(&unsynced, &route(100, 0), &route(50, 50));
    assert!(!verdict.allowed, "{verdict:?}");
    assert!(
        verdict
            .message
            .unwrap()
            .contains("has not loaded the InferenceRollouts yet")
    );
    // An edit that leaves every weight alone is not held up.
    let mut relabelled = route(100, 0);
    relabelled["spec"]["hostnames"] = json!(["chat.example.com"]);
    assert!(update_with(&unsynced, &route(100, 0), &relabelled).allowed);
}

fn rewrite(weights: [i32; 2]) -> Value {
    json!({
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferenceModelRewrite",
        "metadata": {"name": "rw", "namespace": "llm"},
        "spec": {"poolRef": {"name": "v2"},
                 "rules": [{"matches": [{"model": {"value": "llama"}}],
                            "targets": [{"modelRewrite": "llama-v1", "weight": weights[0]},
                                        {"modelRewrite": "llama-v2", "weight": weights[1]}]}]}
    })
}

fn model_split_cluster() -> Objects {
    let spec: InferenceRolloutSpec = serde_json::from_value(json!({
        "target": {"mode": "ModelSplit",
                   "modelSplit": {"rewriteRef": "rw", "model": "llama",
                                  "stable": "llama-v1", "canary": "llama-v2"}},
        "strategy": {"steps": [{"weight": 500}, {"weight": 5000}]}
    }))
    .unwrap();
    Objects {
        rollouts: vec![Object::new("llm", "ms", spec)],
        ..cluster()
    }
}

#[test]
fn m9_model_split_rewrite_weights_are_guarded() {
    let objects = model_split_cluster();
    let verdict = update_with(&objects, &rewrite([9000, 1000]), &rewrite([5000, 5000]));
    assert!(!verdict.allowed, "{verdict:?}");
    let message = verdict.message.unwrap();
    assert!(message.contains("InferenceRollout llm/ms"), "{message}");
    assert!(message.contains("changes its targets"), "{message}");
    // Changing the match so the controller no longer finds the rule is refused too.
    let mut rematched = rewrite([9000, 1000]);
    rematched["spec"]["rules"][0]["matches"][0]["model"]["value"] = json!("llama-x");
    let verdict = update_with(&objects, &rewrite([9000, 1000]), &rematched);
    assert!(!verdict.allowed, "{verdict:?}");
    // The controller's own writes stay allowed.
    let trusted = Config {
        trusted_users: vec!["alice".to_owned()],
        ..Config::default()
    };
    let request = Request {
        object: Some(&rewrite([5000, 5000])),
        old_object: Some(&rewrite([9000, 1000])),
        operation: Operation::Update,
        namespace: Some("llm"),
        username: "alice",
    };
    assert!(admit(&request, &objects, &trusted).allowed);
}
