//! RBAC rules: no wildcards, namespaced where promised, bindings that resolve.

use serde_json::Value;

use super::{ChartRules, kind, meta_name, object_name, strings};

/// Whether a rendered role bound to `service_account` grants anything on `group/resource`.
pub(super) fn service_account_can(
    docs: &[Value],
    service_account: &str,
    group: &str,
    resource: &str,
) -> bool {
    docs.iter()
        .filter(|d| matches!(kind(d), "RoleBinding" | "ClusterRoleBinding"))
        .filter(|binding| {
            binding
                .get("subjects")
                .and_then(Value::as_array)
                .is_some_and(|subjects| {
                    subjects.iter().any(|s| {
                        s.get("kind").and_then(Value::as_str) == Some("ServiceAccount")
                            && s.get("name").and_then(Value::as_str) == Some(service_account)
                    })
                })
        })
        .filter_map(|binding| {
            let role_kind = binding.pointer("/roleRef/kind").and_then(Value::as_str)?;
            let role_name = binding.pointer("/roleRef/name").and_then(Value::as_str)?;
            docs.iter()
                .find(|d| kind(d) == role_kind && meta_name(d) == role_name)
        })
        .flat_map(|role| {
            role.get("rules")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .any(|rule| {
            strings(rule.get("apiGroups")).iter().any(|g| g == group)
                && strings(rule.get("resources")).iter().any(|r| r == resource)
        })
}

pub(super) fn check_rbac(docs: &[Value], rules: ChartRules) -> Vec<String> {
    let mut problems = Vec::new();
    for doc in docs {
        let name = object_name(doc);
        match kind(doc) {
            "Role" | "ClusterRole" => {
                if rules.namespaced_only && kind(doc) == "ClusterRole" {
                    problems.push(format!(
                        "{name}: this chart's permissions must be namespaced; use a Role"
                    ));
                }
                if doc.get("aggregationRule").is_some() {
                    problems.push(format!("{name}: aggregated roles hide what they grant"));
                }
                let role_rules = doc.get("rules").and_then(Value::as_array);
                for (index, rule) in role_rules.into_iter().flatten().enumerate() {
                    for field in ["verbs", "resources", "apiGroups", "nonResourceURLs"] {
                        if strings(rule.get(field)).iter().any(|v| v.contains('*')) {
                            problems.push(format!(
                                "{name}: rules[{index}].{field} has a wildcard; list what is needed"
                            ));
                        }
                    }
                    if strings(rule.get("verbs")).is_empty() {
                        problems.push(format!("{name}: rules[{index}] grants no verbs"));
                    }
                }
            }
            "RoleBinding" | "ClusterRoleBinding" => {
                if rules.namespaced_only && kind(doc) == "ClusterRoleBinding" {
                    problems.push(format!(
                        "{name}: this chart's permissions must be namespaced; use a RoleBinding"
                    ));
                }
                let role_kind = doc
                    .pointer("/roleRef/kind")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let role_name = doc
                    .pointer("/roleRef/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !docs
                    .iter()
                    .any(|d| kind(d) == role_kind && meta_name(d) == role_name)
                {
                    problems.push(format!(
                        "{name}: roleRef {role_kind}/{role_name} is not rendered by the chart"
                    ));
                }
                for subject in doc
                    .get("subjects")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let subject_kind = subject.get("kind").and_then(Value::as_str).unwrap_or("");
                    let subject_name = subject.get("name").and_then(Value::as_str).unwrap_or("");
                    if subject_kind != "ServiceAccount"
                        || !docs
                            .iter()
                            .any(|d| kind(d) == "ServiceAccount" && meta_name(d) == subject_name)
                    {
                        problems.push(format!(
                            "{name}: subject {subject_kind}/{subject_name} is not a ServiceAccount of the chart"
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    problems
}
