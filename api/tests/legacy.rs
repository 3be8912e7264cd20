//! Legacy v1alpha2 kinds: they parse from upstream-shaped YAML and convert to the
//! current kinds, or fail with an error that names the offending field.

#![allow(clippy::unwrap_used)]

mod common;

use serde_json::json;
use switchyard_api::legacy::convert::{
    CRITICAL_PRIORITY, LEGACY_DEFAULT_EXTENSION_PORT, SHEDDABLE_PRIORITY, STANDARD_PRIORITY,
    convert_model, convert_pool, priority_of,
};
use switchyard_api::legacy::{self, Criticality};
use switchyard_api::{AppProtocol, Error, FailureMode, Port};

fn legacy_pool(spec: serde_json::Value) -> legacy::InferencePool {
    serde_json::from_value(json!({
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
        "kind": "InferencePool",
        "metadata": {"name": "llama", "namespace": "serving", "uid": "1234", "resourceVersion": "7"},
        "spec": spec,
    }))
    .unwrap()
}

fn legacy_model(spec: serde_json::Value) -> legacy::InferenceModel {
    serde_json::from_value(json!({
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
        "kind": "InferenceModel",
        "metadata": {"name": "chat", "namespace": "serving", "labels": {"team": "a"}},
        "spec": spec,
    }))
    .unwrap()
}

const LEGACY_POOL_YAML: &str = r#"
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata:
  name: vllm-llama3-8b-instruct
  namespace: default
spec:
  targetPortNumber: 8000
  selector:
    app: vllm-llama3-8b-instruct
  extensionRef:
    name: vllm-llama3-8b-instruct-epp
    failureMode: FailOpen
status:
  parent:
  - parentRef:
      kind: Status
      name: default
    conditions:
    - lastTransitionTime: "1970-01-01T00:00:00Z"
      message: Waiting for controller
      reason: Pending
      status: Unknown
      type: Accepted
  - parentRef:
      name: inference-gateway
    conditions:
    - lastTransitionTime: "2025-03-01T10:00:00Z"
      message: ""
      reason: Accepted
      status: "True"
      type: Accepted
"#;

#[test]
fn upstream_shaped_legacy_pool_converts_to_v1() {
    let legacy: legacy::InferencePool = serde_saphyr::from_str(LEGACY_POOL_YAML).unwrap();
    assert_eq!(legacy.spec.extension_ref.kind, "Service", "kind defaults");
    let pool = convert_pool(&legacy).unwrap();

    assert_eq!(
        pool.metadata.name.as_deref(),
        Some("vllm-llama3-8b-instruct")
    );
    assert_eq!(pool.metadata.namespace.as_deref(), Some("default"));
    let spec = &pool.spec;
    assert_eq!(
        spec.selector.match_labels.get("app").map(String::as_str),
        Some("vllm-llama3-8b-instruct")
    );
    assert_eq!(spec.target_ports, vec![Port { number: 8000 }]);
    assert_eq!(spec.app_protocol, AppProtocol::Http);
    let picker = spec.endpoint_picker_ref.as_ref().unwrap();
    assert_eq!(picker.name, "vllm-llama3-8b-instruct-epp");
    assert_eq!(
        (picker.group.as_str(), picker.kind.as_str()),
        ("", "Service")
    );
    assert_eq!(picker.failure_mode, FailureMode::FailOpen);
    assert_eq!(
        picker.port,
        Some(Port {
            number: LEGACY_DEFAULT_EXTENSION_PORT
        }),
        "a Service without portNumber gets the legacy default port"
    );

    let parents = &pool.status.unwrap().parents;
    assert_eq!(
        parents.len(),
        1,
        "the Status/default placeholder is dropped"
    );
    assert_eq!(parents[0].parent_ref.name, "inference-gateway");
    assert_eq!(parents[0].parent_ref.kind, "Gateway");
    assert_eq!(parents[0].conditions[0].reason, "Accepted");
}

#[test]
fn pool_conversion_keeps_identity_but_not_server_fields() {
    let pool = convert_pool(&legacy_pool(json!({
        "selector": {"app": "llama"},
        "targetPortNumber": 8000,
        "extensionRef": {"name": "epp", "portNumber": 9100},
    })))
    .unwrap();
    assert_eq!(pool.metadata.name.as_deref(), Some("llama"));
    assert_eq!(pool.metadata.uid, None);
    assert_eq!(pool.metadata.resource_version, None);
    assert_eq!(
        pool.spec.endpoint_picker_ref.as_ref().unwrap().port,
        Some(Port { number: 9100 })
    );
    assert_eq!(
        pool.spec.endpoint_picker_ref.as_ref().unwrap().failure_mode,
        FailureMode::FailClose,
        "failure mode defaults to FailClose, as in both APIs"
    );
    assert!(pool.status.is_none());
}

#[test]
fn non_service_pickers_without_a_port_stay_portless() {
    let pool = convert_pool(&legacy_pool(json!({
        "selector": {"app": "llama"},
        "targetPortNumber": 8000,
        "extensionRef": {"group": "example.com", "kind": "Picker", "name": "epp"},
    })))
    .unwrap();
    assert_eq!(pool.spec.endpoint_picker_ref.as_ref().unwrap().port, None);
    assert_eq!(
        pool.spec.endpoint_picker_ref.as_ref().unwrap().group,
        "example.com"
    );
}

#[test]
fn impossible_pools_fail_naming_the_field() {
    let cases = [
        (
            json!({"selector": {"app": "x"}, "targetPortNumber": 70000, "extensionRef": {"name": "epp"}}),
            "spec.targetPortNumber",
        ),
        (
            json!({"selector": {"app": "x"}, "targetPortNumber": 0, "extensionRef": {"name": "epp"}}),
            "spec.targetPortNumber",
        ),
        (
            json!({"selector": {"app": "x"}, "targetPortNumber": 8000, "extensionRef": {"name": "epp", "portNumber": -1}}),
            "spec.extensionRef.portNumber",
        ),
        (
            json!({"selector": {}, "targetPortNumber": 8000, "extensionRef": {"name": "epp"}}),
            "spec.selector",
        ),
    ];
    for (spec, expected_field) in cases {
        let err = convert_pool(&legacy_pool(spec.clone())).unwrap_err();
        match &err {
            Error::Conversion {
                kind, name, field, ..
            } => {
                assert_eq!(
                    (*kind, name.as_str(), *field),
                    ("InferencePool", "llama", expected_field),
                    "{spec}"
                );
            }
            other => panic!("{spec}: expected a conversion error, got {other:?}"),
        }
        assert!(err.to_string().contains(expected_field), "{err}");
    }
}

#[test]
fn too_many_labels_are_rejected() {
    let selector: serde_json::Map<String, serde_json::Value> =
        (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    let err = convert_pool(&legacy_pool(json!({
        "selector": selector,
        "targetPortNumber": 8000,
        "extensionRef": {"name": "epp"},
    })))
    .unwrap_err();
    assert!(err.to_string().contains("at most 64"), "{err}");
}

#[test]
fn criticality_maps_to_ordered_priorities() {
    assert_eq!(Criticality::Critical.priority(), CRITICAL_PRIORITY);
    assert_eq!(Criticality::Standard.priority(), STANDARD_PRIORITY);
    assert_eq!(Criticality::Sheddable.priority(), SHEDDABLE_PRIORITY);
    assert_eq!(priority_of(None), 0, "unset behaves as Standard");
    const { assert!(CRITICAL_PRIORITY > STANDARD_PRIORITY) };
    assert_eq!(STANDARD_PRIORITY, 0);
    const { assert!(SHEDDABLE_PRIORITY < 0, "sheddable must be negative") };
}

#[test]
fn model_without_targets_becomes_only_an_objective() {
    for (criticality, priority) in [
        (json!("Critical"), 1),
        (json!("Standard"), 0),
        (json!("Sheddable"), -1),
        (serde_json::Value::Null, 0),
    ] {
        let mut spec = json!({"modelName": "llama-chat", "poolRef": {"name": "llama"}});
        if !criticality.is_null() {
            spec["criticality"] = criticality.clone();
        }
        let converted = convert_model(&legacy_model(spec)).unwrap();
        assert_eq!(converted.model_name, "llama-chat");
        assert!(converted.rewrite.is_none());
        let objective = &converted.objective;
        assert_eq!(objective.metadata.name.as_deref(), Some("chat"));
        assert_eq!(objective.metadata.namespace.as_deref(), Some("serving"));
        assert_eq!(
            objective
                .metadata
                .labels
                .as_ref()
                .unwrap()
                .get("team")
                .map(String::as_str),
            Some("a")
        );
        assert_eq!(objective.spec.priority, Some(priority), "{criticality}");
        assert_eq!(objective.spec.pool_ref.name, "llama");
        assert_eq!(
            objective.spec.pool_ref.group, "inference.networking.k8s.io",
            "the legacy pool group moves to the v1 group with the pool"
        );
    }
}

#[test]
fn model_with_targets_becomes_an_objective_and_a_rewrite() {
    let converted = convert_model(&legacy_model(json!({
        "modelName": "food-review",
        "criticality": "Critical",
        "poolRef": {"name": "llama"},
        "targetModels": [
            {"name": "food-review-v1", "weight": 90},
            {"name": "food-review-v2", "weight": 10},
        ],
    })))
    .unwrap();
    let rewrite = converted.rewrite.unwrap();
    assert_eq!(rewrite.metadata.name.as_deref(), Some("chat"));
    assert_eq!(rewrite.spec.pool_ref, converted.objective.spec.pool_ref);
    let rule = &rewrite.spec.rules[..];
    assert_eq!(rule.len(), 1);
    assert!(rule[0].matches_model("food-review"));
    assert!(!rule[0].matches_model("something-else"));
    let targets: Vec<(&str, Option<i32>)> = rule[0]
        .targets
        .iter()
        .map(|t| (t.model_rewrite.as_str(), t.weight))
        .collect();
    assert_eq!(
        targets,
        [("food-review-v1", Some(90)), ("food-review-v2", Some(10))]
    );
    assert_eq!(converted.objective.spec.priority, Some(CRITICAL_PRIORITY));
}

#[test]
fn unweighted_targets_stay_unweighted() {
    let converted = convert_model(&legacy_model(json!({
        "modelName": "m",
        "poolRef": {"name": "llama"},
        "targetModels": [{"name": "a"}, {"name": "b"}],
    })))
    .unwrap();
    let targets = &converted.rewrite.unwrap().spec.rules[0].targets;
    assert!(targets.iter().all(|t| t.weight.is_none()));
}

#[test]
fn custom_pool_groups_are_kept() {
    let converted = convert_model(&legacy_model(json!({
        "modelName": "m",
        "poolRef": {"group": "example.com", "kind": "Pool", "name": "p"},
    })))
    .unwrap();
    let pool_ref = &converted.objective.spec.pool_ref;
    assert_eq!(
        (pool_ref.group.as_str(), pool_ref.kind.as_str()),
        ("example.com", "Pool")
    );
}

#[test]
fn impossible_models_fail_naming_the_field() {
    let cases = [
        (
            json!({"modelName": "m", "poolRef": {"name": "p"},
                   "targetModels": [{"name": "a", "weight": 1}, {"name": "b"}]}),
            "spec.targetModels",
        ),
        (
            json!({"modelName": "m", "poolRef": {"name": "p"},
                   "targetModels": [{"name": "a", "weight": 0}]}),
            "spec.targetModels[].weight",
        ),
        (
            json!({"modelName": "m", "poolRef": {"name": "p"},
                   "targetModels": [{"name": "a", "weight": 2_000_000}]}),
            "spec.targetModels[].weight",
        ),
        (
            json!({"modelName": "", "poolRef": {"name": "p"}}),
            "spec.modelName",
        ),
    ];
    for (spec, expected_field) in cases {
        let err = convert_model(&legacy_model(spec.clone())).unwrap_err();
        assert!(
            matches!(&err, Error::Conversion { kind: "InferenceModel", field, .. } if *field == expected_field),
            "{spec}: {err:?}"
        );
    }
}

#[test]
fn legacy_fixture_crds_describe_the_fields_we_read() {
    // Guards against the Rust types drifting from the legacy CRDs: every field
    // our types read must exist in upstream's schema.
    let pool = common::load_yaml("upstream/inferencepools.v1alpha2.yaml");
    let spec = &common::open_api_schema(&pool)["properties"]["spec"]["properties"];
    for field in ["selector", "targetPortNumber", "extensionRef"] {
        assert!(spec.get(field).is_some(), "legacy pool lacks {field}");
    }
    for field in ["group", "kind", "name", "portNumber", "failureMode"] {
        assert!(
            spec["extensionRef"]["properties"].get(field).is_some(),
            "legacy extensionRef lacks {field}"
        );
    }
    let status = &common::open_api_schema(&pool)["properties"]["status"]["properties"];
    assert!(
        status.get("parent").is_some(),
        "legacy status key is `parent`"
    );

    let model = common::load_yaml("upstream/inferencemodels.v1alpha2.yaml");
    let spec = &common::open_api_schema(&model)["properties"]["spec"]["properties"];
    for field in ["modelName", "criticality", "targetModels", "poolRef"] {
        assert!(spec.get(field).is_some(), "legacy model lacks {field}");
    }
    assert_eq!(
        spec["criticality"]["enum"],
        json!(["Critical", "Standard", "Sheddable"])
    );
    assert_eq!(
        spec["poolRef"]["properties"]["group"]["default"],
        json!("inference.networking.x-k8s.io")
    );
}
