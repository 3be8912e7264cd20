//! Unit tests of the rule set on in-memory documents: one test per mistake, each
//! asserting the whole finding (path, kind/name and the fix).

mod pool;
mod refs;
mod schema;
mod specs;

use super::*;

/// Parses `text` as the file `m.yaml`.
pub(super) fn docs(text: &str) -> Vec<Document> {
    parse_documents("m.yaml", text).unwrap()
}

/// Every finding of `text`, as printed.
pub(super) fn messages(text: &str) -> Vec<String> {
    check_documents(&docs(text))
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// A valid v1 InferencePool named `name` in `namespace`.
pub(super) fn pool(name: &str, namespace: &str) -> String {
    format!(
        "apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  targetPorts: [{{number: 8000}}]\n  endpointPickerRef: {{name: {name}-epp, port: {{number: 9002}}}}\n"
    )
}

#[test]
fn other_kinds_are_skipped_and_counted() {
    // The Service is the pool's endpoint picker, so the pool has no warning either.
    let text = "apiVersion: v1\nkind: Service\nmetadata: {name: p-epp}\n---\nfoo: bar\n---\n"
        .to_owned()
        + &pool("p", "default");
    let documents = docs(&text);
    assert!(check_documents(&documents).is_empty());
    assert_eq!(
        tally(&documents),
        Tally {
            checked: 1,
            other: 2
        }
    );
}

#[test]
fn a_valid_set_has_no_findings() {
    let text = pool("vllm", "default")
        + "---\napiVersion: llm-d.ai/v1alpha2\nkind: InferenceObjective\nmetadata: {name: chat}\nspec: {priority: -1, poolRef: {name: vllm}}\n"
        + "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModelRewrite\nmetadata: {name: rw}\nspec:\n  poolRef: {name: vllm}\n  rules:\n  - matches: [{model: {value: llama}}]\n    targets: [{modelRewrite: llama-v2, weight: 10}, {modelRewrite: llama-v3, weight: 90}]\n"
        + "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n  - backendRefs: [{group: inference.networking.k8s.io, kind: InferencePool, name: vllm, weight: 0}, {name: svc, port: 80}]\n";
    assert_eq!(messages(&text), Vec::<String>::new());
}

#[test]
fn misspelt_kind() {
    let text =
        "apiVersion: inference.networking.k8s.io/v1\nkind: InferencePools\nmetadata: {name: p}\n";
    assert_eq!(
        messages(text),
        [
            "m.yaml:1: InferencePools/p: kind: there is no kind \"InferencePools\"; did you mean kind: InferencePool?"
        ]
    );
}

#[test]
fn objective_under_the_pool_group() {
    let text = "apiVersion: inference.networking.k8s.io/v1\nkind: InferenceObjective\nmetadata: {name: o}\nspec: {poolRef: {name: p}}\n";
    assert_eq!(
        messages(text),
        [
            "m.yaml:1: InferenceObjective/o: apiVersion: InferenceObjective is not served at apiVersion inference.networking.k8s.io/v1; write apiVersion: inference.networking.x-k8s.io/v1alpha2 (llm-d.ai/v1alpha2 is read too); only InferencePool moved to inference.networking.k8s.io"
        ]
    );
}

#[test]
fn missing_name_and_bad_namespace() {
    let text = "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceObjective\nmetadata: {namespace: AI_Team}\nspec: {poolRef: {name: p}}\n";
    assert_eq!(
        messages(text),
        [
            "m.yaml:1: InferenceObjective/<unnamed>: metadata.name is required",
            "m.yaml:1: InferenceObjective/<unnamed>: metadata.namespace: \"AI_Team\" contains the capital 'A'; only lowercase letters, digits, '-' are allowed",
        ]
    );
}

#[test]
fn garbage_documents_never_panic() {
    let garbage = [
        "42",
        "[1, 2]",
        "kind: InferencePool",
        "kind: InferencePool\napiVersion: 7\nspec: [1]\nmetadata: nope",
        "apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: {name: p}\nspec: {selector: [], targetPorts: {}, endpointPickerRef: 5, appProtocol: 1}",
        "apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: {name: p}\nspec: {selector: {matchLabels: {'': [], 'a/b/c': {}}}, targetPorts: [null, [], {number: -1}, {number: 18446744073709551615}]}",
        "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModelRewrite\nmetadata: {name: r}\nspec: {rules: [null, {targets: 3, matches: [{model: 1}]}], poolRef: []}",
        "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\nmetadata: {name: m}\nspec: {targetModels: [1, {weight: x}], poolRef: {kind: 3}, criticality: 9}",
        "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: InferenceModel\nmetadata: {name: m}\nspec: 1",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec: {rules: [1, {backendRefs: [1, {}, {name: 1, kind: [], weight: 'x'}]}]}",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nspec: {rules: {}}",
    ];
    for text in garbage {
        // Findings or none, but no panic; each must name its document.
        for finding in check_documents(&docs(text)) {
            assert_eq!((finding.source.as_str(), finding.index), ("m.yaml", 1));
        }
    }
}
