//! The checker's field tables must agree with the CRDs Switchyard serves
//! (`switchyard_api::crds::served()`), field for field, or a valid manifest would be
//! reported as having unknown fields (or a typo would pass).

use serde_json::Value;

use super::super::fields::{Field, Ty};
use super::super::{objective, pool, rewrite};

/// Asserts that `fields` and the OpenAPI object schema `schema` name the same
/// properties and requirements, recursively.
fn assert_agrees(fields: &[Field], schema: &Value, path: &str) {
    let properties = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{path}: no properties"));
    let mut ours: Vec<&str> = fields.iter().map(|f| f.name).collect();
    let mut theirs: Vec<&str> = properties.keys().map(String::as_str).collect();
    ours.sort_unstable();
    theirs.sort_unstable();
    assert_eq!(ours, theirs, "{path}: fields differ");
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for field in fields {
        let at = format!("{path}.{}", field.name);
        // Our rewrite rules require targets where the CRD does not; see rewrite.rs.
        if at != "spec.rules[].targets" {
            assert_eq!(
                field.required,
                required.contains(&field.name),
                "{at}: required differs"
            );
        }
        assert_type(&field.ty, &properties[field.name], &at);
    }
}

fn assert_type(ty: &Ty, schema: &Value, path: &str) {
    match ty {
        Ty::Obj(fields) => assert_agrees(fields, schema, path),
        Ty::List { item, min, max } => {
            assert_eq!(schema["type"], "array", "{path}");
            // The API server refuses a list over `maxItems`: the checker must too, or a
            // manifest it passes is refused at apply time.
            let max_items = schema["maxItems"]
                .as_u64()
                .map_or(usize::MAX, |n| n as usize);
            assert_eq!(*max, max_items, "{path}: maxItems differs");
            let min_items = schema["minItems"].as_u64().unwrap_or(0) as usize;
            assert!(
                *min >= min_items,
                "{path}: the checker allows fewer items than minItems"
            );
            assert_type(item, &schema["items"], &format!("{path}[]"));
        }
        Ty::Int { .. } => assert_eq!(schema["type"], "integer", "{path}"),
        Ty::Str | Ty::Text { .. } | Ty::Enum(_) => assert_eq!(schema["type"], "string", "{path}"),
        Ty::StrMap => assert_eq!(schema["type"], "object", "{path}"),
        Ty::Any => {}
    }
    if let Ty::Enum(values) = ty {
        let theirs: Vec<&str> = schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(*values, theirs.as_slice(), "{path}: enum differs");
    }
}

fn served_spec(kind: &str) -> Value {
    let crd = switchyard_api::crds::served()
        .into_iter()
        .find(|crd| crd.spec.names.kind == kind)
        .unwrap();
    let crd = serde_json::to_value(crd).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone()
}

#[test]
fn pool_fields_match_the_served_crd() {
    assert_agrees(pool::SPEC, &served_spec("InferencePool"), "spec");
}

#[test]
fn objective_fields_match_the_served_crd() {
    assert_agrees(objective::SPEC, &served_spec("InferenceObjective"), "spec");
}

#[test]
fn rewrite_fields_match_the_served_crd() {
    assert_agrees(rewrite::SPEC, &served_spec("InferenceModelRewrite"), "spec");
}

/// The spec schema of an upstream CRD kept as a test fixture (the legacy kinds,
/// which we read but do not serve).
fn upstream_spec(yaml: &str) -> Value {
    let crd: Value = serde_saphyr::from_str(yaml).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone()
}

#[test]
fn legacy_pool_fields_match_upstream_v1alpha2() {
    let yaml = include_str!("../../../tests/fixtures/upstream/inferencepools.v1alpha2.yaml");
    assert_agrees(pool::LEGACY_SPEC, &upstream_spec(yaml), "spec");
}

#[test]
fn legacy_model_fields_match_upstream_v1alpha2() {
    let yaml = include_str!("../../../tests/fixtures/upstream/inferencemodels.v1alpha2.yaml");
    assert_agrees(super::super::model::SPEC, &upstream_spec(yaml), "spec");
}
