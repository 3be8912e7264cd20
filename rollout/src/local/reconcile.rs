//! One local-mode reconcile: read the rollout's route file and saved status,
//! plan, save the status, rewrite the route file's weights.
//!
//! The same planner as on a cluster; only the reads and writes differ. Ready
//! endpoints are not observed locally (the local stack has no readiness to
//! read), so both arms count as holding the spec's minimum, like a backend
//! kind whose readiness the cluster controller cannot see.

use std::path::Path;

use k8s_openapi::jiff::Timestamp;
use switchyard_api::InferenceRollout;
use switchyard_api::rollout::SplitMode;
use tracing::{info, warn};

use super::analysis::LocalAnalysis;
use super::{StatusFile, read_route, route_path, write_weights};
use crate::error::{Error, Result};
use crate::plan::{self, Decision, Observations, RouteObservation};

/// Plans and applies `rollout` once against the files of `manifest_dir`,
/// keeping its status under `state_dir`, with windows measured by
/// `analysis`. Returns the decision taken.
pub async fn reconcile_once(
    manifest_dir: &Path,
    state_dir: &Path,
    rollout: &InferenceRollout,
    now: Timestamp,
    analysis: &mut LocalAnalysis,
) -> Result<Decision> {
    let name = rollout.metadata.name.clone().unwrap_or_default();
    let namespace = rollout
        .metadata
        .namespace
        .as_deref()
        .unwrap_or(super::store::DEFAULT_NAMESPACE);
    let status_file = StatusFile::new(state_dir, namespace, &name);
    let status = status_file.load()?;
    let spec = &rollout.spec;
    let found = match (&spec.target.route, &spec.target.stable, &spec.target.canary) {
        (Some(target), Some(stable), Some(canary)) => {
            match route_path(manifest_dir, &target.name)
                .and_then(|path| read_route(&path, target, stable, canary).map(|view| (path, view)))
            {
                Ok(found) => Some(found),
                Err(err) => {
                    warn!(rollout = %name, error = %err, "route not usable");
                    None
                }
            }
        }
        _ => None,
    };
    let route = match &found {
        Some((_, view)) => RouteObservation::Found(view.clone()),
        // Not built: rewriting the rewrite's file would also need the pickers'
        // endpoints files regenerated, since they carry the rewrites.
        None if spec.target.mode == SplitMode::ModelSplit => RouteObservation::Missing(
            "local mode does not write InferenceModelRewrite weights yet; run ModelSplit rollouts on a cluster"
                .into(),
        ),
        None => RouteObservation::Missing(
            "the HTTPRoute, its rule or a backend is missing from the manifest directory (see the log)"
                .into(),
        ),
    };
    let assumed = u32::try_from(spec.safety.min_canary_ready_endpoints.max(1)).unwrap_or(1);
    let observations = Observations {
        now,
        generation: rollout.metadata.generation,
        route,
        canary_ready: assumed,
        stable_ready: assumed,
        analysis: analysis.observe(spec, &status, now).await,
        conflict_with: None,
    };
    let decision = plan::plan(spec, &status, &observations);

    // The status first, as on a cluster: it records the weights about to be
    // written, so a crash between the two writes never reads as drift.
    if decision.status != status {
        status_file.save(&decision.status)?;
    }
    if let (Some(weights), Some((path, view)), Some(target), Some(stable), Some(canary)) = (
        decision.write,
        &found,
        &spec.target.route,
        &spec.target.stable,
        &spec.target.canary,
    ) {
        match write_weights(path, target, stable, canary, view, weights) {
            Ok(()) => info!(
                rollout = %name,
                stable = weights.stable,
                canary = weights.canary,
                file = %path.display(),
                "weights written"
            ),
            // Re-read on the next pass, like the cluster controller.
            Err(Error::Conflict { route }) => {
                warn!(rollout = %name, %route, "route file changed between read and write")
            }
            Err(err) => return Err(err),
        }
    }
    for event in &decision.events {
        info!(rollout = %name, reason = event.reason, message = %event.message, "rollout event");
    }
    Ok(decision)
}
