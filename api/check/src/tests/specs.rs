//! InferenceObjective, InferenceModelRewrite and InferenceModel mistakes.

use super::messages;

const OBJECTIVE: &str = "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceObjective\nmetadata: {name: chat}\n";
const REWRITE: &str = "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModelRewrite\nmetadata: {name: rw}\n";
const MODEL: &str = "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\nmetadata: {name: m}\n";

#[test]
fn priority_must_be_an_integer() {
    let out = messages(&format!(
        "{OBJECTIVE}spec: {{priority: high, poolRef: {{name: p}}}}\n"
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferenceObjective/chat: spec.priority must be an integer, got the string \"high\": higher priorities are served first, 0 when unset, negative ones are shed first"
        ]
    );
    let out = messages(&format!(
        "{OBJECTIVE}spec: {{priority: 1.5, poolRef: {{name: p}}}}\n"
    ));
    assert_eq!(
        out,
        ["m.yaml:1: InferenceObjective/chat: spec.priority must be a whole number, got 1.5"]
    );
    let out = messages(&format!(
        "{OBJECTIVE}spec: {{priority: '2', poolRef: {{name: p}}}}\n"
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferenceObjective/chat: spec.priority must be an integer, not the string \"2\": remove the quotes"
        ]
    );
}

#[test]
fn criticality_value_as_priority() {
    let out = messages(&format!(
        "{OBJECTIVE}spec: {{priority: Critical, poolRef: {{name: p}}}}\n"
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferenceObjective/chat: spec.priority: priority is an integer, not a criticality: write priority: 1 (Critical → 1, Standard → 0, the default, Sheddable → -1: higher priorities are served first)"
        ]
    );
}

#[test]
fn criticality_on_an_objective_suggests_priority() {
    let out = messages(&format!(
        "{OBJECTIVE}spec: {{criticality: Sheddable, poolRef: {{name: p}}}}\n"
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferenceObjective/chat: spec.criticality: criticality is the InferenceModel field; InferenceObjective uses an integer priority: write priority: -1 (Critical → 1, Standard → 0, the default, Sheddable → -1: higher priorities are served first)"
        ]
    );
}

#[test]
fn objective_needs_a_pool_ref_to_a_pool() {
    assert_eq!(
        messages(&format!("{OBJECTIVE}spec: {{priority: 1}}\n")),
        [
            "m.yaml:1: InferenceObjective/chat: spec.poolRef is required: add poolRef: {name: my-pool}"
        ]
    );
    assert_eq!(
        messages(&format!(
            "{OBJECTIVE}spec: {{poolRef: {{kind: Service, name: p}}}}\n"
        )),
        [
            "m.yaml:1: InferenceObjective/chat: spec.poolRef.kind: \"Service\" cannot be a pool: write kind: InferencePool, or leave kind out"
        ]
    );
}

#[test]
fn v1alpha1_inference_model_becomes_an_objective() {
    let text = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: InferenceModel\nmetadata: {name: llama}\nspec:\n  modelName: llama-3-70b\n  criticality: Critical\n  poolRef: {name: llama}\n";
    assert_eq!(
        messages(text),
        [
            "m.yaml:1: InferenceModel/llama: apiVersion: InferenceModel is not served at apiVersion inference.networking.x-k8s.io/v1alpha1; it existed only as inference.networking.x-k8s.io/v1alpha2 and is replaced by InferenceObjective: write apiVersion: inference.networking.x-k8s.io/v1alpha2 and kind: InferenceObjective (each field below says what it becomes)",
            "m.yaml:1: InferenceModel/llama: spec.criticality: criticality is the InferenceModel field; InferenceObjective uses an integer priority: write priority: 1 (Critical → 1, Standard → 0, the default, Sheddable → -1: higher priorities are served first)",
            "m.yaml:1: InferenceModel/llama: spec.modelName: InferenceObjective has no modelName: route requests for llama-3-70b with an HTTPRoute rule matching header x-gateway-inference-model: llama-3-70b (the body-based router sets it from the request's model field), serve it under another name with an InferenceModelRewrite, and pick this objective per request with header x-gateway-inference-objective: <this objective's name>",
        ]
    );
}

#[test]
fn legacy_model_is_read_and_its_criticality_checked() {
    let ok = format!(
        "{MODEL}spec: {{modelName: food-review, criticality: Critical, poolRef: {{name: p}}, targetModels: [{{name: a, weight: 50}}, {{name: b, weight: 50}}]}}\n"
    );
    assert_eq!(messages(&ok), Vec::<String>::new());
    let out = messages(&format!(
        "{MODEL}spec: {{modelName: x, criticality: critical, poolRef: {{name: p}}}}\n"
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferenceModel/m: spec.criticality: \"critical\" is not a criticality: write criticality: Critical; use one of Critical, Standard, Sheddable, or move to an InferenceObjective (inference.networking.x-k8s.io/v1alpha2) with an integer priority (Critical → 1, Standard → 0, the default, Sheddable → -1: higher priorities are served first)"
        ]
    );
}

#[test]
fn legacy_target_model_weights_all_or_none_and_in_range() {
    let out = messages(&format!(
        "{MODEL}spec: {{modelName: x, poolRef: {{name: p}}, targetModels: [{{name: a, weight: 0}}, {{name: b}}]}}\n"
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferenceModel/m: spec.targetModels[0].weight is 0; it must be from 1 to 1000000",
            "m.yaml:1: InferenceModel/m: spec.targetModels: weights must be set on every target model or on none (1 of 2 have one): add the missing weights",
        ]
    );
}

#[test]
fn rewrite_split_is_targets_and_weights_are_bounded() {
    let out = messages(&format!(
        "{REWRITE}spec:\n  poolRef: {{name: p}}\n  rules:\n  - split: [{{modelRewrite: a, weight: 1}}]\n  - targets: [{{modelRewrite: a, weight: 2000000}}, {{modelRewrite: b}}]\n"
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferenceModelRewrite/rw: spec.rules[0].split: split is the proposal's name; the served API calls it targets: write targets: [{modelRewrite: a, weight: 1}]",
            "m.yaml:1: InferenceModelRewrite/rw: spec.rules[1].targets[0].weight is 2000000; it must be from 1 to 1000000",
            "m.yaml:1: InferenceModelRewrite/rw: spec.rules[1].targets: weights must be set on every target or on none (1 of 2 have one): add the missing weights",
        ]
    );
}

#[test]
fn rewrite_lists_are_bounded_as_the_crd_bounds_them() {
    // The API server refuses more than 64 targets in a rule and more than 128 rules
    // (the CRD's maxItems); the checker says so before apply.
    let targets: Vec<String> = (0..65).map(|i| format!("{{modelRewrite: m{i}}}")).collect();
    let out = messages(&format!(
        "{REWRITE}spec:\n  poolRef: {{name: p}}\n  rules:\n  - targets: [{}]\n",
        targets.join(", ")
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferenceModelRewrite/rw: spec.rules[0].targets has 65 entries; at most 64 are allowed"
        ]
    );
    let rules: Vec<&str> = vec!["  - targets: [{modelRewrite: a}]"; 129];
    let out = messages(&format!(
        "{REWRITE}spec:\n  poolRef: {{name: p}}\n  rules:\n{}\n",
        rules.join("\n")
    ));
    assert_eq!(
        out,
        ["m.yaml:1: InferenceModelRewrite/rw: spec.rules has 129 entries; at most 128 are allowed"]
    );
    let at_the_bound: Vec<&str> = vec!["  - targets: [{modelRewrite: a}]"; 128];
    let out = messages(&format!(
        "{REWRITE}spec:\n  poolRef: {{name: p}}\n  rules:\n{}\n",
        at_the_bound.join("\n")
    ));
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn rewrite_match_and_target_shapes() {
    let out = messages(&format!(
        "{REWRITE}spec:\n  poolRef: {{name: p}}\n  rules:\n  - matches: [{{value: llama}}, {{model: {{type: Prefix, value: x}}}}]\n    targets: [{{model: llama-v2}}]\n"
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferenceModelRewrite/rw: spec.rules[0].matches[0].value: a match names the model under model: write model: {value: llama}",
            "m.yaml:1: InferenceModelRewrite/rw: spec.rules[0].matches[1].model.type: \"Prefix\" is not valid; use one of Exact",
            "m.yaml:1: InferenceModelRewrite/rw: spec.rules[0].targets[0].model: a target names its model as modelRewrite: write modelRewrite: llama-v2",
        ]
    );
}

#[test]
fn legacy_objects_must_convert_to_the_current_kinds() {
    let labels: Vec<String> = (0..65).map(|i| format!("l{i}: v")).collect();
    let pool = format!(
        "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\nmetadata: {{name: big}}\nspec: {{selector: {{{}}}, targetPortNumber: 8000, extensionRef: {{name: e}}}}\n",
        labels.join(", ")
    );
    assert_eq!(
        messages(&pool),
        [
            "m.yaml:1: InferencePool/big: spec.selector has 65 labels; v1 allows at most 64 (Switchyard reads this legacy object as inference.networking.k8s.io/v1, which cannot hold this value)"
        ]
    );
    let model = format!("{MODEL}spec: {{modelName: '', poolRef: {{name: p}}}}\n");
    assert_eq!(
        messages(&model),
        [
            "m.yaml:1: InferenceModel/m: spec.modelName is empty; a rewrite match needs a model name (Switchyard reads this legacy object as an InferenceObjective (and an InferenceModelRewrite for targetModels), which cannot hold this value)"
        ]
    );
}

#[test]
fn route_that_does_not_decode_is_reported() {
    let route = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n  - matches: [{headers: [{name: x-gateway-inference-model}]}]\n";
    let out = messages(route);
    assert_eq!(out.len(), 1);
    assert!(
        out[0].starts_with("m.yaml:1: HTTPRoute/r: spec: does not decode as Switchyard reads it: missing field `value`"),
        "{out:?}"
    );
}
