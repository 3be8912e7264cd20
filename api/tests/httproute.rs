//! HTTPRoute subset: reading routes that point at InferencePools, without losing
//! any field we do not model.

#![allow(clippy::unwrap_used)]

mod common;

use serde_json::{Value, json};
use switchyard_api::HttpRoute;
use switchyard_api::httproute::{
    DEFAULT_BACKEND_WEIGHT, backend_weight_path, set_backend_weight_operation,
};

const FIXTURE: &str = "httproute/inference-canary.yaml";

/// Fields of the fixture that Gateway API v1.4.1's standard channel does not
/// define; they come from the experimental channel and must survive too.
const EXPERIMENTAL_FIELDS: &[&str] = &["sessionPersistence", "retry"];

#[test]
fn round_trip_is_lossless() {
    let original = common::load_yaml(FIXTURE);
    let route: HttpRoute = serde_json::from_value(original.clone()).unwrap();
    let reserialised = serde_json::to_value(&route).unwrap();
    assert_eq!(
        reserialised,
        original,
        "lost or changed in the round trip: {:#?}",
        common::schema_compare::compare(&reserialised, &original)
    );
}

#[test]
fn unknown_fields_land_in_extra() {
    let route: HttpRoute = serde_json::from_value(common::load_yaml(FIXTURE)).unwrap();
    assert_eq!(route.spec.extra["hostnames"], json!(["llm.example.com"]));
    let rule = &route.spec.rules()[0];
    for key in ["filters", "timeouts", "sessionPersistence", "retry"] {
        assert!(rule.extra.contains_key(key), "rule lost {key}");
    }
    assert!(rule.matches()[1].extra.contains_key("queryParams"));
    assert!(rule.backend_refs()[1].extra.contains_key("filters"));
}

#[test]
fn modelled_fields_are_read() {
    let route: HttpRoute = serde_json::from_value(common::load_yaml(FIXTURE)).unwrap();
    let parent = &route.spec.parent_refs()[0];
    assert_eq!(parent.name, "inference-gateway");
    assert_eq!(parent.namespace.as_deref(), Some("gateway-system"));
    assert_eq!(parent.section_name.as_deref(), Some("http"));

    let rule = &route.spec.rules()[0];
    assert_eq!(rule.name.as_deref(), Some("llama-chat"));
    let first = &rule.matches()[0];
    let path = first.path.as_ref().unwrap();
    assert_eq!(path.type_.as_deref(), Some("PathPrefix"));
    assert_eq!(path.value.as_deref(), Some("/v1/chat/completions"));
    let header = &first.headers.as_ref().unwrap()[0];
    assert_eq!(
        (
            header.type_.as_deref(),
            header.name.as_str(),
            header.value.as_str()
        ),
        (Some("Exact"), "x-gateway-inference-model", "llama-3-8b")
    );
    assert_eq!(first.method.as_deref(), Some("POST"));

    let fallback = &route.spec.rules()[1].backend_refs()[0];
    assert_eq!(fallback.effective_kind(), "Service");
    assert_eq!(fallback.effective_group(), "");
    assert_eq!(fallback.port, Some(8080));
    assert_eq!(fallback.effective_weight(), DEFAULT_BACKEND_WEIGHT);
    assert!(!fallback.is_inference_pool());

    let status = route.status.as_ref().unwrap();
    let parent_status = &status.parents.as_ref().unwrap()[0];
    assert_eq!(
        parent_status.controller_name.as_deref(),
        Some("example.net/gateway-controller")
    );
    assert_eq!(parent_status.conditions.as_ref().unwrap().len(), 2);
}

#[test]
fn inference_pool_backends_are_listed_with_their_positions() {
    let route: HttpRoute = serde_json::from_value(common::load_yaml(FIXTURE)).unwrap();
    let backends: Vec<(usize, usize, Option<&str>, &str, i32)> = route
        .inference_pool_backends()
        .into_iter()
        .map(|b| {
            (
                b.rule_index,
                b.backend_index,
                b.rule_name,
                b.backend.name.as_str(),
                b.backend.effective_weight(),
            )
        })
        .collect();
    assert_eq!(
        backends,
        [
            (0, 0, Some("llama-chat"), "llama-stable", 90),
            (0, 1, Some("llama-chat"), "llama-canary", 10),
        ]
    );
}

#[test]
fn legacy_group_pools_and_other_kinds_are_not_inference_pools() {
    let route: HttpRoute = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r"},
        "spec": {"rules": [{"backendRefs": [
            {"group": "inference.networking.x-k8s.io", "kind": "InferencePool", "name": "old"},
            {"group": "inference.networking.k8s.io", "kind": "Service", "name": "odd"},
            {"name": "svc", "port": 80},
            {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "pool"},
        ]}]},
    }))
    .unwrap();
    let names: Vec<(usize, &str)> = route
        .inference_pool_backends()
        .iter()
        .map(|b| (b.backend_index, b.backend.name.as_str()))
        .collect();
    assert_eq!(names, [(3, "pool")]);
}

#[test]
fn a_route_without_rules_has_no_backends() {
    let route: HttpRoute = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "empty"},
        "spec": {},
    }))
    .unwrap();
    assert!(route.inference_pool_backends().is_empty());
    assert_eq!(serde_json::to_value(&route).unwrap()["spec"], json!({}));
}

#[test]
fn weight_patch_targets_the_backend_in_the_document() {
    assert_eq!(
        backend_weight_path(0, 1),
        "/spec/rules/0/backendRefs/1/weight"
    );
    assert_eq!(
        backend_weight_path(12, 3),
        "/spec/rules/12/backendRefs/3/weight"
    );

    // The path resolves to the weight in the real document.
    let document = common::load_yaml(FIXTURE);
    assert_eq!(
        document.pointer(&backend_weight_path(0, 1)),
        Some(&json!(10))
    );

    let operation = set_backend_weight_operation(0, 1, 50);
    assert_eq!(
        operation,
        json!({"op": "add", "path": "/spec/rules/0/backendRefs/1/weight", "value": 50})
    );
}

#[test]
fn fixture_only_uses_gateway_api_fields() {
    // Keeps the fixture honest: every key must exist in Gateway API's HTTPRoute
    // schema (standard channel v1.4.1), apart from the experimental ones.
    let crd = common::load_yaml("upstream/httproutes.gateway-api-v1.4.1.yaml");
    let schema = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|version| version["name"] == "v1")
        .map(|version| &version["schema"]["openAPIV3Schema"])
        .unwrap();
    let document = common::load_yaml(FIXTURE);
    let mut unknown = Vec::new();
    collect_keys_outside_schema("", &document, schema, &mut unknown);
    assert_eq!(
        unknown,
        [
            "/spec/rules/0/retry".to_owned(),
            "/spec/rules/0/sessionPersistence".to_owned()
        ],
        "only the experimental fields {EXPERIMENTAL_FIELDS:?} may be outside the standard schema"
    );
}

fn collect_keys_outside_schema(path: &str, value: &Value, schema: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            for (key, child) in fields {
                let child_path = format!("{path}/{key}");
                match properties.and_then(|p| p.get(key)) {
                    Some(child_schema) => {
                        collect_keys_outside_schema(&child_path, child, child_schema, out);
                    }
                    // metadata is `type: object` with no properties in CRDs.
                    None if path == "/metadata" || path.starts_with("/metadata/") => {}
                    None if schema.get("additionalProperties").is_some() => {}
                    None => out.push(child_path),
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                collect_keys_outside_schema(
                    &format!("{path}/{index}"),
                    item,
                    &schema["items"],
                    out,
                );
            }
        }
        _ => {}
    }
}
