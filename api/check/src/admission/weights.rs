//! A weight edited by hand on a route rule (PoolSplit) or rewrite rule
//! (ModelSplit) an active InferenceRollout weighs, or that rule removed or
//! renamed.
//!
//! The controller owns those two weights while the rollout runs: an edit would
//! be undone (`driftPolicy: Revert`), stop the rollout (`Pause`) or become its
//! new state (`Adopt`), none of which the person editing expects. The admin API
//! changes the split in a way the rollout records, so the message points there.

use serde::Deserialize;
use serde_json::Value;

use super::{Config, Enforcement};
use crate::hints::DEFAULT_NAMESPACE;
use crate::objects::Objects;
use crate::{Document, Finding, Reporter, Severity};
use switchyard_api::httproute::HttpRouteRule;
use switchyard_api::rewrite::InferenceModelRewriteRule;
use switchyard_api::rollout::SplitMode;
use switchyard_api::{HttpRouteSpec, InferenceModelRewriteSpec};

/// Reports every owned rule of `new` whose weights differ from `old`'s, and
/// every owned rule that `new` no longer has (removed, or renamed: the
/// controller finds its rule by name, so a rename is a removal to it).
pub(super) fn manual_edits(
    new: &Value,
    old: &Value,
    objects: &Objects,
    config: &Config,
    findings: &mut Vec<Finding>,
) {
    let decode =
        |route: &Value| HttpRouteSpec::deserialize(route.get("spec").unwrap_or(&Value::Null)).ok();
    let (Some(new_spec), Some(old_spec)) = (decode(new), decode(old)) else {
        return; // An undecodable route has its own finding.
    };
    let field = |pointer: &str| new.pointer(pointer).and_then(Value::as_str);
    let namespace = field("/metadata/namespace").unwrap_or(DEFAULT_NAMESPACE);
    let Some(route_name) = field("/metadata/name") else {
        return;
    };
    let document = admission_document();
    let mut rep = Reporter {
        document: &document,
        kind: "HTTPRoute".to_owned(),
        name: route_name.to_owned(),
        findings,
    };
    let severity = severity(config);
    if objects.rollouts_unsynced {
        let all_weights = |spec: &HttpRouteSpec| -> Vec<_> {
            spec.rules()
                .iter()
                .map(|rule| (rule.name.clone(), weights(rule)))
                .collect()
        };
        if all_weights(&new_spec) != all_weights(&old_spec) {
            rep.report_as(severity, "spec.rules", unsynced_message());
        }
        return;
    }
    for rollout in &objects.rollouts {
        let target = &rollout.spec.target;
        let Some(route) = target
            .route
            .as_ref()
            .filter(|_| target.mode == SplitMode::PoolSplit && rollout.namespace == namespace)
        else {
            continue;
        };
        if route.name != route_name {
            continue;
        }
        let find = |spec: &HttpRouteSpec| {
            spec.rules()
                .iter()
                .enumerate()
                .find(|(_, rule)| rule.name.as_deref() == Some(route.rule_name.as_str()))
                .map(|(i, rule)| (i, weights(rule)))
        };
        let advice = advice(namespace, &rollout.name);
        let (now, before) = match (find(&new_spec), find(&old_spec)) {
            (Some(now), Some(before)) => (now, before),
            (None, Some(_)) => {
                rep.report_as(
                    severity,
                    "spec.rules",
                    format!(
                        "rule {} is weighted by InferenceRollout {namespace}/{} while it runs, and this edit removes or renames it; the controller finds its rule by name and would lose it. Keep the rule and its name, and {advice}",
                        route.rule_name, rollout.name
                    ),
                );
                continue;
            }
            _ => continue,
        };
        let ((index, now), (_, before)) = (now, before);
        if now == before {
            continue;
        }
        let changes = describe(&now, &before);
        rep.report_as(
            severity,
            &format!("spec.rules[{index}].backendRefs"),
            format!(
                "rule {} is weighted by InferenceRollout {namespace}/{} while it runs, and this edit changes its weights ({changes}); the controller would treat it as drift (driftPolicy {:?}). Leave the weights as they were and {advice}",
                route.rule_name, rollout.name, route.drift_policy
            ),
        );
    }
}

/// Reports edits of the targets of an InferenceModelRewrite rule that an
/// active ModelSplit rollout weighs: their weights, or the rule itself
/// (removed, or its model match changed so the controller no longer finds it).
pub(super) fn manual_rewrite_edits(
    new: &Value,
    old: &Value,
    objects: &Objects,
    config: &Config,
    findings: &mut Vec<Finding>,
) {
    let decode = |rewrite: &Value| {
        InferenceModelRewriteSpec::deserialize(rewrite.get("spec").unwrap_or(&Value::Null)).ok()
    };
    let (Some(new_spec), Some(old_spec)) = (decode(new), decode(old)) else {
        return;
    };
    let field = |pointer: &str| new.pointer(pointer).and_then(Value::as_str);
    let namespace = field("/metadata/namespace").unwrap_or(DEFAULT_NAMESPACE);
    let Some(rewrite_name) = field("/metadata/name") else {
        return;
    };
    let document = admission_document();
    let mut rep = Reporter {
        document: &document,
        kind: "InferenceModelRewrite".to_owned(),
        name: rewrite_name.to_owned(),
        findings,
    };
    let severity = severity(config);
    let targets = |spec: &InferenceModelRewriteSpec| -> Vec<Vec<(String, Option<i32>)>> {
        spec.rules.iter().map(rule_targets).collect()
    };
    if objects.rollouts_unsynced {
        if targets(&new_spec) != targets(&old_spec) {
            rep.report_as(severity, "spec.rules", unsynced_message());
        }
        return;
    }
    for rollout in &objects.rollouts {
        let target = &rollout.spec.target;
        let Some(split) = target.model_split.as_ref().filter(|split| {
            target.mode == SplitMode::ModelSplit
                && rollout.namespace == namespace
                && split.rewrite_ref == rewrite_name
        }) else {
            continue;
        };
        let find = |spec: &InferenceModelRewriteSpec| {
            spec.rules
                .iter()
                .enumerate()
                .find(|(_, rule)| rule.matches.iter().any(|m| m.model.matches(&split.model)))
                .map(|(i, rule)| (i, rule_targets(rule)))
        };
        let advice = advice(namespace, &rollout.name);
        match (find(&new_spec), find(&old_spec)) {
            (None, Some(_)) => rep.report_as(
                severity,
                "spec.rules",
                format!(
                    "the rule for model {:?} is weighted by InferenceRollout {namespace}/{} while it runs, and this edit removes it or changes its match; the controller would lose it. Keep the rule, and {advice}",
                    split.model, rollout.name
                ),
            ),
            (Some((index, now)), Some((_, before))) if now != before => rep.report_as(
                severity,
                &format!("spec.rules[{index}].targets"),
                format!(
                    "the rule for model {:?} is weighted by InferenceRollout {namespace}/{} while it runs, and this edit changes its targets; the controller would treat it as drift. Leave the targets as they were and {advice}",
                    split.model, rollout.name
                ),
            ),
            _ => {}
        }
    }
}

fn severity(config: &Config) -> Severity {
    match config.manual_weight_edits {
        Enforcement::Deny => Severity::Error,
        Enforcement::Warn => Severity::Warning,
    }
}

fn admission_document() -> Document {
    Document {
        source: "admission".to_owned(),
        index: 1,
        line: 1,
        value: Value::Null,
    }
}

/// Until its InferenceRollout watch has listed, the webhook cannot tell an
/// owned rule from any other; it refuses weight edits rather than let them
/// all through (the guard would otherwise be off after every restart).
fn unsynced_message() -> String {
    "the webhook has not loaded the InferenceRollouts yet, so it cannot tell whether this weight edit touches a rule a rollout owns; retry in a few seconds".to_owned()
}

fn advice(namespace: &str, rollout: &str) -> String {
    format!(
        "use the admin API: `switchyard-rollout set-weight {namespace}/{rollout} --canary <basis points>` (or pause, promote, abort); to take the rule back, finish or delete the rollout first"
    )
}

fn describe(now: &[(String, i32)], before: &[(String, i32)]) -> String {
    let changes: Vec<String> = now
        .iter()
        .filter_map(|(backend, weight)| {
            let was = before.iter().find(|(b, _)| b == backend).map(|(_, w)| *w);
            (was != Some(*weight)).then(|| match was {
                Some(was) => format!("{backend} {was} → {weight}"),
                None => format!("{backend} added with weight {weight}"),
            })
        })
        .collect();
    if changes.is_empty() {
        "a backendRef was removed".to_owned()
    } else {
        changes.join(", ")
    }
}

/// A rewrite rule's targets and their weights.
fn rule_targets(rule: &InferenceModelRewriteRule) -> Vec<(String, Option<i32>)> {
    rule.targets
        .iter()
        .map(|t| (t.model_rewrite.clone(), t.weight))
        .collect()
}

/// A rule's backends (`kind/name`) and their weights, Gateway API defaults applied.
fn weights(rule: &HttpRouteRule) -> Vec<(String, i32)> {
    rule.backend_refs()
        .iter()
        .map(|backend| {
            (
                format!("{}/{}", backend.effective_kind(), backend.name),
                backend.effective_weight(),
            )
        })
        .collect()
}
