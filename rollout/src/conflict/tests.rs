//! The oldest rollout owns a rule; others on the same rule wait.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use switchyard_api::InferenceRollout;

use super::conflict_with;

fn rollout(name: &str, created: i64, rule: &str) -> InferenceRollout {
    let mut r: InferenceRollout = serde_json::from_value(serde_json::json!({
        "apiVersion": "rollout.switchyard.dev/v1alpha1",
        "kind": "InferenceRollout",
        "metadata": {"name": name, "namespace": "llm"},
        "spec": {
            "target": {"mode": "PoolSplit", "route": {"name": "r", "ruleName": rule},
                       "stable": {"name": "a"}, "canary": {"name": "b"}},
            "strategy": {"steps": [{"weight": 1000}]}
        }
    }))
    .unwrap();
    r.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
    r
}

#[test]
fn oldest_owns_the_rule_and_other_rules_do_not_conflict() {
    let old = rollout("old", 100, "chat");
    let new = rollout("new", 200, "chat");
    let other = rollout("other", 50, "embed");
    let all = [old.clone(), new.clone(), other.clone()];
    assert_eq!(conflict_with(&old, &all), None);
    assert_eq!(conflict_with(&new, &all).as_deref(), Some("old"));
    assert_eq!(conflict_with(&other, &all), None);
}

#[test]
fn same_age_breaks_ties_by_name_and_deleting_rollouts_give_way() {
    let a = rollout("a", 100, "chat");
    let b = rollout("b", 100, "chat");
    assert_eq!(
        conflict_with(&b, &[a.clone(), b.clone()]).as_deref(),
        Some("a")
    );
    let mut deleting = a.clone();
    deleting.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(300).unwrap()));
    assert_eq!(conflict_with(&b, &[deleting, b.clone()]), None);
}

fn model_split(name: &str, created: i64, model: &str) -> InferenceRollout {
    let mut r: InferenceRollout = serde_json::from_value(serde_json::json!({
        "apiVersion": "rollout.switchyard.dev/v1alpha1",
        "kind": "InferenceRollout",
        "metadata": {"name": name, "namespace": "llm"},
        "spec": {
            "target": {"mode": "ModelSplit", "modelSplit": {"rewriteRef": "r", "model": model,
                       "stable": "a", "canary": "b"}},
            "strategy": {"steps": [{"weight": 1000}]}
        }
    }))
    .unwrap();
    r.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
    r
}

#[test]
fn model_split_rollouts_conflict_on_one_rewrite_rule_only() {
    let old = model_split("old", 100, "chat");
    let new = model_split("new", 200, "chat");
    let other_model = model_split("other", 50, "embed");
    // A route named like the rewrite, with a rule named like the model.
    let route = rollout("route", 10, "chat");
    let all = [old.clone(), new.clone(), other_model.clone(), route.clone()];
    assert_eq!(conflict_with(&old, &all), None);
    assert_eq!(conflict_with(&new, &all).as_deref(), Some("old"));
    assert_eq!(conflict_with(&other_model, &all), None);
    assert_eq!(conflict_with(&route, &all), None);
}
