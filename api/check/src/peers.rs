//! Rules of InferencePools and InferenceModelRewrites against other objects:
//! the pool's endpoint picker Service, and the models a rewrite sends requests to.
//!
//! Both only judge what [`Objects`] knows: no Services given, or no pool that
//! declares its models, and nothing is said.

use serde_json::Value;

use super::Reporter;
use super::hints::DEFAULT_NAMESPACE;
use super::objects::{Objects, SERVED_MODELS_ANNOTATION};

/// The endpoint picker Service of a pool should exist in the pool's namespace:
/// without it the gateway fails (or, with `FailOpen`, bypasses) every request.
/// A warning, not a denial: a pool is often applied before its picker's chart.
pub(crate) fn picker_service(rep: &mut Reporter<'_>, document: &Value, objects: &Objects) {
    let Some(services) = &objects.services else {
        return;
    };
    let (v1, legacy) = (
        document.pointer("/spec/endpointPickerRef"),
        document.pointer("/spec/extensionRef"),
    );
    let (path, reference) = match (v1, legacy) {
        (Some(reference), _) => ("spec.endpointPickerRef.name", reference),
        (None, Some(reference)) => ("spec.extensionRef.name", reference),
        (None, None) => return,
    };
    let text = |key: &str| reference.get(key).and_then(Value::as_str);
    if text("kind").is_some_and(|kind| kind != "Service")
        || text("group").is_some_and(|g| !g.is_empty())
    {
        return; // Another kind of picker: not ours to resolve.
    }
    let Some(name) = text("name") else {
        return;
    };
    let namespace = rep.namespace().to_owned();
    if services
        .iter()
        .any(|service| service.namespace == namespace && service.name == name)
    {
        return;
    }
    rep.warn(
        path,
        format!(
            "no Service {name:?} in namespace {namespace} {}: the gateway sends every request of this pool to its endpoint picker through that Service, and fails them until it exists; deploy the picker (e.g. the upstream inferencepool Helm chart) or point endpointPickerRef at its Service",
            objects.among()
        ),
    );
}

/// Each rewrite target should be a model the rewrite's pool serves, when the pool
/// declares its models; an undeclared model is a warning, not a denial, since a
/// LoRA adapter can be loaded after the rewrite is written.
pub(crate) fn served_models(rep: &mut Reporter<'_>, document: &Value, objects: &Objects) {
    let Some(pools) = &objects.pools else {
        return;
    };
    let Some(pool_name) = document
        .pointer("/spec/poolRef/name")
        .and_then(Value::as_str)
    else {
        return;
    };
    let namespace = document
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_NAMESPACE);
    let Some(pool) = pools
        .iter()
        .find(|pool| pool.namespace == namespace && pool.name == pool_name)
    else {
        return; // The pool reference's own finding.
    };
    let Some(served) = &pool.served_models else {
        return;
    };
    let rules = document.pointer("/spec/rules").and_then(Value::as_array);
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        let targets = rule.get("targets").and_then(Value::as_array);
        for (j, target) in targets.into_iter().flatten().enumerate() {
            let Some(model) = target.get("modelRewrite").and_then(Value::as_str) else {
                continue;
            };
            if served.iter().any(|s| s == model) {
                continue;
            }
            rep.warn(
                &format!("spec.rules[{i}].targets[{j}].modelRewrite"),
                format!(
                    "InferencePool {pool_name} does not list model {model:?} among the models it serves ({}, from its annotation {SERVED_MODELS_ANNOTATION}); requests rewritten to it fail unless a server loads it: check the name, or add it to that annotation once the servers serve it",
                    if served.is_empty() { "none".to_owned() } else { served.join(", ") }
                ),
            );
        }
    }
}
