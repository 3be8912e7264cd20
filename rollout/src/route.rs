//! Reading and patching the two weights a rollout owns in an HTTPRoute, and
//! nothing else.
//!
//! `spec.rules` and `backendRefs` are atomic lists, so a merge patch or SSA
//! would replace the user's whole rule. Instead we send a JSON Patch whose
//! `test` operations pin the rule name, both backend names and both current
//! weights, followed by the two weight writes: any concurrent edit of those
//! fields makes the apiserver reject the patch (the drift path), while edits
//! anywhere else in the route pass through untouched.

use json_patch::Patch;
use serde_json::{Value, json};
use switchyard_api::httproute::{HttpBackendRef, HttpRoute, backend_weight_path};
use switchyard_api::rollout::{BackendTarget, FULL_WEIGHT, RouteTarget, Weights};

use crate::error::{Error, Result};

/// Where the rollout's two backends sit in a route, and their current weights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteView {
    /// Index of the named rule in `spec.rules`.
    pub rule_index: usize,
    /// Index of the stable backend in the rule's `backendRefs`.
    pub stable_index: usize,
    /// Index of the canary backend in the rule's `backendRefs`.
    pub canary_index: usize,
    /// The stable backend's `weight` as written (`None` = unset, which means 1).
    pub stable_weight: Option<i32>,
    /// The canary backend's `weight` as written.
    pub canary_weight: Option<i32>,
    /// The route's `metadata.generation`.
    pub generation: Option<i64>,
    /// Whether every parent reports `Accepted` and `ResolvedRefs` at `generation`.
    pub parents_accepted: bool,
}

/// Finds the rule and the two backends. Every way the route can fail to hold
/// them is an error naming what to fix.
pub fn locate(
    route: &HttpRoute,
    target: &RouteTarget,
    stable: &BackendTarget,
    canary: &BackendTarget,
) -> Result<RouteView> {
    let route_name = route.metadata.name.clone().unwrap_or_default();
    let problem = |message: String| Error::Route {
        route: route_name.clone(),
        message,
    };
    let rules = route.spec.rules();
    let mut named = rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| rule.name.as_deref() == Some(target.rule_name.as_str()));
    let Some((rule_index, rule)) = named.next() else {
        return Err(problem(format!(
            "no rule named {:?}; give the rule `name: {}` in spec.rules",
            target.rule_name, target.rule_name
        )));
    };
    if named.next().is_some() {
        return Err(problem(format!(
            "two rules are named {:?}; rule names must be unique",
            target.rule_name
        )));
    }
    let find = |wanted: &BackendTarget, role: &str| -> Result<usize> {
        let mut hits = rule
            .backend_refs()
            .iter()
            .enumerate()
            .filter(|(_, backend)| wanted.matches(backend));
        let Some((index, _)) = hits.next() else {
            return Err(problem(format!(
                "rule {:?} has no backendRef to the {role} {} {:?}; add it (weight 0 is fine for the canary)",
                target.rule_name, wanted.kind, wanted.name
            )));
        };
        if hits.next().is_some() {
            return Err(problem(format!(
                "rule {:?} lists the {role} {} {:?} twice",
                target.rule_name, wanted.kind, wanted.name
            )));
        }
        Ok(index)
    };
    let stable_index = find(stable, "stable")?;
    let canary_index = find(canary, "canary")?;
    let refs = rule.backend_refs();
    let generation = route.metadata.generation;
    Ok(RouteView {
        rule_index,
        stable_index,
        canary_index,
        stable_weight: refs[stable_index].weight,
        canary_weight: refs[canary_index].weight,
        generation,
        parents_accepted: parents_accepted(route, generation),
    })
}

// === impl RouteView ===

impl RouteView {
    /// The two weights with Gateway API's default (1) applied.
    pub fn effective(&self) -> (i32, i32) {
        (
            self.stable_weight.unwrap_or(1),
            self.canary_weight.unwrap_or(1),
        )
    }

    /// Whether the route carries exactly `weights`.
    pub fn carries(&self, weights: Weights) -> bool {
        self.stable_weight == Some(weights.stable) && self.canary_weight == Some(weights.canary)
    }

    /// The route's split in basis points. Route weights are proportional, so
    /// `3`/`1` is 7,500/2,500; both 0 (no traffic at all) reads as all-stable.
    pub fn normalized(&self) -> Weights {
        let (stable, canary) = self.effective();
        let (stable, canary) = (i64::from(stable.max(0)), i64::from(canary.max(0)));
        let total = stable + canary;
        if total == 0 {
            return Weights::ALL_STABLE;
        }
        let canary_bp = (canary * i64::from(FULL_WEIGHT) + total / 2) / total;
        Weights::with_canary(i32::try_from(canary_bp).unwrap_or(FULL_WEIGHT))
    }
}

/// The JSON Patch moving `view`'s backends to `desired`, guarded by `test`
/// operations on everything the write depends on.
pub fn weight_patch(
    route: &HttpRoute,
    view: &RouteView,
    rule_name: &str,
    desired: Weights,
) -> Result<Patch> {
    let rule_path = format!("/spec/rules/{}", view.rule_index);
    let refs = route
        .spec
        .rules()
        .get(view.rule_index)
        .map(|rule| rule.backend_refs())
        .unwrap_or_default();
    let (Some(stable), Some(canary)) = (refs.get(view.stable_index), refs.get(view.canary_index))
    else {
        return Err(Error::Route {
            route: route.metadata.name.clone().unwrap_or_default(),
            message: "backendRef indexes out of range (the route changed while planning)".into(),
        });
    };
    let mut operations =
        vec![json!({"op": "test", "path": format!("{rule_path}/name"), "value": rule_name})];
    for (index, backend) in [(view.stable_index, stable), (view.canary_index, canary)] {
        operations.extend(guard(view.rule_index, index, backend));
    }
    for (index, backend, weight) in [
        (view.stable_index, stable, desired.stable),
        (view.canary_index, canary, desired.canary),
    ] {
        // `replace` fails on an absent member; an unset weight needs `add`.
        let op = if backend.weight.is_some() {
            "replace"
        } else {
            "add"
        };
        operations.push(
            json!({"op": op, "path": backend_weight_path(view.rule_index, index), "value": weight}),
        );
    }
    serde_json::from_value(Value::Array(operations)).map_err(|source| Error::Encode {
        what: "route weight patch",
        source,
    })
}

/// `test` operations pinning one backend: its name, and its weight, or — when
/// the weight is unset — the whole ref, since a path that does not exist
/// cannot be tested.
fn guard(rule_index: usize, backend_index: usize, backend: &HttpBackendRef) -> Vec<Value> {
    let ref_path = format!("/spec/rules/{rule_index}/backendRefs/{backend_index}");
    match backend.weight {
        Some(weight) => vec![
            json!({"op": "test", "path": format!("{ref_path}/name"), "value": backend.name}),
            json!({"op": "test", "path": backend_weight_path(rule_index, backend_index), "value": weight}),
        ],
        None => vec![json!({"op": "test", "path": ref_path, "value": backend})],
    }
}

/// Whether the route has at least one parent and every parent reports both
/// `Accepted` and `ResolvedRefs` as `True`, observed at `generation` or later.
pub fn parents_accepted(route: &HttpRoute, generation: Option<i64>) -> bool {
    let parents = route
        .status
        .as_ref()
        .and_then(|status| status.parents.as_deref())
        .unwrap_or_default();
    !parents.is_empty()
        && parents.iter().all(|parent| {
            let conditions = parent.conditions.as_deref().unwrap_or_default();
            ["Accepted", "ResolvedRefs"].iter().all(|wanted| {
                conditions.iter().any(|condition| {
                    condition.get("type").and_then(Value::as_str) == Some(wanted)
                        && condition.get("status").and_then(Value::as_str) == Some("True")
                        && match (
                            generation,
                            condition.get("observedGeneration").and_then(Value::as_i64),
                        ) {
                            (Some(wanted), Some(seen)) => seen >= wanted,
                            (Some(_), None) => false,
                            (None, _) => true,
                        }
                })
            })
        })
}

#[cfg(test)]
mod tests;
