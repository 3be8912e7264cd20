//! Filters on pod labels: the role filters of disaggregated serving (`decode-filter`,
//! `prefill-filter`, `encode-filter` on `llm-d.ai/role`) and `label-selector-filter` (a
//! Kubernetes label selector), with llm-d-router's names and semantics.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Filter, no_parameters, parameters};
use crate::error::{Error, Result};
use crate::scheduling::Context;

/// The pod label naming the stages a server runs.
pub const ROLE_LABEL: &str = "llm-d.ai/role";

/// Keeps the endpoints whose `llm-d.ai/role` is one of `roles`; endpoints without the
/// label are kept only by `decode-filter` (an unlabelled server does everything).
#[derive(Debug)]
pub struct RoleFilter {
    type_name: &'static str,
    roles: &'static [&'static str],
    keep_unlabelled: bool,
}

/// Builds `decode-filter`: decode, prefill-decode, both (deprecated alias),
/// encode-prefill-decode, and unlabelled servers.
pub(super) fn decode(
    name: &str,
    type_: &str,
    params: serde_json::Value,
) -> Result<Box<dyn Filter>> {
    no_parameters(name, type_, params)?;
    Ok(Box::new(RoleFilter::decode()))
}

/// Builds `prefill-filter`: prefill, encode-prefill, prefill-decode, both,
/// encode-prefill-decode.
pub(super) fn prefill(
    name: &str,
    type_: &str,
    params: serde_json::Value,
) -> Result<Box<dyn Filter>> {
    no_parameters(name, type_, params)?;
    Ok(Box::new(RoleFilter::prefill()))
}

/// Builds `encode-filter`: encode, encode-prefill, encode-prefill-decode.
pub(super) fn encode(
    name: &str,
    type_: &str,
    params: serde_json::Value,
) -> Result<Box<dyn Filter>> {
    no_parameters(name, type_, params)?;
    Ok(Box::new(RoleFilter::encode()))
}

impl RoleFilter {
    /// `decode-filter`.
    pub fn decode() -> Self {
        Self {
            type_name: "decode-filter",
            roles: &["decode", "prefill-decode", "both", "encode-prefill-decode"],
            keep_unlabelled: true,
        }
    }

    /// `prefill-filter`.
    pub fn prefill() -> Self {
        Self {
            type_name: "prefill-filter",
            roles: &[
                "prefill",
                "encode-prefill",
                "prefill-decode",
                "both",
                "encode-prefill-decode",
            ],
            keep_unlabelled: false,
        }
    }

    /// `encode-filter`.
    pub fn encode() -> Self {
        Self {
            type_name: "encode-filter",
            roles: &["encode", "encode-prefill", "encode-prefill-decode"],
            keep_unlabelled: false,
        }
    }
}

impl Filter for RoleFilter {
    fn type_name(&self) -> &'static str {
        self.type_name
    }

    fn filter(&self, ctx: &Context<'_>, candidates: &mut Vec<usize>) {
        candidates.retain(|&i| {
            ctx.endpoint(i)
                .is_some_and(|e| match e.labels.get(ROLE_LABEL) {
                    Some(role) => self.roles.contains(&role.as_str()),
                    None => self.keep_unlabelled,
                })
        });
    }
}

/// One `matchExpressions` entry of a label selector.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    key: String,
    operator: String,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct SelectorParameters {
    match_labels: BTreeMap<String, String>,
    match_expressions: Vec<RawRequirement>,
}

/// A label requirement as Kubernetes evaluates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// The label is one of the values.
    In(String, Vec<String>),
    /// The label is absent or none of the values.
    NotIn(String, Vec<String>),
    /// The label is present.
    Exists(String),
    /// The label is absent.
    DoesNotExist(String),
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Self::In(key, values) => labels.get(key).is_some_and(|v| values.contains(v)),
            Self::NotIn(key, values) => labels.get(key).is_none_or(|v| !values.contains(v)),
            Self::Exists(key) => labels.contains_key(key),
            Self::DoesNotExist(key) => !labels.contains_key(key),
        }
    }
}

/// `label-selector-filter`: keeps the endpoints whose pod labels match a Kubernetes
/// label selector (`matchLabels` and `matchExpressions`, all must hold).
#[derive(Debug)]
pub struct LabelSelectorFilter {
    requirements: Vec<Requirement>,
}

impl LabelSelectorFilter {
    /// A filter requiring every one of `requirements`.
    pub fn new(requirements: Vec<Requirement>) -> Self {
        Self { requirements }
    }
}

/// Builds `label-selector-filter` from its selector.
pub(super) fn selector(
    name: &str,
    type_: &str,
    params: serde_json::Value,
) -> Result<Box<dyn Filter>> {
    let p: SelectorParameters = parameters(name, type_, params)?;
    let bad = |reason: String| Error::PluginParameters {
        name: name.into(),
        type_: type_.into(),
        reason,
    };
    let mut requirements: Vec<Requirement> = p
        .match_labels
        .into_iter()
        .map(|(k, v)| Requirement::In(k, vec![v]))
        .collect();
    for (i, raw) in p.match_expressions.into_iter().enumerate() {
        let needs_values = matches!(raw.operator.as_str(), "In" | "NotIn");
        if needs_values == raw.values.is_empty() {
            return Err(bad(format!(
                "matchExpressions[{i}]: operator {} {} values",
                raw.operator,
                if needs_values { "needs" } else { "takes no" }
            )));
        }
        requirements.push(match raw.operator.as_str() {
            "In" => Requirement::In(raw.key, raw.values),
            "NotIn" => Requirement::NotIn(raw.key, raw.values),
            "Exists" => Requirement::Exists(raw.key),
            "DoesNotExist" => Requirement::DoesNotExist(raw.key),
            other => {
                return Err(bad(format!(
                    "matchExpressions[{i}]: operator `{other}` is not In, NotIn, Exists or DoesNotExist"
                )));
            }
        });
    }
    if requirements.is_empty() {
        return Err(bad(
            "give matchLabels or matchExpressions; an empty selector would keep every endpoint"
                .into(),
        ));
    }
    Ok(Box::new(LabelSelectorFilter::new(requirements)))
}

impl Filter for LabelSelectorFilter {
    fn type_name(&self) -> &'static str {
        "label-selector-filter"
    }

    fn filter(&self, ctx: &Context<'_>, candidates: &mut Vec<usize>) {
        candidates.retain(|&i| {
            ctx.endpoint(i)
                .is_some_and(|e| self.requirements.iter().all(|r| r.matches(&e.labels)))
        });
    }
}
