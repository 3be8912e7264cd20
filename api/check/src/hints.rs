//! Shared wording: API names, how to render a value in a message, and typo matching.
//!
//! Messages quote the user's own values back in flow YAML (`{app: vllm}`) so the
//! fix can be pasted as written.

use serde_json::Value;

use switchyard_api::legacy::Criticality;

/// The GA group of InferencePool.
pub(crate) const POOL_GROUP: &str = switchyard_api::reference::INFERENCE_POOL_GROUP;
/// The served apiVersion of InferencePool.
pub(crate) const POOL_API: &str = "inference.networking.k8s.io/v1";
/// The experimental group: legacy InferencePool/InferenceModel, InferenceObjective,
/// InferenceModelRewrite.
pub(crate) const X_GROUP: &str = switchyard_api::legacy::LEGACY_GROUP;
/// The served apiVersion of the experimental group.
pub(crate) const X_API: &str = "inference.networking.x-k8s.io/v1alpha2";
/// llm-d's group, where InferenceObjective and InferenceModelRewrite also live.
pub(crate) const LLMD_GROUP: &str = switchyard_api::alias::LLM_D_GROUP;
/// The Gateway API group.
pub(crate) const GATEWAY_GROUP: &str = switchyard_api::reference::GATEWAY_API_GROUP;
/// The namespace a namespaced object without `metadata.namespace` lands in.
pub(crate) const DEFAULT_NAMESPACE: &str = "default";
/// The port upstream's v1alpha2 API defaulted the endpoint picker to, and the
/// one its charts still use.
pub(crate) const DEFAULT_EPP_PORT: i64 =
    switchyard_api::legacy::convert::LEGACY_DEFAULT_EXTENSION_PORT as i64;

/// The InferenceObjective priority that stands for a legacy InferenceModel
/// criticality (matched without regard to case), as the legacy conversion maps it.
pub(crate) fn priority_for(criticality: &str) -> Option<i64> {
    let class = match criticality.to_ascii_lowercase().as_str() {
        "critical" => Criticality::Critical,
        "standard" => Criticality::Standard,
        "sheddable" => Criticality::Sheddable,
        _ => return None,
    };
    Some(class.priority())
}

/// How criticality maps to priority, for messages.
pub(crate) const PRIORITY_SCALE: &str =
    "Critical → 1, Standard → 0, the default, Sheddable → -1: higher priorities are served first";

/// A short description of a value's type (and the value, when short), for
/// "must be X, got Y" messages.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing (null)".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() <= 40 => format!("the string {s:?}"),
        Value::String(_) => "a string".to_owned(),
        Value::Array(_) => format!("a list {}", truncate(&yaml(value))),
        Value::Object(_) => format!("an object {}", truncate(&yaml(value))),
    }
}

fn truncate(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

/// Renders a value as one-line flow YAML: `{app: vllm, tier: "a b"}`.
pub(crate) fn yaml(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(yaml).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{}: {}", scalar(k), yaml(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// A string as a YAML scalar: bare when that reads back as the same string.
pub(crate) fn scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && text.starts_with(|c: char| c.is_ascii_alphabetic())
        // Words YAML 1.1 would read as booleans or null.
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null"
        );
    if plain {
        text.to_owned()
    } else {
        format!("{text:?}")
    }
}

/// The candidate closest to `word` by edit distance, if close enough to be a typo.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (distance(&word, &c.to_ascii_lowercase()), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row.first().copied().unwrap_or(0);
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row.get(j + 1).copied().unwrap_or(0);
            let delete = previous + 1;
            let insert = row.get(j).copied().unwrap_or(0) + 1;
            if let Some(cell) = row.get_mut(j + 1) {
                *cell = substitute.min(delete).min(insert);
            }
        }
    }
    row.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_flow_yaml() {
        assert_eq!(
            yaml(&json!({"app": "vllm-qwen3-32b"})),
            "{app: vllm-qwen3-32b}"
        );
        assert_eq!(yaml(&json!([{"number": 8000}])), "[{number: 8000}]");
        assert_eq!(
            yaml(&json!({"v": "1", "x": "yes", "y": "a b"})),
            r#"{v: "1", x: "yes", "y": "a b"}"#
        );
    }

    #[test]
    fn api_versions_match_groups_and_priorities_match_the_conversion() {
        assert_eq!(POOL_API, format!("{POOL_GROUP}/v1"));
        assert_eq!(X_API, format!("{X_GROUP}/v1alpha2"));
        let scale: Vec<Option<i64>> = ["Critical", "standard", "SHEDDABLE", "High"]
            .iter()
            .map(|c| priority_for(c))
            .collect();
        assert_eq!(scale, [Some(1), Some(0), Some(-1), None]);
        assert!(
            PRIORITY_SCALE.starts_with("Critical → 1, Standard → 0, the default, Sheddable → -1")
        );
    }

    #[test]
    fn finds_typos() {
        assert_eq!(
            closest("targetPort", &["targetPorts", "selector"]),
            Some("targetPorts")
        );
        assert_eq!(
            closest("failuremode", &["failureMode", "name"]),
            Some("failureMode")
        );
        assert_eq!(closest("spec", &["targetPorts", "selector"]), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
