//! HTTPRoute backendRefs and poolRefs resolved across documents.

use super::{messages, pool};

const ROUTE: &str =
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n";

fn route(backends: &str) -> String {
    format!("{ROUTE}spec:\n  rules:\n  - backendRefs: {backends}\n")
}

#[test]
fn weight_out_of_range() {
    let out = messages(&route(
        "[{group: inference.networking.k8s.io, kind: InferencePool, name: a, weight: 1000001}, {group: inference.networking.k8s.io, kind: InferencePool, name: b, weight: -1}]",
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: HTTPRoute/r: spec.rules[0].backendRefs[0].weight is 1000001; it must be from 0 to 1000000",
            "m.yaml:1: HTTPRoute/r: spec.rules[0].backendRefs[1].weight is -1; it must be from 0 to 1000000",
        ]
    );
}

#[test]
fn backend_without_kind_is_a_service_needing_a_port() {
    let out = messages(&route("[{name: vllm-pool-v1, weight: 90}]"));
    assert_eq!(
        out,
        [
            "m.yaml:1: HTTPRoute/r: spec.rules[0].backendRefs[0]: backendRef vllm-pool-v1 has no kind, so it names a Service, and a Service backendRef needs a port; to send traffic to an InferencePool write group: inference.networking.k8s.io, kind: InferencePool (no port needed)"
        ]
    );
}

#[test]
fn inference_pool_kind_without_group() {
    let out = messages(&route("[{kind: InferencePool, name: p}]"));
    assert_eq!(
        out,
        [
            "m.yaml:1: HTTPRoute/r: spec.rules[0].backendRefs[0]: InferencePool is in group inference.networking.k8s.io (inference.networking.k8s.io/v1): write group: inference.networking.k8s.io"
        ]
    );
    let out = messages(&route("[{group: inference.networking.k8s.io, name: p}]"));
    assert_eq!(
        out,
        [
            "m.yaml:1: HTTPRoute/r: spec.rules[0].backendRefs[0]: group inference.networking.k8s.io without kind means kind Service, which that group does not have: add kind: InferencePool"
        ]
    );
}

#[test]
fn missing_pool_is_reported_only_when_the_set_has_pools() {
    let refs = "[{group: inference.networking.k8s.io, kind: InferencePool, name: vllm-pol}]";
    assert_eq!(messages(&route(refs)), Vec::<String>::new());
    let out = messages(&(pool("vllm-pool", "default") + "---\n" + &route(refs)));
    assert_eq!(
        out,
        [
            "m.yaml:2: HTTPRoute/r: spec.rules[0].backendRefs[0]: no InferencePool \"vllm-pol\" in namespace default among the checked files; did you mean vllm-pool?"
        ]
    );
}

#[test]
fn pool_in_another_namespace() {
    let objective = "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceObjective\nmetadata: {name: o}\nspec: {poolRef: {name: p}}\n";
    let out = messages(&(pool("p", "ai") + "---\n" + objective));
    assert_eq!(
        out,
        [
            "m.yaml:2: InferenceObjective/o: spec.poolRef: InferencePool p is in namespace ai, not default: the pool must be in the same namespace: set metadata.namespace: ai here"
        ]
    );
    // A route may name another namespace on the backendRef itself.
    let refs =
        "[{group: inference.networking.k8s.io, kind: InferencePool, name: p, namespace: ai}]";
    assert_eq!(
        messages(&(pool("p", "ai") + "---\n" + &route(refs))),
        Vec::<String>::new()
    );
}

#[test]
fn legacy_group_for_a_v1_pool() {
    let refs = "[{group: inference.networking.x-k8s.io, kind: InferencePool, name: p}]";
    let out = messages(&(pool("p", "default") + "---\n" + &route(refs)));
    assert_eq!(
        out,
        [
            "m.yaml:2: HTTPRoute/r: spec.rules[0].backendRefs[0].group: InferencePool p is inference.networking.k8s.io/v1, in group inference.networking.k8s.io, but the reference says group \"inference.networking.x-k8s.io\": write group: inference.networking.k8s.io"
        ]
    );
}

#[test]
fn legacy_pool_is_referenced_by_its_own_group() {
    let legacy = "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\nmetadata: {name: old}\nspec: {selector: {app: old}, targetPortNumber: 8000, extensionRef: {name: old-epp}}\n";
    let model = "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\nmetadata: {name: m}\nspec: {modelName: m, poolRef: {name: old}}\n";
    assert_eq!(
        messages(&format!("{legacy}---\n{model}")),
        Vec::<String>::new()
    );
    let refs = "[{group: inference.networking.k8s.io, kind: InferencePool, name: old}]";
    assert_eq!(
        messages(&format!("{legacy}---\n{}", route(refs))),
        [
            "m.yaml:2: HTTPRoute/r: spec.rules[0].backendRefs[0].group: InferencePool old is the legacy inference.networking.x-k8s.io/v1alpha2, but the reference says group \"inference.networking.k8s.io\": write group: inference.networking.x-k8s.io, or move the pool to apiVersion: inference.networking.k8s.io/v1"
        ]
    );
}
