//! `metadata`: the name every finding is reported under, and the namespace that
//! references are resolved in.

use serde_json::Value;

use super::Reporter;
use super::hints::describe;
use super::labels::{dns_label_problem, subdomain_problem};

/// Checks `metadata.name` (required, a DNS subdomain) and `metadata.namespace`
/// (a DNS label). Other metadata (labels, annotations…) is the apiserver's business.
pub(crate) fn check(rep: &mut Reporter<'_>, document: &Value) {
    let Some(metadata) = document.get("metadata") else {
        rep.report("metadata", "is required: add metadata: {name: my-object}");
        return;
    };
    let Some(metadata) = metadata.as_object() else {
        rep.report(
            "metadata",
            format!(
                "must be an object with name (and namespace), got {}",
                describe(metadata)
            ),
        );
        return;
    };
    match metadata.get("name") {
        None if metadata.contains_key("generateName") => {}
        None => rep.report("metadata.name", "is required"),
        Some(Value::String(name)) => {
            if let Some(problem) = subdomain_problem(name) {
                rep.report("metadata.name", format!("{name:?} {problem}"));
            }
        }
        Some(other) => rep.report(
            "metadata.name",
            format!("must be a string, got {}", describe(other)),
        ),
    }
    match metadata.get("namespace") {
        None => {}
        Some(Value::String(namespace)) => {
            if let Some(problem) = dns_label_problem(namespace) {
                rep.report("metadata.namespace", format!("{namespace:?} {problem}"));
            }
        }
        Some(other) => rep.report(
            "metadata.namespace",
            format!("must be a string, got {}", describe(other)),
        ),
    }
}
