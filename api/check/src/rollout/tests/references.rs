//! The rules between objects: route rule, backends, pools, rewrite, and two
//! rollouts on one rule; and the typed entry point a webhook calls.

use super::super::*;
use super::{POOL_SPLIT, STEPS, at, messages, pool, rollout, with_world, world};
use switchyard_api::rollout::{BackendTarget, RouteTarget, Strategy};

#[test]
fn the_route_must_exist() {
    let spec = POOL_SPLIT.replace("name: r,", "name: rr,") + STEPS;
    assert_eq!(
        with_world(&spec),
        [at(
            4,
            "spec.target.route.name: no HTTPRoute \"rr\" in namespace default among the checked objects; did you mean r?"
        )]
    );
}

#[test]
fn the_rule_must_exist() {
    let spec = POOL_SPLIT.replace("ruleName: chat", "ruleName: chta") + STEPS;
    assert_eq!(
        with_world(&spec),
        [at(
            4,
            "spec.target.route.ruleName: HTTPRoute r has no rule named \"chta\"; did you mean ruleName: chat?"
        )]
    );
    let unnamed = world().replace("  - name: chat\n    backendRefs", "  - backendRefs");
    assert_eq!(
        messages(&(unnamed + "---\n" + &rollout("ro", &(POOL_SPLIT.to_owned() + STEPS)))),
        [at(
            4,
            "spec.target.route.ruleName: HTTPRoute r has no rule named \"chat\"; none of its rules has a name: add name: chat to the rule whose backendRefs are the stable and canary pools"
        )]
    );
}

#[test]
fn the_rule_must_hold_both_backends_and_the_pools_must_exist() {
    let spec = POOL_SPLIT.replace("canary: {name: v2}", "canary: {name: v3}") + STEPS;
    assert_eq!(
        with_world(&spec),
        [
            at(
                4,
                "spec.target.canary: rule chat of HTTPRoute r has no backendRef to InferencePool v3; the controller only changes weights, it never adds backends: add {group: inference.networking.k8s.io, kind: InferencePool, name: v3} to that rule's backendRefs"
            ),
            at(
                4,
                "spec.target.canary.name: no InferencePool \"v3\" in namespace default among the checked objects; did you mean v1?"
            ),
        ]
    );
}

#[test]
fn the_pool_group_must_match() {
    let legacy = pool("v2", "default").replace(
        "inference.networking.k8s.io/v1",
        "inference.networking.x-k8s.io/v1alpha2",
    );
    let text = world().replace(&pool("v2", "default"), &legacy)
        + "---\n"
        + &rollout("ro", &(POOL_SPLIT.to_owned() + STEPS));
    let found = messages(&text);
    assert!(found.contains(&at(4, "spec.target.canary.group: InferencePool v2 is in group inference.networking.x-k8s.io, but the rollout says group inference.networking.k8s.io: write group: inference.networking.x-k8s.io")), "{found:#?}");
}

#[test]
fn the_rewrite_rule_and_targets_must_exist() {
    let rewrite = "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModelRewrite\nmetadata: {name: rw}\nspec:\n  poolRef: {name: v1}\n  rules:\n  - matches: [{model: {value: llama}}]\n    targets: [{modelRewrite: llama-v2, weight: 100}]\n";
    let split = |rewrite_ref: &str, model: &str| {
        rollout(
            "ro",
            &format!(
                "  target: {{mode: ModelSplit, modelSplit: {{rewriteRef: {rewrite_ref}, model: {model}, stable: llama-v2, canary: llama-v3}}}}\n{STEPS}"
            ),
        )
    };
    let run = |ro: String| messages(&(rewrite.to_owned() + "---\n" + &ro));
    assert_eq!(
        run(split("rw2", "llama")),
        [at(
            2,
            "spec.target.modelSplit.rewriteRef: no InferenceModelRewrite \"rw2\" in namespace default among the checked objects; did you mean rw?"
        )]
    );
    assert_eq!(
        run(split("rw", "qwen")),
        [at(
            2,
            "spec.target.modelSplit.model: InferenceModelRewrite rw has no rule matching model \"qwen\"; its rules match llama"
        )]
    );
    // The canary absent is weight 0: the controller adds the target.
    assert_eq!(run(split("rw", "llama")), Vec::<String>::new());
}

#[test]
fn the_rewrite_rule_may_only_hold_the_two_arms_once_each() {
    let rewrite = |targets: &str| {
        format!(
            "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModelRewrite\nmetadata: {{name: rw}}\nspec:\n  poolRef: {{name: v1}}\n  rules:\n  - matches: [{{model: {{value: llama}}}}]\n    targets: {targets}\n"
        )
    };
    let run = |targets: &str| {
        let ro = rollout(
            "ro",
            &format!(
                "  target: {{mode: ModelSplit, modelSplit: {{rewriteRef: rw, model: llama, stable: llama-v2, canary: llama-v3}}}}\n{STEPS}"
            ),
        );
        messages(&(rewrite(targets) + "---\n" + &ro))
    };
    assert_eq!(
        run("[{modelRewrite: llama-v2, weight: 1}, {modelRewrite: llama-v9, weight: 1}]"),
        [at(
            2,
            "spec.target.modelSplit: the rule for model llama of InferenceModelRewrite rw also targets llama-v9; a ModelSplit rule may only target the stable llama-v2 and the canary llama-v3: move llama-v9 to its own rule"
        )]
    );
    assert_eq!(
        run("[{modelRewrite: llama-v3}, {modelRewrite: llama-v3}]"),
        [at(
            2,
            "spec.target.modelSplit.canary: the rule for model llama of InferenceModelRewrite rw lists the target llama-v3 twice; list it once"
        )]
    );
    // After a promotion only the canary is left: fine.
    assert_eq!(
        run("[{modelRewrite: llama-v3, weight: 10000}]"),
        Vec::<String>::new()
    );
}

#[test]
fn two_rollouts_on_one_rule() {
    let spec = POOL_SPLIT.to_owned() + STEPS;
    let text = rollout("ro", &spec) + "---\n" + &rollout("other", &spec);
    let clash = |index: usize, name: &str, other: &str| {
        format!(
            "m.yaml:{index}: InferenceRollout/{name}: spec.target.route: InferenceRollout {other} also weighs rule chat of HTTPRoute r; two rollouts would overwrite each other's weights: keep one rollout per rule (delete or retarget one)"
        )
    };
    assert_eq!(
        messages(&text),
        [clash(1, "ro", "other"), clash(2, "other", "ro")]
    );
    // Another namespace is another route.
    let elsewhere = rollout("other", &spec).replace("{name: other}", "{name: other, namespace: b}");
    assert_eq!(
        messages(&(rollout("ro", &spec) + "---\n" + &elsewhere)),
        Vec::<String>::new()
    );
}

/// The webhook's entry point: typed objects, with "known to be none" judged and
/// "not known" skipped.
#[test]
fn reference_problems_over_typed_objects() {
    let mut spec: InferenceRolloutSpec = serde_json::from_value(serde_json::json!({
        "target": {"mode": "PoolSplit", "route": {"name": "r", "ruleName": "chat"},
                   "stable": {"name": "v1"}, "canary": {"name": "v2"}},
        "strategy": {"steps": [{"weight": 500}]}
    }))
    .unwrap();
    assert_eq!(spec_problems(&spec), []);
    let unknown = Objects::default();
    assert_eq!(reference_problems("ns", "ro", &spec, &unknown), []);
    let none = Objects {
        routes: Some(Vec::new()),
        pools: Some(vec![PoolObject::new("ns", "v1")]),
        ..Objects::default()
    };
    assert_eq!(
        reference_problems("ns", "ro", &spec, &none),
        [
            Problem::missing(
                "spec.target.route.name",
                "no HTTPRoute \"r\" in namespace ns among the checked objects"
            ),
            Problem::missing(
                "spec.target.canary.name",
                "no InferencePool \"v2\" in namespace ns among the checked objects; did you mean v1?"
            ),
        ]
    );
    // The rollout being updated is among the stored ones: not a clash with itself.
    spec.target.canary = Some(BackendTarget::pool("v1x"));
    let stored = Objects {
        rollouts: vec![Object::new("ns", "ro", spec.clone())],
        ..Objects::default()
    };
    assert_eq!(reference_problems("ns", "ro", &spec, &stored), []);
    spec.target.route = Some(RouteTarget {
        name: "r".to_owned(),
        rule_name: "chat".to_owned(),
        drift_policy: Default::default(),
    });
    spec.strategy = Strategy::with_weights(&[500]);
    assert_eq!(
        reference_problems("ns", "new", &spec, &stored),
        [Problem::new(
            "spec.target.route",
            "InferenceRollout ro also weighs rule chat of HTTPRoute r; two rollouts would overwrite each other's weights: keep one rollout per rule (delete or retarget one)"
        )]
    );
}
