//! InferenceRollout (`rollout.switchyard.dev/v1alpha1`): a canary that moves the
//! weights of one HTTPRoute rule (PoolSplit) or one InferenceModelRewrite rule
//! (ModelSplit) step by step.
//!
//! Unlike the upstream kinds, whose raw shape is walked field by field, a rollout
//! is our own kind with one version, so the document is decoded with the typed
//! [`InferenceRolloutSpec`] the controller reads, and the rules then run on it:
//! - [`spec_problems`]: what one object can break (the CRD's CEL rules, ranges
//!   and duration patterns, and the step order the controller refuses);
//! - [`reference_problems`]: what it can break against other objects (the route
//!   rule, its backendRefs, the pools, the rewrite, another rollout on the same
//!   rule).
//!
//! Both are pure functions returning [`Problem`]s, so an admission webhook can
//! run them on objects read from the API server, as this checker does on files.

mod cross;
mod spec;

use serde::Deserialize;
use serde_json::Value;

pub use cross::{Object, Objects, PoolObject, reference_problems};
pub use spec::spec_problems;

use super::hints::{DEFAULT_NAMESPACE, POOL_GROUP, X_GROUP};
use super::kinds::{Class, Kind, classify};
use super::{Document, Reporter};
use crate::rollout::InferenceRolloutSpec;
use crate::{HttpRouteSpec, InferenceModelRewriteSpec};

/// One rule broken by an InferenceRollout: where, and what to write instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The field, dotted with list indices (`spec.strategy.steps[1].weight`).
    pub path: String,
    /// What is wrong and how to fix it; reads on from the path when it starts
    /// with a verb ("is", "must"), otherwise follows a colon.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Checks one InferenceRollout document against itself and against `objects`.
pub(crate) fn check(rep: &mut Reporter<'_>, document: &Value, objects: &Objects) {
    let Some(spec) = document.get("spec") else {
        rep.report(
            "spec",
            "is required: write spec: {target: {mode: PoolSplit, route: {name: <HTTPRoute>, ruleName: <rule>}, stable: {name: <pool>}, canary: {name: <pool>}}, strategy: {steps: [{weight: 500}]}}",
        );
        return;
    };
    let spec = match InferenceRolloutSpec::deserialize(spec) {
        Ok(spec) => spec,
        Err(error) => {
            rep.report(
                "spec",
                format!("does not decode as an InferenceRollout spec: {error}"),
            );
            return;
        }
    };
    for problem in spec_problems(&spec) {
        rep.report(&problem.path, problem.message);
    }
    let Some(name) = document.pointer("/metadata/name").and_then(Value::as_str) else {
        return; // meta's finding; references need the rollout's identity.
    };
    let namespace = rep.namespace().to_owned();
    for problem in reference_problems(&namespace, name, &spec, objects) {
        rep.report(&problem.path, problem.message);
    }
}

/// Collects what rollouts can reference among `documents`. A kind with no object
/// in the set stays `None`: the user is checking rollouts without it (it lives
/// elsewhere), so references to it are not judged.
pub(crate) fn objects_of(documents: &[Document]) -> Objects {
    let mut objects = Objects::default();
    for document in documents {
        let value = &document.value;
        let text = |key: &str| value.get(key).and_then(Value::as_str);
        let Some(name) = value.pointer("/metadata/name").and_then(Value::as_str) else {
            continue;
        };
        let namespace = value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_NAMESPACE);
        let spec = value.get("spec").unwrap_or(&Value::Null);
        let kind = match classify(text("apiVersion"), text("kind")) {
            Class::Served(kind) | Class::Unserved { kind, .. } => kind,
            _ => continue,
        };
        match kind {
            Kind::Pool | Kind::LegacyPool => {
                let group = if kind == Kind::Pool {
                    POOL_GROUP
                } else {
                    X_GROUP
                };
                objects.pools.get_or_insert_default().push(PoolObject {
                    group: group.to_owned(),
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                });
            }
            Kind::HttpRoute => {
                // A route that does not decode has its own finding; it still
                // exists, so its rules are taken as empty rather than missing.
                let route = HttpRouteSpec::deserialize(spec).unwrap_or_default();
                objects
                    .routes
                    .get_or_insert_default()
                    .push(Object::new(namespace, name, route));
            }
            Kind::Rewrite => {
                if let Ok(rewrite) = InferenceModelRewriteSpec::deserialize(spec) {
                    objects
                        .rewrites
                        .get_or_insert_default()
                        .push(Object::new(namespace, name, rewrite));
                }
            }
            Kind::Rollout => {
                if let Ok(rollout) = InferenceRolloutSpec::deserialize(spec) {
                    objects.rollouts.push(Object::new(namespace, name, rollout));
                }
            }
            Kind::LegacyModel | Kind::Objective => {}
        }
    }
    objects
}

#[cfg(test)]
mod tests;
