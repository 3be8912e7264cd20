//! Serde behaviour of the current kinds: API defaults apply on read, optional
//! fields stay out of the output, and conditions convert to and from k8s-openapi.

#![allow(clippy::unwrap_used)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition as K8sCondition;
use serde_json::json;
use switchyard_api::objective::DEFAULT_PRIORITY;
use switchyard_api::pool::condition_type;
use switchyard_api::rewrite::ModelMatch;
use switchyard_api::{
    AppProtocol, Condition, ConditionStatus, FailureMode, InferenceModelRewrite,
    InferenceObjective, InferencePool, Port, protocol,
};

const POOL_YAML: &str = r#"
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata:
  name: vllm-llama3-8b-instruct
spec:
  targetPorts:
  - number: 8000
  selector:
    matchLabels:
      app: vllm-llama3-8b-instruct
  endpointPickerRef:
    name: vllm-llama3-8b-instruct-epp
    port:
      number: 9002
"#;

#[test]
fn pool_defaults_apply_on_read() {
    let pool: InferencePool = serde_saphyr::from_str(POOL_YAML).unwrap();
    assert_eq!(pool.spec.app_protocol, AppProtocol::Http);
    let picker = pool.spec.endpoint_picker_ref.as_ref().unwrap();
    assert_eq!(picker.group, "");
    assert_eq!(picker.kind, "Service");
    assert!(picker.is_service());
    assert_eq!(picker.failure_mode, FailureMode::FailClose);
    assert_eq!(picker.port, Some(Port { number: 9002 }));
    assert_eq!(pool.spec.port_numbers().collect::<Vec<_>>(), [8000]);
    assert!(pool.status.is_none());
}

#[test]
fn pool_serialises_with_wire_spellings_and_without_unset_fields() {
    let mut pool: InferencePool = serde_saphyr::from_str(POOL_YAML).unwrap();
    pool.spec.app_protocol = AppProtocol::H2c;
    pool.spec.endpoint_picker_ref.as_mut().unwrap().port = None;
    pool.spec.endpoint_picker_ref.as_mut().unwrap().failure_mode = FailureMode::FailOpen;
    let json = serde_json::to_value(&pool).unwrap();
    assert_eq!(json["apiVersion"], "inference.networking.k8s.io/v1");
    assert_eq!(json["kind"], "InferencePool");
    assert_eq!(json["spec"]["appProtocol"], "kubernetes.io/h2c");
    assert_eq!(AppProtocol::H2c.as_str(), "kubernetes.io/h2c");
    let picker = &json["spec"]["endpointPickerRef"];
    assert_eq!(picker["failureMode"], "FailOpen");
    assert!(
        picker.get("port").is_none(),
        "None must be omitted, not null"
    );
    assert!(json.get("status").is_none());
}

#[test]
fn unknown_enum_values_are_rejected() {
    let mut document: serde_json::Value = serde_saphyr::from_str(POOL_YAML).unwrap();
    document["spec"]["appProtocol"] = json!("grpc");
    assert!(serde_json::from_value::<InferencePool>(document).is_err());
}

#[test]
fn ports_outside_the_valid_range_have_no_u16() {
    assert_eq!(Port { number: 8000 }.as_u16(), Some(8000));
    assert_eq!(Port { number: 0 }.as_u16(), None);
    assert_eq!(Port { number: 70_000 }.as_u16(), None);
    assert_eq!(Port::from(9002u16), Port { number: 9002 });
}

#[test]
fn pool_status_parses_parents_and_conditions() {
    let mut document: serde_json::Value = serde_saphyr::from_str(POOL_YAML).unwrap();
    document["status"] = json!({"parents": [{
        "parentRef": {"name": "gw"},
        "controllerName": "switchyard.dev/controller",
        "conditions": [{
            "type": "Accepted", "status": "True", "reason": "Accepted",
            "message": "", "lastTransitionTime": "2025-06-01T12:00:00Z",
            "observedGeneration": 3,
        }],
    }]});
    let pool: InferencePool = serde_json::from_value(document.clone()).unwrap();
    let parent = &pool.status.as_ref().unwrap().parents[0];
    assert_eq!(parent.parent_ref.group, "gateway.networking.k8s.io");
    assert_eq!(parent.parent_ref.kind, "Gateway");
    assert_eq!(parent.conditions[0].type_, condition_type::ACCEPTED);
    assert_eq!(parent.conditions[0].status, ConditionStatus::True);
    assert_eq!(parent.conditions[0].observed_generation, Some(3));

    // Re-serialising fills in the defaulted parentRef fields and nothing else.
    let mut expected = document["status"].clone();
    expected["parents"][0]["parentRef"] = json!({
        "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw",
    });
    assert_eq!(serde_json::to_value(&pool).unwrap()["status"], expected);
}

#[test]
fn objective_priority_defaults_to_zero_and_negative_is_sheddable() {
    let objective: InferenceObjective = serde_json::from_value(json!({
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
        "kind": "InferenceObjective",
        "metadata": {"name": "batch"},
        "spec": {"poolRef": {"name": "llama"}},
    }))
    .unwrap();
    assert_eq!(objective.spec.priority, None);
    assert_eq!(objective.spec.effective_priority(), DEFAULT_PRIORITY);
    assert!(!objective.spec.is_sheddable());
    assert!(objective.spec.pool_ref.refers_to_pool("llama"));
    assert!(
        serde_json::to_value(&objective).unwrap()["spec"]
            .get("priority")
            .is_none()
    );

    let mut sheddable = objective.clone();
    sheddable.spec.priority = Some(-5);
    assert!(sheddable.spec.is_sheddable());
    // Wider than i32: the CRD's integer has no format.
    sheddable.spec.priority = Some(i64::from(i32::MAX) + 1);
    assert!(!sheddable.spec.is_sheddable());
}

#[test]
fn rewrite_rules_match_exactly_or_everything() {
    let rewrite: InferenceModelRewrite = serde_json::from_value(json!({
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
        "kind": "InferenceModelRewrite",
        "metadata": {"name": "canary"},
        "spec": {
            "poolRef": {"name": "llama"},
            "rules": [
                {"matches": [{"model": {"value": "chat"}}, {"model": {"value": "chat-v1"}}],
                 "targets": [{"modelRewrite": "chat-v2", "weight": 1}]},
                {"targets": [{"modelRewrite": "default"}]},
            ],
        },
    }))
    .unwrap();
    let [exact, catch_all] = &rewrite.spec.rules[..] else {
        panic!("two rules expected");
    };
    assert_eq!(exact.matches[0].model, ModelMatch::exact("chat"));
    assert!(exact.matches_model("chat-v1"));
    assert!(!exact.matches_model("Chat"), "Exact is case-sensitive");
    assert!(!exact.is_catch_all());
    assert!(catch_all.is_catch_all());
    assert!(catch_all.matches_model("anything"));
    assert_eq!(catch_all.targets[0].weight, None);
}

#[test]
fn conditions_convert_to_and_from_k8s_openapi() {
    let ours = Condition::waiting_for_controller("Accepted");
    let theirs = K8sCondition::from(ours.clone());
    assert_eq!(theirs.status, "Unknown");
    assert_eq!(theirs.reason, "Pending");
    assert_eq!(Condition::try_from(theirs.clone()).unwrap(), ours);

    let invalid = K8sCondition {
        status: "Maybe".into(),
        ..theirs
    };
    let err = Condition::try_from(invalid).unwrap_err();
    assert!(err.to_string().contains("Maybe"), "{err}");
}

#[test]
fn placeholder_condition_serialises_like_upstream_default() {
    let json = serde_json::to_value(Condition::waiting_for_controller("Ready")).unwrap();
    assert_eq!(
        json,
        json!({
            "type": "Ready", "status": "Unknown", "reason": "Pending",
            "message": "Waiting for controller", "lastTransitionTime": "1970-01-01T00:00:00Z",
        })
    );
}

#[test]
fn shared_header_names_are_lowercase() {
    // Envoy stores header names lowercased; a mixed-case constant would never match.
    for header in [
        protocol::INFERENCE_MODEL_HEADER,
        protocol::MODEL_NAME_HEADER,
        protocol::BASE_MODEL_NAME_HEADER,
        protocol::INFERENCE_OBJECTIVE_HEADER,
        protocol::INFERENCE_FAIRNESS_ID_HEADER,
        protocol::MODEL_NAME_REWRITE_HEADER,
        protocol::REQUEST_ID_HEADER,
        protocol::DESTINATION_ENDPOINT_HEADER,
        protocol::REQUEST_DROPPED_REASON_HEADER,
    ] {
        assert_eq!(header, header.to_ascii_lowercase(), "{header}");
    }
    assert_eq!(
        protocol::MODEL_NAME_HEADER,
        "X-Gateway-Model-Name".to_ascii_lowercase()
    );
    assert_eq!(
        protocol::DESTINATION_ENDPOINT_KEY,
        protocol::DESTINATION_ENDPOINT_HEADER,
        "the header and the envoy.lb metadata key must be the same name"
    );
}

#[test]
fn a_pool_without_endpoint_picker_ref_reads_as_gie_v1_6_allows() {
    let text = POOL_YAML.split("  endpointPickerRef:").next().unwrap();
    let pool: InferencePool = serde_saphyr::from_str(text).unwrap();
    assert_eq!(pool.spec.endpoint_picker_ref, None);
    // No picker to fail: nothing is refused for its sake.
    assert_eq!(pool.spec.failure_mode(), FailureMode::FailOpen);
    let json = serde_json::to_value(&pool).unwrap();
    assert!(
        json["spec"].get("endpointPickerRef").is_none(),
        "omitted, not null"
    );
    let with: InferencePool = serde_saphyr::from_str(POOL_YAML).unwrap();
    assert_eq!(with.spec.failure_mode(), FailureMode::FailClose);
}
