//! HTTPRoute (`gateway.networking.k8s.io/v1`): only what concerns inference —
//! the backendRefs. The rest of the route is Gateway API's to validate, so
//! unknown fields are not reported here.

use serde_json::{Map, Value};

use super::Reporter;
use super::fields::check_int;
use super::hints::{POOL_GROUP, X_GROUP, closest, describe};
use super::refs::{PoolIndex, PoolRef};

/// Checks the backendRefs of every rule of an HTTPRoute.
pub(crate) fn check(rep: &mut Reporter<'_>, document: &Value, index: &PoolIndex) {
    let Some(spec) = document.get("spec") else {
        rep.report("spec", "is required");
        return;
    };
    let Some(rules) = spec.get("rules") else {
        return;
    };
    let Some(rules) = rules.as_array() else {
        rep.report(
            "spec.rules",
            format!("must be a list, got {}", describe(rules)),
        );
        return;
    };
    for (i, rule) in rules.iter().enumerate() {
        let Some(refs) = rule.get("backendRefs") else {
            continue;
        };
        let path = format!("spec.rules[{i}].backendRefs");
        let Some(refs) = refs.as_array() else {
            rep.report(&path, format!("must be a list, got {}", describe(refs)));
            continue;
        };
        for (j, backend) in refs.iter().enumerate() {
            let at = format!("{path}[{j}]");
            match backend.as_object() {
                Some(backend) => check_backend(rep, &at, backend, index),
                None => rep.report(&at, format!("must be an object, got {}", describe(backend))),
            }
        }
    }
}

fn check_backend(
    rep: &mut Reporter<'_>,
    path: &str,
    backend: &Map<String, Value>,
    index: &PoolIndex,
) {
    if let Some(weight) = backend.get("weight") {
        check_int(rep, &format!("{path}.weight"), 0, 1_000_000, weight);
    }
    if let Some(port) = backend.get("port") {
        check_int(rep, &format!("{path}.port"), 1, 65535, port);
    }
    let string = |key: &str| backend.get(key).and_then(Value::as_str);
    for key in ["group", "kind", "name", "namespace"] {
        if let Some(value) = backend.get(key).filter(|v| !v.is_string()) {
            rep.report(
                &format!("{path}.{key}"),
                format!("must be a string, got {}", describe(value)),
            );
        }
    }
    let Some(name) = string("name") else {
        if !backend.contains_key("name") {
            rep.report(&format!("{path}.name"), "is required");
        }
        return;
    };
    let group = string("group").unwrap_or("");
    match string("kind") {
        Some("InferencePool") => {
            let reference = PoolRef {
                group: string("group"),
                name,
                namespace: string("namespace"),
                cross_namespace: true,
            };
            index.check(rep, path, &reference, "");
        }
        Some(kind) if closest(kind, &["InferencePool"]).is_some() => rep.report(
            &format!("{path}.kind"),
            format!("there is no kind {kind:?}; write kind: InferencePool"),
        ),
        None if group == POOL_GROUP || group == X_GROUP => rep.report(
            path,
            format!("group {group} without kind means kind Service, which that group does not have: add kind: InferencePool"),
        ),
        kind if group.is_empty() && kind.is_none_or(|k| k == "Service") && !backend.contains_key("port") => {
            let because = if kind.is_none() { "has no kind, so it names a Service, and" } else { "is a Service, and" };
            rep.report(
                path,
                format!(
                    "backendRef {name} {because} a Service backendRef needs a port; to send traffic to an InferencePool write group: {POOL_GROUP}, kind: InferencePool (no port needed)"
                ),
            );
        }
        _ => {}
    }
}
