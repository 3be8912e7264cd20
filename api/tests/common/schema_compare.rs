//! Structural comparison of two OpenAPI v3 schemas, and a structural-schema check.
//!
//! [`compare`] walks both trees together and reports every difference with its
//! JSON pointer, so a failing test says exactly which field drifted. Annotation
//! keywords (`description`, `title`) are ignored; everything that changes what
//! the apiserver accepts or defaults is compared.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

/// Keywords that only document a schema and never change validation.
const ANNOTATION_KEYWORDS: &[&str] = &["description", "title"];

/// Keywords whose array value is an unordered set.
const SET_KEYWORDS: &[&str] = &["required", "enum", "x-kubernetes-list-map-keys"];

/// One way two schemas differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// JSON pointer of the differing node, e.g. `/properties/spec/required`.
    pub path: String,
    /// What differs.
    pub detail: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.detail)
    }
}

/// Every difference between `ours` and `upstream`, ignoring annotations.
pub fn compare(ours: &Value, upstream: &Value) -> Vec<Difference> {
    let mut differences = Vec::new();
    compare_at("", ours, upstream, &mut differences);
    differences
}

/// Panics with one line per difference unless the schemas match.
pub fn assert_same_structure(what: &str, ours: &Value, upstream: &Value) {
    let differences = compare(ours, upstream);
    assert!(
        differences.is_empty(),
        "{what}: {} difference(s) from upstream (ours vs upstream):\n  {}",
        differences.len(),
        differences
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

fn compare_at(path: &str, ours: &Value, upstream: &Value, out: &mut Vec<Difference>) {
    match (ours, upstream) {
        (Value::Object(ours), Value::Object(upstream)) => {
            let keys: BTreeSet<&String> = ours.keys().chain(upstream.keys()).collect();
            for key in keys {
                if ANNOTATION_KEYWORDS.contains(&key.as_str()) && !is_property_map(path) {
                    continue;
                }
                let child = format!("{path}/{}", escape_pointer(key));
                match (ours.get(key), upstream.get(key)) {
                    (Some(a), Some(b)) if SET_KEYWORDS.contains(&key.as_str()) => {
                        compare_sets(&child, a, b, out);
                    }
                    (Some(a), Some(b)) => compare_at(&child, a, b, out),
                    (Some(a), None) => out.push(Difference {
                        path: child,
                        detail: format!("only in ours: {a}"),
                    }),
                    (None, Some(b)) => out.push(Difference {
                        path: child,
                        detail: format!("only upstream: {b}"),
                    }),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(ours), Value::Array(upstream)) => {
            if ours.len() != upstream.len() {
                out.push(Difference {
                    path: path.to_owned(),
                    detail: format!(
                        "{} items in ours, {} upstream: {} vs {}",
                        ours.len(),
                        upstream.len(),
                        Value::Array(ours.clone()),
                        Value::Array(upstream.clone())
                    ),
                });
                return;
            }
            for (index, (a, b)) in ours.iter().zip(upstream).enumerate() {
                compare_at(&format!("{path}/{index}"), a, b, out);
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            // YAML and schemars may spell the same bound as 1 or 1.0.
            if a.as_f64() != b.as_f64() {
                out.push(Difference {
                    path: path.to_owned(),
                    detail: format!("ours {a}, upstream {b}"),
                });
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(Difference {
            path: path.to_owned(),
            detail: format!("ours {a}, upstream {b}"),
        }),
    }
}

/// Whether `path` is a `properties` map, where `description` or `title` would be
/// a field name rather than an annotation.
fn is_property_map(path: &str) -> bool {
    path.ends_with("/properties")
}

fn compare_sets(path: &str, ours: &Value, upstream: &Value, out: &mut Vec<Difference>) {
    let as_set = |value: &Value| -> Option<BTreeSet<String>> {
        value
            .as_array()
            .map(|items| items.iter().map(Value::to_string).collect())
    };
    match (as_set(ours), as_set(upstream)) {
        (Some(a), Some(b)) if a == b => {}
        (Some(a), Some(b)) => out.push(Difference {
            path: path.to_owned(),
            detail: format!(
                "only in ours {:?}, only upstream {:?}",
                a.difference(&b).collect::<Vec<_>>(),
                b.difference(&a).collect::<Vec<_>>()
            ),
        }),
        _ => compare_at(path, ours, upstream, out),
    }
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Every way `schema` breaks the apiserver's structural-schema rules (or the
/// stricter house rules below), each with its JSON pointer.
///
/// Checked: every node has a single string `type` (unless it is
/// `x-kubernetes-int-or-string` or preserves unknown fields); no
/// `$ref`/`$defs`/`definitions`/`$schema`; no `anyOf`/`oneOf`/`allOf`/`not` (the
/// apiserver tolerates them only in restricted forms, and we never need them);
/// no `nullable` (upstream's CRDs never use it); no `uniqueItems` or `const`;
/// `properties` and `additionalProperties` never together.
pub fn structural_violations(schema: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    check_node("", schema, &mut out);
    out
}

const FORBIDDEN_KEYWORDS: &[&str] = &[
    "$ref",
    "$defs",
    "definitions",
    "$schema",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "nullable",
    "uniqueItems",
    "const",
];

fn check_node(path: &str, node: &Value, out: &mut Vec<Difference>) {
    let Some(node) = node.as_object() else {
        out.push(Difference {
            path: path.to_owned(),
            detail: "schema node is not an object".into(),
        });
        return;
    };
    let mut violation = |detail: String| {
        out.push(Difference {
            path: path.to_owned(),
            detail,
        })
    };
    for keyword in FORBIDDEN_KEYWORDS {
        if node.contains_key(*keyword) {
            violation(format!("uses `{keyword}`"));
        }
    }
    let exempt = node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        || node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    match node.get("type") {
        Some(Value::String(_)) => {}
        None if exempt => {}
        other => violation(format!("needs a single string `type`, has {other:?}")),
    }
    if node.contains_key("properties") && node.contains_key("additionalProperties") {
        violation("has both `properties` and `additionalProperties`".into());
    }
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            check_node(
                &format!("{path}/properties/{}", escape_pointer(name)),
                child,
                out,
            );
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = node.get(key).filter(|child| child.is_object()) {
            check_node(&format!("{path}/{key}"), child, out);
        }
    }
}
