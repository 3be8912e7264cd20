//! Kubernetes name and label syntax, written out by hand (no regex dependency)
//! from the apimachinery validation rules that upstream's CRD patterns encode.

/// Why `key` is not a valid label key (`[prefix/]name`), or `None` when it is.
pub(crate) fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && let Some(problem) = subdomain_problem(prefix)
    {
        return Some(format!("the prefix {prefix:?} {problem}"));
    }
    if name.is_empty() {
        return Some("the name part after the prefix is empty".to_owned());
    }
    label_value_problem(name)
}

/// Why `value` is not a valid label value, or `None` when it is.
///
/// At most 63 characters of `[A-Za-z0-9-_.]`, starting and ending alphanumeric;
/// empty is allowed.
pub(crate) fn label_value_problem(value: &str) -> Option<String> {
    if value.len() > 63 {
        return Some(format!(
            "is {} characters long; at most 63 are allowed",
            value.len()
        ));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Some(format!(
            "contains {bad:?}; only letters, digits, '-', '_' and '.' are allowed"
        ));
    }
    let ends_ok = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    if !ends_ok(value.chars().next()) || !ends_ok(value.chars().last()) {
        return Some("must start and end with a letter or digit".to_owned());
    }
    None
}

/// Why `name` is not a DNS subdomain (the rule for most object names), or `None`.
///
/// At most 253 characters of lowercase alphanumerics, `-` and `.`, starting and
/// ending alphanumeric.
pub(crate) fn subdomain_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is empty".to_owned());
    }
    if name.len() > 253 {
        return Some(format!(
            "is {} characters long; at most 253 are allowed",
            name.len()
        ));
    }
    dns_chars_problem(name, true)
}

/// Why `name` is not a DNS label (the rule for namespaces), or `None`.
pub(crate) fn dns_label_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is empty".to_owned());
    }
    if name.len() > 63 {
        return Some(format!(
            "is {} characters long; at most 63 are allowed",
            name.len()
        ));
    }
    dns_chars_problem(name, false)
}

fn dns_chars_problem(name: &str, dots: bool) -> Option<String> {
    let allowed =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.');
    if let Some(bad) = name.chars().find(|c| !allowed(*c)) {
        let what = if dots { "'-' and '.'" } else { "'-'" };
        return Some(if bad.is_ascii_uppercase() {
            format!(
                "contains the capital {bad:?}; only lowercase letters, digits, {what} are allowed"
            )
        } else {
            format!("contains {bad:?}; only lowercase letters, digits, {what} are allowed")
        });
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alnum(name.chars().next()) || !alnum(name.chars().last()) {
        return Some("must start and end with a lowercase letter or digit".to_owned());
    }
    if dots && name.split('.').any(str::is_empty) {
        return Some("has an empty part between dots".to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys() {
        assert_eq!(label_key_problem("app"), None);
        assert_eq!(
            label_key_problem("inference.networking.k8s.io/engine-type"),
            None
        );
        assert!(label_key_problem("app name").unwrap().contains("' '"));
        assert!(
            label_key_problem("Example.com/x")
                .unwrap()
                .starts_with("the prefix")
        );
        assert!(label_key_problem("-app").is_some());
        assert!(label_key_problem("a/").is_some());
    }

    #[test]
    fn label_values() {
        assert_eq!(label_value_problem(""), None);
        assert_eq!(label_value_problem("123-my.value_X"), None);
        assert!(label_value_problem("a/b").is_some());
        assert!(label_value_problem(&"a".repeat(64)).is_some());
    }

    #[test]
    fn names() {
        assert_eq!(subdomain_problem("vllm-qwen3-32b"), None);
        assert!(subdomain_problem("Llama").unwrap().contains("capital"));
        assert!(subdomain_problem("a..b").is_some());
        assert!(dns_label_problem("a.b").is_some());
        assert_eq!(dns_label_problem("ai-inference"), None);
    }
}
