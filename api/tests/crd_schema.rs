//! The CRDs we serve must accept, reject and default exactly what upstream's
//! v1.5.0 CRDs do, and must be valid structural schemas.

#![allow(clippy::unwrap_used)]

mod common;

use common::schema_compare::{assert_same_structure, compare, structural_violations};
use common::{load_yaml, open_api_schema};
use kube::CustomResourceExt;
use serde_json::{Value, json};
use switchyard_api::{InferenceModelRewrite, InferenceObjective, InferencePool};

fn generated<K: CustomResourceExt>() -> Value {
    serde_json::to_value(K::crd()).unwrap()
}

#[test]
fn inference_pool_schema_matches_upstream_v1_5_0_with_v1_6s_optional_picker() {
    let upstream = load_yaml("upstream/inferencepools.v1.5.0.yaml");
    // GIE v1.6 (#2898) made endpointPickerRef optional; it changed nothing else in v1.
    let mut v1_6 = open_api_schema(&upstream).clone();
    let required = &mut v1_6["properties"]["spec"]["required"];
    let before = required.as_array().map_or(0, Vec::len);
    if let Some(list) = required.as_array_mut() {
        list.retain(|field| field != "endpointPickerRef");
    }
    assert_eq!(required.as_array().map_or(0, Vec::len), before - 1);
    assert_same_structure(
        "InferencePool v1",
        open_api_schema(&generated::<InferencePool>()),
        &v1_6,
    );
}

#[test]
fn inference_objective_schema_matches_upstream_v1_5_0() {
    let upstream = load_yaml("upstream/inferenceobjectives.v1.5.0.yaml");
    assert_same_structure(
        "InferenceObjective v1alpha2",
        open_api_schema(&generated::<InferenceObjective>()),
        open_api_schema(&upstream),
    );
}

/// The one rule our rewrite CRD adds to upstream's: upstream documents that
/// weights go on every target or on none, our schema enforces it (see `cel.rs`).
const REWRITE_TARGETS: &str = "/properties/spec/properties/rules/items/properties/targets";

#[test]
fn inference_model_rewrite_schema_matches_upstream_v1_5_0() {
    let upstream = load_yaml("upstream/inferencemodelrewrites.v1.5.0.yaml");
    let mut ours = open_api_schema(&generated::<InferenceModelRewrite>()).clone();
    let extra = ours
        .pointer_mut(REWRITE_TARGETS)
        .and_then(Value::as_object_mut)
        .and_then(|targets| targets.remove("x-kubernetes-validations"));
    assert_eq!(
        extra,
        Some(json!([{
            "rule": "self.all(t, has(t.weight)) || self.all(t, !has(t.weight))",
            "message": "set weight on every target or on none"
        }])),
        "the only rule beyond upstream's"
    );
    // The bounds that let kube-apiserver price that rule (unbounded, it refuses the CRD).
    let targets_max = ours
        .pointer_mut(REWRITE_TARGETS)
        .and_then(Value::as_object_mut)
        .and_then(|targets| targets.remove("maxItems"));
    assert_eq!(targets_max, Some(json!(64)), "targets are bounded");
    let rules_max = ours
        .pointer_mut("/properties/spec/properties/rules")
        .and_then(Value::as_object_mut)
        .and_then(|rules| rules.remove("maxItems"));
    assert_eq!(rules_max, Some(json!(128)), "rules are bounded");
    assert_same_structure(
        "InferenceModelRewrite v1alpha2",
        &ours,
        open_api_schema(&upstream),
    );
}

/// Everything outside the schema that decides how the apiserver serves the kind.
fn serving_shape(crd: &Value) -> Value {
    let version = &crd["spec"]["versions"][0];
    let mut names = crd["spec"]["names"].clone();
    // kube leaves `listKind` out; the apiserver then defaults it to `<kind>List`,
    // which is exactly what upstream spells out.
    if names.get("listKind").is_none() {
        names["listKind"] = json!(format!("{}List", names["kind"].as_str().unwrap()));
    }
    json!({
        "name": crd["metadata"]["name"],
        "annotations": crd["metadata"]["annotations"],
        "group": crd["spec"]["group"],
        "names": names,
        "scope": crd["spec"]["scope"],
        "versionCount": crd["spec"]["versions"].as_array().map(Vec::len),
        "version": version["name"],
        "served": version["served"],
        "storage": version["storage"],
        "subresources": version["subresources"],
        "printerColumns": version["additionalPrinterColumns"],
    })
}

#[test]
fn served_crds_have_upstream_names_scope_and_subresources() {
    for (ours, fixture) in [
        (
            generated::<InferencePool>(),
            "upstream/inferencepools.v1.5.0.yaml",
        ),
        (
            generated::<InferenceObjective>(),
            "upstream/inferenceobjectives.v1.5.0.yaml",
        ),
        (
            generated::<InferenceModelRewrite>(),
            "upstream/inferencemodelrewrites.v1.5.0.yaml",
        ),
    ] {
        let upstream = load_yaml(fixture);
        let differences = compare(&serving_shape(&ours), &serving_shape(&upstream));
        assert!(differences.is_empty(), "{fixture}: {differences:#?}");
    }
}

#[test]
fn inference_pool_short_name_is_infpool() {
    let crd = generated::<InferencePool>();
    assert_eq!(crd["spec"]["names"]["shortNames"], json!(["infpool"]));
    assert_eq!(
        crd["spec"]["versions"][0]["subresources"]["status"],
        json!({})
    );
}

#[test]
fn served_crds_are_structural() {
    for crd in switchyard_api::crds::served() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let crd = serde_json::to_value(crd).unwrap();
        let violations = structural_violations(open_api_schema(&crd));
        assert!(violations.is_empty(), "{name}: {violations:#?}");
    }
}

#[test]
fn comparison_reports_every_difference_with_its_path() {
    let upstream = open_api_schema(&load_yaml("upstream/inferencepools.v1.5.0.yaml")).clone();
    let mut drifted = upstream.clone();
    let spec = &mut drifted["properties"]["spec"];
    spec["properties"]["targetPorts"]["maxItems"] = json!(16);
    spec["properties"]["appProtocol"]["enum"] = json!(["http"]);
    spec["properties"]["endpointPickerRef"]["properties"]["failureMode"]
        .as_object_mut()
        .unwrap()
        .remove("default");
    spec["properties"]["extra"] = json!({"type": "string"});
    spec["required"] = json!(["selector", "targetPorts"]);

    let mut paths: Vec<String> = compare(&drifted, &upstream)
        .into_iter()
        .map(|difference| difference.path)
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/properties/spec/properties/appProtocol/enum",
            "/properties/spec/properties/endpointPickerRef/properties/failureMode/default",
            "/properties/spec/properties/extra",
            "/properties/spec/properties/targetPorts/maxItems",
            "/properties/spec/required",
        ]
    );
}

#[test]
fn comparison_ignores_descriptions_and_order_of_sets() {
    let upstream = json!({
        "type": "object",
        "description": "upstream words",
        "required": ["a", "b"],
        "properties": {
            "a": {"type": "integer", "maximum": 8},
            "b": {"type": "string", "enum": ["x", "y"]},
            "description": {"type": "string"},
        },
    });
    let ours = json!({
        "type": "object",
        "title": "Ours",
        "required": ["b", "a"],
        "properties": {
            "a": {"type": "integer", "maximum": 8.0, "description": "our words"},
            "b": {"type": "string", "enum": ["y", "x"]},
            "description": {"type": "string"},
        },
    });
    assert_eq!(compare(&ours, &upstream), vec![]);

    // A property literally called `description` is still compared.
    let mut without_field = ours.clone();
    without_field["properties"]
        .as_object_mut()
        .unwrap()
        .remove("description");
    let differences = compare(&without_field, &upstream);
    assert_eq!(differences.len(), 1);
    assert_eq!(differences[0].path, "/properties/description");
}

#[test]
fn structural_check_flags_nullable_and_untyped_nodes() {
    let schema = json!({
        "type": "object",
        "properties": {
            "maybe": {"type": "string", "nullable": true},
            "untyped": {"properties": {}},
            "choice": {"type": "string", "anyOf": [{"type": "string"}]},
        },
    });
    let mut paths: Vec<String> = structural_violations(&schema)
        .into_iter()
        .map(|violation| violation.path)
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/properties/choice",
            "/properties/maybe",
            "/properties/untyped"
        ]
    );
}
