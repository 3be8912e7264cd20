//! The last rule of every kind: the document must decode into the crate's own
//! types, the ones the EPP, BBR and rollout controller read, and a legacy object
//! must convert to the current kinds the way Switchyard converts it at run time.
//!
//! The raw-value rules before it explain each mistake in the user's terms; this
//! one guarantees that a document they pass is also one the components accept.
//! It runs only when the raw rules found nothing, so a mistake is never reported
//! twice; a decode finding here means the raw rules missed a case, while a
//! conversion finding is a legacy value the current API cannot hold.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Reporter;
use super::hints::POOL_API;
use super::kinds::Kind;
use switchyard_api::error::Error;
use switchyard_api::legacy::convert::{convert_model, convert_pool};
use switchyard_api::{
    HttpRouteSpec, InferenceModelRewriteSpec, InferenceObjectiveSpec, InferencePoolSpec, legacy,
};

/// Decodes (and for legacy kinds, converts) `document` as `kind`, reporting a failure.
pub(crate) fn check(rep: &mut Reporter<'_>, kind: Kind, document: &Value) {
    let Some(spec) = document.get("spec") else {
        return;
    };
    let problem = match kind {
        Kind::Pool => decode::<InferencePoolSpec>(spec).err(),
        Kind::Objective => decode::<InferenceObjectiveSpec>(spec).err(),
        Kind::Rewrite => decode::<InferenceModelRewriteSpec>(spec).err(),
        Kind::HttpRoute => decode::<HttpRouteSpec>(spec).err(),
        // Decoded (and reported) by the rollout rules themselves.
        Kind::Rollout => None,
        Kind::LegacyPool => match decode::<legacy::InferencePool>(document) {
            Ok(pool) => return report_conversion(rep, convert_pool(&pool).err(), POOL_API),
            Err(problem) => Some(problem),
        },
        Kind::LegacyModel => match decode::<legacy::InferenceModel>(document) {
            Ok(model) => {
                let what = "an InferenceObjective (and an InferenceModelRewrite for targetModels)";
                return report_conversion(rep, convert_model(&model).err(), what);
            }
            Err(problem) => Some(problem),
        },
    };
    if let Some(problem) = problem {
        rep.report(
            "spec",
            format!("does not decode as Switchyard reads it: {problem}"),
        );
    }
}

fn decode<T: DeserializeOwned>(value: &Value) -> Result<T, String> {
    T::deserialize(value).map_err(|error| error.to_string())
}

/// Reports why a legacy object cannot become `target`.
fn report_conversion(rep: &mut Reporter<'_>, error: Option<Error>, target: &str) {
    match error {
        None => {}
        Some(Error::Conversion { field, reason, .. }) => rep.report(
            field,
            format!("{reason} (Switchyard reads this legacy object as {target}, which cannot hold this value)"),
        ),
        Some(other) => rep.report("", format!("cannot be converted to {target}: {other}")),
    }
}
