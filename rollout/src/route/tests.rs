//! Locating the backends and the guarded JSON Patch, applied with a real JSON
//! Patch implementation to show it changes the two weights and nothing else,
//! and that a concurrent weight edit makes it fail.

use serde_json::{Value, json};
use switchyard_api::HttpRoute;
use switchyard_api::rollout::{BackendTarget, RouteTarget, Weights};

use super::{locate, parents_accepted, weight_patch};

/// The api crate's realistic canary route: filters, timeouts, retry, session
/// persistence, a second rule, status — everything a write must keep.
fn route_json() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../api/tests/fixtures/httproute/inference-canary.yaml"
    );
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn target() -> (RouteTarget, BackendTarget, BackendTarget) {
    (
        RouteTarget {
            name: "llm-route".into(),
            rule_name: "llama-chat".into(),
            drift_policy: Default::default(),
        },
        BackendTarget::pool("llama-stable"),
        BackendTarget::pool("llama-canary"),
    )
}

fn route(value: &Value) -> HttpRoute {
    serde_json::from_value(value.clone()).unwrap()
}

#[test]
fn locates_the_rule_and_both_backends() {
    let (rule, stable, canary) = target();
    let view = locate(&route(&route_json()), &rule, &stable, &canary).unwrap();
    assert_eq!(
        (view.rule_index, view.stable_index, view.canary_index),
        (0, 0, 1)
    );
    assert_eq!(
        (view.stable_weight, view.canary_weight),
        (Some(90), Some(10))
    );
    assert_eq!(view.generation, Some(4));
    assert!(view.parents_accepted);
    assert_eq!(
        view.normalized(),
        Weights {
            stable: 9000,
            canary: 1000
        }
    );
}

#[test]
fn patch_changes_the_two_weights_and_nothing_else() {
    let original = route_json();
    let (rule, stable, canary) = target();
    let parsed = route(&original);
    let view = locate(&parsed, &rule, &stable, &canary).unwrap();
    let patch = weight_patch(&parsed, &view, "llama-chat", Weights::with_canary(2500)).unwrap();
    assert_eq!(
        serde_json::to_value(&patch).unwrap(),
        json!([
            {"op": "test", "path": "/spec/rules/0/name", "value": "llama-chat"},
            {"op": "test", "path": "/spec/rules/0/backendRefs/0/name", "value": "llama-stable"},
            {"op": "test", "path": "/spec/rules/0/backendRefs/0/weight", "value": 90},
            {"op": "test", "path": "/spec/rules/0/backendRefs/1/name", "value": "llama-canary"},
            {"op": "test", "path": "/spec/rules/0/backendRefs/1/weight", "value": 10},
            {"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 7500},
            {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 2500},
        ])
    );
    let mut patched = original.clone();
    json_patch::patch(&mut patched, &patch).unwrap();
    let mut expected = original;
    expected["spec"]["rules"][0]["backendRefs"][0]["weight"] = json!(7500);
    expected["spec"]["rules"][0]["backendRefs"][1]["weight"] = json!(2500);
    assert_eq!(patched, expected);
}

#[test]
fn concurrent_weight_edit_makes_the_patch_fail() {
    let original = route_json();
    let (rule, stable, canary) = target();
    let parsed = route(&original);
    let view = locate(&parsed, &rule, &stable, &canary).unwrap();
    let patch = weight_patch(&parsed, &view, "llama-chat", Weights::with_canary(2500)).unwrap();
    let mut edited = original.clone();
    edited["spec"]["rules"][0]["backendRefs"][1]["weight"] = json!(50);
    assert!(json_patch::patch(&mut edited.clone(), &patch).is_err());
    // So does a reordered list (another rule moved into index 0).
    let mut reordered = original;
    reordered["spec"]["rules"]
        .as_array_mut()
        .unwrap()
        .swap(0, 1);
    assert!(json_patch::patch(&mut reordered, &patch).is_err());
}

#[test]
fn unset_weights_are_guarded_by_the_whole_ref_and_added() {
    let mut original = route_json();
    for backend in original["spec"]["rules"][0]["backendRefs"]
        .as_array_mut()
        .unwrap()
    {
        backend.as_object_mut().unwrap().remove("weight");
    }
    let (rule, stable, canary) = target();
    let parsed = route(&original);
    let view = locate(&parsed, &rule, &stable, &canary).unwrap();
    assert_eq!(view.effective(), (1, 1));
    let patch = weight_patch(&parsed, &view, "llama-chat", Weights::with_canary(10)).unwrap();
    let ops = serde_json::to_value(&patch).unwrap();
    assert_eq!(ops[1]["path"], "/spec/rules/0/backendRefs/0");
    assert_eq!(ops[1]["value"]["name"], "llama-stable");
    assert_eq!(ops[3]["op"], "add");
    let mut patched = original.clone();
    json_patch::patch(&mut patched, &patch).unwrap();
    assert_eq!(
        patched["spec"]["rules"][0]["backendRefs"][0]["weight"],
        9990
    );
    assert_eq!(patched["spec"]["rules"][0]["backendRefs"][1]["weight"], 10);
    // Someone adds a filter to the canary ref meanwhile: the guard catches it.
    let mut edited = original;
    edited["spec"]["rules"][0]["backendRefs"][1]["port"] = json!(8000);
    assert!(json_patch::patch(&mut edited, &patch).is_err());
}

#[test]
fn missing_or_ambiguous_targets_are_errors_that_say_what_to_fix() {
    let original = route_json();
    let (mut rule, stable, canary) = target();
    let parsed = route(&original);
    rule.rule_name = "nope".into();
    let err = locate(&parsed, &rule, &stable, &canary)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no rule named \"nope\""), "{err}");

    let (rule, stable, _) = target();
    let err = locate(&parsed, &rule, &stable, &BackendTarget::pool("ghost"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no backendRef to the canary InferencePool \"ghost\""),
        "{err}"
    );

    let mut doubled = original.clone();
    let copy = doubled["spec"]["rules"][0].clone();
    doubled["spec"]["rules"].as_array_mut().unwrap().push(copy);
    let err = locate(
        &route(&doubled),
        &rule,
        &stable,
        &BackendTarget::pool("llama-canary"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("two rules are named"), "{err}");

    let mut twice = original;
    let backend = twice["spec"]["rules"][0]["backendRefs"][1].clone();
    twice["spec"]["rules"][0]["backendRefs"]
        .as_array_mut()
        .unwrap()
        .push(backend);
    let err = locate(
        &route(&twice),
        &rule,
        &stable,
        &BackendTarget::pool("llama-canary"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("lists the canary InferencePool \"llama-canary\" twice"),
        "{err}"
    );
}

#[test]
fn parents_must_accept_and_resolve_at_the_generation() {
    let mut value = route_json();
    assert!(parents_accepted(&route(&value), Some(4)));
    assert!(
        !parents_accepted(&route(&value), Some(5)),
        "stale observedGeneration"
    );
    value["status"]["parents"][0]["conditions"][1]["status"] = json!("False");
    assert!(
        !parents_accepted(&route(&value), Some(4)),
        "ResolvedRefs False"
    );
    value["status"]["parents"] = json!([]);
    assert!(
        !parents_accepted(&route(&value), Some(4)),
        "no parent at all"
    );
}

#[test]
fn normalized_weights_handle_zero_and_unset() {
    let (rule, stable, canary) = target();
    let mut value = route_json();
    value["spec"]["rules"][0]["backendRefs"][0]["weight"] = json!(0);
    value["spec"]["rules"][0]["backendRefs"][1]["weight"] = json!(0);
    let view = locate(&route(&value), &rule, &stable, &canary).unwrap();
    assert_eq!(view.normalized(), Weights::ALL_STABLE);
    value["spec"]["rules"][0]["backendRefs"][1]["weight"] = json!(1);
    let view = locate(&route(&value), &rule, &stable, &canary).unwrap();
    assert_eq!(view.normalized(), Weights::ALL_CANARY);
    assert!(view.carries(Weights {
        stable: 0,
        canary: 1
    }));
}
