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

pub use super::objects::{Object, Objects, PoolObject};
pub use cross::reference_problems;
pub use spec::spec_problems;

use super::{Reporter, Severity};
use switchyard_api::rollout::InferenceRolloutSpec;

/// One rule broken by an InferenceRollout: where, and what to write instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The field, dotted with list indices (`spec.strategy.steps[1].weight`).
    pub path: String,
    /// What is wrong and how to fix it; reads on from the path when it starts
    /// with a verb ("is", "must"), otherwise follows a colon.
    pub message: String,
    /// Whether it is a mistake, or a reference to an object that is not there.
    pub severity: Severity,
}

impl Problem {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            severity: Severity::Error,
        }
    }

    /// A reference to an object that does not exist ([`Severity::Missing`]).
    pub(crate) fn missing(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Missing,
            ..Self::new(path, message)
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
        rep.report_as(problem.severity, &problem.path, problem.message);
    }
}

#[cfg(test)]
mod tests;
