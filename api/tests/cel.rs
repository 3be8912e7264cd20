//! The CEL rules (`x-kubernetes-validations`) of our generated CRDs: every
//! single-object rule of the checker that CEL can express is carried by the
//! schema, at the field it is about, with a message that says what to change.
//! The committed CRD file is checked against these same types by `crdgen.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use common::open_api_schema;
use kube::CustomResourceExt;
use serde_json::Value;
use switchyard_api::{InferenceModelRewrite, InferencePool, InferenceRollout};

/// The (rule, message) pairs at a JSON pointer into a CRD's schema.
fn rules_at<K: CustomResourceExt>(pointer: &str) -> Vec<(String, String)> {
    let crd = serde_json::to_value(K::crd()).unwrap();
    let node = open_api_schema(&crd)
        .pointer(pointer)
        .unwrap_or_else(|| panic!("no schema node at {pointer}"));
    node.get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no x-kubernetes-validations at {pointer}: {node:#}"))
        .iter()
        .map(|rule| {
            (
                rule["rule"].as_str().unwrap().to_owned(),
                rule["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn assert_rule<K: CustomResourceExt>(pointer: &str, rule: &str, message: &str) {
    let rules = rules_at::<K>(pointer);
    assert!(
        rules.iter().any(|(r, m)| r == rule && m == message),
        "{}: no rule {rule:?} with message {message:?} at {pointer}; found {rules:#?}",
        K::crd_name()
    );
}

#[test]
fn pool_target_ports_are_unique_and_a_service_picker_has_a_port() {
    assert_rule::<InferencePool>(
        "/properties/spec/properties/targetPorts",
        "self.all(p1, self.exists_one(p2, p1.number==p2.number))",
        "port number must be unique",
    );
    assert_rule::<InferencePool>(
        "/properties/spec/properties/endpointPickerRef",
        "self.kind != 'Service' || has(self.port)",
        "port is required when kind is 'Service' or unspecified (defaults to 'Service')",
    );
}

#[test]
fn rewrite_weights_are_set_on_every_target_or_none() {
    assert_rule::<InferenceModelRewrite>(
        "/properties/spec/properties/rules/items/properties/targets",
        "self.all(t, has(t.weight)) || self.all(t, !has(t.weight))",
        "set weight on every target or on none",
    );
}

#[test]
fn rollout_steps_are_unique_increasing_and_within_max_weight() {
    let steps = "/properties/spec/properties/strategy/properties/steps";
    assert_rule::<InferenceRollout>(
        steps,
        "self.all(a, self.exists_one(b, a.weight == b.weight))",
        "step weights must be unique",
    );
    assert_rule::<InferenceRollout>(
        steps,
        "self.map(s, s.weight).isSorted()",
        "step weights must increase from one step to the next",
    );
    assert_rule::<InferenceRollout>(
        "/properties/spec/properties/strategy",
        "self.steps.all(s, s.weight <= self.maxWeight)",
        "every step weight must be at most maxWeight",
    );
}

#[test]
fn rollout_query_metrics_need_a_prometheus_source() {
    assert_rule::<InferenceRollout>(
        "/properties/spec/properties/analysis",
        "!has(self.metrics) || !self.metrics.exists(m, m.type == 'Query') || (has(self.source) && has(self.source.prometheus))",
        "a Query metric runs PromQL: set source.prometheus",
    );
    assert_rule::<InferenceRollout>(
        "/properties/spec/properties/analysis/properties/metrics/items",
        "self.type != 'Query' || has(self.query)",
        "a Query metric needs query",
    );
}

#[test]
fn rollout_targets_name_what_each_mode_needs_and_two_different_backends() {
    let target = "/properties/spec/properties/target";
    assert_rule::<InferenceRollout>(
        target,
        "self.mode != 'PoolSplit' || (has(self.route) && has(self.stable) && has(self.canary))",
        "PoolSplit needs route, stable and canary",
    );
    assert_rule::<InferenceRollout>(
        target,
        // Field by field: kube-apiserver refuses a rule comparing two objects with `!=`.
        "!has(self.stable) || !has(self.canary) || self.stable.group != self.canary.group || self.stable.kind != self.canary.kind || self.stable.name != self.canary.name",
        "stable and canary must be different backends",
    );
    assert_rule::<InferenceRollout>(
        &format!("{target}/properties/modelSplit"),
        "self.stable != self.canary",
        "stable and canary models must differ",
    );
}

/// Every rule sits on a node whose fields it names, so the apiserver can
/// compile it: a rule's `self.x` must be a property of that node.
#[test]
fn every_rule_names_fields_of_its_own_node() {
    fn walk(node: &Value, at: &str, out: &mut Vec<String>) {
        let Some(map) = node.as_object() else { return };
        if let Some(Value::Array(rules)) = map.get("x-kubernetes-validations") {
            let properties = map
                .get("properties")
                .or_else(|| map.get("items").and_then(|items| items.get("properties")))
                .and_then(Value::as_object);
            for rule in rules {
                let text = rule["rule"].as_str().unwrap();
                // `self.<field>` right after `self.` (not `self.all(` and friends).
                for field in text.split("self.").skip(1) {
                    let name: String = field
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    let call = field[name.len()..].starts_with('(');
                    if call || name.is_empty() {
                        continue;
                    }
                    let known = properties.is_some_and(|p| p.contains_key(&name));
                    if !known {
                        out.push(format!("{at}: {text:?} names {name}"));
                    }
                }
            }
        }
        for (key, value) in map {
            walk(value, &format!("{at}/{key}"), out);
        }
    }
    for crd in switchyard_api::crds::served() {
        let crd = serde_json::to_value(crd).unwrap();
        let mut unknown = Vec::new();
        walk(open_api_schema(&crd), "", &mut unknown);
        assert!(unknown.is_empty(), "{unknown:#?}");
    }
}
