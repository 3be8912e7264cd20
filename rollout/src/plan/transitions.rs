//! The two state changes both the admin intents ([`super::intent`]) and the
//! analysis loop ([`super::progress`]) make: moving to another step, and taking
//! the route's weights as ours. Kept apart from both so neither module has to
//! reach into the other.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use switchyard_api::rollout::{AppliedWeights, Phase, Weights};

use super::Planner;
use crate::route::RouteView;

/// Moves to the next step (or to the final promotion after the last one).
pub(super) fn advance(planner: &mut Planner<'_>) {
    let next = planner.step() + 1;
    advance_to(planner, next.min(planner.spec.strategy.steps.len()));
}

/// Moves to `step` (an index, or the step count for the final promotion), starting its
/// analysis afresh.
pub(super) fn advance_to(planner: &mut Planner<'_>, step: usize) {
    planner.status.phase = Some(Phase::Progressing);
    planner.status.pause = None;
    planner.status.current_step = Some(i32::try_from(step).unwrap_or(i32::MAX));
    planner.status.step_started_at = Some(Time(planner.obs.now));
    let analysis = planner.analysis_mut();
    analysis.successful_checks = 0;
    analysis.no_data_windows = 0;
    analysis.last_window_end = None;
    planner.weights_mut().manual_canary = None;
}

/// Takes the route's weights as ours: applied as they are, and as the manual
/// weight of the current step (in basis points).
pub(super) fn adopt(planner: &mut Planner<'_>, route: &RouteView, adopted: Weights) {
    let (stable, canary) = route.effective();
    let finished = matches!(
        planner.phase(),
        Phase::Succeeded | Phase::Aborted | Phase::Failed
    );
    let weights = planner.weights_mut();
    weights.applied = Some(AppliedWeights {
        stable,
        canary,
        route_generation: route.generation,
        verified_at: None,
    });
    weights.desired = Some(adopted);
    if !finished {
        let canary = adopted
            .canary
            .min(super::desired::max_manual_weight(planner.spec));
        let weights = planner.weights_mut();
        weights.desired = Some(Weights::with_canary(canary));
        weights.manual_canary = Some(canary);
    }
}
