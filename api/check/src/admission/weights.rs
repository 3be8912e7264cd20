//! A weight edited by hand on a route rule an active InferenceRollout weighs.
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
use switchyard_api::HttpRouteSpec;
use switchyard_api::httproute::HttpRouteRule;
use switchyard_api::rollout::SplitMode;

/// Reports every owned rule of `new` whose weights differ from `old`'s.
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
    let severity = match config.manual_weight_edits {
        Enforcement::Deny => Severity::Error,
        Enforcement::Warn => Severity::Warning,
    };
    let document = Document {
        source: "admission".to_owned(),
        index: 1,
        line: 1,
        value: Value::Null,
    };
    let mut rep = Reporter {
        document: &document,
        kind: "HTTPRoute".to_owned(),
        name: route_name.to_owned(),
        findings,
    };
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
        let (Some((index, now)), Some((_, before))) = (find(&new_spec), find(&old_spec)) else {
            continue;
        };
        if now == before {
            continue;
        }
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
        let changes = if changes.is_empty() {
            "a backendRef was removed".to_owned()
        } else {
            changes.join(", ")
        };
        rep.report_as(
            severity,
            &format!("spec.rules[{index}].backendRefs"),
            format!(
                "rule {} is weighted by InferenceRollout {namespace}/{} while it runs, and this edit changes its weights ({changes}); the controller would treat it as drift (driftPolicy {:?}). Leave the weights as they were and use the admin API: `switchyard-rollout set-weight {namespace}/{} --canary <basis points>` (or pause, promote, abort); to take the rule back, finish or delete the rollout first",
                route.rule_name, rollout.name, route.drift_policy, rollout.name
            ),
        );
    }
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
