//! ModelSplit's reads and writes: the InferenceModelRewrite rule's two
//! targets, patched with the guarded JSON Patch of [`crate::rewrite`].

use json_patch::Patch as JsonPatch;
use kube::{Api, Client, ResourceExt};
use switchyard_api::InferenceModelRewrite;
use switchyard_api::rollout::{BackendTarget, ModelSplitTarget, Weights};

use crate::error::{Error, Result};
use crate::plan::RouteObservation;
use crate::rewrite::{RewriteView, locate, weight_patch};

/// The rewrite as read, plus what the patch needs.
pub struct RewriteRead {
    /// What the planner sees.
    pub observation: RouteObservation,
    /// The rewrite and where the targets are, when found.
    pub found: Option<(InferenceModelRewrite, RewriteView)>,
}

impl RewriteRead {
    /// The InferencePool both arms run in (the rewrite's `poolRef`), when found.
    pub fn pool(&self) -> Option<BackendTarget> {
        self.found
            .as_ref()
            .map(|(rewrite, _)| BackendTarget::pool(&rewrite.spec.pool_ref.name))
    }
}

/// Reads the rewrite and finds the rule's two targets in it.
pub async fn read(
    client: &Client,
    namespace: &str,
    split: &ModelSplitTarget,
) -> Result<RewriteRead> {
    let api: Api<InferenceModelRewrite> = Api::namespaced(client.clone(), namespace);
    let rewrite = api
        .get_opt(&split.rewrite_ref)
        .await
        .map_err(|source| Error::Kube {
            action: format!(
                "get InferenceModelRewrite {namespace}/{}",
                split.rewrite_ref
            ),
            source,
        })?;
    let Some(rewrite) = rewrite else {
        return Ok(RewriteRead {
            observation: RouteObservation::Missing(format!(
                "InferenceModelRewrite {namespace}/{} not found",
                split.rewrite_ref
            )),
            found: None,
        });
    };
    Ok(match locate(&rewrite, split) {
        Ok(view) => RewriteRead {
            observation: RouteObservation::Found(view.weights.clone()),
            found: Some((rewrite, view)),
        },
        Err(err) => RewriteRead {
            observation: RouteObservation::Missing(err.to_string()),
            found: None,
        },
    })
}

/// Patches the two targets. A failed `test` (422) or a conflict (409) is
/// [`Error::RewriteConflict`]: someone changed the rule since we read it.
pub async fn write_weights(
    client: &Client,
    namespace: &str,
    split: &ModelSplitTarget,
    (rewrite, view): &(InferenceModelRewrite, RewriteView),
    weights: Weights,
) -> Result<()> {
    let patch: JsonPatch = weight_patch(rewrite, view, split, weights)?;
    let name = rewrite.name_any();
    let api: Api<InferenceModelRewrite> = Api::namespaced(client.clone(), namespace);
    match super::write::guarded_patch(&api, &name, patch).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::RewriteConflict { rewrite: name }),
        Err(source) => Err(Error::Kube {
            action: format!("patch InferenceModelRewrite {namespace}/{name} weights"),
            source,
        }),
    }
}
