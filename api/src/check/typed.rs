//! The last rule of every kind: the spec must decode into the crate's own types,
//! the ones the EPP, BBR and rollout controller read.
//!
//! The raw-value rules before it explain each mistake in the user's terms; this
//! one guarantees that a document they pass is also one the components accept.
//! It runs only when the raw rules found nothing, so a mistake is never reported
//! twice, and a finding here means the raw rules missed a case.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Reporter;
use super::kinds::Kind;
use crate::{InferenceModelRewriteSpec, InferenceObjectiveSpec, InferencePoolSpec};

/// Decodes `document`'s spec as `kind`'s typed spec, reporting a failure.
pub(crate) fn check(rep: &mut Reporter<'_>, kind: Kind, document: &Value) {
    let Some(spec) = document.get("spec") else {
        return;
    };
    let problem = match kind {
        Kind::Pool => decode::<InferencePoolSpec>(spec),
        Kind::Objective => decode::<InferenceObjectiveSpec>(spec),
        Kind::Rewrite => decode::<InferenceModelRewriteSpec>(spec),
        // The legacy kinds and HTTPRoute are checked on the raw value only.
        Kind::LegacyPool | Kind::LegacyModel | Kind::HttpRoute => None,
    };
    if let Some(problem) = problem {
        rep.report(
            "spec",
            format!("does not decode as Switchyard reads it: {problem}"),
        );
    }
}

fn decode<T: DeserializeOwned>(spec: &Value) -> Option<String> {
    T::deserialize(spec).err().map(|error| error.to_string())
}
