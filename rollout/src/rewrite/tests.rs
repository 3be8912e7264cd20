use serde_json::{Value, json};
use switchyard_api::InferenceModelRewrite;
use switchyard_api::rollout::{ModelSplitTarget, Weights};

use super::{locate, weight_patch};
use crate::error::Error;

fn target() -> ModelSplitTarget {
    ModelSplitTarget {
        rewrite_ref: "chat".into(),
        model: "chat".into(),
        stable: "llama-v1".into(),
        canary: "llama-v2".into(),
    }
}

fn rewrite(targets: Value) -> InferenceModelRewrite {
    serde_json::from_value(json!({
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
        "kind": "InferenceModelRewrite",
        "metadata": {"name": "chat", "generation": 3},
        "spec": {
            "poolRef": {"name": "pool"},
            "rules": [
                {"matches": [{"model": {"value": "other"}}], "targets": [{"modelRewrite": "x"}]},
                {"matches": [{"model": {"value": "alias"}}, {"model": {"value": "chat"}}], "targets": targets},
            ],
        },
    }))
    .unwrap()
}

fn patched(rewrite: &InferenceModelRewrite, desired: Weights) -> Value {
    let view = locate(rewrite, &target()).unwrap();
    let patch = weight_patch(rewrite, &view, &target(), desired).unwrap();
    let mut value = serde_json::to_value(rewrite).unwrap();
    json_patch::patch(&mut value, &patch).unwrap();
    value["spec"]["rules"][1]["targets"].clone()
}

#[test]
fn locate_reads_both_weights_of_the_matching_rule() {
    let found = rewrite(json!([
        {"modelRewrite": "llama-v1", "weight": 90},
        {"modelRewrite": "llama-v2", "weight": 10},
    ]));
    let view = locate(&found, &target()).unwrap();
    assert_eq!((view.rule_index, view.match_index), (1, 1));
    assert_eq!((view.stable_index, view.canary_index), (Some(0), Some(1)));
    assert_eq!(view.weights.stable_weight, Some(90));
    assert_eq!(view.weights.canary_weight, Some(10));
    assert_eq!(view.weights.generation, Some(3));
    assert!(view.weights.parents_accepted);
    assert_eq!(view.weights.normalized(), Weights::with_canary(1000));
}

#[test]
fn an_absent_canary_reads_as_weight_zero() {
    let found = rewrite(json!([{"modelRewrite": "llama-v1"}]));
    let view = locate(&found, &target()).unwrap();
    assert_eq!(view.canary_index, None);
    assert_eq!(view.weights.canary_weight, Some(0));
    assert_eq!(view.weights.normalized(), Weights::ALL_STABLE);
}

#[test]
fn the_exact_patch_tests_model_and_targets_then_replaces_both_weights() {
    let found = rewrite(json!([
        {"modelRewrite": "llama-v1", "weight": 9000},
        {"modelRewrite": "llama-v2", "weight": 1000},
    ]));
    let view = locate(&found, &target()).unwrap();
    let patch = weight_patch(&found, &view, &target(), Weights::with_canary(2500)).unwrap();
    assert_eq!(
        serde_json::to_value(&patch).unwrap(),
        json!([
            {"op": "test", "path": "/spec/rules/1/matches/1/model/value", "value": "chat"},
            {"op": "test", "path": "/spec/rules/1/targets", "value": [
                {"modelRewrite": "llama-v1", "weight": 9000},
                {"modelRewrite": "llama-v2", "weight": 1000},
            ]},
            {"op": "replace", "path": "/spec/rules/1/targets/0/weight", "value": 7500},
            {"op": "replace", "path": "/spec/rules/1/targets/1/weight", "value": 2500},
        ])
    );
}

#[test]
fn weight_zero_removes_the_target_and_a_later_weight_adds_it_back() {
    let both = rewrite(json!([
        {"modelRewrite": "llama-v2", "weight": 5000},
        {"modelRewrite": "llama-v1", "weight": 5000},
    ]));
    assert_eq!(
        patched(&both, Weights::ALL_STABLE),
        json!([{"modelRewrite": "llama-v1", "weight": 10000}])
    );
    let stable_only = rewrite(json!([{"modelRewrite": "llama-v1", "weight": 10000}]));
    assert_eq!(
        patched(&stable_only, Weights::with_canary(100)),
        json!([
            {"modelRewrite": "llama-v1", "weight": 9900},
            {"modelRewrite": "llama-v2", "weight": 100},
        ])
    );
    // Promotion leaves only the canary.
    assert_eq!(
        patched(&both, Weights::with_canary(10_000)),
        json!([{"modelRewrite": "llama-v2", "weight": 10000}])
    );
}

#[test]
fn unset_weights_are_added_on_every_target() {
    let unset = rewrite(json!([
        {"modelRewrite": "llama-v1"},
        {"modelRewrite": "llama-v2"},
    ]));
    let view = locate(&unset, &target()).unwrap();
    assert_eq!(view.weights.normalized(), Weights::with_canary(5000));
    assert_eq!(
        patched(&unset, Weights::with_canary(1000)),
        json!([
            {"modelRewrite": "llama-v1", "weight": 9000},
            {"modelRewrite": "llama-v2", "weight": 1000},
        ])
    );
}

#[test]
fn a_patch_built_on_old_weights_fails_on_the_new_ones() {
    let old = rewrite(json!([
        {"modelRewrite": "llama-v1", "weight": 90},
        {"modelRewrite": "llama-v2", "weight": 10},
    ]));
    let view = locate(&old, &target()).unwrap();
    let patch = weight_patch(&old, &view, &target(), Weights::with_canary(2000)).unwrap();
    let mut edited = serde_json::to_value(rewrite(json!([
        {"modelRewrite": "llama-v1", "weight": 50},
        {"modelRewrite": "llama-v2", "weight": 50},
    ])))
    .unwrap();
    let before = edited.clone();
    assert!(json_patch::patch(&mut edited, &patch).is_err());
    assert_eq!(edited, before, "a failed patch changes nothing");
}

#[test]
fn every_unusable_rewrite_is_an_error_saying_what_to_fix() {
    let cases = [
        (
            json!([{"modelRewrite": "llama-v3"}]),
            "also targets \"llama-v3\"",
        ),
        (
            json!([{"modelRewrite": "llama-v1"}, {"modelRewrite": "llama-v1"}]),
            "listed twice",
        ),
        (
            json!([{"modelRewrite": "llama-v1", "weight": 1}, {"modelRewrite": "llama-v3", "weight": 1}]),
            "may only target",
        ),
    ];
    for (targets, wanted) in cases {
        let err = locate(&rewrite(targets.clone()), &target()).unwrap_err();
        assert!(matches!(err, Error::Rewrite { .. }), "{err}");
        assert!(err.to_string().contains(wanted), "{targets}: {err}");
    }
    let err = locate(&rewrite(json!([])), &target()).unwrap_err();
    assert!(err.to_string().contains("targets neither"), "{err}");

    let mut unknown_model = target();
    unknown_model.model = "missing".into();
    let err = locate(
        &rewrite(json!([{"modelRewrite": "llama-v1"}])),
        &unknown_model,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("no rule matches model \"missing\""),
        "{err}"
    );

    let mut twice = rewrite(json!([{"modelRewrite": "llama-v1"}]));
    twice.spec.rules.push(twice.spec.rules[1].clone());
    let err = locate(&twice, &target()).unwrap_err();
    assert!(err.to_string().contains("two rules match"), "{err}");
}

/// The planner driving a rewrite through every step: each decision's write
/// goes through the guarded patch, and the next read is of the result.
#[test]
fn the_planner_walks_a_rewrite_from_stable_only_to_canary_only() {
    use crate::plan::{Observations, RouteObservation, WindowResult, analysis_window, plan};
    use switchyard_api::rollout::{
        InferenceRolloutSpec, Phase, RolloutTarget, SplitMode, Strategy,
    };

    let mut strategy = Strategy::with_weights(&[1000, 5000]);
    strategy.settle_time = "0s".into();
    strategy.analysis_interval = "1m".into();
    let spec = InferenceRolloutSpec {
        paused: false,
        target: RolloutTarget {
            mode: SplitMode::ModelSplit,
            route: None,
            stable: None,
            canary: None,
            model_split: Some(target()),
        },
        strategy,
        safety: Default::default(),
        analysis: Default::default(),
    };
    let mut value = serde_json::to_value(rewrite(json!([{"modelRewrite": "llama-v1"}]))).unwrap();
    let mut status = Default::default();
    let mut seen = Vec::new();
    for minute in 0..40 {
        let current: InferenceModelRewrite = serde_json::from_value(value.clone()).unwrap();
        let view = locate(&current, &target()).unwrap();
        let now = k8s_openapi::jiff::Timestamp::from_second(1_800_000_000 + 60 * minute).unwrap();
        // No metrics: every due window passes.
        let analysis = analysis_window(&spec, &status, now).map(|window| WindowResult {
            end: window.end,
            verdicts: Vec::new(),
        });
        let observations = Observations {
            now,
            generation: Some(1),
            route: RouteObservation::Found(view.weights.clone()),
            canary_ready: 1,
            stable_ready: 1,
            analysis,
            conflict_with: None,
        };
        let decision = plan(&spec, &status, &observations);
        if let Some(weights) = decision.write {
            let patch = weight_patch(&current, &view, &target(), weights).unwrap();
            json_patch::patch(&mut value, &patch).unwrap();
            value["metadata"]["generation"] =
                json!(value["metadata"]["generation"].as_i64().unwrap() + 1);
            seen.push(value["spec"]["rules"][1]["targets"].clone());
        }
        status = decision.status;
    }
    assert_eq!(
        status.phase,
        Some(Phase::Succeeded),
        "{status:#?} {seen:#?}"
    );
    assert_eq!(
        seen,
        [
            json!([{"modelRewrite": "llama-v1", "weight": 9000}, {"modelRewrite": "llama-v2", "weight": 1000}]),
            json!([{"modelRewrite": "llama-v1", "weight": 5000}, {"modelRewrite": "llama-v2", "weight": 5000}]),
            json!([{"modelRewrite": "llama-v2", "weight": 10000}]),
        ]
    );
}
