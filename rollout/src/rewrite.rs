//! Reading and patching the two targets a ModelSplit rollout owns in an
//! InferenceModelRewrite rule, and nothing else.
//!
//! The rule is the one whose `matches` hold an `Exact` match on the rollout's
//! `model`; its targets must be the stable and canary `modelRewrite`s and
//! nothing else, since a third target would take a share the planner cannot
//! see. A target's weight has a CRD minimum of 1, so weight 0 is written by
//! removing the target and read as an absent target; a later non-zero weight
//! adds it back.
//!
//! Like [`crate::route`], the write is a JSON Patch guarded by `test`
//! operations: the matched model and the rule's whole `targets` list as read
//! (names and weights, and so also which arm is absent), then the weight
//! writes. Any concurrent edit of those fields makes the apiserver reject the
//! patch, which is the drift path; edits elsewhere pass through.

use json_patch::Patch;
use serde_json::{Value, json};
use switchyard_api::rollout::{ModelSplitTarget, Weights};
use switchyard_api::{InferenceModelRewrite, InferenceModelRewriteRule};

use crate::error::{Error, Result};
use crate::route::RouteView;

/// Where the rollout's rule and targets sit in a rewrite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewriteView {
    /// Index of the matching rule in `spec.rules`.
    pub rule_index: usize,
    /// Index of the `Exact` match on the model in the rule's `matches`.
    pub match_index: usize,
    /// Index of the stable target, `None` when absent (weight 0).
    pub stable_index: Option<usize>,
    /// Index of the canary target, `None` when absent (weight 0).
    pub canary_index: Option<usize>,
    /// The weights as the planner sees them.
    pub weights: RouteView,
}

/// Finds the rule for `target.model` and the two targets in it. Every way the
/// rewrite can fail to hold them is an error naming what to fix.
pub fn locate(rewrite: &InferenceModelRewrite, target: &ModelSplitTarget) -> Result<RewriteView> {
    let problem = |message: String| Error::Rewrite {
        rewrite: rewrite.metadata.name.clone().unwrap_or_default(),
        message,
    };
    let mut matching = rewrite
        .spec
        .rules
        .iter()
        .enumerate()
        .filter_map(|(i, rule)| {
            rule.matches
                .iter()
                .position(|m| m.model.matches(&target.model))
                .map(|match_index| (i, match_index, rule))
        });
    let Some((rule_index, match_index, rule)) = matching.next() else {
        return Err(problem(format!(
            "no rule matches model {:?}; add a rule with `matches: [{{model: {{value: {}}}}}]`",
            target.model, target.model
        )));
    };
    if matching.next().is_some() {
        return Err(problem(format!(
            "two rules match model {:?}; the rollout needs exactly one",
            target.model
        )));
    }
    let stable_index = find_target(rule, &target.stable, "stable").map_err(&problem)?;
    let canary_index = find_target(rule, &target.canary, "canary").map_err(&problem)?;
    if let Some(other) = rule
        .targets
        .iter()
        .find(|t| t.model_rewrite != target.stable && t.model_rewrite != target.canary)
    {
        return Err(problem(format!(
            "the rule for model {:?} also targets {:?}; a ModelSplit rule may only target the \
             stable {:?} and the canary {:?}",
            target.model, other.model_rewrite, target.stable, target.canary
        )));
    }
    if stable_index.is_none() && canary_index.is_none() {
        return Err(problem(format!(
            "the rule for model {:?} targets neither the stable {:?} nor the canary {:?}; add \
             the stable as a target",
            target.model, target.stable, target.canary
        )));
    }
    // An absent target carries nothing; a present one without a weight
    // carries an equal share, which `RouteView`'s unset (= 1) expresses.
    let weight = |index: Option<usize>| match index {
        Some(i) => rule.targets[i].weight,
        None => Some(0),
    };
    Ok(RewriteView {
        rule_index,
        match_index,
        stable_index,
        canary_index,
        weights: RouteView {
            rule_index,
            stable_index: stable_index.unwrap_or(rule.targets.len()),
            canary_index: canary_index.unwrap_or(rule.targets.len()),
            stable_weight: weight(stable_index),
            canary_weight: weight(canary_index),
            generation: rewrite.metadata.generation,
            // The EPP reads rewrites directly and never reports on them (no
            // parents, no status): a stored write is a live write.
            parents_accepted: true,
        },
    })
}

fn find_target(
    rule: &InferenceModelRewriteRule,
    model: &str,
    role: &str,
) -> Result<Option<usize>, String> {
    let mut hits = rule
        .targets
        .iter()
        .enumerate()
        .filter(|(_, t)| t.model_rewrite == model);
    let first = hits.next().map(|(i, _)| i);
    if hits.next().is_some() {
        return Err(format!("the {role} target {model:?} is listed twice"));
    }
    Ok(first)
}

/// The JSON Patch moving the rule's targets to `desired`, guarded by `test`
/// operations on the matched model and the targets as read.
pub fn weight_patch(
    rewrite: &InferenceModelRewrite,
    view: &RewriteView,
    target: &ModelSplitTarget,
    desired: Weights,
) -> Result<Patch> {
    let name = rewrite.metadata.name.clone().unwrap_or_default();
    let Some(rule) = rewrite.spec.rules.get(view.rule_index) else {
        return Err(Error::Rewrite {
            rewrite: name,
            message: "rule index out of range (the rewrite changed while planning)".into(),
        });
    };
    let rule_path = format!("/spec/rules/{}", view.rule_index);
    let targets = serde_json::to_value(&rule.targets).map_err(|source| Error::Encode {
        what: "rewrite targets",
        source,
    })?;
    let mut operations = vec![
        json!({"op": "test", "path": format!("{rule_path}/matches/{}/model/value", view.match_index), "value": target.model}),
        json!({"op": "test", "path": format!("{rule_path}/targets"), "value": targets}),
    ];
    // Writes first, the one removal last, so no index shifts under a write.
    // The weights always sum to 10,000, so at most one arm is removed.
    let mut removal = None;
    for (index, model, weight) in [
        (view.stable_index, &target.stable, desired.stable),
        (view.canary_index, &target.canary, desired.canary),
    ] {
        match (index, weight) {
            (Some(i), 0) => removal = Some(i),
            (Some(i), weight) => {
                // `replace` fails on an absent member; an unset weight needs `add`.
                let op = if rule.targets[i].weight.is_some() {
                    "replace"
                } else {
                    "add"
                };
                operations.push(
                    json!({"op": op, "path": format!("{rule_path}/targets/{i}/weight"), "value": weight}),
                );
            }
            (None, 0) => {}
            (None, weight) => operations.push(json!({
                "op": "add",
                "path": format!("{rule_path}/targets/-"),
                "value": {"modelRewrite": model, "weight": weight},
            })),
        }
    }
    if let Some(i) = removal {
        operations.push(json!({"op": "remove", "path": format!("{rule_path}/targets/{i}")}));
    }
    serde_json::from_value(Value::Array(operations)).map_err(|source| Error::Encode {
        what: "rewrite weight patch",
        source,
    })
}

#[cfg(test)]
mod tests;
