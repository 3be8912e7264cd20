//! One test per InferenceRollout rule, each asserting the whole finding.

use crate::tests::{messages, pool};

mod references;

const HEAD: &str = "apiVersion: rollout.switchyard.dev/v1alpha1\nkind: InferenceRollout\n";
const POOL_SPLIT: &str = "  target:\n    mode: PoolSplit\n    route: {name: r, ruleName: chat}\n    stable: {name: v1}\n    canary: {name: v2}\n";
const STEPS: &str =
    "  strategy:\n    steps: [{weight: 500}, {weight: 2500, pause: {}}, {weight: 5000}]\n";

/// An InferenceRollout named `name` with this `spec` body (indented by two).
fn rollout(name: &str, spec: &str) -> String {
    format!("{HEAD}metadata: {{name: {name}}}\nspec:\n{spec}")
}

/// The route `r` with rule `chat` over pools v1 and v2, and both pools.
fn world() -> String {
    pool("v1", "default")
        + "---\n"
        + &pool("v2", "default")
        + "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n  - name: chat\n    backendRefs:\n    - {group: inference.networking.k8s.io, kind: InferencePool, name: v1, weight: 100}\n    - {group: inference.networking.k8s.io, kind: InferencePool, name: v2, weight: 0}\n"
}

/// The findings of rollout `ro` with `spec`, checked alone.
fn alone(spec: &str) -> Vec<String> {
    messages(&rollout("ro", spec))
}

/// The findings of rollout `ro` with `spec`, checked with [`world`].
fn with_world(spec: &str) -> Vec<String> {
    messages(&(world() + "---\n" + &rollout("ro", spec)))
}

fn at(index: usize, message: &str) -> String {
    format!("m.yaml:{index}: InferenceRollout/ro: {message}")
}

#[test]
fn a_valid_pool_split_has_no_findings() {
    assert_eq!(
        with_world(&(POOL_SPLIT.to_owned() + STEPS)),
        Vec::<String>::new()
    );
}

/// A ModelSplit whose rewrite holds the rule and both targets has no findings.
#[test]
fn a_valid_model_split_has_no_findings() {
    let rewrite = "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModelRewrite\nmetadata: {name: rw}\nspec:\n  poolRef: {name: v1}\n  rules:\n  - matches: [{model: {value: llama}}]\n    targets: [{modelRewrite: llama-v2, weight: 100}, {modelRewrite: llama-v3, weight: 1}]\n";
    let spec = "  target:\n    mode: ModelSplit\n    modelSplit: {rewriteRef: rw, model: llama, stable: llama-v2, canary: llama-v3}\n  strategy: {steps: [{weight: 1000}]}\n  analysis:\n    source: {prometheus: {address: 'http://prom:9090', armSelector: 'model=\"{{arm}}\"'}}\n    metrics:\n    - {name: errors, type: ErrorRate, max: 0.01}\n    - {name: custom, type: Query, query: 'sum(x)', maxRatioVsStable: 1.2}\n";
    let text = pool("v1", "default") + "---\n" + rewrite + "---\n" + &rollout("ro", spec);
    assert_eq!(messages(&text), Vec::<String>::new());
}

#[test]
fn missing_spec() {
    assert_eq!(
        messages(&format!("{HEAD}metadata: {{name: ro}}\n")),
        [at(
            1,
            "spec is required: write spec: {target: {mode: PoolSplit, route: {name: <HTTPRoute>, ruleName: <rule>}, stable: {name: <pool>}, canary: {name: <pool>}}, strategy: {steps: [{weight: 500}]}}"
        )]
    );
}

#[test]
fn a_spec_that_does_not_decode_says_why() {
    assert_eq!(
        alone(&format!("  target: {{mode: Canary}}\n{STEPS}")),
        [at(
            1,
            "spec: does not decode as an InferenceRollout spec: unknown variant `Canary`, expected `PoolSplit` or `ModelSplit`"
        )]
    );
}

#[test]
fn another_version() {
    let text = "apiVersion: rollout.switchyard.dev/v1\nkind: InferenceRollout\nmetadata: {name: ro}\nspec:\n".to_owned() + POOL_SPLIT + STEPS;
    assert_eq!(
        messages(&text),
        [at(
            1,
            "apiVersion: InferenceRollout is not served at apiVersion rollout.switchyard.dev/v1; write apiVersion: rollout.switchyard.dev/v1alpha1"
        )]
    );
}

#[test]
fn pool_split_needs_route_stable_and_canary() {
    assert_eq!(
        alone(&format!("  target: {{mode: PoolSplit}}\n{STEPS}")),
        [
            at(
                1,
                "spec.target.route is required for mode: PoolSplit: write route: {name: <HTTPRoute>, ruleName: <the rule's name>}"
            ),
            at(
                1,
                "spec.target.stable is required for mode: PoolSplit: write stable: {name: <InferencePool>}"
            ),
            at(
                1,
                "spec.target.canary is required for mode: PoolSplit: write canary: {name: <InferencePool>}"
            ),
        ]
    );
}

#[test]
fn model_split_needs_model_split() {
    assert_eq!(
        alone(&format!("  target: {{mode: ModelSplit}}\n{STEPS}")),
        [at(
            1,
            "spec.target.modelSplit is required for mode: ModelSplit: write modelSplit: {rewriteRef: <InferenceModelRewrite>, model: <requested model>, stable: <modelRewrite>, canary: <modelRewrite>}"
        )]
    );
}

#[test]
fn stable_and_canary_must_differ() {
    let spec = "  target: {mode: PoolSplit, route: {name: r, ruleName: chat}, stable: {name: v1}, canary: {name: v1}}\n".to_owned() + STEPS;
    assert_eq!(
        alone(&spec),
        [at(
            1,
            "spec.target.canary must be a different backend than stable (both are InferencePool v1): name the new version's pool here"
        )]
    );
    let spec = "  target: {mode: ModelSplit, modelSplit: {rewriteRef: rw, model: m, stable: a, canary: a}}\n".to_owned() + STEPS;
    assert_eq!(
        alone(&spec),
        [at(
            1,
            "spec.target.modelSplit.canary must differ from modelSplit.stable (both are a): name the new model's modelRewrite here"
        )]
    );
}

#[test]
fn empty_names() {
    let spec = "  target: {mode: PoolSplit, route: {name: r, ruleName: ''}, stable: {name: v1}, canary: {name: v2}}\n".to_owned() + STEPS;
    assert_eq!(
        alone(&spec),
        [at(1, "spec.target.route.ruleName must not be empty")]
    );
}

#[test]
fn steps_must_exist() {
    assert_eq!(
        alone(&format!("{POOL_SPLIT}  strategy: {{steps: []}}\n")),
        [at(
            1,
            "spec.strategy.steps must have at least 1 entry: write steps: [{weight: 500}, {weight: 2500}] (canary weights in basis points, 10000 = 100 %)"
        )]
    );
}

#[test]
fn step_weights_within_range_and_max_weight() {
    let spec = format!(
        "{POOL_SPLIT}  strategy: {{maxWeight: 5000, steps: [{{weight: 0}}, {{weight: 2000}}, {{weight: 6000}}]}}\n"
    );
    assert_eq!(
        alone(&spec),
        [
            at(
                1,
                "spec.strategy.steps[0].weight must be between 1 and 10000, got 0"
            ),
            at(
                1,
                "spec.strategy.steps[2].weight is 6000, above maxWeight 5000: lower the step or raise spec.strategy.maxWeight"
            ),
        ]
    );
}

#[test]
fn step_weights_unique_and_increasing() {
    let spec = format!(
        "{POOL_SPLIT}  strategy: {{steps: [{{weight: 500}}, {{weight: 2500}}, {{weight: 500}}, {{weight: 1000}}]}}\n"
    );
    assert_eq!(
        alone(&spec),
        [at(
            1,
            "spec.strategy.steps[2].weight: 500 repeats steps[0]: step weights must be unique; remove one"
        ),]
    );
    let spec = format!("{POOL_SPLIT}  strategy: {{steps: [{{weight: 2500}}, {{weight: 500}}]}}\n");
    assert_eq!(
        alone(&spec),
        [at(
            1,
            "spec.strategy.steps[1].weight: 500 comes after 2500: steps must be strictly increasing (the controller refuses this spec as InvalidSpec); reorder them"
        )]
    );
}

#[test]
fn durations_and_counts() {
    let spec = format!(
        "{POOL_SPLIT}  strategy: {{steps: [{{weight: 500, minDuration: 5 minutes}}], settleTime: 2min, failureThreshold: 0}}\n  safety: {{minCanaryReadyEndpoints: 0, capacityGuard: {{headroomPercent: 2000}}}}\n"
    );
    assert_eq!(
        alone(&spec),
        [
            at(
                1,
                "spec.strategy.steps[0].minDuration: \"5 minutes\" is not a duration: write 1 to 4 parts of a number and h, m, s or ms, like 90s or 1m30s"
            ),
            at(
                1,
                "spec.strategy.failureThreshold must be between 1 and 1000, got 0"
            ),
            at(
                1,
                "spec.strategy.settleTime: \"2min\" is not a duration: write 1 to 4 parts of a number and h, m, s or ms, like 90s or 1m30s"
            ),
            at(
                1,
                "spec.safety.minCanaryReadyEndpoints must be between 1 and 10000, got 0"
            ),
            at(
                1,
                "spec.safety.capacityGuard.headroomPercent must be between 0 and 1000, got 2000"
            ),
        ]
    );
}

#[test]
fn exactly_one_source() {
    let source =
        "  analysis: {source: {epp: {}, prometheus: {address: 'prom:9090', armSelector: x}}}\n";
    assert_eq!(
        alone(&format!("{POOL_SPLIT}{STEPS}{source}")),
        [
            at(
                1,
                "spec.analysis.source must set exactly one of epp or prometheus: write source: {epp: {}} to read the EPP's metrics, or source: {prometheus: {address: http://prometheus:9090, armSelector: <selector>}}"
            ),
            at(
                1,
                "spec.analysis.source.prometheus.address must be an http:// or https:// URL, got \"prom:9090\": write address: http://<host>:9090"
            ),
        ]
    );
}

#[test]
fn metric_rules() {
    let metrics = "  analysis:\n    metrics:\n    - {name: ttft, type: TTFT, quantile: 1.5, max: 2}\n    - {name: ttft, type: ErrorRate}\n    - {name: q, type: Query, max: 1}\n    - {name: shed, type: ShedRate, onFail: Rollback, max: 0.1}\n";
    assert_eq!(
        alone(&format!("{POOL_SPLIT}{STEPS}{metrics}")),
        [
            at(
                1,
                "spec.analysis.metrics[0].quantile must be between 0 and 1, got 1.5: write 0.95 for p95"
            ),
            at(
                1,
                "spec.analysis.metrics[1].name: \"ttft\" repeats metrics[0]: metric names must be unique; rename one"
            ),
            at(
                1,
                "spec.analysis.metrics[1] must set at least one limit: max, min, maxDeltaVsStable, maxRatioVsStable or minRatioVsStable (e.g. maxRatioVsStable: 1.2)"
            ),
            at(
                1,
                "spec.analysis.metrics[2].query is required for type: Query: write the PromQL, e.g. query: sum(rate(errors{pool=\"{{arm}}\"}[{{window}}]))"
            ),
            at(
                1,
                "spec.analysis.metrics[2].type: Query runs PromQL, which needs spec.analysis.source.prometheus: set the Prometheus source or use a built-in type (ErrorRate, ShedRate, TTFT, InterTokenLatency, OutputTokenThroughput)"
            ),
            at(
                1,
                "spec.analysis.metrics[3].onFail: ShedRate is a capacity signal and can only pause: write onFail: Pause, or leave onFail out"
            ),
        ]
    );
}

#[test]
fn garbage_rollouts_never_panic() {
    let garbage = [
        "spec: 1",
        "spec: {target: [], strategy: {}}",
        "spec: {target: {mode: PoolSplit, route: 3}, strategy: {steps: [{weight: 'x'}]}}",
        "spec: {target: {mode: ModelSplit, modelSplit: {}}, strategy: {steps: [{weight: 99999999999}]}}",
        "spec: {target: {mode: PoolSplit}, strategy: {steps: [{weight: 1}]}, analysis: {metrics: [{}]}}",
    ];
    for body in garbage {
        let text = format!("{HEAD}metadata: {{name: ro}}\n{body}\n---\n") + &world();
        let found = messages(&text);
        assert!(!found.is_empty(), "{body}");
        assert!(
            found
                .iter()
                .all(|f| f.starts_with("m.yaml:1: InferenceRollout/ro: spec")),
            "{found:#?}"
        );
    }
}
